//! The in-kernel irqchip (issue 5), in VMs made with KVM_CREATE_IRQCHIP:
//! PIT -> PIC -> ExtINT, LAPIC timers (periodic, one-shot, TSC-deadline),
//! HLT sleeping in KVM, IOAPIC level/edge lines with KVM_IRQ_LINE(_STATUS)
//! and EOI/remote IRR, irqfd (with resample), MSI routing and
//! KVM_SIGNAL_MSI, NMI, INIT-SIPI-SIPI and IPIs between two vCPUs, and the
//! state ioctls round-tripped mid-run.  Guests: guests/irq.inc.  The shared
//! pieces here (`IrqVm`, `EventFd`, raw ioctls, `Background`) are used by
//! irqchip_io.rs, irqchip_errors.rs and bench.rs too.
//!
//! Timing assertions are deliberately loose (TCG is slow and noisy): a
//! timer must fire, never early, and at a plausible average rate.

use super::guest::*;
use super::harness::{skip, test, Test, TestResult};
use crate::report::expect_eq;
use crate::sys::{errno_name, ioctl};
use kvm_bindings::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Raw ioctl numbers (values checked against linux/kvm.h).
#[allow(dead_code)]
pub mod nr {
    pub const CREATE_IRQCHIP: u64 = 0xae60;
    pub const IRQ_LINE: u64 = 0x4008_ae61;
    pub const GET_IRQCHIP: u64 = 0xc208_ae62;
    pub const SET_IRQCHIP: u64 = 0x8208_ae63;
    pub const IRQ_LINE_STATUS: u64 = 0xc008_ae67;
    pub const REGISTER_COALESCED_MMIO: u64 = 0x4010_ae67;
    pub const UNREGISTER_COALESCED_MMIO: u64 = 0x4010_ae68;
    pub const SET_GSI_ROUTING: u64 = 0x4008_ae6a;
    pub const IRQFD: u64 = 0x4020_ae76;
    pub const CREATE_PIT2: u64 = 0x4040_ae77;
    pub const IOEVENTFD: u64 = 0x4040_ae79;
    pub const GET_LAPIC: u64 = 0x8400_ae8e;
    pub const SET_LAPIC: u64 = 0x4400_ae8f;
    pub const GET_MP_STATE: u64 = 0x8004_ae98;
    pub const SET_MP_STATE: u64 = 0x4004_ae99;
    pub const NMI: u64 = 0xae9a;
    pub const GET_PIT2: u64 = 0x8070_ae9f;
    pub const SET_PIT2: u64 = 0x4070_aea0;
    pub const SIGNAL_MSI: u64 = 0x4020_aea5;
}

pub fn tests() -> Vec<Test> {
    vec![
        test("irq/mp-state-bsp-runnable-ap-uninitialized", mp_states),
        test("irq/pit-mode2-irq0-through-pic", || pit(0x34)),
        test("irq/pit-mode3-irq0-through-pic", || pit(0x36)),
        test("irq/lapic-timer-periodic", lapic_periodic),
        test("irq/lapic-timer-oneshot-hlt-sleeps-in-kernel", lapic_oneshot),
        test("irq/lapic-timer-tsc-deadline-x2apic", tsc_deadline),
        test("irq/hlt-halted-until-nmi-eintr-mp-state", hlt_nmi),
        test("irq/pic-irq-line-status-extint", pic_line),
        test("irq/ioapic-level-irq-line-eoi-remote-irr", ioapic_level),
        test("irq/ioapic-edge-irq-line-status", ioapic_edge),
        test("irq/irqfd-level-with-resamplefd", irqfd_resample),
        test("irq/irqfd-msi-via-gsi-routing", irqfd_msi),
        test("irq/signal-msi", signal_msi_test),
        test("irq/smp-init-sipi-sipi-and-ipis", smp),
        test("irq/smp-ap-kvm-run-blocks-until-sipi-then-eagain", smp_ap_blocks),
        test("irq/state-lapic-round-trip-mid-run", lapic_state),
        test("irq/state-irqchip-pic-ioapic-round-trip-mid-run", irqchip_state),
        test("irq/state-pit2-round-trip-mid-run", pit_state),
    ]
}

