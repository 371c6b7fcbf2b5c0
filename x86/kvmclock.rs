// SPDX-License-Identifier: GPL-2.0
//! Guest time: one TSC offset per VM (see `pvclock::TscSync`) and
//! kvmclock, the paravirtual clock Linux guests prefer: the per-vCPU time
//! info at the address the guest writes to MSR_KVM_SYSTEM_TIME(_NEW), the
//! boot wall-clock at MSR_KVM_WALL_CLOCK(_NEW), and KVM_GET/SET_CLOCK.
//!
//! kvmclock here is upstream's "no master clock" flavour: each vCPU's
//! time info is a fresh (TSC, kvmclock ns) pair, refreshed when the guest
//! enables it, after KVM_SET_CLOCK and when the vCPU thread moves to
//! another CPU. Without PVCLOCK_TSC_STABLE_BIT the guest keeps its reads
//! monotonic across vCPUs itself.

use crate::{
    defs::paging::Gpa,
    ext::{
        cpu,
        time::{self, boottime_ns, realtime_ns},
        uaccess::{read_arg, write_arg},
        uapi,
    },
    pvclock::{self, TimeScale, TscSync, VcpuTimeInfo, PVCLOCK_GUEST_STOPPED},
    virt::vm::Vm,
    x86::{params, vcpu::VcpuState},
};
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use kernel::{new_spinlock, prelude::*, sync::SpinLock};

/// `KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC`.
pub(crate) const CLOCK_VALID_FLAGS: u32 =
    uapi::KVM_CLOCK_TSC_STABLE | uapi::KVM_CLOCK_REALTIME | uapi::KVM_CLOCK_HOST_TSC;

/// A VM's clocks.
#[pin_data]
pub(crate) struct VmClock {
    /// kvmclock = boot-time ns + this (KVM_GET/SET_CLOCK).
    offset: AtomicI64,
    /// Bumped by KVM_SET_CLOCK: vCPUs rewrite their kvmclock time info.
    generation: AtomicU64,
    /// The VM's one TSC (userspace writes and vCPU creation). A leaf lock.
    #[pin]
    tsc_sync: SpinLock<TscSync>,
}

impl VmClock {
    /// kvmclock starts at 0 now.
    pub(crate) fn new() -> impl PinInit<Self> {
        pin_init!(Self {
            offset: AtomicI64::new(0i64.wrapping_sub(boottime_ns() as i64)),
            generation: AtomicU64::new(0),
            tsc_sync <- new_spinlock!(TscSync::new()),
        })
    }

    /// kvmclock at host boot-time `boot_ns`.
    pub(crate) fn kvmclock_at(&self, boot_ns: u64) -> u64 {
        (boot_ns as i64).wrapping_add(self.offset.load(Ordering::SeqCst)) as u64
    }

    /// The TSC offset for a userspace write of `value` (0 at vCPU creation).
    fn tsc_write(&self, value: u64) -> u64 {
        let (tsc, ns) = time::tsc_and_boottime();
        self.tsc_sync.lock().write(value, tsc, ns, tsc_khz())
    }
}

/// A vCPU's kvmclock.
#[derive(Default)]
pub(crate) struct VcpuClock {
    /// Guest address of the time info, if enabled.
    gpa: Option<Gpa>,
    /// The time info must be rewritten before the next entry.
    dirty: bool,
    /// The VM's clock generation it was written for (KVM_SET_CLOCK).
    generation: u64,
    /// The host CPU it was written on.
    cpu: i32,
    /// KVM_KVMCLOCK_CTRL: set PVCLOCK_GUEST_STOPPED in the next update.
    stop_request: bool,
}

impl VcpuClock {
    /// A write of MSR_KVM_SYSTEM_TIME(_NEW).
    pub(crate) fn set_msr(&mut self, value: u64) {
        self.gpa = pvclock::msr_gpa(value).map(Gpa::new);
        self.dirty = self.gpa.is_some();
    }
}

impl VcpuClock {
    /// The guest TSC changed under the time info: rewrite it before the
    /// next entry.
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = self.gpa.is_some();
    }
}

/// KVM_KVMCLOCK_CTRL: tells the guest (PVCLOCK_GUEST_STOPPED in its time
/// info, written before the next entry) that the VMM paused it, so its
/// soft-lockup watchdog does not fire; EINVAL without kvmclock, as
/// upstream.
pub(crate) fn kvmclock_ctrl(st: &mut VcpuState) -> Result {
    if st.clock.gpa.is_none() {
        return Err(EINVAL);
    }
    st.clock.stop_request = true;
    st.clock.dirty = true;
    Ok(())
}

/// The host TSC frequency.
pub(crate) fn tsc_khz() -> u64 {
    time::tsc_khz()
}

/// The TSC offset for a userspace write of `value` to vCPU TSC (0 at vCPU
/// creation): the VM stays on one TSC where it can.
pub(crate) fn tsc_write(vm: &Vm, value: u64) -> u64 {
    vm.arch().clock().tsc_write(value)
}

/// KVM_SET_DEVICE_ATTR(KVM_VCPU_TSC_OFFSET): the vCPU's TSC offset, which
/// becomes the VM's for later synchronised writes (upstream's
/// __kvm_synchronize_tsc() with the given offset).
pub(crate) fn set_tsc_offset(vm: &Vm, st: &mut VcpuState, offset: u64) {
    let (tsc, ns) = time::tsc_and_boottime();
    vm.arch()
        .clock()
        .tsc_sync
        .lock()
        .set_offset(offset, tsc, ns);
    st.hw.set_tsc_offset(offset);
}

