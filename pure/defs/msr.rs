// SPDX-License-Identifier: GPL-2.0
//! MSR indices (upstream `asm/msr-index.h`, and `uapi/asm/kvm_para.h` for
//! `MSR_KVM_*`) and the bits of MSR values, in index order. EFER's bits are
//! in [`super::regs`] with the other control register bits.

// --- 0x0000_0000 - 0x0000_0fff: architectural and Intel MSRs ---------------

/// `IA32_TIME_STAMP_COUNTER`.
pub const MSR_IA32_TSC: u32 = 0x10;
/// kvmclock wall clock, old index (`KVM_FEATURE_CLOCKSOURCE`).
pub const MSR_KVM_WALL_CLOCK: u32 = 0x11;
/// kvmclock system time, old index (`KVM_FEATURE_CLOCKSOURCE`).
pub const MSR_KVM_SYSTEM_TIME: u32 = 0x12;
/// `IA32_PLATFORM_ID`.
pub const MSR_IA32_PLATFORM_ID: u32 = 0x17;
/// `IA32_APIC_BASE`.
pub const MSR_IA32_APICBASE: u32 = 0x1b;
/// `IA32_APIC_BASE[8]`: this is the bootstrap processor.
pub const MSR_IA32_APICBASE_BSP: u64 = 1 << 8;
/// `IA32_APIC_BASE[10]` (EXTD): x2APIC mode (upstream `apicdef.h`).
pub const X2APIC_ENABLE: u64 = 1 << 10;
/// `IA32_APIC_BASE[11]` (EN): the local APIC is enabled.
pub const MSR_IA32_APICBASE_ENABLE: u64 = 1 << 11;
/// The xAPIC MMIO base after reset (upstream `apicdef.h`).
pub const APIC_DEFAULT_PHYS_BASE: u64 = 0xfee0_0000;
/// `MSR_EBL_CR_POWERON` (P6 power-on configuration).
pub const MSR_IA32_EBL_CR_POWERON: u32 = 0x2a;
/// `MSR_SMI_COUNT`.
pub const MSR_SMI_COUNT: u32 = 0x34;
/// `IA32_FEATURE_CONTROL`.
pub const MSR_IA32_FEAT_CTL: u32 = 0x3a;
/// `IA32_FEATURE_CONTROL[0]`: the MSR is locked until reset.
pub const FEAT_CTL_LOCKED: u64 = 1 << 0;
/// `IA32_FEATURE_CONTROL[1]`: VMXON is allowed inside SMX operation.
pub const FEAT_CTL_VMX_ENABLED_INSIDE_SMX: u64 = 1 << 1;
/// `IA32_FEATURE_CONTROL[2]`: VMXON is allowed outside SMX operation.
pub const FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX: u64 = 1 << 2;
/// `IA32_TSC_ADJUST`.
pub const MSR_IA32_TSC_ADJUST: u32 = 0x3b;
/// `IA32_SPEC_CTRL`.
pub const MSR_IA32_SPEC_CTRL: u32 = 0x48;
/// `IA32_SPEC_CTRL[2]`: speculative store bypass disable (also the only
/// bit of `VIRT_SPEC_CTRL`).
pub const SPEC_CTRL_SSBD: u64 = 1 << 2;
/// `IA32_PRED_CMD` (write-only: IBPB, SBPB).
pub const MSR_IA32_PRED_CMD: u32 = 0x49;
/// `IA32_BIOS_UPDT_TRIG` (microcode update trigger).
pub const MSR_IA32_UCODE_WRITE: u32 = 0x79;
/// `IA32_BIOS_SIGN_ID` (microcode revision).
pub const MSR_IA32_UCODE_REV: u32 = 0x8b;
/// `IA32_SMBASE`.
pub const MSR_IA32_SMBASE: u32 = 0x9e;
/// `IA32_PMC0`, the P6 name of the first general-purpose counter.
pub const MSR_P6_PERFCTR0: u32 = 0xc1;
/// `IA32_PMC1`, the P6 name of the second general-purpose counter.
pub const MSR_P6_PERFCTR1: u32 = 0xc2;
/// `IA32_PMC0`: Intel general-purpose counters, one MSR each from here.
pub const MSR_ARCH_PERFMON_PERFCTR0: u32 = 0xc1;
/// `MSR_FSB_FREQ` (front-side bus frequency).
pub const MSR_FSB_FREQ: u32 = 0xcd;
/// `MSR_PLATFORM_INFO`.
pub const MSR_PLATFORM_INFO: u32 = 0xce;
/// `MSR_PLATFORM_INFO[31]`: CPUID faulting is available.
pub const MSR_PLATFORM_INFO_CPUID_FAULT: u64 = 1 << 31;
/// `IA32_UMWAIT_CONTROL`.
pub const MSR_IA32_UMWAIT_CONTROL: u32 = 0xe1;
/// `IA32_MTRRCAP` (upstream `MSR_MTRRcap`).
pub const MSR_MTRRCAP: u32 = 0xfe;
/// `IA32_MTRRCAP[7:0]`: number of variable-range MTRRs.
pub const MTRR_CAP_VCNT: u64 = 0xff;
/// `IA32_MTRRCAP[8]`: fixed-range MTRRs are supported.
pub const MTRR_CAP_FIX: u64 = 1 << 8;
/// `IA32_MTRRCAP[10]`: write-combining memory type is supported.
pub const MTRR_CAP_WC: u64 = 1 << 10;
/// `IA32_ARCH_CAPABILITIES`.
pub const MSR_IA32_ARCH_CAPABILITIES: u32 = 0x10a;
/// `IA32_FLUSH_CMD` (write-only: L1D flush).
pub const MSR_IA32_FLUSH_CMD: u32 = 0x10b;
/// `ARCH_CAPABILITIES[0]`: not vulnerable to Meltdown.
pub const ARCH_CAP_RDCL_NO: u64 = 1 << 0;
/// `ARCH_CAPABILITIES[1]`: enhanced IBRS.
pub const ARCH_CAP_IBRS_ALL: u64 = 1 << 1;
/// `ARCH_CAPABILITIES[2]`: RET may use alternative branch predictors.
pub const ARCH_CAP_RSBA: u64 = 1 << 2;
/// `ARCH_CAPABILITIES[3]`: no L1D flush needed on VM entry.
pub const ARCH_CAP_SKIP_VMENTRY_L1DFLUSH: u64 = 1 << 3;
/// `ARCH_CAPABILITIES[4]`: not vulnerable to speculative store bypass.
pub const ARCH_CAP_SSB_NO: u64 = 1 << 4;
/// `ARCH_CAPABILITIES[5]`: not vulnerable to MDS.
pub const ARCH_CAP_MDS_NO: u64 = 1 << 5;
/// `ARCH_CAPABILITIES[6]`: no machine check on page size changes (iTLB
/// multihit).
pub const ARCH_CAP_PSCHANGE_MC_NO: u64 = 1 << 6;
/// `ARCH_CAPABILITIES[7]`: `MSR_IA32_TSX_CTRL` exists.
pub const ARCH_CAP_TSX_CTRL_MSR: u64 = 1 << 7;
/// `ARCH_CAPABILITIES[8]`: not vulnerable to TSX async abort.
pub const ARCH_CAP_TAA_NO: u64 = 1 << 8;
/// `ARCH_CAPABILITIES[13]`: not vulnerable to SBDR/SSDP.
pub const ARCH_CAP_SBDR_SSDP_NO: u64 = 1 << 13;
/// `ARCH_CAPABILITIES[14]`: not vulnerable to FBSDP.
pub const ARCH_CAP_FBSDP_NO: u64 = 1 << 14;
/// `ARCH_CAPABILITIES[15]`: not vulnerable to PSDP.
pub const ARCH_CAP_PSDP_NO: u64 = 1 << 15;
/// `ARCH_CAPABILITIES[17]`: VERW clears fill buffers.
pub const ARCH_CAP_FB_CLEAR: u64 = 1 << 17;
/// `ARCH_CAPABILITIES[19]`: RET may use alternative predictors when the
/// RSB underflows.
pub const ARCH_CAP_RRSBA: u64 = 1 << 19;
/// `ARCH_CAPABILITIES[20]`: not vulnerable to branch history injection.
pub const ARCH_CAP_BHI_NO: u64 = 1 << 20;
/// `ARCH_CAPABILITIES[24]`: not vulnerable to post-barrier RSB predictions.
pub const ARCH_CAP_PBRSB_NO: u64 = 1 << 24;
/// `ARCH_CAPABILITIES[26]`: not vulnerable to gather data sampling.
pub const ARCH_CAP_GDS_NO: u64 = 1 << 26;
/// `ARCH_CAPABILITIES[27]`: not vulnerable to register file data sampling.
pub const ARCH_CAP_RFDS_NO: u64 = 1 << 27;
/// `ARCH_CAPABILITIES[28]`: VERW clears register files.
pub const ARCH_CAP_RFDS_CLEAR: u64 = 1 << 28;
/// `ARCH_CAPABILITIES[62]`: not vulnerable to indirect target selection.
pub const ARCH_CAP_ITS_NO: u64 = 1 << 62;
/// `IA32_TSX_CTRL`.
pub const MSR_IA32_TSX_CTRL: u32 = 0x122;
/// `MSR_MISC_FEATURES_ENABLES`.
pub const MSR_MISC_FEATURES_ENABLES: u32 = 0x140;
/// `MSR_MISC_FEATURES_ENABLES[0]`: CPUID faults (#GP) outside ring 0.
pub const MSR_MISC_FEATURES_ENABLES_CPUID_FAULT: u64 = 1 << 0;
/// `IA32_SYSENTER_CS`.
pub const MSR_IA32_SYSENTER_CS: u32 = 0x174;
/// `IA32_SYSENTER_ESP`.
pub const MSR_IA32_SYSENTER_ESP: u32 = 0x175;
/// `IA32_SYSENTER_EIP`.
pub const MSR_IA32_SYSENTER_EIP: u32 = 0x176;
/// `IA32_MCG_CAP`.
pub const MSR_IA32_MCG_CAP: u32 = 0x179;
/// `IA32_MCG_CAP[7:0]`: number of machine-check banks (upstream `asm/mce.h`).
pub const MCG_BANKCNT_MASK: u64 = 0xff;
/// `IA32_MCG_CAP[8]`: `IA32_MCG_CTL` exists.
pub const MCG_CTL_P: u64 = 1 << 8;
/// `IA32_MCG_CAP[9]`: extended machine-check state registers exist.
pub const MCG_EXT_P: u64 = 1 << 9;
/// `IA32_MCG_CAP[10]`: corrected machine-check interrupts (CMCI).
pub const MCG_CMCI_P: u64 = 1 << 10;
/// `IA32_MCG_CAP[24]`: software error recovery.
pub const MCG_SER_P: u64 = 1 << 24;
/// `IA32_MCG_CAP[27]`: local machine checks (LMCE).
pub const MCG_LMCE_P: u64 = 1 << 27;
/// `IA32_MCG_STATUS`.
pub const MSR_IA32_MCG_STATUS: u32 = 0x17a;
/// `IA32_MCG_CTL`.
pub const MSR_IA32_MCG_CTL: u32 = 0x17b;
/// `IA32_PERFEVTSEL0`: Intel general-purpose event selects, one MSR each
/// from here.
pub const MSR_ARCH_PERFMON_EVENTSEL0: u32 = 0x186;
/// `IA32_PERFEVTSEL0`, the P6 name.
pub const MSR_P6_EVNTSEL0: u32 = 0x186;
/// `IA32_PERFEVTSEL1`, the P6 name.
pub const MSR_P6_EVNTSEL1: u32 = 0x187;
/// `IA32_PERF_CTL`.
pub const MSR_IA32_PERF_CTL: u32 = 0x199;
/// `IA32_MISC_ENABLE`.
pub const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
/// `IA32_MISC_ENABLE[7]`: performance monitoring available (read-only
/// for the guest: its writes are ignored).
pub const MSR_IA32_MISC_ENABLE_EMON: u64 = 1 << 7;
/// `IA32_MISC_ENABLE[11]`: branch trace storage is unavailable.
pub const MSR_IA32_MISC_ENABLE_BTS_UNAVAIL: u64 = 1 << 11;
/// MISC_ENABLE: MONITOR/MWAIT enabled (CPUID.1:ECX.MWAIT follows it).
pub const MSR_IA32_MISC_ENABLE_MWAIT: u64 = 1 << 18;
/// `IA32_MISC_ENABLE[12]`: PEBS is unavailable.
pub const MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL: u64 = 1 << 12;
/// `IA32_XFD`.
pub const MSR_IA32_XFD: u32 = 0x1c4;
/// `IA32_XFD_ERR`.
pub const MSR_IA32_XFD_ERR: u32 = 0x1c5;
/// `IA32_DEBUGCTL`.
pub const MSR_IA32_DEBUGCTLMSR: u32 = 0x1d9;
/// Last branch record: from IP.
pub const MSR_IA32_LASTBRANCHFROMIP: u32 = 0x1db;
/// Last branch record: to IP.
pub const MSR_IA32_LASTBRANCHTOIP: u32 = 0x1dc;
/// Last exception record: from IP.
pub const MSR_IA32_LASTINTFROMIP: u32 = 0x1dd;
/// Last exception record: to IP.
pub const MSR_IA32_LASTINTTOIP: u32 = 0x1de;
/// `MSR_POWER_CTL`.
pub const MSR_IA32_POWER_CTL: u32 = 0x1fc;
/// `IA32_MTRR_PHYSBASE0`, the first variable-range MTRR: base and mask
/// MSRs alternate from here ([`mtrr_phys_base_msr`],
/// [`mtrr_phys_mask_msr`]; upstream has only the `MTRRphysBase_MSR()`
/// macros).
pub const MSR_MTRR_PHYS_BASE0: u32 = 0x200;
/// Variable-range MTRRs a KVM guest has (upstream `asm/kvm_host.h`).
pub const KVM_NR_VAR_MTRR: u32 = 8;
/// `IA32_MTRR_FIX64K_00000` (upstream `MSR_MTRRfix64K_00000`).
pub const MSR_MTRRFIX64K_00000: u32 = 0x250;
/// `IA32_MTRR_FIX16K_80000` (upstream `MSR_MTRRfix16K_80000`).
pub const MSR_MTRRFIX16K_80000: u32 = 0x258;
/// `IA32_MTRR_FIX16K_A0000` (upstream `MSR_MTRRfix16K_A0000`).
pub const MSR_MTRRFIX16K_A0000: u32 = 0x259;
/// `IA32_MTRR_FIX4K_C0000`, first of eight 4K ranges up to `_F8000`
/// (upstream `MSR_MTRRfix4K_C0000`).
pub const MSR_MTRRFIX4K_C0000: u32 = 0x268;
/// `IA32_PAT`.
pub const MSR_IA32_CR_PAT: u32 = 0x277;
/// `IA32_PAT` after reset: WB, WT, UC-, UC in both halves (upstream
/// `arch/x86/kvm/msrs.h`).
pub const MSR_IA32_CR_PAT_DEFAULT: u64 = 0x0007_0406_0007_0406;
/// `IA32_MC0_CTL2` (CMCI control of bank 0); see [`msr_ia32_mcx_ctl2`].
pub const MSR_IA32_MC0_CTL2: u32 = 0x280;
/// `IA32_MTRR_DEF_TYPE` (upstream `MSR_MTRRdefType`).
pub const MSR_MTRRDEFTYPE: u32 = 0x2ff;
/// `IA32_FIXED_CTR0`: Intel fixed-function counters, one MSR each from here.
pub const MSR_ARCH_PERFMON_FIXED_CTR0: u32 = 0x309;
/// `IA32_PERF_CAPABILITIES`.
pub const MSR_IA32_PERF_CAPABILITIES: u32 = 0x345;
/// `IA32_FIXED_CTR_CTRL`.
pub const MSR_CORE_PERF_FIXED_CTR_CTRL: u32 = 0x38d;
/// `IA32_PERF_GLOBAL_STATUS`.
pub const MSR_CORE_PERF_GLOBAL_STATUS: u32 = 0x38e;
/// `IA32_PERF_GLOBAL_CTRL`.
pub const MSR_CORE_PERF_GLOBAL_CTRL: u32 = 0x38f;
/// `IA32_PEBS_ENABLE`.
pub const MSR_IA32_PEBS_ENABLE: u32 = 0x3f1;
/// `MSR_PEBS_DATA_CFG`.
pub const MSR_PEBS_DATA_CFG: u32 = 0x3f2;
/// `IA32_MC0_CTL`: machine-check bank 0; bank `n` has CTL, STATUS, ADDR
/// and MISC at `0x400 + 4n` ([`msr_ia32_mcx_ctl`] and the others).
pub const MSR_IA32_MC0_CTL: u32 = 0x400;
/// `IA32_MC0_STATUS`.
pub const MSR_IA32_MC0_STATUS: u32 = 0x401;
/// `IA32_MC0_ADDR`.
pub const MSR_IA32_MC0_ADDR: u32 = 0x402;
/// `IA32_MC0_MISC`.
pub const MSR_IA32_MC0_MISC: u32 = 0x403;
/// Machine-check banks a KVM guest may have (upstream `x86.h`).
pub const KVM_MAX_MCE_BANKS: u32 = 32;
/// `IA32_VMX_BASIC`, the first VMX capability MSR.
pub const MSR_IA32_VMX_BASIC: u32 = 0x480;
/// `IA32_VMX_PINBASED_CTLS`.
pub const MSR_IA32_VMX_PINBASED_CTLS: u32 = 0x481;
/// `IA32_VMX_PROCBASED_CTLS`.
pub const MSR_IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
/// `IA32_VMX_EXIT_CTLS`.
pub const MSR_IA32_VMX_EXIT_CTLS: u32 = 0x483;
/// `IA32_VMX_ENTRY_CTLS`.
pub const MSR_IA32_VMX_ENTRY_CTLS: u32 = 0x484;
/// `IA32_VMX_MISC`.
pub const MSR_IA32_VMX_MISC: u32 = 0x485;
/// `IA32_VMX_CR0_FIXED0`.
pub const MSR_IA32_VMX_CR0_FIXED0: u32 = 0x486;
/// `IA32_VMX_CR0_FIXED1`.
pub const MSR_IA32_VMX_CR0_FIXED1: u32 = 0x487;
/// `IA32_VMX_CR4_FIXED0`.
pub const MSR_IA32_VMX_CR4_FIXED0: u32 = 0x488;
/// `IA32_VMX_CR4_FIXED1`.
pub const MSR_IA32_VMX_CR4_FIXED1: u32 = 0x489;
/// `IA32_VMX_VMCS_ENUM`.
pub const MSR_IA32_VMX_VMCS_ENUM: u32 = 0x48a;
/// `IA32_VMX_PROCBASED_CTLS2`.
pub const MSR_IA32_VMX_PROCBASED_CTLS2: u32 = 0x48b;
/// `IA32_VMX_EPT_VPID_CAP`.
pub const MSR_IA32_VMX_EPT_VPID_CAP: u32 = 0x48c;
/// `IA32_VMX_TRUE_PINBASED_CTLS`.
pub const MSR_IA32_VMX_TRUE_PINBASED_CTLS: u32 = 0x48d;
/// `IA32_VMX_TRUE_PROCBASED_CTLS`.
pub const MSR_IA32_VMX_TRUE_PROCBASED_CTLS: u32 = 0x48e;
/// `IA32_VMX_TRUE_EXIT_CTLS`.
pub const MSR_IA32_VMX_TRUE_EXIT_CTLS: u32 = 0x48f;
/// `IA32_VMX_TRUE_ENTRY_CTLS`.
pub const MSR_IA32_VMX_TRUE_ENTRY_CTLS: u32 = 0x490;
/// `IA32_VMX_VMFUNC`.
pub const MSR_IA32_VMX_VMFUNC: u32 = 0x491;
/// `IA32_VMX_PROCBASED_CTLS3`.
pub const MSR_IA32_VMX_PROCBASED_CTLS3: u32 = 0x492;
/// `IA32_MCG_EXT_CTL`.
pub const MSR_IA32_MCG_EXT_CTL: u32 = 0x4d0;
/// `IA32_RTIT_OUTPUT_BASE` (Intel PT).
pub const MSR_IA32_RTIT_OUTPUT_BASE: u32 = 0x560;
/// `IA32_RTIT_OUTPUT_MASK_PTRS`.
pub const MSR_IA32_RTIT_OUTPUT_MASK: u32 = 0x561;
/// `IA32_RTIT_CTL`.
pub const MSR_IA32_RTIT_CTL: u32 = 0x570;
/// `IA32_RTIT_STATUS`.
pub const MSR_IA32_RTIT_STATUS: u32 = 0x571;
/// `IA32_RTIT_CR3_MATCH`.
pub const MSR_IA32_RTIT_CR3_MATCH: u32 = 0x572;
/// `IA32_RTIT_ADDR0_A`, first of the eight address range MSRs.
pub const MSR_IA32_RTIT_ADDR0_A: u32 = 0x580;
/// `IA32_RTIT_ADDR3_B`, last of the address range MSRs.
pub const MSR_IA32_RTIT_ADDR3_B: u32 = 0x587;
/// `IA32_DS_AREA`.
pub const MSR_IA32_DS_AREA: u32 = 0x600;
/// `MSR_RAPL_POWER_UNIT`.
pub const MSR_RAPL_POWER_UNIT: u32 = 0x606;
/// `MSR_PKG_ENERGY_STATUS`.
pub const MSR_PKG_ENERGY_STATUS: u32 = 0x611;
/// `MSR_DRAM_ENERGY_STATUS`.
pub const MSR_DRAM_ENERGY_STATUS: u32 = 0x619;
/// `MSR_PP0_ENERGY_STATUS`.
pub const MSR_PP0_ENERGY_STATUS: u32 = 0x639;
/// `MSR_PP1_ENERGY_STATUS`.
pub const MSR_PP1_ENERGY_STATUS: u32 = 0x641;
/// `IA32_U_CET`.
pub const MSR_IA32_U_CET: u32 = 0x6a0;
/// `IA32_S_CET`.
pub const MSR_IA32_S_CET: u32 = 0x6a2;
/// `IA32_PL0_SSP`.
pub const MSR_IA32_PL0_SSP: u32 = 0x6a4;
/// `IA32_PL1_SSP`.
pub const MSR_IA32_PL1_SSP: u32 = 0x6a5;
/// `IA32_PL2_SSP`.
pub const MSR_IA32_PL2_SSP: u32 = 0x6a6;
/// `IA32_PL3_SSP`.
pub const MSR_IA32_PL3_SSP: u32 = 0x6a7;
/// `IA32_INTERRUPT_SSP_TABLE_ADDR`.
pub const MSR_IA32_INT_SSP_TAB: u32 = 0x6a8;
/// `IA32_TSC_DEADLINE`.
pub const MSR_IA32_TSC_DEADLINE: u32 = 0x6e0;
/// First x2APIC MSR: register at xAPIC offset `o` is MSR
/// `APIC_BASE_MSR + (o >> 4)` (upstream `apicdef.h`; see [`x2apic_msr`]).
pub const APIC_BASE_MSR: u32 = 0x800;
/// Last MSR of the x2APIC range.
pub const X2APIC_MSR_LAST: u32 = APIC_BASE_MSR + 0xff;
/// Shift between an xAPIC register offset and its x2APIC MSR number.
pub const X2APIC_MSR_REG_SHIFT: u32 = 4;
/// `IA32_BNDCFGS` (MPX).
pub const MSR_IA32_BNDCFGS: u32 = 0xd90;
/// `IA32_XSS`.
pub const MSR_IA32_XSS: u32 = 0xda0;

