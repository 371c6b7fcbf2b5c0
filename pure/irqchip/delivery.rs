//! The interrupt message every source produces and every LAPIC consumes.
//!
//! IOAPIC redirection entries, MSIs, ICR writes (IPIs) and local LVT
//! entries all decode into a [`Delivery`], the equivalent of upstream's
//! `struct kvm_lapic_irq`.

/// Bit position of the delivery-mode field in ICR / LVT / RTE / MSI data.
pub const DELIVERY_MODE_SHIFT: u32 = 8;
/// Width mask of the (shifted-down) delivery-mode field.
pub const DELIVERY_MODE_BITS: u32 = 0x7;

/// APIC delivery mode (Intel SDM vol. 3 "Interrupt Command Register").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Deliver `vector` to every destination.
    Fixed,
    /// Deliver `vector` to one destination chosen by arbitration.
    LowestPriority,
    /// System management interrupt (ignored by this model).
    Smi,
    /// Remote read; KVM reuses it as the PV "kick halted vCPU" message.
    RemoteRead,
    /// Non-maskable interrupt.
    Nmi,
    /// INIT (assert) or INIT level de-assert.
    Init,
    /// Start-up IPI carrying the start page in `vector`.
    StartUp,
    /// External interrupt: the vector comes from the 8259 via INTA.
    ExtInt,
}

impl DeliveryMode {
    /// Decodes the 3-bit field (already shifted down to bits 2:0).
    pub const fn from_bits(bits: u32) -> Self {
        match bits & DELIVERY_MODE_BITS {
            0 => Self::Fixed,
            1 => Self::LowestPriority,
            2 => Self::Smi,
            3 => Self::RemoteRead,
            4 => Self::Nmi,
            5 => Self::Init,
            6 => Self::StartUp,
            _ => Self::ExtInt,
        }
    }

    /// The 3-bit encoding (not shifted).
    pub const fn bits(self) -> u32 {
        match self {
            Self::Fixed => 0,
            Self::LowestPriority => 1,
            Self::Smi => 2,
            Self::RemoteRead => 3,
            Self::Nmi => 4,
            Self::Init => 5,
            Self::StartUp => 6,
            Self::ExtInt => 7,
        }
    }
}

/// How `dest_id` is interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestMode {
    /// `dest_id` is an APIC ID.
    Physical,
    /// `dest_id` is a logical destination matched against LDR/DFR.
    Logical,
}

impl DestMode {
    /// `true` selects logical mode (ICR bit 11, RTE bit 11, MSI address bit 2).
    pub const fn from_logical(logical: bool) -> Self {
        if logical {
            Self::Logical
        } else {
            Self::Physical
        }
    }
}

/// Trigger mode of an interrupt message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerMode {
    /// Edge triggered: no EOI bookkeeping at the source.
    Edge,
    /// Level triggered: the LAPIC sets TMR and EOIs are broadcast.
    Level,
}

impl TriggerMode {
    /// `true` selects level triggering.
    pub const fn from_level(level: bool) -> Self {
        if level {
            Self::Level
        } else {
            Self::Edge
        }
    }

    /// Whether this is [`TriggerMode::Level`].
    pub const fn is_level(self) -> bool {
        matches!(self, Self::Level)
    }
}

/// ICR destination shorthand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shorthand {
    /// Use `dest_id` / `dest_mode`.
    None,
    /// Only the sending APIC.
    SelfOnly,
    /// Every APIC including the sender.
    AllIncludingSelf,
    /// Every APIC except the sender.
    AllExcludingSelf,
}

impl Shorthand {
    /// Decodes the 2-bit field (already shifted down).
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::None,
            1 => Self::SelfOnly,
            2 => Self::AllIncludingSelf,
            _ => Self::AllExcludingSelf,
        }
    }
}

/// One interrupt message on its way to one or more local APICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Interrupt vector (start page for SIPI).
    pub vector: u8,
    /// Delivery mode.
    pub delivery_mode: DeliveryMode,
    /// Destination mode.
    pub dest_mode: DestMode,
    /// Trigger mode.
    pub trigger: TriggerMode,
    /// Level (assert = `true`); only meaningful for level-triggered INIT
    /// and fixed messages, always `true` for IOAPIC and MSI messages.
    pub level: bool,
    /// Destination shorthand (IPIs only).
    pub shorthand: Shorthand,
    /// Destination: 8-bit xAPIC or 32-bit x2APIC ID / logical destination.
    pub dest_id: u32,
    /// MSI redirection hint: turns the message into lowest-priority.
    pub msi_redir_hint: bool,
}

impl Delivery {
    /// A fixed, edge-triggered, physical-mode message to `dest_id`.
    pub const fn fixed(vector: u8, dest_id: u32) -> Self {
        Self {
            vector,
            delivery_mode: DeliveryMode::Fixed,
            dest_mode: DestMode::Physical,
            trigger: TriggerMode::Edge,
            level: true,
            shorthand: Shorthand::None,
            dest_id,
            msi_redir_hint: false,
        }
    }

    /// Whether arbitration picks a single destination (lowest priority or
    /// an MSI with the redirection hint set).
    pub const fn is_lowest_priority(&self) -> bool {
        matches!(self.delivery_mode, DeliveryMode::LowestPriority) || self.msi_redir_hint
    }
}
