//! Operand and memory access for the executor: registers, effective
//! addresses, linear memory through the page-table walker, MMIO read cache
//! and MMIO write queue.

use super::exec::{Ctx, Res, Stop};
use super::insn::{MemRef, Operand};
use super::paging::{self, Access, PagingConfig, WalkError};
use super::regs::SegReg;
use super::segment::{self, CpuMode, SegAccess};
use super::{CpuState, Cr, Exception, GuestMemory, MMIO_MAX};
use crate::defs::paging::Gva;
use crate::defs::regs::{X86_CR0_AM, X86_EFLAGS_AC, X86_EFLAGS_FIXED};
use crate::defs::vector::AC_VECTOR;

/// Largest linear access the executor performs at once (an INS batch;
/// at most two pages).
pub(super) const MAX_ACCESS: usize = super::PIO_BATCH_BYTES;
/// Largest single access handed to [`GuestMemory`] (the trait contract).
const MEM_CHUNK: usize = 16;

/// Paging configuration for the current mode.
pub(super) fn paging_config<C: CpuState>(cpu: &C, mode: CpuMode) -> PagingConfig {
    let mut cfg = PagingConfig::from_regs(
        cpu.cr(Cr::Cr0),
        cpu.cr(Cr::Cr3),
        cpu.cr(Cr::Cr4),
        cpu.efer(),
        cpu.maxphyaddr(),
        cpu.has_1g_pages(),
    );
    if mode == CpuMode::Real {
        cfg.levels = 0;
    }
    cfg
}

/// Map a walker error at linear address `la` to an execution stop.
pub(super) fn walk_error(e: WalkError, la: u64) -> Stop {
    match e {
        WalkError::PageFault(code) => Stop::Fault(Exception::pf(la, code)),
        WalkError::NotRam(_) => Stop::Unhandleable,
        WalkError::Busy => Stop::Retry,
    }
}

/// Mask of the low `size` bytes.
pub(super) fn mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// A resolved operand location (memory already linearized).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Loc {
    /// GPR.
    Reg { reg: u8, size: u8, high8: bool },
    /// Linear memory.
    Mem { la: u64, size: u8 },
    /// Immediate value.
    Imm(u64),
}

