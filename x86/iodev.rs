// SPDX-License-Identifier: GPL-2.0
//! In-kernel devices on the guest's port and MMIO spaces: an access is
//! offered to them, in order, before it becomes a userspace exit.

use crate::{x86::irq::lapic, virt::vcpu::{Vcpu, VcpuState}, virt::vm::Vm};

/// Offers an MMIO access of `data.len()` bytes at `gpa` to this vCPU's
/// LAPIC page, the IOAPIC, ioeventfds and coalesced zones; true if taken.
pub(crate) fn mmio(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, gpa: u64, write: bool, data: &mut [u8]) -> bool {
    lapic::mmio(vm, vcpu, st, gpa, write, data)
        || vm.ioapic_mmio(gpa, write, data).is_some()
        || (write && (vm.ioeventfd_write(false, gpa, data) || vm.coalesced_write(false, gpa, data)))
}

/// Offers a port access to the PIC/PIT, ioeventfds and coalesced zones.
pub(crate) fn pio(vm: &Vm, port: u16, write: bool, data: &mut [u8]) -> bool {
    vm.pio(port, write, data).is_some()
        || (write && (vm.ioeventfd_write(true, u64::from(port), data) || vm.coalesced_write(true, u64::from(port), data)))
}
