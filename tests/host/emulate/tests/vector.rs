//! MMX MOVQ and VEX moves: decoding, MMIO splitting, register effects and
//! the #UD/#NM/#MF/#GP checks, as upstream KVM emulates them.

mod common;

use common::{TestCpu, TestMem, PAGE, PTE_PW, PTE_PWU};
use rkvm_emulate::defs::regs::{
    X86_CR0_EM, X86_CR0_TS, X86_CR4_OSFXSR, X86_CR4_OSXSAVE, XFEATURE_MASK_FP, XFEATURE_MASK_SSE,
    XFEATURE_MASK_YMM,
};
use rkvm_emulate::defs::vector::{MF_VECTOR, NM_VECTOR, UD_VECTOR};
use rkvm_emulate::emulate::regs::SegReg;
use rkvm_emulate::emulate::{Emulator, Exception, MmioRequest, Outcome};

const RDI: usize = 7;
const MMIO: u64 = 0xD_0000;
const CR3: u64 = 0x10_0000;
const YMM: u64 = XFEATURE_MASK_FP | XFEATURE_MASK_SSE | XFEATURE_MASK_YMM;

/// MMIO accesses seen, and the data reads return (`gpa as u8 ^ 0xA5`).
#[derive(Default)]
struct Dev {
    reads: Vec<(u64, u8)>,
    writes: Vec<(u64, Vec<u8>)>,
}

fn read_data(gpa: u64, len: u8) -> Vec<u8> {
    (0..u64::from(len))
        .map(|i| (gpa + i) as u8 ^ 0xA5)
        .collect()
}

/// Long mode, CPL 0, AVX enabled (CR4.OSXSAVE, XCR0 = x87|SSE|YMM); two
/// MMIO pages at `MMIO`; RDI points into the first.
fn long_env() -> (TestCpu, TestMem) {
    let mut cpu = TestCpu::long64(CR3);
    cpu.rip = 0x1000;
    cpu.cr4 |= X86_CR4_OSXSAVE;
    cpu.xcr0 = YMM;
    cpu.gpr[RDI] = MMIO + 0x200;
    let mut mem = TestMem::new();
    mem.add_ram(CR3, PAGE);
    mem.identity(CR3, 0, 0x2_0000, PTE_PWU);
    mem.map4k(CR3, MMIO, MMIO, PTE_PW);
    mem.map4k(CR3, MMIO + PAGE, MMIO + PAGE, PTE_PW);
    mem.mmio.push((MMIO, 2 * PAGE));
    (cpu, mem)
}

/// Run `code` at CS:RIP to its final outcome, serving MMIO through `dev`.
fn run_dev(cpu: &mut TestCpu, mem: &mut TestMem, dev: &mut Dev, code: &[u8]) -> Outcome {
    cpu.rip = 0x1000;
    let cs = cpu.seg[SegReg::Cs as usize];
    mem.poke(cs.base + cpu.rip, code);
    let mut emu = Emulator::new();
    for _ in 0..100 {
        match emu.emulate(cpu, mem, &[]) {
            Outcome::Mmio(MmioRequest {
                gpa,
                len,
                is_write,
                data,
            }) => {
                if is_write {
                    dev.writes.push((gpa, data[..usize::from(len)].to_vec()));
                } else {
                    dev.reads.push((gpa, len));
                    emu.complete_mmio_read(&read_data(gpa, len));
                }
            }
            o => {
                assert!(!emu.is_pending());
                return o;
            }
        }
    }
    panic!("instruction did not finish");
}

fn run(cpu: &mut TestCpu, mem: &mut TestMem, code: &[u8]) -> Outcome {
    run_dev(cpu, mem, &mut Dev::default(), code)
}

fn exc(o: Outcome) -> Exception {
    match o {
        Outcome::Exception(e) => e,
        other => panic!("expected exception, got {other:?}"),
    }
}

fn unhandleable(o: Outcome) -> bool {
    matches!(o, Outcome::Unhandleable { .. })
}

fn pattern(n: usize, base: u8) -> Vec<u8> {
    (0..n as u8).map(|i| base.wrapping_add(i)).collect()
}

