//! Host build of pure/cpuid_caps/ (the same files kvm.ko compiles), with
//! the definitions it uses from pure/defs/.
#![no_std]

#[path = "../../../../pure/cpuid_caps/mod.rs"]
pub mod cpuid_caps;
#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
