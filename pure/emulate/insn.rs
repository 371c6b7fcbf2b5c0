//! The decoded form of one instruction.

use super::regs::{SegReg, MAX_INSN_LEN};

/// Operation (mnemonic class) of a decoded instruction. Operand size,
/// condition code and operands live in [`Insn`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// MOV between GPRs, memory and immediates (incl. moffs forms).
    Mov,
    /// MOVZX.
    Movzx,
    /// MOVSX.
    Movsx,
    /// MOVSXD (64-bit mode 63 /r).
    Movsxd,
    /// MOV CRn, reg.
    MovToCr,
    /// MOV reg, CRn.
    MovFromCr,
    /// MOV DRn, reg.
    MovToDr,
    /// MOV reg, DRn.
    MovFromDr,
    /// MOV Sreg, r/m16.
    MovToSeg,
    /// MOV r/m, Sreg.
    MovFromSeg,
    /// LEA.
    Lea,
    /// XCHG.
    Xchg,
    /// CMPXCHG.
    Cmpxchg,
    /// CMPXCHG8B (operand size 4) / CMPXCHG16B (operand size 8).
    Cmpxchg8b,
    /// XADD.
    Xadd,
    /// BSWAP.
    Bswap,
    /// CMOVcc (condition in `Insn::cond`).
    Cmovcc,
    /// SETcc (condition in `Insn::cond`).
    Setcc,
    /// MOVNTI.
    Movnti,
    /// SSE register/memory move (details in `Insn::sse`).
    SseMov,
    /// MMX MOVQ between MMX registers and memory (0F 6F/7F).
    MmxMov,
    /// VEX-encoded vector move, 16 or 32 bytes (details in `Insn::sse`).
    AvxMov,
    /// MOVS.
    Movs,
    /// CMPS.
    Cmps,
    /// STOS.
    Stos,
    /// LODS.
    Lods,
    /// SCAS.
    Scas,
    /// INS.
    Ins,
    /// OUTS.
    Outs,
    /// ADD.
    Add,
    /// OR.
    Or,
    /// ADC.
    Adc,
    /// SBB.
    Sbb,
    /// AND.
    And,
    /// SUB.
    Sub,
    /// XOR.
    Xor,
    /// CMP.
    Cmp,
    /// TEST.
    Test,
    /// INC.
    Inc,
    /// DEC.
    Dec,
    /// NEG.
    Neg,
    /// NOT.
    Not,
    /// MUL (one operand).
    Mul,
    /// IMUL with one operand (rDX:rAX result).
    Imul1,
    /// IMUL with two or three operands.
    Imul,
    /// DIV.
    Div,
    /// IDIV.
    Idiv,
    /// ROL.
    Rol,
    /// ROR.
    Ror,
    /// RCL.
    Rcl,
    /// RCR.
    Rcr,
    /// SHL/SAL.
    Shl,
    /// SHR.
    Shr,
    /// SAR.
    Sar,
    /// SHLD.
    Shld,
    /// SHRD.
    Shrd,
    /// BT.
    Bt,
    /// BTS.
    Bts,
    /// BTR.
    Btr,
    /// BTC.
    Btc,
    /// BSF.
    Bsf,
    /// BSR.
    Bsr,
    /// CBW/CWDE/CDQE.
    Cbw,
    /// CWD/CDQ/CQO.
    Cwd,
    /// SAHF.
    Sahf,
    /// LAHF.
    Lahf,
    /// CLC.
    Clc,
    /// STC.
    Stc,
    /// CMC.
    Cmc,
    /// CLD.
    Cld,
    /// STD.
    Std,
    /// CLI.
    Cli,
    /// STI.
    Sti,
    /// PUSH (GPR, memory, immediate or segment register).
    Push,
    /// POP (GPR, memory or segment register).
    Pop,
    /// PUSHF/PUSHFD/PUSHFQ.
    Pushf,
    /// POPF/POPFD/POPFQ.
    Popf,
    /// PUSHA/PUSHAD.
    Pusha,
    /// POPA/POPAD.
    Popa,
    /// ENTER.
    Enter,
    /// LEAVE.
    Leave,
    /// JMP rel.
    Jmp,
    /// JMP r/m (near indirect).
    JmpInd,
    /// JMP far (ptr16:16/32 or m16:16/32/64).
    JmpFar,
    /// CALL rel.
    Call,
    /// CALL r/m (near indirect).
    CallInd,
    /// CALL far (ptr or memory).
    CallFar,
    /// RET near (optional imm16).
    Ret,
    /// RET far (optional imm16).
    RetFar,
    /// Jcc (condition in `Insn::cond`).
    Jcc,
    /// LOOP.
    Loop,
    /// LOOPE/LOOPZ.
    Loope,
    /// LOOPNE/LOOPNZ.
    Loopne,
    /// JCXZ/JECXZ/JRCXZ.
    Jcxz,
    /// INT imm8.
    Int,
    /// INT3.
    Int3,
    /// INTO.
    Into,
    /// INT1/ICEBP.
    Int1,
    /// IRET/IRETD/IRETQ.
    Iret,
    /// LGDT.
    Lgdt,
    /// LIDT.
    Lidt,
    /// SGDT.
    Sgdt,
    /// SIDT.
    Sidt,
    /// LLDT.
    Lldt,
    /// LTR.
    Ltr,
    /// SLDT.
    Sldt,
    /// STR.
    Str,
    /// LMSW.
    Lmsw,
    /// SMSW.
    Smsw,
    /// CLTS.
    Clts,
    /// IN.
    In,
    /// OUT.
    Out,
    /// HLT.
    Hlt,
    /// CPUID.
    Cpuid,
    /// RDMSR.
    Rdmsr,
    /// WRMSR.
    Wrmsr,
    /// RDTSC.
    Rdtsc,
    /// RDTSCP.
    Rdtscp,
    /// INVLPG.
    Invlpg,
    /// WBINVD.
    Wbinvd,
    /// INVD.
    Invd,
    /// XLAT.
    Xlat,
    /// LDS/LES/LFS/LGS/LSS (segment in `Insn::src2`).
    Lseg,
    /// NOP (incl. multi-byte NOPs and hint NOPs).
    Nop,
    /// PAUSE (F3 90).
    Pause,
    /// UD0/UD1/UD2: raise #UD.
    Ud,
}