/// An eventfd (non-blocking).
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> Result<EventFd, String> {
        // SAFETY: plain syscall; the new fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }
    pub fn fd(&self) -> i32 {
        self.0.as_raw_fd()
    }
    pub fn write(&self, v: u64) -> Result<(), String> {
        // SAFETY: 8 bytes from a local.
        let r = unsafe { libc::write(self.fd(), &v as *const u64 as *const libc::c_void, 8) };
        if r != 8 {
            return Err(format!("eventfd write: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }
    /// The counter, reset to 0 (0 when nothing was signalled).
    pub fn take(&self) -> Result<u64, String> {
        let mut v = 0u64;
        // SAFETY: 8 bytes into a local.
        let r = unsafe { libc::read(self.fd(), &mut v as *mut u64 as *mut libc::c_void, 8) };
        if r == 8 {
            return Ok(v);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            Ok(0)
        } else {
            Err(format!("eventfd read: {e}"))
        }
    }
}

/// A long-mode VM laid out for guests/irq.inc: slot 1 RAM at IRQ_RAM, the
/// APIC and IOAPIC pages mapped, IDT vectors 32..255 at irq_stubs, and the
/// AP trampoline; with the in-kernel irqchip and PIT when asked.
pub struct IrqVm {
    pub vm: Vm,
    pub ram: Mem,
}

pub fn off(a: u64) -> usize {
    (a - IRQ_RAM) as usize
}

impl IrqVm {
    pub fn new(irqchip: bool, pit: bool) -> Result<IrqVm, String> {
        let vm = Vm::new(Mode::Long)?;
        if irqchip {
            k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
        }
        if pit {
            let cfg = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
            k("KVM_CREATE_PIT2", vm.fd.create_pit2(cfg))?;
        }
        let ram = Mem::new(IRQ_RAM_LEN as usize)?;
        vm.add_slot(1, IRQ_RAM, IRQ_RAM_LEN, ram.addr(), 0)?;
        vm.mem.write_u64(PDPT_ADDR as usize + 8 * 3, HIGH_PD | 3);
        for pa in [IOAPIC_ADDR, APIC_ADDR] {
            // 2 MiB page, P RW PWT PCD PS
            ram.write_u64(off(HIGH_PD) + 8 * ((pa >> 21) & 511) as usize, (pa & !0x1f_ffff) | 0x9b);
        }
        let stubs = vm.sym("irq_stubs")?;
        for v in 32..256u64 {
            let a = stubs + 16 * (v - 32);
            let g = (a & 0xffff) | ((SEL_CODE64 as u64) << 16) | (0x8e << 40) | (((a >> 16) & 0xffff) << 48);
            vm.mem.write_u64(IDT_ADDR as usize + 16 * v as usize, g);
            vm.mem.write_u64(IDT_ADDR as usize + 16 * v as usize + 8, a >> 32);
        }
        let e = vm.sym("ap_entry16")?;
        ram.write(off(AP_TRAMPOLINE), &[0xea, e as u8, (e >> 8) as u8, 0, 0]); // ljmp $0, $ap_entry16
        Ok(IrqVm { vm, ram })
    }

    /// Interrupts of `vec` the guest's handler has counted.
    pub fn count(&self, vec: u64) -> u32 {
        self.ram.read_u32(off(IRQ_COUNT) + 4 * vec as usize)
    }

    /// Vectors other than `except` the guest counted, with their counts.
    pub fn others(&self, except: &[u64]) -> Vec<(u64, u32)> {
        (32..256u64).filter(|v| !except.contains(v)).map(|v| (v, self.count(v))).filter(|(_, n)| *n != 0).collect()
    }

    /// What the handler of `vec` does (EOI_* bits).
    pub fn set_eoi(&self, vec: u64, bits: u64) {
        self.ram.write(off(IRQ_EOI) + vec as usize, &[bits as u8]);
    }

    pub fn vcpu(&self, id: u64) -> Result<Cpu, String> {
        self.vm.vcpu(id)
    }

    /// KVM_IRQ_LINE_STATUS: the status the kernel returns.
    pub fn line_status(&self, gsi: u32, level: u32) -> Result<i32, String> {
        let mut l = kvm_irq_level { level, ..Default::default() };
        l.__bindgen_anon_1.irq = gsi;
        ioctl(&self.vm.fd, nr::IRQ_LINE_STATUS, &mut l as *mut _ as u64)
            .map_err(|e| format!("KVM_IRQ_LINE_STATUS({gsi}, {level}): {}", errno_name(e)))?;
        // SAFETY: the kernel wrote the status over the irq number.
        Ok(unsafe { l.__bindgen_anon_1.status })
    }

    pub fn irqchip(&self, chip_id: u32) -> Result<kvm_irqchip, String> {
        let mut c = kvm_irqchip { chip_id, ..Default::default() };
        k(&format!("KVM_GET_IRQCHIP({chip_id})"), self.vm.fd.get_irqchip(&mut c))?;
        Ok(c)
    }

    /// IOAPIC redirection entry `pin` (KVM_GET_IRQCHIP).
    pub fn ioapic_entry(&self, pin: usize) -> Result<u64, String> {
        let c = self.irqchip(KVM_IRQCHIP_IOAPIC)?;
        // SAFETY: chip 2 is the IOAPIC member; plain data.
        Ok(unsafe { c.chip.ioapic.redirtbl[pin].bits })
    }

    /// IOAPIC IRR bitmap (KVM_GET_IRQCHIP).
    pub fn ioapic_irr(&self) -> Result<u32, String> {
        let c = self.irqchip(KVM_IRQCHIP_IOAPIC)?;
        // SAFETY: as above.
        Ok(unsafe { c.chip.ioapic.irr })
    }
}

/// A GSI routing entry to IOAPIC/PIC pin.
pub fn route_irqchip(gsi: u32, chip: u32, pin: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry { gsi, type_: KVM_IRQ_ROUTING_IRQCHIP, ..Default::default() };
    e.u.irqchip = kvm_irq_routing_irqchip { irqchip: chip, pin };
    e
}

/// A GSI routing entry sending an MSI (fixed, physical destination).
pub fn route_msi(gsi: u32, dest: u32, vector: u32) -> kvm_irq_routing_entry {
    let mut e = kvm_irq_routing_entry { gsi, type_: KVM_IRQ_ROUTING_MSI, ..Default::default() };
    e.u.msi = kvm_irq_routing_msi { address_lo: 0xfee0_0000 | dest << 12, data: vector, ..Default::default() };
    e
}

/// KVM_SET_GSI_ROUTING of `entries` with header flags `flags`
/// (`nr` = entries.len() unless `nr` says otherwise).
pub fn set_routing(
    vm: &impl AsRawFd,
    entries: &[kvm_irq_routing_entry],
    nr: Option<u32>,
    flags: u32,
) -> Result<i64, i32> {
    let esz = std::mem::size_of::<kvm_irq_routing_entry>();
    let mut buf = vec![0u64; (8 + esz * entries.len()).div_ceil(8)];
    let base = buf.as_mut_ptr() as *mut u8;
    let n = nr.unwrap_or(entries.len() as u32);
    // SAFETY: buf holds the header and every entry.
    unsafe {
        std::ptr::copy_nonoverlapping(n.to_ne_bytes().as_ptr(), base, 4);
        std::ptr::copy_nonoverlapping(flags.to_ne_bytes().as_ptr(), base.add(4), 4);
        std::ptr::copy_nonoverlapping(entries.as_ptr() as *const u8, base.add(8), esz * entries.len());
    }
    ioctl(vm, nr::SET_GSI_ROUTING, buf.as_ptr() as u64)
}

/// KVM_IRQFD.
pub fn irqfd(vm: &impl AsRawFd, fd: i32, gsi: u32, flags: u32, resamplefd: i32) -> Result<i64, i32> {
    let a = kvm_irqfd { fd: fd as u32, gsi, flags, resamplefd: resamplefd as u32, ..Default::default() };
    ioctl(vm, nr::IRQFD, &a as *const _ as u64)
}

/// KVM_SIGNAL_MSI: the raw return value or errno.
pub fn signal_msi(vm: &impl AsRawFd, dest: u32, vector: u32, flags: u32) -> Result<i64, i32> {
    let m = kvm_msi { address_lo: 0xfee0_0000 | dest << 12, data: vector, flags, ..Default::default() };
    ioctl(vm, nr::SIGNAL_MSI, &m as *const _ as u64)
}

pub fn mp_state(cpu: &Cpu) -> Result<u32, String> {
    Ok(k("KVM_GET_MP_STATE", cpu.fd.get_mp_state())?.mp_state)
}

/// Runs and requires an OUT to `port` (any size or value).
pub fn expect_port(cpu: &mut Cpu, port: u16) -> TestResult {
    match cpu.run()? {
        Exit::Io { out: true, port: p, .. } if p == port => Ok(()),
        e => Err(format!("exit: got {e}, want an out to port {port:#x} (rip {})", cpu.rip())),
    }
}

/// Runs and requires a dword OUT to PORT_ECHO of `v`.
pub fn expect_echo(cpu: &mut Cpu, what: &str, v: u32) -> TestResult {
    let got = cpu.out4_value(PORT_ECHO).map_err(|e| format!("{what}: {e}"))?;
    eq_hex(what, got, v)
}

/// A vCPU running in a background thread until stopped: every exit goes
/// to `exits` (no exit is answered, so only OUTs/MMIO writes make sense).
/// A KVM_RUN failing with EAGAIN is run again (that is how KVM_RUN of an
/// UNINITIALIZED AP returns once INIT/SIPI made it runnable); each such
/// return is counted in `eagain`.  Stopping sets kvm_run.immediate_exit
/// and signals the thread (SIGUSR2) until its KVM_RUN returns EINTR.
pub struct Background<'a> {
    pub exits: mpsc::Receiver<Exit>,
    pub eagain: &'a AtomicU64,
    stop: &'a AtomicBool,
    tid: &'a AtomicU64,
    run: usize,
}

impl Background<'_> {
    /// The next exit within `t`.
    pub fn next(&self, t: Duration) -> Result<Exit, String> {
        self.exits.recv_timeout(t).map_err(|_| format!("no exit of the background vCPU within {t:?}"))
    }

    fn stop_now(&self) {
        self.stop.store(true, SeqCst);
        // SAFETY: `run` is the vCPU's kvm_run mapping, which outlives the
        // scope the thread runs in; immediate_exit is a plain u8 the
        // kernel reads at KVM_RUN entry.
        unsafe { std::ptr::write_volatile(&mut (*(self.run as *mut kvm_run)).immediate_exit, 1) };
    }
}

/// Runs `cpu` in a background thread while `f` runs here; then stops it.
/// Returns f's result, then the background thread's (an error if a
/// KVM_RUN failed or it could not be stopped within 10 s).
pub fn with_background<R>(cpu: &mut Cpu, f: impl FnOnce(&Background) -> R) -> (R, TestResult) {
    let run = cpu.kvm_run() as *mut kvm_run as usize;
    let stop = AtomicBool::new(false);
    let tid = AtomicU64::new(0);
    let eagain = AtomicU64::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let (stop_r, tid_r, eagain_r) = (&stop, &tid, &eagain);
        let h = s.spawn(move || -> TestResult {
            // SAFETY: no preconditions.
            tid_r.store(unsafe { libc::pthread_self() } as u64, SeqCst);
            loop {
                match cpu.run_errno()? {
                    Ok(e) => {
                        let _ = tx.send(e);
                    }
                    Err(libc::EINTR) if stop_r.load(SeqCst) => return Ok(()),
                    Err(libc::EINTR) => {}
                    Err(libc::EAGAIN) => {
                        eagain_r.fetch_add(1, SeqCst);
                    }
                    Err(e) => return Err(format!("background vCPU: KVM_RUN: {}", errno_name(e))),
                }
            }
        });
        let bg = Background { exits: rx, eagain: &eagain, stop: &stop, tid: &tid, run };
        let r = f(&bg);
        bg.stop_now();
        let t0 = Instant::now();
        while !h.is_finished() && t0.elapsed() < Duration::from_secs(10) {
            let t = bg.tid.load(SeqCst);
            if t != 0 {
                // SAFETY: the thread is not joined yet, so its id is valid.
                unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGUSR2) };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let res = if h.is_finished() {
            h.join().unwrap_or_else(|_| Err("background vCPU thread panicked".into()))
        } else {
            Err("background vCPU did not stop within 10 s (KVM_RUN ignores signals?)".into())
        };
        (r, res)
    })
}

