//! One definition per constant, checked on the source text:
//!
//! * every constant name in pure/defs is defined once (names are unique
//!   across all of defs, so modules can be glob-imported together);
//! * no other pure component defines a constant of the same name (the
//!   duplicates defs replaced stay gone), and no name is defined twice
//!   anywhere in pure/;
//! * no other pure component spells a defs MSR index as a bare number;
//! * where upstream Linux defines the same name, the value is upstream's:
//!   MSR indices and bits, register bits, vectors, page-table bits, PFERR,
//!   time units, every `X86_FEATURE_*` (word and bit, through upstream's
//!   `enum cpuid_leafs` and KVM's `KVM_X86_FEATURE()` words), the
//!   `LNX_*`/`X86_BUG_*` numbers, and `Leaf::linux_word`. This part needs
//!   the Linux 7.3 source: `RKVM_KERNELSRC=<dir>`, else `KERNELSRC` from
//!   the repository's config.mak (written by ./configure); without either
//!   it is skipped with a note.
//!
//! `cargo test -p rkvm-defs -- --ignored` also lists the constants the
//! kernel side (x86/, virt/, rust/) still defines although defs has them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use rkvm_defs::defs::cpuid::{Feature, Leaf, ALL_LEAVES};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn rel(p: &Path) -> String {
    let root = repo().canonicalize().unwrap();
    let p = p.canonicalize().unwrap();
    p.strip_prefix(&root).unwrap().display().to_string()
}

// --- Rust source: constant definitions ------------------------------------------

/// A `const NAME: TYPE = EXPR;` item.
#[derive(Clone, Debug)]
struct RsConst {
    file: String,
    module: String,
    name: String,
    ty: String,
    expr: String,
}

/// Strips `//` comments (the sources have no `//` inside strings that
/// matter here).
fn code_only(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every `const NAME: TYPE = EXPR;` in `src` (any indentation, `pub` or
/// not), upper-case names only (`const fn` is not an item of interest).
fn rs_consts(file: &Path, module: &str) -> Vec<RsConst> {
    let src = code_only(&fs::read_to_string(file).unwrap());
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while let Some(off) = src[i..].find("const ") {
        let at = i + off;
        i = at + 6;
        if at > 0 && is_ident(b[at - 1] as char) {
            continue;
        }
        let rest = &src[i..];
        let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let after = rest[name.len()..].trim_start();
        let Some(after) = after.strip_prefix(':') else {
            continue;
        };
        let Some(eq) = after.find('=') else { continue };
        let ty = after[..eq].trim().to_string();
        let body = &after[eq + 1..];
        let Some(semi) = body.find(';') else { continue };
        out.push(RsConst {
            file: rel(file),
            module: module.to_string(),
            name,
            ty,
            expr: body[..semi]
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        });
    }
    out
}

/// The feature rows of defs/cpuid/features.rs: `(name, leaf, bit)`.
fn feature_rows() -> Vec<(String, String, u8)> {
    let src = fs::read_to_string(repo().join("pure/defs/cpuid/features.rs")).unwrap();
    let mut leaf = String::new();
    let mut out = Vec::new();
    for line in src.lines() {
        let t = line.trim();
        if let Some(r) = t.strip_prefix("features! {") {
            leaf = r.trim().trim_end_matches(':').to_string();
        } else if t.starts_with("X86_FEATURE_") {
            let (name, rest) = t.split_once('=').unwrap();
            let bit: u8 = rest.split(',').next().unwrap().trim().parse().unwrap();
            out.push((name.trim().to_string(), leaf.clone(), bit));
        }
    }
    assert!(out.len() > 300, "feature rows not found");
    out
}

/// All constants of pure/defs, with the module path they live in.
fn defs_consts() -> Vec<RsConst> {
    let mut files = Vec::new();
    rs_files(&repo().join("pure/defs"), &mut files);
    let mut out = Vec::new();
    for f in &files {
        let r = rel(f);
        let module = r
            .trim_start_matches("pure/")
            .trim_end_matches(".rs")
            .trim_end_matches("/mod")
            .replace('/', "::");
        // Re-exported into defs::cpuid.
        let module = module.replace("defs::cpuid::features", "defs::cpuid");
        let module = module.replace("defs::cpuid::linux", "defs::cpuid");
        out.extend(rs_consts(f, &module));
    }
    for (name, leaf, bit) in feature_rows() {
        out.push(RsConst {
            file: "pure/defs/cpuid/features.rs".into(),
            module: "defs::cpuid".into(),
            name,
            ty: "Feature".into(),
            expr: format!("Feature::new(Leaf::{leaf}, {bit})"),
        });
    }
    out
}

// --- Expression evaluation (Rust and C integer constant expressions) -------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(u64),
    Id(String),
    Op(String),
}

fn lex(s: &str) -> Option<Vec<Tok>> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let lit: String = c[start..i].iter().filter(|&&x| x != '_').collect();
            let lit = lit.to_ascii_lowercase();
            let (digits, radix) = match lit.strip_prefix("0x") {
                Some(h) => (h.trim_end_matches(['u', 'l']).to_string(), 16),
                None => {
                    let d = lit.trim_end_matches(['u', 'l']);
                    let d = d.trim_end_matches("usize").trim_end_matches("u64");
                    let d = d.trim_end_matches("u32").trim_end_matches("u8");
                    (d.to_string(), 10)
                }
            };
            let digits = if radix == 16 {
                digits
                    .trim_end_matches("usize")
                    .trim_end_matches("u64")
                    .trim_end_matches("u32")
                    .to_string()
            } else {
                digits
            };
            out.push(Tok::Num(u64::from_str_radix(&digits, radix).ok()?));
        } else if is_ident(ch) {
            let start = i;
            while i < c.len() && (is_ident(c[i]) || (c[i] == ':' && c.get(i + 1) == Some(&':'))) {
                i += if c[i] == ':' { 2 } else { 1 };
            }
            out.push(Tok::Id(c[start..i].iter().collect()));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            if ["<<", ">>", "&&", "||", "==", "!="].contains(&two.as_str()) {
                out.push(Tok::Op(two));
                i += 2;
            } else if "|&^+-*/%~!(),?:".contains(ch) {
                out.push(Tok::Op(ch.to_string()));
                i += 1;
            } else {
                return None;
            }
        }
    }
    Some(out)
}

