// SPDX-License-Identifier: GPL-2.0
//! The rules of `KVM_SET_USER_MEMORY_REGION(2)`: validating a request
//! against the existing slots and classifying it (create, delete, move,
//! flags change, no-op), with upstream's errnos.
//!
//! Pure component (DESIGN.md section 3): `core` only, host-tested in
//! tests/host/memslots. The kernel side (virt/kvm) owns the slots.

use crate::defs::paging::{bytes_to_pages, page_aligned, pages_to_bytes, Gpa};

/// Log guest writes to this slot (`KVM_MEM_LOG_DIRTY_PAGES`).
pub const KVM_MEM_LOG_DIRTY_PAGES: u32 = 1 << 0;
/// Guest writes to this slot exit to userspace as MMIO (`KVM_MEM_READONLY`).
pub const KVM_MEM_READONLY: u32 = 1 << 1;
/// Backed by guest_memfd (`KVM_MEM_GUEST_MEMFD`, region2 only); not supported.
pub const KVM_MEM_GUEST_MEMFD: u32 = 1 << 2;
/// The flags this KVM accepts.
pub const VALID_FLAGS: u32 = KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY;

/// Slot ids userspace may use (`KVM_CAP_NR_MEMSLOTS` on x86).
pub const USER_MEM_SLOTS: u32 = 32764;
/// Largest slot, in pages (upstream's `KVM_MEM_MAX_NR_PAGES`: 2^31 - 1).
pub const MAX_NR_PAGES: u64 = (1 << 31) - 1;
/// Address spaces (1: this KVM has no SMM address space).
pub const ADDRESS_SPACE_NUM: u32 = 1;

/// One memory slot, as far as the rules are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotDesc {
    /// Slot id within its address space.
    pub id: u32,
    /// First guest frame number.
    pub base_gfn: u64,
    /// Number of pages.
    pub npages: u64,
    /// Userspace address backing the first page.
    pub hva: u64,
    /// `KVM_MEM_*` flags.
    pub flags: u32,
}

impl SlotDesc {
    /// One past the last guest frame number.
    pub fn end_gfn(&self) -> u64 {
        self.base_gfn.saturating_add(self.npages)
    }

    /// Whether `gfn` is in this slot.
    pub fn contains(&self, gfn: u64) -> bool {
        gfn >= self.base_gfn && gfn < self.end_gfn()
    }

    /// The userspace address of `gfn`, if it is in this slot.
    pub fn gfn_to_hva(&self, gfn: u64) -> Option<u64> {
        if !self.contains(gfn) {
            return None;
        }
        let offset = pages_to_bytes(gfn.checked_sub(self.base_gfn)?)?;
        self.hva.checked_add(offset)
    }

    /// Whether `[base_gfn, base_gfn + npages)` overlaps this slot.
    pub fn overlaps(&self, base_gfn: u64, npages: u64) -> bool {
        base_gfn < self.end_gfn() && self.base_gfn < base_gfn.saturating_add(npages)
    }
}

/// A `KVM_SET_USER_MEMORY_REGION(2)` request, fields as in the uapi.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    /// `slot`: address space in bits 16-31, id in bits 0-15.
    pub slot: u32,
    /// `flags`.
    pub flags: u32,
    /// `guest_phys_addr`.
    pub guest_phys_addr: u64,
    /// `memory_size`.
    pub memory_size: u64,
    /// `userspace_addr`.
    pub userspace_addr: u64,
}

impl Request {
    /// The address space id.
    pub fn as_id(&self) -> u32 {
        self.slot >> 16
    }

    /// The slot id within its address space.
    pub fn id(&self) -> u32 {
        self.slot & 0xffff
    }
}

/// What a valid request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing (the same slot again).
    None,
    /// A new slot.
    Create(SlotDesc),
    /// Remove slot `id`.
    Delete(SlotDesc),
    /// Slot `id` moves to another guest physical address.
    Move {
        /// Before.
        old: SlotDesc,
        /// After.
        new: SlotDesc,
    },
    /// Only the `KVM_MEM_LOG_DIRTY_PAGES` flag changes.
    Flags {
        /// Before.
        old: SlotDesc,
        /// After.
        new: SlotDesc,
    },
}

/// Why a request is refused: `EINVAL` or `EEXIST`, as upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotError {
    /// Malformed request (`EINVAL`).
    Invalid,
    /// Overlaps another slot (`EEXIST`).
    Exists,
}

/// Classifies `req` given the slots of its address space (`slots`);
/// `user_limit` is the end of the user address range (`TASK_SIZE_MAX`).
pub fn plan<'a>(
    req: &Request,
    slots: impl Iterator<Item = &'a SlotDesc> + Clone,
    user_limit: u64,
) -> Result<Change, SlotError> {
    if req.flags & !VALID_FLAGS != 0 {
        return Err(SlotError::Invalid);
    }
    if !page_aligned(req.memory_size)
        || !page_aligned(req.guest_phys_addr)
        || !page_aligned(req.userspace_addr)
    {
        return Err(SlotError::Invalid);
    }
    if req.as_id() >= ADDRESS_SPACE_NUM || req.id() >= USER_MEM_SLOTS {
        return Err(SlotError::Invalid);
    }
    // access_ok(): the userspace range must be in the user half.
    match req.userspace_addr.checked_add(req.memory_size) {
        Some(end) if end <= user_limit => {}
        _ => return Err(SlotError::Invalid),
    }
    if req.guest_phys_addr.checked_add(req.memory_size).is_none() {
        return Err(SlotError::Invalid);
    }
    let npages = bytes_to_pages(req.memory_size);
    if npages > MAX_NR_PAGES {
        return Err(SlotError::Invalid);
    }
    let new = SlotDesc {
        id: req.id(),
        base_gfn: Gpa::new(req.guest_phys_addr).gfn().raw(),
        npages,
        hva: req.userspace_addr,
        flags: req.flags,
    };
    let old = slots.clone().find(|s| s.id == new.id).copied();
    let overlaps_other = || {
        slots
            .clone()
            .any(|s| s.id != new.id && s.overlaps(new.base_gfn, new.npages))
    };

    // Size 0 deletes; deleting a slot that does not exist is an error.
    let Some(old) = old else {
        if npages == 0 {
            return Err(SlotError::Invalid);
        }
        if overlaps_other() {
            return Err(SlotError::Exists);
        }
        return Ok(Change::Create(new));
    };
    if npages == 0 {
        return Ok(Change::Delete(old));
    }
    // An existing slot keeps its backing, size and read-only-ness.
    if new.hva != old.hva
        || new.npages != old.npages
        || (new.flags ^ old.flags) & KVM_MEM_READONLY != 0
    {
        return Err(SlotError::Invalid);
    }
    if new.base_gfn != old.base_gfn {
        if overlaps_other() {
            return Err(SlotError::Exists);
        }
        return Ok(Change::Move { old, new });
    }
    if new.flags != old.flags {
        return Ok(Change::Flags { old, new });
    }
    Ok(Change::None)
}
