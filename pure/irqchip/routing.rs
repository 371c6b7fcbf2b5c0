//! GSI routing (upstream `virt/kvm/irqchip.c` + `kvm_set_routing_entry()`).
//!
//! A routing table is a slice of [`RouteEntry`] sorted by GSI; the kernel
//! side owns the storage (copied from KVM_SET_GSI_ROUTING, at most
//! [`KVM_MAX_IRQ_ROUTES`] entries), validates and sorts it in place with
//! [`prepare_routes`] and publishes it together with the returned
//! [`ChipPinMap`]. [`set_irq`] fans a GSI's level out to its routes.

use super::apic_bus::BusConfig;
use super::i8259::PIC_NUM_PINS;
use super::ioapic::IOAPIC_NUM_PINS;
use super::msi::{MsiMessage, EINVAL};
use super::uapi::{
    KvmIrqRoutingEntry, KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
    KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQ_ROUTING_MSI, KVM_MSI_VALID_DEVID, KVM_NR_IRQCHIPS,
};

pub use super::uapi::KVM_MAX_IRQ_ROUTES;

/// Pins per irqchip in the chip/pin map (`KVM_IRQCHIP_NUM_PINS`).
pub const IRQCHIP_NUM_PINS: usize = IOAPIC_NUM_PINS;
/// Number of entries in [`DEFAULT_ROUTES`].
pub const DEFAULT_ROUTE_COUNT: usize = 40;
/// GSIs that are wired to both the PIC pair and the IOAPIC by default.
pub const LEGACY_GSI_COUNT: u32 = 16;
/// IRQ source id of KVM_IRQ_LINE / KVM_IRQ_LINE_STATUS / plain irqfds
/// (`KVM_USERSPACE_IRQ_SOURCE_ID`).
pub const USERSPACE_IRQ_SOURCE_ID: u32 = 0;
/// IRQ source id of resampling irqfds (`KVM_IRQFD_RESAMPLE_IRQ_SOURCE_ID`);
/// the PIT uses [`super::i8254::PIT_IRQ_SOURCE_ID`] (2).
pub const IRQFD_RESAMPLE_IRQ_SOURCE_ID: u32 = 1;

/// An interrupt controller input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqChip {
    /// Master 8259 (pins 0-7).
    PicMaster,
    /// Slave 8259 (pins 0-7 = IRQ 8-15).
    PicSlave,
    /// IOAPIC (pins 0-23).
    Ioapic,
}

impl IrqChip {
    /// From the uapi `KVM_IRQCHIP_*` number.
    pub const fn from_uapi(chip: u32) -> Option<Self> {
        match chip {
            KVM_IRQCHIP_PIC_MASTER => Some(Self::PicMaster),
            KVM_IRQCHIP_PIC_SLAVE => Some(Self::PicSlave),
            KVM_IRQCHIP_IOAPIC => Some(Self::Ioapic),
            _ => None,
        }
    }

    /// The uapi `KVM_IRQCHIP_*` number.
    pub const fn uapi(self) -> u32 {
        match self {
            Self::PicMaster => KVM_IRQCHIP_PIC_MASTER,
            Self::PicSlave => KVM_IRQCHIP_PIC_SLAVE,
            Self::Ioapic => KVM_IRQCHIP_IOAPIC,
        }
    }

    /// Number of input pins.
    pub const fn num_pins(self) -> u32 {
        match self {
            Self::PicMaster | Self::PicSlave => (PIC_NUM_PINS / 2) as u32,
            Self::Ioapic => IOAPIC_NUM_PINS as u32,
        }
    }
}

/// An MSI route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiRoute {
    /// The message.
    pub msg: MsiMessage,
    /// `KVM_MSI_VALID_DEVID` or 0.
    pub flags: u32,
    /// Device ID (unused on x86).
    pub devid: u32,
}

