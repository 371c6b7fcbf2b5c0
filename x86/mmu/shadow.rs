// SPDX-License-Identifier: GPL-2.0
//! The shadow MMU: guests run on host-owned copies of their own page
//! tables when the vendor has no two-dimensional paging (kvm-amd `npt=0`,
//! kvm-intel `ept=0`), upstream's shadow MMU (`mmu.c`, `paging_tmpl.h`)
//! without unsync pages.
//!
//! What a shadow page is and what its entries are comes from the pure
//! half, `crate::shadow`; the guest walk from `emulate::paging`. Here:
//! the shadow pages and their bookkeeping (under `Mmu::inner`), the roots
//! each vCPU runs on ([`VcpuShadow`]), the page-fault path, and guest
//! page-table write tracking.
//!
//! # Coherence
//!
//! A guest table with a shadow page is write-protected: every leaf that
//! maps its frame is read-only (the reverse map finds them), so a guest
//! write faults and is emulated; the emulated write
//! ([`Mmu::write_guest`](super::Mmu::write_guest)) zaps the shadow
//! entries it may change ([`crate::shadow::written`]). A shadow page
//! written three times without a fault going through it is zapped
//! instead (upstream's write flooding), which unprotects its frame. Shadow
//! tables are thus always coherent with the guest's: INVLPG and MOV CR3
//! need only a hardware TLB flush (the vendor does not even intercept
//! INVLPG), and there is nothing to sync.
//!
//! Whatever removes a shadow entry or a write permission bumps
//! `need_flush`; the thread that did it flushes every vCPU's TLB after
//! dropping the lock ([`Mmu::unlock_flush`]) and records the generation
//! it flushed. A freed shadow page is reused only once the flush that
//! followed its zap is done (paging-structure caches may still hold it),
//! and a new shadow leaf is installed only once every write-protection
//! is flushed (until then the guest may still write its tables through a
//! stale TLB entry). A fault walks the guest tables without the lock and
//! retries if any shadow entry went away or a shadowed table was written
//! meanwhile (`Gens::changes`), as a TDP fault retries on an MMU-notifier
//! invalidation.
//!
//! # Roots
//!
//! A long-mode guest runs on a level-4 shadow page of its PML4; any other
//! guest on a PAE root of four entries (a page of the vCPU's, below 4 GiB)
//! over level-2 shadow pages. A root page counts the vCPUs using it
//! (`roots`); zapped while in use, it is emptied and kept until released
//! (`State::Invalid`), and `Gens::roots` tells every vCPU to reload. Each
//! vCPU keeps its last three long-mode roots (upstream's `prev_roots`) so
//! that a MOV CR3 back to a recent address space finds its tables.

use super::{Mmu, Paging};
use crate::{
    defs::{
        paging::{
            Gfn, Gpa, PFERR_FETCH_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK, PT64_BASE_ADDR_MASK,
            PT_PRESENT_MASK, PT_WRITABLE_MASK,
        },
        regs::X86_EFLAGS_AC,
        vector::{DF_VECTOR, PF_VECTOR},
    },
    emulate::{
        paging::{self, Access, PagingConfig, WalkError},
        GuestMemory, MemError,
    },
    ext::{
        cpu,
        pages::{PinnedUserPage, TablePage},
        trace,
    },
    shadow::{self as pure, Child, GuestMode, GuestPath, LeafInput, Role, ACC_WRITE},
    virt::{vcpu::Vcpu, vm::Vm},
    x86::{emulator_ops, run::Next, stats::VmStats, vcpu::VcpuState, vendor::InjectedEvent},
};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{prelude::*, rbtree::RBTree};

/// A shadow page: its index in `Shadow::pages`.
type SpId = u32;

/// Writes to a shadowed guest table, without a fault going through its
/// shadow page, after which the shadow page is zapped (upstream's
/// `detect_write_flooding`).
const FLOOD_WRITES: u8 = 3;
/// Long-mode roots a vCPU keeps besides the current one.
const PREV_ROOTS: usize = 3;
/// Shadow pages per thousand guest pages (upstream's
/// `KVM_PERMILLE_MMU_PAGES`), and at least this many.
const PERMILLE_PAGES: u64 = 20;
const MIN_PAGES: u32 = 64;

/// An entry of a shadow page: page and index, packed.
fn pack(id: SpId, i: usize) -> u64 {
    (u64::from(id) << 9) | (i as u64 & 511)
}

fn unpack(r: u64) -> (SpId, usize) {
    ((r >> 9) as SpId, (r & 511) as usize)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// In use; found by its frame and role.
    Live,
    /// Zapped while a vCPU runs on it: empty, kept until released.
    Invalid,
    /// On the free list; reusable once `Gens::flushed >= since`.
    Free { since: u64 },
}

/// A shadow page (upstream's `kvm_mmu_page`).
struct Sp {
    table: TablePage,
    /// Per entry: the child page's id (levels above 1) or the guest frame
    /// the leaf maps (level 1).
    meta: KVec<u64>,
    gfn: u64,
    role: Role,
    /// The entries pointing here (packed), for unlinking.
    parents: KVec<u64>,
    /// vCPU roots using it (current or cached).
    roots: u32,
    state: State,
    /// Guest writes to its table since a fault last went through it.
    writes: u8,
    /// Creation order, for recycling the oldest.
    born: u64,
}

/// What the fault path reads without the lock (written under it).
pub(crate) struct Gens {
    /// Bumped whenever shadow entries go away or a shadowed guest table
    /// is written: a fault that walked before must walk again.
    changes: AtomicU64,
    /// Bumped whenever a root page is zapped: vCPUs reload their roots.
    roots: AtomicU64,
    /// The highest `Shadow::need_flush` whose TLB flush has completed.
    flushed: AtomicU64,
}

