// SPDX-License-Identifier: GPL-2.0
//! Register numbers and register bits: general-purpose register encoding,
//! RFLAGS, CR0, CR4, EFER, XCR0 (XSAVE state components), DR6 and DR7,
//! with the reset values KVM gives them.

// --- General-purpose registers ---------------------------------------------------

/// General-purpose register number in ModRM/REX encoding order (0 = RAX
/// ... 15 = R15), upstream's `VCPU_REGS_*` numbering.
pub type Gpr = u8;

/// RAX (accumulator).
pub const RAX: Gpr = 0;
/// RCX (count register).
pub const RCX: Gpr = 1;
/// RDX (data register).
pub const RDX: Gpr = 2;
/// RBX (base register).
pub const RBX: Gpr = 3;
/// RSP (stack pointer).
pub const RSP: Gpr = 4;
/// RBP (frame pointer).
pub const RBP: Gpr = 5;
/// RSI (string source index).
pub const RSI: Gpr = 6;
/// RDI (string destination index).
pub const RDI: Gpr = 7;
/// R8; R9 to R14 follow.
pub const R8: Gpr = 8;
/// R15, the highest-numbered GPR.
pub const R15: Gpr = 15;
/// Number of general-purpose registers in 64-bit mode.
pub const NR_GPRS: usize = 16;

// --- RFLAGS (uapi/asm/processor-flags.h) -----------------------------------------

/// Carry flag.
pub const X86_EFLAGS_CF: u64 = 1 << 0;
/// Bit 1, always set (also RFLAGS after reset).
pub const X86_EFLAGS_FIXED: u64 = 1 << 1;
/// Parity flag.
pub const X86_EFLAGS_PF: u64 = 1 << 2;
/// Auxiliary carry flag.
pub const X86_EFLAGS_AF: u64 = 1 << 4;
/// Zero flag.
pub const X86_EFLAGS_ZF: u64 = 1 << 6;
/// Sign flag.
pub const X86_EFLAGS_SF: u64 = 1 << 7;
/// Trap flag.
pub const X86_EFLAGS_TF: u64 = 1 << 8;
/// Interrupt enable flag.
pub const X86_EFLAGS_IF: u64 = 1 << 9;
/// Direction flag.
pub const X86_EFLAGS_DF: u64 = 1 << 10;
/// Overflow flag.
pub const X86_EFLAGS_OF: u64 = 1 << 11;
/// Shift of the I/O privilege level field.
pub const X86_EFLAGS_IOPL_BIT: u32 = 12;
/// I/O privilege level field (2 bits).
pub const X86_EFLAGS_IOPL: u64 = 3 << X86_EFLAGS_IOPL_BIT;
/// Nested task flag.
pub const X86_EFLAGS_NT: u64 = 1 << 14;
/// Resume flag.
pub const X86_EFLAGS_RF: u64 = 1 << 16;
/// Virtual-8086 mode flag.
pub const X86_EFLAGS_VM: u64 = 1 << 17;
/// Alignment check flag.
pub const X86_EFLAGS_AC: u64 = 1 << 18;
/// Virtual interrupt flag.
pub const X86_EFLAGS_VIF: u64 = 1 << 19;
/// Virtual interrupt pending flag.
pub const X86_EFLAGS_VIP: u64 = 1 << 20;
/// CPUID-available flag.
pub const X86_EFLAGS_ID: u64 = 1 << 21;
/// The six arithmetic status flags (upstream emulator's `EFLAGS_MASK`).
pub const X86_EFLAGS_ARITH: u64 =
    X86_EFLAGS_CF | X86_EFLAGS_PF | X86_EFLAGS_AF | X86_EFLAGS_ZF | X86_EFLAGS_SF | X86_EFLAGS_OF;
/// Every RFLAGS bit software can ever see set; the others are reserved.
pub const X86_EFLAGS_ALL: u64 = X86_EFLAGS_ARITH
    | X86_EFLAGS_FIXED
    | X86_EFLAGS_TF
    | X86_EFLAGS_IF
    | X86_EFLAGS_DF
    | X86_EFLAGS_IOPL
    | X86_EFLAGS_NT
    | X86_EFLAGS_RF
    | X86_EFLAGS_VM
    | X86_EFLAGS_AC
    | X86_EFLAGS_VIF
    | X86_EFLAGS_VIP
    | X86_EFLAGS_ID;

