// SPDX-License-Identifier: GPL-2.0
//! x86 common: what upstream keeps in arch/x86/kvm (x86.c, cpuid.c, lapic.c,
//! irq.c, mmu/, ...), shared by both vendor backends.

pub(crate) mod caps;
pub(crate) mod cpuid;
pub(crate) mod emulator_ops;
pub(crate) mod events;
pub mod exit;
pub(crate) mod exits;
pub(crate) mod guest_mem;
pub(crate) mod iodev;
pub(crate) mod irq;
pub(crate) mod kvmclock;
pub(crate) mod mmu;
pub(crate) mod msr_filter;
pub(crate) mod msrs;
pub(crate) mod params;
pub(crate) mod regs;
pub(crate) mod run;
pub(crate) mod stats;
pub(crate) mod supported;
pub(crate) mod vcpu;
pub(crate) mod vcpu_events;
pub mod vendor;
pub(crate) mod vm_arch;
