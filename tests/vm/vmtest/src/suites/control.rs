//! Controlling a running vCPU from userspace: signals and immediate_exit,
//! KVM_SET_SIGNAL_MASK, single-stepping, and injecting interrupts and NMIs
//! with a userspace irqchip.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::kvmsys;
use crate::report::expect_eq;
use crate::sys::{errno_name, expect_errno, ioctl};
use kvm_bindings::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn tests() -> Vec<Test> {
    vec![
        test("run/signal-interrupts-busy-guest", signal_eintr),
        test("run/watchdog-ends-spinning-guest", watchdog),
        test("run/immediate-exit", immediate_exit),
        test("run/immediate-exit-completes-pio-in", immediate_exit_completes_in),
        test("run/signal-mask-unblocks-during-run", signal_mask),
        test("run/single-step/real", || single_step(Mode::Real)),
        test("run/single-step/long", || single_step(Mode::Long)),
        test("run/interrupt-injection/real", || interrupt(Mode::Real)),
        test("run/interrupt-injection/long", || interrupt(Mode::Long)),
        test("run/interrupt-vector-range", interrupt_range),
        test("run/nmi/real", || nmi(Mode::Real)),
        test("run/nmi/long", || nmi(Mode::Long)),
        test("run/migrate-between-exits", migrate_between_exits),
        test("run/fpu-survives-preemption-and-migration", fpu_spin),
        test("run/hypercall-exit-to-userspace", hypercall_user),
        test("run/hypercall-unknown-enosys", hypercall_unknown),
    ]
}

/// Sends SIGUSR2 to `tid` every 50 ms until dropped.
struct Pester {
    stop: Arc<AtomicBool>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl Pester {
    fn start(delay: Duration) -> Pester {
        // SAFETY: pthread_self has no preconditions.
        let tid = unsafe { libc::pthread_self() };
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(delay);
            while !s.load(Ordering::Relaxed) {
                // SAFETY: the target thread joins us (in drop) before it
                // can exit, so `tid` stays valid.
                unsafe { libc::pthread_kill(tid, libc::SIGUSR2) };
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Pester { stop, h: Some(h) }
    }
}

impl Drop for Pester {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.h.take() {
            let _ = h.join();
        }
    }
}

fn expect_eintr(r: Result<Exit, i32>) -> TestResult {
    match r {
        Err(libc::EINTR) => Ok(()),
        Err(e) => Err(format!("KVM_RUN: got {}, want EINTR", errno_name(e))),
        Ok(e) => Err(format!("KVM_RUN: got exit {e}, want EINTR")),
    }
}

/// A guest spinning without exits is interrupted by a signal: KVM_RUN
/// fails with EINTR, exit_reason is KVM_EXIT_INTR, and the guest did run.
fn signal_eintr() -> TestResult {
    let mut g = Guest::at(Mode::Long, "spin")?;
    let spin = g.sym("spin")?;
    let r = {
        let _p = Pester::start(Duration::from_millis(100));
        g.cpu.run_errno()?
    };
    expect_eintr(r)?;
    expect_eq("kvm_run.exit_reason", g.cpu.kvm_run().exit_reason, KVM_EXIT_INTR)?;
    let count = g.vm.mem.read_u32(SCRATCH as usize);
    if count == 0 {
        return Err("the guest's counter is 0: it never ran".into());
    }
    let rip = g.cpu.regs()?.rip;
    if !(spin..spin + 16).contains(&rip) {
        return Err(format!("rip {rip:#x} outside the spin loop at {spin:#x}"));
    }
    Ok(())
}

/// The suite's own safety net: a guest spinning without exits past the
/// run's deadline is ended by the watchdog (SIGUSR1 -> EINTR) and reported
/// as a timeout instead of hanging the suite.
fn watchdog() -> TestResult {
    let mut g = Guest::at(Mode::Long, "spin")?;
    g.cpu.timeout = Duration::from_millis(300);
    let t0 = std::time::Instant::now();
    let r = g.cpu.run_errno();
    let took = t0.elapsed();
    match r {
        Err(e) if e.contains("did not return within") => {
            super::harness::forgive_run_timeout();
            if took > Duration::from_secs(5) {
                return Err(format!("the watchdog needed {took:?} for a 300 ms deadline"));
            }
            Ok(())
        }
        Err(e) => Err(e),
        Ok(Ok(e)) => Err(format!("KVM_RUN returned exit {e}, want the watchdog's timeout")),
        Ok(Err(e)) => Err(format!("KVM_RUN returned {}, want the watchdog's timeout", errno_name(e))),
    }
}

/// With kvm_run.immediate_exit set, KVM_RUN returns EINTR without entering
/// the guest; cleared, the guest runs again.
fn immediate_exit() -> TestResult {
    let mut g = Guest::at(Mode::Long, "spin")?;
    let spin = g.sym("spin")?;
    g.cpu.kvm_run().immediate_exit = 1;
    let r = g.cpu.run_errno()?;
    g.cpu.kvm_run().immediate_exit = 0;
    expect_eintr(r)?;
    expect_eq("guest counter (must not have run)", g.vm.mem.read_u32(SCRATCH as usize), 0)?;
    eq_hex("rip", g.cpu.regs()?.rip, spin)?;
    // And a normal run afterwards still works.
    g.cpu.start("hlt_once")?;
    g.cpu.expect_hlt()
}

/// The documented use of immediate_exit: after an IN exit, a KVM_RUN with
/// immediate_exit = 1 completes the IN (EAX gets the data, RIP moves on)
/// and returns EINTR without running further.
fn immediate_exit_completes_in() -> TestResult {
    let mut g = Guest::at(Mode::Long, "pio_in")?;
    g.cpu.expect_in(PORT_IN, 1, 1, &[0xa5])?;
    g.cpu.kvm_run().immediate_exit = 1;
    let r = g.cpu.run_errno()?;
    g.cpu.kvm_run().immediate_exit = 0;
    expect_eintr(r)?;
    // The exit reason stays the IN's, as upstream (which leaves kvm_run
    // alone on this path).
    expect_eq("exit_reason after the EINTR", g.cpu.kvm_run().exit_reason, KVM_EXIT_IO)?;
    eq_hex("rax after the completed IN", g.cpu.regs()?.rax, 0x1122_33a5)?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x1122_33a5))
}

