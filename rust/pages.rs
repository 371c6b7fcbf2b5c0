// SPDX-License-Identifier: GPL-2.0
//! Pages the 7.3 `kernel::page::Page` does not cover: physically contiguous
//! blocks (SVM's I/O and MSR permission maps need 12 KiB and 8 KiB),
//! pinned pages of the VMM's memory, pages shared with userspace, and
//! physical/direct-map addresses.

use super::bindings as rb;
use kernel::{bindings, prelude::*};

/// 2^order zeroed, physically contiguous pages; freed on drop.
pub struct ContigPages {
    page: *mut bindings::page,
    order: u32,
}

// SAFETY: the pages are plain memory owned by this value.
unsafe impl Send for ContigPages {}
// SAFETY: `&ContigPages` only reads addresses.
unsafe impl Sync for ContigPages {}

impl ContigPages {
    /// Allocates 2^`order` zeroed pages.
    pub fn new(order: u32) -> Result<Self> {
        // SAFETY: plain page allocation.
        let page = unsafe { rb::rkvm_alloc_pages_zeroed(order) };
        if page.is_null() {
            return Err(ENOMEM);
        }
        Ok(Self { page, order })
    }

    /// Physical address of the first byte.
    pub fn phys(&self) -> u64 {
        // SAFETY: `page` is a live page we own.
        unsafe { rb::rkvm_page_to_phys(self.page) }
    }

    /// The bytes, through the kernel's direct map.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: 2^order pages, directly mapped, exclusively ours.
        unsafe {
            core::slice::from_raw_parts_mut(
                rb::rkvm_page_address(self.page).cast(),
                kernel::page::PAGE_SIZE << self.order,
            )
        }
    }
}

impl Drop for ContigPages {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this order.
        unsafe { rb::rkvm_free_pages(self.page, self.order) };
    }
}

/// A zeroed page of 512 64-bit entries the CPU walks as a page table
/// (the MMU's shadow tables): the kernel reads and writes the entries
/// atomically, since the hardware may walk them at any time. Freed on
/// drop.
pub struct TablePage {
    page: core::ptr::NonNull<bindings::page>,
}

// SAFETY: the page is plain memory owned by this value; its entries are
// atomics.
unsafe impl Send for TablePage {}
// SAFETY: as above: shared access only reads addresses or uses atomics.
unsafe impl Sync for TablePage {}

/// Entries of a [`TablePage`].
pub const TABLE_ENTRIES: usize = 512;

impl TablePage {
    /// A zeroed table anywhere in memory.
    pub fn new() -> Result<Self> {
        // SAFETY: plain page allocation.
        let p = unsafe { rb::rkvm_alloc_pages_zeroed(0) };
        Ok(Self {
            page: core::ptr::NonNull::new(p).ok_or(ENOMEM)?,
        })
    }

    /// A zeroed table below 4 GiB (a PAE root, which the hardware loads
    /// through a 32-bit CR3).
    pub fn new_below_4g() -> Result<Self> {
        // SAFETY: plain page allocation.
        let p = unsafe { rb::rkvm_alloc_page_dma32_zeroed() };
        Ok(Self {
            page: core::ptr::NonNull::new(p).ok_or(ENOMEM)?,
        })
    }

    /// Physical address (4 KiB-aligned).
    pub fn phys(&self) -> u64 {
        // SAFETY: a live page we own.
        unsafe { rb::rkvm_page_to_phys(self.page.as_ptr()) }
    }

    /// The entries.
    pub fn entries(&self) -> &[core::sync::atomic::AtomicU64; TABLE_ENTRIES] {
        // SAFETY: the page is ours and lives as long as `&self`; its
        // direct-map address is 4 KiB-aligned and 4 KiB long, the size
        // and alignment of the array; every bit pattern is a valid
        // `AtomicU64`, and every access (ours and the CPU's walks) is
        // atomic.
        unsafe {
            &*rb::rkvm_page_address(self.page.as_ptr())
                .cast::<[core::sync::atomic::AtomicU64; TABLE_ENTRIES]>()
        }
    }
}

impl Drop for TablePage {
    fn drop(&mut self) {
        // SAFETY: allocated as one page in `new` or `new_below_4g`.
        unsafe { rb::rkvm_free_pages(self.page.as_ptr(), 0) };
    }
}

/// Physical address of `page`.
pub fn page_phys(page: &kernel::page::Page) -> u64 {
    // SAFETY: `page` is a live page.
    unsafe { rb::rkvm_page_to_phys(page.as_ptr()) }
}

/// A page of the VMM's memory with a reference held (`get_user_pages_fast`);
/// the reference is dropped with it.
pub struct PinnedUserPage(*mut bindings::page);

// SAFETY: a page reference may be dropped on any thread.
unsafe impl Send for PinnedUserPage {}

