//! Local APIC register semantics, arbitration, EOI, timer, APIC_BASE,
//! x2APIC and IPI generation.

mod common;

use common::{clk, sw_enable};
use rkvm_irqchip::irqchip::lapic_regs::*;
use rkvm_irqchip::irqchip::lapic_timer::TimerMode;
use rkvm_irqchip::irqchip::*;

fn lapic(id: u32) -> Lapic {
    let mut l = Lapic::new(LapicConfig::new(id, id == 0));
    sw_enable(&mut l);
    l
}

fn rd(l: &Lapic, off: u32) -> u32 {
    let mut b = [0u8; 4];
    l.mmio_read(u64::from(off), &mut b, &clk(0));
    u32::from_le_bytes(b)
}

fn wr(l: &mut Lapic, off: u32, v: u32) -> LapicEffects {
    wr_at(l, off, v, 0)
}

fn wr_at(l: &mut Lapic, off: u32, v: u32, now: u64) -> LapicEffects {
    l.mmio_write(u64::from(off), &v.to_le_bytes(), &clk(now))
}

fn fixed(vector: u8, trigger: TriggerMode) -> Delivery {
    Delivery {
        trigger,
        ..Delivery::fixed(vector, 0)
    }
}

#[test]
fn reset_values() {
    let bsp = Lapic::new(LapicConfig::new(0, true));
    let ap = Lapic::new(LapicConfig::new(3, false));
    assert_eq!(bsp.apic_base(), 0xfee0_0900);
    assert_eq!(ap.apic_base(), 0xfee0_0800);
    assert_eq!(rd(&ap, APIC_ID), 3 << 24);
    assert_eq!(rd(&ap, APIC_LVR), 0x0005_0014);
    assert_eq!(rd(&ap, APIC_SPIV), 0xff);
    assert_eq!(rd(&ap, APIC_DFR), 0xffff_ffff);
    for off in [
        APIC_LVTT,
        APIC_LVTTHMR,
        APIC_LVTPC,
        APIC_LVT0,
        APIC_LVT1,
        APIC_LVTERR,
    ] {
        assert_eq!(rd(&ap, off), APIC_LVT_MASKED, "offset {off:#x}");
    }
    // The BSP's LINT0 is in virtual-wire (ExtINT) mode at reset.
    assert_eq!(rd(&bsp, APIC_LVT0), 0x700);
    assert!(bsp.accepts_pic_interrupts());
    assert!(!ap.accepts_pic_interrupts());
    assert!(!ap.sw_enabled());
    // CMCI LVT only with CMCI support.
    assert_eq!(rd(&ap, APIC_LVTCMCI), 0);
    let mut cfg = LapicConfig::new(1, false);
    cfg.cmci_supported = true;
    let c = Lapic::new(cfg);
    assert_eq!(rd(&c, APIC_LVR), 0x0006_0014);
    assert_eq!(rd(&c, APIC_LVTCMCI), APIC_LVT_MASKED);
}

#[test]
fn register_masks_and_reserved() {
    let mut l = lapic(1);
    let _ = wr(&mut l, APIC_TASKPRI, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_TASKPRI), 0xff);
    let _ = wr(&mut l, APIC_LDR, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_LDR), 0xff00_0000);
    let _ = wr(&mut l, APIC_DFR, 0);
    assert_eq!(rd(&l, APIC_DFR), 0x0fff_ffff);
    let _ = wr(&mut l, APIC_ICR2, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_ICR2), 0xff00_0000);
    let _ = wr(&mut l, APIC_ID, 0x1234_5678);
    assert_eq!(rd(&l, APIC_ID), 0x1200_0000);
    let _ = wr(&mut l, APIC_SPIV, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_SPIV), 0x3ff, "directed EOI not advertised");
    let _ = wr(&mut l, APIC_LVT0, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_LVT0), 0x1_f7ff);
    let _ = wr(&mut l, APIC_LVTERR, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_LVTERR), 0x1_10ff);
    let _ = wr(&mut l, APIC_LVTPC, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_LVTPC), 0x1_17ff);
    let _ = wr(&mut l, APIC_LVTT, 0xffff_ffff);
    assert_eq!(rd(&l, APIC_LVTT), 0x7_10ff);
    let _ = wr(&mut l, APIC_TDCR, 0xff);
    assert_eq!(rd(&l, APIC_TDCR), 0xb);
    // Read-only / reserved registers ignore writes; unreadable ones read 0.
    let _ = wr(&mut l, APIC_LVR, 0);
    assert_eq!(rd(&l, APIC_LVR), 0x0005_0014);
    let _ = wr(&mut l, APIC_PROCPRI, 0xff);
    assert_eq!(rd(&l, APIC_PROCPRI), 0xff, "PPR follows TPR 0xff");
    assert_eq!(rd(&l, APIC_EOI), 0);
    assert_eq!(rd(&l, 0x40), 0);
    assert_eq!(rd(&l, APIC_ARBPRI), 0);
    assert_eq!(rd(&l, APIC_LVTCMCI), 0);
    assert_eq!(rd(&l, 0x800), 0);
    // Sub-word reads and rejected unaligned / short writes.
    let mut b = [0u8; 1];
    l.mmio_read(u64::from(APIC_ID) + 3, &mut b, &clk(0));
    assert_eq!(b[0], 0x12);
    let mut b2 = [0u8; 2];
    l.mmio_read(u64::from(APIC_ID) + 3, &mut b2, &clk(0));
    assert_eq!(b2, [0, 0], "crossing a 4-byte boundary reads zeros");
    let _ = l.mmio_write(u64::from(APIC_TASKPRI) + 4, &0x10u32.to_le_bytes(), &clk(0));
    let _ = l.mmio_write(u64::from(APIC_TASKPRI), &[0x20u8], &clk(0));
    assert_eq!(rd(&l, APIC_TASKPRI), 0xff);
}

