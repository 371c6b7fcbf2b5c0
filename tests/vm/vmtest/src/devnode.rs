//! /dev/kvm as udev left it: char 10:232, mode 0660, group kvm, and what
//! that means for users in and out of the kvm group.

use crate::report::{expect_eq, Report};
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn kvm_gid() -> Option<u32> {
    let name = CString::new("kvm").unwrap();
    // SAFETY: getgrnam with a valid C string; we copy gr_gid before any
    // other libc call can reuse the static buffer.
    let g = unsafe { libc::getgrnam(name.as_ptr()) };
    if g.is_null() {
        None
    } else {
        // SAFETY: non-null result of getgrnam.
        Some(unsafe { (*g).gr_gid })
    }
}

/// Opens /dev/kvm read-write in a child running as uid 65534 with the given
/// supplementary groups; returns the child's errno (0 = opened).
fn open_as_nobody(groups: &[u32]) -> i32 {
    // SAFETY: fork in a single-threaded test process; the child only makes
    // async-signal-safe calls and exits.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let gs: Vec<libc::gid_t> = groups.to_vec();
            if libc::setgroups(gs.len(), gs.as_ptr()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                libc::_exit(255);
            }
            let fd = libc::open(c"/dev/kvm".as_ptr(), libc::O_RDWR);
            let e = if fd < 0 { *libc::__errno_location() } else { 0 };
            libc::_exit(e);
        }
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        libc::WEXITSTATUS(status)
    }
}

pub fn run(r: &mut Report) {
    r.check("dev/node-char-10-232", || {
        let m = std::fs::metadata("/dev/kvm").map_err(|e| format!("stat /dev/kvm: {e}"))?;
        if !m.file_type().is_char_device() {
            return Err("/dev/kvm is not a character device".into());
        }
        let rdev = m.rdev();
        expect_eq("major:minor", (libc::major(rdev), libc::minor(rdev)), (10, 232))
    });
    r.check("dev/udev-rule-mode-0660-group-kvm", || {
        let m = std::fs::metadata("/dev/kvm").map_err(|e| format!("stat /dev/kvm: {e}"))?;
        let gid = kvm_gid().ok_or("no kvm group")?;
        expect_eq("mode", m.mode() & 0o7777, 0o660)?;
        expect_eq("gid", m.gid(), gid)
    });
    r.check("dev/kvm-group-member-may-open", || {
        let gid = kvm_gid().ok_or("no kvm group")?;
        expect_eq("errno opening as nobody in group kvm", open_as_nobody(&[gid]), 0)
    });
    r.check("dev/non-member-gets-eacces", || {
        expect_eq("errno opening as nobody without group kvm", open_as_nobody(&[]), libc::EACCES)
    });
}