/// Repeat prefix in effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rep {
    /// No F2/F3 prefix.
    None,
    /// F3: REP / REPE.
    Rep,
    /// F2: REPNE.
    Repne,
}

/// A memory operand before segmentation: `seg:[base + index*scale + disp]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRef {
    /// Effective segment (default or override).
    pub seg: SegReg,
    /// Base GPR.
    pub base: Option<u8>,
    /// Index GPR.
    pub index: Option<u8>,
    /// Scale factor (1, 2, 4 or 8).
    pub scale: u8,
    /// Displacement, sign-extended to 64 bits (for moffs: the offset).
    pub disp: u64,
    /// RIP-relative (disp is relative to the next instruction).
    pub rip_rel: bool,
}

/// One operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// Absent.
    None,
    /// General-purpose register; `high8` selects AH/CH/DH/BH (reg 4..=7).
    Reg {
        /// Register number.
        reg: u8,
        /// Size in bytes.
        size: u8,
        /// Legacy high-byte register.
        high8: bool,
    },
    /// Memory.
    Mem {
        /// Address.
        mem: MemRef,
        /// Size in bytes of the access.
        size: u8,
    },
    /// Immediate, already sign- or zero-extended as the encoding defines.
    Imm {
        /// Value.
        val: u64,
        /// Size in bytes as encoded.
        size: u8,
    },
    /// Segment register.
    Seg(SegReg),
    /// Control register number.
    Cr(u8),
    /// Debug register number.
    Dr(u8),
    /// XMM register number (under [`Op::AvxMov`], a write zeroes bits
    /// 255:128 of the YMM register, as VEX.128 does).
    Xmm(u8),
    /// YMM register number (all 256 bits).
    Ymm(u8),
    /// MMX register number (0..=7).
    Mm(u8),
    /// Far pointer immediate `sel:off`.
    Far {
        /// Selector.
        sel: u16,
        /// Offset.
        off: u64,
    },
}

/// Shape of a vector move (`Op::SseMov`, `Op::MmxMov`, `Op::AvxMov`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SseMove {
    /// Bytes moved: 4, 8, 16 or 32.
    pub width: u8,
    /// Memory operand must be aligned to `width` bytes (#GP otherwise).
    pub aligned: bool,
    /// An XMM destination has its upper bytes zeroed (else merged).
    pub zero_upper: bool,
}

impl SseMove {
    /// Required alignment of the memory operand in bytes (1: none).
    pub fn alignment(&self) -> u64 {
        if self.aligned {
            u64::from(self.width)
        } else {
            1
        }
    }
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Operation.
    pub op: Op,
    /// Length in bytes.
    pub len: u8,
    /// Raw bytes (first `len` valid).
    pub bytes: [u8; MAX_INSN_LEN],
    /// Effective operand size in bytes (2, 4 or 8).
    pub opsize: u8,
    /// Effective address size in bytes (2, 4 or 8).
    pub adsize: u8,
    /// Destination (first) operand.
    pub dst: Operand,
    /// Source (second) operand.
    pub src: Operand,
    /// Third operand (IMUL imm, SHLD/SHRD count, ENTER level, LxS segment).
    pub src2: Operand,
    /// Repeat prefix.
    pub rep: Rep,
    /// LOCK prefix.
    pub lock: bool,
    /// Segment override prefix.
    pub seg_override: Option<SegReg>,
    /// Condition code (Jcc/SETcc/CMOVcc).
    pub cond: u8,
    /// SSE move shape.
    pub sse: SseMove,
}

impl Insn {
    /// An empty instruction (used as initial state).
    pub const fn empty() -> Self {
        Insn {
            op: Op::Nop,
            len: 0,
            bytes: [0; MAX_INSN_LEN],
            opsize: 4,
            adsize: 4,
            dst: Operand::None,
            src: Operand::None,
            src2: Operand::None,
            rep: Rep::None,
            lock: false,
            seg_override: None,
            cond: 0,
            sse: SseMove {
                width: 0,
                aligned: false,
                zero_upper: false,
            },
        }
    }
}
