// SPDX-License-Identifier: GPL-2.0
//! The MMU notifier that keeps a VM's nested page tables coherent with its
//! VMM's address space: munmap, mprotect, page migration or reclaim of
//! guest memory zap the affected translations and flush every vCPU's TLB
//! before the host page can be reused.

use crate::virt::vm::Vm;
use kernel::{bindings, ffi};

/// The notifier operations every VM registers.
pub(crate) static OPS: bindings::mmu_notifier_ops = bindings::mmu_notifier_ops {
    invalidate_range_start: Some(invalidate_range_start),
    invalidate_range_end: Some(invalidate_range_end),
    release: Some(release),
    ..pin_init::zeroed()
};

unsafe extern "C" fn invalidate_range_start(
    mn: *mut bindings::mmu_notifier,
    range: *const bindings::mmu_notifier_range,
) -> ffi::c_int {
    // SAFETY: `mn` is the notifier embedded in a live `Vm` (it is
    // unregistered, synchronously, before the `Vm` is freed).
    let vm = unsafe { Vm::from_notifier(mn) };
    // SAFETY: the caller passes a valid range for the call's duration.
    let range = unsafe { &*range };
    let blockable = range.flags & bindings::MMU_NOTIFIER_RANGE_BLOCKABLE != 0;
    match vm.invalidate_start(range.start as u64, range.end as u64, blockable) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

unsafe extern "C" fn invalidate_range_end(
    mn: *mut bindings::mmu_notifier,
    _range: *const bindings::mmu_notifier_range,
) {
    // SAFETY: as in `invalidate_range_start`.
    let vm = unsafe { Vm::from_notifier(mn) };
    vm.invalidate_end();
}

unsafe extern "C" fn release(mn: *mut bindings::mmu_notifier, _mm: *mut bindings::mm_struct) {
    // SAFETY: as in `invalidate_range_start`.
    let vm = unsafe { Vm::from_notifier(mn) };
    vm.zap_all();
}
