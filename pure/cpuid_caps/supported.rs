// SPDX-License-Identifier: GPL-2.0
//! `KVM_GET_SUPPORTED_CPUID`: upstream's `kvm_dev_ioctl_get_cpuid()` and
//! `__do_cpuid_func()`, leaf by leaf, in upstream's output order.

use super::caps::KvmCaps;
use super::linux::{self, Vendor};
use super::pv;
use super::xstate;
use super::{CpuidEntry, HostCpuid, Options, TooMany, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
use crate::defs::cpuid::*;

/// Highest basic leaf KVM knows.
pub const MAX_BASIC_LEAF: u32 = 0x24;
/// Highest extended leaf KVM knows.
pub const MAX_EXT_LEAF: u32 = 0x8000_0022;
/// Highest Centaur leaf KVM knows.
pub const MAX_CENTAUR_LEAF: u32 = 0xc000_0004;
/// First Centaur leaf.
pub const CENTAUR_CPUID_SIGNATURE: u32 = 0xc000_0000;

/// Fills `out` with what `KVM_GET_SUPPORTED_CPUID` answers on `host`, and
/// returns how many entries that is; [`TooMany`] (`-E2BIG`) if they do not
/// all fit. The ioctl passes at most [`super::MAX_CPUID_ENTRIES`] entries.
pub fn supported<H: HostCpuid + ?Sized>(
    host: &H,
    opts: &Options,
    out: &mut [CpuidEntry],
) -> Result<usize, TooMany> {
    let caps = KvmCaps::new(host, opts);
    supported_with_caps(host, opts, &caps, out)
}

/// [`supported`] with capabilities computed beforehand (e.g. at module
/// load; they only change with the host).
pub fn supported_with_caps<H: HostCpuid + ?Sized>(
    host: &H,
    opts: &Options,
    caps: &KvmCaps,
    out: &mut [CpuidEntry],
) -> Result<usize, TooMany> {
    let mut ctx = Ctx {
        host,
        opts,
        caps,
        out,
        n: 0,
        max_ext: host.cpuid(0x8000_0000, 0)[0],
        scratch: CpuidEntry::default(),
    };
    let centaur = matches!(linux::vendor(host), Vendor::Centaur | Vendor::Zhaoxin);
    for base in [
        0,
        0x8000_0000,
        CENTAUR_CPUID_SIGNATURE,
        pv::KVM_CPUID_SIGNATURE,
    ] {
        if base == CENTAUR_CPUID_SIGNATURE && !centaur {
            continue;
        }
        ctx.do_func(base)?;
        let limit = ctx.last_eax();
        let mut func = base;
        while func < limit {
            func = func.saturating_add(1);
            ctx.do_func(func)?;
        }
    }
    Ok(ctx.n)
}

/// `cpuid_function_is_indexed()`: leaves whose subleaf matters.
pub const fn function_is_indexed(function: u32) -> bool {
    matches!(
        function,
        4 | 7
            | 0xb
            | 0xd
            | 0xf
            | 0x10
            | 0x12
            | 0x14
            | 0x17
            | 0x18
            | 0x1d
            | 0x1e
            | 0x1f
            | 0x23
            | 0x24
            | 0x8000_001d
    )
}

struct Ctx<'a, H: HostCpuid + ?Sized> {
    host: &'a H,
    opts: &'a Options,
    caps: &'a KvmCaps,
    out: &'a mut [CpuidEntry],
    n: usize,
    max_ext: u32,
    scratch: CpuidEntry,
}

