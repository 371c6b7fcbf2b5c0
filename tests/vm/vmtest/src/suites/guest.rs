//! Building and running the tiny guests of tests/vm/guests: guest memory,
//! a VM with the standard layout (guests/common.inc), vCPUs set up for
//! real, 32-bit paged protected, or long mode, and a KVM_RUN wrapper that
//! turns `struct kvm_run` into an owned [`Exit`] and never hangs.

use super::harness::{self, Armed, RUN_TIMEOUT};
use super::kvmsys;
use crate::sys::errno_name;
use kvm_bindings::*;
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use std::fmt;
use std::os::fd::AsRawFd;
use std::time::Duration;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
pub use consts::*;

/// A guest program: flat binary linked at CODE_ADDR and its routines.
pub struct GuestBin {
    pub name: &'static str,
    #[allow(dead_code)]
    pub bits: u32,
    pub bin: &'static [u8],
    pub syms: &'static [(&'static str, u64)],
}

impl GuestBin {
    /// Address of routine/label `name`.
    pub fn sym(&self, name: &str) -> Result<u64, String> {
        self.syms
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| format!("guest {} has no symbol {name}", self.name))
    }
}

/// The CPU mode a vCPU starts in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Real mode, all segments at 0 with 64 KiB limits.
    Real,
    /// 32-bit protected mode, flat segments, paging with 4 MiB pages.
    Prot32,
    /// 64-bit long mode, 4-level paging with 2 MiB pages.
    Long,
}

pub const MODES: [Mode; 3] = [Mode::Real, Mode::Prot32, Mode::Long];

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Real => "real",
            Mode::Prot32 => "prot32",
            Mode::Long => "long",
        }
    }
    pub fn bin(self) -> &'static GuestBin {
        match self {
            Mode::Real => &REAL16,
            Mode::Prot32 => &PROT32,
            Mode::Long => &LONG64,
        }
    }
}

/// Anonymous private memory from mmap, unmapped on drop.
pub struct Mem {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: plain memory; concurrent guest/host access is what the tests do
// on purpose, through volatile-free byte copies of disjoint regions.
unsafe impl Send for Mem {}
unsafe impl Sync for Mem {}

/// A fresh private anonymous read-write mapping of `len` bytes (no swap
/// reservation); the caller unmaps it.
pub fn anon_mmap(len: usize) -> Result<*mut u8, String> {
    // SAFETY: a new mapping at an address the kernel picks: no existing
    // memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap {len} bytes: {}", std::io::Error::last_os_error()));
    }
    Ok(p.cast())
}

impl Mem {
    pub fn new(len: usize) -> Result<Mem, String> {
        // We own the mapping until drop.
        Ok(Mem { ptr: anon_mmap(len)?, len })
    }
    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }
    fn check(&self, off: usize, n: usize) {
        assert!(off.checked_add(n).is_some_and(|e| e <= self.len), "guest memory access {off:#x}+{n} out of range");
    }
    pub fn write(&self, off: usize, data: &[u8]) {
        self.check(off, data.len());
        // SAFETY: in range (checked above); the mapping lives as long as self.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(off), data.len()) };
    }
    pub fn read(&self, off: usize, n: usize) -> Vec<u8> {
        self.check(off, n);
        let mut v = vec![0u8; n];
        // SAFETY: in range (checked above).
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(off), v.as_mut_ptr(), n) };
        v
    }
    pub fn write_u32(&self, off: usize, v: u32) {
        self.write(off, &v.to_le_bytes());
    }
    pub fn write_u64(&self, off: usize, v: u64) {
        self.write(off, &v.to_le_bytes());
    }
    pub fn read_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.read(off, 4).try_into().unwrap())
    }
    #[allow(dead_code)]
    pub fn read_u64(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.read(off, 8).try_into().unwrap())
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Formats a `kvm_ioctls` error (an errno) as its name.
pub fn kerr(e: kvm_ioctls::Error) -> String {
    errno_name(e.errno())
}

/// `Result` of a kvm-ioctls call, with the ioctl named in the error.
pub fn k<T>(what: &str, r: Result<T, kvm_ioctls::Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {}", kerr(e)))
}

