// SPDX-License-Identifier: GPL-2.0
//! kvm-intel.ko: rkvm's Intel VMX backend.
//!
//! Not implemented yet (VMX testing needs Bochs, see DESIGN.md): on a CPU
//! without VMX it refuses to load with one line and `EOPNOTSUPP`, like the
//! in-tree module; on a VMX CPU it refuses too, saying so, rather than
//! offering a /dev/kvm whose vCPUs cannot run.

use kernel::{cpu, prelude::*};
use kvm::ext::{bindings as rb, msr};

module! {
    type: KvmIntel,
    name: "kvm_intel",
    authors: ["rkvm developers"],
    description: "KVM support for Intel VMX (rkvm, Rust)",
    license: "GPL",
    // Autoload by CPU feature, the alias upstream's MODULE_DEVICE_TABLE(x86cpu,
    // vmx_cpu_id) generates: X86_FEATURE_VMX (4*32+5) in hex.
    alias: ["cpu:type:x86,ven*fam*mod*:feature:*0085*"],
}

struct KvmIntel;

impl kernel::Module for KvmIntel {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        if !msr::cpu_has(rb::X86_FEATURE_VMX) {
            pr_err!(
                "VMX not supported by CPU {}\n",
                cpu::CpuId::current().as_u32()
            );
            return Err(EOPNOTSUPP);
        }
        pr_err!("the VMX backend is not implemented yet in rkvm\n");
        Err(EOPNOTSUPP)
    }
}
