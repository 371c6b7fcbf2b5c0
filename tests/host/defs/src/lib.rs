//! Host build of pure/defs/: the very same files kvm.ko compiles, pulled in
//! with `#[path]`. `no_std` here enforces the core-only rule at compile
//! time; the tests in tests/*.rs may use std freely.
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

// x86 architectural definitions: pure/defs/mod.rs (documented there).
#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
