// SPDX-License-Identifier: GPL-2.0
//! kvm.ko's x86 module parameters (upstream x86.c's and mmu.c's), in
//! `/sys/module/kvm/parameters/`, with upstream's names, types and modes.
//! A parameter for a feature rkvm lacks reads as off; asking for the
//! feature at load time fails the load with a message (`check_at_load`).

use crate::module_param;
use kernel::prelude::*;

module_param!(pub(crate) IGNORE_MSRS: ParamBool = false, "ignore_msrs", "bool", param_ops_bool, 0o644,
    "Accesses to unknown MSRs read 0 and ignore writes instead of raising #GP");
module_param!(pub(crate) REPORT_IGNORED_MSRS: ParamBool = true, "report_ignored_msrs", "bool", param_ops_bool, 0o644,
    "Log (rate-limited) the unknown MSRs that ignore_msrs ignores");
module_param!(pub(crate) FORCE_EMULATION_PREFIX: ParamInt = 0, "force_emulation_prefix", "int", param_ops_int, 0o644,
    "Emulate the instruction after the 'ud2; .ascii \"kvm\"' prefix (bit 0); bit 1 also clears RFLAGS.RF");
module_param!(pub(crate) TDP_MMU: ParamBool = true, "tdp_mmu", "bool", param_ops_bool, 0o444,
    "The two-dimensional paging MMU is used (always, with npt/ept)");
module_param!(pub(crate) ENABLE_VMWARE_BACKDOOR: ParamBool = false, "enable_vmware_backdoor", "bool", param_ops_bool,
    0o444, "The VMware backdoor interface (not supported: must stay off)");
module_param!(pub(crate) NX_HUGE_PAGES: ParamBool = false, "nx_huge_pages", "bool", param_ops_bool, 0o644,
    "iTLB multihit mitigation for huge pages (not supported: 2 MiB TDP leaves stay executable)");
module_param!(pub(crate) MITIGATE_SMT_RSB: ParamBool = false, "mitigate_smt_rsb", "bool", param_ops_bool, 0o444,
    "Keep HLT, MWAIT and C-state exits on (KVM_CAP_X86_DISABLE_EXITS offers only PAUSE), against Cross-Thread Return Address Predictions");
module_param!(pub(crate) ENABLE_PMU: ParamBool = false, "enable_pmu", "bool", param_ops_bool, 0o444,
    "A virtual PMU for guests (not supported: must stay off)");
module_param!(pub(crate) MIN_TIMER_PERIOD_US: ParamUint = 200, "min_timer_period_us", "uint", param_ops_uint, 0o644,
    "Shortest LAPIC periodic timer period (us) for LAPICs configured from now on");
module_param!(pub(crate) TSC_TOLERANCE_PPM: ParamUint = 250, "tsc_tolerance_ppm", "uint", param_ops_uint, 0o644,
    "How far (ppm) KVM_SET_TSC_KHZ may be from the host's TSC rate (no TSC scaling)");
module_param!(pub(crate) VECTOR_HASHING: ParamBool = true, "vector_hashing", "bool", param_ops_bool, 0o444,
    "Lowest-priority interrupts go to a LAPIC chosen by vector hashing (always: must stay on)");
module_param!(pub(crate) LAPIC_TIMER_ADVANCE: ParamBool = false, "lapic_timer_advance", "bool", param_ops_bool,
    0o444, "Expire LAPIC timers early to hide entry latency (not supported: must stay off)");
module_param!(pub(crate) MMIO_CACHING: ParamBool = false, "mmio_caching", "bool", param_ops_bool, 0o444,
    "Cache MMIO translations in the TDP tables (not supported: must stay off)");
module_param!(pub(crate) EAGER_PAGE_SPLIT: ParamBool = true, "eager_page_split", "bool", param_ops_bool, 0o644,
    "Split huge pages when dirty logging starts (no effect: 2 MiB TDP leaves are split at their first logged write)");
module_param!(pub(crate) FLUSH_ON_REUSE: ParamBool = false, "flush_on_reuse", "bool", param_ops_bool, 0o644,
    "Flush shadow page tables on reuse (no effect: the shadow MMU has no unsync pages to reuse)");
module_param!(pub(crate) NX_HUGE_PAGES_RECOVERY_RATIO: ParamUint = 60, "nx_huge_pages_recovery_ratio", "uint",
    param_ops_uint, 0o644, "NX huge page recovery ratio (no effect: no huge pages)");
module_param!(pub(crate) NX_HUGE_PAGES_RECOVERY_PERIOD_MS: ParamUint = 0, "nx_huge_pages_recovery_period_ms",
    "uint", param_ops_uint, 0o644, "NX huge page recovery period (no effect: no huge pages)");
module_param!(pub(crate) PI_INJECT_TIMER: ParamInt = 0, "pi_inject_timer", "bint", param_ops_bint, 0o644,
    "Inject LAPIC timer interrupts as posted interrupts (no effect: no posted interrupts)");

/// Refuses to load kvm.ko when a parameter asks for something rkvm lacks.
pub(crate) fn check_at_load() -> Result {
    for (on, what) in [
        (
            ENABLE_VMWARE_BACKDOOR.get(),
            "enable_vmware_backdoor=1: the VMware backdoor",
        ),
        (ENABLE_PMU.get(), "enable_pmu=1: a virtual PMU"),
        (
            !VECTOR_HASHING.get(),
            "vector_hashing=0: lowest-priority arbitration",
        ),
        (
            LAPIC_TIMER_ADVANCE.get(),
            "lapic_timer_advance=1: timer advancement",
        ),
        (MMIO_CACHING.get(), "mmio_caching=1: MMIO caching"),
    ] {
        if on {
            pr_err!("{} is not supported\n", what);
            return Err(EINVAL);
        }
    }
    if !TDP_MMU.get() {
        pr_err!("tdp_mmu=0: rkvm has only the TDP MMU\n");
        return Err(EINVAL);
    }
    Ok(())
}
