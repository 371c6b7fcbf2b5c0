//! Guest suites: tiny guests with clear expected exits (issue 3 onwards).
//! Run with every module loaded, after the system-ioctl tests.
//!
//! Layout: `harness` (thread isolation, KVM_RUN watchdog), `guest` (memory,
//! VM/vCPU builder for real/protected/long mode, exit decoding), `kvmsys`
//! (raw ioctl numbers for errno tests); the tests by topic in the other
//! files.  The guest programs are tests/vm/guests/*.S, assembled by
//! build.rs.

use crate::report::Report;

mod arch;
mod caps;
mod caps_table;
mod control;
mod emulation;
mod errors;
mod exits;
pub mod guest;
pub mod harness;
pub mod irqchip;
mod irqchip_errors;
pub mod irqchip_io;
pub mod kvmsys;
mod memslots;
mod modes;
mod params;
mod qemu_compat;
mod recorded;
mod reliability;
mod smp;
mod state;
mod stats;
mod system;

/// A guest making `n` OUT exits (`rkvm-vmtest --guest-outs N`).
pub fn guest_outs(n: u32) -> Result<(), String> {
    stats::guest_with_outs(n).map(drop)
}

/// Runs every guest suite.
pub fn run(r: &mut Report) {
    let mut tests = Vec::new();
    tests.extend(system::tests());
    tests.extend(exits::tests());
    tests.extend(modes::tests());
    tests.extend(control::tests());
    tests.extend(memslots::tests());
    tests.extend(state::tests());
    tests.extend(smp::tests());
    tests.extend(errors::tests());
    tests.extend(emulation::tests());
    tests.extend(irqchip::tests());
    tests.extend(irqchip_io::tests());
    tests.extend(irqchip_errors::tests());
    tests.extend(qemu_compat::tests());
    tests.extend(caps::tests());
    tests.extend(caps_table::tests());
    tests.extend(params::tests(r.set));
    tests.extend(arch::tests());
    tests.extend(stats::tests());
    tests.extend(reliability::tests());
    if let Ok(filter) = std::env::var("RKVM_TEST_FILTER") {
        // Substrings separated by '|': any of them selects a test.
        tests.retain(|t| filter.split('|').any(|f| t.name.contains(f)));
    }
    // RKVM_TEST_EXCLUDE: tests a platform cannot run, reported as SKIP:
    // '|' separated substrings, each with an optional "=why" (else
    // RKVM_TEST_EXCLUDE_WHY).
    if let Ok(exclude) = std::env::var("RKVM_TEST_EXCLUDE") {
        let why = std::env::var("RKVM_TEST_EXCLUDE_WHY").unwrap_or_else(|_| "excluded (RKVM_TEST_EXCLUDE)".into());
        let hit = |n: &str| {
            exclude.split('|').find_map(|e| {
                let (f, w) = e.split_once('=').unwrap_or((e, &why));
                (!f.is_empty() && n.contains(f)).then(|| w.to_string())
            })
        };
        tests.retain(|t| match hit(&t.name) {
            Some(w) => {
                r.skip(&t.name, &w);
                false
            }
            None => true,
        });
    }
    harness::run_all(r, tests);
}
