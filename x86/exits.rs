// SPDX-License-Identifier: GPL-2.0
//! The exits every vendor shares, in the vendor-neutral terms of
//! [`VmExit`]: port I/O, MMIO and TDP faults, HLT, CPUID, MSRs,
//! hypercalls, XSETBV, RDTSCP, MONITOR/MWAIT, WBINVD, INVLPG, RDPMC,
//! exceptions, shutdown and failed entries.

use crate::defs::regs::{RAX, RBX, RCX, RDX, RSI};
use crate::{
    defs,
    defs::{
        regs::{DR6_ACTIVE_LOW, DR6_BS, X86_EFLAGS_RF, X86_EFLAGS_TF},
        vector::UD_VECTOR,
    },
    ext::{time, trace, uapi},
    virt::{vcpu::Vcpu, vm::Vm},
    x86::{
        cpuid, emulator_ops, events,
        guest_mem::VmMem,
        iodev, mmu,
        msr_filter::MsrFault,
        msrs, params,
        run::{halt, merge_reg, vector, Next},
        vcpu::VcpuState,
        vcpu_events::QueuedException,
        vendor::{IoExit, Seg, VmExit},
    },
};
use kernel::{page::PAGE_SIZE, prelude::*};

/// Continues after an intercepted instruction: at the hardware's next RIP
/// if it saved one; else after the decoded instruction (prefixes count);
/// else `len` bytes on, its length without prefixes. A single-step trap
/// follows if RFLAGS.TF was set (upstream's
/// kvm_skip_emulated_instruction()): `Next::User` when it is userspace's.
pub(crate) fn skip(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, len: u64) -> Next {
    let next = match st.hw.next_rip() {
        Some(n) => n,
        None => {
            let l = emulator_ops::instruction_length(vm, vcpu, st).unwrap_or(len);
            st.hw.rip().wrapping_add(l)
        }
    };
    skip_to(vcpu, st, next)
}

/// Continues at `next` after an intercepted instruction, with the
/// single-step trap of [`skip`].
pub(crate) fn skip_to(vcpu: &Vcpu, st: &mut VcpuState, next: u64) -> Next {
    // The raw RFLAGS: TF from the guest, or ours while single-stepping.
    let tf = st.hw.rflags() & X86_EFLAGS_TF != 0;
    st.hw.skip_to(next);
    if tf {
        return inject_emulated_db(vcpu, st, DR6_BS);
    }
    Next::Guest
}

/// A #DB the instruction just completed raised (single-step, `dr6` bits):
/// KVM_EXIT_DEBUG when userspace debugs the guest (single-step or hardware
/// breakpoints), else a pending #DB for the guest with `dr6` as payload
/// (upstream's kvm_inject_emulated_db()).
pub(crate) fn inject_emulated_db(vcpu: &Vcpu, st: &mut VcpuState, dr6: u64) -> Next {
    if st.debug.singlestep() || st.debug.hw_bp() {
        let run = vcpu.run_page();
        run.set_exit_reason(uapi::KVM_EXIT_DEBUG);
        run.set_debug(
            u32::from(vector::DB),
            events::linear_rip(st),
            dr6 | DR6_ACTIVE_LOW,
            st.hw.dr(7),
        );
        return Next::User;
    }
    st.events.set_exception(Some(QueuedException {
        vector: vector::DB,
        error_code: None,
        payload: Some(dr6),
    }));
    Next::Guest
}

/// EDX:EAX as one value (WRMSR, XSETBV).
fn edx_eax(st: &VcpuState) -> u64 {
    let g = st.hw.gprs();
    (g[RDX] << 32) | (g[RAX] & 0xffff_ffff)
}