// --- 0x4b56_4d00 - 0x4b56_4dff: KVM paravirtual MSRs (uapi kvm_para.h) -----

/// kvmclock wall clock (`KVM_FEATURE_CLOCKSOURCE2`).
pub const MSR_KVM_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
/// kvmclock system time (`KVM_FEATURE_CLOCKSOURCE2`).
pub const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;
/// Asynchronous page fault control.
pub const MSR_KVM_ASYNC_PF_EN: u32 = 0x4b56_4d02;
/// Steal time area.
pub const MSR_KVM_STEAL_TIME: u32 = 0x4b56_4d03;
/// `MSR_KVM_STEAL_TIME` bits 1-5: reserved (the area is 64-byte aligned).
pub const KVM_STEAL_RESERVED_MASK: u64 = 0x3e;
/// PV end-of-interrupt.
pub const MSR_KVM_PV_EOI_EN: u32 = 0x4b56_4d04;
/// Host-side halt polling control.
pub const MSR_KVM_POLL_CONTROL: u32 = 0x4b56_4d05;
/// Asynchronous page fault "page ready" interrupt vector.
pub const MSR_KVM_ASYNC_PF_INT: u32 = 0x4b56_4d06;
/// Asynchronous page fault acknowledge.
pub const MSR_KVM_ASYNC_PF_ACK: u32 = 0x4b56_4d07;

