// SPDX-License-Identifier: GPL-2.0
//! What `/dev/kvm` says about the host: KVM_GET_SUPPORTED_CPUID,
//! KVM_GET_EMULATED_CPUID, the MSR index lists and the feature MSRs.
//! The rules are the pure `cpuid_caps` module's; this file gives it the
//! host and what rkvm does not back yet.

use crate::{
    cpuid_caps::{self as cc, CpuidEntry, Feature, HostCpuid, HostMsrs, LinuxFeature, Options},
    defs::cpuid::*,
    ext::{
        fpu::regs::host_xcr0,
        msr,
        uaccess::{read_arg, write_arg, write_array},
        uapi,
    },
    x86::{cpuid, msrs, vendor},
};
use kernel::prelude::*;

/// The running host.
pub(crate) struct Host;

impl HostCpuid for Host {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }

    fn boot_cpu_has(&self, f: LinuxFeature) -> bool {
        msr::cpu_has(f.0)
    }
}

impl HostMsrs for Host {
    fn rdmsr_safe(&self, index: u32) -> Option<u64> {
        msr::read_safe(index)
    }
}

/// Features rkvm cannot back yet, hidden from KVM_GET_SUPPORTED_CPUID:
/// RDPID runs natively and would read the host's TSC_AUX; XSAVES
/// needs IA32_XSS switching; PKU needs PKRU switching; the speculation
/// controls need SPEC_CTRL/PRED_CMD handling in the world switch.
const HIDE: &[Feature] = &[
    X86_FEATURE_RDPID,
    X86_FEATURE_XSAVES,
    X86_FEATURE_PKU,
    X86_FEATURE_WAITPKG,
    X86_FEATURE_SPEC_CTRL,
    X86_FEATURE_SPEC_CTRL_SSBD,
    X86_FEATURE_INTEL_STIBP,
    X86_FEATURE_INTEL_PSFD,
    X86_FEATURE_FLUSH_L1D,
    X86_FEATURE_ARCH_CAPABILITIES,
    X86_FEATURE_AMD_IBPB,
    X86_FEATURE_AMD_IBPB_RET,
    X86_FEATURE_AMD_IBRS,
    X86_FEATURE_AMD_IBRS_SAME_MODE,
    X86_FEATURE_AMD_STIBP,
    X86_FEATURE_AMD_STIBP_ALWAYS_ON,
    X86_FEATURE_AMD_SSBD,
    X86_FEATURE_VIRT_SSBD,
    X86_FEATURE_AMD_PSFD,
    X86_FEATURE_SBPB,
    X86_FEATURE_IBPB_BRTYPE,
];

/// What this KVM implements, for the tables, with the registered vendor's
/// rules (`ENODEV` without a vendor module).
pub(crate) fn options() -> Result<Options> {
    let mut o = Options::rkvm(host_xcr0(), 0);
    o.hide = HIDE;
    let ops = vendor::registered_ops()?;
    o.vendor = ops.cpu_caps();
    o.nested_svm = ops.nested();
    Ok(o)
}

/// KVM_GET_SUPPORTED_CPUID.
pub(crate) fn get_supported_cpuid(arg: usize) -> Result<isize> {
    get_cpuid(arg, false)
}

/// KVM_GET_EMULATED_CPUID.
pub(crate) fn get_emulated_cpuid(arg: usize) -> Result<isize> {
    get_cpuid(arg, true)
}

/// KVM_GET_SUPPORTED_CPUID (`emulated` false) and KVM_GET_EMULATED_CPUID:
/// `E2BIG` (with `nent` left alone) if userspace's array is too small.
fn get_cpuid(arg: usize, emulated: bool) -> Result<isize> {
    let mut hdr: uapi::kvm_cpuid2 = read_arg(arg)?;
    if hdr.nent < 1 {
        return Err(E2BIG);
    }
    let n = (hdr.nent as usize).min(cc::MAX_CPUID_ENTRIES);
    let mut out = KVec::from_elem(CpuidEntry::default(), n, GFP_KERNEL)?;
    let opts = options()?;
    let count = if emulated {
        cc::emulated_for(&Host, &opts, &mut out)
    } else {
        cc::supported(&Host, &opts, &mut out)
    }
    .map_err(|_| E2BIG)?;
    let mut entries = KVec::with_capacity(count, GFP_KERNEL)?;
    for e in out.iter().take(count) {
        entries.push(
            uapi::kvm_cpuid_entry2 {
                function: e.function,
                index: e.index,
                flags: e.flags,
                eax: e.eax,
                ebx: e.ebx,
                ecx: e.ecx,
                edx: e.edx,
                padding: [0; 3],
            },
            GFP_KERNEL,
        )?;
    }
    write_array(arg + cpuid::CPUID2_HEADER_SIZE, &entries)?;
    hdr.nent = count as u32;
    write_arg(arg, &hdr)?;
    Ok(0)
}

/// KVM_GET_MSR_INDEX_LIST.
pub(crate) fn get_msr_index_list(arg: usize) -> Result<isize> {
    let opts = options()?;
    let caps = cc::KvmCaps::new(&Host, &opts);
    let list = cc::msr_index_list(&Host, &caps, &opts);
    msrs::write_msr_list(arg, list.as_slice())
}

/// KVM_GET_MSR_FEATURE_INDEX_LIST.
pub(crate) fn get_msr_feature_index_list(arg: usize) -> Result<isize> {
    let list = cc::feature_msr_index_list(&Host);
    msrs::write_msr_list(arg, list.as_slice())
}

/// KVM_GET_MSRS on /dev/kvm: feature MSR values (0 for other advertised
/// MSRs, as upstream).
pub(crate) fn get_feature_msrs(arg: usize) -> Result<isize> {
    let opts = options()?;
    let caps = cc::KvmCaps::new(&Host, &opts);
    let advertised = cc::msr_index_list(&Host, &caps, &opts);
    msrs::msr_io(arg, false, |index, data| {
        *data = cc::dev_get_msr(&Host, &advertised, index).ok_or(EINVAL)?;
        Ok(())
    })
}

/// The value of a `/dev/kvm` attribute (upstream's
/// __kvm_x86_dev_get_attr()): group 0 has KVM_X86_XCOMP_GUEST_SUPP, the
/// XSAVE components guests may use; no other group (no SEV) or attribute
/// exists (ENXIO).
fn dev_attr(attr: &uapi::kvm_device_attr) -> Result<u64> {
    if attr.group != 0 || attr.attr != u64::from(uapi::KVM_X86_XCOMP_GUEST_SUPP) {
        return Err(ENXIO);
    }
    Ok(cc::KvmCaps::new(&Host, &options()?).supported_xcr0)
}

/// KVM_HAS_DEVICE_ATTR on `/dev/kvm` (KVM_CAP_SYS_ATTRIBUTES).
pub(crate) fn dev_has_attr(arg: usize) -> Result<isize> {
    dev_attr(&read_arg(arg)?).map(|_| 0)
}

/// KVM_GET_DEVICE_ATTR on `/dev/kvm`: the value goes to `attr.addr`.
pub(crate) fn dev_get_attr(arg: usize) -> Result<isize> {
    let attr: uapi::kvm_device_attr = read_arg(arg)?;
    let v = dev_attr(&attr)?;
    write_arg(attr.addr as usize, &v)?;
    Ok(0)
}
