// SPDX-License-Identifier: GPL-2.0
//! The interface between kvm.ko and a vendor backend (kvm-amd, kvm-intel).
//!
//! A vendor module implements [`ArchOps`] and calls [`register`] from its
//! init; the returned [`Registration`] unregisters when the vendor module
//! exits. While registered, virtualization is enabled on every online CPU
//! (and on CPUs that come online later), like upstream's default
//! `enable_virt_at_load`. Every VM holds a [`VendorRef`], which pins the
//! vendor module, so `rmmod kvm-amd` with live VMs fails cleanly.

pub use crate::defs::regs::{Gpr, NR_GPRS, R8, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP};
use crate::{
    ext::{cpuhp, module_ref::ModuleRef, uapi},
    virt::debugfs::VmStatsTree,
};
use kernel::{debugfs::Dir, prelude::*, sync::Arc, ThisModule};

pub use crate::cpuid_caps::VendorCaps;
pub use crate::defs::paging::Gpa;
pub use crate::x86::{
    exit::{IoExit, VmExit},
    mmu::tdp::TdpFormat,
};

/// Every exit KVM_CAP_X86_DISABLE_EXITS knows: HLT, MONITOR/MWAIT (the
/// core also checks the host's MWAIT), PAUSE and C-states.
pub const DISABLE_EXITS_ALL: u64 = (uapi::KVM_X86_DISABLE_EXITS_MWAIT
    | uapi::KVM_X86_DISABLE_EXITS_HLT
    | uapi::KVM_X86_DISABLE_EXITS_PAUSE
    | uapi::KVM_X86_DISABLE_EXITS_CSTATE) as u64;

/// What a vendor backend implements.
pub trait ArchOps: Send + Sync {
    /// Enables hardware virtualization on the current CPU, `cpu`.
    ///
    /// Runs in `cpu`'s hotplug thread: may sleep, cannot migrate.
    fn enable_cpu(&self, cpu: u32) -> Result;

    /// Undoes [`ArchOps::enable_cpu`] on the current CPU, `cpu`.
    fn disable_cpu(&self, cpu: u32);

    /// The vendor's two-dimensional paging entry format (NPT or EPT).
    fn tdp_format(&self) -> TdpFormat;

    /// Whether guests run on two-dimensional paging (NPT, EPT); false:
    /// on the core's shadow MMU (kvm-amd `npt=0`, kvm-intel `ept=0`).
    /// The vendor then runs every vCPU as [`VcpuArch::set_shadow_cr3`]
    /// describes.
    fn tdp_enabled(&self) -> bool {
        true
    }

    /// The vendor's rules for KVM_GET_SUPPORTED_CPUID and the MSR lists.
    fn cpu_caps(&self) -> &'static dyn VendorCaps;
    /// KVM_CAP_NESTED_STATE: the largest KVM_GET_NESTED_STATE answer
    /// (header and data), 0 without the ioctls.
    fn nested_state_size(&self) -> u32 {
        0
    }
    /// Nested virtualization is on (kvm-amd `nested`): the guest may see
    /// SVM in its CPUID (without NPT) and set EFER.SVME.
    fn nested(&self) -> bool {
        false
    }

    /// `isa` of the kvm_exit trace event (`ext::trace::ISA_*`), which
    /// selects the exit-reason names.
    fn trace_isa(&self) -> u32 {
        0
    }

    /// A new vCPU in its reset state, for a VM whose two-dimensional page
    /// tables are rooted at `tdp_root` (host physical; 0 when
    /// [`ArchOps::tdp_enabled`] is false).
    fn create_vcpu(&self, id: u32, tdp_root: u64) -> Result<KBox<dyn VcpuArch>>;

    /// The `KVM_X86_DISABLE_EXITS_*` this vendor can honour (see
    /// [`VcpuArch::set_disabled_exits`]; SVM and VMX both take
    /// [`DISABLE_EXITS_ALL`]); none by default.
    fn disable_exits_supported(&self) -> u64 {
        0
    }

    /// A new vCPU's IA32_UCODE_REV (upstream: 0x100000000, which SVM
    /// replaces with 0x01000065).
    fn reset_ucode_rev(&self) -> u64 {
        0x1_0000_0000
    }
}

