//! The host CPU's vendor (CPUID leaf 0): which vendor module is the one
//! under test (`--amd` on AMD/Hygon, `--intel` on Intel), which one must
//! refuse to load, and the vendor-specific checks. The SVM column (QEMU
//! TCG, `-cpu EPYC`) is AMD; the VMX column (Bochs, scripts/bochs.sh) is
//! Intel. Rows that exist for one vendor only are named after it
//! (`svm/...`, `vmx/...`, `load/amd`, `load/intel`).

use crate::Modules;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Vendor {
    Amd,
    Intel,
}

/// `--vendor`: the vendor whose rows to run or list, instead of this CPU's
/// (`--list --vendor intel` gives the VMX column's manifest on an AMD host).
static OVERRIDE: std::sync::OnceLock<Vendor> = std::sync::OnceLock::new();

impl Vendor {
    /// Takes `v` for the CPU's vendor from now on (`--vendor`).
    pub fn set(v: Vendor) {
        let _ = OVERRIDE.set(v);
    }

    /// The CPU this program runs on (AuthenticAMD and HygonGenuine are
    /// AMD; everything else is taken for Intel), or the `--vendor` given.
    pub fn host() -> Vendor {
        if let Some(v) = OVERRIDE.get() {
            return *v;
        }
        // SAFETY: CPUID leaf 0 exists on every x86_64 CPU (`__cpuid` is
        // safe on newer toolchains, hence the allow).
        #[allow(unused_unsafe)]
        let r = unsafe { core::arch::x86_64::__cpuid(0) };
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&r.ebx.to_le_bytes());
        v[4..8].copy_from_slice(&r.edx.to_le_bytes());
        v[8..].copy_from_slice(&r.ecx.to_le_bytes());
        match &v {
            b"AuthenticAMD" | b"HygonGenuine" => Vendor::Amd,
            _ => Vendor::Intel,
        }
    }

    /// "amd" / "intel": the row names' vendor part (`load/amd`).
    pub fn short(self) -> &'static str {
        match self {
            Vendor::Amd => "amd",
            Vendor::Intel => "intel",
        }
    }

    /// The vendor module's name (for rmmod and kernel log prefixes).
    pub fn module(self) -> &'static str {
        match self {
            Vendor::Amd => "kvm_amd",
            Vendor::Intel => "kvm_intel",
        }
    }

    /// What KVM_GET_SUPPORTED_CPUID reports as leaf 0's vendor string.
    pub fn cpuid_vendor(self) -> &'static str {
        match self {
            Vendor::Amd => "AuthenticAMD",
            Vendor::Intel => "GenuineIntel",
        }
    }

    /// This vendor's module file in `m`.
    pub fn path(self, m: &Modules) -> &str {
        match self {
            Vendor::Amd => &m.amd,
            Vendor::Intel => &m.intel,
        }
    }
}
