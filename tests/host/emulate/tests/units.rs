//! Unit tests per instruction group and mode, the MMIO/PIO resume
//! protocol, faults, segmentation and the page-table walker.

mod common;

use std::collections::HashMap;

use common::{flat_seg, TestCpu, TestMem, PAGE, PTE_PW, PTE_PWU};
use rkvm_emulate::defs::msr::MSR_TSC_AUX;
use rkvm_emulate::defs::paging::{
    PFERR_FETCH_MASK, PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK,
};
use rkvm_emulate::defs::regs::{
    DR6_BD, DR7_GD, X86_CR0_AM, X86_CR0_TS, X86_CR0_WP, X86_CR4_DE, X86_CR4_OSFXSR, X86_CR4_SMAP,
    X86_CR4_TSD, X86_CR4_UMIP, X86_EFLAGS_AC, X86_EFLAGS_AF, X86_EFLAGS_CF, X86_EFLAGS_DF,
    X86_EFLAGS_FIXED, X86_EFLAGS_IF, X86_EFLAGS_IOPL_BIT, X86_EFLAGS_TF, X86_EFLAGS_ZF,
};
use rkvm_emulate::defs::vector::{
    AC_VECTOR, DB_VECTOR, DE_VECTOR, NM_VECTOR, NP_VECTOR, PF_VECTOR, UD_VECTOR,
};
use rkvm_emulate::emulate::paging::{self, Access, PagingConfig, WalkError};
use rkvm_emulate::emulate::regs::SegReg;
use rkvm_emulate::emulate::{
    DescTable, Emulator, Exception, InterruptShadow, MmioRequest, Outcome, PioRequest, Segment,
    REP_BUDGET,
};

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSP: usize = 4;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

/// MMIO window used by the tests (real-mode reachable and identity-mapped
/// in long mode).
const MMIO: u64 = 0xD_0000;
const CR3: u64 = 0x10_0000;

/// A fake device behind the MMIO window and all ports.
#[derive(Default)]
struct Dev {
    mem: HashMap<u64, u8>,
    writes: Vec<(u64, Vec<u8>)>,
    reads: Vec<(u64, u8)>,
    outs: Vec<(u16, u8, Vec<u8>)>,
    /// Every port request, in order.
    pios: Vec<PioRequest>,
    in_byte: u8,
    exits: u32,
}

impl Dev {
    fn read(&mut self, r: &MmioRequest) -> Vec<u8> {
        self.reads.push((r.gpa, r.len));
        (0..u64::from(r.len))
            .map(|i| {
                *self
                    .mem
                    .get(&(r.gpa + i))
                    .unwrap_or(&((r.gpa + i) as u8 ^ 0xA5))
            })
            .collect()
    }
    fn write(&mut self, r: &MmioRequest) {
        let d = r.data[..usize::from(r.len)].to_vec();
        for (i, b) in d.iter().enumerate() {
            self.mem.insert(r.gpa + i as u64, *b);
        }
        self.writes.push((r.gpa, d));
    }
}

fn real_env() -> (TestCpu, TestMem) {
    let mut cpu = TestCpu::real();
    cpu.rip = 0x100;
    cpu.gpr[RSP] = 0x8000;
    let mut mem = TestMem::new();
    mem.add_ram(0, 0x2_0000);
    mem.mmio.push((MMIO, PAGE));
    (cpu, mem)
}

fn long_env() -> (TestCpu, TestMem) {
    let mut cpu = TestCpu::long64(CR3);
    cpu.rip = 0x1000;
    cpu.gpr[RSP] = 0x8000;
    let mut mem = TestMem::new();
    mem.add_ram(CR3, PAGE);
    mem.identity(CR3, 0, 0x2_0000, PTE_PWU);
    mem.map4k(CR3, MMIO, MMIO, PTE_PW);
    mem.map4k(CR3, MMIO + PAGE, MMIO + PAGE, PTE_PW);
    mem.mmio.push((MMIO, 2 * PAGE));
    (cpu, mem)
}

fn prot_env() -> (TestCpu, TestMem) {
    let mut cpu = TestCpu::prot32();
    cpu.rip = 0x1000;
    cpu.gpr[RSP] = 0x8000;
    let mut mem = TestMem::new();
    mem.add_ram(0, 0x2_0000);
    mem.mmio.push((MMIO, PAGE));
    (cpu, mem)
}

/// Place `code` at CS:RIP (linear == physical in these setups).
fn place(cpu: &TestCpu, mem: &mut TestMem, code: &[u8]) {
    let cs = cpu.seg[SegReg::Cs as usize];
    mem.poke(cs.base + cpu.rip, code);
}

/// Run one instruction to its final outcome, servicing MMIO/PIO with `dev`.
fn drive(cpu: &mut TestCpu, mem: &mut TestMem, dev: &mut Dev, emu: &mut Emulator) -> Outcome {
    for _ in 0..100_000 {
        let o = emu.emulate(cpu, mem, &[]);
        match o {
            Outcome::Mmio(r) => {
                dev.exits += 1;
                if r.is_write {
                    dev.write(&r);
                } else {
                    let d = dev.read(&r);
                    emu.complete_mmio_read(&d);
                }
            }
            Outcome::Pio(p) => {
                dev.exits += 1;
                dev.pios.push(p);
                if p.is_in {
                    let n = usize::from(p.size) * p.count as usize;
                    let d: Vec<u8> = (0..n).map(|i| dev.in_byte.wrapping_add(i as u8)).collect();
                    emu.complete_pio_in(&d);
                } else {
                    dev.outs.push((p.port, p.size, emu.pio_out_data().to_vec()));
                }
            }
            Outcome::Continue => {}
            other => {
                assert!(!emu.is_pending(), "pending after final outcome {other:?}");
                return other;
            }
        }
    }
    panic!("instruction did not finish");
}

fn run(cpu: &mut TestCpu, mem: &mut TestMem, code: &[u8]) -> Outcome {
    place(cpu, mem, code);
    let mut emu = Emulator::new();
    let mut dev = Dev::default();
    drive(cpu, mem, &mut dev, &mut emu)
}

fn run_dev(cpu: &mut TestCpu, mem: &mut TestMem, dev: &mut Dev, code: &[u8]) -> Outcome {
    place(cpu, mem, code);
    let mut emu = Emulator::new();
    drive(cpu, mem, dev, &mut emu)
}

fn exc(o: Outcome) -> Exception {
    match o {
        Outcome::Exception(e) => e,
        other => panic!("expected exception, got {other:?}"),
    }
}

// ----- MMIO protocol -----

#[test]
fn real_mode_mov_to_mmio_is_a_posted_write() {
    let (mut cpu, mut mem) = real_env();
    cpu.seg[SegReg::Ds as usize] = common::real_seg((MMIO >> 4) as u16, false);
    cpu.gpr[RBX] = 0x10;
    cpu.gpr[RAX] = 0x5A;
    place(&cpu, &mut mem, &[0x88, 0x07]); // mov [bx], al
    let mut emu = Emulator::new();
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert_eq!(
        o,
        Outcome::Mmio(MmioRequest {
            gpa: MMIO + 0x10,
            len: 1,
            is_write: true,
            data: [0x5A, 0, 0, 0, 0, 0, 0, 0]
        })
    );
    // The instruction already retired.
    assert_eq!(cpu.rip, 0x102);
    assert!(emu.is_pending());
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Completed);
    assert!(!emu.is_pending());
}

#[test]
fn mmio_read_resumes_with_supplied_data() {
    let (mut cpu, mut mem) = real_env();
    cpu.seg[SegReg::Ds as usize] = common::real_seg((MMIO >> 4) as u16, false);
    cpu.gpr[RBX] = 0x20;
    cpu.gpr[RAX] = 0xFFFF_FFFF;
    place(&cpu, &mut mem, &[0x66, 0x8B, 0x07]); // mov eax, [bx]
    let mut emu = Emulator::new();
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert_eq!(
        o,
        Outcome::Mmio(MmioRequest {
            gpa: MMIO + 0x20,
            len: 4,
            is_write: false,
            data: [0; 8]
        })
    );
    assert_eq!(
        cpu.rip, 0x100,
        "nothing committed before the read completes"
    );
    emu.complete_mmio_read(&[1, 2, 3, 4]);
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Completed);
    assert_eq!(cpu.gpr[RAX], 0x0403_0201);
    assert_eq!(cpu.rip, 0x103);
}

#[test]
fn mmio_read_modify_write() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    dev.mem.insert(MMIO + 8, 0x0F);
    for i in 1..4 {
        dev.mem.insert(MMIO + 8 + i, 0);
    }
    cpu.gpr[RBX] = MMIO;
    // lock or dword [rbx+8], 0x30
    let o = run_dev(
        &mut cpu,
        &mut mem,
        &mut dev,
        &[0xF0, 0x83, 0x4B, 0x08, 0x30],
    );
    assert_eq!(o, Outcome::Completed);
    assert_eq!(dev.reads, vec![(MMIO + 8, 4)]);
    assert_eq!(dev.writes, vec![(MMIO + 8, vec![0x3F, 0, 0, 0])]);
}

#[test]
fn long_mode_rep_movsb_into_mmio_exits_per_element() {
    let (mut cpu, mut mem) = long_env();
    mem.poke(0x5000, b"hello");
    cpu.gpr[RSI] = 0x5000;
    cpu.gpr[RDI] = MMIO + 0x100;
    cpu.gpr[RCX] = 5;
    let mut dev = Dev::default();
    let o = run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0xA4]);
    assert_eq!(o, Outcome::Completed);
    let bytes: Vec<u8> = dev.writes.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(bytes, b"hello");
    assert_eq!(dev.writes.len(), 5);
    assert_eq!(dev.writes[4].0, MMIO + 0x104);
    assert_eq!(
        (cpu.gpr[RCX], cpu.gpr[RSI], cpu.gpr[RDI]),
        (0, 0x5005, MMIO + 0x105)
    );
    assert_eq!(cpu.rip, 0x1002);
}

