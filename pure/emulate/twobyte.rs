//! Decoder: the two-byte (0F) opcode map, group 7 and the SSE moves.

use super::decode::{
    ByteSource, DResult, DecodeError, Decoder, ModRm, Size64, MOD_REG, PFX_OPSIZE, PFX_REP, REX_B,
    REX_R, REX_W,
};
use super::insn::{Op, Operand, SseMove};
use super::regs::SegReg;
use crate::defs::regs::RCX;

impl<S: ByteSource> Decoder<'_, S> {
    pub(super) fn two_byte(&mut self, b: u8) -> DResult<(), S::Error> {
        let os = self.insn.opsize;
        match b {
            0x00 => {
                let m = self.modrm()?;
                let size = if m.mem.is_some() { 2 } else { os };
                match m.ext {
                    0 => self.set(Op::Sldt, self.e(&m, size), Operand::None),
                    1 => self.set(Op::Str, self.e(&m, size), Operand::None),
                    2 => self.set(Op::Lldt, self.e(&m, size), Operand::None),
                    3 => self.set(Op::Ltr, self.e(&m, size), Operand::None),
                    _ => return Err(DecodeError::Unsupported),
                }
            }
            0x01 => self.group7()?,
            0x06 => self.insn.op = Op::Clts,
            0x08 => self.insn.op = Op::Invd,
            0x09 => self.insn.op = Op::Wbinvd,
            0x0B => self.insn.op = Op::Ud,
            0x0D | 0x18 => {
                let m = self.modrm()?;
                if m.mem.is_none() || (b == 0x18 && m.ext > 3) {
                    return Err(DecodeError::Unsupported);
                }
                let e = self.e(&m, 1);
                self.set(Op::Nop, e, Operand::None);
            }
            0x1F => {
                let m = self.modrm()?;
                if m.ext != 0 {
                    return Err(DecodeError::Unsupported);
                }
                let e = self.e(&m, os);
                self.set(Op::Nop, e, Operand::None);
            }
            0x10 | 0x11 | 0x28 | 0x29 | 0x2B => self.sse_ps(b)?,
            0x38 => {
                let b3 = self.next()?;
                self.three_byte_38(b3)?;
            }
            // 0F 6E/7E (MOVD/MOVQ) and 0F D6 (MOVQ xmm/m64, xmm) are N in
            // upstream's twobyte_table: not emulated, whatever the prefix.
            0x6F | 0x7F | 0xE7 => self.sse_int(b)?,
            0x20..=0x23 => {
                if self.insn.lock {
                    return Err(DecodeError::Unsupported); // AMD alternate CR8 encoding
                }
                // The mod field is ignored: the r/m operand is always a GPR.
                let mb = self.next()?;
                let m = ModRm {
                    reg: ((mb >> 3) & 7) | if self.rex & REX_R != 0 { 8 } else { 0 },
                    ext: (mb >> 3) & 7,
                    rm: (mb & 7) | if self.rex & REX_B != 0 { 8 } else { 0 },
                    mem: None,
                };
                let valid = if b & 1 == 0 {
                    matches!(m.reg, 0 | 2 | 3 | 4 | 8)
                } else {
                    m.reg < 8
                };
                if !valid {
                    return Err(DecodeError::Invalid);
                }
                let size = if self.long { 8 } else { 4 };
                self.insn.opsize = size;
                let r = self.gpr(m.rm, size);
                match b {
                    0x20 => self.set(Op::MovFromCr, r, Operand::Cr(m.reg)),
                    0x21 => self.set(Op::MovFromDr, r, Operand::Dr(m.reg)),
                    0x22 => self.set(Op::MovToCr, Operand::Cr(m.reg), r),
                    _ => self.set(Op::MovToDr, Operand::Dr(m.reg), r),
                }
            }
            0x30 => self.insn.op = Op::Wrmsr,
            0x31 => self.insn.op = Op::Rdtsc,
            0x32 => self.insn.op = Op::Rdmsr,
            0x40..=0x4F => {
                let m = self.modrm()?;
                let (d, s) = (self.g(&m, os), self.e(&m, os));
                self.set(Op::Cmovcc, d, s);
                self.insn.cond = b & 0xF;
            }
            0x80..=0x8F => {
                self.set_opsize(Size64::Force64);
                let enc = if self.insn.opsize == 2 { 2 } else { 4 };
                let r = self.rel(enc)?;
                self.set(Op::Jcc, r, Operand::None);
                self.insn.cond = b & 0xF;
            }
            0x90..=0x9F => {
                let m = self.modrm()?;
                let d = self.e(&m, 1);
                self.set(Op::Setcc, d, Operand::None);
                self.insn.cond = b & 0xF;
            }
            0xA0 | 0xA1 | 0xA8 | 0xA9 => {
                self.set_opsize(Size64::Default64);
                let s = if b < 0xA8 { SegReg::Fs } else { SegReg::Gs };
                let op = if b & 1 == 0 { Op::Push } else { Op::Pop };
                self.set(op, Operand::Seg(s), Operand::None);
            }
            0xA2 => self.insn.op = Op::Cpuid,
            0xA3 | 0xAB | 0xB3 | 0xBB => {
                let m = self.modrm()?;
                let (d, s) = (self.e(&m, os), self.g(&m, os));
                let op = match b {
                    0xA3 => Op::Bt,
                    0xAB => Op::Bts,
                    0xB3 => Op::Btr,
                    _ => Op::Btc,
                };
                self.set(op, d, s);
            }
            0xA4 | 0xA5 | 0xAC | 0xAD => {
                let m = self.modrm()?;
                let (d, s) = (self.e(&m, os), self.g(&m, os));
                let c = if b & 1 == 0 {
                    self.ib()?
                } else {
                    self.gpr(RCX, 1)
                };
                self.set(if b < 0xA8 { Op::Shld } else { Op::Shrd }, d, s);
                self.insn.src2 = c;
            }
            0xAF => {
                let m = self.modrm()?;
                let (d, s) = (self.g(&m, os), self.e(&m, os));
                self.set(Op::Imul, d, s);
            }
            0xB0 | 0xB1 | 0xC0 | 0xC1 => {
                let size = if b & 1 == 0 { 1 } else { os };
                let m = self.modrm()?;
                let (d, s) = (self.e(&m, size), self.g(&m, size));
                self.set(if b < 0xC0 { Op::Cmpxchg } else { Op::Xadd }, d, s);
            }
            0xB2 | 0xB4 | 0xB5 => {
                let m = self.modrm()?;
                let seg = match b {
                    0xB2 => SegReg::Ss,
                    0xB4 => SegReg::Fs,
                    _ => SegReg::Gs,
                };
                self.lseg(&m, seg)?;
            }
            0xB6 | 0xB7 | 0xBE | 0xBF => {
                let m = self.modrm()?;
                let ss = if b & 1 == 0 { 1 } else { 2 };
                let (d, s) = (self.g(&m, os), self.e(&m, ss));
                self.set(if b < 0xB8 { Op::Movzx } else { Op::Movsx }, d, s);
            }
            0xB9 => {
                let m = self.modrm()?;
                let (d, s) = (self.g(&m, os), self.e(&m, os));
                self.set(Op::Ud, d, s);
            }
            0xBA => {
                let m = self.modrm()?;
                let op = match m.ext {
                    4 => Op::Bt,
                    5 => Op::Bts,
                    6 => Op::Btr,
                    7 => Op::Btc,
                    _ => return Err(DecodeError::Invalid),
                };
                let d = self.e(&m, os);
                let i = self.ib()?;
                self.set(op, d, i);
            }
            0xBC | 0xBD => {
                if self.last_rep == PFX_REP {
                    return Err(DecodeError::Unsupported); // TZCNT/LZCNT
                }
                let m = self.modrm()?;
                let (d, s) = (self.g(&m, os), self.e(&m, os));
                self.set(if b == 0xBC { Op::Bsf } else { Op::Bsr }, d, s);
            }
            0xC3 => {
                if self.pfx66 || self.last_rep != 0 {
                    return Err(DecodeError::Unsupported);
                }
                let m = self.modrm()?;
                if m.mem.is_none() {
                    return Err(DecodeError::Invalid);
                }
                let size = if os == 8 { 8 } else { 4 };
                self.insn.opsize = size;
                let (d, s) = (self.e(&m, size), self.g(&m, size));
                self.set(Op::Movnti, d, s);
            }
            0xC7 => {
                let nb = self.peek()?;
                if (nb >> 3) & 7 != 1 || nb >> 6 == MOD_REG || self.last_rep != 0 {
                    return Err(DecodeError::Unsupported);
                }
                let m = self.modrm()?;
                let size = if self.rex & REX_W != 0 { 16 } else { 8 };
                self.insn.opsize = if size == 16 { 8 } else { 4 };
                let d = self.e(&m, size);
                self.set(Op::Cmpxchg8b, d, Operand::None);
            }
            0xC8..=0xCF => {
                if os == 2 {
                    return Err(DecodeError::Unsupported);
                }
                let r = (b & 7) | if self.rex & REX_B != 0 { 8 } else { 0 };
                self.set(Op::Bswap, self.gpr(r, os), Operand::None);
            }
            _ => return Err(DecodeError::Unsupported),
        }
        Ok(())
    }

    pub(super) fn group7(&mut self) -> DResult<(), S::Error> {
        let nb = self.peek()?;
        let md = nb >> 6;
        let ext = (nb >> 3) & 7;
        if md == MOD_REG {
            match (ext, nb & 7) {
                (4, _) | (6, _) => {}
                (7, 0) if self.long => return Err(DecodeError::Unsupported), // SWAPGS
                (7, 1) => {
                    self.next()?;
                    self.insn.op = Op::Rdtscp;
                    return Ok(());
                }
                _ => return Err(DecodeError::Unsupported),
            }
        }
        if md != MOD_REG && ext == 5 {
            return Err(DecodeError::Unsupported);
        }
        let m = self.modrm()?;
        let os = self.insn.opsize;
        let table_size = if self.long { 10 } else { 6 };
        match ext {
            0 => self.set(Op::Sgdt, self.e(&m, table_size), Operand::None),
            1 => self.set(Op::Sidt, self.e(&m, table_size), Operand::None),
            2 => self.set(Op::Lgdt, self.e(&m, table_size), Operand::None),
            3 => self.set(Op::Lidt, self.e(&m, table_size), Operand::None),
            4 => {
                let size = if m.mem.is_some() { 2 } else { os };
                self.set(Op::Smsw, self.e(&m, size), Operand::None)
            }
            6 => {
                let size = if m.mem.is_some() { 2 } else { os };
                self.set(Op::Lmsw, self.e(&m, size), Operand::None)
            }
            7 => self.set(Op::Invlpg, self.e(&m, 1), Operand::None),
            _ => return Err(DecodeError::Unsupported),
        }
        Ok(())
    }

    /// Mandatory prefix class: 0 none, 0x66, 0xF3, 0xF2.
    pub(super) fn mandatory(&self) -> u8 {
        if self.last_rep != 0 {
            self.last_rep
        } else if self.pfx66 {
            PFX_OPSIZE
        } else {
            0
        }
    }

    pub(super) fn xmm_rm(&self, m: &ModRm, width: u8) -> Operand {
        match m.mem {
            Some(mem) => Operand::Mem { mem, size: width },
            None => Operand::Xmm(m.rm),
        }
    }

    /// MOVUPS/MOVUPD/MOVAPS/MOVAPD/MOVNTPS/MOVNTPD. MOVSS/MOVSD (F3/F2
    /// 0F 10/11) are N in upstream's `pfx_0f_10_0f_11`: not emulated.
    pub(super) fn sse_ps(&mut self, b: u8) -> DResult<(), S::Error> {
        let mp = self.mandatory();
        let m = self.modrm()?;
        let (width, aligned) = match (b, mp) {
            (0x10 | 0x11, 0 | PFX_OPSIZE) => (16, false),
            (0x28 | 0x29 | 0x2B, 0 | PFX_OPSIZE) => (16, true),
            _ => return Err(DecodeError::Unsupported),
        };
        if b == 0x2B && m.mem.is_none() {
            return Err(DecodeError::Invalid);
        }
        let reg = Operand::Xmm(m.reg);
        let rm = self.xmm_rm(&m, width);
        let load = b == 0x10 || b == 0x28;
        self.insn.sse = SseMove {
            width,
            aligned,
            zero_upper: true,
        };
        if load {
            self.set(Op::SseMov, reg, rm);
        } else {
            self.set(Op::SseMov, rm, reg);
        }
        Ok(())
    }

    /// MOVDQA/MOVDQU/MOVNTDQ (66/F3 0F 6F/7F, 66 0F E7) and the MMX MOVQ
    /// of 0F 6F/7F without prefix: upstream's `pfx_0f_6f_0f_7f` and
    /// `pfx_0f_e7_0f_38_2a`. Like upstream, the other MMX and SSE2 integer
    /// moves (0F 6E/7E MOVD/MOVQ, 0F D6 MOVQ, 0F E7 MOVNTQ) are not
    /// emulated.
    pub(super) fn sse_int(&mut self, b: u8) -> DResult<(), S::Error> {
        let mp = self.mandatory();
        let m = self.modrm()?;
        let reg = Operand::Xmm(m.reg);
        match (b, mp) {
            (0x6F | 0x7F, 0) => {
                // MMX MOVQ: mm0-mm7 whatever REX.R/REX.B say.
                let mm = Operand::Mm(m.reg & 7);
                let rm = match m.mem {
                    Some(mem) => Operand::Mem { mem, size: 8 },
                    None => Operand::Mm(m.rm & 7),
                };
                self.insn.sse = SseMove {
                    width: 8,
                    aligned: false,
                    zero_upper: false,
                };
                if b == 0x6F {
                    self.set(Op::MmxMov, mm, rm);
                } else {
                    self.set(Op::MmxMov, rm, mm);
                }
            }
            (0x6F | 0x7F, PFX_OPSIZE | PFX_REP) => {
                let rm = self.xmm_rm(&m, 16);
                self.insn.sse = SseMove {
                    width: 16,
                    aligned: mp == PFX_OPSIZE,
                    zero_upper: true,
                };
                if b == 0x6F {
                    self.set(Op::SseMov, reg, rm);
                } else {
                    self.set(Op::SseMov, rm, reg);
                }
            }
            (0xE7, PFX_OPSIZE) => {
                if m.mem.is_none() {
                    return Err(DecodeError::Invalid);
                }
                let rm = self.xmm_rm(&m, 16);
                self.insn.sse = SseMove {
                    width: 16,
                    aligned: true,
                    zero_upper: true,
                };
                self.set(Op::SseMov, rm, reg);
            }
            _ => return Err(DecodeError::Unsupported),
        }
        Ok(())
    }

    /// The 0F 38 map: only MOVNTDQA (66 0F 38 2A), as upstream.
    pub(super) fn three_byte_38(&mut self, b: u8) -> DResult<(), S::Error> {
        if b != 0x2A || self.mandatory() != PFX_OPSIZE {
            return Err(DecodeError::Unsupported);
        }
        let m = self.modrm()?;
        let Some(mem) = m.mem else {
            return Err(DecodeError::Invalid);
        };
        self.insn.sse = SseMove {
            width: 16,
            aligned: true,
            zero_upper: true,
        };
        self.set(
            Op::SseMov,
            Operand::Xmm(m.reg),
            Operand::Mem { mem, size: 16 },
        );
        Ok(())
    }
}
