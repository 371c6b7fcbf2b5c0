//! Fault injection: every creation path (VM, vCPU, memslot, irqchip, PIT,
//! GSI routing, irqfd, ioeventfd, coalesced zone, CPUID, first KVM_RUN) is
//! run with its 1st, 2nd, ... Nth allocation failing (failslab and
//! fail_page_alloc through /proc/thread-self/fail-nth, counted only for
//! allocations whose stack passes through the modules under test: the
//! stack-trace filter require-start/require-end). Each injected failure
//! must give an error (or be tolerated) and leave nothing behind: the same
//! call made again without injection succeeds, the modules' reference
//! counts return to where they were, no kernel report (but the allocator's
//! own warn_alloc() for the failure injected, which scripts/fuzz.sh ignores
//! between the "fault injection start" and "end" kmsg lines); the kmemleak
//! scan after the run (tests/vm/init.sh) finds no leak.

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
    /// Run without injection after `act` succeeded, so that it can be
    /// made again (e.g. deassign what was assigned).
    undo: Option<Step>,
    /// Whether `act` can be made twice in a row (a second KVM_CREATE_VCPU
    /// of the same id or KVM_CREATE_IRQCHIP fails with EEXIST by design):
    /// when an injected failure was tolerated (the call succeeded), the
    /// retry is then skipped; the refcount and kmemleak checks remain.
    repeatable: bool,
}

