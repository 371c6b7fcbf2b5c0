// SPDX-License-Identifier: GPL-2.0
//! Rate limiting for messages a guest or userspace can trigger at will
//! (the kernel's printk_ratelimit(): by default 10 messages per 5 s).

use kernel::str::CStrExt;

/// Whether a rate-limited message may be printed now.
pub fn ratelimit_ok() -> bool {
    // SAFETY: a static C string; the function only updates its own
    // rate-limit state.
    unsafe { kernel::bindings::__printk_ratelimit(c"kvm".as_char_ptr()) != 0 }
}
