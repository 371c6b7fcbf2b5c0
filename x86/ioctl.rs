// SPDX-License-Identifier: GPL-2.0
//! KVM ioctl numbers and API constants.
//!
//! The numbers come from our C header through bindgen (see
//! rust/uapi_helper.h), so Rust and C cannot disagree, and
//! scripts/uapi-check.sh holds the C header to the kernel's values.

pub use crate::ext::uapi::{
    KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_CREATE_VM, KVM_GET_API_VERSION, KVM_GET_CPUID2,
    KVM_GET_DEBUGREGS, KVM_GET_DIRTY_LOG, KVM_GET_EMULATED_CPUID, KVM_GET_FPU,
    KVM_GET_MP_STATE, KVM_GET_MSRS, KVM_GET_MSR_FEATURE_INDEX_LIST, KVM_GET_MSR_INDEX_LIST,
    KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_SUPPORTED_CPUID, KVM_GET_VCPU_EVENTS,
    KVM_GET_VCPU_MMAP_SIZE, KVM_GET_XCRS, KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_INTERRUPT, KVM_NMI,
    KVM_RUN, KVM_SET_CPUID2, KVM_SET_DEBUGREGS, KVM_SET_FPU, KVM_SET_GUEST_DEBUG,
    KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_MP_STATE, KVM_SET_MSRS, KVM_SET_REGS,
    KVM_SET_SIGNAL_MASK, KVM_SET_SREGS, KVM_SET_TSS_ADDR, KVM_SET_USER_MEMORY_REGION,
    KVM_SET_USER_MEMORY_REGION2, KVM_SET_VCPU_EVENTS, KVM_SET_XCRS, KVM_SET_XSAVE,
    KVM_TRANSLATE,
};

/// The ioctl type byte of KVM.
pub const KVMIO: u32 = crate::ext::uapi::KVMIO;

/// The answer to `KVM_GET_API_VERSION`.
pub const KVM_API_VERSION: isize = crate::ext::uapi::KVM_API_VERSION as isize;
