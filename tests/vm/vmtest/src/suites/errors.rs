//! Bad inputs to VM and vCPU ioctls: each must fail with exactly the errno
//! the in-tree module gives (the harness also checks that the kernel log
//! stays clean).

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::kvmsys::{self, region, set_region};
use crate::report::{ctx, expect_eq};
use crate::sys::{errno_name, expect_errno, ioc, ioctl, KVMIO};
use kvm_bindings::*;
use std::os::fd::AsRawFd;

pub fn tests() -> Vec<Test> {
    vec![
        test("bad/create-vcpu-duplicate-id-eexist", vcpu_dup),
        test("bad/create-vcpu-id-out-of-range-einval", vcpu_id_range),
        test("bad/memslot-unaligned-einval", slot_unaligned),
        test("bad/memslot-overlap-eexist", slot_overlap),
        test("bad/memslot-id-out-of-range-einval", slot_id_range),
        test("bad/memslot-flags-einval", slot_flags),
        test("bad/memslot-huge-or-wrapping-einval", slot_huge),
        test("bad/memslot-modify-size-uaddr-readonly-einval", slot_modify),
        test("bad/memslot-delete-nonexistent-einval", slot_delete_none),
        test("bad/memslot-unbacked-run-efault", slot_unbacked),
        test("bad/null-and-garbage-pointers-efault", pointers),
        test("bad/dirty-log-bad-slot", dirty_bad_slot),
        test("bad/clear-dirty-log-bad-range-einval", clear_bad_range),
        test("bad/enable-cap-bad-args-einval", enable_cap_bad),
        test("bad/cpuid-nent-too-big-e2big", cpuid_e2big),
        test("bad/msrs-nmsrs-too-big-e2big", msrs_e2big),
        test("bad/set-sregs-inconsistent-einval", sregs_bad),
        test("bad/set-sregs-efer-ffxsr-needs-host-fxsr-opt", sregs_ffxsr),
        test("bad/ioctls-with-wrong-size-or-fd-kind", wrong_size),
        test("bad/mmap-vm-fd-enodev", mmap_vm),
        test("bad/code-in-mmio-internal-error", code_in_mmio),
    ]
}

fn errno_ok(r: Result<i64, i32>) -> Result<i64, String> {
    r.map_err(errno_name)
}

fn vcpu_dup() -> TestResult {
    let vm = Vm::bare()?;
    k("KVM_CREATE_VCPU(3)", vm.fd.create_vcpu(3))?;
    expect_errno("second KVM_CREATE_VCPU(3)", ioctl(&vm.fd, kvmsys::CREATE_VCPU, 3), libc::EEXIST)
}

/// IDs up to KVM_CAP_MAX_VCPU_ID - 1 are fine; the cap itself and beyond
/// (also beyond 32 bits) are EINVAL.
fn vcpu_id_range() -> TestResult {
    let vm = Vm::bare()?;
    let max = vm.kvm.check_extension_raw(KVM_CAP_MAX_VCPU_ID as u64) as u64;
    if max == 0 {
        return Err("KVM_CAP_MAX_VCPU_ID is 0".into());
    }
    for id in [max, max + 1, 1 << 32, u64::MAX] {
        expect_errno(&format!("KVM_CREATE_VCPU({id:#x})"), ioctl(&vm.fd, kvmsys::CREATE_VCPU, id), libc::EINVAL)?;
    }
    // SAFETY (below): the fd returned by KVM_CREATE_VCPU is ours to close.
    let fd = ctx(&format!("KVM_CREATE_VCPU({})", max - 1), errno_ok(ioctl(&vm.fd, kvmsys::CREATE_VCPU, max - 1)))?;
    unsafe { libc::close(fd as i32) };
    Ok(())
}

