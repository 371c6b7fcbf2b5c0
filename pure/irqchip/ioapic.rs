//! 82093AA-style I/O APIC with 24 pins (upstream `arch/x86/kvm/ioapic.c`).
//!
//! Pins are driven by [`Ioapic::set_irq`] (one bit per IRQ source, wired
//! OR); an asserted, unmasked pin sends its redirection entry as a
//! [`Delivery`] over the [`ApicBus`]. Level-triggered pins set remote IRR
//! when delivered and wait for the LAPIC EOI ([`Ioapic::eoi`]); a pin whose
//! line is still asserted at EOI is delivered again.

use super::apic_bus::{deliver_observed, matches_dest, ApicBus, BusConfig};
use super::delivery::{
    Delivery, DeliveryMode, DestMode, Shorthand, TriggerMode, DELIVERY_MODE_SHIFT,
};
use super::uapi::{KvmIoapicState, KVM_IOAPIC_NUM_PINS};

/// Number of pins.
pub const IOAPIC_NUM_PINS: usize = KVM_IOAPIC_NUM_PINS;
/// Default MMIO base.
pub const IOAPIC_DEFAULT_BASE_ADDRESS: u64 = 0xfec0_0000;
/// Size of the MMIO window.
pub const IOAPIC_MEM_LENGTH: u64 = 0x100;
/// Version register value (version 0x11, max redirection entry 23).
pub const IOAPIC_VERSION_REG: u32 = ((IOAPIC_NUM_PINS as u32 - 1) << 16) | IOAPIC_VERSION_ID;
/// Implementation version.
pub const IOAPIC_VERSION_ID: u32 = 0x11;
/// Direct register: index select.
pub const IOAPIC_REG_SELECT: u64 = 0x00;
/// Direct register: data window.
pub const IOAPIC_REG_WINDOW: u64 = 0x10;
/// Indirect register: ID.
pub const IOAPIC_REG_APIC_ID: u32 = 0x00;
/// Indirect register: version.
pub const IOAPIC_REG_VERSION: u32 = 0x01;
/// Indirect register: arbitration ID.
pub const IOAPIC_REG_ARB_ID: u32 = 0x02;
/// Indirect register: first redirection-table word.
pub const IOAPIC_REG_REDIR_BASE: u32 = 0x10;
/// IOREGSEL is an 8-bit register.
pub const IOAPIC_REGSEL_MASK: u32 = 0xff;
/// ID field position in the ID/arbitration registers.
pub const IOAPIC_ID_SHIFT: u32 = 24;
/// ID field width.
pub const IOAPIC_ID_MASK: u32 = 0xf;
/// The pin the RTC is wired to (EOI tracking for coalesced-tick reports).
pub const RTC_GSI: usize = 8;
/// vCPU indices tracked for RTC EOI bookkeeping.
pub const RTC_MAX_VCPUS: usize = 1024;
/// Back-to-back EOI re-deliveries of one level pin before the model asks
/// the caller to defer the next one (interrupt storm mitigation).
pub const IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT: u32 = 10_000;
/// Suggested delay of a deferred re-delivery (upstream: HZ / 100).
pub const IOAPIC_EOI_REINJECT_DELAY_NS: u64 = 10_000_000;

/// One redirection-table entry (the raw 64-bit format).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedirEntry(pub u64);

impl RedirEntry {
    /// Vector (bits 7:0).
    pub const VECTOR_MASK: u64 = 0xff;
    /// Logical destination mode (bit 11).
    pub const DEST_LOGICAL: u64 = 1 << 11;
    /// Delivery status (bit 12, read-only).
    pub const DELIVERY_STATUS: u64 = 1 << 12;
    /// Active-low polarity (bit 13).
    pub const POLARITY: u64 = 1 << 13;
    /// Remote IRR (bit 14, read-only).
    pub const REMOTE_IRR: u64 = 1 << 14;
    /// Level triggered (bit 15).
    pub const LEVEL: u64 = 1 << 15;
    /// Masked (bit 16).
    pub const MASKED: u64 = 1 << 16;
    /// Destination field shift (bits 63:56).
    pub const DEST_SHIFT: u32 = 56;

