//! The guest page-table walker (pure/emulate/paging.rs, shared by the
//! emulator and the shadow MMU) against the reference walk of
//! tests/common, on random page tables of every paging mode: the same
//! translation through the same entries, the same accessed/dirty bits
//! left in memory, or the same #PF error code and nothing written.

mod common;
use common::*;
use rkvm_shadow::emulate::paging::{self, WalkError};

const RAM_FRAMES: u64 = 8;
/// Entries point to frames up to here: some are not RAM.
const FRAMES: u64 = 10;

fn run(levels: u8, seed: u64, iters: u32) {
    let mut r = Rng(seed);
    let wide = levels >= 3;
    let mut faults = 0u32;
    let mut oks = 0u32;
    for i in 0..iters {
        let mut cfg = random_cfg(&mut r, levels, RAM_FRAMES);
        let mut ram = Ram::new(RAM_FRAMES as usize);
        fill(&mut r, &mut ram, wide, FRAMES);
        if levels == 3 {
            // Mostly valid PDPTEs (random ones nearly always have reserved bits).
            for j in 0..4u64 {
                let a = (cfg.cr3 & 0xffff_ffe0) + 8 * j;
                let e = ram.get(a, true).unwrap();
                if !r.one_in(4) {
                    ram.set(a, true, e & 0x000f_ffff_ffff_f019);
                }
            }
        }
        if levels == 3 && r.bit() {
            // The PDPTEs the CPU loaded at the last CR3 write.
            let mut p = [0u64; 4];
            for (j, e) in p.iter_mut().enumerate() {
                *e = ram
                    .get((cfg.cr3 & 0xffff_ffe0) + 8 * j as u64, true)
                    .unwrap();
            }
            cfg.pdptes = Some(p);
        }
        for _ in 0..8 {
            let la = match levels {
                4 => ((r.next() << 16) as i64 >> 16) as u64,
                _ => r.next() & 0xffff_ffff,
            };
            let acc = random_access(&mut r);
            let mut mine = ram.clone();
            let mut theirs = ram.clone();
            let got = paging::walk(&mut mine, &cfg, la, acc);
            let want = ref_walk(&mut theirs, &cfg, la, acc);
            let ctx = || format!("iteration {i}: cfg {cfg:x?} la {la:#x} access {acc:?}");
            match (&got, &want) {
                (Ok(w), RefResult::Ok { gpa, path }) => {
                    oks += 1;
                    assert_eq!(w.translation.gpa, *gpa, "{}", ctx());
                    let steps: Vec<(u8, u64)> =
                        w.steps().iter().map(|s| (s.level, s.addr)).collect();
                    assert_eq!(&steps, path, "{}", ctx());
                    // The entries as they are now (accessed and dirty bits
                    // aside: an entry the walk went through twice, as a
                    // table and as a page, may have changed after its
                    // first visit); the last one exactly.
                    let n = w.steps().len();
                    for (j, s) in w.steps().iter().enumerate() {
                        if s.level == 3 && levels == 3 {
                            continue;
                        }
                        let now = theirs.get(s.addr, wide).unwrap();
                        let mask = if j + 1 == n { u64::MAX } else { !0x60 };
                        assert_eq!(s.val & mask, now & mask, "{}: step {s:x?}", ctx());
                    }
                    assert!(mine == theirs, "{}: memory differs after the walk", ctx());
                }
                (Err(WalkError::PageFault(c)), RefResult::Fault(d)) => {
                    faults += 1;
                    assert_eq!(c, d, "{}: error code", ctx());
                    assert!(
                        mine == ram && theirs == ram,
                        "{}: a faulting walk wrote memory",
                        ctx()
                    );
                }
                (Err(WalkError::NotRam(_)), RefResult::NotRam) => {}
                _ => panic!("{}: walker {got:x?}, reference {want:x?}", ctx()),
            }
        }
    }
    if levels != 0 {
        assert!(
            oks > iters / 20 && faults > iters / 20,
            "too few of each kind: {oks} translations, {faults} faults"
        );
    }
}

#[test]
fn paging_off() {
    run(0, 1, 200);
}

#[test]
fn bits32_with_and_without_pse() {
    run(2, 2, 6_000);
}

#[test]
fn pae() {
    run(3, 3, 6_000);
}

#[test]
fn long_mode_4_level() {
    run(4, 4, 6_000);
}
