// SPDX-License-Identifier: GPL-2.0
//! vCPU event state and debugging: KVM_GET/SET_VCPU_EVENTS,
//! KVM_GET/SET_MP_STATE, KVM_SET_GUEST_DEBUG, KVM_TRANSLATE.

use crate::{
    defs::{
        regs::{
            DR6_ACTIVE_LOW, DR6_FIXED_1, DR6_RESERVED_BIT12, DR6_RTM, DR_TRAP_BITS, X86_EFLAGS_TF,
        },
        vector::{DB_VECTOR, NMI_VECTOR, NR_EXCEPTION_VECTORS, PF_VECTOR},
    },
    emulate::paging,
    ext::{
        uaccess::{read_arg, write_arg},
        uapi,
    },
    virt::{kick::REQ_EVENT, vcpu::Vcpu, vm::Vm},
    x86::{
        emulator_ops::{paging_config, Mem},
        irq::inject,
        run::vector,
        vcpu::VcpuState,
        vcpu_events::QueuedException,
        vendor::{InjectedEvent, InterruptShadow, Seg},
    },
};
use kernel::prelude::*;

/// Debug state set by KVM_SET_GUEST_DEBUG.
#[derive(Default)]
pub(crate) struct GuestDebug {
    /// `KVM_GUESTDBG_*` control bits (0 when not enabled).
    pub(crate) control: u32,
}

impl GuestDebug {
    /// Single-stepping (RFLAGS.TF is ours, hidden from the guest's view).
    pub(crate) fn singlestep(&self) -> bool {
        self.control & uapi::KVM_GUESTDBG_SINGLESTEP != 0
    }
    /// INT3 exits to userspace.
    pub(crate) fn sw_bp(&self) -> bool {
        self.control & uapi::KVM_GUESTDBG_USE_SW_BP != 0
    }
    /// Hardware breakpoints are userspace's.
    pub(crate) fn hw_bp(&self) -> bool {
        self.control & uapi::KVM_GUESTDBG_USE_HW_BP != 0
    }
}

/// RFLAGS as userspace and the guest see it (without our TF).
pub(crate) fn guest_rflags(st: &VcpuState) -> u64 {
    let r = st.hw.rflags();
    if st.debug.singlestep() {
        r & !X86_EFLAGS_TF
    } else {
        r
    }
}

/// Sets the guest's RFLAGS, keeping our TF while single-stepping.
pub(crate) fn set_guest_rflags(st: &mut VcpuState, r: u64) {
    let r = if st.debug.singlestep() {
        r | X86_EFLAGS_TF
    } else {
        r
    };
    st.hw.set_rflags(r);
}

/// KVM_SET_GUEST_DEBUG.
pub(crate) fn set_guest_debug(st: &mut VcpuState, arg: usize) -> Result {
    let d: uapi::kvm_guest_debug = read_arg(arg)?;
    if d.control & (uapi::KVM_GUESTDBG_INJECT_DB | uapi::KVM_GUESTDBG_INJECT_BP) != 0 {
        if st.hw.injected_event() != InjectedEvent::None {
            return Err(EBUSY);
        }
        let v = if d.control & uapi::KVM_GUESTDBG_INJECT_DB != 0 {
            vector::DB
        } else {
            vector::BP
        };
        st.inject_exception(v, None);
    }
    let rflags = guest_rflags(st);
    st.debug.control = if d.control & uapi::KVM_GUESTDBG_ENABLE != 0 {
        d.control
    } else {
        0
    };
    set_guest_rflags(st, rflags);
    let db = st.debug.singlestep() || st.debug.hw_bp();
    st.hw.set_exception_intercept(vector::DB, db);
    st.hw.set_exception_intercept(vector::BP, st.debug.sw_bp());
    Ok(())
}

/// The linear address of RIP.
pub(crate) fn linear_rip(st: &VcpuState) -> u64 {
    st.hw.segment(Seg::Cs).base.wrapping_add(st.hw.rip())
}

/// Delivers the payload of exception `e` (upstream's
/// kvm_deliver_exception_payload()): #PF sets CR2; #DB sets DR6's trap
/// bits from it (its active-low bits clear DR6 bits, bit 12 is reserved).
pub(crate) fn deliver_exception_payload(st: &mut VcpuState, e: &mut QueuedException) {
    let Some(payload) = e.payload.take() else {
        return;
    };
    match e.vector {
        DB_VECTOR => {
            let mut dr6 = st.hw.dr(6);
            dr6 &= !DR_TRAP_BITS;
            dr6 |= DR6_RTM;
            dr6 &= !(payload & DR6_ACTIVE_LOW);
            dr6 |= payload & !DR6_ACTIVE_LOW;
            dr6 &= !DR6_RESERVED_BIT12;
            st.hw.set_dr(6, dr6 | DR6_FIXED_1);
        }
        PF_VECTOR => st.hw.set_cr2(payload),
        _ => {}
    }
}