/// Signals the calling thread with SIGUSR2 after `after` (to interrupt a
/// KVM_RUN that is expected to block).
pub fn interrupt_me_after(after: Duration) -> std::thread::JoinHandle<()> {
    // SAFETY: no preconditions.
    let me = unsafe { libc::pthread_self() } as u64;
    std::thread::spawn(move || {
        std::thread::sleep(after);
        // SAFETY: the caller joins this thread before it exits.
        unsafe { libc::pthread_kill(me as libc::pthread_t, libc::SIGUSR2) };
    })
}

/// What the vCPU and its LAPIC say about `vec` (for failure messages).
pub fn diag(iv: &IrqVm, cpu: &Cpu, vec: u64) -> String {
    let bit = |s: &kvm_lapic_state, base: usize| lapic_reg(s, base + 0x10 * (vec as usize / 32)) >> (vec % 32) & 1;
    let lapic = match cpu.fd.get_lapic() {
        Ok(s) => format!(
            "IRR {} ISR {} TPR {:#x} SVR {:#x}",
            bit(&s, 0x200),
            bit(&s, 0x100),
            lapic_reg(&s, 0x80),
            lapic_reg(&s, 0xf0)
        ),
        Err(e) => format!("KVM_GET_LAPIC: {}", kerr(e)),
    };
    let mp = mp_state(cpu).map(|m| m.to_string()).unwrap_or_else(|e| e);
    format!("vector {vec:#x}: guest count {}, {lapic}, mp_state {mp}", iv.count(vec))
}

fn tsc_khz(cpu: &Cpu) -> Result<u64, String> {
    Ok(k("KVM_GET_TSC_KHZ", cpu.fd.get_tsc_khz())? as u64)
}

/// Reads the guest TSC delta (two echoes) of irq_quiet and its count.
fn quiet_result(cpu: &mut Cpu) -> Result<(u64, u32), String> {
    let lo = cpu.out4_value(PORT_ECHO)? as u64;
    let hi = cpu.out4_value(PORT_ECHO)? as u64;
    let n = cpu.out4_value(PORT_ECHO)?;
    expect_port(cpu, PORT_DONE)?;
    Ok((hi << 32 | lo, n))
}