// --- 0xc000_0000 - 0xc001_ffff: AMD64 and AMD MSRs --------------------------

/// `IA32_EFER` (bits in [`super::regs`]).
pub const MSR_EFER: u32 = 0xc000_0080;
/// `STAR`: SYSCALL/SYSRET segment selectors.
pub const MSR_STAR: u32 = 0xc000_0081;
/// `LSTAR`: 64-bit SYSCALL target.
pub const MSR_LSTAR: u32 = 0xc000_0082;
/// `CSTAR`: compatibility-mode SYSCALL target.
pub const MSR_CSTAR: u32 = 0xc000_0083;
/// `SFMASK`: RFLAGS mask for SYSCALL.
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
/// `FS.base`.
pub const MSR_FS_BASE: u32 = 0xc000_0100;
/// `GS.base`.
pub const MSR_GS_BASE: u32 = 0xc000_0101;
/// `KernelGSbase` (swapped in by SWAPGS).
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
/// `TSC_AUX` (ECX of RDTSCP, RDPID).
pub const MSR_TSC_AUX: u32 = 0xc000_0103;
/// `TSC_RATIO`: guest TSC frequency multiplier (8.32 fixed point).
pub const MSR_AMD64_TSC_RATIO: u32 = 0xc000_0104;
/// `PerfCntrGlobalStatus`.
pub const MSR_AMD64_PERF_CNTR_GLOBAL_STATUS: u32 = 0xc000_0300;
/// `PerfCntrGlobalCtl`.
pub const MSR_AMD64_PERF_CNTR_GLOBAL_CTL: u32 = 0xc000_0301;
/// `PerfCntrGlobalStatusClr`.
pub const MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR: u32 = 0xc000_0302;
/// `PerfCntrGlobalStatusSet`.
pub const MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET: u32 = 0xc000_0303;
/// Legacy AMD event select 0 (four of them).
pub const MSR_K7_EVNTSEL0: u32 = 0xc001_0000;
/// Legacy AMD event select 3.
pub const MSR_K7_EVNTSEL3: u32 = 0xc001_0003;
/// Legacy AMD counter 0 (four of them).
pub const MSR_K7_PERFCTR0: u32 = 0xc001_0004;
/// Legacy AMD counter 3.
pub const MSR_K7_PERFCTR3: u32 = 0xc001_0007;
/// `SYSCFG`.
pub const MSR_AMD64_SYSCFG: u32 = 0xc001_0010;
/// `HWCR`.
pub const MSR_K7_HWCR: u32 = 0xc001_0015;
/// `HWCR` bits a guest writes that are ignored: TLB cache disable (3),
/// flush filter disable (6), IGNNE emulation (8).
pub const MSR_K7_HWCR_IGNORED: u64 = (1 << 3) | (1 << 6) | (1 << 8);
/// `HWCR[18]`: MCi_STATUS writes enabled.
pub const MSR_K7_HWCR_MCSTATUSWREN: u64 = 1 << 18;
/// `HWCR[24]`: TSC frequency select.
pub const MSR_K7_HWCR_TSCFREQSEL: u64 = 1 << 24;
/// `HWCR[35]`: CPUID faults outside ring 0.
pub const MSR_K7_HWCR_CPUID_USER_DIS: u64 = 1 << 35;
/// `NB_CFG`.
pub const MSR_AMD64_NB_CFG: u32 = 0xc001_001f;
/// Microcode patch loader.
pub const MSR_AMD64_PATCH_LOADER: u32 = 0xc001_0020;
/// Interrupt pending message.
pub const MSR_K8_INT_PENDING_MSG: u32 = 0xc001_0055;
/// MMIO configuration base address.
pub const MSR_FAM10H_MMIO_CONF_BASE: u32 = 0xc001_0058;
/// SMM TSEG base.
pub const MSR_K8_TSEG_ADDR: u32 = 0xc001_0112;
/// SMM TSEG mask.
pub const MSR_K8_TSEG_MASK: u32 = 0xc001_0113;
/// `VM_CR`: SVM control.
pub const MSR_VM_CR: u32 = 0xc001_0114;
/// `VM_CR` bits that exist: DPD, R_INIT, DIS_A20M, LOCK, SVMDIS.
pub const SVM_VM_CR_VALID_MASK: u64 = 0x1f;
/// `VM_CR.LOCK`.
pub const SVM_VM_CR_SVM_LOCK_MASK: u64 = 1 << 3;
/// `VM_CR.SVMDIS`: SVM disabled.
pub const SVM_VM_CR_SVM_DIS_MASK: u64 = 1 << 4;
/// `VM_HSAVE_PA`: host save area of VMRUN.
pub const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
/// `VIRT_SPEC_CTRL`.
pub const MSR_AMD64_VIRT_SPEC_CTRL: u32 = 0xc001_011f;
/// First core performance event select (`PERF_CTL0`): `PERF_CTLn` is at
/// `MSR_F15H_PERF_CTL0 + 2n`, `PERF_CTRn` right after it.
pub const MSR_F15H_PERF_CTL0: u32 = 0xc001_0200;
/// First core performance counter (`PERF_CTR0`).
pub const MSR_F15H_PERF_CTR0: u32 = 0xc001_0201;
/// `OSVW_ID_LENGTH`: OS visible workarounds.
pub const MSR_AMD64_OSVW_ID_LENGTH: u32 = 0xc001_0140;
/// `OSVW_STATUS`.
pub const MSR_AMD64_OSVW_STATUS: u32 = 0xc001_0141;
/// `DC_CFG`.
pub const MSR_AMD64_DC_CFG: u32 = 0xc001_1022;
/// `TW_CFG`.
pub const MSR_AMD64_TW_CFG: u32 = 0xc001_1023;
/// `DE_CFG`.
pub const MSR_AMD64_DE_CFG: u32 = 0xc001_1029;
/// `DE_CFG[1]`: LFENCE is dispatch serializing.
pub const MSR_AMD64_DE_CFG_LFENCE_SERIALIZE: u64 = 1 << 1;
/// `BU_CFG2`.
pub const MSR_AMD64_BU_CFG2: u32 = 0xc001_102a;
/// `EX_CFG`.
pub const MSR_F15H_EX_CFG: u32 = 0xc001_102c;

