// SPDX-License-Identifier: GPL-2.0
//! The x86 state of a vCPU behind its mutex (upstream's `kvm_vcpu_arch`),
//! and the x86 vCPU ioctls (upstream's kvm_arch_vcpu_ioctl()).

use crate::{
    defs::vector::UD_VECTOR,
    emulate::Emulator,
    ext::{
        fpu::GuestFpu,
        trace,
        uaccess::{self, read_arg, write_arg},
        uapi,
    },
    virt::{
        halt_poll::HaltPoll,
        ioctl::*,
        kick::{VcpuKick, REQ_EVENT},
        vcpu::Vcpu,
        vm::Vm,
    },
    x86::{
        cpuid::{self, GuestCpuid},
        events::{self, GuestDebug},
        irq::lapic::{self, LapicVcpu},
        kvmclock::{self, VcpuClock},
        mmu::shadow::VcpuShadow,
        msrs::{self, GenericMsrs},
        regs,
        run::Completion,
        vcpu_events::{MpState, PendingEvents},
        vendor::{NestedStateHdr, VcpuArch},
    },
};
use kernel::{prelude::*, sync::Arc};

/// Everything only the thread holding the vCPU touches.
pub(crate) struct VcpuState {
    /// The vendor's part: its hardware state and the world switch.
    pub(crate) hw: KBox<dyn VcpuArch>,
    /// What KVM_SET_CPUID2 set.
    pub(crate) cpuid: GuestCpuid,
    /// An exit to userspace whose completion the next KVM_RUN finishes.
    pub(crate) completion: Completion,
    /// Guest FPU/XSAVE state.
    pub(crate) fpu: GuestFpu,
    /// MSRs the core keeps for every vendor, XCR0 and CR8.
    pub(crate) msrs: GenericMsrs,
    /// The instruction emulator's state across exits, in its own
    /// allocation (it holds a 1 KiB string-I/O buffer): while the emulator
    /// runs it is taken out (`None`), which moves a pointer, not the state.
    pub(crate) emulator: Option<KBox<Emulator>>,
    /// Interrupts and NMIs waiting to be injected.
    pub(crate) events: PendingEvents,
    /// Running, halted, or waiting for INIT/SIPI.
    pub(crate) mp_state: MpState,
    /// How long a halt polls before sleeping.
    pub(crate) halt_poll: HaltPoll,
    /// KVM_SET_GUEST_DEBUG state.
    pub(crate) debug: GuestDebug,
    /// KVM_SET_SIGNAL_MASK: the mask while in KVM_RUN.
    pub(crate) sigmask: Option<u64>,
    /// The LAPIC's timer and VAPIC/TPR-reporting state (with an in-kernel
    /// LAPIC).
    pub(crate) lapic: LapicVcpu,
    /// kvmclock (MSR_KVM_SYSTEM_TIME_NEW).
    pub(crate) clock: VcpuClock,
    /// The shadow root the vCPU runs on (shadow paging only).
    pub(crate) shadow: VcpuShadow,
    /// The PAE PDPTEs (KVM_GET/SET_SREGS2, PAE checks of CR writes).
    pub(crate) pdptrs: regs::Pdptrs,
    /// The vCPU entered the guest at least once (its CPU model, e.g. the
    /// feature MSRs, is fixed from then on).
    pub(crate) has_run: bool,
}

