// SPDX-License-Identifier: GPL-2.0
//! KVM's capability words (upstream `kvm_cpu_caps[]`): what the host and
//! this KVM support, computed like `kvm_initialize_cpu_caps()` followed by
//! `svm_set_cpu_caps()` or `vmx_set_cpu_caps()`, then cut down to what
//! rkvm implements.

use super::linux::{self, raw_word};
use super::tables::{caps_of, Kind};
use super::xstate;
use super::{HostCpuid, Options};
use crate::defs::cpuid::*;
use crate::defs::regs::{XFEATURE_MASK_CET_ALL, XFEATURE_MASK_MPX, XFEATURE_MASK_XTILE};

/// KVM's supported features, one word per [`Leaf`], plus the supported
/// XSAVE state components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvmCaps {
    words: [u32; NR_LEAVES],
    /// XCR0 bits guests may use (`kvm_caps.supported_xcr0`, filtered like
    /// `kvm_get_filtered_xcr0()` for a process without AMX permission).
    pub supported_xcr0: u64,
    /// IA32_XSS bits guests may use (`kvm_caps.supported_xss`).
    pub supported_xss: u64,
}

/// AMX features that need XFD and dynamic XSAVE state.
const AMX: &[Feature] = &[
    X86_FEATURE_AMX_TILE,
    X86_FEATURE_AMX_INT8,
    X86_FEATURE_AMX_BF16,
    X86_FEATURE_AMX_FP16,
    X86_FEATURE_AMX_COMPLEX,
    X86_FEATURE_XFD,
];

/// Never on rkvm (no SGX, no SEV): upstream leaves these to vendor code.
const RKVM_NEVER: &[Feature] = &[
    X86_FEATURE_SGX,
    X86_FEATURE_SGX_LC,
    X86_FEATURE_SGX1,
    X86_FEATURE_SGX2,
    X86_FEATURE_SGX_EDECCSSA,
    X86_FEATURE_SEV,
    X86_FEATURE_SEV_ES,
    X86_FEATURE_SEV_SNP,
];

impl KvmCaps {
    /// All zero.
    pub const fn empty() -> Self {
        KvmCaps {
            words: [0; NR_LEAVES],
            supported_xcr0: 0,
            supported_xss: 0,
        }
    }

    /// The capabilities of this KVM on `host`.
    pub fn new<H: HostCpuid + ?Sized>(host: &H, opts: &Options) -> Self {
        let mut caps = KvmCaps::empty();
        for leaf in ALL_LEAVES {
            caps.set_word(leaf, init_word(host, leaf));
        }
        caps.common_fixups(host);
        opts.vendor
            .set_cpu_caps(&mut caps, &super::HostRef(host), opts);
        caps.rkvm_fixups(opts);
        caps
    }

    /// The word of `leaf`.
    pub fn word(&self, leaf: Leaf) -> u32 {
        self.words.get(leaf.index()).copied().unwrap_or(0)
    }

    /// Replaces the word of `leaf`.
    pub fn set_word(&mut self, leaf: Leaf, value: u32) {
        if let Some(w) = self.words.get_mut(leaf.index()) {
            *w = value;
        }
    }

    /// `kvm_cpu_cap_has()`.
    pub fn has(&self, feature: Feature) -> bool {
        self.word(feature.leaf) & feature.mask() != 0
    }

    /// `kvm_cpu_cap_set()`.
    pub fn set(&mut self, feature: Feature) {
        let w = self.word(feature.leaf) | feature.mask();
        self.set_word(feature.leaf, w);
    }

    /// `kvm_cpu_cap_clear()`.
    pub fn clear(&mut self, feature: Feature) {
        let w = self.word(feature.leaf) & !feature.mask();
        self.set_word(feature.leaf, w);
    }

    fn set_if(&mut self, feature: Feature, cond: bool) {
        if cond {
            self.set(feature);
        }
    }

