//! 8259 pair: initialization, edge/level (ELCR), priorities, cascade,
//! spurious IRQ7/15, auto-EOI, rotation, special mask, poll mode, the
//! ExtINT path through LAPIC LINT0, and the KVM_GET/SET_IRQCHIP image.

mod common;

use rkvm_irqchip::irqchip::i8259::*;
use rkvm_irqchip::irqchip::*;

/// Linux's init: ICW1 0x11, ICW2 base, ICW3, ICW4 0x01 (8086 mode).
fn init(pic: &mut Pic, master_base: u8, slave_base: u8, icw4: u8) {
    pic.port_write(PIC_MASTER_CMD, 0x11);
    pic.port_write(PIC_MASTER_DATA, master_base);
    pic.port_write(PIC_MASTER_DATA, 0x04);
    pic.port_write(PIC_MASTER_DATA, icw4);
    pic.port_write(PIC_SLAVE_CMD, 0x11);
    pic.port_write(PIC_SLAVE_DATA, slave_base);
    pic.port_write(PIC_SLAVE_DATA, 0x02);
    pic.port_write(PIC_SLAVE_DATA, icw4);
}

fn ready() -> Pic {
    let mut pic = Pic::new();
    init(&mut pic, 0x20, 0x28, 0x01);
    pic
}

fn eoi(pic: &mut Pic, slave: bool) {
    if slave {
        pic.port_write(PIC_SLAVE_CMD, 0x20);
    }
    pic.port_write(PIC_MASTER_CMD, 0x20);
}

fn pulse(pic: &mut Pic, pin: u8) -> i32 {
    let r = pic.set_irq(pin, 0, true);
    pic.set_irq(pin, 0, false);
    r
}

#[test]
fn init_and_registers() {
    let mut pic = ready();
    let m = pic.get_state(PicChip::Master);
    assert_eq!((m.irq_base, m.init_state, m.init4, m.imr), (0x20, 0, 1, 0));
    assert_eq!(pic.get_state(PicChip::Slave).irq_base, 0x28);
    pic.port_write(PIC_MASTER_DATA, 0xfb);
    assert_eq!(pic.port_read(PIC_MASTER_DATA), 0xfb);
    // ICW2 low bits are ignored.
    init(&mut pic, 0x27, 0x2f, 0x01);
    assert_eq!(pic.get_state(PicChip::Master).irq_base, 0x20);
    // Without IC4 the init sequence ends after ICW3.
    pic.port_write(PIC_MASTER_CMD, 0x10);
    pic.port_write(PIC_MASTER_DATA, 0x40);
    pic.port_write(PIC_MASTER_DATA, 0x04);
    assert_eq!(pic.get_state(PicChip::Master).init_state, 0);
    pic.port_write(PIC_MASTER_DATA, 0x12);
    assert_eq!(pic.port_read(PIC_MASTER_DATA), 0x12);
    // ELCR masks: IRQ0-2, 8 and 13 cannot be level triggered.
    pic.port_write(PIC_ELCR_MASTER, 0xff);
    pic.port_write(PIC_ELCR_SLAVE, 0xff);
    assert_eq!(pic.port_read(PIC_ELCR_MASTER), 0xf8);
    assert_eq!(pic.port_read(PIC_ELCR_SLAVE), 0xde);
    assert_eq!(pic.port_read(0x22), 0);
}

