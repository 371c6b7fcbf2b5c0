// SPDX-License-Identifier: GPL-2.0
//! MSRs, control registers and XCR0 as the core sees them: the MSRs every
//! vendor shares (APIC base, MTRRs, MISC_ENABLE, ...), the architectural
//! checks on CR0/CR3/CR4/EFER/XCR0 writes, and KVM_GET/SET_MSRS.

use crate::{
    cpuid_caps::{msr_lists::FEATURE_MSRS, pv::*},
    ext::{
        fpu::regs::host_xcr0,
        msr,
        uaccess::{read_arg, read_array, write_arg, write_array},
        uapi,
    },
    virt::{vcpu::Vcpu, vm::Vm},
    x86::{
        cpuid,
        irq::lapic,
        kvmclock,
        msr_filter::MsrFault,
        params, regs,
        vcpu::VcpuState,
        vendor::{MsrAccess, Seg},
    },
};
use kernel::prelude::*;

use crate::defs::{
    cpuid::{linux::LinuxFeature, *},
    msr::*,
    paging::{offset_in_page, Gpa},
    regs::*,
};

/// Model-specific MSRs that read as zero (upstream's list in
/// kvm_get_msr_common(): platform, SYSCFG/TSEG, interrupt-pending message,
/// MMIO config base, BU/DC/TW/EX config, PERF_CTL, RAPL energy counters,
/// the two P6 counters and event selectors without a vPMU).
const READ_AS_ZERO_MSRS: [u32; 21] = [
    MSR_IA32_EBL_CR_POWERON,
    MSR_P6_PERFCTR0,
    MSR_P6_PERFCTR1,
    MSR_P6_EVNTSEL0,
    MSR_P6_EVNTSEL1,
    MSR_IA32_PERF_CTL,
    MSR_RAPL_POWER_UNIT,
    MSR_PKG_ENERGY_STATUS,
    MSR_DRAM_ENERGY_STATUS,
    MSR_PP0_ENERGY_STATUS,
    MSR_PP1_ENERGY_STATUS,
    MSR_AMD64_SYSCFG,
    MSR_K8_INT_PENDING_MSG,
    MSR_FAM10H_MMIO_CONF_BASE,
    MSR_K8_TSEG_ADDR,
    MSR_K8_TSEG_MASK,
    MSR_AMD64_DC_CFG,
    MSR_AMD64_TW_CFG,
    MSR_AMD64_BU_CFG2,
    MSR_F15H_EX_CFG,
    MSR_VM_HSAVE_PA,
];
/// Writes upstream accepts and drops (kvm_set_msr_common(); the P6
/// counters without a vPMU).
const WRITE_IGNORED_MSRS: [u32; 11] = [
    MSR_IA32_UCODE_WRITE,
    MSR_P6_PERFCTR0,
    MSR_P6_PERFCTR1,
    MSR_P6_EVNTSEL0,
    MSR_P6_EVNTSEL1,
    MSR_AMD64_PATCH_LOADER,
    MSR_AMD64_DC_CFG,
    MSR_AMD64_TW_CFG,
    MSR_AMD64_BU_CFG2,
    MSR_F15H_EX_CFG,
    MSR_VM_HSAVE_PA,
];
/// "FSB frequency": upstream answers 3.
const FSB_FREQ_VALUE: u64 = 3;

/// CR4 bits 0-10 (VME through OSXMMEXCPT): valid on any x86-64 CPU.
const CR4_BASE: u64 = 0x7ff;

/// MISC_ENABLE reset value: PEBS and BTS unavailable (as upstream).
const MISC_ENABLE_RESET: u64 = MSR_IA32_MISC_ENABLE_BTS_UNAVAIL | MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL;
/// MTRRCAP: 8 variable ranges, fixed ranges, write-combining.
const MTRRCAP_VALUE: u64 = KVM_NR_VAR_MTRR as u64 | MTRR_CAP_FIX | MTRR_CAP_WC;
/// IA32_SMBASE at reset (upstream kvm_vcpu_reset()).
const SMBASE_DEFAULT: u64 = 0x3_0000;

/// MSRs in KVM_GET_MSR_INDEX_LIST that VMMs save and restore but rkvm
/// does not act on yet: their values round-trip (guest and host writes),
/// with upstream's reset values. The features behind them (the other PV
/// MSRs, speculation controls, LBRs, ...) are not advertised in CPUID
/// until they are implemented.
const STORED_MSRS: [(u32, u64); 17] = [
    (MSR_KVM_WALL_CLOCK, 0),
    (MSR_KVM_SYSTEM_TIME, 0),
    (MSR_SMI_COUNT, 0),
    (MSR_IA32_SPEC_CTRL, 0),
    (MSR_IA32_ARCH_CAPABILITIES, 0),
    (MSR_IA32_PERF_CAPABILITIES, 0),
    (MSR_IA32_TSC_DEADLINE, 0),
    (MSR_KVM_WALL_CLOCK_NEW, 0),
    (MSR_KVM_SYSTEM_TIME_NEW, 0),
    (MSR_KVM_ASYNC_PF_EN, 0),
    (MSR_KVM_STEAL_TIME, 0),
    (MSR_KVM_PV_EOI_EN, 0),
    (MSR_KVM_ASYNC_PF_ACK, 0),
    // Polling allowed.
    (MSR_KVM_POLL_CONTROL, 1),
    (MSR_KVM_ASYNC_PF_INT, 0),
    // 1.0.
    (MSR_AMD64_TSC_RATIO, 1 << 32),
    (MSR_AMD64_VIRT_SPEC_CTRL, 0),
];

/// Machine-check banks a guest may have (`KVM_MAX_MCE_BANKS`).
pub(crate) const MAX_MCE_BANKS: usize = KVM_MAX_MCE_BANKS as usize;
/// What KVM_X86_SETUP_MCE accepts besides the bank count (AMD: no LMCE
/// or CMCI), as upstream's `kvm_caps.supported_mce_cap`.
pub(crate) const SUPPORTED_MCE_CAP: u64 = MCG_CTL_P | MCG_SER_P;

/// Most entries per KVM_GET/SET_MSRS (`MAX_IO_MSRS`).
const MAX_IO_MSRS: u32 = 256;

