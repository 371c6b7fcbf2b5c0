//! Every KVM ioctl of usr/include/linux/kvm.h (generated from it by a script;
//! the sizes are the x86_64 struct sizes, checked with sizeof() in C).

pub const fn ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << 30) | (size << 16) | (0xAE << 8) | nr
}

pub const KVM_GET_API_VERSION: u32 = ioc(0, 0x0, 0);
pub const KVM_CREATE_VM: u32 = ioc(0, 0x1, 0);
pub const KVM_GET_MSR_INDEX_LIST: u32 = ioc(3, 0x2, 4);
pub const KVM_CHECK_EXTENSION: u32 = ioc(0, 0x3, 0);
pub const KVM_GET_VCPU_MMAP_SIZE: u32 = ioc(0, 0x4, 0);
pub const KVM_GET_SUPPORTED_CPUID: u32 = ioc(3, 0x5, 8);
pub const KVM_GET_EMULATED_CPUID: u32 = ioc(3, 0x9, 8);
pub const KVM_GET_MSR_FEATURE_INDEX_LIST: u32 = ioc(3, 0xa, 4);
pub const KVM_CREATE_VCPU: u32 = ioc(0, 0x41, 0);
pub const KVM_GET_DIRTY_LOG: u32 = ioc(1, 0x42, 16);
pub const KVM_SET_NR_MMU_PAGES: u32 = ioc(0, 0x44, 0);
pub const KVM_GET_NR_MMU_PAGES: u32 = ioc(0, 0x45, 0);
pub const KVM_SET_USER_MEMORY_REGION: u32 = ioc(1, 0x46, 32);
pub const KVM_SET_TSS_ADDR: u32 = ioc(0, 0x47, 0);
pub const KVM_SET_IDENTITY_MAP_ADDR: u32 = ioc(1, 0x48, 8);
pub const KVM_SET_USER_MEMORY_REGION2: u32 = ioc(1, 0x49, 160);
pub const KVM_CREATE_IRQCHIP: u32 = ioc(0, 0x60, 0);
pub const KVM_IRQ_LINE: u32 = ioc(1, 0x61, 8);
pub const KVM_GET_IRQCHIP: u32 = ioc(3, 0x62, 520);
pub const KVM_SET_IRQCHIP: u32 = ioc(2, 0x63, 520);
pub const KVM_CREATE_PIT: u32 = ioc(0, 0x64, 0);
pub const KVM_GET_PIT: u32 = ioc(3, 0x65, 72);
pub const KVM_SET_PIT: u32 = ioc(2, 0x66, 72);
pub const KVM_IRQ_LINE_STATUS: u32 = ioc(3, 0x67, 8);
pub const KVM_REGISTER_COALESCED_MMIO: u32 = ioc(1, 0x67, 16);
pub const KVM_UNREGISTER_COALESCED_MMIO: u32 = ioc(1, 0x68, 16);
pub const KVM_SET_GSI_ROUTING: u32 = ioc(1, 0x6a, 8);
pub const KVM_REINJECT_CONTROL: u32 = ioc(0, 0x71, 0);
pub const KVM_IRQFD: u32 = ioc(1, 0x76, 32);
pub const KVM_CREATE_PIT2: u32 = ioc(1, 0x77, 64);
pub const KVM_SET_BOOT_CPU_ID: u32 = ioc(0, 0x78, 0);
pub const KVM_IOEVENTFD: u32 = ioc(1, 0x79, 64);
pub const KVM_XEN_HVM_CONFIG: u32 = ioc(1, 0x7a, 56);
pub const KVM_SET_CLOCK: u32 = ioc(1, 0x7b, 48);
pub const KVM_GET_CLOCK: u32 = ioc(2, 0x7c, 48);
pub const KVM_GET_PIT2: u32 = ioc(2, 0x9f, 112);
pub const KVM_SET_PIT2: u32 = ioc(1, 0xa0, 112);
pub const KVM_SET_TSC_KHZ: u32 = ioc(0, 0xa2, 0);
pub const KVM_GET_TSC_KHZ: u32 = ioc(0, 0xa3, 0);
pub const KVM_SIGNAL_MSI: u32 = ioc(1, 0xa5, 32);
pub const KVM_SET_PMU_EVENT_FILTER: u32 = ioc(1, 0xb2, 32);
pub const KVM_MEMORY_ENCRYPT_OP: u32 = ioc(3, 0xba, 8);
pub const KVM_MEMORY_ENCRYPT_REG_REGION: u32 = ioc(2, 0xbb, 16);
pub const KVM_MEMORY_ENCRYPT_UNREG_REGION: u32 = ioc(2, 0xbc, 16);
pub const KVM_HYPERV_EVENTFD: u32 = ioc(1, 0xbd, 24);
pub const KVM_CLEAR_DIRTY_LOG: u32 = ioc(3, 0xc0, 24);
pub const KVM_X86_SET_MSR_FILTER: u32 = ioc(1, 0xc6, 392);
pub const KVM_RESET_DIRTY_RINGS: u32 = ioc(0, 0xc7, 0);
pub const KVM_XEN_HVM_GET_ATTR: u32 = ioc(3, 0xc8, 72);
pub const KVM_XEN_HVM_SET_ATTR: u32 = ioc(1, 0xc9, 72);
pub const KVM_XEN_HVM_EVTCHN_SEND: u32 = ioc(1, 0xd0, 12);
pub const KVM_SET_MEMORY_ATTRIBUTES: u32 = ioc(1, 0xd2, 32);
pub const KVM_CREATE_GUEST_MEMFD: u32 = ioc(3, 0xd4, 64);
pub const KVM_PRE_FAULT_MEMORY: u32 = ioc(3, 0xd5, 64);
pub const KVM_CREATE_DEVICE: u32 = ioc(3, 0xe0, 12);
pub const KVM_SET_DEVICE_ATTR: u32 = ioc(1, 0xe1, 24);
pub const KVM_GET_DEVICE_ATTR: u32 = ioc(1, 0xe2, 24);
pub const KVM_HAS_DEVICE_ATTR: u32 = ioc(1, 0xe3, 24);
pub const KVM_RUN: u32 = ioc(0, 0x80, 0);
pub const KVM_GET_REGS: u32 = ioc(2, 0x81, 144);
pub const KVM_SET_REGS: u32 = ioc(1, 0x82, 144);
pub const KVM_GET_SREGS: u32 = ioc(2, 0x83, 312);
pub const KVM_SET_SREGS: u32 = ioc(1, 0x84, 312);
pub const KVM_TRANSLATE: u32 = ioc(3, 0x85, 24);
pub const KVM_INTERRUPT: u32 = ioc(1, 0x86, 4);
pub const KVM_GET_MSRS: u32 = ioc(3, 0x88, 8);
pub const KVM_SET_MSRS: u32 = ioc(1, 0x89, 8);
pub const KVM_SET_CPUID: u32 = ioc(1, 0x8a, 8);
pub const KVM_SET_SIGNAL_MASK: u32 = ioc(1, 0x8b, 4);
pub const KVM_GET_FPU: u32 = ioc(2, 0x8c, 416);
pub const KVM_SET_FPU: u32 = ioc(1, 0x8d, 416);
pub const KVM_GET_LAPIC: u32 = ioc(2, 0x8e, 1024);
pub const KVM_SET_LAPIC: u32 = ioc(1, 0x8f, 1024);
pub const KVM_SET_CPUID2: u32 = ioc(1, 0x90, 8);
pub const KVM_GET_CPUID2: u32 = ioc(3, 0x91, 8);
pub const KVM_TPR_ACCESS_REPORTING: u32 = ioc(3, 0x92, 40);
pub const KVM_SET_VAPIC_ADDR: u32 = ioc(1, 0x93, 8);
pub const KVM_GET_MP_STATE: u32 = ioc(2, 0x98, 4);
pub const KVM_SET_MP_STATE: u32 = ioc(1, 0x99, 4);
pub const KVM_NMI: u32 = ioc(0, 0x9a, 0);
pub const KVM_SET_GUEST_DEBUG: u32 = ioc(1, 0x9b, 72);
pub const KVM_X86_SETUP_MCE: u32 = ioc(1, 0x9c, 8);
pub const KVM_X86_GET_MCE_CAP_SUPPORTED: u32 = ioc(2, 0x9d, 8);
pub const KVM_X86_SET_MCE: u32 = ioc(1, 0x9e, 64);
pub const KVM_GET_VCPU_EVENTS: u32 = ioc(2, 0x9f, 64);
pub const KVM_SET_VCPU_EVENTS: u32 = ioc(1, 0xa0, 64);
pub const KVM_GET_DEBUGREGS: u32 = ioc(2, 0xa1, 128);
pub const KVM_SET_DEBUGREGS: u32 = ioc(1, 0xa2, 128);
pub const KVM_ENABLE_CAP: u32 = ioc(1, 0xa3, 104);
pub const KVM_GET_XSAVE: u32 = ioc(2, 0xa4, 4096);
pub const KVM_SET_XSAVE: u32 = ioc(1, 0xa5, 4096);
pub const KVM_GET_XCRS: u32 = ioc(2, 0xa6, 392);
pub const KVM_SET_XCRS: u32 = ioc(1, 0xa7, 392);
pub const KVM_GET_ONE_REG: u32 = ioc(1, 0xab, 16);
pub const KVM_SET_ONE_REG: u32 = ioc(1, 0xac, 16);
pub const KVM_KVMCLOCK_CTRL: u32 = ioc(0, 0xad, 0);
pub const KVM_GET_REG_LIST: u32 = ioc(3, 0xb0, 8);
pub const KVM_SMI: u32 = ioc(0, 0xb7, 0);
pub const KVM_GET_NESTED_STATE: u32 = ioc(3, 0xbe, 128);
pub const KVM_SET_NESTED_STATE: u32 = ioc(1, 0xbf, 128);
pub const KVM_GET_SUPPORTED_HV_CPUID: u32 = ioc(3, 0xc1, 8);
pub const KVM_XEN_VCPU_GET_ATTR: u32 = ioc(3, 0xca, 72);
pub const KVM_XEN_VCPU_SET_ATTR: u32 = ioc(1, 0xcb, 72);
pub const KVM_GET_SREGS2: u32 = ioc(2, 0xcc, 320);
pub const KVM_SET_SREGS2: u32 = ioc(1, 0xcd, 320);
pub const KVM_GET_STATS_FD: u32 = ioc(0, 0xce, 0);
pub const KVM_GET_XSAVE2: u32 = ioc(2, 0xcf, 4096);

