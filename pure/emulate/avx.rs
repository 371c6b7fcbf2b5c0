//! VEX-encoded vector moves (decoded in `vex.rs`): 16 or 32 bytes between
//! XMM/YMM registers and memory.

use super::exec::{Ctx, Done, Res, Stop};
use super::insn::Operand;
use super::segment::CpuMode;
use super::{CpuState, Cr, Exception, GuestMemory};
use crate::defs::regs::{X86_CR0_EM, X86_CR0_TS, X86_CR4_OSXSAVE, XFEATURE_MASK_YMM};
use crate::defs::vector::NM_VECTOR;

/// Bytes of an XMM register (the low half of a YMM register).
const XMM_BYTES: usize = 16;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// #UD/#NM checks of a VEX instruction, in upstream's order.
    fn avx_usable(&mut self) -> Res<()> {
        // VEX does not exist in real and virtual-8086 mode: #UD on
        // hardware (upstream would emulate it).
        if matches!(self.mode, CpuMode::Real | CpuMode::Vm86) {
            return Err(Exception::ud().into());
        }
        let c0 = self.cpu.cr(Cr::Cr0);
        if c0 & X86_CR0_EM != 0
            || self.cpu.cr(Cr::Cr4) & X86_CR4_OSXSAVE == 0
            || self.cpu.xcr0() & XFEATURE_MASK_YMM == 0
        {
            return Err(Exception::ud().into());
        }
        if c0 & X86_CR0_TS != 0 {
            return Err(Exception::new(NM_VECTOR).into());
        }
        Ok(())
    }

    /// VMOVUPS/VMOVUPD/VMOVAPS/VMOVAPD/VMOVNTPS/VMOVNTPD/VMOVDQA/VMOVDQU/
    /// VMOVNTDQ/VMOVNTDQA.
    pub(super) fn exec_avx(&mut self) -> Res<Done> {
        self.avx_usable()?;
        let i = self.insn;
        let sse = i.sse;
        let n = usize::from(sse.width);
        let mut v = [0u8; 32];
        match i.src {
            Operand::Xmm(x) => {
                let lo = v.get_mut(..XMM_BYTES).ok_or(Stop::Unhandleable)?;
                lo.copy_from_slice(&self.cpu.xmm(x).to_le_bytes());
            }
            Operand::Ymm(x) => v = self.cpu.ymm(x),
            Operand::Mem { .. } => {
                let la = self.vec_mem_la(&i.src, false, sse.alignment())?;
                self.read_lin(la, v.get_mut(..n).ok_or(Stop::Unhandleable)?, false)?;
            }
            _ => return Err(Stop::Unhandleable),
        }
        match i.dst {
            Operand::Xmm(x) => {
                // VEX.128 zeroes bits 255:128 of the destination register.
                if let Some(hi) = v.get_mut(XMM_BYTES..) {
                    hi.fill(0);
                }
                self.cpu.set_ymm(x, v);
            }
            Operand::Ymm(x) => self.cpu.set_ymm(x, v),
            Operand::Mem { .. } => {
                let la = self.vec_mem_la(&i.dst, true, sse.alignment())?;
                self.write_lin(la, v.get(..n).ok_or(Stop::Unhandleable)?, false)?;
            }
            _ => return Err(Stop::Unhandleable),
        }
        self.done()
    }
}
