//! Capabilities and their ioctls (issue 11, item 2): each test pins what
//! the in-tree module does, so it runs the same on both columns.

use super::guest::*;
use super::harness::{skip, test, Test, TestResult};
use crate::report::expect_eq;
use crate::sys::{expect_errno, io, ioc, ioctl, KVMIO};
use kvm_bindings::*;
use kvm_ioctls::Kvm;
use std::mem::size_of;

const fn iow(nr: u64, size: usize) -> u64 {
    ioc(1, KVMIO, nr, size as u64)
}
const fn ior(nr: u64, size: usize) -> u64 {
    ioc(2, KVMIO, nr, size as u64)
}

const CREATE_VM: u64 = io(KVMIO, 0x01);
const ENABLE_CAP: u64 = iow(0xa3, size_of::<kvm_enable_cap>());
const KVMCLOCK_CTRL: u64 = io(KVMIO, 0xad);
const GET_VCPU_EVENTS: u64 = ior(0x9f, size_of::<kvm_vcpu_events>());
const SET_VCPU_EVENTS: u64 = iow(0xa0, size_of::<kvm_vcpu_events>());
const GET_SREGS2: u64 = ior(0xcc, size_of::<kvm_sregs2>());
const SET_SREGS2: u64 = iow(0xcd, size_of::<kvm_sregs2>());
const SET_MSR_FILTER: u64 = iow(0xc6, size_of::<kvm_msr_filter>());
const SET_DEVICE_ATTR: u64 = iow(0xe1, size_of::<kvm_device_attr>());
const GET_DEVICE_ATTR: u64 = iow(0xe2, size_of::<kvm_device_attr>());
const HAS_DEVICE_ATTR: u64 = iow(0xe3, size_of::<kvm_device_attr>());
const GET_LAPIC: u64 = ior(0x8e, size_of::<kvm_lapic_state>());
const SET_LAPIC: u64 = iow(0x8f, size_of::<kvm_lapic_state>());

/// Not in kvm-bindings 0.14 (newer than it).
const KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST: u64 = 1 << 2;
const KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST: u64 = 1 << 3;

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_APICBASE: u32 = 0x1b;
const MSR_PLATFORM_INFO: u32 = 0xce;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_IA32_CR_PAT: u32 = 0x277;
const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
const APIC_BASE_EN_EXTD: u64 = 0xfee0_0000 | (1 << 11) | (1 << 10);
const KVM_FEATURE_PV_UNHALT: u32 = 1 << 7;
const PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;
/// LAPIC registers in `kvm_lapic_state`.
const APIC_ID: usize = 0x20;
const APIC_LVR: usize = 0x30;
const APIC_LVR_DIRECTED_EOI: u32 = 1 << 24;

pub fn tests() -> Vec<Test> {
    vec![
        test("caps/get-msr-features", get_msr_features),
        test("caps/ext-emul-cpuid", ext_emul_cpuid),
        test("caps/kvmclock-ctrl-guest-stopped", kvmclock_ctrl),
        test("caps/x2apic-api-answers-and-errnos", x2apic_api_errnos),
        test("caps/x2apic-api-32bit-ids-in-lapic-state", x2apic_api_ids),
        test("caps/x2apic-api-directed-eoi-advertised", x2apic_api_directed_eoi),
        test("caps/exception-payload-pf-cr2", exception_payload_pf),
        test("caps/exception-payload-db-dr6", exception_payload_db),
        test("caps/exception-payload-off-conflates", exception_payload_off),
        test("caps/triple-fault-event", triple_fault_event),
        test("caps/sregs2-pae-pdptrs", sregs2),
        test("caps/user-space-msr-unknown-rdmsr-wrmsr", user_space_msr_unknown),
        test("caps/user-space-msr-inval", user_space_msr_inval),
        test("caps/msr-filter-deny-exit-and-gp", msr_filter),
        test("caps/msr-filter-errnos", msr_filter_errnos),
        test("caps/halt-poll-enable-cap", halt_poll),
        test("caps/pmu-capability-without-pmu", pmu_capability),
        test("caps/sys-attributes-xcomp-guest-supp", sys_attributes),
        test("caps/vcpu-attributes-tsc-offset", vcpu_attributes),
        test("caps/disable-exits-errnos-and-pv-unhalt", disable_exits),
        test("caps/disable-exits-hlt-stays-in-guest", disable_exits_hlt),
        test("caps/vm-types", vm_types),
        test("caps/msr-platform-info", msr_platform_info),
        test("caps/exit-on-emulation-failure-no-ud", exit_on_emulation_failure),
        test("caps/sync-regs-store-load-and-errnos", sync_regs),
        test("caps/enforce-pv-feature-cpuid-msrs", enforce_pv_feature_cpuid),
        test("caps/disable-quirks2-fix-hypercall-insn", fix_hypercall_quirk),
        test("caps/disable-quirks2-mwait", mwait_quirks),
        test("caps/kvm-run-flags-zero", run_flags),
        test("caps/apic-bus-cycles-ns", apic_bus_cycles),
        test("caps/vm-tsc-khz-nr-mmu-pages-irqfd-one-vm", vm_level_ioctls),
    ]
}

fn check(vm: &Vm, cap: u32) -> i32 {
    vm.fd.check_extension_raw(cap as u64)
}

/// KVM_ENABLE_CAP on `fd`: `Err(errno)` as the raw ioctl returns it.
fn enable_cap(fd: &impl std::os::fd::AsRawFd, cap: u32, arg0: u64, flags: u32) -> Result<i64, i32> {
    let c = kvm_enable_cap { cap, flags, args: [arg0, 0, 0, 0], ..Default::default() };
    ioctl(fd, ENABLE_CAP, &c as *const _ as u64)
}

fn enable_ok(fd: &impl std::os::fd::AsRawFd, what: &str, cap: u32, arg0: u64) -> TestResult {
    enable_cap(fd, cap, arg0, 0).map(|_| ()).map_err(|e| format!("{what}: {}", crate::sys::errno_name(e)))
}

fn msrs(list: &[(u32, u64)]) -> Result<Msrs, String> {
    let e: Vec<kvm_msr_entry> =
        list.iter().map(|&(index, data)| kvm_msr_entry { index, data, ..Default::default() }).collect();
    Msrs::from_entries(&e).map_err(|e| format!("Msrs: {e:?}"))
}

fn rd_msr(cpu: &Cpu, index: u32) -> Result<u64, String> {
    let mut m = msrs(&[(index, 0)])?;
    expect_eq(&format!("KVM_GET_MSRS({index:#x}) count"), k("KVM_GET_MSRS", cpu.fd.get_msrs(&mut m))?, 1)?;
    Ok(m.as_slice()[0].data)
}

fn wr_msr(cpu: &Cpu, index: u32, v: u64) -> TestResult {
    expect_eq(&format!("KVM_SET_MSRS({index:#x}, {v:#x}) count"), k("KVM_SET_MSRS", cpu.fd.set_msrs(&msrs(&[(index, v)])?))?, 1)
}

fn get_events(cpu: &Cpu) -> Result<kvm_vcpu_events, String> {
    let mut e = kvm_vcpu_events::default();
    ioctl(&cpu.fd, GET_VCPU_EVENTS, &mut e as *mut _ as u64).map_err(|e| format!("KVM_GET_VCPU_EVENTS: errno {e}"))?;
    Ok(e)
}

fn set_events(cpu: &Cpu, e: &kvm_vcpu_events) -> Result<i64, i32> {
    ioctl(&cpu.fd, SET_VCPU_EVENTS, e as *const _ as u64)
}

/// Writes a long-mode interrupt gate for `vec` to routine `name`.
fn install_gate(vm: &Vm, vec: u64, name: &str) -> TestResult {
    let a = vm.sym(name)?;
    let g = (a & 0xffff) | ((SEL_CODE64 as u64) << 16) | (0x8e << 40) | (((a >> 16) & 0xffff) << 48);
    vm.mem.write_u64(IDT_ADDR as usize + 16 * vec as usize, g);
    vm.mem.write_u64(IDT_ADDR as usize + 16 * vec as usize + 8, a >> 32);
    Ok(())
}

/// Runs and expects `out PORT_EXC [vector]`.
fn expect_exc(cpu: &mut Cpu, vector: u8) -> TestResult {
    cpu.expect(Exit::out1(PORT_EXC, vector))
}

// ---------------------------------------------------------------------------

/// KVM_CAP_GET_MSR_FEATURES: every MSR of KVM_GET_MSR_FEATURE_INDEX_LIST
/// reads with KVM_GET_MSRS on /dev/kvm.
fn get_msr_features() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_GET_MSR_FEATURES", kvm.check_extension_raw(KVM_CAP_GET_MSR_FEATURES as u64), 1)?;
    let list = k("KVM_GET_MSR_FEATURE_INDEX_LIST", kvm.get_msr_feature_index_list())?;
    if list.as_slice().is_empty() {
        return Err("empty feature MSR list".into());
    }
    let mut m = msrs(&list.as_slice().iter().map(|&i| (i, 0)).collect::<Vec<_>>())?;
    let n = k("KVM_GET_MSRS on /dev/kvm", kvm.get_msrs(&mut m))?;
    expect_eq("feature MSRs read", n, list.as_slice().len())
}

