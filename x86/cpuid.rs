// SPDX-License-Identifier: GPL-2.0
//! The guest's CPUID: the table userspace sets with KVM_SET_CPUID2 and what
//! the guest's CPUID instruction returns from it.

use crate::defs::regs::{RAX, RBX, RCX, RDX};
use crate::{
    cpuid_caps::{
        linux::{vendor_of, Vendor},
        pv::{KVM_CPUID_FEATURES, KVM_CPUID_SIGNATURE, KVM_FEATURE_PV_UNHALT, KVM_SIGNATURE},
        xstate, KvmCaps,
    },
    defs::{
        self,
        cpuid::{Feature, ALL_LEAVES, NR_LEAVES},
    },
    ext::{
        trace,
        uaccess::{read_arg, read_array, write_arg, write_array},
        uapi,
    },
    virt::{vcpu::Vcpu, vm::Vm},
    x86::{irq::lapic, supported, vcpu::VcpuState},
};
use kernel::prelude::*;

/// Most entries KVM_SET_CPUID2 accepts (`KVM_MAX_CPUID_ENTRIES`).
pub(crate) const MAX_ENTRIES: u32 = 256;
/// The `struct kvm_cpuid2` header before its entries.
pub(crate) const CPUID2_HEADER_SIZE: usize = core::mem::size_of::<uapi::kvm_cpuid2>();

/// CPUID.(0DH,1):EAX.XSAVEC and .XSAVES: EBX is the compacted size.
const CPUID_D1_EAX_XSAVEC: u32 = 1 << 1;
const CPUID_D1_EAX_XSAVES: u32 = 1 << 3;
/// CPUID.1:ECX.OSXSAVE, which mirrors CR4.OSXSAVE.
const CPUID1_ECX_OSXSAVE: u32 = 1 << 27;
const CPUID1_ECX_MWAIT: u32 = 1 << 3;
/// CPUID.1:EDX.APIC, which mirrors IA32_APIC_BASE.EN.
const CPUID1_EDX_APIC: u32 = 1 << 9;

/// Hypervisor leaves are searched for the KVM signature in
/// 0x40000000..0x50000000, every 0x100 (upstream's
/// kvm_get_hypervisor_cpuid()).
const PV_LEAVES_END: u32 = 0x5000_0000;
const PV_LEAVES_STEP: usize = 0x100;

/// The guest's CPUID table.
pub(crate) struct GuestCpuid {
    entries: KVec<uapi::kvm_cpuid_entry2>,
    /// The feature words KVM tracks: the table's bits that this KVM
    /// supports (upstream's `guest_cpu_cap_has()`), for the architectural
    /// checks (reserved CR4/EFER bits, MSRs that need a feature).
    caps: [u32; NR_LEAVES],
    /// KVM_CAP_ENFORCE_PV_FEATURE_CPUID (a vCPU capability): paravirtual
    /// MSRs need their `KVM_FEATURE_*` bit in the table's KVM leaves
    /// (upstream's `pv_cpuid.enforce`).
    enforce_pv: bool,
    /// KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT is off: CPUID.1:ECX.MWAIT
    /// follows MISC_ENABLE.MWAIT (taken from the VM at KVM_SET_CPUID2 and
    /// at MISC_ENABLE writes).
    mwait_follows_misc_enable: bool,
}

impl GuestCpuid {
    pub(crate) fn new() -> Self {
        Self {
            entries: KVec::new(),
            caps: [0; NR_LEAVES],
            enforce_pv: false,
            mwait_follows_misc_enable: false,
        }
    }

    /// Whether CPUID.1:ECX.MWAIT follows MISC_ENABLE.MWAIT (the VM's
    /// KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT is off).
    pub(crate) fn set_mwait_follows_misc_enable(&mut self, on: bool) {
        self.mwait_follows_misc_enable = on;
    }

    /// KVM_ENABLE_CAP(KVM_CAP_ENFORCE_PV_FEATURE_CPUID) on the vCPU.
    pub(crate) fn set_enforce_pv(&mut self, enforce: bool) {
        self.enforce_pv = enforce;
    }

    /// Whether the guest may use the paravirtual feature `f` (a
    /// `KVM_FEATURE_*` bit): always, unless enforcement is on; then only
    /// if the table's KVM feature leaf offers it (upstream's
    /// guest_pv_has()).
    pub(crate) fn pv_has(&self, f: u32) -> bool {
        if !self.enforce_pv {
            return true;
        }
        self.kvm_features_leaf()
            .and_then(|leaf| self.find(leaf, 0))
            .is_some_and(|e| e.eax & f != 0)
    }

