// SPDX-License-Identifier: GPL-2.0
//! Nested SVM (kvm-amd `nested=1`, upstream's svm/nested.c): the guest
//! (L1) runs its own guests (L2) with VMRUN.
//!
//! L1 runs on VMCB01, L2 on VMCB02, which VMRUN builds from L1's VMCB12
//! in guest memory and our own controls; the vCPU's accessors follow the
//! current one (`SvmVcpu::slot`). The general-purpose registers other
//! than RAX and RSP are shared, as on hardware. L2 runs on our nested page
//! tables directly: L1 gets no NPT in its CPUID, so VMCB12 cannot enable
//! nested paging and L2's physical addresses are L1's.
//!
//! An exit of L2 is L1's (a #VMEXIT written to VMCB12) when VMCB12
//! intercepts it (for I/O and MSRs: when L1's permission maps do), except
//! host interrupts and NPT faults, which stay ours; L1's own interrupts
//! and NMIs pending while L2 runs leave L2 with an INTR/NMI #VMEXIT when
//! L1 intercepts them and can take them. GIF is emulated (CLGI, STGI,
//! VMRUN sets it, #VMEXIT clears it): with GIF clear L1 takes no
//! interrupt or NMI. The L1 permission maps are read at each exit; ours
//! (every port and MSR intercepted) run the hardware.
//!
//! KVM_GET/SET_NESTED_STATE use upstream's layout. Not done: nested NPT,
//! vGIF, virtual VMLOAD/VMSAVE, LBR virtualization, pause filtering for
//! L2, TSC scaling, nested AVIC, SEV.

use super::{page_as_vmcb, page_as_vmcb_mut, SvmVcpu, VmcbSlot};
use crate::vmcb::{event, exit, int_ctl, intercept, ioio, Control, Save, Vmcb, MISC_ENABLE_NP};
use kernel::{page::Page, prelude::*};
use kvm::{
    defs::{
        paging::{Gpa, PAGE_SIZE},
        regs::{
            DR6_ACTIVE_LOW, DR7_FIXED_1, EFER_SVME, RAX, RSP, X86_CR0_CD, X86_CR0_NW, X86_EFLAGS_IF,
        },
        vector::{GP_VECTOR, UD_VECTOR},
    },
    nested_svm::{
        exit_owner, iopm_bits, l1_save_valid, map_address_valid, msrpm_bit, save_valid,
        vmcb_address_valid, ExitOwner, VmrunState, IOPM_SIZE, MSRPM_SIZE,
    },
    x86::vendor::{GuestMem, NestedStateHdr, VcpuArch, VmExit},
};

/// Length of VMRUN, VMLOAD, VMSAVE, STGI, CLGI and INVLPGA (0F 01 Dx).
const SVM_INSN_LEN: u64 = 3;

/// L1's controls for its L2, as VMRUN checked them (upstream's
/// `svm->nested.ctl`).
#[derive(Clone, Copy)]
pub(super) struct Vmcb12Ctl {
    intercepts: [u32; 6],
    iopm_base_pa: u64,
    msrpm_base_pa: u64,
    tsc_offset: u64,
    int_ctl: u32,
    int_vector: u32,
}

/// VMCB `int_ctl` bits of a pending virtual interrupt.
const V_IRQ_BITS: u32 = int_ctl::V_IRQ | (0xf << int_ctl::V_INTR_PRIO_SHIFT) | int_ctl::V_IGN_TPR;

impl Vmcb12Ctl {
    fn of(c: &Control) -> Self {
        Self {
            intercepts: c.intercepts,
            iopm_base_pa: c.iopm_base_pa,
            msrpm_base_pa: c.msrpm_base_pa,
            tsc_offset: c.tsc_offset,
            int_ctl: c.int_ctl,
            int_vector: c.int_vector,
        }
    }

    fn intercepts(&self, (w, b): intercept::Bit) -> bool {
        self.intercepts[w] & (1 << b) != 0
    }
}

/// L2 is running: where L1's VMCB12 is and what it asked for.
#[derive(Clone, Copy)]
struct GuestMode {
    vmcb12: Gpa,
    ctl: Vmcb12Ctl,
    /// Our interrupt window for L1's interrupts that L2 takes directly
    /// holds VMCB02's V_IRQ fields; L1's are in `ctl` meanwhile.
    l0_window: bool,
}

/// A vCPU's nested SVM state.
pub(super) struct Nested {
    /// L2's VMCB.
    pub(super) vmcb02: VmcbSlot,
    /// A page for images of L1's VMCBs (VMRUN, #VMEXIT, VMLOAD, VMSAVE,
    /// KVM_GET/SET_NESTED_STATE).
    scratch: Page,
    /// In guest mode, the control area of VMCB12 as VMRUN took it
    /// (upstream's `svm->nested.ctl`), for KVM_GET_NESTED_STATE.
    cached12: Page,
    /// Guest mode: L2 runs on [`Nested::vmcb02`].
    l2: Option<GuestMode>,
    /// L2 cleared EFER.SVME: we left guest mode, and L1 shuts down
    /// before it runs again (upstream's KVM_REQ_TRIPLE_FAULT there).
    triple_fault: bool,
    /// An exception for L2 that L1 intercepts, waiting for its #VMEXIT
    /// (vector, error code).
    exception_exit: Option<(u8, Option<u32>)>,
    /// L1's global interrupt flag.
    gif: bool,
    /// L1's EFER.SVME (L1's VMCB keeps the bit set for the hardware).
    svme: bool,
}

