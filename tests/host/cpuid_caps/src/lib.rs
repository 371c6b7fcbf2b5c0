//! Host build of pure/cpuid_caps/ (the same files kvm.ko compiles).
#![no_std]

#[path = "../../../../pure/cpuid_caps/mod.rs"]
pub mod cpuid_caps;
