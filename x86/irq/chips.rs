// SPDX-License-Identifier: GPL-2.0
//! A VM's in-kernel interrupt controllers: the PIC pair, the IOAPIC and the
//! PIT (pure models behind one lock), GSI routing, and interrupt delivery
//! to the vCPUs' local APICs; with KVM_CAP_SPLIT_IRQCHIP only the routing
//! (MSI) and the LAPICs are used.
//!
//! Lock order: `Irqchip::chips` → `Vcpus::list` → a vCPU's LAPIC, all
//! IRQ-safe spinlocks (irqfds inject from eventfd wakeups). Deliveries run
//! with the vCPU list locked; everything that may sleep (irqfd resamplers,
//! allocations, guest memory) runs before or after.

use crate::{
    ext::{
        trace,
        uaccess::{read_arg, read_array, write_arg},
        uapi,
    },
    irqchip::{
        self, deliver as deliver_to_bus, prepare_routes, routes_for_gsi, ApicBus, ApicDestInfo,
        BusConfig, ChipPinMap, Delivery, Ioapic, IoapicEnv, IrqLines, Pic, PicChip, Pit,
        RouteEntry, TriggerMode,
    },
    virt::{
        kick::{REQ_EVENT, REQ_PIT},
        kick_timer::{now_ns, DeviceTimer},
        vcpu::Vcpu,
        vm::Vm,
    },
};
use core::sync::atomic::{AtomicU8, Ordering};
use kernel::{
    new_spinlock_irq,
    prelude::*,
    sync::{Arc, SpinLockIrq},
    transmute::{AsBytes, FromBytes},
};

/// `Irqchip::mode`: no in-kernel irqchip.
const IRQCHIP_NONE: u8 = 0;
/// KVM_CREATE_IRQCHIP: PIC, IOAPIC and LAPICs in the kernel.
const IRQCHIP_FULL: u8 = 1;
/// KVM_CAP_SPLIT_IRQCHIP: only the LAPICs.
const IRQCHIP_SPLIT: u8 = 2;

/// Source id of KVM_IRQ_LINE.
pub(crate) const USERSPACE_SOURCE: u32 = irqchip::routing::USERSPACE_IRQ_SOURCE_ID;

/// A VM's interrupt controllers.
#[pin_data]
pub(crate) struct Irqchip {
    /// The models (KVM_CREATE_IRQCHIP or KVM_CAP_SPLIT_IRQCHIP). IRQ-safe:
    /// irqfds inject from an eventfd's wakeup, in any context. Outermost
    /// of the IRQ-safe locks: `chips` → `Vcpus::list` → a LAPIC.
    #[pin]
    chips: SpinLockIrq<Option<KBox<Chips>>>,
    /// Which irqchip `chips` holds (`IRQCHIP_*`), set once with it: the
    /// run loop asks on every exit without taking the lock.
    mode: AtomicU8,
    /// KVM_CAP_X2APIC_API as enabled: the `KVM_X2APIC_*` flags (the two
    /// suppress-EOI-broadcast bits: the last one enabled).
    x2apic_api: AtomicU8,
}

/// The flags KVM_CAP_X2APIC_API offers (`KVM_X2APIC_API_VALID_FLAGS`).
pub(crate) const X2APIC_API_VALID_FLAGS: u64 = (uapi::KVM_X2APIC_API_USE_32BIT_IDS
    | uapi::KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK
    | uapi::KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST
    | uapi::KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST)
    as u64;
/// The two suppress-EOI-broadcast modes; neither is upstream's "quirked"
/// default.
const SUPPRESS_EOI_MODES: u8 = (uapi::KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST
    | uapi::KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST) as u8;