#[test]
fn rep_movsd_from_mmio_backwards() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.gpr[RSI] = MMIO + 0x40;
    cpu.gpr[RDI] = 0x6000;
    cpu.gpr[RCX] = 3;
    cpu.rflags |= X86_EFLAGS_DF;
    let o = run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0xA5]);
    assert_eq!(o, Outcome::Completed);
    assert_eq!(
        dev.reads,
        vec![(MMIO + 0x40, 4), (MMIO + 0x3C, 4), (MMIO + 0x38, 4)]
    );
    assert_eq!(cpu.gpr[RSI], MMIO + 0x34);
    assert_eq!(cpu.gpr[RDI], 0x6000 - 12);
    let want: Vec<u8> = (0..4u64)
        .map(|i| ((MMIO + 0x38 + i) as u8) ^ 0xA5)
        .collect();
    assert_eq!(mem.peek(0x6000 - 8, 4), want);
}

#[test]
fn sse_stores_and_loads_to_mmio() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.xmm[1] = 0x0F0E_0D0C_0B0A_0908_0706_0504_0302_0100;
    cpu.gpr[RDI] = MMIO + 0x200;
    // movdqu [rdi], xmm1 : split into two 8-byte MMIO writes
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x0F, 0x7F, 0x0F]),
        Outcome::Completed
    );
    assert_eq!(dev.writes.len(), 2);
    assert_eq!(dev.writes[0], (MMIO + 0x200, (0..8).collect()));
    assert_eq!(dev.writes[1], (MMIO + 0x208, (8..16).collect()));
    // movups xmm2, [rdi]
    cpu.rip = 0x1000;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x0F, 0x10, 0x17]),
        Outcome::Completed
    );
    assert_eq!(cpu.xmm[2], cpu.xmm[1]);
    // movaps [rdi+8], xmm1: misaligned -> #GP(0)
    cpu.rip = 0x1000;
    assert_eq!(
        exc(run_dev(
            &mut cpu,
            &mut mem,
            &mut dev,
            &[0x0F, 0x29, 0x4F, 0x08]
        )),
        Exception::gp(0)
    );
    // MOVD/MOVQ (66 0F 6E/7E, F3 0F 7E, 66 0F D6) and MOVSS/MOVSD
    // (F3/F2 0F 10/11) are N in upstream's tables: unhandleable, nothing
    // written, RIP unchanged.
    dev.writes.clear();
    let xmm1 = cpu.xmm[1];
    let nreads = dev.reads.len();
    for code in [
        &[0x66, 0x0F, 0x7E, 0x0F][..],
        &[0x66, 0x48, 0x0F, 0x7E, 0x0F],
        &[0x66, 0x0F, 0x6E, 0x0F],
        &[0xF3, 0x0F, 0x7E, 0x0F],
        &[0x66, 0x0F, 0xD6, 0x0F],
        &[0xF3, 0x0F, 0x10, 0x0F],
        &[0xF3, 0x0F, 0x11, 0x0F],
        &[0xF2, 0x0F, 0x10, 0x0F],
        &[0xF2, 0x0F, 0x11, 0x0F],
        &[0xF3, 0x0F, 0x10, 0xCB],
    ] {
        cpu.rip = 0x1000;
        match run_dev(&mut cpu, &mut mem, &mut dev, code) {
            Outcome::Unhandleable { bytes, len } => {
                assert!(usize::from(len) >= code.len(), "{code:02x?}");
                assert_eq!(&bytes[..code.len()], code);
            }
            o => panic!("{code:02x?}: {o:?}"),
        }
        assert_eq!(cpu.rip, 0x1000);
    }
    assert!(dev.writes.is_empty());
    assert_eq!(dev.reads.len(), nreads);
    assert_eq!(cpu.xmm[1], xmm1);
    // movnti [rdi], rax
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0x1122_3344_5566_7788;
    dev.writes.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x48, 0x0F, 0xC3, 0x07]),
        Outcome::Completed
    );
    assert_eq!(
        dev.writes[0].1,
        0x1122_3344_5566_7788u64.to_le_bytes().to_vec()
    );
}

#[test]
fn movq_xmm_to_m64_is_unhandleable() {
    // 66 0F D6 (MOVQ xmm/m64, xmm) is N in upstream's twobyte_table: an
    // MMIO store by it is an emulation failure, with the bytes fetched.
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.gpr[RBX] = MMIO;
    cpu.xmm[0] = 0x1122_3344_5566_7788;
    let code = [0x66, 0x0F, 0xD6, 0x83, 0x70, 0x01, 0x00, 0x00]; // movq %xmm0, 0x170(%rbx)
    match run_dev(&mut cpu, &mut mem, &mut dev, &code) {
        Outcome::Unhandleable { bytes, len } => {
            assert!(usize::from(len) >= code.len());
            assert_eq!(bytes[..code.len()], code);
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(dev.exits, 0);
    assert_eq!(cpu.rip, 0x1000);
}

#[test]
fn sse_feature_checks() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RDI] = 0x3000;
    cpu.cr0 |= X86_CR0_TS;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x11, 0x07])).vector,
        NM_VECTOR
    );
    cpu.cr0 &= !X86_CR0_TS;
    cpu.cr4 &= !X86_CR4_OSFXSR;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x11, 0x07])).vector,
        UD_VECTOR
    );
}

#[test]
fn mmio_access_crossing_pages_is_split() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.gpr[RDI] = MMIO + PAGE - 2;
    cpu.gpr[RAX] = 0x4433_2211;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x89, 0x07]),
        Outcome::Completed
    );
    assert_eq!(
        dev.writes,
        vec![
            (MMIO + PAGE - 2, vec![0x11, 0x22]),
            (MMIO + PAGE, vec![0x33, 0x44])
        ]
    );
}

// ----- port I/O -----

#[test]
fn out_and_in_single() {
    let (mut cpu, mut mem) = real_env();
    let mut dev = Dev::default();
    cpu.gpr[RAX] = 0xABCD;
    cpu.gpr[RDX] = 0x3F8;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xEE]),
        Outcome::Completed
    ); // out dx, al
    assert_eq!(dev.outs, vec![(0x3F8, 1, vec![0xCD])]);
    cpu.rip = 0x100;
    place(&cpu, &mut mem, &[0xE5, 0x60]); // in ax, 0x60
    let mut emu = Emulator::new();
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert_eq!(
        o,
        Outcome::Pio(PioRequest {
            port: 0x60,
            size: 2,
            count: 1,
            is_in: true
        })
    );
    assert_eq!(cpu.rip, 0x100);
    emu.complete_pio_in(&[0x34, 0x12]);
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Completed);
    assert_eq!(cpu.gpr[RAX], 0x1234);
    assert_eq!(cpu.rip, 0x102);
}

/// The counts of the port requests `dev` saw, and whether each was IN.
fn pio_counts(dev: &Dev) -> Vec<(bool, u32)> {
    dev.pios.iter().map(|p| (p.is_in, p.count)).collect()
}

/// The `size` bytes `drive` supplies for element `k` of an IN batch.
fn in_elem(dev: &Dev, k: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|j| dev.in_byte.wrapping_add((k * size + j) as u8))
        .collect()
}

#[test]
fn rep_outs_is_one_element_per_request() {
    // As upstream's em_out (pio_out_emulated with count 1).
    let (mut cpu, mut mem) = long_env();
    let data: Vec<u8> = (0..100u8).collect();
    mem.poke(0x7000, &data);
    cpu.gpr[RSI] = 0x7000;
    cpu.gpr[RCX] = 100;
    cpu.gpr[RDX] = 0xE9;
    let mut dev = Dev::default();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6E]),
        Outcome::Completed
    ); // rep outsb
    assert_eq!(dev.pios.len(), 100);
    assert!(dev
        .pios
        .iter()
        .all(|p| !p.is_in && p.count == 1 && p.size == 1));
    let sent: Vec<u8> = dev.outs.iter().flat_map(|o| o.2.clone()).collect();
    assert_eq!(sent, data);
    assert_eq!(cpu.gpr[RCX], 0);
    assert_eq!(cpu.gpr[RSI], 0x7000 + 100);
    assert_eq!(cpu.rip, 0x1002);
    // rep outsd with DF=1: elements downwards, still one per request.
    cpu.rip = 0x1000;
    cpu.rflags |= X86_EFLAGS_DF;
    cpu.gpr[RSI] = 0x7000 + 96;
    cpu.gpr[RCX] = 25;
    dev = Dev::default();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6F]),
        Outcome::Completed
    );
    assert_eq!(dev.pios.len(), 25);
    assert!(dev.pios.iter().all(|p| p.count == 1 && p.size == 4));
    assert_eq!(dev.outs[0].2, vec![96, 97, 98, 99]);
    assert_eq!(dev.outs[24].2, vec![0, 1, 2, 3]);
    assert_eq!(cpu.gpr[RSI], 0x7000 - 4);
    // outsw without REP: one element, RCX untouched.
    cpu.rip = 0x1000;
    cpu.rflags &= !X86_EFLAGS_DF;
    cpu.gpr[RSI] = 0x7000;
    cpu.gpr[RCX] = 77;
    dev = Dev::default();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x66, 0x6F]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(false, 1)]);
    assert_eq!(dev.outs[0].2, vec![0, 1]);
    assert_eq!(cpu.gpr[RCX], 77);
}

#[test]
fn rep_outs_returns_to_the_guest_every_1024_elements() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RSI] = 0x7000;
    cpu.gpr[RCX] = 1030;
    cpu.gpr[RDX] = 0xE9;
    place(&cpu, &mut mem, &[0xF3, 0x6E]);
    let mut emu = Emulator::new();
    let mut outs = 0;
    let mut continues = vec![];
    loop {
        match emu.emulate(&mut cpu, &mut mem, &[]) {
            Outcome::Pio(p) => {
                assert_eq!(p.count, 1);
                outs += 1;
            }
            Outcome::Continue => {
                assert!(!emu.is_pending());
                continues.push(cpu.gpr[RCX]);
            }
            Outcome::Completed => break,
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(outs, 1030);
    // RCX & 0x3ff == 0 after an element: the guest runs (upstream).
    assert_eq!(continues, vec![1024]);
    // After an OUT that went to userspace, the guest re-executes the
    // instruction instead of the emulator going on (as upstream).
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 3;
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert!(matches!(o, Outcome::Pio(p) if p.count == 1));
    emu.yield_after_output();
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Continue);
    assert!(!emu.is_pending());
    assert_eq!((cpu.gpr[RCX], cpu.rip), (2, 0x1000));
    // The last element retires the instruction either way.
    cpu.gpr[RCX] = 1;
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert!(matches!(o, Outcome::Pio(p) if p.count == 1));
    emu.yield_after_output();
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x1002);
}

