//! rkvm-ioctlfuzz: a structured, syzkaller-style KVM ioctl fuzzer, plus the
//! fault-injection and module-lifecycle tests. Runs inside the test VM
//! (scripts/fuzz.sh, tests/vm/init.sh mode `fuzz`) against our modules or
//! the in-tree ones, and prints PASS/FAIL/INFO lines like rkvm-vmtest.
//!
//!   rkvm-ioctlfuzz [--set ours|intree] [--pre KO].. [--kvm KO --amd KO]
//!       [--seed N] [--calls N] [--seconds S] [--races PERMILLE]
//!       [--out DIR] [--name NAME] [--hang-secs S] [--min-calls N]
//!   rkvm-ioctlfuzz --replay FILE [--repeat N] [module options]
//!   rkvm-ioctlfuzz --faults [--max-faults N] [module options]
//!   rkvm-ioctlfuzz --lifecycle N [module options]
//!
//! Module options given: the modules are loaded first and, after the run,
//! must unload (nothing left referenced) and load again.

mod exec;
mod faults;
mod gen;
mod ioctls;
mod lifecycle;
mod modules;
mod op;
mod race;
mod rng;
mod sys;

use op::Op;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct Opts {
    pub set: String,
    pub m: modules::Modules,
    pub seed: u64,
    pub calls: u64,
    pub seconds: u64,
    pub races: u64,
    pub out: Option<String>,
    pub name: String,
    pub hang_secs: u64,
    pub min_calls: u64,
    pub replay: Option<String>,
    pub repeat: u32,
    pub faults: bool,
    pub max_faults: u32,
    pub lifecycle: u32,
    /// Use this path instead of /dev/kvm (e.g. /dev/null to try the
    /// fuzzer itself outside the test VM).
    pub dev: Option<String>,
}

fn usage() -> ! {
    eprintln!("{}", include_str!("main.rs").lines().skip(5).take(9).map(|l| l.trim_start_matches("//!")).collect::<Vec<_>>().join("\n"));
    std::process::exit(2);
}

fn parse() -> Opts {
    let mut o = Opts {
        set: "ours".into(),
        m: Default::default(),
        seed: 1,
        calls: 100_000,
        seconds: 0,
        races: 100,
        out: None,
        name: "fuzz".into(),
        hang_secs: 60,
        min_calls: 0,
        replay: None,
        repeat: 1,
        faults: false,
        max_faults: 200,
        lifecycle: 0,
        dev: None,
    };
    let mut a = std::env::args().skip(1);
    while let Some(k) = a.next() {
        let mut v = || a.next().unwrap_or_else(|| usage());
        let num = |s: String| -> u64 {
            let s = s.replace('_', "");
            if let Some(h) = s.strip_prefix("0x") {
                u64::from_str_radix(h, 16).unwrap_or_else(|_| usage())
            } else if let Some(e) = s.strip_prefix("1e") {
                10u64.pow(e.parse().unwrap_or_else(|_| usage()))
            } else {
                s.parse().unwrap_or_else(|_| usage())
            }
        };
        match k.as_str() {
            "--set" => o.set = v(),
            "--pre" => o.m.pre.push(v()),
            "--kvm" => o.m.kvm = v(),
            "--amd" => o.m.amd = v(),
            "--intel" => o.m.intel = v(),
            "--seed" => o.seed = num(v()),
            "--calls" => o.calls = num(v()),
            "--seconds" => o.seconds = num(v()),
            "--races" => o.races = num(v()),
            "--out" => o.out = Some(v()),
            "--name" => o.name = v(),
            "--hang-secs" => o.hang_secs = num(v()),
            "--min-calls" => o.min_calls = num(v()),
            "--replay" => o.replay = Some(v()),
            "--repeat" => o.repeat = num(v()) as u32,
            "--faults" => o.faults = true,
            "--max-faults" => o.max_faults = num(v()) as u32,
            "--lifecycle" => o.lifecycle = num(v()) as u32,
            "--dev" => o.dev = Some(v()),
            _ => usage(),
        }
    }
    o
}

