// SPDX-License-Identifier: GPL-2.0
//! Virtual processor identifiers: one per vCPU while VPIDs are enabled
//! (upstream's `allocate_vpid()`); VPID 0 is the host's and means "none".

use core::sync::atomic::{AtomicU64, Ordering};

/// VPIDs are 16 bits wide.
const NR_VPIDS: usize = 1 << 16;

/// Bit n set: VPID n is in use. VPID 0 is reserved (set at first use).
static USED: [AtomicU64; NR_VPIDS / 64] = [const { AtomicU64::new(0) }; NR_VPIDS / 64];

/// A VPID held until dropped (0: none was free, or VPIDs are off).
pub(crate) struct Vpid(u16);

impl Vpid {
    /// Takes a free VPID, or 0 when `enabled` is false or none is left
    /// (the vCPU then runs untagged, flushed on every entry and exit).
    pub(crate) fn allocate(enabled: bool) -> Self {
        if !enabled {
            return Self(0);
        }
        USED[0].fetch_or(1, Ordering::Relaxed);
        for (w, word) in USED.iter().enumerate() {
            let mut cur = word.load(Ordering::Relaxed);
            while cur != u64::MAX {
                let bit = (!cur).trailing_zeros();
                match word.compare_exchange(
                    cur,
                    cur | (1 << bit),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Self((w * 64 + bit as usize) as u16),
                    Err(now) => cur = now,
                }
            }
        }
        Self(0)
    }

    /// The identifier (0: none).
    pub(crate) fn get(&self) -> u16 {
        self.0
    }
}

impl Drop for Vpid {
    fn drop(&mut self) {
        if self.0 != 0 {
            let n = usize::from(self.0);
            USED[n / 64].fetch_and(!(1 << (n % 64)), Ordering::Release);
        }
    }
}