#[test]
fn edge_irq_intack_and_eoi() {
    let mut pic = ready();
    assert!(!pic.output());
    assert_eq!(pulse(&mut pic, 1), 1);
    assert!(pic.output());
    assert!(pic.take_wakeup());
    assert!(!pic.take_wakeup());
    // IRR visible through OCW3 read-IRR (default).
    assert_eq!(pic.port_read(PIC_MASTER_CMD), 0x02);
    assert_eq!(pic.intack(), 0x21);
    assert!(!pic.output());
    pic.port_write(PIC_MASTER_CMD, 0x0b); // OCW3: read ISR
    assert_eq!(pic.port_read(PIC_MASTER_CMD), 0x02);
    assert_eq!(pic.port_read(PIC_MASTER_CMD), 0x02, "read select sticks");
    eoi(&mut pic, false);
    assert_eq!(pic.port_read(PIC_MASTER_CMD), 0);
    assert_eq!(pic.take_acked_pins(), 1 << 1);
    // Edge detection: holding the line high raises once.
    assert_eq!(pic.set_irq(3, 0, true), 1);
    assert_eq!(pic.intack(), 0x23);
    eoi(&mut pic, false);
    assert_eq!(
        pic.set_irq(3, 0, true),
        1,
        "still high: no new edge, upstream reports 1"
    );
    assert!(!pic.output());
    // Masked pins report -1 and do not raise INTR.
    pic.port_write(PIC_MASTER_DATA, 0x10);
    assert_eq!(pic.set_irq(4, 0, true), -1);
    assert!(!pic.output());
    pic.port_write(PIC_MASTER_DATA, 0x00);
    assert!(pic.output(), "unmasking raises the latched edge");
}

#[test]
fn level_irq_via_elcr() {
    let mut pic = ready();
    pic.port_write(PIC_ELCR_SLAVE, 1 << 3); // IRQ11 level
    assert_eq!(pic.set_irq(11, 0, true), 1);
    assert_eq!(pic.set_irq(11, 0, true), 0, "already pending: coalesced");
    assert_eq!(pic.intack(), 0x2b);
    eoi(&mut pic, true);
    // Still asserted: requested again.
    assert!(pic.output());
    assert_eq!(pic.intack(), 0x2b);
    // The device deasserts before the EOI: nothing is requested any more.
    pic.set_irq(11, 0, false);
    eoi(&mut pic, true);
    assert!(!pic.output());
    // Deasserting after the EOI leaves the master's latched cascade edge:
    // the next INTA is a spurious IRQ15.
    pic.set_irq(11, 0, true);
    assert_eq!(pic.intack(), 0x2b);
    eoi(&mut pic, true);
    pic.set_irq(11, 0, false);
    assert!(pic.output());
    assert_eq!(pic.intack(), 0x2f);
}

#[test]
fn priorities_and_nesting() {
    let mut pic = ready();
    pulse(&mut pic, 3);
    pulse(&mut pic, 1);
    assert_eq!(pic.intack(), 0x21);
    // IRQ3 is lower priority than the in-service IRQ1.
    assert!(!pic.output());
    // IRQ0 preempts.
    pulse(&mut pic, 0);
    assert!(pic.output());
    assert_eq!(pic.intack(), 0x20);
    eoi(&mut pic, false); // retires IRQ0
    assert!(!pic.output());
    eoi(&mut pic, false); // retires IRQ1
    assert_eq!(pic.intack(), 0x23);
    // Specific EOI.
    pic.port_write(PIC_MASTER_CMD, 0x63);
    pic.port_write(PIC_MASTER_CMD, 0x0b);
    assert_eq!(pic.port_read(PIC_MASTER_CMD), 0);
}

#[test]
fn cascade_and_spurious() {
    let mut pic = ready();
    pulse(&mut pic, 10);
    assert!(pic.output());
    assert_eq!(pic.intack(), 0x2a);
    assert_eq!(pic.get_state(PicChip::Master).isr, 1 << 2);
    assert_eq!(pic.get_state(PicChip::Slave).isr, 1 << 2);
    eoi(&mut pic, true);
    assert_eq!(pic.take_acked_pins(), (1 << 10) | (1 << 2));
    // Master spurious: INTA with nothing pending yields IRQ7.
    assert_eq!(pic.intack(), 0x27);
    // Slave spurious: the request vanishes after reaching the master.
    pic.port_write(PIC_ELCR_SLAVE, 1 << 4); // IRQ12 level
    pic.set_irq(12, 0, true);
    pic.set_irq(12, 0, false);
    assert!(pic.output(), "master latched the cascade edge");
    assert_eq!(pic.intack(), 0x2f);
}

