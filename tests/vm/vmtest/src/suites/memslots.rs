//! Memory slots seen from a running guest: add/move/delete while the vCPU
//! is stopped, read-only slots, dirty logging, many slots, and changes to
//! the VMM's mapping behind a slot (what MMU notifiers must handle).
//! All guests here run in long mode with the routines mem_read, mem_write
//! and mem_write_list of guests/exits.inc.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::kvmsys;
use crate::report::expect_eq;
use crate::sys::errno_name;
use kvm_bindings::*;

pub fn tests() -> Vec<Test> {
    vec![
        test("memslot/add-while-stopped", add),
        test("memslot/move-while-stopped", move_slot),
        test("memslot/delete-while-stopped", delete),
        test("memslot/guest-write-seen-by-host", guest_write_seen),
        test("memslot/readonly-read-ok-write-mmio", readonly),
        test("memslot/256-slots", many_slots),
        test("memslot/host-remap-seen-by-guest", remap),
        test("memslot/host-madvise-dontneed-seen-by-guest", dontneed),
        test("memslot/thp-backed-split-and-dirty-log", thp),
        test("dirty-log/get-exact-bitmap", dirty_log),
        test("dirty-log/enable-on-existing-slot", dirty_log_enable_later),
        test("dirty-log/manual-protect-clear", dirty_manual),
        test("dirty-log/manual-protect-initially-set", dirty_initially_set),
    ]
}

const PAGE: u64 = 4096;
const SLOT_GPA: u64 = 0x10_0000; // 1 MiB
const MOVED_GPA: u64 = 0x20_0000; // 2 MiB

/// Runs mem_read at `gpa`; returns the dword the guest read.  An MMIO
/// exit instead is an error.
fn guest_read(cpu: &mut Cpu, gpa: u64) -> Result<u32, String> {
    cpu.start("mem_read")?;
    cpu.with_regs(|r| r.rsi = gpa)?;
    let v = cpu.out4_value(PORT_ECHO)?;
    cpu.expect_hlt()?;
    Ok(v)
}

/// Runs mem_read at `gpa`, which must be unbacked: an MMIO read exit that
/// we answer with 0x5eed5eed, which the guest then echoes.
fn guest_read_mmio(cpu: &mut Cpu, gpa: u64) -> TestResult {
    cpu.start("mem_read")?;
    cpu.with_regs(|r| r.rsi = gpa)?;
    cpu.expect_mmio_read(gpa, &0x5eed_5eedu32.to_le_bytes())?;
    cpu.expect(Exit::out4(PORT_ECHO, 0x5eed_5eed))?;
    cpu.expect_hlt()
}

/// Runs mem_write of `v` at `gpa` to completion (backed memory).
fn guest_write(cpu: &mut Cpu, gpa: u64, v: u32) -> TestResult {
    cpu.start("mem_write")?;
    cpu.with_regs(|r| {
        r.rdi = gpa;
        r.rax = v as u64;
    })?;
    cpu.expect_hlt()
}

/// Runs mem_write_list: the guest stores `v` at each address in one run.
fn guest_write_list(g: &mut Guest, addrs: &[u64], v: u32) -> TestResult {
    let mut off = SCRATCH as usize;
    for a in addrs {
        g.vm.mem.write_u32(off, *a as u32);
        off += 4;
    }
    g.vm.mem.write_u32(off, 0);
    g.cpu.start("mem_write_list")?;
    g.cpu.with_regs(|r| {
        r.rsi = SCRATCH;
        r.rax = v as u64;
    })?;
    g.cpu.expect_hlt()
}

/// Before: MMIO exit.  After adding a slot (vCPU stopped): the data.
fn add() -> TestResult {
    let extra = Mem::new(0x10000)?;
    extra.write_u32(0x100, 0xfeed_f00d);
    let mut g = Guest::new(Mode::Long)?;
    guest_read_mmio(&mut g.cpu, SLOT_GPA + 0x100)?;
    g.vm.add_slot(1, SLOT_GPA, 0x10000, extra.addr(), 0)?;
    eq_hex("guest read of the new slot", guest_read(&mut g.cpu, SLOT_GPA + 0x100)?, 0xfeed_f00d)
}

