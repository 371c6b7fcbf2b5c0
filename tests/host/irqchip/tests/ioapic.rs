//! IOAPIC: IOREGSEL/IOWIN, redirection table, edge vs level, remote IRR,
//! EOI handling, masking, resampling, storm mitigation, RTC coalescing and
//! the KVM_GET/SET_IRQCHIP image.

mod common;

use common::{clk, Bus};
use rkvm_irqchip::irqchip::ioapic::*;
use rkvm_irqchip::irqchip::*;

fn read(io: &Ioapic, sel: u32) -> u32 {
    let mut io2 = io.clone();
    let mut bus = Bus::new(0, false);
    io2.mmio_write(&mut bus, IOAPIC_REG_SELECT, &sel.to_le_bytes());
    let mut b = [0u8; 4];
    io2.mmio_read(IOAPIC_REG_WINDOW, &mut b);
    u32::from_le_bytes(b)
}

fn write(io: &mut Ioapic, bus: &mut Bus, sel: u32, v: u32) {
    io.mmio_write(bus, IOAPIC_REG_SELECT, &sel.to_le_bytes());
    io.mmio_write(bus, IOAPIC_REG_WINDOW, &v.to_le_bytes());
}

/// Programs `pin` with a 64-bit entry (high word first, like Linux).
fn program(io: &mut Ioapic, bus: &mut Bus, pin: u32, entry: u64) {
    write(io, bus, 0x10 + 2 * pin + 1, (entry >> 32) as u32);
    write(io, bus, 0x10 + 2 * pin, entry as u32);
}

const LEVEL: u64 = RedirEntry::LEVEL;
const MASKED: u64 = RedirEntry::MASKED;

#[test]
fn registers() {
    let mut bus = Bus::new(1, true);
    let mut io = Ioapic::new();
    assert_eq!(read(&io, IOAPIC_REG_VERSION), 0x0017_0011);
    write(&mut io, &mut bus, IOAPIC_REG_APIC_ID, 0xff00_0000);
    assert_eq!(read(&io, IOAPIC_REG_APIC_ID), 0x0f00_0000);
    assert_eq!(read(&io, IOAPIC_REG_ARB_ID), 0x0f00_0000);
    write(&mut io, &mut bus, IOAPIC_REG_VERSION, 0);
    assert_eq!(read(&io, IOAPIC_REG_VERSION), 0x0017_0011);
    // Reset: every pin masked.
    for pin in 0..24 {
        assert_eq!(read(&io, 0x10 + 2 * pin), 0x1_0000);
    }
    // Read-only bits (delivery status, remote IRR) are preserved.
    write(&mut io, &mut bus, 0x10, 0xffff_ffff);
    assert_eq!(
        read(&io, 0x10),
        0xffff_afff,
        "remote IRR (bit 14) and delivery status (bit 12) stay clear"
    );
    write(&mut io, &mut bus, 0x11, 0xab00_0000);
    assert_eq!(io.entry(0).unwrap().dest_id(), 0xab);
    // Out-of-range indices read all ones; IOREGSEL is 8 bits.
    assert_eq!(read(&io, 0x10 + 48), 0xffff_ffff);
    assert_eq!(read(&io, 0x05), 0xffff_ffff);
    io.mmio_write(&mut bus, IOAPIC_REG_SELECT, &0x1234u32.to_le_bytes());
    let mut b = [0u8; 4];
    io.mmio_read(IOAPIC_REG_SELECT, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x34);
    // Byte and 8-byte accesses, unused offsets.
    let mut one = [0u8; 1];
    io.mmio_read(IOAPIC_REG_SELECT, &mut one);
    assert_eq!(one, [0x34]);
    let mut eight = [0xaau8; 8];
    io.mmio_read(IOAPIC_REG_WINDOW, &mut eight);
    assert_eq!(eight, [0; 8]);
    io.mmio_read(0x20, &mut b);
    assert_eq!(b, [0; 4]);
    io.mmio_write(
        &mut bus,
        IOAPIC_REG_SELECT,
        &[0x10, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
    );
    assert_eq!(read(&io, 0x10) & 0xff, 0xff);
}

#[test]
fn edge_delivery_coalescing_and_mask() {
    let mut bus = Bus::new(2, true);
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 4, (1u64 << 56) | 0x34);
    assert_eq!(io.set_irq(&mut bus, 4, 0, true, true), 1);
    assert_eq!(bus.lapics[1].highest_irr(), Some(0x34));
    assert_eq!(
        io.get_state().irr & (1 << 4),
        0,
        "a delivered edge is not reported as pending"
    );
    // Line still high: a second assert is coalesced.
    assert_eq!(io.set_irq(&mut bus, 4, 0, true, true), 0);
    assert_eq!(io.set_irq(&mut bus, 4, 0, false, true), 1);
    assert_eq!(io.set_irq(&mut bus, 4, 0, true, true), 1);
    // Two sources on one pin are ORed.
    assert_eq!(io.set_irq(&mut bus, 4, 1, true, true), 0);
    assert_eq!(
        io.set_irq(&mut bus, 4, 0, false, true),
        0,
        "still high through source 1"
    );
    // Masked: ignored (-1); the edge stays pending and the KVM state shows it.
    program(&mut io, &mut bus, 5, MASKED | 0x35);
    assert_eq!(io.set_irq(&mut bus, 5, 0, true, true), -1);
    assert_eq!(io.get_state().irr & (1 << 5), 1 << 5);
    assert_eq!(
        io.get_state().irr & (1 << 4),
        1 << 4,
        "a coalesced edge is reported (upstream)"
    );
    // Invalid pins and sources.
    assert_eq!(io.set_irq(&mut bus, 24, 0, true, true), -1);
    assert_eq!(io.set_irq(&mut bus, 3, 32, true, true), -1);
}