impl Gens {
    pub(crate) const fn new() -> Self {
        Self {
            changes: AtomicU64::new(0),
            roots: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
        }
    }
}

/// A VM's shadow pages (under `Mmu::inner`).
pub(crate) struct Shadow {
    pages: KVec<Sp>,
    /// Free pages (capacity for all of `pages`, so zapping never allocates).
    free: KVec<SpId>,
    /// Live pages by guest frame.
    by_gfn: RBTree<u64, KVec<SpId>>,
    /// Guest frame -> the leaves mapping it (packed).
    rmap: RBTree<u64, KVec<u64>>,
    live: u32,
    limit: u32,
    leaves: u64,
    born: u64,
    /// Generation of changes that need every vCPU's TLB flushed.
    need_flush: u64,
    /// `need_flush` right after the last write-protection.
    last_wp: u64,
}

/// What [`Shadow::fetch`] did.
enum Fetch {
    /// The leaf is installed (writable or not).
    Mapped { writable: bool },
    /// A write to a guest page table: emulate it.
    Protected,
    /// Write-protections are not flushed yet: flush, then fault again.
    NeedFlush,
    /// The root went away: reload it.
    Retry,
}

impl Shadow {
    pub(crate) fn new() -> Self {
        Self {
            pages: KVec::new(),
            free: KVec::new(),
            by_gfn: RBTree::new(),
            rmap: RBTree::new(),
            live: 0,
            limit: MIN_PAGES,
            leaves: 0,
            born: 0,
            need_flush: 0,
            last_wp: 0,
        }
    }

    /// Present 4 KiB leaves.
    pub(crate) fn leaves(&self) -> u64 {
        self.leaves
    }

    /// Sizes the page budget for `guest_pages` pages of memory slots.
    pub(crate) fn set_limit(&mut self, guest_pages: u64) {
        let n = guest_pages.saturating_mul(PERMILLE_PAGES) / 1000;
        self.limit = u32::try_from(n).unwrap_or(u32::MAX).max(MIN_PAGES);
    }

    fn sp(&self, id: SpId) -> &Sp {
        &self.pages[id as usize]
    }

    fn sp_mut(&mut self, id: SpId) -> &mut Sp {
        &mut self.pages[id as usize]
    }

    fn entry(&self, id: SpId, i: usize) -> &AtomicU64 {
        &self.sp(id).table.entries()[i & 511]
    }

    fn live_page(&self, id: SpId) -> bool {
        self.pages
            .get(id as usize)
            .is_some_and(|s| s.state == State::Live)
    }

    /// The live page for `c`.
    fn lookup(&self, c: Child) -> Option<SpId> {
        let ids = self.by_gfn.get(&c.gfn)?;
        ids.iter()
            .copied()
            .find(|&id| self.sp(id).role == c.role && self.sp(id).state == State::Live)
    }

    /// Whether a guest table at `gfn` has a shadow page (writes to it must
    /// fault).
    fn tracked(&self, gfn: u64) -> bool {
        self.by_gfn.get(&gfn).is_some_and(|ids| {
            ids.iter()
                .any(|&id| !self.sp(id).role.direct() && self.sp(id).state == State::Live)
        })
    }

    /// A page off the free list (if its zap is flushed) or a new one.
    fn alloc(&mut self, gens: &Gens) -> Result<SpId> {
        if let Some(&id) = self.free.last() {
            if let State::Free { since } = self.sp(id).state {
                if gens.flushed.load(Ordering::SeqCst) >= since {
                    self.free.pop();
                    return Ok(id);
                }
            }
        }
        let n = self.pages.len();
        let id = SpId::try_from(n).map_err(|_| ENOMEM)?;
        if id >= 1 << 23 {
            return Err(ENOMEM);
        }
        self.free
            .reserve((n + 1).saturating_sub(self.free.len()), GFP_KERNEL_ACCOUNT)?;
        let sp = Sp {
            table: TablePage::new()?,
            meta: KVec::from_elem(0u64, pure::ENTRIES, GFP_KERNEL_ACCOUNT)?,
            gfn: 0,
            role: Role::base(&PagingConfig::from_regs(0, 0, 0, 0, 52, true)),
            parents: KVec::new(),
            roots: 0,
            state: State::Free { since: 0 },
            writes: 0,
            born: 0,
        };
        self.pages.push(sp, GFP_KERNEL_ACCOUNT)?;
        Ok(id)
    }

    /// The live page for `c`, made (and its frame write-protected, for a
    /// page shadowing a guest table) if there is none.
    fn get_or_create(&mut self, c: Child, gens: &Gens, stats: &VmStats) -> Result<SpId> {
        if let Some(id) = self.lookup(c) {
            return Ok(id);
        }
        stats.mmu_cache_miss.inc();
        let id = self.alloc(gens)?;
        let listed = match self.by_gfn.get_mut(&c.gfn) {
            Some(ids) => ids.push(id, GFP_KERNEL_ACCOUNT).map_err(Error::from),
            None => {
                let mut ids = KVec::new();
                ids.push(id, GFP_KERNEL_ACCOUNT)?;
                self.by_gfn
                    .try_create_and_insert(c.gfn, ids, GFP_KERNEL_ACCOUNT)
                    .map(|_| ())
            }
        };
        if let Err(e) = listed {
            // Back on the free list (it has room for every page).
            self.sp_mut(id).state = State::Free { since: 0 };
            let _ = self.free.push_within_capacity(id);
            return Err(e);
        }
        if let Some(ids) = self.by_gfn.get(&c.gfn) {
            stats.max_mmu_page_hash_collisions.set_max(ids.len() as u64);
        }
        let born = self.born;
        self.born += 1;
        let sp = self.sp_mut(id);
        sp.gfn = c.gfn;
        sp.role = c.role;
        sp.parents.clear();
        sp.roots = 0;
        sp.state = State::Live;
        sp.writes = 0;
        sp.born = born;
        self.live += 1;
        stats.mmu_shadow_pages.set(u64::from(self.live));
        if !c.role.direct() && self.write_protect_range(c.gfn, c.gfn + 1) {
            self.last_wp = self.need_flush;
        }
        Ok(id)
    }

