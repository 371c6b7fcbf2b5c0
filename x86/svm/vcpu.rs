// SPDX-License-Identifier: GPL-2.0
//! An SVM vCPU: its VMCB, the world switch, and exit decoding.

use crate::{
    percpu::{Shared, NO_TSC_AUX},
    vmcb::{self, attr, event, exit, int_ctl, intercept, ioio, tlb_ctl, Vmcb, VmcbSeg},
};
use core::{arch::asm, sync::atomic::Ordering};
use kernel::{page::Page, prelude::*, sync::Arc};
use kvm::defs::regs::{RAX, RDX, RSP};
use kvm::{
    ext::{bindings as rb, msr, uapi},
    x86::vendor::{
        Gprs, GuestMem, InjectedEvent, InterruptShadow, IoExit, MsrAccess, NestedStateHdr, Seg,
        VcpuArch, VmExit,
    },
};

extern "C" {
    /// The world switch, in vmenter.S.
    fn rkvm_svm_vcpu_run(vmcb_pa: u64, gprs: *mut u64, host_save_pa: u64);
}

// EFER.SVME must be set in the VMCB's EFER; it is hidden from the guest.
// #AC is intercepted so an alignment-check loop cannot wedge the CPU; #UD
// is injected for the SVM instructions (no nested SVM yet).
use kvm::defs::{
    msr::{
        MSR_AMD64_DE_CFG, MSR_CSTAR, MSR_EFER, MSR_FS_BASE, MSR_GS_BASE, MSR_IA32_CR_PAT,
        MSR_IA32_CR_PAT_DEFAULT, MSR_IA32_DEBUGCTLMSR, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP,
        MSR_IA32_SYSENTER_ESP, MSR_IA32_TSC, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_STAR,
        MSR_SYSCALL_MASK, MSR_TSC_AUX, MSR_VM_CR, MSR_VM_HSAVE_PA, SVM_VM_CR_SVM_DIS_MASK,
        SVM_VM_CR_SVM_LOCK_MASK, SVM_VM_CR_VALID_MASK,
    },
    paging::{page_aligned, Gpa},
    regs::{
        DR6_ACTIVE_LOW, DR7_FIXED_1, EFER_LMA, EFER_LME, EFER_NX, EFER_SVME, X86_CR0_PG,
        X86_CR0_RESET, X86_CR0_WP, X86_CR4_PAE, X86_CR4_PKE, X86_CR4_SMAP, X86_CR4_SMEP,
        X86_EFLAGS_IF,
    },
    vector::{exception_has_error_code, AC_VECTOR, PF_VECTOR, UD_VECTOR},
};

fn rdtsc() -> u64 {
    kvm::ext::time::rdtsc()
}

#[path = "nested.rs"]
mod nested;

/// A VMCB page and the ASID the guest runs with on it.
struct VmcbSlot {
    page: Page,
    pa: u64,
    asid: u32,
    asid_generation: u64,
    last_cpu: i64,
    flush_pending: bool,
}

impl VmcbSlot {
    fn new() -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        // SAFETY: live page.
        let pa = unsafe { rb::rkvm_page_to_phys(page.as_ptr()) };
        Ok(Self {
            page,
            pa,
            asid: 0,
            asid_generation: 0,
            last_cpu: -1,
            flush_pending: true,
        })
    }

    fn get(&self) -> &Vmcb {
        page_as_vmcb(&self.page)
    }

    fn get_mut(&mut self) -> &mut Vmcb {
        page_as_vmcb_mut(&mut self.page)
    }
}

/// A VMCB-sized page as a VMCB.
fn page_as_vmcb(page: &Page) -> &Vmcb {
    // SAFETY: the page is 4 KiB, direct-mapped and owned by the caller's
    // `&Page`; `Vmcb` is a 4 KiB plain-data struct valid for any bytes;
    // the hardware only touches a VMCB inside `run`, which holds
    // `&mut SvmVcpu`.
    unsafe { &*rb::rkvm_page_address(page.as_ptr()).cast::<Vmcb>() }
}

/// As [`page_as_vmcb`], for writing.
fn page_as_vmcb_mut(page: &mut Page) -> &mut Vmcb {
    // SAFETY: as in `page_as_vmcb`, exclusively through `&mut Page`.
    unsafe { &mut *rb::rkvm_page_address(page.as_ptr()).cast::<Vmcb>() }
}

/// An SVM vCPU.
pub(crate) struct SvmVcpu {
    /// L1's VMCB (the only one without nested SVM).
    vmcb01: VmcbSlot,
    /// Nested SVM (kvm-amd `nested=1`): L2's VMCB, guest mode, GIF.
    nested: Option<KBox<nested::Nested>>,
    gprs: Gprs,
    shared: Arc<Shared>,
    /// DR0-DR3: not loaded into hardware (DR accesses are intercepted).
    db: [u64; 4],
    tsc_aux: u64,
    vm_cr: u64,
    vm_hsave_pa: u64,
    de_cfg: u64,
    /// NMIs are blocked (an NMI handler runs until its IRET completes).
    nmi_masked: bool,
    /// IRET intercepted: NMIs unblock once RIP has moved past it.
    awaiting_iret: Option<u64>,
    /// Shadow paging (`npt=0`): the guest's control registers, which the
    /// VMCB's differ from (see [`GuestCrs::hw`]).
    shadow: Option<GuestCrs>,
}

/// The guest's CR0, CR3, CR4 and EFER (without SVME) under shadow paging.
#[derive(Clone, Copy, Default)]
struct GuestCrs {
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
}

