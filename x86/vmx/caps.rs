// SPDX-License-Identifier: GPL-2.0
//! The VMX capabilities of the host (upstream's `setup_vmcs_config()`):
//! the VM-execution, VM-exit and VM-entry controls kvm-intel uses, each
//! checked against the allowed-0/allowed-1 settings of the capability
//! MSRs, and the EPT/VPID features.

use crate::{
    params,
    vmcs::{basic, cpu, entry_ctl, ept_cap, exit_ctl, pin, sec},
};
use kernel::prelude::*;
use kvm::defs::msr::{
    MSR_IA32_VMX_BASIC, MSR_IA32_VMX_CR0_FIXED0, MSR_IA32_VMX_CR0_FIXED1, MSR_IA32_VMX_CR4_FIXED0,
    MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_EPT_VPID_CAP, MSR_IA32_VMX_EXIT_CTLS,
    MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_PROCBASED_CTLS2,
    MSR_IA32_VMX_TRUE_ENTRY_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS,
    MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
};
use kvm::ext::msr;

/// What every kvm-intel vCPU is set up with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct VmcsConfig {
    /// VMCS revision identifier.
    pub(crate) revision: u32,
    /// Pin-based controls.
    pub(crate) pin: u32,
    /// Primary processor-based controls (without the window exits, which
    /// come and go).
    pub(crate) cpu: u32,
    /// Secondary processor-based controls.
    pub(crate) sec: u32,
    /// VM-exit controls.
    pub(crate) exit: u32,
    /// VM-entry controls (without IA-32e mode guest, which follows EFER.LMA).
    pub(crate) entry: u32,
    /// CR0 bits that must be 1 in VMX operation (with unrestricted guest,
    /// PE and PG may be 0).
    pub(crate) cr0_fixed0: u64,
    /// CR0 bits that may be 1.
    pub(crate) cr0_fixed1: u64,
    /// CR4 bits that must be 1 (VMXE).
    pub(crate) cr4_fixed0: u64,
    /// INVEPT single-context is supported (else global).
    pub(crate) invept_context: bool,
    /// INS/OUTS exits report the address size.
    pub(crate) inout_info: bool,
}

/// The control value for `min` (required) and `opt` (wanted if possible)
/// bits, from a capability MSR: low half = bits that must be 1, high half
/// = bits that may be 1. `None` if a required bit is not allowed.
fn adjust(min: u32, opt: u32, msr_index: u32) -> Option<u32> {
    let v = msr::read(msr_index);
    let (must, may) = (v as u32, (v >> 32) as u32);
    let ctl = ((min | opt) & may) | must;
    (min & !ctl == 0).then_some(ctl)
}

