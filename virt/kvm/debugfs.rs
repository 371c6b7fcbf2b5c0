// SPDX-License-Identifier: GPL-2.0
//! debugfs, as upstream's kvm_init_debug() and kvm_create_vm_debugfs()
//! lay it out and `kvm_stat` reads it:
//!
//! - `/sys/kernel/debug/kvm/<stat>`: every VM and vCPU statistic, summed
//!   over all VMs (and their vCPUs);
//! - `/sys/kernel/debug/kvm/<PID>-<FD>/<stat>`: the same for one VM (PID the
//!   creating thread, FD the VM's fd), with a `vcpu<N>/pid` file per vCPU.
//!
//! A read gives the value and a newline; writing 0 to a cumulative or peak
//! statistic clears it (any other value: `EINVAL`); histograms show their
//! first bucket. The statistics themselves live in [`VmStatsTree`]s that
//! the VM, its debugfs files and the global VM list share, so no debugfs
//! file keeps a VM alive.

use crate::{
    virt::stats::{Stat, StatDesc, StatsBlock},
    x86::{
        stats::{VcpuStats, VmStats},
        vendor,
    },
};
use core::{
    fmt,
    sync::atomic::{AtomicU32, Ordering},
};
use kernel::{
    debugfs::{Dir, File},
    new_mutex,
    prelude::*,
    str::CString,
    sync::{Arc, Mutex},
    uaccess::UserSliceReader,
};

/// A VM's statistics and those of its vCPUs.
#[pin_data]
pub(crate) struct VmStatsTree {
    vm: VmStats,
    /// Its vCPUs' statistics, in creation order. Leaf lock; taken under
    /// `KVM_LOCK` when debugfs sums over all VMs.
    #[pin]
    vcpus: Mutex<KVec<Arc<VcpuStats>>>,
}

