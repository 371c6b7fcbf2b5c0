// SPDX-License-Identifier: GPL-2.0
//! A VM and its file descriptor.

use crate::{arch::VendorRef, caps, ext::file::{self, FileOps}, ioctl::*};
use kernel::{fs::File, prelude::*, sync::{Arc, ArcBorrow}};

/// The only machine type x86 KVM supports here (`KVM_X86_DEFAULT_VM`).
const KVM_X86_DEFAULT_VM: usize = 0;

/// A virtual machine. Lives as long as its fd (and, later, its vCPUs).
pub(crate) struct Vm {
    _vendor: VendorRef,
}

/// `KVM_CREATE_VM`: returns the new VM's fd.
pub(crate) fn create(machine_type: usize) -> Result<isize> {
    if machine_type != KVM_X86_DEFAULT_VM {
        return Err(EINVAL);
    }
    let vendor = VendorRef::get().inspect_err(|_| {
        pr_notice!("KVM_CREATE_VM: no vendor module loaded (load kvm-amd or kvm-intel)\n");
    })?;
    let vm = Arc::new(Vm { _vendor: vendor }, GFP_KERNEL)?;
    Ok(file::new_anon_fd::<VmFile>(c"kvm-vm", vm)? as isize)
}

struct VmFile;

#[vtable]
impl FileOps for VmFile {
    type Ptr = Arc<Vm>;

    fn ioctl(vm: ArcBorrow<'_, Vm>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            KVM_CHECK_EXTENSION => Ok(caps::check(Some(&vm), arg)),
            // Upstream's kvm_arch_vm_ioctl() ends in ENOTTY.
            _ => Err(ENOTTY),
        }
    }
}