impl PinnedUserPage {
    /// Takes a reference on the page at userspace address `hva` of the
    /// current process, faulting it in (for writing if `write`).
    pub fn get(hva: u64, write: bool) -> Result<Self> {
        let mut page: *mut bindings::page = core::ptr::null_mut();
        let flags = if write { bindings::FOLL_WRITE } else { 0 };
        // SAFETY: one page-pointer slot; any user address is allowed (the
        // walk fails with an error for bad ones).
        let n = unsafe { bindings::get_user_pages_fast(hva as usize, 1, flags, &mut page) };
        if n == 1 && !page.is_null() {
            Ok(Self(page))
        } else {
            Err(EFAULT)
        }
    }

    /// Whether the current process maps `hva` with a host leaf of 2 MiB
    /// or more (a transparent or hugetlb huge page). Only a hint: the
    /// caller must check that no MMU notifier invalidation ran since.
    pub fn mapped_huge(hva: u64) -> bool {
        // SAFETY: a read-only walk of the current process's page tables
        // with interrupts off (the helper); any address is allowed.
        unsafe { rb::rkvm_hva_mapped_huge(hva as usize) }
    }

    /// Host frame number.
    pub fn pfn(&self) -> u64 {
        // SAFETY: `self.0` is a page we hold a reference on.
        unsafe { rb::rkvm_page_to_phys(self.0) >> kernel::page::PAGE_SHIFT }
    }
}

impl Drop for PinnedUserPage {
    fn drop(&mut self) {
        // SAFETY: drops the reference taken in `get`.
        unsafe { rb::rkvm_put_page(self.0) };
    }
}

/// A zeroed page the kernel shares with userspace (mmap of a vCPU fd) or
/// hardware: the kernel accesses it only through volatile reads and writes
/// of plain data at offsets inside the page, since the other side may
/// change it at any time.
pub struct SharedPage {
    page: kernel::page::Page,
}

impl SharedPage {
    /// A new zeroed page.
    pub fn new() -> Result<Self> {
        Ok(Self {
            page: kernel::page::Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
        })
    }

    /// The page, for mapping it into userspace.
    pub fn page(&self) -> &kernel::page::Page {
        &self.page
    }

    fn at<V>(&self, offset: usize) -> Option<*mut V> {
        let size = core::mem::size_of::<V>();
        if offset % core::mem::align_of::<V>() != 0
            || offset.checked_add(size)? > kernel::page::PAGE_SIZE
        {
            return None;
        }
        // SAFETY: the page is live and direct-mapped; `offset + size` is
        // inside it (checked above).
        Some(unsafe {
            rb::rkvm_page_address(self.page.as_ptr())
                .cast::<u8>()
                .add(offset)
                .cast::<V>()
        })
    }

    /// Reads a `V` at byte `offset` (`V::default()` if it would not fit
    /// the page or is misaligned, which is a caller bug).
    pub fn read<V: kernel::transmute::FromBytes + Default>(&self, offset: usize) -> V {
        match self.at::<V>(offset) {
            // SAFETY: in bounds and aligned (`at`); every bit pattern is a
            // valid `V` (FromBytes).
            Some(p) => unsafe { p.read_volatile() },
            None => V::default(),
        }
    }

    /// Writes `v` at byte `offset` (nothing if it would not fit the page).
    pub fn write<V: kernel::transmute::AsBytes>(&self, offset: usize, v: V) {
        if let Some(p) = self.at::<V>(offset) {
            // SAFETY: in bounds and aligned (`at`); the page is plain memory.
            unsafe { p.write_volatile(v) };
        }
    }

    /// Copies `data` into the page at `offset` (clamped to the page).
    pub fn copy_in(&self, offset: usize, data: &[u8]) {
        let n = data
            .len()
            .min(kernel::page::PAGE_SIZE.saturating_sub(offset));
        if let Some(p) = self.at::<u8>(offset.min(kernel::page::PAGE_SIZE - 1)) {
            // SAFETY: `n` bytes from `offset` are inside the page.
            unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), p, n) };
        }
    }

    /// Copies from the page at `offset` into `buf` (clamped to the page).
    pub fn copy_out(&self, offset: usize, buf: &mut [u8]) {
        let n = buf
            .len()
            .min(kernel::page::PAGE_SIZE.saturating_sub(offset));
        if let Some(p) = self.at::<u8>(offset.min(kernel::page::PAGE_SIZE - 1)) {
            // SAFETY: `n` bytes from `offset` are inside the page.
            unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n) };
        }
    }
}

/// The kernel's direct-map address of physical address `pa` (arithmetic
/// only: dereferencing it needs `pa` to be RAM the caller owns).
pub fn phys_to_virt(pa: u64) -> *mut u8 {
    // SAFETY: `__va()` is an addition; it touches no memory.
    unsafe { rb::rkvm_phys_to_virt(pa).cast() }
}