/// MSR state kept by the core for every vendor.
pub(crate) struct GenericMsrs {
    pub(crate) apic_base: u64,
    misc_enable: u64,
    tsc_adjust: u64,
    mtrr_def_type: u64,
    mtrr_fixed: [u64; 11],
    mtrr_var: [u64; 16],
    hwcr: u64,
    mcg_status: u64,
    power_ctl: u64,
    ucode_rev: u64,
    /// MSR_PLATFORM_INFO (userspace sets it; CPUID faulting offered).
    platform_info: u64,
    /// MSR_MISC_FEATURES_ENABLES (CPUID faulting on or off).
    misc_features_enables: u64,
    /// OSVW_ID_LENGTH and OSVW_STATUS (with CPUID OSVW).
    osvw: [u64; 2],
    /// IA32_SMBASE: userspace saves and restores it (it is in
    /// KVM_GET_MSR_INDEX_LIST, as upstream's); the guest cannot reach it
    /// (no SMM).
    smbase: u64,
    /// CR8 (task priority) while there is no in-kernel local APIC.
    pub(crate) cr8: u64,
    /// XCR0 as the guest set it (XSETBV, KVM_SET_XCRS; see `set_xcr`).
    xcr0: u64,
    /// Values of [`STORED_MSRS`], same order.
    stored: [u64; STORED_MSRS.len()],
    /// IA32_MCG_CAP (KVM_X86_SETUP_MCE); 0: no machine-check banks.
    mcg_cap: u64,
    mcg_ctl: u64,
    /// MCi_CTL, MCi_STATUS, MCi_ADDR, MCi_MISC of each bank.
    mce_banks: [u64; MAX_MCE_BANKS * 4],
}

impl GenericMsrs {
    /// MISC_ENABLE.MWAIT (MONITOR/MWAIT enabled by the guest's BIOS).
    pub(crate) fn misc_enable_mwait(&self) -> bool {
        self.misc_enable & MSR_IA32_MISC_ENABLE_MWAIT != 0
    }

    /// Reset values; `bsp` for vCPU 0, `ucode_rev` the vendor's
    /// IA32_UCODE_REV (`ArchOps::reset_ucode_rev`).
    pub(crate) fn new(bsp: bool, ucode_rev: u64) -> Self {
        Self {
            apic_base: APIC_DEFAULT_PHYS_BASE
                | MSR_IA32_APICBASE_ENABLE
                | if bsp { MSR_IA32_APICBASE_BSP } else { 0 },
            misc_enable: MISC_ENABLE_RESET,
            tsc_adjust: 0,
            mtrr_def_type: 0,
            mtrr_fixed: [0; 11],
            mtrr_var: [0; 16],
            hwcr: 0,
            mcg_status: 0,
            power_ctl: 0,
            ucode_rev,
            platform_info: MSR_PLATFORM_INFO_CPUID_FAULT,
            misc_features_enables: 0,
            osvw: [0; 2],
            smbase: SMBASE_DEFAULT,
            cr8: 0,
            xcr0: XFEATURE_MASK_FP,
            stored: STORED_MSRS.map(|(_, v)| v),
            mcg_cap: 0,
            mcg_ctl: 0,
            mce_banks: [0; MAX_MCE_BANKS * 4],
        }
    }

    /// Whether CPUID faults outside ring 0 (MSR_MISC_FEATURES_ENABLES).
    pub(crate) fn cpuid_faulting(&self) -> bool {
        self.misc_features_enables & MSR_MISC_FEATURES_ENABLES_CPUID_FAULT != 0
    }

    /// The guest's XCR0.
    pub(crate) fn xcr0(&self) -> u64 {
        self.xcr0
    }

    /// Sets IA32_APIC_BASE (reserved bits must be clear; x2APIC needs
    /// xAPIC enabled).
    pub(crate) fn set_apic_base(&mut self, v: u64, _host: bool) -> Result {
        let reserved = 0xff | (1 << 9) | !((1u64 << 52) - 1);
        if v & reserved != 0 || (v & X2APIC_ENABLE != 0 && v & MSR_IA32_APICBASE_ENABLE == 0) {
            return Err(EINVAL);
        }
        self.apic_base = v;
        Ok(())
    }

    /// KVM_X86_SETUP_MCE (upstream's rules and reset values).
    pub(crate) fn setup_mce(&mut self, mcg_cap: u64) -> Result {
        let banks = (mcg_cap & 0xff) as usize;
        if banks == 0
            || banks > MAX_MCE_BANKS
            || mcg_cap & !(SUPPORTED_MCE_CAP | 0xff | 0xff_0000) != 0
        {
            return Err(EINVAL);
        }
        self.mcg_cap = mcg_cap;
        if mcg_cap & MCG_CTL_P != 0 {
            self.mcg_ctl = u64::MAX;
        }
        for bank in self.mce_banks.chunks_mut(4).take(banks) {
            bank[0] = u64::MAX;
        }
        Ok(())
    }

    /// The bank register of MSR `index`, if within the configured banks.
    fn mce_slot(&mut self, index: u32) -> Option<&mut u64> {
        let off = index.checked_sub(MSR_IA32_MC0_CTL)? as usize;
        if off >= (self.mcg_cap & 0xff) as usize * 4 {
            return None;
        }
        self.mce_banks.get_mut(off)
    }

    /// Writes an MCE MSR with upstream's set_msr_mce() checks; `None`
    /// if `index` is not one.
    fn set_mce(&mut self, index: u32, data: u64, host: bool) -> Option<Result> {
        Some(match index {
            MSR_IA32_MCG_STATUS => {
                self.mcg_status = data;
                Ok(())
            }
            MSR_IA32_MCG_CTL => {
                if (self.mcg_cap & MCG_CTL_P == 0 && (data != 0 || !host))
                    || (data != 0 && data != u64::MAX)
                {
                    Err(EINVAL)
                } else {
                    self.mcg_ctl = data;
                    Ok(())
                }
            }
            MSR_IA32_MC0_CTL..=0x47f => {
                let off = index - MSR_IA32_MC0_CTL;
                let is_ctl = off % 4 == 0;
                let is_status = off % 4 == 1;
                // Only 0 or all ones in MCi_CTL (bits 10 and 0 may be
                // clear); guests write MCi_STATUS only to clear it.
                if is_ctl && data != 0 && (data | (1 << 10) | 1) != u64::MAX {
                    return Some(Err(EINVAL));
                }
                if is_status && !host && data != 0 {
                    return Some(Err(EINVAL));
                }
                match self.mce_slot(index) {
                    Some(v) => {
                        *v = data;
                        Ok(())
                    }
                    None => Err(EINVAL),
                }
            }
            _ => return None,
        })
    }