    /// The KVM feature leaf (0x40000001 above the KVM signature leaf,
    /// wherever the VMM put the KVM leaves), if the table has KVM leaves.
    fn kvm_features_leaf(&self) -> Option<u32> {
        (KVM_CPUID_SIGNATURE..PV_LEAVES_END)
            .step_by(PV_LEAVES_STEP)
            .find(|&b| {
                self.entries
                    .iter()
                    .any(|e| e.function == b && [e.ebx, e.ecx, e.edx] == KVM_SIGNATURE)
            })
            .map(|base| base | (KVM_CPUID_FEATURES - KVM_CPUID_SIGNATURE))
    }

    /// Replaces the table with KVM_SET_CPUID2's argument.
    fn set_from_user(&mut self, arg: usize) -> Result {
        let hdr: uapi::kvm_cpuid2 = read_arg(arg)?;
        if hdr.nent > MAX_ENTRIES {
            return Err(E2BIG);
        }
        self.entries = read_array(arg + CPUID2_HEADER_SIZE, hdr.nent as usize)?;
        let kvm = KvmCaps::new(&supported::Host, &supported::options()?);
        for leaf in ALL_LEAVES {
            let (function, index, reg) = leaf.cpuid();
            let guest = self
                .find(function, index)
                .map_or(0, |e| reg.of([e.eax, e.ebx, e.ecx, e.edx]));
            self.caps[leaf.index()] = guest & kvm.word(leaf);
        }
        Ok(())
    }

    /// Whether the guest has `f` and this KVM supports it.
    pub(crate) fn has(&self, f: Feature) -> bool {
        self.caps[f.leaf.index()] & f.mask() != 0
    }

    /// Whether the guest's vendor is Intel or compatible (Centaur,
    /// Zhaoxin): upstream's guest_cpuid_is_intel_compatible().
    pub(crate) fn intel_compatible(&self) -> bool {
        let Some(e) = self.find(0, 0) else {
            return false;
        };
        matches!(
            vendor_of([e.eax, e.ebx, e.ecx, e.edx]),
            Vendor::Intel | Vendor::Centaur | Vendor::Zhaoxin
        )
    }

    /// With HLT exits disabled, the guest is not offered PV spinlock kicks
    /// (KVM_FEATURE_PV_UNHALT) in its KVM leaves, wherever the VMM put
    /// them (upstream's kvm_apply_cpuid_pv_features_quirk()).
    fn hide_pv_unhalt(&mut self) {
        let Some(features) = self.kvm_features_leaf() else {
            return;
        };
        for e in self.entries.iter_mut().filter(|e| e.function == features) {
            e.eax &= !KVM_FEATURE_PV_UNHALT;
        }
    }

    /// The entry for `function`/`index`.
    pub(crate) fn find(&self, function: u32, index: u32) -> Option<&uapi::kvm_cpuid_entry2> {
        self.entries.iter().find(|e| {
            e.function == function
                && (e.flags & uapi::KVM_CPUID_FLAG_SIGNIFCANT_INDEX == 0 || e.index == index)
        })
    }
}

/// KVM_SET_CPUID2: the table, and what it offers shapes the LAPIC.
pub(crate) fn set_cpuid2(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, arg: usize) -> Result {
    if st.has_run {
        return same_as_current(st, arg);
    }
    st.cpuid.set_from_user(arg)?;
    st.cpuid
        .set_mwait_follows_misc_enable(!vm.arch().quirk(uapi::KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT));
    if vm.arch().disabled_exits() & u64::from(uapi::KVM_X86_DISABLE_EXITS_HLT) != 0 {
        st.cpuid.hide_pv_unhalt();
    }
    lapic::update_config(vm, vcpu, st);
    Ok(())
}

/// KVM_SET_CPUID2 after the vCPU ran: only the table it has is accepted
/// (and changes nothing), EINVAL otherwise, as upstream's
/// kvm_cpuid_check_equal(); both compared with the runtime bits applied.
fn same_as_current(st: &VcpuState, arg: usize) -> Result {
    let hdr: uapi::kvm_cpuid2 = read_arg(arg)?;
    if hdr.nent > MAX_ENTRIES {
        return Err(E2BIG);
    }
    let new: KVec<uapi::kvm_cpuid_entry2> =
        read_array(arg + CPUID2_HEADER_SIZE, hdr.nent as usize)?;
    let old = &st.cpuid.entries;
    if new.len() != old.len() {
        return Err(EINVAL);
    }
    let regs =
        |e: &uapi::kvm_cpuid_entry2| runtime(st, e.function, e.index, [e.eax, e.ebx, e.ecx, e.edx]);
    let same = new.iter().zip(old.iter()).all(|(n, o)| {
        n.function == o.function && n.index == o.index && n.flags == o.flags && regs(n) == regs(o)
    });
    if same {
        Ok(())
    } else {
        Err(EINVAL)
    }
}