impl GuestCrs {
    /// The hardware's CR0, CR4 and EFER for these guest values, as
    /// upstream's svm_set_cr0/cr4/efer() without NPT: paging and WP always
    /// on (a guest with paging off runs on the core's identity map, in
    /// paged real mode if need be), PAE always on (shadow tables are PAE
    /// or 4-level), SMEP/SMAP/PKE off while the guest's paging is off, NX
    /// always on, LME only with LMA.
    fn hw(&self) -> (u64, u64, u64) {
        let paging = self.cr0 & X86_CR0_PG != 0;
        let cr0 = self.cr0 | X86_CR0_PG | X86_CR0_WP;
        let mut cr4 = self.cr4 | X86_CR4_PAE;
        if !paging {
            cr4 &= !(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
        }
        let mut efer = self.efer | EFER_NX | EFER_SVME;
        if efer & EFER_LMA == 0 {
            efer &= !EFER_LME;
        }
        (cr0, cr4, efer)
    }
}

/// Intercepts of shadow paging: every CR0/CR3/CR4 access (the guest's
/// values are not the hardware's).
const SHADOW_INTERCEPTS: [intercept::Bit; 6] = [
    intercept::CR0_READ,
    intercept::CR3_READ,
    intercept::CR4_READ,
    intercept::CR0_WRITE,
    intercept::CR3_WRITE,
    intercept::CR4_WRITE,
];

// SAFETY: the VMCB page and state are only used by the thread holding the
// vCPU mutex.
unsafe impl Send for SvmVcpu {}

impl SvmVcpu {
    pub(crate) fn new(shared: Arc<Shared>, tdp_root: u64, nested: bool) -> Result<Self> {
        let nested = if nested && tdp_root != 0 {
            Some(KBox::new(nested::Nested::new()?, GFP_KERNEL_ACCOUNT)?)
        } else {
            None
        };
        let mut v = Self {
            vmcb01: VmcbSlot::new()?,
            nested,
            gprs: Gprs::default(),
            shared,
            db: [0; 4],
            tsc_aux: 0,
            vm_cr: 0,
            vm_hsave_pa: 0,
            de_cfg: 0,
            nmi_masked: false,
            awaiting_iret: None,
            shadow: (tdp_root == 0).then(GuestCrs::default),
        };
        v.init_control(tdp_root);
        v.reset(false);
        // The guest TSC starts at 0.
        v.vmcb_mut().control.tsc_offset = 0u64.wrapping_sub(rdtsc());
        Ok(v)
    }

    /// The VMCB the vCPU runs on: L2's in guest mode, else L1's.
    fn slot(&self) -> &VmcbSlot {
        match &self.nested {
            Some(n) if n.in_l2() => &n.vmcb02,
            _ => &self.vmcb01,
        }
    }

    fn slot_mut(&mut self) -> &mut VmcbSlot {
        match &mut self.nested {
            Some(n) if n.in_l2() => &mut n.vmcb02,
            _ => &mut self.vmcb01,
        }
    }

    /// The current VMCB ([`SvmVcpu::slot`]).
    fn vmcb(&self) -> &Vmcb {
        self.slot().get()
    }

    fn vmcb_mut(&mut self) -> &mut Vmcb {
        self.slot_mut().get_mut()
    }

    /// L1's VMCB, whatever runs: L1's interrupt controls (V_TPR, the
    /// interrupt window, CR8 intercept), TSC offset and intercepts.
    fn vmcb01_mut(&mut self) -> &mut Vmcb {
        self.vmcb01.get_mut()
    }

    fn init_control(&mut self, tdp_root: u64) {
        let iopm = self.shared.iopm.phys();
        let msrpm = self.shared.msrpm.phys();
        let c = &mut self.vmcb01_mut().control;
        for (w, b) in [
            intercept::CR4_WRITE,
            intercept::SELECTIVE_CR0,
            intercept::INTR,
            intercept::NMI,
            intercept::RDPMC,
            intercept::CPUID,
            intercept::INVD,
            intercept::HLT,
            intercept::INVLPGA,
            intercept::IOIO_PROT,
            intercept::MSR_PROT,
            intercept::TASK_SWITCH,
            intercept::FERR_FREEZE,
            intercept::SHUTDOWN,
            intercept::VMRUN,
            intercept::VMMCALL,
            intercept::VMLOAD,
            intercept::VMSAVE,
            intercept::STGI,
            intercept::CLGI,
            intercept::SKINIT,
            intercept::RDTSCP,
            intercept::WBINVD,
            intercept::MONITOR,
            intercept::MWAIT,
            intercept::MWAIT_COND,
            intercept::XSETBV,
            intercept::RDPRU,
        ] {
            c.intercepts[w] |= 1 << b;
        }
        if crate::params::INTERCEPT_SMI.get() {
            c.intercepts[intercept::SMI.0] |= 1 << intercept::SMI.1;
        }
        // DR accesses go through the emulator: DR0-3 are not switched.
        c.intercepts[intercept::DR_WORD] = u32::MAX;
        c.intercepts[intercept::EXCEPTION_WORD] = 1 << AC_VECTOR;
        c.iopm_base_pa = iopm;
        c.msrpm_base_pa = msrpm;
        if tdp_root != 0 {
            c.nested_cr3 = tdp_root;
            c.misc_ctl = vmcb::MISC_ENABLE_NP;
        } else {
            // Shadow paging: the guest's #PF goes to the shadow MMU first.
            for (w, b) in SHADOW_INTERCEPTS {
                c.intercepts[w] |= 1 << b;
            }
            c.intercepts[intercept::EXCEPTION_WORD] |= 1 << PF_VECTOR;
        }
    }

    /// Shadow paging: the VMCB's CR0, CR4 and EFER from the guest's.
    fn sync_shadow(&mut self) {
        if let Some(g) = self.shadow {
            let (cr0, cr4, efer) = g.hw();
            let v = &mut self.vmcb_mut().save;
            v.cr0 = cr0;
            v.cr4 = cr4;
            v.efer = efer;
        }
    }

    /// The guest's CR0, CR3, CR4 and EFER (with SVME).
    fn guest_crs(&self) -> GuestCrs {
        match self.shadow {
            Some(g) => GuestCrs {
                efer: g.efer | EFER_SVME,
                ..g
            },
            None => {
                let v = &self.vmcb().save;
                GuestCrs {
                    cr0: v.cr0,
                    cr3: v.cr3,
                    cr4: v.cr4,
                    efer: v.efer,
                }
            }
        }
    }

