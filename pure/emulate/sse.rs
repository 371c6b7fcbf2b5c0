//! SSE moves used for MMIO, those upstream emulates: MOVUPS/MOVUPD,
//! MOVAPS/MOVAPD, MOVDQA/MOVDQU, MOVNTPS/MOVNTPD/MOVNTDQ/MOVNTDQA (all
//! 16 bytes).

use super::access::mask;
use super::exec::{Ctx, Done, Res, Stop};
use super::insn::Operand;
use super::segment::SegAccess;
use super::{CpuState, Cr, Exception, GuestMemory};
use crate::defs::regs::{X86_CR0_EM, X86_CR0_TS, X86_CR4_OSFXSR};
use crate::defs::vector::NM_VECTOR;

/// Mask of the low `width` bytes of an XMM value.
fn wmask(width: u8) -> u128 {
    if width >= 16 {
        u128::MAX
    } else {
        (1u128 << (u32::from(width) * 8)) - 1
    }
}

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Linear address of the memory operand `o` of a vector move, with
    /// #GP(0) if it is not aligned to `align` bytes.
    pub(super) fn vec_mem_la(&self, o: &Operand, write: bool, align: u64) -> Res<u64> {
        let Operand::Mem { mem, size } = *o else {
            return Err(Stop::Unhandleable);
        };
        let ea = self.ea(&mem);
        let acc = if write {
            SegAccess::Write
        } else {
            SegAccess::Read
        };
        let la = self.linear(mem.seg, ea, u64::from(size), acc)?;
        if la % align.max(1) != 0 {
            return Err(Exception::gp(0).into());
        }
        Ok(la)
    }

    /// SSE register/memory moves.
    pub(super) fn exec_sse(&mut self) -> Res<Done> {
        let c0 = self.cpu.cr(Cr::Cr0);
        if c0 & X86_CR0_EM != 0 || self.cpu.cr(Cr::Cr4) & X86_CR4_OSFXSR == 0 {
            return Err(Exception::ud().into());
        }
        if c0 & X86_CR0_TS != 0 {
            return Err(Exception::new(NM_VECTOR).into());
        }
        let i = self.insn;
        let sse = i.sse;
        let w = sse.width;
        let n = usize::from(w);
        let v: u128 = match i.src {
            Operand::Xmm(x) => self.cpu.xmm(x) & wmask(w),
            Operand::Reg { reg, size, .. } => u128::from(self.reg(reg, size)),
            Operand::Mem { .. } => {
                let la = self.vec_mem_la(&i.src, false, sse.alignment())?;
                let mut b = [0u8; 16];
                self.read_lin(la, b.get_mut(..n).ok_or(Stop::Unhandleable)?, false)?;
                u128::from_le_bytes(b)
            }
            _ => return Err(Stop::Unhandleable),
        };
        match i.dst {
            Operand::Xmm(x) => {
                let nv = if sse.zero_upper {
                    v
                } else {
                    (self.cpu.xmm(x) & !wmask(w)) | v
                };
                self.cpu.set_xmm(x, nv);
            }
            Operand::Reg { reg, size, .. } => self.set(reg, size, (v as u64) & mask(size)),
            Operand::Mem { .. } => {
                let la = self.vec_mem_la(&i.dst, true, sse.alignment())?;
                let b = v.to_le_bytes();
                self.write_lin(la, b.get(..n).ok_or(Stop::Unhandleable)?, false)?;
            }
            _ => return Err(Stop::Unhandleable),
        }
        self.done()
    }
}
