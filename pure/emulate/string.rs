//! String instructions MOVS/CMPS/STOS/LODS/SCAS/INS/OUTS with REP, REPE,
//! REPNE and the direction flag.
//!
//! Work per call is bounded by [`super::REP_BUDGET`] iterations; every
//! iteration commits RSI/RDI/RCX so a fault, an MMIO exit or the budget
//! leaves a consistent, resumable state (RIP stays at the instruction until
//! the count reaches zero or the REPE/REPNE condition ends the loop).

use super::access::mask;
use super::exec::{Ctx, Done, Res, Stop};
use super::flags;
use super::insn::{Op, Rep};
use super::regs::SegReg;
use super::segment::SegAccess;
use super::{CpuState, GuestMemory, PioRequest, PIO_BATCH_BYTES, REP_BUDGET};
use crate::defs::paging::Gva;
use crate::defs::regs::{RAX, RCX, RDI, RDX, RSI, X86_EFLAGS_ARITH, X86_EFLAGS_DF, X86_EFLAGS_ZF};

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    /// Element stride (negative when DF is set), as a wrapping u64.
    fn stride(&self) -> u64 {
        let size = u64::from(self.insn.opsize);
        if self.flags() & X86_EFLAGS_DF != 0 {
            size.wrapping_neg()
        } else {
            size
        }
    }

    fn src_seg(&self) -> SegReg {
        self.insn.seg_override.unwrap_or(SegReg::Ds)
    }

    /// One element of MOVS/CMPS/STOS/LODS/SCAS; commits index registers.
    fn string_step(&mut self) -> Res<()> {
        let i = self.insn;
        let size = i.opsize;
        let ad = i.adsize;
        let st = self.stride();
        let si = self.reg(RSI, ad);
        let di = self.reg(RDI, ad);
        match i.op {
            Op::Movs => {
                let v = self.read_mem(self.src_seg(), si, size)?;
                self.write_mem(SegReg::Es, di, size, v)?;
                self.set(RSI, ad, si.wrapping_add(st));
                self.set(RDI, ad, di.wrapping_add(st));
            }
            Op::Cmps => {
                let a = self.read_mem(self.src_seg(), si, size)?;
                let b = self.read_mem(SegReg::Es, di, size)?;
                let (_, f) = flags::sub(a, b, false, size);
                self.set(RSI, ad, si.wrapping_add(st));
                self.set(RDI, ad, di.wrapping_add(st));
                self.set_flags(X86_EFLAGS_ARITH, f);
            }
            Op::Stos => {
                let v = self.reg(RAX, size);
                self.write_mem(SegReg::Es, di, size, v)?;
                self.set(RDI, ad, di.wrapping_add(st));
            }
            Op::Lods => {
                let v = self.read_mem(self.src_seg(), si, size)?;
                self.set(RAX, size, v);
                self.set(RSI, ad, si.wrapping_add(st));
            }
            _ => {
                let b = self.read_mem(SegReg::Es, di, size)?;
                let a = self.reg(RAX, size);
                let (_, f) = flags::sub(a, b, false, size);
                self.set(RDI, ad, di.wrapping_add(st));
                self.set_flags(X86_EFLAGS_ARITH, f);
            }
        }
        Ok(())
    }

    /// String instruction dispatcher.
    pub(super) fn exec_string(&mut self) -> Res<Done> {
        let i = self.insn;
        if matches!(i.op, Op::Ins | Op::Outs) {
            return self.exec_string_io();
        }
        let ad = i.adsize;
        let rep = i.rep != Rep::None;
        let cond = matches!(i.op, Op::Cmps | Op::Scas);
        if !rep {
            self.string_step()?;
            return self.done();
        }
        let mut iters: u64 = 0;
        loop {
            let cx = self.reg(RCX, ad);
            if cx == 0 {
                return self.done();
            }
            self.string_step()?;
            let cx = cx.wrapping_sub(1) & mask(ad);
            self.set(RCX, ad, cx);
            self.io.rc.commit();
            if cx == 0 {
                return self.done();
            }
            if cond {
                let zf = self.flags() & X86_EFLAGS_ZF != 0;
                if (i.rep == Rep::Rep && !zf) || (i.rep == Rep::Repne && zf) {
                    return self.done();
                }
            }
            iters += 1;
            if !self.io.wq.is_empty() || iters >= REP_BUDGET {
                self.clear_rf();
                return Ok(Done::Continue);
            }
        }
    }

    /// INS/OUTS, batched within one page and [`PIO_BATCH_BYTES`].
    fn exec_string_io(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = i.opsize;
        let ad = i.adsize;
        let rep = i.rep != Rep::None;
        let port = self.reg(RDX, 2) as u16;
        let is_in = i.op == Op::Ins;
        self.check_io(port, size)?;
        let cx = self.reg(RCX, ad);
        if rep && cx == 0 {
            return self.done();
        }
        let (seg, idx_reg) = if is_in {
            (SegReg::Es, RDI)
        } else {
            (self.src_seg(), RSI)
        };
        let idx = self.reg(idx_reg, ad);
        let down = self.flags() & X86_EFLAGS_DF != 0;
        let sz = u64::from(size);
        let acc = if is_in {
            SegAccess::Write
        } else {
            SegAccess::Read
        };
        let la = self.linear(seg, idx, sz, acc)?;
        // Elements that fit in the current page in the direction of travel.
        let page = Gva::new(la);
        let in_page = if down {
            page.page_offset() / sz + 1
        } else {
            page.bytes_to_page_end() / sz
        };
        let mut n = if rep {
            cx.min((PIO_BATCH_BYTES as u64) / sz).min(in_page)
        } else {
            1
        };
        if down && idx < n.saturating_sub(1) * sz {
            n = 1;
        }
        let n = n.max(1);
        let len = (n * sz) as usize;
        let lo_idx = if down {
            idx.wrapping_sub((n - 1) * sz)
        } else {
            idx
        };
        let lo = self.linear(seg, lo_idx, len as u64, acc)?;
        let req = PioRequest {
            port,
            size,
            count: n as u32,
            is_in,
        };
        let mut image = [0u8; PIO_BATCH_BYTES];
        if is_in {
            let ready =
                self.io.pio.in_ready && self.io.pio.req == Some(req) && self.io.pio.len >= len;
            if !ready {
                // Fault on the destination before doing the I/O.
                self.translate(lo, true, false)?;
                self.translate(lo.wrapping_add(len as u64 - 1), true, false)?;
                return Err(Stop::PioIn(req));
            }
            for k in 0..n as usize {
                let slot = if down { n as usize - 1 - k } else { k };
                for j in 0..usize::from(size) {
                    let s = self
                        .io
                        .pio
                        .buf
                        .get(k * usize::from(size) + j)
                        .copied()
                        .unwrap_or(0);
                    if let Some(d) = image.get_mut(slot * usize::from(size) + j) {
                        *d = s;
                    }
                }
            }
            self.write_lin(lo, image.get(..len).ok_or(Stop::Unhandleable)?, false)?;
        } else {
            self.read_lin(lo, image.get_mut(..len).ok_or(Stop::Unhandleable)?, false)?;
            let mut out = [0u8; PIO_BATCH_BYTES];
            for k in 0..n as usize {
                let slot = if down { n as usize - 1 - k } else { k };
                for j in 0..usize::from(size) {
                    let s = image
                        .get(slot * usize::from(size) + j)
                        .copied()
                        .unwrap_or(0);
                    if let Some(d) = out.get_mut(k * usize::from(size) + j) {
                        *d = s;
                    }
                }
            }
            self.io.pio.buf = out;
            self.io.pio.len = len;
            self.io.pio.req = Some(req);
            self.io.pio.out = true;
        }
        let delta = if down {
            (n * sz).wrapping_neg()
        } else {
            n * sz
        };
        self.set(idx_reg, ad, idx.wrapping_add(delta));
        if !rep {
            return self.done();
        }
        let left = cx.wrapping_sub(n) & mask(ad);
        self.set(RCX, ad, left);
        if left == 0 {
            return self.done();
        }
        self.clear_rf();
        Ok(Done::Continue)
    }
}
