//! 8254 programmable interval timer: three channels on ports 0x40-0x43 and
//! the speaker/gate port 0x61 (upstream `arch/x86/kvm/i8254.c`).
//!
//! Counts are computed from elapsed host time, never by ticking. Channel 0
//! drives IRQ0 through a host timer whose absolute deadline is
//! [`Pit::next_deadline_ns`]; when it passes the run loop calls
//! [`Pit::service`], which says whether to pulse GSI 0. With reinjection
//! (the default, `KVM_REINJECT_CONTROL`) every missed tick is delivered,
//! one per guest acknowledgement ([`Pit::irq_acked`]).

use super::arith::{bcd_to_bin, bin_to_bcd, mul_div};
use super::uapi::{
    KvmPitChannelState, KvmPitState, KvmPitState2, KVM_PIT_FLAGS_HPET_LEGACY,
    KVM_PIT_FLAGS_SPEAKER_DATA_ON,
};
use crate::defs::time::NSEC_PER_SEC;

/// Input clock of the 8254 in Hz.
pub const PIT_FREQ_HZ: u64 = 1_193_181;
/// First PIT port (channel 0 data).
pub const PIT_BASE_PORT: u16 = 0x40;
/// Number of PIT ports.
pub const PIT_PORT_COUNT: u16 = 4;
/// The system control port B (speaker gate/data, channel 2 output).
pub const SPEAKER_PORT: u16 = 0x61;
/// IRQ source id suggested for the PIT's GSI 0 pulses.
pub const PIT_IRQ_SOURCE_ID: u32 = 2;
/// Default minimum period of a periodic channel-0 timer (200 us).
pub const PIT_DEFAULT_MIN_PERIOD_NS: u64 = 200_000;
/// Mode value of a channel that was never programmed.
pub const PIT_MODE_UNSET: u8 = 0xff;

const CONTROL_PORT: u16 = 3;
const PORT_MASK: u16 = 3;
const CW_CHANNEL_SHIFT: u8 = 6;
const CW_READ_BACK: u8 = 3;
const CW_ACCESS_SHIFT: u8 = 4;
const CW_ACCESS_MASK: u8 = 3;
const CW_MODE_SHIFT: u8 = 1;
const CW_MODE_MASK: u8 = 7;
const CW_BCD: u8 = 1;
const RB_NO_COUNT: u8 = 0x20;
const RB_NO_STATUS: u8 = 0x10;
const STATUS_OUT_SHIFT: u8 = 7;
const SPEAKER_GATE2: u8 = 0x01;
const SPEAKER_DATA: u8 = 0x02;
const SPEAKER_REFRESH_SHIFT: u8 = 4;
const SPEAKER_OUT2_SHIFT: u8 = 5;
/// Port 0x61 bit 4 toggles about every 15 us; approximated as 2^14 ns.
const REFRESH_CLOCK_SHIFT: u32 = 14;
const FULL_COUNT_BIN: u32 = 0x1_0000;
const FULL_COUNT_BCD: u32 = 10_000;

/// Read/write sequencing states (`RW_STATE_*`), as set by the access
/// field of a control word. 1 (`RW_STATE_LSB`, low byte only) is what the
/// `_` arms below handle, together with values a restored state may hold.
const RW_STATE_MSB: u8 = 2;
const RW_STATE_WORD0: u8 = 3;
const RW_STATE_WORD1: u8 = 4;

/// One channel (the fields of `struct kvm_pit_channel_state`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Channel {
    count: u32,
    latched_count: u16,
    count_latched: u8,
    status_latched: u8,
    status: u8,
    read_state: u8,
    write_state: u8,
    write_latch: u8,
    rw_mode: u8,
    mode: u8,
    bcd: u8,
    gate: u8,
    count_load_time: u64,
}

impl Channel {
    fn to_uapi(self) -> KvmPitChannelState {
        KvmPitChannelState {
            count: self.count,
            latched_count: self.latched_count,
            count_latched: self.count_latched,
            status_latched: self.status_latched,
            status: self.status,
            read_state: self.read_state,
            write_state: self.write_state,
            write_latch: self.write_latch,
            rw_mode: self.rw_mode,
            mode: self.mode,
            bcd: self.bcd,
            gate: self.gate,
            count_load_time: self.count_load_time as i64,
        }
    }