/// KVM_CAP_EXT_EMUL_CPUID: KVM_GET_EMULATED_CPUID offers MOVBE (leaf 1
/// ECX[22]) and RDPID (leaf 7 ECX[22]), which KVM emulates.
fn ext_emul_cpuid() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_EXT_EMUL_CPUID", kvm.check_extension_raw(KVM_CAP_EXT_EMUL_CPUID as u64), 1)?;
    let c = k("KVM_GET_EMULATED_CPUID", kvm.get_emulated_cpuid(KVM_MAX_CPUID_ENTRIES))?;
    let e = c.as_slice();
    let has = |f: u32, ecx_bit: u32| e.iter().any(|x| x.function == f && x.index == 0 && x.ecx & (1 << ecx_bit) != 0);
    expect_eq("leaf 1 ECX.MOVBE emulated", has(1, 22), true)?;
    expect_eq("leaf 7 ECX.RDPID emulated", has(7, 22), true)
}

/// KVM_KVMCLOCK_CTRL: EINVAL without kvmclock; with it, the next entry
/// sets PVCLOCK_GUEST_STOPPED in the guest's time info.
fn kvmclock_ctrl() -> TestResult {
    let mut g = Guest::new(Mode::Long)?;
    expect_eq("KVM_CAP_KVMCLOCK_CTRL", check(&g.vm, KVM_CAP_KVMCLOCK_CTRL), 1)?;
    expect_errno("KVM_KVMCLOCK_CTRL without kvmclock", ioctl(&g.cpu.fd, KVMCLOCK_CTRL, 0), libc::EINVAL)?;
    let ti = SCRATCH + 0x40;
    wr_msr(&g.cpu, MSR_KVM_SYSTEM_TIME_NEW, ti | 1)?;
    g.cpu.expect_hlt()?;
    let flags = g.vm.mem.read(ti as usize + 29, 1)[0];
    expect_eq("time info flags before KVM_KVMCLOCK_CTRL", flags & PVCLOCK_GUEST_STOPPED, 0)?;
    ioctl(&g.cpu.fd, KVMCLOCK_CTRL, 0).map_err(|e| format!("KVM_KVMCLOCK_CTRL: errno {e}"))?;
    g.cpu.start("hlt_once")?;
    g.cpu.expect_hlt()?;
    let flags = g.vm.mem.read(ti as usize + 29, 1)[0];
    expect_eq("PVCLOCK_GUEST_STOPPED after KVM_KVMCLOCK_CTRL and a run", flags & PVCLOCK_GUEST_STOPPED, PVCLOCK_GUEST_STOPPED)
}

/// KVM_CAP_X2APIC_API: 15 on /dev/kvm and with a split irqchip, 11 with
/// the full one (no suppress-EOI-broadcast); ENABLE_CAP refuses unknown
/// flags, both EOI modes at once, and "enable" without a split irqchip.
fn x2apic_api_errnos() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_X2APIC_API on /dev/kvm", kvm.check_extension_raw(KVM_CAP_X2APIC_API as u64), 15)?;
    let vm = Vm::bare()?;
    expect_eq("KVM_CAP_X2APIC_API on a VM", check(&vm, KVM_CAP_X2APIC_API), 11)?;
    expect_errno("X2APIC_API(1 << 4)", enable_cap(&vm.fd, KVM_CAP_X2APIC_API, 1 << 4, 0), libc::EINVAL)?;
    expect_errno(
        "X2APIC_API(enable and disable suppress-EOI-broadcast)",
        enable_cap(&vm.fd, KVM_CAP_X2APIC_API, KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST | KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST, 0),
        libc::EINVAL,
    )?;
    expect_errno(
        "X2APIC_API(enable suppress-EOI-broadcast) without a split irqchip",
        enable_cap(&vm.fd, KVM_CAP_X2APIC_API, KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST, 0),
        libc::EINVAL,
    )?;
    enable_ok(&vm.fd, "X2APIC_API(disable suppress-EOI-broadcast)", KVM_CAP_X2APIC_API, KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST)?;
    enable_ok(&vm.fd, "X2APIC_API(32-bit IDs, no broadcast quirk)", KVM_CAP_X2APIC_API, 3)?;
    let split = Vm::bare()?;
    enable_ok(&split.fd, "SPLIT_IRQCHIP(24)", KVM_CAP_SPLIT_IRQCHIP, 24)?;
    expect_eq("KVM_CAP_X2APIC_API on a split-irqchip VM", check(&split, KVM_CAP_X2APIC_API), 15)?;
    enable_ok(&split.fd, "X2APIC_API(enable suppress-EOI-broadcast) with a split irqchip", KVM_CAP_X2APIC_API, KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST)
}

fn get_lapic_raw(cpu: &Cpu) -> Result<kvm_lapic_state, String> {
    let mut l = kvm_lapic_state::default();
    ioctl(&cpu.fd, GET_LAPIC, &mut l as *mut _ as u64).map_err(|e| format!("KVM_GET_LAPIC: errno {e}"))?;
    Ok(l)
}

fn lapic_reg(l: &kvm_lapic_state, off: usize) -> u32 {
    let b: Vec<u8> = l.regs[off..off + 4].iter().map(|&c| c as u8).collect();
    u32::from_le_bytes(b.try_into().unwrap_or([0; 4]))
}

/// In x2APIC mode KVM_GET_LAPIC reports the APIC ID as `id << 24`, or as
/// the 32-bit ID with KVM_X2APIC_API_USE_32BIT_IDS, which KVM_SET_LAPIC
/// then checks.
fn x2apic_api_ids() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
    let cpu = vm.vcpu(5)?;
    wr_msr(&cpu, MSR_IA32_APICBASE, APIC_BASE_EN_EXTD)?;
    let l = get_lapic_raw(&cpu)?;
    eq_hex("x2APIC ID in KVM_GET_LAPIC (legacy format)", lapic_reg(&l, APIC_ID), 5 << 24)?;
    enable_ok(&vm.fd, "X2APIC_API(USE_32BIT_IDS)", KVM_CAP_X2APIC_API, KVM_X2APIC_API_USE_32BIT_IDS as u64)?;
    let mut l = get_lapic_raw(&cpu)?;
    eq_hex("x2APIC ID in KVM_GET_LAPIC (32-bit format)", lapic_reg(&l, APIC_ID), 5)?;
    ioctl(&cpu.fd, SET_LAPIC, &l as *const _ as u64).map_err(|e| format!("KVM_SET_LAPIC (same state): errno {e}"))?;
    for (i, b) in 6u32.to_le_bytes().iter().enumerate() {
        l.regs[APIC_ID + i] = *b as _;
    }
    expect_errno("KVM_SET_LAPIC with another 32-bit ID", ioctl(&cpu.fd, SET_LAPIC, &l as *const _ as u64), libc::EINVAL)
}

/// Directed EOI (LAPIC version bit 24, with x2APIC in CPUID): not
/// offered with the in-kernel IOAPIC, offered with a split irqchip
/// (upstream's quirk) unless disabled, and when enabled.
fn x2apic_api_directed_eoi() -> TestResult {
    let lvr = |split: bool, flags: u64| -> Result<bool, String> {
        let vm = Vm::new(Mode::Long)?;
        if split {
            enable_ok(&vm.fd, "SPLIT_IRQCHIP(24)", KVM_CAP_SPLIT_IRQCHIP, 24)?;
        } else {
            k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
        }
        if flags != 0 {
            enable_ok(&vm.fd, "X2APIC_API", KVM_CAP_X2APIC_API, flags)?;
        }
        let cpu = vm.vcpu(0)?;
        Ok(lapic_reg(&get_lapic_raw(&cpu)?, APIC_LVR) & APIC_LVR_DIRECTED_EOI != 0)
    };
    expect_eq("directed EOI with the in-kernel IOAPIC", lvr(false, 0)?, false)?;
    expect_eq("directed EOI with a split irqchip", lvr(true, 0)?, true)?;
    expect_eq("directed EOI with a split irqchip, disabled", lvr(true, KVM_X2APIC_DISABLE_SUPPRESS_EOI_BROADCAST)?, false)?;
    expect_eq("directed EOI with a split irqchip, enabled", lvr(true, KVM_X2APIC_ENABLE_SUPPRESS_EOI_BROADCAST)?, true)
}

