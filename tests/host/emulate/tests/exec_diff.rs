//! Differential execution against the host CPU: each generated instruction
//! runs natively (JIT stub in an executable page) and in the emulator with
//! the same registers, flags and scratch memory; registers, defined flags
//! and memory must agree. Flags the SDM leaves undefined are masked.
//!
//! `RKVM_EXEC_N` sets the number of cases (default 300000).
#![cfg(target_arch = "x86_64")]

mod common;
#[path = "../../skip.rs"]
mod skip;

use common::{Rng, TestCpu, TestMem, PTE_PWU};
use rkvm_emulate::defs::regs::{
    X86_CR4_OSXSAVE, X86_EFLAGS_AC, X86_EFLAGS_AF, X86_EFLAGS_ARITH, X86_EFLAGS_CF, X86_EFLAGS_DF,
    X86_EFLAGS_ID, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_NT, X86_EFLAGS_OF, X86_EFLAGS_PF,
    X86_EFLAGS_SF, X86_EFLAGS_TF, X86_EFLAGS_ZF,
};
use rkvm_emulate::emulate::{Emulator, Outcome};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct NState {
    gpr: [u64; 16],
    rflags: u64,
    _pad: u64,
    xmm: [u128; 16],
}

/// Offset of `NState::xmm`.
const XMM_OFF: u32 = 144;

const RSP: u8 = 4;
const SCRATCH_PAGES: usize = 4;
const SCRATCH_LEN: usize = SCRATCH_PAGES * 4096;
const CODE_RIP: u64 = 0x40_0000;

struct Jit {
    code: *mut u8,
    scratch: *mut u8,
}

fn mmap(len: usize, prot: i32, low: bool) -> *mut u8 {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | if low { libc::MAP_32BIT } else { 0 };
    // SAFETY: anonymous mapping, checked for failure.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
    assert_ne!(p, libc::MAP_FAILED, "mmap failed");
    p.cast()
}

impl Jit {
    fn new() -> Self {
        let code = mmap(
            4096,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            false,
        );
        let scratch = mmap(SCRATCH_LEN, libc::PROT_READ | libc::PROT_WRITE, true);
        Jit { code, scratch }
    }

    fn scratch_base(&self) -> u64 {
        self.scratch as u64
    }

    /// Run `insn` natively with the registers (including RSP) and flags of
    /// `st`. The host stack pointer and the state pointer live in a save
    /// area at the end of the code page, reached with absolute addressing,
    /// so the instruction may use RSP freely.
    fn run(&self, insn: &[u8], st: &mut NState) {
        let save = self.code as u64 + 4096 - 64;
        let mut c: Vec<u8> = Vec::new();
        // push rbx, rbp, r12-r15
        c.extend_from_slice(&[0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]);
        // movabs rax, save; mov [rax], rsp; mov [rax+8], rdi
        c.extend_from_slice(&[0x48, 0xB8]);
        c.extend_from_slice(&save.to_le_bytes());
        c.extend_from_slice(&[0x48, 0x89, 0x20, 0x48, 0x89, 0x78, 0x08]);
        // movdqu xmmN, [rdi+XMM_OFF+16*N]
        for n in 0..16u8 {
            c.push(0xF3);
            if n >= 8 {
                c.push(0x44);
            }
            c.extend_from_slice(&[0x0F, 0x6F, 0x80 | ((n & 7) << 3) | 7]);
            c.extend_from_slice(&(XMM_OFF + 16 * u32::from(n)).to_le_bytes());
        }
        // mov rax,[rdi+128]; push rax; popfq
        c.extend_from_slice(&[0x48, 0x8B, 0x87, 0x80, 0, 0, 0, 0x50, 0x9D]);
        for i in 0..16u8 {
            if i == 7 {
                continue;
            }
            c.push(0x48 | if i >= 8 { 4 } else { 0 });
            c.push(0x8B);
            c.push(0x80 | ((i & 7) << 3) | 7);
            c.extend_from_slice(&(u32::from(i) * 8).to_le_bytes());
        }
        c.extend_from_slice(&[0x48, 0x8B, 0xBF, 0x38, 0, 0, 0]);
        c.extend_from_slice(insn);
        // movabs [save+16], rax; movabs rax, [save+8]
        c.extend_from_slice(&[0x48, 0xA3]);
        c.extend_from_slice(&(save + 16).to_le_bytes());
        c.extend_from_slice(&[0x48, 0xA1]);
        c.extend_from_slice(&(save + 8).to_le_bytes());
        for i in 1..16u8 {
            c.push(0x48 | if i >= 8 { 4 } else { 0 });
            c.push(0x89);
            c.push(0x80 | ((i & 7) << 3));
            c.extend_from_slice(&(u32::from(i) * 8).to_le_bytes());
        }
        // movdqu [rax+XMM_OFF+16*N], xmmN
        for n in 0..16u8 {
            c.push(0xF3);
            if n >= 8 {
                c.push(0x44);
            }
            c.extend_from_slice(&[0x0F, 0x7F, 0x80 | ((n & 7) << 3)]);
            c.extend_from_slice(&(XMM_OFF + 16 * u32::from(n)).to_le_bytes());
        }
        // movabs rcx, save; mov rsp, [rcx]; mov rcx, [rcx+16]; mov [rax], rcx
        c.extend_from_slice(&[0x48, 0xB9]);
        c.extend_from_slice(&save.to_le_bytes());
        c.extend_from_slice(&[0x48, 0x8B, 0x21, 0x48, 0x8B, 0x49, 0x10, 0x48, 0x89, 0x08]);
        // pushfq; pop rcx; mov [rax+128], rcx; cld
        c.extend_from_slice(&[0x9C, 0x59, 0x48, 0x89, 0x88, 0x80, 0, 0, 0, 0xFC]);
        c.extend_from_slice(&[
            0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B, 0xC3,
        ]);
        assert!(c.len() < 4096 - 64);
        // SAFETY: the code page is ours and large enough; the stub restores
        // the callee-saved registers and the host stack pointer, and only
        // touches the state struct, the save area and the scratch area.
        unsafe {
            std::ptr::copy_nonoverlapping(c.as_ptr(), self.code, c.len());
            let f: extern "C" fn(*mut NState) = std::mem::transmute(self.code);
            f(st);
        }
    }

    fn scratch(&self) -> &mut [u8] {
        // SAFETY: mapping of SCRATCH_LEN bytes owned by this Jit.
        unsafe { std::slice::from_raw_parts_mut(self.scratch, SCRATCH_LEN) }
    }
}

/// A generated test case.
struct Case {
    bytes: Vec<u8>,
    st: NState,
    undef: u64,
    /// Skip comparing this GPR (undefined result).
    undef_reg: Option<u8>,
    desc: &'static str,
}

struct Gen<'a> {
    rng: &'a mut Rng,
    base: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Rm {
    Mem,
    Any,
}

