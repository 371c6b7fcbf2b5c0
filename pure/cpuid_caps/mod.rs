// SPDX-License-Identifier: GPL-2.0
//! What this KVM advertises to userspace on `/dev/kvm`:
//! `KVM_GET_SUPPORTED_CPUID`, `KVM_GET_EMULATED_CPUID`,
//! `KVM_GET_MSR_INDEX_LIST`, `KVM_GET_MSR_FEATURE_INDEX_LIST` and the
//! feature MSR values of `KVM_GET_MSRS` on `/dev/kvm`.
//!
//! The rules follow upstream Linux 7.3 KVM on an AMD host with SVM and NPT
//! (`kvm_initialize_cpu_caps()` + `svm_set_cpu_caps()` in cpuid.c and
//! svm/svm.c, `__do_cpuid_func()`, `kvm_init_msr_lists()` in msrs.c), cut
//! down to what rkvm implements (see [`Options`]).
//!
//! Pure component (DESIGN.md section 3): `core` only, no allocation, no
//! panics; the host is reached through [`HostCpuid`] and [`HostMsrs`].
//! Host-tested in tests/host/cpuid_caps against recorded CPUID dumps and
//! the in-tree module's answers in the test VM.

pub mod caps;
pub mod emulated;
pub mod feature_msrs;
pub mod linux;
pub mod msr_lists;
pub mod pv;
pub mod supported;
pub mod tables;
pub mod xstate;

pub use self::caps::KvmCaps;
pub use self::emulated::{emulated, emulated_for};
pub use self::feature_msrs::{arch_capabilities, dev_get_msr, feature_msr, feature_msr_index_list};
pub use self::msr_lists::{
    emulated_msr_ok, msr_index_list, msr_to_save_ok, MsrList, EMULATED_MSRS, FEATURE_MSRS,
    MSRS_TO_SAVE,
};
pub use self::supported::{supported, supported_with_caps};
// The types of this component's API (`Options::hide`,
// `HostCpuid::boot_cpu_has`), defined with the feature bits in defs.
pub use crate::defs::cpuid::{Feature, Leaf, LinuxFeature};

/// Index is significant for this leaf (`KVM_CPUID_FLAG_SIGNIFCANT_INDEX`,
/// spelled as in the UAPI).
pub const KVM_CPUID_FLAG_SIGNIFCANT_INDEX: u32 = 1;

/// Most entries `KVM_GET_SUPPORTED_CPUID` / `KVM_GET_EMULATED_CPUID`
/// produce (`KVM_MAX_CPUID_ENTRIES`); a larger `nent` is clamped to this.
pub const MAX_CPUID_ENTRIES: usize = 256;

/// One `struct kvm_cpuid_entry2` (without its padding).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct CpuidEntry {
    /// CPUID leaf (EAX input).
    pub function: u32,
    /// CPUID subleaf (ECX input); meaningful if `flags` has
    /// [`KVM_CPUID_FLAG_SIGNIFCANT_INDEX`].
    pub index: u32,
    /// `KVM_CPUID_FLAG_*`.
    pub flags: u32,
    /// Output EAX.
    pub eax: u32,
    /// Output EBX.
    pub ebx: u32,
    /// Output ECX.
    pub ecx: u32,
    /// Output EDX.
    pub edx: u32,
}

/// The output array is too small: the ioctl answers `-E2BIG`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooMany;

/// The host CPU and kernel, as far as the advertised CPUID depends on them.
pub trait HostCpuid {
    /// Raw `CPUID(leaf, subleaf)` on this CPU: `[eax, ebx, ecx, edx]`.
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];

    /// `boot_cpu_has(feature)` of the host kernel: hardware bits the kernel
    /// kept, plus its synthetic features and `X86_BUG_*` flags (Linux 7.3
    /// numbering, see [`LinuxFeature`]). The kernel side implements this
    /// with `boot_cpu_has()`; the default derives an answer from raw CPUID
    /// the way Linux would on bare metal (see [`linux::derived_has`]).
    fn boot_cpu_has(&self, feature: LinuxFeature) -> bool {
        self::linux::derived_has(self, feature)
    }
}

/// A vendor backend's part of the capability rules (upstream's
/// svm_set_cpu_caps()/vmx_set_cpu_caps()): the vendor module hands its
/// implementation to the core ([`Options::vendor`]).
pub trait VendorCaps: Sync + core::fmt::Debug {
    /// Adjusts `caps`, which the common rules have set up, for this vendor.
    fn set_cpu_caps(&self, caps: &mut KvmCaps, host: &dyn HostCpuid, opts: &Options);
}

/// kvm-amd's rules ([`KvmCaps::svm_fixups`]).
#[derive(Debug)]
pub struct SvmCaps;

impl VendorCaps for SvmCaps {
    fn set_cpu_caps(&self, caps: &mut KvmCaps, host: &dyn HostCpuid, opts: &Options) {
        caps.svm_fixups(host, opts);
    }
}

/// kvm-intel's rules ([`KvmCaps::vmx_fixups`]): what the VMX backend
/// enables in its VMCS decides some of the guest's instructions.
#[derive(Debug)]
pub struct VmxCaps {
    /// The "enable RDTSCP" control is on: RDTSCP and RDPID work.
    pub rdtscp: bool,
    /// The "enable INVPCID" control is on: INVPCID works.
    pub invpcid: bool,
}

impl VendorCaps for VmxCaps {
    fn set_cpu_caps(&self, caps: &mut KvmCaps, host: &dyn HostCpuid, opts: &Options) {
        caps.vmx_fixups(host, opts, self);
    }
}

