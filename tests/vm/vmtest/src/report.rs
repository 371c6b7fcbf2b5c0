//! Test results as lines the host harness parses:
//! `PASS <name>`, `FAIL <name>: <why>`, `SKIP <name>: <why>`.
//!
//! With `--list` the same code walks every test without running any and
//! prints `ROW <name>` for each: the manifest scripts/check.sh holds each
//! column's results against.

use std::fmt::Display;

/// Which module set the tests run against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Set {
    Ours,
    InTree,
}

pub struct Report {
    pub set: Set,
    pub failed: usize,
    /// `--list`: print the rows, run nothing.
    pub listing: bool,
}

impl Report {
    pub fn new(set: Set, listing: bool) -> Self {
        Self { set, failed: 0, listing }
    }

    /// Runs test `name` (unless listing) and records its outcome.
    pub fn check(&mut self, name: &str, f: impl FnOnce() -> Result<(), String>) {
        if self.listing {
            println!("ROW {name}");
            return;
        }
        self.record(name, f());
    }

    /// Records the outcome `r` of test `name`, which already ran.
    pub fn record(&mut self, name: &str, r: Result<(), String>) {
        match r {
            Ok(()) => println!("PASS {name}"),
            Err(e) => {
                self.failed += 1;
                println!("FAIL {name}: {}", e.replace('\n', " | "));
            }
        }
    }

    /// Records test `name` as not applicable to this module set.
    pub fn skip(&mut self, name: &str, why: &str) {
        if self.listing {
            println!("ROW {name}");
        } else {
            println!("SKIP {name}: {why}");
        }
    }
}

/// `Err` unless `got == want`.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Turns any displayable error into the test's failure text.
pub fn ctx<T, E: Display>(what: &str, r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}