fn slot_unaligned() -> TestResult {
    let vm = Vm::bare()?;
    let m = Mem::new(0x4000)?;
    let a = m.addr();
    for (what, r) in [
        ("guest_phys_addr 0x100800", region(1, 0, 0x10_0800, 0x1000, a)),
        ("memory_size 0x1800", region(1, 0, 0x10_0000, 0x1800, a)),
        ("memory_size 1", region(1, 0, 0x10_0000, 1, a)),
        ("userspace_addr + 0x800", region(1, 0, 0x10_0000, 0x1000, a + 0x800)),
    ] {
        expect_errno(what, set_region(&vm.fd, &r), libc::EINVAL)?;
    }
    Ok(())
}

/// A new slot overlapping slot 0 ([0, LOW_RAM_END)), fully or partly, is
/// EEXIST; so is moving another slot onto it.
fn slot_overlap() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    let m = Mem::new(0x20000)?;
    let a = m.addr();
    for (what, r) in [
        ("slot 1 = slot 0's range", region(1, 0, 0, LOW_RAM_END, a)),
        ("slot 1 over slot 0's last page", region(1, 0, LOW_RAM_END - 0x1000, 0x2000, a)),
        ("slot 1 inside slot 0", region(1, 0, 0x2000, 0x1000, a)),
    ] {
        expect_errno(what, set_region(&vm.fd, &r), libc::EEXIST)?;
    }
    vm.add_slot(1, 0x10_0000, 0x10000, a, 0)?;
    expect_errno(
        "slot 2 overlapping slot 1",
        set_region(&vm.fd, &region(2, 0, 0x10_8000, 0x10000, a + 0x10000)),
        libc::EEXIST,
    )?;
    expect_errno("moving slot 1 onto slot 0", set_region(&vm.fd, &region(1, 0, 0, 0x10000, a)), libc::EEXIST)?;
    // Adjacent is fine.
    vm.add_slot(2, 0x11_0000, 0x1000, a + 0x10000, 0)
}

/// Slot ids: KVM_CAP_NR_MEMSLOTS - 1 is the last valid one; address
/// space 2 does not exist on x86 (0 normal, 1 SMM).
fn slot_id_range() -> TestResult {
    let vm = Vm::bare()?;
    let n = vm.kvm.check_extension_raw(KVM_CAP_NR_MEMSLOTS as u64) as u32;
    let m = Mem::new(0x1000)?;
    for (what, slot) in [
        (format!("slot {n} (= KVM_CAP_NR_MEMSLOTS)"), n),
        ("slot 0x7fff".into(), 0x7fff),
        ("slot 0xffff".into(), 0xffff),
        ("address space 2".into(), 2 << 16),
        ("slot 0xffffffff".into(), u32::MAX),
    ] {
        expect_errno(&what, set_region(&vm.fd, &region(slot, 0, 0x10_0000, 0x1000, m.addr())), libc::EINVAL)?;
    }
    vm.add_slot(n - 1, 0x10_0000, 0x1000, m.addr(), 0)
}

fn slot_flags() -> TestResult {
    let vm = Vm::bare()?;
    let m = Mem::new(0x1000)?;
    for flags in [1u32 << 2 /* GUEST_MEMFD: not with the v1 ioctl */, 1 << 3, 1 << 31] {
        expect_errno(
            &format!("flags {flags:#x}"),
            set_region(&vm.fd, &region(1, flags, 0x10_0000, 0x1000, m.addr())),
            libc::EINVAL,
        )?;
    }
    Ok(())
}

fn slot_huge() -> TestResult {
    let vm = Vm::bare()?;
    let m = Mem::new(0x2000)?;
    let a = m.addr();
    for (what, r) in [
        ("memory_size 1 << 50", region(1, 0, 0x1_0000_0000, 1 << 50, a)),
        ("guest_phys_addr + size wraps", region(1, 0, 0xffff_ffff_ffff_f000, 0x2000, a)),
        ("userspace_addr + size past the user address space", region(1, 0, 0x10_0000, 0x2000, 0x7fff_ffff_f000)),
        ("kernel userspace_addr", region(1, 0, 0x10_0000, 0x1000, 0xffff_8880_0000_0000)),
        ("memory_size 0 for a new slot", region(1, 0, 0x10_0000, 0, a)),
    ] {
        expect_errno(what, set_region(&vm.fd, &r), libc::EINVAL)?;
    }
    Ok(())
}