impl VmStatsTree {
    /// A tree with all counters at zero, entered in the global VM list.
    pub(crate) fn new() -> Result<Arc<Self>> {
        let tree = Arc::pin_init(
            pin_init!(Self {
                vm: VmStats::new(),
                vcpus <- new_mutex!(KVec::new()),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        vendor::vm_list_add(tree.clone())?;
        Ok(tree)
    }

    /// The VM's own statistics.
    pub(crate) fn vm(&self) -> &VmStats {
        &self.vm
    }

    /// A new vCPU's statistics, entered in the tree.
    pub(crate) fn add_vcpu(&self) -> Result<Arc<VcpuStats>> {
        let stats = Arc::new(VcpuStats::new(), GFP_KERNEL_ACCOUNT)?;
        self.vcpus.lock().push(stats.clone(), GFP_KERNEL_ACCOUNT)?;
        Ok(stats)
    }

    /// Takes back the statistics of a vCPU whose creation failed.
    pub(crate) fn remove_vcpu(&self, stats: &Arc<VcpuStats>) {
        self.vcpus.lock().retain(|v| !Arc::ptr_eq(v, stats));
    }

    /// Calls `f` with the counter `file` shows in this VM (every vCPU's,
    /// for a vCPU statistic).
    fn visit(&self, file: &StatFile, f: &mut dyn FnMut(&Stat)) {
        if file.per_vcpu {
            for v in self.vcpus.lock().iter() {
                if let Some(s) = v.stat_at(file.desc.offset) {
                    f(s);
                }
            }
        } else if let Some(s) = self.vm.stat_at(file.desc.offset) {
            f(s);
        }
    }

    /// Leaves the global VM list (the VM is going away).
    pub(crate) fn unlist(self: &Arc<Self>) {
        vendor::vm_list_remove(self);
    }
}

/// What one statistics file shows.
struct StatFile {
    /// One VM, or all of them.
    vm: Option<Arc<VmStatsTree>>,
    desc: &'static StatDesc,
    /// A vCPU statistic (summed over vCPUs) rather than a VM one.
    per_vcpu: bool,
}

impl StatFile {
    fn for_each(&self, f: &mut dyn FnMut(&Stat)) {
        match &self.vm {
            Some(t) => t.visit(self, f),
            None => vendor::vm_list_for_each(|t| t.visit(self, f)),
        }
    }

    fn show(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sum = 0u64;
        self.for_each(&mut |s| sum = sum.wrapping_add(s.get()));
        writeln!(out, "{}", sum)
    }

    /// Upstream's kvm_stat_data_clear(): only 0 may be written.
    fn store(&self, r: &mut UserSliceReader) -> Result {
        let mut buf = [0u8; 32];
        let n = r.len();
        if n == 0 || n > buf.len() {
            return Err(EINVAL);
        }
        r.read_slice(&mut buf[..n])?;
        let text = core::str::from_utf8(&buf[..n]).map_err(|_| EINVAL)?.trim();
        let val = parse_u64(text).ok_or(EINVAL)?;
        if val != 0 {
            return Err(EINVAL);
        }
        self.for_each(&mut |s| s.set(0));
        Ok(())
    }
}

/// kstrtoull(s, 0): decimal, `0x` hex or leading-`0` octal.
fn parse_u64(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    u64::from_str_radix(digits, radix).ok()
}

/// The statistics files of one directory.
struct StatFiles {
    _files: KVec<Pin<KBox<File<StatFile>>>>,
}

impl StatFiles {
    /// One file per statistic of both blocks, in `dir`, for `vm` or all.
    fn create(dir: &Dir, vm: Option<&Arc<VmStatsTree>>) -> Result<Self> {
        let mut files = KVec::new();
        let blocks = [(VmStats::DESCS, false), (VcpuStats::DESCS, true)];
        for (descs, per_vcpu) in blocks {
            for desc in descs {
                let data = StatFile {
                    vm: vm.cloned(),
                    desc,
                    per_vcpu,
                };
                let file = if desc.kind.clearable() {
                    KBox::pin_init(
                        dir.read_write_callback_file(
                            desc.name,
                            data,
                            &StatFile::show,
                            &StatFile::store,
                        ),
                        GFP_KERNEL,
                    )?
                } else {
                    KBox::pin_init(
                        dir.read_callback_file(desc.name, data, &StatFile::show),
                        GFP_KERNEL,
                    )?
                };
                files.push(file, GFP_KERNEL)?;
            }
        }
        Ok(Self { _files: files })
    }
}

/// `/sys/kernel/debug/kvm` and its aggregate files; owned by kvm.ko's
/// module state, its directory also reachable through `KVM_LOCK` for the
/// per-VM directories.
pub(crate) struct Debugfs {
    _files: StatFiles,
}

impl Debugfs {
    /// Creates the directory and its files (none without debugfs).
    pub(crate) fn new() -> Result<Self> {
        let dir = Dir::new(c"kvm");
        let files = StatFiles::create(&dir, None)?;
        vendor::set_debugfs_root(Some(dir));
        Ok(Self { _files: files })
    }
}

impl Drop for Debugfs {
    fn drop(&mut self) {
        // Our files go first (field drop), then the last directory handle.
        vendor::set_debugfs_root(None);
    }
}

/// The thread that last ran a vCPU (`vcpu<N>/pid`, upstream's vcpu->pid).
#[derive(Default)]
pub(crate) struct RunPid(AtomicU32);

impl RunPid {
    /// Records the current thread at KVM_RUN.
    pub(crate) fn update(&self) {
        let tid = kernel::current!().pid() as u32;
        if self.0.load(Ordering::Relaxed) != tid {
            self.0.store(tid, Ordering::Relaxed);
        }
    }

    fn show(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(out, "{}", self.0.load(Ordering::Relaxed))
    }
}

/// A vCPU's `vcpu<N>` directory.
struct VcpuDir {
    _pid: Pin<KBox<File<Arc<RunPid>>>>,
    _dir: Dir,
}

/// A VM's `PID-FD` directory: its statistics and the vCPU directories.
pub(crate) struct VmDebugfs {
    dir: Dir,
    _files: StatFiles,
    vcpus: KVec<VcpuDir>,
}

impl VmDebugfs {
    /// The directory of `tree`'s VM, fd `fd` of thread `tid`.
    pub(crate) fn new(tree: &Arc<VmStatsTree>, tid: i32, fd: u32) -> Result<Option<Self>> {
        let Some(root) = vendor::debugfs_root() else {
            return Ok(None);
        };
        let name = CString::try_from_fmt(fmt!("{}-{}", tid, fd))?;
        let dir = root.subdir(&name);
        let files = StatFiles::create(&dir, Some(tree))?;
        Ok(Some(Self {
            dir,
            _files: files,
            vcpus: KVec::new(),
        }))
    }

    /// Adds vCPU `id`'s directory.
    pub(crate) fn add_vcpu(&mut self, id: u32, pid: &Arc<RunPid>) -> Result {
        let name = CString::try_from_fmt(fmt!("vcpu{}", id))?;
        let dir = self.dir.subdir(&name);
        let file = KBox::pin_init(
            dir.read_callback_file(c"pid", pid.clone(), &show_pid),
            GFP_KERNEL,
        )?;
        self.vcpus.push(
            VcpuDir {
                _pid: file,
                _dir: dir,
            },
            GFP_KERNEL,
        )?;
        Ok(())
    }
}

fn show_pid(pid: &Arc<RunPid>, out: &mut fmt::Formatter<'_>) -> fmt::Result {
    pid.show(out)
}
