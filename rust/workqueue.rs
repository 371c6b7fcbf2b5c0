// SPDX-License-Identifier: GPL-2.0
//! kvm.ko's own workqueue for deferred teardown (upstream's
//! `irqfd_cleanup_wq`): work that may drop the last reference to a VM
//! runs there, and the queue is drained and destroyed when the module
//! goes, so no such work can still be running kvm.ko's code after its
//! exit. The 7.3 `kernel` crate can use a queue but not make one.

use super::bindings as rb;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::{bindings, prelude::*, workqueue::Queue};

/// The queue while the module is loaded (set by [`CleanupQueue::new`]).
static CLEANUP: AtomicPtr<bindings::workqueue_struct> = AtomicPtr::new(core::ptr::null_mut());

/// Owns the cleanup queue: made at module init, drained and destroyed on
/// drop (module exit).
pub struct CleanupQueue(());

impl CleanupQueue {
    /// Allocates the queue (once, at module init).
    pub fn new() -> Result<Self> {
        // SAFETY: a static C string; returns NULL on failure.
        let q = unsafe { rb::rkvm_alloc_workqueue(c"kvm-irqfd-cleanup".as_char_ptr()) };
        if q.is_null() {
            return Err(ENOMEM);
        }
        CLEANUP.store(q, Ordering::Release);
        Ok(Self(()))
    }
}

impl Drop for CleanupQueue {
    fn drop(&mut self) {
        let q = CLEANUP.swap(core::ptr::null_mut(), Ordering::AcqRel);
        if !q.is_null() {
            // SAFETY: made by `new`; waits for queued and running work.
            unsafe { bindings::destroy_workqueue(q) };
        }
    }
}

/// The cleanup queue; `None` only outside the module's lifetime.
pub fn cleanup_queue() -> Option<&'static Queue> {
    let q = CLEANUP.load(Ordering::Acquire);
    // SAFETY: a live queue from `CleanupQueue::new`; it is destroyed only
    // at module exit, after which no code of the module runs.
    (!q.is_null()).then(|| unsafe { Queue::from_raw(q) })
}