impl VcpuState {
    /// vCPU `id`'s state at creation (power-on reset): the fallible parts
    /// are made here, the rest is written in place by the returned
    /// initialiser (the state is kilobytes; no copy of it goes on the
    /// stack).
    pub(crate) fn new(
        vm: &Vm,
        id: u32,
        bsp: bool,
        kick: &Arc<VcpuKick>,
        lapic_in_kernel: bool,
    ) -> Result<impl Init<Self>> {
        let mut hw = vm.vendor().ops().create_vcpu(id, vm.mmu().tdp_root())?;
        hw.set_disabled_exits(vm.arch().disabled_exits());
        // #UD exits, as upstream: the KVM_FEP prefix and the other
        // vendor's hypercall instruction are recognised there.
        hw.set_exception_intercept(UD_VECTOR, true);
        // All vCPUs share one TSC (upstream synchronises at creation).
        hw.set_tsc_offset(kvmclock::tsc_write(vm, 0));
        let fpu = GuestFpu::new()?;
        let lapic = LapicVcpu::new(kick, lapic_in_kernel)?;
        let shadow = VcpuShadow::new(vm.mmu().is_shadow());
        // Copied from a constant straight into the allocation (building
        // it with `Emulator::new()` would put its 1.7 KiB on the stack).
        const IDLE: Emulator = Emulator::new();
        let emulator = KBox::write(KBox::new_uninit(GFP_KERNEL)?, IDLE);
        let ucode_rev = vm.vendor().ops().reset_ucode_rev();
        Ok(init!(Self {
            hw,
            cpuid: GuestCpuid::new(),
            completion: Completion::new(),
            fpu,
            msrs: GenericMsrs::new(bsp, ucode_rev),
            emulator: Some(emulator),
            events: PendingEvents::default(),
            mp_state: MpState::at_creation(lapic_in_kernel, bsp),
            halt_poll: HaltPoll::default(),
            debug: Default::default(),
            sigmask: None,
            lapic,
            clock: Default::default(),
            shadow,
            pdptrs: Default::default(),
            has_run: false,
        }))
    }
}

impl VcpuState {
    /// Drops whatever the emulator has pending (KVM_SET_REGS, INIT).
    pub(crate) fn reset_emulator(&mut self) {
        if let Some(e) = self.emulator.as_deref_mut() {
            e.reset();
        }
    }

    /// Queues exception `vector` (with `error_code`) for the guest; every
    /// injection the core makes goes through here (kvm_inj_exception).
    pub(crate) fn inject_exception(&mut self, vector: u8, error_code: Option<u32>) {
        trace::kvm_inj_exception(
            vector.into(),
            error_code.is_some(),
            error_code.unwrap_or(0),
            false,
        );
        self.hw.inject_exception(vector, error_code);
    }
}

/// Ok(0) for an ioctl that returns nothing else.
fn done(r: Result) -> Result<isize> {
    r.map(|()| 0)
}

