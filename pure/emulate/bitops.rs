//! BT/BTS/BTR/BTC (register and memory bit strings) and BSF/BSR.

use super::access::{mask, Loc};
use super::decode::sign_extend;
use super::exec::{Ctx, Done, Res, Stop};
use super::flags::bits;
use super::insn::{Op, Operand};
use super::segment::SegAccess;
use super::{CpuState, GuestMemory};
use crate::defs::regs::{X86_EFLAGS_CF, X86_EFLAGS_ZF};

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// BT family and BSF/BSR.
    pub(super) fn exec_bitop(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        if matches!(i.op, Op::Bsf | Op::Bsr) {
            return self.exec_bsf_bsr(size);
        }
        let nb = bits(size);
        let write = i.op != Op::Bt;
        let off = self.read_op(&i.src)?;
        let (loc, bitno) = match (i.dst, i.src) {
            (Operand::Mem { mem, size }, Operand::Reg { .. }) => {
                // Bit string: the signed offset selects an operand-sized
                // unit relative to the effective address.
                let soff = sign_extend(off & mask(size), size) as i64;
                let unit = soff >> nb.trailing_zeros();
                let disp = (unit as u64).wrapping_mul(u64::from(size));
                let ea = self.ea(&mem).wrapping_add(disp) & mask(self.insn.adsize);
                let acc = if write {
                    SegAccess::Write
                } else {
                    SegAccess::Read
                };
                let la = self.linear(mem.seg, ea, u64::from(size), acc)?;
                (
                    Loc::Mem { la, size },
                    (soff as u64 & u64::from(nb - 1)) as u32,
                )
            }
            _ => (
                self.resolve(&i.dst, write)?,
                (off & u64::from(nb - 1)) as u32,
            ),
        };
        let v = self.read_loc(&loc)?;
        let b = 1u64 << bitno;
        let cf = if v & b != 0 { X86_EFLAGS_CF } else { 0 };
        let new = match i.op {
            Op::Bts => v | b,
            Op::Btr => v & !b,
            Op::Btc => v ^ b,
            _ => v,
        };
        if write {
            self.rmw_write(&loc, v, new)?;
        }
        self.set_flags(X86_EFLAGS_CF, cf);
        self.done()
    }

    /// BSF/BSR: a zero source sets ZF and leaves the destination unchanged.
    fn exec_bsf_bsr(&mut self, size: u8) -> Res<Done> {
        let i = self.insn;
        let s = self.read_op(&i.src)? & mask(size);
        let Operand::Reg { reg, .. } = i.dst else {
            return Err(Stop::Unhandleable);
        };
        if s == 0 {
            self.set_flags(X86_EFLAGS_ZF, X86_EFLAGS_ZF);
            return self.done();
        }
        let idx = if i.op == Op::Bsf {
            s.trailing_zeros()
        } else {
            63 - s.leading_zeros()
        };
        self.set(reg, size, u64::from(idx));
        self.set_flags(X86_EFLAGS_ZF, 0);
        self.done()
    }
}
