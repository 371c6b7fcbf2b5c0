// SPDX-License-Identifier: GPL-2.0
//! Exception vectors (upstream `uapi/asm/kvm.h`, and `NMI_VECTOR` from
//! `asm/irq_vectors.h`) and which exceptions push an error code.

/// #DE: divide error.
pub const DE_VECTOR: u8 = 0;
/// #DB: debug.
pub const DB_VECTOR: u8 = 1;
/// NMI (an interrupt, never injected as an exception).
pub const NMI_VECTOR: u8 = 2;
/// #BP: breakpoint (INT3).
pub const BP_VECTOR: u8 = 3;
/// #OF: overflow (INTO).
pub const OF_VECTOR: u8 = 4;
/// #BR: BOUND range exceeded.
pub const BR_VECTOR: u8 = 5;
/// #UD: invalid opcode.
pub const UD_VECTOR: u8 = 6;
/// #NM: device not available.
pub const NM_VECTOR: u8 = 7;
/// #DF: double fault.
pub const DF_VECTOR: u8 = 8;
/// #TS: invalid TSS.
pub const TS_VECTOR: u8 = 10;
/// #NP: segment not present.
pub const NP_VECTOR: u8 = 11;
/// #SS: stack-segment fault.
pub const SS_VECTOR: u8 = 12;
/// #GP: general protection.
pub const GP_VECTOR: u8 = 13;
/// #PF: page fault.
pub const PF_VECTOR: u8 = 14;
/// #MF: x87 floating-point error.
pub const MF_VECTOR: u8 = 16;
/// #AC: alignment check.
pub const AC_VECTOR: u8 = 17;
/// #MC: machine check.
pub const MC_VECTOR: u8 = 18;
/// #XM: SIMD floating-point exception.
pub const XM_VECTOR: u8 = 19;
/// #VE: virtualization exception.
pub const VE_VECTOR: u8 = 20;
/// #CP: control protection.
pub const CP_VECTOR: u8 = 21;
/// #HV: hypervisor injection (SEV-SNP).
pub const HV_VECTOR: u8 = 28;
/// #VC: VMM communication (SEV-ES).
pub const VC_VECTOR: u8 = 29;
/// #SX: security exception.
pub const SX_VECTOR: u8 = 30;

/// Vectors 0-31 are reserved for exceptions; external interrupts may use
/// the rest.
pub const NR_EXCEPTION_VECTORS: u8 = 32;

/// Bit `v` set: exception `v` pushes an error code.
const ERROR_CODE_VECTORS: u32 = (1 << DF_VECTOR)
    | (1 << TS_VECTOR)
    | (1 << NP_VECTOR)
    | (1 << SS_VECTOR)
    | (1 << GP_VECTOR)
    | (1 << PF_VECTOR)
    | (1 << AC_VECTOR)
    | (1 << CP_VECTOR)
    | (1 << VC_VECTOR)
    | (1 << SX_VECTOR);

/// Whether delivering exception `vector` pushes an error code: #DF, #TS,
/// #NP, #SS, #GP, #PF, #AC, #CP, #VC and #SX (upstream's
/// `x86_exception_has_error_code()` lists only the first seven). `false`
/// for vectors 32 and up, which are not exceptions.
pub const fn exception_has_error_code(vector: u8) -> bool {
    vector < NR_EXCEPTION_VECTORS && ERROR_CODE_VECTORS & (1 << vector) != 0
}
