//! Random-input fuzz driver: arbitrary instruction bytes, CPU state (all
//! modes, random segments, control registers, CPL, flags) and guest memory
//! (random page tables, MMIO holes), with random MMIO/PIO completions.
//! Asserts no panic (overflow checks on), bounded work per `emulate` call
//! and sane outcomes. Prints throughput.
//!
//! `RKVM_FUZZ_N` sets the number of inputs (default 1000000); run the long
//! campaign with `cargo test --release -p rkvm-emulate --test fuzz -- --nocapture`.

mod common;

use common::Rng;
use rkvm_emulate::defs::regs::{
    DR7_GD, EFER_LMA, EFER_LME, EFER_NX, X86_CR0_AM, X86_CR0_EM, X86_CR0_ET, X86_CR0_PE,
    X86_CR0_PG, X86_CR0_TS, X86_CR0_WP, X86_CR4_DE, X86_CR4_LA57, X86_CR4_OSFXSR, X86_CR4_OSXSAVE,
    X86_CR4_PAE, X86_CR4_PCIDE, X86_CR4_PSE, X86_CR4_SMAP, X86_CR4_SMEP, X86_CR4_TSD, X86_CR4_UMIP,
    X86_EFLAGS_ALL, X86_EFLAGS_TF, X86_EFLAGS_VM,
};
use rkvm_emulate::emulate::regs::SegReg;
use rkvm_emulate::emulate::{
    CpuState, Cr, DescTable, Emulator, GuestMemory, InterruptShadow, MemError, Outcome, Rejected,
    Segment, PIO_BATCH_BYTES, REP_BUDGET,
};
use std::cell::Cell;
use std::time::Instant;

const RAM_PAGES: usize = 96;
const RAM: usize = RAM_PAGES * 4096;

/// Flat RAM at GPA 0..RAM, everything else MMIO; counts operations.
struct FuzzMem {
    ram: Vec<u8>,
    ops: u64,
    fail_cmpxchg: bool,
}

impl FuzzMem {
    fn slice(&mut self, gpa: u64, len: usize) -> Result<&mut [u8], MemError> {
        self.ops += 1;
        assert!((1..=16).contains(&len), "access length {len}");
        assert!(
            (gpa & 0xFFF) as usize + len <= 4096,
            "page-crossing access {gpa:#x}+{len}"
        );
        let a = usize::try_from(gpa).map_err(|_| MemError::Mmio)?;
        if a.checked_add(len).map_or(true, |e| e > RAM) {
            return Err(MemError::Mmio);
        }
        Ok(&mut self.ram[a..a + len])
    }
}

impl GuestMemory for FuzzMem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let s = self.slice(gpa, buf.len())?;
        buf.copy_from_slice(s);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        let s = self.slice(gpa, data.len())?;
        s.copy_from_slice(data);
        Ok(())
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError> {
        assert_eq!(old.len(), new.len());
        let fail = self.fail_cmpxchg;
        let s = self.slice(gpa, old.len())?;
        if fail || s != old {
            return Ok(false);
        }
        s.copy_from_slice(new);
        Ok(true)
    }
}

struct FuzzCpu {
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
    calls: Cell<u64>,
    maxphy: u8,
}

