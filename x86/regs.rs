// SPDX-License-Identifier: GPL-2.0
//! Register-state ioctls: REGS, SREGS, FPU, XSAVE, XCRS, DEBUGREGS.

use crate::defs::regs::{
    EFER_LMA, R8, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP, X86_CR0_PG, X86_CR4_PAE, X86_EFLAGS_FIXED,
};
use crate::{
    defs::{
        self,
        msr::MSR_IA32_APICBASE,
        paging::{Gpa, PAE_CR3_MASK, PDPTE_RESERVED_LOW, PT_PRESENT_MASK},
        regs::CR8_RESERVED_BITS,
    },
    ext::{
        fpu::regs::host_xcr0,
        uaccess::{read_arg, read_bytes, write_arg, write_bytes},
        uapi,
    },
    virt::{kick::REQ_EVENT, vcpu::Vcpu, vm::Vm},
    x86::{cpuid, events, msrs, vcpu::VcpuState, vendor::InjectedEvent},
};
use kernel::prelude::*;

/// KVM_GET_REGS.
pub(crate) fn get_regs(st: &VcpuState, arg: usize) -> Result {
    write_arg(arg, &regs(st))
}

/// The registers KVM_GET_REGS (and kvm_run's sync registers) report.
pub(crate) fn regs(st: &VcpuState) -> uapi::kvm_regs {
    let a = &*st.hw;
    let g = *a.gprs();
    uapi::kvm_regs {
        rax: g[RAX],
        rbx: g[RBX],
        rcx: g[RCX],
        rdx: g[RDX],
        rsi: g[RSI],
        rdi: g[RDI],
        rsp: g[RSP],
        rbp: g[RBP],
        r8: g[R8],
        r9: g[R8 + 1],
        r10: g[R8 + 2],
        r11: g[R8 + 3],
        r12: g[R8 + 4],
        r13: g[R8 + 5],
        r14: g[R8 + 6],
        r15: g[R8 + 7],
        rip: a.rip(),
        rflags: events::guest_rflags(st),
    }
}

/// KVM_SET_REGS.
pub(crate) fn set_regs(st: &mut VcpuState, arg: usize) -> Result {
    set_regs_from(st, &read_arg(arg)?);
    Ok(())
}

/// Loads `r` (KVM_SET_REGS, kvm_run's sync registers): also abandons an
/// exit userspace did not complete.
pub(crate) fn set_regs_from(st: &mut VcpuState, r: &uapi::kvm_regs) {
    let g = st.hw.gprs_mut();
    g[RAX] = r.rax;
    g[RBX] = r.rbx;
    g[RCX] = r.rcx;
    g[RDX] = r.rdx;
    g[RSI] = r.rsi;
    g[RDI] = r.rdi;
    g[RSP] = r.rsp;
    g[RBP] = r.rbp;
    g[R8] = r.r8;
    g[R8 + 1] = r.r9;
    g[R8 + 2] = r.r10;
    g[R8 + 3] = r.r11;
    g[R8 + 4] = r.r12;
    g[R8 + 5] = r.r13;
    g[R8 + 6] = r.r14;
    g[R8 + 7] = r.r15;
    st.hw.set_rip(r.rip);
    events::set_guest_rflags(st, r.rflags | X86_EFLAGS_FIXED);
    st.reset_emulator();
    st.completion.cancel();
}

/// CR8: the in-kernel LAPIC's task priority, or the core's copy.
pub(crate) fn cr8(vcpu: &Vcpu, st: &VcpuState) -> u64 {
    match vcpu.lapic() {
        Some(l) => l.lock().cr8(),
        None => st.msrs.cr8,
    }
}

/// The state KVM_GET_SREGS and KVM_GET_SREGS2 share: the vendor's
/// segments, descriptor tables and control registers, CR8 and APIC_BASE
/// (the in-kernel LAPIC's when there is one).
fn sregs_common(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> uapi::kvm_sregs {
    let mut s = uapi::kvm_sregs::default();
    st.hw.get_sregs(&mut s);
    s.cr8 = cr8(vcpu, st);
    s.apic_base = msrs::get(vm, vcpu, st, MSR_IA32_APICBASE, true).unwrap_or(0);
    s
}

/// KVM_GET_SREGS.
pub(crate) fn get_sregs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    write_arg(arg, &sregs(vm, vcpu, st))
}

