//! Register and descriptor definitions only the emulator uses: segment
//! registers, selector and descriptor type fields, instruction length.
//! Register numbers and bits shared with the rest of rkvm (RFLAGS, CRx,
//! EFER, XCR0, DRx, GPR numbers) are in [`crate::defs::regs`].
//!
//! Everything here is a typed constant so that the logic elsewhere never
//! contains magic numbers.

/// The GPR number type of [`super::CpuState`] (the numbers themselves,
/// `RAX` ... `R15`, are in [`crate::defs::regs`]).
pub use crate::defs::regs::Gpr;

/// Number of XMM registers addressable in 64-bit mode.
pub const NR_XMM: usize = 16;

/// Segment registers, in the encoding order of the ModRM `reg` field of
/// `MOV Sreg`; `Ldtr` and `Tr` are the system segment registers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SegReg {
    /// ES.
    Es = 0,
    /// CS.
    Cs = 1,
    /// SS.
    Ss = 2,
    /// DS.
    Ds = 3,
    /// FS.
    Fs = 4,
    /// GS.
    Gs = 5,
    /// Local descriptor table register.
    Ldtr = 6,
    /// Task register.
    Tr = 7,
}

impl SegReg {
    /// Data/code segment register from its 3-bit encoding (0..=5).
    pub fn from_index(i: u8) -> Option<SegReg> {
        match i {
            0 => Some(SegReg::Es),
            1 => Some(SegReg::Cs),
            2 => Some(SegReg::Ss),
            3 => Some(SegReg::Ds),
            4 => Some(SegReg::Fs),
            5 => Some(SegReg::Gs),
            _ => None,
        }
    }
}

/// Segment selector fields.
pub mod selector {
    /// Requested privilege level mask.
    pub const RPL_MASK: u16 = 3;
    /// Table indicator: 1 = LDT.
    pub const TI: u16 = 1 << 2;
    /// Mask of the index/TI part used in error codes.
    pub const ERROR_CODE_MASK: u16 = !RPL_MASK;
    /// Shift of the descriptor index.
    pub const INDEX_SHIFT: u32 = 3;
}

/// Segment descriptor type field values (the 4-bit `type`).
pub mod segtype {
    /// Accessed bit (code and data).
    pub const ACCESSED: u8 = 1 << 0;
    /// Writable (data) / readable (code).
    pub const WRITE_OR_READ: u8 = 1 << 1;
    /// Expand-down (data) / conforming (code).
    pub const EXPDOWN_OR_CONFORMING: u8 = 1 << 2;
    /// Code segment.
    pub const CODE: u8 = 1 << 3;
    /// System type: LDT.
    pub const SYS_LDT: u8 = 2;
    /// System type: available 32/64-bit TSS.
    pub const SYS_TSS_AVAIL: u8 = 9;
    /// System type: busy 32/64-bit TSS.
    pub const SYS_TSS_BUSY: u8 = 11;
    /// System type: available 16-bit TSS.
    pub const SYS_TSS16_AVAIL: u8 = 1;
    /// System type: busy 16-bit TSS.
    pub const SYS_TSS16_BUSY: u8 = 3;
    /// Busy bit of TSS types.
    pub const TSS_BUSY_BIT: u8 = 1 << 1;
    /// Data segment read/write accessed, the real-mode attribute.
    pub const DATA_RW_ACCESSED: u8 = 3;
    /// Code segment execute/read accessed.
    pub const CODE_RX_ACCESSED: u8 = 11;
}

/// Architectural maximum instruction length.
pub const MAX_INSN_LEN: usize = 15;
