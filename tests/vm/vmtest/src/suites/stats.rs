//! Statistics (issue 13): the binary stats file of KVM_GET_STATS_FD on VM
//! and vCPU fds, laid out as upstream's virt/kvm/binary_stats.c with the
//! x86 descriptor tables of arch/x86/kvm/x86.c (names, kinds, order), and
//! counters that move with what the guest does.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::irqchip::{interrupt_me_after, IrqVm};
use crate::report::expect_eq;
use crate::sys::{errno_name, expect_errno, ioctl};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const GET_STATS_FD: u64 = 0xaece; // _IO(KVMIO, 0xce)
const CAP_BINARY_STATS_FD: u64 = 203;
const NAME_SIZE: usize = 48;
const HEADER_SIZE: usize = 24;
const DESC_SIZE: usize = 16 + NAME_SIZE;

// kvm_stats_desc.flags
const TYPE_CUMULATIVE: u32 = 0;
const TYPE_INSTANT: u32 = 1;
const TYPE_PEAK: u32 = 2;
const TYPE_LOG_HIST: u32 = 4;
const UNIT_NONE: u32 = 0;
const UNIT_SECONDS: u32 = 2 << 4;
const UNIT_BOOLEAN: u32 = 4 << 4;

const C: (u32, i16, u16) = (TYPE_CUMULATIVE | UNIT_NONE, 0, 1);
const I: (u32, i16, u16) = (TYPE_INSTANT | UNIT_NONE, 0, 1);
const P: (u32, i16, u16) = (TYPE_PEAK | UNIT_NONE, 0, 1);
const B: (u32, i16, u16) = (TYPE_INSTANT | UNIT_BOOLEAN, 0, 1);
const T: (u32, i16, u16) = (TYPE_CUMULATIVE | UNIT_SECONDS, -9, 1);
const H: (u32, i16, u16) = (TYPE_LOG_HIST | UNIT_SECONDS, -9, 32);

/// kvm_vm_stats_desc (x86, 7.3): name, (flags, exponent, size).
const VM_DESCS: &[(&str, (u32, i16, u16))] = &[
    ("remote_tlb_flush", C),
    ("remote_tlb_flush_requests", C),
    ("mmu_shadow_zapped", C),
    ("mmu_pte_write", C),
    ("mmu_pde_zapped", C),
    ("mmu_flooded", C),
    ("mmu_recycled", C),
    ("mmu_cache_miss", C),
    ("mmu_unsync", I),
    ("mmu_shadow_pages", I),
    ("pages_4k", I),
    ("pages_2m", I),
    ("pages_1g", I),
    ("nx_lpage_splits", I),
    ("max_mmu_rmap_size", P),
    ("max_mmu_page_hash_collisions", P),
];

/// kvm_vcpu_stats_desc (x86, 7.3).
const VCPU_DESCS: &[(&str, (u32, i16, u16))] = &[
    ("halt_successful_poll", C),
    ("halt_attempted_poll", C),
    ("halt_poll_invalid", C),
    ("halt_wakeup", C),
    ("halt_poll_success_ns", T),
    ("halt_poll_fail_ns", T),
    ("halt_wait_ns", T),
    ("halt_poll_success_hist", H),
    ("halt_poll_fail_hist", H),
    ("halt_wait_hist", H),
    ("blocking", B),
    ("pf_taken", C),
    ("pf_fixed", C),
    ("pf_emulate", C),
    ("pf_spurious", C),
    ("pf_fast", C),
    ("pf_mmio_spte_created", C),
    ("pf_guest", C),
    ("tlb_flush", C),
    ("invlpg", C),
    ("exits", C),
    ("io_exits", C),
    ("mmio_exits", C),
    ("signal_exits", C),
    ("irq_window_exits", C),
    ("nmi_window_exits", C),
    ("l1d_flush", C),
    ("halt_exits", C),
    ("request_irq_exits", C),
    ("irq_exits", C),
    ("host_state_reload", C),
    ("fpu_reload", C),
    ("insn_emulation", C),
    ("insn_emulation_fail", C),
    ("hypercalls", C),
    ("irq_injections", C),
    ("nmi_injections", C),
    ("req_event", C),
    ("nested_run", C),
    ("directed_yield_attempted", C),
    ("directed_yield_successful", C),
    ("preemption_reported", C),
    ("preemption_other", C),
    ("guest_mode", B),
    ("notify_window_exits", C),
];

