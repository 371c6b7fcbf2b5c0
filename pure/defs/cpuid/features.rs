// SPDX-License-Identifier: GPL-2.0
//! Feature bits by name (Linux 7.3 `cpufeatures.h` and KVM's
//! `reverse_cpuid.h`), as bits of the CPUID register that reports them.

use super::{Feature, Leaf};

macro_rules! features {
    ($leaf:ident: $($name:ident = $bit:expr, $doc:expr;)*) => {
        $(
            #[doc = $doc]
            pub const $name: Feature = Feature::new(Leaf::$leaf, $bit);
        )*
    };
}

features! { L1Edx:
    X86_FEATURE_FPU = 0, "Onboard FPU.";
    X86_FEATURE_VME = 1, "Virtual-8086 mode extensions.";
    X86_FEATURE_DE = 2, "Debugging extensions.";
    X86_FEATURE_PSE = 3, "Page size extensions.";
    X86_FEATURE_TSC = 4, "Time stamp counter.";
    X86_FEATURE_MSR = 5, "RDMSR/WRMSR.";
    X86_FEATURE_PAE = 6, "Physical address extensions.";
    X86_FEATURE_MCE = 7, "Machine check exception.";
    X86_FEATURE_CX8 = 8, "CMPXCHG8B.";
    X86_FEATURE_APIC = 9, "Onboard APIC.";
    X86_FEATURE_SEP = 11, "SYSENTER/SYSEXIT.";
    X86_FEATURE_MTRR = 12, "Memory type range registers.";
    X86_FEATURE_PGE = 13, "Page global enable.";
    X86_FEATURE_MCA = 14, "Machine check architecture.";
    X86_FEATURE_CMOV = 15, "CMOV.";
    X86_FEATURE_PAT = 16, "Page attribute table.";
    X86_FEATURE_PSE36 = 17, "36-bit PSEs.";
    X86_FEATURE_PN = 18, "Processor serial number.";
    X86_FEATURE_CLFLUSH = 19, "CLFLUSH.";
    X86_FEATURE_DS = 21, "Debug store.";
    X86_FEATURE_ACPI = 22, "ACPI via MSR.";
    X86_FEATURE_MMX = 23, "MMX.";
    X86_FEATURE_FXSR = 24, "FXSAVE/FXRSTOR.";
    X86_FEATURE_XMM = 25, "SSE.";
    X86_FEATURE_XMM2 = 26, "SSE2.";
    X86_FEATURE_SELFSNOOP = 27, "CPU self snoop.";
    X86_FEATURE_HT = 28, "Hyper-threading.";
    X86_FEATURE_ACC = 29, "Automatic clock control (TM).";
    X86_FEATURE_IA64 = 30, "IA-64 processor.";
    X86_FEATURE_PBE = 31, "Pending break enable.";
}

features! { L80000001Edx:
    X86_FEATURE_SYSCALL = 11, "SYSCALL/SYSRET.";
    X86_FEATURE_MP = 19, "MP capable.";
    X86_FEATURE_NX = 20, "Execute disable.";
    X86_FEATURE_MMXEXT = 22, "AMD MMX extensions.";
    X86_FEATURE_FXSR_OPT = 25, "FXSAVE/FXRSTOR optimizations.";
    X86_FEATURE_GBPAGES = 26, "1G pages.";
    X86_FEATURE_RDTSCP = 27, "RDTSCP.";
    X86_FEATURE_LM = 29, "Long mode.";
    X86_FEATURE_3DNOWEXT = 30, "AMD 3DNow extensions.";
    X86_FEATURE_3DNOW = 31, "3DNow.";
}

