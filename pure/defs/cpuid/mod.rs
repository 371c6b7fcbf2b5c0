// SPDX-License-Identifier: GPL-2.0
//! CPUID feature bits: the feature words KVM tracks ([`Leaf`], upstream's
//! `reverse_cpuid[]`), one bit of one word ([`Feature`]) and every bit by
//! name (`X86_FEATURE_*`, [`features`]), plus the host kernel's own
//! numbering of its feature and bug flags ([`LinuxFeature`], [`linux`]).
//! Everything in the two submodules is re-exported here, so
//! `crate::defs::cpuid::X86_FEATURE_X2APIC` names a feature bit.

pub mod features;
pub mod linux;

pub use self::features::*;
pub use self::linux::*;

/// A CPUID output register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

impl Reg {
    /// This register of a raw `[eax, ebx, ecx, edx]` result.
    pub const fn of(self, r: [u32; 4]) -> u32 {
        match self {
            Reg::Eax => r[0],
            Reg::Ebx => r[1],
            Reg::Ecx => r[2],
            Reg::Edx => r[3],
        }
    }
}

/// A CPUID register holding feature bits that KVM tracks (one word of
/// upstream's `kvm_cpu_caps[]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// CPUID.1:EDX.
    L1Edx,
    /// CPUID.80000001H:EDX.
    L80000001Edx,
    /// CPUID.1:ECX.
    L1Ecx,
    /// CPUID.C0000001H:EDX (Centaur/Zhaoxin).
    LC0000001Edx,
    /// CPUID.80000001H:ECX.
    L80000001Ecx,
    /// CPUID.(7,0):EBX.
    L7Ebx,
    /// CPUID.(0DH,1):EAX.
    LDSub1Eax,
    /// CPUID.80000008H:EBX.
    L80000008Ebx,
    /// CPUID.6:EAX.
    L6Eax,
    /// CPUID.8000000AH:EDX (SVM features).
    L8000000AEdx,
    /// CPUID.(7,0):ECX.
    L7Ecx,
    /// CPUID.(7,0):EDX.
    L7Edx,
    /// CPUID.(7,1):EAX.
    L7Sub1Eax,
    /// CPUID.(12H,0):EAX (SGX).
    L12Eax,
    /// CPUID.8000001FH:EAX (memory encryption).
    L8000001FEax,
    /// CPUID.(7,1):EDX.
    L7Sub1Edx,
    /// CPUID.80000007H:EDX.
    L80000007Edx,
    /// CPUID.80000021H:EAX.
    L80000021Eax,
    /// CPUID.80000022H:EAX.
    L80000022Eax,
    /// CPUID.(7,2):EDX.
    L7Sub2Edx,
    /// CPUID.(24H,0):EBX (AVX10).
    L24Sub0Ebx,
    /// CPUID.80000021H:ECX.
    L80000021Ecx,
    /// CPUID.(7,1):ECX.
    L7Sub1Ecx,
    /// CPUID.(1EH,1):EAX (AMX).
    L1ESub1Eax,
    /// CPUID.(24H,1):ECX.
    L24Sub1Ecx,
}

/// Number of [`Leaf`] words.
pub const NR_LEAVES: usize = 25;

/// Every [`Leaf`], in discriminant order.
pub const ALL_LEAVES: [Leaf; NR_LEAVES] = [
    Leaf::L1Edx,
    Leaf::L80000001Edx,
    Leaf::L1Ecx,
    Leaf::LC0000001Edx,
    Leaf::L80000001Ecx,
    Leaf::L7Ebx,
    Leaf::LDSub1Eax,
    Leaf::L80000008Ebx,
    Leaf::L6Eax,
    Leaf::L8000000AEdx,
    Leaf::L7Ecx,
    Leaf::L7Edx,
    Leaf::L7Sub1Eax,
    Leaf::L12Eax,
    Leaf::L8000001FEax,
    Leaf::L7Sub1Edx,
    Leaf::L80000007Edx,
    Leaf::L80000021Eax,
    Leaf::L80000022Eax,
    Leaf::L7Sub2Edx,
    Leaf::L24Sub0Ebx,
    Leaf::L80000021Ecx,
    Leaf::L7Sub1Ecx,
    Leaf::L1ESub1Eax,
    Leaf::L24Sub1Ecx,
];

