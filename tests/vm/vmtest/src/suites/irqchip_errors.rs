//! Bad uses of the irqchip, routing, irqfd, ioeventfd and coalesced-MMIO
//! ioctls (issue 5): each fails (or succeeds) exactly as with the in-tree
//! module.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::irqchip::{irqfd, nr, route_irqchip, route_msi, set_routing, signal_msi, EventFd};
use super::irqchip_io::{coalesced_zone, ioeventfd_raw, IOEV_DATAMATCH, IOEV_DEASSIGN, IOEV_PIO};
use crate::report::expect_eq;
use crate::sys::{errno_name, expect_errno, ioctl};
use kvm_bindings::*;

pub fn tests() -> Vec<Test> {
    vec![
        test("irq/bad/create-pit2-without-irqchip-enoent", pit_without_irqchip),
        test("irq/bad/create-pit2-twice-eexist", pit_twice),
        test("irq/bad/create-irqchip-twice-eexist", irqchip_twice),
        test("irq/bad/create-irqchip-after-vcpu-einval", irqchip_after_vcpu),
        test("irq/bad/no-irqchip-line-chip-lapic-routing-msi", without_irqchip),
        test("irq/bad/irqchip-id-and-irq-line-gsi-range", chip_ids),
        test("irq/bad/gsi-routing-entries-einval", routing),
        test("irq/bad/irqfd-errors", irqfd_errors),
        test("irq/bad/signal-msi-flags-einval", msi_flags),
        test("irq/bad/ioeventfd-errors", ioeventfd_errors),
        test("irq/bad/coalesced-mmio-errors", coalesced_errors),
    ]
}

fn create_irqchip(vm: &Vm) -> TestResult {
    k("KVM_CREATE_IRQCHIP", vm.fd.create_irq_chip())
}

fn create_pit2(vm: &Vm) -> Result<i64, i32> {
    let cfg = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
    ioctl(&vm.fd, nr::CREATE_PIT2, &cfg as *const _ as u64)
}

/// KVM_CREATE_PIT2 needs the in-kernel PIC: ENOENT without it.
fn pit_without_irqchip() -> TestResult {
    let vm = Vm::bare()?;
    expect_errno("KVM_CREATE_PIT2 before KVM_CREATE_IRQCHIP", create_pit2(&vm), libc::ENOENT)
}

fn pit_twice() -> TestResult {
    let vm = Vm::bare()?;
    create_irqchip(&vm)?;
    create_pit2(&vm).map_err(|e| format!("KVM_CREATE_PIT2: {}", errno_name(e)))?;
    expect_errno("second KVM_CREATE_PIT2", create_pit2(&vm), libc::EEXIST)
}

fn irqchip_twice() -> TestResult {
    let vm = Vm::bare()?;
    create_irqchip(&vm)?;
    expect_errno("second KVM_CREATE_IRQCHIP", ioctl(&vm.fd, nr::CREATE_IRQCHIP, 0), libc::EEXIST)
}

fn irqchip_after_vcpu() -> TestResult {
    let vm = Vm::bare()?;
    let _c = k("KVM_CREATE_VCPU", vm.fd.create_vcpu(0))?;
    expect_errno("KVM_CREATE_IRQCHIP after KVM_CREATE_VCPU", ioctl(&vm.fd, nr::CREATE_IRQCHIP, 0), libc::EINVAL)
}