/// Without KVM_CAP_EXCEPTION_PAYLOAD, userspace cannot carry a pending
/// exception's payload across save and restore: deliver it now
/// (upstream's kvm_handle_exception_payload_quirk()).
fn payload_quirk(vm: &Vm, st: &mut VcpuState) {
    if vm.arch().exception_payload() {
        return;
    }
    if let Some(mut e) = st.events.exception() {
        deliver_exception_payload(st, &mut e);
        st.events.set_exception(Some(e));
    }
}

/// KVM_GET_VCPU_EVENTS.
pub(crate) fn get_vcpu_events(vm: &Vm, st: &mut VcpuState, arg: usize) -> Result {
    write_arg(arg, &vcpu_events(vm, st))
}

/// What KVM_GET_VCPU_EVENTS (and kvm_run's sync registers) report.
pub(crate) fn vcpu_events(vm: &Vm, st: &mut VcpuState) -> uapi::kvm_vcpu_events {
    payload_quirk(vm, st);
    let payload_enabled = vm.arch().exception_payload();
    let mut e = uapi::kvm_vcpu_events::default();
    match st.hw.injected_event() {
        InjectedEvent::Exception { vector, error_code } => {
            e.exception.injected = 1;
            e.exception.nr = vector;
            e.exception.has_error_code = u8::from(error_code.is_some());
            e.exception.error_code = error_code.unwrap_or(0);
        }
        InjectedEvent::Interrupt { vector, soft } => {
            e.interrupt.injected = u8::from(!soft);
            e.interrupt.nr = vector;
            e.interrupt.soft = u8::from(soft);
        }
        InjectedEvent::Nmi => e.nmi.injected = 1,
        InjectedEvent::None => {}
    }
    if let Some(x) = st.events.exception() {
        // Pending and injected conflated without the capability (ABI).
        e.exception.pending = u8::from(payload_enabled);
        e.exception.injected = u8::from(!payload_enabled);
        e.exception.nr = x.vector;
        e.exception.has_error_code = u8::from(x.error_code.is_some());
        e.exception.error_code = x.error_code.unwrap_or(0);
        e.exception_has_payload = u8::from(x.payload.is_some());
        e.exception_payload = x.payload.unwrap_or(0);
    }
    if let Some(v) = st.events.irq() {
        e.interrupt.injected = 1;
        e.interrupt.nr = v;
    }
    e.interrupt.shadow = st.hw.interrupt_shadow();
    e.nmi.pending = u8::from(st.events.nmi_pending());
    e.nmi.masked = u8::from(st.hw.nmi_masked());
    e.flags = uapi::KVM_VCPUEVENT_VALID_NMI_PENDING
        | uapi::KVM_VCPUEVENT_VALID_SHADOW
        | uapi::KVM_VCPUEVENT_VALID_SMM;
    if payload_enabled {
        e.flags |= uapi::KVM_VCPUEVENT_VALID_PAYLOAD;
    }
    if vm.arch().triple_fault_event() {
        e.triple_fault.pending = u8::from(st.events.triple_fault());
        e.flags |= uapi::KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    }
    e
}

/// KVM_SET_VCPU_EVENTS.
pub(crate) fn set_vcpu_events(vm: &Vm, st: &mut VcpuState, arg: usize) -> Result {
    set_vcpu_events_from(vm, st, read_arg(arg)?)
}