/// SIGUSR2 is blocked in the thread but KVM_SET_SIGNAL_MASK gives KVM_RUN
/// an empty mask: the pending signal interrupts KVM_RUN and is still
/// pending (blocked again) afterwards.  A mask length other than 8 is
/// EINVAL.
fn signal_mask() -> TestResult {
    let mut g = Guest::at(Mode::Long, "spin")?;
    expect_errno("KVM_SET_SIGNAL_MASK(len 4)", kvmsys::set_signal_mask(&g.cpu.fd, Some(0), 4), libc::EINVAL)?;
    crate::report::ctx(
        "KVM_SET_SIGNAL_MASK(empty, len 8)",
        kvmsys::set_signal_mask(&g.cpu.fd, Some(0), 8).map_err(errno_name),
    )?;
    // SAFETY: plain signal-mask manipulation of this thread.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR2);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::pthread_kill(libc::pthread_self(), libc::SIGUSR2);
    }
    let r = g.cpu.run_errno();
    // SAFETY: as above; sigtimedwait with a zero timeout consumes the
    // pending SIGUSR2 if there is one.
    let pending = unsafe {
        let mut p: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut p);
        let pending = libc::sigismember(&p, libc::SIGUSR2) == 1;
        let ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        libc::sigtimedwait(&set, std::ptr::null_mut(), &ts);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        pending
    };
    expect_eintr(r?)?;
    expect_eq("SIGUSR2 still pending after KVM_RUN", pending, true)?;
    // NULL restores "no mask change": nothing pending, so a short run
    // to HLT works.
    crate::report::ctx("KVM_SET_SIGNAL_MASK(NULL)", kvmsys::set_signal_mask(&g.cpu.fd, None, 0).map_err(errno_name))?;
    g.cpu.start("hlt_once")?;
    g.cpu.expect_hlt()
}

