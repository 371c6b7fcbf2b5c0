// SPDX-License-Identifier: GPL-2.0
//! The feature lists of upstream's `kvm_initialize_cpu_caps()`: for each
//! feature word, which bits KVM can virtualize and on what terms.
//!
//! Bits upstream marks `VENDOR_F` (enabled later by the vendor module) or
//! `RUNTIME_F` (never advertised) are not listed; see [`super::caps`] for
//! what SVM and rkvm add or remove afterwards.

use crate::defs::cpuid::*;

/// How a listed feature enters KVM's capabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `F()`: if the kernel and the raw CPUID both have it.
    F,
    /// `SCATTERED_F()`: as [`Kind::F`], if the kernel has the scattered
    /// flag (its own number).
    Scattered(LinuxFeature),
    /// `SYNTHESIZED_F()`: if the kernel has the flag, even when raw CPUID
    /// does not.
    Synthesized(LinuxFeature),
    /// `EMULATED_F()`: always; KVM emulates it.
    Emulated,
    /// `PASSTHROUGH_F()`: if raw CPUID has it, whatever the kernel says.
    Passthrough,
}

/// One listed feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    /// The bit.
    pub feature: Feature,
    /// The terms.
    pub kind: Kind,
}

const fn f(feature: Feature) -> Cap {
    Cap {
        feature,
        kind: Kind::F,
    }
}
const fn emulated(feature: Feature) -> Cap {
    Cap {
        feature,
        kind: Kind::Emulated,
    }
}
const fn passthrough(feature: Feature) -> Cap {
    Cap {
        feature,
        kind: Kind::Passthrough,
    }
}
const fn scattered(feature: Feature, l: LinuxFeature) -> Cap {
    Cap {
        feature,
        kind: Kind::Scattered(l),
    }
}
const fn synthesized(feature: Feature) -> Cap {
    match feature.linux() {
        Some(l) => Cap {
            feature,
            kind: Kind::Synthesized(l),
        },
        None => Cap {
            feature,
            kind: Kind::F,
        },
    }
}
const fn synthesized_as(feature: Feature, l: LinuxFeature) -> Cap {
    Cap {
        feature,
        kind: Kind::Synthesized(l),
    }
}
/// `ALIASED_1_EDX_F()`: a CPUID.1:EDX feature repeated in
/// CPUID.80000001H:EDX (AMD).
const fn aliased(feature: Feature) -> Cap {
    f(Feature::new(Leaf::L80000001Edx, feature.bit))
}

const L1_ECX: &[Cap] = &[
    f(X86_FEATURE_XMM3),
    f(X86_FEATURE_PCLMULQDQ),
    // DTES64, VMX: vendor. MWAIT (MONITOR), OSXSAVE: runtime, never
    // advertised. DS-CPL, SMX, EST, TM2, CNXT-ID, xTPR, DCA: not virtualized.
    f(X86_FEATURE_SSSE3),
    f(X86_FEATURE_FMA),
    f(X86_FEATURE_CX16),
    f(X86_FEATURE_PDCM),
    f(X86_FEATURE_PCID),
    f(X86_FEATURE_XMM4_1),
    f(X86_FEATURE_XMM4_2),
    emulated(X86_FEATURE_X2APIC),
    f(X86_FEATURE_MOVBE),
    f(X86_FEATURE_POPCNT),
    emulated(X86_FEATURE_TSC_DEADLINE_TIMER),
    f(X86_FEATURE_AES),
    f(X86_FEATURE_XSAVE),
    f(X86_FEATURE_AVX),
    f(X86_FEATURE_F16C),
    f(X86_FEATURE_RDRAND),
    emulated(X86_FEATURE_HYPERVISOR),
];