    /// Vector.
    pub const fn vector(self) -> u8 {
        (self.0 & Self::VECTOR_MASK) as u8
    }
    /// Delivery mode.
    pub const fn delivery_mode(self) -> DeliveryMode {
        DeliveryMode::from_bits((self.0 >> DELIVERY_MODE_SHIFT) as u32)
    }
    /// Destination mode.
    pub const fn dest_mode(self) -> DestMode {
        DestMode::from_logical(self.0 & Self::DEST_LOGICAL != 0)
    }
    /// Trigger mode.
    pub const fn trigger(self) -> TriggerMode {
        TriggerMode::from_level(self.0 & Self::LEVEL != 0)
    }
    /// Masked.
    pub const fn masked(self) -> bool {
        self.0 & Self::MASKED != 0
    }
    /// Remote IRR.
    pub const fn remote_irr(self) -> bool {
        self.0 & Self::REMOTE_IRR != 0
    }
    /// 8-bit destination.
    pub const fn dest_id(self) -> u8 {
        (self.0 >> Self::DEST_SHIFT) as u8
    }
    fn with(self, bit: u64, on: bool) -> Self {
        Self(if on { self.0 | bit } else { self.0 & !bit })
    }
    /// The message this entry sends (`level` is always asserted).
    pub const fn delivery(self) -> Delivery {
        Delivery {
            vector: self.vector(),
            delivery_mode: self.delivery_mode(),
            dest_mode: self.dest_mode(),
            trigger: self.trigger(),
            level: true,
            shorthand: Shorthand::None,
            dest_id: self.dest_id() as u32,
            msi_redir_hint: false,
        }
    }
}

/// The VM-side services the IOAPIC needs besides the APIC bus.
pub trait IoapicEnv: ApicBus {
    /// Ack notifiers for `pin` (irqfd resamplers, PIT reinjection) run at
    /// EOI time, before remote IRR is cleared and the pin re-evaluated.
    /// Return a mask of IRQ source ids whose line on this pin must be
    /// lowered first (a resampler lowers its source, then signals its
    /// resamplefd; it must also lower the PIC side of the GSI itself).
    fn irq_acked(&mut self, _pin: u8) -> u32 {
        0
    }
    /// A level pin with a pending request was unmasked (or re-programmed)
    /// while not waiting for EOI. Return `true` if an irqfd resampler owns
    /// the pin: the pending request is then dropped and the resampler
    /// notified instead of re-delivering a possibly stale interrupt.
    fn notify_resampler(&mut self, _pin: u8) -> bool {
        false
    }
    /// The guest changed the mask bit of `pin` (mask notifiers: the PIT
    /// resets its reinjection state when GSI 0 is unmasked).
    fn mask_changed(&mut self, _pin: u8, _masked: bool) {}
}

/// Outcome of an EOI broadcast.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoapicEoiResult {
    /// Pins whose ack notifiers ran (bit per pin).
    pub acked_pins: u32,
    /// An interrupt storm was detected: call
    /// [`Ioapic::deferred_reinject`] after ~[`IOAPIC_EOI_REINJECT_DELAY_NS`].
    pub deferred_reinject: bool,
}

/// RTC (GSI 8) EOI tracking: lets KVM_IRQ_LINE_STATUS report a coalesced
/// RTC tick while the previous one is still unacknowledged somewhere.
#[derive(Clone, Debug)]
struct RtcTracker {
    pending_eoi: u32,
    map: [u64; RTC_MAX_VCPUS / 64],
    vectors: [u8; RTC_MAX_VCPUS],
}

