// SPDX-License-Identifier: GPL-2.0
//! `/dev/kvm` and the system ioctl map.

use crate::{
    ext::file::FileOps,
    virt::{caps, ioctl::*, vm},
    x86::{msrs, supported},
};
use kernel::{fs::File, page::PAGE_SIZE, prelude::*};

/// The `/dev/kvm` device: stateless, every open shares it.
pub(crate) struct KvmDev;

/// `KVM_GET_VCPU_MMAP_SIZE`: `struct kvm_run`, the PIO data page and the
/// coalesced-MMIO ring, one page each (as upstream x86).
const VCPU_MMAP_PAGES: usize = 3;

/// KVM_GET_VCPU_MMAP_SIZE.
fn get_vcpu_mmap_size() -> isize {
    (VCPU_MMAP_PAGES * PAGE_SIZE) as isize
}

#[vtable]
impl FileOps for KvmDev {
    type Ptr = ();

    /// The system ioctl map (docs/architecture.md has the table).
    fn ioctl(_this: (), _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            KVM_GET_API_VERSION if arg == 0 => Ok(KVM_API_VERSION),
            KVM_CREATE_VM => vm::create_vm(arg),
            KVM_CHECK_EXTENSION => Ok(caps::check_extension(None, arg)),
            KVM_GET_VCPU_MMAP_SIZE if arg == 0 => Ok(get_vcpu_mmap_size()),
            KVM_GET_SUPPORTED_CPUID => supported::get_supported_cpuid(arg),
            KVM_GET_EMULATED_CPUID => supported::get_emulated_cpuid(arg),
            KVM_GET_MSR_INDEX_LIST => supported::get_msr_index_list(arg),
            KVM_GET_MSR_FEATURE_INDEX_LIST => supported::get_msr_feature_index_list(arg),
            KVM_GET_MSRS => supported::get_feature_msrs(arg),
            KVM_X86_GET_MCE_CAP_SUPPORTED => msrs::x86_get_mce_cap_supported(arg),
            KVM_HAS_DEVICE_ATTR => supported::dev_has_attr(arg),
            KVM_GET_DEVICE_ATTR => supported::dev_get_attr(arg),
            // Upstream answers every other ioctl on /dev/kvm with EINVAL.
            _ => Err(EINVAL),
        }
    }
}
