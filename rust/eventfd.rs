// SPDX-License-Identifier: GPL-2.0
//! eventfds: signalling one (ioeventfd, irqfd resampling) and watching one
//! (irqfd). The 7.3 `kernel` crate has neither.

use super::bindings as rb;
use core::{
    marker::PhantomPinned,
    sync::atomic::{AtomicBool, AtomicPtr, Ordering},
};
use kernel::{bindings, error::from_err_ptr, ffi, fs::file::LocalFile, prelude::*, types::Opaque};

/// A reference to an eventfd's context.
pub struct EventFd {
    ctx: *mut bindings::eventfd_ctx,
}

// SAFETY: eventfd contexts are refcounted and internally locked.
unsafe impl Send for EventFd {}
// SAFETY: see above.
unsafe impl Sync for EventFd {}

impl EventFd {
    /// The eventfd behind file descriptor `fd` (`EBADF`, or `EINVAL` if
    /// it is not an eventfd).
    pub fn from_fd(fd: i32) -> Result<Self> {
        // SAFETY: takes a reference on success.
        let ctx = from_err_ptr(unsafe { bindings::eventfd_ctx_fdget(fd) })?;
        Ok(Self { ctx })
    }

    /// Adds 1 to the counter and wakes readers. Any context.
    pub fn signal(&self) {
        // SAFETY: we hold a reference on `ctx`.
        unsafe { bindings::eventfd_signal_mask(self.ctx, 0) };
    }

    /// Whether both refer to the same eventfd.
    pub fn same(&self, other: &Self) -> bool {
        self.ctx == other.ctx
    }
}

impl Drop for EventFd {
    fn drop(&mut self) {
        // SAFETY: drops the reference taken in `from_fd`.
        unsafe { bindings::eventfd_ctx_put(self.ctx) };
    }
}

/// What a [`Watch`] does when its eventfd is signalled. Runs in the
/// eventfd's wakeup, with its wait-queue lock held and interrupts off:
/// must not sleep.
pub trait Signalled: Send + Sync {
    /// The eventfd was written (its counter has been reset to 0).
    fn signalled(&self);

    /// The eventfd's file is being released (EPOLLHUP): no more signals
    /// will come; the watch should be dropped (not from here: this runs
    /// under the wait-queue lock that dropping takes).
    fn hangup(&self) {}
}

/// An eventfd being watched: `T::signalled` runs each time it is written,
/// until the watch is dropped.
#[pin_data(PinnedDrop)]
pub struct Watch<T: Signalled> {
    #[pin]
    wait: Opaque<bindings::wait_queue_entry>,
    #[pin]
    pt: Opaque<bindings::poll_table_struct>,
    wqh: AtomicPtr<bindings::wait_queue_head>,
    /// Another exclusive priority waiter (an irqfd of any VM) already
    /// watches the eventfd: not registered.
    busy: AtomicBool,
    ctx: EventFd,
    data: T,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: the wait entry is only touched by the wait-queue code under its
// lock; `data` is `Send + Sync`.
unsafe impl<T: Signalled> Send for Watch<T> {}
// SAFETY: see above.
unsafe impl<T: Signalled> Sync for Watch<T> {}

const EPOLLIN: usize = 0x1;
const EPOLLHUP: usize = 0x10;

impl<T: Signalled> Watch<T> {
    /// A watch on eventfd `fd`, not yet started.
    pub fn new(fd: i32, data: T) -> Result<impl PinInit<Self, Error>> {
        let ctx = EventFd::from_fd(fd)?;
        Ok(try_pin_init!(Self {
            wait <- Opaque::ffi_init(|w: *mut bindings::wait_queue_entry| {
                let mut e: bindings::wait_queue_entry = pin_init::zeroed();
                e.func = Some(wake::<T>);
                // SAFETY: `w` is valid for writes.
                unsafe { w.write(e) };
            }),
            pt <- Opaque::ffi_init(|p: *mut bindings::poll_table_struct| {
                let mut t: bindings::poll_table_struct = pin_init::zeroed();
                t._qproc = Some(queue::<T>);
                t._key = !0;
                // SAFETY: `p` is valid for writes.
                unsafe { p.write(t) };
            }),
            wqh: AtomicPtr::new(core::ptr::null_mut()),
            busy: AtomicBool::new(false),
            ctx,
            data,
            _pin: PhantomPinned,
        }? Error))
    }