/// Integer expression evaluator: precedence climbing over `u64` with
/// wrapping arithmetic; names resolve through `lookup`; a few kernel
/// macros are built in. `None` for anything it does not understand.
struct Eval<'a> {
    toks: Vec<Tok>,
    pos: usize,
    lookup: &'a dyn Fn(&str) -> Option<u64>,
    c: bool,
}

const C_TYPES: &[&str] = &[
    "u8",
    "u16",
    "u32",
    "u64",
    "unsigned",
    "long",
    "int",
    "signed",
    "char",
    "short",
    "pteval_t",
    "phys_addr_t",
    "gpa_t",
    "gfn_t",
];

impl Eval<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek() == Some(&Tok::Op(op.into())) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn prec(op: &str) -> Option<u32> {
        Some(match op {
            "||" => 1,
            "&&" => 2,
            "|" => 3,
            "^" => 4,
            "&" => 5,
            "==" | "!=" => 6,
            "<<" | ">>" => 7,
            "+" | "-" => 8,
            "*" | "/" | "%" => 9,
            _ => return None,
        })
    }

    fn expr(&mut self, min: u32) -> Option<u64> {
        let mut lhs = self.unary()?;
        loop {
            // Rust casts bind tighter than any binary operator.
            if let Some(Tok::Id(id)) = self.peek() {
                if id == "as" && !self.c {
                    self.pos += 2;
                    continue;
                }
            }
            let Some(Tok::Op(op)) = self.peek().cloned() else {
                break;
            };
            let Some(p) = Self::prec(&op) else { break };
            if p < min {
                break;
            }
            self.pos += 1;
            let rhs = self.expr(p + 1)?;
            lhs = match op.as_str() {
                "||" => u64::from(lhs != 0 || rhs != 0),
                "&&" => u64::from(lhs != 0 && rhs != 0),
                "|" => lhs | rhs,
                "^" => lhs ^ rhs,
                "&" => lhs & rhs,
                "==" => u64::from(lhs == rhs),
                "!=" => u64::from(lhs != rhs),
                "<<" => lhs.checked_shl(u32::try_from(rhs).ok()?).unwrap_or(0),
                ">>" => lhs.checked_shr(u32::try_from(rhs).ok()?).unwrap_or(0),
                "+" => lhs.wrapping_add(rhs),
                "-" => lhs.wrapping_sub(rhs),
                "*" => lhs.wrapping_mul(rhs),
                "/" => lhs.checked_div(rhs)?,
                "%" => lhs.checked_rem(rhs)?,
                _ => return None,
            };
        }
        Some(lhs)
    }

    fn args(&mut self) -> Option<Vec<u64>> {
        let mut v = Vec::new();
        if self.eat(")") {
            return Some(v);
        }
        loop {
            v.push(self.expr(0)?);
            if self.eat(")") {
                return Some(v);
            }
            if !self.eat(",") {
                return None;
            }
        }
    }

    fn unary(&mut self) -> Option<u64> {
        let t = self.peek().cloned()?;
        self.pos += 1;
        match t {
            Tok::Num(n) => Some(n),
            Tok::Op(op) if op == "~" => Some(!self.unary()?),
            Tok::Op(op) if op == "!" && !self.c => Some(!self.unary()?),
            Tok::Op(op) if op == "!" => Some(u64::from(self.unary()? == 0)),
            Tok::Op(op) if op == "-" => Some(self.unary()?.wrapping_neg()),
            Tok::Op(op) if op == "(" => {
                // A C cast: `(u64)`, `(unsigned long)`, ...
                if self.c {
                    let save = self.pos;
                    let mut n = 0;
                    while let Some(Tok::Id(id)) = self.peek() {
                        if !C_TYPES.contains(&id.as_str()) {
                            break;
                        }
                        self.pos += 1;
                        n += 1;
                    }
                    if n > 0 && self.eat(")") {
                        return self.unary();
                    }
                    self.pos = save;
                }
                let v = self.expr(0)?;
                self.eat(")").then_some(v)
            }
            Tok::Id(id) => {
                let last = id.rsplit("::").next().unwrap().to_string();
                if self.eat("(") {
                    let a = self.args()?;
                    let bit = |n: u64| 1u64.checked_shl(u32::try_from(n).ok()?);
                    let genmask = |h: u64, l: u64| {
                        let hi = if h >= 63 {
                            u64::MAX
                        } else {
                            (1u64 << (h + 1)) - 1
                        };
                        Some(hi & !((1u64 << l) - 1))
                    };
                    return match (last.as_str(), a.as_slice()) {
                        ("BIT" | "BIT_ULL" | "_BITUL" | "_BITULL", [n]) => bit(*n),
                        ("BIT_MASK", [n]) => bit(n % 64),
                        ("GENMASK" | "GENMASK_ULL", [h, l]) => genmask(*h, *l),
                        ("_AC", [x, _]) | ("_UL" | "_ULL", [x]) => Some(*x),
                        ("X86_BUG", [x]) => Some((self.lookup)("NCAPINTS")? * 32 + x),
                        ("KVM_X86_FEATURE", [w, b]) => Some(w * 32 + b),
                        _ => None,
                    };
                }
                if self.c && C_TYPES.contains(&last.as_str()) {
                    return None;
                }
                (self.lookup)(&last)
            }
            _ => None,
        }
    }
}

