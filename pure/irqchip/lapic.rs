//! Local APIC model: interrupt acceptance, priority arbitration
//! (IRR/ISR/TMR, TPR/PPR), EOI, IPIs, LVTs, APIC_BASE, reset and the timer.
//! Register access (MMIO/MSR decoding) is in [`super::lapic_access`], the
//! KVM_GET/SET_LAPIC image in [`super::lapic_state`].
//!
//! One [`Lapic`] per vCPU. It only changes its own state; everything that
//! must reach the outside world is returned in [`LapicEffects`] (an IPI to
//! fan out with [`super::apic_bus::deliver`], an EOI to forward to the
//! IOAPIC, a timer deadline to re-arm) or queued as [`PendingEvents`]
//! (NMI, INIT, SIPI) for the vCPU run loop to take.

use super::apic_bus::{ApicDestInfo, DFR_FLAT, X2APIC_CLUSTER_SHIFT};
use super::clock::Clock;
use super::delivery::{
    Delivery, DeliveryMode, DestMode, Shorthand, TriggerMode, DELIVERY_MODE_SHIFT,
};
use super::lapic_page::RegPage;
use super::lapic_regs::*;
use super::lapic_timer::{
    divide_count, LapicTimer, TimerMode, DEFAULT_BUS_CYCLE_NS, DEFAULT_MIN_PERIODIC_NS,
};
use crate::defs::msr::{
    APIC_DEFAULT_PHYS_BASE, MSR_IA32_APICBASE_BSP, MSR_IA32_APICBASE_ENABLE, X2APIC_ENABLE,
};
use crate::defs::paging::MAX_PHYS_ADDR_BITS;

/// CR8 holds TPR bits 7:4.
const CR8_TPR_SHIFT: u32 = 4;
/// Valid CR8 bits.
const CR8_MASK: u64 = 0xf;
/// LVT entries without / with the CMCI LVT.
const NR_LVT_ENTRIES: u32 = 6;
const NR_LVT_ENTRIES_CMCI: u32 = 7;

/// Default guest MAXPHYADDR used for APIC_BASE reserved-bit checks: the
/// architectural limit.
pub const DEFAULT_MAX_PHYS_ADDR_BITS: u8 = MAX_PHYS_ADDR_BITS;

/// Per-vCPU LAPIC configuration chosen by the VMM (CPUID, VM caps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LapicConfig {
    /// vCPU ID: the x2APIC ID and the initial xAPIC ID (truncated to 8 bits).
    pub vcpu_id: u32,
    /// This vCPU is the reset BSP (APIC_BASE.BSP, LINT0 in ExtINT mode).
    pub bsp: bool,
    /// Guest CPUID advertises x2APIC (APIC_BASE.EXTD is writable).
    pub x2apic_supported: bool,
    /// Guest CPUID advertises TSC-deadline (LVTT mode bit 18 is writable).
    pub tsc_deadline_supported: bool,
    /// MCG_CAP.CMCI_P: the CMCI LVT exists (7 LVT entries instead of 6).
    pub cmci_supported: bool,
    /// Advertise directed EOI in the version register (needs x2APIC).
    pub directed_eoi_advertised: bool,
    /// Intel-compatible PMU: delivering the perf LVT sets its mask bit.
    pub mask_perf_lvt_on_delivery: bool,
    /// KVM_X86_QUIRK_LINT0_REENABLED: the BSP's LINT0 is ExtINT at reset.
    pub lint0_extint_on_reset: bool,
    /// Length of one APIC bus cycle in ns (KVM_CAP_X86_APIC_BUS_CYCLES_NS).
    pub bus_cycle_ns: u64,
    /// Minimum periodic timer period in ns.
    pub min_periodic_ns: u64,
    /// Guest MAXPHYADDR (APIC_BASE bits above it are reserved).
    pub max_phys_addr_bits: u8,
}