/// Moving a slot the guest has already touched: the old GPA becomes MMIO,
/// the new GPA shows the same memory.
fn move_slot() -> TestResult {
    let extra = Mem::new(0x10000)?;
    extra.write_u32(0x200, 0x0b0e_0b0e);
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, 0x10000, extra.addr(), 0)?;
    eq_hex("read before the move", guest_read(&mut g.cpu, SLOT_GPA + 0x200)?, 0x0b0e_0b0e)?;
    g.vm.add_slot(1, MOVED_GPA, 0x10000, extra.addr(), 0)?;
    guest_read_mmio(&mut g.cpu, SLOT_GPA + 0x200)?;
    eq_hex("read at the new GPA", guest_read(&mut g.cpu, MOVED_GPA + 0x200)?, 0x0b0e_0b0e)
}

/// Deleting a slot the guest has touched: its GPA becomes MMIO; deleting
/// it again is EINVAL.
fn delete() -> TestResult {
    let extra = Mem::new(0x10000)?;
    extra.write_u32(0x300, 0xdead_d00d);
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, 0x10000, extra.addr(), 0)?;
    eq_hex("read before the delete", guest_read(&mut g.cpu, SLOT_GPA + 0x300)?, 0xdead_d00d)?;
    g.vm.add_slot(1, SLOT_GPA, 0, extra.addr(), 0)?;
    guest_read_mmio(&mut g.cpu, SLOT_GPA + 0x300)?;
    crate::sys::expect_errno(
        "deleting slot 1 again",
        kvmsys::set_region(&g.vm.fd, &kvmsys::region(1, 0, SLOT_GPA, 0, extra.addr())),
        libc::EINVAL,
    )
}

/// Guest stores land in the VMM's mapping.
fn guest_write_seen() -> TestResult {
    let extra = Mem::new(0x10000)?;
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, 0x10000, extra.addr(), 0)?;
    guest_write(&mut g.cpu, SLOT_GPA + 0x1234, 0x5151_7070)?;
    eq_hex("host view of the guest's store", extra.read_u32(0x1234), 0x5151_7070)
}

/// KVM_MEM_READONLY: reads see the memory, writes become MMIO exits and
/// leave the memory alone.
fn readonly() -> TestResult {
    let ro = Mem::new(0x2000)?;
    ro.write_u32(0, 0x0dd0_beef);
    let mut g = Guest::new(Mode::Long)?;
    expect_eq("KVM_CAP_READONLY_MEM", g.vm.kvm.check_extension_raw(KVM_CAP_READONLY_MEM as u64), 1)?;
    g.vm.add_slot(1, SLOT_GPA, 0x2000, ro.addr(), KVM_MEM_READONLY)?;
    eq_hex("read of the read-only slot", guest_read(&mut g.cpu, SLOT_GPA)?, 0x0dd0_beef)?;
    g.cpu.start("mem_write")?;
    g.cpu.with_regs(|r| {
        r.rdi = SLOT_GPA + 4;
        r.rax = 0x1234_5678;
    })?;
    g.cpu.expect(Exit::mmio_write(SLOT_GPA + 4, &0x1234_5678u32.to_le_bytes()))?;
    g.cpu.expect_hlt()?;
    eq_hex("read-only memory after the write", ro.read_u32(4), 0)
}

/// 256 one-page slots, each with its own value; the guest reads the first
/// and the last.
fn many_slots() -> TestResult {
    const N: u64 = 256;
    let m = Mem::new((N * PAGE) as usize)?;
    let mut g = Guest::new(Mode::Long)?;
    for i in 0..N {
        m.write_u32((i * PAGE) as usize, 0x5107_0000 + i as u32);
        // Leave a gap page between slots so none are adjacent.
        g.vm.add_slot(1 + i as u32, SLOT_GPA + i * 2 * PAGE, PAGE, m.addr() + i * PAGE, 0)?;
    }
    eq_hex("slot 1", guest_read(&mut g.cpu, SLOT_GPA)?, 0x5107_0000)?;
    eq_hex("slot 256", guest_read(&mut g.cpu, SLOT_GPA + (N - 1) * 2 * PAGE)?, 0x5107_0000 + N as u32 - 1)?;
    guest_read_mmio(&mut g.cpu, SLOT_GPA + PAGE)
}

