//! Guest page-table walker: 32-bit (2-level, PSE/PSE-36), PAE (3-level),
//! 4-level and 5-level paging, with NX, SMEP, SMAP, U/S, R/W, CR0.WP,
//! reserved-bit checks and accessed/dirty bit updates.
//!
//! Its API is independent of the instruction emulator so the MMU can use
//! it too: build a [`PagingConfig`] (e.g. with [`PagingConfig::from_regs`])
//! and call [`translate`] with a [`GuestMemory`] that reads the guest page
//! tables.

use super::GuestMemory;
use crate::defs::paging::{
    pt_level_shift, MAX_PHYS_ADDR_BITS, PAE_CR3_MASK, PAGE_SHIFT, PAGE_SIZE, PDPTE_RESERVED_LOW,
    PFERR_FETCH_MASK, PFERR_PRESENT_MASK, PFERR_RSVD_MASK, PFERR_USER_MASK, PFERR_WRITE_MASK,
    PT32E_ROOT_LEVEL, PT32_BASE_ADDR_MASK, PT32_LEVEL_BITS, PT32_ROOT_LEVEL, PT64_BASE_ADDR_MASK,
    PT64_LEVEL_BITS, PT64_NX_MASK, PT64_ROOT_4LEVEL, PT64_ROOT_5LEVEL, PT_ACCESSED_MASK,
    PT_DIRTY_MASK, PT_DIR_PAT_MASK, PT_PAGE_SIZE_MASK, PT_PRESENT_MASK, PT_USER_MASK,
    PT_WRITABLE_MASK,
};
use crate::defs::regs::{
    EFER_LMA, EFER_NX, X86_CR0_PG, X86_CR0_WP, X86_CR4_LA57, X86_CR4_PAE, X86_CR4_PCIDE,
    X86_CR4_PSE, X86_CR4_SMAP, X86_CR4_SMEP,
};

/// Paging structure geometry and the control bits that affect a walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagingConfig {
    /// 0 = paging disabled, 2 = 32-bit, 3 = PAE, 4 or 5 = long mode.
    pub levels: u8,
    /// CR3.
    pub cr3: u64,
    /// CR4.PSE (4 MiB pages in 32-bit paging).
    pub pse: bool,
    /// CR0.WP.
    pub wp: bool,
    /// EFER.NXE.
    pub nxe: bool,
    /// CR4.SMEP.
    pub smep: bool,
    /// CR4.SMAP.
    pub smap: bool,
    /// CR4.PCIDE (low 12 bits of CR3 are a PCID).
    pub pcide: bool,
    /// Physical address width.
    pub maxphyaddr: u8,
    /// 1 GiB pages supported.
    pub gbpages: bool,
    /// PAE only: PDPTEs cached by the CPU at the last CR3 load. When
    /// `None`, they are read from memory.
    pub pdptes: Option<[u64; 4]>,
}

impl PagingConfig {
    /// Derive the configuration from control registers.
    pub fn from_regs(
        cr0v: u64,
        cr3: u64,
        cr4v: u64,
        eferv: u64,
        maxphyaddr: u8,
        gbpages: bool,
    ) -> Self {
        let levels = if cr0v & X86_CR0_PG == 0 {
            0
        } else if eferv & EFER_LMA != 0 {
            if cr4v & X86_CR4_LA57 != 0 {
                PT64_ROOT_5LEVEL
            } else {
                PT64_ROOT_4LEVEL
            }
        } else if cr4v & X86_CR4_PAE != 0 {
            PT32E_ROOT_LEVEL
        } else {
            PT32_ROOT_LEVEL
        };
        PagingConfig {
            levels,
            cr3,
            pse: cr4v & X86_CR4_PSE != 0,
            wp: cr0v & X86_CR0_WP != 0,
            nxe: eferv & EFER_NX != 0,
            smep: cr4v & X86_CR4_SMEP != 0,
            smap: cr4v & X86_CR4_SMAP != 0,
            pcide: cr4v & X86_CR4_PCIDE != 0,
            maxphyaddr,
            gbpages,
            pdptes: None,
        }
    }
}

