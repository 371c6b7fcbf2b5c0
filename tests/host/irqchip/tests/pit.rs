//! 8254 PIT with a fake clock: every mode's counter and OUT at exact
//! times, access modes, latch and read-back, BCD, gate and port 0x61,
//! channel-0 deadlines, reinjection policy and the KVM_GET/SET_PIT2 image.

mod common;

use rkvm_irqchip::irqchip::i8254::*;
use rkvm_irqchip::irqchip::uapi::*;

const CH0: u16 = 0x40;
const CH2: u16 = 0x42;
const CTRL: u16 = 0x43;

/// Host time at which exactly `d` PIT clocks have elapsed since `t0`.
fn at(t0: u64, d: u64) -> u64 {
    t0 + (d * 1_000_000_000).div_ceil(PIT_FREQ_HZ)
}

/// Programs `channel` with a control word for mode `mode`, word access,
/// and loads `count` at `now`.
fn program(pit: &mut Pit, channel: u8, mode: u8, count: u16, now: u64) {
    pit.port_write(CTRL, (channel << 6) | 0x30 | (mode << 1), now);
    let [lo, hi] = count.to_le_bytes();
    pit.port_write(CH0 + u16::from(channel), lo, now);
    pit.port_write(CH0 + u16::from(channel), hi, now);
}

fn read_word(pit: &mut Pit, port: u16, now: u64) -> u16 {
    let lo = pit.port_read(port, now);
    let hi = pit.port_read(port, now);
    u16::from_le_bytes([lo, hi])
}

#[test]
fn reset_state() {
    let pit = Pit::new(0);
    let s = pit.get_state2();
    for (i, c) in s.channels.iter().enumerate() {
        assert_eq!(c.mode, 0xff);
        assert_eq!(c.count, 0x10000);
        assert_eq!(c.gate, u8::from(i != 2));
    }
    assert_eq!(pit.next_deadline_ns(), None);
    assert_eq!(pit.reinject_policy(), ReinjectPolicy::Reinject);
}

#[test]
fn channel0_rate_generator_deadlines() {
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 2, 1193, 1_000);
    assert_eq!(pit.next_deadline_ns(), Some(1_000 + 999_848));
    assert!(!pit.service(1_000 + 999_847));
    assert!(pit.service(1_000 + 999_848));
    assert_eq!(pit.next_deadline_ns(), Some(1_000 + 2 * 999_848));
    // Counter: 1193 - d, reloading every period.
    assert_eq!(pit.counter(0, at(1_000 + 999_848, 500)), 693);
    pit.port_write(CTRL, 0x00, at(1_000 + 999_848, 700));
    assert_eq!(
        read_word(&mut pit, CH0, 0),
        493,
        "latched value survives later reads"
    );
    // Mode 0 on channel 0 is one-shot.
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 0, 100, 0);
    assert_eq!(pit.next_deadline_ns(), Some(83_809));
    assert!(pit.service(90_000));
    assert_eq!(pit.next_deadline_ns(), None);
    // A periodic count below 200 us is clamped after the first tick.
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 2, 2, 0);
    assert!(pit.service(pit.next_deadline_ns().unwrap()));
    assert_eq!(pit.next_deadline_ns(), Some(1_676 + 200_000));
    // Count 0 means 65536.
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 3, 0, 0);
    assert_eq!(pit.next_deadline_ns(), Some(54_925_447));
}

#[test]
fn mode0_interrupt_on_terminal_count() {
    let mut pit = Pit::new(0);
    program(&mut pit, 2, 0, 1000, 0);
    assert!(!pit.out(2, at(0, 999)));
    assert!(pit.out(2, at(0, 1000)));
    assert_eq!(pit.counter(2, at(0, 100)), 900);
    assert_eq!(
        pit.counter(2, at(0, 1001)),
        0xffff,
        "wraps after terminal count"
    );
    // Port 0x61 bit 5 mirrors channel-2 OUT (Linux's TSC calibration).
    pit.speaker_write(0x01, 0);
    assert_eq!(pit.speaker_read(at(0, 999)) & 0x20, 0);
    assert_eq!(pit.speaker_read(at(0, 1000)) & 0x20, 0x20);
}

