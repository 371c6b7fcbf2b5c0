// SPDX-License-Identifier: GPL-2.0
//! Coalesced MMIO and PIO: guest writes to registered zones are queued in
//! a ring that userspace drains later (page `KVM_COALESCED_MMIO_PAGE_OFFSET`
//! of every vCPU mmap), instead of exiting one by one.

use crate::{
    ext::{pages::SharedPage, uaccess::read_arg, uapi},
    virt::vm::Vm,
};
use core::{
    mem::{offset_of, size_of},
    sync::atomic::{fence, Ordering},
};
use kernel::{new_mutex, new_spinlock, page::Page, prelude::*, sync::Mutex, sync::SpinLock};

/// One registered zone.
#[derive(Clone, Copy)]
struct Zone {
    addr: u64,
    size: u32,
    pio: bool,
}

impl Zone {
    fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.addr
            && addr.saturating_add(len) <= self.addr.saturating_add(u64::from(self.size))
    }
}

const RING_HEADER: usize = size_of::<uapi::kvm_coalesced_mmio_ring>();
const ENTRY_SIZE: usize = size_of::<uapi::kvm_coalesced_mmio>();
/// Ring entries in one page (`KVM_COALESCED_MMIO_MAX`).
const RING_MAX: u32 = ((kernel::page::PAGE_SIZE - RING_HEADER) / ENTRY_SIZE) as u32;

/// A VM's coalesced zones and its ring.
#[pin_data]
pub(crate) struct Coalesced {
    /// The ring page, mapped by userspace at
    /// `KVM_COALESCED_MMIO_PAGE_OFFSET` of every vCPU fd.
    ring: SharedPage,
    /// KVM_REGISTER_COALESCED_MMIO zones (process context only).
    #[pin]
    zones: Mutex<KVec<Zone>>,
    /// Serialises writers of the ring (vCPU threads). Taken under `zones`.
    #[pin]
    ring_lock: SpinLock<()>,
}

impl Coalesced {
    pub(crate) fn new() -> Result<impl PinInit<Self, Error>> {
        let ring = SharedPage::new()?;
        Ok(try_pin_init!(Self {
            ring,
            zones <- new_mutex!(KVec::new()),
            ring_lock <- new_spinlock!(()),
        }))
    }

    /// The page behind vCPU mmap page `pgoff`, if it is the ring.
    pub(crate) fn mmap_page(&self, pgoff: usize) -> Option<&Page> {
        (pgoff == uapi::KVM_COALESCED_MMIO_PAGE_OFFSET as usize).then_some(self.ring.page())
    }

    /// KVM_REGISTER_COALESCED_MMIO (`register`) and ..._UNREGISTER, which
    /// removes every zone of that kind inside the given range.
    pub(crate) fn set_zone(&self, z: &uapi::kvm_coalesced_mmio_zone, register: bool) -> Result {
        let pio = z.pio();
        if pio > 1 {
            return Err(EINVAL);
        }
        let zone = Zone {
            addr: z.addr,
            size: z.size,
            pio: pio == 1,
        };
        let mut l = self.zones.lock();
        if register {
            l.push(zone, GFP_KERNEL_ACCOUNT)?;
        } else {
            l.retain(|o| !(o.pio == zone.pio && zone.contains(o.addr, u64::from(o.size))));
        }
        Ok(())
    }

    /// A guest write that falls in a zone goes into the ring; false if it
    /// does not, or the ring is full (then it exits normally).
    pub(crate) fn write(&self, pio: bool, addr: u64, data: &[u8]) -> bool {
        let len = data.len();
        if len == 0 || len > 8 {
            return false;
        }
        let zones = self.zones.lock();
        if !zones
            .iter()
            .any(|z| z.pio == pio && z.contains(addr, len as u64))
        {
            return false;
        }
        let _g = self.ring_lock.lock();
        // Userspace may change `first` at any time: read once.
        let first = self
            .ring
            .read::<u32>(offset_of!(uapi::kvm_coalesced_mmio_ring, first))
            % RING_MAX;
        let last = self
            .ring
            .read::<u32>(offset_of!(uapi::kvm_coalesced_mmio_ring, last))
            % RING_MAX;
        if (last + 1) % RING_MAX == first {
            return false;
        }
        let mut bytes = [0u8; 8];
        bytes[..len].copy_from_slice(data);
        let entry = RING_HEADER + last as usize * ENTRY_SIZE;
        self.ring.write(
            entry + offset_of!(uapi::kvm_coalesced_mmio, phys_addr),
            addr,
        );
        self.ring.write(
            entry + offset_of!(uapi::kvm_coalesced_mmio, len),
            len as u32,
        );
        self.ring.write(
            entry + offset_of!(uapi::kvm_coalesced_mmio, __bindgen_anon_1.pio),
            u32::from(pio),
        );
        self.ring
            .write(entry + offset_of!(uapi::kvm_coalesced_mmio, data), bytes);
        // The entry is visible before the new `last`.
        fence(Ordering::Release);
        self.ring.write(
            offset_of!(uapi::kvm_coalesced_mmio_ring, last),
            (last + 1) % RING_MAX,
        );
        true
    }
}

/// KVM_REGISTER_COALESCED_MMIO.
pub(crate) fn register_coalesced_mmio(vm: &Vm, arg: usize) -> Result {
    vm.coalesced().set_zone(&read_arg(arg)?, true)
}

/// KVM_UNREGISTER_COALESCED_MMIO.
pub(crate) fn unregister_coalesced_mmio(vm: &Vm, arg: usize) -> Result {
    vm.coalesced().set_zone(&read_arg(arg)?, false)
}
