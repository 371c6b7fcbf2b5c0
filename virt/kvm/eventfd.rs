// SPDX-License-Identifier: GPL-2.0
//! KVM_IRQFD (an eventfd write raises a GSI, optionally level-triggered
//! with a resample eventfd signalled on EOI) and KVM_IOEVENTFD (a guest
//! write to a port or MMIO address signals an eventfd instead of exiting).

use crate::{
    ext::{
        eventfd::{EventFd, Signalled, Watch},
        uapi,
    },
    irqchip::routing::IRQFD_RESAMPLE_IRQ_SOURCE_ID,
    virt::vm::{read_arg, Vm},
    x86::irq::chips::USERSPACE_SOURCE,
};
use kernel::prelude::*;

/// What an irqfd does when its eventfd is written.
pub(crate) struct Inject {
    /// The VM; irqfds never outlive it (`Vm` drops them first).
    vm: *const Vm,
    gsi: u32,
    resample: bool,
}

// SAFETY: `vm` points to a `Vm` (which is `Sync`) that outlives the irqfd.
unsafe impl Send for Inject {}
// SAFETY: see above.
unsafe impl Sync for Inject {}

impl Signalled for Inject {
    fn signalled(&self) {
        // SAFETY: the VM outlives its irqfds (see `vm`).
        let vm = unsafe { &*self.vm };
        // Edge: a pulse; level (resample): raise until the guest EOIs.
        if self.resample {
            let _ = vm.set_gsi(self.gsi, true, IRQFD_RESAMPLE_IRQ_SOURCE_ID, false);
        } else {
            let _ = vm.set_gsi(self.gsi, true, USERSPACE_SOURCE, false);
            let _ = vm.set_gsi(self.gsi, false, USERSPACE_SOURCE, false);
        }
    }
}

/// One KVM_IRQFD assignment.
pub(crate) struct Irqfd {
    watch: Pin<KBox<Watch<Inject>>>,
    gsi: u32,
    resamplefd: Option<EventFd>,
}

/// One KVM_IOEVENTFD assignment.
pub(crate) struct Ioeventfd {
    addr: u64,
    /// 0: any length.
    len: u32,
    datamatch: Option<u64>,
    pio: bool,
    efd: EventFd,
}

impl Ioeventfd {
    /// Upstream's ioeventfd_in_range(): address, then length, then value.
    fn matches(&self, addr: u64, data: &[u8]) -> bool {
        if addr != self.addr {
            return false;
        }
        if self.len == 0 {
            return true;
        }
        if data.len() != self.len as usize {
            return false;
        }
        let Some(want) = self.datamatch else { return true };
        let mut b = [0u8; 8];
        b[..data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
        u64::from_le_bytes(b) == want
    }

    /// Upstream's ioeventfd_check_collision().
    fn collides(&self, o: &Ioeventfd) -> bool {
        self.pio == o.pio
            && self.addr == o.addr
            && (self.len == 0
                || o.len == 0
                || (self.len == o.len
                    && (self.datamatch.is_none() || o.datamatch.is_none() || self.datamatch == o.datamatch)))
    }
}

impl Vm {
    /// KVM_IRQFD.
    pub(crate) fn irqfd(&self, arg: usize) -> Result {
        let a: uapi::kvm_irqfd = read_arg(arg)?;
        let valid = uapi::KVM_IRQFD_FLAG_DEASSIGN | uapi::KVM_IRQFD_FLAG_RESAMPLE;
        if a.flags & !valid != 0 {
            return Err(EINVAL);
        }
        if a.flags & uapi::KVM_IRQFD_FLAG_DEASSIGN != 0 {
            let efd = EventFd::from_fd(a.fd as i32)?;
            let mut l = self.irqfds.lock();
            // Deassigning an unknown irqfd is not an error (upstream).
            l.retain(|i| !(i.gsi == a.gsi && i.watch.eventfd().same(&efd)));
            return Ok(());
        }
        let resample = a.flags & uapi::KVM_IRQFD_FLAG_RESAMPLE != 0;
        // Only an in-kernel irqchip can take them, and resampling needs
        // the in-kernel IOAPIC (upstream's kvm_arch_irqfd_allowed()).
        if !self.has_irqchip() || (resample && !self.has_full_irqchip()) {
            return Err(EINVAL);
        }
        let resamplefd = if resample { Some(EventFd::from_fd(a.resamplefd as i32)?) } else { None };
        let inject = Inject { vm: self, gsi: a.gsi, resample };
        let watch = KBox::pin_init(Watch::new(a.fd as i32, inject)?, GFP_KERNEL_ACCOUNT)?;
        let mut l = self.irqfds.lock();
        if l.iter().any(|i| i.watch.eventfd().same(watch.eventfd())) {
            return Err(EBUSY);
        }
        l.reserve(1, GFP_KERNEL_ACCOUNT)?;
        watch.as_ref().start(a.fd as i32)?;
        if resample {
            self.set_resample_gsi(a.gsi, true);
        }
        l.push_within_capacity(Irqfd { watch, gsi: a.gsi, resamplefd }).map_err(|_| ENOMEM)?;
        Ok(())
    }