#[test]
fn auto_eoi_and_rotation() {
    let mut pic = Pic::new();
    init(&mut pic, 0x30, 0x38, 0x03); // AEOI
    pulse(&mut pic, 5);
    assert_eq!(pic.intack(), 0x35);
    assert_eq!(pic.get_state(PicChip::Master).isr, 0);
    assert_eq!(pic.take_acked_pins(), 1 << 5);
    // Rotate in AEOI mode: the serviced IRQ becomes lowest priority.
    pic.port_write(PIC_MASTER_CMD, 0x80);
    pulse(&mut pic, 5);
    assert_eq!(pic.intack(), 0x35);
    assert_eq!(pic.get_state(PicChip::Master).priority_add, 6);
    pulse(&mut pic, 5);
    pulse(&mut pic, 6);
    assert_eq!(pic.intack(), 0x36, "IRQ6 now has the highest priority");
    // Rotate on non-specific EOI and set-priority commands.
    let mut pic = ready();
    pulse(&mut pic, 2);
    pic.intack();
    pic.port_write(PIC_MASTER_CMD, 0xa0);
    assert_eq!(pic.get_state(PicChip::Master).priority_add, 3);
    pic.port_write(PIC_MASTER_CMD, 0xc4); // set priority: IRQ4 lowest
    assert_eq!(pic.get_state(PicChip::Master).priority_add, 5);
    pulse(&mut pic, 4);
    pulse(&mut pic, 5);
    assert_eq!(pic.intack(), 0x25);
    pic.port_write(PIC_MASTER_CMD, 0xe5); // rotate on specific EOI of IRQ5
    assert_eq!(pic.get_state(PicChip::Master).priority_add, 6);
    assert_eq!(pic.intack(), 0x24);
}

#[test]
fn special_mask_mode() {
    let mut pic = ready();
    pulse(&mut pic, 1);
    assert_eq!(pic.intack(), 0x21);
    pulse(&mut pic, 4);
    assert!(!pic.output(), "blocked by in-service IRQ1");
    // Mask IRQ1 and enter special mask mode: IRQ4 gets through.
    pic.port_write(PIC_MASTER_DATA, 0x02);
    pic.port_write(PIC_MASTER_CMD, 0x68);
    assert_eq!(pic.get_state(PicChip::Master).special_mask, 1);
    assert!(pic.output());
    assert_eq!(pic.intack(), 0x24);
    pic.port_write(PIC_MASTER_CMD, 0x48);
    assert_eq!(pic.get_state(PicChip::Master).special_mask, 0);
}

#[test]
fn poll_mode() {
    let mut pic = ready();
    pic.port_write(PIC_MASTER_CMD, 0x0c);
    assert_eq!(pic.port_read(PIC_MASTER_CMD), 0x07, "no request: 0x07");
    pulse(&mut pic, 6);
    pic.port_write(PIC_MASTER_CMD, 0x0c);
    assert_eq!(pic.port_read(PIC_MASTER_DATA), 0x86);
    assert_eq!(pic.get_state(PicChip::Master).isr, 0);
    assert_eq!(pic.get_state(PicChip::Master).irr, 0);
    assert_eq!(pic.take_acked_pins(), 1 << 6);
    assert_eq!(pic.port_read(PIC_MASTER_DATA), 0, "poll is one-shot");
    // Polling the slave clears the cascade request on the master.
    pulse(&mut pic, 9);
    pic.port_write(PIC_SLAVE_CMD, 0x0c);
    assert_eq!(pic.port_read(PIC_SLAVE_CMD), 0x81);
    assert_eq!(pic.get_state(PicChip::Master).irr & 4, 0);
    assert!(!pic.output());
}

