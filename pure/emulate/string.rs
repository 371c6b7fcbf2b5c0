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
use super::segment::{self, SegAccess};
use super::{CpuState, GuestMemory, PioRequest, PIO_BATCH_BYTES, REP_BUDGET, REP_YIELD};
use crate::defs::paging::{bytes_to_page_end, offset_in_page};
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
            if !self.io.wq.is_empty() {
                // MMIO writes to deliver: one element per exit; the guest
                // runs again every REP_YIELD elements.
                self.clear_rf();
                return Ok(if cx % REP_YIELD == 0 {
                    Done::Yield
                } else {
                    Done::Continue
                });
            }
            if iters >= REP_BUDGET {
                self.clear_rf();
                return Ok(Done::Continue);
            }
        }
    }

    /// INS/OUTS: OUTS one element per request (upstream's `em_out`, which
    /// calls `pio_out_emulated` with count 1); INS with upstream's
    /// read-ahead (`pio_in_emulated`), see [`Self::exec_ins`].
    fn exec_string_io(&mut self) -> Res<Done> {
        let i = self.insn;
        let size = i.opsize;
        let ad = i.adsize;
        let rep = i.rep != Rep::None;
        let port = self.reg(RDX, 2) as u16;
        self.check_io(port, size)?;
        let cx = self.reg(RCX, ad);
        if rep && cx == 0 {
            return self.done();
        }
        if i.op == Op::Ins {
            return self.exec_ins(port, rep, cx);
        }
        let si = self.reg(RSI, ad);
        let v = self.read_mem(self.src_seg(), si, size)?;
        let n = usize::from(size);
        let b = v.to_le_bytes();
        if let (Some(d), Some(s)) = (self.io.pio.buf.get_mut(..n), b.get(..n)) {
            d.copy_from_slice(s);
        }
        self.io.pio.len = n;
        self.io.pio.req = Some(PioRequest {
            port,
            size,
            count: 1,
            is_in: false,
        });
        self.io.pio.out = true;
        self.set(RSI, ad, si.wrapping_add(self.stride()));
        if !rep {
            return self.done();
        }
        let left = cx.wrapping_sub(1) & mask(ad);
        self.set(RCX, ad, left);
        if left == 0 {
            return self.done();
        }
        self.clear_rf();
        Ok(if left % REP_YIELD == 0 {
            Done::Yield
        } else {
            Done::Continue
        })
    }

    /// INS of one read-ahead batch, as upstream's `pio_in_emulated`:
    /// `n = min(in_page, PIO_BATCH_BYTES / size, count)`, at least 1, where
    /// `in_page` is in bytes (not elements) from RDI to the boundary of
    /// RDI's page in the direction of travel and `count` is RCX masked to
    /// the address size, truncated to 32 bits (1 without REP). The batch
    /// goes to ES:RDI upwards as one block (DF=0, one `segmented_write`
    /// upstream), or element by element downwards (DF=1), where the
    /// address may wrap below 0 once: at most two runs contiguous in the
    /// address space, each checked as a whole (equivalent to checking its
    /// elements one by one). Every run is checked for segment and page
    /// faults before the I/O, so a fault never loses port data. After the
    /// batch the guest runs again, as upstream re-enters it when the
    /// read-ahead buffer is empty.
    fn exec_ins(&mut self, port: u16, rep: bool, cx: u64) -> Res<Done> {
        let size = self.insn.opsize;
        let ad = self.insn.adsize;
        // 1, 2 or 4 (`max` spares a division-by-zero panic path).
        let sz = u64::from(size.max(1));
        let down = self.flags() & X86_EFLAGS_DF != 0;
        let di = self.reg(RDI, ad);
        let in_page = if down {
            offset_in_page(di)
        } else {
            bytes_to_page_end(di)
        };
        let count = if rep { u64::from(cx as u32) } else { 1 };
        let n = in_page.min(PIO_BATCH_BYTES as u64 / sz).min(count).max(1);
        let len = (n * sz) as usize;
        // Element 0 first: its segment and alignment (#AC) checks.
        let la0 = self.linear(SegReg::Es, di, sz, SegAccess::Write)?;
        // Runs `(linear address, offset in the image, length)`: the image
        // is the batch in memory order (elements reversed for DF=1), with
        // the run holding element 0 last.
        let mut runs = [(la0, 0usize, 0usize); 2];
        if down {
            // Elements 0..m lie at or above 0, m..n wrapped to the top.
            let m = (di / sz).saturating_add(1).min(n);
            let lo_a = di.wrapping_sub((m - 1) * sz);
            let off_a = ((n - m) * sz) as usize;
            runs[1] = (self.linear_run(lo_a, len - off_a)?, off_a, len - off_a);
            if m < n {
                let lo_b = di.wrapping_sub((n - 1) * sz) & mask(ad);
                runs[0] = (self.linear_run(lo_b, off_a)?, 0, off_a);
            }
        } else {
            runs[1] = (self.linear_run(di, len)?, 0, len);
        }
        let req = PioRequest {
            port,
            size,
            count: n as u32,
            is_in: true,
        };
        let p = &self.io.pio;
        if !(p.in_ready && p.req == Some(req) && p.len >= len) {
            for &(la, _, l) in runs.iter().rev() {
                self.probe_write(la, l, down)?;
            }
            return Err(Stop::PioIn(req));
        }
        if down {
            // Element k of the batch goes to RDI - k * size: memory order is
            // the batch reversed element-wise. In place: the data is
            // consumed here, and any stop below drops it (as upstream).
            if let Some(b) = self.io.pio.buf.get_mut(..len) {
                b.reverse();
                for e in b.chunks_mut(usize::from(size)) {
                    e.reverse();
                }
            }
        }
        for &(la, off, l) in runs.iter().rev() {
            if l > 0 {
                self.write_pio_image(la, off, l)?;
            }
        }
        let delta = if down {
            (n * sz).wrapping_neg()
        } else {
            n * sz
        };
        self.set(RDI, ad, di.wrapping_add(delta));
        if !rep {
            return self.done();
        }
        let left = cx.wrapping_sub(n) & mask(ad);
        self.set(RCX, ad, left);
        if left == 0 {
            return self.done();
        }
        self.clear_rf();
        Ok(Done::Yield)
    }

    /// Linear address of a run of INS destination elements at ES:`ea`,
    /// `len` bytes, segment-checked as a whole.
    fn linear_run(&self, ea: u64, len: usize) -> Res<u64> {
        Ok(segment::linearize(
            self.cpu,
            self.mode,
            SegReg::Es,
            ea,
            len as u64,
            SegAccess::Write,
        )?)
    }
}