impl LapicConfig {
    /// Upstream defaults for vCPU `vcpu_id` (x2APIC and TSC-deadline
    /// advertised, like QEMU's default CPU models on KVM).
    pub const fn new(vcpu_id: u32, bsp: bool) -> Self {
        Self {
            vcpu_id,
            bsp,
            x2apic_supported: true,
            tsc_deadline_supported: true,
            cmci_supported: false,
            directed_eoi_advertised: false,
            mask_perf_lvt_on_delivery: true,
            lint0_extint_on_reset: true,
            bus_cycle_ns: DEFAULT_BUS_CYCLE_NS,
            min_periodic_ns: DEFAULT_MIN_PERIODIC_NS,
            max_phys_addr_bits: DEFAULT_MAX_PHYS_ADDR_BITS,
        }
    }
}

/// Why a register access faults (the MSR paths turn this into #GP; MMIO
/// accesses never fault and ignore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LapicAccessError {
    /// Not an x2APIC register, or x2APIC mode is off.
    NotX2apic,
    /// Reserved, write-only (on read) or read-only (on write) register.
    InvalidRegister,
    /// Reserved bits set in the written value.
    ReservedBits,
    /// APIC_BASE value or mode transition not allowed.
    InvalidApicBase,
}

/// An EOI the LAPIC wants broadcast to the IOAPIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EoiEvent {
    /// Vector that left the ISR.
    pub vector: u8,
    /// TMR bit of the vector: only level EOIs clear IOAPIC remote IRR.
    pub trigger: TriggerMode,
    /// SPIV "suppress EOI broadcast" is set: the IOAPIC must not clear
    /// remote IRR (ack notifiers still run, like upstream).
    pub suppress_broadcast: bool,
}

/// Side effects of one LAPIC operation, to be carried out by the caller
/// after it releases the LAPIC.
#[must_use]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LapicEffects {
    /// An IPI to deliver with `apic_bus::deliver(bus, Some(this_vcpu), ..)`.
    pub ipi: Option<Delivery>,
    /// An EOI to forward to the in-kernel IOAPIC (and its ack notifiers).
    pub eoi: Option<EoiEvent>,
    /// The timer deadline may have changed: re-read
    /// [`Lapic::timer_deadline_ns`] and re-arm or cancel the host timer.
    pub timer_changed: bool,
    /// Addressing state changed (ID, LDR, DFR, software/hardware enable,
    /// x2APIC mode): drop any cached destination maps.
    pub dest_changed: bool,
}

/// Events the vCPU run loop consumes ([`Lapic::take_events`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PendingEvents {
    /// NMIs received (saturating).
    pub nmis: u32,
    /// INIT received: reset the vCPU (`Lapic::reset(true)`), then BSP →
    /// RUNNABLE, AP → INIT_RECEIVED.
    pub init: bool,
    /// SIPI vector received; only acted upon in INIT_RECEIVED.
    pub sipi: Option<u8>,
    /// PV unhalt kick (remote-read delivery mode).
    pub pv_unhalt: bool,
}

impl PendingEvents {
    /// Whether any event is pending.
    pub const fn any(&self) -> bool {
        self.nmis != 0 || self.init || self.sipi.is_some() || self.pv_unhalt
    }
}

/// x2APIC logical ID derived from the x2APIC ID: cluster = ID bits 31:4,
/// member bit = ID bits 3:0.
pub const fn x2apic_ldr(x2apic_id: u32) -> u32 {
    const MEMBER_BITS: u32 = 4;
    ((x2apic_id >> MEMBER_BITS) << X2APIC_CLUSTER_SHIFT)
        | (1 << (x2apic_id & ((1 << MEMBER_BITS) - 1)))
}

/// One vCPU's local APIC.
#[derive(Clone, Debug)]
pub struct Lapic {
    pub(super) cfg: LapicConfig,
    pub(super) regs: RegPage,
    pub(super) apic_base: u64,
    pub(super) sw_enabled: bool,
    pub(super) divide: u32,
    pub(super) timer: LapicTimer,
    pub(super) esr_pending: u32,
    pub(super) events: PendingEvents,
}

