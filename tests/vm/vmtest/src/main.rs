//! rkvm's in-VM test program: drives /dev/kvm from userspace against our
//! modules (`--set ours`) or the in-tree ones (`--set intree`) and prints
//! one PASS/FAIL/SKIP line per test for the host harness (scripts/check.sh).

mod bench;
mod devnode;
mod lifecycle;
mod report;
mod suites;
mod sys;
mod sysioctl;

use report::{Report, Set};

/// Paths of the module set under test.
pub struct Modules {
    /// Loaded first, never tested (in-tree: irqbypass.ko).
    pub pre: Vec<String>,
    pub kvm: String,
    pub amd: String,
    pub intel: String,
}

fn usage() -> ! {
    eprintln!("usage: rkvm-vmtest --set ours|intree [--pre KO]... --kvm KO --amd KO --intel KO [--demo|--bench]");
    eprintln!("       rkvm-vmtest --list [--set ours|intree]   (the rows a run prints, as ROW <name>; runs nothing)");
    std::process::exit(2);
}

fn main() {
    // `rkvm-vmtest --guest-outs N`: run a guest that makes N OUT exits, as
    // a workload for tools started around it (the perf kvm stat test).
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--guest-outs") {
        let n = argv.get(2).and_then(|v| v.parse().ok()).unwrap_or(30);
        std::process::exit(match suites::guest_outs(n) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rkvm-vmtest --guest-outs: {e}");
                1
            }
        });
    }
    let mut set = None;
    let mut demo = false;
    let mut bench = false;
    let mut list = false;
    let mut m = Modules { pre: vec![], kvm: String::new(), amd: String::new(), intel: String::new() };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--set" => {
                set = Some(match val().as_str() {
                    "ours" => Set::Ours,
                    "intree" => Set::InTree,
                    _ => usage(),
                })
            }
            "--pre" => m.pre.push(val()),
            "--kvm" => m.kvm = val(),
            "--amd" => m.amd = val(),
            "--intel" => m.intel = val(),
            "--demo" => demo = true,
            "--bench" => bench = true,
            "--list" => list = true,
            _ => usage(),
        }
    }
    if list {
        // The manifest of a run (RKVM_TEST_FILTER applies, as in a run).
        let mut r = Report::new(set.unwrap_or(Set::Ours), true);
        lifecycle::run(&mut r, &m);
        return;
    }
    let Some(set) = set else { usage() };
    if m.kvm.is_empty() || m.amd.is_empty() || m.intel.is_empty() {
        usage();
    }
    if demo {
        demo::run(&m);
        return;
    }
    if bench {
        std::process::exit(if bench::run(&m) { 0 } else { 1 });
    }
    let mut r = Report::new(set, false);
    lifecycle::run(&mut r, &m);
    std::process::exit(if r.failed == 0 { 0 } else { 1 });
}

mod demo {
    //! `make run`: what a newcomer sees.
    use crate::sys::{load_module, udev_settle};
    use crate::Modules;
    use kvm_ioctls::Kvm;

    pub fn run(m: &Modules) {
        for p in m.pre.iter().chain([&m.kvm, &m.amd]) {
            match load_module(p) {
                Ok(()) => println!("rkvm demo: insmod {p}: ok"),
                Err(e) => println!("rkvm demo: insmod {p}: errno {e}"),
            }
        }
        udev_settle();
        let _ = std::process::Command::new("sh")
            .args(["-c", "echo \"rkvm demo: $(ls -l /dev/kvm)\""])
            .status();
        match Kvm::new() {
            Ok(kvm) => {
                println!("rkvm demo: KVM_GET_API_VERSION = {}", kvm.get_api_version());
                match kvm.get_vcpu_mmap_size() {
                    Ok(s) => println!("rkvm demo: KVM_GET_VCPU_MMAP_SIZE = {s}"),
                    Err(e) => println!("rkvm demo: KVM_GET_VCPU_MMAP_SIZE failed: {e}"),
                }
                match kvm.create_vm() {
                    Ok(_vm) => println!("rkvm demo: KVM_CREATE_VM: got a VM fd"),
                    Err(e) => println!("rkvm demo: KVM_CREATE_VM failed: {e}"),
                }
            }
            Err(e) => println!("rkvm demo: open /dev/kvm failed: {e}"),
        }
        let _ = std::process::Command::new("sh")
            .args(["-c", "lsmod | sed -n 's/^kvm/rkvm demo: lsmod: kvm/p'"])
            .status();
    }
}
