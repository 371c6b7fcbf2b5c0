// SPDX-License-Identifier: GPL-2.0
//! KVM_IRQFD (an eventfd write raises a GSI, optionally level-triggered
//! with a resample eventfd signalled on EOI) and KVM_IOEVENTFD (a guest
//! write to a port or MMIO address signals an eventfd instead of exiting).

use crate::{
    ext::{
        eventfd::{EventFd, Signalled, Watch},
        uapi,
        workqueue::cleanup_queue,
    },
    irqchip::routing::IRQFD_RESAMPLE_IRQ_SOURCE_ID,
    virt::vm::Vm,
    x86::irq::chips::{self, USERSPACE_SOURCE},
};
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::{
    new_mutex,
    prelude::*,
    sync::{Arc, Mutex},
    workqueue::WorkItem,
};

/// What an irqfd does when its eventfd is written: raise its GSI in its
/// VM. Runs in the eventfd's wakeup (IRQ-safe locks only).
struct Inject {
    /// The irqfd keeps its VM alive; [`Irqfds::release_all`] (VM fd
    /// release) or the eventfd's hang-up ([`Irqfds::reap`]) breaks the
    /// cycle.
    vm: Arc<Vm>,
    gsi: u32,
    resample: bool,
    /// The eventfd's file was released (EPOLLHUP): [`Irqfds::reap`]
    /// removes this irqfd.
    hung_up: AtomicBool,
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

    /// The eventfd was closed: the irqfd goes, as upstream's
    /// irqfd_wakeup() on EPOLLHUP. Removing it sleeps (the list mutex,
    /// leaving the wait queue whose lock is held here), so the VM's
    /// reaper runs on the cleanup workqueue (upstream's
    /// irqfd_deactivate() queues irqfd_shutdown()).
    fn hangup(&self) {
        self.hung_up.store(true, Ordering::Release);
        if let Some(q) = cleanup_queue() {
            // Already queued: that run reaps this irqfd too. The Arc
            // given back then is not the last (`self.vm` is another).
            let _ = q.enqueue(self.vm.clone());
        }
    }
}

/// The VM's irqfd reaper (queued by [`Inject::hangup`]).
impl WorkItem for Vm {
    type Pointer = Arc<Vm>;

    fn run(vm: Arc<Vm>) {
        vm.irqfds().reap(&vm);
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
        let gone = self.remove(|i| i.gsi == gsi && i.watch.eventfd().same(&efd));
        Ok(gone.is_some_and(|(_, last)| last))
    }

    /// Removes the first irqfd `pick` selects (dropped after the lock):
    /// `None` if there is none, else its GSI and whether it was the last
    /// level irqfd (resampler) there.
    fn remove(&self, pick: impl Fn(&Irqfd) -> bool) -> Option<(u32, bool)> {
        let mut l = self.list.lock();
        let pos = l.iter().position(pick)?;
        let gone = l.remove(pos).ok()?;
        let last = gone.resamplefd.is_some()
            && !l
                .iter()
                .any(|i| i.resamplefd.is_some() && i.gsi == gone.gsi);
        let gsi = gone.gsi;
        drop(l);
        drop(gone);
        Some((gsi, last))
    }

    /// Removes the irqfds whose eventfd hung up; a level irqfd that was
    /// the last on its GSI takes its resample line down with it.
    fn reap(&self, vm: &Vm) {
        while let Some((gsi, last)) =
            self.remove(|i| i.watch.data().hung_up.load(Ordering::Acquire))
        {
            if last {
                resampler_gone(vm, gsi);
            }
        }
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
            hung_up: AtomicBool::new(false),
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
            resampler_gone(&vm, a.gsi);
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

/// The last level irqfd of `gsi` went away: its pins stop resampling and
/// its line goes down (upstream's irqfd_resampler_shutdown()).
fn resampler_gone(vm: &Vm, gsi: u32) {
    vm.arch().irqchip().set_resample_gsi(gsi, false);
    let _ = chips::set_gsi(vm, gsi, false, IRQFD_RESAMPLE_IRQ_SOURCE_ID);
}

/// KVM_IOEVENTFD.
pub(crate) fn ioeventfd(vm: &Vm, arg: usize) -> Result {
    vm.ioeventfds().ioctl(&crate::ext::uaccess::read_arg(arg)?)
}