impl Gen<'_> {
    fn pick_reg(&mut self, avoid: &[u8]) -> u8 {
        self.pick_reg_in(16, avoid)
    }

    fn pick_reg_in(&mut self, n: u64, avoid: &[u8]) -> u8 {
        loop {
            let r = self.rng.below(n) as u8;
            if r != RSP && !avoid.contains(&r) {
                return r;
            }
        }
    }

    /// Build prefix(es), opcode, ModRM(+SIB/disp) and set address registers.
    /// `reg` is the ModRM.reg value (register number or opcode extension).
    fn encode(
        &mut self,
        st: &mut NState,
        pfx: &[u8],
        opc: &[u8],
        reg_ext: Option<u8>,
        rm: Rm,
        byte: bool,
    ) -> (Vec<u8>, u8, Option<u8>) {
        let mut b = Vec::new();
        b.extend_from_slice(pfx);
        let mem = match rm {
            Rm::Mem => true,
            Rm::Any => self.rng.chance(1, 2),
        };
        let use_rex = self.rng.chance(1, 2);
        let wide = self.rng.chance(1, 2);
        let a32 = mem && self.rng.chance(1, 5);
        if a32 {
            b.insert(0, 0x67);
        }
        let mut rex = 0x40u8;
        if wide && !byte {
            rex |= 8;
        }
        // Registers.
        let (regnum, base, index) = {
            let r = match reg_ext {
                Some(e) => e,
                None => {
                    if byte && !use_rex {
                        self.rng.below(8) as u8 // AH..BH allowed without REX
                    } else {
                        self.pick_reg(&[])
                    }
                }
            };
            // Address registers: never RAX..RBX (tests overwrite those),
            // and below R8 when byte registers must stay REX-free.
            let lim = if byte && !use_rex { 8 } else { 16 };
            let base = self.pick_reg_in(lim, &[r, 0, 1, 2, 3]);
            let index = if self.rng.chance(1, 3) {
                Some(self.pick_reg_in(lim, &[r, base, 0, 1, 2, 3]))
            } else {
                None
            };
            (r, base, index)
        };
        if reg_ext.is_none() && regnum >= 8 {
            rex |= 4;
        }
        let (modrm, tail) = if !mem {
            let rmr = if byte && !use_rex {
                self.rng.below(8) as u8
            } else {
                self.pick_reg(&[])
            };
            if rmr >= 8 {
                rex |= 1;
            }
            (0xC0 | ((regnum & 7) << 3) | (rmr & 7), Vec::new())
        } else {
            let off = self.rng.below(4096);
            st.gpr[usize::from(base)] = self.base + 4096 + off;
            if a32 {
                st.gpr[usize::from(base)] |= self.rng.next() << 32;
            }
            if base >= 8 {
                rex |= 1;
            }
            let md = if self.rng.chance(1, 2) { 1 } else { 2 };
            let mut tail = Vec::new();
            let rmf;
            if let Some(ix) = index {
                rmf = 4;
                if ix >= 8 {
                    rex |= 2;
                }
                let ss = self.rng.below(4) as u8;
                st.gpr[usize::from(ix)] = self.rng.below(64);
                tail.push((ss << 6) | ((ix & 7) << 3) | (base & 7));
            } else if base & 7 == 4 {
                rmf = 4;
                tail.push(0x24 | (base & 7)); // SIB with no index
            } else {
                rmf = base & 7;
            }
            if md == 1 {
                tail.push(self.rng.next() as u8);
            } else {
                tail.extend_from_slice(&(self.rng.below(256) as u32).to_le_bytes());
            }
            ((md << 6) | ((regnum & 7) << 3) | rmf, tail)
        };
        // Without REX intent byte registers 4..7 are AH..BH; the address
        // registers were then chosen below R8 so no REX is forced.
        if rex != 0x40 || (use_rex && !byte) || (use_rex && byte) {
            b.push(rex);
        }
        b.extend_from_slice(opc);
        b.push(modrm);
        b.extend_from_slice(&tail);
        (b, regnum, index)
    }
}

fn rand_flags(rng: &mut Rng) -> u64 {
    let mut f = 0x2 | (rng.next() & X86_EFLAGS_ARITH);
    if rng.chance(1, 4) {
        f |= X86_EFLAGS_DF;
    }
    f
}

fn imm(rng: &mut Rng, n: usize) -> Vec<u8> {
    let v = rng.interesting();
    v.to_le_bytes()[..n].to_vec()
}

/// Size in bytes of the main operand given prefixes/REX (64-bit mode).
fn opsize_of(bytes: &[u8], byte: bool) -> u8 {
    if byte {
        return 1;
    }
    let mut p66 = false;
    let mut w = false;
    for &b in bytes {
        match b {
            0x66 => p66 = true,
            0x67 | 0xF0 | 0xF2 | 0xF3 | 0x2E | 0x3E | 0x26 | 0x36 | 0x64 | 0x65 => {}
            0x40..=0x4F => {
                w = b & 8 != 0;
                break;
            }
            _ => break,
        }
    }
    if w {
        8
    } else if p66 {
        2
    } else {
        4
    }
}

