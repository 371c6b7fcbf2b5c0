//! Cascaded 8259A programmable interrupt controllers (master on ports
//! 0x20/0x21, slave on 0xa0/0xa1 cascaded into master IRQ2) plus the PIIX
//! edge/level control registers at 0x4d0/0x4d1 (upstream
//! `arch/x86/kvm/i8259.c`, special mask mode as in QEMU).
//!
//! The master's INTR output is [`Pic::output`]. When a vCPU's LAPIC
//! accepts PIC interrupts ([`super::lapic::Lapic::accepts_pic_interrupts`])
//! and INTR is high, the run loop injects the vector returned by the
//! interrupt acknowledge cycle [`Pic::intack`].

use super::uapi::KvmPicState;

/// Master command port.
pub const PIC_MASTER_CMD: u16 = 0x20;
/// Master data port.
pub const PIC_MASTER_DATA: u16 = 0x21;
/// Slave command port.
pub const PIC_SLAVE_CMD: u16 = 0xa0;
/// Slave data port.
pub const PIC_SLAVE_DATA: u16 = 0xa1;
/// Master ELCR port.
pub const PIC_ELCR_MASTER: u16 = 0x4d0;
/// Slave ELCR port.
pub const PIC_ELCR_SLAVE: u16 = 0x4d1;
/// Number of pins of the pair.
pub const PIC_NUM_PINS: usize = 16;
/// The master input the slave is cascaded into.
pub const PIC_CASCADE_IRQ: u8 = 2;
/// The IRQ reported for a spurious interrupt.
pub const PIC_SPURIOUS_IRQ: u8 = 7;
/// Master ELCR writable bits (IRQ0-2 are always edge).
pub const PIC_ELCR_MASK_MASTER: u8 = 0xf8;
/// Slave ELCR writable bits (IRQ8 and IRQ13 are always edge).
pub const PIC_ELCR_MASK_SLAVE: u8 = 0xde;

const ICW1: u8 = 0x10;
const ICW1_IC4: u8 = 0x01;
const OCW3: u8 = 0x08;
const OCW3_POLL: u8 = 0x04;
const OCW3_RR: u8 = 0x02;
const OCW3_RIS: u8 = 0x01;
const OCW3_ESMM: u8 = 0x40;
const OCW3_SMM_SHIFT: u8 = 5;
const OCW2_CMD_SHIFT: u8 = 5;
const OCW2_LEVEL_MASK: u8 = 0x07;
const ICW2_BASE_MASK: u8 = 0xf8;
const ICW4_SFNM_SHIFT: u8 = 4;
const ICW4_AEOI_SHIFT: u8 = 1;
const POLL_INTERRUPT: u8 = 0x80;
const NO_PRIORITY: u8 = 8;

/// Which chip of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PicChip {
    /// IRQ 0-7 (`KVM_IRQCHIP_PIC_MASTER`).
    Master,
    /// IRQ 8-15 (`KVM_IRQCHIP_PIC_SLAVE`).
    Slave,
}

impl PicChip {
    const fn index(self) -> usize {
        match self {
            Self::Master => 0,
            Self::Slave => 1,
        }
    }
}

/// One 8259A (the fields of `struct kvm_pic_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Chip {
    last_irr: u8,
    irr: u8,
    imr: u8,
    isr: u8,
    priority_add: u8,
    irq_base: u8,
    read_reg_select: bool,
    poll: bool,
    special_mask: bool,
    init_state: u8,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    special_fully_nested_mode: bool,
    init4: bool,
    elcr: u8,
    elcr_mask: u8,
}

const fn bit(irq: u8) -> u8 {
    1 << (irq & 7)
}

impl Chip {
    /// Edge/level input logic. Returns 1 (raised), 0 (already pending) or
    /// -1 (masked), as upstream's `pic_set_irq1()`.
    fn set_irq(&mut self, irq: u8, level: bool) -> i32 {
        let mask = bit(irq);
        let mut ret = 1;
        if self.elcr & mask != 0 {
            if level {
                ret = i32::from(self.irr & mask == 0);
                self.irr |= mask;
                self.last_irr |= mask;
            } else {
                self.irr &= !mask;
                self.last_irr &= !mask;
            }
        } else if level {
            if self.last_irr & mask == 0 {
                ret = i32::from(self.irr & mask == 0);
                self.irr |= mask;
            }
            self.last_irr |= mask;
        } else {
            self.last_irr &= !mask;
        }
        if self.imr & mask != 0 {
            -1
        } else {
            ret
        }
    }

    /// Priority (0 = highest) of the best request in `mask`, 8 if none.
    fn priority(&self, mask: u8) -> u8 {
        if mask == 0 {
            return NO_PRIORITY;
        }
        let mut priority = 0;
        while priority < NO_PRIORITY && mask & bit(priority.wrapping_add(self.priority_add)) == 0 {
            priority += 1;
        }
        priority
    }