/// The kind of access being translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Access {
    /// Write access.
    pub write: bool,
    /// Instruction fetch.
    pub fetch: bool,
    /// User-mode access (CPL 3 and not an implicit supervisor access).
    pub user: bool,
    /// Implicit supervisor access (descriptor tables, TSS) from any CPL.
    pub implicit: bool,
    /// SMAP is overridden: RFLAGS.AC is set and the access is not an
    /// implicit supervisor access made at CPL 3.
    pub ac: bool,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Guest physical address of the byte at the linear address.
    pub gpa: u64,
    /// Size of the mapping page (4 KiB, 2/4 MiB or 1 GiB).
    pub page_size: u64,
    /// Writable through every level.
    pub writable: bool,
    /// User-accessible through every level.
    pub user: bool,
    /// Execute-disable at some level.
    pub nx: bool,
}

/// Why a walk failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// Page fault with this error code (CR2 = the linear address).
    PageFault(u32),
    /// A paging structure is not in RAM.
    NotRam(u64),
    /// Page-table entries kept changing under the A/D update; retry later.
    Busy,
}

/// Attempts at setting A/D bits before giving up with [`WalkError::Busy`].
const AD_RETRIES: u32 = 4;
/// PSE-36: bits 20:13 of a 4 MiB PDE hold physical address bits 39:32.
const PSE36_SHIFT: u32 = 13;
/// Number of PSE-36 high address bits.
const PSE36_BITS: u8 = 8;
/// Bit 21 of a 4 MiB PDE is reserved.
const PSE_4M_RSVD: u64 = 1 << 21;

/// One paging-structure entry a walk went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkStep {
    /// The entry's level: 1 is a page table entry; a PAE PDPTE is level 3.
    pub level: u8,
    /// Guest physical address of the entry.
    pub addr: u64,
    /// The entry, with the accessed/dirty bits the walk set.
    pub val: u64,
}

/// A successful walk in full: the translation and the entries it used,
/// top level first (what the shadow MMU builds its tables from). Paging
/// off: no entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// The translation.
    pub translation: Translation,
    steps: [WalkStep; PT64_ROOT_5LEVEL as usize],
    nsteps: u8,
}

impl Walk {
    /// The entries used, top level first; the last one maps the page.
    pub fn steps(&self) -> &[WalkStep] {
        let n = usize::from(self.nsteps).min(self.steps.len());
        self.steps.get(..n).unwrap_or(&[])
    }
}

/// Translate linear address `la` for `acc` under `cfg`, setting
/// accessed/dirty bits on success.
pub fn translate<M: GuestMemory>(
    mem: &mut M,
    cfg: &PagingConfig,
    la: u64,
    acc: Access,
) -> Result<Translation, WalkError> {
    walk(mem, cfg, la, acc).map(|w| w.translation)
}

/// Like [`translate`], with the entries the walk used.
pub fn walk<M: GuestMemory>(
    mem: &mut M,
    cfg: &PagingConfig,
    la: u64,
    acc: Access,
) -> Result<Walk, WalkError> {
    if cfg.levels == 0 {
        return Ok(Walk {
            translation: Translation {
                gpa: la,
                page_size: PAGE_SIZE,
                writable: true,
                user: true,
                nx: false,
            },
            steps: [WalkStep::default(); PT64_ROOT_5LEVEL as usize],
            nsteps: 0,
        });
    }
    let mut tries = 0;
    loop {
        match walk_once(mem, cfg, la, acc)? {
            Some(w) => return Ok(w),
            None => {
                tries += 1;
                if tries >= AD_RETRIES {
                    return Err(WalkError::Busy);
                }
            }
        }
    }
}

/// The error code of a page fault for `acc` under `cfg`: a protection
/// violation if `present`, a reserved-bit violation if `rsvd` (which
/// implies present), else a not-present page.
pub fn fault_code(cfg: &PagingConfig, acc: Access, present: bool, rsvd: bool) -> u32 {
    let wide = cfg.levels >= PT32E_ROOT_LEVEL;
    let mut code = 0;
    if present {
        code |= PFERR_PRESENT_MASK;
    }
    if rsvd {
        code |= PFERR_RSVD_MASK | PFERR_PRESENT_MASK;
    }
    if acc.write {
        code |= PFERR_WRITE_MASK;
    }
    if acc.user {
        code |= PFERR_USER_MASK;
    }
    if acc.fetch && ((wide && cfg.nxe) || cfg.smep) {
        code |= PFERR_FETCH_MASK;
    }
    code
}

