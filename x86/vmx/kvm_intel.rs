// SPDX-License-Identifier: GPL-2.0
//! kvm-intel.ko: rkvm's Intel VMX backend, with EPT.
//!
//! Registers an [`ArchOps`] implementation with kvm.ko. Per CPU it takes a
//! reference on the kernel's VMX enable count (`x86_virt_get_ref`, which
//! sets CR4.VMXE and executes VMXON with a VMXON region of the kernel's,
//! exactly as upstream kvm-intel does in 7.3; the last reference does
//! VMXOFF). On a CPU without VMX, or with VMX disabled by the firmware
//! in IA32_FEATURE_CONTROL, it refuses to load with `EOPNOTSUPP`.

use core::arch::x86_64::__cpuid;
use kernel::{cpu, page::Page, prelude::*, sync::Arc};
use kvm::{
    cpuid_caps::VmxCaps,
    defs::{
        cpuid::X86_FEATURE_VMX,
        msr::{
            FEAT_CTL_LOCKED, FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX, MSR_FS_BASE, MSR_GS_BASE,
            MSR_IA32_FEAT_CTL, MSR_KERNEL_GS_BASE,
        },
        regs::X86_CR4_FRED,
    },
    ext::{bindings as rb, msr},
    x86::vendor::{self, ArchOps, TdpFormat, VcpuArch, VendorCaps},
};

mod caps;
mod host;
mod params;
mod vcpu;
mod vmcs;
mod vpid;

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

struct KvmIntel {
    _registration: vendor::Registration,
}

/// upstream's `__kvm_is_vmx_supported()`, with its messages.
fn vmx_supported(this_cpu: u32) -> Result {
    if __cpuid(1).ecx & X86_FEATURE_VMX.mask() == 0 {
        pr_err!("VMX not supported by CPU {}\n", this_cpu);
        return Err(EOPNOTSUPP);
    }
    let fc = msr::read_safe(MSR_IA32_FEAT_CTL).unwrap_or(0);
    let want = FEAT_CTL_LOCKED | FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX;
    if !msr::cpu_has(rb::X86_FEATURE_VMX) || fc & want != want {
        pr_err!(
            "VMX not enabled (by BIOS) in MSR_IA32_FEAT_CTL on CPU {}\n",
            this_cpu
        );
        return Err(EOPNOTSUPP);
    }
    Ok(())
}

impl kernel::Module for KvmIntel {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let this_cpu = cpu::CpuId::current().as_u32();
        vmx_supported(this_cpu)?;
        params::check_at_load()?;
        let host = host::HostConsts::read();
        let mut cr4: u64 = 0;
        // SAFETY: reading CR4 has no side effects.
        unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack)) };
        if cr4 & X86_CR4_FRED != 0 {
            pr_err!("hosts with FRED are not supported yet\n");
            return Err(EOPNOTSUPP);
        }
        let cfg = caps::VmcsConfig::new(host.s_cet.is_some())?;
        params::VPID.set(cfg.vpid());
        if !cfg.ple() {
            params::PLE_GAP.set(0);
        }
        let (vpid, ple) = (cfg.vpid(), cfg.ple());
        let vmx: Arc<dyn ArchOps> = Arc::new(Vmx::new(cfg, host)?, GFP_KERNEL)?;
        let registration = vendor::register(c"kvm_intel", vmx, module)?;
        // The one load line, as kvm-amd's (with the version).
        pr_info!(
            "rkvm {}: VMX, EPT, unrestricted guest, vpid={}, ple={}\n",
            kvm::VERSION,
            u8::from(vpid),
            u8::from(ple)
        );
        Ok(Self {
            _registration: registration,
        })
    }
}

/// What all VMX vCPUs share: the VMCS configuration, the host's constant
/// state and the MSR bitmap.
pub(crate) struct Shared {
    pub(crate) cfg: caps::VmcsConfig,
    pub(crate) host: host::HostConsts,
    /// MSR bitmap: everything intercepted but the FS/GS bases.
    pub(crate) msr_bitmap: Page,
}

// SAFETY: after construction, `msr_bitmap` is only read (by the CPU).
unsafe impl Sync for Shared {}
// SAFETY: plain data and an owned page.
unsafe impl Send for Shared {}

