//! GSI routing table, KVM_IRQ_LINE_STATUS fan-out semantics and MSI
//! decoding, plus an end-to-end GSI → IOAPIC/PIC → LAPIC path.

mod common;

use common::Bus;
use rkvm_irqchip::irqchip::msi::EINVAL;
use rkvm_irqchip::irqchip::routing::*;
use rkvm_irqchip::irqchip::uapi::*;
use rkvm_irqchip::irqchip::*;

#[test]
fn default_routing_like_upstream() {
    let mut table = DEFAULT_ROUTES;
    let map = prepare_routes(&mut table).unwrap();
    let gsi0 = routes_for_gsi(&table, 0);
    assert_eq!(gsi0.len(), 2);
    assert!(gsi0.contains(&RouteEntry::irqchip(0, IrqChip::Ioapic, 0)));
    assert!(gsi0.contains(&RouteEntry::irqchip(0, IrqChip::PicMaster, 0)));
    let gsi9 = routes_for_gsi(&table, 9);
    assert!(gsi9.contains(&RouteEntry::irqchip(9, IrqChip::PicSlave, 1)));
    assert_eq!(
        routes_for_gsi(&table, 20),
        [RouteEntry::irqchip(20, IrqChip::Ioapic, 20)]
    );
    assert!(routes_for_gsi(&table, 24).is_empty());
    assert_eq!(map.gsi(IrqChip::Ioapic, 23), Some(23));
    assert_eq!(map.gsi(IrqChip::PicSlave, 7), Some(15));
    assert_eq!(map.pic_gsi(12), Some(12));
    assert_eq!(ChipPinMap::new().gsi(IrqChip::Ioapic, 0), None);
}

fn uapi_irqchip(gsi: u32, chip: u32, pin: u32) -> KvmIrqRoutingEntry {
    let mut e = KvmIrqRoutingEntry {
        gsi,
        type_: KVM_IRQ_ROUTING_IRQCHIP,
        ..Default::default()
    };
    e.u[0] = chip;
    e.u[1] = pin;
    e
}

fn uapi_msi(gsi: u32, lo: u32, hi: u32, data: u32) -> KvmIrqRoutingEntry {
    let mut e = KvmIrqRoutingEntry {
        gsi,
        type_: KVM_IRQ_ROUTING_MSI,
        ..Default::default()
    };
    e.u[0] = lo;
    e.u[1] = hi;
    e.u[2] = data;
    e
}

#[test]
fn entry_validation() {
    let cfg = BusConfig::default();
    assert!(RouteEntry::from_uapi(&uapi_irqchip(5, 2, 23), &cfg).is_ok());
    assert_eq!(
        RouteEntry::from_uapi(&uapi_irqchip(5, 2, 24), &cfg),
        Err(RoutingError::BadPin)
    );
    assert_eq!(
        RouteEntry::from_uapi(&uapi_irqchip(5, 1, 8), &cfg),
        Err(RoutingError::BadPin)
    );
    assert_eq!(
        RouteEntry::from_uapi(&uapi_irqchip(5, 3, 0), &cfg),
        Err(RoutingError::BadIrqchip)
    );
    assert_eq!(
        RouteEntry::from_uapi(&uapi_irqchip(4096, 2, 0), &cfg),
        Err(RoutingError::GsiOutOfRange)
    );
    let mut flagged = uapi_irqchip(5, 2, 1);
    flagged.flags = 1;
    assert_eq!(
        RouteEntry::from_uapi(&flagged, &cfg),
        Err(RoutingError::BadFlags)
    );
    let mut msi = uapi_msi(30, 0xfee0_1000, 0, 0x41);
    msi.flags = KVM_MSI_VALID_DEVID;
    msi.u[3] = 0x77;
    let e = RouteEntry::from_uapi(&msi, &cfg).unwrap();
    assert_eq!(e.to_uapi(), msi);
    msi.flags = 2;
    assert_eq!(
        RouteEntry::from_uapi(&msi, &cfg),
        Err(RoutingError::BadFlags)
    );
    let hv = KvmIrqRoutingEntry {
        gsi: 1,
        type_: 4,
        ..Default::default()
    };
    assert_eq!(RouteEntry::from_uapi(&hv, &cfg), Err(RoutingError::BadType));
    // x2APIC format forbids address_hi bits 7:0.
    let x2 = BusConfig {
        x2apic_format: true,
        ..cfg
    };
    assert_eq!(
        RouteEntry::from_uapi(&uapi_msi(1, 0xfee0_0000, 0x1, 0), &x2),
        Err(RoutingError::InvalidMsi)
    );
    assert!(RouteEntry::from_uapi(&uapi_msi(1, 0xfee0_0000, 0x100, 0), &x2).is_ok());
    assert_eq!(RoutingError::Conflict.errno(), -22);
}