/// KVM_CAP_EXCEPTION_PAYLOAD: a pending #PF with a payload stays pending
/// (GET reports it with the payload) until injected; the guest's handler
/// then sees CR2 = payload.
fn exception_payload_pf() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hlt_once")?;
    expect_eq("KVM_CAP_EXCEPTION_PAYLOAD", check(&g.vm, KVM_CAP_EXCEPTION_PAYLOAD), 1)?;
    enable_ok(&g.vm.fd, "ENABLE_CAP(EXCEPTION_PAYLOAD)", KVM_CAP_EXCEPTION_PAYLOAD, 1)?;
    let mut e = get_events(&g.cpu)?;
    expect_eq("flags has KVM_VCPUEVENT_VALID_PAYLOAD", e.flags & KVM_VCPUEVENT_VALID_PAYLOAD, KVM_VCPUEVENT_VALID_PAYLOAD)?;
    e.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    e.exception.pending = 1;
    e.exception.injected = 0;
    e.exception.nr = 14;
    e.exception.has_error_code = 1;
    e.exception.error_code = 2;
    e.exception_has_payload = 1;
    e.exception_payload = 0xdead_b000;
    set_events(&g.cpu, &e).map_err(|e| format!("KVM_SET_VCPU_EVENTS(pending #PF): errno {e}"))?;
    let got = get_events(&g.cpu)?;
    expect_eq("exception.pending", got.exception.pending, 1)?;
    expect_eq("exception.injected", got.exception.injected, 0)?;
    expect_eq("exception.nr", got.exception.nr, 14)?;
    expect_eq("exception_has_payload", got.exception_has_payload, 1)?;
    eq_hex("exception_payload", got.exception_payload, 0xdead_b000)?;
    let sregs = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    eq_hex("CR2 before injection", sregs.cr2, 0)?;
    expect_exc(&mut g.cpu, 14)?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0xdead_b000))
}

/// A pending #DB's payload reaches DR6 when it is injected.
fn exception_payload_db() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hlt_once")?;
    install_gate(&g.vm, 1, "db_handler")?;
    enable_ok(&g.vm.fd, "ENABLE_CAP(EXCEPTION_PAYLOAD)", KVM_CAP_EXCEPTION_PAYLOAD, 1)?;
    let mut e = get_events(&g.cpu)?;
    e.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    e.exception.pending = 1;
    e.exception.nr = 1;
    e.exception_has_payload = 1;
    e.exception_payload = 1 << 1; // B1
    set_events(&g.cpu, &e).map_err(|e| format!("KVM_SET_VCPU_EVENTS(pending #DB): errno {e}"))?;
    expect_exc(&mut g.cpu, 1)?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0xffff_0ff2))
}

/// Without KVM_CAP_EXCEPTION_PAYLOAD: VALID_PAYLOAD is EINVAL, GET has no
/// VALID_PAYLOAD, and an injected exception reads back as injected.
fn exception_payload_off() -> TestResult {
    let g = Guest::at(Mode::Long, "hlt_once")?;
    let mut e = get_events(&g.cpu)?;
    expect_eq("flags & VALID_PAYLOAD", e.flags & KVM_VCPUEVENT_VALID_PAYLOAD, 0)?;
    e.flags = KVM_VCPUEVENT_VALID_PAYLOAD;
    e.exception.pending = 1;
    e.exception.nr = 14;
    expect_errno("KVM_SET_VCPU_EVENTS(VALID_PAYLOAD) without the cap", set_events(&g.cpu, &e), libc::EINVAL)?;
    let mut e = get_events(&g.cpu)?;
    e.flags = 0;
    e.exception.injected = 1;
    e.exception.nr = 13;
    e.exception.has_error_code = 1;
    e.exception.error_code = 0;
    set_events(&g.cpu, &e).map_err(|e| format!("KVM_SET_VCPU_EVENTS(injected #GP): errno {e}"))?;
    let got = get_events(&g.cpu)?;
    expect_eq("exception.injected", got.exception.injected, 1)?;
    expect_eq("exception.pending", got.exception.pending, 0)?;
    expect_eq("exception.nr", got.exception.nr, 13)
}

/// KVM_CAP_X86_TRIPLE_FAULT_EVENT: EINVAL before enabling; once enabled
/// GET reports it and a pending triple fault ends KVM_RUN with SHUTDOWN.
fn triple_fault_event() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hlt_once")?;
    expect_eq("KVM_CAP_X86_TRIPLE_FAULT_EVENT", check(&g.vm, KVM_CAP_X86_TRIPLE_FAULT_EVENT), 1)?;
    let mut e = get_events(&g.cpu)?;
    expect_eq("flags & VALID_TRIPLE_FAULT before enabling", e.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT, 0)?;
    e.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    e.triple_fault.pending = 1;
    expect_errno("KVM_SET_VCPU_EVENTS(triple fault) before enabling", set_events(&g.cpu, &e), libc::EINVAL)?;
    enable_ok(&g.vm.fd, "ENABLE_CAP(X86_TRIPLE_FAULT_EVENT)", KVM_CAP_X86_TRIPLE_FAULT_EVENT, 1)?;
    let mut e = get_events(&g.cpu)?;
    expect_eq("flags & VALID_TRIPLE_FAULT", e.flags & KVM_VCPUEVENT_VALID_TRIPLE_FAULT, KVM_VCPUEVENT_VALID_TRIPLE_FAULT)?;
    expect_eq("triple_fault.pending", e.triple_fault.pending, 0)?;
    e.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
    e.triple_fault.pending = 1;
    set_events(&g.cpu, &e).map_err(|e| format!("KVM_SET_VCPU_EVENTS(triple fault): errno {e}"))?;
    expect_eq("triple_fault.pending read back", get_events(&g.cpu)?.triple_fault.pending, 1)?;
    g.cpu.expect(Exit::Shutdown)?;
    expect_eq("triple_fault.pending after the exit", get_events(&g.cpu)?.triple_fault.pending, 0)
}

fn get_sregs2(cpu: &Cpu) -> Result<kvm_sregs2, String> {
    let mut s = kvm_sregs2::default();
    ioctl(&cpu.fd, GET_SREGS2, &mut s as *mut _ as u64).map_err(|e| format!("KVM_GET_SREGS2: errno {e}"))?;
    Ok(s)
}

/// KVM_GET/SET_SREGS2 under PAE paging: the PDPTEs are loaded from guest
/// memory at CR3 (flag PDPTRS_VALID) when paging changes (KVM_SET_SREGS
/// here), unless memory holds an invalid (reserved-bit) PDPTE, which keeps
/// the old ones; KVM_SET_SREGS2 sets them, and they stay through KVM_RUN.
/// PDPTRS_VALID outside PAE paging, or an unknown flag, is EINVAL.
fn sregs2() -> TestResult {
    let mut g = Guest::at(Mode::Prot32, "hlt_once")?;
    expect_eq("KVM_CAP_SREGS2", check(&g.vm, KVM_CAP_SREGS2), 1)?;
    let s = get_sregs2(&g.cpu)?;
    expect_eq("flags without PAE", s.flags, 0)?;
    // PAE: PDPT at SCRATCH + 0x100, PDPTE 0 -> a PD at SCRATCH + 0x1000
    // whose entry 0 maps the first 2 MiB.
    let (pdpt, pd) = (SCRATCH + 0x100, SCRATCH + 0x1000);
    let set_pdpt = |mem: &Mem, e: [u64; 4]| {
        for (i, v) in e.iter().enumerate() {
            mem.write_u64(pdpt as usize + 8 * i, *v);
        }
    };
    g.vm.mem.write_u64(pd as usize, 0x83);
    set_pdpt(&g.vm.mem, [pd | 1, 0, 0, 0]);
    let mut s = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    s.cr3 = pdpt;
    s.cr4 |= 1 << 5;
    k("KVM_SET_SREGS (PAE)", g.cpu.fd.set_sregs(&s))?;
    let s2 = get_sregs2(&g.cpu)?;
    expect_eq("flags under PAE", s2.flags, KVM_SREGS2_FLAGS_PDPTRS_VALID as u64)?;
    expect_eq("PDPTEs from memory", s2.pdptrs, [pd | 1, 0, 0, 0])?;
    eq_hex("CR3 in SREGS2", s2.cr3, pdpt)?;
    let mut set = s2;
    set.pdptrs = [pd | 1, 0x1001, 0, 0];
    ioctl(&g.cpu.fd, SET_SREGS2, &set as *const _ as u64).map_err(|e| format!("KVM_SET_SREGS2(PDPTRS_VALID): errno {e}"))?;
    expect_eq("PDPTEs set by KVM_SET_SREGS2", get_sregs2(&g.cpu)?.pdptrs, set.pdptrs)?;
    g.cpu.expect_hlt()?;
    expect_eq("PDPTEs set by KVM_SET_SREGS2, after KVM_RUN", get_sregs2(&g.cpu)?.pdptrs, set.pdptrs)?;
    // Bit 5 is reserved in a PDPTE: the load fails, the old ones stay.
    set_pdpt(&g.vm.mem, [pd | 1, 0x3021, 0, 0]);
    k("KVM_SET_SREGS (PAE, invalid PDPTE)", g.cpu.fd.set_sregs(&s))?;
    expect_eq("PDPTEs after an invalid load", get_sregs2(&g.cpu)?.pdptrs, set.pdptrs)?;
    set_pdpt(&g.vm.mem, [pd | 1, 0x2001, 0, 0]);
    k("KVM_SET_SREGS (PAE)", g.cpu.fd.set_sregs(&s))?;
    expect_eq("PDPTEs reloaded", get_sregs2(&g.cpu)?.pdptrs, [pd | 1, 0x2001, 0, 0])?;
    let mut bad = set;
    bad.flags = 2;
    expect_errno("KVM_SET_SREGS2(flags 2)", ioctl(&g.cpu.fd, SET_SREGS2, &bad as *const _ as u64), libc::EINVAL)?;
    let lg = Guest::new(Mode::Long)?;
    let mut l = get_sregs2(&lg.cpu)?;
    expect_eq("flags in long mode", l.flags, 0)?;
    l.flags = KVM_SREGS2_FLAGS_PDPTRS_VALID as u64;
    expect_errno("KVM_SET_SREGS2(PDPTRS_VALID) in long mode", ioctl(&lg.cpu.fd, SET_SREGS2, &l as *const _ as u64), libc::EINVAL)
}

