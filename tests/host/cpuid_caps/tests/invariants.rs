//! Properties of the answers on every recorded host (AMD and Intel TCG
//! models, a Zen4 KVM guest, a hand-made Intel AMX server) and on the
//! machine running the tests, for rkvm's options and for upstream's.

mod common;

use std::collections::BTreeSet;

use common::{run_supported, Fixture, FixtureHost, LiveHost};
use rkvm_cpuid_caps::cpuid_caps::supported::function_is_indexed;
use rkvm_cpuid_caps::cpuid_caps::tables::{caps_of, Kind};
use rkvm_cpuid_caps::cpuid_caps::xstate::KVM_SUPPORTED_XCR0;
use rkvm_cpuid_caps::cpuid_caps::{
    self as cc, emulated, CpuidEntry, Feature, HostCpuid, KvmCaps, Options, TooMany,
    KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
};
use rkvm_cpuid_caps::defs::cpuid::*;
use rkvm_cpuid_caps::defs::msr;
use rkvm_cpuid_caps::defs::regs::{XFEATURE_MASK_CET_ALL, XFEATURE_MASK_MPX, XFEATURE_MASK_XTILE};

fn fixtures() -> Vec<Fixture> {
    vec![
        common::epyc(),
        common::milan(),
        common::max(),
        common::skylake(),
        common::zen4(),
        common::intel_amx(),
    ]
}

/// rkvm, rkvm with the host's XSS (CET), upstream kvm-amd, upstream with
/// a vPMU.
fn option_sets(xcr0: u64) -> Vec<(&'static str, Options)> {
    let mut pmu = Options::upstream_amd(xcr0, XFEATURE_MASK_CET_ALL);
    pmu.pmu = true;
    // kvm-amd nested=1: SVM without nested NPT.
    let mut nested = Options::rkvm(xcr0, 0);
    nested.nested_svm = true;
    vec![
        ("rkvm", Options::rkvm(xcr0, 0)),
        ("rkvm+nested", nested),
        ("rkvm+xss", Options::rkvm(xcr0, XFEATURE_MASK_CET_ALL)),
        ("upstream", Options::upstream_amd(xcr0, 0)),
        ("upstream+pmu+xss", pmu),
    ]
}

fn find(out: &[CpuidEntry], function: u32, index: u32) -> Option<CpuidEntry> {
    out.iter()
        .copied()
        .find(|e| e.function == function && e.index == index)
}

fn get(out: &[CpuidEntry], function: u32, index: u32) -> CpuidEntry {
    find(out, function, index).unwrap_or_else(|| panic!("no leaf {function:#x}.{index}"))
}

/// The register of `out` holding `leaf`'s word.
fn word(out: &[CpuidEntry], leaf: Leaf) -> u32 {
    let (function, index, reg) = leaf.cpuid();
    match find(out, function, index) {
        None => 0,
        Some(e) => reg.of([e.eax, e.ebx, e.ecx, e.edx]),
    }
}

fn has(out: &[CpuidEntry], f: Feature) -> bool {
    word(out, f.leaf) & f.mask() != 0
}

/// Features set by fixups after the tables (kvm_initialize_cpu_caps()
/// tail, svm_set_cpu_caps()).
const SET_BY_FIXUPS: &[Feature] = &[
    X86_FEATURE_SPEC_CTRL,
    X86_FEATURE_INTEL_STIBP,
    X86_FEATURE_SPEC_CTRL_SSBD,
    X86_FEATURE_AMD_IBPB,
    X86_FEATURE_AMD_IBPB_RET,
    X86_FEATURE_AMD_IBRS,
    X86_FEATURE_AMD_STIBP,
    X86_FEATURE_AMD_SSBD,
    X86_FEATURE_AMD_SSB_NO,
    X86_FEATURE_VIRT_SSBD,
    X86_FEATURE_NULL_SEL_CLR_BASE,
    X86_FEATURE_SVM,
    X86_FEATURE_PERFCTR_CORE,
];

