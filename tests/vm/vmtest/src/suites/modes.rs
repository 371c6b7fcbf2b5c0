//! Mode-specific behaviour: a real-mode guest switching itself to long
//! mode or to paged protected mode, paging aliases, the 32-bit paging
//! modes (4 KiB, PSE 4 MiB, PAE) switched to by the guest, and
//! KVM_TRANSLATE.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use crate::report::expect_eq;

pub fn tests() -> Vec<Test> {
    vec![
        test("guest/real/switch-to-long-mode", to_long),
        test("guest/real/switch-to-prot32-paging", to_prot32),
        test("guest/prot32/paging-alias", || paging_alias(Mode::Prot32)),
        test("guest/long/paging-alias", || paging_alias(Mode::Long)),
        test("guest/prot32/paging-4k", || paging_mode(Paging::Flat4k)),
        test("guest/prot32/paging-pse-4m", || paging_mode(Paging::Pse4m)),
        test("guest/prot32/paging-pae", || paging_mode(Paging::Pae)),
        test("guest/real/translate", || translate(Mode::Real)),
        test("guest/prot32/translate", || translate(Mode::Prot32)),
        test("guest/long/translate", || translate(Mode::Long)),
    ]
}

/// The guest sets CR4.PAE, CR3, EFER.LME, CR0.PE|PG and far-jumps to
/// 64-bit code: it then reads EFER = LME|LMA, and userspace sees long mode
/// in KVM_GET_SREGS.
fn to_long() -> TestResult {
    let mut g = Guest::at(Mode::Real, "to_long")?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x500))?;
    let cr0 = g.cpu.out4_value(PORT_ECHO)?;
    if cr0 & 0x8000_0001 != 0x8000_0001 {
        return Err(format!("guest CR0 {cr0:#x} lacks PE|PG"));
    }
    g.cpu.expect_hlt()?;
    let s = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    eq_hex("sregs.efer", s.efer & 0x500, 0x500)?;
    eq_hex("sregs.cr3", s.cr3, PML4_ADDR)?;
    expect_eq("sregs.cs (selector, l)", (s.cs.selector, s.cs.l), (SEL_CODE64 as u16, 1))?;
    eq_hex("sregs.cr4.PAE", s.cr4 & 0x20, 0x20)?;
    eq_hex("sregs.gdt.base", s.gdt.base, GDT_ADDR)
}

/// The guest enters 32-bit protected mode with 4 MiB paging and writes
/// through the alias mapping.
fn to_prot32() -> TestResult {
    let mut g = Guest::at(Mode::Real, "to_prot32")?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x600d_cafe))?;
    let cr0 = g.cpu.out4_value(PORT_ECHO)?;
    if cr0 & 0x8000_0001 != 0x8000_0001 {
        return Err(format!("guest CR0 {cr0:#x} lacks PE|PG"));
    }
    g.cpu.expect_hlt()?;
    eq_hex("memory at SCRATCH", g.vm.mem.read_u32(SCRATCH as usize), 0x600d_cafe)?;
    let s = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    expect_eq("sregs.cs (selector, db)", (s.cs.selector, s.cs.db), (SEL_CODE32 as u16, 1))
}

/// A store through ALIAS_VA + SCRATCH lands at physical SCRATCH.
fn paging_alias(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "paging_alias")?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x600d_cafe))?;
    g.cpu.expect_hlt()?;
    eq_hex("memory at SCRATCH", g.vm.mem.read_u32(SCRATCH as usize), 0x600d_cafe)
}

/// KVM_TRANSLATE walks the guest's page tables (1:1 in real mode).
fn translate(m: Mode) -> TestResult {
    let g = Guest::at(m, "hlt_once")?;
    let (va, pa) = match m {
        Mode::Real => (0x1234u64, 0x1234u64),
        _ => (ALIAS_VA + SCRATCH + 0x123, SCRATCH + 0x123),
    };
    let t = k(&format!("KVM_TRANSLATE({va:#x})"), g.cpu.fd.translate_gva(va))?;
    expect_eq("translation valid", t.valid, 1)?;
    eq_hex("physical address", t.physical_address, pa)?;
    expect_eq("writeable", t.writeable, 1)?;
    if m == Mode::Long {
        // PML4[1] is not present: 512 GiB is unmapped.
        let t = k("KVM_TRANSLATE(512 GiB)", g.cpu.fd.translate_gva(1 << 39))?;
        expect_eq("translation of an unmapped address: valid", t.valid, 0)?;
    }
    if m == Mode::Prot32 {
        // 1:1 outside the alias, through a 4 MiB page.
        let t = k("KVM_TRANSLATE(0x12345678)", g.cpu.fd.translate_gva(0x1234_5678))?;
        expect_eq("valid", t.valid, 1)?;
        eq_hex("physical address", t.physical_address, 0x1234_5678)?;
    }
    Ok(())
}