    /// Sets the guest's CR0, CR3, CR4 and EFER (with SVME).
    fn set_guest_crs(&mut self, g: GuestCrs) {
        if self.shadow.is_some() {
            self.shadow = Some(GuestCrs {
                efer: g.efer & !EFER_SVME,
                ..g
            });
            self.sync_shadow();
        } else {
            let v = &mut self.vmcb_mut().save;
            v.cr0 = g.cr0;
            v.cr3 = g.cr3;
            v.cr4 = g.cr4;
            v.efer = g.efer;
        }
    }

    fn seg(&self, s: Seg) -> &VmcbSeg {
        let v = &self.vmcb().save;
        match s {
            Seg::Es => &v.es,
            Seg::Cs => &v.cs,
            Seg::Ss => &v.ss,
            Seg::Ds => &v.ds,
            Seg::Fs => &v.fs,
            Seg::Gs => &v.gs,
            Seg::Ldtr => &v.ldtr,
            Seg::Tr => &v.tr,
        }
    }

    fn seg_mut(&mut self, s: Seg) -> &mut VmcbSeg {
        let v = &mut self.vmcb_mut().save;
        match s {
            Seg::Es => &mut v.es,
            Seg::Cs => &mut v.cs,
            Seg::Ss => &mut v.ss,
            Seg::Ds => &mut v.ds,
            Seg::Fs => &mut v.fs,
            Seg::Gs => &mut v.gs,
            Seg::Ldtr => &mut v.ldtr,
            Seg::Tr => &mut v.tr,
        }
    }

    /// Picks this vCPU's ASID on `cpu` (a new one after migration or when
    /// the CPU started a new generation) and the TLB flush to request.
    fn prepare_asid(&mut self, cpu: u32) {
        let shared = self.shared.clone();
        let Some(pc) = shared.cpus.get(cpu as usize) else {
            return;
        };
        let slot = self.slot_mut();
        if slot.last_cpu != i64::from(cpu) {
            slot.last_cpu = i64::from(cpu);
            slot.asid_generation = 0;
        }
        let mut tlb = if slot.flush_pending {
            if shared.flush_by_asid {
                tlb_ctl::FLUSH_ASID
            } else {
                tlb_ctl::FLUSH_ALL_ASID
            }
        } else {
            tlb_ctl::DO_NOTHING
        };
        slot.flush_pending = false;
        // SAFETY: `run` is called on `cpu` with interrupts disabled.
        let a = unsafe { pc.asid() };
        if slot.asid_generation != a.generation {
            if a.next > a.max {
                a.generation = a.generation.wrapping_add(1);
                a.next = a.min;
                tlb = tlb_ctl::FLUSH_ALL_ASID;
            }
            slot.asid = a.next;
            a.next += 1;
            slot.asid_generation = a.generation;
        }
        let asid = slot.asid;
        let c = &mut slot.get_mut().control;
        c.asid = asid;
        c.tlb_ctl = tlb;
    }

    fn decode_exit(&mut self) -> VmExit {
        let code = self.vmcb().control.exit_code;
        // In guest mode, what is not the host's own (interrupts, nested
        // page faults) may be L1's to handle: decided with guest memory.
        if self.in_l2() && !matches!(code, exit::INTR | exit::NMI | exit::SMI | exit::NPF) {
            return VmExit::Vendor;
        }
        self.decode_l0_exit()
    }

    /// Decodes the exit for this host to handle (L1's own, or L2's that
    /// L1 does not intercept).
    fn decode_l0_exit(&mut self) -> VmExit {
        let c = &self.vmcb().control;
        let (code, info1, info2) = (c.exit_code, c.exit_info_1, c.exit_info_2);
        match code {
            exit::INTR => VmExit::HostIrq,
            exit::NMI | exit::SMI => VmExit::None,
            exit::IRET => {
                // The NMI handler is returning: stop intercepting and
                // unblock NMIs once the IRET has retired.
                self.set_intercept(intercept::IRET, false);
                self.awaiting_iret = Some(self.rip());
                VmExit::None
            }
            exit::IOIO => VmExit::Io(IoExit {
                port: (info1 >> ioio::PORT_SHIFT) as u16,
                size: ioio::size(info1),
                input: info1 & ioio::TYPE_IN != 0,
                string: info1 & ioio::STR != 0,
                rep: info1 & ioio::REP != 0,
                addr_size: if info1 & ioio::A16 != 0 {
                    2
                } else if info1 & ioio::A32 != 0 {
                    4
                } else {
                    8
                },
                next_rip: info2,
            }),
            exit::HLT => VmExit::Hlt,
            exit::CPUID => VmExit::Cpuid,
            exit::MSR => VmExit::Msr { write: info1 == 1 },
            exit::VMMCALL => VmExit::Hypercall,
            exit::XSETBV => VmExit::Xsetbv,
            exit::NPF => VmExit::TdpFault {
                gpa: Gpa::new(info2),
                write: info1 & 2 != 0,
                insn_len: c.insn_len.min(15),
                insn: c.insn_bytes,
            },
            exit::VINTR => {
                self.set_interrupt_window(false);
                VmExit::InterruptWindow
            }
            exit::SHUTDOWN => VmExit::Shutdown,
            exit::EXCP_BASE..=exit::EXCP_LAST
                if self.shadow.is_some() && code - exit::EXCP_BASE == u64::from(PF_VECTOR) =>
            {
                VmExit::PageFault {
                    addr: info2,
                    error_code: info1 as u32,
                    insn_len: c.insn_len.min(15),
                    insn: c.insn_bytes,
                }
            }
            exit::EXCP_BASE..=exit::EXCP_LAST => {
                let vector = (code - exit::EXCP_BASE) as u8;
                let has_code = exception_has_error_code(vector);
                VmExit::Exception {
                    vector,
                    error_code: has_code.then_some(info1 as u32),
                    info: 0,
                }
            }
            // CR0 (other than TS/MP) and CR4 writes are checked by the core
            // (reserved and CPUID-dependent bits, mode changes) as upstream
            // does; without decode assists the emulator decodes them.
            exit::READ_CR0 | exit::READ_CR3 | exit::READ_CR4 | exit::WRITE_CR3 => VmExit::Emulate,
            exit::DR_READ_0..=exit::DR_WRITE_15
            | exit::WRITE_CR0
            | exit::WRITE_CR4
            | exit::CR0_SEL_WRITE
            | exit::WRITE_CR8 => VmExit::Emulate,
            // Nested SVM emulates them with guest memory at hand.
            exit::VMRUN | exit::VMLOAD | exit::VMSAVE | exit::STGI | exit::CLGI | exit::INVLPGA
                if self.nested.is_some() =>
            {
                VmExit::Vendor
            }
            exit::VMRUN
            | exit::VMLOAD
            | exit::VMSAVE
            | exit::STGI
            | exit::CLGI
            | exit::SKINIT
            | exit::INVLPGA
            | exit::RDPRU => {
                self.inject_exception(UD_VECTOR, None);
                VmExit::None
            }
            exit::RDPMC => VmExit::Rdpmc,
            exit::RDTSCP => VmExit::Rdtscp,
            exit::MONITOR | exit::MWAIT | exit::MWAIT_COND => VmExit::MonitorMwait,
            exit::WBINVD | exit::INVD => VmExit::Wbinvd,
            exit::INVLPG => VmExit::Invlpg,
            exit::INVALID => {
                if crate::params::DUMP_INVALID_VMCB.get() {
                    self.dump();
                }
                VmExit::FailEntry {
                    reason: exit::INVALID,
                }
            }
            _ => VmExit::Unknown { code, info1, info2 },
        }
    }

