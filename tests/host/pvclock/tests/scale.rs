//! kvmclock scaling: what the guest computes from our time info.

use rkvm_pvclock::pvclock::*;

/// Reference: exact ns for `ticks` of a `khz` clock.
fn exact_ns(ticks: u64, khz: u64) -> u128 {
    u128::from(ticks) * 1_000_000 / u128::from(khz)
}

#[test]
fn scale_matches_exact_conversion_for_common_frequencies() {
    for khz in [
        1_000u64, 100_000, 1_000_000, 1_993_000, 2_596_105, 3_000_000, 3_999_999, 5_200_000,
        10_000_000,
    ] {
        let s = TimeScale::for_tsc_khz(khz).unwrap();
        for ticks in [
            0u64,
            1,
            1000,
            123_456_789,
            khz * 1000,
            khz * 1000 * 3600,
            khz * 1000 * 86_400,
        ] {
            let got = u128::from(s.scale(ticks));
            let want = exact_ns(ticks, khz);
            // 32.32 fixed point: relative error below 2^-31, plus rounding.
            let tol = want / (1 << 30) + 2;
            assert!(
                got.abs_diff(want) <= tol,
                "khz {khz} ticks {ticks}: got {got}, want {want} (scale {s:?})"
            );
        }
    }
}

#[test]
fn upstream_values_for_known_rates() {
    // 1 GHz: identity with mul 2^31 and shift 1.
    assert_eq!(
        TimeScale::for_tsc_khz(1_000_000),
        Some(TimeScale {
            mul: 0x8000_0000,
            shift: 1
        })
    );
    // 2 GHz: half.
    let s = TimeScale::for_tsc_khz(2_000_000).unwrap();
    assert_eq!(s.scale(2_000_000_000), 1_000_000_000);
    // 1 MHz: a microsecond per tick.
    let s = TimeScale::for_tsc_khz(1_000).unwrap();
    assert_eq!(s.scale(1), 1_000);
    assert_eq!(TimeScale::for_tsc_khz(0), None);
}

#[test]
fn time_info_layout_and_guest_view() {
    let t = VcpuTimeInfo {
        tsc_timestamp: 0x1122_3344_5566_7788,
        system_time: 5_000_000_000,
        scale: TimeScale::for_tsc_khz(2_000_000).unwrap(),
        flags: PVCLOCK_TSC_STABLE_BIT,
    };
    let b = t.to_bytes(7);
    assert_eq!(&b[0..4], &7u32.to_le_bytes());
    assert_eq!(&b[4..8], &[0; 4]);
    assert_eq!(&b[8..16], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(&b[16..24], &5_000_000_000u64.to_le_bytes());
    assert_eq!(&b[24..28], &t.scale.mul.to_le_bytes());
    assert_eq!(b[28] as i8, t.scale.shift);
    assert_eq!(b[29], PVCLOCK_TSC_STABLE_BIT);
    assert_eq!(&b[30..32], &[0, 0]);
    // One second of TSC later the guest sees one more second.
    assert_eq!(t.guest_ns(t.tsc_timestamp + 2_000_000_000), 6_000_000_000);
}

#[test]
fn wall_clock_layout_and_msr_decoding() {
    let b = wall_clock_bytes(2, 1_700_000_000_123_456_789);
    assert_eq!(&b[0..4], &2u32.to_le_bytes());
    assert_eq!(&b[4..8], &1_700_000_000u32.to_le_bytes());
    assert_eq!(&b[8..12], &123_456_789u32.to_le_bytes());
    assert_eq!(msr_gpa(0x1234_5001), Some(0x1234_5000));
    assert_eq!(msr_gpa(0x1234_5000), None);
}

#[test]
fn scale_never_panics() {
    for khz in (1..64)
        .map(|s| 1u64 << s)
        .chain([u64::MAX / 1000, u64::MAX])
    {
        let s = TimeScale::for_tsc_khz(khz).unwrap();
        let _ = s.scale(u64::MAX);
        let _ = s.scale(0);
    }
    assert_eq!(TimeScale::new(0, 1), TimeScale::default());
    assert_eq!(TimeScale::new(1, 0), TimeScale::default());
    let _ = TimeScale::new(u64::MAX, u64::MAX);
    let _ = TimeScale::new(1, u64::MAX);
}

#[test]
fn tsc_writes_of_zero_and_close_values_keep_one_offset() {
    let khz = 2_000_000; // 2 GHz: 2 cycles per ns
    let mut s = TscSync::new();
    // vCPU 0 created at host TSC 1000: its TSC starts at 0.
    let o0 = s.write(0, 1000, 10_000, khz);
    assert_eq!(o0, 0u64.wrapping_sub(1000));
    // vCPU 1 created 1 ms later: same offset, not a new zero.
    assert_eq!(s.write(0, 2_001_000, 1_010_000, khz), o0);
    // QEMU's reset writes 0 to both, later: still the same TSC.
    assert_eq!(s.write(0, 9_000_000_000, 4_500_000_000, khz), o0);
    // A value far from it starts a new clock.
    let o1 = s.write(1 << 40, 10_000_000_000, 5_000_000_000, khz);
    assert_eq!(o1, (1u64 << 40).wrapping_sub(10_000_000_000));
    // ... which the next vCPU's write then joins: 1 ms later and 0.4 s
    // (of TSC) off from where that clock is now, as upstream allows.
    let next = (1u64 << 40) + 2 * 1_000_000 + 800_000_000;
    assert_eq!(s.write(next, 10_002_000_000, 5_001_000_000, khz), o1);
    // 1.5 s off is a new clock again.
    let far = next + 2 * 1_000_000 + 3_000_000_000;
    assert_ne!(s.write(far, 10_004_000_000, 5_002_000_000, khz), o1);
}