/// After KVM_CREATE_IRQCHIP the BSP (vCPU 0) is RUNNABLE and an AP
/// UNINITIALIZED (waiting for INIT/SIPI); with an in-kernel LAPIC
/// KVM_SET_MP_STATE takes HALTED and INIT_RECEIVED, and rejects unknown
/// states.
fn mp_states() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    let c0 = iv.vcpu(0)?;
    let c1 = iv.vcpu(1)?;
    expect_eq("vCPU 0 mp_state", mp_state(&c0)?, KVM_MP_STATE_RUNNABLE)?;
    expect_eq("vCPU 1 mp_state", mp_state(&c1)?, KVM_MP_STATE_UNINITIALIZED)?;
    for s in [KVM_MP_STATE_HALTED, KVM_MP_STATE_INIT_RECEIVED, KVM_MP_STATE_RUNNABLE] {
        k(&format!("KVM_SET_MP_STATE({s})"), c1.fd.set_mp_state(kvm_mp_state { mp_state: s }))?;
        expect_eq("mp_state read back", mp_state(&c1)?, s)?;
    }
    let bad = kvm_mp_state { mp_state: 99 };
    crate::sys::expect_errno(
        "KVM_SET_MP_STATE(99)",
        ioctl(&c0.fd, nr::SET_MP_STATE, &bad as *const _ as u64),
        libc::EINVAL,
    )
}

/// PIT channel 0 at ~1 kHz (count 1193) in mode 2 or 3, IRQ0 through the
/// PIC (vector 0x20, EOI to the PIC) with the LAPIC's LINT0 in ExtINT
/// mode: 20 ticks arrive at the PIC's vector, no other vector, and take at
/// least half the programmed time by the guest's TSC.
fn pit(ctrl: u8) -> TestResult {
    const TICKS: u32 = 20;
    let iv = IrqVm::new(true, true)?;
    iv.set_eoi(VEC_PIC_BASE, EOI_PIC);
    let mut c = iv.vcpu(0)?;
    c.start("pit_irq0")?;
    c.with_regs(|r| {
        r.rdx = ctrl as u64;
        r.rsi = 1193;
        r.rcx = TICKS as u64;
    })?;
    let (tsc, n) = quiet_result(&mut c)?;
    let ms = tsc as f64 / tsc_khz(&c)? as f64;
    if n < TICKS {
        return Err(format!("{n} ticks counted, want {TICKS}"));
    }
    expect_eq("other vectors (vector, count)", iv.others(&[VEC_PIC_BASE]), vec![])?;
    eprintln!("info irq/pit (control {ctrl:#x}): {n} ticks of 1 ms in {ms:.2} ms of guest TSC");
    if ms < TICKS as f64 * 0.5 {
        return Err(format!("{TICKS} ticks of 1 ms in {ms:.2} ms of guest TSC: faster than the PIT rate"));
    }
    Ok(())
}

/// Periodic LAPIC timer of 1 ms (initial count 1,000,000 at divide 1: the
/// in-tree APIC bus runs at 1 GHz): the current count right after arming
/// is within (0, initial]; 20 interrupts arrive at an average period
/// between 0.5 and 100 ms.
fn lapic_periodic() -> TestResult {
    const TICKS: u32 = 20;
    const INIT: u32 = 1_000_000;
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_TIMER, EOI_LAPIC);
    let mut c = iv.vcpu(0)?;
    c.start("lapic_periodic")?;
    c.with_regs(|r| {
        r.rsi = INIT as u64;
        r.rcx = TICKS as u64;
    })?;
    let ccr = c.out4_value(PORT_ECHO)?;
    if ccr > INIT {
        return Err(format!("current count {ccr} right after arming, above the initial count {INIT}"));
    }
    let (tsc, n) = quiet_result(&mut c)?;
    let ms = tsc as f64 / tsc_khz(&c)? as f64;
    if n < TICKS {
        return Err(format!("{n} interrupts, want {TICKS}"));
    }
    expect_eq("other vectors (vector, count)", iv.others(&[VEC_TIMER]), vec![])?;
    let period = ms / n as f64;
    eprintln!("info irq/lapic-timer-periodic: {n} interrupts of 1 ms in {ms:.2} ms of guest TSC (current count {ccr})");
    if !(0.5..=100.0).contains(&period) {
        return Err(format!("{n} periodic interrupts of 1 ms took {ms:.2} ms: average period {period:.3} ms"));
    }
    Ok(())
}

/// One-shot LAPIC timer of 30 ms with the guest in HLT: KVM keeps the vCPU
/// halted inside KVM_RUN (no KVM_EXIT_HLT) until the timer wakes it; the
/// current count is then 0, and no second interrupt comes.
fn lapic_oneshot() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_TIMER, EOI_LAPIC);
    let mut c = iv.vcpu(0)?;
    c.start("lapic_oneshot")?;
    c.with_regs(|r| r.rsi = 30_000_000)?;
    let t0 = Instant::now();
    expect_echo(&mut c, "interrupts after the HLT (first exit)", 1)?;
    let waited = t0.elapsed();
    eprintln!("info irq/lapic-timer-oneshot: the 30 ms timer woke the HLT after {waited:?}");
    if waited < Duration::from_millis(15) {
        return Err(format!("the 30 ms one-shot timer woke the HLT after {waited:?}"));
    }
    expect_echo(&mut c, "current count after expiry", 0)?;
    expect_port(&mut c, PORT_READY)?;
    std::thread::sleep(Duration::from_millis(50));
    expect_echo(&mut c, "interrupts 50 ms later (one-shot)", 1)?;
    expect_port(&mut c, PORT_DONE)
}

/// x2APIC mode, TSC-deadline timer: 10 deadlines of 2 ms each fire, none
/// before its deadline by the guest's TSC, and IA32_TSC_DEADLINE reads 0
/// once the timer has fired.
fn tsc_deadline() -> TestResult {
    const ROUNDS: u32 = 10;
    let iv = IrqVm::new(true, false)?;
    let cpuid = iv.vm.supported_cpuid()?;
    let ecx = cpuid.as_slice().iter().find(|e| e.function == 1).map(|e| e.ecx).unwrap_or(0);
    if ecx & (1 << 24) == 0 || ecx & (1 << 21) == 0 {
        return skip("KVM_GET_SUPPORTED_CPUID lacks TSC-deadline or x2APIC");
    }
    iv.set_eoi(VEC_TSC_DL, EOI_X2APIC);
    let mut c = iv.vcpu(0)?;
    c.start("tsc_deadline")?;
    let khz = tsc_khz(&c)?;
    let t0 = Instant::now();
    c.with_regs(|r| {
        r.rsi = 2 * khz;
        r.rbp = ROUNDS as u64;
    })?;
    expect_echo(&mut c, "TSC-deadline interrupts", ROUNDS)?;
    expect_echo(&mut c, "interrupts before their deadline", 0)?;
    expect_echo(&mut c, "IA32_TSC_DEADLINE after expiry", 0)?;
    expect_port(&mut c, PORT_DONE)?;
    let wall = t0.elapsed();
    eprintln!("info irq/lapic-timer-tsc-deadline: {ROUNDS} deadlines of 2 ms took {wall:?}");
    if wall < Duration::from_millis(ROUNDS as u64 * 2 / 2) {
        return Err(format!("{ROUNDS} deadlines of 2 ms took {wall:?} of wall time"));
    }
    Ok(())
}