/// (name, cmd) of every ioctl above.
pub const ALL: &[(&str, u32)] = &[
    ("GET_API_VERSION", KVM_GET_API_VERSION),
    ("CREATE_VM", KVM_CREATE_VM),
    ("GET_MSR_INDEX_LIST", KVM_GET_MSR_INDEX_LIST),
    ("CHECK_EXTENSION", KVM_CHECK_EXTENSION),
    ("GET_VCPU_MMAP_SIZE", KVM_GET_VCPU_MMAP_SIZE),
    ("GET_SUPPORTED_CPUID", KVM_GET_SUPPORTED_CPUID),
    ("GET_EMULATED_CPUID", KVM_GET_EMULATED_CPUID),
    ("GET_MSR_FEATURE_INDEX_LIST", KVM_GET_MSR_FEATURE_INDEX_LIST),
    ("CREATE_VCPU", KVM_CREATE_VCPU),
    ("GET_DIRTY_LOG", KVM_GET_DIRTY_LOG),
    ("SET_NR_MMU_PAGES", KVM_SET_NR_MMU_PAGES),
    ("GET_NR_MMU_PAGES", KVM_GET_NR_MMU_PAGES),
    ("SET_USER_MEMORY_REGION", KVM_SET_USER_MEMORY_REGION),
    ("SET_TSS_ADDR", KVM_SET_TSS_ADDR),
    ("SET_IDENTITY_MAP_ADDR", KVM_SET_IDENTITY_MAP_ADDR),
    ("SET_USER_MEMORY_REGION2", KVM_SET_USER_MEMORY_REGION2),
    ("CREATE_IRQCHIP", KVM_CREATE_IRQCHIP),
    ("IRQ_LINE", KVM_IRQ_LINE),
    ("GET_IRQCHIP", KVM_GET_IRQCHIP),
    ("SET_IRQCHIP", KVM_SET_IRQCHIP),
    ("CREATE_PIT", KVM_CREATE_PIT),
    ("GET_PIT", KVM_GET_PIT),
    ("SET_PIT", KVM_SET_PIT),
    ("IRQ_LINE_STATUS", KVM_IRQ_LINE_STATUS),
    ("REGISTER_COALESCED_MMIO", KVM_REGISTER_COALESCED_MMIO),
    ("UNREGISTER_COALESCED_MMIO", KVM_UNREGISTER_COALESCED_MMIO),
    ("SET_GSI_ROUTING", KVM_SET_GSI_ROUTING),
    ("REINJECT_CONTROL", KVM_REINJECT_CONTROL),
    ("IRQFD", KVM_IRQFD),
    ("CREATE_PIT2", KVM_CREATE_PIT2),
    ("SET_BOOT_CPU_ID", KVM_SET_BOOT_CPU_ID),
    ("IOEVENTFD", KVM_IOEVENTFD),
    ("XEN_HVM_CONFIG", KVM_XEN_HVM_CONFIG),
    ("SET_CLOCK", KVM_SET_CLOCK),
    ("GET_CLOCK", KVM_GET_CLOCK),
    ("GET_PIT2", KVM_GET_PIT2),
    ("SET_PIT2", KVM_SET_PIT2),
    ("SET_TSC_KHZ", KVM_SET_TSC_KHZ),
    ("GET_TSC_KHZ", KVM_GET_TSC_KHZ),
    ("SIGNAL_MSI", KVM_SIGNAL_MSI),
    ("SET_PMU_EVENT_FILTER", KVM_SET_PMU_EVENT_FILTER),
    ("MEMORY_ENCRYPT_OP", KVM_MEMORY_ENCRYPT_OP),
    ("MEMORY_ENCRYPT_REG_REGION", KVM_MEMORY_ENCRYPT_REG_REGION),
    ("MEMORY_ENCRYPT_UNREG_REGION", KVM_MEMORY_ENCRYPT_UNREG_REGION),
    ("HYPERV_EVENTFD", KVM_HYPERV_EVENTFD),
    ("CLEAR_DIRTY_LOG", KVM_CLEAR_DIRTY_LOG),
    ("X86_SET_MSR_FILTER", KVM_X86_SET_MSR_FILTER),
    ("RESET_DIRTY_RINGS", KVM_RESET_DIRTY_RINGS),
    ("XEN_HVM_GET_ATTR", KVM_XEN_HVM_GET_ATTR),
    ("XEN_HVM_SET_ATTR", KVM_XEN_HVM_SET_ATTR),
    ("XEN_HVM_EVTCHN_SEND", KVM_XEN_HVM_EVTCHN_SEND),
    ("SET_MEMORY_ATTRIBUTES", KVM_SET_MEMORY_ATTRIBUTES),
    ("CREATE_GUEST_MEMFD", KVM_CREATE_GUEST_MEMFD),
    ("PRE_FAULT_MEMORY", KVM_PRE_FAULT_MEMORY),
    ("CREATE_DEVICE", KVM_CREATE_DEVICE),
    ("SET_DEVICE_ATTR", KVM_SET_DEVICE_ATTR),
    ("GET_DEVICE_ATTR", KVM_GET_DEVICE_ATTR),
    ("HAS_DEVICE_ATTR", KVM_HAS_DEVICE_ATTR),
    ("RUN", KVM_RUN),
    ("GET_REGS", KVM_GET_REGS),
    ("SET_REGS", KVM_SET_REGS),
    ("GET_SREGS", KVM_GET_SREGS),
    ("SET_SREGS", KVM_SET_SREGS),
    ("TRANSLATE", KVM_TRANSLATE),
    ("INTERRUPT", KVM_INTERRUPT),
    ("GET_MSRS", KVM_GET_MSRS),
    ("SET_MSRS", KVM_SET_MSRS),
    ("SET_CPUID", KVM_SET_CPUID),
    ("SET_SIGNAL_MASK", KVM_SET_SIGNAL_MASK),
    ("GET_FPU", KVM_GET_FPU),
    ("SET_FPU", KVM_SET_FPU),
    ("GET_LAPIC", KVM_GET_LAPIC),
    ("SET_LAPIC", KVM_SET_LAPIC),
    ("SET_CPUID2", KVM_SET_CPUID2),
    ("GET_CPUID2", KVM_GET_CPUID2),
    ("TPR_ACCESS_REPORTING", KVM_TPR_ACCESS_REPORTING),
    ("SET_VAPIC_ADDR", KVM_SET_VAPIC_ADDR),
    ("GET_MP_STATE", KVM_GET_MP_STATE),
    ("SET_MP_STATE", KVM_SET_MP_STATE),
    ("NMI", KVM_NMI),
    ("SET_GUEST_DEBUG", KVM_SET_GUEST_DEBUG),
    ("X86_SETUP_MCE", KVM_X86_SETUP_MCE),
    ("X86_GET_MCE_CAP_SUPPORTED", KVM_X86_GET_MCE_CAP_SUPPORTED),
    ("X86_SET_MCE", KVM_X86_SET_MCE),
    ("GET_VCPU_EVENTS", KVM_GET_VCPU_EVENTS),
    ("SET_VCPU_EVENTS", KVM_SET_VCPU_EVENTS),
    ("GET_DEBUGREGS", KVM_GET_DEBUGREGS),
    ("SET_DEBUGREGS", KVM_SET_DEBUGREGS),
    ("ENABLE_CAP", KVM_ENABLE_CAP),
    ("GET_XSAVE", KVM_GET_XSAVE),
    ("SET_XSAVE", KVM_SET_XSAVE),
    ("GET_XCRS", KVM_GET_XCRS),
    ("SET_XCRS", KVM_SET_XCRS),
    ("GET_ONE_REG", KVM_GET_ONE_REG),
    ("SET_ONE_REG", KVM_SET_ONE_REG),
    ("KVMCLOCK_CTRL", KVM_KVMCLOCK_CTRL),
    ("GET_REG_LIST", KVM_GET_REG_LIST),
    ("SMI", KVM_SMI),
    ("GET_NESTED_STATE", KVM_GET_NESTED_STATE),
    ("SET_NESTED_STATE", KVM_SET_NESTED_STATE),
    ("GET_SUPPORTED_HV_CPUID", KVM_GET_SUPPORTED_HV_CPUID),
    ("XEN_VCPU_GET_ATTR", KVM_XEN_VCPU_GET_ATTR),
    ("XEN_VCPU_SET_ATTR", KVM_XEN_VCPU_SET_ATTR),
    ("GET_SREGS2", KVM_GET_SREGS2),
    ("SET_SREGS2", KVM_SET_SREGS2),
    ("GET_STATS_FD", KVM_GET_STATS_FD),
    ("GET_XSAVE2", KVM_GET_XSAVE2),
];

pub fn name(cmd: u32) -> String {
    for (n, c) in ALL {
        if *c == cmd {
            return n.to_string();
        }
    }
    format!("ioctl-{cmd:#x}")
}