fn eval(expr: &str, c: bool, lookup: &dyn Fn(&str) -> Option<u64>) -> Option<u64> {
    // `_AC(3,UL)`: the second argument is a suffix, not a value.
    let expr = expr.replace(",UL)", ",0)").replace(", UL)", ", 0)");
    let expr = expr.replace(",ULL)", ",0)").replace(", ULL)", ", 0)");
    let mut e = Eval {
        toks: lex(&expr)?,
        pos: 0,
        lookup,
        c,
    };
    let v = e.expr(0)?;
    (e.pos == e.toks.len()).then_some(v)
}

fn type_mask(ty: &str) -> Option<u64> {
    Some(match ty {
        "u8" | "Gpr" => 0xff,
        "u16" => 0xffff,
        "u32" => 0xffff_ffff,
        "u64" | "usize" => u64::MAX,
        _ => return None,
    })
}

/// Integer values of the defs constants (and `LinuxFeature` numbers).
fn rust_values(consts: &[RsConst]) -> BTreeMap<String, u64> {
    let by_name: BTreeMap<&str, &RsConst> = consts.iter().map(|c| (c.name.as_str(), c)).collect();
    let leaves: BTreeMap<String, Leaf> =
        ALL_LEAVES.iter().map(|l| (format!("{l:?}"), *l)).collect();
    let mut vals = BTreeMap::new();
    fn value(
        name: &str,
        by_name: &BTreeMap<&str, &RsConst>,
        leaves: &BTreeMap<String, Leaf>,
        depth: u32,
    ) -> Option<u64> {
        let c = by_name.get(name)?;
        if depth > 20 {
            return None;
        }
        let look = |n: &str| value(n, by_name, leaves, depth + 1);
        let e = c.expr.as_str();
        if c.ty == "LinuxFeature" {
            if let Some(a) = e.strip_prefix("LinuxFeature::new(") {
                let (w, b) = a.trim_end_matches(')').split_once(',')?;
                return Some(eval(w, false, &look)? * 32 + eval(b, false, &look)?);
            }
            if let Some(a) = e.strip_prefix("LinuxFeature::bug(") {
                return Some(look("NCAPINTS")? * 32 + eval(a.trim_end_matches(')'), false, &look)?);
            }
            if let Some(a) = e.strip_prefix("hw(") {
                let f = a.trim_end_matches(')').rsplit("::").next()?;
                let fc = by_name.get(f)?;
                let (leaf, bit) = feature_of(&fc.expr, leaves)?;
                return Feature::new(leaf, bit).linux().map(|l| u64::from(l.0));
            }
            return None;
        }
        let m = type_mask(&c.ty)?;
        Some(eval(e, false, &look)? & m)
    }
    for c in consts {
        if c.ty == "Feature" {
            continue;
        }
        if let Some(v) = value(&c.name, &by_name, &leaves, 0) {
            vals.insert(c.name.clone(), v);
        }
    }
    vals
}

