//! Architectural register numbers and bit definitions used by the emulator.
//!
//! Everything here is a typed constant so that the logic elsewhere never
//! contains magic numbers.

/// General-purpose register index, in ModRM/REX encoding order
/// (0 = RAX ... 15 = R15).
pub type Gpr = u8;

/// RAX (accumulator).
pub const RAX: Gpr = 0;
/// RCX (count register).
pub const RCX: Gpr = 1;
/// RDX (data register).
pub const RDX: Gpr = 2;
/// RBX (base register).
pub const RBX: Gpr = 3;
/// RSP (stack pointer).
pub const RSP: Gpr = 4;
/// RBP (frame pointer).
pub const RBP: Gpr = 5;
/// RSI (string source index).
pub const RSI: Gpr = 6;
/// RDI (string destination index).
pub const RDI: Gpr = 7;
/// R8.
pub const R8: Gpr = 8;
/// R15, the highest-numbered GPR.
pub const R15: Gpr = 15;
/// Number of general-purpose registers in 64-bit mode.
pub const NR_GPRS: usize = 16;
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

/// RFLAGS bits.
pub mod rflags {
    /// Carry flag.
    pub const CF: u64 = 1 << 0;
    /// Reserved bit 1, always set.
    pub const FIXED: u64 = 1 << 1;
    /// Parity flag.
    pub const PF: u64 = 1 << 2;
    /// Auxiliary carry flag.
    pub const AF: u64 = 1 << 4;
    /// Zero flag.
    pub const ZF: u64 = 1 << 6;
    /// Sign flag.
    pub const SF: u64 = 1 << 7;
    /// Trap flag.
    pub const TF: u64 = 1 << 8;
    /// Interrupt enable flag.
    pub const IF: u64 = 1 << 9;
    /// Direction flag.
    pub const DF: u64 = 1 << 10;
    /// Overflow flag.
    pub const OF: u64 = 1 << 11;
    /// I/O privilege level field (2 bits).
    pub const IOPL: u64 = 3 << 12;
    /// Shift of the IOPL field.
    pub const IOPL_SHIFT: u32 = 12;
    /// Nested task flag.
    pub const NT: u64 = 1 << 14;
    /// Resume flag.
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode flag.
    pub const VM: u64 = 1 << 17;
    /// Alignment check flag.
    pub const AC: u64 = 1 << 18;
    /// Virtual interrupt flag.
    pub const VIF: u64 = 1 << 19;
    /// Virtual interrupt pending flag.
    pub const VIP: u64 = 1 << 20;
    /// CPUID-available flag.
    pub const ID: u64 = 1 << 21;
    /// The six arithmetic status flags.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
    /// All bits that software can ever see set.
    pub const ALL: u64 = ARITH | FIXED | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;
}

/// CR0 bits.
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor.
    pub const MP: u64 = 1 << 1;
    /// Emulation (no x87/SSE).
    pub const EM: u64 = 1 << 2;
    /// Task switched.
    pub const TS: u64 = 1 << 3;
    /// Extension type.
    pub const ET: u64 = 1 << 4;
    /// Numeric error.
    pub const NE: u64 = 1 << 5;
    /// Write protect.
    pub const WP: u64 = 1 << 16;
    /// Alignment mask.
    pub const AM: u64 = 1 << 18;
    /// Not write-through.
    pub const NW: u64 = 1 << 29;
    /// Cache disable.
    pub const CD: u64 = 1 << 30;
    /// Paging.
    pub const PG: u64 = 1 << 31;
    /// Bits LMSW may write (PE can be set but not cleared by LMSW).
    pub const LMSW_MASK: u64 = PE | MP | EM | TS;
}

/// CR4 bits.
pub mod cr4 {
    /// Virtual-8086 mode extensions.
    pub const VME: u64 = 1 << 0;
    /// Protected-mode virtual interrupts.
    pub const PVI: u64 = 1 << 1;
    /// Time stamp disable (RDTSC privileged).
    pub const TSD: u64 = 1 << 2;
    /// Debugging extensions.
    pub const DE: u64 = 1 << 3;
    /// Page size extensions.
    pub const PSE: u64 = 1 << 4;
    /// Physical address extension.
    pub const PAE: u64 = 1 << 5;
    /// OS supports FXSAVE/FXRSTOR (SSE enabled).
    pub const OSFXSR: u64 = 1 << 9;
    /// User-mode instruction prevention.
    pub const UMIP: u64 = 1 << 11;
    /// 57-bit linear addresses (5-level paging).
    pub const LA57: u64 = 1 << 12;
    /// FSGSBASE instructions enabled.
    pub const FSGSBASE: u64 = 1 << 16;
    /// Process-context identifiers.
    pub const PCIDE: u64 = 1 << 17;
    /// OS supports XSAVE and XCR0 (AVX usable with XCR0.YMM).
    pub const OSXSAVE: u64 = 1 << 18;
    /// Supervisor-mode execution prevention.
    pub const SMEP: u64 = 1 << 20;
    /// Supervisor-mode access prevention.
    pub const SMAP: u64 = 1 << 21;
}

