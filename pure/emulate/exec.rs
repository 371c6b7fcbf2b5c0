//! Emulation driver: pending-state machine across MMIO/PIO exits, the
//! per-instruction execution context and the opcode dispatch.

use super::decode::{self, DecodeError};
use super::fetch::CodeFetcher;
use super::insn::{Insn, Op};
use super::paging::PagingConfig;
use super::segment::{self, CpuMode};
use super::{
    CpuState, Exception, GuestMemory, MmioRequest, Outcome, PioRequest, MMIO_MAX, PIO_BATCH_BYTES,
};
use crate::defs::regs::X86_EFLAGS_RF;

/// Why execution of an instruction stopped before retiring it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Raise an exception.
    Fault(Exception),
    /// Need the data of an MMIO read; nothing committed since the last
    /// commit point.
    MmioRead(MmioRequest),
    /// Need the data of an IN/INS.
    PioIn(PioRequest),
    /// Cannot emulate.
    Unhandleable,
    /// An atomic update lost a race: re-execute later.
    Retry,
}

impl From<Exception> for Stop {
    fn from(e: Exception) -> Stop {
        Stop::Fault(e)
    }
}

/// Result type of execution steps.
pub(super) type Res<T> = Result<T, Stop>;

/// How an instruction finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Done {
    /// Retired.
    Completed,
    /// HLT retired.
    Halt,
    /// REP made progress, not finished: after delivering what the step
    /// produced (an OUT, MMIO writes) go on with the next iteration.
    Continue,
    /// REP made progress, not finished: after delivering what the step
    /// produced, report [`Outcome::Continue`] so the guest runs again and
    /// re-executes the instruction. After each REP INS batch (upstream
    /// re-enters the guest once its read-ahead buffer is empty), after
    /// every [`super::REP_YIELD`]-th element with output (upstream: when
    /// `RCX & 0x3ff == 0`), and after output that went to userspace.
    Yield,
}

/// Maximum MMIO read fragments one instruction may need.
const RC_ENTRIES: usize = 8;
/// Maximum MMIO write fragments one instruction may produce.
const WQ_ENTRIES: usize = 8;

/// MMIO read data supplied so far for the current instruction.
#[derive(Clone, Copy)]
pub(super) struct ReadCache {
    ent: [(u64, u8, [u8; MMIO_MAX]); RC_ENTRIES],
    n: usize,
    pos: usize,
    /// The read last requested from the caller.
    want: Option<(u64, u8)>,
}

impl ReadCache {
    const fn new() -> Self {
        ReadCache {
            ent: [(0, 0, [0; MMIO_MAX]); RC_ENTRIES],
            n: 0,
            pos: 0,
            want: None,
        }
    }

    /// Serve the next MMIO read in order, or ask for it.
    pub(super) fn read(&mut self, gpa: u64, out: &mut [u8]) -> Res<()> {
        let len = out.len() as u8;
        if self.pos < self.n {
            if let Some((g, l, d)) = self.ent.get(self.pos) {
                if *g == gpa && *l == len {
                    out.copy_from_slice(d.get(..out.len()).ok_or(Stop::Unhandleable)?);
                    self.pos += 1;
                    return Ok(());
                }
            }
            // The re-execution diverged: start over.
            self.n = 0;
            self.pos = 0;
        }
        if self.n >= RC_ENTRIES {
            return Err(Stop::Unhandleable);
        }
        self.want = Some((gpa, len));
        Err(Stop::MmioRead(MmioRequest {
            gpa,
            len,
            is_write: false,
            data: [0; MMIO_MAX],
        }))
    }

    fn supply(&mut self, data: &[u8]) {
        if let Some((gpa, len)) = self.want.take() {
            let mut d = [0u8; MMIO_MAX];
            for (i, b) in d.iter_mut().enumerate().take(usize::from(len)) {
                *b = data.get(i).copied().unwrap_or(0);
            }
            if let Some(e) = self.ent.get_mut(self.n) {
                *e = (gpa, len, d);
                self.n += 1;
            }
        }
    }

    fn clear(&mut self) {
        self.n = 0;
        self.pos = 0;
        self.want = None;
    }

    /// Commit point: the data read so far has been consumed for good.
    pub(super) fn commit(&mut self) {
        self.clear();
    }
}

/// Maximum runs of an INS batch image that land in MMIO (two contiguous
/// ranges of at most two pages each).
const BF_ENTRIES: usize = 4;