    /// The IRQ this chip wants to raise, if any.
    fn pending_irq(&self, is_master: bool) -> Option<u8> {
        let priority = self.priority(self.irr & !self.imr);
        if priority == NO_PRIORITY {
            return None;
        }
        let mut in_service = self.isr;
        if self.special_mask {
            in_service &= !self.imr;
        }
        if self.special_fully_nested_mode && is_master {
            in_service &= !bit(PIC_CASCADE_IRQ);
        }
        (priority < self.priority(in_service))
            .then_some(priority.wrapping_add(self.priority_add) & 7)
    }

    fn to_uapi(self) -> KvmPicState {
        KvmPicState {
            last_irr: self.last_irr,
            irr: self.irr,
            imr: self.imr,
            isr: self.isr,
            priority_add: self.priority_add,
            irq_base: self.irq_base,
            read_reg_select: u8::from(self.read_reg_select),
            poll: u8::from(self.poll),
            special_mask: u8::from(self.special_mask),
            init_state: self.init_state,
            auto_eoi: u8::from(self.auto_eoi),
            rotate_on_auto_eoi: u8::from(self.rotate_on_auto_eoi),
            special_fully_nested_mode: u8::from(self.special_fully_nested_mode),
            init4: u8::from(self.init4),
            elcr: self.elcr,
            elcr_mask: self.elcr_mask,
        }
    }

    fn from_uapi(s: &KvmPicState) -> Self {
        Self {
            last_irr: s.last_irr,
            irr: s.irr,
            imr: s.imr,
            isr: s.isr,
            priority_add: s.priority_add,
            irq_base: s.irq_base,
            read_reg_select: s.read_reg_select != 0,
            poll: s.poll != 0,
            special_mask: s.special_mask != 0,
            init_state: s.init_state,
            auto_eoi: s.auto_eoi != 0,
            rotate_on_auto_eoi: s.rotate_on_auto_eoi != 0,
            special_fully_nested_mode: s.special_fully_nested_mode != 0,
            init4: s.init4 != 0,
            elcr: s.elcr,
            elcr_mask: s.elcr_mask,
        }
    }
}

/// The master/slave 8259A pair.
#[derive(Clone, Debug)]
pub struct Pic {
    chips: [Chip; 2],
    irq_states: [u32; PIC_NUM_PINS],
    output: bool,
    wakeup_needed: bool,
    acked: u16,
    mask_changed: u16,
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    /// A freshly created pair (uninitialized chips, all edge triggered).
    pub const fn new() -> Self {
        let mut master = Chip {
            last_irr: 0,
            irr: 0,
            imr: 0,
            isr: 0,
            priority_add: 0,
            irq_base: 0,
            read_reg_select: false,
            poll: false,
            special_mask: false,
            init_state: 0,
            auto_eoi: false,
            rotate_on_auto_eoi: false,
            special_fully_nested_mode: false,
            init4: false,
            elcr: 0,
            elcr_mask: PIC_ELCR_MASK_MASTER,
        };
        let mut slave = master;
        slave.elcr_mask = PIC_ELCR_MASK_SLAVE;
        master.elcr_mask = PIC_ELCR_MASK_MASTER;
        Self {
            chips: [master, slave],
            irq_states: [0; PIC_NUM_PINS],
            output: false,
            wakeup_needed: false,
            acked: 0,
            mask_changed: 0,
        }
    }

    fn chip(&mut self, index: usize) -> &mut Chip {
        // Index is always 0 or 1 (masked); the fallback keeps this total.
        let [master, slave] = &mut self.chips;
        if index & 1 == 0 {
            master
        } else {
            slave
        }
    }

    /// INTR output of the master.
    pub fn output(&self) -> bool {
        self.output
    }

    /// Whether INTR rose since the last call: kick a vCPU whose LAPIC
    /// accepts PIC interrupts.
    pub fn take_wakeup(&mut self) -> bool {
        core::mem::take(&mut self.wakeup_needed)
    }

    /// PIC pins (bit n = IRQ n) whose interrupt was acknowledged by an EOI
    /// (or auto-EOI / poll) since the last call: run their ack notifiers
    /// (PIT reinjection on IRQ0, irqfd resamplers).
    pub fn take_acked_pins(&mut self) -> u16 {
        core::mem::take(&mut self.acked)
    }

    /// PIC pins (bit n = IRQ n) whose IMR bit an OCW1 write changed since
    /// the last call: run their mask notifiers (the PIT forgets stale
    /// ticks when IRQ0 is unmasked). As upstream, the IMR reset of an
    /// ICW1 and KVM_SET_IRQCHIP do not count.
    pub fn take_mask_changes(&mut self) -> u16 {
        core::mem::take(&mut self.mask_changed)
    }