    /// Logs the VMCB fields VMRUN checks (`dump_invalid_vmcb`).
    fn dump(&self) {
        let v = self.vmcb();
        let (c, s) = (&v.control, &v.save);
        pr_err!("VMRUN failed its consistency checks; VMCB:\n");
        pr_err!(
            "intercepts {:08x?} tsc_offset {:#x} asid {} tlb_ctl {} int_ctl {:#x} int_state {:#x}\n",
            c.intercepts,
            c.tsc_offset,
            c.asid,
            c.tlb_ctl,
            c.int_ctl,
            c.int_state
        );
        pr_err!(
            "event_inj {:#x} err {:#x} misc_ctl {:#x} nested_cr3 {:#x} iopm {:#x} msrpm {:#x}\n",
            c.event_inj,
            c.event_inj_err,
            c.misc_ctl,
            c.nested_cr3,
            c.iopm_base_pa,
            c.msrpm_base_pa
        );
        pr_err!(
            "cr0 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x} dr6 {:#x} dr7 {:#x} rflags {:#x} rip {:#x} rsp {:#x} cpl {}\n",
            s.cr0,
            s.cr3,
            s.cr4,
            s.efer,
            s.dr6,
            s.dr7,
            s.rflags,
            s.rip,
            s.rsp,
            s.cpl
        );
        for (name, seg) in [
            ("cs", &s.cs),
            ("ss", &s.ss),
            ("ds", &s.ds),
            ("es", &s.es),
            ("fs", &s.fs),
            ("gs", &s.gs),
            ("tr", &s.tr),
            ("ldtr", &s.ldtr),
            ("gdtr", &s.gdtr),
            ("idtr", &s.idtr),
        ] {
            pr_err!(
                "{} sel {:#06x} attr {:#06x} limit {:#010x} base {:#x}\n",
                name,
                seg.selector,
                seg.attrib,
                seg.limit,
                seg.base
            );
        }
        pr_err!("g_pat {:#x}\n", s.g_pat);
    }

    fn set_intercept(&mut self, (w, b): intercept::Bit, on: bool) {
        let c = &mut self.vmcb_mut().control;
        if on {
            c.intercepts[w] |= 1 << b;
        } else {
            c.intercepts[w] &= !(1 << b);
        }
    }

    /// Sets up exception `vector` for injection at the next entry.
    fn set_event_exception(&mut self, vector: u8, error_code: Option<u32>) {
        let c = &mut self.vmcb_mut().control;
        c.event_inj = u32::from(vector)
            | event::TYPE_EXEPT
            | event::VALID
            | if error_code.is_some() {
                event::VALID_ERR
            } else {
                0
            };
        c.event_inj_err = error_code.unwrap_or(0);
    }

