// SPDX-License-Identifier: GPL-2.0
//! The x86 part of a VM (upstream's `struct kvm_arch`) and the x86 VM
//! ioctls (upstream's kvm_arch_vm_ioctl()).

use crate::{
    ext::{uaccess::read_arg, uapi},
    irqchip::lapic_timer::DEFAULT_BUS_CYCLE_NS,
    virt::{ioctl::*, vm::Vm},
    x86::{
        caps,
        irq::chips::{self, Irqchip},
        kvmclock::{self, VmClock},
        msr_filter::{MsrFault, MsrFilter, USER_SPACE_MSR_VALID},
    },
};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::{new_mutex, prelude::*, sync::Mutex};

/// Hypercalls userspace may take over (`KVM_EXIT_HYPERCALL_VALID_MASK`):
/// KVM_HC_MAP_GPA_RANGE.
pub(crate) const EXIT_HYPERCALL_VALID: u64 = 1 << 12;

/// A VM's x86 state.
#[pin_data]
pub(crate) struct VmArch {
    /// The in-kernel PIC, IOAPIC, PIT and GSI routing.
    #[pin]
    irqchip: Irqchip,
    /// kvmclock and the VM's one TSC.
    #[pin]
    clock: VmClock,
    /// KVM_SET_BOOT_CPU_ID: the vCPU id of the BSP (0 by default).
    /// Written under the slots lock with no vCPU yet.
    bsp_id: AtomicU32,
    /// KVM_CAP_EXIT_HYPERCALL: hypercalls that exit to userspace.
    hypercall_exit: AtomicU64,
    /// KVM_CAP_EXCEPTION_PAYLOAD: KVM_GET/SET_VCPU_EVENTS keep pending
    /// and injected exceptions apart and carry payloads.
    exception_payload: AtomicBool,
    /// KVM_CAP_X86_TRIPLE_FAULT_EVENT: KVM_GET/SET_VCPU_EVENTS carry a
    /// pending triple fault.
    triple_fault_event: AtomicBool,
    /// KVM_CAP_EXIT_ON_EMULATION_FAILURE: every instruction the emulator
    /// cannot handle exits to userspace (no #UD is queued).
    exit_on_emulation_failure: AtomicBool,
    /// KVM_CAP_DISABLE_QUIRKS(2): the `KVM_X86_QUIRK_*` turned off.
    disabled_quirks: AtomicU64,
    /// KVM_CAP_X86_APIC_BUS_CYCLES_NS: the LAPIC timer's bus cycle (only
    /// before the first vCPU, under the slots lock).
    apic_bus_cycle_ns: AtomicU64,
    /// KVM_CAP_MSR_PLATFORM_INFO: the guest may read MSR_PLATFORM_INFO
    /// (the default).
    guest_reads_platform_info: AtomicBool,
    /// KVM_CAP_X86_DISABLE_EXITS: the `KVM_X86_DISABLE_EXITS_*` enabled
    /// (only before the first vCPU, under the slots lock).
    disabled_exits: AtomicU64,
    /// KVM_CAP_X86_USER_SPACE_MSR: the `KVM_MSR_EXIT_REASON_*` of refused
    /// guest MSR accesses that exit to userspace.
    user_space_msr: AtomicU32,
    /// KVM_X86_SET_MSR_FILTER's filter (`None`: everything allowed).
    /// Taken alone, or by the vCPU thread under `Vcpu::state`; innermost.
    #[pin]
    msr_filter: Mutex<Option<KBox<MsrFilter>>>,
    /// KVM_SET_TSC_KHZ on the VM: the TSC rate of vCPUs created later
    /// (upstream's `default_tsc_khz`; only the host's rate without TSC
    /// scaling). Written under the slots lock with no vCPU yet.
    default_tsc_khz: AtomicU32,
}

