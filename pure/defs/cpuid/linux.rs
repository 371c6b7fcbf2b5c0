// SPDX-License-Identifier: GPL-2.0
//! The host kernel's numbering of its CPU flags (Linux 7.3
//! `asm/cpufeatures.h`): `X86_FEATURE_*` = word * 32 + bit of
//! `boot_cpu_data.x86_capability[]`, `X86_BUG_*` after the capability
//! words. Hardware words mirror a CPUID register ([`super::Leaf::linux_word`]);
//! the `LNX_*` constants name the synthetic and scattered flags KVM
//! consults, which have no [`super::Feature`] of their own (or a different
//! one: `LNX_CONSTANT_TSC` is not [`super::X86_FEATURE_CONSTANT_TSC`]'s
//! CPUID bit).

use super::Feature;

/// A Linux `X86_FEATURE_*` / `X86_BUG_*` number: word * 32 + bit of
/// `boot_cpu_data.x86_capability[]` (bugs start at word [`NCAPINTS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinuxFeature(pub u32);

/// Capability words before the bug words (Linux 7.3 `NCAPINTS`).
pub const NCAPINTS: u32 = 22;

impl LinuxFeature {
    /// Bit `bit` of word `word`.
    pub const fn new(word: u32, bit: u8) -> Self {
        LinuxFeature(word.saturating_mul(32).saturating_add((bit & 31) as u32))
    }

    /// `X86_BUG(n)`.
    pub const fn bug(n: u32) -> Self {
        LinuxFeature((NCAPINTS * 32).saturating_add(n))
    }

    /// The word.
    pub const fn word(self) -> u32 {
        self.0 / 32
    }

    /// The bit within the word.
    pub const fn bit(self) -> u8 {
        (self.0 % 32) as u8
    }

    /// The hardware feature this number stands for, if its word mirrors a
    /// CPUID register.
    pub const fn hardware(self) -> Option<Feature> {
        match super::Leaf::from_linux_word(self.word()) {
            Some(leaf) => Some(Feature::new(leaf, self.bit())),
            None => None,
        }
    }

    /// The Linux number of a hardware feature (`None` for KVM-only words).
    pub const fn of(feature: Feature) -> Option<Self> {
        feature.linux()
    }
}

const fn hw(feature: Feature) -> LinuxFeature {
    match feature.linux() {
        Some(l) => l,
        None => LinuxFeature(u32::MAX),
    }
}

/// `X86_FEATURE_CONSTANT_TSC` (scattered from `CPUID.80000007H:EDX[8]`).
pub const LNX_CONSTANT_TSC: LinuxFeature = LinuxFeature::new(3, 8);
/// `X86_FEATURE_ARCH_PERFMON` (Intel architectural PerfMon usable).
pub const LNX_ARCH_PERFMON: LinuxFeature = LinuxFeature::new(3, 11);
/// `X86_FEATURE_SSBD` (some SSBD mechanism is available).
pub const LNX_SSBD: LinuxFeature = LinuxFeature::new(7, 17);
/// `X86_FEATURE_PERFMON_V2` (scattered from `CPUID.80000022H:EAX[0]`).
pub const LNX_PERFMON_V2: LinuxFeature = LinuxFeature::new(7, 20);
/// `X86_FEATURE_LS_CFG_SSBD`: SSBD through the AMD LS_CFG MSR.
pub const LNX_LS_CFG_SSBD: LinuxFeature = LinuxFeature::new(7, 24);
/// `X86_FEATURE_IBRS`.
pub const LNX_IBRS: LinuxFeature = LinuxFeature::new(7, 25);
/// `X86_FEATURE_IBPB`.
pub const LNX_IBPB: LinuxFeature = LinuxFeature::new(7, 26);
/// `X86_FEATURE_STIBP`.
pub const LNX_STIBP: LinuxFeature = LinuxFeature::new(7, 27);
/// `X86_FEATURE_SGX1` (scattered from `CPUID.12H:EAX[0]`).
pub const LNX_SGX1: LinuxFeature = LinuxFeature::new(11, 8);
/// `X86_FEATURE_SGX2` (scattered from `CPUID.12H:EAX[1]`).
pub const LNX_SGX2: LinuxFeature = LinuxFeature::new(11, 9);
/// `X86_FEATURE_RRSBA_CTRL` (scattered from `CPUID.(7,2):EDX[2]`).
pub const LNX_RRSBA_CTRL: LinuxFeature = LinuxFeature::new(11, 11);
/// `X86_FEATURE_SGX_EDECCSSA` (scattered from `CPUID.12H:EAX[11]`).
pub const LNX_SGX_EDECCSSA: LinuxFeature = LinuxFeature::new(11, 18);
/// `X86_FEATURE_TSA_FILL_NO` (scattered from `CPUID.80000021H:ECX[7]`).
pub const LNX_TSA_FILL_NO: LinuxFeature = LinuxFeature::new(17, 5);
/// `X86_FEATURE_BHI_CTRL` (scattered from `CPUID.(7,2):EDX[4]`).
pub const LNX_BHI_CTRL: LinuxFeature = LinuxFeature::new(21, 2);
/// `X86_FEATURE_TSA_SQ_NO` (scattered from `CPUID.80000021H:ECX[1]`).
pub const LNX_TSA_SQ_NO: LinuxFeature = LinuxFeature::new(21, 11);
/// `X86_FEATURE_TSA_L1_NO` (scattered from `CPUID.80000021H:ECX[2]`).
pub const LNX_TSA_L1_NO: LinuxFeature = LinuxFeature::new(21, 12);
/// `X86_FEATURE_MSR_IMM` (scattered from `CPUID.(7,1):ECX[5]`).
pub const LNX_MSR_IMM: LinuxFeature = LinuxFeature::new(21, 16);
/// `X86_FEATURE_LFENCE_RDTSC` (word 20, often synthesized).
pub const LNX_LFENCE_RDTSC: LinuxFeature = hw(super::X86_FEATURE_LFENCE_RDTSC);

/// `X86_BUG_NULL_SEG`: nulling a selector preserves the base.
pub const X86_BUG_NULL_SEG: LinuxFeature = LinuxFeature::bug(10);
/// `X86_BUG_CPU_MELTDOWN`.
pub const X86_BUG_CPU_MELTDOWN: LinuxFeature = LinuxFeature::bug(14);
/// `X86_BUG_MONITOR`: waking a CPU in MWAIT needs an IPI.
pub const X86_BUG_MONITOR: LinuxFeature = LinuxFeature::bug(12);
/// `X86_BUG_SPEC_STORE_BYPASS`.
pub const X86_BUG_SPEC_STORE_BYPASS: LinuxFeature = LinuxFeature::bug(17);
/// `X86_BUG_MDS`.
pub const X86_BUG_MDS: LinuxFeature = LinuxFeature::bug(19);
/// `X86_BUG_TAA`.
pub const X86_BUG_TAA: LinuxFeature = LinuxFeature::bug(22);
/// `X86_BUG_EIBRS_PBRSB`.
pub const X86_BUG_EIBRS_PBRSB: LinuxFeature = LinuxFeature::bug(28);
/// `X86_BUG_GDS`.
pub const X86_BUG_GDS: LinuxFeature = LinuxFeature::bug(30);
/// `X86_BUG_RFDS`.
pub const X86_BUG_RFDS: LinuxFeature = LinuxFeature::bug(32 + 2);
/// `X86_BUG_ITS`.
pub const X86_BUG_ITS: LinuxFeature = LinuxFeature::bug(32 + 7);
