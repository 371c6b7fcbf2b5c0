//! Segment register loads: descriptor fetch from the GDT/LDT, the
//! protected-mode checks of MOV/POP Sreg, LxS and far branches, and the
//! real/virtual-8086 mode forms. Also MOV to/from Sreg and LDS/LES/LFS/
//! LGS/LSS.

use super::exec::{Ctx, Done, Res, Stop};
use super::insn::{Op, Operand};
use super::regs::{segtype, selector, SegReg};
use super::segment::CpuMode;
use super::{CpuState, Exception, GuestMemory, InterruptShadow, Segment};
use crate::defs::paging::{PAGE_MASK, PAGE_SHIFT};
use crate::defs::vector::NP_VECTOR;

/// Real-mode segment limit.
pub(super) const REAL_LIMIT: u32 = 0xFFFF;
/// Size of a legacy descriptor.
pub(super) const DESC_SIZE: u64 = 8;
/// Size of a long-mode system descriptor.
pub(super) const DESC_SIZE_64: u64 = 16;
/// Shift from a real-mode selector to its base.
const REAL_BASE_SHIFT: u32 = 4;

/// Decode an 8-byte descriptor (`hi` supplies base[63:32] of 16-byte
/// system descriptors).
pub(super) fn desc_to_seg(raw: u64, hi: u64, sel: u16) -> Segment {
    let base =
        ((raw >> 16) & 0xFF_FFFF) | (((raw >> 56) & 0xFF) << 24) | ((hi & 0xFFFF_FFFF) << 32);
    let raw_limit = (raw & 0xFFFF) | (((raw >> 48) & 0xF) << 16);
    // G: the 20-bit limit counts pages, the last one included in full.
    let g = (raw >> 55) & 1 != 0;
    let limit = if g {
        ((raw_limit << PAGE_SHIFT) | !PAGE_MASK) as u32
    } else {
        raw_limit as u32
    };
    Segment {
        base,
        limit,
        selector: sel,
        type_: ((raw >> 40) & 0xF) as u8,
        s: (raw >> 44) & 1 != 0,
        dpl: ((raw >> 45) & 3) as u8,
        present: (raw >> 47) & 1 != 0,
        avl: (raw >> 52) & 1 != 0,
        l: (raw >> 53) & 1 != 0,
        db: (raw >> 54) & 1 != 0,
        g,
        unusable: false,
    }
}

/// Bit position of the type field's accessed bit in a raw descriptor.
const DESC_ACCESSED_BIT: u32 = 40;

/// A real-mode style segment for `sel` derived from `old`.
fn real_seg(old: Segment, sel: u16, vm86: bool) -> Segment {
    let base = u64::from(sel) << REAL_BASE_SHIFT;
    if vm86 {
        Segment {
            base,
            limit: REAL_LIMIT,
            selector: sel,
            type_: segtype::DATA_RW_ACCESSED,
            s: true,
            dpl: 3,
            present: true,
            ..Segment::default()
        }
    } else {
        Segment {
            base,
            selector: sel,
            ..old
        }
    }
}

