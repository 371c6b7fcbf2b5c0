// SPDX-License-Identifier: GPL-2.0
//! Two-dimensional paging tables: the host-owned guest-physical to
//! host-physical tables the CPU walks for the guest (AMD NPT, Intel EPT).
//! The walk is the same for both; the entry bits come from the vendor
//! ([`TdpFormat`]).
//!
//! 4 KiB leaves only. Table pages are owned here and freed with the tables;
//! leaves are cleared by [`Tdp::zap`] but intermediate tables stay until the
//! VM goes away (they are few: 4 KiB of tables maps 2 MiB).

use crate::ext::pages::{page_phys, phys_to_virt};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::{
    page::{Page, PAGE_SHIFT},
    prelude::*,
};

/// How a vendor's TDP entries look (NPT: the long-mode page-table format;
/// EPT: read/write/execute bits and a memory type).
#[derive(Clone, Copy, Debug)]
pub struct TdpFormat {
    /// Bits of an entry pointing to a lower-level table (besides its address).
    pub table: u64,
    /// Bits of a readable, executable leaf (besides its address).
    pub leaf: u64,
    /// Bits added to a writable leaf.
    pub writable: u64,
    /// An entry with any of these bits is present.
    pub present: u64,
    /// The physical-address bits of an entry.
    pub addr: u64,
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

/// The TDP tables of one VM.
pub(crate) struct Tdp {
    format: TdpFormat,
    /// The top-level table.
    root: Page,
    /// Every non-root table page; freed on drop.
    tables: KVec<Page>,
    /// Present leaves (4 KiB mappings).
    leaves: u64,
}

impl Tdp {
    /// Empty tables (a zeroed root) with the vendor's entry `format`.
    pub(crate) fn new(format: TdpFormat) -> Result<Self> {
        let root = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        Ok(Self {
            format,
            root,
            tables: KVec::new(),
            leaves: 0,
        })
    }

    /// Present 4 KiB mappings.
    pub(crate) fn leaves(&self) -> u64 {
        self.leaves
    }

    /// Physical address of the top-level table (the vendor's TDP root).
    pub(crate) fn root_pa(&self) -> u64 {
        page_phys(&self.root)
    }

    /// The table at physical address `pa`, which one of our entries holds.
    fn table(&self, pa: u64) -> &Table {
        let va = phys_to_virt(pa & self.format.addr);
        // SAFETY: every table address in our entries (and the root) is a
        // page we own (`self.root`, `self.tables`) that lives as long as
        // `self`; its direct-map address is 4 KiB-aligned and the CPU only
        // ever reads it concurrently, hence atomics.
        unsafe { &*va.cast::<Table>() }
    }

    /// Maps `gfn` to host frame `pfn`; returns true if a different present
    /// translation was replaced (the caller must flush guest TLBs).
    pub(crate) fn map(&mut self, gfn: u64, pfn: u64, writable: bool) -> Result<bool> {
        if gfn > MAX_GFN {
            return Err(EINVAL);
        }
        let f = self.format;
        let mut table_pa = self.root_pa();
        for level in (2..=LEVELS).rev() {
            let entry = &self.table(table_pa)[index(gfn, level)];
            let e = entry.load(Ordering::Relaxed);
            if e & f.present != 0 {
                table_pa = e & f.addr;
                continue;
            }
            let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
            let pa = page_phys(&page);
            self.tables.push(page, GFP_KERNEL_ACCOUNT)?;
            self.table(table_pa)[index(gfn, level)].store(pa | f.table, Ordering::Release);
            table_pa = pa;
        }
        let mut leaf = (pfn << PAGE_SHIFT) & f.addr | f.leaf;
        if writable {
            leaf |= f.writable;
        }
        let old = self.table(table_pa)[index(gfn, 1)].swap(leaf, Ordering::Release);
        if old & f.present == 0 {
            self.leaves += 1;
        }
        Ok(
            old & f.present != 0
                && (old & f.addr != leaf & f.addr || old & !leaf & f.writable != 0),
        )
    }

    /// Applies `f` to every present leaf in `[start, end)`; returns true if
    /// any leaf changed.
    fn for_each_leaf(&mut self, start: u64, end: u64, f: &impl Fn(u64) -> u64) -> bool {
        let mut removed = 0;
        let range = start..end.min(MAX_GFN + 1);
        let changed = self.walk(self.root_pa(), LEVELS, 0, &range, f, &mut removed);
        self.leaves = self.leaves.saturating_sub(removed);
        changed
    }

    fn walk(
        &self,
        pa: u64,
        level: u32,
        base: u64,
        range: &core::ops::Range<u64>,
        f: &impl Fn(u64) -> u64,
        removed: &mut u64,
    ) -> bool {
        let (start, end) = (range.start, range.end);
        let mut changed = false;
        let table = self.table(pa);
        let span = span(level);
        let first = if start > base {
            ((start - base) / span) as usize
        } else {
            0
        };
        for (i, entry) in table.iter().enumerate().skip(first) {
            let lo = base + i as u64 * span;
            if lo >= end {
                break;
            }
            let e = entry.load(Ordering::Relaxed);
            if e & self.format.present == 0 {
                continue;
            }
            if level == 1 {
                let n = f(e);
                if n != e {
                    entry.store(n, Ordering::Release);
                    changed = true;
                    if n & self.format.present == 0 {
                        *removed += 1;
                    }
                }
            } else {
                // Depth is bounded by LEVELS.
                changed |= self.walk(e & self.format.addr, level - 1, lo, range, f, removed);
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
        let w = self.format.writable;
        self.for_each_leaf(start, end, &|e| e & !w)
    }

    /// Unmaps everything.
    pub(crate) fn zap_all(&mut self) -> bool {
        self.zap(0, MAX_GFN + 1)
    }
}

// The root and `tables` are freed by their own drops. Nothing maps these
// tables any more then: every vCPU is gone before the VM's MMU.
