// SPDX-License-Identifier: GPL-2.0
//! The host kernel's view of its CPU (`boot_cpu_has()`): Linux 7.3
//! feature numbers for the synthetic flags and bugs KVM consults, and
//! [`derived_has`], a bare-metal approximation from raw CPUID for when the
//! kernel cannot be asked (host tests).

use super::features as f;
use super::leaf::{Feature, Leaf};
use super::HostCpuid;

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
        match Leaf::from_linux_word(self.word()) {
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

/// `X86_FEATURE_CONSTANT_TSC` (scattered from CPUID.80000007H:EDX[8]).
pub const LNX_CONSTANT_TSC: LinuxFeature = LinuxFeature::new(3, 8);
/// `X86_FEATURE_ARCH_PERFMON` (Intel architectural PerfMon usable).
pub const LNX_ARCH_PERFMON: LinuxFeature = LinuxFeature::new(3, 11);
/// `X86_FEATURE_SSBD` (some SSBD mechanism is available).
pub const LNX_SSBD: LinuxFeature = LinuxFeature::new(7, 17);
/// `X86_FEATURE_PERFMON_V2` (scattered from CPUID.80000022H:EAX[0]).
pub const LNX_PERFMON_V2: LinuxFeature = LinuxFeature::new(7, 20);
/// `X86_FEATURE_LS_CFG_SSBD`: SSBD through the AMD LS_CFG MSR.
pub const LNX_LS_CFG_SSBD: LinuxFeature = LinuxFeature::new(7, 24);
/// `X86_FEATURE_IBRS`.
pub const LNX_IBRS: LinuxFeature = LinuxFeature::new(7, 25);
/// `X86_FEATURE_IBPB`.
pub const LNX_IBPB: LinuxFeature = LinuxFeature::new(7, 26);
/// `X86_FEATURE_STIBP`.
pub const LNX_STIBP: LinuxFeature = LinuxFeature::new(7, 27);
/// `X86_FEATURE_SGX1` (scattered from CPUID.12H:EAX[0]).
pub const LNX_SGX1: LinuxFeature = LinuxFeature::new(11, 8);
/// `X86_FEATURE_SGX2` (scattered from CPUID.12H:EAX[1]).
pub const LNX_SGX2: LinuxFeature = LinuxFeature::new(11, 9);
/// `X86_FEATURE_RRSBA_CTRL` (scattered from CPUID.(7,2):EDX[2]).
pub const LNX_RRSBA_CTRL: LinuxFeature = LinuxFeature::new(11, 11);
/// `X86_FEATURE_SGX_EDECCSSA` (scattered from CPUID.12H:EAX[11]).
pub const LNX_SGX_EDECCSSA: LinuxFeature = LinuxFeature::new(11, 18);
/// `X86_FEATURE_TSA_FILL_NO` (scattered from CPUID.80000021H:ECX[7]).
pub const LNX_TSA_FILL_NO: LinuxFeature = LinuxFeature::new(17, 5);
/// `X86_FEATURE_BHI_CTRL` (scattered from CPUID.(7,2):EDX[4]).
pub const LNX_BHI_CTRL: LinuxFeature = LinuxFeature::new(21, 2);
/// `X86_FEATURE_TSA_SQ_NO` (scattered from CPUID.80000021H:ECX[1]).
pub const LNX_TSA_SQ_NO: LinuxFeature = LinuxFeature::new(21, 11);
/// `X86_FEATURE_TSA_L1_NO` (scattered from CPUID.80000021H:ECX[2]).
pub const LNX_TSA_L1_NO: LinuxFeature = LinuxFeature::new(21, 12);
/// `X86_FEATURE_MSR_IMM` (scattered from CPUID.(7,1):ECX[5]).
pub const LNX_MSR_IMM: LinuxFeature = LinuxFeature::new(21, 16);
/// `X86_FEATURE_LFENCE_RDTSC` (word 20, often synthesized).
pub const LNX_LFENCE_RDTSC: LinuxFeature = hw(f::X86_FEATURE_LFENCE_RDTSC);

/// `X86_BUG_NULL_SEG`: nulling a selector preserves the base.
pub const BUG_NULL_SEG: LinuxFeature = LinuxFeature::bug(10);
/// `X86_BUG_CPU_MELTDOWN`.
pub const BUG_CPU_MELTDOWN: LinuxFeature = LinuxFeature::bug(14);
/// `X86_BUG_SPEC_STORE_BYPASS`.
pub const BUG_SPEC_STORE_BYPASS: LinuxFeature = LinuxFeature::bug(17);
/// `X86_BUG_MDS`.
pub const BUG_MDS: LinuxFeature = LinuxFeature::bug(19);
/// `X86_BUG_TAA`.
pub const BUG_TAA: LinuxFeature = LinuxFeature::bug(22);
/// `X86_BUG_EIBRS_PBRSB`.
pub const BUG_EIBRS_PBRSB: LinuxFeature = LinuxFeature::bug(28);
/// `X86_BUG_GDS`.
pub const BUG_GDS: LinuxFeature = LinuxFeature::bug(30);
/// `X86_BUG_RFDS`.
pub const BUG_RFDS: LinuxFeature = LinuxFeature::bug(32 + 2);
/// `X86_BUG_ITS`.
pub const BUG_ITS: LinuxFeature = LinuxFeature::bug(32 + 7);

/// CPU vendor, from CPUID.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    /// "GenuineIntel".
    Intel,
    /// "AuthenticAMD".
    Amd,
    /// "HygonGenuine".
    Hygon,
    /// "CentaurHauls".
    Centaur,
    /// "  Shanghai  ".
    Zhaoxin,
    /// Anything else.
    Other,
}

