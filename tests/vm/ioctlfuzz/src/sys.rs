//! Process-wide plumbing: bounded KVM_RUN (a ticker thread that signals
//! threads whose run budget is over), the hang watchdog, the kernel log
//! watcher, raw syscall helpers.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// A raw ioctl: Ok(return value) or Err(errno).
pub fn ioctl(fd: i32, cmd: u32, arg: u64) -> Result<i64, i32> {
    // SAFETY: arguments point into memory this process owns (or is known to
    // be inaccessible); the kernel validates them.
    let r = unsafe { libc::ioctl(fd, cmd as _, arg) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as i64)
    }
}

pub fn errno_name(e: i32) -> String {
    let n = match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOBUFS => "ENOBUFS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::ESRCH => "ESRCH",
        _ => return format!("E{e}"),
    };
    n.into()
}

pub fn gettid() -> i32 {
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

pub fn now_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

// --- bounded KVM_RUN ------------------------------------------------------

const RUNNERS: usize = 64;
static RUN_TID: [AtomicI32; RUNNERS] = [const { AtomicI32::new(0) }; RUNNERS];
static RUN_DEADLINE: [AtomicU64; RUNNERS] = [const { AtomicU64::new(0) }; RUNNERS];
pub static KICKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_: i32) {}

/// Installs the no-op SIGUSR1 handler (no SA_RESTART, so a signalled
/// KVM_RUN returns EINTR) and starts the ticker thread.
pub fn start_ticker() {
    // SAFETY: installing a signal handler that does nothing.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
    std::thread::spawn(|| {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        loop {
            std::thread::sleep(Duration::from_micros(500));
            let now = now_ns();
            for i in 0..RUNNERS {
                let tid = RUN_TID[i].load(Ordering::Acquire);
                if tid != 0 && now >= RUN_DEADLINE[i].load(Ordering::Acquire) {
                    // SAFETY: signalling one of our own threads.
                    unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
                    KICKS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

/// While alive, the calling thread is signalled (SIGUSR1, every 0.5 ms) once
/// `usecs` have passed: a KVM_RUN in it returns with EINTR.
pub struct RunBudget(usize);

impl RunBudget {
    pub fn new(usecs: u32) -> RunBudget {
        let tid = gettid();
        loop {
            for i in 0..RUNNERS {
                if RUN_TID[i].load(Ordering::Relaxed) == 0 {
                    RUN_DEADLINE[i].store(now_ns() + usecs as u64 * 1000, Ordering::Release);
                    if RUN_TID[i].compare_exchange(0, tid, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                        return RunBudget(i);
                    }
                }
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for RunBudget {
    fn drop(&mut self) {
        RUN_TID[self.0].store(0, Ordering::Release);
    }
}

/// KVM_RUN on `fd`, bounded by `usecs`.
pub fn kvm_run(fd: i32, usecs: u32) -> Result<i64, i32> {
    let _b = RunBudget::new(usecs);
    ioctl(fd, crate::ioctls::KVM_RUN, 0)
}

// --- hang watchdog --------------------------------------------------------

pub static PROGRESS: AtomicU64 = AtomicU64::new(0);
pub static WATCHDOG_OFF: AtomicBool = AtomicBool::new(false);
pub static CURRENT: Mutex<String> = Mutex::new(String::new());

/// Starts the watchdog: with no progress for `secs`, `on_hang` runs (it
/// reports and saves the reproducer) and the process exits with status 3.
pub fn start_watchdog(secs: u64, on_hang: Box<dyn Fn(&str) + Send>) {
    std::thread::spawn(move || {
        let mut last = PROGRESS.load(Ordering::Relaxed);
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let p = PROGRESS.load(Ordering::Relaxed);
            if p != last || WATCHDOG_OFF.load(Ordering::Relaxed) {
                last = p;
                since = Instant::now();
                continue;
            }
            if since.elapsed() >= Duration::from_secs(secs) {
                let cur = CURRENT.lock().map(|c| c.clone()).unwrap_or_default();
                on_hang(&cur);
                // SAFETY: terminate now, whatever the other threads do.
                unsafe { libc::_exit(3) };
            }
        }
    });
}

/// The kernel stacks of this process's threads (root; CONFIG_STACKTRACE).
pub fn task_stacks() -> String {
    let mut s = String::new();
    if let Ok(d) = std::fs::read_dir("/proc/self/task") {
        for e in d.flatten() {
            let p = e.path();
            let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
            let st = std::fs::read_to_string(p.join("stack")).unwrap_or_default();
            s += &format!("task {} ({}) wchan {}\n{}\n", e.file_name().to_string_lossy(), comm.trim(), wchan, st);
        }
    }
    s
}

// --- kernel log ---------------------------------------------------------------

/// What makes a kernel log line a report of a bug.
pub fn is_bad_line(l: &str) -> bool {
    const BAD: [&str; 22] = [
        "BUG:", "WARNING:", "Oops", "general protection fault", "Kernel panic", "UBSAN:", "KASAN:",
        "circular locking", "inconsistent lock", "possible recursive locking", "lock held when returning",
        "suspicious RCU usage", "blocked for more than", "soft lockup", "rcu_sched self-detected",
        "rcu: INFO", "ODEBUG:", "list_add corruption", "list_del corruption", "kernel BUG at",
        "Unable to handle kernel", "panicked at",
    ];
    BAD.iter().any(|b| l.contains(b))
}

/// Reads /dev/kmsg from "now" on, without blocking.
pub struct Kmsg(i32);

impl Kmsg {
    pub fn open() -> Option<Kmsg> {
        // SAFETY: plain open/lseek.
        let fd = unsafe { libc::open(c"/dev/kmsg".as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        unsafe { libc::lseek(fd, 0, libc::SEEK_END) };
        Some(Kmsg(fd))
    }
    /// The messages logged since the last call.
    pub fn read_new(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: reading into our buffer.
            let n = unsafe { libc::read(self.0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                if errno() == libc::EPIPE {
                    continue; // overwritten records: go on with the next
                }
                break;
            }
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n as usize]);
            let msg = rec.split_once(';').map(|x| x.1).unwrap_or(&rec);
            for l in msg.lines() {
                if !l.starts_with(' ') || l.len() < 200 {
                    out.push(l.trim_end().to_string());
                }
            }
        }
        out
    }
}

/// Writes a line to the kernel log (markers around phases).
pub fn kmsg_write(s: &str) {
    let _ = std::fs::write("/dev/kmsg", format!("rkvm-ioctlfuzz: {s}\n"));
}
