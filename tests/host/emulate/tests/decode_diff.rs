//! Differential decode against iced-x86: same validity, same length, same
//! mnemonic class and same operands, over random and structured byte
//! sequences in 16-, 32- and 64-bit code.
//!
//! `RKVM_DECODE_N` scales the number of sequences per mode (default 500000
//! random + 500000 structured).

mod common;

use common::Rng;
use iced_x86::{Decoder, DecoderError, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use rkvm_emulate::emulate::decode::{decode, CodeSize, DecodeError, SliceSource};
use rkvm_emulate::emulate::insn::{Insn, MemRef, Op, Operand};
use rkvm_emulate::emulate::regs::SegReg;

const IP: u64 = 0x7000_1000;

fn reg_name(reg: u8, size: u8, high8: bool) -> String {
    const B8: [&str; 16] = [
        "AL", "CL", "DL", "BL", "SPL", "BPL", "SIL", "DIL", "R8L", "R9L", "R10L", "R11L", "R12L",
        "R13L", "R14L", "R15L",
    ];
    const H8: [&str; 4] = ["AH", "CH", "DH", "BH"];
    const W: [&str; 16] = [
        "AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI", "R8W", "R9W", "R10W", "R11W", "R12W",
        "R13W", "R14W", "R15W",
    ];
    const D: [&str; 16] = [
        "EAX", "ECX", "EDX", "EBX", "ESP", "EBP", "ESI", "EDI", "R8D", "R9D", "R10D", "R11D",
        "R12D", "R13D", "R14D", "R15D",
    ];
    const Q: [&str; 16] = [
        "RAX", "RCX", "RDX", "RBX", "RSP", "RBP", "RSI", "RDI", "R8", "R9", "R10", "R11", "R12",
        "R13", "R14", "R15",
    ];
    let r = usize::from(reg);
    match (size, high8) {
        (1, true) => H8[r].into(),
        (1, false) => B8[r].into(),
        (2, _) => W[r].into(),
        (4, _) => D[r].into(),
        _ => Q[r].into(),
    }
}

fn areg_name(reg: u8, adsize: u8) -> String {
    reg_name(reg, adsize, false)
}

fn seg_name(s: SegReg) -> &'static str {
    match s {
        SegReg::Es => "ES",
        SegReg::Cs => "CS",
        SegReg::Ss => "SS",
        SegReg::Ds => "DS",
        SegReg::Fs => "FS",
        SegReg::Gs => "GS",
        _ => "?",
    }
}

fn iced_reg(r: Register) -> String {
    format!("{:?}", r).to_uppercase()
}