/// What KVM_GET_SREGS (and kvm_run's sync registers) report: also the
/// injected interrupt's bit in `interrupt_bitmap`.
pub(crate) fn sregs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> uapi::kvm_sregs {
    let mut s = sregs_common(vm, vcpu, st);
    let injected = match st.hw.injected_event() {
        InjectedEvent::Interrupt {
            vector,
            soft: false,
        } => Some(vector),
        _ => st.events.irq(),
    };
    if let Some(v) = injected {
        s.interrupt_bitmap[usize::from(v / 64)] |= 1 << (v % 64);
    }
    s
}

/// What KVM_SET_SREGS and KVM_SET_SREGS2 share, after upstream's
/// kvm_is_valid_sregs() and APIC_BASE checks (both before anything
/// changes): the vendor's state, CR8 (ignored when reserved bits are set,
/// as upstream), APIC_BASE.
fn set_sregs_common(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    s: &uapi::kvm_sregs,
    load: bool,
) -> Result {
    msrs::check_sregs(st, s)?;
    msrs::set(vm, vcpu, st, MSR_IA32_APICBASE, s.apic_base, true)?;
    st.hw.set_sregs(s)?;
    // Shadow paging: a PAE guest's PDPTEs are loaded again, as upstream's
    // __set_sregs() does.
    st.shadow.cr3_written();
    // Under PAE paging the PDPTEs are loaded (a failure is ignored, as
    // upstream), unless KVM_SET_SREGS2 brings them.
    if load && pae_paging(s.cr0, s.cr4, s.efer) {
        load_pdptrs(vm, st, s.cr3);
    }
    if s.cr8 & CR8_RESERVED_BITS == 0 {
        match vcpu.lapic() {
            Some(l) => {
                l.lock().set_cr8(s.cr8);
                st.hw.set_v_tpr(s.cr8 as u8);
                vcpu.kick().make_request(REQ_EVENT);
            }
            None => st.msrs.cr8 = s.cr8,
        }
    }
    Ok(())
}

/// KVM_SET_SREGS.
pub(crate) fn set_sregs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    set_sregs_from(vm, vcpu, st, &read_arg(arg)?)
}

/// Loads `s` (KVM_SET_SREGS, kvm_run's sync registers): the lowest bit of
/// `interrupt_bitmap` becomes the interrupt to inject (upstream's
/// kvm_queue_interrupt()).
pub(crate) fn set_sregs_from(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    s: &uapi::kvm_sregs,
) -> Result {
    set_sregs_common(vm, vcpu, st, s, true)?;
    let pending = s
        .interrupt_bitmap
        .iter()
        .enumerate()
        .find(|(_, w)| **w != 0)
        .map(|(i, w)| (i * 64) as u32 + w.trailing_zeros());
    if let Some(v) = pending.and_then(|v| u8::try_from(v).ok()) {
        st.hw.set_injected_event(InjectedEvent::Interrupt {
            vector: v,
            soft: false,
        });
        vcpu.kick().make_request(REQ_EVENT);
    }
    Ok(())
}

/// Whether the guest uses PAE paging outside long mode (its four PDPTEs
/// matter, and KVM_GET/SET_SREGS2 carry them).
pub(crate) fn pae_paging(cr0: u64, cr4: u64, efer: u64) -> bool {
    cr0 & X86_CR0_PG != 0 && cr4 & X86_CR4_PAE != 0 && efer & EFER_LMA == 0
}

