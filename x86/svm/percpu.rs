// SPDX-License-Identifier: GPL-2.0
//! What kvm-amd keeps per host CPU (the host save areas and the ASID
//! allocator) and what all vCPUs share (the permission maps).

use crate::cpuid;
use core::{
    cell::UnsafeCell,
    sync::atomic::{AtomicU64, Ordering},
};
use kernel::{cpu, page::Page, prelude::*};
use kvm::defs::msr::MSR_TSC_AUX;
use kvm::ext::{bindings as rb, msr, pages::ContigPages};

/// ASIDs handed out on one CPU in the current generation. A new
/// generation starts (flushing every ASID) when they run out, and when
/// virtualization is (re-)enabled on the CPU.
pub(crate) struct AsidGen {
    pub(crate) generation: u64,
    pub(crate) next: u32,
    pub(crate) min: u32,
    pub(crate) max: u32,
}

/// One host CPU's SVM state.
pub(crate) struct PerCpu {
    /// VM_HSAVE_PA: where VMRUN saves the host state it switches.
    hsave: Page,
    /// Where VMSAVE keeps the host's FS/GS/TR/LDTR/syscall MSRs.
    host_vmsave: Page,
    pub(crate) host_vmsave_pa: u64,
    /// Only touched on this CPU, with interrupts off (or in its hotplug
    /// thread while no vCPU can run there).
    asid: UnsafeCell<AsidGen>,
    /// The host's TSC_AUX on this CPU (Linux's CPU and node number), read
    /// when virtualization is enabled here; [`NO_TSC_AUX`] if the CPU has
    /// none.
    pub(crate) host_tsc_aux: AtomicU64,
}

/// `PerCpu::host_tsc_aux` of a CPU without TSC_AUX.
pub(crate) const NO_TSC_AUX: u64 = u64::MAX;

// SAFETY: `asid` is only accessed from the CPU it belongs to with
// interrupts disabled (vCPU entry) or from that CPU's hotplug callback,
// which cannot interleave with a vCPU entry on the same CPU.
unsafe impl Sync for PerCpu {}

fn page_pa(p: &Page) -> u64 {
    // SAFETY: `p` is a live page.
    unsafe { rb::rkvm_page_to_phys(p.as_ptr()) }
}

impl PerCpu {
    fn new(max_asid: u32) -> Result<Self> {
        let hsave = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let host_vmsave = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
        let host_vmsave_pa = page_pa(&host_vmsave);
        Ok(Self {
            hsave,
            host_vmsave,
            host_vmsave_pa,
            asid: UnsafeCell::new(AsidGen {
                generation: 0,
                next: max_asid + 1,
                min: 1,
                max: max_asid,
            }),
            host_tsc_aux: AtomicU64::new(NO_TSC_AUX),
        })
    }

    /// Physical address of the VMRUN host save area.
    pub(crate) fn hsave_pa(&self) -> u64 {
        let _ = &self.host_vmsave;
        page_pa(&self.hsave)
    }

    /// The ASID allocator of this CPU.
    ///
    /// # Safety
    ///
    /// The caller runs on this CPU with interrupts disabled (or in its
    /// hotplug callback), and holds no other reference from this method.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn asid(&self) -> &mut AsidGen {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.asid.get() }
    }
}

/// Read-only facts and buffers every SVM vCPU uses.
pub(crate) struct Shared {
    pub(crate) cpus: KVec<PerCpu>,
    /// I/O permission map: all ports intercepted (12 KiB).
    pub(crate) iopm: ContigPages,
    /// MSR permission map: all MSRs intercepted (8 KiB).
    pub(crate) msrpm: ContigPages,
    /// The CPU reports the next RIP on intercepts (NRIP save).
    pub(crate) nrips: bool,
    /// TLB_CONTROL can flush a single ASID.
    pub(crate) flush_by_asid: bool,
}

impl Shared {
    pub(crate) fn new() -> Result<Self> {
        let n = cpu::nr_cpu_ids() as usize;
        let max_asid = cpuid::max_asid();
        let mut cpus = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            cpus.push(PerCpu::new(max_asid)?, GFP_KERNEL)?;
        }
        let mut iopm = ContigPages::new(2)?;
        iopm.as_mut_slice().fill(0xff);
        let mut msrpm = ContigPages::new(1)?;
        msrpm.as_mut_slice().fill(0xff);
        Ok(Self {
            cpus,
            iopm,
            msrpm,
            nrips: crate::params::NRIPS.get() != 0,
            flush_by_asid: cpuid::has_flush_by_asid(),
        })
    }

    /// Called on `cpu` when virtualization is enabled there.
    pub(crate) fn cpu_enabled(&self, cpu: u32) -> Result {
        let pc = self.cpus.get(cpu as usize).ok_or(EINVAL)?;
        msr::write(rb::MSR_VM_HSAVE_PA, pc.hsave_pa());
        let aux = msr::read_safe(MSR_TSC_AUX).unwrap_or(NO_TSC_AUX);
        pc.host_tsc_aux.store(aux, Ordering::Relaxed);
        // SAFETY: we are this CPU's hotplug callback.
        let a = unsafe { pc.asid() };
        // Force a new generation (and a full flush) on first use.
        a.generation = a.generation.wrapping_add(1);
        a.next = a.max + 1;
        Ok(())
    }
}
