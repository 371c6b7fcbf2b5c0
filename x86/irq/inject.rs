// SPDX-License-Identifier: GPL-2.0
//! Getting interrupts and events into the guest before each entry, and the
//! vCPU's MP state (halted, waiting for INIT/SIPI), for both a userspace
//! irqchip (KVM_INTERRUPT) and the in-kernel LAPIC and PIC.

use crate::{
    defs::paging::PAGE_SHIFT,
    ext::{time::monotonic_ns, trace},
    virt::{
        halt_poll,
        kick::{Block, REQ_PIT, REQ_TIMER, REQ_TLB_FLUSH},
        run_page::RunPage,
        vcpu::Vcpu,
        vm::Vm,
    },
    x86::{
        events,
        guest_mem::VmMem,
        irq::{chips, lapic},
        vcpu::VcpuState,
        vendor::{InjectedEvent, Seg},
    },
};
use kernel::prelude::*;

/// What the run loop's posted requests ask of the interrupt side.
pub(crate) fn service_requests(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, reqs: u64) -> Result {
    if vcpu.lapic().is_none() {
        return Ok(());
    }
    if reqs & REQ_TIMER != 0 {
        lapic::service_timer(vcpu, st);
    }
    if vcpu.index() == 0 && reqs & REQ_PIT != 0 {
        chips::service_pit(vm, vcpu)?;
    }
    accept_apic_events(vcpu, st);
    Ok(())
}

/// INIT, SIPI and NMIs the LAPIC received (also on KVM_GET_MP_STATE, as
/// upstream, so userspace sees INIT_RECEIVED right after the INIT).
pub(crate) fn accept_apic_events(vcpu: &Vcpu, st: &mut VcpuState) {
    let Some(lapic) = vcpu.lapic() else { return };
    let ev = lapic.lock().take_events();
    if ev.init {
        st.hw.reset(true);
        lapic.lock().reset(true);
        st.reset_emulator();
        st.completion.cancel();
        st.events.init();
        st.mp_state.init(vcpu.is_bsp());
        lapic::arm_timer(vcpu, st);
    }
    if let Some(v) = ev.sipi {
        if st.mp_state.sipi() {
            // The AP starts at vector * 4 KiB in real mode.
            let mut cs = st.hw.segment(Seg::Cs);
            cs.selector = u16::from(v) << 8;
            cs.base = u64::from(v) << PAGE_SHIFT;
            st.hw.set_segment(Seg::Cs, &cs);
            st.hw.set_rip(0);
        }
    }
    st.events.add_nmis(ev.nmis);
}

/// Whether an interrupt is waiting in the in-kernel LAPIC, or as ExtINT
/// from the PIC (in-kernel, or userspace's with a split irqchip).
fn apic_interrupt_pending(vm: &Vm, vcpu: &Vcpu, st: &VcpuState) -> bool {
    let Some(lapic) = vcpu.lapic() else {
        return false;
    };
    let (pending, pic) = {
        let l = lapic.lock();
        (
            l.highest_injectable_vector().is_some(),
            l.accepts_pic_interrupts(),
        )
    };
    pending || (pic && (st.events.extint_pending() || vm.arch().irqchip().pic_output()))
}