    /// The fixups at the end of `kvm_initialize_cpu_caps()`, with TDP
    /// enabled (NPT) and `allow_smaller_maxphyaddr` off.
    fn common_fixups<H: HostCpuid + ?Sized>(&mut self, host: &H) {
        let has = |x: LinuxFeature| host.boot_cpu_has(x);
        let hw = |x: Feature| linux::kernel_has(host, x);

        // PKU needs the host's CR4.PKE (OSPKE).
        if !hw(X86_FEATURE_OSPKE) {
            self.clear(X86_FEATURE_PKU);
        }

        if hw(X86_FEATURE_AMD_IBPB_RET) && hw(X86_FEATURE_AMD_IBPB) && hw(X86_FEATURE_AMD_IBRS) {
            self.set(X86_FEATURE_SPEC_CTRL);
        }
        self.set_if(X86_FEATURE_INTEL_STIBP, has(LNX_STIBP));
        self.set_if(X86_FEATURE_SPEC_CTRL_SSBD, hw(X86_FEATURE_AMD_SSBD));

        if has(LNX_IBPB) {
            self.set(X86_FEATURE_AMD_IBPB);
            if hw(X86_FEATURE_SPEC_CTRL) && !has(X86_BUG_EIBRS_PBRSB) {
                self.set(X86_FEATURE_AMD_IBPB_RET);
            }
        }
        self.set_if(X86_FEATURE_AMD_IBRS, has(LNX_IBRS));
        self.set_if(X86_FEATURE_AMD_STIBP, has(LNX_STIBP));
        self.set_if(X86_FEATURE_AMD_SSBD, hw(X86_FEATURE_SPEC_CTRL_SSBD));
        self.set_if(X86_FEATURE_AMD_SSB_NO, !has(X86_BUG_SPEC_STORE_BYPASS));
        if has(LNX_LS_CFG_SSBD) && !hw(X86_FEATURE_AMD_SSBD) {
            self.set(X86_FEATURE_VIRT_SSBD);
        }

        self.set_if(X86_FEATURE_NULL_SEL_CLR_BASE, !has(X86_BUG_NULL_SEG));
    }

    /// `svm_set_cpu_caps()` and the XSAVE parts of the vendor setup.
    pub fn svm_fixups<H: HostCpuid + ?Sized>(&mut self, host: &H, opts: &Options) {
        let has = |x: LinuxFeature| host.boot_cpu_has(x);
        let hw = |x: Feature| linux::kernel_has(host, x);

        self.clear(X86_FEATURE_IBT);

        if opts.nested_svm {
            self.set(X86_FEATURE_SVM);
            self.set(X86_FEATURE_VMCBCLEAN);
            self.set(X86_FEATURE_FLUSHBYASID);
            self.set_if(X86_FEATURE_NRIPS, hw(X86_FEATURE_NRIPS));
            self.set_if(X86_FEATURE_NPT, opts.nested_npt);
            self.set_if(X86_FEATURE_TSCRATEMSR, hw(X86_FEATURE_TSCRATEMSR));
            self.set_if(X86_FEATURE_V_VMSAVE_VMLOAD, hw(X86_FEATURE_V_VMSAVE_VMLOAD));
            self.set_if(X86_FEATURE_LBRV, hw(X86_FEATURE_LBRV));
            self.set_if(X86_FEATURE_PAUSEFILTER, hw(X86_FEATURE_PAUSEFILTER));
            self.set_if(X86_FEATURE_PFTHRESHOLD, hw(X86_FEATURE_PFTHRESHOLD));
            self.set_if(X86_FEATURE_GMET, hw(X86_FEATURE_GMET));
            self.set_if(X86_FEATURE_VGIF, hw(X86_FEATURE_VGIF));
            self.set_if(
                X86_FEATURE_VNMI,
                hw(X86_FEATURE_VNMI) && hw(X86_FEATURE_VGIF),
            );
            self.set(X86_FEATURE_SVME_ADDR_CHK);
        }

        if has(LNX_LS_CFG_SSBD) || hw(X86_FEATURE_AMD_SSBD) {
            self.set(X86_FEATURE_VIRT_SSBD);
        }

        if opts.pmu {
            // kvm_pmu_cap on AMD: PERFCTR_CORE iff the host has the core
            // counters; PERFMON_V2 needs it (version 2).
            self.set_if(X86_FEATURE_PERFCTR_CORE, hw(X86_FEATURE_PERFCTR_CORE));
            if !self.has(X86_FEATURE_PERFCTR_CORE) {
                self.clear(X86_FEATURE_PERFMON_V2);
            }
        }

        // Common code enables these, SVM support is not there yet.
        self.clear(X86_FEATURE_BUS_LOCK_DETECT);
        self.clear(X86_FEATURE_MSR_IMM);

        // kvm_x86_vendor_init() + svm_hardware_setup(): no MPX on SVM.
        self.supported_xcr0 = if hw(X86_FEATURE_XSAVE) {
            opts.host_xcr0 & xstate::KVM_SUPPORTED_XCR0 & !XFEATURE_MASK_MPX
        } else {
            0
        };
        self.supported_xss = if hw(X86_FEATURE_XSAVES) {
            opts.host_xss & xstate::KVM_SUPPORTED_XSS
        } else {
            0
        };
        self.setup_xss_caps();
    }

