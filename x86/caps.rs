// SPDX-License-Identifier: GPL-2.0
//! `KVM_CHECK_EXTENSION` for the x86 capabilities (upstream's
//! kvm_vm_ioctl_check_extension() in x86.c); the generic ones are
//! `virt::caps`'s.

use crate::{
    defs::cpuid::{
        linux::{LinuxFeature, X86_BUG_MONITOR},
        X86_FEATURE_ARAT, X86_FEATURE_MWAIT,
    },
    ext::{cpu::num_online_cpus, msr, uapi::*},
    irqchip::lapic_timer::DEFAULT_BUS_CYCLE_NS,
    virt::{
        vcpu::MAX_VCPUS,
        vm::{Vm, MAX_VCPU_IDS},
    },
    x86::{
        irq::chips::X2APIC_API_VALID_FLAGS,
        kvmclock::CLOCK_VALID_FLAGS,
        msrs::MAX_MCE_BANKS,
        params, regs,
        vendor::{self, ArchOps},
        vm_arch::EXIT_HYPERCALL_VALID,
    },
};

/// The quirks KVM_CAP_DISABLE_QUIRKS(2) can turn off (upstream's
/// `kvm_caps.supported_quirks` has more; rkvm behaves as upstream with
/// the others on).
pub(crate) const SUPPORTED_QUIRKS: u64 = (KVM_X86_QUIRK_FIX_HYPERCALL_INSN
    | KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT
    | KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS) as u64;

/// The x86 answer to `KVM_CHECK_EXTENSION(cap)` on `/dev/kvm` (`vm` is
/// `None`) or on a VM fd.
pub(crate) fn check_extension(vm: Option<&Vm>, cap: u32) -> isize {
    match cap {
        KVM_CAP_HLT
        | KVM_CAP_SET_TSS_ADDR
        | KVM_CAP_EXT_CPUID
        | KVM_CAP_NOP_IO_DELAY
        | KVM_CAP_MP_STATE
        | KVM_CAP_SYNC_MMU
        | KVM_CAP_USER_NMI
        | KVM_CAP_SET_IDENTITY_MAP_ADDR
        | KVM_CAP_VCPU_EVENTS
        | KVM_CAP_DEBUGREGS
        | KVM_CAP_XSAVE
        | KVM_CAP_XCRS
        | KVM_CAP_GET_TSC_KHZ
        | KVM_CAP_READONLY_MEM
        | KVM_CAP_IMMEDIATE_EXIT
        | KVM_CAP_SET_GUEST_DEBUG
        | KVM_CAP_ENABLE_CAP
        | KVM_CAP_MEMORY_FAULT_INFO
        // The in-kernel irqchip (PIC, IOAPIC, LAPIC, PIT).
        | KVM_CAP_IRQCHIP
        | KVM_CAP_SIGNAL_MSI
        | KVM_CAP_IRQ_INJECT_STATUS
        | KVM_CAP_PIT
        | KVM_CAP_PIT2
        | KVM_CAP_PIT_STATE2
        | KVM_CAP_TSC_DEADLINE_TIMER
        | KVM_CAP_IOAPIC_POLARITY_IGNORED
        | KVM_CAP_IOEVENTFD
        | KVM_CAP_IOEVENTFD_NO_LENGTH
        // Single-stepping over an emulated instruction traps after it (the
        // emulator honours RFLAGS.TF), as upstream always does.
        | KVM_CAP_X86_ROBUST_SINGLESTEP
        // KVM_GET_MSR_FEATURE_INDEX_LIST and KVM_GET_MSRS on /dev/kvm.
        | KVM_CAP_GET_MSR_FEATURES
        // KVM_GET_EMULATED_CPUID.
        | KVM_CAP_EXT_EMUL_CPUID
        // kvmclock (MSR_KVM_SYSTEM_TIME(_NEW), MSR_KVM_WALL_CLOCK(_NEW)).
        | KVM_CAP_CLOCKSOURCE
        // KVM_KVMCLOCK_CTRL.
        | KVM_CAP_KVMCLOCK_CTRL
        // kvm_run.fail_entry.cpu is filled in.
        | KVM_CAP_LAST_CPU
        // kvm_run.flags is reported on every exit (never guest mode: no
        // nested virtualization yet).
        | KVM_CAP_X86_GUEST_MODE
        // Pending vs injected exceptions and their payloads, and pending
        // triple faults, in KVM_GET/SET_VCPU_EVENTS (KVM_ENABLE_CAP).
        | KVM_CAP_EXCEPTION_PAYLOAD
        | KVM_CAP_X86_TRIPLE_FAULT_EVENT
        // KVM_GET/SET_SREGS2 (PDPTEs under PAE paging).
        | KVM_CAP_SREGS2
        // Refused guest MSR accesses may exit to userspace; the MSR filter.
        | KVM_CAP_X86_USER_SPACE_MSR
        | KVM_CAP_X86_MSR_FILTER
        // KVM_HAS/GET_DEVICE_ATTR on /dev/kvm (XCOMP_GUEST_SUPP), and on
        // vCPUs (the TSC offset).
        | KVM_CAP_SYS_ATTRIBUTES
        | KVM_CAP_VCPU_ATTRIBUTES
        // The guest's read access to MSR_PLATFORM_INFO (KVM_ENABLE_CAP).
        | KVM_CAP_MSR_PLATFORM_INFO
        // Emulation failures exit to userspace at any CPL (KVM_ENABLE_CAP).
        | KVM_CAP_EXIT_ON_EMULATION_FAILURE
        // KVM_SET_NR_MMU_PAGES (accepted; see x86/vm_arch.rs).
        | KVM_CAP_MMU_SHADOW_CACHE_CONTROL
        // Quirks can be disabled (only those in SUPPORTED_QUIRKS).
        | KVM_CAP_DISABLE_QUIRKS
        // Paravirtual MSRs gated by the guest's KVM leaf (vCPU
        // KVM_ENABLE_CAP); the PV hypercalls are -KVM_ENOSYS anyway.
        | KVM_CAP_ENFORCE_PV_FEATURE_CPUID
        // A leftover of device assignment, answered 1 by upstream too.
        | KVM_CAP_PCI_SEGMENT => 1,
        // Only the default VM type.
        KVM_CAP_VM_TYPES => 1 << KVM_X86_DEFAULT_VM,
        // Enabling suppress-EOI-broadcast needs a split irqchip.
        KVM_CAP_X2APIC_API => {
            let split = vm.is_none_or(|vm| vm.arch().irqchip().is_split());
            let enable = u64::from(KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST);
            (X2APIC_API_VALID_FLAGS & if split { u64::MAX } else { !enable }) as isize
        }
        KVM_CAP_X86_DISABLE_EXITS => match vendor::registered_ops() {
            Ok(ops) => allowed_disable_exits(&*ops) as isize,
            Err(_) => 0,
        },
        KVM_CAP_X86_APIC_BUS_CYCLES_NS => match vm {
            Some(vm) => vm.arch().apic_bus_cycle_ns() as isize,
            None => DEFAULT_BUS_CYCLE_NS as isize,
        },
        KVM_CAP_NR_VCPUS => num_online_cpus().min(MAX_VCPUS) as isize,
        KVM_CAP_MAX_VCPUS => MAX_VCPUS as isize,
        KVM_CAP_MAX_VCPU_ID => MAX_VCPU_IDS as isize,
        KVM_CAP_EXIT_HYPERCALL => EXIT_HYPERCALL_VALID as isize,
        KVM_CAP_ADJUST_CLOCK => CLOCK_VALID_FLAGS as isize,
        KVM_CAP_XSAVE2 => regs::xsave_size() as isize,
        KVM_CAP_MCE => MAX_MCE_BANKS as isize,
        KVM_CAP_DISABLE_QUIRKS2 => SUPPORTED_QUIRKS as isize,
        // kvm_run's `s.regs`: REGS, SREGS and EVENTS.
        KVM_CAP_SYNC_REGS => crate::x86::run::SYNC_REGS_VALID as isize,
        // KVM_GET/SET_NESTED_STATE's largest answer (kvm-amd: header
        // and VMCB, whatever `nested` says, as upstream).
        KVM_CAP_NESTED_STATE => vendor::registered_ops().map_or(0, |o| o.nested_state_size()) as isize,
        KVM_CAP_VAPIC | KVM_CAP_SET_BOOT_CPU_ID | KVM_CAP_SPLIT_IRQCHIP => 1,
        _ => 0,
    }
}