#[test]
fn level_remote_irr_and_eoi() {
    let mut bus = Bus::new(1, true);
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 10, LEVEL | 0x5a);
    assert_eq!(io.set_irq(&mut bus, 10, 0, true, true), 1);
    assert!(io.entry(10).unwrap().remote_irr());
    // While waiting for EOI, re-asserting is ignored.
    assert_eq!(io.set_irq(&mut bus, 10, 0, true, true), -1);
    // The guest takes it; the LAPIC reports a level EOI.
    assert_eq!(bus.ack(0), Some(0x5a));
    let eoi = bus.lapics[0].eoi().unwrap();
    assert_eq!(eoi.trigger, TriggerMode::Level);
    // Line still asserted: redelivered at EOI.
    let r = io.eoi(&mut bus, 0, eoi.vector, eoi.trigger, eoi.suppress_broadcast);
    assert_eq!(r.acked_pins, 1 << 10);
    assert!(!r.deferred_reinject);
    assert_eq!(bus.acked, [10]);
    assert!(io.entry(10).unwrap().remote_irr());
    assert_eq!(bus.lapics[0].highest_irr(), Some(0x5a));
    // Device deasserts; the next EOI leaves the pin idle.
    assert_eq!(io.set_irq(&mut bus, 10, 0, false, true), 1);
    bus.ack(0);
    let eoi = bus.lapics[0].eoi().unwrap();
    io.eoi(&mut bus, 0, eoi.vector, eoi.trigger, false);
    assert!(!io.entry(10).unwrap().remote_irr());
    assert_eq!(bus.lapics[0].highest_irr(), None);
    // An edge EOI of the same vector does not touch remote IRR.
    assert_eq!(io.set_irq(&mut bus, 10, 0, true, true), 1);
    io.eoi(&mut bus, 0, 0x5a, TriggerMode::Edge, false);
    assert!(io.entry(10).unwrap().remote_irr());
    // Suppressed broadcast: ack notifiers run, remote IRR stays.
    bus.acked.clear();
    io.eoi(&mut bus, 0, 0x5a, TriggerMode::Level, true);
    assert_eq!(bus.acked, [10]);
    assert!(io.entry(10).unwrap().remote_irr());
    // Reprogramming as edge drops remote IRR (Linux's EOI workaround).
    program(&mut io, &mut bus, 10, 0x5a);
    assert!(!io.entry(10).unwrap().remote_irr());
}

#[test]
fn eoi_from_non_target_is_ignored() {
    let mut bus = Bus::new(2, true);
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 3, LEVEL | 0x70);
    io.set_irq(&mut bus, 3, 0, true, true);
    bus.acked.clear();
    io.set_irq(&mut bus, 3, 0, false, true);
    // vCPU 1 is not the destination and remote IRR is... set: the EOI of a
    // rerouted in-flight interrupt is honoured.
    let r = io.eoi(&mut bus, 1, 0x70, TriggerMode::Level, false);
    assert_eq!(r.acked_pins, 1 << 3);
    // Once idle, vCPU 1's EOIs of that vector are not for this pin.
    let r = io.eoi(&mut bus, 1, 0x70, TriggerMode::Level, false);
    assert_eq!(r.acked_pins, 0);
}

#[test]
fn unmask_delivers_pending_level_or_resamples() {
    let mut bus = Bus::new(1, true);
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 7, MASKED | LEVEL | 0x47);
    assert_eq!(io.set_irq(&mut bus, 7, 0, true, true), -1);
    program(&mut io, &mut bus, 7, LEVEL | 0x47);
    assert_eq!(bus.mask_events, [(7, false)]);
    assert_eq!(bus.lapics[0].highest_irr(), Some(0x47));
    assert!(io.entry(7).unwrap().remote_irr());
    // With an irqfd resampler the stale request is dropped instead.
    let mut bus = Bus::new(1, true);
    bus.resampler_pins = 1 << 7;
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 7, MASKED | LEVEL | 0x47);
    io.set_irq(&mut bus, 7, 1, true, true);
    program(&mut io, &mut bus, 7, LEVEL | 0x47);
    assert_eq!(bus.resampled, [7]);
    assert_eq!(bus.lapics[0].highest_irr(), None);
    assert_eq!(io.irr() & (1 << 7), 0);
}