impl RtcTracker {
    const fn new() -> Self {
        Self {
            pending_eoi: 0,
            map: [0; RTC_MAX_VCPUS / 64],
            vectors: [0; RTC_MAX_VCPUS],
        }
    }
    fn reset(&mut self) {
        self.pending_eoi = 0;
        self.map = [0; RTC_MAX_VCPUS / 64];
    }
    fn test(&self, vcpu: usize) -> bool {
        self.map
            .get(vcpu / 64)
            .is_some_and(|w| w & (1u64 << (vcpu % 64)) != 0)
    }
    fn set(&mut self, vcpu: usize, vector: u8) {
        if self.test(vcpu) {
            return;
        }
        if let (Some(word), Some(slot)) = (self.map.get_mut(vcpu / 64), self.vectors.get_mut(vcpu))
        {
            *word |= 1u64 << (vcpu % 64);
            *slot = vector;
            self.pending_eoi = self.pending_eoi.saturating_add(1);
        }
    }
    fn clear(&mut self, vcpu: usize) {
        if !self.test(vcpu) {
            return;
        }
        if let Some(word) = self.map.get_mut(vcpu / 64) {
            *word &= !(1u64 << (vcpu % 64));
            self.pending_eoi = self.pending_eoi.saturating_sub(1);
        }
    }
    fn eoi(&mut self, vcpu: usize, vector: u8) {
        if self.test(vcpu) && self.vectors.get(vcpu) == Some(&vector) {
            self.clear(vcpu);
        }
    }
}

/// The I/O APIC.
#[derive(Clone, Debug)]
pub struct Ioapic {
    base_address: u64,
    ioregsel: u32,
    id: u32,
    irr: u32,
    irr_delivered: u32,
    redirtbl: [RedirEntry; IOAPIC_NUM_PINS],
    irq_states: [u32; IOAPIC_NUM_PINS],
    irq_eoi: [u32; IOAPIC_NUM_PINS],
    rtc: RtcTracker,
    bus_cfg: BusConfig,
}

impl Default for Ioapic {
    fn default() -> Self {
        Self::new()
    }
}

const fn pin_bit(pin: usize) -> u32 {
    if pin < IOAPIC_NUM_PINS {
        1 << pin
    } else {
        0
    }
}

impl Ioapic {
    /// An IOAPIC after reset: every pin masked.
    pub const fn new() -> Self {
        Self {
            base_address: IOAPIC_DEFAULT_BASE_ADDRESS,
            ioregsel: 0,
            id: 0,
            irr: 0,
            irr_delivered: 0,
            redirtbl: [RedirEntry(RedirEntry::MASKED); IOAPIC_NUM_PINS],
            irq_states: [0; IOAPIC_NUM_PINS],
            irq_eoi: [0; IOAPIC_NUM_PINS],
            rtc: RtcTracker::new(),
            bus_cfg: BusConfig {
                x2apic_format: false,
                broadcast_quirk_disabled: false,
                msi_ext_dest_id: false,
            },
        }
    }

    /// Reset (upstream `kvm_ioapic_reset()`): masks every pin, keeps the
    /// other entry bits and the source line states.
    pub fn reset(&mut self) {
        for e in &mut self.redirtbl {
            *e = e.with(RedirEntry::MASKED, true);
        }
        self.base_address = IOAPIC_DEFAULT_BASE_ADDRESS;
        self.ioregsel = 0;
        self.irr = 0;
        self.irr_delivered = 0;
        self.id = 0;
        self.irq_eoi = [0; IOAPIC_NUM_PINS];
        self.rtc.reset();
    }

    /// Sets the VM-wide addressing options used for deliveries.
    pub fn set_bus_config(&mut self, cfg: BusConfig) {
        self.bus_cfg = cfg;
    }

    /// Guest-physical MMIO base (from KVM_SET_IRQCHIP; default 0xfec00000).
    pub fn base_address(&self) -> u64 {
        self.base_address
    }

    /// Redirection entry of `pin`.
    pub fn entry(&self, pin: usize) -> Option<RedirEntry> {
        self.redirtbl.get(pin).copied()
    }

    /// Pending-request register (asserted pins).
    pub fn irr(&self) -> u32 {
        self.irr
    }

    // ---- pins -------------------------------------------------------------

