// SPDX-License-Identifier: GPL-2.0
//! Feature MSRs: `KVM_GET_MSR_FEATURE_INDEX_LIST` and their values for
//! `KVM_GET_MSRS` on `/dev/kvm` (upstream `kvm_get_feature_msr()` with
//! `svm_get_feature_msr()`), and `kvm_get_arch_capabilities()`.

use super::linux;
use super::msr_lists::{MsrList, FEATURE_MSRS};
use super::{HostCpuid, HostMsrs};
use crate::defs::cpuid::{
    LNX_LFENCE_RDTSC, X86_BUG_CPU_MELTDOWN, X86_BUG_GDS, X86_BUG_ITS, X86_BUG_MDS, X86_BUG_RFDS,
    X86_BUG_SPEC_STORE_BYPASS, X86_BUG_TAA, X86_FEATURE_ARCH_CAPABILITIES, X86_FEATURE_RTM,
};
use crate::defs::msr::*;

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
    if !has(X86_BUG_CPU_MELTDOWN) {
        data |= ARCH_CAP_RDCL_NO;
    }
    if !has(X86_BUG_SPEC_STORE_BYPASS) {
        data |= ARCH_CAP_SSB_NO;
    }
    if !has(X86_BUG_MDS) {
        data |= ARCH_CAP_MDS_NO;
    }
    if !has(X86_BUG_RFDS) {
        data |= ARCH_CAP_RFDS_NO;
    }
    if !has(X86_BUG_ITS) {
        data |= ARCH_CAP_ITS_NO;
    }
    let rtm = linux::kernel_has(host, X86_FEATURE_RTM);
    if !rtm {
        // TSX off: the guest cannot have TAA, keep TSX_CTRL for migration.
        data &= !ARCH_CAP_TAA_NO;
    } else if !has(X86_BUG_TAA) {
        data |= ARCH_CAP_TAA_NO;
    }
    if !has(X86_BUG_GDS) || host.gds_ucode_mitigated() {
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
    if host.boot_cpu_has(LNX_LFENCE_RDTSC) {
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