/// An existing slot cannot change size, userspace address or READONLY.
fn slot_modify() -> TestResult {
    let vm = Vm::bare()?;
    let m = Mem::new(0x4000)?;
    let a = m.addr();
    vm.add_slot(1, 0x10_0000, 0x2000, a, 0)?;
    for (what, r) in [
        ("growing slot 1", region(1, 0, 0x10_0000, 0x4000, a)),
        ("shrinking slot 1", region(1, 0, 0x10_0000, 0x1000, a)),
        ("new userspace_addr for slot 1", region(1, 0, 0x10_0000, 0x2000, a + 0x1000)),
        ("making slot 1 read-only", region(1, KVM_MEM_READONLY, 0x10_0000, 0x2000, a)),
    ] {
        expect_errno(what, set_region(&vm.fd, &r), libc::EINVAL)?;
    }
    // The very same region again is a no-op success.
    expect_eq("setting slot 1 unchanged", errno_ok(set_region(&vm.fd, &region(1, 0, 0x10_0000, 0x2000, a))), Ok(0))
}

fn slot_delete_none() -> TestResult {
    let vm = Vm::bare()?;
    expect_errno("deleting slot 5 that never existed", set_region(&vm.fd, &region(5, 0, 0x10_0000, 0, 0)), libc::EINVAL)
}

/// A slot whose userspace range is not mapped is accepted, but the guest
/// touching it makes KVM_RUN fail with EFAULT.  (The in-tree module leaves
/// exit_reason stale here; if KVM_EXIT_MEMORY_FAULT is reported, its GPA
/// must be right.)
fn slot_unbacked() -> TestResult {
    let m = Mem::new(0x4000)?;
    let hole = m.addr() + 0x2000;
    // SAFETY: unmaps the last two pages of our own mapping; `m` is never
    // used past offset 0x2000 afterwards (munmap on drop of an already
    // unmapped range is harmless).
    unsafe { libc::munmap(hole as *mut libc::c_void, 0x2000) };
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, 0x10_0000, 0x2000, hole, 0)?;
    g.cpu.start("mem_read")?;
    g.cpu.with_regs(|r| r.rsi = 0x10_0010)?;
    match g.cpu.run_errno()? {
        Err(libc::EFAULT) => {}
        Err(e) => return Err(format!("KVM_RUN: got {}, want EFAULT", errno_name(e))),
        Ok(e) => return Err(format!("KVM_RUN: got exit {e}, want EFAULT")),
    }
    let run = g.cpu.kvm_run();
    if run.exit_reason == KVM_EXIT_MEMORY_FAULT {
        // SAFETY: memory_fault is the valid member for this exit reason.
        let f = unsafe { run.__bindgen_anon_1.memory_fault };
        eq_hex("memory_fault.gpa", f.gpa, 0x10_0000)?;
        eq_hex("memory_fault.size", f.size, 0x1000)?;
    }
    Ok(())
}

