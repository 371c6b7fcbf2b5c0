// SPDX-License-Identifier: GPL-2.0
//! A wait slot for one sleeping task that wakers reach without taking a
//! lock (the kernel's `struct rcuwait`), as upstream's halted vCPU uses: a
//! waker holds nothing the woken task needs, so the woken task never spins
//! behind a waker that is still busy waking it.

use super::bindings as rb;
use core::sync::atomic::AtomicU64;
use kernel::{bindings, types::Opaque};

/// How [`RcuWait::block_until_nonzero`] ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The word was non-zero already: it did not sleep.
    Ready,
    /// It slept, and the word became non-zero.
    Woken,
    /// A signal is pending.
    Signal,
}

/// A `struct rcuwait`: at most one task sleeps on it at a time.
pub struct RcuWait(Opaque<bindings::rcuwait>);

// SAFETY: an rcuwait is made to be shared: the sleeper publishes itself
// with rcu_assign_pointer() and wakers read the task under RCU.
unsafe impl Sync for RcuWait {}
// SAFETY: it holds a task pointer only while its sleeper borrows it.
unsafe impl Send for RcuWait {}

impl RcuWait {
    /// No task waiting (rcuwait_init(): a NULL task).
    pub const fn new() -> Self {
        Self(Opaque::zeroed())
    }

    /// Sleeps, interruptibly, until `word` is non-zero or a signal is
    /// pending. A waker stores to `word` first, then calls
    /// [`RcuWait::wake`]. The callers must make sure only one task waits
    /// at a time (the vCPU's own thread, under its mutex).
    pub fn block_until_nonzero(&self, word: &AtomicU64) -> Wait {
        // SAFETY: `self.0` is a live rcuwait; `word` is a live, aligned
        // u64 that the helper only reads (READ_ONCE), as atomics may.
        match unsafe { rb::rkvm_rcuwait_block(self.0.get(), word.as_ptr()) } {
            0 => Wait::Ready,
            1 => Wait::Woken,
            _ => Wait::Signal,
        }
    }

    /// Wakes the task sleeping in [`RcuWait::block_until_nonzero`], if
    /// any. Any context, hard interrupts included.
    pub fn wake(&self) {
        // SAFETY: `self.0` is a live rcuwait.
        unsafe { rb::rkvm_rcuwait_wake_up(self.0.get()) }
    }
}

impl Default for RcuWait {
    fn default() -> Self {
        Self::new()
    }
}