fn mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// Acceptable iced mnemonics for one of our ops.
fn mnemonics(op: Op) -> &'static [&'static str] {
    match op {
        Op::MovToCr
        | Op::MovFromCr
        | Op::MovToDr
        | Op::MovFromDr
        | Op::MovToSeg
        | Op::MovFromSeg => &["Mov"],
        Op::Cmpxchg8b => &["Cmpxchg8b", "Cmpxchg16b"],
        Op::Cmovcc => &[
            "Cmovo", "Cmovno", "Cmovb", "Cmovae", "Cmove", "Cmovne", "Cmovbe", "Cmova", "Cmovs",
            "Cmovns", "Cmovp", "Cmovnp", "Cmovl", "Cmovge", "Cmovle", "Cmovg",
        ],
        Op::Setcc => &[
            "Seto", "Setno", "Setb", "Setae", "Sete", "Setne", "Setbe", "Seta", "Sets", "Setns",
            "Setp", "Setnp", "Setl", "Setge", "Setle", "Setg",
        ],
        Op::Jcc => &[
            "Jo", "Jno", "Jb", "Jae", "Je", "Jne", "Jbe", "Ja", "Js", "Jns", "Jp", "Jnp", "Jl",
            "Jge", "Jle", "Jg",
        ],
        Op::SseMov => &[
            "Movups", "Movupd", "Movaps", "Movapd", "Movntps", "Movntpd", "Movdqa", "Movdqu",
            "Movntdq", "Movntdqa",
        ],
        Op::MmxMov => &["Movq"],
        Op::AvxMov => &[
            "Vmovups",
            "Vmovupd",
            "Vmovaps",
            "Vmovapd",
            "Vmovntps",
            "Vmovntpd",
            "Vmovdqa",
            "Vmovdqu",
            "Vmovntdq",
            "Vmovntdqa",
        ],
        Op::Movs => &["Movsb", "Movsw", "Movsd", "Movsq"],
        Op::Cmps => &["Cmpsb", "Cmpsw", "Cmpsd", "Cmpsq"],
        Op::Stos => &["Stosb", "Stosw", "Stosd", "Stosq"],
        Op::Lods => &["Lodsb", "Lodsw", "Lodsd", "Lodsq"],
        Op::Scas => &["Scasb", "Scasw", "Scasd", "Scasq"],
        Op::Ins => &["Insb", "Insw", "Insd"],
        Op::Outs => &["Outsb", "Outsw", "Outsd"],
        Op::Imul1 => &["Imul"],
        Op::Shl => &["Shl", "Sal"],
        Op::Cbw => &["Cbw", "Cwde", "Cdqe"],
        Op::Cwd => &["Cwd", "Cdq", "Cqo"],
        Op::Pushf => &["Pushf", "Pushfd", "Pushfq"],
        Op::Popf => &["Popf", "Popfd", "Popfq"],
        Op::Pusha => &["Pusha", "Pushad"],
        Op::Popa => &["Popa", "Popad"],
        Op::Jmp | Op::JmpInd | Op::JmpFar => &["Jmp"],
        Op::Call | Op::CallInd | Op::CallFar => &["Call"],
        Op::RetFar => &["Retf"],
        Op::Jcxz => &["Jcxz", "Jecxz", "Jrcxz"],
        Op::Iret => &["Iret", "Iretd", "Iretq"],
        Op::Xlat => &["Xlatb"],
        Op::Lseg => &["Lds", "Les", "Lfs", "Lgs", "Lss"],
        Op::Nop => &[
            "Nop",
            "Prefetchnta",
            "Prefetcht0",
            "Prefetcht1",
            "Prefetcht2",
            "Prefetch",
            "Prefetchw",
            "Prefetchwt1",
        ],
        Op::Ud => &["Ud0", "Ud1", "Ud2"],
        Op::Movnti => &["Movnti"],
        Op::Wbinvd => &["Wbinvd", "Wbnoinvd"],
        _ => &[],
    }
}

fn mnemonic_ok(op: Op, m: Mnemonic) -> bool {
    let name = format!("{:?}", m);
    let list = mnemonics(op);
    if list.is_empty() {
        name == format!("{:?}", op)
    } else {
        list.contains(&name.as_str())
    }
}