    fn from_uapi(s: &KvmPitChannelState) -> Self {
        Self {
            count: s.count,
            latched_count: s.latched_count,
            count_latched: s.count_latched,
            status_latched: s.status_latched,
            status: s.status,
            read_state: s.read_state,
            write_state: s.write_state,
            write_latch: s.write_latch,
            rw_mode: s.rw_mode,
            mode: s.mode,
            bcd: s.bcd,
            gate: s.gate,
            count_load_time: s.count_load_time as u64,
        }
    }

    /// The count as a divisor (a count of 0 means the full range).
    fn divisor(&self) -> u64 {
        if self.count == 0 {
            u64::from(FULL_COUNT_BIN)
        } else {
            u64::from(self.count)
        }
    }

    /// Counter value after `d` input clocks (upstream `pit_get_count()`).
    fn counter_after(&self, d: u64) -> u32 {
        let count = self.divisor();
        let wrap = u64::from(if self.bcd != 0 {
            FULL_COUNT_BCD
        } else {
            FULL_COUNT_BIN
        });
        let value = match self.mode {
            0 | 1 | 4 | 5 => count.wrapping_sub(d % wrap).wrapping_add(wrap) % wrap,
            // XXX as upstream: approximate for odd counts.
            3 => count - d.wrapping_mul(2) % count,
            _ => count - d % count,
        };
        value as u32
    }

    /// OUT pin after `d` input clocks, per the 8254 data sheet.
    fn out_after(&self, d: u64) -> bool {
        let count = self.divisor();
        match self.mode {
            // Low while counting, high from terminal count on.
            1 => d >= count,
            // Low for one clock when the counter reaches 1.
            2 => d % count != count - 1,
            // Square wave: high for the first half of each period.
            3 => d % count < (count + 1) >> 1,
            // Strobe: low for one clock at terminal count.
            4 | 5 => d != count,
            // Mode 0 and unprogrammed: high from terminal count on.
            _ => d >= count,
        }
    }
}

/// Policy for channel-0 ticks the guest has not acknowledged yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReinjectPolicy {
    /// Deliver every tick, one per acknowledgement (upstream default).
    Reinject,
    /// Deliver at most one pending tick; missed ones are lost.
    Coalesce,
}

/// The 8254 PIT.
#[derive(Clone, Debug)]
pub struct Pit {
    channels: [Channel; 3],
    flags: u32,
    /// Channel-0 host timer: period (ns), one-shot/periodic, next expiry.
    period_ns: u64,
    periodic: bool,
    expiry_ns: u64,
    armed: bool,
    min_period_ns: u64,
    policy: ReinjectPolicy,
    pending: u32,
    irq_ack: bool,
}