    /// L1's interrupt window (V_IRQ and the VINTR intercept, in L1's
    /// VMCB). Not opened while L1's GIF is clear: its STGI exits, and
    /// the run loop looks again then.
    fn set_interrupt_window(&mut self, on: bool) {
        if self.in_l2() {
            self.set_l2_interrupt_window(on);
            return;
        }
        let on = on && self.gif();
        let c = &mut self.vmcb01_mut().control;
        let (w, b) = intercept::VINTR;
        if on {
            c.int_ctl |= int_ctl::V_IRQ | (0xf << int_ctl::V_INTR_PRIO_SHIFT) | int_ctl::V_IGN_TPR;
            c.intercepts[w] |= 1 << b;
        } else {
            c.int_ctl &=
                !(int_ctl::V_IRQ | (0xf << int_ctl::V_INTR_PRIO_SHIFT) | int_ctl::V_IGN_TPR);
            c.intercepts[w] &= !(1 << b);
        }
    }
}

fn clgi() {
    // SAFETY: GIF=0 blocks interrupts and NMIs until `stgi`; EFER.SVME is
    // set on this CPU while vCPUs can run.
    unsafe { asm!("clgi", options(nomem, nostack)) };
}

fn stgi() {
    // SAFETY: see `clgi`.
    unsafe { asm!("stgi", options(nomem, nostack)) };
}

impl VcpuArch for SvmVcpu {
    fn run(&mut self, cpu: u32) -> VmExit {
        if self.take_triple_fault() {
            return VmExit::Shutdown;
        }
        let Some(pc) = self.shared.cpus.get(cpu as usize) else {
            return VmExit::FailEntry {
                reason: exit::INVALID,
            };
        };
        let host_save = pc.host_vmsave_pa;
        // TSC_AUX is the guest's while it runs (RDTSCP and RDPID may run
        // natively), as upstream switches it through user-return MSRs.
        let host_aux = pc.host_tsc_aux.load(Ordering::Relaxed);
        let switch_aux = host_aux != NO_TSC_AUX && self.tsc_aux != host_aux;
        self.prepare_asid(cpu);
        let (rax, rsp) = (self.gprs[RAX], self.gprs[RSP]);
        {
            let v = self.vmcb_mut();
            v.save.rax = rax;
            v.save.rsp = rsp;
            // Every field may have changed: nothing is clean.
            v.control.clean = 0;
        }
        clgi();
        // The host's RFLAGS.IF at VMRUN decides whether physical interrupts
        // exit the guest (V_INTR_MASKING): set it. GIF=0 keeps them pending
        // while we are still in host code, as upstream does.
        // SAFETY: see above; undone right after the world switch.
        unsafe { asm!("sti", options(nomem, nostack)) };
        if switch_aux {
            msr::write(MSR_TSC_AUX, self.tsc_aux);
        }
        let vmcb_pa = self.slot().pa;
        // SAFETY: the VMCB is initialised and ours; `gprs` has 16 slots;
        // `host_save` is this CPU's VMSAVE area; GIF is clear.
        unsafe { rkvm_svm_vcpu_run(vmcb_pa, self.gprs.0.as_mut_ptr(), host_save) };
        if switch_aux {
            msr::write(MSR_TSC_AUX, host_aux);
        }
        // SAFETY: back to the caller's interrupts-off state before GIF=1.
        unsafe { asm!("cli", options(nomem, nostack)) };
        stgi();
        let v = self.vmcb_mut();
        let (rax, rsp) = (v.save.rax, v.save.rsp);
        v.control.tlb_ctl = tlb_ctl::DO_NOTHING;
        // An event being delivered when the exit happened must be
        // delivered again, except software interrupts, which the guest
        // re-executes (RIP still points at INT n).
        let info = v.control.exit_int_info;
        v.control.event_inj = 0;
        if info & event::VALID != 0 && info & event::TYPE_MASK != event::TYPE_SOFT {
            v.control.event_inj = info;
            v.control.event_inj_err = v.control.exit_int_info_err;
        }
        self.gprs[RAX] = rax;
        self.gprs[RSP] = rsp;
        if let Some(iret_rip) = self.awaiting_iret {
            if self.rip() != iret_rip {
                self.awaiting_iret = None;
                self.nmi_masked = false;
            }
        }
        self.decode_exit()
    }

    fn gprs(&self) -> &Gprs {
        &self.gprs
    }
    fn gprs_mut(&mut self) -> &mut Gprs {
        &mut self.gprs
    }
    fn rip(&self) -> u64 {
        self.vmcb().save.rip
    }
    fn set_rip(&mut self, rip: u64) {
        self.vmcb_mut().save.rip = rip;
    }
    fn rflags(&self) -> u64 {
        self.vmcb().save.rflags
    }
    fn set_rflags(&mut self, rflags: u64) {
        self.vmcb_mut().save.rflags = rflags;
    }
    fn next_rip(&self) -> Option<u64> {
        self.shared.nrips.then(|| self.vmcb().control.next_rip)
    }
    fn skip_to(&mut self, next_rip: u64) {
        let v = self.vmcb_mut();
        v.save.rip = next_rip;
        v.control.int_state &= !vmcb::INTERRUPT_SHADOW;
    }

    fn get_sregs(&self, s: &mut uapi::kvm_sregs) {
        self.get_sregs_segments(s);
        let g = self.guest_crs();
        s.cr0 = g.cr0;
        s.cr2 = self.vmcb().save.cr2;
        s.cr3 = g.cr3;
        s.cr4 = g.cr4;
        s.efer = self.guest_efer();
    }

    fn set_sregs(&mut self, s: &uapi::kvm_sregs) -> Result {
        // The core checked kvm_is_valid_sregs().
        self.set_sregs_segments(s);
        self.vmcb_mut().save.cr2 = s.cr2;
        self.set_guest_crs(GuestCrs {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer | EFER_SVME,
        });
        self.set_l1_svme(s.efer);
        self.flush_tlb();
        Ok(())
    }

    fn segment(&self, seg: Seg) -> uapi::kvm_segment {
        let s = self.seg(seg);
        let a = s.attrib;
        let mut k = uapi::kvm_segment {
            base: s.base,
            limit: s.limit,
            selector: s.selector,
            type_: (a & attr::TYPE_MASK) as u8,
            present: u8::from(a & attr::P != 0),
            dpl: ((a >> attr::DPL_SHIFT) & 3) as u8,
            db: u8::from(a & attr::DB != 0),
            s: u8::from(a & attr::S != 0),
            l: u8::from(a & attr::L != 0),
            g: u8::from(a & attr::G != 0),
            avl: u8::from(a & attr::AVL != 0),
            unusable: u8::from(a & attr::P == 0),
            padding: 0,
        };
        // Upstream svm_get_segment()'s fixups, for VMX-compatible values.
        match seg {
            Seg::Tr => k.type_ |= 0x2,
            Seg::Ds | Seg::Es | Seg::Fs | Seg::Gs if k.unusable == 0 => k.type_ |= 0x1,
            Seg::Ss => {
                if k.unusable != 0 {
                    k.db = 0;
                }
                k.dpl = self.vmcb().save.cpl;
            }
            _ => {}
        }
        k
    }

