//! The fuzzer's programs: a list of concrete operations, each one line of
//! text, so that a failing program is saved as a file and replayed with
//! `--replay FILE` exactly (the generator is not needed to replay).
//!
//! Resources are slots: fd slots `sN` (the /dev/kvm, VM, vCPU, eventfd and
//! other fds a program opened) and memory slots `mN` (mmap'd host memory:
//! guest RAM, kvm_run pages). A slot whose creation failed holds -1, so a
//! later use fails with EBADF/EFAULT on every module set alike.

use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Fd(u16),
    Mem(u16, u64),
    SelfOff(u32),
    Guard(u64),
    Imm(u64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Patch {
    pub off: u32,
    pub width: u8,
    pub val: Val,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Int(u64),
    /// An address: `Val::Mem`, `Val::Guard` (inside a PROT_NONE area) or a raw one.
    Addr(Val),
    /// A buffer of `cap` bytes starting with `data`; `edge` > 0 places it so
    /// that its last `edge` bytes lie in an inaccessible page.
    Buf { data: Vec<u8>, cap: u32, edge: u32, patches: Vec<Patch> },
}

#[derive(Clone, Debug, PartialEq)]
pub enum FdRef {
    Slot(u16),
    Raw(i32),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Open { slot: u16, kind: String },
    Close { slot: u16 },
    Mmap { mem: u16, len: u64, kind: String },
    Unmap { mem: u16 },
    Madvise { mem: u16, off: u64, len: u64, advice: i32 },
    Write { mem: u16, off: u64, data: Vec<u8> },
    VcpuMap { mem: u16, slot: u16, pages: u64, pgoff: u64 },
    Ioctl { fd: FdRef, cmd: u32, arg: Arg, store: Option<u16>, label: String },
    Run { slot: u16, mem: Option<u16>, imm: bool, usecs: u32 },
    EfdWrite { slot: u16, val: u64 },
    Race { kind: u32, seed: u64, ms: u32 },
    Fork { seed: u64 },
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err(format!("odd hex length: {s}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("hex {s}: {e}")))
        .collect()
}

fn num(s: &str) -> Result<u64, String> {
    let r = if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16)
    } else {
        s.parse::<u64>()
    };
    r.map_err(|e| format!("number {s:?}: {e}"))
}

fn slot(s: &str, p: char) -> Result<u16, String> {
    s.strip_prefix(p).ok_or_else(|| format!("{s:?}: want {p}N"))?.parse().map_err(|e| format!("{s}: {e}"))
}

impl Val {
    fn fmt(&self) -> String {
        match self {
            Val::Fd(s) => format!("fd{s}"),
            Val::Mem(m, o) => format!("mem{m}+{o:#x}"),
            Val::SelfOff(o) => format!("self+{o:#x}"),
            Val::Guard(o) => format!("guard+{o:#x}"),
            Val::Imm(v) => format!("{v:#x}"),
        }
    }
    fn parse(s: &str) -> Result<Val, String> {
        if let Some(r) = s.strip_prefix("fd") {
            return Ok(Val::Fd(r.parse().map_err(|e| format!("{s}: {e}"))?));
        }
        if let Some(r) = s.strip_prefix("mem") {
            let (m, o) = r.split_once('+').ok_or("mem: want memM+OFF")?;
            return Ok(Val::Mem(m.parse().map_err(|e| format!("{s}: {e}"))?, num(o)?));
        }
        if let Some(r) = s.strip_prefix("self+") {
            return Ok(Val::SelfOff(num(r)? as u32));
        }
        if let Some(r) = s.strip_prefix("guard+") {
            return Ok(Val::Guard(num(r)?));
        }
        Ok(Val::Imm(num(s)?))
    }
}

impl Arg {
    fn fmt(&self) -> String {
        match self {
            Arg::Int(v) => format!("int:{v:#x}"),
            Arg::Addr(v) => format!("addr:{}", v.fmt()),
            Arg::Buf { data, cap, edge, patches } => {
                let mut s = format!("buf:{cap}:{edge}:{}", hex(data));
                for p in patches {
                    let _ = write!(s, ":@{:#x}/{}={}", p.off, p.width, p.val.fmt());
                }
                s
            }
        }
    }
    fn parse(s: &str) -> Result<Arg, String> {
        if let Some(r) = s.strip_prefix("int:") {
            return Ok(Arg::Int(num(r)?));
        }
        if let Some(r) = s.strip_prefix("addr:") {
            return Ok(Arg::Addr(Val::parse(r)?));
        }
        let r = s.strip_prefix("buf:").ok_or_else(|| format!("bad arg {s:?}"))?;
        let mut it = r.split(':');
        let cap = num(it.next().ok_or("buf: cap")?)? as u32;
        let edge = num(it.next().ok_or("buf: edge")?)? as u32;
        let data = unhex(it.next().ok_or("buf: data")?)?;
        let mut patches = Vec::new();
        for p in it {
            let p = p.strip_prefix('@').ok_or("patch: want @OFF/W=VAL")?;
            let (ow, v) = p.split_once('=').ok_or("patch: want =")?;
            let (o, w) = ow.split_once('/').ok_or("patch: want /W")?;
            patches.push(Patch { off: num(o)? as u32, width: num(w)? as u8, val: Val::parse(v)? });
        }
        Ok(Arg::Buf { data, cap, edge, patches })
    }
}

impl Op {
    pub fn label(&self) -> String {
        match self {
            Op::Ioctl { label, .. } => label.clone(),
            Op::Run { .. } => "RUN".into(),
            Op::Race { kind, .. } => format!("race/{}", crate::race::NAMES.get(*kind as usize).unwrap_or(&"?")),
            Op::Fork { .. } => "fork".into(),
            Op::Open { kind, .. } => format!("open/{kind}"),
            Op::Close { .. } => "close".into(),
            Op::Mmap { .. } => "mmap".into(),
            Op::Unmap { .. } => "munmap".into(),
            Op::Madvise { .. } => "madvise".into(),
            Op::Write { .. } => "write".into(),
            Op::VcpuMap { .. } => "mmap-vcpu".into(),
            Op::EfdWrite { .. } => "eventfd-write".into(),
        }
    }

    pub fn to_line(&self) -> String {
        match self {
            Op::Open { slot, kind } => format!("open s{slot} {kind}"),
            Op::Close { slot } => format!("close s{slot}"),
            Op::Mmap { mem, len, kind } => format!("mmap m{mem} {len:#x} {kind}"),
            Op::Unmap { mem } => format!("unmap m{mem}"),
            Op::Madvise { mem, off, len, advice } => format!("madvise m{mem} {off:#x} {len:#x} {advice}"),
            Op::Write { mem, off, data } => format!("write m{mem} {off:#x} {}", hex(data)),
            Op::VcpuMap { mem, slot, pages, pgoff } => format!("vcpumap m{mem} s{slot} {pages} {pgoff}"),
            Op::Ioctl { fd, cmd, arg, store, label } => {
                let f = match fd {
                    FdRef::Slot(s) => format!("s{s}"),
                    FdRef::Raw(r) => format!("raw{r}"),
                };
                let st = store.map(|s| format!(" store=s{s}")).unwrap_or_default();
                format!("ioctl {f} {cmd:#x} {}{st} # {label}", arg.fmt())
            }
            Op::Run { slot, mem, imm, usecs } => {
                let m = mem.map(|m| format!("m{m}")).unwrap_or_else(|| "-".into());
                format!("run s{slot} {m} {} {usecs}", *imm as u8)
            }
            Op::EfdWrite { slot, val } => format!("efdwrite s{slot} {val:#x}"),
            Op::Race { kind, seed, ms } => format!("race {kind} {seed:#x} {ms}"),
            Op::Fork { seed } => format!("fork {seed:#x}"),
        }
    }

    pub fn parse(line: &str) -> Result<Op, String> {
        let (body, label) = match line.split_once(" # ") {
            Some((b, l)) => (b, l.trim().to_string()),
            None => (line, String::new()),
        };
        let t: Vec<&str> = body.split_whitespace().collect();
        let arg = |i: usize| t.get(i).copied().ok_or_else(|| format!("{line:?}: missing field {i}"));
        Ok(match arg(0)? {
            "open" => Op::Open { slot: slot(arg(1)?, 's')?, kind: arg(2)?.into() },
            "close" => Op::Close { slot: slot(arg(1)?, 's')? },
            "mmap" => Op::Mmap { mem: slot(arg(1)?, 'm')?, len: num(arg(2)?)?, kind: arg(3)?.into() },
            "unmap" => Op::Unmap { mem: slot(arg(1)?, 'm')? },
            "madvise" => Op::Madvise {
                mem: slot(arg(1)?, 'm')?,
                off: num(arg(2)?)?,
                len: num(arg(3)?)?,
                advice: arg(4)?.parse().map_err(|e| format!("{e}"))?,
            },
            "write" => Op::Write { mem: slot(arg(1)?, 'm')?, off: num(arg(2)?)?, data: unhex(arg(3)?)? },
            "vcpumap" => Op::VcpuMap {
                mem: slot(arg(1)?, 'm')?,
                slot: slot(arg(2)?, 's')?,
                pages: num(arg(3)?)?,
                pgoff: num(arg(4)?)?,
            },
            "ioctl" => {
                let f = arg(1)?;
                let fd = if let Some(r) = f.strip_prefix("raw") {
                    FdRef::Raw(r.parse().map_err(|e| format!("{f}: {e}"))?)
                } else {
                    FdRef::Slot(slot(f, 's')?)
                };
                let store = match t.get(4) {
                    Some(s) => Some(slot(s.strip_prefix("store=").ok_or("want store=sN")?, 's')?),
                    None => None,
                };
                Op::Ioctl { fd, cmd: num(arg(2)?)? as u32, arg: Arg::parse(arg(3)?)?, store, label }
            }
            "run" => Op::Run {
                slot: slot(arg(1)?, 's')?,
                mem: if arg(2)? == "-" { None } else { Some(slot(arg(2)?, 'm')?) },
                imm: arg(3)? == "1",
                usecs: num(arg(4)?)? as u32,
            },
            "efdwrite" => Op::EfdWrite { slot: slot(arg(1)?, 's')?, val: num(arg(2)?)? },
            "race" => Op::Race { kind: num(arg(1)?)? as u32, seed: num(arg(2)?)?, ms: num(arg(3)?)? as u32 },
            "fork" => Op::Fork { seed: num(arg(1)?)? },
            o => return Err(format!("unknown op {o:?}")),
        })
    }
}

/// A program as text: a header comment and one op per line.
pub fn to_text(header: &str, ops: &[Op]) -> String {
    let mut s = String::new();
    for l in header.lines() {
        let _ = writeln!(s, "# {l}");
    }
    for o in ops {
        s.push_str(&o.to_line());
        s.push('\n');
    }
    s
}

pub fn from_text(text: &str) -> Result<Vec<Op>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(Op::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip() {
        let ops = vec![
            Op::Open { slot: 0, kind: "kvm".into() },
            Op::Ioctl {
                fd: FdRef::Slot(1),
                cmd: 0x4020ae46,
                arg: Arg::Buf {
                    data: vec![1, 2, 3],
                    cap: 32,
                    edge: 4,
                    patches: vec![Patch { off: 24, width: 8, val: Val::Mem(2, 0x10) }, Patch { off: 0, width: 4, val: Val::Fd(3) }],
                },
                store: Some(4),
                label: "SET_USER_MEMORY_REGION/x".into(),
            },
            Op::Ioctl { fd: FdRef::Raw(-1), cmd: 1, arg: Arg::Addr(Val::Guard(8)), store: None, label: "x".into() },
            Op::Run { slot: 2, mem: Some(1), imm: true, usecs: 500 },
            Op::Run { slot: 2, mem: None, imm: false, usecs: 500 },
            Op::Write { mem: 0, off: 0x1000, data: vec![0xf4] },
            Op::Race { kind: 3, seed: 0xdead, ms: 20 },
        ];
        let t = to_text("seed 1", &ops);
        assert_eq!(from_text(&t).unwrap(), ops);
    }
}