fn ymm_of(cpu: &TestCpu, n: usize) -> Vec<u8> {
    let mut v = cpu.xmm[n].to_le_bytes().to_vec();
    v.extend_from_slice(&cpu.ymm_hi[n].to_le_bytes());
    v
}

fn set_ymm(cpu: &mut TestCpu, n: usize, v: &[u8]) {
    cpu.xmm[n] = u128::from_le_bytes(v[..16].try_into().unwrap());
    cpu.ymm_hi[n] = u128::from_le_bytes(v[16..].try_into().unwrap());
}

#[test]
fn mmx_movq_to_and_from_mmio() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.mm[1] = 0x0706_0504_0302_0100;
    // movq [rdi], mm1: one 8-byte write.
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x0F, 0x7F, 0x0F]),
        Outcome::Completed
    );
    assert_eq!(dev.writes, vec![(MMIO + 0x200, pattern(8, 0))]);
    assert_eq!(cpu.rip, 0x1003);
    // movq mm2, [rdi+3]: one 8-byte read, no alignment needed.
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x0F, 0x6F, 0x57, 0x03]),
        Outcome::Completed
    );
    assert_eq!(dev.reads, vec![(MMIO + 0x203, 8)]);
    assert_eq!(cpu.mm[2].to_le_bytes().to_vec(), read_data(MMIO + 0x203, 8));
    // REX.R/REX.B do not reach mm8+: 4D 0F 6F DA is movq mm3, mm2.
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x4D, 0x0F, 0x6F, 0xDA]),
        Outcome::Completed
    );
    assert_eq!(cpu.mm[3], cpu.mm[2]);
    // 0F 7F register form: movq mm5, mm1.
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x7F, 0xCD]),
        Outcome::Completed
    );
    assert_eq!(cpu.mm[5], cpu.mm[1]);
    // MMX needs no CR4.OSFXSR.
    cpu.cr4 &= !X86_CR4_OSFXSR;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x7F, 0x0F]),
        Outcome::Completed
    );
}

#[test]
fn mmx_checks() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.cr0 |= X86_CR0_EM | X86_CR0_TS;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x7F, 0x0F])).vector,
        UD_VECTOR
    );
    cpu.cr0 &= !X86_CR0_EM;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x7F, 0x0F])).vector,
        NM_VECTOR
    );
    cpu.cr0 &= !X86_CR0_TS;
    // A pending x87 exception comes first, before any access.
    cpu.x87_pending = true;
    assert_eq!(
        exc(run_dev(&mut cpu, &mut mem, &mut dev, &[0x0F, 0x6F, 0x07])).vector,
        MF_VECTOR
    );
    assert!(dev.reads.is_empty() && dev.writes.is_empty());
    cpu.x87_pending = false;
    // Upstream emulates no other MMX move: MOVD/MOVQ 0F 6E/7E, MOVNTQ 0F E7.
    for code in [
        &[0x0F, 0x6E, 0x07][..],
        &[0x0F, 0x7E, 0x07],
        &[0x48, 0x0F, 0x7E, 0x07],
        &[0x0F, 0xE7, 0x07],
    ] {
        assert!(unhandleable(run(&mut cpu, &mut mem, code)), "{code:02x?}");
    }
    // F2 0F 6F is not a move at all here.
    assert!(unhandleable(run(
        &mut cpu,
        &mut mem,
        &[0xF2, 0x0F, 0x6F, 0x07]
    )));
}

