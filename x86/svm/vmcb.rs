// SPDX-License-Identifier: GPL-2.0
//! The VMCB (AMD APM vol. 2, appendix B): layout, intercept bits, exit
//! codes and event-injection encoding. Offsets are checked at compile time.

use core::mem::{offset_of, size_of};

/// A segment register in the VMCB save area.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct VmcbSeg {
    pub(crate) selector: u16,
    /// type(3:0) S(4) DPL(6:5) P(7) AVL(8) L(9) D/B(10) G(11).
    pub(crate) attrib: u16,
    pub(crate) limit: u32,
    pub(crate) base: u64,
}

/// The control area (first 1 KiB).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Control {
    pub(crate) intercepts: [u32; 6],
    _reserved1: [u32; 9],
    pub(crate) pause_filter_thresh: u16,
    pub(crate) pause_filter_count: u16,
    pub(crate) iopm_base_pa: u64,
    pub(crate) msrpm_base_pa: u64,
    pub(crate) tsc_offset: u64,
    pub(crate) asid: u32,
    pub(crate) tlb_ctl: u8,
    _reserved2: [u8; 3],
    pub(crate) int_ctl: u32,
    pub(crate) int_vector: u32,
    pub(crate) int_state: u32,
    _reserved3: [u8; 4],
    pub(crate) exit_code: u64,
    pub(crate) exit_info_1: u64,
    pub(crate) exit_info_2: u64,
    pub(crate) exit_int_info: u32,
    pub(crate) exit_int_info_err: u32,
    pub(crate) misc_ctl: u64,
    pub(crate) avic_vapic_bar: u64,
    pub(crate) ghcb_gpa: u64,
    pub(crate) event_inj: u32,
    pub(crate) event_inj_err: u32,
    pub(crate) nested_cr3: u64,
    pub(crate) misc_ctl2: u64,
    pub(crate) clean: u32,
    _reserved5: u32,
    pub(crate) next_rip: u64,
    pub(crate) insn_len: u8,
    pub(crate) insn_bytes: [u8; 15],
    _reserved6: [u8; 0x400 - 0xe0],
}

/// The state-save area (legacy, non-SEV layout), at offset 0x400.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Save {
    pub(crate) es: VmcbSeg,
    pub(crate) cs: VmcbSeg,
    pub(crate) ss: VmcbSeg,
    pub(crate) ds: VmcbSeg,
    pub(crate) fs: VmcbSeg,
    pub(crate) gs: VmcbSeg,
    pub(crate) gdtr: VmcbSeg,
    pub(crate) ldtr: VmcbSeg,
    pub(crate) idtr: VmcbSeg,
    pub(crate) tr: VmcbSeg,
    _reserved_a0: [u8; 42],
    pub(crate) vmpl: u8,
    pub(crate) cpl: u8,
    _reserved_cc: [u8; 4],
    pub(crate) efer: u64,
    _reserved_d8: [u8; 112],
    pub(crate) cr4: u64,
    pub(crate) cr3: u64,
    pub(crate) cr0: u64,
    pub(crate) dr7: u64,
    pub(crate) dr6: u64,
    pub(crate) rflags: u64,
    pub(crate) rip: u64,
    _reserved_180: [u8; 88],
    pub(crate) rsp: u64,
    pub(crate) s_cet: u64,
    pub(crate) ssp: u64,
    pub(crate) isst_addr: u64,
    pub(crate) rax: u64,
    pub(crate) star: u64,
    pub(crate) lstar: u64,
    pub(crate) cstar: u64,
    pub(crate) sfmask: u64,
    pub(crate) kernel_gs_base: u64,
    pub(crate) sysenter_cs: u64,
    pub(crate) sysenter_esp: u64,
    pub(crate) sysenter_eip: u64,
    pub(crate) cr2: u64,
    _reserved_248: [u8; 32],
    pub(crate) g_pat: u64,
    pub(crate) dbgctl: u64,
    pub(crate) br_from: u64,
    pub(crate) br_to: u64,
    pub(crate) last_excp_from: u64,
    pub(crate) last_excp_to: u64,
    _reserved_298: [u8; 72],
    pub(crate) spec_ctrl: u64,
    _reserved_2e8: [u8; 0xc00 - 0x2e8],
}

/// A whole VMCB page.
#[repr(C)]
pub(crate) struct Vmcb {
    pub(crate) control: Control,
    pub(crate) save: Save,
}

