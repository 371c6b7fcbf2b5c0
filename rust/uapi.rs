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