// --- Computed indices ----------------------------------------------------------

/// `IA32_MTRR_PHYSBASEn` (upstream `MTRRphysBase_MSR(n)`); `None` past the
/// end of the index space.
pub const fn mtrr_phys_base_msr(n: u32) -> Option<u32> {
    match n.checked_mul(2) {
        Some(off) => MSR_MTRR_PHYS_BASE0.checked_add(off),
        None => None,
    }
}

/// `IA32_MTRR_PHYSMASKn` (upstream `MTRRphysMask_MSR(n)`).
pub const fn mtrr_phys_mask_msr(n: u32) -> Option<u32> {
    match mtrr_phys_base_msr(n) {
        Some(base) => base.checked_add(1),
        None => None,
    }
}

const fn mc_bank_msr(first: u32, bank: u32) -> Option<u32> {
    match bank.checked_mul(4) {
        Some(off) => first.checked_add(off),
        None => None,
    }
}

/// `IA32_MCn_CTL` (upstream `MSR_IA32_MCx_CTL(n)`).
pub const fn msr_ia32_mcx_ctl(bank: u32) -> Option<u32> {
    mc_bank_msr(MSR_IA32_MC0_CTL, bank)
}

/// `IA32_MCn_STATUS` (upstream `MSR_IA32_MCx_STATUS(n)`).
pub const fn msr_ia32_mcx_status(bank: u32) -> Option<u32> {
    mc_bank_msr(MSR_IA32_MC0_STATUS, bank)
}

