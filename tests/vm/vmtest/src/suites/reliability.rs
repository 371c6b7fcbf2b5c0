//! Reliability (issue 17): irqfds torn down when their eventfd is closed
//! (EPOLLHUP), and the PIT's mask notifier (ticks kept for reinjection
//! while IRQ0 was masked are dropped when it is unmasked), each pinned
//! against the in-tree module. Guests: guests/reliability.inc.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::irqchip::{expect_port, irqfd, route_irqchip, set_routing, EventFd, IrqVm};
use crate::report::expect_eq;
use crate::sys::{errno_name, expect_errno};
use kvm_bindings::*;
use std::time::{Duration, Instant};

pub fn tests() -> Vec<Test> {
    vec![
        test("reliability/irqfd-eventfd-close-tears-down-irqfd", irqfd_hangup),
        test("reliability/pit-unmask-drops-stale-ticks-pic", || pit_stale(PIC)),
        test("reliability/pit-unmask-drops-stale-ticks-ioapic-pin0", || pit_stale(0)),
        test("reliability/pit-unmask-drops-stale-ticks-ioapic-pin2-qemu-routing", || pit_stale(2)),
    ]
}

/// IOAPIC IRR (KVM_GET_IRQCHIP).
fn ioapic_irr(vm: &Vm) -> Result<u32, String> {
    let mut c = kvm_irqchip { chip_id: KVM_IRQCHIP_IOAPIC, ..Default::default() };
    k("KVM_GET_IRQCHIP(IOAPIC)", vm.fd.get_irqchip(&mut c))?;
    // SAFETY: chip 2 is the IOAPIC member; plain data.
    Ok(unsafe { c.chip.ioapic.irr })
}