/// The `kvm_run.msr` of the last exit: (reason, index, data).
fn msr_exit(cpu: &mut Cpu) -> (u32, u32, u64) {
    // SAFETY: read after a KVM_EXIT_X86_RDMSR/WRMSR, whose union member is
    // `msr` (plain integers).
    let m = unsafe { cpu.kvm_run().__bindgen_anon_1.msr };
    (m.reason, m.index, m.data)
}

fn answer_msr(cpu: &mut Cpu, error: u8, data: u64) {
    // SAFETY: as in `msr_exit`.
    unsafe {
        let m = &mut cpu.kvm_run().__bindgen_anon_1.msr;
        m.error = error;
        m.data = data;
    }
}

/// Runs and expects KVM_EXIT_X86_RDMSR (`write` false) or WRMSR with
/// `reason`, `index` and (for WRMSR) `data`.
fn expect_msr_exit(cpu: &mut Cpu, write: bool, reason: u32, index: u32, data: u64) -> TestResult {
    let want = if write { KVM_EXIT_X86_WRMSR } else { KVM_EXIT_X86_RDMSR };
    match cpu.run()? {
        Exit::Other(r) if r == want => {
            let (re, ix, d) = msr_exit(cpu);
            expect_eq("msr.reason", re, reason)?;
            eq_hex("msr.index", ix, index)?;
            if write {
                eq_hex("msr.data", d, data)?;
            }
            Ok(())
        }
        e => Err(format!("exit: got {e}, want exit reason {want} (MSR {index:#x})")),
    }
}

/// KVM_CAP_X86_USER_SPACE_MSR(UNKNOWN): RDMSR/WRMSR of an MSR KVM does
/// not know exit to userspace; userspace's data completes the RDMSR, its
/// error makes WRMSR raise #GP.
fn user_space_msr_unknown() -> TestResult {
    let mut g = Guest::at(Mode::Long, "msr_read")?;
    expect_eq("KVM_CAP_X86_USER_SPACE_MSR", check(&g.vm, KVM_CAP_X86_USER_SPACE_MSR), 1)?;
    expect_errno("USER_SPACE_MSR(1 << 3)", enable_cap(&g.vm.fd, KVM_CAP_X86_USER_SPACE_MSR, 1 << 3, 0), libc::EINVAL)?;
    enable_ok(&g.vm.fd, "USER_SPACE_MSR(UNKNOWN)", KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_UNKNOWN as u64)?;
    g.cpu.with_regs(|r| r.rcx = MSR_BOGUS)?;
    expect_msr_exit(&mut g.cpu, false, KVM_MSR_EXIT_REASON_UNKNOWN, MSR_BOGUS as u32, 0)?;
    answer_msr(&mut g.cpu, 0, 0x1122_3344_5566_7788);
    g.cpu.expect(Exit::out4(PORT_MSR, 0x5566_7788))?;
    g.cpu.expect(Exit::out4(PORT_MSR, 0x1122_3344))?;
    g.cpu.expect_hlt()?;
    g.cpu.start("msr_write")?;
    g.cpu.with_regs(|r| {
        r.rcx = MSR_BOGUS;
        r.rax = 0x9abc_def0;
        r.rdx = 0x1234_5678;
    })?;
    expect_msr_exit(&mut g.cpu, true, KVM_MSR_EXIT_REASON_UNKNOWN, MSR_BOGUS as u32, 0x1234_5678_9abc_def0)?;
    answer_msr(&mut g.cpu, 0, 0);
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x600d))?;
    g.cpu.expect_hlt()?;
    g.cpu.start("msr_write")?;
    g.cpu.with_regs(|r| {
        r.rcx = MSR_BOGUS;
        r.rax = 0;
        r.rdx = 0;
    })?;
    expect_msr_exit(&mut g.cpu, true, KVM_MSR_EXIT_REASON_UNKNOWN, MSR_BOGUS as u32, 0)?;
    answer_msr(&mut g.cpu, 1, 0);
    expect_exc(&mut g.cpu, 13)
}

/// KVM_MSR_EXIT_REASON_INVAL: an invalid write to a known MSR (a PAT
/// with a reserved memory type) exits with reason INVAL; without it, #GP.
fn user_space_msr_inval() -> TestResult {
    let mut g = Guest::at(Mode::Long, "msr_write")?;
    g.cpu.with_regs(|r| {
        r.rcx = MSR_IA32_CR_PAT as u64;
        r.rax = 0x0202_0202;
        r.rdx = 0;
    })?;
    expect_exc(&mut g.cpu, 13)?;
    g.cpu.expect_hlt()?;
    enable_ok(&g.vm.fd, "USER_SPACE_MSR(INVAL)", KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_INVAL as u64)?;
    g.cpu.start("msr_write")?;
    g.cpu.with_regs(|r| {
        r.rcx = MSR_IA32_CR_PAT as u64;
        r.rax = 0x0202_0202;
        r.rdx = 0;
    })?;
    expect_msr_exit(&mut g.cpu, true, KVM_MSR_EXIT_REASON_INVAL, MSR_IA32_CR_PAT, 0x0202_0202)?;
    answer_msr(&mut g.cpu, 0, 0);
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x600d))
}

/// A `kvm_msr_filter` with one range over `base` (`flags`, `bitmap`).
fn filter(default_deny: bool, ranges: &[(u32, u32, u32, &[u8])]) -> kvm_msr_filter {
    let mut f = kvm_msr_filter { flags: if default_deny { KVM_MSR_FILTER_DEFAULT_DENY } else { 0 }, ..Default::default() };
    for (i, &(flags, base, nmsrs, bitmap)) in ranges.iter().enumerate() {
        f.ranges[i] = kvm_msr_filter_range { flags, nmsrs, base, bitmap: bitmap.as_ptr() as *mut u8 };
    }
    f
}

fn set_filter(vm: &Vm, f: &kvm_msr_filter) -> Result<i64, i32> {
    ioctl(&vm.fd, SET_MSR_FILTER, f as *const _ as u64)
}

/// KVM_X86_SET_MSR_FILTER: a read of SYSENTER_CS denied by its range
/// raises #GP, or exits with reason FILTER once userspace asks for it;
/// writes are not covered by that range (allowed); an empty filter lifts
/// it.
fn msr_filter() -> TestResult {
    let mut g = Guest::at(Mode::Long, "msr_read")?;
    expect_eq("KVM_CAP_X86_MSR_FILTER", check(&g.vm, KVM_CAP_X86_MSR_FILTER), 1)?;
    let deny = [0u8; 8];
    let f = filter(false, &[(KVM_MSR_FILTER_READ, MSR_IA32_SYSENTER_CS, 1, &deny)]);
    set_filter(&g.vm, &f).map_err(|e| format!("KVM_X86_SET_MSR_FILTER: errno {e}"))?;
    g.cpu.with_regs(|r| r.rcx = MSR_IA32_SYSENTER_CS as u64)?;
    expect_exc(&mut g.cpu, 13)?;
    g.cpu.expect_hlt()?;
    g.cpu.start("msr_write")?;
    g.cpu.with_regs(|r| {
        r.rcx = MSR_IA32_SYSENTER_CS as u64;
        r.rax = 0x10;
        r.rdx = 0;
    })?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x600d))?;
    g.cpu.expect_hlt()?;
    enable_ok(&g.vm.fd, "USER_SPACE_MSR(FILTER)", KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER as u64)?;
    g.cpu.start("msr_read")?;
    g.cpu.with_regs(|r| r.rcx = MSR_IA32_SYSENTER_CS as u64)?;
    expect_msr_exit(&mut g.cpu, false, KVM_MSR_EXIT_REASON_FILTER, MSR_IA32_SYSENTER_CS, 0)?;
    answer_msr(&mut g.cpu, 0, 0x77);
    g.cpu.expect(Exit::out4(PORT_MSR, 0x77))?;
    g.cpu.expect(Exit::out4(PORT_MSR, 0))?;
    g.cpu.expect_hlt()?;
    // KVM_GET_MSRS is not filtered.
    eq_hex("KVM_GET_MSRS(SYSENTER_CS) under the filter", rd_msr(&g.cpu, MSR_IA32_SYSENTER_CS)?, 0x10)?;
    set_filter(&g.vm, &filter(false, &[])).map_err(|e| format!("KVM_X86_SET_MSR_FILTER(empty): errno {e}"))?;
    g.cpu.start("msr_read")?;
    g.cpu.with_regs(|r| r.rcx = MSR_IA32_SYSENTER_CS as u64)?;
    g.cpu.expect(Exit::out4(PORT_MSR, 0x10))
}

