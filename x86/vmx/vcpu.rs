// SPDX-License-Identifier: GPL-2.0
//! A VMX vCPU: its VMCS, the world switch, and exit decoding.
//!
//! The guest state lives here, in memory, like SVM's VMCB: every entry
//! loads the VMCS (VMPTRLD), writes what changed since the last one, runs
//! the guest, reads back what the guest can change without an exit, and
//! clears the VMCS again (VMCLEAR). A vCPU thread may therefore migrate
//! between entries freely, no VMCS is ever left active on a CPU (so CPU
//! offline and module unload have nothing to flush), and every accessor
//! works on plain memory with interrupts and preemption on.

use crate::{
    host::{self, HostSave},
    params,
    vmcs::{
        self, ar, cpu as cpu_ctl, entry_ctl, ept_violation, field as f, intr, intr_state, io_qual,
        reason, sec as sec_ctl, Current, Vmcs,
    },
    vpid::Vpid,
    Shared,
};
use core::arch::asm;
use kernel::{page::Page, prelude::*, sync::Arc};
use kvm::defs::regs::{RDX, RSP};
use kvm::{
    defs::{
        msr::{
            MSR_CSTAR, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_CR_PAT,
            MSR_IA32_CR_PAT_DEFAULT, MSR_IA32_DEBUGCTLMSR, MSR_IA32_SYSENTER_CS,
            MSR_IA32_SYSENTER_EIP, MSR_IA32_SYSENTER_ESP, MSR_IA32_TSC, MSR_KERNEL_GS_BASE,
            MSR_LSTAR, MSR_STAR, MSR_SYSCALL_MASK, MSR_TSC_AUX,
        },
        regs::{
            DR6_ACTIVE_LOW, DR7_FIXED_1, EFER_LMA, EFER_LME, X86_CR0_CD, X86_CR0_MP, X86_CR0_NW,
            X86_CR0_PE, X86_CR0_PG, X86_CR0_RESET, X86_CR0_TS, X86_CR4_PAE, X86_CR4_PKE,
            X86_CR4_SMAP, X86_CR4_SMEP, X86_EFLAGS_IF,
        },
        vector::{
            AC_VECTOR, BP_VECTOR, DB_VECTOR, DF_VECTOR, MC_VECTOR, NMI_VECTOR, OF_VECTOR, UD_VECTOR,
        },
    },
    ext::{msr, uapi},
    x86::vendor::{
        Gpa, Gprs, InjectedEvent, InterruptShadow, IoExit, MsrAccess, Seg, VcpuArch, VmExit,
    },
};

extern "C" {
    /// The world switch, in vmenter.S: 0 after a VM exit, 1 on VMfail.
    fn rkvm_vmx_vcpu_run(gprs: *mut u64, resume: u64) -> i32;
}

fn rdtsc() -> u64 {
    kvm::ext::time::rdtsc()
}

/// CR0 bits the guest owns: its writes to them do not exit (upstream's
/// selective CR0 write intercept on SVM leaves the same two).
const CR0_GUEST_OWNED: u64 = X86_CR0_TS | X86_CR0_MP;
/// Exceptions always intercepted: #AC (an alignment-check loop must not
/// wedge the CPU), #UD (the other vendor's hypercall instruction is
/// handled by kvm.ko, as upstream's #UD emulation does) and #MC (the
/// host's machine-check handler runs).
const ALWAYS_INTERCEPTED: u32 = (1 << AC_VECTOR) | (1 << UD_VECTOR) | (1 << MC_VECTOR);
/// CR3 bits 31:5: the PDPT's address in PAE paging.
const PAE_PDPT_MASK: u64 = 0xffff_ffe0;
/// Reported as the FailEntry reason when VMPTRLD itself failed.
const VMPTRLD_FAILED: u64 = 0xdead;

/// Guest-state groups written to the VMCS at the next entry.
mod dirty {
    pub(super) const CR: u32 = 1 << 0;
    pub(super) const SEGS: u32 = 1 << 1;
    pub(super) const DTABLES: u32 = 1 << 2;
    pub(super) const DR7: u32 = 1 << 3;
    pub(super) const SYSENTER: u32 = 1 << 4;
    pub(super) const PAT: u32 = 1 << 5;
    pub(super) const TSC: u32 = 1 << 6;
    pub(super) const EXC: u32 = 1 << 7;
    pub(super) const PDPTR: u32 = 1 << 8;
    pub(super) const SEC_CTL: u32 = 1 << 9;
    pub(super) const ALL: u32 = u32::MAX;
}

/// A segment register as the VMCS holds it.
#[derive(Clone, Copy, Default)]
struct VmxSeg {
    selector: u16,
    base: u64,
    limit: u32,
    /// Access rights (`vmcs::ar`).
    ar: u32,
}

/// The guest state kept in memory between entries.
#[derive(Default)]
struct Guest {
    rip: u64,
    rflags: u64,
    /// CR0 and CR4 as the guest sees them (the read shadows).
    cr0: u64,
    cr3: u64,
    cr4: u64,
    cr2: u64,
    efer: u64,
    /// DR0-3 and DR6 are not switched in hardware (DR accesses exit).
    db: [u64; 4],
    dr6: u64,
    dr7: u64,
    segs: [VmxSeg; 8],
    gdtr: (u64, u32),
    idtr: (u64, u32),
    intr_state: u32,
    sysenter: [u64; 3],
    pat: u64,
    /// The PAE PDPTEs the CPU uses (with EPT, they come from the VMCS).
    pdptrs: [u64; 4],
}

/// An event to inject at the next entry (VM-entry interruption info).
#[derive(Clone, Copy, Default)]
struct Event {
    info: u32,
    err: u32,
    len: u32,
}

/// What the last exit reported.
#[derive(Clone, Copy, Default)]
struct Exit {
    /// The entry failed with VMfail (`vm_error` says why).
    vmfail: bool,
    vm_error: u32,
    reason: u32,
    qual: u64,
    intr_info: u32,
    intr_err: u32,
    idt_info: u32,
    idt_err: u32,
    insn_len: u32,
    insn_info: u32,
    gpa: u64,
    /// RIP at the exit.
    rip: u64,
}

/// MSRs kept in software and switched around the entry.
#[derive(Default)]
struct SwMsrs {
    star: u64,
    lstar: u64,
    cstar: u64,
    sfmask: u64,
    kernel_gs_base: u64,
    tsc_aux: u64,
    debugctl: u64,
}

/// Everything of a VMX vCPU but its VMCS.
struct State {
    shared: Arc<Shared>,
    vapic: Page,
    vpid: Vpid,
    eptp: u64,
    gprs: Gprs,
    g: Guest,
    msrs: SwMsrs,
    dirty: u32,
    initialized: bool,
    last_cpu: Option<u32>,
    flush_pending: bool,
    /// The PDPTEs must be read from guest memory before the next entry.
    pdptrs_stale: bool,
    exc_bitmap: u32,
    intr_window: bool,
    cr8_intercept: bool,
    /// Processor-based and secondary controls KVM_CAP_X86_DISABLE_EXITS
    /// turned off (HLT, MONITOR/MWAIT, PAUSE and pause-loop exiting).
    cpu_ctl_off: u32,
    sec_ctl_off: u32,
    entry: Event,
    tsc_offset: u64,
    exit: Exit,
    /// Length of the instruction behind the last software event (INT n,
    /// INT3, INTO), for injecting it again.
    event_inst_len: u32,
    /// Host values last written to the VMCS (rewritten when they change).
    host_cr3: u64,
    host_cr4: u64,
    host_fs: (u16, u16, u64),
}