    /// Whether PIC pin `pin` (0-15) is masked in its chip's IMR.
    pub fn pin_masked(&self, pin: u8) -> bool {
        let chip = &self.chips[usize::from(pin >> 3) & 1];
        chip.imr & bit(pin & 7) != 0
    }

    fn clear_isr(&mut self, index: usize, irq: u8) {
        self.chip(index).isr &= !bit(irq);
        let pin = u32::from(irq & 7) + if index & 1 == 0 { 0 } else { 8 };
        self.acked |= 1u16 << pin;
    }

    fn update_irq(&mut self) {
        if self.chips[1].pending_irq(false).is_some() {
            let master = self.chip(0);
            master.set_irq(PIC_CASCADE_IRQ, true);
            master.set_irq(PIC_CASCADE_IRQ, false);
        }
        let level = self.chips[0].pending_irq(true).is_some();
        if !self.output && level {
            self.wakeup_needed = true;
        }
        self.output = level;
    }

    /// Drives `pin` (0-15) from IRQ source `source_id`; the line is the OR
    /// of all sources. Returns 1 raised, 0 coalesced, -1 masked.
    pub fn set_irq(&mut self, pin: u8, source_id: u32, level: bool) -> i32 {
        let Some(bit_mask) = 1u32.checked_shl(source_id) else {
            return -1;
        };
        let Some(states) = self.irq_states.get_mut(usize::from(pin)) else {
            return -1;
        };
        if level {
            *states |= bit_mask;
        } else {
            *states &= !bit_mask;
        }
        let line = *states != 0;
        let ret = self.chip(usize::from(pin >> 3)).set_irq(pin & 7, line);
        self.update_irq();
        ret
    }

    fn intack_chip(&mut self, index: usize, irq: u8) {
        let chip = self.chip(index);
        chip.isr |= bit(irq);
        if chip.elcr & bit(irq) == 0 {
            chip.irr &= !bit(irq);
        }
        if chip.auto_eoi {
            if chip.rotate_on_auto_eoi {
                chip.priority_add = irq.wrapping_add(1) & 7;
            }
            self.clear_isr(index, irq);
        }
    }

    /// Interrupt acknowledge cycle: returns the vector to inject (a
    /// spurious IRQ7/IRQ15 vector when nothing is pending any more).
    pub fn intack(&mut self) -> u8 {
        self.output = false;
        let vector = match self.chips[0].pending_irq(true) {
            Some(irq) => {
                self.intack_chip(0, irq);
                if irq == PIC_CASCADE_IRQ {
                    let slave_irq = match self.chips[1].pending_irq(false) {
                        Some(irq2) => {
                            self.intack_chip(1, irq2);
                            irq2
                        }
                        None => PIC_SPURIOUS_IRQ,
                    };
                    self.chips[1].irq_base.wrapping_add(slave_irq)
                } else {
                    self.chips[0].irq_base.wrapping_add(irq)
                }
            }
            None => self.chips[0].irq_base.wrapping_add(PIC_SPURIOUS_IRQ),
        };
        self.update_irq();
        vector
    }

    /// ICW1: start initialization (upstream `kvm_pic_reset()`).
    fn init_chip(&mut self, index: usize) {
        let chip = self.chip(index);
        let edge_irr = chip.irr & !chip.elcr;
        chip.last_irr = 0;
        chip.irr &= chip.elcr;
        chip.imr = 0;
        chip.priority_add = 0;
        chip.special_mask = false;
        chip.read_reg_select = false;
        if !chip.init4 {
            chip.special_fully_nested_mode = false;
            chip.auto_eoi = false;
        }
        chip.init_state = 1;
        for irq in 0..8u8 {
            if edge_irr & bit(irq) != 0 {
                self.clear_isr(index, irq);
            }
        }
        self.update_irq();
    }