/// KVM_GET_CPUID2: `E2BIG` if userspace's array is too small. The
/// entries as the guest reads them ([`lookup`]: OSXSAVE, APIC, XSAVE
/// sizes follow the vCPU's state), as upstream, whose
/// kvm_update_cpuid_runtime() rewrites the table itself.
pub(crate) fn get_cpuid2(st: &VcpuState, arg: usize) -> Result {
    let mut hdr: uapi::kvm_cpuid2 = read_arg(arg)?;
    let entries = &st.cpuid.entries;
    if (hdr.nent as usize) < entries.len() {
        return Err(E2BIG);
    }
    let mut out = KVec::with_capacity(entries.len(), GFP_KERNEL)?;
    for e in entries.iter() {
        let mut e = *e;
        [e.eax, e.ebx, e.ecx, e.edx] = lookup(st, e.function, e.index);
        out.push(e, GFP_KERNEL)?;
    }
    write_array(arg + CPUID2_HEADER_SIZE, &out)?;
    hdr.nent = out.len() as u32;
    write_arg(arg, &hdr)
}

/// What the guest's CPUID returns for `leaf`/`subleaf`: the table entry
/// with the bits that track guest state (OSXSAVE, APIC) updated; leaves
/// the table lacks read as zeros (AMD behaviour, as upstream for AMD).
pub(crate) fn lookup(st: &VcpuState, leaf: u32, subleaf: u32) -> [u32; 4] {
    let Some(e) = st.cpuid.find(leaf, subleaf) else {
        return [0; 4];
    };
    runtime(st, leaf, subleaf, [e.eax, e.ebx, e.ecx, e.edx])
}

/// The entry `leaf`/`subleaf` with registers `r`, with the bits that
/// track the vCPU's state applied (upstream's kvm_update_cpuid_runtime()).
fn runtime(st: &VcpuState, leaf: u32, subleaf: u32, mut r: [u32; 4]) -> [u32; 4] {
    if leaf == 1 {
        if st.hw.cr4() & defs::regs::X86_CR4_OSXSAVE != 0 {
            r[2] |= CPUID1_ECX_OSXSAVE;
        } else {
            r[2] &= !CPUID1_ECX_OSXSAVE;
        }
        if st.msrs.apic_base & defs::msr::MSR_IA32_APICBASE_ENABLE == 0 {
            r[3] &= !CPUID1_EDX_APIC;
        }
        if st.cpuid.mwait_follows_misc_enable {
            if st.msrs.misc_enable_mwait() {
                r[2] |= CPUID1_ECX_MWAIT;
            } else {
                r[2] &= !CPUID1_ECX_MWAIT;
            }
        }
    }
    // The XSAVE area size follows the guest's XCR0 (as upstream's
    // kvm_update_cpuid_runtime()): a guest compares it with its own sum.
    if leaf == 0xd && subleaf == 0 {
        r[1] = xstate::required_size(&supported::Host, st.msrs.xcr0(), false);
    }
    if leaf == 0xd && subleaf == 1 && r[0] & (CPUID_D1_EAX_XSAVEC | CPUID_D1_EAX_XSAVES) != 0 {
        r[1] = xstate::required_size(&supported::Host, st.msrs.xcr0(), true);
    }
    r
}

/// Whether the guest's CPUID offers MONITOR/MWAIT now (a runtime bit,
/// as upstream's RUNTIME_F(MWAIT)).
pub(crate) fn guest_has_mwait(st: &VcpuState) -> bool {
    lookup(st, 1, 0)[2] & CPUID1_ECX_MWAIT != 0
}

/// The guest executed CPUID (EAX, ECX in; EAX..EDX out).
pub(crate) fn emulate(st: &mut VcpuState) {
    let g = *st.hw.gprs();
    let (leaf, subleaf) = (g[RAX] as u32, g[RCX] as u32);
    let r = lookup(st, leaf, subleaf);
    if trace::kvm_cpuid_enabled() {
        let found = st.cpuid.find(leaf, subleaf).is_some();
        let [a, b, c, d] = r.map(|x| x as usize);
        trace::kvm_cpuid(leaf, subleaf, a, b, c, d, found, false);
    }
    let g = st.hw.gprs_mut();
    g[RAX] = u64::from(r[0]);
    g[RBX] = u64::from(r[1]);
    g[RCX] = u64::from(r[2]);
    g[RDX] = u64::from(r[3]);
}

/// The guest's physical address width (CPUID 0x80000008 EAX[7:0], else 36).
pub(crate) fn guest_maxphyaddr(st: &VcpuState) -> u8 {
    match st.cpuid.find(0x8000_0008, 0) {
        Some(e) if e.eax & 0xff != 0 => (e.eax & 0xff) as u8,
        _ => 36,
    }
}
