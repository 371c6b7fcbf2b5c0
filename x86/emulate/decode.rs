//! Instruction decoder: prefixes, opcode maps, ModRM/SIB, displacement and
//! immediates, for 16-, 32- and 64-bit code.
//!
//! The decoder distinguishes three failures: encodings that raise #UD on
//! every CPU ([`DecodeError::Invalid`]), instructions longer than 15 bytes
//! ([`DecodeError::TooLong`], #GP(0)), and valid instructions the emulator
//! does not implement ([`DecodeError::Unsupported`], e.g. x87, AVX/VEX, most
//! SSE arithmetic). Near branches use Intel semantics in 64-bit mode (the
//! operand-size prefix is ignored), as upstream KVM does.

use super::insn::{Insn, MemRef, Op, Operand, Rep, SseMove};
use super::regs::{SegReg, MAX_INSN_LEN, RAX, RBP, RCX, RDI, RDX, RSI, RSP};

/// Source of instruction bytes for the decoder.
pub trait ByteSource {
    /// Error returned when a byte cannot be fetched.
    type Error;
    /// Byte at offset `idx` from the start of the instruction.
    fn byte(&mut self, idx: usize) -> Result<u8, Self::Error>;
}

/// A byte slice as instruction source; running off its end is
/// [`SliceEnd`].
pub struct SliceSource<'a>(pub &'a [u8]);

/// The slice ended before the instruction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceEnd;

impl ByteSource for SliceSource<'_> {
    type Error = SliceEnd;
    fn byte(&mut self, idx: usize) -> Result<u8, SliceEnd> {
        self.0.get(idx).copied().ok_or(SliceEnd)
    }
}

/// Code size of the current code segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSize {
    /// 16-bit code (real mode, vm86, 16-bit protected/compat segments).
    Bits16,
    /// 32-bit code.
    Bits32,
    /// 64-bit mode.
    Bits64,
}

/// Why decoding failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError<E> {
    /// Invalid encoding: #UD.
    Invalid,
    /// Longer than 15 bytes: #GP(0).
    TooLong,
    /// Valid but not emulated; `len` bytes were consumed so far.
    Unsupported,
    /// Fetching a byte failed.
    Fetch(E),
}

/// Operand-size class of an opcode in 64-bit mode.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Size64 {
    /// Default 32, REX.W -> 64, 66 -> 16.
    Normal,
    /// Default 64, 66 -> 16 (stack operations).
    Default64,
    /// Always 64 (near branches, Intel semantics).
    Force64,
}

/// Pieces of a ModRM byte and its memory operand.
#[derive(Clone, Copy)]
struct ModRm {
    /// reg field including REX.R.
    reg: u8,
    /// reg field without REX.R (opcode extension).
    ext: u8,
    /// rm field including REX.B (register form).
    rm: u8,
    mem: Option<MemRef>,
}

const ALU_OPS: [Op; 8] = [
    Op::Add,
    Op::Or,
    Op::Adc,
    Op::Sbb,
    Op::And,
    Op::Sub,
    Op::Xor,
    Op::Cmp,
];
const SHIFT_OPS: [Op; 8] = [
    Op::Rol,
    Op::Ror,
    Op::Rcl,
    Op::Rcr,
    Op::Shl,
    Op::Shr,
    Op::Shl,
    Op::Sar,
];

const PFX_OPSIZE: u8 = 0x66;
const PFX_ADSIZE: u8 = 0x67;
const PFX_LOCK: u8 = 0xF0;
const PFX_REPNE: u8 = 0xF2;
const PFX_REP: u8 = 0xF3;
const OPC_ESCAPE: u8 = 0x0F;
const REX_W: u8 = 8;
const REX_R: u8 = 4;
const REX_X: u8 = 2;
const REX_B: u8 = 1;
const MOD_REG: u8 = 3;

struct Decoder<'s, S: ByteSource> {
    src: &'s mut S,
    insn: Insn,
    pos: usize,
    long: bool,
    code: CodeSize,
    rex: u8,
    pfx66: bool,
    pfx67: bool,
    /// Last F2/F3 prefix seen (0 if none).
    last_rep: u8,
}