/// KVM_X86_SET_MSR_FILTER's checks: unknown filter or range flags, a
/// range without flags, a bitmap over KVM_MSR_FILTER_MAX_BITMAP_SIZE, and
/// "deny by default" without ranges are EINVAL.
fn msr_filter_errnos() -> TestResult {
    let vm = Vm::bare()?;
    let bits = vec![0u8; 0x800];
    let mut f = filter(false, &[]);
    f.flags = 2;
    expect_errno("filter flags 2", set_filter(&vm, &f), libc::EINVAL)?;
    expect_errno("deny by default, no ranges", set_filter(&vm, &filter(true, &[])), libc::EINVAL)?;
    expect_errno("range flags 0", set_filter(&vm, &filter(false, &[(0, 0, 8, &bits)])), libc::EINVAL)?;
    expect_errno("range flags 4", set_filter(&vm, &filter(false, &[(4, 0, 8, &bits)])), libc::EINVAL)?;
    expect_errno(
        "bitmap over 0x600 bytes",
        set_filter(&vm, &filter(false, &[(KVM_MSR_FILTER_READ, 0, 0x600 * 8 + 1, &bits)])),
        libc::EINVAL,
    )?;
    set_filter(&vm, &filter(false, &[(KVM_MSR_FILTER_READ, 0, 0x600 * 8, &bits)]))
        .map_err(|e| format!("bitmap of 0x600 bytes: errno {e}"))?;
    set_filter(&vm, &filter(true, &[(KVM_MSR_FILTER_WRITE, 0, 1, &bits)])).map_err(|e| format!("deny by default with a range: errno {e}"))?;
    set_filter(&vm, &filter(false, &[])).map(|_| ()).map_err(|e| format!("empty filter: errno {e}"))
}

/// KVM_CAP_HALT_POLL: a VM's own limit, any 32-bit value; flags or a
/// larger value are EINVAL.
fn halt_poll() -> TestResult {
    let vm = Vm::bare()?;
    expect_eq("KVM_CAP_HALT_POLL", check(&vm, KVM_CAP_HALT_POLL), 1)?;
    expect_errno("HALT_POLL(1 << 32)", enable_cap(&vm.fd, KVM_CAP_HALT_POLL, 1 << 32, 0), libc::EINVAL)?;
    expect_errno("HALT_POLL with flags", enable_cap(&vm.fd, KVM_CAP_HALT_POLL, 1000, 1), libc::EINVAL)?;
    enable_ok(&vm.fd, "HALT_POLL(0)", KVM_CAP_HALT_POLL, 0)?;
    enable_ok(&vm.fd, "HALT_POLL(u32::MAX)", KVM_CAP_HALT_POLL, u32::MAX as u64)?;
    // The limit applies to halts: a halted vCPU still wakes for an
    // interrupt.
    let mut g = Guest::at(Mode::Long, "hlt_once")?;
    enable_ok(&g.vm.fd, "HALT_POLL(0)", KVM_CAP_HALT_POLL, 0)?;
    g.cpu.expect_hlt()
}

/// KVM_CAP_PMU_CAPABILITY with enable_pmu=N: 0, and enabling is EINVAL.
fn pmu_capability() -> TestResult {
    let vm = Vm::bare()?;
    expect_eq("KVM_CAP_PMU_CAPABILITY", check(&vm, KVM_CAP_PMU_CAPABILITY), 0)?;
    expect_errno(
        "ENABLE_CAP(PMU_CAPABILITY, DISABLE)",
        enable_cap(&vm.fd, KVM_CAP_PMU_CAPABILITY, KVM_PMU_CAP_DISABLE as u64, 0),
        libc::EINVAL,
    )
}

fn attr(fd: &impl std::os::fd::AsRawFd, cmd: u64, group: u32, a: u64, val: &mut u64) -> Result<i64, i32> {
    let at = kvm_device_attr { flags: 0, group, attr: a, addr: val as *mut u64 as u64 };
    ioctl(fd, cmd, &at as *const _ as u64)
}

/// KVM_CAP_SYS_ATTRIBUTES: /dev/kvm has KVM_X86_XCOMP_GUEST_SUPP, the
/// XCR0 of KVM_GET_SUPPORTED_CPUID's leaf 0xd; nothing else (ENXIO).
fn sys_attributes() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_SYS_ATTRIBUTES", kvm.check_extension_raw(KVM_CAP_SYS_ATTRIBUTES as u64), 1)?;
    let mut v = 0u64;
    attr(&kvm, HAS_DEVICE_ATTR, 0, KVM_X86_XCOMP_GUEST_SUPP as u64, &mut v).map_err(|e| format!("KVM_HAS_DEVICE_ATTR: errno {e}"))?;
    attr(&kvm, GET_DEVICE_ATTR, 0, KVM_X86_XCOMP_GUEST_SUPP as u64, &mut v).map_err(|e| format!("KVM_GET_DEVICE_ATTR: errno {e}"))?;
    let c = k("KVM_GET_SUPPORTED_CPUID", kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES))?;
    let d = c.as_slice().iter().find(|e| e.function == 0xd && e.index == 0).ok_or("no leaf 0xd")?;
    eq_hex("XCOMP_GUEST_SUPP", v, u64::from(d.eax) | u64::from(d.edx) << 32)?;
    expect_errno("KVM_HAS_DEVICE_ATTR(group 0, attr 1)", attr(&kvm, HAS_DEVICE_ATTR, 0, 1, &mut v), libc::ENXIO)?;
    expect_errno("KVM_GET_DEVICE_ATTR(group 1, attr 0)", attr(&kvm, GET_DEVICE_ATTR, 1, 0, &mut v), libc::ENXIO)?;
    expect_errno("KVM_SET_DEVICE_ATTR on /dev/kvm", attr(&kvm, SET_DEVICE_ATTR, 0, 0, &mut v), libc::EINVAL)
}

/// KVM_CAP_VCPU_ATTRIBUTES: a vCPU's KVM_VCPU_TSC_OFFSET reads and sets
/// the guest TSC's offset; other attributes are ENXIO.
fn vcpu_attributes() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    expect_eq("KVM_CAP_VCPU_ATTRIBUTES", check(&g.vm, KVM_CAP_VCPU_ATTRIBUTES), 1)?;
    let (grp, off) = (KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET as u64);
    let mut v = 0u64;
    attr(&g.cpu.fd, HAS_DEVICE_ATTR, grp, off, &mut v).map_err(|e| format!("KVM_HAS_DEVICE_ATTR(TSC_OFFSET): errno {e}"))?;
    expect_errno("KVM_HAS_DEVICE_ATTR(group 1)", attr(&g.cpu.fd, HAS_DEVICE_ATTR, 1, 0, &mut v), libc::ENXIO)?;
    expect_errno("KVM_GET_DEVICE_ATTR(attr 1)", attr(&g.cpu.fd, GET_DEVICE_ATTR, grp, 1, &mut v), libc::ENXIO)?;
    let mut want = 1u64 << 50;
    attr(&g.cpu.fd, SET_DEVICE_ATTR, grp, off, &mut want).map_err(|e| format!("KVM_SET_DEVICE_ATTR(TSC_OFFSET): errno {e}"))?;
    attr(&g.cpu.fd, GET_DEVICE_ATTR, grp, off, &mut v).map_err(|e| format!("KVM_GET_DEVICE_ATTR(TSC_OFFSET): errno {e}"))?;
    // Exact where the host's TSC is stable; where it is not (as under TCG),
    // upstream's vcpu_load recomputes the offset from the last guest TSC
    // (kvm_arch_vcpu_load), a little below what was set.
    if v.abs_diff(want) > 1 << 32 {
        return Err(format!("TSC offset read back: got {v:#x}, want {want:#x}"));
    }
    // SAFETY: RDTSC has no preconditions.
    let host = unsafe { core::arch::x86_64::_rdtsc() };
    let tsc = rd_msr(&g.cpu, MSR_IA32_TSC)?;
    let d = tsc.wrapping_sub(host.wrapping_add(want));
    if d > 1 << 36 {
        return Err(format!("guest TSC {tsc:#x} is not host TSC {host:#x} + offset {want:#x}"));
    }
    Ok(())
}

