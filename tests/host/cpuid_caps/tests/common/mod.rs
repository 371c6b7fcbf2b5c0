//! Shared test support: recorded fixtures (see ../../capture/capture.c
//! for the format) and host models built from them.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use rkvm_cpuid_caps::cpuid_caps::linux;
use rkvm_cpuid_caps::cpuid_caps::{CpuidEntry, HostCpuid, HostMsrs};
use rkvm_cpuid_caps::defs::cpuid::{self, LinuxFeature};

/// One recorded machine (and, for in-tree captures, what the in-tree
/// KVM said on it).
#[derive(Default, Debug, Clone)]
pub struct Fixture {
    pub name: &'static str,
    pub raw: BTreeMap<(u32, u32), [u32; 4]>,
    pub xcr0: u64,
    pub flags: BTreeSet<String>,
    pub bugs: BTreeSet<String>,
    pub supported: Vec<CpuidEntry>,
    pub supported_e2big: Vec<(usize, i32)>,
    pub emulated: Vec<CpuidEntry>,
    pub emulated_e2big: Vec<(usize, i32)>,
    pub msrs: Vec<u32>,
    pub feature_msrs: Vec<u32>,
    pub feature_values: BTreeMap<u32, Option<u64>>,
    pub rdmsr: BTreeMap<u32, Option<u64>>,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex {s:?}"))
}

fn entry(w: &[&str]) -> CpuidEntry {
    let v: Vec<u32> = w.iter().map(|x| hex(x) as u32).collect();
    CpuidEntry {
        function: v[0],
        index: v[1],
        flags: v[2],
        eax: v[3],
        ebx: v[4],
        ecx: v[5],
        edx: v[6],
    }
}

impl Fixture {
    pub fn parse(name: &'static str, text: &str) -> Fixture {
        let mut f = Fixture {
            name,
            ..Fixture::default()
        };
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let Some((&tag, rest)) = w.split_first() else {
                continue;
            };
            match tag {
                "raw" => {
                    let v: Vec<u32> = rest.iter().map(|x| hex(x) as u32).collect();
                    f.raw.insert((v[0], v[1]), [v[2], v[3], v[4], v[5]]);
                }
                "xcr0" => f.xcr0 = hex(rest[0]),
                "flags" => f.flags = rest.iter().map(|s| s.to_string()).collect(),
                "bugs" => f.bugs = rest.iter().map(|s| s.to_string()).collect(),
                "supported" => f.supported.push(entry(rest)),
                "emulated" => f.emulated.push(entry(rest)),
                "supported_e2big" => f
                    .supported_e2big
                    .push((hex(rest[0]) as usize, hex(rest[1]) as i32)),
                "emulated_e2big" => f
                    .emulated_e2big
                    .push((hex(rest[0]) as usize, hex(rest[1]) as i32)),
                "msr" => f.msrs.push(hex(rest[0]) as u32),
                "feature_msr" => f.feature_msrs.push(hex(rest[0]) as u32),
                "feature_msr_value" => {
                    let v = if rest[1] == "none" {
                        None
                    } else {
                        Some(hex(rest[1]))
                    };
                    f.feature_values.insert(hex(rest[0]) as u32, v);
                }
                "rdmsr" => {
                    let v = if rest[1] == "fault" {
                        None
                    } else {
                        Some(hex(rest[1]))
                    };
                    f.rdmsr.insert(hex(rest[0]) as u32, v);
                }
                _ => {}
            }
        }
        f
    }

    pub fn is_intree(&self) -> bool {
        !self.supported.is_empty()
    }

    pub fn host(&self) -> FixtureHost<'_> {
        FixtureHost {
            fx: self,
            overrides: Vec::new(),
        }
    }
}