#[test]
fn vmovdqu_ymm_is_split_into_8_byte_pieces() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    set_ymm(&mut cpu, 1, &pattern(32, 0));
    // vmovdqu [rdi+1], ymm1: four 8-byte writes.
    cpu.gpr[RDI] = MMIO + 0x181;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0xFE, 0x7F, 0x0F]),
        Outcome::Completed
    );
    let want: Vec<_> = (0..4)
        .map(|i| (MMIO + 0x181 + 8 * i, pattern(8, 8 * i as u8)))
        .collect();
    assert_eq!(dev.writes, want);
    // vmovdqu ymm2, [rdi]: four 8-byte reads, all 256 bits loaded.
    cpu.gpr[RDI] = MMIO + 0x1C1;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0xFE, 0x6F, 0x17]),
        Outcome::Completed
    );
    let want: Vec<_> = (0..4).map(|i| (MMIO + 0x1C1 + 8 * i, 8)).collect();
    assert_eq!(dev.reads, want);
    assert_eq!(ymm_of(&cpu, 2), read_data(MMIO + 0x1C1, 32));
    // vmovdqu xmm3, [rdi] (VEX.128): two reads, bits 255:128 zeroed.
    dev.reads.clear();
    set_ymm(&mut cpu, 3, &[0xFF; 32]);
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0xFA, 0x6F, 0x1F]),
        Outcome::Completed
    );
    assert_eq!(dev.reads.len(), 2);
    let mut want = read_data(MMIO + 0x1C1, 16);
    want.extend([0; 16]);
    assert_eq!(ymm_of(&cpu, 3), want);
    // vmovdqu [rdi], xmm1 (VEX.128 store): two writes of the low half.
    dev.writes.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0xFA, 0x7F, 0x0F]),
        Outcome::Completed
    );
    assert_eq!(
        dev.writes,
        vec![(MMIO + 0x1C1, pattern(8, 0)), (MMIO + 0x1C9, pattern(8, 8))]
    );
    // VEX.R selects ymm8: vmovdqu [rdi], ymm8.
    set_ymm(&mut cpu, 8, &pattern(32, 0x40));
    dev.writes.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0x7E, 0x7F, 0x07]),
        Outcome::Completed
    );
    assert_eq!(dev.writes.concat_data(), pattern(32, 0x40));
}

trait ConcatData {
    fn concat_data(&self) -> Vec<u8>;
}

impl ConcatData for Vec<(u64, Vec<u8>)> {
    fn concat_data(&self) -> Vec<u8> {
        self.iter().flat_map(|(_, d)| d.clone()).collect()
    }
}

#[test]
fn ymm_store_across_a_page() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    set_ymm(&mut cpu, 1, &pattern(32, 0));
    cpu.gpr[RDI] = MMIO + 0xFF6;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0xFE, 0x7F, 0x0F]),
        Outcome::Completed
    );
    let gpas: Vec<_> = dev.writes.iter().map(|(g, d)| (*g, d.len())).collect();
    assert_eq!(
        gpas,
        vec![
            (MMIO + 0xFF6, 8),
            (MMIO + 0xFFE, 2),
            (MMIO + PAGE, 8),
            (MMIO + PAGE + 8, 8),
            (MMIO + PAGE + 16, 6)
        ]
    );
    assert_eq!(dev.writes.concat_data(), pattern(32, 0));
}

