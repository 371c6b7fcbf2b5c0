//! Host build of pure/emulate/: the very same files kvm.ko compiles, pulled in
//! with `#[path]`, with the definitions it uses from pure/defs/. `no_std` here
//! enforces the core-only rule at compile time; tests (unit tests under
//! cfg(test) and tests/*.rs) may use std freely.
#![no_std]
#[cfg(test)]
extern crate std;

#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
#[path = "../../../../pure/emulate/mod.rs"]
pub mod emulate;