impl VmArch {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            irqchip <- Irqchip::new(),
            clock <- VmClock::new(),
            bsp_id: AtomicU32::new(0),
            hypercall_exit: AtomicU64::new(0),
            exception_payload: AtomicBool::new(false),
            triple_fault_event: AtomicBool::new(false),
            exit_on_emulation_failure: AtomicBool::new(false),
            disabled_quirks: AtomicU64::new(0),
            apic_bus_cycle_ns: AtomicU64::new(DEFAULT_BUS_CYCLE_NS),
            guest_reads_platform_info: AtomicBool::new(true),
            disabled_exits: AtomicU64::new(0),
            user_space_msr: AtomicU32::new(0),
            msr_filter <- new_mutex!(None),
            default_tsc_khz: AtomicU32::new(kvmclock::tsc_khz() as u32),
        })
    }

    /// The interrupt controllers.
    pub(crate) fn irqchip(&self) -> &Irqchip {
        &self.irqchip
    }

    /// kvmclock and the TSC.
    pub(crate) fn clock(&self) -> &VmClock {
        &self.clock
    }

    /// The vCPU id of the BSP.
    pub(crate) fn bsp_id(&self) -> u32 {
        self.bsp_id.load(Ordering::Relaxed)
    }

    /// Whether the MSR filter lets the guest read (`write` false) or
    /// write MSR `index`.
    pub(crate) fn msr_allowed(&self, index: u32, write: bool) -> bool {
        self.msr_filter
            .lock()
            .as_ref()
            .is_none_or(|f| f.allows(index, write))
    }

    /// Whether a guest MSR access refused for `fault` exits to userspace
    /// (KVM_CAP_X86_USER_SPACE_MSR).
    pub(crate) fn msr_fault_exits(&self, fault: MsrFault) -> bool {
        self.user_space_msr.load(Ordering::Relaxed) & fault.reason() != 0
    }

    /// The LAPIC timer's bus cycle (ns).
    pub(crate) fn apic_bus_cycle_ns(&self) -> u64 {
        self.apic_bus_cycle_ns.load(Ordering::Relaxed)
    }

    /// Whether the guest may read MSR_PLATFORM_INFO.
    pub(crate) fn guest_reads_platform_info(&self) -> bool {
        self.guest_reads_platform_info.load(Ordering::Relaxed)
    }

    /// The `KVM_X86_DISABLE_EXITS_*` enabled.
    pub(crate) fn disabled_exits(&self) -> u64 {
        self.disabled_exits.load(Ordering::Relaxed)
    }

    /// Whether KVM_CAP_EXCEPTION_PAYLOAD is enabled.
    pub(crate) fn exception_payload(&self) -> bool {
        self.exception_payload.load(Ordering::Relaxed)
    }

    /// Whether KVM_CAP_X86_TRIPLE_FAULT_EVENT is enabled.
    pub(crate) fn triple_fault_event(&self) -> bool {
        self.triple_fault_event.load(Ordering::Relaxed)
    }

    /// Whether quirk `q` (a `KVM_X86_QUIRK_*`) is on: all are, until
    /// KVM_CAP_DISABLE_QUIRKS(2) turns one off.
    pub(crate) fn quirk(&self, q: u32) -> bool {
        self.disabled_quirks.load(Ordering::Relaxed) & u64::from(q) == 0
    }

    /// Whether KVM_CAP_EXIT_ON_EMULATION_FAILURE is enabled.
    pub(crate) fn exit_on_emulation_failure(&self) -> bool {
        self.exit_on_emulation_failure.load(Ordering::Relaxed)
    }

    /// Whether hypercall `nr` exits to userspace (KVM_CAP_EXIT_HYPERCALL).
    pub(crate) fn hypercall_exit_enabled(&self, nr: u64) -> bool {
        nr < 64 && self.hypercall_exit.load(Ordering::Relaxed) & (1 << nr) != 0
    }
}

/// Ok(0) for an ioctl that returns nothing else.
fn done(r: Result) -> Result<isize> {
    r.map(|()| 0)
}

/// The x86 VM ioctls; ENOTTY for unknown ones, as upstream.
#[inline(never)]
pub(crate) fn vm_ioctl(vm: &Vm, cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        KVM_CREATE_IRQCHIP => done(chips::create_irqchip(vm)),
        KVM_IRQ_LINE => done(chips::irq_line(vm, arg, false)),
        KVM_IRQ_LINE_STATUS => done(chips::irq_line(vm, arg, true)),
        KVM_GET_IRQCHIP => done(chips::get_irqchip(vm, arg)),
        KVM_SET_IRQCHIP => done(chips::set_irqchip(vm, arg)),
        KVM_SET_GSI_ROUTING => done(chips::set_gsi_routing(vm, arg)),
        KVM_SIGNAL_MSI => chips::signal_msi(vm, arg),
        KVM_CREATE_PIT2 => done(chips::create_pit2(vm, arg)),
        KVM_GET_PIT2 => done(chips::get_pit2(vm, arg)),
        KVM_SET_PIT2 => done(chips::set_pit2(vm, arg)),
        KVM_GET_CLOCK => done(kvmclock::get_clock(vm, arg)),
        KVM_SET_CLOCK => done(kvmclock::set_clock(vm, arg)),
        KVM_SET_BOOT_CPU_ID => done(set_boot_cpu_id(vm, arg)),
        KVM_SET_TSS_ADDR => done(set_tss_addr(arg)),
        KVM_SET_IDENTITY_MAP_ADDR => done(set_identity_map_addr(vm, arg)),
        KVM_X86_SET_MSR_FILTER => done(x86_set_msr_filter(vm, arg)),
        KVM_GET_TSC_KHZ => Ok(vm.arch().default_tsc_khz.load(Ordering::Relaxed) as isize),
        KVM_SET_TSC_KHZ => done(set_default_tsc_khz(vm, arg as u32)),
        KVM_SET_NR_MMU_PAGES => done(set_nr_mmu_pages(arg)),
        _ => Err(ENOTTY),
    }
}

