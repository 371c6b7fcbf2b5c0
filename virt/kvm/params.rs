// SPDX-License-Identifier: GPL-2.0
//! kvm.ko's generic module parameters (upstream kvm_main.c's), in
//! `/sys/module/kvm/parameters/`.

use crate::module_param;

module_param!(pub(crate) HALT_POLL_NS: ParamUint = 200_000, "halt_poll_ns", "uint", param_ops_uint, 0o644,
    "Most ns a halted vCPU polls for an event before it sleeps (0: never)");
module_param!(pub(crate) HALT_POLL_NS_GROW: ParamUint = 2, "halt_poll_ns_grow", "uint", param_ops_uint, 0o644,
    "Factor a vCPU's polling time grows by after a short halt");
module_param!(pub(crate) HALT_POLL_NS_GROW_START: ParamUint = 10_000, "halt_poll_ns_grow_start", "uint",
    param_ops_uint, 0o644, "First polling time (ns) after growing from 0");
module_param!(pub(crate) HALT_POLL_NS_SHRINK: ParamUint = 2, "halt_poll_ns_shrink", "uint", param_ops_uint, 0o644,
    "Divisor a vCPU's polling time shrinks by after a long or invalid halt (0: reset to 0)");
