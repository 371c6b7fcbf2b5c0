//! Guest page-table walker: 32-bit (2-level, PSE/PSE-36), PAE (3-level),
//! 4-level and 5-level paging, with NX, SMEP, SMAP, U/S, R/W, CR0.WP,
//! reserved-bit checks and accessed/dirty bit updates.
//!
//! Its API is independent of the instruction emulator so the MMU can use
//! it too: build a [`PagingConfig`] (e.g. with [`PagingConfig::from_regs`])
//! and call [`translate`] with a [`GuestMemory`] that reads the guest page
//! tables.

use super::regs::{cr0, cr4, efer, page, pfec, pte};
use super::GuestMemory;

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
        let levels = if cr0v & cr0::PG == 0 {
            0
        } else if eferv & efer::LMA != 0 {
            if cr4v & cr4::LA57 != 0 {
                5
            } else {
                4
            }
        } else if cr4v & cr4::PAE != 0 {
            3
        } else {
            2
        };
        PagingConfig {
            levels,
            cr3,
            pse: cr4v & cr4::PSE != 0,
            wp: cr0v & cr0::WP != 0,
            nxe: eferv & efer::NXE != 0,
            smep: cr4v & cr4::SMEP != 0,
            smap: cr4v & cr4::SMAP != 0,
            pcide: cr4v & cr4::PCIDE != 0,
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
/// Bits of a 32-bit paging entry holding the next table / 4 KiB frame.
const FRAME_MASK_32: u64 = 0xFFFF_F000;
/// PAE CR3: PDPT base bits 31:5.
const PAE_CR3_MASK: u64 = 0xFFFF_FFE0;
/// Reserved bits of a PAE PDPTE besides the physical-address bits.
const PDPTE_RSVD: u64 = (3 << 1) | (0xF << 5);
/// Bits 51:12 of a 64-bit entry.
const FRAME_MASK_64: u64 = 0x000F_FFFF_FFFF_F000;
/// Highest physical address bit a 64-bit entry can hold.
const MAX_PA_BITS: u8 = 52;
/// PSE-36: bits 20:13 of a 4 MiB PDE hold physical address bits 39:32.
const PSE36_SHIFT: u32 = 13;
/// Number of PSE-36 high address bits.
const PSE36_BITS: u8 = 8;
/// Bit 21 of a 4 MiB PDE is reserved.
const PSE_4M_RSVD: u64 = 1 << 21;

/// One step of a walk: where the entry lives and what it was.
#[derive(Clone, Copy, Default)]
struct Step {
    addr: u64,
    val: u64,
    wide: bool,
}

/// Translate linear address `la` for `acc` under `cfg`, setting
/// accessed/dirty bits on success.
pub fn translate<M: GuestMemory>(
    mem: &mut M,
    cfg: &PagingConfig,
    la: u64,
    acc: Access,
) -> Result<Translation, WalkError> {
    if cfg.levels == 0 {
        return Ok(Translation {
            gpa: la,
            page_size: page::SIZE,
            writable: true,
            user: true,
            nx: false,
        });
    }
    let mut tries = 0;
    loop {
        match walk_once(mem, cfg, la, acc)? {
            Some(t) => return Ok(t),
            None => {
                tries += 1;
                if tries >= AD_RETRIES {
                    return Err(WalkError::Busy);
                }
            }
        }
    }
}

fn rsvd_phys_mask(maxphyaddr: u8) -> u64 {
    let m = maxphyaddr.clamp(32, MAX_PA_BITS);
    // Bits maxphyaddr..=51.
    let high = (1u64 << MAX_PA_BITS) - 1;
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
) -> Result<Option<Translation>, WalkError> {
    let wide = cfg.levels >= 3;
    let rsvd_phys = if wide {
        rsvd_phys_mask(cfg.maxphyaddr)
    } else {
        0
    };
    let nx_rsvd = if cfg.nxe { 0 } else { pte::NX };
    let mut steps = [Step::default(); 5];
    let mut nsteps = 0usize;
    let mut writable = true;
    let mut user = true;
    let mut nx = false;
    let fault = |present: bool, rsvd: bool| -> WalkError {
        let mut code = 0;
        if present {
            code |= pfec::PRESENT;
        }
        if rsvd {
            code |= pfec::RSVD | pfec::PRESENT;
        }
        if acc.write {
            code |= pfec::WRITE;
        }
        if acc.user {
            code |= pfec::USER;
        }
        if acc.fetch && ((wide && cfg.nxe) || cfg.smep) {
            code |= pfec::FETCH;
        }
        WalkError::PageFault(code)
    };

    // Table base and the level we start at.
    let mut level = cfg.levels;
    let mut table = match cfg.levels {
        2 => cfg.cr3 & FRAME_MASK_32,
        3 => {
            let idx = (la >> 30) & 3;
            let pdpte = match cfg.pdptes {
                Some(p) => p.get(idx as usize).copied().unwrap_or(0),
                None => read_entry(mem, (cfg.cr3 & PAE_CR3_MASK).wrapping_add(idx * 8), true)?,
            };
            if pdpte & pte::P == 0 {
                return Err(fault(false, false));
            }
            if pdpte & (PDPTE_RSVD | rsvd_phys | pte::NX) != 0 {
                return Err(fault(true, true));
            }
            level = 2;
            pdpte & FRAME_MASK_64
        }
        _ => cfg.cr3 & FRAME_MASK_64 & !rsvd_phys,
    };

    let (frame, page_shift) = loop {
        let (shift, idx_bits) = if wide {
            (12 + 9 * (u32::from(level) - 1), 9)
        } else {
            (12 + 10 * (u32::from(level) - 1), 10)
        };
        let idx = (la >> shift) & ((1u64 << idx_bits) - 1);
        let addr = table.wrapping_add(idx * if wide { 8 } else { 4 });
        let e = read_entry(mem, addr, wide)?;
        if let Some(s) = steps.get_mut(nsteps) {
            *s = Step { addr, val: e, wide };
            nsteps += 1;
        }
        if e & pte::P == 0 {
            return Err(fault(false, false));
        }
        if wide && e & (rsvd_phys | nx_rsvd) != 0 {
            return Err(fault(true, true));
        }
        writable &= e & pte::RW != 0;
        user &= e & pte::US != 0;
        nx |= wide && cfg.nxe && e & pte::NX != 0;
        let ps = e & pte::PS != 0;
        if level == 1 {
            let f = if wide {
                e & FRAME_MASK_64
            } else {
                e & FRAME_MASK_32
            };
            break (f, 12u32);
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
                    break ((e & 0xFFC0_0000) | (hi << 32), 22);
                }
                // PS ignored without CR4.PSE: a page table.
            } else {
                let shift_ok = level == 2 || (level == 3 && cfg.gbpages);
                if !shift_ok {
                    return Err(fault(true, true));
                }
                // Bits between the PAT bit and the page frame are reserved.
                let low_rsvd = ((1u64 << shift) - 1) & !((1u64 << 13) - 1);
                if e & low_rsvd != 0 {
                    return Err(fault(true, true));
                }
                break (e & FRAME_MASK_64 & !((1u64 << shift) - 1), shift);
            }
        }
        table = if wide {
            e & FRAME_MASK_64
        } else {
            e & FRAME_MASK_32
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
    for (i, s) in steps.iter().take(nsteps).enumerate() {
        let mut want = s.val | pte::A;
        if i == last && acc.write {
            want |= pte::D;
        }
        if want == s.val {
            continue;
        }
        let ok = if s.wide {
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
    }

    let size = 1u64 << page_shift;
    let gpa = frame | (la & (size - 1));
    Ok(Some(Translation {
        gpa,
        page_size: size,
        writable,
        user,
        nx,
    }))
}
