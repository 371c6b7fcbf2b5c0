//! The instruction emulator on MMIO operands (issue 4): REP string
//! instructions into and out of MMIO, 16-bit addressing forms in real mode,
//! read-modify-write and read-only instructions, SSE/AVX moves split into
//! 8-byte exits, page-crossing accesses, and instructions KVM cannot
//! emulate (KVM_EXIT_INTERNAL_ERROR, then #UD on resume).  The routines are
//! in guests/emul.inc; the exact exits here are what the in-tree module
//! produces.

use super::guest::*;
use super::harness::{skip, test, Test, TestResult};
use crate::report::expect_eq;
use kvm_bindings::*;

pub fn tests() -> Vec<Test> {
    let mut v = Vec::new();
    for m in MODES {
        v.push(test(format!("emul/{}/rep-movsb-to-mmio", m.name()), move || rep_movsb_to_mmio(m)));
    }
    v.push(test("emul/long/rep-movsb-to-mmio-backward-df", rep_movsb_backward));
    v.push(test("emul/long/rep-movsw-to-mmio", rep_movsw));
    v.push(test("emul/long/rep-stosd-stosq-to-mmio", rep_stos));
    v.push(test("emul/long/rep-movsb-from-mmio", rep_movsb_from_mmio));
    v.push(test("emul/long/rep-movsd-mmio-to-mmio", rep_movsd_mmio_to_mmio));
    v.push(test("emul/real/mov-bx-and-16bit-addressing", real_mmio));
    v.push(test("emul/prot32/alu-xchg-bt-cmpxchg-on-mmio", || alu(Mode::Prot32)));
    v.push(test("emul/long/alu-xchg-bt-cmpxchg-on-mmio", || alu(Mode::Long)));
    v.push(test("emul/prot32/page-crossing-split", || cross(Mode::Prot32)));
    v.push(test("emul/long/page-crossing-split", || cross(Mode::Long)));
    v.push(test("emul/long/sse-stores-split-8-bytes", sse_store));
    v.push(test("emul/long/sse-loads-split-8-bytes", sse_load));
    v.push(test("emul/long/sse-store-page-crossing", sse_cross));
    v.push(test("emul/long/sse-movq-to-mmio-internal-error", sse_movq));
    v.push(test("emul/long/avx-vmovdqu-ymm-split", avx));
    v.push(test("emul/long/x87-store-internal-error", || unhandleable("emul_fail_x87", false)));
    v.push(test("emul/long/x87-store-then-ud-on-resume", || unhandleable("emul_fail_x87", true)));
    v.push(test("emul/long/cmpxchg16b-internal-error", cmpxchg16b));
    v
}

/// One expected exit of a scripted guest.
enum Step {
    /// MMIO write of these bytes.
    W(u64, Vec<u8>),
    /// MMIO read, answered with these bytes.
    R(u64, Vec<u8>),
    /// Dword OUT to PORT_ECHO.
    Echo(u32),
    /// Byte OUT to PORT_ECHO.
    Echo1(u8),
    /// Word OUT to PORT_ECHO.
    Echo2(u16),
    Hlt,
}
use Step::*;

fn w32(a: u64, v: u32) -> Step {
    W(a, v.to_le_bytes().to_vec())
}
fn r32(a: u64, v: u32) -> Step {
    R(a, v.to_le_bytes().to_vec())
}

/// Runs the guest through `steps`, each exit exactly as stated.
fn script(cpu: &mut Cpu, steps: &[Step]) -> TestResult {
    for (i, s) in steps.iter().enumerate() {
        let r = match s {
            W(a, d) => cpu.expect(Exit::mmio_write(*a, d)),
            R(a, d) => cpu.expect_mmio_read(*a, d),
            Echo(v) => cpu.expect(Exit::out4(PORT_ECHO, *v)),
            Echo1(v) => cpu.expect(Exit::out1(PORT_ECHO, *v)),
            Echo2(v) => cpu.expect(Exit::out2(PORT_ECHO, *v)),
            Hlt => cpu.expect_hlt(),
        };
        r.map_err(|e| format!("step {i}: {e}"))?;
    }
    Ok(())
}

/// The register mask of the string registers in `m` (SI/DI/CX are 16-bit
/// in real mode).
fn mask(m: Mode) -> u64 {
    if m == Mode::Real {
        0xffff
    } else {
        u64::MAX
    }
}

