//! libFuzzer target: the input encodes the CPU mode and state, guest RAM
//! contents (incl. page tables and descriptor tables) and instruction
//! bytes; MMIO/PIO completions are fed from the input too. Panics
//! (including arithmetic overflow) and unbounded work are findings.
//!
//! With cargo-fuzz:  RUSTC_BOOTSTRAP=1 cargo fuzz run emulate
//! Without it (same flags cargo-fuzz passes):
//!   RUSTC_BOOTSTRAP=1 RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
//!     -Cllvm-args=-sanitizer-coverage-level=4 \
//!     -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
//!     -Cllvm-args=-sanitizer-coverage-pc-table \
//!     -Cllvm-args=-sanitizer-coverage-trace-compares -Zsanitizer=address" \
//!   cargo build --release --target x86_64-unknown-linux-gnu
//!   target/x86_64-unknown-linux-gnu/release/emulate -runs=10000000
#![no_main]

use libfuzzer_sys::fuzz_target;
use rkvm_emulate::defs::regs::{
    EFER_LMA, EFER_LME, EFER_NX, X86_CR0_ET, X86_CR0_PE, X86_CR0_PG, X86_CR0_WP, X86_CR4_OSFXSR,
    X86_CR4_OSXSAVE, X86_CR4_PAE, X86_CR4_PSE, X86_CR4_SMAP, X86_CR4_SMEP, X86_EFLAGS_ALL,
    X86_EFLAGS_TF, X86_EFLAGS_VM,
};
use rkvm_emulate::emulate::regs::SegReg;
use rkvm_emulate::emulate::{
    CpuState, Cr, DescTable, Emulator, GuestMemory, InterruptShadow, MemError, Outcome, Rejected,
    Segment, REP_BUDGET,
};

const RAM: usize = 16 * 4096;

thread_local! {
    /// RAM buffer reused across inputs (no per-input allocation).
    static RAM_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

struct Mem {
    ram: Vec<u8>,
    ops: u64,
}

impl Mem {
    fn at(&mut self, gpa: u64, len: usize) -> Result<&mut [u8], MemError> {
        self.ops += 1;
        assert!((1..=16).contains(&len) && (gpa & 0xFFF) as usize + len <= 4096);
        let a = usize::try_from(gpa).map_err(|_| MemError::Mmio)?;
        if a + len > RAM || (0x8000..0x9000).contains(&a) {
            return Err(MemError::Mmio);
        }
        Ok(&mut self.ram[a..a + len])
    }
}

impl GuestMemory for Mem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let s = self.at(gpa, buf.len())?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        self.at(gpa, data.len())?.copy_from_slice(data);
        Ok(())
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError> {
        let s = self.at(gpa, old.len())?;
        if s != old {
            return Ok(false);
        }
        s.copy_from_slice(new);
        Ok(true)
    }
}

struct Cpu {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
    seg: [Segment; 8],
    gdtr: DescTable,
    idtr: DescTable,
    cr: [u64; 5],
    efer: u64,
    dr: [u64; 8],
    xmm: [u128; 16],
    ymm_hi: [u128; 16],
    mm: [u64; 8],
    xcr0: u64,
    x87_pending: bool,
    cpl: u8,
}

