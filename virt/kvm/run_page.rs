// SPDX-License-Identifier: GPL-2.0
//! The pages a vCPU fd maps for userspace: `struct kvm_run` (page 0) and
//! the PIO data page (page 1, `KVM_PIO_PAGE_OFFSET`).
//!
//! Userspace can change these pages at any time, so the kernel reads each
//! field it trusts once, with a volatile read, and never keeps references.

use crate::ext::{bindings as rb, uapi};
use core::ptr::{addr_of, addr_of_mut};
use kernel::{page::Page, prelude::*};

/// `kvm_run.io.data_offset` of the PIO data page.
pub(crate) const PIO_DATA_OFFSET: u64 = 4096;

/// A vCPU's `kvm_run` and PIO data pages.
pub(crate) struct RunPage {
    run: Page,
    pio: Page,
}

impl RunPage {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            run: Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
            pio: Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
        })
    }

    /// The page backing mmap page `pgoff` of the vCPU fd, if any.
    pub(crate) fn page(&self, pgoff: usize) -> Option<&Page> {
        match pgoff {
            0 => Some(&self.run),
            1 => Some(&self.pio),
            _ => None,
        }
    }

    fn raw(&self) -> *mut uapi::kvm_run {
        // SAFETY: `run` is a live, directly mapped page we own.
        unsafe { rb::rkvm_page_address(self.run.as_ptr()) }.cast()
    }

    fn pio_raw(&self) -> *mut u8 {
        // SAFETY: `pio` is a live, directly mapped page we own.
        unsafe { rb::rkvm_page_address(self.pio.as_ptr()) }.cast()
    }

    /// `immediate_exit`.
    pub(crate) fn immediate_exit(&self) -> bool {
        // SAFETY: in-bounds read of a field of our page; any value is fine.
        unsafe { addr_of!((*self.raw()).immediate_exit).read_volatile() != 0 }
    }

    /// `request_interrupt_window`.
    pub(crate) fn request_interrupt_window(&self) -> bool {
        // SAFETY: as in `immediate_exit`.
        unsafe { addr_of!((*self.raw()).request_interrupt_window).read_volatile() != 0 }
    }

    /// Sets `exit_reason`.
    pub(crate) fn set_exit_reason(&self, reason: u32) {
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).exit_reason).write_volatile(reason) };
    }

    /// Sets `if_flag`, `ready_for_interrupt_injection`, `cr8`, `apic_base`
    /// and `flags`, which every exit reports.
    pub(crate) fn set_common(&self, if_flag: bool, ready: bool, cr8: u64, apic_base: u64) {
        let r = self.raw();
        // SAFETY: in-bounds writes to our page.
        unsafe {
            addr_of_mut!((*r).if_flag).write_volatile(u8::from(if_flag));
            addr_of_mut!((*r).ready_for_interrupt_injection).write_volatile(u8::from(ready));
            addr_of_mut!((*r).cr8).write_volatile(cr8);
            addr_of_mut!((*r).apic_base).write_volatile(apic_base);
        }
    }

    /// Fills `kvm_run.io` for a port I/O exit.
    pub(crate) fn set_io(&self, input: bool, size: u8, port: u16, count: u32) {
        let io = uapi::kvm_run__bindgen_ty_1__bindgen_ty_4 {
            direction: if input { uapi::KVM_EXIT_IO_IN as u8 } else { uapi::KVM_EXIT_IO_OUT as u8 },
            size,
            port,
            count,
            data_offset: PIO_DATA_OFFSET,
        };
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.io).write_volatile(io) };
    }

    /// Fills `kvm_run.mmio` for an MMIO exit.
    pub(crate) fn set_mmio(&self, gpa: u64, data: [u8; 8], len: u32, write: bool) {
        let m = uapi::kvm_run__bindgen_ty_1__bindgen_ty_6 {
            phys_addr: gpa,
            data,
            len,
            is_write: u8::from(write),
        };
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.mmio).write_volatile(m) };
    }

    /// `kvm_run.mmio.data` as userspace left it.
    pub(crate) fn mmio_data(&self) -> [u8; 8] {
        // SAFETY: in-bounds read of our page.
        unsafe { addr_of!((*self.raw()).__bindgen_anon_1.mmio.data).read_volatile() }
    }

    /// Fills `kvm_run.fail_entry`.
    pub(crate) fn set_fail_entry(&self, reason: u64, cpu: u32) {
        let f = uapi::kvm_run__bindgen_ty_1__bindgen_ty_2 {
            hardware_entry_failure_reason: reason,
            cpu,
        };
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.fail_entry).write_volatile(f) };
    }

    /// Fills `kvm_run.internal` (suberror and up to 16 words of data).
    pub(crate) fn set_internal(&self, suberror: u32, data: &[u64]) {
        let mut i = uapi::kvm_run__bindgen_ty_1__bindgen_ty_13::default();
        i.suberror = suberror;
        let n = data.len().min(i.data.len());
        i.ndata = n as u32;
        // Element-wise: copy_from_slice::<u64>'s panic path trips objtool.
        for k in 0..n {
            i.data[k] = data[k];
        }
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.internal).write_volatile(i) };
    }

    /// Fills `kvm_run.eoi` (KVM_EXIT_IOAPIC_EOI).
    pub(crate) fn set_eoi_vector(&self, vector: u8) {
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.eoi.vector).write_volatile(vector) };
    }

    /// Fills `kvm_run.tpr_access`.
    pub(crate) fn set_tpr_access(&self, rip: u64, is_write: bool) {
        let t = uapi::kvm_run__bindgen_ty_1__bindgen_ty_9 { rip, is_write: u32::from(is_write), pad: 0 };
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.tpr_access).write_volatile(t) };
    }

    /// Fills `kvm_run.debug.arch`.
    pub(crate) fn set_debug(&self, exception: u32, pc: u64, dr6: u64, dr7: u64) {
        let d = uapi::kvm_debug_exit_arch { exception, pad: 0, pc, dr6, dr7 };
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.debug.arch).write_volatile(d) };
    }

    /// Fills `kvm_run.memory_fault`.
    pub(crate) fn set_memory_fault(&self, gpa: u64, size: u64, flags: u64) {
        let m = uapi::kvm_run__bindgen_ty_1__bindgen_ty_27 { flags, gpa, size };
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.memory_fault).write_volatile(m) };
    }

    /// Fills `kvm_run.hypercall` (`ret` zeroed, as upstream does for QEMU).
    pub(crate) fn set_hypercall(&self, nr: u64, args: [u64; 3], flags: u64) {
        let mut h: uapi::kvm_run__bindgen_ty_1__bindgen_ty_8 = pin_init::zeroed();
        h.nr = nr;
        (h.args[0], h.args[1], h.args[2]) = (args[0], args[1], args[2]);
        h.ret = 0;
        h.__bindgen_anon_1.flags = flags;
        // SAFETY: in-bounds write to our page.
        unsafe { addr_of_mut!((*self.raw()).__bindgen_anon_1.hypercall).write_volatile(h) };
    }

    /// `kvm_run.hypercall.ret` as userspace left it.
    pub(crate) fn hypercall_ret(&self) -> u64 {
        // SAFETY: in-bounds read of our page.
        unsafe { addr_of!((*self.raw()).__bindgen_anon_1.hypercall.ret).read_volatile() }
    }

    /// Copies `data` into the PIO data page at `offset`.
    pub(crate) fn write_pio(&self, offset: usize, data: &[u8]) {
        let n = data.len().min(4096usize.saturating_sub(offset));
        // SAFETY: clamped to our page.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.pio_raw().add(offset), n) };
    }

    /// Copies from the PIO data page at `offset` into `buf`.
    pub(crate) fn read_pio(&self, offset: usize, buf: &mut [u8]) {
        let n = buf.len().min(4096usize.saturating_sub(offset));
        // SAFETY: clamped to our page.
        unsafe { core::ptr::copy_nonoverlapping(self.pio_raw().add(offset), buf.as_mut_ptr(), n) };
    }
}
