//! Destination matching and fan-out of a [`Delivery`] to the local APICs
//! of a VM (upstream `kvm_apic_match_dest()` / `kvm_irq_delivery_to_apic()`).
//!
//! The VM side implements [`ApicBus`] over its vCPUs: `dest_info` is a cheap
//! read of one LAPIC's addressing state, `accept` hands the message to that
//! LAPIC ([`super::lapic::Lapic::accept_irq`]) and kicks its vCPU.

use super::delivery::{Delivery, DeliveryMode, DestMode, Shorthand};

/// xAPIC broadcast destination.
pub const XAPIC_BROADCAST: u32 = 0xff;
/// x2APIC broadcast destination.
pub const X2APIC_BROADCAST: u32 = 0xffff_ffff;
/// DFR value selecting the flat logical model.
pub const DFR_FLAT: u32 = 0xffff_ffff;
/// DFR value selecting the cluster logical model.
pub const DFR_CLUSTER: u32 = 0x0fff_ffff;
/// Shift of the 8-bit logical ID inside the xAPIC LDR.
pub const LDR_XAPIC_ID_SHIFT: u32 = 24;
/// xAPIC cluster model: cluster number in bits 7:4 of the logical ID.
pub const XAPIC_CLUSTER_SHIFT: u32 = 4;
/// xAPIC cluster model: member mask in bits 3:0 of the logical ID.
pub const XAPIC_CLUSTER_MEMBERS: u32 = 0xf;
/// x2APIC logical ID: cluster number in bits 31:16.
pub const X2APIC_CLUSTER_SHIFT: u32 = 16;
/// x2APIC logical ID: one-hot member mask in bits 15:0.
pub const X2APIC_CLUSTER_MEMBERS: u32 = 0xffff;

/// What a LAPIC exposes for destination matching.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApicDestInfo {
    /// APIC_BASE.EN: a hardware-disabled APIC receives nothing.
    pub hw_enabled: bool,
    /// SPIV.APIC_ENABLED (required for lowest-priority candidates).
    pub sw_enabled: bool,
    /// APIC_BASE.EXTD.
    pub x2apic_mode: bool,
    /// Current (writable) xAPIC ID.
    pub xapic_id: u8,
    /// x2APIC ID (the vCPU ID; read-only).
    pub x2apic_id: u32,
    /// Raw LDR register.
    pub ldr: u32,
    /// Raw DFR register.
    pub dfr: u32,
}

/// VM-wide addressing options (`KVM_CAP_X2APIC_API` and friends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusConfig {
    /// `KVM_X2APIC_API_USE_32BIT_IDS`: MSI address_hi carries dest bits 31:8.
    pub x2apic_format: bool,
    /// `KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK`: a device message to 0xff
    /// is not rewritten to the x2APIC broadcast for x2APIC targets.
    pub broadcast_quirk_disabled: bool,
    /// Decode the 7 "extended destination ID" bits of the MSI address
    /// (bits 11:5 → destination bits 14:8), as guests do that were offered
    /// `KVM_FEATURE_MSI_EXT_DEST_ID`. Off in upstream KVM (userspace does it).
    pub msi_ext_dest_id: bool,
}

/// The VM's set of local APICs, as seen by interrupt sources.
pub trait ApicBus {
    /// Number of vCPU slots; indices are `0..apic_count()`.
    fn apic_count(&self) -> usize;
    /// Addressing state of the LAPIC at `index`; `None` if the slot has no
    /// in-kernel LAPIC.
    fn dest_info(&self, index: usize) -> Option<ApicDestInfo>;
    /// Hands `irq` to the LAPIC at `index` (and kicks its vCPU). Returns
    /// whether the LAPIC accepted it (upstream `__apic_accept_irq() == 1`).
    fn accept(&mut self, index: usize, irq: &Delivery) -> bool;
    /// Whether `vector` is pending EOI (set in IRR or ISR) on `index`.
    /// Only used for RTC coalescing bookkeeping after state restore.
    fn pending_eoi(&self, _index: usize, _vector: u8) -> bool {
        false
    }
}

