// SPDX-License-Identifier: GPL-2.0
//! KVM_SET_SIGNAL_MASK's mask while KVM_RUN runs (upstream's
//! kvm_sigset_activate()/kvm_sigset_deactivate()).

use super::bindings as rb;
use core::marker::PhantomData;

/// The current task runs with a given signal mask until dropped.
pub struct SigmaskGuard {
    active: bool,
    _not_send: PhantomData<*mut ()>,
}

impl SigmaskGuard {
    /// Applies `mask` (a 64-bit sigset) to the current task, if any.
    pub fn apply(mask: Option<u64>) -> Self {
        if let Some(m) = mask {
            // SAFETY: changes the current task's mask; its own mask is
            // parked in ->real_blocked and restored in `Drop`.
            unsafe { rb::rkvm_sigset_activate(m) };
        }
        Self {
            active: mask.is_some(),
            _not_send: PhantomData,
        }
    }
}

impl Drop for SigmaskGuard {
    fn drop(&mut self) {
        if self.active {
            // SAFETY: undoes `apply` on the same task (!Send guard).
            unsafe { rb::rkvm_sigset_deactivate() };
        }
    }
}
