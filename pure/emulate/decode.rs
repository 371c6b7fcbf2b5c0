//! Instruction decoder: prefixes, ModRM/SIB, displacement and immediates,
//! for 16-, 32- and 64-bit code. The opcode maps live in `onebyte.rs`,
//! `twobyte.rs` and `vex.rs`.
//!
//! The decoder distinguishes three failures: encodings that raise #UD on
//! every CPU ([`DecodeError::Invalid`]), instructions longer than 15 bytes
//! ([`DecodeError::TooLong`], #GP(0)), and valid instructions the emulator
//! does not implement ([`DecodeError::Unsupported`], e.g. x87, most VEX
//! instructions, SSE arithmetic). Near branches use Intel semantics in
//! 64-bit mode (the operand-size prefix is ignored), as upstream KVM does.

use super::insn::{Insn, MemRef, Op, Operand, Rep};
use super::regs::{SegReg, MAX_INSN_LEN};
use crate::defs::regs::{RBP, RBX, RDI, RSI, RSP};

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
pub(super) enum Size64 {
    /// Default 32, REX.W -> 64, 66 -> 16.
    Normal,
    /// Default 64, 66 -> 16 (stack operations).
    Default64,
    /// Always 64 (near branches, Intel semantics).
    Force64,
}

/// Pieces of a ModRM byte and its memory operand.
#[derive(Clone, Copy)]
pub(super) struct ModRm {
    /// reg field including REX.R.
    pub(super) reg: u8,
    /// reg field without REX.R (opcode extension).
    pub(super) ext: u8,
    /// rm field including REX.B (register form).
    pub(super) rm: u8,
    pub(super) mem: Option<MemRef>,
}

pub(super) const ALU_OPS: [Op; 8] = [
    Op::Add,
    Op::Or,
    Op::Adc,
    Op::Sbb,
    Op::And,
    Op::Sub,
    Op::Xor,
    Op::Cmp,
];
pub(super) const SHIFT_OPS: [Op; 8] = [
    Op::Rol,
    Op::Ror,
    Op::Rcl,
    Op::Rcr,
    Op::Shl,
    Op::Shr,
    Op::Shl,
    Op::Sar,
];

pub(super) const PFX_OPSIZE: u8 = 0x66;
pub(super) const PFX_ADSIZE: u8 = 0x67;
pub(super) const PFX_LOCK: u8 = 0xF0;
pub(super) const PFX_REPNE: u8 = 0xF2;
pub(super) const PFX_REP: u8 = 0xF3;
pub(super) const OPC_ESCAPE: u8 = 0x0F;
pub(super) const OPC_VEX3: u8 = 0xC4;
pub(super) const OPC_VEX2: u8 = 0xC5;
pub(super) const REX_W: u8 = 8;
pub(super) const REX_R: u8 = 4;
pub(super) const REX_X: u8 = 2;
pub(super) const REX_B: u8 = 1;
pub(super) const MOD_REG: u8 = 3;

pub(super) struct Decoder<'s, S: ByteSource> {
    pub(super) src: &'s mut S,
    pub(super) insn: Insn,
    pub(super) pos: usize,
    pub(super) long: bool,
    pub(super) code: CodeSize,
    pub(super) rex: u8,
    pub(super) pfx66: bool,
    pub(super) pfx67: bool,
    /// Last F2/F3 prefix seen (0 if none).
    pub(super) last_rep: u8,
}

pub(super) type DResult<T, E> = Result<T, DecodeError<E>>;

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

