//! System instructions: MOV to/from CR and DR, LGDT/LIDT/SGDT/SIDT,
//! LLDT/LTR/SLDT/STR, LMSW/SMSW/CLTS, HLT, CPUID, RDMSR/WRMSR, RDTSC(P),
//! INVLPG, WBINVD/INVD, CLI/STI.

use super::access::mask;
use super::exec::{Ctx, Done, Res, Stop};
use super::insn::{Op, Operand};
use super::regs::{segtype, selector, SegReg};
use super::segload::{desc_to_seg, DESC_SIZE, DESC_SIZE_64};
use super::segment::{self, CpuMode, SegAccess};
use super::{CpuState, Cr, DescTable, Exception, GuestMemory, InterruptShadow, Segment};
use crate::defs::msr::{MSR_IA32_TSC, MSR_TSC_AUX};
use crate::defs::regs::{
    DR6_BD, DR7_GD, RAX, RBX, RCX, RDX, X86_CR0_EM, X86_CR0_MP, X86_CR0_PE, X86_CR0_TS, X86_CR4_DE,
    X86_CR4_TSD, X86_CR4_UMIP, X86_EFLAGS_IF,
};
use crate::defs::vector::{DB_VECTOR, NP_VECTOR};

/// The CR0 bits LMSW writes (it can set PE but never clear it).
const LMSW_MASK: u64 = X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS;

/// Base mask of LGDT/LIDT with a 16-bit operand size.
const BASE24_MASK: u64 = 0x00FF_FFFF;
/// Bit of the TSS type that marks it busy, in a raw descriptor.
const DESC_BUSY_BIT: u64 = 1 << 41;

