// SPDX-License-Identifier: GPL-2.0
//! A VM: its memory map, its vCPUs, and its file descriptor.
//!
//! The VM lives as long as its fd and its vCPU fds (each holds an
//! `Arc<Vm>`); the vCPUs live as long as the VM, like upstream.

use crate::{
    x86::vendor::VendorRef,
    x86::caps,
    ext::{
        bindings as rb,
        file::{self, FileOps},
        uapi,
    },
    virt::ioctl::*,
    virt::guest_memory::Slot,
    memslots::{self, Change, Request, SlotError},
    x86::mmu::{tdp, Mmu},
    virt::mmu_notifier as notifier,
    virt::vcpu::{self, Vcpu},
    x86::irq::chips::Chips,
    virt::eventfd::{Ioeventfd, Irqfd},
    virt::coalesced_mmio::Zone,
};
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use kernel::{
    bindings,
    fs::File,
    mm::Mm,
    new_mutex, new_spinlock, new_spinlock_irq,
    page::Page,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow, Mutex, SpinLock, SpinLockIrq},
    task::Task,
    types::Opaque,
    uaccess::{UserPtr, UserSlice},
};

/// The only machine type x86 KVM supports here (`KVM_X86_DEFAULT_VM`).
const KVM_X86_DEFAULT_VM: usize = 0;
/// Most vCPUs per VM (`KVM_CAP_MAX_VCPUS`).
pub(crate) const MAX_VCPUS: usize = 1024;
/// vCPU ids are below this (`KVM_CAP_MAX_VCPU_ID`).
pub(crate) const MAX_VCPU_IDS: u32 = 4096;

/// A virtual machine.
#[pin_data(PinnedDrop)]
pub(crate) struct Vm {
    pub(crate) vendor: VendorRef,
    /// The VMM's address space: ioctls from other processes get `EIO`.
    mm: ARef<Mm>,
    #[pin]
    notifier: Opaque<bindings::mmu_notifier>,
    notifier_registered: AtomicBool,
    /// Slots and nested page tables.
    #[pin]
    pub(crate) mmu: Mutex<Mmu>,
    /// Bumped at the end of each invalidation (see `mmu`).
    pub(crate) mmu_seq: AtomicU64,
    /// Invalidations in progress.
    pub(crate) mmu_invalidating: AtomicU32,
    /// Serialises memslot changes and vCPU creation (upstream slots_lock).
    #[pin]
    lock: Mutex<()>,
    /// The vCPUs, in creation order; capacity reserved for `MAX_VCPUS`.
    #[pin]
    pub(crate) vcpus: SpinLockIrq<KVec<Arc<Vcpu>>>,
    /// The in-kernel PIC, IOAPIC and PIT (KVM_CREATE_IRQCHIP). IRQ-safe:
    /// irqfds inject from an eventfd's wakeup, in any context.
    #[pin]
    pub(crate) chips: SpinLockIrq<Option<KBox<Chips>>>,
    /// Which irqchip `chips` holds (`chips::IRQCHIP_*`), set once with
    /// it: the run loop asks on every exit without taking the lock.
    pub(crate) irqchip_mode: AtomicU8,
    /// Highest guest frame a slot may map.
    max_gfn: u64,
    /// The coalesced-MMIO ring, page 2 of every vCPU mmap.
    coalesced: Page,
    /// kvmclock = boot-time ns + this (KVM_GET/SET_CLOCK).
    kvmclock_offset: AtomicI64,
    /// Bumped by KVM_SET_CLOCK: vCPUs rewrite their kvmclock time info.
    pub(crate) clock_gen: AtomicU64,
    /// The VM's one TSC (userspace writes and vCPU creation).
    #[pin]
    pub(crate) tsc_sync: SpinLock<crate::pvclock::TscSync>,
    /// KVM_SET_BOOT_CPU_ID: the vCPU id of the BSP.
    bsp_id: AtomicU32,
    /// KVM_CAP_MAX_VCPU_ID as enabled (0: not, ids up to MAX_VCPU_IDS).
    max_vcpu_ids: AtomicU32,
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 options.
    manual_dirty_log: AtomicU64,
    /// KVM_CAP_EXIT_HYPERCALL: hypercalls that exit to userspace.
    hypercall_exit: AtomicU64,
    /// KVM_IRQFD assignments.
    #[pin]
    pub(crate) irqfds: Mutex<KVec<Irqfd>>,
    /// KVM_IOEVENTFD assignments.
    #[pin]
    pub(crate) ioeventfds: Mutex<KVec<Ioeventfd>>,
    /// KVM_REGISTER_COALESCED_MMIO zones.
    #[pin]
    pub(crate) coalesced_zones: Mutex<KVec<Zone>>,
    /// Serialises writers of the coalesced ring.
    #[pin]
    pub(crate) coalesced_lock: SpinLock<()>,
}

