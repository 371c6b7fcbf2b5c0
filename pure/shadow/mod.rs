// SPDX-License-Identifier: GPL-2.0
//! Shadow paging, the pure half (upstream's `paging_tmpl.h` and the
//! shadow parts of `spte.c`): which shadow page shadows which guest table
//! ([`Role`], [`GuestPath::child`], the roots), what a shadow leaf entry
//! is for a guest translation ([`leaf`]), and which shadow entries a
//! write to a guest table touches ([`written`]).
//!
//! Pure component (docs/architecture.md section 9): `core` only, no
//! `unsafe`, no panics, no allocation. The kernel side is
//! `x86/mmu/shadow.rs`, which owns the shadow pages; the guest walk is
//! `emulate::paging`'s, shared with the instruction emulator. Host-tested
//! in tests/host/shadow against a reference walk of random page tables of
//! every mode.
//!
//! # Geometry
//!
//! The hardware walks the shadow tables in long mode (a 4-level tree, for
//! a long-mode guest) or in legacy PAE mode (a PAE root of four entries
//! above two levels, for every other guest, paging off included: the
//! guest's CR0.PG=0 runs with paging on over an identity map, upstream's
//! "nonpaging" MMU). Shadow level L shadows guest level L. A guest table
//! of 32-bit paging (1024 four-byte entries) is shadowed by several
//! shadow pages, one per `quadrant`: a page directory by four (one per
//! GiB, each guest entry of 4 MiB becoming two of 2 MiB), a page table by
//! two (one per 2 MiB). A large guest page (2 MiB, 4 MiB, 1 GiB) is
//! mapped by `direct` shadow pages of 4 KiB entries, keyed by the guest
//! frame they start at. Shadow leaves are 4 KiB; entries above them give
//! every permission, and a leaf carries the guest's accumulated
//! permissions (so a shadow page is shared only by paths with the same
//! permissions above it: [`Role::access`]).

use crate::defs::paging::{
    PAGE_SHIFT, PT32_BASE_ADDR_MASK, PT64_BASE_ADDR_MASK, PT64_LEVEL_BITS, PT64_NX_MASK,
    PT_ACCESSED_MASK, PT_DIRTY_MASK, PT_PRESENT_MASK, PT_USER_MASK, PT_WRITABLE_MASK,
};
use crate::emulate::paging::{pdpte_reserved, PagingConfig, Walk};

/// Instructions may be fetched (upstream `ACC_EXEC_MASK`).
pub const ACC_EXEC: u8 = 1 << 0;
/// Writes are allowed (`ACC_WRITE_MASK`).
pub const ACC_WRITE: u8 = 1 << 1;
/// User-mode accesses are allowed (`ACC_USER_MASK`).
pub const ACC_USER: u8 = 1 << 2;
/// Every access (`ACC_ALL`).
pub const ACC_ALL: u8 = ACC_EXEC | ACC_WRITE | ACC_USER;

/// Entries of a shadow table.
pub const ENTRIES: usize = 1 << PT64_LEVEL_BITS;
/// Entries of a PAE root.
pub const PAE_ROOT_ENTRIES: usize = 4;
/// Levels of the tree a long-mode guest runs on.
pub const LONG_LEVELS: u8 = 4;

/// How the guest translates, as far as its shadow is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestMode {
    /// CR0.PG=0: an identity map.
    NonPaging,
    /// 32-bit paging: two levels of 4-byte entries.
    Bits32,
    /// PAE paging: four PDPTEs, then two levels of 8-byte entries.
    Pae,
    /// 4-level paging.
    Long,
}

impl GuestMode {
    /// The mode of `cfg`; `None` for 5-level paging (not shadowed).
    pub fn of(cfg: &PagingConfig) -> Option<Self> {
        match cfg.levels {
            0 => Some(Self::NonPaging),
            2 => Some(Self::Bits32),
            3 => Some(Self::Pae),
            4 => Some(Self::Long),
            _ => None,
        }
    }

