// SPDX-License-Identifier: GPL-2.0
//! MSRs, control registers and XCR0 as the core sees them: the MSRs every
//! vendor shares (APIC base, MTRRs, MISC_ENABLE, ...), the architectural
//! checks on CR0/CR3/CR4/EFER/XCR0 writes, and KVM_GET/SET_MSRS.

use crate::{
    ext::{
        fpu::regs::host_xcr0,
        uaccess::{read_arg, read_array, write_arg, write_array},
        uapi,
    },
    virt::{vcpu::Vcpu, vm::Vm},
    x86::{
        cpuid,
        irq::lapic,
        kvmclock,
        msr_filter::MsrFault,
        params,
        vcpu::VcpuState,
        vendor::{MsrAccess, Seg},
    },
};
use kernel::prelude::*;

use crate::defs::{
    msr::*,
    paging::{offset_in_page, Gpa},
    regs::*,
};

/// Model-specific MSRs that read as zero (upstream's list in
/// kvm_get_msr_common(): platform, SYSCFG/TSEG, interrupt-pending message,
/// MMIO config base, BU/DC/TW/EX config, PERF_CTL, RAPL energy counters,
/// the two P6 counters and event selectors without a vPMU).
const READ_AS_ZERO_MSRS: [u32; 20] = [
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
];
/// Writes upstream accepts and drops (kvm_set_msr_common(); the P6
/// counters without a vPMU).
const WRITE_IGNORED_MSRS: [u32; 10] = [
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
];
/// "FSB frequency": upstream answers 3.
const FSB_FREQ_VALUE: u64 = 3;

/// CR4 bits 0-10 (VME through OSXMMEXCPT): valid on any x86-64 CPU.
const CR4_BASE: u64 = 0x7ff;

/// MISC_ENABLE reset value: PEBS and BTS unavailable (as upstream).
const MISC_ENABLE_RESET: u64 = MSR_IA32_MISC_ENABLE_BTS_UNAVAIL | MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL;
/// MTRRCAP: 8 variable ranges, fixed ranges, write-combining.
const MTRRCAP_VALUE: u64 = KVM_NR_VAR_MTRR as u64 | MTRR_CAP_FIX | MTRR_CAP_WC;
/// Microcode revision userspace sees by default (upstream's value).
const UCODE_REV_DEFAULT: u64 = 0x1_0000_0000;