/// A VMX vCPU.
pub(crate) struct VmxVcpu {
    vmcs: Vmcs,
    s: State,
}

// SAFETY: the VMCS, virtual-APIC page and state are only used by the
// thread holding the vCPU mutex.
unsafe impl Send for VmxVcpu {}

fn page_va(p: &Page) -> *mut u8 {
    // SAFETY: `p` is a live page; its direct-map address.
    unsafe { kvm::ext::bindings::rkvm_page_address(p.as_ptr()).cast() }
}

/// The virtual TPR: byte 0x80 of the virtual-APIC page.
const VTPR_OFFSET: usize = 0x80;

impl VmxVcpu {
    pub(crate) fn new(shared: Arc<Shared>, tdp_root: u64) -> Result<Self> {
        let vmcs = Vmcs::new(shared.cfg.revision)?;
        let vapic = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        let vpid = Vpid::allocate(shared.cfg.vpid());
        let mut s = State {
            eptp: tdp_root | vmcs::VMX_EPTP_PWL_4 | vmcs::VMX_EPTP_MT_WB,
            shared,
            vapic,
            vpid,
            gprs: Gprs::default(),
            g: Guest::default(),
            msrs: SwMsrs::default(),
            dirty: dirty::ALL,
            initialized: false,
            last_cpu: None,
            flush_pending: true,
            pdptrs_stale: false,
            exc_bitmap: ALWAYS_INTERCEPTED,
            intr_window: false,
            cr8_intercept: false,
            cpu_ctl_off: 0,
            sec_ctl_off: 0,
            entry: Event::default(),
            tsc_offset: 0u64.wrapping_sub(rdtsc()),
            exit: Exit::default(),
            event_inst_len: 0,
            host_cr3: 0,
            host_cr4: 0,
            host_fs: (0, 0, 0),
        };
        s.reset();
        Ok(Self { vmcs, s })
    }
}

fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn write_cr2(v: u64) {
    // SAFETY: CR2 only holds the last page-fault address; interrupts are
    // off, so no host page fault can read the guest's value.
    unsafe { asm!("mov cr2, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

fn read_dr6() -> u64 {
    let v: u64;
    // SAFETY: reading DR6 has no side effects.
    unsafe { asm!("mov {}, dr6", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn write_dr6(v: u64) {
    // SAFETY: DR6 only reports debug conditions; the host's #DB handler
    // resets it itself, and kvm.ko restores the host's debug registers
    // after the world switch.
    unsafe { asm!("mov dr6, {}", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn read_cr4() -> u64 {
    let v: u64;
    // SAFETY: reading CR4 has no side effects.
    unsafe { asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

impl State {
    fn vtpr(&self) -> u8 {
        // SAFETY: the virtual-APIC page is ours and mapped; the CPU writes
        // this byte only while the guest runs, on this thread.
        unsafe { page_va(&self.vapic).add(VTPR_OFFSET).read_volatile() }
    }

    fn set_vtpr(&mut self, v: u8) {
        // SAFETY: as in `vtpr`.
        unsafe { page_va(&self.vapic).add(VTPR_OFFSET).write_volatile(v) };
    }

    /// CR0 as the hardware runs it: NE and the other fixed bits set (PE
    /// and PG may be off with unrestricted guest), caching always on.
    fn hw_cr0(&self) -> u64 {
        let cfg = &self.shared.cfg;
        let fixed0 = cfg.cr0_fixed0 & !(X86_CR0_PE | X86_CR0_PG);
        ((self.g.cr0 & !(X86_CR0_CD | X86_CR0_NW)) | fixed0) & (cfg.cr0_fixed1 | fixed0)
    }

    /// CR4 as the hardware runs it: VMXE set; SMEP/SMAP/PKE off while the
    /// guest does not page (the CPU would apply them to its accesses).
    fn hw_cr4(&self) -> u64 {
        let cfg = &self.shared.cfg;
        let mut v = self.g.cr4 | cfg.cr4_fixed0;
        if self.g.cr0 & X86_CR0_PG == 0 {
            v &= !(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
        }
        v
    }

    /// EFER as the hardware runs it: LME only together with LMA.
    fn hw_efer(&self) -> u64 {
        if self.g.efer & EFER_LMA == 0 {
            self.g.efer & !EFER_LME
        } else {
            self.g.efer
        }
    }

    /// The first entry: every field that does not change.
    fn init_vmcs(&self, c: &Current<'_>) {
        let cfg = &self.shared.cfg;
        let h = &self.shared.host;
        c.write(f::VMCS_LINK_POINTER, vmcs::NO_LINK);
        c.write(f::PIN_BASED_VM_EXEC_CONTROL, u64::from(cfg.pin));
        c.write(f::SECONDARY_VM_EXEC_CONTROL, u64::from(cfg.sec));
        c.write(f::VM_EXIT_CONTROLS, u64::from(cfg.exit));
        for z in [
            f::VM_EXIT_MSR_STORE_COUNT,
            f::VM_EXIT_MSR_LOAD_COUNT,
            f::VM_ENTRY_MSR_LOAD_COUNT,
            f::PAGE_FAULT_ERROR_CODE_MASK,
            f::PAGE_FAULT_ERROR_CODE_MATCH,
            f::CR3_TARGET_COUNT,
            f::GUEST_ACTIVITY_STATE,
            f::GUEST_PENDING_DBG_EXCEPTIONS,
            f::GUEST_IA32_DEBUGCTL,
        ] {
            c.write(z, 0);
        }
        c.write(f::MSR_BITMAP, vmcs::phys(&self.shared.msr_bitmap));
        c.write(f::VIRTUAL_APIC_PAGE_ADDR, vmcs::phys(&self.vapic));
        c.write(f::EPT_POINTER, self.eptp);
        if cfg.ple() {
            c.write(f::PLE_GAP, u64::from(params::PLE_GAP.get()));
            c.write(f::PLE_WINDOW, u64::from(params::PLE_WINDOW.get()));
        }
        if self.vpid.get() != 0 {
            c.write(f::VIRTUAL_PROCESSOR_ID, u64::from(self.vpid.get()));
        }
        c.write(f::CR0_GUEST_HOST_MASK, !CR0_GUEST_OWNED);
        c.write(f::CR4_GUEST_HOST_MASK, u64::MAX);
        c.write(f::HOST_CR0, h.cr0);
        c.write(f::HOST_CS_SELECTOR, u64::from(h.cs));
        c.write(f::HOST_SS_SELECTOR, u64::from(h.ss));
        c.write(f::HOST_DS_SELECTOR, 0);
        c.write(f::HOST_ES_SELECTOR, 0);
        c.write(f::HOST_TR_SELECTOR, u64::from(h.tr));
        c.write(f::HOST_IDTR_BASE, h.idt_base);
        c.write(f::HOST_IA32_SYSENTER_CS, h.sysenter_cs);
        c.write(f::HOST_IA32_SYSENTER_EIP, h.sysenter_eip);
        c.write(f::HOST_IA32_PAT, h.pat);
        c.write(f::HOST_IA32_EFER, h.efer);
        if let Some(s_cet) = h.s_cet {
            c.write(f::HOST_S_CET, s_cet);
            for z in [
                f::HOST_SSP,
                f::HOST_INTR_SSP_TABLE,
                f::GUEST_S_CET,
                f::GUEST_SSP,
                f::GUEST_INTR_SSP_TABLE,
            ] {
                c.write(z, 0);
            }
        }
    }

    /// Everything before VMLAUNCH that needs the VMCS.
    fn prepare(&mut self, c: &Current<'_>, cpu: u32, hs: &HostSave) {
        if !self.initialized {
            self.init_vmcs(c);
            self.initialized = true;
            self.dirty = dirty::ALL;
            self.host_cr3 = 0;
            self.host_cr4 = 0;
            self.host_fs = (u16::MAX, u16::MAX, u64::MAX);
        }
        if self.last_cpu != Some(cpu) || self.dirty == dirty::ALL {
            // A CPU we have not run on since: its TLB may hold stale
            // translations of ours, and the host's per-CPU state differs.
            self.last_cpu = Some(cpu);
            self.flush_pending = true;
            let cpu = cpu as i32;
            // SAFETY: plain reads of `cpu`'s per-CPU addresses.
            let (tr, gdt, gs, esp) = unsafe {
                (
                    host::rkvm_vmx_host_tr_base(cpu),
                    host::rkvm_vmx_host_gdt_base(cpu),
                    host::rkvm_vmx_host_gs_base(cpu),
                    host::rkvm_vmx_host_sysenter_esp(cpu),
                )
            };
            c.write(f::HOST_TR_BASE, tr);
            c.write(f::HOST_GDTR_BASE, gdt);
            c.write(f::HOST_GS_BASE, gs);
            c.write(f::HOST_IA32_SYSENTER_ESP, esp);
        }
        let (cr3, cr4) = (read_cr3(), read_cr4());
        if cr3 != self.host_cr3 {
            c.write(f::HOST_CR3, cr3);
            self.host_cr3 = cr3;
        }
        if cr4 != self.host_cr4 {
            c.write(f::HOST_CR4, cr4);
            self.host_cr4 = cr4;
        }
        let fs = (hs.fs_sel, hs.gs_sel, hs.fs_base);
        if fs != self.host_fs {
            let sel = |s: u16| if s & 7 == 0 { u64::from(s) } else { 0 };
            c.write(f::HOST_FS_SELECTOR, sel(hs.fs_sel));
            c.write(f::HOST_GS_SELECTOR, sel(hs.gs_sel));
            c.write(f::HOST_FS_BASE, hs.fs_base);
            self.host_fs = fs;
        }
        if self.flush_pending {
            self.flush_pending = false;
            let cfg = &self.shared.cfg;
            // SAFETY: VMX root operation (a VMCS is current); INVEPT of the
            // kind the CPU supports (checked at load).
            unsafe {
                if cfg.invept_context {
                    vmcs::invept(vmcs::VMX_EPT_EXTENT_CONTEXT, self.eptp);
                } else {
                    vmcs::invept(vmcs::VMX_EPT_EXTENT_GLOBAL, 0);
                }
            }
        }
        self.write_guest(c);
    }

    /// Writes the guest state that changed since the last entry, and the
    /// fields written every time.
    fn write_guest(&mut self, c: &Current<'_>) {
        let d = self.dirty;
        self.dirty = 0;
        let g = &self.g;
        if d & dirty::CR != 0 {
            c.write(f::GUEST_CR0, self.hw_cr0());
            c.write(f::CR0_READ_SHADOW, g.cr0);
            c.write(f::GUEST_CR4, self.hw_cr4());
            c.write(f::CR4_READ_SHADOW, g.cr4);
            c.write(f::GUEST_CR3, g.cr3);
            c.write(f::GUEST_IA32_EFER, self.hw_efer());
            let ia32e = if g.efer & EFER_LMA != 0 {
                entry_ctl::IA32E_MODE
            } else {
                0
            };
            c.write(
                f::VM_ENTRY_CONTROLS,
                u64::from(self.shared.cfg.entry | ia32e),
            );
        }
        if d & dirty::SEGS != 0 {
            for (i, s) in g.segs.iter().enumerate() {
                let [sel, limit, ar, base] = f::guest_seg(i);
                c.write(sel, u64::from(s.selector));
                c.write(limit, u64::from(s.limit));
                c.write(ar, u64::from(s.ar));
                c.write(base, s.base);
            }
        }
        if d & dirty::DTABLES != 0 {
            c.write(f::GUEST_GDTR_BASE, g.gdtr.0);
            c.write(f::GUEST_GDTR_LIMIT, u64::from(g.gdtr.1));
            c.write(f::GUEST_IDTR_BASE, g.idtr.0);
            c.write(f::GUEST_IDTR_LIMIT, u64::from(g.idtr.1));
        }
        if d & dirty::DR7 != 0 {
            c.write(f::GUEST_DR7, g.dr7);
        }
        if d & dirty::SYSENTER != 0 {
            c.write(f::GUEST_SYSENTER_CS, g.sysenter[0]);
            c.write(f::GUEST_SYSENTER_ESP, g.sysenter[1]);
            c.write(f::GUEST_SYSENTER_EIP, g.sysenter[2]);
        }
        if d & dirty::PAT != 0 {
            c.write(f::GUEST_IA32_PAT, g.pat);
        }
        if d & dirty::TSC != 0 {
            c.write(f::TSC_OFFSET, self.tsc_offset);
        }
        if d & dirty::SEC_CTL != 0 {
            let sec = self.shared.cfg.sec & !self.sec_ctl_off;
            c.write(f::SECONDARY_VM_EXEC_CONTROL, u64::from(sec));
        }
        if d & dirty::EXC != 0 {
            c.write(f::EXCEPTION_BITMAP, u64::from(self.exc_bitmap));
        }
        if d & dirty::PDPTR != 0 && self.pae_paging() {
            for (i, p) in g.pdptrs.iter().enumerate() {
                c.write(f::GUEST_PDPTR0 + 2 * i as u32, *p);
            }
        }
        c.write(f::GUEST_RIP, g.rip);
        c.write(f::GUEST_RSP, self.gprs[RSP]);
        c.write(f::GUEST_RFLAGS, g.rflags);
        c.write(f::GUEST_INTERRUPTIBILITY_INFO, u64::from(g.intr_state));

        let mut ctl = self.shared.cfg.cpu & !self.cpu_ctl_off;
        if self.intr_window {
            ctl |= cpu_ctl::INTR_WINDOW_EXITING;
        }
        // Exit when the guest's NMI handler returns (as kvm-amd's IRET
        // intercept), so a pending NMI can be injected then.
        if g.intr_state & intr_state::NMI != 0
            || self.entry.info & intr::TYPE_MASK == intr::TYPE_NMI
        {
            ctl |= cpu_ctl::NMI_WINDOW_EXITING;
        }
        c.write(f::CPU_BASED_VM_EXEC_CONTROL, u64::from(ctl));
        // A CR8 write below the current TPR exits (TPR below threshold).
        let threshold = if self.cr8_intercept {
            self.vtpr() >> 4
        } else {
            0
        };
        c.write(f::TPR_THRESHOLD, u64::from(threshold));

        let mut e = self.entry;
        // Real-mode exceptions push no error code (upstream strips it when
        // injecting, in kvm_inject_exception()).
        if self.g.cr0 & X86_CR0_PE == 0 {
            e.info &= !intr::DELIVER_CODE;
        }
        c.write(f::VM_ENTRY_INTR_INFO_FIELD, u64::from(e.info));
        if e.info & intr::VALID != 0 {
            if e.info & intr::DELIVER_CODE != 0 {
                // VMX delivers 16 bits of it (bits 31:16 must be 0).
                c.write(f::VM_ENTRY_EXCEPTION_ERROR_CODE, u64::from(e.err as u16));
            }
            if is_soft(e.info) {
                c.write(f::VM_ENTRY_INSTRUCTION_LEN, u64::from(e.len));
            }
        }
    }

    /// After the exit: what happened, and the guest state the guest can
    /// change without exiting.
    fn read_exit(&mut self, c: &Current<'_>, vmfail: bool) {
        let mut x = Exit {
            vmfail,
            ..Exit::default()
        };
        if vmfail {
            x.vm_error = c.read32(f::VM_INSTRUCTION_ERROR);
            x.rip = self.g.rip;
            self.exit = x;
            return;
        }
        x.reason = c.read32(f::VM_EXIT_REASON);
        x.qual = c.read(f::EXIT_QUALIFICATION);
        x.intr_info = c.read32(f::VM_EXIT_INTR_INFO);
        if x.intr_info & (intr::VALID | intr::DELIVER_CODE) == intr::VALID | intr::DELIVER_CODE {
            x.intr_err = c.read32(f::VM_EXIT_INTR_ERROR_CODE);
        }
        let failed = x.reason & reason::FAILED_VMENTRY != 0;
        if !failed {
            x.idt_info = c.read32(f::IDT_VECTORING_INFO_FIELD);
            if x.idt_info & (intr::VALID | intr::DELIVER_CODE) == intr::VALID | intr::DELIVER_CODE {
                x.idt_err = c.read32(f::IDT_VECTORING_ERROR_CODE);
            }
        }
        x.insn_len = c.read32(f::VM_EXIT_INSTRUCTION_LEN);
        match x.reason {
            reason::IO_INSTRUCTION => x.insn_info = c.read32(f::VMX_INSTRUCTION_INFO),
            reason::EPT_VIOLATION | reason::EPT_MISCONFIG => {
                x.gpa = c.read(f::GUEST_PHYSICAL_ADDRESS)
            }
            _ => {}
        }

        let g = &mut self.g;
        g.rip = c.read(f::GUEST_RIP);
        self.gprs[RSP] = c.read(f::GUEST_RSP);
        g.rflags = c.read(f::GUEST_RFLAGS);
        g.intr_state = c.read32(f::GUEST_INTERRUPTIBILITY_INFO);
        g.cr0 = (g.cr0 & !CR0_GUEST_OWNED) | (c.read(f::GUEST_CR0) & CR0_GUEST_OWNED);
        g.cr3 = c.read(f::GUEST_CR3);
        for (i, s) in g.segs.iter_mut().enumerate() {
            let [sel, limit, ar, base] = f::guest_seg(i);
            s.selector = c.read(sel) as u16;
            s.limit = c.read32(limit);
            s.ar = c.read32(ar);
            s.base = c.read(base);
        }
        g.gdtr = (c.read(f::GUEST_GDTR_BASE), c.read32(f::GUEST_GDTR_LIMIT));
        g.idtr = (c.read(f::GUEST_IDTR_BASE), c.read32(f::GUEST_IDTR_LIMIT));
        x.rip = g.rip;
        // A guest MOV to CR3 in PAE paging loads new PDPTEs; the exit
        // saves them.
        if self.pae_paging() {
            for i in 0..4 {
                self.g.pdptrs[i] = c.read(f::GUEST_PDPTR0 + 2 * i as u32);
            }
        }
        self.exit = x;

        if failed {
            // Nothing was delivered: the event stays queued.
            return;
        }
        // An event being delivered when the exit happened is delivered
        // again (software events with their instruction length).
        self.entry = Event::default();
        let idt = x.idt_info;
        if idt & intr::VALID != 0 {
            let info = idt & (intr::VALID | intr::TYPE_MASK | intr::VECTOR | intr::DELIVER_CODE);
            self.entry = Event {
                info,
                err: x.idt_err,
                len: x.insn_len,
            };
            if is_soft(info) {
                self.event_inst_len = x.insn_len;
            }
            if info & intr::TYPE_MASK == intr::TYPE_NMI {
                // SDM 27.7.1.2: the NMI was not delivered; not blocked yet.
                self.g.intr_state &= !intr_state::NMI;
            }
        } else {
            // An IRET that unblocked NMIs faulted (or hit an EPT
            // violation): it runs again, with NMIs blocked again.
            let unblocked = match x.reason {
                reason::EXCEPTION_NMI => {
                    x.intr_info & intr::UNBLOCK_NMI != 0
                        && (x.intr_info & intr::VECTOR) as u8 != DF_VECTOR
                }
                reason::EPT_VIOLATION => x.qual & ept_violation::NMI_UNBLOCK != 0,
                _ => false,
            };
            if unblocked {
                self.g.intr_state |= intr_state::NMI;
            }
        }
    }

    /// The exit was caused by an NMI (the host's: run its handler).
    fn exit_is_nmi(&self) -> bool {
        let x = &self.exit;
        !x.vmfail
            && x.reason == reason::EXCEPTION_NMI
            && x.intr_info & (intr::VALID | intr::TYPE_MASK) == intr::VALID | intr::TYPE_NMI
    }

    /// The exit was caused by a machine check (the host's to handle).
    fn exit_is_mce(&self) -> bool {
        let x = &self.exit;
        let mc = intr::VALID | intr::TYPE_HARD_EXCEPTION | u32::from(MC_VECTOR);
        !x.vmfail
            && (x.reason & !reason::FAILED_VMENTRY == reason::MCE_DURING_VMENTRY
                || (x.reason == reason::EXCEPTION_NMI
                    && x.intr_info & (intr::VALID | intr::TYPE_MASK | intr::VECTOR) == mc))
    }

    fn skip_instruction(&mut self) {
        self.g.rip = self.exit.rip.wrapping_add(u64::from(self.exit.insn_len));
        self.g.intr_state &= !(intr_state::STI | intr_state::MOV_SS);
    }

    fn inject_ud(&mut self) -> VmExit {
        self.entry = Event {
            info: intr::VALID | intr::TYPE_HARD_EXCEPTION | u32::from(UD_VECTOR),
            ..Event::default()
        };
        VmExit::None
    }

    fn decode_exit(&mut self) -> VmExit {
        let x = self.exit;
        if x.vmfail {
            return VmExit::FailEntry {
                reason: u64::from(x.vm_error),
            };
        }
        if x.reason & reason::FAILED_VMENTRY != 0 {
            return VmExit::FailEntry {
                reason: u64::from(x.reason),
            };
        }
        match x.reason {
            reason::EXTERNAL_INTERRUPT
            | reason::INIT_SIGNAL
            | reason::SIPI_SIGNAL
            | reason::OTHER_SMI
            | reason::TPR_BELOW_THRESHOLD => VmExit::None,
            reason::EXCEPTION_NMI => self.decode_exception(),
            reason::TRIPLE_FAULT => VmExit::Shutdown,
            reason::INTERRUPT_WINDOW => {
                self.intr_window = false;
                VmExit::InterruptWindow
            }
            // The NMI-window exit is cleared at the next entry unless NMIs
            // are still blocked.
            reason::NMI_WINDOW => VmExit::None,
            reason::CPUID => VmExit::Cpuid,
            reason::HLT => VmExit::Hlt,
            reason::INVD | reason::WBINVD => VmExit::Wbinvd,
            reason::INVLPG => VmExit::Invlpg,
            reason::RDPMC => VmExit::Rdpmc,
            reason::RDTSCP => VmExit::Rdtscp,
            reason::VMCALL => VmExit::Hypercall,
            reason::XSETBV => VmExit::Xsetbv,
            reason::MWAIT_INSTRUCTION | reason::MONITOR_INSTRUCTION => VmExit::MonitorMwait,
            reason::MSR_READ => VmExit::Msr { write: false },
            reason::MSR_WRITE => VmExit::Msr { write: true },
            // CR0/CR4 writes, LMSW and MOV DR go through the core's checks
            // and the emulator, as on kvm-amd without decode assists.
            reason::CR_ACCESS | reason::DR_ACCESS => VmExit::Emulate,
            reason::IO_INSTRUCTION => VmExit::Io(self.decode_io()),
            reason::EPT_VIOLATION => VmExit::TdpFault {
                gpa: Gpa::new(x.gpa),
                write: x.qual & ept_violation::DATA_WRITE != 0,
                insn_len: 0,
                insn: [0; 15],
            },
            // rkvm never writes a misconfigured EPT entry: treat it as a
            // fault on the address (MMIO or a page to map).
            reason::EPT_MISCONFIG => VmExit::TdpFault {
                gpa: Gpa::new(x.gpa),
                write: false,
                insn_len: 0,
                insn: [0; 15],
            },
            reason::PAUSE_INSTRUCTION => {
                self.skip_instruction();
                VmExit::None
            }
            // No nested VMX: the VMX instructions, GETSEC and the rest
            // raise #UD.
            reason::GETSEC
            | reason::VMCLEAR..=reason::VMON
            | reason::INVEPT
            | reason::INVVPID
            | reason::VMFUNC
            | reason::ENCLS
            | reason::RDRAND
            | reason::RDSEED
            | reason::INVPCID
            | reason::XSAVES
            | reason::XRSTORS
            | reason::UMWAIT
            | reason::TPAUSE => self.inject_ud(),
            // RDTSC (not intercepted), task switches, ...: userspace gets
            // KVM_EXIT_INTERNAL_ERROR.
            _ => VmExit::Unknown {
                code: u64::from(x.reason),
                info1: x.qual,
                info2: u64::from(x.idt_info),
            },
        }
    }

    fn decode_exception(&mut self) -> VmExit {
        let x = self.exit;
        let info = x.intr_info;
        if info & intr::VALID == 0 || info & intr::TYPE_MASK == intr::TYPE_NMI {
            return VmExit::None;
        }
        let vector = (info & intr::VECTOR) as u8;
        // The host handled it after the exit; the guest does not see it.
        if vector == MC_VECTOR && info & intr::TYPE_MASK == intr::TYPE_HARD_EXCEPTION {
            return VmExit::None;
        }
        if is_soft(info) {
            self.event_inst_len = x.insn_len;
        }
        let mut ex_info = 0;
        if vector == DB_VECTOR {
            // The exit qualification holds the DR6 bits of the #DB.
            self.g.dr6 = (self.g.dr6 & !0xf) | DR6_ACTIVE_LOW | x.qual;
            ex_info = self.g.dr6;
        }
        VmExit::Exception {
            vector,
            error_code: (info & intr::DELIVER_CODE != 0).then_some(x.intr_err),
            info: ex_info,
        }
    }

    fn decode_io(&self) -> IoExit {
        let x = &self.exit;
        let q = x.qual;
        let string = q & io_qual::STRING != 0;
        // Address size: from the instruction information (bits 9:7), or
        // the code segment's default when the CPU does not report it.
        let addr_size = if string && self.shared.cfg.inout_info {
            match (x.insn_info >> 7) & 7 {
                0 => 2,
                1 => 4,
                _ => 8,
            }
        } else {
            let cs = self.g.segs[Seg::Cs as usize].ar;
            if cs & ar::L != 0 && self.g.efer & EFER_LMA != 0 {
                8
            } else if cs & ar::DB != 0 {
                4
            } else {
                2
            }
        };
        IoExit {
            port: (q >> io_qual::PORT_LSB) as u16,
            size: ((q & io_qual::SIZE_MASK) + 1) as u8,
            input: q & io_qual::IN != 0,
            string,
            rep: q & io_qual::REP != 0,
            addr_size,
            next_rip: x.rip.wrapping_add(u64::from(x.insn_len)),
        }
    }

    /// Guest view of RIP after the last exit's instruction, for exits that
    /// are caused by an instruction (the CPU reports its length).
    fn next_rip(&self) -> Option<u64> {
        let x = &self.exit;
        if x.vmfail || x.reason & reason::FAILED_VMENTRY != 0 {
            return None;
        }
        let by_insn = matches!(
            x.reason,
            reason::CPUID
                | reason::HLT
                | reason::INVD
                | reason::INVLPG
                | reason::RDPMC
                | reason::RDTSC
                | reason::VMCALL
                | reason::CR_ACCESS
                | reason::DR_ACCESS
                | reason::IO_INSTRUCTION
                | reason::MSR_READ
                | reason::MSR_WRITE
                | reason::MWAIT_INSTRUCTION
                | reason::MONITOR_INSTRUCTION
                | reason::PAUSE_INSTRUCTION
                | reason::RDTSCP
                | reason::WBINVD
                | reason::XSETBV
        );
        (by_insn && x.insn_len != 0).then(|| x.rip.wrapping_add(u64::from(x.insn_len)))
    }

    fn reset(&mut self) {
        self.gprs = Gprs::default();
        // RDX holds the processor signature after reset.
        self.gprs[RDX] = 0x600;
        let data = ar::P | ar::S | 0x3;
        let seg = |selector: u16, base: u64, ar: u32| VmxSeg {
            selector,
            base,
            limit: 0xffff,
            ar,
        };
        let g = &mut self.g;
        g.segs[Seg::Cs as usize] = seg(0xf000, 0xffff_0000, ar::P | ar::S | 0xb);
        for s in [Seg::Ds, Seg::Es, Seg::Fs, Seg::Gs, Seg::Ss] {
            g.segs[s as usize] = seg(0, 0, data);
        }
        g.segs[Seg::Ldtr as usize] = seg(0, 0, ar::P | 0x2);
        g.segs[Seg::Tr as usize] = seg(0, 0, ar::P | 0xb);
        g.gdtr = (0, 0xffff);
        g.idtr = (0, 0xffff);
        g.rip = 0xfff0;
        g.rflags = 2;
        g.cr0 = X86_CR0_RESET;
        g.cr2 = 0;
        g.cr3 = 0;
        g.cr4 = 0;
        g.efer = 0;
        g.db = [0; 4];
        g.dr6 = DR6_ACTIVE_LOW;
        g.dr7 = DR7_FIXED_1;
        g.intr_state = 0;
        g.sysenter = [0; 3];
        g.pat = MSR_IA32_CR_PAT_DEFAULT;
        g.pdptrs = [0; 4];
        self.pdptrs_stale = false;
        self.msrs = SwMsrs::default();
        self.entry = Event::default();
        self.intr_window = false;
        self.cr8_intercept = false;
        self.set_vtpr(0);
        self.flush_pending = true;
        self.dirty = dirty::ALL;
    }

    /// Loads the guest's SYSCALL MSRs and TSC_AUX (kept until the CPU
    /// returns to userspace) and its KERNEL_GS_BASE (until the exit).
    fn msrs_to_guest(&self) {
        let m = &self.msrs;
        for (slot, v) in [
            (host::URET_STAR, m.star),
            (host::URET_LSTAR, m.lstar),
            (host::URET_CSTAR, m.cstar),
            (host::URET_SYSCALL_MASK, m.sfmask),
        ] {
            // SAFETY: interrupts are off; the slot exists.
            unsafe { host::rkvm_vmx_uret_set(slot, v) };
        }
        if self.shared.cfg.rdtscp() {
            // SAFETY: as above.
            unsafe { host::rkvm_vmx_uret_set(host::URET_TSC_AUX, m.tsc_aux) };
        }
        msr::write(MSR_KERNEL_GS_BASE, m.kernel_gs_base);
    }

    /// After the exit: the guest's KERNEL_GS_BASE (the host's is put back
    /// with the host's segments).
    fn msrs_to_host(&mut self) {
        self.msrs.kernel_gs_base = msr::read(MSR_KERNEL_GS_BASE);
    }

    /// PAE paging: CR0.PG, CR4.PAE, not long mode.
    fn pae_paging(&self) -> bool {
        self.g.cr0 & X86_CR0_PG != 0 && self.g.cr4 & X86_CR4_PAE != 0 && self.g.efer & EFER_LMA == 0
    }

    /// CR0/CR3/CR4/EFER changed from outside the guest.
    fn paging_changed(&mut self) {
        self.dirty |= dirty::CR;
        self.pdptrs_stale = self.pae_paging();
    }

    fn cpl(&self) -> u8 {
        ((self.g.segs[Seg::Ss as usize].ar >> ar::DPL_LSB) & 3) as u8
    }

    fn set_efer(&mut self, efer: u64) {
        self.g.efer = efer;
        self.paging_changed();
    }
}

/// Software interrupts and exceptions need an instruction length.
fn is_soft(info: u32) -> bool {
    matches!(
        info & intr::TYPE_MASK,
        intr::TYPE_SOFT_INTR | intr::TYPE_PRIV_SW_EXCEPTION | intr::TYPE_SOFT_EXCEPTION
    )
}

impl VcpuArch for VmxVcpu {
    fn set_disabled_exits(&mut self, exits: u64) {
        let has = |bit: u32| exits & u64::from(bit) != 0;
        let s = &mut self.s;
        if has(uapi::KVM_X86_DISABLE_EXITS_HLT) {
            s.cpu_ctl_off |= cpu_ctl::HLT_EXITING;
        }
        if has(uapi::KVM_X86_DISABLE_EXITS_MWAIT) {
            s.cpu_ctl_off |= cpu_ctl::MWAIT_EXITING | cpu_ctl::MONITOR_EXITING;
        }
        if has(uapi::KVM_X86_DISABLE_EXITS_PAUSE) {
            s.cpu_ctl_off |= cpu_ctl::PAUSE_EXITING;
            s.sec_ctl_off |= sec_ctl::PAUSE_LOOP_EXITING;
        }
        // C-states need nothing from VMX.
        s.dirty |= dirty::SEC_CTL;
    }

    fn run(&mut self, cpu: u32) -> VmExit {
        let Self { vmcs, s } = self;
        // SAFETY: kvm.ko calls `run` on `cpu` with interrupts off until it
        // returns; VMX is on on every online CPU while kvm-intel is
        // registered (x86_virt_get_ref); the VMCS is clear (every entry
        // ends with VMCLEAR), so it is active on no other CPU.
        let cur = match unsafe { vmcs.load() } {
            Ok(c) => c,
            Err(_) => {
                return VmExit::FailEntry {
                    reason: VMPTRLD_FAILED,
                }
            }
        };
        let mut hs = HostSave::default();
        // SAFETY: interrupts are off; fills `hs`.
        unsafe { host::rkvm_vmx_host_save(&mut hs) };
        s.prepare(&cur, cpu, &hs);
        s.msrs_to_guest();
        if read_cr2() != s.g.cr2 {
            write_cr2(s.g.cr2);
        }
        if s.g.dr6 != DR6_ACTIVE_LOW {
            write_dr6(s.g.dr6);
        }
        // SAFETY: our VMCS is current and fully set up; `gprs` has 16
        // slots; interrupts are off.
        let vmfail = unsafe { rkvm_vmx_vcpu_run(s.gprs.0.as_mut_ptr(), 0) } != 0;
        s.g.cr2 = read_cr2();
        let dr6 = read_dr6();
        if dr6 != DR6_ACTIVE_LOW {
            s.g.dr6 = dr6;
            write_dr6(DR6_ACTIVE_LOW);
        }
        s.msrs_to_host();
        // SAFETY: `hs` was filled before the entry, on this CPU.
        unsafe { host::rkvm_vmx_host_restore(&hs) };
        s.read_exit(&cur, vmfail);
        drop(cur);
        if s.exit_is_nmi() {
            // SAFETY: an NMI exited the guest; NMIs are blocked until the
            // handler's IRET, as the kernel's NMI entry expects.
            unsafe { host::rkvm_vmx_host_nmi() };
        } else if s.exit_is_mce() {
            // SAFETY: a machine check exited the guest; interrupts are off.
            unsafe { host::rkvm_vmx_host_mce() };
        }
        s.decode_exit()
    }

    fn gprs(&self) -> &Gprs {
        &self.s.gprs
    }
    fn gprs_mut(&mut self) -> &mut Gprs {
        &mut self.s.gprs
    }
    fn rip(&self) -> u64 {
        self.s.g.rip
    }
    fn set_rip(&mut self, rip: u64) {
        self.s.g.rip = rip;
    }
    fn rflags(&self) -> u64 {
        self.s.g.rflags
    }
    fn set_rflags(&mut self, rflags: u64) {
        self.s.g.rflags = rflags;
    }
    fn next_rip(&self) -> Option<u64> {
        self.s.next_rip()
    }
    fn skip_to(&mut self, next_rip: u64) {
        self.s.g.rip = next_rip;
        self.s.g.intr_state &= !(intr_state::STI | intr_state::MOV_SS);
    }

    fn get_sregs(&self, s: &mut uapi::kvm_sregs) {
        self.get_sregs_segments(s);
        let g = &self.s.g;
        s.cr0 = g.cr0;
        s.cr2 = g.cr2;
        s.cr3 = g.cr3;
        s.cr4 = g.cr4;
        s.efer = g.efer;
    }

    fn set_sregs(&mut self, s: &uapi::kvm_sregs) -> Result {
        self.set_sregs_segments(s);
        let st = &mut self.s;
        st.g.cr0 = s.cr0;
        st.g.cr2 = s.cr2;
        st.g.cr3 = s.cr3;
        st.g.cr4 = s.cr4;
        st.set_efer(s.efer);
        st.flush_pending = true;
        Ok(())
    }

    fn segment(&self, seg: Seg) -> uapi::kvm_segment {
        let s = &self.s.g.segs[seg as usize];
        let a = s.ar;
        let unusable = u8::from(a & ar::UNUSABLE != 0);
        uapi::kvm_segment {
            base: s.base,
            limit: s.limit,
            selector: s.selector,
            type_: (a & ar::TYPE) as u8,
            // A usable segment is present (upstream's vmx_get_segment).
            present: 1 - unusable,
            dpl: ((a >> ar::DPL_LSB) & 3) as u8,
            db: u8::from(a & ar::DB != 0),
            s: u8::from(a & ar::S != 0),
            l: u8::from(a & ar::L != 0),
            g: u8::from(a & ar::G != 0),
            avl: u8::from(a & ar::AVL != 0),
            unusable,
            padding: 0,
        }
    }

    fn set_segment(&mut self, seg: Seg, v: &uapi::kvm_segment) {
        let mut ty = u32::from(v.type_) & ar::TYPE;
        // Upstream's fix for older QEMUs: usable segments are accessed
        // (VM entry with unrestricted guest requires it), but the LDTR.
        if seg != Seg::Ldtr {
            ty |= ar::TYPE_ACCESSED;
        }
        let unusable = v.unusable != 0 || v.present == 0;
        let a = ty
            | (u32::from(v.s & 1) << 4)
            | (u32::from(v.dpl & 3) << ar::DPL_LSB)
            | (u32::from(v.present & 1) << 7)
            | (u32::from(v.avl & 1) << 12)
            | (u32::from(v.l & 1) << 13)
            | (u32::from(v.db & 1) << 14)
            | (u32::from(v.g & 1) << 15)
            | if unusable { ar::UNUSABLE } else { 0 };
        let st = &mut self.s;
        st.g.segs[seg as usize] = VmxSeg {
            selector: v.selector,
            base: v.base,
            limit: v.limit,
            ar: a,
        };
        st.dirty |= dirty::SEGS;
    }

    fn dtable(&self, idt: bool) -> uapi::kvm_dtable {
        let g = &self.s.g;
        let (base, limit) = if idt { g.idtr } else { g.gdtr };
        uapi::kvm_dtable {
            base,
            limit: limit as u16,
            padding: [0; 3],
        }
    }

    fn set_dtable(&mut self, idt: bool, d: &uapi::kvm_dtable) {
        let g = &mut self.s.g;
        let t = (d.base, u32::from(d.limit));
        if idt {
            g.idtr = t;
        } else {
            g.gdtr = t;
        }
        self.s.dirty |= dirty::DTABLES;
    }

    fn set_cr(&mut self, n: u8, val: u64) {
        let st = &mut self.s;
        let g = &mut st.g;
        match n {
            0 => {
                // Entering/leaving paging with EFER.LME switches LMA.
                if g.efer & EFER_LME != 0 {
                    if g.cr0 & X86_CR0_PG == 0 && val & X86_CR0_PG != 0 {
                        g.efer |= EFER_LMA;
                    } else if g.cr0 & X86_CR0_PG != 0 && val & X86_CR0_PG == 0 {
                        g.efer &= !EFER_LMA;
                    }
                }
                g.cr0 = val;
            }
            3 => g.cr3 = val,
            4 => g.cr4 = val,
            _ => return,
        }
        st.paging_changed();
    }

    fn cr0(&self) -> u64 {
        self.s.g.cr0
    }
    fn cr2(&self) -> u64 {
        self.s.g.cr2
    }
    fn set_cr2(&mut self, val: u64) {
        self.s.g.cr2 = val;
    }
    fn cr3(&self) -> u64 {
        self.s.g.cr3
    }
    fn cr4(&self) -> u64 {
        self.s.g.cr4
    }
    fn efer(&self) -> u64 {
        self.s.g.efer
    }
    fn cpl(&self) -> u8 {
        self.s.cpl()
    }

    fn dr(&self, n: u8) -> u64 {
        let g = &self.s.g;
        match n {
            0..=3 => g.db[usize::from(n)],
            4 | 6 => g.dr6,
            _ => g.dr7,
        }
    }

    fn set_dr(&mut self, n: u8, val: u64) {
        let st = &mut self.s;
        match n {
            0..=3 => st.g.db[usize::from(n)] = val,
            4 | 6 => st.g.dr6 = val | DR6_ACTIVE_LOW,
            _ => {
                st.g.dr7 = val | DR7_FIXED_1;
                st.dirty |= dirty::DR7;
            }
        }
    }

    fn set_interrupt_shadow(&mut self, kind: InterruptShadow) {
        let s = &mut self.s.g.intr_state;
        *s &= !(intr_state::STI | intr_state::MOV_SS);
        *s |= match kind {
            InterruptShadow::Sti => intr_state::STI,
            InterruptShadow::MovSs => intr_state::MOV_SS,
        };
    }

    fn get_msr(&mut self, index: u32) -> MsrAccess {
        let st = &self.s;
        let (g, m) = (&st.g, &st.msrs);
        MsrAccess::Done(match index {
            MSR_EFER => g.efer,
            MSR_STAR => m.star,
            MSR_LSTAR => m.lstar,
            MSR_CSTAR => m.cstar,
            MSR_SYSCALL_MASK => m.sfmask,
            MSR_KERNEL_GS_BASE => m.kernel_gs_base,
            MSR_FS_BASE => g.segs[Seg::Fs as usize].base,
            MSR_GS_BASE => g.segs[Seg::Gs as usize].base,
            MSR_IA32_SYSENTER_CS => g.sysenter[0],
            MSR_IA32_SYSENTER_ESP => g.sysenter[1],
            MSR_IA32_SYSENTER_EIP => g.sysenter[2],
            MSR_IA32_CR_PAT => g.pat,
            MSR_IA32_TSC => rdtsc().wrapping_add(st.tsc_offset),
            MSR_TSC_AUX => m.tsc_aux,
            MSR_IA32_DEBUGCTLMSR => m.debugctl,
            _ => return MsrAccess::NotMine,
        })
    }

    fn set_msr(&mut self, index: u32, value: u64, _host: bool) -> MsrAccess {
        let canonical = ((value << 16) as i64 >> 16) as u64 == value;
        let st = &mut self.s;
        match index {
            MSR_EFER => st.set_efer(value),
            MSR_STAR => st.msrs.star = value,
            MSR_LSTAR
            | MSR_CSTAR
            | MSR_KERNEL_GS_BASE
            | MSR_FS_BASE
            | MSR_GS_BASE
            | MSR_IA32_SYSENTER_ESP
            | MSR_IA32_SYSENTER_EIP
                if !canonical =>
            {
                return MsrAccess::Fault
            }
            MSR_LSTAR => st.msrs.lstar = value,
            MSR_CSTAR => st.msrs.cstar = value,
            MSR_SYSCALL_MASK => st.msrs.sfmask = value,
            MSR_KERNEL_GS_BASE => st.msrs.kernel_gs_base = value,
            MSR_FS_BASE => {
                st.g.segs[Seg::Fs as usize].base = value;
                st.dirty |= dirty::SEGS;
            }
            MSR_GS_BASE => {
                st.g.segs[Seg::Gs as usize].base = value;
                st.dirty |= dirty::SEGS;
            }
            MSR_IA32_SYSENTER_CS => {
                st.g.sysenter[0] = value & 0xffff_ffff;
                st.dirty |= dirty::SYSENTER;
            }
            MSR_IA32_SYSENTER_ESP => {
                st.g.sysenter[1] = value;
                st.dirty |= dirty::SYSENTER;
            }
            MSR_IA32_SYSENTER_EIP => {
                st.g.sysenter[2] = value;
                st.dirty |= dirty::SYSENTER;
            }
            MSR_IA32_CR_PAT => {
                st.g.pat = value;
                st.dirty |= dirty::PAT;
            }
            MSR_IA32_TSC => {
                st.tsc_offset = value.wrapping_sub(rdtsc());
                st.dirty |= dirty::TSC;
            }
            MSR_TSC_AUX => {
                if value >> 32 != 0 {
                    return MsrAccess::Fault;
                }
                st.msrs.tsc_aux = value;
            }
            // Kept, not loaded: the guest runs with DEBUGCTL 0 (as kvm-amd).
            MSR_IA32_DEBUGCTLMSR => st.msrs.debugctl = value,
            _ => return MsrAccess::NotMine,
        }
        MsrAccess::Done(0)
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        let st = &mut self.s;
        // #BP and #OF are software exceptions (INT3, INTO): they resume
        // after the instruction.
        let (ty, len) = if vector == BP_VECTOR || vector == OF_VECTOR {
            (intr::TYPE_SOFT_EXCEPTION, st.event_inst_len.max(1))
        } else {
            (intr::TYPE_HARD_EXCEPTION, 0)
        };
        st.entry = Event {
            info: intr::VALID
                | ty
                | u32::from(vector)
                | if error_code.is_some() {
                    intr::DELIVER_CODE
                } else {
                    0
                },
            err: error_code.unwrap_or(0),
            len,
        };
    }

    fn interrupt_allowed(&self) -> bool {
        let st = &self.s;
        st.g.rflags & X86_EFLAGS_IF != 0
            && st.g.intr_state & (intr_state::STI | intr_state::MOV_SS) == 0
            && st.entry.info & intr::VALID == 0
    }

    fn inject_interrupt(&mut self, vector: u8) {
        self.s.entry = Event {
            info: intr::VALID | intr::TYPE_EXT_INTR | u32::from(vector),
            ..Event::default()
        };
    }

    fn nmi_allowed(&self) -> bool {
        let st = &self.s;
        st.g.intr_state & (intr_state::NMI | intr_state::STI | intr_state::MOV_SS) == 0
            && st.entry.info & intr::VALID == 0
    }

    fn inject_nmi(&mut self) {
        self.s.entry = Event {
            info: intr::VALID | intr::TYPE_NMI | u32::from(NMI_VECTOR),
            ..Event::default()
        };
    }

    fn nmi_masked(&self) -> bool {
        self.s.g.intr_state & intr_state::NMI != 0
    }

    fn set_nmi_masked(&mut self, masked: bool) {
        let s = &mut self.s.g.intr_state;
        if masked {
            *s |= intr_state::NMI;
        } else {
            *s &= !intr_state::NMI;
        }
    }

    fn request_interrupt_window(&mut self, on: bool) {
        self.s.intr_window = on;
    }

    fn injected_event(&self) -> InjectedEvent {
        let e = self.s.entry;
        if e.info & intr::VALID == 0 {
            return InjectedEvent::None;
        }
        let vector = (e.info & intr::VECTOR) as u8;
        match e.info & intr::TYPE_MASK {
            intr::TYPE_NMI => InjectedEvent::Nmi,
            intr::TYPE_HARD_EXCEPTION
            | intr::TYPE_SOFT_EXCEPTION
            | intr::TYPE_PRIV_SW_EXCEPTION => InjectedEvent::Exception {
                vector,
                error_code: (e.info & intr::DELIVER_CODE != 0).then_some(e.err),
            },
            t => InjectedEvent::Interrupt {
                vector,
                soft: t == intr::TYPE_SOFT_INTR,
            },
        }
    }

    fn set_injected_event(&mut self, e: InjectedEvent) {
        match e {
            InjectedEvent::None => self.s.entry = Event::default(),
            InjectedEvent::Interrupt { vector, soft } => {
                let st = &mut self.s;
                st.entry = if soft {
                    Event {
                        info: intr::VALID | intr::TYPE_SOFT_INTR | u32::from(vector),
                        err: 0,
                        len: st.event_inst_len.max(1),
                    }
                } else {
                    Event {
                        info: intr::VALID | intr::TYPE_EXT_INTR | u32::from(vector),
                        ..Event::default()
                    }
                };
            }
            InjectedEvent::Nmi => self.inject_nmi(),
            InjectedEvent::Exception { vector, error_code } => {
                self.inject_exception(vector, error_code)
            }
        }
    }

    fn interrupt_shadow(&self) -> u8 {
        let s = self.s.g.intr_state;
        let mut k = 0;
        if s & intr_state::STI != 0 {
            k |= uapi::KVM_X86_SHADOW_INT_STI;
        }
        if s & intr_state::MOV_SS != 0 {
            k |= uapi::KVM_X86_SHADOW_INT_MOV_SS;
        }
        k as u8
    }

    fn clear_interrupt_shadow(&mut self) {
        self.s.g.intr_state &= !(intr_state::STI | intr_state::MOV_SS);
    }

    fn set_exception_intercept(&mut self, vector: u8, on: bool) {
        let st = &mut self.s;
        let bit = 1u32 << (vector & 31);
        if on {
            st.exc_bitmap |= bit;
        } else {
            st.exc_bitmap &= !bit | ALWAYS_INTERCEPTED;
        }
        st.dirty |= dirty::EXC;
    }

    fn tsc_offset(&self) -> u64 {
        self.s.tsc_offset
    }

    fn set_tsc_offset(&mut self, offset: u64) {
        self.s.tsc_offset = offset;
        self.s.dirty |= dirty::TSC;
    }

    fn v_tpr(&self) -> u8 {
        self.s.vtpr() >> 4
    }

    fn set_v_tpr(&mut self, tpr: u8) {
        self.s.set_vtpr((tpr & 0xf) << 4);
    }

    fn set_cr8_write_intercept(&mut self, on: bool) {
        self.s.cr8_intercept = on;
    }

    fn flush_tlb(&mut self) {
        self.s.flush_pending = true;
    }

    fn pdptrs_wanted(&self) -> Option<Gpa> {
        let st = &self.s;
        (st.pdptrs_stale && st.pae_paging()).then(|| Gpa::new(st.g.cr3 & PAE_PDPT_MASK))
    }

    fn set_pdptrs(&mut self, pdptrs: [u64; 4]) {
        let st = &mut self.s;
        st.g.pdptrs = pdptrs;
        st.pdptrs_stale = false;
        st.dirty |= dirty::PDPTR;
    }

    fn exit_info(&self) -> [u64; 5] {
        // Upstream's vmx_get_exit_info().
        let x = &self.s.exit;
        if x.vmfail || x.reason & reason::FAILED_VMENTRY != 0 {
            return [u64::from(x.reason), x.qual, 0, 0, 0];
        }
        let err = if x.intr_info & (intr::VALID | intr::DELIVER_CODE)
            == intr::VALID | intr::DELIVER_CODE
        {
            x.intr_err
        } else {
            0
        };
        [
            u64::from(x.reason),
            x.qual,
            u64::from(x.idt_info),
            u64::from(x.intr_info),
            u64::from(err),
        ]
    }

    fn entry_info(&self) -> (u32, u32) {
        let e = self.s.entry;
        let err = if e.info & (intr::VALID | intr::DELIVER_CODE) == intr::VALID | intr::DELIVER_CODE
        {
            e.err
        } else {
            0
        };
        (e.info, err)
    }

    fn reset(&mut self, _init: bool) {
        self.s.reset();
    }
}
