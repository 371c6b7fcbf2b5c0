//! Host build of x86/pvclock/ (the same file kvm.ko compiles).
#![no_std]

#[path = "../../../../x86/pvclock/mod.rs"]
pub mod pvclock;
