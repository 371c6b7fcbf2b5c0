// SPDX-License-Identifier: GPL-2.0
//! Halt polling: a halted vCPU spins for a short, adaptive time before it
//! sleeps, so a wake-up that comes soon costs no sleep and reschedule
//! (upstream's kvm_vcpu_halt() and its grow/shrink rules, tuned by the
//! `halt_poll_ns*` parameters).

use crate::{
    ext::{cpu, time::monotonic_ns, uapi},
    virt::{
        kick::VcpuKick,
        params::{HALT_POLL_NS, HALT_POLL_NS_GROW, HALT_POLL_NS_GROW_START, HALT_POLL_NS_SHRINK},
    },
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;

/// A VM's limit on halt polling: `halt_poll_ns`, or what the VMM set
/// with KVM_CAP_HALT_POLL (upstream's `max_halt_poll_ns` and
/// `override_halt_poll_ns`).
pub(crate) struct HaltPollLimit(AtomicU64);

/// `HaltPollLimit`'s bit for "overridden"; the limit is in the low half.
const OVERRIDDEN: u64 = 1 << 32;

impl HaltPollLimit {
    pub(crate) const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    /// The most a vCPU of the VM polls (ns).
    pub(crate) fn max_ns(&self) -> u32 {
        let v = self.0.load(Ordering::Relaxed);
        if v & OVERRIDDEN != 0 {
            v as u32
        } else {
            HALT_POLL_NS.get()
        }
    }

    /// KVM_ENABLE_CAP(KVM_CAP_HALT_POLL): the VM's own limit from now on
    /// (EINVAL for flags or a value beyond 32 bits, as upstream).
    pub(crate) fn enable_cap(&self, c: &uapi::kvm_enable_cap) -> Result {
        let ns = u32::try_from(c.args[0]).map_err(|_| EINVAL)?;
        if c.flags != 0 {
            return Err(EINVAL);
        }
        self.0.store(OVERRIDDEN | u64::from(ns), Ordering::Relaxed);
        Ok(())
    }
}

/// A vCPU's current polling time.
#[derive(Default)]
pub(crate) struct HaltPoll {
    ns: u32,
}

impl HaltPoll {
    /// How long to poll at the next halt (ns), within the VM's `limit`.
    pub(crate) fn budget_ns(&self, limit: &HaltPollLimit) -> u64 {
        u64::from(self.ns.min(limit.max_ns()))
    }

    /// Adapts the polling time after a halt that lasted `halt_ns`.
    pub(crate) fn adjust(&mut self, halt_ns: u64, limit: &HaltPollLimit) {
        let max = u64::from(limit.max_ns());
        let cur = u64::from(self.ns);
        if max == 0 {
            self.ns = 0;
        } else if halt_ns <= cur {
            // The poll caught the wake-up: keep it.
        } else if cur != 0 && halt_ns > max {
            self.shrink();
        } else if cur < max && halt_ns < max {
            self.grow(max);
        }
    }

    fn grow(&mut self, max: u64) {
        let grow = HALT_POLL_NS_GROW.get();
        if grow == 0 {
            return;
        }
        let val = self
            .ns
            .saturating_mul(grow)
            .max(HALT_POLL_NS_GROW_START.get());
        self.ns = val.min(max.min(u64::from(u32::MAX)) as u32);
    }

    fn shrink(&mut self) {
        let shrink = HALT_POLL_NS_SHRINK.get();
        let val = self.ns.checked_div(shrink).unwrap_or(0);
        self.ns = if val < HALT_POLL_NS_GROW_START.get() {
            0
        } else {
            val
        };
    }
}

/// Spins until a request is posted to `kick` (true) or until `deadline`
/// (monotonic ns), a pending signal, or another task wanting this CPU
/// (false): one that is runnable on it, or the scheduler asking for it,
/// as upstream's kvm_vcpu_can_poll(). (Without the runnable check a vCPU
/// that polls keeps the CPU from the vCPU thread that would wake it
/// until the next tick.)
pub(crate) fn poll(kick: &VcpuKick, deadline: u64) -> bool {
    loop {
        if kick.has_requests() {
            return true;
        }
        if kernel::current!().signal_pending()
            || !cpu::single_task_running()
            || cpu::need_resched()
            || monotonic_ns() >= deadline
        {
            return false;
        }
        kernel::processor::cpu_relax();
    }
}