impl CpuState for Cpu {
    fn gpr(&self, reg: u8) -> u64 {
        self.gpr[usize::from(reg)]
    }
    fn set_gpr(&mut self, reg: u8, val: u64) {
        self.gpr[usize::from(reg)] = val;
    }
    fn rip(&self) -> u64 {
        self.rip
    }
    fn set_rip(&mut self, val: u64) {
        self.rip = val;
    }
    fn rflags(&self) -> u64 {
        self.rflags
    }
    fn set_rflags(&mut self, val: u64) {
        self.rflags = val;
    }
    fn segment(&self, seg: SegReg) -> Segment {
        self.seg[seg as usize]
    }
    fn set_segment(&mut self, seg: SegReg, val: Segment) {
        self.seg[seg as usize] = val;
    }
    fn gdtr(&self) -> DescTable {
        self.gdtr
    }
    fn set_gdtr(&mut self, val: DescTable) {
        self.gdtr = val;
    }
    fn idtr(&self) -> DescTable {
        self.idtr
    }
    fn set_idtr(&mut self, val: DescTable) {
        self.idtr = val;
    }
    fn cpl(&self) -> u8 {
        self.cpl
    }
    fn cr(&self, cr: Cr) -> u64 {
        self.cr[cr as usize]
    }
    fn set_cr(&mut self, cr: Cr, val: u64) -> Result<(), Rejected> {
        self.cr[cr as usize] = val;
        Ok(())
    }
    fn efer(&self) -> u64 {
        self.efer
    }
    fn dr(&self, n: u8) -> u64 {
        self.dr[usize::from(n)]
    }
    fn set_dr(&mut self, n: u8, val: u64) -> Result<(), Rejected> {
        self.dr[usize::from(n)] = val;
        Ok(())
    }
    fn read_msr(&mut self, index: u32) -> Result<u64, Rejected> {
        if index & 1 == 0 {
            Ok(u64::from(index))
        } else {
            Err(Rejected)
        }
    }
    fn write_msr(&mut self, index: u32, _val: u64) -> Result<(), Rejected> {
        if index & 1 == 0 {
            Ok(())
        } else {
            Err(Rejected)
        }
    }
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4] {
        [leaf, subleaf, 0, 0]
    }
    fn xmm(&self, n: u8) -> u128 {
        self.xmm[usize::from(n)]
    }
    fn set_xmm(&mut self, n: u8, val: u128) {
        self.xmm[usize::from(n)] = val;
    }
    fn ymm(&self, n: u8) -> [u8; 32] {
        assert!(
            self.xcr0 & 4 != 0 && self.cr[4] & X86_CR4_OSXSAVE != 0,
            "YMM read without AVX enabled"
        );
        let mut v = [0u8; 32];
        v[..16].copy_from_slice(&self.xmm[usize::from(n)].to_le_bytes());
        v[16..].copy_from_slice(&self.ymm_hi[usize::from(n)].to_le_bytes());
        v
    }
    fn set_ymm(&mut self, n: u8, val: [u8; 32]) {
        assert!(
            self.xcr0 & 4 != 0 && self.cr[4] & X86_CR4_OSXSAVE != 0,
            "YMM write without AVX enabled"
        );
        self.xmm[usize::from(n)] = u128::from_le_bytes(val[..16].try_into().unwrap());
        self.ymm_hi[usize::from(n)] = u128::from_le_bytes(val[16..].try_into().unwrap());
    }
    fn mmx(&mut self, n: u8) -> u64 {
        assert!(!self.x87_pending, "MMX read with an x87 exception pending");
        self.mm[usize::from(n)]
    }
    fn set_mmx(&mut self, n: u8, val: u64) {
        assert!(!self.x87_pending, "MMX write with an x87 exception pending");
        self.mm[usize::from(n)] = val;
    }
    fn x87_exception_pending(&mut self) -> bool {
        self.x87_pending
    }
    fn xcr0(&self) -> u64 {
        self.xcr0
    }
    fn invlpg(&mut self, _linear: u64) {}
    fn wbinvd(&mut self) {}
    fn set_interrupt_shadow(&mut self, _kind: InterruptShadow) {}
}

/// Byte reader over the fuzz input (zeros once exhausted).
struct In<'a>(&'a [u8]);

impl In<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u64(&mut self) -> u64 {
        let mut v = 0u64;
        for i in 0..8 {
            v |= u64::from(self.u8()) << (8 * i);
        }
        v
    }
    fn small(&mut self) -> u64 {
        u64::from(self.u8()) << 8 | u64::from(self.u8())
    }
}

