// SPDX-License-Identifier: GPL-2.0
//! The current CPU and scheduling: preemption and interrupt guards, CPU
//! ids, reschedule IPIs, scheduling points.

use super::bindings as rb;
use core::marker::PhantomData;
use kernel::{bindings, ffi};

/// Local interrupts off until dropped (pairs with the enable in `Drop`;
/// only for code that ran with interrupts on).
pub struct IrqsOff {
    _not_send: PhantomData<*mut ()>,
}

impl IrqsOff {
    /// Disables local interrupts.
    pub fn new() -> Self {
        // SAFETY: balanced by `Drop` on the same CPU (the guard is !Send).
        unsafe { rb::rkvm_local_irq_disable() };
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Default for IrqsOff {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        // SAFETY: undoes `new`.
        unsafe { rb::rkvm_local_irq_enable() };
    }
}

/// The CPU the caller runs on right now: a hint, since the thread may
/// migrate right after unless preemption is off (see
/// [`super::guest_entry::EntryWindow::cpu`] for a stable id).
pub fn current_cpu_hint() -> i32 {
    // SAFETY: reads the per-CPU id; a stale answer is allowed here.
    unsafe { rb::rkvm_smp_processor_id() }
}

/// Number of online CPUs.
pub fn num_online_cpus() -> usize {
    // SAFETY: reads a counter.
    unsafe { rb::rkvm_num_online_cpus() as usize }
}

/// A scheduling point (process context, no spinlocks held).
pub fn cond_resched() {
    // SAFETY: may sleep; callers hold no spinlock (Rust guards make a
    // sleeping call under one a bug the debug kernel reports).
    unsafe { rb::rkvm_cond_resched() }
}

/// Whether the scheduler wants this CPU back.
pub fn need_resched() -> bool {
    // SAFETY: reads the current task's flags.
    unsafe { rb::rkvm_need_resched() }
}

/// Sends a reschedule IPI to `cpu` (any context): a CPU running a guest
/// exits to the host.
pub fn send_reschedule(cpu: i32) {
    if cpu >= 0 {
        // SAFETY: any CPU number; the IPI is harmless to an idle CPU.
        unsafe { rb::rkvm_smp_send_reschedule(cpu) };
    }
}

/// A cross-call callback that does nothing.
///
/// # Safety
///
/// Any argument: it is not used.
unsafe extern "C" fn nothing(_info: *mut ffi::c_void) {}

/// Runs an empty function on `cpu` and waits for it (process context,
/// interrupts on): afterwards `cpu` has taken an interrupt, so a guest
/// that ran there has exited at least once.
pub fn sync_with_cpu(cpu: i32) {
    if cpu >= 0 {
        // SAFETY: a static no-op callback without argument; waiting cross
        // calls are allowed in process context with interrupts on.
        unsafe {
            bindings::smp_call_function_single(cpu, Some(nothing), core::ptr::null_mut(), true)
        };
    }
}

/// Whether the current task is the only runnable one on this CPU (halt
/// polling stops as soon as another task wants the CPU).
pub fn single_task_running() -> bool {
    // SAFETY: reads the current CPU's run-queue length.
    unsafe { rb::single_task_running() }
}
