// SPDX-License-Identifier: GPL-2.0
//! The VMCS (Intel SDM vol. 3C, chapters 25-28 and appendix B): field
//! encodings, control bits, exit reasons, event encodings, and the VMX
//! instructions that work on it (VMPTRLD/VMCLEAR/VMREAD/VMWRITE, INVEPT,
//! INVVPID). Names are upstream's (arch/x86/include/asm/vmx.h).

use core::{arch::asm, marker::PhantomData};
use kernel::{page::Page, prelude::*};
use kvm::ext::{bindings as rb, pages::page_phys};

/// VMCS field encodings (appendix B).
pub(crate) mod field {
    pub(crate) const VIRTUAL_PROCESSOR_ID: u32 = 0x0000;
    pub(crate) const GUEST_ES_SELECTOR: u32 = 0x0800;
    pub(crate) const HOST_ES_SELECTOR: u32 = 0x0c00;
    pub(crate) const HOST_CS_SELECTOR: u32 = 0x0c02;
    pub(crate) const HOST_SS_SELECTOR: u32 = 0x0c04;
    pub(crate) const HOST_DS_SELECTOR: u32 = 0x0c06;
    pub(crate) const HOST_FS_SELECTOR: u32 = 0x0c08;
    pub(crate) const HOST_GS_SELECTOR: u32 = 0x0c0a;
    pub(crate) const HOST_TR_SELECTOR: u32 = 0x0c0c;
    pub(crate) const MSR_BITMAP: u32 = 0x2004;
    pub(crate) const TSC_OFFSET: u32 = 0x2010;
    pub(crate) const VIRTUAL_APIC_PAGE_ADDR: u32 = 0x2012;
    pub(crate) const EPT_POINTER: u32 = 0x201a;
    pub(crate) const GUEST_PHYSICAL_ADDRESS: u32 = 0x2400;
    pub(crate) const VMCS_LINK_POINTER: u32 = 0x2800;
    pub(crate) const GUEST_IA32_DEBUGCTL: u32 = 0x2802;
    pub(crate) const GUEST_IA32_PAT: u32 = 0x2804;
    pub(crate) const GUEST_IA32_EFER: u32 = 0x2806;
    /// PDPTE0; PDPTE1-3 follow, 2 apart.
    pub(crate) const GUEST_PDPTR0: u32 = 0x280a;
    pub(crate) const HOST_IA32_PAT: u32 = 0x2c00;
    pub(crate) const HOST_IA32_EFER: u32 = 0x2c02;
    pub(crate) const PIN_BASED_VM_EXEC_CONTROL: u32 = 0x4000;
    pub(crate) const CPU_BASED_VM_EXEC_CONTROL: u32 = 0x4002;
    pub(crate) const EXCEPTION_BITMAP: u32 = 0x4004;
    pub(crate) const PAGE_FAULT_ERROR_CODE_MASK: u32 = 0x4006;
    pub(crate) const PAGE_FAULT_ERROR_CODE_MATCH: u32 = 0x4008;
    pub(crate) const CR3_TARGET_COUNT: u32 = 0x400a;
    pub(crate) const VM_EXIT_CONTROLS: u32 = 0x400c;
    pub(crate) const VM_EXIT_MSR_STORE_COUNT: u32 = 0x400e;
    pub(crate) const VM_EXIT_MSR_LOAD_COUNT: u32 = 0x4010;
    pub(crate) const VM_ENTRY_CONTROLS: u32 = 0x4012;
    pub(crate) const VM_ENTRY_MSR_LOAD_COUNT: u32 = 0x4014;
    pub(crate) const VM_ENTRY_INTR_INFO_FIELD: u32 = 0x4016;
    pub(crate) const VM_ENTRY_EXCEPTION_ERROR_CODE: u32 = 0x4018;
    pub(crate) const VM_ENTRY_INSTRUCTION_LEN: u32 = 0x401a;
    pub(crate) const TPR_THRESHOLD: u32 = 0x401c;
    pub(crate) const SECONDARY_VM_EXEC_CONTROL: u32 = 0x401e;
    pub(crate) const PLE_GAP: u32 = 0x4020;
    pub(crate) const PLE_WINDOW: u32 = 0x4022;
    pub(crate) const VM_INSTRUCTION_ERROR: u32 = 0x4400;
    pub(crate) const VM_EXIT_REASON: u32 = 0x4402;
    pub(crate) const VM_EXIT_INTR_INFO: u32 = 0x4404;
    pub(crate) const VM_EXIT_INTR_ERROR_CODE: u32 = 0x4406;
    pub(crate) const IDT_VECTORING_INFO_FIELD: u32 = 0x4408;
    pub(crate) const IDT_VECTORING_ERROR_CODE: u32 = 0x440a;
    pub(crate) const VM_EXIT_INSTRUCTION_LEN: u32 = 0x440c;
    pub(crate) const VMX_INSTRUCTION_INFO: u32 = 0x440e;
    pub(crate) const GUEST_ES_LIMIT: u32 = 0x4800;
    pub(crate) const GUEST_GDTR_LIMIT: u32 = 0x4810;
    pub(crate) const GUEST_IDTR_LIMIT: u32 = 0x4812;
    pub(crate) const GUEST_ES_AR_BYTES: u32 = 0x4814;
    pub(crate) const GUEST_INTERRUPTIBILITY_INFO: u32 = 0x4824;
    pub(crate) const GUEST_ACTIVITY_STATE: u32 = 0x4826;
    pub(crate) const GUEST_SYSENTER_CS: u32 = 0x482a;
    pub(crate) const HOST_IA32_SYSENTER_CS: u32 = 0x4c00;
    pub(crate) const CR0_GUEST_HOST_MASK: u32 = 0x6000;
    pub(crate) const CR4_GUEST_HOST_MASK: u32 = 0x6002;
    pub(crate) const CR0_READ_SHADOW: u32 = 0x6004;
    pub(crate) const CR4_READ_SHADOW: u32 = 0x6006;
    pub(crate) const EXIT_QUALIFICATION: u32 = 0x6400;
    pub(crate) const GUEST_CR0: u32 = 0x6800;
    pub(crate) const GUEST_CR3: u32 = 0x6802;
    pub(crate) const GUEST_CR4: u32 = 0x6804;
    pub(crate) const GUEST_ES_BASE: u32 = 0x6806;
    pub(crate) const GUEST_GDTR_BASE: u32 = 0x6816;
    pub(crate) const GUEST_IDTR_BASE: u32 = 0x6818;
    pub(crate) const GUEST_DR7: u32 = 0x681a;
    pub(crate) const GUEST_RSP: u32 = 0x681c;
    pub(crate) const GUEST_RIP: u32 = 0x681e;
    pub(crate) const GUEST_RFLAGS: u32 = 0x6820;
    pub(crate) const GUEST_PENDING_DBG_EXCEPTIONS: u32 = 0x6822;
    pub(crate) const GUEST_SYSENTER_ESP: u32 = 0x6824;
    pub(crate) const GUEST_SYSENTER_EIP: u32 = 0x6826;
    pub(crate) const HOST_CR0: u32 = 0x6c00;
    pub(crate) const HOST_CR3: u32 = 0x6c02;
    pub(crate) const HOST_CR4: u32 = 0x6c04;
    pub(crate) const HOST_FS_BASE: u32 = 0x6c06;
    pub(crate) const HOST_GS_BASE: u32 = 0x6c08;
    pub(crate) const HOST_TR_BASE: u32 = 0x6c0a;
    pub(crate) const HOST_GDTR_BASE: u32 = 0x6c0c;
    pub(crate) const HOST_IDTR_BASE: u32 = 0x6c0e;
    pub(crate) const HOST_IA32_SYSENTER_ESP: u32 = 0x6c10;
    pub(crate) const HOST_IA32_SYSENTER_EIP: u32 = 0x6c12;
    pub(crate) const GUEST_S_CET: u32 = 0x6828;
    pub(crate) const GUEST_SSP: u32 = 0x682a;
    pub(crate) const GUEST_INTR_SSP_TABLE: u32 = 0x682c;
    pub(crate) const HOST_S_CET: u32 = 0x6c18;
    pub(crate) const HOST_SSP: u32 = 0x6c1a;
    pub(crate) const HOST_INTR_SSP_TABLE: u32 = 0x6c1c;