/// Handles one exit.
pub(crate) fn handle_exit(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, exit: VmExit) -> Result<Next> {
    let run = vcpu.run_page();
    let stats = vcpu.stats();
    match exit {
        VmExit::None => Ok(Next::Guest),
        VmExit::HostIrq => {
            stats.irq_exits.inc();
            Ok(Next::Guest)
        }
        VmExit::Io(io) => {
            stats.io_exits.inc();
            handle_io(vm, vcpu, st, io)
        }
        VmExit::Hlt => {
            stats.halt_exits.inc();
            let next = skip(vm, vcpu, st, 1);
            let halted = halt(vcpu, st);
            Ok(match next {
                Next::User => Next::User,
                Next::Guest => halted,
            })
        }
        VmExit::Cpuid => {
            // CPUID faulting (MSR_MISC_FEATURES_ENABLES): #GP outside ring 0.
            if st.msrs.cpuid_faulting() && st.hw.cpl() != 0 {
                st.inject_exception(vector::GP, Some(0));
                return Ok(Next::Guest);
            }
            cpuid::emulate(st);
            Ok(skip(vm, vcpu, st, 2))
        }
        VmExit::Msr { write } => handle_msr(vm, vcpu, st, write),
        VmExit::Hypercall => {
            stats.hypercalls.inc();
            handle_hypercall(vm, vcpu, st)
        }
        VmExit::Xsetbv => {
            let index = st.hw.gprs()[RCX] as u32;
            let value = edx_eax(st);
            if st.hw.cpl() != 0 || msrs::set_xcr(st, index, value).is_err() {
                st.inject_exception(vector::GP, Some(0));
                return Ok(Next::Guest);
            }
            Ok(skip(vm, vcpu, st, 3))
        }
        VmExit::Rdtscp => {
            // Without RDTSCP in the guest's CPUID the instruction is #UD,
            // as upstream (which intercepts it only then).
            if !st.cpuid.has(defs::cpuid::X86_FEATURE_RDTSCP) {
                st.inject_exception(UD_VECTOR, None);
                return Ok(Next::Guest);
            }
            // TSC_AUX is the vendor's MSR; read it as the guest would.
            let aux = msrs::get(vm, vcpu, st, defs::msr::MSR_TSC_AUX, true).unwrap_or(0);
            let tsc = time::rdtsc().wrapping_add(st.hw.tsc_offset());
            let g = st.hw.gprs_mut();
            g[RAX] = tsc & 0xffff_ffff;
            g[RDX] = tsc >> 32;
            g[RCX] = aux & 0xffff_ffff;
            Ok(skip(vm, vcpu, st, 3))
        }
        // MONITOR/MWAIT are NOPs, as upstream; without
        // KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS they are #UD where the guest
        // has no MWAIT (its CPUID, or MISC_ENABLE.MWAIT without
        // KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT).
        VmExit::MonitorMwait => {
            let arch = vm.arch();
            if !arch.quirk(uapi::KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS) {
                let enabled = if arch.quirk(uapi::KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT) {
                    cpuid::guest_has_mwait(st)
                } else {
                    st.msrs.misc_enable_mwait()
                };
                if !enabled {
                    st.inject_exception(UD_VECTOR, None);
                    return Ok(Next::Guest);
                }
            }
            Ok(skip(vm, vcpu, st, 3))
        }
        // The guest's caches are the host's: nothing to write back.
        VmExit::Wbinvd => Ok(skip(vm, vcpu, st, 2)),
        VmExit::Invlpg => emulator_ops::emulate(vm, vcpu, st, &[]),
        // No PMU: RDPMC faults, as upstream with an empty PMU.
        VmExit::Rdpmc => {
            st.inject_exception(vector::GP, Some(0));
            Ok(Next::Guest)
        }
        VmExit::TdpFault {
            gpa,
            write,
            insn_len,
            insn,
        } => {
            stats.pf_taken.inc();
            if trace::kvm_page_fault_enabled() {
                let error_code = st.hw.exit_info()[1];
                trace::kvm_page_fault(vcpu.id(), st.hw.rip() as usize, gpa.raw(), error_code);
            }
            match vm.mmu().fault(vm, gpa, write) {
                Ok(true) => {
                    stats.pf_fixed.inc();
                    return Ok(Next::Guest);
                }
                Ok(false) => stats.pf_emulate.inc(),
                Err(e) => {
                    // The VMM's memory behind a slot is gone (KVM_CAP_MEMORY_FAULT_INFO).
                    run.set_exit_reason(uapi::KVM_EXIT_MEMORY_FAULT);
                    run.set_memory_fault(gpa.page_base().raw(), PAGE_SIZE as u64, 0);
                    return Err(e);
                }
            }
            if let Some(next) = vectoring_exit(vcpu, st, gpa.raw()) {
                return Ok(next);
            }
            emulator_ops::emulate(vm, vcpu, st, &insn[..usize::from(insn_len).min(15)])
        }
        VmExit::PageFault {
            addr,
            error_code,
            insn_len,
            insn,
        } => mmu::shadow::page_fault(
            vm,
            vcpu,
            st,
            addr,
            error_code,
            &insn[..usize::from(insn_len).min(15)],
        ),
        VmExit::InterruptWindow => {
            stats.irq_window_exits.inc();
            Ok(Next::Guest)
        }
        VmExit::Emulate => emulator_ops::emulate(vm, vcpu, st, &[]),
        VmExit::Shutdown => {
            // The vendor state is undefined after a shutdown: INIT the vCPU.
            st.hw.reset(true);
            run.set_exit_reason(uapi::KVM_EXIT_SHUTDOWN);
            Ok(Next::User)
        }
        VmExit::Exception {
            vector: UD_VECTOR, ..
        } => handle_ud(vm, vcpu, st),
        VmExit::Exception {
            vector,
            error_code,
            info: _,
        } => {
            let debug_exit = (vector == vector::DB && (st.debug.singlestep() || st.debug.hw_bp()))
                || (vector == vector::BP && st.debug.sw_bp());
            if debug_exit {
                let (dr6, dr7) = (st.hw.dr(6), st.hw.dr(7));
                run.set_exit_reason(uapi::KVM_EXIT_DEBUG);
                run.set_debug(u32::from(vector), events::linear_rip(st), dr6, dr7);
                return Ok(Next::User);
            }
            // Only exceptions we intercept on purpose get here; give them
            // back to the guest.
            st.inject_exception(vector, error_code);
            Ok(Next::Guest)
        }
        VmExit::FailEntry { reason } => {
            run.set_exit_reason(uapi::KVM_EXIT_FAIL_ENTRY);
            run.set_fail_entry(reason, vcpu.kick().last_cpu() as u32);
            Ok(Next::User)
        }
        VmExit::MemoryFailure => {
            // Upstream's prepare_emulation_failure_exit() without
            // instruction bytes: flags 0, then the exit info.
            let [reason, info1, info2, intr, err] = st.hw.exit_info();
            run.set_exit_reason(uapi::KVM_EXIT_INTERNAL_ERROR);
            run.set_internal(
                uapi::KVM_INTERNAL_ERROR_EMULATION,
                &[0, reason, info1, info2, intr, err],
            );
            Ok(Next::User)
        }
        VmExit::Vendor => match st.hw.complete_exit(&VmMem(vm)) {
            // The vendor's contract: never twice.
            VmExit::Vendor => Err(EIO),
            exit => handle_exit(vm, vcpu, st, exit),
        },
        VmExit::Unknown { code, info1, info2 } => {
            run.set_exit_reason(uapi::KVM_EXIT_INTERNAL_ERROR);
            run.set_internal(
                uapi::KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
                &[code, vcpu.kick().last_cpu() as u64, info1, info2],
            );
            Ok(Next::User)
        }
    }
}

