// SPDX-License-Identifier: GPL-2.0
//! A vCPU's multiprocessing state and the events waiting to be injected:
//! each is a type whose transitions are all defined here.

use crate::{ext::uapi, x86::vendor::InjectedEvent};
use kernel::prelude::*;

/// `KVM_MP_STATE_*`: whether the vCPU runs, is halted, or waits for
/// INIT/SIPI (only with an in-kernel LAPIC).
pub(crate) struct MpState(u32);

impl MpState {
    /// The state at creation: with an in-kernel LAPIC an AP waits for
    /// INIT/SIPI (upstream's UNINITIALIZED); everything else runs.
    pub(crate) fn at_creation(lapic_in_kernel: bool, bsp: bool) -> Self {
        Self(if lapic_in_kernel && !bsp {
            uapi::KVM_MP_STATE_UNINITIALIZED
        } else {
            uapi::KVM_MP_STATE_RUNNABLE
        })
    }

    /// The `KVM_MP_STATE_*` value (KVM_GET_MP_STATE).
    pub(crate) fn get(&self) -> u32 {
        self.0
    }

    /// Runnable.
    pub(crate) fn is_runnable(&self) -> bool {
        self.0 == uapi::KVM_MP_STATE_RUNNABLE
    }

    /// An AP that has not seen INIT yet.
    pub(crate) fn is_uninitialized(&self) -> bool {
        self.0 == uapi::KVM_MP_STATE_UNINITIALIZED
    }

    /// Halted in the kernel.
    pub(crate) fn is_halted(&self) -> bool {
        self.0 == uapi::KVM_MP_STATE_HALTED
    }

    /// HLT with an in-kernel LAPIC: the vCPU sleeps in the kernel.
    pub(crate) fn halt(&mut self) {
        self.0 = uapi::KVM_MP_STATE_HALTED;
    }

    /// A halted vCPU has an event to take: runnable again.
    pub(crate) fn wake_from_halt(&mut self) {
        if self.is_halted() {
            self.0 = uapi::KVM_MP_STATE_RUNNABLE;
        }
    }

    /// INIT: the BSP restarts, an AP waits for SIPI.
    pub(crate) fn init(&mut self, bsp: bool) {
        self.0 = if bsp {
            uapi::KVM_MP_STATE_RUNNABLE
        } else {
            uapi::KVM_MP_STATE_INIT_RECEIVED
        };
    }

    /// SIPI: an AP waiting for it starts. Returns whether it was waiting.
    pub(crate) fn sipi(&mut self) -> bool {
        let waiting = self.0 == uapi::KVM_MP_STATE_INIT_RECEIVED;
        if waiting {
            self.0 = uapi::KVM_MP_STATE_RUNNABLE;
        }
        waiting
    }

    /// KVM_SET_MP_STATE: without an in-kernel local APIC only RUNNABLE is
    /// valid, as upstream; SIPI_RECEIVED means INIT_RECEIVED plus a pending
    /// SIPI there, which we treat as INIT_RECEIVED.
    pub(crate) fn set_from_user(&mut self, v: u32, lapic_in_kernel: bool) -> Result {
        self.0 = match v {
            uapi::KVM_MP_STATE_RUNNABLE => v,
            uapi::KVM_MP_STATE_UNINITIALIZED
            | uapi::KVM_MP_STATE_HALTED
            | uapi::KVM_MP_STATE_AP_RESET_HOLD
            | uapi::KVM_MP_STATE_INIT_RECEIVED
            | uapi::KVM_MP_STATE_SIPI_RECEIVED => {
                if !lapic_in_kernel {
                    return Err(EINVAL);
                }
                if v == uapi::KVM_MP_STATE_SIPI_RECEIVED {
                    uapi::KVM_MP_STATE_INIT_RECEIVED
                } else {
                    v
                }
            }
            _ => return Err(EINVAL),
        };
        Ok(())
    }
}

/// An exception waiting to be injected (KVM_SET_VCPU_EVENTS with
/// `exception.pending`): its payload (#PF: CR2, #DB: DR6 bits) reaches
/// the guest only when it is injected (KVM_CAP_EXCEPTION_PAYLOAD).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QueuedException {
    /// Vector (0-31, not NMI).
    pub(crate) vector: u8,
    /// Error code, if it has one.
    pub(crate) error_code: Option<u32>,
    /// The payload, if it has one.
    pub(crate) payload: Option<u64>,
}

