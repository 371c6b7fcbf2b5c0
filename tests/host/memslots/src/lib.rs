//! Host build of x86/memslots/ (the same file kvm.ko compiles).
#![no_std]

#[path = "../../../../x86/memslots/mod.rs"]
pub mod memslots;
