//! LAPIC timer state machine: one-shot, periodic and TSC-deadline modes.
//!
//! The timer never sleeps: it records an absolute host-time deadline
//! ([`LapicTimer::deadline_ns`]) that the kernel side arms an hrtimer for.
//! When the hrtimer fires the vCPU thread calls
//! [`super::lapic::Lapic::service_timer`], which delivers LVTT and moves the
//! deadline (periodic) or disarms (one-shot, TSC-deadline).

use super::arith::{mul_div, tsc_cycles_to_ns};
use super::clock::Clock;

/// Default minimum period of a periodic timer (upstream
/// `min_timer_period_us` = 200): guests cannot make the host spin.
pub const DEFAULT_MIN_PERIODIC_NS: u64 = 200_000;
/// Default APIC bus cycle (`APIC_BUS_CYCLE_NS_DEFAULT`): a 1 GHz bus.
pub const DEFAULT_BUS_CYCLE_NS: u64 = 1;

/// Timer mode selected by LVTT bits 18:17.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerMode {
    /// Count down once from TMICT.
    OneShot,
    /// Count down from TMICT repeatedly.
    Periodic,
    /// Fire when the guest TSC reaches `IA32_TSC_DEADLINE`.
    TscDeadline,
    /// The reserved encoding (3): the timer is inert.
    Reserved,
}

impl TimerMode {
    /// Decodes LVTT bits 18:17 (already shifted down).
    pub const fn from_bits(bits: u32) -> Self {
        match bits & 3 {
            0 => Self::OneShot,
            1 => Self::Periodic,
            2 => Self::TscDeadline,
            _ => Self::Reserved,
        }
    }
}

/// Decodes TDCR into the divisor (1, 2, 4, ... 128): bits 3,1:0 form a
/// 3-bit code n, the divisor is 2^(n+1) with 0b111 meaning 1.
pub const fn divide_count(tdcr: u32) -> u32 {
    const LOW_BITS: u32 = 0x3;
    const HIGH_BIT: u32 = 0x8;
    const CODE_MASK: u32 = 0x7;
    let code = ((tdcr & LOW_BITS) | ((tdcr & HIGH_BIT) >> 1)) + 1;
    1 << (code & CODE_MASK)
}

/// Timer bookkeeping (everything that is not an architectural register).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LapicTimer {
    /// Mode the running count was started in.
    pub mode: TimerMode,
    /// Period of one full count in ns (clamped for periodic mode).
    pub period_ns: u64,
    /// Absolute host time at which the current count reaches zero
    /// (0 once a one-shot count has expired).
    pub target_ns: u64,
    /// Absolute host time at which the host timer must fire, if armed.
    pub deadline_ns: Option<u64>,
    /// `IA32_TSC_DEADLINE` value (0 = disarmed).
    pub tsc_deadline: u64,
}

impl Default for LapicTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl LapicTimer {
    /// A stopped one-shot timer.
    pub const fn new() -> Self {
        Self {
            mode: TimerMode::OneShot,
            period_ns: 0,
            target_ns: 0,
            deadline_ns: None,
            tsc_deadline: 0,
        }
    }

    /// Stops the host timer (registers are left alone).
    pub fn cancel(&mut self) {
        self.deadline_ns = None;
    }

    /// Nanoseconds for `count` ticks of the timer clock.
    pub fn ticks_to_ns(count: u32, bus_cycle_ns: u64, divide: u32) -> u64 {
        u64::from(count)
            .saturating_mul(bus_cycle_ns)
            .saturating_mul(u64::from(divide))
    }

    fn clamp_period(&mut self, min_periodic_ns: u64) {
        if self.mode == TimerMode::Periodic
            && self.period_ns != 0
            && self.period_ns < min_periodic_ns
        {
            self.period_ns = min_periodic_ns;
        }
    }

    /// Applies an LVTT mode change. Returns `true` when the change crossed
    /// the TSC-deadline boundary, in which case the count is discarded and
    /// the caller must zero TMICT (upstream `apic_update_lvtt()`).
    pub fn set_mode(&mut self, mode: TimerMode, min_periodic_ns: u64) -> bool {
        if mode == self.mode {
            return false;
        }
        let crossed = (self.mode == TimerMode::TscDeadline) != (mode == TimerMode::TscDeadline);
        if crossed {
            self.cancel();
            self.period_ns = 0;
            self.tsc_deadline = 0;
            self.target_ns = 0;
        }
        self.mode = mode;
        self.clamp_period(min_periodic_ns);
        crossed
    }