    /// Whether the shadow tree has a PAE root (else a 4-level root).
    pub fn pae_root(self) -> bool {
        self != Self::Long
    }
}

/// What a shadow page is (upstream's `kvm_mmu_page_role`): with the guest
/// frame it shadows, the key under which shadow pages are shared. Two
/// shadow pages with the same frame and role have the same entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Role(u32);

const ROLE_LEVEL: u32 = 0x7;
const ROLE_DIRECT: u32 = 1 << 3;
const ROLE_QUADRANT_SHIFT: u32 = 4;
const ROLE_ACCESS_SHIFT: u32 = 6;
const ROLE_GPTE4: u32 = 1 << 9;
const ROLE_CR0_WP: u32 = 1 << 10;
const ROLE_CR4_SMEP: u32 = 1 << 11;
const ROLE_SMAP_ANDNOT_WP: u32 = 1 << 12;
const ROLE_EFER_NX: u32 = 1 << 13;

impl Role {
    /// The bits every shadow page of the guest's current paging mode
    /// shares (level 0, indirect, quadrant 0, every access): the paging
    /// controls that change what a shadow entry must be.
    pub fn base(cfg: &PagingConfig) -> Self {
        if cfg.levels == 0 {
            return Self(u32::from(ACC_ALL) << ROLE_ACCESS_SHIFT);
        }
        let mut r = u32::from(ACC_ALL) << ROLE_ACCESS_SHIFT;
        if cfg.levels == 2 {
            r |= ROLE_GPTE4;
        }
        if cfg.wp {
            r |= ROLE_CR0_WP;
        }
        if cfg.smep {
            r |= ROLE_CR4_SMEP;
        }
        if cfg.smap && !cfg.wp {
            r |= ROLE_SMAP_ANDNOT_WP;
        }
        if cfg.nxe {
            r |= ROLE_EFER_NX;
        }
        Self(r)
    }

    /// The raw bits (statistics, tracing).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// The shadow page's level (1: its entries map 4 KiB pages).
    pub fn level(self) -> u8 {
        (self.0 & ROLE_LEVEL) as u8
    }

    /// Maps guest frames directly (a large guest page, or paging off)
    /// rather than shadowing a guest table.
    pub fn direct(self) -> bool {
        self.0 & ROLE_DIRECT != 0
    }

    /// Which part of a 32-bit guest table the page shadows.
    pub fn quadrant(self) -> u8 {
        ((self.0 >> ROLE_QUADRANT_SHIFT) & 3) as u8
    }

    /// The guest permissions above the page (`ACC_*`); for a direct page,
    /// those of the large page.
    pub fn access(self) -> u8 {
        ((self.0 >> ROLE_ACCESS_SHIFT) & u32::from(ACC_ALL)) as u8
    }

    /// The guest table has 4-byte entries (32-bit paging).
    pub fn gpte4(self) -> bool {
        self.0 & ROLE_GPTE4 != 0
    }

    /// CR0.WP of the guest mode.
    pub fn wp(self) -> bool {
        self.0 & ROLE_CR0_WP != 0
    }

    /// CR4.SMEP of the guest mode.
    pub fn smep(self) -> bool {
        self.0 & ROLE_CR4_SMEP != 0
    }

    fn with(self, level: u8, direct: bool, quadrant: u8, access: u8) -> Self {
        let keep = self.0
            & !(ROLE_LEVEL
                | ROLE_DIRECT
                | (3 << ROLE_QUADRANT_SHIFT)
                | (u32::from(ACC_ALL) << ROLE_ACCESS_SHIFT));
        let mut r = keep
            | (u32::from(level) & ROLE_LEVEL)
            | ((u32::from(quadrant) & 3) << ROLE_QUADRANT_SHIFT)
            | ((u32::from(access) & u32::from(ACC_ALL)) << ROLE_ACCESS_SHIFT);
        if direct {
            r |= ROLE_DIRECT;
        }
        Self(r)
    }
}

