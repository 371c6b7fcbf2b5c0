// SPDX-License-Identifier: GPL-2.0
//! Reaching a vCPU from other threads, timers and interrupt sources:
//! posted requests, the kick that makes a running vCPU exit the guest, and
//! the wait queue a halted vCPU sleeps on.
//!
//! Protocol with the run loop: it publishes `IN_GUEST_MODE` and then
//! re-checks `requests` with interrupts disabled; a poster sets a request
//! bit and then kicks, so either the loop sees the request or the kick's
//! IPI arrives as a VM exit. A halted vCPU checks `requests` under
//! `wait_lock` before sleeping; posters notify under the same lock.

use crate::ext::cpu;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use kernel::{
    new_condvar, new_spinlock_irq,
    prelude::*,
    sync::{CondVar, SpinLockIrq},
};

/// Flush the guest TLB before the next entry.
pub(crate) const REQ_TLB_FLUSH: u64 = 1 << 0;
/// Re-evaluate pending interrupts and events.
pub(crate) const REQ_EVENT: u64 = 1 << 1;
/// The LAPIC timer is due.
pub(crate) const REQ_TIMER: u64 = 1 << 2;
/// The PIT is due (vCPU 0 services it).
pub(crate) const REQ_PIT: u64 = 1 << 3;

/// `mode`: not running guest code.
const OUTSIDE_GUEST_MODE: u32 = 0;
/// `mode`: between the final request check and the exit.
const IN_GUEST_MODE: u32 = 1;
/// `mode`: kicked; will leave guest mode soon.
const EXITING_GUEST_MODE: u32 = 2;

/// The part of a vCPU other contexts may touch.
#[pin_data]
pub(crate) struct VcpuKick {
    /// One of the `*_GUEST_MODE` values.
    mode: AtomicU32,
    /// The CPU it last entered the guest on (-1: never).
    cpu: AtomicI32,
    /// `REQ_*` bits for the run loop.
    requests: AtomicU64,
    /// Orders a halted vCPU's last request check with posters' wake-ups
    /// (IRQ-safe: timers and irqfds post from interrupt context). Innermost
    /// lock: nothing is taken under it.
    #[pin]
    wait_lock: SpinLockIrq<()>,
    #[pin]
    waitq: CondVar,
}

impl VcpuKick {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            mode: AtomicU32::new(OUTSIDE_GUEST_MODE),
            cpu: AtomicI32::new(-1),
            requests: AtomicU64::new(0),
            wait_lock <- new_spinlock_irq!(()),
            waitq <- new_condvar!(),
        })
    }

    /// Posts `req` for the run loop.
    pub(crate) fn make_request(&self, req: u64) {
        self.requests.fetch_or(req, Ordering::SeqCst);
    }

    /// Whether any request is posted.
    pub(crate) fn has_requests(&self) -> bool {
        self.requests.load(Ordering::SeqCst) != 0
    }

    /// The posted requests, left in place (trace events).
    pub(crate) fn pending_requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The CPU the vCPU last entered the guest on (-1: never).
    pub(crate) fn last_cpu(&self) -> i32 {
        self.cpu.load(Ordering::Relaxed)
    }

    /// The run loop is about to enter the guest on `cpu`: from now on a
    /// kick sends an IPI. Returns false (and stays outside guest mode) if
    /// a request is already posted; the caller re-checks its other exit
    /// conditions after this, with interrupts off.
    pub(crate) fn enter_guest_mode(&self, cpu: u32) -> bool {
        self.cpu.store(cpu as i32, Ordering::SeqCst);
        self.mode.store(IN_GUEST_MODE, Ordering::SeqCst);
        core::sync::atomic::fence(Ordering::SeqCst);
        if self.has_requests() {
            self.exit_guest_mode();
            return false;
        }
        true
    }

    /// Back outside guest mode (after the exit, or instead of entering).
    pub(crate) fn exit_guest_mode(&self) {
        self.mode.store(OUTSIDE_GUEST_MODE, Ordering::SeqCst);
    }

    /// Takes all posted requests.
    pub(crate) fn take_requests(&self) -> u64 {
        if self.requests.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.requests.swap(0, Ordering::SeqCst)
    }

    /// Posts `req`, makes a running vCPU exit and wakes a halted one. Safe
    /// from any context, hard interrupts included.
    pub(crate) fn post(&self, req: u64) {
        self.make_request(req);
        self.kick(false);
        self.wake();
    }

    /// Makes the vCPU leave guest mode soon, so it sees posted requests;
    /// with `wait` (process context only), returns once it has left.
    pub(crate) fn kick(&self, wait: bool) {
        let send = if wait {
            self.mode.load(Ordering::SeqCst) != OUTSIDE_GUEST_MODE
        } else {
            self.mode
                .compare_exchange(
                    IN_GUEST_MODE,
                    EXITING_GUEST_MODE,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_ok()
        };
        if !send {
            return;
        }
        let cpu = self.cpu.load(Ordering::SeqCst);
        if wait {
            cpu::sync_with_cpu(cpu);
        } else {
            cpu::send_reschedule(cpu);
        }
    }

    /// Wakes the vCPU if it sleeps in [`VcpuKick::block`].
    pub(crate) fn wake(&self) {
        let _g = self.wait_lock.lock();
        self.waitq.notify_all();
    }

    /// Sleeps until a request is posted or a signal arrives.
    pub(crate) fn block(&self) -> Block {
        let mut g = self.wait_lock.lock();
        if self.requests.load(Ordering::SeqCst) != 0 {
            return Block::NotNeeded;
        }
        if self.waitq.wait_interruptible(&mut g) {
            Block::Signal
        } else {
            Block::Woken
        }
    }
}

/// How [`VcpuKick::block`] ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    /// A request was already posted: it did not sleep.
    NotNeeded,
    /// It slept and was woken.
    Woken,
    /// A signal is pending.
    Signal,
}