/// MSRs in KVM_GET_MSR_INDEX_LIST that VMMs save and restore but rkvm
/// does not act on yet: their values round-trip (guest and host writes),
/// with upstream's reset values. The features behind them (the other PV
/// MSRs, speculation controls, LBRs, ...) are not advertised in CPUID
/// until they are implemented.
const STORED_MSRS: [(u32, u64); 22] = [
    (MSR_KVM_WALL_CLOCK, 0),
    (MSR_KVM_SYSTEM_TIME, 0),
    (MSR_SMI_COUNT, 0),
    (MSR_IA32_FEAT_CTL, 0),
    (MSR_IA32_SPEC_CTRL, 0),
    (MSR_IA32_ARCH_CAPABILITIES, 0),
    (MSR_IA32_LASTBRANCHFROMIP, 0),
    (MSR_IA32_LASTBRANCHTOIP, 0),
    (MSR_IA32_LASTINTFROMIP, 0),
    (MSR_IA32_LASTINTTOIP, 0),
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
    /// Reset values; `bsp` for vCPU 0.
    pub(crate) fn new(bsp: bool) -> Self {
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
            ucode_rev: UCODE_REV_DEFAULT,
            platform_info: MSR_PLATFORM_INFO_CPUID_FAULT,
            misc_features_enables: 0,
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

/// Reads MSR `index` for the guest (`host` false) or KVM_GET_MSRS.
pub(crate) fn get(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, index: u32, host: bool) -> Result<u64> {
    if let Some(r) = lapic::read_msr(vcpu, st, index) {
        return r;
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
    // Userspace TSC writes keep the VM on one TSC where they can.
    if index == MSR_IA32_TSC && host {
        st.hw.set_tsc_offset(kvmclock::tsc_write(vm, value));
        return Ok(());
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
        MSR_IA32_TSC_ADJUST => m.tsc_adjust = value,
        // Guest writes are ignored; userspace may set the revision.
        MSR_IA32_UCODE_REV => {
            if host {
                m.ucode_rev = value;
            }
        }
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

/// Every PAT entry must be a valid memory type (0, 1, 4, 5, 6, 7).
fn valid_pat(v: u64) -> bool {
    (0..8).all(|i| matches!((v >> (i * 8)) & 0xff, 0 | 1 | 4 | 5 | 6 | 7))
}

fn set_efer(st: &mut VcpuState, mut value: u64, host: bool) -> Result {
    let allowed = EFER_SCE | EFER_LME | EFER_LMA | EFER_NX | EFER_FFXSR;
    if value & !allowed != 0 {
        return Err(EINVAL);
    }
    if !host {
        let old = st.hw.efer();
        if st.hw.cr0() & X86_CR0_PG != 0 && (old ^ value) & EFER_LME != 0 {
            return Err(EINVAL);
        }
        // LMA is the CPU's to set.
        value = (value & !EFER_LMA) | (old & EFER_LMA);
    }
    match st.hw.set_msr(MSR_EFER, value, host) {
        MsrAccess::Done(_) => Ok(()),
        _ => Err(EINVAL),
    }
}

/// MOV to CR0 (emulated), with the architectural checks.
pub(crate) fn set_cr0(st: &mut VcpuState, val: u64) -> Result {
    let cr0 = val | X86_CR0_ET;
    if cr0 >> 32 != 0 || (cr0 & X86_CR0_NW != 0 && cr0 & X86_CR0_CD == 0) {
        return Err(EINVAL);
    }
    if cr0 & X86_CR0_PG != 0 && cr0 & X86_CR0_PE == 0 {
        return Err(EINVAL);
    }
    let paging_on = st.hw.cr0() & X86_CR0_PG == 0 && cr0 & X86_CR0_PG != 0;
    if paging_on && st.hw.efer() & EFER_LME != 0 {
        if st.hw.cr4() & X86_CR4_PAE == 0 || st.hw.segment(Seg::Cs).l != 0 {
            return Err(EINVAL);
        }
    }
    // Paging cannot go off with PCIDs on, nor WP with CET on.
    let cr4 = st.hw.cr4();
    if (cr0 & X86_CR0_PG == 0 && cr4 & X86_CR4_PCIDE != 0)
        || (cr0 & X86_CR0_WP == 0 && cr4 & X86_CR4_CET != 0)
    {
        return Err(EINVAL);
    }
    st.hw.set_cr(0, cr0);
    Ok(())
}

/// MOV to CR3 (emulated).
pub(crate) fn set_cr3(st: &mut VcpuState, val: u64) -> Result {
    if st.hw.efer() & EFER_LMA != 0 && val >> cpuid::guest_maxphyaddr(st) != 0 {
        return Err(EINVAL);
    }
    st.hw.set_cr(3, val);
    st.hw.flush_tlb();
    Ok(())
}

/// The CR4 bits the guest's CPUID allows (upstream's
/// `__cr4_reserved_bits()`, inverted).
pub(crate) fn cr4_valid_bits(st: &VcpuState) -> u64 {
    let l1 = cpuid::lookup(st, 1, 0);
    let l7 = cpuid::lookup(st, 7, 0);
    let bit = |reg: u32, b: u32| reg & (1 << b) != 0;
    let mut v = CR4_BASE;
    for (has, cr4_bit) in [
        (bit(l7[2], 2), 11),                   // UMIP
        (bit(l7[2], 16), 12),                  // LA57
        (bit(l7[1], 0), 16),                   // FSGSBASE
        (bit(l1[2], 17), 17),                  // PCIDE
        (bit(l1[2], 26), 18),                  // OSXSAVE (XSAVE)
        (bit(l7[1], 7), 20),                   // SMEP
        (bit(l7[1], 20), 21),                  // SMAP
        (bit(l7[2], 3), 22),                   // PKE (PKU)
        (bit(l7[2], 7) || bit(l7[3], 20), 23), // CET (SHSTK or IBT)
    ] {
        if has {
            v |= 1 << cr4_bit;
        }
    }
    v
}

/// `kvm_is_valid_sregs()`: what KVM_SET_SREGS must refuse with EINVAL.
pub(crate) fn check_sregs(st: &VcpuState, s: &uapi::kvm_sregs) -> Result {
    let cr0_ok = s.cr0 >> 32 == 0
        && !(s.cr0 & X86_CR0_PG != 0 && s.cr0 & X86_CR0_PE == 0)
        && !(s.cr0 & X86_CR0_NW != 0 && s.cr0 & X86_CR0_CD == 0);
    let cr4_ok = s.cr4 & !cr4_valid_bits(st) == 0;
    let mode_ok = if s.efer & EFER_LME != 0 && s.cr0 & X86_CR0_PG != 0 {
        // Long mode needs PAE and LMA; not both CS.L and CS.D.
        s.cr4 & X86_CR4_PAE != 0 && s.efer & EFER_LMA != 0 && !(s.cs.l != 0 && s.cs.db != 0)
    } else {
        s.efer & EFER_LMA == 0 && s.cs.l == 0
    };
    if cr0_ok && cr4_ok && mode_ok {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// MOV to CR4 (emulated).
pub(crate) fn set_cr4(st: &mut VcpuState, val: u64) -> Result {
    let old = st.hw.cr4();
    let lma = st.hw.efer() & EFER_LMA != 0;
    // PCIDs go on only in long mode with CR3[11:0] zero; CET needs WP.
    let pcide_on = val & X86_CR4_PCIDE != 0 && old & X86_CR4_PCIDE == 0;
    if val & !cr4_valid_bits(st) != 0
        || (lma && val & X86_CR4_PAE == 0)
        || (lma && (old ^ val) & X86_CR4_LA57 != 0)
        || (!lma && val & X86_CR4_PCIDE != 0)
        || (pcide_on && offset_in_page(st.hw.cr3()) != 0)
        || (val & X86_CR4_CET != 0 && st.hw.cr0() & X86_CR0_WP == 0)
    {
        return Err(EINVAL);
    }
    st.hw.set_cr(4, val);
    st.hw.flush_tlb();
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

/// KVM_SET_MSRS on a vCPU.
pub(crate) fn set_msrs(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result<isize> {
    msr_io(arg, true, |index, data| {
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
