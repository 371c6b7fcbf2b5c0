// SPDX-License-Identifier: GPL-2.0
//! Userspace memory for ioctls and guest memory: typed argument copies, and
//! the atomic compare-exchange the emulator's LOCK CMPXCHG needs on guest
//! memory (which lives in the VMM's address space).

use super::bindings as rb;
use kernel::{
    prelude::*,
    transmute::{AsBytes, FromBytes},
    uaccess::{UserPtr, UserSlice},
};

/// Reads a `T` from userspace address `arg` (an ioctl argument).
pub fn read_arg<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
        .reader()
        .read()
}

/// Writes `v` to userspace address `arg`.
pub fn write_arg<T: AsBytes>(arg: usize, v: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>())
        .writer()
        .write(v)
}

/// Reads `n` consecutive `T`s from userspace address `addr`.
pub fn read_array<T: FromBytes>(addr: usize, n: usize) -> Result<KVec<T>> {
    let size = n.checked_mul(core::mem::size_of::<T>()).ok_or(EINVAL)?;
    let mut r = UserSlice::new(UserPtr::from_addr(addr), size).reader();
    let mut v = KVec::with_capacity(n, GFP_KERNEL_ACCOUNT)?;
    for _ in 0..n {
        v.push(r.read::<T>()?, GFP_KERNEL_ACCOUNT)?;
    }
    Ok(v)
}

/// Writes `items` to userspace address `addr`, back to back.
pub fn write_array<T: AsBytes>(addr: usize, items: &[T]) -> Result {
    let size = items
        .len()
        .checked_mul(core::mem::size_of::<T>())
        .ok_or(EINVAL)?;
    let mut w = UserSlice::new(UserPtr::from_addr(addr), size).writer();
    for i in items {
        w.write(i)?;
    }
    Ok(())
}

/// Reads `buf.len()` bytes from userspace address `addr`.
pub fn read_bytes(addr: u64, buf: &mut [u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(addr as usize), buf.len())
        .reader()
        .read_slice(buf)
}

/// Writes `buf` to userspace address `addr`.
pub fn write_bytes(addr: u64, buf: &[u8]) -> Result {
    UserSlice::new(UserPtr::from_addr(addr as usize), buf.len())
        .writer()
        .write_slice(buf)
}

/// Atomically replaces the 1, 2, 4 or 8 bytes at user address `addr` with
/// `new` if they equal `old`: `Ok(true)` if exchanged, `Ok(false)` if
/// memory differed, `EFAULT` on a fault, `EINVAL` for another size.
pub fn cmpxchg(addr: u64, old: &[u8], new: &[u8]) -> Result<bool> {
    let n = old.len();
    if !matches!(n, 1 | 2 | 4 | 8) || new.len() != n {
        return Err(EINVAL);
    }
    let mut expected = [0u8; 8];
    let mut replacement = [0u8; 8];
    expected[..n].copy_from_slice(old);
    replacement[..n].copy_from_slice(new);
    // SAFETY: both buffers hold 8 bytes (>= `n`); `addr` is a user address
    // and the helper's uaccess catches faults.
    let r = unsafe {
        rb::rkvm_cmpxchg_user(
            addr,
            expected.as_mut_ptr().cast(),
            replacement.as_ptr().cast(),
            n as u32,
        )
    };
    match r {
        0 => Ok(true),
        1 => Ok(false),
        _ => Err(EFAULT),
    }
}

/// TASK_SIZE_MAX: the end of user addresses.
pub fn task_size_max() -> u64 {
    // SAFETY: reads a constant of the running kernel.
    unsafe { rb::rkvm_task_size_max() }
}
