//! The basic exits, once per CPU mode (`guest/<mode>/...`): each test
//! starts one routine of guests/exits.inc and checks the exact sequence of
//! exits that routine documents.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use kvm_bindings::*;

pub fn tests() -> Vec<Test> {
    let mut v = Vec::new();
    for m in MODES {
        let n = |t: &str| format!("guest/{}/{t}", m.name());
        v.push(test(n("hlt"), move || hlt(m)));
        v.push(test(n("pio-out"), move || pio_out(m)));
        v.push(test(n("pio-in"), move || pio_in(m)));
        v.push(test(n("mmio-write"), move || mmio_write(m)));
        v.push(test(n("mmio-read"), move || mmio_read(m)));
        v.push(test(n("string-io-rep"), move || string_io(m)));
        v.push(test(n("cpuid"), move || cpuid(m)));
        v.push(test(n("rdmsr-wrmsr"), move || msr(m)));
        v.push(test(n("rdmsr-unknown-gp"), move || msr_unknown(m)));
        v.push(test(n("triple-fault-shutdown"), move || triple_fault(m)));
        v.push(test(n("ud-exception"), move || ud(m)));
        if m != Mode::Real {
            v.push(test(n("pf-exception"), move || pf(m)));
        }
        v.push(test(n("misc-intercepts"), move || misc(m)));
    }
    v
}

/// HLT exits with KVM_EXIT_HLT and RIP just past the HLT.
fn hlt(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "hlt_once")?;
    g.cpu.expect_hlt()?;
    eq_hex("rip after hlt", g.cpu.regs()?.rip, g.sym("after_hlt")?)
}

fn pio_out(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "pio_out")?;
    g.cpu.expect(Exit::out1(PORT_OUT, 0x12))?;
    g.cpu.expect(Exit::out2(PORT_OUT, 0x3456))?;
    g.cpu.expect(Exit::out4(PORT_OUT, 0x789a_bcde))?;
    g.cpu.expect(Exit::out1(PORT_HI, 0xab))?;
    g.cpu.expect_hlt()
}

fn pio_in(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "pio_in")?;
    g.cpu.expect_in(PORT_IN, 1, 1, &[0xa5])?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x1122_33a5))?;
    g.cpu.expect_in(PORT_IN, 2, 1, &0xbeefu16.to_le_bytes())?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x1122_beef))?;
    g.cpu.expect_in(PORT_HI, 4, 1, &0xdead_beefu32.to_le_bytes())?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0xdead_beef))?;
    g.cpu.expect_hlt()
}

fn mmio_write(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "mmio_write")?;
    g.cpu.expect(Exit::mmio_write(MMIO_ADDR, &[0x5a]))?;
    g.cpu.expect(Exit::mmio_write(MMIO_ADDR + 2, &0x1234u16.to_le_bytes()))?;
    g.cpu.expect(Exit::mmio_write(MMIO_ADDR + 4, &0x89ab_cdefu32.to_le_bytes()))?;
    if m == Mode::Long {
        g.cpu.expect(Exit::mmio_write(MMIO_ADDR + 8, &0x0123_4567_89ab_cdefu64.to_le_bytes()))?;
    }
    g.cpu.expect_hlt()
}

fn mmio_read(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "mmio_read")?;
    g.cpu.expect_mmio_read(MMIO_ADDR, &[0x81])?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x81))?;
    g.cpu.expect_mmio_read(MMIO_ADDR + 2, &0x8283u16.to_le_bytes())?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x8283))?;
    g.cpu.expect_mmio_read(MMIO_ADDR + 4, &0x8485_8687u32.to_le_bytes())?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x8485_8687))?;
    if m == Mode::Long {
        g.cpu.expect_mmio_read(MMIO_ADDR + 8, &0x1122_3344_5566_7788u64.to_le_bytes())?;
        g.cpu.expect(Exit::out4(PORT_ECHO, 0x5566_7788))?;
        g.cpu.expect(Exit::out4(PORT_ECHO, 0x1122_3344))?;
    }
    g.cpu.expect_hlt()
}

