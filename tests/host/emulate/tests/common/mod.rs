//! Shared test harness: a plain-struct vCPU, sparse guest memory with MMIO
//! holes, page-table builders and a small PRNG.
#![allow(dead_code)]

use std::collections::HashMap;

use rkvm_emulate::defs::msr::{MSR_EFER, MSR_IA32_TSC};
use rkvm_emulate::defs::regs::{
    EFER_LMA, EFER_LME, EFER_NX, X86_CR0_ET, X86_CR0_PE, X86_CR0_PG, X86_CR0_WP, X86_CR4_OSFXSR,
    X86_CR4_PAE, X86_EFLAGS_FIXED, XFEATURE_MASK_FP, XFEATURE_MASK_YMM,
};
use rkvm_emulate::emulate::regs::SegReg;
use rkvm_emulate::emulate::{
    CpuState, Cr, DescTable, GuestMemory, InterruptShadow, MemError, Rejected, Segment,
};

/// xorshift64* PRNG (deterministic, seedable).
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
    /// Random value biased towards interesting edge cases.
    pub fn interesting(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => self.pick(&[
                1,
                0x7F,
                0x80,
                0xFF,
                0x7FFF,
                0x8000,
                0xFFFF,
                0x7FFF_FFFF,
                0x8000_0000,
                0xFFFF_FFFF,
            ]),
            2 => self.pick(&[
                0x7FFF_FFFF_FFFF_FFFF,
                0x8000_0000_0000_0000,
                u64::MAX,
                u64::MAX - 1,
            ]),
            3 => self.below(64),
            _ => self.next(),
        }
    }
}

pub const PAGE: u64 = 4096;

#[derive(Clone)]
pub struct TestCpu {
    pub gpr: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub seg: [Segment; 8],
    pub gdtr: DescTable,
    pub idtr: DescTable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    pub efer: u64,
    pub dr: [u64; 8],
    pub xmm: [u128; 16],
    /// Bits 255:128 of the YMM registers.
    pub ymm_hi: [u128; 16],
    pub mm: [u64; 8],
    pub xcr0: u64,
    /// A pending unmasked x87 exception (MMX raises #MF).
    pub x87_pending: bool,
    pub cpl: u8,
    pub msrs: HashMap<u32, u64>,
    pub tsc: u64,
    pub shadow: Option<InterruptShadow>,
    pub invlpgs: Vec<u64>,
    pub wbinvds: u32,
    /// Count of trait calls (bounded-work checks).
    pub calls: std::cell::Cell<u64>,
}

fn seg_idx(s: SegReg) -> usize {
    s as usize
}

pub fn real_seg(sel: u16, code: bool) -> Segment {
    Segment {
        base: u64::from(sel) << 4,
        limit: 0xFFFF,
        selector: sel,
        type_: if code { 0xB } else { 3 },
        s: true,
        dpl: 0,
        present: true,
        ..Segment::default()
    }
}

pub fn flat_seg(sel: u16, code: bool, long: bool, dpl: u8) -> Segment {
    Segment {
        base: 0,
        limit: 0xFFFF_FFFF,
        selector: sel | u16::from(dpl),
        type_: if code { 0xB } else { 3 },
        s: true,
        dpl,
        present: true,
        l: long && code,
        db: !(long && code),
        g: true,
        ..Segment::default()
    }
}

impl TestCpu {
    fn blank() -> Self {
        TestCpu {
            gpr: [0; 16],
            rip: 0,
            rflags: X86_EFLAGS_FIXED,
            seg: [Segment::default(); 8],
            gdtr: DescTable::default(),
            idtr: DescTable {
                base: 0,
                limit: 0x3FF,
            },
            cr0: 0,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            cr8: 0,
            efer: 0,
            dr: [0, 0, 0, 0, 0, 0, 0xFFFF_0FF0, 0x400],
            xmm: [0; 16],
            ymm_hi: [0; 16],
            mm: [0; 8],
            xcr0: XFEATURE_MASK_FP,
            x87_pending: false,
            cpl: 0,
            msrs: HashMap::new(),
            tsc: 0x1234_5678_9ABC,
            shadow: None,
            invlpgs: Vec::new(),
            wbinvds: 0,
            calls: std::cell::Cell::new(0),
        }
    }