/// Message destination address as seen by one target (upstream
/// `kvm_apic_mda()`): device messages to 0xff become the x2APIC broadcast
/// for x2APIC targets unless the quirk is disabled.
fn message_dest(target: &ApicDestInfo, dest_id: u32, from_ipi: bool, cfg: &BusConfig) -> u32 {
    if !cfg.broadcast_quirk_disabled
        && !from_ipi
        && dest_id == XAPIC_BROADCAST
        && target.x2apic_mode
    {
        X2APIC_BROADCAST
    } else {
        dest_id
    }
}

fn is_broadcast(target: &ApicDestInfo, mda: u32) -> bool {
    mda == if target.x2apic_mode {
        X2APIC_BROADCAST
    } else {
        XAPIC_BROADCAST
    }
}

fn match_physical(target: &ApicDestInfo, mda: u32) -> bool {
    if is_broadcast(target, mda) {
        return true;
    }
    // KVM's hotplug rule: IDs that do not fit xAPIC match the x2APIC ID.
    if target.x2apic_mode || mda > XAPIC_BROADCAST {
        return mda == target.x2apic_id;
    }
    mda == u32::from(target.xapic_id)
}

fn match_logical(target: &ApicDestInfo, mda: u32) -> bool {
    if is_broadcast(target, mda) {
        return true;
    }
    if target.x2apic_mode {
        // x2APIC: cluster in bits 31:16, one-hot member mask in 15:0.
        return (target.ldr >> X2APIC_CLUSTER_SHIFT) == (mda >> X2APIC_CLUSTER_SHIFT)
            && (target.ldr & mda & X2APIC_CLUSTER_MEMBERS) != 0;
    }
    let logical_id = target.ldr >> LDR_XAPIC_ID_SHIFT;
    match target.dfr {
        DFR_FLAT => (logical_id & mda) != 0,
        DFR_CLUSTER => {
            (logical_id >> XAPIC_CLUSTER_SHIFT) == (mda >> XAPIC_CLUSTER_SHIFT)
                && (logical_id & mda & XAPIC_CLUSTER_MEMBERS) != 0
        }
        _ => false,
    }
}

/// Whether `target` is addressed by a message.
///
/// `is_source` says whether `target` is the APIC that sent the IPI (for the
/// shorthands); `from_ipi` distinguishes IPIs from device (IOAPIC/MSI)
/// messages for the broadcast quirk.
pub fn matches_dest(
    target: &ApicDestInfo,
    is_source: bool,
    from_ipi: bool,
    shorthand: Shorthand,
    dest_id: u32,
    dest_mode: DestMode,
    cfg: &BusConfig,
) -> bool {
    match shorthand {
        Shorthand::None => {
            let mda = message_dest(target, dest_id, from_ipi, cfg);
            match dest_mode {
                DestMode::Physical => match_physical(target, mda),
                DestMode::Logical => match_logical(target, mda),
            }
        }
        Shorthand::SelfOnly => is_source,
        Shorthand::AllIncludingSelf => true,
        Shorthand::AllExcludingSelf => !is_source,
    }
}

/// Delivers `irq` to every matching LAPIC; see [`deliver_observed`].
pub fn deliver<B: ApicBus + ?Sized>(
    bus: &mut B,
    source: Option<usize>,
    irq: &Delivery,
    cfg: &BusConfig,
) -> i32 {
    deliver_observed(bus, source, irq, cfg, &mut |_| {})
}