impl Nested {
    pub(super) fn new() -> Result<Self> {
        Ok(Self {
            vmcb02: VmcbSlot::new()?,
            scratch: Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
            cached12: Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
            l2: None,
            triple_fault: false,
            exception_exit: None,
            gif: true,
            svme: false,
        })
    }

    pub(super) fn in_l2(&self) -> bool {
        self.l2.is_some()
    }

    /// Power-on or INIT: L1 outside guest mode, GIF set, EFER.SVME clear.
    pub(super) fn reset(&mut self) {
        self.l2 = None;
        self.triple_fault = false;
        self.exception_exit = None;
        self.gif = true;
        self.svme = false;
    }

    /// Reads the VMCB at `gpa` into the scratch page.
    fn read_vmcb(&mut self, gpa: Gpa, mem: &dyn GuestMem) -> bool {
        mem.read(gpa, self.scratch_bytes())
    }

    /// Writes the scratch page to the VMCB at `gpa`.
    fn write_vmcb(&mut self, gpa: Gpa, mem: &dyn GuestMem) -> bool {
        mem.write(gpa, self.scratch_bytes())
    }

    /// Enters guest mode with the VMCB12 controls in `cached12`: VMCB02's
    /// controls from them and L1's (`v1`), L2's TLB flushed, GIF as given
    /// (VMRUN and KVM_SET_NESTED_STATE; VMCB02's guest state is theirs).
    fn enter_guest_mode(&mut self, vmcb12: Gpa, v1: &Vmcb, gif: bool) {
        let c12 = &page_as_vmcb(&self.cached12).control;
        build_vmcb02_control(self.vmcb02.get_mut(), v1, c12);
        self.l2 = Some(GuestMode {
            vmcb12,
            ctl: Vmcb12Ctl::of(c12),
            l0_window: false,
        });
        self.vmcb02.flush_pending = true;
        self.gif = gif;
    }

    fn scratch_bytes(&mut self) -> &mut [u8] {
        // SAFETY: the scratch page is ours, 4 KiB and direct-mapped;
        // `&mut self` makes this the only reference to it.
        unsafe {
            core::slice::from_raw_parts_mut(
                kvm::ext::bindings::rkvm_page_address(self.scratch.as_ptr()).cast::<u8>(),
                PAGE_SIZE as usize,
            )
        }
    }
}

/// The state VMLOAD and VMSAVE move (and VMRUN and #VMEXIT leave alone):
/// FS, GS, TR, LDTR with their hidden parts, KERNEL_GS_BASE, the SYSCALL
/// and SYSENTER MSRs.
fn copy_vmloadsave(to: &mut Save, from: &Save) {
    to.fs = from.fs;
    to.gs = from.gs;
    to.tr = from.tr;
    to.ldtr = from.ldtr;
    to.kernel_gs_base = from.kernel_gs_base;
    to.star = from.star;
    to.lstar = from.lstar;
    to.cstar = from.cstar;
    to.sfmask = from.sfmask;
    to.sysenter_cs = from.sysenter_cs;
    to.sysenter_esp = from.sysenter_esp;
    to.sysenter_eip = from.sysenter_eip;
}

/// Whether bit `bit` of L1's permission map at `base` (its page) is set;
/// an unreadable map counts as set (the exit is L1's).
fn map_bit_set(mem: &dyn GuestMem, base: u64, bit: u64) -> bool {
    let mut b = [0u8];
    !mem.read(Gpa::new((base & !0xfff) + bit / 8), &mut b) || b[0] & (1 << (bit % 8)) != 0
}

/// VMCB12's `int_ctl` with L2's V_IRQ (taken or not) and V_TPR from
/// VMCB02, unless our interrupt window holds VMCB02's V_IRQ (then L1's
/// are those `g` kept).
fn synced_int_ctl(g: &GuestMode, v2: &Vmcb) -> u32 {
    if g.l0_window {
        return g.ctl.int_ctl;
    }
    let mask = int_ctl::V_IRQ | int_ctl::V_TPR_MASK;
    (g.ctl.int_ctl & !mask) | (v2.control.int_ctl & mask)
}

/// VMRUN's consistency checks of VMCB12 (upstream's
/// nested_vmcb_check_controls() and nested_vmcb_check_save()); false:
/// VMEXIT_INVALID.
fn vmcb12_valid(v: &Vmcb) -> bool {
    controls_valid(&v.control) && save_valid(&vmrun_state(&v.save))
}

