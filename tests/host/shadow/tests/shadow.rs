//! The shadow MMU's pure half (pure/shadow): shadow leaves give the
//! hardware no access the guest's tables forbid, and let through the
//! access that faulted; the shadow tree's geometry (roots, children,
//! quadrants, direct pages, indices) agrees with the guest walk on random
//! page tables of every mode; guest-table writes reach the shadow entries
//! they may change.

mod common;
use common::*;
use rkvm_shadow::defs::paging::{PT64_NX_MASK, PT_DIRTY_MASK, PT_USER_MASK, PT_WRITABLE_MASK};
use rkvm_shadow::emulate::paging::{self, Access, PagingConfig};
use rkvm_shadow::shadow::*;

/// An access kind: (write, fetch, user, RFLAGS.AC for a supervisor access).
#[derive(Clone, Copy, Debug)]
struct Kind {
    write: bool,
    fetch: bool,
    user: bool,
    ac: bool,
}

fn kinds() -> Vec<Kind> {
    let mut v = vec![];
    for user in [false, true] {
        for (write, fetch) in [(false, false), (true, false), (false, true)] {
            for ac in [false, true] {
                if user && ac {
                    continue;
                }
                v.push(Kind {
                    write,
                    fetch,
                    user,
                    ac,
                });
            }
        }
    }
    v
}

/// The guest's permission check for a page it maps with `access`.
fn guest_allows(access: u8, k: Kind, wp: bool, smep: bool, smap: bool) -> bool {
    let (w, u, x) = (
        access & ACC_WRITE != 0,
        access & ACC_USER != 0,
        access & ACC_EXEC != 0,
    );
    if k.user {
        return u && (!k.write || w) && (!k.fetch || x);
    }
    !(k.write && !w && wp)
        && !(k.fetch && !x)
        && !(k.fetch && u && smep)
        && !(!k.fetch && u && smap && !k.ac)
}

/// The hardware's check of a shadow leaf (non-leaf shadow entries allow
/// everything): CR0.WP=1, the guest's SMEP and SMAP, EFER.NXE=1.
fn hw_allows(spte: u64, k: Kind, smep: bool, smap: bool) -> bool {
    let w = spte & PT_WRITABLE_MASK != 0;
    let u = spte & PT_USER_MASK != 0;
    let x = spte & PT64_NX_MASK == 0;
    if k.user {
        return u && (!k.write || w) && (!k.fetch || x);
    }
    !(k.write && !w)
        && !(k.fetch && !x)
        && !(k.fetch && u && smep)
        && !(!k.fetch && u && smap && !k.ac)
}