/// A shadow page to use: the guest frame (of the guest table it
/// shadows, or the first frame it maps if direct) and its role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Child {
    /// Guest frame.
    pub gfn: u64,
    /// Role.
    pub role: Role,
}

/// Guest frames one entry of a shadow table of `level` covers.
fn frames(level: u8) -> u64 {
    1u64 << (PT64_LEVEL_BITS * u32::from(level.saturating_sub(1)).min(6))
}

/// Index of linear address `la` in a shadow table of `level` (1-4).
pub fn index(la: u64, level: u8) -> usize {
    let shift = PAGE_SHIFT + PT64_LEVEL_BITS * u32::from(level.clamp(1, 4) - 1);
    ((la >> shift) as usize) & (ENTRIES - 1)
}

/// Index of linear address `la` in a PAE root.
pub fn pae_index(la: u64) -> usize {
    ((la >> 30) as usize) & (PAE_ROOT_ENTRIES - 1)
}

/// The root of a long-mode guest's shadow: the level-4 page shadowing
/// its PML4. `None` in other modes.
pub fn root4(cfg: &PagingConfig, base: Role) -> Option<Child> {
    (GuestMode::of(cfg)? == GuestMode::Long).then(|| Child {
        gfn: (cfg.cr3 & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT,
        role: base.with(LONG_LEVELS, false, 0, ACC_ALL),
    })
}

/// Entry `i` of the PAE root of a guest not in long mode: the level-2
/// page it points to (paging off: the identity map of that GiB; 32-bit
/// paging: quadrant `i` of the guest's page directory; PAE: the page
/// directory of PDPTE `i`, if present and valid). `pdptes` are the PAE
/// guest's PDPTEs, as loaded at its last CR3 write.
pub fn pae_root_child(
    cfg: &PagingConfig,
    pdptes: &[u64; PAE_ROOT_ENTRIES],
    base: Role,
    i: usize,
) -> Option<Child> {
    let i = i & (PAE_ROOT_ENTRIES - 1);
    match GuestMode::of(cfg)? {
        GuestMode::NonPaging => Some(Child {
            gfn: (i as u64) << (2 * PT64_LEVEL_BITS),
            role: base.with(2, true, 0, ACC_ALL),
        }),
        GuestMode::Bits32 => Some(Child {
            gfn: (cfg.cr3 & PT32_BASE_ADDR_MASK) >> PAGE_SHIFT,
            role: base.with(2, false, i as u8, ACC_ALL),
        }),
        GuestMode::Pae => {
            let pdpte = *pdptes.get(i)?;
            if pdpte & PT_PRESENT_MASK == 0 || pdpte_reserved(cfg, pdpte) {
                return None;
            }
            Some(Child {
                gfn: (pdpte & PT64_BASE_ADDR_MASK) >> PAGE_SHIFT,
                role: base.with(2, false, 0, ACC_ALL),
            })
        }
        GuestMode::Long => None,
    }
}

/// The guest side of a successful walk, as the shadow MMU needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestPath {
    mode: GuestMode,
    la: u64,
    /// The 4 KiB frame `la` maps to.
    gfn: u64,
    /// Level of the entry that maps the page (1: 4 KiB).
    leaf_level: u8,
    /// By guest level: the frame of the table holding that level's entry.
    table_gfn: [u64; 6],
    /// By guest level: the permissions of the entries above it.
    access_above: [u8; 6],
    /// The permissions of the whole walk.
    access: u8,
    /// The mapping entry's dirty bit.
    dirty: bool,
}

