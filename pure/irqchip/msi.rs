//! MSI message decoding (upstream `kvm_msi_to_lapic_irq()` / `kvm_set_msi()`).
//!
//! Address: bits 31:20 = 0xfee, 19:12 = destination ID bits 7:0, 11:5 =
//! extended destination ID bits 14:8 (only with
//! [`BusConfig::msi_ext_dest_id`]), 3 = redirection hint, 2 = logical
//! destination mode; address_hi bits 31:8 = destination ID bits 31:8 (only
//! with [`BusConfig::x2apic_format`]). Data: bits 7:0 vector, 10:8 delivery
//! mode, 15 trigger mode.

use super::apic_bus::{deliver, ApicBus, BusConfig};
use super::delivery::{
    Delivery, DeliveryMode, DestMode, Shorthand, TriggerMode, DELIVERY_MODE_SHIFT,
};

/// Mask of the fixed address prefix.
pub const MSI_ADDR_BASE_MASK: u32 = 0xfff0_0000;
/// The interrupt address range prefix.
pub const MSI_ADDR_BASE: u32 = 0xfee0_0000;
/// Address: destination ID bits 7:0 shift.
pub const MSI_ADDR_DEST_SHIFT: u32 = 12;
/// Address: extended destination ID (bits 11:5) shift.
pub const MSI_ADDR_EXT_DEST_SHIFT: u32 = 5;
/// Address: extended destination ID width mask.
pub const MSI_ADDR_EXT_DEST_MASK: u32 = 0x7f;
/// Address: redirection hint.
pub const MSI_ADDR_REDIR_HINT: u32 = 1 << 3;
/// Address: logical destination mode.
pub const MSI_ADDR_DEST_LOGICAL: u32 = 1 << 2;
/// address_hi: bits 7:0 must be zero in x2APIC format.
pub const MSI_ADDR_HI_RESERVED: u32 = 0xff;
/// Data: vector.
pub const MSI_DATA_VECTOR_MASK: u32 = 0xff;
/// Data: level triggered.
pub const MSI_DATA_LEVEL: u32 = 1 << 15;
/// `-EINVAL`, returned for an MSI route invalid in x2APIC format.
pub const EINVAL: i32 = 22;

/// A raw MSI message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MsiMessage {
    /// Address bits 31:0.
    pub address_lo: u32,
    /// Address bits 63:32.
    pub address_hi: u32,
    /// Data.
    pub data: u32,
}

impl MsiMessage {
    /// Whether the address lies in the 0xfeexxxxx interrupt range (KVM
    /// does not check this; callers may).
    pub const fn is_interrupt_address(&self) -> bool {
        self.address_lo & MSI_ADDR_BASE_MASK == MSI_ADDR_BASE
    }

    /// Whether the message is unusable under `cfg` (upstream
    /// `kvm_msi_route_invalid()`: address_hi bits 7:0 set in x2APIC format).
    pub const fn is_invalid(&self, cfg: &BusConfig) -> bool {
        cfg.x2apic_format && self.address_hi & MSI_ADDR_HI_RESERVED != 0
    }

    /// Destination ID.
    pub const fn dest_id(&self, cfg: &BusConfig) -> u32 {
        let mut dest = (self.address_lo >> MSI_ADDR_DEST_SHIFT) & 0xff;
        if cfg.x2apic_format {
            dest |= self.address_hi & !MSI_ADDR_HI_RESERVED;
        } else if cfg.msi_ext_dest_id {
            dest |= ((self.address_lo >> MSI_ADDR_EXT_DEST_SHIFT) & MSI_ADDR_EXT_DEST_MASK) << 8;
        }
        dest
    }

    /// The LAPIC message this MSI encodes.
    pub const fn to_delivery(&self, cfg: &BusConfig) -> Delivery {
        Delivery {
            vector: (self.data & MSI_DATA_VECTOR_MASK) as u8,
            delivery_mode: DeliveryMode::from_bits(self.data >> DELIVERY_MODE_SHIFT),
            dest_mode: DestMode::from_logical(self.address_lo & MSI_ADDR_DEST_LOGICAL != 0),
            trigger: TriggerMode::from_level(self.data & MSI_DATA_LEVEL != 0),
            level: true,
            shorthand: Shorthand::None,
            dest_id: self.dest_id(cfg),
            msi_redir_hint: self.address_lo & MSI_ADDR_REDIR_HINT != 0,
        }
    }
}

/// Signals an MSI (KVM_SIGNAL_MSI, irqfd/GSI routes of type MSI).
///
/// Returns `-EINVAL` for a message invalid under `cfg`, -1 when `level` is
/// low (MSIs are edge events), otherwise [`deliver`]'s result.
pub fn signal_msi<B: ApicBus + ?Sized>(
    bus: &mut B,
    msg: &MsiMessage,
    level: bool,
    cfg: &BusConfig,
) -> i32 {
    if msg.is_invalid(cfg) {
        return -EINVAL;
    }
    if !level {
        return -1;
    }
    deliver(bus, None, &msg.to_delivery(cfg), cfg)
}