/// KVM_CAP_X86_DISABLE_EXITS: unknown bits (APERFMPERF is not offered
/// here) and enabling after the first vCPU are EINVAL; with HLT in the
/// guest, KVM_SET_CPUID2 drops KVM_FEATURE_PV_UNHALT.
fn disable_exits() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    let allowed = check(&vm, KVM_CAP_X86_DISABLE_EXITS) as u64;
    expect_eq("KVM_CAP_X86_DISABLE_EXITS has HLT and PAUSE", allowed & 6, 6)?;
    expect_errno("DISABLE_EXITS(1 << 5)", enable_cap(&vm.fd, KVM_CAP_X86_DISABLE_EXITS, 1 << 5, 0), libc::EINVAL)?;
    enable_ok(&vm.fd, "DISABLE_EXITS(allowed)", KVM_CAP_X86_DISABLE_EXITS, allowed)?;
    let mut cpuid = vm.supported_cpuid()?;
    for e in cpuid.as_mut_slice().iter_mut().filter(|e| e.function == 0x4000_0001) {
        e.eax |= KVM_FEATURE_PV_UNHALT;
    }
    let cpu = vm.vcpu_with_cpuid(0, &cpuid)?;
    let got = k("KVM_GET_CPUID2", cpu.fd.get_cpuid2(KVM_MAX_CPUID_ENTRIES))?;
    let pv = got.as_slice().iter().find(|e| e.function == 0x4000_0001).map(|e| e.eax).ok_or("no leaf 0x40000001")?;
    expect_eq("KVM_FEATURE_PV_UNHALT with HLT in the guest", pv & KVM_FEATURE_PV_UNHALT, 0)?;
    expect_errno(
        "DISABLE_EXITS(HLT) after KVM_CREATE_VCPU",
        enable_cap(&vm.fd, KVM_CAP_X86_DISABLE_EXITS, KVM_X86_DISABLE_EXITS_HLT as u64, 0),
        libc::EINVAL,
    )
}

/// With HLT exits disabled, HLT does not exit to userspace (no in-kernel
/// irqchip): the guest halts until a host interrupt, then goes on.
fn disable_exits_hlt() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    enable_ok(&vm.fd, "DISABLE_EXITS(HLT)", KVM_CAP_X86_DISABLE_EXITS, KVM_X86_DISABLE_EXITS_HLT as u64)?;
    let mut cpu = vm.vcpu(0)?;
    cpu.start("hlt_echo")?;
    cpu.expect(Exit::out4(PORT_ECHO, 0x5a5a))
}

/// KVM_CAP_VM_TYPES: only the default type; KVM_CREATE_VM of another is
/// EINVAL.
fn vm_types() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_VM_TYPES", kvm.check_extension_raw(KVM_CAP_VM_TYPES as u64), 1)?;
    expect_errno("KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM)", ioctl(&kvm, CREATE_VM, 1), libc::EINVAL)?;
    let fd = ioctl(&kvm, CREATE_VM, 0).map_err(|e| format!("KVM_CREATE_VM(0): errno {e}"))?;
    // SAFETY: a fd we own.
    unsafe { libc::close(fd as i32) };
    Ok(())
}

/// KVM_CAP_MSR_PLATFORM_INFO: the guest reads MSR_PLATFORM_INFO (CPUID
/// faulting offered) until userspace disables that; guest writes #GP.
fn msr_platform_info() -> TestResult {
    let mut g = Guest::at(Mode::Long, "msr_read")?;
    expect_eq("KVM_CAP_MSR_PLATFORM_INFO", check(&g.vm, KVM_CAP_MSR_PLATFORM_INFO), 1)?;
    g.cpu.with_regs(|r| r.rcx = MSR_PLATFORM_INFO as u64)?;
    g.cpu.expect(Exit::out4(PORT_MSR, 0x8000_0000))?;
    g.cpu.expect(Exit::out4(PORT_MSR, 0))?;
    g.cpu.expect_hlt()?;
    g.cpu.start("msr_write")?;
    g.cpu.with_regs(|r| {
        r.rcx = MSR_PLATFORM_INFO as u64;
        r.rax = 0;
        r.rdx = 0;
    })?;
    expect_exc(&mut g.cpu, 13)?;
    g.cpu.expect_hlt()?;
    enable_ok(&g.vm.fd, "ENABLE_CAP(MSR_PLATFORM_INFO, 0)", KVM_CAP_MSR_PLATFORM_INFO, 0)?;
    g.cpu.start("msr_read")?;
    g.cpu.with_regs(|r| r.rcx = MSR_PLATFORM_INFO as u64)?;
    expect_exc(&mut g.cpu, 13)?;
    eq_hex("KVM_GET_MSRS(PLATFORM_INFO)", rd_msr(&g.cpu, MSR_PLATFORM_INFO)?, 0x8000_0000)?;
    // A feature MSR only takes its current value once the vCPU has run.
    wr_msr(&g.cpu, MSR_PLATFORM_INFO, 0x8000_0000)?;
    let n = k("KVM_SET_MSRS", g.cpu.fd.set_msrs(&msrs(&[(MSR_PLATFORM_INFO, 0)])?))?;
    expect_eq("KVM_SET_MSRS(PLATFORM_INFO, 0) after KVM_RUN count", n, 0)?;
    let fresh = Guest::new(Mode::Long)?;
    wr_msr(&fresh.cpu, MSR_PLATFORM_INFO, 0)?;
    eq_hex("PLATFORM_INFO set before KVM_RUN", rd_msr(&fresh.cpu, MSR_PLATFORM_INFO)?, 0)
}

/// KVM_CAP_EXIT_ON_EMULATION_FAILURE: answered 1; the enable takes 0 or
/// 1 (EINVAL otherwise); enabled, an instruction the emulator cannot
/// handle (FSTPS to MMIO) exits with the emulation internal error and no
/// #UD is queued: userspace skips it and the guest runs on to its HLT.
fn exit_on_emulation_failure() -> TestResult {
    const FSTPS: [u8; 6] = [0xd9, 0x9b, 0x00, 0x03, 0x00, 0x00];
    let mut g = Guest::at(Mode::Long, "emul_fail_x87")?;
    expect_eq("KVM_CAP_EXIT_ON_EMULATION_FAILURE", check(&g.vm, KVM_CAP_EXIT_ON_EMULATION_FAILURE), 1)?;
    expect_errno("ENABLE_CAP(EXIT_ON_EMULATION_FAILURE, 2)", enable_cap(&g.vm.fd, KVM_CAP_EXIT_ON_EMULATION_FAILURE, 2, 0), libc::EINVAL)?;
    enable_ok(&g.vm.fd, "ENABLE_CAP(EXIT_ON_EMULATION_FAILURE, 1)", KVM_CAP_EXIT_ON_EMULATION_FAILURE, 1)?;
    let e = g.cpu.run()?;
    super::emulation::check_emulation_failure(&e, &FSTPS, MMIO_ADDR + 0x300)?;
    let at = g.sym("emul_fail_x87_insn")?;
    eq_hex("rip at the failing instruction", g.cpu.regs()?.rip, at)?;
    g.cpu.with_regs(|r| r.rip = at + FSTPS.len() as u64)?;
    g.cpu.expect_hlt()
}

/// KVM_CAP_SYNC_REGS: answered REGS|SREGS|EVENTS; an unknown bit in
/// kvm_valid_regs or kvm_dirty_regs fails KVM_RUN with EINVAL; a dirty
/// set is loaded before the guest runs (then no longer dirty), and the
/// valid sets are stored on every return as KVM_GET_REGS/SREGS/
/// VCPU_EVENTS report them; invalid dirty sregs (long mode without
/// CR4.PAE) fail KVM_RUN with EINVAL and stay dirty.
fn sync_regs() -> TestResult {
    const ALL: u64 = (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS) as u64;
    const RBX: u64 = 0x5eed_1234;
    let mut g = Guest::at(Mode::Long, "regs_echo")?;
    expect_eq("KVM_CAP_SYNC_REGS", check(&g.vm, KVM_CAP_SYNC_REGS), ALL as i32)?;
    for (what, valid, dirty) in [("kvm_valid_regs", ALL | 1 << 31, 0), ("kvm_dirty_regs", ALL, 1 << 31)] {
        let run = g.cpu.kvm_run();
        run.kvm_valid_regs = valid;
        run.kvm_dirty_regs = dirty;
        let r = g.cpu.run_errno()?.map(|_| 0);
        expect_errno(&format!("KVM_RUN with an unknown bit in {what}"), r, libc::EINVAL)?;
    }
    // RBX through s.regs.regs (the rest as KVM_GET_REGS has it).
    let mut regs = k("KVM_GET_REGS", g.cpu.fd.get_regs())?;
    regs.rbx = RBX;
    let run = g.cpu.kvm_run();
    run.s.regs.regs = regs;
    run.kvm_valid_regs = ALL;
    run.kvm_dirty_regs = KVM_SYNC_X86_REGS as u64;
    g.cpu.expect(Exit::out4(PORT_ECHO, regs.rax as u32))?;
    expect_eq("kvm_dirty_regs after KVM_RUN", g.cpu.kvm_run().kvm_dirty_regs, 0)?;
    g.cpu.expect(Exit::out4(PORT_ECHO, RBX as u32))?;
    // SAFETY (the union reads): kvm_run's `s` is plain old data.
    let (sr, ss, se) = unsafe {
        let s = &g.cpu.kvm_run().s.regs;
        (s.regs, s.sregs, s.events)
    };
    let r = k("KVM_GET_REGS", g.cpu.fd.get_regs())?;
    expect_eq("s.regs.regs (rip, rbx, rax, rflags)", (sr.rip, sr.rbx, sr.rax, sr.rflags), (r.rip, r.rbx, r.rax, r.rflags))?;
    let s = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    expect_eq("s.regs.sregs (cr0, cr3, cr4, efer, cs.selector)", (ss.cr0, ss.cr3, ss.cr4, ss.efer, ss.cs.selector), (s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector))?;
    let e = k("KVM_GET_VCPU_EVENTS", g.cpu.fd.get_vcpu_events())?;
    expect_eq("s.regs.events.flags", se.flags, e.flags)?;
    // Long mode without CR4.PAE: refused, the set stays dirty.
    let mut bad = ss;
    bad.cr4 &= !(1 << 5);
    let run = g.cpu.kvm_run();
    run.s.regs.sregs = bad;
    run.kvm_dirty_regs = KVM_SYNC_X86_SREGS as u64;
    let r = g.cpu.run_errno()?.map(|_| 0);
    expect_errno("KVM_RUN with dirty sregs: EFER.LMA without CR4.PAE", r, libc::EINVAL)?;
    expect_eq("kvm_dirty_regs after the refused load", g.cpu.kvm_run().kvm_dirty_regs, KVM_SYNC_X86_SREGS as u64)?;
    let run = g.cpu.kvm_run();
    run.s.regs.sregs = ss;
    run.kvm_valid_regs = 0;
    g.cpu.expect(Exit::out4(PORT_ECHO, regs.rcx as u32))?;
    expect_eq("kvm_dirty_regs after the good load", g.cpu.kvm_run().kvm_dirty_regs, 0)
}