#[test]
fn rep_ins_reads_ahead_to_the_page_boundary_in_bytes() {
    // n = min(in_page, 1024 / size, RCX) with in_page in *bytes*: 20 bytes
    // to the page end give 20 words, a batch that crosses the page.
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev {
        in_byte: 0x10,
        ..Dev::default()
    };
    cpu.gpr[RDX] = 0x1F0;
    cpu.gpr[RDI] = 0x8000 - 20;
    cpu.gpr[RCX] = 50;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x66, 0x6D]),
        Outcome::Completed
    ); // rep insw
    assert_eq!(pio_counts(&dev), vec![(true, 20), (true, 30)]);
    assert_eq!(cpu.gpr[RDI], 0x8000 - 20 + 100);
    assert_eq!(cpu.gpr[RCX], 0);
    assert_eq!(mem.peek(0x8000 - 20, 2), in_elem(&dev, 0, 2));
    assert_eq!(mem.peek(0x8000 + 18, 2), in_elem(&dev, 19, 2));
    assert_eq!(mem.peek(0x8000 + 20, 2), in_elem(&dev, 0, 2));
    // At most 1024 bytes per batch; the page-aligned start gives full
    // batches, the rest of RCX the last one.
    cpu.rip = 0x1000;
    cpu.gpr[RDI] = 0x9000;
    cpu.gpr[RCX] = 3000;
    dev.pios.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    ); // rep insb
    assert_eq!(
        pio_counts(&dev),
        vec![(true, 1024), (true, 1024), (true, 952)]
    );
    assert_eq!(cpu.gpr[RDI], 0x9000 + 3000);
    cpu.rip = 0x1000;
    cpu.gpr[RDI] = 0x9000;
    cpu.gpr[RCX] = 300;
    dev.pios.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6D]),
        Outcome::Completed
    ); // rep insd
    assert_eq!(pio_counts(&dev), vec![(true, 256), (true, 44)]);
    assert_eq!(mem.peek(0x9000 + 4 * 255, 4), in_elem(&dev, 255, 4));
    assert_eq!(mem.peek(0x9000 + 4 * 256, 4), in_elem(&dev, 0, 4));
}

#[test]
fn rep_ins_batch_smaller_than_rcx_limits() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev::default();
    cpu.gpr[RDX] = 0x1F0;
    // RCX below the page and buffer limits: one batch of RCX.
    cpu.gpr[RDI] = 0x9000;
    cpu.gpr[RCX] = 7;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 7)]);
    assert_eq!(mem.peek(0x9000, 7), in_elem(&dev, 0, 7));
    // RCX = 0: nothing.
    cpu.rip = 0x1000;
    dev.pios.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert!(dev.pios.is_empty());
    // Without REP: one element whatever RCX says.
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 500;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x6D]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 1)]);
    assert_eq!(cpu.gpr[RCX], 500);
    assert_eq!(cpu.gpr[RDI], 0x9007 + 4);
    // Upstream's count is RCX truncated to 32 bits: 0x1_0000_0003 reads
    // ahead 3, then 0x1_0000_0000 counts 0, which becomes 1.
    cpu.rip = 0x1000;
    cpu.gpr[RDI] = 0x9000;
    cpu.gpr[RCX] = 0x1_0000_0003;
    place(&cpu, &mut mem, &[0xF3, 0x6C]);
    let mut emu = Emulator::new();
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert!(
        matches!(o, Outcome::Pio(p) if p.is_in && p.count == 3),
        "{o:?}"
    );
    emu.complete_pio_in(&[1, 2, 3]);
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Continue);
    assert_eq!(cpu.gpr[RCX], 0x1_0000_0000);
    let o = emu.emulate(&mut cpu, &mut mem, &[]);
    assert!(
        matches!(o, Outcome::Pio(p) if p.is_in && p.count == 1),
        "{o:?}"
    );
}

#[test]
fn rep_ins_backwards_reads_ahead_to_the_page_start() {
    // DF=1: in_page = offset_in_page(RDI) bytes; the elements go down
    // from RDI, so 16 bytes give 16 words, 32 bytes reaching into the
    // previous page.
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev {
        in_byte: 0x40,
        ..Dev::default()
    };
    cpu.rflags |= X86_EFLAGS_DF;
    cpu.gpr[RDX] = 0x1F0;
    cpu.gpr[RDI] = 0x9010;
    cpu.gpr[RCX] = 100;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x66, 0x6D]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 16), (true, 84)]);
    assert_eq!(cpu.gpr[RDI], 0x9010 - 200);
    // Element k of a batch at RDI - 2k.
    assert_eq!(mem.peek(0x9010, 2), in_elem(&dev, 0, 2));
    assert_eq!(mem.peek(0x9010 - 2, 2), in_elem(&dev, 1, 2));
    assert_eq!(mem.peek(0x9010 - 30, 2), in_elem(&dev, 15, 2));
    assert_eq!(mem.peek(0x9010 - 32, 2), in_elem(&dev, 0, 2));
    assert_eq!(mem.peek(0x9010 - 198, 2), in_elem(&dev, 83, 2));
    // RDI at a page start: in_page 0, so one element, then the rest of
    // the previous page.
    cpu.rip = 0x1000;
    cpu.gpr[RDI] = 0x9000;
    cpu.gpr[RCX] = 5;
    dev.pios.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 1), (true, 4)]);
    assert_eq!(mem.peek(0x8FFC, 5), vec![0x43, 0x42, 0x41, 0x40, 0x40]);
    assert_eq!(cpu.gpr[RDI], 0x9000 - 5);
}

#[test]
fn rep_ins_page_limit_comes_from_rdi_not_the_linear_address() {
    // Real mode, ES base 0x1230: RDI 0x0FF0 is 16 bytes before the end of
    // its page (the linear address 0x2220 is not): 16 bytes per batch.
    let (mut cpu, mut mem) = real_env();
    cpu.seg[SegReg::Es as usize] = common::real_seg(0x123, false);
    cpu.gpr[RDX] = 0x1F0;
    cpu.gpr[RDI] = 0x0FF0;
    cpu.gpr[RCX] = 100;
    let mut dev = Dev::default();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 16), (true, 84)]);
    assert_eq!(mem.peek(0x1230 + 0x0FF0, 16), in_elem(&dev, 0, 16));
    assert_eq!(cpu.gpr[RDI], 0x0FF0 + 100);
    // 16-bit DF=1 below offset 0: RDI 2, dwords: in_page 2 gives 2
    // elements, the second at 0xFFFE past the 64 KiB limit: #GP before
    // any I/O, as the CPU faults on that element.
    cpu.rip = 0x100;
    cpu.seg[SegReg::Es as usize] = common::real_seg(0x1000, false);
    cpu.rflags |= X86_EFLAGS_DF;
    cpu.gpr[RDI] = 2;
    cpu.gpr[RCX] = 10;
    dev.pios.clear();
    assert_eq!(
        exc(run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x66, 0x6D])),
        Exception::gp(0)
    );
    assert!(dev.pios.is_empty());
    assert_eq!((cpu.gpr[RDI], cpu.gpr[RCX]), (2, 10));
    // Bytes: in_page is 1, then 0 (at least one element), then RDI has
    // wrapped to 0xFFFF (min with RCX): one element per batch.
    cpu.rip = 0x100;
    cpu.gpr[RDI] = 1;
    cpu.gpr[RCX] = 3;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 1), (true, 1), (true, 1)]);
    assert_eq!(cpu.gpr[RDI] & 0xFFFF, 0xFFFE);
}

#[test]
fn rep_ins_faults_before_the_io() {
    // The batch crosses into an unmapped page: #PF on it before any port
    // access (upstream does the I/O first and loses the data).
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RDX] = 0x1F0;
    cpu.gpr[RDI] = 0x2_0000 - 4;
    cpu.gpr[RCX] = 10;
    let mut dev = Dev::default();
    let e = exc(run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6D]));
    assert_eq!(e.vector, PF_VECTOR);
    assert_eq!(e.cr2, 0x2_0000);
    assert_ne!(e.error_code.unwrap() & PFERR_WRITE_MASK, 0);
    assert!(dev.pios.is_empty());
    assert_eq!((cpu.gpr[RDI], cpu.gpr[RCX]), (0x2_0000 - 4, 10));
}

#[test]
fn rep_ins_to_mmio() {
    let (mut cpu, mut mem) = long_env();
    let mut dev = Dev {
        in_byte: 0x80,
        ..Dev::default()
    };
    cpu.gpr[RDX] = 0x1F0;
    // A whole 1 KiB batch into MMIO: 128 writes of 8 bytes, in order.
    cpu.gpr[RDI] = MMIO + 0x800;
    cpu.gpr[RCX] = 1024;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 1024)]);
    assert_eq!(dev.writes.len(), 128);
    for (k, w) in dev.writes.iter().enumerate() {
        assert_eq!(w.0, MMIO + 0x800 + 8 * k as u64);
        assert_eq!(w.1, in_elem(&dev, k, 8));
    }
    // Backwards: the elements descend from RDI, the writes ascend.
    cpu.rip = 0x1000;
    cpu.rflags |= X86_EFLAGS_DF;
    cpu.gpr[RDI] = MMIO + 0x20;
    cpu.gpr[RCX] = 10;
    dev.writes.clear();
    dev.pios.clear();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xF3, 0x6C]),
        Outcome::Completed
    );
    assert_eq!(pio_counts(&dev), vec![(true, 10)]);
    let image: Vec<u8> = (0..10u8).rev().map(|k| 0x80 + k).collect();
    assert_eq!(
        dev.writes,
        vec![
            (MMIO + 0x17, image[..8].to_vec()),
            (MMIO + 0x1F, image[8..].to_vec())
        ]
    );
}