/// A run of the INS batch image in [`PioState::buf`] that lands in MMIO:
/// `len` bytes from `off` to `gpa` (upstream's `mmio_fragments`), delivered
/// [`MMIO_MAX`] bytes per request.
#[derive(Clone, Copy)]
struct BufFrag {
    gpa: u64,
    off: usize,
    len: usize,
}

/// MMIO writes of the current instruction, delivered after it retires:
/// fragments with their data, then runs of the PIO buffer.
#[derive(Clone, Copy)]
pub(super) struct WriteQueue {
    ent: [MmioRequest; WQ_ENTRIES],
    n: usize,
    pos: usize,
    bf: [BufFrag; BF_ENTRIES],
    nbf: usize,
    bpos: usize,
    /// Bytes of `bf[bpos]` already delivered.
    bdone: usize,
}

impl WriteQueue {
    const fn new() -> Self {
        WriteQueue {
            ent: [MmioRequest {
                gpa: 0,
                len: 0,
                is_write: true,
                data: [0; MMIO_MAX],
            }; WQ_ENTRIES],
            n: 0,
            pos: 0,
            bf: [BufFrag {
                gpa: 0,
                off: 0,
                len: 0,
            }; BF_ENTRIES],
            nbf: 0,
            bpos: 0,
            bdone: 0,
        }
    }

    /// Whether `k` more fragments fit.
    pub(super) fn room(&self, k: usize) -> bool {
        self.n.saturating_add(k) <= WQ_ENTRIES
    }

    /// Queue one fragment (`data.len() <= 8`).
    pub(super) fn push(&mut self, gpa: u64, data: &[u8]) -> Res<()> {
        let e = self.ent.get_mut(self.n).ok_or(Stop::Unhandleable)?;
        let mut d = [0u8; MMIO_MAX];
        d.get_mut(..data.len())
            .ok_or(Stop::Unhandleable)?
            .copy_from_slice(data);
        *e = MmioRequest {
            gpa,
            len: data.len() as u8,
            is_write: true,
            data: d,
        };
        self.n += 1;
        Ok(())
    }

    /// Queue `len` bytes of the PIO buffer at `off` for `gpa`, merged with
    /// the previous run when both continue it.
    pub(super) fn push_buf(&mut self, gpa: u64, off: usize, len: usize) -> Res<()> {
        if let Some(last) = self.nbf.checked_sub(1).and_then(|k| self.bf.get_mut(k)) {
            if last.gpa.wrapping_add(last.len as u64) == gpa && last.off + last.len == off {
                last.len += len;
                return Ok(());
            }
        }
        let e = self.bf.get_mut(self.nbf).ok_or(Stop::Unhandleable)?;
        *e = BufFrag { gpa, off, len };
        self.nbf += 1;
        Ok(())
    }

    /// The next write to deliver; `buf` is the PIO buffer the runs refer to.
    fn pop(&mut self, buf: &[u8]) -> Option<MmioRequest> {
        if self.pos < self.n {
            let r = self.ent.get(self.pos).copied();
            self.pos += 1;
            return r;
        }
        while let Some(f) = self.bf.get(self.bpos).filter(|_| self.bpos < self.nbf) {
            if self.bdone < f.len {
                let m = (f.len - self.bdone).min(MMIO_MAX);
                let start = f.off + self.bdone;
                let mut data = [0u8; MMIO_MAX];
                if let (Some(d), Some(s)) = (data.get_mut(..m), buf.get(start..start + m)) {
                    d.copy_from_slice(s);
                }
                let gpa = f.gpa.wrapping_add(self.bdone as u64);
                self.bdone += m;
                return Some(MmioRequest {
                    gpa,
                    len: m as u8,
                    is_write: true,
                    data,
                });
            }
            self.bpos += 1;
            self.bdone = 0;
        }
        self.clear();
        None
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.n && self.bpos >= self.nbf
    }

    fn clear(&mut self) {
        self.n = 0;
        self.pos = 0;
        self.nbf = 0;
        self.bpos = 0;
        self.bdone = 0;
    }
}

/// Port I/O state.
#[derive(Clone, Copy)]
pub(super) struct PioState {
    /// Bytes of an OUT to send, or of an IN supplied by the caller (for
    /// INS, the read-ahead batch; after it is consumed, the memory image
    /// that was written, which queued MMIO runs refer to).
    pub(super) buf: [u8; PIO_BATCH_BYTES],
    /// Valid bytes in `buf`.
    pub(super) len: usize,
    /// Request of a pending IN, or the OUT just retired.
    pub(super) req: Option<PioRequest>,
    /// IN data supplied for `req`.
    pub(super) in_ready: bool,
    /// An OUT was produced by the current execution.
    pub(super) out: bool,
}