/// `IA32_MCn_ADDR` (upstream `MSR_IA32_MCx_ADDR(n)`).
pub const fn msr_ia32_mcx_addr(bank: u32) -> Option<u32> {
    mc_bank_msr(MSR_IA32_MC0_ADDR, bank)
}

/// `IA32_MCn_MISC` (upstream `MSR_IA32_MCx_MISC(n)`).
pub const fn msr_ia32_mcx_misc(bank: u32) -> Option<u32> {
    mc_bank_msr(MSR_IA32_MC0_MISC, bank)
}

/// `IA32_MCn_CTL2` (upstream `MSR_IA32_MCx_CTL2(n)`: one MSR per bank).
pub const fn msr_ia32_mcx_ctl2(bank: u32) -> Option<u32> {
    MSR_IA32_MC0_CTL2.checked_add(bank)
}

/// The machine-check bank and register (0 = CTL, 1 = STATUS, 2 = ADDR,
/// 3 = MISC) of MSR `index`, for banks below [`KVM_MAX_MCE_BANKS`].
pub const fn mce_bank_reg(index: u32) -> Option<(u32, u32)> {
    match index.checked_sub(MSR_IA32_MC0_CTL) {
        Some(off) if off < KVM_MAX_MCE_BANKS * 4 => Some((off / 4, off % 4)),
        _ => None,
    }
}

/// The x2APIC MSR of the xAPIC register at `offset` (upstream
/// `X2APIC_MSR(offset)`).
pub const fn x2apic_msr(offset: u32) -> u32 {
    APIC_BASE_MSR + ((offset >> X2APIC_MSR_REG_SHIFT) & 0xff)
}

/// The xAPIC register offset of x2APIC MSR `index`, or `None` outside
/// `APIC_BASE_MSR..=X2APIC_MSR_LAST`.
pub const fn x2apic_reg(index: u32) -> Option<u32> {
    match index.checked_sub(APIC_BASE_MSR) {
        Some(n) if index <= X2APIC_MSR_LAST => Some(n << X2APIC_MSR_REG_SHIFT),
        _ => None,
    }
}