impl Irqchip {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            chips <- new_spinlock_irq!(None),
            mode: AtomicU8::new(IRQCHIP_NONE),
            x2apic_api: AtomicU8::new(0),
        })
    }

    /// Whether the LAPICs are in the kernel (KVM_CREATE_IRQCHIP or
    /// KVM_CAP_SPLIT_IRQCHIP; upstream's irqchip_in_kernel()).
    pub(crate) fn in_kernel(&self) -> bool {
        self.mode.load(Ordering::Acquire) != IRQCHIP_NONE
    }

    /// Whether the PIC and IOAPIC are in the kernel too (irqchip_full()).
    pub(crate) fn is_full(&self) -> bool {
        self.mode.load(Ordering::Acquire) == IRQCHIP_FULL
    }

    /// Whether the irqchip is split (IOAPIC and PIC in userspace).
    pub(crate) fn is_split(&self) -> bool {
        self.mode.load(Ordering::Acquire) == IRQCHIP_SPLIT
    }

    /// The PIC's INTR line, for the vCPU that takes PIC interrupts.
    pub(crate) fn pic_output(&self) -> bool {
        self.chips.lock().as_ref().is_some_and(|c| c.pic.output())
    }

    /// Marks the IOAPIC pins routed from `gsi` as having a resampler (a
    /// level irqfd), or not.
    pub(crate) fn set_resample_gsi(&self, gsi: u32, on: bool) {
        let mut guard = self.chips.lock();
        let Some(chips) = guard.as_deref_mut() else {
            return;
        };
        for pin in 0..irqchip::ioapic::IOAPIC_NUM_PINS as u8 {
            if chips.pin_map.gsi(irqchip::IrqChip::Ioapic, pin) == Some(gsi) {
                if on {
                    chips.resample_pins |= 1 << pin;
                } else {
                    chips.resample_pins &= !(1 << pin);
                }
            }
        }
    }

    /// Split irqchip: whether vCPU `vcpu`'s EOI of `vector` must exit to
    /// the userspace IOAPIC. `None` when the irqchip is not split.
    pub(crate) fn split_eoi_exit(&self, vcpu: &Vcpu, vector: u8) -> Option<bool> {
        let dest = vcpu.lapic()?.lock().dest_info();
        let cfg = self.bus_config();
        let guard = self.chips.lock();
        let chips = guard.as_deref()?;
        let pins = chips.split_pins?;
        Some(irqchip::routing::split_eoi_exit(
            &chips.routes,
            pins,
            vector,
            &dest,
            &cfg,
        ))
    }

    /// Whether LAPIC state uses the 32-bit x2APIC ID format.
    pub(crate) fn x2apic_format(&self) -> bool {
        self.bus_config().x2apic_format
    }

    /// The VM-wide addressing options KVM_CAP_X2APIC_API chose.
    fn bus_config(&self) -> BusConfig {
        let f = u32::from(self.x2apic_api.load(Ordering::Relaxed));
        BusConfig {
            x2apic_format: f & uapi::KVM_X2APIC_API_USE_32BIT_IDS != 0,
            broadcast_quirk_disabled: f & uapi::KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK != 0,
            msi_ext_dest_id: false,
        }
    }

    /// Whether the LAPIC version register offers directed EOI (suppress
    /// EOI broadcast): as enabled or disabled by KVM_CAP_X2APIC_API, else
    /// only with the IOAPIC in userspace (upstream's quirk).
    pub(crate) fn advertise_directed_eoi(&self) -> bool {
        let f = u32::from(self.x2apic_api.load(Ordering::Relaxed));
        if f & uapi::KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST != 0 {
            true
        } else if f & uapi::KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST != 0 {
            false
        } else {
            !self.is_full()
        }
    }

    /// Whether an EOI on a LAPIC whose SPIV asks to suppress broadcasts
    /// (`spiv_suppress`) is kept from the IOAPIC: always when enabled, never
    /// when disabled, else only for the in-kernel IOAPIC (upstream's
    /// quirk: a split irqchip's userspace IOAPIC hears every EOI).
    pub(crate) fn suppress_eoi_broadcast(&self, spiv_suppress: bool) -> bool {
        let f = u32::from(self.x2apic_api.load(Ordering::Relaxed));
        spiv_suppress
            && if f & uapi::KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST != 0 {
                true
            } else if f & uapi::KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST != 0 {
                false
            } else {
                self.is_full()
            }
    }
}

/// The VM's interrupt controllers (created by KVM_CREATE_IRQCHIP).
struct Chips {
    pic: Pic,
    ioapic: Ioapic,
    /// Created by KVM_CREATE_PIT2.
    pit: Option<Pit>,
    /// Armed by vCPU 0 for the PIT's next deadline.
    pit_timer: Option<DeviceTimer>,
    routes: KVec<RouteEntry>,
    pin_map: ChipPinMap,
    /// IOAPIC pins with a level irqfd (resampler) on their GSI.
    resample_pins: u32,
    /// KVM_CAP_SPLIT_IRQCHIP: only the LAPICs are in the kernel (the PIC,
    /// IOAPIC and PIT models here stay unreachable); the number of IOAPIC
    /// pins userspace reserved in the GSI space.
    split_pins: Option<u32>,
}

impl Chips {
    /// KVM_CREATE_IRQCHIP: everything in the kernel, upstream's default
    /// routing. With `split_pins`, KVM_CAP_SPLIT_IRQCHIP: an empty table.
    fn new(split_pins: Option<u32>) -> Result<KBox<Self>> {
        let mut routes = KVec::new();
        let mut pin_map = ChipPinMap::new();
        if split_pins.is_none() {
            routes.extend_from_slice(&irqchip::DEFAULT_ROUTES, GFP_KERNEL_ACCOUNT)?;
            pin_map = prepare_routes(&mut routes).map_err(|_| EINVAL)?;
        }
        Ok(KBox::new(
            Self {
                pic: Pic::new(),
                ioapic: Ioapic::new(),
                pit: None,
                pit_timer: None,
                routes,
                pin_map,
                resample_pins: 0,
                split_pins,
            },
            GFP_KERNEL_ACCOUNT,
        )?)
    }