/// The state VMRUN checks, from a VMCB save area.
fn vmrun_state(s: &Save) -> VmrunState {
    VmrunState {
        efer: s.efer,
        cr0: s.cr0,
        cr3: s.cr3,
        cr4: s.cr4,
        dr6: s.dr6,
        dr7: s.dr7,
        rflags: s.rflags,
    }
}

/// VMCB12's controls (upstream's nested_vmcb_check_controls()): VMRUN
/// intercepted, an ASID, no nested paging (L1 has no NPT), permission
/// maps inside the physical address space.
fn controls_valid(c: &Control) -> bool {
    Vmcb12Ctl::of(c).intercepts(intercept::VMRUN)
        && c.asid != 0
        && c.misc_ctl & MISC_ENABLE_NP == 0
        && map_address_valid(c.msrpm_base_pa & !0xfff, MSRPM_SIZE)
        && map_address_valid(c.iopm_base_pa & !0xfff, IOPM_SIZE)
}

impl SvmVcpu {
    /// Whether L2 runs.
    pub(super) fn in_l2(&self) -> bool {
        self.nested.as_ref().is_some_and(|n| n.in_l2())
    }

    /// L1's global interrupt flag (always set without nested SVM).
    pub(super) fn gif(&self) -> bool {
        self.nested.as_ref().is_none_or(|n| n.gif)
    }

    fn guest_ctl(&self) -> Option<Vmcb12Ctl> {
        self.nested.as_ref()?.l2.map(|g| g.ctl)
    }

    /// The guest's EFER: L2's as it runs; L1's with its own SVME bit.
    pub(super) fn guest_efer(&self) -> u64 {
        let efer = self.guest_crs().efer;
        match &self.nested {
            Some(n) if n.in_l2() => efer,
            Some(n) if n.svme => efer,
            _ => efer & !EFER_SVME,
        }
    }

    /// L1 wrote EFER (WRMSR, KVM_SET_SREGS, KVM_SET_MSRS): its SVME bit.
    pub(super) fn set_l1_svme(&mut self, efer: u64) {
        if let Some(n) = &mut self.nested {
            if !n.in_l2() {
                n.svme = efer & EFER_SVME != 0;
            }
        }
    }

    /// In guest mode, how L1's interrupts are gated: `Some(None)` when
    /// L1 intercepts them (they exit L2), `Some(Some(if))` when L2 takes
    /// them directly, with the IF that gates them (L1's at VMRUN with
    /// V_INTR_MASKING, else L2's); None outside guest mode.
    pub(super) fn l2_interrupt_if(&self) -> Option<Option<bool>> {
        let ctl = self.guest_ctl()?;
        if ctl.intercepts(intercept::INTR) {
            return Some(None);
        }
        Some(Some(self.l1_if_gate(&ctl)))
    }

    /// The RFLAGS.IF that gates L1's interrupts while L2 runs.
    fn l1_if_gate(&self, ctl: &Vmcb12Ctl) -> bool {
        let rflags = if ctl.int_ctl & int_ctl::V_INTR_MASKING != 0 {
            self.vmcb01.get().save.rflags
        } else {
            self.vmcb().save.rflags
        };
        rflags & X86_EFLAGS_IF != 0
    }

    /// Our interrupt window while L2 runs (upstream's svm_set_vintr()
    /// and svm_clear_vintr() in guest mode). Needed only when L2 takes
    /// L1's interrupts directly gated by its own RFLAGS.IF (no INTR
    /// intercept, no V_INTR_MASKING): then a V_IRQ of ours, which
    /// displaces L1's for L2 until the VINTR exit, tells us when L2 sets
    /// IF. Otherwise nothing L2 does opens the window.
    pub(super) fn set_l2_interrupt_window(&mut self, on: bool) {
        let Some(n) = self.nested.as_deref_mut() else {
            return;
        };
        let Some(g) = n.l2.as_mut() else {
            return;
        };
        let v2 = n.vmcb02.get_mut();
        let (w, b) = intercept::VINTR;
        if on {
            if g.ctl.intercepts(intercept::INTR) || g.ctl.int_ctl & int_ctl::V_INTR_MASKING != 0 {
                return;
            }
            if !g.l0_window {
                // L1's V_IRQ, as L2 left it, is restored afterwards.
                let c2 = &v2.control;
                g.ctl.int_ctl = (g.ctl.int_ctl & !V_IRQ_BITS) | (c2.int_ctl & V_IRQ_BITS);
                g.ctl.int_vector = c2.int_vector;
                g.l0_window = true;
            }
            let c2 = &mut v2.control;
            c2.int_ctl = (c2.int_ctl & !V_IRQ_BITS) | V_IRQ_BITS;
            c2.intercepts[w] |= 1 << b;
        } else if g.l0_window {
            restore_l1_v_irq(v2, &g.ctl);
            g.l0_window = false;
        }
    }

