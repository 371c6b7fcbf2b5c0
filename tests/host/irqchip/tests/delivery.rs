//! Destination matching and fan-out over several LAPICs: physical,
//! logical flat/cluster, x2APIC cluster, shorthands, broadcast, lowest
//! priority, and the IPI path from an ICR write to the target's IRR.

mod common;

use common::{clk, Bus};
use rkvm_irqchip::irqchip::lapic_regs::*;
use rkvm_irqchip::irqchip::*;

fn msg(vector: u8, dest_id: u32, dest_mode: DestMode) -> Delivery {
    Delivery {
        dest_mode,
        ..Delivery::fixed(vector, dest_id)
    }
}

fn set(bus: &mut Bus, i: usize, off: u32, v: u32) {
    let _ = bus.lapics[i].write_reg(off, v, &clk(0)).unwrap();
}

fn got(bus: &Bus) -> Vec<bool> {
    bus.irrs().iter().map(|v| v.is_some()).collect()
}

#[test]
fn physical_unicast_and_broadcast() {
    let mut bus = Bus::new(4, true);
    let cfg = BusConfig::default();
    assert_eq!(
        deliver(&mut bus, None, &msg(0x40, 2, DestMode::Physical), &cfg),
        1
    );
    assert_eq!(got(&bus), [false, false, true, false]);
    // Unknown unicast destination: 0 (nobody), not -1.
    assert_eq!(
        deliver(&mut bus, None, &msg(0x41, 9, DestMode::Physical), &cfg),
        0
    );
    assert_eq!(
        deliver(&mut bus, None, &msg(0x42, 0xff, DestMode::Physical), &cfg),
        4
    );
    // The xAPIC ID is writable and matching follows it.
    set(&mut bus, 3, APIC_ID, 0x2000_0000);
    let mut fresh = Bus::new(0, true);
    fresh.lapics = bus.lapics.clone();
    for l in &mut fresh.lapics {
        l.reset(true);
        common::sw_enable(l);
    }
    assert_eq!(
        deliver(&mut fresh, None, &msg(0x43, 0x20, DestMode::Physical), &cfg),
        1
    );
    assert_eq!(got(&fresh), [false, false, false, true]);
}

#[test]
fn hardware_disabled_apic_is_invisible() {
    let mut bus = Bus::new(2, true);
    let _ = bus.lapics[1].set_apic_base(0xfee0_0000, false).unwrap();
    assert_eq!(
        deliver(
            &mut bus,
            None,
            &msg(0x40, 0xff, DestMode::Physical),
            &BusConfig::default()
        ),
        1
    );
    assert_eq!(got(&bus), [true, false]);
    // Broadcast with no recipient at all is "ignored" (-1).
    let _ = bus.lapics[0].set_apic_base(0xfee0_0000, false).unwrap();
    assert_eq!(
        deliver(
            &mut bus,
            None,
            &msg(0x40, 0xff, DestMode::Physical),
            &BusConfig::default()
        ),
        -1
    );
}

#[test]
fn logical_flat_and_cluster() {
    let mut bus = Bus::new(4, true);
    for i in 0..4 {
        set(&mut bus, i, APIC_LDR, (1 << i) << 24);
    }
    let cfg = BusConfig::default();
    assert_eq!(
        deliver(&mut bus, None, &msg(0x40, 0b1010, DestMode::Logical), &cfg),
        2
    );
    assert_eq!(got(&bus), [false, true, false, true]);

    let mut bus = Bus::new(4, true);
    // Cluster model: cluster 1 = {0, 1}, cluster 2 = {2, 3}.
    for (i, ldr) in [(0, 0x11), (1, 0x12), (2, 0x21), (3, 0x22)] {
        set(&mut bus, i, APIC_DFR, 0x0fff_ffff);
        set(&mut bus, i, APIC_LDR, ldr << 24);
    }
    assert_eq!(
        deliver(&mut bus, None, &msg(0x40, 0x23, DestMode::Logical), &cfg),
        2
    );
    assert_eq!(got(&bus), [false, false, true, true]);
    assert_eq!(
        deliver(&mut bus, None, &msg(0x41, 0x12, DestMode::Logical), &cfg),
        1
    );
    assert_eq!(bus.lapics[1].highest_irr(), Some(0x41));
    assert_eq!(
        deliver(&mut bus, None, &msg(0x42, 0x30, DestMode::Logical), &cfg),
        0
    );
    // An APIC with a DFR that is neither flat nor cluster matches nothing
    // (DFR bits 27:0 always read as ones, so only 31:28 matter).
    set(&mut bus, 0, APIC_DFR, 0x5000_0000);
    assert_eq!(bus.lapics[0].reg(APIC_DFR), 0x5fff_ffff);
    assert!(!matches_dest(
        &bus.lapics[0].dest_info(),
        false,
        false,
        Shorthand::None,
        0x11,
        DestMode::Logical,
        &cfg
    ));
}