    /// The PIC, IOAPIC and PIT are in the kernel (not split).
    fn full(&self) -> bool {
        self.split_pins.is_none()
    }
}

/// The vCPUs' local APICs as the models see them.
struct Bus<'a> {
    vcpus: &'a [Arc<Vcpu>],
    /// IOAPIC pins whose ack notifiers fired (run after the call).
    acked: u32,
    /// IOAPIC pins with a resampler: their resample source is lowered
    /// before the IOAPIC re-checks the line.
    resample_pins: u32,
    /// IOAPIC pins whose mask bit the guest changed, and their new mask
    /// bits (mask notifiers, run after the call).
    mask_changed: u32,
    masked: u32,
}

impl<'a> Bus<'a> {
    fn new(vcpus: &'a [Arc<Vcpu>], resample_pins: u32) -> Self {
        Self {
            vcpus,
            acked: 0,
            resample_pins,
            mask_changed: 0,
            masked: 0,
        }
    }
}

impl ApicBus for Bus<'_> {
    fn apic_count(&self) -> usize {
        self.vcpus.len()
    }

    fn dest_info(&self, index: usize) -> Option<ApicDestInfo> {
        Some(self.vcpus.get(index)?.lapic()?.lock().dest_info())
    }

    fn accept(&mut self, index: usize, irq: &Delivery) -> bool {
        let Some(v) = self.vcpus.get(index) else {
            return false;
        };
        let Some(lapic) = v.lapic() else { return false };
        trace::kvm_apic_accept_irq(
            v.id(),
            (irq.delivery_mode.bits() << 8) as u16,
            u16::from(irq.trigger == TriggerMode::Level),
            irq.vector,
        );
        let ok = lapic.lock().accept_irq(irq);
        if ok {
            v.kick().post(REQ_EVENT);
        }
        ok
    }

    fn pending_eoi(&self, index: usize, vector: u8) -> bool {
        self.vcpus
            .get(index)
            .and_then(|v| v.lapic())
            .is_some_and(|l| l.lock().vector_pending_eoi(vector))
    }
}

impl IoapicEnv for Bus<'_> {
    fn irq_acked(&mut self, pin: u8) -> u32 {
        let bit = 1u32.checked_shl(u32::from(pin)).unwrap_or(0);
        self.acked |= bit;
        if self.resample_pins & bit != 0 {
            1 << irqchip::routing::IRQFD_RESAMPLE_IRQ_SOURCE_ID
        } else {
            0
        }
    }

    fn mask_changed(&mut self, pin: u8, masked: bool) {
        let bit = 1u32.checked_shl(u32::from(pin)).unwrap_or(0);
        self.mask_changed |= bit;
        if masked {
            self.masked |= bit;
        } else {
            self.masked &= !bit;
        }
    }
}

/// `routing::set_irq`'s view of the chips.
struct Lines<'a, 'b> {
    chips: &'a mut Chips,
    bus: &'a mut Bus<'b>,
    cfg: BusConfig,
}

impl IrqLines for Lines<'_, '_> {
    fn set_pic_irq(&mut self, pin: u8, source_id: u32, level: bool) -> i32 {
        let r = self.chips.pic.set_irq(pin, source_id, level);
        if trace::kvm_pic_set_irq_enabled() {
            let chip = if pin < 8 {
                PicChip::Master
            } else {
                PicChip::Slave
            };
            let st = self.chips.pic.get_state(chip);
            trace::kvm_pic_set_irq(pin >> 3, pin & 7, st.elcr, st.imr, r == 0);
        }
        r
    }

    fn set_ioapic_irq(&mut self, pin: u8, source_id: u32, level: bool, line_status: bool) -> i32 {
        self.chips
            .ioapic
            .set_irq(self.bus, usize::from(pin), source_id, level, line_status)
    }

    fn set_msi(&mut self, route: &irqchip::routing::MsiRoute, level: bool) -> i32 {
        trace_msi(&route.msg);
        irqchip::signal_msi(self.bus, &route.msg, level, &self.cfg)
    }
}

// --- functions over the whole VM -------------------------------------------

/// KVM_CREATE_IRQCHIP: `EEXIST` if done, `EINVAL` once vCPUs exist.
pub(crate) fn create_irqchip(vm: &Vm) -> Result {
    // Allocated before the IRQ-safe lock (the allocation may sleep).
    let mut new = Chips::new(None)?;
    new.ioapic.set_bus_config(vm.arch().irqchip().bus_config());
    let mut c = vm.arch().irqchip().chips.lock();
    if c.is_some() {
        return Err(EEXIST);
    }
    if !vm.vcpus().is_empty() {
        return Err(EINVAL);
    }
    *c = Some(new);
    vm.arch()
        .irqchip()
        .mode
        .store(IRQCHIP_FULL, Ordering::Release);
    Ok(())
}

/// KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP): LAPICs in the kernel, the
/// IOAPIC (with `pins` GSIs reserved for its routes) and PIC in
/// userspace. As upstream: `EINVAL` for too many pins, `EEXIST` with
/// an irqchip or a vCPU already there.
pub(crate) fn enable_split_irqchip(vm: &Vm, pins: u64) -> Result {
    if pins > u64::from(irqchip::uapi::KVM_MAX_IRQ_ROUTES) {
        return Err(EINVAL);
    }
    // Allocated before the IRQ-safe lock.
    let new = Chips::new(Some(pins as u32))?;
    let mut c = vm.arch().irqchip().chips.lock();
    if c.is_some() || !vm.vcpus().is_empty() {
        return Err(EEXIST);
    }
    *c = Some(new);
    vm.arch()
        .irqchip()
        .mode
        .store(IRQCHIP_SPLIT, Ordering::Release);
    Ok(())
}

/// KVM_ENABLE_CAP(KVM_CAP_X2APIC_API): 32-bit x2APIC IDs in LAPIC state
/// and MSI routes, no broadcast quirk, and the suppress-EOI-broadcast
/// mode (enabling it needs a split irqchip); flags accumulate, as
/// upstream's.
pub(crate) fn enable_x2apic_api(vm: &Vm, flags: u64) -> Result {
    let enable = u64::from(uapi::KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST);
    let disable = u64::from(uapi::KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST);
    if flags & !X2APIC_API_VALID_FLAGS != 0
        || (flags & enable != 0 && flags & disable != 0)
        || (flags & enable != 0 && !vm.arch().irqchip().is_split())
    {
        return Err(EINVAL);
    }
    let chip = vm.arch().irqchip();
    let mut guard = chip.chips.lock();
    let f = flags as u8;
    let old = chip.x2apic_api.load(Ordering::Relaxed);
    let new = if f & SUPPRESS_EOI_MODES != 0 {
        (old & !SUPPRESS_EOI_MODES) | f
    } else {
        old | f
    };
    chip.x2apic_api.store(new, Ordering::Relaxed);
    if let Some(chips) = guard.as_deref_mut() {
        chips.ioapic.set_bus_config(chip.bus_config());
    }
    Ok(())
}

/// Sends `irq` (an IPI from vCPU `source`, or a device message) to the
/// LAPICs it addresses; upstream's delivery count semantics.
pub(crate) fn deliver(vm: &Vm, source: Option<usize>, irq: &Delivery) -> i32 {
    let cfg = vm.arch().irqchip().bus_config();
    let v = vm.vcpus().lock();
    let mut bus = Bus::new(&v, 0);
    deliver_to_bus(&mut bus, source, irq, &cfg)
}

/// A LAPIC EOI'd a vector: the IOAPIC clears remote IRR and re-checks
/// level lines; ack notifiers (PIT reinjection) run after.
pub(crate) fn ioapic_eoi(
    vm: &Vm,
    vcpu_index: usize,
    vector: u8,
    trigger: TriggerMode,
    suppress: bool,
) {
    let mut gsis = [u32::MAX; irqchip::ioapic::IOAPIC_NUM_PINS];
    {
        let mut guard = vm.arch().irqchip().chips.lock();
        let Some(chips) = guard.as_deref_mut() else {
            return;
        };
        let acked = {
            let v = vm.vcpus().lock();
            let mut bus = Bus::new(&v, chips.resample_pins);
            chips
                .ioapic
                .eoi(&mut bus, vcpu_index, vector, trigger, suppress);
            bus.acked
        };
        for (pin, g) in gsis.iter_mut().enumerate() {
            if acked & chips.resample_pins & (1 << pin) != 0 {
                *g = chips
                    .pin_map
                    .gsi(irqchip::IrqChip::Ioapic, pin as u8)
                    .unwrap_or(u32::MAX);
            }
        }
        after_acks(vm, chips, acked);
    }
    // Resamplers signal userspace outside the chips lock.
    resample(vm, &gsis);
}

/// Ack notifiers for IOAPIC pins in `acked`: the PIT's reinjection when
/// one of them is routed from GSI 0 (upstream's kvm_notify_acked_irq()
/// maps the pin through the routing table; irqfd resamplers come with
/// irqfd).
fn after_acks(vm: &Vm, chips: &mut Chips, acked: u32) {
    if !any_pin_of_gsi0(chips, false, acked) {
        return;
    }
    let again = chips.pit.as_mut().is_some_and(|p| p.irq_acked());
    if again {
        pulse_gsi0(vm, chips);
    }
}