#[test]
fn ack_notifier_lowers_resample_source() {
    let mut bus = Bus::new(1, true);
    bus.lower_on_ack = 1 << 1;
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 9, LEVEL | 0x66);
    // irqfd (source 1) asserts the level line.
    assert_eq!(io.set_irq(&mut bus, 9, 1, true, false), 1);
    bus.ack(0);
    let eoi = bus.lapics[0].eoi().unwrap();
    io.eoi(&mut bus, 0, eoi.vector, eoi.trigger, false);
    // The resampler lowered source 1 before re-evaluation: no redelivery.
    assert_eq!(bus.lapics[0].highest_irr(), None);
    assert!(!io.entry(9).unwrap().remote_irr());
    assert_eq!(io.irr() & (1 << 9), 0);
}

#[test]
fn interrupt_storm_is_deferred() {
    let mut bus = Bus::new(1, true);
    let mut io = Ioapic::new();
    program(&mut io, &mut bus, 2, LEVEL | 0x80);
    io.set_irq(&mut bus, 2, 0, true, false);
    let mut deferred_at = None;
    for i in 1..=IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT {
        bus.ack(0);
        let eoi = bus.lapics[0].eoi().unwrap();
        if io
            .eoi(&mut bus, 0, eoi.vector, eoi.trigger, false)
            .deferred_reinject
        {
            deferred_at = Some(i);
            break;
        }
    }
    assert_eq!(deferred_at, Some(IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT));
    assert_eq!(bus.lapics[0].highest_irr(), None);
    io.deferred_reinject(&mut bus);
    assert_eq!(bus.lapics[0].highest_irr(), Some(0x80));
}

#[test]
fn rtc_coalescing() {
    let mut bus = Bus::new(2, true);
    let mut io = Ioapic::new();
    // RTC (pin 8), edge, broadcast to both vCPUs.
    program(&mut io, &mut bus, 8, (0xffu64 << 56) | 0x28);
    assert_eq!(io.set_irq(&mut bus, 8, 0, true, true), 2);
    io.set_irq(&mut bus, 8, 0, false, true);
    assert_eq!(io.rtc_pending_eoi(), 2);
    assert_eq!(io.set_irq(&mut bus, 8, 0, true, true), 0, "tick coalesced");
    io.set_irq(&mut bus, 8, 0, false, true);
    for vcpu in 0..2 {
        bus.ack(vcpu);
        let eoi = bus.lapics[vcpu].eoi().unwrap();
        io.eoi(&mut bus, vcpu, eoi.vector, eoi.trigger, false);
    }
    assert_eq!(io.rtc_pending_eoi(), 0);
    assert_eq!(io.set_irq(&mut bus, 8, 0, true, true), 2);
    // Restore tracking from the LAPICs after a state load.
    let state = io.get_state();
    let mut io2 = Ioapic::new();
    io2.set_state(&mut bus, &state);
    assert_eq!(io2.rtc_pending_eoi(), 2);
}

#[test]
fn state_round_trip() {
    let mut bus = Bus::new(1, true);
    let mut io = Ioapic::new();
    write(&mut io, &mut bus, IOAPIC_REG_APIC_ID, 0x0300_0000);
    program(&mut io, &mut bus, 1, MASKED | LEVEL | 0x31);
    program(&mut io, &mut bus, 2, (1u64 << 56) | 0x32);
    io.set_irq(&mut bus, 1, 0, true, true);
    io.mmio_write(&mut bus, IOAPIC_REG_SELECT, &0x12u32.to_le_bytes());
    let s = io.get_state();
    assert_eq!(s.base_address, 0xfec0_0000);
    assert_eq!((s.id, s.ioregsel, s.irr), (3, 0x12, 1 << 1));
    assert_eq!(s.redirtbl[2], (1u64 << 56) | 0x32);
    let mut io2 = Ioapic::new();
    io2.set_state(&mut bus, &s);
    assert_eq!(io2.get_state(), s);
    // Loading a pending unmasked level pin delivers it.
    let mut s2 = s;
    s2.redirtbl[1] &= !MASKED;
    let mut bus2 = Bus::new(1, true);
    let mut io3 = Ioapic::new();
    io3.set_state(&mut bus2, &s2);
    assert_eq!(bus2.lapics[0].highest_irr(), Some(0x31));
    assert!(io3.entry(1).unwrap().remote_irr());
    let _ = clk(0);
}
