//! Module parameters (issue 11, item 3): /sys/module/kvm/parameters and
//! /sys/module/kvm_amd/parameters hold exactly the in-tree modules'
//! names, with their sysfs modes, and the values match where the feature
//! exists in both module sets. One row per parameter.

use super::harness::{test, Test, TestResult};
use crate::report::{expect_eq, Set};
use std::os::unix::fs::PermissionsExt;

/// What a parameter must read.
#[derive(Clone, Copy)]
enum Want {
    /// This value on both module sets.
    Value(&'static str),
    /// A feature rkvm lacks: ours reads it off ("N" or "0"); the in-tree
    /// value depends on the hardware and is not compared.
    Off(&'static str),
    /// 1 when the host CPU has the SVM feature (CPUID 0x8000000A EDX bit),
    /// else 0, on both.
    SvmFeature(u32),
}

use Want::*;

/// The in-tree modules' parameters of Linux 7.3 (name, sysfs mode, value).
const KVM: &[(&str, u32, Want)] = &[
    ("allow_unsafe_mappings", 0o444, Value("N")),
    ("eager_page_split", 0o644, Value("Y")),
    ("enable_pmu", 0o444, Off("a virtual PMU")),
    ("enable_virt_at_load", 0o444, Value("Y")),
    ("enable_vmware_backdoor", 0o444, Value("N")),
    ("flush_on_reuse", 0o644, Value("N")),
    ("force_emulation_prefix", 0o644, Value("0")),
    ("halt_poll_ns", 0o644, Value("200000")),
    ("halt_poll_ns_grow", 0o644, Value("2")),
    ("halt_poll_ns_grow_start", 0o644, Value("10000")),
    ("halt_poll_ns_shrink", 0o644, Value("2")),
    ("ignore_msrs", 0o644, Value("N")),
    ("lapic_timer_advance", 0o444, Off("LAPIC timer advancement")),
    ("min_timer_period_us", 0o644, Value("200")),
    ("mitigate_smt_rsb", 0o444, Value("N")),
    ("mmio_caching", 0o444, Off("MMIO caching in the TDP tables")),
    ("nx_huge_pages", 0o644, Value("N")),
    ("nx_huge_pages_recovery_period_ms", 0o644, Value("0")),
    ("nx_huge_pages_recovery_ratio", 0o644, Value("60")),
    ("pi_inject_timer", 0o644, Value("0")),
    ("report_ignored_msrs", 0o644, Value("Y")),
    ("tdp_mmu", 0o444, Value("Y")),
    ("tsc_tolerance_ppm", 0o644, Value("250")),
    ("vector_hashing", 0o444, Value("Y")),
];

/// CPUID 0x8000000A EDX bits.
const SVM_NRIPS: u32 = 3;

const KVM_AMD: &[(&str, u32, Want)] = &[
    ("avic", 0o444, Off("AVIC")),
    ("dump_invalid_vmcb", 0o644, Value("N")),
    ("enable_device_posted_irqs", 0o444, Off("posted device interrupts")),
    ("enable_ipiv", 0o444, Off("IPI virtualization")),
    ("enable_mediated_pmu", 0o444, Off("a mediated vPMU")),
    ("force_avic", 0o444, Value("N")),
    ("gmet", 0o444, Off("GMET")),
    ("intercept_smi", 0o444, Value("Y")),
    ("lbrv", 0o444, Off("LBR virtualization")),
    ("nested", 0o444, Value("1")),
    ("npt", 0o444, Value("Y")),
    ("nrips", 0o444, SvmFeature(SVM_NRIPS)),
    ("pause_filter_count", 0o444, Off("pause filtering")),
    ("pause_filter_count_grow", 0o444, Value("2")),
    ("pause_filter_count_max", 0o444, Value("65535")),
    ("pause_filter_count_shrink", 0o444, Value("0")),
    ("pause_filter_thresh", 0o444, Off("pause filtering")),
    ("tsc_scaling", 0o444, Off("TSC scaling")),
    ("vgif", 0o444, Off("virtual GIF (nested SVM)")),
    ("vls", 0o444, Off("virtual VMLOAD/VMSAVE (nested SVM)")),
    ("vnmi", 0o444, Off("virtual NMI")),
];

pub fn tests(set: Set) -> Vec<Test> {
    let mut v = Vec::new();
    // kvm_amd's table only where kvm-amd loads (not in the VMX column).
    let modules: &[(&'static str, &'static [(&'static str, u32, Want)])] =
        match crate::vendor::Vendor::host() {
            crate::vendor::Vendor::Amd => &[("kvm", KVM), ("kvm_amd", KVM_AMD)],
            crate::vendor::Vendor::Intel => &[("kvm", KVM)],
        };
    for &(module, table) in modules {
        for &(name, mode, want) in table {
            v.push(test(format!("params/{module}/{name}"), move || check(set, module, name, mode, want)));
        }
        v.push(test(format!("params/{module}/no-other-names"), move || no_others(module, table)));
    }
    v
}

fn svm_has(bit: u32) -> bool {
    let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    max >= 0x8000_000a && core::arch::x86_64::__cpuid(0x8000_000a).edx & (1 << bit) != 0
}

fn check(set: Set, module: &str, name: &str, mode: u32, want: Want) -> TestResult {
    let path = format!("/sys/module/{module}/parameters/{name}");
    let meta = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"))?;
    expect_eq(&format!("{path} mode"), format!("{:o}", meta.permissions().mode() & 0o777), format!("{mode:o}"))?;
    let v = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let v = v.trim();
    match want {
        Value(w) => expect_eq(&path, v, w),
        SvmFeature(bit) => expect_eq(&path, v, if svm_has(bit) { "1" } else { "0" }),
        Off(what) => match set {
            Set::Ours if v == "N" || v == "0" => Ok(()),
            Set::Ours => Err(format!("{path} = {v}, but rkvm lacks {what}")),
            Set::InTree => Ok(()),
        },
    }
}

/// No parameter besides the in-tree module's.
fn no_others(module: &str, table: &[(&str, u32, Want)]) -> TestResult {
    let dir = format!("/sys/module/{module}/parameters");
    let mut extra = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))? {
        let n = e.map_err(|e| e.to_string())?.file_name().to_string_lossy().into_owned();
        if !table.iter().any(|(t, _, _)| *t == n) {
            extra.push(n);
        }
    }
    extra.sort();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(format!("{dir} has parameters the in-tree module lacks: {}", extra.join(", ")))
    }
}
