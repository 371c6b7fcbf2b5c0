// SPDX-License-Identifier: GPL-2.0
//! A vCPU, the VM's list of them, its file descriptor and the vCPU ioctl
//! map.
//!
//! Every vCPU ioctl runs under the vCPU's mutex (upstream `vcpu->mutex`),
//! including KVM_RUN for its whole duration. Other threads reach a running
//! vCPU only through its [`VcpuKick`] (requests and kicks) and its LAPIC.

use crate::{
    ext::{
        file::{self, FileOps},
        uaccess::read_arg,
    },
    virt::{
        debugfs::RunPid,
        ioctl::*,
        kick::{VcpuKick, REQ_TLB_FLUSH},
        run_page::RunPage,
        stats::{self, StatsSource},
        vm::Vm,
    },
    x86::{self, irq::lapic::VcpuLapic, stats::VcpuStats, vcpu::VcpuState},
};
use kernel::{
    fs::File,
    mm::virt::VmaNew,
    new_mutex, new_spinlock_irq,
    page::PAGE_SIZE,
    prelude::*,
    str::CString,
    sync::{Arc, ArcBorrow, Mutex, MutexGuard, SpinLockIrq, SpinLockIrqGuard},
};

/// Most vCPUs per VM (`KVM_CAP_MAX_VCPUS`).
pub(crate) const MAX_VCPUS: usize = 1024;

/// A vCPU.
#[pin_data]
pub(crate) struct Vcpu {
    id: u32,
    /// Position in the VM's vCPU list (interrupt delivery indexes by it).
    index: usize,
    /// The bootstrap processor (KVM_SET_BOOT_CPU_ID; vCPU 0 by default).
    bsp: bool,
    /// Requests, kicks and the halt wait queue.
    kick: Arc<VcpuKick>,
    /// The in-kernel local APIC (with an in-kernel irqchip), which other
    /// vCPUs and devices deliver to.
    lapic: Option<VcpuLapic>,
    /// The pages userspace maps.
    run: RunPage,
    /// Everything only the thread holding the vCPU touches (upstream's
    /// `vcpu->mutex`; held across KVM_RUN). Outermost vCPU lock.
    #[pin]
    state: Mutex<VcpuState>,
    /// Statistics, and their id ("kvm-TID/vcpu-ID", TID the creating thread).
    stats: Arc<VcpuStats>,
    stats_id: KVec<u8>,
    /// The thread that last entered KVM_RUN (debugfs `vcpu<N>/pid`).
    run_pid: Arc<RunPid>,
}

impl Vcpu {
    /// A new vCPU `id` of `vm` at list position `index`, in its reset state.
    #[inline(never)]
    pub(crate) fn new(vm: &Vm, id: u32, index: usize) -> Result<Arc<Self>> {
        let bsp = id == vm.arch().bsp_id();
        let kick = Arc::pin_init(VcpuKick::new(), GFP_KERNEL_ACCOUNT)?;
        let lapic = if vm.arch().irqchip().in_kernel() {
            Some(x86::irq::lapic::new_lapic(vm, id, bsp)?)
        } else {
            None
        };
        let state = VcpuState::new(vm, id, bsp, &kick, lapic.is_some())?;
        // Upstream names the creating thread, not the VM's creator.
        let tid = kernel::current!().pid();
        let stats_id = crate::virt::vm::id_string(fmt!("kvm-{}/vcpu-{}", tid, id))?;
        let run = RunPage::new()?;
        let run_pid = Arc::new(RunPid::default(), GFP_KERNEL_ACCOUNT)?;
        let stats = vm.stats_tree().add_vcpu()?;
        let vcpu_stats = stats.clone();
        Arc::pin_init(
            try_pin_init!(Vcpu {
                id,
                index,
                bsp,
                kick,
                lapic,
                run,
                state <- new_mutex!(state),
                stats: vcpu_stats,
                stats_id,
                run_pid,
            }),
            GFP_KERNEL_ACCOUNT,
        )
        .inspect_err(|_| vm.stats_tree().remove_vcpu(&stats))
    }

    /// Its position in the VM's vCPU list.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// Its vCPU id (KVM_CREATE_VCPU's argument).
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Whether it is the bootstrap processor.
    pub(crate) fn is_bsp(&self) -> bool {
        self.bsp
    }

    /// Requests, kicks and the halt wait queue.
    pub(crate) fn kick(&self) -> &Arc<VcpuKick> {
        &self.kick
    }

    /// The in-kernel LAPIC, if the VM has an in-kernel irqchip.
    pub(crate) fn lapic(&self) -> Option<&VcpuLapic> {
        self.lapic.as_ref()
    }

    /// The `kvm_run` and PIO pages.
    pub(crate) fn run_page(&self) -> &RunPage {
        &self.run
    }

    /// The statistics.
    pub(crate) fn stats(&self) -> &Arc<VcpuStats> {
        &self.stats
    }

    /// The thread that last ran it.
    pub(crate) fn run_pid(&self) -> &Arc<RunPid> {
        &self.run_pid
    }

    /// Takes the vCPU mutex.
    pub(crate) fn lock(&self) -> MutexGuard<'_, VcpuState> {
        self.state.lock()
    }
}

/// A VM's vCPUs, in creation order.
#[pin_data]
pub(crate) struct Vcpus {
    /// Capacity reserved for `MAX_VCPUS`, so pushing never allocates under
    /// the lock. IRQ-safe: interrupt delivery walks it from any context.
    /// Taken under `Irqchip::chips`; a vCPU's LAPIC is taken under it.
    #[pin]
    list: SpinLockIrq<KVec<Arc<Vcpu>>>,
}