/// Waits up to 2 s for bit `pin` of the IOAPIC IRR to be `set`.
fn wait_irr(vm: &Vm, pin: u32, set: bool, what: &str) -> TestResult {
    let t0 = Instant::now();
    loop {
        let irr = ioapic_irr(vm)?;
        if (irr >> pin) & 1 == u32::from(set) {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(2) {
            return Err(format!("{what}: IOAPIC IRR {irr:#x} after 2 s, want bit {pin} {}", if set { "set" } else { "clear" }));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A level irqfd (KVM_IRQFD_FLAG_RESAMPLE) on GSI 5 holds IOAPIC pin 5
/// (masked, so nothing is delivered) up once signalled. Closing the
/// irqfd's eventfd while a dup of it is open changes nothing; closing the
/// last one tears the irqfd down as upstream's irqfd_wakeup() on
/// EPOLLHUP: it was the GSI's last resampler, so the line goes down.
/// Deassigning by the closed fd number is EBADF. A new level irqfd on
/// the same GSI works and, deassigned, takes the line down at once: the
/// closed one is not left behind as another resampler of the GSI.
fn irqfd_hangup() -> TestResult {
    const GSI: u32 = 5;
    let vm = Vm::bare()?;
    k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())?;
    let rs = EventFd::new()?;
    let ev = EventFd::new()?;
    // SAFETY: plain dup of an fd we own; the copy is closed below.
    let dup = unsafe { libc::dup(ev.fd()) };
    if dup < 0 {
        return Err(format!("dup: {}", std::io::Error::last_os_error()));
    }
    irqfd(&vm.fd, ev.fd(), GSI, KVM_IRQFD_FLAG_RESAMPLE, rs.fd())
        .map_err(|e| format!("KVM_IRQFD(resample): {}", errno_name(e)))?;
    ev.write(1)?;
    wait_irr(&vm, GSI, true, "the level irqfd signalled")?;
    let old = ev.fd();
    drop(ev);
    std::thread::sleep(Duration::from_millis(300));
    wait_irr(&vm, GSI, true, "one of two fds of the irqfd's eventfd closed")?;
    // SAFETY: closes our dup.
    unsafe { libc::close(dup) };
    wait_irr(&vm, GSI, false, "the irqfd's eventfd closed (EPOLLHUP)")?;
    expect_errno("KVM_IRQFD(deassign, the closed eventfd's fd)", irqfd(&vm.fd, old, GSI, KVM_IRQFD_FLAG_DEASSIGN, 0), libc::EBADF)?;
    let ev2 = EventFd::new()?;
    irqfd(&vm.fd, ev2.fd(), GSI, KVM_IRQFD_FLAG_RESAMPLE, rs.fd())
        .map_err(|e| format!("KVM_IRQFD(resample, a new eventfd on the same GSI): {}", errno_name(e)))?;
    ev2.write(1)?;
    wait_irr(&vm, GSI, true, "the new level irqfd signalled")?;
    irqfd(&vm.fd, ev2.fd(), GSI, KVM_IRQFD_FLAG_DEASSIGN, 0).map_err(|e| format!("KVM_IRQFD(deassign): {}", errno_name(e)))?;
    expect_eq("IOAPIC IRR right after deassigning the GSI's only level irqfd", ioapic_irr(&vm)? >> GSI & 1, 0)
}

/// `pit_stale`'s EBP for IRQ0 at the PIC.
const PIC: u64 = 0xff;
/// PIT period: count 11932, 10 ms.
const PIT_COUNT: u64 = 11932;
/// How long the vCPU stays out with IRQ0 masked (~150 ticks pile up).
const MASKED_FOR: Duration = Duration::from_millis(1500);
/// How long the guest counts after unmasking (~6 ticks are due).
const WINDOW_MS: u64 = 60;

/// The PIT in mode 2 at 10 ms with reinjection (the default) while its
/// IRQ0 is masked: at the PIC (`route` = PIC), or at IOAPIC pin `route`
/// (pin 2 with QEMU's routing: GSI 0 to PIC pin 0 and IOAPIC pin 2). The
/// vCPU stays out for 1.5 s, so ~150 ticks are kept for reinjection; the
/// guest unmasks IRQ0 and counts interrupts for 60 ms. Unmasking drops
/// the stale ticks (upstream's mask notifier): a handful arrive, not a
/// burst of the ~150 missed ones.
fn pit_stale(route: u64) -> TestResult {
    let iv = IrqVm::new(true, true)?;
    let vec = if route == PIC { VEC_PIC_BASE } else { VEC_PIT_IOAPIC };
    iv.set_eoi(vec, if route == PIC { EOI_PIC } else { EOI_LAPIC });
    if route == 2 {
        let mut r = Vec::new();
        for gsi in 0..24u32 {
            if gsi < 16 {
                r.push(route_irqchip(gsi, if gsi < 8 { KVM_IRQCHIP_PIC_MASTER } else { KVM_IRQCHIP_PIC_SLAVE }, gsi % 8));
            }
            match gsi {
                0 => r.push(route_irqchip(0, KVM_IRQCHIP_IOAPIC, 2)),
                2 => {}
                g => r.push(route_irqchip(g, KVM_IRQCHIP_IOAPIC, g)),
            }
        }
        set_routing(&iv.vm.fd, &r, None, 0).map_err(|e| format!("KVM_SET_GSI_ROUTING: {}", errno_name(e)))?;
    }
    let mut c = iv.vcpu(0)?;
    let khz = k("KVM_GET_TSC_KHZ", c.fd.get_tsc_khz())? as u64;
    c.start("pit_stale")?;
    c.with_regs(|r| {
        r.rbp = route;
        r.rsi = PIT_COUNT;
        r.r9 = WINDOW_MS * khz;
    })?;
    expect_port(&mut c, PORT_READY)?;
    std::thread::sleep(MASKED_FOR);
    let n = c.out4_value(PORT_ECHO)?;
    expect_port(&mut c, PORT_DONE)?;
    expect_eq("other vectors (vector, count)", iv.others(&[vec]), vec![])?;
    eprintln!("info reliability/pit-unmask (route {route:#x}): {n} interrupts in the {WINDOW_MS} ms after unmasking");
    if n == 0 {
        return Err(format!("no PIT interrupt in the {WINDOW_MS} ms after unmasking IRQ0"));
    }
    if n > 40 {
        return Err(format!(
            "{n} PIT interrupts in the {WINDOW_MS} ms after unmasking IRQ0 (~{} ticks of 10 ms were missed while masked): the stale ticks were reinjected",
            MASKED_FOR.as_millis() / 10
        ));
    }
    Ok(())
}