/// KVM_ENABLE_CAP for the x86 capabilities.
pub(crate) fn enable_cap(vm: &Vm, c: &uapi::kvm_enable_cap) -> Result {
    match c.cap {
        uapi::KVM_CAP_SPLIT_IRQCHIP => chips::enable_split_irqchip(vm, c.args[0]),
        uapi::KVM_CAP_X2APIC_API => chips::enable_x2apic_api(vm, c.args[0]),
        uapi::KVM_CAP_EXIT_HYPERCALL => {
            if c.args[0] & !EXIT_HYPERCALL_VALID != 0 {
                return Err(EINVAL);
            }
            vm.arch().hypercall_exit.store(c.args[0], Ordering::SeqCst);
            Ok(())
        }
        // Any non-zero argument enables, zero disables (upstream stores it
        // in a bool).
        uapi::KVM_CAP_EXCEPTION_PAYLOAD => {
            vm.arch()
                .exception_payload
                .store(c.args[0] != 0, Ordering::Relaxed);
            Ok(())
        }
        uapi::KVM_CAP_X86_DISABLE_EXITS => enable_disable_exits(vm, c.args[0]),
        uapi::KVM_CAP_X86_APIC_BUS_CYCLES_NS => enable_apic_bus_cycles_ns(vm, c.args[0]),
        uapi::KVM_CAP_MSR_PLATFORM_INFO => {
            vm.arch()
                .guest_reads_platform_info
                .store(c.args[0] != 0, Ordering::Relaxed);
            Ok(())
        }
        uapi::KVM_CAP_X86_USER_SPACE_MSR => {
            if c.args[0] & !USER_SPACE_MSR_VALID != 0 {
                return Err(EINVAL);
            }
            vm.arch()
                .user_space_msr
                .store(c.args[0] as u32, Ordering::Relaxed);
            Ok(())
        }
        uapi::KVM_CAP_X86_TRIPLE_FAULT_EVENT => {
            vm.arch()
                .triple_fault_event
                .store(c.args[0] != 0, Ordering::Relaxed);
            Ok(())
        }
        // Unknown quirks: EINVAL (DISABLE_QUIRKS2) or ignored (the
        // original DISABLE_QUIRKS), as upstream.
        uapi::KVM_CAP_DISABLE_QUIRKS2 | uapi::KVM_CAP_DISABLE_QUIRKS => {
            if c.cap == uapi::KVM_CAP_DISABLE_QUIRKS2 && c.args[0] & !caps::SUPPORTED_QUIRKS != 0 {
                return Err(EINVAL);
            }
            vm.arch()
                .disabled_quirks
                .fetch_or(c.args[0] & caps::SUPPORTED_QUIRKS, Ordering::Relaxed);
            Ok(())
        }
        // 0 or 1 (upstream: EINVAL for any other bit).
        uapi::KVM_CAP_EXIT_ON_EMULATION_FAILURE => {
            if c.args[0] & !1 != 0 {
                return Err(EINVAL);
            }
            vm.arch()
                .exit_on_emulation_failure
                .store(c.args[0] != 0, Ordering::Relaxed);
            Ok(())
        }
        _ => Err(EINVAL),
    }
}