/// The x86 vCPU ioctls; ENOTTY-like EINVAL for unknown ones (upstream's
/// kvm_arch_vcpu_ioctl() answers them with EINVAL).
#[inline(never)]
pub(crate) fn vcpu_ioctl(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    cmd: u32,
    arg: usize,
) -> Result<isize> {
    match cmd {
        KVM_GET_REGS => done(regs::get_regs(st, arg)),
        KVM_SET_REGS => done(regs::set_regs(st, arg)),
        KVM_GET_SREGS => done(regs::get_sregs(vm, vcpu, st, arg)),
        KVM_SET_SREGS => done(regs::set_sregs(vm, vcpu, st, arg)),
        KVM_GET_SREGS2 => done(regs::get_sregs2(vm, vcpu, st, arg)),
        KVM_SET_SREGS2 => done(regs::set_sregs2(vm, vcpu, st, arg)),
        KVM_GET_MSRS => msrs::get_msrs(vm, vcpu, st, arg),
        KVM_SET_MSRS => msrs::set_msrs(vm, vcpu, st, arg),
        KVM_SET_CPUID2 => done(cpuid::set_cpuid2(vm, vcpu, st, arg)),
        KVM_GET_CPUID2 => done(cpuid::get_cpuid2(st, arg)),
        KVM_GET_FPU => done(regs::get_fpu(st, arg)),
        KVM_SET_FPU => done(regs::set_fpu(st, arg)),
        KVM_GET_XSAVE => done(regs::get_xsave(st, arg)),
        KVM_GET_XSAVE2 => done(regs::get_xsave2(st, arg)),
        KVM_SET_XSAVE => done(regs::set_xsave(st, arg)),
        KVM_GET_XCRS => done(regs::get_xcrs(st, arg)),
        KVM_SET_XCRS => done(regs::set_xcrs(st, arg)),
        KVM_GET_DEBUGREGS => done(regs::get_debugregs(st, arg)),
        KVM_SET_DEBUGREGS => done(regs::set_debugregs(st, arg)),
        KVM_INTERRUPT => done(interrupt(vm, vcpu, st, arg)),
        KVM_NMI => done(nmi(st)),
        KVM_GET_MP_STATE => done(events::get_mp_state(vcpu, st, arg)),
        KVM_SET_MP_STATE => done(events::set_mp_state(vcpu, st, arg)),
        KVM_X86_SETUP_MCE => done(msrs::x86_setup_mce(st, arg)),
        KVM_X86_SET_MCE => done(msrs::x86_set_mce(st, arg)),
        KVM_SET_VAPIC_ADDR => done(lapic::set_vapic_addr(vm, vcpu, st, arg)),
        KVM_GET_LAPIC => done(lapic::get_lapic(vm, vcpu, st, arg)),
        KVM_SET_LAPIC => done(lapic::set_lapic(vm, vcpu, st, arg)),
        KVM_TPR_ACCESS_REPORTING => done(lapic::tpr_access_reporting(st, arg)),
        KVM_GET_VCPU_EVENTS => done(events::get_vcpu_events(vm, st, arg)),
        KVM_SET_VCPU_EVENTS => done(events::set_vcpu_events(vm, st, arg)),
        KVM_SET_GUEST_DEBUG => done(events::set_guest_debug(st, arg)),
        KVM_TRANSLATE => done(events::translate(vm, st, arg)),
        KVM_GET_TSC_KHZ => Ok(kvmclock::get_tsc_khz()),
        KVM_SET_TSC_KHZ => done(kvmclock::set_tsc_khz(arg as u32)),
        KVM_KVMCLOCK_CTRL => done(kvmclock::kvmclock_ctrl(st)),
        KVM_ENABLE_CAP => done(enable_cap(st, arg)),
        KVM_GET_NESTED_STATE => done(get_nested_state(vm, st, arg)),
        KVM_SET_NESTED_STATE => done(set_nested_state(vm, vcpu, st, arg)),
        KVM_HAS_DEVICE_ATTR | KVM_GET_DEVICE_ATTR | KVM_SET_DEVICE_ATTR => {
            done(device_attr(vm, st, cmd, arg))
        }
        _ => Err(EINVAL),
    }
}

/// KVM_INTERRUPT: a vector from the userspace PIC. `ENXIO` with the
/// in-kernel PIC (interrupts come from it); with a split irqchip it is the
/// PIC's ExtINT for the in-kernel LAPIC.
fn interrupt(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let irq: uapi::kvm_interrupt = read_arg(arg)?;
    let vector = u8::try_from(irq.irq).map_err(|_| EINVAL)?;
    let chip = vm.arch().irqchip();
    if chip.is_full() {
        return Err(ENXIO);
    }
    if chip.is_split() {
        st.events.queue_extint(vector)?;
        vcpu.kick().make_request(REQ_EVENT);
        return Ok(());
    }
    st.events.queue_irq(vector);
    Ok(())
}

/// KVM_NMI.
fn nmi(st: &mut VcpuState) -> Result {
    st.events.add_nmis(1);
    Ok(())
}