/// With the in-kernel LAPIC, HLT with IF = 0 and nothing pending blocks in
/// KVM_RUN: a signal ends the run with EINTR and KVM_GET_MP_STATE says
/// HALTED; KVM_NMI then wakes the vCPU into its NMI handler, which returns
/// behind the HLT.
fn hlt_nmi() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    let mut c = iv.vcpu(0)?;
    c.start("hlt_then_done")?;
    let kick = interrupt_me_after(Duration::from_millis(200));
    let r = c.run_errno();
    let _ = kick.join();
    match r? {
        Err(libc::EINTR) => {}
        Ok(e) => return Err(format!("HLT with IF = 0: got exit {e}, want to stay in KVM_RUN until signalled")),
        Err(e) => return Err(format!("KVM_RUN: {}, want EINTR after the signal", errno_name(e))),
    }
    expect_eq("mp_state while halted", mp_state(&c)?, KVM_MP_STATE_HALTED)?;
    ioctl(&c.fd, nr::NMI, 0).map_err(|e| format!("KVM_NMI: {}", errno_name(e)))?;
    c.expect(Exit::out1(PORT_EXC, 2))?;
    expect_port(&mut c, PORT_DONE)?;
    expect_eq("mp_state after the NMI", mp_state(&c)?, KVM_MP_STATE_RUNNABLE)
}

/// PIC IRQ 3 (unmasked; the IOAPIC pin stays masked) raised with
/// KVM_IRQ_LINE_STATUS reaches the guest as vector 0x23 through LINT0
/// (ExtINT).  The status is the sum over the GSI's routes (PIC and IOAPIC
/// for GSIs 0-15) of the non-negative results, -1 if none: raise 1 (PIC 1,
/// masked IOAPIC pin -1); raise while already high 1 (PIC 1 - it reports 1
/// unless masked, coalesced or not - and IOAPIC 0: no new edge); lower 2
/// (both report 1 for lowering); raise again 1, a second interrupt.  IRQ 4,
/// masked in the PIC and the IOAPIC, reports -1.
fn pic_line() -> TestResult {
    let vec = VEC_PIC_BASE + 3;
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(vec, EOI_PIC);
    let mut c = iv.vcpu(0)?;
    c.start("pic_ready_loop")?;
    c.with_regs(|r| {
        r.rbx = vec;
        r.rcx = 2;
        r.rdx = 0xfff7;
    })?;
    expect_port(&mut c, PORT_READY)?;
    expect_eq("KVM_IRQ_LINE_STATUS(3, raise): status", iv.line_status(3, 1)?, 1)?;
    expect_echo(&mut c, "interrupts", 1).map_err(|e| format!("{e} [{}]", diag(&iv, &c, vec)))?;
    expect_eq("KVM_IRQ_LINE_STATUS(3, raise while high): status", iv.line_status(3, 1)?, 1)?;
    expect_eq("KVM_IRQ_LINE_STATUS(3, lower): status", iv.line_status(3, 0)?, 2)?;
    expect_eq("KVM_IRQ_LINE_STATUS(3, raise): status", iv.line_status(3, 1)?, 1)?;
    expect_echo(&mut c, "interrupts", 2)?;
    expect_port(&mut c, PORT_DONE)?;
    expect_eq("KVM_IRQ_LINE_STATUS(4, masked everywhere): status", iv.line_status(4, 1)?, -1)?;
    let m = iv.irqchip(KVM_IRQCHIP_PIC_MASTER)?;
    // SAFETY: chip 0 is the master PIC.
    let (imr, isr, base) = unsafe { (m.chip.pic.imr, m.chip.pic.isr, m.chip.pic.irq_base) };
    expect_eq("master PIC (imr, isr, irq_base) after the EOIs", (imr, isr, base), (0xf7, 0, 0x20))?;
    expect_eq("other vectors (vector, count)", iv.others(&[vec]), vec![])
}

/// IOAPIC pin 10, level-triggered (vector VEC_LEVEL), raised by
/// KVM_IRQ_LINE_STATUS: delivered (status 1); remote IRR set until the
/// guest's EOI; raising again meanwhile is refused (status -1); an EOI
/// with the line still high delivers it again; lowered (status 1) and
/// EOI'd, remote IRR is clear and nothing more comes.
fn ioapic_level() -> TestResult {
    const PIN: u32 = 10;
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_LEVEL, EOI_REPORT | EOI_LAPIC);
    let mut c = iv.vcpu(0)?;
    c.start("ioapic_pin_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_LEVEL;
        r.rcx = 2;
        r.rsi = PIN as u64;
        r.rbp = 0x8000 | VEC_LEVEL;
    })?;
    expect_port(&mut c, PORT_READY)?;
    let e = iv.ioapic_entry(PIN as usize)?;
    eq_hex("IOAPIC entry as programmed (vector, level, unmasked)", e & 0x1_ffff, 0x8000 | VEC_LEVEL)?;
    expect_eq("KVM_IRQ_LINE_STATUS(raise): status", iv.line_status(PIN, 1)?, 1)?;
    c.expect(Exit::out1(PORT_EXC, VEC_LEVEL as u8))?;
    let e = iv.ioapic_entry(PIN as usize)?;
    eq_hex("remote IRR while in the handler", e >> 14 & 1, 1)?;
    eq_hex("IOAPIC IRR bit of the pin", iv.ioapic_irr()? >> PIN & 1, 1)?;
    // Not 0 ("coalesced"): the in-tree IOAPIC refuses to service a level
    // pin with remote IRR set and reports -1.
    expect_eq("KVM_IRQ_LINE_STATUS(raise again, remote IRR set): status", iv.line_status(PIN, 1)?, -1)?;
    // EOI with the line still high: delivered again.
    c.expect(Exit::out1(PORT_EXC, VEC_LEVEL as u8))?;
    expect_eq("KVM_IRQ_LINE_STATUS(lower): status", iv.line_status(PIN, 0)?, 1)?;
    expect_echo(&mut c, "interrupts", 2)?;
    expect_port(&mut c, PORT_DONE)?;
    let e = iv.ioapic_entry(PIN as usize)?;
    eq_hex("remote IRR after the EOI", e >> 14 & 1, 0)?;
    eq_hex("IOAPIC IRR bit of the pin after lowering", iv.ioapic_irr()? >> PIN & 1, 0)?;
    expect_eq("other vectors (vector, count)", iv.others(&[VEC_LEVEL]), vec![])
}