const L1_EDX: &[Cap] = &[
    f(X86_FEATURE_FPU),
    f(X86_FEATURE_VME),
    f(X86_FEATURE_DE),
    f(X86_FEATURE_PSE),
    f(X86_FEATURE_TSC),
    f(X86_FEATURE_MSR),
    f(X86_FEATURE_PAE),
    f(X86_FEATURE_MCE),
    f(X86_FEATURE_CX8),
    f(X86_FEATURE_APIC),
    f(X86_FEATURE_SEP),
    f(X86_FEATURE_MTRR),
    f(X86_FEATURE_PGE),
    f(X86_FEATURE_MCA),
    f(X86_FEATURE_CMOV),
    f(X86_FEATURE_PAT),
    f(X86_FEATURE_PSE36),
    f(X86_FEATURE_CLFLUSH),
    // DS: vendor. PSN, ACPI, HTT, TM, PBE: not virtualized.
    f(X86_FEATURE_MMX),
    f(X86_FEATURE_FXSR),
    f(X86_FEATURE_XMM),
    f(X86_FEATURE_XMM2),
    f(X86_FEATURE_SELFSNOOP),
];

const L7_EBX: &[Cap] = &[
    f(X86_FEATURE_FSGSBASE),
    emulated(X86_FEATURE_TSC_ADJUST),
    f(X86_FEATURE_SGX),
    f(X86_FEATURE_BMI1),
    f(X86_FEATURE_HLE),
    f(X86_FEATURE_AVX2),
    f(X86_FEATURE_FDP_EXCPTN_ONLY),
    f(X86_FEATURE_SMEP),
    f(X86_FEATURE_BMI2),
    f(X86_FEATURE_ERMS),
    f(X86_FEATURE_INVPCID),
    f(X86_FEATURE_RTM),
    f(X86_FEATURE_ZERO_FCS_FDS),
    // MPX: vendor (VMX only).
    f(X86_FEATURE_AVX512F),
    f(X86_FEATURE_AVX512DQ),
    f(X86_FEATURE_RDSEED),
    f(X86_FEATURE_ADX),
    f(X86_FEATURE_SMAP),
    f(X86_FEATURE_AVX512IFMA),
    f(X86_FEATURE_CLFLUSHOPT),
    f(X86_FEATURE_CLWB),
    // INTEL_PT: vendor (VMX only).
    f(X86_FEATURE_AVX512PF),
    f(X86_FEATURE_AVX512ER),
    f(X86_FEATURE_AVX512CD),
    f(X86_FEATURE_SHA_NI),
    f(X86_FEATURE_AVX512BW),
    f(X86_FEATURE_AVX512VL),
];

const L7_ECX: &[Cap] = &[
    f(X86_FEATURE_AVX512VBMI),
    passthrough(X86_FEATURE_LA57),
    f(X86_FEATURE_PKU),
    // OSPKE: runtime.
    f(X86_FEATURE_RDPID),
    f(X86_FEATURE_AVX512_VPOPCNTDQ),
    f(X86_FEATURE_UMIP),
    f(X86_FEATURE_AVX512_VBMI2),
    f(X86_FEATURE_GFNI),
    f(X86_FEATURE_VAES),
    f(X86_FEATURE_VPCLMULQDQ),
    f(X86_FEATURE_AVX512_VNNI),
    f(X86_FEATURE_AVX512_BITALG),
    f(X86_FEATURE_CLDEMOTE),
    f(X86_FEATURE_MOVDIRI),
    f(X86_FEATURE_MOVDIR64B),
    // WAITPKG: vendor (VMX only).
    f(X86_FEATURE_SGX_LC),
    f(X86_FEATURE_BUS_LOCK_DETECT),
    f(X86_FEATURE_SHSTK),
];