    /// Points entry `i` of `parent` to `child`.
    fn link(&mut self, parent: SpId, i: usize, child: SpId) -> Result {
        let r = pack(parent, i);
        self.sp_mut(child).parents.push(r, GFP_KERNEL_ACCOUNT)?;
        let pa = self.sp(child).table.phys();
        self.sp_mut(parent).meta[i & 511] = u64::from(child);
        self.entry(parent, i)
            .store(pure::table_entry(pa), Ordering::Release);
        Ok(())
    }

    fn rmap_add(&mut self, gfn: u64, r: u64, stats: &VmStats) -> Result {
        match self.rmap.get_mut(&gfn) {
            Some(v) => {
                v.push(r, GFP_KERNEL_ACCOUNT)?;
                stats.max_mmu_rmap_size.set_max(v.len() as u64);
            }
            None => {
                let mut v = KVec::new();
                v.push(r, GFP_KERNEL_ACCOUNT)?;
                self.rmap
                    .try_create_and_insert(gfn, v, GFP_KERNEL_ACCOUNT)?;
            }
        }
        Ok(())
    }

    fn rmap_remove(&mut self, gfn: u64, r: u64) {
        let Some(v) = self.rmap.get_mut(&gfn) else {
            return;
        };
        if let Some(p) = v.iter().position(|&x| x == r) {
            let _ = v.remove(p);
        }
        if v.is_empty() {
            self.rmap.remove(&gfn);
        }
    }

    /// Installs leaf `spte` mapping `gfn` at entry `i` of `id`.
    fn set_leaf(&mut self, id: SpId, i: usize, spte: u64, gfn: u64, stats: &VmStats) -> Result {
        let old = self.entry(id, i).load(Ordering::Relaxed);
        let old_gfn = self.sp(id).meta[i & 511];
        if old & PT_PRESENT_MASK != 0 && old_gfn == gfn {
            self.entry(id, i).store(spte, Ordering::Release);
            let lost_write = old & PT_WRITABLE_MASK != 0 && spte & PT_WRITABLE_MASK == 0;
            if lost_write || (old ^ spte) & PT64_BASE_ADDR_MASK != 0 {
                self.need_flush += 1;
            }
            return Ok(());
        }
        self.rmap_add(gfn, pack(id, i), stats)?;
        if old & PT_PRESENT_MASK != 0 {
            self.rmap_remove(old_gfn, pack(id, i));
            self.need_flush += 1;
        } else {
            self.leaves += 1;
        }
        self.sp_mut(id).meta[i & 511] = gfn;
        self.entry(id, i).store(spte, Ordering::Release);
        Ok(())
    }

    /// Clears entry `i` of `id`: a leaf leaves the reverse map; a link
    /// leaves its child's parents, and a child no one points to any more
    /// is zapped.
    fn zap_entry(&mut self, id: SpId, i: usize, gens: &Gens, stats: &VmStats) {
        let e = self.entry(id, i).swap(0, Ordering::AcqRel);
        if e & PT_PRESENT_MASK == 0 {
            return;
        }
        let m = core::mem::replace(&mut self.sp_mut(id).meta[i & 511], 0);
        self.need_flush += 1;
        if self.sp(id).role.level() == 1 {
            self.rmap_remove(m, pack(id, i));
            self.leaves = self.leaves.saturating_sub(1);
            return;
        }
        let child = m as SpId;
        let r = pack(id, i);
        let c = self.sp_mut(child);
        if let Some(p) = c.parents.iter().position(|&x| x == r) {
            let _ = c.parents.remove(p);
        }
        if c.parents.is_empty() && c.roots == 0 {
            self.zap_page(child, gens, stats);
        }
    }