/// IOAPIC pin 12, edge-triggered (vector VEC_EDGE): raising delivers
/// (status 1); raising an already-high line does not (status 0); lowering
/// returns 1, and a new rising edge delivers again.  A masked pin (13)
/// reports -1 (ignored).
fn ioapic_edge() -> TestResult {
    const PIN: u32 = 12;
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_EDGE, EOI_LAPIC);
    let mut c = iv.vcpu(0)?;
    c.start("ioapic_pin_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_EDGE;
        r.rcx = 2;
        r.rsi = PIN as u64;
        r.rbp = VEC_EDGE;
    })?;
    expect_port(&mut c, PORT_READY)?;
    expect_eq("KVM_IRQ_LINE_STATUS(pin 12 raise): status", iv.line_status(PIN, 1)?, 1)?;
    expect_echo(&mut c, "interrupts", 1)?;
    expect_eq("KVM_IRQ_LINE_STATUS(pin 12 raise, already high): status", iv.line_status(PIN, 1)?, 0)?;
    expect_eq("KVM_IRQ_LINE_STATUS(pin 12 lower): status", iv.line_status(PIN, 0)?, 1)?;
    expect_eq("KVM_IRQ_LINE_STATUS(pin 12 raise): status", iv.line_status(PIN, 1)?, 1)?;
    expect_echo(&mut c, "interrupts", 2)?;
    expect_port(&mut c, PORT_DONE)?;
    expect_eq("KVM_IRQ_LINE_STATUS(masked pin 13 raise): status", iv.line_status(13, 1)?, -1)?;
    expect_eq("KVM_IRQ_LINE_STATUS(masked pin 13 lower): status", iv.line_status(13, 0)?, 1)?;
    expect_eq("other vectors (vector, count)", iv.others(&[VEC_EDGE]), vec![])
}

/// irqfd with KVM_IRQFD_FLAG_RESAMPLE on GSI 11 (IOAPIC pin 11, level):
/// a write to the eventfd asserts the line; the guest's EOI de-asserts it
/// and signals the resamplefd (not before); a second write delivers again.
fn irqfd_resample() -> TestResult {
    const GSI: u32 = 11;
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_LEVEL, EOI_REPORT | EOI_LAPIC);
    let (ev, rs) = (EventFd::new()?, EventFd::new()?);
    irqfd(&iv.vm.fd, ev.fd(), GSI, KVM_IRQFD_FLAG_RESAMPLE, rs.fd())
        .map_err(|e| format!("KVM_IRQFD(resample): {}", errno_name(e)))?;
    let mut c = iv.vcpu(0)?;
    c.start("ioapic_pin_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_LEVEL;
        r.rcx = 2;
        r.rsi = GSI as u64;
        r.rbp = 0x8000 | VEC_LEVEL;
    })?;
    expect_port(&mut c, PORT_READY)?;
    for round in 1..=2u32 {
        ev.write(1)?;
        c.expect(Exit::out1(PORT_EXC, VEC_LEVEL as u8))?;
        expect_eq(&format!("round {round}: resamplefd before the EOI"), rs.take()?, 0)?;
        eq_hex(&format!("round {round}: remote IRR before the EOI"), iv.ioapic_entry(GSI as usize)? >> 14 & 1, 1)?;
        expect_echo(&mut c, "interrupts", round)?;
        expect_eq(&format!("round {round}: resamplefd after the EOI"), rs.take()?, 1)?;
        eq_hex(&format!("round {round}: IOAPIC IRR after the EOI"), iv.ioapic_irr()? >> GSI & 1, 0)?;
    }
    expect_port(&mut c, PORT_DONE)?;
    irqfd(&iv.vm.fd, ev.fd(), GSI, KVM_IRQFD_FLAG_DEASSIGN, 0)
        .map_err(|e| format!("KVM_IRQFD(deassign): {}", errno_name(e)))?;
    Ok(())
}

/// KVM_SET_GSI_ROUTING with an MSI entry (GSI 24 -> APIC 0, VEC_MSI) and
/// an irqfd on it: each eventfd write is one interrupt at VEC_MSI; after
/// KVM_IRQFD deassign, writes deliver nothing.
fn irqfd_msi() -> TestResult {
    const GSI: u32 = 24;
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_MSI, EOI_LAPIC);
    set_routing(&iv.vm.fd, &[route_msi(GSI, 0, VEC_MSI as u32)], None, 0)
        .map_err(|e| format!("KVM_SET_GSI_ROUTING: {}", errno_name(e)))?;
    let ev = EventFd::new()?;
    irqfd(&iv.vm.fd, ev.fd(), GSI, 0, 0).map_err(|e| format!("KVM_IRQFD: {}", errno_name(e)))?;
    let mut c = iv.vcpu(0)?;
    c.start("irq_ready_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_MSI;
        r.rcx = 3;
    })?;
    expect_port(&mut c, PORT_READY)?;
    for i in 1..=3 {
        ev.write(1)?;
        expect_echo(&mut c, "MSIs", i).map_err(|e| format!("{e} [{}]", diag(&iv, &c, VEC_MSI)))?;
    }
    expect_port(&mut c, PORT_DONE)?;
    irqfd(&iv.vm.fd, ev.fd(), GSI, KVM_IRQFD_FLAG_DEASSIGN, 0)
        .map_err(|e| format!("KVM_IRQFD(deassign): {}", errno_name(e)))?;
    ev.write(1)?;
    std::thread::sleep(Duration::from_millis(20));
    expect_eq("MSIs counted after deassign", iv.count(VEC_MSI), 3)?;
    expect_eq("other vectors (vector, count)", iv.others(&[VEC_MSI]), vec![])
}

/// KVM_SIGNAL_MSI to APIC 0 returns 1 (delivered to one vCPU) and the
/// guest takes VEC_MSI2; to an APIC ID no vCPU has it delivers to nobody.
fn signal_msi_test() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_MSI2, EOI_LAPIC);
    let mut c = iv.vcpu(0)?;
    c.start("irq_ready_loop")?;
    c.with_regs(|r| {
        r.rbx = VEC_MSI2;
        r.rcx = 2;
    })?;
    expect_port(&mut c, PORT_READY)?;
    for i in 1..=2 {
        let r = signal_msi(&iv.vm.fd, 0, VEC_MSI2 as u32, 0);
        expect_eq("KVM_SIGNAL_MSI(APIC 0) return", r.map_err(errno_name), Ok(1))?;
        expect_echo(&mut c, "MSIs", i).map_err(|e| format!("{e} [{}]", diag(&iv, &c, VEC_MSI2)))?;
    }
    expect_port(&mut c, PORT_DONE)?;
    let r = signal_msi(&iv.vm.fd, 7, VEC_MSI2 as u32, 0);
    expect_eq("KVM_SIGNAL_MSI(APIC 7: no such vCPU) return", r.map_err(errno_name), Ok(0))?;
    expect_eq("MSIs counted", iv.count(VEC_MSI2), 2)
}