/// Never advertised by kvm-amd, whatever the host.
const NEVER: &[Feature] = &[
    X86_FEATURE_MWAIT,
    X86_FEATURE_OSXSAVE,
    X86_FEATURE_OSPKE,
    X86_FEATURE_VMX,
    X86_FEATURE_DTES64,
    X86_FEATURE_DSCPL,
    X86_FEATURE_SMX,
    X86_FEATURE_EST,
    X86_FEATURE_TM2,
    X86_FEATURE_XTPR,
    X86_FEATURE_DCA,
    X86_FEATURE_DS,
    X86_FEATURE_ACPI,
    X86_FEATURE_HT,
    X86_FEATURE_ACC,
    X86_FEATURE_PBE,
    X86_FEATURE_PN,
    X86_FEATURE_MPX,
    X86_FEATURE_INTEL_PT,
    X86_FEATURE_WAITPKG,
    X86_FEATURE_IBT,
    X86_FEATURE_BUS_LOCK_DETECT,
    X86_FEATURE_MSR_IMM,
    X86_FEATURE_SEV,
    X86_FEATURE_SME,
    X86_FEATURE_IBS,
    X86_FEATURE_SKINIT,
    X86_FEATURE_LWP,
];

/// Always advertised: emulated by KVM.
const ALWAYS: &[Feature] = &[
    X86_FEATURE_HYPERVISOR,
    X86_FEATURE_X2APIC,
    X86_FEATURE_TSC_DEADLINE_TIMER,
    X86_FEATURE_TSC_ADJUST,
    X86_FEATURE_ARCH_CAPABILITIES,
];

fn check_all<H: cc::HostMsrs>(name: &str, host: &H, xcr0: u64) {
    for (oname, opts) in option_sets(xcr0) {
        let what = format!("{name}/{oname}");
        let out = run_supported(host, &opts);
        let caps = KvmCaps::new(host, &opts);
        check_layout(&what, host, &out);
        check_features(&what, host, &opts, &out);
        check_xsave(&what, host, &opts, &caps, &out);
        check_special_leaves(&what, &opts, &out);
        check_e2big(&what, host, &opts, out.len());
        check_msrs(&what, &caps, &opts, host);
    }
}

/// Order, flags and indices like upstream: basic leaves 0..=max, then
/// 0x80000000..=max, then 0x40000000/1; subleaves ascending.
fn check_layout<H: HostCpuid>(what: &str, host: &H, out: &[CpuidEntry]) {
    let max_basic = get(out, 0, 0).eax;
    let max_ext = get(out, 0x8000_0000, 0).eax;
    assert!(
        max_basic <= 0x24 && max_basic == host.cpuid(0, 0)[0].min(0x24),
        "{what}"
    );
    assert!((0x8000_0000..=0x8000_0022).contains(&max_ext), "{what}");
    let functions: Vec<u32> = out.iter().map(|e| e.function).collect();
    let mut expected: Vec<u32> = (0..=max_basic).chain(0x8000_0000..=max_ext).collect();
    expected.extend([0x4000_0000, 0x4000_0001]);
    let mut dedup = functions.clone();
    dedup.dedup();
    assert_eq!(dedup, expected, "{what}: functions in upstream order");
    let mut seen = BTreeSet::new();
    for pair in out.windows(2) {
        if pair[0].function == pair[1].function {
            assert!(
                pair[0].index < pair[1].index,
                "{what}: subleaf order {pair:?}"
            );
        }
    }
    for e in out {
        assert!(
            seen.insert((e.function, e.index)),
            "{what}: duplicate {e:?}"
        );
        assert!(
            e.flags == 0 || e.flags == KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            "{what}: {e:?}"
        );
        if e.flags != 0 {
            assert!(function_is_indexed(e.function), "{what}: flag on {e:?}");
        }
        if function_is_indexed(e.function) && e.function < 0x4000_0000 {
            assert_eq!(
                e.flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                "{what}: no flag on {e:?}"
            );
        }
        if !function_is_indexed(e.function) {
            assert_eq!(e.index, 0, "{what}: {e:?}");
        }
    }
    assert!(out.len() <= cc::MAX_CPUID_ENTRIES);
}

