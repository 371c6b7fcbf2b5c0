//! MMX MOVQ between MMX registers and memory (0F 6F / 0F 7F without a
//! prefix), the only MMX instruction upstream KVM emulates.

use super::exec::{Ctx, Done, Res, Stop};
use super::insn::Operand;
use super::{CpuState, Cr, Exception, GuestMemory};
use crate::defs::regs::{X86_CR0_EM, X86_CR0_TS};
use crate::defs::vector::{MF_VECTOR, NM_VECTOR};

/// Bytes of an MMX register.
const MMX_BYTES: u8 = 8;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// MOVQ mm, mm/m64 and MOVQ mm/m64, mm.
    pub(super) fn exec_mmx(&mut self) -> Res<Done> {
        let c0 = self.cpu.cr(Cr::Cr0);
        if c0 & X86_CR0_EM != 0 {
            return Err(Exception::ud().into());
        }
        if c0 & X86_CR0_TS != 0 {
            return Err(Exception::new(NM_VECTOR).into());
        }
        // MMX instructions first deliver a pending unmasked x87 exception
        // (as FWAIT would); MMX registers are only touched once there is
        // none.
        if self.cpu.x87_exception_pending() {
            return Err(Exception::new(MF_VECTOR).into());
        }
        let i = self.insn;
        let v = match i.src {
            Operand::Mm(n) => self.cpu.mmx(n),
            Operand::Mem { .. } => {
                let la = self.vec_mem_la(&i.src, false, 1)?;
                self.read_la(la, MMX_BYTES)?
            }
            _ => return Err(Stop::Unhandleable),
        };
        match i.dst {
            Operand::Mm(n) => self.cpu.set_mmx(n, v),
            Operand::Mem { .. } => {
                let la = self.vec_mem_la(&i.dst, true, 1)?;
                self.write_la(la, MMX_BYTES, v)?;
            }
            _ => return Err(Stop::Unhandleable),
        }
        self.done()
    }
}
