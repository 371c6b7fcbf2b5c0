//! The address newtypes and page helpers of defs::paging: conversions,
//! page offsets, checked arithmetic at the edges of the address space, and
//! that nothing panics on any input (overflow checks are on in these
//! builds, as in the kernel's).

use core::mem::{align_of, size_of};
use rkvm_defs::defs::paging::*;

/// Addresses around every interesting boundary, plus pseudo-random ones.
fn samples() -> Vec<u64> {
    let mut v = vec![
        0,
        1,
        PAGE_SIZE - 1,
        PAGE_SIZE,
        PAGE_SIZE + 1,
        0xfee0_0000,
        0xffff_ffff,
        0x1_0000_0000,
        (1 << MAX_PHYS_ADDR_BITS) - 1,
        1 << MAX_PHYS_ADDR_BITS,
        u64::MAX - PAGE_SIZE,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x);
        v.push(x >> (x % 64));
    }
    v
}

#[test]
fn layout_is_a_bare_u64() {
    assert_eq!(size_of::<Gpa>(), size_of::<u64>());
    assert_eq!(size_of::<Gfn>(), size_of::<u64>());
    assert_eq!(size_of::<Gva>(), size_of::<u64>());
    assert_eq!(align_of::<Gpa>(), align_of::<u64>());
    assert_eq!(size_of::<Option<Gpa>>(), 2 * size_of::<u64>());
}

#[test]
fn page_constants() {
    assert_eq!(PAGE_SIZE, 4096);
    assert_eq!(PAGE_SIZE, 1 << PAGE_SHIFT);
    assert_eq!(PAGE_MASK, !0xfff);
    assert_eq!(PT64_ENT_PER_PAGE, 512);
    assert_eq!(PT32_ENT_PER_PAGE, 1024);
    assert_eq!(PT64_BASE_ADDR_MASK, 0x000f_ffff_ffff_f000);
    assert_eq!(PT32_BASE_ADDR_MASK, 0xffff_f000);
    // A table of 8-byte entries fills exactly one page.
    assert_eq!(PT64_ENT_PER_PAGE as u64 * 8, PAGE_SIZE);
    assert_eq!(PT32_ENT_PER_PAGE as u64 * 4, PAGE_SIZE);
}

#[test]
fn gpa_gfn_round_trip() {
    for raw in samples() {
        let gpa = Gpa::new(raw);
        assert_eq!(gpa.raw(), raw);
        let gfn = gpa.gfn();
        assert_eq!(gfn.raw(), raw >> 12);
        // Back to the first byte of the page, and the offset makes up the rest.
        assert_eq!(gfn.gpa(), gpa.page_base());
        assert_eq!(gfn.checked_gpa(), Some(gpa.page_base()));
        assert_eq!(gpa.page_base().raw() + gpa.page_offset(), raw);
        assert_eq!(gpa.page_offset(), raw & 0xfff);
        assert_eq!(gpa.page_offset(), offset_in_page(raw));
        assert!(gpa.page_base().is_page_aligned());
        assert_eq!(gpa.is_page_aligned(), raw % 4096 == 0);
        assert_eq!(Gfn::new(gfn.raw()), gfn);
    }
}

#[test]
fn gfn_to_gpa_at_the_top() {
    // The last frame of a 64-bit address space still fits...
    let last = Gfn::new(u64::MAX >> PAGE_SHIFT);
    assert_eq!(last.checked_gpa(), Some(Gpa::new(u64::MAX & PAGE_MASK)));
    assert_eq!(last.gpa(), Gpa::new(u64::MAX & PAGE_MASK));
    // ...one more does not: checked_gpa refuses, gpa() drops the top bits
    // like upstream's gfn_to_gpa() (and does not panic).
    let past = Gfn::new((u64::MAX >> PAGE_SHIFT) + 1);
    assert_eq!(past.checked_gpa(), None);
    assert_eq!(past.gpa(), Gpa::new(0));
    assert_eq!(Gfn::new(u64::MAX).checked_gpa(), None);
    let _ = Gfn::new(u64::MAX).gpa();
}

#[test]
fn page_end_and_alignment() {
    for raw in samples() {
        let end = bytes_to_page_end(raw);
        assert!((1..=PAGE_SIZE).contains(&end));
        assert_eq!(end, PAGE_SIZE - raw % PAGE_SIZE);
        assert_eq!(Gpa::new(raw).bytes_to_page_end(), end);
        assert_eq!(Gva::new(raw).bytes_to_page_end(), end);
        assert_eq!(Gva::new(raw).page_offset(), raw % PAGE_SIZE);
        assert_eq!(Gva::new(raw).page_base().raw(), raw - raw % PAGE_SIZE);
        assert_eq!(Gva::new(raw).is_page_aligned(), page_aligned(raw));
        // The last byte of the page is `end - 1` bytes on, in the same page.
        if let Some(last) = Gpa::new(raw).checked_add(end - 1) {
            assert_eq!(last.gfn(), Gpa::new(raw).gfn());
            if let Some(next) = last.checked_add(1) {
                assert_eq!(next.gfn().raw(), Gpa::new(raw).gfn().raw() + 1);
                assert!(next.is_page_aligned());
            }
        }
    }
}

