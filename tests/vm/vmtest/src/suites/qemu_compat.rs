//! What QEMU relies on at startup and migration, beyond the basics: every
//! MSR that KVM_GET_MSR_INDEX_LIST names can be saved and restored (QEMU
//! aborts when KVM_SET_MSRS sets fewer than it asked), KVM_SET_VAPIC_ADDR
//! (QEMU's TPR-patching option ROM), KVM_X86_SETUP_MCE, kvmclock, one TSC
//! for all vCPUs and KVM_SET_BOOT_CPU_ID.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::irqchip::{interrupt_me_after, nr, route_irqchip, route_msi, set_routing, IrqVm};
use crate::report::expect_eq;
use crate::sys::{errno_name, expect_errno, ioctl};
use kvm_bindings::*;
use std::time::Duration;

const SET_VAPIC_ADDR: u64 = 0x4008_ae93; // _IOW(KVMIO, 0x93, struct kvm_vapic_addr)
const X86_SETUP_MCE: u64 = 0x4008_ae9c; // _IOW(KVMIO, 0x9c, __u64)
const X86_GET_MCE_CAP_SUPPORTED: u64 = 0x8008_ae9d; // _IOR(KVMIO, 0x9d, __u64)
const MSR_IA32_MCG_CAP: u32 = 0x179;
const MSR_IA32_MCG_CTL: u32 = 0x17b;
const MSR_IA32_MC0_CTL: u32 = 0x400;
const MCG_CTL_P: u64 = 1 << 8;
const SET_BOOT_CPU_ID: u64 = 0xae78; // _IO(KVMIO, 0x78)
const MSR_IA32_TSC: u32 = 0x10;
const MSR_KVM_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;

pub fn tests() -> Vec<Test> {
    vec![
        test("qemu/msr-index-list-save-restore", msr_save_restore),
        test("qemu/vapic-addr-tpr-sync", vapic),
        test("qemu/setup-mce", setup_mce),
        test("qemu/kvmclock-time-info-and-wall-clock", kvmclock),
        test("qemu/tsc-one-clock-for-all-vcpus", tsc_sync),
        test("qemu/set-boot-cpu-id", boot_cpu_id),
        test("qemu/split-irqchip-errnos-msi-and-eoi-exit", split_msi_eoi),
        test("qemu/split-irqchip-extint-via-kvm-interrupt-and-window", split_extint),
    ]
}

fn msrs(list: &[(u32, u64)]) -> Result<Msrs, String> {
    let e: Vec<kvm_msr_entry> =
        list.iter().map(|&(index, data)| kvm_msr_entry { index, data, ..Default::default() }).collect();
    Msrs::from_entries(&e).map_err(|e| format!("Msrs: {e:?}"))
}

/// With an in-kernel irqchip and the supported CPUID set (as QEMU does),
/// each listed MSR reads and takes back the value read: KVM_GET/SET_MSRS
/// both return 1.
fn msr_save_restore() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    let vm = &iv.vm;
    let cpu = vm.vcpu_with_cpuid(0, &vm.supported_cpuid()?)?;
    let list = k("KVM_GET_MSR_INDEX_LIST", vm.kvm.get_msr_index_list())?;
    let mut bad = Vec::new();
    for &i in list.as_slice() {
        let mut m = msrs(&[(i, 0)])?;
        match cpu.fd.get_msrs(&mut m) {
            Ok(1) => {}
            r => {
                bad.push(format!("{i:#x}: KVM_GET_MSRS {r:?}"));
                continue;
            }
        }
        let v = m.as_slice()[0].data;
        match cpu.fd.set_msrs(&msrs(&[(i, v)])?) {
            Ok(1) => {}
            r => bad.push(format!("{i:#x}: KVM_SET_MSRS({v:#x}) {r:?}")),
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {} listed MSRs do not round-trip: {}", bad.len(), list.as_slice().len(), bad.join("; ")))
    }
}

fn set_vapic(cpu: &Cpu, gpa: u64) -> Result<i64, i32> {
    let a = kvm_vapic_addr { vapic_addr: gpa };
    ioctl(&cpu.fd, SET_VAPIC_ADDR, &a as *const _ as u64)
}

fn tpr(cpu: &Cpu) -> Result<u32, String> {
    let s = k("KVM_GET_LAPIC", cpu.fd.get_lapic())?;
    Ok(u32::from_le_bytes([s.regs[0x80] as u8, s.regs[0x81] as u8, s.regs[0x82] as u8, s.regs[0x83] as u8]))
}