// SAFETY: the embedded `mmu_notifier` is only touched by the MMU notifier
// core (under its own locking) and by `create`/`drop`; every other field is
// `Send + Sync`.
unsafe impl Send for Vm {}
// SAFETY: see above.
unsafe impl Sync for Vm {}

impl Vm {
    /// The VM around MMU notifier `mn`.
    ///
    /// # Safety
    ///
    /// `mn` is the `notifier` field of a live `Vm`.
    pub(crate) unsafe fn from_notifier<'a>(mn: *mut bindings::mmu_notifier) -> &'a Vm {
        let offset = core::mem::offset_of!(Vm, notifier);
        // SAFETY: `mn` points into a live `Vm` (caller), `offset` bytes in.
        unsafe { &*mn.cast::<u8>().sub(offset).cast::<Vm>() }
    }

    /// Upstream refuses VM and vCPU ioctls from any process but the VM's
    /// creator with `EIO`: the VM's memory is that process's memory.
    pub(crate) fn check_mm(&self) -> Result {
        let cur = Task::current_raw();
        // SAFETY: `current` is valid; its `mm` is stable while it runs.
        let mm = unsafe { (*cur).mm };
        if mm == self.mm.as_raw() {
            Ok(())
        } else {
            Err(EIO)
        }
    }

    /// Makes every vCPU flush its guest TLB before it next enters the
    /// guest, and waits until none still runs with stale translations.
    /// (The waiting cross calls need interrupts on: not under the lock.)
    pub(crate) fn flush_remote_tlbs(&self) {
        let mut i = 0;
        while let Some(c) = self.vcpus.lock().get(i).cloned() {
            c.kick.make_request(crate::virt::kick::REQ_TLB_FLUSH);
            c.kick.kick(true);
            i += 1;
        }
    }

    // --- MMU notifier --------------------------------------------------------

    /// An invalidation of userspace `[start, end)` begins.
    pub(crate) fn invalidate_start(&self, start: u64, end: u64, blockable: bool) -> Result {
        let mut m = if blockable {
            self.mmu.lock()
        } else {
            self.mmu.try_lock().ok_or(EAGAIN)?
        };
        self.mmu_invalidating.fetch_add(1, Ordering::SeqCst);
        let mut flush = false;
        let mut i = 0;
        while let Some(slot) = m.slots().get(i) {
            if let Some((a, b)) = hva_range_to_gfns(slot, start, end) {
                flush |= m.tdp.zap(a, b);
            }
            i += 1;
        }
        drop(m);
        if flush {
            self.flush_remote_tlbs();
        }
        Ok(())
    }

    /// The invalidation that began last has ended.
    pub(crate) fn invalidate_end(&self) {
        self.mmu_seq.fetch_add(1, Ordering::SeqCst);
        self.mmu_invalidating.fetch_sub(1, Ordering::SeqCst);
    }

    /// The VMM's address space goes away: drop every translation.
    pub(crate) fn zap_all(&self) {
        let flush = self.mmu.lock().tdp.zap_all();
        if flush {
            self.flush_remote_tlbs();
        }
    }

    // --- memory slots ------------------------------------------------------