impl Leaf {
    /// Position in [`ALL_LEAVES`] (and in cpuid_caps' `KvmCaps`).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// `(function, index, register)` of this word.
    pub const fn cpuid(self) -> (u32, u32, Reg) {
        match self {
            Leaf::L1Edx => (1, 0, Reg::Edx),
            Leaf::L80000001Edx => (0x8000_0001, 0, Reg::Edx),
            Leaf::L1Ecx => (1, 0, Reg::Ecx),
            Leaf::LC0000001Edx => (0xc000_0001, 0, Reg::Edx),
            Leaf::L80000001Ecx => (0x8000_0001, 0, Reg::Ecx),
            Leaf::L7Ebx => (7, 0, Reg::Ebx),
            Leaf::LDSub1Eax => (0xd, 1, Reg::Eax),
            Leaf::L80000008Ebx => (0x8000_0008, 0, Reg::Ebx),
            Leaf::L6Eax => (6, 0, Reg::Eax),
            Leaf::L8000000AEdx => (0x8000_000a, 0, Reg::Edx),
            Leaf::L7Ecx => (7, 0, Reg::Ecx),
            Leaf::L7Edx => (7, 0, Reg::Edx),
            Leaf::L7Sub1Eax => (7, 1, Reg::Eax),
            Leaf::L12Eax => (0x12, 0, Reg::Eax),
            Leaf::L8000001FEax => (0x8000_001f, 0, Reg::Eax),
            Leaf::L7Sub1Edx => (7, 1, Reg::Edx),
            Leaf::L80000007Edx => (0x8000_0007, 0, Reg::Edx),
            Leaf::L80000021Eax => (0x8000_0021, 0, Reg::Eax),
            Leaf::L80000022Eax => (0x8000_0022, 0, Reg::Eax),
            Leaf::L7Sub2Edx => (7, 2, Reg::Edx),
            Leaf::L24Sub0Ebx => (0x24, 0, Reg::Ebx),
            Leaf::L80000021Ecx => (0x8000_0021, 0, Reg::Ecx),
            Leaf::L7Sub1Ecx => (7, 1, Reg::Ecx),
            Leaf::L1ESub1Eax => (0x1e, 1, Reg::Eax),
            Leaf::L24Sub1Ecx => (0x24, 1, Reg::Ecx),
        }
    }

    /// The word of the host kernel's `x86_capability[]` that mirrors this
    /// register (Linux 7.3 `enum cpuid_leafs`), or `None` for words only
    /// KVM defines. KVM masks the former with the kernel's view.
    pub const fn linux_word(self) -> Option<u32> {
        match self {
            Leaf::L1Edx => Some(0),
            Leaf::L80000001Edx => Some(1),
            Leaf::L1Ecx => Some(4),
            Leaf::LC0000001Edx => Some(5),
            Leaf::L80000001Ecx => Some(6),
            Leaf::L7Ebx => Some(9),
            Leaf::LDSub1Eax => Some(10),
            Leaf::L7Sub1Eax => Some(12),
            Leaf::L80000008Ebx => Some(13),
            Leaf::L6Eax => Some(14),
            Leaf::L8000000AEdx => Some(15),
            Leaf::L7Ecx => Some(16),
            Leaf::L7Edx => Some(18),
            Leaf::L8000001FEax => Some(19),
            Leaf::L80000021Eax => Some(20),
            _ => None,
        }
    }

    /// The [`Leaf`] mirrored by word `word` of the kernel's
    /// `x86_capability[]`, if any.
    pub const fn from_linux_word(word: u32) -> Option<Leaf> {
        match word {
            0 => Some(Leaf::L1Edx),
            1 => Some(Leaf::L80000001Edx),
            4 => Some(Leaf::L1Ecx),
            5 => Some(Leaf::LC0000001Edx),
            6 => Some(Leaf::L80000001Ecx),
            9 => Some(Leaf::L7Ebx),
            10 => Some(Leaf::LDSub1Eax),
            12 => Some(Leaf::L7Sub1Eax),
            13 => Some(Leaf::L80000008Ebx),
            14 => Some(Leaf::L6Eax),
            15 => Some(Leaf::L8000000AEdx),
            16 => Some(Leaf::L7Ecx),
            18 => Some(Leaf::L7Edx),
            19 => Some(Leaf::L8000001FEax),
            20 => Some(Leaf::L80000021Eax),
            _ => None,
        }
    }
}

/// One feature bit: a bit of a [`Leaf`] register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// The register.
    pub leaf: Leaf,
    /// Bit number, 0..=31.
    pub bit: u8,
}

impl Feature {
    /// Bit `bit` (taken mod 32) of `leaf`.
    pub const fn new(leaf: Leaf, bit: u8) -> Self {
        Feature {
            leaf,
            bit: bit & 31,
        }
    }

    /// The bit as a mask of its register.
    pub const fn mask(self) -> u32 {
        1u32 << (self.bit & 31)
    }

    /// The same bit in the host kernel's numbering, for words the kernel
    /// mirrors (`X86_FEATURE_*` = word * 32 + bit).
    pub const fn linux(self) -> Option<LinuxFeature> {
        match self.leaf.linux_word() {
            Some(w) => Some(LinuxFeature::new(w, self.bit)),
            None => None,
        }
    }
}