features! { L1Ecx:
    X86_FEATURE_XMM3 = 0, "SSE3.";
    X86_FEATURE_PCLMULQDQ = 1, "PCLMULQDQ.";
    X86_FEATURE_DTES64 = 2, "64-bit debug store.";
    X86_FEATURE_MWAIT = 3, "MONITOR/MWAIT.";
    X86_FEATURE_DSCPL = 4, "CPL-qualified debug store.";
    X86_FEATURE_VMX = 5, "VMX.";
    X86_FEATURE_SMX = 6, "Safer mode extensions.";
    X86_FEATURE_EST = 7, "Enhanced SpeedStep.";
    X86_FEATURE_TM2 = 8, "Thermal monitor 2.";
    X86_FEATURE_SSSE3 = 9, "Supplemental SSE3.";
    X86_FEATURE_CID = 10, "Context ID.";
    X86_FEATURE_SDBG = 11, "Silicon debug.";
    X86_FEATURE_FMA = 12, "Fused multiply-add.";
    X86_FEATURE_CX16 = 13, "CMPXCHG16B.";
    X86_FEATURE_XTPR = 14, "xTPR update control.";
    X86_FEATURE_PDCM = 15, "Perf/debug capabilities MSR.";
    X86_FEATURE_PCID = 17, "Process context identifiers.";
    X86_FEATURE_DCA = 18, "Direct cache access.";
    X86_FEATURE_XMM4_1 = 19, "SSE4.1.";
    X86_FEATURE_XMM4_2 = 20, "SSE4.2.";
    X86_FEATURE_X2APIC = 21, "x2APIC.";
    X86_FEATURE_MOVBE = 22, "MOVBE.";
    X86_FEATURE_POPCNT = 23, "POPCNT.";
    X86_FEATURE_TSC_DEADLINE_TIMER = 24, "TSC deadline timer.";
    X86_FEATURE_AES = 25, "AES-NI.";
    X86_FEATURE_XSAVE = 26, "XSAVE/XRSTOR/XSETBV/XGETBV.";
    X86_FEATURE_OSXSAVE = 27, "CR4.OSXSAVE (runtime).";
    X86_FEATURE_AVX = 28, "AVX.";
    X86_FEATURE_F16C = 29, "16-bit FP conversions.";
    X86_FEATURE_RDRAND = 30, "RDRAND.";
    X86_FEATURE_HYPERVISOR = 31, "Running on a hypervisor.";
}

features! { LC0000001Edx:
    X86_FEATURE_SM2 = 0, "SM2.";
    X86_FEATURE_SM2_EN = 1, "SM2 enabled.";
    X86_FEATURE_XSTORE = 2, "RNG present (xstore).";
    X86_FEATURE_XSTORE_EN = 3, "RNG enabled.";
    X86_FEATURE_CCS = 4, "SM3 + SM4.";
    X86_FEATURE_CCS_EN = 5, "CCS enabled.";
    X86_FEATURE_XCRYPT = 6, "On-CPU crypto (xcrypt).";
    X86_FEATURE_XCRYPT_EN = 7, "xcrypt enabled.";
    X86_FEATURE_ACE2 = 8, "ACE v2.";
    X86_FEATURE_ACE2_EN = 9, "ACE v2 enabled.";
    X86_FEATURE_PHE = 10, "PadLock hash engine.";
    X86_FEATURE_PHE_EN = 11, "PHE enabled.";
    X86_FEATURE_PMM = 12, "PadLock Montgomery multiplier.";
    X86_FEATURE_PMM_EN = 13, "PMM enabled.";
    X86_FEATURE_RNG2 = 22, "RNG v2.";
    X86_FEATURE_RNG2_EN = 23, "RNG v2 enabled.";
    X86_FEATURE_PHE2 = 25, "PadLock hash engine v2.";
    X86_FEATURE_PHE2_EN = 26, "PHE v2 enabled.";
    X86_FEATURE_RSA = 27, "Big-number arithmetic.";
    X86_FEATURE_RSA_EN = 28, "RSA enabled.";
}