    /// Drives `pin` from IRQ source `source_id` (0..31; the line is the OR
    /// of all sources). Returns KVM_IRQ_LINE_STATUS semantics: > 0 number
    /// of LAPICs that got it, 0 coalesced, < 0 masked/ignored.
    pub fn set_irq<E: IoapicEnv + ?Sized>(
        &mut self,
        env: &mut E,
        pin: usize,
        source_id: u32,
        level: bool,
        line_status: bool,
    ) -> i32 {
        let Some(bit) = 1u32.checked_shl(source_id) else {
            return -1;
        };
        let Some(states) = self.irq_states.get_mut(pin) else {
            return -1;
        };
        if level {
            *states |= bit;
        } else {
            *states &= !bit;
        }
        let line = *states != 0;
        self.set_pin_level(env, pin, line, line_status)
    }

    fn set_pin_level<E: IoapicEnv + ?Sized>(
        &mut self,
        env: &mut E,
        pin: usize,
        line: bool,
        line_status: bool,
    ) -> i32 {
        let Some(entry) = self.entry(pin) else {
            return -1;
        };
        let mask = pin_bit(pin);
        if !line {
            self.irr &= !mask;
            return 1;
        }
        if pin == RTC_GSI && line_status && self.rtc.pending_eoi > 0 {
            return 0;
        }
        let old_irr = self.irr;
        self.irr |= mask;
        if !entry.trigger().is_level() {
            self.irr_delivered &= !mask;
            if old_irr == self.irr {
                return 0;
            }
        }
        self.service(env, pin, line_status)
    }

    fn service<E: IoapicEnv + ?Sized>(
        &mut self,
        env: &mut E,
        pin: usize,
        line_status: bool,
    ) -> i32 {
        let Some(entry) = self.entry(pin) else {
            return -1;
        };
        let level = entry.trigger().is_level();
        if entry.masked() || (level && entry.remote_irr()) {
            return -1;
        }
        let irq = entry.delivery();
        if !level {
            self.irr_delivered |= pin_bit(pin);
        }
        let cfg = self.bus_cfg;
        let ret = if pin == RTC_GSI && line_status {
            self.rtc.reset();
            let rtc = &mut self.rtc;
            let track = matches!(
                irq.delivery_mode,
                DeliveryMode::Fixed | DeliveryMode::LowestPriority
            );
            deliver_observed(env, None, &irq, &cfg, &mut |index| {
                if track {
                    rtc.set(index, irq.vector);
                }
            })
        } else {
            deliver_observed(env, None, &irq, &cfg, &mut |_| {})
        };
        if ret != 0 && level {
            if let Some(e) = self.redirtbl.get_mut(pin) {
                *e = e.with(RedirEntry::REMOTE_IRR, true);
            }
        }
        ret
    }

    /// Re-delivers every level pin that is asserted and not waiting for an
    /// EOI (the deferred work after an interrupt storm).
    pub fn deferred_reinject<E: IoapicEnv + ?Sized>(&mut self, env: &mut E) {
        for pin in 0..IOAPIC_NUM_PINS {
            let Some(e) = self.entry(pin) else { continue };
            if e.trigger().is_level() && self.irr & pin_bit(pin) != 0 && !e.remote_irr() {
                self.service(env, pin, false);
            }
        }
    }

    // ---- EOI ----------------------------------------------------------------

