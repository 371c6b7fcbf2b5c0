// SPDX-License-Identifier: GPL-2.0
//! The host kernel's view of its CPU (`boot_cpu_has()`): vendor and
//! family, and [`derived_has`], a bare-metal approximation from raw CPUID
//! for when the kernel cannot be asked (host tests). The flag numbers
//! themselves are in [`crate::defs::cpuid::linux`].

use super::HostCpuid;
use crate::defs::cpuid::{self as f, Feature, Leaf, LinuxFeature};
use crate::defs::cpuid::{
    LNX_ARCH_PERFMON, LNX_BHI_CTRL, LNX_CONSTANT_TSC, LNX_IBPB, LNX_IBRS, LNX_LS_CFG_SSBD,
    LNX_MSR_IMM, LNX_PERFMON_V2, LNX_RRSBA_CTRL, LNX_SGX1, LNX_SGX2, LNX_SGX_EDECCSSA, LNX_SSBD,
    LNX_STIBP, LNX_TSA_FILL_NO, LNX_TSA_L1_NO, LNX_TSA_SQ_NO, X86_BUG_CPU_MELTDOWN, X86_BUG_MDS,
    X86_BUG_NULL_SEG, X86_BUG_SPEC_STORE_BYPASS,
};

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
    vendor_of(host.cpuid(0, 0))
}

/// The vendor of CPUID.0's `[eax, ebx, ecx, edx]`.
pub fn vendor_of(r: [u32; 4]) -> Vendor {
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
        X86_BUG_NULL_SEG => {
            // check_null_seg_clears_base(): AMD/Hygon only; Zen2 (family
            // 17h/18h) clears the base without saying so, on bare metal.
            amd && !has(f::X86_FEATURE_NULL_SEL_CLR_BASE)
                && (has(f::X86_FEATURE_HYPERVISOR) || !matches!(family(host), 0x17 | 0x18))
        }
        X86_BUG_SPEC_STORE_BYPASS => {
            if amd {
                !has(f::X86_FEATURE_AMD_SSB_NO) && family(host) > 0x12
            } else {
                v == Vendor::Intel
            }
        }
        X86_BUG_CPU_MELTDOWN | X86_BUG_MDS => v == Vendor::Intel,
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
