//! Fault injection: every creation path (VM, vCPU, memslot, irqchip, PIT,
//! GSI routing, irqfd, ioeventfd, coalesced zone, CPUID, first KVM_RUN) is
//! run with its 1st, 2nd, ... Nth allocation failing (failslab and
//! fail_page_alloc through /proc/thread-self/fail-nth, counted only for
//! allocations whose stack passes through the modules under test: the
//! stack-trace filter require-start/require-end). Each injected failure
//! must give an error (or be tolerated) and leave nothing behind: the same
//! call made again without injection succeeds, the modules' reference
//! counts return to where they were, no kernel report; the kmemleak scan
//! after the run (tests/vm/init.sh) finds no leak.

use crate::gen::{self, S};
use crate::ioctls::*;
use crate::sys::{errno, errno_name, ioctl, kvm_run};
use crate::{check, modules, Opts};
use std::collections::BTreeMap;

const DBG: &str = "/sys/kernel/debug";

fn wr(path: &str, v: &str) -> Result<(), String> {
    std::fs::write(path, v).map_err(|e| format!("write {v} to {path}: {e}"))
}

/// [start, end) covering the text of kvm and kvm_amd (from /proc/modules).
fn module_range() -> Option<(u64, u64)> {
    let pm = std::fs::read_to_string("/proc/modules").ok()?;
    let mut lo = u64::MAX;
    let mut hi = 0;
    for l in pm.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 6 && (f[0] == "kvm" || f[0] == "kvm_amd") {
            let size: u64 = f[1].parse().ok()?;
            let base = u64::from_str_radix(f[5].trim_start_matches("0x"), 16).ok()?;
            if base == 0 {
                return None;
            }
            lo = lo.min(base);
            hi = hi.max(base + size);
        }
    }
    (hi > lo).then_some((lo, hi))
}

fn setup_attrs() -> Result<(), String> {
    if !std::path::Path::new(&format!("{DBG}/failslab")).exists() {
        let _ = std::process::Command::new("mount").args(["-t", "debugfs", "debugfs", DBG]).status();
    }
    let (lo, hi) = module_range().ok_or("no address range for kvm/kvm_amd in /proc/modules")?;
    for a in ["failslab", "fail_page_alloc"] {
        let d = format!("{DBG}/{a}");
        wr(&format!("{d}/probability"), "0")?;
        wr(&format!("{d}/interval"), "1")?;
        wr(&format!("{d}/times"), "-1")?;
        wr(&format!("{d}/verbose"), "0")?;
        wr(&format!("{d}/task-filter"), "N")?;
        wr(&format!("{d}/ignore-gfp-wait"), "N")?;
        wr(&format!("{d}/stacktrace-depth"), "32")?;
        wr(&format!("{d}/require-start"), &lo.to_string())?;
        wr(&format!("{d}/require-end"), &hi.to_string())?;
    }
    wr(&format!("{DBG}/fail_page_alloc/min-order"), "0")?;
    wr(&format!("{DBG}/fail_page_alloc/ignore-gfp-highmem"), "N")?;
    Ok(())
}

fn set_fail_nth(n: u32) {
    let _ = std::fs::write("/proc/thread-self/fail-nth", n.to_string());
}

/// What is left of fail-nth (0: the failure was injected).
fn fail_nth_left() -> u32 {
    let v = std::fs::read_to_string("/proc/thread-self/fail-nth").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
    set_fail_nth(0);
    v
}

/// fds and mappings a path's setup made; closed by drop.
struct Ctx {
    kvm: i32,
    vm: i32,
    vcpu: i32,
    efd: i32,
    mem: usize,
    made: Vec<i32>,
}

const RAM: usize = 0x20000;

impl Drop for Ctx {
    fn drop(&mut self) {
        for &fd in self.made.iter().chain([&self.vcpu, &self.efd, &self.vm, &self.kvm]) {
            if fd > 0 {
                // SAFETY: closing fds this context opened.
                unsafe { libc::close(fd) };
            }
        }
        if self.mem != 0 {
            // SAFETY: our mapping.
            unsafe { libc::munmap(self.mem as *mut _, RAM) };
        }
    }
}

fn sb(fd: i32, cmd: u32, s: &S) -> Result<i64, i32> {
    let mut b = s.b.clone();
    b.resize(4096, 0);
    ioctl(fd, cmd, b.as_mut_ptr() as u64)
}

fn open_kvm() -> i32 {
    // SAFETY: plain open.
    unsafe { libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) }
}

fn memslot(c: &Ctx, flags: u64) -> Result<i64, i32> {
    let mut s = S::new(32);
    s.u32(4, flags).u64(16, RAM as u64).u64(24, c.mem as u64);
    sb(c.vm, KVM_SET_USER_MEMORY_REGION, &s)
}