    /// Zaps a live page: its entries, the entries pointing to it, its
    /// place in the lookup. A root in use is kept (empty) until released.
    fn zap_page(&mut self, id: SpId, gens: &Gens, stats: &VmStats) {
        if !self.live_page(id) {
            return;
        }
        // Out of the lookup first, so nothing below finds it.
        let gfn = self.sp(id).gfn;
        if let Some(ids) = self.by_gfn.get_mut(&gfn) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.by_gfn.remove(&gfn);
            }
        }
        self.sp_mut(id).state = State::Invalid;
        for i in 0..pure::ENTRIES {
            self.zap_entry(id, i, gens, stats);
        }
        let parents = core::mem::take(&mut self.sp_mut(id).parents);
        for &r in parents.iter() {
            let (p, i) = unpack(r);
            self.entry(p, i).store(0, Ordering::Release);
            self.sp_mut(p).meta[i] = 0;
        }
        self.live = self.live.saturating_sub(1);
        stats.mmu_shadow_zapped.inc();
        stats.mmu_shadow_pages.set(u64::from(self.live));
        self.need_flush += 1;
        gens.changes.fetch_add(1, Ordering::SeqCst);
        if self.sp(id).roots > 0 {
            gens.roots.fetch_add(1, Ordering::SeqCst);
        } else {
            self.put_free(id);
        }
    }

    fn put_free(&mut self, id: SpId) {
        let since = self.need_flush;
        self.sp_mut(id).state = State::Free { since };
        // `free` has room for every page.
        let _ = self.free.push_within_capacity(id);
    }

    /// A vCPU stops using root `id`.
    fn release_root(&mut self, id: SpId) {
        let sp = self.sp_mut(id);
        sp.roots = sp.roots.saturating_sub(1);
        if sp.roots == 0 && sp.state == State::Invalid {
            self.put_free(id);
        }
    }

    /// A vCPU starts using root `c`.
    fn acquire_root(&mut self, c: Child, gens: &Gens, stats: &VmStats) -> Result<SpId> {
        let id = self.get_or_create(c, gens, stats)?;
        self.sp_mut(id).roots += 1;
        Ok(id)
    }

    /// Makes the leaves mapping frames `[start, end)` read-only; true if
    /// any was writable.
    fn write_protect_range(&mut self, start: u64, end: u64) -> bool {
        let mut changed = false;
        let mut cur = start;
        while let Some(c) = self.rmap.cursor_lower_bound(&cur) {
            let (&gfn, refs) = c.current();
            if gfn >= end {
                break;
            }
            for &r in refs.iter() {
                let (id, i) = unpack(r);
                let old =
                    self.sp(id).table.entries()[i].fetch_and(!PT_WRITABLE_MASK, Ordering::AcqRel);
                changed |= old & PT_WRITABLE_MASK != 0;
            }
            cur = gfn + 1;
        }
        if changed {
            self.need_flush += 1;
        }
        changed
    }

    /// Unmaps frames `[start, end)` (their leaves); true if any was mapped.
    fn zap_leaves(&mut self, start: u64, end: u64, gens: &Gens) -> bool {
        let mut any = false;
        let mut cur = start;
        while let Some(gfn) = self.rmap.cursor_lower_bound(&cur).map(|c| *c.current().0) {
            if gfn >= end {
                break;
            }
            if let Some(refs) = self.rmap.remove(&gfn) {
                for &r in refs.iter() {
                    let (id, i) = unpack(r);
                    let e = self.entry(id, i).swap(0, Ordering::AcqRel);
                    if e & PT_PRESENT_MASK != 0 {
                        self.leaves = self.leaves.saturating_sub(1);
                        any = true;
                    }
                    self.sp_mut(id).meta[i] = 0;
                }
            }
            cur = gfn + 1;
        }
        if any {
            self.need_flush += 1;
            gens.changes.fetch_add(1, Ordering::SeqCst);
        }
        any
    }

    /// Zaps every page (roots in use stay, empty).
    fn zap_all(&mut self, gens: &Gens, stats: &VmStats) -> bool {
        let before = self.need_flush;
        for id in 0..self.pages.len() {
            self.zap_page(id as SpId, gens, stats);
        }
        gens.roots.fetch_add(1, Ordering::SeqCst);
        self.need_flush != before
    }

    /// Zaps the oldest pages no vCPU runs on until `needed` more fit.
    fn make_room(&mut self, needed: u32, gens: &Gens, stats: &VmStats) {
        while self.live.saturating_add(needed) > self.limit {
            let oldest = self
                .pages
                .iter()
                .enumerate()
                .filter(|(_, s)| s.state == State::Live && s.roots == 0)
                .min_by_key(|(_, s)| s.born)
                .map(|(i, _)| i as SpId);
            let Some(id) = oldest else {
                break;
            };
            stats.mmu_recycled.inc();
            self.zap_page(id, gens, stats);
        }
    }

    /// The live pages shadowing guest table `gfn`.
    fn shadows_of(&self, gfn: u64, out: &mut [SpId; 8]) -> (usize, bool) {
        let mut n = 0;
        let mut more = false;
        if let Some(ids) = self.by_gfn.get(&gfn) {
            for &id in ids.iter() {
                if self.sp(id).role.direct() || self.sp(id).state != State::Live {
                    continue;
                }
                match out.get_mut(n) {
                    Some(o) => {
                        *o = id;
                        n += 1;
                    }
                    None => more = true,
                }
            }
        }
        (n, more)
    }

    /// The guest wrote `len` bytes at `offset` of its table at `gfn`: the
    /// shadow entries that may have changed go (or the whole shadow page,
    /// when flooded). True if the frame is a shadowed table.
    fn pte_written(
        &mut self,
        gfn: u64,
        offset: u64,
        len: u64,
        gens: &Gens,
        stats: &VmStats,
    ) -> bool {
        let mut ids = [0; 8];
        let (n, more) = self.shadows_of(gfn, &mut ids);
        if n == 0 {
            return false;
        }
        stats.mmu_pte_write.inc();
        if more {
            self.unprotect(gfn, gens, stats);
            return true;
        }
        for &id in ids.iter().take(n) {
            // Zapping the entries of one may have zapped another.
            if !self.live_page(id) || self.sp(id).gfn != gfn {
                continue;
            }
            let sp = self.sp_mut(id);
            sp.writes = sp.writes.saturating_add(1);
            if sp.writes >= FLOOD_WRITES && sp.roots == 0 {
                stats.mmu_flooded.inc();
                self.zap_page(id, gens, stats);
                continue;
            }
            let role = self.sp(id).role;
            if let Some((a, b)) = pure::written(role, offset, len) {
                for i in a..=b.min(pure::ENTRIES - 1) {
                    if role.level() > 1
                        && self.entry(id, i).load(Ordering::Relaxed) & PT_PRESENT_MASK != 0
                    {
                        stats.mmu_pde_zapped.inc();
                    }
                    self.zap_entry(id, i, gens, stats);
                }
            }
        }
        gens.changes.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Zaps every page shadowing guest table `gfn`, so writes to it no
    /// longer fault (upstream's `kvm_mmu_unprotect_gfn_and_retry`).
    fn unprotect(&mut self, gfn: u64, gens: &Gens, stats: &VmStats) {
        loop {
            let mut ids = [0; 8];
            let (n, _) = self.shadows_of(gfn, &mut ids);
            if n == 0 {
                break;
            }
            for &id in ids.iter().take(n) {
                self.zap_page(id, gens, stats);
            }
        }
    }

    /// Builds the shadow path of a successful guest walk from the vCPU's
    /// root down to the leaf, and installs the leaf.
    #[allow(clippy::too_many_arguments)]
    fn fetch(
        &mut self,
        gens: &Gens,
        stats: &VmStats,
        root: Root,
        path: &GuestPath,
        base: Role,
        la: u64,
        leaf: &mut LeafInput,
    ) -> Result<Fetch> {
        let (mut sp, mut level) = match root {
            Root::Long(id) => (id, pure::LONG_LEVELS),
            Root::Pae(ids) => match ids.get(pure::pae_index(la)).copied().flatten() {
                Some(id) => (id, 2),
                None => return Ok(Fetch::Retry),
            },
            Root::None => return Ok(Fetch::Retry),
        };
        if !self.live_page(sp) {
            return Ok(Fetch::Retry);
        }
        // At most a page per level is made; none zapped on the way down.
        self.make_room(u32::from(level), gens, stats);
        if !self.live_page(sp) {
            return Ok(Fetch::Retry);
        }
        self.sp_mut(sp).writes = 0;
        while level > 1 {
            let i = pure::index(la, level);
            let e = self.entry(sp, i).load(Ordering::Acquire);
            let child = if e & PT_PRESENT_MASK != 0 {
                self.sp(sp).meta[i] as SpId
            } else {
                let id = self.get_or_create(path.child(base, level - 1), gens, stats)?;
                self.link(sp, i, id)?;
                id
            };
            self.sp_mut(child).writes = 0;
            sp = child;
            level -= 1;
        }
        if gens.flushed.load(Ordering::SeqCst) < self.last_wp {
            return Ok(Fetch::NeedFlush);
        }
        let gfn = path.gfn();
        leaf.protected = self.tracked(gfn);
        if leaf.write && leaf.protected {
            return Ok(Fetch::Protected);
        }
        let spte = pure::leaf(leaf);
        self.set_leaf(sp, pure::index(la, 1), spte, gfn, stats)?;
        stats.pages_4k.set(self.leaves);
        Ok(Fetch::Mapped {
            writable: spte & PT_WRITABLE_MASK != 0,
        })
    }
}

