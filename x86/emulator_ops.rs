// SPDX-License-Identifier: GPL-2.0
//! Glue between the pure instruction emulator (`emulate/`) and a vCPU:
//! [`CpuState`] over the vCPU's registers, [`GuestMemory`] over the VM's
//! memory slots, and the exits its outcomes turn into (MMIO, string port
//! I/O, exceptions, internal errors).

use crate::{
    defs::{
        paging::{Gfn, Gpa},
        regs::{DR6_BS, X86_EFLAGS_TF},
    },
    emulate::{
        self, paging, CpuState, Cr, DescTable, Emulator, GuestMemory, InterruptShadow, MemError,
        Outcome, Rejected, Segment,
    },
    ext::{cpu, fpu::regs, trace, uapi},
    virt::{kick::REQ_EVENT, vcpu::Vcpu, vm::Vm},
    x86::{
        cpuid, exits, iodev, msrs,
        run::{halt, Next},
        vcpu::VcpuState,
        vendor::Seg,
    },
};
use kernel::prelude::*;

/// The emulator's state between exits: what userspace must complete.
#[derive(Clone, Copy)]
pub(crate) enum Waiting {
    /// An MMIO read of `len` bytes at `gpa`.
    MmioRead { len: u8, gpa: u64 },
    /// An MMIO write (already done by userspace).
    MmioWrite,
    /// IN/INS of `count` elements of `size` bytes from `port`, in the PIO
    /// data page.
    PioIn { port: u16, size: u8, count: u32 },
    /// OUT/OUTS (already done by userspace).
    PioOut,
    /// Nothing from userspace: an instruction interrupted by a signal
    /// while it kept accessing in-kernel devices goes on.
    Resume,
}

fn seg_to_emu(s: &uapi::kvm_segment) -> Segment {
    Segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        s: s.s != 0,
        dpl: s.dpl,
        present: s.present != 0,
        avl: s.avl != 0,
        l: s.l != 0,
        db: s.db != 0,
        g: s.g != 0,
        unusable: s.unusable != 0,
    }
}

fn seg_from_emu(s: &Segment) -> uapi::kvm_segment {
    uapi::kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: u8::from(s.present),
        dpl: s.dpl,
        db: u8::from(s.db),
        s: u8::from(s.s),
        l: u8::from(s.l),
        g: u8::from(s.g),
        avl: u8::from(s.avl),
        unusable: u8::from(s.unusable),
        padding: 0,
    }
}

/// [`CpuState`] over a vCPU.
pub(crate) struct Cpu<'a> {
    pub(crate) vm: &'a Vm,
    pub(crate) vcpu: &'a Vcpu,
    pub(crate) st: &'a mut VcpuState,
}

