// SPDX-License-Identifier: GPL-2.0
//! The VM's MMU: its memory slots and the TDP (nested) page tables built
//! from them on demand, kept coherent with the VMM's address space, and the
//! guest-memory accesses of the kernel (emulator, kvmclock, VAPIC).
//!
//! Coherence protocol (as upstream's `mmu_invalidate_seq`): a fault reads
//! `seq`, pins the page without the lock, and installs the translation
//! (under the lock) only if no invalidation started or ended in between
//! (`invalidating`, `seq`); an invalidation zaps under the lock and flushes
//! every vCPU's TLB before the VMM's page can be freed.
//!
//! Remote TLB flushes kick vCPUs and wait for them: never under `inner`.

pub(crate) mod tdp;

use crate::{
    defs::paging::{Gpa, PAGE_SHIFT},
    ext::{cpu, pages::PinnedUserPage, uaccess},
    memslots::{self, Change, Request, SlotDesc, SlotError},
    virt::{
        guest_memory::{Slot, Slots},
        vm::Vm,
    },
};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
};
use tdp::{Tdp, TdpFormat};

/// Under [`Mmu::inner`].
struct Inner {
    slots: Slots,
    tdp: Tdp,
}

/// A VM's memory map and nested page tables.
#[pin_data]
pub(crate) struct Mmu {
    /// Slots and tables (upstream's slots under `mmu_lock`). A mutex: the
    /// fault path allocates table pages under it. Taken by MMU-notifier
    /// callbacks (try-lock when they must not block); lock order: the
    /// VM's slots lock → `inner`; nothing else is taken under it.
    #[pin]
    inner: Mutex<Inner>,
    /// Bumped at the end of each invalidation and on slot changes.
    seq: AtomicU64,
    /// Invalidations in progress.
    invalidating: AtomicU32,
    /// Highest guest frame a slot may map.
    max_gfn: u64,
    /// `TDP root` (host physical), fixed for the VM's life.
    root_pa: u64,
}

impl Mmu {
    /// No slots, empty tables in the vendor's `format`.
    pub(crate) fn new(format: TdpFormat) -> Result<impl PinInit<Self, Error>> {
        let tdp = Tdp::new(format)?;
        let root_pa = tdp.root_pa();
        let max_gfn = tdp::MAX_GFN.min((1u64 << (host_maxphyaddr() - u64::from(PAGE_SHIFT))) - 1);
        Ok(try_pin_init!(Self {
            inner <- new_mutex!(Inner { slots: Slots::new(), tdp }),
            seq: AtomicU64::new(0),
            invalidating: AtomicU32::new(0),
            max_gfn,
            root_pa,
        }))
    }

    /// Physical address of the top-level TDP table (the vendor's nCR3/EPTP).
    pub(crate) fn tdp_root(&self) -> u64 {
        self.root_pa
    }

    /// What KVM_SET_USER_MEMORY_REGION(2) `req` would change, by the
    /// rules of `memslots::plan` (under the VM's slots lock, so the plan
    /// stays valid until [`Mmu::set_slot`]).
    pub(crate) fn plan(&self, req: &Request, user_limit: u64) -> Result<Change, SlotError> {
        let inner = self.inner.lock();
        memslots::plan(req, inner.slots.iter().map(|s| s.desc()), user_limit)
    }

    /// Replaces the slot `old` (if any) with `new` (if any): the old range
    /// is unmapped when it moves or goes away, and the new one
    /// write-protected when it starts logging (`protect`). The caller holds
    /// the VM's slots lock and planned the change (`memslots::plan`).
    pub(crate) fn set_slot(
        &self,
        vm: &Vm,
        old: Option<SlotDesc>,
        new: Option<Arc<Slot>>,
        protect: bool,
    ) -> Result {
        if new.as_ref().is_some_and(|n| !self.fits(n.desc())) {
            return Err(EINVAL);
        }
        let mut m = self.inner.lock();
        m.slots.reserve()?;
        m.slots.replace(old.map(|o| o.id), new.clone())?;
        self.seq.fetch_add(1, Ordering::SeqCst);
        let mut flush = false;
        if let Some(o) = old {
            let moved = new.as_ref().is_none_or(|n| n.desc().base_gfn != o.base_gfn);
            if moved {
                flush |= m.tdp.zap(o.base_gfn, o.end_gfn());
                vm.stats().pages_4k.set(m.tdp.leaves());
            }
        }
        if let Some(s) = new.filter(|_| protect) {
            // Writes must fault from now on, to be logged.
            flush |= m.tdp.write_protect(s.desc().base_gfn, s.desc().end_gfn());
        }
        drop(m);
        if flush {
            vm.flush_remote_tlbs();
        }
        Ok(())
    }