/// The paging state a root was built for.
#[derive(Clone, Copy, PartialEq, Eq)]
struct RootKey {
    levels: u8,
    role: Role,
    /// The guest's top-level table (0 with paging off).
    table: u64,
}

impl RootKey {
    fn of(cfg: &PagingConfig) -> Option<Self> {
        let mode = GuestMode::of(cfg)?;
        let table = match mode {
            GuestMode::NonPaging => 0,
            GuestMode::Bits32 => cfg.cr3 & 0xffff_f000,
            GuestMode::Pae => cfg.cr3 & 0xffff_ffe0,
            GuestMode::Long => cfg.cr3 & PT64_BASE_ADDR_MASK,
        };
        Some(Self {
            levels: cfg.levels,
            role: Role::base(cfg),
            table,
        })
    }
}

/// What a vCPU's hardware CR3 points to.
#[derive(Clone, Copy)]
enum Root {
    None,
    /// A level-4 shadow page.
    Long(SpId),
    /// The vCPU's PAE root, over these level-2 pages.
    Pae([Option<SpId>; pure::PAE_ROOT_ENTRIES]),
}

/// A vCPU's shadow-paging state (in `VcpuState`): the root it runs on.
pub(crate) struct VcpuShadow {
    on: bool,
    key: Option<RootKey>,
    root: Root,
    /// Physical address of the root table (without the PCID).
    root_pa: u64,
    prev: [Option<(RootKey, SpId)>; PREV_ROOTS],
    /// `Gens::roots` when the root was checked last.
    gen: u64,
    /// A PAE guest's PDPTEs, loaded at its last CR3 write.
    pdptes: [u64; pure::PAE_ROOT_ENTRIES],
    /// Load the PDPTEs again before the next entry (a CR3 write).
    reload_pdptes: bool,
    /// The PAE root (below 4 GiB), made on first use.
    pae_root: Option<TablePage>,
}

impl VcpuShadow {
    /// A vCPU of a VM on the shadow MMU (`on`) or on TDP.
    pub(crate) fn new(on: bool) -> Self {
        Self {
            on,
            key: None,
            root: Root::None,
            root_pa: 0,
            prev: [None; PREV_ROOTS],
            gen: 0,
            pdptes: [0; pure::PAE_ROOT_ENTRIES],
            reload_pdptes: true,
            pae_root: None,
        }
    }

    /// The guest wrote CR3 (or the whole paging state, KVM_SET_SREGS):
    /// a PAE guest's PDPTEs are loaded again.
    pub(crate) fn cr3_written(&mut self) {
        self.reload_pdptes = true;
    }

    /// The guest's paging configuration for a walk of the shadow MMU
    /// (its PDPTEs as loaded).
    fn walk_config(&self, st_cfg: PagingConfig) -> PagingConfig {
        let mut cfg = st_cfg;
        if GuestMode::of(&cfg) == Some(GuestMode::Pae) {
            cfg.pdptes = Some(self.pdptes);
        }
        cfg
    }
}

