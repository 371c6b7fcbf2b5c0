// SPDX-License-Identifier: GPL-2.0
//! KVM_RUN: the loop that enters the guest (upstream's vcpu_run() and
//! vcpu_enter_guest()), and the completion of exits to userspace.
//!
//! One iteration: handle posted requests; open the entry window
//! (preemption and interrupts off); publish guest mode and re-check
//! requests, signals and need_resched (a kick after this point becomes a
//! VM exit); enter; close the window (taking the host interrupt that caused
//! an INTR exit); handle the exit (`x86::exits`). All per-CPU host state
//! the vendor touches is saved and restored inside the window, so a vCPU
//! thread may migrate between iterations freely; the guest FPU state is
//! switched once per KVM_RUN by the kernel's FPU core, which handles
//! preemption itself.

use crate::defs::{
    msr::MSR_IA32_APICBASE,
    regs::{RAX, RDX},
};
use crate::{
    defs::regs::{X86_CR4_OSXSAVE, X86_EFLAGS_IF},
    ext::{cpu, fpu::regs::host_xcr0, guest_entry::EntryWindow, signal::SigmaskGuard, trace, uapi},
    virt::{kick::REQ_TLB_FLUSH, vcpu::Vcpu, vm::Vm},
    x86::{
        emulator_ops::{self, Waiting},
        events, exits,
        irq::inject,
        kvmclock, mmu, msrs, regs,
        vcpu::VcpuState,
    },
};
use core::mem::offset_of;
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

/// An exit to userspace that the next KVM_RUN must complete.
#[derive(Clone, Copy)]
enum Pending {
    /// Nothing to complete.
    None,
    /// IN from `port`: merge the PIO data page into RAX, then continue at
    /// `next_rip`.
    PioIn { port: u16, size: u8, next_rip: u64 },
    /// The emulator waits for userspace (MMIO, string I/O).
    Emulator(Waiting),
    /// KVM_EXIT_HYPERCALL: RAX := `run.hypercall.ret`, then skip the
    /// hypercall instruction.
    Hypercall { long_mode: bool },
    /// KVM_EXIT_X86_RDMSR/WRMSR: #GP if `run.msr.error`, else (RDMSR)
    /// EDX:EAX := `run.msr.data` and skip the instruction.
    Msr { write: bool },
}

/// The owner of [`Pending`]: every transition is one of its methods.
pub(crate) struct Completion(Pending);

impl Completion {
    pub(crate) fn new() -> Self {
        Self(Pending::None)
    }

    /// After a KVM_EXIT_IO for IN of `size` bytes from `port`.
    pub(crate) fn pio_in(&mut self, port: u16, size: u8, next_rip: u64) {
        self.0 = Pending::PioIn {
            port,
            size,
            next_rip,
        };
    }

    /// After an exit the emulator needs userspace for.
    pub(crate) fn emulator(&mut self, w: Waiting) {
        self.0 = Pending::Emulator(w);
    }

    /// After KVM_EXIT_HYPERCALL.
    pub(crate) fn hypercall(&mut self, long_mode: bool) {
        self.0 = Pending::Hypercall { long_mode };
    }

    /// After KVM_EXIT_X86_RDMSR (`write` false) or KVM_EXIT_X86_WRMSR.
    pub(crate) fn msr(&mut self, write: bool) {
        self.0 = Pending::Msr { write };
    }

    /// Forgets the open exit (KVM_SET_REGS, INIT).
    pub(crate) fn cancel(&mut self) {
        self.0 = Pending::None;
    }

    fn take(&mut self) -> Pending {
        core::mem::replace(&mut self.0, Pending::None)
    }
}

/// What an exit handler wants next.
pub(crate) enum Next {
    /// Enter the guest again.
    Guest,
    /// Return to userspace (kvm_run is filled in).
    User,
}

/// The register sets of kvm_run's `s.regs` (KVM_CAP_SYNC_REGS).
pub(crate) const SYNC_REGS_VALID: u64 = uapi::KVM_SYNC_X86_VALID_FIELDS as u64;
const SYNC_REGS: u64 = uapi::KVM_SYNC_X86_REGS as u64;
const SYNC_SREGS: u64 = uapi::KVM_SYNC_X86_SREGS as u64;
const SYNC_EVENTS: u64 = uapi::KVM_SYNC_X86_EVENTS as u64;

