// SPDX-License-Identifier: GPL-2.0
//! The KVM paravirtual leaves 0x40000000 (signature) and 0x40000001
//! (`KVM_FEATURE_*` bits), from `uapi/asm/kvm_para.h`.

/// Leaf with the hypervisor signature and the highest KVM leaf.
pub const KVM_CPUID_SIGNATURE: u32 = 0x4000_0000;
/// Leaf with the PV feature bits.
pub const KVM_CPUID_FEATURES: u32 = 0x4000_0001;
/// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
pub const KVM_SIGNATURE: [u32; 3] = [0x4b4d_564b, 0x564b_4d56, 0x0000_004d];

/// kvmclock at MSRs 0x11/0x12.
pub const KVM_FEATURE_CLOCKSOURCE: u32 = 1 << 0;
/// Port 0x80 delays are not needed.
pub const KVM_FEATURE_NOP_IO_DELAY: u32 = 1 << 1;
/// kvmclock at MSRs 0x4b564d00/01.
pub const KVM_FEATURE_CLOCKSOURCE2: u32 = 1 << 3;
/// Async page faults.
pub const KVM_FEATURE_ASYNC_PF: u32 = 1 << 4;
/// Steal time accounting.
pub const KVM_FEATURE_STEAL_TIME: u32 = 1 << 5;
/// PV end of interrupt.
pub const KVM_FEATURE_PV_EOI: u32 = 1 << 6;
/// PV spinlock kick (`KVM_HC_KICK_CPU`).
pub const KVM_FEATURE_PV_UNHALT: u32 = 1 << 7;
/// PV TLB flush of preempted vCPUs.
pub const KVM_FEATURE_PV_TLB_FLUSH: u32 = 1 << 9;
/// Async PF on VM exits to L1.
pub const KVM_FEATURE_ASYNC_PF_VMEXIT: u32 = 1 << 10;
/// `KVM_HC_SEND_IPI`.
pub const KVM_FEATURE_PV_SEND_IPI: u32 = 1 << 11;
/// Host-side halt polling control MSR.
pub const KVM_FEATURE_POLL_CONTROL: u32 = 1 << 12;
/// `KVM_HC_SCHED_YIELD`.
pub const KVM_FEATURE_PV_SCHED_YIELD: u32 = 1 << 13;
/// Async PF delivered as an interrupt.
pub const KVM_FEATURE_ASYNC_PF_INT: u32 = 1 << 14;
/// kvmclock's stable bit is honoured.
pub const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT: u32 = 1 << 24;

/// The kvmclock bits (`Options::kvmclock`).
pub const KVMCLOCK_FEATURES: u32 =
    KVM_FEATURE_CLOCKSOURCE | KVM_FEATURE_CLOCKSOURCE2 | KVM_FEATURE_CLOCKSOURCE_STABLE_BIT;

/// Everything upstream advertises (with `CONFIG_SCHED_INFO`, so
/// including steal time).
pub const UPSTREAM_PV_FEATURES: u32 = KVMCLOCK_FEATURES
    | KVM_FEATURE_NOP_IO_DELAY
    | KVM_FEATURE_ASYNC_PF
    | KVM_FEATURE_PV_EOI
    | KVM_FEATURE_PV_UNHALT
    | KVM_FEATURE_PV_TLB_FLUSH
    | KVM_FEATURE_ASYNC_PF_VMEXIT
    | KVM_FEATURE_PV_SEND_IPI
    | KVM_FEATURE_POLL_CONTROL
    | KVM_FEATURE_PV_SCHED_YIELD
    | KVM_FEATURE_ASYNC_PF_INT
    | KVM_FEATURE_STEAL_TIME;

/// What rkvm implements: the "no I/O delay needed" hint and kvmclock at
/// both MSR pairs (without the stable bit: rkvm's kvmclock has no VM-wide
/// master clock).
pub const RKVM_PV_FEATURES: u32 =
    KVM_FEATURE_NOP_IO_DELAY | KVM_FEATURE_CLOCKSOURCE | KVM_FEATURE_CLOCKSOURCE2;

/// EAX of leaf 0x40000001 for `opts`.
pub fn features_eax(opts: &super::Options) -> u32 {
    let clock = if opts.kvmclock { KVMCLOCK_FEATURES } else { 0 };
    opts.pv_features | clock
}