/// [`GuestMemory`] for the fault path's walk: accessed/dirty updates are
/// logged but do not count as guest page-table writes (they change no
/// shadow entry).
struct WalkMem<'a> {
    mmu: &'a Mmu,
    fault: bool,
}

impl GuestMemory for WalkMem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        match self.mmu.read_guest(Gpa::new(gpa), buf) {
            Ok(true) => Ok(()),
            Ok(false) => Err(MemError::Mmio),
            Err(_) => {
                self.fault = true;
                Err(MemError::Mmio)
            }
        }
    }
    fn write(&mut self, _gpa: u64, _data: &[u8]) -> Result<(), MemError> {
        Err(MemError::Mmio)
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError> {
        match self.mmu.cmpxchg_untracked(Gpa::new(gpa), old, new) {
            Ok(Some(x)) => Ok(x),
            Ok(None) => Err(MemError::Mmio),
            Err(_) => {
                self.fault = true;
                Err(MemError::Mmio)
            }
        }
    }
}

/// What a shadow page fault comes to.
enum Fault {
    /// The shadow is fixed: enter again.
    Fixed,
    /// The guest's own tables fault: inject #PF with this error code.
    Guest(u32),
    /// Emulate the instruction: MMIO, or a write to a guest page table
    /// (then unprotect that frame if the emulator cannot).
    Emulate(Option<Gfn>),
    /// Something changed under the fault (the root): enter again.
    Retry,
}

impl Mmu {
    /// Drops the lock, then flushes every vCPU's TLB if something under
    /// it needed that, and records the flush.
    pub(super) fn unlock_flush(&self, vm: &Vm, m: kernel::sync::MutexGuard<'_, super::Inner>) {
        let need = match &m.paging {
            Paging::Shadow(sh) => sh.need_flush,
            Paging::Tdp(_) => 0,
        };
        drop(m);
        if need > self.gens.flushed.load(Ordering::SeqCst) {
            vm.flush_remote_tlbs();
            self.gens.flushed.fetch_max(need, Ordering::SeqCst);
        }
    }

    /// A shadow page fault at `la` for `acc` under `cfg`, on the vCPU's
    /// root `root`.
    fn shadow_fault(
        &self,
        vm: &Vm,
        root: Root,
        cfg: &PagingConfig,
        la: u64,
        acc: Access,
    ) -> Result<Fault> {
        let stats = vm.stats();
        loop {
            let seq = self.seq.load(Ordering::SeqCst);
            let changes = self.gens.changes.load(Ordering::SeqCst);
            let mut mem = WalkMem {
                mmu: self,
                fault: false,
            };
            let walk = paging::walk(&mut mem, cfg, la, acc);
            if mem.fault {
                return Err(EFAULT);
            }
            let w = match walk {
                Ok(w) => w,
                Err(WalkError::PageFault(code)) => return Ok(Fault::Guest(code)),
                // A table outside RAM: not present (upstream's walker).
                Err(WalkError::NotRam(_)) => {
                    return Ok(Fault::Guest(paging::fault_code(cfg, acc, false, false)))
                }
                Err(WalkError::Busy) => return Ok(Fault::Retry),
            };
            let path = GuestPath::new(cfg, &w, la).ok_or(EINVAL)?;
            let gfn = Gfn::new(path.gfn());
            let Some(slot) = self.inner.lock().slots.for_gfn(gfn).cloned() else {
                return Ok(Fault::Emulate(None));
            };
            if acc.write && slot.readonly() {
                return Ok(Fault::Emulate(None));
            }
            let hva = slot.gfn_to_hva(gfn).ok_or(EFAULT)?;
            let mut leaf = LeafInput {
                pfn: 0,
                access: path.access(),
                dirty: path.dirty(),
                write: acc.write,
                user: acc.user,
                wp: cfg.wp,
                smep: cfg.smep,
                host_writable: false,
                protected: false,
            };
            let want_write =
                pure::leaf_access(&leaf) & ACC_WRITE != 0 && path.dirty() && !slot.readonly();
            let (page, writable) = match PinnedUserPage::get(hva, want_write) {
                Ok(p) => (p, want_write),
                Err(_) if !acc.write && want_write => (PinnedUserPage::get(hva, false)?, false),
                Err(e) => return Err(e),
            };
            leaf.pfn = page.pfn();
            leaf.host_writable = writable;
            let mut m = self.inner.lock();
            if self.invalidating.load(Ordering::SeqCst) != 0
                || self.seq.load(Ordering::SeqCst) != seq
                || self.gens.changes.load(Ordering::SeqCst) != changes
            {
                drop(m);
                drop(page);
                cpu::cond_resched();
                continue;
            }
            let Paging::Shadow(sh) = &mut m.paging else {
                return Err(EINVAL);
            };
            let r = sh.fetch(
                &self.gens,
                stats,
                root,
                &path,
                Role::base(cfg),
                la,
                &mut leaf,
            );
            self.unlock_flush(vm, m);
            drop(page);
            return match r? {
                Fetch::Mapped { writable } => {
                    if writable {
                        slot.mark_dirty(gfn);
                    }
                    Ok(Fault::Fixed)
                }
                Fetch::Protected => Ok(Fault::Emulate(Some(gfn))),
                Fetch::NeedFlush => continue,
                Fetch::Retry => Ok(Fault::Retry),
            };
        }
    }