#[test]
fn vex_moves_and_alignment() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    set_ymm(&mut cpu, 1, &pattern(32, 0x20));
    cpu.gpr[RDI] = MMIO + 0x200;
    // vmovdqa ymm2, [rdi+0x10]: 32-byte aligned form -> #GP(0).
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0xC5, 0xFD, 0x6F, 0x57, 0x10])),
        Exception::gp(0)
    );
    // vmovdqa xmm2, [rdi+0x10]: 16-byte aligned is enough at 128 bits.
    assert_eq!(
        run(&mut cpu, &mut mem, &[0xC5, 0xF9, 0x6F, 0x57, 0x10]),
        Outcome::Completed
    );
    // vmovaps/vmovapd/vmovntps/vmovntpd/vmovntdq/vmovntdqa at 256 bits.
    for code in [
        &[0xC5, 0xFC, 0x28, 0x57, 0x10][..],
        &[0xC5, 0xFD, 0x29, 0x4F, 0x10],
        &[0xC5, 0xFC, 0x2B, 0x4F, 0x10],
        &[0xC5, 0xFD, 0x2B, 0x4F, 0x10],
        &[0xC5, 0xFD, 0xE7, 0x4F, 0x10],
        &[0xC4, 0xE2, 0x7D, 0x2A, 0x57, 0x10],
    ] {
        assert_eq!(
            exc(run(&mut cpu, &mut mem, code)),
            Exception::gp(0),
            "{code:02x?}"
        );
        let mut ok = code.to_vec();
        *ok.last_mut().unwrap() = 0x20;
        assert_eq!(
            run(&mut cpu, &mut mem, &ok),
            Outcome::Completed,
            "{ok:02x?}"
        );
    }
    // vmovups/vmovupd/vmovdqu are unaligned.
    for code in [
        &[0xC5, 0xFC, 0x10, 0x57, 0x01][..],
        &[0xC5, 0xFD, 0x11, 0x4F, 0x01],
        &[0xC5, 0xFE, 0x7F, 0x4F, 0x01],
    ] {
        assert_eq!(
            run(&mut cpu, &mut mem, code),
            Outcome::Completed,
            "{code:02x?}"
        );
    }
    // vmovntdq [rdi], ymm1 (VEX3 form of the same): four writes.
    dev.writes.clear();
    assert_eq!(
        run_dev(
            &mut cpu,
            &mut mem,
            &mut dev,
            &[0xC4, 0xE1, 0x7D, 0xE7, 0x0F]
        ),
        Outcome::Completed
    );
    assert_eq!(dev.writes.concat_data(), pattern(32, 0x20));
    // Register to register: vmovaps ymm4, ymm1 and vmovups xmm5, xmm1
    // (VEX.128 clears bits 255:128).
    assert_eq!(
        run(&mut cpu, &mut mem, &[0xC5, 0xFC, 0x28, 0xE1]),
        Outcome::Completed
    );
    assert_eq!(ymm_of(&cpu, 4), pattern(32, 0x20));
    set_ymm(&mut cpu, 5, &[0xFF; 32]);
    assert_eq!(
        run(&mut cpu, &mut mem, &[0xC5, 0xF8, 0x10, 0xE9]),
        Outcome::Completed
    );
    let mut want = pattern(16, 0x20);
    want.extend([0; 16]);
    assert_eq!(ymm_of(&cpu, 5), want);
    // Legacy SSE writes leave bits 255:128 alone: movups xmm5, xmm4.
    set_ymm(&mut cpu, 5, &[0xFF; 32]);
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x10, 0xEC]),
        Outcome::Completed
    );
    let mut want = pattern(16, 0x20);
    want.extend([0xFF; 16]);
    assert_eq!(ymm_of(&cpu, 5), want);
}

#[test]
fn vex_checks() {
    let (mut cpu, mut mem) = long_env();
    let store = [0xC5, 0xFE, 0x7F, 0x0F];
    cpu.cr0 |= X86_CR0_EM | X86_CR0_TS;
    assert_eq!(exc(run(&mut cpu, &mut mem, &store)).vector, UD_VECTOR);
    cpu.cr0 &= !X86_CR0_EM;
    assert_eq!(exc(run(&mut cpu, &mut mem, &store)).vector, NM_VECTOR);
    cpu.cr0 &= !X86_CR0_TS;
    cpu.cr4 &= !X86_CR4_OSXSAVE;
    assert_eq!(exc(run(&mut cpu, &mut mem, &store)).vector, UD_VECTOR);
    cpu.cr4 |= X86_CR4_OSXSAVE;
    cpu.xcr0 = XFEATURE_MASK_FP | XFEATURE_MASK_SSE;
    assert_eq!(exc(run(&mut cpu, &mut mem, &store)).vector, UD_VECTOR);
    cpu.xcr0 = YMM;
    // #UD encodings: a 66/F3/F2/REX prefix, VEX.vvvv != 1111b, map 0,
    // LOCK, a register operand for the non-temporal forms.
    for code in [
        &[0x66, 0xC5, 0xFE, 0x7F, 0x0F][..],
        &[0xF3, 0xC5, 0xFE, 0x7F, 0x0F],
        &[0xF2, 0xC5, 0xFE, 0x7F, 0x0F],
        &[0x48, 0xC5, 0xFE, 0x7F, 0x0F],
        &[0xC5, 0xF6, 0x7F, 0x0F],
        &[0xC4, 0xE0, 0x7E, 0x7F, 0x0F],
        &[0xF0, 0xC5, 0xFE, 0x7F, 0x0F],
        &[0xC5, 0xFD, 0xE7, 0xC1],
        &[0xC4, 0xE2, 0x7D, 0x2A, 0xC1],
    ] {
        assert_eq!(
            exc(run(&mut cpu, &mut mem, code)).vector,
            UD_VECTOR,
            "{code:02x?}"
        );
    }
    // Valid VEX instructions upstream does not emulate: vaddps, vmovss,
    // VEX.0F 6F (no VEX MMX), map 3 (vinsertf128).
    for code in [
        &[0xC5, 0xFC, 0x58, 0x07][..],
        &[0xC5, 0xFA, 0x10, 0x07],
        &[0xC4, 0xE3, 0x7D, 0x18, 0x07, 0x00],
    ] {
        assert!(unhandleable(run(&mut cpu, &mut mem, code)), "{code:02x?}");
    }
}

