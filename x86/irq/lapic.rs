// SPDX-License-Identifier: GPL-2.0
//! A vCPU's in-kernel local APIC: the pure model (`irqchip::Lapic`) behind
//! a spinlock, its clock and timer, register access from MMIO and MSRs,
//! and the effects of those accesses (IPIs, EOIs) carried out after the
//! lock is dropped, as the model's protocol requires.

use crate::{
    defs::{
        cpuid::{X86_FEATURE_TSC_DEADLINE_TIMER, X86_FEATURE_X2APIC},
        msr::{APIC_BASE_MSR, MSR_IA32_APICBASE, MSR_IA32_TSC_DEADLINE, X2APIC_MSR_LAST},
        paging::Gpa,
        time::NSEC_PER_USEC,
    },
    ext::{
        time, trace,
        uaccess::{read_arg, write_arg},
        uapi,
    },
    irqchip::lapic_regs::{APIC_TASKPRI, LAPIC_MMIO_LENGTH},
    irqchip::{ClockSnapshot, Lapic, LapicConfig, LapicEffects},
    virt::{
        kick::{VcpuKick, REQ_EVENT, REQ_TIMER},
        kick_timer::{now_ns, DeviceTimer},
        vcpu::Vcpu,
        vm::Vm,
    },
    x86::{cpuid, irq::chips, params, vcpu::VcpuState},
};
use kernel::{new_spinlock_irq, prelude::*, sync::Arc, sync::SpinLockIrq};

/// A vCPU's LAPIC (IRQ-safe: interrupts arrive from any context).
pub(crate) type VcpuLapic = Pin<KBox<SpinLockIrq<Lapic>>>;

/// The shortest periodic timer period, from `min_timer_period_us`.
fn min_periodic_ns() -> u64 {
    u64::from(params::MIN_TIMER_PERIOD_US.get()) * NSEC_PER_USEC
}

/// A LAPIC for vCPU `id` of `vm`, the BSP or not.
pub(crate) fn new_lapic(vm: &Vm, id: u32, bsp: bool) -> Result<VcpuLapic> {
    let mut cfg = LapicConfig::new(id, bsp);
    cfg.min_periodic_ns = min_periodic_ns();
    cfg.bus_cycle_ns = vm.arch().apic_bus_cycle_ns();
    KBox::pin_init(new_spinlock_irq!(Lapic::new(cfg)), GFP_KERNEL_ACCOUNT)
}

/// The LAPIC's state that lives behind the vCPU mutex: its timer and
/// QEMU's TPR-patching hooks.
pub(crate) struct LapicVcpu {
    /// The LAPIC timer (with an in-kernel LAPIC).
    timer: Option<DeviceTimer>,
    /// KVM_SET_VAPIC_ADDR: guest address of the TPR-patching VAPIC word.
    vapic: Option<Gpa>,
    /// KVM_TPR_ACCESS_REPORTING on.
    tpr_access_reporting: bool,
    /// A TPR access (RIP, write) to report with KVM_EXIT_TPR_ACCESS.
    tpr_report: Option<(u64, bool)>,
}

impl LapicVcpu {
    /// With an in-kernel LAPIC, its timer posts REQ_TIMER to `kick`.
    pub(crate) fn new(kick: &Arc<VcpuKick>, lapic_in_kernel: bool) -> Result<Self> {
        let timer = if lapic_in_kernel {
            Some(DeviceTimer::new(kick.clone(), REQ_TIMER)?)
        } else {
            None
        };
        Ok(Self {
            timer,
            vapic: None,
            tpr_access_reporting: false,
            tpr_report: None,
        })
    }

    /// A TPR access to report to userspace before the next entry.
    pub(crate) fn take_tpr_report(&mut self) -> Option<(u64, bool)> {
        self.tpr_report.take()
    }
}

/// The model's clock: host monotonic ns and this vCPU's guest TSC.
pub(crate) fn clock(st: &VcpuState) -> ClockSnapshot {
    ClockSnapshot {
        now_ns: now_ns(),
        guest_tsc: time::rdtsc().wrapping_add(st.hw.tsc_offset()),
        guest_tsc_khz: time::tsc_khz() as u32,
    }
}

