//! `make bench`: per-exit costs, printed for the host harness
//! (scripts/bench.sh), one line per benchmark:
//!
//! ```text
//! BENCH-ITERS <n>
//! BENCH <name> <count> <total> <value> <userspace exits> <unit> # <what>
//! BENCH-FAIL <name>: <why>
//! ```
//!
//! `value` is `total / count` in `unit` (ns per exit, per event, per page
//! or per access; bytes per VM or per vCPU).  The rows to run come from
//! RKVM_BENCH_ROWS (names separated by commas or spaces; empty: all).
//! After the rows the modules are unloaded again, so that the next set
//! can be loaded in the same boot (scripts/bench.sh alternates them).
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
use crate::sys::{errno_name, load_module, udev_settle, unload_module};
use crate::vendor::Vendor;
use crate::Modules;
use kvm_bindings::*;
use std::time::{Duration, Instant};

struct Bench {
    name: &'static str,
    routine: &'static str,
    /// Exits to userspace per iteration: 0 (handled in KVM) or 1.
    user_exits: bool,
    /// The vendor whose rows these are (None: both). The hypercall rows
    /// use the vendor's own instruction (VMMCALL on AMD, VMCALL on Intel):
    /// the other one is a #UD that KVM emulates and patches into the
    /// native one (FIX_HYPERCALL_INSN), not the path these rows measure.
    vendor: Option<Vendor>,
    what: &'static str,
}

const BENCHES: [Bench; 8] = [
    Bench { name: "cpuid", routine: "bench_cpuid", user_exits: false, vendor: None, what: "CPUID, handled in KVM" },
    Bench {
        name: "vmmcall-user",
        routine: "bench_vmmcall_user",
        user_exits: true,
        vendor: Some(Vendor::Amd),
        what: "VMMCALL KVM_HC_MAP_GPA_RANGE -> KVM_EXIT_HYPERCALL (KVM_CAP_EXIT_HYPERCALL)",
    },
    Bench {
        name: "vmmcall-kernel",
        routine: "bench_vmmcall_kernel",
        user_exits: false,
        vendor: Some(Vendor::Amd),
        what: "VMMCALL KVM_HC_VAPIC_POLL_IRQ, handled in KVM",
    },
    Bench {
        name: "vmcall-user",
        routine: "bench_vmcall_user",
        user_exits: true,
        vendor: Some(Vendor::Intel),
        what: "VMCALL KVM_HC_MAP_GPA_RANGE -> KVM_EXIT_HYPERCALL (KVM_CAP_EXIT_HYPERCALL)",
    },
    Bench {
        name: "vmcall-kernel",
        routine: "bench_vmcall_kernel",
        user_exits: false,
        vendor: Some(Vendor::Intel),
        what: "VMCALL KVM_HC_VAPIC_POLL_IRQ, handled in KVM",
    },
    Bench { name: "pio-out", routine: "bench_pio", user_exits: true, vendor: None, what: "OUT -> KVM_EXIT_IO" },
    Bench {
        name: "mmio-write",
        routine: "bench_mmio",
        user_exits: true,
        vendor: None,
        what: "MOV to unmapped GPA -> KVM_EXIT_MMIO",
    },
    Bench {
        name: "hlt",
        routine: "bench_hlt",
        user_exits: true,
        vendor: None,
        what: "HLT -> KVM_EXIT_HLT (userspace irqchip; the next KVM_RUN wakes it)",
    },
];

/// The exit rows of this CPU's vendor.
fn benches() -> impl Iterator<Item = &'static Bench> {
    let v = Vendor::host();
    BENCHES.iter().filter(move |b| b.vendor.is_none_or(|bv| bv == v))
}

