// SPDX-License-Identifier: GPL-2.0
//! Generic KVM: what upstream keeps in virt/kvm (kvm_main.c, eventfd.c,
//! coalesced_mmio.c): the /dev/kvm device, VM and vCPU file descriptors,
//! guest memory and dirty logging, eventfds, the run page, kicks.

pub(crate) mod caps;
pub(crate) mod coalesced_mmio;
pub(crate) mod debugfs;
pub(crate) mod dev;
pub(crate) mod dirty_log;
pub(crate) mod eventfd;
pub(crate) mod guest_memory;
pub(crate) mod halt_poll;
pub mod ioctl;
pub(crate) mod kick;
pub(crate) mod kick_timer;
pub(crate) mod params;
pub(crate) mod run_page;
pub(crate) mod stats;
pub(crate) mod vcpu;
pub(crate) mod vm;