pub fn pass(name: &str) {
    println!("PASS {name}");
    let _ = std::io::stdout().flush();
}

pub fn fail(name: &str, why: &str) {
    println!("FAIL {name}: {}", why.replace('\n', " | "));
    let _ = std::io::stdout().flush();
}

pub fn check(name: &str, r: Result<(), String>) -> bool {
    match r {
        Ok(()) => {
            pass(name);
            true
        }
        Err(e) => {
            fail(name, &e);
            false
        }
    }
}

extern "C" fn on_fatal(sig: i32) {
    let m = b"rkvm-ioctlfuzz: fatal signal in the fuzzer itself\n";
    // SAFETY: async-signal-safe write and _exit.
    unsafe {
        libc::write(2, m.as_ptr().cast(), m.len());
        libc::_exit(128 + sig);
    }
}

fn main() {
    let o = parse();
    // Never fuzz a real host's KVM: only inside the rkvm test VM (PID 1 is
    // tests/vm/init.sh, rkvm.mode= on the kernel command line), or with --dev.
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if o.dev.is_none() && !cmdline.contains("rkvm.mode=") {
        eprintln!("rkvm-ioctlfuzz: not inside the rkvm test VM (no rkvm.mode= in /proc/cmdline); refusing to touch this machine's /dev/kvm (use scripts/fuzz.sh, or --dev PATH)");
        std::process::exit(2);
    }
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE] {
        // SAFETY: installing a handler that only writes and exits.
        unsafe { libc::signal(sig, on_fatal as *const () as usize) };
    }
    sys::now_ns();
    sys::start_ticker();
    if o.lifecycle > 0 {
        let ok = lifecycle::run(&o);
        std::process::exit(if ok { 0 } else { 1 });
    }
    if o.m.given() {
        if let Err(e) = o.m.load_all() {
            fail(&format!("{}/load", o.name), &e);
            std::process::exit(1);
        }
    }
    let mut ok = if o.faults {
        faults::run(&o)
    } else if let Some(f) = &o.replay {
        replay(&o, f)
    } else {
        fuzz(&o)
    };
    if o.m.given() {
        sys::WATCHDOG_OFF.store(true, Ordering::Relaxed);
        ok &= check(&format!("{}/modules-unload-after", o.name), o.m.unload_all());
        ok &= check(&format!("{}/modules-reload-after", o.name), (|| {
            o.m.load_all()?;
            let fd = unsafe { libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR) };
            if fd < 0 {
                return Err(format!("open /dev/kvm: {}", sys::errno_name(sys::errno())));
            }
            let vm = sys::ioctl(fd, ioctls::KVM_CREATE_VM, 0).map_err(|e| format!("KVM_CREATE_VM: {}", sys::errno_name(e)))?;
            unsafe {
                libc::close(vm as i32);
                libc::close(fd);
            }
            o.m.unload_all()
        })());
    }
    std::process::exit(if ok { 0 } else { 1 });
}

/// The program being executed (for the hang report).
static CUR_OPS: Mutex<Vec<Op>> = Mutex::new(Vec::new());
static CUR_PROG: AtomicU64 = AtomicU64::new(0);
static CUR_OP: AtomicU64 = AtomicU64::new(0);

/// Normalizes a kernel report line into a signature (no addresses, pids,
/// timestamps).
fn signature(l: &str) -> String {
    let mut s = String::new();
    let mut last_digit = false;
    for ch in l.chars() {
        if ch.is_ascii_hexdigit() && (ch.is_ascii_digit() || last_digit) {
            if !last_digit {
                s.push('N');
            }
            last_digit = true;
        } else {
            last_digit = false;
            s.push(ch);
        }
    }
    s.chars().take(120).collect()
}