fn setup(level: u32) -> Result<Ctx, String> {
    let mut c = Ctx { kvm: open_kvm(), vm: -1, vcpu: -1, efd: -1, mem: 0, made: vec![] };
    if c.kvm < 0 {
        return Err(format!("open /dev/kvm: {}", errno_name(errno())));
    }
    if level == 0 {
        return Ok(c);
    }
    c.vm = ioctl(c.kvm, KVM_CREATE_VM, 0).map_err(|e| format!("CREATE_VM: {}", errno_name(e)))? as i32;
    // SAFETY: fresh anonymous mapping; the guest code is written into it.
    let m = unsafe { libc::mmap(std::ptr::null_mut(), RAM, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0) };
    c.mem = m as usize;
    let code = [0xb0, 0x42, 0xe6, 0x10, 0xf4, 0xeb, 0xfe]; // mov al,0x42; out 0x10,al; hlt; jmp $
    unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), (c.mem + gen::CODE as usize) as *mut u8, code.len()) };
    // SAFETY: a new eventfd.
    c.efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    Ok(c)
}

type Step = fn(&mut Ctx) -> Result<i64, i32>;

struct Path {
    name: &'static str,
    /// Setup level (0: /dev/kvm only, 1: + VM, memory, eventfd).
    level: u32,
    /// Run after setup, without injection.
    prep: &'static [Step],
    /// The call under test, with injection; then again without.
    act: Step,
}

fn irqchip(c: &mut Ctx) -> Result<i64, i32> {
    ioctl(c.vm, KVM_CREATE_IRQCHIP, 0)
}
fn slot(c: &mut Ctx) -> Result<i64, i32> {
    memslot(c, 0)
}
fn vcpu(c: &mut Ctx) -> Result<i64, i32> {
    let fd = ioctl(c.vm, KVM_CREATE_VCPU, 0)?;
    if c.vcpu > 0 {
        c.made.push(fd as i32);
    } else {
        c.vcpu = fd as i32;
    }
    let mut r = crate::rng::Rng::new(0);
    let _ = sb(fd as i32, KVM_SET_SREGS, &gen::sregs_real(&mut r));
    let _ = sb(fd as i32, KVM_SET_REGS, &gen::regs(&mut r));
    Ok(fd)
}

/// KVM_RUN for at most 20 ms; interrupted (the guest halts) counts as run.
fn run_vcpu(c: &mut Ctx) -> Result<i64, i32> {
    match kvm_run(c.vcpu, 20_000) {
        Err(libc::EINTR) => Ok(0),
        r => r,
    }
}

const PATHS: &[Path] = &[
    Path {
        name: "create-vm",
        level: 0,
        prep: &[],
        act: |c| {
            let fd = ioctl(c.kvm, KVM_CREATE_VM, 0)?;
            c.made.push(fd as i32);
            Ok(fd)
        },
    },
    Path { name: "create-vcpu", level: 1, prep: &[], act: vcpu },
    Path { name: "create-vcpu-with-irqchip", level: 1, prep: &[irqchip], act: vcpu },
    Path { name: "set-memslot", level: 1, prep: &[], act: slot },
    Path { name: "set-memslot-dirty-log", level: 1, prep: &[], act: |c| memslot(c, 1) },
    Path { name: "delete-memslot", level: 1, prep: &[slot], act: |c| {
        let mut s = S::new(32);
        s.u64(24, c.mem as u64);
        let r = sb(c.vm, KVM_SET_USER_MEMORY_REGION, &s);
        if r.is_ok() {
            let _ = memslot(c, 0); // back for the retry
        }
        r
    } },
    Path { name: "create-irqchip", level: 1, prep: &[], act: irqchip },
    Path {
        name: "split-irqchip",
        level: 1,
        prep: &[],
        act: |c| {
            let mut s = S::new(104);
            s.u32(0, 121).u64(8, 24);
            sb(c.vm, KVM_ENABLE_CAP, &s)
        },
    },
    Path {
        name: "create-pit2",
        level: 1,
        prep: &[irqchip],
        act: |c| {
            let mut s = S::new(64);
            s.u32(0, 1);
            sb(c.vm, KVM_CREATE_PIT2, &s)
        },
    },
    Path {
        name: "set-gsi-routing",
        level: 1,
        prep: &[irqchip],
        act: |c| {
            let mut s = S::new(8 + 48 * 26);
            s.u32(0, 26);
            for i in 0..24 {
                let o = 8 + 48 * i;
                s.u32(o, i as u64).u32(o + 4, 1).u32(o + 16, 2).u32(o + 20, i as u64);
            }
            for i in 24..26 {
                let o = 8 + 48 * i;
                s.u32(o, i as u64).u32(o + 4, 2).u32(o + 16, 0xfee0_0000u32).u32(o + 24, 0x30);
            }
            let mut b = s.b.clone();
            ioctl(c.vm, KVM_SET_GSI_ROUTING, b.as_mut_ptr() as u64)
        },
    },
    Path {
        name: "irqfd-assign",
        level: 1,
        prep: &[irqchip],
        act: |c| {
            let mut s = S::new(32);
            s.u32(0, c.efd as u64).u32(4, 5);
            let r = sb(c.vm, KVM_IRQFD, &s);
            if r.is_ok() {
                s.u32(8, 1); // deassign, so the retry can assign again
                let _ = sb(c.vm, KVM_IRQFD, &s);
            }
            r
        },
    },
    Path {
        name: "ioeventfd-assign",
        level: 1,
        prep: &[],
        act: |c| {
            let mut s = S::new(64);
            s.u64(8, 0x80).u32(16, 1).u32(20, c.efd as u64).u32(24, 2);
            let r = sb(c.vm, KVM_IOEVENTFD, &s);
            if r.is_ok() {
                s.u32(24, 2 | 4);
                let _ = sb(c.vm, KVM_IOEVENTFD, &s);
            }
            r
        },
    },
    Path {
        name: "coalesced-mmio-register",
        level: 1,
        prep: &[],
        act: |c| {
            let mut s = S::new(16);
            s.u64(0, 0xd000_0000u32).u32(8, 0x1000);
            let r = sb(c.vm, KVM_REGISTER_COALESCED_MMIO, &s);
            if r.is_ok() {
                let _ = sb(c.vm, KVM_UNREGISTER_COALESCED_MMIO, &s);
            }
            r
        },
    },
    Path {
        name: "set-cpuid2",
        level: 1,
        prep: &[vcpu],
        act: |c| {
            let mut s = S::new(8 + 40 * 4);
            s.u32(0, 4);
            for (i, f) in [0u64, 1, 0x8000_0000, 0x8000_0001].iter().enumerate() {
                let o = 8 + 40 * i;
                s.u32(o, *f).u32(o + 12, if *f == 0 { 1 } else { 0x8000_0001u32 });
            }
            sb(c.vcpu, KVM_SET_CPUID2, &s)
        },
    },
    Path {
        name: "first-run",
        level: 1,
        prep: &[slot, vcpu],
        act: run_vcpu,
    },
    Path { name: "first-run-with-irqchip", level: 1, prep: &[irqchip, slot, vcpu], act: run_vcpu },
];