const fn path(name: &'static str, level: u32, prep: &'static [Step], act: Step) -> Path {
    Path { name, level, prep, act, undo: None, repeatable: true }
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

fn delete_slot(c: &mut Ctx) -> Result<i64, i32> {
    let mut s = S::new(32);
    s.u64(24, c.mem as u64);
    sb(c.vm, KVM_SET_USER_MEMORY_REGION, &s)
}

fn irqfd_args(c: &Ctx, deassign: bool) -> S {
    let mut s = S::new(32);
    s.u32(0, c.efd as u64).u32(4, 5).u32(8, deassign as u64);
    s
}

fn ioeventfd_args(c: &Ctx, deassign: bool) -> S {
    let mut s = S::new(64);
    s.u64(8, 0x80).u32(16, 1).u32(20, c.efd as u64).u32(24, if deassign { 2 | 4 } else { 2 });
    s
}

fn coalesced_args() -> S {
    let mut s = S::new(16);
    s.u64(0, 0xd000_0000u32).u32(8, 0x1000);
    s
}

const PATHS: &[Path] = &[
    path("create-vm", 0, &[], |c| {
        let fd = ioctl(c.kvm, KVM_CREATE_VM, 0)?;
        c.made.push(fd as i32);
        Ok(fd)
    }),
    Path { repeatable: false, ..path("create-vcpu", 1, &[], vcpu) },
    Path { repeatable: false, ..path("create-vcpu-with-irqchip", 1, &[irqchip], vcpu) },
    path("set-memslot", 1, &[], slot),
    path("set-memslot-dirty-log", 1, &[], |c| memslot(c, 1)),
    // Deleted, then made again (without injection) for the retry.
    Path { undo: Some(slot), ..path("delete-memslot", 1, &[slot], delete_slot) },
    Path { repeatable: false, ..path("create-irqchip", 1, &[], irqchip) },
    Path {
        repeatable: false,
        ..path("split-irqchip", 1, &[], |c| {
            let mut s = S::new(104);
            s.u32(0, 121).u64(8, 24);
            sb(c.vm, KVM_ENABLE_CAP, &s)
        })
    },
    Path {
        repeatable: false,
        ..path("create-pit2", 1, &[irqchip], |c| {
            let mut s = S::new(64);
            s.u32(0, 1);
            sb(c.vm, KVM_CREATE_PIT2, &s)
        })
    },
    path("set-gsi-routing", 1, &[irqchip], |c| {
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
    }),
    // Deassigned after success, so the retry can assign again.
    Path {
        undo: Some(|c| sb(c.vm, KVM_IRQFD, &irqfd_args(c, true))),
        ..path("irqfd-assign", 1, &[irqchip], |c| sb(c.vm, KVM_IRQFD, &irqfd_args(c, false)))
    },
    Path {
        undo: Some(|c| sb(c.vm, KVM_IOEVENTFD, &ioeventfd_args(c, true))),
        ..path("ioeventfd-assign", 1, &[], |c| sb(c.vm, KVM_IOEVENTFD, &ioeventfd_args(c, false)))
    },
    Path {
        undo: Some(|c| sb(c.vm, KVM_UNREGISTER_COALESCED_MMIO, &coalesced_args())),
        ..path("coalesced-mmio-register", 1, &[], |c| sb(c.vm, KVM_REGISTER_COALESCED_MMIO, &coalesced_args()))
    },
    path("set-cpuid2", 1, &[vcpu], |c| {
        let mut s = S::new(8 + 40 * 4);
        s.u32(0, 4);
        for (i, f) in [0u64, 1, 0x8000_0000, 0x8000_0001].iter().enumerate() {
            let o = 8 + 40 * i;
            s.u32(o, *f).u32(o + 12, if *f == 0 { 1 } else { 0x8000_0001u32 });
        }
        sb(c.vcpu, KVM_SET_CPUID2, &s)
    }),
    path("first-run", 1, &[slot, vcpu], run_vcpu),
    path("first-run-with-irqchip", 1, &[irqchip, slot, vcpu], run_vcpu),
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
        let retry = match r {
            Ok(_) => {
                tolerated += 1;
                if let Some(u) = p.undo {
                    u(&mut c).map_err(|e| format!("after tolerated failing allocation {n}, undoing the call: {}", errno_name(e)))?;
                }
                p.repeatable
            }
            Err(e) => {
                *errs.entry(errno_name(e)).or_default() += 1;
                true
            }
        };
        // Nothing half-made may remain: the same call works now.
        if retry {
            let first = match r {
                Ok(_) => "succeeded".to_string(),
                Err(e) => format!("failed with {}", errno_name(e)),
            };
            (p.act)(&mut c).map_err(|e| {
                format!("failing allocation {n}: the call {first}; made again without injection: {}", errno_name(e))
            })?;
        }
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
    ok &= check(&format!("{}/no-kmemleak-in-kvm", o.name), kmemleak(o));
    ok
}

/// A kmemleak scan while the modules are still loaded (so backtraces name
/// their functions), saved to OUT/kmemleak-NAME.txt: any suspect whose
/// allocation passed through kvm or kvm_amd fails. Skipped (Ok) without
/// kmemleak.
fn kmemleak(o: &Opts) -> Result<(), String> {
    let f = format!("{DBG}/kmemleak");
    if std::fs::metadata(&f).is_err() {
        return Ok(());
    }
    // Objects younger than 5 s are never reported; two scans settle it.
    std::thread::sleep(std::time::Duration::from_secs(6));
    for _ in 0..2 {
        wr(&f, "scan")?;
    }
    let rep = std::fs::read_to_string(&f).map_err(|e| format!("read {f}: {e}"))?;
    if let Some(d) = &o.out {
        let _ = std::fs::write(format!("{d}/kmemleak-{}.txt", o.name), &rep);
    }
    let ours: Vec<&str> = rep
        .split("unreferenced object")
        .filter(|b| b.contains("[kvm]") || b.contains("[kvm_amd]") || b.contains("[kvm_intel]"))
        .collect();
    // Forget them, so the final scan (after unload) does not count them again.
    let _ = wr(&f, "clear");
    if ours.is_empty() {
        Ok(())
    } else {
        Err(format!("{} suspect(s) allocated through kvm/kvm_amd; first:{}", ours.len(), ours[0].lines().take(14).collect::<Vec<_>>().join(" | ")))
    }
}