pub fn tests() -> Vec<Test> {
    vec![
        test("stats/binary-fd-header-id-and-readonly", header_and_id),
        test("stats/vm-descriptors-names-kinds-order", vm_descs),
        test("stats/vcpu-descriptors-names-kinds-order", vcpu_descs),
        test("stats/exits-and-io-exits-count-guest-outs", io_counters),
        test("stats/halt-wait-blocking-and-signal-exit", halt_counters),
        test("stats/pages-4k-counts-mapped-guest-pages", pages_4k),
        test("stats/debugfs-files-per-vm-dir-and-clear", debugfs),
        test("stats/kvm-stat-once-debugfs-shows-exits", kvm_stat),
        test("trace/event-formats-match-upstream-fields", trace_formats),
        test("trace/kvm-exit-and-kvm-pio-count-guest-outs", trace_counts),
        test("trace/perf-kvm-stat-record-report-io-exits", perf_kvm_stat),
    ]
}

/// One descriptor as read from the file.
struct Desc {
    name: String,
    flags: u32,
    exponent: i16,
    size: u16,
    offset: u32,
}

/// A parsed stats file: id, descriptors and a way to read the data.
struct Stats {
    fd: OwnedFd,
    id: String,
    descs: Vec<Desc>,
    data_offset: u64,
}

fn pread(fd: &OwnedFd, off: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len];
    // SAFETY: buf is valid for len bytes.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), len, off as i64) };
    if n < 0 {
        return Err(format!("pread({off}, {len}): {}", errno_name(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))));
    }
    buf.truncate(n as usize);
    Ok(buf)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn cstr(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).into_owned()
}

impl Stats {
    fn open(f: &impl AsRawFd) -> Result<Stats, String> {
        let fd = ioctl(f, GET_STATS_FD, 0).map_err(|e| format!("KVM_GET_STATS_FD: {}", errno_name(e)))?;
        // SAFETY: the ioctl returned a new fd that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let h = pread(&fd, 0, HEADER_SIZE)?;
        if h.len() != HEADER_SIZE {
            return Err(format!("header: read {} bytes, want {HEADER_SIZE}", h.len()));
        }
        let (flags, name_size, num_desc) = (u32_at(&h, 0), u32_at(&h, 4), u32_at(&h, 8));
        let (id_off, desc_off, data_off) = (u32_at(&h, 12), u32_at(&h, 16), u32_at(&h, 20));
        expect_eq("header.flags", flags, 0)?;
        expect_eq("header.name_size", name_size as usize, NAME_SIZE)?;
        expect_eq("header.id_offset", id_off as usize, HEADER_SIZE)?;
        expect_eq("header.desc_offset", desc_off as usize, HEADER_SIZE + NAME_SIZE)?;
        let descs_len = num_desc as usize * DESC_SIZE;
        expect_eq("header.data_offset", data_off as usize, desc_off as usize + descs_len)?;
        let id = cstr(&pread(&fd, id_off.into(), NAME_SIZE)?);
        let raw = pread(&fd, desc_off.into(), descs_len)?;
        expect_eq("descriptor bytes read", raw.len(), descs_len)?;
        let descs = raw
            .chunks(DESC_SIZE)
            .map(|d| Desc {
                flags: u32_at(d, 0),
                exponent: i16::from_le_bytes([d[4], d[5]]),
                size: u16::from_le_bytes([d[6], d[7]]),
                offset: u32_at(d, 8),
                name: cstr(&d[16..]),
            })
            .collect();
        Ok(Stats { fd, id, descs, data_offset: data_off.into() })
    }

    /// The values of statistic `name` (one, or the buckets of a histogram).
    fn values(&self, name: &str) -> Result<Vec<u64>, String> {
        let d = self.descs.iter().find(|d| d.name == name).ok_or_else(|| format!("no statistic {name}"))?;
        let b = pread(&self.fd, self.data_offset + u64::from(d.offset), 8 * usize::from(d.size))?;
        Ok(b.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect())
    }

    fn get(&self, name: &str) -> Result<u64, String> {
        Ok(self.values(name)?[0])
    }