#[test]
fn software_disable_masks_lvts() {
    let mut l = lapic(1);
    let _ = wr(&mut l, APIC_LVT1, 0x400);
    assert_eq!(rd(&l, APIC_LVT1), 0x400);
    let _ = wr(&mut l, APIC_SPIV, 0xff);
    assert!(!l.sw_enabled());
    assert_eq!(rd(&l, APIC_LVT1), 0x1_0400);
    // While disabled, LVT writes stay masked and fixed interrupts are refused.
    let _ = wr(&mut l, APIC_LVT1, 0x400);
    assert_eq!(rd(&l, APIC_LVT1), 0x1_0400);
    assert!(!l.accept_irq(&Delivery::fixed(0x40, 1)));
    assert_eq!(l.highest_irr(), None);
    // NMIs still arrive.
    let nmi = Delivery {
        delivery_mode: DeliveryMode::Nmi,
        ..Delivery::fixed(0, 1)
    };
    assert!(l.accept_irq(&nmi));
    assert_eq!(l.take_events().nmis, 1);
}

#[test]
fn priority_arbitration_irr_isr_tpr_ppr() {
    let mut l = lapic(0);
    assert!(l.accept_irq(&fixed(0x31, TriggerMode::Edge)));
    assert!(l.accept_irq(&fixed(0x52, TriggerMode::Edge)));
    assert!(l.accept_irq(&fixed(0x55, TriggerMode::Edge)));
    assert_eq!(l.highest_injectable_vector(), Some(0x55));
    l.ack_interrupt(0x55);
    assert_eq!(l.ppr(), 0x50);
    assert_eq!(rd(&l, APIC_ISR + 0x20), 1 << (0x55 - 0x40));
    // 0x52 is in the same priority class: blocked until EOI.
    assert_eq!(l.highest_injectable_vector(), None);
    assert!(l.accept_irq(&fixed(0x61, TriggerMode::Edge)));
    assert_eq!(l.highest_injectable_vector(), Some(0x61));
    l.ack_interrupt(0x61);
    assert_eq!(l.ppr(), 0x60);
    // EOI retires the highest in-service vector first.
    let fx = wr(&mut l, APIC_EOI, 0);
    assert_eq!(
        fx.eoi,
        Some(EoiEvent {
            vector: 0x61,
            trigger: TriggerMode::Edge,
            suppress_broadcast: false
        })
    );
    assert_eq!(l.ppr(), 0x50);
    let fx = wr(&mut l, APIC_EOI, 0);
    assert_eq!(fx.eoi.map(|e| e.vector), Some(0x55));
    assert_eq!(l.ppr(), 0);
    // TPR masks classes at or below it; PPR = TPR when above ISR.
    let _ = wr(&mut l, APIC_TASKPRI, 0x52);
    assert_eq!(l.ppr(), 0x52);
    assert_eq!(l.highest_injectable_vector(), None);
    l.set_cr8(4);
    assert_eq!(rd(&l, APIC_TASKPRI), 0x40);
    assert_eq!(l.cr8(), 4);
    assert_eq!(l.highest_injectable_vector(), Some(0x52));
    // EOI with nothing in service does nothing.
    let mut idle = lapic(1);
    assert_eq!(wr(&mut idle, APIC_EOI, 0).eoi, None);
}