/// The vendor of `host`.
pub fn vendor<H: HostCpuid + ?Sized>(host: &H) -> Vendor {
    let r = host.cpuid(0, 0);
    match (r[1], r[3], r[2]) {
        (0x756e_6547, 0x4965_6e69, 0x6c65_746e) => Vendor::Intel,
        (0x6874_7541, 0x6974_6e65, 0x444d_4163) => Vendor::Amd,
        (0x6f67_7948, 0x6e65_476e, 0x656e_6975) => Vendor::Hygon,
        (0x746e_6543, 0x4872_7561, 0x736c_7561) => Vendor::Centaur,
        (0x6853_2020, 0x6867_6e61, 0x2020_6961) => Vendor::Zhaoxin,
        _ => Vendor::Other,
    }
}

/// Display family of `host` (base family plus extended family).
pub fn family<H: HostCpuid + ?Sized>(host: &H) -> u32 {
    let eax = host.cpuid(1, 0)[0];
    let base = (eax >> 8) & 0xf;
    if base == 0xf {
        base.saturating_add((eax >> 20) & 0xff)
    } else {
        base
    }
}

/// `boot_cpu_has()` of a hardware feature (false for KVM-only words).
pub fn kernel_has<H: HostCpuid + ?Sized>(host: &H, feature: Feature) -> bool {
    match feature.linux() {
        Some(l) => host.boot_cpu_has(l),
        None => false,
    }
}

/// Raw CPUID bit of `feature`, honouring the leaf range like upstream's
/// `raw_cpuid_get()`.
pub fn raw_has<H: HostCpuid + ?Sized>(host: &H, feature: Feature) -> bool {
    raw_word(host, feature.leaf) & feature.mask() != 0
}

/// Raw CPUID register of `leaf`, 0 if its function is out of range or
/// belongs to a range KVM does not know (upstream `raw_cpuid_get()`).
pub fn raw_word<H: HostCpuid + ?Sized>(host: &H, leaf: Leaf) -> u32 {
    let (function, index, reg) = leaf.cpuid();
    let base = function & 0xffff_0000;
    if base != 0 && base != 0x8000_0000 && base != 0xc000_0000 {
        return 0;
    }
    if host.cpuid(base, 0)[0] < function {
        return 0;
    }
    reg.of(host.cpuid(function, index))
}