/// Without an in-kernel LAPIC: EINVAL.  With one: an address outside
/// guest RAM is EINVAL too (upstream's hva cache setup fails); at a RAM
/// address, with the LAPIC enabled, the guest reads TPR in the VAPIC
/// word's low byte, and its store of a new TPR there reaches the
/// LAPIC at the next exit; address 0 turns it off.
fn vapic() -> TestResult {
    let plain = Guest::new(Mode::Long)?;
    expect_errno("KVM_SET_VAPIC_ADDR without an irqchip", set_vapic(&plain.cpu, SCRATCH), libc::EINVAL)?;
    drop(plain);

    let iv = IrqVm::new(true, false)?;
    let mut c = iv.vcpu(0)?;
    expect_errno("KVM_SET_VAPIC_ADDR outside guest RAM", set_vapic(&c, 0x4000_0000), libc::EINVAL)?;
    set_vapic(&c, SCRATCH).map_err(|e| format!("KVM_SET_VAPIC_ADDR({SCRATCH:#x}): {}", errno_name(e)))?;
    let mut s = k("KVM_GET_LAPIC", c.fd.get_lapic())?;
    s.regs[0x80] = 0x30;
    s.regs[0xf1] |= 1; // SVR: software-enabled (upstream syncs only then)
    k("KVM_SET_LAPIC(TPR 0x30, SVR enabled)", c.fd.set_lapic(&s))?;
    iv.vm.mem.write_u32(SCRATCH as usize, 0xdead_beef);
    c.start("mem_read")?;
    c.with_regs(|r| r.rsi = SCRATCH)?;
    let word = c.out4_value(PORT_ECHO)?;
    eq_hex("VAPIC word the guest read (TPR 0x30, nothing in ISR/IRR)", word, 0x30)?;

    // mem_write stores EAX there and halts (IF = 0: KVM_RUN sleeps until
    // the signal).
    c.start("mem_write")?;
    c.with_regs(|r| {
        r.rdi = SCRATCH;
        r.rax = 0x50;
    })?;
    let kick = interrupt_me_after(Duration::from_millis(200));
    let r = c.run_errno();
    let _ = kick.join();
    match r? {
        Err(libc::EINTR) => {}
        other => return Err(format!("KVM_RUN of mem_write: {other:?}, want EINTR")),
    }
    eq_hex("TPR after the guest wrote 0x50 to the VAPIC word", tpr(&c)?, 0x50)?;
    set_vapic(&c, 0).map_err(|e| format!("KVM_SET_VAPIC_ADDR(0): {}", errno_name(e)))?;
    Ok(())
}

/// KVM_X86_GET_MCE_CAP_SUPPORTED offers MCG_CTL_P; KVM_X86_SETUP_MCE
/// takes 1..=32 banks and supported bits only; MCG_CAP reads back what
/// was set, MCG_CTL and each bank's CTL start all-ones, and a bank past
/// the configured count is not an MSR.
fn setup_mce() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let mut sup = 0u64;
    ioctl(&g.vm.kvm, X86_GET_MCE_CAP_SUPPORTED, &mut sup as *mut u64 as u64)
        .map_err(|e| format!("KVM_X86_GET_MCE_CAP_SUPPORTED: {}", errno_name(e)))?;
    if sup & MCG_CTL_P == 0 {
        return Err(format!("supported MCG_CAP {sup:#x} lacks MCG_CTL_P"));
    }
    let setup = |cap: u64| ioctl(&g.cpu.fd, X86_SETUP_MCE, &cap as *const u64 as u64);
    expect_errno("KVM_X86_SETUP_MCE(0 banks)", setup(MCG_CTL_P), libc::EINVAL)?;
    expect_errno("KVM_X86_SETUP_MCE(33 banks)", setup(MCG_CTL_P | 33), libc::EINVAL)?;
    expect_errno("KVM_X86_SETUP_MCE(unsupported bit 63)", setup(1 << 63 | 4), libc::EINVAL)?;
    let cap = MCG_CTL_P | 10;
    setup(cap).map_err(|e| format!("KVM_X86_SETUP_MCE({cap:#x}): {}", errno_name(e)))?;
    let idx = [MSR_IA32_MCG_CAP, MSR_IA32_MCG_CTL, MSR_IA32_MC0_CTL, MSR_IA32_MC0_CTL + 4 * 9];
    let mut m = msrs(&idx.map(|i| (i, 0)))?;
    expect_eq("KVM_GET_MSRS(MCE) count", k("KVM_GET_MSRS", g.cpu.fd.get_msrs(&mut m))?, idx.len())?;
    let got: Vec<u64> = m.as_slice().iter().map(|e| e.data).collect();
    expect_eq("MCG_CAP, MCG_CTL, MC0_CTL, MC9_CTL", got, vec![cap, u64::MAX, u64::MAX, u64::MAX])?;
    let mut past = msrs(&[(MSR_IA32_MC0_CTL + 4 * 10, 0)])?;
    expect_eq("KVM_GET_MSRS(MC10_CTL) with 10 banks", k("KVM_GET_MSRS", g.cpu.fd.get_msrs(&mut past))?, 0)
}