#[test]
fn io_permission_bitmap() {
    let (mut cpu, mut mem) = prot_env();
    cpu.cpl = 3;
    for s in [SegReg::Cs, SegReg::Ss, SegReg::Ds, SegReg::Es] {
        let sg = cpu.seg_mut(s);
        sg.dpl = 3;
        sg.selector |= 3;
    }
    // TSS at 0x9000, limit 0x2067, I/O map at +0x68, port 0x80 allowed.
    cpu.seg[SegReg::Tr as usize] = Segment {
        base: 0x9000,
        limit: 0x68 + 0x2000,
        type_: 11,
        present: true,
        ..Segment::default()
    };
    mem.poke(0x9066, &0x68u16.to_le_bytes());
    mem.poke(0x9068, &[0xFF; 0x2000]);
    mem.poke(0x9068 + 0x80 / 8, &[0xFE]);
    cpu.gpr[RDX] = 0x80;
    let mut dev = Dev::default();
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0xEE]),
        Outcome::Completed
    );
    cpu.rip = 0x1000;
    assert_eq!(
        exc(run_dev(&mut cpu, &mut mem, &mut dev, &[0x66, 0xEF])),
        Exception::gp(0)
    ); // 0x80-0x81: 0x81 denied
    cpu.rflags |= 3 << X86_EFLAGS_IOPL_BIT;
    cpu.rip = 0x1000;
    assert_eq!(
        run_dev(&mut cpu, &mut mem, &mut dev, &[0x66, 0xEF]),
        Outcome::Completed
    );
}

// ----- ALU / data movement / flags in 16- and 32-bit modes -----

#[test]
fn alu_16bit_real_mode() {
    let (mut cpu, mut mem) = real_env();
    cpu.gpr[RAX] = 0x1234_FFFF;
    cpu.gpr[RBX] = 1;
    assert_eq!(run(&mut cpu, &mut mem, &[0x01, 0xD8]), Outcome::Completed); // add ax, bx
    assert_eq!(cpu.gpr[RAX], 0x1234_0000);
    assert_ne!(cpu.rflags & X86_EFLAGS_CF, 0);
    assert_ne!(cpu.rflags & X86_EFLAGS_ZF, 0);
    assert_ne!(cpu.rflags & X86_EFLAGS_AF, 0);
    // sbb ax, 0 -> 0xFFFF with CF
    cpu.rip = 0x100;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x83, 0xD8, 0x00]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX] & 0xFFFF, 0xFFFF);
    // 16-bit addressing: mov [bp+si+4], ax uses SS
    cpu.rip = 0x100;
    cpu.seg[SegReg::Ss as usize] = common::real_seg(0x100, false);
    cpu.gpr[RBP] = 0x10;
    cpu.gpr[RSI] = 0x20;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x89, 0x42, 0x04]),
        Outcome::Completed
    );
    assert_eq!(mem.peek(0x1000 + 0x34, 2), vec![0xFF, 0xFF]);
    // moffs with ES override: mov al, es:[0x1234]
    cpu.rip = 0x100;
    cpu.seg[SegReg::Es as usize] = common::real_seg(0x200, false);
    mem.poke(0x2000 + 0x1234, &[0x77]);
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x26, 0xA0, 0x34, 0x12]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX] & 0xFF, 0x77);
    // xlat
    cpu.rip = 0x100;
    cpu.gpr[RBX] = 0x3000;
    cpu.gpr[RAX] = 5;
    mem.poke(0x3005, &[0x99]);
    assert_eq!(run(&mut cpu, &mut mem, &[0xD7]), Outcome::Completed);
    assert_eq!(cpu.gpr[RAX] & 0xFF, 0x99);
    // cbw / cwd
    cpu.rip = 0x100;
    cpu.gpr[RAX] = 0x80;
    assert_eq!(run(&mut cpu, &mut mem, &[0x98, 0x99]), Outcome::Completed);
    cpu.rip = 0x101;
    assert_eq!(run(&mut cpu, &mut mem, &[0x99]), Outcome::Completed);
    assert_eq!(
        (cpu.gpr[RAX] & 0xFFFF, cpu.gpr[RDX] & 0xFFFF),
        (0xFF80, 0xFFFF)
    );
}

#[test]
fn segment_limit_in_real_mode_and_big_real_mode() {
    let (mut cpu, mut mem) = real_env();
    cpu.gpr[RBX] = 0xFFFF;
    // mov ax, [bx]: crosses the 64 KiB limit -> #GP(0)
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8B, 0x07])),
        Exception::gp(0)
    );
    // ... #SS(0) through SS.
    cpu.rip = 0x100;
    cpu.gpr[RBP] = 0xFFFF;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8B, 0x46, 0x00])),
        Exception::ss(0)
    );
    // Unreal mode: DS limit 4 GiB, 32-bit addressing.
    cpu.rip = 0x100;
    cpu.seg[SegReg::Ds as usize].limit = 0xFFFF_FFFF;
    cpu.gpr[RBX] = 0x1_2000;
    mem.poke(0x1_2000, &[0x11, 0x22]);
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x67, 0x8B, 0x03]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX] & 0xFFFF, 0x2211);
}

#[test]
fn protected_mode_segment_checks() {
    let (mut cpu, mut mem) = prot_env();
    // Read-only data segment in DS: write -> #GP(0)
    cpu.seg_mut(SegReg::Ds).type_ = 1;
    cpu.gpr[RBX] = 0x4000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x89, 0x03])),
        Exception::gp(0)
    );
    // Expand-down SS with limit 0x1000: access at 0x800 -> #SS(0)
    cpu.rip = 0x1000;
    cpu.seg_mut(SegReg::Ds).type_ = 3;
    *cpu.seg_mut(SegReg::Ss) = Segment {
        type_: 7,
        limit: 0x1000,
        db: true,
        ..flat_seg(0x10, false, false, 0)
    };
    cpu.gpr[RSP] = 0x802;
    assert_eq!(exc(run(&mut cpu, &mut mem, &[0x50])), Exception::ss(0)); // push eax
    cpu.rip = 0x1000;
    cpu.gpr[RSP] = 0x2000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x50]), Outcome::Completed);
    // Null (unusable) ES: stos -> #GP(0)
    cpu.rip = 0x1000;
    cpu.seg_mut(SegReg::Es).unusable = true;
    assert_eq!(exc(run(&mut cpu, &mut mem, &[0xAA])), Exception::gp(0));
}

#[test]
fn noncanonical_addresses_fault() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RBX] = 0x8000_0000_0000_0000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8B, 0x03])),
        Exception::gp(0)
    );
    cpu.rip = 0x1000;
    cpu.gpr[RBP] = 0x0000_8000_0000_0000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8B, 0x45, 0x00])),
        Exception::ss(0)
    );
    // FS base is applied in 64-bit mode; DS base is not.
    cpu.rip = 0x1000;
    cpu.seg_mut(SegReg::Fs).base = 0x3000;
    cpu.seg_mut(SegReg::Ds).base = 0x7777_0000;
    cpu.gpr[RBX] = 0x10;
    mem.poke(0x3010, &[0x42]);
    mem.poke(0x10, &[0x24]);
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x64, 0x8A, 0x03]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX] & 0xFF, 0x42);
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x8A, 0x03]), Outcome::Completed);
    assert_eq!(cpu.gpr[RAX] & 0xFF, 0x24);
}

/// Every implicit or SS-based stack access at a non-canonical address is
/// #SS(0), not #GP(0) (upstream __linearize()'s `addr.seg == SS` case);
/// an FS override is #GP(0).
#[test]
fn noncanonical_stack_accesses_are_ss() {
    const NONCANON: u64 = 0x0000_8000_0000_0010;
    let cases: &[(&str, &[u8])] = &[
        ("push rax", &[0x50]),
        ("pop rax", &[0x58]),
        ("call rel32", &[0xE8, 0, 0, 0, 0]),
        ("ret", &[0xC3]),
        ("pushfq", &[0x9C]),
        ("popfq", &[0x9D]),
        ("push qword [rbx]", &[0xFF, 0x33]),
        ("mov rax, [rsp]", &[0x48, 0x8B, 0x04, 0x24]),
        ("mov [rsp+8], rax", &[0x48, 0x89, 0x44, 0x24, 0x08]),
        ("enter 16, 0", &[0xC8, 0x10, 0x00, 0x00]),
    ];
    for (what, insn) in cases {
        let (mut cpu, mut mem) = long_env();
        cpu.gpr[RBX] = 0x2000;
        cpu.gpr[RSP] = NONCANON;
        assert_eq!(
            exc(run(&mut cpu, &mut mem, insn)),
            Exception::ss(0),
            "{what} with RSP {NONCANON:#x}"
        );
        assert_eq!(cpu.rip, 0x1000, "{what}: RIP must not move");
        assert_eq!(cpu.gpr[RSP], NONCANON, "{what}: RSP must not move");
    }
    // leave: RSP := RBP first, then the pop faults through SS.
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RBP] = NONCANON;
    assert_eq!(exc(run(&mut cpu, &mut mem, &[0xC9])), Exception::ss(0));
    // [rbp] is SS-based too.
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RBP] = NONCANON;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x48, 0x8B, 0x45, 0x00])),
        Exception::ss(0)
    );
    // An FS override on RSP is #GP (the FS base is added first).
    cpu.rip = 0x1000;
    cpu.gpr[RSP] = NONCANON;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x64, 0x48, 0x8B, 0x04, 0x24])),
        Exception::gp(0)
    );
}

#[test]
fn rip_relative_and_32bit_zero_extension() {
    let (mut cpu, mut mem) = long_env();
    mem.poke(0x1000 + 6 + 0x100, &0xFFFF_FFFF_8000_0001u64.to_le_bytes());
    cpu.gpr[RAX] = u64::MAX;
    // mov eax, [rip+0x100]
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x8B, 0x05, 0x00, 0x01, 0x00, 0x00]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX], 0x8000_0001);
    // movsxd rax, dword [rip+0xFA] (same location)
    cpu.rip = 0x1000;
    assert_eq!(
        run(
            &mut cpu,
            &mut mem,
            &[0x48, 0x63, 0x05, 0xFF, 0x00, 0x00, 0x00]
        ),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX], 0xFFFF_FFFF_8000_0001);
}

