//! Nested SVM rules against the APM's tables: exit routing to L1, the
//! permission map layouts, VMRUN's consistency checks.

use rkvm_nested_svm::defs::svm::exit;
use rkvm_nested_svm::nested_svm::*;

#[test]
fn host_keeps_interrupts_and_nested_page_faults() {
    for code in [exit::INTR, exit::NMI, exit::SMI, exit::NPF] {
        assert_eq!(exit_owner(code), ExitOwner::Host, "{code:#x}");
    }
}

#[test]
fn intercept_bits_follow_the_vmcb_layout() {
    // APM vol. 2, table B-1: word 0 CR reads/writes, 1 DR, 2 exceptions,
    // 3 from INTR (bit 0) to SHUTDOWN (bit 31), 4 from VMRUN (bit 0).
    let cases = [
        (exit::READ_CR0, (0, 0)),
        (exit::WRITE_CR3, (0, 19)),
        (exit::WRITE_CR8, (0, 24)),
        (exit::DR_READ_0, (1, 0)),
        (exit::DR_WRITE_15, (1, 31)),
        (exit::EXCP_BASE + 14, (2, 14)),
        (exit::EXCP_LAST, (2, 31)),
        (exit::VINTR, (3, 4)),
        (exit::CR0_SEL_WRITE, (3, 5)),
        (exit::CPUID, (3, 18)),
        (exit::HLT, (3, 24)),
        (exit::SHUTDOWN, (3, 31)),
        (exit::VMRUN, (4, 0)),
        (exit::VMMCALL, (4, 1)),
        (exit::STGI, (4, 4)),
        (exit::XSETBV, (4, 13)),
        (exit::RDPRU, (4, 14)),
    ];
    for (code, (w, b)) in cases {
        assert_eq!(exit_owner(code), ExitOwner::Intercept(w, b), "{code:#x}");
    }
    assert_eq!(exit_owner(exit::IOIO), ExitOwner::IoPermission);
    assert_eq!(exit_owner(exit::MSR), ExitOwner::MsrPermission);
    assert_eq!(exit_owner(exit::INVALID), ExitOwner::L1);
    assert_eq!(exit_owner(0x401), ExitOwner::L1);
}

#[test]
fn msr_permission_map_layout() {
    // Two bits per MSR (read, write) in three 2 KiB ranges.
    assert_eq!(msrpm_bit(0, false), Some(0));
    assert_eq!(msrpm_bit(0, true), Some(1));
    assert_eq!(msrpm_bit(0x1fff, true), Some(0x3fff));
    assert_eq!(msrpm_bit(0xc000_0080, false), Some(0x4000 + 0x100));
    assert_eq!(msrpm_bit(0xc001_0000, true), Some(0x8001));
    assert_eq!(msrpm_bit(0xc001_1fff, true), Some(0x8000 + 0x3fff));
    for msr in [0x2000, 0xbfff_ffff, 0xc000_2000, 0xc001_2000, 0xffff_ffff] {
        assert_eq!(msrpm_bit(msr, false), None, "{msr:#x}");
    }
    // Every bit lies inside the map.
    for msr in (0..0x2000).chain(0xc000_0000..0xc000_2000).chain(0xc001_0000..0xc001_2000) {
        assert!(msrpm_bit(msr, true).unwrap() / 8 < MSRPM_SIZE);
    }
}

#[test]
fn io_permission_bits_cover_the_access() {
    assert_eq!(iopm_bits(0x3f8, 1), 0x3f8..0x3f9);
    assert_eq!(iopm_bits(0xcfc, 4), 0xcfc..0xd00);
    // A 4-byte access at 0xffff tests bits past 0xffff, inside the 12 KiB map.
    let r = iopm_bits(0xffff, 4);
    assert_eq!(r, 0xffff..0x10003);
    assert!((r.end - 1) / 8 < IOPM_SIZE);
}

#[test]
fn vmcb_addresses() {
    assert!(vmcb_address_valid(0));
    assert!(vmcb_address_valid(0x1000));
    assert!(!vmcb_address_valid(0x1001));
    assert!(!vmcb_address_valid(u64::MAX & !0xfff));
    assert!(map_address_valid(0, MSRPM_SIZE));
    assert!(!map_address_valid((1 << MAX_PHYS_BITS) - 0x1000, MSRPM_SIZE));
    assert!(!map_address_valid(u64::MAX - 10, IOPM_SIZE));
}

/// A 64-bit guest as Linux runs: EFER SCE|LME|LMA|NXE|SVME, paging on.
fn long_mode() -> VmrunState {
    VmrunState {
        efer: 0x1d01,
        cr0: 0x8005_0033,
        cr3: 0x1000,
        cr4: 0x3506b0,
        dr6: 0xffff_0ff0,
        dr7: 0x400,
        rflags: 2,
    }
}

#[test]
fn vmrun_checks() {
    assert!(save_valid(&long_mode()));
    // Real mode with CD|NW, as after reset: valid.
    let real = VmrunState {
        efer: 0x1000,
        cr0: 0x6000_0010,
        cr3: 0,
        cr4: 0,
        ..long_mode()
    };
    assert!(save_valid(&real));
    // AUTOIBRS (bit 21) is defined; bit 17 is not.
    assert!(save_valid(&VmrunState { efer: 0x1d01 | 1 << 21, ..long_mode() }));
    assert!(!save_valid(&VmrunState { efer: 0x1d01 | 1 << 17, ..long_mode() }));
    let bad = [
        VmrunState { efer: 0xd01, ..long_mode() },           // no SVME
        VmrunState { efer: 0x1d01 | 1 << 20, ..long_mode() }, // undefined EFER bit
        VmrunState { cr0: 0x2000_0011, ..long_mode() },       // NW without CD
        VmrunState { cr0: 1 << 32 | 0x8000_0011, ..long_mode() },
        VmrunState { dr6: 1 << 32, ..long_mode() },
        VmrunState { dr7: 1 << 40, ..long_mode() },
        VmrunState { cr4: 1 << 30, ..long_mode() },
        VmrunState { cr4: 0x3506b0 & !0x20, ..long_mode() },  // long mode without PAE
        VmrunState { cr0: 0x8005_0032, ..long_mode() },       // long mode without PE
        VmrunState { cr3: u64::MAX, ..long_mode() },          // CR3 outside
    ];
    for (i, s) in bad.iter().enumerate() {
        assert!(!save_valid(s), "case {i}: {s:?}");
    }
}

#[test]
fn l1_state_checks() {
    assert!(l1_save_valid(&long_mode()));
    let real = VmrunState {
        efer: 0x1000,
        cr0: 0x11,
        ..long_mode()
    };
    assert!(!l1_save_valid(&real), "L1 ran VMRUN with paging");
    assert!(!l1_save_valid(&VmrunState { rflags: 2 | 1 << 17, ..long_mode() }));
    assert!(!l1_save_valid(&VmrunState { efer: 0x1c01, ..long_mode() }), "LMA without LME");
}