fn check_features<H: HostCpuid>(what: &str, host: &H, opts: &Options, out: &[CpuidEntry]) {
    for f in NEVER {
        assert!(!has(out, *f), "{what}: {f:?} advertised");
    }
    for f in ALWAYS {
        assert!(has(out, *f), "{what}: {f:?} missing");
    }
    assert_eq!(has(out, X86_FEATURE_SVM), opts.nested_svm, "{what}: SVM");
    if !opts.pmu {
        assert!(!has(out, X86_FEATURE_PERFCTR_CORE), "{what}");
        assert!(!has(out, X86_FEATURE_PERFMON_V2), "{what}");
    }
    if !opts.xfd {
        for f in [
            X86_FEATURE_AMX_TILE,
            X86_FEATURE_AMX_INT8,
            X86_FEATURE_AMX_BF16,
            X86_FEATURE_XFD,
        ] {
            assert!(!has(out, f), "{what}: {f:?}");
        }
        assert!(
            !has(out, X86_FEATURE_SGX) && !has(out, X86_FEATURE_SGX_LC),
            "{what}"
        );
    }
    // Every advertised bit is one upstream can advertise, and the plain
    // F() ones need the host CPU to have them.
    for leaf in ALL_LEAVES {
        let w = word(out, leaf);
        let mut allowed = 0u32;
        let mut plain = 0u32;
        for cap in caps_of(leaf) {
            allowed |= cap.feature.mask();
            if cap.kind == Kind::F {
                plain |= cap.feature.mask();
            }
        }
        for f in SET_BY_FIXUPS.iter().filter(|f| f.leaf == leaf) {
            allowed |= f.mask();
            plain &= !f.mask();
        }
        if leaf == Leaf::L8000000AEdx && opts.nested_svm {
            allowed = u32::MAX;
        }
        if matches!(leaf, Leaf::L6Eax | Leaf::L80000021Ecx) {
            continue; // Filled directly / synthesized.
        }
        assert_eq!(
            w & !allowed,
            0,
            "{what}: {leaf:?} has bits {:#x} upstream never sets",
            w & !allowed
        );
        let raw = cc::linux::raw_word(host, leaf);
        assert_eq!(
            w & plain & !raw,
            0,
            "{what}: {leaf:?} advertises {:#x} the host lacks",
            w & plain & !raw
        );
    }
}

fn check_xsave<H: HostCpuid>(
    what: &str,
    host: &H,
    opts: &Options,
    caps: &KvmCaps,
    out: &[CpuidEntry],
) {
    let host_xsave = host.cpuid(1, 0)[2] & X86_FEATURE_XSAVE.mask() != 0;
    let expect_xcr0 = if host_xsave {
        opts.host_xcr0 & KVM_SUPPORTED_XCR0 & !XFEATURE_MASK_MPX & !XFEATURE_MASK_XTILE
    } else {
        0
    };
    assert_eq!(caps.supported_xcr0, expect_xcr0, "{what}");
    let d0 = get(out, 0xd, 0);
    assert_eq!(
        u64::from(d0.eax) | u64::from(d0.edx) << 32,
        expect_xcr0,
        "{what}: 0xD.0"
    );
    // Standard-format size: the end of the last supported component.
    let mut size = 576u32;
    for i in 2..64 {
        if expect_xcr0 & (1 << i) != 0 {
            let [s, off, _, _] = host.cpuid(0xd, i);
            size = size.max(off + s);
        }
    }
    assert_eq!((d0.ebx, d0.ecx), (size, size), "{what}: 0xD.0 sizes");
    let xss = caps.supported_xss;
    assert_eq!(xss & !XFEATURE_MASK_CET_ALL, 0, "{what}");
    assert!(
        xss == 0 || xss == XFEATURE_MASK_CET_ALL,
        "{what}: CET is all or nothing"
    );
    assert_eq!(
        has(out, X86_FEATURE_SHSTK),
        xss != 0 && caps.has(X86_FEATURE_SHSTK),
        "{what}"
    );
    let subs: BTreeSet<u32> = out
        .iter()
        .filter(|e| e.function == 0xd)
        .map(|e| e.index)
        .collect();
    let mut expected: BTreeSet<u32> = (2..64)
        .filter(|i| (expect_xcr0 | xss) & (1 << i) != 0)
        .collect();
    if expect_xcr0 != 0 {
        expected.extend([0, 1]);
    } else {
        expected.insert(0);
    }
    assert_eq!(subs, expected, "{what}: 0xD subleaves");
    for &i in subs.iter().filter(|&&i| i >= 2) {
        let e = get(out, 0xd, i);
        let [a, b, c, _] = host.cpuid(0xd, i);
        assert_eq!(
            (e.eax, e.ebx, e.ecx & !4, e.edx),
            (a, b, c & !4, 0),
            "{what}: 0xD.{i}"
        );
        assert_eq!(
            e.ecx & 4 != 0,
            c & 4 != 0 && caps.has(X86_FEATURE_XFD),
            "{what}: 0xD.{i} XFD"
        );
    }
    if let Some(d1) = find(out, 0xd, 1) {
        assert_eq!(
            d1.ecx as u64 | (d1.edx as u64) << 32,
            (d1.ecx as u64 | (d1.edx as u64) << 32) & xss
        );
        let compacted = d1.eax & (X86_FEATURE_XSAVEC.mask() | X86_FEATURE_XSAVES.mask()) != 0;
        if compacted {
            assert!(
                d1.ebx >= 576 && d1.ebx <= size + 64 * 20 + 0x1000,
                "{what}: {d1:?}"
            );
        } else {
            assert_eq!(d1.ebx, 0, "{what}");
        }
    }
}

