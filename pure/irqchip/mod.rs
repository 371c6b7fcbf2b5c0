//! In-kernel interrupt controllers and timers as pure state machines:
//! local APIC, IOAPIC, 8259 PIC pair, 8254 PIT, GSI routing and MSI.
//!
//! Pure component (DESIGN.md section 3): `core` only, no allocation, no
//! locks, no threads, no clock reads, no panics on any guest or userspace
//! input. The same files build into kvm.ko and into the host test crate
//! `tests/host/irqchip`.
//!
//! # Interfaces
//!
//! * Time comes in: the LAPIC takes a [`clock::Clock`] (host ns + guest
//!   TSC + TSC kHz), the PIT a plain `now_ns`. Timers go out as absolute
//!   deadlines ([`lapic::Lapic::timer_deadline_ns`],
//!   [`i8254::Pit::next_deadline_ns`]) that the kernel arms hrtimers for.
//! * Interrupt messages are [`delivery::Delivery`] values. Fan-out to the
//!   vCPUs goes through the [`apic_bus::ApicBus`] trait the VM implements
//!   (`dest_info` + `accept` per vCPU index); [`apic_bus::deliver`] does
//!   destination matching (physical, logical flat/cluster, x2APIC
//!   cluster, shorthands, broadcast) and lowest-priority arbitration.
//! * The IOAPIC additionally calls back through [`ioapic::IoapicEnv`] for
//!   ack notifiers (EOI → irqfd resampler / PIT), resampler checks on
//!   unmask, and mask notifications.
//! * LAPIC operations return [`lapic::LapicEffects`] (IPI to deliver, EOI to
//!   forward, timer re-arm needed); NMI/INIT/SIPI are queued as
//!   [`lapic::PendingEvents`].
//! * The PIC exposes its INTR line ([`i8259::Pic::output`]), the INTA cycle
//!   ([`i8259::Pic::intack`]), a wake-up edge and acknowledged pins.
//! * KVM uapi images ([`uapi`]) convert to and from every model:
//!   `get_state`/`set_state` on `Lapic` (1 KiB page), `Pic` (per chip),
//!   `Ioapic` and `Pit` (`get_state2`/`set_state2`).
//!
//! # Wiring into the vCPU run loop (protocol)
//!
//! Per VM: one `Ioapic`, one `Pic`, one `Pit` (one irqchip lock for the
//! three is simplest), the routing table (`[RouteEntry]` sorted by
//! [`routing::prepare_routes`], initially [`routing::DEFAULT_ROUTES`]) and
//! an `ApicBus` over the vCPUs whose `accept` locks the target LAPIC, calls
//! `accept_irq` and kicks that vCPU (IPI if it is in guest mode). Per
//! vCPU: one `Lapic` behind its own lock, created with
//! `Lapic::new(LapicConfig::new(vcpu_id, vcpu_id == bsp_id))` and updated
//! with `set_config` after KVM_SET_CPUID2 (x2APIC, TSC-deadline, vendor).
//!
//! Lock order: irqchip → LAPIC. Never call into the IOAPIC/PIC/PIT or
//! `deliver` while holding a LAPIC: LAPIC operations return their
//! outside effects instead. The IOAPIC's `IoapicEnv` callbacks must not
//! re-enter the IOAPIC either (record, act after the call returns).
//!
//! 1. Before each VM entry, on the vCPU thread:
//!    * LAPIC locked: `service_timer(&clock)` (delivers a due LVTT into
//!      IRR), `take_events()`, then pick the interrupt: if
//!      `accepts_pic_interrupts()` and `pic.output()` it comes from the PIC,
//!      else from `highest_injectable_vector()`.
//!    * Events: INIT → reset the vCPU including `lapic.reset(true)`,
//!      mp_state RUNNABLE (BSP) / INIT_RECEIVED (AP); SIPI (only in
//!      INIT_RECEIVED) → CS = vector << 8, RIP = 0, RUNNABLE; `nmis` → the
//!      vCPU's NMI queue (inject via EVENTINJ type NMI); `pv_unhalt` → wake.
//!    * If the guest can take an interrupt (RFLAGS.IF, no interrupt
//!      shadow, GIF, no event already injected) inject it via EVENTINJ:
//!      PIC → vector = `pic.intack()` (then step 4); LAPIC →
//!      `ack_interrupt(v)`. Otherwise request an interrupt window (V_IRQ +
//!      VINTR intercept) and retry on the window exit. Sync V_TPR with
//!      `set_cr8` / `cr8`; intercept CR8 writes while `highest_irr()` is
//!      masked by TPR so that lowering TPR re-evaluates.
//!    * Timers: arm the vCPU's hrtimer at `timer_deadline_ns()` (absolute
//!      host ns, `None` = cancel); its callback only kicks the vCPU. vCPU
//!      0 also owns the PIT: if `pit.service(now)` returns `true`, pulse GSI
//!      0 with [`routing::set_irq`] (level 1 then 0, source
//!      [`i8254::PIT_IRQ_SOURCE_ID`]) and `deliver_lvt(Lvt::Lint0)` on every
//!      LAPIC with `lvt0_in_nmi_mode()`; arm its hrtimer at
//!      `pit.next_deadline_ns()`.
//! 2. Exits: xAPIC MMIO at `mmio_base()` while `mmio_enabled()` →
//!    `mmio_read` / `mmio_write` (offset from the base); MSR 0x800-0x8ff →
//!    `x2apic_msr_read` / `x2apic_msr_write` (Err → #GP); `IA32_APIC_BASE`
//!    → `apic_base` / `set_apic_base`; `IA32_TSC_DEADLINE` → `tsc_deadline`
//!    / `set_tsc_deadline`. PIO 0x20/0x21/0xa0/0xa1/0x4d0/0x4d1 →
//!    `pic.port_*`; 0x40-0x43 → `pit.port_*`; 0x61 → `pit.speaker_*`.
//!    IOAPIC MMIO at `ioapic.base_address()` → `ioapic.mmio_*`.
//! 3. After a LAPIC call, unlock it, then carry out the `LapicEffects`:
//!    `ipi` → `apic_bus::deliver(bus, Some(self_index), &ipi, &cfg)`;
//!    `eoi` → `ioapic.eoi(env, self_index, vector, trigger,
//!    suppress_broadcast)`. Its `IoapicEnv::irq_acked(pin)` is the ack
//!    notifier hook: an irqfd resampler returns its source bit (the IOAPIC
//!    lowers it before re-evaluating the pin) and later lowers the PIC
//!    side and signals the resamplefd; GSI 0 records a PIT ack, and after
//!    `eoi` returns `pit.irq_acked()` → pulse GSI 0 again on `true`. A
//!    `deferred_reinject` result asks for `ioapic.deferred_reinject()`
//!    ~10 ms later. `timer_changed` → re-arm the hrtimer.
//! 4. After a PIC call: `pic.take_wakeup()` → kick the first vCPU whose
//!    LAPIC accepts PIC interrupts; `pic.take_acked_pins()` → the same ack
//!    notifiers for the GSIs of those pins ([`routing::ChipPinMap::pic_gsi`]).
//! 5. KVM_IRQ_LINE(_STATUS) / irqfd → [`routing::set_irq`] over
//!    `routes_for_gsi(table, gsi)`; KVM_SIGNAL_MSI → [`msi::signal_msi`].
//!    The return value is KVM_IRQ_LINE_STATUS's `status` (> 0 delivered to
//!    that many CPUs, 0 coalesced, < 0 masked/ignored).
//! 6. A halted vCPU is runnable when `highest_injectable_vector()` is some,
//!    the PIC output is high and accepted, or `pending_events().any()`.
//! 7. State ioctls: KVM_GET/SET_LAPIC ↔ `get_state` / `set_state` (restore
//!    APIC_BASE first); KVM_GET/SET_IRQCHIP ↔ `pic.get_state(chip)` /
//!    `set_state`, `ioapic.get_state` / `set_state`; KVM_GET/SET_PIT2 ↔
//!    `pit.get_state2` / `set_state2`; KVM_REINJECT_CONTROL →
//!    `pit.set_reinject_policy`; KVM_CAP_X2APIC_API → [`BusConfig`] (pass
//!    it to `deliver`, `signal_msi`, `Ioapic::set_bus_config` and the
//!    `x2apic_format` argument of the LAPIC state calls).

pub mod apic_bus;
pub mod arith;
pub mod clock;
pub mod delivery;
pub mod i8254;
pub mod i8259;
pub mod ioapic;
pub mod lapic;
pub mod lapic_access;
pub mod lapic_page;
pub mod lapic_regs;
pub mod lapic_state;
pub mod lapic_timer;
pub mod msi;
pub mod routing;
pub mod uapi;

pub use apic_bus::{deliver, matches_dest, ApicBus, ApicDestInfo, BusConfig};
pub use clock::{Clock, ClockSnapshot};
pub use delivery::{Delivery, DeliveryMode, DestMode, Shorthand, TriggerMode};
pub use i8254::{Pit, ReinjectPolicy};
pub use i8259::{Pic, PicChip};
pub use ioapic::{Ioapic, IoapicEnv, RedirEntry};
pub use lapic::{EoiEvent, Lapic, LapicAccessError, LapicConfig, LapicEffects, PendingEvents};
pub use lapic_regs::Lvt;
pub use msi::{signal_msi, MsiMessage};
pub use routing::{
    prepare_routes, routes_for_gsi, set_irq, ChipPinMap, IrqChip, IrqLines, RouteEntry,
    RouteTarget, DEFAULT_ROUTES,
};
