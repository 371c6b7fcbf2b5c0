// SPDX-License-Identifier: GPL-2.0
/*
 * Instantiates rkvm's tracepoints (include/kvm_events.h) and the
 * rust_do_trace_*() entry points rust/trace.rs calls. C because trace
 * events are C macros; as drivers/android/binder/rust_binder_events.c.
 */
#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include "kvm_events.h"