/// NULL and unmapped pointers to every struct-taking ioctl: EFAULT.
fn pointers() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let vcpu_cmds = [
        ("KVM_GET_REGS", kvmsys::GET_REGS),
        ("KVM_SET_REGS", kvmsys::SET_REGS),
        ("KVM_GET_SREGS", kvmsys::GET_SREGS),
        ("KVM_SET_SREGS", kvmsys::SET_SREGS),
        ("KVM_GET_FPU", kvmsys::GET_FPU),
        ("KVM_SET_FPU", kvmsys::SET_FPU),
        ("KVM_GET_MSRS", kvmsys::GET_MSRS),
        ("KVM_SET_MSRS", kvmsys::SET_MSRS),
        ("KVM_SET_CPUID2", kvmsys::SET_CPUID2),
        ("KVM_GET_CPUID2", kvmsys::GET_CPUID2),
        ("KVM_TRANSLATE", kvmsys::TRANSLATE),
        ("KVM_INTERRUPT", kvmsys::INTERRUPT),
        ("KVM_GET_MP_STATE", kvmsys::GET_MP_STATE),
        ("KVM_SET_MP_STATE", kvmsys::SET_MP_STATE),
        ("KVM_SET_GUEST_DEBUG", kvmsys::SET_GUEST_DEBUG),
        ("KVM_GET_VCPU_EVENTS", kvmsys::GET_VCPU_EVENTS),
        ("KVM_SET_VCPU_EVENTS", kvmsys::SET_VCPU_EVENTS),
        ("KVM_GET_DEBUGREGS", kvmsys::GET_DEBUGREGS),
        ("KVM_SET_DEBUGREGS", kvmsys::SET_DEBUGREGS),
        ("KVM_GET_XSAVE", kvmsys::GET_XSAVE),
        ("KVM_SET_XSAVE", kvmsys::SET_XSAVE),
        ("KVM_GET_XCRS", kvmsys::GET_XCRS),
        ("KVM_SET_XCRS", kvmsys::SET_XCRS),
    ];
    let vm_cmds = [
        ("KVM_SET_USER_MEMORY_REGION", kvmsys::SET_USER_MEMORY_REGION),
        ("KVM_GET_DIRTY_LOG", kvmsys::GET_DIRTY_LOG),
        ("KVM_CLEAR_DIRTY_LOG", kvmsys::CLEAR_DIRTY_LOG),
        ("KVM_GET_CLOCK", kvmsys::GET_CLOCK),
        ("KVM_SET_CLOCK", kvmsys::SET_CLOCK),
        ("KVM_ENABLE_CAP", kvmsys::ENABLE_CAP),
    ];
    let sys_cmds = [
        ("KVM_GET_MSR_INDEX_LIST", kvmsys::GET_MSR_INDEX_LIST),
        ("KVM_GET_SUPPORTED_CPUID", kvmsys::GET_SUPPORTED_CPUID),
        ("KVM_GET_MSR_FEATURE_INDEX_LIST", kvmsys::GET_MSR_FEATURE_INDEX_LIST),
    ];
    let novcpu = Vm::bare()?;
    let kvm =
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map_err(|e| format!("/dev/kvm: {e}"))?;
    let mut bad = Vec::new();
    for ptr in [0u64, 0xdead_0000_0000, 0xffff_8880_0000_0000] {
        let mut check = |what: &str, fd: i32, cmd: u64| {
            // SAFETY: the kernel must reject the pointer; nothing in this
            // process is written through it.
            let r = unsafe { libc::ioctl(fd, cmd as _, ptr) };
            let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if r >= 0 || e != libc::EFAULT {
                bad.push(format!(
                    "{what}({ptr:#x}): {}",
                    if r >= 0 { format!("succeeded ({r})") } else { errno_name(e) }
                ));
            }
        };
        for (w, c) in vcpu_cmds {
            check(w, g.cpu.fd.as_raw_fd(), c);
        }
        for (w, c) in vm_cmds {
            check(w, g.vm.fd.as_raw_fd(), c);
        }
        for (w, c) in sys_cmds {
            check(w, kvm.as_raw_fd(), c);
        }
        // NULL means "no mask" for KVM_SET_SIGNAL_MASK; a VM with vCPUs
        // refuses KVM_SET_IDENTITY_MAP_ADDR before reading its argument.
        if ptr != 0 {
            check("KVM_SET_SIGNAL_MASK", g.cpu.fd.as_raw_fd(), kvmsys::SET_SIGNAL_MASK);
        }
        check("KVM_SET_IDENTITY_MAP_ADDR (VM without vCPUs)", novcpu.fd.as_raw_fd(), kvmsys::SET_IDENTITY_MAP_ADDR);
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("want EFAULT: {}", bad.join("; ")))
    }
}

