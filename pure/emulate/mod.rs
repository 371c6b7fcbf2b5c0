//! x86 instruction emulator (pure component, see DESIGN.md section 3).
//!
//! `core` only: no `kernel` crate, no allocation, no floating point, no
//! panics on any input (checked/wrapping arithmetic, no unchecked
//! indexing), bounded work per call. The same files are compiled into
//! `kvm.ko` and into the host test crate `tests/host/emulate`, so items
//! refer to each other through `super::` paths, and to the architectural
//! definitions (register bits, vectors, page geometry) through
//! `crate::defs`, a top-level module in both builds.
//!
//! # Interface with KVM
//!
//! KVM implements two traits and owns one [`Emulator`] per vCPU:
//!
//! * [`CpuState`]: the vCPU's architectural state (GPRs, RIP, RFLAGS,
//!   segment registers, descriptor tables, control/debug registers, EFER,
//!   XCR0, XMM/YMM/MMX registers, CPL) plus hooks for MSRs (also used for
//!   the TSC and TSC_AUX), CPUID, INVLPG, WBINVD, the interrupt shadow and
//!   pending x87 exceptions. Setters that can be refused (CR, DR, MSR)
//!   return [`Rejected`], which becomes #GP(0).
//! * [`GuestMemory`]: guest *physical* memory. Every access stays within one
//!   4 KiB page and is at most 16 bytes long. An access to a GPA that is not
//!   ordinary RAM fails with [`MemError::Mmio`]; the emulator then turns it
//!   into an MMIO request. [`GuestMemory::cmpxchg`] makes LOCKed
//!   read-modify-writes, XCHG, CMPXCHG8B/16B and accessed/dirty/busy bit
//!   updates atomic. The page-table walker in [`paging`] uses the same
//!   trait and has its own small API, so the MMU can reuse it.
//!
//! Instruction bytes come from the `prefetched` slice given to
//! [`Emulator::emulate`] (e.g. the up to 15 bytes of SVM decode assists,
//! which must start at the current RIP; pass `&[]` when there are none)
//! and, beyond its end, from guest memory at CS:RIP through segmentation
//! and the page-table walker (only as many bytes as the decoder needs, so
//! a fetch never faults on bytes past the instruction).
//!
//! [`Emulator::instruction_length`] fetches and decodes without executing,
//! for skipping intercepted instructions when the CPU reports no next RIP.
//!
//! # Protocol
//!
//! Call [`Emulator::emulate`] and act on the [`Outcome`]:
//!
//! * [`Outcome::Completed`]: the instruction retired (RIP advanced,
//!   RFLAGS.RF cleared). Handle RFLAGS.TF single-step if needed and resume
//!   the guest. [`Outcome::Halt`] is the same for HLT: the vCPU should halt.
//! * [`Outcome::Continue`]: the instruction made bounded progress but did
//!   not finish: a REP string instruction ran [`REP_BUDGET`] iterations
//!   (RCX/RSI/RDI updated, RIP still at the instruction), or an atomic
//!   update lost a race (nothing changed). Nothing is pending: check for
//!   signals and rescheduling, then call `emulate` again or re-enter the
//!   guest, which re-executes the instruction.
//! * [`Outcome::Mmio`]: one access of at most 8 bytes to a non-RAM GPA,
//!   exactly what `kvm_run.mmio` carries. For a **read**, nothing has been
//!   committed yet: perform the read (in-kernel device or
//!   `KVM_EXIT_MMIO`), pass the data to [`Emulator::complete_mmio_read`],
//!   then call `emulate` again: the emulator re-executes the same decoded
//!   instruction (no re-fetch), serving MMIO reads from the data supplied
//!   so far (upstream's read cache), so an instruction with several MMIO
//!   reads (e.g. 16-byte SSE or 32-byte AVX loads, CMPS) takes several
//!   round trips. For a **write**, the instruction has already retired
//!   architecturally (like upstream, MMIO writes are posted); perform the
//!   write, then call `emulate` again, which delivers further write
//!   fragments (an access crossing a page or larger than 8 bytes is split)
//!   and finally returns the instruction's own outcome. REP MOVS/STOS to MMIO produce one
//!   element per exit; after the element's write the next `emulate` call
//!   continues the REP loop with the cached instruction (but see
//!   [`Emulator::yield_after_output`] and [`REP_YIELD`]).
//! * [`Outcome::Pio`]: a port access. For OUT/OUTS the instruction (or the
//!   current REP OUTS element) has retired; the bytes to send are
//!   [`Emulator::pio_out_data`] (`size * count` bytes, i.e. what
//!   `kvm_run.io` with `count` expects at `data_offset`). For IN/INS
//!   nothing is committed: obtain `size * count` bytes, pass them to
//!   [`Emulator::complete_pio_in`] (or fill them in place with
//!   [`Emulator::complete_pio_in_with`]) and call `emulate` again. As
//!   upstream (`em_out`, `pio_in_emulated`), OUTS sends one element per
//!   request (`count` 1), and REP INS reads ahead
//!   `n = max(1, min(in_page, PIO_BATCH_BYTES / size, RCX))` elements
//!   per request, where `in_page` is in *bytes* from RDI to its page
//!   boundary in the direction of travel (`PAGE_SIZE - offset` for DF=0,
//!   `offset` for DF=1; RDI's page, not the linear address's) and RCX is
//!   masked to the address size and truncated to 32 bits; so a batch of
//!   words or dwords may cross into the next page. With DF=0 the batch is
//!   written as one block, with DF=1 element by element downwards. Before
//!   the access the port is checked against IOPL and the TSS I/O bitmap,
//!   and (unlike upstream, which does the I/O first) every destination
//!   element of an INS batch is checked for segment and page faults, so a
//!   fault never loses data read from the port. A REP INS batch ends in
//!   [`Outcome::Continue`] (after any MMIO writes of it): the guest runs
//!   again and re-executes the instruction, as upstream once its
//!   read-ahead buffer is empty. REP OUTS goes on with the next element
//!   on the next call, except after every [`REP_YIELD`]-th element (as
//!   REP MOVS/STOS to MMIO), which ends in [`Outcome::Continue`], and
//!   after [`Emulator::yield_after_output`] (the output went to
//!   userspace, after which upstream lets the guest re-execute it).
//! * [`Outcome::Exception`]: inject the exception (for #PF, set CR2 to
//!   `cr2`). RIP was not advanced; completed REP iterations stay done, as
//!   on hardware.
//! * [`Outcome::Unhandleable`]: report `KVM_EXIT_INTERNAL_ERROR` /
//!   `KVM_INTERNAL_ERROR_EMULATION` with the instruction bytes fetched so
//!   far. Nothing was committed.
//!
//! While [`Emulator::is_pending`] is true the vCPU must not re-enter the
//! guest before calling `emulate` again (KVM_RUN does that first thing on
//! re-entry after a userspace exit: copy `kvm_run.mmio.data` or the I/O
//! data in, then loop on `emulate`). In-kernel devices (LAPIC, IOAPIC,
//! PIT, ...) are served the same way without leaving the kernel.
//! [`Emulator::reset`] drops any pending state (vCPU reset, KVM_SET_REGS
//! while an exit is pending, or when KVM decides to inject something
//! instead).
//!
//! # Semantics notes
//!
//! * Near branches in 64-bit mode ignore the operand-size prefix (Intel
//!   behaviour, like upstream KVM and iced-x86's default).
//! * INT n/INT3/INTO and IRET are emulated in real mode only; in other
//!   modes they are [`Outcome::Unhandleable`] (KVM injects events itself).
//!   Far JMP/CALL/RET load code segments at the same privilege level;
//!   gates, task switches and returns to an outer level are unhandleable.
//! * Flags the SDM leaves undefined get deterministic values (the tests
//!   mask them when comparing with hardware).
//! * Vector moves are exactly those upstream emulates: the 16-byte SSE
//!   moves of `sse.rs` (no MOVSS/MOVSD, no MOVD/MOVQ of 0F 6E/7E/D6:
//!   those are N in upstream's tables, so an MMIO access by them is an
//!   emulation failure there too), MMX MOVQ (0F 6F/7F) and the VEX moves
//!   of `vex.rs`.
//! * Not emulated (unhandleable): x87, other MMX and VEX instructions,
//!   EVEX/XOP, SSE arithmetic, SYSCALL/SYSENTER family, SWAPGS,
//!   LAR/LSL/VERR/VERW/ARPL, BCD adjustments, POPCNT/LZCNT/TZCNT,
//!   fences/CLFLUSH, RDRAND/RDSEED/RDPID.

