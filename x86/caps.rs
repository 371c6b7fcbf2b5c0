// SPDX-License-Identifier: GPL-2.0
//! `KVM_CHECK_EXTENSION`: which capabilities this KVM offers.
//!
//! Answers only for what is really implemented, with upstream's values;
//! everything else is 0, so userspace falls back or fails cleanly instead
//! of relying on a feature that is not there (e.g. no SMM address space,
//! so `KVM_CAP_MULTI_ADDRESS_SPACE` is 1 where upstream says 2).

use crate::{
    ext::uapi::*,
    memslots, x86::regs,
    virt::vm::{Vm, MAX_VCPUS, MAX_VCPU_IDS},
};

/// `KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET`.
pub(crate) const MANUAL_DIRTY_LOG_CAPS: u64 = 3;
/// Hypercalls userspace may take over (`KVM_EXIT_HYPERCALL_VALID_MASK`):
/// KVM_HC_MAP_GPA_RANGE.
pub(crate) const EXIT_HYPERCALL_VALID: u64 = 1 << 12;
/// `KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC`.
pub(crate) const CLOCK_VALID_FLAGS: u32 = 2 | 4 | 8;

/// The answer to `KVM_CHECK_EXTENSION(cap)` on `/dev/kvm` (`vm` is `None`)
/// or on a VM fd.
pub(crate) fn check(_vm: Option<&Vm>, cap: usize) -> isize {
    let Ok(cap) = u32::try_from(cap) else { return 0 };
    match cap {
        KVM_CAP_USER_MEMORY
        | KVM_CAP_USER_MEMORY2
        | KVM_CAP_DESTROY_MEMORY_REGION_WORKS
        | KVM_CAP_JOIN_MEMORY_REGIONS_WORKS
        | KVM_CAP_INTERNAL_ERROR_DATA
        | KVM_CAP_CHECK_EXTENSION_VM
        | KVM_CAP_ENABLE_CAP_VM
        | KVM_CAP_HLT
        | KVM_CAP_SET_TSS_ADDR
        | KVM_CAP_EXT_CPUID
        | KVM_CAP_NOP_IO_DELAY
        | KVM_CAP_MP_STATE
        | KVM_CAP_SYNC_MMU
        | KVM_CAP_USER_NMI
        | KVM_CAP_SET_IDENTITY_MAP_ADDR
        | KVM_CAP_VCPU_EVENTS
        | KVM_CAP_DEBUGREGS
        | KVM_CAP_XSAVE
        | KVM_CAP_XCRS
        | KVM_CAP_GET_TSC_KHZ
        | KVM_CAP_READONLY_MEM
        | KVM_CAP_IMMEDIATE_EXIT
        | KVM_CAP_SET_GUEST_DEBUG
        | KVM_CAP_ENABLE_CAP
        | KVM_CAP_MEMORY_FAULT_INFO
        // The in-kernel irqchip (PIC, IOAPIC, LAPIC, PIT) and routing.
        | KVM_CAP_IRQCHIP
        | KVM_CAP_SIGNAL_MSI
        | KVM_CAP_IRQ_INJECT_STATUS
        | KVM_CAP_PIT
        | KVM_CAP_PIT2
        | KVM_CAP_PIT_STATE2
        | KVM_CAP_TSC_DEADLINE_TIMER
        | KVM_CAP_IOAPIC_POLARITY_IGNORED
        | KVM_CAP_IRQFD
        | KVM_CAP_IRQFD_RESAMPLE
        | KVM_CAP_IOEVENTFD
        | KVM_CAP_IOEVENTFD_NO_LENGTH
        | KVM_CAP_IOEVENTFD_ANY_LENGTH
        | KVM_CAP_COALESCED_PIO => 1,
        KVM_CAP_COALESCED_MMIO => KVM_COALESCED_MMIO_PAGE_OFFSET as isize,
        // QEMU sizes its GSI table from this (KVM_MAX_IRQ_ROUTES).
        KVM_CAP_IRQ_ROUTING => crate::irqchip::uapi::KVM_MAX_IRQ_ROUTES as isize,
        KVM_CAP_NR_VCPUS => num_online_cpus().min(MAX_VCPUS) as isize,
        KVM_CAP_MAX_VCPUS => MAX_VCPUS as isize,
        KVM_CAP_MAX_VCPU_ID => MAX_VCPU_IDS as isize,
        KVM_CAP_NR_MEMSLOTS => memslots::USER_MEM_SLOTS as isize,
        KVM_CAP_MULTI_ADDRESS_SPACE => memslots::ADDRESS_SPACE_NUM as isize,
        KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 => MANUAL_DIRTY_LOG_CAPS as isize,
        KVM_CAP_EXIT_HYPERCALL => EXIT_HYPERCALL_VALID as isize,
        KVM_CAP_ADJUST_CLOCK => CLOCK_VALID_FLAGS as isize,
        KVM_CAP_XSAVE2 => regs::xsave_size() as isize,
        KVM_CAP_MCE => crate::x86::msrs::MAX_MCE_BANKS as isize,
        KVM_CAP_VAPIC | KVM_CAP_SET_BOOT_CPU_ID | KVM_CAP_SPLIT_IRQCHIP => 1,
        _ => 0,
    }
}

fn num_online_cpus() -> usize {
    // SAFETY: reads a counter.
    unsafe { crate::ext::bindings::rkvm_num_online_cpus() as usize }
}
