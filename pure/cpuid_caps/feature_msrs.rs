// SPDX-License-Identifier: GPL-2.0
//! Feature MSRs: `KVM_GET_MSR_FEATURE_INDEX_LIST` and their values for
//! `KVM_GET_MSRS` on `/dev/kvm` (upstream `kvm_get_feature_msr()` with
//! `svm_get_feature_msr()`), and `kvm_get_arch_capabilities()`.

use super::features::{X86_FEATURE_ARCH_CAPABILITIES, X86_FEATURE_RTM};
use super::linux;
use super::msr_lists::{
    MsrList, FEATURE_MSRS, MSR_AMD64_DE_CFG, MSR_IA32_ARCH_CAPABILITIES,
    MSR_IA32_PERF_CAPABILITIES, MSR_IA32_UCODE_REV, MSR_PLATFORM_INFO,
};
use super::{HostCpuid, HostMsrs};

/// Not vulnerable to Meltdown.
pub const ARCH_CAP_RDCL_NO: u64 = 1 << 0;
/// Enhanced IBRS.
pub const ARCH_CAP_IBRS_ALL: u64 = 1 << 1;
/// RET may use alternative branch predictors.
pub const ARCH_CAP_RSBA: u64 = 1 << 2;
/// No L1D flush needed on VM entry.
pub const ARCH_CAP_SKIP_VMENTRY_L1DFLUSH: u64 = 1 << 3;
/// Not vulnerable to speculative store bypass.
pub const ARCH_CAP_SSB_NO: u64 = 1 << 4;
/// Not vulnerable to MDS.
pub const ARCH_CAP_MDS_NO: u64 = 1 << 5;
/// No machine check on page size changes (iTLB multihit).
pub const ARCH_CAP_PSCHANGE_MC_NO: u64 = 1 << 6;
/// `MSR_IA32_TSX_CTRL` exists.
pub const ARCH_CAP_TSX_CTRL_MSR: u64 = 1 << 7;
/// Not vulnerable to TSX async abort.
pub const ARCH_CAP_TAA_NO: u64 = 1 << 8;
/// Not vulnerable to SBDR/SSDP.
pub const ARCH_CAP_SBDR_SSDP_NO: u64 = 1 << 13;
/// Not vulnerable to FBSDP.
pub const ARCH_CAP_FBSDP_NO: u64 = 1 << 14;
/// Not vulnerable to PSDP.
pub const ARCH_CAP_PSDP_NO: u64 = 1 << 15;
/// VERW clears fill buffers.
pub const ARCH_CAP_FB_CLEAR: u64 = 1 << 17;
/// RET may use alternative predictors when the RSB underflows.
pub const ARCH_CAP_RRSBA: u64 = 1 << 19;
/// Not vulnerable to branch history injection.
pub const ARCH_CAP_BHI_NO: u64 = 1 << 20;
/// Not vulnerable to post-barrier RSB predictions.
pub const ARCH_CAP_PBRSB_NO: u64 = 1 << 24;
/// Not vulnerable to gather data sampling.
pub const ARCH_CAP_GDS_NO: u64 = 1 << 26;
/// Not vulnerable to register file data sampling.
pub const ARCH_CAP_RFDS_NO: u64 = 1 << 27;
/// VERW clears register files.
pub const ARCH_CAP_RFDS_CLEAR: u64 = 1 << 28;
/// Not vulnerable to indirect target selection.
pub const ARCH_CAP_ITS_NO: u64 = 1 << 62;

/// The `IA32_ARCH_CAPABILITIES` bits KVM passes through
/// (`KVM_SUPPORTED_ARCH_CAP`).
pub const KVM_SUPPORTED_ARCH_CAP: u64 = ARCH_CAP_RDCL_NO
    | ARCH_CAP_IBRS_ALL
    | ARCH_CAP_RSBA
    | ARCH_CAP_SKIP_VMENTRY_L1DFLUSH
    | ARCH_CAP_SSB_NO
    | ARCH_CAP_MDS_NO
    | ARCH_CAP_PSCHANGE_MC_NO
    | ARCH_CAP_TSX_CTRL_MSR
    | ARCH_CAP_TAA_NO
    | ARCH_CAP_SBDR_SSDP_NO
    | ARCH_CAP_FBSDP_NO
    | ARCH_CAP_PSDP_NO
    | ARCH_CAP_FB_CLEAR
    | ARCH_CAP_RRSBA
    | ARCH_CAP_PBRSB_NO
    | ARCH_CAP_GDS_NO
    | ARCH_CAP_RFDS_NO
    | ARCH_CAP_RFDS_CLEAR
    | ARCH_CAP_BHI_NO
    | ARCH_CAP_ITS_NO;