    fn set_segment(&mut self, seg: Seg, v: &uapi::kvm_segment) {
        let attrib = if v.unusable != 0 {
            0
        } else {
            (u16::from(v.type_) & attr::TYPE_MASK)
                | (u16::from(v.s & 1) << 4)
                | (u16::from(v.dpl & 3) << attr::DPL_SHIFT)
                | (u16::from(v.present & 1) << 7)
                | (u16::from(v.avl & 1) << 8)
                | (u16::from(v.l & 1) << 9)
                | (u16::from(v.db & 1) << 10)
                | (u16::from(v.g & 1) << 11)
        };
        let s = self.seg_mut(seg);
        s.base = v.base;
        s.limit = v.limit;
        s.selector = v.selector;
        s.attrib = attrib;
        if seg == Seg::Ss {
            self.vmcb_mut().save.cpl = v.dpl & 3;
        }
    }

    fn dtable(&self, idt: bool) -> uapi::kvm_dtable {
        let v = &self.vmcb().save;
        let s = if idt { &v.idtr } else { &v.gdtr };
        uapi::kvm_dtable {
            base: s.base,
            limit: s.limit as u16,
            padding: [0; 3],
        }
    }

    fn set_dtable(&mut self, idt: bool, d: &uapi::kvm_dtable) {
        let v = &mut self.vmcb_mut().save;
        let s = if idt { &mut v.idtr } else { &mut v.gdtr };
        s.base = d.base;
        s.limit = u32::from(d.limit);
    }

    fn set_cr(&mut self, n: u8, val: u64) {
        let mut g = self.guest_crs();
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
        self.set_guest_crs(g);
    }

    fn cr0(&self) -> u64 {
        self.guest_crs().cr0
    }
    fn cr2(&self) -> u64 {
        self.vmcb().save.cr2
    }
    fn set_cr2(&mut self, val: u64) {
        self.vmcb_mut().save.cr2 = val;
    }
    fn cr3(&self) -> u64 {
        self.guest_crs().cr3
    }
    fn cr4(&self) -> u64 {
        self.guest_crs().cr4
    }
    fn efer(&self) -> u64 {
        self.guest_efer()
    }
    fn cpl(&self) -> u8 {
        self.vmcb().save.cpl & 3
    }

    fn dr(&self, n: u8) -> u64 {
        match n {
            0..=3 => self.db[usize::from(n)],
            4 | 6 => self.vmcb().save.dr6,
            _ => self.vmcb().save.dr7,
        }
    }

    fn set_dr(&mut self, n: u8, val: u64) {
        // The core computed DR6/DR7 (guest writes) or took userspace's.
        match n {
            0..=3 => self.db[usize::from(n)] = val,
            4 | 6 => self.vmcb_mut().save.dr6 = val,
            _ => self.vmcb_mut().save.dr7 = val,
        }
    }

    fn set_interrupt_shadow(&mut self, _kind: InterruptShadow) {
        self.vmcb_mut().control.int_state |= vmcb::INTERRUPT_SHADOW;
    }

    fn get_msr(&mut self, index: u32) -> MsrAccess {
        let v = &self.vmcb().save;
        MsrAccess::Done(match index {
            MSR_EFER => self.guest_efer(),
            MSR_STAR => v.star,
            MSR_LSTAR => v.lstar,
            MSR_CSTAR => v.cstar,
            MSR_SYSCALL_MASK => v.sfmask,
            MSR_KERNEL_GS_BASE => v.kernel_gs_base,
            MSR_FS_BASE => v.fs.base,
            MSR_GS_BASE => v.gs.base,
            MSR_IA32_SYSENTER_CS => v.sysenter_cs,
            MSR_IA32_SYSENTER_ESP => v.sysenter_esp,
            MSR_IA32_SYSENTER_EIP => v.sysenter_eip,
            MSR_IA32_CR_PAT => v.g_pat,
            MSR_IA32_TSC => rdtsc().wrapping_add(self.vmcb().control.tsc_offset),
            MSR_TSC_AUX => self.tsc_aux,
            MSR_IA32_DEBUGCTLMSR => 0,
            MSR_VM_CR => self.vm_cr,
            MSR_VM_HSAVE_PA => self.vm_hsave_pa,
            MSR_AMD64_DE_CFG => self.de_cfg,
            _ => return MsrAccess::NotMine,
        })
    }

    fn set_msr(&mut self, index: u32, value: u64, host: bool) -> MsrAccess {
        let canonical = ((value << 16) as i64 >> 16) as u64 == value;
        match index {
            MSR_EFER => {
                if !host && self.in_l2() && value & EFER_SVME == 0 {
                    self.l2_cleared_svme();
                    return MsrAccess::Done(0);
                }
                let g = self.guest_crs();
                self.set_guest_crs(GuestCrs {
                    efer: value | EFER_SVME,
                    ..g
                });
                self.set_l1_svme(value);
            }
            MSR_STAR => self.vmcb_mut().save.star = value,
            MSR_LSTAR | MSR_CSTAR | MSR_KERNEL_GS_BASE | MSR_FS_BASE | MSR_GS_BASE
                if !canonical =>
            {
                return MsrAccess::Fault
            }
            MSR_LSTAR => self.vmcb_mut().save.lstar = value,
            MSR_CSTAR => self.vmcb_mut().save.cstar = value,
            MSR_SYSCALL_MASK => self.vmcb_mut().save.sfmask = value,
            MSR_KERNEL_GS_BASE => self.vmcb_mut().save.kernel_gs_base = value,
            MSR_FS_BASE => self.vmcb_mut().save.fs.base = value,
            MSR_GS_BASE => self.vmcb_mut().save.gs.base = value,
            // The core made ESP/EIP 32-bit for an AMD guest, canonical
            // for an Intel-compatible one.
            MSR_IA32_SYSENTER_CS => self.vmcb_mut().save.sysenter_cs = value & 0xffff_ffff,
            MSR_IA32_SYSENTER_ESP => self.vmcb_mut().save.sysenter_esp = value,
            MSR_IA32_SYSENTER_EIP => self.vmcb_mut().save.sysenter_eip = value,
            MSR_IA32_CR_PAT => self.vmcb_mut().save.g_pat = value,
            MSR_IA32_TSC => self.vmcb_mut().control.tsc_offset = value.wrapping_sub(rdtsc()),
            // The core checked it (and made it 32-bit).
            MSR_TSC_AUX => self.tsc_aux = value,
            // No LBR virtualization: writes are dropped, as upstream's
            // with lbrv=0.
            MSR_IA32_DEBUGCTLMSR => {}
            MSR_VM_CR => {
                if value & !SVM_VM_CR_VALID_MASK != 0 {
                    return MsrAccess::Fault;
                }
                // LOCK and SVMDIS stick once SVMDIS is set.
                let mut change = SVM_VM_CR_VALID_MASK;
                if self.vm_cr & SVM_VM_CR_SVM_DIS_MASK != 0 {
                    change &= !(SVM_VM_CR_SVM_LOCK_MASK | SVM_VM_CR_SVM_DIS_MASK);
                }
                self.vm_cr = (self.vm_cr & !change) | (value & change);
            }
            MSR_VM_HSAVE_PA => {
                if !page_aligned(value) {
                    return MsrAccess::Fault;
                }
                self.vm_hsave_pa = value;
            }
            MSR_AMD64_DE_CFG => {
                if value & !crate::cpuid::supported_de_cfg() != 0 {
                    return MsrAccess::Fault;
                }
                self.de_cfg = value;
            }
            _ => return MsrAccess::NotMine,
        }
        MsrAccess::Done(0)
    }

    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        // An exception for L2 that L1 intercepts is L1's #VMEXIT instead.
        if self.l1_takes_exception(vector, error_code) {
            return;
        }
        self.set_event_exception(vector, error_code);
    }

