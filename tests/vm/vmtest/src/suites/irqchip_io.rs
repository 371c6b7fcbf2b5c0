//! ioeventfd and coalesced MMIO/PIO (issue 5): guest writes that KVM
//! completes without a userspace exit, signalling an eventfd or filling
//! the ring in the page at KVM_COALESCED_MMIO_PAGE_OFFSET of the vCPU
//! mapping.  Neither needs the in-kernel irqchip.  Guests: guests/irq.inc.

use super::guest::*;
use super::harness::{test, Test, TestResult};
use super::irqchip::{expect_echo, expect_port, EventFd};
use crate::report::expect_eq;
use crate::sys::{errno_name, ioctl};
use kvm_bindings::*;
use std::os::fd::AsRawFd;

pub fn tests() -> Vec<Test> {
    vec![
        test("irq/ioeventfd-pio-mmio-datamatch-any-length", ioeventfd_test),
        test("irq/ioeventfd-deassign-exits-again", ioeventfd_deassign),
        test("irq/coalesced-mmio-and-pio-ring", coalesced),
        test("irq/coalesced-mmio-ring-full-falls-back-to-exit", coalesced_full),
    ]
}

pub const IOEV_DATAMATCH: u32 = 1 << 0;
pub const IOEV_PIO: u32 = 1 << 1;
pub const IOEV_DEASSIGN: u32 = 1 << 2;

/// KVM_IOEVENTFD with every field as given.
pub fn ioeventfd_raw(vm: &impl AsRawFd, fd: i32, addr: u64, len: u32, datamatch: u64, flags: u32) -> Result<i64, i32> {
    let a = kvm_ioeventfd { datamatch, addr, len, fd, flags, ..Default::default() };
    ioctl(vm, super::irqchip::nr::IOEVENTFD, &a as *const _ as u64)
}

/// Registers an ioeventfd: PIO or MMIO `addr`, `len` bytes (0: any
/// length), with an optional datamatch.
pub fn ioeventfd(vm: &impl AsRawFd, ev: &EventFd, pio: bool, addr: u64, len: u32, dm: Option<u64>) -> TestResult {
    let flags = if pio { IOEV_PIO } else { 0 } | if dm.is_some() { IOEV_DATAMATCH } else { 0 };
    ioeventfd_raw(vm, ev.fd(), addr, len, dm.unwrap_or(0), flags).map(|_| ()).map_err(|e| {
        format!(
            "KVM_IOEVENTFD({} {addr:#x} len {len} datamatch {dm:x?}): {}",
            if pio { "pio" } else { "mmio" },
            errno_name(e)
        )
    })
}

/// KVM_(UN)REGISTER_COALESCED_MMIO of a zone.
pub fn coalesced_zone(vm: &impl AsRawFd, register: bool, addr: u64, size: u32, pio: u32) -> Result<i64, i32> {
    let mut z = kvm_coalesced_mmio_zone { addr, size, ..Default::default() };
    z.__bindgen_anon_1.pio = pio;
    let nr = if register {
        super::irqchip::nr::REGISTER_COALESCED_MMIO
    } else {
        super::irqchip::nr::UNREGISTER_COALESCED_MMIO
    };
    ioctl(vm, nr, &z as *const _ as u64)
}

/// Guest writes swallowed by ioeventfds (no exit; the eventfd counts each)
/// and the ones that are not: PIO with a 1-byte datamatch (matching value
/// only, and only 1-byte writes), MMIO of exactly 4 bytes, MMIO of any
/// length (1, 2, 4 and 8 bytes), MMIO with an 8-byte datamatch, and PIO of
/// any length.
fn ioeventfd_test() -> TestResult {
    let mut g = Guest::at(Mode::Long, "ioevent_seq")?;
    let ev: Vec<EventFd> = (0..5).map(|_| EventFd::new()).collect::<Result<_, _>>()?;
    let fd = &g.vm.fd;
    ioeventfd(fd, &ev[0], true, PORT_IOEV as u64, 1, Some(0x42))?;
    ioeventfd(fd, &ev[1], false, IOEV_MMIO, 4, None)?;
    ioeventfd(fd, &ev[2], false, IOEV_MMIO + 8, 0, None)?;
    ioeventfd(fd, &ev[3], false, IOEV_MMIO + 16, 8, Some(0x1122_3344_5566_7788))?;
    ioeventfd(fd, &ev[4], true, PORT_IOEV2 as u64, 0, None)?;
    g.cpu.expect(Exit::out1(PORT_IOEV, 0x43))?;
    g.cpu.expect(Exit::out2(PORT_IOEV, 0x4342))?;
    g.cpu.expect(Exit::mmio_write(IOEV_MMIO + 16, &0x0102_0304_0506_0708u64.to_le_bytes()))?;
    expect_port(&mut g.cpu, PORT_DONE)?;
    let counts: Vec<u64> = ev.iter().map(|e| e.take()).collect::<Result<_, _>>()?;
    expect_eq(
        "eventfd counters (pio datamatch, mmio len 4, mmio any length, mmio datamatch, pio any length)",
        counts,
        vec![1, 1, 4, 1, 3],
    )
}