fn run_one(b: &Bench, iters: u64) -> Result<(Duration, u64), String> {
    let mut g = Guest::at(Mode::Long, b.routine)?;
    if matches!(b.name, "vmmcall-user" | "vmcall-user") {
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

/// Guest memory, TLB and footprint rows.
pub(crate) mod mem {
    use crate::suites::guest::*;
    use crate::suites::irqchip::expect_port;
    use std::time::{Duration, Instant};

    /// Where the big slot starts (inside the guest's 1:1 mapping of the
    /// first GiB with 2 MiB pages).
    const BIG_GPA: u64 = 0x1000_0000;
    /// First-touch size: 256 MiB.
    pub const TOUCH_BYTES: u64 = 256 << 20;
    /// TLB loop working set: 64 MiB (16384 pages).
    pub const TLB_BYTES: u64 = 64 << 20;
    const HUGE: usize = 2 << 20;

    /// Anonymous memory aligned to 2 MiB, with MADV_HUGEPAGE on request
    /// (transparent huge pages are "madvise" in the test kernel).
    pub struct BigMem {
        base: *mut u8,
        len: usize,
        aligned: *mut u8,
    }

    impl BigMem {
        pub fn new(len: usize, thp: bool) -> Result<BigMem, String> {
            let total = len + HUGE;
            // Unmapped on drop.
            let base = crate::suites::guest::anon_mmap(total)?;
            let aligned = ((base as usize + HUGE - 1) & !(HUGE - 1)) as *mut u8;
            let advice = if thp { libc::MADV_HUGEPAGE } else { libc::MADV_NOHUGEPAGE };
            // SAFETY: inside our mapping.
            if unsafe { libc::madvise(aligned.cast(), len, advice) } != 0 {
                return Err(format!("madvise: {}", std::io::Error::last_os_error()));
            }
            Ok(BigMem { base, len: total, aligned })
        }
        pub fn addr(&self) -> u64 {
            self.aligned as u64
        }
    }

    impl Drop for BigMem {
        fn drop(&mut self) {
            // SAFETY: our own mapping.
            unsafe { libc::munmap(self.base.cast(), self.len) };
        }
    }

    /// A long-mode guest at `routine` with `bytes` of fresh RAM at BIG_GPA
    /// (slot 1). The memory is dropped after the VM.
    fn big_guest(routine: &str, bytes: u64, thp: bool) -> Result<(Guest, BigMem), String> {
        let mem = BigMem::new(bytes as usize, thp)?;
        let g = Guest::at(Mode::Long, routine)?;
        g.vm.add_slot(1, BIG_GPA, bytes, mem.addr(), 0)?;
        Ok((g, mem))
    }

    fn run_to_done(cpu: &mut Cpu, timeout: Duration) -> Result<Duration, String> {
        cpu.timeout = timeout;
        let t0 = Instant::now();
        expect_port(cpu, PORT_DONE)?;
        Ok(t0.elapsed())
    }

    /// The guest writes one byte to each 4 KiB page of 256 MiB of fresh
    /// memory (THP-backed with `thp`): the TDP fault path, host page
    /// allocation included. Returns (pages, time).
    pub fn first_touch(thp: bool) -> Result<(u64, Duration), String> {
        let pages = TOUCH_BYTES / 4096;
        let (mut g, _mem) = big_guest("bench_touch", TOUCH_BYTES, thp)?;
        g.cpu.with_regs(|r| {
            r.rbx = BIG_GPA;
            r.rbp = pages;
        })?;
        let t = run_to_done(&mut g.cpu, Duration::from_secs(600))?;
        drop(g);
        Ok((pages, t))
    }

    /// `passes` rounds of one load per page over 64 MiB of THP-backed
    /// memory, after an untimed pass that maps it all. Returns (loads, time).
    pub fn tlb(passes: u64) -> Result<(u64, Duration), String> {
        let pages = TLB_BYTES / 4096;
        let (mut g, _mem) = big_guest("bench_tlb", TLB_BYTES, true)?;
        let start = g.sym("bench_tlb")?;
        g.cpu.with_regs(|r| {
            r.rbx = BIG_GPA;
            r.rcx = pages;
            r.rbp = 1;
        })?;
        run_to_done(&mut g.cpu, Duration::from_secs(600))?;
        g.cpu.set_rip(start)?;
        g.cpu.with_regs(|r| {
            r.rbx = BIG_GPA;
            r.rcx = pages;
            r.rbp = passes;
        })?;
        let t = run_to_done(&mut g.cpu, Duration::from_secs(600))?;
        drop(g);
        Ok((pages * passes, t))
    }

    /// Free pages (bytes): the buddy allocator's and those cached on the
    /// per-CPU lists (/proc/zoneinfo), which MemFree does not count and
    /// which move by hundreds of pages with every burst of frees.
    fn free_bytes() -> Result<i64, String> {
        let z = std::fs::read_to_string("/proc/zoneinfo").map_err(|e| format!("/proc/zoneinfo: {e}"))?;
        let mut pages = 0i64;
        for l in z.lines() {
            let mut w = l.split_whitespace();
            let v = match (w.next(), w.next(), w.next()) {
                (Some("pages"), Some("free"), Some(v)) => v,
                (Some("count:"), Some(v), _) => v,
                _ => continue,
            };
            pages += v.parse::<i64>().map_err(|_| format!("/proc/zoneinfo: bad line {l:?}"))?;
        }
        Ok(pages * 4096)
    }

    /// Kernel memory in use (bytes): what is neither free, nor page cache,
    /// nor userspace anonymous memory.
    fn kernel_used() -> Result<i64, String> {
        let s = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
        let get = |k: &str| -> Result<i64, String> {
            s.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
                .map(|kb| kb * 1024)
                .ok_or_else(|| format!("/proc/meminfo has no {k}"))
        };
        Ok(get("MemTotal")? - free_bytes()? - get("Buffers")? - get("Cached")? - get("AnonPages")?)
    }

    /// Lets RCU-freed objects go and the numbers settle.
    fn settle() {
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Kernel memory per object: the median over 3 tries of the growth of
    /// kernel memory while `make(i)` builds `n` of them (kept alive until
    /// measured), after a warm-up that creates the modules' caches.
    fn per_object<T>(n: usize, setup: impl Fn() -> Result<T, String>, make: impl Fn(&T, usize) -> Result<Box<dyn std::any::Any>, String>) -> Result<f64, String> {
        {
            let s = setup()?;
            let _warm: Vec<_> = (0..2).map(|i| make(&s, i)).collect::<Result<_, _>>()?;
        }
        let mut d = Vec::new();
        for _ in 0..3 {
            let s = setup()?;
            settle();
            let before = kernel_used()?;
            let objs: Vec<_> = (0..n).map(|i| make(&s, i)).collect::<Result<_, _>>()?;
            settle();
            let after = kernel_used()?;
            drop(objs);
            drop(s);
            d.push((after - before) as f64 / n as f64);
        }
        d.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Ok(d[1])
    }

    /// Objects per footprint measurement.
    pub const FOOTPRINT_N: usize = 32;

    /// Bytes of kernel memory per VM as QEMU makes one: VM, in-kernel
    /// irqchip and PIT, 64 KiB of RAM in a slot (no vCPU).
    pub fn per_vm() -> Result<f64, String> {
        per_object(
            FOOTPRINT_N,
            || Ok(()),
            |_, _| {
                let vm = Vm::new(Mode::Long)?;
                k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
                let cfg = kvm_bindings::kvm_pit_config { flags: kvm_bindings::KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
                k("KVM_CREATE_PIT2", vm.fd.create_pit2(cfg))?;
                Ok(Box::new(vm))
            },
        )
    }

    /// Bytes of kernel memory per vCPU (in-kernel LAPIC), each with its
    /// CPUID set and one KVM_RUN to its first exit.
    pub fn per_vcpu() -> Result<f64, String> {
        per_object(
            FOOTPRINT_N,
            || {
                let vm = Vm::new(Mode::Long)?;
                k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
                let cpuid = vm.supported_cpuid()?;
                Ok((vm, cpuid, std::sync::atomic::AtomicU64::new(0)))
            },
            |(vm, cpuid, next), _| {
                let id = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut c = vm.vcpu_with_cpuid(id, cpuid)?;
                // An AP waits for INIT/SIPI with an in-kernel LAPIC.
                let runnable = kvm_bindings::kvm_mp_state { mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE };
                k("KVM_SET_MP_STATE", c.fd.set_mp_state(runnable))?;
                c.start("bench_done")?;
                expect_port(&mut c, PORT_DONE)?;
                Ok(Box::new(c))
            },
        )
    }
}

/// A row's measurement: (count, total, userspace exits), where
/// total / count is the value in the row's unit.
type Measured = Result<(u64, f64, u64), String>;

/// One row of the table: runs once.
struct Row {
    name: &'static str,
    unit: &'static str,
    what: &'static str,
    run: fn(u64) -> Measured,
}

fn ns(t: Duration) -> f64 {
    t.as_nanos() as f64
}

const MEM_ROWS: [Row; 5] = [
    Row {
        name: "first-touch",
        unit: "ns/page",
        what: "guest writes 1 byte per 4 KiB page of 256 MiB fresh memory (no THP): the TDP fault path",
        run: |_| mem::first_touch(false).map(|(n, t)| (n, ns(t), 0)),
    },
    Row {
        name: "first-touch-thp",
        unit: "ns/page",
        what: "as first-touch, memory MADV_HUGEPAGE (2 MiB host pages: huge TDP mappings possible)",
        run: |_| mem::first_touch(true).map(|(n, t)| (n, ns(t), 0)),
    },
    Row {
        name: "tlb-walk",
        unit: "ns/load",
        what: "loads, each to another page of 64 MiB (THP-backed, mapped), passes = iterations / 500",
        run: |n| mem::tlb((n / 500).max(1)).map(|(n, t)| (n, ns(t), 0)),
    },
    Row {
        name: "mem-per-vm",
        unit: "B/VM",
        what: "kernel memory per VM (irqchip, PIT, 64 KiB slot; no vCPU): meminfo delta over 32",
        run: |_| mem::per_vm().map(|b| (mem::FOOTPRINT_N as u64, b * mem::FOOTPRINT_N as f64, 0)),
    },
    Row {
        name: "mem-per-vcpu",
        unit: "B/vCPU",
        what: "kernel memory per vCPU (in-kernel LAPIC, CPUID set, run once): meminfo delta over 32",
        run: |_| mem::per_vcpu().map(|b| (mem::FOOTPRINT_N as u64, b * mem::FOOTPRINT_N as f64, 0)),
    },
];

/// RKVM_BENCH_ROWS: the rows to run (all when empty or unset).
fn wanted(name: &str) -> bool {
    let rows = std::env::var("RKVM_BENCH_ROWS").unwrap_or_default();
    let mut it = rows.split([',', ' ']).filter(|s| !s.is_empty()).peekable();
    it.peek().is_none() || it.any(|r| r == name)
}

/// Prints a row's line.
fn report(name: &str, unit: &str, what: &str, r: Measured) -> bool {
    match r {
        Ok((n, total, exits)) => {
            let n = n.max(1);
            println!("BENCH {name} {n} {total:.0} {:.1} {exits} {unit} # {what}", total / n as f64);
            true
        }
        Err(e) => {
            println!("BENCH-FAIL {name}: {}", e.replace('\n', " | "));
            false
        }
    }
}

/// The module names of a module set's files (insmod order).
fn module_names(m: &Modules, vendor: &String) -> Vec<String> {
    m.pre
        .iter()
        .chain([&m.kvm, vendor])
        .filter_map(|p| std::path::Path::new(p).file_stem())
        .map(|s| s.to_string_lossy().replace('-', "_"))
        .collect()
}

/// `--bench-list`: the names of the rows a run would run (RKVM_BENCH_ROWS
/// applies), one a line.
pub fn list() {
    let names = benches().map(|b| b.name).chain(IRQ_BENCHES.iter().map(|b| b.name));
    for n in names.chain(MEM_ROWS.iter().map(|r| r.name)).filter(|n| wanted(n)) {
        println!("{n}");
    }
}

/// Loads the modules, runs the benchmarks, unloads the modules.
/// Runs every loop; false when any failed (a BENCH-FAIL line).
pub fn run(m: &Modules) -> bool {
    // Modules loaded already (a profiling session) stay loaded.
    let vendor = Vendor::host().path(m).to_string();
    let mut loaded = Vec::new();
    for (p, name) in m.pre.iter().chain([&m.kvm, &vendor]).zip(module_names(m, &vendor)) {
        match load_module(p) {
            Ok(()) => loaded.push(name),
            Err(libc::EEXIST) => {}
            Err(e) => {
                println!("BENCH-FAIL load: insmod {p}: {}", errno_name(e));
                return false;
            }
        }
    }
    let mut ok = true;
    udev_settle();
    let iters = iterations();
    println!("BENCH-ITERS {iters}");
    crate::suites::harness::install_signal_handlers();
    for b in benches().filter(|b| wanted(b.name)) {
        ok &= report(b.name, "ns/exit", b.what, run_one(b, iters).map(|(t, e)| (iters, ns(t), e)));
    }
    for b in IRQ_BENCHES.iter().filter(|b| wanted(b.name)) {
        let n = (iters / b.div).max(1);
        ok &= report(b.name, "ns/event", b.what, (b.run)(n).map(|(t, e)| (n, ns(t), e)));
    }
    for r in MEM_ROWS.iter().filter(|r| wanted(r.name)) {
        ok &= report(r.name, r.unit, r.what, (r.run)(iters));
    }
    // Unload, so that the other set can be loaded in this boot.
    for name in loaded.iter().rev() {
        let mut tries = 0;
        while let Err(e) = unload_module(name) {
            tries += 1;
            if tries > 50 {
                println!("BENCH-FAIL unload: rmmod {name}: {}", errno_name(e));
                return false;
            }
            // A VM whose last reference goes away asynchronously (an
            // irqfd's release) may hold the module for a moment.
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    ok
}
