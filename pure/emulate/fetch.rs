//! Instruction fetch: bytes from the caller's prefetch buffer first, then
//! from guest memory at CS:RIP (segmentation, paging, fetch permission).

use super::access::{paging_config, walk_error};
use super::decode::ByteSource;
use super::exec::Stop;
use super::paging::{self, Access};
use super::regs::{SegReg, MAX_INSN_LEN};
use super::segment::{self, CpuMode, SegAccess};
use super::{CpuState, GuestMemory};
use crate::defs::paging::Gva;

/// Lazily filled instruction byte buffer.
pub(super) struct CodeFetcher<'a, C: CpuState, M: GuestMemory> {
    cpu: &'a C,
    mem: &'a mut M,
    mode: CpuMode,
    pre: &'a [u8],
    buf: [u8; MAX_INSN_LEN],
    n: usize,
}

impl<'a, C: CpuState, M: GuestMemory> CodeFetcher<'a, C, M> {
    /// Fetcher for the instruction at the vCPU's CS:RIP.
    pub(super) fn new(cpu: &'a C, mem: &'a mut M, mode: CpuMode, pre: &'a [u8]) -> Self {
        CodeFetcher {
            cpu,
            mem,
            mode,
            pre,
            buf: [0; MAX_INSN_LEN],
            n: 0,
        }
    }

    /// Bytes fetched so far.
    pub(super) fn bytes(&self) -> ([u8; MAX_INSN_LEN], u8) {
        (self.buf, self.n as u8)
    }

    /// Fetch more bytes from guest memory, at most to the page end.
    fn fill(&mut self) -> Result<(), Stop> {
        let off = self.cpu.rip().wrapping_add(self.n as u64);
        let ip = match self.mode {
            CpuMode::Long => off,
            _ => off & 0xFFFF_FFFF,
        };
        let la = segment::linearize(self.cpu, self.mode, SegReg::Cs, ip, 1, SegAccess::Fetch)?;
        let cpl = if self.mode == CpuMode::Real {
            0
        } else {
            self.cpu.cpl() & 3
        };
        let cfg = paging_config(self.cpu, self.mode);
        let acc = Access {
            write: false,
            fetch: true,
            user: cpl == 3,
            implicit: false,
            ac: false,
        };
        let t = paging::translate(self.mem, &cfg, la, acc).map_err(|e| walk_error(e, la))?;
        let in_page = Gva::new(la).bytes_to_page_end() as usize;
        let want = (MAX_INSN_LEN - self.n).min(in_page);
        let mut tmp = [0u8; MAX_INSN_LEN];
        let dst = tmp.get_mut(..want).ok_or(Stop::Unhandleable)?;
        // Bytes past the segment limit must not be fetched: fetch only as
        // many as the limit allows (one at least, already checked).
        let mut allowed = want;
        if self.mode != CpuMode::Long {
            let cs = self.cpu.segment(SegReg::Cs);
            let room = u64::from(cs.limit).saturating_sub(ip).saturating_add(1);
            allowed = allowed.min(room.min(MAX_INSN_LEN as u64) as usize).max(1);
        }
        let dst = dst.get_mut(..allowed).ok_or(Stop::Unhandleable)?;
        self.mem.read(t.gpa, dst).map_err(|_| Stop::Unhandleable)?;
        for b in dst.iter() {
            if let Some(s) = self.buf.get_mut(self.n) {
                *s = *b;
                self.n += 1;
            }
        }
        Ok(())
    }
}

impl<C: CpuState, M: GuestMemory> ByteSource for CodeFetcher<'_, C, M> {
    type Error = Stop;
    fn byte(&mut self, idx: usize) -> Result<u8, Stop> {
        // Bounded: each round adds at least one byte or fails.
        while self.n <= idx && self.n < MAX_INSN_LEN {
            if let Some(b) = self.pre.get(self.n) {
                if let Some(s) = self.buf.get_mut(self.n) {
                    *s = *b;
                }
                self.n += 1;
                continue;
            }
            self.fill()?;
        }
        self.buf.get(idx).copied().ok_or(Stop::Unhandleable)
    }
}
