// SPDX-License-Identifier: GPL-2.0
//! Register-state ioctls: REGS, FPU, XSAVE, XCRS, DEBUGREGS.

use crate::{
    x86::vendor::gpr,
    x86::events,
    ext::uapi,
    x86::msrs,
    virt::vcpu::VcpuState,
    virt::vm::{read_arg, write_arg},
};
use kernel::{
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

/// RFLAGS bit 1, always set.
const X86_EFLAGS_FIXED: u64 = 1 << 1;

/// KVM_GET_REGS.
pub(crate) fn get_regs(st: &VcpuState) -> uapi::kvm_regs {
    let a = &*st.arch;
    let g = a.gprs().0;
    uapi::kvm_regs {
        rax: g[gpr::RAX],
        rbx: g[gpr::RBX],
        rcx: g[gpr::RCX],
        rdx: g[gpr::RDX],
        rsi: g[gpr::RSI],
        rdi: g[gpr::RDI],
        rsp: g[gpr::RSP],
        rbp: g[gpr::RBP],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: a.rip(),
        rflags: events::guest_rflags(st),
    }
}

/// KVM_SET_REGS.
pub(crate) fn set_regs(st: &mut VcpuState, r: &uapi::kvm_regs) {
    let g = &mut st.arch.gprs_mut().0;
    g[gpr::RAX] = r.rax;
    g[gpr::RBX] = r.rbx;
    g[gpr::RCX] = r.rcx;
    g[gpr::RDX] = r.rdx;
    g[gpr::RSI] = r.rsi;
    g[gpr::RDI] = r.rdi;
    g[gpr::RSP] = r.rsp;
    g[gpr::RBP] = r.rbp;
    g[8] = r.r8;
    g[9] = r.r9;
    g[10] = r.r10;
    g[11] = r.r11;
    g[12] = r.r12;
    g[13] = r.r13;
    g[14] = r.r14;
    g[15] = r.r15;
    st.arch.set_rip(r.rip);
    events::set_guest_rflags(st, r.rflags | X86_EFLAGS_FIXED);
    st.emulator.reset();
    st.pending = crate::x86::run::Pending::None;
}

/// Size of the uabi XSAVE buffer (`KVM_CAP_XSAVE2`): at least 4 KiB.
pub(crate) fn xsave_size() -> usize {
    // CPUID.(EAX=0DH,ECX=0):EBX is the size for the host's current XCR0,
    // the most the guest can enable.
    let r = core::arch::x86_64::__cpuid_count(0xd, 0);
    (r.ebx as usize).max(4096)
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
    st.fpu.get_uabi(&mut buf, msrs::host_xcr0(), 0);
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
    let b = guest_xsave(st, 4096)?;
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
    let mut b = guest_xsave(st, 4096)?;
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
    b[fx::XSTATE_BV] |= (msrs::XFEATURE_MASK_FP | msrs::XFEATURE_MASK_SSE) as u8;
    st.fpu.set_uabi(&b, msrs::host_xcr0())
}

/// KVM_GET_XSAVE (`size` 4096) and KVM_GET_XSAVE2.
pub(crate) fn get_xsave(st: &mut VcpuState, arg: usize, size: usize) -> Result {
    let b = guest_xsave(st, size)?;
    UserSlice::new(UserPtr::from_addr(arg), size).writer().write_slice(&b)
}

/// KVM_SET_XSAVE.
pub(crate) fn set_xsave(st: &mut VcpuState, arg: usize) -> Result {
    let size = xsave_size();
    let mut b = KVec::from_elem(0u8, size, GFP_KERNEL)?;
    UserSlice::new(UserPtr::from_addr(arg), size).reader().read_slice(&mut b)?;
    st.fpu.set_uabi(&b, msrs::host_xcr0())
}

/// KVM_GET_XCRS.
pub(crate) fn get_xcrs(st: &mut VcpuState, arg: usize) -> Result {
    let mut x = uapi::kvm_xcrs::default();
    x.nr_xcrs = 1;
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = st.xcr0;
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
        d.db[i] = st.arch.dr(i as u8);
    }
    d.dr6 = st.arch.dr(6);
    d.dr7 = st.arch.dr(7);
    write_arg(arg, &d)
}

/// KVM_SET_DEBUGREGS.
pub(crate) fn set_debugregs(st: &mut VcpuState, arg: usize) -> Result {
    let d: uapi::kvm_debugregs = read_arg(arg)?;
    if d.flags != 0 || d.dr6 >> 32 != 0 || d.dr7 >> 32 != 0 {
        return Err(EINVAL);
    }
    for i in 0..4 {
        st.arch.set_dr(i as u8, d.db[i]);
    }
    st.arch.set_dr(6, d.dr6);
    st.arch.set_dr(7, d.dr7);
    Ok(())
}
