//! Host build of pure/pvclock/ (the same file kvm.ko compiles), with the
//! definitions it uses from pure/defs/.
#![no_std]

#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
#[path = "../../../../pure/pvclock/mod.rs"]
pub mod pvclock;