/// The KVM_RUN ioctl (its argument must be 0). As upstream, the sync
/// register sets userspace asked for are stored on every return,
/// whatever the result.
#[inline(never)]
pub(crate) fn kvm_run(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result<isize> {
    if arg != 0 {
        return Err(EINVAL);
    }
    vcpu.run_pid().update();
    let _sigmask = SigmaskGuard::apply(st.sigmask);
    let r = run_once(vm, vcpu, st);
    let valid = vcpu.run_page().valid_regs();
    if valid != 0 {
        store_sync_regs(vm, vcpu, st, valid);
    }
    r
}

/// Loads the sync register sets marked dirty in kvm_run (upstream's
/// sync_regs()): each from one snapshot of the page, checked as its
/// ioctl checks it; a set that loaded is no longer dirty.
fn load_sync_regs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, dirty: u64) -> Result {
    let run = vcpu.run_page();
    if dirty & SYNC_REGS != 0 {
        let r: uapi::kvm_regs = run.sync_regs(offset_of!(uapi::kvm_sync_regs, regs));
        regs::set_regs_from(st, &r);
        run.clear_dirty_regs(SYNC_REGS);
    }
    if dirty & SYNC_SREGS != 0 {
        let s: uapi::kvm_sregs = run.sync_regs(offset_of!(uapi::kvm_sync_regs, sregs));
        regs::set_sregs_from(vm, vcpu, st, &s).map_err(|_| EINVAL)?;
        run.clear_dirty_regs(SYNC_SREGS);
    }
    if dirty & SYNC_EVENTS != 0 {
        let e: uapi::kvm_vcpu_events = run.sync_regs(offset_of!(uapi::kvm_sync_regs, events));
        events::set_vcpu_events_from(vm, st, e).map_err(|_| EINVAL)?;
        run.clear_dirty_regs(SYNC_EVENTS);
    }
    Ok(())
}

/// Stores the sync register sets in `valid` into kvm_run (upstream's
/// store_regs()).
fn store_sync_regs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, valid: u64) {
    let run = vcpu.run_page();
    if valid & SYNC_REGS != 0 {
        run.set_sync_regs(offset_of!(uapi::kvm_sync_regs, regs), regs::regs(st));
    }
    if valid & SYNC_SREGS != 0 {
        run.set_sync_regs(
            offset_of!(uapi::kvm_sync_regs, sregs),
            regs::sregs(vm, vcpu, st),
        );
    }
    if valid & SYNC_EVENTS != 0 {
        run.set_sync_regs(
            offset_of!(uapi::kvm_sync_regs, events),
            events::vcpu_events(vm, st),
        );
    }
}

