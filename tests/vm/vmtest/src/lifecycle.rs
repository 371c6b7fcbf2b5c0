//! Module lifecycle: load order, refusals, per-CPU SVM/VMX state, unload,
//! and reload cycles. The ioctl suites run in the middle, with everything
//! loaded. The vendor module under test is the CPU's (crate::vendor).

use crate::report::{expect_eq, Report, Set};
use crate::sys::*;
use crate::vendor::Vendor;
use crate::{devnode, suites, sysioctl, Modules};
use kvm_ioctls::Kvm;

const MSR_EFER: u32 = 0xc000_0080;
const EFER_SVME: u64 = 1 << 12;
const MSR_VM_HSAVE_PA: u32 = 0xc001_0117;
const MSR_IA32_FEATURE_CONTROL: u32 = 0x3a;
const FEATURE_CONTROL_LOCKED: u64 = 1 << 0;
const FEATURE_CONTROL_VMXON_OUTSIDE_SMX: u64 = 1 << 2;

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

/// With kvm_intel loaded: IA32_FEATURE_CONTROL locked with VMXON outside
/// SMX allowed on every online CPU (VMX operation itself, CR4.VMXE and
/// VMXON, is invisible from userspace; nothing to check after unload).
fn vmx_state() -> Result<(), String> {
    if !module_loaded("kvm_intel") {
        return Err("kvm_intel is not loaded".into());
    }
    let cpus = online_cpus();
    if cpus.is_empty() {
        return Err("no online CPUs found".into());
    }
    let want = FEATURE_CONTROL_LOCKED | FEATURE_CONTROL_VMXON_OUTSIDE_SMX;
    for cpu in cpus {
        let fc = rdmsr(cpu, MSR_IA32_FEATURE_CONTROL)?;
        if fc & want != want {
            return Err(format!("IA32_FEATURE_CONTROL on cpu {cpu} = {fc:#x}: not locked with VMXON outside SMX"));
        }
    }
    Ok(())
}

/// kvm_intel's module parameters ept, vpid and unrestricted_guest are on
/// (what the VMX column's CPU offers), as upstream reports them.
fn vmx_params() -> Result<(), String> {
    for p in ["ept", "vpid", "unrestricted_guest"] {
        let f = format!("/sys/module/kvm_intel/parameters/{p}");
        let v = std::fs::read_to_string(&f).map_err(|e| format!("{f}: {e}"))?;
        expect_eq(&format!("kvm_intel.{p}"), v.trim(), "Y")?;
    }
    Ok(())
}

/// The vendor's per-CPU state with the module loaded (`on`) or unloaded.
fn cpu_state(v: Vendor, on: bool) -> Result<(), String> {
    match (v, on) {
        (Vendor::Amd, _) => svm_state(on),
        (Vendor::Intel, true) => vmx_state(),
        (Vendor::Intel, false) => Ok(()),
    }
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

    let v = Vendor::host();
    let (vname, vpath) = (v.short(), v.path(m));
    r.check("load/vendor-without-core-fails", || {
        expect_load_errno(&format!("kvm-{vname} without kvm"), vpath, libc::ENOENT)?;
        dmesg_has(&format!("{}: Unknown symbol", v.module()))
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

    match v {
        Vendor::Amd => r.check("load/intel-refused-on-amd-eopnotsupp", || {
            expect_load_errno("kvm-intel on an AMD CPU", &m.intel, libc::EOPNOTSUPP)?;
            dmesg_has("kvm_intel: VMX not supported by CPU")
        }),
        Vendor::Intel => r.check("load/amd-refused-on-intel-eopnotsupp", || {
            expect_load_errno("kvm-amd on an Intel CPU", &m.amd, libc::EOPNOTSUPP)?;
            dmesg_has("isn't AMD or Hygon")
        }),
    }

    r.check(&format!("load/{vname}"), || load(&format!("kvm-{vname}"), vpath));
    settle(r);
    match v {
        Vendor::Amd => r.check("svm/efer-svme-and-hsave-on-every-cpu", || svm_state(true)),
        Vendor::Intel => {
            r.check("vmx/feature-control-vmxon-enabled-on-every-cpu", vmx_state);
            r.check("vmx/params-ept-vpid-unrestricted-guest", vmx_params);
        }
    }

    devnode::run(r);
    sysioctl::run(r);
    suites::run(r);

    r.check("unload/core-refused-while-vendor-loaded", || expect_unload_refused("kvm"));
    r.check("unload/vendor-refused-while-vm-open", || {
        let kvm = Kvm::new().map_err(|e| format!("Kvm::new: {e}"))?;
        let vm = kvm.create_vm().map_err(|e| format!("create_vm: {e}"))?;
        let res = expect_unload_refused(v.module());
        drop(vm);
        res
    });
    r.check(&format!("unload/{vname}"), || unload(v.module()));
    if v == Vendor::Amd {
        r.check("svm/efer-svme-and-hsave-cleared-after-unload", || svm_state(false));
    }
    r.check("unload/core", || unload("kvm"));
    settle(r);
    r.check("unload/dev-node-removed", || {
        expect_eq("/dev/kvm exists", std::path::Path::new("/dev/kvm").exists(), false)
    });

    r.check("reload/3-cycles", || {
        for i in 0..3 {
            load("kvm", &m.kvm)?;
            load(&format!("kvm-{vname}"), vpath)?;
            udev_settle();
            let kvm = Kvm::new().map_err(|e| format!("cycle {i}: Kvm::new: {e}"))?;
            expect_eq("API version", kvm.get_api_version(), 12)?;
            drop(kvm.create_vm().map_err(|e| format!("cycle {i}: create_vm: {e}"))?);
            drop(kvm);
            cpu_state(v, true)?;
            unload(v.module())?;
            unload("kvm")?;
            cpu_state(v, false)?;
        }
        Ok(())
    });
}
