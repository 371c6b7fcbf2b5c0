// SPDX-License-Identifier: GPL-2.0
//! A VM: the owner of its parts (MMU and slots, vCPUs, eventfds, coalesced
//! MMIO, dirty logging, the x86 part) and its file descriptor.
//!
//! The VM lives as long as its fd, its vCPU fds and its irqfds (each holds
//! an `Arc<Vm>`; irqfds are dropped when the VM fd is released, as
//! upstream); the vCPUs live as long as the VM.
//!
//! Locks of a VM, outermost first (see docs/architecture.md):
//! `slots_lock` → `Mmu::inner`; `slots_lock` → `Vcpus::list`;
//! `Irqchip::chips` → `Vcpus::list` → a vCPU's LAPIC (all IRQ-safe);
//! `Irqfds::list`, `Ioeventfds::list`, `Coalesced::zones` → `ring_lock`
//! are leaves taken alone.

use crate::{
    ext::{
        file::{self, FileOps},
        mmu_notifier::{MmuNotifier, MmuNotifierOps},
        uaccess::{read_arg, task_size_max},
        uapi,
    },
    impl_has_mmu_notifier,
    memslots::{Change, Request, SlotError},
    virt::{
        caps,
        coalesced_mmio::{self, Coalesced},
        debugfs::{VmDebugfs, VmStatsTree},
        dirty_log::{self, DirtyLog},
        eventfd::{self, Ioeventfds, Irqfds},
        guest_memory::Slot,
        halt_poll::HaltPollLimit,
        ioctl::*,
        stats::{self, StatsSource},
        vcpu::{self, Vcpus},
    },
    x86::{self, mmu::Mmu, stats::VmStats, vendor::VendorRef, vm_arch::VmArch},
};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::{
    fs::File,
    mm::Mm,
    new_mutex, new_work,
    prelude::*,
    sync::{aref::ARef, Arc, ArcBorrow, Mutex, MutexGuard},
    workqueue::{impl_has_work, Work},
};

/// vCPU ids are below this (`KVM_CAP_MAX_VCPU_ID`).
pub(crate) const MAX_VCPU_IDS: u32 = 4096;

/// A virtual machine.
#[pin_data(PinnedDrop)]
pub(crate) struct Vm {
    /// Our hold on the VMM's address space (ioctls from other processes
    /// get `EIO`) and the notifier that keeps the MMU coherent with it.
    #[pin]
    notifier: MmuNotifier<Vm>,
    /// The vendor backend, pinned loaded while the VM exists.
    vendor: VendorRef,
    /// Serialises memslot changes, dirty-log ioctls and vCPU creation
    /// (upstream's `slots_lock`). Outermost VM lock.
    #[pin]
    slots_lock: Mutex<()>,
    #[pin]
    vcpus: Vcpus,
    #[pin]
    mmu: Mmu,
    dirty_log: DirtyLog,
    #[pin]
    irqfds: Irqfds,
    #[pin]
    ioeventfds: Ioeventfds,
    #[pin]
    coalesced: Coalesced,
    /// KVM_CAP_MAX_VCPU_ID as enabled (0: not, ids up to MAX_VCPU_IDS).
    /// Written under `slots_lock`.
    max_vcpu_ids: AtomicU32,
    /// How long a halted vCPU may poll (KVM_CAP_HALT_POLL).
    halt_poll: HaltPollLimit,
    /// What upstream keeps in `struct kvm_arch`.
    #[pin]
    arch: VmArch,
    /// Statistics (with the vCPUs'), and their id ("kvm-TID", TID the
    /// creating thread).
    stats: Arc<VmStatsTree>,
    stats_id: KVec<u8>,
    /// The `PID-FD` debugfs directory. Taken under `slots_lock`.
    #[pin]
    debugfs: Mutex<Option<VmDebugfs>>,
    /// Removes irqfds whose eventfd hung up (virt/kvm/eventfd.rs queues
    /// it on the cleanup workqueue; the queued `Arc<Vm>` keeps the VM).
    #[pin]
    irqfd_reaper: Work<Vm>,
}

impl_has_mmu_notifier!(Vm, notifier);
impl_has_work! {
    impl HasWork<Self> for Vm { self.irqfd_reaper }
}

impl MmuNotifierOps for Vm {
    fn invalidate_range_start(&self, start: u64, end: u64, blockable: bool) -> Result {
        self.mmu.invalidate_start(self, start, end, blockable)
    }

    fn invalidate_range_end(&self, _start: u64, _end: u64) {
        self.mmu.invalidate_end();
    }

