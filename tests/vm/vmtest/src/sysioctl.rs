//! System ioctls on /dev/kvm and the basics of VM fds.

use crate::report::{ctx, expect_eq, Report};
use crate::sys::*;
use kvm_ioctls::Kvm;
use std::fs::{File, OpenOptions};
use std::os::fd::FromRawFd;

fn open_kvm() -> Result<File, String> {
    ctx("open /dev/kvm", OpenOptions::new().read(true).write(true).open("/dev/kvm"))
}

/// A KVM_CREATE_VM through the raw ioctl, as a `File`.
fn create_vm(kvm: &File, ty: u64) -> Result<File, i32> {
    // SAFETY: on success the ioctl returns a new fd that we own.
    ioctl(kvm, KVM_CREATE_VM, ty).map(|fd| unsafe { File::from_raw_fd(fd as i32) })
}

/// ioctls KVM does not know, of several shapes: KVM type with an unused nr,
/// another driver's type, and a KVM nr with the wrong direction/size bits.
const UNKNOWN_IOCTLS: [(u64, &str); 4] = [
    (io(KVMIO, 0xff), "_IO(KVMIO, 0xff)"),
    (ioc(1, b'x' as u64, 1, 4), "_IOW('x', 1, int)"),
    (ioc(3, KVMIO, 0x00, 8), "_IOWR(KVMIO, 0x00, u64) (GET_API_VERSION nr, wrong size)"),
    (0, "cmd 0"),
];

pub fn run(r: &mut Report) {
    r.check("sys/api-version-12", || {
        let k = ctx("Kvm::new", Kvm::new())?;
        expect_eq("KVM_GET_API_VERSION", k.get_api_version(), 12)
    });
    r.check("sys/api-version-nonzero-arg-einval", || {
        let f = open_kvm()?;
        expect_errno("KVM_GET_API_VERSION(1)", ioctl(&f, KVM_GET_API_VERSION, 1), libc::EINVAL)
    });
    r.check("sys/vcpu-mmap-size", || {
        let k = ctx("Kvm::new", Kvm::new())?;
        let sz = ctx("KVM_GET_VCPU_MMAP_SIZE", k.get_vcpu_mmap_size())?;
        expect_eq("mmap size (kvm_run + pio page + coalesced ring)", sz, 3 * 4096)
    });
    r.check("sys/vcpu-mmap-size-nonzero-arg-einval", || {
        let f = open_kvm()?;
        expect_errno("KVM_GET_VCPU_MMAP_SIZE(1)", ioctl(&f, KVM_GET_VCPU_MMAP_SIZE, 1), libc::EINVAL)
    });
    r.check("sys/check-extension-unknown-cap-0", || {
        let f = open_kvm()?;
        for cap in [100_000u64, u32::MAX as u64, u64::MAX] {
            expect_eq(&format!("KVM_CHECK_EXTENSION({cap:#x})"), ioctl(&f, KVM_CHECK_EXTENSION, cap), Ok(0))?;
        }
        Ok(())
    });
    r.check("sys/unknown-ioctl-einval", || {
        let f = open_kvm()?;
        for (cmd, what) in UNKNOWN_IOCTLS {
            expect_errno(what, ioctl(&f, cmd, 0), libc::EINVAL)?;
            // A garbage pointer argument changes nothing for an unknown ioctl.
            expect_errno(what, ioctl(&f, cmd, 0xdead_0000_0000), libc::EINVAL)?;
        }
        Ok(())
    });
    r.check("sys/create-vm-bad-type-einval", || {
        let f = open_kvm()?;
        for ty in [0x1000u64, u64::MAX] {
            expect_errno(&format!("KVM_CREATE_VM({ty:#x})"), create_vm(&f, ty).map(|_| 0), libc::EINVAL)?;
        }
        Ok(())
    });
    r.check("vm/create-vm", || {
        let k = ctx("Kvm::new", Kvm::new())?;
        ctx("KVM_CREATE_VM(0)", k.create_vm()).map(drop)
    });
    r.check("vm/unknown-ioctl-enotty", || {
        let f = open_kvm()?;
        let vm = create_vm(&f, 0).map_err(|e| format!("KVM_CREATE_VM: {}", errno_name(e)))?;
        for (cmd, what) in UNKNOWN_IOCTLS {
            expect_errno(what, ioctl(&vm, cmd, 0), libc::ENOTTY)?;
        }
        Ok(())
    });
    r.check("vm/check-extension-unknown-cap-0", || {
        let f = open_kvm()?;
        let vm = create_vm(&f, 0).map_err(|e| format!("KVM_CREATE_VM: {}", errno_name(e)))?;
        expect_eq("KVM_CHECK_EXTENSION(100000) on VM fd", ioctl(&vm, KVM_CHECK_EXTENSION, 100_000), Ok(0))
    });
    r.check("vm/vm-fd-is-cloexec", || {
        let f = open_kvm()?;
        let vm = create_vm(&f, 0).map_err(|e| format!("KVM_CREATE_VM: {}", errno_name(e)))?;
        // SAFETY: F_GETFD on an fd we own.
        let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&vm), libc::F_GETFD) };
        expect_eq("FD_CLOEXEC", flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC)
    });
    r.check("vm/create-close-200-vms", || {
        let f = open_kvm()?;
        for i in 0..200 {
            create_vm(&f, 0).map_err(|e| format!("VM #{i}: {}", errno_name(e)))?;
        }
        Ok(())
    });
    r.check("vm/64-vms-open-at-once", || {
        let f = open_kvm()?;
        let vms: Result<Vec<File>, String> = (0..64)
            .map(|i| create_vm(&f, 0).map_err(|e| format!("VM #{i}: {}", errno_name(e))))
            .collect();
        expect_eq("VMs", vms?.len(), 64)
    });
}

/// With kvm.ko loaded and no vendor module: /dev/kvm answers, VMs cannot be
/// created (ours only: upstream registers /dev/kvm from the vendor module).
pub fn run_without_vendor(r: &mut Report) {
    r.check("novendor/api-version-12", || {
        let f = open_kvm()?;
        expect_eq("KVM_GET_API_VERSION", ioctl(&f, KVM_GET_API_VERSION, 0), Ok(12))
    });
    r.check("novendor/create-vm-enodev", || {
        let f = open_kvm()?;
        expect_errno("KVM_CREATE_VM(0)", create_vm(&f, 0).map(|_| 0), libc::ENODEV)
    });
}
