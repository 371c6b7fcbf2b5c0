//! Host build of pure/pvclock/ (the same file kvm.ko compiles).
#![no_std]

#[path = "../../../../pure/pvclock/mod.rs"]
pub mod pvclock;