/// Delivers `irq` (from the IPI sender `source`, or from a device when
/// `None`) and calls `accepted(index)` for every LAPIC that took it.
///
/// Return value, as upstream's `kvm_irq_delivery_to_apic()`: the number of
/// LAPICs that accepted; `0` if a unicast/multicast destination matched no
/// LAPIC or none accepted (coalesced); `-1` if a broadcast/shorthand
/// message found no recipient at all. Lowest-priority messages go to one
/// software-enabled candidate chosen by vector hashing (`vector % n`), as
/// upstream does with `vector_hashing` enabled.
pub fn deliver_observed<B: ApicBus + ?Sized>(
    bus: &mut B,
    source: Option<usize>,
    irq: &Delivery,
    cfg: &BusConfig,
    accepted: &mut dyn FnMut(usize),
) -> i32 {
    let from_ipi = source.is_some();
    if let (Shorthand::SelfOnly, Some(src)) = (irq.shorthand, source) {
        return accept_counted(bus, src, irq, accepted);
    }
    let broadcast =
        irq.shorthand != Shorthand::None || is_broadcast_dest(bus, source, irq.dest_id, cfg);
    let mut msg = *irq;
    // A physical broadcast cannot arbitrate: it degrades to fixed.
    if msg.dest_mode == DestMode::Physical
        && msg.dest_id == XAPIC_BROADCAST
        && msg.is_lowest_priority()
    {
        msg.delivery_mode = DeliveryMode::Fixed;
        msg.msi_redir_hint = false;
    }
    let lowest = msg.is_lowest_priority();
    let targets = |bus: &B, index: usize| -> Option<ApicDestInfo> {
        let info = bus.dest_info(index)?;
        let is_source = source == Some(index);
        (info.hw_enabled
            && matches_dest(
                &info,
                is_source,
                from_ipi,
                msg.shorthand,
                msg.dest_id,
                msg.dest_mode,
                cfg,
            ))
        .then_some(info)
    };
    let mut result: i32 = if broadcast { -1 } else { 0 };
    let mut candidates: usize = 0;
    for index in 0..bus.apic_count() {
        let Some(info) = targets(bus, index) else {
            continue;
        };
        if !lowest {
            let got = accept_counted(bus, index, &msg, accepted);
            result = result.max(0).saturating_add(got);
        } else if info.sw_enabled {
            candidates = candidates.saturating_add(1);
        }
    }
    if lowest && candidates != 0 {
        let mut nth = usize::from(msg.vector) % candidates;
        for index in 0..bus.apic_count() {
            let Some(info) = targets(bus, index) else {
                continue;
            };
            if !info.sw_enabled {
                continue;
            }
            if nth == 0 {
                return accept_counted(bus, index, &msg, accepted);
            }
            nth -= 1;
        }
    }
    result
}

/// Whether upstream treats `dest_id` as a broadcast (its optimized map
/// cannot handle those, and an undeliverable broadcast reports -1 where an
/// undeliverable unicast reports 0): `kvm_apic_is_broadcast_dest()`.
fn is_broadcast_dest<B: ApicBus + ?Sized>(
    bus: &B,
    source: Option<usize>,
    dest_id: u32,
    cfg: &BusConfig,
) -> bool {
    if dest_id == X2APIC_BROADCAST {
        return true;
    }
    if dest_id != XAPIC_BROADCAST {
        return false;
    }
    if cfg.broadcast_quirk_disabled {
        // 0xff is a valid x2APIC logical destination once every APIC is
        // in x2APIC mode.
        return !(0..bus.apic_count())
            .filter_map(|i| bus.dest_info(i))
            .filter(|i| i.sw_enabled)
            .all(|i| i.x2apic_mode);
    }
    !source
        .and_then(|s| bus.dest_info(s))
        .is_some_and(|i| i.x2apic_mode)
}

fn accept_counted<B: ApicBus + ?Sized>(
    bus: &mut B,
    index: usize,
    irq: &Delivery,
    accepted: &mut dyn FnMut(usize),
) -> i32 {
    if bus.accept(index, irq) {
        accepted(index);
        1
    } else {
        0
    }
}