/// A fault that needs the emulator (MMIO) hit while the CPU was
/// delivering an event (the IDT, a stack or a TSS in MMIO): the
/// instruction at RIP is not what faulted, so nothing can be emulated.
/// As upstream's kvm_prepare_event_vectoring_exit(): KVM_EXIT_INTERNAL_
/// ERROR, suberror DELIVERY_EV, data info 2, exit reason, info 1, the GPA
/// and the last CPU. (Upstream's SVM tests the event type bits without
/// the valid bit, which TCG leaves set after delivery; the valid bit is
/// tested here.)
pub(crate) fn vectoring_exit(vcpu: &Vcpu, st: &VcpuState, gpa: u64) -> Option<Next> {
    // Bit 31 of SVM's EXITINTINFO and of VMX's IDT-vectoring information.
    const EVENT_VALID: u64 = 1 << 31;
    let [reason, info1, info2, intinfo, _] = st.hw.exit_info();
    if intinfo & EVENT_VALID == 0 {
        return None;
    }
    let run = vcpu.run_page();
    run.set_exit_reason(uapi::KVM_EXIT_INTERNAL_ERROR);
    run.set_internal(
        uapi::KVM_INTERNAL_ERROR_DELIVERY_EV,
        &[info2, reason, info1, gpa, vcpu.kick().last_cpu() as u64],
    );
    Some(Next::User)
}

/// `ud2; .ascii "kvm"`: upstream's forced-emulation prefix (KVM_FEP).
const KVM_FEP: [u8; 5] = [0x0f, 0x0b, b'k', b'v', b'm'];
/// force_emulation_prefix bit 1: also clear RFLAGS.RF.
const FEP_CLEAR_RFLAGS_RF: i32 = 2;

