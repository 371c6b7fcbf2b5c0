// SPDX-License-Identifier: GPL-2.0
//! kvm.ko: rkvm's generic KVM core.
//!
//! This crate root only wires the modules together; see DESIGN.md. The
//! vendor modules (kvm-amd, kvm-intel) use this crate's `pub` items through
//! `--extern kvm` and register an [`arch::ArchOps`] implementation.

use kernel::prelude::*;

#[path = "../rust/mod.rs"]
pub mod ext;

pub mod arch;
mod caps;
mod cpuid;
mod dev;
mod emulator;
mod events;
mod apic;
mod interrupts;
mod iodev;
mod eventfds;
mod coalesced_mmio;
mod kick;
mod kvmclock;
mod timer;
mod vm_irq;
pub mod exit;
pub mod ioctl;
mod memslot;
mod mmu;
mod msrs;
mod regs;
mod run;
mod run_page;
mod supported;
mod vcpu;
mod vm;

// Pure components (DESIGN.md section 3): the same files the host tests in
// tests/host build.
#[path = "cpuid_caps/mod.rs"]
pub mod cpuid_caps;
#[path = "emulate/mod.rs"]
pub mod emulate;
#[path = "irqchip/mod.rs"]
pub mod irqchip;
#[path = "memslots/mod.rs"]
pub mod memslots;
#[path = "pvclock/mod.rs"]
pub mod pvclock;

module! {
    type: KvmModule,
    name: "kvm",
    authors: ["rkvm developers"],
    description: "Kernel-based Virtual Machine core (rkvm, Rust)",
    license: "GPL",
    alias: ["devname:kvm", "char-major-10-232"],
}

/// The misc device minor of `/dev/kvm` (`KVM_MINOR` in miscdevice.h).
const KVM_MINOR: u32 = 232;

#[pin_data]
struct KvmModule {
    #[pin]
    _dev: ext::misc::Registration,
}

impl kernel::InPlaceModule for KvmModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: runs once, before `/dev/kvm` exists and before any vendor
        // module can call `arch::register` (they depend on this module).
        unsafe { arch::KVM_LOCK.init() };
        try_pin_init!(Self {
            _dev <- ext::misc::Registration::register::<dev::KvmDev>(KVM_MINOR, c"kvm"),
        })
    }
}