features! { L80000001Ecx:
    X86_FEATURE_LAHF_LM = 0, "LAHF/SAHF in long mode.";
    X86_FEATURE_CMP_LEGACY = 1, "Core multi-processing legacy mode.";
    X86_FEATURE_SVM = 2, "Secure virtual machine.";
    X86_FEATURE_EXTAPIC = 3, "Extended APIC space.";
    X86_FEATURE_CR8_LEGACY = 4, "CR8 in 32-bit mode.";
    X86_FEATURE_ABM = 5, "Advanced bit manipulation.";
    X86_FEATURE_SSE4A = 6, "SSE4A.";
    X86_FEATURE_MISALIGNSSE = 7, "Misaligned SSE mode.";
    X86_FEATURE_3DNOWPREFETCH = 8, "3DNow prefetch.";
    X86_FEATURE_OSVW = 9, "OS visible workaround.";
    X86_FEATURE_IBS = 10, "Instruction based sampling.";
    X86_FEATURE_XOP = 11, "Extended AVX.";
    X86_FEATURE_SKINIT = 12, "SKINIT/STGI.";
    X86_FEATURE_WDT = 13, "Watchdog timer.";
    X86_FEATURE_LWP = 15, "Light weight profiling.";
    X86_FEATURE_FMA4 = 16, "4-operand FMA.";
    X86_FEATURE_TCE = 17, "Translation cache extension.";
    X86_FEATURE_NODEID_MSR = 19, "NodeId MSR.";
    X86_FEATURE_TBM = 21, "Trailing bit manipulation.";
    X86_FEATURE_TOPOEXT = 22, "Topology extensions leaves.";
    X86_FEATURE_PERFCTR_CORE = 23, "Core performance counter extensions.";
    X86_FEATURE_PERFCTR_NB = 24, "NB performance counter extensions.";
    X86_FEATURE_BPEXT = 26, "Data breakpoint extension.";
    X86_FEATURE_PTSC = 27, "Performance time-stamp counter.";
    X86_FEATURE_PERFCTR_LLC = 28, "LLC performance counter extensions.";
    X86_FEATURE_MWAITX = 29, "MONITORX/MWAITX.";
}

features! { L7Ebx:
    X86_FEATURE_FSGSBASE = 0, "RD/WR FS/GS BASE.";
    X86_FEATURE_TSC_ADJUST = 1, "IA32_TSC_ADJUST MSR.";
    X86_FEATURE_SGX = 2, "Software guard extensions.";
    X86_FEATURE_BMI1 = 3, "BMI1.";
    X86_FEATURE_HLE = 4, "Hardware lock elision.";
    X86_FEATURE_AVX2 = 5, "AVX2.";
    X86_FEATURE_FDP_EXCPTN_ONLY = 6, "FPU data pointer only on x87 exceptions.";
    X86_FEATURE_SMEP = 7, "Supervisor mode execution protection.";
    X86_FEATURE_BMI2 = 8, "BMI2.";
    X86_FEATURE_ERMS = 9, "Enhanced REP MOVSB/STOSB.";
    X86_FEATURE_INVPCID = 10, "INVPCID.";
    X86_FEATURE_RTM = 11, "Restricted transactional memory.";
    X86_FEATURE_CQM = 12, "Cache QoS monitoring.";
    X86_FEATURE_ZERO_FCS_FDS = 13, "FPU CS/DS deprecated.";
    X86_FEATURE_MPX = 14, "Memory protection extensions.";
    X86_FEATURE_RDT_A = 15, "RDT allocation.";
    X86_FEATURE_AVX512F = 16, "AVX-512 foundation.";
    X86_FEATURE_AVX512DQ = 17, "AVX-512 DQ.";
    X86_FEATURE_RDSEED = 18, "RDSEED.";
    X86_FEATURE_ADX = 19, "ADCX/ADOX.";
    X86_FEATURE_SMAP = 20, "Supervisor mode access prevention.";
    X86_FEATURE_AVX512IFMA = 21, "AVX-512 IFMA.";
    X86_FEATURE_CLFLUSHOPT = 23, "CLFLUSHOPT.";
    X86_FEATURE_CLWB = 24, "CLWB.";
    X86_FEATURE_INTEL_PT = 25, "Intel processor trace.";
    X86_FEATURE_AVX512PF = 26, "AVX-512 prefetch.";
    X86_FEATURE_AVX512ER = 27, "AVX-512 exponential/reciprocal.";
    X86_FEATURE_AVX512CD = 28, "AVX-512 conflict detection.";
    X86_FEATURE_SHA_NI = 29, "SHA extensions.";
    X86_FEATURE_AVX512BW = 30, "AVX-512 BW.";
    X86_FEATURE_AVX512VL = 31, "AVX-512 VL.";
}

