//! System and VM ioctls issue 3 adds: capabilities, supported CPUID, MSR
//! index lists, vCPU creation and mapping, TSS/identity-map addresses,
//! the VM clock.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::kvmsys;
use super::recorded;
use crate::report::expect_eq;
use crate::sys::{expect_errno, ioctl};
use kvm_bindings::*;
use kvm_ioctls::Kvm;
use std::os::fd::AsRawFd;

pub fn tests() -> Vec<Test> {
    vec![
        test("caps/run-and-state-caps", caps),
        test("caps/same-on-vm-fd", caps_vm_fd),
        test("sys/supported-cpuid", supported_cpuid),
        test("sys/supported-cpuid-svm-bit-as-recorded", supported_svm_bit),
        test("sys/msr-index-list", msr_index_list),
        test("sys/msr-feature-index-list", msr_feature_list),
        test("vm/create-vcpus", create_vcpus),
        test("vm/vcpu-mmap-kvm-run", vcpu_mmap),
        test("vm/vcpu-fd-keeps-vm-alive", vcpu_keeps_vm),
        test("vm/set-tss-addr", tss_addr),
        test("vm/set-identity-map-addr", identity_map_addr),
        test("vm/clock-get-set", clock),
    ]
}

/// What KVM_CHECK_EXTENSION must answer for what issue 3 implements (the
/// in-tree module's values on this kernel and CPU model).  Not here:
/// MULTI_ADDRESS_SPACE (2 in-tree, with SMM; SMM is not part of issue 3)
/// and caps of later issues.
const CAPS: &[(u32, &str, i32)] = &[
    (KVM_CAP_USER_MEMORY, "USER_MEMORY", 1),
    (KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR", 1),
    (KVM_CAP_EXT_CPUID, "EXT_CPUID", 1),
    (KVM_CAP_NR_VCPUS, "NR_VCPUS", 2),
    (KVM_CAP_MAX_VCPUS, "MAX_VCPUS", 1024),
    (KVM_CAP_MAX_VCPU_ID, "MAX_VCPU_ID", 4096),
    (KVM_CAP_NR_MEMSLOTS, "NR_MEMSLOTS", 32764),
    (KVM_CAP_MP_STATE, "MP_STATE", 1),
    (KVM_CAP_SYNC_MMU, "SYNC_MMU", 1),
    (KVM_CAP_USER_NMI, "USER_NMI", 1),
    (KVM_CAP_SET_GUEST_DEBUG, "SET_GUEST_DEBUG", 1),
    (KVM_CAP_VCPU_EVENTS, "VCPU_EVENTS", 1),
    (KVM_CAP_DEBUGREGS, "DEBUGREGS", 1),
    (KVM_CAP_XSAVE, "XSAVE", 1),
    (KVM_CAP_XCRS, "XCRS", 1),
    (KVM_CAP_READONLY_MEM, "READONLY_MEM", 1),
    (KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT", 1),
    (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, "MANUAL_DIRTY_LOG_PROTECT2", 3),
    (KVM_CAP_EXIT_HYPERCALL, "EXIT_HYPERCALL", 1 << 12),
    (KVM_CAP_SET_IDENTITY_MAP_ADDR, "SET_IDENTITY_MAP_ADDR", 1),
    (KVM_CAP_ADJUST_CLOCK, "ADJUST_CLOCK", 14),
    (KVM_CAP_GET_TSC_KHZ, "GET_TSC_KHZ", 1),
    (KVM_CAP_MEMORY_FAULT_INFO, "MEMORY_FAULT_INFO", 1),
    (KVM_CAP_USER_MEMORY2, "USER_MEMORY2", 1),
];

fn check_caps(what: &str, f: impl Fn(u64) -> i32) -> TestResult {
    let mut bad = Vec::new();
    for &(cap, name, want) in CAPS {
        let got = f(cap as u64);
        if got != want {
            bad.push(format!("{name} = {got}, want {want}"));
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("KVM_CHECK_EXTENSION on {what}: {}", bad.join(", ")))
    }
}

fn caps() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    check_caps("/dev/kvm", |c| kvm.check_extension_raw(c))
}

fn caps_vm_fd() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    let vm = k("KVM_CREATE_VM", kvm.create_vm())?;
    check_caps("a VM fd", |c| vm.check_extension_raw(c))
}