    /// The watched eventfd.
    pub fn eventfd(&self) -> &EventFd {
        &self.ctx
    }

    /// The callbacks' data.
    pub fn data(&self) -> &T {
        &self.data
    }

    /// Hooks into the eventfd's wait queue (`fd` is the same eventfd's
    /// descriptor) as its one exclusive priority waiter; calls `signalled`
    /// once now if it is already signalled. `EBUSY` when another watch
    /// (of any VM) has the eventfd, as upstream's irqfds.
    pub fn start(self: Pin<&Self>, fd: i32) -> Result {
        let file = LocalFile::fget(fd as u32).map_err(|_| EBADF)?;
        // SAFETY: `pt` is initialised; `queue` will find `self` from it,
        // which is pinned and outlives the registration (see drop).
        let events = unsafe { rb::rkvm_vfs_poll(file.as_ptr(), self.pt.get()) };
        if self.busy.load(Ordering::Acquire) {
            return Err(EBUSY);
        }
        if self.wqh.load(Ordering::Acquire).is_null() {
            return Err(EINVAL);
        }
        if events as usize & EPOLLIN != 0 {
            self.data.signalled();
        }
        Ok(())
    }
}

/// poll_table callback: the eventfd tells us its wait queue.
///
/// # Safety
///
/// `pt` is the `pt` field of a pinned `Watch<T>` (vfs_poll in `start`).
unsafe extern "C" fn queue<T: Signalled>(
    _file: *mut bindings::file,
    wqh: *mut bindings::wait_queue_head,
    pt: *mut bindings::poll_table_struct,
) {
    let offset = core::mem::offset_of!(Watch<T>, pt);
    // SAFETY: `pt` is the `pt` field of a pinned `Watch<T>`.
    let w = unsafe { &*pt.cast::<u8>().sub(offset).cast::<Watch<T>>() };
    // SAFETY: `wqh` is the eventfd's live wait queue; our entry is pinned
    // and, once added, removed in `drop`.
    let r = unsafe { bindings::add_wait_queue_priority_exclusive(wqh, w.wait.get()) };
    if r != 0 {
        w.busy.store(true, Ordering::Release);
        return;
    }
    w.wqh.store(wqh, Ordering::Release);
}

/// Wait-queue callback: runs on every wakeup of the eventfd.
///
/// # Safety
///
/// `wait` is the `wait` field of a pinned, registered `Watch<T>`; called
/// under the eventfd's wait-queue lock.
unsafe extern "C" fn wake<T: Signalled>(
    wait: *mut bindings::wait_queue_entry,
    _mode: ffi::c_uint,
    _sync: ffi::c_int,
    key: *mut ffi::c_void,
) -> ffi::c_int {
    let offset = core::mem::offset_of!(Watch<T>, wait);
    // SAFETY: `wait` is the `wait` field of a pinned, registered Watch.
    let w = unsafe { &*wait.cast::<u8>().sub(offset).cast::<Watch<T>>() };
    if key as usize & EPOLLIN != 0 {
        let mut cnt = 0u64;
        // SAFETY: called under the eventfd's wait-queue lock, as required.
        unsafe { bindings::eventfd_ctx_do_read(w.ctx.ctx, &mut cnt) };
        w.data.signalled();
    }
    if key as usize & EPOLLHUP != 0 {
        w.data.hangup();
    }
    0
}

#[pinned_drop]
impl<T: Signalled> PinnedDrop for Watch<T> {
    fn drop(self: Pin<&mut Self>) {
        if !self.wqh.load(Ordering::Acquire).is_null() {
            let mut cnt = 0u64;
            // SAFETY: removes our entry under the wait-queue lock; after
            // this no `wake` runs for us.
            unsafe {
                bindings::eventfd_ctx_remove_wait_queue(self.ctx.ctx, self.wait.get(), &mut cnt)
            };
        }
    }
}