/// Checks RCX, RSI and RDI after a string instruction.
fn string_regs(cpu: &Cpu, m: Mode, rcx: u64, rsi: u64, rdi: u64) -> TestResult {
    let r = cpu.regs()?;
    let k = mask(m);
    eq_hex("rcx after", r.rcx & k, rcx & k)?;
    eq_hex("rsi after", r.rsi & k, rsi & k)?;
    eq_hex("rdi after", r.rdi & k, rdi & k)
}

/// REP MOVSB of 7 RAM bytes into MMIO: one KVM_EXIT_MMIO write of one byte
/// per element, in order; then RCX = 0 and RSI/RDI advanced by 7.
fn rep_movsb_to_mmio(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "str_movsb")?;
    let src = b"rkvm-42";
    g.vm.mem.write(SCRATCH as usize, src);
    let dst = MMIO_ADDR + 0x100;
    g.cpu.with_regs(|r| {
        r.rsi = SCRATCH;
        r.rdi = dst;
        r.rcx = src.len() as u64;
    })?;
    let mut steps: Vec<Step> = src.iter().enumerate().map(|(i, b)| W(dst + i as u64, vec![*b])).collect();
    steps.push(Hlt);
    script(&mut g.cpu, &steps)?;
    string_regs(&g.cpu, m, 0, SCRATCH + 7, dst + 7)
}

/// With RFLAGS.DF = 1 the elements go downwards: the last byte first.
fn rep_movsb_backward() -> TestResult {
    let mut g = Guest::at(Mode::Long, "str_movsb")?;
    let src = b"abcdefg";
    g.vm.mem.write(SCRATCH as usize, src);
    let dst = MMIO_ADDR + 0x100;
    g.cpu.with_regs(|r| {
        r.rsi = SCRATCH + 6;
        r.rdi = dst + 6;
        r.rcx = 7;
        r.rflags |= 0x400;
    })?;
    let mut steps: Vec<Step> = (0..7u64).rev().map(|i| W(dst + i, vec![src[i as usize]])).collect();
    steps.push(Hlt);
    script(&mut g.cpu, &steps)?;
    string_regs(&g.cpu, Mode::Long, 0, SCRATCH - 1, dst - 1)
}

/// REP MOVSW: one 2-byte write per element.
fn rep_movsw() -> TestResult {
    let mut g = Guest::at(Mode::Long, "str_movsw")?;
    let src: Vec<u8> = (0..8u8).map(|i| 0x30 + i).collect();
    g.vm.mem.write(SCRATCH as usize, &src);
    let dst = MMIO_ADDR + 0x10;
    g.cpu.with_regs(|r| {
        r.rsi = SCRATCH;
        r.rdi = dst;
        r.rcx = 4;
    })?;
    let mut steps: Vec<Step> = (0..4).map(|i| W(dst + 2 * i as u64, src[2 * i..2 * i + 2].to_vec())).collect();
    steps.push(Hlt);
    script(&mut g.cpu, &steps)?;
    string_regs(&g.cpu, Mode::Long, 0, SCRATCH + 8, dst + 8)
}

/// REP STOSD (3 dwords of EAX) and REP STOSQ (2 qwords of RAX).
fn rep_stos() -> TestResult {
    let mut g = Guest::at(Mode::Long, "str_stosl")?;
    let dst = MMIO_ADDR + 0x200;
    g.cpu.with_regs(|r| {
        r.rax = 0x5566_7788_a1b2_c3d4;
        r.rdi = dst;
        r.rcx = 3;
    })?;
    script(&mut g.cpu, &[w32(dst, 0xa1b2_c3d4), w32(dst + 4, 0xa1b2_c3d4), w32(dst + 8, 0xa1b2_c3d4), Hlt])?;
    let r = g.cpu.regs()?;
    eq_hex("rcx after rep stosd", r.rcx, 0)?;
    eq_hex("rdi after rep stosd", r.rdi, dst + 12)?;
    g.cpu.start("str_stosq")?;
    g.cpu.with_regs(|r| {
        r.rax = 0x5566_7788_a1b2_c3d4;
        r.rdi = dst;
        r.rcx = 2;
    })?;
    let q = 0x5566_7788_a1b2_c3d4u64.to_le_bytes().to_vec();
    script(&mut g.cpu, &[W(dst, q.clone()), W(dst + 8, q), Hlt])?;
    let r = g.cpu.regs()?;
    eq_hex("rcx after rep stosq", r.rcx, 0)?;
    eq_hex("rdi after rep stosq", r.rdi, dst + 16)
}

