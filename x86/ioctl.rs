// SPDX-License-Identifier: GPL-2.0
//! KVM ioctl numbers and API constants.
//!
//! The numbers come from our C header through bindgen (see
//! rust/uapi_helper.h), so Rust and C cannot disagree, and
//! scripts/uapi-check.sh holds the C header to the kernel's values.

pub use crate::ext::uapi::{
    KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_CREATE_VM, KVM_GET_API_VERSION,
    KVM_GET_DIRTY_LOG, KVM_GET_EMULATED_CPUID, KVM_GET_MSR_FEATURE_INDEX_LIST,
    KVM_GET_MSR_INDEX_LIST, KVM_GET_SUPPORTED_CPUID, KVM_GET_VCPU_MMAP_SIZE,
    KVM_SET_TSS_ADDR, KVM_SET_USER_MEMORY_REGION,
};

/// The answer to `KVM_GET_API_VERSION`.
pub const KVM_API_VERSION: isize = crate::ext::uapi::KVM_API_VERSION as isize;