/// Where a GSI goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteTarget {
    /// An irqchip input pin.
    Irqchip {
        /// Controller.
        chip: IrqChip,
        /// Pin on that controller (0-7 for a PIC, 0-23 for the IOAPIC).
        pin: u8,
    },
    /// An MSI.
    Msi(MsiRoute),
}

/// One routing entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// Global system interrupt.
    pub gsi: u32,
    /// Destination.
    pub target: RouteTarget,
}

/// Why a routing table was refused (all map to `-EINVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoutingError {
    /// GSI not below [`KVM_MAX_IRQ_ROUTES`].
    GsiOutOfRange,
    /// Unsupported flags for the route type.
    BadFlags,
    /// Unsupported route type.
    BadType,
    /// Unknown irqchip.
    BadIrqchip,
    /// Pin out of range for the irqchip.
    BadPin,
    /// MSI invalid in x2APIC format.
    InvalidMsi,
    /// Two routes of one GSI to the same irqchip, or an MSI route sharing
    /// its GSI with any other route.
    Conflict,
}

impl RoutingError {
    /// The errno value (`-EINVAL`).
    pub const fn errno(self) -> i32 {
        -EINVAL
    }
}

const fn irqchip_route(gsi: u32, chip: IrqChip, pin: u8) -> RouteEntry {
    RouteEntry {
        gsi,
        target: RouteTarget::Irqchip { chip, pin },
    }
}

impl RouteEntry {
    /// An irqchip route.
    pub const fn irqchip(gsi: u32, chip: IrqChip, pin: u8) -> Self {
        irqchip_route(gsi, chip, pin)
    }

    /// Validates and converts one `struct kvm_irq_routing_entry`.
    pub fn from_uapi(e: &KvmIrqRoutingEntry, cfg: &BusConfig) -> Result<Self, RoutingError> {
        if e.gsi >= KVM_MAX_IRQ_ROUTES {
            return Err(RoutingError::GsiOutOfRange);
        }
        let [w0, w1, w2, w3, ..] = e.u;
        let target = match e.type_ {
            KVM_IRQ_ROUTING_IRQCHIP => {
                if e.flags != 0 {
                    return Err(RoutingError::BadFlags);
                }
                let chip = IrqChip::from_uapi(w0).ok_or(RoutingError::BadIrqchip)?;
                if w1 >= chip.num_pins() {
                    return Err(RoutingError::BadPin);
                }
                RouteTarget::Irqchip {
                    chip,
                    pin: w1 as u8,
                }
            }
            KVM_IRQ_ROUTING_MSI => {
                if e.flags & !KVM_MSI_VALID_DEVID != 0 {
                    return Err(RoutingError::BadFlags);
                }
                let msg = MsiMessage {
                    address_lo: w0,
                    address_hi: w1,
                    data: w2,
                };
                if msg.is_invalid(cfg) {
                    return Err(RoutingError::InvalidMsi);
                }
                RouteTarget::Msi(MsiRoute {
                    msg,
                    flags: e.flags,
                    devid: w3,
                })
            }
            _ => return Err(RoutingError::BadType),
        };
        Ok(Self { gsi: e.gsi, target })
    }

    /// Back to `struct kvm_irq_routing_entry`.
    pub fn to_uapi(&self) -> KvmIrqRoutingEntry {
        let mut out = KvmIrqRoutingEntry {
            gsi: self.gsi,
            ..KvmIrqRoutingEntry::default()
        };
        match self.target {
            RouteTarget::Irqchip { chip, pin } => {
                out.type_ = KVM_IRQ_ROUTING_IRQCHIP;
                out.u[0] = chip.uapi();
                out.u[1] = u32::from(pin);
            }
            RouteTarget::Msi(m) => {
                out.type_ = KVM_IRQ_ROUTING_MSI;
                out.flags = m.flags;
                out.u[0] = m.msg.address_lo;
                out.u[1] = m.msg.address_hi;
                out.u[2] = m.msg.data;
                out.u[3] = m.devid;
            }
        }
        out
    }

