// SPDX-License-Identifier: GPL-2.0
//! vCPU event state and debugging: KVM_GET/SET_VCPU_EVENTS,
//! KVM_GET/SET_MP_STATE, KVM_SET_GUEST_DEBUG, KVM_TRANSLATE,
//! KVM_SET_SIGNAL_MASK.

use crate::{
    x86::vendor::{InjectedEvent, Seg},
    emulate::paging,
    x86::emulator_ops::{paging_config, Mem},
    ext::uapi,
    x86::run::vector,
    virt::vcpu::VcpuState,
    virt::vm::{read_arg, write_arg, Vm},
};
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// RFLAGS.TF.
pub(crate) const X86_EFLAGS_TF: u64 = 1 << 8;
/// NMI vector (never valid as an exception number).
const NMI_VECTOR: u8 = 2;

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
    let r = st.arch.rflags();
    if st.debug.singlestep() {
        r & !X86_EFLAGS_TF
    } else {
        r
    }
}

/// Sets the guest's RFLAGS, keeping our TF while single-stepping.
pub(crate) fn set_guest_rflags(st: &mut VcpuState, r: u64) {
    let r = if st.debug.singlestep() { r | X86_EFLAGS_TF } else { r };
    st.arch.set_rflags(r);
}

/// KVM_SET_GUEST_DEBUG.
pub(crate) fn set_guest_debug(st: &mut VcpuState, arg: usize) -> Result {
    let d: uapi::kvm_guest_debug = read_arg(arg)?;
    if d.control & (uapi::KVM_GUESTDBG_INJECT_DB | uapi::KVM_GUESTDBG_INJECT_BP) != 0 {
        if st.arch.injected_event() != InjectedEvent::None {
            return Err(EBUSY);
        }
        let v = if d.control & uapi::KVM_GUESTDBG_INJECT_DB != 0 { vector::DB } else { vector::BP };
        st.arch.inject_exception(v, None);
    }
    let rflags = guest_rflags(st);
    st.debug.control = if d.control & uapi::KVM_GUESTDBG_ENABLE != 0 { d.control } else { 0 };
    set_guest_rflags(st, rflags);
    let db = st.debug.singlestep() || st.debug.hw_bp();
    st.arch.set_exception_intercept(vector::DB, db);
    st.arch.set_exception_intercept(vector::BP, st.debug.sw_bp());
    Ok(())
}

/// The linear address of RIP.
pub(crate) fn linear_rip(st: &VcpuState) -> u64 {
    st.arch.segment(Seg::Cs).base.wrapping_add(st.arch.rip())
}