/// KVM_GET_DIRTY_LOG: a slot that does not exist is ENOENT, a slot id
/// beyond the user slots EINVAL, and a NULL bitmap for a logged slot
/// EFAULT.
fn dirty_bad_slot() -> TestResult {
    let vm = Vm::bare()?;
    let m = Mem::new(0x10000)?;
    vm.add_slot(1, 0x10_0000, 0x10000, m.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    let mut b = [0u64; 1];
    expect_errno("KVM_GET_DIRTY_LOG(slot 7, absent)", kvmsys::get_dirty_log(&vm.fd, 7, &mut b), libc::ENOENT)?;
    expect_errno("KVM_GET_DIRTY_LOG(slot 0x8000)", kvmsys::get_dirty_log(&vm.fd, 0x8000, &mut b), libc::EINVAL)?;
    expect_errno("KVM_GET_DIRTY_LOG(slot 1, NULL bitmap)", kvmsys::get_dirty_log(&vm.fd, 1, &mut []), libc::EFAULT)
}

/// KVM_CLEAR_DIRTY_LOG: first_page must be a multiple of 64, and the range
/// must lie inside the slot.
fn clear_bad_range() -> TestResult {
    let vm = Vm::bare()?;
    let mut cap = kvm_enable_cap { cap: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, ..Default::default() };
    cap.args[0] = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE as u64;
    k("KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2)", vm.fd.enable_cap(&cap))?;
    let m = Mem::new(128 * 4096)?;
    vm.add_slot(1, 0x10_0000, 128 * 4096, m.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    let mut b = [0u64; 2];
    expect_errno("first_page 1", kvmsys::clear_dirty_log(&vm.fd, 1, 1, 64, &mut b), libc::EINVAL)?;
    expect_errno(
        "pages 64..192 of a 128-page slot",
        kvmsys::clear_dirty_log(&vm.fd, 1, 64, 128, &mut b),
        libc::EINVAL,
    )?;
    expect_errno(
        "num_pages 3 not reaching the slot's end",
        kvmsys::clear_dirty_log(&vm.fd, 1, 0, 3, &mut b),
        libc::EINVAL,
    )?;
    expect_eq("pages 64..128", errno_ok(kvmsys::clear_dirty_log(&vm.fd, 1, 64, 64, &mut b)), Ok(0))
}

fn enable_cap_bad() -> TestResult {
    let vm = Vm::bare()?;
    let mut cap = kvm_enable_cap { cap: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, ..Default::default() };
    cap.args[0] = 4;
    expect_errno(
        "MANUAL_DIRTY_LOG_PROTECT2 with args[0] = 4",
        ioctl(&vm.fd, kvmsys::ENABLE_CAP, &cap as *const _ as u64),
        libc::EINVAL,
    )?;
    cap.args[0] = 1;
    cap.flags = 1;
    expect_errno(
        "MANUAL_DIRTY_LOG_PROTECT2 with flags 1",
        ioctl(&vm.fd, kvmsys::ENABLE_CAP, &cap as *const _ as u64),
        libc::EINVAL,
    )?;
    let unknown = kvm_enable_cap { cap: 100_000, ..Default::default() };
    expect_errno("unknown cap 100000", ioctl(&vm.fd, kvmsys::ENABLE_CAP, &unknown as *const _ as u64), libc::EINVAL)?;
    let mut hc = kvm_enable_cap { cap: KVM_CAP_EXIT_HYPERCALL, ..Default::default() };
    hc.args[0] = 1 << 1;
    expect_errno(
        "EXIT_HYPERCALL for hypercall 1",
        ioctl(&vm.fd, kvmsys::ENABLE_CAP, &hc as *const _ as u64),
        libc::EINVAL,
    )
}

/// A kvm_cpuid2 header followed by room for `room` entries.
fn cpuid_buf(nent: u32, room: usize) -> Vec<u64> {
    let bytes = 8 + room * std::mem::size_of::<kvm_cpuid_entry2>();
    let mut v = vec![0u64; bytes.div_ceil(8)];
    v[0] = nent as u64;
    v
}

/// KVM_GET_SUPPORTED_CPUID with too small nent: E2BIG; KVM_SET_CPUID2
/// with more than 256 entries: E2BIG.
fn cpuid_e2big() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let kvm =
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map_err(|e| format!("/dev/kvm: {e}"))?;
    let mut b = cpuid_buf(1, 1);
    expect_errno(
        "KVM_GET_SUPPORTED_CPUID(nent 1)",
        ioctl(&kvm, kvmsys::GET_SUPPORTED_CPUID, b.as_mut_ptr() as u64),
        libc::E2BIG,
    )?;
    let b = cpuid_buf(257, 257);
    expect_errno("KVM_SET_CPUID2(nent 257)", ioctl(&g.cpu.fd, kvmsys::SET_CPUID2, b.as_ptr() as u64), libc::E2BIG)?;
    let mut b = cpuid_buf(0, 0);
    expect_errno("KVM_GET_CPUID2(nent 0)", ioctl(&g.cpu.fd, kvmsys::GET_CPUID2, b.as_mut_ptr() as u64), libc::E2BIG)
}

/// KVM_GET_MSRS / KVM_SET_MSRS with nmsrs >= 256 (MAX_IO_MSRS): E2BIG.
fn msrs_e2big() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let mut buf = vec![0u64; 1 + 2 * 300];
    buf[0] = 300; // nmsrs (u32) + pad
    expect_errno("KVM_GET_MSRS(nmsrs 300)", ioctl(&g.cpu.fd, kvmsys::GET_MSRS, buf.as_mut_ptr() as u64), libc::E2BIG)?;
    expect_errno("KVM_SET_MSRS(nmsrs 300)", ioctl(&g.cpu.fd, kvmsys::SET_MSRS, buf.as_ptr() as u64), libc::E2BIG)
}

