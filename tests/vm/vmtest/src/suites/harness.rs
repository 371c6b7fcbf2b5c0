//! Running guest tests so that no kernel bug can hang or crash the suite:
//!
//! - every test runs in its own thread; a test that does not finish within
//!   [`TEST_TIMEOUT`] is reported as FAIL and its thread abandoned (it is
//!   stuck in the kernel);
//! - every KVM_RUN is armed with a watchdog that signals the vCPU thread
//!   (SIGUSR1, no-op handler) when the run takes longer than its deadline,
//!   which makes a signal-honouring KVM_RUN return EINTR; the runner then
//!   reports a timeout instead of waiting forever;
//! - panics become FAIL lines;
//! - after repeated hangs the remaining KVM_RUNs fail at once, so a broken
//!   run loop costs seconds, not the VM's time limit.

use crate::report::Report;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, Once};
use std::time::{Duration, Instant};

pub type TestResult = Result<(), String>;

/// One named test.
pub struct Test {
    pub name: String,
    pub f: Box<dyn FnOnce() -> TestResult + Send>,
}

pub fn test(name: impl Into<String>, f: impl FnOnce() -> TestResult + Send + 'static) -> Test {
    Test { name: name.into(), f: Box::new(f) }
}

/// Longest a whole test may take before it is abandoned.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default deadline of one KVM_RUN (each exit costs ~75 µs under TCG; a
/// test's single run is at most milliseconds).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(5);

/// Tests abandoned with a thread stuck in the kernel.
static ABANDONED: AtomicUsize = AtomicUsize::new(0);
/// KVM_RUNs ended by the watchdog.
static RUN_TIMEOUTS: AtomicUsize = AtomicUsize::new(0);
const MAX_ABANDONED: usize = 2;
const MAX_RUN_TIMEOUTS: usize = 5;

const SKIP_MARK: &str = "\u{1}skip\u{1}";

/// Ends a test as SKIP.
#[allow(dead_code)]
pub fn skip<T>(why: impl std::fmt::Display) -> Result<T, String> {
    Err(format!("{SKIP_MARK}{why}"))
}

/// `Err` when earlier KVM_RUNs hung often enough that running guests again
/// would only burn the time limit.
pub fn run_allowed() -> Result<(), String> {
    let a = ABANDONED.load(Ordering::Relaxed);
    let t = RUN_TIMEOUTS.load(Ordering::Relaxed);
    if a >= MAX_ABANDONED {
        Err(format!("not run: {a} earlier tests hung inside KVM_RUN (signals ignored)"))
    } else if t >= MAX_RUN_TIMEOUTS {
        Err(format!("not run: {t} earlier KVM_RUNs did not return before their deadline"))
    } else {
        Ok(())
    }
}

pub fn note_run_timeout() {
    RUN_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
}

/// Takes back one [`note_run_timeout`] (for the test of the watchdog
/// itself, whose timeout is intended).
pub fn forgive_run_timeout() {
    let _ = RUN_TIMEOUTS.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

extern "C" fn noop_handler(_: libc::c_int) {}

/// Installs no-op handlers for SIGUSR1 (watchdog) and SIGUSR2 (tests that
/// interrupt a guest on purpose), so those signals interrupt KVM_RUN
/// without killing the process.
pub fn install_signal_handlers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGUSR1, libc::SIGUSR2] {
            // SAFETY: a zeroed sigaction with a valid handler and an empty
            // mask; the handler does nothing, so it is async-signal-safe.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = noop_handler as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
    });
}

struct Slot {
    id: u64,
    tid: libc::pthread_t,
    deadline: Instant,
    fired: bool,
}

static SLOTS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn start_watchdog() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        install_signal_handlers();
        std::thread::Builder::new()
            .name("kvm-run-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(20));
                let now = Instant::now();
                let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
                for s in slots.iter_mut().filter(|s| now >= s.deadline) {
                    // SAFETY: the slot is removed (under this lock) before
                    // its thread can exit, so `tid` names a live thread.
                    unsafe { libc::pthread_kill(s.tid, libc::SIGUSR1) };
                    s.fired = true;
                }
            })
            .expect("spawn watchdog");
    });
}

/// A watchdog armed for the calling thread until dropped.
pub struct Armed {
    id: u64,
}

impl Armed {
    pub fn new(timeout: Duration) -> Self {
        start_watchdog();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        // SAFETY: pthread_self has no preconditions.
        let tid = unsafe { libc::pthread_self() };
        SLOTS.lock().unwrap_or_else(|e| e.into_inner()).push(Slot {
            id,
            tid,
            deadline: Instant::now() + timeout,
            fired: false,
        });
        Armed { id }
    }

    /// Disarms; true when the watchdog had to signal the thread.
    pub fn disarm(self) -> bool {
        let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        let fired = slots.iter().find(|s| s.id == self.id).is_some_and(|s| s.fired);
        slots.retain(|s| s.id != self.id);
        drop(slots);
        std::mem::forget(self);
        fired
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        SLOTS.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| s.id != self.id);
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic".into()
    }
}

/// Runs the tests one after the other, each isolated in a thread.
pub fn run_all(r: &mut Report, tests: Vec<Test>) {
    if r.listing {
        for t in tests {
            r.skip(&t.name, "");
        }
        return;
    }
    install_signal_handlers();
    for t in tests {
        let (tx, rx) = mpsc::channel();
        let f = t.f;
        let spawned = std::thread::Builder::new().name("guest-test".into()).spawn(move || {
            let res = catch_unwind(AssertUnwindSafe(f)).map_err(panic_text);
            let _ = tx.send(res);
        });
        if let Err(e) = spawned {
            r.record(&t.name, Err(format!("cannot spawn the test thread: {e}")));
            continue;
        }
        let res = match rx.recv_timeout(TEST_TIMEOUT) {
            Ok(Ok(res)) => res,
            Ok(Err(p)) => Err(format!("panicked: {p}")),
            Err(_) => {
                ABANDONED.fetch_add(1, Ordering::Relaxed);
                Err(format!(
                    "hung for {} s: the test thread is stuck (in the kernel?) and was abandoned",
                    TEST_TIMEOUT.as_secs()
                ))
            }
        };
        match res {
            Err(e) if e.starts_with(SKIP_MARK) => r.skip(&t.name, &e[SKIP_MARK.len()..]),
            other => r.record(&t.name, other),
        }
    }
}
