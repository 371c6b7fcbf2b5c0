// SPDX-License-Identifier: GPL-2.0
//! Model-specific register access on the current CPU.

use super::bindings;

/// Reads MSR `index` on the current CPU.
///
/// Only for MSRs that exist on every CPU this code runs on (the caller
/// checked the feature); a missing MSR faults like `rdmsrq` does.
pub fn read(index: u32) -> u64 {
    // SAFETY: `rkvm_rdmsr` is a plain wrapper around `rdmsrq`; it has no
    // memory-safety preconditions.
    unsafe { bindings::rkvm_rdmsr(index) }
}

/// Writes `value` to MSR `index` on the current CPU.
///
/// The caller owns the architectural consequences (e.g. EFER.SVME).
pub fn write(index: u32, value: u64) {
    // SAFETY: `rkvm_wrmsr` is a plain wrapper around `wrmsrq`; it has no
    // memory-safety preconditions.
    unsafe { bindings::rkvm_wrmsr(index, value) }
}

/// Whether the boot CPU has X86_FEATURE_* bit `feature`.
pub fn cpu_has(feature: u32) -> bool {
    // SAFETY: `boot_cpu_has` only reads the boot CPU's capability bitmap.
    unsafe { bindings::rkvm_cpu_has(feature) }
}

/// Reads MSR `index`, `None` if the read faults (the MSR does not exist).
pub fn read_safe(index: u32) -> Option<u64> {
    let mut v = 0;
    // SAFETY: rdmsr with the fault fixed up; `v` is writable.
    (unsafe { bindings::rkvm_rdmsr_safe(index, &mut v) } == 0).then_some(v)
}
