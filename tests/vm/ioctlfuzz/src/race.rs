//! Concurrency scenarios: several threads on the same VM and vCPU fds at
//! once. Each scenario builds its own VM (so it is one self-contained op
//! in a program and replays alone), runs its threads for `ms`
//! milliseconds, tears down, and returns how many calls it made.

use crate::gen::{self, S};
use crate::ioctls::*;
use crate::rng::Rng;
use crate::sys::{self, ioctl, kvm_run};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const NAMES: [&str; 10] = [
    "run-vs-memslot",
    "irqfd-vs-eventfd-close",
    "vcpu-close-during-run",
    "vm-close-with-running-vcpus",
    "munmap-under-run",
    "fork-with-running-vcpus",
    "ioctl-storm",
    "ioeventfd-coalesced-vs-run",
    "create-races",
    "irq-routing-vs-injection",
];

const RAM: usize = 0x40000;

/// A VM with RAM at GPA 0 (RAM bytes), vCPUs in real mode at gen::CODE.
struct Vm {
    kvm: i32,
    vm: i32,
    mem: usize,
    vcpus: Vec<i32>,
    runs: Vec<usize>,
}

fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing an fd this scenario opened.
        unsafe { libc::close(fd) };
    }
}

fn buf_ioctl(fd: i32, cmd: u32, s: &S) -> Result<i64, i32> {
    let mut b = s.b.clone();
    b.resize(b.len().max(4096), 0);
    ioctl(fd, cmd, b.as_mut_ptr() as u64)
}

fn memslot(vm: i32, slot: u32, flags: u32, gpa: u64, size: u64, uaddr: u64) -> Result<i64, i32> {
    let mut s = S::new(32);
    s.u32(0, slot as u64).u32(4, flags as u64).u64(8, gpa).u64(16, size).u64(24, uaddr);
    buf_ioctl(vm, KVM_SET_USER_MEMORY_REGION, &s)
}

/// Guest code for races: touches memory in a loop, with port and MMIO
/// accesses now and then.
fn race_code(io: bool) -> Vec<u8> {
    let mut c = vec![
        0xfe, 0x06, 0x00, 0x20, // inc byte [0x2000]
        0xa0, 0x00, 0x90, // mov al, [0x9000]
        0xa2, 0x00, 0x30, // mov [0x3000], al
        0xfe, 0x06, 0x00, 0x70, // inc byte [0x7000]
    ];
    if io {
        c.extend([0xe6, 0x80]); // out 0x80, al
        c.extend([0xb8, 0x00, 0x50, 0x8e, 0xc0, 0x26, 0xa2, 0x10, 0x00]); // es=0x5000; mov es:[0x10], al (MMIO)
        c.extend([0xfb, 0x90]); // sti; nop
    }
    let back = -(c.len() as i32 + 2);
    c.extend([0xeb, back as u8]);
    c
}