/// REP MOVSB from MMIO into RAM: one read exit per element, each resumed
/// with the byte userspace put in kvm_run.mmio.data, all landing in RAM.
fn rep_movsb_from_mmio() -> TestResult {
    let mut g = Guest::at(Mode::Long, "str_movsb")?;
    let src = MMIO_ADDR + 0x300;
    g.vm.mem.write(SCRATCH as usize, &[0xcc; 16]);
    g.cpu.with_regs(|r| {
        r.rsi = src;
        r.rdi = SCRATCH;
        r.rcx = 8;
    })?;
    let data: Vec<u8> = (0..8u8).map(|i| 0xb0 + i).collect();
    let mut steps: Vec<Step> = (0..8).map(|i| R(src + i as u64, vec![data[i]])).collect();
    steps.push(Hlt);
    script(&mut g.cpu, &steps)?;
    expect_eq("RAM at SCRATCH", g.vm.mem.read(SCRATCH as usize, 9), [&data[..], &[0xcc]].concat())?;
    string_regs(&g.cpu, Mode::Long, 0, src + 8, SCRATCH + 8)
}

/// REP MOVSD with both operands in MMIO: read, write, read, write.
fn rep_movsd_mmio_to_mmio() -> TestResult {
    let mut g = Guest::at(Mode::Long, "str_movsl")?;
    let (src, dst) = (MMIO_ADDR + 0x400, MMIO_ADDR + 0x500);
    g.cpu.with_regs(|r| {
        r.rsi = src;
        r.rdi = dst;
        r.rcx = 2;
    })?;
    script(
        &mut g.cpu,
        &[r32(src, 0x0102_0304), w32(dst, 0x0102_0304), r32(src + 4, 0x0506_0708), w32(dst + 4, 0x0506_0708), Hlt],
    )?;
    string_regs(&g.cpu, Mode::Long, 0, src + 8, dst + 8)
}

/// Real mode: [bx], [bx+si], [bp+di+disp] (SS), moffs, an ES override with
/// a non-zero segment base, and ADD to memory.
fn real_mmio() -> TestResult {
    let mut g = Guest::at(Mode::Real, "real_mmio")?;
    let a = MMIO_ADDR;
    script(
        &mut g.cpu,
        &[
            W(a, vec![0x5a]),
            R(a, vec![0xa5]),
            Echo1(0xa5),
            W(a + 0x10, vec![0x34, 0x12]),
            W(a + 0x24, vec![0xef, 0xbe]),
            R(a + 0x30, vec![0xaa, 0x55]),
            Echo2(0x55aa),
            W(a + 0x40, vec![0x77]),
            R(a + 0x50, vec![0xff, 0x00]),
            W(a + 0x50, vec![0x00, 0x02]),
            Echo2(0x14), // PF AF
            Hlt,
        ],
    )
}

