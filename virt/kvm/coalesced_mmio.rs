// SPDX-License-Identifier: GPL-2.0
//! Coalesced MMIO and PIO: guest writes to registered zones are queued in
//! a ring that userspace drains later (page `KVM_COALESCED_MMIO_PAGE_OFFSET`
//! of every vCPU mmap), instead of exiting one by one.

use crate::{
    ext::{bindings as rb, uapi},
    virt::vm::{read_arg, Vm},
};
use core::ptr::{addr_of, addr_of_mut};
use kernel::prelude::*;

/// One registered zone.
#[derive(Clone, Copy)]
pub(crate) struct Zone {
    addr: u64,
    size: u32,
    pio: bool,
}

impl Zone {
    fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.addr && addr.saturating_add(len) <= self.addr.saturating_add(u64::from(self.size))
    }
}

const RING_HEADER: usize = core::mem::size_of::<uapi::kvm_coalesced_mmio_ring>();
const ENTRY_SIZE: usize = core::mem::size_of::<uapi::kvm_coalesced_mmio>();
/// Ring entries in one page (`KVM_COALESCED_MMIO_MAX`).
const RING_MAX: u32 = ((4096 - RING_HEADER) / ENTRY_SIZE) as u32;

impl Vm {
    /// KVM_REGISTER_COALESCED_MMIO (`register`) and ..._UNREGISTER.
    pub(crate) fn coalesced_zone(&self, arg: usize, register: bool) -> Result {
        let z: uapi::kvm_coalesced_mmio_zone = read_arg(arg)?;
        // SAFETY: `pad` and `pio` share the last word of the zone.
        let pio = unsafe { z.__bindgen_anon_1.pio };
        if pio > 1 {
            return Err(EINVAL);
        }
        let zone = Zone { addr: z.addr, size: z.size, pio: pio == 1 };
        let mut l = self.coalesced_zones.lock();
        if register {
            l.push(zone, GFP_KERNEL_ACCOUNT)?;
        } else {
            // Removes every zone of that kind inside the given range.
            l.retain(|o| !(o.pio == zone.pio && zone.contains(o.addr, u64::from(o.size))));
        }
        Ok(())
    }

    /// A guest write that falls in a coalesced zone goes into the ring;
    /// false if it does not, or the ring is full (then it exits normally).
    pub(crate) fn coalesced_write(&self, pio: bool, addr: u64, data: &[u8]) -> bool {
        let len = data.len();
        if len == 0 || len > 8 {
            return false;
        }
        if !self.coalesced_zones.lock().iter().any(|z| z.pio == pio && z.contains(addr, len as u64)) {
            return false;
        }
        let _g = self.coalesced_lock.lock();
        // SAFETY: the ring page is ours and direct-mapped; userspace may
        // change `first` at any time, so it is read once, volatile.
        unsafe {
            let ring = rb::rkvm_page_address(self.coalesced_page().as_ptr()).cast::<uapi::kvm_coalesced_mmio_ring>();
            let first = addr_of!((*ring).first).read_volatile() % RING_MAX;
            let last = addr_of!((*ring).last).read_volatile() % RING_MAX;
            if (last + 1) % RING_MAX == first {
                return false;
            }
            let mut e: uapi::kvm_coalesced_mmio = pin_init::zeroed();
            e.phys_addr = addr;
            e.len = len as u32;
            e.__bindgen_anon_1.pio = u32::from(pio);
            e.data[..len].copy_from_slice(data);
            let entries = ring.cast::<u8>().add(RING_HEADER).cast::<uapi::kvm_coalesced_mmio>();
            entries.add(last as usize).write_volatile(e);
            // The entry is visible before the new `last`.
            core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
            addr_of_mut!((*ring).last).write_volatile((last + 1) % RING_MAX);
        }
        true
    }
}
