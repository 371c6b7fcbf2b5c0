//! Shifts and rotates: ROL/ROR/RCL/RCR/SHL/SHR/SAR/SHLD/SHRD.
//!
//! Flags follow the SDM; where it calls a flag undefined (OF for counts
//! other than 1, AF, CF for shift counts beyond the operand width,
//! SHLD/SHRD results for counts beyond the width) we produce a
//! deterministic value and the tests mask them.

use super::access::mask;
use super::decode::sign_extend;
use super::exec::{Ctx, Done, Res};
use super::flags::{bits, sign_bit, szp};
use super::insn::Op;
use super::{CpuState, GuestMemory};
use crate::defs::regs::{X86_EFLAGS_AF, X86_EFLAGS_ARITH, X86_EFLAGS_CF, X86_EFLAGS_OF};

/// Count mask for 64-bit operands.
const COUNT_MASK_64: u64 = 0x3F;
/// Count mask for other operand sizes.
const COUNT_MASK_32: u64 = 0x1F;

/// Result of a shift: value, flag mask written, flag values.
struct Shifted {
    val: u64,
    fmask: u64,
    f: u64,
}

fn bit(v: u64, n: u32) -> bool {
    n < 64 && (v >> n) & 1 != 0
}

fn flag(b: bool, f: u64) -> u64 {
    if b {
        f
    } else {
        0
    }
}