/// guests/emul.inc mmio_alu: each instruction's reads, writes and flags.
fn alu(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "mmio_alu")?;
    let a = MMIO_ADDR;
    script(
        &mut g.cpu,
        &[
            // add %eax(0xf), m32: 0xfffffff5 + 0xf -> 4, CF AF
            r32(a + 0x40, 0xffff_fff5),
            w32(a + 0x40, 4),
            Echo(0x11),
            // subw $1, m16: 0 - 1 -> 0xffff, CF PF AF SF
            R(a + 0x44, vec![0, 0]),
            W(a + 0x44, vec![0xff, 0xff]),
            Echo(0x95),
            // orb $0xf0, m8: 0x0f -> 0xff, PF SF
            R(a + 0x46, vec![0x0f]),
            W(a + 0x46, vec![0xff]),
            Echo(0x84),
            // xchg %ecx, m32
            r32(a + 0x48, 0x1234_5678),
            w32(a + 0x48, 0xcafe_f00d),
            Echo(0x1234_5678),
            // movzbl, movsbl, movzwl
            R(a + 0x50, vec![0x9c]),
            Echo(0x9c),
            R(a + 0x51, vec![0x9c]),
            Echo(0xffff_ff9c),
            R(a + 0x52, vec![0x34, 0x12]),
            Echo(0x1234),
            // testl $0x100, m32: no write; PF (ZF = SF = OF = 0)
            r32(a + 0x54, 0x100),
            Echo(0x04),
            // btl %ecx(35), m32: the dword at +4, bit 3
            r32(a + 0x5c, 0x8),
            Echo(1),
            // btsl $2, m32: 1 -> 5, CF = 0
            r32(a + 0x60, 1),
            w32(a + 0x60, 5),
            Echo(0),
            // cmpxchg %edx(0x22), m32 with EAX = 0x11: equal -> write, ZF
            r32(a + 0x64, 0x11),
            w32(a + 0x64, 0x22),
            Echo(0x40),
            // again, not equal: EAX = old value, and the old value is
            // written back (the locked write cycle)
            r32(a + 0x64, 0x33),
            w32(a + 0x64, 0x33),
            Echo(0x33),
            // xadd %esi(3), m32: 5 -> 8, ESI = 5
            r32(a + 0x68, 5),
            w32(a + 0x68, 8),
            Echo(5),
            // lock orl $0x80
            r32(a + 0x6c, 1),
            w32(a + 0x6c, 0x81),
            // setnz m8: write only
            W(a + 0x70, vec![1]),
            // notl
            r32(a + 0x74, 0x0f0f_0f0f),
            w32(a + 0x74, 0xf0f0_f0f0),
            // negl: CF = 1
            r32(a + 0x78, 1),
            w32(a + 0x78, 0xffff_ffff),
            Echo(1),
            // shll $4: CF = 0
            r32(a + 0x80, 0x0403_0201),
            w32(a + 0x80, 0x4030_2010),
            Echo(0),
            // cmovz m32 (ZF = 1 from the AND in FLAGS_OUT): read and moved
            r32(a + 0x84, 0xdead_beef),
            Echo(0xdead_beef),
            // movnti
            w32(a + 0x88, 0x1234_5678),
            Hlt,
        ],
    )
}

/// Accesses straddling a page boundary are split at it: RAM|MMIO writes
/// the RAM part directly and exits for the MMIO part; MMIO|MMIO exits
/// twice, for writes and for reads.
fn cross(m: Mode) -> TestResult {
    let mut g = Guest::at(m, "mmio_cross")?;
    let a = MMIO_ADDR;
    script(
        &mut g.cpu,
        &[
            W(a, vec![0x33, 0x44]),
            W(a + 0xffe, vec![0x55, 0x66]),
            W(a + 0x1000, vec![0x77, 0x88]),
            R(a + 0xffe, vec![0xa1, 0xa2]),
            R(a + 0x1000, vec![0xa3, 0xa4]),
            Echo(0xa4a3_a2a1),
            Hlt,
        ],
    )?;
    expect_eq("RAM below MMIO_ADDR", g.vm.mem.read(MMIO_ADDR as usize - 2, 2), vec![0x11, 0x22])
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n as u8).collect()
}

/// Writes of `data` at `a` as KVM splits them: pieces of at most 8 bytes.
fn split8(a: u64, data: &[u8]) -> Vec<Step> {
    data.chunks(8).enumerate().map(|(i, c)| W(a + 8 * i as u64, c.to_vec())).collect()
}

/// 16-byte SSE stores (movdqu, movups, movaps, movdqa, movntdq, movntps)
/// exit as two 8-byte writes; the MMX movq as one.
fn sse_store() -> TestResult {
    let mut g = Guest::at(Mode::Long, "sse_store")?;
    let p = pattern(16);
    let a = MMIO_ADDR;
    let mut steps = Vec::new();
    for off in [0x101, 0x111, 0x120, 0x130, 0x140, 0x150] {
        steps.extend(split8(a + off, &p));
    }
    steps.push(W(a + 0x160, p[..8].to_vec()));
    steps.push(Hlt);
    script(&mut g.cpu, &steps)
}

/// 16-byte SSE loads from MMIO (movdqu, movaps, movdqa, movups) exit as two
/// 8-byte reads, and the register gets both halves.
fn sse_load() -> TestResult {
    let mut g = Guest::at(Mode::Long, "sse_load")?;
    let a = MMIO_ADDR;
    let mut steps = Vec::new();
    let mut want = Vec::new();
    for (i, off) in [0x201u64, 0x220, 0x230, 0x241].into_iter().enumerate() {
        let d: Vec<u8> = (0..16u8).map(|b| 0x40 * i as u8 + 0x11 + b).collect();
        steps.push(R(a + off, d[..8].to_vec()));
        steps.push(R(a + off + 8, d[8..].to_vec()));
        want.extend(d);
    }
    steps.push(Hlt);
    script(&mut g.cpu, &steps)?;
    expect_eq("RAM at SCRATCH (the loaded registers)", g.vm.mem.read(SCRATCH as usize, 64), want)
}

