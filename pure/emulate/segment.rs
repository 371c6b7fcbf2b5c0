//! Processor mode and segmentation: logical -> linear address translation
//! with limit, type and canonical checks.

use super::decode::CodeSize;
use super::regs::{segtype, SegReg};
use super::{CpuState, Exception, Segment};
use crate::defs::regs::{EFER_LMA, X86_CR0_PE, X86_CR4_LA57, X86_EFLAGS_VM};

/// Operating mode of the vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CpuMode {
    /// CR0.PE = 0.
    Real,
    /// Virtual-8086 mode.
    Vm86,
    /// Protected mode (legacy, not long mode).
    Prot,
    /// Long mode, 32/16-bit code segment.
    Compat,
    /// Long mode, 64-bit code segment.
    Long,
}

impl CpuMode {
    /// Read the mode from the CPU state.
    pub(super) fn of<C: CpuState>(cpu: &C) -> CpuMode {
        if cpu.cr(super::Cr::Cr0) & X86_CR0_PE == 0 {
            CpuMode::Real
        } else if cpu.efer() & EFER_LMA != 0 {
            if cpu.segment(SegReg::Cs).l {
                CpuMode::Long
            } else {
                CpuMode::Compat
            }
        } else if cpu.rflags() & X86_EFLAGS_VM != 0 {
            CpuMode::Vm86
        } else {
            CpuMode::Prot
        }
    }

    /// Whether segment descriptors are used (protected or long mode).
    pub(super) fn protected(self) -> bool {
        matches!(self, CpuMode::Prot | CpuMode::Compat | CpuMode::Long)
    }

    /// Whether the mode is real or virtual-8086.
    pub(super) fn realish(self) -> bool {
        matches!(self, CpuMode::Real | CpuMode::Vm86)
    }
}

/// Code size for the decoder.
pub(super) fn code_size<C: CpuState>(cpu: &C, mode: CpuMode) -> CodeSize {
    match mode {
        CpuMode::Long => CodeSize::Bits64,
        CpuMode::Vm86 => CodeSize::Bits16,
        _ => {
            if cpu.segment(SegReg::Cs).db {
                CodeSize::Bits32
            } else {
                CodeSize::Bits16
            }
        }
    }
}

/// Kind of segment access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SegAccess {
    /// Data read.
    Read,
    /// Data write.
    Write,
    /// Instruction fetch.
    Fetch,
    /// Address computation only (no type check), e.g. INVLPG.
    None,
}

/// Mask for a 32-bit linear address outside long mode.
const LA32_MASK: u64 = 0xFFFF_FFFF;
/// Maximum offset of an expand-down segment with B=0.
const EXPDOWN_MAX_16: u64 = 0xFFFF;

/// Whether `la` is canonical for the current linear-address width.
pub(super) fn is_canonical<C: CpuState>(cpu: &C, la: u64) -> bool {
    let bits = if cpu.cr(super::Cr::Cr4) & X86_CR4_LA57 != 0 {
        57
    } else {
        48
    };
    let shift = 64 - bits;
    (((la << shift) as i64) >> shift) as u64 == la
}

/// The fault to raise for a segmentation violation on `seg`.
pub(super) fn seg_fault(seg: SegReg) -> Exception {
    if seg == SegReg::Ss {
        Exception::ss(0)
    } else {
        Exception::gp(0)
    }
}

/// Translate `seg:ea` for an access of `size` bytes to a linear address.
pub(super) fn linearize<C: CpuState>(
    cpu: &C,
    mode: CpuMode,
    seg: SegReg,
    ea: u64,
    size: u64,
    acc: SegAccess,
) -> Result<u64, Exception> {
    let s = cpu.segment(seg);
    if mode == CpuMode::Long {
        let base = match seg {
            SegReg::Fs | SegReg::Gs => s.base,
            _ => 0,
        };
        let la = base.wrapping_add(ea);
        if acc != SegAccess::None && !is_canonical(cpu, la) {
            return Err(seg_fault(seg));
        }
        return Ok(la);
    }
    check_limits(&s, mode, seg, ea, size, acc)?;
    Ok(s.base.wrapping_add(ea) & LA32_MASK)
}

fn check_limits(
    s: &Segment,
    mode: CpuMode,
    seg: SegReg,
    ea: u64,
    size: u64,
    acc: SegAccess,
) -> Result<(), Exception> {
    if acc == SegAccess::None {
        return Ok(());
    }
    if mode.protected() {
        if s.unusable || !s.present {
            return Err(seg_fault(seg));
        }
        let code = s.type_ & segtype::CODE != 0;
        let wr = s.type_ & segtype::WRITE_OR_READ != 0;
        match acc {
            SegAccess::Write if code || !wr => return Err(seg_fault(seg)),
            SegAccess::Read if code && !wr => return Err(seg_fault(seg)),
            _ => {}
        }
    }
    let last = ea
        .checked_add(size.saturating_sub(1))
        .ok_or(seg_fault(seg))?;
    let lim = u64::from(s.limit);
    let expand_down = mode.protected()
        && s.type_ & segtype::CODE == 0
        && s.type_ & segtype::EXPDOWN_OR_CONFORMING != 0;
    if expand_down {
        let max = if s.db { LA32_MASK } else { EXPDOWN_MAX_16 };
        if ea <= lim || last > max {
            return Err(seg_fault(seg));
        }
    } else if last > lim {
        return Err(seg_fault(seg));
    }
    Ok(())
}
