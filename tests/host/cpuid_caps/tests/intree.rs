//! Same inputs, same outputs: the in-tree kvm-amd module of Linux 7.3,
//! recorded in the TCG test VM (capture/capture.sh) on three CPU models,
//! against this implementation fed the same host CPUID.

mod common;

use common::{diff, fmt, run_supported, Fixture};
use rkvm_cpuid_caps::cpuid_caps::{
    self as cc, dev_get_msr, emulated, emulated_for, feature_msr, feature_msr_index_list,
    msr_index_list, CpuidEntry, KvmCaps, Options, MAX_CPUID_ENTRIES,
};

const E2BIG: i32 = 7;

fn intree() -> Vec<Fixture> {
    vec![common::epyc(), common::milan(), common::max()]
}

fn upstream(fx: &Fixture) -> Options {
    Options::upstream_amd(fx.xcr0, 0)
}

#[test]
fn supported_matches_intree_exactly_with_upstream_options() {
    for fx in intree() {
        let host = fx.host();
        let ours = run_supported(&host, &upstream(&fx));
        let d = diff(&ours, &fx.supported);
        assert!(d.is_empty(), "{}: differences:\n{}", fx.name, d.join("\n"));
        // Same order too.
        assert_eq!(ours, fx.supported, "{}: order", fx.name);
    }
}

#[test]
fn e2big_matches_intree_for_every_size() {
    for fx in intree() {
        let host = fx.host();
        let opts = upstream(&fx);
        assert!(!fx.supported_e2big.is_empty());
        for &(nent, errno) in &fx.supported_e2big {
            let mut buf = vec![CpuidEntry::default(); nent.min(MAX_CPUID_ENTRIES)];
            let r = cc::supported(&host, &opts, &mut buf);
            assert_eq!(
                r.is_err(),
                errno == E2BIG,
                "{}: nent {nent}: {r:?}",
                fx.name
            );
            if let Ok(n) = r {
                assert_eq!(&buf[..n], &fx.supported[..], "{}: nent {nent}", fx.name);
            }
        }
        for &(nent, errno) in &fx.emulated_e2big {
            let mut buf = vec![CpuidEntry::default(); nent];
            let r = emulated(&mut buf);
            assert_eq!(
                r.is_err(),
                errno == E2BIG,
                "{}: emulated nent {nent}: {r:?}",
                fx.name
            );
        }
    }
}

#[test]
fn emulated_matches_intree() {
    for fx in intree() {
        let mut buf = [CpuidEntry::default(); 8];
        let n = emulated(&mut buf).unwrap();
        assert_eq!(&buf[..n], &fx.emulated[..], "{}", fx.name);
        let n = emulated_for(&fx.host(), &upstream(&fx), &mut buf).unwrap();
        assert_eq!(&buf[..n], &fx.emulated[..], "{}", fx.name);
    }
}

#[test]
fn msr_index_list_matches_intree_with_upstream_options() {
    for fx in intree() {
        let host = fx.host();
        let opts = upstream(&fx);
        let caps = KvmCaps::new(&host, &opts);
        let list = msr_index_list(&host, &caps, &opts);
        assert_eq!(list.as_slice(), &fx.msrs[..], "{}", fx.name);
    }
}

#[test]
fn feature_msrs_match_intree() {
    for fx in intree() {
        let host = fx.host();
        assert_eq!(
            feature_msr_index_list(&host).as_slice(),
            &fx.feature_msrs[..],
            "{}",
            fx.name
        );
        let opts = upstream(&fx);
        let advertised = msr_index_list(&host, &KvmCaps::new(&host, &opts), &opts);
        for (&index, &value) in &fx.feature_values {
            assert_eq!(
                dev_get_msr(&host, &advertised, index),
                value,
                "{}: MSR {index:#x}",
                fx.name
            );
            if !fx.feature_msrs.contains(&index) {
                assert_eq!(
                    feature_msr(&host, index),
                    None,
                    "{}: MSR {index:#x}",
                    fx.name
                );
            }
        }
        // Neither a feature MSR nor advertised: the read fails.
        assert_eq!(dev_get_msr(&host, &advertised, 0x1234), None);
    }
}

/// What rkvm leaves out on purpose, compared with in-tree kvm-amd:
/// - no nested SVM: CPUID.80000001H:ECX.SVM and leaf 0x8000000A;
/// - PV features: NOP_IO_DELAY and kvmclock without the stable bit
///   (upstream 0x01007efb).
///
/// The MSR index list is in-tree's (MSR_IA32_SMBASE included: userspace
/// saves it even though rkvm emulates no SMM).
#[test]
fn rkvm_differs_from_intree_only_where_intended() {
    for fx in intree() {
        let host = fx.host();
        let opts = Options::rkvm(fx.xcr0, 0);
        let ours = run_supported(&host, &opts);
        let mut expected = fx.supported.clone();
        for e in expected.iter_mut() {
            match e.function {
                0x8000_0001 => e.ecx &= !(1 << 2),
                0x8000_000a => (e.eax, e.ebx, e.ecx, e.edx) = (0, 0, 0, 0),
                0x4000_0001 => e.eax = cc::pv::RKVM_PV_FEATURES,
                _ => {}
            }
        }
        let d = diff(&ours, &expected);
        assert!(d.is_empty(), "{}:\n{}", fx.name, d.join("\n"));
        assert_eq!(ours, expected, "{}: order", fx.name);

        let caps = KvmCaps::new(&host, &opts);
        let list = msr_index_list(&host, &caps, &opts);
        assert_eq!(list.as_slice(), &fx.msrs[..], "{}", fx.name);
    }
}

/// With kvmclock and the full upstream PV set, leaf 0x40000001 is
/// upstream's.
#[test]
fn kvmclock_and_full_pv_set_give_upstream_leaf() {
    let fx = common::epyc();
    let mut opts = Options::rkvm(fx.xcr0, 0);
    opts.kvmclock = true;
    opts.pv_features = cc::pv::UPSTREAM_PV_FEATURES & !cc::pv::KVMCLOCK_FEATURES;
    let ours = run_supported(&fx.host(), &opts);
    let theirs = fx
        .supported
        .iter()
        .find(|e| e.function == 0x4000_0001)
        .unwrap();
    let mine = ours.iter().find(|e| e.function == 0x4000_0001).unwrap();
    assert_eq!(fmt(mine), fmt(theirs));
}