    /// `KVM_SET_USER_MEMORY_REGION(2)`.
    fn set_memory_region(&self, req: Request) -> Result {
        let _serial = self.lock.lock();
        let change = {
            let m = self.mmu.lock();
            memslots::plan(&req, m.slots().iter().map(|s| &s.desc), task_size_max())
        }
        .map_err(|e| match e {
            SlotError::Invalid => EINVAL,
            SlotError::Exists => EEXIST,
        })?;
        let (old, new) = match change {
            Change::None => return Ok(()),
            Change::Create(new) => (None, Some(new)),
            Change::Delete(old) => (Some(old), None),
            Change::Move { old, new } | Change::Flags { old, new } => (Some(old), Some(new)),
        };
        if let Some(n) = &new {
            if n.end_gfn() - 1 > self.max_gfn {
                return Err(EINVAL);
            }
        }
        let initially_set = self.manual_protect() && self.initially_set();
        let new_slot = new.map(|n| Slot::new(n, initially_set)).transpose()?;
        let mut m = self.mmu.lock();
        m.reserve_slot()?;
        m.replace_slot(old.map(|o| o.id), new_slot.clone())?;
        self.mmu_seq.fetch_add(1, Ordering::SeqCst);
        let mut flush = false;
        if let Some(o) = old {
            let moved = new.map_or(true, |n| n.base_gfn != o.base_gfn);
            if moved {
                flush |= m.tdp.zap(o.base_gfn, o.end_gfn());
            }
        }
        if let Some(s) = &new_slot {
            if s.logging() && !initially_set {
                // Writes must fault from now on, to be logged (with
                // INITIALLY_SET, from the first KVM_CLEAR_DIRTY_LOG on).
                flush |= m.tdp.write_protect(s.desc.base_gfn, s.desc.end_gfn());
            }
        }
        drop(m);
        if flush {
            self.flush_remote_tlbs();
        }
        Ok(())
    }

    /// `KVM_GET_DIRTY_LOG`: copies and clears the slot's dirty bitmap and
    /// write-protects the pages that were dirty, so new writes are logged.
    fn get_dirty_log(&self, log: &uapi::kvm_dirty_log) -> Result {
        let (as_id, id) = (log.slot >> 16, log.slot & 0xffff);
        if as_id >= memslots::ADDRESS_SPACE_NUM || id >= memslots::USER_MEM_SLOTS {
            return Err(EINVAL);
        }
        let _serial = self.lock.lock();
        let slot = self.mmu.lock().slot_by_id(id).cloned().ok_or(ENOENT)?;
        if !slot.logging() {
            return Err(ENOENT);
        }
        let words = slot.dirty_words();
        let mut buf = KVec::with_capacity(words.len(), GFP_KERNEL_ACCOUNT)?;
        let mut flush = false;
        if self.manual_protect() {
            // Userspace clears (and re-protects) with KVM_CLEAR_DIRTY_LOG.
            for w in words.iter() {
                buf.push(w.load(Ordering::SeqCst), GFP_KERNEL_ACCOUNT)?;
            }
        } else {
            let mut m = self.mmu.lock();
            for (i, w) in words.iter().enumerate() {
                let mask = w.swap(0, Ordering::SeqCst);
                buf.push(mask, GFP_KERNEL_ACCOUNT)?;
                let mut bits = mask;
                while bits != 0 {
                    let b = bits.trailing_zeros() as u64;
                    bits &= bits - 1;
                    let gfn = slot.desc.base_gfn + i as u64 * 64 + b;
                    flush |= m.tdp.write_protect(gfn, gfn + 1);
                }
            }
        }
        if flush {
            self.flush_remote_tlbs();
        }
        // SAFETY: `dirty_bitmap` is a union of a pointer and padding; the
        // pointer is what userspace filled in.
        let ptr = unsafe { log.__bindgen_anon_1.dirty_bitmap } as usize;
        let mut w = UserSlice::new(UserPtr::from_addr(ptr), slot.bitmap_bytes()).writer();
        for word in buf.iter() {
            w.write_slice(&word.to_ne_bytes())?;
        }
        Ok(())
    }

    // --- nested page faults --------------------------------------------------

    /// Resolves a nested page fault at `gpa`: maps the page and returns
    /// `Ok(true)`, or `Ok(false)` when the access is MMIO (no slot, or a
    /// write to a read-only slot).
    pub(crate) fn tdp_fault(&self, gpa: u64, write: bool) -> Result<bool> {
        let gfn = gpa >> 12;
        loop {
            let seq = self.mmu_seq.load(Ordering::SeqCst);
            let slot = match self.mmu.lock().slot_for_gfn(gfn) {
                Some(s) => s.clone(),
                None => return Ok(false),
            };
            if write && slot.readonly() {
                return Ok(false);
            }
            let hva = slot.desc.gfn_to_hva(gfn).ok_or(EFAULT)?;
            // Map writable whenever the slot and the host page allow, and
            // log it as dirty if so, like upstream (it does not wait for a
            // write fault; pages write-protected by GET_DIRTY_LOG stay
            // mapped read-only until the guest writes them).
            let want_write = write || !slot.readonly();
            let (page, writable) = match pin_page(hva, want_write) {
                Ok(p) => (p, want_write),
                Err(_) if !write && want_write => (pin_page(hva, false)?, false),
                Err(e) => return Err(e),
            };
            let mut m = self.mmu.lock();
            if self.mmu_invalidating.load(Ordering::SeqCst) != 0
                || self.mmu_seq.load(Ordering::SeqCst) != seq
            {
                drop(m);
                drop(page);
                // SAFETY: plain scheduling point, no locks held.
                unsafe { rb::rkvm_cond_resched() };
                continue;
            }
            let flush = m.tdp.map(gfn, page.pfn(), writable)?;
            if writable {
                slot.mark_dirty(gfn);
            }
            drop(m);
            if flush {
                self.flush_remote_tlbs();
            }
            return Ok(true);
        }
    }