/// KVM_ENABLE_CAP(KVM_CAP_X86_DISABLE_EXITS): EINVAL for exits that
/// cannot be disabled here or once a vCPU exists; accumulates.
fn enable_disable_exits(vm: &Vm, exits: u64) -> Result {
    if exits & !caps::allowed_disable_exits(vm.vendor().ops()) != 0 {
        return Err(EINVAL);
    }
    let _slots = vm.lock_slots();
    if !vm.vcpus().is_empty() {
        return Err(EINVAL);
    }
    vm.arch().disabled_exits.fetch_or(exits, Ordering::Relaxed);
    Ok(())
}

/// KVM_ENABLE_CAP(KVM_CAP_X86_APIC_BUS_CYCLES_NS): the LAPIC timer's bus
/// cycle; EINVAL for 0 or a cycle that overflows the timer's arithmetic
/// (a full count at divide-by-128), ENXIO without an in-kernel LAPIC,
/// EINVAL once a vCPU exists (upstream's rules).
fn enable_apic_bus_cycles_ns(vm: &Vm, ns: u64) -> Result {
    if ns == 0 || (u64::from(u32::MAX) << 7).checked_mul(ns).is_none() {
        return Err(EINVAL);
    }
    let _slots = vm.lock_slots();
    if !vm.arch().irqchip().in_kernel() {
        return Err(ENXIO);
    }
    if !vm.vcpus().is_empty() {
        return Err(EINVAL);
    }
    vm.arch().apic_bus_cycle_ns.store(ns, Ordering::Relaxed);
    Ok(())
}

/// KVM_X86_SET_MSR_FILTER: replaces the VM's MSR filter (all ranges
/// empty and "allow": no filter). vCPUs see the old or the new one.
fn x86_set_msr_filter(vm: &Vm, arg: usize) -> Result {
    let new = MsrFilter::from_user(arg)?;
    let old = core::mem::replace(&mut *vm.arch().msr_filter.lock(), new);
    // Freed outside the lock.
    drop(old);
    Ok(())
}

/// KVM_SET_BOOT_CPU_ID: only before any vCPU exists (EBUSY after).
fn set_boot_cpu_id(vm: &Vm, id: usize) -> Result {
    let _slots = vm.lock_slots();
    if !vm.vcpus().is_empty() {
        return Err(EBUSY);
    }
    if !vm.valid_bsp_id(id) {
        return Err(EINVAL);
    }
    vm.arch().bsp_id.store(id as u32, Ordering::Relaxed);
    Ok(())
}

/// KVM_SET_TSC_KHZ on the VM (upstream's KVM_CAP_VM_TSC_CONTROL ioctl,
/// present without the capability): the rate of the vCPUs created later,
/// 0 for the host's; EINVAL once a vCPU exists. Without TSC scaling only
/// the host's rate (give or take `tsc_tolerance_ppm`) is taken, as for a
/// vCPU's KVM_SET_TSC_KHZ.
fn set_default_tsc_khz(vm: &Vm, khz: u32) -> Result {
    kvmclock::set_tsc_khz(khz)?;
    let khz = if khz == 0 {
        kvmclock::tsc_khz() as u32
    } else {
        khz
    };
    let _slots = vm.lock_slots();
    if !vm.vcpus().is_empty() {
        return Err(EINVAL);
    }
    vm.arch().default_tsc_khz.store(khz, Ordering::Relaxed);
    Ok(())
}

/// KVM_SET_NR_MMU_PAGES: the shadow MMU's page budget; at least
/// KVM_MIN_ALLOC_MMU_PAGES (64), as upstream. Accepted and otherwise
/// ignored: TDP needs no budget, and the shadow MMU (npt=0) sizes its
/// budget from the memory slots (upstream's default) and does not take
/// this value yet.
fn set_nr_mmu_pages(pages: usize) -> Result {
    const KVM_MIN_ALLOC_MMU_PAGES: usize = 64;
    if pages < KVM_MIN_ALLOC_MMU_PAGES {
        return Err(EINVAL);
    }
    Ok(())
}

/// KVM_SET_TSS_ADDR: a real-mode helper area for vendors without
/// unrestricted guests; rkvm's vendors need none, but userspace sets it
/// unconditionally: accepted like upstream.
fn set_tss_addr(_addr: usize) -> Result {
    Ok(())
}

/// KVM_SET_IDENTITY_MAP_ADDR: as KVM_SET_TSS_ADDR, but only before any
/// vCPU exists (upstream: EINVAL after).
fn set_identity_map_addr(vm: &Vm, arg: usize) -> Result {
    if !vm.vcpus().is_empty() {
        return Err(EINVAL);
    }
    let _addr: u64 = read_arg(arg)?;
    Ok(())
}