    /// L2 (running, not userspace stuffing state) cleared EFER.SVME:
    /// undefined architecturally; as upstream, back to L1 without a
    /// #VMEXIT and L1 shuts down.
    pub(super) fn l2_cleared_svme(&mut self) {
        if self.in_l2() {
            self.leave_nested();
            if let Some(n) = &mut self.nested {
                n.triple_fault = true;
            }
        }
    }

    /// Whether L1 must shut down before it runs ([`Self::l2_cleared_svme`]).
    pub(super) fn take_triple_fault(&mut self) -> bool {
        self.nested
            .as_deref_mut()
            .is_some_and(|n| core::mem::take(&mut n.triple_fault))
    }

    /// Whether L2 runs and L1 intercepts NMIs (they exit L2).
    pub(super) fn l1_intercepts_nmi(&self) -> bool {
        self.guest_ctl()
            .is_some_and(|c| c.intercepts(intercept::NMI))
    }

    /// L1's TSC offset changed: L2's is L1's plus VMCB12's.
    pub(super) fn nested_tsc_offset_changed(&mut self) {
        let l1 = self.vmcb01.get().control.tsc_offset;
        if let Some(n) = &mut self.nested {
            if let Some(g) = n.l2 {
                n.vmcb02.get_mut().control.tsc_offset = l1.wrapping_add(g.ctl.tsc_offset);
            }
        }
    }

    /// `VmCompletion` of a [`VmExit::Vendor`]: an exit of L2 (L1's, or
    /// ours when L1 does not intercept it) or an SVM instruction.
    pub(super) fn nested_complete_exit(&mut self, mem: &dyn GuestMem) -> VmExit {
        let code = self.vmcb().control.exit_code;
        if let Some(ctl) = self.guest_ctl() {
            if self.l1_intercepts(&ctl, code, mem) {
                let c = &self.vmcb().control;
                let (info1, info2) = (c.exit_info_1, c.exit_info_2);
                self.nested_vmexit(code, info1, info2, true, mem);
                return VmExit::None;
            }
        }
        match code {
            exit::VMRUN | exit::VMLOAD | exit::VMSAVE | exit::STGI | exit::CLGI | exit::INVLPGA
                if self.nested.is_some() =>
            {
                self.svm_instruction(code, mem)
            }
            _ => self.decode_l0_exit(),
        }
    }

    /// Whether L1 asked for this exit of its L2 (upstream's
    /// nested_svm_exit_handled()).
    fn l1_intercepts(&self, ctl: &Vmcb12Ctl, code: u64, mem: &dyn GuestMem) -> bool {
        let info1 = self.vmcb().control.exit_info_1;
        match exit_owner(code) {
            ExitOwner::Host => false,
            ExitOwner::Intercept(w, b) => ctl.intercepts((w, b)),
            ExitOwner::IoPermission => {
                ctl.intercepts(intercept::IOIO_PROT) && self.l1_iopm_intercepts(ctl, info1, mem)
            }
            ExitOwner::MsrPermission => {
                let msr = self.gprs[kvm::defs::regs::RCX] as u32;
                ctl.intercepts(intercept::MSR_PROT)
                    && self.l1_msrpm_intercepts(ctl, msr, info1 == 1, mem)
            }
            ExitOwner::L1 => true,
        }
    }

    /// Whether L1's I/O permission map intercepts the access of an IOIO
    /// exit (EXITINFO1); an unreadable map intercepts.
    fn l1_iopm_intercepts(&self, ctl: &Vmcb12Ctl, info1: u64, mem: &dyn GuestMem) -> bool {
        let port = (info1 >> ioio::PORT_SHIFT) as u16;
        iopm_bits(port, ioio::size(info1)).any(|p| map_bit_set(mem, ctl.iopm_base_pa, p))
    }

    /// Whether L1's MSR permission map intercepts a RDMSR/WRMSR of `msr`;
    /// an unreadable map intercepts.
    fn l1_msrpm_intercepts(
        &self,
        ctl: &Vmcb12Ctl,
        msr: u32,
        write: bool,
        mem: &dyn GuestMem,
    ) -> bool {
        msrpm_bit(msr, write).is_none_or(|bit| map_bit_set(mem, ctl.msrpm_base_pa, bit))
    }

    /// Whether an exception the core or we inject goes to L1 as a
    /// #VMEXIT (L2 runs and L1 intercepts the vector); it then waits in
    /// [`Nested`] for [`SvmVcpu::nested_events`].
    pub(super) fn l1_takes_exception(&mut self, vector: u8, error_code: Option<u32>) -> bool {
        let Some(ctl) = self.guest_ctl() else {
            return false;
        };
        if !ctl.intercepts((intercept::EXCEPTION_WORD, u32::from(vector & 31))) {
            return false;
        }
        if let Some(n) = &mut self.nested {
            n.exception_exit = Some((vector, error_code));
        }
        true
    }