/// Whether `force_emulation_prefix` is on (then #UD is intercepted).
pub(crate) fn fep_enabled() -> bool {
    params::FORCE_EMULATION_PREFIX.get() & 1 != 0
}

/// VMCALL (Intel) and VMMCALL (AMD).
const HYPERCALL_INSNS: [[u8; 3]; 2] = [[0x0f, 0x01, 0xc1], [0x0f, 0x01, 0xd9]];

/// An intercepted #UD (upstream's handle_ud()): with
/// `force_emulation_prefix`, after the KVM_FEP prefix the next instruction
/// is emulated; the other vendor's hypercall instruction (the native one
/// exits as a hypercall, never #UD) is replaced in guest memory by the
/// native one, which the guest then executes, with
/// KVM_X86_QUIRK_FIX_HYPERCALL_INSN (the default; upstream's
/// emulator_fix_hypercall()), or stays a #UD without it; any other #UD
/// goes back to the guest.
fn handle_ud(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<Next> {
    if fep_enabled() && emulator_ops::fetch_at_rip::<5>(vm, st) == Some(KVM_FEP) {
        return emulate_after_fep(vm, vcpu, st);
    }
    let other = emulator_ops::fetch_at_rip::<3>(vm, st)
        .and_then(|b| HYPERCALL_INSNS.iter().position(|i| *i == b));
    if let Some(i) = other {
        if vm.arch().quirk(uapi::KVM_X86_QUIRK_FIX_HYPERCALL_INSN) {
            let native = HYPERCALL_INSNS[1 - i];
            if emulator_ops::write_at_rip(vm, st, &native) {
                return Ok(Next::Guest);
            }
            // Not writable RAM: the hypercall without the patch.
            return handle_hypercall(vm, vcpu, st);
        }
    }
    st.inject_exception(UD_VECTOR, None);
    Ok(Next::Guest)
}

/// KVM_FEP: emulate the instruction after the prefix.
fn emulate_after_fep(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<Next> {
    if params::FORCE_EMULATION_PREFIX.get() & FEP_CLEAR_RFLAGS_RF != 0 {
        let r = st.hw.rflags();
        st.hw.set_rflags(r & !X86_EFLAGS_RF);
    }
    let rip = st.hw.rip().wrapping_add(KVM_FEP.len() as u64);
    st.hw.set_rip(rip);
    emulator_ops::emulate(vm, vcpu, st, &[])
}

/// RDMSR (ECX) into EDX:EAX, or WRMSR of EDX:EAX. A refused access (by
/// the MSR filter, or an unknown MSR, or an invalid one) exits to
/// userspace if it asked for that reason (KVM_CAP_X86_USER_SPACE_MSR),
/// else the guest gets #GP.
fn handle_msr(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, write: bool) -> Result<Next> {
    let index = st.hw.gprs()[RCX] as u32;
    let value = if write { edx_eax(st) } else { 0 };
    let r = if !vm.arch().msr_allowed(index, write) {
        Err(MsrFault::Filtered)
    } else if write {
        msrs::set(vm, vcpu, st, index, value, false).map_err(msrs::fault_of)
    } else {
        msrs::get(vm, vcpu, st, index, false)
            .map(|v| {
                trace::kvm_msr(0, index, v, false);
                let g = st.hw.gprs_mut();
                g[RAX] = v & 0xffff_ffff;
                g[RDX] = v >> 32;
            })
            .map_err(msrs::fault_of)
    };
    match r {
        Ok(()) => {
            if write {
                trace::kvm_msr(1, index, value, false);
            }
            Ok(skip(vm, vcpu, st, 2))
        }
        Err(fault) if vm.arch().msr_fault_exits(fault) => {
            let run = vcpu.run_page();
            run.set_exit_reason(if write {
                uapi::KVM_EXIT_X86_WRMSR
            } else {
                uapi::KVM_EXIT_X86_RDMSR
            });
            run.set_msr(fault.reason(), index, value);
            st.completion.msr(write);
            Ok(Next::User)
        }
        Err(_) => {
            trace::kvm_msr(write.into(), index, value, true);
            st.inject_exception(vector::GP, Some(0));
            Ok(Next::Guest)
        }
    }
}

fn handle_io(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, io: IoExit) -> Result<Next> {
    let run = vcpu.run_page();
    if !io.string {
        // In-kernel devices (PIC, PIT) first.
        let mut data = st.hw.gprs()[RAX].to_le_bytes();
        let n = usize::from(io.size).min(4);
        if !io.input {
            trace::kvm_pio(
                1,
                io.port.into(),
                io.size.into(),
                1,
                st.hw.gprs()[RAX] as u32,
            );
        }
        if iodev::pio(vm, io.port, !io.input, &mut data[..n]) {
            if io.input {
                trace::kvm_pio(
                    0,
                    io.port.into(),
                    io.size.into(),
                    1,
                    u32::from_le_bytes([data[0], data[1], data[2], data[3]]),
                );
                let v = u64::from_le_bytes(data);
                let rax = &mut st.hw.gprs_mut()[RAX];
                *rax = merge_reg(*rax, v, io.size);
            }
            return Ok(skip_to(vcpu, st, io.next_rip));
        }
        run.set_exit_reason(uapi::KVM_EXIT_IO);
        run.set_io(io.input, io.size, io.port, 1);
        if io.input {
            st.completion.pio_in(io.port, io.size, io.next_rip);
        } else {
            let v = st.hw.gprs()[RAX];
            run.write_pio(0, &v.to_le_bytes()[..usize::from(io.size).min(8)]);
            // A single-step trap after OUT is the guest's (the exit
            // already goes to userspace).
            if st.hw.rflags() & X86_EFLAGS_TF != 0 && !st.debug.singlestep() {
                inject_emulated_db(vcpu, st, DR6_BS);
            }
            st.hw.skip_to(io.next_rip);
        }
        return Ok(Next::User);
    }

    // INS/OUTS: the emulator decodes segment, address size and REP, and
    // splits them into exits as upstream (OUTS one element, REP INS one
    // read-ahead batch).
    emulator_ops::emulate(vm, vcpu, st, &[])
}

/// The vendor's hypercall instruction: KVM_HC_MAP_GPA_RANGE goes
/// to userspace when it asked for it (KVM_CAP_EXIT_HYPERCALL);
/// KVM_HC_SCHED_YIELD is a hint (a reschedule point; upstream yields to
/// the target vCPU) answered 0 where the guest may use it; everything
/// else is -KVM_ENOSYS, or -KVM_EPERM from CPL > 0, like upstream.
fn handle_hypercall(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<Next> {
    const KVM_ENOSYS: u64 = 1000;
    const KVM_EPERM: u64 = 1;
    const KVM_EINVAL: u64 = 22;
    const KVM_HC_MAP_GPA_RANGE: u64 = 12;
    const KVM_HC_SCHED_YIELD: u64 = 11;
    let long_mode = st.hw.efer() & defs::regs::EFER_LMA != 0 && st.hw.segment(Seg::Cs).l != 0;
    let mask = if long_mode { u64::MAX } else { 0xffff_ffff };
    let g = *st.hw.gprs();
    let (nr, a0, a1, a2) = (g[RAX] & mask, g[RBX] & mask, g[RCX] & mask, g[RDX] & mask);
    let a3 = g[RSI] & mask;
    trace::kvm_hypercall(
        nr as usize,
        a0 as usize,
        a1 as usize,
        a2 as usize,
        a3 as usize,
    );
    let ret = if st.hw.cpl() != 0 {
        KVM_EPERM.wrapping_neg()
    } else if nr == KVM_HC_SCHED_YIELD
        && st
            .cpuid
            .pv_has(crate::cpuid_caps::pv::KVM_FEATURE_PV_SCHED_YIELD)
    {
        crate::ext::cpu::cond_resched();
        0
    } else if nr == KVM_HC_MAP_GPA_RANGE && vm.arch().hypercall_exit_enabled(KVM_HC_MAP_GPA_RANGE) {
        let (gpa, npages) = (a0, a1);
        if gpa % PAGE_SIZE as u64 != 0
            || npages == 0
            || (gpa / PAGE_SIZE as u64).checked_add(npages).is_none()
        {
            KVM_EINVAL.wrapping_neg()
        } else {
            let run = vcpu.run_page();
            run.set_exit_reason(uapi::KVM_EXIT_HYPERCALL);
            let flags = if long_mode {
                u64::from(uapi::KVM_EXIT_HYPERCALL_LONG_MODE)
            } else {
                0
            };
            run.set_hypercall(nr, [gpa, npages, a2], flags);
            st.completion.hypercall(long_mode);
            return Ok(Next::User);
        }
    } else {
        KVM_ENOSYS.wrapping_neg()
    };
    st.hw.gprs_mut()[RAX] = ret & mask;
    Ok(skip(vm, vcpu, st, 3))
}
