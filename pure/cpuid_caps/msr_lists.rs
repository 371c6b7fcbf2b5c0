// SPDX-License-Identifier: GPL-2.0
//! `KVM_GET_MSR_INDEX_LIST`: the MSRs userspace should save and restore
//! (upstream `msrs_to_save_base[]` probed on the host, then
//! `emulated_msrs_all[]` filtered by `svm_has_emulated_msr()`).
//!
//! Every index listed here must work in `KVM_GET_MSRS`/`KVM_SET_MSRS` on a
//! vCPU: QEMU saves and restores all of them and aborts if one fails.
//! Upstream lets userspace read 0 from, and write 0 to, any advertised
//! MSR even where it is not fully supported ([`MsrList::contains`]).

use super::caps::KvmCaps;
use super::feature_msrs::arch_capabilities;
use super::{HostMsrs, Options};
use crate::defs::cpuid::*;
use crate::defs::msr::*;
use crate::defs::regs::XFEATURE_MASK_MPX;

/// Last Intel GP counter KVM knows (`KVM_MAX_NR_GP_COUNTERS` = 8).
pub const ARCH_PERFMON_PERFCTR_LAST: u32 = MSR_ARCH_PERFMON_PERFCTR0 + 7;
/// Last Intel GP event select KVM knows.
pub const ARCH_PERFMON_EVENTSEL_LAST: u32 = MSR_ARCH_PERFMON_EVENTSEL0 + 7;
/// Last Intel fixed counter KVM knows (`KVM_MAX_NR_FIXED_COUNTERS` = 3).
pub const ARCH_PERFMON_FIXED_CTR_LAST: u32 = MSR_ARCH_PERFMON_FIXED_CTR0 + 2;

/// Upstream `msrs_to_save_base[]` (64-bit): saved if the host can read
/// them and the guest may have them ([`msr_to_save_ok`]).
pub const MSRS_TO_SAVE: &[u32] = &[
    MSR_IA32_SYSENTER_CS,
    MSR_IA32_SYSENTER_ESP,
    MSR_IA32_SYSENTER_EIP,
    MSR_STAR,
    MSR_CSTAR,
    MSR_KERNEL_GS_BASE,
    MSR_SYSCALL_MASK,
    MSR_LSTAR,
    MSR_IA32_TSC,
    MSR_IA32_CR_PAT,
    MSR_VM_HSAVE_PA,
    MSR_IA32_FEAT_CTL,
    MSR_IA32_BNDCFGS,
    MSR_TSC_AUX,
    MSR_IA32_SPEC_CTRL,
    MSR_IA32_TSX_CTRL,
    MSR_IA32_RTIT_CTL,
    MSR_IA32_RTIT_STATUS,
    MSR_IA32_RTIT_CR3_MATCH,
    MSR_IA32_RTIT_OUTPUT_BASE,
    MSR_IA32_RTIT_OUTPUT_MASK,
    MSR_IA32_RTIT_ADDR0_A,
    MSR_IA32_RTIT_ADDR0_A + 1,
    MSR_IA32_RTIT_ADDR0_A + 2,
    MSR_IA32_RTIT_ADDR0_A + 3,
    MSR_IA32_RTIT_ADDR0_A + 4,
    MSR_IA32_RTIT_ADDR0_A + 5,
    MSR_IA32_RTIT_ADDR0_A + 6,
    MSR_IA32_RTIT_ADDR3_B,
    MSR_IA32_UMWAIT_CONTROL,
    MSR_IA32_XFD,
    MSR_IA32_XFD_ERR,
    MSR_IA32_XSS,
    MSR_IA32_U_CET,
    MSR_IA32_S_CET,
    MSR_IA32_PL0_SSP,
    MSR_IA32_PL1_SSP,
    MSR_IA32_PL2_SSP,
    MSR_IA32_PL3_SSP,
    MSR_IA32_INT_SSP_TAB,
    MSR_IA32_DEBUGCTLMSR,
    MSR_IA32_LASTBRANCHFROMIP,
    MSR_IA32_LASTBRANCHTOIP,
    MSR_IA32_LASTINTFROMIP,
    MSR_IA32_LASTINTTOIP,
];