impl CpuState for Cpu<'_> {
    fn gpr(&self, reg: emulate::regs::Gpr) -> u64 {
        self.st.hw.gprs()[reg]
    }
    fn set_gpr(&mut self, reg: emulate::regs::Gpr, val: u64) {
        self.st.hw.gprs_mut()[reg] = val;
    }
    fn rip(&self) -> u64 {
        self.st.hw.rip()
    }
    fn set_rip(&mut self, val: u64) {
        self.st.hw.set_rip(val)
    }
    fn rflags(&self) -> u64 {
        self.st.hw.rflags()
    }
    fn set_rflags(&mut self, val: u64) {
        self.st.hw.set_rflags(val)
    }
    fn segment(&self, seg: Seg) -> Segment {
        seg_to_emu(&self.st.hw.segment(seg))
    }
    fn set_segment(&mut self, seg: Seg, val: Segment) {
        self.st.hw.set_segment(seg, &seg_from_emu(&val))
    }
    fn gdtr(&self) -> DescTable {
        let d = self.st.hw.dtable(false);
        DescTable {
            base: d.base,
            limit: d.limit,
        }
    }
    fn set_gdtr(&mut self, val: DescTable) {
        self.st.hw.set_dtable(
            false,
            &uapi::kvm_dtable {
                base: val.base,
                limit: val.limit,
                padding: [0; 3],
            },
        )
    }
    fn idtr(&self) -> DescTable {
        let d = self.st.hw.dtable(true);
        DescTable {
            base: d.base,
            limit: d.limit,
        }
    }
    fn set_idtr(&mut self, val: DescTable) {
        self.st.hw.set_dtable(
            true,
            &uapi::kvm_dtable {
                base: val.base,
                limit: val.limit,
                padding: [0; 3],
            },
        )
    }
    fn cpl(&self) -> u8 {
        self.st.hw.cpl()
    }
    fn cr(&self, cr: Cr) -> u64 {
        match cr {
            Cr::Cr0 => self.st.hw.cr0(),
            Cr::Cr2 => self.st.hw.cr2(),
            Cr::Cr3 => self.st.hw.cr3(),
            Cr::Cr4 => self.st.hw.cr4(),
            Cr::Cr8 => match self.vcpu.lapic() {
                Some(l) => l.lock().cr8(),
                None => self.st.msrs.cr8,
            },
        }
    }
    fn set_cr(&mut self, cr: Cr, val: u64) -> Result<(), Rejected> {
        let n = match cr {
            Cr::Cr0 => 0,
            Cr::Cr2 => 2,
            Cr::Cr3 => 3,
            Cr::Cr4 => 4,
            Cr::Cr8 => 8,
        };
        trace::kvm_cr(1, n, val as usize);
        match cr {
            Cr::Cr0 => msrs::set_cr0(self.vm, self.st, val),
            Cr::Cr2 => {
                self.st.hw.set_cr2(val);
                Ok(())
            }
            Cr::Cr3 => msrs::set_cr3(self.vm, self.st, val),
            Cr::Cr4 => msrs::set_cr4(self.vm, self.st, val),
            Cr::Cr8 => {
                if val > 15 {
                    return Err(Rejected);
                }
                match self.vcpu.lapic() {
                    Some(l) => {
                        l.lock().set_cr8(val);
                        self.st.hw.set_v_tpr(val as u8);
                        self.vcpu.kick().make_request(REQ_EVENT);
                    }
                    None => self.st.msrs.cr8 = val,
                }
                Ok(())
            }
        }
        .map_err(|_| Rejected)
    }
    fn efer(&self) -> u64 {
        self.st.hw.efer()
    }
    fn dr(&self, n: u8) -> u64 {
        self.st.hw.dr(n)
    }
    fn set_dr(&mut self, n: u8, val: u64) -> Result<(), Rejected> {
        msrs::set_dr(self.st, n, val).map_err(|_| Rejected)
    }
    fn read_msr(&mut self, index: u32) -> Result<u64, Rejected> {
        msrs::get(self.vm, self.vcpu, self.st, index, false).map_err(|_| Rejected)
    }
    fn write_msr(&mut self, index: u32, val: u64) -> Result<(), Rejected> {
        msrs::set(self.vm, self.vcpu, self.st, index, val, false).map_err(|_| Rejected)
    }
    fn cpuid(&mut self, leaf: u32, subleaf: u32) -> [u32; 4] {
        cpuid::lookup(self.st, leaf, subleaf)
    }
    // The vector registers: the emulator runs in KVM_RUN, with the guest
    // FPU state loaded.
    fn xmm(&self, n: u8) -> u128 {
        regs::xmm(n)
    }
    fn set_xmm(&mut self, n: u8, val: u128) {
        regs::set_xmm(n, val)
    }
    fn ymm(&self, n: u8) -> [u8; 32] {
        regs::ymm(n)
    }
    fn set_ymm(&mut self, n: u8, val: [u8; 32]) {
        regs::set_ymm(n, val)
    }
    fn mmx(&mut self, n: u8) -> u64 {
        // The emulator checked `x87_exception_pending` first.
        regs::mmx(n)
    }
    fn set_mmx(&mut self, n: u8, val: u64) {
        regs::set_mmx(n, val)
    }
    fn x87_exception_pending(&mut self) -> bool {
        regs::x87_exception_pending()
    }
    fn xcr0(&self) -> u64 {
        self.st.msrs.xcr0()
    }
    fn invlpg(&mut self, _linear: u64) {
        self.st.hw.flush_tlb()
    }
    fn wbinvd(&mut self) {}
    fn set_interrupt_shadow(&mut self, kind: InterruptShadow) {
        self.st.hw.set_interrupt_shadow(kind)
    }
    fn maxphyaddr(&self) -> u8 {
        cpuid::guest_maxphyaddr(self.st)
    }
}

