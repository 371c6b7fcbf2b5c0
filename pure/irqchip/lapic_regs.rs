//! Local APIC register offsets and bit fields (Intel SDM vol. 3 ch. 11,
//! Linux `asm/apicdef.h`). Offsets are byte offsets in the 4 KiB xAPIC
//! MMIO page; x2APIC MSR `0x800 + (offset >> 4)` maps to the same register
//! ([`crate::defs::msr::x2apic_msr`]). The `IA32_APIC_BASE` MSR and its
//! bits are in [`crate::defs::msr`].

use crate::defs::paging::PAGE_SIZE;

/// Local APIC ID.
pub const APIC_ID: u32 = 0x20;
/// Version (read-only).
pub const APIC_LVR: u32 = 0x30;
/// Task priority.
pub const APIC_TASKPRI: u32 = 0x80;
/// Arbitration priority (reads as 0 here, like KVM).
pub const APIC_ARBPRI: u32 = 0x90;
/// Processor priority (read-only, derived).
pub const APIC_PROCPRI: u32 = 0xa0;
/// End of interrupt (write-only).
pub const APIC_EOI: u32 = 0xb0;
/// Logical destination.
pub const APIC_LDR: u32 = 0xd0;
/// Destination format (xAPIC only).
pub const APIC_DFR: u32 = 0xe0;
/// Spurious interrupt vector.
pub const APIC_SPIV: u32 = 0xf0;
/// In-service register bank (8 x 32 bits, 16-byte stride).
pub const APIC_ISR: u32 = 0x100;
/// Trigger mode register bank.
pub const APIC_TMR: u32 = 0x180;
/// Interrupt request register bank.
pub const APIC_IRR: u32 = 0x200;
/// Error status.
pub const APIC_ESR: u32 = 0x280;
/// LVT corrected machine check interrupt.
pub const APIC_LVTCMCI: u32 = 0x2f0;
/// Interrupt command, low half (in x2APIC the whole 64-bit ICR).
pub const APIC_ICR: u32 = 0x300;
/// Interrupt command, high half (xAPIC destination).
pub const APIC_ICR2: u32 = 0x310;
/// LVT timer.
pub const APIC_LVTT: u32 = 0x320;
/// LVT thermal sensor.
pub const APIC_LVTTHMR: u32 = 0x330;
/// LVT performance counter.
pub const APIC_LVTPC: u32 = 0x340;
/// LVT LINT0.
pub const APIC_LVT0: u32 = 0x350;
/// LVT LINT1.
pub const APIC_LVT1: u32 = 0x360;
/// LVT error.
pub const APIC_LVTERR: u32 = 0x370;
/// Timer initial count.
pub const APIC_TMICT: u32 = 0x380;
/// Timer current count (read-only).
pub const APIC_TMCCT: u32 = 0x390;
/// Timer divide configuration.
pub const APIC_TDCR: u32 = 0x3e0;
/// Self IPI (x2APIC only, write-only).
pub const APIC_SELF_IPI: u32 = 0x3f0;
/// Highest register offset of the architectural page.
pub const APIC_LAST_REG: u32 = APIC_SELF_IPI;
/// Registers are 16-byte aligned.
pub const APIC_REG_ALIGN_MASK: u32 = 0xf;
/// Size of the xAPIC MMIO window: one page.
pub const LAPIC_MMIO_LENGTH: u64 = PAGE_SIZE;
/// Number of 32-bit words in one of the ISR/TMR/IRR banks.
pub const APIC_VECTOR_BANK_WORDS: u32 = 8;
/// Distance between two words of a vector bank.
pub const APIC_VECTOR_BANK_STRIDE: u32 = 0x10;

/// Version register: integrated APIC version reported by KVM.
pub const APIC_VERSION: u32 = 0x14;
/// Version register: shift of "max LVT entry".
pub const APIC_LVR_MAXLVT_SHIFT: u32 = 16;
/// Version register: directed EOI (suppress EOI broadcast) supported.
pub const APIC_LVR_DIRECTED_EOI: u32 = 1 << 24;

