//! Host build of x86/cpuid_caps/ (the same files kvm.ko compiles).
#![no_std]

#[path = "../../../../x86/cpuid_caps/mod.rs"]
pub mod cpuid_caps;