/// Guest general-purpose registers, indexed by [`Gpr`] (x86 encoding
/// order); the vendor keeps RAX and RSP in sync with its hardware state.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Gprs(pub [u64; NR_GPRS]);

impl core::ops::Index<Gpr> for Gprs {
    type Output = u64;

    fn index(&self, r: Gpr) -> &u64 {
        &self.0[usize::from(r) % NR_GPRS]
    }
}

impl core::ops::IndexMut<Gpr> for Gprs {
    fn index_mut(&mut self, r: Gpr) -> &mut u64 {
        &mut self.0[usize::from(r) % NR_GPRS]
    }
}

/// Segment registers (the emulator's encoding: ES, CS, SS, DS, FS, GS,
/// LDTR, TR).
pub use crate::emulate::SegReg as Seg;

/// Interrupt shadow kinds (STI, MOV SS).
pub use crate::emulate::InterruptShadow;

/// An event about to be injected (KVM_GET/SET_VCPU_EVENTS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedEvent {
    /// Nothing.
    None,
    /// External (or software, `soft`) interrupt.
    Interrupt {
        /// Vector.
        vector: u8,
        /// Software interrupt (INT n).
        soft: bool,
    },
    /// NMI.
    Nmi,
    /// Exception.
    Exception {
        /// Vector.
        vector: u8,
        /// Error code.
        error_code: Option<u32>,
    },
}

/// Result of an MSR access offered to the vendor backend first.
pub enum MsrAccess {
    /// Handled; for reads, the value.
    Done(u64),
    /// Not a vendor MSR: the core handles it.
    NotMine,
    /// Invalid access: the guest gets #GP (userspace gets an error).
    Fault,
}

/// Guest physical memory, for a vendor that reads or writes guest
/// structures while it handles an exit (nested SVM: the L1 hypervisor's
/// VMCB and permission maps). Accesses stay within one page.
pub trait GuestMem {
    /// Reads guest RAM at `gpa` into `buf`; false if it is not RAM.
    fn read(&self, gpa: Gpa, buf: &mut [u8]) -> bool;
    /// Writes `buf` to guest RAM at `gpa` (logging the page); false if
    /// it is not writable RAM.
    fn write(&self, gpa: Gpa, buf: &[u8]) -> bool;
}

/// The fixed part of KVM_GET/SET_NESTED_STATE's `struct
/// kvm_nested_state` after `size`: flags, format and the vendor's header.
#[derive(Clone, Copy)]
pub struct NestedStateHdr {
    /// `KVM_STATE_NESTED_*`.
    pub flags: u16,
    /// `KVM_STATE_NESTED_FORMAT_*`.
    pub format: u16,
    /// The format's header (SVM: `vmcb_pa`, `gpat`).
    pub hdr: [u8; 120],
}

/// A vendor's vCPU: its hardware state and the world switch.
pub trait VcpuArch: Send {
    /// Enters the guest once and returns why it stopped. Called on `cpu`
    /// with preemption and interrupts disabled; returns with them disabled.
    fn run(&mut self, cpu: u32) -> VmExit;

    /// The general-purpose registers.
    fn gprs(&self) -> &Gprs;
    /// The general-purpose registers, for writing.
    fn gprs_mut(&mut self) -> &mut Gprs;
    /// RIP.
    fn rip(&self) -> u64;
    /// Sets RIP.
    fn set_rip(&mut self, rip: u64);
    /// RFLAGS.
    fn rflags(&self) -> u64;
    /// Sets RFLAGS.
    fn set_rflags(&mut self, rflags: u64);
    /// RIP after the instruction that caused the last exit, when the
    /// hardware reported it (its end or its length).
    fn next_rip(&self) -> Option<u64>;
    /// Completes an intercepted instruction: RIP := `next_rip`, and the
    /// STI/MOV SS interrupt shadow ends.
    fn skip_to(&mut self, next_rip: u64);