    fn chip(&self) -> Option<IrqChip> {
        match self.target {
            RouteTarget::Irqchip { chip, .. } => Some(chip),
            RouteTarget::Msi(_) => None,
        }
    }
}

/// Reverse map irqchip pin → GSI (upstream `rt->chip[][]`), used to turn
/// PIC/IOAPIC ack and mask notifications into GSIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChipPinMap {
    map: [[u32; IRQCHIP_NUM_PINS]; KVM_NR_IRQCHIPS],
}

impl Default for ChipPinMap {
    fn default() -> Self {
        Self::new()
    }
}

impl ChipPinMap {
    const NONE: u32 = u32::MAX;

    /// A map with no pin routed.
    pub const fn new() -> Self {
        Self {
            map: [[Self::NONE; IRQCHIP_NUM_PINS]; KVM_NR_IRQCHIPS],
        }
    }

    /// GSI routed to `pin` of `chip`.
    pub fn gsi(&self, chip: IrqChip, pin: u8) -> Option<u32> {
        let gsi = *self.map.get(chip.uapi() as usize)?.get(usize::from(pin))?;
        (gsi != Self::NONE).then_some(gsi)
    }

    /// GSI of a PIC pin numbered 0-15 (as reported by
    /// [`super::i8259::Pic::take_acked_pins`]).
    pub fn pic_gsi(&self, pic_pin: u8) -> Option<u32> {
        let chip = if pic_pin < 8 {
            IrqChip::PicMaster
        } else {
            IrqChip::PicSlave
        };
        self.gsi(chip, pic_pin & 7)
    }

    fn insert(&mut self, chip: IrqChip, pin: u8, gsi: u32) {
        if let Some(slot) = self
            .map
            .get_mut(chip.uapi() as usize)
            .and_then(|row| row.get_mut(usize::from(pin)))
        {
            *slot = gsi;
        }
    }
}

/// Validates a routing table and sorts it by GSI in place; returns its
/// chip/pin map. Rules: a GSI may route to each irqchip at most once, and a
/// GSI with an MSI route has no other route.
pub fn prepare_routes(entries: &mut [RouteEntry]) -> Result<ChipPinMap, RoutingError> {
    entries.sort_unstable_by_key(|e| e.gsi);
    let mut map = ChipPinMap::new();
    let mut start = 0;
    while start < entries.len() {
        let group = routes_for_gsi(
            entries.get(start..).unwrap_or(&[]),
            entries.get(start).map_or(0, |e| e.gsi),
        );
        let len = group.len().max(1);
        for (i, a) in group.iter().enumerate() {
            for b in group.iter().skip(i.saturating_add(1)) {
                match (a.chip(), b.chip()) {
                    (Some(x), Some(y)) if x != y => {}
                    _ => return Err(RoutingError::Conflict),
                }
            }
            if let RouteTarget::Irqchip { chip, pin } = a.target {
                map.insert(chip, pin, a.gsi);
            }
        }
        start = start.saturating_add(len);
    }
    Ok(map)
}

/// The routes of `gsi` in a table sorted by [`prepare_routes`].
pub fn routes_for_gsi(sorted: &[RouteEntry], gsi: u32) -> &[RouteEntry] {
    let start = sorted.partition_point(|e| e.gsi < gsi);
    let rest = sorted.get(start..).unwrap_or(&[]);
    let len = rest.partition_point(|e| e.gsi == gsi);
    rest.get(..len).unwrap_or(&[])
}

