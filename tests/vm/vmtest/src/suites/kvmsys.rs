//! Raw KVM ioctl numbers and small helpers for the tests that need exact
//! errnos or deliberately malformed arguments (kvm-ioctls validates or hides
//! those).  Numbers are built like `_IOW(KVMIO, nr, type)` in linux/kvm.h.

#![allow(dead_code)]

use crate::sys::{io, ioc, KVMIO};
use kvm_bindings::*;
use std::mem::size_of;

const fn iow(nr: u64, size: usize) -> u64 {
    ioc(1, KVMIO, nr, size as u64)
}
const fn ior(nr: u64, size: usize) -> u64 {
    ioc(2, KVMIO, nr, size as u64)
}
const fn iowr(nr: u64, size: usize) -> u64 {
    ioc(3, KVMIO, nr, size as u64)
}

pub const GET_MSR_INDEX_LIST: u64 = iowr(0x02, size_of::<kvm_msr_list>());
pub const GET_SUPPORTED_CPUID: u64 = iowr(0x05, size_of::<kvm_cpuid2>());
pub const GET_MSR_FEATURE_INDEX_LIST: u64 = iowr(0x0a, size_of::<kvm_msr_list>());
pub const CREATE_VCPU: u64 = io(KVMIO, 0x41);
pub const GET_DIRTY_LOG: u64 = iow(0x42, size_of::<kvm_dirty_log>());
pub const SET_USER_MEMORY_REGION: u64 = iow(0x46, size_of::<kvm_userspace_memory_region>());
pub const SET_TSS_ADDR: u64 = io(KVMIO, 0x47);
pub const SET_IDENTITY_MAP_ADDR: u64 = iow(0x48, 8);
pub const SET_USER_MEMORY_REGION2: u64 = iow(0x49, size_of::<kvm_userspace_memory_region2>());
pub const SET_CLOCK: u64 = iow(0x7b, size_of::<kvm_clock_data>());
pub const GET_CLOCK: u64 = ior(0x7c, size_of::<kvm_clock_data>());
pub const RUN: u64 = io(KVMIO, 0x80);
pub const GET_REGS: u64 = ior(0x81, size_of::<kvm_regs>());
pub const SET_REGS: u64 = iow(0x82, size_of::<kvm_regs>());
pub const GET_SREGS: u64 = ior(0x83, size_of::<kvm_sregs>());
pub const SET_SREGS: u64 = iow(0x84, size_of::<kvm_sregs>());
pub const TRANSLATE: u64 = iowr(0x85, size_of::<kvm_translation>());
pub const INTERRUPT: u64 = iow(0x86, size_of::<kvm_interrupt>());
pub const GET_MSRS: u64 = iowr(0x88, size_of::<kvm_msrs>());
pub const SET_MSRS: u64 = iow(0x89, size_of::<kvm_msrs>());
pub const SET_SIGNAL_MASK: u64 = iow(0x8b, size_of::<kvm_signal_mask>());
pub const GET_FPU: u64 = ior(0x8c, size_of::<kvm_fpu>());
pub const SET_FPU: u64 = iow(0x8d, size_of::<kvm_fpu>());
pub const SET_CPUID2: u64 = iow(0x90, size_of::<kvm_cpuid2>());
pub const GET_CPUID2: u64 = iowr(0x91, size_of::<kvm_cpuid2>());
pub const GET_MP_STATE: u64 = ior(0x98, size_of::<kvm_mp_state>());
pub const SET_MP_STATE: u64 = iow(0x99, size_of::<kvm_mp_state>());
pub const NMI: u64 = io(KVMIO, 0x9a);
pub const SET_GUEST_DEBUG: u64 = iow(0x9b, size_of::<kvm_guest_debug>());
pub const GET_VCPU_EVENTS: u64 = ior(0x9f, size_of::<kvm_vcpu_events>());
pub const SET_VCPU_EVENTS: u64 = iow(0xa0, size_of::<kvm_vcpu_events>());
pub const GET_DEBUGREGS: u64 = ior(0xa1, size_of::<kvm_debugregs>());
pub const SET_DEBUGREGS: u64 = iow(0xa2, size_of::<kvm_debugregs>());
pub const ENABLE_CAP: u64 = iow(0xa3, size_of::<kvm_enable_cap>());
pub const GET_XSAVE: u64 = ior(0xa4, 4096);
pub const SET_XSAVE: u64 = iow(0xa5, 4096);
pub const GET_XCRS: u64 = ior(0xa6, size_of::<kvm_xcrs>());
pub const SET_XCRS: u64 = iow(0xa7, size_of::<kvm_xcrs>());
pub const CLEAR_DIRTY_LOG: u64 = iowr(0xc0, size_of::<kvm_clear_dirty_log>());

/// A `kvm_userspace_memory_region`.
pub fn region(slot: u32, flags: u32, gpa: u64, size: u64, uaddr: u64) -> kvm_userspace_memory_region {
    kvm_userspace_memory_region { slot, flags, guest_phys_addr: gpa, memory_size: size, userspace_addr: uaddr }
}

/// KVM_SET_USER_MEMORY_REGION through the raw ioctl: `Err(errno)`.
pub fn set_region(vm: &impl std::os::fd::AsRawFd, r: &kvm_userspace_memory_region) -> Result<i64, i32> {
    crate::sys::ioctl(vm, SET_USER_MEMORY_REGION, r as *const _ as u64)
}

/// KVM_GET_DIRTY_LOG into `bitmap`.
pub fn get_dirty_log(vm: &impl std::os::fd::AsRawFd, slot: u32, bitmap: &mut [u64]) -> Result<i64, i32> {
    let mut log = kvm_dirty_log { slot, ..Default::default() };
    log.__bindgen_anon_1.dirty_bitmap = bitmap.as_mut_ptr().cast();
    crate::sys::ioctl(vm, GET_DIRTY_LOG, &log as *const _ as u64)
}

/// KVM_CLEAR_DIRTY_LOG of the pages set in `bitmap` (bit 0 = `first`).
pub fn clear_dirty_log(
    vm: &impl std::os::fd::AsRawFd,
    slot: u32,
    first: u64,
    num: u32,
    bitmap: &mut [u64],
) -> Result<i64, i32> {
    let mut c = kvm_clear_dirty_log { slot, num_pages: num, first_page: first, ..Default::default() };
    c.__bindgen_anon_1.dirty_bitmap = bitmap.as_mut_ptr().cast();
    crate::sys::ioctl(vm, CLEAR_DIRTY_LOG, &c as *const _ as u64)
}

/// KVM_SET_SIGNAL_MASK with `mask` (a kernel sigset: 8 bytes on x86-64);
/// `None` passes a NULL pointer (= no mask change during KVM_RUN).
pub fn set_signal_mask(vcpu: &impl std::os::fd::AsRawFd, mask: Option<u64>, len: u32) -> Result<i64, i32> {
    match mask {
        None => crate::sys::ioctl(vcpu, SET_SIGNAL_MASK, 0),
        Some(m) => {
            let mut buf = [0u8; 12];
            buf[..4].copy_from_slice(&len.to_ne_bytes());
            buf[4..].copy_from_slice(&m.to_ne_bytes());
            crate::sys::ioctl(vcpu, SET_SIGNAL_MASK, buf.as_ptr() as u64)
        }
    }
}