fn rd_msr(cpu: &Cpu, index: u32) -> Result<u64, String> {
    let mut m = msrs(&[(index, 0)])?;
    expect_eq(&format!("KVM_GET_MSRS({index:#x}) count"), k("KVM_GET_MSRS", cpu.fd.get_msrs(&mut m))?, 1)?;
    Ok(m.as_slice()[0].data)
}

fn wr_msr(cpu: &Cpu, index: u32, v: u64) -> TestResult {
    expect_eq(&format!("KVM_SET_MSRS({index:#x}, {v:#x}) count"), k("KVM_SET_MSRS", cpu.fd.set_msrs(&msrs(&[(index, v)])?))?, 1)
}

/// What a guest computes from a pvclock_vcpu_time_info at guest TSC `tsc`.
fn pvclock_ns(ti: &[u8], tsc: u64) -> u64 {
    let u64_at = |o: usize| u64::from_le_bytes(ti[o..o + 8].try_into().unwrap_or([0; 8]));
    let (ts, sys) = (u64_at(8), u64_at(16));
    let mul = u32::from_le_bytes(ti[24..28].try_into().unwrap_or([0; 4]));
    let shift = ti[28] as i8;
    let mut d = tsc.wrapping_sub(ts);
    d = if shift < 0 { d >> -shift } else { d << shift };
    sys.wrapping_add(((u128::from(d) * u128::from(mul)) >> 32) as u64)
}

/// CPUID 0x40000001 offers kvmclock (CLOCKSOURCE2). Enabling
/// MSR_KVM_SYSTEM_TIME_NEW at a RAM address makes the next entry write the
/// time info: an even, nonzero version, and a (TSC, ns) pair from which
/// the guest's time at the current guest TSC lies between two
/// KVM_GET_CLOCK reads around it.  MSR_KVM_WALL_CLOCK_NEW writes the wall
/// time at which kvmclock read 0: that plus KVM_GET_CLOCK is now.
fn kvmclock() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let cpuid = g.vm.supported_cpuid()?;
    let pv = cpuid.as_slice().iter().find(|e| e.function == 0x4000_0001).map(|e| e.eax).unwrap_or(0);
    if pv & KVM_FEATURE_CLOCKSOURCE2 == 0 {
        return Err(format!("CPUID 0x40000001 EAX {pv:#x} lacks KVM_FEATURE_CLOCKSOURCE2"));
    }
    let mut g = g;
    let ti_gpa = SCRATCH + 0x40;
    let wc_gpa = SCRATCH + 0x80;
    wr_msr(&g.cpu, MSR_KVM_SYSTEM_TIME_NEW, ti_gpa | 1)?;
    eq_hex("MSR_KVM_SYSTEM_TIME_NEW read back", rd_msr(&g.cpu, MSR_KVM_SYSTEM_TIME_NEW)?, ti_gpa | 1)?;
    g.cpu.start("mem_read")?;
    g.cpu.with_regs(|r| r.rsi = ti_gpa)?;
    let version = g.cpu.out4_value(PORT_ECHO)?;
    if version == 0 || version & 1 != 0 {
        return Err(format!("time info version seen by the guest: {version} (want even, nonzero)"));
    }
    let ti = g.vm.mem.read(ti_gpa as usize, 32);
    let c1 = k("KVM_GET_CLOCK", g.vm.fd.get_clock())?.clock;
    let tsc = rd_msr(&g.cpu, MSR_IA32_TSC)?;
    let c2 = k("KVM_GET_CLOCK", g.vm.fd.get_clock())?.clock;
    let t = pvclock_ns(&ti, tsc);
    // Generous slack: the structure is a snapshot, and TCG is slow.
    let slack = 20_000_000;
    if t + slack < c1 || t > c2 + slack {
        return Err(format!("guest kvmclock {t} ns at TSC {tsc:#x}, KVM_GET_CLOCK {c1}..{c2} (time info {ti:02x?})"));
    }

    wr_msr(&g.cpu, MSR_KVM_WALL_CLOCK_NEW, wc_gpa)?;
    let wc = g.vm.mem.read(wc_gpa as usize, 12);
    let u32_at = |o: usize| u32::from_le_bytes(wc[o..o + 4].try_into().unwrap_or([0; 4]));
    let (ver, sec, nsec) = (u32_at(0), u32_at(4), u32_at(8));
    if ver == 0 || ver & 1 != 0 || nsec >= 1_000_000_000 {
        return Err(format!("wall clock version {ver}, nsec {nsec}"));
    }
    let boot = u64::from(sec) * 1_000_000_000 + u64::from(nsec);
    let clock = k("KVM_GET_CLOCK", g.vm.fd.get_clock())?.clock;
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_nanos() as u64;
    let err = (boot + clock).abs_diff(real);
    if err > 1_000_000_000 {
        return Err(format!("wall clock {boot} + kvmclock {clock} is {err} ns away from now ({real})"));
    }
    Ok(())
}