    fn release(&self) {
        self.mmu.zap_all(self);
    }
}

impl Vm {
    /// The vCPUs.
    pub(crate) fn vcpus(&self) -> &Vcpus {
        &self.vcpus
    }

    /// The MMU: slots, TDP tables, guest memory.
    pub(crate) fn mmu(&self) -> &Mmu {
        &self.mmu
    }

    /// The dirty-logging mode.
    pub(crate) fn dirty_log(&self) -> &DirtyLog {
        &self.dirty_log
    }

    /// The irqfds.
    pub(crate) fn irqfds(&self) -> &Irqfds {
        &self.irqfds
    }

    /// The ioeventfds.
    pub(crate) fn ioeventfds(&self) -> &Ioeventfds {
        &self.ioeventfds
    }

    /// Coalesced MMIO/PIO zones and ring.
    pub(crate) fn coalesced(&self) -> &Coalesced {
        &self.coalesced
    }

    /// The x86 part.
    pub(crate) fn arch(&self) -> &VmArch {
        &self.arch
    }

    /// The VM's halt-polling limit.
    pub(crate) fn halt_poll_limit(&self) -> &HaltPollLimit {
        &self.halt_poll
    }

    /// Makes every vCPU flush its guest TLB before it next enters the
    /// guest, and waits until none still runs with stale translations.
    pub(crate) fn flush_remote_tlbs(&self) {
        self.stats().remote_tlb_flush_requests.inc();
        self.stats().remote_tlb_flush.inc();
        self.vcpus.flush_tlbs();
    }

    /// The statistics.
    pub(crate) fn stats(&self) -> &VmStats {
        self.stats.vm()
    }

    /// The statistics of the VM and its vCPUs.
    pub(crate) fn stats_tree(&self) -> &Arc<VmStatsTree> {
        &self.stats
    }

    /// The vendor backend.
    pub(crate) fn vendor(&self) -> &VendorRef {
        &self.vendor
    }