#[test]
fn level_trigger_sets_tmr_and_eoi_reports_level() {
    let mut l = lapic(0);
    assert!(l.accept_irq(&fixed(0x40, TriggerMode::Level)));
    assert_eq!(rd(&l, APIC_TMR + 0x20), 1);
    // A level-triggered de-assert is not an interrupt.
    let deassert = Delivery {
        level: false,
        ..fixed(0x41, TriggerMode::Level)
    };
    assert!(!l.accept_irq(&deassert));
    l.ack_interrupt(0x40);
    let fx = wr(&mut l, APIC_EOI, 0);
    assert_eq!(
        fx.eoi,
        Some(EoiEvent {
            vector: 0x40,
            trigger: TriggerMode::Level,
            suppress_broadcast: false
        })
    );
    // An edge delivery of the same vector clears the TMR bit.
    assert!(l.accept_irq(&fixed(0x40, TriggerMode::Edge)));
    assert_eq!(rd(&l, APIC_TMR + 0x20), 0);
}

#[test]
fn directed_eoi_suppresses_broadcast() {
    let mut cfg = LapicConfig::new(0, true);
    cfg.directed_eoi_advertised = true;
    let mut l = Lapic::new(cfg);
    assert_eq!(
        rd(&l, APIC_LVR) & APIC_LVR_DIRECTED_EOI,
        APIC_LVR_DIRECTED_EOI
    );
    let _ = wr(&mut l, APIC_SPIV, 0x11ff);
    assert_eq!(rd(&l, APIC_SPIV), 0x11ff);
    assert!(l.accept_irq(&fixed(0x40, TriggerMode::Level)));
    l.ack_interrupt(0x40);
    assert!(l.eoi().unwrap().suppress_broadcast);
}

#[test]
fn illegal_vectors_latch_esr() {
    let mut l = lapic(0);
    assert!(!l.accept_irq(&fixed(0x05, TriggerMode::Edge)));
    assert_eq!(l.highest_irr(), None);
    assert_eq!(rd(&l, APIC_ESR), 0, "not latched before an ESR write");
    let _ = wr(&mut l, APIC_ESR, 0);
    assert_eq!(rd(&l, APIC_ESR), APIC_ESR_RECV_ILLEGAL);
    let _ = wr(&mut l, APIC_ESR, 0);
    assert_eq!(rd(&l, APIC_ESR), 0);
    // Sending an illegal fixed vector: no IPI, "send illegal vector".
    let fx = wr(&mut l, APIC_ICR, 0x0000_4003);
    assert_eq!(fx.ipi, None);
    let _ = wr(&mut l, APIC_ESR, 0);
    assert_eq!(rd(&l, APIC_ESR), APIC_ESR_SEND_ILLEGAL);
    // An unmasked error LVT raises the error interrupt.
    let _ = wr(&mut l, APIC_LVTERR, 0xfe);
    assert!(!l.accept_irq(&fixed(0x01, TriggerMode::Edge)));
    assert_eq!(l.highest_irr(), Some(0xfe));
}

#[test]
fn icr_builds_ipis() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_ICR2, 0x0300_0000);
    let fx = wr(&mut l, APIC_ICR, 0x0000_c830 | APIC_ICR_BUSY);
    let ipi = fx.ipi.unwrap();
    assert_eq!(ipi.vector, 0x30);
    assert_eq!(ipi.delivery_mode, DeliveryMode::Fixed);
    assert_eq!(ipi.dest_mode, DestMode::Logical);
    assert!(ipi.level);
    assert_eq!(ipi.trigger, TriggerMode::Level);
    assert_eq!(ipi.shorthand, Shorthand::None);
    assert_eq!(ipi.dest_id, 3);
    assert_eq!(
        rd(&l, APIC_ICR) & APIC_ICR_BUSY,
        0,
        "delivery status always idle"
    );
    let ipi = wr(&mut l, APIC_ICR, 0x000c_4500).ipi.unwrap();
    assert_eq!(ipi.delivery_mode, DeliveryMode::Init);
    assert_eq!(ipi.shorthand, Shorthand::AllExcludingSelf);
    let ipi = wr(&mut l, APIC_ICR, 0x0004_0620).ipi.unwrap();
    assert_eq!(
        (ipi.delivery_mode, ipi.shorthand, ipi.vector),
        (DeliveryMode::StartUp, Shorthand::SelfOnly, 0x20)
    );
    for (mode, dm) in [
        (1, DeliveryMode::LowestPriority),
        (2, DeliveryMode::Smi),
        (4, DeliveryMode::Nmi),
        (7, DeliveryMode::ExtInt),
    ] {
        let ipi = wr(&mut l, APIC_ICR, 0x40 | (mode << 8)).ipi.unwrap();
        assert_eq!(ipi.delivery_mode, dm);
    }
}