impl Lapic {
    /// A LAPIC in its power-on RESET state.
    pub fn new(cfg: LapicConfig) -> Self {
        let mut lapic = Self {
            cfg,
            regs: RegPage::new(),
            apic_base: MSR_IA32_APICBASE_ENABLE,
            sw_enabled: false,
            divide: divide_count(0),
            timer: LapicTimer::new(),
            esr_pending: 0,
            events: PendingEvents::default(),
        };
        lapic.reset(false);
        lapic
    }

    /// Current configuration.
    pub fn config(&self) -> &LapicConfig {
        &self.cfg
    }

    /// Applies a new configuration (after KVM_SET_CPUID2 / MCG_CAP / VM
    /// caps). The vCPU ID must not change. Newly present LVTs come up
    /// masked; the version register is recomputed.
    pub fn set_config(&mut self, cfg: LapicConfig) {
        let old_lvts = self.nr_lvt_entries();
        self.cfg = LapicConfig {
            vcpu_id: self.cfg.vcpu_id,
            ..cfg
        };
        for lvt in ALL_LVTS {
            if lvt.index() >= old_lvts && lvt.index() < self.nr_lvt_entries() {
                self.regs.set(lvt.offset(), APIC_LVT_MASKED);
            }
        }
        self.update_version();
    }

    // ---- small state queries -------------------------------------------

    /// APIC_BASE.EN.
    pub fn hw_enabled(&self) -> bool {
        self.apic_base & MSR_IA32_APICBASE_ENABLE != 0
    }

    /// SPIV.APIC_ENABLED.
    pub fn sw_enabled(&self) -> bool {
        self.sw_enabled
    }

    /// Hardware and software enabled.
    pub fn enabled(&self) -> bool {
        self.hw_enabled() && self.sw_enabled
    }

    /// APIC_BASE.EXTD.
    pub fn x2apic_mode(&self) -> bool {
        self.apic_base & X2APIC_ENABLE != 0
    }

    /// Raw register at `offset` (no side effects, no access checks).
    pub fn reg(&self, offset: u32) -> u32 {
        self.regs.get(offset)
    }

    /// The `IA32_APIC_BASE` MSR value.
    pub fn apic_base(&self) -> u64 {
        self.apic_base
    }

    /// Guest-physical base of the xAPIC MMIO window.
    pub fn mmio_base(&self) -> u64 {
        self.apic_base & APIC_BASE_ADDR_MASK
    }

    /// Whether the xAPIC MMIO window at [`Self::mmio_base`] is live
    /// (hardware enabled and not in x2APIC mode).
    pub fn mmio_enabled(&self) -> bool {
        self.hw_enabled() && !self.x2apic_mode()
    }

    fn nr_lvt_entries(&self) -> u32 {
        if self.cfg.cmci_supported {
            NR_LVT_ENTRIES_CMCI
        } else {
            NR_LVT_ENTRIES
        }
    }

    pub(super) fn lvt_supported(&self, lvt: Lvt) -> bool {
        lvt.index() < self.nr_lvt_entries()
    }

    fn xapic_id(&self) -> u8 {
        (self.regs.get(APIC_ID) >> APIC_XAPIC_ID_SHIFT) as u8
    }

    /// Addressing state for [`super::apic_bus::ApicBus::dest_info`].
    pub fn dest_info(&self) -> ApicDestInfo {
        ApicDestInfo {
            hw_enabled: self.hw_enabled(),
            sw_enabled: self.sw_enabled,
            x2apic_mode: self.x2apic_mode(),
            xapic_id: self.xapic_id(),
            x2apic_id: self.cfg.vcpu_id,
            ldr: self.regs.get(APIC_LDR),
            dfr: self.regs.get(APIC_DFR),
        }
    }

    /// Whether `vector` is in IRR or ISR (upstream `kvm_apic_pending_eoi`).
    pub fn vector_pending_eoi(&self, vector: u8) -> bool {
        self.regs.test_vector(APIC_IRR, vector) || self.regs.test_vector(APIC_ISR, vector)
    }

