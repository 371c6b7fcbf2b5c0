// SPDX-License-Identifier: GPL-2.0
//! `KVM_CHECK_EXTENSION` for the generic capabilities (upstream's
//! kvm_vm_ioctl_check_extension_generic()); the rest is x86's.
//!
//! Answers only for what is really implemented, with upstream's values;
//! everything else is 0, so userspace falls back or fails cleanly instead
//! of relying on a feature that is not there (e.g. no SMM address space,
//! so `KVM_CAP_MULTI_ADDRESS_SPACE` is 1 where upstream says 2).

use crate::{
    ext::uapi::*,
    irqchip, memslots,
    virt::{dirty_log::MANUAL_DIRTY_LOG_CAPS, vm::Vm},
    x86,
};

/// The answer to `KVM_CHECK_EXTENSION(cap)` on `/dev/kvm` (`vm` is `None`)
/// or on a VM fd.
pub(crate) fn check_extension(vm: Option<&Vm>, cap: usize) -> isize {
    let Ok(cap) = u32::try_from(cap) else {
        return 0;
    };
    match cap {
        KVM_CAP_USER_MEMORY
        | KVM_CAP_USER_MEMORY2
        | KVM_CAP_DESTROY_MEMORY_REGION_WORKS
        | KVM_CAP_JOIN_MEMORY_REGIONS_WORKS
        | KVM_CAP_INTERNAL_ERROR_DATA
        | KVM_CAP_IRQFD
        | KVM_CAP_CHECK_EXTENSION_VM
        | KVM_CAP_ENABLE_CAP_VM
        | KVM_CAP_IOEVENTFD_ANY_LENGTH
        | KVM_CAP_IRQFD_RESAMPLE
        // A VM's own halt-polling limit (KVM_ENABLE_CAP).
        | KVM_CAP_HALT_POLL
        // kvm_run.system_event has its ndata/data fields (rkvm reports no
        // system event on x86 so far, as upstream without Xen/Hyper-V/SEV).
        | KVM_CAP_SYSTEM_EVENT_DATA
        | KVM_CAP_BINARY_STATS_FD => 1,
        // Generic, upstream under CONFIG_KVM_MMIO.
        KVM_CAP_COALESCED_MMIO => KVM_COALESCED_MMIO_PAGE_OFFSET as isize,
        KVM_CAP_COALESCED_PIO => 1,
        // QEMU sizes its GSI table from this (KVM_MAX_IRQ_ROUTES).
        KVM_CAP_IRQ_ROUTING => irqchip::uapi::KVM_MAX_IRQ_ROUTES as isize,
        KVM_CAP_NR_MEMSLOTS => memslots::USER_MEM_SLOTS as isize,
        KVM_CAP_MULTI_ADDRESS_SPACE => memslots::ADDRESS_SPACE_NUM as isize,
        KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 => MANUAL_DIRTY_LOG_CAPS as isize,
        _ => x86::caps::check_extension(vm, cap),
    }
}