#[test]
fn init_sipi_nmi_events() {
    let mut l = lapic(1);
    let init = Delivery {
        delivery_mode: DeliveryMode::Init,
        trigger: TriggerMode::Level,
        level: true,
        ..Delivery::fixed(0, 1)
    };
    let deassert = Delivery {
        level: false,
        ..init
    };
    assert!(!l.accept_irq(&deassert));
    assert!(!l.pending_events().any());
    let sipi = Delivery {
        delivery_mode: DeliveryMode::StartUp,
        ..Delivery::fixed(0x9a, 1)
    };
    assert!(l.accept_irq(&sipi));
    assert!(l.accept_irq(&init));
    let ev = l.take_events();
    assert!(ev.init);
    assert_eq!(ev.sipi, None, "INIT discards an earlier SIPI");
    assert!(l.accept_irq(&sipi));
    assert_eq!(l.take_events().sipi, Some(0x9a));
    let smi = Delivery {
        delivery_mode: DeliveryMode::Smi,
        ..Delivery::fixed(0, 1)
    };
    assert!(!l.accept_irq(&smi));
    let extint = Delivery {
        delivery_mode: DeliveryMode::ExtInt,
        ..Delivery::fixed(0, 1)
    };
    assert!(!l.accept_irq(&extint));
    let kick = Delivery {
        delivery_mode: DeliveryMode::RemoteRead,
        ..Delivery::fixed(0, 1)
    };
    assert!(l.accept_irq(&kick));
    assert!(l.take_events().pv_unhalt);
    // INIT reset keeps the APIC ID and APIC_BASE, clears the rest.
    let _ = wr(&mut l, APIC_ID, 0x0700_0000);
    assert!(l.accept_irq(&fixed(0x40, TriggerMode::Edge)));
    l.reset(true);
    assert_eq!(rd(&l, APIC_ID), 0x0700_0000);
    assert_eq!(l.highest_irr(), None);
    assert!(!l.sw_enabled());
    l.reset(false);
    assert_eq!(rd(&l, APIC_ID), 0x0100_0000);
}

#[test]
fn lvt_local_delivery_and_virtual_wire() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_LVT1, 0x400);
    assert!(l.deliver_lvt(Lvt::Lint1));
    assert_eq!(l.take_events().nmis, 1);
    let _ = wr(&mut l, APIC_LVT0, 0x400);
    assert!(l.lvt0_in_nmi_mode());
    assert!(!l.accepts_pic_interrupts());
    let _ = wr(&mut l, APIC_LVT0, 0x1_0700);
    assert!(!l.accepts_pic_interrupts(), "masked ExtINT");
    let _ = wr(&mut l, APIC_LVT0, 0x700);
    assert!(l.accepts_pic_interrupts());
    assert!(
        !l.deliver_lvt(Lvt::Lint0),
        "ExtINT comes through the PIC, not the LVT"
    );
    // Perf LVT masks itself on delivery (Intel-compatible PMU).
    let _ = wr(&mut l, APIC_LVTPC, 0xe0);
    assert!(l.deliver_lvt(Lvt::Perf));
    assert_eq!(rd(&l, APIC_LVTPC), 0x1_00e0);
    assert!(!l.deliver_lvt(Lvt::Perf));
    assert!(
        !l.deliver_lvt(Lvt::Cmci),
        "no CMCI LVT without CMCI support"
    );
    // Hardware disable: INTR goes straight to the CPU.
    let _ = l.set_apic_base(0, true).unwrap();
    assert!(l.accepts_pic_interrupts());
}

#[test]
fn timer_one_shot() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_TDCR, 0xb); // divide by 1
    let _ = wr(&mut l, APIC_LVTT, 0xec);
    let fx = wr_at(&mut l, APIC_TMICT, 1000, 5_000);
    assert!(fx.timer_changed);
    assert_eq!(l.timer_deadline_ns(), Some(6_000));
    let mut b = [0u8; 4];
    l.mmio_read(u64::from(APIC_TMCCT), &mut b, &clk(5_250));
    assert_eq!(u32::from_le_bytes(b), 750);
    assert!(!l.service_timer(&clk(5_999)));
    assert!(l.service_timer(&clk(6_000)));
    assert_eq!(l.highest_irr(), Some(0xec));
    assert_eq!(l.timer_deadline_ns(), None);
    l.mmio_read(u64::from(APIC_TMCCT), &mut b, &clk(7_000));
    assert_eq!(u32::from_le_bytes(b), 0);
    // Divide by 16, bus cycle 1 ns: 100 ticks = 1600 ns.
    let _ = wr(&mut l, APIC_TDCR, 0x3);
    let _ = wr_at(&mut l, APIC_TMICT, 100, 10_000);
    assert_eq!(l.timer_deadline_ns(), Some(11_600));
    // TMICT = 0 stops the timer.
    let _ = wr_at(&mut l, APIC_TMICT, 0, 10_500);
    assert_eq!(l.timer_deadline_ns(), None);
}