    /// `vmx_set_cpu_caps()` and the XSAVE parts of the vendor setup, for
    /// what rkvm's kvm-intel enables: no nested VMX, no MPX (BNDCFGS is
    /// not switched), no PT/PEBS, no XSAVES (the VMCS control is off), no
    /// CET, no bus-lock detection or immediate-form MSR exits; RDTSCP,
    /// RDPID and INVPCID only with their VMCS controls.
    pub fn vmx_fixups<H: HostCpuid + ?Sized>(
        &mut self,
        host: &H,
        opts: &Options,
        vmx: &super::VmxCaps,
    ) {
        let hw = |x: Feature| linux::kernel_has(host, x);

        if !vmx.invpcid {
            self.clear(X86_FEATURE_INVPCID);
        }
        if !opts.pmu {
            self.clear(X86_FEATURE_PDCM);
        }
        self.clear(X86_FEATURE_XSAVES);
        if !vmx.rdtscp {
            self.clear(X86_FEATURE_RDTSCP);
            self.clear(X86_FEATURE_RDPID);
        }
        self.clear(X86_FEATURE_SHSTK);
        self.clear(X86_FEATURE_IBT);
        self.clear(X86_FEATURE_BUS_LOCK_DETECT);
        self.clear(X86_FEATURE_MSR_IMM);

        self.supported_xcr0 = if hw(X86_FEATURE_XSAVE) {
            opts.host_xcr0 & xstate::KVM_SUPPORTED_XCR0 & !XFEATURE_MASK_MPX
        } else {
            0
        };
        self.supported_xss = 0;
        self.setup_xss_caps();
    }

    /// `kvm_setup_xss_caps()`: CET needs both XSS components.
    fn setup_xss_caps(&mut self) {
        if !self.has(X86_FEATURE_XSAVES) {
            self.supported_xss = 0;
        }
        if !self.has(X86_FEATURE_SHSTK) && !self.has(X86_FEATURE_IBT) {
            self.supported_xss &= !XFEATURE_MASK_CET_ALL;
        }
        if self.supported_xss & XFEATURE_MASK_CET_ALL != XFEATURE_MASK_CET_ALL {
            self.clear(X86_FEATURE_SHSTK);
            self.clear(X86_FEATURE_IBT);
            self.supported_xss &= !XFEATURE_MASK_CET_ALL;
        }
    }

    /// What rkvm does not implement.
    fn rkvm_fixups(&mut self, opts: &Options) {
        for x in RKVM_NEVER {
            self.clear(*x);
        }
        if !opts.xfd {
            for x in AMX {
                self.clear(*x);
            }
            self.set_word(Leaf::L1ESub1Eax, 0);
        }
        // Dynamic (XFD-managed) state is never in the default guest
        // permissions (kvm_get_filtered_xcr0() without
        // ARCH_REQ_XCOMP_GUEST_PERM); without XFD it is never supported.
        self.supported_xcr0 &= !XFEATURE_MASK_XTILE;
        for x in opts.hide {
            self.clear(*x);
        }
    }
}

/// One `kvm_cpu_cap_init()`: the listed features, masked with the host
/// kernel's view (for words it mirrors) and with raw CPUID.
fn init_word<H: HostCpuid + ?Sized>(host: &H, leaf: Leaf) -> u32 {
    let mut features = 0u32;
    let mut passthrough = 0u32;
    let mut synthesized = 0u32;
    let mut emulated = 0u32;
    for cap in caps_of(leaf) {
        let bit = cap.feature.mask();
        match cap.kind {
            Kind::F => features |= bit,
            Kind::Scattered(l) => {
                if host.boot_cpu_has(l) {
                    features |= bit;
                }
            }
            Kind::Synthesized(l) => {
                synthesized |= bit;
                if host.boot_cpu_has(l) {
                    features |= bit;
                }
            }
            Kind::Emulated => {
                emulated |= bit;
                features |= bit;
            }
            Kind::Passthrough => {
                passthrough |= bit;
                features |= bit;
            }
        }
    }
    let mut word = features;
    if let Some(w) = leaf.linux_word() {
        word &= kernel_word(host, w, features);
    }
    word |= passthrough;
    word &= raw_word(host, leaf) | synthesized;
    word | emulated
}

/// The bits of `boot_cpu_data.x86_capability[word]` among `interesting`.
fn kernel_word<H: HostCpuid + ?Sized>(host: &H, word: u32, interesting: u32) -> u32 {
    let mut out = 0u32;
    for bit in 0..32u8 {
        let mask = 1u32 << bit;
        if interesting & mask != 0 && host.boot_cpu_has(LinuxFeature::new(word, bit)) {
            out |= mask;
        }
    }
    out
}