#[test]
fn div_faults() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RCX] = 0;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0xF7, 0xF1])).vector,
        DE_VECTOR
    ); // div ecx
    cpu.rip = 0x1000;
    cpu.gpr[RDX] = 0x8000_0000_0000_0000;
    cpu.gpr[RAX] = 0;
    cpu.gpr[RCX] = u64::MAX;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x48, 0xF7, 0xF9])).vector,
        DE_VECTOR
    ); // idiv rcx
    cpu.rip = 0x1000;
    cpu.gpr[RDX] = u64::MAX;
    cpu.gpr[RAX] = (-7i64) as u64;
    cpu.gpr[RCX] = 2;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x48, 0xF7, 0xF9]),
        Outcome::Completed
    );
    assert_eq!((cpu.gpr[RAX] as i64, cpu.gpr[RDX] as i64), (-3, -1));
    assert_eq!(cpu.rip, 0x1003);
}

#[test]
fn lock_rules() {
    let (mut cpu, mut mem) = long_env();
    // lock add eax, ebx -> #UD
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0xF0, 0x01, 0xD8])).vector,
        UD_VECTOR
    );
    // lock mov [rbx], eax -> #UD
    cpu.rip = 0x1000;
    cpu.gpr[RBX] = 0x3000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0xF0, 0x89, 0x03])).vector,
        UD_VECTOR
    );
    // A lost cmpxchg race returns Continue and leaves state untouched.
    cpu.rip = 0x1000;
    mem.fail_cmpxchg = true;
    place(&cpu, &mut mem, &[0xF0, 0x01, 0x03]);
    let before = (cpu.gpr, cpu.rflags);
    let mut emu = Emulator::new();
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Continue);
    assert_eq!((cpu.gpr, cpu.rflags, cpu.rip), (before.0, before.1, 0x1000));
    mem.fail_cmpxchg = false;
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[]), Outcome::Completed);
}

#[test]
fn rep_is_bounded_and_resumable() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RDI] = 0x9000;
    cpu.gpr[RCX] = 1000;
    cpu.gpr[RAX] = 0x5A;
    place(&cpu, &mut mem, &[0xF3, 0xAA]);
    let mut emu = Emulator::new();
    let mut calls = 0;
    loop {
        calls += 1;
        match emu.emulate(&mut cpu, &mut mem, &[]) {
            Outcome::Continue => {
                assert_eq!(cpu.rip, 0x1000);
                assert!(!emu.is_pending());
            }
            Outcome::Completed => break,
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(calls as u64, 1000u64.div_ceil(REP_BUDGET));
    assert_eq!(cpu.gpr[RCX], 0);
    assert_eq!(mem.peek(0x9000, 1000), vec![0x5A; 1000]);
    assert_eq!(cpu.rip, 0x1002);
    // repe cmpsb stops at the first difference.
    cpu.rip = 0x1000;
    mem.poke(0xA000, b"abcdef");
    mem.poke(0xB000, b"abcxef");
    cpu.gpr[RSI] = 0xA000;
    cpu.gpr[RDI] = 0xB000;
    cpu.gpr[RCX] = 6;
    assert_eq!(run(&mut cpu, &mut mem, &[0xF3, 0xA6]), Outcome::Completed);
    assert_eq!(cpu.gpr[RCX], 2);
    assert_eq!(cpu.rflags & X86_EFLAGS_ZF, 0);
    // repne scasb finds a byte
    cpu.rip = 0x1000;
    cpu.gpr[RDI] = 0xA000;
    cpu.gpr[RCX] = 100;
    cpu.gpr[RAX] = u64::from(b'd');
    assert_eq!(run(&mut cpu, &mut mem, &[0xF2, 0xAE]), Outcome::Completed);
    assert_eq!(cpu.gpr[RDI], 0xA004);
    // rep with rcx = 0 does nothing
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 0;
    assert_eq!(run(&mut cpu, &mut mem, &[0xF3, 0xA4]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x1002);
}

// ----- stack and control flow -----

#[test]
fn stack_ops_16_and_32() {
    let (mut cpu, mut mem) = real_env();
    cpu.gpr[RAX] = 0x1111;
    cpu.gpr[RCX] = 0x2222;
    cpu.gpr[RSP] = 0x1000;
    cpu.seg[SegReg::Es as usize] = common::real_seg(0x1234, false);
    // pusha; push es; pop ds; popa
    assert_eq!(run(&mut cpu, &mut mem, &[0x60]), Outcome::Completed);
    assert_eq!(cpu.gpr[RSP], 0x1000 - 16);
    assert_eq!(mem.peek(0x1000 - 2, 2), vec![0x11, 0x11]); // AX pushed first
    assert_eq!(mem.peek(0x1000 - 10, 2), vec![0x00, 0x10]); // original SP
    cpu.rip = 0x100;
    assert_eq!(run(&mut cpu, &mut mem, &[0x06]), Outcome::Completed);
    cpu.rip = 0x100;
    assert_eq!(run(&mut cpu, &mut mem, &[0x1F]), Outcome::Completed);
    assert_eq!(cpu.seg[SegReg::Ds as usize].base, 0x12340);
    cpu.gpr[RAX] = 0;
    cpu.gpr[RCX] = 0;
    cpu.rip = 0x100;
    assert_eq!(run(&mut cpu, &mut mem, &[0x61]), Outcome::Completed);
    assert_eq!(
        (cpu.gpr[RAX], cpu.gpr[RCX], cpu.gpr[RSP]),
        (0x1111, 0x2222, 0x1000)
    );
    // pushf/popf keep reserved bits, IOPL changes in real mode
    cpu.rip = 0x100;
    cpu.rflags = X86_EFLAGS_FIXED | X86_EFLAGS_CF;
    assert_eq!(run(&mut cpu, &mut mem, &[0x9C]), Outcome::Completed);
    mem.poke(0x1000 - 2, &[0xD5, 0x32]); // IOPL=3, IF, arith flags
    cpu.rip = 0x100;
    assert_eq!(run(&mut cpu, &mut mem, &[0x9D]), Outcome::Completed);
    assert_eq!(cpu.rflags, 0x32D7);
    // pop [esp] form in 32-bit: address computed after the increment
    let (mut cpu, mut mem) = prot_env();
    mem.poke(0x8000, &0xCAFEu32.to_le_bytes());
    // pop dword [esp]
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x8F, 0x04, 0x24]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RSP], 0x8004);
    assert_eq!(mem.peek(0x8004, 4), 0xCAFEu32.to_le_bytes().to_vec());
    // enter 16, 0 ; leave
    cpu.rip = 0x1000;
    cpu.gpr[RBP] = 0x7777;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0xC8, 0x10, 0x00, 0x00]),
        Outcome::Completed
    );
    assert_eq!((cpu.gpr[RBP], cpu.gpr[RSP]), (0x8000, 0x8000 - 0x10));
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0xC9]), Outcome::Completed);
    assert_eq!((cpu.gpr[RBP], cpu.gpr[RSP]), (0x7777, 0x8004));
}

#[test]
fn near_branches() {
    let (mut cpu, mut mem) = long_env();
    // call rel32 ; ret
    assert_eq!(
        run(&mut cpu, &mut mem, &[0xE8, 0x10, 0x00, 0x00, 0x00]),
        Outcome::Completed
    );
    assert_eq!(cpu.rip, 0x1015);
    assert_eq!(cpu.gpr[RSP], 0x8000 - 8);
    assert_eq!(mem.peek_u64(0x8000 - 8), 0x1005);
    assert_eq!(
        run(&mut cpu, &mut mem, &[0xC2, 0x08, 0x00]),
        Outcome::Completed
    ); // ret 8
    assert_eq!((cpu.rip, cpu.gpr[RSP]), (0x1005, 0x8008));
    // jne taken / not taken
    cpu.rip = 0x1000;
    cpu.rflags &= !X86_EFLAGS_ZF;
    assert_eq!(run(&mut cpu, &mut mem, &[0x75, 0xFE]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x1000);
    cpu.rflags |= X86_EFLAGS_ZF;
    assert_eq!(run(&mut cpu, &mut mem, &[0x75, 0xFE]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x1002);
    // loop with rcx=2: taken once then falls through
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 2;
    assert_eq!(run(&mut cpu, &mut mem, &[0xE2, 0xFE]), Outcome::Completed);
    assert_eq!((cpu.rip, cpu.gpr[RCX]), (0x1000, 1));
    assert_eq!(run(&mut cpu, &mut mem, &[0xE2, 0xFE]), Outcome::Completed);
    assert_eq!((cpu.rip, cpu.gpr[RCX]), (0x1002, 0));
    // jrcxz / jecxz (67)
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 0x1_0000_0000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x67, 0xE3, 0x10]),
        Outcome::Completed
    );
    assert_eq!(cpu.rip, 0x1013);
    // jmp [rbx] to a non-canonical target -> #GP
    cpu.rip = 0x1000;
    cpu.gpr[RBX] = 0x3000;
    mem.poke(0x3000, &0x8000_0000_0000_0000u64.to_le_bytes());
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0xFF, 0x23])),
        Exception::gp(0)
    );
    // 16-bit IP wraps in real mode.
    let (mut cpu, mut mem) = real_env();
    cpu.rip = 0xFFFE;
    cpu.seg[SegReg::Cs as usize].limit = 0xFFFF;
    assert_eq!(run(&mut cpu, &mut mem, &[0xEB, 0x10]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x10);
}