/// Whether a present PAE PDPTE has a reserved bit set under `cfg` (then
/// every access through it is a reserved-bit page fault).
pub fn pdpte_reserved(cfg: &PagingConfig, pdpte: u64) -> bool {
    pdpte & (PDPTE_RESERVED_LOW | rsvd_phys_mask(cfg.maxphyaddr, PAE_TOP_BIT) | PT64_NX_MASK) != 0
}

/// The highest address-or-reserved bit of a PAE entry: bits 62:52 are
/// reserved in PAE paging (ignored in 4-level paging), as upstream's
/// `__reset_rsvds_bits_mask()` has it.
const PAE_TOP_BIT: u8 = 62;

/// Bits `maxphyaddr..=top` (`top` is 51, or 62 for PAE paging).
fn rsvd_phys_mask(maxphyaddr: u8, top: u8) -> u64 {
    let m = maxphyaddr.clamp(32, MAX_PHYS_ADDR_BITS);
    let high = (1u64 << (top.clamp(MAX_PHYS_ADDR_BITS - 1, PAE_TOP_BIT) + 1)) - 1;
    high & !((1u64 << m) - 1)
}

fn read_entry<M: GuestMemory>(mem: &mut M, addr: u64, wide: bool) -> Result<u64, WalkError> {
    if wide {
        let mut b = [0u8; 8];
        mem.read(addr, &mut b)
            .map_err(|_| WalkError::NotRam(addr))?;
        Ok(u64::from_le_bytes(b))
    } else {
        let mut b = [0u8; 4];
        mem.read(addr, &mut b)
            .map_err(|_| WalkError::NotRam(addr))?;
        Ok(u64::from(u32::from_le_bytes(b)))
    }
}

