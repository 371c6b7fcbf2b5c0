// SPDX-License-Identifier: GPL-2.0
//! kvm-amd.ko: rkvm's AMD SVM backend.
//!
//! Registers an [`ArchOps`] implementation with kvm.ko. Per CPU it takes a
//! reference on the kernel's SVM enable count (`x86_virt_get_ref`, which
//! sets EFER.SVME, exactly as upstream kvm-amd does in 7.3) and points
//! `MSR_VM_HSAVE_PA` at a host save area page of its own.

use kernel::{cpu, page::Page, prelude::*, sync::Arc};
use kvm::{
    arch::{self, ArchOps},
    ext::{bindings as rb, msr},
};

mod cpuid;

module! {
    type: KvmAmd,
    name: "kvm_amd",
    authors: ["rkvm developers"],
    description: "KVM support for AMD SVM (rkvm, Rust)",
    license: "GPL",
}

struct KvmAmd {
    _registration: arch::Registration,
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
        if msr::read(rb::MSR_VM_CR) & rb::SVM_VM_CR_SVM_DIS_MASK as u64 != 0 {
            pr_err!("SVM disabled (by BIOS) in MSR_VM_CR on CPU {}\n", this_cpu);
            return Err(EOPNOTSUPP);
        }
        if cpuid::has_npt() {
            pr_info!("Nested Paging enabled\n");
        }
        let svm: Arc<dyn ArchOps> = Arc::new(Svm::new()?, GFP_KERNEL)?;
        let registration = arch::register(c"kvm_amd", svm, module)?;
        Ok(Self { _registration: registration })
    }
}

/// The SVM backend: one host save area per possible CPU.
struct Svm {
    host_save_areas: KVec<Page>,
}

impl Svm {
    fn new() -> Result<Self> {
        let n = cpu::nr_cpu_ids() as usize;
        let mut host_save_areas = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            host_save_areas.push(Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?, GFP_KERNEL)?;
        }
        Ok(Self { host_save_areas })
    }

    fn host_save_area_pa(&self, cpu: u32) -> Result<u64> {
        let page = self.host_save_areas.get(cpu as usize).ok_or(EINVAL)?;
        // SAFETY: `page` is a live page owned by `self`.
        Ok(unsafe { rb::rkvm_page_to_phys(page.as_ptr()) })
    }
}

impl ArchOps for Svm {
    fn enable_cpu(&self, cpu: u32) -> Result {
        let hsave = self.host_save_area_pa(cpu)?;
        // SAFETY: no memory-safety preconditions; sets EFER.SVME on this
        // CPU (balanced by x86_virt_put_ref in `disable_cpu`).
        kernel::error::to_result(unsafe { rb::x86_virt_get_ref(rb::X86_FEATURE_SVM as i32) })?;
        msr::write(rb::MSR_VM_HSAVE_PA, hsave);
        Ok(())
    }

    fn disable_cpu(&self, _cpu: u32) {
        // SAFETY: balances the reference taken in `enable_cpu` on this CPU.
        unsafe { rb::x86_virt_put_ref(rb::X86_FEATURE_SVM as i32) };
        msr::write(rb::MSR_VM_HSAVE_PA, 0);
    }
}