#[test]
fn x2apic_physical_and_cluster() {
    let mut bus = Bus::new(20, false);
    for l in &mut bus.lapics {
        let _ = l.set_apic_base(0xfee0_0c00, true).unwrap();
        let _ = l.x2apic_msr_write(0x80f, 0x1ff, &clk(0)).unwrap();
    }
    let cfg = BusConfig::default();
    assert_eq!(
        deliver(&mut bus, None, &msg(0x40, 17, DestMode::Physical), &cfg),
        1
    );
    assert!(bus.lapics[17].highest_irr().is_some());
    // Cluster 1 (IDs 16-31), members 16 and 18.
    assert_eq!(
        deliver(
            &mut bus,
            None,
            &msg(0x41, 0x1_0005, DestMode::Logical),
            &cfg
        ),
        2
    );
    assert_eq!(bus.lapics[16].highest_irr(), Some(0x41));
    assert_eq!(bus.lapics[18].highest_irr(), Some(0x41));
    // Cluster 0 member bit 3 = ID 3.
    assert_eq!(
        deliver(&mut bus, None, &msg(0x42, 0x0008, DestMode::Logical), &cfg),
        1
    );
    assert_eq!(bus.lapics[3].highest_irr(), Some(0x42));
    // Device message to 0xff: rewritten to the x2APIC broadcast (quirk)...
    assert_eq!(
        deliver(&mut bus, None, &msg(0x43, 0xff, DestMode::Physical), &cfg),
        20
    );
    // ...unless the quirk is disabled: 0xff is then a plain ID.
    let strict = BusConfig {
        broadcast_quirk_disabled: true,
        ..cfg
    };
    assert_eq!(
        deliver(
            &mut bus,
            None,
            &msg(0x44, 0xff, DestMode::Physical),
            &strict
        ),
        0
    );
    // IPIs are never rewritten.
    assert_eq!(
        deliver(
            &mut bus,
            Some(0),
            &msg(0x45, 0xff, DestMode::Physical),
            &cfg
        ),
        0
    );
    assert_eq!(
        deliver(
            &mut bus,
            Some(0),
            &msg(0x46, 0xffff_ffff, DestMode::Physical),
            &cfg
        ),
        20
    );
}

#[test]
fn xapic_target_reached_by_large_id() {
    // KVM's hotplug rule: a destination > 0xff matches the x2APIC ID even
    // for an APIC still in xAPIC mode.
    let mut bus = Bus::new(1, false);
    bus.lapics[0] = Lapic::new(LapicConfig::new(300, false));
    common::sw_enable(&mut bus.lapics[0]);
    assert_eq!(
        deliver(
            &mut bus,
            None,
            &msg(0x40, 300, DestMode::Physical),
            &BusConfig::default()
        ),
        1
    );
}

#[test]
fn shorthands() {
    let mut bus = Bus::new(3, true);
    let cfg = BusConfig::default();
    let m = |sh| Delivery {
        shorthand: sh,
        ..Delivery::fixed(0x50, 0)
    };
    assert_eq!(deliver(&mut bus, Some(1), &m(Shorthand::SelfOnly), &cfg), 1);
    assert_eq!(got(&bus), [false, true, false]);
    assert_eq!(
        deliver(&mut bus, Some(1), &m(Shorthand::AllExcludingSelf), &cfg),
        2
    );
    assert_eq!(got(&bus), [true, true, true]);
    let mut bus = Bus::new(3, true);
    assert_eq!(
        deliver(&mut bus, Some(2), &m(Shorthand::AllIncludingSelf), &cfg),
        3
    );
    // "All but self" on a single-vCPU VM reaches nobody.
    let mut solo = Bus::new(1, true);
    assert_eq!(
        deliver(&mut solo, Some(0), &m(Shorthand::AllExcludingSelf), &cfg),
        -1
    );
}

