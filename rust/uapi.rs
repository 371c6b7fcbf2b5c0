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
    clippy::cast_lossless,
    clippy::as_underscore,
    clippy::missing_safety_doc,
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
    kvm_sregs2,
    kvm_device_attr,
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
    kvm_stats_header,
);

// SAFETY: read from userspace only (KVM_X86_SET_MSR_FILTER), never
// written back: integers and a raw pointer (never dereferenced, only its
// address is used), for which every bit pattern is valid; the implicit
// padding after `base` is only ever read, which `FromBytes` allows.
unsafe impl kernel::transmute::FromBytes for kvm_msr_filter {}

impl kvm_msr_filter_range {
    /// The userspace address of the bitmap.
    pub fn bitmap_addr(&self) -> usize {
        self.bitmap as usize
    }
}

// Reads of the uapi unions whose members are all plain integers of the
// same size (any bit pattern is valid in each), so no caller needs
// `unsafe` for them.

impl kvm_irq_level {
    /// `irq` (input of KVM_IRQ_LINE[_STATUS]; `status` shares the word).
    pub fn irq(&self) -> u32 {
        // SAFETY: both members are 32-bit integers.
        unsafe { self.__bindgen_anon_1.irq }
    }
}

impl kvm_dirty_log {
    /// The userspace address of the bitmap.
    pub fn bitmap_addr(&self) -> u64 {
        // SAFETY: the pointer and `padding2` are both 64-bit plain data.
        unsafe { self.__bindgen_anon_1.padding2 }
    }
}

impl kvm_clear_dirty_log {
    /// The userspace address of the bitmap.
    pub fn bitmap_addr(&self) -> u64 {
        // SAFETY: as for `kvm_dirty_log`.
        unsafe { self.__bindgen_anon_1.padding2 }
    }
}

impl kvm_coalesced_mmio_zone {
    /// `pio` (the word is `pad` in older headers).
    pub fn pio(&self) -> u32 {
        // SAFETY: both members are 32-bit integers.
        unsafe { self.__bindgen_anon_1.pio }
    }
}

impl kvm_irqchip {
    /// The 512-byte `chip` union as bytes.
    pub fn chip_bytes(&self) -> [u8; 512] {
        // SAFETY: `dummy` spans the union; every member is plain data.
        unsafe { self.chip.dummy }.map(|b| b as u8)
    }

    /// Sets the `chip` union from `bytes` (the rest zeroed).
    pub fn set_chip_bytes(&mut self, bytes: &[u8]) {
        let mut d = [0 as ffi::c_char; 512];
        for (dst, src) in d.iter_mut().zip(bytes) {
            *dst = *src as ffi::c_char;
        }
        self.chip.dummy = d;
    }
}