    /// EOI broadcast from the LAPIC of vCPU `vcpu_index` (see
    /// [`super::lapic::EoiEvent`]). Pins programmed with `vector` that this
    /// vCPU could have received run their ack notifiers; for level EOIs
    /// (unless broadcast is suppressed) remote IRR is cleared and a pin
    /// whose line is still asserted is delivered again.
    pub fn eoi<E: IoapicEnv + ?Sized>(
        &mut self,
        env: &mut E,
        vcpu_index: usize,
        vector: u8,
        trigger: TriggerMode,
        suppress_broadcast: bool,
    ) -> IoapicEoiResult {
        let mut result = IoapicEoiResult::default();
        self.rtc.eoi(vcpu_index, vector);
        let info = env.dest_info(vcpu_index);
        let cfg = self.bus_cfg;
        for pin in 0..IOAPIC_NUM_PINS {
            let Some(entry) = self.entry(pin) else {
                continue;
            };
            if entry.vector() != vector {
                continue;
            }
            let targets_vcpu = info.is_none_or(|i| {
                matches_dest(
                    &i,
                    false,
                    false,
                    Shorthand::None,
                    u32::from(entry.dest_id()),
                    entry.dest_mode(),
                    &cfg,
                )
            });
            if !targets_vcpu && !entry.remote_irr() {
                continue;
            }
            let mask = pin_bit(pin);
            result.acked_pins |= mask;
            let lower = env.irq_acked(pin as u8);
            if lower != 0 {
                if let Some(states) = self.irq_states.get_mut(pin) {
                    *states &= !lower;
                    if *states == 0 {
                        self.irr &= !mask;
                    }
                }
            }
            if !trigger.is_level() || suppress_broadcast {
                continue;
            }
            if let Some(e) = self.redirtbl.get_mut(pin) {
                *e = e.with(RedirEntry::REMOTE_IRR, false);
            }
            let Some(count) = self.irq_eoi.get_mut(pin) else {
                continue;
            };
            if !entry.masked() && self.irr & mask != 0 {
                *count = count.saturating_add(1);
                if *count >= IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT {
                    *count = 0;
                    result.deferred_reinject = true;
                } else {
                    self.service(env, pin, false);
                }
            } else {
                *count = 0;
            }
        }
        result
    }

    // ---- MMIO -----------------------------------------------------------

    fn read_indirect(&self) -> u32 {
        match self.ioregsel {
            IOAPIC_REG_VERSION => IOAPIC_VERSION_REG,
            IOAPIC_REG_APIC_ID | IOAPIC_REG_ARB_ID => (self.id & IOAPIC_ID_MASK) << IOAPIC_ID_SHIFT,
            sel => {
                let index = (sel.wrapping_sub(IOAPIC_REG_REDIR_BASE) >> 1) as usize;
                let bits = self.redirtbl.get(index).map_or(u64::MAX, |e| e.0);
                if sel & 1 != 0 {
                    (bits >> 32) as u32
                } else {
                    bits as u32
                }
            }
        }
    }

