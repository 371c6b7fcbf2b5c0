//! The Rust mirrors in `uapi.rs` against the C uapi headers of the repo
//! (`usr/include`): sizes and field offsets must match exactly. SKIP (with
//! the reason; ../../skip.rs) when no C compiler or system headers are
//! available.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

use rkvm_irqchip::irqchip::uapi::*;

#[path = "../../skip.rs"]
mod skip;

const PROGRAM: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include <linux/kvm.h>
#define S(s) printf(#s " %zu\n", sizeof(struct s));
#define O(s, f) printf(#s "." #f " %zu\n", offsetof(struct s, f));
int main(void) {
    S(kvm_pic_state) O(kvm_pic_state, elcr_mask) O(kvm_pic_state, init_state)
    S(kvm_ioapic_state) O(kvm_ioapic_state, ioregsel) O(kvm_ioapic_state, id) O(kvm_ioapic_state, irr)
    O(kvm_ioapic_state, redirtbl)
    S(kvm_pit_channel_state) O(kvm_pit_channel_state, latched_count) O(kvm_pit_channel_state, count_latched)
    O(kvm_pit_channel_state, gate) O(kvm_pit_channel_state, count_load_time)
    S(kvm_pit_state) S(kvm_pit_state2) O(kvm_pit_state2, flags) O(kvm_pit_state2, reserved)
    S(kvm_lapic_state)
    S(kvm_irq_routing_entry) O(kvm_irq_routing_entry, type) O(kvm_irq_routing_entry, flags) O(kvm_irq_routing_entry, u)
    S(kvm_msi) O(kvm_msi, flags) O(kvm_msi, devid)
    printf("KVM_IOAPIC_NUM_PINS %d\n", KVM_IOAPIC_NUM_PINS);
    printf("KVM_PIT_FLAGS_HPET_LEGACY %d\n", KVM_PIT_FLAGS_HPET_LEGACY);
    printf("KVM_PIT_FLAGS_SPEAKER_DATA_ON %d\n", KVM_PIT_FLAGS_SPEAKER_DATA_ON);
    printf("KVM_IRQ_ROUTING_IRQCHIP %d\n", KVM_IRQ_ROUTING_IRQCHIP);
    printf("KVM_IRQ_ROUTING_MSI %d\n", KVM_IRQ_ROUTING_MSI);
    printf("KVM_MSI_VALID_DEVID %d\n", KVM_MSI_VALID_DEVID);
    printf("KVM_APIC_REG_SIZE %d\n", KVM_APIC_REG_SIZE);
    return 0;
}
"#;

/// The C layout, or why it cannot be had here (no C compiler or headers).
fn c_layout() -> Result<HashMap<String, usize>, String> {
    let repo_include = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../usr/include");
    if !repo_include.join("linux/kvm.h").exists() {
        return Err("no usr/include/linux/kvm.h".into());
    }
    let dir = std::env::temp_dir().join(format!("rkvm-irqchip-uapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let src = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&src, PROGRAM).map_err(|e| format!("write {}: {e}", src.display()))?;
    let out = Command::new("cc")
        .arg("-I")
        .arg(&repo_include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .map_err(|e| format!("no C compiler (cc: {e})"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("cc failed (system headers missing?): {}", err.lines().next().unwrap_or("")));
    }
    let run = Command::new(&exe).output();
    let _ = std::fs::remove_dir_all(&dir);
    // From here on a problem is a failure, not a missing tool.
    let run = run.unwrap_or_else(|e| panic!("running the layout program: {e}"));
    assert!(run.status.success(), "the layout program failed: {:?}", run.status);
    let text = String::from_utf8(run.stdout).expect("layout program output is not UTF-8");
    Ok(text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect())
}

#[test]
fn uapi_mirrors_match_c_headers() {
    let c = match c_layout() {
        Ok(c) => c,
        Err(why) => return skip::skip("uapi_mirrors_match_c_headers", &why),
    };
    let rust: Vec<(&str, usize)> = vec![
        ("kvm_pic_state", size_of::<KvmPicState>()),
        (
            "kvm_pic_state.elcr_mask",
            offset_of!(KvmPicState, elcr_mask),
        ),
        (
            "kvm_pic_state.init_state",
            offset_of!(KvmPicState, init_state),
        ),
        ("kvm_ioapic_state", size_of::<KvmIoapicState>()),
        (
            "kvm_ioapic_state.ioregsel",
            offset_of!(KvmIoapicState, ioregsel),
        ),
        ("kvm_ioapic_state.id", offset_of!(KvmIoapicState, id)),
        ("kvm_ioapic_state.irr", offset_of!(KvmIoapicState, irr)),
        (
            "kvm_ioapic_state.redirtbl",
            offset_of!(KvmIoapicState, redirtbl),
        ),
        ("kvm_pit_channel_state", size_of::<KvmPitChannelState>()),
        (
            "kvm_pit_channel_state.latched_count",
            offset_of!(KvmPitChannelState, latched_count),
        ),
        (
            "kvm_pit_channel_state.count_latched",
            offset_of!(KvmPitChannelState, count_latched),
        ),
        (
            "kvm_pit_channel_state.gate",
            offset_of!(KvmPitChannelState, gate),
        ),
        (
            "kvm_pit_channel_state.count_load_time",
            offset_of!(KvmPitChannelState, count_load_time),
        ),
        ("kvm_pit_state", size_of::<KvmPitState>()),
        ("kvm_pit_state2", size_of::<KvmPitState2>()),
        ("kvm_pit_state2.flags", offset_of!(KvmPitState2, flags)),
        (
            "kvm_pit_state2.reserved",
            offset_of!(KvmPitState2, reserved),
        ),
        ("kvm_lapic_state", size_of::<KvmLapicState>()),
        ("kvm_irq_routing_entry", size_of::<KvmIrqRoutingEntry>()),
        (
            "kvm_irq_routing_entry.type",
            offset_of!(KvmIrqRoutingEntry, type_),
        ),
        (
            "kvm_irq_routing_entry.flags",
            offset_of!(KvmIrqRoutingEntry, flags),
        ),
        ("kvm_irq_routing_entry.u", offset_of!(KvmIrqRoutingEntry, u)),
        ("kvm_msi", size_of::<KvmMsi>()),
        ("kvm_msi.flags", offset_of!(KvmMsi, flags)),
        ("kvm_msi.devid", offset_of!(KvmMsi, devid)),
        ("KVM_IOAPIC_NUM_PINS", KVM_IOAPIC_NUM_PINS),
        (
            "KVM_PIT_FLAGS_HPET_LEGACY",
            KVM_PIT_FLAGS_HPET_LEGACY as usize,
        ),
        (
            "KVM_PIT_FLAGS_SPEAKER_DATA_ON",
            KVM_PIT_FLAGS_SPEAKER_DATA_ON as usize,
        ),
        ("KVM_IRQ_ROUTING_IRQCHIP", KVM_IRQ_ROUTING_IRQCHIP as usize),
        ("KVM_IRQ_ROUTING_MSI", KVM_IRQ_ROUTING_MSI as usize),
        ("KVM_MSI_VALID_DEVID", KVM_MSI_VALID_DEVID as usize),
        (
            "KVM_APIC_REG_SIZE",
            rkvm_irqchip::irqchip::lapic_page::LAPIC_STATE_SIZE,
        ),
    ];
    for (name, value) in rust {
        assert_eq!(c.get(name).copied(), Some(value), "{name}");
    }
}