    /// Real mode, all segments at 0.
    pub fn real() -> Self {
        let mut c = Self::blank();
        for s in [SegReg::Es, SegReg::Ss, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            c.seg[seg_idx(s)] = real_seg(0, false);
        }
        c.seg[seg_idx(SegReg::Cs)] = real_seg(0, true);
        c.seg[seg_idx(SegReg::Ldtr)] = Segment {
            type_: 2,
            present: true,
            limit: 0xFFFF,
            ..Segment::default()
        };
        c.seg[seg_idx(SegReg::Tr)] = Segment {
            type_: 11,
            present: true,
            limit: 0xFFFF,
            ..Segment::default()
        };
        c.cr0 = X86_CR0_ET;
        c
    }

    /// 32-bit flat protected mode, paging off, CPL 0.
    pub fn prot32() -> Self {
        let mut c = Self::real();
        c.cr0 |= X86_CR0_PE;
        for s in [SegReg::Es, SegReg::Ss, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            c.seg[seg_idx(s)] = flat_seg(0x10, false, false, 0);
        }
        c.seg[seg_idx(SegReg::Cs)] = flat_seg(0x08, true, false, 0);
        c
    }

    /// 64-bit long mode with the given CR3 (paging on), CPL 0.
    pub fn long64(cr3: u64) -> Self {
        let mut c = Self::real();
        c.cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_WP;
        c.cr4 = X86_CR4_PAE | X86_CR4_OSFXSR;
        c.efer = EFER_LME | EFER_LMA | EFER_NX;
        c.cr3 = cr3;
        for s in [SegReg::Es, SegReg::Ss, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            c.seg[seg_idx(s)] = flat_seg(0x10, false, true, 0);
        }
        c.seg[seg_idx(SegReg::Cs)] = flat_seg(0x08, true, true, 0);
        c
    }

    pub fn seg_mut(&mut self, s: SegReg) -> &mut Segment {
        &mut self.seg[seg_idx(s)]
    }

    fn tick(&self) {
        self.calls.set(self.calls.get() + 1);
    }
}