#[test]
fn real_mode_far_branches_int_iret() {
    let (mut cpu, mut mem) = real_env();
    cpu.seg[SegReg::Cs as usize] = common::real_seg(0x10, true);
    cpu.rip = 0x0;
    // call far 0x2000:0x0030
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x9A, 0x30, 0x00, 0x00, 0x20]),
        Outcome::Completed
    );
    assert_eq!(
        (cpu.seg[SegReg::Cs as usize].base, cpu.rip),
        (0x20000, 0x30)
    );
    assert_eq!(mem.peek(0x8000 - 4, 4), vec![0x05, 0x00, 0x10, 0x00]);
    // retf
    mem.add_ram(0x20000, 0x1000);
    assert_eq!(run(&mut cpu, &mut mem, &[0xCB]), Outcome::Completed);
    assert_eq!(
        (cpu.seg[SegReg::Cs as usize].selector, cpu.rip, cpu.gpr[RSP]),
        (0x10, 5, 0x8000)
    );
    // int 0x10 through the IVT, then iret
    mem.poke(0x40, &[0x00, 0x05, 0x00, 0x03]); // 0x0300:0x0500
    cpu.rflags = X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_TF | X86_EFLAGS_CF;
    assert_eq!(run(&mut cpu, &mut mem, &[0xCD, 0x10]), Outcome::Completed);
    assert_eq!(
        (cpu.seg[SegReg::Cs as usize].base, cpu.rip),
        (0x3000, 0x500)
    );
    assert_eq!(cpu.rflags & (X86_EFLAGS_IF | X86_EFLAGS_TF), 0);
    assert_eq!(
        mem.peek(0x8000 - 6, 6),
        vec![0x07, 0x00, 0x10, 0x00, 0x03, 0x03]
    );
    assert_eq!(run(&mut cpu, &mut mem, &[0xCF]), Outcome::Completed);
    assert_eq!((cpu.seg[SegReg::Cs as usize].selector, cpu.rip), (0x10, 7));
    assert_eq!(
        cpu.rflags,
        X86_EFLAGS_FIXED | X86_EFLAGS_IF | X86_EFLAGS_TF | X86_EFLAGS_CF
    );
    // int3 and into
    mem.poke(0x0C, &[0x00, 0x06, 0x00, 0x03]);
    assert_eq!(run(&mut cpu, &mut mem, &[0xCC]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x600);
    // protected-mode INT is left to KVM
    let (mut cpu, mut mem) = prot_env();
    assert!(matches!(
        run(&mut cpu, &mut mem, &[0xCD, 0x80]),
        Outcome::Unhandleable { len: 2, .. }
    ));
}

/// Build a GDT at 0x500 with the given descriptors (index 1..).
fn gdt(cpu: &mut TestCpu, mem: &mut TestMem, descs: &[u64]) {
    let mut bytes = vec![0u8; 8];
    for d in descs {
        bytes.extend_from_slice(&d.to_le_bytes());
    }
    mem.poke(0x500, &bytes);
    cpu.gdtr = DescTable {
        base: 0x500,
        limit: (bytes.len() - 1) as u16,
    };
}

const CODE32: u64 = 0x00CF_9A00_0000_FFFF;
const DATA32: u64 = 0x00CF_9200_0000_FFFF;

#[test]
fn protected_mode_segment_loads() {
    let (mut cpu, mut mem) = prot_env();
    // 1: code, 2: data (accessed bit clear), 3: not-present data, 4: code64, 5: read-only data dpl0
    gdt(
        &mut cpu,
        &mut mem,
        &[
            CODE32,
            DATA32,
            DATA32 & !(1 << 47),
            0x00AF_9A00_0000_FFFF,
            0x00CF_9000_1234_FFFF,
        ],
    );
    cpu.gpr[RAX] = 0x10;
    // mov ds, ax
    assert_eq!(run(&mut cpu, &mut mem, &[0x8E, 0xD8]), Outcome::Completed);
    assert_eq!(cpu.seg[SegReg::Ds as usize].selector, 0x10);
    assert_eq!(cpu.seg[SegReg::Ds as usize].limit, 0xFFFF_FFFF);
    assert_eq!(mem.peek(0x500 + 16 + 5, 1), vec![0x93], "accessed bit set");
    // mov ss, ax -> interrupt shadow
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x8E, 0xD0]), Outcome::Completed);
    assert_eq!(cpu.shadow, Some(InterruptShadow::MovSs));
    // not present -> #NP(sel)
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0x18;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8E, 0xD8])),
        Exception::with_code(NP_VECTOR, 0x18)
    );
    // null into SS -> #GP(0); null into ES ok (unusable)
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8E, 0xD0])),
        Exception::gp(0)
    );
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x8E, 0xC0]), Outcome::Completed);
    assert!(cpu.seg[SegReg::Es as usize].unusable);
    // beyond the GDT limit -> #GP(sel)
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0x40;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8E, 0xD8])),
        Exception::gp(0x40)
    );
    // read-only data into SS -> #GP(sel)
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0x28;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8E, 0xD0])),
        Exception::gp(0x28)
    );
    // far jmp 0x08:0x2000
    cpu.rip = 0x1000;
    assert_eq!(
        run(
            &mut cpu,
            &mut mem,
            &[0xEA, 0x00, 0x20, 0x00, 0x00, 0x08, 0x00]
        ),
        Outcome::Completed
    );
    assert_eq!(
        (cpu.rip, cpu.seg[SegReg::Cs as usize].selector),
        (0x2000, 0x08)
    );
    // lds esi, [ebx]
    cpu.gpr[RBX] = 0x3000;
    mem.poke(0x3000, &[0x78, 0x56, 0x34, 0x12, 0x10, 0x00]);
    assert_eq!(run(&mut cpu, &mut mem, &[0xC5, 0x33]), Outcome::Completed);
    assert_eq!(
        (cpu.gpr[RSI], cpu.seg[SegReg::Ds as usize].selector),
        (0x1234_5678, 0x10)
    );
    // mov eax, ds (zero-extends) / mov [ebx], ds (16-bit store)
    cpu.gpr[RAX] = u64::MAX;
    assert_eq!(run(&mut cpu, &mut mem, &[0x8C, 0xD8]), Outcome::Completed);
    assert_eq!(cpu.gpr[RAX], 0x10);
}

#[test]
fn descriptor_table_instructions() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RBX] = 0x3000;
    mem.poke(0x3000, &[0xFF, 0x0F, 0x00, 0x10, 0, 0, 0, 0, 0, 0]);
    // lgdt [rbx]; sgdt [rbx+16]; lidt; sidt
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x13]),
        Outcome::Completed
    );
    assert_eq!(
        cpu.gdtr,
        DescTable {
            base: 0x1000,
            limit: 0xFFF
        }
    );
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x43, 0x10]),
        Outcome::Completed
    );
    assert_eq!(
        mem.peek(0x3010, 10),
        vec![0xFF, 0x0F, 0x00, 0x10, 0, 0, 0, 0, 0, 0]
    );
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x1B]),
        Outcome::Completed
    );
    assert_eq!(
        cpu.idtr,
        DescTable {
            base: 0x1000,
            limit: 0xFFF
        }
    );
    // non-canonical base -> #GP
    mem.poke(0x3002, &0x8000_0000_0000_0000u64.to_le_bytes());
    cpu.rip = 0x1000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x13])),
        Exception::gp(0)
    );
    // CPL 3: lgdt -> #GP(0); sgdt allowed without UMIP, #GP with UMIP
    cpu.rip = 0x1000;
    cpu.cpl = 3;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x13])),
        Exception::gp(0)
    );
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x03]),
        Outcome::Completed
    );
    cpu.rip = 0x1000;
    cpu.cr4 |= X86_CR4_UMIP;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x03])),
        Exception::gp(0)
    );
    // 16-bit operand size LGDT in real mode keeps a 24-bit base.
    let (mut cpu, mut mem) = real_env();
    mem.poke(0x3000, &[0x17, 0x00, 0x11, 0x22, 0x33, 0x44]);
    cpu.gpr[RBX] = 0x3000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x17]),
        Outcome::Completed
    );
    assert_eq!(
        cpu.gdtr,
        DescTable {
            base: 0x33_2211,
            limit: 0x17
        }
    );
}

#[test]
fn lldt_ltr() {
    let (mut cpu, mut mem) = long_env();
    // GDT: 1 code64, 2 data, 3-4 LDT (16 bytes), 5-6 TSS (16 bytes)
    let ldt_lo: u64 = 0x0000_8200_0000_0000 | 0x0FFF | (0x4000 << 16);
    let tss_lo: u64 = 0x0000_8900_0000_0000 | 0x67 | (0x5000 << 16);
    gdt(
        &mut cpu,
        &mut mem,
        &[0x00AF_9A00_0000_FFFF, DATA32, ldt_lo, 0x1, tss_lo, 0x0],
    );
    cpu.gpr[RAX] = 0x18;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x00, 0xD0]),
        Outcome::Completed
    ); // lldt ax
    let l = cpu.seg[SegReg::Ldtr as usize];
    assert_eq!(
        (l.selector, l.base, l.limit, l.type_),
        (0x18, 0x1_0000_4000, 0xFFF, 2)
    );
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0x28;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x00, 0xD8]),
        Outcome::Completed
    ); // ltr ax
    assert_eq!(cpu.seg[SegReg::Tr as usize].type_, 11);
    assert_eq!(
        mem.peek(0x500 + 0x28 + 5, 1),
        vec![0x8B],
        "busy bit set in the GDT"
    );
    // ltr of a busy TSS -> #GP(sel)
    cpu.rip = 0x1000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x00, 0xD8])),
        Exception::gp(0x28)
    );
    // sldt / str
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x00, 0xC1]),
        Outcome::Completed
    ); // sldt ecx
    assert_eq!(cpu.gpr[RCX], 0x18);
    // lldt in real mode -> #UD
    let (mut cpu, mut mem) = real_env();
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x00, 0xD0])).vector,
        UD_VECTOR
    );
}