    /// MMIO read of `data.len()` bytes at `offset` from the base. 1/2/4-byte
    /// reads return the low bytes of the register; other sizes read zeros.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        let value = match offset & (IOAPIC_MEM_LENGTH - 1) {
            IOAPIC_REG_SELECT => self.ioregsel,
            IOAPIC_REG_WINDOW => self.read_indirect(),
            _ => 0,
        };
        data.fill(0);
        if matches!(data.len(), 1 | 2 | 4) {
            let bytes = value.to_le_bytes();
            for (dst, src) in data.iter_mut().zip(bytes.iter()) {
                *dst = *src;
            }
        }
    }

    /// MMIO write at `offset` from the base (1, 2, 4 or 8 bytes; an 8-byte
    /// write uses its low 4 bytes).
    pub fn mmio_write<E: IoapicEnv + ?Sized>(&mut self, env: &mut E, offset: u64, data: &[u8]) {
        let mut le = [0u8; 4];
        match data.len() {
            1 | 2 | 4 | 8 => {
                for (dst, src) in le.iter_mut().zip(data.iter()) {
                    *dst = *src;
                }
            }
            _ => return,
        }
        let value = u32::from_le_bytes(le);
        match offset & (IOAPIC_MEM_LENGTH - 1) {
            IOAPIC_REG_SELECT => self.ioregsel = value & IOAPIC_REGSEL_MASK,
            IOAPIC_REG_WINDOW => self.write_indirect(env, value),
            _ => {}
        }
    }

    fn write_indirect<E: IoapicEnv + ?Sized>(&mut self, env: &mut E, value: u32) {
        match self.ioregsel {
            IOAPIC_REG_VERSION | IOAPIC_REG_ARB_ID => {}
            IOAPIC_REG_APIC_ID => self.id = (value >> IOAPIC_ID_SHIFT) & IOAPIC_ID_MASK,
            sel => {
                let pin = (sel.wrapping_sub(IOAPIC_REG_REDIR_BASE) >> 1) as usize;
                let Some(old) = self.entry(pin) else { return };
                let bits = if sel & 1 != 0 {
                    (old.0 & 0xffff_ffff) | (u64::from(value) << 32)
                } else {
                    (old.0 & !0xffff_ffff) | u64::from(value)
                };
                let read_only = RedirEntry::REMOTE_IRR | RedirEntry::DELIVERY_STATUS;
                let mut new = RedirEntry((bits & !read_only) | (old.0 & read_only));
                // Linux and Xen expect an edge entry to drop remote IRR
                // (the EOI substitute on IOAPICs without an EOI register).
                if !new.trigger().is_level() {
                    new = new.with(RedirEntry::REMOTE_IRR, false);
                }
                if let Some(slot) = self.redirtbl.get_mut(pin) {
                    *slot = new;
                }
                if old.masked() != new.masked() {
                    env.mask_changed(pin as u8, new.masked());
                }
                if new.trigger().is_level()
                    && self.irr & pin_bit(pin) != 0
                    && !new.masked()
                    && !new.remote_irr()
                {
                    if env.notify_resampler(pin as u8) {
                        self.irr &= !pin_bit(pin);
                    } else {
                        self.service(env, pin, false);
                    }
                }
            }
        }
    }

    // ---- KVM_GET/SET_IRQCHIP ------------------------------------------

    /// KVM_GET_IRQCHIP (KVM_IRQCHIP_IOAPIC). Delivered edge requests are
    /// not reported as pending.
    pub fn get_state(&self) -> KvmIoapicState {
        let mut redirtbl = [0u64; IOAPIC_NUM_PINS];
        for (dst, e) in redirtbl.iter_mut().zip(self.redirtbl.iter()) {
            *dst = e.0;
        }
        KvmIoapicState {
            base_address: self.base_address,
            ioregsel: self.ioregsel,
            id: self.id,
            irr: self.irr & !self.irr_delivered,
            pad: 0,
            redirtbl,
        }
    }

    /// KVM_SET_IRQCHIP (KVM_IRQCHIP_IOAPIC): loads the registers, then
    /// re-asserts every pin set in `irr` (delivering what is deliverable)
    /// and rebuilds the RTC EOI tracking from the LAPICs' IRR/ISR.
    pub fn set_state<E: IoapicEnv + ?Sized>(&mut self, env: &mut E, state: &KvmIoapicState) {
        self.base_address = state.base_address;
        self.ioregsel = state.ioregsel;
        self.id = state.id;
        for (dst, bits) in self.redirtbl.iter_mut().zip(state.redirtbl.iter()) {
            *dst = RedirEntry(*bits);
        }
        self.irr = 0;
        self.irr_delivered = 0;
        self.rtc.reset();
        for pin in 0..IOAPIC_NUM_PINS {
            if state.irr & pin_bit(pin) != 0 {
                self.set_pin_level(env, pin, true, true);
            }
        }
        self.rtc_restore_all(env);
    }

    /// Rebuilds the RTC EOI tracking entry of one vCPU (after KVM_SET_LAPIC).
    pub fn rtc_restore_one<E: ApicBus + ?Sized>(&mut self, env: &E, vcpu_index: usize) {
        let Some(entry) = self.entry(RTC_GSI) else {
            return;
        };
        let Some(info) = env.dest_info(vcpu_index) else {
            return;
        };
        let cfg = self.bus_cfg;
        if !matches_dest(
            &info,
            false,
            false,
            Shorthand::None,
            u32::from(entry.dest_id()),
            entry.dest_mode(),
            &cfg,
        ) {
            return;
        }
        if env.pending_eoi(vcpu_index, entry.vector()) {
            self.rtc.set(vcpu_index, entry.vector());
        } else {
            self.rtc.clear(vcpu_index);
        }
    }

    fn rtc_restore_all<E: ApicBus + ?Sized>(&mut self, env: &E) {
        self.rtc.reset();
        for index in 0..env.apic_count().min(RTC_MAX_VCPUS) {
            self.rtc_restore_one(env, index);
        }
    }

    /// Number of vCPUs that still owe an EOI for the last RTC interrupt.
    pub fn rtc_pending_eoi(&self) -> u32 {
        self.rtc.pending_eoi
    }
}
