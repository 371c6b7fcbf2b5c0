//! `make bench`: per-exit costs, printed for the host harness
//! (scripts/bench.sh), one line per benchmark:
//!
//! ```text
//! BENCH-ITERS <n>
//! BENCH <name> <iterations> <total ns> <ns per exit> <userspace exits>
//! BENCH-FAIL <name>: <why>
//! ```
//!
//! Each benchmark is a long-mode guest loop (guests/bench.inc) of `n`
//! iterations, each causing one exit of its kind; the time is measured in
//! userspace from the first KVM_RUN to the loop's final OUT, so it includes
//! the userspace side of each exit where there is one.  `n` comes from
//! RKVM_BENCH_ITERS, else from the file build/bench/iters of the tree this
//! binary was built in (scripts/bench.sh writes it before booting the VM,
//! whose init passes no environment), else 1,000,000.
//!
//! The in-kernel irqchip benchmarks (guests/irq.inc, IRQ_BENCHES) measure
//! one event per iteration instead of one exit: an IPI round trip between
//! two vCPUs, a LAPIC timer interrupt, an irqfd-injected MSI, an
//! ioeventfd-swallowed write.  The slow ones run n / IRQ_DIV iterations;
//! each line states the iterations it ran.

use crate::suites::guest::*;
use crate::sys::{errno_name, load_module, udev_settle};
use crate::Modules;
use kvm_bindings::*;
use std::time::{Duration, Instant};

struct Bench {
    name: &'static str,
    routine: &'static str,
    /// Exits to userspace per iteration: 0 (handled in KVM) or 1.
    user_exits: bool,
    what: &'static str,
}

const BENCHES: [Bench; 6] = [
    Bench { name: "cpuid", routine: "bench_cpuid", user_exits: false, what: "CPUID, handled in KVM" },
    Bench {
        name: "vmmcall-user",
        routine: "bench_vmmcall_user",
        user_exits: true,
        what: "VMMCALL KVM_HC_MAP_GPA_RANGE -> KVM_EXIT_HYPERCALL (KVM_CAP_EXIT_HYPERCALL)",
    },
    Bench {
        name: "vmmcall-kernel",
        routine: "bench_vmmcall_kernel",
        user_exits: false,
        what: "VMMCALL KVM_HC_VAPIC_POLL_IRQ, handled in KVM",
    },
    Bench { name: "pio-out", routine: "bench_pio", user_exits: true, what: "OUT -> KVM_EXIT_IO" },
    Bench { name: "mmio-write", routine: "bench_mmio", user_exits: true, what: "MOV to unmapped GPA -> KVM_EXIT_MMIO" },
    Bench {
        name: "hlt",
        routine: "bench_hlt",
        user_exits: true,
        what: "HLT -> KVM_EXIT_HLT (userspace irqchip; the next KVM_RUN wakes it)",
    },
];

fn run_one(b: &Bench, iters: u64) -> Result<(Duration, u64), String> {
    let mut g = Guest::at(Mode::Long, b.routine)?;
    if b.name == "vmmcall-user" {
        let mut cap = kvm_enable_cap { cap: KVM_CAP_EXIT_HYPERCALL, ..Default::default() };
        cap.args[0] = 1 << 12;
        k("KVM_ENABLE_CAP(EXIT_HYPERCALL)", g.vm.fd.enable_cap(&cap))?;
    }
    g.cpu.with_regs(|r| r.rbp = iters)?;
    // No run may take longer than every iteration at 10 ms, plus a minute.
    g.cpu.timeout = Duration::from_millis(iters.saturating_mul(10)) + Duration::from_secs(60);
    let mut exits = 0u64;
    let t0 = Instant::now();
    loop {
        let e = g.cpu.run()?;
        match e {
            Exit::Io { out: true, port: PORT_DONE, .. } => break,
            Exit::Io { out: true, port: PORT_OUT, .. } | Exit::Mmio { write: true, .. } | Exit::Hlt if b.user_exits => {
            }
            Exit::Hypercall { nr: 12, .. } if b.user_exits => {
                g.cpu.kvm_run().__bindgen_anon_1.hypercall.ret = 0;
            }
            e => return Err(format!("unexpected exit {e} after {exits} exits")),
        }
        exits += 1;
        if exits > iters {
            return Err(format!("more than {iters} exits"));
        }
    }
    let t = t0.elapsed();
    let want = if b.user_exits { iters } else { 0 };
    if exits != want {
        return Err(format!("{exits} userspace exits, want {want}"));
    }
    Ok((t, exits))
}

