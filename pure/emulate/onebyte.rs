//! Decoder: the one-byte opcode map.

use super::decode::{
    ByteSource, DResult, DecodeError, Decoder, ModRm, Size64, ALU_OPS, PFX_REP, REX_B, SHIFT_OPS,
};
use super::insn::{MemRef, Op, Operand};
use super::regs::SegReg;
use crate::defs::regs::{RAX, RCX, RDX};

impl<S: ByteSource> Decoder<'_, S> {
    pub(super) fn one_byte(&mut self, b: u8) -> DResult<(), S::Error> {
        let os = self.insn.opsize;
        match b {
            0x00..=0x3F if b & 7 < 6 => {
                let op = ALU_OPS.get(usize::from(b >> 3)).copied().unwrap_or(Op::Add);
                match b & 7 {
                    0 => {
                        let m = self.modrm()?;
                        let (d, s) = (self.e(&m, 1), self.g(&m, 1));
                        self.set(op, d, s);
                    }
                    1 => {
                        let m = self.modrm()?;
                        let (d, s) = (self.e(&m, os), self.g(&m, os));
                        self.set(op, d, s);
                    }
                    2 => {
                        let m = self.modrm()?;
                        let (d, s) = (self.g(&m, 1), self.e(&m, 1));
                        self.set(op, d, s);
                    }
                    3 => {
                        let m = self.modrm()?;
                        let (d, s) = (self.g(&m, os), self.e(&m, os));
                        self.set(op, d, s);
                    }
                    4 => {
                        let i = self.ib()?;
                        self.set(op, self.gpr(RAX, 1), i);
                    }
                    _ => {
                        let i = self.iz()?;
                        self.set(op, self.gpr(RAX, os), i);
                    }
                }
            }
            0x06 | 0x0E | 0x16 | 0x1E => {
                self.inv64()?;
                let s = SegReg::from_index(b >> 3).unwrap_or(SegReg::Es);
                self.set(Op::Push, Operand::Seg(s), Operand::None);
            }
            0x07 | 0x17 | 0x1F => {
                self.inv64()?;
                let s = SegReg::from_index(b >> 3).unwrap_or(SegReg::Es);
                self.set(Op::Pop, Operand::Seg(s), Operand::None);
            }
            0x0F => return Err(DecodeError::Invalid),
            0x27 | 0x2F | 0x37 | 0x3F => {
                self.inv64()?;
                return Err(DecodeError::Unsupported);
            }
            0x40..=0x4F => {
                // Only reached outside 64-bit mode (REX is consumed earlier).
                let op = if b < 0x48 { Op::Inc } else { Op::Dec };
                self.set(op, self.gpr(b & 7, os), Operand::None);
            }
            0x50..=0x5F => {
                self.set_opsize(Size64::Default64);
                let r = (b & 7) | if self.rex & REX_B != 0 { 8 } else { 0 };
                let op = if b < 0x58 { Op::Push } else { Op::Pop };
                let o = self.gpr(r, self.insn.opsize);
                self.set(op, o, Operand::None);
            }
            0x60 | 0x61 => {
                self.inv64()?;
                self.insn.op = if b == 0x60 { Op::Pusha } else { Op::Popa };
            }
            0x62 => return Err(DecodeError::Unsupported),
            0x63 => {
                if !self.long {
                    return Err(DecodeError::Unsupported); // ARPL
                }
                let m = self.modrm()?;
                let src_size = if os == 2 { 2 } else { 4 };
                let (d, s) = (self.g(&m, os), self.e(&m, src_size));
                self.set(Op::Movsxd, d, s);
            }
            0x68 => {
                self.set_opsize(Size64::Default64);
                let i = self.iz()?;
                self.set(Op::Push, i, Operand::None);
            }
            0x6A => {
                self.set_opsize(Size64::Default64);
                let i = self.ib_s(self.insn.opsize)?;
                self.set(Op::Push, i, Operand::None);
            }
            0x69 | 0x6B => {
                let m = self.modrm()?;
                let (d, s) = (self.g(&m, os), self.e(&m, os));
                let i = if b == 0x69 {
                    self.iz()?
                } else {
                    self.ib_s(os)?
                };
                self.set(Op::Imul, d, s);
                self.insn.src2 = i;
            }
            0x6C..=0x6F => {
                self.insn.op = if b < 0x6E { Op::Ins } else { Op::Outs };
                self.string_size(b);
            }
            0x70..=0x7F => {
                self.set_opsize(Size64::Force64);
                let r = self.rel(1)?;
                self.set(Op::Jcc, r, Operand::None);
                self.insn.cond = b & 0xF;
            }
            0x80..=0x83 => {
                if b == 0x82 {
                    self.inv64()?;
                }
                let size = if b & 1 == 0 { 1 } else { os };
                let m = self.modrm()?;
                let d = self.e(&m, size);
                let i = match b {
                    0x81 => self.iz()?,
                    0x83 => self.ib_s(os)?,
                    _ => self.ib()?,
                };
                let op = ALU_OPS.get(usize::from(m.ext)).copied().unwrap_or(Op::Add);
                self.set(op, d, i);
            }
            0x84..=0x8B => {
                let size = if b & 1 == 0 { 1 } else { os };
                let m = self.modrm()?;
                let (e, g) = (self.e(&m, size), self.g(&m, size));
                match b {
                    0x84 | 0x85 => self.set(Op::Test, e, g),
                    0x86 | 0x87 => self.set(Op::Xchg, e, g),
                    0x88 | 0x89 => self.set(Op::Mov, e, g),
                    _ => self.set(Op::Mov, g, e),
                }
            }
            0x8C => {
                let m = self.modrm()?;
                let s = SegReg::from_index(m.ext).ok_or(DecodeError::Invalid)?;
                let size = if m.mem.is_some() { 2 } else { os };
                let d = self.e(&m, size);
                self.set(Op::MovFromSeg, d, Operand::Seg(s));
            }
            0x8D => {
                let m = self.modrm()?;
                if m.mem.is_none() {
                    return Err(DecodeError::Invalid);
                }
                let (d, s) = (self.g(&m, os), self.e(&m, os));
                self.set(Op::Lea, d, s);
            }
            0x8E => {
                let m = self.modrm()?;
                let s = match SegReg::from_index(m.ext) {
                    Some(SegReg::Cs) | None => return Err(DecodeError::Invalid),
                    Some(s) => s,
                };
                let size = if m.mem.is_some() { 2 } else { os };
                let e = self.e(&m, size);
                self.set(Op::MovToSeg, Operand::Seg(s), e);
            }
            0x8F => {
                let nb = self.peek()?;
                if (nb >> 3) & 7 != 0 {
                    return Err(DecodeError::Unsupported); // XOP
                }
                self.set_opsize(Size64::Default64);
                let m = self.modrm()?;
                let d = self.e(&m, self.insn.opsize);
                self.set(Op::Pop, d, Operand::None);
            }
            0x90 => {
                if self.last_rep == PFX_REP {
                    self.insn.op = Op::Pause;
                } else if self.rex & REX_B != 0 {
                    self.set(Op::Xchg, self.gpr(RAX | 8, os), self.gpr(RAX, os));
                } else {
                    self.insn.op = Op::Nop;
                }
            }
            0x91..=0x97 => {
                let r = (b & 7) | if self.rex & REX_B != 0 { 8 } else { 0 };
                self.set(Op::Xchg, self.gpr(r, os), self.gpr(RAX, os));
            }
            0x98 => self.insn.op = Op::Cbw,
            0x99 => self.insn.op = Op::Cwd,
            0x9A => {
                self.inv64()?;
                let f = self.far_ptr()?;
                self.set(Op::CallFar, f, Operand::None);
            }
            0x9B => return Err(DecodeError::Unsupported),
            0x9C | 0x9D => {
                self.set_opsize(Size64::Default64);
                self.insn.op = if b == 0x9C { Op::Pushf } else { Op::Popf };
            }
            0x9E => self.insn.op = Op::Sahf,
            0x9F => self.insn.op = Op::Lahf,
            0xA0..=0xA3 => {
                let size = if b & 1 == 0 { 1 } else { os };
                let off = self.imm(self.insn.adsize)?;
                let mem = MemRef {
                    seg: self.default_seg(false),
                    base: None,
                    index: None,
                    scale: 1,
                    disp: off,
                    rip_rel: false,
                };
                let m = Operand::Mem { mem, size };
                let a = self.gpr(RAX, size);
                if b < 0xA2 {
                    self.set(Op::Mov, a, m);
                } else {
                    self.set(Op::Mov, m, a);
                }
            }
            0xA4..=0xA7 | 0xAA..=0xAF => {
                self.insn.op = match b {
                    0xA4 | 0xA5 => Op::Movs,
                    0xA6 | 0xA7 => Op::Cmps,
                    0xAA | 0xAB => Op::Stos,
                    0xAC | 0xAD => Op::Lods,
                    _ => Op::Scas,
                };
                self.string_size(b);
            }
            0xA8 => {
                let i = self.ib()?;
                self.set(Op::Test, self.gpr(RAX, 1), i);
            }
            0xA9 => {
                let i = self.iz()?;
                self.set(Op::Test, self.gpr(RAX, os), i);
            }
            0xB0..=0xB7 => {
                let r = (b & 7) | if self.rex & REX_B != 0 { 8 } else { 0 };
                let i = self.ib()?;
                self.set(Op::Mov, self.gpr(r, 1), i);
            }
            0xB8..=0xBF => {
                let r = (b & 7) | if self.rex & REX_B != 0 { 8 } else { 0 };
                let v = self.imm(os)?;
                self.set(Op::Mov, self.gpr(r, os), Operand::Imm { val: v, size: os });
            }
            0xC0 | 0xC1 | 0xD0..=0xD3 => {
                let size = if b & 1 == 0 { 1 } else { os };
                let m = self.modrm()?;
                let d = self.e(&m, size);
                let count = match b {
                    0xC0 | 0xC1 => self.ib()?,
                    0xD0 | 0xD1 => Operand::Imm { val: 1, size: 1 },
                    _ => self.gpr(RCX, 1),
                };
                let op = SHIFT_OPS
                    .get(usize::from(m.ext))
                    .copied()
                    .unwrap_or(Op::Rol);
                self.set(op, d, count);
            }
            0xC2 | 0xC3 => {
                self.set_opsize(Size64::Force64);
                let i = if b == 0xC2 {
                    Operand::Imm {
                        val: self.imm(2)?,
                        size: 2,
                    }
                } else {
                    Operand::None
                };
                self.set(Op::Ret, i, Operand::None);
            }
            0xC4 | 0xC5 => {
                // LES/LDS: the decoder took the VEX forms already.
                let m = self.modrm()?;
                let seg = if b == 0xC4 { SegReg::Es } else { SegReg::Ds };
                self.lseg(&m, seg)?;
            }
            0xC6 | 0xC7 => {
                let size = if b == 0xC6 { 1 } else { os };
                let nb = self.peek()?;
                if nb == 0xF8 {
                    return Err(DecodeError::Unsupported); // XABORT/XBEGIN
                }
                let m = self.modrm()?;
                if m.ext != 0 {
                    return Err(DecodeError::Invalid);
                }
                let d = self.e(&m, size);
                let i = if size == 1 { self.ib()? } else { self.iz()? };
                self.set(Op::Mov, d, i);
            }
            0xC8 => {
                self.set_opsize(Size64::Default64);
                let a = self.imm(2)?;
                let l = self.imm(1)?;
                self.set(
                    Op::Enter,
                    Operand::Imm { val: a, size: 2 },
                    Operand::Imm { val: l, size: 1 },
                );
            }
            0xC9 => {
                self.set_opsize(Size64::Default64);
                self.insn.op = Op::Leave;
            }
            0xCA | 0xCB => {
                let i = if b == 0xCA {
                    Operand::Imm {
                        val: self.imm(2)?,
                        size: 2,
                    }
                } else {
                    Operand::None
                };
                self.set(Op::RetFar, i, Operand::None);
            }
            0xCC => self.insn.op = Op::Int3,
            0xCD => {
                let i = self.ib()?;
                self.set(Op::Int, i, Operand::None);
            }
            0xCE => {
                self.inv64()?;
                self.insn.op = Op::Into;
            }
            0xCF => self.insn.op = Op::Iret,
            0xD4..=0xD6 => {
                self.inv64()?;
                return Err(DecodeError::Unsupported);
            }
            0xD7 => self.insn.op = Op::Xlat,
            0xD8..=0xDF => return Err(DecodeError::Unsupported),
            0xE0..=0xE3 => {
                self.set_opsize(Size64::Force64);
                let r = self.rel(1)?;
                let op = match b {
                    0xE0 => Op::Loopne,
                    0xE1 => Op::Loope,
                    0xE2 => Op::Loop,
                    _ => Op::Jcxz,
                };
                self.set(op, r, Operand::None);
            }
            0xE4..=0xE7 | 0xEC..=0xEF => {
                let size = if b & 1 == 0 {
                    1
                } else if os == 2 {
                    2
                } else {
                    4
                };
                let port = if b < 0xE8 {
                    self.ib()?
                } else {
                    self.gpr(RDX, 2)
                };
                let a = self.gpr(RAX, size);
                if b & 2 == 0 {
                    self.set(Op::In, a, port);
                } else {
                    self.set(Op::Out, port, a);
                }
            }
            0xE8 | 0xE9 => {
                self.set_opsize(Size64::Force64);
                let enc = if self.insn.opsize == 2 { 2 } else { 4 };
                let r = self.rel(enc)?;
                self.set(if b == 0xE8 { Op::Call } else { Op::Jmp }, r, Operand::None);
            }
            0xEA => {
                self.inv64()?;
                let f = self.far_ptr()?;
                self.set(Op::JmpFar, f, Operand::None);
            }
            0xEB => {
                self.set_opsize(Size64::Force64);
                let r = self.rel(1)?;
                self.set(Op::Jmp, r, Operand::None);
            }
            0xF1 => self.insn.op = Op::Int1,
            0xF4 => self.insn.op = Op::Hlt,
            0xF5 => self.insn.op = Op::Cmc,
            0xF6 | 0xF7 => {
                let size = if b == 0xF6 { 1 } else { os };
                let m = self.modrm()?;
                let d = self.e(&m, size);
                match m.ext {
                    0 | 1 => {
                        let i = if size == 1 { self.ib()? } else { self.iz()? };
                        self.set(Op::Test, d, i);
                    }
                    2 => self.set(Op::Not, d, Operand::None),
                    3 => self.set(Op::Neg, d, Operand::None),
                    4 => self.set(Op::Mul, d, Operand::None),
                    5 => self.set(Op::Imul1, d, Operand::None),
                    6 => self.set(Op::Div, d, Operand::None),
                    _ => self.set(Op::Idiv, d, Operand::None),
                }
            }
            0xF8 => self.insn.op = Op::Clc,
            0xF9 => self.insn.op = Op::Stc,
            0xFA => self.insn.op = Op::Cli,
            0xFB => self.insn.op = Op::Sti,
            0xFC => self.insn.op = Op::Cld,
            0xFD => self.insn.op = Op::Std,
            0xFE => {
                let m = self.modrm()?;
                let d = self.e(&m, 1);
                match m.ext {
                    0 => self.set(Op::Inc, d, Operand::None),
                    1 => self.set(Op::Dec, d, Operand::None),
                    _ => return Err(DecodeError::Invalid),
                }
            }
            0xFF => {
                let nb = self.peek()?;
                let ext = (nb >> 3) & 7;
                match ext {
                    2 | 4 => self.set_opsize(Size64::Force64),
                    6 => self.set_opsize(Size64::Default64),
                    _ => {}
                }
                let os = self.insn.opsize;
                let m = self.modrm()?;
                match ext {
                    0 => self.set(Op::Inc, self.e(&m, os), Operand::None),
                    1 => self.set(Op::Dec, self.e(&m, os), Operand::None),
                    2 => self.set(Op::CallInd, self.e(&m, os), Operand::None),
                    4 => self.set(Op::JmpInd, self.e(&m, os), Operand::None),
                    6 => self.set(Op::Push, self.e(&m, os), Operand::None),
                    3 | 5 => {
                        if m.mem.is_none() {
                            return Err(DecodeError::Invalid);
                        }
                        let d = self.e(&m, os + 2);
                        self.set(
                            if ext == 3 { Op::CallFar } else { Op::JmpFar },
                            d,
                            Operand::None,
                        );
                    }
                    _ => return Err(DecodeError::Invalid),
                }
            }
            // Prefix bytes never reach here; remaining slots are covered.
            _ => return Err(DecodeError::Invalid),
        }
        Ok(())
    }

    pub(super) fn string_size(&mut self, b: u8) {
        if b & 1 == 0 {
            self.insn.opsize = 1;
        } else if matches!(self.insn.op, Op::Ins | Op::Outs) && self.insn.opsize == 8 {
            self.insn.opsize = 4;
        }
    }

    pub(super) fn lseg(&mut self, m: &ModRm, seg: SegReg) -> DResult<(), S::Error> {
        if m.mem.is_none() {
            return Err(DecodeError::Invalid);
        }
        let os = self.insn.opsize;
        let (d, s) = (self.g(m, os), self.e(m, os + 2));
        self.set(Op::Lseg, d, s);
        self.insn.src2 = Operand::Seg(seg);
        Ok(())
    }
}