/// Compare one of our explicit operands with iced operand `k`.
fn cmp_operand(
    o: &Operand,
    insn: &Insn,
    ii: &Instruction,
    k: u32,
    bits: u32,
) -> Result<(), String> {
    let kind = ii.op_kind(k);
    match *o {
        Operand::Reg { reg, size, high8 } => {
            if kind != OpKind::Register {
                return Err(format!("op{k}: want reg, iced {:?}", kind));
            }
            let want = reg_name(reg, size, high8);
            let got = iced_reg(ii.op_register(k));
            if want != got {
                return Err(format!("op{k}: reg {want} vs {got}"));
            }
        }
        Operand::Seg(s) => {
            let got = iced_reg(ii.op_register(k));
            if kind != OpKind::Register || got != seg_name(s) {
                return Err(format!("op{k}: seg {:?} vs {got}", s));
            }
        }
        Operand::Cr(n) => {
            let got = iced_reg(ii.op_register(k));
            if got != format!("CR{n}") {
                return Err(format!("op{k}: CR{n} vs {got}"));
            }
        }
        Operand::Dr(n) => {
            let got = iced_reg(ii.op_register(k));
            if got != format!("DR{n}") {
                return Err(format!("op{k}: DR{n} vs {got}"));
            }
        }
        Operand::Xmm(n) => {
            let got = iced_reg(ii.op_register(k));
            if got != format!("XMM{n}") {
                return Err(format!("op{k}: XMM{n} vs {got}"));
            }
        }
        Operand::Ymm(n) => {
            let got = iced_reg(ii.op_register(k));
            if got != format!("YMM{n}") {
                return Err(format!("op{k}: YMM{n} vs {got}"));
            }
        }
        Operand::Mm(n) => {
            let got = iced_reg(ii.op_register(k));
            if got != format!("MM{n}") {
                return Err(format!("op{k}: MM{n} vs {got}"));
            }
        }
        Operand::Mem { mem, size } => {
            if kind != OpKind::Memory {
                return Err(format!("op{k}: want mem, iced {:?}", kind));
            }
            cmp_mem(&mem, size, insn, ii, bits)?;
        }
        Operand::Imm { val, size } => match kind {
            OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => {
                let next = IP.wrapping_add(u64::from(insn.len));
                let want = next.wrapping_add(val) & mask(insn.opsize);
                if want != ii.near_branch_target() {
                    return Err(format!(
                        "op{k}: target {want:#x} vs {:#x}",
                        ii.near_branch_target()
                    ));
                }
            }
            OpKind::Immediate8
            | OpKind::Immediate8_2nd
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64 => {
                let m = mask(size);
                if val & m != ii.immediate(k) & m {
                    return Err(format!("op{k}: imm {val:#x} vs {:#x}", ii.immediate(k)));
                }
            }
            _ => return Err(format!("op{k}: want imm, iced {:?}", kind)),
        },
        Operand::Far { sel, off } => {
            let (isel, ioff) = match kind {
                OpKind::FarBranch16 => (ii.far_branch_selector(), u64::from(ii.far_branch16())),
                OpKind::FarBranch32 => (ii.far_branch_selector(), u64::from(ii.far_branch32())),
                _ => return Err(format!("op{k}: want far, iced {:?}", kind)),
            };
            if isel != sel || ioff != off {
                return Err(format!(
                    "op{k}: far {sel:#x}:{off:#x} vs {isel:#x}:{ioff:#x}"
                ));
            }
        }
        Operand::None => return Err(format!("op{k}: none")),
    }
    Ok(())
}

fn cmp_mem(m: &MemRef, size: u8, insn: &Insn, ii: &Instruction, bits: u32) -> Result<(), String> {
    let ad = insn.adsize;
    let base = if m.rip_rel {
        if ad == 8 {
            "RIP".to_string()
        } else {
            "EIP".to_string()
        }
    } else {
        m.base
            .map(|b| areg_name(b, ad))
            .unwrap_or_else(|| "NONE".into())
    };
    let ib = iced_reg(ii.memory_base());
    if base != ib {
        return Err(format!("mem base {base} vs {ib}"));
    }
    let index = m
        .index
        .map(|b| areg_name(b, ad))
        .unwrap_or_else(|| "NONE".into());
    let ix = iced_reg(ii.memory_index());
    if index != ix {
        return Err(format!("mem index {index} vs {ix}"));
    }
    if m.index.is_some() && u32::from(m.scale) != ii.memory_index_scale() {
        return Err(format!(
            "mem scale {} vs {}",
            m.scale,
            ii.memory_index_scale()
        ));
    }
    let disp = if m.rip_rel {
        IP.wrapping_add(u64::from(insn.len)).wrapping_add(m.disp) & mask(ad)
    } else {
        m.disp & mask(ad)
    };
    if disp != ii.memory_displacement64() & mask(ad) {
        return Err(format!(
            "mem disp {disp:#x} vs {:#x}",
            ii.memory_displacement64()
        ));
    }
    // In 64-bit mode only FS/GS overrides matter; iced keeps the prefix.
    let iseg = iced_reg(ii.memory_segment());
    let want = seg_name(m.seg);
    if want != iseg && !(bits == 64 && matches!(iseg.as_str(), "ES" | "CS" | "SS" | "DS")) {
        return Err(format!("mem seg {want} vs {iseg}"));
    }
    let check_size = !matches!(
        insn.op,
        Op::Lea
            | Op::Nop
            | Op::Invlpg
            | Op::Lgdt
            | Op::Lidt
            | Op::Sgdt
            | Op::Sidt
            | Op::Ud
            | Op::JmpFar
            | Op::CallFar
    );
    let isz = ii.memory_size().size();
    if check_size && isz != usize::from(size) {
        return Err(format!("mem size {size} vs {isz}"));
    }
    Ok(())
}

