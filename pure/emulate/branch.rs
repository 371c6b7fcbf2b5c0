//! Control transfer: JMP/CALL/RET near and far, Jcc, LOOP/LOOPE/LOOPNE,
//! JCXZ, and INT/INT3/INTO/IRET in real mode.

use super::access::mask;
use super::exec::{Ctx, Done, Res, Stop};
use super::flags;
use super::insn::{Op, Operand};
use super::regs::SegReg;
use super::segment::{self, CpuMode, SegAccess};
use super::{CpuState, Exception, GuestMemory, Segment};
use crate::defs::regs::{
    RCX, X86_EFLAGS_AC, X86_EFLAGS_ARITH, X86_EFLAGS_DF, X86_EFLAGS_FIXED, X86_EFLAGS_ID,
    X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_NT, X86_EFLAGS_OF, X86_EFLAGS_RF, X86_EFLAGS_TF,
    X86_EFLAGS_VIF, X86_EFLAGS_VIP, X86_EFLAGS_VM, X86_EFLAGS_ZF,
};
use crate::defs::vector::{BP_VECTOR, OF_VECTOR};

/// Size of a real-mode IVT entry.
const IVT_ENTRY: u64 = 4;
/// Error-code flag for IDT-referencing faults.
const ERR_IDT: u32 = 2;
/// Flags IRET may load in real mode.
const IRET_MASK: u64 = X86_EFLAGS_ARITH
    | X86_EFLAGS_TF
    | X86_EFLAGS_IF
    | X86_EFLAGS_DF
    | X86_EFLAGS_OF
    | X86_EFLAGS_IOPL
    | X86_EFLAGS_NT
    | X86_EFLAGS_RF
    | X86_EFLAGS_AC
    | X86_EFLAGS_ID;