    /// LVT0 is unmasked in NMI mode (virtual-wire NMI watchdog: the PIT
    /// tick is also delivered through LINT0 to such vCPUs).
    pub fn lvt0_in_nmi_mode(&self) -> bool {
        self.regs.get(APIC_LVT0) & (APIC_MODE_MASK | APIC_LVT_MASKED) == APIC_MODE_NMI
    }

    // ---- reset, version, APIC_BASE -----------------------------------

    pub(super) fn update_version(&mut self) {
        let mut v = APIC_VERSION | ((self.nr_lvt_entries() - 1) << APIC_LVR_MAXLVT_SHIFT);
        if self.cfg.x2apic_supported && self.cfg.directed_eoi_advertised {
            v |= APIC_LVR_DIRECTED_EOI;
        }
        self.regs.set(APIC_LVR, v);
    }

    pub(super) fn set_xapic_id(&mut self, id: u8) {
        self.regs.set(APIC_ID, u32::from(id) << APIC_XAPIC_ID_SHIFT);
    }

    fn set_x2apic_id(&mut self) {
        let id = self.cfg.vcpu_id;
        self.regs.set(APIC_ID, id);
        self.regs.set(APIC_LDR, x2apic_ldr(id));
    }

    pub(super) fn set_spiv(&mut self, value: u32) {
        self.regs.set(APIC_SPIV, value);
        self.sw_enabled = value & APIC_SPIV_APIC_ENABLED != 0;
    }

    /// RESET (`init == false`, also done by [`Self::new`]) or INIT
    /// (`init == true`: APIC_BASE, x2APIC mode and the APIC ID survive).
    pub fn reset(&mut self, init: bool) {
        if !init {
            let mut base = APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE;
            if self.cfg.bsp {
                base |= MSR_IA32_APICBASE_BSP;
            }
            self.write_apic_base(base);
            self.set_xapic_id(self.cfg.vcpu_id as u8);
            self.events = PendingEvents::default();
        }
        self.timer.cancel();
        self.update_version();
        for lvt in ALL_LVTS {
            if self.lvt_supported(lvt) {
                self.regs.set(lvt.offset(), APIC_LVT_MASKED);
            }
        }
        self.update_lvtt();
        if self.cfg.bsp && self.cfg.lint0_extint_on_reset {
            self.regs.set(APIC_LVT0, APIC_MODE_EXTINT);
        }
        self.regs.set(APIC_DFR, DFR_FLAT);
        self.set_spiv(APIC_SPIV_RESET);
        self.regs.set(APIC_TASKPRI, 0);
        if !self.x2apic_mode() {
            self.regs.set(APIC_LDR, 0);
        }
        self.regs.set(APIC_ESR, 0);
        self.esr_pending = 0;
        self.regs.set(APIC_ICR, 0);
        self.regs.set(APIC_ICR2, 0);
        self.regs.set(APIC_TDCR, 0);
        self.regs.set(APIC_TMICT, 0);
        self.regs.clear_bank(APIC_IRR);
        self.regs.clear_bank(APIC_ISR);
        self.regs.clear_bank(APIC_TMR);
        self.divide = divide_count(0);
        self.update_ppr();
    }

    /// Stores APIC_BASE and applies the enable / x2APIC transitions
    /// (upstream `__kvm_apic_set_base()`); no validity checks.
    fn write_apic_base(&mut self, value: u64) {
        let old = self.apic_base;
        self.apic_base = value;
        let changed = old ^ value;
        if changed & MSR_IA32_APICBASE_ENABLE != 0 && value & MSR_IA32_APICBASE_ENABLE != 0 {
            self.set_xapic_id(self.cfg.vcpu_id as u8);
        }
        if changed & X2APIC_ENABLE != 0 {
            if value & X2APIC_ENABLE != 0 {
                self.set_x2apic_id();
            } else if value & MSR_IA32_APICBASE_ENABLE != 0 {
                self.set_xapic_id(self.cfg.vcpu_id as u8);
            }
        }
    }

