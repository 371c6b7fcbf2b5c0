// SPDX-License-Identifier: GPL-2.0
//! rkvm's tracepoints (the "kvm" trace system of include/kvm_events.h),
//! as safe functions: one per event, taking the event's values, plus
//! `<event>_enabled()` for callers whose values cost something to gather.
//! A disabled event costs a static-key test (a patched jump with
//! CONFIG_JUMP_LABEL), as upstream's `trace_*()` calls.
//!
//! The pattern is the kernel crate's `declare_trace!`, over our own
//! bindgen run (the events live in kvm.ko, not in `kernel::bindings`).

use crate::ext::bindings;

macro_rules! events {
    ($($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?);)*) => {$(
        kernel::macros::paste! {
            $(#[$m])*
            #[inline(always)]
            // The arguments are the event's fields, as upstream's TP_PROTO.
            #[allow(clippy::too_many_arguments)]
            pub fn $name($($arg: $ty),*) {
                if [<$name _enabled>]() {
                    // SAFETY: the event takes plain values, which its C
                    // side only copies into the trace buffer.
                    unsafe { bindings::[<rust_do_trace_ $name>]($($arg),*) }
                }
            }

            #[doc = concat!("Whether `", stringify!($name), "` is enabled.")]
            #[inline(always)]
            pub fn [<$name _enabled>]() -> bool {
                // SAFETY: reading a tracepoint's static key is always allowed.
                unsafe {
                    kernel::static_branch_unlikely!(
                        bindings::[<__tracepoint_ $name>],
                        kernel::bindings::tracepoint,
                        key
                    )
                }
            }
        }
    )*};
}

/// `isa` of `kvm_exit`: VMX.
pub const ISA_VMX: u32 = 1;
/// `isa` of `kvm_exit`: SVM.
pub const ISA_SVM: u32 = 2;

/// `kvm_mmio` type: a read userspace must complete.
pub const MMIO_READ_UNSATISFIED: u32 = 0;
/// `kvm_mmio` type: a read with its value.
pub const MMIO_READ: u32 = 1;
/// `kvm_mmio` type: a write.
pub const MMIO_WRITE: u32 = 2;

events! {
    /// Guest entry.
    fn kvm_entry(vcpu_id: u32, rip: usize, immediate_exit: bool, intr_info: u32, error_code: u32);
    /// A KVM_HC_* hypercall.
    fn kvm_hypercall(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize);
    /// Port I/O (`rw` 1: write); `val` is the first element.
    fn kvm_pio(rw: u32, port: u32, size: u32, count: u32, val: u32);
    /// CPUID emulated.
    fn kvm_cpuid(
        function: u32,
        index: u32,
        rax: usize,
        rbx: usize,
        rcx: usize,
        rdx: usize,
        found: bool,
        used_max_basic: bool,
    );
    /// LAPIC register access (`rw` 1: write).
    fn kvm_apic(rw: u32, reg: u32, val: u64);
    /// Guest exit: the vendor's raw exit code and its information.
    fn kvm_exit(
        exit_reason: u32,
        guest_rip: usize,
        isa: u32,
        info1: u64,
        info2: u64,
        intr_info: u32,
        error_code: u32,
        vcpu_id: u32,
        requests: u64,
    );
    /// Interrupt injection.
    fn kvm_inj_virq(vector: u32, soft: bool, reinjected: bool);
    /// Exception injection.
    fn kvm_inj_exception(exception: u32, has_error: bool, error_code: u32, reinjected: bool);
    /// A guest page fault (NPT/EPT violation) KVM handles.
    fn kvm_page_fault(vcpu_id: u32, guest_rip: usize, fault_address: u64, error_code: u64);
    /// MSR access (`write` 1: WRMSR; `exception`: it raised #GP).
    fn kvm_msr(write: u32, ecx: u32, data: u64, exception: bool);
    /// Control register access (`rw` 1: write).
    fn kvm_cr(rw: u32, cr: u32, val: usize);
    /// PIC pin set.
    fn kvm_pic_set_irq(chip: u8, pin: u8, elcr: u8, imr: u8, coalesced: bool);
    /// IPI sent through the ICR.
    fn kvm_apic_ipi(icr_low: u32, dest_id: u32);
    /// Interrupt accepted by a LAPIC.
    fn kvm_apic_accept_irq(apicid: u32, dm: u16, tm: u16, vec: u8);
    /// End of interrupt.
    fn kvm_eoi(apicid: u32, vector: i32);
    /// MSI delivered.
    fn kvm_msi_set_irq(address: u64, data: u64);
    /// KVM_RUN returns to userspace (`errno` negative on error).
    fn kvm_userspace_exit(reason: u32, errno: i32);
    /// A halted vCPU woke up.
    fn kvm_vcpu_wakeup(ns: u64, waited: bool, valid: bool);
    /// A GSI set (KVM_IRQ_LINE, irqfd).
    fn kvm_set_irq(gsi: u32, level: i32, irq_source_id: i32);
    /// MMIO access (`kind` one of the `MMIO_*` types).
    fn kvm_mmio(kind: u32, len: u32, gpa: u64, val: u64);
    /// Guest FPU loaded (1) or put (0).
    fn kvm_fpu(load: i32);
}
