// SPDX-License-Identifier: GPL-2.0
//! kvm-intel's module parameters, with upstream's names, types and modes
//! (all read-only in sysfs). A feature the host or rkvm lacks reads as
//! off; asking for it at load time prints why and leaves it off, as
//! upstream does for features the hardware lacks. `ept=0` and
//! `unrestricted_guest=0` fail the load: shadow paging and real-mode
//! emulation are not implemented yet.

use kernel::prelude::*;
use kvm::module_param;

module_param!(pub(crate) VPID: ParamBool = true, "vpid", "bool", param_ops_bool, 0o444,
    "Virtual processor IDs (tagged guest TLB entries), if the CPU has them");
module_param!(pub(crate) VNMI: ParamBool = true, "vnmi", "bool", param_ops_bool, 0o444,
    "Virtual NMIs (required)");
module_param!(pub(crate) FLEXPRIORITY: ParamBool = false, "flexpriority", "bool",
    param_ops_bool, 0o444, "APIC-access page virtualization (not supported)");
module_param!(pub(crate) EPT: ParamBool = true, "ept", "bool", param_ops_bool, 0o444,
    "Extended page tables (required: shadow paging is not supported yet)");
module_param!(pub(crate) UNRESTRICTED_GUEST: ParamBool = true, "unrestricted_guest", "bool",
    param_ops_bool, 0o444, "Real mode and unpaged protected mode without emulation (required)");
module_param!(pub(crate) EPTAD: ParamBool = false, "eptad", "bool", param_ops_bool, 0o444,
    "EPT accessed/dirty bits (not supported)");
module_param!(pub(crate) ENABLE_APICV: ParamBool = false, "enable_apicv", "bool",
    param_ops_bool, 0o444, "APIC virtualization (not supported)");
module_param!(pub(crate) NESTED: ParamBool = false, "nested", "bool", param_ops_bool, 0o444,
    "Nested VMX: a hypervisor in the guest (not supported yet)");
module_param!(pub(crate) PML: ParamBool = false, "pml", "bool", param_ops_bool, 0o444,
    "Page-modification logging (not supported)");
module_param!(pub(crate) PREEMPTION_TIMER: ParamBool = false, "preemption_timer", "bool",
    param_ops_bool, 0o444, "The VMX preemption timer (not supported)");
module_param!(pub(crate) PLE_GAP: ParamUint = 128, "ple_gap", "uint", param_ops_uint, 0o444,
    "Pause-loop exiting: most cycles between two PAUSEs of one loop (0: off)");
module_param!(pub(crate) PLE_WINDOW: ParamUint = 4096, "ple_window", "uint", param_ops_uint,
    0o444, "Pause-loop exiting: cycles a PAUSE loop may spin before it exits (fixed)");
module_param!(pub(crate) ENABLE_MEDIATED_PMU: ParamBool = false, "enable_mediated_pmu", "bool",
    param_ops_bool, 0o444, "A mediated vPMU (not supported)");

/// Checks the parameters at load: `ept=0`, `unrestricted_guest=0` and
/// `vnmi=0` fail; features rkvm lacks are switched off with a message.
pub(crate) fn check_at_load() -> Result {
    for (param, what) in [
        (&EPT, "ept=0: shadow paging is not supported yet"),
        (
            &UNRESTRICTED_GUEST,
            "unrestricted_guest=0: real-mode emulation is not supported yet",
        ),
        (
            &VNMI,
            "vnmi=0: NMI emulation without virtual NMIs is not supported",
        ),
    ] {
        if !param.get() {
            pr_err!("{}\n", what);
            return Err(EINVAL);
        }
    }
    for (param, what) in [
        (&FLEXPRIORITY, "APIC-access virtualization"),
        (&EPTAD, "EPT accessed/dirty bits"),
        (&ENABLE_APICV, "APICv"),
        (&NESTED, "nested VMX"),
        (&PML, "page-modification logging"),
        (&PREEMPTION_TIMER, "the VMX preemption timer"),
        (&ENABLE_MEDIATED_PMU, "the mediated PMU"),
    ] {
        if param.get() {
            pr_info!("{} is not supported; disabled\n", what);
            param.set(false);
        }
    }
    Ok(())
}