/// Loads `e` (KVM_SET_VCPU_EVENTS, kvm_run's sync registers); everything
/// is checked before anything changes.
pub(crate) fn set_vcpu_events_from(
    vm: &Vm,
    st: &mut VcpuState,
    mut e: uapi::kvm_vcpu_events,
) -> Result {
    let valid = uapi::KVM_VCPUEVENT_VALID_NMI_PENDING
        | uapi::KVM_VCPUEVENT_VALID_SIPI_VECTOR
        | uapi::KVM_VCPUEVENT_VALID_SHADOW
        | uapi::KVM_VCPUEVENT_VALID_SMM
        | uapi::KVM_VCPUEVENT_VALID_PAYLOAD
        | uapi::KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    if e.flags & !valid != 0 {
        return Err(EINVAL);
    }
    if e.flags & uapi::KVM_VCPUEVENT_VALID_PAYLOAD != 0 {
        if !vm.arch().exception_payload() {
            return Err(EINVAL);
        }
        if e.exception.pending != 0 {
            e.exception.injected = 0;
        } else {
            e.exception_has_payload = 0;
        }
    } else {
        e.exception.pending = 0;
        e.exception_has_payload = 0;
    }
    if (e.exception.injected != 0 || e.exception.pending != 0)
        && (e.exception.nr >= NR_EXCEPTION_VECTORS || e.exception.nr == NMI_VECTOR)
    {
        return Err(EINVAL);
    }
    // No SMM here.
    if e.flags & uapi::KVM_VCPUEVENT_VALID_SMM != 0
        && (e.smi.smm != 0 || e.smi.pending != 0 || e.smi.smm_inside_nmi != 0)
    {
        return Err(EINVAL);
    }
    let triple_fault = e.flags & uapi::KVM_VCPUEVENT_VALID_TRIPLE_FAULT != 0;
    if triple_fault && !vm.arch().triple_fault_event() {
        return Err(EINVAL);
    }
    let error_code = (e.exception.has_error_code != 0).then_some(e.exception.error_code);
    let ev = if e.exception.injected != 0 {
        InjectedEvent::Exception {
            vector: e.exception.nr,
            error_code,
        }
    } else if e.nmi.injected != 0 {
        InjectedEvent::Nmi
    } else if e.interrupt.injected != 0 || e.interrupt.soft != 0 {
        InjectedEvent::Interrupt {
            vector: e.interrupt.nr,
            soft: e.interrupt.soft != 0,
        }
    } else {
        InjectedEvent::None
    };
    st.events
        .set_exception((e.exception.pending != 0).then_some(QueuedException {
            vector: e.exception.nr,
            error_code,
            payload: (e.exception_has_payload != 0).then_some(e.exception_payload),
        }));
    st.events.clear_irq();
    st.hw.set_injected_event(ev);
    if e.flags & uapi::KVM_VCPUEVENT_VALID_SHADOW != 0 {
        if e.interrupt.shadow != 0 {
            st.hw.set_interrupt_shadow(InterruptShadow::Sti);
        } else {
            st.hw.clear_interrupt_shadow();
        }
    }
    if e.flags & uapi::KVM_VCPUEVENT_VALID_NMI_PENDING != 0 {
        st.events.set_nmi_pending(e.nmi.pending != 0);
    }
    st.hw.set_nmi_masked(e.nmi.masked != 0);
    if triple_fault {
        st.events.set_triple_fault(e.triple_fault.pending != 0);
    }
    Ok(())
}

/// KVM_GET_MP_STATE: pending INIT/SIPI are taken first, as upstream.
pub(crate) fn get_mp_state(vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    inject::accept_apic_events(vcpu, st);
    write_arg(
        arg,
        &uapi::kvm_mp_state {
            mp_state: st.mp_state.get(),
        },
    )
}

/// KVM_SET_MP_STATE (the rules are `MpState::set_from_user`'s).
pub(crate) fn set_mp_state(vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let s: uapi::kvm_mp_state = read_arg(arg)?;
    st.mp_state
        .set_from_user(s.mp_state, vcpu.lapic().is_some())?;
    vcpu.kick().make_request(REQ_EVENT);
    Ok(())
}

/// KVM_TRANSLATE: walks the guest's page tables like the CPU would for a
/// supervisor access (setting accessed bits, as upstream).
pub(crate) fn translate(vm: &Vm, st: &mut VcpuState, arg: usize) -> Result {
    let mut t: uapi::kvm_translation = read_arg(arg)?;
    let cfg = paging_config(st);
    let mut mem = Mem::new(vm);
    let acc = paging::Access {
        implicit: true,
        ..Default::default()
    };
    let r = paging::translate(&mut mem, &cfg, t.linear_address, acc);
    match r {
        Ok(tr) => {
            t.physical_address = tr.gpa;
            // Upstream reports validity as "gpa != INVALID_GPA" (all ones).
            t.valid = u8::from(tr.gpa != u64::MAX);
        }
        Err(_) => {
            t.physical_address = u64::MAX;
            t.valid = 0;
        }
    }
    t.writeable = 1;
    t.usermode = 0;
    write_arg(arg, &t)
}
