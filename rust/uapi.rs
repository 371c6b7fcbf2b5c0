// SPDX-License-Identifier: GPL-2.0
//! The KVM userspace ABI: bindgen output over our `usr/include/linux/kvm.h`
//! (checked against the kernel's header by `scripts/uapi-check.sh`).
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    unsafe_op_in_unsafe_fn,
    improper_ctypes
)]

use kernel::ffi;
use pin_init::MaybeZeroable;

include!("uapi_generated.rs");

/// Marks uapi structs as plain old data for `UserSlice` reads and writes.
macro_rules! pod {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: a uapi struct of integers (and arrays and unions of
            // them) whose padding is explicit, as the uapi requires: every
            // bit pattern is valid and no byte is uninitialised.
            unsafe impl kernel::transmute::FromBytes for $t {}
            // SAFETY: as above.
            unsafe impl kernel::transmute::AsBytes for $t {}
        )*
    };
}

pod!(
    kvm_regs,
    kvm_sregs,
    kvm_segment,
    kvm_dtable,
    kvm_fpu,
    kvm_userspace_memory_region,
    kvm_userspace_memory_region2,
    kvm_dirty_log,
    kvm_msr_entry,
    kvm_msrs,
    kvm_msr_list,
    kvm_cpuid_entry2,
    kvm_cpuid2,
    kvm_xcrs,
    kvm_xsave,
    kvm_vcpu_events,
    kvm_mp_state,
    kvm_vapic_addr,
    kvm_tpr_access_ctl,
    kvm_translation,
    kvm_guest_debug,
    kvm_interrupt,
    kvm_debugregs,
    kvm_clock_data,
    kvm_signal_mask,
    kvm_enable_cap,
    kvm_clear_dirty_log,
    kvm_irqchip,
    kvm_irq_routing,
    kvm_msi,
    kvm_pit_config,
    kvm_irq_level,
    kvm_lapic_state,
    kvm_irqfd,
    kvm_ioeventfd,
    kvm_coalesced_mmio_zone,
);
