//! The in-tree module's answers, recorded once: the fixture
//! tests/host/cpuid_caps/fixtures/epyc-tcg-intree.txt, made by
//! tests/host/cpuid_caps/capture/capture.sh in this same test VM (QEMU TCG,
//! -cpu EPYC,+svm,+npt) with the in-tree kvm-amd loaded.  Tests that pin a
//! module-set-dependent answer compare both columns against it, so the
//! in-tree column checks the recording and ours is held to it.
//!
//! The recording is only valid for the CPU it was made on: when the test
//! VM's CPU (raw CPUID) differs, [`get`] says SKIP with the difference.

use super::harness::skip;
use std::collections::BTreeMap;

const TEXT: &str = include_str!("../../../../host/cpuid_caps/fixtures/epyc-tcg-intree.txt");
pub const NAME: &str = "tests/host/cpuid_caps/fixtures/epyc-tcg-intree.txt";

pub struct Recording {
    /// `raw LEAF SUBLEAF` -> [eax, ebx, ecx, edx] of the CPU it was made on.
    pub raw: BTreeMap<(u32, u32), [u32; 4]>,
    /// `supported FUNC INDEX` -> [flags, eax, ebx, ecx, edx].
    pub supported: BTreeMap<(u32, u32), [u32; 5]>,
    /// KVM_GET_MSR_INDEX_LIST, in order.
    pub msrs: Vec<u32>,
    /// KVM_GET_MSR_FEATURE_INDEX_LIST, in order.
    pub feature_msrs: Vec<u32>,
    /// KVM_GET_MSRS on /dev/kvm: feature MSR -> value (None: not readable).
    pub feature_values: BTreeMap<u32, Option<u64>>,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("{NAME}: bad number {s:?}"))
}

fn parse() -> Recording {
    let mut r = Recording {
        raw: BTreeMap::new(),
        supported: BTreeMap::new(),
        msrs: vec![],
        feature_msrs: vec![],
        feature_values: BTreeMap::new(),
    };
    for line in TEXT.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| hex(w[i]) as u32;
        match w.first().copied() {
            Some("raw") if w.len() == 7 => {
                r.raw.insert((n(1), n(2)), [n(3), n(4), n(5), n(6)]);
            }
            Some("supported") if w.len() == 8 => {
                r.supported.insert((n(1), n(2)), [n(3), n(4), n(5), n(6), n(7)]);
            }
            Some("msr") if w.len() == 2 => r.msrs.push(n(1)),
            Some("feature_msr") if w.len() == 2 => r.feature_msrs.push(n(1)),
            Some("feature_msr_value") if w.len() == 3 => {
                r.feature_values.insert(n(1), (w[2] != "none").then(|| hex(w[2])));
            }
            _ => {}
        }
    }
    r
}

/// The leaves that identify the CPU model (leaf 1 EBX holds the APIC ID of
/// the CPU that runs the test: not compared).
const IDENTITY: [(u32, u32, &[usize]); 4] =
    [(0, 0, &[0, 1, 2, 3]), (1, 0, &[0, 2, 3]), (7, 0, &[1, 2, 3]), (0x8000_0001, 0, &[0, 2, 3])];

/// The recording, or SKIP when the test VM's CPU is not the recorded one.
pub fn get() -> Result<Recording, String> {
    let r = parse();
    for (leaf, sub, regs) in IDENTITY {
        let c = std::arch::x86_64::__cpuid_count(leaf, sub);
        let now = [c.eax, c.ebx, c.ecx, c.edx];
        let Some(rec) = r.raw.get(&(leaf, sub)) else {
            return Err(format!("{NAME} lacks raw CPUID leaf {leaf:#x}"));
        };
        for &i in regs {
            if now[i] != rec[i] {
                return skip(format!(
                    "{NAME} was recorded on another CPU model (CPUID {leaf:#x}.{sub} reg {i}: {:#x} here, {:#x} recorded)",
                    now[i], rec[i]
                ));
            }
        }
    }
    Ok(r)
}

/// Differences between two lists taken as sets: what `got` lacks and what
/// it has too many, as hex.
pub fn set_diff(got: &[u32], want: &[u32]) -> Option<String> {
    let missing: Vec<String> = want.iter().filter(|x| !got.contains(x)).map(|x| format!("{x:#x}")).collect();
    let extra: Vec<String> = got.iter().filter(|x| !want.contains(x)).map(|x| format!("{x:#x}")).collect();
    if missing.is_empty() && extra.is_empty() && got.len() == want.len() {
        None
    } else {
        Some(format!(
            "{} entries, recorded {}; missing {missing:?}, not recorded {extra:?}",
            got.len(),
            want.len()
        ))
    }
}