features! { LDSub1Eax:
    X86_FEATURE_XSAVEOPT = 0, "XSAVEOPT.";
    X86_FEATURE_XSAVEC = 1, "XSAVEC.";
    X86_FEATURE_XGETBV1 = 2, "XGETBV with ECX=1.";
    X86_FEATURE_XSAVES = 3, "XSAVES/XRSTORS.";
    X86_FEATURE_XFD = 4, "Extended feature disable.";
}

features! { L7Sub1Eax:
    X86_FEATURE_SHA512 = 0, "SHA512.";
    X86_FEATURE_SM3 = 1, "SM3.";
    X86_FEATURE_SM4 = 2, "SM4.";
    X86_FEATURE_AVX_VNNI = 4, "AVX VNNI.";
    X86_FEATURE_AVX512_BF16 = 5, "AVX-512 BFLOAT16.";
    X86_FEATURE_LASS = 6, "Linear address space separation.";
    X86_FEATURE_CMPCCXADD = 7, "CMPccXADD.";
    X86_FEATURE_ARCH_PERFMON_EXT = 8, "Architectural PerfMon extension.";
    X86_FEATURE_FZRM = 10, "Fast zero-length REP MOVSB.";
    X86_FEATURE_FSRS = 11, "Fast short REP STOSB.";
    X86_FEATURE_FSRC = 12, "Fast short REP CMPSB/SCASB.";
    X86_FEATURE_FRED = 17, "Flexible return and event delivery.";
    X86_FEATURE_LKGS = 18, "LKGS.";
    X86_FEATURE_WRMSRNS = 19, "Non-serializing WRMSR.";
    X86_FEATURE_AMX_FP16 = 21, "AMX fp16.";
    X86_FEATURE_AVX_IFMA = 23, "AVX IFMA.";
    X86_FEATURE_LAM = 26, "Linear address masking.";
    X86_FEATURE_MOVRS = 31, "MOVRS.";
}

features! { L80000008Ebx:
    X86_FEATURE_CLZERO = 0, "CLZERO.";
    X86_FEATURE_IRPERF = 1, "Instructions retired count.";
    X86_FEATURE_XSAVEERPTR = 2, "Always save/restore FP error pointers.";
    X86_FEATURE_INVLPGB = 3, "INVLPGB/TLBSYNC.";
    X86_FEATURE_RDPRU = 4, "RDPRU.";
    X86_FEATURE_WBNOINVD = 9, "WBNOINVD.";
    X86_FEATURE_AMD_IBPB = 12, "Indirect branch prediction barrier.";
    X86_FEATURE_AMD_IBRS = 14, "Indirect branch restricted speculation.";
    X86_FEATURE_AMD_STIBP = 15, "Single thread indirect branch predictors.";
    X86_FEATURE_AMD_STIBP_ALWAYS_ON = 17, "STIBP always-on preferred.";
    X86_FEATURE_AMD_IBRS_SAME_MODE = 19, "IBRS same mode protection.";
    X86_FEATURE_EFER_LMSLE_MBZ = 20, "EFER.LMSLE must be zero.";
    X86_FEATURE_AMD_PPIN = 23, "Protected processor inventory number.";
    X86_FEATURE_AMD_SSBD = 24, "Speculative store bypass disable.";
    X86_FEATURE_VIRT_SSBD = 25, "Virtualized SSBD.";
    X86_FEATURE_AMD_SSB_NO = 26, "SSB fixed in hardware.";
    X86_FEATURE_CPPC = 27, "Collaborative processor performance control.";
    X86_FEATURE_AMD_PSFD = 28, "Predictive store forwarding disable.";
    X86_FEATURE_BTC_NO = 29, "Not vulnerable to branch type confusion.";
    X86_FEATURE_AMD_IBPB_RET = 30, "IBPB clears the return address predictor.";
    X86_FEATURE_BRS = 31, "Branch sampling.";
}