impl Vm {
    fn new(kvm_path: &str, irqchip: bool, nvcpus: usize, io: bool) -> Option<Vm> {
        let p = std::ffi::CString::new(kvm_path).ok()?;
        // SAFETY: plain open.
        let kvm = unsafe { libc::open(p.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if kvm < 0 {
            return None;
        }
        let vm = match ioctl(kvm, KVM_CREATE_VM, 0) {
            Ok(v) => v as i32,
            Err(_) => {
                close(kvm);
                return None;
            }
        };
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        // SAFETY: fresh anonymous mapping.
        let mem = unsafe { libc::mmap(std::ptr::null_mut(), RAM, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
        let mem = mem as usize;
        let code = race_code(io);
        // SAFETY: inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(code.as_ptr(), (mem + gen::CODE as usize) as *mut u8, code.len()) };
        let mut v = Vm { kvm, vm, mem, vcpus: vec![], runs: vec![] };
        let _ = memslot(vm, 0, 0, 0, RAM as u64, mem as u64);
        if irqchip {
            let _ = ioctl(vm, KVM_CREATE_IRQCHIP, 0);
        }
        for i in 0..nvcpus {
            v.add_vcpu(i as u64);
        }
        Some(v)
    }

    fn add_vcpu(&mut self, id: u64) -> Option<i32> {
        let fd = ioctl(self.vm, KVM_CREATE_VCPU, id).ok()? as i32;
        setup_vcpu(fd);
        // SAFETY: mapping kvm_run of a vCPU fd.
        let run = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0) };
        self.vcpus.push(fd);
        self.runs.push(if run == libc::MAP_FAILED { 0 } else { run as usize });
        Some(fd)
    }

    fn close_all(&mut self) {
        for (i, &fd) in self.vcpus.iter().enumerate() {
            close(fd);
            if self.runs[i] != 0 {
                // SAFETY: our kvm_run mapping.
                unsafe { libc::munmap(self.runs[i] as *mut _, 4096) };
            }
        }
        self.vcpus.clear();
        self.runs.clear();
        close(self.vm);
        close(self.kvm);
        self.vm = -1;
        self.kvm = -1;
        if self.mem != 0 {
            // SAFETY: our guest RAM mapping.
            unsafe { libc::munmap(self.mem as *mut _, RAM) };
            self.mem = 0;
        }
    }
}

fn setup_vcpu(fd: i32) {
    let mut r = Rng::new(0);
    let _ = buf_ioctl(fd, KVM_SET_SREGS, &gen::sregs_real(&mut r));
    let _ = buf_ioctl(fd, KVM_SET_REGS, &gen::regs(&mut r));
}

/// Runs `fd` until `stop`, resetting the vCPU after exits that would make
/// it stop (HLT, shutdown, failed entry, internal error). Counts calls.
fn runner(fd: i32, run: usize, stop: Arc<AtomicBool>, calls: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        let r = kvm_run(fd, 2000);
        calls.fetch_add(1, Ordering::Relaxed);
        sys::PROGRESS.fetch_add(1, Ordering::Relaxed);
        match r {
            Err(libc::EBADF) | Err(libc::EIO) | Err(libc::ENOTTY) => break,
            Err(_) => {}
            Ok(_) if run != 0 => {
                // SAFETY: our kvm_run mapping; offset 8 is exit_reason.
                let reason = unsafe { *((run + 8) as *const u32) };
                if matches!(reason, 5 | 8 | 9 | 17) {
                    setup_vcpu(fd);
                    calls.fetch_add(2, Ordering::Relaxed);
                }
            }
            Ok(_) => {}
        }
    }
}

fn spawn_runners(v: &Vm, stop: &Arc<AtomicBool>, calls: &Arc<AtomicU64>) -> Vec<std::thread::JoinHandle<()>> {
    v.vcpus
        .iter()
        .zip(&v.runs)
        .map(|(&fd, &run)| {
            let (s, c) = (stop.clone(), calls.clone());
            std::thread::spawn(move || runner(fd, run, s, c))
        })
        .collect()
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// Runs scenario `kind`; returns the number of calls made.
pub fn run(kind: u32, seed: u64, ms: u32, kvm_path: &str) -> u64 {
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_millis(ms as u64);
    let mut r = Rng::new(seed);
    let until = move || Instant::now() < deadline;
    let c = calls.clone();
    let count = move |n: u64| {
        c.fetch_add(n, Ordering::Relaxed);
        sys::PROGRESS.fetch_add(1, Ordering::Relaxed);
    };
    match kind {
        // KVM_RUN on two vCPUs while another thread deletes, re-adds and
        // moves memslots and toggles dirty logging.
        0 => {
            let Some(mut v) = Vm::new(kvm_path, r.chance(500), 2, false) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            let mut bitmap = vec![0u64; 1024];
            while until() {
                let uaddr = v.mem as u64;
                let half = (RAM / 2) as u64;
                let _ = match r.below(6) {
                    0 => memslot(v.vm, 0, 0, 0, 0, uaddr),
                    1 => memslot(v.vm, 0, 0, 0, RAM as u64, uaddr),
                    2 => memslot(v.vm, 1, 0, 0x100000 + r.below(4) * 0x10000, half, uaddr + half),
                    3 => memslot(v.vm, 0, 1, 0, RAM as u64, uaddr),
                    4 => {
                        let mut s = S::new(16);
                        s.u32(0, r.below(2)).u64(8, bitmap.as_mut_ptr() as u64);
                        let mut b = s.b.clone();
                        ioctl(v.vm, KVM_GET_DIRTY_LOG, b.as_mut_ptr() as u64)
                    }
                    _ => memslot(v.vm, 1, 0, 0, 0, 0),
                };
                count(1);
            }
            stop.store(true, Ordering::Relaxed);
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            v.close_all();
        }
        // irqfd assign/deassign against eventfd writes and closes from
        // another thread (the irqfd must go with its eventfd's last close).
        1 => {
            let Some(mut v) = Vm::new(kvm_path, true, 1, true) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            let list: Arc<Mutex<Vec<i32>>> = Arc::new(Mutex::new(vec![]));
            let (l2, s2, c2, vmfd) = (list.clone(), stop.clone(), calls.clone(), v.vm);
            let mut r2 = Rng::new(seed ^ 1);
            let closer = std::thread::spawn(move || {
                while !s2.load(Ordering::Relaxed) {
                    let fd = {
                        let mut l = l2.lock().unwrap();
                        if l.is_empty() {
                            None
                        } else {
                            let i = r2.below(l.len() as u64) as usize;
                            Some(l.swap_remove(i))
                        }
                    };
                    if let Some(fd) = fd {
                        let one = 1u64.to_ne_bytes();
                        // SAFETY: fd taken out of the shared list: ours to use and close.
                        unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
                        close(fd);
                        c2.fetch_add(2, Ordering::Relaxed);
                    } else {
                        std::thread::yield_now();
                    }
                    let _ = vmfd;
                }
            });
            while until() {
                // SAFETY: a new eventfd.
                let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                let mut s = S::new(32);
                let gsi = r.below(24);
                s.u32(0, efd as u64).u32(4, gsi);
                let _ = buf_ioctl(v.vm, KVM_IRQFD, &s);
                count(2);
                if r.chance(500) {
                    list.lock().unwrap().push(efd);
                } else {
                    let one = 1u64.to_ne_bytes();
                    unsafe { libc::write(efd, one.as_ptr().cast(), 8) };
                    if r.chance(500) {
                        s.u32(8, 1);
                        let _ = buf_ioctl(v.vm, KVM_IRQFD, &s);
                    }
                    close(efd);
                    count(3);
                }
            }
            stop.store(true, Ordering::Relaxed);
            closer.join().unwrap_or(());
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            for fd in list.lock().unwrap().drain(..) {
                close(fd);
            }
            v.close_all();
        }
        // The vCPU fd is closed (and its kvm_run unmapped) while a thread
        // is in KVM_RUN on it.
        2 => {
            while until() {
                let Some(mut v) = Vm::new(kvm_path, r.chance(500), 1, true) else { return 1 };
                let fd = v.vcpus[0];
                let dupfd = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
                let st = Arc::new(AtomicBool::new(false));
                let (s2, c2) = (st.clone(), calls.clone());
                let t = std::thread::spawn(move || runner(dupfd, 0, s2, c2));
                sleep_ms(r.range(1, 10));
                close(fd);
                if v.runs[0] != 0 {
                    unsafe { libc::munmap(v.runs[0] as *mut _, 4096) };
                }
                v.runs[0] = 0;
                v.vcpus.clear();
                v.runs.clear();
                sleep_ms(r.range(0, 5));
                // The runner's fd goes too: its KVM_RUN in flight holds the file.
                close(dupfd);
                st.store(true, Ordering::Relaxed);
                t.join().unwrap_or(());
                v.close_all();
                count(4);
            }
        }
        // The VM fd (and /dev/kvm) is closed while vCPUs run; the vCPUs go
        // on, then go too.
        3 => {
            while until() {
                let Some(mut v) = Vm::new(kvm_path, r.chance(500), 2, true) else { return 1 };
                let st = Arc::new(AtomicBool::new(false));
                let h = spawn_runners(&v, &st, &calls);
                sleep_ms(r.range(1, 10));
                close(v.vm);
                close(v.kvm);
                v.vm = -1;
                v.kvm = -1;
                sleep_ms(r.range(1, 10));
                if r.chance(500) {
                    // A vCPU fd closed while its thread is still running it.
                    close(v.vcpus[0]);
                    v.vcpus[0] = -1;
                }
                st.store(true, Ordering::Relaxed);
                h.into_iter().for_each(|t| t.join().unwrap_or(()));
                v.close_all();
                count(4);
            }
        }
        // Guest memory unmapped, remapped, zapped and write-protected under
        // running vCPUs (MMU notifier invalidations).
        4 => {
            let Some(mut v) = Vm::new(kvm_path, false, 2, false) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            while until() {
                let off = (r.below((RAM / 4096) as u64) * 4096) as usize;
                let len = (r.range(1, 16) * 4096) as usize;
                let len = len.min(RAM - off);
                let p = (v.mem + off) as *mut libc::c_void;
                // SAFETY: inside our guest RAM mapping, whose code page we
                // restore below; the vCPUs only ever see guest memory.
                unsafe {
                    match r.below(5) {
                        0 => {
                            libc::munmap(p, len);
                            sleep_ms(r.below(2));
                            libc::mmap(p, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0);
                        }
                        1 => {
                            libc::madvise(p, len, libc::MADV_DONTNEED);
                        }
                        2 => {
                            libc::mprotect(p, len, libc::PROT_READ);
                            sleep_ms(r.below(2));
                            libc::mprotect(p, len, libc::PROT_READ | libc::PROT_WRITE);
                        }
                        3 => {
                            libc::mprotect(p, len, libc::PROT_NONE);
                            sleep_ms(r.below(2));
                            libc::mprotect(p, len, libc::PROT_READ | libc::PROT_WRITE);
                        }
                        _ => {
                            libc::mmap(p, len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED, -1, 0);
                        }
                    }
                    let code = race_code(false);
                    std::ptr::copy_nonoverlapping(code.as_ptr(), (v.mem + gen::CODE as usize) as *mut u8, code.len());
                }
                count(2);
            }
            stop.store(true, Ordering::Relaxed);
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            v.close_all();
        }
        // fork() while vCPUs run: the child (another mm) tries the fds,
        // unmaps guest memory and exits with its copies open.
        5 => {
            let Some(mut v) = Vm::new(kvm_path, r.chance(500), 2, true) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            while until() {
                let (vmfd, vcpu, mem) = (v.vm, v.vcpus[0], v.mem);
                let early = r.chance(300);
                // SAFETY: the child only makes raw syscalls and _exits.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    unsafe {
                        if !early {
                            libc::ioctl(vmfd, KVM_CREATE_VCPU as _, 9u64);
                            libc::ioctl(vcpu, KVM_RUN as _, 0u64);
                            libc::munmap(mem as *mut _, RAM);
                            libc::close(vcpu);
                        }
                        libc::_exit(0);
                    }
                }
                if pid > 0 {
                    let mut st = 0;
                    let t0 = Instant::now();
                    loop {
                        // SAFETY: waiting for our child.
                        if unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid {
                            break;
                        }
                        if t0.elapsed() > Duration::from_secs(10) {
                            unsafe {
                                libc::kill(pid, libc::SIGKILL);
                                libc::waitpid(pid, &mut st, 0);
                            }
                            break;
                        }
                        sleep_ms(1);
                    }
                }
                count(4);
            }
            stop.store(true, Ordering::Relaxed);
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            v.close_all();
        }
        // Three threads issue random generated ioctls on the same VM and
        // vCPU fds while the vCPUs run.
        6 => {
            let Some(mut v) = Vm::new(kvm_path, r.chance(700), 2, true) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            let fds: Vec<i32> = [v.kvm, v.vm].into_iter().chain(v.vcpus.iter().copied()).collect();
            let mem = v.mem;
            let threads: Vec<_> = (0..3u64)
                .map(|i| {
                    let fds = fds.clone();
                    let s = seed ^ (i + 1).wrapping_mul(0x9e37_79b9);
                    let c = calls.clone();
                    std::thread::spawn(move || storm(s, fds, mem, deadline, c))
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap_or(()));
            stop.store(true, Ordering::Relaxed);
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            v.close_all();
        }
        // ioeventfds and coalesced zones (un)registered on the very ports
        // and addresses the running guest writes; eventfds closed meanwhile.
        7 => {
            let Some(mut v) = Vm::new(kvm_path, r.chance(500), 2, true) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            let mut efds: Vec<i32> = vec![];
            while until() {
                match r.below(5) {
                    0 | 1 => {
                        let efd = if efds.is_empty() || r.chance(300) {
                            let e = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
                            efds.push(e);
                            e
                        } else {
                            *r.pick(&efds)
                        };
                        let pio = r.chance(500);
                        let mut s = S::new(64);
                        let addr = if pio { 0x80 } else { 0x50010 };
                        let flags = ((pio as u64) << 1) | if r.chance(400) { 4 } else { 0 };
                        s.u64(8, addr).u32(16, *r.pick(&[0u64, 1, 2, 4])).u32(20, efd as u64).u32(24, flags);
                        let _ = buf_ioctl(v.vm, KVM_IOEVENTFD, &s);
                    }
                    2 => {
                        let pio = r.chance(500);
                        let mut s = S::new(16);
                        s.u64(0, if pio { 0x80 } else { 0x50010 }).u32(8, 1).u32(12, pio as u64);
                        let cmd = if r.chance(500) { KVM_REGISTER_COALESCED_MMIO } else { KVM_UNREGISTER_COALESCED_MMIO };
                        let _ = buf_ioctl(v.vm, cmd, &s);
                    }
                    3 => {
                        if !efds.is_empty() {
                            let i = r.below(efds.len() as u64) as usize;
                            close(efds.swap_remove(i));
                        }
                    }
                    _ => {
                        let mut b = [0u8; 8];
                        for &e in &efds {
                            unsafe { libc::read(e, b.as_mut_ptr().cast(), 8) };
                        }
                    }
                }
                count(1);
            }
            stop.store(true, Ordering::Relaxed);
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            efds.into_iter().for_each(close);
            v.close_all();
        }
        // Creation races on a fresh VM: vCPUs with the same ids, irqchip
        // against vCPU creation, PIT, split irqchip, routing.
        8 => {
            while until() {
                let Some(mut v) = Vm::new(kvm_path, false, 0, true) else { return 1 };
                let vmfd = v.vm;
                let made: Arc<Mutex<Vec<i32>>> = Arc::new(Mutex::new(vec![]));
                let ts: Vec<_> = (0..4u64)
                    .map(|i| {
                        let m = made.clone();
                        let c = calls.clone();
                        let mut tr = Rng::new(seed ^ i ^ r.next());
                        std::thread::spawn(move || {
                            for _ in 0..6 {
                                match tr.below(6) {
                                    0 | 1 => {
                                        if let Ok(fd) = ioctl(vmfd, KVM_CREATE_VCPU, tr.below(3)) {
                                            m.lock().unwrap().push(fd as i32);
                                        }
                                    }
                                    2 => {
                                        let _ = ioctl(vmfd, KVM_CREATE_IRQCHIP, 0);
                                    }
                                    3 => {
                                        let mut s = S::new(64);
                                        s.u32(0, 1);
                                        let _ = buf_ioctl(vmfd, KVM_CREATE_PIT2, &s);
                                    }
                                    4 => {
                                        let mut s = S::new(104);
                                        s.u32(0, 121).u64(8, 24);
                                        let _ = buf_ioctl(vmfd, KVM_ENABLE_CAP, &s);
                                    }
                                    _ => {
                                        let mut s = S::new(8 + 48 * 2);
                                        s.u32(0, 2).u32(8, 1).u32(12, 1).u32(28, 3).u32(56, 2).u32(60, 2).u32(72, 0xfee0_0000u32).u32(80, 0x30);
                                        let _ = buf_ioctl(vmfd, KVM_SET_GSI_ROUTING, &s);
                                    }
                                }
                                c.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                ts.into_iter().for_each(|t| t.join().unwrap_or(()));
                for fd in made.lock().unwrap().drain(..) {
                    setup_vcpu(fd);
                    let _ = kvm_run(fd, 1000);
                    close(fd);
                    count(3);
                }
                v.close_all();
            }
        }
        // GSI routing replaced while other threads inject through IRQ_LINE,
        // SIGNAL_MSI and irqfds and the vCPUs run with interrupts enabled.
        _ => {
            let Some(mut v) = Vm::new(kvm_path, true, 2, true) else { return 1 };
            let h = spawn_runners(&v, &stop, &calls);
            let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            let mut s = S::new(32);
            s.u32(0, efd as u64).u32(4, 5);
            let _ = buf_ioctl(v.vm, KVM_IRQFD, &s);
            let (vmfd, st, c) = (v.vm, stop.clone(), calls.clone());
            let mut r2 = Rng::new(seed ^ 7);
            let inj = std::thread::spawn(move || {
                while !st.load(Ordering::Relaxed) {
                    match r2.below(3) {
                        0 => {
                            let mut s = S::new(8);
                            s.u32(0, r2.below(24)).u32(4, r2.below(2));
                            let _ = buf_ioctl(vmfd, KVM_IRQ_LINE, &s);
                        }
                        1 => {
                            let mut s = S::new(32);
                            s.u32(0, 0xfee0_0000 | (r2.below(2) << 12)).u32(8, 0x20 + r2.below(0x20));
                            let _ = buf_ioctl(vmfd, KVM_SIGNAL_MSI, &s);
                        }
                        _ => {
                            let one = 1u64.to_ne_bytes();
                            unsafe { libc::write(efd, one.as_ptr().cast(), 8) };
                        }
                    }
                    c.fetch_add(1, Ordering::Relaxed);
                }
            });
            while until() {
                let n = r.range(0, 24);
                let mut s = S::new(8 + 48 * n as usize);
                s.u32(0, n);
                for i in 0..n as usize {
                    let o = 8 + 48 * i;
                    if r.chance(700) {
                        s.u32(o, r.below(24)).u32(o + 4, 1).u32(o + 16, r.below(3)).u32(o + 20, r.below(24));
                    } else {
                        s.u32(o, r.below(24)).u32(o + 4, 2).u32(o + 16, 0xfee0_0000u32).u32(o + 24, 0x30);
                    }
                }
                let _ = buf_ioctl(v.vm, KVM_SET_GSI_ROUTING, &s);
                count(1);
            }
            stop.store(true, Ordering::Relaxed);
            inj.join().unwrap_or(());
            h.into_iter().for_each(|t| t.join().unwrap_or(()));
            close(efd);
            v.close_all();
        }
    }
    calls.load(Ordering::Relaxed)
}

/// One thread of the ioctl storm: random generated VM/vCPU ioctls on the
/// shared fds (closes and runs excluded: the fds are shared).
fn storm(seed: u64, fds: Vec<i32>, mem: usize, deadline: Instant, calls: Arc<AtomicU64>) {
    let mut r = Rng::new(seed);
    let mut ex = crate::exec::Exec::new();
    for (i, &fd) in fds.iter().enumerate() {
        ex.fds[i] = fd;
    }
    ex.mems[0] = Some(crate::exec::Mem { ptr: mem, len: RAM, mapped: true, vcpu: false });
    let ops = gen::storm_ops(&mut r, fds.len() as u16, RAM as u64);
    for op in ops.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        let _ = ex.exec(op);
        calls.fetch_add(1, Ordering::Relaxed);
    }
    // The fds belong to the scenario: forget them before the executor closes.
    ex.fds = [-1; crate::exec::FD_SLOTS];
    ex.mems = [None; crate::exec::MEM_SLOTS];
}