const _: () = {
    assert!(size_of::<VmcbSeg>() == 16);
    assert!(size_of::<Control>() == 0x400);
    assert!(size_of::<Vmcb>() == kernel::page::PAGE_SIZE);
    assert!(offset_of!(Control, pause_filter_thresh) == 0x03c);
    assert!(offset_of!(Control, iopm_base_pa) == 0x040);
    assert!(offset_of!(Control, asid) == 0x058);
    assert!(offset_of!(Control, int_ctl) == 0x060);
    assert!(offset_of!(Control, exit_code) == 0x070);
    assert!(offset_of!(Control, exit_int_info) == 0x088);
    assert!(offset_of!(Control, misc_ctl) == 0x090);
    assert!(offset_of!(Control, event_inj) == 0x0a8);
    assert!(offset_of!(Control, nested_cr3) == 0x0b0);
    assert!(offset_of!(Control, clean) == 0x0c0);
    assert!(offset_of!(Control, next_rip) == 0x0c8);
    assert!(offset_of!(Control, insn_len) == 0x0d0);
    assert!(offset_of!(Save, cpl) == 0x0cb);
    assert!(offset_of!(Save, efer) == 0x0d0);
    assert!(offset_of!(Save, cr4) == 0x148);
    assert!(offset_of!(Save, rip) == 0x178);
    assert!(offset_of!(Save, rsp) == 0x1d8);
    assert!(offset_of!(Save, rax) == 0x1f8);
    assert!(offset_of!(Save, star) == 0x200);
    assert!(offset_of!(Save, cr2) == 0x240);
    assert!(offset_of!(Save, g_pat) == 0x268);
    assert!(offset_of!(Save, spec_ctrl) == 0x2e0);
};

/// Intercept bits: (word, bit) in `Control::intercepts`.
pub(crate) mod intercept {
    /// An intercept: word index and bit.
    pub(crate) type Bit = (usize, u32);
    /// Exception vectors (bit = vector).
    pub(crate) use kvm::defs::svm::EXCEPTION_WORD;
    /// All DR reads (bits 0-15) and writes (16-31).
    pub(crate) const DR_WORD: usize = 1;
    pub(crate) const CR0_READ: Bit = (0, 0);
    pub(crate) const CR3_READ: Bit = (0, 3);
    pub(crate) const CR4_READ: Bit = (0, 4);
    pub(crate) const CR0_WRITE: Bit = (0, 16);
    pub(crate) const CR3_WRITE: Bit = (0, 16 + 3);
    pub(crate) const CR4_WRITE: Bit = (0, 16 + 4);
    pub(crate) const CR8_WRITE: Bit = (0, 16 + 8);
    pub(crate) const INTR: Bit = (3, 0);
    pub(crate) const NMI: Bit = (3, 1);
    pub(crate) const SMI: Bit = (3, 2);
    pub(crate) const VINTR: Bit = (3, 4);
    pub(crate) const SELECTIVE_CR0: Bit = (3, 5);
    pub(crate) const RDPMC: Bit = (3, 15);
    pub(crate) const CPUID: Bit = (3, 18);
    pub(crate) const IRET: Bit = (3, 20);
    pub(crate) const INVD: Bit = (3, 22);
    pub(crate) const HLT: Bit = (3, 24);
    pub(crate) const INVLPGA: Bit = (3, 26);
    pub(crate) const IOIO_PROT: Bit = (3, 27);
    pub(crate) const MSR_PROT: Bit = (3, 28);
    pub(crate) const TASK_SWITCH: Bit = (3, 29);
    pub(crate) const FERR_FREEZE: Bit = (3, 30);
    pub(crate) const SHUTDOWN: Bit = (3, 31);
    pub(crate) const VMRUN: Bit = (4, 0);
    pub(crate) const VMMCALL: Bit = (4, 1);
    pub(crate) const VMLOAD: Bit = (4, 2);
    pub(crate) const VMSAVE: Bit = (4, 3);
    pub(crate) const STGI: Bit = (4, 4);
    pub(crate) const CLGI: Bit = (4, 5);
    pub(crate) const SKINIT: Bit = (4, 6);
    pub(crate) const RDTSCP: Bit = (4, 7);
    pub(crate) const WBINVD: Bit = (4, 9);
    pub(crate) const MONITOR: Bit = (4, 10);
    pub(crate) const MWAIT: Bit = (4, 11);
    pub(crate) const MWAIT_COND: Bit = (4, 12);
    pub(crate) const XSETBV: Bit = (4, 13);
    pub(crate) const RDPRU: Bit = (4, 14);
}