impl Vcpus {
    pub(crate) fn new() -> Result<impl PinInit<Self>> {
        let v = KVec::with_capacity(MAX_VCPUS, GFP_KERNEL_ACCOUNT)?;
        Ok(pin_init!(Self { list <- new_spinlock_irq!(v) }))
    }

    /// Number of vCPUs.
    pub(crate) fn len(&self) -> usize {
        self.list.lock().len()
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The vCPU at list position `index`.
    pub(crate) fn get(&self, index: usize) -> Option<Arc<Vcpu>> {
        self.list.lock().get(index).cloned()
    }

    /// The list, locked (IRQ-safe; see [`Vcpus::list`] for the order).
    pub(crate) fn lock(&self) -> SpinLockIrqGuard<'_, KVec<Arc<Vcpu>>> {
        self.list.lock()
    }

    /// The list position a new vCPU `id` gets: `EEXIST` if the id is
    /// taken, `EINVAL` when the VM is full. Under the VM's slots lock.
    pub(crate) fn check_new_id(&self, id: u32) -> Result<usize> {
        let v = self.list.lock();
        if v.iter().any(|c| c.id == id) {
            return Err(EEXIST);
        }
        if v.len() >= MAX_VCPUS {
            return Err(EINVAL);
        }
        Ok(v.len())
    }

    /// Appends `vcpu` (room is reserved; under the VM's slots lock).
    pub(crate) fn push(&self, vcpu: Arc<Vcpu>) -> Result {
        self.list
            .lock()
            .push_within_capacity(vcpu)
            .map_err(|_| ENOMEM)
    }

    /// Removes `vcpu` (its fd could not be created).
    pub(crate) fn remove(&self, vcpu: &Arc<Vcpu>) {
        let mut v = self.list.lock();
        if let Some(i) = v.iter().position(|c| Arc::ptr_eq(c, vcpu)) {
            // In bounds (just found); the removed Arc is dropped after the
            // lock: it is not the last reference (`vcpu` is another).
            drop(v.remove(i));
        }
    }

    /// Makes every vCPU flush its guest TLB before it next enters the
    /// guest, and waits until none still runs with stale translations.
    /// (The waiting cross calls need interrupts on: not under the lock.)
    pub(crate) fn flush_tlbs(&self) {
        let mut i = 0;
        while let Some(c) = self.get(i) {
            c.kick.make_request(REQ_TLB_FLUSH);
            c.kick.kick(true);
            i += 1;
        }
    }
}

/// What a vCPU fd owns.
pub(crate) struct VcpuFile {
    vm: Arc<Vm>,
    vcpu: Arc<Vcpu>,
}

/// Creates vCPU `vcpu`'s fd (`kvm-vcpu:<id>`).
pub(crate) fn open_fd(vm: Arc<Vm>, vcpu: Arc<Vcpu>) -> Result<u32> {
    let name = CString::try_from_fmt(fmt!("kvm-vcpu:{}", vcpu.id))?;
    let f = Arc::new(VcpuFile { vm, vcpu }, GFP_KERNEL_ACCOUNT)?;
    file::new_anon_fd::<VcpuFile>(&name, f)
}

/// SIGKILL and SIGSTOP cannot be blocked (bits of signals 9 and 19).
const UNBLOCKABLE: u64 = (1 << 8) | (1 << 18);

/// KVM_SET_SIGNAL_MASK: the mask while in KVM_RUN; a NULL argument
/// removes it.
fn set_signal_mask(st: &mut VcpuState, arg: usize) -> Result {
    if arg == 0 {
        st.sigmask = None;
        return Ok(());
    }
    let m: crate::ext::uapi::kvm_signal_mask = read_arg(arg)?;
    if m.len != 8 {
        return Err(EINVAL);
    }
    let mask: u64 = read_arg(arg + core::mem::size_of::<crate::ext::uapi::kvm_signal_mask>())?;
    st.sigmask = Some(mask & !UNBLOCKABLE);
    Ok(())
}

impl StatsSource for Vcpu {
    type Block = VcpuStats;

    fn stats_id(&self) -> &[u8] {
        &self.stats_id
    }

    fn stats(&self) -> &VcpuStats {
        &self.stats
    }
}

#[vtable]
impl FileOps for VcpuFile {
    type Ptr = Arc<VcpuFile>;

    /// The vCPU ioctl map (docs/architecture.md has the table): the
    /// generic ones here, the x86 ones in `x86::vcpu::vcpu_ioctl`.
    fn ioctl(f: ArcBorrow<'_, VcpuFile>, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        f.vm.check_mm()?;
        if (cmd >> 8) & 0xff != KVMIO {
            return Err(EINVAL);
        }
        let (vm, vcpu) = (&*f.vm, &*f.vcpu);
        let mut st = vcpu.lock();
        match cmd {
            KVM_RUN => x86::run::kvm_run(vm, vcpu, &mut st, arg),
            KVM_GET_STATS_FD => stats::get_stats_fd(f.vcpu.clone()),
            KVM_SET_SIGNAL_MASK => set_signal_mask(&mut st, arg).map(|()| 0),
            _ => x86::vcpu::vcpu_ioctl(vm, vcpu, &mut st, cmd, arg),
        }
    }

    fn mmap(f: ArcBorrow<'_, VcpuFile>, vma: &VmaNew, pgoff: usize) -> Result {
        let pages = (vma.end() - vma.start()).div_ceil(PAGE_SIZE);
        let map = vma.set_mixedmap();
        for i in 0..pages {
            let page = f
                .vcpu
                .run
                .page(pgoff + i)
                .or_else(|| f.vm.coalesced().mmap_page(pgoff + i))
                .ok_or(EINVAL)?;
            map.vm_insert_page(vma.start() + i * PAGE_SIZE, page)?;
        }
        Ok(())
    }
}