/// Whether a halted vCPU has something to do (upstream's
/// kvm_vcpu_has_events()).
fn has_events(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> bool {
    st.events.exception().is_some()
        || st.events.nmi_pending()
        || ((st.hw.interrupt_allowed() || st.hw.guest_mode())
            && apic_interrupt_pending(vm, vcpu, st))
}

/// Nested virtualization: while L2 runs, an exception for L2 or an NMI
/// or interrupt pending for L1 that L1 intercepts leaves L2 first
/// (upstream's kvm_check_nested_events()); an NMI or interrupt then waits
/// for L1 to take it.
fn nested_check_events(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) {
    if !st.hw.guest_mode() {
        return;
    }
    let nmi = st.events.nmi_pending();
    let irq = apic_interrupt_pending(vm, vcpu, st) || st.events.irq().is_some();
    st.hw.nested_check_events(nmi, irq, &VmMem(vm));
}

/// Split irqchip: whether userspace may inject its PIC's next vector now
/// (upstream's kvm_vcpu_ready_for_interrupt_injection() with an in-kernel
/// LAPIC): the guest takes interrupts, none is waiting, LINT0 takes ExtINT.
pub(crate) fn split_ready_for_injection(vcpu: &Vcpu, st: &VcpuState) -> bool {
    st.hw.interrupt_allowed()
        && !st.events.extint_pending()
        && vcpu
            .lapic()
            .is_some_and(|l| l.lock().accepts_pic_interrupts())
}

/// Blocks a vCPU that cannot run (halted, or waiting for INIT/SIPI) until
/// it can. `Ok(false)`: a signal arrived (exit to userspace with EINTR).
/// A halted vCPU first polls for up to its halt-polling time
/// (`virt::halt_poll`), then sleeps; the halt_* statistics follow
/// upstream's kvm_vcpu_halt() and kvm_vcpu_block().
pub(crate) fn wait_until_runnable(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<bool> {
    let halted = st.mp_state.is_halted();
    let start = monotonic_ns();
    let limit = vm.halt_poll_limit();
    let mut poll_budget = if halted {
        st.halt_poll.budget_ns(limit)
    } else {
        0
    };
    let mut slept = false;
    let r = loop {
        let reqs = vcpu.kick().take_requests();
        if reqs & REQ_TLB_FLUSH != 0 {
            st.hw.flush_tlb();
        }
        service_requests(vm, vcpu, st, reqs)?;
        if st.mp_state.is_halted() && has_events(vm, vcpu, st) {
            st.mp_state.wake_from_halt();
        }
        if st.mp_state.is_runnable() {
            break Ok(true);
        }
        if poll_budget != 0 {
            let deadline = start.saturating_add(poll_budget);
            poll_budget = 0;
            let caught = halt_poll::poll(vcpu.kick(), deadline);
            record_poll(vcpu, monotonic_ns().saturating_sub(start), caught);
            if caught {
                continue;
            }
        }
        let b = block(vcpu);
        slept |= b != Block::NotNeeded;
        if b == Block::Signal {
            break Ok(false);
        }
    };
    if halted {
        let ns = monotonic_ns().saturating_sub(start);
        st.halt_poll.adjust(ns, limit);
        trace::kvm_vcpu_wakeup(ns, slept, st.mp_state.is_runnable());
    }
    r
}

/// Sleeps once ([`VcpuKick::block`]) and counts the wait.
fn block(vcpu: &Vcpu) -> Block {
    let stats = vcpu.stats();
    let start = monotonic_ns();
    stats.blocking.set(1);
    let b = vcpu.kick().block();
    stats.blocking.set(0);
    if b != Block::NotNeeded {
        let ns = monotonic_ns().saturating_sub(start);
        stats.halt_wait_ns.add(ns);
        stats.halt_wait_hist.record(ns);
    }
    if b == Block::Woken {
        stats.halt_wakeup.inc();
    }
    b
}

/// Counts one halt-polling attempt that lasted `ns`.
fn record_poll(vcpu: &Vcpu, ns: u64, success: bool) {
    let stats = vcpu.stats();
    stats.halt_attempted_poll.inc();
    if success {
        stats.halt_successful_poll.inc();
        stats.halt_poll_success_ns.add(ns);
        stats.halt_poll_success_hist.record(ns);
    } else {
        stats.halt_poll_fail_ns.add(ns);
        stats.halt_poll_fail_hist.record(ns);
    }
}

/// UNINITIALIZED at KVM_RUN: block once until something happens (INIT
/// arriving), take the events, and report whether no signal came.
pub(crate) fn wait_until_runnable_once(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<bool> {
    // Requests posted before (REQ_EVENT from KVM_SET_SREGS, KVM_SET_LAPIC,
    // ...) are served first and do not end the wait: only a wakeup after
    // them does, as upstream's kvm_vcpu_block() ignores requests that do
    // not make the vCPU runnable.
    let reqs = vcpu.kick().take_requests();
    service_requests(vm, vcpu, st, reqs)?;
    if !st.mp_state.is_uninitialized() {
        return Ok(true);
    }
    let signal = block(vcpu) == Block::Signal;
    let reqs = vcpu.kick().take_requests();
    service_requests(vm, vcpu, st, reqs)?;
    Ok(!signal)
}

/// Injects what is pending when the guest can take it, or asks for an
/// exit as soon as it can: NMIs, then interrupts from the in-kernel PIC or
/// LAPIC, or from KVM_INTERRUPT; also opens the interrupt window that
/// userspace requested.
pub(crate) fn inject_pending_events(vm: &Vm, vcpu: &Vcpu, run: &RunPage, st: &mut VcpuState) {
    // An event a #PF displaced goes first once the #PF is on its way.
    if st.events.has_displaced() {
        if st.hw.injected_event() == InjectedEvent::None {
            if let Some(e) = st.events.take_displaced() {
                st.hw.set_injected_event(e);
            }
        } else {
            st.hw.request_interrupt_window(true);
        }
    }
    // A pending exception (KVM_SET_VCPU_EVENTS) goes first, with its
    // payload delivered now.
    if st.hw.injected_event() == InjectedEvent::None {
        if let Some(mut e) = st.events.take_exception() {
            events::deliver_exception_payload(st, &mut e);
            st.inject_exception(e.vector, e.error_code);
        }
    }
    // In guest mode, that exception, or an NMI or interrupt for L1, may
    // be L1's #VMEXIT.
    nested_check_events(vm, vcpu, st);
    if st.events.nmi_pending() && st.hw.nmi_allowed() {
        vcpu.stats().nmi_injections.inc();
        st.hw.inject_nmi();
        st.events.take_nmi();
    }
    if let Some(lapic) = vcpu.lapic() {
        st.hw.set_v_tpr(lapic.lock().cr8() as u8);
        if st.hw.interrupt_allowed() {
            let from_pic = lapic.lock().accepts_pic_interrupts();
            let extint = || st.events.take_extint().or_else(|| chips::pic_intack(vm));
            let vector = match from_pic.then(extint).flatten() {
                Some(v) => Some(v),
                None => {
                    let mut l = lapic.lock();
                    let v = l.highest_injectable_vector();
                    if let Some(v) = v {
                        l.ack_interrupt(v);
                    }
                    v
                }
            };
            if let Some(v) = vector {
                vcpu.stats().irq_injections.inc();
                trace::kvm_inj_virq(v.into(), false, false);
                st.hw.inject_interrupt(v);
            }
        } else if apic_interrupt_pending(vm, vcpu, st) || run.request_interrupt_window() {
            // The latter: a split irqchip's userspace PIC waits for a window.
            st.hw.request_interrupt_window(true);
        }
        // While the highest request is masked by TPR, a CR8 write that
        // lowers it must exit, to be re-evaluated.
        let masked = {
            let l = lapic.lock();
            l.highest_irr().is_some() && l.highest_injectable_vector().is_none()
        };
        st.hw.set_cr8_write_intercept(masked);
        lapic::sync_to_vapic(vm, vcpu, st);
        return;
    }
    let mut want_window = run.request_interrupt_window();
    if let Some(v) = st.events.irq() {
        if st.hw.interrupt_allowed() {
            vcpu.stats().irq_injections.inc();
            trace::kvm_inj_virq(v.into(), false, false);
            st.hw.inject_interrupt(v);
            st.events.clear_irq();
        } else {
            want_window = true;
        }
    }
    if want_window && !st.hw.interrupt_allowed() {
        st.hw.request_interrupt_window(true);
    }
}

/// After an exit: the guest's CR8 (V_TPR) and VAPIC writes reach the
/// LAPIC's TPR.
pub(crate) fn after_exit(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) {
    if let Some(lapic) = vcpu.lapic() {
        let tpr = st.hw.v_tpr();
        let mut l = lapic.lock();
        if l.cr8() != u64::from(tpr) {
            l.set_cr8(u64::from(tpr));
        }
        drop(l);
        lapic::sync_from_vapic(vm, vcpu, st);
    }
}