mod access;
mod alu;
mod avx;
mod bitops;
mod branch;
mod datamov;
pub mod decode;
mod exec;
mod fetch;
mod flags;
pub mod insn;
mod io;
mod mmx;
mod muldiv;
mod onebyte;
pub mod paging;
pub mod regs;
mod segload;
mod segment;
mod shift;
mod sse;
mod stack;
mod string;
mod system;
mod twobyte;
mod vex;

pub use regs::SegReg;

use crate::defs::paging::MAX_PHYS_ADDR_BITS;
use crate::defs::vector::{GP_VECTOR, PF_VECTOR, SS_VECTOR, UD_VECTOR};

/// A segment register with its hidden part, like `struct kvm_segment`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Base address.
    pub base: u64,
    /// Byte-granular limit (already scaled by G).
    pub limit: u32,
    /// Visible selector.
    pub selector: u16,
    /// 4-bit descriptor type.
    pub type_: u8,
    /// S bit: 1 = code/data, 0 = system.
    pub s: bool,
    /// Descriptor privilege level.
    pub dpl: u8,
    /// Present.
    pub present: bool,
    /// Available-for-software bit.
    pub avl: bool,
    /// 64-bit code segment.
    pub l: bool,
    /// Default operation size (D/B): 32-bit when set.
    pub db: bool,
    /// Granularity.
    pub g: bool,
    /// Unusable (null selector loaded in protected mode).
    pub unusable: bool,
}

