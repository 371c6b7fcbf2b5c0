// SPDX-License-Identifier: GPL-2.0
//! Two-dimensional paging tables: the host-owned guest-physical to
//! host-physical tables the CPU walks for the guest (AMD NPT, in the
//! long-mode 4-level page-table format; EPT will get its own entry format).
//!
//! 4 KiB leaves only. Table pages are owned here and freed with the tables;
//! leaves are cleared by [`Tdp::zap`] but intermediate tables stay until the
//! VM goes away (they are few: 4 KiB of tables maps 2 MiB).

use crate::ext::bindings as rb;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{page::Page, prelude::*};

/// Page-table entry bits (AMD APM vol. 2, 5.3; NPT uses the same format).
pub(crate) mod pte {
    /// Present.
    pub(crate) const P: u64 = 1 << 0;
    /// Writable.
    pub(crate) const RW: u64 = 1 << 1;
    /// User: nested walks are user accesses, so every NPT entry needs it.
    pub(crate) const US: u64 = 1 << 2;
    /// Accessed (set by us so the walker does not have to).
    pub(crate) const A: u64 = 1 << 5;
    /// Dirty.
    pub(crate) const D: u64 = 1 << 6;
    /// Physical address bits 12..51.
    pub(crate) const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

const ENTRIES: usize = 512;
const LEVELS: u32 = 4;
/// Guest frames the 4-level tables can map (48-bit guest physical space).
pub(crate) const MAX_GFN: u64 = (1 << (48 - 12)) - 1;

type Table = [AtomicU64; ENTRIES];

/// Index of `gfn` in a table of `level` (1 = leaf table).
fn index(gfn: u64, level: u32) -> usize {
    ((gfn >> (9 * (level - 1))) & (ENTRIES as u64 - 1)) as usize
}

/// Guest frames covered by one entry of a table of `level`.
fn span(level: u32) -> u64 {
    1 << (9 * (level - 1))
}

/// The NPT of one VM.
pub(crate) struct Tdp {
    root: Page,
    root_pa: u64,
    /// Every non-root table page; freed on drop.
    tables: KVec<Page>,
}

fn page_pa(page: &Page) -> u64 {
    // SAFETY: `page` is a live page.
    unsafe { rb::rkvm_page_to_phys(page.as_ptr()) }
}

impl Tdp {
    /// Empty tables (a zeroed root).
    pub(crate) fn new() -> Result<Self> {
        let root = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        let root_pa = page_pa(&root);
        Ok(Self { root, root_pa, tables: KVec::new() })
    }

    /// Physical address of the top-level table (the VMCB's nCR3).
    pub(crate) fn root_pa(&self) -> u64 {
        self.root_pa
    }

    /// The table at physical address `pa`, which one of our entries holds.
    fn table(&self, pa: u64) -> &Table {
        // SAFETY: every table address in our entries (and the root) is a
        // page we own (`self.root`, `self.tables`) that lives as long as
        // `self`; its direct-map address is 4 KiB-aligned and the CPU only
        // ever reads it concurrently, hence atomics.
        unsafe { &*rb::rkvm_phys_to_virt(pa & pte::ADDR).cast::<Table>() }
    }

    /// Maps `gfn` to host frame `pfn`; returns true if a different present
    /// translation was replaced (the caller must flush guest TLBs).
    pub(crate) fn map(&mut self, gfn: u64, pfn: u64, writable: bool) -> Result<bool> {
        if gfn > MAX_GFN {
            return Err(EINVAL);
        }
        let mut table_pa = self.root_pa;
        for level in (2..=LEVELS).rev() {
            let entry = &self.table(table_pa)[index(gfn, level)];
            let e = entry.load(Ordering::Relaxed);
            if e & pte::P != 0 {
                table_pa = e & pte::ADDR;
                continue;
            }
            let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
            let pa = page_pa(&page);
            self.tables.push(page, GFP_KERNEL_ACCOUNT)?;
            self.table(table_pa)[index(gfn, level)]
                .store(pa | pte::P | pte::RW | pte::US | pte::A, Ordering::Release);
            table_pa = pa;
        }
        let mut leaf = (pfn << 12) & pte::ADDR | pte::P | pte::US | pte::A;
        if writable {
            leaf |= pte::RW | pte::D;
        }
        let old = self.table(table_pa)[index(gfn, 1)].swap(leaf, Ordering::Release);
        Ok(old & pte::P != 0 && (old & pte::ADDR != leaf & pte::ADDR || old & !leaf & pte::RW != 0))
    }

    /// Applies `f` to every present leaf in `[start, end)`; returns true if
    /// any leaf changed.
    fn for_each_leaf(&self, start: u64, end: u64, f: &impl Fn(u64) -> u64) -> bool {
        self.walk(self.root_pa, LEVELS, 0, start, end.min(MAX_GFN + 1), f)
    }

    fn walk(&self, pa: u64, level: u32, base: u64, start: u64, end: u64, f: &impl Fn(u64) -> u64) -> bool {
        let mut changed = false;
        let table = self.table(pa);
        let span = span(level);
        let first = if start > base { ((start - base) / span) as usize } else { 0 };
        for (i, entry) in table.iter().enumerate().skip(first) {
            let lo = base + i as u64 * span;
            if lo >= end {
                break;
            }
            let e = entry.load(Ordering::Relaxed);
            if e & pte::P == 0 {
                continue;
            }
            if level == 1 {
                let n = f(e);
                if n != e {
                    entry.store(n, Ordering::Release);
                    changed = true;
                }
            } else {
                // Depth is bounded by LEVELS.
                changed |= self.walk(e & pte::ADDR, level - 1, lo, start, end, f);
            }
        }
        changed
    }

    /// Unmaps `[start, end)`; true if anything was mapped there.
    pub(crate) fn zap(&mut self, start: u64, end: u64) -> bool {
        self.for_each_leaf(start, end, &|_| 0)
    }

    /// Makes `[start, end)` read-only; true if anything was writable.
    pub(crate) fn write_protect(&mut self, start: u64, end: u64) -> bool {
        self.for_each_leaf(start, end, &|e| e & !(pte::RW | pte::D))
    }

    /// Unmaps everything.
    pub(crate) fn zap_all(&mut self) -> bool {
        self.zap(0, MAX_GFN + 1)
    }
}

impl Drop for Tdp {
    fn drop(&mut self) {
        // The root and `tables` are freed by their own drops. Nothing maps
        // these tables any more: every vCPU is gone before the VM's MMU.
        let _ = &self.root;
    }
}
