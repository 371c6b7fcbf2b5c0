//! Host build of pure/irqchip/: the very same files kvm.ko compiles, pulled in
//! with `#[path]`, with the definitions it uses from pure/defs/. `no_std`
//! here enforces the core-only rule at compile time; tests (unit tests under
//! cfg(test) and tests/*.rs) may use std freely.
#![no_std]
#![deny(missing_docs)]
#[cfg(test)]
extern crate std;

// x86 architectural definitions: pure/defs/mod.rs (documented there).
#[path = "../../../../pure/defs/mod.rs"]
pub mod defs;
// The irqchip models: pure/irqchip/mod.rs (documented there).
#[path = "../../../../pure/irqchip/mod.rs"]
pub mod irqchip;