fn save(out: &Option<String>, file: &str, text: &str) -> String {
    let dir = out.clone().unwrap_or_else(|| "/tmp".into());
    let p = format!("{dir}/{file}");
    let _ = std::fs::write(&p, text);
    p
}

/// The kernel's report lines among `lines`, with some context.
fn reports(lines: &[String]) -> Vec<String> {
    let mut v = vec![];
    for (i, l) in lines.iter().enumerate() {
        if sys::is_bad_line(l) {
            let end = (i + 30).min(lines.len());
            v.push(lines[i..end].join("\n"));
        }
    }
    v
}

fn fuzz(o: &Opts) -> bool {
    let start = Instant::now();
    let out = o.out.clone();
    let (set, name, seed) = (o.set.clone(), o.name.clone(), o.seed);
    sys::start_watchdog(
        o.hang_secs,
        Box::new(move |_cur| {
            let prog = CUR_PROG.load(Ordering::Relaxed);
            let opi = CUR_OP.load(Ordering::Relaxed) as usize;
            let ops = CUR_OPS.lock().map(|o| o.clone()).unwrap_or_default();
            let stuck = ops.get(opi).map(|o| o.to_line()).unwrap_or_default();
            let hdr = format!(
                "rkvm-ioctlfuzz reproducer: HANG (no progress) on {set}, seed {seed:#x} program {prog}, op {opi}:\n{stuck}\n\nkernel stacks of the fuzzer's threads:\n{}",
                sys::task_stacks()
            );
            let p = save(&out, &format!("repro-{set}-hang-{seed:x}-{prog}.txt"), &op::to_text(&hdr, &ops));
            fail(&format!("{name}/no-hang"), &format!("no progress for the watchdog's limit in op {opi} ({stuck:.100}); reproducer {p}"));
        }),
    );
    let mut kmsg = sys::Kmsg::open();
    let mut ex = exec::Exec::new();
    if let Some(d) = &o.dev {
        ex.kvm_path = d.clone();
    }
    let mut trace = o.out.as_ref().and_then(|d| std::fs::File::create(format!("{d}/{}-trace.txt", o.name)).ok()).map(std::io::BufWriter::new);
    let mut findings: Vec<(String, String)> = vec![];
    let mut nreports = 0u64;
    let (mut programs, mut races, mut forks) = (0u64, 0u64, 0u64);
    let mut last_info = Instant::now();
    sys::kmsg_write(&format!("fuzz start: set {} seed {:#x}", o.set, o.seed));
    for prog in 0u64.. {
        if ex.calls >= o.calls || (o.seconds > 0 && start.elapsed().as_secs() >= o.seconds) {
            break;
        }
        let mut r = rng::Rng::new(o.seed.wrapping_mul(0x100_0000_01b3) ^ prog);
        let mut g = gen::Gen::new(&mut r);
        g.races = o.races > 0 && g.r.chance(o.races);
        let ops = g.program();
        *CUR_OPS.lock().unwrap() = ops.clone();
        CUR_PROG.store(prog, Ordering::Relaxed);
        for (i, op) in ops.iter().enumerate() {
            CUR_OP.store(i as u64, Ordering::Relaxed);
            let res = ex.exec(op);
            match op {
                Op::Race { .. } => races += 1,
                Op::Fork { .. } => forks += 1,
                _ => {}
            }
            if let Some(t) = trace.as_mut() {
                if !matches!(op, Op::Race { .. }) {
                    let rs = match res {
                        Ok(_) => "ok".to_string(),
                        Err(e) => sys::errno_name(e),
                    };
                    let _ = writeln!(t, "{prog}.{i} {} {rs}", op.label());
                }
            }
        }
        ex.reset();
        programs += 1;
        if let Some(k) = kmsg.as_mut() {
            let lines = k.read_new();
            let reps = reports(&lines);
            if !reps.is_empty() {
                nreports += reps.len() as u64;
                let sig = signature(reps[0].lines().next().unwrap_or(""));
                if !findings.iter().any(|f| f.0 == sig) && findings.len() < 30 {
                    let hdr = format!(
                        "rkvm-ioctlfuzz reproducer ({} modules, seed {:#x}, program {prog}).\nReplay: rkvm-ioctlfuzz --replay THIS_FILE [--repeat 20] --set SET --kvm KO --amd KO\nKernel report:\n{}",
                        o.set,
                        o.seed,
                        reps[0]
                    );
                    let p = save(&o.out, &format!("repro-{}-{:x}-{prog}.txt", o.set, o.seed), &op::to_text(&hdr, &ops));
                    println!("INFO {}/report {sig} -> {p}", o.name);
                    findings.push((sig, p));
                }
            }
        }
        if last_info.elapsed().as_secs() >= 30 {
            last_info = Instant::now();
            eprintln!("ioctlfuzz: {} calls, {programs} programs, {}s", ex.calls, start.elapsed().as_secs());
        }
    }
    sys::kmsg_write("fuzz end");
    if let Some(mut t) = trace {
        let _ = t.flush();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "INFO {}/stats {} calls: {} in programs ({} ioctls, {} KVM_RUN), {} in {races} races; {forks} forks, {programs} programs, {:.0} s ({:.0} calls/s), {} kicks, seed {:#x}",
        o.name,
        ex.calls,
        ex.calls - ex.race_calls,
        ex.ioctls,
        ex.runs,
        ex.race_calls,
        secs,
        ex.calls as f64 / secs.max(0.001),
        sys::KICKS.load(Ordering::Relaxed),
        o.seed
    );
    let exits: Vec<String> = ex.exits.iter().map(|(k, v)| if *k >= 1000 { format!("{}={v}", sys::errno_name((*k - 1000) as i32)) } else { format!("{k}={v}") }).collect();
    println!("INFO {}/exit-reasons {}", o.name, exits.join(" "));
    let mut ok = true;
    if nreports == 0 {
        pass(&format!("{}/no-kernel-reports", o.name));
    } else {
        ok = false;
        let list: Vec<String> = findings.iter().map(|(s, p)| format!("{s} ({p})")).collect();
        fail(&format!("{}/no-kernel-reports", o.name), &format!("{nreports} reports: {}", list.join("; ")));
    }
    pass(&format!("{}/no-hang", o.name));
    if o.min_calls > 0 {
        ok &= check(
            &format!("{}/calls-at-least-{}", o.name, o.min_calls),
            if ex.calls >= o.min_calls { Ok(()) } else { Err(format!("only {} calls in the time budget", ex.calls)) },
        );
    }
    ok
}

fn replay(o: &Opts, file: &str) -> bool {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            fail("replay", &format!("{file}: {e}"));
            return false;
        }
    };
    let ops = match op::from_text(&text) {
        Ok(x) => x,
        Err(e) => {
            fail("replay", &format!("{file}: {e}"));
            return false;
        }
    };
    let mut kmsg = sys::Kmsg::open();
    let mut ex = exec::Exec::new();
    if let Some(d) = &o.dev {
        ex.kvm_path = d.clone();
    }
    let mut reps = vec![];
    for round in 0..o.repeat.max(1) {
        for (i, op) in ops.iter().enumerate() {
            let r = ex.exec(op);
            if round == 0 {
                let rs = match r {
                    Ok(v) => format!("ok ({v})"),
                    Err(e) => sys::errno_name(e),
                };
                println!("{i:5} {:<50} {rs}", op.label());
            }
        }
        ex.reset();
        if let Some(k) = kmsg.as_mut() {
            reps.extend(reports(&k.read_new()));
        }
    }
    for r in &reps {
        println!("kernel report:\n{r}");
    }
    check(&format!("{}/replay-no-kernel-reports", o.name), if reps.is_empty() { Ok(()) } else { Err(format!("{} reports", reps.len())) })
}
