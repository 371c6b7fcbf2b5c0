//! Arithmetic flag computation and condition codes.

use super::access::mask;
use crate::defs::regs::{
    X86_EFLAGS_AF, X86_EFLAGS_CF, X86_EFLAGS_OF, X86_EFLAGS_PF, X86_EFLAGS_SF, X86_EFLAGS_ZF,
};

/// Sign bit of an operand of `size` bytes.
pub(super) fn sign_bit(size: u8) -> u64 {
    1u64 << (u32::from(size) * 8 - 1).min(63)
}

/// Bits in an operand of `size` bytes.
pub(super) fn bits(size: u8) -> u32 {
    (u32::from(size) * 8).min(64)
}

/// PF: even parity of the low byte.
pub(super) fn parity(v: u64) -> u64 {
    if (v as u8).count_ones() & 1 == 0 {
        X86_EFLAGS_PF
    } else {
        0
    }
}

/// SF, ZF and PF of a result.
pub(super) fn szp(res: u64, size: u8) -> u64 {
    let r = res & mask(size);
    let mut f = parity(r);
    if r == 0 {
        f |= X86_EFLAGS_ZF;
    }
    if r & sign_bit(size) != 0 {
        f |= X86_EFLAGS_SF;
    }
    f
}

/// `a + b + carry` with all six flags.
pub(super) fn add(a: u64, b: u64, carry: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let full = u128::from(a) + u128::from(b) + u128::from(carry);
    let res = (full as u64) & m;
    let mut f = szp(res, size);
    if full > u128::from(m) {
        f |= X86_EFLAGS_CF;
    }
    if (a ^ res) & (b ^ res) & sign_bit(size) != 0 {
        f |= X86_EFLAGS_OF;
    }
    if (a ^ b ^ res) & 0x10 != 0 {
        f |= X86_EFLAGS_AF;
    }
    (res, f)
}

/// `a - b - borrow` with all six flags.
pub(super) fn sub(a: u64, b: u64, borrow: bool, size: u8) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let res = a.wrapping_sub(b).wrapping_sub(u64::from(borrow)) & m;
    let mut f = szp(res, size);
    if u128::from(a) < u128::from(b) + u128::from(borrow) {
        f |= X86_EFLAGS_CF;
    }
    if (a ^ b) & (a ^ res) & sign_bit(size) != 0 {
        f |= X86_EFLAGS_OF;
    }
    if (a ^ b ^ res) & 0x10 != 0 {
        f |= X86_EFLAGS_AF;
    }
    (res, f)
}

/// Flags of a logical result (CF = OF = 0; AF cleared).
pub(super) fn logic(res: u64, size: u8) -> u64 {
    szp(res, size)
}

/// Evaluate condition code `cc` (0..=15, Jcc encoding) on `f`.
pub(super) fn cond(cc: u8, f: u64) -> bool {
    let cf = f & X86_EFLAGS_CF != 0;
    let zf = f & X86_EFLAGS_ZF != 0;
    let sf = f & X86_EFLAGS_SF != 0;
    let of = f & X86_EFLAGS_OF != 0;
    let pf = f & X86_EFLAGS_PF != 0;
    let r = match cc >> 1 {
        0 => of,
        1 => cf,
        2 => zf,
        3 => cf || zf,
        4 => sf,
        5 => pf,
        6 => sf != of,
        _ => zf || (sf != of),
    };
    if cc & 1 != 0 {
        !r
    } else {
        r
    }
}
