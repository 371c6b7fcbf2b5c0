// SPDX-License-Identifier: GPL-2.0
//! Why a guest stopped, decoded by the vendor backend into terms the core
//! handles the same way for every vendor.

/// A port I/O exit (IN, OUT, INS, OUTS).
#[derive(Clone, Copy, Debug)]
pub struct IoExit {
    /// The port.
    pub port: u16,
    /// Bytes per element: 1, 2 or 4.
    pub size: u8,
    /// IN/INS.
    pub input: bool,
    /// INS/OUTS.
    pub string: bool,
    /// REP prefix.
    pub rep: bool,
    /// Address size of a string instruction, in bytes (2, 4 or 8).
    pub addr_size: u8,
    /// RIP of the next instruction (both vendors report the I/O
    /// instruction's length or end).
    pub next_rip: u64,
}

/// A decoded guest exit.
#[derive(Clone, Copy, Debug)]
pub enum VmExit {
    /// Handled by the vendor: enter again.
    None,
    /// A host interrupt arrived (taken when interrupts are enabled again
    /// after the exit): enter again.
    HostIrq,
    /// Port I/O.
    Io(IoExit),
    /// HLT.
    Hlt,
    /// CPUID.
    Cpuid,
    /// RDMSR (ECX) or WRMSR (ECX, EDX:EAX).
    Msr {
        /// WRMSR.
        write: bool,
    },
    /// The vendor's hypercall instruction.
    Hypercall,
    /// XSETBV.
    Xsetbv,
    /// RDTSCP (when the vendor intercepts it).
    Rdtscp,
    /// MONITOR, MWAIT (and MWAIT with a condition): NOPs.
    MonitorMwait,
    /// WBINVD or INVD.
    Wbinvd,
    /// INVLPG (decoded by the emulator).
    Invlpg,
    /// RDPMC.
    Rdpmc,
    /// A fault in the two-dimensional page tables (NPT/EPT) at `gpa`.
    TdpFault {
        /// Guest physical address.
        gpa: crate::defs::paging::Gpa,
        /// The access was a write.
        write: bool,
        /// Number of instruction bytes the hardware already fetched (0 if
        /// it does not report them).
        insn_len: u8,
        /// Those bytes.
        insn: [u8; 15],
    },
    /// A page fault of a guest running on shadow page tables.
    PageFault {
        /// The faulting linear address.
        addr: u64,
        /// The hardware's error code (`PFERR_*`).
        error_code: u32,
        /// Number of instruction bytes the hardware already fetched (0 if
        /// it does not report them).
        insn_len: u8,
        /// Those bytes.
        insn: [u8; 15],
    },
    /// The guest can take an interrupt now (interrupt window).
    InterruptWindow,
    /// Emulate the instruction at CS:RIP (e.g. an intercepted MOV DR).
    Emulate,
    /// Triple fault.
    Shutdown,
    /// An intercepted exception.
    Exception {
        /// Vector.
        vector: u8,
        /// Error code, if the exception has one.
        error_code: Option<u32>,
        /// Vector-specific information (DR6 for #DB).
        info: u64,
    },
    /// VM entry failed its consistency checks.
    FailEntry {
        /// Hardware reason code.
        reason: u64,
    },
    /// Guest memory the exit needs is not RAM (nested SVM: VMCB12 at an
    /// address without a memory slot): KVM_EXIT_INTERNAL_ERROR, suberror
    /// EMULATION, as upstream's kvm_handle_memory_failure().
    MemoryFailure,
    /// The vendor needs guest memory to handle this exit: the core calls
    /// [`crate::x86::vendor::VcpuArch::complete_exit`] and handles what
    /// it returns.
    Vendor,
    /// An exit the core does not know.
    Unknown {
        /// Hardware exit code.
        code: u64,
        /// Exit information.
        info1: u64,
        /// Exit information.
        info2: u64,
    },
}
