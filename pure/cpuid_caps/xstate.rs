// SPDX-License-Identifier: GPL-2.0
//! XSAVE state components: which ones KVM supports and how large the
//! XSAVE area is for a set of them (upstream `xstate_required_size()`).

use super::HostCpuid;
use crate::defs::regs::*;

/// XCR0 components KVM can give guests (`KVM_SUPPORTED_XCR0`).
pub const KVM_SUPPORTED_XCR0: u64 = XFEATURE_MASK_FP
    | XFEATURE_MASK_SSE
    | XFEATURE_MASK_YMM
    | XFEATURE_MASK_MPX
    | XFEATURE_MASK_AVX512
    | XFEATURE_MASK_PKRU
    | XFEATURE_MASK_XTILE;

/// IA32_XSS components KVM can give guests (`KVM_SUPPORTED_XSS`).
pub const KVM_SUPPORTED_XSS: u64 = XFEATURE_MASK_CET_ALL;

/// Legacy area plus XSAVE header: the smallest XSAVE area.
pub const XSAVE_LEGACY_AND_HEADER: u32 = 512 + 64;

/// Size of the XSAVE area holding `xstate_bv`, in the standard layout
/// (offsets from CPUID.(0DH,i):EBX) or compacted (`compacted`, 64-byte
/// alignment where `CPUID.(0DH,i):ECX[1]` asks for it). Upstream's
/// `xstate_required_size()`, with the component sizes read from `host`.
pub fn required_size<H: HostCpuid + ?Sized>(host: &H, xstate_bv: u64, compacted: bool) -> u32 {
    let mut ret = XSAVE_LEGACY_AND_HEADER;
    let bv = xstate_bv & !XFEATURE_MASK_FPSSE;
    for i in 2..64u32 {
        if bv & (1u64 << i) == 0 {
            continue;
        }
        let [size, std_offset, flags, _] = host.cpuid(0xd, i);
        let offset = if !compacted {
            std_offset
        } else if flags & 2 != 0 {
            align64(ret)
        } else {
            ret
        };
        ret = ret.max(offset.saturating_add(size));
    }
    ret
}

fn align64(x: u32) -> u32 {
    x.saturating_add(63) & !63
}