const L7_EDX: &[Cap] = &[
    f(X86_FEATURE_AVX512_4VNNIW),
    f(X86_FEATURE_AVX512_4FMAPS),
    f(X86_FEATURE_SPEC_CTRL),
    f(X86_FEATURE_SPEC_CTRL_SSBD),
    emulated(X86_FEATURE_ARCH_CAPABILITIES),
    f(X86_FEATURE_INTEL_STIBP),
    f(X86_FEATURE_MD_CLEAR),
    f(X86_FEATURE_AVX512_VP2INTERSECT),
    f(X86_FEATURE_FSRM),
    f(X86_FEATURE_SERIALIZE),
    f(X86_FEATURE_TSXLDTRK),
    f(X86_FEATURE_AVX512_FP16),
    f(X86_FEATURE_AMX_TILE),
    f(X86_FEATURE_AMX_INT8),
    f(X86_FEATURE_AMX_BF16),
    f(X86_FEATURE_FLUSH_L1D),
    f(X86_FEATURE_IBT),
];

const L7_1_EAX: &[Cap] = &[
    f(X86_FEATURE_SHA512),
    f(X86_FEATURE_SM3),
    f(X86_FEATURE_SM4),
    f(X86_FEATURE_AVX_VNNI),
    f(X86_FEATURE_AVX512_BF16),
    f(X86_FEATURE_CMPCCXADD),
    f(X86_FEATURE_FZRM),
    f(X86_FEATURE_FSRS),
    f(X86_FEATURE_FSRC),
    f(X86_FEATURE_WRMSRNS),
    f(X86_FEATURE_LKGS),
    f(X86_FEATURE_AMX_FP16),
    f(X86_FEATURE_AVX_IFMA),
    f(X86_FEATURE_LAM),
    f(X86_FEATURE_MOVRS),
];

const L7_1_ECX: &[Cap] = &[scattered(X86_FEATURE_MSR_IMM, LNX_MSR_IMM)];

const L7_1_EDX: &[Cap] = &[
    f(X86_FEATURE_AVX_VNNI_INT8),
    f(X86_FEATURE_AVX_NE_CONVERT),
    f(X86_FEATURE_AMX_COMPLEX),
    f(X86_FEATURE_AVX_VNNI_INT16),
    f(X86_FEATURE_PREFETCHITI),
    f(X86_FEATURE_AVX10),
];

const L7_2_EDX: &[Cap] = &[
    f(X86_FEATURE_INTEL_PSFD),
    f(X86_FEATURE_IPRED_CTRL),
    f(X86_FEATURE_RRSBA_CTRL),
    f(X86_FEATURE_DDPD_U),
    f(X86_FEATURE_BHI_CTRL),
    f(X86_FEATURE_MCDT_NO),
];

const LD_1_EAX: &[Cap] = &[
    f(X86_FEATURE_XSAVEOPT),
    f(X86_FEATURE_XSAVEC),
    f(X86_FEATURE_XGETBV1),
    f(X86_FEATURE_XSAVES),
    f(X86_FEATURE_XFD),
];

const L12_EAX: &[Cap] = &[
    scattered(X86_FEATURE_SGX1, LNX_SGX1),
    scattered(X86_FEATURE_SGX2, LNX_SGX2),
    scattered(X86_FEATURE_SGX_EDECCSSA, LNX_SGX_EDECCSSA),
];

const L1E_1_EAX: &[Cap] = &[
    f(X86_FEATURE_AMX_INT8_ALIAS),
    f(X86_FEATURE_AMX_BF16_ALIAS),
    f(X86_FEATURE_AMX_COMPLEX_ALIAS),
    f(X86_FEATURE_AMX_FP16_ALIAS),
    f(X86_FEATURE_AMX_FP8),
    f(X86_FEATURE_AMX_TF32),
    f(X86_FEATURE_AMX_AVX512),
    f(X86_FEATURE_AMX_MOVRS),
];

const L24_0_EBX: &[Cap] = &[
    f(X86_FEATURE_AVX10_128),
    f(X86_FEATURE_AVX10_256),
    f(X86_FEATURE_AVX10_512),
];

const L24_1_ECX: &[Cap] = &[f(X86_FEATURE_AVX10_VNNI_INT)];