/// vCPUs created at different times read the same TSC, and so they do
/// after userspace writes 0 to each some time apart (QEMU's reset); a
/// far-off value starts a new clock.
fn tsc_sync() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    let a = vm.vcpu(0)?;
    std::thread::sleep(Duration::from_millis(20));
    let b = vm.vcpu(1)?;
    let khz = k("KVM_GET_TSC_KHZ", a.fd.get_tsc_khz())? as u64;
    // Reading both takes some time; 5 ms of cycles is plenty.
    let close = khz * 5;
    let pair = || -> Result<u64, String> {
        let ta = rd_msr(&a, MSR_IA32_TSC)?;
        let tb = rd_msr(&b, MSR_IA32_TSC)?;
        Ok(tb.wrapping_sub(ta))
    };
    let d = pair()?;
    if d > close {
        return Err(format!("vCPU 1 TSC - vCPU 0 TSC after creation 20 ms apart: {d} cycles (> {close})"));
    }
    wr_msr(&a, MSR_IA32_TSC, 0)?;
    std::thread::sleep(Duration::from_millis(20));
    wr_msr(&b, MSR_IA32_TSC, 0)?;
    let d = pair()?;
    if d > close {
        return Err(format!("after writing 0 to each, 20 ms apart: vCPU 1 - vCPU 0 = {d} cycles (> {close})"));
    }
    wr_msr(&a, MSR_IA32_TSC, 1 << 50)?;
    let t = rd_msr(&a, MSR_IA32_TSC)?;
    if !(1u64 << 50..(1 << 50) + khz * 1000).contains(&t) {
        return Err(format!("TSC after writing 1 << 50: {t:#x}"));
    }
    Ok(())
}

/// KVM_SET_BOOT_CPU_ID before any vCPU: vCPU 1 becomes the BSP
/// (RUNNABLE, APIC_BASE.BSP) and vCPU 0 waits for INIT/SIPI; an id past
/// the vCPU id limit is EINVAL; with a vCPU, EBUSY.
fn boot_cpu_id() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    let set = |id: u64| ioctl(&iv.vm.fd, SET_BOOT_CPU_ID, id);
    expect_errno("KVM_SET_BOOT_CPU_ID(1 << 20)", set(1 << 20), libc::EINVAL)?;
    set(1).map_err(|e| format!("KVM_SET_BOOT_CPU_ID(1): {}", errno_name(e)))?;
    let c0 = iv.vcpu(0)?;
    let c1 = iv.vcpu(1)?;
    expect_eq("vCPU 0 mp_state", super::irqchip::mp_state(&c0)?, KVM_MP_STATE_UNINITIALIZED)?;
    expect_eq("vCPU 1 mp_state", super::irqchip::mp_state(&c1)?, KVM_MP_STATE_RUNNABLE)?;
    let bsp = 1 << 8;
    eq_hex("vCPU 1 APIC_BASE.BSP", rd_msr(&c1, 0x1b)? & bsp, bsp)?;
    eq_hex("vCPU 0 APIC_BASE.BSP", rd_msr(&c0, 0x1b)? & bsp, 0)?;
    expect_errno("KVM_SET_BOOT_CPU_ID with vCPUs", set(0), libc::EBUSY)
}