/// KVM_GET_SUPPORTED_CPUID: the E2BIG protocol, and a table a guest can
/// run with (long mode, the vendor of the host, hypervisor bit set).
fn supported_cpuid() -> TestResult {
    let kvm = k("open /dev/kvm", Kvm::new())?;
    let c = k("KVM_GET_SUPPORTED_CPUID(80)", kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES))?;
    let e = c.as_slice();
    let n = e.len();
    if n == 0 {
        return Err("no entries".into());
    }
    // Exactly n entries is enough; n - 1 is E2BIG.
    k(&format!("KVM_GET_SUPPORTED_CPUID({n})"), kvm.get_supported_cpuid(n))?;
    expect_errno(
        &format!("KVM_GET_SUPPORTED_CPUID({})", n - 1),
        kvm.get_supported_cpuid(n - 1).map(|_| 0).map_err(|e| e.errno()),
        libc::E2BIG,
    )?;
    let leaf = |f: u32| e.iter().find(|x| x.function == f && x.index == 0);
    let l0 = leaf(0).ok_or("no leaf 0")?;
    let vendor: Vec<u8> = [l0.ebx, l0.edx, l0.ecx].iter().flat_map(|r| r.to_le_bytes()).collect();
    expect_eq("vendor", String::from_utf8_lossy(&vendor).into_owned(), "AuthenticAMD".into())?;
    let l1 = leaf(1).ok_or("no leaf 1")?;
    expect_eq("leaf 1 ecx.hypervisor (bit 31)", l1.ecx >> 31, 1)?;
    let e1 = leaf(0x8000_0001).ok_or("no leaf 0x80000001")?;
    expect_eq("leaf 0x80000001 edx.LM (bit 29)", (e1.edx >> 29) & 1, 1)?;
    let kvm_sig = leaf(0x4000_0000).ok_or("no leaf 0x40000000")?;
    let sig: Vec<u8> = [kvm_sig.ebx, kvm_sig.ecx, kvm_sig.edx].iter().flat_map(|r| r.to_le_bytes()).collect();
    expect_eq("hypervisor signature", String::from_utf8_lossy(&sig).into_owned(), "KVMKVMKVM\0\0\0".into())
}

/// SVM in leaf 0x80000001 ECX (bit 2) of KVM_GET_SUPPORTED_CPUID: set
/// exactly when the in-tree module sets it on this CPU (it offers nested
/// SVM), as recorded.
fn supported_svm_bit() -> TestResult {
    let rec = recorded::get()?;
    let kvm = k("open /dev/kvm", Kvm::new())?;
    let c = k("KVM_GET_SUPPORTED_CPUID", kvm.get_supported_cpuid(KVM_MAX_CPUID_ENTRIES))?;
    let ecx = c.as_slice().iter().find(|x| x.function == 0x8000_0001).map(|x| x.ecx).ok_or("no leaf 0x80000001")?;
    let want = rec.supported.get(&(0x8000_0001, 0)).ok_or("recording lacks supported leaf 0x80000001")?[3];
    expect_eq(
        &format!("leaf 0x80000001 ecx.SVM (bit 2), as in {}", recorded::NAME),
        (ecx >> 2) & 1,
        (want >> 2) & 1,
    )
}

/// The MSRs KVM_GET/SET_MSRS handle, as KVM_GET_MSR_INDEX_LIST lists them:
/// exactly the in-tree module's list (as a set), as recorded.
fn msr_index_list() -> TestResult {
    let rec = recorded::get()?;
    let kvm = k("open /dev/kvm", Kvm::new())?;
    let l = k("KVM_GET_MSR_INDEX_LIST", kvm.get_msr_index_list())?;
    let l = l.as_slice();
    if let Some(d) = recorded::set_diff(l, &rec.msrs) {
        return Err(format!("KVM_GET_MSR_INDEX_LIST: {d} (recording: {})", recorded::NAME));
    }
    // nmsrs too small: E2BIG, and nmsrs is set to the number needed.
    let f = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map_err(|e| e.to_string())?;
    let mut buf = [1u32, 0];
    expect_errno(
        "KVM_GET_MSR_INDEX_LIST(nmsrs 1)",
        ioctl(&f, kvmsys::GET_MSR_INDEX_LIST, buf.as_mut_ptr() as u64),
        libc::E2BIG,
    )?;
    expect_eq("nmsrs written back", buf[0] as usize, l.len())
}

/// Feature MSRs: exactly the in-tree module's list (as a set), each
/// readable with KVM_GET_MSRS on /dev/kvm with the recorded value.
fn msr_feature_list() -> TestResult {
    let rec = recorded::get()?;
    let kvm = k("open /dev/kvm", Kvm::new())?;
    let l = k("KVM_GET_MSR_FEATURE_INDEX_LIST", kvm.get_msr_feature_index_list())?;
    let l: Vec<u32> = l.as_slice().to_vec();
    if let Some(d) = recorded::set_diff(&l, &rec.feature_msrs) {
        return Err(format!("KVM_GET_MSR_FEATURE_INDEX_LIST: {d} (recording: {})", recorded::NAME));
    }
    let e: Vec<kvm_msr_entry> = l.iter().map(|&index| kvm_msr_entry { index, ..Default::default() }).collect();
    let mut m = Msrs::from_entries(&e).map_err(|e| format!("Msrs: {e:?}"))?;
    let n = k("KVM_GET_MSRS on /dev/kvm", kvm.get_msrs(&mut m))?;
    expect_eq("feature MSRs read", n, l.len())?;
    let mut bad = Vec::new();
    for e in m.as_slice() {
        if let Some(Some(want)) = rec.feature_values.get(&e.index) {
            if e.data != *want {
                bad.push(format!("{:#x} = {:#x}, recorded {want:#x}", e.index, e.data));
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("feature MSR values: {}", bad.join(", ")))
    }
}

/// vCPU ids need not be dense; each vCPU fd is close-on-exec.
fn create_vcpus() -> TestResult {
    let vm = Vm::bare()?;
    let mut fds = Vec::new();
    for id in [0u64, 1, 7, 100, 4095] {
        fds.push(k(&format!("KVM_CREATE_VCPU({id})"), vm.fd.create_vcpu(id))?);
    }
    for f in &fds {
        // SAFETY: F_GETFD on a valid fd.
        let fl = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) };
        expect_eq("vCPU fd FD_CLOEXEC", fl & libc::FD_CLOEXEC, libc::FD_CLOEXEC)?;
    }
    Ok(())
}