fn explicit_operands(insn: &Insn) -> Vec<Operand> {
    let mut v = Vec::new();
    for o in [insn.dst, insn.src, insn.src2] {
        if !matches!(o, Operand::None) {
            v.push(o);
        }
    }
    if insn.op == Op::Lseg {
        v.truncate(2);
    }
    v
}

#[derive(Default, Debug)]
struct Stats {
    compared: u64,
    unsupported: u64,
    both_invalid: u64,
    mismatches: u64,
}

fn compare(bytes: &[u8], code: CodeSize, st: &mut Stats, report: &mut Vec<String>) {
    let bits = match code {
        CodeSize::Bits16 => 16,
        CodeSize::Bits32 => 32,
        CodeSize::Bits64 => 64,
    };
    let mut d = Decoder::with_ip(bits, bytes, IP, DecoderOptions::NONE);
    let ii = d.decode();
    let ierr = d.last_error();
    let iced_valid = ierr == DecoderError::None;
    let ours = decode(&mut SliceSource(bytes), code);
    let res: Result<(), String> = match &ours {
        Err(DecodeError::Unsupported) => {
            st.unsupported += 1;
            return;
        }
        Err(DecodeError::Invalid) => {
            if iced_valid {
                Err(format!("we say #UD, iced says {} ({:?})", ii, ii.code()))
            } else {
                st.both_invalid += 1;
                Ok(())
            }
        }
        Err(DecodeError::TooLong) => {
            if !iced_valid {
                st.both_invalid += 1;
                Ok(())
            } else {
                Err(format!("we say too long, iced says {}", ii))
            }
        }
        Err(DecodeError::Fetch(_)) => Err("ran out of bytes".into()),
        Ok(insn) => {
            if !iced_valid {
                Err(format!(
                    "we decode {:?} (len {}), iced says invalid ({:?})",
                    insn.op, insn.len, ierr
                ))
            } else if ii.len() != usize::from(insn.len) {
                Err(format!(
                    "length {} vs iced {} ({}) op {:?}",
                    insn.len,
                    ii.len(),
                    ii,
                    insn.op
                ))
            } else if !mnemonic_ok(insn.op, ii.mnemonic()) {
                Err(format!(
                    "mnemonic {:?} vs iced {:?} ({})",
                    insn.op,
                    ii.mnemonic(),
                    ii
                ))
            } else if matches!(
                insn.op,
                Op::Movs
                    | Op::Cmps
                    | Op::Stos
                    | Op::Lods
                    | Op::Scas
                    | Op::Ins
                    | Op::Outs
                    | Op::Xlat
            ) {
                Ok(())
            } else {
                let ops = explicit_operands(insn);
                if ops.len() as u32 != ii.op_count() {
                    Err(format!(
                        "operand count {} vs iced {} ({}) {:?}",
                        ops.len(),
                        ii.op_count(),
                        ii,
                        insn
                    ))
                } else {
                    ops.iter()
                        .enumerate()
                        .try_for_each(|(k, o)| cmp_operand(o, insn, &ii, k as u32, bits))
                        .map_err(|e| format!("{e} in `{}` {:?}", ii, insn.op))
                }
            }
        }
    };
    st.compared += 1;
    if let Err(e) = res {
        st.mismatches += 1;
        if report.len() < 400 {
            report.push(format!(
                "[{bits}] {:02x?}: {e}",
                &bytes[..16.min(bytes.len())]
            ));
        }
    }
}

