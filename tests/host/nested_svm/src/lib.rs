//! Host build of pure/nested_svm/ (the same file kvm.ko compiles), with the
//! definitions it uses from pure/defs/.
#![no_std]

#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
#[path = "../../../../pure/nested_svm/mod.rs"]
pub mod nested_svm;
