// SPDX-License-Identifier: GPL-2.0
//! Nested SVM rules that need no hardware (upstream's svm/nested.c
//! checks and exit routing): which exits of L2 are L1's, the permission
//! map bit layouts, and VMRUN's consistency checks of the guest state.
//! Pure: compiled into kvm.ko (used by kvm-amd's `x86/svm/nested.rs`)
//! and tested on the host.

use crate::defs::{
    regs::{
        EFER_AUTOIBRS, EFER_FFXSR, EFER_LMA, EFER_LME, EFER_LMSLE, EFER_NX, EFER_SCE, EFER_SVME,
        EFER_TCE, X86_CR0_CD, X86_CR0_NW, X86_CR0_PE, X86_CR0_PG, X86_CR4_PAE, X86_EFLAGS_VM,
    },
    svm::{exit, EXCEPTION_WORD},
};

/// The physical-address width VMCB addresses and CR3 are checked against.
pub const MAX_PHYS_BITS: u32 = 52;
/// Size of the I/O permission map a VMCB points to.
pub const IOPM_SIZE: u64 = 3 * 4096;
/// Size of the MSR permission map a VMCB points to.
pub const MSRPM_SIZE: u64 = 2 * 4096;

/// Who decides about an exit of L2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitOwner {
    /// The host's, whatever L1 intercepts: host interrupts, NMIs, SMIs,
    /// nested page faults (L2 runs on the host's nested page tables).
    Host,
    /// L1's if VMCB12 has this intercept bit (word, bit).
    Intercept(usize, u32),
    /// L1's if VMCB12 intercepts IOIO and L1's I/O permission map has a
    /// bit of the access.
    IoPermission,
    /// L1's if VMCB12 intercepts MSRs and L1's MSR permission map has the
    /// access's bit.
    MsrPermission,
    /// Always L1's (VMEXIT_INVALID of VMCB02, codes not known here).
    L1,
}

/// Who decides about exit `code` of L2 (upstream's
/// nested_svm_exit_special() and nested_svm_intercept()).
pub fn exit_owner(code: u64) -> ExitOwner {
    match code {
        exit::INTR | exit::NMI | exit::SMI | exit::NPF => ExitOwner::Host,
        exit::IOIO => ExitOwner::IoPermission,
        exit::MSR => ExitOwner::MsrPermission,
        // CR reads 0-15 and writes 16-31 are word 0, bit = code.
        exit::READ_CR0..=0x1f => ExitOwner::Intercept(0, code as u32),
        exit::DR_READ_0..=exit::DR_WRITE_15 => {
            ExitOwner::Intercept(1, (code - exit::DR_READ_0) as u32)
        }
        exit::EXCP_BASE..=exit::EXCP_LAST => {
            ExitOwner::Intercept(EXCEPTION_WORD, (code - exit::EXCP_BASE) as u32)
        }
        exit::INTR..=0x7f => ExitOwner::Intercept(3, (code - exit::INTR) as u32),
        exit::VMRUN..=0x9f => ExitOwner::Intercept(4, (code - exit::VMRUN) as u32),
        _ => ExitOwner::L1,
    }
}

/// The bit of `msr`'s read (`write` false) or write permission in an MSR
/// permission map, or None where the map has none (always intercepted).
pub fn msrpm_bit(msr: u32, write: bool) -> Option<u64> {
    // The map's three ranges of 0x2000 MSRs: from 0, from 0xc000_0000
    // and from 0xc001_0000, 2 KiB each.
    const RANGE: u32 = 0x2000;
    const HIGH: u32 = 0xc000 << 16;
    const AMD: u32 = 0xc001 << 16;
    let base: u64 = match msr {
        0..RANGE => 0,
        HIGH..=0xc000_1fff => 0x800 * 8,
        _ if (AMD..AMD + RANGE).contains(&msr) => 0x1000 * 8,
        _ => return None,
    };
    Some(base + u64::from(msr & 0x1fff) * 2 + u64::from(write))
}

/// The bits of an I/O permission map an access of `size` bytes at `port`
/// tests (one per port; the map has a bit past port 0xffff for accesses
/// that wrap).
pub fn iopm_bits(port: u16, size: u8) -> core::ops::Range<u64> {
    let p = u64::from(port);
    p..p + u64::from(size)
}

/// Whether `base .. base + size` is a valid physical range.
pub fn map_address_valid(base: u64, size: u64) -> bool {
    size != 0
        && base
            .checked_add(size - 1)
            .is_some_and(|end| end >> MAX_PHYS_BITS == 0)
}

/// Whether `gpa` can address a VMCB (upstream's page_address_valid()):
/// else VMRUN, VMLOAD and VMSAVE are #GP.
pub fn vmcb_address_valid(gpa: u64) -> bool {
    gpa & 0xfff == 0 && gpa >> MAX_PHYS_BITS == 0
}

/// The guest state VMRUN checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct VmrunState {
    /// EFER.
    pub efer: u64,
    /// CR0.
    pub cr0: u64,
    /// CR3.
    pub cr3: u64,
    /// CR4.
    pub cr4: u64,
    /// DR6.
    pub dr6: u64,
    /// DR7.
    pub dr7: u64,
    /// RFLAGS.
    pub rflags: u64,
}

/// EFER bits an AMD CPU defines.
const EFER_DEFINED: u64 = EFER_SCE
    | EFER_LME
    | EFER_LMA
    | EFER_NX
    | EFER_SVME
    | EFER_LMSLE
    | EFER_FFXSR
    | EFER_TCE
    | EFER_AUTOIBRS;
/// CR4 bits through PKS (24), and LAM_SUP (28).
const CR4_DEFINED: u64 = 0x11ff_ffff;

/// VMRUN's consistency checks of a guest state (upstream's
/// nested_vmcb_check_save(); failure: VMEXIT_INVALID): EFER.SVME, no
/// undefined EFER or CR4 bits, CR0 without NW-without-CD and upper
/// bits, DR6/DR7 upper bits clear, and in long mode (EFER.LME and
/// CR0.PG) PAE, PE and a CR3 inside the physical address space.
pub fn save_valid(s: &VmrunState) -> bool {
    let long = s.efer & EFER_LME != 0 && s.cr0 & X86_CR0_PG != 0;
    s.efer & EFER_SVME != 0
        && s.efer & !EFER_DEFINED == 0
        && !(s.cr0 & X86_CR0_CD == 0 && s.cr0 & X86_CR0_NW != 0)
        && s.cr0 >> 32 == 0
        && s.dr6 >> 32 == 0
        && s.dr7 >> 32 == 0
        && s.cr4 & !CR4_DEFINED == 0
        && (!long
            || (s.cr4 & X86_CR4_PAE != 0 && s.cr0 & X86_CR0_PE != 0 && s.cr3 >> MAX_PHYS_BITS == 0))
}

/// Whether an L1 state saved at VMRUN (KVM_SET_NESTED_STATE) is one VMRUN
/// could have left (upstream's checks in svm_set_nested_state()): paging
/// and protection on, not virtual-8086, LMA only with LME, and
/// [`save_valid`].
pub fn l1_save_valid(s: &VmrunState) -> bool {
    s.cr0 & X86_CR0_PG != 0
        && s.cr0 & X86_CR0_PE != 0
        && s.rflags & X86_EFLAGS_VM == 0
        && !(s.efer & EFER_LMA != 0 && s.efer & EFER_LME == 0)
        && save_valid(s)
}