/// Carries out what a LAPIC access asked for, with no LAPIC lock held.
pub(crate) fn apply(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, eff: LapicEffects) {
    if let Some(ipi) = eff.ipi {
        trace::kvm_apic_ipi(icr_low(&ipi), ipi.dest_id);
        chips::deliver(vm, Some(vcpu.index()), &ipi);
    }
    if let Some(e) = eff.eoi {
        trace::kvm_eoi(vcpu.id(), e.vector.into());
        let chip = vm.arch().irqchip();
        let suppress = chip.suppress_eoi_broadcast(e.suppress_broadcast);
        match chip.split_eoi_exit(vcpu, e.vector) {
            // Split irqchip: the userspace IOAPIC hears of it, unless the
            // guest suppressed the broadcast (and may).
            Some(true) if !suppress => st.events.report_eoi(e.vector),
            Some(_) => {}
            None => chips::ioapic_eoi(vm, vcpu.index(), e.vector, e.trigger, suppress),
        }
    }
    if eff.timer_changed {
        arm_timer(vcpu, st);
    }
}

/// Arms the vCPU's timer for its LAPIC's next deadline.
pub(crate) fn arm_timer(vcpu: &Vcpu, st: &mut VcpuState) {
    let Some(lapic) = vcpu.lapic() else { return };
    let deadline = lapic.lock().timer_deadline_ns();
    if let Some(t) = st.lapic.timer.as_mut() {
        t.set(deadline);
    }
}

/// Moves a due timer interrupt into IRR and re-arms for the next one.
pub(crate) fn service_timer(vcpu: &Vcpu, st: &mut VcpuState) {
    let Some(lapic) = vcpu.lapic() else { return };
    let clk = clock(st);
    let deadline = {
        let mut l = lapic.lock();
        l.service_timer(&clk);
        l.timer_deadline_ns()
    };
    if let Some(t) = st.lapic.timer.as_mut() {
        t.set(deadline);
    }
}

/// An MMIO access to this vCPU's APIC page, if `gpa` is in it; returns
/// whether it was handled.
pub(crate) fn mmio(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    gpa: u64,
    write: bool,
    data: &mut [u8],
) -> bool {
    let Some(lapic) = vcpu.lapic() else {
        return false;
    };
    let clk = clock(st);
    let eff = {
        let mut l = lapic.lock();
        if !l.mmio_enabled() {
            return false;
        }
        let base = l.mmio_base();
        if gpa < base || gpa >= base + LAPIC_MMIO_LENGTH {
            return false;
        }
        // KVM_TPR_ACCESS_REPORTING: QEMU's TPR patching wants to hear of
        // guest TPR accesses (reported at the next entry, as upstream).
        if st.lapic.tpr_access_reporting && (gpa - base) & !0xf == u64::from(APIC_TASKPRI) {
            st.lapic.tpr_report = Some((st.hw.rip(), write));
        }
        let reg = ((gpa - base) & !0xf) as u32;
        if write {
            trace::kvm_apic(1, reg, le_u32(data).into());
            l.mmio_write(gpa - base, data, &clk)
        } else {
            l.mmio_read(gpa - base, data, &clk);
            trace::kvm_apic(0, reg, le_u32(data).into());
            return true;
        }
    };
    apply(vm, vcpu, st, eff);
    true
}

/// RDMSR of an APIC MSR (x2APIC range, APIC_BASE, TSC_DEADLINE): `None`
/// if not an APIC MSR, `Some(Err)` for #GP.
pub(crate) fn read_msr(vcpu: &Vcpu, st: &VcpuState, index: u32) -> Option<Result<u64>> {
    let lapic = vcpu.lapic()?;
    let clk = clock(st);
    let l = lapic.lock();
    Some(match index {
        MSR_IA32_APICBASE => Ok(l.apic_base()),
        MSR_IA32_TSC_DEADLINE => Ok(l.tsc_deadline()),
        APIC_BASE_MSR..=X2APIC_MSR_LAST => {
            let r = l.x2apic_msr_read(index, &clk).map_err(|_| EINVAL);
            if let Ok(v) = r {
                trace::kvm_apic(0, (index - APIC_BASE_MSR) << 4, v);
            }
            r
        }
        _ => return None,
    })
}