/// What `boot_cpu_has(feature)` would say on bare metal, from raw CPUID
/// alone: hardware words as reported, the synthetic flags KVM consults
/// derived the way Linux derives them, bugs per Linux's vendor rules
/// (Intel-only bugs are taken as absent). Kernel command-line choices and
/// MSR probes are not modelled.
pub fn derived_has<H: HostCpuid + ?Sized>(host: &H, feature: LinuxFeature) -> bool {
    if let Some(hwf) = feature.hardware() {
        return derived_hardware(host, hwf);
    }
    let v = vendor(host);
    let amd = matches!(v, Vendor::Amd | Vendor::Hygon);
    let has = |x: Feature| raw_has(host, x);
    match feature {
        LNX_CONSTANT_TSC => has(f::X86_FEATURE_CONSTANT_TSC),
        LNX_ARCH_PERFMON => {
            let eax = if host.cpuid(0, 0)[0] >= 0xa {
                host.cpuid(0xa, 0)[0]
            } else {
                0
            };
            v == Vendor::Intel && eax & 0xff != 0 && (eax >> 8) & 0xff > 1
        }
        LNX_PERFMON_V2 => has(f::X86_FEATURE_PERFMON_V2),
        LNX_IBRS => has(f::X86_FEATURE_SPEC_CTRL) || has(f::X86_FEATURE_AMD_IBRS),
        LNX_IBPB => has(f::X86_FEATURE_SPEC_CTRL) || has(f::X86_FEATURE_AMD_IBPB),
        LNX_STIBP => has(f::X86_FEATURE_INTEL_STIBP) || has(f::X86_FEATURE_AMD_STIBP),
        LNX_LS_CFG_SSBD => ls_cfg_ssbd(host, amd),
        LNX_SSBD => {
            has(f::X86_FEATURE_SPEC_CTRL_SSBD)
                || has(f::X86_FEATURE_VIRT_SSBD)
                || has(f::X86_FEATURE_AMD_SSBD)
                || ls_cfg_ssbd(host, amd)
        }
        LNX_SGX1 => has(f::X86_FEATURE_SGX) && has(f::X86_FEATURE_SGX1),
        LNX_SGX2 => has(f::X86_FEATURE_SGX) && has(f::X86_FEATURE_SGX2),
        LNX_SGX_EDECCSSA => has(f::X86_FEATURE_SGX) && has(f::X86_FEATURE_SGX_EDECCSSA),
        LNX_RRSBA_CTRL => has(f::X86_FEATURE_RRSBA_CTRL),
        LNX_BHI_CTRL => has(f::X86_FEATURE_BHI_CTRL),
        LNX_TSA_SQ_NO => has(f::X86_FEATURE_TSA_SQ_NO),
        LNX_TSA_L1_NO => has(f::X86_FEATURE_TSA_L1_NO),
        LNX_TSA_FILL_NO => has(f::X86_FEATURE_TSA_FILL_NO),
        LNX_MSR_IMM => has(f::X86_FEATURE_MSR_IMM),
        BUG_NULL_SEG => {
            // check_null_seg_clears_base(): AMD/Hygon only; Zen2 (family
            // 17h/18h) clears the base without saying so, on bare metal.
            amd && !has(f::X86_FEATURE_NULL_SEL_CLR_BASE)
                && (has(f::X86_FEATURE_HYPERVISOR) || !matches!(family(host), 0x17 | 0x18))
        }
        BUG_SPEC_STORE_BYPASS => {
            if amd {
                !has(f::X86_FEATURE_AMD_SSB_NO) && family(host) > 0x12
            } else {
                v == Vendor::Intel
            }
        }
        BUG_CPU_MELTDOWN | BUG_MDS => v == Vendor::Intel,
        _ => false,
    }
}

fn ls_cfg_ssbd<H: HostCpuid + ?Sized>(host: &H, amd: bool) -> bool {
    amd && !raw_has(host, f::X86_FEATURE_AMD_SSBD)
        && !raw_has(host, f::X86_FEATURE_VIRT_SSBD)
        && matches!(family(host), 0x15..=0x17)
}

fn derived_hardware<H: HostCpuid + ?Sized>(host: &H, feature: Feature) -> bool {
    if feature == f::X86_FEATURE_LFENCE_RDTSC {
        // init_amd()/init_intel()/...: LFENCE made (or known) serializing.
        return raw_has(host, feature) || raw_has(host, f::X86_FEATURE_XMM2);
    }
    // init_speculation_control(): AMD_SSBD hides VIRT_SSBD.
    if feature == f::X86_FEATURE_VIRT_SSBD && raw_has(host, f::X86_FEATURE_AMD_SSBD) {
        return false;
    }
    raw_has(host, feature)
}