/// GDTR/IDTR contents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DescTable {
    /// Linear base address.
    pub base: u64,
    /// Limit in bytes minus one.
    pub limit: u16,
}

/// Control registers the emulator reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cr {
    /// CR0.
    Cr0,
    /// CR2 (page-fault linear address).
    Cr2,
    /// CR3.
    Cr3,
    /// CR4.
    Cr4,
    /// CR8 (task priority).
    Cr8,
}

/// Kind of interrupt shadow an instruction establishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterruptShadow {
    /// Blocking by STI (IF went from 0 to 1).
    Sti,
    /// Blocking by MOV SS / POP SS.
    MovSs,
}

/// Error of a rejected register or MSR write: the emulator raises #GP(0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected;

/// The vCPU state the emulator works on. Implemented by KVM over its
/// cached register file (and the VMCB/VMCS); implemented over a plain
/// struct by the host tests.
///
/// Setters are only called with values the instruction architecturally
/// produces; validation that depends on the virtual CPU model (reserved
/// CR/MSR bits, CPUID-dependent features) is the implementor's job and is
/// reported with [`Rejected`] (-> #GP(0)). Setting CR0/CR3/CR4 must also do
/// whatever the MMU needs (reload, TLB flush).
pub trait CpuState {
    /// Read a GPR (index 0..=15, see [`crate::defs::regs`]); the full 64-bit value.
    fn gpr(&self, reg: regs::Gpr) -> u64;
    /// Write a full 64-bit GPR.
    fn set_gpr(&mut self, reg: regs::Gpr, val: u64);
    /// Current RIP.
    fn rip(&self) -> u64;
    /// Set RIP.
    fn set_rip(&mut self, val: u64);
    /// Current RFLAGS.
    fn rflags(&self) -> u64;
    /// Set RFLAGS (the emulator keeps bit 1 set and reserved bits clear).
    fn set_rflags(&mut self, val: u64);
    /// Read a segment register (including LDTR and TR).
    fn segment(&self, seg: SegReg) -> Segment;
    /// Write a segment register (including LDTR and TR).
    fn set_segment(&mut self, seg: SegReg, val: Segment);
    /// GDTR.
    fn gdtr(&self) -> DescTable;
    /// Set GDTR.
    fn set_gdtr(&mut self, val: DescTable);
    /// IDTR.
    fn idtr(&self) -> DescTable;
    /// Set IDTR.
    fn set_idtr(&mut self, val: DescTable);
    /// Current privilege level (0..=3).
    fn cpl(&self) -> u8;
    /// Read a control register.
    fn cr(&self, cr: Cr) -> u64;
    /// Write a control register (MOV to CR, LMSW, CLTS); `Err` -> #GP(0).
    fn set_cr(&mut self, cr: Cr, val: u64) -> Result<(), Rejected>;
    /// EFER (the emulator reads LMA/NXE from it).
    fn efer(&self) -> u64;
    /// Read DR0-DR7 (`n` is 0..=7; 4/5 are aliased to 6/7 by the emulator).
    fn dr(&self, n: u8) -> u64;
    /// Write DR0-DR7; `Err` -> #GP(0).
    fn set_dr(&mut self, n: u8, val: u64) -> Result<(), Rejected>;
    /// RDMSR (also used for the TSC and TSC_AUX); `Err` -> #GP(0).
    fn read_msr(&mut self, index: u32) -> Result<u64, Rejected>;
    /// WRMSR; `Err` -> #GP(0).
    fn write_msr(&mut self, index: u32, val: u64) -> Result<(), Rejected>;
    /// CPUID for the guest: returns `[eax, ebx, ecx, edx]`.
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// Read XMM register `n` (0..=15).
    fn xmm(&self, n: u8) -> u128;
    /// Write XMM register `n` (0..=15), leaving bits 255:128 of the YMM
    /// register alone (legacy SSE semantics).
    fn set_xmm(&mut self, n: u8, val: u128);
    /// Read YMM register `n` (0..=15), little-endian; bytes 0..16 are XMM
    /// register `n`. Only called when CR4.OSXSAVE and XCR0.YMM are set.
    fn ymm(&self, n: u8) -> [u8; 32];
    /// Write all 256 bits of YMM register `n` (0..=15).
    fn set_ymm(&mut self, n: u8, val: [u8; 32]);
    /// Read MMX register `n` (0..=7). Only called after
    /// [`CpuState::x87_exception_pending`] returned false.
    fn mmx(&mut self, n: u8) -> u64;
    /// Write MMX register `n` (0..=7), with the x87 side effects of an MMX
    /// instruction (TOP = 0, all tags valid).
    fn set_mmx(&mut self, n: u8, val: u64);
    /// Whether the guest's x87 state holds a pending unmasked exception,
    /// which an MMX instruction delivers as #MF (what FWAIT checks).
    fn x87_exception_pending(&mut self) -> bool;
    /// The guest's XCR0 (VEX instructions need XCR0.YMM).
    fn xcr0(&self) -> u64;
    /// INVLPG of a linear address: flush the guest TLB entry.
    fn invlpg(&mut self, linear: u64);
    /// WBINVD/INVD executed by the guest.
    fn wbinvd(&mut self);
    /// The instruction establishes an interrupt shadow.
    fn set_interrupt_shadow(&mut self, kind: InterruptShadow);
    /// Maximum physical address width (CPUID 0x80000008 `EAX[7:0]`), for
    /// reserved-bit checks in the page-table walker.
    fn maxphyaddr(&self) -> u8 {
        MAX_PHYS_ADDR_BITS
    }
    /// Whether 1 GiB pages are supported (CPUID 0x80000001 EDX.Page1GB).
    fn has_1g_pages(&self) -> bool {
        true
    }
}

