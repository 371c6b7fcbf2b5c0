//! Executes programs (lists of `Op`s) against the module set loaded.

use crate::ioctls::*;
use crate::op::{Arg, FdRef, Op, Patch, Val};
use crate::sys::{self, errno, ioctl};
use std::collections::BTreeMap;

pub const FD_SLOTS: usize = 48;
pub const MEM_SLOTS: usize = 16;
/// Every mmap'd region is followed by this much inaccessible space, so a
/// kernel write past a short buffer faults instead of hitting our memory.
const TAIL: usize = 64 << 10;
/// Buffers are placed in a large sink region that ends in a guard page.
const SINK: usize = 16 << 20;
const GUARD: usize = 1 << 20;

#[derive(Clone, Copy)]
pub struct Mem {
    pub ptr: usize,
    pub len: usize,
    pub mapped: bool,
    /// A kvm_run mapping (no tail; never written by us except immediate_exit).
    pub vcpu: bool,
}

pub struct Exec {
    pub fds: [i32; FD_SLOTS],
    pub mems: [Option<Mem>; MEM_SLOTS],
    extra_fds: Vec<i32>,
    sink: usize,
    guard: usize,
    pub calls: u64,
    pub ioctls: u64,
    pub runs: u64,
    /// Calls made by the threads of race scenarios (included in `calls`).
    pub race_calls: u64,
    pub exits: BTreeMap<u32, u64>,
    pub kvm_path: String,
}