#[test]
fn pages_and_bytes() {
    for raw in samples() {
        assert_eq!(bytes_to_pages(raw), raw / PAGE_SIZE);
        match pages_to_bytes(raw) {
            Some(b) => assert_eq!(b / PAGE_SIZE, raw),
            None => assert!(raw > u64::MAX / PAGE_SIZE),
        }
    }
    assert_eq!(pages_to_bytes(0), Some(0));
    assert_eq!(
        pages_to_bytes(u64::MAX / PAGE_SIZE),
        Some(u64::MAX & PAGE_MASK)
    );
    assert_eq!(pages_to_bytes(u64::MAX / PAGE_SIZE + 1), None);
}

#[test]
fn checked_arithmetic() {
    let top = Gpa::new(u64::MAX);
    assert_eq!(top.checked_add(0), Some(top));
    assert_eq!(top.checked_add(1), None);
    assert_eq!(Gpa::new(0).checked_sub(1), None);
    assert_eq!(Gpa::new(0x2000).checked_sub(0x1000), Some(Gpa::new(0x1000)));
    assert_eq!(Gpa::new(0x2345).offset_from(Gpa::new(0x2000)), Some(0x345));
    assert_eq!(Gpa::new(0x2000).offset_from(Gpa::new(0x2345)), None);
    assert_eq!(Gva::new(u64::MAX).checked_add(1), None);
    assert_eq!(Gva::new(1).checked_add(2), Some(Gva::new(3)));

    let f = Gfn::new(10);
    assert_eq!(f.checked_add(5), Some(Gfn::new(15)));
    assert_eq!(f.checked_sub(11), None);
    assert_eq!(f.checked_sub(10), Some(Gfn::new(0)));
    assert_eq!(Gfn::new(u64::MAX).checked_add(1), None);
    assert_eq!(Gfn::new(u64::MAX - 1).saturating_add(5), Gfn::new(u64::MAX));
    assert_eq!(Gfn::new(15).offset_from(f), Some(5));
    assert_eq!(f.offset_from(Gfn::new(15)), None);
}

#[test]
fn ordering_follows_the_address() {
    let mut v: Vec<Gpa> = samples().into_iter().map(Gpa::new).collect();
    v.sort();
    assert!(v.windows(2).all(|w| w[0].raw() <= w[1].raw()));
    assert!(Gfn::new(1) < Gfn::new(2));
    assert!(Gva::new(u64::MAX) > Gva::new(0));
    assert_eq!(Gpa::default(), Gpa::new(0));
    assert_eq!(format!("{:?}", Gfn::new(3)), "Gfn(3)");
}

#[test]
fn level_shifts_and_indices() {
    // 4 KiB, 2 MiB, 1 GiB, 512 GiB, 256 TiB per entry of levels 1-5.
    let shifts: Vec<u32> = (1..=5)
        .map(|l| pt_level_shift(l, PT64_LEVEL_BITS))
        .collect();
    assert_eq!(shifts, [12, 21, 30, 39, 48]);
    assert_eq!(pt_level_shift(1, PT32_LEVEL_BITS), 12);
    assert_eq!(pt_level_shift(PT32_ROOT_LEVEL, PT32_LEVEL_BITS), 22);
    assert_eq!(pt_level_shift(0, PT64_LEVEL_BITS), 12);
    let la = 0x0000_7fab_cdef_1234u64;
    for level in 1..=PT64_ROOT_4LEVEL {
        let want = (la >> (12 + 9 * (u32::from(level) - 1))) & 0x1ff;
        assert_eq!(pt_index(la, level, PT64_LEVEL_BITS), want as usize);
    }
    assert_eq!(pt_index(0xffff_ffff, 2, PT32_LEVEL_BITS), 0x3ff);
    // Nothing panics on nonsense levels or widths.
    for level in [0u8, 6, 7, 100, 255] {
        for bits in [0u32, 9, 10, 63, 64, 65, u32::MAX] {
            let _ = pt_level_shift(level, bits);
            let _ = pt_index(u64::MAX, level, bits);
        }
    }
    assert_eq!(pt_index(u64::MAX, 255, PT64_LEVEL_BITS), 0);
}

#[test]
fn pte_and_pfec_bits() {
    let bits = [
        PT_PRESENT_MASK,
        PT_WRITABLE_MASK,
        PT_USER_MASK,
        PT_PWT_MASK,
        PT_PCD_MASK,
        PT_ACCESSED_MASK,
        PT_DIRTY_MASK,
        PT_PAGE_SIZE_MASK,
        PT_GLOBAL_MASK,
        PT_DIR_PAT_MASK,
        PT64_NX_MASK,
    ];
    for (i, b) in bits.iter().enumerate() {
        assert_eq!(b.count_ones(), 1);
        assert!(bits[..i].iter().all(|o| o != b));
    }
    // Only the large-page PAT bit overlaps the address field (bit 12).
    assert_eq!(
        PT64_BASE_ADDR_MASK & (bits.iter().fold(0, |a, b| a | b)),
        PT_DIR_PAT_MASK
    );
    assert_eq!(PT_PAT_MASK, PT_PAGE_SIZE_MASK);
    let pfec = [
        PFERR_PRESENT_MASK,
        PFERR_WRITE_MASK,
        PFERR_USER_MASK,
        PFERR_RSVD_MASK,
        PFERR_FETCH_MASK,
        PFERR_PK_MASK,
        PFERR_SS_MASK,
        PFERR_SGX_MASK,
    ];
    assert_eq!(pfec.iter().fold(0, |a, b| a | b), 0x807f);
}