    /// `WRMSR IA32_APIC_BASE` (`host_initiated` for KVM_SET_MSRS, which may
    /// make transitions the guest cannot: x2APIC → xAPIC, disabled → x2APIC).
    pub fn set_apic_base(
        &mut self,
        value: u64,
        host_initiated: bool,
    ) -> Result<LapicEffects, LapicAccessError> {
        if value == self.apic_base {
            return Ok(LapicEffects::default());
        }
        let above_maxphyaddr = u64::MAX
            .checked_shl(u32::from(self.cfg.max_phys_addr_bits))
            .unwrap_or(0);
        let mut reserved = above_maxphyaddr | APIC_BASE_RESERVED_LOW;
        if !self.cfg.x2apic_supported {
            reserved |= X2APIC_ENABLE;
        }
        let mode_bits = MSR_IA32_APICBASE_ENABLE | X2APIC_ENABLE;
        let (old_mode, new_mode) = (self.apic_base & mode_bits, value & mode_bits);
        if value & reserved != 0 || new_mode == X2APIC_ENABLE {
            return Err(LapicAccessError::InvalidApicBase);
        }
        if !host_initiated {
            if old_mode == mode_bits && new_mode == MSR_IA32_APICBASE_ENABLE {
                return Err(LapicAccessError::InvalidApicBase);
            }
            if old_mode == 0 && new_mode == mode_bits {
                return Err(LapicAccessError::InvalidApicBase);
            }
        }
        self.write_apic_base(value);
        Ok(LapicEffects {
            dest_changed: true,
            timer_changed: true,
            ..LapicEffects::default()
        })
    }

    // ---- priorities and vector banks -----------------------------------

    pub(super) fn update_ppr(&mut self) {
        let tpr = self.regs.get(APIC_TASKPRI) & APIC_TPR_MASK;
        let isr = self.regs.highest_vector(APIC_ISR).map_or(0, u32::from);
        let ppr = if (tpr & APIC_PRIORITY_CLASS_MASK) >= (isr & APIC_PRIORITY_CLASS_MASK) {
            tpr
        } else {
            isr & APIC_PRIORITY_CLASS_MASK
        };
        self.regs.set(APIC_PROCPRI, ppr);
    }

    /// TPR write (MMIO, MSR, or the VAPIC word).
    pub fn set_tpr(&mut self, tpr: u32) {
        self.regs.set(APIC_TASKPRI, tpr & APIC_TPR_MASK);
        self.update_ppr();
    }

    /// Processor priority.
    pub fn ppr(&self) -> u8 {
        self.regs.get(APIC_PROCPRI) as u8
    }

    /// Highest vector in IRR (for the CR8 / V_TPR intercept decision).
    pub fn highest_irr(&self) -> Option<u8> {
        self.regs.highest_vector(APIC_IRR)
    }

    /// Highest vector in ISR.
    pub fn highest_isr(&self) -> Option<u8> {
        self.regs.highest_vector(APIC_ISR)
    }

    /// The vector to inject next, if any: the highest IRR vector whose
    /// priority class is above PPR (upstream `kvm_apic_has_interrupt()`).
    pub fn highest_injectable_vector(&self) -> Option<u8> {
        if !self.hw_enabled() {
            return None;
        }
        let irr = self.highest_irr()?;
        (u32::from(irr) & APIC_PRIORITY_CLASS_MASK > self.regs.get(APIC_PROCPRI)).then_some(irr)
    }

    /// INTA: `vector` (from [`Self::highest_injectable_vector`]) was
    /// injected; move it from IRR to ISR and raise PPR.
    pub fn ack_interrupt(&mut self, vector: u8) {
        self.regs.clear_vector(APIC_IRR, vector);
        self.regs.set_vector(APIC_ISR, vector);
        self.update_ppr();
    }

