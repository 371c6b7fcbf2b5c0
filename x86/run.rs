// SPDX-License-Identifier: GPL-2.0
//! KVM_RUN: the loop that enters the guest, and the exits every vendor
//! shares (port I/O, MMIO, HLT, CPUID, MSRs, hypercalls, XSETBV, ...).
//!
//! One iteration: handle posted requests; disable preemption and
//! interrupts; publish IN_GUEST_MODE and re-check requests, signals and
//! need_resched (a kick after this point becomes a VM exit); enter; enable
//! interrupts (taking the host interrupt that caused an INTR exit); handle
//! the exit. All per-CPU host state the vendor touches is saved and
//! restored inside the interrupts-off window, so a vCPU thread may migrate
//! between iterations freely; the guest FPU state is switched once per
//! KVM_RUN by the kernel's FPU core, which handles preemption itself.

use crate::{
    x86::vendor::{gpr, IoExit, VmExit},
    x86::cpuid, x86::emulator_ops,
    ext::{bindings as rb, uapi},
    x86::msrs,
    x86::irq::inject,
    virt::kick::{IN_GUEST_MODE, OUTSIDE_GUEST_MODE, REQ_TLB_FLUSH},
    virt::vcpu::{Vcpu, VcpuState},
    virt::vm::Vm,
};
use core::sync::atomic::{fence, Ordering};
use kernel::prelude::*;

/// Exception vectors the core injects.
pub(crate) mod vector {
    /// #DB.
    pub(crate) const DB: u8 = 1;
    /// #BP.
    pub(crate) const BP: u8 = 3;
    /// #GP.
    pub(crate) const GP: u8 = 13;
}

/// An exit to userspace the next KVM_RUN must complete.
pub(crate) enum Pending {
    /// Nothing to complete.
    None,
    /// IN: merge the PIO data page into RAX, then continue at `next_rip`.
    PioIn { size: u8, next_rip: u64 },
    /// The emulator waits for userspace (MMIO, string I/O).
    Emulator(emulator_ops::Waiting),
    /// KVM_EXIT_HYPERCALL: RAX := `run.hypercall.ret`, then skip VMMCALL.
    Hypercall { long_mode: bool },
}

/// What an exit handler wants next.
pub(crate) enum Next {
    /// Enter the guest again.
    Guest,
    /// Return to userspace (kvm_run is filled in).
    User,
}