impl<C: CpuState, M: GuestMemory> Ctx<'_, C, M> {
    // ----- registers -----

    /// Read a GPR slice.
    pub(super) fn get_reg(&self, reg: u8, size: u8, high8: bool) -> u64 {
        let v = self.cpu.gpr(reg);
        if high8 {
            (v >> 8) & 0xFF
        } else {
            v & mask(size)
        }
    }

    /// Write a GPR slice (32-bit writes zero-extend, 8/16-bit merge).
    pub(super) fn set_reg(&mut self, reg: u8, size: u8, high8: bool, val: u64) {
        let old = self.cpu.gpr(reg);
        let new = if high8 {
            (old & !0xFF00) | ((val & 0xFF) << 8)
        } else {
            match size {
                1 => (old & !0xFF) | (val & 0xFF),
                2 => (old & !0xFFFF) | (val & 0xFFFF),
                4 => val & 0xFFFF_FFFF,
                _ => val,
            }
        };
        self.cpu.set_gpr(reg, new);
    }

    /// Read a full-width GPR masked to `size`.
    pub(super) fn reg(&self, reg: u8, size: u8) -> u64 {
        self.get_reg(reg, size, false)
    }

    /// Write a GPR at `size`.
    pub(super) fn set(&mut self, reg: u8, size: u8, val: u64) {
        self.set_reg(reg, size, false, val)
    }

    /// Current RFLAGS.
    pub(super) fn flags(&self) -> u64 {
        self.cpu.rflags()
    }

    /// Replace the bits in `m` of RFLAGS by those of `v`.
    pub(super) fn set_flags(&mut self, m: u64, v: u64) {
        let f = self.cpu.rflags();
        self.cpu.set_rflags((f & !m) | (v & m) | X86_EFLAGS_FIXED);
    }

    // ----- addresses -----

    /// Effective address of a memory operand (masked to the address size).
    pub(super) fn ea(&self, m: &MemRef) -> u64 {
        let a = self.insn.adsize;
        let mut v = m.disp;
        if m.rip_rel {
            v = v.wrapping_add(self.next_rip);
        }
        if let Some(b) = m.base {
            v = v.wrapping_add(self.cpu.gpr(b));
        }
        if let Some(i) = m.index {
            v = v.wrapping_add(self.cpu.gpr(i).wrapping_mul(u64::from(m.scale)));
        }
        v & mask(a)
    }

    /// Linear address of `seg:ea` for an explicit data access.
    pub(super) fn linear(&self, seg: SegReg, ea: u64, size: u64, acc: SegAccess) -> Res<u64> {
        let la = segment::linearize(self.cpu, self.mode, seg, ea, size, acc)?;
        if acc == SegAccess::Read || acc == SegAccess::Write {
            self.check_ac(la, size)?;
        }
        Ok(la)
    }

    /// Alignment check (#AC) for CPL-3 data accesses.
    fn check_ac(&self, la: u64, size: u64) -> Res<()> {
        if self.cpl == 3
            && size > 1
            && size.is_power_of_two()
            && self.cpu.cr(Cr::Cr0) & X86_CR0_AM != 0
            && self.cpu.rflags() & X86_EFLAGS_AC != 0
            && la & (size - 1) != 0
        {
            return Err(Exception::with_code(AC_VECTOR, 0).into());
        }
        Ok(())
    }

    /// Mask applied to linear addresses as accesses advance.
    fn la_mask(&self) -> u64 {
        if self.mode == CpuMode::Long {
            u64::MAX
        } else {
            0xFFFF_FFFF
        }
    }

    /// Translate a linear address for a data access.
    pub(super) fn translate(&mut self, la: u64, write: bool, implicit: bool) -> Res<u64> {
        let acc = Access {
            write,
            fetch: false,
            user: self.cpl == 3 && !implicit,
            implicit,
            // At CPL 3, implicit supervisor accesses ignore RFLAGS.AC.
            ac: self.cpu.rflags() & X86_EFLAGS_AC != 0 && !(implicit && self.cpl == 3),
        };
        let t =
            paging::translate(self.mem, &self.paging, la, acc).map_err(|e| walk_error(e, la))?;
        Ok(t.gpa)
    }

    /// Split `[la, la+len)` into at most two page pieces:
    /// `(la, offset, len)` each.
    fn pieces(&self, la: u64, len: usize) -> Res<[(u64, usize, usize); 2]> {
        if len > MAX_ACCESS {
            return Err(Stop::Unhandleable);
        }
        let first = (Gva::new(la).bytes_to_page_end() as usize).min(len);
        let la2 = la.wrapping_add(first as u64) & self.la_mask();
        Ok([(la, 0, first), (la2, first, len - first)])
    }

    /// Read linear memory.
    pub(super) fn read_lin(&mut self, la: u64, buf: &mut [u8], implicit: bool) -> Res<()> {
        let ps = self.pieces(la, buf.len())?;
        for (pla, off, len) in ps {
            if len == 0 {
                continue;
            }
            let gpa = self.translate(pla, false, implicit)?;
            let part = buf.get_mut(off..off + len).ok_or(Stop::Unhandleable)?;
            let mut done = 0;
            while done < len {
                let n = (len - done).min(MEM_CHUNK);
                let chunk = part.get_mut(done..done + n).ok_or(Stop::Unhandleable)?;
                let g = gpa.wrapping_add(done as u64);
                if self.mem.read(g, chunk).is_err() {
                    // MMIO: 8-byte fragments through the read cache.
                    let mut d = 0;
                    while d < n {
                        let m = (n - d).min(MMIO_MAX);
                        let frag = chunk.get_mut(d..d + m).ok_or(Stop::Unhandleable)?;
                        self.io.rc.read(g.wrapping_add(d as u64), frag)?;
                        d += m;
                    }
                }
                done += n;
            }
        }
        Ok(())
    }

    /// Write linear memory; MMIO parts are queued for delivery.
    pub(super) fn write_lin(&mut self, la: u64, data: &[u8], implicit: bool) -> Res<()> {
        let ps = self.pieces(la, data.len())?;
        let mut gpas = [0u64; 2];
        for (i, (pla, _, len)) in ps.iter().enumerate() {
            if *len > 0 {
                let g = self.translate(*pla, true, implicit)?;
                if let Some(s) = gpas.get_mut(i) {
                    *s = g;
                }
            }
        }
        for (i, (_, off, len)) in ps.iter().enumerate() {
            if *len == 0 {
                continue;
            }
            let gpa = gpas.get(i).copied().unwrap_or(0);
            let part = data.get(*off..off + len).ok_or(Stop::Unhandleable)?;
            let mut done = 0;
            while done < *len {
                let n = (len - done).min(MEM_CHUNK);
                let chunk = part.get(done..done + n).ok_or(Stop::Unhandleable)?;
                let g = gpa.wrapping_add(done as u64);
                if self.mem.write(g, chunk).is_err() {
                    if !self.io.wq.room(n.div_ceil(MMIO_MAX)) {
                        return Err(Stop::Unhandleable);
                    }
                    let mut d = 0;
                    while d < n {
                        let m = (n - d).min(MMIO_MAX);
                        let frag = chunk.get(d..d + m).ok_or(Stop::Unhandleable)?;
                        self.io.wq.push(g.wrapping_add(d as u64), frag)?;
                        d += m;
                    }
                }
                done += n;
            }
        }
        Ok(())
    }

    /// Fault now if a page of `[la, la + len)` is not writable (translation
    /// only, highest page first when `down`).
    pub(super) fn probe_write(&mut self, la: u64, len: usize, down: bool) -> Res<()> {
        let mut ps = self.pieces(la, len)?;
        if down {
            ps.reverse();
        }
        for (pla, _, plen) in ps {
            if plen > 0 {
                self.translate(pla, true, false)?;
            }
        }
        Ok(())
    }

    /// Write `len` bytes of the PIO buffer from `off` (an INS batch image)
    /// to linear `la`. Parts that land in MMIO are queued as runs of the
    /// buffer, delivered [`MMIO_MAX`] bytes per request after the
    /// instruction (upstream's MMIO fragments of one `segmented_write`).
    pub(super) fn write_pio_image(&mut self, la: u64, off: usize, len: usize) -> Res<()> {
        let ps = self.pieces(la, len)?;
        let mut gpas = [0u64; 2];
        for (g, (pla, _, plen)) in gpas.iter_mut().zip(ps.iter()) {
            if *plen > 0 {
                *g = self.translate(*pla, true, false)?;
            }
        }
        for (gpa, (_, poff, plen)) in gpas.iter().zip(ps.iter()) {
            let mut done = 0;
            while done < *plen {
                let n = (plen - done).min(MEM_CHUNK);
                let start = off + poff + done;
                let g = gpa.wrapping_add(done as u64);
                let chunk = self
                    .io
                    .pio
                    .buf
                    .get(start..start + n)
                    .ok_or(Stop::Unhandleable)?;
                if self.mem.write(g, chunk).is_err() {
                    self.io.wq.push_buf(g, start, n)?;
                }
                done += n;
            }
        }
        Ok(())
    }

    /// Atomic compare-exchange on linear memory. Page-crossing or MMIO
    /// accesses degrade to a plain write. Returns whether memory matched.
    pub(super) fn cmpxchg_lin(&mut self, la: u64, old: &[u8], new: &[u8]) -> Res<bool> {
        self.cmpxchg_lin_as(la, old, new, false)
    }

    /// [`Self::cmpxchg_lin`] with a choice of implicit supervisor access
    /// (descriptor table updates).
    pub(super) fn cmpxchg_lin_as(
        &mut self,
        la: u64,
        old: &[u8],
        new: &[u8],
        implicit: bool,
    ) -> Res<bool> {
        let len = old.len();
        let within = len as u64 <= Gva::new(la).bytes_to_page_end();
        if within {
            let gpa = self.translate(la, true, implicit)?;
            if let Ok(ok) = self.mem.cmpxchg(gpa, old, new) {
                return Ok(ok);
            }
        }
        // MMIO or a page-crossing access cannot be atomic: like upstream,
        // treat it as a plain write of the value the caller computed from
        // its own read of `old`.
        self.write_lin(la, new, implicit)?;
        Ok(true)
    }

    /// Read `size` (<= 8) bytes at linear `la`.
    pub(super) fn read_la(&mut self, la: u64, size: u8) -> Res<u64> {
        let mut b = [0u8; 8];
        let s = b.get_mut(..usize::from(size)).ok_or(Stop::Unhandleable)?;
        self.read_lin(la, s, false)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Write `size` (<= 8) bytes at linear `la`.
    pub(super) fn write_la(&mut self, la: u64, size: u8, val: u64) -> Res<()> {
        let b = val.to_le_bytes();
        let s = b.get(..usize::from(size)).ok_or(Stop::Unhandleable)?;
        self.write_lin(la, s, false)
    }

    /// Read `size` bytes at `seg:ea`.
    pub(super) fn read_mem(&mut self, seg: SegReg, ea: u64, size: u8) -> Res<u64> {
        let la = self.linear(seg, ea, u64::from(size), SegAccess::Read)?;
        self.read_la(la, size)
    }

    /// Write `size` bytes at `seg:ea`.
    pub(super) fn write_mem(&mut self, seg: SegReg, ea: u64, size: u8, val: u64) -> Res<()> {
        let la = self.linear(seg, ea, u64::from(size), SegAccess::Write)?;
        self.write_la(la, size, val)
    }

    // ----- operands -----

    /// Resolve an operand for reading (`write` = false) or read-modify-write.
    pub(super) fn resolve(&self, o: &Operand, write: bool) -> Res<Loc> {
        match *o {
            Operand::Reg { reg, size, high8 } => Ok(Loc::Reg { reg, size, high8 }),
            Operand::Mem { mem, size } => {
                let ea = self.ea(&mem);
                let acc = if write {
                    SegAccess::Write
                } else {
                    SegAccess::Read
                };
                let la = self.linear(mem.seg, ea, u64::from(size), acc)?;
                Ok(Loc::Mem { la, size })
            }
            Operand::Imm { val, .. } => Ok(Loc::Imm(val)),
            _ => Err(Stop::Unhandleable),
        }
    }

    /// Read a resolved location.
    pub(super) fn read_loc(&mut self, l: &Loc) -> Res<u64> {
        match *l {
            Loc::Reg { reg, size, high8 } => Ok(self.get_reg(reg, size, high8)),
            Loc::Mem { la, size } => self.read_la(la, size),
            Loc::Imm(v) => Ok(v),
        }
    }

    /// Write a resolved location.
    pub(super) fn write_loc(&mut self, l: &Loc, val: u64) -> Res<()> {
        match *l {
            Loc::Reg { reg, size, high8 } => {
                self.set_reg(reg, size, high8, val);
                Ok(())
            }
            Loc::Mem { la, size } => self.write_la(la, size, val),
            Loc::Imm(_) => Err(Stop::Unhandleable),
        }
    }

    /// Read an operand's value (GPR, memory or immediate).
    pub(super) fn read_op(&mut self, o: &Operand) -> Res<u64> {
        let l = self.resolve(o, false)?;
        self.read_loc(&l)
    }

    /// Write an operand (GPR or memory).
    pub(super) fn write_op(&mut self, o: &Operand, val: u64) -> Res<()> {
        let l = self.resolve(o, true)?;
        self.write_loc(&l, val)
    }

    /// Size in bytes of an operand.
    pub(super) fn op_size(o: &Operand) -> u8 {
        match *o {
            Operand::Reg { size, .. } | Operand::Mem { size, .. } | Operand::Imm { size, .. } => {
                size
            }
            _ => 0,
        }
    }
}