/// A `&H` as a sized [`HostCpuid`], for `&dyn HostCpuid`.
pub(crate) struct HostRef<'a, H: HostCpuid + ?Sized>(pub(crate) &'a H);

impl<H: HostCpuid + ?Sized> HostCpuid for HostRef<'_, H> {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.0.cpuid(leaf, subleaf)
    }

    fn boot_cpu_has(&self, feature: LinuxFeature) -> bool {
        self.0.boot_cpu_has(feature)
    }
}

/// The host's MSRs, for the MSR lists and the feature MSR values.
pub trait HostMsrs: HostCpuid {
    /// `rdmsr_safe(index)`: `None` if the read faults.
    fn rdmsr_safe(&self, index: u32) -> Option<u64>;

    /// Whether the host runs with `l1tf_vmx_mitigation ==
    /// VMENTER_L1D_FLUSH_NEVER` (only ever true on Intel hosts with
    /// kvm-intel configured so); AMD hosts: false.
    fn l1d_flush_never(&self) -> bool {
        false
    }

    /// `gds_ucode_mitigated()`: the microcode mitigates GDS (Intel only).
    fn gds_ucode_mitigated(&self) -> bool {
        false
    }
}

/// What this KVM implements, which bounds what may be advertised.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// XCR0 of the host (`xgetbv(0)`); supported XSAVE features are a
    /// subset ([`xstate::KVM_SUPPORTED_XCR0`] minus MPX on SVM).
    pub host_xcr0: u64,
    /// The host's `IA32_XSS` (0 if unknown or unused): only the CET bits
    /// can be supported, and only if both are there (upstream rule).
    pub host_xss: u64,
    /// Whether the VM has the in-kernel irqchip. Upstream advertises
    /// X2APIC and TSC_DEADLINE_TIMER regardless (`EMULATED_F`), and so do
    /// we: this field does not change the output; userspace checks the
    /// irqchip itself.
    pub in_kernel_irqchip: bool,
    /// Nested SVM: the SVM bit and leaf 0x8000000A. rkvm: kvm-amd's
    /// `nested` parameter.
    pub nested_svm: bool,
    /// Nested NPT: NPT in leaf 0x8000000A with [`Options::nested_svm`]
    /// (upstream: with `npt`). rkvm: false (L1's nested page tables are
    /// not shadowed yet).
    pub nested_npt: bool,
    /// vPMU: leaf 0xA, PERFCTR_CORE, PERFMON_V2 and leaf 0x80000022.
    /// rkvm: false.
    pub pmu: bool,
    /// kvmclock: adds [`pv::KVMCLOCK_FEATURES`] to leaf 0x40000001.
    pub kvmclock: bool,
    /// EAX of leaf 0x40000001 (besides the kvmclock bits): the PV
    /// features implemented, [`pv::RKVM_PV_FEATURES`] by default,
    /// [`pv::UPSTREAM_PV_FEATURES`] is upstream's set.
    pub pv_features: u32,
    /// Levels of the nested page tables (4, or 5 with LA57 NPT). Caps
    /// GuestPhysAddrSize in leaf 0x80000008 at 48 bits unless 5.
    pub tdp_levels: u8,
    /// AMX and XFD (the `IA32_XFD` MSRs, dynamic XSAVE state). rkvm: false,
    /// which hides AMX, XFD and the XTILE state components.
    pub xfd: bool,
    /// `MSR_IA32_SMBASE` in the emulated MSR list (upstream: SMM
    /// support). rkvm: true, as upstream's list — userspace saves and
    /// restores SMBASE — though SMM itself is not emulated
    /// (KVM_CAP_X86_SMM is 0).
    pub smm: bool,
    /// More features to hide, on top of the rules above.
    pub hide: &'static [Feature],
    /// More MSR indices to leave out of `KVM_GET_MSR_INDEX_LIST`.
    pub hide_msrs: &'static [u32],
    /// The vendor module's rules.
    pub vendor: &'static dyn VendorCaps,
}

impl Options {
    /// rkvm today on AMD: no nested SVM, no PMU, no kvmclock, no AMX/XFD,
    /// SMBASE listed (see [`Options::smm`]), [`pv::RKVM_PV_FEATURES`], 4-level NPT (the kernel side sets
    /// `vendor` from the loaded vendor module).
    pub const fn rkvm(host_xcr0: u64, host_xss: u64) -> Self {
        Options {
            host_xcr0,
            host_xss,
            in_kernel_irqchip: true,
            nested_svm: false,
            nested_npt: false,
            pmu: false,
            kvmclock: false,
            pv_features: self::pv::RKVM_PV_FEATURES,
            tdp_levels: 4,
            xfd: false,
            smm: true,
            hide: &[],
            hide_msrs: &[],
            vendor: &SvmCaps,
        }
    }

    /// What upstream kvm-amd advertises with its default module
    /// parameters (nested=1, no vPMU as in the TCG test VM, SMM, all PV
    /// features): for comparing with the in-tree module.
    pub const fn upstream_amd(host_xcr0: u64, host_xss: u64) -> Self {
        Options {
            host_xcr0,
            host_xss,
            in_kernel_irqchip: true,
            nested_svm: true,
            nested_npt: true,
            pmu: false,
            kvmclock: true,
            pv_features: self::pv::UPSTREAM_PV_FEATURES,
            tdp_levels: 4,
            xfd: true,
            smm: true,
            hide: &[],
            hide_msrs: &[],
            vendor: &SvmCaps,
        }
    }
}