/// Every combination of guest permissions, dirty bit, paging controls,
/// host and protection state, and faulting access the guest allows: the
/// leaf lets the faulting access through (unless it is a write the host
/// or the protection forbids), never lets a write through to a page whose
/// guest entry is clean, and allows no access the guest forbids -- but
/// in the documented corner upstream shares (CR0.WP=0 with SMAP: a page
/// made supervisor-writable for a supervisor write becomes a supervisor
/// page, so later supervisor data accesses with RFLAGS.AC=0 do not fault).
#[test]
fn leaves_are_sound_and_make_progress() {
    let mut checked = 0;
    for access in 0..8u8 {
        for bits in 0..64u32 {
            let b = |i: u32| bits & (1 << i) != 0;
            let (dirty, wp, smep, smap, host_writable, protected) =
                (b(0), b(1), b(2), b(3), b(4), b(5));
            for f in kinds() {
                if !guest_allows(access, f, wp, smep, smap) {
                    continue;
                }
                let input = LeafInput {
                    pfn: 0x1234,
                    access,
                    // The walk of a write sets the dirty bit.
                    dirty: dirty || f.write,
                    write: f.write,
                    user: f.user,
                    wp,
                    smep,
                    host_writable,
                    protected,
                };
                let spte = leaf(&input);
                assert_eq!(spte & 0x000f_ffff_ffff_f000, 0x1234 << 12);
                let ctx = format!("access {access:03b} dirty {dirty} wp {wp} smep {smep} smap {smap} host_writable {host_writable} protected {protected} fault {f:?}: spte {spte:#x}");
                let blocked = f.write && (protected || !host_writable);
                assert_eq!(hw_allows(spte, f, smep, smap), !blocked, "progress: {ctx}");
                if spte & PT_WRITABLE_MASK != 0 {
                    assert!(
                        input.dirty && spte & PT_DIRTY_MASK != 0,
                        "writable but clean: {ctx}"
                    );
                    assert!(
                        host_writable && !protected,
                        "writable though protected: {ctx}"
                    );
                }
                for k in kinds() {
                    if hw_allows(spte, k, smep, smap) && !guest_allows(access, k, wp, smep, smap) {
                        let corner =
                            !wp && smap && !k.user && !k.fetch && !k.ac && access & ACC_USER != 0;
                        assert!(corner, "unsound for {k:?}: {ctx}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 1000);
}

/// CR0.WP=0: a supervisor write to a read-only user page makes it
/// writable and supervisor-only, not executable with SMEP (upstream's
/// FNAME(page_fault)); a user access then faults and gets the user
/// mapping back.
#[test]
fn wp0_supervisor_write() {
    let base = LeafInput {
        pfn: 1,
        access: ACC_USER | ACC_EXEC,
        dirty: true,
        write: true,
        user: false,
        wp: false,
        smep: false,
        host_writable: true,
        protected: false,
    };
    assert_eq!(leaf_access(&base), ACC_WRITE | ACC_EXEC);
    assert_eq!(leaf_access(&LeafInput { smep: true, ..base }), ACC_WRITE);
    let s = leaf(&base);
    assert!(s & PT_WRITABLE_MASK != 0 && s & PT_USER_MASK == 0 && s & PT64_NX_MASK == 0);
    // A read, or WP=1, or a user write: the guest's own permissions.
    assert_eq!(
        leaf_access(&LeafInput {
            write: false,
            ..base
        }),
        ACC_USER | ACC_EXEC
    );
    assert_eq!(
        leaf_access(&LeafInput { wp: true, ..base }),
        ACC_USER | ACC_EXEC
    );
    assert_eq!(
        leaf_access(&LeafInput { user: true, ..base }),
        ACC_USER | ACC_EXEC
    );
}

fn frames(level: u8) -> u64 {
    1 << (9 * (u32::from(level) - 1))
}

/// Walks `la` and follows the shadow tree down to the leaf: every
/// indirect shadow page shadows the guest table of its level, and a
/// write to the guest entry the walk used there reaches the shadow entry
/// `la` uses (index, quadrant, 4-byte entries); every direct page maps
/// the frames the guest maps there. Returns false if the walk faulted.
fn check_tree(ram: &mut Ram, cfg: &PagingConfig, pdptes: &[u64; 4], la: u64, acc: Access) -> bool {
    let Ok(w) = paging::walk(ram, cfg, la, acc) else {
        return false;
    };
    let path = GuestPath::new(cfg, &w, la).unwrap();
    assert_eq!(path.gfn(), w.translation.gpa >> 12);
    let base = Role::base(cfg);
    let mode = GuestMode::of(cfg).unwrap();
    let ctx = || format!("cfg {cfg:x?} la {la:#x} walk {w:x?}");
    let (mut sp, top) = if mode.pae_root() {
        let Some(c) = pae_root_child(cfg, pdptes, base, pae_index(la)) else {
            panic!("no PAE root entry for a successful walk: {}", ctx());
        };
        (c, 2)
    } else {
        (root4(cfg, base).unwrap(), 4)
    };
    assert_eq!(sp.role.level(), top);
    let mut level = top;
    loop {
        let step = w.steps().iter().find(|s| s.level == level);
        if sp.role.direct() {
            // Maps frames linearly from sp.gfn.
            let want = if mode == GuestMode::NonPaging {
                la >> 12
            } else {
                path.gfn()
            };
            let first = sp.gfn + index(la, level) as u64 * frames(level);
            assert!(
                want >= first && want < first + frames(level),
                "direct page at level {level}: {}",
                ctx()
            );
        } else {
            let s = step.unwrap_or_else(|| panic!("no guest entry at level {level}: {}", ctx()));
            assert_eq!(
                sp.gfn,
                s.addr >> 12,
                "shadowed table at level {level}: {}",
                ctx()
            );
            let size = if sp.role.gpte4() { 4 } else { 8 };
            let (a, b) = written(sp.role, s.addr & 0xfff, size)
                .unwrap_or_else(|| panic!("entry not covered: {}", ctx()));
            let i = index(la, level);
            assert!(
                a <= i && i <= b,
                "write of the guest entry misses shadow entry {i} ({a}..={b}) at level {level}: {}",
                ctx()
            );
            // And a write next to it does not reach it.
            if let Some((c, d)) = written(sp.role, (s.addr & 0xfff) ^ size, size) {
                assert!(
                    !(c <= i && i <= d),
                    "neighbour write reaches entry {i}: {}",
                    ctx()
                );
            }
        }
        if level == 1 {
            break;
        }
        level -= 1;
        sp = path.child(base, level);
        assert_eq!(sp.role.level(), level);
    }
    true
}

fn tree_mode(levels: u8, seed: u64) {
    let mut r = Rng(seed);
    let mut ok = 0;
    for _ in 0..4000 {
        let cfg = random_cfg(&mut r, levels, 8);
        let mut ram = Ram::new(8);
        fill(&mut r, &mut ram, levels >= 3, 8);
        let mut pdptes = [0u64; 4];
        if levels == 3 {
            for (j, e) in pdptes.iter_mut().enumerate() {
                let a = (cfg.cr3 & 0xffff_ffe0) + 8 * j as u64;
                *e = ram.get(a, true).unwrap() & 0x000f_ffff_ffff_f019;
                ram.set(a, true, *e);
            }
        }
        let cfg = PagingConfig {
            pdptes: (levels == 3).then_some(pdptes),
            ..cfg
        };
        for _ in 0..8 {
            let la = match levels {
                4 => ((r.next() << 16) as i64 >> 16) as u64,
                _ => r.next() & 0xffff_ffff,
            };
            if check_tree(&mut ram, &cfg, &pdptes, la, random_access(&mut r)) {
                ok += 1;
            }
        }
    }
    assert!(ok > 500, "only {ok} successful walks");
}

#[test]
fn tree_paging_off() {
    tree_mode(0, 10);
}

#[test]
fn tree_bits32() {
    tree_mode(2, 11);
}

#[test]
fn tree_pae() {
    tree_mode(3, 12);
}

#[test]
fn tree_long() {
    tree_mode(4, 13);
}

/// Shadow pages are shared only when everything that shapes their
/// entries is the same.
#[test]
fn roles() {
    let cfg = |levels, wp, smep, smap, nxe| PagingConfig {
        levels,
        cr3: 0x5000,
        pse: true,
        wp,
        nxe,
        smep,
        smap,
        pcide: false,
        maxphyaddr: 48,
        gbpages: true,
        pdptes: None,
    };
    let a = Role::base(&cfg(4, true, false, false, true));
    assert_ne!(a, Role::base(&cfg(4, false, false, false, true)));
    assert_ne!(a, Role::base(&cfg(4, true, true, false, true)));
    assert_ne!(a, Role::base(&cfg(4, true, false, false, false)));
    assert_ne!(a, Role::base(&cfg(2, true, false, false, true)));
    // SMAP matters only with WP=0.
    assert_eq!(a, Role::base(&cfg(4, true, false, true, true)));
    assert_ne!(
        Role::base(&cfg(4, false, false, true, true)),
        Role::base(&cfg(4, false, false, false, true))
    );
    // PAE and long-mode page directories have the same entries.
    assert_eq!(Role::base(&cfg(3, true, false, false, true)), a);
    let r4 = root4(&cfg(4, true, false, false, true), a).unwrap();
    assert_eq!(
        (r4.gfn, r4.role.level(), r4.role.direct(), r4.role.access()),
        (5, 4, false, ACC_ALL)
    );
    assert!(root4(&cfg(3, true, false, false, true), a).is_none());
}

/// A 32-bit page directory is shadowed by four pages (one per GiB), each
/// guest entry by two shadow entries; a page table by two.
#[test]
fn written_32bit_quadrants() {
    let c = PagingConfig {
        levels: 2,
        cr3: 0x3000,
        pse: true,
        wp: true,
        nxe: false,
        smep: false,
        smap: false,
        pcide: false,
        maxphyaddr: 40,
        gbpages: false,
        pdptes: None,
    };
    let base = Role::base(&c);
    let pd: Vec<Child> = (0..4)
        .map(|i| pae_root_child(&c, &[0; 4], base, i).unwrap())
        .collect();
    for (q, ch) in pd.iter().enumerate() {
        assert_eq!(
            (ch.gfn, ch.role.quadrant() as usize, ch.role.level()),
            (3, q, 2)
        );
        // Guest PDE 256q + 5 is shadow entries 10, 11 of quadrant q only.
        let off = (256 * q as u64 + 5) * 4;
        assert_eq!(written(ch.role, off, 4), Some((10, 11)));
        for (o, other) in pd.iter().enumerate() {
            if o != q {
                assert_eq!(written(other.role, off, 4), None);
            }
        }
    }
    // A 16-byte write over guest PDEs 255..=258 crosses quadrants 0 and 1.
    assert_eq!(written(pd[0].role, 255 * 4, 16), Some((510, 511)));
    assert_eq!(written(pd[1].role, 255 * 4, 16), Some((0, 5)));
    // Page tables: quadrant 1 holds guest PTEs 512..=1023.
    let pt1 = Role::base(&c);
    let mut ram = Ram::new(8);
    ram.set(0x3000 + 4 * 1, false, 0x4007); // PDE 1 -> PT at 0x4000
    ram.set(0x4000 + 4 * 600, false, 0x7007);
    let la = (1 << 22) | (600 << 12);
    let w = paging::walk(&mut ram, &c, la, Access::default()).unwrap();
    let ch = GuestPath::new(&c, &w, la).unwrap().child(pt1, 1);
    assert_eq!(
        (ch.gfn, ch.role.quadrant(), ch.role.direct()),
        (4, 1, false)
    );
    assert_eq!(written(ch.role, 600 * 4, 4), Some((88, 88)));
    assert_eq!(written(ch.role, 100 * 4, 4), None);
    // Direct pages are not written through.
    let d = Child {
        gfn: 0,
        role: GuestPath::new(&c, &w, la).unwrap().child(pt1, 1).role,
    };
    assert!(!d.role.direct());
}

/// Large guest pages: direct children keyed by the frame they start at,
/// with the large page's permissions.
#[test]
fn large_pages_are_direct() {
    let mut ram = Ram::new(8);
    // Long mode: PML4 at 0x1000 -> PDPT at 0x2000; PDPTE 1 is a 1 GiB
    // read-only user page at 3 GiB; PDPTE 0 -> PD at 0x3000 whose entry 3
    // is a 2 MiB no-execute page at 14 MiB.
    ram.set(0x1000, true, 0x2007);
    ram.set(0x2000 + 8, true, 0xc000_0000 | 0x85);
    ram.set(0x2000, true, 0x3007);
    ram.set(0x3000 + 3 * 8, true, (1 << 63) | 0xe0_0000 | 0x83);
    let c = PagingConfig {
        levels: 4,
        cr3: 0x1000,
        pse: false,
        wp: true,
        nxe: true,
        smep: false,
        smap: false,
        pcide: false,
        maxphyaddr: 48,
        gbpages: true,
        pdptes: None,
    };
    let base = Role::base(&c);
    let la = (1 << 30) | (5 << 21) | (7 << 12);
    let w = paging::walk(&mut ram, &c, la, Access::default()).unwrap();
    let p = GuestPath::new(&c, &w, la).unwrap();
    assert_eq!(p.gfn(), (0xc000_0000 >> 12) + 5 * 512 + 7);
    assert_eq!(p.access(), ACC_USER | ACC_EXEC);
    let pd = p.child(base, 2);
    assert!(pd.role.direct());
    assert_eq!(
        (pd.gfn, pd.role.access()),
        (0xc000_0000 >> 12, ACC_USER | ACC_EXEC)
    );
    let pt = p.child(base, 1);
    assert!(pt.role.direct());
    assert_eq!(pt.gfn, (0xc000_0000 >> 12) + 5 * 512);
    let la = (3 << 21) | (9 << 12);
    let w = paging::walk(&mut ram, &c, la, Access::default()).unwrap();
    let p = GuestPath::new(&c, &w, la).unwrap();
    assert!(!p.child(base, 2).role.direct());
    let pt = p.child(base, 1);
    assert!(pt.role.direct());
    // The 2 MiB entry has no U/S bit.
    assert_eq!((pt.gfn, pt.role.access()), (0xe00, ACC_WRITE));
}