#[test]
fn table_conflicts() {
    let msi = RouteEntry {
        gsi: 3,
        target: RouteTarget::Msi(MsiRoute {
            msg: MsiMessage::default(),
            flags: 0,
            devid: 0,
        }),
    };
    let mut ok = [
        RouteEntry::irqchip(3, IrqChip::Ioapic, 3),
        RouteEntry::irqchip(3, IrqChip::PicMaster, 3),
        msi,
    ];
    ok[2].gsi = 40;
    assert!(prepare_routes(&mut ok).is_ok());
    assert_eq!(ok.map(|e| e.gsi), [3, 3, 40]);
    let mut dup = [
        RouteEntry::irqchip(3, IrqChip::Ioapic, 3),
        RouteEntry::irqchip(3, IrqChip::Ioapic, 4),
    ];
    assert_eq!(prepare_routes(&mut dup), Err(RoutingError::Conflict));
    let mut mixed = [RouteEntry::irqchip(3, IrqChip::Ioapic, 3), msi];
    assert_eq!(prepare_routes(&mut mixed), Err(RoutingError::Conflict));
    let mut two_msi = [msi, msi];
    assert_eq!(prepare_routes(&mut two_msi), Err(RoutingError::Conflict));
    // One pin routed from several GSIs: the last one wins in the map.
    let mut shared = [
        RouteEntry::irqchip(1, IrqChip::Ioapic, 5),
        RouteEntry::irqchip(2, IrqChip::Ioapic, 5),
    ];
    assert_eq!(
        prepare_routes(&mut shared).unwrap().gsi(IrqChip::Ioapic, 5),
        Some(2)
    );
    assert!(prepare_routes(&mut []).is_ok());
}

/// Scripted line results.
struct Lines {
    pic: i32,
    ioapic: i32,
    msi: i32,
    calls: Vec<String>,
}

impl IrqLines for Lines {
    fn set_pic_irq(&mut self, pin: u8, source_id: u32, level: bool) -> i32 {
        self.calls.push(format!("pic {pin} {source_id} {level}"));
        self.pic
    }
    fn set_ioapic_irq(&mut self, pin: u8, source_id: u32, level: bool, line_status: bool) -> i32 {
        self.calls
            .push(format!("ioapic {pin} {source_id} {level} {line_status}"));
        self.ioapic
    }
    fn set_msi(&mut self, route: &MsiRoute, level: bool) -> i32 {
        self.calls
            .push(format!("msi {:#x} {level}", route.msg.data));
        self.msi
    }
}

#[test]
fn line_status_combination() {
    let mut table = DEFAULT_ROUTES;
    prepare_routes(&mut table).unwrap();
    let run = |pic, ioapic, gsi| {
        let mut l = Lines {
            pic,
            ioapic,
            msi: 0,
            calls: Vec::new(),
        };
        (
            set_irq(routes_for_gsi(&table, gsi), &mut l, 0, true, true),
            l.calls,
        )
    };
    assert_eq!(run(1, -1, 4).0, 1, "PIC delivered, IOAPIC masked");
    assert_eq!(run(-1, 1, 4).0, 1);
    assert_eq!(run(-1, -1, 4).0, -1, "everything masked: ignored");
    assert_eq!(run(0, -1, 4).0, 0, "coalesced");
    assert_eq!(run(1, 2, 4).0, 3, "counts add up");
    let (r, calls) = run(1, 1, 10);
    assert_eq!(r, 2);
    assert!(calls.contains(&"pic 10 0 true".to_string()));
    assert!(calls.contains(&"ioapic 10 0 true true".to_string()));
    assert_eq!(run(1, 1, 100).0, -1, "unrouted GSI");
}