/// Opcodes we implement, to steer structured generation.
const ONE_BYTE: &[u8] = &[
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x10,
    0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
    0x21, 0x22, 0x23, 0x24, 0x25, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x30, 0x31, 0x32, 0x33, 0x34,
    0x35, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x40, 0x48, 0x50, 0x57, 0x58, 0x5f, 0x60, 0x61, 0x63,
    0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x75, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84,
    0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x97, 0x98, 0x99,
    0x9a, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa,
    0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb7, 0xb8, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
    0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd7, 0xe0, 0xe1,
    0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef, 0xf1, 0xf4,
    0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
];
const TWO_BYTE: &[u8] = &[
    0x00, 0x01, 0x06, 0x08, 0x09, 0x0b, 0x0d, 0x10, 0x11, 0x18, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x28,
    0x29, 0x2b, 0x30, 0x31, 0x32, 0x40, 0x45, 0x4f, 0x6f, 0x7f, 0x80, 0x84, 0x8f, 0x90, 0x94, 0x9f,
    0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa8, 0xa9, 0xab, 0xac, 0xad, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3,
    0xb4, 0xb5, 0xb6, 0xb7, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0, 0xc1, 0xc3, 0xc7, 0xc8,
    0xcf, 0xe7, 0x38,
];
const PREFIXES: &[u8] = &[
    0x66, 0x67, 0xf0, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65,
];

fn structured(rng: &mut Rng, long: bool, buf: &mut [u8; 20]) {
    for b in buf.iter_mut() {
        *b = rng.next() as u8;
    }
    let mut p = 0;
    let npfx = match rng.below(10) {
        0..=4 => 0,
        5..=7 => 1,
        8 => 2,
        _ => 1 + rng.below(5) as usize,
    };
    for _ in 0..npfx {
        buf[p] = rng.pick(PREFIXES);
        p += 1;
    }
    if long && rng.chance(1, 2) {
        buf[p] = 0x40 | rng.below(16) as u8;
        p += 1;
    }
    if rng.chance(1, 3) {
        buf[p] = 0x0f;
        buf[p + 1] = rng.pick(TWO_BYTE);
        p += 2;
    } else {
        buf[p] = rng.pick(ONE_BYTE);
        p += 1;
    }
    // Bias the ModRM byte: register forms, SIB and disp32 forms.
    match rng.below(4) {
        0 => buf[p] |= 0xC0,
        1 => buf[p] = (buf[p] & 0x38) | 0x04 | (rng.below(3) as u8) << 6,
        2 => buf[p] = (buf[p] & 0x38) | 0x05,
        _ => {}
    }
}

#[test]
fn decode_differential_vs_iced() {
    let n: u64 = std::env::var("RKVM_DECODE_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    let mut rng = Rng::new(0x5eed_dec0de);
    let mut st = Stats::default();
    let mut report = Vec::new();
    let mut buf = [0u8; 20];
    for code in [CodeSize::Bits16, CodeSize::Bits32, CodeSize::Bits64] {
        for _ in 0..n {
            for b in buf.iter_mut() {
                *b = rng.next() as u8;
            }
            compare(&buf, code, &mut st, &mut report);
            structured(&mut rng, code == CodeSize::Bits64, &mut buf);
            compare(&buf, code, &mut st, &mut report);
        }
    }
    // Exhaustive: every one- and two-byte opcode with every ModRM byte.
    for code in [CodeSize::Bits16, CodeSize::Bits32, CodeSize::Bits64] {
        for op in 0..=255u8 {
            for modrm in 0..=255u8 {
                let mut b = [0u8; 20];
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (i as u8).wrapping_mul(37).wrapping_add(op);
                }
                b[0] = op;
                b[1] = modrm;
                compare(&b, code, &mut st, &mut report);
                b[0] = 0x0f;
                b[1] = op;
                b[2] = modrm;
                compare(&b, code, &mut st, &mut report);
                for pfx in [0x66u8, 0xf3, 0xf2] {
                    b[0] = pfx;
                    b[1] = 0x0f;
                    b[2] = op;
                    b[3] = modrm;
                    compare(&b, code, &mut st, &mut report);
                }
            }
        }
    }
    for r in &report {
        println!("{r}");
    }
    println!(
        "decodes compared: {}, mismatches: {} (both invalid: {}, not emulated/skipped: {})",
        st.compared, st.mismatches, st.both_invalid, st.unsupported
    );
    assert_eq!(st.mismatches, 0, "decode mismatches against iced-x86");
}