/// After KVM_IOEVENTFD deassign, the same writes exit to userspace again.
fn ioeventfd_deassign() -> TestResult {
    let mut g = Guest::at(Mode::Long, "bench_ioev_mmio")?;
    let ev = EventFd::new()?;
    ioeventfd(&g.vm.fd, &ev, false, IOEV_MMIO, 4, None)?;
    g.cpu.with_regs(|r| r.rbp = 3)?;
    expect_port(&mut g.cpu, PORT_DONE)?;
    expect_eq("eventfd counter", ev.take()?, 3)?;
    ioeventfd_raw(&g.vm.fd, ev.fd(), IOEV_MMIO, 4, 0, IOEV_DEASSIGN)
        .map_err(|e| format!("KVM_IOEVENTFD(deassign): {}", errno_name(e)))?;
    g.cpu.start("bench_ioev_mmio")?;
    g.cpu.with_regs(|r| {
        r.rbp = 2;
        r.rax = 0x5a5a_5a5a;
    })?;
    for _ in 0..2 {
        g.cpu.expect(Exit::mmio_write(IOEV_MMIO, &0x5a5a_5a5au32.to_le_bytes()))?;
    }
    expect_port(&mut g.cpu, PORT_DONE)?;
    expect_eq("eventfd counter after deassign", ev.take()?, 0)
}

/// The coalesced ring page of a vCPU, mmap'ed at
/// KVM_COALESCED_MMIO_PAGE_OFFSET.
pub struct Ring {
    p: *mut u8,
}

pub const RING_MAX: u32 = ((4096 - 8) / std::mem::size_of::<kvm_coalesced_mmio>()) as u32;

impl Ring {
    pub fn map(cpu: &Cpu) -> Result<Ring, String> {
        // SAFETY: a fresh shared mapping of the vCPU fd; unmapped on drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                cpu.fd.as_raw_fd(),
                KVM_COALESCED_MMIO_PAGE_OFFSET as i64 * 4096,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("mmap of the coalesced MMIO page: {}", std::io::Error::last_os_error()));
        }
        Ok(Ring { p: p.cast() })
    }
    fn u32_at(&self, off: usize) -> u32 {
        // SAFETY: off < 4096 - 4 (callers), inside the mapping.
        unsafe { std::ptr::read_volatile(self.p.add(off) as *const u32) }
    }
    pub fn first(&self) -> u32 {
        self.u32_at(0)
    }
    pub fn last(&self) -> u32 {
        self.u32_at(4)
    }
    /// Entry `i` as (phys_addr, len, pio, data).
    pub fn entry(&self, i: u32) -> (u64, u32, u32, [u8; 8]) {
        let o = 8 + 24 * (i % RING_MAX) as usize;
        // SAFETY: o + 24 <= 8 + 24 * RING_MAX <= 4096.
        let e: kvm_coalesced_mmio = unsafe { std::ptr::read_volatile(self.p.add(o) as *const kvm_coalesced_mmio) };
        // SAFETY: both union members are u32.
        (e.phys_addr, e.len, unsafe { e.__bindgen_anon_1.pio }, e.data)
    }
    /// Consumes everything: first = last.
    pub fn drain(&self) {
        let l = self.last();
        // SAFETY: as above; userspace owns `first`.
        unsafe { std::ptr::write_volatile(self.p as *mut u32, l) };
    }
    /// Entries first..last as (phys_addr, len, pio, data[..len]).
    pub fn pending(&self) -> Vec<(u64, u32, u32, Vec<u8>)> {
        let (f, l) = (self.first(), self.last());
        let n = (l + RING_MAX - f) % RING_MAX;
        (0..n)
            .map(|i| {
                let (a, len, pio, d) = self.entry(f + i);
                (a, len, pio, d[..(len as usize).min(8)].to_vec())
            })
            .collect()
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.p.cast(), 4096) };
    }
}

