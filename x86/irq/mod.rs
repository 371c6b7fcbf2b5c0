// SPDX-License-Identifier: GPL-2.0
//! Interrupts, kernel side: each vCPU's local APIC, the VM's PIC/IOAPIC/PIT
//! and GSI routing, and getting events into the guest before each entry.
//! The device models themselves are the pure `irqchip` component.

pub(crate) mod chips;
pub(crate) mod inject;
pub(crate) mod lapic;