/// The PAE PDPTEs as KVM holds them (upstream's `pdptrs[]` and the
/// VCPU_REG_PDPTR cache): loaded from guest memory when CR0, CR3 or CR4
/// changes make them matter, set by KVM_SET_SREGS2, and read again from
/// memory (if valid) on the first use after the guest ran.
#[derive(Default)]
pub(crate) struct Pdptrs {
    regs: [u64; 4],
    /// `regs` are current (else they are reloaded when asked for).
    avail: bool,
    /// `regs` came from KVM_SET_SREGS2: they stay until the next load
    /// (upstream's `pdptrs_from_userspace`).
    from_user: bool,
}

impl Pdptrs {
    /// The guest ran: PDPTEs loaded from memory may have changed there.
    pub(crate) fn invalidate(&mut self) {
        if !self.from_user {
            self.avail = false;
        }
    }
}

/// PDPTE bits that must be 0 in a present entry: 1-2, 5-8, and those from
/// MAXPHYADDR up (NX included).
fn pdpte_reserved(maxphyaddr: u8) -> u64 {
    let phys = u64::MAX.checked_shl(u32::from(maxphyaddr)).unwrap_or(0);
    phys | PDPTE_RESERVED_LOW
}

/// Upstream's load_pdptrs(): reads the four PDPTEs at `cr3` and takes
/// them if every present one is valid; `false` (and the old ones kept)
/// otherwise, or when `cr3` is not in RAM.
pub(crate) fn load_pdptrs(vm: &Vm, st: &mut VcpuState, cr3: u64) -> bool {
    let base = cr3 & PAE_CR3_MASK;
    let mut p = [0u64; 4];
    for (gpa, v) in (base..).step_by(8).zip(p.iter_mut()) {
        let mut w = [0u8; 8];
        if !matches!(vm.mmu().read_guest(Gpa::new(gpa), &mut w), Ok(true)) {
            return false;
        }
        *v = u64::from_le_bytes(w);
    }
    let rsvd = pdpte_reserved(cpuid::guest_maxphyaddr(st));
    if p.iter().any(|e| e & PT_PRESENT_MASK != 0 && e & rsvd != 0) {
        return false;
    }
    st.pdptrs = Pdptrs {
        regs: p,
        avail: true,
        from_user: false,
    };
    true
}

/// The PDPTEs: reloaded from memory at CR3 if the guest ran since they
/// were last loaded (invalid ones in memory leave the old values).
fn pdptrs(vm: &Vm, st: &mut VcpuState) -> [u64; 4] {
    if !st.pdptrs.avail {
        st.pdptrs.avail = true;
        load_pdptrs(vm, st, st.hw.cr3());
    }
    st.pdptrs.regs
}

/// KVM_GET_SREGS2: KVM_GET_SREGS without the interrupt bitmap, with the
/// PDPTEs under PAE paging.
pub(crate) fn get_sregs2(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let s = sregs_common(vm, vcpu, st);
    let mut s2 = uapi::kvm_sregs2 {
        cs: s.cs,
        ds: s.ds,
        es: s.es,
        fs: s.fs,
        gs: s.gs,
        ss: s.ss,
        tr: s.tr,
        ldt: s.ldt,
        gdt: s.gdt,
        idt: s.idt,
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        apic_base: s.apic_base,
        flags: 0,
        pdptrs: [0; 4],
    };
    if pae_paging(s.cr0, s.cr4, s.efer) {
        s2.pdptrs = pdptrs(vm, st);
        s2.flags |= u64::from(uapi::KVM_SREGS2_FLAGS_PDPTRS_VALID);
    }
    write_arg(arg, &s2)
}