    fn stored_slot(&mut self, index: u32) -> Option<&mut u64> {
        let i = STORED_MSRS.iter().position(|(m, _)| *m == index)?;
        self.stored.get_mut(i)
    }

    fn mtrr_slot(&mut self, index: u32) -> Option<&mut u64> {
        match index {
            MSR_MTRR_PHYS_BASE0..=0x20f => self
                .mtrr_var
                .get_mut((index - MSR_MTRR_PHYS_BASE0) as usize),
            MSR_MTRRFIX64K_00000 => self.mtrr_fixed.get_mut(0),
            MSR_MTRRFIX16K_80000 | 0x259 => self
                .mtrr_fixed
                .get_mut((index - MSR_MTRRFIX16K_80000 + 1) as usize),
            MSR_MTRRFIX4K_C0000..=0x26f => self
                .mtrr_fixed
                .get_mut((index - MSR_MTRRFIX4K_C0000 + 3) as usize),
            MSR_MTRRDEFTYPE => Some(&mut self.mtrr_def_type),
            _ => None,
        }
    }
}

/// Upstream's rules for MSRs a guest may only touch when its CPUID has a
/// feature (or never), and for MSRs whose value has reserved bits:
/// `Err(UNKNOWN_MSR)` where upstream answers "unsupported",
/// `Err(EINVAL)` where it answers "invalid". `data` is `None` for reads.
fn check_access(st: &VcpuState, index: u32, data: Option<u64>, host: bool) -> Result {
    let has = |f| st.cpuid.has(f);
    let pv = |f| host || st.cpuid.pv_has(f);
    let write = data.is_some();
    let v = data.unwrap_or(0);
    let invalid = |bad: bool| if bad { Err(EINVAL) } else { Ok(()) };
    let unknown = |bad: bool| if bad { Err(UNKNOWN_MSR) } else { Ok(()) };
    match index {
        MSR_IA32_SPEC_CTRL => {
            let spec_ctrl = has(X86_FEATURE_SPEC_CTRL)
                || has(X86_FEATURE_AMD_STIBP)
                || has(X86_FEATURE_AMD_IBRS)
                || has(X86_FEATURE_AMD_SSBD);
            invalid(!(host || spec_ctrl))
        }
        MSR_AMD64_VIRT_SPEC_CTRL => {
            invalid((!host && !has(X86_FEATURE_VIRT_SSBD)) || v & !SPEC_CTRL_SSBD != 0)
        }
        // Write-only; IBPB/SBPB are not passed through: only 0.
        MSR_IA32_PRED_CMD => {
            unknown(!write)?;
            let pred =
                has(X86_FEATURE_SPEC_CTRL) || has(X86_FEATURE_AMD_IBPB) || has(X86_FEATURE_SBPB);
            invalid((!host && !pred) || v != 0)
        }
        // Write-only; there is no L1D flush on AMD hosts.
        MSR_IA32_FLUSH_CMD => {
            unknown(!write)?;
            invalid(true)
        }
        MSR_IA32_ARCH_CAPABILITIES => {
            unknown((!host || write) && !has(X86_FEATURE_ARCH_CAPABILITIES))?;
            unknown(write && !host)
        }
        MSR_IA32_PERF_CAPABILITIES => {
            unknown((!host || write) && !has(X86_FEATURE_PDCM))?;
            unknown(write && !host)?;
            // No vPMU: no capability bit.
            invalid(v != 0)
        }
        // No LBR virtualization: the records read 0 and take no write.
        MSR_IA32_LASTBRANCHFROMIP
        | MSR_IA32_LASTBRANCHTOIP
        | MSR_IA32_LASTINTFROMIP
        | MSR_IA32_LASTINTTOIP => unknown(write),
        // No IA32_FEATURE_CONTROL on AMD.
        MSR_IA32_FEAT_CTL => unknown(true),
        MSR_SMI_COUNT => invalid(write && !host),
        // No TSC scaling: the ratio stays 1.0; userspace may write it back
        // (or 0, which QEMU 6.2 does).
        MSR_AMD64_TSC_RATIO => invalid(!host || (write && v != 0 && v != TSC_RATIO_DEFAULT)),
        MSR_TSC_AUX => invalid(
            (!host && !has(X86_FEATURE_RDTSCP) && !has(X86_FEATURE_RDPID))
                || (st.cpuid.intel_compatible() && v >> 32 != 0),
        ),
        MSR_AMD64_OSVW_ID_LENGTH | MSR_AMD64_OSVW_STATUS => invalid(!has(X86_FEATURE_OSVW)),
        // Paravirtual MSRs: with KVM_CAP_ENFORCE_PV_FEATURE_CPUID the
        // guest needs the feature in its KVM leaf (userspace may always
        // save and restore them).
        MSR_KVM_WALL_CLOCK | MSR_KVM_SYSTEM_TIME => unknown(!pv(KVM_FEATURE_CLOCKSOURCE)),
        MSR_KVM_WALL_CLOCK_NEW | MSR_KVM_SYSTEM_TIME_NEW => unknown(!pv(KVM_FEATURE_CLOCKSOURCE2)),
        MSR_KVM_ASYNC_PF_EN => unknown(!pv(KVM_FEATURE_ASYNC_PF)),
        MSR_KVM_PV_EOI_EN => unknown(!pv(KVM_FEATURE_PV_EOI)),
        MSR_KVM_ASYNC_PF_ACK => unknown(!pv(KVM_FEATURE_ASYNC_PF_INT)),
        MSR_KVM_POLL_CONTROL => {
            unknown(!pv(KVM_FEATURE_POLL_CONTROL))?;
            invalid(v & !1 != 0)
        }
        MSR_KVM_ASYNC_PF_INT => {
            unknown(!pv(KVM_FEATURE_ASYNC_PF_INT))?;
            invalid(v >> 8 != 0)
        }
        MSR_KVM_STEAL_TIME => {
            unknown(!pv(KVM_FEATURE_STEAL_TIME))?;
            invalid(v & KVM_STEAL_RESERVED_MASK != 0)
        }
        MSR_FAM10H_MMIO_CONF_BASE => invalid(v != 0),
        MSR_K7_HWCR => {
            let mut valid = MSR_K7_HWCR_MCSTATUSWREN | MSR_K7_HWCR_TSCFREQSEL;
            if has(X86_FEATURE_GP_ON_USER_CPUID) {
                valid |= MSR_K7_HWCR_CPUID_USER_DIS;
            }
            invalid(v & !MSR_K7_HWCR_IGNORED & !valid != 0)
        }
        MSR_MTRRDEFTYPE if write => invalid(v & !MTRR_DEF_TYPE_VALID != 0 || !mtrr_type(v)),
        MSR_MTRRFIX64K_00000 | MSR_MTRRFIX16K_80000 | 0x259 | MSR_MTRRFIX4K_C0000..=0x26f
            if write =>
        {
            invalid(!(0..8).all(|i| mtrr_type(v >> (i * 8))))
        }
        MSR_MTRR_PHYS_BASE0..=0x20f if write => {
            let phys = u64::MAX
                .checked_shl(u32::from(cpuid::guest_maxphyaddr(st)))
                .unwrap_or(0);
            if (index - MSR_MTRR_PHYS_BASE0) % 2 == 0 {
                invalid(!mtrr_type(v) || v & (phys | MTRR_PHYS_BASE_RESERVED) != 0)
            } else {
                invalid(v & (phys | MTRR_PHYS_MASK_RESERVED) != 0)
            }
        }
        _ => Ok(()),
    }
}

