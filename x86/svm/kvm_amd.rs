// SPDX-License-Identifier: GPL-2.0
//! kvm-amd.ko: rkvm's AMD SVM backend.
//!
//! Registers an [`ArchOps`] implementation with kvm.ko. Per CPU it takes a
//! reference on the kernel's SVM enable count (`x86_virt_get_ref`, which
//! sets EFER.SVME, exactly as upstream kvm-amd does in 7.3) and points
//! `MSR_VM_HSAVE_PA` at a host save area page of its own.

use kernel::{cpu, prelude::*, sync::Arc};
use kvm::{
    ext::{bindings as rb, msr},
    x86::vendor::{self, ArchOps, TdpFormat, VcpuArch, VendorCaps},
};

mod cpuid;
mod params;
mod percpu;
mod vcpu;
mod vmcb;

module! {
    type: KvmAmd,
    name: "kvm_amd",
    authors: ["rkvm developers"],
    description: "KVM support for AMD SVM (rkvm, Rust)",
    license: "GPL",
    // Autoload by CPU feature, the alias upstream's MODULE_DEVICE_TABLE(x86cpu,
    // svm_cpu_id) generates: X86_FEATURE_SVM (6*32+2) in hex.
    alias: ["cpu:type:x86,ven*fam*mod*:feature:*00C2*"],
}
const _: () = assert!(rb::X86_FEATURE_SVM == 0xc2, "the module alias above");

struct KvmAmd {
    _registration: vendor::Registration,
}

impl kernel::Module for KvmAmd {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let this_cpu = cpu::CpuId::current().as_u32();
        if !cpuid::is_amd_or_hygon() {
            pr_err!("CPU {} isn't AMD or Hygon\n", this_cpu);
            return Err(EOPNOTSUPP);
        }
        if !msr::cpu_has(rb::X86_FEATURE_SVM) {
            pr_err!("SVM not supported by CPU {}\n", this_cpu);
            return Err(EOPNOTSUPP);
        }
        if msr::read(rb::MSR_VM_CR) & u64::from(rb::SVM_VM_CR_SVM_DIS_MASK) != 0 {
            pr_err!("SVM disabled (by BIOS) in MSR_VM_CR on CPU {}\n", this_cpu);
            return Err(EOPNOTSUPP);
        }
        params::check_at_load()?;
        let svm = Svm::new()?;
        // The one load line (upstream prints "Nested Paging enabled" or
        // "disabled").
        let (nrips, flush_by_asid) = (svm.shared.nrips, svm.shared.flush_by_asid);
        let svm: Arc<dyn ArchOps> = Arc::new(svm, GFP_KERNEL)?;
        let registration = vendor::register(c"kvm_amd", svm, module)?;
        pr_info!(
            "rkvm {}: SVM, {}, nrips={}, flush_by_asid={}, max_asid={}\n",
            kvm::VERSION,
            if params::NPT.get() {
                "NPT"
            } else {
                "shadow paging (npt=0)"
            },
            u8::from(nrips),
            u8::from(flush_by_asid),
            cpuid::max_asid()
        );
        Ok(Self {
            _registration: registration,
        })
    }
}

/// The SVM backend.
struct Svm {
    shared: Arc<percpu::Shared>,
}

impl Svm {
    fn new() -> Result<Self> {
        Ok(Self {
            shared: Arc::new(percpu::Shared::new()?, GFP_KERNEL)?,
        })
    }
}

impl ArchOps for Svm {
    fn enable_cpu(&self, cpu: u32) -> Result {
        // SAFETY: no memory-safety preconditions; sets EFER.SVME on this
        // CPU (balanced by x86_virt_put_ref in `disable_cpu`).
        kernel::error::to_result(unsafe { rb::x86_virt_get_ref(rb::X86_FEATURE_SVM as i32) })?;
        if let Err(e) = self.shared.cpu_enabled(cpu) {
            // SAFETY: balances the reference just taken.
            unsafe { rb::x86_virt_put_ref(rb::X86_FEATURE_SVM as i32) };
            return Err(e);
        }
        Ok(())
    }

    fn disable_cpu(&self, _cpu: u32) {
        // SAFETY: balances the reference taken in `enable_cpu` on this CPU.
        unsafe { rb::x86_virt_put_ref(rb::X86_FEATURE_SVM as i32) };
        msr::write(rb::MSR_VM_HSAVE_PA, 0);
    }

    fn trace_isa(&self) -> u32 {
        kvm::ext::trace::ISA_SVM
    }

    fn tdp_format(&self) -> TdpFormat {
        vmcb::NPT_FORMAT
    }

    fn tdp_enabled(&self) -> bool {
        crate::params::NPT.get()
    }

    fn cpu_caps(&self) -> &'static dyn VendorCaps {
        &kvm::cpuid_caps::SvmCaps
    }

    fn nested_state_size(&self) -> u32 {
        // struct kvm_nested_state and the VMCB (upstream's
        // svm_get_nested_state(NULL)), with or without `nested`.
        128 + kvm::ext::uapi::KVM_STATE_NESTED_SVM_VMCB_SIZE
    }

    fn nested(&self) -> bool {
        crate::params::NESTED.get() != 0
    }

    fn reset_ucode_rev(&self) -> u64 {
        // As upstream's init_vmcb().
        0x0100_0065
    }

    fn disable_exits_supported(&self) -> u64 {
        vendor::DISABLE_EXITS_ALL
    }

    fn create_vcpu(&self, _id: u32, tdp_root: u64) -> Result<KBox<dyn VcpuArch>> {
        let v: KBox<dyn VcpuArch> = KBox::new(
            vcpu::SvmVcpu::new(self.shared.clone(), tdp_root, self.nested())?,
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(v)
    }
}