// --- CR0 ---------------------------------------------------------------------------

/// Protection enable.
pub const X86_CR0_PE: u64 = 1 << 0;
/// Monitor coprocessor.
pub const X86_CR0_MP: u64 = 1 << 1;
/// Emulation (no x87/SSE).
pub const X86_CR0_EM: u64 = 1 << 2;
/// Task switched.
pub const X86_CR0_TS: u64 = 1 << 3;
/// Extension type (reads as 1).
pub const X86_CR0_ET: u64 = 1 << 4;
/// Numeric error.
pub const X86_CR0_NE: u64 = 1 << 5;
/// Write protect.
pub const X86_CR0_WP: u64 = 1 << 16;
/// Alignment mask.
pub const X86_CR0_AM: u64 = 1 << 18;
/// Not write-through.
pub const X86_CR0_NW: u64 = 1 << 29;
/// Cache disable.
pub const X86_CR0_CD: u64 = 1 << 30;
/// Paging.
pub const X86_CR0_PG: u64 = 1 << 31;
/// The CR0 bits that exist (upstream's `~CR0_RESERVED_BITS`); writes of
/// the others below bit 32 are ignored.
pub const CR0_VALID_BITS: u64 = X86_CR0_PE
    | X86_CR0_MP
    | X86_CR0_EM
    | X86_CR0_TS
    | X86_CR0_ET
    | X86_CR0_NE
    | X86_CR0_WP
    | X86_CR0_AM
    | X86_CR0_NW
    | X86_CR0_CD
    | X86_CR0_PG;
/// CR0 bits whose change reloads the PDPTEs under PAE paging.
pub const X86_CR0_PDPTR_BITS: u64 = X86_CR0_CD | X86_CR0_NW | X86_CR0_PG;
/// CR0 after RESET and INIT: caches disabled, ET set (0x6000_0010).
pub const X86_CR0_RESET: u64 = X86_CR0_NW | X86_CR0_CD | X86_CR0_ET;

// --- CR3 ---------------------------------------------------------------------------

/// With CR4.PCIDE, bit 63 of a value moved to CR3 keeps the TLB entries
/// of the new PCID (the bit is not stored).
pub const X86_CR3_PCID_NOFLUSH: u64 = 1 << 63;

// --- CR8 ---------------------------------------------------------------------------

/// CR8 holds the task priority in bits 3:0; the rest is reserved.
pub const CR8_RESERVED_BITS: u64 = !0xf;

// --- CR4 ---------------------------------------------------------------------------