    /// Segments, control registers, EFER and descriptor tables.
    fn get_sregs(&self, sregs: &mut uapi::kvm_sregs);
    /// Sets what [`VcpuArch::get_sregs`] gets (not `apic_base` and
    /// `interrupt_bitmap`, which the core owns); the core has checked
    /// the values' consistency.
    fn set_sregs(&mut self, sregs: &uapi::kvm_sregs) -> Result;
    /// One segment register.
    fn segment(&self, seg: Seg) -> uapi::kvm_segment;
    /// Sets one segment register.
    fn set_segment(&mut self, seg: Seg, val: &uapi::kvm_segment);
    /// GDTR (`idt` false) or IDTR (`idt` true).
    fn dtable(&self, idt: bool) -> uapi::kvm_dtable;
    /// Sets GDTR or IDTR.
    fn set_dtable(&mut self, idt: bool, val: &uapi::kvm_dtable);
    /// The segment and descriptor-table part of [`VcpuArch::get_sregs`],
    /// through [`VcpuArch::segment`] and [`VcpuArch::dtable`].
    fn get_sregs_segments(&self, s: &mut uapi::kvm_sregs) {
        s.cs = self.segment(Seg::Cs);
        s.ds = self.segment(Seg::Ds);
        s.es = self.segment(Seg::Es);
        s.fs = self.segment(Seg::Fs);
        s.gs = self.segment(Seg::Gs);
        s.ss = self.segment(Seg::Ss);
        s.tr = self.segment(Seg::Tr);
        s.ldt = self.segment(Seg::Ldtr);
        s.gdt = self.dtable(false);
        s.idt = self.dtable(true);
    }
    /// The segment and descriptor-table part of [`VcpuArch::set_sregs`],
    /// through [`VcpuArch::set_segment`] and [`VcpuArch::set_dtable`].
    fn set_sregs_segments(&mut self, s: &uapi::kvm_sregs) {
        for (seg, val) in [
            (Seg::Cs, &s.cs),
            (Seg::Ds, &s.ds),
            (Seg::Es, &s.es),
            (Seg::Fs, &s.fs),
            (Seg::Gs, &s.gs),
            (Seg::Ss, &s.ss),
            (Seg::Tr, &s.tr),
            (Seg::Ldtr, &s.ldt),
        ] {
            self.set_segment(seg, val);
        }
        self.set_dtable(false, &s.gdt);
        self.set_dtable(true, &s.idt);
    }
    /// Sets CR0, CR3 or CR4 (`n`), already validated by the core.
    fn set_cr(&mut self, n: u8, val: u64);
    /// CR2.
    fn cr2(&self) -> u64;
    /// Sets CR2.
    fn set_cr2(&mut self, val: u64);
    /// Debug register `n` (0-3, 6, 7).
    fn dr(&self, n: u8) -> u64;
    /// Sets debug register `n` (0-3, 6, 7).
    fn set_dr(&mut self, n: u8, val: u64);
    /// The next instruction boundary gets an interrupt shadow.
    fn set_interrupt_shadow(&mut self, kind: InterruptShadow);
    /// CR0.
    fn cr0(&self) -> u64;
    /// CR3.
    fn cr3(&self) -> u64;
    /// CR4.
    fn cr4(&self) -> u64;
    /// The guest's view of EFER.
    fn efer(&self) -> u64;
    /// Current privilege level.
    fn cpl(&self) -> u8;
    /// Reads an MSR the vendor keeps in its hardware state.
    fn get_msr(&mut self, index: u32) -> MsrAccess;
    /// Writes an MSR the vendor keeps; `host` for KVM_SET_MSRS.
    fn set_msr(&mut self, index: u32, value: u64, host: bool) -> MsrAccess;