impl Pit {
    /// A PIT after reset at host time `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        let mut pit = Self {
            channels: [Channel::default(); 3],
            flags: 0,
            period_ns: 0,
            periodic: false,
            expiry_ns: 0,
            armed: false,
            min_period_ns: PIT_DEFAULT_MIN_PERIOD_NS,
            policy: ReinjectPolicy::Reinject,
            pending: 0,
            irq_ack: true,
        };
        pit.reset(now_ns);
        pit
    }

    /// Reset (upstream `kvm_pit_reset()`).
    pub fn reset(&mut self, now_ns: u64) {
        self.flags = 0;
        for index in 0..3 {
            let ch = self.channel_mut(index);
            ch.mode = PIT_MODE_UNSET;
            ch.gate = u8::from(index != 2);
            self.load_count(index, 0, now_ns);
        }
        self.reset_reinject();
    }

    fn channel_mut(&mut self, index: usize) -> &mut Channel {
        let [c0, c1, c2] = &mut self.channels;
        match index {
            0 => c0,
            1 => c1,
            _ => c2,
        }
    }

    fn channel(&self, index: usize) -> &Channel {
        let [c0, c1, c2] = &self.channels;
        match index {
            0 => c0,
            1 => c1,
            _ => c2,
        }
    }

    /// Sets the minimum period of a periodic channel-0 timer.
    pub fn set_min_period_ns(&mut self, ns: u64) {
        self.min_period_ns = ns;
    }

    // ---- reinjection ---------------------------------------------------

    fn reset_reinject(&mut self) {
        self.pending = 0;
        self.irq_ack = true;
    }

    /// KVM_REINJECT_CONTROL.
    pub fn set_reinject_policy(&mut self, policy: ReinjectPolicy) {
        if self.policy != policy {
            self.policy = policy;
            self.reset_reinject();
        }
    }

    /// Current reinjection policy.
    pub fn reinject_policy(&self) -> ReinjectPolicy {
        self.policy
    }

    /// Ticks not yet acknowledged by the guest (reinjection mode).
    pub fn pending_ticks(&self) -> u32 {
        self.pending
    }

    /// Ack notifier for GSI 0 (the guest EOIed IRQ0 at the PIC or IOAPIC).
    /// Returns `true` when the next missed tick must be delivered now
    /// (pulse GSI 0 exactly as for [`Self::service`]).
    pub fn irq_acked(&mut self) -> bool {
        if self.policy != ReinjectPolicy::Reinject {
            return false;
        }
        self.irq_ack = true;
        if self.pending == 0 {
            return false;
        }
        self.pending -= 1;
        if self.pending == 0 {
            return false;
        }
        self.irq_ack = false;
        true
    }

    /// Mask notifier for GSI 0: unmasking forgets stale missed ticks.
    pub fn irq_mask_changed(&mut self, masked: bool) {
        if !masked {
            self.reset_reinject();
        }
    }

    // ---- channel 0 host timer -------------------------------------------

    /// Absolute host time (ns) at which [`Self::service`] must run next.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        self.armed.then_some(self.expiry_ns)
    }

    /// Processes channel-0 expirations up to `now_ns`. Returns `true` when
    /// the caller must pulse GSI 0 (set_irq 1 then 0 with
    /// [`PIT_IRQ_SOURCE_ID`]) and, if any LAPIC's LINT0 is in NMI mode,
    /// deliver LINT0 there (virtual-wire NMI watchdog).
    pub fn service(&mut self, now_ns: u64) -> bool {
        if !self.armed || now_ns < self.expiry_ns {
            return false;
        }
        let mut ticks: u32 = 1;
        if self.periodic && self.period_ns != 0 {
            let late = (now_ns - self.expiry_ns) / self.period_ns;
            ticks = u32::try_from(late).unwrap_or(u32::MAX).saturating_add(1);
            let advance = self.period_ns.saturating_mul(late.saturating_add(1));
            self.expiry_ns = self.expiry_ns.saturating_add(advance);
        } else {
            self.armed = false;
        }
        match self.policy {
            ReinjectPolicy::Coalesce => true,
            ReinjectPolicy::Reinject => {
                self.pending = self.pending.saturating_add(ticks);
                if self.irq_ack {
                    self.irq_ack = false;
                    true
                } else {
                    false
                }
            }
        }
    }

    fn start_timer(&mut self, count: u32, periodic: bool, now_ns: u64) {
        if self.flags & KVM_PIT_FLAGS_HPET_LEGACY != 0 {
            return;
        }
        let interval = mul_div(u64::from(count), NSEC_PER_SEC, PIT_FREQ_HZ);
        self.period_ns = interval;
        self.periodic = periodic;
        self.reset_reinject();
        if periodic && self.period_ns < self.min_period_ns {
            self.period_ns = self.min_period_ns;
        }
        self.expiry_ns = now_ns.saturating_add(interval);
        self.armed = true;
    }

    /// Input clocks elapsed for `index` at `now_ns`.
    fn elapsed_clocks(&self, index: usize, now_ns: u64) -> u64 {
        let ns = if index == 0 {
            if self.period_ns == 0 {
                0
            } else if self.periodic && now_ns >= self.expiry_ns {
                (now_ns - self.expiry_ns) % self.period_ns
            } else {
                now_ns
                    .saturating_add(self.period_ns)
                    .saturating_sub(self.expiry_ns)
            }
        } else {
            now_ns.saturating_sub(self.channel(index).count_load_time)
        };
        mul_div(ns, PIT_FREQ_HZ, NSEC_PER_SEC)
    }

    fn load_count(&mut self, index: usize, value: u32, now_ns: u64) {
        let count = if value == 0 { FULL_COUNT_BIN } else { value };
        let ch = self.channel_mut(index);
        ch.count = count;
        if index != 0 {
            ch.count_load_time = now_ns;
            return;
        }
        match ch.mode {
            0 | 1 | 4 => self.start_timer(count, false, now_ns),
            2 | 3 => self.start_timer(count, true, now_ns),
            _ => self.armed = false,
        }
    }

    // ---- counter / output -----------------------------------------------

    /// Current counter value of channel `index` (binary or BCD encoded).
    pub fn counter(&self, index: usize, now_ns: u64) -> u16 {
        let ch = self.channel(index);
        let value = ch.counter_after(self.elapsed_clocks(index, now_ns));
        if ch.bcd != 0 {
            bin_to_bcd(value)
        } else {
            value as u16
        }
    }

    /// OUT pin of channel `index`.
    pub fn out(&self, index: usize, now_ns: u64) -> bool {
        self.channel(index)
            .out_after(self.elapsed_clocks(index, now_ns))
    }

    fn latch_count(&mut self, index: usize, now_ns: u64) {
        if self.channel(index).count_latched == 0 {
            let value = self.counter(index, now_ns);
            let ch = self.channel_mut(index);
            ch.latched_count = value;
            ch.count_latched = ch.rw_mode;
        }
    }

    fn latch_status(&mut self, index: usize, now_ns: u64) {
        if self.channel(index).status_latched == 0 {
            let out = u8::from(self.out(index, now_ns));
            let ch = self.channel_mut(index);
            ch.status = (out << STATUS_OUT_SHIFT)
                | ((ch.rw_mode & CW_ACCESS_MASK) << CW_ACCESS_SHIFT)
                | ((ch.mode & CW_MODE_MASK) << CW_MODE_SHIFT)
                | (ch.bcd & CW_BCD);
            ch.status_latched = 1;
        }
    }

    fn set_gate(&mut self, index: usize, gate: u8, now_ns: u64) {
        let ch = self.channel_mut(index);
        // Modes 1, 2, 3 and 5 restart counting on a rising gate edge.
        if matches!(ch.mode, 1 | 2 | 3 | 5) && ch.gate < gate {
            ch.count_load_time = now_ns;
        }
        ch.gate = gate;
    }

    // ---- ports ----------------------------------------------------------

    fn write_control(&mut self, val: u8, now_ns: u64) {
        let channel = val >> CW_CHANNEL_SHIFT;
        if channel == CW_READ_BACK {
            for index in 0..3usize {
                if val & (2 << index) == 0 {
                    continue;
                }
                if val & RB_NO_COUNT == 0 {
                    self.latch_count(index, now_ns);
                }
                if val & RB_NO_STATUS == 0 {
                    self.latch_status(index, now_ns);
                }
            }
            return;
        }
        let index = usize::from(channel);
        let access = (val >> CW_ACCESS_SHIFT) & CW_ACCESS_MASK;
        if access == 0 {
            self.latch_count(index, now_ns);
            return;
        }
        let ch = self.channel_mut(index);
        ch.rw_mode = access;
        ch.read_state = access;
        ch.write_state = access;
        let mode = (val >> CW_MODE_SHIFT) & CW_MODE_MASK;
        // Modes 6 and 7 are aliases of 2 and 3.
        ch.mode = if mode > 5 { mode - 4 } else { mode };
        ch.bcd = val & CW_BCD;
    }

    fn write_counter(&mut self, index: usize, val: u8, now_ns: u64) {
        let ch = self.channel_mut(index);
        let raw: u16 = match ch.write_state {
            RW_STATE_MSB => u16::from(val) << 8,
            RW_STATE_WORD0 => {
                ch.write_latch = val;
                ch.write_state = RW_STATE_WORD1;
                return;
            }
            RW_STATE_WORD1 => {
                ch.write_state = RW_STATE_WORD0;
                u16::from(ch.write_latch) | (u16::from(val) << 8)
            }
            _ => u16::from(val),
        };
        let value = if ch.bcd != 0 {
            match bcd_to_bin(raw) {
                0 => FULL_COUNT_BCD,
                v => v,
            }
        } else {
            u32::from(raw)
        };
        self.load_count(index, value, now_ns);
    }

    fn read_counter(&mut self, index: usize, now_ns: u64) -> u8 {
        let ch = *self.channel(index);
        if ch.status_latched != 0 {
            self.channel_mut(index).status_latched = 0;
            return ch.status;
        }
        if ch.count_latched != 0 {
            let [low, high] = ch.latched_count.to_le_bytes();
            let c = self.channel_mut(index);
            return match ch.count_latched {
                RW_STATE_MSB => {
                    c.count_latched = 0;
                    high
                }
                RW_STATE_WORD0 => {
                    c.count_latched = RW_STATE_MSB;
                    low
                }
                _ => {
                    c.count_latched = 0;
                    low
                }
            };
        }
        let [low, high] = self.counter(index, now_ns).to_le_bytes();
        let c = self.channel_mut(index);
        match ch.read_state {
            RW_STATE_MSB => high,
            RW_STATE_WORD0 => {
                c.read_state = RW_STATE_WORD1;
                low
            }
            RW_STATE_WORD1 => {
                c.read_state = RW_STATE_WORD0;
                high
            }
            _ => low,
        }
    }

    /// Byte write to port 0x40-0x43 (other ports are ignored).
    pub fn port_write(&mut self, port: u16, val: u8, now_ns: u64) {
        if !(PIT_BASE_PORT..PIT_BASE_PORT + PIT_PORT_COUNT).contains(&port) {
            return;
        }
        match port & PORT_MASK {
            CONTROL_PORT => self.write_control(val, now_ns),
            index => self.write_counter(usize::from(index), val, now_ns),
        }
    }

    /// Byte read from port 0x40-0x43 (the control port and other ports
    /// read 0).
    pub fn port_read(&mut self, port: u16, now_ns: u64) -> u8 {
        if !(PIT_BASE_PORT..PIT_BASE_PORT + PIT_PORT_COUNT).contains(&port) {
            return 0;
        }
        match port & PORT_MASK {
            CONTROL_PORT => 0,
            index => self.read_counter(usize::from(index), now_ns),
        }
    }

    /// Port 0x61 read: speaker data, channel-2 gate and output, refresh.
    pub fn speaker_read(&self, now_ns: u64) -> u8 {
        let refresh = ((now_ns >> REFRESH_CLOCK_SHIFT) & 1) as u8;
        let data = if self.flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON != 0 {
            SPEAKER_DATA
        } else {
            0
        };
        data | (self.channel(2).gate & SPEAKER_GATE2)
            | (u8::from(self.out(2, now_ns)) << SPEAKER_OUT2_SHIFT)
            | (refresh << SPEAKER_REFRESH_SHIFT)
    }

    /// Port 0x61 write: speaker data enable and channel-2 gate.
    pub fn speaker_write(&mut self, val: u8, now_ns: u64) {
        if val & SPEAKER_DATA != 0 {
            self.flags |= KVM_PIT_FLAGS_SPEAKER_DATA_ON;
        } else {
            self.flags &= !KVM_PIT_FLAGS_SPEAKER_DATA_ON;
        }
        self.set_gate(2, val & SPEAKER_GATE2, now_ns);
    }

    // ---- KVM_GET/SET_PIT(2) ---------------------------------------------

    /// KVM_GET_PIT2.
    pub fn get_state2(&self) -> KvmPitState2 {
        KvmPitState2 {
            channels: self.get_state().channels,
            flags: self.flags,
            reserved: [0; 9],
        }
    }

    /// KVM_SET_PIT2: loads the channels and flags and restarts every count
    /// from `now_ns` (entering HPET legacy mode stops channel 0).
    pub fn set_state2(&mut self, state: &KvmPitState2, now_ns: u64) {
        let start_legacy = self.flags & KVM_PIT_FLAGS_HPET_LEGACY == 0
            && state.flags & KVM_PIT_FLAGS_HPET_LEGACY != 0;
        self.flags = state.flags;
        self.load_channels(&state.channels, start_legacy, now_ns);
    }

    /// KVM_GET_PIT.
    pub fn get_state(&self) -> KvmPitState {
        let [c0, c1, c2] = &self.channels;
        KvmPitState {
            channels: [c0.to_uapi(), c1.to_uapi(), c2.to_uapi()],
        }
    }

    /// KVM_SET_PIT.
    pub fn set_state(&mut self, state: &KvmPitState, now_ns: u64) {
        self.load_channels(&state.channels, false, now_ns);
    }

    fn load_channels(
        &mut self,
        channels: &[KvmPitChannelState; 3],
        start_legacy: bool,
        now_ns: u64,
    ) {
        for (index, s) in channels.iter().enumerate() {
            *self.channel_mut(index) = Channel::from_uapi(s);
        }
        for index in 0..3 {
            let count = self.channel(index).count;
            if start_legacy && index == 0 {
                let mode = self.channel(0).mode;
                self.channel_mut(0).mode = PIT_MODE_UNSET;
                self.load_count(0, count, now_ns);
                self.channel_mut(0).mode = mode;
            } else {
                self.load_count(index, count, now_ns);
            }
        }
    }
}