/// Whether a pin in `pins` is routed from GSI 0, the PIT's: PIC pins
/// 0-15 (`pic`) or IOAPIC pins.
fn any_pin_of_gsi0(chips: &Chips, pic: bool, pins: u32) -> bool {
    (0..32u8)
        .filter(|p| pins & (1 << p) != 0)
        .any(|p| pin_gsi(chips, pic, p) == Some(0))
}

fn pin_gsi(chips: &Chips, pic: bool, pin: u8) -> Option<u32> {
    if pic {
        chips.pin_map.pic_gsi(pin)
    } else {
        chips.pin_map.gsi(irqchip::IrqChip::Ioapic, pin)
    }
}

/// Mask notifiers for the PIC (`pic`) or IOAPIC pins in `changed`, whose
/// mask bits are now those in `masked`: unmasking a pin routed from GSI 0
/// makes the PIT forget the ticks it kept for reinjection (upstream's
/// pit_mask_notifer() through kvm_fire_mask_notifiers()).
fn mask_notifiers(chips: &mut Chips, pic: bool, changed: u32, masked: u32) {
    for pin in (0..32u8).filter(|p| changed & (1 << p) != 0) {
        if pin_gsi(chips, pic, pin) == Some(0) {
            if let Some(pit) = chips.pit.as_mut() {
                pit.irq_mask_changed(masked & (1 << pin) != 0);
            }
        }
    }
}

/// The PIT's interrupt: GSI 0 up and down (routes to PIC pin 0 and
/// IOAPIC pin 2), plus LINT0 in NMI mode on every LAPIC.
fn pulse_gsi0(vm: &Vm, chips: &mut Chips) {
    let cfg = vm.arch().irqchip().bus_config();
    let v = vm.vcpus().lock();
    let mut bus = Bus::new(&v, 0);
    // The table is not needed by the chips while we deliver.
    let routes = core::mem::take(&mut chips.routes);
    for level in [true, false] {
        let mut lines = Lines {
            chips: &mut *chips,
            bus: &mut bus,
            cfg,
        };
        irqchip::set_irq(
            routes_for_gsi(&routes, 0),
            &mut lines,
            irqchip::i8254::PIT_IRQ_SOURCE_ID,
            level,
            false,
        );
    }
    chips.routes = routes;
    for vcpu in v.iter() {
        let delivered = vcpu.lapic().is_some_and(|l| {
            let mut l = l.lock();
            l.lvt0_in_nmi_mode() && l.deliver_lvt(irqchip::Lvt::Lint0)
        });
        // Posted after the LAPIC lock is dropped (as every kick).
        if delivered {
            vcpu.kick().post(REQ_EVENT);
        }
    }
    drop(v);
    pic_wakeup(vm, chips);
}

/// The PIC raised INTR: wake the vCPU that takes PIC interrupts.
fn pic_wakeup(vm: &Vm, chips: &mut Chips) {
    if !chips.pic.take_wakeup() {
        return;
    }
    let v = vm.vcpus().lock();
    for vcpu in v.iter() {
        if vcpu
            .lapic()
            .is_some_and(|l| l.lock().accepts_pic_interrupts())
        {
            vcpu.kick().post(REQ_EVENT);
            break;
        }
    }
}

/// Raises or lowers `gsi` from `source` (irqfds): `ENXIO` without an
/// in-kernel irqchip.
pub(crate) fn set_gsi(vm: &Vm, gsi: u32, level: bool, source: u32) -> Result<i32> {
    set_gsi_status(vm, gsi, level, source, false)
}

/// KVM_IRQ_LINE, and KVM_IRQ_LINE_STATUS (`status`), which reports the
/// delivery result back in `status`.
pub(crate) fn irq_line(vm: &Vm, arg: usize, status: bool) -> Result {
    let mut l: uapi::kvm_irq_level = read_arg(arg)?;
    let r = set_gsi_status(vm, l.irq(), l.level != 0, USERSPACE_SOURCE, status)?;
    if status {
        l.__bindgen_anon_1.status = r;
        write_arg(arg, &l)?;
    }
    Ok(())
}

/// Raises or lowers `gsi` from `source`; KVM_IRQ_LINE_STATUS's value.
fn set_gsi_status(vm: &Vm, gsi: u32, level: bool, source: u32, line_status: bool) -> Result<i32> {
    trace::kvm_set_irq(gsi, level.into(), source as i32);
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut().ok_or(ENXIO)?;
    let cfg = vm.arch().irqchip().bus_config();
    let routes = core::mem::take(&mut chips.routes);
    let (r, acked) = {
        let v = vm.vcpus().lock();
        let mut bus = Bus::new(&v, 0);
        let mut lines = Lines {
            chips: &mut *chips,
            bus: &mut bus,
            cfg,
        };
        let r = irqchip::set_irq(
            routes_for_gsi(&routes, gsi),
            &mut lines,
            source,
            level,
            line_status,
        );
        (r, bus.acked)
    };
    chips.routes = routes;
    pic_wakeup(vm, chips);
    after_acks(vm, chips, acked);
    Ok(r)
}