    /// Injects exception `vector` on the next entry.
    fn inject_exception(&mut self, vector: u8, error_code: Option<u32>);
    /// Whether an external interrupt can be injected now (RFLAGS.IF, no
    /// interrupt shadow, no event already being injected).
    fn interrupt_allowed(&self) -> bool;
    /// Injects external interrupt `vector` on the next entry.
    fn inject_interrupt(&mut self, vector: u8);
    /// Whether an NMI can be injected now.
    fn nmi_allowed(&self) -> bool;
    /// Injects an NMI on the next entry (NMIs are blocked until the
    /// guest's handler returns).
    fn inject_nmi(&mut self);
    /// Whether NMIs are blocked.
    fn nmi_masked(&self) -> bool;
    /// Blocks or unblocks NMIs (KVM_SET_VCPU_EVENTS).
    fn set_nmi_masked(&mut self, masked: bool);
    /// Exit as soon as the guest can take an interrupt (or stop asking).
    fn request_interrupt_window(&mut self, on: bool);
    /// The event set up for injection on the next entry, if any.
    fn injected_event(&self) -> InjectedEvent;
    /// Replaces the event to inject on the next entry.
    fn set_injected_event(&mut self, e: InjectedEvent);
    /// The STI/MOV SS interrupt shadow as `KVM_X86_SHADOW_INT_*` bits (0:
    /// none); a vendor that cannot tell the kinds apart reports both.
    fn interrupt_shadow(&self) -> u8;
    /// Clears the interrupt shadow (KVM_SET_VCPU_EVENTS).
    fn clear_interrupt_shadow(&mut self);
    /// Intercepts exception `vector` (for guest debugging) or stops.
    fn set_exception_intercept(&mut self, vector: u8, on: bool);
    /// The guest TSC's offset from the host's.
    fn tsc_offset(&self) -> u64;
    /// Sets guest TSC - host TSC.
    fn set_tsc_offset(&mut self, offset: u64);
    /// The virtual TPR (CR8) the guest runs with.
    fn v_tpr(&self) -> u8;
    /// Sets the virtual TPR.
    fn set_v_tpr(&mut self, tpr: u8);
    /// Makes guest writes to CR8 exit (to be emulated), or not.
    fn set_cr8_write_intercept(&mut self, on: bool);
    /// Flushes this vCPU's guest TLB on the next entry.
    fn flush_tlb(&mut self);
    /// In PAE paging (CR0.PG, CR4.PAE, no EFER.LMA) a vendor whose CPU
    /// takes the four PDPTEs from its own state at entry (Intel EPT)
    /// needs them loaded from guest memory after CR0/CR3/CR4/EFER were
    /// set from outside the guest (upstream's load_pdptrs()): the guest
    /// physical address of the PDPT (CR3 bits 31:5) while they are stale.
    fn pdptrs_wanted(&self) -> Option<Gpa>;
    /// The PDPTEs read at [`VcpuArch::pdptrs_wanted`].
    fn set_pdptrs(&mut self, pdptrs: [u64; 4]);
    /// The last exit as upstream's `get_exit_info()` reports it in
    /// KVM_EXIT_INTERNAL_ERROR: reason, info 1 and 2, the event being
    /// delivered, and its error code.
    fn exit_info(&self) -> [u64; 5];
    /// The event about to be injected at entry, as upstream's
    /// `get_entry_info()` reports it in the kvm_entry trace event:
    /// interrupt information and error code.
    fn entry_info(&self) -> (u32, u32) {
        (0, 0)
    }
    /// Back to the reset state (power-on, or INIT when `init`).
    fn reset(&mut self, init: bool);

