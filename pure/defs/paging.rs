// SPDX-License-Identifier: GPL-2.0
//! Pages and page tables: the 4 KiB page geometry, paging levels,
//! page-table entry bits (upstream `arch/x86/kvm/mmu.h`), page-fault error
//! codes (`PFERR_*`, `asm/kvm_host.h`), and the guest address types
//! [`Gpa`], [`Gfn`] and [`Gva`], whose arithmetic is checked and never
//! panics.

// --- Page geometry -----------------------------------------------------------------

/// Log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// Bytes per page (4 KiB).
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// The page-number bits of an address (upstream's `PAGE_MASK`: the offset
/// within the page is `addr & !PAGE_MASK`, see [`offset_in_page`]).
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);
/// The architectural limit of MAXPHYADDR (CPUID 0x80000008 `EAX[7:0]`):
/// page-table entries hold physical address bits 51:12.
pub const MAX_PHYS_ADDR_BITS: u8 = 52;

/// The offset of `addr` within its page (upstream `offset_in_page()`).
pub const fn offset_in_page(addr: u64) -> u64 {
    addr & !PAGE_MASK
}

/// Whether `addr` (an address or a size) is a multiple of the page size
/// (upstream `PAGE_ALIGNED()`).
pub const fn page_aligned(addr: u64) -> bool {
    offset_in_page(addr) == 0
}

/// Bytes from `addr` to the end of its page: 1 to [`PAGE_SIZE`].
pub const fn bytes_to_page_end(addr: u64) -> u64 {
    PAGE_SIZE - offset_in_page(addr)
}

/// Whole pages in `bytes` (rounded down).
pub const fn bytes_to_pages(bytes: u64) -> u64 {
    bytes >> PAGE_SHIFT
}

/// Bytes in `pages` pages, or `None` if that does not fit in 64 bits.
pub const fn pages_to_bytes(pages: u64) -> Option<u64> {
    pages.checked_mul(PAGE_SIZE)
}

// --- Paging levels and page-table geometry (arch/x86/kvm/mmu.h) ------------------

/// Levels of 32-bit (non-PAE) paging.
pub const PT32_ROOT_LEVEL: u8 = 2;
/// Levels of PAE paging (the PDPT is the root).
pub const PT32E_ROOT_LEVEL: u8 = 3;
/// PAE paging's CR3: the PDPT base (bits 31:5; the PDPT is 32 bytes).
pub const PAE_CR3_MASK: u64 = 0xffff_ffe0;
/// Reserved bits of a present PAE PDPTE below bit 12: 1-2 and 5-8
/// (upstream's `rsvd_bits(5, 8) | rsvd_bits(1, 2)`).
pub const PDPTE_RESERVED_LOW: u64 = (3 << 1) | (0xf << 5);
/// Levels of 4-level long-mode paging (and of 4-level NPT/EPT).
pub const PT64_ROOT_4LEVEL: u8 = 4;
/// Levels of 5-level paging (CR4.LA57).
pub const PT64_ROOT_5LEVEL: u8 = 5;
/// Index bits per level of a 64-bit-entry table (PAE, long mode, NPT, EPT).
pub const PT64_LEVEL_BITS: u32 = 9;
/// Index bits per level of a 32-bit-entry table.
pub const PT32_LEVEL_BITS: u32 = 10;
/// Entries in a table of 64-bit entries.
pub const PT64_ENT_PER_PAGE: usize = 1 << PT64_LEVEL_BITS;
/// Entries in a table of 32-bit entries.
pub const PT32_ENT_PER_PAGE: usize = 1 << PT32_LEVEL_BITS;

/// Shift of the address bits a `level` entry (1 = last level) translates,
/// for tables with `bits_per_level` index bits (upstream
/// `__PT_LEVEL_SHIFT()`): the page size a leaf at that level maps is
/// `1 << pt_level_shift(...)`. Level 0 counts as level 1.
pub const fn pt_level_shift(level: u8, bits_per_level: u32) -> u32 {
    let above = level.saturating_sub(1) as u32;
    PAGE_SHIFT.saturating_add(above.saturating_mul(bits_per_level))
}

