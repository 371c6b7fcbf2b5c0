//! The program generator: knows every KVM ioctl's argument structure and
//! builds valid, boundary and hostile arguments, sequences that build real
//! state (VMs, vCPUs, memslots, irqchips, irqfds, ioeventfds, coalesced
//! zones) and random guest code run in short bursts.
//!
//! Generation never depends on results: a seed gives the same program on
//! every module set, so the errnos of two runs can be compared call by call.

use crate::ioctls::*;
use crate::op::{Arg, FdRef, Op, Patch, Val};
use crate::rng::Rng;

/// Guest RAM is at GPA 0; code at CODE, stack below STACK.
pub const CODE: u64 = 0x1000;
pub const STACK: u64 = 0x8000;

/// Any integer a struct field is set from (literals default to i32).
pub trait Num {
    fn n(self) -> u64;
}
macro_rules! num {
    ($($t:ty),*) => {$(impl Num for $t { fn n(self) -> u64 { self as u64 } })*};
}
num!(u8, u16, u32, u64, usize, i32, i64);

/// A struct under construction.
pub struct S {
    pub b: Vec<u8>,
    pub patches: Vec<Patch>,
}

impl S {
    pub fn new(n: usize) -> S {
        S { b: vec![0; n], patches: vec![] }
    }
    pub fn rand(r: &mut Rng, n: usize) -> S {
        S { b: r.bytes(n), patches: vec![] }
    }
    pub fn u8(&mut self, o: usize, v: impl Num) -> &mut Self {
        let v: u64 = v.n();
        self.b[o] = v as u8;
        self
    }
    pub fn u16(&mut self, o: usize, v: impl Num) -> &mut Self {
        let v: u64 = v.n();
        self.b[o..o + 2].copy_from_slice(&(v as u16).to_le_bytes());
        self
    }
    pub fn u32(&mut self, o: usize, v: impl Num) -> &mut Self {
        let v: u64 = v.n();
        self.b[o..o + 4].copy_from_slice(&(v as u32).to_le_bytes());
        self
    }
    pub fn u64(&mut self, o: usize, v: impl Num) -> &mut Self {
        let v: u64 = v.n();
        self.b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        self
    }
    pub fn patch(&mut self, o: usize, w: u8, v: Val) -> &mut Self {
        self.patches.push(Patch { off: o as u32, width: w, val: v });
        self
    }
    /// Flips a few random bytes (a mutation of a valid struct).
    pub fn mutate(&mut self, r: &mut Rng) -> &mut Self {
        let n = self.b.len();
        if n == 0 {
            return self;
        }
        for _ in 0..r.range(1, 4) {
            let o = r.below(n as u64) as usize;
            self.b[o] = match r.below(3) {
                0 => r.next() as u8,
                1 => self.b[o] ^ (1 << r.below(8)),
                _ => 0xff,
            };
        }
        self
    }
    pub fn arg(self, cap: usize) -> Arg {
        Arg::Buf { data: trim(self.b), cap: cap as u32, edge: 0, patches: self.patches }
    }
}

/// Trailing zeros need not be stored (the buffer is zero-filled to cap).
fn trim(mut b: Vec<u8>) -> Vec<u8> {
    while b.last() == Some(&0) {
        b.pop();
    }
    b
}

const KERNEL_PTRS: [u64; 8] = [
    0,
    1,
    0xfff,
    0xffff_8880_0000_0000,
    0xffff_ffff_8100_0000,
    0xffff_ffff_ffff_f000,
    0x8000_0000_0000_0000,
    0x0000_8000_0000_0000,
];

pub struct Gen<'a> {
    pub r: &'a mut Rng,
    pub ops: Vec<Op>,
    used: [bool; crate::exec::FD_SLOTS],
    kvm: Vec<u16>,
    vms: Vec<u16>,
    vcpus: Vec<(u16, u16)>,
    efds: Vec<u16>,
    others: Vec<u16>,
    mems: Vec<(u16, u64)>,
    runmaps: Vec<(u16, u16)>,
    ram: Option<(u16, u64)>,
    next_id: u32,
    next_mem: u16,
    pub races: bool,
    /// `--nested-guest-mode`: see `Opts::nested_guest_mode`.
    pub nested_guest_mode: bool,
}