/// A VM with slot 0 = RAM over [0, LOW_RAM_END) holding the standard
/// layout: GDT, TSS, IDT, page tables and the guest binary of `mode`.
pub struct Vm {
    pub kvm: Kvm,
    pub fd: VmFd,
    pub mem: Mem,
    pub mode: Mode,
}

/// Size of the slot-0 RAM mapping (the slot itself covers LOW_RAM_END).
pub const LOW_MEM_LEN: usize = 0x10000;

fn gdt_entries() -> [u64; 6] {
    let tss = TSS_ADDR;
    [
        0,
        0x00af_9b00_0000_ffff, // 0x08: 64-bit code, DPL 0
        0x00cf_9b00_0000_ffff, // 0x10: 32-bit code, 4 GiB
        0x00cf_9300_0000_ffff, // 0x18: data, 4 GiB
        // 0x20: busy TSS, base TSS_ADDR, limit 0x67 (16 bytes in long mode)
        0x67 | ((tss & 0xff_ffff) << 16) | (0x8b << 40) | (((tss >> 24) & 0xff) << 56),
        tss >> 32,
    ]
}

impl Vm {
    /// A VM without memory or layout, for tests of VM-level ioctls.
    pub fn bare() -> Result<Vm, String> {
        let kvm = k("open /dev/kvm", Kvm::new())?;
        let fd = k("KVM_CREATE_VM", kvm.create_vm())?;
        let mem = Mem::new(4096)?;
        Ok(Vm { kvm, fd, mem, mode: Mode::Long })
    }

    pub fn new(mode: Mode) -> Result<Vm, String> {
        let kvm = k("open /dev/kvm", Kvm::new())?;
        let fd = k("KVM_CREATE_VM", kvm.create_vm())?;
        let mem = Mem::new(LOW_MEM_LEN)?;
        let vm = Vm { kvm, fd, mem, mode };
        vm.add_slot(0, 0, LOW_RAM_END, vm.mem.addr(), 0)?;
        vm.write_layout()?;
        Ok(vm)
    }

    /// KVM_SET_USER_MEMORY_REGION through kvm-ioctls.
    pub fn add_slot(&self, slot: u32, gpa: u64, size: u64, uaddr: u64, flags: u32) -> Result<(), String> {
        let r = kvmsys::region(slot, flags, gpa, size, uaddr);
        // SAFETY: every caller passes memory that outlives the slot (the
        // VM's own `Mem`s, dropped after the VM fd).
        unsafe { self.fd.set_user_memory_region(r) }.map_err(|e| {
            format!(
                "KVM_SET_USER_MEMORY_REGION(slot {slot}, gpa {gpa:#x}, size {size:#x}, flags {flags:#x}): {}",
                kerr(e)
            )
        })
    }

    fn write_layout(&self) -> Result<(), String> {
        let m = &self.mem;
        let bin = self.mode.bin();
        for (i, d) in gdt_entries().iter().enumerate() {
            m.write_u64(GDT_ADDR as usize + 8 * i, *d);
        }
        // Page tables for long mode: PML4[0] -> PDPT; PDPT[0] and PDPT[1]
        // -> the same PD of 2 MiB pages over [0, 1 GiB), so that ALIAS_VA
        // (1 GiB) aliases physical 0.
        m.write_u64(PML4_ADDR as usize, PDPT_ADDR | 3);
        m.write_u64(PDPT_ADDR as usize, PD64_ADDR | 3);
        m.write_u64(PDPT_ADDR as usize + 8 * (ALIAS_VA >> 30) as usize, PD64_ADDR | 3);
        for i in 0..512u64 {
            m.write_u64(PD64_ADDR as usize + 8 * i as usize, (i << 21) | 0x83);
        }
        // 32-bit: one page directory of 4 MiB pages, 1:1 except the alias
        // and the unmapped last 4 MiB.
        for i in 0..1024u64 {
            let pa = if i == ALIAS_VA >> 22 { 0 } else { i << 22 };
            let pde = if i == UNMAPPED_VA32 >> 22 { 0 } else { pa | 0x83 };
            m.write_u32(PD32_ADDR as usize + 4 * i as usize, pde as u32);
        }
        // Interrupt handlers: real-mode IVT at 0, otherwise IDT_ADDR.
        let handlers = [
            (2u64, "nmi_handler"),
            (6, "ud_handler"),
            (13, "gp_handler"),
            (14, "pf_handler"),
            (VEC_IRQ, "irq_handler"),
        ];
        for (vec, h) in handlers {
            let a = bin.sym(h)?;
            match self.mode {
                Mode::Real => m.write_u32(4 * vec as usize, a as u32), // offset:segment 0
                Mode::Prot32 => {
                    let g = (a & 0xffff) | ((SEL_CODE32 as u64) << 16) | (0x8e << 40) | ((a >> 16) << 48);
                    m.write_u64(IDT_ADDR as usize + 8 * vec as usize, g);
                }
                Mode::Long => {
                    let g = (a & 0xffff) | ((SEL_CODE64 as u64) << 16) | (0x8e << 40) | (((a >> 16) & 0xffff) << 48);
                    m.write_u64(IDT_ADDR as usize + 16 * vec as usize, g);
                    m.write_u64(IDT_ADDR as usize + 16 * vec as usize + 8, a >> 32);
                }
            }
        }
        m.write(CODE_ADDR as usize, bin.bin);
        Ok(())
    }