    fn write_command(&mut self, index: usize, val: u8) {
        if val & ICW1 != 0 {
            self.chip(index).init4 = val & ICW1_IC4 != 0;
            self.init_chip(index);
            return;
        }
        if val & OCW3 != 0 {
            let chip = self.chip(index);
            if val & OCW3_POLL != 0 {
                chip.poll = true;
            }
            if val & OCW3_RR != 0 {
                chip.read_reg_select = val & OCW3_RIS != 0;
            }
            if val & OCW3_ESMM != 0 {
                chip.special_mask = (val >> OCW3_SMM_SHIFT) & 1 != 0;
            }
            self.update_irq();
            return;
        }
        let level = val & OCW2_LEVEL_MASK;
        match val >> OCW2_CMD_SHIFT {
            // Rotate in automatic EOI mode: clear (0) / set (4).
            0 | 4 => self.chip(index).rotate_on_auto_eoi = val >> OCW2_CMD_SHIFT == 4,
            // Non-specific EOI (1), rotate on non-specific EOI (5).
            cmd @ (1 | 5) => {
                let chip = *self.chip(index);
                let priority = chip.priority(chip.isr);
                if priority != NO_PRIORITY {
                    let irq = priority.wrapping_add(chip.priority_add) & 7;
                    if cmd == 5 {
                        self.chip(index).priority_add = irq.wrapping_add(1) & 7;
                    }
                    self.clear_isr(index, irq);
                    self.update_irq();
                }
            }
            // Specific EOI.
            3 => {
                self.clear_isr(index, level);
                self.update_irq();
            }
            // Set priority.
            6 => {
                self.chip(index).priority_add = level.wrapping_add(1) & 7;
                self.update_irq();
            }
            // Rotate on specific EOI.
            7 => {
                self.chip(index).priority_add = level.wrapping_add(1) & 7;
                self.clear_isr(index, level);
                self.update_irq();
            }
            // 2: no operation.
            _ => {}
        }
    }

    fn write_data(&mut self, index: usize, val: u8) {
        let chip = self.chip(index);
        match chip.init_state {
            1 => {
                chip.irq_base = val & ICW2_BASE_MASK;
                chip.init_state = 2;
            }
            2 => chip.init_state = if chip.init4 { 3 } else { 0 },
            3 => {
                chip.special_fully_nested_mode = (val >> ICW4_SFNM_SHIFT) & 1 != 0;
                chip.auto_eoi = (val >> ICW4_AEOI_SHIFT) & 1 != 0;
                chip.init_state = 0;
            }
            _ => {
                let changed = u16::from(chip.imr ^ val);
                chip.imr = val;
                self.mask_changed |= if index & 1 == 0 {
                    changed
                } else {
                    changed << 8
                };
                self.update_irq();
            }
        }
    }

    fn poll_read(&mut self, index: usize) -> u8 {
        let is_slave = index & 1 != 0;
        match self
            .chips
            .get(index & 1)
            .and_then(|c| c.pending_irq(!is_slave))
        {
            Some(irq) => {
                if is_slave {
                    let master = self.chip(0);
                    master.isr &= !bit(PIC_CASCADE_IRQ);
                    master.irr &= !bit(PIC_CASCADE_IRQ);
                }
                self.chip(index).irr &= !bit(irq);
                self.clear_isr(index, irq);
                if is_slave || irq != PIC_CASCADE_IRQ {
                    self.update_irq();
                }
                irq | POLL_INTERRUPT
            }
            None => {
                self.update_irq();
                PIC_SPURIOUS_IRQ
            }
        }
    }

    /// Byte write to one of the PIC/ELCR ports (other ports are ignored).
    pub fn port_write(&mut self, port: u16, val: u8) {
        match port {
            PIC_MASTER_CMD => self.write_command(0, val),
            PIC_MASTER_DATA => self.write_data(0, val),
            PIC_SLAVE_CMD => self.write_command(1, val),
            PIC_SLAVE_DATA => self.write_data(1, val),
            PIC_ELCR_MASTER | PIC_ELCR_SLAVE => {
                let chip = self.chip(usize::from(port & 1));
                chip.elcr = val & chip.elcr_mask;
            }
            _ => {}
        }
    }

    /// Byte read from one of the PIC/ELCR ports (0 for other ports). A
    /// pending OCW3 poll command turns the read into a poll cycle.
    pub fn port_read(&mut self, port: u16) -> u8 {
        let index = match port {
            PIC_MASTER_CMD | PIC_MASTER_DATA => 0,
            PIC_SLAVE_CMD | PIC_SLAVE_DATA => 1,
            PIC_ELCR_MASTER | PIC_ELCR_SLAVE => return self.chip(usize::from(port & 1)).elcr,
            _ => return 0,
        };
        let chip = self.chip(index);
        if chip.poll {
            chip.poll = false;
            return self.poll_read(index);
        }
        if port & 1 == 0 {
            if chip.read_reg_select {
                chip.isr
            } else {
                chip.irr
            }
        } else {
            chip.imr
        }
    }

    /// KVM_GET_IRQCHIP (PIC master or slave).
    pub fn get_state(&self, which: PicChip) -> KvmPicState {
        let [master, slave] = &self.chips;
        match which {
            PicChip::Master => master.to_uapi(),
            PicChip::Slave => slave.to_uapi(),
        }
    }

    /// KVM_SET_IRQCHIP (PIC master or slave); INTR is re-evaluated.
    pub fn set_state(&mut self, which: PicChip, state: &KvmPicState) {
        *self.chip(which.index()) = Chip::from_uapi(state);
        self.update_irq();
    }
}