const KVM_EXIT_IOAPIC_EOI: u32 = 26;
const INTERRUPT: u64 = 0x4004_ae86; // _IOW(KVMIO, 0x86, struct kvm_interrupt)
const PIC_PORTS: [u16; 4] = [0x20, 0x21, 0xa0, 0xa1];

/// A VM laid out for guests/irq.inc with KVM_CAP_SPLIT_IRQCHIP (24 pins).
fn split_vm() -> Result<IrqVm, String> {
    let iv = IrqVm::new(false, false)?;
    let mut cap = kvm_enable_cap { cap: KVM_CAP_SPLIT_IRQCHIP, ..Default::default() };
    cap.args[0] = 24;
    k("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP, 24)", iv.vm.fd.enable_cap(&cap))?;
    Ok(iv)
}

/// Runs until an OUT to `port`; OUTs to the (userspace) PIC are skipped.
fn run_to_port(c: &mut Cpu, port: u16) -> TestResult {
    loop {
        match c.run()? {
            Exit::Io { out: true, port: p, .. } if p == port => return Ok(()),
            Exit::Io { out: true, port: p, .. } if PIC_PORTS.contains(&p) => {}
            e => return Err(format!("exit: got {e}, want an out to port {port:#x} (rip {})", c.rip())),
        }
    }
}

/// KVM_CAP_SPLIT_IRQCHIP: the cap reads 1; enabling again, or
/// KVM_CREATE_IRQCHIP after it, is EEXIST; no in-kernel PIT (ENOENT),
/// PIC or IOAPIC (KVM_GET_IRQCHIP ENXIO), irqchip routes (EINVAL) or
/// resampling irqfds (EINVAL); APs wait for INIT. A level-triggered MSI
/// route of a reserved GSI raised with KVM_IRQ_LINE reaches the guest,
/// and its LAPIC EOI exits with KVM_EXIT_IOAPIC_EOI and the vector (for
/// userspace's IOAPIC); an edge MSI's EOI does not.
fn split_msi_eoi() -> TestResult {
    let iv = split_vm()?;
    let vm = &iv.vm;
    expect_eq("KVM_CHECK_EXTENSION(KVM_CAP_SPLIT_IRQCHIP)", vm.fd.check_extension_int(kvm_ioctls::Cap::SplitIrqchip), 1)?;
    let mut cap = kvm_enable_cap { cap: KVM_CAP_SPLIT_IRQCHIP, ..Default::default() };
    cap.args[0] = 24;
    expect_errno("KVM_CAP_SPLIT_IRQCHIP again", ioctl(&vm.fd, 0x4068_aea3, &cap as *const _ as u64), libc::EEXIST)?;
    expect_errno("KVM_CREATE_IRQCHIP after it", ioctl(&vm.fd, nr::CREATE_IRQCHIP, 0), libc::EEXIST)?;
    let pit = kvm_pit_config::default();
    expect_errno("KVM_CREATE_PIT2", ioctl(&vm.fd, nr::CREATE_PIT2, &pit as *const _ as u64), libc::ENOENT)?;
    let mut chip = kvm_irqchip { chip_id: KVM_IRQCHIP_IOAPIC, ..Default::default() };
    expect_errno("KVM_GET_IRQCHIP(IOAPIC)", ioctl(&vm.fd, nr::GET_IRQCHIP, &mut chip as *mut _ as u64), libc::ENXIO)?;
    expect_errno(
        "KVM_SET_GSI_ROUTING with an IOAPIC route",
        set_routing(&vm.fd, &[route_irqchip(5, KVM_IRQCHIP_IOAPIC, 5)], None, 0),
        libc::EINVAL,
    )?;
    let efd = super::irqchip::EventFd::new()?;
    let rfd = super::irqchip::EventFd::new()?;
    expect_errno(
        "KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE",
        super::irqchip::irqfd(&vm.fd, efd.fd(), 5, KVM_IRQFD_FLAG_RESAMPLE, rfd.fd()),
        libc::EINVAL,
    )?;
    let level = route_msi(5, 0, VEC_LEVEL as u32 | 1 << 15);
    let edge = route_msi(6, 0, VEC_EDGE as u32);
    set_routing(&vm.fd, &[level, edge], None, 0).map_err(|e| format!("KVM_SET_GSI_ROUTING(MSI): {}", errno_name(e)))?;
    let mut c = iv.vcpu(0)?;
    let ap = iv.vcpu(1)?;
    expect_eq("vCPU 1 mp_state", super::irqchip::mp_state(&ap)?, KVM_MP_STATE_UNINITIALIZED)?;
    iv.set_eoi(VEC_LEVEL, EOI_LAPIC);
    iv.set_eoi(VEC_EDGE, EOI_LAPIC);

    // The edge MSI first: delivered, EOI'd in the kernel without an exit.
    c.start("irq_ready_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_EDGE;
        r.rcx = 1;
    })?;
    run_to_port(&mut c, PORT_READY)?;
    k("KVM_IRQ_LINE(6, 1)", vm.fd.set_irq_line(6, true))?;
    super::irqchip::expect_echo(&mut c, "edge MSI interrupts", 1)?;
    run_to_port(&mut c, PORT_DONE)?;

    c.start("irq_ready_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_LEVEL;
        r.rcx = 1;
    })?;
    run_to_port(&mut c, PORT_READY)?;
    k("KVM_IRQ_LINE(5, 1)", vm.fd.set_irq_line(5, true))?;
    match c.run()? {
        Exit::Other(KVM_EXIT_IOAPIC_EOI) => {}
        e => return Err(format!("after the level MSI: got {e}, want KVM_EXIT_IOAPIC_EOI")),
    }
    // SAFETY: the kernel filled the eoi member for this exit.
    let v = unsafe { c.kvm_run().__bindgen_anon_1.eoi.vector };
    eq_hex("kvm_run.eoi.vector", u64::from(v), VEC_LEVEL)?;
    super::irqchip::expect_echo(&mut c, "level MSI interrupts", 1)?;
    run_to_port(&mut c, PORT_DONE)?;
    expect_eq("other vectors (vector, count)", iv.others(&[VEC_LEVEL, VEC_EDGE]), vec![])
}