fn check_special_leaves(what: &str, opts: &Options, out: &[CpuidEntry]) {
    if !opts.pmu {
        let a = get(out, 0xa, 0);
        assert_eq!((a.eax, a.ebx, a.ecx, a.edx), (0, 0, 0, 0), "{what}: 0xA");
        if let Some(e) = find(out, 0x8000_0022, 0) {
            assert_eq!((e.eax, e.ebx, e.ecx, e.edx), (0, 0, 0, 0), "{what}");
        }
    }
    if let Some(e) = find(out, 0x8000_000a, 0) {
        if opts.nested_svm {
            assert_eq!((e.eax, e.ebx, e.ecx), (1, 8, 0), "{what}");
            assert_eq!(
                e.edx & X86_FEATURE_NPT.mask() != 0,
                opts.nested_npt,
                "{what}: NPT for L1 only with nested NPT"
            );
        } else {
            assert_eq!((e.eax, e.ebx, e.ecx, e.edx), (0, 0, 0, 0), "{what}");
        }
    }
    for f in [0xb, 0x1f] {
        if let Some(e) = find(out, f, 0) {
            assert_eq!((e.eax, e.ebx, e.ecx), (0, 0, 0), "{what}: no topology");
            assert!(find(out, f, 1).is_none(), "{what}");
        }
    }
    let e = get(out, 6, 0);
    assert_eq!(
        (e.eax, e.ebx, e.ecx, e.edx),
        (4, 0, 0, 0),
        "{what}: ARAT only"
    );
    for f in [
        3,
        5,
        0x8000_0002,
        0x8000_0003,
        0x8000_0004,
        0x8000_001e,
        0x8000_0020,
    ] {
        if let Some(e) = find(out, f, 0) {
            assert_eq!((e.eax, e.ebx, e.ecx, e.edx), (0, 0, 0, 0), "{what}: {f:#x}");
        }
    }
    let sig = get(out, 0x4000_0000, 0);
    assert_eq!(
        [sig.eax, sig.ebx, sig.ecx, sig.edx],
        [0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d],
        "{what}"
    );
    assert_eq!(
        get(out, 0x4000_0001, 0).eax,
        cc::pv::features_eax(opts),
        "{what}"
    );
    let e = get(out, 0x8000_0008, 0);
    assert!(
        (e.eax >> 16) & 0xff <= 48,
        "{what}: GuestPhysAddrSize with 4-level NPT"
    );
    assert!((e.eax >> 8) & 0xff >= 48, "{what}: virtual address bits");
}

fn check_e2big<H: HostCpuid>(what: &str, host: &H, opts: &Options, n: usize) {
    let mut buf = vec![CpuidEntry::default(); n + 1];
    assert_eq!(cc::supported(host, opts, &mut buf[..n]), Ok(n), "{what}");
    assert_eq!(
        cc::supported(host, opts, &mut buf[..n + 1]),
        Ok(n),
        "{what}"
    );
    assert_eq!(
        cc::supported(host, opts, &mut buf[..n - 1]),
        Err(TooMany),
        "{what}: one short"
    );
    assert_eq!(
        cc::supported(host, opts, &mut []),
        Err(TooMany),
        "{what}: empty"
    );
}