impl<S: ByteSource> Decoder<'_, S> {
    pub(super) fn next(&mut self) -> DResult<u8, S::Error> {
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
    pub(super) fn peek(&mut self) -> DResult<u8, S::Error> {
        if self.pos >= MAX_INSN_LEN {
            return Err(DecodeError::TooLong);
        }
        self.src.byte(self.pos).map_err(DecodeError::Fetch)
    }

    pub(super) fn imm(&mut self, size: u8) -> DResult<u64, S::Error> {
        let mut v: u64 = 0;
        for i in 0..size {
            let b = self.next()?;
            v |= u64::from(b) << (8 * u32::from(i));
        }
        Ok(v)
    }

    /// Immediate of `enc` bytes sign-extended to 64 bits.
    pub(super) fn simm(&mut self, enc: u8) -> DResult<u64, S::Error> {
        let v = self.imm(enc)?;
        Ok(sign_extend(v, enc))
    }

    pub(super) fn run(&mut self) -> DResult<(), S::Error> {
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
        // C4/C5 are VEX in 64-bit mode; elsewhere LES/LDS unless the next
        // byte would be a register-form ModRM (which LES/LDS cannot take).
        if (b == OPC_VEX3 || b == OPC_VEX2) && (self.long || self.peek()? >> 6 == MOD_REG) {
            self.vex(b)?;
        } else if b == OPC_ESCAPE {
            let b2 = self.next()?;
            self.two_byte(b2)?;
        } else {
            self.one_byte(b)?;
        }
        self.check_lock()
    }

    pub(super) fn set_opsize(&mut self, class: Size64) {
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

    pub(super) fn check_lock(&mut self) -> DResult<(), S::Error> {
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

    pub(super) fn gpr(&self, reg: u8, size: u8) -> Operand {
        let high8 = size == 1 && self.rex == 0 && (4..8).contains(&reg);
        Operand::Reg {
            reg: if high8 { reg - 4 } else { reg },
            size,
            high8,
        }
    }

    pub(super) fn modrm(&mut self) -> DResult<ModRm, S::Error> {
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

    pub(super) fn default_seg(&self, ss_based: bool) -> SegReg {
        match self.insn.seg_override {
            Some(s) => s,
            None if ss_based => SegReg::Ss,
            None => SegReg::Ds,
        }
    }

    pub(super) fn mem16(&mut self, md: u8, rm: u8) -> DResult<MemRef, S::Error> {
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

    pub(super) fn mem32(&mut self, md: u8, rm: u8) -> DResult<MemRef, S::Error> {
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
    pub(super) fn e(&self, m: &ModRm, size: u8) -> Operand {
        match m.mem {
            Some(mem) => Operand::Mem { mem, size },
            None => self.gpr(m.rm, size),
        }
    }

    pub(super) fn g(&self, m: &ModRm, size: u8) -> Operand {
        self.gpr(m.reg, size)
    }

    pub(super) fn set(&mut self, op: Op, dst: Operand, src: Operand) {
        self.insn.op = op;
        self.insn.dst = dst;
        self.insn.src = src;
    }

    /// Branch target displacement of `enc` bytes.
    pub(super) fn rel(&mut self, enc: u8) -> DResult<Operand, S::Error> {
        let v = self.simm(enc)?;
        Ok(Operand::Imm { val: v, size: enc })
    }

    /// Immediate sized for operand size `v` ("Iz": at most 4 bytes,
    /// sign-extended for 64-bit operands).
    pub(super) fn iz(&mut self) -> DResult<Operand, S::Error> {
        let os = self.insn.opsize;
        let enc = if os == 8 { 4 } else { os };
        let v = self.simm(enc)?;
        Ok(Operand::Imm { val: v, size: os })
    }

    /// Sign-extended imm8 at operand size `size`.
    pub(super) fn ib_s(&mut self, size: u8) -> DResult<Operand, S::Error> {
        let v = self.simm(1)?;
        Ok(Operand::Imm { val: v, size })
    }

    pub(super) fn ib(&mut self) -> DResult<Operand, S::Error> {
        let v = self.imm(1)?;
        Ok(Operand::Imm { val: v, size: 1 })
    }

    pub(super) fn inv64(&self) -> DResult<(), S::Error> {
        if self.long {
            Err(DecodeError::Invalid)
        } else {
            Ok(())
        }
    }

    pub(super) fn far_ptr(&mut self) -> DResult<Operand, S::Error> {
        let os = self.insn.opsize;
        let off = self.imm(os)?;
        let sel = self.imm(2)? as u16;
        Ok(Operand::Far { sel, off })
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