/// The VMM replaces the page behind a slot (mmap MAP_FIXED) after the
/// guest has read it: the guest must see the new page, not the old one.
fn remap() -> TestResult {
    let extra = Mem::new(0x2000)?;
    extra.write_u32(0, 0x1111_1111);
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, 0x2000, extra.addr(), 0)?;
    eq_hex("first read", guest_read(&mut g.cpu, SLOT_GPA)?, 0x1111_1111)?;
    // SAFETY: replaces the first page of our own mapping.
    let p = unsafe {
        libc::mmap(
            extra.addr() as *mut libc::c_void,
            PAGE as usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("mmap MAP_FIXED: {}", std::io::Error::last_os_error()));
    }
    extra.write_u32(0, 0x2222_2222);
    eq_hex("read after the VMM remapped the page", guest_read(&mut g.cpu, SLOT_GPA)?, 0x2222_2222)
}

/// madvise(MADV_DONTNEED) drops the page: the guest reads zeroes.
fn dontneed() -> TestResult {
    let extra = Mem::new(0x2000)?;
    extra.write_u32(0, 0x3333_3333);
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, 0x2000, extra.addr(), 0)?;
    eq_hex("first read", guest_read(&mut g.cpu, SLOT_GPA)?, 0x3333_3333)?;
    // SAFETY: our own private anonymous mapping.
    if unsafe { libc::madvise(extra.addr() as *mut libc::c_void, PAGE as usize, libc::MADV_DONTNEED) } != 0 {
        return Err(format!("madvise: {}", std::io::Error::last_os_error()));
    }
    eq_hex("read after MADV_DONTNEED", guest_read(&mut g.cpu, SLOT_GPA)?, 0)
}

