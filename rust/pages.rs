// SPDX-License-Identifier: GPL-2.0
//! Physically contiguous blocks of pages (`kernel::page::Page` is one page;
//! SVM's I/O and MSR permission maps need 12 KiB and 8 KiB contiguous).

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
            core::slice::from_raw_parts_mut(rb::rkvm_page_address(self.page).cast(), 4096 << self.order)
        }
    }
}

impl Drop for ContigPages {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this order.
        unsafe { rb::rkvm_free_pages(self.page, self.order) };
    }
}