#[test]
fn timer_masked_fires_without_interrupt() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_TDCR, 0xb);
    let _ = wr(&mut l, APIC_LVTT, 0x1_0040);
    let _ = wr_at(&mut l, APIC_TMICT, 10, 0);
    assert!(l.service_timer(&clk(10)));
    assert_eq!(l.highest_irr(), None);
}

#[test]
fn timer_periodic_and_min_period() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_TDCR, 0xb);
    let _ = wr(&mut l, APIC_LVTT, 0x2_0040);
    let _ = wr_at(&mut l, APIC_TMICT, 1_000_000, 0);
    assert_eq!(l.timer_mode(), TimerMode::Periodic);
    assert_eq!(l.timer_deadline_ns(), Some(1_000_000));
    assert!(l.service_timer(&clk(1_000_010)));
    assert_eq!(l.timer_deadline_ns(), Some(2_000_000), "period grid kept");
    l.ack_interrupt(0x40);
    let _ = l.eoi();
    // Very late: restart from now, one interrupt only.
    assert!(l.service_timer(&clk(9_500_000)));
    assert_eq!(l.timer_deadline_ns(), Some(10_500_000));
    let mut b = [0u8; 4];
    l.mmio_read(u64::from(APIC_TMCCT), &mut b, &clk(10_000_000));
    assert_eq!(u32::from_le_bytes(b), 500_000);
    // A tiny periodic count is clamped to the 200 us minimum.
    let _ = wr_at(&mut l, APIC_TMICT, 10, 20_000_000);
    assert_eq!(l.timer_deadline_ns(), Some(20_200_000));
    // Switching to one-shot keeps the running count but stops re-arming.
    let _ = wr(&mut l, APIC_LVTT, 0x40);
    assert!(l.service_timer(&clk(20_200_000)));
    assert_eq!(l.timer_deadline_ns(), None);
}

#[test]
fn timer_divide_change_rescales_remaining() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_TDCR, 0xb);
    let _ = wr(&mut l, APIC_LVTT, 0x40);
    let _ = wr_at(&mut l, APIC_TMICT, 1000, 0);
    // 400 ns remaining at divide 1 become 800 ns at divide 2.
    let fx = wr_at(&mut l, APIC_TDCR, 0x0, 600);
    assert!(fx.timer_changed);
    assert_eq!(l.timer_deadline_ns(), Some(1_400));
}

#[test]
fn timer_tsc_deadline() {
    let mut l = lapic(0);
    let _ = wr_at(&mut l, APIC_TMICT, 5000, 0);
    let _ = wr(&mut l, APIC_LVTT, 0x4_00ee);
    assert_eq!(l.timer_mode(), TimerMode::TscDeadline);
    assert_eq!(
        rd(&l, APIC_TMICT),
        0,
        "entering TSC-deadline mode discards TMICT"
    );
    assert_eq!(l.timer_deadline_ns(), None);
    // TMICT is ignored in TSC-deadline mode; TMCCT reads 0.
    let _ = wr_at(&mut l, APIC_TMICT, 5000, 0);
    assert_eq!(rd(&l, APIC_TMICT), 0);
    // 1 GHz TSC: deadline cycle 50_000 at t=10_000 ns → host deadline 50_000.
    let fx = l.set_tsc_deadline(50_000, &clk(10_000));
    assert!(fx.timer_changed);
    assert_eq!(l.tsc_deadline(), 50_000);
    assert_eq!(l.timer_deadline_ns(), Some(50_000));
    assert!(l.service_timer(&clk(50_000)));
    assert_eq!(l.highest_irr(), Some(0xee));
    assert_eq!(l.tsc_deadline(), 0, "disarmed after firing");
    // A 3 GHz guest TSC: 3_000 cycles ahead = 1 us.
    let c = ClockSnapshot {
        now_ns: 100_000,
        guest_tsc: 1_000_000,
        guest_tsc_khz: 3_000_000,
    };
    let _ = l.set_tsc_deadline(1_003_000, &c);
    assert_eq!(l.timer_deadline_ns(), Some(101_000));
    let _ = l.set_tsc_deadline(0, &c);
    assert_eq!(l.timer_deadline_ns(), None);
    // A deadline in the past fires at once.
    l.ack_interrupt(0xee);
    let _ = l.eoi();
    let _ = l.set_tsc_deadline(5, &c);
    assert_eq!(l.highest_irr(), Some(0xee));
    // Leaving TSC-deadline mode: MSR reads 0, writes ignored.
    let _ = wr(&mut l, APIC_LVTT, 0xee);
    assert_eq!(l.tsc_deadline(), 0);
    let _ = l.set_tsc_deadline(9_999_999, &c);
    assert_eq!(l.timer_deadline_ns(), None);
    // Without TSC-deadline support the mode bit is not writable.
    let mut cfg = LapicConfig::new(1, false);
    cfg.tsc_deadline_supported = false;
    let mut n = Lapic::new(cfg);
    sw_enable(&mut n);
    let _ = wr(&mut n, APIC_LVTT, 0x4_00ee);
    assert_eq!(rd(&n, APIC_LVTT), 0xee);
}