/// Without KVM_CREATE_IRQCHIP: KVM_IRQ_LINE(_STATUS), KVM_GET/SET_IRQCHIP
/// and KVM_GET_PIT2 are ENXIO; KVM_GET/SET_LAPIC, KVM_SET_GSI_ROUTING,
/// KVM_IRQFD and KVM_SIGNAL_MSI are EINVAL.
fn without_irqchip() -> TestResult {
    let vm = Vm::bare()?;
    let cpu = k("KVM_CREATE_VCPU", vm.fd.create_vcpu(0))?;
    let mut l = kvm_irq_level { level: 1, ..Default::default() };
    l.__bindgen_anon_1.irq = 4;
    let lp = &mut l as *mut _ as u64;
    expect_errno("KVM_IRQ_LINE", ioctl(&vm.fd, nr::IRQ_LINE, lp), libc::ENXIO)?;
    expect_errno("KVM_IRQ_LINE_STATUS", ioctl(&vm.fd, nr::IRQ_LINE_STATUS, lp), libc::ENXIO)?;
    let mut chip = kvm_irqchip::default();
    let cp = &mut chip as *mut _ as u64;
    expect_errno("KVM_GET_IRQCHIP", ioctl(&vm.fd, nr::GET_IRQCHIP, cp), libc::ENXIO)?;
    expect_errno("KVM_SET_IRQCHIP", ioctl(&vm.fd, nr::SET_IRQCHIP, cp), libc::ENXIO)?;
    let mut pit = kvm_pit_state2::default();
    expect_errno("KVM_GET_PIT2", ioctl(&vm.fd, nr::GET_PIT2, &mut pit as *mut _ as u64), libc::ENXIO)?;
    expect_errno("KVM_SET_PIT2", ioctl(&vm.fd, nr::SET_PIT2, &pit as *const _ as u64), libc::ENXIO)?;
    let mut lapic = kvm_lapic_state::default();
    let la = &mut lapic as *mut _ as u64;
    expect_errno("KVM_GET_LAPIC", ioctl(&cpu, nr::GET_LAPIC, la), libc::EINVAL)?;
    expect_errno("KVM_SET_LAPIC", ioctl(&cpu, nr::SET_LAPIC, la), libc::EINVAL)?;
    expect_errno("KVM_SET_GSI_ROUTING", set_routing(&vm.fd, &[route_msi(1, 0, 0x40)], None, 0), libc::EINVAL)?;
    let ev = EventFd::new()?;
    expect_errno("KVM_IRQFD", irqfd(&vm.fd, ev.fd(), 1, 0, 0), libc::EINVAL)?;
    expect_errno("KVM_SIGNAL_MSI", signal_msi(&vm.fd, 0, 0x40, 0), libc::EINVAL)?;
    let halted = kvm_mp_state { mp_state: KVM_MP_STATE_HALTED };
    expect_errno(
        "KVM_SET_MP_STATE(HALTED) without an in-kernel LAPIC",
        ioctl(&cpu, nr::SET_MP_STATE, &halted as *const _ as u64),
        libc::EINVAL,
    )
}

/// KVM_GET/SET_IRQCHIP of chip 3 is EINVAL; KVM_IRQ_LINE_STATUS of a GSI
/// with no route succeeds with status -1 (nothing to deliver to).
fn chip_ids() -> TestResult {
    let vm = Vm::bare()?;
    create_irqchip(&vm)?;
    let mut chip = kvm_irqchip { chip_id: 3, ..Default::default() };
    let cp = &mut chip as *mut _ as u64;
    expect_errno("KVM_GET_IRQCHIP(3)", ioctl(&vm.fd, nr::GET_IRQCHIP, cp), libc::EINVAL)?;
    expect_errno("KVM_SET_IRQCHIP(3)", ioctl(&vm.fd, nr::SET_IRQCHIP, cp), libc::EINVAL)?;
    for gsi in [24u32, 1000, 5000] {
        let mut l = kvm_irq_level { level: 1, ..Default::default() };
        l.__bindgen_anon_1.irq = gsi;
        ioctl(&vm.fd, nr::IRQ_LINE_STATUS, &mut l as *mut _ as u64)
            .map_err(|e| format!("KVM_IRQ_LINE_STATUS(gsi {gsi}): {}", errno_name(e)))?;
        // SAFETY: the kernel wrote the status.
        expect_eq(&format!("KVM_IRQ_LINE_STATUS(gsi {gsi}) status"), unsafe { l.__bindgen_anon_1.status }, -1)?;
    }
    Ok(())
}