    /// Descriptors against `want`; data offsets packed in `data_order`
    /// (upstream's struct, which may differ from the descriptor order).
    fn check_descs(&self, want: &[(&str, (u32, i16, u16))], data_order: &[&str]) -> TestResult {
        let got: Vec<&str> = self.descs.iter().map(|d| d.name.as_str()).collect();
        let names: Vec<&str> = want.iter().map(|w| w.0).collect();
        if got != names {
            return Err(format!("names: got {got:?}, want {names:?}"));
        }
        for (d, (name, (flags, exp, size))) in self.descs.iter().zip(want) {
            expect_eq(&format!("{name}: (flags, exponent, size)"), (d.flags, d.exponent, d.size), (*flags, *exp, *size))?;
        }
        let mut off = 0u32;
        for name in data_order {
            let d = self.descs.iter().find(|d| d.name == *name).ok_or_else(|| format!("no statistic {name}"))?;
            expect_eq(&format!("{name}: data offset"), d.offset, off)?;
            off += 8 * u32::from(d.size);
        }
        // The data block ends where the last value ends.
        let all = pread(&self.fd, self.data_offset, off as usize + 64)?;
        expect_eq("data bytes", all.len(), off as usize)
    }
}

/// KVM_CAP_BINARY_STATS_FD is 1; the VM's id is "kvm-TID", the vCPU's
/// "kvm-TID/vcpu-ID" (TID: the creating thread; here the test's thread,
/// so it differs from the process id); the file is read-only (write: EBADF) and a read past
/// the end returns 0 bytes.
fn header_and_id() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let cap = ioctl(&g.vm.kvm, 0xae03, CAP_BINARY_STATS_FD).map_err(errno_name)?;
    expect_eq("KVM_CHECK_EXTENSION(KVM_CAP_BINARY_STATS_FD)", cap, 1)?;
    let vm = Stats::open(&g.vm.fd)?;
    let cpu = Stats::open(&g.cpu.fd)?;
    // SAFETY: no preconditions.
    let tid = unsafe { libc::gettid() };
    expect_eq("VM id", vm.id.as_str(), format!("kvm-{tid}").as_str())?;
    expect_eq("vCPU id", cpu.id.as_str(), format!("kvm-{tid}/vcpu-0").as_str())?;
    // SAFETY: fcntl on an fd we own.
    let fl = unsafe { libc::fcntl(vm.fd.as_raw_fd(), libc::F_GETFL) };
    expect_eq("O_ACCMODE of the stats fd", fl & libc::O_ACCMODE, libc::O_RDONLY)?;
    // SAFETY: a one-byte buffer on the stack.
    let w = unsafe { libc::write(vm.fd.as_raw_fd(), [0u8].as_ptr().cast(), 1) };
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    expect_errno("write to the stats fd", if w < 0 { Err(e) } else { Ok(w as i64) }, libc::EBADF)?;
    expect_eq("bytes read past the end", pread(&vm.fd, 1 << 20, 8)?.len(), 0)?;
    // A second stats fd of the same vCPU is independent.
    let again = Stats::open(&g.cpu.fd)?;
    expect_eq("second vCPU stats fd id", again.id, cpu.id)
}

fn vm_descs() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let mut data: Vec<&str> = VM_DESCS.iter().map(|d| d.0).collect();
    // struct kvm_vm_stat: max_mmu_page_hash_collisions, then max_mmu_rmap_size.
    let n = data.len();
    data.swap(n - 2, n - 1);
    Stats::open(&g.vm.fd)?.check_descs(VM_DESCS, &data)
}

fn vcpu_descs() -> TestResult {
    let g = Guest::new(Mode::Long)?;
    let data: Vec<&str> = VCPU_DESCS.iter().map(|d| d.0).collect();
    Stats::open(&g.cpu.fd)?.check_descs(VCPU_DESCS, &data)
}

/// 40 OUTs to userspace: exits and io_exits grow by at least 40, and
/// halt_exits by 1 for the final HLT.
fn io_counters() -> TestResult {
    const N: u32 = 40;
    let mut g = Guest::at(Mode::Long, "count_out")?;
    g.cpu.with_regs(|r| {
        r.rbx = 3;
        r.rcx = N.into();
    })?;
    let s = Stats::open(&g.cpu.fd)?;
    let (exits0, io0, hlt0) = (s.get("exits")?, s.get("io_exits")?, s.get("halt_exits")?);
    for i in 1..=N {
        g.cpu.expect(Exit::out4(PORT_OUT, 3 << 16 | i))?;
    }
    g.cpu.expect_hlt()?;
    let (exits, io, hlt) = (s.get("exits")?, s.get("io_exits")?, s.get("halt_exits")?);
    if io - io0 < N.into() || exits - exits0 < N.into() {
        return Err(format!("after {N} OUTs: exits +{}, io_exits +{}, want both >= {N}", exits - exits0, io - io0));
    }
    expect_eq("halt_exits after one HLT", hlt - hlt0, 1)
}