#[test]
fn vex_outside_64_bit_mode() {
    // 32-bit protected mode: C5 with mod = 11 in the next byte is VEX,
    // otherwise LDS.
    let mut cpu = TestCpu::prot32();
    cpu.rip = 0x1000;
    cpu.cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXSAVE;
    cpu.xcr0 = YMM;
    let mut mem = TestMem::new();
    mem.add_ram(0, 0x2_0000);
    mem.mmio.push((MMIO, PAGE));
    set_ymm(&mut cpu, 1, &pattern(32, 0));
    cpu.gpr[RDI] = MMIO + 0x100;
    let mut dev = Dev::default();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xC5, 0xFE, 0x7F, 0x0F]),
        Outcome::Completed
    );
    assert_eq!(dev.writes.concat_data(), pattern(32, 0));
    // C5 07 = lds eax, [edi] with RAM behind it.
    cpu.gpr[RDI] = 0x3000;
    mem.poke(0x3000, &[0x78, 0x56, 0x34, 0x12, 0x10, 0x00]);
    mem.poke(0x10, &[0; 8]);
    cpu.gdtr = rkvm_emulate::emulate::DescTable {
        base: 0x8000,
        limit: 0x17,
    };
    mem.poke(0x8010, &0x00CF_9300_0000_FFFFu64.to_le_bytes());
    assert_eq!(run(&mut cpu, &mut mem, &[0xC5, 0x07]), Outcome::Completed);
    assert_eq!(cpu.gpr[0], 0x1234_5678);
    assert_eq!(cpu.seg[SegReg::Ds as usize].selector, 0x10);
    // VEX.W and VEX.B outside 64-bit mode: ignored by the CPU, not
    // emulated (as upstream).
    assert!(unhandleable(run(
        &mut cpu,
        &mut mem,
        &[0xC4, 0xE1, 0xFE, 0x7F, 0x0F]
    )));
    assert!(unhandleable(run(
        &mut cpu,
        &mut mem,
        &[0xC4, 0xC1, 0x7E, 0x7F, 0x0F]
    )));
    // Real mode: VEX is #UD.
    let mut cpu = TestCpu::real();
    cpu.rip = 0x1000;
    cpu.cr4 |= X86_CR4_OSXSAVE;
    cpu.xcr0 = YMM;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0xC5, 0xFE, 0x7F, 0xC1])).vector,
        UD_VECTOR
    );
}

#[test]
fn movntdqa_sse() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.xmm[2] = u128::MAX;
    cpu.ymm_hi[2] = u128::MAX;
    // movntdqa xmm2, [rdi]: two reads; the YMM upper half stays.
    assert_eq!(
        run_dev(
            &mut cpu,
            &mut mem,
            &mut dev,
            &[0x66, 0x0F, 0x38, 0x2A, 0x17]
        ),
        Outcome::Completed
    );
    assert_eq!(dev.reads, vec![(MMIO + 0x200, 8), (MMIO + 0x208, 8)]);
    assert_eq!(
        cpu.xmm[2].to_le_bytes().to_vec(),
        read_data(MMIO + 0x200, 16)
    );
    assert_eq!(cpu.ymm_hi[2], u128::MAX);
    assert_eq!(
        exc(run(
            &mut cpu,
            &mut mem,
            &[0x66, 0x0F, 0x38, 0x2A, 0x57, 0x08]
        )),
        Exception::gp(0)
    );
    assert!(unhandleable(run(
        &mut cpu,
        &mut mem,
        &[0x0F, 0x38, 0x2A, 0x17]
    )));
}
