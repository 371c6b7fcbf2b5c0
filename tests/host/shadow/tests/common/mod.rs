//! Shared by the shadow tests: a small PRNG, guest RAM, and a reference
//! page walk written from the SDM/APM independently of pure/emulate.

#![allow(dead_code)]

use rkvm_shadow::emulate::paging::{Access, PagingConfig};
use rkvm_shadow::emulate::{GuestMemory, MemError};

/// xorshift64*: deterministic, seedable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True with probability 1/n.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
    pub fn bit(&mut self) -> bool {
        self.next() & 1 != 0
    }
}

/// Guest RAM: physical [0, len); anything above is not RAM.
#[derive(Clone, PartialEq, Eq)]
pub struct Ram(pub Vec<u8>);

impl Ram {
    pub fn new(frames: usize) -> Self {
        Ram(vec![0; frames * 4096])
    }
    pub fn get(&self, addr: u64, wide: bool) -> Option<u64> {
        let n = if wide { 8 } else { 4 };
        let a = usize::try_from(addr).ok()?;
        let b = self.0.get(a..a.checked_add(n)?)?;
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(b);
        Some(u64::from_le_bytes(v))
    }
    pub fn set(&mut self, addr: u64, wide: bool, val: u64) {
        let n = if wide { 8 } else { 4 };
        let a = addr as usize;
        self.0[a..a + n].copy_from_slice(&val.to_le_bytes()[..n]);
    }
}

impl GuestMemory for Ram {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let a = usize::try_from(gpa).map_err(|_| MemError::Mmio)?;
        let src = self.0.get(a..a + buf.len()).ok_or(MemError::Mmio)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        let a = usize::try_from(gpa).map_err(|_| MemError::Mmio)?;
        let dst = self.0.get_mut(a..a + data.len()).ok_or(MemError::Mmio)?;
        dst.copy_from_slice(data);
        Ok(())
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError> {
        let a = usize::try_from(gpa).map_err(|_| MemError::Mmio)?;
        let cur = self.0.get_mut(a..a + old.len()).ok_or(MemError::Mmio)?;
        if cur != old {
            return Ok(false);
        }
        cur.copy_from_slice(new);
        Ok(true)
    }
}

/// Bits `lo..=hi`.
pub fn bits(lo: u32, hi: u32) -> u64 {
    (((1u128 << (hi + 1)) - (1u128 << lo)) & u64::MAX as u128) as u64
}

/// What the reference walk found.
#[derive(Debug, PartialEq, Eq)]
pub enum RefResult {
    /// The translation; the entries used (level, address), top first.
    Ok { gpa: u64, path: Vec<(u8, u64)> },
    /// #PF with this error code.
    Fault(u32),
    /// A paging structure outside RAM.
    NotRam,
}