/// [`GuestMemory`] over a VM's slots. A userspace fault (the VMM unmapped
/// its memory) is remembered and turned into `EFAULT` by the caller.
pub(crate) struct Mem<'a> {
    pub(crate) vm: &'a Vm,
    pub(crate) fault: bool,
}

impl<'a> Mem<'a> {
    pub(crate) fn new(vm: &'a Vm) -> Self {
        Self { vm, fault: false }
    }
}

impl GuestMemory for Mem<'_> {
    fn read(&mut self, gpa: u64, buf: &mut [u8]) -> Result<(), MemError> {
        match self.vm.mmu().read_guest(Gpa::new(gpa), buf) {
            Ok(true) => Ok(()),
            Ok(false) => Err(MemError::Mmio),
            Err(_) => {
                self.fault = true;
                Err(MemError::Mmio)
            }
        }
    }
    fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), MemError> {
        match self.vm.mmu().write_guest(self.vm, Gpa::new(gpa), data) {
            Ok(true) => Ok(()),
            Ok(false) => Err(MemError::Mmio),
            Err(_) => {
                self.fault = true;
                Err(MemError::Mmio)
            }
        }
    }
    fn cmpxchg(&mut self, gpa: u64, old: &[u8], new: &[u8]) -> Result<bool, MemError> {
        match self
            .vm
            .mmu()
            .cmpxchg_guest(self.vm, Gpa::new(gpa), old, new)
        {
            Ok(Some(exchanged)) => Ok(exchanged),
            Ok(None) => Err(MemError::Mmio),
            Err(e) if e == EINVAL => {
                // 16 bytes: like upstream, emulate as a plain write.
                let n = old.len().min(16);
                let mut cur = [0u8; 16];
                self.read(gpa, &mut cur[..n])?;
                if cur[..n] != old[..n] {
                    return Ok(false);
                }
                self.write(gpa, new).map(|()| true)
            }
            Err(_) => {
                self.fault = true;
                Err(MemError::Mmio)
            }
        }
    }
}

/// The guest's current paging mode.
pub(crate) fn paging_config(st: &mut VcpuState) -> paging::PagingConfig {
    paging::PagingConfig::from_regs(
        st.hw.cr0(),
        st.hw.cr3(),
        st.hw.cr4(),
        st.hw.efer(),
        cpuid::guest_maxphyaddr(st),
        true,
    )
}

/// The guest-physical addresses of the `N` bytes at CS:RIP, each walked
/// with `acc` at the guest's CPL (`None` if any walk fails).
fn rip_gpas<const N: usize>(
    mem: &mut Mem<'_>,
    st: &mut VcpuState,
    acc: paging::Access,
) -> Option<[u64; N]> {
    let cfg = paging_config(st);
    let la = crate::x86::events::linear_rip(st);
    let acc = paging::Access {
        user: st.hw.cpl() == 3,
        ..acc
    };
    let mut gpas = [0u64; N];
    for (i, g) in gpas.iter_mut().enumerate() {
        *g = paging::translate(mem, &cfg, la.wrapping_add(i as u64), acc)
            .ok()?
            .gpa;
    }
    Some(gpas)
}

/// Reads the `N` instruction bytes at CS:RIP as the CPU would fetch them
/// (`None` if they are not all in guest RAM).
pub(crate) fn fetch_at_rip<const N: usize>(vm: &Vm, st: &mut VcpuState) -> Option<[u8; N]> {
    let mut mem = Mem::new(vm);
    let fetch = paging::Access {
        fetch: true,
        ..Default::default()
    };
    let gpas = rip_gpas::<N>(&mut mem, st, fetch)?;
    let mut out = [0u8; N];
    for (b, gpa) in out.iter_mut().zip(gpas) {
        mem.read(gpa, core::slice::from_mut(b)).ok()?;
    }
    Some(out)
}

