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
        let mut inner = KBox::new(
            pin_init::zeroed::<bindings::fpu_guest>(),
            GFP_KERNEL_ACCOUNT,
        )?;
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
            bindings::fpu_copy_uabi_to_guest_fpstate(
                &mut *self.inner,
                buf.as_ptr().cast(),
                xcr0,
                &mut pkru,
            )
        })
    }
}

impl Drop for GuestFpu {
    fn drop(&mut self) {
        // SAFETY: allocated in `new`.
        unsafe { bindings::fpu_free_guest_fpstate(&mut *self.inner) };
    }
}

/// The guest's vector and x87/MMX registers as the instruction emulator
/// sees them. Only valid in KVM_RUN between [`GuestFpu::load`] and
/// [`GuestFpu::put`], when the guest's FPU state is the current one (the
/// helpers reload it if a context switch saved it).
pub mod regs {
    use crate::ext::bindings as rb;

    /// XMM register `n` (0-15).
    pub fn xmm(n: u8) -> u128 {
        let mut v = 0u128;
        // SAFETY: 16 writable bytes; the helper ignores n > 15.
        unsafe { rb::rkvm_read_xmm(u32::from(n), core::ptr::from_mut(&mut v).cast()) };
        v
    }

    /// Sets XMM register `n`.
    pub fn set_xmm(n: u8, val: u128) {
        // SAFETY: 16 readable bytes.
        unsafe { rb::rkvm_write_xmm(u32::from(n), core::ptr::from_ref(&val).cast()) };
    }

    /// YMM register `n` (zeros without AVX on the host).
    pub fn ymm(n: u8) -> [u8; 32] {
        let mut v = [0u8; 32];
        // SAFETY: 32 writable bytes.
        unsafe { rb::rkvm_read_ymm(u32::from(n), v.as_mut_ptr().cast()) };
        v
    }

    /// Sets YMM register `n`.
    pub fn set_ymm(n: u8, val: [u8; 32]) {
        // SAFETY: 32 readable bytes.
        unsafe { rb::rkvm_write_ymm(u32::from(n), val.as_ptr().cast()) };
    }

    /// MMX register `n` (0-7). Check [`x87_exception_pending`] first: an
    /// MMX access with a pending x87 exception would raise #MF.
    pub fn mmx(n: u8) -> u64 {
        let mut v = 0u64;
        // SAFETY: 8 writable bytes.
        unsafe { rb::rkvm_read_mmx(u32::from(n), &mut v) };
        v
    }

    /// Sets MMX register `n` (see [`mmx`]).
    pub fn set_mmx(n: u8, val: u64) {
        // SAFETY: 8 readable bytes.
        unsafe { rb::rkvm_write_mmx(u32::from(n), &val) };
    }

    /// Whether an unmasked x87 exception is pending (FWAIT would #MF).
    pub fn x87_exception_pending() -> bool {
        // SAFETY: no arguments; the helper catches the #MF of its FWAIT.
        unsafe { rb::rkvm_fwait_faults() }
    }

    /// XCR0 of the host (the same on every CPU; cached after the first read).
    pub fn host_xcr0() -> u64 {
        use core::sync::atomic::{AtomicU64, Ordering};
        static HOST_XCR0: AtomicU64 = AtomicU64::new(0);
        let v = HOST_XCR0.load(Ordering::Relaxed);
        if v != 0 {
            return v;
        }
        // SAFETY: XGETBV(0) with CR4.OSXSAVE set, which x86-64 Linux
        // requires for any XSAVE use (the FPU core relies on it).
        let v = unsafe { rb::rkvm_xgetbv(0) };
        HOST_XCR0.store(v, Ordering::Relaxed);
        v
    }
}
