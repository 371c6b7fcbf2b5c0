//! MUL, IMUL (one, two and three operands), DIV and IDIV.

use super::access::mask;
use super::decode::sign_extend;
use super::exec::{Ctx, Done, Res, Stop};
use super::flags::{bits, szp};
use super::insn::{Op, Operand};
use super::{CpuState, Exception, GuestMemory};
use crate::defs::regs::{
    RAX, RDX, X86_EFLAGS_AF, X86_EFLAGS_CF, X86_EFLAGS_OF, X86_EFLAGS_PF, X86_EFLAGS_SF,
    X86_EFLAGS_ZF,
};
use crate::defs::vector::DE_VECTOR;

/// Flags written by multiplication (SF/ZF/AF/PF are architecturally
/// undefined; we derive SF/ZF/PF from the low half and clear AF).
const MUL_FLAGS: u64 =
    X86_EFLAGS_CF | X86_EFLAGS_OF | X86_EFLAGS_SF | X86_EFLAGS_ZF | X86_EFLAGS_AF | X86_EFLAGS_PF;

fn de() -> Stop {
    Stop::Fault(Exception::new(DE_VECTOR))
}

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Store a double-width result in rDX:rAX (AX for byte operands).
    fn store_wide(&mut self, size: u8, lo: u64, hi: u64) {
        if size == 1 {
            self.set(RAX, 2, (lo & 0xFF) | ((hi & 0xFF) << 8));
        } else {
            self.set(RAX, size, lo);
            self.set(RDX, size, hi);
        }
    }

    /// Read the double-width dividend rDX:rAX (AX for byte operands).
    fn load_wide(&self, size: u8) -> u128 {
        if size == 1 {
            u128::from(self.reg(RAX, 2))
        } else {
            (u128::from(self.reg(RDX, size)) << bits(size)) | u128::from(self.reg(RAX, size))
        }
    }

    /// MUL/IMUL/DIV/IDIV.
    pub(super) fn exec_muldiv(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        let m = mask(size);
        let nb = bits(size);
        match i.op {
            Op::Mul => {
                let b = self.read_op(&i.dst)? & m;
                let a = self.reg(RAX, size);
                let p = u128::from(a) * u128::from(b);
                let lo = (p as u64) & m;
                let hi = ((p >> nb) as u64) & m;
                self.store_wide(size, lo, hi);
                let of = if hi != 0 {
                    X86_EFLAGS_CF | X86_EFLAGS_OF
                } else {
                    0
                };
                self.set_flags(MUL_FLAGS, of | szp(lo, size));
            }
            Op::Imul1 => {
                let b = sign_extend(self.read_op(&i.dst)? & m, size) as i64;
                let a = sign_extend(self.reg(RAX, size), size) as i64;
                let p = i128::from(a) * i128::from(b);
                let lo = (p as u64) & m;
                let hi = ((p >> nb) as u64) & m;
                self.store_wide(size, lo, hi);
                let fits = i128::from(sign_extend(lo, size) as i64) == p;
                let of = if fits {
                    0
                } else {
                    X86_EFLAGS_CF | X86_EFLAGS_OF
                };
                self.set_flags(MUL_FLAGS, of | szp(lo, size));
            }
            Op::Imul => {
                let Operand::Reg { reg, .. } = i.dst else {
                    return Err(Stop::Unhandleable);
                };
                let (a, b) = if let Operand::None = i.src2 {
                    (self.reg(reg, size), self.read_op(&i.src)?)
                } else {
                    let s = self.read_op(&i.src)?;
                    (s, self.read_op(&i.src2)?)
                };
                let a = sign_extend(a & m, size) as i64;
                let b = sign_extend(b & m, size) as i64;
                let p = i128::from(a) * i128::from(b);
                let lo = (p as u64) & m;
                let fits = i128::from(sign_extend(lo, size) as i64) == p;
                self.set(reg, size, lo);
                let of = if fits {
                    0
                } else {
                    X86_EFLAGS_CF | X86_EFLAGS_OF
                };
                self.set_flags(MUL_FLAGS, of | szp(lo, size));
            }
            Op::Div => {
                let d = self.read_op(&i.dst)? & m;
                if d == 0 {
                    return Err(de());
                }
                let n = self.load_wide(size);
                let (q, r) = udivmod128(n, d);
                if q > u128::from(m) {
                    return Err(de());
                }
                self.store_wide(size, q as u64, r);
            }
            _ => {
                let d = sign_extend(self.read_op(&i.dst)? & m, size) as i64;
                if d == 0 {
                    return Err(de());
                }
                let raw = self.load_wide(size);
                // Sign-extend the 2*size-byte dividend to i128.
                let wide_bits = 2 * nb;
                let n = if wide_bits >= 128 {
                    raw as i128
                } else {
                    let sh = 128 - wide_bits;
                    ((raw << sh) as i128) >> sh
                };
                let (q, r) = idivmod128(n, d).ok_or_else(de)?;
                let lim = 1i128 << (nb - 1);
                if q >= lim || q < -lim {
                    return Err(de());
                }
                self.store_wide(size, (q as u64) & m, (r as u64) & m);
            }
        }
        self.done()
    }
}

/// `n / d` and `n % d` without 128-bit division instructions: the kernel
/// has no `__udivti3`, so this is schoolbook binary long division. `d != 0`.
fn udivmod128(n: u128, d: u64) -> (u128, u64) {
    let d = u128::from(d);
    let mut q: u128 = 0;
    let mut r: u128 = 0;
    for bit in (0..128u32).rev() {
        r = (r << 1) | ((n >> bit) & 1);
        if r >= d {
            r -= d;
            q |= 1u128 << bit;
        }
    }
    (q, r as u64)
}

/// Signed `n / d` and `n % d` (truncating, like IDIV), or `None` for a
/// zero divisor; a quotient that does not fit wraps and is rejected by
/// the caller's range check.
fn idivmod128(n: i128, d: i64) -> Option<(i128, i128)> {
    if d == 0 {
        return None;
    }
    let (q, r) = udivmod128(n.unsigned_abs(), d.unsigned_abs());
    let q = if (n < 0) != (d < 0) {
        (q as i128).wrapping_neg()
    } else {
        q as i128
    };
    let r = if n < 0 { -i128::from(r) } else { i128::from(r) };
    Some((q, r))
}