    /// Selector, limit, access rights and base of guest segment `i` (the
    /// encodings are in ES, CS, SS, DS, FS, GS, LDTR, TR order, 2 apart).
    pub(crate) const fn guest_seg(i: usize) -> [u32; 4] {
        let o = 2 * i as u32;
        [
            GUEST_ES_SELECTOR + o,
            GUEST_ES_LIMIT + o,
            GUEST_ES_AR_BYTES + o,
            GUEST_ES_BASE + o,
        ]
    }
}

/// Pin-based VM-execution controls.
pub(crate) mod pin {
    pub(crate) const EXT_INTR_MASK: u32 = 1 << 0;
    pub(crate) const NMI_EXITING: u32 = 1 << 3;
    pub(crate) const VIRTUAL_NMIS: u32 = 1 << 5;
}

/// Primary processor-based VM-execution controls.
pub(crate) mod cpu {
    pub(crate) const INTR_WINDOW_EXITING: u32 = 1 << 2;
    pub(crate) const USE_TSC_OFFSETTING: u32 = 1 << 3;
    pub(crate) const HLT_EXITING: u32 = 1 << 7;
    pub(crate) const INVLPG_EXITING: u32 = 1 << 9;
    pub(crate) const MWAIT_EXITING: u32 = 1 << 10;
    pub(crate) const RDPMC_EXITING: u32 = 1 << 11;
    pub(crate) const RDTSC_EXITING: u32 = 1 << 12;
    pub(crate) const CR3_LOAD_EXITING: u32 = 1 << 15;
    pub(crate) const CR3_STORE_EXITING: u32 = 1 << 16;
    pub(crate) const CR8_LOAD_EXITING: u32 = 1 << 19;
    pub(crate) const CR8_STORE_EXITING: u32 = 1 << 20;
    pub(crate) const TPR_SHADOW: u32 = 1 << 21;
    pub(crate) const NMI_WINDOW_EXITING: u32 = 1 << 22;
    pub(crate) const MOV_DR_EXITING: u32 = 1 << 23;
    pub(crate) const UNCOND_IO_EXITING: u32 = 1 << 24;
    pub(crate) const USE_MSR_BITMAPS: u32 = 1 << 28;
    pub(crate) const MONITOR_EXITING: u32 = 1 << 29;
    pub(crate) const PAUSE_EXITING: u32 = 1 << 30;
    pub(crate) const ACTIVATE_SECONDARY_CONTROLS: u32 = 1 << 31;
}