/// Virtual-8086 mode extensions.
pub const X86_CR4_VME: u64 = 1 << 0;
/// Protected-mode virtual interrupts.
pub const X86_CR4_PVI: u64 = 1 << 1;
/// Time stamp disable (RDTSC privileged).
pub const X86_CR4_TSD: u64 = 1 << 2;
/// Debugging extensions.
pub const X86_CR4_DE: u64 = 1 << 3;
/// Page size extensions.
pub const X86_CR4_PSE: u64 = 1 << 4;
/// Physical address extension.
pub const X86_CR4_PAE: u64 = 1 << 5;
/// Machine check enable.
pub const X86_CR4_MCE: u64 = 1 << 6;
/// Global pages.
pub const X86_CR4_PGE: u64 = 1 << 7;
/// RDPMC at any privilege level.
pub const X86_CR4_PCE: u64 = 1 << 8;
/// OS supports FXSAVE/FXRSTOR (SSE enabled).
pub const X86_CR4_OSFXSR: u64 = 1 << 9;
/// OS handles unmasked SIMD floating-point exceptions.
pub const X86_CR4_OSXMMEXCPT: u64 = 1 << 10;
/// User-mode instruction prevention.
pub const X86_CR4_UMIP: u64 = 1 << 11;
/// 57-bit linear addresses (5-level paging).
pub const X86_CR4_LA57: u64 = 1 << 12;
/// VMX enable.
pub const X86_CR4_VMXE: u64 = 1 << 13;
/// Safer mode extensions enable.
pub const X86_CR4_SMXE: u64 = 1 << 14;
/// FSGSBASE instructions enabled.
pub const X86_CR4_FSGSBASE: u64 = 1 << 16;
/// Process-context identifiers.
pub const X86_CR4_PCIDE: u64 = 1 << 17;
/// OS supports XSAVE and XCR0 (AVX usable with XCR0.YMM).
pub const X86_CR4_OSXSAVE: u64 = 1 << 18;
/// Supervisor-mode execution prevention.
pub const X86_CR4_SMEP: u64 = 1 << 20;
/// Supervisor-mode access prevention.
pub const X86_CR4_SMAP: u64 = 1 << 21;
/// Protection keys for user pages.
pub const X86_CR4_PKE: u64 = 1 << 22;
/// Control-flow enforcement.
pub const X86_CR4_CET: u64 = 1 << 23;
/// Linear address space separation.
pub const X86_CR4_LASS: u64 = 1 << 27;
/// Linear address masking for supervisor pointers.
pub const X86_CR4_LAM_SUP: u64 = 1 << 28;
/// Flexible return and event delivery.
pub const X86_CR4_FRED: u64 = 1 << 32;

/// CR4 bits whose change reloads the PDPTEs under PAE paging.
pub const X86_CR4_PDPTR_BITS: u64 = X86_CR4_PGE | X86_CR4_PSE | X86_CR4_PAE | X86_CR4_SMEP;

// --- EFER (asm/msr-index.h; the MSR is msr::MSR_EFER) ----------------------------

/// SYSCALL enable.
pub const EFER_SCE: u64 = 1 << 0;
/// Long mode enable.
pub const EFER_LME: u64 = 1 << 8;
/// Long mode active.
pub const EFER_LMA: u64 = 1 << 10;
/// No-execute enable.
pub const EFER_NX: u64 = 1 << 11;
/// SVM enable.
pub const EFER_SVME: u64 = 1 << 12;
/// Long mode segment limit enable.
pub const EFER_LMSLE: u64 = 1 << 13;
/// Fast FXSAVE/FXRSTOR.
pub const EFER_FFXSR: u64 = 1 << 14;
/// Translation cache extension.
pub const EFER_TCE: u64 = 1 << 15;
/// Automatic IBRS.
pub const EFER_AUTOIBRS: u64 = 1 << 21;

// --- XCR0 and IA32_XSS: XSAVE state components (asm/fpu/types.h) -----------------

