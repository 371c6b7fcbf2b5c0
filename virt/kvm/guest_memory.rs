// SPDX-License-Identifier: GPL-2.0
//! A memory slot: a guest-physical range backed by userspace memory, with
//! its dirty bitmap when `KVM_MEM_LOG_DIRTY_PAGES` is set. The update rules
//! live in the pure `memslots` module.

use crate::memslots::{SlotDesc, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, sync::Arc};

/// One memory slot. Immutable but for its dirty bits; a change of flags or
/// address makes a new `Slot`.
pub(crate) struct Slot {
    pub(crate) desc: SlotDesc,
    dirty: KVec<AtomicU64>,
}

impl Slot {
    /// A slot for `desc`, with a dirty bitmap if it logs writes: cleared,
    /// or all set with `initially_set` (KVM_DIRTY_LOG_INITIALLY_SET).
    pub(crate) fn new(desc: SlotDesc, initially_set: bool) -> Result<Arc<Self>> {
        let mut dirty = KVec::new();
        if desc.flags & KVM_MEM_LOG_DIRTY_PAGES != 0 {
            let words = desc.npages.div_ceil(64) as usize;
            dirty.reserve(words, GFP_KERNEL_ACCOUNT)?;
            for i in 0..words as u64 {
                let bits = if !initially_set {
                    0
                } else if (i + 1) * 64 <= desc.npages {
                    u64::MAX
                } else {
                    (1u64 << (desc.npages % 64)) - 1
                };
                dirty.push(AtomicU64::new(bits), GFP_KERNEL_ACCOUNT)?;
            }
        }
        Ok(Arc::new(Self { desc, dirty }, GFP_KERNEL_ACCOUNT)?)
    }

    /// Guest writes exit to userspace as MMIO.
    pub(crate) fn readonly(&self) -> bool {
        self.desc.flags & KVM_MEM_READONLY != 0
    }

    /// Guest writes are logged.
    pub(crate) fn logging(&self) -> bool {
        self.desc.flags & KVM_MEM_LOG_DIRTY_PAGES != 0
    }

    /// Records a write to `gfn` (no-op unless logging).
    pub(crate) fn mark_dirty(&self, gfn: u64) {
        let Some(rel) = gfn.checked_sub(self.desc.base_gfn) else { return };
        if let Some(w) = self.dirty.get((rel / 64) as usize) {
            w.fetch_or(1 << (rel % 64), Ordering::Relaxed);
        }
    }

    /// Bytes of the userspace dirty bitmap (`ALIGN(npages, 64) / 8`).
    pub(crate) fn bitmap_bytes(&self) -> usize {
        (self.desc.npages.div_ceil(64) * 8) as usize
    }

    /// The dirty bitmap's words.
    pub(crate) fn dirty_words(&self) -> &[AtomicU64] {
        &self.dirty
    }
}
