// SPDX-License-Identifier: GPL-2.0
//! Dirty-page logging: KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG and the
//! manual-protect mode (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2). The bitmaps
//! live in the slots; re-protecting pages is the MMU's.

use crate::{
    ext::{uaccess, uapi},
    memslots,
    virt::vm::Vm,
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, sync::Arc};

/// `KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET`.
pub(crate) const MANUAL_DIRTY_LOG_CAPS: u64 =
    (uapi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | uapi::KVM_DIRTY_LOG_INITIALLY_SET) as u64;

/// A VM's dirty-logging mode.
pub(crate) struct DirtyLog {
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 options.
    manual: AtomicU64,
}

impl DirtyLog {
    pub(crate) fn new() -> Self {
        Self {
            manual: AtomicU64::new(0),
        }
    }

    /// KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2).
    pub(crate) fn enable_manual_protect(&self, flags: u64) -> Result {
        let enable = u64::from(uapi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE);
        let allowed = if flags & enable != 0 {
            MANUAL_DIRTY_LOG_CAPS
        } else {
            enable
        };
        if flags & !allowed != 0 {
            return Err(EINVAL);
        }
        self.manual.store(flags, Ordering::SeqCst);
        Ok(())
    }

    /// Userspace clears (and re-protects) with KVM_CLEAR_DIRTY_LOG.
    pub(crate) fn manual_protect(&self) -> bool {
        self.manual.load(Ordering::SeqCst) & u64::from(uapi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)
            != 0
    }

    /// New logging slots start all dirty (KVM_DIRTY_LOG_INITIALLY_SET,
    /// with manual protection), and writable until the first clear.
    pub(crate) fn initially_set(&self) -> bool {
        self.manual_protect()
            && self.manual.load(Ordering::SeqCst) & u64::from(uapi::KVM_DIRTY_LOG_INITIALLY_SET)
                != 0
    }
}

/// The slot id a dirty-log ioctl names (`as_id << 16 | id`).
fn slot_id(slot: u32) -> Result<u32> {
    let (as_id, id) = (slot >> 16, slot & 0xffff);
    if as_id >= memslots::ADDRESS_SPACE_NUM || id >= memslots::USER_MEM_SLOTS {
        return Err(EINVAL);
    }
    Ok(id)
}

/// Slot `id`, if it logs.
fn logging_slot(vm: &Vm, id: u32) -> Result<Arc<crate::virt::guest_memory::Slot>> {
    let s = vm.mmu().slot_by_id(id).ok_or(ENOENT)?;
    if !s.logging() {
        return Err(ENOENT);
    }
    Ok(s)
}

/// KVM_GET_DIRTY_LOG: copies the slot's dirty bitmap out; without manual
/// protection also clears it and write-protects the pages that were dirty.
pub(crate) fn get_dirty_log(vm: &Vm, arg: usize) -> Result {
    let log: uapi::kvm_dirty_log = uaccess::read_arg(arg)?;
    let id = slot_id(log.slot)?;
    let _slots = vm.lock_slots();
    let slot = logging_slot(vm, id)?;
    let harvest = !vm.dirty_log().manual_protect();
    let words = vm.mmu().dirty_bitmap(vm, &slot, harvest)?;
    uaccess::write_array(log.bitmap_addr() as usize, &words)
}

/// KVM_CLEAR_DIRTY_LOG: clears the given bits and write-protects those
/// pages again (manual-protect mode).
pub(crate) fn clear_dirty_log(vm: &Vm, arg: usize) -> Result {
    let log: uapi::kvm_clear_dirty_log = uaccess::read_arg(arg)?;
    let id = slot_id(log.slot)?;
    if log.first_page & 63 != 0 {
        return Err(EINVAL);
    }
    let _slots = vm.lock_slots();
    let slot = logging_slot(vm, id)?;
    let npages = slot.desc().npages;
    let (first, num) = (log.first_page, u64::from(log.num_pages));
    if first > npages || num > npages - first || (num < npages - first && num & 63 != 0) {
        return Err(EINVAL);
    }
    let masks: KVec<u64> =
        uaccess::read_array(log.bitmap_addr() as usize, num.div_ceil(64) as usize)?;
    vm.mmu().clear_dirty(vm, &slot, first, &masks);
    Ok(())
}