    /// Whether the tables can map all of `desc`.
    pub(crate) fn fits(&self, desc: &SlotDesc) -> bool {
        desc.end_gfn() - 1 <= self.max_gfn
    }

    /// The slot with id `id`.
    pub(crate) fn slot_by_id(&self, id: u32) -> Option<Arc<Slot>> {
        self.inner.lock().slots.by_id(id).cloned()
    }

    /// The userspace address and slot of guest physical `gpa`, if RAM (and
    /// writable RAM for `write`).
    pub(crate) fn gpa_to_hva(&self, gpa: Gpa, write: bool) -> Option<(u64, Arc<Slot>)> {
        let m = self.inner.lock();
        let slot = m.slots.for_gfn(gpa.gfn())?;
        if write && slot.readonly() {
            return None;
        }
        let hva = slot.gfn_to_hva(gpa.gfn())? + gpa.page_offset();
        Some((hva, slot.clone()))
    }

    /// Reads guest RAM at `gpa` (within one page). `Ok(false)`: not RAM.
    pub(crate) fn read_guest(&self, gpa: Gpa, buf: &mut [u8]) -> Result<bool> {
        let Some((hva, _)) = self.gpa_to_hva(gpa, false) else {
            return Ok(false);
        };
        uaccess::read_bytes(hva, buf)?;
        Ok(true)
    }

    /// Writes guest RAM at `gpa` (within one page), logging the page.
    /// `Ok(false)`: not writable RAM (MMIO or a read-only slot).
    pub(crate) fn write_guest(&self, gpa: Gpa, buf: &[u8]) -> Result<bool> {
        let Some((hva, slot)) = self.gpa_to_hva(gpa, true) else {
            return Ok(false);
        };
        uaccess::write_bytes(hva, buf)?;
        slot.mark_dirty(gpa.gfn());
        Ok(true)
    }

    /// Atomic compare-exchange of guest RAM at `gpa` (1, 2, 4 or 8 bytes
    /// within one page), logging the page. `Ok(None)`: not writable RAM.
    pub(crate) fn cmpxchg_guest(&self, gpa: Gpa, old: &[u8], new: &[u8]) -> Result<Option<bool>> {
        let Some((hva, slot)) = self.gpa_to_hva(gpa, true) else {
            return Ok(None);
        };
        let r = uaccess::cmpxchg(hva, old, new)?;
        slot.mark_dirty(gpa.gfn());
        Ok(Some(r))
    }

    /// Resolves a TDP fault at `gpa`: maps the page and returns `Ok(true)`,
    /// or `Ok(false)` when the access is MMIO (no slot, or a write to a
    /// read-only slot). `EFAULT`: the VMM's memory behind the slot is gone.
    pub(crate) fn fault(&self, vm: &Vm, gpa: Gpa, write: bool) -> Result<bool> {
        let gfn = gpa.gfn();
        loop {
            let seq = self.seq.load(Ordering::SeqCst);
            let Some(slot) = self.inner.lock().slots.for_gfn(gfn).cloned() else {
                return Ok(false);
            };
            if write && slot.readonly() {
                return Ok(false);
            }
            let hva = slot.gfn_to_hva(gfn).ok_or(EFAULT)?;
            // Map writable whenever the slot and the host page allow, and
            // log it as dirty if so, like upstream (it does not wait for a
            // write fault; pages write-protected by GET_DIRTY_LOG stay
            // mapped read-only until the guest writes them).
            let want_write = write || !slot.readonly();
            let (page, writable) = match PinnedUserPage::get(hva, want_write) {
                Ok(p) => (p, want_write),
                Err(_) if !write && want_write => (PinnedUserPage::get(hva, false)?, false),
                Err(e) => return Err(e),
            };
            let mut m = self.inner.lock();
            if self.invalidating.load(Ordering::SeqCst) != 0
                || self.seq.load(Ordering::SeqCst) != seq
            {
                drop(m);
                drop(page);
                cpu::cond_resched();
                continue;
            }
            let flush = m.tdp.map(gfn.raw(), page.pfn(), writable)?;
            vm.stats().pages_4k.set(m.tdp.leaves());
            if writable {
                slot.mark_dirty(gfn);
            }
            drop(m);
            if flush {
                vm.flush_remote_tlbs();
            }
            return Ok(true);
        }
    }