/// INTA cycle: the PIC's vector.
pub(crate) fn pic_intack(vm: &Vm) -> Option<u8> {
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut()?;
    if !chips.pic.output() {
        return None;
    }
    let v = chips.pic.intack();
    let gsis = pic_acks(vm, chips);
    drop(guard);
    resample(vm, &gsis);
    Some(v)
}

/// Ack notifiers for the PIC pins an EOI or auto-EOI retired: the PIT's
/// reinjection on IRQ0 now; the GSIs whose irqfd resamplers must be
/// told are returned, for after the chips lock.
fn pic_acks(vm: &Vm, chips: &mut Chips) -> [u32; 16] {
    let acked = chips.pic.take_acked_pins();
    let mut gsis = [u32::MAX; 16];
    if acked == 0 {
        return gsis;
    }
    if any_pin_of_gsi0(chips, true, acked.into())
        && chips.pit.as_mut().is_some_and(|p| p.irq_acked())
    {
        pulse_gsi0(vm, chips);
    }
    for (pin, g) in gsis
        .iter_mut()
        .enumerate()
        .filter(|(pin, _)| acked & (1 << pin) != 0)
    {
        let (chip, p) = if pin < 8 {
            (irqchip::IrqChip::PicMaster, pin as u8)
        } else {
            (irqchip::IrqChip::PicSlave, pin as u8 - 8)
        };
        *g = chips.pin_map.gsi(chip, p).unwrap_or(u32::MAX);
    }
    gsis
}

/// Signals the resamplers of `gsis` (no chips lock held); level irqfds
/// on them lower their line until signalled again.
fn resample(vm: &Vm, gsis: &[u32]) {
    for g in gsis.iter().filter(|g| **g != u32::MAX) {
        if vm.irqfds().acked(*g) {
            let _ = set_gsi(
                vm,
                *g,
                false,
                irqchip::routing::IRQFD_RESAMPLE_IRQ_SOURCE_ID,
            );
        }
    }
}

/// vCPU 0's PIT duty: deliver due ticks, arm the timer for the next.
pub(crate) fn service_pit(vm: &Vm, vcpu: &Vcpu) -> Result {
    let need_timer = vm
        .arch()
        .irqchip()
        .chips
        .lock()
        .as_deref()
        .is_some_and(|c| c.pit.is_some() && c.pit_timer.is_none());
    // Allocated without the (IRQ-safe) lock held.
    let mut new_timer = if need_timer {
        Some(DeviceTimer::new(vcpu.kick().clone(), REQ_PIT)?)
    } else {
        None
    };
    let mut guard = vm.arch().irqchip().chips.lock();
    let Some(chips) = guard.as_deref_mut() else {
        return Ok(());
    };
    let Some(pit) = chips.pit.as_mut() else {
        return Ok(());
    };
    if pit.service(now_ns()) {
        pulse_gsi0(vm, chips);
    }
    let deadline = chips.pit.as_ref().and_then(|p| p.next_deadline_ns());
    if chips.pit_timer.is_none() {
        chips.pit_timer = new_timer.take();
    }
    if let Some(t) = chips.pit_timer.as_mut() {
        t.set(deadline);
    }
    Ok(())
}

/// PIC/PIT/ELCR/speaker ports: `None` if not an in-kernel port.
pub(crate) fn pio(vm: &Vm, port: u16, write: bool, data: &mut [u8]) -> Option<()> {
    use irqchip::i8254::{PIT_BASE_PORT, PIT_PORT_COUNT, SPEAKER_PORT};
    use irqchip::i8259::*;
    let is_pic = matches!(
        port,
        PIC_MASTER_CMD
            | PIC_MASTER_DATA
            | PIC_SLAVE_CMD
            | PIC_SLAVE_DATA
            | PIC_ELCR_MASTER
            | PIC_ELCR_SLAVE
    );
    let is_pit =
        (PIT_BASE_PORT..PIT_BASE_PORT + PIT_PORT_COUNT).contains(&port) || port == SPEAKER_PORT;
    if !is_pic && !is_pit {
        return None;
    }
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut().filter(|c| c.full())?;
    if is_pit && chips.pit.is_none() {
        return None;
    }
    // The 8-bit devices only answer byte accesses; others read 0.
    if data.len() != 1 {
        if !write {
            data.fill(0);
        }
        return Some(());
    }
    let now = now_ns();
    if is_pic {
        // Writes may EOI and reads may poll: either can retire an IRQ.
        if write {
            chips.pic.port_write(port, data[0]);
            let changed = chips.pic.take_mask_changes();
            let masked = (0..16u8)
                .filter(|p| chips.pic.pin_masked(*p))
                .fold(0u32, |m, p| m | 1 << p);
            mask_notifiers(chips, true, changed.into(), masked);
        } else {
            data[0] = chips.pic.port_read(port);
        }
        let gsis = pic_acks(vm, chips);
        pic_wakeup(vm, chips);
        drop(guard);
        resample(vm, &gsis);
    } else if let Some(pit) = chips.pit.as_mut() {
        match (port == SPEAKER_PORT, write) {
            (true, true) => pit.speaker_write(data[0], now),
            (true, false) => data[0] = pit.speaker_read(now),
            (false, true) => pit.port_write(port, data[0], now),
            (false, false) => data[0] = pit.port_read(port, now),
        }
        if write {
            // A reprogrammed channel 0 changes the deadline: let vCPU 0
            // re-arm.
            kick_vcpu0(vm);
        }
    }
    Some(())
}

