// SPDX-License-Identifier: GPL-2.0
//! XSAVE state components: which ones KVM supports and how large the
//! XSAVE area is for a set of them (upstream `xstate_required_size()`).

use super::HostCpuid;

/// x87 state (XCR0 bit 0).
pub const XFEATURE_MASK_FP: u64 = 1 << 0;
/// SSE state (bit 1).
pub const XFEATURE_MASK_SSE: u64 = 1 << 1;
/// AVX upper halves (bit 2).
pub const XFEATURE_MASK_YMM: u64 = 1 << 2;
/// MPX bound registers (bit 3).
pub const XFEATURE_MASK_BNDREGS: u64 = 1 << 3;
/// MPX configuration (bit 4).
pub const XFEATURE_MASK_BNDCSR: u64 = 1 << 4;
/// AVX-512 opmask (bit 5).
pub const XFEATURE_MASK_OPMASK: u64 = 1 << 5;
/// AVX-512 upper halves of ZMM0-15 (bit 6).
pub const XFEATURE_MASK_ZMM_HI256: u64 = 1 << 6;
/// AVX-512 ZMM16-31 (bit 7).
pub const XFEATURE_MASK_HI16_ZMM: u64 = 1 << 7;
/// Processor trace (IA32_XSS bit 8).
pub const XFEATURE_MASK_PT: u64 = 1 << 8;
/// Protection keys (bit 9).
pub const XFEATURE_MASK_PKRU: u64 = 1 << 9;
/// PASID (IA32_XSS bit 10).
pub const XFEATURE_MASK_PASID: u64 = 1 << 10;
/// CET user state (IA32_XSS bit 11).
pub const XFEATURE_MASK_CET_USER: u64 = 1 << 11;
/// CET supervisor state (IA32_XSS bit 12).
pub const XFEATURE_MASK_CET_KERNEL: u64 = 1 << 12;
/// Arch LBR (IA32_XSS bit 15).
pub const XFEATURE_MASK_LBR: u64 = 1 << 15;
/// AMX tile configuration (bit 17).
pub const XFEATURE_MASK_XTILE_CFG: u64 = 1 << 17;
/// AMX tile data (bit 18), the one dynamic (XFD) component.
pub const XFEATURE_MASK_XTILE_DATA: u64 = 1 << 18;
/// APX extended GPRs (bit 19).
pub const XFEATURE_MASK_APX: u64 = 1 << 19;

/// MPX state.
pub const XFEATURE_MASK_MPX: u64 = XFEATURE_MASK_BNDREGS | XFEATURE_MASK_BNDCSR;
/// All AVX-512 state.
pub const XFEATURE_MASK_AVX512: u64 =
    XFEATURE_MASK_OPMASK | XFEATURE_MASK_ZMM_HI256 | XFEATURE_MASK_HI16_ZMM;
/// All AMX state.
pub const XFEATURE_MASK_XTILE: u64 = XFEATURE_MASK_XTILE_CFG | XFEATURE_MASK_XTILE_DATA;
/// All CET state.
pub const XFEATURE_MASK_CET_ALL: u64 = XFEATURE_MASK_CET_USER | XFEATURE_MASK_CET_KERNEL;
/// Legacy region components (always in the 512-byte legacy area).
pub const XFEATURE_MASK_FPSSE: u64 = XFEATURE_MASK_FP | XFEATURE_MASK_SSE;

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
/// alignment where CPUID.(0DH,i):ECX[1] asks for it). Upstream's
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