/// Whether the low byte of `v` is a memory type MTRRs take (0, 1, 4, 5, 6).
fn mtrr_type(v: u64) -> bool {
    matches!(v & 0xff, 0 | 1 | 4 | 5 | 6)
}

/// `MTRRdefType`: type (7:0), fixed-range enable (10), enable (11).
const MTRR_DEF_TYPE_VALID: u64 = 0xcff;
/// Variable MTRR base bits 11:8 and mask bits 10:0 are reserved.
const MTRR_PHYS_BASE_RESERVED: u64 = 0xf00;
const MTRR_PHYS_MASK_RESERVED: u64 = 0x7ff;
/// MSR_AMD64_TSC_RATIO at reset: 1.0 (8.32 fixed point).
const TSC_RATIO_DEFAULT: u64 = 1 << 32;

/// Reads MSR `index` for the guest (`host` false) or KVM_GET_MSRS.
pub(crate) fn get(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, index: u32, host: bool) -> Result<u64> {
    if let Some(r) = lapic::read_msr(vcpu, st, index) {
        return r;
    }
    match check_access(st, index, None, host) {
        Ok(()) => {}
        // Userspace reads 0 from what the guest may not have (upstream's
        // rule for the MSRs it lists).
        Err(e) if e == UNKNOWN_MSR && host => return Ok(0),
        Err(e) => return Err(e),
    }
    // Userspace reads L1's TSC, also while a nested guest runs (whose TSC
    // the guest's own read returns), as upstream: KVM_SET_MSRS writes L1's.
    if index == MSR_IA32_TSC && host {
        return Ok(crate::ext::time::rdtsc().wrapping_add(st.hw.tsc_offset()));
    }
    match st.hw.get_msr(index) {
        MsrAccess::Done(v) => return Ok(v),
        MsrAccess::Fault => return Err(EINVAL),
        MsrAccess::NotMine => {}
    }
    let m = &mut st.msrs;
    Ok(match index {
        MSR_IA32_APICBASE => m.apic_base,
        MSR_IA32_MISC_ENABLE => m.misc_enable,
        MSR_IA32_TSC_ADJUST => m.tsc_adjust,
        MSR_IA32_UCODE_REV => m.ucode_rev,
        // KVM_CAP_MSR_PLATFORM_INFO may hide it from the guest.
        MSR_PLATFORM_INFO if !host && !vm.arch().guest_reads_platform_info() => return Err(EINVAL),
        MSR_PLATFORM_INFO => m.platform_info,
        MSR_MISC_FEATURES_ENABLES => m.misc_features_enables,
        MSR_IA32_LASTBRANCHFROMIP
        | MSR_IA32_LASTBRANCHTOIP
        | MSR_IA32_LASTINTFROMIP
        | MSR_IA32_LASTINTTOIP => 0,
        MSR_AMD64_OSVW_ID_LENGTH => m.osvw[0],
        MSR_AMD64_OSVW_STATUS => m.osvw[1],
        MSR_IA32_SMBASE if host => m.smbase,
        MSR_IA32_SMBASE => return Err(EINVAL),
        MSR_IA32_PLATFORM_ID => 0,
        MSR_MTRRCAP => MTRRCAP_VALUE,
        MSR_IA32_MCG_CAP => m.mcg_cap,
        MSR_IA32_MCG_STATUS => m.mcg_status,
        MSR_IA32_MCG_CTL if host || m.mcg_cap & MCG_CTL_P != 0 => m.mcg_ctl,
        MSR_IA32_MC0_CTL..=0x47f => *m.mce_slot(index).ok_or(EINVAL)?,
        MSR_IA32_POWER_CTL => m.power_ctl,
        MSR_K7_HWCR => m.hwcr,
        MSR_AMD64_NB_CFG => 0,
        i if READ_AS_ZERO_MSRS.contains(&i) => 0,
        MSR_FSB_FREQ => FSB_FREQ_VALUE,
        // No PMU: the legacy AMD counters read as zero, as upstream.
        MSR_K7_EVNTSEL0..=MSR_K7_PERFCTR3 => 0,
        i => match m.mtrr_slot(i) {
            Some(v) => *v,
            None => match m.stored_slot(i) {
                Some(v) => *v,
                None => {
                    ignored(vcpu, "rdmsr", index, None)?;
                    0
                }
            },
        },
    })
}

/// The error of [`get`] and [`set`] for an MSR rkvm does not know
/// (upstream's KVM_MSR_RET_UNSUPPORTED), as opposed to an invalid access
/// to a known one (`EINVAL`). Never returned to userspace: KVM_GET/SET_MSRS
/// only count the entries that worked.
pub(crate) const UNKNOWN_MSR: Error = ENOENT;

/// How a failed guest MSR access is reported to userspace.
pub(crate) fn fault_of(e: Error) -> MsrFault {
    if e == UNKNOWN_MSR {
        MsrFault::Unknown
    } else {
        MsrFault::Invalid
    }
}