impl CpuState for TestCpu {
    fn gpr(&self, reg: u8) -> u64 {
        self.tick();
        self.gpr[usize::from(reg & 15)]
    }
    fn set_gpr(&mut self, reg: u8, val: u64) {
        self.tick();
        self.gpr[usize::from(reg & 15)] = val;
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
        self.tick();
        self.rflags = val;
    }
    fn segment(&self, seg: SegReg) -> Segment {
        self.seg[seg_idx(seg)]
    }
    fn set_segment(&mut self, seg: SegReg, val: Segment) {
        self.tick();
        self.seg[seg_idx(seg)] = val;
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
        match cr {
            Cr::Cr0 => self.cr0,
            Cr::Cr2 => self.cr2,
            Cr::Cr3 => self.cr3,
            Cr::Cr4 => self.cr4,
            Cr::Cr8 => self.cr8,
        }
    }
    fn set_cr(&mut self, cr: Cr, val: u64) -> Result<(), Rejected> {
        self.tick();
        match cr {
            Cr::Cr0 => {
                if val >> 32 != 0 || (val & X86_CR0_PG != 0 && val & X86_CR0_PE == 0) {
                    return Err(Rejected);
                }
                self.cr0 = val;
            }
            Cr::Cr2 => self.cr2 = val,
            Cr::Cr3 => self.cr3 = val,
            Cr::Cr4 => {
                if val >> 32 != 0 {
                    return Err(Rejected);
                }
                self.cr4 = val;
            }
            Cr::Cr8 => {
                if val > 15 {
                    return Err(Rejected);
                }
                self.cr8 = val;
            }
        }
        Ok(())
    }
    fn efer(&self) -> u64 {
        self.efer
    }
    fn dr(&self, n: u8) -> u64 {
        self.dr[usize::from(n & 7)]
    }
    fn set_dr(&mut self, n: u8, val: u64) -> Result<(), Rejected> {
        if val >> 32 != 0 && n >= 6 {
            return Err(Rejected);
        }
        self.dr[usize::from(n & 7)] = val;
        Ok(())
    }
    fn read_msr(&mut self, index: u32) -> Result<u64, Rejected> {
        self.tick();
        match index {
            MSR_IA32_TSC => {
                self.tsc += 100;
                Ok(self.tsc)
            }
            MSR_EFER => Ok(self.efer),
            _ => self.msrs.get(&index).copied().ok_or(Rejected),
        }
    }
    fn write_msr(&mut self, index: u32, val: u64) -> Result<(), Rejected> {
        self.tick();
        if index == 0xDEAD {
            return Err(Rejected);
        }
        self.msrs.insert(index, val);
        Ok(())
    }
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4] {
        [leaf ^ 0x1111, subleaf, 0x6c65_746e, 0x4965_6e69]
    }
    fn xmm(&self, n: u8) -> u128 {
        self.xmm[usize::from(n & 15)]
    }
    fn set_xmm(&mut self, n: u8, val: u128) {
        self.xmm[usize::from(n & 15)] = val;
    }
    fn ymm(&self, n: u8) -> [u8; 32] {
        assert!(
            self.xcr0 & XFEATURE_MASK_YMM != 0,
            "YMM read with XCR0.YMM clear"
        );
        let mut v = [0u8; 32];
        v[..16].copy_from_slice(&self.xmm[usize::from(n)].to_le_bytes());
        v[16..].copy_from_slice(&self.ymm_hi[usize::from(n)].to_le_bytes());
        v
    }
    fn set_ymm(&mut self, n: u8, val: [u8; 32]) {
        assert!(
            self.xcr0 & XFEATURE_MASK_YMM != 0,
            "YMM write with XCR0.YMM clear"
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
    fn invlpg(&mut self, linear: u64) {
        self.invlpgs.push(linear);
    }
    fn wbinvd(&mut self) {
        self.wbinvds += 1;
    }
    fn set_interrupt_shadow(&mut self, kind: InterruptShadow) {
        self.shadow = Some(kind);
    }
}

/// Sparse guest physical memory; absent pages and listed ranges are MMIO.
#[derive(Clone, Default)]
pub struct TestMem {
    pub pages: HashMap<u64, Box<[u8; PAGE as usize]>>,
    pub mmio: Vec<(u64, u64)>,
    pub ops: u64,
    /// Make every cmpxchg fail (race simulation).
    pub fail_cmpxchg: bool,
    /// Next free page for page-table allocation.
    pub next_table: u64,
}

impl TestMem {
    pub fn new() -> Self {
        TestMem {
            next_table: 0x0080_0000,
            ..Default::default()
        }
    }
    pub fn is_mmio(&self, gpa: u64) -> bool {
        self.mmio.iter().any(|&(s, l)| gpa >= s && gpa < s + l)
    }
    pub fn add_ram(&mut self, gpa: u64, len: u64) {
        let mut p = gpa & !(PAGE - 1);
        while p < gpa + len {
            self.pages
                .entry(p)
                .or_insert_with(|| Box::new([0; PAGE as usize]));
            p += PAGE;
        }
    }
    pub fn poke(&mut self, gpa: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let a = gpa + done as u64;
            let off = (a & (PAGE - 1)) as usize;
            let n = (PAGE as usize - off).min(data.len() - done);
            self.add_ram(a, 1);
            let p = self.pages.get_mut(&(a & !(PAGE - 1))).unwrap();
            p[off..off + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
    }
    pub fn peek(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len);
        let mut done = 0usize;
        while done < len {
            let a = gpa + done as u64;
            let off = (a & (PAGE - 1)) as usize;
            let n = (PAGE as usize - off).min(len - done);
            match self.pages.get(&(a & !(PAGE - 1))) {
                Some(p) => v.extend_from_slice(&p[off..off + n]),
                None => v.extend(std::iter::repeat(0xEE).take(n)),
            }
            done += n;
        }
        v
    }
    pub fn peek_u64(&self, gpa: u64) -> u64 {
        u64::from_le_bytes(self.peek(gpa, 8).try_into().unwrap())
    }
    fn page_of(&mut self, gpa: u64, len: usize) -> Option<(&mut [u8; PAGE as usize], usize)> {
        assert!(len <= 16, "access too long: {len}");
        assert!(
            (gpa & (PAGE - 1)) as usize + len <= PAGE as usize,
            "access crosses a page: {gpa:#x}+{len}"
        );
        if self.is_mmio(gpa) {
            return None;
        }
        let off = (gpa & (PAGE - 1)) as usize;
        self.pages
            .get_mut(&(gpa & !(PAGE - 1)))
            .map(|p| (&mut **p, off))
    }

    /// Allocate a zeroed page-table page.
    pub fn alloc_table(&mut self) -> u64 {
        let p = self.next_table;
        self.next_table += PAGE;
        self.add_ram(p, PAGE);
        p
    }

    /// Map 4 KiB `la` -> `gpa` in a 4-level hierarchy rooted at `cr3`.
    pub fn map4k(&mut self, cr3: u64, la: u64, gpa: u64, flags: u64) {
        let mut table = cr3 & !0xFFF;
        for level in (2..=4).rev() {
            let idx = (la >> (12 + 9 * (level - 1))) & 0x1FF;
            let ea = table + idx * 8;
            let e = self.peek_u64(ea);
            if e & 1 == 0 {
                let t = self.alloc_table();
                self.poke(ea, &(t | 0x7).to_le_bytes());
                table = t;
            } else {
                table = e & 0x000F_FFFF_FFFF_F000;
            }
        }
        let idx = (la >> 12) & 0x1FF;
        self.poke(table + idx * 8, &((gpa & !0xFFF) | flags).to_le_bytes());
    }

    /// Identity-map `[la, la+len)` with 4 KiB pages (RAM allocated).
    pub fn identity(&mut self, cr3: u64, la: u64, len: u64, flags: u64) {
        let mut p = la & !(PAGE - 1);
        self.add_ram(la, len);
        while p < la + len {
            self.map4k(cr3, p, p, flags);
            p += PAGE;
        }
    }
}

impl GuestMemory for TestMem {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        self.ops += 1;
        let n = buf.len();
        let (p, off) = self.page_of(gpa, n).ok_or(MemError::Mmio)?;
        buf.copy_from_slice(&p[off..off + n]);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        self.ops += 1;
        let n = data.len();
        let (p, off) = self.page_of(gpa, n).ok_or(MemError::Mmio)?;
        p[off..off + n].copy_from_slice(data);
        Ok(())
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError> {
        self.ops += 1;
        assert_eq!(old.len(), new.len());
        let fail = self.fail_cmpxchg;
        let n = old.len();
        let (p, off) = self.page_of(gpa, n).ok_or(MemError::Mmio)?;
        if fail || &p[off..off + n] != old {
            return Ok(false);
        }
        p[off..off + n].copy_from_slice(new);
        Ok(true)
    }
}

/// Page-table entry flags: present, writable, user.
pub const PTE_PWU: u64 = 0x7;
/// Present + writable, supervisor.
pub const PTE_PW: u64 = 0x3;