/// Offsets in the MSR bitmap: reads of 0..0x1fff, reads of
/// 0xc0000000..0xc0001fff, then the same for writes.
const MSR_BITMAP_WRITE: usize = 2048;
const MSR_BITMAP_HIGH: usize = 1024;

impl Shared {
    fn new(cfg: caps::VmcsConfig, host: host::HostConsts) -> Result<Self> {
        let msr_bitmap = Page::alloc_page(GFP_KERNEL)?;
        // SAFETY: the page is ours, 4 KiB, direct-mapped; nothing else
        // uses it yet.
        let bm = unsafe {
            core::slice::from_raw_parts_mut(
                rb::rkvm_page_address(msr_bitmap.as_ptr()).cast::<u8>(),
                kernel::page::PAGE_SIZE,
            )
        };
        bm.fill(0xff);
        // The guest's FS/GS bases are in the VMCS, its KERNEL_GS_BASE in
        // the MSR while it runs: no need to exit for them.
        for index in [MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE] {
            let n = (index & 0x1fff) as usize;
            for half in [0, MSR_BITMAP_WRITE] {
                bm[half + MSR_BITMAP_HIGH + n / 8] &= !(1 << (n % 8));
            }
        }
        Ok(Self {
            cfg,
            host,
            msr_bitmap,
        })
    }
}

/// kvm-intel's CPUID rules for each combination of what the VMCS enables
/// (RDTSCP, INVPCID).
static VMX_CAPS: [[VmxCaps; 2]; 2] = [
    [
        VmxCaps {
            rdtscp: false,
            invpcid: false,
        },
        VmxCaps {
            rdtscp: false,
            invpcid: true,
        },
    ],
    [
        VmxCaps {
            rdtscp: true,
            invpcid: false,
        },
        VmxCaps {
            rdtscp: true,
            invpcid: true,
        },
    ],
];

/// The VMX backend.
struct Vmx {
    shared: Arc<Shared>,
}

impl Vmx {
    fn new(cfg: caps::VmcsConfig, host: host::HostConsts) -> Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared::new(cfg, host)?, GFP_KERNEL)?,
        })
    }
}

impl ArchOps for Vmx {
    /// As upstream's vmx (PAUSE with pause-loop exiting).
    fn disable_exits_supported(&self) -> u64 {
        vendor::DISABLE_EXITS_ALL
    }

    fn enable_cpu(&self, _cpu: u32) -> Result {
        // SAFETY: no memory-safety preconditions; sets CR4.VMXE and
        // executes VMXON on this CPU (balanced in `disable_cpu`).
        kernel::error::to_result(unsafe { rb::x86_virt_get_ref(rb::X86_FEATURE_VMX as i32) })?;
        // SAFETY: reads this CPU's MSRs into its own per-CPU slot.
        unsafe { host::rkvm_vmx_uret_cpu_init() };
        Ok(())
    }

    fn disable_cpu(&self, _cpu: u32) {
        // The host's SYSCALL MSRs and TSC_AUX back, the user-return
        // notifier (our code) gone before the module may be.
        // SAFETY: on this CPU, in its hotplug callback.
        unsafe { host::rkvm_vmx_uret_cpu_exit() };
        // No VMCS is ever left active on a CPU (each entry ends with
        // VMCLEAR): VMXOFF may follow.
        // SAFETY: balances the reference taken in `enable_cpu` on this CPU.
        unsafe { rb::x86_virt_put_ref(rb::X86_FEATURE_VMX as i32) };
    }

    fn trace_isa(&self) -> u32 {
        kvm::ext::trace::ISA_VMX
    }

    fn tdp_format(&self) -> TdpFormat {
        vmcs::EPT_FORMAT
    }

    fn cpu_caps(&self) -> &'static dyn VendorCaps {
        let cfg = &self.shared.cfg;
        &VMX_CAPS[usize::from(cfg.rdtscp())][usize::from(cfg.invpcid())]
    }

    fn create_vcpu(&self, _id: u32, tdp_root: u64) -> Result<KBox<dyn VcpuArch>> {
        let v: KBox<dyn VcpuArch> = KBox::new(
            vcpu::VmxVcpu::new(self.shared.clone(), tdp_root)?,
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(v)
    }
}