/// Secondary processor-based VM-execution controls.
pub(crate) mod sec {
    pub(crate) const ENABLE_EPT: u32 = 1 << 1;
    pub(crate) const ENABLE_RDTSCP: u32 = 1 << 3;
    pub(crate) const ENABLE_VPID: u32 = 1 << 5;
    pub(crate) const WBINVD_EXITING: u32 = 1 << 6;
    pub(crate) const UNRESTRICTED_GUEST: u32 = 1 << 7;
    pub(crate) const PAUSE_LOOP_EXITING: u32 = 1 << 10;
    pub(crate) const ENABLE_INVPCID: u32 = 1 << 12;
}

/// VM-exit controls.
pub(crate) mod exit_ctl {
    pub(crate) const SAVE_DEBUG_CONTROLS: u32 = 0x0000_0004;
    pub(crate) const HOST_ADDR_SPACE_SIZE: u32 = 0x0000_0200;
    pub(crate) const SAVE_IA32_PAT: u32 = 0x0004_0000;
    pub(crate) const LOAD_IA32_PAT: u32 = 0x0008_0000;
    pub(crate) const SAVE_IA32_EFER: u32 = 0x0010_0000;
    pub(crate) const LOAD_IA32_EFER: u32 = 0x0020_0000;
    pub(crate) const LOAD_CET_STATE: u32 = 0x1000_0000;
}

/// VM-entry controls.
pub(crate) mod entry_ctl {
    pub(crate) const LOAD_DEBUG_CONTROLS: u32 = 0x0000_0004;
    pub(crate) const IA32E_MODE: u32 = 0x0000_0200;
    pub(crate) const LOAD_IA32_PAT: u32 = 0x0000_4000;
    pub(crate) const LOAD_IA32_EFER: u32 = 0x0000_8000;
    pub(crate) const LOAD_CET_STATE: u32 = 0x0010_0000;
}

/// `IA32_VMX_BASIC` fields.
pub(crate) mod basic {
    /// Bits 30:0: the VMCS revision identifier.
    pub(crate) const REVISION_MASK: u64 = 0x7fff_ffff;
    /// INS/OUTS exits report the instruction information field.
    pub(crate) const INOUT: u64 = 1 << 54;
    /// The `IA32_VMX_TRUE_*` control MSRs exist.
    pub(crate) const TRUE_CTLS: u64 = 1 << 55;
}