fn check_msrs<H: cc::HostMsrs>(what: &str, caps: &KvmCaps, opts: &Options, host: &H) {
    let list = cc::msr_index_list(host, caps, opts);
    let all: BTreeSet<u32> = list.as_slice().iter().copied().collect();
    assert_eq!(all.len(), list.len(), "{what}: duplicates");
    for m in list.as_slice() {
        assert!(
            cc::MSRS_TO_SAVE.contains(m) || cc::EMULATED_MSRS.contains(m) || opts.pmu,
            "{what}: {m:#x}"
        );
        assert!(
            !(0x480..=0x491).contains(m),
            "{what}: VMX MSR {m:#x} on SVM"
        );
    }
    assert!(!all.contains(&msr::MSR_IA32_MCG_EXT_CTL), "{what}");
    assert_eq!(all.contains(&msr::MSR_IA32_SMBASE), opts.smm, "{what}");
    assert!(
        !all.contains(&msr::MSR_IA32_BNDCFGS),
        "{what}: no MPX on SVM"
    );
    assert_eq!(
        all.contains(&msr::MSR_IA32_XSS),
        caps.supported_xss != 0 && host.rdmsr_safe(0xda0).is_some()
    );
    if !caps.has(X86_FEATURE_SHSTK) {
        assert!(!all.contains(&msr::MSR_IA32_PL0_SSP), "{what}");
    }
    for m in [
        msr::MSR_KVM_SYSTEM_TIME_NEW,
        msr::MSR_IA32_TSC_DEADLINE,
        msr::MSR_IA32_MISC_ENABLE,
    ] {
        assert!(all.contains(&m), "{what}: {m:#x}");
    }
    let features = cc::feature_msr_index_list(host);
    assert_eq!(features.as_slice(), cc::FEATURE_MSRS, "{what}");
}

#[test]
fn recorded_hosts() {
    for fx in fixtures() {
        check_all(fx.name, &fx.host(), fx.xcr0);
    }
}

#[test]
fn recorded_hosts_with_derived_kernel_view() {
    // The same, with boot_cpu_has() derived from CPUID alone (no
    // /proc/cpuinfo knowledge), as the default trait method does.
    struct Raw<'a>(FixtureHost<'a>);
    impl HostCpuid for Raw<'_> {
        fn cpuid(&self, l: u32, s: u32) -> [u32; 4] {
            self.0.cpuid(l, s)
        }
    }
    impl cc::HostMsrs for Raw<'_> {
        fn rdmsr_safe(&self, i: u32) -> Option<u64> {
            cc::HostMsrs::rdmsr_safe(&self.0, i)
        }
    }
    for fx in fixtures() {
        check_all(fx.name, &Raw(fx.host()), fx.xcr0);
    }
}

#[test]
fn this_machine() {
    let xcr0 = common::live_xcr0();
    check_all("this machine", &LiveHost, xcr0);
    // What the machine itself reports and KVM filters.
    let out = run_supported(&LiveHost, &Options::rkvm(xcr0, 0));
    let raw1 = LiveHost.cpuid(1, 0);
    let e = get(&out, 1, 0);
    assert_eq!(e.eax, raw1[0], "family/model/stepping pass through");
    assert_eq!(e.ebx, raw1[1], "brand/CLFLUSH/APIC id pass through");
    let e = get(&out, 0, 0);
    assert_eq!(
        [e.ebx, e.ecx, e.edx],
        [
            LiveHost.cpuid(0, 0)[1],
            LiveHost.cpuid(0, 0)[2],
            LiveHost.cpuid(0, 0)[3]
        ]
    );
}