/// The architectural walk of `la` for `a` (Intel SDM vol. 3 ch. 4, AMD
/// APM vol. 2 ch. 5), with upstream KVM's reserved bits where the two
/// manuals leave room (PAE bits 62:52 reserved; 4 MiB PSE pages take
/// physical address bits 39:32 from bits 20:13, as far as MAXPHYADDR
/// goes, bit 21 reserved). Sets accessed and dirty bits in `ram`.
pub fn ref_walk(ram: &mut Ram, c: &PagingConfig, la: u64, a: Access) -> RefResult {
    if c.levels == 0 {
        return RefResult::Ok {
            gpa: la,
            path: vec![],
        };
    }
    let pae = c.levels == 3;
    let long = c.levels == 4;
    let wide = c.levels >= 3;
    let m = u32::from(c.maxphyaddr.clamp(32, 52));
    let hi = if long {
        bits(m, 51)
    } else if pae {
        bits(m, 62)
    } else {
        0
    };
    let nx_rsvd = if wide && !c.nxe { 1u64 << 63 } else { 0 };
    let code = |present: bool, rsvd: bool| -> u32 {
        let mut e = 0;
        if present || rsvd {
            e |= 1;
        }
        if a.write {
            e |= 2;
        }
        if a.user {
            e |= 4;
        }
        if rsvd {
            e |= 8;
        }
        if a.fetch && ((wide && c.nxe) || c.smep) {
            e |= 16;
        }
        e
    };
    let (mut w, mut u, mut xd) = (true, true, false);
    // (level, address, value, takes A/D)
    let mut path: Vec<(u8, u64, u64, bool)> = vec![];
    let mut level;
    let mut table;
    if pae {
        let idx = (la >> 30) & 3;
        let addr = (c.cr3 & 0xffff_ffe0) + idx * 8;
        let e = match c.pdptes {
            Some(p) => p[idx as usize],
            None => match ram.get(addr, true) {
                Some(e) => e,
                None => return RefResult::NotRam,
            },
        };
        path.push((3, addr, e, false));
        if e & 1 == 0 {
            return RefResult::Fault(code(false, false));
        }
        if e & ((1 << 63) | hi | bits(5, 8) | bits(1, 2)) != 0 {
            return RefResult::Fault(code(true, true));
        }
        table = e & bits(12, 51);
        level = 2u8;
    } else if long {
        table = c.cr3 & bits(12, 51) & !hi;
        level = 4;
    } else {
        table = c.cr3 & 0xffff_f000;
        level = 2;
    }
    let gpa = loop {
        let shift = if wide {
            12 + 9 * (u32::from(level) - 1)
        } else {
            12 + 10 * (u32::from(level) - 1)
        };
        let idx = (la >> shift) & if wide { 511 } else { 1023 };
        let addr = table + idx * if wide { 8 } else { 4 };
        let Some(e) = ram.get(addr, wide) else {
            return RefResult::NotRam;
        };
        path.push((level, addr, e, true));
        if e & 1 == 0 {
            return RefResult::Fault(code(false, false));
        }
        let ps = e & 0x80 != 0;
        let mut rs = hi | nx_rsvd;
        if long && level == 4 {
            rs |= 0x80;
        }
        if long && level == 3 && ps {
            rs |= if c.gbpages { bits(13, 29) } else { 0x80 };
        }
        if wide && level == 2 && ps {
            rs |= bits(13, 20);
        }
        let pse4m = !wide && level == 2 && ps && c.pse;
        if pse4m {
            rs |= 1 << 21;
            let usable = (u32::from(c.maxphyaddr).saturating_sub(32)).min(8);
            if usable < 8 {
                rs |= bits(13 + usable, 20);
            }
        }
        if e & rs != 0 {
            return RefResult::Fault(code(true, true));
        }
        w &= e & 2 != 0;
        u &= e & 4 != 0;
        if wide && c.nxe && e >> 63 != 0 {
            xd = true;
        }
        if level == 1 || (ps && wide) || pse4m {
            let base = if pse4m {
                (e & 0xffc0_0000) | (((e >> 13) & 0xff) << 32)
            } else if wide {
                e & bits(shift, 51)
            } else {
                e & 0xffff_f000
            };
            break base | (la & ((1u64 << shift) - 1));
        }
        table = if wide {
            e & bits(12, 51)
        } else {
            e & 0xffff_f000
        };
        level -= 1;
    };
    let fail = if a.user {
        !u || (a.write && !w) || (a.fetch && xd)
    } else {
        (a.write && !w && c.wp)
            || (a.fetch && xd)
            || (a.fetch && u && c.smep)
            || (!a.fetch && u && c.smap && !a.ac)
    };
    if fail {
        return RefResult::Fault(code(true, false));
    }
    let n = path.len();
    for (i, &(_, addr, e, ad)) in path.iter().enumerate() {
        if !ad {
            continue;
        }
        let mut v = e | 0x20;
        if i == n - 1 && a.write {
            v |= 0x40;
        }
        ram.set(addr, wide, v);
    }
    RefResult::Ok {
        gpa,
        path: path.iter().map(|&(l, a, _, _)| (l, a)).collect(),
    }
}

/// A random paging configuration of `levels` (0, 2, 3, 4), CR3 in
/// `ram_frames`.
pub fn random_cfg(r: &mut Rng, levels: u8, ram_frames: u64) -> PagingConfig {
    let maxphyaddr = [36u8, 40, 46, 48, 52][r.below(5) as usize];
    let frame = r.below(ram_frames);
    let cr3 = match levels {
        3 => (frame << 12) | (r.below(128) << 5),
        _ => frame << 12,
    };
    PagingConfig {
        levels,
        cr3,
        pse: r.bit(),
        wp: r.bit(),
        nxe: r.bit(),
        smep: r.bit(),
        smap: r.bit(),
        pcide: false,
        maxphyaddr,
        gbpages: r.bit(),
        pdptes: None,
    }
}

/// A random paging-structure entry: a frame below `frames` (some not
/// RAM), random flags, now and then a reserved or PSE-36 bit.
pub fn random_entry(r: &mut Rng, wide: bool, frames: u64) -> u64 {
    let mut e = r.below(frames) << 12;
    let flags = r.next();
    e |= flags & 0x1ff; // P, RW, US, PWT, PCD, A, D, PS, G
    if r.below(8) != 0 {
        e |= 1;
    }
    if r.below(4) != 0 {
        e &= !0x80;
    }
    if r.one_in(6) {
        // Large-page address bits, PSE-36 bits, PAT.
        e |= r.below(1 << 9) << 12;
    }
    if wide {
        if r.bit() {
            e |= 1 << 63;
        }
        if r.one_in(12) {
            e |= 1 << (33 + r.below(30));
        }
    } else {
        e &= 0xffff_ffff;
    }
    e
}

/// Fills every frame of `ram` with random entries.
pub fn fill(r: &mut Rng, ram: &mut Ram, wide: bool, frames: u64) {
    let n = if wide { 8 } else { 4 };
    for off in (0..ram.0.len()).step_by(n) {
        let e = random_entry(r, wide, frames);
        ram.set(off as u64, wide, e);
    }
}

/// A random access kind.
pub fn random_access(r: &mut Rng) -> Access {
    let fetch = r.one_in(3);
    let write = !fetch && r.bit();
    let user = r.bit();
    Access {
        write,
        fetch,
        user,
        implicit: false,
        ac: !user && r.bit(),
    }
}
