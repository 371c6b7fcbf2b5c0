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
module_param!(pub(crate) NESTED: ParamInt = 1, "nested", "int", param_ops_int, 0o444,
    "Nested SVM: a hypervisor in the guest (needs npt; its guests run without nested NPT)");
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
module_param!(pub(crate) PAUSE_FILTER_COUNT_GROW: ParamUshort = 2, "pause_filter_count_grow", "ushort",
    param_ops_ushort, 0o444, "Pause filter count growth factor (no effect without pause filtering)");
module_param!(pub(crate) PAUSE_FILTER_COUNT_SHRINK: ParamUshort = 0, "pause_filter_count_shrink", "ushort",
    param_ops_ushort, 0o444, "Pause filter count shrink divisor (no effect without pause filtering)");
module_param!(pub(crate) PAUSE_FILTER_COUNT_MAX: ParamUshort = 65535, "pause_filter_count_max", "ushort",
    param_ops_ushort, 0o444, "Largest pause filter count (no effect without pause filtering)");
module_param!(pub(crate) INTERCEPT_SMI: ParamBool = true, "intercept_smi", "bool", param_ops_bool, 0o444,
    "SMIs arriving while a guest runs exit to the host");
module_param!(pub(crate) VNMI: ParamBool = false, "vnmi", "bool", param_ops_bool, 0o444,
    "Virtual NMI (not supported)");
module_param!(pub(crate) TSC_SCALING: ParamInt = 0, "tsc_scaling", "int", param_ops_int, 0o444,
    "TSC scaling for guests (not supported)");
module_param!(pub(crate) FORCE_AVIC: ParamBool = false, "force_avic", "bool", param_ops_bool, 0o444,
    "Use AVIC even where it is not advertised (not supported)");
module_param!(pub(crate) ENABLE_IPIV: ParamBool = false, "enable_ipiv", "bool", param_ops_bool, 0o444,
    "IPI virtualization with AVIC (not supported)");
module_param!(pub(crate) ENABLE_DEVICE_POSTED_IRQS: ParamBool = false, "enable_device_posted_irqs", "bool",
    param_ops_bool, 0o444, "Device interrupts posted through the IOMMU (not supported)");
module_param!(pub(crate) GMET: ParamBool = false, "gmet", "bool", param_ops_bool, 0o444,
    "Guest mode execute trap (not supported)");
module_param!(pub(crate) DUMP_INVALID_VMCB: ParamBool = false, "dump_invalid_vmcb", "bool", param_ops_bool,
    0o644, "Log the VMCB when VMRUN fails its consistency checks");

/// Checks the parameters at load: a host without NPT gets `npt=0`
/// (shadow paging); features rkvm lacks are switched off with a message;
/// `nrips` follows the host.
pub(crate) fn check_at_load() -> Result {
    if NPT.get() && !cpuid::has_npt() {
        pr_info!("the CPU has no nested paging: shadow paging\n");
        NPT.set(false);
    }
    if NESTED.get() != 0 && !NPT.get() {
        pr_info!("nested SVM needs npt=1; disabled\n");
        NESTED.set(0);
    }
    for (param, what) in [
        (&TSC_SCALING, "TSC scaling"),
        (&VLS, "virtual VMLOAD/VMSAVE"),
        (&VGIF, "virtual GIF"),
        (&LBRV, "LBR virtualization"),
    ] {
        if param.get() != 0 {
            pr_info!("{} is not supported; disabled\n", what);
            param.set(0);
        }
    }
    for (param, what) in [
        (&AVIC, "AVIC"),
        (&ENABLE_MEDIATED_PMU, "the mediated PMU"),
        (&VNMI, "virtual NMI"),
        (&FORCE_AVIC, "AVIC"),
        (&ENABLE_IPIV, "IPI virtualization"),
        (&ENABLE_DEVICE_POSTED_IRQS, "posted device interrupts"),
        (&GMET, "GMET"),
    ] {
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