    /// Shadow paging ([`ArchOps::tdp_enabled`] false): the hardware CR3
    /// to run the guest on, the core's shadow root (with the guest's PCID
    /// in bits 11:0 when CR4.PCIDE is on; below 4 GiB when the guest is
    /// not in long mode). With shadow paging the vendor also
    /// - keeps the guest's CR0, CR3, CR4 and EFER apart from the
    ///   hardware's, which [`VcpuArch::cr0`] and the other getters
    ///   report and KVM_GET/SET_SREGS and the CR/EFER setters change;
    /// - runs the hardware with CR0.PG and CR0.WP set (a guest with
    ///   paging off runs on the core's identity map), CR4.PAE set (and
    ///   CR4.SMEP/SMAP/PKE clear while the guest's paging is off),
    ///   EFER.NXE set and EFER.LME clear unless EFER.LMA;
    /// - makes guest reads and writes of CR0, CR3 and CR4 exit
    ///   ([`VmExit::Emulate`]), and guest #PF exit as
    ///   [`VmExit::PageFault`] (INVLPG need not exit: shadow tables are
    ///   kept coherent by write protection);
    /// - flushes the guest's TLB tag in [`VcpuArch::flush_tlb`].
    fn set_shadow_cr3(&mut self, _cr3: u64) {}
    /// KVM_CAP_X86_DISABLE_EXITS, at vCPU creation: the
    /// `KVM_X86_DISABLE_EXITS_*` the VM enabled, within
    /// [`ArchOps::disable_exits_supported`] (HLT: the guest halts in
    /// hardware until an interrupt; MWAIT: MONITOR/MWAIT run natively;
    /// PAUSE: no PAUSE exits).
    fn set_disabled_exits(&mut self, _exits: u64) {}
    /// Finishes an exit [`VcpuArch::run`] returned as [`VmExit::Vendor`],
    /// with guest memory at hand (interrupts are on again): the exit the
    /// core handles next, never [`VmExit::Vendor`] again.
    fn complete_exit(&mut self, _mem: &dyn GuestMem) -> VmExit {
        VmExit::None
    }
    /// Nested virtualization: whether the vCPU runs a nested guest (L2)
    /// for its own hypervisor (L1). While it does, the register, segment
    /// and control-register accessors are L2's, and the event accessors
    /// ([`VcpuArch::interrupt_allowed`] and the others) answer for the
    /// events of L1 the core holds, which reach L1 through
    /// [`VcpuArch::nested_check_events`].
    fn guest_mode(&self) -> bool {
        false
    }
    /// Nested virtualization, before injection while L2 runs (upstream's
    /// check_nested_events()): an exception for L2 that L1 intercepts, or
    /// an NMI (`nmi`) or interrupt (`irq`) pending for L1 that L1
    /// intercepts and can take now, leaves L2 with that #VMEXIT to L1;
    /// the NMI or interrupt stays pending for L1.
    fn nested_check_events(&mut self, _nmi: bool, _irq: bool, _mem: &dyn GuestMem) {}
    /// KVM_GET_NESTED_STATE (only asked when
    /// [`ArchOps::nested_state_size`] is not 0): the header, and the data
    /// written to `data` (as long as that size less the 128-byte header);
    /// returns how many bytes of data there are.
    fn get_nested_state(&mut self, _hdr: &mut NestedStateHdr, _data: &mut [u8]) -> usize {
        0
    }
    /// KVM_SET_NESTED_STATE, the core having checked the generic flag
    /// rules; `data`: what follows the header, as much as `size` covers
    /// (at most [`ArchOps::nested_state_size`] less the header).
    fn set_nested_state(&mut self, _hdr: &NestedStateHdr, _data: &[u8]) -> Result {
        Err(EINVAL)
    }
}

struct Vendor {
    name: &'static CStr,
    ops: Arc<dyn ArchOps>,
    module: &'static ThisModule,
    /// Virtualization is enabled on all CPUs: VMs may be created.
    ready: bool,
}

/// Global state of kvm.ko, protected by [`KVM_LOCK`] (upstream's
/// `kvm_lock`, which guards the vendor state and `vm_list`).
pub(crate) struct Core {
    vendor: Option<Vendor>,
    /// Every VM's statistics (upstream's `vm_list`, for debugfs sums).
    vms: KVec<Arc<VmStatsTree>>,
    /// `/sys/kernel/debug/kvm`, while kvm.ko is loaded.
    debugfs: Option<Dir>,
}

kernel::sync::global_lock! {
    // SAFETY: initialised in kvm.ko's module init, before any other use.
    pub(crate) unsafe(uninit) static KVM_LOCK: Mutex<Core> = Core {
        vendor: None,
        vms: KVec::new(),
        debugfs: None,
    };
}

/// Enters a new VM's statistics in the global list.
pub(crate) fn vm_list_add(tree: Arc<VmStatsTree>) -> Result {
    KVM_LOCK.lock().vms.push(tree, GFP_KERNEL)?;
    Ok(())
}

/// Removes a VM's statistics from the global list. The last one frees
/// the list's buffer: a static is never dropped, so storage still held at
/// module exit would leak.
pub(crate) fn vm_list_remove(tree: &Arc<VmStatsTree>) {
    let mut core = KVM_LOCK.lock();
    core.vms.retain(|t| !Arc::ptr_eq(t, tree));
    if core.vms.is_empty() {
        core.vms = KVec::new();
    }
}