/// XCR0 (XFEATURE_ENABLED_MASK) bits.
pub mod xcr0 {
    /// x87 state.
    pub const X87: u64 = 1 << 0;
    /// SSE state (XMM registers).
    pub const SSE: u64 = 1 << 1;
    /// AVX state (upper halves of the YMM registers).
    pub const YMM: u64 = 1 << 2;
}

/// EFER bits.
pub mod efer {
    /// SYSCALL enable.
    pub const SCE: u64 = 1 << 0;
    /// Long mode enable.
    pub const LME: u64 = 1 << 8;
    /// Long mode active.
    pub const LMA: u64 = 1 << 10;
    /// No-execute enable.
    pub const NXE: u64 = 1 << 11;
}

/// DR6/DR7 details the emulator needs.
pub mod dr {
    /// DR7.GD: general detect (MOV DR raises #DB).
    pub const DR7_GD: u64 = 1 << 13;
    /// DR6 BD bit: debug register access detected.
    pub const DR6_BD: u64 = 1 << 13;
}

/// MSR numbers the emulator uses directly.
pub mod msr {
    /// Time stamp counter.
    pub const IA32_TSC: u32 = 0x10;
    /// Extended feature enable register.
    pub const EFER: u32 = 0xC000_0080;
    /// TSC_AUX (returned in ECX by RDTSCP).
    pub const TSC_AUX: u32 = 0xC000_0103;
}

/// Exception vectors.
pub mod vector {
    /// Divide error.
    pub const DE: u8 = 0;
    /// Debug.
    pub const DB: u8 = 1;
    /// Breakpoint.
    pub const BP: u8 = 3;
    /// Overflow.
    pub const OF: u8 = 4;
    /// Invalid opcode.
    pub const UD: u8 = 6;
    /// Device not available.
    pub const NM: u8 = 7;
    /// Invalid TSS.
    pub const TS: u8 = 10;
    /// Segment not present.
    pub const NP: u8 = 11;
    /// Stack-segment fault.
    pub const SS: u8 = 12;
    /// General protection.
    pub const GP: u8 = 13;
    /// Page fault.
    pub const PF: u8 = 14;
    /// x87 floating-point error.
    pub const MF: u8 = 16;
    /// Alignment check.
    pub const AC: u8 = 17;
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

/// Page-table entry bits shared by all paging modes.
pub mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User accessible.
    pub const US: u64 = 1 << 2;
    /// Accessed.
    pub const A: u64 = 1 << 5;
    /// Dirty.
    pub const D: u64 = 1 << 6;
    /// Page size (large page) in non-leaf levels.
    pub const PS: u64 = 1 << 7;
    /// PAT bit of a large-page entry.
    pub const LARGE_PAT: u64 = 1 << 12;
    /// Execute disable (PAE/long mode).
    pub const NX: u64 = 1 << 63;
}

/// Page-fault error code bits.
pub mod pfec {
    /// The fault was caused by a protection violation (page present).
    pub const PRESENT: u32 = 1 << 0;
    /// Write access.
    pub const WRITE: u32 = 1 << 1;
    /// User-mode access.
    pub const USER: u32 = 1 << 2;
    /// Reserved bit set in a paging structure.
    pub const RSVD: u32 = 1 << 3;
    /// Instruction fetch.
    pub const FETCH: u32 = 1 << 4;
}

/// Page geometry.
pub mod page {
    /// Log2 of the 4 KiB page size.
    pub const SHIFT: u32 = 12;
    /// 4 KiB.
    pub const SIZE: u64 = 1 << SHIFT;
    /// Mask of the offset within a 4 KiB page.
    pub const OFFSET_MASK: u64 = SIZE - 1;
}

/// Architectural maximum instruction length.
pub const MAX_INSN_LEN: usize = 15;