/// WRMSR of an APIC MSR; `None` if not one.
pub(crate) fn write_msr(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    index: u32,
    value: u64,
    host: bool,
) -> Option<Result> {
    let lapic = vcpu.lapic()?;
    let clk = clock(st);
    let eff = {
        let mut l = lapic.lock();
        match index {
            MSR_IA32_APICBASE => l.set_apic_base(value, host),
            MSR_IA32_TSC_DEADLINE => Ok(l.set_tsc_deadline(value, &clk)),
            APIC_BASE_MSR..=X2APIC_MSR_LAST => {
                trace::kvm_apic(1, (index - APIC_BASE_MSR) << 4, value);
                l.x2apic_msr_write(index, value, &clk)
            }
            _ => return None,
        }
    };
    Some(match eff {
        Ok(eff) => {
            apply(vm, vcpu, st, eff);
            Ok(())
        }
        Err(_) => Err(EINVAL),
    })
}

/// KVM_GET_LAPIC.
pub(crate) fn get_lapic(vm: &Vm, vcpu: &Vcpu, st: &VcpuState, arg: usize) -> Result {
    let lapic = vcpu.lapic().ok_or(EINVAL)?;
    let clk = clock(st);
    let s = lapic
        .lock()
        .get_state(&clk, vm.arch().irqchip().x2apic_format());
    write_arg(arg, &s)
}

/// KVM_SET_LAPIC.
pub(crate) fn set_lapic(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    let lapic = vcpu.lapic().ok_or(EINVAL)?;
    let s: crate::irqchip::uapi::KvmLapicState = read_arg(arg)?;
    let clk = clock(st);
    let eff = lapic
        .lock()
        .set_state(&s, &clk, vm.arch().irqchip().x2apic_format())
        .map_err(|_| EINVAL)?;
    apply(vm, vcpu, st, eff);
    arm_timer(vcpu, st);
    vcpu.kick().make_request(REQ_EVENT);
    Ok(())
}

/// After KVM_SET_CPUID2: what the guest's CPUID offers (x2APIC,
/// TSC-deadline) and the VM's KVM_CAP_X2APIC_API (directed EOI) shape
/// the LAPIC.
pub(crate) fn update_config(vm: &Vm, vcpu: &Vcpu, st: &VcpuState) {
    let Some(lapic) = vcpu.lapic() else { return };
    let l1 = cpuid::lookup(st, 1, 0);
    let directed_eoi = vm.arch().irqchip().advertise_directed_eoi();
    let mut l = lapic.lock();
    let mut cfg = *l.config();
    cfg.x2apic_supported = l1[2] & X86_FEATURE_X2APIC.mask() != 0;
    cfg.directed_eoi_advertised = directed_eoi;
    cfg.min_periodic_ns = min_periodic_ns();
    cfg.bus_cycle_ns = vm.arch().apic_bus_cycle_ns();
    cfg.tsc_deadline_supported = l1[2] & X86_FEATURE_TSC_DEADLINE_TIMER.mask() != 0;
    cfg.max_phys_addr_bits = cpuid::guest_maxphyaddr(st);
    l.set_config(cfg);
}

/// Keeps `uapi` in use for the LAPIC state type check below.
const _: () = assert!(
    core::mem::size_of::<crate::irqchip::uapi::KvmLapicState>()
        == core::mem::size_of::<uapi::kvm_lapic_state>()
);