#[test]
fn control_and_debug_registers() {
    let (mut cpu, mut mem) = long_env();
    cpu.gpr[RAX] = 0x1234_5000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x22, 0xD8]),
        Outcome::Completed
    ); // mov cr3, rax
    assert_eq!(cpu.cr3, 0x1234_5000);
    cpu.cr3 = CR3;
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x20, 0xC1]),
        Outcome::Completed
    ); // mov rcx, cr0
    assert_eq!(cpu.gpr[RCX], cpu.cr0);
    // mov cr8 via REX.R
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 5;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x44, 0x0F, 0x22, 0xC0]),
        Outcome::Completed
    );
    assert_eq!(cpu.cr8, 5);
    // rejected value -> #GP(0)
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 1 << 40;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x22, 0xC0])),
        Exception::gp(0)
    );
    // CR5 -> #UD at decode
    cpu.rip = 0x1000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x22, 0xE8])).vector,
        UD_VECTOR
    );
    // CPL 3 -> #GP
    cpu.rip = 0x1000;
    cpu.cpl = 3;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x20, 0xC1])),
        Exception::gp(0)
    );
    cpu.cpl = 0;
    // mov dr7, rax ; mov rbx, dr4 (aliases dr6); CR4.DE makes dr4 #UD
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0x401;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x23, 0xF8]),
        Outcome::Completed
    );
    assert_eq!(cpu.dr[7], 0x401);
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x21, 0xE3]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RBX], cpu.dr[6]);
    cpu.rip = 0x1000;
    cpu.cr4 |= X86_CR4_DE;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x21, 0xE3])).vector,
        UD_VECTOR
    );
    // DR7.GD -> #DB with DR6.BD
    cpu.rip = 0x1000;
    cpu.dr[7] |= DR7_GD;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x21, 0xC3])).vector,
        DB_VECTOR
    );
    assert_ne!(cpu.dr[6] & DR6_BD, 0);
    // lmsw can set PE but not clear it; clts; smsw
    let (mut cpu, mut mem) = real_env();
    cpu.gpr[RAX] = 0x9;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0xF0]),
        Outcome::Completed
    );
    assert_eq!(cpu.cr0 & 0xF, 0x9);
    cpu.gpr[RAX] = 0;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0xF0]),
        Outcome::Completed
    );
    assert_eq!(cpu.cr0 & 0xF, 0x1);
    cpu.cr0 |= X86_CR0_TS;
    assert_eq!(run(&mut cpu, &mut mem, &[0x0F, 0x06]), Outcome::Completed);
    assert_eq!(cpu.cr0 & X86_CR0_TS, 0);
}

#[test]
fn misc_system_instructions() {
    let (mut cpu, mut mem) = long_env();
    // cpuid
    cpu.gpr[RAX] = 7;
    cpu.gpr[RCX] = 1;
    assert_eq!(run(&mut cpu, &mut mem, &[0x0F, 0xA2]), Outcome::Completed);
    assert_eq!((cpu.gpr[RAX], cpu.gpr[RBX]), (7 ^ 0x1111, 1));
    // wrmsr / rdmsr / rejected msr
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 0x1234;
    cpu.gpr[RDX] = 0xAABB;
    cpu.gpr[RAX] = 0xCCDD;
    assert_eq!(run(&mut cpu, &mut mem, &[0x0F, 0x30]), Outcome::Completed);
    assert_eq!(cpu.msrs[&0x1234], 0xAABB_0000_CCDD);
    cpu.rip = 0x1000;
    cpu.gpr[RAX] = 0;
    cpu.gpr[RDX] = 0;
    assert_eq!(run(&mut cpu, &mut mem, &[0x0F, 0x32]), Outcome::Completed);
    assert_eq!((cpu.gpr[RDX], cpu.gpr[RAX]), (0xAABB, 0xCCDD));
    cpu.rip = 0x1000;
    cpu.gpr[RCX] = 0x9999;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x32])),
        Exception::gp(0)
    );
    // rdtsc / rdtscp / CR4.TSD at CPL 3
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x0F, 0x31]), Outcome::Completed);
    assert_eq!((cpu.gpr[RDX] << 32) | cpu.gpr[RAX], cpu.tsc);
    cpu.msrs.insert(MSR_TSC_AUX, 3);
    cpu.rip = 0x1000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0xF9]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RCX], 3);
    cpu.rip = 0x1000;
    cpu.cr4 |= X86_CR4_TSD;
    cpu.cpl = 3;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x31])),
        Exception::gp(0)
    );
    cpu.cpl = 0;
    // invlpg, wbinvd, hlt
    cpu.rip = 0x1000;
    cpu.gpr[RBX] = 0x7000;
    assert_eq!(
        run(&mut cpu, &mut mem, &[0x0F, 0x01, 0x7B, 0x10]),
        Outcome::Completed
    );
    assert_eq!(cpu.invlpgs, vec![0x7010]);
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x0F, 0x09]), Outcome::Completed);
    assert_eq!(cpu.wbinvds, 1);
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0xF4]), Outcome::Halt);
    assert_eq!(cpu.rip, 0x1001);
    // cli/sti with shadow; CPL 3 with IOPL 0 -> #GP
    cpu.rip = 0x1000;
    cpu.rflags &= !X86_EFLAGS_IF;
    assert_eq!(run(&mut cpu, &mut mem, &[0xFB]), Outcome::Completed);
    assert_eq!(cpu.shadow, Some(InterruptShadow::Sti));
    assert_ne!(cpu.rflags & X86_EFLAGS_IF, 0);
    cpu.rip = 0x1000;
    cpu.cpl = 3;
    assert_eq!(exc(run(&mut cpu, &mut mem, &[0xFA])), Exception::gp(0));
    // ud2
    cpu.rip = 0x1000;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x0F, 0x0B])).vector,
        UD_VECTOR
    );
}

// ----- decode limits -----

#[test]
fn decode_limits() {
    let (mut cpu, mut mem) = long_env();
    // 15 prefixes + opcode: too long -> #GP(0)
    let mut code = vec![0x66u8; 15];
    code.push(0x90);
    assert_eq!(exc(run(&mut cpu, &mut mem, &code)), Exception::gp(0));
    // 14 prefixes + nop is fine
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &code[1..]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x100F);
    // VEX (vzeroupper) is rejected cleanly
    cpu.rip = 0x1000;
    assert!(matches!(
        run(&mut cpu, &mut mem, &[0xC5, 0xF8, 0x77]),
        Outcome::Unhandleable { .. }
    ));
    // x87 is not emulated
    cpu.rip = 0x1000;
    match run(&mut cpu, &mut mem, &[0xD9, 0xE8]) {
        Outcome::Unhandleable { bytes, len } => assert!(len >= 1 && bytes[0] == 0xD9),
        o => panic!("{o:?}"),
    }
    // Invalid in 64-bit mode
    cpu.rip = 0x1000;
    assert_eq!(exc(run(&mut cpu, &mut mem, &[0x06])).vector, UD_VECTOR);
}

#[test]
fn fetch_paths() {
    let (mut cpu, mut mem) = long_env();
    // Instruction crossing into an unmapped page -> #PF on the fetch.
    cpu.rip = 0x1_FFFE;
    mem.poke(0x1_FFFE, &[0x48, 0xB8]);
    let mut emu = Emulator::new();
    let e = exc(emu.emulate(&mut cpu, &mut mem, &[]));
    assert_eq!(
        (e.vector, e.cr2, e.error_code),
        (PF_VECTOR, 0x2_0000, Some(PFERR_FETCH_MASK))
    );
    // A short prefetch buffer is completed from memory.
    cpu.rip = 0x1000;
    mem.poke(0x1000, &[0x48, 0xB8, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        emu.emulate(&mut cpu, &mut mem, &[0x48, 0xB8]),
        Outcome::Completed
    );
    assert_eq!(cpu.gpr[RAX], 0x0807_0605_0403_0201);
    // Prefetched bytes win over memory (decode assist).
    cpu.rip = 0x1000;
    assert_eq!(emu.emulate(&mut cpu, &mut mem, &[0x90]), Outcome::Completed);
    assert_eq!(cpu.rip, 0x1001);
    // Executing from MMIO is unhandleable.
    cpu.rip = MMIO;
    assert!(matches!(
        emu.emulate(&mut cpu, &mut mem, &[]),
        Outcome::Unhandleable { .. }
    ));
    // CS limit in protected mode.
    let (mut cpu, mut mem) = prot_env();
    cpu.seg_mut(SegReg::Cs).limit = 0x1000;
    cpu.rip = 0x1001;
    assert_eq!(exc(run(&mut cpu, &mut mem, &[0x90])), Exception::gp(0));
}

// ----- paging through the emulator -----

#[test]
fn page_faults_from_data_accesses() {
    let (mut cpu, mut mem) = long_env();
    // Unmapped -> not-present fault with W bit for writes.
    cpu.gpr[RBX] = 0x40_0000;
    let e = exc(run(&mut cpu, &mut mem, &[0x89, 0x03]));
    assert_eq!(
        (e.vector, e.cr2, e.error_code),
        (PF_VECTOR, 0x40_0000, Some(PFERR_WRITE_MASK))
    );
    // Read-only page with CR0.WP: protection fault.
    mem.map4k(CR3, 0x40_0000, 0x4000, 0x5); // present, user, read-only
    cpu.rip = 0x1000;
    let e = exc(run(&mut cpu, &mut mem, &[0x89, 0x03]));
    assert_eq!(e.error_code, Some(PFERR_WRITE_MASK | PFERR_PRESENT_MASK));
    cpu.cr0 &= !X86_CR0_WP;
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x89, 0x03]), Outcome::Completed);
    // User access to a supervisor page.
    mem.map4k(CR3, 0x40_1000, 0x4000, 0x3);
    cpu.cpl = 3;
    cpu.rip = 0x1000;
    cpu.gpr[RBX] = 0x40_1000;
    let e = exc(run(&mut cpu, &mut mem, &[0x8B, 0x03]));
    assert_eq!(e.error_code, Some(PFERR_USER_MASK | PFERR_PRESENT_MASK));
    // SMAP: supervisor access to a user page faults unless RFLAGS.AC.
    cpu.cpl = 0;
    cpu.cr4 |= X86_CR4_SMAP;
    cpu.rip = 0x1000;
    cpu.gpr[RBX] = 0x40_0000;
    let e = exc(run(&mut cpu, &mut mem, &[0x8B, 0x03]));
    assert_eq!(e.error_code, Some(PFERR_PRESENT_MASK));
    cpu.rflags |= X86_EFLAGS_AC;
    cpu.rip = 0x1000;
    assert_eq!(run(&mut cpu, &mut mem, &[0x8B, 0x03]), Outcome::Completed);
    // Accessed and dirty bits were set on the leaf of the written page.
    let pte = walk_pte(&mem, 0x40_0000);
    assert_eq!(pte & 0x60, 0x60);
}

