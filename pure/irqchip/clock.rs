//! Time as the device models see it: a caller-supplied snapshot.
//!
//! The models never read a clock themselves. Every operation whose result
//! depends on time takes a [`Clock`] (LAPIC) or a plain `now_ns` (PIT).

use crate::defs::time::NSEC_PER_MSEC;

/// The time sources the LAPIC timer needs.
///
/// `now_ns` is the host monotonic clock (the same clock the kernel side
/// arms its hrtimers against); `guest_tsc` is the guest-visible TSC value at
/// that same instant, and `guest_tsc_khz` its frequency (for the
/// TSC-deadline mode). Implementations should return a coherent snapshot.
pub trait Clock {
    /// Host monotonic time in nanoseconds.
    fn now_ns(&self) -> u64;
    /// Guest TSC value at `now_ns`.
    fn guest_tsc(&self) -> u64;
    /// Guest TSC frequency in kHz; 0 when unknown (TSC-deadline never fires).
    fn guest_tsc_khz(&self) -> u32;
}

/// A frozen [`Clock`] reading: handy for tests and for the kernel side to
/// sample once per operation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockSnapshot {
    /// Host monotonic time in nanoseconds.
    pub now_ns: u64,
    /// Guest TSC at `now_ns`.
    pub guest_tsc: u64,
    /// Guest TSC frequency in kHz.
    pub guest_tsc_khz: u32,
}

impl ClockSnapshot {
    /// A snapshot at `now_ns` whose guest TSC runs at `tsc_khz` from 0 at
    /// time 0 (tests use this to keep both time bases in lock step).
    pub fn at(now_ns: u64, tsc_khz: u32) -> Self {
        let tsc = super::arith::mul_div(now_ns, u64::from(tsc_khz), NSEC_PER_MSEC);
        Self {
            now_ns,
            guest_tsc: tsc,
            guest_tsc_khz: tsc_khz,
        }
    }
}

impl Clock for ClockSnapshot {
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
    fn guest_tsc(&self) -> u64 {
        self.guest_tsc
    }
    fn guest_tsc_khz(&self) -> u32 {
        self.guest_tsc_khz
    }
}