/// Two vCPUs: the AP starts UNINITIALIZED; the BSP's INIT makes it
/// INIT_RECEIVED, its SIPI (vector 0x20) RUNNABLE at CS 0x2000:0; the AP
/// enters long mode and reports APIC ID 1; then 20 ping-pong rounds of
/// fixed IPIs, a self IPI, an all-excluding-self IPI, a logical (flat) IPI
/// and an NMI IPI, each arriving where it should.
fn smp() -> TestResult {
    const ROUNDS: u32 = 20;
    let iv = IrqVm::new(true, false)?;
    for v in [VEC_PING, VEC_PONG, VEC_SELF, VEC_BCAST, VEC_LOGICAL] {
        iv.set_eoi(v, EOI_LAPIC);
    }
    let mut bsp = iv.vcpu(0)?;
    let mut ap = iv.vcpu(1)?;
    ap.timeout = Duration::from_secs(25);
    expect_eq("AP mp_state at creation", mp_state(&ap)?, KVM_MP_STATE_UNINITIALIZED)?;
    bsp.start("smp_bsp")?;
    bsp.with_regs(|r| r.rbp = ROUNDS as u64)?;
    expect_port(&mut bsp, PORT_READY)?;
    expect_eq("AP mp_state after INIT", mp_state(&ap)?, KVM_MP_STATE_INIT_RECEIVED)?;
    expect_port(&mut bsp, PORT_READY)?;
    expect_eq("AP mp_state after SIPI", mp_state(&ap)?, KVM_MP_STATE_RUNNABLE)?;
    let s = k("KVM_GET_SREGS(AP)", ap.fd.get_sregs())?;
    expect_eq("AP CS (selector, base) after SIPI 0x20", (s.cs.selector, s.cs.base), (0x2000, 0x20000))?;
    eq_hex("AP RIP after SIPI", ap.regs()?.rip, 0)?;
    let (r, bg) = with_background(&mut ap, |bg| -> TestResult {
        let e = bg.next(Duration::from_secs(10))?;
        expect_eq("AP's first exit", e, Exit::out4(PORT_READY, 1))?;
        expect_echo(&mut bsp, "AP APIC ID as the AP read it", 1)?;
        expect_echo(&mut bsp, "pongs", ROUNDS)?;
        expect_echo(&mut bsp, "self IPIs", 1)?;
        expect_echo(&mut bsp, "all-excluding-self IPIs at the AP", 1)?;
        expect_echo(&mut bsp, "logical IPIs at the AP", 1)?;
        expect_port(&mut bsp, PORT_DONE)?;
        let e = bg.next(Duration::from_secs(10))?;
        expect_eq("AP's exit after the NMI IPI", e, Exit::out1(PORT_EXC, 2))
    });
    r?;
    bg?;
    expect_eq("pings at the AP", iv.count(VEC_PING), ROUNDS)?;
    expect_eq("all-excluding-self IPIs at the BSP", iv.count(VEC_BCAST), 1)?;
    let others = iv.others(&[VEC_PING, VEC_PONG, VEC_SELF, VEC_BCAST, VEC_LOGICAL]);
    expect_eq("other vectors (vector, count)", others, vec![])
}

/// KVM_RUN of an AP that is still UNINITIALIZED blocks in KVM (no exit)
/// until the BSP's INIT-SIPI-SIPI, then returns EAGAIN once; run again,
/// the AP starts at the SIPI vector (its first exit is its READY), and
/// the two vCPUs ping-pong 5 IPIs.
fn smp_ap_blocks() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_PING, EOI_LAPIC);
    iv.set_eoi(VEC_PONG, EOI_LAPIC);
    let mut bsp = iv.vcpu(0)?;
    let mut ap = iv.vcpu(1)?;
    ap.timeout = Duration::from_secs(25);
    bsp.start("bench_ipi")?;
    bsp.with_regs(|r| r.rbp = 5)?;
    let (r, bg) = with_background(&mut ap, |bg| -> TestResult {
        std::thread::sleep(Duration::from_millis(100));
        expect_eq(
            "KVM_RUN returns of the AP before INIT/SIPI (EAGAIN, exits)",
            (bg.eagain.load(SeqCst), bg.exits.try_iter().count()),
            (0, 0),
        )?;
        expect_port(&mut bsp, PORT_READY)?;
        let e = bg.next(Duration::from_secs(10))?;
        expect_eq("AP's first exit", e, Exit::out4(PORT_READY, 1))?;
        expect_eq("KVM_RUN returns of the AP with EAGAIN", bg.eagain.load(SeqCst), 1)?;
        expect_port(&mut bsp, PORT_DONE)
    });
    r?;
    bg?;
    expect_eq("(pings at the AP, pongs at the BSP)", (iv.count(VEC_PING), iv.count(VEC_PONG)), (5, 5))
}

fn lapic_reg(s: &kvm_lapic_state, off: usize) -> u32 {
    let b: Vec<u8> = s.regs[off..off + 4].iter().map(|c| *c as u8).collect();
    u32::from_le_bytes(b.try_into().unwrap())
}

fn set_lapic_reg(s: &mut kvm_lapic_state, off: usize, v: u32) {
    for (i, b) in v.to_le_bytes().iter().enumerate() {
        s.regs[off + i] = *b as _;
    }
}