/// Upstream `msrs_to_save_pmu[]`: probed only with a vPMU.
pub const MSRS_TO_SAVE_PMU: &[u32] = &[
    MSR_ARCH_PERFMON_FIXED_CTR0,
    MSR_ARCH_PERFMON_FIXED_CTR0 + 1,
    MSR_ARCH_PERFMON_FIXED_CTR0 + 2,
    MSR_CORE_PERF_FIXED_CTR_CTRL,
    MSR_CORE_PERF_GLOBAL_STATUS,
    MSR_CORE_PERF_GLOBAL_CTRL,
    MSR_IA32_PEBS_ENABLE,
    MSR_IA32_DS_AREA,
    MSR_PEBS_DATA_CFG,
    MSR_ARCH_PERFMON_PERFCTR0,
    MSR_ARCH_PERFMON_PERFCTR0 + 1,
    MSR_ARCH_PERFMON_PERFCTR0 + 2,
    MSR_ARCH_PERFMON_PERFCTR0 + 3,
    MSR_ARCH_PERFMON_PERFCTR0 + 4,
    MSR_ARCH_PERFMON_PERFCTR0 + 5,
    MSR_ARCH_PERFMON_PERFCTR0 + 6,
    MSR_ARCH_PERFMON_PERFCTR0 + 7,
    MSR_ARCH_PERFMON_EVENTSEL0,
    MSR_ARCH_PERFMON_EVENTSEL0 + 1,
    MSR_ARCH_PERFMON_EVENTSEL0 + 2,
    MSR_ARCH_PERFMON_EVENTSEL0 + 3,
    MSR_ARCH_PERFMON_EVENTSEL0 + 4,
    MSR_ARCH_PERFMON_EVENTSEL0 + 5,
    MSR_ARCH_PERFMON_EVENTSEL0 + 6,
    MSR_ARCH_PERFMON_EVENTSEL0 + 7,
    MSR_K7_EVNTSEL0,
    MSR_K7_EVNTSEL0 + 1,
    MSR_K7_EVNTSEL0 + 2,
    MSR_K7_EVNTSEL0 + 3,
    MSR_K7_PERFCTR0,
    MSR_K7_PERFCTR0 + 1,
    MSR_K7_PERFCTR0 + 2,
    MSR_K7_PERFCTR0 + 3,
    MSR_F15H_PERF_CTL0,
    MSR_F15H_PERF_CTL0 + 2,
    MSR_F15H_PERF_CTL0 + 4,
    MSR_F15H_PERF_CTL0 + 6,
    MSR_F15H_PERF_CTL0 + 8,
    MSR_F15H_PERF_CTL0 + 10,
    MSR_F15H_PERF_CTL0 + 1,
    MSR_F15H_PERF_CTL0 + 3,
    MSR_F15H_PERF_CTL0 + 5,
    MSR_F15H_PERF_CTL0 + 7,
    MSR_F15H_PERF_CTL0 + 9,
    MSR_F15H_PERF_CTL0 + 11,
    MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
    MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
    MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
    MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
];

/// Upstream `emulated_msrs_all[]` without the Hyper-V MSRs (rkvm has no
/// Hyper-V emulation; the 7.3 test kernel has `CONFIG_KVM_HYPERV=n` too).
pub const EMULATED_MSRS: &[u32] = &[
    MSR_KVM_SYSTEM_TIME,
    MSR_KVM_WALL_CLOCK,
    MSR_KVM_SYSTEM_TIME_NEW,
    MSR_KVM_WALL_CLOCK_NEW,
    MSR_KVM_ASYNC_PF_EN,
    MSR_KVM_STEAL_TIME,
    MSR_KVM_PV_EOI_EN,
    MSR_KVM_ASYNC_PF_INT,
    MSR_KVM_ASYNC_PF_ACK,
    MSR_IA32_TSC_ADJUST,
    MSR_IA32_TSC_DEADLINE,
    MSR_IA32_ARCH_CAPABILITIES,
    MSR_IA32_PERF_CAPABILITIES,
    MSR_IA32_MISC_ENABLE,
    MSR_IA32_MCG_STATUS,
    MSR_IA32_MCG_CTL,
    MSR_IA32_MCG_EXT_CTL,
    MSR_IA32_SMBASE,
    MSR_SMI_COUNT,
    MSR_PLATFORM_INFO,
    MSR_MISC_FEATURES_ENABLES,
    MSR_AMD64_VIRT_SPEC_CTRL,
    MSR_AMD64_TSC_RATIO,
    MSR_IA32_POWER_CTL,
    MSR_IA32_UCODE_REV,
    MSR_IA32_VMX_BASIC,
    MSR_IA32_VMX_TRUE_PINBASED_CTLS,
    MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
    MSR_IA32_VMX_TRUE_EXIT_CTLS,
    MSR_IA32_VMX_TRUE_ENTRY_CTLS,
    MSR_IA32_VMX_MISC,
    MSR_IA32_VMX_CR0_FIXED0,
    MSR_IA32_VMX_CR4_FIXED0,
    MSR_IA32_VMX_VMCS_ENUM,
    MSR_IA32_VMX_PROCBASED_CTLS2,
    MSR_IA32_VMX_EPT_VPID_CAP,
    MSR_IA32_VMX_VMFUNC,
    MSR_K7_HWCR,
    MSR_KVM_POLL_CONTROL,
];

/// Upstream `msr_based_features_all_except_vmx[]`: MSRs that describe
/// features, readable with `KVM_GET_MSRS` on `/dev/kvm` (the VMX ones do
/// not apply to SVM).
pub const FEATURE_MSRS: &[u32] = &[
    MSR_AMD64_DE_CFG,
    MSR_IA32_UCODE_REV,
    MSR_IA32_ARCH_CAPABILITIES,
    MSR_IA32_PERF_CAPABILITIES,
    MSR_PLATFORM_INFO,
];