pub fn epyc() -> Fixture {
    Fixture::parse(
        "epyc-tcg",
        include_str!("../../fixtures/epyc-tcg-intree.txt"),
    )
}
pub fn milan() -> Fixture {
    Fixture::parse(
        "epyc-milan-tcg",
        include_str!("../../fixtures/epyc-milan-tcg-intree.txt"),
    )
}
pub fn max() -> Fixture {
    Fixture::parse("max-tcg", include_str!("../../fixtures/max-tcg-intree.txt"))
}
pub fn skylake() -> Fixture {
    Fixture::parse(
        "skylake-client-tcg",
        include_str!("../../fixtures/skylake-client-tcg.txt"),
    )
}
pub fn zen4() -> Fixture {
    Fixture::parse(
        "zen4-kvm-guest",
        include_str!("../../fixtures/zen4-kvm-guest.txt"),
    )
}
/// A hand-made Intel server (Sapphire Rapids-like) with AMX, AVX-512,
/// XSAVES with CET and PT state, IA32_ARCH_CAPABILITIES and a PMU, built
/// on the Skylake dump; with VMX and host-only bits that must be filtered.
pub fn intel_amx() -> Fixture {
    let bits = |l: &[u32]| l.iter().fold(0u32, |a, b| a | (1 << b));
    let mut f = skylake();
    f.name = "intel-amx (hand-made)";
    let r = &mut f.raw;
    r.insert((0, 0), [0x20, 0x756e6547, 0x6c65746e, 0x49656e69]);
    // + DTES64, MONITOR, DS-CPL, VMX, SMX, EST, TM2, xTPR, PDCM, PCID, DCA,
    // X2APIC, TSC_DEADLINE, OSXSAVE.
    let ecx1 = 0xfed83203 | bits(&[2, 3, 4, 5, 6, 7, 8, 14, 15, 17, 18, 21, 24, 27]);
    // + DS, ACPI, SS, TM, PBE.
    let edx1 = 0x178bfbfd | bits(&[21, 22, 27, 29, 31]);
    r.insert((1, 0), [0x806f8, 0x0420_0800, ecx1, edx1]);
    r.insert((6, 0), [0x77, 2, 9, 0]);
    let ebx7 = bits(&[
        0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25, 28, 29,
        30, 31,
    ]);
    let ecx7 = bits(&[
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 22, 24, 25, 27, 28, 29, 30,
    ]);
    let edx7 = bits(&[
        4, 5, 8, 10, 14, 16, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    ]);
    r.insert((7, 0), [2, ebx7, ecx7, edx7]);
    r.insert((7, 1), [bits(&[4, 5, 10, 11, 12, 21]), 0, bits(&[5]), 0]);
    r.insert((7, 2), [0, 0, 0, bits(&[0, 1, 2, 4])]);
    r.insert((0xa, 0), [0x0830_0805, 0, 0, 0x8603]);
    // XSAVE: x87, SSE, AVX, AVX-512 (3), PKRU, XTILE (2); XSS: PT, CET.
    r.insert((0xd, 0), [0x602e7, 0x2b00, 0x2b00, 0]);
    r.insert((0xd, 1), [0x1f, 0x2c00, 0x1900, 0]);
    r.insert((0xd, 2), [0x100, 0x240, 0, 0]);
    r.insert((0xd, 5), [0x40, 0x440, 0, 0]);
    r.insert((0xd, 6), [0x200, 0x480, 0, 0]);
    r.insert((0xd, 7), [0x400, 0x680, 0, 0]);
    r.insert((0xd, 8), [0x80, 0, 1, 0]);
    r.insert((0xd, 9), [0x8, 0xa80, 0, 0]);
    r.insert((0xd, 0xb), [0x10, 0, 1, 0]);
    r.insert((0xd, 0xc), [0x18, 0, 1, 0]);
    r.insert((0xd, 0x11), [0x40, 0xac0, 2, 0]);
    r.insert((0xd, 0x12), [0x2000, 0xb00, 6, 0]);
    r.insert((0x1d, 0), [1, 0, 0, 0]);
    r.insert((0x1d, 1), [0x4002000, 0x80040, 0x10, 0]);
    r.insert((0x1e, 0), [0, 0x4010, 0, 0]);
    r.insert((0x1f, 0), [1, 2, 0x100, 4]);
    r.insert((0x1f, 1), [7, 0x60, 0x201, 4]);
    r.insert((0x80000001, 0), [0, 0, 0x121, 0x2c100800]);
    r.insert((0x80000007, 0), [0, 0, 0, 0x100]);
    f.xcr0 = 0x602e7;
    f.flags.insert("constant_tsc".into());
    f.flags.insert("arch_perfmon".into());
    f.flags.insert("ospke".into());
    f.bugs = [
        "spectre_v1",
        "spectre_v2",
        "spec_store_bypass",
        "swapgs",
        "eibrs_pbrsb",
        "bhi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    f.rdmsr.insert(0x10a, Some(0x0c0e_2beb));
    f
}

/// A host built from a fixture: raw CPUID from the dump, the kernel's
/// synthetic flags and bugs from /proc/cpuinfo where they have a name
/// (the rest derived like Linux does), MSRs readable as recorded.
#[derive(Clone)]
pub struct FixtureHost<'a> {
    pub fx: &'a Fixture,
    pub overrides: Vec<(LinuxFeature, bool)>,
}

impl FixtureHost<'_> {
    pub fn with(mut self, f: LinuxFeature, on: bool) -> Self {
        self.overrides.push((f, on));
        self
    }
}

const NAMED_BUGS: &[(LinuxFeature, &str)] = &[
    (cpuid::X86_BUG_NULL_SEG, "null_seg"),
    (cpuid::X86_BUG_CPU_MELTDOWN, "cpu_meltdown"),
    (cpuid::X86_BUG_SPEC_STORE_BYPASS, "spec_store_bypass"),
    (cpuid::X86_BUG_MDS, "mds"),
    (cpuid::X86_BUG_TAA, "taa"),
    (cpuid::X86_BUG_EIBRS_PBRSB, "eibrs_pbrsb"),
    (cpuid::X86_BUG_GDS, "gds"),
    (cpuid::X86_BUG_RFDS, "rfds"),
    (cpuid::X86_BUG_ITS, "its"),
];