    fn interrupt_allowed(&self) -> bool {
        let v = self.vmcb();
        if !self.gif() {
            return false;
        }
        let if_set = match self.l2_interrupt_if() {
            // L1 intercepts its interrupts: they exit L2 instead.
            Some(None) => return false,
            Some(Some(if_set)) => if_set,
            None => v.save.rflags & X86_EFLAGS_IF != 0,
        };
        if_set
            && v.control.int_state & vmcb::INTERRUPT_SHADOW == 0
            && v.control.event_inj & event::VALID == 0
    }

    fn inject_interrupt(&mut self, vector: u8) {
        self.vmcb_mut().control.event_inj = u32::from(vector) | event::TYPE_INTR | event::VALID;
    }

    fn nmi_allowed(&self) -> bool {
        let v = self.vmcb();
        self.gif()
            && !self.l1_intercepts_nmi()
            && !self.nmi_masked
            && v.control.int_state & vmcb::INTERRUPT_SHADOW == 0
            && v.control.event_inj & event::VALID == 0
    }

    fn inject_nmi(&mut self) {
        self.vmcb_mut().control.event_inj = 2 | event::TYPE_NMI | event::VALID;
        self.nmi_masked = true;
        self.set_intercept(intercept::IRET, true);
    }

    fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    fn set_nmi_masked(&mut self, masked: bool) {
        self.nmi_masked = masked;
        self.awaiting_iret = None;
        self.set_intercept(intercept::IRET, masked);
    }

    fn request_interrupt_window(&mut self, on: bool) {
        self.set_interrupt_window(on);
    }

    fn injected_event(&self) -> InjectedEvent {
        let c = &self.vmcb().control;
        let e = c.event_inj;
        if e & event::VALID == 0 {
            return InjectedEvent::None;
        }
        let vector = (e & event::VEC_MASK) as u8;
        match e & event::TYPE_MASK {
            event::TYPE_NMI => InjectedEvent::Nmi,
            event::TYPE_EXEPT => InjectedEvent::Exception {
                vector,
                error_code: (e & event::VALID_ERR != 0).then_some(c.event_inj_err),
            },
            t => InjectedEvent::Interrupt {
                vector,
                soft: t == event::TYPE_SOFT,
            },
        }
    }

    fn set_injected_event(&mut self, e: InjectedEvent) {
        match e {
            InjectedEvent::None => self.vmcb_mut().control.event_inj = 0,
            InjectedEvent::Interrupt { vector, soft } => {
                let t = if soft {
                    event::TYPE_SOFT
                } else {
                    event::TYPE_INTR
                };
                self.vmcb_mut().control.event_inj = u32::from(vector) | t | event::VALID;
            }
            InjectedEvent::Nmi => self.inject_nmi(),
            // Restored state: the event goes to L2 as it was, as upstream.
            InjectedEvent::Exception { vector, error_code } => {
                self.set_event_exception(vector, error_code)
            }
        }
    }

    fn interrupt_shadow(&self) -> u8 {
        // One shadow bit: both kinds, as upstream's svm_get_interrupt_shadow().
        if self.vmcb().control.int_state & vmcb::INTERRUPT_SHADOW != 0 {
            (uapi::KVM_X86_SHADOW_INT_MOV_SS | uapi::KVM_X86_SHADOW_INT_STI) as u8
        } else {
            0
        }
    }

    fn clear_interrupt_shadow(&mut self) {
        self.vmcb_mut().control.int_state &= !vmcb::INTERRUPT_SHADOW;
    }

    fn set_exception_intercept(&mut self, vector: u8, on: bool) {
        // #AC stays intercepted regardless, and #PF under shadow paging.
        let keep = vector == AC_VECTOR || (vector == PF_VECTOR && self.shadow.is_some());
        let w = &mut self.vmcb01_mut().control.intercepts[intercept::EXCEPTION_WORD];
        let bit = 1u32 << (vector & 31);
        if on {
            *w |= bit;
        } else if !keep {
            *w &= !bit;
        }
    }

    // L1's TSC offset (L2's adds VMCB12's).
    fn tsc_offset(&self) -> u64 {
        self.vmcb01.get().control.tsc_offset
    }