impl PioState {
    const fn new() -> Self {
        PioState {
            buf: [0; PIO_BATCH_BYTES],
            len: 0,
            req: None,
            in_ready: false,
            out: false,
        }
    }

    /// Nothing pending; the buffer's stale bytes are never read (`len`).
    fn clear(&mut self) {
        self.len = 0;
        self.req = None;
        self.in_ready = false;
        self.out = false;
    }
}

/// I/O state shared by all execution steps of one instruction.
#[derive(Clone, Copy)]
pub(super) struct IoState {
    pub(super) rc: ReadCache,
    pub(super) wq: WriteQueue,
    pub(super) pio: PioState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// Re-execute the cached instruction (MMIO read or PIO in supplied).
    Reexec,
    /// Deliver queued MMIO writes / the OUT, then report this.
    Drain(Done),
}

/// Emulator state kept across calls (lives in [`super::Emulator`]).
pub(super) struct EmuState {
    pending: Pending,
    insn: Insn,
    io: IoState,
}

impl EmuState {
    /// Nothing pending.
    pub(super) const fn new() -> Self {
        EmuState {
            pending: Pending::None,
            insn: Insn::empty(),
            io: IoState {
                rc: ReadCache::new(),
                wq: WriteQueue::new(),
                pio: PioState::new(),
            },
        }
    }

    /// Drop all pending state in place (no copy of the buffers).
    pub(super) fn reset(&mut self) {
        self.pending = Pending::None;
        self.io.rc.clear();
        self.io.wq.clear();
        self.io.pio.clear();
    }

    pub(super) fn complete_mmio_read(&mut self, data: &[u8]) {
        self.io.rc.supply(data);
    }