/// The KVM_RUN ioctl.
pub(crate) fn run(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result {
    let run = &vcpu.run;
    if let Some(mask) = st.sigmask {
        // SAFETY: applies to the current task; undone below.
        unsafe { rb::rkvm_sigset_activate(mask) };
    }
    // An AP that waits for INIT/SIPI: block, then let userspace retry
    // (EAGAIN), as upstream.
    if st.mp_state == uapi::KVM_MP_STATE_UNINITIALIZED {
        let r = match inject::wait_until_runnable_once(vm, vcpu, st) {
            Ok(true) => Err(EAGAIN),
            Ok(false) => {
                run.set_exit_reason(uapi::KVM_EXIT_INTR);
                Err(EINTR)
            }
            Err(e) => Err(e),
        };
        if st.sigmask.is_some() {
            // SAFETY: undoes the activation above.
            unsafe { rb::rkvm_sigset_deactivate() };
        }
        return r;
    }
    // The emulator may touch XMM registers: guest FPU state first.
    st.fpu.load();
    let r = match complete_userspace(vm, vcpu, st) {
        // The completion itself needs userspace again (e.g. the next
        // element of a REP MOVS to MMIO).
        Ok(Next::User) => Ok(()),
        Ok(Next::Guest) if run.immediate_exit() => {
            run.set_exit_reason(uapi::KVM_EXIT_INTR);
            Err(EINTR)
        }
        Ok(Next::Guest) => run_loop(vm, vcpu, st),
        Err(e) => Err(e),
    };
    st.fpu.put();
    if st.sigmask.is_some() {
        // SAFETY: undoes the activation above.
        unsafe { rb::rkvm_sigset_deactivate() };
    }
    report_common(vm, vcpu, st);
    r
}

fn run_loop(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result {
    let run = &vcpu.run;
    loop {
        if kernel::current!().signal_pending() {
            run.set_exit_reason(uapi::KVM_EXIT_INTR);
            return Err(EINTR);
        }
        // SAFETY: a scheduling point with no locks but the vCPU mutex.
        unsafe { rb::rkvm_cond_resched() };

        if st.mp_state != uapi::KVM_MP_STATE_RUNNABLE {
            if !inject::wait_until_runnable(vm, vcpu, st)? {
                run.set_exit_reason(uapi::KVM_EXIT_INTR);
                return Err(EINTR);
            }
            continue;
        }
        let reqs = vcpu.kick.take_requests();
        if reqs & REQ_TLB_FLUSH != 0 {
            st.arch.flush_tlb();
        }
        inject::service_requests(vm, vcpu, st, reqs)?;
        if let Some((rip, write)) = st.tpr_report.take() {
            run.set_exit_reason(uapi::KVM_EXIT_TPR_ACCESS);
            run.set_tpr_access(rip, write);
            return Ok(());
        }
        if let Some(vector) = st.eoi_exit.take() {
            run.set_exit_reason(uapi::KVM_EXIT_IOAPIC_EOI);
            run.set_eoi_vector(vector);
            return Ok(());
        }
        if st.mp_state != uapi::KVM_MP_STATE_RUNNABLE {
            continue;
        }
        crate::x86::kvmclock::update(vm, st);
        inject::inject_pending_events(vm, vcpu, run, st);

        // SAFETY: balanced below; nothing in between sleeps.
        unsafe { rb::rkvm_preempt_disable() };
        // SAFETY: preemption is disabled, so the CPU id is stable.
        let cpu = unsafe { rb::rkvm_smp_processor_id() };
        // SAFETY: a (guest) FPU reload if a context switch saved it.
        unsafe { rb::rkvm_switch_fpu_return() };
        // SAFETY: balanced below.
        unsafe { rb::rkvm_local_irq_disable() };

        vcpu.kick.cpu.store(cpu, Ordering::SeqCst);
        vcpu.kick.mode.store(IN_GUEST_MODE, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // SAFETY: plain reads of the current task's flags.
        let must_exit = vcpu.kick.requests.load(Ordering::SeqCst) != 0
            || unsafe { rb::rkvm_need_resched() }
            || kernel::current!().signal_pending();
        if must_exit {
            vcpu.kick.mode.store(OUTSIDE_GUEST_MODE, Ordering::SeqCst);
            // SAFETY: undo the above, in reverse order.
            unsafe {
                rb::rkvm_local_irq_enable();
                rb::rkvm_preempt_enable();
            }
            continue;
        }

        let guest_xcr0 = st.xcr0;
        let host_xcr0 = msrs::host_xcr0();
        let swap_xcr0 = st.arch.cr4() & msrs::X86_CR4_OSXSAVE != 0 && guest_xcr0 != host_xcr0;
        if swap_xcr0 {
            // SAFETY: guest_xcr0 was validated by XSETBV/KVM_SET_XCRS.
            unsafe { rb::rkvm_xsetbv(0, guest_xcr0) };
        }
        // SAFETY: interrupts are off, as context tracking requires.
        unsafe { rb::rkvm_guest_enter_irqoff() };
        let exit = st.arch.run(cpu as u32);
        // SAFETY: pairs with the enter above.
        unsafe { rb::rkvm_guest_exit_irqoff() };
        vcpu.kick.mode.store(OUTSIDE_GUEST_MODE, Ordering::SeqCst);
        if swap_xcr0 {
            // SAFETY: restores the host's own value.
            unsafe { rb::rkvm_xsetbv(0, host_xcr0) };
        }
        // SAFETY: restores host debug registers that VMRUN clobbered;
        // then time accounting; then the host interrupt (if any) is taken.
        unsafe {
            rb::rkvm_hw_breakpoint_restore();
            rb::rkvm_guest_timing_exit_irqoff();
            rb::rkvm_local_irq_enable();
            rb::rkvm_preempt_enable();
        }

        inject::after_exit(vm, vcpu, st);
        match handle_exit(vm, vcpu, st, exit)? {
            Next::Guest => {}
            Next::User => return Ok(()),
        }
        // Userspace PIC (no irqchip, or split): report the interrupt
        // window it asked for.
        if run.request_interrupt_window() && !vm.has_full_irqchip() && ready_for_injection(vm, vcpu, st) {
            run.set_exit_reason(uapi::KVM_EXIT_IRQ_WINDOW_OPEN);
            return Ok(());
        }
    }
}

const X86_EFLAGS_IF: u64 = 1 << 9;

/// Whether userspace may inject an interrupt now (upstream's
/// `ready_for_interrupt_injection`): always with the in-kernel PIC.
fn ready_for_injection(vm: &Vm, vcpu: &Vcpu, st: &VcpuState) -> bool {
    if vcpu.apic.is_none() {
        st.irq_pending.is_none() && st.arch.interrupt_allowed()
    } else if vm.is_split_irqchip() {
        inject::split_ready_for_injection(vcpu, st)
    } else {
        true
    }
}

/// Fields of kvm_run that every return to userspace updates.
fn report_common(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) {
    let if_flag = st.arch.rflags() & X86_EFLAGS_IF != 0;
    let ready = ready_for_injection(vm, vcpu, st);
    vcpu.run.set_common(if_flag, ready, st.msrs.cr8, st.msrs.apic_base);
}

/// Finishes what the last exit to userspace left open.
fn complete_userspace(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<Next> {
    match core::mem::replace(&mut st.pending, Pending::None) {
        Pending::None => Ok(Next::Guest),
        Pending::PioIn { size, next_rip } => {
            let mut b = [0u8; 8];
            vcpu.run.read_pio(0, &mut b[..usize::from(size).min(8)]);
            let v = u64::from_le_bytes(b);
            let rax = &mut st.arch.gprs_mut().0[gpr::RAX];
            *rax = merge_reg(*rax, v, size);
            st.arch.skip_to(next_rip);
            Ok(Next::Guest)
        }
        Pending::Emulator(w) => emulator_ops::complete(vm, vcpu, st, w),
        Pending::Hypercall { long_mode } => {
            let ret = vcpu.run.hypercall_ret();
            st.arch.gprs_mut().0[gpr::RAX] = if long_mode { ret } else { ret & 0xffff_ffff };
            skip(vm, vcpu, st, 3);
            Ok(Next::Guest)
        }
    }
}

/// Writes `size` bytes of `v` into register value `old` like a MOV does:
/// 8/16-bit writes keep the upper bits, 32-bit writes zero-extend.
pub(crate) fn merge_reg(old: u64, v: u64, size: u8) -> u64 {
    match size {
        1 => (old & !0xff) | (v & 0xff),
        2 => (old & !0xffff) | (v & 0xffff),
        4 => v & 0xffff_ffff,
        _ => v,
    }
}

/// Continues after an intercepted instruction. The hardware's next RIP
/// if it saved one; else the decoded length (prefixes count); else `len`,
/// its length without prefixes.
pub(crate) fn skip(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, len: u64) {
    let next = match st.arch.next_rip() {
        Some(n) => n,
        None => {
            let l = emulator_ops::instruction_length(vm, vcpu, st).unwrap_or(len);
            st.arch.rip().wrapping_add(l)
        }
    };
    st.arch.skip_to(next);
}

fn handle_exit(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, exit: VmExit) -> Result<Next> {
    let run = &vcpu.run;
    match exit {
        VmExit::None => Ok(Next::Guest),
        VmExit::Io(io) => handle_io(vm, vcpu, st, io),
        VmExit::Hlt => {
            skip(vm, vcpu, st, 1);
            Ok(halt(vcpu, st))
        }
        VmExit::Cpuid => {
            cpuid::emulate(st);
            skip(vm, vcpu, st, 2);
            Ok(Next::Guest)
        }
        VmExit::Msr { write } => {
            let g = st.arch.gprs();
            let index = g.0[gpr::RCX] as u32;
            let value = (g.0[gpr::RDX] << 32) | (g.0[gpr::RAX] & 0xffff_ffff);
            if write {
                if msrs::set(vm, vcpu, st, index, value, false).is_err() {
                    st.arch.inject_exception(vector::GP, Some(0));
                    return Ok(Next::Guest);
                }
            } else {
                match msrs::get(vm, vcpu, st, index, false) {
                    Ok(v) => {
                        let g = st.arch.gprs_mut();
                        g.0[gpr::RAX] = v & 0xffff_ffff;
                        g.0[gpr::RDX] = v >> 32;
                    }
                    Err(_) => {
                        st.arch.inject_exception(vector::GP, Some(0));
                        return Ok(Next::Guest);
                    }
                }
            }
            skip(vm, vcpu, st, 2);
            Ok(Next::Guest)
        }
        VmExit::Hypercall => handle_hypercall(vm, vcpu, st),
        VmExit::Xsetbv => {
            let g = st.arch.gprs();
            let index = g.0[gpr::RCX] as u32;
            let value = (g.0[gpr::RDX] << 32) | (g.0[gpr::RAX] & 0xffff_ffff);
            if st.arch.cpl() != 0 || msrs::set_xcr(st, index, value).is_err() {
                st.arch.inject_exception(vector::GP, Some(0));
                return Ok(Next::Guest);
            }
            skip(vm, vcpu, st, 3);
            Ok(Next::Guest)
        }
        VmExit::TdpFault { gpa, write, insn_len, insn } => {
            match vm.tdp_fault(gpa, write) {
                Ok(true) => return Ok(Next::Guest),
                Ok(false) => {}
                Err(e) => {
                    // The VMM's memory behind a slot is gone (KVM_CAP_MEMORY_FAULT_INFO).
                    run.set_exit_reason(uapi::KVM_EXIT_MEMORY_FAULT);
                    run.set_memory_fault(gpa & !0xfff, 4096, 0);
                    return Err(e);
                }
            }
            let _ = gpa;
            emulator_ops::emulate(vm, vcpu, st, &insn[..usize::from(insn_len).min(15)])
        }
        VmExit::InterruptWindow => Ok(Next::Guest),
        VmExit::Emulate => emulator_ops::emulate(vm, vcpu, st, &[]),
        VmExit::Shutdown => {
            // The VMCB is undefined after a shutdown: INIT the vCPU.
            st.arch.reset(true);
            run.set_exit_reason(uapi::KVM_EXIT_SHUTDOWN);
            Ok(Next::User)
        }
        VmExit::Exception { vector, error_code, info: _ } => {
            let debug_exit = (vector == vector::DB && (st.debug.singlestep() || st.debug.hw_bp()))
                || (vector == vector::BP && st.debug.sw_bp());
            if debug_exit {
                let (dr6, dr7) = (st.arch.dr(6), st.arch.dr(7));
                run.set_exit_reason(uapi::KVM_EXIT_DEBUG);
                run.set_debug(u32::from(vector), crate::x86::events::linear_rip(st), dr6, dr7);
                return Ok(Next::User);
            }
            // Only exceptions we intercept on purpose get here; give them
            // back to the guest.
            st.arch.inject_exception(vector, error_code);
            Ok(Next::Guest)
        }
        VmExit::FailEntry { reason } => {
            run.set_exit_reason(uapi::KVM_EXIT_FAIL_ENTRY);
            run.set_fail_entry(reason, vcpu.kick.cpu.load(Ordering::Relaxed) as u32);
            Ok(Next::User)
        }
        VmExit::Unknown { code, info1, info2 } => {
            run.set_exit_reason(uapi::KVM_EXIT_INTERNAL_ERROR);
            run.set_internal(
                uapi::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
                &[code, vcpu.kick.cpu.load(Ordering::Relaxed) as u64, info1, info2],
            );
            Ok(Next::User)
        }
    }
}

fn handle_io(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, io: IoExit) -> Result<Next> {
    let run = &vcpu.run;
    if !io.string {
        // In-kernel devices (PIC, PIT) first.
        let mut data = st.arch.gprs().0[gpr::RAX].to_le_bytes();
        let n = usize::from(io.size).min(4);
        if crate::x86::iodev::pio(vm, io.port, !io.input, &mut data[..n]) {
            if io.input {
                let v = u64::from_le_bytes(data);
                let rax = &mut st.arch.gprs_mut().0[gpr::RAX];
                *rax = merge_reg(*rax, v, io.size);
            }
            st.arch.skip_to(io.next_rip);
            return Ok(Next::Guest);
        }
        run.set_exit_reason(uapi::KVM_EXIT_IO);
        run.set_io(io.input, io.size, io.port, 1);
        if io.input {
            st.pending = Pending::PioIn { size: io.size, next_rip: io.next_rip };
        } else {
            let v = st.arch.gprs().0[gpr::RAX];
            run.write_pio(0, &v.to_le_bytes()[..usize::from(io.size).min(8)]);
            st.arch.skip_to(io.next_rip);
        }
        return Ok(Next::User);
    }

    // INS/OUTS: the emulator decodes segment, address size and REP, and
    // batches elements per exit.
    emulator_ops::emulate(vm, vcpu, st, &[])
}


/// VMMCALL: KVM_HC_MAP_GPA_RANGE goes to userspace when it asked for it
/// (KVM_CAP_EXIT_HYPERCALL); everything else is -KVM_ENOSYS, or
/// -KVM_EPERM from CPL > 0, like upstream.
fn handle_hypercall(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<Next> {
    const KVM_ENOSYS: u64 = 1000;
    const KVM_EPERM: u64 = 1;
    const KVM_EINVAL: u64 = 22;
    const KVM_HC_MAP_GPA_RANGE: u64 = 12;
    let long_mode = st.arch.efer() & msrs::EFER_LMA != 0 && st.arch.segment(crate::x86::vendor::Seg::Cs).l != 0;
    let mask = if long_mode { u64::MAX } else { 0xffff_ffff };
    let g = st.arch.gprs().0;
    let (nr, a0, a1, a2) = (g[gpr::RAX] & mask, g[gpr::RBX] & mask, g[gpr::RCX] & mask, g[gpr::RDX] & mask);
    let ret = if st.arch.cpl() != 0 {
        KVM_EPERM.wrapping_neg()
    } else if nr == KVM_HC_MAP_GPA_RANGE && vm.hypercall_exit_enabled(KVM_HC_MAP_GPA_RANGE) {
        let (gpa, npages) = (a0, a1);
        if gpa & 0xfff != 0 || npages == 0 || (gpa >> 12).checked_add(npages).is_none() {
            KVM_EINVAL.wrapping_neg()
        } else {
            vcpu.run.set_exit_reason(uapi::KVM_EXIT_HYPERCALL);
            let flags = if long_mode { uapi::KVM_EXIT_HYPERCALL_LONG_MODE as u64 } else { 0 };
            vcpu.run.set_hypercall(nr, [gpa, npages, a2], flags);
            st.pending = Pending::Hypercall { long_mode };
            return Ok(Next::User);
        }
    } else {
        KVM_ENOSYS.wrapping_neg()
    };
    st.arch.gprs_mut().0[gpr::RAX] = ret & mask;
    skip(vm, vcpu, st, 3);
    Ok(Next::Guest)
}

/// HLT: with an in-kernel LAPIC the vCPU sleeps in the kernel until an
/// interrupt; without, userspace's irqchip handles it (KVM_EXIT_HLT).
pub(crate) fn halt(vcpu: &Vcpu, st: &mut VcpuState) -> Next {
    if vcpu.apic.is_some() {
        st.mp_state = uapi::KVM_MP_STATE_HALTED;
        Next::Guest
    } else {
        vcpu.run.set_exit_reason(uapi::KVM_EXIT_HLT);
        Next::User
    }
}
