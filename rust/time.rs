// SPDX-License-Identifier: GPL-2.0
//! Host clocks and the TSC, as plain values.
//!
//! The 7.3 `kernel::time::Instant` keeps its nanoseconds private; KVM needs
//! absolute readings (kvmclock, device-model deadlines), hence these.

use super::bindings as rb;

/// CLOCK_MONOTONIC in ns (the device models' clock).
pub fn monotonic_ns() -> u64 {
    // SAFETY: a plain clock read, callable from any context.
    unsafe { rb::rkvm_ktime_get_ns() }
}

/// CLOCK_BOOTTIME in ns (what kvmclock counts from).
pub fn boottime_ns() -> u64 {
    // SAFETY: a plain clock read.
    unsafe { rb::rkvm_ktime_get_boottime_ns() }
}

/// CLOCK_REALTIME in ns.
pub fn realtime_ns() -> u64 {
    // SAFETY: a plain clock read.
    unsafe { rb::rkvm_ktime_get_real_ns() }
}

/// The host TSC.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no preconditions in the kernel.
    unsafe { rb::rkvm_rdtsc() }
}

/// The host TSC frequency in kHz.
pub fn tsc_khz() -> u64 {
    // SAFETY: reads a variable set at boot.
    u64::from(unsafe { rb::rkvm_tsc_khz() })
}

/// The host TSC and CLOCK_BOOTTIME read back to back with interrupts off,
/// so that they describe the same instant.
pub fn tsc_and_boottime() -> (u64, u64) {
    let _irqs = super::cpu::IrqsOff::new();
    (rdtsc(), boottime_ns())
}
