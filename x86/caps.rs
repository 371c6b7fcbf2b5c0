// SPDX-License-Identifier: GPL-2.0
//! `KVM_CHECK_EXTENSION`: which capabilities this KVM offers.
//!
//! Answers only for what is really implemented; everything else is 0, so
//! userspace falls back or fails cleanly instead of relying on a feature
//! that is not there.

use crate::vm::Vm;

/// The answer to `KVM_CHECK_EXTENSION(cap)` on `/dev/kvm` (`vm` is `None`)
/// or on a VM fd.
pub(crate) fn check(_vm: Option<&Vm>, _cap: usize) -> isize {
    0
}