/// #VMEXIT codes (`Control::exit_code`), architectural: in pure/defs.
pub(crate) use kvm::defs::svm::exit;

/// `Control::int_ctl` bits.
pub(crate) mod int_ctl {
    pub(crate) const V_TPR_MASK: u32 = 0x0f;
    pub(crate) const V_IRQ: u32 = 1 << 8;
    pub(crate) const V_INTR_PRIO_SHIFT: u32 = 16;
    pub(crate) const V_IGN_TPR: u32 = 1 << 20;
    pub(crate) const V_INTR_MASKING: u32 = 1 << 24;
}

/// `Control::int_state`: interrupt shadow.
pub(crate) const INTERRUPT_SHADOW: u32 = 1 << 0;
/// `Control::misc_ctl`: nested paging.
pub(crate) const MISC_ENABLE_NP: u64 = 1 << 0;

/// Nested page table entries: the long-mode page-table format (AMD APM
/// vol. 2, 15.25.5). Nested walks are user accesses, so every entry has
/// U/S; accessed and dirty bits are set by us, so the walker never writes.
pub(crate) const NPT_FORMAT: kvm::x86::vendor::TdpFormat = {
    const P: u64 = 1 << 0;
    const RW: u64 = 1 << 1;
    const US: u64 = 1 << 2;
    const A: u64 = 1 << 5;
    const D: u64 = 1 << 6;
    const PS: u64 = 1 << 7;
    kvm::x86::vendor::TdpFormat {
        table: P | RW | US | A,
        leaf: P | US | A,
        writable: RW | D,
        present: P,
        huge: PS,
        addr: 0x000f_ffff_ffff_f000,
    }
};

/// `Control::tlb_ctl` values.
pub(crate) mod tlb_ctl {
    pub(crate) const DO_NOTHING: u8 = 0;
    pub(crate) const FLUSH_ALL_ASID: u8 = 1;
    pub(crate) const FLUSH_ASID: u8 = 3;
}

/// EVENTINJ / EXITINTINFO encoding.
pub(crate) mod event {
    pub(crate) const VEC_MASK: u32 = 0xff;
    pub(crate) const TYPE_SHIFT: u32 = 8;
    pub(crate) const TYPE_MASK: u32 = 7 << TYPE_SHIFT;
    pub(crate) const TYPE_INTR: u32 = 0 << TYPE_SHIFT;
    pub(crate) const TYPE_NMI: u32 = 2 << TYPE_SHIFT;
    pub(crate) const TYPE_EXEPT: u32 = 3 << TYPE_SHIFT;
    pub(crate) const TYPE_SOFT: u32 = 4 << TYPE_SHIFT;
    pub(crate) const VALID_ERR: u32 = 1 << 11;
    pub(crate) const VALID: u32 = 1 << 31;
}

/// IOIO EXITINFO1 fields.
pub(crate) mod ioio {
    pub(crate) const TYPE_IN: u64 = 1 << 0;
    pub(crate) const STR: u64 = 1 << 2;
    pub(crate) const REP: u64 = 1 << 3;
    pub(crate) const SZ8: u64 = 1 << 4;
    pub(crate) const SZ16: u64 = 1 << 5;
    pub(crate) const A16: u64 = 1 << 7;
    pub(crate) const A32: u64 = 1 << 8;
    pub(crate) const PORT_SHIFT: u32 = 16;

    /// The access size in bytes (1, 2 or 4) of an IOIO EXITINFO1.
    pub(crate) fn size(info1: u64) -> u8 {
        if info1 & SZ8 != 0 {
            1
        } else if info1 & SZ16 != 0 {
            2
        } else {
            4
        }
    }
}

/// Segment attribute bits in `VmcbSeg::attrib`.
pub(crate) mod attr {
    pub(crate) const TYPE_MASK: u16 = 0xf;
    pub(crate) const S: u16 = 1 << 4;
    pub(crate) const DPL_SHIFT: u16 = 5;
    pub(crate) const P: u16 = 1 << 7;
    pub(crate) const AVL: u16 = 1 << 8;
    pub(crate) const L: u16 = 1 << 9;
    pub(crate) const DB: u16 = 1 << 10;
    pub(crate) const G: u16 = 1 << 11;
}