    pub(super) fn complete_pio_in(&mut self, data: &[u8]) {
        let n = data.len().min(PIO_BATCH_BYTES);
        if let (Some(dst), Some(src)) = (self.io.pio.buf.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.io.pio.len = n;
        self.io.pio.in_ready = true;
    }

    pub(super) fn complete_pio_in_with(&mut self, fill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        let Some(req) = self.io.pio.req.filter(|r| r.is_in) else {
            return false;
        };
        let n = usize::from(req.size) * req.count as usize;
        let Some(buf) = self.io.pio.buf.get_mut(..n) else {
            return false;
        };
        if !fill(buf) {
            return false;
        }
        self.io.pio.len = n;
        self.io.pio.in_ready = true;
        true
    }

    pub(super) fn yield_after_output(&mut self) {
        if self.pending == Pending::Drain(Done::Continue) {
            self.pending = Pending::Drain(Done::Yield);
        }
    }

    pub(super) fn pio_out_data(&self) -> &[u8] {
        self.io.pio.buf.get(..self.io.pio.len).unwrap_or(&[])
    }

    pub(super) fn is_pending(&self) -> bool {
        self.pending != Pending::None
    }
}

/// Entry point behind [`super::Emulator::emulate`].
pub(super) fn emulate<C: CpuState, M: GuestMemory>(
    st: &mut EmuState,
    cpu: &mut C,
    mem: &mut M,
    prefetched: &[u8],
) -> Outcome {
    match st.pending {
        Pending::Drain(done) => {
            if let Some(w) = st.io.wq.pop(&st.io.pio.buf) {
                return Outcome::Mmio(w);
            }
            st.pending = Pending::None;
            st.io.pio.out = false;
            match done {
                // Keep going with the same decoded REP instruction.
                Done::Continue => return run(st, cpu, mem),
                Done::Yield => return Outcome::Continue,
                Done::Completed => return Outcome::Completed,
                Done::Halt => return Outcome::Halt,
            }
        }
        Pending::Reexec => return run(st, cpu, mem),
        Pending::None => {}
    }
    st.io.rc.clear();
    st.io.wq.clear();
    st.io.pio.clear();
    match decode_at(cpu, mem, prefetched) {
        Ok(insn) => {
            st.insn = insn;
            run(st, cpu, mem)
        }
        Err(o) => o,
    }
}

/// Fetch and decode the instruction at CS:RIP without executing it.
pub(super) fn decode_at<C: CpuState, M: GuestMemory>(
    cpu: &C,
    mem: &mut M,
    prefetched: &[u8],
) -> Result<Insn, Outcome> {
    let mode = CpuMode::of(cpu);
    let code = segment::code_size(cpu, mode);
    let mut f = CodeFetcher::new(cpu, mem, mode, prefetched);
    let r = decode::decode(&mut f, code);
    let (bytes, nbytes) = f.bytes();
    r.map_err(|e| match e {
        DecodeError::Invalid => Outcome::Exception(Exception::ud()),
        DecodeError::TooLong => Outcome::Exception(Exception::gp(0)),
        DecodeError::Fetch(Stop::Fault(e)) => Outcome::Exception(e),
        DecodeError::Unsupported | DecodeError::Fetch(_) => {
            Outcome::Unhandleable { bytes, len: nbytes }
        }
    })
}

fn unhandleable(insn: &Insn) -> Outcome {
    Outcome::Unhandleable {
        bytes: insn.bytes,
        len: insn.len,
    }
}

/// Execute the cached instruction and turn the result into an outcome.
fn run<C: CpuState, M: GuestMemory>(st: &mut EmuState, cpu: &mut C, mem: &mut M) -> Outcome {
    st.io.rc.pos = 0;
    st.io.wq.clear();
    st.io.pio.out = false;
    let insn = st.insn;
    let r = {
        let mut cx = Ctx::new(cpu, mem, &mut st.io, &insn);
        cx.execute()
    };
    match r {
        Ok(done) => {
            st.io.rc.clear();
            if st.io.pio.in_ready {
                st.io.pio.in_ready = false;
                st.io.pio.req = None;
            }
            let out = st.io.pio.out;
            if out || !st.io.wq.is_empty() {
                st.pending = Pending::Drain(done);
                if out {
                    if let Some(req) = st.io.pio.req {
                        return Outcome::Pio(req);
                    }
                }
                return match st.io.wq.pop(&st.io.pio.buf) {
                    Some(w) => Outcome::Mmio(w),
                    None => {
                        st.pending = Pending::None;
                        done_outcome(done)
                    }
                };
            }
            st.pending = Pending::None;
            done_outcome(done)
        }
        Err(stop) => {
            st.io.wq.clear();
            match stop {
                Stop::MmioRead(req) => {
                    st.pending = Pending::Reexec;
                    Outcome::Mmio(req)
                }
                Stop::PioIn(req) => {
                    st.pending = Pending::Reexec;
                    st.io.pio.req = Some(req);
                    st.io.pio.in_ready = false;
                    Outcome::Pio(req)
                }
                Stop::Fault(e) => {
                    st.pending = Pending::None;
                    st.io.rc.clear();
                    Outcome::Exception(e)
                }
                Stop::Retry => {
                    st.pending = Pending::None;
                    st.io.rc.clear();
                    Outcome::Continue
                }
                Stop::Unhandleable => {
                    st.pending = Pending::None;
                    st.io.rc.clear();
                    unhandleable(&insn)
                }
            }
        }
    }
}

fn done_outcome(d: Done) -> Outcome {
    match d {
        Done::Completed => Outcome::Completed,
        Done::Halt => Outcome::Halt,
        Done::Continue | Done::Yield => Outcome::Continue,
    }
}

/// Execution context of one instruction.
pub(super) struct Ctx<'a, C: CpuState, M: GuestMemory> {
    pub(super) cpu: &'a mut C,
    pub(super) mem: &'a mut M,
    pub(super) io: &'a mut IoState,
    pub(super) insn: &'a Insn,
    pub(super) mode: CpuMode,
    pub(super) cpl: u8,
    pub(super) paging: PagingConfig,
    /// RIP of the next instruction (before masking to the operand size).
    pub(super) next_rip: u64,
}

impl<'a, C: CpuState, M: GuestMemory> Ctx<'a, C, M> {
    fn new(cpu: &'a mut C, mem: &'a mut M, io: &'a mut IoState, insn: &'a Insn) -> Self {
        let mode = CpuMode::of(cpu);
        let cpl = match mode {
            CpuMode::Real => 0,
            CpuMode::Vm86 => 3,
            _ => cpu.cpl() & 3,
        };
        let paging = super::access::paging_config(cpu, mode);
        let rip = cpu.rip();
        let next_rip = rip.wrapping_add(u64::from(insn.len));
        Ctx {
            cpu,
            mem,
            io,
            insn,
            mode,
            cpl,
            paging,
            next_rip,
        }
    }

    /// Commit RIP to the next instruction (masked to the code size) and
    /// clear RF.
    pub(super) fn advance_rip(&mut self) {
        let ip = match self.mode {
            CpuMode::Long => self.next_rip,
            _ if self.cpu.segment(super::SegReg::Cs).db && self.mode != CpuMode::Vm86 => {
                self.next_rip & 0xFFFF_FFFF
            }
            _ => self.next_rip & 0xFFFF,
        };
        self.cpu.set_rip(ip);
        self.clear_rf();
    }