/// `IA32_VMX_EPT_VPID_CAP` bits (EPT in the low half, VPID in the high).
pub(crate) mod ept_cap {
    pub(crate) const PAGE_WALK_4: u64 = 1 << 6;
    pub(crate) const WB: u64 = 1 << 14;
    pub(crate) const INVEPT: u64 = 1 << 20;
    pub(crate) const EXTENT_CONTEXT: u64 = 1 << 25;
    pub(crate) const EXTENT_GLOBAL: u64 = 1 << 26;
    pub(crate) const INVVPID: u64 = 1 << 32;
    pub(crate) const VPID_EXTENT_SINGLE_CONTEXT: u64 = 1 << 41;
    pub(crate) const VPID_EXTENT_GLOBAL_CONTEXT: u64 = 1 << 42;
}

/// Basic exit reasons (appendix C).
pub(crate) mod reason {
    pub(crate) const EXCEPTION_NMI: u32 = 0;
    pub(crate) const EXTERNAL_INTERRUPT: u32 = 1;
    pub(crate) const TRIPLE_FAULT: u32 = 2;
    pub(crate) const INIT_SIGNAL: u32 = 3;
    pub(crate) const SIPI_SIGNAL: u32 = 4;
    pub(crate) const OTHER_SMI: u32 = 6;
    pub(crate) const INTERRUPT_WINDOW: u32 = 7;
    pub(crate) const NMI_WINDOW: u32 = 8;
    pub(crate) const CPUID: u32 = 10;
    pub(crate) const GETSEC: u32 = 11;
    pub(crate) const HLT: u32 = 12;
    pub(crate) const INVD: u32 = 13;
    pub(crate) const INVLPG: u32 = 14;
    pub(crate) const RDPMC: u32 = 15;
    pub(crate) const RDTSC: u32 = 16;
    pub(crate) const VMCALL: u32 = 18;
    pub(crate) const VMCLEAR: u32 = 19;
    pub(crate) const VMON: u32 = 27;
    pub(crate) const CR_ACCESS: u32 = 28;
    pub(crate) const DR_ACCESS: u32 = 29;
    pub(crate) const IO_INSTRUCTION: u32 = 30;
    pub(crate) const MSR_READ: u32 = 31;
    pub(crate) const MSR_WRITE: u32 = 32;
    pub(crate) const MWAIT_INSTRUCTION: u32 = 36;
    pub(crate) const MONITOR_INSTRUCTION: u32 = 39;
    pub(crate) const PAUSE_INSTRUCTION: u32 = 40;
    pub(crate) const MCE_DURING_VMENTRY: u32 = 41;
    pub(crate) const TPR_BELOW_THRESHOLD: u32 = 43;
    pub(crate) const EPT_VIOLATION: u32 = 48;
    pub(crate) const EPT_MISCONFIG: u32 = 49;
    pub(crate) const INVEPT: u32 = 50;
    pub(crate) const RDTSCP: u32 = 51;
    pub(crate) const INVVPID: u32 = 53;
    pub(crate) const WBINVD: u32 = 54;
    pub(crate) const XSETBV: u32 = 55;
    pub(crate) const RDRAND: u32 = 57;
    pub(crate) const INVPCID: u32 = 58;
    pub(crate) const VMFUNC: u32 = 59;
    pub(crate) const ENCLS: u32 = 60;
    pub(crate) const RDSEED: u32 = 61;
    pub(crate) const XSAVES: u32 = 63;
    pub(crate) const XRSTORS: u32 = 64;
    pub(crate) const UMWAIT: u32 = 67;
    pub(crate) const TPAUSE: u32 = 68;
    /// Bit 31 of the exit reason: VM entry failed.
    pub(crate) const FAILED_VMENTRY: u32 = 1 << 31;
}