const L80000001_ECX: &[Cap] = &[
    f(X86_FEATURE_LAHF_LM),
    f(X86_FEATURE_CMP_LEGACY),
    // SVM: vendor (nested). ExtApicSpace, IBS, SKINIT, WDT, LWP: no.
    f(X86_FEATURE_CR8_LEGACY),
    f(X86_FEATURE_ABM),
    f(X86_FEATURE_SSE4A),
    f(X86_FEATURE_MISALIGNSSE),
    f(X86_FEATURE_3DNOWPREFETCH),
    f(X86_FEATURE_OSVW),
    f(X86_FEATURE_XOP),
    f(X86_FEATURE_FMA4),
    f(X86_FEATURE_TBM),
    f(X86_FEATURE_TOPOEXT),
    // PERFCTR_CORE: vendor (vPMU).
];

const L80000001_EDX: &[Cap] = &[
    aliased(X86_FEATURE_FPU),
    aliased(X86_FEATURE_VME),
    aliased(X86_FEATURE_DE),
    aliased(X86_FEATURE_PSE),
    aliased(X86_FEATURE_TSC),
    aliased(X86_FEATURE_MSR),
    aliased(X86_FEATURE_PAE),
    aliased(X86_FEATURE_MCE),
    aliased(X86_FEATURE_CX8),
    aliased(X86_FEATURE_APIC),
    f(X86_FEATURE_SYSCALL),
    aliased(X86_FEATURE_MTRR),
    aliased(X86_FEATURE_PGE),
    aliased(X86_FEATURE_MCA),
    aliased(X86_FEATURE_CMOV),
    aliased(X86_FEATURE_PAT),
    aliased(X86_FEATURE_PSE36),
    f(X86_FEATURE_NX),
    f(X86_FEATURE_MMXEXT),
    aliased(X86_FEATURE_MMX),
    aliased(X86_FEATURE_FXSR),
    f(X86_FEATURE_FXSR_OPT),
    f(X86_FEATURE_GBPAGES),
    f(X86_FEATURE_RDTSCP),
    f(X86_FEATURE_LM),
    f(X86_FEATURE_3DNOWEXT),
    f(X86_FEATURE_3DNOW),
];

const L80000007_EDX: &[Cap] = &[scattered(X86_FEATURE_CONSTANT_TSC, LNX_CONSTANT_TSC)];

const L80000008_EBX: &[Cap] = &[
    f(X86_FEATURE_CLZERO),
    f(X86_FEATURE_XSAVEERPTR),
    f(X86_FEATURE_WBNOINVD),
    f(X86_FEATURE_AMD_IBPB),
    f(X86_FEATURE_AMD_IBRS),
    f(X86_FEATURE_AMD_SSBD),
    f(X86_FEATURE_VIRT_SSBD),
    f(X86_FEATURE_AMD_SSB_NO),
    f(X86_FEATURE_AMD_STIBP),
    f(X86_FEATURE_AMD_STIBP_ALWAYS_ON),
    f(X86_FEATURE_AMD_IBRS_SAME_MODE),
    passthrough(X86_FEATURE_EFER_LMSLE_MBZ),
    f(X86_FEATURE_AMD_PSFD),
    f(X86_FEATURE_AMD_IBPB_RET),
];

/// All SVM features need vendor enabling: nothing here (see caps.rs).
const L8000000A_EDX: &[Cap] = &[];

const L8000001F_EAX: &[Cap] = &[
    // SME, SEV, SEV_ES: vendor.
    f(X86_FEATURE_SME_COHERENT),
];

