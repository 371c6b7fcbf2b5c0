// SPDX-License-Identifier: GPL-2.0
//! Time unit conversions (upstream `vdso/time64.h` and `linux/units.h`),
//! shared by the timer models, kvmclock and TSC scaling.

/// Microseconds per millisecond.
pub const USEC_PER_MSEC: u64 = 1_000;
/// Nanoseconds per microsecond.
pub const NSEC_PER_USEC: u64 = 1_000;
/// Nanoseconds per millisecond (also: ticks of a `khz` clock in `ns`
/// nanoseconds are `ns * khz / NSEC_PER_MSEC`).
pub const NSEC_PER_MSEC: u64 = 1_000_000;
/// Nanoseconds per second.
pub const NSEC_PER_SEC: u64 = 1_000_000_000;
/// Hertz per kilohertz.
pub const HZ_PER_KHZ: u64 = 1_000;