    /// Starts a one-shot/periodic count of `tmict` ticks at `now`.
    ///
    /// `first_count` restores a partially elapsed count (KVM_SET_LAPIC's
    /// TMCCT): 0 means "expire now" for one-shot (as upstream's
    /// set_target_expiration(): an image taken while the vCPU was stopped
    /// reads 0 for a count that ran out but whose interrupt is not in IRR
    /// yet; firing once more does not lose it, at worst the guest sees one
    /// spurious timer interrupt) and "full period" for periodic; larger
    /// than TMICT falls back to the full period.
    pub fn start_count(
        &mut self,
        tmict: u32,
        first_count: Option<u32>,
        now: u64,
        bus_cycle_ns: u64,
        divide: u32,
        min_periodic_ns: u64,
    ) {
        self.cancel();
        if !matches!(self.mode, TimerMode::OneShot | TimerMode::Periodic) {
            return;
        }
        self.period_ns = Self::ticks_to_ns(tmict, bus_cycle_ns, divide);
        if self.period_ns == 0 {
            self.target_ns = 0;
            return;
        }
        self.clamp_period(min_periodic_ns);
        let first = match first_count {
            None => self.period_ns,
            Some(count) => {
                let ns = Self::ticks_to_ns(count, bus_cycle_ns, divide);
                if ns == 0 {
                    if self.mode == TimerMode::OneShot {
                        0
                    } else {
                        self.period_ns
                    }
                } else {
                    ns.min(self.period_ns)
                }
            }
        };
        self.target_ns = now.saturating_add(first);
        self.deadline_ns = Some(self.target_ns);
    }

    /// (Re)arms the TSC-deadline timer from `tsc_deadline`.
    pub fn start_tsc_deadline<C: Clock + ?Sized>(&mut self, clk: &C) {
        self.cancel();
        if self.mode != TimerMode::TscDeadline || self.tsc_deadline == 0 {
            return;
        }
        let guest_tsc = clk.guest_tsc();
        let now = clk.now_ns();
        if self.tsc_deadline <= guest_tsc {
            self.deadline_ns = Some(now);
            return;
        }
        if let Some(ns) = tsc_cycles_to_ns(self.tsc_deadline - guest_tsc, clk.guest_tsc_khz()) {
            self.deadline_ns = Some(now.saturating_add(ns));
        }
    }

    /// Rescales the running count after a divide-configuration change
    /// (upstream `update_target_expiration()`).
    pub fn change_divide(
        &mut self,
        tmict: u32,
        old_divide: u32,
        new_divide: u32,
        now: u64,
        bus_cycle_ns: u64,
        min_periodic_ns: u64,
    ) {
        if old_divide == new_divide || self.period_ns == 0 {
            return;
        }
        self.period_ns = Self::ticks_to_ns(tmict, bus_cycle_ns, new_divide);
        self.clamp_period(min_periodic_ns);
        if self.deadline_ns.is_none()
            || !matches!(self.mode, TimerMode::OneShot | TimerMode::Periodic)
        {
            return;
        }
        let remaining = self.target_ns.saturating_sub(now);
        let rescaled = mul_div(remaining, u64::from(new_divide), u64::from(old_divide));
        self.target_ns = now.saturating_add(rescaled);
        self.deadline_ns = Some(self.target_ns);
    }

    /// Whether the host timer deadline has passed at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        matches!(self.deadline_ns, Some(deadline) if deadline <= now)
    }

    /// Bookkeeping after the timer interrupt was delivered at `now`.
    ///
    /// Periodic: the next target is one period later; when the host was so
    /// late that it is already in the past, counting restarts from `now`
    /// (no burst of catch-up interrupts, like upstream).
    pub fn after_fire(&mut self, now: u64) {
        match self.mode {
            TimerMode::Periodic if self.period_ns != 0 => {
                let mut next = self.target_ns.saturating_add(self.period_ns);
                if next <= now {
                    next = now.saturating_add(self.period_ns);
                }
                self.target_ns = next;
                self.deadline_ns = Some(next);
            }
            TimerMode::TscDeadline => {
                self.tsc_deadline = 0;
                self.deadline_ns = None;
            }
            _ => {
                self.target_ns = 0;
                self.deadline_ns = None;
            }
        }
    }

    /// TMCCT at `now` (upstream `apic_get_tmcct()`; the inert reserved
    /// mode reads 0 like TSC-deadline mode).
    pub fn current_count(&self, tmict: u32, now: u64, bus_cycle_ns: u64, divide: u32) -> u32 {
        if !matches!(self.mode, TimerMode::OneShot | TimerMode::Periodic)
            || tmict == 0
            || self.period_ns == 0
        {
            return 0;
        }
        let remaining = self.target_ns.saturating_sub(now);
        let in_period = remaining % self.period_ns;
        let tick_ns = bus_cycle_ns.saturating_mul(u64::from(divide));
        match in_period.checked_div(tick_ns) {
            Some(ticks) => u32::try_from(ticks).unwrap_or(u32::MAX),
            None => 0,
        }
    }
}
