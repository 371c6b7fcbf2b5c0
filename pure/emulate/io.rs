//! IN/OUT and the I/O permission check shared with INS/OUTS.

use super::access::mask;
use super::exec::{Ctx, Done, Res, Stop};
use super::insn::Op;
use super::regs::{segtype, SegReg};
use super::segment::CpuMode;
use super::{CpuState, Exception, GuestMemory, PioRequest};
use crate::defs::regs::RAX;

/// Offset of the I/O map base field in a 32/64-bit TSS.
const TSS_IOMAP_BASE: u64 = 0x66;
/// Minimum limit of a TSS that has an I/O map base field.
const TSS_MIN_LIMIT: u32 = 0x67;
/// Type bits identifying a 32/64-bit TSS (busy bit ignored).
const TSS_TYPE_MASK: u8 = !segtype::TSS_BUSY_BIT & 0xF;

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// #GP(0) unless the port range is accessible (IOPL or TSS bitmap).
    pub(super) fn check_io(&mut self, port: u16, size: u8) -> Res<()> {
        if self.mode == CpuMode::Real {
            return Ok(());
        }
        if self.mode != CpuMode::Vm86 && self.cpl <= self.iopl() {
            return Ok(());
        }
        let tr = self.cpu.segment(SegReg::Tr);
        if tr.unusable
            || !tr.present
            || tr.type_ & TSS_TYPE_MASK != segtype::SYS_TSS_AVAIL
            || tr.limit < TSS_MIN_LIMIT
        {
            return Err(Exception::gp(0).into());
        }
        let mut b = [0u8; 2];
        self.read_lin(tr.base.wrapping_add(TSS_IOMAP_BASE), &mut b, true)?;
        let base = u64::from(u16::from_le_bytes(b));
        let off = base + u64::from(port / 8);
        if off + 1 > u64::from(tr.limit) {
            return Err(Exception::gp(0).into());
        }
        self.read_lin(tr.base.wrapping_add(off), &mut b, true)?;
        let perm = u16::from_le_bytes(b);
        let want = ((1u16 << size) - 1) << (port & 7);
        if perm & want != 0 {
            return Err(Exception::gp(0).into());
        }
        Ok(())
    }

    /// IN/OUT with an immediate or DX port.
    pub(super) fn exec_inout(&mut self) -> Res<Done> {
        let i = self.insn;
        let is_in = i.op == Op::In;
        let (port_op, size) = if is_in {
            (i.src, Self::op_size(&i.dst))
        } else {
            (i.dst, Self::op_size(&i.src))
        };
        let port = (self.read_op(&port_op)? & 0xFFFF) as u16;
        self.check_io(port, size)?;
        let req = PioRequest {
            port,
            size,
            count: 1,
            is_in,
        };
        let n = usize::from(size);
        if is_in {
            let p = &self.io.pio;
            if !(p.in_ready && p.req == Some(req) && p.len >= n) {
                return Err(Stop::PioIn(req));
            }
            let mut b = [0u8; 8];
            for (k, d) in b.iter_mut().enumerate().take(n) {
                *d = p.buf.get(k).copied().unwrap_or(0);
            }
            self.set(RAX, size, u64::from_le_bytes(b) & mask(size));
        } else {
            let v = self.reg(RAX, size).to_le_bytes();
            for k in 0..n {
                if let (Some(d), Some(s)) = (self.io.pio.buf.get_mut(k), v.get(k)) {
                    *d = *s;
                }
            }
            self.io.pio.len = n;
            self.io.pio.req = Some(req);
            self.io.pio.out = true;
        }
        self.done()
    }
}