#[test]
fn mode1_hardware_retriggerable_one_shot() {
    let mut pit = Pit::new(0);
    program(&mut pit, 2, 1, 100, 0);
    // Gate rising edge (port 0x61 bit 0) triggers the count at t=10_000.
    pit.speaker_write(0x01, 10_000);
    assert!(!pit.out(2, at(10_000, 50)), "low while counting");
    assert!(pit.out(2, at(10_000, 100)));
    assert_eq!(pit.counter(2, at(10_000, 40)), 60);
    // Re-trigger.
    pit.speaker_write(0x00, 200_000);
    pit.speaker_write(0x01, 300_000);
    assert!(!pit.out(2, at(300_000, 10)));
}

#[test]
fn mode2_rate_generator_out_pulse() {
    let mut pit = Pit::new(0);
    program(&mut pit, 1, 2, 10, 0);
    assert!(pit.out(1, at(0, 8)));
    assert!(
        !pit.out(1, at(0, 9)),
        "low for the clock where the count is 1"
    );
    assert!(pit.out(1, at(0, 10)));
    assert_eq!(pit.counter(1, at(0, 13)), 7);
}

#[test]
fn mode3_square_wave() {
    let mut pit = Pit::new(0);
    program(&mut pit, 2, 3, 1000, 0);
    assert!(pit.out(2, at(0, 0)));
    assert!(pit.out(2, at(0, 499)));
    assert!(!pit.out(2, at(0, 500)));
    assert!(!pit.out(2, at(0, 999)));
    assert!(pit.out(2, at(0, 1000)));
    // Counts down by two.
    assert_eq!(pit.counter(2, at(0, 100)), 800);
    // Control words with mode 6/7 alias 2/3.
    pit.port_write(CTRL, 0xbe, 0);
    assert_eq!(pit.get_state2().channels[2].mode, 3);
}

#[test]
fn mode4_and_mode5_strobes() {
    let mut pit = Pit::new(0);
    program(&mut pit, 1, 4, 50, 0);
    assert!(pit.out(1, at(0, 49)));
    assert!(!pit.out(1, at(0, 50)));
    assert!(pit.out(1, at(0, 51)));
    let mut pit = Pit::new(0);
    program(&mut pit, 2, 5, 50, 0);
    pit.speaker_write(0x01, 1_000);
    assert!(!pit.out(2, at(1_000, 50)));
    assert!(pit.out(2, at(1_000, 49)));
}

#[test]
fn access_modes_latch_and_read_back() {
    let mut pit = Pit::new(0);
    // LSB only.
    pit.port_write(CTRL, 0x90, 0); // ch2, LSB, mode 0
    pit.port_write(CH2, 0x80, 0);
    assert_eq!(pit.get_state2().channels[2].count, 0x80);
    assert_eq!(pit.port_read(CH2, at(0, 0x10)), 0x70);
    // MSB only.
    pit.port_write(CTRL, 0xa0, 0);
    pit.port_write(CH2, 0x12, 0);
    assert_eq!(pit.get_state2().channels[2].count, 0x1200);
    assert_eq!(pit.port_read(CH2, at(0, 0x100)), 0x11);
    // Word access alternates LSB/MSB on reads.
    program(&mut pit, 2, 0, 0x1234, 0);
    assert_eq!(pit.port_read(CH2, at(0, 0x34)), 0x00);
    assert_eq!(pit.port_read(CH2, at(0, 0x34)), 0x12);
    // Counter latch: later reads return the latched value until consumed.
    pit.port_write(CTRL, 0x80, at(0, 0x100));
    pit.port_write(CTRL, 0x80, at(0, 0x200)); // ignored while latched
    assert_eq!(read_word(&mut pit, CH2, at(0, 0x900)), 0x1134);
    assert_eq!(
        read_word(&mut pit, CH2, at(0, 0x1234)),
        0x0000,
        "live again"
    );
    // Read-back: status then count of channel 2.
    pit.port_write(CTRL, 0xc8, at(0, 0x1000));
    assert_eq!(
        pit.port_read(CH2, 0),
        0x30,
        "OUT low, word access, mode 0, binary"
    );
    assert_eq!(read_word(&mut pit, CH2, 0), 0x0234);
    pit.port_write(CTRL, 0xe8, at(0, 0x1234)); // status only
    assert_eq!(pit.port_read(CH2, 0), 0xb0, "OUT high after terminal count");
    // Reading the control port yields 0; ports outside the range nothing.
    assert_eq!(pit.port_read(CTRL, 0), 0);
    assert_eq!(pit.port_read(0x44, 0), 0);
}

