//! ADD/ADC/SUB/SBB/AND/OR/XOR/CMP/TEST, INC/DEC/NEG/NOT and the flag
//! instructions SAHF/LAHF/CLC/STC/CMC/CLD/STD.

use super::access::{mask, Loc};
use super::exec::{Ctx, Done, Res, Stop};
use super::flags;
use super::insn::Op;
use super::segment::CpuMode;
use super::{CpuState, GuestMemory};
use crate::defs::regs::{
    RAX, RSP, X86_EFLAGS_AF, X86_EFLAGS_ARITH, X86_EFLAGS_CF, X86_EFLAGS_DF, X86_EFLAGS_FIXED,
    X86_EFLAGS_OF, X86_EFLAGS_PF, X86_EFLAGS_SF, X86_EFLAGS_ZF,
};

/// Flags SAHF loads from AH.
const SAHF_MASK: u64 =
    X86_EFLAGS_SF | X86_EFLAGS_ZF | X86_EFLAGS_AF | X86_EFLAGS_PF | X86_EFLAGS_CF;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Write an RMW destination; with LOCK on memory, atomically.
    pub(super) fn rmw_write(&mut self, loc: &Loc, old: u64, new: u64) -> Res<()> {
        if let (true, Loc::Mem { la, size }) = (self.insn.lock, loc) {
            let n = usize::from(*size);
            let ob = old.to_le_bytes();
            let nb = new.to_le_bytes();
            let (o, w) = (
                ob.get(..n).ok_or(Stop::Unhandleable)?,
                nb.get(..n).ok_or(Stop::Unhandleable)?,
            );
            if !self.cmpxchg_lin(*la, o, w)? {
                return Err(Stop::Retry);
            }
            return Ok(());
        }
        self.write_loc(loc, new)
    }

    /// Two-operand ALU instructions.
    pub(super) fn exec_alu2(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        let write = !matches!(i.op, Op::Cmp | Op::Test);
        let dl = self.resolve(&i.dst, write)?;
        let src = self.read_op(&i.src)? & mask(size);
        let a = self.read_loc(&dl)?;
        let cf = self.flags() & X86_EFLAGS_CF != 0;
        let (res, f) = match i.op {
            Op::Add => flags::add(a, src, false, size),
            Op::Adc => flags::add(a, src, cf, size),
            Op::Sub | Op::Cmp => flags::sub(a, src, false, size),
            Op::Sbb => flags::sub(a, src, cf, size),
            Op::And | Op::Test => (a & src, flags::logic(a & src, size)),
            Op::Or => (a | src, flags::logic(a | src, size)),
            _ => (a ^ src, flags::logic(a ^ src, size)),
        };
        if write {
            self.rmw_write(&dl, a, res)?;
        }
        self.set_flags(X86_EFLAGS_ARITH, f);
        self.done()
    }

    /// INC/DEC/NEG/NOT.
    pub(super) fn exec_alu1(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = Self::op_size(&i.dst);
        let dl = self.resolve(&i.dst, true)?;
        let a = self.read_loc(&dl)?;
        let (res, fmask, f) = match i.op {
            Op::Inc => {
                let (r, f) = flags::add(a, 1, false, size);
                (r, X86_EFLAGS_ARITH & !X86_EFLAGS_CF, f)
            }
            Op::Dec => {
                let (r, f) = flags::sub(a, 1, false, size);
                (r, X86_EFLAGS_ARITH & !X86_EFLAGS_CF, f)
            }
            Op::Neg => {
                let (r, f) = flags::sub(0, a, false, size);
                (r, X86_EFLAGS_ARITH, f)
            }
            _ => (!a & mask(size), 0, 0),
        };
        self.rmw_write(&dl, a, res)?;
        self.set_flags(fmask, f);
        self.done()
    }

    /// SAHF/LAHF/CLC/STC/CMC/CLD/STD.
    pub(super) fn exec_flagop(&mut self) -> Res<Done> {
        let f = self.flags();
        match self.insn.op {
            Op::Sahf => {
                let ah = self.get_reg(RAX, 1, true);
                self.set_flags(SAHF_MASK, ah);
            }
            Op::Lahf => {
                let v = (f & SAHF_MASK) | X86_EFLAGS_FIXED;
                self.set_reg(RAX, 1, true, v);
            }
            Op::Clc => self.set_flags(X86_EFLAGS_CF, 0),
            Op::Stc => self.set_flags(X86_EFLAGS_CF, X86_EFLAGS_CF),
            Op::Cmc => self.set_flags(X86_EFLAGS_CF, !f & X86_EFLAGS_CF),
            Op::Cld => self.set_flags(X86_EFLAGS_DF, 0),
            _ => self.set_flags(X86_EFLAGS_DF, X86_EFLAGS_DF),
        }
        self.done()
    }

    /// Stack-pointer width in bytes (address size of stack accesses).
    pub(super) fn stack_size(&self) -> u8 {
        if self.mode == CpuMode::Long {
            8
        } else if self.cpu.segment(super::SegReg::Ss).db {
            4
        } else {
            2
        }
    }

    /// Current stack pointer masked to the stack size.
    pub(super) fn sp(&self) -> u64 {
        self.reg(RSP, self.stack_size())
    }

    /// Whether OF is set (used by INTO).
    pub(super) fn of_set(&self) -> bool {
        self.flags() & X86_EFLAGS_OF != 0
    }
}