    /// Before injection while L2 runs (upstream's
    /// svm_check_nested_events()): an exception L1 intercepts, then an
    /// NMI, then an interrupt for L1 that L1 intercepts and can take now,
    /// become that #VMEXIT.
    pub(super) fn nested_events(&mut self, nmi: bool, irq: bool, mem: &dyn GuestMem) {
        let Some(ctl) = self.guest_ctl() else {
            return;
        };
        if let Some((vector, error_code)) =
            self.nested.as_mut().and_then(|n| n.exception_exit.take())
        {
            // EXITINFO2: the faulting address of a #PF (CR2 as the core
            // set it), as upstream's payload.
            let info2 = if vector == kvm::defs::vector::PF_VECTOR {
                self.vmcb().save.cr2
            } else {
                0
            };
            let code = exit::EXCP_BASE + u64::from(vector);
            self.nested_vmexit(code, u64::from(error_code.unwrap_or(0)), info2, false, mem);
            return;
        }
        if !self.gif() {
            return;
        }
        let code = if nmi && ctl.intercepts(intercept::NMI) && !self.nmi_masked {
            exit::NMI
        } else if irq && ctl.intercepts(intercept::INTR) && self.l1_if_gate(&ctl) {
            exit::INTR
        } else {
            return;
        };
        self.nested_vmexit(code, 0, 0, false, mem);
    }

    /// Emulates an SVM instruction of the guest (upstream's
    /// vmrun/vmload/vmsave/stgi/clgi/invlpga_interception()).
    fn svm_instruction(&mut self, code: u64, mem: &dyn GuestMem) -> VmExit {
        if self.guest_efer() & EFER_SVME == 0 {
            self.inject_exception(UD_VECTOR, None);
            return VmExit::None;
        }
        if self.cpl() != 0 {
            self.inject_exception(GP_VECTOR, Some(0));
            return VmExit::None;
        }
        let next = self.rip().wrapping_add(SVM_INSN_LEN);
        match code {
            exit::VMRUN => return self.nested_vmrun(mem),
            exit::VMLOAD | exit::VMSAVE => {
                let gpa = self.gprs[RAX];
                if !vmcb_address_valid(gpa) {
                    self.inject_exception(GP_VECTOR, Some(0));
                    return VmExit::None;
                }
                let Some(n) = self.nested.as_deref_mut() else {
                    return VmExit::None;
                };
                if !n.read_vmcb(Gpa::new(gpa), mem) {
                    return VmExit::MemoryFailure;
                }
                if code == exit::VMLOAD {
                    let from = page_as_vmcb(&n.scratch);
                    let to = match n.l2 {
                        Some(_) => n.vmcb02.get_mut(),
                        None => self.vmcb01.get_mut(),
                    };
                    copy_vmloadsave(&mut to.save, &from.save);
                } else {
                    let from = match n.l2 {
                        Some(_) => n.vmcb02.get(),
                        None => self.vmcb01.get(),
                    };
                    copy_vmloadsave(&mut page_as_vmcb_mut(&mut n.scratch).save, &from.save);
                    if !n.write_vmcb(Gpa::new(gpa), mem) {
                        return VmExit::MemoryFailure;
                    }
                }
            }
            exit::STGI | exit::CLGI => {
                if let Some(n) = &mut self.nested {
                    n.gif = code == exit::STGI;
                }
            }
            // INVLPGA: L2's TLB entries go (all of them, not just the one).
            _ => {
                if let Some(n) = &mut self.nested {
                    n.vmcb02.flush_pending = true;
                }
            }
        }
        self.skip_to(next);
        VmExit::None
    }

    /// VMRUN: checks L1's VMCB12 at RAX and enters L2 on VMCB02 built
    /// from it and our controls (upstream's nested_svm_vmrun() and
    /// enter_svm_guest_mode()).
    fn nested_vmrun(&mut self, mem: &dyn GuestMem) -> VmExit {
        // RAX is VMCB12's address, and L1's RAX to resume with.
        let (gpa, rsp) = (self.gprs[RAX], self.gprs[RSP]);
        let next = self.rip().wrapping_add(SVM_INSN_LEN);
        let Some(n) = self.nested.as_deref_mut() else {
            return VmExit::None;
        };
        if n.in_l2() {
            // L2's own VMRUN is always L1's (VMCB12 must intercept it).
            return VmExit::None;
        }
        if !vmcb_address_valid(gpa) {
            self.inject_exception(GP_VECTOR, Some(0));
            return VmExit::None;
        }
        if !n.read_vmcb(Gpa::new(gpa), mem) {
            return VmExit::MemoryFailure;
        }
        if !vmcb12_valid(page_as_vmcb(&n.scratch)) {
            let c = &mut page_as_vmcb_mut(&mut n.scratch).control;
            c.exit_code = exit::INVALID;
            c.exit_info_1 = 0;
            c.exit_info_2 = 0;
            if !n.write_vmcb(Gpa::new(gpa), mem) {
                return VmExit::MemoryFailure;
            }
            self.skip_to(next);
            return VmExit::None;
        }
        // L1's state: VMCB01 as it is, resuming after VMRUN.
        let v1 = self.vmcb01.get_mut();
        v1.save.rip = next;
        v1.save.rax = gpa;
        v1.save.rsp = rsp;
        v1.control.int_state &= !crate::vmcb::INTERRUPT_SHADOW;
        let v12 = page_as_vmcb(&n.scratch);
        page_as_vmcb_mut(&mut n.cached12).control = v12.control;
        build_vmcb02_save(n.vmcb02.get_mut(), self.vmcb01.get(), &v12.save);
        let (l2_rax, l2_rsp) = (v12.save.rax, v12.save.rsp);
        n.enter_guest_mode(Gpa::new(gpa), self.vmcb01.get(), true);
        self.gprs[RAX] = l2_rax;
        self.gprs[RSP] = l2_rsp;
        VmExit::None
    }

