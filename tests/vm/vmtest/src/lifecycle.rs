//! Module lifecycle: load order, refusals, per-CPU SVM state, unload, and
//! reload cycles. The ioctl suites run in the middle, with everything loaded.

use crate::report::{expect_eq, Report, Set};
use crate::sys::*;
use crate::{devnode, suites, sysioctl, Modules};
use kvm_ioctls::Kvm;

const MSR_EFER: u32 = 0xc000_0080;
const EFER_SVME: u64 = 1 << 12;
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;

fn load(what: &str, path: &str) -> Result<(), String> {
    load_module(path).map_err(|e| format!("loading {what} ({path}): {}", errno_name(e)))
}

fn unload(name: &str) -> Result<(), String> {
    unload_module(name).map_err(|e| format!("unloading {name}: {}", errno_name(e)))
}

fn expect_load_errno(what: &str, path: &str, want: i32) -> Result<(), String> {
    match load_module(path) {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!("loading {what}: got {}, want {}", errno_name(e), errno_name(want))),
        Ok(()) => Err(format!("loading {what} succeeded, want {}", errno_name(want))),
    }
}

fn expect_unload_refused(name: &str) -> Result<(), String> {
    match unload_module(name) {
        Err(libc::EAGAIN) if module_loaded(name) => Ok(()),
        Err(e) => Err(format!("rmmod {name}: got {}, want EWOULDBLOCK (in use)", errno_name(e))),
        Ok(()) => Err(format!("rmmod {name} succeeded; it must be refused")),
    }
}

/// Checks EFER.SVME and VM_HSAVE_PA on every online CPU.
fn svm_state(on: bool) -> Result<(), String> {
    let cpus = online_cpus();
    if cpus.is_empty() {
        return Err("no online CPUs found".into());
    }
    for cpu in cpus {
        let efer = rdmsr(cpu, MSR_EFER)?;
        expect_eq(&format!("EFER.SVME on cpu {cpu}"), efer & EFER_SVME != 0, on)?;
        let hsave = rdmsr(cpu, MSR_VM_HSAVE_PA)?;
        expect_eq(&format!("VM_HSAVE_PA != 0 on cpu {cpu}"), hsave != 0, on)?;
    }
    Ok(())
}

fn dmesg_has(needle: &str) -> Result<(), String> {
    if dmesg().contains(needle) {
        Ok(())
    } else {
        Err(format!("kernel log lacks {needle:?}"))
    }
}

/// Waits for udev, unless only listing the rows.
fn settle(r: &Report) {
    if !r.listing {
        udev_settle();
    }
}

pub fn run(r: &mut Report, m: &Modules) {
    if !r.listing {
        for p in &m.pre {
            if let Err(e) = load("prerequisite", p) {
                r.record("load/prerequisites", Err(e));
                return;
            }
        }
    }

    r.check("load/vendor-without-core-fails", || {
        expect_load_errno("kvm-amd without kvm", &m.amd, libc::ENOENT)?;
        dmesg_has("kvm_amd: Unknown symbol")
    });

    r.check("load/core", || load("kvm", &m.kvm));
    settle(r);
    match r.set {
        Set::Ours => sysioctl::run_without_vendor(r),
        Set::InTree => {
            let why = "in-tree kvm.ko creates /dev/kvm only when a vendor module loads";
            r.skip("novendor/api-version-12", why);
            r.skip("novendor/create-vm-enodev", why);
        }
    }

    r.check("load/intel-refused-on-amd-eopnotsupp", || {
        expect_load_errno("kvm-intel on an AMD CPU", &m.intel, libc::EOPNOTSUPP)?;
        dmesg_has("kvm_intel: VMX not supported by CPU")
    });

    r.check("load/amd", || load("kvm-amd", &m.amd));
    settle(r);
    r.check("svm/efer-svme-and-hsave-on-every-cpu", || svm_state(true));

    devnode::run(r);
    sysioctl::run(r);
    suites::run(r);

    r.check("unload/core-refused-while-vendor-loaded", || expect_unload_refused("kvm"));
    r.check("unload/vendor-refused-while-vm-open", || {
        let kvm = Kvm::new().map_err(|e| format!("Kvm::new: {e}"))?;
        let vm = kvm.create_vm().map_err(|e| format!("create_vm: {e}"))?;
        let res = expect_unload_refused("kvm_amd");
        drop(vm);
        res
    });
    r.check("unload/amd", || unload("kvm_amd"));
    r.check("svm/efer-svme-and-hsave-cleared-after-unload", || svm_state(false));
    r.check("unload/core", || unload("kvm"));
    settle(r);
    r.check("unload/dev-node-removed", || {
        expect_eq("/dev/kvm exists", std::path::Path::new("/dev/kvm").exists(), false)
    });

    r.check("reload/3-cycles", || {
        for i in 0..3 {
            load("kvm", &m.kvm)?;
            load("kvm-amd", &m.amd)?;
            udev_settle();
            let kvm = Kvm::new().map_err(|e| format!("cycle {i}: Kvm::new: {e}"))?;
            expect_eq("API version", kvm.get_api_version(), 12)?;
            drop(kvm.create_vm().map_err(|e| format!("cycle {i}: create_vm: {e}"))?);
            drop(kvm);
            svm_state(true)?;
            unload("kvm_amd")?;
            unload("kvm")?;
            svm_state(false)?;
        }
        Ok(())
    });
}