fn gen_case(rng: &mut Rng, base: u64) -> Option<Case> {
    let mut st = NState::default();
    for r in st.gpr.iter_mut() {
        *r = rng.interesting();
    }
    st.rflags = rand_flags(rng) | X86_EFLAGS_IF;
    // RSP always points into the scratch area (page 3).
    st.gpr[4] = base + 3 * 4096 + 2048;
    let group = rng.below(14);
    let mut g = Gen { rng, base };
    let p66: &[u8] = if g.rng.chance(1, 4) { &[0x66] } else { &[] };
    let case = match group {
        0 => {
            // ALU reg/mem forms 00..3B.
            let op = (g.rng.below(8) as u8) << 3 | g.rng.below(4) as u8;
            let byte = op & 1 == 0;
            let (b, _, _) = g.encode(&mut st, p66, &[op], None, Rm::Any, byte);
            let logic = matches!(op >> 3, 1 | 4 | 6);
            Case {
                bytes: b,
                st,
                undef: if logic { X86_EFLAGS_AF } else { 0 },
                undef_reg: None,
                desc: "alu r/m",
            }
        }
        1 => {
            // Group 1 with immediates 80/81/83, plus TEST F6/F7 /0.
            let opc = g.rng.pick(&[0x80u8, 0x81, 0x83, 0xF6, 0xF7]);
            let ext = if opc >= 0xF6 { 0 } else { g.rng.below(8) as u8 };
            let byte = opc == 0x80 || opc == 0xF6;
            let lock = opc < 0xF6 && ext != 7 && g.rng.chance(1, 4);
            let rm = if lock { Rm::Mem } else { Rm::Any };
            let mut pf = p66.to_vec();
            if lock {
                pf.insert(0, 0xF0);
            }
            let (mut b, _, _) = g.encode(&mut st, &pf, &[opc], Some(ext), rm, byte);
            let os = opsize_of(&b, byte);
            let n = match opc {
                0x80 | 0x83 | 0xF6 => 1,
                _ => usize::from(os.min(4)),
            };
            b.extend(imm(g.rng, n));
            let logic = opc >= 0xF6 || matches!(ext, 1 | 4 | 6);
            Case {
                bytes: b,
                st,
                undef: if logic { X86_EFLAGS_AF } else { 0 },
                undef_reg: None,
                desc: "alu imm",
            }
        }
        2 => {
            // Accumulator forms and INC/DEC/NOT/NEG.
            if g.rng.chance(1, 2) {
                let op = (g.rng.below(8) as u8) << 3 | (4 + g.rng.below(2) as u8);
                let op = if g.rng.chance(1, 8) {
                    0xA8 + (op & 1)
                } else {
                    op
                };
                let byte = op & 1 == 0;
                let mut b = p66.to_vec();
                if !byte && g.rng.chance(1, 2) {
                    b.push(0x48);
                }
                b.push(op);
                let os = opsize_of(&b, byte);
                b.extend(imm(g.rng, usize::from(os.min(4))));
                let logic = op >= 0xA8 || matches!(op >> 3, 1 | 4 | 6);
                Case {
                    bytes: b,
                    st,
                    undef: if logic { X86_EFLAGS_AF } else { 0 },
                    undef_reg: None,
                    desc: "alu acc",
                }
            } else {
                let (opc, ext) = g.rng.pick(&[
                    (0xF6u8, 2u8),
                    (0xF6, 3),
                    (0xF7, 2),
                    (0xF7, 3),
                    (0xFE, 0),
                    (0xFE, 1),
                    (0xFF, 0),
                    (0xFF, 1),
                ]);
                let byte = opc & 1 == 0;
                let lock = g.rng.chance(1, 4);
                let mut pf = p66.to_vec();
                if lock {
                    pf.insert(0, 0xF0);
                }
                let (b, _, _) = g.encode(
                    &mut st,
                    &pf,
                    &[opc],
                    Some(ext),
                    if lock { Rm::Mem } else { Rm::Any },
                    byte,
                );
                Case {
                    bytes: b,
                    st,
                    undef: 0,
                    undef_reg: None,
                    desc: "unary",
                }
            }
        }
        3 => {
            // MUL/IMUL/DIV/IDIV.
            let (opc, ext): (&[u8], Option<u8>) = g.rng.pick(&[
                (&[0xF6u8][..], Some(4u8)),
                (&[0xF7], Some(4)),
                (&[0xF6], Some(5)),
                (&[0xF7], Some(5)),
                (&[0x0F, 0xAF], None),
                (&[0x69], None),
                (&[0x6B], None),
                (&[0xF6], Some(6)),
                (&[0xF7], Some(6)),
                (&[0xF6], Some(7)),
                (&[0xF7], Some(7)),
            ]);
            let byte = opc[0] == 0xF6;
            let (mut b, _, _) = g.encode(&mut st, p66, opc, ext, Rm::Any, byte);
            let os = opsize_of(&b, byte);
            match opc[0] {
                0x69 => b.extend(imm(g.rng, usize::from(os.min(4)))),
                0x6B => b.extend(imm(g.rng, 1)),
                _ => {}
            }
            let div = matches!(ext, Some(6 | 7));
            if div {
                // Make the division small enough not to fault most times.
                if g.rng.chance(3, 4) {
                    st.gpr[2] = if g.rng.chance(1, 2) { 0 } else { u64::MAX };
                }
            }
            Case {
                bytes: b,
                st,
                undef: if div {
                    X86_EFLAGS_ARITH
                } else {
                    X86_EFLAGS_SF | X86_EFLAGS_ZF | X86_EFLAGS_AF | X86_EFLAGS_PF
                },
                undef_reg: None,
                desc: "muldiv",
            }
        }
        4 => {
            // Shifts and rotates.
            let opc = g.rng.pick(&[0xC0u8, 0xC1, 0xD0, 0xD1, 0xD2, 0xD3]);
            let ext = g.rng.below(8) as u8;
            let byte = opc & 1 == 0;
            let (mut b, _, _) = g.encode(&mut st, p66, &[opc], Some(ext), Rm::Any, byte);
            let os = opsize_of(&b, byte);
            let count = match opc {
                0xC0 | 0xC1 => {
                    let lim = if g.rng.chance(1, 2) { 8 } else { 256 };
                    let c = g.rng.below(lim) as u8;
                    b.push(c);
                    u64::from(c)
                }
                0xD0 | 0xD1 => 1,
                _ => {
                    if g.rng.chance(1, 2) {
                        st.gpr[1] = (st.gpr[1] & !0xFF) | g.rng.below(10);
                    }
                    st.gpr[1] & 0xFF
                }
            };
            let masked = count & if os == 8 { 63 } else { 31 };
            let bits = u64::from(os) * 8;
            let mut undef = 0;
            if masked != 0 {
                if ext < 4 {
                    if masked > 1 {
                        undef |= X86_EFLAGS_OF;
                    }
                } else {
                    undef |= X86_EFLAGS_AF;
                    if masked > 1 {
                        undef |= X86_EFLAGS_OF;
                    }
                    if masked >= bits && ext != 7 {
                        undef |= X86_EFLAGS_CF;
                    }
                }
            }
            Case {
                bytes: b,
                st,
                undef,
                undef_reg: None,
                desc: "shift",
            }
        }
        5 => {
            // SHLD/SHRD.
            let opc = g.rng.pick(&[0xA4u8, 0xA5, 0xAC, 0xAD]);
            let (mut b, _, _) = g.encode(&mut st, p66, &[0x0F, opc], None, Rm::Any, false);
            let os = opsize_of(&b, false);
            let count = if opc & 1 == 0 {
                let lim = if g.rng.chance(1, 2) { 20 } else { 256 };
                let c = g.rng.below(lim) as u8;
                b.push(c);
                u64::from(c)
            } else {
                st.gpr[1] & 0xFF
            };
            let masked = count & if os == 8 { 63 } else { 31 };
            if masked > u64::from(os) * 8 {
                return None; // result undefined
            }
            let mut undef = 0;
            if masked != 0 {
                undef |= X86_EFLAGS_AF;
                if masked > 1 {
                    undef |= X86_EFLAGS_OF;
                }
            }
            Case {
                bytes: b,
                st,
                undef,
                undef_reg: None,
                desc: "shld/shrd",
            }
        }
        6 => {
            // BT/BTS/BTR/BTC reg/mem with register or immediate offset.
            let imm_form = g.rng.chance(1, 2);
            let lock = g.rng.chance(1, 5);
            let mut pf = p66.to_vec();
            if lock {
                pf.insert(0, 0xF0);
            }
            let rm = if lock { Rm::Mem } else { Rm::Any };
            let (b, desc) = if imm_form {
                let ext = 4 + g.rng.below(4) as u8;
                if lock && ext == 4 {
                    return None;
                }
                let (mut b, _, _) = g.encode(&mut st, &pf, &[0x0F, 0xBA], Some(ext), rm, false);
                b.push(g.rng.next() as u8);
                (b, "bt imm")
            } else {
                let opc = g.rng.pick(&[0xA3u8, 0xAB, 0xB3, 0xBB]);
                if lock && opc == 0xA3 {
                    return None;
                }
                let (b, reg, _) = g.encode(&mut st, &pf, &[0x0F, opc], None, rm, false);
                // Keep bit-string offsets near the base.
                let off = g.rng.below(512) as i64 - 256;
                let os = opsize_of(&b, false);
                let keep = match os {
                    2 => !0xFFFF,
                    4 => !0xFFFF_FFFF,
                    _ => 0,
                };
                // Bits above the operand size are ignored: keep them random.
                st.gpr[usize::from(reg)] = (st.gpr[usize::from(reg)] & keep) | (off as u64 & !keep);
                (b, "bt reg")
            };
            Case {
                bytes: b,
                st,
                undef: X86_EFLAGS_OF | X86_EFLAGS_SF | X86_EFLAGS_AF | X86_EFLAGS_PF,
                undef_reg: None,
                desc,
            }
        }
        7 => {
            // BSF/BSR, MOVZX/MOVSX, MOVSXD, CMOVcc, SETcc, BSWAP, XCHG, XADD, CMPXCHG.
            let k = g.rng.below(9);
            match k {
                0 => {
                    let opc = g.rng.pick(&[0xBCu8, 0xBD]);
                    let (b, reg, _) = g.encode(&mut st, p66, &[0x0F, opc], None, Rm::Any, false);
                    if g.rng.chance(1, 4) {
                        // zero source sometimes: dest "undefined" (unchanged on AMD)
                    }
                    Case {
                        bytes: b,
                        st,
                        undef: X86_EFLAGS_CF
                            | X86_EFLAGS_OF
                            | X86_EFLAGS_SF
                            | X86_EFLAGS_AF
                            | X86_EFLAGS_PF,
                        undef_reg: Some(reg).filter(|_| false),
                        desc: "bsf/bsr",
                    }
                }
                1 => {
                    let opc = g.rng.pick(&[0xB6u8, 0xB7, 0xBE, 0xBF]);
                    let (b, _, _) = g.encode(&mut st, p66, &[0x0F, opc], None, Rm::Any, false);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "movzx/movsx",
                    }
                }
                2 => {
                    let (b, _, _) = g.encode(&mut st, p66, &[0x63], None, Rm::Any, false);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "movsxd",
                    }
                }
                3 => {
                    let cc = g.rng.below(16) as u8;
                    let (b, _, _) =
                        g.encode(&mut st, p66, &[0x0F, 0x40 + cc], None, Rm::Any, false);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "cmovcc",
                    }
                }
                4 => {
                    let cc = g.rng.below(16) as u8;
                    let (b, _, _) =
                        g.encode(&mut st, &[], &[0x0F, 0x90 + cc], Some(0), Rm::Any, true);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "setcc",
                    }
                }
                5 => {
                    let r = g.pick_reg(&[]);
                    let mut b = Vec::new();
                    let w = g.rng.chance(1, 2);
                    if w || r >= 8 {
                        b.push(0x40 | if w { 8 } else { 0 } | if r >= 8 { 1 } else { 0 });
                    }
                    b.extend_from_slice(&[0x0F, 0xC8 + (r & 7)]);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "bswap",
                    }
                }
                6 => {
                    let opc = g.rng.pick(&[0x86u8, 0x87]);
                    let (b, _, _) = g.encode(&mut st, p66, &[opc], None, Rm::Any, opc == 0x86);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "xchg",
                    }
                }
                7 => {
                    let opc = g.rng.pick(&[0xC0u8, 0xC1]);
                    let lock = g.rng.chance(1, 3);
                    let mut pf = p66.to_vec();
                    if lock {
                        pf.insert(0, 0xF0);
                    }
                    let (b, _, _) = g.encode(
                        &mut st,
                        &pf,
                        &[0x0F, opc],
                        None,
                        if lock { Rm::Mem } else { Rm::Any },
                        opc == 0xC0,
                    );
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "xadd",
                    }
                }
                _ => {
                    let opc = g.rng.pick(&[0xB0u8, 0xB1]);
                    let lock = g.rng.chance(1, 3);
                    let mut pf = p66.to_vec();
                    if lock {
                        pf.insert(0, 0xF0);
                    }
                    let (b, _, _) = g.encode(
                        &mut st,
                        &pf,
                        &[0x0F, opc],
                        None,
                        if lock { Rm::Mem } else { Rm::Any },
                        opc == 0xB0,
                    );
                    if g.rng.chance(1, 2) {
                        st.gpr[0] = st.gpr[3]; // often equal
                    }
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "cmpxchg",
                    }
                }
            }
        }
        8 => {
            // MOV forms, LEA.
            let k = g.rng.below(5);
            match k {
                0 => {
                    let opc = g.rng.pick(&[0x88u8, 0x89, 0x8A, 0x8B]);
                    let (b, _, _) = g.encode(&mut st, p66, &[opc], None, Rm::Any, opc & 1 == 0);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "mov",
                    }
                }
                1 => {
                    let opc = g.rng.pick(&[0xC6u8, 0xC7]);
                    let (mut b, _, _) =
                        g.encode(&mut st, p66, &[opc], Some(0), Rm::Any, opc == 0xC6);
                    let os = opsize_of(&b, opc == 0xC6);
                    b.extend(imm(g.rng, usize::from(os.min(4))));
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "mov imm",
                    }
                }
                2 => {
                    let (b, _, _) = g.encode(&mut st, p66, &[0x8D], None, Rm::Mem, false);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "lea",
                    }
                }
                3 => {
                    let r = g.pick_reg(&[]);
                    let w = g.rng.chance(1, 2);
                    let mut b = p66.to_vec();
                    if w || r >= 8 {
                        b.push(0x40 | if w { 8 } else { 0 } | if r >= 8 { 1 } else { 0 });
                    }
                    b.push(0xB8 + (r & 7));
                    let os = opsize_of(&b, false);
                    b.extend(imm(g.rng, usize::from(os)));
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "mov r,imm",
                    }
                }
                _ => {
                    let op = g
                        .rng
                        .pick(&[0x98u8, 0x99, 0x9E, 0x9F, 0xF5, 0xF8, 0xF9, 0xFC, 0xFD]);
                    let mut b = p66.to_vec();
                    if g.rng.chance(1, 2) && op <= 0x99 {
                        b.push(0x48);
                    }
                    b.push(op);
                    Case {
                        bytes: b,
                        st,
                        undef: 0,
                        undef_reg: None,
                        desc: "misc flags",
                    }
                }
            }
        }
        9 | 10 => {
            // String instructions.
            let op = g
                .rng
                .pick(&[0xA4u8, 0xA5, 0xA6, 0xA7, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF]);
            let mut b = Vec::new();
            let a32 = g.rng.chance(1, 4);
            if a32 {
                b.push(0x67);
            }
            match g.rng.below(4) {
                0 => {}
                1 => b.push(0xF3),
                2 => b.push(0xF2),
                _ => b.push(0xF3),
            }
            if g.rng.chance(1, 4) {
                b.push(0x66);
            }
            if op & 1 == 1 && g.rng.chance(1, 3) {
                b.push(0x48);
            }
            b.push(op);
            st.gpr[1] = g.rng.below(24) | if a32 { g.rng.next() << 32 } else { 0 };
            let mid = g.base + 4096 + 2048;
            st.gpr[6] = mid + g.rng.below(1024) - 512;
            st.gpr[7] = mid + g.rng.below(1024) - 512;
            if a32 {
                st.gpr[6] |= g.rng.next() << 32;
                st.gpr[7] |= g.rng.next() << 32;
            }
            Case {
                bytes: b,
                st,
                undef: 0,
                undef_reg: None,
                desc: "string",
            }
        }
        12 => {
            // SSE moves (the MMIO-relevant forms) and MOVNTI.
            for x in st.xmm.iter_mut() {
                *x = u128::from(g.rng.next()) << 64 | u128::from(g.rng.next());
            }
            let forms: &[(u8, u8, Rm)] = &[
                (0x00, 0x10, Rm::Any),
                (0x66, 0x10, Rm::Any),
                (0xF3, 0x10, Rm::Any),
                (0xF2, 0x10, Rm::Any),
                (0x00, 0x11, Rm::Any),
                (0xF3, 0x11, Rm::Any),
                (0xF2, 0x11, Rm::Any),
                (0x00, 0x28, Rm::Any),
                (0x66, 0x29, Rm::Any),
                (0x00, 0x2B, Rm::Mem),
                (0x66, 0x6E, Rm::Any),
                (0x66, 0x7E, Rm::Any),
                (0xF3, 0x7E, Rm::Any),
                (0x66, 0xD6, Rm::Any),
                (0x66, 0x6F, Rm::Any),
                (0xF3, 0x6F, Rm::Any),
                (0x66, 0x7F, Rm::Any),
                (0xF3, 0x7F, Rm::Any),
                (0x66, 0xE7, Rm::Mem),
                (0x00, 0xC3, Rm::Mem),
            ];
            let (pfx, opc, rm) = g.rng.pick(forms);
            let pf: Vec<u8> = if pfx == 0 { vec![] } else { vec![pfx] };
            let (b, _, _) = g.encode(&mut st, &pf, &[0x0F, opc], None, rm, false);
            Case {
                bytes: b,
                st,
                undef: 0,
                undef_reg: None,
                desc: "sse",
            }
        }
        11 => {
            // Stack: PUSH/POP (register, immediate, memory incl. [rsp+d]),
            // PUSHF/POPF at CPL 3, LEAVE, ENTER.
            let sp = g.base + 4096 + 2048 + g.rng.below(64) * 8 - 256
                + if g.rng.chance(1, 8) {
                    g.rng.below(8)
                } else {
                    0
                };
            st.gpr[4] = sp;
            st.gpr[5] = g.base + 4096 + 1024 + g.rng.below(1024);
            let k = g.rng.below(9);
            let mut b = p66.to_vec();
            let desc = match k {
                0 | 1 => {
                    let r = g.rng.below(16) as u8;
                    if r >= 8 {
                        b.push(0x41);
                    }
                    b.push(if k == 0 { 0x50 } else { 0x58 } + (r & 7));
                    "push/pop reg"
                }
                2 => {
                    if g.rng.chance(1, 2) {
                        b.push(0x6A);
                        b.extend(imm(g.rng, 1));
                    } else {
                        b.push(0x68);
                        let n = if b.first() == Some(&0x66) { 2 } else { 4 };
                        b.extend(imm(g.rng, n));
                    }
                    "push imm"
                }
                3 => {
                    let (bb, _, _) = g.encode(&mut st, p66, &[0xFF], Some(6), Rm::Mem, false);
                    // encode() may add REX.W; keep it (ignored for push).
                    b = bb;
                    st.gpr[4] = sp;
                    "push mem"
                }
                4 => {
                    // pop [rsp+disp8] or pop [reg+disp]
                    if g.rng.chance(1, 2) {
                        b.extend_from_slice(&[0x8F, 0x44, 0x24, (g.rng.below(16) as u8) * 8]);
                    } else {
                        let (bb, _, _) = g.encode(&mut st, p66, &[0x8F], Some(0), Rm::Mem, false);
                        b = bb;
                        st.gpr[4] = sp;
                    }
                    "pop mem"
                }
                5 => {
                    b.push(0x9C);
                    "pushf"
                }
                6 => {
                    b.push(0x9D);
                    "popf"
                }
                7 => {
                    b.push(0xC9);
                    "leave"
                }
                _ => {
                    // Keep the final stack pointer inside the scratch area
                    // (hardware may touch it).
                    b.push(0xC8);
                    b.extend_from_slice(&(g.rng.below(1024) as u16).to_le_bytes());
                    b.push(g.rng.below(5) as u8);
                    "enter"
                }
            };
            Case {
                bytes: b,
                st,
                undef: 0,
                undef_reg: None,
                desc,
            }
        }
        _ => {
            // CMPXCHG8B/16B.
            let w = g.rng.chance(1, 2);
            let pf: &[u8] = &[];
            let (mut b, _, _) = g.encode(&mut st, pf, &[0x0F, 0xC7], Some(1), Rm::Mem, false);
            if w {
                // Insert REX.W (merge with an existing REX).
                let pos = b.iter().position(|&x| x == 0x0F).unwrap();
                if pos > 0 && b[pos - 1] & 0xF0 == 0x40 {
                    b[pos - 1] |= 8;
                } else {
                    b.insert(pos, 0x48);
                }
            }
            if g.rng.chance(1, 2) {
                st.gpr[0] = 0x0706_0504_0302_0100;
            }
            Case {
                bytes: b,
                st,
                undef: 0,
                undef_reg: None,
                desc: "cmpxchg8b/16b",
            }
        }
    };
    Some(case)
}