/// KVM_SET_GSI_ROUTING rejects with EINVAL: GSI >= 4096, an unknown type,
/// IOAPIC pin 24, PIC pin 8, irqchip 3, entry flags, header flags, nr >
/// 4096, two MSIs on one GSI, two routes of one GSI to the same chip; and
/// accepts an empty table and one GSI routed to both PIC and IOAPIC.
fn routing() -> TestResult {
    let vm = Vm::bare()?;
    create_irqchip(&vm)?;
    let fd = &vm.fd;
    let mut bad_type = route_msi(1, 0, 0x40);
    bad_type.type_ = 99;
    let mut flags = route_irqchip(1, KVM_IRQCHIP_IOAPIC, 1);
    flags.flags = 1;
    let cases: Vec<(&str, Vec<kvm_irq_routing_entry>)> = vec![
        ("gsi 4096", vec![route_msi(4096, 0, 0x40)]),
        ("type 99", vec![bad_type]),
        ("IOAPIC pin 24", vec![route_irqchip(1, KVM_IRQCHIP_IOAPIC, 24)]),
        ("PIC master pin 8", vec![route_irqchip(1, KVM_IRQCHIP_PIC_MASTER, 8)]),
        ("PIC slave pin 8", vec![route_irqchip(1, KVM_IRQCHIP_PIC_SLAVE, 8)]),
        ("irqchip 3", vec![route_irqchip(1, 3, 0)]),
        ("irqchip entry flags 1", vec![flags]),
        ("two MSIs on gsi 5", vec![route_msi(5, 0, 0x40), route_msi(5, 0, 0x41)]),
        (
            "gsi 5 twice to the IOAPIC",
            vec![route_irqchip(5, KVM_IRQCHIP_IOAPIC, 5), route_irqchip(5, KVM_IRQCHIP_IOAPIC, 6)],
        ),
    ];
    for (what, entries) in cases {
        expect_errno(&format!("KVM_SET_GSI_ROUTING({what})"), set_routing(fd, &entries, None, 0), libc::EINVAL)?;
    }
    expect_errno("KVM_SET_GSI_ROUTING(header flags 1)", set_routing(fd, &[], None, 1), libc::EINVAL)?;
    expect_errno("KVM_SET_GSI_ROUTING(nr 4097)", set_routing(fd, &[], Some(4097), 0), libc::EINVAL)?;
    set_routing(fd, &[], None, 0).map_err(|e| format!("KVM_SET_GSI_ROUTING(empty): {}", errno_name(e)))?;
    set_routing(fd, &[route_irqchip(3, KVM_IRQCHIP_PIC_MASTER, 3), route_irqchip(3, KVM_IRQCHIP_IOAPIC, 3)], None, 0)
        .map_err(|e| format!("KVM_SET_GSI_ROUTING(gsi 3 to PIC and IOAPIC): {}", errno_name(e)))?;
    Ok(())
}

/// KVM_IRQFD: a closed fd is EBADF, a non-eventfd EINVAL, unknown flags
/// EINVAL, the same eventfd twice EBUSY; deassigning an eventfd that was
/// never assigned succeeds; a resample irqfd needs a valid resamplefd.
fn irqfd_errors() -> TestResult {
    let vm = Vm::bare()?;
    create_irqchip(&vm)?;
    let fd = &vm.fd;
    let ev = EventFd::new()?;
    let other = EventFd::new()?;
    let rs = EventFd::new()?;
    expect_errno("KVM_IRQFD(fd 999)", irqfd(fd, 999, 4, 0, 0), libc::EBADF)?;
    expect_errno("KVM_IRQFD(the VM fd)", irqfd(fd, std::os::fd::AsRawFd::as_raw_fd(fd), 4, 0, 0), libc::EINVAL)?;
    expect_errno("KVM_IRQFD(flags 0x80)", irqfd(fd, ev.fd(), 4, 0x80, 0), libc::EINVAL)?;
    expect_eq(
        "KVM_IRQFD(deassign, never assigned)",
        irqfd(fd, other.fd(), 4, KVM_IRQFD_FLAG_DEASSIGN, 0).map_err(errno_name),
        Ok(0),
    )?;
    irqfd(fd, ev.fd(), 4, 0, 0).map_err(|e| format!("KVM_IRQFD: {}", errno_name(e)))?;
    expect_errno("KVM_IRQFD(same eventfd again)", irqfd(fd, ev.fd(), 4, 0, 0), libc::EBUSY)?;
    expect_errno("KVM_IRQFD(same eventfd, other gsi)", irqfd(fd, ev.fd(), 5, 0, 0), libc::EBUSY)?;
    expect_errno(
        "KVM_IRQFD(resample, resamplefd 999)",
        irqfd(fd, other.fd(), 6, KVM_IRQFD_FLAG_RESAMPLE, 999),
        libc::EBADF,
    )?;
    irqfd(fd, other.fd(), 6, KVM_IRQFD_FLAG_RESAMPLE, rs.fd())
        .map_err(|e| format!("KVM_IRQFD(resample): {}", errno_name(e)))?;
    irqfd(fd, ev.fd(), 4, KVM_IRQFD_FLAG_DEASSIGN, 0).map_err(|e| format!("KVM_IRQFD(deassign): {}", errno_name(e)))?;
    irqfd(fd, ev.fd(), 4, 0, 0).map_err(|e| format!("KVM_IRQFD(re-assign after deassign): {}", errno_name(e)))?;
    Ok(())
}

fn msi_flags() -> TestResult {
    let vm = Vm::bare()?;
    create_irqchip(&vm)?;
    expect_errno("KVM_SIGNAL_MSI(flags 2)", signal_msi(&vm.fd, 0, 0x40, 2), libc::EINVAL)
}

