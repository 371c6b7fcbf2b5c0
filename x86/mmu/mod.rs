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
//!
//! The tables are the TDP tables of `tdp.rs` when the vendor has
//! two-dimensional paging, else the shadow MMU of `shadow.rs` (kvm-amd
//! `npt=0`): the same slots, notifier protocol and dirty logging, with
//! the guest's own page tables shadowed.

pub(crate) mod shadow;
pub(crate) mod tdp;

use crate::{
    defs::paging::{Gfn, Gpa, PAGE_SHIFT},
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
use shadow::{Gens, Shadow};
use tdp::{Tdp, TdpFormat, HUGE_FRAMES};

/// The tables the guest runs on.
enum Paging {
    /// Two-dimensional paging (NPT, EPT).
    Tdp(Tdp),
    /// Shadow paging.
    Shadow(Shadow),
}

/// Under [`Mmu::inner`].
struct Inner {
    slots: Slots,
    paging: Paging,
}

/// A VM's memory map and nested page tables.
#[pin_data]
pub(crate) struct Mmu {
    /// Slots and tables (upstream's slots under `mmu_lock`). A mutex: the
    /// fault path allocates table pages under it. Taken by MMU-notifier
    /// callbacks (try-lock when they must not block); lock order: the
    /// VM's slots lock → `inner`; nothing else is taken under it (the
    /// shadow MMU's reverse map and lookup trees live inside it).
    #[pin]
    inner: Mutex<Inner>,
    /// Bumped at the end of each invalidation and on slot changes.
    seq: AtomicU64,
    /// Invalidations in progress.
    invalidating: AtomicU32,
    /// Highest guest frame a slot may map.
    max_gfn: u64,
    /// `TDP root` (host physical), fixed for the VM's life (0: shadow).
    root_pa: u64,
    /// The shadow MMU's generations, read by faults without the lock.
    gens: Gens,
}

impl Mmu {
    /// No slots, empty tables: TDP tables in the vendor's `format`, or
    /// shadow tables (`shadow`).
    pub(crate) fn new(format: TdpFormat, shadow: bool) -> Result<impl PinInit<Self, Error>> {
        let (paging, root_pa) = if shadow {
            (Paging::Shadow(Shadow::new()), 0)
        } else {
            let tdp = Tdp::new(format)?;
            let root_pa = tdp.root_pa();
            (Paging::Tdp(tdp), root_pa)
        };
        let max_gfn = tdp::MAX_GFN.min((1u64 << (host_maxphyaddr() - u64::from(PAGE_SHIFT))) - 1);
        Ok(try_pin_init!(Self {
            inner <- new_mutex!(Inner { slots: Slots::new(), paging }),
            seq: AtomicU64::new(0),
            invalidating: AtomicU32::new(0),
            max_gfn,
            root_pa,
            gens: Gens::new(),
        }))
    }

    /// Whether the guest runs on shadow tables.
    pub(crate) fn is_shadow(&self) -> bool {
        self.root_pa == 0
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
        let Inner { slots, paging } = &mut *m;
        if let Paging::Shadow(sh) = paging {
            sh.set_limit(slots.iter().map(|s| s.desc().npages).sum());
        }
        if let Some(o) = old {
            let moved = new.as_ref().is_none_or(|n| n.desc().base_gfn != o.base_gfn);
            if moved {
                // Shadow pages of guest tables in the old range shadow
                // what is no longer RAM there: all go, as upstream's
                // shadow MMU zaps everything on a slot deletion.
                flush |= match paging {
                    Paging::Shadow(_) => paging.zap_all(&self.gens, vm.stats()),
                    Paging::Tdp(_) => paging.zap_range(&self.gens, o.base_gfn, o.end_gfn()),
                };
                set_page_stats(vm, paging);
            }
        }
        if let Some(s) = new.filter(|_| protect) {
            // Writes must fault from now on, to be logged.
            flush |= paging.write_protect(s.desc().base_gfn, s.desc().end_gfn());
        }
        self.flush_after(vm, m, flush);
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

    /// Reads guest RAM at `gpa` (within one page). `Ok(false)`: not RAM
    /// (also when the slot was deleted, and its memory unmapped, while the
    /// read was under way).
    pub(crate) fn read_guest(&self, gpa: Gpa, buf: &mut [u8]) -> Result<bool> {
        let Some((hva, slot)) = self.gpa_to_hva(gpa, false) else {
            return Ok(false);
        };
        match uaccess::read_bytes(hva, buf) {
            Ok(()) => Ok(true),
            Err(_) if !self.slot_current(gpa.gfn(), &slot) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes guest RAM at `gpa` (within one page), logging the page; a
    /// guest page table with shadow pages gets them updated. `Ok(false)`:
    /// not writable RAM (MMIO or a read-only slot).
    pub(crate) fn write_guest(&self, vm: &Vm, gpa: Gpa, buf: &[u8]) -> Result<bool> {
        let Some((hva, slot)) = self.gpa_to_hva(gpa, true) else {
            return Ok(false);
        };
        match uaccess::write_bytes(hva, buf) {
            Ok(()) => {}
            // The slot was deleted meanwhile and the VMM unmapped its
            // memory (no SRCU wait on deletion here): not RAM any more.
            Err(_) if !self.slot_current(gpa.gfn(), &slot) => return Ok(false),
            Err(e) => return Err(e),
        }
        slot.mark_dirty(gpa.gfn());
        if self.is_shadow() {
            self.shadow_written(vm, gpa, buf.len());
        }
        Ok(true)
    }

    /// Atomic compare-exchange of guest RAM at `gpa` (1, 2, 4 or 8 bytes
    /// within one page), logging the page and updating shadow pages as
    /// [`Mmu::write_guest`]. `Ok(None)`: not writable RAM.
    pub(crate) fn cmpxchg_guest(
        &self,
        vm: &Vm,
        gpa: Gpa,
        old: &[u8],
        new: &[u8],
    ) -> Result<Option<bool>> {
        let r = self.cmpxchg_untracked(gpa, old, new)?;
        if r == Some(true) && self.is_shadow() {
            self.shadow_written(vm, gpa, new.len());
        }
        Ok(r)
    }

    /// [`Mmu::cmpxchg_guest`] without the shadow update (the shadow MMU's
    /// own accessed/dirty updates).
    fn cmpxchg_untracked(&self, gpa: Gpa, old: &[u8], new: &[u8]) -> Result<Option<bool>> {
        let Some((hva, slot)) = self.gpa_to_hva(gpa, true) else {
            return Ok(None);
        };
        let r = uaccess::cmpxchg(hva, old, new)?;
        slot.mark_dirty(gpa.gfn());
        Ok(Some(r))
    }

    /// Drops the lock, then flushes every vCPU's TLB if `flush` (or the
    /// shadow MMU) asks for it.
    fn flush_after(&self, vm: &Vm, m: kernel::sync::MutexGuard<'_, Inner>, flush: bool) {
        if matches!(m.paging, Paging::Shadow(_)) {
            self.unlock_flush(vm, m);
            return;
        }
        drop(m);
        if flush {
            vm.flush_remote_tlbs();
        }
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
            let pinned = match PinnedUserPage::get(hva, want_write) {
                Ok(p) => Ok((p, want_write)),
                Err(_) if !write && want_write => {
                    PinnedUserPage::get(hva, false).map(|p| (p, false))
                }
                Err(e) => Err(e),
            };
            let (page, writable) = match pinned {
                Ok(p) => p,
                // The slot went away meanwhile (KVM_SET_USER_MEMORY_REGION
                // deleting it, then the VMM unmapping its memory): look
                // again, as upstream retries on a stale memslot.
                Err(_) if !self.slot_current(gfn, &slot) => {
                    cpu::cond_resched();
                    continue;
                }
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
            let Paging::Tdp(tdp) = &mut m.paging else {
                return Err(EINVAL);
            };
            let huge = huge_frame(&slot, gfn.raw(), hva, page.pfn());
            let flush = match huge.map(|(g, p)| tdp.map_huge(g, p, writable)) {
                Some(r) => match r? {
                    Some(flush) => flush,
                    None => tdp.map(gfn.raw(), page.pfn(), writable)?,
                },
                None => tdp.map(gfn.raw(), page.pfn(), writable)?,
            };
            set_page_stats(vm, &m.paging);
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

    /// Whether `slot` is still the one holding `gfn`.
    fn slot_current(&self, gfn: Gfn, slot: &Arc<Slot>) -> bool {
        self.inner
            .lock()
            .slots
            .for_gfn(gfn)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
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
        let Inner { slots, paging } = &mut *m;
        for slot in slots.iter() {
            if let Some((a, b)) = slot.hva_range_to_gfns(start, end) {
                flush |= paging.zap_range(&self.gens, a, b);
            }
        }
        set_page_stats(vm, paging);
        self.flush_after(vm, m, flush);
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
        let flush = m.paging.zap_all(&self.gens, vm.stats());
        set_page_stats(vm, &m.paging);
        self.flush_after(vm, m, flush);
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
            flush |= protect_bits(&mut m.paging, slot.desc().base_gfn + i as u64 * 64, mask);
        }
        self.flush_after(vm, m, flush);
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
                &mut m.paging,
                slot.desc().base_gfn + first + i as u64 * 64,
                cleared,
            );
        }
        self.flush_after(vm, m, flush);
    }
}

/// Write-protects the frames `base + b` for each set bit `b` of `mask`.
/// The mapping statistics (pages_4k, pages_2m) of `paging`.
fn set_page_stats(vm: &Vm, paging: &Paging) {
    vm.stats().pages_4k.set(paging.leaves());
    vm.stats().pages_2m.set(paging.huge_leaves());
}

/// Where `gfn` (at `hva`, backed by host frame `pfn`) can be mapped with
/// a 2 MiB leaf: `(first gfn, first pfn)` of the aligned 2 MiB around it,
/// if the slot holds all of it, does not log writes, and the host maps
/// the same 2 MiB with one huge page (guest and host offsets inside
/// 2 MiB agree). Upstream's kvm_mmu_max_mapping_level(), for 2 MiB.
fn huge_frame(slot: &Slot, gfn: u64, hva: u64, pfn: u64) -> Option<(u64, u64)> {
    let off = gfn % HUGE_FRAMES;
    let d = slot.desc();
    let first = gfn - off;
    if slot.logging()
        || first < d.base_gfn
        || first + HUGE_FRAMES > d.end_gfn()
        || (hva >> PAGE_SHIFT) % HUGE_FRAMES != off
        || pfn % HUGE_FRAMES != off
        || !PinnedUserPage::mapped_huge(hva)
    {
        return None;
    }
    Some((first, pfn - off))
}

fn protect_bits(paging: &mut Paging, base: u64, mask: u64) -> bool {
    let mut flush = false;
    let mut bits = mask;
    while bits != 0 {
        let gfn = base + u64::from(bits.trailing_zeros());
        bits &= bits - 1;
        flush |= paging.write_protect(gfn, gfn + 1);
    }
    flush
}

/// The host's physical address width (CPUID 0x80000008 EAX[7:0]).
fn host_maxphyaddr() -> u64 {
    let r = core::arch::x86_64::__cpuid(0x8000_0008);
    u64::from(r.eax & 0xff).clamp(36, 52)
}