/// upstream `default_routing[]`: GSI 0-15 to the IOAPIC pin and the PIC
/// pin of the same number, GSI 16-23 to the IOAPIC only.
pub const DEFAULT_ROUTES: [RouteEntry; DEFAULT_ROUTE_COUNT] = {
    let mut table = [irqchip_route(0, IrqChip::Ioapic, 0); DEFAULT_ROUTE_COUNT];
    let mut n = 0;
    let mut gsi: u32 = 0;
    while gsi < IOAPIC_NUM_PINS as u32 {
        table[n] = irqchip_route(gsi, IrqChip::Ioapic, gsi as u8);
        n += 1;
        if gsi < LEGACY_GSI_COUNT {
            let chip = if gsi < 8 {
                IrqChip::PicMaster
            } else {
                IrqChip::PicSlave
            };
            table[n] = irqchip_route(gsi, chip, (gsi % 8) as u8);
            n += 1;
        }
        gsi += 1;
    }
    table
};

/// The irqchip inputs and MSI sink a GSI's routes drive.
pub trait IrqLines {
    /// Drives PIC pin 0-15 (see [`super::i8259::Pic::set_irq`]).
    fn set_pic_irq(&mut self, pin: u8, source_id: u32, level: bool) -> i32;
    /// Drives IOAPIC pin 0-23 (see [`super::ioapic::Ioapic::set_irq`]).
    fn set_ioapic_irq(&mut self, pin: u8, source_id: u32, level: bool, line_status: bool) -> i32;
    /// Signals an MSI (see [`super::msi::signal_msi`]).
    fn set_msi(&mut self, route: &MsiRoute, level: bool) -> i32;
}

/// Sets the level of a GSI on every one of its `routes` (upstream
/// `kvm_set_irq()`). Return value (KVM_IRQ_LINE_STATUS): > 0 number of
/// CPUs the interrupt was delivered to (summed over routes), 0 coalesced,
/// < 0 ignored (every route masked, or no route at all).
pub fn set_irq<L: IrqLines + ?Sized>(
    routes: &[RouteEntry],
    lines: &mut L,
    source_id: u32,
    level: bool,
    line_status: bool,
) -> i32 {
    let mut ret = -1;
    for route in routes {
        let r = match route.target {
            RouteTarget::Irqchip {
                chip: IrqChip::PicMaster,
                pin,
            } => lines.set_pic_irq(pin & 7, source_id, level),
            RouteTarget::Irqchip {
                chip: IrqChip::PicSlave,
                pin,
            } => lines.set_pic_irq((pin & 7) | 8, source_id, level),
            RouteTarget::Irqchip {
                chip: IrqChip::Ioapic,
                pin,
            } => lines.set_ioapic_irq(pin, source_id, level, line_status),
            RouteTarget::Msi(ref m) => lines.set_msi(m, level),
        };
        if r < 0 {
            continue;
        }
        ret = r.saturating_add(ret.max(0));
    }
    ret
}

/// Split irqchip (IOAPIC in userspace): whether an EOI of `vector` by the
/// LAPIC `target` must exit to userspace (KVM_EXIT_IOAPIC_EOI). It must
/// when a level-triggered MSI route of a GSI below `ioapic_pins` (the
/// pins userspace reserved with KVM_CAP_SPLIT_IRQCHIP) sends `vector` to
/// `target`: upstream's `kvm_scan_ioapic_routes()`, asked per EOI.
pub fn split_eoi_exit(
    sorted: &[RouteEntry],
    ioapic_pins: u32,
    vector: u8,
    target: &super::ApicDestInfo,
    cfg: &BusConfig,
) -> bool {
    sorted
        .iter()
        .take_while(|r| r.gsi < ioapic_pins)
        .any(|r| match r.target {
            RouteTarget::Msi(m) => {
                let d = m.msg.to_delivery(cfg);
                !m.msg.is_invalid(cfg)
                    && d.vector == vector
                    && d.trigger == super::TriggerMode::Level
                    && super::matches_dest(
                        target,
                        false,
                        false,
                        super::Shorthand::None,
                        d.dest_id,
                        d.dest_mode,
                        cfg,
                    )
            }
            RouteTarget::Irqchip { .. } => false,
        })
}
