// SPDX-License-Identifier: GPL-2.0
//! kvm.ko: rkvm's generic KVM core.
//!
//! This crate root only wires the modules together; see DESIGN.md. The
//! vendor modules (kvm-amd, kvm-intel) use this crate's `pub` items through
//! `--extern kvm` and register an [`x86::vendor::ArchOps`] implementation.

use kernel::prelude::*;

#[path = "../rust/mod.rs"]
pub mod ext;

/// Generic KVM (upstream's virt/kvm): /dev/kvm, VMs, vCPUs, memory,
/// eventfds, the run page, kicks.
#[path = "../virt/kvm/mod.rs"]
pub mod virt;

/// x86 common (upstream's arch/x86/kvm): the vendor interface, the run
/// loop and exits, CPUID, MSRs, registers, interrupts, the MMU.
#[path = "x86.rs"]
pub mod x86;

// Pure components (core only, host-tested in tests/host): the same files
// the host tests build.
#[path = "../pure/cpuid_caps/mod.rs"]
pub mod cpuid_caps;
#[path = "../pure/defs/mod.rs"]
pub mod defs;
#[path = "../pure/emulate/mod.rs"]
pub mod emulate;
#[path = "../pure/irqchip/mod.rs"]
pub mod irqchip;
#[path = "../pure/memslots/mod.rs"]
pub mod memslots;
#[path = "../pure/nested_svm/mod.rs"]
pub mod nested_svm;
#[path = "../pure/pvclock/mod.rs"]
pub mod pvclock;
#[path = "../pure/shadow/mod.rs"]
pub mod shadow;

module! {
    type: KvmModule,
    name: "kvm",
    authors: ["rkvm developers"],
    description: "Kernel-based Virtual Machine core (rkvm, Rust)",
    license: "GPL",
    alias: ["devname:kvm", "char-major-10-232"],
}

/// rkvm's version: the `VERSION` file, plus `-g<commit>[-dirty]` when
/// built from a git clone (`rust/version_generated.rs`, written by Kbuild).
/// The vendor modules print it too.
pub const VERSION: &str = include!("../rust/version_generated.rs");

/// The misc device minor of `/dev/kvm` (`KVM_MINOR` in miscdevice.h).
const KVM_MINOR: u32 = 232;

#[pin_data]
struct KvmModule {
    #[pin]
    _dev: ext::misc::Registration,
    /// After `_dev`: dropped once no VM can exist any more.
    _debugfs: virt::debugfs::Debugfs,
    /// Last: drained (deferred irqfd teardown) and destroyed at exit.
    _cleanup: ext::workqueue::CleanupQueue,
}

impl kernel::InPlaceModule for KvmModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        // SAFETY: runs once, before `/dev/kvm` exists and before any vendor
        // module can call `vendor::register` (they depend on this module).
        unsafe { x86::vendor::KVM_LOCK.init() };
        pin_init::pin_init_scope(|| {
            virt::params::check_at_load()?;
            x86::params::check_at_load()?;
            let debugfs = virt::debugfs::Debugfs::new()?;
            let cleanup = ext::workqueue::CleanupQueue::new()?;
            Ok(try_pin_init!(Self {
                _dev <- ext::misc::Registration::register::<virt::dev::KvmDev>(KVM_MINOR, c"kvm"),
                _debugfs: debugfs,
                _cleanup: cleanup,
            })
            .pin_chain(|_| {
                pr_info!(
                    "rkvm {}: API {}, TDP MMU, halt_poll_ns={}\n",
                    VERSION,
                    virt::ioctl::KVM_API_VERSION,
                    virt::params::HALT_POLL_NS.get()
                );
                Ok(())
            }))
        })
    }
}