/// Interruption information (VM-entry, VM-exit, IDT-vectoring).
pub(crate) mod intr {
    pub(crate) const VECTOR: u32 = 0xff;
    pub(crate) const TYPE_MASK: u32 = 0x700;
    pub(crate) const DELIVER_CODE: u32 = 0x800;
    pub(crate) const UNBLOCK_NMI: u32 = 0x1000;
    pub(crate) const VALID: u32 = 0x8000_0000;
    pub(crate) const TYPE_EXT_INTR: u32 = 0 << 8;
    pub(crate) const TYPE_NMI: u32 = 2 << 8;
    pub(crate) const TYPE_HARD_EXCEPTION: u32 = 3 << 8;
    pub(crate) const TYPE_SOFT_INTR: u32 = 4 << 8;
    pub(crate) const TYPE_PRIV_SW_EXCEPTION: u32 = 5 << 8;
    pub(crate) const TYPE_SOFT_EXCEPTION: u32 = 6 << 8;
}

/// `GUEST_INTERRUPTIBILITY_INFO` bits.
pub(crate) mod intr_state {
    pub(crate) const STI: u32 = 1 << 0;
    pub(crate) const MOV_SS: u32 = 1 << 1;
    pub(crate) const NMI: u32 = 1 << 3;
}

/// Segment access rights as the VMCS holds them.
pub(crate) mod ar {
    pub(crate) const TYPE: u32 = 0xf;
    pub(crate) const TYPE_ACCESSED: u32 = 1;
    pub(crate) const S: u32 = 1 << 4;
    pub(crate) const DPL_LSB: u32 = 5;
    pub(crate) const P: u32 = 1 << 7;
    pub(crate) const AVL: u32 = 1 << 12;
    pub(crate) const L: u32 = 1 << 13;
    pub(crate) const DB: u32 = 1 << 14;
    pub(crate) const G: u32 = 1 << 15;
    pub(crate) const UNUSABLE: u32 = 1 << 16;
}

/// EPT violation exit qualification bits.
pub(crate) mod ept_violation {
    /// The access was a data write (upstream `EPT_VIOLATION_ACC_WRITE`).
    pub(crate) const DATA_WRITE: u64 = 1 << 1;
    /// NMI unblocking due to IRET (bit 12).
    pub(crate) const NMI_UNBLOCK: u64 = 1 << 12;
}

/// I/O instruction exit qualification fields.
pub(crate) mod io_qual {
    pub(crate) const SIZE_MASK: u64 = 7;
    pub(crate) const IN: u64 = 1 << 3;
    pub(crate) const STRING: u64 = 1 << 4;
    pub(crate) const REP: u64 = 1 << 5;
    pub(crate) const PORT_LSB: u32 = 16;
}

/// INVEPT types.
pub(crate) const VMX_EPT_EXTENT_CONTEXT: u64 = 1;
/// INVEPT: all contexts.
pub(crate) const VMX_EPT_EXTENT_GLOBAL: u64 = 2;

/// EPTP: write-back paging-structure memory type, 4-level walk.
pub(crate) const VMX_EPTP_MT_WB: u64 = 6;
/// EPTP: page-walk length - 1, in bits 5:3.
pub(crate) const VMX_EPTP_PWL_4: u64 = 3 << 3;

/// EPT entries (SDM 29.3.2): read/write/execute bits; leaves carry the
/// memory type (write-back, ignoring the guest's PAT: upstream's choice
/// without non-coherent DMA). Accessed/dirty flags are not enabled.
pub(crate) const EPT_FORMAT: kvm::x86::vendor::TdpFormat = {
    const R: u64 = 1 << 0;
    const W: u64 = 1 << 1;
    const X: u64 = 1 << 2;
    const MT_WB: u64 = 6 << 3;
    const IPAT: u64 = 1 << 6;
    kvm::x86::vendor::TdpFormat {
        table: R | W | X,
        leaf: R | X | MT_WB | IPAT,
        writable: W,
        present: R | W | X,
        // No 2 MiB leaves on EPT yet (they need the EPT capability check).
        huge: 0,
        addr: 0x000f_ffff_ffff_f000,
    }
};

/// `VMCS_LINK_POINTER` when there is no shadow VMCS.
pub(crate) const NO_LINK: u64 = u64::MAX;

/// A VMX instruction failed (VMfailInvalid or VMfailValid).
#[derive(Debug)]
pub(crate) struct VmxFail;

/// One VMCS region (a 4 KiB page) with the revision identifier set.
pub(crate) struct Vmcs {
    page: Page,
    pa: u64,
}