fn seg(i: &mut In<'_>, code: bool) -> Segment {
    let a = i.u8();
    let b = i.u8();
    Segment {
        base: if a & 1 != 0 { i.small() << 4 } else { 0 },
        limit: if a & 2 != 0 { 0xFFFF } else { 0xFFFF_FFFF },
        selector: i.small() as u16,
        type_: if code { 0x8 | (b & 7) } else { b & 0xF },
        s: a & 4 == 0,
        dpl: (a >> 3) & 3,
        present: a & 0x20 == 0,
        avl: false,
        l: code && a & 0x40 != 0,
        db: a & 0x80 != 0,
        g: b & 0x10 != 0,
        unusable: b & 0x20 != 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut i = In(data);
    let mode = i.u8();
    let mut cpu = Cpu {
        gpr: [0; 16],
        rip: 0x1000 + (i.u8() as u64),
        rflags: 2 | (i.small() & (X86_EFLAGS_ALL & !X86_EFLAGS_TF & !X86_EFLAGS_VM)),
        seg: [Segment::default(); 8],
        gdtr: DescTable {
            base: 0x2000,
            limit: i.u8() as u16 * 8 + 7,
        },
        idtr: DescTable {
            base: 0,
            limit: 0x3FF,
        },
        cr: [X86_CR0_ET, 0, 0x3000, 0, 0],
        efer: 0,
        dr: [0, 0, 0, 0, 0, 0, 0xFFFF_0FF0, 0x400],
        xmm: [0; 16],
        ymm_hi: [0; 16],
        mm: [0; 8],
        xcr0: 1,
        x87_pending: false,
        cpl: 0,
    };
    for r in cpu.gpr.iter_mut() {
        *r = if i.u8() & 1 == 0 { i.small() } else { i.u64() };
    }
    for s in [
        SegReg::Es,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Fs,
        SegReg::Gs,
        SegReg::Ldtr,
        SegReg::Tr,
    ] {
        cpu.seg[s as usize] = seg(&mut i, false);
    }
    cpu.seg[SegReg::Cs as usize] = seg(&mut i, true);
    cpu.cr[3] = (i.u8() as u64 & 0xF) << 12;
    let f = i.u8();
    let mut c4 = X86_CR4_OSFXSR;
    if f & 1 != 0 {
        c4 |= X86_CR4_PSE;
    }
    if f & 2 != 0 {
        c4 |= X86_CR4_SMAP | X86_CR4_SMEP;
    }
    if f & 4 != 0 {
        c4 |= X86_CR4_OSXSAVE;
    }
    if f & 8 != 0 {
        cpu.xcr0 = 7;
    }
    cpu.x87_pending = f & 16 != 0;
    match mode % 6 {
        0 => {}
        1 => {
            cpu.cr[0] |= X86_CR0_PE;
            cpu.rflags |= X86_EFLAGS_VM;
        }
        2 => cpu.cr[0] |= X86_CR0_PE,
        3 => cpu.cr[0] |= X86_CR0_PE | X86_CR0_PG,
        4 => {
            cpu.cr[0] |= X86_CR0_PE | X86_CR0_PG;
            c4 |= X86_CR4_PAE;
        }
        _ => {
            cpu.cr[0] |= X86_CR0_PE | X86_CR0_PG | X86_CR0_WP;
            c4 |= X86_CR4_PAE;
            cpu.efer = EFER_LME | EFER_LMA | EFER_NX;
        }
    }
    cpu.cr[4] = c4;
    cpu.cpl = (mode >> 4) & 3;
    // RAM: repeat the remaining input; instruction bytes at RIP.
    let rest = i.0;
    let mut mem = Mem {
        ram: RAM_BUF.with(|r| r.take()),
        ops: 0,
    };
    mem.ram.resize(RAM, 0);
    if !rest.is_empty() {
        for chunk in mem.ram.chunks_mut(rest.len()) {
            chunk.copy_from_slice(&rest[..chunk.len()]);
        }
        let n = rest.len().min(15);
        mem.ram[0x1000..0x1000 + n].copy_from_slice(&rest[..n]);
        let r = cpu.rip as usize;
        mem.ram[r..r + n].copy_from_slice(&rest[..n]);
    } else {
        mem.ram.fill(0);
    }
    let mut emu = Emulator::new();
    let mut feed = rest.iter().copied().cycle();
    for _ in 0..16 {
        mem.ops = 0;
        let o = emu.emulate(&mut cpu, &mut mem, &[]);
        assert!(mem.ops <= REP_BUDGET * 48 + 200, "unbounded work");
        match o {
            Outcome::Mmio(r) if !r.is_write => {
                let d: Vec<u8> = (0..r.len).map(|_| feed.next().unwrap_or(0)).collect();
                emu.complete_mmio_read(&d);
            }
            Outcome::Pio(p) if p.is_in => {
                let d: Vec<u8> = (0..u32::from(p.size) * p.count)
                    .map(|_| feed.next().unwrap_or(0))
                    .collect();
                emu.complete_pio_in(&d);
            }
            Outcome::Mmio(_) | Outcome::Pio(_) | Outcome::Continue => {}
            _ => break,
        }
    }
    RAM_BUF.with(|r| r.set(mem.ram));
});