fn mmio_entries(range: std::ops::Range<u32>) -> Vec<(u64, u32, u32, Vec<u8>)> {
    range.map(|i| (COAL_MMIO + 4 * (i % 64) as u64, 4, 0, i.to_le_bytes().to_vec())).collect()
}

/// Ten dword stores into a coalesced MMIO zone cause no exit and land in
/// the ring in order (address, length 4, data); the next exit is the
/// guest's OUT.  A load from the zone is a normal MMIO read exit.  Byte
/// OUTs to a coalesced PIO zone land in the ring with pio = 1.
fn coalesced() -> TestResult {
    let mut g = Guest::at(Mode::Long, "coalesced_seq")?;
    let ring = Ring::map(&g.cpu)?;
    coalesced_zone(&g.vm.fd, true, COAL_MMIO, 0x100, 0)
        .map_err(|e| format!("KVM_REGISTER_COALESCED_MMIO(mmio): {}", errno_name(e)))?;
    coalesced_zone(&g.vm.fd, true, PORT_COAL as u64, 1, 1)
        .map_err(|e| format!("KVM_REGISTER_COALESCED_MMIO(pio): {}", errno_name(e)))?;
    g.cpu.with_regs(|r| {
        r.rcx = 10;
        r.rdx = 3;
    })?;
    expect_eq("ring (first, last) before", (ring.first(), ring.last()), (0, 0))?;
    expect_echo(&mut g.cpu, "stores done", 10)?;
    expect_eq("ring (first, last)", (ring.first(), ring.last()), (0, 10))?;
    expect_eq("ring entries (addr, len, pio, data)", ring.pending(), mmio_entries(0..10))?;
    ring.drain();
    g.cpu.expect_mmio_read(COAL_MMIO + 0x40, &0xfeed_f00du32.to_le_bytes())?;
    expect_echo(&mut g.cpu, "the value read", 0xfeed_f00d)?;
    expect_eq("ring entries after the read", ring.pending(), vec![])?;
    expect_port(&mut g.cpu, PORT_DONE)?;
    let want: Vec<_> = (1..=3u8).map(|i| (PORT_COAL as u64, 1, 1, vec![i])).collect();
    expect_eq("ring entries of the OUTs (addr, len, pio, data)", ring.pending(), want)?;
    expect_eq("ring (first, last)", (ring.first(), ring.last()), (10, 13))
}

/// 200 stores into a coalesced zone: the ring holds RING_MAX - 1 (169)
/// entries; the store that finds it full exits as a normal MMIO write;
/// once userspace empties the ring the rest are coalesced again, wrapping
/// around the end of the ring.
fn coalesced_full() -> TestResult {
    let mut g = Guest::at(Mode::Long, "coalesced_seq")?;
    let ring = Ring::map(&g.cpu)?;
    coalesced_zone(&g.vm.fd, true, COAL_MMIO, 0x100, 0)
        .map_err(|e| format!("KVM_REGISTER_COALESCED_MMIO: {}", errno_name(e)))?;
    g.cpu.with_regs(|r| {
        r.rcx = 200;
        r.rdx = 0;
    })?;
    let full = RING_MAX - 1;
    g.cpu
        .expect(Exit::mmio_write(COAL_MMIO + 4 * (full % 64) as u64, &full.to_le_bytes()))
        .map_err(|e| format!("the store that finds the ring full: {e}"))?;
    expect_eq("ring (first, last) when full", (ring.first(), ring.last()), (0, full))?;
    expect_eq("ring entries", ring.pending(), mmio_entries(0..full))?;
    ring.drain();
    expect_echo(&mut g.cpu, "stores done", 200)?;
    expect_eq("ring (first, last)", (ring.first(), ring.last()), (full, (full + 30) % RING_MAX))?;
    expect_eq("ring entries after the wrap", ring.pending(), mmio_entries(full + 1..200))?;
    ring.drain();
    g.cpu.expect_mmio_read(COAL_MMIO + 0x40, &[1, 2, 3, 4])?;
    expect_echo(&mut g.cpu, "the value read", 0x0403_0201)?;
    expect_port(&mut g.cpu, PORT_DONE)?;
    coalesced_zone(&g.vm.fd, false, COAL_MMIO, 0x100, 0)
        .map(|_| ())
        .map_err(|e| format!("KVM_UNREGISTER_COALESCED_MMIO: {}", errno_name(e)))
}