#[test]
fn bcd_counting() {
    let mut pit = Pit::new(0);
    pit.port_write(CTRL, 0xb1, 0); // ch2, word, mode 0, BCD
    pit.port_write(CH2, 0x00, 0);
    pit.port_write(CH2, 0x10, 0); // 1000 decimal
    assert_eq!(pit.get_state2().channels[2].count, 1000);
    assert_eq!(read_word(&mut pit, CH2, at(0, 1)), 0x0999);
    assert_eq!(read_word(&mut pit, CH2, at(0, 1001)), 0x9999, "BCD wrap");
    pit.port_write(CTRL, 0xe8, 0);
    assert_eq!(pit.port_read(CH2, 0) & 1, 1, "status shows BCD");
    // BCD 0 is the largest count, 10000.
    pit.port_write(CTRL, 0xb1, 0);
    pit.port_write(CH2, 0, 0);
    pit.port_write(CH2, 0, 0);
    assert_eq!(pit.get_state2().channels[2].count, 10_000);
}

#[test]
fn speaker_port() {
    let mut pit = Pit::new(0);
    assert_eq!(pit.speaker_read(0) & 0x03, 0);
    pit.speaker_write(0x03, 0);
    assert_eq!(pit.speaker_read(0) & 0x03, 0x03);
    assert_eq!(pit.get_state2().flags, KVM_PIT_FLAGS_SPEAKER_DATA_ON);
    assert_eq!(pit.speaker_read(1 << 14) & 0x10, 0x10, "refresh toggles");
    assert_eq!(pit.speaker_read(2 << 14) & 0x10, 0);
    pit.speaker_write(0x00, 0);
    assert_eq!(pit.get_state2().flags, 0);
}

#[test]
fn reinjection_of_missed_ticks() {
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 2, 11932, 0); // 10 ms
    let period = 10_000_159;
    // 3.5 periods late: four ticks are due, one is injected now.
    assert!(pit.service(period * 4 + period / 2));
    assert_eq!(pit.pending_ticks(), 4);
    assert_eq!(pit.next_deadline_ns(), Some(period * 5));
    // Each guest acknowledgement releases the next one.
    assert!(pit.irq_acked());
    assert!(pit.irq_acked());
    assert!(pit.irq_acked());
    assert!(!pit.irq_acked());
    assert_eq!(pit.pending_ticks(), 0);
    // A tick while the previous is unacknowledged waits for the ack.
    assert!(pit.service(period * 5));
    assert!(!pit.service(period * 6));
    assert!(pit.irq_acked());
    assert!(!pit.irq_acked());
    // Unmasking GSI 0 forgets stale ticks.
    assert!(pit.service(period * 7));
    assert!(!pit.service(period * 8));
    pit.irq_mask_changed(false);
    assert_eq!(pit.pending_ticks(), 0);
    // Coalescing policy: every due tick injects, missed ones are lost.
    pit.set_reinject_policy(ReinjectPolicy::Coalesce);
    assert!(pit.service(period * 12));
    assert!(pit.service(period * 13));
    assert!(!pit.irq_acked());
}