    /// Takes the slots lock (see [`Vm::slots_lock`]).
    pub(crate) fn lock_slots(&self) -> MutexGuard<'_, ()> {
        self.slots_lock.lock()
    }

    /// Upstream refuses VM and vCPU ioctls from any process but the VM's
    /// creator with `EIO`: the VM's memory is that process's memory.
    pub(crate) fn check_mm(&self) -> Result {
        if self.notifier.is_current_mm() {
            Ok(())
        } else {
            Err(EIO)
        }
    }

    /// The vCPU id limit (KVM_CAP_MAX_VCPU_ID; inclusive `true` for the
    /// BSP id's check, exclusive for vCPU ids, as upstream).
    fn vcpu_id_ok(&self, id: usize, inclusive: bool) -> bool {
        let max = self.max_vcpu_ids.load(Ordering::Relaxed) as usize;
        let limit = if max != 0 { max } else { MAX_VCPU_IDS as usize };
        if inclusive {
            id <= limit && id <= MAX_VCPU_IDS as usize
        } else {
            id < limit && id < MAX_VCPU_IDS as usize
        }
    }

    /// `KVM_SET_USER_MEMORY_REGION(2)`.
    fn set_user_memory_region(&self, req: Request) -> Result {
        let _slots = self.lock_slots();
        let change = self.mmu.plan(&req, task_size_max()).map_err(|e| match e {
            SlotError::Invalid => EINVAL,
            SlotError::Exists => EEXIST,
        })?;
        let (old, new) = match change {
            Change::None => return Ok(()),
            Change::Create(new) => (None, Some(new)),
            Change::Delete(old) => (Some(old), None),
            Change::Move { old, new } | Change::Flags { old, new } => (Some(old), Some(new)),
        };
        if new.as_ref().is_some_and(|n| !self.mmu.fits(n)) {
            return Err(EINVAL);
        }
        let initially_set = self.dirty_log.initially_set();
        let new_slot = new.map(|n| Slot::new(n, initially_set)).transpose()?;
        // A logging slot is write-protected from the start (with
        // INITIALLY_SET from the first KVM_CLEAR_DIRTY_LOG on).
        let protect = new_slot.as_ref().is_some_and(|s| s.logging()) && !initially_set;
        self.mmu.set_slot(self, old, new_slot, protect)
    }

    /// `KVM_CREATE_VCPU`.
    #[inline(never)]
    fn create_vcpu(self: ArcBorrow<'_, Self>, id: usize) -> Result<isize> {
        if !self.vcpu_id_ok(id, false) {
            return Err(EINVAL);
        }
        let _slots = self.lock_slots();
        let index = self.vcpus.check_new_id(id as u32)?;
        let vcpu = vcpu::Vcpu::new(&self, id as u32, index)?;
        self.vcpus.push(vcpu.clone())?;
        let vm: Arc<Vm> = self.into();
        let fd = vcpu::open_fd(vm, vcpu.clone()).inspect_err(|_| {
            self.vcpus.remove(&vcpu);
            self.stats.remove_vcpu(vcpu.stats());
        })?;
        if let Some(d) = &mut *self.debugfs.lock() {
            // Best effort, as upstream's kvm_create_vcpu_debugfs().
            d.add_vcpu(id as u32, vcpu.run_pid()).ok();
        }
        Ok(fd as isize)
    }

    /// KVM_ENABLE_CAP on the VM.
    fn enable_cap(&self, arg: usize) -> Result {
        let c: uapi::kvm_enable_cap = read_arg(arg)?;
        if c.flags != 0 {
            return Err(EINVAL);
        }
        match c.cap {
            uapi::KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 => {
                self.dirty_log.enable_manual_protect(c.args[0])
            }
            uapi::KVM_CAP_MAX_VCPU_ID => self.enable_max_vcpu_id(c.args[0]),
            uapi::KVM_CAP_HALT_POLL => self.halt_poll.enable_cap(&c),
            _ => x86::vm_arch::enable_cap(self, &c),
        }
    }

    /// KVM_CAP_MAX_VCPU_ID: lowers the vCPU id limit, once (upstream:
    /// EINVAL below the BSP's id or when already set to another value).
    fn enable_max_vcpu_id(&self, n: u64) -> Result {
        if n > u64::from(MAX_VCPU_IDS) || u64::from(self.arch.bsp_id()) > n {
            return Err(EINVAL);
        }
        let _slots = self.lock_slots();
        match self.max_vcpu_ids.load(Ordering::Relaxed) {
            cur if u64::from(cur) == n => Ok(()),
            0 => {
                self.max_vcpu_ids.store(n as u32, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    /// Whether `id` may be the BSP's (KVM_SET_BOOT_CPU_ID: inclusive bound).
    pub(crate) fn valid_bsp_id(&self, id: usize) -> bool {
        self.vcpu_id_ok(id, true)
    }
}

#[pinned_drop]
impl PinnedDrop for Vm {
    fn drop(self: Pin<&mut Self>) {
        // No callback may see the rest of `self` being dropped.
        self.notifier.unregister();
        self.stats.unlist();
    }
}

/// `KVM_CREATE_VM`: returns the new VM's fd.
pub(crate) fn create_vm(machine_type: usize) -> Result<isize> {
    // The only machine type supported here (KVM_CAP_VM_TYPES).
    if machine_type != uapi::KVM_X86_DEFAULT_VM as usize {
        return Err(EINVAL);
    }
    let vendor = VendorRef::get().inspect_err(|_| {
        // Any user with /dev/kvm can repeat this: rate-limited.
        if crate::ext::print::ratelimit_ok() {
            pr_notice!("KVM_CREATE_VM: no vendor module loaded (load kvm-amd or kvm-intel)\n");
        }
    })?;
    let mm: ARef<Mm> = {
        let task = kernel::current!();
        let mm: &Mm = task.mm().ok_or(EINVAL)?;
        mm.into()
    };
    let mmu = Mmu::new(
        vendor.ops().tdp_format(),
        crate::x86::mmu::shadow::wanted(vendor.ops()),
    )?;
    let tid = kernel::current!().pid();
    let stats_id = id_string(fmt!("kvm-{}", tid))?;
    let coalesced = Coalesced::new()?;
    // Entered in the global VM list: from here every error path unlists it
    // (the `inspect_err` below, then `Vm`'s drop), or it would stay listed.
    let stats = VmStatsTree::new()?;
    let vm_stats = stats.clone();
    let vm = Arc::pin_init(
        try_pin_init!(Vm {
            notifier <- MmuNotifier::new(mm),
            vendor,
            slots_lock <- new_mutex!(()),
            vcpus <- Vcpus::new()?,
            mmu <- mmu,
            dirty_log: DirtyLog::new(),
            irqfds <- Irqfds::new(),
            ioeventfds <- Ioeventfds::new(),
            coalesced <- coalesced,
            max_vcpu_ids: AtomicU32::new(0),
            halt_poll: HaltPollLimit::new(),
            arch <- VmArch::new(),
            stats: vm_stats,
            stats_id,
            debugfs <- new_mutex!(None),
            irqfd_reaper <- new_work!("Vm::irqfd_reaper"),
        }),
        GFP_KERNEL_ACCOUNT,
    )
    .inspect_err(|_| stats.unlist())?;
    vm.notifier.register()?;
    // The debugfs directory is named after the fd, made before the fd is
    // installed (as upstream's kvm_create_vm_debugfs()); best effort.
    let dir_vm = vm.clone();
    let fd = file::new_anon_fd_then::<VmFile>(c"kvm-vm", vm, kernel::bindings::O_RDWR, |fd| {
        *dir_vm.debugfs.lock() = VmDebugfs::new(&dir_vm.stats, tid, fd).ok().flatten();
    })?;
    Ok(fd as isize)
}

/// A VM fd.
struct VmFile;

/// Ok(0) for an ioctl that returns nothing else.
fn done(r: Result) -> Result<isize> {
    r.map(|()| 0)
}

#[vtable]
impl FileOps for VmFile {
    type Ptr = Arc<Vm>;

    /// The VM ioctl map (docs/architecture.md has the table).
    fn ioctl(vm: ArcBorrow<'_, Vm>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        vm.check_mm()?;
        match cmd {
            KVM_CHECK_EXTENSION => Ok(caps::check_extension(Some(&vm), arg)),
            KVM_CREATE_VCPU => vm.create_vcpu(arg),
            KVM_SET_USER_MEMORY_REGION => done(vm.set_user_memory_region(memory_region(arg)?)),
            KVM_SET_USER_MEMORY_REGION2 => done(vm.set_user_memory_region(memory_region2(arg)?)),
            KVM_GET_DIRTY_LOG => done(dirty_log::get_dirty_log(&vm, arg)),
            KVM_CLEAR_DIRTY_LOG => done(dirty_log::clear_dirty_log(&vm, arg)),
            KVM_ENABLE_CAP => done(vm.enable_cap(arg)),
            KVM_GET_STATS_FD => stats::get_stats_fd(vm.into()),
            KVM_IRQFD => done(eventfd::irqfd(vm, arg)),
            KVM_IOEVENTFD => done(eventfd::ioeventfd(&vm, arg)),
            KVM_REGISTER_COALESCED_MMIO => done(coalesced_mmio::register_coalesced_mmio(&vm, arg)),
            KVM_UNREGISTER_COALESCED_MMIO => {
                done(coalesced_mmio::unregister_coalesced_mmio(&vm, arg))
            }
            // Upstream's kvm_arch_vm_ioctl(), which ends in ENOTTY.
            _ => x86::vm_arch::vm_ioctl(&vm, cmd, arg),
        }
    }

    fn release(vm: Arc<Vm>) {
        // As upstream's kvm_vm_release(): irqfds go with the VM fd.
        vm.irqfds.release_all();
    }
}

impl StatsSource for Vm {
    type Block = VmStats;

    fn stats_id(&self) -> &[u8] {
        &self.stats_id
    }

    fn stats(&self) -> &VmStats {
        self.stats.vm()
    }
}

/// A stats id string (at most `stats::NAME_SIZE - 1` bytes are used).
pub(crate) fn id_string(args: core::fmt::Arguments<'_>) -> Result<KVec<u8>> {
    let s = kernel::str::CString::try_from_fmt(args)?;
    let mut v = KVec::new();
    v.extend_from_slice(s.to_bytes(), GFP_KERNEL_ACCOUNT)?;
    Ok(v)
}

/// The argument of KVM_SET_USER_MEMORY_REGION.
fn memory_region(arg: usize) -> Result<Request> {
    let r: uapi::kvm_userspace_memory_region = read_arg(arg)?;
    Ok(Request {
        slot: r.slot,
        flags: r.flags,
        guest_phys_addr: r.guest_phys_addr,
        memory_size: r.memory_size,
        userspace_addr: r.userspace_addr,
    })
}

/// The argument of KVM_SET_USER_MEMORY_REGION2 (the guest_memfd fields
/// are not supported: no flag allows them).
fn memory_region2(arg: usize) -> Result<Request> {
    let r: uapi::kvm_userspace_memory_region2 = read_arg(arg)?;
    Ok(Request {
        slot: r.slot,
        flags: r.flags,
        guest_phys_addr: r.guest_phys_addr,
        memory_size: r.memory_size,
        userspace_addr: r.userspace_addr,
    })
}