/// A benchmark of the in-kernel irqchip: runs `iters` events, returns the
/// time they took and the userspace exits seen meanwhile.
struct IrqBench {
    name: &'static str,
    /// Iterations are n / div.
    div: u64,
    run: fn(u64) -> Result<(Duration, u64), String>,
    what: &'static str,
}

/// The slow irqchip benchmarks (several exits and wake-ups per event) run
/// this many times fewer iterations.
const IRQ_DIV: u64 = 20;

const IRQ_BENCHES: [IrqBench; 5] = [
    IrqBench {
        name: "ipi-roundtrip",
        div: IRQ_DIV,
        run: irq::ipi_roundtrip,
        what: "fixed IPI BSP -> AP, AP answers with an IPI; both halt in KVM between (in-kernel LAPIC)",
    },
    IrqBench {
        name: "timer-irq",
        div: IRQ_DIV,
        run: irq::timer,
        what: "LAPIC one-shot timer (1 us) re-armed by the handler: delivery into a halted vCPU",
    },
    IrqBench {
        name: "irqfd-msi",
        div: IRQ_DIV,
        run: irq::irqfd_msi,
        what: "eventfd write -> irqfd MSI -> halted vCPU's handler; acked through guest memory",
    },
    IrqBench {
        name: "ioeventfd-pio",
        div: 1,
        run: irq::ioeventfd_pio,
        what: "OUT to a port with an ioeventfd: eventfd signalled, no userspace exit",
    },
    IrqBench {
        name: "ioeventfd-mmio",
        div: 1,
        run: irq::ioeventfd_mmio,
        what: "MOV to MMIO with an ioeventfd: eventfd signalled, no userspace exit",
    },
];

mod irq {
    //! The in-kernel irqchip benchmark loops (guests/irq.inc).
    use crate::suites::guest::*;
    use crate::suites::irqchip::*;
    use crate::suites::irqchip_io::ioeventfd;
    use std::time::{Duration, Instant};

    type R = Result<(Duration, u64), String>;

    fn timeout(n: u64) -> Duration {
        Duration::from_millis(n.saturating_mul(10)) + Duration::from_secs(60)
    }

    /// `n` ping-pong rounds between vCPU 0 and vCPU 1, timed from the
    /// BSP's READY (AP up) to its DONE.
    pub fn ipi_roundtrip(n: u64) -> R {
        let iv = IrqVm::new(true, false)?;
        iv.set_eoi(VEC_PING, EOI_LAPIC);
        iv.set_eoi(VEC_PONG, EOI_LAPIC);
        let mut bsp = iv.vcpu(0)?;
        let mut ap = iv.vcpu(1)?;
        bsp.timeout = timeout(n);
        ap.timeout = timeout(n) + Duration::from_secs(60);
        bsp.start("bench_ipi")?;
        bsp.with_regs(|r| r.rbp = n)?;
        let (r, bg) = with_background(&mut ap, |bg| -> R {
            expect_port(&mut bsp, PORT_READY)?;
            let t0 = Instant::now();
            expect_port(&mut bsp, PORT_DONE)?;
            let t = t0.elapsed();
            let e = bg.next(Duration::from_secs(1))?;
            if e != Exit::out4(PORT_READY, 1) {
                return Err(format!("AP exit {e}, want its READY"));
            }
            Ok((t, bg.exits.try_iter().count() as u64))
        });
        let r = r?;
        bg?;
        let pongs = iv.count(VEC_PONG) as u64;
        if pongs != n {
            return Err(format!("{pongs} pongs, want {n}"));
        }
        Ok(r)
    }

    /// `n` one-shot LAPIC timer interrupts of 1 us, each re-armed by the
    /// handler.
    pub fn timer(n: u64) -> R {
        let iv = IrqVm::new(true, false)?;
        iv.set_eoi(VEC_TIMER, EOI_REARM | EOI_LAPIC);
        let mut c = iv.vcpu(0)?;
        c.timeout = timeout(n);
        c.start("bench_timer")?;
        c.with_regs(|r| {
            r.rsi = 1000;
            r.rbp = n;
        })?;
        let t0 = Instant::now();
        expect_port(&mut c, PORT_DONE)?;
        let t = t0.elapsed();
        let got = iv.count(VEC_TIMER) as u64;
        if got < n {
            return Err(format!("{got} timer interrupts, want {n}"));
        }
        Ok((t, 0))
    }

