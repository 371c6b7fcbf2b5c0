//! rkvm-ioctlfuzz: a structured, syzkaller-style KVM ioctl fuzzer, plus the
//! fault-injection and module-lifecycle tests. Runs inside the test VM
//! (scripts/fuzz.sh, tests/vm/init.sh mode `fuzz`) against our modules or
//! the in-tree ones, and prints PASS/FAIL/INFO lines like rkvm-vmtest.
//!
//!   rkvm-ioctlfuzz [--set ours|intree] [--pre KO].. [--kvm KO --amd KO]
//!       [--seed N] [--calls N] [--seconds S] [--races PERMILLE] [--nested-guest-mode]
//!       [--out DIR] [--name NAME] [--hang-secs S] [--min-calls N] [--workers N]
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
    /// KVM_SET_NESTED_STATE into guest mode with states that pass the
    /// checks, then KVM_RUN in L2: off by default, because QEMU 7.2's TCG
    /// nested SVM wedges a CPU of the test VM on some of them with either
    /// module set (seen with the in-tree one on the same program).
    pub nested_guest_mode: bool,
    pub out: Option<String>,
    pub name: String,
    pub hang_secs: u64,
    pub min_calls: u64,
    pub replay: Option<String>,
    pub repeat: u32,
    pub faults: bool,
    pub max_faults: u32,
    pub lifecycle: u32,
    pub workers: u64,
    /// Programs run: first_prog.. (worker w: first_prog + w, + workers, ...) up to last_prog.
    pub first_prog: u64,
    pub last_prog: u64,
    pub dump_prog: Option<u64>,
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
        nested_guest_mode: false,
        out: None,
        name: "fuzz".into(),
        hang_secs: 60,
        min_calls: 0,
        replay: None,
        repeat: 1,
        faults: false,
        max_faults: 64,
        lifecycle: 0,
        workers: 0,
        first_prog: 0,
        last_prog: u64::MAX,
        dump_prog: None,
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
            "--nested-guest-mode" => o.nested_guest_mode = true,
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
            "--workers" => o.workers = num(v()),
            "--first-prog" => o.first_prog = num(v()),
            "--last-prog" => o.last_prog = num(v()),
            "--dump-prog" => o.dump_prog = Some(num(v())),
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

/// Program `prog` of seed `seed` (generation is deterministic).
fn program(o: &Opts, prog: u64) -> Vec<Op> {
    let mut r = rng::Rng::new(o.seed.wrapping_mul(0x100_0000_01b3) ^ prog);
    let mut g = gen::Gen::new(&mut r);
    g.races = o.races > 0 && g.r.chance(o.races);
    g.nested_guest_mode = o.nested_guest_mode;
    g.program()
}