    pub fn sym(&self, name: &str) -> Result<u64, String> {
        self.mode.bin().sym(name)
    }

    /// KVM_GET_SUPPORTED_CPUID, as KVM_SET_CPUID2 input.
    pub fn supported_cpuid(&self) -> Result<CpuId, String> {
        k("KVM_GET_SUPPORTED_CPUID", self.kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES))
    }

    /// Creates vCPU `id` with the supported CPUID and the registers of the
    /// VM's mode; RIP at the first routine, RSP at STACK_TOP.  Should
    /// KVM_GET_SUPPORTED_CPUID fail (sys/supported-cpuid reports that),
    /// a minimal fixed table stands in, so that guest tests still run.
    pub fn vcpu(&self, id: u64) -> Result<Cpu, String> {
        let cpuid = match self.supported_cpuid() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("note: {e}; using a minimal CPUID table");
                minimal_cpuid()?
            }
        };
        self.vcpu_with_cpuid(id, &cpuid)
    }

    pub fn vcpu_with_cpuid(&self, id: u64, cpuid: &CpuId) -> Result<Cpu, String> {
        let fd = k(&format!("KVM_CREATE_VCPU({id})"), self.fd.create_vcpu(id))?;
        let mmap_size = k("KVM_GET_VCPU_MMAP_SIZE", self.kvm.get_vcpu_mmap_size())?;
        let mut cpu = Cpu::new(fd, mmap_size, self.mode);
        k("KVM_SET_CPUID2", cpu.fd.set_cpuid2(cpuid))?;
        let has_xsave = cpuid.as_slice().iter().any(|e| e.function == 1 && e.ecx & (1 << 26) != 0);
        cpu.set_mode(has_xsave)?;
        let rip = self.sym("hlt_once")?;
        cpu.set_rip(rip)?;
        Ok(cpu)
    }
}

/// An AMD CPU with what the guests need (PSE, PAE, MSR, TSC, FXSR, SSE2,
/// LM, NX, SYSCALL); no XSAVE.
pub fn minimal_cpuid() -> Result<CpuId, String> {
    let e = |function, eax, ebx, ecx, edx| kvm_cpuid_entry2 { function, eax, ebx, ecx, edx, ..Default::default() };
    CpuId::from_entries(&[
        e(0, 0xd, 0x6874_7541, 0x444d_4163, 0x6974_6e65), // "AuthenticAMD"
        e(1, 0x0080_0f12, 0, 1 | 1 << 31, 0x078b_fbff),
        e(0x8000_0000, 0x8000_0008, 0x6874_7541, 0x444d_4163, 0x6974_6e65),
        e(0x8000_0001, 0x0080_0f12, 0, 1, 1 << 11 | 1 << 20 | 1 << 29),
        e(0x8000_0008, 0x3028, 0, 0, 0),
    ])
    .map_err(|e| format!("CpuId: {e:?}"))
}

fn seg(selector: u16, type_: u8, db: u8, l: u8, g: u8, limit: u32) -> kvm_segment {
    kvm_segment { base: 0, limit, selector, type_, present: 1, dpl: 0, db, s: 1, l, g, avl: 0, unusable: 0, padding: 0 }
}