    // --- guest memory from the kernel --------------------------------------

    /// The userspace address and slot of guest physical `gpa`, if RAM.
    pub(crate) fn gpa_to_hva(&self, gpa: u64, write: bool) -> Option<(u64, Arc<Slot>)> {
        let m = self.mmu.lock();
        let slot = m.slot_for_gfn(gpa >> 12)?;
        if write && slot.readonly() {
            return None;
        }
        let hva = slot.desc.gfn_to_hva(gpa >> 12)? + (gpa & 0xfff);
        Some((hva, slot.clone()))
    }

    /// Reads guest RAM at `gpa` (within one page). `Ok(false)`: not RAM.
    pub(crate) fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<bool> {
        let Some((hva, _)) = self.gpa_to_hva(gpa, false) else { return Ok(false) };
        UserSlice::new(UserPtr::from_addr(hva as usize), buf.len()).reader().read_slice(buf)?;
        Ok(true)
    }

    /// Writes guest RAM at `gpa` (within one page), logging the page.
    /// `Ok(false)`: not writable RAM (MMIO or a read-only slot).
    pub(crate) fn write_guest(&self, gpa: u64, buf: &[u8]) -> Result<bool> {
        let Some((hva, slot)) = self.gpa_to_hva(gpa, true) else { return Ok(false) };
        UserSlice::new(UserPtr::from_addr(hva as usize), buf.len()).writer().write_slice(buf)?;
        slot.mark_dirty(gpa >> 12);
        Ok(true)
    }

    // --- vCPUs -------------------------------------------------------------

    /// `KVM_CREATE_VCPU`.
    fn create_vcpu(self: ArcBorrow<'_, Self>, id: usize) -> Result<isize> {
        let max = self.max_vcpu_ids.load(Ordering::Relaxed);
        if id >= MAX_VCPU_IDS as usize || (max != 0 && id >= max as usize) {
            return Err(EINVAL);
        }
        let _serial = self.lock.lock();
        let index = {
            let v = self.vcpus.lock();
            if v.iter().any(|c| c.id == id as u32) {
                return Err(EEXIST);
            }
            if v.len() >= MAX_VCPUS {
                return Err(EINVAL);
            }
            v.len()
        };
        let vcpu = Vcpu::new(&self, id as u32, index)?;
        self.vcpus.lock().push_within_capacity(vcpu.clone()).map_err(|_| ENOMEM)?;
        let vm: Arc<Vm> = self.into();
        match vcpu::open_fd(vm, vcpu.clone()) {
            Ok(fd) => Ok(fd as isize),
            Err(e) => {
                let mut v = self.vcpus.lock();
                if let Some(i) = v.iter().position(|c| Arc::ptr_eq(c, &vcpu)) {
                    let _ = v.remove(i);
                }
                Err(e)
            }
        }
    }

    /// The page behind vCPU mmap page `pgoff`, if it is the coalesced
    /// MMIO ring (`KVM_COALESCED_MMIO_PAGE_OFFSET`).
    pub(crate) fn coalesced_mmap_page(&self, pgoff: usize) -> Option<&Page> {
        (pgoff == uapi::KVM_COALESCED_MMIO_PAGE_OFFSET as usize).then_some(&self.coalesced)
    }

    /// The coalesced-MMIO ring page.
    pub(crate) fn coalesced_page(&self) -> &Page {
        &self.coalesced
    }

    /// Whether hypercall `nr` exits to userspace (KVM_CAP_EXIT_HYPERCALL).
    pub(crate) fn hypercall_exit_enabled(&self, nr: u64) -> bool {
        nr < 64 && self.hypercall_exit.load(Ordering::Relaxed) & (1 << nr) != 0
    }

