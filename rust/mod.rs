// SPDX-License-Identifier: GPL-2.0
//! rkvm's glue over kernel APIs that the 7.3 `kernel` crate does not wrap.
//!
//! Compiled as `kvm::ext` into kvm.ko; the vendor modules use it through
//! `kvm::ext`. Each file is a small safe wrapper; raw calls stay in here.

pub mod bindings;
pub mod cpu;
pub mod cpuhp;
pub mod eventfd;
pub mod file;
pub mod fpu;
pub mod guest_entry;
pub mod misc;
pub mod mmu_notifier;
pub mod module_param;
pub mod module_ref;
pub mod msr;
pub mod pages;
pub mod print;
pub mod signal;
pub mod time;
pub mod trace;
pub mod uaccess;
pub mod uapi;