/// `KVM_SET_VAPIC_ADDR`: where QEMU's TPR-patching ROM keeps its VAPIC
/// word (0 turns it off). The address must be writable guest RAM, else
/// EINVAL (as upstream, whose hva-cache setup fails); EINVAL without an
/// in-kernel LAPIC.
pub(crate) fn set_vapic_addr(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    if vcpu.lapic().is_none() {
        return Err(EINVAL);
    }
    let addr = read_arg::<uapi::kvm_vapic_addr>(arg)?.vapic_addr;
    st.lapic.vapic = if addr == 0 {
        None
    } else {
        let gpa = Gpa::new(addr);
        let last = gpa.checked_add(3).ok_or(EINVAL)?;
        let mem = vm.mmu();
        if mem.gpa_to_hva(gpa, true).is_none() || mem.gpa_to_hva(last, true).is_none() {
            return Err(EINVAL);
        }
        Some(gpa)
    };
    Ok(())
}

/// `KVM_TPR_ACCESS_REPORTING`: QEMU's TPR patching hears of guest TPR
/// accesses through KVM_EXIT_TPR_ACCESS.
pub(crate) fn tpr_access_reporting(st: &mut VcpuState, arg: usize) -> Result {
    let tac: uapi::kvm_tpr_access_ctl = read_arg(arg)?;
    if tac.flags != 0 {
        return Err(EINVAL);
    }
    st.lapic.tpr_access_reporting = tac.enabled != 0;
    write_arg(arg, &tac)
}

/// Reads or writes the 4-byte VAPIC word, which may straddle a page.
fn vapic_access(vm: &Vm, gpa: Gpa, word: &mut [u8; 4], write: bool) -> Result<bool> {
    let first = (gpa.bytes_to_page_end() as usize).min(4);
    let (a, b) = word.split_at_mut(first);
    let mut ok = true;
    let second = gpa.checked_add(first as u64).ok_or(EINVAL)?;
    for (addr, part) in [(gpa, a), (second, b)] {
        if !part.is_empty() {
            ok &= if write {
                vm.mmu().write_guest(vm, addr, part)?
            } else {
                vm.mmu().read_guest(addr, part)?
            };
        }
    }
    Ok(ok)
}

/// Before entry: publishes TPR/ISR/IRR in the VAPIC word (only while the
/// LAPIC is enabled, as upstream).
pub(crate) fn sync_to_vapic(vm: &Vm, vcpu: &Vcpu, st: &VcpuState) {
    let Some(lapic) = vcpu.lapic() else { return };
    let Some(vapic) = st.lapic.vapic else { return };
    let word = {
        let l = lapic.lock();
        if !l.enabled() {
            return;
        }
        l.vapic_word()
    };
    let mut word = word.to_le_bytes();
    // A guest that unmapped the page loses its TPR shortcut, as upstream.
    let _ = vapic_access(vm, vapic, &mut word, true);
}

/// After an exit: the guest's TPR writes to the VAPIC word reach the LAPIC.
pub(crate) fn sync_from_vapic(vm: &Vm, vcpu: &Vcpu, st: &VcpuState) {
    let Some(lapic) = vcpu.lapic() else { return };
    let Some(vapic) = st.lapic.vapic else { return };
    let mut word = [0u8; 4];
    if let Ok(true) = vapic_access(vm, vapic, &mut word, false) {
        lapic.lock().set_tpr(u32::from(word[0]));
    }
}

/// The low ICR word that sends `d` (kvm_apic_ipi).
fn icr_low(d: &crate::irqchip::Delivery) -> u32 {
    use crate::irqchip::{DestMode, Shorthand, TriggerMode};
    let shorthand = match d.shorthand {
        Shorthand::None => 0,
        Shorthand::SelfOnly => 1,
        Shorthand::AllIncludingSelf => 2,
        Shorthand::AllExcludingSelf => 3,
    };
    u32::from(d.vector)
        | d.delivery_mode.bits() << 8
        | u32::from(d.dest_mode == DestMode::Logical) << 11
        | u32::from(d.level) << 14
        | u32::from(d.trigger == TriggerMode::Level) << 15
        | shorthand << 18
}

/// The little-endian value of an access of up to 4 bytes.
fn le_u32(data: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(b)
}