const L80000021_EAX: &[Cap] = &[
    f(X86_FEATURE_NO_NESTED_DATA_BP),
    f(X86_FEATURE_WRMSR_XX_BASE_NS),
    synthesized(X86_FEATURE_LFENCE_RDTSC),
    synthesized(X86_FEATURE_VERW_CLEAR),
    f(X86_FEATURE_NULL_SEL_CLR_BASE),
    f(X86_FEATURE_AUTOIBRS),
    emulated(X86_FEATURE_NO_SMM_CTL_MSR),
    emulated(X86_FEATURE_GP_ON_USER_CPUID),
    f(X86_FEATURE_PREFETCHI),
    f(X86_FEATURE_AVX512_BMM),
    f(X86_FEATURE_ERAPS),
    synthesized(X86_FEATURE_SBPB),
    synthesized(X86_FEATURE_IBPB_BRTYPE),
    synthesized(X86_FEATURE_SRSO_NO),
    f(X86_FEATURE_SRSO_USER_KERNEL_NO),
];

const L80000021_ECX: &[Cap] = &[
    synthesized_as(X86_FEATURE_TSA_SQ_NO, LNX_TSA_SQ_NO),
    synthesized_as(X86_FEATURE_TSA_L1_NO, LNX_TSA_L1_NO),
    synthesized_as(X86_FEATURE_TSA_FILL_NO, LNX_TSA_FILL_NO),
];

const L80000022_EAX: &[Cap] = &[f(X86_FEATURE_PERFMON_V2)];

const LC0000001_EDX: &[Cap] = &[
    f(X86_FEATURE_SM2),
    f(X86_FEATURE_SM2_EN),
    f(X86_FEATURE_XSTORE),
    f(X86_FEATURE_XSTORE_EN),
    f(X86_FEATURE_CCS),
    f(X86_FEATURE_CCS_EN),
    f(X86_FEATURE_XCRYPT),
    f(X86_FEATURE_XCRYPT_EN),
    f(X86_FEATURE_ACE2),
    f(X86_FEATURE_ACE2_EN),
    f(X86_FEATURE_PHE),
    f(X86_FEATURE_PHE_EN),
    f(X86_FEATURE_PMM),
    f(X86_FEATURE_PMM_EN),
    f(X86_FEATURE_RNG2),
    f(X86_FEATURE_RNG2_EN),
    f(X86_FEATURE_PHE2),
    f(X86_FEATURE_PHE2_EN),
    f(X86_FEATURE_RSA),
    f(X86_FEATURE_RSA_EN),
];

/// Leaf 6 EAX is filled in directly (ARAT only), not from caps.
const L6_EAX: &[Cap] = &[];

/// The feature list of `leaf`.
pub const fn caps_of(leaf: Leaf) -> &'static [Cap] {
    match leaf {
        Leaf::L1Edx => L1_EDX,
        Leaf::L80000001Edx => L80000001_EDX,
        Leaf::L1Ecx => L1_ECX,
        Leaf::LC0000001Edx => LC0000001_EDX,
        Leaf::L80000001Ecx => L80000001_ECX,
        Leaf::L7Ebx => L7_EBX,
        Leaf::LDSub1Eax => LD_1_EAX,
        Leaf::L80000008Ebx => L80000008_EBX,
        Leaf::L6Eax => L6_EAX,
        Leaf::L8000000AEdx => L8000000A_EDX,
        Leaf::L7Ecx => L7_ECX,
        Leaf::L7Edx => L7_EDX,
        Leaf::L7Sub1Eax => L7_1_EAX,
        Leaf::L12Eax => L12_EAX,
        Leaf::L8000001FEax => L8000001F_EAX,
        Leaf::L7Sub1Edx => L7_1_EDX,
        Leaf::L80000007Edx => L80000007_EDX,
        Leaf::L80000021Eax => L80000021_EAX,
        Leaf::L80000022Eax => L80000022_EAX,
        Leaf::L7Sub2Edx => L7_2_EDX,
        Leaf::L24Sub0Ebx => L24_0_EBX,
        Leaf::L80000021Ecx => L80000021_ECX,
        Leaf::L7Sub1Ecx => L7_1_ECX,
        Leaf::L1ESub1Eax => L1E_1_EAX,
        Leaf::L24Sub1Ecx => L24_1_ECX,
    }
}