const NAMED_FLAGS: &[(LinuxFeature, &str)] = &[
    (cpuid::LNX_CONSTANT_TSC, "constant_tsc"),
    (cpuid::LNX_ARCH_PERFMON, "arch_perfmon"),
    (cpuid::LNX_SSBD, "ssbd"),
    (cpuid::LNX_PERFMON_V2, "perfmon_v2"),
    (cpuid::LNX_IBRS, "ibrs"),
    (cpuid::LNX_IBPB, "ibpb"),
    (cpuid::LNX_STIBP, "stibp"),
];

impl HostCpuid for FixtureHost<'_> {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let sub = if rkvm_cpuid_caps::cpuid_caps::supported::function_is_indexed(leaf)
            || leaf == 0x8000_0020
            || leaf == 0x8000_0026
        {
            subleaf
        } else {
            0
        };
        self.fx.raw.get(&(leaf, sub)).copied().unwrap_or([0; 4])
    }

    fn boot_cpu_has(&self, feature: LinuxFeature) -> bool {
        if let Some(&(_, on)) = self.overrides.iter().find(|(f, _)| *f == feature) {
            return on;
        }
        if let Some((_, name)) = NAMED_BUGS.iter().find(|(f, _)| *f == feature) {
            return self.fx.bugs.contains(*name);
        }
        if let Some((_, name)) = NAMED_FLAGS.iter().find(|(f, _)| *f == feature) {
            return self.fx.flags.contains(*name);
        }
        if feature == cpuid::LNX_LS_CFG_SSBD {
            // Set with "ssbd" when no CPUID bit explains it.
            return self.fx.flags.contains("ssbd")
                && !linux::raw_has(self, cpuid::X86_FEATURE_AMD_SSBD)
                && !linux::raw_has(self, cpuid::X86_FEATURE_VIRT_SSBD)
                && !linux::raw_has(self, cpuid::X86_FEATURE_SPEC_CTRL_SSBD);
        }
        linux::derived_has(self, feature)
    }
}

impl HostMsrs for FixtureHost<'_> {
    fn rdmsr_safe(&self, index: u32) -> Option<u64> {
        match self.fx.rdmsr.get(&index) {
            Some(v) => *v,
            // Not probed: the in-tree list says it was readable.
            None => self.fx.msrs.contains(&index).then_some(0),
        }
    }
}

/// The live machine running the tests.
pub struct LiveHost;

impl HostCpuid for LiveHost {
    fn cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
        [r.eax, r.ebx, r.ecx, r.edx]
    }
}

impl HostMsrs for LiveHost {
    fn rdmsr_safe(&self, _index: u32) -> Option<u64> {
        None
    }
}

/// XCR0 of the live machine (0 without OSXSAVE).
pub fn live_xcr0() -> u64 {
    let ecx = LiveHost.cpuid(1, 0)[2];
    if ecx & (1 << 27) == 0 {
        return 0;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: XGETBV(0) is valid when CR4.OSXSAVE is set (checked above).
    unsafe { core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") hi) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Runs `supported` with a buffer of the full size.
pub fn run_supported<H: HostCpuid>(
    host: &H,
    opts: &rkvm_cpuid_caps::cpuid_caps::Options,
) -> Vec<CpuidEntry> {
    let mut buf = [CpuidEntry::default(); rkvm_cpuid_caps::cpuid_caps::MAX_CPUID_ENTRIES];
    let n = rkvm_cpuid_caps::cpuid_caps::supported(host, opts, &mut buf).expect("fits in 256");
    buf[..n].to_vec()
}

pub fn fmt(e: &CpuidEntry) -> String {
    format!(
        "{:#010x}.{:<2} fl={} {:08x} {:08x} {:08x} {:08x}",
        e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx
    )
}

/// Entry-by-entry differences between two outputs, as text.
pub fn diff(ours: &[CpuidEntry], theirs: &[CpuidEntry]) -> Vec<String> {
    let key = |e: &CpuidEntry| (e.function, e.index);
    let mut out = Vec::new();
    let a: BTreeMap<_, _> = ours.iter().map(|e| (key(e), *e)).collect();
    let b: BTreeMap<_, _> = theirs.iter().map(|e| (key(e), *e)).collect();
    for (k, e) in &b {
        match a.get(k) {
            None => out.push(format!("missing {}", fmt(e))),
            Some(o) if o != e => out.push(format!("ours    {}\nintree  {}", fmt(o), fmt(e))),
            _ => {}
        }
    }
    for (k, e) in &a {
        if !b.contains_key(k) {
            out.push(format!("extra   {}", fmt(e)));
        }
    }
    out
}