    /// Leaves L2 for L1 with exit `code`: L2's state and the exit go to
    /// VMCB12, L1 resumes from VMCB01 with GIF clear (upstream's
    /// nested_svm_vmexit()). `hw`: the exit came from the hardware (its
    /// EXITINTINFO describes the event being delivered); otherwise an
    /// event we were about to inject into L2 is reported instead.
    fn nested_vmexit(&mut self, code: u64, info1: u64, info2: u64, hw: bool, mem: &dyn GuestMem) {
        let (rax, rsp) = (self.gprs[RAX], self.gprs[RSP]);
        let Some(n) = self.nested.as_deref_mut() else {
            return;
        };
        let Some(g) = n.l2.take() else {
            return;
        };
        n.gif = false;
        if g.l0_window {
            restore_l1_v_irq(n.vmcb02.get_mut(), &g.ctl);
        }
        let have12 = n.read_vmcb(g.vmcb12, mem);
        {
            let v2 = n.vmcb02.get_mut();
            let c2 = &mut v2.control;
            let (ei, ei_err) = if c2.event_inj & event::VALID != 0 {
                (c2.event_inj, c2.event_inj_err)
            } else if hw && c2.exit_int_info & event::VALID != 0 {
                (c2.exit_int_info, c2.exit_int_info_err)
            } else {
                (0, 0)
            };
            c2.event_inj = 0;
            let v12 = page_as_vmcb_mut(&mut n.scratch);
            let (s12, s2) = (&mut v12.save, &v2.save);
            s12.es = s2.es;
            s12.cs = s2.cs;
            s12.ss = s2.ss;
            s12.ds = s2.ds;
            s12.gdtr = s2.gdtr;
            s12.idtr = s2.idtr;
            s12.efer = s2.efer;
            s12.cr0 = s2.cr0;
            s12.cr2 = s2.cr2;
            s12.cr3 = s2.cr3;
            s12.cr4 = s2.cr4;
            s12.rflags = s2.rflags;
            s12.rip = s2.rip;
            s12.rsp = rsp;
            s12.rax = rax;
            s12.dr7 = s2.dr7;
            s12.dr6 = s2.dr6;
            s12.cpl = s2.cpl;
            let c12 = &mut v12.control;
            let c2 = &v2.control;
            c12.int_ctl = synced_int_ctl(&g, v2);
            c12.int_state = c2.int_state;
            c12.exit_code = code;
            c12.exit_info_1 = info1;
            c12.exit_info_2 = info2;
            c12.exit_int_info = ei;
            c12.exit_int_info_err = ei_err;
            c12.next_rip = if hw { c2.next_rip } else { 0 };
            c12.event_inj = 0;
            c12.event_inj_err = 0;
            // What L2 left in the VMLOAD/VMSAVE registers is L1's now.
            copy_vmloadsave(&mut self.vmcb01.get_mut().save, &v2.save);
        }
        // A VMCB12 that is not RAM (any more, or after
        // KVM_SET_NESTED_STATE): L1 shuts down, as upstream.
        if !have12 || !n.write_vmcb(g.vmcb12, mem) {
            n.triple_fault = true;
        }
        let v1 = self.vmcb01.get_mut();
        v1.save.dr7 = DR7_FIXED_1;
        v1.save.cpl = 0;
        v1.save.efer |= EFER_SVME;
        v1.control.event_inj = 0;
        let (l1_rax, l1_rsp) = (v1.save.rax, v1.save.rsp);
        self.gprs[RAX] = l1_rax;
        self.gprs[RSP] = l1_rsp;
    }
}

/// Gives VMCB02 back L1's pending virtual interrupt for L2 after our
/// interrupt window, and the VINTR intercept only if L1 wants it.
fn restore_l1_v_irq(v2: &mut Vmcb, ctl: &Vmcb12Ctl) {
    let c2 = &mut v2.control;
    c2.int_ctl = (c2.int_ctl & !V_IRQ_BITS) | (ctl.int_ctl & V_IRQ_BITS);
    c2.int_vector = ctl.int_vector;
    let (w, b) = intercept::VINTR;
    if !ctl.intercepts(intercept::VINTR) {
        c2.intercepts[w] &= !(1 << b);
    }
}