/// KVM_SET_GUEST_DEBUG single-step: one KVM_EXIT_DEBUG (#DB, vector 1)
/// per instruction with pc = the next instruction; after turning it off
/// the guest runs to its HLT.
fn single_step(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "step_seq")?;
    let dbg = kvm_guest_debug { control: KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, ..Default::default() };
    k("KVM_SET_GUEST_DEBUG(singlestep)", g.cpu.fd.set_guest_debug(&dbg))?;
    for step in ["step_1", "step_2", "step_3", "step_4"] {
        let want = g.sym(step)?;
        match g.cpu.run()? {
            Exit::Debug { exception: 1, pc, .. } if pc == want => {}
            e => return Err(format!("exit: got {e}, want debug exception 1 pc {want:#x} ({step})")),
        }
    }
    k("KVM_SET_GUEST_DEBUG(off)", g.cpu.fd.set_guest_debug(&kvm_guest_debug::default()))?;
    g.cpu.expect_hlt()?;
    eq_hex("rip", g.cpu.regs()?.rip, g.sym("step_5")?)
}

/// Userspace irqchip protocol: with IF = 0, ready_for_interrupt_injection
/// is 0; after STI, with request_interrupt_window set, KVM comes back with
/// ready_for_interrupt_injection = 1; KVM_INTERRUPT then delivers the
/// vector through the guest's IDT/IVT.
fn interrupt(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "irq_wait")?;
    g.cpu.expect(Exit::out1(PORT_READY, 0))?;
    let (rdy, iff) = (g.cpu.kvm_run().ready_for_interrupt_injection, g.cpu.kvm_run().if_flag);
    expect_eq("with IF = 0: (ready_for_interrupt_injection, if_flag)", (rdy, iff), (0, 0))?;
    g.cpu.kvm_run().request_interrupt_window = 1;
    let mut seen = Vec::new();
    loop {
        let e = g.cpu.run()?;
        seen.push(e.to_string());
        if !matches!(e, Exit::IrqWindowOpen | Exit::Hlt) {
            return Err(format!("exit: got {e}, want irq-window-open or hlt (exits: {seen:?})"));
        }
        if g.cpu.kvm_run().ready_for_interrupt_injection == 1 {
            break;
        }
        if seen.len() >= 3 {
            return Err(format!("ready_for_interrupt_injection never became 1 (exits: {seen:?})"));
        }
    }
    eprintln!("info run/interrupt-injection/{}: exits after request_interrupt_window: {seen:?}", m.name());
    expect_eq("if_flag when ready", g.cpu.kvm_run().if_flag, 1)?;
    g.cpu.kvm_run().request_interrupt_window = 0;
    let irq = kvm_interrupt { irq: VEC_IRQ as u32 };
    crate::report::ctx(
        "KVM_INTERRUPT",
        ioctl(&g.cpu.fd, kvmsys::INTERRUPT, &irq as *const _ as u64).map_err(errno_name),
    )?;
    g.cpu.expect(Exit::out1(PORT_EXC, VEC_IRQ as u8))?;
    g.cpu.expect_hlt()
}

/// KVM_INTERRUPT takes vectors 0..255 (with a userspace irqchip a second
/// one before delivery simply replaces the first); 256 is EINVAL.
fn interrupt_range() -> TestResult {
    let g = Guest::at(Mode::Long, "irq_wait")?;
    let irq = |v: u32| ioctl(&g.cpu.fd, kvmsys::INTERRUPT, &kvm_interrupt { irq: v } as *const _ as u64);
    expect_errno("KVM_INTERRUPT(256)", irq(256), libc::EINVAL)?;
    expect_errno("KVM_INTERRUPT(0xffffffff)", irq(u32::MAX), libc::EINVAL)?;
    expect_eq("KVM_INTERRUPT(0x30)", irq(0x30).map_err(errno_name), Ok(0))?;
    expect_eq("KVM_INTERRUPT(255)", irq(255).map_err(errno_name), Ok(0))
}

/// KVM_NMI: the guest's NMI handler runs (even while halted with IF = 0).
fn nmi(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "halt_loop")?;
    g.cpu.expect_hlt()?;
    k("KVM_NMI", g.cpu.fd.nmi())?;
    g.cpu.expect(Exit::out1(PORT_EXC, 2))?;
    g.cpu.expect_hlt()
}

/// With KVM_CAP_EXIT_HYPERCALL enabled for KVM_HC_MAP_GPA_RANGE, VMMCALL
/// exits to userspace with the arguments, and hypercall.ret becomes RAX.
fn hypercall_user() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hypercall_user")?;
    let mut cap = kvm_enable_cap { cap: KVM_CAP_EXIT_HYPERCALL, ..Default::default() };
    cap.args[0] = 1 << 12;
    k("KVM_ENABLE_CAP(EXIT_HYPERCALL, MAP_GPA_RANGE)", g.vm.fd.enable_cap(&cap))?;
    g.cpu.expect(Exit::Hypercall { nr: 12, args: [0x20_0000, 3, 0, 0, 0, 0] })?;
    g.cpu.kvm_run().__bindgen_anon_1.hypercall.ret = 0x77;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x77))?;
    g.cpu.expect_hlt()
}

