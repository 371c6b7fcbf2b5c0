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
    "iTLB multihit mitigation for huge pages (not needed: rkvm maps 4 KiB pages only)");
module_param!(pub(crate) MITIGATE_SMT_RSB: ParamBool = false, "mitigate_smt_rsb", "bool", param_ops_bool, 0o444,
    "Keep HLT, MWAIT and C-state exits on (KVM_CAP_X86_DISABLE_EXITS offers only PAUSE), against Cross-Thread Return Address Predictions");
module_param!(pub(crate) ENABLE_PMU: ParamBool = false, "enable_pmu", "bool", param_ops_bool, 0o444,
    "A virtual PMU for guests (not supported: must stay off)");

/// Refuses to load kvm.ko when a parameter asks for something rkvm lacks.
pub(crate) fn check_at_load() -> Result {
    for (on, what) in [
        (
            ENABLE_VMWARE_BACKDOOR.get(),
            "enable_vmware_backdoor=1: the VMware backdoor",
        ),
        (ENABLE_PMU.get(), "enable_pmu=1: a virtual PMU"),
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