fn feature_of(expr: &str, leaves: &BTreeMap<String, Leaf>) -> Option<(Leaf, u8)> {
    let a = expr.strip_prefix("Feature::new(Leaf::")?;
    let (l, b) = a.trim_end_matches(')').split_once(',')?;
    Some((*leaves.get(l.trim())?, b.trim().parse().ok()?))
}

// --- Upstream headers ----------------------------------------------------------------

fn kernel_src() -> Option<PathBuf> {
    if let Ok(d) = std::env::var("RKVM_KERNELSRC") {
        return Some(PathBuf::from(d));
    }
    let mak = fs::read_to_string(repo().join("config.mak")).ok()?;
    mak.lines()
        .find_map(|l| l.strip_prefix("KERNELSRC="))
        .map(|d| PathBuf::from(d.trim()))
}

const HEADERS: &[&str] = &[
    "arch/x86/include/asm/cpufeatures.h",
    "arch/x86/include/asm/cpufeature.h",
    "arch/x86/include/asm/msr-index.h",
    "arch/x86/include/asm/perf_event.h",
    "arch/x86/include/uapi/asm/kvm_para.h",
    "arch/x86/include/uapi/asm/processor-flags.h",
    "arch/x86/include/uapi/asm/kvm.h",
    "arch/x86/include/uapi/asm/debugreg.h",
    "arch/x86/include/uapi/asm/mtrr.h",
    "arch/x86/include/asm/debugreg.h",
    "arch/x86/include/asm/irq_vectors.h",
    "arch/x86/include/asm/apicdef.h",
    "arch/x86/include/asm/mce.h",
    "arch/x86/include/asm/mtrr.h",
    "arch/x86/include/asm/fpu/types.h",
    "arch/x86/include/asm/fpu/xcr.h",
    "arch/x86/include/asm/kvm_host.h",
    "arch/x86/kvm/reverse_cpuid.h",
    "arch/x86/kvm/regs.h",
    "arch/x86/kvm/mmu.h",
    "arch/x86/kvm/x86.h",
    "arch/x86/kvm/msrs.h",
    "include/vdso/time64.h",
    "include/linux/units.h",
];

