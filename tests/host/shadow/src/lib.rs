//! Host build of pure/shadow/ (the shadow MMU's pure half) and of the
//! guest page-table walker it shares with the emulator (pure/emulate/),
//! the same files kvm.ko compiles, with the definitions from pure/defs/.
#![no_std]

#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
#[path = "../../../../pure/emulate/mod.rs"]
pub mod emulate;
#[path = "../../../../pure/shadow/mod.rs"]
pub mod shadow;
