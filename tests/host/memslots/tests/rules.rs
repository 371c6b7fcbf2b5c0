//! The memslot rules against upstream's behaviour (virt/kvm/kvm_main.c,
//! __kvm_set_memory_region), case by case.

use rkvm_memslots::memslots::*;

fn req(slot: u32, flags: u32, gpa: u64, size: u64, hva: u64) -> Request {
    Request {
        slot,
        flags,
        guest_phys_addr: gpa,
        memory_size: size,
        userspace_addr: hva,
    }
}

fn slot(id: u32, gpa: u64, size: u64, hva: u64, flags: u32) -> SlotDesc {
    SlotDesc {
        id,
        base_gfn: gpa >> 12,
        npages: size >> 12,
        hva,
        flags,
    }
}

const HVA: u64 = 0x7f00_0000_0000;
/// TASK_SIZE_MAX with 4-level paging.
const USER_ADDR_LIMIT: u64 = (1 << 47) - 0x1000;

#[test]
fn create_into_empty() {
    let c = plan(&req(0, 0, 0, 0x10000, HVA), [].iter(), USER_ADDR_LIMIT).unwrap();
    assert_eq!(c, Change::Create(slot(0, 0, 0x10000, HVA, 0)));
}

#[test]
fn misaligned_fields_are_einval() {
    for r in [
        req(0, 0, 0x800, 0x1000, HVA),
        req(0, 0, 0, 0x1800, HVA),
        req(0, 0, 0, 0x1000, HVA + 8),
    ] {
        assert_eq!(
            plan(&r, [].iter(), USER_ADDR_LIMIT),
            Err(SlotError::Invalid),
            "{r:?}"
        );
    }
}

#[test]
fn bad_flags_ids_and_ranges_are_einval() {
    let bad = [
        req(0, 1 << 7, 0, 0x1000, HVA),                 // unknown flag
        req(0, KVM_MEM_GUEST_MEMFD, 0, 0x1000, HVA),    // no guest_memfd
        req(USER_MEM_SLOTS, 0, 0, 0x1000, HVA),         // id out of range
        req(1 << 16, 0, 0, 0x1000, HVA),                // address space 1
        req(0, 0, 0, 0x1000, 0xffff_8000_0000_0000),    // kernel address
        req(0, 0, 0, 0x2000, USER_ADDR_LIMIT - 0x1000), // crosses the limit
        req(0, 0, u64::MAX & !0xfff, 0x2000, HVA),      // gpa wraps
        req(0, 0, 0, (MAX_NR_PAGES + 1) << 12, 0x1000), // too big
    ];
    for r in bad {
        assert_eq!(
            plan(&r, [].iter(), USER_ADDR_LIMIT),
            Err(SlotError::Invalid),
            "{r:?}"
        );
    }
}

#[test]
fn overlap_is_eexist() {
    let s = [slot(0, 0x10000, 0x10000, HVA, 0)];
    for gpa in [0x8000u64, 0x10000, 0x1f000] {
        assert_eq!(
            plan(
                &req(1, 0, gpa, 0x10000, HVA + 0x100000),
                s.iter(),
                USER_ADDR_LIMIT
            ),
            Err(SlotError::Exists),
            "{gpa:#x}"
        );
    }
    // Adjacent on both sides is fine.
    assert!(matches!(
        plan(&req(1, 0, 0x20000, 0x1000, HVA), s.iter(), USER_ADDR_LIMIT),
        Ok(Change::Create(_))
    ));
    assert!(matches!(
        plan(&req(1, 0, 0xf000, 0x1000, HVA), s.iter(), USER_ADDR_LIMIT),
        Ok(Change::Create(_))
    ));
}

#[test]
fn delete_and_delete_nonexistent() {
    let s = [slot(3, 0, 0x4000, HVA, 0)];
    assert_eq!(
        plan(&req(3, 0, 0, 0, HVA), s.iter(), USER_ADDR_LIMIT),
        Ok(Change::Delete(s[0]))
    );
    // 7.3: deleting (or creating with size 0) a slot that does not exist.
    assert_eq!(
        plan(&req(4, 0, 0, 0, 0), s.iter(), USER_ADDR_LIMIT),
        Err(SlotError::Invalid)
    );
}

#[test]
fn move_flags_and_noop() {
    let s = [
        slot(0, 0, 0x4000, HVA, 0),
        slot(1, 0x100000, 0x1000, HVA + 0x10000, 0),
    ];
    assert_eq!(
        plan(&req(0, 0, 0x8000, 0x4000, HVA), s.iter(), USER_ADDR_LIMIT),
        Ok(Change::Move {
            old: s[0],
            new: slot(0, 0x8000, 0x4000, HVA, 0)
        })
    );
    assert_eq!(
        plan(&req(0, 0, 0xfe000, 0x4000, HVA), s.iter(), USER_ADDR_LIMIT),
        Err(SlotError::Exists)
    );
    assert_eq!(
        plan(
            &req(0, KVM_MEM_LOG_DIRTY_PAGES, 0, 0x4000, HVA),
            s.iter(),
            USER_ADDR_LIMIT
        ),
        Ok(Change::Flags {
            old: s[0],
            new: slot(0, 0, 0x4000, HVA, KVM_MEM_LOG_DIRTY_PAGES)
        })
    );
    assert_eq!(
        plan(&req(0, 0, 0, 0x4000, HVA), s.iter(), USER_ADDR_LIMIT),
        Ok(Change::None)
    );
}

#[test]
fn existing_slot_keeps_size_backing_and_readonly() {
    let s = [slot(0, 0, 0x4000, HVA, KVM_MEM_READONLY)];
    for r in [
        req(0, KVM_MEM_READONLY, 0, 0x8000, HVA),
        req(0, KVM_MEM_READONLY, 0, 0x4000, HVA + 0x1000),
        req(0, 0, 0, 0x4000, HVA),
    ] {
        assert_eq!(
            plan(&r, s.iter(), USER_ADDR_LIMIT),
            Err(SlotError::Invalid),
            "{r:?}"
        );
    }
}

#[test]
fn gfn_translation() {
    let s = slot(0, 0x10000, 0x3000, HVA, 0);
    assert_eq!(s.gfn_to_hva(0x10), Some(HVA));
    assert_eq!(s.gfn_to_hva(0x12), Some(HVA + 0x2000));
    assert_eq!(s.gfn_to_hva(0x13), None);
    assert_eq!(s.gfn_to_hva(0xf), None);
}