    /// Clear RFLAGS.RF after an instruction retires.
    pub(super) fn clear_rf(&mut self) {
        let f = self.cpu.rflags();
        if f & X86_EFLAGS_RF != 0 {
            self.cpu.set_rflags(f & !X86_EFLAGS_RF);
        }
    }

    /// Retire a straight-line instruction.
    pub(super) fn done(&mut self) -> Res<Done> {
        self.advance_rip();
        Ok(Done::Completed)
    }

    fn execute(&mut self) -> Res<Done> {
        let insn = self.insn;
        // Lock validity was checked by the decoder; string ops with LOCK
        // or SSE with LOCK never decode.
        match insn.op {
            Op::Nop | Op::Pause => self.done(),
            Op::Ud => Err(Exception::ud().into()),
            Op::Mov | Op::Movzx | Op::Movsx | Op::Movsxd | Op::Movnti => self.exec_mov(),
            Op::Lea => self.exec_lea(),
            Op::Xchg => self.exec_xchg(),
            Op::Cmpxchg => self.exec_cmpxchg(),
            Op::Cmpxchg8b => self.exec_cmpxchg8b(),
            Op::Xadd => self.exec_xadd(),
            Op::Bswap => self.exec_bswap(),
            Op::Cmovcc => self.exec_cmov(),
            Op::Setcc => self.exec_setcc(),
            Op::Cbw | Op::Cwd => self.exec_cbw(),
            Op::Xlat => self.exec_xlat(),
            Op::Add
            | Op::Or
            | Op::Adc
            | Op::Sbb
            | Op::And
            | Op::Sub
            | Op::Xor
            | Op::Cmp
            | Op::Test => self.exec_alu2(),
            Op::Inc | Op::Dec | Op::Neg | Op::Not => self.exec_alu1(),
            Op::Sahf | Op::Lahf | Op::Clc | Op::Stc | Op::Cmc | Op::Cld | Op::Std => {
                self.exec_flagop()
            }
            Op::Mul | Op::Imul1 | Op::Imul | Op::Div | Op::Idiv => self.exec_muldiv(),
            Op::Rol
            | Op::Ror
            | Op::Rcl
            | Op::Rcr
            | Op::Shl
            | Op::Shr
            | Op::Sar
            | Op::Shld
            | Op::Shrd => self.exec_shift(),
            Op::Bt | Op::Bts | Op::Btr | Op::Btc | Op::Bsf | Op::Bsr => self.exec_bitop(),
            Op::Movs | Op::Cmps | Op::Stos | Op::Lods | Op::Scas | Op::Ins | Op::Outs => {
                self.exec_string()
            }
            Op::Push
            | Op::Pop
            | Op::Pushf
            | Op::Popf
            | Op::Pusha
            | Op::Popa
            | Op::Enter
            | Op::Leave => self.exec_stack(),
            Op::Jmp
            | Op::JmpInd
            | Op::JmpFar
            | Op::Call
            | Op::CallInd
            | Op::CallFar
            | Op::Ret
            | Op::RetFar
            | Op::Jcc
            | Op::Loop
            | Op::Loope
            | Op::Loopne
            | Op::Jcxz
            | Op::Int
            | Op::Int3
            | Op::Into
            | Op::Int1
            | Op::Iret => self.exec_branch(),
            Op::MovToSeg | Op::MovFromSeg | Op::Lseg => self.exec_segmov(),
            Op::SseMov => self.exec_sse(),
            Op::MmxMov => self.exec_mmx(),
            Op::AvxMov => self.exec_avx(),
            Op::In | Op::Out => self.exec_inout(),
            Op::MovToCr
            | Op::MovFromCr
            | Op::MovToDr
            | Op::MovFromDr
            | Op::Lgdt
            | Op::Lidt
            | Op::Sgdt
            | Op::Sidt
            | Op::Lldt
            | Op::Ltr
            | Op::Sldt
            | Op::Str
            | Op::Lmsw
            | Op::Smsw
            | Op::Clts
            | Op::Hlt
            | Op::Cpuid
            | Op::Rdmsr
            | Op::Wrmsr
            | Op::Rdtsc
            | Op::Rdtscp
            | Op::Invlpg
            | Op::Wbinvd
            | Op::Invd
            | Op::Cli
            | Op::Sti => self.exec_system(),
        }
    }
}