#[test]
fn emulated_leaves() {
    let mut buf = [CpuidEntry::default(); 4];
    assert_eq!(emulated(&mut buf), Ok(3));
    assert_eq!(
        buf[0],
        CpuidEntry {
            eax: 7,
            ..CpuidEntry::default()
        }
    );
    assert_eq!(
        buf[1],
        CpuidEntry {
            function: 1,
            ecx: X86_FEATURE_MOVBE.mask(),
            ..CpuidEntry::default()
        }
    );
    assert_eq!(
        buf[2],
        CpuidEntry {
            function: 7,
            flags: KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
            ecx: X86_FEATURE_RDPID.mask(),
            ..CpuidEntry::default()
        }
    );
    // Upstream checks for room before every leaf it visits, also after
    // the last entry: 3 entries need nent >= 4.
    for n in 0..4 {
        assert_eq!(emulated(&mut buf[..n]), Err(TooMany), "nent {n}");
    }
    // RDPID only where RDTSCP is supported.
    let fx = common::skylake();
    let host = fx.host().with(cc::LinuxFeature::new(1, 27), false);
    let mut buf = [CpuidEntry::default(); 8];
    let n = cc::emulated_for(&host, &Options::rkvm(fx.xcr0, 0), &mut buf).unwrap();
    assert_eq!(n, 3);
    assert_eq!(buf[2].ecx, 0);
}

#[test]
fn intel_amx_upstream_vs_rkvm() {
    let fx = common::intel_amx();
    let host = fx.host();
    let up = run_supported(
        &host,
        &Options::upstream_amd(fx.xcr0, XFEATURE_MASK_CET_ALL),
    );
    let rk = run_supported(&host, &Options::rkvm(fx.xcr0, 0));
    // Upstream (with AMX permission not requested): AMX CPUID bits and
    // leaves 0x1D/0x1E, but no XTILE state; rkvm: none of it.
    assert!(has(&up, X86_FEATURE_AMX_TILE) && has(&up, X86_FEATURE_XFD));
    assert_eq!(get(&up, 0x1d, 0).eax, 1);
    assert!(find(&up, 0x1d, 1).is_some());
    assert!(!has(&rk, X86_FEATURE_AMX_TILE) && !has(&rk, X86_FEATURE_XFD));
    assert_eq!(
        get(&rk, 0x1d, 0),
        CpuidEntry {
            function: 0x1d,
            flags: 1,
            ..CpuidEntry::default()
        }
    );
    assert!(find(&rk, 0x1d, 1).is_none());
    for out in [&up, &rk] {
        let d0 = get(out, 0xd, 0);
        assert_eq!(d0.eax, 0x2e7, "no MPX, no XTILE");
        assert_eq!(d0.ebx, 0xa88);
    }
    // CET: upstream with XSS CET keeps SHSTK and the CET subleaves; IBT
    // never (SVM); rkvm without XSS drops both.
    assert!(has(&up, X86_FEATURE_SHSTK) && !has(&up, X86_FEATURE_IBT));
    assert_eq!(get(&up, 0xd, 1).ecx, 0x1800);
    assert!(find(&up, 0xd, 0xb).is_some() && find(&up, 0xd, 0xc).is_some());
    assert!(find(&up, 0xd, 8).is_none(), "no PT state");
    assert!(!has(&rk, X86_FEATURE_SHSTK));
    assert_eq!(get(&rk, 0xd, 1).ecx, 0);
    // Compacted size: x87..AVX-512, PKRU packed (+ CET for upstream).
    assert_eq!(get(&rk, 0xd, 1).ebx, 576 + 0x100 + 0x40 + 0x200 + 0x400 + 8);
    assert_eq!(
        get(&up, 0xd, 1).ebx,
        576 + 0x100 + 0x40 + 0x200 + 0x400 + 8 + 0x10 + 0x18
    );
    // Leaf 7: 2 subleaves; VMX-only and host-only bits gone.
    assert_eq!(get(&rk, 7, 0).eax, 2);
    assert!(!has(&rk, X86_FEATURE_WAITPKG) && !has(&rk, X86_FEATURE_INTEL_PT));
    assert!(
        has(&rk, X86_FEATURE_LA57) && has(&rk, X86_FEATURE_PKU) && has(&rk, X86_FEATURE_AVX512F)
    );
    assert_eq!(word(&rk, Leaf::L7Sub2Edx), 0x17);
    // Leaf 4 (Intel caches): all subleaves until type 0, flagged.
    let l4: Vec<_> = rk.iter().filter(|e| e.function == 4).collect();
    assert_eq!(l4.len(), 5);
    assert!(l4.iter().all(|e| e.flags == 1));
    // PMU: leaf 0xA only with a vPMU.
    let mut pmu = Options::upstream_amd(fx.xcr0, 0);
    pmu.pmu = true;
    let p = run_supported(&host, &pmu);
    let a = get(&p, 0xa, 0);
    assert_eq!(a.eax & 0xff, 2, "version capped at 2");
    assert_eq!((a.eax >> 8) & 0xff, 8);
    assert_eq!(a.edx & 0x1f, 3);
    // IA32_ARCH_CAPABILITIES from the host MSR.
    let v = cc::feature_msr(&host, msr::MSR_IA32_ARCH_CAPABILITIES).unwrap();
    use cc::feature_msrs::*;
    use msr::*;
    assert_eq!(v & !KVM_SUPPORTED_ARCH_CAP, 0);
    assert!(v & ARCH_CAP_MDS_NO != 0 && v & ARCH_CAP_RDCL_NO != 0 && v & ARCH_CAP_TAA_NO != 0);
    assert!(v & ARCH_CAP_SSB_NO == 0, "host has the SSB bug");
}