fn kick_vcpu0(vm: &Vm) {
    if let Some(v) = vm.vcpus().lock().first() {
        v.kick().post(REQ_PIT);
    }
}

/// IOAPIC MMIO: `None` if `gpa` is not the IOAPIC's.
pub(crate) fn ioapic_mmio(vm: &Vm, gpa: u64, write: bool, data: &mut [u8]) -> Option<()> {
    use irqchip::ioapic::IOAPIC_MEM_LENGTH;
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut().filter(|c| c.full())?;
    let base = chips.ioapic.base_address();
    if gpa < base || gpa >= base + IOAPIC_MEM_LENGTH {
        return None;
    }
    let (acked, mask_changed, masked) = {
        let v = vm.vcpus().lock();
        let mut bus = Bus::new(&v, 0);
        if write {
            chips.ioapic.mmio_write(&mut bus, gpa - base, data);
        } else {
            chips.ioapic.mmio_read(gpa - base, data);
        }
        (bus.acked, bus.mask_changed, bus.masked)
    };
    mask_notifiers(chips, false, mask_changed, masked);
    after_acks(vm, chips, acked);
    Some(())
}

/// KVM_GET_IRQCHIP.
pub(crate) fn get_irqchip(vm: &Vm, arg: usize) -> Result {
    let mut c: uapi::kvm_irqchip = read_arg(arg)?;
    let guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref().filter(|c| c.full()).ok_or(ENXIO)?;
    // `chip` is a 512-byte union of plain-data images: one of them.
    match c.chip_id {
        uapi::KVM_IRQCHIP_PIC_MASTER => {
            c.set_chip_bytes(chips.pic.get_state(PicChip::Master).as_bytes())
        }
        uapi::KVM_IRQCHIP_PIC_SLAVE => {
            c.set_chip_bytes(chips.pic.get_state(PicChip::Slave).as_bytes())
        }
        uapi::KVM_IRQCHIP_IOAPIC => c.set_chip_bytes(chips.ioapic.get_state().as_bytes()),
        _ => return Err(EINVAL),
    }
    drop(guard);
    write_arg(arg, &c)
}

/// KVM_SET_IRQCHIP.
pub(crate) fn set_irqchip(vm: &Vm, arg: usize) -> Result {
    let c: uapi::kvm_irqchip = read_arg(arg)?;
    // The union's bytes, read below as the chosen image type.
    let bytes = c.chip_bytes();
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut().filter(|c| c.full()).ok_or(ENXIO)?;
    match c.chip_id {
        uapi::KVM_IRQCHIP_PIC_MASTER | uapi::KVM_IRQCHIP_PIC_SLAVE => {
            let (s, _) =
                irqchip::uapi::KvmPicState::from_bytes_copy_prefix(&bytes).ok_or(EINVAL)?;
            let which = if c.chip_id == uapi::KVM_IRQCHIP_PIC_MASTER {
                PicChip::Master
            } else {
                PicChip::Slave
            };
            chips.pic.set_state(which, &s);
            pic_wakeup(vm, chips);
        }
        uapi::KVM_IRQCHIP_IOAPIC => {
            let (s, _) =
                irqchip::uapi::KvmIoapicState::from_bytes_copy_prefix(&bytes).ok_or(EINVAL)?;
            let v = vm.vcpus().lock();
            let mut bus = Bus::new(&v, 0);
            chips.ioapic.set_state(&mut bus, &s);
        }
        _ => return Err(EINVAL),
    }
    Ok(())
}

