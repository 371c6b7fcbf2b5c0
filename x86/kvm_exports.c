// SPDX-License-Identifier: GPL-2.0
/*
 * Why this file exists: kvm-amd and kvm-intel are Rust crates that use the
 * kvm crate's Rust items (`--extern kvm`). Modules only see exported
 * symbols, and Rust cannot export from a module yet, so this shim exports
 * exactly the mangled `_R` symbols the vendor objects reference; the list
 * is generated at build time with nm (see Kbuild), as nova-core does.
 */
#include <linux/export.h>

#define EXPORT_SYMBOL_RUST_GPL(sym) extern int sym; EXPORT_SYMBOL_GPL(sym)

#include "exports_kvm_generated.h"
