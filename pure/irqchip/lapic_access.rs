//! LAPIC register access: the xAPIC MMIO page and the x2APIC MSR range
//! (upstream `kvm_lapic_reg_read()` / `kvm_lapic_reg_write()` /
//! `kvm_x2apic_msr_*()`), dispatching to the state transitions in
//! [`super::lapic`].

use super::clock::Clock;
use super::lapic::{Lapic, LapicAccessError, LapicEffects};
use super::lapic_regs::*;
use super::lapic_timer::{divide_count, TimerMode};
use crate::defs::msr::x2apic_reg;

/// What reads of a disabled (or x2APIC-mode) xAPIC MMIO window return.
const MMIO_HOLE_BYTE: u8 = 0xff;

/// Registers readable through MMIO/MSR, as a mask indexed by offset >> 4.
const fn reg_bit(offset: u32) -> u64 {
    1u64 << (offset >> 4)
}
const fn reg_bits(first: u32, count: u32) -> u64 {
    reg_bit(first) * ((1u64 << count) - 1)
}
const READABLE_ALWAYS: u64 = reg_bit(APIC_ID)
    | reg_bit(APIC_LVR)
    | reg_bit(APIC_TASKPRI)
    | reg_bit(APIC_PROCPRI)
    | reg_bit(APIC_LDR)
    | reg_bit(APIC_SPIV)
    | reg_bits(APIC_ISR, APIC_VECTOR_BANK_WORDS)
    | reg_bits(APIC_TMR, APIC_VECTOR_BANK_WORDS)
    | reg_bits(APIC_IRR, APIC_VECTOR_BANK_WORDS)
    | reg_bit(APIC_ESR)
    | reg_bit(APIC_ICR)
    | reg_bit(APIC_LVTT)
    | reg_bit(APIC_LVTTHMR)
    | reg_bit(APIC_LVTPC)
    | reg_bit(APIC_LVT0)
    | reg_bit(APIC_LVT1)
    | reg_bit(APIC_LVTERR)
    | reg_bit(APIC_TMICT)
    | reg_bit(APIC_TMCCT)
    | reg_bit(APIC_TDCR);
const READABLE_XAPIC_ONLY: u64 = reg_bit(APIC_ARBPRI) | reg_bit(APIC_DFR) | reg_bit(APIC_ICR2);

impl Lapic {
    // ---- register reads -------------------------------------------------

    fn readable_mask(&self) -> u64 {
        let mut mask = READABLE_ALWAYS;
        if self.lvt_supported(Lvt::Cmci) {
            mask |= reg_bit(APIC_LVTCMCI);
        }
        if !self.x2apic_mode() {
            mask |= READABLE_XAPIC_ONLY;
        }
        mask
    }

    /// Reads the 32-bit register at (16-byte aligned) `offset`; `None` for
    /// reserved and write-only registers.
    pub fn read_reg(&self, offset: u32, clk: &(impl Clock + ?Sized)) -> Option<u32> {
        if offset > APIC_LAST_REG
            || offset & APIC_REG_ALIGN_MASK != 0
            || self.readable_mask() & reg_bit(offset) == 0
        {
            return None;
        }
        Some(match offset {
            APIC_ARBPRI => 0,
            APIC_TMCCT => self.current_count(clk.now_ns()),
            _ => self.regs.get(offset),
        })
    }