/// Independent reference for DIV/IDIV: does the instruction raise #DE?
/// `None` if it is not a division. The divisor operand is located with
/// iced-x86, its value read from the registers or the scratch data.
fn div_faults(bytes: &[u8], st: &NState, data: &[u8], base: u64) -> Option<bool> {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind};
    let ins = Decoder::with_ip(64, bytes, CODE_RIP, DecoderOptions::NONE).decode();
    let signed = match ins.mnemonic() {
        Mnemonic::Div => false,
        Mnemonic::Idiv => true,
        _ => return None,
    };
    let regval = |r: iced_x86::Register| -> u64 {
        if !r.is_gpr() {
            return 0; // segment bases are 0 in 64-bit mode here
        }
        let full = r.full_register();
        let idx = (full as usize) - (iced_x86::Register::RAX as usize);
        let v = st.gpr[idx];
        let v = if r.is_gpr8()
            && matches!(
                r,
                iced_x86::Register::AH
                    | iced_x86::Register::CH
                    | iced_x86::Register::DH
                    | iced_x86::Register::BH
            ) {
            st.gpr[(r as usize) - (iced_x86::Register::AH as usize)] >> 8
        } else {
            v
        };
        v & if r.size() >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * r.size())) - 1
        }
    };
    let (d, size) = match ins.op0_kind() {
        OpKind::Register => (regval(ins.op0_register()), ins.op0_register().size()),
        OpKind::Memory => {
            let size = ins.memory_size().size();
            let va = ins.virtual_address(0, 0, |r, _, _| Some(regval(r)))?;
            let off = usize::try_from(va.checked_sub(base)?).ok()?;
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(data.get(off..off + size)?);
            (u64::from_le_bytes(b), size)
        }
        _ => return None,
    };
    let bits = 8 * size as u32;
    let m = if size == 8 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let (lo, hi) = if size == 1 {
        (st.gpr[0] & 0xFF, (st.gpr[0] >> 8) & 0xFF)
    } else {
        (st.gpr[0] & m, st.gpr[2] & m)
    };
    if d == 0 {
        return Some(true);
    }
    let n = (u128::from(hi) << bits) | u128::from(lo);
    if !signed {
        return Some(n / u128::from(d) > u128::from(m));
    }
    let sh = 128 - 2 * bits;
    let n = ((n << sh) as i128) >> sh;
    let dsh = 64 - bits;
    let d = (((d << dsh) as i64) >> dsh) as i128;
    let q = n / d; // |n| < 2^127, no overflow
    let lim = 1i128 << (bits - 1);
    Some(q >= lim || q < -lim)
}

