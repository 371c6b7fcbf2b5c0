// SPDX-License-Identifier: GPL-2.0
//! The statistics of an x86 VM and vCPU: upstream's generic and x86
//! counters, with their names and kinds, data in the order of upstream's
//! `struct kvm_vm_stat`/`kvm_vcpu_stat` and descriptors in the order of
//! `kvm_vm_stats_desc`/`kvm_vcpu_stats_desc` (arch/x86/kvm/x86.c), so
//! binary-stats readers and kvm_stat see the same file. Counters rkvm has
//! no event for stay 0.

use crate::{
    stats_block,
    virt::stats::{LogHist, HALT_POLL_HIST_COUNT},
};

stats_block! {
    /// A VM's statistics.
    pub(crate) struct VmStats {
        remote_tlb_flush: Counter,
        remote_tlb_flush_requests: Counter,
        mmu_shadow_zapped: Counter,
        mmu_pte_write: Counter,
        mmu_pde_zapped: Counter,
        mmu_flooded: Counter,
        mmu_recycled: Counter,
        mmu_cache_miss: Counter,
        mmu_unsync: ICounter,
        mmu_shadow_pages: ICounter,
        pages_4k: ICounter,
        pages_2m: ICounter,
        pages_1g: ICounter,
        nx_lpage_splits: ICounter,
        max_mmu_page_hash_collisions: PCounter,
        max_mmu_rmap_size: PCounter,
    }
    order: [
        remote_tlb_flush, remote_tlb_flush_requests, mmu_shadow_zapped, mmu_pte_write,
        mmu_pde_zapped, mmu_flooded, mmu_recycled, mmu_cache_miss, mmu_unsync,
        mmu_shadow_pages, pages_4k, pages_2m, pages_1g, nx_lpage_splits,
        max_mmu_rmap_size, max_mmu_page_hash_collisions,
    ]
}

stats_block! {
    /// A vCPU's statistics.
    pub(crate) struct VcpuStats {
        halt_successful_poll: Counter,
        halt_attempted_poll: Counter,
        halt_poll_invalid: Counter,
        halt_wakeup: Counter,
        halt_poll_success_ns: TimeNs,
        halt_poll_fail_ns: TimeNs,
        halt_wait_ns: TimeNs,
        halt_poll_success_hist: LogHistTimeNs(LogHist<HALT_POLL_HIST_COUNT>),
        halt_poll_fail_hist: LogHistTimeNs(LogHist<HALT_POLL_HIST_COUNT>),
        halt_wait_hist: LogHistTimeNs(LogHist<HALT_POLL_HIST_COUNT>),
        blocking: IBoolean,
        pf_taken: Counter,
        pf_fixed: Counter,
        pf_emulate: Counter,
        pf_spurious: Counter,
        pf_fast: Counter,
        pf_mmio_spte_created: Counter,
        pf_guest: Counter,
        tlb_flush: Counter,
        invlpg: Counter,
        exits: Counter,
        io_exits: Counter,
        mmio_exits: Counter,
        signal_exits: Counter,
        irq_window_exits: Counter,
        nmi_window_exits: Counter,
        l1d_flush: Counter,
        halt_exits: Counter,
        request_irq_exits: Counter,
        irq_exits: Counter,
        host_state_reload: Counter,
        fpu_reload: Counter,
        insn_emulation: Counter,
        insn_emulation_fail: Counter,
        hypercalls: Counter,
        irq_injections: Counter,
        nmi_injections: Counter,
        req_event: Counter,
        nested_run: Counter,
        directed_yield_attempted: Counter,
        directed_yield_successful: Counter,
        preemption_reported: Counter,
        preemption_other: Counter,
        guest_mode: IBoolean,
        notify_window_exits: Counter,
    }
}
