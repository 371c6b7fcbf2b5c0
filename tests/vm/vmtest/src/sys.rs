//! Thin raw-syscall helpers: exact errnos for ioctls, module loading, MSRs.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

pub const KVMIO: u64 = 0xAE;

/// `_IOC(dir, type, nr, size)` as in asm-generic/ioctl.h.
pub const fn ioc(dir: u64, ty: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (ty << 8) | nr
}
pub const fn io(ty: u64, nr: u64) -> u64 {
    ioc(0, ty, nr, 0)
}

pub const KVM_GET_API_VERSION: u64 = io(KVMIO, 0x00);
pub const KVM_CREATE_VM: u64 = io(KVMIO, 0x01);
pub const KVM_CHECK_EXTENSION: u64 = io(KVMIO, 0x03);
pub const KVM_GET_VCPU_MMAP_SIZE: u64 = io(KVMIO, 0x04);

/// A raw ioctl: `Ok(return value)` or `Err(errno)`.
pub fn ioctl(f: &impl AsRawFd, cmd: u64, arg: u64) -> Result<i64, i32> {
    // SAFETY: the callers pass arguments the kernel validates; a bad pointer
    // gives EFAULT, never memory unsafety in this process.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), cmd as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(r as i64)
    }
}

pub fn errno_name(e: i32) -> String {
    let name = match e {
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::ENODEV => "ENODEV",
        libc::ENOENT => "ENOENT",
        libc::EEXIST => "EEXIST",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EAGAIN => "EAGAIN/EWOULDBLOCK",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::ENOMEM => "ENOMEM",
        libc::E2BIG => "E2BIG",
        libc::ENXIO => "ENXIO",
        libc::EIO => "EIO",
        _ => return format!("errno {e}"),
    };
    name.to_string()
}

/// Expects an ioctl to fail with `want`.
pub fn expect_errno(what: &str, r: Result<i64, i32>, want: i32) -> Result<(), String> {
    match r {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!("{what}: got {}, want {}", errno_name(e), errno_name(want))),
        Ok(v) => Err(format!("{what}: succeeded ({v}), want {}", errno_name(want))),
    }
}

/// Parameters for module file `path` from `RKVM_MODULE_PARAMS`
/// (`NAME.ko=PARAMS[;NAME.ko=PARAMS...]`, `+` for a space in PARAMS,
/// e.g. `kvm-amd.ko=npt=0`; scripts/vm.sh passes it into the VM).
pub fn module_params(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let all = std::env::var("RKVM_MODULE_PARAMS").unwrap_or_default();
    all.split(';')
        .filter_map(|e| e.split_once('='))
        .filter(|(name, _)| *name == base)
        .map(|(_, p)| p.replace('+', " "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// finit_module(2) on `path`, with its [`module_params`].
pub fn load_module(path: &str) -> Result<(), i32> {
    let f = File::open(path).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let params = CString::new(module_params(path)).unwrap();
    // SAFETY: valid fd and NUL-terminated parameter string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// delete_module(2) with O_NONBLOCK, like rmmod.
pub fn unload_module(name: &str) -> Result<(), i32> {
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated module name.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, n.as_ptr(), libc::O_NONBLOCK) };
    if r < 0 {
        Err(io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(())
    }
}

/// kvm-amd's `npt` parameter: `Some(false)` under `npt=0` (shadow
/// paging), `None` when kvm-amd is not loaded (the VMX column).
pub fn kvm_amd_npt() -> Option<bool> {
    std::fs::read_to_string("/sys/module/kvm_amd/parameters/npt")
        .ok()
        .map(|v| !v.trim().starts_with(['N', 'n', '0']))
}

pub fn module_loaded(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/module/{name}/initstate")).exists()
}

/// Reads MSR `index` on `cpu` through /dev/cpu/N/msr.
pub fn rdmsr(cpu: u32, index: u32) -> Result<u64, String> {
    let f = File::open(format!("/dev/cpu/{cpu}/msr")).map_err(|e| format!("open msr: {e}"))?;
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, index as u64)
        .map_err(|e| format!("rdmsr {index:#x} on cpu {cpu}: {e}"))?;
    Ok(u64::from_le_bytes(b))
}

/// The online CPUs, from /sys/devices/system/cpu/online ("0-1,3").
pub fn online_cpus() -> Vec<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let mut v = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let mut it = part.split('-').map(|x| x.parse::<u32>().unwrap_or(0));
        let a = it.next().unwrap_or(0);
        let b = it.next().unwrap_or(a);
        v.extend(a..=b);
    }
    v
}

/// The kernel log since boot.
pub fn dmesg() -> String {
    std::process::Command::new("dmesg")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Waits until udev has handled all pending events.
pub fn udev_settle() {
    let _ = std::process::Command::new("udevadm").args(["settle", "--timeout=10"]).status();
}