#[test]
fn apic_base_transitions() {
    let mut l = Lapic::new(LapicConfig::new(5, false));
    let base = 0xfee0_0800u64;
    assert_eq!(
        l.set_apic_base(base | 1, false),
        Err(LapicAccessError::InvalidApicBase),
        "reserved bit 0"
    );
    assert_eq!(
        l.set_apic_base(base | 0x200, false),
        Err(LapicAccessError::InvalidApicBase),
        "reserved bit 9"
    );
    assert_eq!(
        l.set_apic_base(1 << 52 | base, false),
        Err(LapicAccessError::InvalidApicBase),
        "above MAXPHYADDR"
    );
    assert_eq!(
        l.set_apic_base(0xfee0_0400, false),
        Err(LapicAccessError::InvalidApicBase),
        "EXTD without EN"
    );
    // xAPIC → x2APIC: ID becomes the vCPU ID, LDR is derived.
    let fx = l.set_apic_base(base | 0x400, false).unwrap();
    assert!(fx.dest_changed);
    assert!(l.x2apic_mode());
    assert_eq!(l.reg(APIC_ID), 5);
    assert_eq!(l.reg(APIC_LDR), 0x20);
    // x2APIC → xAPIC is illegal for the guest; disabling is fine.
    assert!(l.set_apic_base(base, false).is_err());
    let _ = l.set_apic_base(0xfee0_0000, false).unwrap();
    assert!(!l.hw_enabled());
    // Disabled → x2APIC is illegal for the guest, fine for the host.
    assert!(l.set_apic_base(base | 0x400, false).is_err());
    let _ = l.set_apic_base(base | 0x400, true).unwrap();
    let _ = l.set_apic_base(base, true).unwrap();
    assert_eq!(l.reg(APIC_ID), 5 << 24);
    // Moving the base moves the MMIO window.
    let _ = l.set_apic_base(0xfed0_0800, false).unwrap();
    assert_eq!(l.mmio_base(), 0xfed0_0000);
    // Without x2APIC support EXTD is reserved.
    let mut cfg = LapicConfig::new(1, false);
    cfg.x2apic_supported = false;
    let mut n = Lapic::new(cfg);
    assert!(n.set_apic_base(base | 0x400, false).is_err());
}