/// Flags IRET preserves in real mode.
const IRET_KEEP: u64 = X86_EFLAGS_VM | X86_EFLAGS_VIF | X86_EFLAGS_VIP;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Validate a near branch target for the current CS; returns it masked
    /// to the operand size.
    fn near_target(&self, t: u64) -> Res<u64> {
        let t = t & mask(self.insn.opsize);
        self.check_ip(t, &self.cpu.segment(SegReg::Cs))?;
        Ok(t)
    }

    /// #GP(0) unless `ip` is valid in code segment `cs`.
    fn check_ip(&self, ip: u64, cs: &Segment) -> Res<()> {
        let long = matches!(self.mode, CpuMode::Long | CpuMode::Compat) && cs.l;
        if long {
            if !segment::is_canonical(self.cpu, ip) {
                return Err(Exception::gp(0).into());
            }
        } else if ip > u64::from(cs.limit) {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    fn jump(&mut self, t: u64) -> Res<Done> {
        self.cpu.set_rip(t);
        self.clear_rf();
        Ok(Done::Completed)
    }

    /// Branch instructions.
    pub(super) fn exec_branch(&mut self) -> Res<Done> {
        let i = self.insn;
        let os = i.opsize;
        let rel = match i.dst {
            Operand::Imm { val, .. } => val,
            _ => 0,
        };
        match i.op {
            Op::Jmp => {
                let t = self.near_target(self.next_rip.wrapping_add(rel))?;
                self.jump(t)
            }
            Op::Jcc => {
                if flags::cond(i.cond, self.flags()) {
                    let t = self.near_target(self.next_rip.wrapping_add(rel))?;
                    self.jump(t)
                } else {
                    self.done()
                }
            }
            Op::Call | Op::CallInd => {
                let t = if i.op == Op::Call {
                    self.next_rip.wrapping_add(rel)
                } else {
                    self.read_op(&i.dst)?
                };
                let t = self.near_target(t)?;
                self.push(self.next_rip & mask(os), os)?;
                self.jump(t)
            }
            Op::JmpInd => {
                let t = self.read_op(&i.dst)?;
                let t = self.near_target(t)?;
                self.jump(t)
            }
            Op::Ret => {
                let t = self.stack_peek(0, os)?;
                let t = self.near_target(t)?;
                let sp = self.sp_plus(u64::from(os).wrapping_add(rel & 0xFFFF));
                self.commit_sp(sp);
                self.jump(t)
            }
            Op::Loop | Op::Loope | Op::Loopne | Op::Jcxz => {
                let ad = i.adsize;
                let cx = self.reg(RCX, ad);
                let zf = self.flags() & X86_EFLAGS_ZF != 0;
                let (new_cx, take) = match i.op {
                    Op::Jcxz => (cx, cx == 0),
                    _ => {
                        let n = cx.wrapping_sub(1) & mask(ad);
                        let c = match i.op {
                            Op::Loope => zf,
                            Op::Loopne => !zf,
                            _ => true,
                        };
                        (n, n != 0 && c)
                    }
                };
                let t = if take {
                    Some(self.near_target(self.next_rip.wrapping_add(rel))?)
                } else {
                    None
                };
                if i.op != Op::Jcxz {
                    self.set(RCX, ad, new_cx);
                }
                match t {
                    Some(t) => self.jump(t),
                    None => self.done(),
                }
            }
            Op::JmpFar | Op::CallFar => self.far_jmp_call(),
            Op::RetFar => self.far_ret(),
            Op::Int => self.int_real((rel & 0xFF) as u8),
            Op::Int3 => self.int_real(BP_VECTOR),
            Op::Into => {
                if self.of_set() {
                    self.int_real(OF_VECTOR)
                } else {
                    self.done()
                }
            }
            Op::Int1 => Err(Stop::Unhandleable),
            _ => self.iret_real(),
        }
    }

    /// Far target (selector, offset) of JMP/CALL far.
    fn far_operand(&mut self) -> Res<(u16, u64)> {
        let i = self.insn;
        match i.dst {
            Operand::Far { sel, off } => Ok((sel, off)),
            Operand::Mem { mem, size } => {
                let ea = self.ea(&mem);
                let la = self.linear(mem.seg, ea, u64::from(size), SegAccess::Read)?;
                let mut b = [0u8; 10];
                self.read_lin(
                    la,
                    b.get_mut(..usize::from(size)).ok_or(Stop::Unhandleable)?,
                    false,
                )?;
                let n = usize::from(size).saturating_sub(2);
                let mut o = [0u8; 8];
                o.get_mut(..n)
                    .ok_or(Stop::Unhandleable)?
                    .copy_from_slice(b.get(..n).ok_or(Stop::Unhandleable)?);
                let sel = u16::from_le_bytes([
                    b.get(n).copied().unwrap_or(0),
                    b.get(n + 1).copied().unwrap_or(0),
                ]);
                Ok((sel, u64::from_le_bytes(o)))
            }
            _ => Err(Stop::Unhandleable),
        }
    }

    fn far_jmp_call(&mut self) -> Res<Done> {
        let i = self.insn;
        let os = i.opsize;
        let (sel, off) = self.far_operand()?;
        let cs = self.load_cs(sel, false)?;
        let ip = off & mask(os);
        self.check_ip(ip, &cs)?;
        if i.op == Op::CallFar {
            // Push CS then the return IP, as one access.
            let old_cs = u64::from(self.cpu.segment(SegReg::Cs).selector);
            let ret = self.next_rip & mask(os);
            let n = usize::from(os);
            let mut b = [0u8; 16];
            let (r, c) = (ret.to_le_bytes(), old_cs.to_le_bytes());
            b.get_mut(..n)
                .ok_or(Stop::Unhandleable)?
                .copy_from_slice(r.get(..n).ok_or(Stop::Unhandleable)?);
            b.get_mut(n..2 * n)
                .ok_or(Stop::Unhandleable)?
                .copy_from_slice(c.get(..n).ok_or(Stop::Unhandleable)?);
            let sp = self.push_bytes_at(self.sp(), b.get(..2 * n).ok_or(Stop::Unhandleable)?)?;
            self.commit_sp(sp);
        }
        self.commit_seg(SegReg::Cs, cs);
        self.jump(ip)
    }

    fn far_ret(&mut self) -> Res<Done> {
        let i = self.insn;
        let os = i.opsize;
        let imm = match i.dst {
            Operand::Imm { val, .. } => val & 0xFFFF,
            _ => 0,
        };
        let ip = self.stack_peek(0, os)?;
        let sel = (self.stack_peek(u64::from(os), os)? & 0xFFFF) as u16;
        let cs = self.load_cs(sel, true)?;
        let ip = ip & mask(os);
        self.check_ip(ip, &cs)?;
        let sp = self.sp_plus(u64::from(os) * 2 + imm);
        self.commit_sp(sp);
        self.commit_seg(SegReg::Cs, cs);
        self.jump(ip)
    }

    /// Real-mode software interrupt through the IVT.
    fn int_real(&mut self, vec: u8) -> Res<Done> {
        if self.mode != CpuMode::Real {
            // Protected-mode and virtual-8086 delivery is left to KVM's
            // event injection.
            return Err(Stop::Unhandleable);
        }
        let idt = self.cpu.idtr();
        let off = u64::from(vec) * IVT_ENTRY;
        if off + IVT_ENTRY - 1 > u64::from(idt.limit) {
            return Err(Exception::gp(u32::from(vec) * 8 + ERR_IDT).into());
        }
        let mut e = [0u8; 4];
        self.read_lin(idt.base.wrapping_add(off) & 0xFFFF_FFFF, &mut e, true)?;
        let [ip0, ip1, cs0, cs1] = e;
        let new_ip = u64::from(u16::from_le_bytes([ip0, ip1]));
        let new_cs = u16::from_le_bytes([cs0, cs1]);
        let fl = self.flags();
        let cs = self.cpu.segment(SegReg::Cs);
        let ret = (self.next_rip & 0xFFFF) as u16;
        let [r0, r1] = ret.to_le_bytes();
        let [c0, c1] = cs.selector.to_le_bytes();
        let [f0, f1] = (fl as u16).to_le_bytes();
        // Memory order from the new stack pointer: IP, CS, FLAGS.
        let frame = [r0, r1, c0, c1, f0, f1];
        let sp = self.push_bytes_at(self.sp(), &frame)?;
        self.commit_sp(sp);
        self.cpu.set_rflags(
            (fl & !(X86_EFLAGS_IF | X86_EFLAGS_TF | X86_EFLAGS_AC | X86_EFLAGS_RF))
                | X86_EFLAGS_FIXED,
        );
        let ncs = self.load_cs(new_cs, false)?;
        self.commit_seg(SegReg::Cs, ncs);
        self.cpu.set_rip(new_ip);
        Ok(Done::Completed)
    }

    /// Real-mode IRET.
    fn iret_real(&mut self) -> Res<Done> {
        if self.mode != CpuMode::Real {
            return Err(Stop::Unhandleable);
        }
        let os = self.insn.opsize;
        let ip = self.stack_peek(0, os)?;
        let sel = (self.stack_peek(u64::from(os), os)? & 0xFFFF) as u16;
        let nf = self.stack_peek(2 * u64::from(os), os)?;
        if ip & !0xFFFF != 0 {
            return Err(Exception::gp(0).into());
        }
        let old = self.flags();
        let fl = if os == 2 {
            (old & !0xFFFF) | (nf & IRET_MASK & 0xFFFF)
        } else {
            (nf & IRET_MASK) | (old & IRET_KEEP)
        };
        let cs = self.load_cs(sel, false)?;
        let sp = self.sp_plus(3 * u64::from(os));
        self.commit_sp(sp);
        self.commit_seg(SegReg::Cs, cs);
        self.cpu.set_rflags(fl | X86_EFLAGS_FIXED);
        self.cpu.set_rip(ip);
        Ok(Done::Completed)
    }
}