/// Module reference counts (kvm, kvm_amd).
fn refs() -> (i64, i64) {
    (modules::refcnt("kvm"), modules::refcnt("kvm_amd"))
}

fn run_path(p: &Path, max: u32, errs: &mut BTreeMap<String, u32>) -> Result<(u32, u32), String> {
    let base = refs();
    let mut tolerated = 0;
    let mut points = 0;
    for n in 1..=max {
        let mut c = setup(p.level)?;
        for (i, s) in p.prep.iter().enumerate() {
            s(&mut c).map_err(|e| format!("setup step {i} failed without injection: {}", errno_name(e)))?;
        }
        set_fail_nth(n);
        let r = (p.act)(&mut c);
        let left = fail_nth_left();
        if left != 0 {
            // Fewer than n allocations: every point was covered.
            r.map_err(|e| format!("without injection (n={n}): {}", errno_name(e)))?;
            points = n - 1;
            break;
        }
        match r {
            Ok(_) => tolerated += 1,
            Err(e) => *errs.entry(errno_name(e)).or_default() += 1,
        }
        // Nothing half-made may remain: the same call works now.
        (p.act)(&mut c).map_err(|e| format!("after failing allocation {n}, the call again without injection: {}", errno_name(e)))?;
        drop(c);
        if n == max {
            points = max;
        }
    }
    // The modules' reference counts come back (VM teardown may be deferred).
    for _ in 0..100 {
        if refs() == base {
            return Ok((points, tolerated));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("module refcounts (kvm, kvm_amd) {:?} after the run, {:?} before", refs(), base))
}

pub fn run(o: &Opts) -> bool {
    let mut ok = true;
    if let Err(e) = setup_attrs() {
        for p in PATHS {
            println!("SKIP {}/{}: fault injection unavailable: {e}", o.name, p.name);
        }
        return true;
    }
    let mut kmsg = crate::sys::Kmsg::open();
    crate::sys::kmsg_write("fault injection start");
    for p in PATHS {
        let mut errs = BTreeMap::new();
        let r = run_path(p, o.max_faults, &mut errs);
        let reps: Vec<String> = kmsg.as_mut().map(|k| k.read_new()).unwrap_or_default().into_iter().filter(|l| crate::sys::is_bad_line(l)).collect();
        let es: Vec<String> = errs.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let r = r.and_then(|(points, tol)| {
            println!("INFO {}/{} {points} allocation points; errors {}; tolerated {tol}", o.name, p.name, if es.is_empty() { "-".into() } else { es.join(",") });
            if points == 0 {
                println!("INFO {}/{}: no allocation under the modules' stack (filter)", o.name, p.name);
            }
            if reps.is_empty() {
                Ok(())
            } else {
                Err(format!("kernel report: {}", reps.join(" | ")))
            }
        });
        ok &= check(&format!("{}/{}", o.name, p.name), r);
    }
    crate::sys::kmsg_write("fault injection end");
    ok
}