impl<H: HostCpuid + ?Sized> Ctx<'_, H> {
    fn last_eax(&self) -> u32 {
        match self.n.checked_sub(1).and_then(|i| self.out.get(i)) {
            Some(e) => e.eax,
            None => 0,
        }
    }

    /// Upstream `do_host_cpuid()`: appends the raw host entry (zeroes for
    /// the hypervisor range and beyond the host's extended range).
    fn host_entry(&mut self, function: u32, index: u32) -> Result<(), TooMany> {
        let mut e = CpuidEntry {
            function,
            index,
            ..CpuidEntry::default()
        };
        let synthesized = function & 0xc000_0000 == 0x4000_0000
            || (function & 0xc000_0000 == 0x8000_0000 && function > self.max_ext);
        if !synthesized {
            let [a, b, c, d] = self.host.cpuid(function, index);
            e.eax = a;
            e.ebx = b;
            e.ecx = c;
            e.edx = d;
            if function_is_indexed(function) {
                e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
            }
        }
        let slot = self.out.get_mut(self.n).ok_or(TooMany)?;
        *slot = e;
        self.n = self.n.saturating_add(1);
        Ok(())
    }

    /// The entry appended last (every caller appended one first; the
    /// scratch entry only keeps this total).
    fn last(&mut self) -> &mut CpuidEntry {
        match self.out.get_mut(self.n.wrapping_sub(1)) {
            Some(e) => e,
            None => &mut self.scratch,
        }
    }

    fn cap(&self, leaf: Leaf) -> u32 {
        self.caps.word(leaf)
    }

    /// Upstream `__do_cpuid_func()`.
    fn do_func(&mut self, function: u32) -> Result<(), TooMany> {
        self.host_entry(function, 0)?;
        match function {
            0 => {
                let e = self.last();
                e.eax = e.eax.min(MAX_BASIC_LEAF);
            }
            1 => {
                let (edx, ecx) = (self.cap(Leaf::L1Edx), self.cap(Leaf::L1Ecx));
                let e = self.last();
                e.edx = edx;
                e.ecx = ecx;
            }
            2 => {} // Passed through (never stateful on CPUs with SVM/VMX).
            4 | 0x8000_001d => self.cache_subleaves(function)?,
            6 => set_regs(self.last(), 4, 0, 0, 0), // ARAT only.
            7 => self.leaf7()?,
            0xa => self.leaf_a(),
            0xb | 0x1f => {
                // No topology: a valid one would need subleaf 1.
                let e = self.last();
                e.eax = 0;
                e.ebx = 0;
                e.ecx = 0;
            }
            0xd => self.leaf_d()?,
            0x12 => self.leaf_12()?,
            0x14 => self.all_subleaves_if(function, X86_FEATURE_INTEL_PT)?,
            0x1d => self.all_subleaves_if(function, X86_FEATURE_AMX_TILE)?,
            0x1e => self.leaf_1e()?,
            0x24 => self.leaf_24()?,
            pv::KVM_CPUID_SIGNATURE => {
                let [b, c, d] = pv::KVM_SIGNATURE;
                set_regs(self.last(), pv::KVM_CPUID_FEATURES, b, c, d);
            }
            pv::KVM_CPUID_FEATURES => {
                let eax = pv::features_eax(self.opts);
                set_regs(self.last(), eax, 0, 0, 0);
            }
            0x8000_0000 => self.leaf_80000000(),
            0x8000_0001 => {
                let (edx, ecx) = (self.cap(Leaf::L80000001Edx), self.cap(Leaf::L80000001Ecx));
                let e = self.last();
                e.ebx &= !genmask(27, 16);
                e.edx = edx;
                e.ecx = ecx;
            }
            0x8000_0005 => {} // Host L1 cache and TLB.
            0x8000_0006 => self.last().edx &= !genmask(17, 16),
            0x8000_0007 => {
                // x86_power is the raw EDX this entry holds.
                let caps = self.cap(Leaf::L80000007Edx);
                let e = self.last();
                let edx = caps & e.edx;
                set_regs(e, 0, 0, 0, edx);
            }
            0x8000_0008 => self.leaf_80000008(),
            0x8000_000a => self.leaf_8000000a(),
            0x8000_0019 => {
                let e = self.last();
                e.ecx = 0;
                e.edx = 0;
            }
            0x8000_001a => {
                let e = self.last();
                let eax = e.eax & genmask(2, 0);
                set_regs(e, eax, 0, 0, 0);
            }
            0x8000_001f => self.leaf_8000001f(),
            0x8000_0021 => self.leaf_80000021(),
            0x8000_0022 => self.leaf_80000022(),
            CENTAUR_CPUID_SIGNATURE => {
                let e = self.last();
                e.eax = e.eax.min(MAX_CENTAUR_LEAF);
            }
            0xc000_0001 => {
                let edx = self.cap(Leaf::LC0000001Edx);
                self.last().edx = edx;
            }
            // 3 (serial number), 5 (MONITOR/MWAIT), 0x8000001e (host
            // topology), 0x80000020, brand strings, and everything else.
            _ => set_regs(self.last(), 0, 0, 0, 0),
        }
        Ok(())
    }

    /// Leaves 4 and 0x8000001d: subleaves until a null cache type.
    fn cache_subleaves(&mut self, function: u32) -> Result<(), TooMany> {
        let mut i = 0u32;
        while self.last_eax() & 0x1f != 0 {
            i = i.saturating_add(1);
            self.host_entry(function, i)?;
        }
        Ok(())
    }

    fn leaf7(&mut self) -> Result<(), TooMany> {
        let (ebx, ecx, edx) = (
            self.cap(Leaf::L7Ebx),
            self.cap(Leaf::L7Ecx),
            self.cap(Leaf::L7Edx),
        );
        let e = self.last();
        let max_idx = e.eax.min(2);
        e.eax = max_idx;
        e.ebx = ebx;
        e.ecx = ecx;
        e.edx = edx;
        if max_idx >= 1 {
            self.host_entry(7, 1)?;
            let eax = self.cap(Leaf::L7Sub1Eax);
            let ecx = self.cap(Leaf::L7Sub1Ecx);
            let edx = self.cap(Leaf::L7Sub1Edx);
            set_regs(self.last(), eax, 0, ecx, edx);
        }
        if max_idx >= 2 {
            self.host_entry(7, 2)?;
            let edx = self.cap(Leaf::L7Sub2Edx);
            set_regs(self.last(), 0, 0, 0, edx);
        }
        Ok(())
    }

    /// Leaf 0xA, architectural PerfMon (Intel): only with a vPMU.
    fn leaf_a(&mut self) {
        let pmu = self.opts.pmu && self.host.boot_cpu_has(LNX_ARCH_PERFMON);
        let e = self.last();
        if !pmu {
            set_regs(e, 0, 0, 0, 0);
            return;
        }
        // kvm_pmu_cap: version <= 2, <= 8 GP and <= 3 fixed counters.
        let version = (e.eax & 0xff).min(2);
        let gp = ((e.eax >> 8) & 0xff).min(8);
        let gp_width = (e.eax >> 16) & 0xff;
        let mask_len = (e.eax >> 24) & 0xff;
        let (fixed, fixed_width) = if version > 1 {
            ((e.edx & 0x1f).min(3), (e.edx >> 5) & 0xff)
        } else {
            (0, 0)
        };
        let anythread_deprecated = if version != 0 { 1 << 15 } else { 0 };
        let ebx = e.ebx;
        set_regs(
            e,
            version | gp << 8 | gp_width << 16 | mask_len << 24,
            ebx,
            0,
            fixed | fixed_width << 5 | anythread_deprecated,
        );
    }

    fn leaf_d(&mut self) -> Result<(), TooMany> {
        let xcr0 = self.caps.supported_xcr0;
        let xss = self.caps.supported_xss;
        let std_size = xstate::required_size(self.host, xcr0, false);
        let e = self.last();
        e.eax &= xcr0 as u32;
        e.ebx = std_size;
        e.ecx = std_size;
        e.edx &= (xcr0 >> 32) as u32;
        if xcr0 == 0 {
            return Ok(());
        }

        self.host_entry(0xd, 1)?;
        let eax = self.cap(Leaf::LDSub1Eax);
        let compact = eax & (X86_FEATURE_XSAVES.mask() | X86_FEATURE_XSAVEC.mask()) != 0;
        let ebx = if compact {
            xstate::required_size(self.host, xcr0 | xss, true)
        } else {
            0
        };
        let e = self.last();
        e.eax = eax;
        e.ebx = ebx;
        e.ecx &= xss as u32;
        e.edx &= (xss >> 32) as u32;

        let xfd = self.caps.has(X86_FEATURE_XFD);
        for i in 2..64u32 {
            let supervisor = if xcr0 & (1u64 << i) != 0 {
                false
            } else if xss & (1u64 << i) != 0 {
                true
            } else {
                continue;
            };
            self.host_entry(0xd, i)?;
            let e = self.last();
            if e.eax == 0 || (e.ecx & 1 != 0) != supervisor {
                // The host disagrees (upstream WARNs): drop the entry.
                self.n = self.n.saturating_sub(1);
                continue;
            }
            if !xfd {
                e.ecx &= !(1 << 2);
            }
            e.edx = 0;
        }
        Ok(())
    }

    fn leaf_12(&mut self) -> Result<(), TooMany> {
        if !self.caps.has(X86_FEATURE_SGX) {
            set_regs(self.last(), 0, 0, 0, 0);
            return Ok(());
        }
        let eax = self.cap(Leaf::L12Eax);
        let e = self.last();
        e.eax = eax;
        e.ebx &= SGX_MISC_EXINFO;
        self.host_entry(0x12, 1)?;
        let e = self.last();
        e.eax &= SGX_ATTR_PRIV_MASK | SGX_ATTR_UNPRIV_MASK;
        e.ebx = 0;
        Ok(())
    }

    /// Leaves 0x14 and 0x1d: all host subleaves if `feature` is supported.
    fn all_subleaves_if(&mut self, function: u32, feature: super::Feature) -> Result<(), TooMany> {
        if !self.caps.has(feature) {
            set_regs(self.last(), 0, 0, 0, 0);
            return Ok(());
        }
        let max_idx = self.last_eax();
        let mut i = 1u32;
        while i <= max_idx {
            self.host_entry(function, i)?;
            i = match i.checked_add(1) {
                Some(next) => next,
                None => break,
            };
        }
        Ok(())
    }

    fn leaf_1e(&mut self) -> Result<(), TooMany> {
        if !self.caps.has(X86_FEATURE_AMX_TILE) {
            set_regs(self.last(), 0, 0, 0, 0);
            return Ok(());
        }
        let e = self.last();
        let max_idx = e.eax.min(1);
        e.eax = max_idx;
        if max_idx >= 1 {
            self.host_entry(0x1e, 1)?;
            let eax = self.cap(Leaf::L1ESub1Eax);
            set_regs(self.last(), eax, 0, 0, 0);
        }
        Ok(())
    }

    fn leaf_24(&mut self) -> Result<(), TooMany> {
        if !self.caps.has(X86_FEATURE_AVX10) {
            set_regs(self.last(), 0, 0, 0, 0);
            return Ok(());
        }
        let ebx = self.cap(Leaf::L24Sub0Ebx);
        let e = self.last();
        let max_idx = e.eax.min(1);
        let version = (e.ebx & 0xff).min(2);
        set_regs(e, max_idx, ebx | version, 0, 0);
        if max_idx >= 1 {
            self.host_entry(0x24, 1)?;
            let ecx = self.cap(Leaf::L24Sub1Ecx);
            set_regs(self.last(), 0, 0, ecx, 0);
        }
        Ok(())
    }

    fn leaf_80000000(&mut self) {
        // Report 0x80000021 (LFENCE serializing, null selector clears
        // base) even where the host does not, if the host has 0x8000001d.
        let synth =
            self.host.boot_cpu_has(LNX_LFENCE_RDTSC) || !self.host.boot_cpu_has(X86_BUG_NULL_SEG);
        let e = self.last();
        e.eax = e.eax.min(MAX_EXT_LEAF);
        if e.eax >= 0x8000_001d && synth {
            e.eax = e.eax.max(0x8000_0021);
        }
    }

    fn leaf_80000008(&mut self) {
        let ebx = self.cap(Leaf::L80000008Ebx);
        let tdp5 = self.opts.tdp_levels >= 5;
        let e = self.last();
        let virt_as = ((e.eax >> 8) & 0xff).max(48);
        // With NPT the guest's MAXPHYADDR is the raw one; the addressable
        // GPA is capped at 48 bits without 5-level NPT.
        let phys_as = e.eax & 0xff;
        let g_phys_as = if tdp5 { phys_as } else { phys_as.min(48) };
        e.eax = phys_as | virt_as << 8 | g_phys_as << 16;
        e.ecx &= !(genmask(31, 16) | genmask(11, 8));
        e.edx = 0;
        e.ebx = ebx;
    }

    fn leaf_8000000a(&mut self) {
        if !self.caps.has(X86_FEATURE_SVM) {
            set_regs(self.last(), 0, 0, 0, 0);
            return;
        }
        // SVM revision 1, 8 ASIDs for L1.
        let edx = self.cap(Leaf::L8000000AEdx);
        set_regs(self.last(), 1, 8, 0, edx);
    }

    fn leaf_8000001f(&mut self) {
        if !self.caps.has(X86_FEATURE_SEV) {
            set_regs(self.last(), 0, 0, 0, 0);
            return;
        }
        let eax = self.cap(Leaf::L8000001FEax);
        let e = self.last();
        e.eax = eax;
        // No VMPLs, no "PA bits reduction".
        e.ebx &= !(genmask(31, 12) | genmask(11, 6));
    }

    fn leaf_80000021(&mut self) {
        let eax = self.cap(Leaf::L80000021Eax);
        let ecx = self.cap(Leaf::L80000021Ecx);
        let eraps = self.caps.has(X86_FEATURE_ERAPS);
        let e = self.last();
        e.edx = 0;
        e.eax = eax;
        e.ebx = if eraps { e.ebx & genmask(23, 16) } else { 0 };
        e.ecx = ecx;
    }

    /// AMD extended PerfMon: only with a vPMU that has PERFMON_V2.
    fn leaf_80000022(&mut self) {
        let on = self.opts.pmu && self.caps.has(X86_FEATURE_PERFMON_V2);
        let eax = self.cap(Leaf::L80000022Eax);
        let e = self.last();
        if !on {
            set_regs(e, 0, 0, 0, 0);
            return;
        }
        // NumPerfCtrCore, at most KVM's 6 AMD counters.
        let counters = (e.ebx & 0xf).min(6);
        set_regs(e, eax, counters, 0, 0);
    }
}

/// SECS.MISCSELECT bit KVM passes (`SGX_MISC_EXINFO`).
pub const SGX_MISC_EXINFO: u32 = 1 << 0;
/// Unprivileged SGX attributes: DEBUG, MODE64BIT, KSS, ASYNC_EXIT_NOTIFY.
pub const SGX_ATTR_UNPRIV_MASK: u32 = (1 << 1) | (1 << 2) | (1 << 7) | (1 << 10);
/// Privileged SGX attributes: PROVISIONKEY, EINITTOKENKEY.
pub const SGX_ATTR_PRIV_MASK: u32 = (1 << 4) | (1 << 5);

fn set_regs(e: &mut CpuidEntry, eax: u32, ebx: u32, ecx: u32, edx: u32) {
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
}

/// Bits `high..=low` set (`GENMASK`), for `high` in 0..=31.
const fn genmask(high: u32, low: u32) -> u32 {
    (u32::MAX >> 31u32.saturating_sub(high & 31)) & (u32::MAX << (low & 31))
}