/// A 16-byte store across a page boundary: split at the page, then into
/// pieces of at most 8 bytes.
fn sse_cross() -> TestResult {
    let mut g = Guest::at(Mode::Long, "sse_cross")?;
    let p = pattern(16);
    let a = MMIO_ADDR + 0xffa;
    let mut steps = vec![W(a, p[..6].to_vec())];
    steps.extend(split8(MMIO_ADDR + 0x1000, &p[6..]));
    steps.push(Hlt);
    script(&mut g.cpu, &steps)
}

/// MOVQ xmm->m64 (66 0f d6) to MMIO: the in-tree emulator does not
/// implement it: KVM_EXIT_INTERNAL_ERROR (emulation) with the instruction
/// bytes and the GPA, RIP at the MOVQ (the MOVD behind it never runs).
fn sse_movq() -> TestResult {
    let mut g = Guest::at(Mode::Long, "sse_movq_movd")?;
    let e = g.cpu.run()?;
    // movq %xmm0, 0x170(%rbx)
    check_emulation_failure(&e, &[0x66, 0x0f, 0xd6, 0x83, 0x70, 0x01, 0x00, 0x00], MMIO_ADDR + 0x170)?;
    eq_hex("rip at the failing instruction", g.cpu.regs()?.rip, g.sym("sse_movq_insn")?)
}

/// VEX-encoded VMOVDQU to and from MMIO: a 16-byte store is two 8-byte
/// exits, a 32-byte store or load four.
fn avx() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    let cpuid = vm.supported_cpuid()?;
    let leaf1 = cpuid.as_slice().iter().find(|e| e.function == 1).map(|e| e.ecx).unwrap_or(0);
    if leaf1 & (1 << 28) == 0 || leaf1 & (1 << 26) == 0 {
        return skip("KVM_GET_SUPPORTED_CPUID has no AVX/XSAVE");
    }
    let mut cpu = vm.vcpu(0)?;
    cpu.start("avx_mmio")?;
    let mut x = k("KVM_GET_XCRS", cpu.fd.get_xcrs())?;
    x.nr_xcrs = 1;
    x.xcrs[0].xcr = 0;
    x.xcrs[0].value = 7;
    k("KVM_SET_XCRS(XCR0 = x87|SSE|YMM)", cpu.fd.set_xcrs(&x))?;
    let p = pattern(32);
    let a = MMIO_ADDR;
    let mut steps = split8(a + 0x1a1, &p[..16]);
    steps.extend(split8(a + 0x181, &p));
    let d: Vec<u8> = (0..32u8).map(|b| 0x80 + b).collect();
    for i in 0..4 {
        steps.push(R(a + 0x1c1 + 8 * i as u64, d[8 * i..8 * i + 8].to_vec()));
    }
    steps.push(Hlt);
    if let Err(e) = script(&mut cpu, &steps) {
        // #UD: where?  A native VEX instruction faulting means the virtual
        // CPU underneath lacks AVX, whatever CPUID says.
        let r = cpu.regs()?;
        let ud = vm.sym("ud_handler")?;
        if (ud..ud + 8).contains(&r.rip) {
            let rip = u64::from_le_bytes(vm.mem.read(r.rsp as usize, 8).try_into().unwrap());
            let cr4 = k("KVM_GET_SREGS", cpu.fd.get_sregs())?.cr4;
            if rip == vm.sym("avx_native")? {
                return skip(format!("#UD on a VEX load from RAM (cr4 {cr4:#x}): the CPU under KVM lacks AVX"));
            }
            let xcr0 = k("KVM_GET_XCRS", cpu.fd.get_xcrs())?.xcrs[0].value;
            return Err(format!("{e}; #UD at rip {rip:#x} (cr4 {cr4:#x}, xcr0 {xcr0:#x})"));
        }
        return Err(e);
    }
    expect_eq("RAM at SCRATCH (the loaded ymm1)", vm.mem.read(SCRATCH as usize, 32), d)
}