/// Whether a guest may run MONITOR/MWAIT natively (upstream's
/// kvm_can_mwait_in_guest()): the host has MWAIT that wakes without an
/// IPI, and an always-running APIC timer.
fn can_mwait_in_guest() -> bool {
    let has = |f: Option<LinuxFeature>| f.is_some_and(|f| msr::cpu_has(f.0));
    has(LinuxFeature::of(X86_FEATURE_MWAIT))
        && !msr::cpu_has(X86_BUG_MONITOR.0)
        && has(LinuxFeature::of(X86_FEATURE_ARAT))
}

/// The exits KVM_CAP_X86_DISABLE_EXITS may turn off (upstream's
/// kvm_get_allowed_disable_exits(), within what the vendor honours):
/// PAUSE always; HLT, C-states and (if the host allows) MWAIT unless
/// `mitigate_smt_rsb`. APERF/MPERF pass-through is not implemented.
pub(crate) fn allowed_disable_exits(ops: &dyn ArchOps) -> u64 {
    let mut r = u64::from(KVM_X86_DISABLE_EXITS_PAUSE);
    if !params::MITIGATE_SMT_RSB.get() {
        r |= u64::from(KVM_X86_DISABLE_EXITS_HLT | KVM_X86_DISABLE_EXITS_CSTATE);
        if can_mwait_in_guest() {
            r |= u64::from(KVM_X86_DISABLE_EXITS_MWAIT);
        }
    }
    r & ops.disable_exits_supported()
}