/// REP OUTSB and REP INSW: the data of each exit in the PIO data page
/// (count x size bytes at data_offset), all of it delivered in order, and
/// the registers advanced as the CPU would.  The split into exits is the
/// in-tree module's: one exit per element for OUTS (16 exits of count 1),
/// one exit of count 8 for INS (it reads ahead).
fn string_io(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "string_io")?;
    let outbuf = g.sym("outbuf")?;
    let inbuf = g.sym("inbuf")?;
    let want_out = b"rkvm: rep outsb!".to_vec();
    for (i, b) in want_out.iter().enumerate() {
        match g.cpu.run()? {
            Exit::Io { out: true, port: PORT_STR, size: 1, count: 1, data } if data == [*b] => {}
            e => {
                return Err(format!(
                    "rep outsb element {i}: got exit {e}, want out port {PORT_STR:#x} size 1 count 1 data [{b:#04x}]"
                ))
            }
        }
    }
    let words: Vec<u8> = (0..16u8).map(|i| 0xa0 + i).collect();
    match g.cpu.run()? {
        Exit::Io { out: false, port: PORT_STR, size: 2, count: 8, .. } => g.cpu.respond(&words)?,
        e => return Err(format!("rep insw: got exit {e}, want one in port {PORT_STR:#x} size 2 count 8")),
    }
    g.cpu.expect_hlt()?;
    let got = g.vm.mem.read(inbuf as usize, 16);
    if got != words {
        return Err(format!("inbuf after rep insw: {got:02x?}, want {words:02x?}"));
    }
    let r = g.cpu.regs()?;
    eq_hex("rcx", r.rcx, 0)?;
    eq_hex("rsi", r.rsi, outbuf + 16)?;
    eq_hex("rdi", r.rdi, inbuf + 16)
}

/// The guest's CPUID answers come from the table set with KVM_SET_CPUID2:
/// a custom hypervisor leaf, a brand-string leaf, a leaf whose index is
/// significant (two subleaves) and one whose index is not.
fn cpuid(m: Mode) -> TestResult {
    let vm = Vm::new(m)?;
    let mut table = vm.supported_cpuid()?;
    let custom = cpuid_custom_entries();
    let mut entries: Vec<kvm_cpuid_entry2> =
        table.as_slice().iter().filter(|e| !custom.iter().any(|c| c.function == e.function)).copied().collect();
    entries.extend_from_slice(&custom);
    table = CpuId::from_entries(&entries).map_err(|e| format!("CpuId::from_entries: {e:?}"))?;
    let mut cpu = vm.vcpu_with_cpuid(0, &table)?;
    // (leaf, subleaf) list for cpuid_list, and what each must return.
    let queries: [(u32, u32, [u32; 4]); 5] = [
        (0x4000_0000, 0, [0x4000_0011, 0x6d76_6b72, 0x7473_6574, 0x2121_2121]),
        (0x8000_0002, 0, [0x6d76_6b72, 0x6575_6720, 0x6320_7473, 0x6469_7570]),
        (0x4000_0010, 0, [0xa0, 0xa1, 0xa2, 0xa3]),
        (0x4000_0010, 1, [0xb0, 0xb1, 0xb2, 0xb3]),
        (0x4000_0011, 5, [0xc0, 0xc1, 0xc2, 0xc3]),
    ];
    let mut off = SCRATCH as usize;
    for (leaf, sub, _) in &queries {
        vm.mem.write_u32(off, *leaf);
        vm.mem.write_u32(off + 4, *sub);
        off += 8;
    }
    vm.mem.write_u32(off, 0xffff_ffff);
    cpu.start("cpuid_list")?;
    cpu.with_regs(|r| r.rsi = SCRATCH)?;
    let got = cpu.collect_out4(PORT_CPUID, 4 * queries.len() + 1)?;
    let want: Vec<u32> = queries.iter().flat_map(|q| q.2).collect();
    if got != want {
        return Err(format!("cpuid results (eax ebx ecx edx per leaf): got {got:x?}, want {want:x?}"));
    }
    Ok(())
}

/// Leaves no KVM code adjusts at run time, with recognisable values.
pub fn cpuid_custom_entries() -> Vec<kvm_cpuid_entry2> {
    let e = |function, index, flags, r: [u32; 4]| kvm_cpuid_entry2 {
        function,
        index,
        flags,
        eax: r[0],
        ebx: r[1],
        ecx: r[2],
        edx: r[3],
        ..Default::default()
    };
    vec![
        // "rkvmtest!!!!", max hypervisor leaf 0x40000011
        e(0x4000_0000, 0, 0, [0x4000_0011, 0x6d76_6b72, 0x7473_6574, 0x2121_2121]),
        // brand string "rkvm guest cpuid"
        e(0x8000_0002, 0, 0, [0x6d76_6b72, 0x6575_6720, 0x6320_7473, 0x6469_7570]),
        e(0x4000_0010, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, [0xa0, 0xa1, 0xa2, 0xa3]),
        e(0x4000_0010, 1, KVM_CPUID_FLAG_SIGNIFCANT_INDEX, [0xb0, 0xb1, 0xb2, 0xb3]),
        e(0x4000_0011, 0, 0, [0xc0, 0xc1, 0xc2, 0xc3]),
    ]
}

