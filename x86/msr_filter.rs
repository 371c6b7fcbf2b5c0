// SPDX-License-Identifier: GPL-2.0
//! Userspace's say over guest MSR accesses: KVM_X86_SET_MSR_FILTER (which
//! RDMSR/WRMSR are allowed) and KVM_CAP_X86_USER_SPACE_MSR (which refused
//! accesses exit to userspace as KVM_EXIT_X86_RDMSR/WRMSR instead of
//! raising #GP), as upstream's kvm_msr_allowed() and kvm_msr_user_space().
//!
//! The filter applies to the guest's RDMSR and WRMSR instructions (all
//! MSRs are intercepted), not to MSR accesses that are side effects of
//! other instructions, nor to KVM_GET/SET_MSRS. x2APIC MSRs cannot be
//! filtered.

use crate::{
    defs::msr::{APIC_BASE_MSR, X2APIC_MSR_LAST},
    ext::{
        uaccess::{read_arg, read_bytes},
        uapi,
    },
};
use kernel::prelude::*;

/// The reasons userspace may ask to hear of (`KVM_MSR_EXIT_REASON_*`).
pub(crate) const USER_SPACE_MSR_VALID: u64 = uapi::KVM_MSR_EXIT_REASON_VALID_MASK as u64;

/// Why a guest MSR access failed, as upstream tells userspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MsrFault {
    /// An invalid access to a known MSR (`KVM_MSR_EXIT_REASON_INVAL`).
    Invalid,
    /// An MSR KVM does not know (`KVM_MSR_EXIT_REASON_UNKNOWN`).
    Unknown,
    /// Denied by the MSR filter (`KVM_MSR_EXIT_REASON_FILTER`).
    Filtered,
}

impl MsrFault {
    /// The `KVM_MSR_EXIT_REASON_*` bit.
    pub(crate) fn reason(self) -> u32 {
        match self {
            MsrFault::Invalid => uapi::KVM_MSR_EXIT_REASON_INVAL,
            MsrFault::Unknown => uapi::KVM_MSR_EXIT_REASON_UNKNOWN,
            MsrFault::Filtered => uapi::KVM_MSR_EXIT_REASON_FILTER,
        }
    }
}

/// One range of the filter: MSRs `base..base + nmsrs`, a bit each.
struct Range {
    /// `KVM_MSR_FILTER_READ` and/or `KVM_MSR_FILTER_WRITE`.
    flags: u32,
    base: u32,
    nmsrs: u32,
    /// Bit `i` set: MSR `base + i` is allowed.
    bitmap: KVec<u8>,
}

/// A VM's MSR filter (KVM_X86_SET_MSR_FILTER).
pub(crate) struct MsrFilter {
    default_allow: bool,
    ranges: KVec<Range>,
}

impl MsrFilter {
    /// Reads and checks a `struct kvm_msr_filter` at `arg` (upstream's
    /// rules: valid flags, a non-empty range has flags and a bitmap of at
    /// most `KVM_MSR_FILTER_MAX_BITMAP_SIZE` bytes; "deny by default"
    /// needs a range). `None`: no filter (all ranges empty, allow).
    pub(crate) fn from_user(arg: usize) -> Result<Option<KBox<Self>>> {
        let f: uapi::kvm_msr_filter = read_arg(arg)?;
        if f.flags & !uapi::KVM_MSR_FILTER_VALID_MASK != 0 {
            return Err(EINVAL);
        }
        let default_allow = f.flags & uapi::KVM_MSR_FILTER_DEFAULT_DENY == 0;
        let empty = f.ranges.iter().all(|r| r.nmsrs == 0);
        if empty && !default_allow {
            return Err(EINVAL);
        }
        let mut ranges = KVec::new();
        for r in f.ranges.iter().filter(|r| r.nmsrs != 0) {
            if r.flags & !uapi::KVM_MSR_FILTER_RANGE_VALID_MASK != 0 || r.flags == 0 {
                return Err(EINVAL);
            }
            // Whole longs of bits, as upstream copies them.
            let longs = (r.nmsrs as usize).div_ceil(u64::BITS as usize);
            let size = longs * core::mem::size_of::<u64>();
            if size > uapi::KVM_MSR_FILTER_MAX_BITMAP_SIZE as usize {
                return Err(EINVAL);
            }
            let mut bitmap = KVec::from_elem(0u8, size, GFP_KERNEL_ACCOUNT)?;
            read_bytes(r.bitmap_addr() as u64, &mut bitmap)?;
            ranges.push(
                Range {
                    flags: r.flags,
                    base: r.base,
                    nmsrs: r.nmsrs,
                    bitmap,
                },
                GFP_KERNEL_ACCOUNT,
            )?;
        }
        if empty {
            return Ok(None);
        }
        Ok(Some(KBox::new(
            Self {
                default_allow,
                ranges,
            },
            GFP_KERNEL_ACCOUNT,
        )?))
    }

    /// Whether the guest may read (`write` false) or write MSR `index`:
    /// the first range covering it for that access decides, else the
    /// default.
    pub(crate) fn allows(&self, index: u32, write: bool) -> bool {
        if (APIC_BASE_MSR..=X2APIC_MSR_LAST).contains(&index) {
            return true;
        }
        let kind = if write {
            uapi::KVM_MSR_FILTER_WRITE
        } else {
            uapi::KVM_MSR_FILTER_READ
        };
        for r in self.ranges.iter() {
            let Some(i) = index.checked_sub(r.base) else {
                continue;
            };
            if i < r.nmsrs && r.flags & kind != 0 {
                let byte = r.bitmap.get((i / 8) as usize).copied().unwrap_or(0);
                return byte & (1 << (i % 8)) != 0;
            }
        }
        self.default_allow
    }
}
