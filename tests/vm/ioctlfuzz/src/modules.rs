//! Loading and unloading the module set under test.

use crate::sys::errno;
use std::ffi::CString;

#[derive(Default, Clone)]
pub struct Modules {
    pub pre: Vec<String>,
    pub kvm: String,
    pub amd: String,
    pub intel: String,
}

pub fn load(path: &str) -> Result<(), i32> {
    let f = std::fs::File::open(path).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    let params = CString::new("").unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: valid fd and empty parameter string.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), params.as_ptr(), 0) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// delete_module(2) with O_NONBLOCK, like rmmod.
pub fn unload(name: &str) -> Result<(), i32> {
    let n = CString::new(name).unwrap();
    // SAFETY: NUL-terminated name.
    let r = unsafe { libc::syscall(libc::SYS_delete_module, n.as_ptr(), libc::O_NONBLOCK) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

pub fn loaded(name: &str) -> bool {
    std::path::Path::new(&format!("/sys/module/{name}/initstate")).exists()
}

pub fn refcnt(name: &str) -> i64 {
    std::fs::read_to_string(format!("/sys/module/{name}/refcnt")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(-1)
}

impl Modules {
    pub fn given(&self) -> bool {
        !self.kvm.is_empty() && !self.amd.is_empty()
    }

    /// Prerequisites (once; already loaded is fine), kvm, kvm-amd.
    pub fn load_all(&self) -> Result<(), String> {
        for p in &self.pre {
            match load(p) {
                Ok(()) | Err(libc::EEXIST) => {}
                Err(e) => return Err(format!("insmod {p}: {}", crate::sys::errno_name(e))),
            }
        }
        load(&self.kvm).map_err(|e| format!("insmod {}: {}", self.kvm, crate::sys::errno_name(e)))?;
        if let Err(e) = load(&self.amd) {
            let _ = unload("kvm");
            return Err(format!("insmod {}: {}", self.amd, crate::sys::errno_name(e)));
        }
        // /dev/kvm comes from devtmpfs as the misc device registers.
        for _ in 0..200 {
            if std::path::Path::new("/dev/kvm").exists() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Err("/dev/kvm did not appear".into())
    }

    /// rmmod kvm_amd, kvm (the in-tree prerequisites stay).
    pub fn unload_all(&self) -> Result<(), String> {
        for m in ["kvm_amd", "kvm"] {
            if loaded(m) {
                unload(m).map_err(|e| format!("rmmod {m}: {} (refcnt {})", crate::sys::errno_name(e), refcnt(m)))?;
            }
        }
        Ok(())
    }
}