/// Before entering the guest: rewrites the time info if needed.
pub(crate) fn update(vm: &Vm, st: &mut VcpuState) {
    let Some(gpa) = st.clock.gpa else { return };
    let vc = vm.arch().clock();
    let generation = vc.generation.load(Ordering::Acquire);
    // A hint: a move right after is caught on the next entry.
    let cpu = cpu::current_cpu_hint();
    if !st.clock.dirty && st.clock.generation == generation && st.clock.cpu == cpu {
        return;
    }
    st.clock.dirty = false;
    st.clock.generation = generation;
    st.clock.cpu = cpu;
    let Some(scale) = TimeScale::for_tsc_khz(tsc_khz()) else {
        return;
    };
    // Upstream needs the structure within one page; so do we.
    if gpa.bytes_to_page_end() < pvclock::VCPU_TIME_INFO_SIZE as u64 {
        return;
    }
    let (tsc, ns) = time::tsc_and_boottime();
    let mem = vm.mmu();
    let mut head = [0u8; 32];
    if !matches!(mem.read_guest(gpa, &mut head), Ok(true)) {
        return;
    }
    let old_version = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    // The guest clears PVCLOCK_GUEST_STOPPED itself; a set flag survives
    // until it does (upstream does the same).
    let stopped = if core::mem::take(&mut st.clock.stop_request) {
        PVCLOCK_GUEST_STOPPED
    } else {
        head[29] & PVCLOCK_GUEST_STOPPED
    };
    let info = VcpuTimeInfo {
        tsc_timestamp: tsc.wrapping_add(st.hw.tsc_offset()),
        system_time: vc.kvmclock_at(ns),
        scale,
        flags: stopped,
    };
    // Odd version while the fields change, as the guest's reader expects.
    // A failing write (the VMM unmapped the page) leaves the guest a stale
    // clock, as upstream.
    let odd = old_version.wrapping_add(1) | 1;
    let _ = mem.write_guest(vm, gpa, &odd.to_le_bytes());
    let _ = mem.write_guest(vm, gpa, &info.to_bytes(odd));
    let _ = mem.write_guest(vm, gpa, &odd.wrapping_add(1).to_le_bytes());
}

/// A write of MSR_KVM_WALL_CLOCK(_NEW): the wall-clock time at which
/// kvmclock read zero, at guest address `gpa` (upstream writes it
/// whatever bit 0 says).
pub(crate) fn write_wall_clock(vm: &Vm, gpa: Gpa) {
    if gpa.bytes_to_page_end() < pvclock::WALL_CLOCK_SIZE as u64 {
        return;
    }
    let mem = vm.mmu();
    let mut v = [0u8; 4];
    if !matches!(mem.read_guest(gpa, &mut v), Ok(true)) {
        return;
    }
    let mut version = u32::from_le_bytes(v);
    // An odd value is junk from before the first write.
    if version & 1 != 0 {
        version = version.wrapping_add(1);
    }
    version = version.wrapping_add(1);
    let (_, ns) = time::tsc_and_boottime();
    let boot = realtime_ns().wrapping_sub(vm.arch().clock().kvmclock_at(ns));
    let _ = mem.write_guest(vm, gpa, &version.to_le_bytes());
    let _ = mem.write_guest(vm, gpa, &pvclock::wall_clock_bytes(version, boot));
    let _ = mem.write_guest(vm, gpa, &version.wrapping_add(1).to_le_bytes());
}

/// KVM_GET_TSC_KHZ: the guest runs at the host's rate.
pub(crate) fn get_tsc_khz() -> isize {
    tsc_khz() as isize
}

/// KVM_SET_TSC_KHZ without TSC scaling: the host's rate (0 means it) give
/// or take `tsc_tolerance_ppm`; anything else is EINVAL (upstream would
/// "catch up" a faster guest TSC, rkvm does not).
pub(crate) fn set_tsc_khz(khz: u32) -> Result {
    let host = tsc_khz();
    let want = if khz == 0 { host } else { u64::from(khz) };
    let ppm = u64::from(params::TSC_TOLERANCE_PPM.get());
    if want.abs_diff(host) <= host.saturating_mul(ppm) / 1_000_000 {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// KVM_GET_CLOCK.
pub(crate) fn get_clock(vm: &Vm, arg: usize) -> Result {
    let d = uapi::kvm_clock_data {
        clock: vm.arch().clock().kvmclock_at(boottime_ns()),
        realtime: realtime_ns(),
        host_tsc: time::rdtsc(),
        flags: uapi::KVM_CLOCK_REALTIME | uapi::KVM_CLOCK_HOST_TSC,
        ..Default::default()
    };
    write_arg(arg, &d)
}

/// KVM_SET_CLOCK: flags as KVM_GET_CLOCK returns them are accepted; with
/// KVM_CLOCK_REALTIME the time since `realtime` is added.
pub(crate) fn set_clock(vm: &Vm, arg: usize) -> Result {
    let mut d: uapi::kvm_clock_data = read_arg(arg)?;
    if d.flags & !CLOCK_VALID_FLAGS != 0 {
        return Err(EINVAL);
    }
    if d.flags & uapi::KVM_CLOCK_REALTIME != 0 {
        let now = realtime_ns();
        if now > d.realtime {
            d.clock = d.clock.wrapping_add(now - d.realtime);
        }
    }
    let c = vm.arch().clock();
    c.offset.store(
        (d.clock as i64).wrapping_sub(boottime_ns() as i64),
        Ordering::SeqCst,
    );
    c.generation.fetch_add(1, Ordering::Release);
    Ok(())
}
