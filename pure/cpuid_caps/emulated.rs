// SPDX-License-Identifier: GPL-2.0
//! `KVM_GET_EMULATED_CPUID`: features KVM can emulate although the
//! hardware may lack them (upstream `__do_cpuid_func_emulated()`).
//!
//! The instruction emulator must really handle MOVBE and RDPID for these
//! answers to be honest; userspace only uses them when asked to (e.g.
//! QEMU `-cpu ...,+movbe` on a host without MOVBE).

use super::caps::KvmCaps;
use super::{CpuidEntry, HostCpuid, Options, TooMany, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
use crate::defs::cpuid::{X86_FEATURE_MOVBE, X86_FEATURE_RDPID, X86_FEATURE_RDTSCP};

/// Entries of `KVM_GET_EMULATED_CPUID`.
pub const NR_EMULATED_ENTRIES: usize = 3;

/// Smallest `nent` upstream accepts: it checks for room before each leaf
/// it visits, also after the last entry, so one slot more than it fills.
pub const MIN_EMULATED_NENT: usize = NR_EMULATED_ENTRIES + 1;

/// The emulated leaves, given whether RDTSCP is supported (RDPID is
/// emulated through the same `MSR_TSC_AUX`).
pub const fn emulated_entries(rdtscp: bool) -> [CpuidEntry; NR_EMULATED_ENTRIES] {
    let zero = CpuidEntry {
        function: 0,
        index: 0,
        flags: 0,
        eax: 0,
        ebx: 0,
        ecx: 0,
        edx: 0,
    };
    [
        // Leaf 0: up to leaf 7.
        CpuidEntry { eax: 7, ..zero },
        // Leaf 1: MOVBE (MONITOR/MWAIT are never offered here).
        CpuidEntry {
            function: 1,
            ecx: X86_FEATURE_MOVBE.mask(),
            ..zero
        },
        CpuidEntry {
            function: 7,
            flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            ecx: if rdtscp { X86_FEATURE_RDPID.mask() } else { 0 },
            ..zero
        },
    ]
}

/// `KVM_GET_EMULATED_CPUID` on a host with RDTSCP (every SVM-capable
/// AMD CPU): fills `out`, or [`TooMany`] (`-E2BIG`) if `out` has fewer
/// than [`MIN_EMULATED_NENT`] entries, like upstream.
pub fn emulated(out: &mut [CpuidEntry]) -> Result<usize, TooMany> {
    fill(emulated_entries(true), out)
}

/// `KVM_GET_EMULATED_CPUID` with RDPID offered only if this KVM supports
/// RDTSCP on `host` (upstream's exact rule).
pub fn emulated_for<H: HostCpuid + ?Sized>(
    host: &H,
    opts: &Options,
    out: &mut [CpuidEntry],
) -> Result<usize, TooMany> {
    let caps = KvmCaps::new(host, opts);
    fill(emulated_entries(caps.has(X86_FEATURE_RDTSCP)), out)
}

fn fill(
    entries: [CpuidEntry; NR_EMULATED_ENTRIES],
    out: &mut [CpuidEntry],
) -> Result<usize, TooMany> {
    if out.len() < MIN_EMULATED_NENT {
        return Err(TooMany);
    }
    for (slot, e) in out.iter_mut().zip(entries.iter()) {
        *slot = *e;
    }
    Ok(NR_EMULATED_ENTRIES)
}