    /// `n` eventfd writes, each waiting until the guest's handler has
    /// counted the MSI (GSI 24 -> VEC_MSI through KVM_IRQFD).
    pub fn irqfd_msi(n: u64) -> R {
        const GSI: u32 = 24;
        let iv = IrqVm::new(true, false)?;
        iv.set_eoi(VEC_MSI, EOI_LAPIC);
        set_routing(&iv.vm.fd, &[route_msi(GSI, 0, VEC_MSI as u32)], None, 0)
            .map_err(|e| format!("KVM_SET_GSI_ROUTING: {}", crate::sys::errno_name(e)))?;
        let ev = EventFd::new()?;
        irqfd(&iv.vm.fd, ev.fd(), GSI, 0, 0).map_err(|e| format!("KVM_IRQFD: {}", crate::sys::errno_name(e)))?;
        let mut c = iv.vcpu(0)?;
        c.timeout = timeout(n);
        c.start("bench_irq_wait")?;
        expect_port(&mut c, PORT_READY)?;
        let counter = (iv.ram.addr() + (IRQ_COUNT - IRQ_RAM) + 4 * VEC_MSI) as *const u32;
        let (r, bg) = with_background(&mut c, |bg| -> R {
            let t0 = Instant::now();
            for i in 1..=n {
                ev.write(1)?;
                let t1 = Instant::now();
                // SAFETY: the counter lives in `iv.ram`, mapped until iv
                // drops; the guest updates it, so read it volatile.
                while (unsafe { std::ptr::read_volatile(counter) } as u64) < i {
                    std::hint::spin_loop();
                    if t1.elapsed() > Duration::from_secs(5) {
                        return Err(format!("MSI {i} not taken within 5 s"));
                    }
                }
            }
            Ok((t0.elapsed(), bg.exits.try_iter().count() as u64))
        });
        let r = r?;
        bg?;
        Ok(r)
    }

    fn ioev(routine: &str, pio: bool, n: u64) -> R {
        let mut g = Guest::at(Mode::Long, routine)?;
        let ev = EventFd::new()?;
        if pio {
            ioeventfd(&g.vm.fd, &ev, true, PORT_IOEV2 as u64, 1, None)?;
        } else {
            ioeventfd(&g.vm.fd, &ev, false, IOEV_MMIO, 4, None)?;
        }
        g.cpu.timeout = timeout(n);
        g.cpu.with_regs(|r| r.rbp = n)?;
        let t0 = Instant::now();
        expect_port(&mut g.cpu, PORT_DONE)?;
        let t = t0.elapsed();
        let got = ev.take()?;
        if got != n {
            return Err(format!("eventfd counted {got}, want {n}"));
        }
        Ok((t, 0))
    }

    pub fn ioeventfd_pio(n: u64) -> R {
        ioev("bench_ioev_pio", true, n)
    }

    pub fn ioeventfd_mmio(n: u64) -> R {
        ioev("bench_ioev_mmio", false, n)
    }
}

/// RKVM_BENCH_ITERS, or build/bench/iters (this binary is
/// build/vmtest/release/rkvm-vmtest), or 1,000,000.
fn iterations() -> u64 {
    let from_file = || {
        let exe = std::env::current_exe().ok()?;
        let build = exe.parent()?.parent()?.parent()?;
        std::fs::read_to_string(build.join("bench/iters")).ok()
    };
    std::env::var("RKVM_BENCH_ITERS")
        .ok()
        .or_else(from_file)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1_000_000u64)
        .max(1)
}

/// Loads the modules and runs the benchmarks.
/// Runs every loop; false when any failed (a BENCH-FAIL line).
pub fn run(m: &Modules) -> bool {
    for p in m.pre.iter().chain([&m.kvm, &m.amd]) {
        if let Err(e) = load_module(p) {
            println!("BENCH-FAIL load: insmod {p}: {}", errno_name(e));
            return false;
        }
    }
    let mut ok = true;
    udev_settle();
    let iters = iterations();
    println!("BENCH-ITERS {iters}");
    crate::suites::harness::install_signal_handlers();
    for b in &BENCHES {
        match run_one(b, iters) {
            Ok((t, exits)) => {
                let ns = t.as_nanos();
                println!("BENCH {} {iters} {ns} {:.1} {exits} # {}", b.name, ns as f64 / iters as f64, b.what);
            }
            Err(e) => {
                ok = false;
                println!("BENCH-FAIL {}: {}", b.name, e.replace('\n', " | "))
            }
        }
    }
    for b in &IRQ_BENCHES {
        let n = (iters / b.div).max(1);
        match (b.run)(n) {
            Ok((t, exits)) => {
                let ns = t.as_nanos();
                println!("BENCH {} {n} {ns} {:.1} {exits} # {}", b.name, ns as f64 / n as f64, b.what);
            }
            Err(e) => {
                ok = false;
                println!("BENCH-FAIL {}: {}", b.name, e.replace('\n', " | "))
            }
        }
    }
    ok
}