fn main() {
    let o = parse();
    if let Some(p) = o.dump_prog {
        // Writes program P of the seed as a reproducer file (no KVM needed).
        print!("{}", op::to_text(&format!("rkvm-ioctlfuzz program {p} of seed {:#x} (--races {})", o.seed, o.races), &program(&o, p)));
        return;
    }
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
    let mut o = o;
    if o.workers == 0 {
        o.workers = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    }
    let o = o;
    if o.lifecycle > 0 || o.faults || o.replay.is_some() {
        sys::start_ticker();
    }
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

/// What one worker process did (written to a file for the parent).
#[derive(Default)]
struct Summary {
    calls: u64,
    ioctls: u64,
    runs: u64,
    race_calls: u64,
    races: u64,
    forks: u64,
    programs: u64,
    reports: u64,
    kicks: u64,
    findings: Vec<(String, String)>,
    exits: std::collections::BTreeMap<String, u64>,
    time_by: std::collections::BTreeMap<String, (u64, u64)>,
}

impl Summary {
    fn to_text(&self) -> String {
        let mut t = format!(
            "calls {}\nioctls {}\nruns {}\nrace_calls {}\nraces {}\nforks {}\nprograms {}\nreports {}\nkicks {}\n",
            self.calls, self.ioctls, self.runs, self.race_calls, self.races, self.forks, self.programs, self.reports, self.kicks
        );
        for (k, v) in &self.exits {
            t += &format!("exit {k} {v}\n");
        }
        for (k, (us, n)) in &self.time_by {
            t += &format!("time {k} {us} {n}\n");
        }
        for (sig, p) in &self.findings {
            t += &format!("finding {p} {sig}\n");
        }
        t
    }
    fn merge_text(&mut self, t: &str) {
        for l in t.lines() {
            let f: Vec<&str> = l.splitn(4, ' ').collect();
            let n = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            match f[0] {
                "calls" => self.calls += n(1),
                "ioctls" => self.ioctls += n(1),
                "runs" => self.runs += n(1),
                "race_calls" => self.race_calls += n(1),
                "races" => self.races += n(1),
                "forks" => self.forks += n(1),
                "programs" => self.programs += n(1),
                "reports" => self.reports += n(1),
                "kicks" => self.kicks += n(1),
                "exit" => *self.exits.entry(f[1].into()).or_default() += n(2),
                "time" => {
                    let e = self.time_by.entry(f[1].into()).or_default();
                    e.0 += n(2);
                    e.1 += n(3);
                }
                "finding" => {
                    let sig = l.splitn(3, ' ').nth(2).unwrap_or("").to_string();
                    if !self.findings.iter().any(|x| x.0 == sig) {
                        self.findings.push((sig, f[1].into()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// The fuzzer: `--workers` processes (default: one per CPU), program p
/// run by worker p % workers, each with its share of the call budget.
fn fuzz(o: &Opts) -> bool {
    let start = Instant::now();
    let w = o.workers.max(1);
    let dir = o.out.clone().unwrap_or_else(|| "/tmp".into());
    let mut pids = vec![];
    for i in 0..w {
        // SAFETY: fork before any thread exists in this process (the
        // ticker starts in each worker).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            sys::start_ticker();
            let s = fuzz_worker(o, i, w);
            let _ = std::fs::write(format!("{dir}/{}-worker{i}.summary", o.name), s.to_text());
            let _ = std::io::stdout().flush();
            unsafe { libc::_exit(0) };
        }
        pids.push(pid);
    }
    let mut ok = true;
    let mut hang = false;
    let mut sum = Summary::default();
    for (i, pid) in pids.into_iter().enumerate() {
        let mut st = 0;
        // SAFETY: waiting for our child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        let code = if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) };
        if code != 0 {
            ok = false;
            hang |= code == 3;
            if code != 3 {
                fail(&format!("{}/worker{i}-finished", o.name), &format!("worker exited with status {code}"));
            }
        }
        let f = format!("{dir}/{}-worker{i}.summary", o.name);
        sum.merge_text(&std::fs::read_to_string(&f).unwrap_or_default());
        let _ = std::fs::remove_file(&f);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "INFO {}/stats {} calls: {} in programs ({} ioctls, {} KVM_RUN), {} in {} races; {} forks, {} programs, {w} workers, {:.0} s ({:.0} calls/s), {} kicks, seed {:#x}",
        o.name,
        sum.calls,
        sum.calls - sum.race_calls,
        sum.ioctls,
        sum.runs,
        sum.race_calls,
        sum.races,
        sum.forks,
        sum.programs,
        secs,
        sum.calls as f64 / secs.max(0.001),
        sum.kicks,
        o.seed
    );
    let exits: Vec<String> = sum.exits.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("INFO {}/exit-reasons {}", o.name, exits.join(" "));
    let mut tb: Vec<_> = sum.time_by.iter().collect();
    tb.sort_by_key(|x| std::cmp::Reverse(x.1 .0));
    let tops: Vec<String> = tb.iter().take(10).map(|(k, (us, n))| format!("{k} {:.1}s/{n}", *us as f64 / 1e6)).collect();
    println!("INFO {}/time-by-op {}", o.name, tops.join(", "));
    if sum.reports == 0 {
        pass(&format!("{}/no-kernel-reports", o.name));
    } else {
        ok = false;
        let list: Vec<String> = sum.findings.iter().map(|(s, p)| format!("{s} ({p})")).collect();
        fail(&format!("{}/no-kernel-reports", o.name), &format!("{} reports: {}", sum.reports, list.join("; ")));
    }
    if !hang {
        pass(&format!("{}/no-hang", o.name));
    }
    if o.min_calls > 0 {
        ok &= check(
            &format!("{}/calls-at-least-{}", o.name, o.min_calls),
            if sum.calls >= o.min_calls { Ok(()) } else { Err(format!("only {} calls in the time budget", sum.calls)) },
        );
    }
    ok
}

fn fuzz_worker(o: &Opts, worker: u64, workers: u64) -> Summary {
    let start = Instant::now();
    let out = o.out.clone();
    let (set, name, seed, hs) = (o.set.clone(), o.name.clone(), o.seed, o.hang_secs);
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
            fail(&format!("{name}/no-hang"), &format!("no progress for {hs} s in program {prog} op {opi} ({stuck:.100}); reproducer {p}"));
        }),
    );
    let mut kmsg = sys::Kmsg::open();
    let mut ex = exec::Exec::new();
    if let Some(d) = &o.dev {
        ex.kvm_path = d.clone();
    }
    let mut trace = o
        .out
        .as_ref()
        .and_then(|d| std::fs::File::create(format!("{d}/{}-trace.{worker}.txt", o.name)).ok())
        .map(std::io::BufWriter::new);
    let mut s = Summary::default();
    let budget = o.calls.div_ceil(workers);
    if worker == 0 {
        sys::kmsg_write(&format!("fuzz start: set {} seed {:#x}", o.set, o.seed));
    }
    let cur_file = o.out.as_ref().and_then(|d| std::fs::File::create(format!("{d}/{}-current.{worker}", o.name)).ok());
    let mut prog = o.first_prog + worker;
    loop {
        if ex.calls >= budget || (o.seconds > 0 && start.elapsed().as_secs() >= o.seconds) {
            break;
        }
        if prog > o.last_prog {
            break;
        }
        let ops = program(o, prog);
        *CUR_OPS.lock().unwrap() = ops.clone();
        CUR_PROG.store(prog, Ordering::Relaxed);
        // Which program runs now, in case the whole kernel wedges:
        // --dump-prog regenerates it on the host.
        if let Some(f) = cur_file.as_ref() {
            use std::os::unix::fs::FileExt;
            let _ = f.write_at(format!("{prog:<20}\n").as_bytes(), 0);
        }
        for (i, op) in ops.iter().enumerate() {
            CUR_OP.store(i as u64, Ordering::Relaxed);
            let t = Instant::now();
            let res = ex.exec(op);
            let lbl = op.label();
            let key = lbl.split(['/', '(', '+']).next().unwrap_or("").to_string();
            let e = s.time_by.entry(key).or_default();
            e.0 += t.elapsed().as_micros() as u64;
            e.1 += 1;
            match op {
                Op::Race { .. } => s.races += 1,
                Op::Fork { .. } => s.forks += 1,
                _ => {}
            }
            if let Some(t) = trace.as_mut() {
                if !matches!(op, Op::Race { .. }) {
                    let rs = match res {
                        Ok(_) => "ok".to_string(),
                        Err(e) => sys::errno_name(e),
                    };
                    let _ = writeln!(t, "{prog}.{i} {lbl} {rs}");
                }
            }
        }
        ex.reset();
        s.programs += 1;
        if let Some(t) = trace.as_mut() {
            let _ = t.flush();
        }
        if let Some(k) = kmsg.as_mut() {
            let reps = reports(&k.read_new());
            if !reps.is_empty() {
                s.reports += reps.len() as u64;
                let sig = signature(reps[0].lines().next().unwrap_or(""));
                if !s.findings.iter().any(|f| f.0 == sig) && s.findings.len() < 30 {
                    let hdr = format!(
                        "rkvm-ioctlfuzz reproducer ({} modules, seed {:#x}, program {prog}; {} workers: the other worker's program ran meanwhile).\nReplay: scripts/fuzz.sh --replay THIS_FILE --repeat 20 --sets SET\nKernel report:\n{}",
                        o.set,
                        o.seed,
                        workers,
                        reps[0]
                    );
                    let p = save(&o.out, &format!("repro-{}-{:x}-{prog}.txt", o.set, o.seed), &op::to_text(&hdr, &ops));
                    println!("INFO {}/report {sig} -> {p}", o.name);
                    let _ = std::io::stdout().flush();
                    s.findings.push((sig, p));
                }
            }
        }
        if worker == 0 && last_info_due(&start) {
            eprintln!("ioctlfuzz: {} calls, {} programs in worker 0, {}s", ex.calls, s.programs, start.elapsed().as_secs());
        }
        prog += workers;
    }
    if worker == 0 {
        sys::kmsg_write("fuzz end");
    }
    if let Some(mut t) = trace {
        let _ = t.flush();
    }
    s.calls = ex.calls;
    s.ioctls = ex.ioctls;
    s.runs = ex.runs;
    s.race_calls = ex.race_calls;
    s.kicks = sys::KICKS.load(Ordering::Relaxed);
    for (k, v) in &ex.exits {
        let name = if *k >= 1000 { sys::errno_name((*k - 1000) as i32) } else { k.to_string() };
        *s.exits.entry(name).or_default() += v;
    }
    s
}

fn last_info_due(start: &Instant) -> bool {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let t = start.elapsed().as_secs() / 60;
    LAST.swap(t, Ordering::Relaxed) != t
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
