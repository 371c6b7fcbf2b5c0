//! Overflow-free integer helpers shared by the timer models.
//!
//! No `u128` anywhere: the kernel's `compiler_builtins` turns 128-bit
//! division (and some 128-bit shifts) into panics, so the wide product is
//! built from 32-bit halves and divided with a shift-subtract loop.

use crate::defs::time::NSEC_PER_MSEC;

/// Full 128-bit product of `a * b` as `(high, low)` 64-bit halves.
const fn mul_wide(a: u64, b: u64) -> (u64, u64) {
    const LOW32: u64 = 0xffff_ffff;
    let (a_hi, a_lo) = (a >> 32, a & LOW32);
    let (b_hi, b_lo) = (b >> 32, b & LOW32);
    // Each partial product of two 32-bit values fits in 64 bits.
    let ll = a_lo * b_lo;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let hh = a_hi * b_hi;
    // Sum of three values below 2^32 each: fits comfortably.
    let mid = (ll >> 32) + (lh & LOW32) + (hl & LOW32);
    let low = (ll & LOW32) | (mid << 32);
    // The true product is below 2^128, so this sum cannot overflow.
    let high = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    (high, low)
}

/// `a * b / d` rounded down, computed without overflow.
///
/// Saturates at `u64::MAX` when the quotient does not fit, and returns
/// `u64::MAX` for `d == 0` (an "infinitely far" time, never a panic).
pub const fn mul_div(a: u64, b: u64, d: u64) -> u64 {
    if d == 0 {
        return u64::MAX;
    }
    let (high, low) = mul_wide(a, b);
    if high == 0 {
        return low / d;
    }
    if high >= d {
        return u64::MAX;
    }
    // Restoring long division of the 128-bit (high:low) by d; high < d
    // guarantees a 64-bit quotient.
    let mut rem = high;
    let mut quot = 0u64;
    let mut bit = 64u32;
    while bit > 0 {
        bit -= 1;
        let carry = rem >> 63;
        rem = (rem << 1) | ((low >> bit) & 1);
        quot <<= 1;
        if carry != 0 || rem >= d {
            rem = rem.wrapping_sub(d);
            quot |= 1;
        }
    }
    quot
}

/// Converts a duration in guest TSC cycles to nanoseconds for a TSC running
/// at `tsc_khz` kHz. `None` when the frequency is unknown (zero).
pub fn tsc_cycles_to_ns(cycles: u64, tsc_khz: u32) -> Option<u64> {
    if tsc_khz == 0 {
        return None;
    }
    Some(mul_div(cycles, NSEC_PER_MSEC, u64::from(tsc_khz)))
}

/// Converts packed BCD (four digits) to binary. Nibbles above 9 are taken
/// at face value, as the hardware would count with them.
pub fn bcd_to_bin(bcd: u16) -> u32 {
    let b = u32::from(bcd);
    ((b >> 12) & 0xf) * 1000 + ((b >> 8) & 0xf) * 100 + ((b >> 4) & 0xf) * 10 + (b & 0xf)
}

/// Converts a binary value to four packed BCD digits (modulo 10000).
pub const fn bin_to_bcd(bin: u32) -> u16 {
    let v = bin % 10_000;
    let digits = ((v / 1000) << 12) | ((v / 100 % 10) << 8) | ((v / 10 % 10) << 4) | (v % 10);
    digits as u16
}