    /// Loads the root for `key` into `ctx` (from its cache, the shadow
    /// pages, or new ones).
    fn load_root(&self, vm: &Vm, ctx: &mut VcpuShadow, key: RootKey, cfg: &PagingConfig) -> Result {
        let stats = vm.stats();
        let mode = GuestMode::of(cfg).ok_or(EOPNOTSUPP)?;
        if mode.pae_root() && ctx.pae_root.is_none() {
            ctx.pae_root = Some(TablePage::new_below_4g()?);
        }
        let mut m = self.inner.lock();
        let Paging::Shadow(sh) = &mut m.paging else {
            return Err(EINVAL);
        };
        let gens = &self.gens;
        // The current root goes to the cache (a PAE root is rebuilt).
        match core::mem::replace(&mut ctx.root, Root::None) {
            Root::Long(id) => match ctx.key {
                Some(k) if sh.live_page(id) => {
                    if let Some((_, old)) = ctx.prev[PREV_ROOTS - 1].take() {
                        sh.release_root(old);
                    }
                    ctx.prev.rotate_right(1);
                    ctx.prev[0] = Some((k, id));
                }
                _ => sh.release_root(id),
            },
            Root::Pae(ids) => {
                for id in ids.into_iter().flatten() {
                    sh.release_root(id);
                }
            }
            Root::None => {}
        }
        ctx.key = None;
        let base = Role::base(cfg);
        let r = if mode == GuestMode::Long {
            let cached = ctx
                .prev
                .iter()
                .position(|p| p.is_some_and(|(k, _)| k == key));
            let mut id = None;
            if let Some(pos) = cached {
                if let Some((_, c)) = ctx.prev[pos].take() {
                    if sh.live_page(c) {
                        id = Some(c);
                    } else {
                        sh.release_root(c);
                    }
                }
            }
            let id = match id {
                Some(id) => Ok(id),
                None => match pure::root4(cfg, base) {
                    Some(c) => {
                        sh.make_room(1, gens, stats);
                        sh.acquire_root(c, gens, stats)
                    }
                    None => Err(EINVAL),
                },
            };
            id.map(|id| {
                ctx.root = Root::Long(id);
                ctx.root_pa = sh.sp(id).table.phys();
            })
        } else {
            let mut ids = [None; pure::PAE_ROOT_ENTRIES];
            let mut r = Ok(());
            sh.make_room(pure::PAE_ROOT_ENTRIES as u32, gens, stats);
            for (i, slot) in ids.iter_mut().enumerate() {
                let Some(c) = pure::pae_root_child(cfg, &ctx.pdptes, base, i) else {
                    continue;
                };
                match sh.acquire_root(c, gens, stats) {
                    Ok(id) => *slot = Some(id),
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            if let Some(pae) = &ctx.pae_root {
                for (i, id) in ids.iter().enumerate() {
                    let e = id.map_or(0, |id| pure::pae_root_entry(sh.sp(id).table.phys()));
                    pae.entries()[i].store(e, Ordering::Release);
                }
                ctx.root_pa = pae.phys();
            }
            ctx.root = Root::Pae(ids);
            r
        };
        if r.is_ok() {
            ctx.key = Some(key);
        }
        ctx.gen = gens.roots.load(Ordering::SeqCst);
        self.unlock_flush(vm, m);
        r
    }

    /// The emulator could not do a write to guest page table `gfn`: drop
    /// its shadows, so the guest's own write goes through.
    pub(crate) fn unprotect(&self, vm: &Vm, gfn: Gfn) {
        let mut m = self.inner.lock();
        if let Paging::Shadow(sh) = &mut m.paging {
            sh.unprotect(gfn.raw(), &self.gens, vm.stats());
            vm.stats().pages_4k.set(sh.leaves());
        }
        self.unlock_flush(vm, m);
    }

    /// The guest's memory at `gpa` (`len` bytes, within a page) was
    /// written by the kernel on its behalf (the emulator): shadow entries
    /// of a guest page table there go.
    pub(super) fn shadow_written(&self, vm: &Vm, gpa: Gpa, len: usize) {
        let mut m = self.inner.lock();
        let Paging::Shadow(sh) = &mut m.paging else {
            return;
        };
        if sh.by_gfn.get(&gpa.gfn().raw()).is_none() {
            return;
        }
        sh.pte_written(
            gpa.gfn().raw(),
            gpa.page_offset(),
            len as u64,
            &self.gens,
            vm.stats(),
        );
        vm.stats().pages_4k.set(sh.leaves());
        self.unlock_flush(vm, m);
    }
}

impl Paging {
    /// Unmaps guest frames `[start, end)`; true if a flush is needed.
    pub(super) fn zap_range(&mut self, gens: &Gens, start: u64, end: u64) -> bool {
        match self {
            Paging::Tdp(t) => t.zap(start, end),
            Paging::Shadow(sh) => sh.zap_leaves(start, end, gens),
        }
    }

    /// Write-protects guest frames `[start, end)`; true if a flush is
    /// needed.
    pub(super) fn write_protect(&mut self, start: u64, end: u64) -> bool {
        match self {
            Paging::Tdp(t) => t.write_protect(start, end),
            Paging::Shadow(sh) => sh.write_protect_range(start, end),
        }
    }

    /// Unmaps everything (shadow: zaps every shadow page).
    pub(super) fn zap_all(&mut self, gens: &Gens, stats: &VmStats) -> bool {
        match self {
            Paging::Tdp(t) => t.zap_all(),
            Paging::Shadow(sh) => sh.zap_all(gens, stats),
        }
    }

    /// Present 4 KiB mappings.
    pub(super) fn leaves(&self) -> u64 {
        match self {
            Paging::Tdp(t) => t.leaves(),
            Paging::Shadow(sh) => sh.leaves(),
        }
    }

    /// Present 2 MiB mappings (TDP only: shadow leaves are 4 KiB).
    pub(super) fn huge_leaves(&self) -> u64 {
        match self {
            Paging::Tdp(t) => t.huge_leaves(),
            Paging::Shadow(_) => 0,
        }
    }
}

/// Before entering the guest: the vCPU runs on the root of its current
/// paging state (loaded again after a CR3 write, a paging mode change or
/// a zapped root), and the vendor's CR3 points to it.
pub(crate) fn prepare_entry(vm: &Vm, st: &mut VcpuState) -> Result {
    if !st.shadow.on {
        return Ok(());
    }
    let quick = PagingConfig::from_regs(
        st.hw.cr0(),
        st.hw.cr3(),
        st.hw.cr4(),
        st.hw.efer(),
        52,
        true,
    );
    let key = RootKey::of(&quick).ok_or(EOPNOTSUPP)?;
    let gen = vm.mmu().gens.roots.load(Ordering::SeqCst);
    let ctx = &st.shadow;
    if ctx.key == Some(key) && ctx.gen == gen && !(ctx.reload_pdptes && key.levels == 3) {
        return Ok(());
    }
    let role_changed = ctx
        .key
        .is_none_or(|k| (k.levels, k.role) != (key.levels, key.role));
    let mut cfg = emulator_ops::paging_config(st);
    if key.levels == 3 && (st.shadow.reload_pdptes || st.shadow.key != Some(key)) {
        let base = quick.cr3 & 0xffff_ffe0;
        for (i, p) in st.shadow.pdptes.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            *p = match vm.mmu().read_guest(Gpa::new(base + 8 * i as u64), &mut b) {
                Ok(true) => u64::from_le_bytes(b),
                _ => 0,
            };
        }
    }
    st.shadow.reload_pdptes = false;
    cfg.pdptes = Some(st.shadow.pdptes);
    vm.mmu().load_root(vm, &mut st.shadow, key, &cfg)?;
    let pcid = if key.levels == 4 && quick.pcide {
        quick.cr3 & 0xfff
    } else {
        0
    };
    st.hw.set_shadow_cr3(st.shadow.root_pa | pcid);
    if role_changed {
        st.hw.flush_tlb();
    }
    Ok(())
}

/// A #PF the vendor intercepted because the guest runs on shadow tables:
/// fix the shadow, give the guest its own page fault, or emulate.
pub(crate) fn page_fault(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    la: u64,
    error_code: u32,
    insn: &[u8],
) -> Result<Next> {
    let stats = vcpu.stats();
    stats.pf_taken.inc();
    if trace::kvm_page_fault_enabled() {
        trace::kvm_page_fault(vcpu.id(), st.hw.rip() as usize, la, u64::from(error_code));
    }
    let user = error_code & PFERR_USER_MASK != 0;
    let acc = Access {
        write: error_code & PFERR_WRITE_MASK != 0,
        fetch: error_code & PFERR_FETCH_MASK != 0,
        user,
        implicit: false,
        ac: !user && st.hw.cpl() < 3 && st.hw.rflags() & X86_EFLAGS_AC != 0,
    };
    let base = emulator_ops::paging_config(st);
    let cfg = st.shadow.walk_config(base);
    match vm.mmu().shadow_fault(vm, st.shadow.root, &cfg, la, acc)? {
        Fault::Fixed => {
            stats.pf_fixed.inc();
            Ok(Next::Guest)
        }
        Fault::Retry => {
            stats.pf_spurious.inc();
            Ok(Next::Guest)
        }
        Fault::Guest(code) => {
            stats.pf_guest.inc();
            Ok(inject_page_fault(vcpu, st, la, code))
        }
        Fault::Emulate(gfn) => {
            stats.pf_emulate.inc();
            // MMIO touched by an event's delivery cannot be emulated.
            if gfn.is_none() {
                if let Some(next) = crate::x86::exits::vectoring_exit(vcpu, st, la) {
                    return Ok(next);
                }
            }
            emulator_ops::emulate_fault(vm, vcpu, st, insn, gfn)
        }
    }
}

/// Gives the guest #PF(`code`) at `la`, merged with an event whose
/// delivery the fault interrupted: a fault during the delivery of #PF or
/// a contributory exception is a #DF, during a #DF a triple fault
/// (shutdown); an interrupt or NMI is delivered after the #PF.
fn inject_page_fault(vcpu: &Vcpu, st: &mut VcpuState, la: u64, code: u32) -> Next {
    match st.hw.injected_event() {
        InjectedEvent::Exception { vector, .. } if vector == DF_VECTOR => {
            st.hw.set_injected_event(InjectedEvent::None);
            st.hw.reset(true);
            vcpu.run_page()
                .set_exit_reason(crate::ext::uapi::KVM_EXIT_SHUTDOWN);
            return Next::User;
        }
        InjectedEvent::Exception { vector, .. }
            if vector == PF_VECTOR || matches!(vector, 0 | 10..=13) =>
        {
            st.inject_exception(DF_VECTOR, Some(0));
            return Next::Guest;
        }
        e @ (InjectedEvent::Interrupt { soft: false, .. } | InjectedEvent::Nmi) => {
            st.events.displace(e);
        }
        _ => {}
    }
    st.hw.set_cr2(la);
    st.inject_exception(PF_VECTOR, Some(code));
    Next::Guest
}

/// Whether a VM of vendor `ops` runs on the shadow MMU.
pub(crate) fn wanted(ops: &dyn crate::x86::vendor::ArchOps) -> bool {
    !ops.tdp_enabled()
}