/// With the in-kernel LAPIC, HLT with IF = 0 blocks until a signal:
/// halt_exits 1, halt_wait_ns at least most of the 200 ms, one entry in
/// halt_wait_hist, blocking back to 0, and signal_exits 1.
fn halt_counters() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    let mut c = iv.vcpu(0)?;
    c.start("hlt_then_done")?;
    let s = Stats::open(&c.fd)?;
    let kick = interrupt_me_after(Duration::from_millis(200));
    let r = c.run_errno();
    let _ = kick.join();
    match r? {
        Err(libc::EINTR) => {}
        other => return Err(format!("KVM_RUN: got {other:?}, want EINTR after the signal")),
    }
    expect_eq("halt_exits", s.get("halt_exits")?, 1)?;
    expect_eq("signal_exits", s.get("signal_exits")?, 1)?;
    expect_eq("blocking after KVM_RUN returned", s.get("blocking")?, 0)?;
    let wait = s.get("halt_wait_ns")?;
    if wait < 100_000_000 {
        return Err(format!("halt_wait_ns {wait}, want >= 100 ms of the 200 ms halt"));
    }
    let hist: u64 = s.values("halt_wait_hist")?.iter().sum();
    if hist == 0 {
        return Err("halt_wait_hist is empty after a wait".into());
    }
    Ok(())
}

/// pages_4k is 0 before the first entry and grows once the guest runs
/// (its code, stack and page tables are mapped on first touch).
fn pages_4k() -> TestResult {
    let mut g = Guest::at(Mode::Long, "hlt_once")?;
    let s = Stats::open(&g.vm.fd)?;
    expect_eq("pages_4k before KVM_RUN", s.get("pages_4k")?, 0)?;
    g.cpu.expect_hlt()?;
    let n = s.get("pages_4k")? + s.get("pages_2m")? + s.get("pages_1g")?;
    if n == 0 {
        return Err("pages_4k + pages_2m + pages_1g is 0 after the guest ran".into());
    }
    Ok(())
}

const DEBUGFS_KVM: &str = "/sys/kernel/debug/kvm";

fn read_u64_file(path: &str) -> Result<u64, String> {
    let t = std::fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))?;
    t.trim().parse().map_err(|e| format!("{path}: {t:?}: {e}"))
}

fn write_file(path: &str, v: &str) -> Result<(), i32> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| e.raw_os_error().unwrap_or(0))?;
    f.write_all(v.as_bytes()).map_err(|e| e.raw_os_error().unwrap_or(0))
}

/// A VM that made `n` OUT exits and still exists, with its vCPU.
pub fn guest_with_outs(n: u32) -> Result<Guest, String> {
    let mut g = Guest::at(Mode::Long, "count_out")?;
    g.cpu.with_regs(|r| {
        r.rbx = 5;
        r.rcx = n.into();
    })?;
    for i in 1..=n {
        g.cpu.expect(Exit::out4(PORT_OUT, 5 << 16 | i))?;
    }
    g.cpu.expect_hlt()?;
    Ok(g)
}

