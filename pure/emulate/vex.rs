//! Decoder: VEX prefixes (C4 three-byte, C5 two-byte) and the VEX-encoded
//! moves upstream KVM emulates (its `Avx` opcodes): VMOVUPS/VMOVUPD,
//! VMOVAPS/VMOVAPD, VMOVNTPS/VMOVNTPD, VMOVDQA/VMOVDQU, VMOVNTDQ and
//! VMOVNTDQA, at 128 or 256 bits. Every other VEX instruction is valid but
//! not emulated.
//!
//! Outside 64-bit mode C4/C5 are LES/LDS unless the next byte has mod = 11;
//! the caller decides that before calling [`Decoder::vex`].

use super::decode::{ByteSource, DResult, DecodeError, Decoder, REX_W};
use super::insn::{Op, Operand, SseMove};

/// The two-byte VEX prefix (C4 is the three-byte one).
const VEX2: u8 = 0xC5;

/// VEX.mmmmm opcode maps.
const MAP_0F: u8 = 1;
const MAP_0F38: u8 = 2;
const MAP_0F3A: u8 = 3;

/// VEX.pp: the legacy prefix it stands for.
const PP_NONE: u8 = 0;
const PP_66: u8 = 1;
const PP_F3: u8 = 2;

/// What a VEX move does with memory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Load into the register (register source allowed).
    Load,
    /// Store from the register (register destination allowed).
    Store,
    /// Non-temporal store: memory destination only.
    StoreMem,
    /// Non-temporal load: memory source only.
    LoadMem,
}

/// The emulated moves: `(form, aligned)`, or `None` for any other opcode.
fn vex_move(map: u8, op: u8, pp: u8) -> Option<(Form, bool)> {
    let plain = pp == PP_NONE || pp == PP_66;
    match (map, op) {
        // VMOVSS/VMOVSD (F3/F2) are not emulated, as upstream.
        (MAP_0F, 0x10) if plain => Some((Form::Load, false)),
        (MAP_0F, 0x11) if plain => Some((Form::Store, false)),
        (MAP_0F, 0x28) if plain => Some((Form::Load, true)),
        (MAP_0F, 0x29) if plain => Some((Form::Store, true)),
        (MAP_0F, 0x2B) if plain => Some((Form::StoreMem, true)),
        // VMOVDQA (66) and VMOVDQU (F3).
        (MAP_0F, 0x6F) if pp == PP_66 || pp == PP_F3 => Some((Form::Load, pp == PP_66)),
        (MAP_0F, 0x7F) if pp == PP_66 || pp == PP_F3 => Some((Form::Store, pp == PP_66)),
        (MAP_0F, 0xE7) if pp == PP_66 => Some((Form::StoreMem, true)),
        (MAP_0F38, 0x2A) if pp == PP_66 => Some((Form::LoadMem, true)),
        _ => None,
    }
}

impl<S: ByteSource> Decoder<'_, S> {
    /// A VEX-encoded instruction; `b` is the C4 or C5 byte just consumed.
    pub(super) fn vex(&mut self, b: u8) -> DResult<(), S::Error> {
        // A 66/F2/F3 or REX prefix before VEX is #UD.
        if self.pfx66 || self.last_rep != 0 || self.rex != 0 {
            return Err(DecodeError::Invalid);
        }
        // As the three-byte form: p1 = ~R ~X ~B mmmmm, p2 = W ~vvvv L pp.
        let first = self.next()?;
        let (p1, p2) = if b == VEX2 {
            ((first & 0x80) | 0x60 | MAP_0F, first & 0x7F)
        } else {
            (first, self.next()?)
        };
        let rxb = (!p1 >> 5) & 7;
        let w = p2 & 0x80 != 0;
        if !self.long && (rxb != 0 || w) {
            // Outside 64-bit mode the CPU ignores VEX.B and VEX.W here;
            // upstream gives up on them instead.
            return Err(DecodeError::Unsupported);
        }
        if self.long {
            // The REX.R/X/B bits line up with VEX's RXB.
            self.rex = 0x40 | rxb | if w { REX_W } else { 0 };
        }
        let map = p1 & 0x1F;
        let vvvv = (!p2 >> 3) & 0xF;
        let wide = p2 & 4 != 0;
        let pp = p2 & 3;
        let op = self.next()?;
        let (form, aligned) = match map {
            MAP_0F | MAP_0F38 => vex_move(map, op, pp).ok_or(DecodeError::Unsupported)?,
            MAP_0F3A => return Err(DecodeError::Unsupported),
            _ => return Err(DecodeError::Invalid),
        };
        // None of these has a second source: VEX.vvvv must be 1111b.
        if vvvv != 0 {
            return Err(DecodeError::Invalid);
        }
        let m = self.modrm()?;
        let width = if wide { 32 } else { 16 };
        let vreg = |r: u8| {
            if wide {
                Operand::Ymm(r)
            } else {
                Operand::Xmm(r)
            }
        };
        let rm = match m.mem {
            Some(mem) => Operand::Mem { mem, size: width },
            None if matches!(form, Form::StoreMem | Form::LoadMem) => {
                return Err(DecodeError::Invalid)
            }
            None => vreg(m.rm),
        };
        self.insn.sse = SseMove {
            width,
            aligned,
            zero_upper: true,
        };
        match form {
            Form::Load | Form::LoadMem => self.set(Op::AvxMov, vreg(m.reg), rm),
            Form::Store | Form::StoreMem => self.set(Op::AvxMov, rm, vreg(m.reg)),
        }
        Ok(())
    }
}
