//! Host build of pure/memslots/ (the same file kvm.ko compiles).
#![no_std]

#[path = "../../../../pure/memslots/mod.rs"]
pub mod memslots;