    /// kvmclock at host boot-time `boot_ns`.
    pub(crate) fn kvmclock_at(&self, boot_ns: u64) -> u64 {
        (boot_ns as i64).wrapping_add(self.kvmclock_offset.load(Ordering::SeqCst)) as u64
    }

    /// The vCPU id of the BSP (KVM_SET_BOOT_CPU_ID; 0 by default).
    pub(crate) fn bsp_id(&self) -> u32 {
        self.bsp_id.load(Ordering::Relaxed)
    }

    /// KVM_SET_BOOT_CPU_ID: only before any vCPU exists (EBUSY after).
    fn set_boot_cpu_id(&self, id: usize) -> Result {
        let _serial = self.lock.lock();
        if !self.vcpus.lock().is_empty() {
            return Err(EBUSY);
        }
        // Upstream's bounds are inclusive.
        let max = self.max_vcpu_ids.load(Ordering::Relaxed);
        if id > MAX_VCPU_IDS as usize || (max != 0 && id > max as usize) {
            return Err(EINVAL);
        }
        self.bsp_id.store(id as u32, Ordering::Relaxed);
        Ok(())
    }

    /// KVM_GET_CLOCK.
    fn get_clock(&self, arg: usize) -> Result {
        let mut d = uapi::kvm_clock_data::default();
        d.clock = self.kvmclock_at(boottime_ns());
        // SAFETY: plain clock reads.
        d.realtime = unsafe { rb::rkvm_ktime_get_real_ns() };
        // SAFETY: reads the TSC.
        d.host_tsc = unsafe { rb::rkvm_rdtsc() };
        d.flags = uapi::KVM_CLOCK_REALTIME | uapi::KVM_CLOCK_HOST_TSC;
        write_arg(arg, &d)
    }