impl VmcsConfig {
    /// Reads the host's capabilities; `EIO` (with a message naming what
    /// is missing) if the CPU lacks something kvm-intel needs. With
    /// `host_cet` (the kernel runs with CR4.CET) the entry and exit switch
    /// the CET state, so the guest does not run with the host's IBT.
    pub(crate) fn new(host_cet: bool) -> Result<Self> {
        let basic_msr = msr::read(MSR_IA32_VMX_BASIC);
        let true_ctls = basic_msr & basic::TRUE_CTLS != 0;
        let pick = |plain: u32, tru: u32| if true_ctls { tru } else { plain };
        let missing = |what: &str| {
            pr_err!("the CPU lacks {}, which rkvm's kvm-intel requires\n", what);
            EIO
        };

        let pin = adjust(
            pin::EXT_INTR_MASK | pin::NMI_EXITING | pin::VIRTUAL_NMIS,
            0,
            pick(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS),
        )
        .ok_or_else(|| missing("virtual NMIs"))?;

        let cpu_min = cpu::HLT_EXITING
            | cpu::USE_TSC_OFFSETTING
            | cpu::MWAIT_EXITING
            | cpu::MONITOR_EXITING
            | cpu::RDPMC_EXITING
            | cpu::UNCOND_IO_EXITING
            | cpu::MOV_DR_EXITING
            | cpu::USE_MSR_BITMAPS
            | cpu::TPR_SHADOW
            | cpu::ACTIVATE_SECONDARY_CONTROLS;
        let cpu_msr = pick(
            MSR_IA32_VMX_PROCBASED_CTLS,
            MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
        );
        let mut cpu =
            adjust(cpu_min, 0, cpu_msr).ok_or_else(|| missing("the processor-based controls"))?;
        // Wanted off; the "true" MSRs allow that on every CPU with EPT.
        let must = msr::read(cpu_msr) as u32;
        for off in [
            cpu::CR3_LOAD_EXITING,
            cpu::CR3_STORE_EXITING,
            cpu::INVLPG_EXITING,
            cpu::RDTSC_EXITING,
            cpu::CR8_LOAD_EXITING,
            cpu::CR8_STORE_EXITING,
            cpu::PAUSE_EXITING,
        ] {
            if must & off == 0 {
                cpu &= !off;
            }
        }
        // The interrupt/NMI-window exits are set per vCPU when needed.
        let window_ok = (msr::read(cpu_msr) >> 32) as u32;
        if window_ok & cpu::NMI_WINDOW_EXITING == 0 || window_ok & cpu::INTR_WINDOW_EXITING == 0 {
            return Err(missing("interrupt/NMI-window exiting"));
        }

        let sec_min = sec::ENABLE_EPT | sec::UNRESTRICTED_GUEST | sec::WBINVD_EXITING;
        let mut sec_opt = sec::ENABLE_RDTSCP | sec::ENABLE_INVPCID;
        if params::VPID.get() {
            sec_opt |= sec::ENABLE_VPID;
        }
        if params::PLE_GAP.get() != 0 {
            sec_opt |= sec::PAUSE_LOOP_EXITING;
        }
        let sec = adjust(sec_min, sec_opt, MSR_IA32_VMX_PROCBASED_CTLS2).ok_or_else(|| {
            missing("EPT with unrestricted guest (secondary controls EPT, UG, WBINVD exiting)")
        })?;

        let (exit_cet, entry_cet) = if host_cet {
            (exit_ctl::LOAD_CET_STATE, entry_ctl::LOAD_CET_STATE)
        } else {
            (0, 0)
        };
        let exit = adjust(
            exit_cet
                | exit_ctl::HOST_ADDR_SPACE_SIZE
                | exit_ctl::SAVE_IA32_PAT
                | exit_ctl::LOAD_IA32_PAT
                | exit_ctl::SAVE_IA32_EFER
                | exit_ctl::LOAD_IA32_EFER
                | exit_ctl::SAVE_DEBUG_CONTROLS,
            0,
            pick(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS),
        )
        .ok_or_else(|| missing("the VM-exit controls for PAT and EFER"))?;
        let entry = adjust(
            entry_cet
                | entry_ctl::LOAD_IA32_PAT
                | entry_ctl::LOAD_IA32_EFER
                | entry_ctl::LOAD_DEBUG_CONTROLS,
            0,
            pick(MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS),
        )
        .ok_or_else(|| missing("the VM-entry controls for PAT and EFER"))?;

        let ept = msr::read(MSR_IA32_VMX_EPT_VPID_CAP);
        for (bit, what) in [
            (ept_cap::PAGE_WALK_4, "4-level EPT"),
            (ept_cap::WB, "write-back EPT paging structures"),
            (ept_cap::INVEPT, "INVEPT"),
        ] {
            if ept & bit == 0 {
                return Err(missing(what));
            }
        }
        if ept & (ept_cap::EXTENT_CONTEXT | ept_cap::EXTENT_GLOBAL) == 0 {
            return Err(missing("INVEPT of a context or of all"));
        }
        let mut sec = sec;
        // VPID without INVVPID cannot be flushed: leave it off, as upstream.
        if ept & ept_cap::INVVPID == 0
            || ept & (ept_cap::VPID_EXTENT_SINGLE_CONTEXT | ept_cap::VPID_EXTENT_GLOBAL_CONTEXT)
                == 0
        {
            sec &= !sec::ENABLE_VPID;
        }

        Ok(Self {
            revision: (basic_msr & basic::REVISION_MASK) as u32,
            pin,
            cpu,
            sec,
            exit,
            entry,
            cr0_fixed0: msr::read(MSR_IA32_VMX_CR0_FIXED0),
            cr0_fixed1: msr::read(MSR_IA32_VMX_CR0_FIXED1),
            cr4_fixed0: msr::read(MSR_IA32_VMX_CR4_FIXED0),
            invept_context: ept & ept_cap::EXTENT_CONTEXT != 0,
            inout_info: basic_msr & basic::INOUT != 0,
        })
    }

    /// VPIDs are in use.
    pub(crate) fn vpid(&self) -> bool {
        self.sec & sec::ENABLE_VPID != 0
    }

    /// RDTSCP (and RDPID) work in the guest.
    pub(crate) fn rdtscp(&self) -> bool {
        self.sec & sec::ENABLE_RDTSCP != 0
    }

    /// Pause-loop exiting is on.
    pub(crate) fn ple(&self) -> bool {
        self.sec & sec::PAUSE_LOOP_EXITING != 0
    }

    /// INVPCID works in the guest.
    pub(crate) fn invpcid(&self) -> bool {
        self.sec & sec::ENABLE_INVPCID != 0
    }
}
