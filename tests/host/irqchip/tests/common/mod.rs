//! Shared test fixtures: a VM-like APIC bus over a vector of LAPICs, a
//! recording IOAPIC environment and a small deterministic RNG.
#![allow(dead_code)]

use rkvm_irqchip::irqchip::*;

/// Enables a LAPIC in software (SPIV = 0x1ff, spurious vector 0xff).
pub fn sw_enable(l: &mut Lapic) {
    let fx = l.write_reg(lapic_regs::APIC_SPIV, 0x1ff, &clk(0)).unwrap();
    assert!(fx.ipi.is_none());
}

/// A clock at `ns` with a 1 GHz guest TSC (1 cycle per ns).
pub fn clk(ns: u64) -> ClockSnapshot {
    ClockSnapshot::at(ns, 1_000_000)
}

/// A bus of LAPICs plus everything an IOAPIC environment records.
pub struct Bus {
    pub lapics: Vec<Lapic>,
    pub acked: Vec<u8>,
    pub lower_on_ack: u32,
    pub resampler_pins: u32,
    pub resampled: Vec<u8>,
    pub mask_events: Vec<(u8, bool)>,
}

impl Bus {
    /// `n` LAPICs, vCPU 0 is the BSP; all software enabled when `enable`.
    pub fn new(n: u32, enable: bool) -> Self {
        let mut lapics = Vec::new();
        for id in 0..n {
            let mut l = Lapic::new(LapicConfig::new(id, id == 0));
            if enable {
                sw_enable(&mut l);
            }
            lapics.push(l);
        }
        Self {
            lapics,
            acked: Vec::new(),
            lower_on_ack: 0,
            resampler_pins: 0,
            resampled: Vec::new(),
            mask_events: Vec::new(),
        }
    }

    /// Highest IRR vector of every LAPIC.
    pub fn irrs(&self) -> Vec<Option<u8>> {
        self.lapics.iter().map(|l| l.highest_irr()).collect()
    }

    /// Injects and acknowledges the top interrupt of `index`.
    pub fn ack(&mut self, index: usize) -> Option<u8> {
        let l = &mut self.lapics[index];
        let v = l.highest_injectable_vector()?;
        l.ack_interrupt(v);
        Some(v)
    }
}

impl ApicBus for Bus {
    fn apic_count(&self) -> usize {
        self.lapics.len()
    }
    fn dest_info(&self, index: usize) -> Option<ApicDestInfo> {
        self.lapics.get(index).map(|l| l.dest_info())
    }
    fn accept(&mut self, index: usize, irq: &Delivery) -> bool {
        self.lapics
            .get_mut(index)
            .is_some_and(|l| l.accept_irq(irq))
    }
    fn pending_eoi(&self, index: usize, vector: u8) -> bool {
        self.lapics
            .get(index)
            .is_some_and(|l| l.vector_pending_eoi(vector))
    }
}

impl IoapicEnv for Bus {
    fn irq_acked(&mut self, pin: u8) -> u32 {
        self.acked.push(pin);
        self.lower_on_ack
    }
    fn notify_resampler(&mut self, pin: u8) -> bool {
        if self.resampler_pins & (1 << pin) != 0 {
            self.resampled.push(pin);
            true
        } else {
            false
        }
    }
    fn mask_changed(&mut self, pin: u8, masked: bool) {
        self.mask_events.push((pin, masked));
    }
}

/// xorshift64* — deterministic, seedable, dependency free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn u8(&mut self) -> u8 {
        self.next() as u8
    }
    pub fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    pub fn bool(&mut self) -> bool {
        self.next() & 1 != 0
    }
    /// Mostly interesting values, sometimes anything.
    pub fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[self.below(choices.len() as u64) as usize]
    }
}