    /// xAPIC MMIO read of `data.len()` bytes at `offset` into the page.
    ///
    /// Hardware-disabled or x2APIC-mode APICs read as all ones (upstream's
    /// LAPIC_MMIO_HOLE quirk); accesses crossing a 4-byte boundary or to
    /// unreadable registers read as zeros.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8], clk: &(impl Clock + ?Sized)) {
        if !self.mmio_enabled() {
            data.fill(MMIO_HOLE_BYTE);
            return;
        }
        data.fill(0);
        let Ok(offset) = u32::try_from(offset & (LAPIC_MMIO_LENGTH - 1)) else {
            return;
        };
        let align = (offset & APIC_REG_ALIGN_MASK) as usize;
        if !matches!(data.len(), 1 | 2 | 4) || align + data.len() > 4 {
            return;
        }
        if let Some(value) = self.read_reg(offset & !APIC_REG_ALIGN_MASK, clk) {
            let bytes = value.to_le_bytes();
            if let Some(src) = bytes.get(align..align + data.len()) {
                data.copy_from_slice(src);
            }
        }
    }

    /// xAPIC MMIO write. Only aligned 4-byte writes have an effect.
    pub fn mmio_write(
        &mut self,
        offset: u64,
        data: &[u8],
        clk: &(impl Clock + ?Sized),
    ) -> LapicEffects {
        if !self.mmio_enabled() {
            return LapicEffects::default();
        }
        let Ok(offset) = u32::try_from(offset & (LAPIC_MMIO_LENGTH - 1)) else {
            return LapicEffects::default();
        };
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return LapicEffects::default();
        };
        if offset & APIC_REG_ALIGN_MASK != 0 {
            return LapicEffects::default();
        }
        self.write_reg(offset, u32::from_le_bytes(bytes), clk)
            .unwrap_or_default()
    }

    // ---- register writes -------------------------------------------------

    /// Writes the 32-bit register at `offset` (upstream
    /// `kvm_lapic_reg_write()`). In x2APIC mode use the MSR interface for
    /// the ICR.
    pub fn write_reg(
        &mut self,
        offset: u32,
        value: u32,
        clk: &(impl Clock + ?Sized),
    ) -> Result<LapicEffects, LapicAccessError> {
        let mut fx = LapicEffects::default();
        let x2apic = self.x2apic_mode();
        match offset {
            APIC_ID => {
                if x2apic {
                    return Err(LapicAccessError::InvalidRegister);
                }
                self.set_xapic_id((value >> APIC_XAPIC_ID_SHIFT) as u8);
                fx.dest_changed = true;
            }
            APIC_TASKPRI => self.set_tpr(value),
            APIC_EOI => fx.eoi = self.eoi(),
            APIC_LDR => {
                if x2apic {
                    return Err(LapicAccessError::InvalidRegister);
                }
                self.regs.set(APIC_LDR, value & APIC_LDR_MASK);
                fx.dest_changed = true;
            }
            APIC_DFR => {
                if x2apic {
                    return Err(LapicAccessError::InvalidRegister);
                }
                self.regs.set(APIC_DFR, value | APIC_DFR_RESERVED_ONES);
                fx.dest_changed = true;
            }
            APIC_SPIV => {
                let mut mask = APIC_SPIV_WRITABLE;
                if self.regs.get(APIC_LVR) & APIC_LVR_DIRECTED_EOI != 0 {
                    mask |= APIC_SPIV_DIRECTED_EOI;
                }
                let was_enabled = self.sw_enabled;
                self.set_spiv(value & mask);
                fx.dest_changed = was_enabled != self.sw_enabled;
                if !self.sw_enabled {
                    for lvt in ALL_LVTS {
                        if self.lvt_supported(lvt) {
                            self.regs
                                .set(lvt.offset(), self.regs.get(lvt.offset()) | APIC_LVT_MASKED);
                        }
                    }
                    self.update_lvtt();
                    fx.timer_changed = true;
                }
            }
            APIC_ICR => {
                if x2apic {
                    return Err(LapicAccessError::InvalidRegister);
                }
                let low = value & !APIC_ICR_BUSY;
                self.send_ipi(low, self.regs.get(APIC_ICR2), &mut fx);
                self.regs.set(APIC_ICR, low);
            }
            APIC_ICR2 => {
                if x2apic {
                    return Err(LapicAccessError::InvalidRegister);
                }
                self.regs.set(APIC_ICR2, value & APIC_ICR2_DEST_MASK);
            }
            APIC_LVTT => {
                let mut v = value;
                if !self.sw_enabled {
                    v |= APIC_LVT_MASKED;
                }
                self.regs.set(
                    APIC_LVTT,
                    v & (Lvt::Timer.write_mask() | self.timer_mode_mask()),
                );
                self.update_lvtt();
                fx.timer_changed = true;
            }
            APIC_LVTTHMR | APIC_LVTPC | APIC_LVT0 | APIC_LVT1 | APIC_LVTERR | APIC_LVTCMCI => {
                let Some(lvt) = Lvt::from_offset(offset) else {
                    return Err(LapicAccessError::InvalidRegister);
                };
                if !self.lvt_supported(lvt) {
                    return Err(LapicAccessError::InvalidRegister);
                }
                let mut v = value;
                if !self.sw_enabled {
                    v |= APIC_LVT_MASKED;
                }
                self.regs.set(offset, v & lvt.write_mask());
            }
            APIC_TMICT => {
                if self.timer.mode != TimerMode::TscDeadline {
                    self.regs.set(APIC_TMICT, value);
                    self.start_timer(None, clk);
                    fx.timer_changed = true;
                }
            }
            APIC_TDCR => {
                let old = self.divide;
                self.regs.set(APIC_TDCR, value & APIC_TDCR_MASK);
                self.divide = divide_count(value);
                self.timer.change_divide(
                    self.regs.get(APIC_TMICT),
                    old,
                    self.divide,
                    clk.now_ns(),
                    self.cfg.bus_cycle_ns,
                    self.cfg.min_periodic_ns,
                );
                fx.timer_changed = old != self.divide;
            }
            APIC_ESR => {
                if x2apic && value != 0 {
                    return Err(LapicAccessError::ReservedBits);
                }
                // SDM: a write latches the errors collected since the last
                // write and clears the internal error state.
                self.regs.set(APIC_ESR, self.esr_pending);
                self.esr_pending = 0;
            }
            APIC_SELF_IPI => {
                if !x2apic {
                    return Err(LapicAccessError::InvalidRegister);
                }
                if value & !APIC_VECTOR_MASK != 0 {
                    return Err(LapicAccessError::ReservedBits);
                }
                self.send_ipi(APIC_DEST_SELF | value, 0, &mut fx);
            }
            _ => return Err(LapicAccessError::InvalidRegister),
        }
        Ok(fx)
    }

    // ---- x2APIC MSRs ------------------------------------------------------

    /// The 64-bit x2APIC ICR.
    fn x2apic_icr(&self) -> u64 {
        u64::from(self.regs.get(APIC_ICR)) | (u64::from(self.regs.get(APIC_ICR2)) << 32)
    }

    /// `RDMSR` of an x2APIC register (0x800..=0x8ff). Errors mean #GP.
    pub fn x2apic_msr_read(
        &self,
        msr: u32,
        clk: &(impl Clock + ?Sized),
    ) -> Result<u64, LapicAccessError> {
        let reg = x2apic_reg(msr).ok_or(LapicAccessError::NotX2apic)?;
        if !self.x2apic_mode() {
            return Err(LapicAccessError::NotX2apic);
        }
        if reg == APIC_ICR {
            return Ok(self.x2apic_icr());
        }
        self.read_reg(reg, clk)
            .map(u64::from)
            .ok_or(LapicAccessError::InvalidRegister)
    }

    /// `WRMSR` of an x2APIC register (0x800..=0x8ff). Errors mean #GP.
    pub fn x2apic_msr_write(
        &mut self,
        msr: u32,
        value: u64,
        clk: &(impl Clock + ?Sized),
    ) -> Result<LapicEffects, LapicAccessError> {
        let reg = x2apic_reg(msr).ok_or(LapicAccessError::NotX2apic)?;
        if !self.x2apic_mode() {
            return Err(LapicAccessError::NotX2apic);
        }
        if reg == APIC_ICR {
            if value & X2APIC_ICR_RESERVED != 0 {
                return Err(LapicAccessError::ReservedBits);
            }
            let low = (value as u32) & !APIC_ICR_BUSY;
            let high = (value >> 32) as u32;
            let mut fx = LapicEffects::default();
            self.send_ipi(low, high, &mut fx);
            self.regs.set(APIC_ICR, low);
            self.regs.set(APIC_ICR2, high);
            return Ok(fx);
        }
        let value = u32::try_from(value).map_err(|_| LapicAccessError::ReservedBits)?;
        self.write_reg(reg, value, clk)
    }
}