/// Inconsistent control registers in KVM_SET_SREGS: EINVAL.
fn sregs_bad() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let good = k("KVM_GET_SREGS", g.cpu.fd.get_sregs())?;
    let set = |s: &kvm_sregs| ioctl(&g.cpu.fd, kvmsys::SET_SREGS, s as *const _ as u64);
    let mut s = good;
    s.cr0 = 0x8000_0000; // PG without PE
    expect_errno("CR0.PG without CR0.PE", set(&s), libc::EINVAL)?;
    let mut s = good;
    s.cr4 &= !0x20; // long mode without PAE
    expect_errno("EFER.LMA with CR4.PAE clear", set(&s), libc::EINVAL)?;
    let mut s = good;
    s.efer = 0x400; // LMA without LME
    expect_errno("EFER.LMA without EFER.LME", set(&s), libc::EINVAL)?;
    let mut s = good;
    s.cr4 |= 1 << 63; // reserved
    expect_errno("CR4 bit 63", set(&s), libc::EINVAL)?;
    expect_eq("the good sregs again", errno_ok(set(&good)), Ok(0))
}

/// EFER.FFXSR in KVM_SET_SREGS, with FXSR_OPT in the guest's CPUID: KVM
/// supports the bit only when the host has FXSR_OPT (AMD; neither QEMU TCG
/// nor Bochs' Intel models have it): EINVAL without, accepted with.
fn sregs_ffxsr() -> TestResult {
    let vm = Vm::new(Mode::Long)?;
    let mut entries: Vec<kvm_cpuid_entry2> = vm.supported_cpuid()?.as_slice().to_vec();
    let e = entries
        .iter_mut()
        .find(|e| e.function == 0x8000_0001)
        .ok_or("no leaf 0x80000001 in KVM_GET_SUPPORTED_CPUID")?;
    e.edx |= 1 << 25; // FXSR_OPT
    let table = CpuId::from_entries(&entries).map_err(|e| format!("CpuId::from_entries: {e:?}"))?;
    let cpu = vm.vcpu_with_cpuid(0, &table)?;
    let mut s = k("KVM_GET_SREGS", cpu.fd.get_sregs())?;
    s.efer |= 1 << 14; // FFXSR
    let r = ioctl(&cpu.fd, kvmsys::SET_SREGS, &s as *const _ as u64);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").map_err(|e| format!("/proc/cpuinfo: {e}"))?;
    if cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "fxsr_opt")) {
        expect_eq("KVM_SET_SREGS with EFER.FFXSR (host has fxsr_opt)", errno_ok(r), Ok(0))
    } else {
        expect_errno("KVM_SET_SREGS with EFER.FFXSR (host lacks fxsr_opt)", r, libc::EINVAL)
    }
}