/// AnonHugePages of this process (kB).
fn anon_huge_kb() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("AnonHugePages:"))
                .and_then(|r| r.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A THP-backed slot of 4 MiB, which the MMU may map with 2 MiB leaves:
/// the guest reads and writes through them; the host drops one page of
/// the first 2 MiB (MADV_DONTNEED splits the huge page: the MMU notifier
/// must take the whole 2 MiB leaf away) and the guest sees the zero page
/// there and the old data beside it; then dirty logging starts on the
/// slot (2 MiB leaves are write-protected, a write replaces one with 4 KiB
/// mappings) and exactly the guest's writes are logged.
fn thp() -> TestResult {
    // Under kvm-amd npt=0 there are no 2 MiB TDP leaves, and shadow paging
    // writes the guest's accessed/dirty bits, so the log holds the guest's
    // page-table pages too (the in-tree module's as well).
    if crate::sys::kvm_amd_npt() == Some(false) {
        return super::harness::skip("kvm-amd npt=0: no 2 MiB TDP leaves to split");
    }
    const HUGE: u64 = 2 << 20;
    const GPA: u64 = 0x1000_0000;
    const PAGES: u64 = 2 * HUGE / PAGE;
    let mem = crate::bench::mem::BigMem::new(2 * HUGE as usize, true)?;
    let host = |off: u64| mem.addr() + off;
    let before = anon_huge_kb();
    for (off, v) in [(0, 0x1111_1111u32), (5 * PAGE, 0x2222_2222), (HUGE + 100 * PAGE, 0x5555_5555)] {
        // SAFETY: inside our own mapping.
        unsafe { std::ptr::write_volatile(host(off) as *mut u32, v) };
    }
    let huge = anon_huge_kb() > before;
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, GPA, 2 * HUGE, mem.addr(), 0)?;
    eq_hex("first read", guest_read(&mut g.cpu, GPA)?, 0x1111_1111)?;
    eq_hex("read of the second 2 MiB", guest_read(&mut g.cpu, GPA + HUGE + 100 * PAGE)?, 0x5555_5555)?;
    // Only kvm-amd with nested paging maps 2 MiB leaves (not EPT yet).
    if huge && crate::sys::kvm_amd_npt() == Some(true) {
        let s = crate::suites::stats::Stats::open(&g.vm.fd)?;
        if s.get("pages_2m")? == 0 {
            return Err("THP-backed slot, but pages_2m is 0 after guest reads".into());
        }
    }
    guest_write(&mut g.cpu, GPA + 3 * PAGE, 0x4444_4444)?;
    // SAFETY: inside our own mapping.
    eq_hex("host read of the guest's write", unsafe { std::ptr::read_volatile(host(3 * PAGE) as *const u32) }, 0x4444_4444)?;
    // SAFETY: one page of our own private anonymous mapping.
    if unsafe { libc::madvise(host(5 * PAGE) as *mut libc::c_void, PAGE as usize, libc::MADV_DONTNEED) } != 0 {
        return Err(format!("madvise: {}", std::io::Error::last_os_error()));
    }
    eq_hex("read after MADV_DONTNEED", guest_read(&mut g.cpu, GPA + 5 * PAGE)?, 0)?;
    eq_hex("read beside it", guest_read(&mut g.cpu, GPA + 3 * PAGE)?, 0x4444_4444)?;
    g.vm.add_slot(1, GPA, 2 * HUGE, mem.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    guest_write(&mut g.cpu, GPA + 7 * PAGE, 0x6666_6666)?;
    guest_write(&mut g.cpu, GPA + HUGE + 2 * PAGE, 0x7777_7777)?;
    eq_hex("read of the second 2 MiB while logging", guest_read(&mut g.cpu, GPA + HUGE + 100 * PAGE)?, 0x5555_5555)?;
    let mut b = vec![0u64; (PAGES / 64) as usize];
    kvmsys::get_dirty_log(&g.vm.fd, 1, &mut b).map_err(|e| format!("KVM_GET_DIRTY_LOG: {}", errno_name(e)))?;
    expect_eq("dirty pages", bits(&b), vec![7, HUGE / PAGE + 2])?;
    // SAFETY: inside our own mapping.
    eq_hex("host read of the logged write", unsafe { std::ptr::read_volatile(host(HUGE + 2 * PAGE) as *const u32) }, 0x7777_7777)
}

const DIRTY_PAGES: u64 = 128;

/// Bits set in a dirty bitmap, as page numbers.
fn bits(b: &[u64]) -> Vec<u64> {
    let mut v = Vec::new();
    for (i, w) in b.iter().enumerate() {
        for j in 0..64 {
            if w & (1 << j) != 0 {
                v.push(i as u64 * 64 + j);
            }
        }
    }
    v
}

fn get_log(vm: &Vm, slot: u32) -> Result<Vec<u64>, String> {
    let mut b = vec![0u64; DIRTY_PAGES.div_ceil(64) as usize];
    kvmsys::get_dirty_log(&vm.fd, slot, &mut b).map_err(|e| format!("KVM_GET_DIRTY_LOG: {}", errno_name(e)))?;
    Ok(bits(&b))
}

fn page_addrs(pages: &[u64]) -> Vec<u64> {
    pages.iter().map(|p| SLOT_GPA + p * PAGE + 8).collect()
}

/// KVM_MEM_LOG_DIRTY_PAGES: exactly the written pages are reported, and
/// KVM_GET_DIRTY_LOG clears the log (no manual protect).
fn dirty_log() -> TestResult {
    let m = Mem::new((DIRTY_PAGES * PAGE) as usize)?;
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, DIRTY_PAGES * PAGE, m.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    expect_eq("dirty pages before the guest ran", get_log(&g.vm, 1)?, vec![])?;
    let pages = [0u64, 3, 17, 63, 64, 127];
    guest_write_list(&mut g, &page_addrs(&pages), 0xd1d1_d1d1)?;
    expect_eq("dirty pages", get_log(&g.vm, 1)?, pages.to_vec())?;
    expect_eq("dirty pages on a second get", get_log(&g.vm, 1)?, vec![])?;
    guest_write_list(&mut g, &page_addrs(&[5, 3]), 0xd2d2_d2d2)?;
    expect_eq("dirty pages after writing 5 and 3", get_log(&g.vm, 1)?, vec![3, 5])?;
    eq_hex("memory of page 17", m.read_u32((17 * PAGE + 8) as usize), 0xd1d1_d1d1)?;
    eq_hex("memory of page 3", m.read_u32((3 * PAGE + 8) as usize), 0xd2d2_d2d2)
}

/// Turning logging on for a slot the guest already wrote (a flags-only
/// change): only writes after that are logged; a slot without logging
/// answers KVM_GET_DIRTY_LOG with ENOENT.
fn dirty_log_enable_later() -> TestResult {
    let m = Mem::new((DIRTY_PAGES * PAGE) as usize)?;
    let mut g = Guest::new(Mode::Long)?;
    g.vm.add_slot(1, SLOT_GPA, DIRTY_PAGES * PAGE, m.addr(), 0)?;
    guest_write_list(&mut g, &page_addrs(&[1, 2]), 0xe1e1_e1e1)?;
    let mut b = [0u64; 2];
    crate::sys::expect_errno(
        "KVM_GET_DIRTY_LOG without logging",
        kvmsys::get_dirty_log(&g.vm.fd, 1, &mut b),
        libc::ENOENT,
    )?;
    g.vm.add_slot(1, SLOT_GPA, DIRTY_PAGES * PAGE, m.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    guest_write_list(&mut g, &page_addrs(&[2, 9]), 0xe2e2_e2e2)?;
    expect_eq("dirty pages", get_log(&g.vm, 1)?, vec![2, 9])?;
    g.vm.add_slot(1, SLOT_GPA, DIRTY_PAGES * PAGE, m.addr(), 0)?;
    guest_write_list(&mut g, &page_addrs(&[10]), 0xe3e3_e3e3)?;
    eq_hex("memory of page 10", m.read_u32((10 * PAGE + 8) as usize), 0xe3e3_e3e3)
}

fn enable_manual(vm: &Vm, args0: u64) -> TestResult {
    let have = vm.kvm.check_extension_raw(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 as u64);
    if have as u64 & args0 != args0 {
        return Err(format!("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = {have}, want bits {args0:#x}"));
    }
    let mut cap = kvm_enable_cap { cap: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, ..Default::default() };
    cap.args[0] = args0;
    k("KVM_ENABLE_CAP(MANUAL_DIRTY_LOG_PROTECT2)", vm.fd.enable_cap(&cap))
}

fn clear(vm: &Vm, pages: &[u64]) -> TestResult {
    let mut b = vec![0u64; DIRTY_PAGES.div_ceil(64) as usize];
    for p in pages {
        b[(p / 64) as usize] |= 1 << (p % 64);
    }
    kvmsys::clear_dirty_log(&vm.fd, 1, 0, DIRTY_PAGES as u32, &mut b)
        .map(drop)
        .map_err(|e| format!("KVM_CLEAR_DIRTY_LOG({pages:?}): {}", errno_name(e)))
}

/// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: KVM_GET_DIRTY_LOG no longer clears;
/// KVM_CLEAR_DIRTY_LOG clears (and re-protects) exactly the given pages.
fn dirty_manual() -> TestResult {
    let m = Mem::new((DIRTY_PAGES * PAGE) as usize)?;
    let mut g = Guest::new(Mode::Long)?;
    enable_manual(&g.vm, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE as u64)?;
    g.vm.add_slot(1, SLOT_GPA, DIRTY_PAGES * PAGE, m.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    expect_eq("dirty pages before the guest ran", get_log(&g.vm, 1)?, vec![])?;
    guest_write_list(&mut g, &page_addrs(&[1, 2, 40, 100]), 0xf1f1_f1f1)?;
    expect_eq("dirty pages", get_log(&g.vm, 1)?, vec![1, 2, 40, 100])?;
    expect_eq("dirty pages again (not cleared by get)", get_log(&g.vm, 1)?, vec![1, 2, 40, 100])?;
    clear(&g.vm, &[1, 40])?;
    expect_eq("dirty pages after clearing 1 and 40", get_log(&g.vm, 1)?, vec![2, 100])?;
    guest_write_list(&mut g, &page_addrs(&[1, 2]), 0xf2f2_f2f2)?;
    expect_eq("dirty pages after the guest wrote 1 and 2", get_log(&g.vm, 1)?, vec![1, 2, 100])
}

/// ...with KVM_DIRTY_LOG_INITIALLY_SET: a new slot starts all dirty.
fn dirty_initially_set() -> TestResult {
    let m = Mem::new((DIRTY_PAGES * PAGE) as usize)?;
    let mut g = Guest::new(Mode::Long)?;
    enable_manual(&g.vm, (KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE | KVM_DIRTY_LOG_INITIALLY_SET) as u64)?;
    g.vm.add_slot(1, SLOT_GPA, DIRTY_PAGES * PAGE, m.addr(), KVM_MEM_LOG_DIRTY_PAGES)?;
    expect_eq("dirty pages of a new slot", get_log(&g.vm, 1)?, (0..DIRTY_PAGES).collect::<Vec<_>>())?;
    clear(&g.vm, &(0..DIRTY_PAGES).collect::<Vec<_>>())?;
    expect_eq("dirty pages after clearing all", get_log(&g.vm, 1)?, vec![])?;
    guest_write_list(&mut g, &page_addrs(&[7]), 0xf3f3_f3f3)?;
    expect_eq("dirty pages after the guest wrote 7", get_log(&g.vm, 1)?, vec![7])
}