    /// The guest EOI'd the interrupt of `gsi`: level irqfds on it lower
    /// their line and tell userspace through the resample eventfd.
    pub(crate) fn irqfd_acked(&self, gsi: u32) {
        let l = self.irqfds.lock();
        let mut any = false;
        for i in l.iter().filter(|i| i.gsi == gsi) {
            if let Some(r) = &i.resamplefd {
                any = true;
                r.signal();
            }
        }
        drop(l);
        if any {
            let _ = self.set_gsi(gsi, false, IRQFD_RESAMPLE_IRQ_SOURCE_ID, false);
        }
    }

    /// Drops every irqfd (VM teardown), so none can fire into a dying VM.
    pub(crate) fn release_irqfds(&self) {
        let old = core::mem::take(&mut *self.irqfds.lock());
        drop(old);
    }

    /// KVM_IOEVENTFD.
    pub(crate) fn ioeventfd(&self, arg: usize) -> Result {
        let a: uapi::kvm_ioeventfd = read_arg(arg)?;
        let valid = uapi::KVM_IOEVENTFD_FLAG_DATAMATCH | uapi::KVM_IOEVENTFD_FLAG_PIO | uapi::KVM_IOEVENTFD_FLAG_DEASSIGN;
        if !matches!(a.len, 0 | 1 | 2 | 4 | 8)
            || a.addr.checked_add(u64::from(a.len)).is_none()
            || a.flags & !valid != 0
            || (a.len == 0 && a.flags & uapi::KVM_IOEVENTFD_FLAG_DATAMATCH != 0)
        {
            return Err(EINVAL);
        }
        let efd = EventFd::from_fd(a.fd)?;
        let p = Ioeventfd {
            addr: a.addr,
            len: a.len,
            datamatch: (a.flags & uapi::KVM_IOEVENTFD_FLAG_DATAMATCH != 0).then_some(a.datamatch),
            pio: a.flags & uapi::KVM_IOEVENTFD_FLAG_PIO != 0,
            efd,
        };
        let mut l = self.ioeventfds.lock();
        if a.flags & uapi::KVM_IOEVENTFD_FLAG_DEASSIGN != 0 {
            let pos = l.iter().position(|o| {
                o.pio == p.pio && o.efd.same(&p.efd) && o.addr == p.addr && o.len == p.len && o.datamatch == p.datamatch
            });
            return match pos {
                Some(i) => l.remove(i).map(drop).map_err(|_| ENOENT),
                None => Err(ENOENT),
            };
        }
        if l.iter().any(|o| o.collides(&p)) {
            return Err(EEXIST);
        }
        l.push(p, GFP_KERNEL_ACCOUNT)?;
        Ok(())
    }

    /// A guest write to port (`pio`) or MMIO address `addr`: signals a
    /// matching ioeventfd instead of exiting; true if one matched.
    pub(crate) fn ioeventfd_write(&self, pio: bool, addr: u64, data: &[u8]) -> bool {
        let l = self.ioeventfds.lock();
        match l.iter().find(|p| p.pio == pio && p.matches(addr, data)) {
            Some(p) => {
                p.efd.signal();
                true
            }
            None => false,
        }
    }
}