/// KVM_CAP_ENFORCE_PV_FEATURE_CPUID (a vCPU capability): flags must be
/// 0; enforced, a guest RDMSR of MSR_KVM_SYSTEM_TIME_NEW is #GP when the
/// guest's KVM leaf 0x40000001 lacks KVM_FEATURE_CLOCKSOURCE2 (userspace
/// still reads it), and reads as usual when the leaf has it or nothing
/// is enforced.
fn enforce_pv_feature_cpuid() -> TestResult {
    const CLOCKSOURCE2: u32 = 1 << 3;
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_ENFORCE_PV_FEATURE_CPUID", kvm.check_extension_raw(KVM_CAP_ENFORCE_PV_FEATURE_CPUID as u64), 1)?;
    let vm = Vm::new(Mode::Long)?;
    let full = vm.supported_cpuid()?;
    expect_eq(
        "KVM_FEATURE_CLOCKSOURCE2 in the supported KVM leaf",
        full.as_slice().iter().any(|e| e.function == 0x4000_0001 && e.eax & CLOCKSOURCE2 != 0),
        true,
    )?;
    let mut cleared = full.clone();
    for e in cleared.as_mut_slice().iter_mut().filter(|e| e.function == 0x4000_0001) {
        e.eax = 0;
    }
    // (vCPU id, its table, enforce, a #GP expected)
    for (id, cpuid, enforce, gp) in [(0, &cleared, true, true), (1, &full, true, false), (2, &cleared, false, false)] {
        let mut cpu = vm.vcpu_with_cpuid(id, cpuid)?;
        if id == 0 {
            expect_errno("vCPU ENABLE_CAP(ENFORCE_PV_FEATURE_CPUID) with flags 1", enable_cap(&cpu.fd, KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1, 1), libc::EINVAL)?;
        }
        if enforce {
            enable_ok(&cpu.fd, "vCPU ENABLE_CAP(ENFORCE_PV_FEATURE_CPUID, 1)", KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1)?;
        }
        cpu.start("msr_read")?;
        cpu.with_regs(|r| r.rcx = MSR_KVM_SYSTEM_TIME_NEW as u64)?;
        if gp {
            expect_exc(&mut cpu, 13)?;
            eq_hex("KVM_GET_MSRS(SYSTEM_TIME_NEW) by userspace", rd_msr(&cpu, MSR_KVM_SYSTEM_TIME_NEW)?, 0)?;
        } else {
            cpu.expect(Exit::out4(PORT_MSR, 0))?;
            cpu.expect(Exit::out4(PORT_MSR, 0))?;
        }
        cpu.expect_hlt().map_err(|e| format!("vCPU {id}: {e}"))?;
    }
    Ok(())
}

/// KVM_X86_QUIRK_FIX_HYPERCALL_INSN: KVM_CAP_DISABLE_QUIRKS2 offers it;
/// on (the default), the other vendor's hypercall instruction is
/// replaced in guest memory by the native one, which then makes the
/// hypercall (KVM_HC_SCHED_YIELD: 0); disabled, it is a #UD and the
/// bytes stay. DISABLE_QUIRKS2 of an unknown quirk is EINVAL.
fn fix_hypercall_quirk() -> TestResult {
    const VMCALL: [u8; 3] = [0x0f, 0x01, 0xc1];
    const VMMCALL: [u8; 3] = [0x0f, 0x01, 0xd9];
    let (native, other) = match crate::vendor::Vendor::host() {
        crate::vendor::Vendor::Intel => (VMCALL, VMMCALL),
        _ => (VMMCALL, VMCALL),
    };
    let word = |b: [u8; 3]| u32::from_le_bytes([b[0], b[1], b[2], 0]);
    for disable in [false, true] {
        let mut g = Guest::new(Mode::Long)?;
        let q = check(&g.vm, KVM_CAP_DISABLE_QUIRKS2) as u64;
        expect_eq("KVM_CAP_DISABLE_QUIRKS2 has FIX_HYPERCALL_INSN", q & KVM_X86_QUIRK_FIX_HYPERCALL_INSN as u64, KVM_X86_QUIRK_FIX_HYPERCALL_INSN as u64)?;
        expect_errno("DISABLE_QUIRKS2(1 << 63)", enable_cap(&g.vm.fd, KVM_CAP_DISABLE_QUIRKS2, 1 << 63, 0), libc::EINVAL)?;
        if disable {
            enable_ok(&g.vm.fd, "DISABLE_QUIRKS2(FIX_HYPERCALL_INSN)", KVM_CAP_DISABLE_QUIRKS2, KVM_X86_QUIRK_FIX_HYPERCALL_INSN as u64)?;
        }
        let at = g.sym("fix_hypercall_insn")?;
        g.vm.mem.write(at as usize, &other);
        g.cpu.start("fix_hypercall")?;
        if disable {
            expect_exc(&mut g.cpu, 6)?;
            expect_eq("the instruction bytes with the quirk disabled", g.vm.mem.read(at as usize, 3), other.to_vec())?;
        } else {
            g.cpu.expect(Exit::out4(PORT_ECHO, 0))?;
            let got = g.cpu.out4_value(PORT_ECHO)? & 0xff_ffff;
            eq_hex("the instruction bytes after the hypercall", got as u64, word(native) as u64)?;
        }
        g.cpu.expect_hlt()?;
    }
    Ok(())
}

/// KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS and MISC_ENABLE_NO_MWAIT
/// (upstream's monitor_mwait_test): MONITOR/MWAIT are NOPs unless the
/// first quirk is off and the guest has no MWAIT, then #UD; with the
/// second quirk off, "has MWAIT" is MISC_ENABLE.MWAIT, which CPUID.1:
/// ECX.MWAIT then follows. Needs MONITOR/MWAIT in the host CPU.
fn mwait_quirks() -> TestResult {
    const MWAIT: u32 = 1 << 3;
    const MISC_ENABLE: u32 = 0x1a0;
    const MISC_ENABLE_MWAIT: u64 = 1 << 18;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").map_err(|e| format!("/proc/cpuinfo: {e}"))?;
    if !cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "monitor")) {
        return skip("the host CPU has no MONITOR/MWAIT");
    }
    let quirks = (KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS | KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT) as u64;
    let guest_mwait = |cpu: &Cpu| -> Result<bool, String> {
        let c = k("KVM_GET_CPUID2", cpu.fd.get_cpuid2(KVM_MAX_CPUID_ENTRIES))?;
        Ok(c.as_slice().iter().any(|e| e.function == 1 && e.ecx & MWAIT != 0))
    };
    // (quirks disabled, guest CPUID MWAIT, #UD expected)
    for (disabled, cpuid_mwait, ud) in [
        (0, false, false),
        (KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS as u64, false, true),
        (KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS as u64, true, false),
        (quirks, true, true),
    ] {
        let what = format!("quirks {disabled:#x} off, CPUID.MWAIT {cpuid_mwait}");
        let vm = Vm::new(Mode::Long)?;
        expect_eq("KVM_CAP_DISABLE_QUIRKS2 has both MWAIT quirks", check(&vm, KVM_CAP_DISABLE_QUIRKS2) as u64 & quirks, quirks)?;
        if disabled != 0 {
            enable_ok(&vm.fd, "DISABLE_QUIRKS2", KVM_CAP_DISABLE_QUIRKS2, disabled)?;
        }
        let mut cpuid = vm.supported_cpuid()?;
        for e in cpuid.as_mut_slice().iter_mut().filter(|e| e.function == 1) {
            e.ecx = if cpuid_mwait { e.ecx | MWAIT } else { e.ecx & !MWAIT };
        }
        let mut cpu = vm.vcpu_with_cpuid(0, &cpuid)?;
        if disabled & KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT as u64 != 0 {
            // MISC_ENABLE.MWAIT is 0: the guest's CPUID follows it.
            expect_eq(&format!("{what}: CPUID.MWAIT with MISC_ENABLE.MWAIT clear"), guest_mwait(&cpu)?, false)?;
        }
        cpu.start("monitor_mwait")?;
        if ud {
            expect_exc(&mut cpu, 6).map_err(|e| format!("{what}: {e}"))?;
        } else {
            cpu.expect(Exit::out4(PORT_ECHO, 1)).map_err(|e| format!("{what}: {e}"))?;
            cpu.expect(Exit::out4(PORT_ECHO, 2)).map_err(|e| format!("{what}: {e}"))?;
        }
        cpu.expect_hlt()?;
        if disabled & KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT as u64 != 0 {
            let misc = rd_msr(&cpu, MISC_ENABLE)?;
            wr_msr(&cpu, MISC_ENABLE, misc | MISC_ENABLE_MWAIT)?;
            expect_eq(&format!("{what}: CPUID.MWAIT with MISC_ENABLE.MWAIT set"), guest_mwait(&cpu)?, true)?;
            cpu.start("monitor_mwait")?;
            cpu.expect(Exit::out4(PORT_ECHO, 1)).map_err(|e| format!("{what}, MISC_ENABLE.MWAIT: {e}"))?;
            cpu.expect(Exit::out4(PORT_ECHO, 2))?;
            cpu.expect_hlt()?;
        }
    }
    Ok(())
}

/// kvm_run.flags is 0 after an exit (no SMM, no guest mode), even if
/// userspace left junk there (KVM_CAP_X86_GUEST_MODE).
fn run_flags() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hlt_once")?;
    expect_eq("KVM_CAP_X86_GUEST_MODE", check(&g.vm, KVM_CAP_X86_GUEST_MODE), 1)?;
    g.cpu.kvm_run().flags = 0xffff;
    g.cpu.expect_hlt()?;
    expect_eq("kvm_run.flags", g.cpu.kvm_run().flags, 0)
}

fn set_lapic_reg(l: &mut kvm_lapic_state, off: usize, v: u32) {
    for (i, b) in v.to_le_bytes().iter().enumerate() {
        l.regs[off + i] = *b as _;
    }
}

/// KVM_CAP_X86_APIC_BUS_CYCLES_NS: 1 by default; the enable needs an
/// in-kernel LAPIC (ENXIO), no vCPU yet and a usable value (EINVAL); the
/// LAPIC timer then counts that much slower.
fn apic_bus_cycles() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    expect_eq("KVM_CAP_X86_APIC_BUS_CYCLES_NS", kvm.check_extension_raw(KVM_CAP_X86_APIC_BUS_CYCLES_NS as u64), 1)?;
    let vm = Vm::bare()?;
    expect_errno("APIC_BUS_CYCLES_NS without an irqchip", enable_cap(&vm.fd, KVM_CAP_X86_APIC_BUS_CYCLES_NS, 2, 0), libc::ENXIO)?;
    // Counts elapsed on a one-shot timer with a full count, divide by 1,
    // masked, over `ms`.
    let elapsed = |bus: u64| -> Result<u64, String> {
        let vm = Vm::new(Mode::Long)?;
        k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
        expect_errno("APIC_BUS_CYCLES_NS(0)", enable_cap(&vm.fd, KVM_CAP_X86_APIC_BUS_CYCLES_NS, 0, 0), libc::EINVAL)?;
        expect_errno("APIC_BUS_CYCLES_NS(u64::MAX)", enable_cap(&vm.fd, KVM_CAP_X86_APIC_BUS_CYCLES_NS, u64::MAX, 0), libc::EINVAL)?;
        enable_ok(&vm.fd, "APIC_BUS_CYCLES_NS", KVM_CAP_X86_APIC_BUS_CYCLES_NS, bus)?;
        expect_eq("KVM_CAP_X86_APIC_BUS_CYCLES_NS on the VM", check(&vm, KVM_CAP_X86_APIC_BUS_CYCLES_NS) as u64, bus)?;
        let cpu = vm.vcpu(0)?;
        expect_errno(
            "APIC_BUS_CYCLES_NS after KVM_CREATE_VCPU",
            enable_cap(&vm.fd, KVM_CAP_X86_APIC_BUS_CYCLES_NS, bus, 0),
            libc::EINVAL,
        )?;
        let mut l = get_lapic_raw(&cpu)?;
        set_lapic_reg(&mut l, 0xf0, 0x1ff); // SVR: software-enabled
        set_lapic_reg(&mut l, 0x320, 0x1_0040); // LVTT: one-shot, masked
        set_lapic_reg(&mut l, 0x3e0, 0xb); // divide by 1
        set_lapic_reg(&mut l, 0x380, u32::MAX); // TMICT
        // KVM_SET_LAPIC restarts a one-shot timer from TMCCT (upstream's
        // __start_apic_timer(apic, APIC_TMCCT)): 0 there would expire it.
        set_lapic_reg(&mut l, 0x390, u32::MAX); // TMCCT
        ioctl(&cpu.fd, SET_LAPIC, &l as *const _ as u64).map_err(|e| format!("KVM_SET_LAPIC: errno {e}"))?;
        let t0 = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let cur = lapic_reg(&get_lapic_raw(&cpu)?, 0x390);
        let ns = t0.elapsed().as_nanos() as u64;
        // Counts per microsecond.
        Ok((u64::from(u32::MAX - cur) * 1000).checked_div(ns).unwrap_or(0))
    };
    let (fast, slow) = (elapsed(1)?, elapsed(4)?);
    if fast == 0 || !(2..=8).contains(&(fast / slow.max(1))) {
        return Err(format!("LAPIC timer counts per us: {fast} with a 1 ns bus cycle, {slow} with 4 ns (want about 4 times fewer)"));
    }
    Ok(())
}

/// What upstream's selftests use at start: KVM_GET_TSC_KHZ on the VM fd
/// (the rate of vCPUs created later, the host's by default; KVM_SET_TSC_KHZ
/// on the VM is EINVAL once a vCPU exists), KVM_SET_NR_MMU_PAGES (EINVAL
/// below 64), and an eventfd serves one irqfd of one VM (EBUSY for a
/// second VM).
fn vm_level_ioctls() -> TestResult {
    const GET_TSC_KHZ: u64 = io(KVMIO, 0xa3);
    const SET_TSC_KHZ: u64 = io(KVMIO, 0xa2);
    const SET_NR_MMU_PAGES: u64 = io(KVMIO, 0x44);
    let vm = Vm::new(Mode::Long)?;
    let khz = ioctl(&vm.fd, GET_TSC_KHZ, 0).map_err(|e| format!("KVM_GET_TSC_KHZ on the VM: errno {e}"))?;
    if khz <= 0 {
        return Err(format!("KVM_GET_TSC_KHZ on the VM: {khz}"));
    }
    ioctl(&vm.fd, SET_TSC_KHZ, 0).map_err(|e| format!("KVM_SET_TSC_KHZ(0) on the VM: errno {e}"))?;
    expect_errno("KVM_SET_NR_MMU_PAGES(63)", ioctl(&vm.fd, SET_NR_MMU_PAGES, 63), libc::EINVAL)?;
    ioctl(&vm.fd, SET_NR_MMU_PAGES, 64).map_err(|e| format!("KVM_SET_NR_MMU_PAGES(64): errno {e}"))?;
    k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
    let cpu = vm.vcpu(0)?;
    let vkhz = k("KVM_GET_TSC_KHZ (vCPU)", cpu.fd.get_tsc_khz())? as i64;
    expect_eq("vCPU TSC kHz == the VM's", vkhz, khz)?;
    expect_errno("KVM_SET_TSC_KHZ on the VM after KVM_CREATE_VCPU", ioctl(&vm.fd, SET_TSC_KHZ, 0), libc::EINVAL)?;
    let vm2 = Vm::new(Mode::Long)?;
    k("KVM_CREATE_IRQCHIP (second VM)", vm2.fd.create_irq_chip())?;
    let ev = super::irqchip::EventFd::new()?;
    super::irqchip::irqfd(&vm.fd, ev.fd(), 10, 0, 0).map_err(|e| format!("KVM_IRQFD: errno {e}"))?;
    expect_errno("KVM_IRQFD, same eventfd, second VM", super::irqchip::irqfd(&vm2.fd, ev.fd(), 12, 0, 0), libc::EBUSY)
}