/// An unknown hypercall number is answered in the kernel: RAX = -KVM_ENOSYS.
fn hypercall_unknown() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hypercall_unknown")?;
    g.cpu.expect(Exit::out4(PORT_ECHO, (-1000i32) as u32))?;
    g.cpu.expect_hlt()
}

/// Pins the calling thread to `cpu` (sched_setaffinity).
fn pin(tid: libc::pid_t, cpu: usize) -> TestResult {
    // SAFETY: a zeroed cpu_set_t with one bit set.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(format!("sched_setaffinity(cpu {cpu}): {}", std::io::Error::last_os_error()))
    }
}

fn online() -> Vec<usize> {
    crate::sys::online_cpus().into_iter().map(|c| c as usize).collect()
}

/// The vCPU thread moves to another host CPU after every exit: each
/// KVM_RUN must reload the vCPU on the new CPU and continue exactly.
fn migrate_between_exits() -> TestResult {
    let cpus = online();
    if cpus.len() < 2 {
        return Err(format!("needs 2 online CPUs, have {cpus:?}"));
    }
    let mut g = Guest::at(Mode::Long, "count_out")?;
    const N: u32 = 60;
    g.cpu.with_regs(|r| {
        r.rbx = 7;
        r.rcx = N as u64;
    })?;
    let res = (|| {
        for i in 1..=N {
            pin(0, cpus[i as usize % cpus.len()])?;
            g.cpu.expect(Exit::out4(PORT_OUT, 7 << 16 | i))?;
        }
        g.cpu.expect_hlt()
    })();
    let all = cpus.clone();
    // SAFETY: as in pin(), allowing every online CPU again.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in all {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    res
}

/// A guest checking its SSE state in a tight loop (fpu_spin: 30 million
/// iterations without an exit, about a second under TCG) while another thread keeps moving the vCPU thread between
/// host CPUs and two threads keep the CPUs busy with their own SSE work:
/// the guest's XMM registers must survive every preemption and migration.
fn fpu_spin() -> TestResult {
    let cpus = online();
    if cpus.len() < 2 {
        return Err(format!("needs 2 online CPUs, have {cpus:?}"));
    }
    let mut g = Guest::at(Mode::Long, "fpu_spin")?;
    g.cpu.with_regs(|r| r.rbp = 30_000_000)?;
    g.cpu.timeout = Duration::from_secs(20);
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    let stop = Arc::new(AtomicBool::new(false));
    let mut helpers = Vec::new();
    {
        let (stop, cpus) = (stop.clone(), cpus.clone());
        helpers.push(std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let _ = pin(tid, cpus[i % cpus.len()]);
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    for _ in 0..2 {
        let stop = stop.clone();
        helpers.push(std::thread::spawn(move || {
            let mut x = [1.0f64; 8];
            while !stop.load(Ordering::Relaxed) {
                for (j, v) in x.iter_mut().enumerate() {
                    *v = (*v * 1.000_001 + j as f64).sqrt();
                }
                std::hint::black_box(&x);
            }
        }));
    }
    let t0 = std::time::Instant::now();
    let r = g.cpu.run();
    let took = t0.elapsed();
    stop.store(true, Ordering::Relaxed);
    for h in helpers {
        let _ = h.join();
    }
    let _ = pin(0, cpus[0]);
    // SAFETY: allow every online CPU again.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in &cpus {
            libc::CPU_SET(*c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
    eprintln!("info run/fpu-survives-preemption-and-migration: guest loop ran {took:?}");
    match r? {
        Exit::Io { out: true, port: PORT_DONE, .. } => Ok(()),
        Exit::Io { out: true, port: PORT_EXC, .. } => {
            let r = g.cpu.regs()?;
            Err(format!("guest saw XMM3 = {:#x} but RBX = {:#x}: SSE state lost", r.rcx, r.rbx))
        }
        e => Err(format!("exit: got {e}, want out to PORT_DONE")),
    }
}