fn walk_pte(mem: &TestMem, la: u64) -> u64 {
    let mut t = CR3;
    for level in (1..=4).rev() {
        let e = mem.peek_u64(t + ((la >> (12 + 9 * (level - 1))) & 0x1FF) * 8);
        if level == 1 {
            return e;
        }
        t = e & 0x000F_FFFF_FFFF_F000;
    }
    unreachable!()
}

#[test]
fn alignment_check_at_cpl3() {
    let (mut cpu, mut mem) = long_env();
    cpu.cpl = 3;
    cpu.cr0 |= X86_CR0_AM;
    cpu.rflags |= X86_EFLAGS_AC;
    cpu.gpr[RBX] = 0x3001;
    assert_eq!(
        exc(run(&mut cpu, &mut mem, &[0x8B, 0x03])),
        Exception::with_code(AC_VECTOR, 0)
    );
    cpu.rip = 0x1000;
    cpu.gpr[RBX] = 0x3004;
    assert_eq!(run(&mut cpu, &mut mem, &[0x8B, 0x03]), Outcome::Completed);
}

// ----- the walker on its own -----

fn cfg(levels: u8, cr3: u64) -> PagingConfig {
    PagingConfig {
        levels,
        cr3,
        pse: true,
        wp: true,
        nxe: true,
        smep: false,
        smap: false,
        pcide: false,
        maxphyaddr: 40,
        gbpages: true,
        pdptes: None,
    }
}

const RD: Access = Access {
    write: false,
    fetch: false,
    user: false,
    implicit: false,
    ac: false,
};

#[test]
fn walker_32bit_paging_with_pse() {
    let mut mem = TestMem::new();
    mem.add_ram(0, 0x10_0000);
    // PDE[1] -> 4 MiB page at 0x0_0C00000 with PSE-36 bits = 1 (PA 0x1_00C0_0000)
    mem.poke(
        0x1000 + 4,
        &(0x00C0_0000u32 | (1 << 13) | 0x87).to_le_bytes(),
    );
    // PDE[0] -> page table at 0x2000, PTE[5] -> 0x7000
    mem.poke(0x1000, &0x2007u32.to_le_bytes());
    mem.poke(0x2000 + 5 * 4, &0x7003u32.to_le_bytes());
    let c = cfg(2, 0x1000);
    let t = paging::translate(&mut mem, &c, 0x0040_1234, RD).unwrap();
    assert_eq!((t.gpa, t.page_size), (0x1_00C0_1234, 4 << 20));
    let t = paging::translate(&mut mem, &c, 0x5ABC, RD).unwrap();
    assert_eq!(t.gpa, 0x7ABC);
    // accessed bits set in PDE and PTE, dirty only when written
    assert_eq!(mem.peek(0x1000, 1)[0] & 0x20, 0x20);
    assert_eq!(mem.peek(0x2014, 1)[0] & 0x60, 0x20);
    let w = Access { write: true, ..RD };
    paging::translate(&mut mem, &c, 0x5ABC, w).unwrap();
    assert_eq!(mem.peek(0x2014, 1)[0] & 0x60, 0x60);
    // user access to the supervisor PTE
    let u = Access { user: true, ..RD };
    assert_eq!(
        paging::translate(&mut mem, &c, 0x5ABC, u),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_USER_MASK))
    );
    // without CR4.PSE, PS is ignored: PDE[1] is a page-table pointer
    let mut c2 = c;
    c2.pse = false;
    assert!(paging::translate(&mut mem, &c2, 0x0040_1234, RD).is_err() || true);
    // PSE-36 bit beyond MAXPHYADDR=32 is reserved
    let mut c3 = c;
    c3.maxphyaddr = 32;
    assert_eq!(
        paging::translate(&mut mem, &c3, 0x0040_1234, RD),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_RSVD_MASK))
    );
}

#[test]
fn walker_pae_and_nx() {
    let mut mem = TestMem::new();
    mem.add_ram(0, 0x10_0000);
    // PDPT at 0x1000: entry 1 -> PD 0x2000; PD[0] 2 MiB page at 0x20_0000 NX
    mem.poke(0x1008, &0x2001u64.to_le_bytes());
    mem.poke(0x2000, &(0x20_0000u64 | 0x83 | (1 << 63)).to_le_bytes());
    let mut c = cfg(3, 0x1000);
    let t = paging::translate(&mut mem, &c, 0x4001_2345, RD).unwrap();
    assert_eq!((t.gpa, t.page_size, t.nx), (0x21_2345, 2 << 20, true));
    let f = Access { fetch: true, ..RD };
    assert_eq!(
        paging::translate(&mut mem, &c, 0x4001_2345, f),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_FETCH_MASK))
    );
    // NX bit with EFER.NXE=0 is reserved
    c.nxe = false;
    assert_eq!(
        paging::translate(&mut mem, &c, 0x4001_2345, RD),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_RSVD_MASK))
    );
    // non-present PDPTE
    assert_eq!(
        paging::translate(&mut mem, &c, 0x0000_1000, RD),
        Err(WalkError::PageFault(0))
    );
    // cached PDPTEs override memory
    c.nxe = true;
    c.pdptes = Some([0, 0, 0, 0]);
    assert_eq!(
        paging::translate(&mut mem, &c, 0x4001_2345, RD),
        Err(WalkError::PageFault(0))
    );
}

#[test]
fn walker_4_and_5_level() {
    let mut mem = TestMem::new();
    mem.add_ram(0, 0x10_0000);
    // 4-level: PML4[0] -> 0x2000, PDPT[1] 1 GiB page at 0x8000_0000
    mem.poke(0x1000, &0x2007u64.to_le_bytes());
    mem.poke(0x2008, &(0x8000_0000u64 | 0x87).to_le_bytes());
    let c = cfg(4, 0x1000);
    let t = paging::translate(&mut mem, &c, 0x4000_1234, RD).unwrap();
    assert_eq!((t.gpa, t.page_size), (0x8000_1234, 1 << 30));
    // 1 GiB page not supported -> reserved
    let mut c1 = c;
    c1.gbpages = false;
    assert_eq!(
        paging::translate(&mut mem, &c1, 0x4000_1234, RD),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_RSVD_MASK))
    );
    // reserved low bits of a 1 GiB page
    mem.poke(0x2010, &(0x8000_0000u64 | 0x87 | (1 << 20)).to_le_bytes());
    assert_eq!(
        paging::translate(&mut mem, &c, 0x8000_0000, RD),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_RSVD_MASK))
    );
    // physical address bits above MAXPHYADDR are reserved
    mem.poke(0x2018, &((1u64 << 45) | 0x87).to_le_bytes());
    assert_eq!(
        paging::translate(&mut mem, &c, 0xC000_0000, RD),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_RSVD_MASK))
    );
    // PS in a PML4E is reserved
    mem.poke(0x1008, &0x3087u64.to_le_bytes());
    assert_eq!(
        paging::translate(&mut mem, &c, 0x80_0000_0000, RD),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_RSVD_MASK))
    );
    // 5-level: PML5[1] -> PML4 at 0x1000
    mem.poke(0x5008, &0x1007u64.to_le_bytes());
    let c5 = cfg(5, 0x5000);
    let t = paging::translate(&mut mem, &c5, (1u64 << 48) | 0x4000_0042, RD).unwrap();
    assert_eq!(t.gpa, 0x8000_0042);
    // SMEP: supervisor fetch from a user page
    let mut cs = c;
    cs.smep = true;
    let f = Access { fetch: true, ..RD };
    assert_eq!(
        paging::translate(&mut mem, &cs, 0x4000_1234, f),
        Err(WalkError::PageFault(PFERR_PRESENT_MASK | PFERR_FETCH_MASK))
    );
    // paging tables in MMIO
    let mut cm = c;
    cm.cr3 = 0xF000_0000;
    assert_eq!(
        paging::translate(&mut mem, &cm, 0x1000, RD),
        Err(WalkError::NotRam(0xF000_0000))
    );
    // A/D updates racing forever -> Busy
    mem.fail_cmpxchg = true;
    mem.poke(0x2008, &(0x8000_0000u64 | 0x87).to_le_bytes());
    assert_eq!(
        paging::translate(&mut mem, &c, 0x4000_1234, Access { write: true, ..RD }),
        Err(WalkError::Busy)
    );
}

#[test]
fn instruction_length_for_skipping() {
    let (mut cpu, mut mem) = long_env();
    place(&cpu, &mut mem, &[0x66, 0x0F, 0x1F, 0x44, 0x00, 0x00]);
    assert_eq!(Emulator::instruction_length(&cpu, &mut mem, &[]), Ok(6));
    assert_eq!(Emulator::instruction_length(&cpu, &mut mem, &[0xEE]), Ok(1));
    assert_eq!(cpu.rip, 0x1000, "nothing executed");
    cpu.rip = 0x1_FFFF;
    mem.poke(0x1_FFFF, &[0xB8]);
    assert!(
        matches!(Emulator::instruction_length(&cpu, &mut mem, &[]), Err(Outcome::Exception(e)) if e.vector == PF_VECTOR)
    );
    let (cpu, mut mem) = real_env();
    place(&cpu, &mut mem, &[0x66, 0xB8, 1, 2, 3, 4]);
    assert_eq!(Emulator::instruction_length(&cpu, &mut mem, &[]), Ok(6));
}

#[test]
fn emulator_state_is_small() {
    let n = std::mem::size_of::<Emulator>();
    println!("size_of::<Emulator>() = {n}");
    // The 1 KiB INS read-ahead buffer (upstream's read_cache.data) plus
    // about 700 bytes; KVM keeps it in its own allocation.
    assert!(n <= 2048, "Emulator grew to {n} bytes");
    assert!(std::mem::size_of::<Outcome>() <= 32);
}