/// Module exit: no VM exists, so the list must be empty. A tree still
/// listed is one that a failed KVM_CREATE_VM did not take back: warn (the
/// fault-injection run fails on it) and free it, so the list's storage
/// does not outlive the module.
pub(crate) fn vm_list_check_empty() {
    let left = core::mem::take(&mut KVM_LOCK.lock().vms);
    kernel::warn_on!(!left.is_empty());
    drop(left);
}

/// Calls `f` on every VM's statistics, under [`KVM_LOCK`].
pub(crate) fn vm_list_for_each(mut f: impl FnMut(&VmStatsTree)) {
    for t in KVM_LOCK.lock().vms.iter() {
        f(t);
    }
}

/// Sets (module init) or drops (module exit) the debugfs directory.
pub(crate) fn set_debugfs_root(dir: Option<Dir>) {
    KVM_LOCK.lock().debugfs = dir;
}

/// The debugfs directory, if there is one.
pub(crate) fn debugfs_root() -> Option<Dir> {
    KVM_LOCK.lock().debugfs.clone()
}

/// A registered vendor backend. Dropping it disables virtualization on
/// every CPU and unregisters the backend.
pub struct Registration {
    cpus: Option<cpuhp::State<Hotplug>>,
}

/// Registers a vendor backend. Fails with `EBUSY` if one is registered.
pub fn register(
    name: &'static CStr,
    ops: Arc<dyn ArchOps>,
    module: &'static ThisModule,
) -> Result<Registration> {
    {
        let mut core = KVM_LOCK.lock();
        if let Some(v) = &core.vendor {
            pr_err!(
                "cannot register {}: {} is already registered\n",
                name,
                v.name
            );
            return Err(EBUSY);
        }
        core.vendor = Some(Vendor {
            name,
            ops,
            module,
            ready: false,
        });
    }
    // Not under KVM_LOCK: the hotplug callbacks take it on each CPU.
    match cpuhp::State::<Hotplug>::setup(c"kvm/x86:online") {
        Ok(cpus) => {
            if let Some(v) = KVM_LOCK.lock().vendor.as_mut() {
                v.ready = true;
            }
            Ok(Registration { cpus: Some(cpus) })
        }
        Err(e) => {
            pr_err!("{}: enabling virtualization failed: {:?}\n", name, e);
            KVM_LOCK.lock().vendor = None;
            Err(e)
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(v) = KVM_LOCK.lock().vendor.as_mut() {
            v.ready = false;
        }
        // Runs `disable_cpu` on every online CPU.
        drop(self.cpus.take());
        KVM_LOCK.lock().vendor = None;
    }
}

/// The registered backend (`ENODEV` if none).
pub(crate) fn registered_ops() -> Result<Arc<dyn ArchOps>> {
    KVM_LOCK
        .lock()
        .vendor
        .as_ref()
        .map(|v| v.ops.clone())
        .ok_or(ENODEV)
}

struct Hotplug;

impl cpuhp::Callbacks for Hotplug {
    fn online(cpu: u32) -> Result {
        registered_ops()?.enable_cpu(cpu)
    }

    fn offline(cpu: u32) {
        if let Ok(ops) = registered_ops() {
            ops.disable_cpu(cpu);
        }
    }
}

/// A VM's hold on the registered vendor backend; pins the vendor module.
pub(crate) struct VendorRef {
    ops: Arc<dyn ArchOps>,
    _module: ModuleRef,
}

impl VendorRef {
    /// The registered backend, or `ENODEV` when no vendor module is loaded.
    pub(crate) fn get() -> Result<Self> {
        let core = KVM_LOCK.lock();
        let v = core.vendor.as_ref().filter(|v| v.ready).ok_or(ENODEV)?;
        let module = ModuleRef::try_get(v.module).ok_or(ENODEV)?;
        Ok(Self {
            ops: v.ops.clone(),
            _module: module,
        })
    }

    /// The backend's operations.
    pub(crate) fn ops(&self) -> &dyn ArchOps {
        &*self.ops
    }
}