    /// CR8 write (or V_TPR sync-back): TPR = cr8 << 4.
    pub fn set_cr8(&mut self, cr8: u64) {
        self.set_tpr(((cr8 & CR8_MASK) as u32) << CR8_TPR_SHIFT);
    }

    /// The word QEMU's TPR-patching option ROM reads at the VAPIC address
    /// (upstream `kvm_lapic_sync_to_vapic()`): TPR, ISR class, IRR vector.
    pub fn vapic_word(&self) -> u32 {
        let tpr = self.regs.get(APIC_TASKPRI) & 0xff;
        let isr = u32::from(self.highest_isr().unwrap_or(0));
        let irr = u32::from(self.highest_irr().unwrap_or(0));
        tpr | ((isr & 0xf0) << 8) | (irr << 24)
    }

    /// CR8 value derived from TPR.
    pub fn cr8(&self) -> u64 {
        u64::from((self.regs.get(APIC_TASKPRI) & APIC_PRIORITY_CLASS_MASK) >> CR8_TPR_SHIFT)
    }

    /// Whether the 8259's INTR reaches this vCPU: the APIC is hardware
    /// disabled (INTR wired straight to the CPU) or LINT0 is an unmasked
    /// ExtINT entry (virtual wire).
    pub fn accepts_pic_interrupts(&self) -> bool {
        if !self.hw_enabled() {
            return true;
        }
        let lvt0 = self.regs.get(APIC_LVT0);
        lvt0 & APIC_LVT_MASKED == 0 && lvt0 & APIC_MODE_MASK == APIC_MODE_EXTINT
    }

    // ---- interrupt acceptance -----------------------------------------

    fn record_error(&mut self, bits: u32, from_error_lvt: bool) {
        self.esr_pending |= bits;
        if !from_error_lvt {
            self.deliver_lvt_inner(Lvt::Error, true);
        }
    }

    fn accept_fixed(
        &mut self,
        vector: u8,
        trigger: TriggerMode,
        level: bool,
        from_error_lvt: bool,
    ) -> bool {
        if trigger.is_level() && !level {
            return false;
        }
        if !self.enabled() {
            return false;
        }
        if vector < APIC_FIRST_LEGAL_VECTOR {
            self.record_error(APIC_ESR_RECV_ILLEGAL, from_error_lvt);
            return false;
        }
        if trigger.is_level() {
            self.regs.set_vector(APIC_TMR, vector);
        } else {
            self.regs.clear_vector(APIC_TMR, vector);
        }
        self.regs.set_vector(APIC_IRR, vector);
        true
    }

    fn accept_inner(&mut self, irq: &Delivery, from_error_lvt: bool) -> bool {
        match irq.delivery_mode {
            DeliveryMode::Fixed | DeliveryMode::LowestPriority => {
                self.accept_fixed(irq.vector, irq.trigger, irq.level, from_error_lvt)
            }
            DeliveryMode::RemoteRead => {
                self.events.pv_unhalt = true;
                true
            }
            DeliveryMode::Smi | DeliveryMode::ExtInt => false,
            DeliveryMode::Nmi => {
                self.events.nmis = self.events.nmis.saturating_add(1);
                true
            }
            DeliveryMode::Init => {
                if irq.trigger.is_level() && !irq.level {
                    return false;
                }
                self.events.init = true;
                self.events.sipi = None;
                true
            }
            DeliveryMode::StartUp => {
                self.events.sipi = Some(irq.vector);
                true
            }
        }
    }

    /// Accepts a message addressed to this LAPIC (upstream
    /// `__apic_accept_irq()`). Fixed/lowest-priority vectors land in IRR
    /// (TMR follows the trigger mode) when the APIC is enabled; NMI, INIT,
    /// SIPI and PV-unhalt become [`PendingEvents`]; SMI and ExtINT are
    /// ignored. Returns whether the message was accepted; the caller should
    /// then kick the vCPU. Illegal vectors (< 16) are refused and latched
    /// as "receive illegal vector" in ESR.
    pub fn accept_irq(&mut self, irq: &Delivery) -> bool {
        self.accept_inner(irq, false)
    }

