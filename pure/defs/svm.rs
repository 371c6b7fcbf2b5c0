// SPDX-License-Identifier: GPL-2.0
//! AMD SVM architectural values (APM vol. 2, appendices B and C).

/// The VMCB intercept word of exception vectors (bit = vector).
pub const EXCEPTION_WORD: usize = 2;

/// #VMEXIT codes (the VMCB's EXITCODE).
pub mod exit {
    /// `SVM_EXIT_READ_CR0`.
    pub const READ_CR0: u64 = 0x000;
    /// `SVM_EXIT_READ_CR3`.
    pub const READ_CR3: u64 = 0x003;
    /// `SVM_EXIT_READ_CR4`.
    pub const READ_CR4: u64 = 0x004;
    /// `SVM_EXIT_WRITE_CR0`.
    pub const WRITE_CR0: u64 = 0x010;
    /// `SVM_EXIT_WRITE_CR3`.
    pub const WRITE_CR3: u64 = 0x013;
    /// `SVM_EXIT_WRITE_CR4`.
    pub const WRITE_CR4: u64 = 0x014;
    /// `SVM_EXIT_WRITE_CR8`.
    pub const WRITE_CR8: u64 = 0x018;
    /// `SVM_EXIT_DR_READ_0`.
    pub const DR_READ_0: u64 = 0x020;
    /// `SVM_EXIT_DR_WRITE_15`.
    pub const DR_WRITE_15: u64 = 0x03f;
    /// `SVM_EXIT_EXCP_BASE`.
    pub const EXCP_BASE: u64 = 0x040;
    /// `SVM_EXIT_EXCP_LAST`.
    pub const EXCP_LAST: u64 = 0x05f;
    /// `SVM_EXIT_INTR`.
    pub const INTR: u64 = 0x060;
    /// `SVM_EXIT_NMI`.
    pub const NMI: u64 = 0x061;
    /// `SVM_EXIT_SMI`.
    pub const SMI: u64 = 0x062;
    /// `SVM_EXIT_VINTR`.
    pub const VINTR: u64 = 0x064;
    /// `SVM_EXIT_CR0_SEL_WRITE`.
    pub const CR0_SEL_WRITE: u64 = 0x065;
    /// `SVM_EXIT_RDPMC`.
    pub const RDPMC: u64 = 0x06f;
    /// `SVM_EXIT_CPUID`.
    pub const CPUID: u64 = 0x072;
    /// `SVM_EXIT_IRET`.
    pub const IRET: u64 = 0x074;
    /// `SVM_EXIT_INVD`.
    pub const INVD: u64 = 0x076;
    /// `SVM_EXIT_HLT`.
    pub const HLT: u64 = 0x078;
    /// `SVM_EXIT_INVLPG`.
    pub const INVLPG: u64 = 0x079;
    /// `SVM_EXIT_INVLPGA`.
    pub const INVLPGA: u64 = 0x07a;
    /// `SVM_EXIT_IOIO`.
    pub const IOIO: u64 = 0x07b;
    /// `SVM_EXIT_MSR`.
    pub const MSR: u64 = 0x07c;
    /// `SVM_EXIT_SHUTDOWN`.
    pub const SHUTDOWN: u64 = 0x07f;
    /// `SVM_EXIT_VMRUN`.
    pub const VMRUN: u64 = 0x080;
    /// `SVM_EXIT_VMMCALL`.
    pub const VMMCALL: u64 = 0x081;
    /// `SVM_EXIT_VMLOAD`.
    pub const VMLOAD: u64 = 0x082;
    /// `SVM_EXIT_VMSAVE`.
    pub const VMSAVE: u64 = 0x083;
    /// `SVM_EXIT_STGI`.
    pub const STGI: u64 = 0x084;
    /// `SVM_EXIT_CLGI`.
    pub const CLGI: u64 = 0x085;
    /// `SVM_EXIT_SKINIT`.
    pub const SKINIT: u64 = 0x086;
    /// `SVM_EXIT_RDTSCP`.
    pub const RDTSCP: u64 = 0x087;
    /// `SVM_EXIT_WBINVD`.
    pub const WBINVD: u64 = 0x089;
    /// `SVM_EXIT_MONITOR`.
    pub const MONITOR: u64 = 0x08a;
    /// `SVM_EXIT_MWAIT`.
    pub const MWAIT: u64 = 0x08b;
    /// `SVM_EXIT_MWAIT_COND`.
    pub const MWAIT_COND: u64 = 0x08c;
    /// `SVM_EXIT_XSETBV`.
    pub const XSETBV: u64 = 0x08d;
    /// `SVM_EXIT_RDPRU`.
    pub const RDPRU: u64 = 0x08e;
    /// `SVM_EXIT_NPF`.
    pub const NPF: u64 = 0x400;
    /// VMRUN failed its consistency checks (`VMEXIT_INVALID`, -1).
    pub const INVALID: u64 = u64::MAX;
}