#[test]
fn zen4_upstream_vs_rkvm() {
    let fx = common::zen4();
    let host = fx.host();
    let rk = run_supported(&host, &Options::rkvm(fx.xcr0, 0));
    // AVX-512 host: 0xD has the AVX-512 components, compacted size via
    // XSAVEC/XSAVES.
    let subs: Vec<u32> = rk
        .iter()
        .filter(|e| e.function == 0xd)
        .map(|e| e.index)
        .collect();
    assert_eq!(subs, vec![0, 1, 2, 5, 6, 7]);
    assert_eq!(get(&rk, 0xd, 0).ebx, 0x980);
    assert_eq!(get(&rk, 0xd, 1).ebx, 0x980);
    // CET shadow stacks need XSS CET (host has it): only with host_xss.
    assert!(!has(&rk, X86_FEATURE_SHSTK));
    let up = run_supported(&host, &Options::rkvm(fx.xcr0, XFEATURE_MASK_CET_ALL));
    assert!(has(&up, X86_FEATURE_SHSTK));
    let subs: Vec<u32> = up
        .iter()
        .filter(|e| e.function == 0xd)
        .map(|e| e.index)
        .collect();
    assert_eq!(subs, vec![0, 1, 2, 5, 6, 7, 0xb, 0xc]);
    assert_eq!(get(&up, 0xd, 1).ecx, 0x1800);
    // 0x80000021: AMD's own leaf, masked; the kernel sees the null
    // selector bug (a guest without the CPUID bit), so no NULL_SEL_CLR_BASE.
    assert!(has(&rk, X86_FEATURE_LFENCE_RDTSC) && has(&rk, X86_FEATURE_NO_SMM_CTL_MSR));
    assert!(!has(&rk, X86_FEATURE_NULL_SEL_CLR_BASE));
}

#[test]
fn hide_option_removes_features() {
    let fx = common::epyc();
    let mut opts = Options::rkvm(fx.xcr0, 0);
    const HIDE: &[Feature] = &[X86_FEATURE_AVX2, X86_FEATURE_RDTSCP];
    opts.hide = HIDE;
    let out = run_supported(&fx.host(), &opts);
    assert!(!has(&out, X86_FEATURE_AVX2) && !has(&out, X86_FEATURE_RDTSCP));
    let caps = KvmCaps::new(&fx.host(), &opts);
    let list = cc::msr_index_list(&fx.host(), &caps, &opts);
    assert!(!list.contains(msr::MSR_TSC_AUX), "TSC_AUX goes with RDTSCP");
    const HIDE_MSRS: &[u32] = &[msr::MSR_KVM_POLL_CONTROL];
    opts.hide_msrs = HIDE_MSRS;
    let list = cc::msr_index_list(&fx.host(), &caps, &opts);
    assert!(!list.contains(msr::MSR_KVM_POLL_CONTROL));
}