/// KVM_RUN up to the sync registers' store.
fn run_once(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<isize> {
    let run = vcpu.run_page();
    // An AP that waits for INIT/SIPI: block, then let userspace retry
    // (EAGAIN), as upstream; with immediate_exit, EINTR at once.
    if st.mp_state.is_uninitialized() {
        if run.immediate_exit() {
            return Err(EINTR);
        }
        return match inject::wait_until_runnable_once(vm, vcpu, st) {
            Ok(true) => Err(EAGAIN),
            Ok(false) => {
                run.set_exit_reason(uapi::KVM_EXIT_INTR);
                Err(EINTR)
            }
            Err(e) => Err(e),
        };
    }
    let (valid, dirty) = (run.valid_regs(), run.dirty_regs());
    if (valid | dirty) & !SYNC_REGS_VALID != 0 {
        return Err(EINVAL);
    }
    if dirty != 0 {
        load_sync_regs(vm, vcpu, st, dirty)?;
    }
    // The CPU reloads the PDPTEs from memory when it runs.
    st.pdptrs.invalidate();
    // The emulator may touch XMM registers: guest FPU state first.
    st.fpu.load();
    trace::kvm_fpu(1);
    let r = match complete_userspace(vm, vcpu, st) {
        // The completion itself needs userspace again (e.g. the next
        // element of a REP MOVS to MMIO).
        Ok(Next::User) => Ok(()),
        // immediate_exit: EINTR with kvm_run's exit reason left as the
        // last exit's (upstream does not write it here; the selftests'
        // vcpu_run_complete_io() depends on that).
        Ok(Next::Guest) if run.immediate_exit() => Err(EINTR),
        Ok(Next::Guest) => run_loop(vm, vcpu, st),
        Err(e) => Err(e),
    };
    st.fpu.put();
    trace::kvm_fpu(0);
    report_common(vm, vcpu, st);
    let errno = r.err().map_or(0, |e| e.to_errno());
    trace::kvm_userspace_exit(run.exit_reason(), errno);
    r.map(|()| 0)
}

fn run_loop(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result {
    let run = vcpu.run_page();
    let kick = vcpu.kick();
    let stats = vcpu.stats();
    loop {
        if kernel::current!().signal_pending() {
            stats.signal_exits.inc();
            run.set_exit_reason(uapi::KVM_EXIT_INTR);
            return Err(EINTR);
        }
        cpu::cond_resched();
        // KVM_SET_VCPU_EVENTS' pending triple fault: shut down (the
        // vCPU is not reset, as upstream's KVM_REQ_TRIPLE_FAULT).
        if st.events.triple_fault() {
            st.events.set_triple_fault(false);
            run.set_exit_reason(uapi::KVM_EXIT_SHUTDOWN);
            return Ok(());
        }

        if !st.mp_state.is_runnable() {
            if !inject::wait_until_runnable(vm, vcpu, st)? {
                stats.signal_exits.inc();
                run.set_exit_reason(uapi::KVM_EXIT_INTR);
                return Err(EINTR);
            }
            continue;
        }
        let reqs = kick.take_requests();
        if reqs & REQ_TLB_FLUSH != 0 {
            stats.tlb_flush.inc();
            st.hw.flush_tlb();
        }
        inject::service_requests(vm, vcpu, st, reqs)?;
        if let Some((rip, write)) = st.lapic.take_tpr_report() {
            run.set_exit_reason(uapi::KVM_EXIT_TPR_ACCESS);
            run.set_tpr_access(rip, write);
            return Ok(());
        }
        if let Some(vector) = st.events.take_eoi_exit() {
            run.set_exit_reason(uapi::KVM_EXIT_IOAPIC_EOI);
            run.set_eoi_vector(vector);
            return Ok(());
        }
        if !st.mp_state.is_runnable() {
            continue;
        }
        kvmclock::update(vm, st);
        mmu::shadow::prepare_entry(vm, st)?;
        load_pdptrs(vm, st);
        inject::inject_pending_events(vm, vcpu, run, st);

        let window = EntryWindow::open();
        let must_exit = !kick.enter_guest_mode(window.cpu())
            || cpu::need_resched()
            || kernel::current!().signal_pending();
        if must_exit {
            kick.exit_guest_mode();
            continue;
        }
        // XCR0 is the guest's while it runs with CR4.OSXSAVE (validated by
        // XSETBV/KVM_SET_XCRS).
        let (guest_xcr0, host) = (st.msrs.xcr0(), host_xcr0());
        let xcr0 = (st.hw.cr4() & X86_CR4_OSXSAVE != 0 && guest_xcr0 != host)
            .then_some((guest_xcr0, host));
        st.has_run = true;
        if trace::kvm_entry_enabled() {
            let (intr_info, error_code) = st.hw.entry_info();
            trace::kvm_entry(
                vcpu.id(),
                st.hw.rip() as usize,
                false,
                intr_info,
                error_code,
            );
        }
        let exit = window.run_guest(xcr0, |cpu| st.hw.run(cpu));
        kick.exit_guest_mode();
        drop(window);
        stats.exits.inc();
        if trace::kvm_exit_enabled() {
            let [reason, info1, info2, intr_info, error_code] = st.hw.exit_info();
            trace::kvm_exit(
                reason as u32,
                st.hw.rip() as usize,
                vm.vendor().ops().trace_isa(),
                info1,
                info2,
                intr_info as u32,
                error_code as u32,
                vcpu.id(),
                kick.pending_requests(),
            );
        }

        inject::after_exit(vm, vcpu, st);
        match exits::handle_exit(vm, vcpu, st, exit)? {
            Next::Guest => {}
            Next::User => return Ok(()),
        }
        // Userspace PIC (no irqchip, or split): report the interrupt
        // window it asked for.
        if run.request_interrupt_window()
            && !vm.arch().irqchip().is_full()
            && ready_for_injection(vm, vcpu, st)
        {
            stats.request_irq_exits.inc();
            run.set_exit_reason(uapi::KVM_EXIT_IRQ_WINDOW_OPEN);
            return Ok(());
        }
    }
}

/// PAE paging entered from outside the guest: the vendor may need the
/// four PDPTEs from guest memory (upstream's load_pdptrs(); PDPTEs that
/// are not RAM read as not present).
fn load_pdptrs(vm: &Vm, st: &mut VcpuState) {
    if let Some(gpa) = st.hw.pdptrs_wanted() {
        let mut b = [0u8; 32];
        if !matches!(vm.mmu().read_guest(gpa, &mut b), Ok(true)) {
            b = [0; 32];
        }
        let mut p = [0u64; 4];
        for (i, e) in p.iter_mut().enumerate() {
            let mut q = [0u8; 8];
            q.copy_from_slice(&b[i * 8..i * 8 + 8]);
            *e = u64::from_le_bytes(q);
        }
        st.hw.set_pdptrs(p);
    }
}

/// Whether userspace may inject an interrupt now (upstream's
/// `ready_for_interrupt_injection`): always with the in-kernel PIC.
fn ready_for_injection(vm: &Vm, vcpu: &Vcpu, st: &VcpuState) -> bool {
    if vcpu.lapic().is_none() {
        st.events.irq().is_none() && st.hw.interrupt_allowed()
    } else if vm.arch().irqchip().is_split() {
        inject::split_ready_for_injection(vcpu, st)
    } else {
        true
    }
}

/// Fields of kvm_run that every return to userspace updates.
fn report_common(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) {
    let if_flag = st.hw.rflags() & X86_EFLAGS_IF != 0;
    let ready = ready_for_injection(vm, vcpu, st);
    // The in-kernel LAPIC's APIC_BASE when there is one.
    let apic_base = msrs::get(vm, vcpu, st, MSR_IA32_APICBASE, true).unwrap_or(0);
    vcpu.run_page().set_common(
        if_flag,
        ready,
        regs::cr8(vcpu, st),
        apic_base,
        st.hw.guest_mode(),
    );
}

/// Finishes what the last exit to userspace left open.
fn complete_userspace(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Result<Next> {
    match st.completion.take() {
        Pending::None => Ok(Next::Guest),
        Pending::PioIn {
            port,
            size,
            next_rip,
        } => {
            let mut b = [0u8; 8];
            vcpu.run_page()
                .read_pio(0, &mut b[..usize::from(size).min(8)]);
            let v = u64::from_le_bytes(b);
            trace::kvm_pio(0, port.into(), size.into(), 1, v as u32);
            let rax = &mut st.hw.gprs_mut()[RAX];
            *rax = merge_reg(*rax, v, size);
            Ok(exits::skip_to(vcpu, st, next_rip))
        }
        Pending::Emulator(w) => emulator_ops::complete(vm, vcpu, st, w),
        Pending::Msr { write } => {
            let (error, data) = vcpu.run_page().msr_result();
            if error {
                st.inject_exception(vector::GP, Some(0));
                return Ok(Next::Guest);
            }
            if !write {
                let g = st.hw.gprs_mut();
                g[RAX] = data & 0xffff_ffff;
                g[RDX] = data >> 32;
            }
            Ok(exits::skip(vm, vcpu, st, 2))
        }
        Pending::Hypercall { long_mode } => {
            let ret = vcpu.run_page().hypercall_ret();
            st.hw.gprs_mut()[RAX] = if long_mode { ret } else { ret & 0xffff_ffff };
            Ok(exits::skip(vm, vcpu, st, 3))
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

/// HLT: with an in-kernel LAPIC the vCPU sleeps in the kernel until an
/// interrupt; without, userspace's irqchip handles it (KVM_EXIT_HLT).
pub(crate) fn halt(vcpu: &Vcpu, st: &mut VcpuState) -> Next {
    if vcpu.lapic().is_some() {
        st.mp_state.halt();
        Next::Guest
    } else {
        vcpu.run_page().set_exit_reason(uapi::KVM_EXIT_HLT);
        Next::User
    }
}