features! { L6Eax:
    X86_FEATURE_DTHERM = 0, "Digital thermal sensor.";
    X86_FEATURE_IDA = 1, "Intel dynamic acceleration.";
    X86_FEATURE_ARAT = 2, "Always running APIC timer.";
}

features! { L8000000AEdx:
    X86_FEATURE_NPT = 0, "Nested page tables.";
    X86_FEATURE_LBRV = 1, "LBR virtualization.";
    X86_FEATURE_SVML = 2, "SVM lock.";
    X86_FEATURE_NRIPS = 3, "Next RIP save.";
    X86_FEATURE_TSCRATEMSR = 4, "TSC scaling.";
    X86_FEATURE_VMCBCLEAN = 5, "VMCB clean bits.";
    X86_FEATURE_FLUSHBYASID = 6, "Flush by ASID.";
    X86_FEATURE_DECODEASSISTS = 7, "Decode assists.";
    X86_FEATURE_PAUSEFILTER = 10, "Pause intercept filter.";
    X86_FEATURE_PFTHRESHOLD = 12, "Pause filter threshold.";
    X86_FEATURE_AVIC = 13, "AVIC.";
    X86_FEATURE_V_VMSAVE_VMLOAD = 15, "Virtual VMSAVE/VMLOAD.";
    X86_FEATURE_VGIF = 16, "Virtual GIF.";
    X86_FEATURE_GMET = 17, "Guest mode execution trap.";
    X86_FEATURE_X2AVIC = 18, "x2AVIC.";
    X86_FEATURE_V_SPEC_CTRL = 20, "Virtual SPEC_CTRL.";
    X86_FEATURE_VNMI = 25, "Virtual NMI.";
    X86_FEATURE_SVME_ADDR_CHK = 28, "SVME address check.";
    X86_FEATURE_BUS_LOCK_THRESHOLD = 29, "Bus lock threshold.";
    X86_FEATURE_IDLE_HLT = 30, "Idle HLT intercept.";
}

features! { L7Ecx:
    X86_FEATURE_AVX512VBMI = 1, "AVX-512 VBMI.";
    X86_FEATURE_UMIP = 2, "User mode instruction prevention.";
    X86_FEATURE_PKU = 3, "Protection keys for userspace.";
    X86_FEATURE_OSPKE = 4, "CR4.PKE (runtime).";
    X86_FEATURE_WAITPKG = 5, "UMONITOR/UMWAIT/TPAUSE.";
    X86_FEATURE_AVX512_VBMI2 = 6, "AVX-512 VBMI2.";
    X86_FEATURE_SHSTK = 7, "CET shadow stacks.";
    X86_FEATURE_GFNI = 8, "Galois field instructions.";
    X86_FEATURE_VAES = 9, "Vector AES.";
    X86_FEATURE_VPCLMULQDQ = 10, "Vector PCLMULQDQ.";
    X86_FEATURE_AVX512_VNNI = 11, "AVX-512 VNNI.";
    X86_FEATURE_AVX512_BITALG = 12, "AVX-512 BITALG.";
    X86_FEATURE_TME = 13, "Total memory encryption.";
    X86_FEATURE_AVX512_VPOPCNTDQ = 14, "AVX-512 VPOPCNTDQ.";
    X86_FEATURE_LA57 = 16, "5-level paging.";
    X86_FEATURE_RDPID = 22, "RDPID.";
    X86_FEATURE_BUS_LOCK_DETECT = 24, "Bus lock detect.";
    X86_FEATURE_CLDEMOTE = 25, "CLDEMOTE.";
    X86_FEATURE_MOVDIRI = 27, "MOVDIRI.";
    X86_FEATURE_MOVDIR64B = 28, "MOVDIR64B.";
    X86_FEATURE_ENQCMD = 29, "ENQCMD.";
    X86_FEATURE_SGX_LC = 30, "SGX launch control.";
}

