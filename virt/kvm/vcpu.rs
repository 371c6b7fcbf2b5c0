// SPDX-License-Identifier: GPL-2.0
//! A vCPU, its file descriptor and the vCPU ioctls.
//!
//! Every vCPU ioctl runs under the vCPU's mutex (upstream `vcpu->mutex`),
//! including KVM_RUN for its whole duration. Other threads reach a running
//! vCPU only through `requests` and a kick (see [`Vcpu::kick`]).

use crate::{
    x86::vendor::VcpuArch,
    x86::irq::lapic::{self, VcpuLapic},
    x86::cpuid::GuestCpuid,
    x86::events,
    virt::kick::{VcpuKick, REQ_TIMER},
    virt::kick_timer::DeviceTimer,
    ext::{
        file::{self, FileOps},
        fpu::GuestFpu,
        uapi,
    },
    virt::ioctl::*,
    x86::msrs, x86::regs,
    x86::run::{self, Pending},
    virt::run_page::RunPage,
    virt::vm::{read_arg, write_arg, Vm},
};
use kernel::{
    fs::File,
    mm::virt::VmaNew,
    new_mutex,
    prelude::*,
    str::CString,
    sync::{Arc, ArcBorrow, Mutex},
};

/// A vCPU.
#[pin_data]
pub(crate) struct Vcpu {
    pub(crate) id: u32,
    /// The bootstrap processor (KVM_SET_BOOT_CPU_ID; vCPU 0 by default).
    pub(crate) bsp: bool,
    /// Position in the VM's vCPU list (interrupt delivery indexes by it).
    pub(crate) index: usize,
    /// Requests, kicks and the halt wait queue.
    pub(crate) kick: Arc<VcpuKick>,
    /// The in-kernel local APIC (with KVM_CREATE_IRQCHIP).
    pub(crate) apic: Option<VcpuLapic>,
    /// The pages userspace maps.
    pub(crate) run: RunPage,
    /// Everything only the thread holding the vCPU touches.
    #[pin]
    pub(crate) state: Mutex<VcpuState>,
}

/// The state behind the vCPU mutex.
pub(crate) struct VcpuState {
    /// The vendor's part: VMCB/VMCS, world switch.
    pub(crate) arch: KBox<dyn VcpuArch>,
    /// What KVM_SET_CPUID2 set.
    pub(crate) cpuid: GuestCpuid,
    /// An exit to userspace whose completion the next KVM_RUN finishes.
    pub(crate) pending: Pending,
    /// Guest FPU/XSAVE state.
    pub(crate) fpu: GuestFpu,
    /// Generic MSR state (APIC base, TSC, MISC_ENABLE, ...).
    pub(crate) msrs: msrs::GenericMsrs,
    /// XCR0 as the guest set it.
    pub(crate) xcr0: u64,
    /// The instruction emulator's state across exits.
    pub(crate) emulator: crate::emulate::Emulator,
    /// KVM_INTERRUPT's vector, until injected.
    pub(crate) irq_pending: Option<u8>,
    /// KVM_NMI and LAPIC NMIs, until injected.
    pub(crate) nmi_pending: u32,
    /// KVM_SET_GUEST_DEBUG state.
    pub(crate) debug: crate::x86::events::GuestDebug,
    /// KVM_SET_SIGNAL_MASK: the mask while in KVM_RUN.
    pub(crate) sigmask: Option<u64>,
    /// `KVM_MP_STATE_*`.
    pub(crate) mp_state: u32,
    /// The LAPIC timer (with an in-kernel LAPIC).
    pub(crate) apic_timer: Option<DeviceTimer>,
    /// KVM_SET_VAPIC_ADDR: guest address of the TPR-patching VAPIC word, 0 = off.
    pub(crate) vapic_addr: u64,
    /// kvmclock (MSR_KVM_SYSTEM_TIME_NEW).
    pub(crate) clock: crate::x86::kvmclock::VcpuClock,
    /// KVM_TPR_ACCESS_REPORTING on.
    pub(crate) tpr_access_reporting: bool,
    /// A TPR access (RIP, write) to report with KVM_EXIT_TPR_ACCESS.
    pub(crate) tpr_report: Option<(u64, bool)>,
    /// Split irqchip: the userspace PIC's vector (KVM_INTERRUPT), taken
    /// when the LAPIC accepts ExtINT and the guest interrupts.
    pub(crate) pending_extint: Option<u8>,
    /// Split irqchip: an EOI to report with KVM_EXIT_IOAPIC_EOI.
    pub(crate) eoi_exit: Option<u8>,
}