/// Upstream `kvm_probe_msr_to_save()` on SVM: the host can read `index`
/// and a guest of this KVM may use it.
pub fn msr_to_save_ok<H: HostMsrs + ?Sized>(
    host: &H,
    caps: &KvmCaps,
    opts: &Options,
    index: u32,
) -> bool {
    if host.rdmsr_safe(index).is_none() {
        return false;
    }
    let has = |f| caps.has(f);
    match index {
        // MPX is not supported on SVM.
        MSR_IA32_BNDCFGS => caps.supported_xcr0 & XFEATURE_MASK_MPX == XFEATURE_MASK_MPX,
        MSR_TSC_AUX => has(X86_FEATURE_RDTSCP) || has(X86_FEATURE_RDPID),
        MSR_IA32_UMWAIT_CONTROL => has(X86_FEATURE_WAITPKG),
        // Intel PT is VMX-only (upstream then also checks the PT
        // capabilities): never on SVM.
        MSR_IA32_RTIT_OUTPUT_BASE..=MSR_IA32_RTIT_ADDR3_B => has(X86_FEATURE_INTEL_PT),
        // Intel architectural counters (upstream also bounds them by the
        // vPMU's counter count).
        MSR_ARCH_PERFMON_PERFCTR0..=ARCH_PERFMON_PERFCTR_LAST
        | MSR_ARCH_PERFMON_EVENTSEL0..=ARCH_PERFMON_EVENTSEL_LAST
        | MSR_ARCH_PERFMON_FIXED_CTR0..=ARCH_PERFMON_FIXED_CTR_LAST => {
            opts.pmu && host.boot_cpu_has(LNX_ARCH_PERFMON)
        }
        MSR_AMD64_PERF_CNTR_GLOBAL_CTL
        | MSR_AMD64_PERF_CNTR_GLOBAL_STATUS
        | MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR
        | MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET => has(X86_FEATURE_PERFMON_V2),
        MSR_IA32_XFD | MSR_IA32_XFD_ERR => has(X86_FEATURE_XFD),
        MSR_IA32_TSX_CTRL => arch_capabilities(host) & ARCH_CAP_TSX_CTRL_MSR != 0,
        MSR_IA32_XSS => caps.supported_xss != 0,
        MSR_IA32_U_CET | MSR_IA32_S_CET => has(X86_FEATURE_SHSTK) || has(X86_FEATURE_IBT),
        MSR_IA32_INT_SSP_TAB => has(X86_FEATURE_LM) && has(X86_FEATURE_SHSTK),
        MSR_IA32_PL0_SSP..=MSR_IA32_PL3_SSP => has(X86_FEATURE_SHSTK),
        _ => true,
    }
}

/// Upstream `svm_has_emulated_msr()`, plus rkvm's `opts.smm`.
pub fn emulated_msr_ok(opts: &Options, index: u32) -> bool {
    match index {
        MSR_IA32_MCG_EXT_CTL | MSR_IA32_VMX_BASIC..=MSR_IA32_VMX_VMFUNC => false,
        MSR_IA32_SMBASE => opts.smm,
        _ => true,
    }
}

/// Room for every candidate MSR.
pub const MAX_MSR_LIST: usize = 160;

/// A list of MSR indices (fixed capacity, no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsrList {
    indices: [u32; MAX_MSR_LIST],
    len: usize,
}

impl MsrList {
    /// An empty list.
    pub const fn new() -> Self {
        MsrList {
            indices: [0; MAX_MSR_LIST],
            len: 0,
        }
    }

    /// Appends `index` (dropped if the list is full, which the candidate
    /// lists cannot make it).
    pub fn push(&mut self, index: u32) {
        if let Some(slot) = self.indices.get_mut(self.len) {
            *slot = index;
            self.len = self.len.saturating_add(1);
        }
    }

    /// The indices, in upstream's order.
    pub fn as_slice(&self) -> &[u32] {
        self.indices.get(..self.len).unwrap_or(&[])
    }

    /// Number of indices.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No indices.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `index` is listed (upstream `kvm_is_advertised_msr()`).
    pub fn contains(&self, index: u32) -> bool {
        self.as_slice().contains(&index)
    }
}

impl Default for MsrList {
    fn default() -> Self {
        Self::new()
    }
}

/// `KVM_GET_MSR_INDEX_LIST`: the MSRs to save that pass
/// [`msr_to_save_ok`] (the PMU ones only with `opts.pmu`), then the
/// emulated ones that pass [`emulated_msr_ok`], minus `opts.hide_msrs`.
pub fn msr_index_list<H: HostMsrs + ?Sized>(host: &H, caps: &KvmCaps, opts: &Options) -> MsrList {
    let mut list = MsrList::new();
    let pmu: &[u32] = if opts.pmu { MSRS_TO_SAVE_PMU } else { &[] };
    for &i in MSRS_TO_SAVE.iter().chain(pmu.iter()) {
        if msr_to_save_ok(host, caps, opts, i) && !opts.hide_msrs.contains(&i) {
            list.push(i);
        }
    }
    for &i in EMULATED_MSRS {
        if emulated_msr_ok(opts, i) && !opts.hide_msrs.contains(&i) {
            list.push(i);
        }
    }
    list
}