fn kvm_interrupt(c: &Cpu, vector: u32) -> Result<i64, i32> {
    let i = kvm_interrupt { irq: vector };
    ioctl(&c.fd, INTERRUPT, &i as *const _ as u64)
}

/// Split irqchip, the userspace PIC's path (QEMU's): with LINT0 in ExtINT
/// mode and IF = 0, request_interrupt_window makes KVM_RUN come back with
/// KVM_EXIT_IRQ_WINDOW_OPEN once the guest can take an interrupt, with
/// ready_for_interrupt_injection set; KVM_INTERRUPT queues the vector (a
/// second one while it waits is EEXIST), and the guest takes it.
fn split_extint() -> TestResult {
    const VEC: u64 = 0x23;
    let iv = split_vm()?;
    let mut c = iv.vcpu(0)?;
    iv.set_eoi(VEC, 0);
    c.start("pic_ready_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC;
        r.rcx = 1;
        r.rdx = 0xfffe;
    })?;
    run_to_port(&mut c, PORT_READY)?;
    c.kvm_run().request_interrupt_window = 1;
    match c.run()? {
        Exit::IrqWindowOpen => {}
        e => return Err(format!("with request_interrupt_window: got {e}, want KVM_EXIT_IRQ_WINDOW_OPEN")),
    }
    expect_eq("ready_for_interrupt_injection", c.kvm_run().ready_for_interrupt_injection, 1)?;
    expect_eq("if_flag", c.kvm_run().if_flag, 1)?;
    c.kvm_run().request_interrupt_window = 0;
    kvm_interrupt(&c, VEC as u32).map_err(|e| format!("KVM_INTERRUPT: {}", errno_name(e)))?;
    expect_errno("KVM_INTERRUPT while one waits", kvm_interrupt(&c, VEC as u32), libc::EEXIST)?;
    super::irqchip::expect_echo(&mut c, "ExtINT interrupts", 1)?;
    run_to_port(&mut c, PORT_DONE)?;
    expect_eq("other vectors (vector, count)", iv.others(&[VEC]), vec![])
}