    fn set_tsc_offset(&mut self, offset: u64) {
        self.vmcb01_mut().control.tsc_offset = offset;
        self.nested_tsc_offset_changed();
    }

    // L1's TPR: L2's V_TPR is L1's business.
    fn v_tpr(&self) -> u8 {
        (self.vmcb01.get().control.int_ctl & int_ctl::V_TPR_MASK) as u8
    }

    fn set_v_tpr(&mut self, tpr: u8) {
        let c = &mut self.vmcb01_mut().control;
        c.int_ctl = (c.int_ctl & !int_ctl::V_TPR_MASK) | (u32::from(tpr) & int_ctl::V_TPR_MASK);
    }

    fn set_cr8_write_intercept(&mut self, on: bool) {
        let (w, b) = intercept::CR8_WRITE;
        let c = &mut self.vmcb01_mut().control;
        if on {
            c.intercepts[w] |= 1 << b;
        } else {
            c.intercepts[w] &= !(1 << b);
        }
    }

    fn flush_tlb(&mut self) {
        self.vmcb01.flush_pending = true;
        if let Some(n) = &mut self.nested {
            n.vmcb02.flush_pending = true;
        }
    }

    // Nested paging walks the guest's PDPTEs in memory.
    fn pdptrs_wanted(&self) -> Option<Gpa> {
        None
    }

    fn set_pdptrs(&mut self, _pdptrs: [u64; 4]) {}

    fn exit_info(&self) -> [u64; 5] {
        let c = &self.vmcb().control;
        let info = c.exit_int_info;
        let err = if info & event::VALID != 0 && info & event::VALID_ERR != 0 {
            c.exit_int_info_err
        } else {
            0
        };
        [
            u64::from(c.exit_code as u32),
            c.exit_info_1,
            c.exit_info_2,
            u64::from(info),
            u64::from(err),
        ]
    }

    fn set_disabled_exits(&mut self, exits: u64) {
        // At vCPU creation: L1's VMCB is the current one.
        if exits & u64::from(uapi::KVM_X86_DISABLE_EXITS_HLT) != 0 {
            self.set_intercept(intercept::HLT, false);
        }
        if exits & u64::from(uapi::KVM_X86_DISABLE_EXITS_MWAIT) != 0 {
            for i in [intercept::MONITOR, intercept::MWAIT, intercept::MWAIT_COND] {
                self.set_intercept(i, false);
            }
        }
        // PAUSE is never intercepted (no pause filtering); C-states need
        // nothing from SVM.
    }

    fn entry_info(&self) -> (u32, u32) {
        let c = &self.vmcb().control;
        let info = c.event_inj;
        let err = if info & event::VALID != 0 && info & event::VALID_ERR != 0 {
            c.event_inj_err
        } else {
            0
        };
        (info, err)
    }

    fn reset(&mut self, _init: bool) {
        if let Some(n) = &mut self.nested {
            n.reset();
        }
        self.gprs = Gprs::default();
        // RDX holds the processor signature after reset.
        self.gprs[RDX] = 0x600;
        self.db = [0; 4];
        let data = |t: u16| attr::P | attr::S | t;
        let v = self.vmcb_mut();
        let s = &mut v.save;
        let seg = |sel: u16, base: u64, attrib: u16| VmcbSeg {
            selector: sel,
            attrib,
            limit: 0xffff,
            base,
        };
        s.cs = seg(0xf000, 0xffff_0000, data(0xa));
        s.ds = seg(0, 0, data(0x2));
        s.es = s.ds;
        s.fs = s.ds;
        s.gs = s.ds;
        s.ss = s.ds;
        s.ldtr = seg(0, 0, attr::P | 0x2);
        s.tr = seg(0, 0, attr::P | 0x3);
        s.gdtr = seg(0, 0, 0);
        s.idtr = seg(0, 0, 0);
        s.cpl = 0;
        s.efer = EFER_SVME;
        s.cr0 = X86_CR0_RESET;
        s.cr2 = 0;
        s.cr3 = 0;
        s.cr4 = 0;
        s.dr6 = DR6_ACTIVE_LOW;
        s.dr7 = DR7_FIXED_1;
        s.rflags = 2;
        s.rip = 0xfff0;
        s.g_pat = MSR_IA32_CR_PAT_DEFAULT;
        s.star = 0;
        s.lstar = 0;
        s.cstar = 0;
        s.sfmask = 0;
        s.kernel_gs_base = 0;
        s.sysenter_cs = 0;
        s.sysenter_esp = 0;
        s.sysenter_eip = 0;
        let c = &mut v.control;
        c.event_inj = 0;
        c.int_state = 0;
        c.int_ctl = int_ctl::V_INTR_MASKING;
        let (w, b) = intercept::IRET;
        c.intercepts[w] &= !(1 << b);
        let (w, b) = intercept::VINTR;
        c.intercepts[w] &= !(1 << b);
        self.nmi_masked = false;
        self.awaiting_iret = None;
        self.flush_tlb();
        if self.shadow.is_some() {
            self.shadow = Some(GuestCrs {
                cr0: X86_CR0_RESET,
                ..GuestCrs::default()
            });
            self.sync_shadow();
        }
    }

    fn set_shadow_cr3(&mut self, cr3: u64) {
        if self.shadow.is_some() {
            self.vmcb_mut().save.cr3 = cr3;
        }
    }

    fn complete_exit(&mut self, mem: &dyn GuestMem) -> VmExit {
        self.nested_complete_exit(mem)
    }

    fn guest_mode(&self) -> bool {
        self.in_l2()
    }

    fn nested_check_events(&mut self, nmi: bool, irq: bool, mem: &dyn GuestMem) {
        self.nested_events(nmi, irq, mem);
    }

    fn get_nested_state(&mut self, hdr: &mut NestedStateHdr, data: &mut [u8]) -> usize {
        self.nested_state(hdr, data)
    }

    fn set_nested_state(&mut self, hdr: &NestedStateHdr, data: &[u8]) -> Result {
        self.restore_nested_state(hdr, data)
    }
}