features! { L7Edx:
    X86_FEATURE_AVX512_4VNNIW = 2, "AVX-512 4VNNIW.";
    X86_FEATURE_AVX512_4FMAPS = 3, "AVX-512 4FMAPS.";
    X86_FEATURE_FSRM = 4, "Fast short REP MOV.";
    X86_FEATURE_AVX512_VP2INTERSECT = 8, "AVX-512 VP2INTERSECT.";
    X86_FEATURE_SRBDS_CTRL = 9, "SRBDS mitigation MSR.";
    X86_FEATURE_MD_CLEAR = 10, "VERW clears CPU buffers.";
    X86_FEATURE_RTM_ALWAYS_ABORT = 11, "RTM always aborts.";
    X86_FEATURE_TSX_FORCE_ABORT = 13, "TSX_FORCE_ABORT.";
    X86_FEATURE_SERIALIZE = 14, "SERIALIZE.";
    X86_FEATURE_HYBRID_CPU = 15, "Hybrid part.";
    X86_FEATURE_TSXLDTRK = 16, "TSX suspend load address tracking.";
    X86_FEATURE_PCONFIG = 18, "PCONFIG.";
    X86_FEATURE_ARCH_LBR = 19, "Architectural LBR.";
    X86_FEATURE_IBT = 20, "CET indirect branch tracking.";
    X86_FEATURE_AMX_BF16 = 22, "AMX bf16.";
    X86_FEATURE_AVX512_FP16 = 23, "AVX-512 FP16.";
    X86_FEATURE_AMX_TILE = 24, "AMX tiles.";
    X86_FEATURE_AMX_INT8 = 25, "AMX int8.";
    X86_FEATURE_SPEC_CTRL = 26, "IBRS + IBPB.";
    X86_FEATURE_INTEL_STIBP = 27, "STIBP.";
    X86_FEATURE_FLUSH_L1D = 28, "IA32_FLUSH_CMD.";
    X86_FEATURE_ARCH_CAPABILITIES = 29, "IA32_ARCH_CAPABILITIES MSR.";
    X86_FEATURE_CORE_CAPABILITIES = 30, "IA32_CORE_CAPABILITIES MSR.";
    X86_FEATURE_SPEC_CTRL_SSBD = 31, "Speculative store bypass disable.";
}

features! { L8000001FEax:
    X86_FEATURE_SME = 0, "Secure memory encryption.";
    X86_FEATURE_SEV = 1, "Secure encrypted virtualization.";
    X86_FEATURE_VM_PAGE_FLUSH = 2, "VM page flush MSR.";
    X86_FEATURE_SEV_ES = 3, "SEV encrypted state.";
    X86_FEATURE_SEV_SNP = 4, "SEV secure nested paging.";
    X86_FEATURE_SME_COHERENT = 10, "Hardware cache coherency across encryption domains.";
}

features! { L80000021Eax:
    X86_FEATURE_NO_NESTED_DATA_BP = 0, "No nested data breakpoints.";
    X86_FEATURE_WRMSR_XX_BASE_NS = 1, "WRMSR to FS/GS/KERNEL_GS base is non-serializing.";
    X86_FEATURE_LFENCE_RDTSC = 2, "LFENCE is serializing.";
    X86_FEATURE_VERW_CLEAR = 5, "Memory-form VERW mitigates TSA.";
    X86_FEATURE_NULL_SEL_CLR_BASE = 6, "Null selector clears base.";
    X86_FEATURE_AUTOIBRS = 8, "Automatic IBRS.";
    X86_FEATURE_NO_SMM_CTL_MSR = 9, "SMM_CTL MSR is absent.";
    X86_FEATURE_GP_ON_USER_CPUID = 17, "User CPUID faulting.";
    X86_FEATURE_PREFETCHI = 20, "PREFETCHIT0/1.";
    X86_FEATURE_AVX512_BMM = 23, "AVX-512 bit matrix multiply.";
    X86_FEATURE_ERAPS = 24, "Enhanced return address predictor security.";
    X86_FEATURE_SBPB = 27, "Selective branch prediction barrier.";
    X86_FEATURE_IBPB_BRTYPE = 28, "IBPB flushes all branch types.";
    X86_FEATURE_SRSO_NO = 29, "Not affected by SRSO.";
    X86_FEATURE_SRSO_USER_KERNEL_NO = 30, "Not affected by SRSO across user/kernel.";
}