fn map(len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> Option<usize> {
    // SAFETY: a new mapping at an address the kernel picks.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, off) };
    if p == libc::MAP_FAILED {
        None
    } else {
        Some(p as usize)
    }
}

impl Exec {
    pub fn new() -> Exec {
        let noacc = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let sink = map(SINK + GUARD, libc::PROT_NONE, noacc, -1, 0).expect("mmap sink");
        // SAFETY: our own fresh mapping.
        unsafe { libc::mprotect(sink as *mut _, SINK, libc::PROT_READ | libc::PROT_WRITE) };
        Exec {
            fds: [-1; FD_SLOTS],
            mems: [None; MEM_SLOTS],
            extra_fds: Vec::new(),
            sink,
            guard: sink + SINK,
            calls: 0,
            ioctls: 0,
            runs: 0,
            race_calls: 0,
            exits: BTreeMap::new(),
            kvm_path: "/dev/kvm".into(),
        }
    }

    fn fd(&self, s: u16) -> i32 {
        self.fds.get(s as usize).copied().unwrap_or(-1)
    }

    fn val(&self, v: &Val, base: usize) -> u64 {
        match *v {
            Val::Fd(s) => self.fd(s) as u32 as u64,
            Val::Mem(m, off) => match self.mems.get(m as usize).copied().flatten() {
                Some(mm) => (mm.ptr as u64).wrapping_add(off),
                None => (self.guard as u64).wrapping_add(off % GUARD as u64),
            },
            Val::SelfOff(o) => base as u64 + o as u64,
            Val::Guard(o) => self.guard as u64 + (o % GUARD as u64),
            Val::Imm(x) => x,
        }
    }

    /// Lays out an ioctl argument; returns the value passed to ioctl(2).
    fn arg(&mut self, a: &Arg, cmd: u32) -> u64 {
        match a {
            Arg::Int(v) => *v,
            Arg::Addr(v) => self.val(v, self.sink),
            Arg::Buf { data, cap, edge, patches } => {
                let cap = (*cap as usize).max(data.len()).min(SINK / 2);
                let edge = (*edge as usize).min(cap);
                let base = if edge > 0 { self.guard - (cap - edge) } else { self.sink };
                let room = cap - edge;
                // SAFETY: [base, base + room) lies inside our sink mapping.
                let b = unsafe { std::slice::from_raw_parts_mut(base as *mut u8, room) };
                let n = data.len().min(room);
                b[..n].copy_from_slice(&data[..n]);
                b[n..].fill(0);
                for Patch { off, width, val } in patches {
                    let v = self.val(val, base).to_le_bytes();
                    let (o, w) = (*off as usize, (*width as usize).min(8));
                    if o + w <= room {
                        b[o..o + w].copy_from_slice(&v[..w]);
                    }
                }
                // Never let KVM_RUN block our kick signal.
                let bit = (libc::SIGUSR1 - 1) as usize;
                if cmd == KVM_SET_SIGNAL_MASK && room > 4 + bit / 8 {
                    b[4 + bit / 8] &= !(1u8 << (bit % 8));
                }
                base as u64
            }
        }
    }

    fn close_slot(&mut self, s: usize) {
        if s < FD_SLOTS && self.fds[s] >= 0 {
            // SAFETY: closing an fd we opened.
            unsafe { libc::close(self.fds[s]) };
            self.fds[s] = -1;
        }
    }

    fn open(&mut self, kind: &str) -> i32 {
        // SAFETY: plain syscalls creating new fds.
        unsafe {
            match kind {
                "kvm" => {
                    let p = std::ffi::CString::new(self.kvm_path.clone()).unwrap();
                    libc::open(p.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC)
                }
                "eventfd" => libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK),
                "eventfd-sem" => libc::eventfd(1, libc::EFD_CLOEXEC | libc::EFD_SEMAPHORE | libc::EFD_NONBLOCK),
                "pipe" => {
                    let mut p = [-1; 2];
                    if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) < 0 {
                        return -1;
                    }
                    self.extra_fds.push(p[1]);
                    p[0]
                }
                "null" => libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC),
                "socket" => libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0),
                "memfd" => {
                    let fd = libc::memfd_create(c"rkvm-fuzz".as_ptr(), libc::MFD_CLOEXEC);
                    if fd >= 0 {
                        libc::ftruncate(fd, 1 << 20);
                    }
                    fd
                }
                "exe" => libc::open(c"/proc/self/exe".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC),
                k if k.starts_with("dup:") => {
                    let s: u16 = k[4..].parse().unwrap_or(u16::MAX);
                    libc::fcntl(self.fd(s), libc::F_DUPFD_CLOEXEC, 0)
                }
                _ => -1,
            }
        }
    }

    fn mmap(&mut self, len: u64, kind: &str) -> Option<Mem> {
        let len = (len as usize).clamp(4096, 64 << 20).next_multiple_of(4096);
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let priv_ = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let huge = 2 << 20;
        let extra = if kind == "huge" { huge } else { 0 };
        let region = map(len + TAIL + extra, libc::PROT_NONE, priv_, -1, 0)?;
        let ptr = if kind == "huge" { region.next_multiple_of(huge) } else { region };
        let (prot, flags) = match kind {
            "ro" => (libc::PROT_READ, priv_ | libc::MAP_FIXED),
            "shared" => (rw, libc::MAP_SHARED | libc::MAP_ANONYMOUS | libc::MAP_FIXED),
            _ => (rw, priv_ | libc::MAP_FIXED),
        };
        // SAFETY: replaces part of the reservation we just made.
        let p = unsafe { libc::mmap(ptr as *mut _, len, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return None;
        }
        if kind == "huge" {
            unsafe { libc::madvise(ptr as *mut _, len, libc::MADV_HUGEPAGE) };
        }
        Some(Mem { ptr, len, mapped: true, vcpu: false })
    }

    /// Executes one op. Returns Ok(value)/Err(errno) for the trace.
    pub fn exec(&mut self, op: &Op) -> Result<i64, i32> {
        self.calls += 1;
        sys::PROGRESS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match op {
            Op::Open { slot, kind } => {
                let s = *slot as usize;
                if s >= FD_SLOTS {
                    return Err(libc::EBADF);
                }
                self.close_slot(s);
                let fd = self.open(kind);
                self.fds[s] = fd;
                if fd < 0 {
                    Err(errno())
                } else {
                    Ok(0)
                }
            }
            Op::Close { slot } => {
                let fd = self.fd(*slot);
                self.close_slot(*slot as usize);
                if fd < 0 {
                    Err(libc::EBADF)
                } else {
                    Ok(0)
                }
            }
            Op::Mmap { mem, len, kind } => {
                let m = *mem as usize;
                if m >= MEM_SLOTS {
                    return Err(libc::EINVAL);
                }
                self.unmap_slot(m);
                self.mems[m] = self.mmap(*len, kind);
                if self.mems[m].is_some() {
                    Ok(0)
                } else {
                    Err(libc::ENOMEM)
                }
            }
            Op::Unmap { mem } => {
                // Replace the mapping by an inaccessible one (MMU notifiers
                // run as for munmap) but keep the address reserved, so a
                // later mapping never lands where a stale pointer points.
                let Some(m) = self.mems.get_mut(*mem as usize).and_then(|m| m.as_mut()) else {
                    return Err(libc::EINVAL);
                };
                m.mapped = false;
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED;
                // SAFETY: our own mapping.
                let p = unsafe { libc::mmap(m.ptr as *mut _, m.len, libc::PROT_NONE, flags, -1, 0) };
                if p == libc::MAP_FAILED {
                    Err(errno())
                } else {
                    Ok(0)
                }
            }
            Op::Madvise { mem, off, len, advice } => {
                let Some(m) = self.mems.get(*mem as usize).copied().flatten() else {
                    return Err(libc::EINVAL);
                };
                if m.vcpu {
                    return Err(libc::EINVAL);
                }
                let off = (*off as usize % m.len) & !4095;
                let len = (*len as usize).min(m.len - off);
                // SAFETY: inside our own mapping; at worst it becomes
                // inaccessible or zero, which we never rely on.
                let r = unsafe {
                    if *advice >= 1000 {
                        libc::mprotect((m.ptr + off) as *mut _, len, advice - 1000)
                    } else {
                        libc::madvise((m.ptr + off) as *mut _, len, *advice)
                    }
                };
                if r < 0 {
                    Err(errno())
                } else {
                    Ok(0)
                }
            }
            Op::Write { mem, off, data } => {
                let Some(m) = self.mems.get(*mem as usize).copied().flatten() else {
                    return Err(libc::EINVAL);
                };
                let off = *off as usize;
                if !m.mapped || m.vcpu || off + data.len() > m.len {
                    return Err(libc::EINVAL);
                }
                // A page made read-only or inaccessible by madvise/mprotect
                // ops: make it writable again first.
                let (a, e) = ((m.ptr + off) & !4095, (m.ptr + off + data.len()).next_multiple_of(4096));
                // SAFETY: inside our own mapping.
                unsafe {
                    libc::mprotect(a as *mut _, e - a, libc::PROT_READ | libc::PROT_WRITE);
                    std::ptr::copy_nonoverlapping(data.as_ptr(), (m.ptr + off) as *mut u8, data.len());
                }
                Ok(0)
            }
            Op::VcpuMap { mem, slot, pages, pgoff } => {
                let m = *mem as usize;
                if m >= MEM_SLOTS {
                    return Err(libc::EINVAL);
                }
                self.unmap_slot(m);
                let len = (*pages as usize).clamp(1, 16) * 4096;
                let fd = self.fd(*slot);
                let prot = libc::PROT_READ | libc::PROT_WRITE;
                match map(len, prot, libc::MAP_SHARED, fd, (*pgoff as i64 & 0xff) * 4096) {
                    Some(ptr) => {
                        // Only a mapping from page 0 is kvm_run; pages past
                        // the vCPU's would SIGBUS when touched: never touched.
                        self.mems[m] = Some(Mem { ptr, len, mapped: *pgoff == 0, vcpu: true });
                        Ok(0)
                    }
                    None => Err(errno()),
                }
            }
            Op::Ioctl { fd, cmd, arg, store, .. } => {
                self.ioctls += 1;
                let f = match fd {
                    FdRef::Slot(s) => self.fd(*s),
                    FdRef::Raw(r) => *r,
                };
                let a = self.arg(arg, *cmd);
                let r = ioctl(f, *cmd, a);
                if *cmd == KVM_CREATE_DEVICE && r.is_ok() && matches!(arg, Arg::Buf { edge: 0, .. }) {
                    // The new device's fd comes back in the struct: close it.
                    // SAFETY: a = our sink buffer, at least 12 bytes.
                    let fd = unsafe { *((a + 4) as *const i32) };
                    if fd > 2 {
                        unsafe { libc::close(fd) };
                    }
                }
                if let (Some(s), Ok(v)) = (store, r) {
                    let s = *s as usize;
                    if v >= 0 && s < FD_SLOTS && v < 65536 && matches!(*cmd, KVM_CREATE_VM | KVM_CREATE_VCPU | KVM_GET_STATS_FD | KVM_CREATE_GUEST_MEMFD) {
                        self.close_slot(s);
                        self.fds[s] = v as i32;
                    }
                }
                r
            }
            Op::Run { slot, mem, imm, usecs } => {
                self.runs += 1;
                let run = mem.and_then(|m| self.mems.get(m as usize).copied().flatten()).filter(|m| m.vcpu && m.mapped);
                if let Some(m) = run {
                    // SAFETY: kvm_run page mapped by us; byte 1 is immediate_exit.
                    unsafe { *((m.ptr + 1) as *mut u8) = *imm as u8 };
                }
                let r = sys::kvm_run(self.fd(*slot), (*usecs).clamp(50, 100_000));
                if let Some(m) = run {
                    // SAFETY: as above; offset 8 is exit_reason.
                    let reason = unsafe { *((m.ptr + 8) as *const u32) };
                    *self.exits.entry(if r.is_ok() { reason } else { 1000 + r.unwrap_err() as u32 }).or_default() += 1;
                }
                r
            }
            Op::EfdWrite { slot, val } => {
                let v = val.to_ne_bytes();
                // SAFETY: writing 8 bytes from our buffer.
                let r = unsafe { libc::write(self.fd(*slot), v.as_ptr().cast(), 8) };
                if r < 0 {
                    Err(errno())
                } else {
                    Ok(r as i64)
                }
            }
            Op::Race { kind, seed, ms } => {
                let n = crate::race::run(*kind, *seed, *ms, &self.kvm_path);
                self.calls += n;
                self.race_calls += n;
                Ok(0)
            }
            Op::Fork { seed } => self.fork(*seed),
        }
    }

    /// fork() with every fd open: the child uses the VM and vCPU fds (KVM
    /// refuses them with EIO: another mm), unmaps guest memory, closes its
    /// fds and exits. The parent waits at most 10 s, then kills it.
    fn fork(&mut self, seed: u64) -> Result<i64, i32> {
        let fds = self.fds;
        let mems = self.mems;
        // SAFETY: the child only makes raw syscalls (no allocation) and _exits.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(errno());
        }
        if pid == 0 {
            let mut buf = [0u64; 1024];
            for (i, &fd) in fds.iter().enumerate() {
                if fd < 0 {
                    continue;
                }
                let cmds = [KVM_GET_REGS, KVM_CREATE_VCPU, KVM_RUN, KVM_CREATE_IRQCHIP, KVM_GET_CLOCK];
                let cmd = cmds[(seed as usize + i) % cmds.len()];
                let arg = match cmd {
                    KVM_CREATE_VCPU => 7,
                    KVM_RUN | KVM_CREATE_IRQCHIP => 0,
                    _ => buf.as_mut_ptr() as u64,
                };
                // SAFETY: raw ioctl; GET_REGS/GET_CLOCK write < 8 KiB into buf.
                unsafe { libc::ioctl(fd, cmd as _, arg) };
            }
            for m in mems.iter().flatten() {
                if seed & 1 == 0 {
                    // SAFETY: child's copy of the mapping.
                    unsafe { libc::munmap(m.ptr as *mut _, m.len) };
                }
            }
            for &fd in fds.iter() {
                if fd >= 0 {
                    unsafe { libc::close(fd) };
                }
            }
            unsafe { libc::_exit(0) };
        }
        let start = std::time::Instant::now();
        loop {
            let mut st = 0;
            // SAFETY: waiting for our child.
            let r = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            if r == pid {
                return Ok(libc::WEXITSTATUS(st) as i64);
            }
            if start.elapsed().as_secs() >= 10 {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut st, 0);
                }
                return Err(libc::ETIMEDOUT);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn unmap_slot(&mut self, m: usize) {
        if let Some(mm) = self.mems[m].take() {
            let len = if mm.vcpu { mm.len } else { mm.len + TAIL };
            // SAFETY: our own mapping (for "huge", the unaligned head of the
            // reservation stays reserved; harmless).
            unsafe { libc::munmap(mm.ptr as *mut _, len) };
        }
    }

    /// Closes every fd and unmaps all memory (program end).
    pub fn reset(&mut self) {
        for s in 0..FD_SLOTS {
            self.close_slot(s);
        }
        for fd in self.extra_fds.drain(..) {
            // SAFETY: closing fds we opened.
            unsafe { libc::close(fd) };
        }
        for m in 0..MEM_SLOTS {
            self.unmap_slot(m);
        }
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        self.reset();
        // SAFETY: our sink mapping.
        unsafe { libc::munmap(self.sink as *mut _, SINK + GUARD) };
    }
}
