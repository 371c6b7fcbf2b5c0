// SPDX-License-Identifier: GPL-2.0
//! kvm.ko's generic module parameters (upstream kvm_main.c's), in
//! `/sys/module/kvm/parameters/`.

use crate::module_param;
use kernel::prelude::*;

module_param!(pub(crate) HALT_POLL_NS: ParamUint = 200_000, "halt_poll_ns", "uint", param_ops_uint, 0o644,
    "Most ns a halted vCPU polls for an event before it sleeps (0: never)");
module_param!(pub(crate) HALT_POLL_NS_GROW: ParamUint = 2, "halt_poll_ns_grow", "uint", param_ops_uint, 0o644,
    "Factor a vCPU's polling time grows by after a short halt");
module_param!(pub(crate) HALT_POLL_NS_GROW_START: ParamUint = 10_000, "halt_poll_ns_grow_start", "uint",
    param_ops_uint, 0o644, "First polling time (ns) after growing from 0");
module_param!(pub(crate) HALT_POLL_NS_SHRINK: ParamUint = 2, "halt_poll_ns_shrink", "uint", param_ops_uint, 0o644,
    "Divisor a vCPU's polling time shrinks by after a long or invalid halt (0: reset to 0)");
module_param!(pub(crate) ENABLE_VIRT_AT_LOAD: ParamBool = true, "enable_virt_at_load", "bool", param_ops_bool,
    0o444, "Enable virtualization on every CPU when the vendor module loads (always: must stay on)");
module_param!(pub(crate) ALLOW_UNSAFE_MAPPINGS: ParamBool = false, "allow_unsafe_mappings", "bool", param_ops_bool,
    0o444, "Allow guest memory from VM_PFNMAP mappings without page references (not supported: must stay off)");

/// Refuses to load kvm.ko when a generic parameter asks for something
/// rkvm lacks.
pub(crate) fn check_at_load() -> Result {
    if !ENABLE_VIRT_AT_LOAD.get() {
        pr_err!("enable_virt_at_load=0 is not supported\n");
        return Err(EINVAL);
    }
    if ALLOW_UNSAFE_MAPPINGS.get() {
        pr_err!("allow_unsafe_mappings=1 is not supported\n");
        return Err(EINVAL);
    }
    Ok(())
}