#[test]
fn extint_through_lapic_lint0() {
    let mut pic = ready();
    let mut bsp = Lapic::new(LapicConfig::new(0, true));
    pulse(&mut pic, 0);
    assert!(bsp.accepts_pic_interrupts() && pic.output());
    let vector = pic.intack();
    assert_eq!(vector, 0x20);
    // Once the guest masks LINT0 (switching to the IOAPIC) it no longer does.
    let _ = bsp
        .write_reg(lapic_regs::APIC_LVT0, 0x1_0700, &common::clk(0))
        .unwrap();
    assert!(!bsp.accepts_pic_interrupts());
}

#[test]
fn icw1_reinit_clears_edges() {
    let mut pic = ready();
    pic.port_write(PIC_ELCR_MASTER, 1 << 5);
    pic.set_irq(5, 0, true);
    pulse(&mut pic, 4);
    pic.port_write(PIC_MASTER_DATA, 0xff);
    init(&mut pic, 0x20, 0x28, 0x01);
    let m = pic.get_state(PicChip::Master);
    assert_eq!(m.irr, 1 << 5, "level requests survive, edges are dropped");
    assert_eq!(m.imr, 0);
}

#[test]
fn state_round_trip() {
    let mut pic = ready();
    pic.port_write(PIC_ELCR_SLAVE, 0x0c);
    pic.port_write(PIC_SLAVE_DATA, 0x42);
    pulse(&mut pic, 9);
    pic.intack();
    let m = pic.get_state(PicChip::Master);
    let s = pic.get_state(PicChip::Slave);
    assert_eq!(s.elcr, 0x0c);
    assert_eq!(s.elcr_mask, 0xde);
    let mut other = Pic::new();
    other.set_state(PicChip::Master, &m);
    other.set_state(PicChip::Slave, &s);
    assert_eq!(other.get_state(PicChip::Master), m);
    assert_eq!(other.get_state(PicChip::Slave), s);
    // Loading a state with a pending unmasked request raises INTR.
    let mut pending = m;
    pending.irr = 1 << 3;
    pending.isr = 0;
    other.set_state(PicChip::Master, &pending);
    assert!(other.output());
}

/// Mask notifications (upstream's kvm_fire_mask_notifiers from OCW1):
/// only the IMR bits an OCW1 write flips are reported, per pin 0-15; the
/// IMR reset of ICW1 and KVM_SET_IRQCHIP report nothing.
#[test]
fn mask_changes_from_ocw1_only() {
    let mut pic = ready();
    // ICW1 cleared the IMR (it was 0 already): nothing.
    assert_eq!(pic.take_mask_changes(), 0);
    pic.port_write(PIC_MASTER_DATA, 0xff);
    pic.port_write(PIC_SLAVE_DATA, 0x05);
    assert_eq!(pic.take_mask_changes(), 0x05ff);
    assert!(pic.pin_masked(0) && pic.pin_masked(8) && !pic.pin_masked(9) && pic.pin_masked(10));
    assert_eq!(pic.take_mask_changes(), 0, "taken");
    // Unmask IRQ0 only; writing the same IMR again changes nothing.
    pic.port_write(PIC_MASTER_DATA, 0xfe);
    pic.port_write(PIC_MASTER_DATA, 0xfe);
    assert_eq!(pic.take_mask_changes(), 0x0001);
    assert!(!pic.pin_masked(0) && pic.pin_masked(1));
    // Re-initialisation resets the IMR without notifications.
    pic.port_write(PIC_MASTER_CMD, 0x11);
    assert!(!pic.pin_masked(1));
    assert_eq!(pic.take_mask_changes(), 0);
    let s = pic.get_state(PicChip::Master);
    let mut t = s;
    t.imr = 0xff;
    pic.set_state(PicChip::Master, &t);
    assert!(pic.pin_masked(0));
    assert_eq!(pic.take_mask_changes(), 0);
}