/// Index of `addr` in a `level` table (upstream `__PT_INDEX()`); 0 when
/// the level's shift is past bit 63.
pub const fn pt_index(addr: u64, level: u8, bits_per_level: u32) -> usize {
    let idx = match addr.checked_shr(pt_level_shift(level, bits_per_level)) {
        Some(v) => v,
        None => 0,
    };
    let mask = match 1u64.checked_shl(bits_per_level) {
        Some(n) => n - 1,
        None => u64::MAX,
    };
    (idx & mask) as usize
}

// --- Page-table entry bits -----------------------------------------------------------

/// Present.
pub const PT_PRESENT_MASK: u64 = 1 << 0;
/// Writable.
pub const PT_WRITABLE_MASK: u64 = 1 << 1;
/// User accessible.
pub const PT_USER_MASK: u64 = 1 << 2;
/// Page-level write-through.
pub const PT_PWT_MASK: u64 = 1 << 3;
/// Page-level cache disable.
pub const PT_PCD_MASK: u64 = 1 << 4;
/// Accessed.
pub const PT_ACCESSED_MASK: u64 = 1 << 5;
/// Dirty (leaf entries).
pub const PT_DIRTY_MASK: u64 = 1 << 6;
/// Page size: this non-last-level entry maps a large page.
pub const PT_PAGE_SIZE_MASK: u64 = 1 << 7;
/// PAT bit of a 4 KiB page's entry (the same bit as the page size bit).
pub const PT_PAT_MASK: u64 = 1 << 7;
/// Global.
pub const PT_GLOBAL_MASK: u64 = 1 << 8;
/// PAT bit of a large page's entry.
pub const PT_DIR_PAT_MASK: u64 = 1 << 12;
/// Execute disable (PAE and 64-bit entries).
pub const PT64_NX_MASK: u64 = 1 << 63;
/// Physical address bits 51:12 of a 64-bit entry (and of CR3 in long
/// mode).
pub const PT64_BASE_ADDR_MASK: u64 = ((1 << MAX_PHYS_ADDR_BITS) - 1) & PAGE_MASK;
/// Physical address bits 31:12 of a 32-bit entry.
pub const PT32_BASE_ADDR_MASK: u64 = 0xffff_ffff & PAGE_MASK;

// --- Page-fault error code (the architectural 32 bits) ------------------------

/// The page was present: a protection violation (else a not-present page).
pub const PFERR_PRESENT_MASK: u32 = 1 << 0;
/// Write access.
pub const PFERR_WRITE_MASK: u32 = 1 << 1;
/// User-mode access.
pub const PFERR_USER_MASK: u32 = 1 << 2;
/// A reserved bit was set in a paging structure.
pub const PFERR_RSVD_MASK: u32 = 1 << 3;
/// Instruction fetch.
pub const PFERR_FETCH_MASK: u32 = 1 << 4;
/// Protection-key violation.
pub const PFERR_PK_MASK: u32 = 1 << 5;
/// Shadow-stack access.
pub const PFERR_SS_MASK: u32 = 1 << 6;
/// SGX access-control violation.
pub const PFERR_SGX_MASK: u32 = 1 << 15;

// --- Guest address types -----------------------------------------------------------

/// A guest physical address (upstream `gpa_t`).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Gpa(u64);

impl Gpa {
    /// The address `raw`.
    pub const fn new(raw: u64) -> Self {
        Gpa(raw)
    }

    /// The address as a number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The frame this address is in (upstream `gpa_to_gfn()`).
    pub const fn gfn(self) -> Gfn {
        Gfn(self.0 >> PAGE_SHIFT)
    }

    /// The offset within the page (upstream `offset_in_page()`).
    pub const fn page_offset(self) -> u64 {
        offset_in_page(self.0)
    }

    /// The first address of the page.
    pub const fn page_base(self) -> Gpa {
        Gpa(self.0 & PAGE_MASK)
    }

