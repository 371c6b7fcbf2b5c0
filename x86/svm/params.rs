// SPDX-License-Identifier: GPL-2.0
//! kvm-amd's module parameters, with upstream's names, types and modes
//! (all read-only in sysfs). A feature the host or rkvm lacks reads as
//! off; asking for it at load time prints why and leaves it off, as
//! upstream does for features the hardware lacks. `npt=0` (or a host
//! without NPT) runs guests on the core's shadow MMU.

use crate::cpuid;
use kernel::prelude::*;
use kvm::module_param;

module_param!(pub(crate) NPT: ParamBool = true, "npt", "bool", param_ops_bool, 0o444,
    "Nested paging (0: shadow paging)");
module_param!(pub(crate) NESTED: ParamInt = 0, "nested", "int", param_ops_int, 0o444,
    "Nested SVM: a hypervisor in the guest (not supported yet)");
module_param!(pub(crate) AVIC: ParamBool = false, "avic", "bool", param_ops_bool, 0o444,
    "The AMD virtual interrupt controller (not supported)");
module_param!(pub(crate) VLS: ParamInt = 0, "vls", "int", param_ops_int, 0o444,
    "Virtual VMLOAD/VMSAVE for nested guests (needs nested)");
module_param!(pub(crate) VGIF: ParamInt = 0, "vgif", "int", param_ops_int, 0o444,
    "Virtual GIF for nested guests (needs nested)");
module_param!(pub(crate) LBRV: ParamInt = 0, "lbrv", "int", param_ops_int, 0o444,
    "LBR virtualization (not supported)");
module_param!(pub(crate) PAUSE_FILTER_COUNT: ParamUshort = 0, "pause_filter_count", "ushort",
    param_ops_ushort, 0o444, "PAUSE loops before a PAUSE exit (pause filtering not supported: 0)");
module_param!(pub(crate) PAUSE_FILTER_THRESH: ParamUshort = 0, "pause_filter_thresh", "ushort",
    param_ops_ushort, 0o444, "PAUSE filter threshold (pause filtering not supported: 0)");
module_param!(pub(crate) NRIPS: ParamInt = 1, "nrips", "int", param_ops_int, 0o444,
    "Use the next-RIP the CPU saves on intercepts (if it has NRIP save)");
module_param!(pub(crate) ENABLE_MEDIATED_PMU: ParamBool = false, "enable_mediated_pmu", "bool",
    param_ops_bool, 0o444, "A mediated vPMU (not supported)");

/// Checks the parameters at load: a host without NPT gets `npt=0`
/// (shadow paging); features rkvm lacks are switched off with a message;
/// `nrips` follows the host.
pub(crate) fn check_at_load() -> Result {
    if NPT.get() && !cpuid::has_npt() {
        pr_info!("the CPU has no nested paging: shadow paging\n");
        NPT.set(false);
    }
    for (param, what) in [
        (&NESTED, "nested SVM"),
        (&VLS, "virtual VMLOAD/VMSAVE"),
        (&VGIF, "virtual GIF"),
        (&LBRV, "LBR virtualization"),
    ] {
        if param.get() != 0 {
            pr_info!("{} is not supported; disabled\n", what);
            param.set(0);
        }
    }
    for (param, what) in [(&AVIC, "AVIC"), (&ENABLE_MEDIATED_PMU, "the mediated PMU")] {
        if param.get() {
            pr_info!("{} is not supported; disabled\n", what);
            param.set(false);
        }
    }
    if PAUSE_FILTER_COUNT.get() != 0 || PAUSE_FILTER_THRESH.get() != 0 {
        pr_info!("pause filtering is not supported; disabled\n");
        PAUSE_FILTER_COUNT.set(0);
        PAUSE_FILTER_THRESH.set(0);
    }
    if NRIPS.get() != 0 && !cpuid::has_nrips() {
        NRIPS.set(0);
    }
    Ok(())
}