/// `DE_CFG[1]`: LFENCE is dispatch serializing.
pub const MSR_AMD64_DE_CFG_LFENCE_SERIALIZE: u64 = 1 << 1;
/// `PLATFORM_INFO[31]`: CPUID faulting is available (KVM emulates it).
pub const MSR_PLATFORM_INFO_CPUID_FAULT: u64 = 1 << 31;

/// Upstream `kvm_get_arch_capabilities()`: the host's value (if it has
/// the MSR) cut to what KVM supports, plus the "not affected" bits the
/// host kernel knows to be true.
pub fn arch_capabilities<H: HostMsrs + ?Sized>(host: &H) -> u64 {
    let has = |f| host.boot_cpu_has(f);
    let host_caps = if linux::kernel_has(host, X86_FEATURE_ARCH_CAPABILITIES) {
        host.rdmsr_safe(MSR_IA32_ARCH_CAPABILITIES).unwrap_or(0)
    } else {
        0
    };
    let mut data = host_caps & KVM_SUPPORTED_ARCH_CAP;
    data |= ARCH_CAP_PSCHANGE_MC_NO;
    if !host.l1d_flush_never() {
        data |= ARCH_CAP_SKIP_VMENTRY_L1DFLUSH;
    }
    if !has(linux::BUG_CPU_MELTDOWN) {
        data |= ARCH_CAP_RDCL_NO;
    }
    if !has(linux::BUG_SPEC_STORE_BYPASS) {
        data |= ARCH_CAP_SSB_NO;
    }
    if !has(linux::BUG_MDS) {
        data |= ARCH_CAP_MDS_NO;
    }
    if !has(linux::BUG_RFDS) {
        data |= ARCH_CAP_RFDS_NO;
    }
    if !has(linux::BUG_ITS) {
        data |= ARCH_CAP_ITS_NO;
    }
    let rtm = linux::kernel_has(host, X86_FEATURE_RTM);
    if !rtm {
        // TSX off: the guest cannot have TAA, keep TSX_CTRL for migration.
        data &= !ARCH_CAP_TAA_NO;
    } else if !has(linux::BUG_TAA) {
        data |= ARCH_CAP_TAA_NO;
    }
    if !has(linux::BUG_GDS) || host.gds_ucode_mitigated() {
        data |= ARCH_CAP_GDS_NO;
    }
    data
}

/// The value of feature MSR `index` for `KVM_GET_MSRS` on `/dev/kvm`, or
/// `None` if it is not a feature MSR on SVM (upstream then fails the
/// read, unless the MSR is advertised and reads as 0).
pub fn feature_msr<H: HostMsrs + ?Sized>(host: &H, index: u32) -> Option<u64> {
    match index {
        MSR_IA32_ARCH_CAPABILITIES => Some(arch_capabilities(host)),
        // No vPMU capabilities on SVM.
        MSR_IA32_PERF_CAPABILITIES => Some(0),
        MSR_PLATFORM_INFO => Some(MSR_PLATFORM_INFO_CPUID_FAULT),
        // The loaded microcode revision; 0 if the read faults.
        MSR_IA32_UCODE_REV => Some(host.rdmsr_safe(index).unwrap_or(0)),
        MSR_AMD64_DE_CFG => Some(de_cfg(host)),
        _ => None,
    }
}

fn de_cfg<H: HostCpuid + ?Sized>(host: &H) -> u64 {
    if host.boot_cpu_has(linux::LNX_LFENCE_RDTSC) {
        MSR_AMD64_DE_CFG_LFENCE_SERIALIZE
    } else {
        0
    }
}

/// `KVM_GET_MSR_FEATURE_INDEX_LIST` on SVM: the feature MSRs
/// [`feature_msr`] answers, in upstream's order (all of [`FEATURE_MSRS`]).
pub fn feature_msr_index_list<H: HostMsrs + ?Sized>(host: &H) -> MsrList {
    let mut list = MsrList::new();
    for &i in FEATURE_MSRS {
        if feature_msr(host, i).is_some() {
            list.push(i);
        }
    }
    list
}

/// One MSR of `KVM_GET_MSRS` on `/dev/kvm`: the feature MSR value, else 0
/// for an MSR of `advertised` (the `KVM_GET_MSR_INDEX_LIST` answer, per
/// upstream's "userspace may read 0 from any advertised MSR" rule), else
/// `None`: the ioctl stops there and returns the count read so far.
pub fn dev_get_msr<H: HostMsrs + ?Sized>(
    host: &H,
    advertised: &MsrList,
    index: u32,
) -> Option<u64> {
    match feature_msr(host, index) {
        Some(v) => Some(v),
        None if advertised.contains(index) => Some(0),
        None => None,
    }
}
