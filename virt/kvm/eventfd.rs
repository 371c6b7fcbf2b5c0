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
    virt::vm::Vm,
    x86::irq::chips::{self, USERSPACE_SOURCE},
};
use kernel::{new_mutex, prelude::*, sync::Arc, sync::Mutex};

/// What an irqfd does when its eventfd is written: raise its GSI in its
/// VM. Runs in the eventfd's wakeup (IRQ-safe locks only).
struct Inject {
    /// The irqfd keeps its VM alive; [`Irqfds::release_all`] (VM fd
    /// release) breaks the cycle.
    vm: Arc<Vm>,
    gsi: u32,
    resample: bool,
}

impl Signalled for Inject {
    fn signalled(&self) {
        // Edge: a pulse; level (resample): raise until the guest EOIs.
        // Errors (no irqchip any more) drop the interrupt, as upstream.
        if self.resample {
            let _ = chips::set_gsi(&self.vm, self.gsi, true, IRQFD_RESAMPLE_IRQ_SOURCE_ID);
        } else {
            let _ = chips::set_gsi(&self.vm, self.gsi, true, USERSPACE_SOURCE);
            let _ = chips::set_gsi(&self.vm, self.gsi, false, USERSPACE_SOURCE);
        }
    }
}

/// One KVM_IRQFD assignment.
struct Irqfd {
    watch: Pin<KBox<Watch<Inject>>>,
    gsi: u32,
    resamplefd: Option<EventFd>,
}

/// A VM's irqfds.
#[pin_data]
pub(crate) struct Irqfds {
    /// The assignments. A mutex: resampler signalling runs in process
    /// context (EOI paths), after the IRQ-safe chip locks are dropped.
    #[pin]
    list: Mutex<KVec<Irqfd>>,
}

impl Irqfds {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self { list <- new_mutex!(KVec::new()) })
    }

    /// KVM_IRQFD with KVM_IRQFD_FLAG_DEASSIGN: unknown irqfds are not an
    /// error (upstream). Returns whether a resampler went away from `gsi`.
    pub(crate) fn deassign(&self, fd: i32, gsi: u32) -> Result<bool> {
        let efd = EventFd::from_fd(fd)?;
        let mut l = self.list.lock();
        let before = l
            .iter()
            .filter(|i| i.resamplefd.is_some() && i.gsi == gsi)
            .count();
        l.retain(|i| !(i.gsi == gsi && i.watch.eventfd().same(&efd)));
        let after = l
            .iter()
            .filter(|i| i.resamplefd.is_some() && i.gsi == gsi)
            .count();
        Ok(before != after && after == 0)
    }

    /// KVM_IRQFD: starts watching `a.fd` for `vm` (the caller checked the
    /// flags and that `vm`'s irqchip can take it). `EBUSY` if that eventfd
    /// already is an irqfd.
    pub(crate) fn assign(&self, vm: Arc<Vm>, a: &uapi::kvm_irqfd, resample: bool) -> Result {
        let fd = a.fd as i32;
        let resamplefd = if resample {
            Some(EventFd::from_fd(a.resamplefd as i32)?)
        } else {
            None
        };
        let inject = Inject {
            vm,
            gsi: a.gsi,
            resample,
        };
        let watch = KBox::pin_init(Watch::new(fd, inject)?, GFP_KERNEL_ACCOUNT)?;
        let mut l = self.list.lock();
        if l.iter().any(|i| i.watch.eventfd().same(watch.eventfd())) {
            return Err(EBUSY);
        }
        l.reserve(1, GFP_KERNEL_ACCOUNT)?;
        watch.as_ref().start(fd)?;
        l.push_within_capacity(Irqfd {
            watch,
            gsi: a.gsi,
            resamplefd,
        })
        .map_err(|_| ENOMEM)?;
        Ok(())
    }

    /// The guest EOI'd the interrupt of `gsi`: level irqfds on it tell
    /// userspace through their resample eventfd. True if there were any
    /// (the caller lowers their line).
    pub(crate) fn acked(&self, gsi: u32) -> bool {
        let l = self.list.lock();
        let mut any = false;
        for r in l
            .iter()
            .filter(|i| i.gsi == gsi)
            .filter_map(|i| i.resamplefd.as_ref())
        {
            any = true;
            r.signal();
        }
        any
    }

    /// Drops every irqfd (VM fd release), so none can fire into a VM going
    /// away, as upstream's kvm_irqfd_release().
    pub(crate) fn release_all(&self) {
        let old = core::mem::take(&mut *self.list.lock());
        drop(old);
    }
}

