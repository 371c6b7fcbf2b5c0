// SPDX-License-Identifier: GPL-2.0
//! In-kernel devices on the guest's port and MMIO spaces (upstream's I/O
//! bus): an access is offered to them, in order, before it becomes a
//! userspace exit.

use crate::{
    virt::{vcpu::Vcpu, vm::Vm},
    x86::{
        irq::{chips, lapic},
        vcpu::VcpuState,
    },
};

/// Offers an MMIO access of `data.len()` bytes at `gpa` to this vCPU's
/// LAPIC page, the IOAPIC, ioeventfds and coalesced zones; true if taken.
pub(crate) fn mmio(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    gpa: u64,
    write: bool,
    data: &mut [u8],
) -> bool {
    lapic::mmio(vm, vcpu, st, gpa, write, data)
        || chips::ioapic_mmio(vm, gpa, write, data).is_some()
        || (write
            && (vm.ioeventfds().write(false, gpa, data) || vm.coalesced().write(false, gpa, data)))
}

/// Offers a port access to the PIC/PIT, ioeventfds and coalesced zones.
pub(crate) fn pio(vm: &Vm, port: u16, write: bool, data: &mut [u8]) -> bool {
    let addr = u64::from(port);
    chips::pio(vm, port, write, data).is_some()
        || (write
            && (vm.ioeventfds().write(true, addr, data) || vm.coalesced().write(true, addr, data)))
}
