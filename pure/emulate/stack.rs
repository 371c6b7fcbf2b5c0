//! Stack instructions: PUSH/POP (GPR, memory, immediate, segment),
//! PUSHF/POPF, PUSHA/POPA, ENTER/LEAVE, and the push/pop helpers used by
//! branches.

use super::access::mask;
use super::exec::{Ctx, Done, Res, Stop};
use super::insn::{Op, Operand};
use super::regs::SegReg;
use super::segment::{CpuMode, SegAccess};
use super::{CpuState, Exception, GuestMemory, InterruptShadow};
use crate::defs::regs::{
    RBP, RSP, X86_EFLAGS_AC, X86_EFLAGS_ALL, X86_EFLAGS_ARITH, X86_EFLAGS_DF, X86_EFLAGS_FIXED,
    X86_EFLAGS_ID, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_IOPL_BIT, X86_EFLAGS_NT,
    X86_EFLAGS_RF, X86_EFLAGS_TF, X86_EFLAGS_VM,
};

/// Maximum nesting level of ENTER.
const ENTER_LEVEL_MASK: u64 = 0x1F;
/// Registers saved by PUSHA.
const PUSHA_REGS: usize = 8;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Write `data` below the stack pointer; returns the new stack pointer
    /// without committing it.
    pub(super) fn push_bytes_at(&mut self, sp: u64, data: &[u8]) -> Res<u64> {
        let ss = self.stack_size();
        let new = sp.wrapping_sub(data.len() as u64) & mask(ss);
        let la = self.linear(SegReg::Ss, new, data.len() as u64, SegAccess::Write)?;
        self.write_lin(la, data, false)?;
        Ok(new)
    }

    /// Push `size` bytes of `val` and commit the stack pointer.
    pub(super) fn push(&mut self, val: u64, size: u8) -> Res<()> {
        let b = val.to_le_bytes();
        let d = b.get(..usize::from(size)).ok_or(Stop::Unhandleable)?;
        let new = self.push_bytes_at(self.sp(), d)?;
        self.commit_sp(new);
        Ok(())
    }

    /// Set the stack pointer (at the stack size).
    pub(super) fn commit_sp(&mut self, sp: u64) {
        let ss = self.stack_size();
        self.set(RSP, ss, sp);
    }

    /// Read `buf.len()` bytes at stack pointer + `off` (no commit).
    pub(super) fn stack_read(&mut self, off: u64, buf: &mut [u8]) -> Res<()> {
        let ss = self.stack_size();
        let ea = self.sp().wrapping_add(off) & mask(ss);
        let la = self.linear(SegReg::Ss, ea, buf.len() as u64, SegAccess::Read)?;
        self.read_lin(la, buf, false)
    }

    /// Read a `size`-byte value at stack pointer + `off` (no commit).
    pub(super) fn stack_peek(&mut self, off: u64, size: u8) -> Res<u64> {
        let mut b = [0u8; 8];
        self.stack_read(
            off,
            b.get_mut(..usize::from(size)).ok_or(Stop::Unhandleable)?,
        )?;
        Ok(u64::from_le_bytes(b))
    }

    /// Stack pointer after releasing `n` bytes.
    pub(super) fn sp_plus(&self, n: u64) -> u64 {
        self.sp().wrapping_add(n) & mask(self.stack_size())
    }

    /// IOPL from RFLAGS.
    pub(super) fn iopl(&self) -> u8 {
        ((self.flags() & X86_EFLAGS_IOPL) >> X86_EFLAGS_IOPL_BIT) as u8
    }

    /// Stack instructions.
    pub(super) fn exec_stack(&mut self) -> Res<Done> {
        let i = self.insn;
        let os = i.opsize;
        match i.op {
            Op::Push => {
                let v = match i.dst {
                    Operand::Seg(s) => u64::from(self.cpu.segment(s).selector),
                    o => self.read_op(&o)?,
                };
                self.push(v & mask(os), os)?;
            }
            Op::Pop => return self.exec_pop(),
            Op::Pushf => {
                if self.mode == CpuMode::Vm86 && self.iopl() < 3 {
                    return Err(Exception::gp(0).into());
                }
                let v = self.flags() & !(X86_EFLAGS_VM | X86_EFLAGS_RF);
                self.push(v & mask(os), os)?;
            }
            Op::Popf => {
                let v = self.stack_peek(0, os)?;
                let new = self.popf_value(v, os)?;
                let sp = self.sp_plus(u64::from(os));
                self.commit_sp(sp);
                self.cpu.set_rflags(new);
            }
            Op::Pusha => {
                let mut buf = [0u8; PUSHA_REGS * 4];
                let n = usize::from(os);
                // Memory order from the lowest address: DI SI BP SP BX DX CX AX.
                for k in 0..PUSHA_REGS {
                    let reg = (PUSHA_REGS - 1 - k) as u8;
                    let v = self.reg(reg, os).to_le_bytes();
                    for j in 0..n {
                        if let (Some(d), Some(s)) = (buf.get_mut(k * n + j), v.get(j)) {
                            *d = *s;
                        }
                    }
                }
                let data = buf.get(..PUSHA_REGS * n).ok_or(Stop::Unhandleable)?;
                let new = self.push_bytes_at(self.sp(), data)?;
                self.commit_sp(new);
            }
            Op::Popa => {
                let n = usize::from(os);
                let mut buf = [0u8; PUSHA_REGS * 4];
                self.stack_read(0, buf.get_mut(..PUSHA_REGS * n).ok_or(Stop::Unhandleable)?)?;
                let sp = self.sp_plus((PUSHA_REGS * n) as u64);
                for k in 0..PUSHA_REGS {
                    let reg = (PUSHA_REGS - 1 - k) as u8;
                    if reg == RSP {
                        continue;
                    }
                    let mut v = [0u8; 8];
                    for j in 0..n {
                        if let (Some(d), Some(s)) = (v.get_mut(j), buf.get(k * n + j)) {
                            *d = *s;
                        }
                    }
                    self.set(reg, os, u64::from_le_bytes(v));
                }
                self.commit_sp(sp);
            }
            Op::Enter => return self.exec_enter(),
            _ => {
                // LEAVE.
                let ss = self.stack_size();
                let bp = self.reg(RBP, ss);
                let ea = bp;
                let la = self.linear(SegReg::Ss, ea, u64::from(os), SegAccess::Read)?;
                let v = self.read_la(la, os)?;
                self.set(RSP, ss, bp.wrapping_add(u64::from(os)));
                self.set(RBP, os, v);
            }
        }
        self.done()
    }

    fn exec_pop(&mut self) -> Res<Done> {
        let i = self.insn;
        let os = i.opsize;
        let v = self.stack_peek(0, os)?;
        let new_sp = self.sp_plus(u64::from(os));
        match i.dst {
            Operand::Seg(s) => {
                let seg = self.load_data_seg(s, v as u16)?;
                self.commit_sp(new_sp);
                self.commit_seg(s, seg);
                if s == SegReg::Ss {
                    self.cpu.set_interrupt_shadow(InterruptShadow::MovSs);
                }
            }
            Operand::Reg { reg, size, high8 } => {
                self.commit_sp(new_sp);
                self.set_reg(reg, size, high8, v);
            }
            Operand::Mem { .. } => {
                // The address is computed with the incremented stack pointer.
                let old = self.cpu.gpr(RSP);
                self.commit_sp(new_sp);
                if let Err(e) = self.write_op(&i.dst, v) {
                    self.cpu.set_gpr(RSP, old);
                    return Err(e);
                }
            }
            _ => return Err(Stop::Unhandleable),
        }
        self.done()
    }

    /// New RFLAGS for POPF/IRET given the popped value.
    pub(super) fn popf_value(&self, v: u64, os: u8) -> Res<u64> {
        let old = self.flags();
        let mut change = X86_EFLAGS_ARITH
            | X86_EFLAGS_TF
            | X86_EFLAGS_DF
            | X86_EFLAGS_NT
            | X86_EFLAGS_AC
            | X86_EFLAGS_ID
            | X86_EFLAGS_IF
            | X86_EFLAGS_IOPL;
        match self.mode {
            CpuMode::Real => {}
            CpuMode::Vm86 => {
                if self.iopl() < 3 {
                    return Err(Exception::gp(0).into());
                }
                change &= !X86_EFLAGS_IOPL;
            }
            _ => {
                if self.cpl > 0 {
                    change &= !X86_EFLAGS_IOPL;
                }
                if self.cpl > self.iopl() {
                    change &= !X86_EFLAGS_IF;
                }
            }
        }
        if os == 2 {
            change &= 0xFFFF;
        }
        let new = (old & !change & !X86_EFLAGS_RF) | (v & change) | X86_EFLAGS_FIXED;
        Ok(new & X86_EFLAGS_ALL)
    }

    fn exec_enter(&mut self) -> Res<Done> {
        let i = self.insn;
        let os = i.opsize;
        let ss = self.stack_size();
        let alloc = match i.dst {
            Operand::Imm { val, .. } => val & 0xFFFF,
            _ => 0,
        };
        let level = match i.src {
            Operand::Imm { val, .. } => val & ENTER_LEVEL_MASK,
            _ => 0,
        };
        let bp = self.reg(RBP, ss);
        let mut sp = self.sp();
        let b = self.reg(RBP, os).to_le_bytes();
        sp = self.push_bytes_at(sp, b.get(..usize::from(os)).ok_or(Stop::Unhandleable)?)?;
        let frame = sp;
        if level > 0 {
            let mut fbp = bp;
            for _ in 1..level {
                fbp = fbp.wrapping_sub(u64::from(os)) & mask(ss);
                let la = self.linear(SegReg::Ss, fbp, u64::from(os), SegAccess::Read)?;
                let v = self.read_la(la, os)?.to_le_bytes();
                sp = self.push_bytes_at(sp, v.get(..usize::from(os)).ok_or(Stop::Unhandleable)?)?;
            }
            let f = frame.to_le_bytes();
            sp = self.push_bytes_at(sp, f.get(..usize::from(os)).ok_or(Stop::Unhandleable)?)?;
        }
        let new_sp = sp.wrapping_sub(alloc) & mask(ss);
        // The final stack pointer must be addressable.
        self.linear(SegReg::Ss, new_sp, 1, SegAccess::None)?;
        self.set(RBP, os, frame);
        self.set(RSP, ss, new_sp);
        self.done()
    }
}