/// The permissions (`ACC_*`) a guest entry grants in `mode`.
fn entry_access(mode: GuestMode, nxe: bool, level: u8, e: u64) -> u8 {
    // A PAE PDPTE has no permission bits.
    if mode == GuestMode::Pae && level == 3 {
        return ACC_ALL;
    }
    let mut a = 0;
    if e & PT_WRITABLE_MASK != 0 {
        a |= ACC_WRITE;
    }
    if e & PT_USER_MASK != 0 {
        a |= ACC_USER;
    }
    if mode == GuestMode::Bits32 || !nxe || e & PT64_NX_MASK == 0 {
        a |= ACC_EXEC;
    }
    a
}

impl GuestPath {
    /// The path of `walk`, a successful walk of `la` under `cfg` (`None`
    /// for 5-level paging).
    pub fn new(cfg: &PagingConfig, walk: &Walk, la: u64) -> Option<Self> {
        let mode = GuestMode::of(cfg)?;
        let mut p = Self {
            mode,
            la,
            gfn: walk.translation.gpa >> PAGE_SHIFT,
            leaf_level: 1,
            table_gfn: [0; 6],
            access_above: [ACC_ALL; 6],
            access: ACC_ALL,
            dirty: true,
        };
        let mut acc = ACC_ALL;
        for s in walk.steps() {
            let l = usize::from(s.level).min(5);
            if let Some(t) = p.table_gfn.get_mut(l) {
                *t = s.addr >> PAGE_SHIFT;
            }
            if let Some(a) = p.access_above.get_mut(l) {
                *a = acc;
            }
            acc &= entry_access(mode, cfg.nxe, s.level, s.val);
            p.leaf_level = s.level;
            p.dirty = s.val & PT_DIRTY_MASK != 0;
        }
        p.access = acc;
        Some(p)
    }

    /// The 4 KiB guest frame the address maps to.
    pub fn gfn(&self) -> u64 {
        self.gfn
    }

    /// The guest's permissions for the page (`ACC_*`).
    pub fn access(&self) -> u8 {
        self.access
    }

    /// The guest entry mapping the page is dirty.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// The guest frames of the tables this walk read (to be protected
    /// from writes while their shadows exist), by guest level, top first;
    /// 0 for levels the guest does not have.
    pub fn table_gfns(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        let top = match self.mode {
            GuestMode::NonPaging => 0,
            GuestMode::Bits32 | GuestMode::Pae => 2,
            GuestMode::Long => 4,
        };
        (self.leaf_level..=top)
            .rev()
            .filter_map(move |l| Some((l, *self.table_gfn.get(usize::from(l))?)))
    }

    /// The shadow page to link below the root at shadow `level` (3 in a
    /// 4-level tree, 2, 1) for this walk's address.
    pub fn child(&self, base: Role, level: u8) -> Child {
        let level = level.clamp(1, LONG_LEVELS);
        let span = frames(level + 1);
        if self.mode == GuestMode::NonPaging {
            let gfn = self.la >> PAGE_SHIFT;
            return Child {
                gfn: gfn & !(span - 1),
                role: base.with(level, true, 0, ACC_ALL),
            };
        }
        if level < self.leaf_level {
            // Part of a large guest page.
            return Child {
                gfn: self.gfn & !(span - 1),
                role: base.with(level, true, 0, self.access),
            };
        }
        let l = usize::from(level);
        let quadrant = match (self.mode, level) {
            (GuestMode::Bits32, 2) => (self.la >> 30) & 3,
            (GuestMode::Bits32, 1) => (self.la >> 21) & 1,
            _ => 0,
        };
        Child {
            gfn: self.table_gfn.get(l).copied().unwrap_or(0),
            role: base.with(
                level,
                false,
                quadrant as u8,
                self.access_above.get(l).copied().unwrap_or(ACC_ALL),
            ),
        }
    }
}

/// A non-leaf shadow entry pointing to the table at host physical `pa`:
/// every permission (the leaf decides).
pub fn table_entry(pa: u64) -> u64 {
    (pa & PT64_BASE_ADDR_MASK)
        | PT_PRESENT_MASK
        | PT_WRITABLE_MASK
        | PT_USER_MASK
        | PT_ACCESSED_MASK
}