/// KVM_GET_VCPU_EVENTS.
pub(crate) fn get_events(st: &mut VcpuState, arg: usize) -> Result {
    let mut e = uapi::kvm_vcpu_events::default();
    match st.arch.injected_event() {
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
    if let Some(v) = st.irq_pending {
        e.interrupt.injected = 1;
        e.interrupt.nr = v;
    }
    // SVM has one shadow bit; report it as both kinds, like upstream.
    if st.arch.interrupt_shadow() {
        e.interrupt.shadow = (uapi::KVM_X86_SHADOW_INT_MOV_SS | uapi::KVM_X86_SHADOW_INT_STI) as u8;
    }
    e.nmi.pending = u8::from(st.nmi_pending != 0);
    e.nmi.masked = u8::from(st.arch.nmi_masked());
    e.flags = uapi::KVM_VCPUEVENT_VALID_NMI_PENDING | uapi::KVM_VCPUEVENT_VALID_SHADOW | uapi::KVM_VCPUEVENT_VALID_SMM;
    write_arg(arg, &e)
}

/// KVM_SET_VCPU_EVENTS.
pub(crate) fn set_events(st: &mut VcpuState, arg: usize) -> Result {
    let e: uapi::kvm_vcpu_events = read_arg(arg)?;
    let valid = uapi::KVM_VCPUEVENT_VALID_NMI_PENDING
        | uapi::KVM_VCPUEVENT_VALID_SIPI_VECTOR
        | uapi::KVM_VCPUEVENT_VALID_SHADOW
        | uapi::KVM_VCPUEVENT_VALID_SMM
        | uapi::KVM_VCPUEVENT_VALID_PAYLOAD
        | uapi::KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    if e.flags & !valid != 0 {
        return Err(EINVAL);
    }
    // No exception payloads, triple-fault events or SMM here.
    if e.flags & (uapi::KVM_VCPUEVENT_VALID_PAYLOAD | uapi::KVM_VCPUEVENT_VALID_TRIPLE_FAULT) != 0 {
        return Err(EINVAL);
    }
    if e.flags & uapi::KVM_VCPUEVENT_VALID_SMM != 0 && (e.smi.smm != 0 || e.smi.pending != 0) {
        return Err(EINVAL);
    }
    if e.exception.injected != 0 && (e.exception.nr > 31 || e.exception.nr == NMI_VECTOR) {
        return Err(EINVAL);
    }
    let ev = if e.exception.injected != 0 {
        InjectedEvent::Exception {
            vector: e.exception.nr,
            error_code: (e.exception.has_error_code != 0).then_some(e.exception.error_code),
        }
    } else if e.nmi.injected != 0 {
        InjectedEvent::Nmi
    } else if e.interrupt.injected != 0 || e.interrupt.soft != 0 {
        InjectedEvent::Interrupt { vector: e.interrupt.nr, soft: e.interrupt.soft != 0 }
    } else {
        InjectedEvent::None
    };
    st.irq_pending = None;
    st.arch.set_injected_event(ev);
    if e.flags & uapi::KVM_VCPUEVENT_VALID_SHADOW != 0 {
        if e.interrupt.shadow != 0 {
            st.arch.set_interrupt_shadow(crate::x86::vendor::InterruptShadow::Sti);
        } else {
            st.arch.clear_interrupt_shadow();
        }
    }
    if e.flags & uapi::KVM_VCPUEVENT_VALID_NMI_PENDING != 0 {
        st.nmi_pending = u32::from(e.nmi.pending != 0);
    }
    st.arch.set_nmi_masked(e.nmi.masked != 0);
    Ok(())
}

/// KVM_GET_MP_STATE.
pub(crate) fn get_mp_state(vcpu: &crate::virt::vcpu::Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    crate::x86::irq::inject::accept_apic_events(vcpu, st);
    write_arg(arg, &uapi::kvm_mp_state { mp_state: st.mp_state })
}

/// KVM_SET_MP_STATE: without an in-kernel local APIC only RUNNABLE is
/// valid, as upstream; SIPI_RECEIVED means INIT_RECEIVED plus a pending
/// SIPI there, which we treat as INIT_RECEIVED.
pub(crate) fn set_mp_state(vcpu: &crate::virt::vcpu::Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let s: uapi::kvm_mp_state = read_arg(arg)?;
    match s.mp_state {
        uapi::KVM_MP_STATE_RUNNABLE => st.mp_state = s.mp_state,
        uapi::KVM_MP_STATE_UNINITIALIZED
        | uapi::KVM_MP_STATE_HALTED
        | uapi::KVM_MP_STATE_AP_RESET_HOLD
        | uapi::KVM_MP_STATE_INIT_RECEIVED
        | uapi::KVM_MP_STATE_SIPI_RECEIVED => {
            if vcpu.apic.is_none() {
                return Err(EINVAL);
            }
            st.mp_state = if s.mp_state == uapi::KVM_MP_STATE_SIPI_RECEIVED {
                uapi::KVM_MP_STATE_INIT_RECEIVED
            } else {
                s.mp_state
            };
        }
        _ => return Err(EINVAL),
    }
    vcpu.kick.make_request(crate::virt::kick::REQ_EVENT);
    Ok(())
}

/// KVM_TRANSLATE: walks the guest's page tables like the CPU would for a
/// supervisor access (setting accessed bits, as upstream).
pub(crate) fn translate(vm: &Vm, st: &mut VcpuState, arg: usize) -> Result {
    let mut t: uapi::kvm_translation = read_arg(arg)?;
    let cfg = paging_config(st);
    let mut mem = Mem::new(vm);
    let acc = paging::Access { implicit: true, ..Default::default() };
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

/// SIGKILL and SIGSTOP cannot be blocked (bits of signals 9 and 19).
const UNBLOCKABLE: u64 = (1 << 8) | (1 << 18);

/// KVM_SET_SIGNAL_MASK: `None` (NULL argument) removes the mask.
pub(crate) fn set_signal_mask(st: &mut VcpuState, arg: usize) -> Result {
    if arg == 0 {
        st.sigmask = None;
        return Ok(());
    }
    let m: uapi::kvm_signal_mask = read_arg(arg)?;
    if m.len != 8 {
        return Err(EINVAL);
    }
    let mut b = [0u8; 8];
    UserSlice::new(UserPtr::from_addr(arg + 4), 8).reader().read_slice(&mut b)?;
    st.sigmask = Some(u64::from_ne_bytes(b) & !UNBLOCKABLE);
    Ok(())
}