/// Writes `bytes` at CS:RIP as a guest write would: `false`, with
/// nothing written, if a byte's walk fails; `false` as well if a byte is
/// not guest RAM (the bytes before it are written).
pub(crate) fn write_at_rip<const N: usize>(vm: &Vm, st: &mut VcpuState, bytes: &[u8; N]) -> bool {
    let mut mem = Mem::new(vm);
    let write = paging::Access {
        write: true,
        ..Default::default()
    };
    let Some(gpas) = rip_gpas::<N>(&mut mem, st, write) else {
        return false;
    };
    bytes
        .iter()
        .zip(gpas)
        .all(|(b, gpa)| mem.write(gpa, core::slice::from_ref(b)).is_ok())
}

/// `kvm_run.emulation_failure` as upstream lays it out: flags
/// (INSTRUCTION_BYTES), insn_size and 15 bytes (NOP-padded), then the
/// vendor's exit info.
fn emulation_failure_data(st: &VcpuState, bytes: &[u8], len: u8) -> [u64; 8] {
    let n = usize::from(len).min(15).min(bytes.len());
    let mut insn = [0x90u8; 16];
    insn[0] = n as u8;
    insn[1..1 + n].copy_from_slice(&bytes[..n]);
    let packed = u128::from_le_bytes(insn);
    let [reason, info1, info2, intr, err] = st.hw.exit_info();
    [
        u64::from(uapi::KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES),
        packed as u64,
        (packed >> 64) as u64,
        reason,
        info1,
        info2,
        intr,
        err,
    ]
}

/// The length of the instruction at CS:RIP, decoded from guest memory
/// (for skipping it when the hardware gives no next RIP).
pub(crate) fn instruction_length(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState) -> Option<u64> {
    let cpu = Cpu { vm, vcpu, st };
    let mut mem = Mem::new(vm);
    Emulator::instruction_length(&cpu, &mut mem, &[])
        .ok()
        .map(u64::from)
}

/// Runs `f` with the vCPU's emulator taken out of `st` (a pointer move).
fn with_emulator(
    st: &mut VcpuState,
    f: impl FnOnce(&mut VcpuState, &mut Emulator) -> Result<Next>,
) -> Result<Next> {
    // Only `None` while `f` runs, which does not come back here.
    let Some(mut emu) = st.emulator.take() else {
        return Err(EIO);
    };
    let r = f(st, &mut emu);
    st.emulator = Some(emu);
    r
}

/// Emulates the instruction at CS:RIP (`insn`: bytes the hardware already
/// fetched, if any) until it completes or needs userspace.
pub(crate) fn emulate(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, insn: &[u8]) -> Result<Next> {
    emulate_fault(vm, vcpu, st, insn, None)
}

/// [`emulate`] for a shadow page fault; with `protected`, the fault was a
/// write to that guest page table: if the emulator cannot do the
/// instruction, the table loses its shadow pages and the guest executes
/// the instruction itself (upstream's unprotect-and-retry).
pub(crate) fn emulate_fault(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    insn: &[u8],
    protected: Option<Gfn>,
) -> Result<Next> {
    vcpu.stats().insn_emulation.inc();
    with_emulator(st, |st, emu| step(vm, vcpu, st, emu, insn, protected))
}

/// Completes a userspace exit the emulator asked for, then goes on.
pub(crate) fn complete(vm: &Vm, vcpu: &Vcpu, st: &mut VcpuState, w: Waiting) -> Result<Next> {
    with_emulator(st, |st, emu| {
        match w {
            Waiting::MmioRead { len, gpa } => {
                let d = vcpu.run_page().mmio_data();
                let d = &d[..usize::from(len).min(8)];
                trace::kvm_mmio(trace::MMIO_READ, len.into(), gpa, le_value(d));
                emu.complete_mmio_read(d);
            }
            Waiting::PioIn { port, size, count } => {
                // Straight from the PIO data page into the emulator's
                // buffer (up to 1 KiB: no copy on the stack).
                let mut first = 0;
                emu.complete_pio_in_with(|b| {
                    vcpu.run_page().read_pio(0, b);
                    first = le_value(&b[..usize::from(size).min(4).min(b.len())]) as u32;
                    true
                });
                trace::kvm_pio(0, port.into(), size.into(), count, first);
            }
            // As upstream, the guest runs again after output userspace
            // completed, rather than the emulator going on with a REP
            // instruction (it re-executes it).
            Waiting::MmioWrite | Waiting::PioOut => emu.yield_after_output(),
            Waiting::Resume => {}
        }
        step(vm, vcpu, st, emu, &[], None)
    })
}