const MSR_IA32_TSC: u32 = 0x10;
const MSR_IA32_SYSENTER_CS: u32 = 0x174;
const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;

/// WRMSR/RDMSR round trips inside the guest, EFER as the mode implies, a
/// TSC that moves forward, and the guest's writes visible to KVM_GET_MSRS.
fn msr(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "msr_ops")?;
    let got = g.cpu.collect_out4(PORT_MSR, 12)?;
    let efer = if m == Mode::Long { 0x500 } else { 0 };
    let want_fixed = [0x10, 0, 0x0010_0008, 0x8100_0000, 0xffff_ffff, efer];
    if got.len() != 10 || got[..6] != want_fixed {
        return Err(format!(
            "guest rdmsr results: got {got:x?}, want {want_fixed:x?} (SYSENTER_CS, STAR lo/hi, LSTAR lo/hi, EFER) + 2 TSC reads"
        ));
    }
    let tsc1 = got[6] as u64 | (got[7] as u64) << 32;
    let tsc2 = got[8] as u64 | (got[9] as u64) << 32;
    if tsc2 <= tsc1 {
        return Err(format!("TSC did not advance: {tsc1:#x} then {tsc2:#x}"));
    }
    let mut msrs = Msrs::from_entries(&[
        kvm_msr_entry { index: MSR_IA32_SYSENTER_CS, ..Default::default() },
        kvm_msr_entry { index: MSR_STAR, ..Default::default() },
        kvm_msr_entry { index: MSR_LSTAR, ..Default::default() },
        kvm_msr_entry { index: MSR_IA32_TSC, ..Default::default() },
    ])
    .map_err(|e| format!("Msrs: {e:?}"))?;
    let n = k("KVM_GET_MSRS", g.cpu.fd.get_msrs(&mut msrs))?;
    if n != 4 {
        return Err(format!("KVM_GET_MSRS returned {n}, want 4"));
    }
    let e = msrs.as_slice();
    eq_hex("SYSENTER_CS from KVM_GET_MSRS", e[0].data, 0x10)?;
    eq_hex("STAR from KVM_GET_MSRS", e[1].data, 0x0010_0008_0000_0000)?;
    eq_hex("LSTAR from KVM_GET_MSRS", e[2].data, 0xffff_ffff_8100_0000)?;
    if e[3].data < tsc2 {
        return Err(format!("TSC from KVM_GET_MSRS {:#x} is behind the guest's last read {tsc2:#x}", e[3].data));
    }
    Ok(())
}

/// RDMSR of a MSR that does not exist injects #GP (no userspace exit).
fn msr_unknown(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "msr_unknown")?;
    g.cpu.expect(Exit::out1(PORT_EXC, 13))?;
    g.cpu.expect_hlt()
}

/// #UD with an IDT of limit 0 escalates to a triple fault.
fn triple_fault(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "triple_fault")?;
    g.cpu.expect(Exit::Shutdown)
}

/// UD2 raises #UD, delivered through the guest's IDT (IVT in real mode).
fn ud(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "ud_test")?;
    g.cpu.expect(Exit::out1(PORT_EXC, 6))?;
    g.cpu.expect_hlt()
}

/// A load from a not-present page raises #PF with CR2 = the address.
fn pf(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "pf_test")?;
    let va = if m == Mode::Long { UNMAPPED_VA64 } else { UNMAPPED_VA32 } + 0x18;
    g.cpu.expect(Exit::out1(PORT_EXC, 14))?;
    g.cpu.expect(Exit::out4(PORT_ECHO, va as u32))?;
    g.cpu.expect_hlt()?;
    let s = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    eq_hex("sregs.cr2", s.cr2, va)
}

/// PAUSE, INVLPG, CR3 reload, WBINVD, CLTS, RDTSC and a CR0 write run
/// without any userspace exit.
fn misc(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "misc_insns")?;
    g.cpu.expect(Exit::out4(PORT_ECHO, 0x0dd0_ba11))?;
    g.cpu.expect_hlt()
}
