//! Randomized robustness: arbitrary register traffic, pin changes, EOIs,
//! timer services and state images thrown at every model from a seeded
//! RNG. Asserts that nothing panics (overflow checks are on) and that the
//! models' invariants hold. `RKVM_FUZZ_ITERS` scales the run length.

mod common;

use common::{clk, Bus, Rng};
use rkvm_irqchip::irqchip::lapic_regs::*;
use rkvm_irqchip::irqchip::lapic_timer::TimerMode;
use rkvm_irqchip::irqchip::routing::*;
use rkvm_irqchip::irqchip::uapi::*;
use rkvm_irqchip::irqchip::*;

fn iters() -> u64 {
    std::env::var("RKVM_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// Fixed seeds, plus `RKVM_FUZZ_SEED` when set.
fn seeds() -> Vec<u64> {
    let mut seeds = vec![1, 0xdead_beef, 0x1234_5678_9abc_def0, 42];
    if let Some(extra) = std::env::var("RKVM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        seeds.push(extra);
    }
    seeds
}

const LAPIC_OFFSETS: [u32; 30] = [
    APIC_ID,
    APIC_LVR,
    APIC_TASKPRI,
    APIC_ARBPRI,
    APIC_PROCPRI,
    APIC_EOI,
    0xc0,
    APIC_LDR,
    APIC_DFR,
    APIC_SPIV,
    APIC_ISR,
    0x170,
    APIC_TMR,
    APIC_IRR,
    0x270,
    APIC_ESR,
    APIC_LVTCMCI,
    APIC_ICR,
    APIC_ICR2,
    APIC_LVTT,
    APIC_LVTTHMR,
    APIC_LVTPC,
    APIC_LVT0,
    APIC_LVT1,
    APIC_LVTERR,
    APIC_TMICT,
    APIC_TMCCT,
    APIC_TDCR,
    APIC_SELF_IPI,
    0x400,
];

fn check_lapic_invariants(l: &Lapic) {
    let tpr = l.reg(APIC_TASKPRI) & 0xff;
    let isr = l.highest_isr().map_or(0, u32::from);
    let expect = if (tpr & 0xf0) >= (isr & 0xf0) {
        tpr
    } else {
        isr & 0xf0
    };
    assert_eq!(u32::from(l.ppr()), expect, "PPR");
    if let Some(v) = l.highest_injectable_vector() {
        assert_eq!(Some(v), l.highest_irr());
        assert!(u32::from(v) & 0xf0 > u32::from(l.ppr()));
        assert!(l.hw_enabled());
    }
}

fn random_value(rng: &mut Rng) -> u32 {
    match rng.below(4) {
        0 => rng.u32(),
        1 => u32::from(rng.u8()),
        2 => rng.pick(&[
            0, 0x1ff, 0xff, 0x1_0000, 0x2_0040, 0x4_0040, 0x6_0040, 0x700, 0x400, 0x500, 0x600,
            0xc_4500, 0x8_0040,
        ]),
        _ => rng.u32() & 0x000f_ffff,
    }
}

fn lapic_roundtrip(l: &Lapic, now: u64, x2apic_format: bool) {
    let c = clk(now);
    let img = l.get_state(&c, x2apic_format);
    let mut m = Lapic::new(*l.config());
    let _ = m.set_apic_base(l.apic_base(), true).unwrap();
    let _ = m.set_tsc_deadline(0, &c);
    let _ = m.set_state(&img, &c, x2apic_format).unwrap();
    let again = m.get_state(&c, x2apic_format);
    // An expired one-shot count (TMCCT 0) fires once more on the load, as
    // upstream's: the timer vector may be new in IRR.
    let refired = (l.timer_mode() == TimerMode::OneShot
        && img.reg(APIC_TMCCT) == 0
        && img.reg(APIC_TMICT) != 0)
        .then(|| img.reg(APIC_LVTT) & 0xff);
    for off in (0..1024u32).step_by(4) {
        if let Some(v) = refired {
            if off == APIC_IRR + (v / 32) * 0x10 {
                let bit = 1u32 << (v % 32);
                assert_eq!(
                    again.reg(off) & !bit,
                    img.reg(off) & !bit,
                    "IRR after the re-fire"
                );
                continue;
            }
        }
        if off == APIC_TMCCT && img.reg(APIC_TMCCT) > img.reg(APIC_TMICT) {
            // A count whose period was raised to the minimum periodic
            // period (and possibly switched to one-shot since: upstream's
            // apic_update_lvtt() does not restart it) can exceed TMICT;
            // KVM_SET_LAPIC then restores at most one (clamped) period, as
            // upstream's set_target_expiration() does, never more.
            assert!(
                again.reg(off) <= img.reg(off),
                "restored TMCCT beyond the saved count"
            );
            continue;
        }
        assert_eq!(
            again.reg(off),
            img.reg(off),
            "LAPIC image round trip at {off:#x} mode {:?} lvtt {:#x} hw {}",
            l.timer_mode(),
            l.reg(APIC_LVTT),
            l.hw_enabled()
        );
    }
}

#[test]
fn lapic_random_traffic() {
    for seed in seeds() {
        let mut rng = Rng::new(seed);
        let mut bus = Bus::new(3, true);
        bus.lapics[2] = {
            let mut cfg = LapicConfig::new(0x1_0002, false);
            cfg.cmci_supported = true;
            cfg.directed_eoi_advertised = true;
            cfg.bus_cycle_ns = 7;
            Lapic::new(cfg)
        };
        let mut now: u64 = 0;
        for step in 0..iters() {
            now = now.saturating_add(rng.below(50_000));
            if rng.below(1000) == 0 {
                now = rng.next();
            }
            let c = clk(now);
            let i = rng.below(3) as usize;
            let mut fx = LapicEffects::default();
            match rng.below(16) {
                0..=4 => {
                    let off = u64::from(rng.pick(&LAPIC_OFFSETS))
                        + if rng.below(8) == 0 { rng.below(16) } else { 0 };
                    let v = random_value(&mut rng);
                    let len = rng.pick(&[4usize, 4, 4, 1, 2, 8]);
                    let bytes = v.to_le_bytes();
                    let data: Vec<u8> = (0..len)
                        .map(|k| bytes.get(k).copied().unwrap_or(0))
                        .collect();
                    fx = bus.lapics[i].mmio_write(off, &data, &c);
                }
                5 => {
                    let off = u64::from(rng.pick(&LAPIC_OFFSETS)) + rng.below(4);
                    let mut buf = vec![0u8; rng.pick(&[1usize, 2, 4, 8])];
                    bus.lapics[i].mmio_read(off, &mut buf, &c);
                }
                6 | 7 => {
                    let msr = 0x800
                        + (rng.pick(&LAPIC_OFFSETS) >> 4)
                        + if rng.below(10) == 0 {
                            rng.u32() % 0x200
                        } else {
                            0
                        };
                    let v = if rng.bool() {
                        u64::from(random_value(&mut rng))
                    } else {
                        rng.next()
                    };
                    if rng.bool() {
                        fx = bus.lapics[i]
                            .x2apic_msr_write(msr, v, &c)
                            .unwrap_or_default();
                    } else {
                        let _ = bus.lapics[i].x2apic_msr_read(msr, &c);
                    }
                }
                8 => {
                    let base = rng.pick(&[
                        0xfee0_0800u64,
                        0xfee0_0c00,
                        0xfee0_0000,
                        0xfee0_0900,
                        0xfed0_0c00,
                        0x400,
                    ]) | if rng.below(10) == 0 { rng.next() } else { 0 };
                    fx = bus.lapics[i]
                        .set_apic_base(base, rng.bool())
                        .unwrap_or_default();
                }
                9 => {
                    let d = Delivery {
                        vector: rng.u8(),
                        delivery_mode: DeliveryMode::from_bits(rng.u32()),
                        dest_mode: DestMode::from_logical(rng.bool()),
                        trigger: TriggerMode::from_level(rng.bool()),
                        level: rng.bool(),
                        shorthand: Shorthand::from_bits(rng.u32()),
                        dest_id: rng.pick(&[0, 1, 2, 0xff, 0xffff_ffff, 0x1_0002, 0x1_0004])
                            ^ if rng.below(5) == 0 { rng.u32() } else { 0 },
                        msi_redir_hint: rng.bool(),
                    };
                    let src = if rng.bool() { Some(i) } else { None };
                    let cfg = BusConfig {
                        x2apic_format: rng.bool(),
                        broadcast_quirk_disabled: rng.bool(),
                        msi_ext_dest_id: rng.bool(),
                    };
                    let r = deliver(&mut bus, src, &d, &cfg);
                    assert!((-1..=3).contains(&r), "delivery count {r}");
                }
                10 => {
                    if let Some(v) = bus.lapics[i].highest_injectable_vector() {
                        bus.lapics[i].ack_interrupt(v);
                    }
                }
                11 => {
                    let _ = bus.lapics[i].eoi();
                }
                12 => {
                    if let Some(d) = bus.lapics[i].timer_deadline_ns() {
                        now = now.max(d);
                    }
                    let _ = bus.lapics[i].service_timer(&clk(now));
                }
                13 => {
                    let v = if rng.bool() {
                        now.saturating_add(rng.below(1_000_000))
                    } else {
                        rng.next()
                    };
                    fx = bus.lapics[i].set_tsc_deadline(v, &c);
                    let _ = bus.lapics[i].tsc_deadline();
                }
                14 => {
                    let _ = bus.lapics[i].deliver_lvt(ALL_LVTS[rng.below(7) as usize]);
                    let _ = bus.lapics[i].take_events();
                    bus.lapics[i].set_cr8(rng.next());
                }
                _ => {
                    if rng.below(8) == 0 {
                        bus.lapics[i].reset(rng.bool());
                    } else {
                        let mut img = bus.lapics[i].get_state(&c, rng.bool());
                        for _ in 0..rng.below(4) {
                            let k = rng.below(1024) as usize;
                            img.regs[k] = rng.u8();
                        }
                        let _ = bus.lapics[i].set_state(&img, &c, rng.bool());
                    }
                }
            }
            if let Some(ipi) = fx.ipi {
                let _ = deliver(&mut bus, Some(i), &ipi, &BusConfig::default());
            }
            for l in &bus.lapics {
                check_lapic_invariants(l);
            }
            if step % 64 == 0 {
                lapic_roundtrip(&bus.lapics[i], now, rng.bool());
            }
        }
    }
}

#[test]
fn ioapic_random_traffic() {
    for seed in seeds() {
        let mut rng = Rng::new(seed);
        let mut bus = Bus::new(2, true);
        let mut io = Ioapic::new();
        for _ in 0..iters() {
            bus.lower_on_ack = if rng.below(4) == 0 { rng.u32() } else { 0 };
            bus.resampler_pins = if rng.below(4) == 0 { rng.u32() } else { 0 };
            match rng.below(9) {
                0 | 1 => {
                    let sel = if rng.bool() {
                        0x10 + rng.below(50) as u32
                    } else {
                        rng.u32()
                    };
                    io.mmio_write(&mut bus, 0, &sel.to_le_bytes());
                }
                2 | 3 => {
                    let v = match rng.below(3) {
                        0 => rng.u32(),
                        1 => (rng.u32() & 0x1_e7ff) | 0x20,
                        _ => rng.u32() & 0xff00_0000,
                    };
                    let len = rng.pick(&[4usize, 4, 1, 2, 8, 3]);
                    let data: Vec<u8> = (0..len)
                        .map(|k| v.to_le_bytes().get(k).copied().unwrap_or(0xff))
                        .collect();
                    io.mmio_write(
                        &mut bus,
                        rng.pick(&[0x10u64, 0x10, 0, 0x20, 0xff, 0x1010]),
                        &data,
                    );
                }
                4 => {
                    let mut buf = vec![0u8; rng.pick(&[1usize, 2, 4, 8, 0])];
                    io.mmio_read(rng.pick(&[0u64, 0x10, 0x14, 0x40]), &mut buf);
                }
                5 | 6 => {
                    let pin = rng.below(26) as usize;
                    let r = io.set_irq(&mut bus, pin, rng.below(34) as u32, rng.bool(), rng.bool());
                    assert!((-1..=2).contains(&r));
                }
                7 => {
                    let i = rng.below(3) as usize;
                    let (vector, trigger, suppress) = match bus.lapics.get_mut(i).and_then(|l| {
                        let v = l.highest_injectable_vector()?;
                        l.ack_interrupt(v);
                        l.eoi()
                    }) {
                        Some(e) => (e.vector, e.trigger, e.suppress_broadcast),
                        None => (rng.u8(), TriggerMode::from_level(rng.bool()), rng.bool()),
                    };
                    let _ = io.eoi(&mut bus, i, vector, trigger, suppress);
                }
                _ => {
                    if rng.bool() {
                        let mut s = io.get_state();
                        if rng.bool() {
                            s.irr = rng.u32();
                            s.ioregsel = rng.u32();
                            s.id = rng.u32();
                            s.redirtbl[rng.below(24) as usize] = rng.next();
                        }
                        io.set_state(&mut bus, &s);
                    } else if rng.below(4) == 0 {
                        io.deferred_reinject(&mut bus);
                        io.rtc_restore_one(&bus, rng.below(4) as usize);
                    } else {
                        io.reset();
                    }
                }
            }
            assert_eq!(io.irr() >> 24, 0, "IRR has 24 pins");
            assert_eq!(io.get_state().irr & !io.irr(), 0);
            for l in &bus.lapics {
                check_lapic_invariants(l);
            }
        }
    }
}

#[test]
fn pic_random_traffic() {
    const PORTS: [u16; 8] = [0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1, 0x22, 0x61];
    for seed in seeds() {
        let mut rng = Rng::new(seed);
        let mut pic = Pic::new();
        for step in 0..iters() {
            match rng.below(6) {
                0 | 1 => pic.port_write(rng.pick(&PORTS), rng.u8()),
                2 => {
                    let _ = pic.port_read(rng.pick(&PORTS));
                }
                3 => {
                    let r = pic.set_irq(rng.below(18) as u8, rng.below(34) as u32, rng.bool());
                    assert!((-1..=1).contains(&r));
                }
                4 => {
                    let _ = pic.intack();
                    let _ = pic.take_acked_pins();
                }
                _ => {
                    let which = if rng.bool() {
                        PicChip::Master
                    } else {
                        PicChip::Slave
                    };
                    let mut s = pic.get_state(which);
                    if rng.below(4) == 0 {
                        s = KvmPicState {
                            irr: rng.u8(),
                            isr: rng.u8(),
                            imr: rng.u8(),
                            priority_add: rng.u8(),
                            irq_base: rng.u8(),
                            init_state: rng.u8(),
                            elcr: rng.u8(),
                            ..s
                        };
                    }
                    pic.set_state(which, &s);
                }
            }
            let _ = pic.take_wakeup();
            if step % 32 == 0 {
                // Loading re-evaluates the cascade (as upstream's
                // KVM_SET_IRQCHIP does), which can re-latch master IRQ2
                // after a master poll of IRQ2: normalize once, then a
                // round trip must reproduce the image exactly.
                let (m, s) = (
                    pic.get_state(PicChip::Master),
                    pic.get_state(PicChip::Slave),
                );
                pic.set_state(PicChip::Slave, &s);
                pic.set_state(PicChip::Master, &m);
                let (m, s) = (
                    pic.get_state(PicChip::Master),
                    pic.get_state(PicChip::Slave),
                );
                let mut copy = Pic::new();
                copy.set_state(PicChip::Slave, &s);
                copy.set_state(PicChip::Master, &m);
                assert_eq!(copy.get_state(PicChip::Master), m, "PIC master round trip");
                assert_eq!(copy.get_state(PicChip::Slave), s, "PIC slave round trip");
                assert_eq!(copy.output(), pic.output(), "INTR after round trip");
            }
        }
    }
}

#[test]
fn pit_random_traffic() {
    for seed in seeds() {
        let mut rng = Rng::new(seed);
        let mut now = 0u64;
        let mut pit = Pit::new(now);
        for _ in 0..iters() {
            now = now.saturating_add(rng.below(2_000_000));
            if rng.below(2000) == 0 {
                now = rng.next();
            }
            match rng.below(9) {
                0 | 1 => pit.port_write(0x40 + rng.below(5) as u16, rng.u8(), now),
                2 => pit.port_write(
                    0x43,
                    rng.pick(&[
                        0x34, 0x36, 0xb0, 0xb6, 0x00, 0x80, 0xc2, 0xe8, 0xd8, 0x31, 0x3f,
                    ]),
                    now,
                ),
                3 | 4 => {
                    let _ = pit.port_read(0x40 + rng.below(5) as u16, now);
                }
                5 => {
                    if let Some(d) = pit.next_deadline_ns() {
                        if rng.bool() {
                            now = now.max(d);
                        }
                    }
                    let _ = pit.service(now);
                    let _ = pit.irq_acked();
                }
                6 => {
                    pit.speaker_write(rng.u8(), now);
                    let _ = pit.speaker_read(now);
                }
                7 => {
                    pit.set_reinject_policy(if rng.bool() {
                        ReinjectPolicy::Reinject
                    } else {
                        ReinjectPolicy::Coalesce
                    });
                    pit.irq_mask_changed(rng.bool());
                }
                _ => {
                    let mut s = pit.get_state2();
                    if rng.bool() {
                        let c = &mut s.channels[rng.below(3) as usize];
                        *c = KvmPitChannelState {
                            count: {
                                let any = rng.u32();
                                rng.pick(&[0, 1, 2, 0x10000, u32::MAX, any])
                            },
                            latched_count: rng.next() as u16,
                            count_latched: rng.u8() % 6,
                            status_latched: rng.u8() % 2,
                            status: rng.u8(),
                            read_state: rng.u8() % 6,
                            write_state: rng.u8() % 6,
                            write_latch: rng.u8(),
                            rw_mode: rng.u8() % 5,
                            mode: {
                                let any = rng.u8();
                                rng.pick(&[0, 1, 2, 3, 4, 5, 0xff, any])
                            },
                            bcd: rng.u8() % 2,
                            gate: rng.u8() % 2,
                            count_load_time: rng.next() as i64,
                        };
                        s.flags = rng.u32() & 3;
                    }
                    pit.set_state2(&s, now);
                    let back = pit.get_state2();
                    assert_eq!(back.flags, s.flags);
                    assert_eq!(back.reserved, [0; 9]);
                    for (a, b) in back.channels.iter().zip(s.channels.iter()) {
                        assert_eq!(
                            (a.mode, a.rw_mode, a.status, a.latched_count),
                            (b.mode, b.rw_mode, b.status, b.latched_count)
                        );
                        assert_eq!(a.count, if b.count == 0 { 0x10000 } else { b.count });
                    }
                }
            }
            if pit.reinject_policy() == ReinjectPolicy::Coalesce {
                assert_eq!(pit.pending_ticks(), 0, "coalescing never queues ticks");
            }
        }
    }
}

#[test]
fn routing_random_tables() {
    for seed in seeds() {
        let mut rng = Rng::new(seed);
        for _ in 0..iters() / 20 {
            let cfg = BusConfig {
                x2apic_format: rng.bool(),
                ..BusConfig::default()
            };
            let mut table = Vec::new();
            for _ in 0..rng.below(40) {
                let mut e = KvmIrqRoutingEntry {
                    gsi: if rng.bool() {
                        rng.below(30) as u32
                    } else {
                        rng.u32()
                    },
                    type_: {
                        let any = rng.u32();
                        rng.pick(&[1, 2, 1, 2, 0, 3, 4, 5, any])
                    },
                    flags: if rng.below(3) == 0 { rng.u32() } else { 0 },
                    pad: rng.u32(),
                    u: [0; 8],
                };
                for w in &mut e.u {
                    *w = if rng.bool() {
                        rng.below(30) as u32
                    } else {
                        rng.u32()
                    };
                }
                if let Ok(r) = RouteEntry::from_uapi(&e, &cfg) {
                    assert!(r.gsi < KVM_MAX_IRQ_ROUTES);
                    let back = RouteEntry::from_uapi(&r.to_uapi(), &cfg);
                    assert_eq!(back, Ok(r));
                    table.push(r);
                }
            }
            if let Ok(map) = prepare_routes(&mut table) {
                assert!(table.windows(2).all(|w| w[0].gsi <= w[1].gsi));
                for gsi in 0..32 {
                    assert!(routes_for_gsi(&table, gsi).iter().all(|r| r.gsi == gsi));
                }
                for pin in 0..30 {
                    if let Some(gsi) = map.gsi(IrqChip::Ioapic, pin) {
                        assert!(routes_for_gsi(&table, gsi).iter().any(|r| r.target
                            == RouteTarget::Irqchip {
                                chip: IrqChip::Ioapic,
                                pin
                            }));
                    }
                }
            }
            let m = MsiMessage {
                address_lo: rng.u32(),
                address_hi: rng.u32(),
                data: rng.u32(),
            };
            let _ = m.to_delivery(&BusConfig {
                x2apic_format: rng.bool(),
                broadcast_quirk_disabled: rng.bool(),
                msi_ext_dest_id: rng.bool(),
            });
        }
    }
}