impl Vcpu {
    /// A new vCPU `id` of `vm` at list position `index`, in its reset
    /// state. With an in-kernel irqchip it gets a LAPIC and, unless it is
    /// the BSP, waits for INIT/SIPI (upstream's UNINITIALIZED).
    pub(crate) fn new(vm: &Vm, id: u32, index: usize) -> Result<Arc<Self>> {
        let tdp_root = vm.mmu.lock().tdp.root_pa();
        let bsp = id == vm.bsp_id();
        let mut arch = vm.vendor.ops.create_vcpu(id, tdp_root)?;
        // All vCPUs share one TSC (upstream synchronises at creation).
        arch.set_tsc_offset(crate::x86::kvmclock::tsc_write(vm, 0));
        let kick = Arc::pin_init(VcpuKick::new(), GFP_KERNEL_ACCOUNT)?;
        let irqchip = vm.has_irqchip();
        let apic = if irqchip { Some(lapic::new_lapic(id, bsp)?) } else { None };
        let apic_timer = if irqchip { Some(DeviceTimer::new(kick.clone(), REQ_TIMER)?) } else { None };
        let mp_state = if irqchip && !bsp {
            uapi::KVM_MP_STATE_UNINITIALIZED
        } else {
            uapi::KVM_MP_STATE_RUNNABLE
        };
        let state = VcpuState {
            arch,
            cpuid: GuestCpuid::new(),
            pending: Pending::None,
            fpu: GuestFpu::new()?,
            msrs: msrs::GenericMsrs::new(bsp),
            xcr0: msrs::XFEATURE_MASK_FP,
            emulator: crate::emulate::Emulator::new(),
            irq_pending: None,
            nmi_pending: 0,
            debug: Default::default(),
            sigmask: None,
            mp_state,
            apic_timer,
            vapic_addr: 0,
            clock: Default::default(),
            tpr_access_reporting: false,
            tpr_report: None,
            pending_extint: None,
            eoi_exit: None,
        };
        Arc::pin_init(
            try_pin_init!(Vcpu {
                id,
                bsp,
                index,
                kick,
                apic,
                run: RunPage::new()?,
                state <- new_mutex!(state),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

}

/// What a vCPU fd owns.
pub(crate) struct VcpuFile {
    vm: Arc<Vm>,
    vcpu: Arc<Vcpu>,
}

/// Creates vCPU `vcpu`'s fd (`kvm-vcpu:<id>`).
pub(crate) fn open_fd(vm: Arc<Vm>, vcpu: Arc<Vcpu>) -> Result<u32> {
    let name = CString::try_from_fmt(fmt!("kvm-vcpu:{}", vcpu.id))?;
    let f = Arc::new(VcpuFile { vm, vcpu }, GFP_KERNEL_ACCOUNT)?;
    file::new_anon_fd::<VcpuFile>(&name, f)
}

#[vtable]
impl FileOps for VcpuFile {
    type Ptr = Arc<VcpuFile>;

    fn ioctl(f: ArcBorrow<'_, VcpuFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        f.vm.check_mm()?;
        if (cmd >> 8) & 0xff != KVMIO {
            return Err(EINVAL);
        }
        let vcpu = &f.vcpu;
        let mut st = vcpu.state.lock();
        let st = &mut *st;
        match cmd {
            KVM_RUN => {
                if arg != 0 {
                    return Err(EINVAL);
                }
                run::run(&f.vm, vcpu, st).map(|()| 0)
            }
            KVM_GET_REGS => write_arg(arg, &regs::get_regs(st)).map(|()| 0),
            KVM_SET_REGS => {
                let r: uapi::kvm_regs = read_arg(arg)?;
                regs::set_regs(st, &r);
                Ok(0)
            }
            KVM_GET_SREGS => {
                let mut s = uapi::kvm_sregs::default();
                st.arch.get_sregs(&mut s);
                s.apic_base = st.msrs.apic_base;
                write_arg(arg, &s).map(|()| 0)
            }
            KVM_SET_SREGS => {
                let s: uapi::kvm_sregs = read_arg(arg)?;
                msrs::check_sregs(st, &s)?;
                st.arch.set_sregs(&s)?;
                st.msrs.set_apic_base(s.apic_base, true)?;
                Ok(0)
            }
            KVM_GET_MSRS => msrs::ioctl_msrs(&f.vm, vcpu, st, arg, false),
            KVM_SET_MSRS => msrs::ioctl_msrs(&f.vm, vcpu, st, arg, true),
            KVM_SET_CPUID2 => {
                st.cpuid.set_from_user(arg)?;
                lapic::update_config(vcpu, st);
                Ok(0)
            }
            KVM_GET_CPUID2 => st.cpuid.get_to_user(arg).map(|()| 0),
            KVM_GET_FPU => regs::get_fpu(st, arg).map(|()| 0),
            KVM_SET_FPU => regs::set_fpu(st, arg).map(|()| 0),
            KVM_GET_XSAVE => regs::get_xsave(st, arg, 4096).map(|()| 0),
            KVM_GET_XSAVE2 => regs::get_xsave(st, arg, regs::xsave_size()).map(|()| 0),
            KVM_SET_XSAVE => regs::set_xsave(st, arg).map(|()| 0),
            KVM_GET_XCRS => regs::get_xcrs(st, arg).map(|()| 0),
            KVM_SET_XCRS => regs::set_xcrs(st, arg).map(|()| 0),
            KVM_GET_DEBUGREGS => regs::get_debugregs(st, arg).map(|()| 0),
            KVM_SET_DEBUGREGS => regs::set_debugregs(st, arg).map(|()| 0),
            KVM_INTERRUPT => {
                let irq: uapi::kvm_interrupt = read_arg(arg)?;
                if irq.irq >= 256 {
                    return Err(EINVAL);
                }
                // With the in-kernel PIC, interrupts come from it.
                if f.vm.has_full_irqchip() {
                    return Err(ENXIO);
                }
                if f.vm.is_split_irqchip() {
                    // The userspace PIC's ExtINT, for the in-kernel LAPIC.
                    if st.pending_extint.is_some() {
                        return Err(EEXIST);
                    }
                    st.pending_extint = Some(irq.irq as u8);
                    vcpu.kick.make_request(crate::virt::kick::REQ_EVENT);
                    return Ok(0);
                }
                st.irq_pending = Some(irq.irq as u8);
                Ok(0)
            }
            KVM_NMI => {
                st.nmi_pending = st.nmi_pending.saturating_add(1);
                Ok(0)
            }
            KVM_GET_MP_STATE => events::get_mp_state(vcpu, st, arg).map(|()| 0),
            KVM_SET_MP_STATE => events::set_mp_state(vcpu, st, arg).map(|()| 0),
            KVM_X86_SETUP_MCE => {
                let cap: u64 = read_arg(arg)?;
                st.msrs.setup_mce(cap).map(|()| 0)
            }
            // Injecting machine checks is not supported yet.
            KVM_X86_SET_MCE => Err(EINVAL),
            KVM_SET_VAPIC_ADDR => {
                if vcpu.apic.is_none() {
                    return Err(EINVAL);
                }
                let va: uapi::kvm_vapic_addr = read_arg(arg)?;
                lapic::set_vapic_addr(&f.vm, st, va.vapic_addr).map(|()| 0)
            }
            KVM_GET_LAPIC => lapic::get_lapic(&f.vm, vcpu, st, arg).map(|()| 0),
            KVM_SET_LAPIC => lapic::set_lapic(&f.vm, vcpu, st, arg).map(|()| 0),
            KVM_GET_VCPU_EVENTS => events::get_events(st, arg).map(|()| 0),
            KVM_SET_VCPU_EVENTS => events::set_events(st, arg).map(|()| 0),
            KVM_SET_GUEST_DEBUG => events::set_guest_debug(st, arg).map(|()| 0),
            KVM_TRANSLATE => events::translate(&f.vm, st, arg).map(|()| 0),
            KVM_SET_SIGNAL_MASK => events::set_signal_mask(st, arg).map(|()| 0),
            KVM_GET_TSC_KHZ => Ok(crate::x86::kvmclock::tsc_khz() as isize),
            KVM_SET_TSC_KHZ => crate::x86::kvmclock::set_tsc_khz(arg as u32).map(|()| 0),
            KVM_TPR_ACCESS_REPORTING => {
                let tac: uapi::kvm_tpr_access_ctl = read_arg(arg)?;
                if tac.flags != 0 {
                    return Err(EINVAL);
                }
                st.tpr_access_reporting = tac.enabled != 0;
                write_arg(arg, &tac).map(|()| 0)
            }
            KVM_ENABLE_CAP => {
                let c: uapi::kvm_enable_cap = read_arg(arg)?;
                let _ = c;
                Err(EINVAL)
            }
            _ => Err(EINVAL),
        }
    }

    fn mmap(f: ArcBorrow<'_, VcpuFile>, vma: &VmaNew, pgoff: usize) -> Result {
        let len = vma.end() - vma.start();
        let pages = len.div_ceil(4096);
        let map = vma.set_mixedmap();
        for i in 0..pages {
            let page = f.vcpu.run.page(pgoff + i).or_else(|| f.vm.coalesced_mmap_page(pgoff + i)).ok_or(EINVAL)?;
            map.vm_insert_page(vma.start() + i * 4096, page)?;
        }
        Ok(())
    }
}