/// KVM_GET_LAPIC mid-run shows what the guest programmed (TPR 0x20, SVR
/// 0x1ff, APIC ID 0); setting it back unchanged changes nothing; setting
/// TPR 0x30, LDR and IRR bits of VEC_HIGH (0x45) and VEC_LOW (0x25): the
/// guest reads the new TPR/LDR, takes 0x45 at once and 0x25 only after
/// lowering its TPR.
fn lapic_state() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    iv.set_eoi(VEC_LOW, EOI_LAPIC);
    iv.set_eoi(VEC_HIGH, EOI_LAPIC);
    let mut c = iv.vcpu(0)?;
    c.start("lapic_state")?;
    expect_port(&mut c, PORT_READY)?;
    let s = k("KVM_GET_LAPIC", c.fd.get_lapic())?;
    eq_hex("TPR (0x80)", lapic_reg(&s, 0x80), 0x20)?;
    eq_hex("SVR (0xf0)", lapic_reg(&s, 0xf0), 0x1ff)?;
    eq_hex("APIC ID (0x20)", lapic_reg(&s, 0x20), 0)?;
    eq_hex("version (0x30)", lapic_reg(&s, 0x30), 0x5_0014)?;
    k("KVM_SET_LAPIC(unchanged)", c.fd.set_lapic(&s))?;
    let s2 = k("KVM_GET_LAPIC", c.fd.get_lapic())?;
    for o in (0..0x400).step_by(0x10).filter(|o| *o != 0x390) {
        eq_hex(&format!("register {o:#x} after an unchanged KVM_SET_LAPIC"), lapic_reg(&s2, o), lapic_reg(&s, o))?;
    }
    let mut m = s2;
    set_lapic_reg(&mut m, 0x80, 0x30);
    set_lapic_reg(&mut m, 0xd0, 0x0300_0000);
    for v in [VEC_LOW, VEC_HIGH] {
        let o = 0x200 + 0x10 * (v as usize / 32);
        let cur = lapic_reg(&m, o);
        set_lapic_reg(&mut m, o, cur | 1 << (v % 32));
    }
    k("KVM_SET_LAPIC(TPR, LDR, IRR)", c.fd.set_lapic(&m))?;
    expect_echo(&mut c, "TPR read by the guest", 0x30)?;
    expect_echo(&mut c, "LDR read by the guest", 0x0300_0000)?;
    expect_echo(&mut c, "VEC_HIGH interrupts (above TPR)", 1)?;
    expect_echo(&mut c, "VEC_LOW interrupts (below TPR)", 0)?;
    expect_echo(&mut c, "VEC_LOW interrupts after TPR = 0", 1)?;
    expect_port(&mut c, PORT_DONE)
}

fn bytes_of<T>(t: &T) -> &[u8] {
    // SAFETY: plain-old-data uapi structs, read as bytes.
    unsafe { std::slice::from_raw_parts(t as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// KVM_GET_IRQCHIP mid-run shows the PIC and IOAPIC as the guest programmed
/// them; KVM_SET_IRQCHIP of the same state changes nothing; new master and
/// slave IMRs and an IOAPIC redirection entry set by the host are what the
/// guest then reads from the devices.
fn irqchip_state() -> TestResult {
    let iv = IrqVm::new(true, false)?;
    let mut c = iv.vcpu(0)?;
    c.start("irqchip_state")?;
    expect_port(&mut c, PORT_READY)?;
    let mut chips = Vec::new();
    for id in [KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC] {
        chips.push(iv.irqchip(id)?);
    }
    // SAFETY (unions below): the chip ids say which member is valid.
    unsafe {
        let (m, s, io) = (chips[0].chip.pic, chips[1].chip.pic, chips[2].chip.ioapic);
        expect_eq("master (irq_base, imr)", (m.irq_base, m.imr), (0x20, 0xfb))?;
        expect_eq("slave (irq_base, imr)", (s.irq_base, s.imr), (0x28, 0xff))?;
        eq_hex("IOAPIC base_address", io.base_address, IOAPIC_ADDR)?;
        eq_hex("IOAPIC pin 3 (low dword)", io.redirtbl[3].bits & 0xffff_ffff, 0x1_8000 | VEC_LEVEL)?;
    }
    for ch in &chips {
        k("KVM_SET_IRQCHIP(unchanged)", iv.vm.fd.set_irqchip(ch))?;
        let back = iv.irqchip(ch.chip_id)?;
        expect_eq(&format!("chip {} after an unchanged KVM_SET_IRQCHIP", ch.chip_id), bytes_of(&back), bytes_of(ch))?;
    }
    // SAFETY: as above.
    unsafe {
        chips[0].chip.pic.imr = 0xf8;
        chips[1].chip.pic.imr = 0x7f;
        chips[2].chip.ioapic.redirtbl[4].bits = 0x1_a055;
    }
    for ch in &chips {
        k(&format!("KVM_SET_IRQCHIP({})", ch.chip_id), iv.vm.fd.set_irqchip(ch))?;
    }
    expect_echo(&mut c, "master IMR (port 0x21)", 0xf8)?;
    expect_echo(&mut c, "slave IMR (port 0xa1)", 0x7f)?;
    expect_echo(&mut c, "IOAPIC pin 4 low dword", 0x1_a055)?;
    expect_echo(&mut c, "IOAPIC pin 3 low dword", 0x1_8000 | VEC_LEVEL as u32)?;
    expect_port(&mut c, PORT_DONE)
}

/// KVM_GET_PIT2 mid-run shows channel 0 as the guest programmed it (count
/// 0x1234, mode 2, lobyte/hibyte); KVM_SET_PIT2 back keeps it; switched to
/// mode 3 by the host, the guest's read-back status command reports mode 3.
fn pit_state() -> TestResult {
    let iv = IrqVm::new(true, true)?;
    let mut c = iv.vcpu(0)?;
    c.start("pit_state")?;
    expect_port(&mut c, PORT_READY)?;
    let s = k("KVM_GET_PIT2", iv.vm.fd.get_pit2())?;
    let ch = s.channels[0];
    expect_eq("channel 0 (count, mode, rw_mode, gate)", (ch.count, ch.mode, ch.rw_mode, ch.gate), (0x1234, 2, 3, 1))?;
    k("KVM_SET_PIT2(unchanged)", iv.vm.fd.set_pit2(&s))?;
    let back = k("KVM_GET_PIT2", iv.vm.fd.get_pit2())?;
    for i in 0..3 {
        let (a, b) = (back.channels[i], s.channels[i]);
        expect_eq(
            &format!("channel {i} (count, mode, rw_mode, gate, bcd) after an unchanged KVM_SET_PIT2"),
            (a.count, a.mode, a.rw_mode, a.gate, a.bcd),
            (b.count, b.mode, b.rw_mode, b.gate, b.bcd),
        )?;
    }
    expect_eq("flags", back.flags, s.flags)?;
    let mut m = back;
    m.channels[0].mode = 3;
    k("KVM_SET_PIT2(mode 3)", iv.vm.fd.set_pit2(&m))?;
    let st = c.out4_value(PORT_ECHO)?;
    eq_hex("read-back status of channel 0 (RW mode, mode, BCD)", st & 0x3f, 0x36)?;
    expect_port(&mut c, PORT_DONE)
}
