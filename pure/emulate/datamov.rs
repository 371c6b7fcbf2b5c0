//! MOV/MOVZX/MOVSX/MOVSXD/MOVNTI, LEA, XCHG, CMPXCHG, CMPXCHG8B/16B, XADD,
//! BSWAP, CMOVcc, SETcc, CBW/CWD families and XLAT.

use super::access::{mask, Loc};
use super::decode::sign_extend;
use super::exec::{Ctx, Done, Res, Stop};
use super::flags;
use super::insn::{Op, Operand};
use super::regs::SegReg;
use super::{CpuState, Exception, GuestMemory};
use crate::defs::regs::{RAX, RBX, RCX, RDX, X86_EFLAGS_ARITH, X86_EFLAGS_ZF};

/// Required alignment of a CMPXCHG16B operand.
const CMPXCHG16B_ALIGN: u64 = 16;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// MOV family.
    pub(super) fn exec_mov(&mut self) -> Res<Done> {
        let i = self.insn;
        let dsize = Self::op_size(&i.dst);
        let ssize = Self::op_size(&i.src);
        let v = self.read_op(&i.src)?;
        let v = match i.op {
            Op::Movsx | Op::Movsxd => sign_extend(v, ssize) & mask(dsize),
            _ => v & mask(dsize),
        };
        self.write_op(&i.dst, v)?;
        self.done()
    }

    /// LEA.
    pub(super) fn exec_lea(&mut self) -> Res<Done> {
        let i = self.insn;
        let (Operand::Reg { reg, size, .. }, Operand::Mem { mem, .. }) = (i.dst, i.src) else {
            return Err(Stop::Unhandleable);
        };
        let ea = self.ea(&mem);
        self.set(reg, size, ea & mask(size));
        self.done()
    }

    /// XCHG (implicitly locked with a memory operand).
    pub(super) fn exec_xchg(&mut self) -> Res<Done> {
        let i = self.insn;
        let dl = self.resolve(&i.dst, true)?;
        let sl = self.resolve(&i.src, true)?;
        let a = self.read_loc(&dl)?;
        let b = self.read_loc(&sl)?;
        match dl {
            Loc::Mem { la, size } => {
                let n = usize::from(size);
                let (ob, nb) = (a.to_le_bytes(), b.to_le_bytes());
                let (o, w) = (
                    ob.get(..n).ok_or(Stop::Unhandleable)?,
                    nb.get(..n).ok_or(Stop::Unhandleable)?,
                );
                if !self.cmpxchg_lin(la, o, w)? {
                    return Err(Stop::Retry);
                }
            }
            _ => self.write_loc(&dl, b)?,
        }
        self.write_loc(&sl, a)?;
        self.done()
    }

    /// CMPXCHG.
    pub(super) fn exec_cmpxchg(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        let dl = self.resolve(&i.dst, true)?;
        let src = self.read_op(&i.src)?;
        let d = self.read_loc(&dl)?;
        let acc = self.reg(RAX, size);
        let (_, f) = flags::sub(acc, d, false, size);
        if acc == d {
            self.rmw_write(&dl, d, src)?;
        } else {
            // The destination is written back with its own value (a
            // register destination is left untouched).
            if let Loc::Mem { .. } = dl {
                if !self.insn.lock {
                    self.write_loc(&dl, d)?;
                }
            }
            self.set(RAX, size, d);
        }
        self.set_flags(X86_EFLAGS_ARITH, f);
        self.done()
    }

    /// CMPXCHG8B / CMPXCHG16B (always atomic).
    pub(super) fn exec_cmpxchg8b(&mut self) -> Res<Done> {
        let i = self.insn;
        let Operand::Mem { mem, size } = i.dst else {
            return Err(Stop::Unhandleable);
        };
        let half = size / 2;
        let ea = self.ea(&mem);
        let la = self.linear(
            mem.seg,
            ea,
            u64::from(size),
            super::segment::SegAccess::Write,
        )?;
        if size == 16 && la % CMPXCHG16B_ALIGN != 0 {
            return Err(Exception::gp(0).into());
        }
        let n = usize::from(size);
        let h = usize::from(half);
        let mut cur = [0u8; 16];
        self.read_lin(la, cur.get_mut(..n).ok_or(Stop::Unhandleable)?, false)?;
        // Upstream reads the 16-byte operand, then gives up (em_cmpxchg8b):
        // userspace sees the two MMIO reads and then an emulation failure.
        if size == 16 {
            return Err(Stop::Unhandleable);
        }
        let mut exp = [0u8; 16];
        let mut new = [0u8; 16];
        let (lo, hi) = (
            self.reg(RAX, half).to_le_bytes(),
            self.reg(RDX, half).to_le_bytes(),
        );
        let (nlo, nhi) = (
            self.reg(RBX, half).to_le_bytes(),
            self.reg(RCX, half).to_le_bytes(),
        );
        for k in 0..h {
            let (a, b, c, d) = (lo.get(k), hi.get(k), nlo.get(k), nhi.get(k));
            if let (Some(a), Some(b), Some(c), Some(d)) = (a, b, c, d) {
                if let Some(s) = exp.get_mut(k) {
                    *s = *a;
                }
                if let Some(s) = exp.get_mut(k + h) {
                    *s = *b;
                }
                if let Some(s) = new.get_mut(k) {
                    *s = *c;
                }
                if let Some(s) = new.get_mut(k + h) {
                    *s = *d;
                }
            }
        }
        let (e, w, c) = (
            exp.get(..n).ok_or(Stop::Unhandleable)?,
            new.get(..n).ok_or(Stop::Unhandleable)?,
            cur.get(..n).ok_or(Stop::Unhandleable)?,
        );
        if e == c {
            if !self.cmpxchg_lin(la, e, w)? {
                return Err(Stop::Retry);
            }
            self.set_flags(X86_EFLAGS_ZF, X86_EFLAGS_ZF);
        } else {
            let mut lo = [0u8; 8];
            let mut hi = [0u8; 8];
            for k in 0..h {
                if let (Some(s), Some(v)) = (lo.get_mut(k), c.get(k)) {
                    *s = *v;
                }
                if let (Some(s), Some(v)) = (hi.get_mut(k), c.get(k + h)) {
                    *s = *v;
                }
            }
            self.set(RAX, half, u64::from_le_bytes(lo));
            self.set(RDX, half, u64::from_le_bytes(hi));
            self.set_flags(X86_EFLAGS_ZF, 0);
        }
        self.done()
    }

    /// XADD.
    pub(super) fn exec_xadd(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        let dl = self.resolve(&i.dst, true)?;
        let sl = self.resolve(&i.src, true)?;
        let d = self.read_loc(&dl)?;
        let s = self.read_loc(&sl)?;
        let (res, f) = flags::add(d, s, false, size);
        if let Loc::Mem { .. } = dl {
            self.rmw_write(&dl, d, res)?;
            self.write_loc(&sl, d)?;
        } else {
            self.write_loc(&sl, d)?;
            self.write_loc(&dl, res)?;
        }
        self.set_flags(X86_EFLAGS_ARITH, f);
        self.done()
    }

    /// BSWAP.
    pub(super) fn exec_bswap(&mut self) -> Res<Done> {
        let Operand::Reg { reg, size, .. } = self.insn.dst else {
            return Err(Stop::Unhandleable);
        };
        let v = self.reg(reg, size);
        let r = if size == 8 {
            v.swap_bytes()
        } else {
            u64::from((v as u32).swap_bytes())
        };
        self.set(reg, size, r);
        self.done()
    }

    /// CMOVcc: the source is always read; a 32-bit destination is
    /// zero-extended even when the condition is false.
    pub(super) fn exec_cmov(&mut self) -> Res<Done> {
        let i = self.insn;
        let v = self.read_op(&i.src)?;
        let Operand::Reg { reg, size, .. } = i.dst else {
            return Err(Stop::Unhandleable);
        };
        let val = if flags::cond(i.cond, self.flags()) {
            v
        } else {
            self.reg(reg, size)
        };
        self.set(reg, size, val);
        self.done()
    }

    /// SETcc.
    pub(super) fn exec_setcc(&mut self) -> Res<Done> {
        let i = self.insn;
        let v = u64::from(flags::cond(i.cond, self.flags()));
        self.write_op(&i.dst, v)?;
        self.done()
    }

    /// CBW/CWDE/CDQE and CWD/CDQ/CQO.
    pub(super) fn exec_cbw(&mut self) -> Res<Done> {
        let os = self.insn.opsize;
        if self.insn.op == Op::Cbw {
            let half = os / 2;
            let v = sign_extend(self.reg(RAX, half), half);
            self.set(RAX, os, v & mask(os));
        } else {
            let a = self.reg(RAX, os);
            let sign = a & flags::sign_bit(os) != 0;
            self.set(RDX, os, if sign { mask(os) } else { 0 });
        }
        self.done()
    }

    /// XLAT.
    pub(super) fn exec_xlat(&mut self) -> Res<Done> {
        let ad = self.insn.adsize;
        let seg = self.insn.seg_override.unwrap_or(SegReg::Ds);
        let ea = self.reg(RBX, ad).wrapping_add(self.reg(RAX, 1)) & mask(ad);
        let v = self.read_mem(seg, ea, 1)?;
        self.set(RAX, 1, v);
        self.done()
    }
}
