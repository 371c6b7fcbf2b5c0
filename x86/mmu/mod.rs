// SPDX-License-Identifier: GPL-2.0
//! The VM's memory map: memory slots plus the TDP (nested) page tables
//! built from them on demand, kept coherent with the VMM's address space by
//! an MMU notifier.
//!
//! Coherence protocol (as upstream's `mmu_invalidate_seq`): a fault reads
//! `Vm::mmu_seq`, pins the page without the lock, and installs the
//! translation (under the lock) only if no invalidation started or ended in
//! between (`Vm::mmu_invalidating`, `Vm::mmu_seq`); an
//! invalidation zaps under the lock and flushes every vCPU's TLB before the
//! VMM's page can be freed.

pub(crate) mod tdp;

use crate::virt::guest_memory::Slot;
use kernel::{prelude::*, sync::Arc};
use tdp::Tdp;

/// Slots, tables and the invalidation counters, under `Vm::mmu`.
pub(crate) struct Mmu {
    /// Sorted by `base_gfn`; slots never overlap.
    slots: KVec<Arc<Slot>>,
    pub(crate) tdp: Tdp,
}

impl Mmu {
    pub(crate) fn new() -> Result<Self> {
        Ok(Self { slots: KVec::new(), tdp: Tdp::new()? })
    }

    /// The slot holding `gfn`.
    pub(crate) fn slot_for_gfn(&self, gfn: u64) -> Option<&Arc<Slot>> {
        let i = self.slots.partition_point(|s| s.desc.end_gfn() <= gfn);
        self.slots.get(i).filter(|s| s.desc.contains(gfn))
    }

    /// The slot with id `id`.
    pub(crate) fn slot_by_id(&self, id: u32) -> Option<&Arc<Slot>> {
        self.slots.iter().find(|s| s.desc.id == id)
    }

    /// All slots.
    pub(crate) fn slots(&self) -> &[Arc<Slot>] {
        &self.slots
    }

    /// Removes slot `id` (if any) and inserts `new` (if any), keeping the
    /// order. `new` must have room reserved: see [`Mmu::reserve_slot`].
    pub(crate) fn replace_slot(&mut self, id: Option<u32>, new: Option<Arc<Slot>>) -> Result {
        if let Some(id) = id {
            if let Some(i) = self.slots.iter().position(|s| s.desc.id == id) {
                self.slots.remove(i)?;
            }
        }
        if let Some(new) = new {
            let i = self.slots.partition_point(|s| s.desc.base_gfn < new.desc.base_gfn);
            self.slots.insert_within_capacity(i, new).map_err(|_| ENOMEM)?;
        }
        Ok(())
    }

    /// Makes room for one more slot (may sleep: call before swapping).
    pub(crate) fn reserve_slot(&mut self) -> Result {
        self.slots.reserve(1, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }
}
