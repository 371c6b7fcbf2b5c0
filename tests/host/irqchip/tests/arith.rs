//! Integer helpers against a 128-bit reference, and small decoders.

mod common;

use common::Rng;
use rkvm_irqchip::irqchip::arith::*;
use rkvm_irqchip::irqchip::lapic_timer::divide_count;

#[test]
fn mul_div_matches_u128() {
    let mut rng = Rng::new(9);
    let edge = [
        0u64,
        1,
        2,
        3,
        0xffff_ffff,
        0x1_0000_0000,
        u64::MAX,
        u64::MAX - 1,
        1_000_000_000,
        1_193_181,
    ];
    for _ in 0..200_000 {
        let pick = |rng: &mut Rng| {
            if rng.bool() {
                rng.pick(&edge)
            } else {
                rng.next() >> rng.below(64)
            }
        };
        let (a, b, d) = (pick(&mut rng), pick(&mut rng), pick(&mut rng));
        let expect = if d == 0 {
            u64::MAX
        } else {
            u64::try_from(u128::from(a) * u128::from(b) / u128::from(d)).unwrap_or(u64::MAX)
        };
        assert_eq!(mul_div(a, b, d), expect, "{a} * {b} / {d}");
    }
}

#[test]
fn conversions() {
    assert_eq!(tsc_cycles_to_ns(3_000, 3_000_000), Some(1_000));
    assert_eq!(tsc_cycles_to_ns(1, 0), None);
    assert_eq!(bcd_to_bin(0x1234), 1234);
    assert_eq!(bin_to_bcd(1234), 0x1234);
    assert_eq!(bin_to_bcd(10_000), 0);
    assert_eq!(bcd_to_bin(0xffff), 16665);
    for v in 0..10_000 {
        assert_eq!(bcd_to_bin(bin_to_bcd(v)), v);
    }
    let table: Vec<u32> = [0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa, 0xb]
        .iter()
        .map(|&t| divide_count(t))
        .collect();
    assert_eq!(table, [2, 4, 8, 16, 32, 64, 128, 1]);
    assert_eq!(divide_count(0xffff_fff4), 2, "bit 2 and upper bits ignored");
}
