// SPDX-License-Identifier: GPL-2.0
//! kvmclock's guest-visible structures and TSC-to-nanosecond scaling
//! (upstream's `kvm_get_time_scale()` and `pvclock_scale_delta()`).
//! Pure: compiled into kvm.ko and tested on the host.

use crate::defs::time::{HZ_PER_KHZ, NSEC_PER_SEC, NSEC_PER_USEC, USEC_PER_MSEC};

/// `pvclock_vcpu_time_info.flags`: the TSC is stable across vCPUs.
pub const PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `pvclock_vcpu_time_info.flags`: the guest was stopped (guest-owned).
pub const PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;
/// Size of `struct pvclock_vcpu_time_info`.
pub const VCPU_TIME_INFO_SIZE: usize = 32;
/// Size of `struct pvclock_wall_clock`.
pub const WALL_CLOCK_SIZE: usize = 12;

/// `ns = ((tsc_delta << shift) * mul) >> 32` (a negative shift divides).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeScale {
    /// `tsc_to_system_mul`.
    pub mul: u32,
    /// `tsc_shift`.
    pub shift: i8,
}

impl TimeScale {
    /// The scale that turns ticks of a `khz` clock into nanoseconds.
    /// `None` for a zero frequency.
    pub fn for_tsc_khz(khz: u64) -> Option<Self> {
        if khz == 0 {
            return None;
        }
        Some(Self::new(NSEC_PER_SEC, khz.saturating_mul(HZ_PER_KHZ)))
    }

    /// Upstream `kvm_get_time_scale(scaled_hz, base_hz)`: normalise the
    /// base rate into 32 bits with a shift, then a 32.32 fraction.
    pub fn new(scaled_hz: u64, base_hz: u64) -> Self {
        if scaled_hz == 0 || base_hz == 0 {
            return Self::default();
        }
        let mut shift: i32 = 0;
        let mut tps64 = base_hz;
        let mut scaled64 = scaled_hz;
        while tps64 > scaled64.saturating_mul(2) || tps64 >> 32 != 0 {
            tps64 >>= 1;
            shift -= 1;
        }
        let mut tps32 = tps64 as u32;
        while u64::from(tps32) <= scaled64 || scaled64 >> 32 != 0 {
            if scaled64 >> 32 != 0 || tps32 & 0x8000_0000 != 0 {
                scaled64 >>= 1;
            } else {
                tps32 <<= 1;
            }
            shift += 1;
        }
        // The loop leaves scaled64 < tps32 <= u32::MAX: a 64-bit division
        // (the kernel has no 128-bit one).
        let mul = if tps32 == 0 {
            0
        } else {
            ((scaled64 << 32) / u64::from(tps32)) as u32
        };
        TimeScale {
            mul,
            shift: shift as i8,
        }
    }

    /// Upstream `pvclock_scale_delta()`: ticks to nanoseconds.
    pub fn scale(&self, delta: u64) -> u64 {
        let d = if self.shift < 0 {
            delta >> u32::from(self.shift.unsigned_abs()).min(63)
        } else {
            delta << u32::from(self.shift.unsigned_abs()).min(63)
        };
        ((u128::from(d) * u128::from(self.mul)) >> 32) as u64
    }
}

/// `struct pvclock_vcpu_time_info` (without the version, which the
/// writer owns): guest time = `system_time` + scale(`tsc` - `tsc_timestamp`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuTimeInfo {
    /// Guest TSC when `system_time` was taken.
    pub tsc_timestamp: u64,
    /// kvmclock nanoseconds at `tsc_timestamp`.
    pub system_time: u64,
    /// TSC to nanoseconds.
    pub scale: TimeScale,
    /// `PVCLOCK_*` flags.
    pub flags: u8,
}

impl VcpuTimeInfo {
    /// The guest layout with `version`.
    pub fn to_bytes(&self, version: u32) -> [u8; VCPU_TIME_INFO_SIZE] {
        let mut b = [0u8; VCPU_TIME_INFO_SIZE];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[8..16].copy_from_slice(&self.tsc_timestamp.to_le_bytes());
        b[16..24].copy_from_slice(&self.system_time.to_le_bytes());
        b[24..28].copy_from_slice(&self.scale.mul.to_le_bytes());
        b[28] = self.scale.shift as u8;
        b[29] = self.flags;
        b
    }

    /// What the guest computes at guest TSC `tsc`.
    pub fn guest_ns(&self, tsc: u64) -> u64 {
        self.system_time
            .wrapping_add(self.scale.scale(tsc.wrapping_sub(self.tsc_timestamp)))
    }
}

/// `struct pvclock_wall_clock`: wall-clock time when kvmclock was 0.
pub fn wall_clock_bytes(version: u32, boot_realtime_ns: u64) -> [u8; WALL_CLOCK_SIZE] {
    let mut b = [0u8; WALL_CLOCK_SIZE];
    b[0..4].copy_from_slice(&version.to_le_bytes());
    b[4..8].copy_from_slice(&((boot_realtime_ns / NSEC_PER_SEC) as u32).to_le_bytes());
    b[8..12].copy_from_slice(&((boot_realtime_ns % NSEC_PER_SEC) as u32).to_le_bytes());
    b
}

/// Whether an MSR value enables a time structure (bit 0) and where it is.
pub fn msr_gpa(value: u64) -> Option<u64> {
    (value & 1 != 0).then_some(value & !1)
}

/// One TSC for the whole VM (upstream's `kvm_synchronize_tsc()`): vCPUs
/// are created, and QEMU resets them, one after the other, each with a
/// TSC write from userspace; writes that mean "the same TSC as the
/// others" reuse the last offset instead of starting a new, slightly
/// shifted, clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct TscSync {
    /// Whether a write happened yet.
    valid: bool,
    /// The last value written, and when (host ns).
    last_value: u64,
    last_ns: u64,
    /// The offset (guest TSC - host TSC) that write produced.
    offset: u64,
}

impl TscSync {
    /// No write yet.
    pub const fn new() -> Self {
        TscSync {
            valid: false,
            last_value: 0,
            last_ns: 0,
            offset: 0,
        }
    }

    /// The offset for a userspace (or vCPU creation) TSC write of `value`
    /// at host TSC `host_tsc` and host time `now_ns`, for a `khz` TSC.
    /// Zero always synchronises (creation and QEMU's reset both write it);
    /// another value does when it is within one second of where the last
    /// written TSC has got to.
    pub fn write(&mut self, value: u64, host_tsc: u64, now_ns: u64, khz: u64) -> u64 {
        let sync = self.valid
            && (value == 0 || {
                let elapsed = now_ns.saturating_sub(self.last_ns);
                // Microseconds times kHz: no 128-bit division in the kernel.
                let cycles = (elapsed / NSEC_PER_USEC).saturating_mul(khz) / USEC_PER_MSEC;
                let expected = self.last_value.wrapping_add(cycles);
                let hz = khz.saturating_mul(HZ_PER_KHZ);
                value.abs_diff(expected) < hz
            });
        if !sync {
            self.offset = value.wrapping_sub(host_tsc);
        }
        self.valid = true;
        self.last_value = value;
        self.last_ns = now_ns;
        self.offset
    }

    /// Userspace set a vCPU's TSC offset itself (KVM_VCPU_TSC_OFFSET):
    /// later writes synchronise with the TSC it gives, read now.
    pub fn set_offset(&mut self, offset: u64, host_tsc: u64, now_ns: u64) {
        self.valid = true;
        self.last_value = host_tsc.wrapping_add(offset);
        self.last_ns = now_ns;
        self.offset = offset;
    }
}