impl CpuState for FuzzCpu {
    fn gpr(&self, reg: u8) -> u64 {
        self.calls.set(self.calls.get() + 1);
        self.gpr[usize::from(reg)]
    }
    fn set_gpr(&mut self, reg: u8, val: u64) {
        self.calls.set(self.calls.get() + 1);
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
        if val & 1 != 0 && val & 0x8 != 0 && cr == Cr::Cr4 {
            return Err(Rejected);
        }
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
            Ok(u64::from(index) * 3)
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
        [leaf, subleaf, 1, 2]
    }
    fn xmm(&self, n: u8) -> u128 {
        self.xmm[usize::from(n)]
    }
    fn set_xmm(&mut self, n: u8, val: u128) {
        self.xmm[usize::from(n)] = val;
    }
    fn ymm(&self, n: u8) -> [u8; 32] {
        assert!(
            self.xcr0 & 4 != 0 && self.cr[Cr::Cr4 as usize] & X86_CR4_OSXSAVE != 0,
            "YMM read without AVX enabled"
        );
        let mut v = [0u8; 32];
        v[..16].copy_from_slice(&self.xmm[usize::from(n)].to_le_bytes());
        v[16..].copy_from_slice(&self.ymm_hi[usize::from(n)].to_le_bytes());
        v
    }
    fn set_ymm(&mut self, n: u8, val: [u8; 32]) {
        assert!(
            self.xcr0 & 4 != 0 && self.cr[Cr::Cr4 as usize] & X86_CR4_OSXSAVE != 0,
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
    fn maxphyaddr(&self) -> u8 {
        self.maxphy
    }
}

fn rand_seg(rng: &mut Rng, code: bool) -> Segment {
    let rl = rng.next() as u32;
    let mut s = Segment {
        base: if rng.chance(1, 2) {
            0
        } else {
            rng.below(RAM as u64)
        },
        limit: rng.pick(&[0xFFFF, 0xFFFF_FFFF, rl]),
        selector: rng.next() as u16,
        type_: if code {
            rng.pick(&[0xB, 0xA, 0xF, 0x9])
        } else {
            rng.pick(&[3, 1, 7, 5, 3, 3])
        },
        s: true,
        dpl: rng.below(4) as u8,
        present: !rng.chance(1, 20),
        avl: false,
        l: false,
        db: rng.chance(1, 2),
        g: rng.chance(1, 2),
        unusable: rng.chance(1, 20),
    };
    if rng.chance(1, 10) {
        s.type_ = rng.below(16) as u8;
        s.s = rng.chance(1, 2);
        s.base = rng.next();
    }
    s
}

fn rand_cpu(rng: &mut Rng) -> FuzzCpu {
    let mode = rng.below(7);
    let mut c = FuzzCpu {
        gpr: [0; 16],
        rip: 0,
        rflags: 2 | (rng.next() & (X86_EFLAGS_ALL & !X86_EFLAGS_TF)),
        seg: [Segment::default(); 8],
        gdtr: DescTable {
            base: rng.below(RAM as u64),
            limit: rng.next() as u16,
        },
        idtr: DescTable {
            base: rng.below(RAM as u64),
            limit: rng.next() as u16,
        },
        cr: [0; 5],
        efer: 0,
        dr: [
            0,
            0,
            0,
            0,
            0,
            0,
            0xFFFF_0FF0,
            if rng.chance(1, 10) { DR7_GD } else { 0x400 },
        ],
        xmm: [0; 16],
        ymm_hi: [0; 16],
        mm: [0; 8],
        xcr0: 0,
        x87_pending: false,
        cpl: 0,
        calls: Cell::new(0),
        maxphy: rng.pick(&[36, 40, 46, 52]),
    };
    for r in c.gpr.iter_mut() {
        *r = if rng.chance(1, 2) {
            rng.below(RAM as u64 + 0x2000)
        } else {
            rng.interesting()
        };
    }
    for x in c.xmm.iter_mut().chain(c.ymm_hi.iter_mut()) {
        *x = u128::from(rng.next()) << 64 | u128::from(rng.next());
    }
    for m in c.mm.iter_mut() {
        *m = rng.next();
    }
    c.xcr0 = rng.pick(&[1, 3, 7]);
    c.x87_pending = rng.chance(1, 8);
    for s in [
        SegReg::Es,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Fs,
        SegReg::Gs,
        SegReg::Ldtr,
        SegReg::Tr,
    ] {
        c.seg[s as usize] = rand_seg(rng, false);
    }
    c.seg[SegReg::Cs as usize] = rand_seg(rng, true);
    c.seg[SegReg::Tr as usize].type_ = rng.pick(&[11, 9, 3]);
    c.seg[SegReg::Tr as usize].s = false;
    c.seg[SegReg::Ldtr as usize].type_ = 2;
    c.seg[SegReg::Ldtr as usize].s = false;
    let cr3 = rng.below(RAM as u64) & !0xFFF;
    let mut cr4v = if rng.chance(1, 2) { X86_CR4_OSFXSR } else { 0 };
    for b in [
        X86_CR4_PSE,
        X86_CR4_SMEP,
        X86_CR4_SMAP,
        X86_CR4_UMIP,
        X86_CR4_TSD,
        X86_CR4_DE,
        X86_CR4_LA57,
        X86_CR4_PCIDE,
        X86_CR4_OSXSAVE,
    ] {
        if rng.chance(1, 4) {
            cr4v |= b;
        }
    }
    let mut cr0v = X86_CR0_ET;
    for b in [X86_CR0_WP, X86_CR0_AM, X86_CR0_TS, X86_CR0_EM] {
        if rng.chance(1, 4) {
            cr0v |= b;
        }
    }
    match mode {
        0 => {} // real
        1 => {
            // vm86
            cr0v |= X86_CR0_PE;
            c.rflags |= X86_EFLAGS_VM;
            c.cpl = 3;
        }
        2 | 3 => {
            // protected, paging sometimes (2-level or PAE)
            cr0v |= X86_CR0_PE;
            if rng.chance(1, 2) {
                cr0v |= X86_CR0_PG;
                if rng.chance(1, 2) {
                    cr4v |= X86_CR4_PAE;
                }
            }
            c.seg[SegReg::Cs as usize].db = mode == 3;
            c.cpl = rng.below(4) as u8;
            c.rflags &= !X86_EFLAGS_VM;
        }
        _ => {
            // long mode: 64-bit or compat
            cr0v |= X86_CR0_PE | X86_CR0_PG;
            cr4v |= X86_CR4_PAE;
            c.efer = EFER_LME | EFER_LMA | if rng.chance(1, 2) { EFER_NX } else { 0 };
            let l = mode != 6;
            c.seg[SegReg::Cs as usize].l = l;
            if l {
                c.seg[SegReg::Cs as usize].db = false;
            }
            c.cpl = rng.below(4) as u8;
            c.rflags &= !X86_EFLAGS_VM;
        }
    }
    if mode == 0 {
        c.rflags &= !X86_EFLAGS_VM;
        cr4v &= !X86_CR4_LA57;
    }
    c.cr = [cr0v, rng.next(), cr3, cr4v, rng.below(16)];
    c.rip = if rng.chance(3, 4) {
        rng.below(RAM as u64)
    } else {
        rng.interesting()
    };
    if mode == 0 || mode == 1 {
        c.rip &= 0xFFFF;
    }
    c
}

const HOT: &[u8] = &[
    0x88, 0x89, 0x8A, 0x8B, 0xA4, 0xA5, 0xA6, 0xAA, 0xAB, 0xAC, 0xAE, 0x6C, 0x6D, 0x6E, 0x6F, 0xE4,
    0xE5, 0xE6, 0xEC, 0xEE, 0xEF, 0x01, 0x29, 0x31, 0x39, 0x81, 0x83, 0xC1, 0xD3, 0xF7, 0xFF, 0x8E,
    0x8C, 0x9C, 0x9D, 0x60, 0x61, 0xCD, 0xCF, 0xCA, 0xCB, 0x9A, 0xEA, 0xE8, 0xC2, 0xC8, 0xC9, 0x8F,
    0xC4, 0xC5, 0xD7, 0xFA, 0xFB, 0xF4, 0x86, 0x87, 0xE2, 0xE3, 0x70, 0xEB, 0xA0, 0xA3, 0xC6, 0xC7,
    0x8D, 0x06, 0x07, 0x17, 0x1F, 0x0F,
];
const HOT0F: &[u8] = &[
    0x00, 0x01, 0x06, 0x09, 0x10, 0x11, 0x20, 0x21, 0x22, 0x23, 0x28, 0x29, 0x2B, 0x30, 0x31, 0x32,
    0x44, 0x6E, 0x6F, 0x7E, 0x7F, 0x84, 0x94, 0xA0, 0xA1, 0xA2, 0xA3, 0xA5, 0xAB, 0xAD, 0xAF, 0xB1,
    0xB2, 0xB4, 0xB7, 0xBA, 0xBB, 0xBC, 0xBF, 0xC1, 0xC3, 0xC7, 0xC9, 0xD6, 0xE7,
];

fn rand_insn(rng: &mut Rng, buf: &mut [u8; 15]) -> usize {
    for b in buf.iter_mut() {
        *b = rng.next() as u8;
    }
    if rng.chance(1, 4) {
        return rng.below(16) as usize;
    }
    let mut p = 0;
    while rng.chance(1, 3) && p < 4 {
        buf[p] = rng.pick(&[
            0x66, 0x67, 0xF0, 0xF2, 0xF3, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65, 0x48, 0x41, 0x4F,
        ]);
        p += 1;
    }
    let op = rng.pick(HOT);
    buf[p] = op;
    if op == 0x0F {
        buf[p + 1] = rng.pick(HOT0F);
    }
    if rng.chance(1, 2) {
        let i = p + 1 + usize::from(op == 0x0F);
        buf[i] = (buf[i] & 0x3F) | if rng.chance(1, 2) { 0xC0 } else { 0 };
    }
    rng.below(16) as usize
}

/// Upper bound on guest-memory operations one `emulate` call may perform:
/// REP_BUDGET iterations, each with two data accesses (split at a page,
/// chunked) and their page walks (5 levels + A/D updates), plus fetch,
/// descriptor and I/O-bitmap reads.
fn op_bound() -> u64 {
    REP_BUDGET * 2 * 2 * 12 + 200
}

#[test]
fn fuzz_random_instructions_and_state() {
    let n: u64 = std::env::var("RKVM_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let seed: u64 = std::env::var("RKVM_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xF022);
    let mut rng = Rng::new(seed);
    let mut mem = FuzzMem {
        ram: vec![0; RAM],
        ops: 0,
        fail_cmpxchg: false,
    };
    for b in mem.ram.iter_mut() {
        *b = rng.next() as u8;
    }
    let mut emu = Emulator::new();
    let mut counts = std::collections::BTreeMap::<&'static str, u64>::new();
    let start = Instant::now();
    let mut calls = 0u64;
    let mut max_ops = 0u64;
    let mut buf = [0u8; 15];
    for i in 0..n {
        // Mutate memory a little: page tables, descriptors, code.
        for _ in 0..4 {
            let a = rng.below(RAM as u64) as usize;
            mem.ram[a] = rng.next() as u8;
        }
        if i % 1024 == 0 {
            // Plant plausible page-table entries.
            for _ in 0..64 {
                let a = (rng.below(RAM as u64) & !7) as usize;
                let e = (rng.below(RAM as u64) & !0xFFF)
                    | rng.pick(&[0x7u64, 0x3, 0x87, 0x5, 0x27, 0x67]);
                mem.ram[a..a + 8].copy_from_slice(&e.to_le_bytes());
            }
        }
        let mut cpu = rand_cpu(&mut rng);
        let plen = rand_insn(&mut rng, &mut buf);
        // Also place the bytes in memory at the (physical) RIP sometimes.
        if rng.chance(1, 2) {
            let a = (cpu.rip as usize) % (RAM - 16);
            mem.ram[a..a + 15].copy_from_slice(&buf);
        }
        mem.fail_cmpxchg = rng.chance(1, 50);
        if !rng.chance(1, 20) {
            emu.reset();
        }
        let mut last = Outcome::Completed;
        for round in 0..32 {
            mem.ops = 0;
            cpu.calls.set(0);
            let pre = if round == 0 { &buf[..plen] } else { &[][..] };
            let o = emu.emulate(&mut cpu, &mut mem, pre);
            calls += 1;
            max_ops = max_ops.max(mem.ops);
            assert!(
                mem.ops <= op_bound(),
                "unbounded work: {} memory ops for {:02x?}",
                mem.ops,
                &buf[..]
            );
            assert!(
                cpu.calls.get() <= 40 * REP_BUDGET + 400,
                "unbounded register traffic"
            );
            last = o;
            match o {
                Outcome::Mmio(r) => {
                    assert!((1..=8).contains(&r.len), "{r:?}");
                    if !r.is_write {
                        let k = if rng.chance(1, 30) {
                            rng.below(12) as usize
                        } else {
                            usize::from(r.len)
                        };
                        let d: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
                        emu.complete_mmio_read(&d);
                    }
                }
                Outcome::Pio(p) => {
                    assert!(matches!(p.size, 1 | 2 | 4), "{p:?}");
                    assert!(
                        p.count >= 1 && usize::from(p.size) * p.count as usize <= PIO_BATCH_BYTES,
                        "{p:?}"
                    );
                    // OUT/OUTS: one element per request (upstream's em_out).
                    assert!(p.is_in || p.count == 1, "{p:?}");
                    if p.is_in {
                        let k = usize::from(p.size) * p.count as usize;
                        let k = if rng.chance(1, 30) {
                            rng.below(80) as usize
                        } else {
                            k
                        };
                        let d: Vec<u8> = (0..k).map(|_| rng.next() as u8).collect();
                        emu.complete_pio_in(&d);
                    } else {
                        assert_eq!(
                            emu.pio_out_data().len(),
                            usize::from(p.size) * p.count as usize
                        );
                    }
                }
                Outcome::Continue => {}
                Outcome::Exception(e) => {
                    assert!(e.vector < 32);
                    break;
                }
                Outcome::Completed | Outcome::Halt | Outcome::Unhandleable { .. } => break,
            }
            // Sometimes KVM changes registers between exits.
            if rng.chance(1, 200) {
                cpu.gpr[rng.below(16) as usize] = rng.next();
            }
        }
        let k = match last {
            Outcome::Completed => "completed",
            Outcome::Halt => "halt",
            Outcome::Continue => "continue",
            Outcome::Mmio(_) => "mmio",
            Outcome::Pio(_) => "pio",
            Outcome::Exception(_) => "exception",
            Outcome::Unhandleable { .. } => "unhandleable",
        };
        *counts.entry(k).or_default() += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("final outcomes: {:?}", counts);
    println!(
        "fuzz execs: {n} inputs, {calls} emulate calls in {secs:.1} s ({:.0} inputs/s), max memory ops per call: {max_ops}, findings: 0",
        n as f64 / secs
    );
}