/// VMCB02's controls for L2: ours with L1's intercepts added, L1's
/// interrupt controls for L2, the TSC offsets added (upstream's
/// nested_vmcb02_prepare_control()).
fn build_vmcb02_control(v2: &mut Vmcb, v1: &Vmcb, c12: &Control) {
    let c1 = &v1.control;
    let c2 = &mut v2.control;
    let mut ours = c1.intercepts;
    // L1's interrupt window, NMI-return tracking and CR8 exits are
    // about L1; VMMCALL in L2 is L1's business or a #UD.
    for (w, b) in [intercept::VINTR, intercept::IRET, intercept::VMMCALL] {
        ours[w] &= !(1 << b);
    }
    if c12.int_ctl & int_ctl::V_INTR_MASKING != 0 {
        let (w, b) = intercept::CR8_WRITE;
        ours[w] &= !(1 << b);
    }
    for (w, i) in c2.intercepts.iter_mut().enumerate() {
        *i = ours[w] | c12.intercepts[w];
    }
    c2.iopm_base_pa = c1.iopm_base_pa;
    c2.msrpm_base_pa = c1.msrpm_base_pa;
    c2.tsc_offset = c1.tsc_offset.wrapping_add(c12.tsc_offset);
    let l2_bits = int_ctl::V_TPR_MASK
        | int_ctl::V_IRQ
        | (0xf << int_ctl::V_INTR_PRIO_SHIFT)
        | int_ctl::V_IGN_TPR;
    c2.int_ctl = (c12.int_ctl & l2_bits) | int_ctl::V_INTR_MASKING;
    c2.int_vector = c12.int_vector;
    c2.int_state = c12.int_state;
    c2.exit_int_info = 0;
    c2.exit_int_info_err = 0;
    c2.misc_ctl = c1.misc_ctl;
    c2.nested_cr3 = c1.nested_cr3;
    c2.misc_ctl2 = 0;
    c2.event_inj = c12.event_inj;
    c2.event_inj_err = c12.event_inj_err;
    c2.next_rip = c12.next_rip;
    c2.pause_filter_count = 0;
    c2.pause_filter_thresh = 0;
}

/// VMCB02's guest state: VMCB12's, with L1's VMLOAD/VMSAVE state
/// (upstream's nested_vmcb02_prepare_save()).
fn build_vmcb02_save(v2: &mut Vmcb, v1: &Vmcb, s12: &Save) {
    let s2 = &mut v2.save;
    s2.es = s12.es;
    s2.cs = s12.cs;
    s2.ss = s12.ss;
    s2.ds = s12.ds;
    s2.gdtr = s12.gdtr;
    s2.idtr = s12.idtr;
    s2.efer = s12.efer;
    s2.cr0 = s12.cr0;
    s2.cr2 = s12.cr2;
    s2.cr3 = s12.cr3;
    s2.cr4 = s12.cr4;
    s2.dr6 = s12.dr6 | DR6_ACTIVE_LOW;
    s2.dr7 = s12.dr7 | DR7_FIXED_1;
    s2.rflags = s12.rflags | 2;
    s2.rip = s12.rip;
    s2.rsp = s12.rsp;
    s2.rax = s12.rax;
    s2.cpl = s12.cpl;
    s2.g_pat = v1.save.g_pat;
    copy_vmloadsave(s2, &v1.save);
}

/// KVM_STATE_NESTED_* flags as the u16 of the header.
const GUEST_MODE: u16 = kvm::ext::uapi::KVM_STATE_NESTED_GUEST_MODE as u16;
const RUN_PENDING: u16 = kvm::ext::uapi::KVM_STATE_NESTED_RUN_PENDING as u16;
const GIF_SET: u16 = kvm::ext::uapi::KVM_STATE_NESTED_GIF_SET as u16;
const FORMAT_SVM: u16 = kvm::ext::uapi::KVM_STATE_NESTED_FORMAT_SVM as u16;
/// The size of the data: one VMCB.
const STATE_VMCB_SIZE: usize = kvm::ext::uapi::KVM_STATE_NESTED_SVM_VMCB_SIZE as usize;

/// What VMRUN takes of L1's state into VMCB01 (upstream's
/// svm_copy_vmrun_state()).
fn copy_vmrun_state(to: &mut Save, from: &Save) {
    to.es = from.es;
    to.cs = from.cs;
    to.ss = from.ss;
    to.ds = from.ds;
    to.gdtr = from.gdtr;
    to.idtr = from.idtr;
    to.rflags = from.rflags | 2;
    to.efer = from.efer;
    to.cr0 = from.cr0;
    to.cr3 = from.cr3;
    to.cr4 = from.cr4;
    to.rax = from.rax;
    to.rsp = from.rsp;
    to.rip = from.rip;
    to.cpl = 0;
}