/// KVM_SET_SREGS2: with KVM_SREGS2_FLAGS_PDPTRS_VALID (only under PAE
/// paging, else EINVAL) the PDPTEs are userspace's until the vCPU runs.
pub(crate) fn set_sregs2(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let s2: uapi::kvm_sregs2 = read_arg(arg)?;
    let valid = u64::from(uapi::KVM_SREGS2_FLAGS_PDPTRS_VALID);
    if s2.flags & !valid != 0 {
        return Err(EINVAL);
    }
    let with_pdptrs = s2.flags & valid != 0;
    if with_pdptrs && !pae_paging(s2.cr0, s2.cr4, s2.efer) {
        return Err(EINVAL);
    }
    let s = uapi::kvm_sregs {
        cs: s2.cs,
        ds: s2.ds,
        es: s2.es,
        fs: s2.fs,
        gs: s2.gs,
        ss: s2.ss,
        tr: s2.tr,
        ldt: s2.ldt,
        gdt: s2.gdt,
        idt: s2.idt,
        cr0: s2.cr0,
        cr2: s2.cr2,
        cr3: s2.cr3,
        cr4: s2.cr4,
        cr8: s2.cr8,
        efer: s2.efer,
        apic_base: s2.apic_base,
        interrupt_bitmap: [0; 4],
    };
    set_sregs_common(vm, vcpu, st, &s, !with_pdptrs)?;
    if with_pdptrs {
        st.pdptrs = Pdptrs {
            regs: s2.pdptrs,
            avail: true,
            from_user: true,
        };
    }
    Ok(())
}

/// Size of the uabi XSAVE buffer (`KVM_CAP_XSAVE2`): at least 4 KiB.
pub(crate) fn xsave_size() -> usize {
    // CPUID.(EAX=0DH,ECX=0):EBX is the size for the host's current XCR0,
    // the most the guest can enable.
    let r = core::arch::x86_64::__cpuid_count(0xd, 0);
    (r.ebx as usize).max(KVM_XSAVE_LEGACY_SIZE)
}

/// Offsets in the FXSAVE (legacy XSAVE) area.
mod fx {
    pub(super) const FCW: usize = 0;
    pub(super) const FSW: usize = 2;
    pub(super) const FTW: usize = 4;
    pub(super) const FOP: usize = 6;
    pub(super) const FIP: usize = 8;
    pub(super) const FDP: usize = 16;
    pub(super) const ST0: usize = 32;
    pub(super) const XMM0: usize = 160;
    /// XSTATE_BV in the XSAVE header (after the 512-byte legacy area).
    pub(super) const XSTATE_BV: usize = 512;
}

fn guest_xsave(st: &mut VcpuState, size: usize) -> Result<KVec<u8>> {
    let mut buf = KVec::from_elem(0u8, size, GFP_KERNEL)?;
    st.fpu.get_uabi(&mut buf, host_xcr0(), 0);
    Ok(buf)
}

fn rd16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn rd64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// KVM_GET_FPU (from the legacy area of the XSAVE image).
pub(crate) fn get_fpu(st: &mut VcpuState, arg: usize) -> Result {
    let b = guest_xsave(st, KVM_XSAVE_LEGACY_SIZE)?;
    let mut f = uapi::kvm_fpu::default();
    for i in 0..8 {
        f.fpr[i].copy_from_slice(&b[fx::ST0 + 16 * i..fx::ST0 + 16 * i + 16]);
    }
    f.fcw = rd16(&b, fx::FCW);
    f.fsw = rd16(&b, fx::FSW);
    f.ftwx = b[fx::FTW];
    f.last_opcode = rd16(&b, fx::FOP);
    f.last_ip = rd64(&b, fx::FIP);
    f.last_dp = rd64(&b, fx::FDP);
    for i in 0..16 {
        f.xmm[i].copy_from_slice(&b[fx::XMM0 + 16 * i..fx::XMM0 + 16 * i + 16]);
    }
    // Upstream never reports MXCSR here (it stays 0) nor sets it in
    // KVM_SET_FPU; keep that ABI.
    write_arg(arg, &f)
}