/// Object-like `#define`s and enum constants of `HEADERS`: name ->
/// expressions (a name defined in several `#if` branches has several).
/// Enum constants without an initializer get `<previous> + 1`.
fn upstream_defs(src: &Path) -> BTreeMap<String, Vec<String>> {
    let mut defs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in HEADERS {
        let text = fs::read_to_string(src.join(h)).unwrap_or_else(|e| panic!("{h}: {e}"));
        let text = strip_c_comments(&text.replace("\\\n", " "));
        for line in text.lines() {
            let t = line.trim_start();
            let Some(r) = t.strip_prefix('#') else {
                continue;
            };
            let Some(r) = r.trim_start().strip_prefix("define") else {
                continue;
            };
            let r = r.trim_start();
            let name: String = r.chars().take_while(|&c| is_ident(c)).collect();
            if name.is_empty() || r[name.len()..].starts_with('(') {
                continue;
            }
            let e = r[name.len()..].trim().to_string();
            if !e.is_empty() {
                defs.entry(name).or_default().push(e);
            }
        }
        let mut rest = text.as_str();
        while let Some(i) = rest.find("enum ") {
            rest = &rest[i + 5..];
            let Some(open) = rest.find('{') else { break };
            if rest[..open].contains(';') {
                continue;
            }
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let body = &rest[open + 1..open + close];
            let mut prev: Option<String> = None;
            for item in body.split(',') {
                let item: String = item
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .collect::<Vec<_>>()
                    .join(" ");
                let item = item.trim();
                if item.is_empty() {
                    continue;
                }
                let (name, e) = match item.split_once('=') {
                    Some((n, e)) => (n.trim().to_string(), e.trim().to_string()),
                    None => (
                        item.to_string(),
                        match &prev {
                            Some(p) => format!("{p} + 1"),
                            None => "0".to_string(),
                        },
                    ),
                };
                if !name.chars().all(is_ident) {
                    prev = None;
                    continue;
                }
                defs.entry(name.clone()).or_default().push(e);
                prev = Some(name);
            }
            rest = &rest[open + close..];
        }
    }
    defs
}

fn strip_c_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        match rest[i..].find("*/") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out,
        }
    }
    out.push_str(rest);
    out.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every value `name` can have upstream (one per evaluable definition).
fn upstream_values(defs: &BTreeMap<String, Vec<String>>, name: &str, depth: u32) -> Vec<u64> {
    if depth > 30 {
        return Vec::new();
    }
    let Some(exprs) = defs.get(name) else {
        return Vec::new();
    };
    let look = |n: &str| upstream_values(defs, n, depth + 1).first().copied();
    let mut v: Vec<u64> = exprs.iter().filter_map(|e| eval(e, true, &look)).collect();
    v.dedup();
    v
}

/// `(function, index, register)` of an upstream `CPUID_*` word name, or
/// `None` for Linux-defined words (`CPUID_LNX_*`).
fn cpuid_word(name: &str) -> Option<(u32, u32, String)> {
    let parts: Vec<&str> = name.strip_prefix("CPUID_")?.split('_').collect();
    let (reg, nums) = parts.split_last()?;
    if !reg.starts_with('E') {
        return None;
    }
    let (func, idx) = match nums {
        [a, b, rest @ ..] if a.len() == 4 && b.len() == 4 => (
            u32::from_str_radix(&format!("{a}{b}"), 16).ok()?,
            rest.first().copied(),
        ),
        [a, rest @ ..] => (u32::from_str_radix(a, 16).ok()?, rest.first().copied()),
        [] => return None,
    };
    let idx = match idx {
        Some(i) => u32::from_str_radix(i, 16).ok()?,
        None => 0,
    };
    let r = reg.to_ascii_lowercase();
    let mut reg = r[..1].to_ascii_uppercase();
    reg.push_str(&r[1..]);
    Some((func, idx, reg))
}

// --- The tests ------------------------------------------------------------------------

#[test]
fn every_defs_name_is_defined_once() {
    let consts = defs_consts();
    let mut seen: BTreeMap<&str, &RsConst> = BTreeMap::new();
    let mut dups = Vec::new();
    for c in &consts {
        if let Some(first) = seen.insert(&c.name, c) {
            dups.push(format!("{} in {} and {}", c.name, first.file, c.file));
        }
    }
    assert!(
        dups.is_empty(),
        "defined twice in defs:\n{}",
        dups.join("\n")
    );
    assert!(consts.len() > 500, "only {} constants found", consts.len());
}

#[test]
fn no_pure_component_redefines_a_defs_constant() {
    let names: BTreeSet<String> = defs_consts().into_iter().map(|c| c.name).collect();
    let mut files = Vec::new();
    rs_files(&repo().join("pure"), &mut files);
    let mut dups = Vec::new();
    for f in files.iter().filter(|f| !rel(f).starts_with("pure/defs/")) {
        for c in rs_consts(f, "") {
            if names.contains(&c.name) {
                dups.push(format!("{}: {}", c.file, c.name));
            }
        }
    }
    assert!(dups.is_empty(), "already in defs:\n{}", dups.join("\n"));
}