    /// MMU notifier: an invalidation of userspace `[start, end)` begins.
    pub(crate) fn invalidate_start(
        &self,
        vm: &Vm,
        start: u64,
        end: u64,
        blockable: bool,
    ) -> Result {
        let mut m = if blockable {
            self.inner.lock()
        } else {
            self.inner.try_lock().ok_or(EAGAIN)?
        };
        self.invalidating.fetch_add(1, Ordering::SeqCst);
        let mut flush = false;
        let Inner { slots, tdp } = &mut *m;
        for slot in slots.iter() {
            if let Some((a, b)) = slot.hva_range_to_gfns(start, end) {
                flush |= tdp.zap(a, b);
            }
        }
        vm.stats().pages_4k.set(tdp.leaves());
        drop(m);
        if flush {
            vm.flush_remote_tlbs();
        }
        Ok(())
    }

    /// MMU notifier: the invalidation that began last has ended.
    pub(crate) fn invalidate_end(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        self.invalidating.fetch_sub(1, Ordering::SeqCst);
    }

    /// MMU notifier: the VMM's address space goes away.
    pub(crate) fn zap_all(&self, vm: &Vm) {
        let mut m = self.inner.lock();
        let flush = m.tdp.zap_all();
        vm.stats().pages_4k.set(m.tdp.leaves());
        drop(m);
        if flush {
            vm.flush_remote_tlbs();
        }
    }

    /// KVM_GET_DIRTY_LOG: the slot's dirty bitmap. Without manual
    /// protection (`harvest`) the bits are cleared and those pages
    /// write-protected again, so new writes are logged.
    pub(crate) fn dirty_bitmap(&self, vm: &Vm, slot: &Slot, harvest: bool) -> Result<KVec<u64>> {
        let words = slot.dirty_words();
        let mut out = KVec::with_capacity(words.len(), GFP_KERNEL_ACCOUNT)?;
        if !harvest {
            for w in words.iter() {
                out.push(w.load(Ordering::SeqCst), GFP_KERNEL_ACCOUNT)?;
            }
            return Ok(out);
        }
        let mut flush = false;
        let mut m = self.inner.lock();
        for (i, w) in words.iter().enumerate() {
            let mask = w.swap(0, Ordering::SeqCst);
            out.push(mask, GFP_KERNEL_ACCOUNT)?;
            flush |= protect_bits(&mut m.tdp, slot.desc().base_gfn + i as u64 * 64, mask);
        }
        drop(m);
        if flush {
            vm.flush_remote_tlbs();
        }
        Ok(out)
    }

    /// KVM_CLEAR_DIRTY_LOG: clears the bits of `masks` (one word per 64
    /// pages from slot page `first`, a multiple of 64) and write-protects
    /// those pages again.
    pub(crate) fn clear_dirty(&self, vm: &Vm, slot: &Slot, first: u64, masks: &[u64]) {
        let dirty = slot.dirty_words();
        let mut flush = false;
        let mut m = self.inner.lock();
        for (i, user) in masks.iter().enumerate() {
            let Some(w) = dirty.get((first / 64) as usize + i) else {
                break;
            };
            let cleared = w.fetch_and(!user, Ordering::SeqCst) & user;
            flush |= protect_bits(
                &mut m.tdp,
                slot.desc().base_gfn + first + i as u64 * 64,
                cleared,
            );
        }
        drop(m);
        if flush {
            vm.flush_remote_tlbs();
        }
    }
}

/// Write-protects the frames `base + b` for each set bit `b` of `mask`.
fn protect_bits(tdp: &mut Tdp, base: u64, mask: u64) -> bool {
    let mut flush = false;
    let mut bits = mask;
    while bits != 0 {
        let gfn = base + u64::from(bits.trailing_zeros());
        bits &= bits - 1;
        flush |= tdp.write_protect(gfn, gfn + 1);
    }
    flush
}

/// The host's physical address width (CPUID 0x80000008 EAX[7:0]).
fn host_maxphyaddr() -> u64 {
    let r = core::arch::x86_64::__cpuid(0x8000_0008);
    u64::from(r.eax & 0xff).clamp(36, 52)
}