type DResult<T, E> = Result<T, DecodeError<E>>;

/// Decode one instruction for code of size `code`.
pub fn decode<S: ByteSource>(src: &mut S, code: CodeSize) -> Result<Insn, DecodeError<S::Error>> {
    let mut d = Decoder {
        src,
        insn: Insn::empty(),
        pos: 0,
        long: code == CodeSize::Bits64,
        code,
        rex: 0,
        pfx66: false,
        pfx67: false,
        last_rep: 0,
    };
    d.run()?;
    d.insn.len = d.pos as u8;
    Ok(d.insn)
}

/// Number of bytes a failing decode consumed; useful for reporting.
pub fn bytes_consumed<S: ByteSource>(src: &mut S, code: CodeSize) -> usize {
    let mut d = Decoder {
        src,
        insn: Insn::empty(),
        pos: 0,
        long: code == CodeSize::Bits64,
        code,
        rex: 0,
        pfx66: false,
        pfx67: false,
        last_rep: 0,
    };
    let _ = d.run();
    d.pos
}

impl<S: ByteSource> Decoder<'_, S> {
    fn next(&mut self) -> DResult<u8, S::Error> {
        if self.pos >= MAX_INSN_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = self.src.byte(self.pos).map_err(DecodeError::Fetch)?;
        if let Some(slot) = self.insn.bytes.get_mut(self.pos) {
            *slot = b;
        }
        self.pos += 1;
        Ok(b)
    }

    /// Look at the next byte without consuming it.
    fn peek(&mut self) -> DResult<u8, S::Error> {
        if self.pos >= MAX_INSN_LEN {
            return Err(DecodeError::TooLong);
        }
        self.src.byte(self.pos).map_err(DecodeError::Fetch)
    }

    fn imm(&mut self, size: u8) -> DResult<u64, S::Error> {
        let mut v: u64 = 0;
        for i in 0..size {
            let b = self.next()?;
            v |= u64::from(b) << (8 * u32::from(i));
        }
        Ok(v)
    }

    /// Immediate of `enc` bytes sign-extended to 64 bits.
    fn simm(&mut self, enc: u8) -> DResult<u64, S::Error> {
        let v = self.imm(enc)?;
        Ok(sign_extend(v, enc))
    }

    fn run(&mut self) -> DResult<(), S::Error> {
        // Prefixes. A REX prefix only counts when it immediately precedes
        // the opcode: a legacy prefix after it cancels it.
        let mut b;
        loop {
            b = self.next()?;
            match b {
                PFX_OPSIZE => self.pfx66 = true,
                PFX_ADSIZE => self.pfx67 = true,
                PFX_LOCK => self.insn.lock = true,
                PFX_REPNE | PFX_REP => self.last_rep = b,
                // ES/CS/SS/DS overrides are ignored in 64-bit mode.
                0x26 | 0x2E | 0x36 | 0x3E if self.long => {}
                0x26 => self.insn.seg_override = Some(SegReg::Es),
                0x2E => self.insn.seg_override = Some(SegReg::Cs),
                0x36 => self.insn.seg_override = Some(SegReg::Ss),
                0x3E => self.insn.seg_override = Some(SegReg::Ds),
                0x64 => self.insn.seg_override = Some(SegReg::Fs),
                0x65 => self.insn.seg_override = Some(SegReg::Gs),
                0x40..=0x4F if self.long => {
                    self.rex = b;
                    continue;
                }
                _ => break,
            }
            self.rex = 0;
        }
        self.insn.rep = match self.last_rep {
            PFX_REP => Rep::Rep,
            PFX_REPNE => Rep::Repne,
            _ => Rep::None,
        };
        self.insn.adsize = match (self.code, self.pfx67) {
            (CodeSize::Bits16, false) | (CodeSize::Bits32, true) => 2,
            (CodeSize::Bits16, true) | (CodeSize::Bits32, false) | (CodeSize::Bits64, true) => 4,
            (CodeSize::Bits64, false) => 8,
        };
        self.set_opsize(Size64::Normal);
        if b == OPC_ESCAPE {
            let b2 = self.next()?;
            self.two_byte(b2)?;
        } else {
            self.one_byte(b)?;
        }
        self.check_lock()
    }

    fn set_opsize(&mut self, class: Size64) {
        self.insn.opsize = match self.code {
            CodeSize::Bits16 => {
                if self.pfx66 {
                    4
                } else {
                    2
                }
            }
            CodeSize::Bits32 => {
                if self.pfx66 {
                    2
                } else {
                    4
                }
            }
            CodeSize::Bits64 => match class {
                Size64::Force64 => 8,
                _ if self.rex & REX_W != 0 => 8,
                _ if self.pfx66 => 2,
                Size64::Default64 => 8,
                Size64::Normal => 4,
            },
        };
    }

    fn check_lock(&mut self) -> DResult<(), S::Error> {
        if !self.insn.lock {
            return Ok(());
        }
        let lockable = matches!(
            self.insn.op,
            Op::Add
                | Op::Or
                | Op::Adc
                | Op::Sbb
                | Op::And
                | Op::Sub
                | Op::Xor
                | Op::Inc
                | Op::Dec
                | Op::Neg
                | Op::Not
                | Op::Xchg
                | Op::Cmpxchg
                | Op::Cmpxchg8b
                | Op::Xadd
                | Op::Bts
                | Op::Btr
                | Op::Btc
        );
        if lockable && matches!(self.insn.dst, Operand::Mem { .. }) {
            Ok(())
        } else {
            Err(DecodeError::Invalid)
        }
    }

    // ----- operand helpers -----

    fn gpr(&self, reg: u8, size: u8) -> Operand {
        let high8 = size == 1 && self.rex == 0 && (4..8).contains(&reg);
        Operand::Reg {
            reg: if high8 { reg - 4 } else { reg },
            size,
            high8,
        }
    }

    fn modrm(&mut self) -> DResult<ModRm, S::Error> {
        let m = self.next()?;
        let md = m >> 6;
        let ext = (m >> 3) & 7;
        let rmb = m & 7;
        let reg = ext | if self.rex & REX_R != 0 { 8 } else { 0 };
        let rm = rmb | if self.rex & REX_B != 0 { 8 } else { 0 };
        if md == MOD_REG {
            return Ok(ModRm {
                reg,
                ext,
                rm,
                mem: None,
            });
        }
        let mem = if self.insn.adsize == 2 {
            self.mem16(md, rmb)?
        } else {
            self.mem32(md, rmb)?
        };
        Ok(ModRm {
            reg,
            ext,
            rm,
            mem: Some(mem),
        })
    }

    fn default_seg(&self, ss_based: bool) -> SegReg {
        match self.insn.seg_override {
            Some(s) => s,
            None if ss_based => SegReg::Ss,
            None => SegReg::Ds,
        }
    }

    fn mem16(&mut self, md: u8, rm: u8) -> DResult<MemRef, S::Error> {
        const RBX: u8 = 3;
        let (base, index): (Option<u8>, Option<u8>) = match rm {
            0 => (Some(RBX), Some(RSI)),
            1 => (Some(RBX), Some(RDI)),
            2 => (Some(RBP), Some(RSI)),
            3 => (Some(RBP), Some(RDI)),
            4 => (Some(RSI), None),
            5 => (Some(RDI), None),
            6 => (if md == 0 { None } else { Some(RBP) }, None),
            _ => (Some(RBX), None),
        };
        let disp = match md {
            0 if rm == 6 => self.simm(2)?,
            0 => 0,
            1 => self.simm(1)?,
            _ => self.simm(2)?,
        };
        let ss_based = base == Some(RBP);
        Ok(MemRef {
            seg: self.default_seg(ss_based),
            base,
            index,
            scale: 1,
            disp,
            rip_rel: false,
        })
    }

    fn mem32(&mut self, md: u8, rm: u8) -> DResult<MemRef, S::Error> {
        let mut base: Option<u8> = None;
        let mut index: Option<u8> = None;
        let mut scale = 1u8;
        let mut rip_rel = false;
        let mut disp_size = match md {
            1 => 1,
            2 => 4,
            _ => 0,
        };
        const RM_SIB: u8 = 4;
        const RM_DISP32: u8 = 5;
        if rm == RM_SIB {
            let sib = self.next()?;
            let ss = sib >> 6;
            let idx = ((sib >> 3) & 7) | if self.rex & REX_X != 0 { 8 } else { 0 };
            let bs = sib & 7;
            if idx != RSP {
                index = Some(idx);
                scale = 1 << ss;
            }
            if bs == RM_DISP32 && md == 0 {
                disp_size = 4;
            } else {
                base = Some(bs | if self.rex & REX_B != 0 { 8 } else { 0 });
            }
        } else if rm == RM_DISP32 && md == 0 {
            disp_size = 4;
            rip_rel = self.long;
        } else {
            base = Some(rm | if self.rex & REX_B != 0 { 8 } else { 0 });
        }
        let disp = if disp_size == 0 {
            0
        } else {
            self.simm(disp_size)?
        };
        let ss_based = matches!(base, Some(RSP) | Some(RBP));
        Ok(MemRef {
            seg: self.default_seg(ss_based),
            base,
            index,
            scale,
            disp,
            rip_rel,
        })
    }

    /// r/m operand of `size` bytes.
    fn e(&self, m: &ModRm, size: u8) -> Operand {
        match m.mem {
            Some(mem) => Operand::Mem { mem, size },
            None => self.gpr(m.rm, size),
        }
    }

    fn g(&self, m: &ModRm, size: u8) -> Operand {
        self.gpr(m.reg, size)
    }

    fn set(&mut self, op: Op, dst: Operand, src: Operand) {
        self.insn.op = op;
        self.insn.dst = dst;
        self.insn.src = src;
    }

    /// Branch target displacement of `enc` bytes.
    fn rel(&mut self, enc: u8) -> DResult<Operand, S::Error> {
        let v = self.simm(enc)?;
        Ok(Operand::Imm { val: v, size: enc })
    }

    /// Immediate sized for operand size `v` ("Iz": at most 4 bytes,
    /// sign-extended for 64-bit operands).
    fn iz(&mut self) -> DResult<Operand, S::Error> {
        let os = self.insn.opsize;
        let enc = if os == 8 { 4 } else { os };
        let v = self.simm(enc)?;
        Ok(Operand::Imm { val: v, size: os })
    }

    /// Sign-extended imm8 at operand size `size`.
    fn ib_s(&mut self, size: u8) -> DResult<Operand, S::Error> {
        let v = self.simm(1)?;
        Ok(Operand::Imm { val: v, size })
    }

    fn ib(&mut self) -> DResult<Operand, S::Error> {
        let v = self.imm(1)?;
        Ok(Operand::Imm { val: v, size: 1 })
    }

    fn inv64(&self) -> DResult<(), S::Error> {
        if self.long {
            Err(DecodeError::Invalid)
        } else {
            Ok(())
        }
    }

    fn far_ptr(&mut self) -> DResult<Operand, S::Error> {
        let os = self.insn.opsize;
        let off = self.imm(os)?;
        let sel = self.imm(2)? as u16;
        Ok(Operand::Far { sel, off })
    }

    // ----- one-byte opcode map -----

    fn one_byte(&mut self, b: u8) -> DResult<(), S::Error> {
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
                let nb = self.peek()?;
                if self.long || nb >> 6 == MOD_REG {
                    return Err(DecodeError::Unsupported); // VEX
                }
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

    fn string_size(&mut self, b: u8) {
        if b & 1 == 0 {
            self.insn.opsize = 1;
        } else if matches!(self.insn.op, Op::Ins | Op::Outs) && self.insn.opsize == 8 {
            self.insn.opsize = 4;
        }
    }

    fn lseg(&mut self, m: &ModRm, seg: SegReg) -> DResult<(), S::Error> {
        if m.mem.is_none() {
            return Err(DecodeError::Invalid);
        }
        let os = self.insn.opsize;
        let (d, s) = (self.g(m, os), self.e(m, os + 2));
        self.set(Op::Lseg, d, s);
        self.insn.src2 = Operand::Seg(seg);
        Ok(())
    }

    // ----- two-byte opcode map -----

    fn two_byte(&mut self, b: u8) -> DResult<(), S::Error> {
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
            0x6E | 0x6F | 0x7E | 0x7F | 0xD6 | 0xE7 => self.sse_int(b)?,
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

    fn group7(&mut self) -> DResult<(), S::Error> {
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
    fn mandatory(&self) -> u8 {
        if self.last_rep != 0 {
            self.last_rep
        } else if self.pfx66 {
            PFX_OPSIZE
        } else {
            0
        }
    }

    fn xmm_rm(&self, m: &ModRm, width: u8) -> Operand {
        match m.mem {
            Some(mem) => Operand::Mem { mem, size: width },
            None => Operand::Xmm(m.rm),
        }
    }

    /// MOVUPS/MOVUPD/MOVSS/MOVSD/MOVAPS/MOVAPD/MOVNTPS/MOVNTPD.
    fn sse_ps(&mut self, b: u8) -> DResult<(), S::Error> {
        let mp = self.mandatory();
        let m = self.modrm()?;
        let (width, aligned) = match (b, mp) {
            (0x10 | 0x11, 0 | PFX_OPSIZE) => (16, false),
            (0x10 | 0x11, PFX_REP) => (4, false),
            (0x10 | 0x11, _) => (8, false),
            (0x28 | 0x29 | 0x2B, 0 | PFX_OPSIZE) => (16, true),
            _ => return Err(DecodeError::Unsupported),
        };
        if b == 0x2B && m.mem.is_none() {
            return Err(DecodeError::Invalid);
        }
        let reg = Operand::Xmm(m.reg);
        let rm = self.xmm_rm(&m, width);
        let load = b == 0x10 || b == 0x28;
        // Scalar loads from memory zero the upper part; register forms merge.
        let zero_upper = width == 16 || m.mem.is_some();
        self.insn.sse = SseMove {
            width,
            aligned,
            zero_upper,
        };
        if load {
            self.set(Op::SseMov, reg, rm);
        } else {
            self.set(Op::SseMov, rm, reg);
        }
        Ok(())
    }

    /// MOVD/MOVQ/MOVDQA/MOVDQU/MOVNTDQ (SSE2 integer moves, 66/F3 forms).
    fn sse_int(&mut self, b: u8) -> DResult<(), S::Error> {
        let mp = self.mandatory();
        let m = self.modrm()?;
        let reg = Operand::Xmm(m.reg);
        let w = if self.rex & REX_W != 0 { 8 } else { 4 };
        match (b, mp) {
            (0x6E, PFX_OPSIZE) => {
                let src = self.e(&m, w);
                self.insn.sse = SseMove {
                    width: w,
                    aligned: false,
                    zero_upper: true,
                };
                self.set(Op::SseMov, reg, src);
            }
            (0x7E, PFX_OPSIZE) => {
                let dst = self.e(&m, w);
                self.insn.sse = SseMove {
                    width: w,
                    aligned: false,
                    zero_upper: true,
                };
                self.set(Op::SseMov, dst, reg);
            }
            (0x7E, PFX_REP) => {
                let src = self.xmm_rm(&m, 8);
                self.insn.sse = SseMove {
                    width: 8,
                    aligned: false,
                    zero_upper: true,
                };
                self.set(Op::SseMov, reg, src);
            }
            (0xD6, PFX_OPSIZE) => {
                let dst = self.xmm_rm(&m, 8);
                self.insn.sse = SseMove {
                    width: 8,
                    aligned: false,
                    zero_upper: true,
                };
                self.set(Op::SseMov, dst, reg);
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
}

/// Sign-extend the low `bytes` bytes of `v` to 64 bits.
pub fn sign_extend(v: u64, bytes: u8) -> u64 {
    match bytes {
        1 => i64::from(v as u8 as i8) as u64,
        2 => i64::from(v as u16 as i16) as u64,
        4 => i64::from(v as u32 as i32) as u64,
        _ => v,
    }
}