/// Upstream's mask notifier on GSI 0 (kvm_pit_reset_reinject): while IRQ0
/// is masked the guest never acknowledges, so the ticks pile up for
/// reinjection behind the one delivered into the masked pin; unmasking
/// drops them: the ack of that latched interrupt releases nothing, and the
/// next tick is delivered on time, once.
#[test]
fn unmask_drops_ticks_piled_up_while_masked() {
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 2, 11932, 0); // 10 ms
    let period = 10_000_159;
    pit.irq_mask_changed(true);
    // The first tick is injected (into the masked pin), the next 99 wait.
    assert!(pit.service(period));
    for i in 2..=100 {
        assert!(!pit.service(period * i), "tick {i} injected before an ack");
    }
    assert_eq!(pit.pending_ticks(), 100);
    // Masking again changes nothing; unmasking drops them.
    pit.irq_mask_changed(true);
    assert_eq!(pit.pending_ticks(), 100);
    pit.irq_mask_changed(false);
    assert_eq!(pit.pending_ticks(), 0);
    // The latched interrupt is taken and acknowledged: nothing follows.
    assert!(!pit.irq_acked());
    // The next tick comes at its time, alone.
    assert!(pit.service(period * 101));
    assert_eq!(pit.pending_ticks(), 1);
    assert!(!pit.irq_acked());
    assert_eq!(pit.pending_ticks(), 0);
    assert!(pit.service(period * 102));
}

#[test]
fn state2_round_trip_and_hpet_legacy() {
    let mut pit = Pit::new(0);
    program(&mut pit, 0, 2, 1193, 0);
    program(&mut pit, 2, 3, 500, 5_000);
    pit.port_write(CTRL, 0x80, 6_000);
    pit.speaker_write(0x03, 5_000);
    let s = pit.get_state2();
    assert_eq!(s.channels[2].count_latched, 3);
    assert_eq!(s.channels[2].count_load_time, 5_000);
    let mut other = Pit::new(0);
    other.set_state2(&s, 5_000);
    // Loading restarts every count at the load time (upstream), so only
    // the load time of channel 1 (loaded at reset, t=0) moves.
    let mut expect = s;
    expect.channels[1].count_load_time = 5_000;
    assert_eq!(other.get_state2(), expect);
    assert_eq!(
        other.next_deadline_ns(),
        Some(5_000 + 999_848),
        "channel 0 restarts its count"
    );
    // Entering HPET legacy mode stops channel 0 but keeps its mode.
    let mut legacy = s;
    legacy.flags |= KVM_PIT_FLAGS_HPET_LEGACY;
    other.set_state2(&legacy, 7_000);
    assert_eq!(other.next_deadline_ns(), None);
    assert_eq!(other.get_state2().channels[0].mode, 2);
    // While in legacy mode channel-0 loads do not start the timer.
    program(&mut other, 0, 2, 1193, 8_000);
    assert_eq!(other.next_deadline_ns(), None);
    // KVM_SET_PIT (v1) reloads the channels too.
    let mut v1 = Pit::new(0);
    v1.set_state(&pit.get_state(), 9_000);
    assert_eq!(v1.next_deadline_ns(), Some(9_000 + 999_848));
    // Garbage is tolerated.
    let mut junk = KvmPitState2::default();
    junk.channels[0] = KvmPitChannelState {
        count: u32::MAX,
        mode: 9,
        rw_mode: 7,
        read_state: 9,
        bcd: 1,
        ..Default::default()
    };
    junk.channels[1] = KvmPitChannelState {
        count: 0,
        mode: 3,
        count_load_time: i64::MIN,
        ..Default::default()
    };
    other.set_state2(&junk, 0);
    let _ = other.port_read(CH0, u64::MAX);
    let _ = other.port_read(0x41, 12345);
    other.port_write(CTRL, 0xce, 1);
    let _ = other.service(u64::MAX);
    let _ = common::clk(0);
}
