// SPDX-License-Identifier: GPL-2.0
//! `file_operations` for KVM's file descriptors: `/dev/kvm`, VM fds and
//! vCPU fds.
//!
//! The 7.3 `kernel` crate has a vtable only for misc devices and no way to
//! create anonymous-inode files, which VM and vCPU fds are. [`FileOps`] is
//! the one trait all three implement; [`new_anon_fd`] creates an fd whose
//! file owns a `T::Ptr` (freed in `release`).

use super::bindings as rb;
use core::{marker::PhantomData, ptr::NonNull};
use kernel::{
    bindings,
    error::from_err_ptr,
    ffi,
    fs::{file::FileDescriptorReservation, File},
    mm::virt::VmaNew,
    prelude::*,
    sync::aref::ARef,
    types::ForeignOwnable,
    uaccess::{UserPtr, UserSlice, UserSliceWriter},
};

/// The operations of one kind of KVM file.
#[vtable]
pub trait FileOps: Sized {
    /// What `file->private_data` owns.
    type Ptr: ForeignOwnable + Send + Sync;

    /// An ioctl on the file.
    fn ioctl(
        this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        file: &File,
        cmd: u32,
        arg: usize,
    ) -> Result<isize>;

    /// The last reference to the file went away.
    fn release(this: Self::Ptr) {
        drop(this);
    }

    /// read()/pread() at byte `pos`: fills `out` (at most its length) and
    /// returns how many bytes it wrote.
    fn read(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _out: &mut UserSliceWriter,
        _pos: u64,
    ) -> Result<usize> {
        Err(EINVAL)
    }

    /// mmap() of the file; `pgoff` is the mapping's offset in pages.
    fn mmap(
        _this: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        _vma: &VmaNew,
        _pgoff: usize,
    ) -> Result {
        Err(ENODEV)
    }
}

struct VTable<T: FileOps>(PhantomData<T>);

impl<T: FileOps> VTable<T> {
    /// # Safety
    ///
    /// `file` is a live file whose `private_data` came from
    /// `T::Ptr::into_foreign` (or is ignored by `T::Ptr`, see [`misc`]).
    ///
    /// [`misc`]: super::misc
    unsafe extern "C" fn ioctl(
        file: *mut bindings::file,
        cmd: ffi::c_uint,
        arg: ffi::c_ulong,
    ) -> ffi::c_long {
        // SAFETY: `file` is live for the duration of the ioctl (caller).
        let private = unsafe { (*file).private_data };
        // SAFETY: `private` came from `into_foreign` and `release` has not
        // run, as the file is still live.
        let this = unsafe { T::Ptr::borrow(private) };
        // SAFETY: `file` is live and no fdget_pos region is active here.
        let file = unsafe { File::from_raw_file(file) };
        match T::ioctl(this, file, cmd, arg) {
            Ok(r) => r as ffi::c_long,
            Err(e) => e.to_errno() as ffi::c_long,
        }
    }

    /// # Safety
    ///
    /// Called once by the VFS when the last reference to `file` is gone.
    unsafe extern "C" fn release(
        _inode: *mut bindings::inode,
        file: *mut bindings::file,
    ) -> ffi::c_int {
        // SAFETY: `release` owns `private_data`, which came from
        // `into_foreign`; nothing uses it after this.
        let this = unsafe { T::Ptr::from_foreign((*file).private_data) };
        T::release(this);
        0
    }

    /// # Safety
    ///
    /// `file` is live and `vma` is being set up for it by mmap().
    unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> ffi::c_int {
        // SAFETY: as in `ioctl`.
        let this = unsafe { T::Ptr::borrow((*file).private_data) };
        // SAFETY: mmap() hands us a VMA under initial setup.
        let pgoff = unsafe { (*vma).vm_pgoff };
        // SAFETY: as above.
        let vma = unsafe { VmaNew::from_raw(vma) };
        match T::mmap(this, vma, pgoff) {
            Ok(()) => 0,
            Err(e) => e.to_errno(),
        }
    }

