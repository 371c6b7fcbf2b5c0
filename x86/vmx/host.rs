// SPDX-License-Identifier: GPL-2.0
//! The host's side of the VMX world switch: the constant host-state fields
//! of every VMCS, and the state a VM exit does not restore (host.c).

use core::arch::asm;
use kvm::defs::{
    msr::{MSR_EFER, MSR_IA32_CR_PAT, MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP, MSR_IA32_S_CET},
    regs::X86_CR4_CET,
};
use kvm::ext::msr;

/// `struct rkvm_vmx_host` of host.h: saved before the entry, restored
/// after the exit.
#[repr(C)]
#[derive(Default)]
pub(crate) struct HostSave {
    /// The task's FS base (HOST_FS_BASE).
    pub(crate) fs_base: u64,
    /// The task's GS base, which lives in MSR_KERNEL_GS_BASE.
    pub(crate) kernel_gs_base: u64,
    pub(crate) fs_sel: u16,
    pub(crate) gs_sel: u16,
    pub(crate) ds_sel: u16,
    pub(crate) es_sel: u16,
    pub(crate) ldt_sel: u16,
}

extern "C" {
    /// Saves the task's segments and bases (interrupts off).
    pub(crate) fn rkvm_vmx_host_save(h: *mut HostSave);
    /// Restores what the VM exit changed (interrupts off, same CPU).
    pub(crate) fn rkvm_vmx_host_restore(h: *const HostSave);
    /// HOST_TR_BASE of `cpu`.
    pub(crate) fn rkvm_vmx_host_tr_base(cpu: i32) -> u64;
    /// HOST_GDTR_BASE of `cpu`.
    pub(crate) fn rkvm_vmx_host_gdt_base(cpu: i32) -> u64;
    /// HOST_GS_BASE of `cpu`.
    pub(crate) fn rkvm_vmx_host_gs_base(cpu: i32) -> u64;
    /// HOST_IA32_SYSENTER_ESP of `cpu`.
    pub(crate) fn rkvm_vmx_host_sysenter_esp(cpu: i32) -> u64;
    /// Runs the host's NMI handler (after an NMI exit).
    pub(crate) fn rkvm_vmx_host_nmi();
    /// Runs the host's machine-check handler (after a #MC exit).
    pub(crate) fn rkvm_vmx_host_mce();
    /// Reads this CPU's host values of the user-return MSRs.
    pub(crate) fn rkvm_vmx_uret_cpu_init();
    /// Puts the host's user-return MSR values back on this CPU.
    pub(crate) fn rkvm_vmx_uret_cpu_exit();
    /// Loads user-return MSR `slot` ([`URET_STAR`]...) with `val` until
    /// the CPU returns to userspace (interrupts off).
    pub(crate) fn rkvm_vmx_uret_set(slot: u32, val: u64);
}

/// User-return MSR slots of host.c: STAR, LSTAR, CSTAR, SYSCALL_MASK,
/// TSC_AUX.
pub(crate) const URET_STAR: u32 = 0;
/// See [`URET_STAR`].
pub(crate) const URET_LSTAR: u32 = 1;
/// See [`URET_STAR`].
pub(crate) const URET_CSTAR: u32 = 2;
/// See [`URET_STAR`].
pub(crate) const URET_SYSCALL_MASK: u32 = 3;
/// See [`URET_STAR`].
pub(crate) const URET_TSC_AUX: u32 = 4;

/// Host state that is the same on every CPU for the module's lifetime.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostConsts {
    pub(crate) cr0: u64,
    pub(crate) cs: u16,
    pub(crate) ss: u16,
    pub(crate) tr: u16,
    pub(crate) idt_base: u64,
    pub(crate) sysenter_cs: u64,
    pub(crate) sysenter_eip: u64,
    pub(crate) pat: u64,
    pub(crate) efer: u64,
    /// IA32_S_CET when the kernel runs with CR4.CET (IBT).
    pub(crate) s_cet: Option<u64>,
}

impl HostConsts {
    /// Reads them on the current CPU.
    pub(crate) fn read() -> Self {
        let (cr0, cr4): (u64, u64);
        let (cs, ss, tr): (u16, u16, u16);
        let mut idt = [0u8; 10];
        // SAFETY: reads of control registers, selectors and the IDTR into
        // `idt` (10 bytes: limit, base), no other effect.
        unsafe {
            asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags));
            asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
            asm!("mov {:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags));
            asm!("mov {:x}, ss", out(reg) ss, options(nomem, nostack, preserves_flags));
            asm!("str {:x}", out(reg) tr, options(nomem, nostack, preserves_flags));
            asm!("sidt [{}]", in(reg) idt.as_mut_ptr(), options(nostack, preserves_flags));
        }
        let mut base = [0u8; 8];
        base.copy_from_slice(&idt[2..10]);
        Self {
            cr0,
            cs,
            ss,
            tr,
            idt_base: u64::from_le_bytes(base),
            sysenter_cs: msr::read(MSR_IA32_SYSENTER_CS),
            sysenter_eip: msr::read(MSR_IA32_SYSENTER_EIP),
            pat: msr::read(MSR_IA32_CR_PAT),
            efer: msr::read(MSR_EFER),
            s_cet: (cr4 & X86_CR4_CET != 0).then(|| msr::read(MSR_IA32_S_CET)),
        }
    }
}