/// XCR number of XCR0 for XGETBV/XSETBV.
pub const XCR_XFEATURE_ENABLED_MASK: u32 = 0;
/// x87 state.
pub const XFEATURE_MASK_FP: u64 = 1 << 0;
/// SSE state (XMM registers, MXCSR).
pub const XFEATURE_MASK_SSE: u64 = 1 << 1;
/// AVX state (upper halves of the YMM registers).
pub const XFEATURE_MASK_YMM: u64 = 1 << 2;
/// MPX bound registers.
pub const XFEATURE_MASK_BNDREGS: u64 = 1 << 3;
/// MPX configuration.
pub const XFEATURE_MASK_BNDCSR: u64 = 1 << 4;
/// AVX-512 opmask registers.
pub const XFEATURE_MASK_OPMASK: u64 = 1 << 5;
/// AVX-512 upper halves of ZMM0-15 (upstream `XFEATURE_MASK_ZMM_Hi256`).
pub const XFEATURE_MASK_ZMM_HI256: u64 = 1 << 6;
/// AVX-512 ZMM16-31 (upstream `XFEATURE_MASK_Hi16_ZMM`).
pub const XFEATURE_MASK_HI16_ZMM: u64 = 1 << 7;
/// Processor trace (IA32_XSS).
pub const XFEATURE_MASK_PT: u64 = 1 << 8;
/// Protection keys.
pub const XFEATURE_MASK_PKRU: u64 = 1 << 9;
/// PASID (IA32_XSS).
pub const XFEATURE_MASK_PASID: u64 = 1 << 10;
/// CET user state (IA32_XSS).
pub const XFEATURE_MASK_CET_USER: u64 = 1 << 11;
/// CET supervisor state (IA32_XSS).
pub const XFEATURE_MASK_CET_KERNEL: u64 = 1 << 12;
/// Architectural LBRs (IA32_XSS).
pub const XFEATURE_MASK_LBR: u64 = 1 << 15;
/// AMX tile configuration.
pub const XFEATURE_MASK_XTILE_CFG: u64 = 1 << 17;
/// AMX tile data, the one dynamic (XFD) component.
pub const XFEATURE_MASK_XTILE_DATA: u64 = 1 << 18;
/// APX extended GPRs.
pub const XFEATURE_MASK_APX: u64 = 1 << 19;
/// The legacy-area components (always in the 512-byte legacy region).
pub const XFEATURE_MASK_FPSSE: u64 = XFEATURE_MASK_FP | XFEATURE_MASK_SSE;
/// All AVX-512 state.
pub const XFEATURE_MASK_AVX512: u64 =
    XFEATURE_MASK_OPMASK | XFEATURE_MASK_ZMM_HI256 | XFEATURE_MASK_HI16_ZMM;
/// All MPX state (set or clear together in XCR0).
pub const XFEATURE_MASK_MPX: u64 = XFEATURE_MASK_BNDREGS | XFEATURE_MASK_BNDCSR;
/// All AMX state.
pub const XFEATURE_MASK_XTILE: u64 = XFEATURE_MASK_XTILE_CFG | XFEATURE_MASK_XTILE_DATA;
/// All CET state.
pub const XFEATURE_MASK_CET_ALL: u64 = XFEATURE_MASK_CET_USER | XFEATURE_MASK_CET_KERNEL;

// --- DR6 and DR7 (arch/x86/kvm/regs.h, uapi/asm/debugreg.h) ---------------------

/// DR6 B0-B3: breakpoint 0-3 condition detected.
pub const DR_TRAP_BITS: u64 = 0xf;
/// `DR6[11]`: bus lock detected (active low).
pub const DR6_BUS_LOCK: u64 = 1 << 11;
/// `DR6[12]`: reserved, must be 0 (VMX's "enabled breakpoint" bit of
/// the pending debug exceptions, which #DB payloads follow).
pub const DR6_RESERVED_BIT12: u64 = 1 << 12;
/// `DR6[13]`: debug register access detected.
pub const DR6_BD: u64 = 1 << 13;
/// `DR6[14]`: single step.
pub const DR6_BS: u64 = 1 << 14;
/// `DR6[15]`: task switch.
pub const DR6_BT: u64 = 1 << 15;
/// `DR6[16]`: RTM (active low).
pub const DR6_RTM: u64 = 1 << 16;
/// DR6 bits that are 1 when nothing happened: the value after RESET and
/// INIT (0xffff_0ff0).
pub const DR6_ACTIVE_LOW: u64 = 0xffff_0ff0;
/// DR6 bits the CPU changes.
pub const DR6_VOLATILE: u64 = 0x0001_e80f;
/// DR6 bits that always read as 1.
pub const DR6_FIXED_1: u64 = DR6_ACTIVE_LOW & !DR6_VOLATILE;
/// DR7 L0-G3: breakpoint enables.
pub const DR7_BP_EN_MASK: u64 = 0xff;
/// `DR7[9]`: global exact breakpoint enable.
pub const DR7_GE: u64 = 1 << 9;
/// `DR7[13]`: general detect (MOV DR raises #DB).
pub const DR7_GD: u64 = 1 << 13;
/// DR7 bit 10, always set: the value after RESET and INIT (0x400).
pub const DR7_FIXED_1: u64 = 0x400;
/// DR7 bits software can change.
pub const DR7_VOLATILE: u64 = 0xffff_2bff;