/// A VEX-encoded instruction: `vex2` picks C5 (only map 1, W = 0, X = B = 0).
#[allow(clippy::too_many_arguments)]
fn vex_bytes(vex2: bool, rxb: u8, w: bool, map: u8, vvvv: u8, l: bool, pp: u8, op: u8) -> Vec<u8> {
    let tail = (u8::from(w) << 7) | ((!vvvv & 0xF) << 3) | (u8::from(l) << 2) | (pp & 3);
    if vex2 {
        vec![0xC5, ((!rxb & 4) << 5) | (tail & 0x7F), op]
    } else {
        vec![0xC4, ((!rxb & 7) << 5) | (map & 0x1F), tail, op]
    }
}

/// VEX (C4/C5, all maps, pp, L, vvvv, RXB, W) and the 0F 38 map against
/// iced-x86, over every opcode of maps 1 and 2 and a spread of ModRM forms.
#[test]
fn decode_vex_differential_vs_iced() {
    const MODRMS: [u8; 14] = [
        0x00, 0x04, 0x05, 0x07, 0x0C, 0x3D, 0x44, 0x45, 0x84, 0x8F, 0xC0, 0xC9, 0xF8, 0xFF,
    ];
    const PREFIXES: [&[u8]; 12] = [
        &[],
        &[],
        &[],
        &[],
        &[0x66],
        &[0xF3],
        &[0xF2],
        &[0xF0],
        &[0x2E],
        &[0x67],
        &[0x64, 0x67],
        &[0x48],
    ];
    let mut rng = Rng::new(0x7e7_dec0de);
    let mut st = Stats::default();
    let mut report = Vec::new();
    for code in [CodeSize::Bits16, CodeSize::Bits32, CodeSize::Bits64] {
        let long = code == CodeSize::Bits64;
        for map in 0..=31u8 {
            let ops: Vec<u8> = if map == 1 || map == 2 {
                (0..=255).collect()
            } else {
                vec![0x10, 0x2A, 0x6F, 0xE7]
            };
            for op in ops {
                for pp in 0..4u8 {
                    for l in [false, true] {
                        for k in 0..4 {
                            let vex2 = map == 1 && rng.chance(1, 2);
                            let mut rxb = if long { rng.below(8) as u8 } else { 0 };
                            if k == 0 {
                                rxb = 0;
                            } else if !long && rng.chance(1, 8) {
                                rxb = 1; // VEX.B outside 64-bit mode
                            }
                            let w = !vex2 && rng.chance(1, 4);
                            let vvvv = if k < 2 || rng.chance(3, 4) {
                                0
                            } else {
                                rng.below(16) as u8
                            };
                            let mut b: Vec<u8> = if k == 3 {
                                rng.pick(&PREFIXES).to_vec()
                            } else {
                                Vec::new()
                            };
                            b.extend(vex_bytes(vex2, rxb, w, map, vvvv, l, pp, op));
                            b.push(if k == 0 {
                                MODRMS[(op as usize + pp as usize) % MODRMS.len()]
                            } else {
                                rng.pick(&MODRMS)
                            });
                            while b.len() < 20 {
                                b.push(rng.next() as u8);
                            }
                            compare(&b, code, &mut st, &mut report);
                        }
                    }
                }
            }
        }
        // C4/C5 with every second byte (LES/LDS or VEX) and the 0F 38 map.
        for first in [0xC4u8, 0xC5] {
            for second in 0..=255u8 {
                let mut b = vec![first, second];
                while b.len() < 20 {
                    b.push(rng.next() as u8);
                }
                compare(&b, code, &mut st, &mut report);
            }
        }
        for pfx in [
            &[][..],
            &[0x66],
            &[0xF3],
            &[0xF2],
            &[0x66, 0xF2],
            &[0xF0, 0x66],
        ] {
            for op in 0..=255u8 {
                for modrm in MODRMS {
                    let mut b = pfx.to_vec();
                    b.extend_from_slice(&[0x0F, 0x38, op, modrm]);
                    while b.len() < 20 {
                        b.push(rng.next() as u8);
                    }
                    compare(&b, code, &mut st, &mut report);
                }
            }
        }
    }
    for r in &report {
        println!("{r}");
    }
    println!(
        "VEX decodes compared: {}, mismatches: {} (both invalid: {}, not emulated/skipped: {})",
        st.compared, st.mismatches, st.both_invalid, st.unsupported
    );
    assert_eq!(st.mismatches, 0, "VEX decode mismatches against iced-x86");
}