/// Checks a KVM_EXIT_INTERNAL_ERROR of suberror EMULATION for the
/// instruction `insn` at guest-physical `gpa`: like the in-tree module,
/// ndata 8 = flags (INSTRUCTION_BYTES), insn_size + 15 bytes (two words),
/// then the exit info (SVM: exit code NPF 0x400, info1, info2 = the GPA,
/// intinfo, error code, or with `npt=0` the #PF exit 0x4e; VMX: exit
/// reason EPT violation 48 or EPT misconfiguration 49, the exit
/// qualification, IDT-vectoring info 0, interruption info, error code: no
/// GPA).
pub(crate) fn check_emulation_failure(e: &Exit, insn: &[u8], gpa: u64) -> TestResult {
    let Exit::InternalError { suberror, data } = e else {
        return Err(format!("exit: got {e}, want internal-error suberror {KVM_INTERNAL_ERROR_EMULATION}"));
    };
    if *suberror != KVM_INTERNAL_ERROR_EMULATION {
        return Err(format!("exit: got {e}, want suberror {KVM_INTERNAL_ERROR_EMULATION} (emulation)"));
    }
    if data.len() != 8 {
        return Err(format!("internal error ndata {} (data {data:x?}), want 8", data.len()));
    }
    eq_hex("data[0] (flags: KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)", data[0], 1)?;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&data[1].to_le_bytes());
    bytes[8..].copy_from_slice(&data[2].to_le_bytes());
    let size = bytes[0] as usize;
    if size < insn.len() || size > 15 {
        return Err(format!("insn_size {size}, want {}..=15 (data {data:x?})", insn.len()));
    }
    expect_eq("instruction bytes", &bytes[1..1 + insn.len()], insn)?;
    match crate::vendor::Vendor::host() {
        crate::vendor::Vendor::Amd if crate::sys::kvm_amd_npt() != Some(false) => {
            eq_hex("data[3] (exit reason: SVM_EXIT_NPF)", data[3], 0x400)?;
            eq_hex("data[5] (exit info 2: the faulting GPA)", data[5], gpa)
        }
        crate::vendor::Vendor::Amd => {
            // Shadow paging: the guest's #PF exit (the guest maps the MMIO
            // page at its own address).
            eq_hex("data[3] (exit reason: SVM_EXIT_EXCP_BASE + #PF)", data[3], 0x4e)?;
            eq_hex("data[5] (exit info 2: the faulting address)", data[5], gpa)
        }
        crate::vendor::Vendor::Intel => {
            if data[3] != 48 && data[3] != 49 {
                return Err(format!("data[3] (exit reason): got {:#x}, want EPT violation 48 or EPT misconfig 49 (data {data:x?})", data[3]));
            }
            eq_hex("data[5] (IDT-vectoring info)", data[5], 0)
        }
    }
}

/// FSTPS to MMIO is not emulated: KVM_EXIT_INTERNAL_ERROR with the
/// instruction bytes; resumed, the vCPU takes the #UD KVM queued (at CPL 0
/// the in-tree module queues #UD and exits).
fn unhandleable(routine: &str, resume: bool) -> TestResult {
    let mut g = Guest::at(Mode::Long, routine)?;
    let e = g.cpu.run()?;
    check_emulation_failure(&e, &[0xd9, 0x9b, 0x00, 0x03, 0x00, 0x00], MMIO_ADDR + 0x300)?;
    eq_hex("rip at the failing instruction", g.cpu.regs()?.rip, g.sym("emul_fail_x87_insn")?)?;
    if resume {
        g.cpu.expect(Exit::out1(PORT_EXC, 6))?;
        g.cpu.expect_hlt()?;
    }
    Ok(())
}

/// CMPXCHG16B on MMIO: KVM reads the 16-byte operand (two 8-byte reads),
/// then cannot execute it: KVM_EXIT_INTERNAL_ERROR (emulation).
fn cmpxchg16b() -> TestResult {
    let mut g = Guest::at(Mode::Long, "emul_fail_cmpxchg16b")?;
    let a = MMIO_ADDR + 0x310;
    let insn = [0x48, 0x0f, 0xc7, 0x8b, 0x10, 0x03, 0x00, 0x00];
    let mut e = g.cpu.run()?;
    let mut reads = Vec::new();
    while let Exit::Mmio { write: false, addr, len, .. } = e {
        reads.push((addr, len));
        if reads.len() > 2 {
            break;
        }
        g.cpu.respond(&vec![0u8; len as usize])?;
        e = g.cpu.run()?;
    }
    expect_eq("MMIO reads before the failure (addr, len)", reads, vec![(a, 8), (a + 8, 8)])?;
    check_emulation_failure(&e, &insn, a)
}