#[test]
fn msi_decoding() {
    let cfg = BusConfig::default();
    let m = MsiMessage {
        address_lo: 0xfee0_3000 | 0x4,
        address_hi: 0,
        data: 0x8000 | 0x100 | 0x51,
    };
    assert!(m.is_interrupt_address());
    let d = m.to_delivery(&cfg);
    assert_eq!(d.dest_id, 3);
    assert_eq!(d.dest_mode, DestMode::Logical);
    assert_eq!(d.delivery_mode, DeliveryMode::LowestPriority);
    assert_eq!(d.trigger, TriggerMode::Level);
    assert_eq!(d.vector, 0x51);
    assert!(d.level);
    assert!(!d.msi_redir_hint);
    let hinted = MsiMessage {
        address_lo: 0xfee0_0008,
        ..m
    };
    assert!(hinted.to_delivery(&cfg).is_lowest_priority());
    // 32-bit destinations: address_hi bits 31:8.
    let x2 = BusConfig {
        x2apic_format: true,
        ..cfg
    };
    let wide = MsiMessage {
        address_lo: 0xfee2_3000,
        address_hi: 0x0001_0000,
        data: 0x30,
    };
    assert_eq!(wide.dest_id(&x2), 0x0001_0023);
    assert_eq!(
        wide.dest_id(&cfg),
        0x23,
        "address_hi ignored without x2APIC format"
    );
    // Extended destination ID (address bits 11:5 → destination bits 14:8).
    let ext = BusConfig {
        msi_ext_dest_id: true,
        ..cfg
    };
    let e = MsiMessage {
        address_lo: 0xfee0_1000 | (0x7f << 5),
        address_hi: 0,
        data: 0x30,
    };
    assert_eq!(e.dest_id(&ext), 0x7f01);
    assert_eq!(e.dest_id(&cfg), 0x01);
    assert!(!MsiMessage {
        address_lo: 0xfec0_0000,
        ..m
    }
    .is_interrupt_address());
}

#[test]
fn msi_signal_to_lapics() {
    let mut bus = Bus::new(2, true);
    let cfg = BusConfig::default();
    let m = MsiMessage {
        address_lo: 0xfee0_1000,
        address_hi: 0,
        data: 0x61,
    };
    assert_eq!(signal_msi(&mut bus, &m, true, &cfg), 1);
    assert_eq!(bus.lapics[1].highest_irr(), Some(0x61));
    assert_eq!(signal_msi(&mut bus, &m, false, &cfg), -1);
    let bad = MsiMessage { address_hi: 5, ..m };
    assert_eq!(
        signal_msi(
            &mut bus,
            &bad,
            true,
            &BusConfig {
                x2apic_format: true,
                ..cfg
            }
        ),
        -EINVAL
    );
    // NMI through MSI.
    let nmi = MsiMessage { data: 0x400, ..m };
    assert_eq!(signal_msi(&mut bus, &nmi, true, &cfg), 1);
    assert_eq!(bus.lapics[1].take_events().nmis, 1);
}

/// The VM wiring of routes to real models.
struct Vm {
    bus: Bus,
    ioapic: Ioapic,
    pic: Pic,
}

impl IrqLines for Vm {
    fn set_pic_irq(&mut self, pin: u8, source_id: u32, level: bool) -> i32 {
        self.pic.set_irq(pin, source_id, level)
    }
    fn set_ioapic_irq(&mut self, pin: u8, source_id: u32, level: bool, line_status: bool) -> i32 {
        self.ioapic.set_irq(
            &mut self.bus,
            usize::from(pin),
            source_id,
            level,
            line_status,
        )
    }
    fn set_msi(&mut self, route: &MsiRoute, level: bool) -> i32 {
        signal_msi(&mut self.bus, &route.msg, level, &BusConfig::default())
    }
}