/// Error of a guest-physical access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemError {
    /// The GPA is not RAM backed by a memslot (or is a read-only slot being
    /// written): the access must become an MMIO exit.
    Mmio,
}

/// Guest physical memory. Accesses never cross a 4 KiB page boundary and
/// are at most 16 bytes long.
pub trait GuestMemory {
    /// Read `buf.len()` bytes at `gpa`.
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError>;
    /// Write `data` at `gpa` (and mark the page dirty).
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError>;
    /// Atomically replace `old` by `new` at `gpa` (both have the same
    /// length: 1, 2, 4, 8 or 16 bytes, naturally aligned or not). Returns
    /// `Ok(true)` if the exchange happened, `Ok(false)` if memory did not
    /// contain `old`.
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError>;
}

/// An exception to inject into the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    /// Vector (see [`crate::defs::vector`]).
    pub vector: u8,
    /// Error code, for vectors that push one.
    pub error_code: Option<u32>,
    /// Faulting linear address for #PF (to load into CR2).
    pub cr2: u64,
}

impl Exception {
    /// Exception without error code.
    pub const fn new(vector: u8) -> Self {
        Exception {
            vector,
            error_code: None,
            cr2: 0,
        }
    }
    /// Exception with error code.
    pub const fn with_code(vector: u8, code: u32) -> Self {
        Exception {
            vector,
            error_code: Some(code),
            cr2: 0,
        }
    }
    /// #UD.
    pub const fn ud() -> Self {
        Self::new(UD_VECTOR)
    }
    /// #GP with error code.
    pub const fn gp(code: u32) -> Self {
        Self::with_code(GP_VECTOR, code)
    }
    /// #SS with error code.
    pub const fn ss(code: u32) -> Self {
        Self::with_code(SS_VECTOR, code)
    }
    /// #PF at `cr2` with error code.
    pub const fn pf(cr2: u64, code: u32) -> Self {
        Exception {
            vector: PF_VECTOR,
            error_code: Some(code),
            cr2,
        }
    }
}