/// TPR/PPR priority class bits.
pub const APIC_PRIORITY_CLASS_MASK: u32 = 0xf0;
/// TPR writable bits.
pub const APIC_TPR_MASK: u32 = 0xff;
/// LDR writable bits in xAPIC mode.
pub const APIC_LDR_MASK: u32 = 0xff00_0000;
/// DFR bits 27:0 read as ones.
pub const APIC_DFR_RESERVED_ONES: u32 = 0x0fff_ffff;
/// ICR2 destination field (xAPIC).
pub const APIC_ICR2_DEST_MASK: u32 = 0xff00_0000;
/// Shift of the xAPIC destination field in ICR2 / of the xAPIC ID.
pub const APIC_XAPIC_ID_SHIFT: u32 = 24;

/// SPIV: vector and focus bits writable by KVM's model.
pub const APIC_SPIV_WRITABLE: u32 = 0x3ff;
/// SPIV: software enable.
pub const APIC_SPIV_APIC_ENABLED: u32 = 1 << 8;
/// SPIV: suppress EOI broadcast (directed EOI).
pub const APIC_SPIV_DIRECTED_EOI: u32 = 1 << 12;
/// SPIV value at reset.
pub const APIC_SPIV_RESET: u32 = 0xff;

/// Vector field of ICR / LVT entries.
pub const APIC_VECTOR_MASK: u32 = 0xff;
/// Delivery mode field of ICR / LVT entries.
pub const APIC_MODE_MASK: u32 = 0x700;
/// Delivery mode ExtINT (LVT encoding, already shifted).
pub const APIC_MODE_EXTINT: u32 = 0x700;
/// Delivery mode NMI (LVT encoding, already shifted).
pub const APIC_MODE_NMI: u32 = 0x400;
/// LVT / ICR: delivery status ("send pending").
pub const APIC_SEND_PENDING: u32 = 1 << 12;
/// LVT: input pin polarity.
pub const APIC_INPUT_POLARITY: u32 = 1 << 13;
/// LVT: remote IRR.
pub const APIC_LVT_REMOTE_IRR: u32 = 1 << 14;
/// LVT / ICR: level triggered.
pub const APIC_LVT_LEVEL_TRIGGER: u32 = 1 << 15;
/// LVT: masked.
pub const APIC_LVT_MASKED: u32 = 1 << 16;
/// LVT timer: mode field shift.
pub const APIC_LVT_TIMER_SHIFT: u32 = 17;
/// LVT timer: periodic mode bit (mode mask without TSC-deadline support).
pub const APIC_LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// LVT timer: both mode bits (mode mask with TSC-deadline support).
pub const APIC_LVT_TIMER_MODE_MASK: u32 = 3 << 17;
/// Writable bits of every LVT.
pub const LVT_MASK: u32 = APIC_LVT_MASKED | APIC_SEND_PENDING | APIC_VECTOR_MASK;
/// Writable bits of LINT0/LINT1.
pub const LINT_MASK: u32 =
    LVT_MASK | APIC_MODE_MASK | APIC_INPUT_POLARITY | APIC_LVT_REMOTE_IRR | APIC_LVT_LEVEL_TRIGGER;

/// ICR: delivery status (busy). Always reads 0: delivery is instantaneous.
pub const APIC_ICR_BUSY: u32 = 1 << 12;
/// ICR: logical destination mode.
pub const APIC_DEST_LOGICAL: u32 = 1 << 11;
/// ICR: level assert.
pub const APIC_INT_ASSERT: u32 = 1 << 14;
/// ICR: level trigger.
pub const APIC_INT_LEVELTRIG: u32 = 1 << 15;
/// ICR: destination shorthand shift.
pub const APIC_SHORTHAND_SHIFT: u32 = 18;
/// ICR: "self" shorthand.
pub const APIC_DEST_SELF: u32 = 1 << 18;
/// x2APIC ICR bits that must be zero (31:20, 17:16, 13).
pub const X2APIC_ICR_RESERVED: u64 = 0xfff0_0000 | 0x3_0000 | 0x2000;