/// Across the whole pure layer (defs and every component), a constant
/// name is defined once: two `const`s of one name are either the same
/// definition twice or two things that need telling apart.
#[test]
fn every_pure_constant_name_is_defined_once() {
    let mut files = Vec::new();
    rs_files(&repo().join("pure"), &mut files);
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let mut dups = Vec::new();
    for f in &files {
        for c in rs_consts(f, "") {
            if let Some(first) = seen.insert(c.name.clone(), c.file.clone()) {
                dups.push(format!("{} in {first} and {}", c.name, c.file));
            }
        }
    }
    assert!(
        dups.is_empty(),
        "defined twice in pure/:\n{}",
        dups.join("\n")
    );
}

#[test]
fn no_pure_component_spells_a_defs_msr_as_a_number() {
    let consts = defs_consts();
    let vals = rust_values(&consts);
    // Indices of 0x1000 and up: long enough not to mean anything else.
    let msrs: Vec<(String, u64)> = consts
        .iter()
        .filter(|c| c.name.starts_with("MSR_") && c.ty == "u32")
        .filter_map(|c| Some((c.name.clone(), *vals.get(&c.name)?)))
        .filter(|(_, v)| *v >= 0x1000)
        .collect();
    let mut files = Vec::new();
    rs_files(&repo().join("pure"), &mut files);
    let mut hits = Vec::new();
    for f in files.iter().filter(|f| !rel(f).starts_with("pure/defs/")) {
        let code = code_only(&fs::read_to_string(f).unwrap());
        let toks: BTreeSet<u64> = code
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter_map(|w| {
                let h = w.strip_prefix("0x").or_else(|| w.strip_prefix("0X"))?;
                u64::from_str_radix(&h.replace('_', ""), 16).ok()
            })
            .collect();
        for (name, v) in &msrs {
            if toks.contains(v) {
                hits.push(format!("{}: {v:#x} is {name}", rel(f)));
            }
        }
    }
    assert!(hits.is_empty(), "bare MSR numbers:\n{}", hits.join("\n"));
}

#[test]
fn values_match_upstream() {
    let Some(src) = kernel_src().filter(|s| s.join(HEADERS[0]).exists()) else {
        eprintln!("values_match_upstream: skipped, no Linux source (set RKVM_KERNELSRC)");
        return;
    };
    let up = upstream_defs(&src);
    let up_upper: BTreeMap<String, &String> =
        up.keys().map(|k| (k.to_ascii_uppercase(), k)).collect();
    let consts = defs_consts();
    let vals = rust_values(&consts);
    let leaves: BTreeMap<String, Leaf> =
        ALL_LEAVES.iter().map(|l| (format!("{l:?}"), *l)).collect();
    // Word number -> CPUID register, from enum cpuid_leafs and KVM's
    // enum kvm_only_cpuid_leafs.
    let mut words: BTreeMap<u64, String> = BTreeMap::new();
    for k in up.keys().filter(|k| k.starts_with("CPUID_")) {
        if let Some(&w) = upstream_values(&up, k, 0).first() {
            if w < 64 {
                words.insert(w, k.clone());
            }
        }
    }
    assert!(words.len() > 30, "enum cpuid_leafs not parsed: {words:?}");

    let mut bad = Vec::new();
    let mut checked = 0;
    let mut unevaluable = Vec::new();
    for c in &consts {
        if c.ty == "Feature" {
            // Upstream's number of the same feature: KVM's own definition
            // for features the kernel scatters or synthesizes.
            let short = c.name.trim_start_matches("X86_FEATURE_");
            let up_name = ["KVM_X86_FEATURE_", "X86_FEATURE_"]
                .iter()
                .map(|p| format!("{p}{short}"))
                .find(|n| up.contains_key(n));
            let Some(up_name) = up_name else { continue };
            let (leaf, bit) = feature_of(&c.expr, &leaves).unwrap();
            let Some(&v) = upstream_values(&up, &up_name, 0).first() else {
                unevaluable.push(up_name);
                continue;
            };
            checked += 1;
            let (func, idx, reg) = leaf.cpuid();
            let want = (func, idx, format!("{reg:?}"));
            match words.get(&(v / 32)).and_then(|w| cpuid_word(w)) {
                Some(got) if got == want && v % 32 == u64::from(bit) => {}
                got => bad.push(format!(
                    "{}: rkvm {:?} bit {bit}, upstream {up_name} = word {} ({:?}) bit {}",
                    c.name,
                    want,
                    v / 32,
                    got,
                    v % 32
                )),
            }
            continue;
        }
        let up_name = match c.name.strip_prefix("LNX_") {
            Some(rest) => format!("X86_FEATURE_{rest}"),
            None => c.name.clone(),
        };
        let Some(orig) = up_upper.get(&up_name.to_ascii_uppercase()) else {
            continue;
        };
        let Some(&mine) = vals.get(&c.name) else {
            bad.push(format!("{}: cannot evaluate `{}`", c.name, c.expr));
            continue;
        };
        let theirs = upstream_values(&up, orig, 0);
        if theirs.is_empty() {
            unevaluable.push((*orig).clone());
            continue;
        }
        checked += 1;
        if !theirs.contains(&mine) {
            bad.push(format!(
                "{}: rkvm {mine:#x}, upstream {orig} {theirs:x?}",
                c.name
            ));
        }
    }
    // Leaf::linux_word against enum cpuid_leafs.
    for leaf in ALL_LEAVES {
        let (func, idx, reg) = leaf.cpuid();
        let want = (func, idx, format!("{reg:?}"));
        let upstream_word = words
            .iter()
            .find(|(w, n)| **w < 22 && cpuid_word(n).as_ref() == Some(&want))
            .map(|(w, _)| *w as u32);
        checked += 1;
        if leaf.linux_word() != upstream_word {
            bad.push(format!(
                "{leaf:?}: linux_word {:?}, upstream {upstream_word:?}",
                leaf.linux_word()
            ));
        }
    }
    eprintln!(
        "values_match_upstream: {checked} checked against {}; not evaluable upstream: {unevaluable:?}",
        src.display()
    );
    assert!(checked > 600, "only {checked} values checked");
    assert!(bad.is_empty(), "differ from upstream:\n{}", bad.join("\n"));
}