    /// KVM_SET_CLOCK: flags as KVM_GET_CLOCK returns them are accepted;
    /// with KVM_CLOCK_REALTIME the time since `realtime` is added.
    fn set_clock(&self, arg: usize) -> Result {
        let mut d: uapi::kvm_clock_data = read_arg(arg)?;
        if d.flags & !caps::CLOCK_VALID_FLAGS != 0 {
            return Err(EINVAL);
        }
        if d.flags & uapi::KVM_CLOCK_REALTIME != 0 {
            // SAFETY: plain clock read.
            let now = unsafe { rb::rkvm_ktime_get_real_ns() };
            if now > d.realtime {
                d.clock = d.clock.wrapping_add(now - d.realtime);
            }
        }
        self.kvmclock_offset.store((d.clock as i64).wrapping_sub(boottime_ns() as i64), Ordering::SeqCst);
        self.clock_gen.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// KVM_ENABLE_CAP on the VM.
    fn enable_cap(&self, arg: usize) -> Result {
        let c: uapi::kvm_enable_cap = read_arg(arg)?;
        if c.flags != 0 {
            return Err(EINVAL);
        }
        match c.cap {
            uapi::KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 => {
                let allowed = if c.args[0] & u64::from(uapi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0 {
                    caps::MANUAL_DIRTY_LOG_CAPS
                } else {
                    u64::from(uapi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)
                };
                if c.args[0] & !allowed != 0 {
                    return Err(EINVAL);
                }
                self.manual_dirty_log.store(c.args[0], Ordering::SeqCst);
                Ok(())
            }
            // Lowers the vCPU id limit, once (upstream: EINVAL below the
            // BSP's id or when already set to another value).
            uapi::KVM_CAP_MAX_VCPU_ID => {
                let n = c.args[0];
                if n > u64::from(MAX_VCPU_IDS) || u64::from(self.bsp_id()) > n {
                    return Err(EINVAL);
                }
                let _serial = self.lock.lock();
                let cur = self.max_vcpu_ids.load(Ordering::Relaxed);
                if u64::from(cur) == n {
                    Ok(())
                } else if cur == 0 {
                    self.max_vcpu_ids.store(n as u32, Ordering::Relaxed);
                    Ok(())
                } else {
                    Err(EINVAL)
                }
            }
            uapi::KVM_CAP_SPLIT_IRQCHIP => self.enable_split_irqchip(c.args[0]),
            uapi::KVM_CAP_EXIT_HYPERCALL => {
                if c.args[0] & !caps::EXIT_HYPERCALL_VALID != 0 {
                    return Err(EINVAL);
                }
                self.hypercall_exit.store(c.args[0], Ordering::SeqCst);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn manual_protect(&self) -> bool {
        self.manual_dirty_log.load(Ordering::SeqCst) & u64::from(uapi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) != 0
    }

    fn initially_set(&self) -> bool {
        self.manual_dirty_log.load(Ordering::SeqCst) & u64::from(uapi::KVM_DIRTY_LOG_INITIALLY_SET) != 0
    }

    /// KVM_CLEAR_DIRTY_LOG: clears the given bits and write-protects those
    /// pages again (manual-protect mode).
    fn clear_dirty_log(&self, arg: usize) -> Result {
        let log: uapi::kvm_clear_dirty_log = read_arg(arg)?;
        let (as_id, id) = (log.slot >> 16, log.slot & 0xffff);
        if as_id >= memslots::ADDRESS_SPACE_NUM || id >= memslots::USER_MEM_SLOTS {
            return Err(EINVAL);
        }
        if log.first_page & 63 != 0 {
            return Err(EINVAL);
        }
        let _serial = self.lock.lock();
        let slot = self.mmu.lock().slot_by_id(id).cloned().ok_or(ENOENT)?;
        if !slot.logging() {
            return Err(ENOENT);
        }
        let npages = slot.desc.npages;
        let (first, num) = (log.first_page, u64::from(log.num_pages));
        if first > npages || num > npages - first || (num < npages - first && num & 63 != 0) {
            return Err(EINVAL);
        }
        let words = num.div_ceil(64) as usize;
        // SAFETY: union of the userspace pointer and padding.
        let ptr = unsafe { log.__bindgen_anon_1.dirty_bitmap } as usize;
        let mut r = UserSlice::new(UserPtr::from_addr(ptr), words * 8).reader();
        let mut flush = false;
        let dirty = slot.dirty_words();
        let mut m = self.mmu.lock();
        for i in 0..words {
            let mut b = [0u8; 8];
            r.read_slice(&mut b)?;
            let user = u64::from_ne_bytes(b);
            let Some(w) = dirty.get((first / 64) as usize + i) else { break };
            let mut cleared = w.fetch_and(!user, Ordering::SeqCst) & user;
            while cleared != 0 {
                let bit = cleared.trailing_zeros() as u64;
                cleared &= cleared - 1;
                let gfn = slot.desc.base_gfn + first + i as u64 * 64 + bit;
                flush |= m.tdp.write_protect(gfn, gfn + 1);
            }
        }
        drop(m);
        if flush {
            self.flush_remote_tlbs();
        }
        Ok(())
    }

    /// Number of vCPUs.
    pub(crate) fn nr_vcpus(&self) -> usize {
        self.vcpus.lock().len()
    }
}

#[pinned_drop]
impl PinnedDrop for Vm {
    fn drop(self: Pin<&mut Self>) {
        // irqfds point at this VM: none may fire once it starts going.
        self.release_irqfds();
        if self.notifier_registered.load(Ordering::SeqCst) {
            // SAFETY: registered on `mm` in `create`; after this returns no
            // callback runs, so the rest of `self` may be dropped.
            unsafe { bindings::mmu_notifier_unregister(self.notifier.get(), self.mm.as_raw()) };
        }
    }
}

/// Guest frames of `slot` backed by userspace `[start, end)`.
fn hva_range_to_gfns(slot: &Slot, start: u64, end: u64) -> Option<(u64, u64)> {
    let d = &slot.desc;
    let s_end = d.hva + (d.npages << 12);
    let lo = start.max(d.hva);
    let hi = end.min(s_end);
    if lo >= hi {
        return None;
    }
    Some((d.base_gfn + ((lo - d.hva) >> 12), d.base_gfn + ((hi - d.hva + 0xfff) >> 12)))
}

/// `TASK_SIZE_MAX`: the end of user addresses.
fn task_size_max() -> u64 {
    // SAFETY: reads a constant of the running kernel.
    unsafe { rb::rkvm_task_size_max() }
}

/// A page of the VMM's memory, pinned by `get_user_pages_fast`.
pub(crate) struct PinnedPage(*mut bindings::page);

impl PinnedPage {
    /// Host frame number.
    pub(crate) fn pfn(&self) -> u64 {
        // SAFETY: `self.0` is a page we hold a reference on.
        unsafe { rb::rkvm_page_to_phys(self.0) >> 12 }
    }
}

impl Drop for PinnedPage {
    fn drop(&mut self) {
        // SAFETY: drops the reference taken by get_user_pages_fast.
        unsafe { rb::rkvm_put_page(self.0) };
    }
}

/// Takes a reference on the page at userspace address `hva` of the
/// current process, faulting it in (for writing if `write`).
fn pin_page(hva: u64, write: bool) -> Result<PinnedPage> {
    let mut page: *mut bindings::page = core::ptr::null_mut();
    let flags = if write { bindings::FOLL_WRITE } else { 0 };
    // SAFETY: one page pointer slot; the current task's mm is the VM's
    // (checked by every ioctl that gets here).
    let n = unsafe { bindings::get_user_pages_fast(hva as _, 1, flags as _, &mut page) };
    if n == 1 && !page.is_null() {
        Ok(PinnedPage(page))
    } else {
        Err(EFAULT)
    }
}

/// `KVM_CREATE_VM`: returns the new VM's fd.
pub(crate) fn create(machine_type: usize) -> Result<isize> {
    if machine_type != KVM_X86_DEFAULT_VM {
        return Err(EINVAL);
    }
    let vendor = VendorRef::get().inspect_err(|_| {
        pr_notice!("KVM_CREATE_VM: no vendor module loaded (load kvm-amd or kvm-intel)\n");
    })?;
    let task = kernel::current!();
    let mm: ARef<Mm> = {
        let mm = task.mm().ok_or(EINVAL)?;
        let mm: &Mm = mm;
        mm.into()
    };
    let max_gfn = tdp::MAX_GFN.min((1u64 << (host_maxphyaddr() - 12)) - 1);
    let vm = Arc::pin_init(
        try_pin_init!(Vm {
            vendor,
            mm,
            notifier <- Opaque::ffi_init(|slot: *mut bindings::mmu_notifier| {
                let mut n: bindings::mmu_notifier = pin_init::zeroed();
                n.ops = &notifier::OPS;
                // SAFETY: `slot` is valid for writes.
                unsafe { slot.write(n) };
            }),
            notifier_registered: AtomicBool::new(false),
            mmu <- new_mutex!(Mmu::new()?),
            mmu_seq: AtomicU64::new(0),
            mmu_invalidating: AtomicU32::new(0),
            lock <- new_mutex!(()),
            vcpus <- new_spinlock_irq!(KVec::with_capacity(MAX_VCPUS, GFP_KERNEL_ACCOUNT)?),
            chips <- new_spinlock_irq!(None),
            irqchip_mode: AtomicU8::new(crate::x86::irq::chips::IRQCHIP_NONE),
            max_gfn,
            coalesced: Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?,
            kvmclock_offset: AtomicI64::new(0i64.wrapping_sub(boottime_ns() as i64)),
            clock_gen: AtomicU64::new(0),
            tsc_sync <- new_spinlock!(crate::pvclock::TscSync::new()),
            bsp_id: AtomicU32::new(0),
            max_vcpu_ids: AtomicU32::new(0),
            manual_dirty_log: AtomicU64::new(0),
            hypercall_exit: AtomicU64::new(0),
            irqfds <- new_mutex!(KVec::new()),
            ioeventfds <- new_mutex!(KVec::new()),
            coalesced_zones <- new_mutex!(KVec::new()),
            coalesced_lock <- new_spinlock!(()),
        }),
        GFP_KERNEL_ACCOUNT,
    )?;
    // SAFETY: the notifier is initialised and pinned inside the `Arc`;
    // `Vm`'s drop unregisters it before the memory goes away.
    kernel::error::to_result(unsafe {
        bindings::mmu_notifier_register(vm.notifier.get(), vm.mm.as_raw())
    })?;
    vm.notifier_registered.store(true, Ordering::SeqCst);
    Ok(file::new_anon_fd::<VmFile>(c"kvm-vm", vm)? as isize)
}

/// The host's physical address width (CPUID 0x80000008 EAX[7:0]).
fn host_maxphyaddr() -> u64 {
    let r = core::arch::x86_64::__cpuid(0x8000_0008);
    u64::from(r.eax & 0xff).clamp(36, 52)
}

struct VmFile;

/// Reads a `T` from userspace `arg`.
pub(crate) fn read_arg<T: kernel::transmute::FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>()).reader().read()
}

/// Writes `v` to userspace `arg`.
pub(crate) fn write_arg<T: kernel::transmute::AsBytes>(arg: usize, v: &T) -> Result {
    UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<T>()).writer().write(v)
}

#[vtable]
impl FileOps for VmFile {
    type Ptr = Arc<Vm>;

    fn ioctl(vm: ArcBorrow<'_, Vm>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        vm.check_mm()?;
        match cmd {
            KVM_CHECK_EXTENSION => Ok(caps::check(Some(&vm), arg)),
            KVM_CREATE_VCPU => vm.create_vcpu(arg),
            KVM_SET_USER_MEMORY_REGION => {
                let r: uapi::kvm_userspace_memory_region = read_arg(arg)?;
                vm.set_memory_region(Request {
                    slot: r.slot,
                    flags: r.flags,
                    guest_phys_addr: r.guest_phys_addr,
                    memory_size: r.memory_size,
                    userspace_addr: r.userspace_addr,
                })
                .map(|()| 0)
            }
            KVM_SET_USER_MEMORY_REGION2 => {
                let r: uapi::kvm_userspace_memory_region2 = read_arg(arg)?;
                vm.set_memory_region(Request {
                    slot: r.slot,
                    flags: r.flags,
                    guest_phys_addr: r.guest_phys_addr,
                    memory_size: r.memory_size,
                    userspace_addr: r.userspace_addr,
                })
                .map(|()| 0)
            }
            KVM_GET_DIRTY_LOG => {
                let log: uapi::kvm_dirty_log = read_arg(arg)?;
                vm.get_dirty_log(&log).map(|()| 0)
            }
            KVM_CREATE_IRQCHIP => vm.create_irqchip().map(|()| 0),
            KVM_IRQ_LINE | KVM_IRQ_LINE_STATUS => {
                let mut l: uapi::kvm_irq_level = read_arg(arg)?;
                // SAFETY: `irq` and `status` share the first word; the
                // input is the GSI.
                let gsi = unsafe { l.__bindgen_anon_1.irq };
                let status = vm.set_gsi(gsi, l.level != 0, crate::x86::irq::chips::USERSPACE_SOURCE, cmd == KVM_IRQ_LINE_STATUS)?;
                if cmd == KVM_IRQ_LINE_STATUS {
                    l.__bindgen_anon_1.status = status;
                    write_arg(arg, &l)?;
                }
                Ok(0)
            }
            KVM_GET_IRQCHIP => vm.get_irqchip(arg).map(|()| 0),
            KVM_SET_IRQCHIP => vm.set_irqchip(arg).map(|()| 0),
            KVM_SET_GSI_ROUTING => vm.set_gsi_routing(arg).map(|()| 0),
            KVM_SIGNAL_MSI => vm.signal_msi(arg),
            KVM_CREATE_PIT2 => vm.create_pit(arg).map(|()| 0),
            KVM_GET_PIT2 => vm.get_pit2(arg).map(|()| 0),
            KVM_SET_PIT2 => vm.set_pit2(arg).map(|()| 0),
            KVM_IRQFD => vm.irqfd(arg).map(|()| 0),
            KVM_IOEVENTFD => vm.ioeventfd(arg).map(|()| 0),
            KVM_REGISTER_COALESCED_MMIO => vm.coalesced_zone(arg, true).map(|()| 0),
            KVM_UNREGISTER_COALESCED_MMIO => vm.coalesced_zone(arg, false).map(|()| 0),
            KVM_GET_CLOCK => vm.get_clock(arg).map(|()| 0),
            KVM_SET_BOOT_CPU_ID => vm.set_boot_cpu_id(arg).map(|()| 0),
            KVM_SET_CLOCK => vm.set_clock(arg).map(|()| 0),
            KVM_ENABLE_CAP => vm.enable_cap(arg).map(|()| 0),
            KVM_CLEAR_DIRTY_LOG => vm.clear_dirty_log(arg).map(|()| 0),
            // SVM needs neither (they are VMX real-mode helpers), but
            // userspace sets them unconditionally; accept like upstream.
            KVM_SET_TSS_ADDR => Ok(0),
            KVM_SET_IDENTITY_MAP_ADDR => {
                if vm.nr_vcpus() != 0 {
                    return Err(EINVAL);
                }
                let _addr: u64 = read_arg(arg)?;
                Ok(0)
            }
            // Upstream's kvm_arch_vm_ioctl() ends in ENOTTY.
            _ => Err(ENOTTY),
        }
    }
}

/// The clock kvmclock counts from: boot time, in ns.
fn boottime_ns() -> u64 {
    // SAFETY: plain clock read.
    unsafe { rb::rkvm_ktime_get_boottime_ns() }
}