fn gp0() -> Stop {
    Stop::Fault(Exception::gp(0))
}

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    fn need_cpl0(&self) -> Res<()> {
        if self.cpl != 0 {
            return Err(gp0());
        }
        Ok(())
    }

    fn umip_check(&self) -> Res<()> {
        if self.cpl > 0 && self.cpu.cr(Cr::Cr4) & X86_CR4_UMIP != 0 {
            return Err(gp0());
        }
        Ok(())
    }

    fn cr_of(&self, n: u8) -> Res<Cr> {
        match n {
            0 => Ok(Cr::Cr0),
            2 => Ok(Cr::Cr2),
            3 => Ok(Cr::Cr3),
            4 => Ok(Cr::Cr4),
            8 if self.mode == CpuMode::Long || self.mode == CpuMode::Compat => Ok(Cr::Cr8),
            _ => Err(Exception::ud().into()),
        }
    }

    /// DR number after the DR4/DR5 aliasing rules; #UD or #DB as needed.
    fn dr_of(&mut self, n: u8) -> Res<u8> {
        let n = match n {
            0..=3 | 6 | 7 => n,
            4 | 5 => {
                if self.cpu.cr(Cr::Cr4) & X86_CR4_DE != 0 {
                    return Err(Exception::ud().into());
                }
                n + 2
            }
            _ => return Err(Exception::ud().into()),
        };
        if self.cpu.dr(7) & DR7_GD != 0 {
            // DR6 only gains BD; like upstream, a refused write is not an
            // error of the MOV DR (the #DB is raised either way).
            let d6 = self.cpu.dr(6);
            let _ = self.cpu.set_dr(6, d6 | DR6_BD);
            return Err(Exception::new(DB_VECTOR).into());
        }
        Ok(n)
    }

    /// Descriptor-table operand: (limit, base) at the memory operand.
    fn read_dt(&mut self) -> Res<DescTable> {
        let Operand::Mem { mem, size } = self.insn.dst else {
            return Err(Stop::Unhandleable);
        };
        let ea = self.ea(&mem);
        let la = self.linear(mem.seg, ea, u64::from(size), SegAccess::Read)?;
        let mut b = [0u8; 10];
        self.read_lin(
            la,
            b.get_mut(..usize::from(size)).ok_or(Stop::Unhandleable)?,
            false,
        )?;
        let [l0, l1, ..] = b;
        let limit = u16::from_le_bytes([l0, l1]);
        let mut base_b = [0u8; 8];
        let bn = usize::from(size) - 2;
        base_b
            .get_mut(..bn)
            .ok_or(Stop::Unhandleable)?
            .copy_from_slice(b.get(2..2 + bn).ok_or(Stop::Unhandleable)?);
        let mut base = u64::from_le_bytes(base_b);
        if self.mode == CpuMode::Long {
            if !segment::is_canonical(self.cpu, base) {
                return Err(gp0());
            }
        } else if self.insn.opsize == 2 {
            base &= BASE24_MASK;
        }
        Ok(DescTable { base, limit })
    }

    fn write_dt(&mut self, dt: DescTable) -> Res<()> {
        let Operand::Mem { mem, size } = self.insn.dst else {
            return Err(Stop::Unhandleable);
        };
        let base = if self.mode != CpuMode::Long && self.insn.opsize == 2 {
            dt.base & BASE24_MASK
        } else {
            dt.base
        };
        let [l0, l1] = dt.limit.to_le_bytes();
        let [b0, b1, b2, b3, b4, b5, b6, b7] = base.to_le_bytes();
        let b = [l0, l1, b0, b1, b2, b3, b4, b5, b6, b7];
        let ea = self.ea(&mem);
        let la = self.linear(mem.seg, ea, u64::from(size), SegAccess::Write)?;
        self.write_lin(
            la,
            b.get(..usize::from(size)).ok_or(Stop::Unhandleable)?,
            false,
        )
    }

    /// System instructions.
    pub(super) fn exec_system(&mut self) -> Res<Done> {
        let i = self.insn;
        match i.op {
            Op::MovToCr | Op::MovFromCr => {
                self.need_cpl0()?;
                let (n, r) = if i.op == Op::MovToCr {
                    (i.dst, i.src)
                } else {
                    (i.src, i.dst)
                };
                let (Operand::Cr(n), Operand::Reg { reg, size, .. }) = (n, r) else {
                    return Err(Stop::Unhandleable);
                };
                let cr = self.cr_of(n)?;
                if i.op == Op::MovToCr {
                    let v = self.reg(reg, size);
                    self.cpu.set_cr(cr, v).map_err(|_| gp0())?;
                } else {
                    let v = self.cpu.cr(cr);
                    self.set(reg, size, v & mask(size));
                }
            }
            Op::MovToDr | Op::MovFromDr => {
                self.need_cpl0()?;
                let (n, r) = if i.op == Op::MovToDr {
                    (i.dst, i.src)
                } else {
                    (i.src, i.dst)
                };
                let (Operand::Dr(n), Operand::Reg { reg, size, .. }) = (n, r) else {
                    return Err(Stop::Unhandleable);
                };
                let n = self.dr_of(n)?;
                if i.op == Op::MovToDr {
                    let v = self.reg(reg, size);
                    self.cpu.set_dr(n, v).map_err(|_| gp0())?;
                } else {
                    let v = self.cpu.dr(n);
                    self.set(reg, size, v & mask(size));
                }
            }
            Op::Lgdt | Op::Lidt => {
                self.need_cpl0()?;
                let dt = self.read_dt()?;
                if i.op == Op::Lgdt {
                    self.cpu.set_gdtr(dt);
                } else {
                    self.cpu.set_idtr(dt);
                }
            }
            Op::Sgdt | Op::Sidt => {
                self.umip_check()?;
                let dt = if i.op == Op::Sgdt {
                    self.cpu.gdtr()
                } else {
                    self.cpu.idtr()
                };
                self.write_dt(dt)?;
            }
            Op::Sldt | Op::Str => {
                if self.mode.realish() {
                    return Err(Exception::ud().into());
                }
                self.umip_check()?;
                let s = if i.op == Op::Sldt {
                    SegReg::Ldtr
                } else {
                    SegReg::Tr
                };
                let v = u64::from(self.cpu.segment(s).selector);
                self.write_op(&i.dst, v)?;
            }
            Op::Lldt | Op::Ltr => {
                if self.mode.realish() {
                    return Err(Exception::ud().into());
                }
                self.need_cpl0()?;
                let sel = (self.read_op(&i.dst)? & 0xFFFF) as u16;
                self.load_system_seg(i.op == Op::Ltr, sel)?;
            }
            Op::Lmsw => {
                self.need_cpl0()?;
                let v = self.read_op(&i.dst)?;
                let old = self.cpu.cr(Cr::Cr0);
                // LMSW can set PE but never clear it.
                let new = (old & !(LMSW_MASK & !X86_CR0_PE)) | (v & LMSW_MASK);
                self.cpu.set_cr(Cr::Cr0, new).map_err(|_| gp0())?;
            }
            Op::Smsw => {
                self.umip_check()?;
                let v = self.cpu.cr(Cr::Cr0);
                self.write_op(&i.dst, v)?;
            }
            Op::Clts => {
                self.need_cpl0()?;
                let v = self.cpu.cr(Cr::Cr0) & !X86_CR0_TS;
                self.cpu.set_cr(Cr::Cr0, v).map_err(|_| gp0())?;
            }
            Op::Hlt => {
                self.need_cpl0()?;
                self.advance_rip();
                return Ok(Done::Halt);
            }
            Op::Cpuid => {
                let leaf = self.reg(RAX, 4) as u32;
                let sub = self.reg(RCX, 4) as u32;
                let [eax, ebx, ecx, edx] = self.cpu.cpuid(leaf, sub);
                self.set(RAX, 4, u64::from(eax));
                self.set(RBX, 4, u64::from(ebx));
                self.set(RCX, 4, u64::from(ecx));
                self.set(RDX, 4, u64::from(edx));
            }
            Op::Rdmsr => {
                self.need_cpl0()?;
                let v = self
                    .cpu
                    .read_msr(self.reg(RCX, 4) as u32)
                    .map_err(|_| gp0())?;
                self.set(RAX, 4, v & 0xFFFF_FFFF);
                self.set(RDX, 4, v >> 32);
            }
            Op::Wrmsr => {
                self.need_cpl0()?;
                let v = (self.reg(RDX, 4) << 32) | self.reg(RAX, 4);
                self.cpu
                    .write_msr(self.reg(RCX, 4) as u32, v)
                    .map_err(|_| gp0())?;
            }
            Op::Rdtsc | Op::Rdtscp => {
                if self.cpl > 0 && self.cpu.cr(Cr::Cr4) & X86_CR4_TSD != 0 {
                    return Err(gp0());
                }
                let aux = if i.op == Op::Rdtscp {
                    Some(
                        self.cpu
                            .read_msr(MSR_TSC_AUX)
                            .map_err(|_| Stop::Fault(Exception::ud()))?,
                    )
                } else {
                    None
                };
                let t = self.cpu.read_msr(MSR_IA32_TSC).map_err(|_| gp0())?;
                self.set(RAX, 4, t & 0xFFFF_FFFF);
                self.set(RDX, 4, t >> 32);
                if let Some(a) = aux {
                    self.set(RCX, 4, a & 0xFFFF_FFFF);
                }
            }
            Op::Invlpg => {
                self.need_cpl0()?;
                if let Operand::Mem { mem, .. } = i.dst {
                    let ea = self.ea(&mem);
                    if let Ok(la) =
                        segment::linearize(self.cpu, self.mode, mem.seg, ea, 1, SegAccess::None)
                    {
                        self.cpu.invlpg(la);
                    }
                }
            }
            Op::Wbinvd | Op::Invd => {
                self.need_cpl0()?;
                self.cpu.wbinvd();
            }
            Op::Cli | Op::Sti => {
                let ok = match self.mode {
                    CpuMode::Real => true,
                    CpuMode::Vm86 => self.iopl() == 3,
                    _ => self.cpl <= self.iopl(),
                };
                if !ok {
                    return Err(gp0());
                }
                let f = self.flags();
                if i.op == Op::Cli {
                    self.set_flags(X86_EFLAGS_IF, 0);
                } else {
                    if f & X86_EFLAGS_IF == 0 {
                        self.cpu.set_interrupt_shadow(InterruptShadow::Sti);
                    }
                    self.set_flags(X86_EFLAGS_IF, X86_EFLAGS_IF);
                }
            }
            _ => return Err(Stop::Unhandleable),
        }
        self.done()
    }

    /// LLDT (`tr` = false) or LTR (`tr` = true).
    fn load_system_seg(&mut self, tr: bool, sel: u16) -> Res<()> {
        let which = if tr { SegReg::Tr } else { SegReg::Ldtr };
        if sel & !selector::RPL_MASK == 0 {
            if tr {
                return Err(gp0());
            }
            self.commit_seg(
                which,
                Segment {
                    selector: sel,
                    unusable: true,
                    ..Segment::default()
                },
            );
            return Ok(());
        }
        let err = u32::from(sel & selector::ERROR_CODE_MASK);
        if sel & selector::TI != 0 {
            return Err(Exception::gp(err).into());
        }
        let long = matches!(self.mode, CpuMode::Long | CpuMode::Compat);
        let size = if long { DESC_SIZE_64 } else { DESC_SIZE };
        let (raw, hi, la) = self.read_desc(sel, size)?;
        let d = desc_to_seg(raw, if long { hi } else { 0 }, sel);
        let type_ok = if tr {
            d.type_ == segtype::SYS_TSS_AVAIL || (!long && d.type_ == segtype::SYS_TSS16_AVAIL)
        } else {
            d.type_ == segtype::SYS_LDT
        };
        if d.s || !type_ok {
            return Err(Exception::gp(err).into());
        }
        if !d.present {
            return Err(Exception::with_code(NP_VECTOR, err).into());
        }
        if long && !segment::is_canonical(self.cpu, d.base) {
            return Err(Exception::gp(err).into());
        }
        let mut d = d;
        if tr {
            if !self.cmpxchg_desc(la, raw, raw | DESC_BUSY_BIT)? {
                return Err(Stop::Retry);
            }
            d.type_ |= segtype::TSS_BUSY_BIT;
        }
        self.commit_seg(which, d);
        Ok(())
    }
}