/// Compute a shift/rotate of `a` (masked to `size`) by the masked `count`
/// (non-zero), with incoming flags `fl`; `src` feeds SHLD/SHRD.
fn shift(op: Op, a: u64, src: u64, count: u32, size: u8, fl: u64) -> Shifted {
    let m = mask(size);
    let nb = bits(size);
    let a = a & m;
    let msb = |v: u64| v & sign_bit(size) != 0;
    let cf_in = fl & X86_EFLAGS_CF != 0;
    match op {
        Op::Rol | Op::Ror => {
            let r = count % nb;
            let val = if op == Op::Rol {
                ((a << r) | if r == 0 { 0 } else { a >> (nb - r) }) & m
            } else {
                ((a >> r) | if r == 0 { 0 } else { a << (nb - r) }) & m
            };
            let (cf, of) = if op == Op::Rol {
                let cf = val & 1 != 0;
                (cf, msb(val) != cf)
            } else {
                (msb(val), msb(val) != bit(val, nb - 2))
            };
            Shifted {
                val,
                fmask: X86_EFLAGS_CF | X86_EFLAGS_OF,
                f: flag(cf, X86_EFLAGS_CF) | flag(of, X86_EFLAGS_OF),
            }
        }
        Op::Rcl | Op::Rcr => {
            let r = count % (nb + 1);
            let wide = u128::from(a) | (u128::from(cf_in) << nb);
            let wm = (1u128 << (nb + 1)) - 1;
            let rot = if r == 0 {
                wide
            } else if op == Op::Rcl {
                ((wide << r) | (wide >> (nb + 1 - r))) & wm
            } else {
                ((wide >> r) | (wide << (nb + 1 - r))) & wm
            };
            let val = (rot as u64) & m;
            let cf = (rot >> nb) & 1 != 0;
            let of = if op == Op::Rcl {
                msb(val) != cf
            } else {
                msb(a) != cf_in
            };
            // RCR's OF for count 1 uses the pre-rotate MSB and CF; for larger
            // counts it is undefined: use the result-based formula.
            let of = if op == Op::Rcr && count != 1 {
                msb(val) != bit(val, nb - 2)
            } else {
                of
            };
            Shifted {
                val,
                fmask: X86_EFLAGS_CF | X86_EFLAGS_OF,
                f: flag(cf, X86_EFLAGS_CF) | flag(of, X86_EFLAGS_OF),
            }
        }
        Op::Shl => {
            let val = if count >= nb { 0 } else { (a << count) & m };
            let cf = count <= nb && bit(a, nb - count);
            let of = msb(val) != cf;
            Shifted {
                val,
                fmask: X86_EFLAGS_ARITH,
                f: szp(val, size) | flag(cf, X86_EFLAGS_CF) | flag(of, X86_EFLAGS_OF),
            }
        }
        Op::Shr => {
            let val = if count >= nb { 0 } else { a >> count };
            let cf = bit(a, count - 1);
            let of = if count == 1 { msb(a) } else { false };
            Shifted {
                val,
                fmask: X86_EFLAGS_ARITH,
                f: szp(val, size) | flag(cf, X86_EFLAGS_CF) | flag(of, X86_EFLAGS_OF),
            }
        }
        Op::Sar => {
            let s = sign_extend(a, size) as i64;
            let val = (s >> count.min(63)) as u64 & m;
            let cf = (s >> (count - 1).min(63)) & 1 != 0;
            Shifted {
                val,
                fmask: X86_EFLAGS_ARITH,
                f: szp(val, size) | flag(cf, X86_EFLAGS_CF),
            }
        }
        Op::Shld => {
            let src = src & m;
            // Concatenate dst:src(:dst for 16-bit counts > 16), shift left.
            let wide = (u128::from(a) << nb) | u128::from(src);
            let (val, cf) = if count <= nb {
                let r = (wide << count) >> nb;
                ((r as u64) & m, bit(a, nb - count))
            } else {
                // 16-bit with count 17..31: undefined; model dst:src:dst.
                let w3 = (u128::from(a) << (2 * nb)) | (u128::from(src) << nb) | u128::from(a);
                let r = (w3 << count) >> (2 * nb);
                let c = (w3 << (count - 1)) >> (3 * nb - 1);
                ((r as u64) & m, c & 1 != 0)
            };
            let of = msb(val) != msb(a);
            Shifted {
                val,
                fmask: X86_EFLAGS_ARITH,
                f: szp(val, size) | flag(cf, X86_EFLAGS_CF) | flag(of, X86_EFLAGS_OF),
            }
        }
        _ => {
            // SHRD.
            let src = src & m;
            let wide = (u128::from(src) << nb) | u128::from(a);
            let (val, cf) = if count <= nb {
                (((wide >> count) as u64) & m, (wide >> (count - 1)) & 1 != 0)
            } else {
                let w3 = (u128::from(a) << (2 * nb)) | (u128::from(src) << nb) | u128::from(a);
                (((w3 >> count) as u64) & m, (w3 >> (count - 1)) & 1 != 0)
            };
            let of = msb(val) != msb(a);
            Shifted {
                val,
                fmask: X86_EFLAGS_ARITH,
                f: szp(val, size) | flag(cf, X86_EFLAGS_CF) | flag(of, X86_EFLAGS_OF),
            }
        }
    }
}

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Shift/rotate instructions.
    pub(super) fn exec_shift(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        let dl = self.resolve(&i.dst, true)?;
        let (src, count_op) = if matches!(i.op, Op::Shld | Op::Shrd) {
            (self.read_op(&i.src)?, i.src2)
        } else {
            (0, i.src)
        };
        let cm = if size == 8 {
            COUNT_MASK_64
        } else {
            COUNT_MASK_32
        };
        let count = (self.read_op(&count_op)? & cm) as u32;
        let a = self.read_loc(&dl)?;
        if count == 0 {
            // No flags change; a register destination is still written
            // (a 32-bit register is zero-extended).
            if let super::access::Loc::Reg { .. } = dl {
                self.write_loc(&dl, a)?;
            }
            return self.done();
        }
        let s = shift(i.op, a, src, count, size, self.flags());
        self.write_loc(&dl, s.val)?;
        // AF is undefined for shifts; we clear it.
        let fmask = s.fmask;
        self.set_flags(fmask, s.f & !X86_EFLAGS_AF);
        self.done()
    }
}