/// One exit of KVM_RUN, copied out of `struct kvm_run`.
#[derive(Clone, PartialEq, Eq)]
pub enum Exit {
    /// KVM_EXIT_IO; `data` holds size * count bytes for OUT, nothing for IN.
    Io {
        out: bool,
        port: u16,
        size: u8,
        count: u32,
        data: Vec<u8>,
    },
    /// KVM_EXIT_MMIO; `data` holds `len` bytes for writes, nothing for reads.
    Mmio {
        write: bool,
        addr: u64,
        len: u32,
        data: Vec<u8>,
    },
    Hlt,
    Shutdown,
    Debug {
        exception: u32,
        pc: u64,
        dr6: u64,
        dr7: u64,
    },
    IrqWindowOpen,
    Intr,
    Hypercall {
        nr: u64,
        args: [u64; 6],
    },
    FailEntry {
        reason: u64,
        cpu: u32,
    },
    InternalError {
        suberror: u32,
        data: Vec<u64>,
    },
    /// KVM_EXIT_IO with a data_offset/size outside the kvm_run mapping.
    BadIo {
        data_offset: u64,
        size: u8,
        count: u32,
    },
    Other(u32),
}

impl Exit {
    pub fn out1(port: u16, v: u8) -> Exit {
        Exit::Io { out: true, port, size: 1, count: 1, data: vec![v] }
    }
    pub fn out2(port: u16, v: u16) -> Exit {
        Exit::Io { out: true, port, size: 2, count: 1, data: v.to_le_bytes().to_vec() }
    }
    pub fn out4(port: u16, v: u32) -> Exit {
        Exit::Io { out: true, port, size: 4, count: 1, data: v.to_le_bytes().to_vec() }
    }
    pub fn io_in(port: u16, size: u8, count: u32) -> Exit {
        Exit::Io { out: false, port, size, count, data: vec![] }
    }
    pub fn mmio_write(addr: u64, data: &[u8]) -> Exit {
        Exit::Mmio { write: true, addr, len: data.len() as u32, data: data.to_vec() }
    }
    pub fn mmio_read(addr: u64, len: u32) -> Exit {
        Exit::Mmio { write: false, addr, len, data: vec![] }
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Io { out: true, port, size, count, data } => {
                write!(f, "out port {port:#x} size {size}")?;
                if *count != 1 {
                    write!(f, " count {count}")?;
                }
                write!(f, " [{}]", hex(data))
            }
            Exit::Io { out: false, port, size, count, .. } => {
                write!(f, "in port {port:#x} size {size}")?;
                if *count != 1 {
                    write!(f, " count {count}")?;
                }
                Ok(())
            }
            Exit::Mmio { write: true, addr, data, .. } => write!(f, "mmio write {addr:#x} [{}]", hex(data)),
            Exit::Mmio { write: false, addr, len, .. } => write!(f, "mmio read {addr:#x} len {len}"),
            Exit::Hlt => write!(f, "hlt"),
            Exit::Shutdown => write!(f, "shutdown"),
            Exit::Debug { exception, pc, dr6, dr7 } => {
                write!(f, "debug exception {exception} pc {pc:#x} dr6 {dr6:#x} dr7 {dr7:#x}")
            }
            Exit::IrqWindowOpen => write!(f, "irq-window-open"),
            Exit::Intr => write!(f, "intr"),
            Exit::Hypercall { nr, args } => write!(f, "hypercall nr {nr} args {args:x?}"),
            Exit::FailEntry { reason, cpu } => write!(f, "fail-entry reason {reason:#x} cpu {cpu}"),
            Exit::InternalError { suberror, data } => write!(f, "internal-error suberror {suberror} data {data:x?}"),
            Exit::BadIo { data_offset, size, count } => {
                write!(f, "io exit with data_offset {data_offset:#x} size {size} count {count} outside the mapping")
            }
            Exit::Other(r) => write!(f, "exit reason {r}"),
        }
    }
}

impl fmt::Debug for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A vCPU with its kvm_run mapping and a record of its last exits.
pub struct Cpu {
    pub fd: VcpuFd,
    run: *mut kvm_run,
    mmap_size: usize,
    pub mode: Mode,
    pub timeout: Duration,
    last: Option<Exit>,
    history: Vec<String>,
}