/// Interrupts and NMIs waiting to be injected, and what a split irqchip
/// must tell userspace.
#[derive(Default)]
pub(crate) struct PendingEvents {
    /// An exception userspace made pending, until injected.
    exception: Option<QueuedException>,
    /// KVM_SET_VCPU_EVENTS' `triple_fault.pending`
    /// (KVM_CAP_X86_TRIPLE_FAULT_EVENT): the next KVM_RUN shuts down.
    triple_fault: bool,
    /// KVM_INTERRUPT's vector (userspace irqchip), until injected.
    irq: Option<u8>,
    /// KVM_NMI and LAPIC NMIs, until injected.
    nmis: u32,
    /// Split irqchip: the userspace PIC's vector (KVM_INTERRUPT), taken
    /// when the LAPIC accepts ExtINT and the guest takes interrupts.
    extint: Option<u8>,
    /// Split irqchip: an EOI to report with KVM_EXIT_IOAPIC_EOI.
    eoi_exit: Option<u8>,
    /// An interrupt or NMI whose delivery a page fault of the guest's
    /// interrupted: injected again once the #PF is delivered.
    displaced: Option<InjectedEvent>,
}

impl PendingEvents {
    /// The pending exception, if any.
    pub(crate) fn exception(&self) -> Option<QueuedException> {
        self.exception
    }

    /// Makes `e` the pending exception (or none).
    pub(crate) fn set_exception(&mut self, e: Option<QueuedException>) {
        self.exception = e;
    }

    /// Takes the pending exception for injection.
    pub(crate) fn take_exception(&mut self) -> Option<QueuedException> {
        self.exception.take()
    }

    /// Whether a triple fault is pending.
    pub(crate) fn triple_fault(&self) -> bool {
        self.triple_fault
    }

    /// Sets or clears the pending triple fault.
    pub(crate) fn set_triple_fault(&mut self, pending: bool) {
        self.triple_fault = pending;
    }

    /// KVM_INTERRUPT without an in-kernel irqchip: replaces the vector.
    pub(crate) fn queue_irq(&mut self, vector: u8) {
        self.irq = Some(vector);
    }

    /// The KVM_INTERRUPT vector waiting, if any.
    pub(crate) fn irq(&self) -> Option<u8> {
        self.irq
    }

    /// The KVM_INTERRUPT vector was injected (or replaced by
    /// KVM_SET_VCPU_EVENTS).
    pub(crate) fn clear_irq(&mut self) {
        self.irq = None;
    }

    /// Adds NMIs (KVM_NMI, LAPIC deliveries); they do not queue up
    /// without bound.
    pub(crate) fn add_nmis(&mut self, n: u32) {
        self.nmis = self.nmis.saturating_add(n);
    }

    /// Whether an NMI waits.
    pub(crate) fn nmi_pending(&self) -> bool {
        self.nmis != 0
    }

    /// Takes one NMI for injection.
    pub(crate) fn take_nmi(&mut self) -> bool {
        let had = self.nmis != 0;
        self.nmis = self.nmis.saturating_sub(1);
        had
    }

    /// KVM_SET_VCPU_EVENTS' `nmi.pending`.
    pub(crate) fn set_nmi_pending(&mut self, pending: bool) {
        self.nmis = u32::from(pending);
    }

    /// Split irqchip KVM_INTERRUPT: `EEXIST` while one waits.
    pub(crate) fn queue_extint(&mut self, vector: u8) -> Result {
        if self.extint.is_some() {
            return Err(EEXIST);
        }
        self.extint = Some(vector);
        Ok(())
    }

    /// Whether the userspace PIC's vector waits.
    pub(crate) fn extint_pending(&self) -> bool {
        self.extint.is_some()
    }

    /// Takes the userspace PIC's vector (INTA).
    pub(crate) fn take_extint(&mut self) -> Option<u8> {
        self.extint.take()
    }

    /// Split irqchip: the guest EOI'd `vector`, which the userspace IOAPIC
    /// must hear of.
    pub(crate) fn report_eoi(&mut self, vector: u8) {
        self.eoi_exit = Some(vector);
    }

    /// The EOI to report, if any.
    pub(crate) fn take_eoi_exit(&mut self) -> Option<u8> {
        self.eoi_exit.take()
    }

    /// INIT: pending NMIs, exceptions and triple faults are dropped.
    pub(crate) fn init(&mut self) {
        self.nmis = 0;
        self.displaced = None;
        self.exception = None;
        self.triple_fault = false;
    }

    /// An event being delivered gives way to an exception (shadow
    /// paging's #PF): it is injected again afterwards.
    pub(crate) fn displace(&mut self, e: InjectedEvent) {
        self.displaced = Some(e);
    }

    /// The displaced event, if any.
    pub(crate) fn take_displaced(&mut self) -> Option<InjectedEvent> {
        self.displaced.take()
    }

    /// Whether an event waits to be injected again.
    pub(crate) fn has_displaced(&self) -> bool {
        self.displaced.is_some()
    }
}