/// Maximum bytes of one MMIO exit (the size of `kvm_run.mmio.data`).
pub const MMIO_MAX: usize = 8;

/// One MMIO access for the caller to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioRequest {
    /// Guest physical address.
    pub gpa: u64,
    /// Length in bytes (1..=8).
    pub len: u8,
    /// Write (data valid) or read (data to be supplied).
    pub is_write: bool,
    /// Data of a write, first `len` bytes valid.
    pub data: [u8; MMIO_MAX],
}

/// Maximum bytes of one REP INS read-ahead batch: upstream's
/// `sizeof(read_cache.data)` (OUTS sends one element per request).
pub const PIO_BATCH_BYTES: usize = 1024;

/// One port-I/O request for the caller to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PioRequest {
    /// Port number.
    pub port: u16,
    /// Element size: 1, 2 or 4.
    pub size: u8,
    /// Number of elements: 1 for IN/OUT/OUTS and INS without REP; for
    /// REP INS the read-ahead batch (see the module documentation).
    pub count: u32,
    /// IN/INS (data to be supplied) or OUT/OUTS (data in `pio_out_data`).
    pub is_in: bool,
}

/// Result of [`Emulator::emulate`]; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Instruction retired.
    Completed,
    /// HLT retired: halt the vCPU.
    Halt,
    /// REP string instruction partially done; no pending state.
    Continue,
    /// MMIO access to perform, then call `emulate` again.
    Mmio(MmioRequest),
    /// Port I/O to perform, then call `emulate` again.
    Pio(PioRequest),
    /// Exception to inject.
    Exception(Exception),
    /// Cannot emulate: report an internal error with these bytes.
    Unhandleable {
        /// Instruction bytes fetched so far.
        bytes: [u8; regs::MAX_INSN_LEN],
        /// Number of valid bytes.
        len: u8,
    },
}

