// SPDX-License-Identifier: GPL-2.0
//! kvm-intel.ko: rkvm's Intel VMX backend.
//!
//! So far it enables VMX per CPU through the kernel's `x86_virt_get_ref`
//! (which does VMXON in 7.3) and registers with kvm.ko; the VMCS and run
//! loop come with VMX testing under Bochs. On a CPU without VMX it refuses
//! to load with one line and `EOPNOTSUPP`, like the in-tree module.

use kernel::{cpu, prelude::*, sync::Arc};
use kvm::{
    arch::{self, ArchOps},
    ext::{bindings as rb, msr},
};

module! {
    type: KvmIntel,
    name: "kvm_intel",
    authors: ["rkvm developers"],
    description: "KVM support for Intel VMX (rkvm, Rust)",
    license: "GPL",
}

struct KvmIntel {
    _registration: arch::Registration,
}

impl kernel::Module for KvmIntel {
    fn init(module: &'static ThisModule) -> Result<Self> {
        if !msr::cpu_has(rb::X86_FEATURE_VMX) {
            pr_err!("VMX not supported by CPU {}\n", cpu::CpuId::current().as_u32());
            return Err(EOPNOTSUPP);
        }
        let vmx: Arc<dyn ArchOps> = Arc::new(Vmx, GFP_KERNEL)?;
        let registration = arch::register(c"kvm_intel", vmx, module)?;
        Ok(Self { _registration: registration })
    }
}

/// The VMX backend.
struct Vmx;

impl ArchOps for Vmx {
    fn enable_cpu(&self, _cpu: u32) -> Result {
        // SAFETY: no memory-safety preconditions; VMXON on this CPU,
        // balanced by `disable_cpu`.
        kernel::error::to_result(unsafe { rb::x86_virt_get_ref(rb::X86_FEATURE_VMX as i32) })
    }

    fn disable_cpu(&self, _cpu: u32) {
        // SAFETY: balances `enable_cpu` on this CPU.
        unsafe { rb::x86_virt_put_ref(rb::X86_FEATURE_VMX as i32) };
    }
}