/// /sys/kernel/debug/kvm has one file per VM and vCPU statistic (the
/// descriptor names); the VM's "TID-FD" directory has the same files with
/// this VM's values (exits and io_exits >= the OUTs it made) and a
/// vcpu0/pid with the thread that ran it; the aggregate exits is at least
/// the VM's; writing 0 clears a cumulative statistic, 1 is EINVAL.
fn debugfs() -> TestResult {
    const N: u32 = 30;
    let g = guest_with_outs(N)?;
    let mut top: Vec<String> = std::fs::read_dir(DEBUGFS_KVM)
        .map_err(|e| format!("{DEBUGFS_KVM}: {e}"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    let mut want: Vec<String> = VM_DESCS.iter().chain(VCPU_DESCS).map(|d| d.0.to_string()).collect();
    want.sort();
    if top != want {
        let extra: Vec<_> = top.iter().filter(|t| !want.contains(t)).collect();
        let missing: Vec<_> = want.iter().filter(|w| !top.contains(w)).collect();
        return Err(format!("{DEBUGFS_KVM} files: extra {extra:?}, missing {missing:?}"));
    }
    // SAFETY: no preconditions.
    let tid = unsafe { libc::gettid() };
    let dir = format!("{DEBUGFS_KVM}/{tid}-{}", g.vm.fd.as_raw_fd());
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("per-VM directory {dir}: {e}"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // Upstream adds x86 files of its own (mmu_rmaps_stat) to the VM's.
    let missing: Vec<_> = want.iter().filter(|w| !files.contains(w)).collect();
    if !missing.is_empty() {
        return Err(format!("{dir} lacks {missing:?}"));
    }
    let exits = read_u64_file(&format!("{dir}/exits"))?;
    let io = read_u64_file(&format!("{dir}/io_exits"))?;
    if exits < N.into() || io < N.into() {
        return Err(format!("{dir}: exits {exits}, io_exits {io}, want both >= {N}"));
    }
    let all = read_u64_file(&format!("{DEBUGFS_KVM}/exits"))?;
    if all < exits {
        return Err(format!("{DEBUGFS_KVM}/exits {all} < this VM's {exits}"));
    }
    expect_eq("vcpu0/pid", read_u64_file(&format!("{dir}/vcpu0/pid"))?, tid as u64)?;
    expect_errno("write 1 to exits", write_file(&format!("{dir}/io_exits"), "1\n").map(|_| 0), libc::EINVAL)?;
    write_file(&format!("{dir}/io_exits"), "0\n").map_err(|e| format!("write 0 to io_exits: {}", errno_name(e)))?;
    expect_eq("io_exits after writing 0", read_u64_file(&format!("{dir}/io_exits"))?, 0)?;
    drop(g);
    if std::path::Path::new(&dir).exists() {
        return Err(format!("{dir} still exists after the VM was closed"));
    }
    Ok(())
}

/// The kernel source's tools/kvm/kvm_stat/kvm_stat (`-1 -d -i`: one
/// batch from debugfs, including past counts) lists exits for a VM that
/// made OUT exits.
fn kvm_stat() -> TestResult {
    const N: u32 = 25;
    let cmdline = std::fs::read_to_string("/proc/cmdline").map_err(|e| e.to_string())?;
    let Some(kdir) = cmdline.split_whitespace().find_map(|p| p.strip_prefix("rkvm.kdir=")) else {
        return Err("no rkvm.kdir= on the kernel command line".into());
    };
    let tool = format!("{kdir}/source/tools/kvm/kvm_stat/kvm_stat");
    if !std::path::Path::new(&tool).exists() {
        return Err(format!("{tool} not found"));
    }
    let _g = guest_with_outs(N)?;
    let out = std::process::Command::new("python3")
        .args([tool.as_str(), "-1", "-d", "-i"])
        .output()
        .map_err(|e| format!("python3 kvm_stat: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("kvm_stat: {}: {} {}", out.status, text, String::from_utf8_lossy(&out.stderr)));
    }
    let exits = text
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("exits")).then(|| w.next().and_then(|v| v.parse::<u64>().ok())).flatten()
        })
        .ok_or_else(|| format!("kvm_stat -1 -d -i printed no exits line: {text:?}"))?;
    if exits < N.into() {
        return Err(format!("kvm_stat exits {exits}, want >= {N}"));
    }
    Ok(())
}

const TRACING: &str = "/sys/kernel/tracing";

/// (event, its fields as "type name" in order) as upstream's formats have
/// them after the common fields.
const TRACE_FIELDS: &[(&str, &[&str])] = &[
    (
        "kvm_exit",
        &[
            "unsigned int exit_reason",
            "unsigned long guest_rip",
            "u32 isa",
            "u64 info1",
            "u64 info2",
            "u32 intr_info",
            "u32 error_code",
            "unsigned int vcpu_id",
            "u64 requests",
        ],
    ),
    (
        "kvm_entry",
        &["unsigned int vcpu_id", "unsigned long rip", "bool immediate_exit", "u32 intr_info", "u32 error_code"],
    ),
    (
        "kvm_pio",
        &["unsigned int rw", "unsigned int port", "unsigned int size", "unsigned int count", "unsigned int val"],
    ),
    ("kvm_mmio", &["u32 type", "u32 len", "u64 gpa", "u64 val"]),
    ("kvm_msr", &["unsigned write", "u32 ecx", "u64 data", "u8 exception"]),
    ("kvm_userspace_exit", &["__u32 reason", "int errno"]),
    ("kvm_inj_virq", &["unsigned int vector", "bool soft", "bool reinjected"]),
    ("kvm_page_fault", &["unsigned int vcpu_id", "unsigned long guest_rip", "u64 fault_address", "u64 error_code"]),
];

/// The non-common fields of `event` as "type name".
fn trace_fields(event: &str) -> Result<Vec<String>, String> {
    let path = format!("{TRACING}/events/kvm/{event}/format");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("field:"))
        .filter_map(|f| f.split(';').next())
        .filter(|f| !f.contains("common_"))
        .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect())
}