/// Iterations of a REP string instruction per `emulate` call.
pub const REP_BUDGET: u64 = 256;

/// REP iterations between returns to the guest when every iteration
/// produces output (REP OUTS, REP MOVS/STOS to MMIO): the element after
/// which RCX is a multiple of this ends in [`Outcome::Continue`], as
/// upstream re-enters the guest when `RCX & 0x3ff == 0`.
pub const REP_YIELD: u64 = 1024;

/// Per-vCPU emulator context: the decoded instruction and any pending
/// MMIO/PIO state across exits. Fixed size, no allocation.
pub struct Emulator {
    st: exec::EmuState,
}

impl Default for Emulator {
    fn default() -> Self {
        Self::new()
    }
}

impl Emulator {
    /// A fresh context with nothing pending.
    pub const fn new() -> Self {
        Emulator {
            st: exec::EmuState::new(),
        }
    }

    /// Emulate (or resume) one instruction at CS:RIP. `prefetched` holds
    /// instruction bytes starting at RIP if the hardware supplied them
    /// (may be empty); it is ignored when resuming a pending instruction.
    pub fn emulate<C: CpuState, M: GuestMemory>(
        &mut self,
        cpu: &mut C,
        mem: &mut M,
        prefetched: &[u8],
    ) -> Outcome {
        exec::emulate(&mut self.st, cpu, mem, prefetched)
    }

    /// Length of the instruction at CS:RIP, fetched and decoded like
    /// `emulate` does but not executed. For skipping an intercepted
    /// instruction when the hardware reports no next RIP (SVM without
    /// NRIP save, e.g. under QEMU TCG). Decoding errors come back as the
    /// outcome `emulate` would return (#UD, #GP, #PF, unhandleable).
    pub fn instruction_length<C: CpuState, M: GuestMemory>(
        cpu: &C,
        mem: &mut M,
        prefetched: &[u8],
    ) -> Result<u8, Outcome> {
        exec::decode_at(cpu, mem, prefetched).map(|i| i.len)
    }

    /// Supply the data of the MMIO read returned by the last `emulate`.
    pub fn complete_mmio_read(&mut self, data: &[u8]) {
        self.st.complete_mmio_read(data)
    }

    /// Supply the `size * count` bytes of the IN/INS returned by the last
    /// `emulate`.
    pub fn complete_pio_in(&mut self, data: &[u8]) {
        self.st.complete_pio_in(data)
    }

    /// Supply the data of the IN/INS returned by the last `emulate` in
    /// place: `fill` gets the `size * count` bytes of the emulator's buffer
    /// to write and returns whether it did. Returns false (nothing
    /// supplied) if no IN is pending or `fill` failed. Saves the caller a
    /// buffer of up to [`PIO_BATCH_BYTES`] on its stack.
    pub fn complete_pio_in_with(&mut self, fill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        self.st.complete_pio_in_with(fill)
    }

    /// The output (OUT/OUTS, MMIO write) the last `emulate` returned went
    /// to userspace: a REP instruction it belongs to does not go on in the
    /// next `emulate` call, which (after any further MMIO write fragments
    /// of the same iteration) returns [`Outcome::Continue`] so the guest
    /// re-executes it, as upstream does after such an exit. Harmless
    /// otherwise.
    pub fn yield_after_output(&mut self) {
        self.st.yield_after_output()
    }

    /// Bytes to send for the OUT/OUTS returned by the last `emulate`.
    pub fn pio_out_data(&self) -> &[u8] {
        self.st.pio_out_data()
    }

    /// Whether an instruction is pending and `emulate` must be called
    /// before the guest runs again.
    pub fn is_pending(&self) -> bool {
        self.st.is_pending()
    }

    /// Drop all pending state (in place: the context holds a 1 KiB
    /// buffer that is not copied).
    pub fn reset(&mut self) {
        self.st.reset();
    }
}
