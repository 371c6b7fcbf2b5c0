//! SKIP for host tests that cannot run on this machine (a differential test
//! whose reference is missing here): the test returns after calling
//! [`skip`], which libtest counts as passed; scripts/check.sh reads the
//! file named by RKVM_HOST_SKIPS and counts the test as skipped instead,
//! with the reason in its output.
//!
//! Member crates include it with `#[path = "../../skip.rs"] mod skip;`.

use std::io::Write;

/// Records that test `name` (its function name) did not run, and why.
pub fn skip(name: &str, why: &str) {
    println!("SKIP {name}: {why}");
    if let Some(path) = std::env::var_os("RKVM_HOST_SKIPS") {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        match f.and_then(|mut f| writeln!(f, "{name}\t{why}")) {
            Ok(()) => {}
            Err(e) => panic!("cannot record the SKIP of {name} in {}: {e}", path.to_string_lossy()),
        }
    }
}
