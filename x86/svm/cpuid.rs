// SPDX-License-Identifier: GPL-2.0
//! The CPUID facts kvm-amd needs about the host.

use core::arch::x86_64::__cpuid;

/// CPUID leaf with the SVM feature bits (AMD APM vol. 3, E.4.11).
const SVM_FEATURE_LEAF: u32 = 0x8000_000a;
/// EDX bit 0 of [`SVM_FEATURE_LEAF`]: nested paging.
const SVM_FEATURE_NPT: u32 = 1 << 0;

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

/// Whether the CPU supports nested paging.
pub(crate) fn has_npt() -> bool {
    __cpuid(0x8000_0000).eax >= SVM_FEATURE_LEAF
        && __cpuid(SVM_FEATURE_LEAF).edx & SVM_FEATURE_NPT != 0
}

/// EDX bit 3 of [`SVM_FEATURE_LEAF`]: the CPU saves the next RIP.
const SVM_FEATURE_NRIPS: u32 = 1 << 3;
/// EDX bit 6 of [`SVM_FEATURE_LEAF`]: TLB_CONTROL can flush one ASID.
const SVM_FEATURE_FLUSH_BY_ASID: u32 = 1 << 6;

/// Whether the CPU reports next RIP on intercepts.
pub(crate) fn has_nrips() -> bool {
    __cpuid(SVM_FEATURE_LEAF).edx & SVM_FEATURE_NRIPS != 0
}

/// Whether TLB_CONTROL supports flushing one ASID.
pub(crate) fn has_flush_by_asid() -> bool {
    __cpuid(SVM_FEATURE_LEAF).edx & SVM_FEATURE_FLUSH_BY_ASID != 0
}

/// The highest ASID (CPUID 0x8000000A EBX - 1; ASID 0 is the host's).
pub(crate) fn max_asid() -> u32 {
    __cpuid(SVM_FEATURE_LEAF).ebx.saturating_sub(1).max(1)
}