#[test]
fn x2apic_msr_interface() {
    let mut l = Lapic::new(LapicConfig::new(0x23, false));
    let c = clk(0);
    assert_eq!(
        l.x2apic_msr_read(0x802, &c),
        Err(LapicAccessError::NotX2apic)
    );
    let _ = l.set_apic_base(0xfee0_0c00, false).unwrap();
    // MMIO is gone in x2APIC mode.
    let mut b = [0u8; 4];
    l.mmio_read(u64::from(APIC_ID), &mut b, &c);
    assert_eq!(b, [0xff; 4]);
    assert_eq!(l.x2apic_msr_read(0x802, &c), Ok(0x23));
    assert_eq!(
        l.x2apic_msr_read(0x80d, &c),
        Ok(0x2_0008),
        "LDR = cluster 2, bit 3"
    );
    assert_eq!(l.x2apic_msr_read(0x803, &c), Ok(0x0005_0014));
    assert_eq!(
        l.x2apic_msr_write(0x802, 0, &c),
        Err(LapicAccessError::InvalidRegister),
        "ID read-only"
    );
    assert_eq!(
        l.x2apic_msr_write(0x80d, 0, &c),
        Err(LapicAccessError::InvalidRegister),
        "LDR read-only"
    );
    assert_eq!(
        l.x2apic_msr_write(0x80e, 0, &c),
        Err(LapicAccessError::InvalidRegister),
        "no DFR"
    );
    assert_eq!(
        l.x2apic_msr_read(0x80e, &c),
        Err(LapicAccessError::InvalidRegister)
    );
    assert_eq!(
        l.x2apic_msr_read(0x809, &c),
        Err(LapicAccessError::InvalidRegister),
        "no ARBPRI"
    );
    assert_eq!(
        l.x2apic_msr_read(0x831, &c),
        Err(LapicAccessError::InvalidRegister),
        "no ICR2"
    );
    assert_eq!(
        l.x2apic_msr_read(0x80b, &c),
        Err(LapicAccessError::InvalidRegister),
        "EOI write-only"
    );
    assert_eq!(
        l.x2apic_msr_write(0x808, 1 << 32, &c),
        Err(LapicAccessError::ReservedBits)
    );
    assert_eq!(
        l.x2apic_msr_write(0x828, 1, &c),
        Err(LapicAccessError::ReservedBits),
        "ESR must be written 0"
    );
    let _ = l.x2apic_msr_write(0x828, 0, &c).unwrap();
    assert_eq!(
        l.x2apic_msr_read(0x900, &c),
        Err(LapicAccessError::NotX2apic)
    );
    let _ = l.x2apic_msr_write(0x80f, 0x1ff, &c).unwrap();
    // 64-bit ICR with a 32-bit destination.
    let fx = l
        .x2apic_msr_write(0x830, (0x1234_5678u64 << 32) | 0x4031, &c)
        .unwrap();
    let ipi = fx.ipi.unwrap();
    assert_eq!((ipi.dest_id, ipi.vector), (0x1234_5678, 0x31));
    assert_eq!(
        l.x2apic_msr_read(0x830, &c),
        Ok((0x1234_5678u64 << 32) | 0x4031)
    );
    assert_eq!(
        l.x2apic_msr_write(0x830, 1 << 20, &c),
        Err(LapicAccessError::ReservedBits)
    );
    assert_eq!(
        l.x2apic_msr_write(0x830, 1 << 13, &c),
        Err(LapicAccessError::ReservedBits)
    );
    // SELF IPI.
    let ipi = l.x2apic_msr_write(0x83f, 0x44, &c).unwrap().ipi.unwrap();
    assert_eq!(
        (ipi.shorthand, ipi.vector, ipi.delivery_mode),
        (Shorthand::SelfOnly, 0x44, DeliveryMode::Fixed)
    );
    assert_eq!(
        l.x2apic_msr_write(0x83f, 0x144, &c),
        Err(LapicAccessError::ReservedBits)
    );
    // TPR through the MSR.
    let _ = l.x2apic_msr_write(0x808, 0x30, &c).unwrap();
    assert_eq!(l.x2apic_msr_read(0x80a, &c), Ok(0x30));
}

#[test]
fn state_image_round_trip_xapic() {
    let mut l = lapic(2);
    let _ = wr(&mut l, APIC_TASKPRI, 0x20);
    let _ = wr(&mut l, APIC_LDR, 0x0400_0000);
    let _ = wr(&mut l, APIC_LVT1, 0x400);
    let _ = wr(&mut l, APIC_TDCR, 0xb);
    let _ = wr(&mut l, APIC_LVTT, 0x2_0030);
    let _ = wr_at(&mut l, APIC_TMICT, 1_000_000, 0);
    assert!(l.accept_irq(&fixed(0x80, TriggerMode::Level)));
    l.ack_interrupt(0x80);
    assert!(l.accept_irq(&fixed(0x90, TriggerMode::Edge)));
    let img = l.get_state(&clk(250_000), false);
    assert_eq!(img.reg(APIC_TMCCT), 750_000);
    assert_eq!(img.reg(APIC_ID), 2 << 24);
    assert_eq!(img.reg(APIC_ISR + 0x40), 1);
    assert_eq!(img.reg(APIC_TMR + 0x40), 1);
    assert_eq!(img.reg(APIC_IRR + 0x40), 1 << 16);
    let mut m = Lapic::new(LapicConfig::new(2, false));
    let fx = m.set_state(&img, &clk(1_000_000), false).unwrap();
    assert!(fx.timer_changed);
    // The count resumes from TMCCT, then continues with the full period.
    assert_eq!(m.timer_deadline_ns(), Some(1_750_000));
    assert_eq!(m.ppr(), 0x80);
    assert_eq!(m.highest_irr(), Some(0x90));
    assert!(m.sw_enabled());
    let again = m.get_state(&clk(1_000_000), false);
    assert_eq!(again.regs[..], img.regs[..]);
    // Garbage in the version register is replaced; PPR is recomputed.
    let mut bad = img;
    bad.set_reg(APIC_LVR, 0xdead_beef);
    bad.set_reg(APIC_PROCPRI, 0xff);
    let _ = m.set_state(&bad, &clk(0), false).unwrap();
    assert_eq!(m.reg(APIC_LVR), 0x0005_0014);
    assert_eq!(m.ppr(), 0x80);
}