impl Vmcs {
    /// A new, clear VMCS with revision identifier `revision`.
    pub(crate) fn new(revision: u32) -> Result<Self> {
        let page = Page::alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO)?;
        // SAFETY: the page is ours and direct-mapped; the revision is its
        // first (aligned) 32-bit word.
        unsafe {
            rb::rkvm_page_address(page.as_ptr())
                .cast::<u32>()
                .write(revision)
        };
        let pa = page_phys(&page);
        Ok(Self { page, pa })
    }

    /// Makes this VMCS current on this CPU (VMPTRLD); it is cleared
    /// (VMCLEAR: its state written back to memory, launch state "clear")
    /// when the returned guard drops.
    ///
    /// # Safety
    ///
    /// The CPU is in VMX root operation and stays on it with interrupts
    /// off until the guard drops; this VMCS is not current or active on
    /// any other CPU.
    pub(crate) unsafe fn load(&self) -> Result<Current<'_>, VmxFail> {
        let _ = &self.page;
        // SAFETY: by the caller's contract; `pa` is our VMCS region.
        if unsafe { vmptrld(self.pa) } {
            Ok(Current {
                pa: self.pa,
                _vmcs: PhantomData,
            })
        } else {
            Err(VmxFail)
        }
    }
}

/// The current VMCS of this CPU, until dropped (VMCLEAR).
pub(crate) struct Current<'a> {
    pa: u64,
    _vmcs: PhantomData<(&'a Vmcs, *mut ())>,
}

impl Current<'_> {
    /// VMREAD of `f` (0 if the field does not exist).
    pub(crate) fn read(&self, f: u32) -> u64 {
        let v: u64;
        // SAFETY: a VMCS is current (this guard); VMREAD only reads it.
        unsafe {
            asm!("vmread {v}, {f}", f = in(reg) u64::from(f), v = out(reg) v,
                 options(nostack, readonly))
        };
        v
    }

    /// VMREAD of a 32-bit field.
    pub(crate) fn read32(&self, f: u32) -> u32 {
        self.read(f) as u32
    }

    /// VMWRITE of `v` to `f`; false if the CPU refused (unsupported field
    /// or value).
    pub(crate) fn write(&self, f: u32, v: u64) -> bool {
        let failed: u8;
        // SAFETY: a VMCS is current (this guard); VMWRITE only writes it.
        unsafe {
            asm!("vmwrite {f}, {v}", "setbe {e}", f = in(reg) u64::from(f), v = in(reg) v,
                 e = out(reg_byte) failed, options(nostack))
        };
        failed == 0
    }
}

impl Drop for Current<'_> {
    fn drop(&mut self) {
        // SAFETY: our VMCS is current on this CPU, in VMX root operation.
        unsafe { vmclear(self.pa) };
    }
}

/// VMPTRLD `pa`; true on success.
///
/// # Safety
///
/// VMX root operation; `pa` is a VMCS region not active on another CPU.
unsafe fn vmptrld(pa: u64) -> bool {
    let failed: u8;
    // SAFETY: by the caller's contract; the operand is a 64-bit memory
    // location holding the physical address.
    unsafe {
        asm!("vmptrld qword ptr [{p}]", "setbe {e}", p = in(reg) &pa, e = out(reg_byte) failed,
             options(nostack))
    };
    failed == 0
}

/// VMCLEAR `pa`.
///
/// # Safety
///
/// VMX root operation; `pa` is a VMCS region.
pub(crate) unsafe fn vmclear(pa: u64) -> bool {
    let failed: u8;
    // SAFETY: by the caller's contract.
    unsafe {
        asm!("vmclear qword ptr [{p}]", "setbe {e}", p = in(reg) &pa, e = out(reg_byte) failed,
             options(nostack))
    };
    failed == 0
}

/// INVEPT of `kind` ([`VMX_EPT_EXTENT_CONTEXT`] for `eptp`, or global).
///
/// # Safety
///
/// VMX root operation, and the CPU supports INVEPT of `kind`.
pub(crate) unsafe fn invept(kind: u64, eptp: u64) {
    let desc: [u64; 2] = [eptp, 0];
    // SAFETY: by the caller's contract; `desc` is the 128-bit descriptor.
    unsafe {
        asm!("invept {k}, [{d}]", k = in(reg) kind, d = in(reg) desc.as_ptr(),
             options(nostack, readonly))
    };
}

/// The physical address of `p`'s page (for the MSR bitmap, virtual APIC).
pub(crate) fn phys(p: &Page) -> u64 {
    // SAFETY: `p` is a live page.
    unsafe { rb::rkvm_page_to_phys(p.as_ptr()) }
}