/// The kvm trace system has upstream's events with upstream's fields
/// (perf kvm stat and trace-cmd read exit_reason, isa, ...).
fn trace_formats() -> TestResult {
    for (event, want) in TRACE_FIELDS {
        let got = trace_fields(event)?;
        let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
        expect_eq(&format!("{event} fields"), got, want)?;
    }
    Ok(())
}

fn tracefs_write(file: &str, v: &str) -> Result<(), String> {
    let path = format!("{TRACING}/{file}");
    std::fs::write(&path, v).map_err(|e| format!("write {v:?} to {path}: {e}"))
}

/// With kvm:kvm_exit and kvm:kvm_pio enabled, a guest making N OUTs to
/// port 0x{PORT_OUT} leaves at least N kvm_pio "pio_write at 0x..." and N
/// kvm_exit "reason io" (SVM's IOIO name) records.
fn trace_counts() -> TestResult {
    const N: u32 = 20;
    tracefs_write("events/kvm/kvm_exit/enable", "1")?;
    tracefs_write("events/kvm/kvm_pio/enable", "1")?;
    tracefs_write("trace", "")?;
    let r = guest_with_outs(N);
    tracefs_write("events/kvm/kvm_exit/enable", "0")?;
    tracefs_write("events/kvm/kvm_pio/enable", "0")?;
    drop(r?);
    let text = std::fs::read_to_string(format!("{TRACING}/trace")).map_err(|e| e.to_string())?;
    let pio = format!("pio_write at 0x{PORT_OUT:x} size 4 count 1");
    let pios = text.lines().filter(|l| l.contains("kvm_pio:") && l.contains(&pio)).count();
    let exits = text.lines().filter(|l| l.contains("kvm_exit:") && l.contains("reason io ")).count();
    if pios < N as usize || exits < N as usize {
        let sample: Vec<&str> = text.lines().filter(|l| l.contains("kvm_")).take(4).collect();
        return Err(format!("{pios} kvm_pio \"{pio}\" and {exits} kvm_exit \"reason io\" records, want >= {N} each; first: {sample:?}"));
    }
    Ok(())
}

/// `perf kvm stat record` (the distribution's perf) of a guest making N
/// OUTs (`rkvm-vmtest --guest-outs N` as perf's workload), then `perf kvm stat report --event=ioport`: the report lists
/// the guest's port with at least N samples (perf pairs kvm_pio with the
/// next kvm_entry, so both events and their fields must be upstream's).
fn perf_kvm_stat() -> TestResult {
    const N: u32 = 30;
    if !std::path::Path::new("/usr/bin/perf").exists() {
        return Err("/usr/bin/perf missing (linux-perf)".into());
    }
    let data = "/tmp/rkvm-perf-kvm.data";
    let _ = std::fs::remove_file(data);
    // perf starts the workload (this program, making the OUTs) only once
    // its events are enabled, so no sample can be missed however slow the
    // machine is.
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new("/usr/bin/perf")
        .args(["kvm", "stat", "record", "-o", data, "--"])
        .arg(&me)
        .args(["--guest-outs", &N.to_string()])
        .output()
        .map_err(|e| format!("perf kvm stat record: {e}"))?;
    if !out.status.success() {
        return Err(format!("perf kvm stat record: {}: {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    let rep = std::process::Command::new("/usr/bin/perf")
        .args(["kvm", "-i", data, "stat", "report", "--event=ioport"])
        .output()
        .map_err(|e| format!("perf kvm stat report: {e}"))?;
    // perf prints the report on stderr.
    let text = String::from_utf8_lossy(&rep.stdout).into_owned() + &String::from_utf8_lossy(&rep.stderr);
    let port = format!("{PORT_OUT:#x}:POUT");
    let samples = text
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(port.as_str())).then(|| w.next().and_then(|v| v.parse::<u64>().ok())).flatten()
        })
        .ok_or_else(|| format!("no {port} row in perf kvm stat report: {text:?}"))?;
    if samples < N.into() {
        return Err(format!("{port}: {samples} samples, want >= {N}"));
    }
    Ok(())
}