// SAFETY: `run` points into the VcpuFd's own mapping, which moves with it.
unsafe impl Send for Cpu {}

impl Cpu {
    pub fn new(mut fd: VcpuFd, mmap_size: usize, mode: Mode) -> Cpu {
        let run = fd.get_kvm_run() as *mut kvm_run;
        Cpu { fd, run, mmap_size, mode, timeout: RUN_TIMEOUT, last: None, history: vec![] }
    }

    /// The shared `struct kvm_run`.
    pub fn kvm_run(&mut self) -> &mut kvm_run {
        // SAFETY: the mapping is at least one page and lives with `fd`.
        unsafe { &mut *self.run }
    }

    /// Sets segments and control registers for the cpu's mode.
    pub fn set_mode(&mut self, osxsave: bool) -> Result<(), String> {
        let mut s = k("KVM_GET_SREGS", self.fd.get_sregs())?;
        match self.mode {
            Mode::Real => {
                let mut cs = seg(0, 0xb, 0, 0, 0, 0xffff);
                cs.base = 0;
                s.cs = cs;
                for d in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss] {
                    *d = seg(0, 3, 0, 0, 0, 0xffff);
                }
            }
            Mode::Prot32 | Mode::Long => {
                let long = self.mode == Mode::Long;
                s.cs = if long {
                    seg(SEL_CODE64 as u16, 0xb, 0, 1, 1, 0xffff_ffff)
                } else {
                    seg(SEL_CODE32 as u16, 0xb, 1, 0, 1, 0xffff_ffff)
                };
                for d in [&mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss] {
                    *d = seg(SEL_DATA as u16, 3, 1, 0, 1, 0xffff_ffff);
                }
                s.tr = kvm_segment {
                    base: TSS_ADDR,
                    limit: 0x67,
                    selector: SEL_TSS as u16,
                    type_: 0xb,
                    present: 1,
                    ..Default::default()
                };
                s.gdt = kvm_dtable { base: GDT_ADDR, limit: 0x2f, ..Default::default() };
                s.idt = kvm_dtable { base: IDT_ADDR, limit: if long { 0xfff } else { 0x7ff }, ..Default::default() };
                // PE MP ET NE WP PG
                s.cr0 = 0x8001_0033;
                if long {
                    s.cr3 = PML4_ADDR;
                    s.cr4 = 0x20 | 0x200 | 0x400 | if osxsave { 1 << 18 } else { 0 }; // PAE OSFXSR OSXMMEXCPT [OSXSAVE]
                    s.efer = 0x500; // LME | LMA
                } else {
                    s.cr3 = PD32_ADDR;
                    s.cr4 = 0x10 | 0x200 | 0x400; // PSE OSFXSR OSXMMEXCPT
                    s.efer = 0;
                }
            }
        }
        if self.mode == Mode::Real {
            s.idt = kvm_dtable { base: 0, limit: 0x3ff, ..Default::default() };
        }
        k("KVM_SET_SREGS", self.fd.set_sregs(&s))
    }

    /// Points RIP at `rip` with RSP = STACK_TOP and RFLAGS = 2 (IF = 0).
    pub fn set_rip(&mut self, rip: u64) -> Result<(), String> {
        let mut r = k("KVM_GET_REGS", self.fd.get_regs())?;
        r.rip = rip;
        r.rsp = STACK_TOP;
        r.rflags = 2;
        k("KVM_SET_REGS", self.fd.set_regs(&r))
    }

    /// Starts routine `name` of the mode's guest binary.
    pub fn start(&mut self, name: &str) -> Result<(), String> {
        let a = self.mode.bin().sym(name)?;
        self.set_rip(a)
    }

    /// Changes some general-purpose registers.
    pub fn with_regs(&mut self, f: impl FnOnce(&mut kvm_regs)) -> Result<(), String> {
        let mut r = k("KVM_GET_REGS", self.fd.get_regs())?;
        f(&mut r);
        k("KVM_SET_REGS", self.fd.set_regs(&r))
    }

    pub fn regs(&self) -> Result<kvm_regs, String> {
        k("KVM_GET_REGS", self.fd.get_regs())
    }

    pub fn rip(&self) -> String {
        match self.fd.get_regs() {
            Ok(r) => format!("{:#x}", r.rip),
            Err(e) => format!("(KVM_GET_REGS: {})", kerr(e)),
        }
    }

    /// One KVM_RUN: the exit, or the errno.  Armed with the watchdog.
    pub fn run_errno(&mut self) -> Result<Result<Exit, i32>, String> {
        harness::run_allowed()?;
        let guard = Armed::new(self.timeout);
        // SAFETY: KVM_RUN on our vCPU fd; the kvm_run page is mapped.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), kvmsys::RUN as _, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if guard.disarm() && r < 0 && errno == libc::EINTR {
            harness::note_run_timeout();
            return Err(format!(
                "KVM_RUN did not return within {:?}: guest stuck or exit lost (rip {}); last exits: [{}]",
                self.timeout,
                self.rip(),
                self.history.join("; ")
            ));
        }
        if r < 0 {
            self.last = None;
            return Ok(Err(errno));
        }
        let e = self.decode();
        self.history.push(e.to_string());
        if self.history.len() > 6 {
            self.history.remove(0);
        }
        self.last = Some(e.clone());
        Ok(Ok(e))
    }

    /// One KVM_RUN that must succeed.
    pub fn run(&mut self) -> Result<Exit, String> {
        match self.run_errno()? {
            Ok(e) => Ok(e),
            Err(e) => Err(format!("KVM_RUN: {} (rip {})", errno_name(e), self.rip())),
        }
    }

    fn decode(&mut self) -> Exit {
        let size = self.mmap_size;
        let base = self.run as *const u8;
        let run = self.kvm_run();
        // SAFETY (all union reads): exit_reason says which member is valid;
        // every member is plain old data.
        unsafe {
            match run.exit_reason {
                KVM_EXIT_IO => {
                    let io = run.__bindgen_anon_1.io;
                    let n = io.size as usize * io.count as usize;
                    let off = io.data_offset as usize;
                    if off.checked_add(n).is_none_or(|end| end > size) {
                        return Exit::BadIo { data_offset: io.data_offset, size: io.size, count: io.count };
                    }
                    let out = io.direction as u32 == KVM_EXIT_IO_OUT;
                    let data = if out { std::slice::from_raw_parts(base.add(off), n).to_vec() } else { vec![] };
                    Exit::Io { out, port: io.port, size: io.size, count: io.count, data }
                }
                KVM_EXIT_MMIO => {
                    let m = run.__bindgen_anon_1.mmio;
                    let len = m.len.min(8);
                    let write = m.is_write != 0;
                    let data = if write { m.data[..len as usize].to_vec() } else { vec![] };
                    Exit::Mmio { write, addr: m.phys_addr, len: m.len, data }
                }
                KVM_EXIT_HLT => Exit::Hlt,
                KVM_EXIT_SHUTDOWN => Exit::Shutdown,
                KVM_EXIT_DEBUG => {
                    let d = run.__bindgen_anon_1.debug.arch;
                    Exit::Debug { exception: d.exception, pc: d.pc, dr6: d.dr6, dr7: d.dr7 }
                }
                KVM_EXIT_IRQ_WINDOW_OPEN => Exit::IrqWindowOpen,
                KVM_EXIT_INTR => Exit::Intr,
                KVM_EXIT_HYPERCALL => {
                    let h = run.__bindgen_anon_1.hypercall;
                    Exit::Hypercall { nr: h.nr, args: h.args }
                }
                KVM_EXIT_FAIL_ENTRY => {
                    let f = run.__bindgen_anon_1.fail_entry;
                    Exit::FailEntry { reason: f.hardware_entry_failure_reason, cpu: f.cpu }
                }
                KVM_EXIT_INTERNAL_ERROR => {
                    let i = run.__bindgen_anon_1.internal;
                    let n = (i.ndata as usize).min(16);
                    Exit::InternalError { suberror: i.suberror, data: i.data[..n].to_vec() }
                }
                r => Exit::Other(r),
            }
        }
    }

    /// Answers the last IN or MMIO-read exit with `data`.
    pub fn respond(&mut self, data: &[u8]) -> Result<(), String> {
        let size = self.mmap_size;
        let base = self.run as *mut u8;
        match self.last.clone() {
            Some(Exit::Io { out: false, size: sz, count, .. }) => {
                if data.len() != sz as usize * count as usize {
                    return Err(format!("respond: {} bytes for an IN of {sz} x {count}", data.len()));
                }
                // SAFETY: decode() checked data_offset + size * count is
                // inside the mapping.
                unsafe {
                    let off = self.kvm_run().__bindgen_anon_1.io.data_offset as usize;
                    assert!(off + data.len() <= size);
                    std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(off), data.len());
                }
                Ok(())
            }
            Some(Exit::Mmio { write: false, len, .. }) => {
                if data.len() != len as usize || len > 8 {
                    return Err(format!("respond: {} bytes for an MMIO read of {len}", data.len()));
                }
                // SAFETY: mmio is the valid union member after an MMIO exit.
                unsafe { self.kvm_run().__bindgen_anon_1.mmio.data[..data.len()].copy_from_slice(data) };
                Ok(())
            }
            other => Err(format!("respond: last exit was {other:?}, not IN or MMIO read")),
        }
    }

    /// Runs and requires exactly `want`.
    pub fn expect(&mut self, want: Exit) -> Result<(), String> {
        let got = self.run()?;
        if got == want {
            Ok(())
        } else {
            Err(format!("exit: got {got}, want {want} (rip {})", self.rip()))
        }
    }

    pub fn expect_hlt(&mut self) -> Result<(), String> {
        self.expect(Exit::Hlt)
    }

    /// Runs, requires an IN exit of `port`/`size`/`count` and answers it.
    pub fn expect_in(&mut self, port: u16, size: u8, count: u32, answer: &[u8]) -> Result<(), String> {
        self.expect(Exit::io_in(port, size, count))?;
        self.respond(answer)
    }

    /// Runs, requires an MMIO read of `addr`/`len` and answers it.
    pub fn expect_mmio_read(&mut self, addr: u64, answer: &[u8]) -> Result<(), String> {
        self.expect(Exit::mmio_read(addr, answer.len() as u32))?;
        self.respond(answer)
    }

    /// Runs and returns the dword the guest OUTs to `port`.
    pub fn out4_value(&mut self, port: u16) -> Result<u32, String> {
        match self.run()? {
            Exit::Io { out: true, port: p, size: 4, count: 1, data } if p == port => {
                Ok(u32::from_le_bytes(data[..4].try_into().unwrap()))
            }
            e => Err(format!("exit: got {e}, want a dword out to port {port:#x} (rip {})", self.rip())),
        }
    }

    /// Runs until HLT (at most `max` exits), collecting the dwords OUT to
    /// `port`; any other exit is an error.
    pub fn collect_out4(&mut self, port: u16, max: usize) -> Result<Vec<u32>, String> {
        let mut v = Vec::new();
        for _ in 0..max {
            match self.run()? {
                Exit::Hlt => return Ok(v),
                Exit::Io { out: true, port: p, size: 4, count: 1, data } if p == port => {
                    v.push(u32::from_le_bytes(data[..4].try_into().unwrap()))
                }
                e => return Err(format!("exit: got {e}, want dword outs to {port:#x} then hlt (got so far {v:x?})")),
            }
        }
        Err(format!("no hlt after {max} exits (got {v:x?})"))
    }
}

/// A VM and its vCPU 0: what most tests need.
pub struct Guest {
    pub cpu: Cpu,
    pub vm: Vm,
}

impl Guest {
    pub fn new(mode: Mode) -> Result<Guest, String> {
        let vm = Vm::new(mode)?;
        let cpu = vm.vcpu(0)?;
        Ok(Guest { cpu, vm })
    }

    /// A guest started at routine `name`.
    pub fn at(mode: Mode, name: &str) -> Result<Guest, String> {
        let mut g = Guest::new(mode)?;
        g.cpu.start(name)?;
        Ok(g)
    }

    pub fn sym(&self, name: &str) -> Result<u64, String> {
        self.vm.sym(name)
    }
}

/// `Err` unless `got == want` (for values printed in hex).
pub fn eq_hex<T: PartialEq + fmt::LowerHex>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:#x}, want {want:#x}"))
    }
}