/// KVM_SET_GSI_ROUTING.
pub(crate) fn set_gsi_routing(vm: &Vm, arg: usize) -> Result {
    let hdr: uapi::kvm_irq_routing = read_arg(arg)?;
    if hdr.nr > irqchip::uapi::KVM_MAX_IRQ_ROUTES || hdr.flags != 0 {
        return Err(EINVAL);
    }
    let cfg = vm.arch().irqchip().bus_config();
    let n = hdr.nr as usize;
    let entries: KVec<irqchip::uapi::KvmIrqRoutingEntry> =
        read_array(arg + core::mem::size_of::<uapi::kvm_irq_routing>(), n)?;
    let mut routes = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for e in entries.iter() {
        routes.push(
            RouteEntry::from_uapi(e, &cfg).map_err(|_| EINVAL)?,
            GFP_KERNEL_ACCOUNT,
        )?;
    }
    let pin_map = prepare_routes(&mut routes).map_err(|_| EINVAL)?;
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut().ok_or(EINVAL)?;
    // Split: the irqchips are userspace's, only MSI routes are ours.
    if !chips.full()
        && routes
            .iter()
            .any(|r| matches!(r.target, irqchip::RouteTarget::Irqchip { .. }))
    {
        return Err(EINVAL);
    }
    chips.routes = routes;
    chips.pin_map = pin_map;
    Ok(())
}

/// KVM_SIGNAL_MSI.
pub(crate) fn signal_msi(vm: &Vm, arg: usize) -> Result<isize> {
    let m: uapi::kvm_msi = read_arg(arg)?;
    if !vm.arch().irqchip().in_kernel() || m.flags & !uapi::KVM_MSI_VALID_DEVID != 0 {
        return Err(EINVAL);
    }
    let cfg = vm.arch().irqchip().bus_config();
    let msg = irqchip::MsiMessage {
        address_lo: m.address_lo,
        address_hi: m.address_hi,
        data: m.data,
    };
    let v = vm.vcpus().lock();
    let mut bus = Bus::new(&v, 0);
    trace_msi(&msg);
    let r = irqchip::signal_msi(&mut bus, &msg, true, &cfg);
    if r < 0 && r == -irqchip::msi::EINVAL {
        return Err(EINVAL);
    }
    Ok(r as isize)
}

/// KVM_CREATE_PIT2.
pub(crate) fn create_pit2(vm: &Vm, arg: usize) -> Result {
    let _cfg: uapi::kvm_pit_config = read_arg(arg)?;
    let mut guard = vm.arch().irqchip().chips.lock();
    let chips = guard.as_deref_mut().ok_or(ENOENT)?;
    if chips.pit.is_some() {
        return Err(EEXIST);
    }
    // The PIT needs the in-kernel PIC (upstream: ENOENT).
    if !chips.full() {
        return Err(ENOENT);
    }
    chips.pit = Some(Pit::new(now_ns()));
    drop(guard);
    kick_vcpu0(vm);
    Ok(())
}

/// KVM_GET_PIT2.
pub(crate) fn get_pit2(vm: &Vm, arg: usize) -> Result {
    let guard = vm.arch().irqchip().chips.lock();
    let pit = guard.as_deref().and_then(|c| c.pit.as_ref()).ok_or(ENXIO)?;
    let s = pit.get_state2();
    drop(guard);
    write_arg(arg, &s)
}

/// KVM_SET_PIT2.
pub(crate) fn set_pit2(vm: &Vm, arg: usize) -> Result {
    let s: irqchip::uapi::KvmPitState2 = read_arg(arg)?;
    let mut guard = vm.arch().irqchip().chips.lock();
    let pit = guard
        .as_deref_mut()
        .and_then(|c| c.pit.as_mut())
        .ok_or(ENXIO)?;
    pit.set_state2(&s, now_ns());
    drop(guard);
    kick_vcpu0(vm);
    Ok(())
}

// SAFETY: the irqchip uapi mirrors are `repr(C)` integer structs without
// implicit padding (layouts checked against the C uapi by the irqchip host
// tests): every bit pattern is valid and no byte is uninitialised.
unsafe impl kernel::transmute::FromBytes for irqchip::uapi::KvmLapicState {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for irqchip::uapi::KvmLapicState {}
// SAFETY: as above.
unsafe impl kernel::transmute::FromBytes for irqchip::uapi::KvmPitState2 {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for irqchip::uapi::KvmPitState2 {}
// SAFETY: as above.
unsafe impl kernel::transmute::FromBytes for irqchip::uapi::KvmIrqRoutingEntry {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for irqchip::uapi::KvmPicState {}
// SAFETY: as above.
unsafe impl kernel::transmute::FromBytes for irqchip::uapi::KvmPicState {}
// SAFETY: as above.
unsafe impl kernel::transmute::AsBytes for irqchip::uapi::KvmIoapicState {}
// SAFETY: as above.
unsafe impl kernel::transmute::FromBytes for irqchip::uapi::KvmIoapicState {}

/// kvm_msi_set_irq for an MSI about to be delivered.
fn trace_msi(m: &irqchip::MsiMessage) {
    let address = u64::from(m.address_hi) << 32 | u64::from(m.address_lo);
    trace::kvm_msi_set_irq(address, m.data.into());
}
