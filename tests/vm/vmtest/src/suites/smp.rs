//! Several VMs and vCPUs running at the same time.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use std::sync::{Arc, Barrier};

pub fn tests() -> Vec<Test> {
    vec![test("smp/2-vms-x-2-vcpus-concurrently", two_by_two)]
}

/// Exits per vCPU.
const N: u32 = 40;

/// Two VMs with two vCPUs each, all four running at once in their own
/// threads: every vCPU reports its own tag and counter sequence through
/// port I/O (tag = 1..4, values tag << 16 | 1..N), so exits from different
/// vCPUs or VMs must never be mixed up; each VM's vCPUs share its memory.
fn two_by_two() -> TestResult {
    let vms = [Vm::new(Mode::Long)?, Vm::new(Mode::Long)?];
    // Create and set up all four first, so that a failure leaves no
    // thread waiting at the barrier.
    let mut cpus = Vec::new();
    for (v, vm) in vms.iter().enumerate() {
        for c in 0..2u64 {
            let mut cpu = vm.vcpu(c)?;
            let tag = v as u64 * 2 + c + 1;
            cpu.start("count_out")?;
            cpu.with_regs(|r| {
                r.rbx = tag;
                r.rcx = N as u64;
            })?;
            cpus.push((tag, cpu));
        }
    }
    let start = Arc::new(Barrier::new(cpus.len()));
    let threads: Vec<_> = cpus
        .into_iter()
        .map(|(tag, mut cpu)| {
            let start = start.clone();
            (
                tag,
                std::thread::spawn(move || {
                    start.wait();
                    cpu.collect_out4(PORT_OUT, N as usize + 1)
                }),
            )
        })
        .collect();
    let mut errs = Vec::new();
    for (tag, t) in threads {
        let want: Vec<u32> = (1..=N).map(|i| (tag as u32) << 16 | i).collect();
        match t.join() {
            Ok(Ok(got)) if got == want => {}
            Ok(Ok(got)) => errs.push(format!("vCPU tag {tag}: got {got:x?}, want {want:x?}")),
            Ok(Err(e)) => errs.push(format!("vCPU tag {tag}: {e}")),
            Err(_) => errs.push(format!("vCPU tag {tag}: thread panicked")),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}
