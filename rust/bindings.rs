// SPDX-License-Identifier: GPL-2.0
//! Raw bindings from our own bindgen run over `rust/bindings_helper.h`.
//!
//! Types not allowlisted in `rust/bindgen_parameters` resolve to
//! `kernel::bindings` through the glob import below, so these functions take
//! and return the kernel crate's own types.
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

#[allow(unused_imports)]
use kernel::bindings::*;
use kernel::ffi;

include!("bindings_generated.rs");