    fn deliver_lvt_inner(&mut self, lvt: Lvt, from_error_lvt: bool) -> bool {
        if !self.lvt_supported(lvt) || !self.hw_enabled() {
            return false;
        }
        let reg = self.regs.get(lvt.offset());
        if reg & APIC_LVT_MASKED != 0 {
            return false;
        }
        let irq = Delivery {
            vector: (reg & APIC_VECTOR_MASK) as u8,
            delivery_mode: DeliveryMode::from_bits((reg & APIC_MODE_MASK) >> DELIVERY_MODE_SHIFT),
            dest_mode: DestMode::Physical,
            trigger: TriggerMode::from_level(reg & APIC_LVT_LEVEL_TRIGGER != 0),
            level: true,
            shorthand: Shorthand::SelfOnly,
            dest_id: 0,
            msi_redir_hint: false,
        };
        let accepted = self.accept_inner(&irq, from_error_lvt);
        if accepted && lvt == Lvt::Perf && self.cfg.mask_perf_lvt_on_delivery {
            self.regs.set(APIC_LVTPC, reg | APIC_LVT_MASKED);
        }
        accepted
    }

    /// Raises a local interrupt through an LVT entry (LINT0/LINT1 pins,
    /// perf counter overflow, thermal, CMCI, ...). Returns whether it was
    /// accepted. For the PIT's virtual-wire NMI watchdog call this with
    /// [`Lvt::Lint0`] on every vCPU where [`Self::lvt0_in_nmi_mode`].
    pub fn deliver_lvt(&mut self, lvt: Lvt) -> bool {
        self.deliver_lvt_inner(lvt, false)
    }

    /// Takes the pending NMI/INIT/SIPI/unhalt events.
    pub fn take_events(&mut self) -> PendingEvents {
        core::mem::take(&mut self.events)
    }

    /// Pending events without consuming them.
    pub fn pending_events(&self) -> PendingEvents {
        self.events
    }

    // ---- EOI ------------------------------------------------------------

    /// EOI: retire the highest in-service vector. Returns the event to
    /// forward to the IOAPIC, or `None` if ISR was empty.
    pub fn eoi(&mut self) -> Option<EoiEvent> {
        let vector = self.regs.highest_vector(APIC_ISR)?;
        self.regs.clear_vector(APIC_ISR, vector);
        self.update_ppr();
        Some(EoiEvent {
            vector,
            trigger: TriggerMode::from_level(self.regs.test_vector(APIC_TMR, vector)),
            suppress_broadcast: self.regs.get(APIC_SPIV) & APIC_SPIV_DIRECTED_EOI != 0,
        })
    }

    // ---- IPIs -----------------------------------------------------------

    fn icr_to_delivery(&self, low: u32, high: u32) -> Delivery {
        Delivery {
            vector: (low & APIC_VECTOR_MASK) as u8,
            delivery_mode: DeliveryMode::from_bits((low & APIC_MODE_MASK) >> DELIVERY_MODE_SHIFT),
            dest_mode: DestMode::from_logical(low & APIC_DEST_LOGICAL != 0),
            trigger: TriggerMode::from_level(low & APIC_INT_LEVELTRIG != 0),
            level: low & APIC_INT_ASSERT != 0,
            shorthand: Shorthand::from_bits(low >> APIC_SHORTHAND_SHIFT),
            dest_id: if self.x2apic_mode() {
                high
            } else {
                high >> APIC_XAPIC_ID_SHIFT
            },
            msi_redir_hint: false,
        }
    }

    pub(super) fn send_ipi(&mut self, low: u32, high: u32, fx: &mut LapicEffects) {
        let irq = self.icr_to_delivery(low, high);
        let needs_vector = matches!(
            irq.delivery_mode,
            DeliveryMode::Fixed | DeliveryMode::LowestPriority
        );
        if needs_vector && irq.vector < APIC_FIRST_LEGAL_VECTOR {
            self.record_error(APIC_ESR_SEND_ILLEGAL, false);
            return;
        }
        fx.ipi = Some(irq);
    }

