//! The capability table (issue 11, item 2): KVM_CHECK_EXTENSION of every
//! capability number 0..300 on /dev/kvm, on a VM fd and on a VM with a
//! split irqchip, written to `caps.txt` in the results directory
//! (`$RKVM_OUT`, else the VM's results share /mnt) as lines
//! `<scope> <number> <value>`; scripts/caps-compare.sh compares the two
//! columns' files against tests/vm/caps-exceptions.txt.

use super::guest::*;
use super::harness::{skip, test, Test, TestResult};
use kvm_bindings::*;
use kvm_ioctls::Kvm;
use std::fmt::Write as _;

/// Capability numbers recorded: 0..CAPS_END.
const CAPS_END: u32 = 300;

pub fn tests() -> Vec<Test> {
    vec![test("caps/table-recorded", record)]
}

/// Where the results go.
fn out_dir() -> Option<std::path::PathBuf> {
    if let Ok(d) = std::env::var("RKVM_OUT") {
        return Some(d.into());
    }
    let mnt = std::path::Path::new("/mnt");
    let shared = std::fs::read_to_string("/proc/mounts").unwrap_or_default().lines().any(|l| l.split(' ').nth(1) == Some("/mnt"));
    shared.then(|| mnt.to_path_buf())
}

fn record() -> TestResult {
    let Some(dir) = out_dir() else {
        return skip("no results directory ($RKVM_OUT unset and /mnt not mounted)");
    };
    let kvm = k("open /dev/kvm", Kvm::new())?;
    let vm = k("KVM_CREATE_VM", kvm.create_vm())?;
    let split = k("KVM_CREATE_VM", kvm.create_vm())?;
    let cap = kvm_enable_cap { cap: KVM_CAP_SPLIT_IRQCHIP, args: [24, 0, 0, 0], ..Default::default() };
    k("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP, 24)", split.enable_cap(&cap))?;
    let mut s = String::new();
    for n in 0..CAPS_END {
        let _ = writeln!(s, "sys {n} {}", kvm.check_extension_raw(u64::from(n)));
        let _ = writeln!(s, "vm {n} {}", vm.check_extension_raw(u64::from(n)));
        let _ = writeln!(s, "vm-split {n} {}", split.check_extension_raw(u64::from(n)));
    }
    let path = dir.join("caps.txt");
    std::fs::write(&path, s).map_err(|e| format!("writing {}: {e}", path.display()))
}