#[test]
fn state_image_expired_one_shot_fires_once_more() {
    let mut l = lapic(0);
    let _ = wr(&mut l, APIC_TDCR, 0xb);
    let _ = wr(&mut l, APIC_LVTT, 0x40);
    let _ = wr_at(&mut l, APIC_TMICT, 100, 0);
    assert!(l.service_timer(&clk(100)));
    l.ack_interrupt(0x40);
    let _ = l.eoi();
    let img = l.get_state(&clk(200), false);
    assert_eq!(img.reg(APIC_TMCCT), 0);
    let mut m = Lapic::new(LapicConfig::new(0, true));
    let _ = m.set_state(&img, &clk(300), false).unwrap();
    // As upstream: the count that ran out fires once more at the load (an
    // image taken while the vCPU was stopped has no IRR bit for it yet),
    // then the one-shot timer is stopped.
    assert_eq!(m.timer_deadline_ns(), None);
    assert_eq!(m.highest_irr(), Some(0x40));
}

#[test]
fn state_image_x2apic_id_formats() {
    let mut l = Lapic::new(LapicConfig::new(0x1_0007, false));
    let _ = l.set_apic_base(0xfee0_0c00, true).unwrap();
    let _ = l.x2apic_msr_write(0x80f, 0x1ff, &clk(0)).unwrap();
    let _ = l
        .x2apic_msr_write(0x830, (7u64 << 32) | 0x30, &clk(0))
        .unwrap();
    // Legacy format: ID << 24 (truncated), ICR split in ICR/ICR2.
    let legacy = l.get_state(&clk(0), false);
    assert_eq!(legacy.reg(APIC_ID), 0x0700_0000);
    assert_eq!(legacy.reg(APIC_ICR), 0x30);
    assert_eq!(legacy.reg(APIC_ICR2), 7);
    assert_eq!(legacy.reg(APIC_LDR), 0x1000_0080);
    // 32-bit format: the raw x2APIC ID.
    let modern = l.get_state(&clk(0), true);
    assert_eq!(modern.reg(APIC_ID), 0x1_0007);
    // SET, legacy format: the image's ID and LDR are ignored.
    let mut m = Lapic::new(LapicConfig::new(0x1_0007, false));
    let _ = m.set_apic_base(0xfee0_0c00, true).unwrap();
    let mut img = legacy;
    img.set_reg(APIC_ID, 0x1234);
    img.set_reg(APIC_LDR, 0);
    let _ = m.set_state(&img, &clk(0), false).unwrap();
    assert_eq!(m.reg(APIC_ID), 0x1_0007);
    assert_eq!(m.reg(APIC_LDR), 0x1000_0080);
    assert_eq!(m.x2apic_msr_read(0x830, &clk(0)), Ok((7u64 << 32) | 0x30));
    // SET, 32-bit format: a mismatching ID is refused.
    assert_eq!(
        m.set_state(&img, &clk(0), true),
        Err(lapic_state::LapicStateError::X2apicIdMismatch)
    );
    let _ = m.set_state(&modern, &clk(0), true).unwrap();
    assert_eq!(m.get_state(&clk(0), true).regs[..], modern.regs[..]);
}

#[test]
fn vapic_word_packs_tpr_isr_class_and_irr() {
    let mut l = lapic(0);
    assert_eq!(l.vapic_word(), 0);
    assert!(l.accept_irq(&fixed(0x55, TriggerMode::Edge)));
    l.ack_interrupt(0x55);
    assert!(l.accept_irq(&fixed(0x31, TriggerMode::Edge)));
    l.set_tpr(0x2a);
    // TPR in bits 0-7, ISR class in 12-15, highest IRR in 24-31.
    assert_eq!(l.vapic_word(), 0x2a | (0x50 << 8) | (0x31 << 24));
    // Writing TPR back from the word keeps only its low byte.
    l.set_tpr(0x1234_5677 & 0xff);
    assert_eq!(rd(&l, APIC_TASKPRI), 0x77);
    assert_eq!(l.ppr(), 0x77);
}