/// An entry of a PAE root (a PDPTE: present, no permission bits).
pub fn pae_root_entry(pa: u64) -> u64 {
    (pa & PT64_BASE_ADDR_MASK) | PT_PRESENT_MASK
}

/// What a shadow leaf is made of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeafInput {
    /// Host frame.
    pub pfn: u64,
    /// The guest's permissions for the page ([`GuestPath::access`]).
    pub access: u8,
    /// The guest entry is dirty (after the walk of the faulting access).
    pub dirty: bool,
    /// The faulting access was a write.
    pub write: bool,
    /// The faulting access was a user-mode access.
    pub user: bool,
    /// CR0.WP.
    pub wp: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// The host page and the slot take writes.
    pub host_writable: bool,
    /// Writes must fault anyway (a guest page table with a shadow, a page
    /// whose dirty log was harvested, ...).
    pub protected: bool,
}

/// The permissions the shadow leaf gives (`ACC_*`): the guest's, but that
/// a supervisor write with CR0.WP=0 to a page the guest maps read-only
/// makes the page writable and supervisor-only (and, with SMEP, not
/// executable), as upstream does: the hardware runs with CR0.WP=1, and
/// user accesses then fault and get the user mapping back.
pub fn leaf_access(i: &LeafInput) -> u8 {
    let mut a = i.access;
    if i.write && !i.user && !i.wp && a & ACC_WRITE == 0 {
        a |= ACC_WRITE;
        a &= !ACC_USER;
        if i.smep {
            a &= !ACC_EXEC;
        }
    }
    a
}

/// The shadow leaf entry: present and accessed; writable (and dirty) only
/// when the guest allows writes, its entry is dirty (else the first write
/// must fault to set the guest's dirty bit), the host allows and nothing
/// protects the page; user and no-execute as [`leaf_access`]. The
/// hardware must run with EFER.NXE (the vendors force it with shadow
/// paging). No memory-type bits: the host's PAT entry 0 (write-back).
pub fn leaf(i: &LeafInput) -> u64 {
    let a = leaf_access(i);
    let mut e = ((i.pfn << PAGE_SHIFT) & PT64_BASE_ADDR_MASK) | PT_PRESENT_MASK | PT_ACCESSED_MASK;
    if a & ACC_WRITE != 0 && i.dirty && i.host_writable && !i.protected {
        e |= PT_WRITABLE_MASK | PT_DIRTY_MASK;
    }
    if a & ACC_USER != 0 {
        e |= PT_USER_MASK;
    }
    if a & ACC_EXEC == 0 {
        e |= PT64_NX_MASK;
    }
    e
}

/// The entries of a shadow page with `role` that a guest write of `len`
/// bytes at `offset` in the guest table it shadows may change: the first
/// and last index, or `None` (a direct page, or a part of the guest table
/// another quadrant shadows).
pub fn written(role: Role, offset: u64, len: u64) -> Option<(usize, usize)> {
    if role.direct() || len == 0 || offset >= 1 << PAGE_SHIFT {
        return None;
    }
    let end = offset.saturating_add(len - 1).min((1 << PAGE_SHIFT) - 1);
    if !role.gpte4() {
        return Some(((offset / 8) as usize, (end / 8) as usize));
    }
    let (first, last) = (offset / 4, end / 4);
    let q = u64::from(role.quadrant());
    let (lo, hi, per) = match role.level() {
        1 => (q * 512, q * 512 + 511, 1),
        2 => (q * 256, q * 256 + 255, 2),
        _ => return None,
    };
    if last < lo || first > hi {
        return None;
    }
    let a = first.max(lo) - lo;
    let b = last.min(hi) - lo;
    Some(((a * per) as usize, (b * per + per - 1) as usize))
}
