// SPDX-License-Identifier: GPL-2.0
//! Guest time: one TSC offset per VM (see `pvclock::TscSync`) and
//! kvmclock, the paravirtual clock Linux guests prefer: the per-vCPU time
//! info at the address the guest writes to MSR_KVM_SYSTEM_TIME(_NEW), and
//! the boot wall-clock at MSR_KVM_WALL_CLOCK(_NEW).
//!
//! kvmclock here is upstream's "no master clock" flavour: each vCPU's
//! time info is a fresh (TSC, kvmclock ns) pair, refreshed when the guest
//! enables it, after KVM_SET_CLOCK and when the vCPU thread moves to
//! another CPU. Without PVCLOCK_TSC_STABLE_BIT the guest keeps its reads
//! monotonic across vCPUs itself.

use crate::{
    ext::bindings as rb,
    pvclock::{self, TimeScale, VcpuTimeInfo, PVCLOCK_GUEST_STOPPED},
    virt::vcpu::VcpuState,
    virt::vm::Vm,
};
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// MSR_KVM_WALL_CLOCK / MSR_KVM_WALL_CLOCK_NEW.
pub(crate) const MSR_KVM_WALL_CLOCK: u32 = 0x11;
/// The new-style wall clock MSR.
pub(crate) const MSR_KVM_WALL_CLOCK_NEW: u32 = 0x4b56_4d00;
/// MSR_KVM_SYSTEM_TIME / MSR_KVM_SYSTEM_TIME_NEW.
pub(crate) const MSR_KVM_SYSTEM_TIME: u32 = 0x12;
/// The new-style system time MSR.
pub(crate) const MSR_KVM_SYSTEM_TIME_NEW: u32 = 0x4b56_4d01;

/// A vCPU's kvmclock.
#[derive(Default)]
pub(crate) struct VcpuClock {
    /// Guest address of the time info, if enabled.
    gpa: Option<u64>,
    /// The time info must be rewritten before the next entry.
    dirty: bool,
    /// The VM's clock generation it was written for (KVM_SET_CLOCK).
    gen: u64,
    /// The host CPU it was written on.
    cpu: i32,
}

impl VcpuClock {
    /// A write of MSR_KVM_SYSTEM_TIME(_NEW).
    pub(crate) fn set_msr(&mut self, value: u64) {
        self.gpa = pvclock::msr_gpa(value);
        self.dirty = self.gpa.is_some();
    }
}

/// Host TSC and host boot-time ns, read back to back.
fn host_now() -> (u64, u64) {
    // SAFETY: a short section with interrupts off so that the two reads
    // belong together; restored right after.
    unsafe {
        rb::rkvm_local_irq_disable();
        let tsc = rb::rkvm_rdtsc();
        let ns = rb::rkvm_ktime_get_boottime_ns();
        rb::rkvm_local_irq_enable();
        (tsc, ns)
    }
}

/// The host TSC frequency.
pub(crate) fn tsc_khz() -> u64 {
    // SAFETY: plain read.
    u64::from(unsafe { rb::rkvm_tsc_khz() })
}

/// The TSC offset for a userspace write of `value` (0 at vCPU creation).
pub(crate) fn tsc_write(vm: &Vm, value: u64) -> u64 {
    let (tsc, ns) = host_now();
    vm.tsc_sync.lock().write(value, tsc, ns, tsc_khz())
}

/// Before entering the guest: rewrites the time info if needed.
pub(crate) fn update(vm: &Vm, st: &mut VcpuState) {
    let Some(gpa) = st.clock.gpa else { return };
    let gen = vm.clock_gen.load(Ordering::Acquire);
    // SAFETY: reads the current CPU id (a hint: a move right after is
    // caught on the next entry).
    let cpu = unsafe { rb::rkvm_smp_processor_id() };
    if !st.clock.dirty && st.clock.gen == gen && st.clock.cpu == cpu {
        return;
    }
    st.clock.dirty = false;
    st.clock.gen = gen;
    st.clock.cpu = cpu;
    let Some(scale) = TimeScale::for_tsc_khz(tsc_khz()) else { return };
    // Upstream needs the structure within one page; so do we.
    if gpa & 0xfff > 0x1000 - pvclock::VCPU_TIME_INFO_SIZE as u64 {
        return;
    }
    let (tsc, ns) = host_now();
    let mut head = [0u8; 32];
    if !matches!(vm.read_guest(gpa, &mut head), Ok(true)) {
        return;
    }
    let old_version = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let info = VcpuTimeInfo {
        tsc_timestamp: tsc.wrapping_add(st.arch.tsc_offset()),
        system_time: vm.kvmclock_at(ns),
        scale,
        // The guest's own flag survives (upstream does the same).
        flags: head[29] & PVCLOCK_GUEST_STOPPED,
    };
    // Odd version while the fields change, as the guest's reader expects.
    let odd = old_version.wrapping_add(1) | 1;
    let _ = vm.write_guest(gpa, &odd.to_le_bytes());
    let _ = vm.write_guest(gpa, &info.to_bytes(odd));
    let _ = vm.write_guest(gpa, &odd.wrapping_add(1).to_le_bytes());
}

/// A write of MSR_KVM_WALL_CLOCK(_NEW): the wall-clock time at which
/// kvmclock read zero, at guest address `value` (upstream writes it
/// whatever bit 0 says).
pub(crate) fn write_wall_clock(vm: &Vm, gpa: u64) {
    if gpa & 0xfff > 0x1000 - pvclock::WALL_CLOCK_SIZE as u64 {
        return;
    }
    let mut v = [0u8; 4];
    if !matches!(vm.read_guest(gpa, &mut v), Ok(true)) {
        return;
    }
    let mut version = u32::from_le_bytes(v);
    // An odd value is junk from before the first write.
    if version & 1 != 0 {
        version = version.wrapping_add(1);
    }
    version = version.wrapping_add(1);
    let (_, ns) = host_now();
    // SAFETY: plain clock read.
    let real = unsafe { rb::rkvm_ktime_get_real_ns() };
    let boot = real.wrapping_sub(vm.kvmclock_at(ns));
    let _ = vm.write_guest(gpa, &version.to_le_bytes());
    let _ = vm.write_guest(gpa, &pvclock::wall_clock_bytes(version, boot));
    let _ = vm.write_guest(gpa, &version.wrapping_add(1).to_le_bytes());
}

/// KVM_SET_TSC_KHZ without TSC scaling: the host's rate (0 means it) give
/// or take upstream's 250 ppm tolerance; anything else is EINVAL (upstream
/// would "catch up" a faster guest TSC, rkvm does not).
pub(crate) fn set_tsc_khz(khz: u32) -> Result {
    let host = tsc_khz();
    let want = if khz == 0 { host } else { u64::from(khz) };
    if want.abs_diff(host) <= host * 250 / 1_000_000 {
        Ok(())
    } else {
        Err(EINVAL)
    }
}
