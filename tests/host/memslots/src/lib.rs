//! Host build of pure/memslots/ (the same file kvm.ko compiles), with the
//! definitions it uses from pure/defs/.
#![no_std]

#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
#[path = "../../../../pure/memslots/mod.rs"]
pub mod memslots;
