// SPDX-License-Identifier: GPL-2.0
//! Guest memory for the vendor backends ([`GuestMem`] over a VM's slots),
//! used while an exit is completed (`VmExit::Vendor`) and before nested
//! event exits.

use crate::{defs::paging::Gpa, virt::vm::Vm, x86::vendor::GuestMem};

/// A VM's RAM as the vendor sees it: reads and writes through the slots,
/// writes logged (dirty logging, shadow pages) as the core's own.
pub(crate) struct VmMem<'a>(pub(crate) &'a Vm);

impl GuestMem for VmMem<'_> {
    fn read(&self, gpa: Gpa, buf: &mut [u8]) -> bool {
        self.0.mmu().read_guest(gpa, buf).unwrap_or(false)
    }

    fn write(&self, gpa: Gpa, buf: &[u8]) -> bool {
        self.0.mmu().write_guest(self.0, gpa, buf).unwrap_or(false)
    }
}