/// MSR indices are unique within defs except where upstream itself has
/// two names for one MSR (`MSR_P6_PERFCTR0` = `MSR_ARCH_PERFMON_PERFCTR0`).
#[test]
fn one_name_per_msr_unless_upstream_aliases_it() {
    let consts = defs_consts();
    let vals = rust_values(&consts);
    let mut by_val: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for c in consts
        .iter()
        .filter(|c| c.name.starts_with("MSR_") && c.ty == "u32")
    {
        by_val.entry(vals[&c.name]).or_default().push(&c.name);
    }
    let aliases: &[&[&str]] = &[
        &["MSR_P6_PERFCTR0", "MSR_ARCH_PERFMON_PERFCTR0"],
        &["MSR_ARCH_PERFMON_EVENTSEL0", "MSR_P6_EVNTSEL0"],
    ];
    for (v, names) in by_val {
        if names.len() > 1 {
            assert!(
                aliases.contains(&names.as_slice()),
                "MSR {v:#x} has several names: {names:?}"
            );
        }
    }
    if let Some(src) = kernel_src().filter(|s| s.join(HEADERS[0]).exists()) {
        let up = upstream_defs(&src);
        for a in aliases {
            let v: Vec<Vec<u64>> = a.iter().map(|n| upstream_values(&up, n, 0)).collect();
            assert!(
                v.windows(2).all(|w| w[0] == w[1] && !w[0].is_empty()),
                "{a:?}: {v:x?}"
            );
        }
    }
}

/// The kernel side's own copies of constants defs has: run with
/// `--ignored` to list them (`file: NAME -> defs::module::NAME`); it
/// fails while any is left.
#[test]
#[ignore]
fn kernel_side_duplicates() {
    let consts = defs_consts();
    let module: BTreeMap<&str, &str> = consts
        .iter()
        .map(|c| (c.name.as_str(), c.module.as_str()))
        .collect();
    let mut files = Vec::new();
    for d in ["x86", "virt", "rust"] {
        rs_files(&repo().join(d), &mut files);
    }
    let mut dups = Vec::new();
    for f in &files {
        for c in rs_consts(f, "") {
            if let Some(m) = module.get(c.name.as_str()) {
                dups.push(format!("{}: {} -> {m}::{}", c.file, c.name, c.name));
            }
        }
    }
    for d in &dups {
        println!("{d}");
    }
    assert!(
        dups.is_empty(),
        "{} kernel-side duplicates of defs constants",
        dups.len()
    );
}