/// Accesses to in-kernel devices between scheduling points (each emulate
/// call makes progress; the emulator itself returns to the guest every
/// `emulate::REP_YIELD` REP iterations).
const MAX_INKERNEL_ROUNDS: u32 = 1024;

fn step(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    emu: &mut Emulator,
    insn: &[u8],
    protected: Option<Gfn>,
) -> Result<Next> {
    // RFLAGS.TF before the instruction (the guest's, or ours while
    // single-stepping): a trap follows it once it retires.
    let tf = st.hw.rflags() & X86_EFLAGS_TF != 0;
    let mut insn = insn;
    let mut rounds = 0;
    loop {
        let mut mem = Mem::new(vm);
        let outcome = emu.emulate(
            &mut Cpu {
                vm,
                vcpu,
                st: &mut *st,
            },
            &mut mem,
            insn,
        );
        if mem.fault {
            emu.reset();
            return Err(EFAULT);
        }
        insn = &[];
        rounds += 1;
        // In-kernel devices complete the access here, and the emulator
        // goes on, without an exit to userspace.
        let handled = match outcome {
            Outcome::Mmio(m) => {
                let mut data = m.data;
                let len = usize::from(m.len).min(8);
                let done = iodev::mmio(vm, vcpu, st, m.gpa, m.is_write, &mut data[..len]);
                if done {
                    let kind = if m.is_write {
                        trace::MMIO_WRITE
                    } else {
                        trace::MMIO_READ
                    };
                    trace::kvm_mmio(kind, len as u32, m.gpa, le_value(&data[..len]));
                }
                if done && !m.is_write {
                    emu.complete_mmio_read(&data[..len]);
                }
                done
            }
            Outcome::Pio(p) => pio_inkernel(vm, emu, p),
            _ => false,
        };
        if let (Outcome::Unhandleable { .. }, Some(gfn)) = (&outcome, protected) {
            emu.reset();
            vm.mmu().unprotect(vm, gfn);
            return Ok(Next::Guest);
        }
        if !handled {
            return finish(vm, vcpu, st, emu, outcome, tf);
        }
        if rounds >= MAX_INKERNEL_ROUNDS {
            // The instruction is still pending (the guest must not run
            // before it goes on): a scheduling point, and a signal parks
            // it until the next KVM_RUN.
            rounds = 0;
            cpu::cond_resched();
            if kernel::current!().signal_pending() {
                vcpu.stats().signal_exits.inc();
                st.completion.emulator(Waiting::Resume);
                vcpu.run_page().set_exit_reason(uapi::KVM_EXIT_INTR);
                return Err(EINTR);
            }
        }
    }
}

/// Port I/O of the emulator to an in-kernel device, element by element,
/// as upstream's emulator_pio_in_out: `false` if the first element finds
/// no device (userspace gets the whole request); if the device goes away
/// after that, the other writes are dropped and reads give zeros.
fn pio_inkernel(vm: &Vm, emu: &mut Emulator, p: crate::emulate::PioRequest) -> bool {
    let size = usize::from(p.size);
    if !matches!(size, 1 | 2 | 4) {
        return false;
    }
    if p.is_in {
        let mut first = 0;
        let done = emu.complete_pio_in_with(|buf| {
            let mut i = 0;
            while i < buf.len() {
                let end = (i + size).min(buf.len());
                if !iodev::pio(vm, p.port, false, &mut buf[i..end]) {
                    if i == 0 {
                        return false;
                    }
                    buf[i..].fill(0);
                    break;
                }
                i = end;
            }
            first = le_value(&buf[..size.min(buf.len())]) as u32;
            true
        });
        if done {
            trace::kvm_pio(0, p.port.into(), p.size.into(), p.count, first);
        }
        return done;
    }
    // OUT and OUTS: one element.
    let data = emu.pio_out_data();
    trace::kvm_pio(
        1,
        p.port.into(),
        p.size.into(),
        p.count,
        le_value(&data[..size.min(data.len())]) as u32,
    );
    let mut e = [0u8; 4];
    for (i, chunk) in data.chunks(size).enumerate() {
        e[..chunk.len()].copy_from_slice(chunk);
        if !iodev::pio(vm, p.port, true, &mut e[..chunk.len()]) {
            return i != 0;
        }
    }
    true
}

