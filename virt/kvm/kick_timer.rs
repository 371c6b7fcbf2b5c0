// SPDX-License-Identifier: GPL-2.0
//! Timers that post a request to a vCPU when they expire (the LAPIC timer,
//! the PIT). The device models compute deadlines; the vCPU services them.

use crate::{ext::time, virt::kick::VcpuKick};
use kernel::{
    impl_has_hr_timer,
    prelude::*,
    sync::{Arc, ArcBorrow},
    time::{
        hrtimer::{
            ArcHrTimerHandle, HrTimer, HrTimerCallback, HrTimerCallbackContext, HrTimerPointer,
            HrTimerRestart, RelativeMode,
        },
        Delta, Monotonic,
    },
};

/// An hrtimer that posts `req` to a vCPU.
#[pin_data]
pub(crate) struct KickTimer {
    #[pin]
    timer: HrTimer<KickTimer>,
    kick: Arc<VcpuKick>,
    req: u64,
}

impl HrTimerCallback for KickTimer {
    type Pointer<'a> = Arc<Self>;

    fn run(this: ArcBorrow<'_, Self>, _ctx: HrTimerCallbackContext<'_, Self>) -> HrTimerRestart {
        this.kick.post(this.req);
        HrTimerRestart::NoRestart
    }
}

impl_has_hr_timer! {
    impl HasHrTimer<Self> for KickTimer {
        mode: RelativeMode<Monotonic>, field: self.timer
    }
}

/// The current time on the clock the device models use (monotonic ns).
pub(crate) fn now_ns() -> u64 {
    time::monotonic_ns()
}

/// A [`KickTimer`] and its armed deadline.
pub(crate) struct DeviceTimer {
    timer: Arc<KickTimer>,
    handle: Option<ArcHrTimerHandle<KickTimer>>,
    deadline: Option<u64>,
}

impl DeviceTimer {
    /// A disarmed timer posting `req` to `kick`.
    pub(crate) fn new(kick: Arc<VcpuKick>, req: u64) -> Result<Self> {
        let timer = Arc::pin_init(
            pin_init!(KickTimer { timer <- HrTimer::new(), kick, req }),
            GFP_KERNEL_ACCOUNT,
        )?;
        Ok(Self {
            timer,
            handle: None,
            deadline: None,
        })
    }

    /// Arms the timer for absolute `deadline` (monotonic ns), or cancels
    /// it (`None`). Re-arms only when the deadline changed.
    pub(crate) fn set(&mut self, deadline: Option<u64>) {
        if deadline == self.deadline && (deadline.is_none() || self.handle.is_some()) {
            return;
        }
        // Dropping the handle cancels the timer.
        self.handle = None;
        self.deadline = deadline;
        if let Some(d) = deadline {
            let delta = d.saturating_sub(now_ns()).min(i64::MAX as u64) as i64;
            self.handle = Some(self.timer.clone().start(Delta::from_nanos(delta)));
        }
    }
}
