// SPDX-License-Identifier: GPL-2.0
//! A guest's FPU/XSAVE state, switched with the host's around KVM_RUN by
//! the kernel's x86 FPU core (`fpu_swap_kvm_fpstate`), which also keeps it
//! right across preemption while the guest state is loaded.

use kernel::{bindings, prelude::*};

/// One vCPU's guest FPU state.
pub struct GuestFpu {
    inner: KBox<bindings::fpu_guest>,
}

// SAFETY: the state is only used by the thread holding the vCPU.
unsafe impl Send for GuestFpu {}

impl GuestFpu {
    /// Allocates a guest FPU state in its reset form.
    pub fn new() -> Result<Self> {
        let mut inner = KBox::new(pin_init::zeroed::<bindings::fpu_guest>(), GFP_KERNEL_ACCOUNT)?;
        // SAFETY: `inner` is a zeroed `fpu_guest`, as the API expects.
        if !unsafe { bindings::fpu_alloc_guest_fpstate(&mut *inner) } {
            return Err(ENOMEM);
        }
        Ok(Self { inner })
    }

    /// Loads the guest state into the FPU (saving the host's); until
    /// [`GuestFpu::put`], context switches save and restore the guest's.
    pub fn load(&mut self) {
        // SAFETY: `inner` was set up by fpu_alloc_guest_fpstate.
        unsafe { bindings::fpu_swap_kvm_fpstate(&mut *self.inner, true) };
    }

    /// Saves the guest state and puts the host's back.
    pub fn put(&mut self) {
        // SAFETY: as in `load`, after `load`.
        unsafe { bindings::fpu_swap_kvm_fpstate(&mut *self.inner, false) };
    }

    /// Copies the state out in the uabi XSAVE layout (`struct kvm_xsave`),
    /// `buf.len()` bytes of it, with the `xfeatures` components.
    pub fn get_uabi(&mut self, buf: &mut [u8], xfeatures: u64, pkru: u32) {
        // SAFETY: `buf` is writable for its length.
        unsafe {
            bindings::fpu_copy_guest_fpstate_to_uabi(
                &mut *self.inner,
                buf.as_mut_ptr().cast(),
                buf.len() as u32,
                xfeatures,
                pkru,
            )
        };
    }

    /// Sets the state from the uabi XSAVE layout; `xcr0` bounds the
    /// components userspace may set.
    pub fn set_uabi(&mut self, buf: &[u8], xcr0: u64) -> Result {
        let mut pkru = 0u32;
        // SAFETY: `buf` holds a full `struct kvm_xsave` (4 KiB) at least.
        kernel::error::to_result(unsafe {
            bindings::fpu_copy_uabi_to_guest_fpstate(&mut *self.inner, buf.as_ptr().cast(), xcr0, &mut pkru)
        })
    }
}

impl Drop for GuestFpu {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`.
        unsafe { bindings::fpu_free_guest_fpstate(&mut *self.inner) };
    }
}