    /// Whether the address is the first of its page.
    pub const fn is_page_aligned(self) -> bool {
        page_aligned(self.0)
    }

    /// Bytes from here to the end of the page: 1 to [`PAGE_SIZE`].
    pub const fn bytes_to_page_end(self) -> u64 {
        bytes_to_page_end(self.0)
    }

    /// `bytes` further on, or `None` past the end of the address space.
    pub const fn checked_add(self, bytes: u64) -> Option<Gpa> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Gpa(v)),
            None => None,
        }
    }

    /// `bytes` before, or `None` below address 0.
    pub const fn checked_sub(self, bytes: u64) -> Option<Gpa> {
        match self.0.checked_sub(bytes) {
            Some(v) => Some(Gpa(v)),
            None => None,
        }
    }

    /// Bytes from `base` up to this address, or `None` if `base` is above.
    pub const fn offset_from(self, base: Gpa) -> Option<u64> {
        self.0.checked_sub(base.0)
    }
}

/// A guest frame number: a guest physical address shifted right by
/// [`PAGE_SHIFT`] (upstream `gfn_t`).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Gfn(u64);

impl Gfn {
    /// Frame number `raw`.
    pub const fn new(raw: u64) -> Self {
        Gfn(raw)
    }

    /// The frame number as a number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The frame's first address (upstream `gfn_to_gpa()`). Frame numbers
    /// of 2^52 and above do not fit in an address and lose their top bits,
    /// as upstream; [`Gfn::checked_gpa`] refuses them instead. Frames
    /// obtained from [`Gpa::gfn`] always fit.
    pub const fn gpa(self) -> Gpa {
        Gpa(self.0 << PAGE_SHIFT)
    }

    /// The frame's first address, or `None` if it does not fit in 64 bits.
    pub const fn checked_gpa(self) -> Option<Gpa> {
        match pages_to_bytes(self.0) {
            Some(v) => Some(Gpa(v)),
            None => None,
        }
    }

    /// `n` frames further on, or `None` on overflow.
    pub const fn checked_add(self, n: u64) -> Option<Gfn> {
        match self.0.checked_add(n) {
            Some(v) => Some(Gfn(v)),
            None => None,
        }
    }

    /// `n` frames before, or `None` below frame 0.
    pub const fn checked_sub(self, n: u64) -> Option<Gfn> {
        match self.0.checked_sub(n) {
            Some(v) => Some(Gfn(v)),
            None => None,
        }
    }

    /// `n` frames further on, stopping at the last frame number.
    pub const fn saturating_add(self, n: u64) -> Gfn {
        Gfn(self.0.saturating_add(n))
    }

    /// Frames from `base` up to this one, or `None` if `base` is above.
    pub const fn offset_from(self, base: Gfn) -> Option<u64> {
        self.0.checked_sub(base.0)
    }
}

/// A guest virtual (linear) address (upstream `gva_t`).
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Gva(u64);

impl Gva {
    /// The address `raw`.
    pub const fn new(raw: u64) -> Self {
        Gva(raw)
    }

    /// The address as a number.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The offset within the page.
    pub const fn page_offset(self) -> u64 {
        offset_in_page(self.0)
    }

    /// The first address of the page.
    pub const fn page_base(self) -> Gva {
        Gva(self.0 & PAGE_MASK)
    }

    /// Whether the address is the first of its page.
    pub const fn is_page_aligned(self) -> bool {
        page_aligned(self.0)
    }

    /// Bytes from here to the end of the page: 1 to [`PAGE_SIZE`].
    pub const fn bytes_to_page_end(self) -> u64 {
        bytes_to_page_end(self.0)
    }

    /// `bytes` further on, or `None` past the end of the address space
    /// (linear addresses that wrap are the caller's business).
    pub const fn checked_add(self, bytes: u64) -> Option<Gva> {
        match self.0.checked_add(bytes) {
            Some(v) => Some(Gva(v)),
            None => None,
        }
    }
}