/// KVM_HAS/GET/SET_DEVICE_ATTR on a vCPU (KVM_CAP_VCPU_ATTRIBUTES): the
/// TSC offset (group KVM_VCPU_TSC_CTRL, attribute KVM_VCPU_TSC_OFFSET),
/// read from or written to `attr.addr`; ENXIO for anything else.
fn device_attr(vm: &Vm, st: &mut VcpuState, cmd: u32, arg: usize) -> Result {
    let attr: uapi::kvm_device_attr = read_arg(arg)?;
    if attr.group != uapi::KVM_VCPU_TSC_CTRL || attr.attr != u64::from(uapi::KVM_VCPU_TSC_OFFSET) {
        return Err(ENXIO);
    }
    match cmd {
        KVM_GET_DEVICE_ATTR => write_arg(attr.addr as usize, &st.hw.tsc_offset()),
        KVM_SET_DEVICE_ATTR => {
            let offset: u64 = read_arg(attr.addr as usize)?;
            kvmclock::set_tsc_offset(vm, st, offset);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// KVM_ENABLE_CAP on a vCPU: KVM_CAP_ENFORCE_PV_FEATURE_CPUID (any
/// non-zero argument enables, as upstream); flags must be 0.
fn enable_cap(st: &mut VcpuState, arg: usize) -> Result {
    let cap: uapi::kvm_enable_cap = read_arg(arg)?;
    if cap.flags != 0 {
        return Err(EINVAL);
    }
    match cap.cap {
        uapi::KVM_CAP_ENFORCE_PV_FEATURE_CPUID => {
            st.cpuid.set_enforce_pv(cap.args[0] != 0);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// The header of `struct kvm_nested_state` (flags, format, size, the
/// vendor's 120 bytes); the vendor's data follows it.
const NESTED_STATE_HDR: usize = 128;

/// KVM_GET_NESTED_STATE (upstream's kvm_arch_vcpu_ioctl() arm): EINVAL
/// without the vendor's support; E2BIG with the size needed written to
/// `size` when userspace's is smaller.
fn get_nested_state(vm: &Vm, st: &mut VcpuState, arg: usize) -> Result {
    let max = vm.vendor().ops().nested_state_size() as usize;
    if max < NESTED_STATE_HDR {
        return Err(EINVAL);
    }
    let user_size: u32 = read_arg(arg + 4)?;
    let mut data = KVec::from_elem(0u8, max - NESTED_STATE_HDR, GFP_KERNEL)?;
    let mut hdr = NestedStateHdr {
        flags: 0,
        format: 0,
        hdr: [0; 120],
    };
    let n = st.hw.get_nested_state(&mut hdr, &mut data).min(data.len());
    let size = (NESTED_STATE_HDR + n) as u32;
    if size > user_size {
        write_arg(arg + 4, &size)?;
        return Err(E2BIG);
    }
    let mut head = [0u8; NESTED_STATE_HDR];
    head[0..2].copy_from_slice(&hdr.flags.to_ne_bytes());
    head[2..4].copy_from_slice(&hdr.format.to_ne_bytes());
    head[4..8].copy_from_slice(&size.to_ne_bytes());
    head[8..].copy_from_slice(&hdr.hdr);
    uaccess::write_bytes(arg as u64, &head)?;
    uaccess::write_bytes((arg + NESTED_STATE_HDR) as u64, &data[..n])
}

/// KVM_SET_NESTED_STATE: the generic checks (size, known flags,
/// RUN_PENDING only with GUEST_MODE), then the vendor's.
fn set_nested_state(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let max = vm.vendor().ops().nested_state_size() as usize;
    if max < NESTED_STATE_HDR {
        return Err(EINVAL);
    }
    let mut head = [0u8; NESTED_STATE_HDR];
    uaccess::read_bytes(arg as u64, &mut head)?;
    let flags = u16::from_ne_bytes([head[0], head[1]]);
    let format = u16::from_ne_bytes([head[2], head[3]]);
    let size = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if size < NESTED_STATE_HDR {
        return Err(EINVAL);
    }
    let known = uapi::KVM_STATE_NESTED_RUN_PENDING
        | uapi::KVM_STATE_NESTED_GUEST_MODE
        | uapi::KVM_STATE_NESTED_EVMCS
        | uapi::KVM_STATE_NESTED_MTF_PENDING
        | uapi::KVM_STATE_NESTED_GIF_SET;
    if u32::from(flags) & !known != 0 {
        return Err(EINVAL);
    }
    let guest_mode = u32::from(flags) & uapi::KVM_STATE_NESTED_GUEST_MODE != 0;
    if u32::from(flags) & uapi::KVM_STATE_NESTED_RUN_PENDING != 0 && !guest_mode {
        return Err(EINVAL);
    }
    let mut hdr = NestedStateHdr {
        flags,
        format,
        hdr: [0; 120],
    };
    hdr.hdr.copy_from_slice(&head[8..]);
    let n = size.min(max) - NESTED_STATE_HDR;
    let mut data = KVec::from_elem(0u8, n, GFP_KERNEL)?;
    if guest_mode {
        uaccess::read_bytes((arg + NESTED_STATE_HDR) as u64, &mut data)?;
    }
    st.hw.set_nested_state(&hdr, &data)?;
    vcpu.kick().make_request(REQ_EVENT);
    Ok(())
}