/// One walk. `Ok(None)` means an A/D update raced and the walk must be
/// repeated.
fn walk_once<M: GuestMemory>(
    mem: &mut M,
    cfg: &PagingConfig,
    la: u64,
    acc: Access,
) -> Result<Option<Walk>, WalkError> {
    let wide = cfg.levels >= PT32E_ROOT_LEVEL;
    let rsvd_phys = match cfg.levels {
        PT32E_ROOT_LEVEL => rsvd_phys_mask(cfg.maxphyaddr, PAE_TOP_BIT),
        l if l > PT32E_ROOT_LEVEL => rsvd_phys_mask(cfg.maxphyaddr, MAX_PHYS_ADDR_BITS - 1),
        _ => 0,
    };
    let nx_rsvd = if cfg.nxe { 0 } else { PT64_NX_MASK };
    let mut steps = [WalkStep::default(); PT64_ROOT_5LEVEL as usize];
    let mut nsteps = 0usize;
    // Entries whose accessed/dirty bits the walk maintains (not PDPTEs).
    let mut first_ad = 0usize;
    let mut writable = true;
    let mut user = true;
    let mut nx = false;
    let fault = |present: bool, rsvd: bool| -> WalkError {
        WalkError::PageFault(fault_code(cfg, acc, present, rsvd))
    };

    // Table base and the level we start at.
    let mut level = cfg.levels;
    let mut table = match cfg.levels {
        PT32_ROOT_LEVEL => cfg.cr3 & PT32_BASE_ADDR_MASK,
        PT32E_ROOT_LEVEL => {
            // The PDPT has 4 entries, indexed by bits 31:30.
            let idx = (la >> pt_level_shift(PT32E_ROOT_LEVEL, PT64_LEVEL_BITS)) & 3;
            let addr = (cfg.cr3 & PAE_CR3_MASK).wrapping_add(idx * 8);
            let pdpte = match cfg.pdptes {
                Some(p) => p.get(idx as usize).copied().unwrap_or(0),
                None => read_entry(mem, addr, true)?,
            };
            if let Some(s) = steps.first_mut() {
                *s = WalkStep {
                    level: PT32E_ROOT_LEVEL,
                    addr,
                    val: pdpte,
                };
                nsteps = 1;
            }
            first_ad = 1;
            if pdpte & PT_PRESENT_MASK == 0 {
                return Err(fault(false, false));
            }
            if pdpte_reserved(cfg, pdpte) {
                return Err(fault(true, true));
            }
            level = PT32E_ROOT_LEVEL - 1;
            pdpte & PT64_BASE_ADDR_MASK
        }
        _ => cfg.cr3 & PT64_BASE_ADDR_MASK & !rsvd_phys,
    };

    let (frame, page_shift) = loop {
        let idx_bits = if wide {
            PT64_LEVEL_BITS
        } else {
            PT32_LEVEL_BITS
        };
        let shift = pt_level_shift(level, idx_bits);
        let idx = (la >> shift) & ((1u64 << idx_bits) - 1);
        let addr = table.wrapping_add(idx * if wide { 8 } else { 4 });
        let e = read_entry(mem, addr, wide)?;
        if let Some(s) = steps.get_mut(nsteps) {
            *s = WalkStep {
                level,
                addr,
                val: e,
            };
            nsteps += 1;
        }
        if e & PT_PRESENT_MASK == 0 {
            return Err(fault(false, false));
        }
        if wide && e & (rsvd_phys | nx_rsvd) != 0 {
            return Err(fault(true, true));
        }
        writable &= e & PT_WRITABLE_MASK != 0;
        user &= e & PT_USER_MASK != 0;
        nx |= wide && cfg.nxe && e & PT64_NX_MASK != 0;
        let ps = e & PT_PAGE_SIZE_MASK != 0;
        if level == 1 {
            let f = if wide {
                e & PT64_BASE_ADDR_MASK
            } else {
                e & PT32_BASE_ADDR_MASK
            };
            break (f, PAGE_SHIFT);
        }
        if ps {
            if !wide {
                if cfg.pse {
                    // 4 MiB page, PSE-36 high bits.
                    let extra = cfg.maxphyaddr.saturating_sub(32).min(PSE36_BITS);
                    let hi_mask = (1u64 << extra) - 1;
                    let rsvd =
                        PSE_4M_RSVD | ((((1u64 << PSE36_BITS) - 1) & !hi_mask) << PSE36_SHIFT);
                    if e & rsvd != 0 {
                        return Err(fault(true, true));
                    }
                    let hi = (e >> PSE36_SHIFT) & hi_mask;
                    let frame = e & PT32_BASE_ADDR_MASK & !((1u64 << shift) - 1);
                    break (frame | (hi << 32), shift);
                }
                // PS ignored without CR4.PSE: a page table.
            } else {
                let shift_ok = level == 2 || (level == 3 && cfg.gbpages);
                if !shift_ok {
                    return Err(fault(true, true));
                }
                // Bits between the PAT bit and the page frame are reserved.
                let low_rsvd = ((1u64 << shift) - 1) & !((PT_DIR_PAT_MASK << 1) - 1);
                if e & low_rsvd != 0 {
                    return Err(fault(true, true));
                }
                break (e & PT64_BASE_ADDR_MASK & !((1u64 << shift) - 1), shift);
            }
        }
        table = if wide {
            e & PT64_BASE_ADDR_MASK
        } else {
            e & PT32_BASE_ADDR_MASK
        };
        level -= 1;
        if level == 0 {
            // Unreachable by construction; treat as a reserved-bit fault.
            return Err(fault(true, true));
        }
    };

    // Permission checks.
    if acc.user && !user {
        return Err(fault(true, false));
    }
    if acc.write && !writable && (acc.user || cfg.wp) {
        return Err(fault(true, false));
    }
    if acc.fetch {
        if nx {
            return Err(fault(true, false));
        }
        if !acc.user && user && cfg.smep {
            return Err(fault(true, false));
        }
    } else if !acc.user && user && cfg.smap && !acc.ac {
        return Err(fault(true, false));
    }

    // Accessed/dirty bits.
    let last = nsteps.saturating_sub(1);
    for (i, s) in steps.iter_mut().enumerate().take(nsteps).skip(first_ad) {
        let mut want = s.val | PT_ACCESSED_MASK;
        if i == last && acc.write {
            want |= PT_DIRTY_MASK;
        }
        if want == s.val {
            continue;
        }
        let ok = if wide {
            mem.cmpxchg(s.addr, &s.val.to_le_bytes(), &want.to_le_bytes())
        } else {
            mem.cmpxchg(
                s.addr,
                &(s.val as u32).to_le_bytes(),
                &(want as u32).to_le_bytes(),
            )
        }
        .map_err(|_| WalkError::NotRam(s.addr))?;
        if !ok {
            return Ok(None);
        }
        s.val = want;
    }

    let size = 1u64 << page_shift;
    let gpa = frame | (la & (size - 1));
    Ok(Some(Walk {
        translation: Translation {
            gpa,
            page_size: size,
            writable,
            user,
            nx,
        },
        steps,
        nsteps: nsteps as u8,
    }))
}
