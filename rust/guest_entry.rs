// SPDX-License-Identifier: GPL-2.0
//! The host side of entering a guest: the window with preemption and
//! interrupts off in which the vendor's world switch runs, and the
//! context-tracking, FPU, XCR0 and debug-register duties around it.

use super::bindings as rb;
use core::marker::PhantomData;

/// Preemption and local interrupts off (and the guest FPU state loaded in
/// the registers) until dropped. `!Send`: it must end on its CPU.
pub struct EntryWindow {
    cpu: u32,
    _not_send: PhantomData<*mut ()>,
}

impl EntryWindow {
    /// Opens the window on the current CPU.
    pub fn open() -> Self {
        // SAFETY: balanced in `Drop`; nothing in the window sleeps (the
        // window borrows nothing that could).
        let cpu = unsafe {
            rb::rkvm_preempt_disable();
            // A (guest) FPU reload if a context switch saved it.
            rb::rkvm_switch_fpu_return();
            rb::rkvm_local_irq_disable();
            rb::rkvm_smp_processor_id()
        };
        Self {
            cpu: cpu as u32,
            _not_send: PhantomData,
        }
    }

    /// The CPU, stable while the window is open.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// Runs `world_switch` as guest time: context tracking says "guest",
    /// XCR0 is `xcr0.0` inside (restored to `xcr0.1` after) when given,
    /// and the host's debug registers are restored afterwards (VMRUN and
    /// VM exits do not preserve them).
    pub fn run_guest<R>(&self, xcr0: Option<(u64, u64)>, world_switch: impl FnOnce(u32) -> R) -> R {
        if let Some((guest, _)) = xcr0 {
            // SAFETY: the caller validated `guest` against the host's
            // XCR0 (XSETBV/KVM_SET_XCRS rules); restored below.
            unsafe { rb::rkvm_xsetbv(0, guest) };
        }
        // SAFETY: interrupts are off, as context tracking requires.
        unsafe { rb::rkvm_guest_enter_irqoff() };
        let r = world_switch(self.cpu);
        // SAFETY: pairs with the enter above.
        unsafe { rb::rkvm_guest_exit_irqoff() };
        if let Some((_, host)) = xcr0 {
            // SAFETY: the host's own value.
            unsafe { rb::rkvm_xsetbv(0, host) };
        }
        // SAFETY: restores the host's debug registers, then time
        // accounting; still with interrupts off.
        unsafe {
            rb::rkvm_hw_breakpoint_restore();
            rb::rkvm_guest_timing_exit_irqoff();
        }
        r
    }
}

impl Drop for EntryWindow {
    fn drop(&mut self) {
        // SAFETY: undoes `open`, in reverse order; the pending host
        // interrupt (if any) is taken now.
        unsafe {
            rb::rkvm_local_irq_enable();
            rb::rkvm_preempt_enable();
        }
    }
}