impl SvmVcpu {
    /// KVM_GET_NESTED_STATE (upstream's svm_get_nested_state()): GIF,
    /// and in guest mode VMCB12's address and a VMCB of VMCB12's
    /// controls (as VMRUN took them) and L1's state saved at VMRUN; L2's
    /// state is what KVM_GET_REGS and the others report meanwhile.
    pub(super) fn nested_state(&mut self, hdr: &mut NestedStateHdr, data: &mut [u8]) -> usize {
        hdr.format = FORMAT_SVM;
        hdr.flags = if self.gif() { GIF_SET } else { 0 };
        let Some(n) = self.nested.as_deref_mut() else {
            return 0;
        };
        let Some(g) = n.l2 else {
            return 0;
        };
        if data.len() < STATE_VMCB_SIZE {
            return 0;
        }
        hdr.flags |= GUEST_MODE;
        hdr.hdr[..8].copy_from_slice(&g.vmcb12.raw().to_ne_bytes());
        let int_ctl = synced_int_ctl(&g, n.vmcb02.get());
        let img = page_as_vmcb_mut(&mut n.scratch);
        img.control = page_as_vmcb(&n.cached12).control;
        img.control.int_ctl = int_ctl;
        // An event still to be injected into L2 is in KVM_GET_VCPU_EVENTS.
        img.control.event_inj = 0;
        img.control.event_inj_err = 0;
        img.save = self.vmcb01.get().save;
        data[..STATE_VMCB_SIZE].copy_from_slice(n.scratch_bytes());
        STATE_VMCB_SIZE
    }

    /// KVM_SET_NESTED_STATE (upstream's svm_set_nested_state()): out of
    /// guest mode with GIF as given, or into it with the given VMCB12
    /// address, controls and L1 state; L2's state is what the vCPU holds
    /// (set before by KVM_SET_SREGS and the others, or after).
    pub(super) fn restore_nested_state(&mut self, hdr: &NestedStateHdr, data: &[u8]) -> Result {
        if hdr.format != FORMAT_SVM || hdr.flags & !(GUEST_MODE | RUN_PENDING | GIF_SET) != 0 {
            return Err(EINVAL);
        }
        // Without EFER.SVME only "nothing" and GIF are valid states.
        if self.guest_efer() & EFER_SVME == 0 && hdr.flags != 0 && hdr.flags != GIF_SET {
            return Err(EINVAL);
        }
        let gif = hdr.flags & GIF_SET != 0;
        if hdr.flags & GUEST_MODE == 0 {
            self.leave_nested();
            if let Some(n) = &mut self.nested {
                n.gif = gif;
            }
            return Ok(());
        }
        let vmcb12 = u64::from_ne_bytes([
            hdr.hdr[0], hdr.hdr[1], hdr.hdr[2], hdr.hdr[3], hdr.hdr[4], hdr.hdr[5], hdr.hdr[6],
            hdr.hdr[7],
        ]);
        if !vmcb_address_valid(vmcb12) || data.len() < STATE_VMCB_SIZE {
            return Err(EINVAL);
        }
        let cr0 = self.vmcb().save.cr0;
        let Some(n) = self.nested.as_deref_mut() else {
            return Err(EINVAL);
        };
        n.scratch_bytes().copy_from_slice(&data[..STATE_VMCB_SIZE]);
        let img = page_as_vmcb(&n.scratch);
        if !controls_valid(&img.control)
            || (cr0 & X86_CR0_CD == 0 && cr0 & X86_CR0_NW != 0)
            || !l1_save_valid(&vmrun_state(&img.save))
        {
            return Err(EINVAL);
        }
        if n.l2.is_none() {
            // L2's state, set while out of guest mode, moves to VMCB02.
            n.vmcb02.get_mut().save = self.vmcb01.get().save;
        }
        copy_vmrun_state(&mut self.vmcb01.get_mut().save, &img.save);
        let cached = page_as_vmcb_mut(&mut n.cached12);
        cached.control = img.control;
        cached.control.exit_int_info = 0;
        // The L2 EFER VMRUN required (KVM_SET_SREGS hides SVME).
        n.vmcb02.get_mut().save.efer |= EFER_SVME;
        n.enter_guest_mode(Gpa::new(vmcb12), self.vmcb01.get(), gif);
        n.svme = true;
        Ok(())
    }

    /// Leaves guest mode without a #VMEXIT (upstream's
    /// svm_leave_nested()): L1 resumes from VMCB01 as VMRUN left it.
    fn leave_nested(&mut self) {
        let Some(n) = self.nested.as_deref_mut() else {
            return;
        };
        if n.l2.take().is_some() {
            let v1 = self.vmcb01.get();
            let (rax, rsp) = (v1.save.rax, v1.save.rsp);
            self.gprs[RAX] = rax;
            self.gprs[RSP] = rsp;
        }
    }
}