/// KVM_IOEVENTFD: length 3 EINVAL, datamatch with length 0 EINVAL, unknown
/// flags EINVAL, a closed fd EBADF, deassigning what was never assigned
/// ENOENT; a registration colliding with an existing one at the same
/// address on the same bus is EEXIST: same length and datamatch, either
/// without datamatch (a wildcard), or either of length 0 (any length);
/// other lengths or other datamatch values coexist.
fn ioeventfd_errors() -> TestResult {
    let vm = Vm::bare()?;
    let fd = &vm.fd;
    let ev = EventFd::new()?;
    let a = IOEV_MMIO;
    expect_errno("KVM_IOEVENTFD(len 3)", ioeventfd_raw(fd, ev.fd(), a, 3, 0, 0), libc::EINVAL)?;
    expect_errno("KVM_IOEVENTFD(datamatch, len 0)", ioeventfd_raw(fd, ev.fd(), a, 0, 0, IOEV_DATAMATCH), libc::EINVAL)?;
    expect_errno("KVM_IOEVENTFD(flags 0x100)", ioeventfd_raw(fd, ev.fd(), a, 4, 0, 0x100), libc::EINVAL)?;
    expect_errno("KVM_IOEVENTFD(fd 999)", ioeventfd_raw(fd, 999, a, 4, 0, 0), libc::EBADF)?;
    expect_errno(
        "KVM_IOEVENTFD(deassign, never assigned)",
        ioeventfd_raw(fd, ev.fd(), a, 4, 0, IOEV_DEASSIGN),
        libc::ENOENT,
    )?;
    ioeventfd_raw(fd, ev.fd(), a, 4, 0, 0).map_err(|e| format!("KVM_IOEVENTFD: {}", errno_name(e)))?;
    expect_errno("KVM_IOEVENTFD(same again)", ioeventfd_raw(fd, ev.fd(), a, 4, 0, 0), libc::EEXIST)?;
    expect_errno(
        "KVM_IOEVENTFD(same address and length, with a datamatch, while one without exists)",
        ioeventfd_raw(fd, ev.fd(), a, 4, 7, IOEV_DATAMATCH),
        libc::EEXIST,
    )?;
    expect_errno("KVM_IOEVENTFD(same address, any length)", ioeventfd_raw(fd, ev.fd(), a, 0, 0, 0), libc::EEXIST)?;
    ioeventfd_raw(fd, ev.fd(), a, 2, 0, 0)
        .map_err(|e| format!("KVM_IOEVENTFD(same address, other length): {}", errno_name(e)))?;
    ioeventfd_raw(fd, ev.fd(), a + 0x10, 4, 7, IOEV_DATAMATCH)
        .map_err(|e| format!("KVM_IOEVENTFD(datamatch 7): {}", errno_name(e)))?;
    ioeventfd_raw(fd, ev.fd(), a + 0x10, 4, 8, IOEV_DATAMATCH)
        .map_err(|e| format!("KVM_IOEVENTFD(same address, datamatch 8): {}", errno_name(e)))?;
    ioeventfd_raw(fd, ev.fd(), PORT_IOEV as u64, 2, 0, IOEV_PIO)
        .map_err(|e| format!("KVM_IOEVENTFD(pio): {}", errno_name(e)))?;
    expect_errno(
        "KVM_IOEVENTFD(deassign, pio flag missing)",
        ioeventfd_raw(fd, ev.fd(), PORT_IOEV as u64, 2, 0, IOEV_DEASSIGN),
        libc::ENOENT,
    )?;
    ioeventfd_raw(fd, ev.fd(), PORT_IOEV as u64, 2, 0, IOEV_PIO | IOEV_DEASSIGN)
        .map_err(|e| format!("KVM_IOEVENTFD(deassign pio): {}", errno_name(e)))?;
    Ok(())
}

/// KVM_REGISTER_COALESCED_MMIO: pio other than 0/1 is EINVAL;
/// unregistering a zone that does not exist succeeds.
fn coalesced_errors() -> TestResult {
    let vm = Vm::bare()?;
    expect_errno(
        "KVM_REGISTER_COALESCED_MMIO(pio 2)",
        coalesced_zone(&vm.fd, true, COAL_MMIO, 0x100, 2),
        libc::EINVAL,
    )?;
    expect_eq(
        "KVM_UNREGISTER_COALESCED_MMIO(no such zone)",
        coalesced_zone(&vm.fd, false, COAL_MMIO, 0x100, 0).map_err(errno_name),
        Ok(0),
    )?;
    coalesced_zone(&vm.fd, true, COAL_MMIO, 0x100, 0).map_err(|e| format!("register: {}", errno_name(e)))?;
    expect_eq(
        "KVM_REGISTER_COALESCED_MMIO(the same zone again)",
        coalesced_zone(&vm.fd, true, COAL_MMIO, 0x100, 0).map_err(errno_name),
        Ok(0),
    )
}