    // ---- timer ----------------------------------------------------------

    pub(super) fn timer_mode_mask(&self) -> u32 {
        if self.cfg.tsc_deadline_supported {
            APIC_LVT_TIMER_MODE_MASK
        } else {
            APIC_LVT_TIMER_PERIODIC
        }
    }

    fn lvtt_mode(&self) -> TimerMode {
        TimerMode::from_bits(
            (self.regs.get(APIC_LVTT) & self.timer_mode_mask()) >> APIC_LVT_TIMER_SHIFT,
        )
    }

    pub(super) fn update_lvtt(&mut self) {
        let mode = self.lvtt_mode();
        if self.timer.set_mode(mode, self.cfg.min_periodic_ns) {
            self.regs.set(APIC_TMICT, 0);
        }
    }

    /// Adopts the LVTT timer mode of a freshly loaded register image; the
    /// image's TMICT is kept (it is authoritative).
    pub(super) fn load_lvtt(&mut self) {
        let mode = self.lvtt_mode();
        // Whether the mode crossed to or from TSC-deadline does not matter:
        // TMICT comes from the image too.
        self.timer.set_mode(mode, self.cfg.min_periodic_ns);
    }

    pub(super) fn start_timer(&mut self, restore_count: Option<u32>, clk: &(impl Clock + ?Sized)) {
        match self.timer.mode {
            TimerMode::OneShot | TimerMode::Periodic => self.timer.start_count(
                self.regs.get(APIC_TMICT),
                restore_count,
                clk.now_ns(),
                self.cfg.bus_cycle_ns,
                self.divide,
                self.cfg.min_periodic_ns,
            ),
            TimerMode::TscDeadline => self.timer.start_tsc_deadline(clk),
            TimerMode::Reserved => self.timer.cancel(),
        }
        self.service_timer(clk);
    }

    pub(super) fn current_count(&self, now: u64) -> u32 {
        self.timer.current_count(
            self.regs.get(APIC_TMICT),
            now,
            self.cfg.bus_cycle_ns,
            self.divide,
        )
    }

    /// Absolute host time (ns) at which [`Self::service_timer`] must run
    /// next, or `None` when the timer is stopped.
    pub fn timer_deadline_ns(&self) -> Option<u64> {
        self.timer.deadline_ns
    }

    /// Timer mode of the running count.
    pub fn timer_mode(&self) -> TimerMode {
        self.timer.mode
    }

    /// Call when the host timer fires (or whenever convenient): if the
    /// deadline has passed, delivers LVTT (unless masked) and advances or
    /// stops the timer. Returns whether the timer expired.
    pub fn service_timer(&mut self, clk: &(impl Clock + ?Sized)) -> bool {
        let now = clk.now_ns();
        if !self.timer.is_due(now) {
            return false;
        }
        self.deliver_lvt(Lvt::Timer);
        self.timer.after_fire(now);
        true
    }

    /// `RDMSR IA32_TSC_DEADLINE`: 0 unless in TSC-deadline mode.
    pub fn tsc_deadline(&self) -> u64 {
        if !self.hw_enabled() || self.timer.mode != TimerMode::TscDeadline {
            return 0;
        }
        self.timer.tsc_deadline
    }

    /// `WRMSR IA32_TSC_DEADLINE`: ignored unless in TSC-deadline mode; 0
    /// disarms, a deadline already in the past fires immediately.
    pub fn set_tsc_deadline(&mut self, value: u64, clk: &(impl Clock + ?Sized)) -> LapicEffects {
        if !self.hw_enabled() || self.timer.mode != TimerMode::TscDeadline {
            return LapicEffects::default();
        }
        self.timer.tsc_deadline = value;
        self.timer.start_tsc_deadline(clk);
        self.service_timer(clk);
        LapicEffects {
            timer_changed: true,
            ..LapicEffects::default()
        }
    }
}