    /// # Safety
    ///
    /// `file` is live; `buf` is a user pointer of `count` bytes; `ppos` is
    /// the file position to read at and to advance.
    unsafe extern "C" fn read(
        file: *mut bindings::file,
        buf: *mut ffi::c_char,
        count: usize,
        ppos: *mut bindings::loff_t,
    ) -> isize {
        // SAFETY: as in `ioctl`.
        let this = unsafe { T::Ptr::borrow((*file).private_data) };
        // SAFETY: the VFS passes a valid position for the call.
        let pos = unsafe { *ppos };
        let Ok(pos) = u64::try_from(pos) else {
            return EINVAL.to_errno() as isize;
        };
        let mut out = UserSlice::new(UserPtr::from_addr(buf as usize), count).writer();
        match T::read(this, &mut out, pos) {
            Ok(n) => {
                // SAFETY: as above; `n` is at most `count`.
                unsafe { *ppos += n as bindings::loff_t };
                n as isize
            }
            Err(e) => e.to_errno() as isize,
        }
    }

    const VTABLE: bindings::file_operations = bindings::file_operations {
        owner: kernel::module::this_module::<T::OwnerModule>().as_ptr(),
        unlocked_ioctl: Some(Self::ioctl),
        read: if T::HAS_READ { Some(Self::read) } else { None },
        mmap: if T::HAS_MMAP { Some(Self::mmap) } else { None },
        release: Some(Self::release),
        llseek: Some(bindings::noop_llseek),
        ..pin_init::zeroed()
    };
}

/// The `file_operations` table for `T`.
pub const fn vtable<T: FileOps>() -> &'static bindings::file_operations {
    &VTable::<T>::VTABLE
}

/// Creates an anonymous-inode file named `name` (e.g. `kvm-vm`) with `T`'s
/// operations, owning `data`, and installs it as a new `O_CLOEXEC` fd.
///
/// The file pins the module implementing `T` until it is released.
pub fn new_anon_fd<T: FileOps>(name: &CStr, data: T::Ptr) -> Result<u32> {
    new_anon_fd_mode::<T>(name, data, bindings::O_RDWR)
}

/// As [`new_anon_fd`], opened with `mode` (`O_RDONLY`, `O_RDWR`).
pub fn new_anon_fd_mode<T: FileOps>(name: &CStr, data: T::Ptr, mode: u32) -> Result<u32> {
    new_anon_fd_then::<T>(name, data, mode, |_| {})
}

/// As [`new_anon_fd_mode`], calling `before_install` with the fd number
/// once the file exists and before userspace can see the fd (upstream
/// names VM debugfs directories after it there).
pub fn new_anon_fd_then<T: FileOps>(
    name: &CStr,
    data: T::Ptr,
    mode: u32,
    before_install: impl FnOnce(u32),
) -> Result<u32> {
    let reservation = FileDescriptorReservation::get_unused_fd_flags(bindings::O_CLOEXEC)?;
    let private = data.into_foreign();
    // SAFETY: `name` is copied into the new dentry; the vtable is 'static;
    // `private` is handed to the new file, which gives it back to
    // `T::release`.
    let raw = unsafe {
        rb::anon_inode_getfile(
            name.as_char_ptr(),
            vtable::<T>(),
            private.cast(),
            mode as ffi::c_int,
        )
    };
    let raw = match from_err_ptr(raw) {
        Ok(raw) => raw,
        Err(e) => {
            // SAFETY: no file took `private`: take it back and drop it.
            drop(unsafe { T::Ptr::from_foreign(private) });
            return Err(e);
        }
    };
    if T::HAS_READ {
        // A file with a read op reads at an offset: pread works on it, as
        // on upstream's stats fds (FMODE_PREAD; anon inodes lack it).
        // SAFETY: `raw` is a valid file no other thread can see yet.
        unsafe { (*raw).f_mode |= rb::RKVM_FMODE_PREAD };
    }
    let fd = reservation.reserved_fd();
    before_install(fd);
    // SAFETY: `anon_inode_getfile` returned a new file with one reference,
    // which we move into the `ARef`; `File` is a transparent wrapper.
    let file = unsafe { ARef::from_raw(NonNull::from(File::from_raw_file(raw))) };
    reservation.fd_install(file);
    Ok(fd)
}