#[test]
fn exec_differential_vs_host_cpu() {
    let n: u64 = std::env::var("RKVM_EXEC_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300_000);
    let jit = Jit::new();
    let base = jit.scratch_base();
    let cr3 = 0x0010_0000;
    let mut mem0 = TestMem::new();
    mem0.add_ram(cr3, 4096);
    mem0.identity(cr3, base, SCRATCH_LEN as u64, PTE_PWU);
    let mut mem = mem0;
    let mut rng = Rng::new(0xe5ec_d1ff);
    let (mut compared, mut mismatches, mut skipped, mut de) = (0u64, 0u64, 0u64, 0u64);
    let mut reports = Vec::new();
    let mut per_desc: std::collections::BTreeMap<&str, u64> = Default::default();
    let mut i = 0;
    while compared + skipped + de < n {
        i += 1;
        let Some(case) = gen_case(&mut rng, base) else {
            continue;
        };
        // Fresh scratch contents.
        let mut data = vec![0u8; SCRATCH_LEN];
        for c in data.chunks_mut(8) {
            c.copy_from_slice(&rng.next().to_le_bytes()[..c.len()]);
        }
        if case.desc == "popf" {
            let off = (case.st.gpr[4] - base) as usize;
            let mut v = u64::from_le_bytes(data[off..off + 8].try_into().unwrap());
            v &= !(X86_EFLAGS_TF | X86_EFLAGS_AC);
            data[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        jit.scratch().copy_from_slice(&data);
        mem.poke(base, &data);
        // Emulator.
        let mut cpu = TestCpu::long64(cr3);
        cpu.gpr = case.st.gpr;
        cpu.cpl = 3;
        cpu.xmm = case.st.xmm;
        cpu.rflags = case.st.rflags;
        cpu.rip = CODE_RIP;
        let mut emu = Emulator::new();
        let mut out;
        let mut rounds = 0;
        loop {
            out = emu.emulate(&mut cpu, &mut mem, &case.bytes);
            rounds += 1;
            if out != Outcome::Continue || rounds > 100 {
                break;
            }
        }
        let de_emu = matches!(out, Outcome::Exception(e) if e.vector == 0);
        if let Some(de_ref) = div_faults(&case.bytes, &case.st, &data, base) {
            if de_ref != de_emu {
                mismatches += 1;
                if reports.len() < 30 {
                    reports.push(format!(
                        "{}: {:02x?}: #DE reference {de_ref}, emulator {:?}",
                        case.desc, case.bytes, out
                    ));
                }
                continue;
            }
            if de_ref {
                de += 1;
                continue;
            }
        }
        if (case.desc.starts_with("cmpxchg") || case.desc == "sse")
            && matches!(out, Outcome::Exception(e) if e.vector == 13)
        {
            // CMPXCHG16B on a misaligned operand: #GP(0), as on hardware.
            de += 1;
            continue;
        }
        let rex_w_0fc7 = case
            .bytes
            .windows(3)
            .any(|w| w[0] & 0xf8 == 0x48 && w[1] == 0x0f && w[2] == 0xc7);
        if case.desc.starts_with("cmpxchg")
            && rex_w_0fc7
            && matches!(out, Outcome::Unhandleable { .. })
        {
            // CMPXCHG16B: KVM reads the operand, then reports a failure.
            de += 1;
            continue;
        }
        if out != Outcome::Completed {
            skipped += 1;
            if reports.len() < 30 {
                reports.push(format!(
                    "{}: {:02x?}: emulator outcome {:?}",
                    case.desc, case.bytes, out
                ));
            }
            mismatches += 1;
            continue;
        }
        // Native.
        let mut nst = case.st;
        if std::env::var_os("RKVM_EXEC_TRACE").is_some() {
            eprintln!("{}: {:02x?} {:x?}", case.desc, case.bytes, case.st);
        }
        jit.run(&case.bytes, &mut nst);
        compared += 1;
        *per_desc.entry(case.desc).or_default() += 1;
        let mut errs = Vec::new();
        for r in 0..16usize {
            if case.undef_reg == Some(r as u8) {
                continue;
            }
            if cpu.gpr[r] != nst.gpr[r] {
                errs.push(format!(
                    "r{r}: emu {:#x} cpu {:#x} (was {:#x})",
                    cpu.gpr[r], nst.gpr[r], case.st.gpr[r]
                ));
            }
        }
        for x in 0..16 {
            if cpu.xmm[x] != nst.xmm[x] {
                errs.push(format!(
                    "xmm{x}: emu {:#x} cpu {:#x}",
                    cpu.xmm[x], nst.xmm[x]
                ));
            }
        }
        let fm = (X86_EFLAGS_ARITH
            | X86_EFLAGS_DF
            | X86_EFLAGS_IF
            | X86_EFLAGS_IOPL
            | X86_EFLAGS_NT
            | X86_EFLAGS_ID)
            & !case.undef;
        if cpu.rflags & fm != nst.rflags & fm {
            errs.push(format!(
                "flags: emu {:#x} cpu {:#x} (mask {:#x}, was {:#x})",
                cpu.rflags & fm,
                nst.rflags & fm,
                fm,
                case.st.rflags
            ));
        }
        if cpu.rip != CODE_RIP + case.bytes.len() as u64 {
            errs.push(format!("rip {:#x}", cpu.rip));
        }
        let emem = mem.peek(base, SCRATCH_LEN);
        if emem != jit.scratch() {
            let k = emem
                .iter()
                .zip(jit.scratch().iter())
                .position(|(a, b)| a != b)
                .unwrap();
            errs.push(format!(
                "memory differs at +{k:#x}: emu {:02x} cpu {:02x}",
                emem[k],
                jit.scratch()[k]
            ));
        }
        if !errs.is_empty() {
            mismatches += 1;
            if reports.len() < 30 {
                reports.push(format!(
                    "{}: {:02x?}: {}",
                    case.desc,
                    case.bytes,
                    errs.join("; ")
                ));
            }
        }
    }
    for r in &reports {
        println!("{r}");
    }
    println!("per group: {:?}", per_desc);
    println!(
        "executions compared: {compared}, mismatches: {mismatches} (expected faults skipped: {de}, generated: {i})"
    );
    let _ = skipped;
    assert_eq!(mismatches, 0);
}

/// Registers of the vector differential test: GPRs (addresses), MMX and
/// YMM registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
struct VState {
    gpr: [u64; 16],
    mm: [u64; 8],
    ymm: [[u8; 32]; 16],
}

const VMM_OFF: u32 = 128;
const VYMM_OFF: u32 = 192;

/// `vmovdqu` between ymmN and `[base + disp32]` (`store`: register to
/// memory), base in 0..8.
fn vmovdqu_disp32(n: u8, base: u8, disp: u32, store: bool) -> Vec<u8> {
    let r = if n >= 8 { 0x7E } else { 0xFE };
    let mut c = vec![
        0xC5,
        r,
        if store { 0x7F } else { 0x6F },
        0x80 | ((n & 7) << 3) | base,
    ];
    c.extend_from_slice(&disp.to_le_bytes());
    c
}

impl Jit {
    /// Run `insn` natively with the GPRs (but RSP), MMX and YMM registers
    /// of `st`; reads the MMX/YMM registers back.
    fn run_vec(&self, insn: &[u8], st: &mut VState) {
        let save = self.code as u64 + 4096 - 64;
        let mut c: Vec<u8> = Vec::new();
        // push rbx, rbp, r12-r15; movabs rax, save; mov [rax+8], rdi
        c.extend_from_slice(&[0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57]);
        c.extend_from_slice(&[0x48, 0xB8]);
        c.extend_from_slice(&save.to_le_bytes());
        c.extend_from_slice(&[0x48, 0x89, 0x78, 0x08]);
        // movq mmN, [rdi+VMM_OFF+8N]; vmovdqu ymmN, [rdi+VYMM_OFF+32N]
        for n in 0..8u8 {
            c.extend_from_slice(&[0x0F, 0x6F, 0x80 | (n << 3) | 7]);
            c.extend_from_slice(&(VMM_OFF + 8 * u32::from(n)).to_le_bytes());
        }
        for n in 0..16u8 {
            c.extend(vmovdqu_disp32(n, 7, VYMM_OFF + 32 * u32::from(n), false));
        }
        // mov rN, [rdi+8N] for all but RSP, RDI last.
        for i in (0..16u8).filter(|&i| i != 4 && i != 7).chain([7]) {
            c.push(0x48 | if i >= 8 { 4 } else { 0 });
            c.push(0x8B);
            c.push(0x80 | ((i & 7) << 3) | 7);
            c.extend_from_slice(&(u32::from(i) * 8).to_le_bytes());
        }
        c.extend_from_slice(insn);
        // movabs rax, [save+8]; store MMX and YMM registers back.
        c.extend_from_slice(&[0x48, 0xA1]);
        c.extend_from_slice(&(save + 8).to_le_bytes());
        for n in 0..8u8 {
            c.extend_from_slice(&[0x0F, 0x7F, 0x80 | (n << 3)]);
            c.extend_from_slice(&(VMM_OFF + 8 * u32::from(n)).to_le_bytes());
        }
        for n in 0..16u8 {
            c.extend(vmovdqu_disp32(n, 0, VYMM_OFF + 32 * u32::from(n), true));
        }
        // emms; vzeroupper; pop r15-r12, rbp, rbx; ret
        c.extend_from_slice(&[0x0F, 0x77, 0xC5, 0xF8, 0x77]);
        c.extend_from_slice(&[
            0x41, 0x5F, 0x41, 0x5E, 0x41, 0x5D, 0x41, 0x5C, 0x5D, 0x5B, 0xC3,
        ]);
        assert!(c.len() < 4096 - 64);
        // SAFETY: as in `run`; RSP is never changed, the callee-saved
        // registers are restored, memory accesses stay in the state struct,
        // the save area and the scratch area.
        unsafe {
            std::ptr::copy_nonoverlapping(c.as_ptr(), self.code, c.len());
            let f: extern "C" fn(*mut VState) = std::mem::transmute(self.code);
            f(st);
        }
    }
}

/// One VEX move form: map, opcode, allowed pp values, register/memory,
/// aligned.
const VEX_FORMS: &[(u8, u8, &[u8], Rm, bool)] = &[
    (1, 0x10, &[0, 1], Rm::Any, false),
    (1, 0x11, &[0, 1], Rm::Any, false),
    (1, 0x28, &[0, 1], Rm::Any, true),
    (1, 0x29, &[0, 1], Rm::Any, true),
    (1, 0x2B, &[0, 1], Rm::Mem, true),
    (1, 0x6F, &[1], Rm::Any, true),
    (1, 0x7F, &[1], Rm::Any, true),
    (1, 0x6F, &[2], Rm::Any, false),
    (1, 0x7F, &[2], Rm::Any, false),
    (1, 0xE7, &[1], Rm::Mem, true),
    (2, 0x2A, &[1], Rm::Mem, true),
];

/// Rewrite `[67] [REX] 0F op modrm...` from `Gen::encode` into VEX form.
fn to_vex(rng: &mut Rng, legacy: &[u8], map: u8, pp: u8, l: bool) -> Vec<u8> {
    let mut i = 0;
    let mut out = Vec::new();
    if legacy[i] == 0x67 {
        out.push(0x67);
        i += 1;
    }
    let mut rex = 0;
    if legacy[i] & 0xF0 == 0x40 {
        rex = legacy[i];
        i += 1;
    }
    assert_eq!(legacy[i], 0x0F);
    let rest = &legacy[i + 1..];
    let (r, x, b) = (rex & 4 != 0, rex & 2 != 0, rex & 1 != 0);
    let w = rng.chance(1, 4);
    let tail = (u8::from(w) << 7) | 0x78 | (u8::from(l) << 2) | pp;
    if map == 1 && !x && !b && !w && rng.chance(1, 2) {
        out.extend_from_slice(&[0xC5, (u8::from(!r) << 7) | tail]);
    } else {
        out.extend_from_slice(&[
            0xC4,
            (u8::from(!r) << 7) | (u8::from(!x) << 6) | (u8::from(!b) << 5) | map,
            tail,
        ]);
    }
    out.extend_from_slice(rest);
    out
}

/// Effective address of the memory operand (iced-x86), if any.
fn mem_ea(bytes: &[u8], gpr: &[u64; 16]) -> Option<(iced_x86::Register, u64)> {
    use iced_x86::{Decoder, DecoderOptions, OpKind};
    let ins = Decoder::with_ip(64, bytes, CODE_RIP, DecoderOptions::NONE).decode();
    (0..ins.op_count()).find(|&k| ins.op_kind(k) == OpKind::Memory)?;
    let regval = |r: iced_x86::Register, _: usize, _: usize| -> Option<u64> {
        if !r.is_gpr() {
            return Some(0); // segment bases are 0 in 64-bit mode here
        }
        let full = r.full_register();
        let v = gpr[(full as usize) - (iced_x86::Register::RAX as usize)];
        Some(if r.size() == 4 { v & 0xFFFF_FFFF } else { v })
    };
    Some((ins.memory_base(), ins.virtual_address(0, 0, regval)?))
}

/// MMX MOVQ and the VEX moves, run natively and in the emulator.
#[test]
fn exec_vector_differential_vs_host_cpu() {
    if !std::arch::is_x86_feature_detected!("avx2") {
        skip::skip("exec_vector_differential_vs_host_cpu", "the host CPU lacks AVX2: no native reference");
        return;
    }
    let n: u64 = std::env::var("RKVM_EXEC_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(|n: u64| n / 10)
        .unwrap_or(30_000);
    let jit = Jit::new();
    let base = jit.scratch_base();
    let cr3 = 0x0010_0000;
    let mut mem = TestMem::new();
    mem.add_ram(cr3, 4096);
    mem.identity(cr3, base, SCRATCH_LEN as u64, PTE_PWU);
    let mut rng = Rng::new(0x7ec7_d1ff);
    let (mut compared, mut mismatches, mut faults) = (0u64, 0u64, 0u64);
    let mut reports = Vec::new();
    while compared + faults < n {
        let mut nst = NState::default();
        for r in nst.gpr.iter_mut() {
            *r = rng.interesting();
        }
        let kind = rng.below(8);
        let (mut bytes, aligned, width) = {
            let mut g = Gen {
                rng: &mut rng,
                base,
            };
            if kind < 2 {
                let opc = if g.rng.chance(1, 2) { 0x6F } else { 0x7F };
                let (b, _, _) = g.encode(&mut nst, &[], &[0x0F, opc], None, Rm::Any, false);
                (b, false, 8u64)
            } else if kind == 2 {
                // Legacy SSE loads (MOVNTDQA, MOVDQU, MOVUPS) keep bits
                // 255:128 of the YMM register.
                let (pfx, opc, rm, aligned): (&[u8], &[u8], Rm, bool) = g.rng.pick(&[
                    (&[0x66][..], &[0x0F, 0x38, 0x2A][..], Rm::Mem, true),
                    (&[0xF3], &[0x0F, 0x6F], Rm::Any, false),
                    (&[], &[0x0F, 0x10], Rm::Any, false),
                ]);
                let (b, _, _) = g.encode(&mut nst, pfx, opc, None, rm, false);
                (b, aligned, 16)
            } else {
                let (map, op, pps, rm, aligned) = g.rng.pick(VEX_FORMS);
                let pp = g.rng.pick(pps);
                let l = g.rng.chance(1, 2);
                let opc: &[u8] = if map == 2 {
                    &[0x0F, 0x38, op]
                } else {
                    &[0x0F, op]
                };
                let (b, _, _) = g.encode(&mut nst, &[], opc, None, rm, false);
                let b = if map == 2 {
                    // Drop the 38 escape byte: the VEX map says it.
                    let k = b.iter().position(|&x| x == 0x38).unwrap();
                    [&b[..k], &b[k + 1..]].concat()
                } else {
                    b
                };
                (
                    to_vex(g.rng, &b, map, pp, l),
                    aligned,
                    if l { 32 } else { 16 },
                )
            }
        };
        // Align most aligned-form operands (moving the base register).
        if let Some((reg, ea)) = mem_ea(&bytes, &nst.gpr) {
            if aligned && rng.chance(3, 4) {
                let idx = (reg.full_register() as usize) - (iced_x86::Register::RAX as usize);
                nst.gpr[idx] = nst.gpr[idx].wrapping_sub(ea % width);
            }
        }
        // The emulator fetches past the instruction end: pad nothing, but
        // keep the encoding short enough.
        bytes.truncate(15);
        let mut vst = VState {
            gpr: nst.gpr,
            mm: [0; 8],
            ymm: [[0; 32]; 16],
        };
        for m in vst.mm.iter_mut() {
            *m = rng.next();
        }
        for y in vst.ymm.iter_mut() {
            for c in y.chunks_mut(8) {
                c.copy_from_slice(&rng.next().to_le_bytes());
            }
        }
        let mut data = vec![0u8; SCRATCH_LEN];
        for c in data.chunks_mut(8) {
            c.copy_from_slice(&rng.next().to_le_bytes()[..c.len()]);
        }
        jit.scratch().copy_from_slice(&data);
        mem.poke(base, &data);
        let mut cpu = TestCpu::long64(cr3);
        cpu.cr4 |= X86_CR4_OSXSAVE;
        cpu.xcr0 = 7;
        cpu.gpr = vst.gpr;
        cpu.cpl = 3;
        cpu.rip = CODE_RIP;
        cpu.mm = vst.mm;
        for (k, y) in vst.ymm.iter().enumerate() {
            cpu.xmm[k] = u128::from_le_bytes(y[..16].try_into().unwrap());
            cpu.ymm_hi[k] = u128::from_le_bytes(y[16..].try_into().unwrap());
        }
        let out = Emulator::new().emulate(&mut cpu, &mut mem, &bytes);
        if aligned
            && matches!(out, Outcome::Exception(e) if e == rkvm_emulate::emulate::Exception::gp(0))
        {
            // Misaligned aligned form: #GP(0), as on hardware.
            faults += 1;
            continue;
        }
        if out != Outcome::Completed {
            mismatches += 1;
            if reports.len() < 30 {
                reports.push(format!("{:02x?}: emulator outcome {:?}", bytes, out));
            }
            continue;
        }
        let mut native = vst;
        jit.run_vec(&bytes, &mut native);
        compared += 1;
        let mut errs = Vec::new();
        for k in 0..8 {
            if cpu.mm[k] != native.mm[k] {
                errs.push(format!(
                    "mm{k}: emu {:#x} cpu {:#x}",
                    cpu.mm[k], native.mm[k]
                ));
            }
        }
        for k in 0..16 {
            let mut e = cpu.xmm[k].to_le_bytes().to_vec();
            e.extend_from_slice(&cpu.ymm_hi[k].to_le_bytes());
            if e != native.ymm[k] {
                errs.push(format!("ymm{k}: emu {:02x?} cpu {:02x?}", e, native.ymm[k]));
            }
        }
        if cpu.rip != CODE_RIP + bytes.len() as u64 {
            errs.push(format!("rip {:#x}", cpu.rip));
        }
        let emem = mem.peek(base, SCRATCH_LEN);
        if emem != jit.scratch() {
            let k = emem
                .iter()
                .zip(jit.scratch().iter())
                .position(|(a, b)| a != b)
                .unwrap();
            errs.push(format!(
                "memory differs at +{k:#x}: emu {:02x} cpu {:02x}",
                emem[k],
                jit.scratch()[k]
            ));
        }
        if !errs.is_empty() {
            mismatches += 1;
            if reports.len() < 30 {
                reports.push(format!("{:02x?}: {}", bytes, errs.join("; ")));
            }
        }
    }
    for r in &reports {
        println!("{r}");
    }
    println!("vector executions compared: {compared}, mismatches: {mismatches} (#GP on misaligned skipped: {faults})");
    assert_eq!(mismatches, 0);
}