fn sel_err(sel: u16) -> u32 {
    u32::from(sel & selector::ERROR_CODE_MASK)
}

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Read the descriptor for `sel` (`size` 8 or 16 bytes) from the GDT
    /// or LDT. Returns (low qword, high qword, linear address).
    pub(super) fn read_desc(&mut self, sel: u16, size: u64) -> Res<(u64, u64, u64)> {
        let err = Exception::gp(sel_err(sel));
        let (base, limit) = if sel & selector::TI != 0 {
            let ldt = self.cpu.segment(SegReg::Ldtr);
            if ldt.unusable || !ldt.present {
                return Err(err.into());
            }
            (ldt.base, u64::from(ldt.limit))
        } else {
            let g = self.cpu.gdtr();
            (g.base, u64::from(g.limit))
        };
        let off = u64::from(sel & !(selector::RPL_MASK | selector::TI));
        if off + size - 1 > limit {
            return Err(err.into());
        }
        let la = base.wrapping_add(off);
        let la = if self.mode == CpuMode::Long || self.mode == CpuMode::Compat {
            la
        } else {
            la & 0xFFFF_FFFF
        };
        let mut b = [0u8; 16];
        self.read_lin(
            la,
            b.get_mut(..size as usize).ok_or(Stop::Unhandleable)?,
            true,
        )?;
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(b.get(..8).ok_or(Stop::Unhandleable)?);
        hi.copy_from_slice(b.get(8..).ok_or(Stop::Unhandleable)?);
        Ok((u64::from_le_bytes(lo), u64::from_le_bytes(hi), la))
    }

    /// Set the accessed bit of a code/data descriptor in memory.
    fn set_accessed(&mut self, la: u64, raw: u64) -> Res<()> {
        let new = raw | (1u64 << DESC_ACCESSED_BIT);
        if new != raw && !self.cmpxchg_desc(la, raw, new)? {
            return Err(Stop::Retry);
        }
        Ok(())
    }

    /// Atomically update an 8-byte descriptor (implicit supervisor access).
    pub(super) fn cmpxchg_desc(&mut self, la: u64, old: u64, new: u64) -> Res<bool> {
        // Descriptor tables are written with supervisor rights.
        self.cmpxchg_lin_as(la, &old.to_le_bytes(), &new.to_le_bytes(), true)
    }

    /// Compute the new value of data segment register `seg` (ES/SS/DS/FS/
    /// GS) for selector `sel`, with all checks; does not commit.
    pub(super) fn load_data_seg(&mut self, seg: SegReg, sel: u16) -> Res<Segment> {
        match self.mode {
            CpuMode::Real => return Ok(real_seg(self.cpu.segment(seg), sel, false)),
            CpuMode::Vm86 => return Ok(real_seg(self.cpu.segment(seg), sel, true)),
            _ => {}
        }
        let rpl = (sel & selector::RPL_MASK) as u8;
        let cpl = self.cpl;
        if sel & !selector::RPL_MASK == 0 {
            if seg == SegReg::Ss && !(self.mode == CpuMode::Long && cpl != 3 && rpl == cpl) {
                return Err(Exception::gp(0).into());
            }
            return Ok(Segment {
                selector: sel,
                unusable: true,
                dpl: cpl,
                ..Segment::default()
            });
        }
        let (raw, _, la) = self.read_desc(sel, DESC_SIZE)?;
        let d = desc_to_seg(raw, 0, sel);
        let err = sel_err(sel);
        if !d.s {
            return Err(Exception::gp(err).into());
        }
        let code = d.type_ & segtype::CODE != 0;
        let rw = d.type_ & segtype::WRITE_OR_READ != 0;
        let conforming = code && d.type_ & segtype::EXPDOWN_OR_CONFORMING != 0;
        if seg == SegReg::Ss {
            if code || !rw || rpl != cpl || d.dpl != cpl {
                return Err(Exception::gp(err).into());
            }
            if !d.present {
                return Err(Exception::ss(err).into());
            }
        } else {
            if code && !rw {
                return Err(Exception::gp(err).into());
            }
            if !conforming && (rpl > d.dpl || cpl > d.dpl) {
                return Err(Exception::gp(err).into());
            }
            if !d.present {
                return Err(Exception::with_code(NP_VECTOR, err).into());
            }
        }
        self.set_accessed(la, raw)?;
        Ok(Segment {
            type_: d.type_ | segtype::ACCESSED,
            ..d
        })
    }

    /// New CS for a far JMP/CALL (`ret` = false) or far RET (`ret` =
    /// true) to `sel` at the same privilege level; does not commit.
    pub(super) fn load_cs(&mut self, sel: u16, ret: bool) -> Res<Segment> {
        let old = self.cpu.segment(SegReg::Cs);
        match self.mode {
            CpuMode::Real => return Ok(real_seg(old, sel, false)),
            CpuMode::Vm86 => {
                let s = real_seg(old, sel, true);
                return Ok(Segment {
                    type_: segtype::CODE_RX_ACCESSED,
                    ..s
                });
            }
            _ => {}
        }
        let rpl = (sel & selector::RPL_MASK) as u8;
        let cpl = self.cpl;
        if sel & !selector::RPL_MASK == 0 {
            return Err(Exception::gp(0).into());
        }
        let (raw, _, la) = self.read_desc(sel, DESC_SIZE)?;
        let d = desc_to_seg(raw, 0, sel);
        let err = sel_err(sel);
        if !d.s {
            // Call gates, task gates and TSS targets are not emulated.
            return Err(Stop::Unhandleable);
        }
        if d.type_ & segtype::CODE == 0 {
            return Err(Exception::gp(err).into());
        }
        let conforming = d.type_ & segtype::EXPDOWN_OR_CONFORMING != 0;
        if ret {
            if rpl > cpl {
                // Return to an outer privilege level.
                return Err(Stop::Unhandleable);
            }
            if rpl < cpl || (conforming && d.dpl > rpl) || (!conforming && d.dpl != rpl) {
                return Err(Exception::gp(err).into());
            }
        } else if conforming {
            if d.dpl > cpl {
                return Err(Exception::gp(err).into());
            }
        } else if rpl > cpl || d.dpl != cpl {
            return Err(Exception::gp(err).into());
        }
        if !d.present {
            return Err(Exception::with_code(NP_VECTOR, err).into());
        }
        if matches!(self.mode, CpuMode::Long | CpuMode::Compat) && d.l && d.db {
            return Err(Exception::gp(err).into());
        }
        self.set_accessed(la, raw)?;
        let s = (sel & !selector::RPL_MASK) | u16::from(cpl);
        Ok(Segment {
            type_: d.type_ | segtype::ACCESSED,
            selector: s,
            ..d
        })
    }

    /// Commit a segment register.
    pub(super) fn commit_seg(&mut self, seg: SegReg, val: Segment) {
        self.cpu.set_segment(seg, val);
    }

    /// MOV Sreg, MOV from Sreg, LDS/LES/LFS/LGS/LSS.
    pub(super) fn exec_segmov(&mut self) -> Res<Done> {
        let i = self.insn;
        match i.op {
            Op::MovToSeg => {
                let Operand::Seg(s) = i.dst else {
                    return Err(Stop::Unhandleable);
                };
                let sel = (self.read_op(&i.src)? & 0xFFFF) as u16;
                let v = self.load_data_seg(s, sel)?;
                self.commit_seg(s, v);
                if s == SegReg::Ss {
                    self.cpu.set_interrupt_shadow(InterruptShadow::MovSs);
                }
            }
            Op::MovFromSeg => {
                let Operand::Seg(s) = i.src else {
                    return Err(Stop::Unhandleable);
                };
                let v = u64::from(self.cpu.segment(s).selector);
                self.write_op(&i.dst, v)?;
            }
            _ => {
                // LxS: m16:16/32/64, offset first.
                let (
                    Operand::Reg { reg, size, .. },
                    Operand::Mem { mem, size: msize },
                    Operand::Seg(s),
                ) = (i.dst, i.src, i.src2)
                else {
                    return Err(Stop::Unhandleable);
                };
                let ea = self.ea(&mem);
                let la = self.linear(
                    mem.seg,
                    ea,
                    u64::from(msize),
                    super::segment::SegAccess::Read,
                )?;
                let mut b = [0u8; 10];
                self.read_lin(
                    la,
                    b.get_mut(..usize::from(msize)).ok_or(Stop::Unhandleable)?,
                    false,
                )?;
                let n = usize::from(size);
                let mut o = [0u8; 8];
                o.get_mut(..n)
                    .ok_or(Stop::Unhandleable)?
                    .copy_from_slice(b.get(..n).ok_or(Stop::Unhandleable)?);
                let sel = u16::from_le_bytes([
                    b.get(n).copied().unwrap_or(0),
                    b.get(n + 1).copied().unwrap_or(0),
                ]);
                let v = self.load_data_seg(s, sel)?;
                self.commit_seg(s, v);
                self.set(reg, size, u64::from_le_bytes(o));
            }
        }
        self.done()
    }
}