/// An access to an MSR rkvm does not know: #GP ([`UNKNOWN_MSR`]), or with
/// `ignore_msrs` ignored (reads 0), and reported if `report_ignored_msrs`,
/// as upstream's kvm_msr_ignored_check().
fn ignored(vcpu: &Vcpu, what: &str, index: u32, data: Option<u64>) -> Result {
    if !params::IGNORE_MSRS.get() {
        return Err(UNKNOWN_MSR);
    }
    if params::REPORT_IGNORED_MSRS.get() && crate::ext::print::ratelimit_ok() {
        match data {
            Some(d) => pr_info!(
                "vcpu{} ignored {}: {:#x} data {:#x}\n",
                vcpu.index(),
                what,
                index,
                d
            ),
            None => pr_info!("vcpu{} ignored {}: {:#x}\n", vcpu.index(), what, index),
        }
    }
    Ok(())
}

/// Writes MSR `index` for the guest (`host` false) or KVM_SET_MSRS.
pub(crate) fn set(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    index: u32,
    value: u64,
    host: bool,
) -> Result {
    if let Some(r) = lapic::write_msr(vm, vcpu, st, index, value, host) {
        return r;
    }
    if index == MSR_EFER {
        return set_efer(st, value, host);
    }
    if index == MSR_IA32_CR_PAT && !valid_pat(value) {
        return Err(EINVAL);
    }
    match check_access(st, index, Some(value), host) {
        Ok(()) => {}
        // Userspace may write 0 to what it may read (upstream's rule for
        // the MSRs it lists).
        Err(e) if e == UNKNOWN_MSR && host && value == 0 => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut value = value;
    match index {
        // Userspace TSC writes keep the VM on one TSC where they can.
        MSR_IA32_TSC if host => {
            st.hw.set_tsc_offset(kvmclock::tsc_write(vm, value));
            return Ok(());
        }
        // A guest TSC write moves IA32_TSC_ADJUST by as much.
        MSR_IA32_TSC => {
            let old = st.hw.tsc_offset();
            let new = value.wrapping_sub(crate::ext::time::rdtsc());
            st.hw.set_tsc_offset(new);
            st.msrs.tsc_adjust = st.msrs.tsc_adjust.wrapping_add(new.wrapping_sub(old));
            st.clock.mark_dirty();
            return Ok(());
        }
        // Without the CPUID feature writes are dropped; a guest write
        // moves the TSC by the change.
        MSR_IA32_TSC_ADJUST => {
            if st.cpuid.has(X86_FEATURE_TSC_ADJUST) {
                if !host {
                    let adj = value.wrapping_sub(st.msrs.tsc_adjust);
                    let off = st.hw.tsc_offset().wrapping_add(adj);
                    st.hw.set_tsc_offset(off);
                    st.clock.mark_dirty();
                }
                st.msrs.tsc_adjust = value;
            }
            return Ok(());
        }
        // AMD ignores bits 63:32 (an Intel-compatible guest got #GP above).
        MSR_TSC_AUX => value &= 0xffff_ffff,
        // An Intel-compatible guest has 64-bit SYSENTER and canonical
        // addresses (upstream intercepts these MSRs then and keeps the high
        // halves); for an AMD guest the MSRs are the CPU's, which the
        // guest writes as it likes, and userspace's writes keep 32 bits
        // (upstream's svm_set_msr()).
        MSR_IA32_SYSENTER_EIP | MSR_IA32_SYSENTER_ESP => {
            if st.cpuid.intel_compatible() {
                value = canonical(value);
            } else if host {
                value &= 0xffff_ffff;
            }
        }
        // The guest's PMU bits are read-only (PEBS and BTS unavailable),
        // EMON writes are ignored.
        MSR_IA32_MISC_ENABLE => {
            let old = st.msrs.misc_enable;
            if !host {
                if (old ^ value) & MISC_ENABLE_RESET != 0 {
                    return Err(EINVAL);
                }
                value = (value & !MSR_IA32_MISC_ENABLE_EMON) | (old & MSR_IA32_MISC_ENABLE_EMON);
            }
            // Without KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT, MISC_ENABLE.MWAIT
            // drives CPUID.1:ECX.MWAIT, and only an SSE3 guest may flip it.
            let follows = !vm.arch().quirk(uapi::KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT);
            if follows
                && (old ^ value) & MSR_IA32_MISC_ENABLE_MWAIT != 0
                && !st.cpuid.has(X86_FEATURE_XMM3)
            {
                return Err(EINVAL);
            }
            st.cpuid.set_mwait_follows_misc_enable(follows);
        }
        MSR_K7_HWCR => value &= !MSR_K7_HWCR_IGNORED,
        _ => {}
    }
    match index {
        MSR_KVM_SYSTEM_TIME | MSR_KVM_SYSTEM_TIME_NEW => st.clock.set_msr(value),
        MSR_KVM_WALL_CLOCK | MSR_KVM_WALL_CLOCK_NEW => {
            kvmclock::write_wall_clock(vm, Gpa::new(value))
        }
        _ => {}
    }
    match st.hw.set_msr(index, value, host) {
        MsrAccess::Done(_) => return Ok(()),
        MsrAccess::Fault => return Err(EINVAL),
        MsrAccess::NotMine => {}
    }
    let m = &mut st.msrs;
    if let Some(r) = m.set_mce(index, value, host) {
        return r;
    }
    match index {
        MSR_IA32_APICBASE => m.set_apic_base(value, host)?,
        MSR_IA32_MISC_ENABLE => m.misc_enable = value,
        MSR_AMD64_OSVW_ID_LENGTH => m.osvw[0] = value,
        MSR_AMD64_OSVW_STATUS => m.osvw[1] = value,
        MSR_FAM10H_MMIO_CONF_BASE => {}
        // The ratio stays 1.0 (checked above).
        MSR_AMD64_TSC_RATIO => {}
        // Guest writes are ignored; userspace may set the revision.
        MSR_IA32_UCODE_REV => {
            if host {
                m.ucode_rev = value;
            }
        }
        MSR_IA32_SMBASE if host => m.smbase = value,
        MSR_IA32_SMBASE => return Err(EINVAL),
        MSR_IA32_POWER_CTL => m.power_ctl = value,
        // Only userspace sets what the platform offers.
        MSR_PLATFORM_INFO => {
            if !host {
                return Err(EINVAL);
            }
            m.platform_info = value;
        }
        // CPUID faulting, if the platform offers it.
        MSR_MISC_FEATURES_ENABLES => {
            if value & !MSR_MISC_FEATURES_ENABLES_CPUID_FAULT != 0
                || (value & MSR_MISC_FEATURES_ENABLES_CPUID_FAULT != 0
                    && m.platform_info & MSR_PLATFORM_INFO_CPUID_FAULT == 0)
            {
                return Err(EINVAL);
            }
            m.misc_features_enables = value;
        }
        MSR_K7_HWCR => m.hwcr = value,
        MSR_AMD64_NB_CFG | MSR_K7_EVNTSEL0..=MSR_K7_PERFCTR3 => {}
        i if WRITE_IGNORED_MSRS.contains(&i) => {}
        i => match m.mtrr_slot(i) {
            Some(v) => *v = value,
            None => match m.stored_slot(i) {
                Some(v) => *v = value,
                None => ignored(vcpu, "wrmsr", index, Some(value))?,
            },
        },
    }
    Ok(())
}

/// `v` made canonical for 48-bit (or, with LA57 on the host, 57-bit)
/// virtual addresses, as upstream's __canonical_address() with
/// max_host_virt_addr_bits().
fn canonical(v: u64) -> u64 {
    let la57 = LinuxFeature::of(X86_FEATURE_LA57).is_some_and(|l| msr::cpu_has(l.0));
    let bits = if la57 { 57 } else { 48 };
    let shift = 64 - bits;
    (((v << shift) as i64) >> shift) as u64
}

/// Every PAT entry must be a valid memory type (0, 1, 4, 5, 6, 7).
fn valid_pat(v: u64) -> bool {
    (0..8).all(|i| matches!((v >> (i * 8)) & 0xff, 0 | 1 | 4 | 5 | 6 | 7))
}

/// The EFER bits this KVM supports (upstream's
/// `kvm_caps.supported_efer_bits`): SCE and long mode, NX, FFXSR and
/// automatic IBRS when the host has them; SVME with nested SVM.
fn supported_efer() -> u64 {
    let host = |f: Feature| LinuxFeature::of(f).is_some_and(|l| msr::cpu_has(l.0));
    let mut v = EFER_SCE | EFER_LME | EFER_LMA;
    if crate::x86::vendor::registered_ops().is_ok_and(|o| o.nested()) {
        v |= EFER_SVME;
    }
    for (f, bit) in [
        (X86_FEATURE_NX, EFER_NX),
        (X86_FEATURE_FXSR_OPT, EFER_FFXSR),
        (X86_FEATURE_AUTOIBRS, EFER_AUTOIBRS),
    ] {
        if host(f) {
            v |= bit;
        }
    }
    v
}

/// Whether the guest's CPUID allows every bit of `efer` (upstream's
/// __kvm_valid_efer()).
fn guest_valid_efer(st: &VcpuState, efer: u64) -> bool {
    let has = |f| st.cpuid.has(f);
    !((efer & EFER_AUTOIBRS != 0 && !has(X86_FEATURE_AUTOIBRS))
        || (efer & EFER_FFXSR != 0 && !has(X86_FEATURE_FXSR_OPT))
        || (efer & EFER_SVME != 0 && !has(X86_FEATURE_SVM))
        || (efer & (EFER_LME | EFER_LMA) != 0 && !has(X86_FEATURE_LM))
        || (efer & EFER_NX != 0 && !has(X86_FEATURE_NX)))
}

/// Upstream's kvm_valid_efer() (KVM_SET_SREGS).
fn valid_efer(st: &VcpuState, efer: u64) -> bool {
    efer & !supported_efer() == 0 && guest_valid_efer(st, efer)
}

/// WRMSR/KVM_SET_MSRS of EFER (upstream's set_efer()): only supported
/// bits; the guest also needs the CPUID features and cannot toggle LME
/// with paging on; LMA is the CPU's.
fn set_efer(st: &mut VcpuState, mut value: u64, host: bool) -> Result {
    if value & !supported_efer() != 0 {
        return Err(EINVAL);
    }
    let old = st.hw.efer();
    if !host {
        if !guest_valid_efer(st, value) {
            return Err(EINVAL);
        }
        if st.hw.cr0() & X86_CR0_PG != 0 && (old ^ value) & EFER_LME != 0 {
            return Err(EINVAL);
        }
    }
    value = (value & !EFER_LMA) | (old & EFER_LMA);
    match st.hw.set_msr(MSR_EFER, value, host) {
        MsrAccess::Done(_) => Ok(()),
        _ => Err(EINVAL),
    }
}

/// Whether the guest runs 64-bit code (long mode and CS.L).
fn is_64_bit_mode(st: &VcpuState) -> bool {
    st.hw.efer() & EFER_LMA != 0 && st.hw.segment(Seg::Cs).l != 0
}

/// Whether `cr0` is valid (upstream's kvm_is_valid_cr0()): no bits above
/// 31, NW only with CD, PG only with PE.
fn valid_cr0(cr0: u64) -> bool {
    cr0 >> 32 == 0
        && !(cr0 & X86_CR0_NW != 0 && cr0 & X86_CR0_CD == 0)
        && !(cr0 & X86_CR0_PG != 0 && cr0 & X86_CR0_PE == 0)
}

/// MOV to CR0 (emulated), with upstream's kvm_set_cr0() checks (#GP on
/// failure): reserved bits below 32 are ignored; long mode needs PAE and
/// a non-64-bit CS when paging goes on; PAE paging outside long mode
/// needs valid PDPTEs; paging stays on in 64-bit code and with PCIDs;
/// WP stays on with CET.
pub(crate) fn set_cr0(vm: &Vm, st: &mut VcpuState, val: u64) -> Result {
    let old = st.hw.cr0();
    if !valid_cr0(val) {
        return Err(EINVAL);
    }
    let cr0 = (val | X86_CR0_ET) & CR0_VALID_BITS;
    let (efer, cr4) = (st.hw.efer(), st.hw.cr4());
    if efer & EFER_LME != 0 && old & X86_CR0_PG == 0 && cr0 & X86_CR0_PG != 0 {
        if cr4 & X86_CR4_PAE == 0 || st.hw.segment(Seg::Cs).l != 0 {
            return Err(EINVAL);
        }
    }
    if efer & EFER_LME == 0
        && cr0 & X86_CR0_PG != 0
        && cr4 & X86_CR4_PAE != 0
        && (cr0 ^ old) & X86_CR0_PDPTR_BITS != 0
        && !regs::load_pdptrs(vm, st, st.hw.cr3())
    {
        return Err(EINVAL);
    }
    if cr0 & X86_CR0_PG == 0 && (is_64_bit_mode(st) || cr4 & X86_CR4_PCIDE != 0) {
        return Err(EINVAL);
    }
    if cr0 & X86_CR0_WP == 0 && cr4 & X86_CR4_CET != 0 {
        return Err(EINVAL);
    }
    st.hw.set_cr(0, cr0);
    if (cr0 ^ old) & (X86_CR0_PG | X86_CR0_WP) != 0 {
        st.hw.flush_tlb();
    }
    Ok(())
}

/// MOV to CR3 (emulated), as upstream's kvm_set_cr3(): with PCIDs, bit 63
/// asks not to flush; no bits beyond MAXPHYADDR; PAE paging reloads (and
/// checks) the PDPTEs.
pub(crate) fn set_cr3(vm: &Vm, st: &mut VcpuState, val: u64) -> Result {
    let mut cr3 = val;
    let mut flush = true;
    if st.hw.cr4() & X86_CR4_PCIDE != 0 {
        flush = cr3 & X86_CR3_PCID_NOFLUSH == 0;
        cr3 &= !X86_CR3_PCID_NOFLUSH;
    }
    let pae = regs::pae_paging(st.hw.cr0(), st.hw.cr4(), st.hw.efer());
    if cr3 != st.hw.cr3() || pae {
        if cr3 >> cpuid::guest_maxphyaddr(st) != 0 {
            return Err(EINVAL);
        }
        if pae && !regs::load_pdptrs(vm, st, cr3) {
            return Err(EINVAL);
        }
        st.hw.set_cr(3, cr3);
        st.shadow.cr3_written();
    }
    if flush {
        st.hw.flush_tlb();
    }
    Ok(())
}

/// The CR4 bits this guest may set (upstream's `__cr4_reserved_bits()`,
/// inverted, over the features both its CPUID and this KVM have).
pub(crate) fn cr4_valid_bits(st: &VcpuState) -> u64 {
    let mut v = CR4_BASE;
    for (has, cr4_bit) in [
        (st.cpuid.has(X86_FEATURE_UMIP), X86_CR4_UMIP),
        (st.cpuid.has(X86_FEATURE_LA57), X86_CR4_LA57),
        (st.cpuid.has(X86_FEATURE_VMX), X86_CR4_VMXE),
        (st.cpuid.has(X86_FEATURE_FSGSBASE), X86_CR4_FSGSBASE),
        (st.cpuid.has(X86_FEATURE_PCID), X86_CR4_PCIDE),
        (st.cpuid.has(X86_FEATURE_XSAVE), X86_CR4_OSXSAVE),
        (st.cpuid.has(X86_FEATURE_SMEP), X86_CR4_SMEP),
        (st.cpuid.has(X86_FEATURE_SMAP), X86_CR4_SMAP),
        (st.cpuid.has(X86_FEATURE_PKU), X86_CR4_PKE),
        (
            st.cpuid.has(X86_FEATURE_SHSTK) || st.cpuid.has(X86_FEATURE_IBT),
            X86_CR4_CET,
        ),
        (st.cpuid.has(X86_FEATURE_LAM), X86_CR4_LAM_SUP),
    ] {
        if has {
            v |= cr4_bit;
        }
    }
    v
}

/// `kvm_is_valid_sregs()`: what KVM_SET_SREGS must refuse with EINVAL.
/// Long mode (LME and PG) needs PAE, LMA and a CR3 within MAXPHYADDR;
/// otherwise neither LMA nor a 64-bit CS; CR4, CR0 and EFER valid.
pub(crate) fn check_sregs(st: &VcpuState, s: &uapi::kvm_sregs) -> Result {
    let mode_ok = if s.efer & EFER_LME != 0 && s.cr0 & X86_CR0_PG != 0 {
        // Long mode needs PAE and LMA, a CR3 within MAXPHYADDR; not both
        // CS.L and CS.D.
        let maxphy = u32::from(cpuid::guest_maxphyaddr(st));
        s.cr4 & X86_CR4_PAE != 0
            && s.efer & EFER_LMA != 0
            && s.cr3.checked_shr(maxphy).unwrap_or(0) == 0
            && !(s.cs.l != 0 && s.cs.db != 0)
    } else {
        s.efer & EFER_LMA == 0 && s.cs.l == 0
    };
    let cr4_ok = s.cr4 & !cr4_valid_bits(st) == 0;
    // Deviation from upstream: a nested SVM guest's state (EFER.SVME) may
    // be in paged real mode (CR0.PG without PE), which VMRUN runs and an
    // L1 on shadow paging gives its real-mode guests. Userspace restoring
    // a vCPU saved while such an L2 ran (QEMU puts SREGS2 before the
    // nested state) must get it back; upstream never meets it because its
    // L1 has nested NPT.
    let paged_real = s.efer & EFER_SVME != 0
        && s.cr0 & (X86_CR0_PG | X86_CR0_PE) == X86_CR0_PG
        && valid_cr0(s.cr0 | X86_CR0_PE);
    let cr0_ok = valid_cr0(s.cr0) || paged_real;
    if mode_ok && cr4_ok && cr0_ok && valid_efer(st, s.efer) {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// MOV to CR4 (emulated), as upstream's kvm_set_cr4() (#GP on failure):
/// only bits this guest may set; in long mode PAE stays on and LA57 does
/// not change; PAE paging outside long mode reloads (and checks) the
/// PDPTEs when paging-structure bits change; PCIDs go on only in long
/// mode with CR3[11:0] zero; CET needs WP.
pub(crate) fn set_cr4(vm: &Vm, st: &mut VcpuState, val: u64) -> Result {
    let old = st.hw.cr4();
    if val & !cr4_valid_bits(st) != 0 {
        return Err(EINVAL);
    }
    let lma = st.hw.efer() & EFER_LMA != 0;
    if lma {
        if val & X86_CR4_PAE == 0 || (old ^ val) & X86_CR4_LA57 != 0 {
            return Err(EINVAL);
        }
    } else if st.hw.cr0() & X86_CR0_PG != 0
        && val & X86_CR4_PAE != 0
        && (old ^ val) & X86_CR4_PDPTR_BITS != 0
        && !regs::load_pdptrs(vm, st, st.hw.cr3())
    {
        return Err(EINVAL);
    }
    if val & X86_CR4_PCIDE != 0
        && old & X86_CR4_PCIDE == 0
        && (offset_in_page(st.hw.cr3()) != 0 || !lma)
    {
        return Err(EINVAL);
    }
    if val & X86_CR4_CET != 0 && st.hw.cr0() & X86_CR0_WP == 0 {
        return Err(EINVAL);
    }
    st.hw.set_cr(4, val);
    st.hw.flush_tlb();
    Ok(())
}

/// MOV to DR6/DR7 and the other debug registers (emulated), as upstream's
/// kvm_set_dr(): bits 63:32 of DR6/DR7 are #GP; the rest keep only their
/// volatile bits, with the fixed-1 bits set (DR6's RTM and bus-lock bits
/// stay 1 unless the guest has those features).
pub(crate) fn set_dr(st: &mut VcpuState, n: u8, val: u64) -> Result {
    match n {
        0..=3 => st.hw.set_dr(n, val),
        4 | 6 => {
            if val >> 32 != 0 {
                return Err(EINVAL);
            }
            let mut fixed = DR6_FIXED_1;
            if !st.cpuid.has(X86_FEATURE_RTM) {
                fixed |= DR6_RTM;
            }
            if !st.cpuid.has(X86_FEATURE_BUS_LOCK_DETECT) {
                fixed |= DR6_BUS_LOCK;
            }
            st.hw.set_dr(6, (val & DR6_VOLATILE) | fixed);
        }
        _ => {
            if val >> 32 != 0 {
                return Err(EINVAL);
            }
            st.hw.set_dr(7, (val & DR7_VOLATILE) | DR7_FIXED_1);
        }
    }
    Ok(())
}

/// XSETBV / KVM_SET_XCRS: XCR0 with upstream's consistency rules.
pub(crate) fn set_xcr(st: &mut VcpuState, index: u32, xcr0: u64) -> Result {
    if index != 0 {
        return Err(EINVAL);
    }
    let leaf = cpuid::lookup(st, 0xd, 0);
    let guest_supported = (u64::from(leaf[3]) << 32 | u64::from(leaf[0])) & host_xcr0();
    let valid = guest_supported | XFEATURE_MASK_FP;
    if xcr0 & XFEATURE_MASK_FP == 0
        || (xcr0 & XFEATURE_MASK_YMM != 0 && xcr0 & XFEATURE_MASK_SSE == 0)
        || xcr0 & !valid != 0
        || (xcr0 & XFEATURE_MASK_BNDREGS == 0) != (xcr0 & XFEATURE_MASK_BNDCSR == 0)
        || (xcr0 & XFEATURE_MASK_AVX512 != 0
            && (xcr0 & XFEATURE_MASK_YMM == 0
                || xcr0 & XFEATURE_MASK_AVX512 != XFEATURE_MASK_AVX512))
        || (xcr0 & XFEATURE_MASK_XTILE != 0 && xcr0 & XFEATURE_MASK_XTILE != XFEATURE_MASK_XTILE)
    {
        return Err(EINVAL);
    }
    st.msrs.xcr0 = xcr0;
    Ok(())
}

/// KVM_GET_MSRS on a vCPU.
pub(crate) fn get_msrs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result<isize> {
    msr_io(arg, false, |index, data| {
        *data = get(vm, vcpu, st, index, true)?;
        Ok(())
    })
}

/// KVM_SET_MSRS on a vCPU. Once the vCPU has run, the MSRs that describe
/// its CPU model (feature MSRs) only take their current value, as
/// upstream's do_set_msr().
pub(crate) fn set_msrs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result<isize> {
    msr_io(arg, true, |index, data| {
        if st.has_run
            && index != MSR_IA32_UCODE_REV
            && FEATURE_MSRS.contains(&index)
            && get(vm, vcpu, st, index, true).ok() != Some(*data)
        {
            return Err(EINVAL);
        }
        set(vm, vcpu, st, index, *data, true)
    })
}

/// The `struct kvm_msrs` protocol: applies `f` to the entries in order
/// until one fails, writes the values back for reads, and returns how
/// many succeeded.
pub(crate) fn msr_io(
    arg: usize,
    write: bool,
    mut f: impl FnMut(u32, &mut u64) -> Result,
) -> Result<isize> {
    let hdr: uapi::kvm_msrs = read_arg(arg)?;
    if hdr.nmsrs >= MAX_IO_MSRS {
        return Err(E2BIG);
    }
    let base = arg + core::mem::size_of::<uapi::kvm_msrs>();
    let mut entries: KVec<uapi::kvm_msr_entry> = read_array(base, hdr.nmsrs as usize)?;
    let mut done = 0;
    for e in entries.iter_mut() {
        if f(e.index, &mut e.data).is_err() {
            break;
        }
        done += 1;
    }
    if !write {
        write_array(base, &entries)?;
    }
    Ok(done)
}

/// Writes `list` as a `struct kvm_msr_list` at `arg`: `E2BIG` (with
/// `nmsrs` updated) if userspace's array is too small.
pub(crate) fn write_msr_list(arg: usize, list: &[u32]) -> Result<isize> {
    let mut hdr: uapi::kvm_msr_list = read_arg(arg)?;
    let user_n = hdr.nmsrs as usize;
    hdr.nmsrs = list.len() as u32;
    write_arg(arg, &hdr)?;
    if user_n < list.len() {
        return Err(E2BIG);
    }
    write_array(arg + core::mem::size_of::<uapi::kvm_msr_list>(), list)?;
    Ok(0)
}

/// KVM_X86_GET_MCE_CAP_SUPPORTED (on /dev/kvm).
pub(crate) fn x86_get_mce_cap_supported(arg: usize) -> Result<isize> {
    write_arg(arg, &SUPPORTED_MCE_CAP).map(|()| 0)
}

/// KVM_X86_SETUP_MCE.
pub(crate) fn x86_setup_mce(st: &mut VcpuState, arg: usize) -> Result {
    st.msrs.setup_mce(read_arg(arg)?)
}

/// KVM_X86_SET_MCE: injecting machine checks is not supported yet
/// (EINVAL, whatever the argument).
pub(crate) fn x86_set_mce(_st: &mut VcpuState, _arg: usize) -> Result {
    Err(EINVAL)
}
