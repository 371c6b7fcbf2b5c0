// SPDX-License-Identifier: GPL-2.0
//! Memory slots: guest-physical ranges backed by userspace memory, with
//! a dirty bitmap when `KVM_MEM_LOG_DIRTY_PAGES` is set, and the VM's
//! sorted table of them. The update rules live in the pure `memslots`
//! module; the table is owned (and locked) by the MMU.

use crate::{
    defs::paging::{Gfn, PAGE_SHIFT, PAGE_SIZE},
    memslots::{SlotDesc, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY},
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, sync::Arc};

/// One memory slot. Immutable but for its dirty bits; a change of flags or
/// address makes a new `Slot`.
pub(crate) struct Slot {
    desc: SlotDesc,
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

    /// Where it is and what backs it.
    pub(crate) fn desc(&self) -> &SlotDesc {
        &self.desc
    }

    /// The userspace address of guest frame `gfn`, if in this slot.
    pub(crate) fn gfn_to_hva(&self, gfn: Gfn) -> Option<u64> {
        self.desc.gfn_to_hva(gfn.raw())
    }

    /// Guest frames backed by userspace `[start, end)`, if any.
    pub(crate) fn hva_range_to_gfns(&self, start: u64, end: u64) -> Option<(u64, u64)> {
        let d = &self.desc;
        let s_end = d.hva + (d.npages << PAGE_SHIFT);
        let lo = start.max(d.hva);
        let hi = end.min(s_end);
        if lo >= hi {
            return None;
        }
        Some((
            d.base_gfn + ((lo - d.hva) >> PAGE_SHIFT),
            d.base_gfn + ((hi - d.hva).div_ceil(PAGE_SIZE)),
        ))
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
    pub(crate) fn mark_dirty(&self, gfn: Gfn) {
        let Some(rel) = gfn.raw().checked_sub(self.desc.base_gfn) else {
            return;
        };
        if let Some(w) = self.dirty.get((rel / 64) as usize) {
            w.fetch_or(1 << (rel % 64), Ordering::Relaxed);
        }
    }

    /// The dirty bitmap's words.
    pub(crate) fn dirty_words(&self) -> &[AtomicU64] {
        &self.dirty
    }
}

/// A VM's slots, sorted by `base_gfn`; slots never overlap.
pub(crate) struct Slots {
    list: KVec<Arc<Slot>>,
}

impl Slots {
    pub(crate) fn new() -> Self {
        Self { list: KVec::new() }
    }

    /// The slot holding `gfn`.
    pub(crate) fn for_gfn(&self, gfn: Gfn) -> Option<&Arc<Slot>> {
        let i = self.list.partition_point(|s| s.desc.end_gfn() <= gfn.raw());
        self.list.get(i).filter(|s| s.desc.contains(gfn.raw()))
    }

    /// The slot with id `id`.
    pub(crate) fn by_id(&self, id: u32) -> Option<&Arc<Slot>> {
        self.list.iter().find(|s| s.desc.id == id)
    }

    /// All slots.
    pub(crate) fn iter(&self) -> core::slice::Iter<'_, Arc<Slot>> {
        self.list.iter()
    }

    /// Makes room for one more slot (may sleep: call before `replace`).
    pub(crate) fn reserve(&mut self) -> Result {
        self.list.reserve(1, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// Removes slot `id` (if any) and inserts `new` (if any), keeping the
    /// order; `new` needs room from [`Slots::reserve`].
    pub(crate) fn replace(&mut self, id: Option<u32>, new: Option<Arc<Slot>>) -> Result {
        if let Some(id) = id {
            if let Some(i) = self.list.iter().position(|s| s.desc.id == id) {
                self.list.remove(i)?;
            }
        }
        if let Some(new) = new {
            let i = self
                .list
                .partition_point(|s| s.desc.base_gfn < new.desc.base_gfn);
            self.list
                .insert_within_capacity(i, new)
                .map_err(|_| ENOMEM)?;
        }
        Ok(())
    }
}