/// The vCPU fd maps KVM_GET_VCPU_MMAP_SIZE bytes: kvm_run at offset 0 and
/// the PIO data page at page 1 (where string I/O data_offset points).
fn vcpu_mmap() -> TestResult {
    let mut g = Guest::at(Mode::Long, "pio_out")?;
    let size = k("KVM_GET_VCPU_MMAP_SIZE", g.vm.kvm.get_vcpu_mmap_size())?;
    // SAFETY: mapping the vCPU fd read-only; unmapped below.
    let p =
        unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ, libc::MAP_SHARED, g.cpu.fd.as_raw_fd(), 0) };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap vCPU fd ({size} bytes): {}", std::io::Error::last_os_error()));
    }
    let res = (|| {
        g.cpu.expect(Exit::out1(PORT_OUT, 0x12))?;
        // SAFETY: p maps at least one page holding struct kvm_run.
        let (reason, off) = unsafe {
            let r = &*(p as *const kvm_run);
            (r.exit_reason, r.__bindgen_anon_1.io.data_offset)
        };
        expect_eq("exit_reason through a second mapping", reason, KVM_EXIT_IO)?;
        eq_hex("io.data_offset", off, 4096)?;
        // SAFETY: data_offset 4096 < size (3 pages).
        let b = unsafe { *(p as *const u8).add(off as usize) };
        eq_hex("OUT data in the PIO page", b, 0x12)
    })();
    // SAFETY: our mapping.
    unsafe { libc::munmap(p, size) };
    res
}

/// Closing the VM fd does not end the VM while a vCPU fd is open.
fn vcpu_keeps_vm() -> TestResult {
    let g = Guest::at(Mode::Long, "pio_out")?;
    let Guest { mut cpu, vm } = g;
    let Vm { kvm, fd, mem, .. } = vm;
    drop(fd);
    drop(kvm);
    cpu.expect(Exit::out1(PORT_OUT, 0x12))?;
    cpu.expect(Exit::out2(PORT_OUT, 0x3456))?;
    drop(cpu);
    drop(mem);
    Ok(())
}

/// KVM_SET_TSS_ADDR takes a 3-page region below 4 GiB.
fn tss_addr() -> TestResult {
    let vm = Vm::bare()?;
    k("KVM_SET_TSS_ADDR(0xfffbd000)", vm.fd.set_tss_address(0xfffb_d000))
}

/// KVM_SET_IDENTITY_MAP_ADDR works before any vCPU exists, EINVAL after.
fn identity_map_addr() -> TestResult {
    let vm = Vm::bare()?;
    k("KVM_SET_IDENTITY_MAP_ADDR(0xfeffc000)", vm.fd.set_identity_map_address(0xfeff_c000))?;
    let _c = k("KVM_CREATE_VCPU(0)", vm.fd.create_vcpu(0))?;
    let a: u64 = 0xfeff_b000;
    expect_errno(
        "KVM_SET_IDENTITY_MAP_ADDR after KVM_CREATE_VCPU",
        ioctl(&vm.fd, kvmsys::SET_IDENTITY_MAP_ADDR, &a as *const _ as u64),
        libc::EINVAL,
    )
}

/// KVM_SET_CLOCK then KVM_GET_CLOCK: the clock continues from the value
/// set; flags other than the valid ones are EINVAL.
fn clock() -> TestResult {
    let vm = Vm::bare()?;
    let c0 = k("KVM_GET_CLOCK", vm.fd.get_clock())?;
    let set = kvm_clock_data { clock: 1_000_000_000_000, ..Default::default() };
    k("KVM_SET_CLOCK", vm.fd.set_clock(&set))?;
    let c = k("KVM_GET_CLOCK", vm.fd.get_clock())?;
    if !(set.clock..set.clock + 10_000_000_000).contains(&c.clock) {
        return Err(format!("clock after setting 1e12 ns: {} (before: {})", c.clock, c0.clock));
    }
    let bad = kvm_clock_data { clock: 1, flags: 1 << 10, ..Default::default() };
    expect_errno(
        "KVM_SET_CLOCK(flags 1 << 10)",
        ioctl(&vm.fd, kvmsys::SET_CLOCK, &bad as *const _ as u64),
        libc::EINVAL,
    )
}
