//! KVM_GET_LAPIC / KVM_SET_LAPIC: conversion between a [`Lapic`] and the
//! 1 KiB `struct kvm_lapic_state` register image, with upstream's x2APIC
//! fix-ups (`kvm_apic_state_fixup()`):
//!
//! * x2APIC mode, legacy format (`x2apic_format == false`): GET reports the
//!   ID as `x2apic_id << 24`; SET ignores the image's ID.
//! * x2APIC mode, `KVM_X2APIC_API_USE_32BIT_IDS`: the ID is the raw 32-bit
//!   x2APIC ID and SET rejects any other value.
//! * x2APIC mode: SET recomputes LDR from the x2APIC ID; the 64-bit ICR is
//!   split into ICR (0x300, low) and ICR2 (0x310, high) like SVM does.
//! * TMCCT is reported as the live current count and, on SET, restarts the
//!   count from that value; the version register and PPR are recomputed.
//!
//! * A one-shot count whose TMCCT is 0 fires once more right after the
//!   load, as upstream's: a count that ran out while the vCPU was stopped
//!   (live migration) reads 0 with its interrupt not yet in IRR.
//!
//! Deviation from upstream: SET keeps the image's TMICT even when the
//! LVTT mode differs from the LAPIC's previous mode across the
//! TSC-deadline boundary (upstream zeroes it).

use super::clock::Clock;
use super::lapic::{x2apic_ldr, Lapic, LapicEffects};
use super::lapic_page::RegPage;
use super::lapic_regs::*;
use super::uapi::KvmLapicState;

/// Why KVM_SET_LAPIC was refused (`-EINVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LapicStateError {
    /// 32-bit x2APIC ID format in use and the image's ID is not the vCPU's.
    X2apicIdMismatch,
}

impl Lapic {
    /// KVM_GET_LAPIC.
    pub fn get_state(&self, clk: &(impl Clock + ?Sized), x2apic_format: bool) -> KvmLapicState {
        let mut page = self.regs.clone();
        page.set(APIC_TMCCT, self.read_reg(APIC_TMCCT, clk).unwrap_or(0));
        if self.x2apic_mode() && !x2apic_format {
            page.set(APIC_ID, self.cfg.vcpu_id << APIC_XAPIC_ID_SHIFT);
        }
        KvmLapicState {
            regs: page.to_bytes(),
        }
    }

    /// KVM_SET_LAPIC. APIC_BASE (x2APIC mode) must already be restored
    /// (KVM_SET_MSRS / KVM_SET_SREGS), as with upstream. The TSC-deadline
    /// value is not part of the image (it is restored through its MSR).
    pub fn set_state(
        &mut self,
        state: &KvmLapicState,
        clk: &(impl Clock + ?Sized),
        x2apic_format: bool,
    ) -> Result<LapicEffects, LapicStateError> {
        let mut page = RegPage::from_bytes(&state.regs);
        if self.x2apic_mode() {
            if x2apic_format {
                if page.get(APIC_ID) != self.cfg.vcpu_id {
                    return Err(LapicStateError::X2apicIdMismatch);
                }
            } else {
                page.set(APIC_ID, self.cfg.vcpu_id);
            }
            page.set(APIC_LDR, x2apic_ldr(self.cfg.vcpu_id));
        }
        let restore_count = page.get(APIC_TMCCT);
        page.set(APIC_TMCCT, 0);
        self.regs = page;
        self.sw_enabled = self.regs.get(APIC_SPIV) & APIC_SPIV_APIC_ENABLED != 0;
        self.update_version();
        self.timer.cancel();
        self.load_lvtt();
        self.divide = super::lapic_timer::divide_count(self.regs.get(APIC_TDCR));
        self.esr_pending = 0;
        self.update_ppr();
        self.start_timer(Some(restore_count), clk);
        Ok(LapicEffects {
            timer_changed: true,
            dest_changed: true,
            ..LapicEffects::default()
        })
    }
}