features! { L80000021Ecx:
    X86_FEATURE_TSA_SQ_NO = 1, "Not vulnerable to TSA-SQ.";
    X86_FEATURE_TSA_L1_NO = 2, "Not vulnerable to TSA-L1.";
    X86_FEATURE_TSA_FILL_NO = 7, "Not vulnerable to TSA-FILL.";
}

features! { L12Eax:
    X86_FEATURE_SGX1 = 0, "SGX1.";
    X86_FEATURE_SGX2 = 1, "SGX2 (EDMM).";
    X86_FEATURE_SGX_EDECCSSA = 11, "SGX EDECCSSA.";
}

features! { L7Sub1Ecx:
    X86_FEATURE_MSR_IMM = 5, "Immediate-form RDMSR/WRMSRNS.";
}

features! { L7Sub1Edx:
    X86_FEATURE_AVX_VNNI_INT8 = 4, "AVX VNNI INT8.";
    X86_FEATURE_AVX_NE_CONVERT = 5, "AVX NE CONVERT.";
    X86_FEATURE_AMX_COMPLEX = 8, "AMX complex.";
    X86_FEATURE_AVX_VNNI_INT16 = 10, "AVX VNNI INT16.";
    X86_FEATURE_PREFETCHITI = 14, "PREFETCHIT0/1 (Intel).";
    X86_FEATURE_AVX10 = 19, "AVX10.";
}

features! { L7Sub2Edx:
    X86_FEATURE_INTEL_PSFD = 0, "Predictive store forwarding disable.";
    X86_FEATURE_IPRED_CTRL = 1, "IPRED_DIS controls.";
    X86_FEATURE_RRSBA_CTRL = 2, "RRSBA controls.";
    X86_FEATURE_DDPD_U = 3, "Data dependent prefetcher disable.";
    X86_FEATURE_BHI_CTRL = 4, "BHI_DIS_S control.";
    X86_FEATURE_MCDT_NO = 5, "No MXCSR configuration dependent timing.";
}

features! { L1ESub1Eax:
    X86_FEATURE_AMX_INT8_ALIAS = 0, "AMX int8 (alias).";
    X86_FEATURE_AMX_BF16_ALIAS = 1, "AMX bf16 (alias).";
    X86_FEATURE_AMX_COMPLEX_ALIAS = 2, "AMX complex (alias).";
    X86_FEATURE_AMX_FP16_ALIAS = 3, "AMX fp16 (alias).";
    X86_FEATURE_AMX_FP8 = 4, "AMX fp8.";
    X86_FEATURE_AMX_TF32 = 6, "AMX tf32.";
    X86_FEATURE_AMX_AVX512 = 7, "AMX AVX-512.";
    X86_FEATURE_AMX_MOVRS = 8, "AMX MOVRS.";
}

features! { L24Sub0Ebx:
    X86_FEATURE_AVX10_128 = 16, "AVX10 128-bit vectors.";
    X86_FEATURE_AVX10_256 = 17, "AVX10 256-bit vectors.";
    X86_FEATURE_AVX10_512 = 18, "AVX10 512-bit vectors.";
}

features! { L24Sub1Ecx:
    X86_FEATURE_AVX10_VNNI_INT = 2, "AVX10 VNNI INT.";
}

features! { L80000007Edx:
    X86_FEATURE_CONSTANT_TSC = 8, "Invariant TSC.";
}

features! { L80000022Eax:
    X86_FEATURE_PERFMON_V2 = 0, "AMD performance monitoring v2.";
}