fn finish(
    vm: &Vm,
    vcpu: &Vcpu,
    st: &mut VcpuState,
    emu: &mut Emulator,
    outcome: Outcome,
    tf: bool,
) -> Result<Next> {
    let run = vcpu.run_page();
    match outcome {
        // A single-step trap follows a retired instruction (upstream's
        // x86_emulate_instruction() writeback), not an unfinished REP.
        Outcome::Completed if tf => Ok(exits::inject_emulated_db(vcpu, st, DR6_BS)),
        Outcome::Completed | Outcome::Continue => Ok(Next::Guest),
        Outcome::Halt if tf => match exits::inject_emulated_db(vcpu, st, DR6_BS) {
            Next::User => Ok(Next::User),
            Next::Guest => Ok(halt(vcpu, st)),
        },
        Outcome::Halt => Ok(halt(vcpu, st)),
        Outcome::Mmio(m) => {
            vcpu.stats().mmio_exits.inc();
            run.set_exit_reason(uapi::KVM_EXIT_MMIO);
            run.set_mmio(m.gpa, m.data, u32::from(m.len), m.is_write);
            let len = usize::from(m.len).min(8);
            if m.is_write {
                trace::kvm_mmio(
                    trace::MMIO_WRITE,
                    len as u32,
                    m.gpa,
                    le_value(&m.data[..len]),
                );
            } else {
                trace::kvm_mmio(trace::MMIO_READ_UNSATISFIED, len as u32, m.gpa, 0);
            }
            st.completion.emulator(if m.is_write {
                Waiting::MmioWrite
            } else {
                Waiting::MmioRead {
                    len: m.len,
                    gpa: m.gpa,
                }
            });
            Ok(Next::User)
        }
        Outcome::Pio(p) => {
            // (An OUT was traced by `pio_inkernel`, which saw it first.)
            run.set_exit_reason(uapi::KVM_EXIT_IO);
            run.set_io(p.is_in, p.size, p.port, p.count);
            if p.is_in {
                st.completion.emulator(Waiting::PioIn {
                    port: p.port,
                    size: p.size,
                    count: p.count,
                });
            } else {
                run.write_pio(0, emu.pio_out_data());
                st.completion.emulator(Waiting::PioOut);
            }
            Ok(Next::User)
        }
        Outcome::Exception(e) => {
            if e.vector == crate::defs::vector::PF_VECTOR {
                st.hw.set_cr2(e.cr2);
            }
            st.inject_exception(e.vector, e.error_code);
            Ok(Next::Guest)
        }
        Outcome::Unhandleable { bytes, len } => {
            // As upstream: #UD is queued; at CPL 0 userspace also hears
            // of it, with the instruction bytes and the exit info. With
            // KVM_CAP_EXIT_ON_EMULATION_FAILURE userspace hears of every
            // failure, and no #UD is queued.
            vcpu.stats().insn_emulation_fail.inc();
            if !vm.arch().exit_on_emulation_failure() {
                st.inject_exception(crate::defs::vector::UD_VECTOR, None);
                if st.hw.cpl() != 0 {
                    return Ok(Next::Guest);
                }
            }
            run.set_exit_reason(uapi::KVM_EXIT_INTERNAL_ERROR);
            run.set_internal(
                uapi::KVM_INTERNAL_ERROR_EMULATION,
                &emulation_failure_data(st, &bytes, len),
            );
            Ok(Next::User)
        }
    }
}

/// The little-endian value of up to 8 bytes (trace events).
fn le_value(b: &[u8]) -> u64 {
    let mut v = [0u8; 8];
    let n = b.len().min(8);
    v[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(v)
}
