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
pub fn run(m: &Modules) {
    for p in m.pre.iter().chain([&m.kvm, &m.amd]) {
        if let Err(e) = load_module(p) {
            println!("BENCH-FAIL load: insmod {p}: {}", errno_name(e));
            return;
        }
    }
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
            Err(e) => println!("BENCH-FAIL {}: {}", b.name, e.replace('\n', " | ")),
        }
    }
}
