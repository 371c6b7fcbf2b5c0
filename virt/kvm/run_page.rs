// SPDX-License-Identifier: GPL-2.0
//! The pages a vCPU fd maps for userspace: `struct kvm_run` (page 0) and
//! the PIO data page (page 1, `KVM_PIO_PAGE_OFFSET`).
//!
//! Userspace can change these pages at any time, so the kernel reads each
//! field it trusts once, with a volatile read ([`SharedPage`]), and never
//! keeps references into them.

use crate::ext::{pages::SharedPage, uapi};
use core::mem::offset_of;
use kernel::{page::Page, prelude::*};

/// `kvm_run.io.data_offset` of the PIO data page.
pub(crate) const PIO_DATA_OFFSET: u64 = kernel::page::PAGE_SIZE as u64;

/// Byte offset of a (nested) field of `struct kvm_run`.
macro_rules! run_off {
    ($($f:tt)+) => {
        offset_of!(uapi::kvm_run, $($f)+)
    };
}

/// A vCPU's `kvm_run` and PIO data pages.
pub(crate) struct RunPage {
    run: SharedPage,
    pio: SharedPage,
}

impl RunPage {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self {
            run: SharedPage::new()?,
            pio: SharedPage::new()?,
        })
    }

    /// The page backing mmap page `pgoff` of the vCPU fd, if any.
    pub(crate) fn page(&self, pgoff: usize) -> Option<&Page> {
        match pgoff {
            0 => Some(self.run.page()),
            1 => Some(self.pio.page()),
            _ => None,
        }
    }

    /// `immediate_exit`.
    pub(crate) fn immediate_exit(&self) -> bool {
        self.run.read::<u8>(run_off!(immediate_exit)) != 0
    }

    /// `request_interrupt_window`.
    pub(crate) fn request_interrupt_window(&self) -> bool {
        self.run.read::<u8>(run_off!(request_interrupt_window)) != 0
    }

    /// `kvm_valid_regs`: the sync register sets to store on every
    /// return from KVM_RUN (KVM_CAP_SYNC_REGS).
    pub(crate) fn valid_regs(&self) -> u64 {
        self.run.read::<u64>(run_off!(kvm_valid_regs))
    }

    /// `kvm_dirty_regs`: the sync register sets userspace changed.
    pub(crate) fn dirty_regs(&self) -> u64 {
        self.run.read::<u64>(run_off!(kvm_dirty_regs))
    }

    /// Clears `bits` in `kvm_dirty_regs` (a set was loaded).
    pub(crate) fn clear_dirty_regs(&self, bits: u64) {
        self.run
            .write(run_off!(kvm_dirty_regs), self.dirty_regs() & !bits);
    }

    /// A snapshot of a sync register set: `s.regs.<field>`, at byte
    /// `field` of `struct kvm_sync_regs` (one copy; userspace may change
    /// the page meanwhile).
    pub(crate) fn sync_regs<V: kernel::transmute::FromBytes + Default>(&self, field: usize) -> V {
        self.run.read::<V>(run_off!(s) + field)
    }

    /// Stores a sync register set at byte `field` of `s.regs`.
    pub(crate) fn set_sync_regs<V: kernel::transmute::AsBytes>(&self, field: usize, v: V) {
        self.run.write(run_off!(s) + field, v);
    }

    /// `exit_reason`.
    pub(crate) fn exit_reason(&self) -> u32 {
        self.run.read::<u32>(run_off!(exit_reason))
    }

    /// Sets `exit_reason`.
    pub(crate) fn set_exit_reason(&self, reason: u32) {
        self.run.write(run_off!(exit_reason), reason);
    }

    /// Sets `if_flag`, `ready_for_interrupt_injection`, `cr8`,
    /// `apic_base` and `flags`, which every exit reports. `flags`:
    /// KVM_RUN_X86_GUEST_MODE while a nested guest runs
    /// (KVM_CAP_X86_GUEST_MODE); no SMM.
    pub(crate) fn set_common(
        &self,
        if_flag: bool,
        ready: bool,
        cr8: u64,
        apic_base: u64,
        guest_mode: bool,
    ) {
        let flags = if guest_mode {
            uapi::KVM_RUN_X86_GUEST_MODE as u16
        } else {
            0
        };
        self.run.write(run_off!(flags), flags);
        self.run.write(run_off!(if_flag), u8::from(if_flag));
        self.run
            .write(run_off!(ready_for_interrupt_injection), u8::from(ready));
        self.run.write(run_off!(cr8), cr8);
        self.run.write(run_off!(apic_base), apic_base);
    }

    /// Fills `kvm_run.io` for a port I/O exit.
    pub(crate) fn set_io(&self, input: bool, size: u8, port: u16, count: u32) {
        let direction = if input {
            uapi::KVM_EXIT_IO_IN
        } else {
            uapi::KVM_EXIT_IO_OUT
        };
        self.run
            .write(run_off!(__bindgen_anon_1.io.direction), direction as u8);
        self.run.write(run_off!(__bindgen_anon_1.io.size), size);
        self.run.write(run_off!(__bindgen_anon_1.io.port), port);
        self.run.write(run_off!(__bindgen_anon_1.io.count), count);
        self.run
            .write(run_off!(__bindgen_anon_1.io.data_offset), PIO_DATA_OFFSET);
    }

    /// Fills `kvm_run.mmio` for an MMIO exit.
    pub(crate) fn set_mmio(&self, gpa: u64, data: [u8; 8], len: u32, write: bool) {
        self.run
            .write(run_off!(__bindgen_anon_1.mmio.phys_addr), gpa);
        self.run.write(run_off!(__bindgen_anon_1.mmio.data), data);
        self.run.write(run_off!(__bindgen_anon_1.mmio.len), len);
        self.run
            .write(run_off!(__bindgen_anon_1.mmio.is_write), u8::from(write));
    }

    /// `kvm_run.mmio.data` as userspace left it.
    pub(crate) fn mmio_data(&self) -> [u8; 8] {
        self.run.read(run_off!(__bindgen_anon_1.mmio.data))
    }

    /// Fills `kvm_run.fail_entry`.
    pub(crate) fn set_fail_entry(&self, reason: u64, cpu: u32) {
        self.run.write(
            run_off!(__bindgen_anon_1.fail_entry.hardware_entry_failure_reason),
            reason,
        );
        self.run
            .write(run_off!(__bindgen_anon_1.fail_entry.cpu), cpu);
    }

    /// Fills `kvm_run.internal` (suberror and up to 16 words of data).
    pub(crate) fn set_internal(&self, suberror: u32, data: &[u64]) {
        const MAX: usize = 16;
        let mut words = [0u64; MAX];
        for (w, d) in words.iter_mut().zip(data) {
            *w = *d;
        }
        self.run
            .write(run_off!(__bindgen_anon_1.internal.suberror), suberror);
        self.run.write(
            run_off!(__bindgen_anon_1.internal.ndata),
            data.len().min(MAX) as u32,
        );
        self.run
            .write(run_off!(__bindgen_anon_1.internal.data), words);
    }

    /// Fills `kvm_run.eoi` (KVM_EXIT_IOAPIC_EOI).
    pub(crate) fn set_eoi_vector(&self, vector: u8) {
        self.run
            .write(run_off!(__bindgen_anon_1.eoi.vector), vector);
    }

    /// Fills `kvm_run.tpr_access`.
    pub(crate) fn set_tpr_access(&self, rip: u64, is_write: bool) {
        self.run
            .write(run_off!(__bindgen_anon_1.tpr_access.rip), rip);
        self.run.write(
            run_off!(__bindgen_anon_1.tpr_access.is_write),
            u32::from(is_write),
        );
        self.run
            .write(run_off!(__bindgen_anon_1.tpr_access.pad), 0u32);
    }

    /// Fills `kvm_run.debug.arch`.
    pub(crate) fn set_debug(&self, exception: u32, pc: u64, dr6: u64, dr7: u64) {
        self.run
            .write(run_off!(__bindgen_anon_1.debug.arch.exception), exception);
        self.run
            .write(run_off!(__bindgen_anon_1.debug.arch.pad), 0u32);
        self.run.write(run_off!(__bindgen_anon_1.debug.arch.pc), pc);
        self.run
            .write(run_off!(__bindgen_anon_1.debug.arch.dr6), dr6);
        self.run
            .write(run_off!(__bindgen_anon_1.debug.arch.dr7), dr7);
    }

    /// Fills `kvm_run.memory_fault`.
    pub(crate) fn set_memory_fault(&self, gpa: u64, size: u64, flags: u64) {
        self.run
            .write(run_off!(__bindgen_anon_1.memory_fault.flags), flags);
        self.run
            .write(run_off!(__bindgen_anon_1.memory_fault.gpa), gpa);
        self.run
            .write(run_off!(__bindgen_anon_1.memory_fault.size), size);
    }

    /// Fills `kvm_run.hypercall` (`ret` zeroed, as upstream does for QEMU).
    pub(crate) fn set_hypercall(&self, nr: u64, args: [u64; 3], flags: u64) {
        self.run.write(run_off!(__bindgen_anon_1.hypercall.nr), nr);
        self.run.write(
            run_off!(__bindgen_anon_1.hypercall.args),
            [args[0], args[1], args[2], 0, 0, 0],
        );
        self.run
            .write(run_off!(__bindgen_anon_1.hypercall.ret), 0u64);
        self.run.write(
            run_off!(__bindgen_anon_1.hypercall.__bindgen_anon_1.flags),
            flags,
        );
    }

    /// `kvm_run.hypercall.ret` as userspace left it.
    pub(crate) fn hypercall_ret(&self) -> u64 {
        self.run.read(run_off!(__bindgen_anon_1.hypercall.ret))
    }

    /// Fills `kvm_run.msr` (KVM_EXIT_X86_RDMSR/WRMSR): `error` and the pad
    /// zeroed, the `KVM_MSR_EXIT_REASON_*`, the MSR and (WRMSR) the data.
    pub(crate) fn set_msr(&self, reason: u32, index: u32, data: u64) {
        self.run.write(run_off!(__bindgen_anon_1.msr.error), 0u8);
        self.run.write(run_off!(__bindgen_anon_1.msr.pad), [0u8; 7]);
        self.run
            .write(run_off!(__bindgen_anon_1.msr.reason), reason);
        self.run.write(run_off!(__bindgen_anon_1.msr.index), index);
        self.run.write(run_off!(__bindgen_anon_1.msr.data), data);
    }

    /// `kvm_run.msr.error` (non-zero: the guest gets #GP) and `.data` (the
    /// RDMSR result) as userspace left them.
    pub(crate) fn msr_result(&self) -> (bool, u64) {
        let error: u8 = self.run.read(run_off!(__bindgen_anon_1.msr.error));
        (
            error != 0,
            self.run.read(run_off!(__bindgen_anon_1.msr.data)),
        )
    }

    /// Copies `data` into the PIO data page at `offset`.
    pub(crate) fn write_pio(&self, offset: usize, data: &[u8]) {
        self.pio.copy_in(offset, data);
    }

    /// Copies from the PIO data page at `offset` into `buf`.
    pub(crate) fn read_pio(&self, offset: usize, buf: &mut [u8]) {
        self.pio.copy_out(offset, buf);
    }
}
