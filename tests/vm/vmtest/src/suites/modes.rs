//! Mode-specific behaviour: a real-mode guest switching itself to long
//! mode or to paged protected mode, paging aliases, and KVM_TRANSLATE.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use crate::report::expect_eq;

pub fn tests() -> Vec<Test> {
    vec![
        test("guest/real/switch-to-long-mode", to_long),
        test("guest/real/switch-to-prot32-paging", to_prot32),
        test("guest/prot32/paging-alias", || paging_alias(Mode::Prot32)),
        test("guest/long/paging-alias", || paging_alias(Mode::Long)),
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