#[test]
fn gsi_to_guest_end_to_end() {
    let mut table = DEFAULT_ROUTES;
    prepare_routes(&mut table).unwrap();
    let mut vm = Vm {
        bus: Bus::new(1, true),
        ioapic: Ioapic::new(),
        pic: Pic::new(),
    };
    // Fresh VM: PIC uninitialised (IMR 0), IOAPIC masked. The PIC takes it.
    assert_eq!(
        set_irq(routes_for_gsi(&table, 1), &mut vm, 0, true, true),
        1
    );
    assert!(vm.pic.output() && vm.bus.lapics[0].accepts_pic_interrupts());
    set_irq(routes_for_gsi(&table, 1), &mut vm, 0, false, true);
    // Guest masks the PIC and programs IOAPIC pin 11 level → vector 0x39.
    vm.pic.port_write(0x21, 0xff);
    vm.pic.port_write(0xa1, 0xff);
    vm.ioapic
        .mmio_write(&mut vm.bus, 0x00, &[0x10 + 22, 0, 0, 0]);
    vm.ioapic
        .mmio_write(&mut vm.bus, 0x10, &(0x8000u32 | 0x39).to_le_bytes());
    assert_eq!(
        set_irq(routes_for_gsi(&table, 11), &mut vm, 0, true, true),
        1
    );
    assert_eq!(
        set_irq(routes_for_gsi(&table, 11), &mut vm, 0, true, true),
        -1,
        "remote IRR: ignored"
    );
    assert_eq!(vm.bus.ack(0), Some(0x39));
    let eoi = vm.bus.lapics[0].eoi().unwrap();
    set_irq(routes_for_gsi(&table, 11), &mut vm, 0, false, true);
    vm.ioapic.eoi(
        &mut vm.bus,
        0,
        eoi.vector,
        eoi.trigger,
        eoi.suppress_broadcast,
    );
    assert!(!vm.ioapic.entry(11).unwrap().remote_irr());
    // MSI route.
    let mut msi =
        [
            RouteEntry::from_uapi(&uapi_msi(50, 0xfee0_0000, 0, 0x77), &BusConfig::default())
                .unwrap(),
        ];
    prepare_routes(&mut msi).unwrap();
    assert_eq!(
        set_irq(routes_for_gsi(&msi, 50), &mut vm, 0, true, false),
        1
    );
    assert_eq!(vm.bus.lapics[0].highest_irr(), Some(0x77));
}

/// Split irqchip: only level-triggered MSI routes of reserved pins (GSI
/// below the count) addressed to this LAPIC make its EOI of their vector
/// exit to the userspace IOAPIC.
#[test]
fn split_irqchip_eoi_exits() {
    let cfg = BusConfig::default();
    let level = 1 << 15;
    let mut routes = [
        // GSI 5: level, vector 0x35, physical APIC ID 1.
        uapi_msi(5, 0xfee0_1000, 0, level | 0x35),
        // GSI 6: edge, vector 0x36 to APIC 1.
        uapi_msi(6, 0xfee0_1000, 0, 0x36),
        // GSI 7: level, vector 0x37, but to APIC 2.
        uapi_msi(7, 0xfee0_2000, 0, level | 0x37),
        // GSI 30: level, vector 0x3e to APIC 1, beyond the 24 reserved pins.
        uapi_msi(30, 0xfee0_1000, 0, level | 0x3e),
    ]
    .map(|e| RouteEntry::from_uapi(&e, &cfg).unwrap());
    prepare_routes(&mut routes).unwrap();
    let apic1 = ApicDestInfo {
        hw_enabled: true,
        sw_enabled: true,
        xapic_id: 1,
        x2apic_id: 1,
        ..Default::default()
    };
    assert!(split_eoi_exit(&routes, 24, 0x35, &apic1, &cfg));
    assert!(
        !split_eoi_exit(&routes, 24, 0x36, &apic1, &cfg),
        "edge route"
    );
    assert!(
        !split_eoi_exit(&routes, 24, 0x37, &apic1, &cfg),
        "another APIC's route"
    );
    assert!(
        !split_eoi_exit(&routes, 24, 0x3e, &apic1, &cfg),
        "GSI not reserved"
    );
    assert!(
        split_eoi_exit(&routes, 31, 0x3e, &apic1, &cfg),
        "GSI reserved when 31 pins are"
    );
    assert!(
        !split_eoi_exit(&routes, 5, 0x35, &apic1, &cfg),
        "no pins below GSI 5 reserved"
    );
    assert!(
        !split_eoi_exit(&routes, 24, 0x99, &apic1, &cfg),
        "no route for the vector"
    );
}