/// ESR: send illegal vector.
pub const APIC_ESR_SEND_ILLEGAL: u32 = 1 << 5;
/// ESR: receive illegal vector.
pub const APIC_ESR_RECV_ILLEGAL: u32 = 1 << 6;
/// Vectors below this are illegal for fixed / lowest-priority delivery.
pub const APIC_FIRST_LEGAL_VECTOR: u8 = 16;

/// TDCR writable bits.
pub const APIC_TDCR_MASK: u32 = 0xb;

/// `IA32_APIC_BASE`: bits of the MMIO base address this model honours,
/// 31:12 (upstream's `MSR_IA32_APICBASE_BASE` is `0xfffff << 12` as a C
/// `int`, which sign-extends to all bits from 12 up).
pub const APIC_BASE_ADDR_MASK: u64 = 0xffff_f000;
/// `IA32_APIC_BASE` bits reserved regardless of MAXPHYADDR (7:0 and 9).
pub const APIC_BASE_RESERVED_LOW: u64 = 0x2ff;

/// Local vector table entries, in upstream's index order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvt {
    /// Timer.
    Timer,
    /// Thermal sensor.
    Thermal,
    /// Performance counter overflow.
    Perf,
    /// LINT0 pin.
    Lint0,
    /// LINT1 pin.
    Lint1,
    /// Error.
    Error,
    /// Corrected machine check (only with CMCI support).
    Cmci,
}

/// All LVT entries in index order.
pub const ALL_LVTS: [Lvt; 7] = [
    Lvt::Timer,
    Lvt::Thermal,
    Lvt::Perf,
    Lvt::Lint0,
    Lvt::Lint1,
    Lvt::Error,
    Lvt::Cmci,
];

impl Lvt {
    /// Register offset of this entry.
    pub const fn offset(self) -> u32 {
        match self {
            Self::Timer => APIC_LVTT,
            Self::Thermal => APIC_LVTTHMR,
            Self::Perf => APIC_LVTPC,
            Self::Lint0 => APIC_LVT0,
            Self::Lint1 => APIC_LVT1,
            Self::Error => APIC_LVTERR,
            Self::Cmci => APIC_LVTCMCI,
        }
    }

    /// Index in upstream's LVT numbering (timer = 0 ... CMCI = 6).
    pub const fn index(self) -> u32 {
        match self {
            Self::Timer => 0,
            Self::Thermal => 1,
            Self::Perf => 2,
            Self::Lint0 => 3,
            Self::Lint1 => 4,
            Self::Error => 5,
            Self::Cmci => 6,
        }
    }

    /// The entry at register `offset`, if any.
    pub const fn from_offset(offset: u32) -> Option<Self> {
        match offset {
            APIC_LVTT => Some(Self::Timer),
            APIC_LVTTHMR => Some(Self::Thermal),
            APIC_LVTPC => Some(Self::Perf),
            APIC_LVT0 => Some(Self::Lint0),
            APIC_LVT1 => Some(Self::Lint1),
            APIC_LVTERR => Some(Self::Error),
            APIC_LVTCMCI => Some(Self::Cmci),
            _ => None,
        }
    }

    /// Writable bits (the timer's mode bits are added at run time).
    pub const fn write_mask(self) -> u32 {
        match self {
            Self::Timer | Self::Error => LVT_MASK,
            Self::Thermal | Self::Perf | Self::Cmci => LVT_MASK | APIC_MODE_MASK,
            Self::Lint0 | Self::Lint1 => LINT_MASK,
        }
    }
}