/// KVM_SET_FPU (into the legacy area of the XSAVE image).
pub(crate) fn set_fpu(st: &mut VcpuState, arg: usize) -> Result {
    let f: uapi::kvm_fpu = read_arg(arg)?;
    let mut b = guest_xsave(st, KVM_XSAVE_LEGACY_SIZE)?;
    for i in 0..8 {
        b[fx::ST0 + 16 * i..fx::ST0 + 16 * i + 16].copy_from_slice(&f.fpr[i]);
    }
    b[fx::FCW..fx::FCW + 2].copy_from_slice(&f.fcw.to_le_bytes());
    b[fx::FSW..fx::FSW + 2].copy_from_slice(&f.fsw.to_le_bytes());
    b[fx::FTW] = f.ftwx;
    b[fx::FOP..fx::FOP + 2].copy_from_slice(&f.last_opcode.to_le_bytes());
    b[fx::FIP..fx::FIP + 8].copy_from_slice(&f.last_ip.to_le_bytes());
    b[fx::FDP..fx::FDP + 8].copy_from_slice(&f.last_dp.to_le_bytes());
    for i in 0..16 {
        b[fx::XMM0 + 16 * i..fx::XMM0 + 16 * i + 16].copy_from_slice(&f.xmm[i]);
    }
    // The x87 and SSE state are now explicit, not in their init state.
    b[fx::XSTATE_BV] |= (defs::regs::XFEATURE_MASK_FP | defs::regs::XFEATURE_MASK_SSE) as u8;
    st.fpu.set_uabi(&b, host_xcr0())
}

/// The legacy `struct kvm_xsave` size.
const KVM_XSAVE_LEGACY_SIZE: usize = core::mem::size_of::<uapi::kvm_xsave>();

/// KVM_GET_XSAVE: the legacy 4 KiB image.
pub(crate) fn get_xsave(st: &mut VcpuState, arg: usize) -> Result {
    write_bytes(arg as u64, &guest_xsave(st, KVM_XSAVE_LEGACY_SIZE)?)
}

/// KVM_GET_XSAVE2: the image in the size KVM_CAP_XSAVE2 reports.
pub(crate) fn get_xsave2(st: &mut VcpuState, arg: usize) -> Result {
    write_bytes(arg as u64, &guest_xsave(st, xsave_size())?)
}

/// KVM_SET_XSAVE.
pub(crate) fn set_xsave(st: &mut VcpuState, arg: usize) -> Result {
    let mut b = KVec::from_elem(0u8, xsave_size(), GFP_KERNEL)?;
    read_bytes(arg as u64, &mut b)?;
    st.fpu.set_uabi(&b, host_xcr0())
}

/// KVM_GET_XCRS.
pub(crate) fn get_xcrs(st: &mut VcpuState, arg: usize) -> Result {
    let mut x = uapi::kvm_xcrs {
        nr_xcrs: 1,
        ..Default::default()
    };
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = st.msrs.xcr0();
    write_arg(arg, &x)
}

/// KVM_SET_XCRS.
pub(crate) fn set_xcrs(st: &mut VcpuState, arg: usize) -> Result {
    let x: uapi::kvm_xcrs = read_arg(arg)?;
    if x.nr_xcrs as usize > x.xcrs.len() || x.flags != 0 {
        return Err(EINVAL);
    }
    for e in x.xcrs.iter().take(x.nr_xcrs as usize) {
        if e.xcr == 0 {
            msrs::set_xcr(st, 0, e.value)?;
        }
    }
    Ok(())
}

/// KVM_GET_DEBUGREGS.
pub(crate) fn get_debugregs(st: &mut VcpuState, arg: usize) -> Result {
    let mut d = uapi::kvm_debugregs::default();
    for i in 0..4 {
        d.db[i] = st.hw.dr(i as u8);
    }
    d.dr6 = st.hw.dr(6);
    d.dr7 = st.hw.dr(7);
    write_arg(arg, &d)
}

/// KVM_SET_DEBUGREGS.
pub(crate) fn set_debugregs(st: &mut VcpuState, arg: usize) -> Result {
    let d: uapi::kvm_debugregs = read_arg(arg)?;
    if d.flags != 0 || d.dr6 >> 32 != 0 || d.dr7 >> 32 != 0 {
        return Err(EINVAL);
    }
    for i in 0..4 {
        st.hw.set_dr(i as u8, d.db[i]);
    }
    st.hw.set_dr(6, d.dr6);
    st.hw.set_dr(7, d.dr7);
    Ok(())
}