#[test]
fn lowest_priority_vector_hashing() {
    let mut bus = Bus::new(4, true);
    for i in 0..4 {
        set(&mut bus, i, APIC_LDR, (1 << i) << 24);
    }
    // Candidate 3 is software disabled.
    set(&mut bus, 3, APIC_SPIV, 0xff);
    let cfg = BusConfig::default();
    let lp = |v| Delivery {
        delivery_mode: DeliveryMode::LowestPriority,
        ..msg(v, 0x0f, DestMode::Logical)
    };
    // Candidates {0,1,2}: vector 0x40 % 3 = 1 → second candidate.
    assert_eq!(deliver(&mut bus, None, &lp(0x40), &cfg), 1);
    assert_eq!(got(&bus), [false, true, false, false]);
    assert_eq!(deliver(&mut bus, None, &lp(0x42), &cfg), 1);
    assert_eq!(bus.lapics[0].highest_irr(), Some(0x42));
    // Redirection hint on an MSI behaves the same.
    let hinted = Delivery {
        msi_redir_hint: true,
        ..msg(0x44, 0x0f, DestMode::Logical)
    };
    assert_eq!(deliver(&mut bus, None, &hinted, &cfg), 1);
    assert_eq!(bus.lapics[2].highest_irr(), Some(0x44));
    // Physical broadcast + lowest priority degrades to fixed.
    let bcast = Delivery {
        delivery_mode: DeliveryMode::LowestPriority,
        ..msg(0x60, 0xff, DestMode::Physical)
    };
    assert_eq!(
        deliver(&mut bus, None, &bcast, &cfg),
        3,
        "three enabled APICs accept"
    );
}

#[test]
fn ipi_from_icr_reaches_target() {
    let mut bus = Bus::new(2, true);
    let _ = bus.lapics[0]
        .write_reg(APIC_ICR2, 1 << 24, &clk(0))
        .unwrap();
    let fx = bus.lapics[0]
        .write_reg(APIC_ICR, 0x4000 | 0x61, &clk(0))
        .unwrap();
    let ipi = fx.ipi.unwrap();
    assert_eq!(deliver(&mut bus, Some(0), &ipi, &BusConfig::default()), 1);
    assert_eq!(bus.ack(1), Some(0x61));
    // INIT-SIPI-SIPI to the AP.
    for low in [0x0000_c500, 0x0000_8500, 0x0000_0608, 0x0000_0608] {
        let fx = bus.lapics[0].write_reg(APIC_ICR, low, &clk(0)).unwrap();
        let _ = deliver(&mut bus, Some(0), &fx.ipi.unwrap(), &BusConfig::default());
    }
    let ev = bus.lapics[1].take_events();
    assert!(ev.init);
    assert_eq!(ev.sipi, Some(0x08));
    // NMI IPI.
    let fx = bus.lapics[0]
        .write_reg(APIC_ICR, 0x0000_0400, &clk(0))
        .unwrap();
    assert_eq!(
        deliver(&mut bus, Some(0), &fx.ipi.unwrap(), &BusConfig::default()),
        1
    );
    assert_eq!(bus.lapics[1].take_events().nmis, 1);
}

#[test]
fn observer_sees_accepting_apics() {
    let mut bus = Bus::new(3, true);
    bus.lapics[1].reset(true); // software disabled: refuses fixed
    let mut seen = Vec::new();
    let r = apic_bus::deliver_observed(
        &mut bus,
        None,
        &msg(0x40, 0xff, DestMode::Physical),
        &BusConfig::default(),
        &mut |i| seen.push(i),
    );
    assert_eq!(r, 2);
    assert_eq!(seen, [0, 2]);
}
