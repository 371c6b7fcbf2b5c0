/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel APIs that rkvm needs and the 7.3 `kernel` crate does not bind.
 * bindgen runs over this file at build time (see Kbuild); the allowlist in
 * bindgen_parameters picks what we use, and every type not allowlisted
 * there resolves to the one in `kernel::bindings` (rust/bindings.rs does a
 * glob import), so our functions take the kernel crate's own types.
 */
#include <linux/anon_inodes.h>
#include <linux/cpuhotplug.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sched/stat.h>
#include <asm/cpufeatures.h>
#include <asm/msr-index.h>
#include <asm/virt.h>
#include "helpers.h"
#include "kvm_events.h"

/* fmode_t flags are __force casts bindgen cannot evaluate as macros. */
const fmode_t RKVM_FMODE_PREAD = FMODE_PREAD;