/// Known ioctl numbers with a wrong size or direction, and ioctls sent to
/// the wrong kind of fd.
fn wrong_size() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let kvm =
        std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").map_err(|e| format!("/dev/kvm: {e}"))?;
    let mut buf = vec![0u64; 1024];
    let p = buf.as_mut_ptr() as u64;
    let vcpu_bad = [
        ("_IOR(KVMIO, 0x81, 8) (KVM_GET_REGS with a wrong size)", ioc(2, KVMIO, 0x81, 8)),
        ("_IOW(KVMIO, 0x80, 8) (KVM_RUN with a size)", ioc(1, KVMIO, 0x80, 8)),
        (
            "_IOW(KVMIO, 0x83, sizeof kvm_sregs) (KVM_GET_SREGS as write)",
            ioc(1, KVMIO, 0x83, std::mem::size_of::<kvm_sregs>() as u64),
        ),
        ("KVM_SET_USER_MEMORY_REGION on a vCPU fd", kvmsys::SET_USER_MEMORY_REGION),
        ("KVM_CREATE_VCPU on a vCPU fd", kvmsys::CREATE_VCPU),
    ];
    for (what, cmd) in vcpu_bad {
        expect_errno(what, ioctl(&g.cpu.fd, cmd, p), libc::EINVAL)?;
    }
    let vm_bad = [
        ("_IOW(KVMIO, 0x46, 16) (KVM_SET_USER_MEMORY_REGION with a wrong size)", ioc(1, KVMIO, 0x46, 16)),
        ("_IOW(KVMIO, 0x42, 8) (KVM_GET_DIRTY_LOG with a wrong size)", ioc(1, KVMIO, 0x42, 8)),
        ("KVM_RUN on a VM fd", kvmsys::RUN),
        ("KVM_GET_REGS on a VM fd", kvmsys::GET_REGS),
    ];
    for (what, cmd) in vm_bad {
        expect_errno(what, ioctl(&g.vm.fd, cmd, p), libc::ENOTTY)?;
    }
    let sys_bad = [
        ("KVM_CREATE_VCPU on /dev/kvm", kvmsys::CREATE_VCPU),
        ("KVM_RUN on /dev/kvm", kvmsys::RUN),
        ("KVM_SET_USER_MEMORY_REGION on /dev/kvm", kvmsys::SET_USER_MEMORY_REGION),
    ];
    for (what, cmd) in sys_bad {
        expect_errno(what, ioctl(&kvm, cmd, 0), libc::EINVAL)?;
    }
    Ok(())
}

fn mmap_vm() -> TestResult {
    let vm = Vm::bare()?;
    // SAFETY: a mapping request the kernel must refuse; on success we
    // unmap it again.
    let p = unsafe { libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_SHARED, vm.fd.as_raw_fd(), 0) };
    if p != libc::MAP_FAILED {
        unsafe { libc::munmap(p, 4096) };
        return Err("mmap of a VM fd succeeded, want ENODEV".into());
    }
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    expect_eq("mmap of a VM fd", errno_name(e), errno_name(libc::ENODEV))
}

/// Executing from a GPA without memory cannot be emulated:
/// KVM_EXIT_INTERNAL_ERROR with suberror KVM_INTERNAL_ERROR_EMULATION.
fn code_in_mmio() -> TestResult {
    let mut g = Guest::new(Mode::Long)?;
    g.cpu.set_rip(MMIO_ADDR)?;
    match g.cpu.run()? {
        Exit::InternalError { suberror, .. } if suberror == KVM_INTERNAL_ERROR_EMULATION => Ok(()),
        e => Err(format!("exit: got {e}, want internal-error suberror {KVM_INTERNAL_ERROR_EMULATION}")),
    }
}