/// One KVM_IOEVENTFD assignment.
struct Ioeventfd {
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
        let Some(want) = self.datamatch else {
            return true;
        };
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
                    && (self.datamatch.is_none()
                        || o.datamatch.is_none()
                        || self.datamatch == o.datamatch)))
    }
}

/// A VM's ioeventfds.
#[pin_data]
pub(crate) struct Ioeventfds {
    #[pin]
    list: Mutex<KVec<Ioeventfd>>,
}

impl Ioeventfds {
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self { list <- new_mutex!(KVec::new()) })
    }

    /// KVM_IOEVENTFD (assign or, with KVM_IOEVENTFD_FLAG_DEASSIGN, remove).
    pub(crate) fn ioctl(&self, a: &uapi::kvm_ioeventfd) -> Result {
        let valid = uapi::KVM_IOEVENTFD_FLAG_DATAMATCH
            | uapi::KVM_IOEVENTFD_FLAG_PIO
            | uapi::KVM_IOEVENTFD_FLAG_DEASSIGN;
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
        let mut l = self.list.lock();
        if a.flags & uapi::KVM_IOEVENTFD_FLAG_DEASSIGN != 0 {
            let pos = l.iter().position(|o| {
                o.pio == p.pio
                    && o.efd.same(&p.efd)
                    && o.addr == p.addr
                    && o.len == p.len
                    && o.datamatch == p.datamatch
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
    pub(crate) fn write(&self, pio: bool, addr: u64, data: &[u8]) -> bool {
        let l = self.list.lock();
        match l.iter().find(|p| p.pio == pio && p.matches(addr, data)) {
            Some(p) => {
                p.efd.signal();
                true
            }
            None => false,
        }
    }
}

/// KVM_IRQFD: assign or deassign an irqfd of `vm`.
pub(crate) fn irqfd(vm: kernel::sync::ArcBorrow<'_, Vm>, arg: usize) -> Result {
    let a: uapi::kvm_irqfd = crate::ext::uaccess::read_arg(arg)?;
    let valid = uapi::KVM_IRQFD_FLAG_DEASSIGN | uapi::KVM_IRQFD_FLAG_RESAMPLE;
    if a.flags & !valid != 0 {
        return Err(EINVAL);
    }
    let chip = vm.arch().irqchip();
    if a.flags & uapi::KVM_IRQFD_FLAG_DEASSIGN != 0 {
        if vm.irqfds().deassign(a.fd as i32, a.gsi)? {
            chip.set_resample_gsi(a.gsi, false);
        }
        return Ok(());
    }
    let resample = a.flags & uapi::KVM_IRQFD_FLAG_RESAMPLE != 0;
    // Only an in-kernel irqchip can take them, and resampling needs the
    // in-kernel IOAPIC (upstream's kvm_arch_irqfd_allowed()).
    if !chip.in_kernel() || (resample && !chip.is_full()) {
        return Err(EINVAL);
    }
    let vm: Arc<Vm> = vm.into();
    vm.irqfds().assign(vm.clone(), &a, resample)?;
    if resample {
        vm.arch().irqchip().set_resample_gsi(a.gsi, true);
    }
    Ok(())
}

/// KVM_IOEVENTFD.
pub(crate) fn ioeventfd(vm: &Vm, arg: usize) -> Result {
    vm.ioeventfds().ioctl(&crate::ext::uaccess::read_arg(arg)?)
}