/// The paging modes outside long mode that `paging_mode` switches to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Paging {
    /// 32-bit paging, CR4.PSE=0: page directory and 4 KiB page tables.
    Flat4k,
    /// 32-bit paging, CR4.PSE=1: 4 MiB pages and a 4 KiB table in one
    /// directory.
    Pse4m,
    /// PAE paging (CR4.PAE, EFER.LME=0): PDPT, directories of 8-byte
    /// entries, 4 KiB and 2 MiB pages.
    Pae,
}

/// Guest-physical base of the page tables and data of `paging_mode`
/// (slot 1, 1 MiB; mapped 1:1 by every mode below).
const PM_BASE: u64 = 0x10_0000;
const PM_LEN: usize = 0x10_0000;
/// The two data pages: DATA0 (written through one alias, read through
/// another and 1:1) and DATA1 (mapped read-only).
const PM_DATA0: u64 = PM_BASE + 0x1_0000;
const PM_DATA1: u64 = PM_BASE + 0x1_1000;
/// Page-table entry bits.
const P: u64 = 1;
const RW: u64 = 2;
const PS: u64 = 0x80;
const A: u64 = 0x20;
const D: u64 = 0x40;

/// What `paging_mode` tells the guest (SCRATCH) and checks afterwards.
struct PmLayout {
    /// CR4.PSE / CR4.PAE.
    cr4: u64,
    /// DATA0 written through, DATA0 read through, DATA1 read-only.
    va_rw: u64,
    va_alias: u64,
    va_ro: u64,
    /// Entry size in bytes (4 or 8).
    esz: usize,
    /// (what, entry GPA, its A|D bits afterwards).
    checks: Vec<(&'static str, u64, u64)>,
}

/// The guest (guests/paging.inc: paging_modes) leaves the 4 MiB-page
/// mode it starts in, switches to `kind` with CR0.WP=1 on tables the host
/// built, and writes 1024 dwords through one alias of a page: the sums
/// it reads back through a second alias and through the 1:1 mapping must
/// be the host's; a read-only mapping reads the host's data, and a write
/// to it raises #PF with error code P|W (3) and CR2 the written address,
/// leaving the page unchanged. Afterwards the guest's entries carry the
/// accessed and dirty bits the walks set: A|D on the written mapping, A
/// without D on the mappings only read (the read-only one included), and
/// the sregs show the mode (CR0.PG|WP, CR4.PSE/PAE, CR3, CR2).
fn paging_mode(kind: Paging) -> TestResult {
    let mem = Mem::new(PM_LEN)?;
    let mut g = Guest::at(Mode::Prot32, "paging_modes")?;
    g.vm.add_slot(1, PM_BASE, PM_LEN as u64, mem.addr(), 0)?;
    let off = |gpa: u64| (gpa - PM_BASE) as usize;
    let l = match kind {
        Paging::Flat4k => {
            // PD at BASE: PDE[0] -> PT0 (1:1, 4 MiB), PDE[256] (1 GiB)
            // -> PT1: DATA0 twice, DATA1 read-only.
            let (pd, pt0, pt1) = (PM_BASE, PM_BASE + 0x1000, PM_BASE + 0x2000);
            mem.write_u32(off(pd), (pt0 | P | RW) as u32);
            mem.write_u32(off(pd) + 4 * 256, (pt1 | P | RW) as u32);
            for i in 0..1024u64 {
                mem.write_u32(off(pt0) + 4 * i as usize, ((i << 12) | P | RW) as u32);
            }
            mem.write_u32(off(pt1), (PM_DATA0 | P | RW) as u32);
            mem.write_u32(off(pt1) + 4, (PM_DATA0 | P | RW) as u32);
            mem.write_u32(off(pt1) + 8, (PM_DATA1 | P) as u32);
            let checks = vec![
                ("PDE[256]", pd + 4 * 256, A),
                ("PTE of the written alias", pt1, A | D),
                ("PTE of the read alias", pt1 + 4, A),
                ("PTE of the read-only page", pt1 + 8, A),
                ("1:1 PTE of DATA0 (read only)", pt0 + 4 * (PM_DATA0 >> 12), A),
            ];
            PmLayout { cr4: 0, va_rw: ALIAS_VA, va_alias: ALIAS_VA + 0x1000, va_ro: ALIAS_VA + 0x2000, esz: 4, checks }
        }
        Paging::Pse4m => {
            // PD at BASE: PDE[0] 4 MiB 1:1; PDE[256] 4 MiB -> 0; PDE[257]
            // -> PT (4 KiB: DATA0); PDE[258] 4 MiB -> 0, read-only.
            let (pd, pt) = (PM_BASE, PM_BASE + 0x1000);
            mem.write_u32(off(pd), (P | RW | PS) as u32);
            mem.write_u32(off(pd) + 4 * 256, (P | RW | PS) as u32);
            mem.write_u32(off(pd) + 4 * 257, (pt | P | RW) as u32);
            mem.write_u32(off(pd) + 4 * 258, (P | PS) as u32);
            mem.write_u32(off(pt), (PM_DATA0 | P | RW) as u32);
            let checks = vec![
                ("4 MiB PDE of the written alias", pd + 4 * 256, A | D),
                ("PDE[257] (to the 4 KiB table)", pd + 4 * 257, A),
                ("PTE of the read alias", pt, A),
                ("4 MiB PDE of the read-only alias", pd + 4 * 258, A),
            ];
            PmLayout {
                cr4: 0x10,
                va_rw: ALIAS_VA + PM_DATA0,
                va_alias: ALIAS_VA + (1 << 22),
                va_ro: ALIAS_VA + (2 << 22) + PM_DATA1,
                esz: 4,
                checks,
            }
        }
        Paging::Pae => {
            // PDPT at BASE: [0] -> PD0 (PDE[0] -> PT0: 1:1, 2 MiB),
            // [1] (1 GiB) -> PD1: PDE[0] -> PT1 (DATA0; DATA1 read-only
            // at index 2), PDE[1] 2 MiB -> 0.
            let (pdpt, pd0, pd1, pt0, pt1) =
                (PM_BASE, PM_BASE + 0x1000, PM_BASE + 0x2000, PM_BASE + 0x3000, PM_BASE + 0x4000);
            mem.write_u64(off(pdpt), pd0 | P);
            mem.write_u64(off(pdpt) + 8, pd1 | P);
            mem.write_u64(off(pd0), pt0 | P | RW);
            for i in 0..512u64 {
                mem.write_u64(off(pt0) + 8 * i as usize, (i << 12) | P | RW);
            }
            mem.write_u64(off(pd1), pt1 | P | RW);
            mem.write_u64(off(pd1) + 8, P | RW | PS);
            mem.write_u64(off(pt1), PM_DATA0 | P | RW);
            mem.write_u64(off(pt1) + 16, PM_DATA1 | P);
            let checks = vec![
                ("PD1[0]", pd1, A),
                ("PTE of the written alias", pt1, A | D),
                ("2 MiB PDE of the read alias", pd1 + 8, A),
                ("PTE of the read-only page", pt1 + 16, A),
                ("1:1 PTE of DATA0 (read only)", pt0 + 8 * (PM_DATA0 >> 12), A),
            ];
            PmLayout {
                cr4: 0x20,
                va_rw: ALIAS_VA,
                va_alias: ALIAS_VA + (1 << 21) + PM_DATA0,
                va_ro: ALIAS_VA + 0x2000,
                esz: 8,
                checks,
            }
        }
    };
    for i in 0..1024u32 {
        mem.write_u32(off(PM_DATA1) + 4 * i as usize, 0x0dd0_0000 + i);
    }
    let PmLayout { cr4, va_rw, va_alias, va_ro, esz, checks } = l;
    for (i, v) in [PM_BASE, cr4, va_rw, va_alias, va_ro, PM_DATA0].iter().enumerate() {
        g.vm.mem.write_u32(SCRATCH as usize + 4 * i, *v as u32);
    }
    // IDT vector 14: the routine's own #PF handler, which resumes.
    let h = g.sym("paging_modes_pf")?;
    let gate = (h & 0xffff) | (SEL_CODE32 << 16) | (0x8e << 40) | ((h >> 16) << 48);
    g.vm.mem.write_u64(IDT_ADDR as usize + 8 * 14, gate);

    let data = |i: u32| i.wrapping_mul(0x9e37_79b1).wrapping_add(0x600d);
    let sum = (0..1024).fold(0u32, |s, i| s.rotate_left(5) ^ data(i));
    g.cpu.expect(Exit::out4(PORT_ECHO, sum))?;
    g.cpu.expect(Exit::out4(PORT_ECHO, sum))?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x0dd0_0000))?;
    g.cpu.expect(Exit::out1(PORT_EXC, 14))?;
    eq_hex("#PF error code (P|W, supervisor)", g.cpu.out4_value(PORT_ECHO)?, 3)?;
    eq_hex("#PF CR2", g.cpu.out4_value(PORT_ECHO)?, (va_ro + 16) as u32)?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x900d))?;
    g.cpu.expect_hlt()?;

    eq_hex("DATA1 dword 4 after the faulting write", mem.read_u32(off(PM_DATA1) + 16), 0x0dd0_0004)?;
    for i in [0u32, 1, 511, 1023] {
        eq_hex(&format!("DATA0 dword {i}"), mem.read_u32(off(PM_DATA0) + 4 * i as usize), data(i))?;
    }
    for (what, gpa, want) in checks {
        let e = if esz == 8 { mem.read_u64(off(gpa)) } else { mem.read_u32(off(gpa)) as u64 };
        eq_hex(&format!("{what}: A|D bits (entry {e:#x})"), e & (A | D), want)?;
    }
    let s = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    eq_hex("sregs.cr0 PG|WP|PE", s.cr0 & 0x8001_0001, 0x8001_0001)?;
    eq_hex("sregs.cr4 PSE|PAE", s.cr4 & 0x30, cr4)?;
    eq_hex("sregs.cr3", s.cr3, PM_BASE)?;
    eq_hex("sregs.efer.LMA", s.efer & 0x400, 0)?;
    eq_hex("sregs.cr2", s.cr2, va_ro + 16)
}