impl<'a> Gen<'a> {
    pub fn new(r: &'a mut Rng) -> Gen<'a> {
        Gen {
            r,
            ops: vec![],
            used: [false; crate::exec::FD_SLOTS],
            kvm: vec![],
            vms: vec![],
            vcpus: vec![],
            efds: vec![],
            others: vec![],
            mems: vec![],
            runmaps: vec![],
            ram: None,
            next_id: 0,
            next_mem: 0,
            races: false,
            nested_guest_mode: false,
        }
    }

    fn slot(&mut self) -> Option<u16> {
        let i = self.used.iter().position(|u| !u)?;
        self.used[i] = true;
        Some(i as u16)
    }

    fn mem_slot(&mut self) -> u16 {
        let m = self.next_mem % crate::exec::MEM_SLOTS as u16;
        self.next_mem += 1;
        self.mems.retain(|x| x.0 != m);
        self.runmaps.retain(|x| x.0 != m);
        if self.ram.map(|x| x.0) == Some(m) {
            self.ram = None;
        }
        m
    }

    fn ioctl(&mut self, fd: u16, cmd: u32, arg: Arg, label: &str) {
        self.ioctl_store(fd, cmd, arg, None, label)
    }

    /// An ioctl with, now and then, a hostile cmd encoding: same number,
    /// another size or direction (must be refused as an unknown ioctl).
    fn ioctl_store(&mut self, fd: u16, mut cmd: u32, arg: Arg, store: Option<u16>, label: &str) {
        let mut label = label.to_string();
        if self.r.chance(20) {
            let size = (cmd >> 16) & 0x3fff;
            let nsize = match self.r.below(3) {
                0 => 0,
                1 => size.wrapping_add(8) & 0x3fff,
                _ => self.r.below(0x4000) as u32,
            };
            if nsize != size {
                cmd = (cmd & !(0x3fff << 16)) | (nsize << 16);
                label += "+badsize";
            }
        } else if self.r.chance(10) {
            let dir = (cmd >> 30) ^ (1 + self.r.below(3) as u32);
            cmd = (cmd & 0x3fff_ffff) | ((dir & 3) << 30);
            label += "+baddir";
        }
        self.ops.push(Op::Ioctl { fd: FdRef::Slot(fd), cmd, arg, store, label });
    }

    /// Where a struct argument goes: mostly a buffer; sometimes a buffer
    /// that runs into an inaccessible page, an unmapped or kernel address,
    /// or guest memory.
    fn place(&mut self, s: S, cap: usize, label: &str) -> (Arg, String) {
        match self.r.below(100) {
            0..=2 => {
                let edge = self.r.range(1, cap.max(1) as u64) as u32;
                (Arg::Buf { data: trim(s.b), cap: cap as u32, edge, patches: s.patches }, format!("{label}/edge"))
            }
            3..=4 => (Arg::Addr(Val::Imm(*self.r.pick(&KERNEL_PTRS))), format!("{label}/badptr")),
            5 => (Arg::Addr(Val::Guard(self.r.below(4096))), format!("{label}/unmapped")),
            _ => (s.arg(cap), label.to_string()),
        }
    }

    fn sput(&mut self, fd: u16, cmd: u32, s: S, cap: usize, label: &str) {
        let (a, l) = self.place(s, cap, label);
        self.ioctl(fd, cmd, a, &l);
    }

    fn any_fd_val(&mut self) -> (Val, &'static str) {
        match self.r.below(10) {
            0..=5 if !self.efds.is_empty() => (Val::Fd(*self.r.pick(&self.efds)), "efd"),
            6 if !self.others.is_empty() => (Val::Fd(*self.r.pick(&self.others)), "otherfd"),
            7 if !self.vms.is_empty() => (Val::Fd(*self.r.pick(&self.vms)), "vmfd"),
            8 => (Val::Imm(*self.r.pick(&[u32::MAX as u64, 1000, 0x7fff_ffff])), "badfd"),
            _ if !self.efds.is_empty() => (Val::Fd(*self.r.pick(&self.efds)), "efd"),
            _ => (Val::Imm(u32::MAX as u64), "badfd"),
        }
    }

    // --- programs -------------------------------------------------------

    pub fn program(&mut self) -> Vec<Op> {
        let steps = self.r.range(200, 1500);
        let k = self.open("kvm");
        self.kvm.push(k);
        if self.r.chance(900) {
            self.setup_vm(k);
        }
        for _ in 0..steps {
            self.step();
        }
        // Tear down in a random order (the executor closes whatever is left).
        let mut open: Vec<u16> = (0..crate::exec::FD_SLOTS as u16).filter(|&s| self.used[s as usize]).collect();
        while !open.is_empty() {
            let i = self.r.below(open.len() as u64) as usize;
            let s = open.swap_remove(i);
            self.ops.push(Op::Close { slot: s });
        }
        std::mem::take(&mut self.ops)
    }

    fn open(&mut self, kind: &str) -> u16 {
        let s = self.slot().unwrap_or(0);
        self.ops.push(Op::Open { slot: s, kind: kind.into() });
        s
    }

    /// The state most programs start from: a VM with RAM at GPA 0, maybe an
    /// irqchip, and a vCPU in real mode at CODE with its kvm_run mapped.
    pub fn setup_vm(&mut self, k: u16) {
        let Some(vm) = self.slot() else { return };
        self.ioctl_store(k, KVM_CREATE_VM, Arg::Int(0), Some(vm), "CREATE_VM");
        self.vms.push(vm);
        let len = *self.r.pick(&[0x10000u64, 0x20000, 0x40000, 0x100000, 0x200000]);
        let kind = *self.r.pick(&["anon", "anon", "anon", "anon", "anon", "anon", "huge", "shared"]);
        let m = self.mem_slot();
        self.ops.push(Op::Mmap { mem: m, len, kind: kind.into() });
        self.mems.push((m, len));
        self.ram = Some((m, len));
        let code = guest_code(self.r, 256);
        self.ops.push(Op::Write { mem: m, off: CODE, data: code });
        let mut s = S::new(32);
        s.u32(0, 0).u32(4, 0).u64(8, 0).u64(16, len).patch(24, 8, Val::Mem(m, 0));
        self.ioctl(vm, KVM_SET_USER_MEMORY_REGION, s.arg(32), "SET_USER_MEMORY_REGION/setup");
        match self.r.below(10) {
            0..=4 => self.ioctl(vm, KVM_CREATE_IRQCHIP, Arg::Int(0), "CREATE_IRQCHIP"),
            5 => {
                let mut s = S::new(104);
                s.u32(0, 121).u64(8, 24);
                self.ioctl(vm, KVM_ENABLE_CAP, s.arg(104), "ENABLE_CAP/split-irqchip");
            }
            _ => {}
        }
        if self.r.chance(300) {
            let mut s = S::new(64);
            s.u32(0, 1);
            self.ioctl(vm, KVM_CREATE_PIT2, s.arg(64), "CREATE_PIT2");
        }
        self.new_vcpu(vm, true);
    }

    fn new_vcpu(&mut self, vm: u16, setup: bool) {
        let Some(s) = self.slot() else { return };
        let id = match self.r.below(10) {
            0..=6 => {
                self.next_id += 1;
                (self.next_id - 1) as u64
            }
            7 => self.r.below(self.next_id.max(1) as u64),
            _ => *self.r.pick(&[255u64, 256, 1023, 1024, 4095, 4096, 0xffff_ffff, 0x1_0000_0000]),
        };
        self.ioctl_store(vm, KVM_CREATE_VCPU, Arg::Int(id), Some(s), if id < 1024 { "CREATE_VCPU" } else { "CREATE_VCPU/bad-id" });
        self.vcpus.push((s, vm));
        if setup || self.r.chance(700) {
            let m = self.mem_slot();
            let pages = if self.r.chance(900) { 3 } else { self.r.range(1, 5) };
            let pgoff = if self.r.chance(950) { 0 } else { self.r.below(4) };
            self.ops.push(Op::VcpuMap { mem: m, slot: s, pages, pgoff });
            self.runmaps.push((m, s));
            let sr = sregs_real(self.r);
            self.ioctl(s, KVM_SET_SREGS, sr.arg(312), "SET_SREGS/setup");
            let rg = regs(self.r);
            self.ioctl(s, KVM_SET_REGS, rg.arg(144), "SET_REGS/setup");
        }
    }

    fn step(&mut self) {
        // Weights per mille-ish; cheap state-changing ioctls dominate, the
        // expensive operations under TCG (new VMs, fork, big mappings) are
        // rare so that a run makes many calls.
        const W: [u32; 16] = [
            60,  // run
            300, // vcpu ioctl
            250, // vm ioctl
            40,  // system ioctl
            30,  // guest code
            15,  // new vcpu
            30,  // new eventfd / other fd
            10,  // close
            8,   // mmap
            4,   // unmap
            10,  // madvise / mprotect
            30,  // eventfd write
            2,   // new VM
            2,   // fork
            40,  // memslot (state building)
            4,   // race (race programs only)
        ];
        match self.r.weighted(&W) {
            0 => self.run(),
            1 => self.vcpu_ioctl(),
            2 => self.vm_ioctl(),
            3 => {
                let k = if self.kvm.is_empty() { 0 } else { *self.r.pick(&self.kvm) };
                self.sys_ioctl(k)
            }
            4 => {
                if let Some((m, len)) = self.ram {
                    let off = if self.r.chance(800) { CODE } else { self.r.below(len.saturating_sub(512)) & !0xf };
                    let code = guest_code(self.r, 128);
                    self.ops.push(Op::Write { mem: m, off, data: code });
                }
            }
            5 => {
                if let Some(&vm) = self.vms.last() {
                    self.new_vcpu(vm, false)
                }
            }
            6 => {
                let kind = *self.r.pick(&["eventfd", "eventfd", "eventfd", "eventfd-sem", "pipe", "null", "socket", "memfd", "kvm"]);
                let s = self.open(kind);
                if kind.starts_with("eventfd") {
                    self.efds.push(s)
                } else if kind == "kvm" {
                    self.kvm.push(s)
                } else {
                    self.others.push(s)
                }
            }
            7 => {
                let open: Vec<u16> = (0..crate::exec::FD_SLOTS as u16).filter(|&s| self.used[s as usize]).collect();
                if !open.is_empty() {
                    let s = *self.r.pick(&open);
                    self.ops.push(Op::Close { slot: s });
                    // The slot stays "used" so no later op reuses it by accident
                    // (its fd is -1: later uses get EBADF on every module set).
                }
            }
            8 => {
                let m = self.mem_slot();
                let len = *self.r.pick(&[0x1000u64, 0x10000, 0x100000, 0x200000]);
                let kind = *self.r.pick(&["anon", "anon", "ro", "shared", "huge"]);
                self.ops.push(Op::Mmap { mem: m, len, kind: kind.into() });
                self.mems.push((m, len));
            }
            9 => {
                if !self.mems.is_empty() {
                    let (m, _) = *self.r.pick(&self.mems);
                    self.ops.push(Op::Unmap { mem: m });
                }
            }
            10 => {
                if !self.mems.is_empty() {
                    let (m, len) = *self.r.pick(&self.mems);
                    let advice = *self.r.pick(&[
                        libc::MADV_DONTNEED,
                        libc::MADV_FREE,
                        libc::MADV_HUGEPAGE,
                        libc::MADV_NOHUGEPAGE,
                        libc::MADV_REMOVE,
                        libc::MADV_PAGEOUT,
                        libc::MADV_COLD,
                        1000 + libc::PROT_READ,
                        1000 + libc::PROT_NONE,
                        1000 + (libc::PROT_READ | libc::PROT_WRITE),
                    ]);
                    let off = self.r.below(len) & !0xfff;
                    let l = self.r.range(1, 64) * 4096;
                    self.ops.push(Op::Madvise { mem: m, off, len: l, advice });
                }
            }
            11 => {
                if !self.efds.is_empty() {
                    let s = *self.r.pick(&self.efds);
                    let v = if self.r.chance(950) { 1 } else { self.r.interesting() };
                    self.ops.push(Op::EfdWrite { slot: s, val: v });
                }
            }
            12 => {
                let k = if self.kvm.is_empty() { 0 } else { *self.r.pick(&self.kvm) };
                if self.vms.len() < 3 {
                    self.setup_vm(k)
                }
            }
            13 => {
                // fork copies the whole mm: seconds under KASAN and TCG.
                if self.r.chance(150) {
                    let seed = self.r.next();
                    self.ops.push(Op::Fork { seed });
                }
            }
            14 => self.memslot(),
            _ => {
                if self.races {
                    let kind = self.r.below(crate::race::NAMES.len() as u64) as u32;
                    let seed = self.r.next();
                    let ms = self.r.range(10, 80) as u32;
                    self.ops.push(Op::Race { kind, seed, ms });
                }
            }
        }
    }

    fn run(&mut self) {
        if self.vcpus.is_empty() {
            return;
        }
        let (s, _) = *self.r.pick(&self.vcpus);
        let mem = self.runmaps.iter().find(|x| x.1 == s).map(|x| x.0);
        let imm = self.r.chance(100);
        let usecs = *self.r.pick(&[50u32, 100, 100, 300, 1000]);
        self.ops.push(Op::Run { slot: s, mem, imm, usecs });
    }

    // --- system ioctls -------------------------------------------------------

    pub fn sys_ioctl(&mut self, k: u16) {
        match self.r.below(12) {
            0 => {
                let a = if self.r.chance(900) { 0 } else { self.r.interesting() };
                self.ioctl(k, KVM_GET_API_VERSION, Arg::Int(a), "GET_API_VERSION")
            }
            1 => {
                let c = if self.r.chance(800) { self.r.below(250) } else { self.r.interesting() };
                self.ioctl(k, KVM_CHECK_EXTENSION, Arg::Int(c), "CHECK_EXTENSION")
            }
            2 => self.ioctl(k, KVM_GET_VCPU_MMAP_SIZE, Arg::Int(0), "GET_VCPU_MMAP_SIZE"),
            3 | 4 => {
                let cmd = *self.r.pick(&[KVM_GET_SUPPORTED_CPUID, KVM_GET_EMULATED_CPUID, KVM_GET_SUPPORTED_HV_CPUID]);
                let (n, tag) = self.count();
                let mut s = S::new(8);
                s.u32(0, n);
                let cap = 8 + 40 * (n as usize).min(512);
                let name = crate::ioctls::name(cmd);
                self.sput(k, cmd, s, cap, &format!("{name}/{tag}"))
            }
            5 | 6 => {
                let cmd = *self.r.pick(&[KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST]);
                let (n, tag) = self.count();
                let mut s = S::new(4);
                s.u32(0, n);
                let cap = 4 + 4 * (n as usize).min(4096);
                let name = crate::ioctls::name(cmd);
                self.sput(k, cmd, s, cap, &format!("{name}/{tag}"))
            }
            7 => {
                let (s, cap, tag) = self.msrs(true);
                self.sput(k, KVM_GET_MSRS, s, cap, &format!("GET_MSRS(system)/{tag}"))
            }
            8 => self.sput(k, KVM_X86_GET_MCE_CAP_SUPPORTED, S::new(8), 8, "X86_GET_MCE_CAP_SUPPORTED"),
            9 => {
                let t = if self.r.chance(700) { 0 } else { self.r.interesting() };
                let s = self.slot();
                self.ioctl_store(k, KVM_CREATE_VM, Arg::Int(t), s, if t == 0 { "CREATE_VM" } else { "CREATE_VM/type" });
                if let Some(s) = s {
                    self.vms.push(s)
                }
            }
            10 => self.ioctl(k, KVM_GET_STATS_FD, Arg::Int(0), "GET_STATS_FD(system)"),
            _ => self.unknown(k, "system"),
        }
    }

    /// A FAM count: small, realistic, boundary or huge.
    fn count(&mut self) -> (u32, &'static str) {
        match self.r.below(10) {
            0 => (0, "n0"),
            1 => (1, "n1"),
            2..=5 => (self.r.range(64, 256) as u32, "n-ok"),
            6 => (*self.r.pick(&[255u32, 256, 257, 1024, 4096]), "n-boundary"),
            _ => (*self.r.pick(&[0x7fff_ffffu32, 0xffff_ffff, 0x1000_0000, 0x10_0000]), "n-huge"),
        }
    }

    fn unknown(&mut self, fd: u16, what: &str) {
        let nr = self.r.below(256) as u32;
        let dir = self.r.below(4) as u32;
        let size = *self.r.pick(&[0u32, 4, 8, 16, 64, 0x3fff]);
        let ty = if self.r.chance(900) { 0xAE } else { self.r.below(256) as u32 };
        let cmd = (dir << 30) | (size << 16) | (ty << 8) | nr;
        let cap = size.max(8) as usize;
        let s = S::rand(self.r, cap.min(64));
        self.ops.push(Op::Ioctl { fd: FdRef::Slot(fd), cmd, arg: s.arg(cap + 64), store: None, label: format!("unknown({what})") });
    }

    // --- VM ioctls -------------------------------------------------------------

    fn vm_fd(&mut self) -> Option<u16> {
        if self.vms.is_empty() {
            return None;
        }
        // Now and then a VM ioctl goes to a vCPU or /dev/kvm fd instead.
        if self.r.chance(30) && !self.vcpus.is_empty() {
            return Some(self.r.pick(&self.vcpus).0);
        }
        if self.r.chance(20) && !self.kvm.is_empty() {
            return Some(*self.r.pick(&self.kvm));
        }
        Some(*self.r.pick(&self.vms))
    }

    fn memslot(&mut self) {
        let Some(vm) = self.vm_fd() else { return };
        let mut tag = vec![];
        let slot = match self.r.below(10) {
            0..=5 => self.r.below(4),
            6 | 7 => self.r.range(4, 40),
            8 => *self.r.pick(&[509u64, 510, 511, 512, 32767, 0xffff]),
            _ => {
                tag.push("as-id");
                (1 << 16) | self.r.below(4)
            }
        };
        let flags = match self.r.below(20) {
            0..=13 => 0,
            14..=16 => 1,
            17 => 2,
            18 => 4,
            _ => {
                tag.push("flags");
                self.r.next() & 0xff
            }
        };
        let (m, mlen) = if self.mems.is_empty() { (0, 0x1000) } else { *self.r.pick(&self.mems) };
        let size = match self.r.below(10) {
            0..=2 => 0,
            3..=7 => (self.r.range(1, (mlen / 4096).max(1))) * 4096,
            8 => {
                tag.push("size-misaligned");
                self.r.range(1, mlen)
            }
            _ => {
                tag.push("size-huge");
                *self.r.pick(&[1u64 << 40, u64::MAX & !0xfff, 0x7fff_ffffu64 << 12, 1 << 32])
            }
        };
        let gpa = match self.r.below(10) {
            0..=3 => self.r.below(4) * 0x100000,
            4 | 5 => {
                tag.push("overlap");
                self.r.below(0x40) * 0x1000
            }
            6 => {
                tag.push("gpa-misaligned");
                self.r.range(1, 0xfff) + self.r.below(16) * 0x1000
            }
            7 => {
                tag.push("gpa-high");
                *self.r.pick(&[1u64 << 52, 0xffff_f000, 0xfee0_0000, 0xffff_ffff_ffff_f000, 1 << 40, 0xfec0_0000])
            }
            _ => (self.r.below(0x10_0000)) << 12,
        };
        let mut s = S::new(32);
        s.u32(0, slot).u32(4, flags).u64(8, gpa).u64(16, size);
        match self.r.below(10) {
            0..=7 => {
                let off = self.r.below((mlen / 4096).max(1)) * 4096 * (self.r.chance(500) as u64);
                s.patch(24, 8, Val::Mem(m, off));
            }
            8 => {
                tag.push("uaddr-misaligned");
                s.patch(24, 8, Val::Mem(m, self.r.range(1, 0xfff)));
            }
            _ => {
                tag.push("uaddr-bad");
                s.u64(24, *self.r.pick(&KERNEL_PTRS));
            }
        }
        let tag = if tag.is_empty() { "ok".to_string() } else { tag.join("+") };
        if self.r.chance(800) {
            self.sput(vm, KVM_SET_USER_MEMORY_REGION, s, 32, &format!("SET_USER_MEMORY_REGION/{tag}"));
        } else {
            let mut s2 = S::new(160);
            s2.b[..32].copy_from_slice(&s.b);
            s2.patches = s.patches;
            if self.r.chance(300) {
                let (v, _) = self.any_fd_val();
                s2.u64(32, self.r.below(4) * 4096).patch(40, 4, v);
            }
            if self.r.chance(100) {
                s2.u64(48 + 8 * self.r.below(14) as usize, self.r.next());
            }
            self.sput(vm, KVM_SET_USER_MEMORY_REGION2, s2, 160, &format!("SET_USER_MEMORY_REGION2/{tag}"));
        }
    }

    fn vm_ioctl(&mut self) {
        let Some(vm) = self.vm_fd() else {
            let k = if self.kvm.is_empty() { 0 } else { self.kvm[0] };
            return self.sys_ioctl(k);
        };
        let r = &mut *self.r;
        match r.below(34) {
            0 => self.memslot(),
            1 => {
                let vmv = vm;
                self.new_vcpu(vmv, false)
            }
            2 => {
                let mut s = S::new(16);
                s.u32(0, self.r.below(6));
                if self.r.chance(900) {
                    s.patch(8, 8, Val::SelfOff(64));
                } else {
                    s.u64(8, *self.r.pick(&KERNEL_PTRS));
                }
                self.sput(vm, KVM_GET_DIRTY_LOG, s, 64 + 0x10000, "GET_DIRTY_LOG")
            }
            3 => {
                let mut s = S::new(24);
                let np = *self.r.pick(&[0u64, 1, 63, 64, 65, 0x1000, 0xffff_ffff]);
                let fp = *self.r.pick(&[0u64, 1, 64, 0x40, 1 << 40]);
                s.u32(0, self.r.below(6)).u32(4, np).u64(8, fp).patch(16, 8, Val::SelfOff(64));
                self.sput(vm, KVM_CLEAR_DIRTY_LOG, s, 64 + 0x10000, "CLEAR_DIRTY_LOG")
            }
            4 => self.ioctl(vm, KVM_CREATE_IRQCHIP, Arg::Int(0), "CREATE_IRQCHIP"),
            5 | 6 => {
                let cmd = if self.r.chance(500) { KVM_IRQ_LINE } else { KVM_IRQ_LINE_STATUS };
                let (irq, tag) = if self.r.chance(850) {
                    (self.r.below(24), "ok")
                } else {
                    (*self.r.pick(&[24u64, 255, 1023, 1024, 4096, 0xffff_ffff]), "bad-irq")
                };
                let lvl = if self.r.chance(900) { self.r.below(2) } else { self.r.next() };
                let mut s = S::new(8);
                s.u32(0, irq).u32(4, lvl);
                let name = crate::ioctls::name(cmd);
                self.sput(vm, cmd, s, 8, &format!("{name}/{tag}"))
            }
            7 => {
                let mut s = S::new(520);
                s.u32(0, if self.r.chance(900) { self.r.below(3) } else { self.r.interesting() });
                self.sput(vm, KVM_GET_IRQCHIP, s, 520, "GET_IRQCHIP")
            }
            8 => {
                let mut s = S::rand(self.r, 520);
                s.u32(0, if self.r.chance(900) { self.r.below(3) } else { self.r.interesting() }).u32(4, 0);
                self.sput(vm, KVM_SET_IRQCHIP, s, 520, "SET_IRQCHIP")
            }
            9 | 10 => self.gsi_routing(vm),
            11 => {
                let mut s = S::new(32);
                let dest = self.r.below(4);
                let lo = if self.r.chance(900) { 0xfee0_0000 | (dest << 12) } else { self.r.next() };
                s.u32(0, lo).u32(8, self.r.below(256) | (self.r.below(8) << 8) * (self.r.chance(200) as u64));
                if self.r.chance(100) {
                    s.u32(4, self.r.next()).u32(12, self.r.next());
                }
                self.sput(vm, KVM_SIGNAL_MSI, s, 32, "SIGNAL_MSI")
            }
            12 => {
                let mut s = S::new(64);
                s.u32(0, *self.r.pick(&[0u64, 1, 2, 0xffff_ffff]));
                if self.r.chance(100) {
                    s.u32(4 + 4 * self.r.below(15) as usize, 1);
                }
                self.sput(vm, KVM_CREATE_PIT2, s, 64, "CREATE_PIT2")
            }
            13 => self.ioctl(vm, KVM_CREATE_PIT, Arg::Int(0), "CREATE_PIT"),
            14 => {
                let cmd = *self.r.pick(&[KVM_GET_PIT2, KVM_GET_PIT]);
                let name = crate::ioctls::name(cmd);
                self.sput(vm, cmd, S::new(112), 112, &name)
            }
            15 => {
                let (cmd, n) = *self.r.pick(&[(KVM_SET_PIT2, 112usize), (KVM_SET_PIT, 72)]);
                let mut s = S::rand(self.r, n);
                if self.r.chance(500) {
                    // plausible: mode 2, count 0x1000 on channel 0
                    s = S::new(n);
                    s.u32(0, self.r.below(0x10000)).u8(22, 2).u8(23, 0).u8(24, 3);
                }
                let name = crate::ioctls::name(cmd);
                self.sput(vm, cmd, s, n, &name)
            }
            16 | 17 | 18 => self.irqfd(vm),
            19 | 20 => self.ioeventfd(vm),
            21 | 22 => {
                let cmd = if self.r.chance(650) { KVM_REGISTER_COALESCED_MMIO } else { KVM_UNREGISTER_COALESCED_MMIO };
                let pio = if self.r.chance(700) { 0 } else if self.r.chance(900) { 1 } else { self.r.next() & 0xffff_ffff };
                let addr = if pio == 0 {
                    *self.r.pick(&[0xd000_0000u64, 0xd000_1000, 0x50000, 0xfee0_0000, u64::MAX - 7, 0])
                } else {
                    self.r.range(0x70, 0x90)
                };
                let size = *self.r.pick(&[0u64, 1, 2, 4, 8, 0x1000, 0xffff_ffff]);
                let mut s = S::new(16);
                s.u64(0, addr + self.r.below(2) * 4).u32(8, size).u32(12, pio);
                let name = crate::ioctls::name(cmd);
                self.sput(vm, cmd, s, 16, &name)
            }
            23 => self.sput(vm, KVM_GET_CLOCK, S::new(48), 48, "GET_CLOCK"),
            24 => {
                let mut s = S::new(48);
                s.u64(0, self.r.interesting()).u32(8, *self.r.pick(&[0u64, 2, 4, 8, 0xffff_ffff])).u64(16, self.r.next()).u64(24, self.r.next());
                self.sput(vm, KVM_SET_CLOCK, s, 48, "SET_CLOCK")
            }
            25 => {
                let v = *self.r.pick(&[0u64, 1, 2, 255, 1024, 0xffff_ffff]);
                self.ioctl(vm, KVM_SET_BOOT_CPU_ID, Arg::Int(v), "SET_BOOT_CPU_ID")
            }
            26 => self.enable_cap(vm, true),
            27 => {
                let v = if self.r.chance(700) { 0xfffb_d000 } else { self.r.interesting() };
                self.ioctl(vm, KVM_SET_TSS_ADDR, Arg::Int(v), "SET_TSS_ADDR");
            }
            28 => {
                let mut s = S::new(8);
                s.u64(0, if self.r.chance(700) { 0xfffb_c000 } else { self.r.interesting() });
                self.sput(vm, KVM_SET_IDENTITY_MAP_ADDR, s, 8, "SET_IDENTITY_MAP_ADDR")
            }
            29 => match self.r.below(6) {
                0 => {
                    let v = self.r.interesting();
                    self.ioctl(vm, KVM_SET_NR_MMU_PAGES, Arg::Int(v), "SET_NR_MMU_PAGES")
                }
                1 => self.ioctl(vm, KVM_GET_NR_MMU_PAGES, Arg::Int(0), "GET_NR_MMU_PAGES"),
                2 => {
                    let mut s = S::new(32);
                    s.u8(0, self.r.below(2));
                    self.sput(vm, KVM_REINJECT_CONTROL, s, 32, "REINJECT_CONTROL")
                }
                3 => {
                    let s = self.slot();
                    self.ioctl_store(vm, KVM_GET_STATS_FD, Arg::Int(0), s, "GET_STATS_FD(vm)");
                    if let Some(s) = s {
                        self.others.push(s)
                    }
                }
                4 => {
                    let v = *self.r.pick(&[0u64, 1, 1_000_000, 2_500_000, 4_000_000_000, 0xffff_ffff]);
                    self.ioctl(vm, KVM_SET_TSC_KHZ, Arg::Int(v), "SET_TSC_KHZ(vm)")
                }
                _ => self.ioctl(vm, KVM_GET_TSC_KHZ, Arg::Int(0), "GET_TSC_KHZ(vm)"),
            },
            30 => {
                let c = if self.r.chance(800) { self.r.below(250) } else { self.r.interesting() };
                self.ioctl(vm, KVM_CHECK_EXTENSION, Arg::Int(c), "CHECK_EXTENSION(vm)")
            }
            31 => {
                // KVM_CREATE_DEVICE (TEST flag mostly: no fd to leak)
                let mut s = S::new(12);
                s.u32(0, if self.r.chance(800) { self.r.below(12) } else { self.r.interesting() }).u32(8, if self.r.chance(900) { 1 } else { 0 });
                self.sput(vm, KVM_CREATE_DEVICE, s, 12, "CREATE_DEVICE")
            }
            32 => match self.r.below(7) {
                0 => {
                    let (n, tag) = self.count();
                    let mut s = S::new(32);
                    s.u32(0, self.r.below(3)).u32(4, n).u32(8, self.r.next()).u32(12, self.r.below(3));
                    let k = (n as usize).min(64);
                    let mut b = s.b.clone();
                    b.extend(self.r.bytes(8 * k));
                    let s = S { b, patches: vec![] };
                    self.sput(vm, KVM_SET_PMU_EVENT_FILTER, s, 32 + 8 * k, &format!("SET_PMU_EVENT_FILTER/{tag}"))
                }
                1 => {
                    let mut s = S::new(392);
                    s.u32(0, *self.r.pick(&[0u64, 1, 2, 0xffff_ffff]));
                    for i in 0..self.r.below(3) as usize {
                        let o = 8 + 24 * i;
                        s.u32(o, self.r.range(0, 4)).u32(o + 4, *self.r.pick(&[0u64, 1, 64, 0x3000, 0xffff_ffff])).u32(o + 8, *self.r.pick(&[0u64, 0xc000_0000, 0x4b56_4d00]));
                        s.patch(o + 16, 8, Val::SelfOff(512));
                    }
                    self.sput(vm, KVM_X86_SET_MSR_FILTER, s, 512 + 0x600, "X86_SET_MSR_FILTER")
                }
                2 => {
                    let mut s = S::new(32);
                    s.u64(0, self.r.below(16) * 4096).u64(8, self.r.below(16) * 4096).u64(16, *self.r.pick(&[0u64, 8, 1 << 3, u64::MAX])).u64(24, self.r.below(2));
                    self.sput(vm, KVM_SET_MEMORY_ATTRIBUTES, s, 32, "SET_MEMORY_ATTRIBUTES")
                }
                3 => {
                    let mut s = S::new(64);
                    s.u64(0, *self.r.pick(&[0u64, 4096, 0x100000, 1 << 40])).u64(8, *self.r.pick(&[0u64, 1, u64::MAX]));
                    let slot = self.slot();
                    let (a, l) = self.place(s, 64, "CREATE_GUEST_MEMFD");
                    self.ioctl_store(vm, KVM_CREATE_GUEST_MEMFD, a, slot, &l);
                    if let Some(s) = slot {
                        self.others.push(s)
                    }
                }
                4 => {
                    let s = S::rand(self.r, 64);
                    let cmd = *self.r.pick(&[KVM_MEMORY_ENCRYPT_OP, KVM_MEMORY_ENCRYPT_REG_REGION, KVM_XEN_HVM_CONFIG, KVM_HYPERV_EVENTFD, KVM_XEN_HVM_GET_ATTR, KVM_SET_DEVICE_ATTR, KVM_HAS_DEVICE_ATTR]);
                    let name = crate::ioctls::name(cmd);
                    self.sput(vm, cmd, s, 128, &name)
                }
                5 => self.ioctl(vm, KVM_RESET_DIRTY_RINGS, Arg::Int(0), "RESET_DIRTY_RINGS"),
                _ => self.unknown(vm, "vm"),
            },
            _ => self.unknown(vm, "vm"),
        }
    }

    fn gsi_routing(&mut self, vm: u16) {
        let (n, tag) = match self.r.below(10) {
            0 => (0u32, "n0"),
            1..=6 => (self.r.range(1, 32) as u32, "n-ok"),
            7 => (*self.r.pick(&[1023u32, 1024, 1025, 4096]), "n-boundary"),
            _ => (*self.r.pick(&[0x10_0000u32, 0x7fff_ffff, 0xffff_ffff]), "n-huge"),
        };
        let k = (n as usize).min(64);
        let mut s = S::new(8 + 48 * k);
        s.u32(0, n);
        if self.r.chance(30) {
            s.u32(4, self.r.next());
        }
        for i in 0..k {
            let o = 8 + 48 * i;
            let gsi = if self.r.chance(900) { self.r.below(32) } else { *self.r.pick(&[1023u64, 1024, 4096, 0xffff_ffff]) };
            s.u32(o, gsi);
            match self.r.below(10) {
                0..=5 => {
                    let chip = if self.r.chance(950) { self.r.below(3) } else { self.r.interesting() };
                    let pin = if self.r.chance(950) { self.r.below(24) } else { self.r.interesting() };
                    s.u32(o + 4, 1).u32(o + 16, chip).u32(o + 20, pin);
                }
                6..=8 => {
                    s.u32(o + 4, 2).u32(o + 16, 0xfee0_0000 | (self.r.below(4) << 12)).u32(o + 24, self.r.below(256));
                    if self.r.chance(100) {
                        s.u32(o + 8, 1).u32(o + 28, self.r.next());
                    }
                }
                _ => {
                    s.u32(o + 4, self.r.below(8)).u32(o + 8, self.r.below(4)).u64(o + 16, self.r.next());
                }
            }
        }
        let cap = 8 + 48 * k;
        self.sput(vm, KVM_SET_GSI_ROUTING, s, cap, &format!("SET_GSI_ROUTING/{tag}"))
    }

    fn irqfd(&mut self, vm: u16) {
        let mut s = S::new(32);
        let (fv, ftag) = self.any_fd_val();
        s.patch(0, 4, fv);
        let gsi = if self.r.chance(900) { self.r.below(24) } else { self.r.interesting() };
        s.u32(4, gsi);
        let (flags, tag) = match self.r.below(10) {
            0..=4 => (0, "assign"),
            5..=7 => (1, "deassign"),
            8 => (2, "resample"),
            _ => (self.r.next() & 0xff, "flags"),
        };
        s.u32(8, flags);
        if flags & 2 != 0 {
            let (rv, _) = self.any_fd_val();
            s.patch(12, 4, rv);
        }
        if self.r.chance(30) {
            s.u32(16 + 4 * self.r.below(4) as usize, 1);
        }
        self.sput(vm, KVM_IRQFD, s, 32, &format!("IRQFD/{tag}/{ftag}"))
    }

    fn ioeventfd(&mut self, vm: u16) {
        let mut s = S::new(64);
        let (fv, ftag) = self.any_fd_val();
        let pio = self.r.chance(500);
        let addr = if pio { self.r.range(0x70, 0x90) } else { *self.r.pick(&[0xd000_0000u64, 0xd000_0008, 0x50000, 0xfee0_0000, u64::MAX - 3]) };
        let len = *self.r.pick(&[0u64, 1, 2, 4, 8, 3, 16]);
        let mut flags = (pio as u64) << 1;
        if self.r.chance(300) {
            flags |= 1;
        }
        let deassign = self.r.chance(300);
        if deassign {
            flags |= 4;
        }
        if self.r.chance(30) {
            flags |= self.r.next() & 0xf8;
        }
        s.u64(0, self.r.below(4)).u64(8, addr).u32(16, len).patch(20, 4, fv).u32(24, flags);
        let tag = if deassign { "deassign" } else { "assign" };
        self.sput(vm, KVM_IOEVENTFD, s, 64, &format!("IOEVENTFD/{tag}/{ftag}"))
    }

    fn enable_cap(&mut self, fd: u16, vm: bool) {
        const CAPS: [u64; 20] = [121, 129, 168, 128, 201, 213, 143, 182, 212, 188, 204, 193, 218, 219, 237, 66, 190, 164, 159, 123];
        let cap = if self.r.chance(900) { *self.r.pick(&CAPS) } else { self.r.interesting() };
        let mut s = S::new(104);
        s.u32(0, cap);
        if self.r.chance(50) {
            s.u32(4, self.r.next());
        }
        for i in 0..4 {
            let v = if self.r.chance(600) { self.r.below(32) } else { self.r.interesting() };
            s.u64(8 + 8 * i, v);
        }
        let label = format!("ENABLE_CAP({})/{cap}", if vm { "vm" } else { "vcpu" });
        let label = if cap > 300 { label.replace(&cap.to_string(), "bad") } else { label };
        self.sput(fd, KVM_ENABLE_CAP, s, 104, &label)
    }

    // --- vCPU ioctls -----------------------------------------------------------

    fn msrs(&mut self, feature: bool) -> (S, usize, &'static str) {
        const MSRS: [u64; 40] = [
            0xc000_0080, 0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084, 0xc000_0100, 0xc000_0101, 0xc000_0102,
            0xc000_0103, 0x10, 0x1b, 0x174, 0x175, 0x176, 0x277, 0xfe, 0x2ff, 0x200, 0x201, 0x1a0, 0x3b, 0x6e0,
            0x4b56_4d00, 0x4b56_4d01, 0x4b56_4d02, 0x4b56_4d03, 0x4b56_4d04, 0x11, 0x12, 0x179, 0x17a, 0x17b, 0x400,
            0x802, 0x80b, 0x48, 0xc001_0015, 0xc001_0114, 0xc001_0117, 0xda0,
        ];
        let (n, tag) = match self.r.below(10) {
            0 => (0u32, "n0"),
            1..=7 => (self.r.range(1, 8) as u32, "n-ok"),
            8 => (*self.r.pick(&[255u32, 256, 257]), "n-boundary"),
            _ => (*self.r.pick(&[0x10000u32, 0x7fff_ffff, 0xffff_ffff]), "n-huge"),
        };
        let k = (n as usize).min(300);
        let mut s = S::new(8 + 16 * k);
        s.u32(0, n);
        for i in 0..k {
            let o = 8 + 16 * i;
            let idx = if feature {
                *self.r.pick(&[0x10a, 0x345, 0xc001_1029, 0x8b, 0xc000_0080])
            } else if self.r.chance(900) {
                *self.r.pick(&MSRS)
            } else {
                self.r.next() & 0xffff_ffff
            };
            s.u32(o, idx).u64(o + 8, self.r.interesting());
        }
        (s, 8 + 16 * k, tag)
    }

    fn cpuid2(&mut self, legacy: bool) -> (S, usize, &'static str) {
        let (n, tag) = match self.r.below(10) {
            0 => (0u32, "n0"),
            1..=6 => (self.r.range(1, 40) as u32, "n-ok"),
            7 => (*self.r.pick(&[255u32, 256, 257]), "n-boundary"),
            _ => (*self.r.pick(&[0x10000u32, 0x7fff_ffff, 0xffff_ffff]), "n-huge"),
        };
        let es = if legacy { 24 } else { 40 };
        let k = (n as usize).min(260);
        let mut s = S::new(8 + es * k);
        s.u32(0, n);
        const FN: [u64; 14] = [0, 1, 4, 6, 7, 0xb, 0xd, 0x8000_0000, 0x8000_0001, 0x8000_0008, 0x8000_000a, 0x4000_0000, 0x4000_0001, 0x8000_001f];
        for i in 0..k {
            let o = 8 + es * i;
            let f = if self.r.chance(900) { *self.r.pick(&FN) } else { self.r.next() & 0xffff_ffff };
            let regs = if f == 0 { [0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65] } else { [self.r.next(), self.r.next(), self.r.next(), self.r.next()] };
            if legacy {
                s.u32(o, f).u32(o + 4, regs[0]).u32(o + 8, regs[1]).u32(o + 12, regs[2]).u32(o + 16, regs[3]);
            } else {
                s.u32(o, f).u32(o + 4, self.r.below(3)).u32(o + 8, self.r.below(2)).u32(o + 12, regs[0]).u32(o + 16, regs[1]).u32(o + 20, regs[2]).u32(o + 24, regs[3]);
            }
        }
        (s, 8 + es * k, tag)
    }

    fn vcpu_ioctl(&mut self) {
        if self.vcpus.is_empty() {
            return self.vm_ioctl();
        }
        let (mut v, vm) = *self.r.pick(&self.vcpus);
        if self.r.chance(30) {
            v = vm; // a vCPU ioctl on the VM fd
        }
        match self.r.below(40) {
            0 => self.sput(v, KVM_GET_REGS, S::new(144), 144, "GET_REGS"),
            1 | 2 => {
                let mut s = regs(self.r);
                let tag = if self.r.chance(300) {
                    s.mutate(self.r);
                    "mutated"
                } else {
                    "ok"
                };
                self.sput(v, KVM_SET_REGS, s, 144, &format!("SET_REGS/{tag}"))
            }
            3 => self.sput(v, KVM_GET_SREGS, S::new(312), 312, "GET_SREGS"),
            4 | 5 => {
                let mut s = sregs_real(self.r);
                let tag = match self.r.below(10) {
                    0..=4 => "ok",
                    5..=8 => {
                        s.mutate(self.r);
                        "mutated"
                    }
                    _ => {
                        s = S::rand(self.r, 312);
                        "random"
                    }
                };
                self.sput(v, KVM_SET_SREGS, s, 312, &format!("SET_SREGS/{tag}"))
            }
            6 => {
                let cmd = *self.r.pick(&[KVM_GET_SREGS2, KVM_SET_SREGS2]);
                let mut s = sregs_real(self.r);
                s.b.extend([0u8; 8]);
                if self.r.chance(500) {
                    s.mutate(self.r);
                }
                let name = crate::ioctls::name(cmd);
                self.sput(v, cmd, s, 320, &name)
            }
            7 => {
                let mut s = S::new(24);
                s.u64(0, if self.r.chance(700) { self.r.below(0x100000) } else { self.r.interesting() });
                self.sput(v, KVM_TRANSLATE, s, 24, "TRANSLATE")
            }
            8 => {
                let mut s = S::new(4);
                s.u32(0, if self.r.chance(900) { self.r.below(256) } else { *self.r.pick(&[256u64, 0xffff_ffff]) });
                self.sput(v, KVM_INTERRUPT, s, 4, "INTERRUPT")
            }
            9 | 10 => {
                let set = self.r.chance(500);
                let (s, cap, tag) = self.msrs(false);
                let cmd = if set { KVM_SET_MSRS } else { KVM_GET_MSRS };
                let name = crate::ioctls::name(cmd);
                self.sput(v, cmd, s, cap, &format!("{name}/{tag}"))
            }
            11 | 12 => {
                let legacy = self.r.chance(150);
                let (s, cap, tag) = self.cpuid2(legacy);
                let cmd = if legacy { KVM_SET_CPUID } else { KVM_SET_CPUID2 };
                let name = crate::ioctls::name(cmd);
                self.sput(v, cmd, s, cap, &format!("{name}/{tag}"))
            }
            13 => {
                let (n, tag) = self.count();
                let mut s = S::new(8);
                s.u32(0, n);
                let cmd = if self.r.chance(800) { KVM_GET_CPUID2 } else { KVM_GET_SUPPORTED_HV_CPUID };
                let name = crate::ioctls::name(cmd);
                self.sput(v, cmd, s, 8 + 40 * (n as usize).min(512), &format!("{name}/{tag}"))
            }
            14 => {
                if self.r.chance(100) {
                    return self.ioctl(v, KVM_SET_SIGNAL_MASK, Arg::Int(0), "SET_SIGNAL_MASK/null");
                }
                let len = if self.r.chance(800) { 8 } else { *self.r.pick(&[0u64, 4, 16, 128, 0xffff_ffff]) };
                let mut s = S::new(12);
                s.u32(0, len).u64(4, self.r.next() & !(1 << 9) & !(1 << 8));
                self.sput(v, KVM_SET_SIGNAL_MASK, s, 140, if len == 8 { "SET_SIGNAL_MASK" } else { "SET_SIGNAL_MASK/badlen" })
            }
            15 => self.sput(v, KVM_GET_FPU, S::new(416), 416, "GET_FPU"),
            16 => {
                let mut s = S::new(416);
                if self.r.chance(500) {
                    s = S::rand(self.r, 416);
                }
                s.u16(32, 0x37f);
                self.sput(v, KVM_SET_FPU, s, 416, "SET_FPU")
            }
            17 => self.sput(v, KVM_GET_LAPIC, S::new(1024), 1024, "GET_LAPIC"),
            18 => {
                let mut s = S::new(1024);
                match self.r.below(3) {
                    0 => {
                        s.u32(0x20, self.r.below(4) << 24).u32(0x30, 0x0005_0014).u32(0xf0, 0x1ff).u32(0x350, 0x700).u32(0x360, 0x400).u32(0x320, 0x10000 | self.r.below(256)).u32(0x3e0, self.r.below(16)).u32(0x380, self.r.below(0x10000));
                    }
                    1 => {
                        s.mutate(self.r);
                    }
                    _ => s = S::rand(self.r, 1024),
                }
                self.sput(v, KVM_SET_LAPIC, s, 1024, "SET_LAPIC")
            }
            19 => {
                let mut s = S::new(40);
                s.u32(0, self.r.below(2)).u32(4, if self.r.chance(900) { 0 } else { self.r.next() });
                self.sput(v, KVM_TPR_ACCESS_REPORTING, s, 40, "TPR_ACCESS_REPORTING")
            }
            20 => {
                let mut s = S::new(8);
                s.u64(0, *self.r.pick(&[0u64, 0x2000, 0xfee0_0000, 1 << 52, 0x3001]));
                self.sput(v, KVM_SET_VAPIC_ADDR, s, 8, "SET_VAPIC_ADDR")
            }
            21 => self.sput(v, KVM_GET_MP_STATE, S::new(4), 4, "GET_MP_STATE"),
            22 => {
                let mut s = S::new(4);
                s.u32(0, if self.r.chance(900) { self.r.below(9) } else { self.r.interesting() });
                self.sput(v, KVM_SET_MP_STATE, s, 4, "SET_MP_STATE")
            }
            23 => self.ioctl(v, KVM_NMI, Arg::Int(0), "NMI"),
            24 => {
                let mut s = S::new(72);
                let ctl = match self.r.below(5) {
                    0 => 0,
                    1 => 1 | 2,
                    2 => 1 | 0x10000,
                    3 => 1 | 0x20000 | 0x40000,
                    _ => self.r.next() & 0x1f_0003,
                };
                s.u32(0, ctl);
                for i in 0..8 {
                    if self.r.chance(200) {
                        s.u64(8 + 8 * i, self.r.interesting());
                    }
                }
                self.sput(v, KVM_SET_GUEST_DEBUG, s, 72, "SET_GUEST_DEBUG")
            }
            25 => {
                let mut s = S::new(8);
                s.u64(0, *self.r.pick(&[0u64, 0x109, 0x10a, 0x1_0000_0109, 0x20, 0xff]));
                self.sput(v, KVM_X86_SETUP_MCE, s, 8, "X86_SETUP_MCE")
            }
            26 => {
                let mut s = S::rand(self.r, 64);
                s.u8(48, self.r.below(12));
                self.sput(v, KVM_X86_SET_MCE, s, 64, "X86_SET_MCE")
            }
            27 => self.sput(v, KVM_GET_VCPU_EVENTS, S::new(64), 64, "GET_VCPU_EVENTS"),
            28 => {
                let mut s = S::new(64);
                match self.r.below(4) {
                    0 => {
                        s.u8(0, 1).u8(1, self.r.below(32)).u8(2, self.r.below(2)).u32(4, self.r.below(0x10000));
                    }
                    1 => {
                        s.u8(8, 1).u8(9, self.r.below(256)).u8(13, self.r.below(2)).u8(14, self.r.below(2));
                    }
                    2 => {
                        s.mutate(self.r);
                    }
                    _ => s = S::rand(self.r, 64),
                }
                if self.r.chance(300) {
                    s.u32(20, self.r.below(0x40));
                }
                self.sput(v, KVM_SET_VCPU_EVENTS, s, 64, "SET_VCPU_EVENTS")
            }
            29 => self.sput(v, KVM_GET_DEBUGREGS, S::new(128), 128, "GET_DEBUGREGS"),
            30 => {
                let mut s = S::new(128);
                for i in 0..4 {
                    s.u64(8 * i, self.r.interesting());
                }
                s.u64(32, *self.r.pick(&[0xffff_0ff0u64, 0, 1 << 32, u64::MAX])).u64(40, *self.r.pick(&[0x400u64, 0x401, 1 << 32, u64::MAX]));
                if self.r.chance(100) {
                    s.u32(48, 1);
                }
                self.sput(v, KVM_SET_DEBUGREGS, s, 128, "SET_DEBUGREGS")
            }
            31 => self.enable_cap(v, false),
            32 => {
                let cmd = *self.r.pick(&[KVM_GET_XSAVE, KVM_GET_XSAVE2]);
                let name = crate::ioctls::name(cmd);
                self.sput(v, cmd, S::new(4096), 0x10000, &name)
            }
            33 => {
                let mut s = S::new(4096);
                match self.r.below(3) {
                    0 => {
                        s.u16(0, 0x37f).u64(512, 3);
                    }
                    1 => {
                        s.u16(0, 0x37f).u64(512, self.r.interesting()).u64(520, self.r.interesting());
                    }
                    _ => s = S::rand(self.r, 4096),
                }
                self.sput(v, KVM_SET_XSAVE, s, 4096, "SET_XSAVE")
            }
            34 => self.sput(v, KVM_GET_XCRS, S::new(392), 392, "GET_XCRS"),
            35 => {
                let mut s = S::new(392);
                let n = *self.r.pick(&[0u64, 1, 1, 2, 16, 17, 0xffff_ffff]);
                s.u32(0, n);
                for i in 0..(n as usize).min(16) {
                    s.u32(8 + 16 * i, if self.r.chance(800) { 0 } else { self.r.below(4) }).u64(16 + 16 * i, *self.r.pick(&[1u64, 3, 7, 0x207, 0x2e7, 2, 0, u64::MAX]));
                }
                self.sput(v, KVM_SET_XCRS, s, 392, "SET_XCRS")
            }
            36 => {
                let cmd = *self.r.pick(&[KVM_GET_ONE_REG, KVM_SET_ONE_REG]);
                let mut s = S::new(16);
                s.u64(0, self.r.next()).patch(8, 8, Val::SelfOff(64));
                let name = crate::ioctls::name(cmd);
                self.sput(v, cmd, s, 64 + 256, &name)
            }
            37 => {
                let cmd = *self.r.pick(&[KVM_KVMCLOCK_CTRL, KVM_SMI, KVM_GET_TSC_KHZ]);
                let name = crate::ioctls::name(cmd);
                self.ioctl(v, cmd, Arg::Int(0), &name)
            }
            38 => match self.r.below(if self.nested_guest_mode { 5 } else { 4 }) {
                4 => {
                    // A guest-mode SVM nested state that passes the
                    // checks as often as not (VMRUN intercepted, an ASID,
                    // L1 in long mode with EFER.SVME), then mutated: the
                    // next KVM_RUN enters L2 from it. EFER.SVME first
                    // (KVM_SET_MSRS, as userspace restoring L1 would).
                    if self.r.chance(800) {
                        let mut m = S::new(24);
                        m.u32(0, 1u64).u32(8, 0xc000_0080u64).u64(16, *self.r.pick(&[0x1000u64, 0x1d00, 0x1500]));
                        self.sput(v, KVM_SET_MSRS, m, 24, "SET_MSRS(EFER.SVME)");
                    }
                    let mut s = S::new(0x1080);
                    s.u16(0, *self.r.pick(&[0x101u64, 0x101, 0x1, 0x103]))
                        .u16(2, 1)
                        .u32(4, *self.r.pick(&[0x1080u64, 0x1080, 0x1000, 0xffff_ffff]))
                        .u64(8, self.r.below(0x40) * 4096);
                    s.u32(128 + 0x10, 1u64).u32(128 + 0x58, self.r.below(3));
                    s.u64(128 + 0x400 + 0xd0, 0x1d00u64)
                        .u64(128 + 0x400 + 0x148, 0x20u64)
                        .u64(128 + 0x400 + 0x158, 0x8000_0011u64)
                        .u64(128 + 0x400 + 0x178, self.r.interesting());
                    if self.r.chance(500) {
                        s.mutate(self.r);
                    }
                    self.sput(v, KVM_SET_NESTED_STATE, s, 0x1080, "SET_NESTED_STATE(guest mode)")
                }
                0 => {
                    let mut s = S::new(128);
                    s.u32(4, *self.r.pick(&[128u64, 0, 0x2000, 0xffff_ffff]));
                    self.sput(v, KVM_GET_NESTED_STATE, s, 0x4000, "GET_NESTED_STATE")
                }
                1 => {
                    let mut s = S::rand(self.r, 128);
                    s.u32(4, *self.r.pick(&[128u64, 0x1080, 0xffff_ffff])).u16(2, self.r.below(2));
                    self.sput(v, KVM_SET_NESTED_STATE, s, 0x1080, "SET_NESTED_STATE")
                }
                2 => {
                    let val = *self.r.pick(&[0u64, 1, 1_000_000, 2_500_000, 4_000_000_000, 0xffff_ffff]);
                    self.ioctl(v, KVM_SET_TSC_KHZ, Arg::Int(val), "SET_TSC_KHZ")
                }
                _ => {
                    let mut s = S::new(64);
                    s.u64(0, self.r.below(0x40) * 4096).u64(8, self.r.range(0, 4) * 4096).u64(16, self.r.below(2));
                    self.sput(v, KVM_PRE_FAULT_MEMORY, s, 64, "PRE_FAULT_MEMORY")
                }
            },
            _ => {
                if self.r.chance(500) {
                    let s = self.slot();
                    self.ioctl_store(v, KVM_GET_STATS_FD, Arg::Int(0), s, "GET_STATS_FD(vcpu)");
                    if let Some(s) = s {
                        self.others.push(s)
                    }
                } else {
                    self.unknown(v, "vcpu")
                }
            }
        }
    }
}

/// Random VM and vCPU ioctls on fixed fds for the ioctl storm: slot 0 is
/// /dev/kvm, 1 the VM, 2.. the vCPUs, memory slot 0 the guest RAM. Ops that
/// would create, close or map fds are left out (the fds are shared).
pub fn storm_ops(r: &mut Rng, nfds: u16, ram: u64) -> Vec<Op> {
    let mut g = Gen::new(r);
    g.kvm = vec![0];
    g.vms = vec![1];
    g.vcpus = (2..nfds).map(|s| (s, 1)).collect();
    g.mems = vec![(0, ram)];
    g.ram = Some((0, ram));
    g.next_mem = 1;
    g.used = [true; crate::exec::FD_SLOTS];
    for _ in 0..300 {
        match g.r.below(5) {
            0 | 1 => g.vm_ioctl(),
            2 | 3 => g.vcpu_ioctl(),
            _ => g.memslot(),
        }
    }
    g.ops
        .into_iter()
        .filter(|o| match o {
            Op::Ioctl { store, cmd, .. } => store.is_none() && *cmd != KVM_CREATE_DEVICE,
            _ => false,
        })
        .collect()
}

/// kvm_regs with RIP at CODE, a stack, RFLAGS bit 1.
pub fn regs(r: &mut Rng) -> S {
    let mut s = S::new(144);
    for i in 0..4 {
        s.u64(8 * i, r.below(0x10000));
    }
    s.u64(48, STACK).u64(128, CODE).u64(136, 2);
    s
}

/// kvm_sregs for real mode with every segment based at 0 (flat 64 KiB).
pub fn sregs_real(_r: &mut Rng) -> S {
    let mut s = S::new(312);
    for i in 0..8 {
        let o = 24 * i;
        let ty = match i {
            0 => 0xb, // cs
            6 => 0xb, // tr
            7 => 2,   // ldt
            _ => 3,
        };
        s.u64(o, 0).u32(o + 8, 0xffff).u16(o + 12, 0).u8(o + 14, ty).u8(o + 15, 1);
        s.u8(o + 18, if i >= 6 { 0 } else { 1 }); // s
    }
    s.u64(192, 0).u16(200, 0xffff).u64(208, 0).u16(216, 0xffff);
    s.u64(224, 0x6000_0010).u64(272, 0xfee0_0900u32);
    s
}

/// Random real-mode guest code: port and MMIO accesses, CPUID, MSRs, HLT,
/// exceptions, control registers, interrupts, loops and random bytes.
pub fn guest_code(r: &mut Rng, max: usize) -> Vec<u8> {
    let mut c = Vec::new();
    while c.len() + 16 < max {
        match r.below(22) {
            0 => c.extend([0xe6, r.below(256) as u8]),                        // out imm8, al
            1 => c.extend([0xe4, r.below(256) as u8]),                        // in al, imm8
            2 => {
                let rnd = r.next() as u16;
                let p = *r.pick(&[0x20u16, 0x21, 0x40, 0x43, 0x61, 0x70, 0x71, 0x80, 0x3f8, 0xcf8, 0xcfc, 0x510, rnd]);
                c.extend([0xba, p as u8, (p >> 8) as u8, 0xee]); // mov dx, p; out dx, al
            }
            3 => {
                let seg = *r.pick(&[0x5000u16, 0xd000, 0xfee0, 0xfec0, 0x1000, 0xf000]);
                c.extend([0xb8, seg as u8, (seg >> 8) as u8, 0x8e, 0xc0]); // mov ax, seg; mov es, ax
                let off = r.below(0x1000) as u16 & !3;
                if r.chance(500) {
                    c.extend([0x26, 0xa2, off as u8, (off >> 8) as u8]); // mov es:[off], al
                } else {
                    c.extend([0x26, 0xa1, off as u8, (off >> 8) as u8]); // mov ax, es:[off]
                }
            }
            4 => c.extend([0x0f, 0xa2]), // cpuid
            5 => {
                let rnd = r.next() as u32;
                let m = *r.pick(&[0x10u32, 0x1b, 0xc000_0080, 0x4b56_4d01, 0x174, 0x802, 0x830, 0x6e0, rnd]);
                c.extend([0x66, 0xb9]);
                c.extend(m.to_le_bytes());
                c.extend(if r.chance(500) { [0x0f, 0x32] } else { [0x0f, 0x30] }); // rdmsr / wrmsr
            }
            6 => c.push(0xf4),                       // hlt
            7 => c.extend([0xfb, 0xf4]),             // sti; hlt
            8 => c.push(0xcc),                       // int3
            9 => c.extend([0x0f, 0x0b]),             // ud2
            10 => c.extend([0x0f, 0x01, 0xd9]),      // vmmcall
            11 => c.extend([0x0f, 0x31]),            // rdtsc
            12 => c.extend([0x0f, 0x20, 0xc0, 0x66, 0x83, 0xc8, 0x01, 0x0f, 0x22, 0xc0]), // cr0 |= PE
            13 => c.extend([0xcd, r.below(256) as u8]), // int n
            14 => c.extend([0xeb, 0xfe]),            // jmp $
            15 => {
                let v = r.next() as u32;
                c.extend([0x66, 0xb8]);
                c.extend(v.to_le_bytes()); // mov eax, imm32
            }
            16 => c.extend([0xb9, 0xff, 0x0f, 0xf3, 0xa4]), // mov cx, 0xfff; rep movsb
            17 => c.extend([0x0f, 0x01, 0xd1]),      // xsetbv
            18 => c.extend([0xfa]),                  // cli
            19 => c.extend([0x0f, 0x09]),            // wbinvd
            20 => c.extend([0xf3, 0x90]),            // pause
            _ => {
                let n = r.range(1, 8) as usize;
                c.extend(r.bytes(n));
            }
        }
    }
    c.extend([0xeb, 0xfe]);
    c
}
