// SPDX-License-Identifier: GPL-2.0
//! The CPUID facts kvm-amd needs about the host.

use core::arch::x86_64::__cpuid;
use kvm::defs::cpuid::{
    Feature, Leaf, X86_FEATURE_FLUSHBYASID, X86_FEATURE_NPT, X86_FEATURE_NRIPS,
};

/// The SVM feature leaf (AMD APM vol. 3, E.4.11).
const SVM_FEATURE_LEAF: u32 = Leaf::L8000000AEdx.cpuid().0;

fn vendor() -> [u8; 12] {
    let r = __cpuid(0);
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

/// Whether the host CPU is made by AMD or Hygon.
pub(crate) fn is_amd_or_hygon() -> bool {
    let v = vendor();
    &v == b"AuthenticAMD" || &v == b"HygonGenuine"
}

/// Whether the SVM leaf has feature `f` (an EDX bit of it).
fn svm_has(f: Feature) -> bool {
    __cpuid(0x8000_0000).eax >= SVM_FEATURE_LEAF && __cpuid(SVM_FEATURE_LEAF).edx & f.mask() != 0
}

/// Whether the CPU supports nested paging.
pub(crate) fn has_npt() -> bool {
    svm_has(X86_FEATURE_NPT)
}

/// Whether the CPU reports next RIP on intercepts.
pub(crate) fn has_nrips() -> bool {
    svm_has(X86_FEATURE_NRIPS)
}

/// Whether TLB_CONTROL supports flushing one ASID.
pub(crate) fn has_flush_by_asid() -> bool {
    svm_has(X86_FEATURE_FLUSHBYASID)
}

/// The highest ASID (CPUID 0x8000000A EBX - 1; ASID 0 is the host's).
pub(crate) fn max_asid() -> u32 {
    __cpuid(SVM_FEATURE_LEAF).ebx.saturating_sub(1).max(1)
}

/// The DE_CFG bits a guest may set (upstream's svm_get_feature_msr()):
/// LFENCE serialising, when the host has it.
pub(crate) fn supported_de_cfg() -> u64 {
    let lfence = kvm::defs::cpuid::linux::LNX_LFENCE_RDTSC;
    if kvm::ext::msr::cpu_has(lfence.0) {
        kvm::defs::msr::MSR_AMD64_DE_CFG_LFENCE_SERIALIZE
    } else {
        0
    }
}
