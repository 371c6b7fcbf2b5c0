//! Test results as lines the host harness parses:
//! `PASS <name>`, `FAIL <name>: <why>`, `SKIP <name>: <why>`.

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
}

impl Report {
    pub fn new(set: Set) -> Self {
        Self { set, failed: 0 }
    }

    /// Records the outcome of test `name`.
    pub fn check(&mut self, name: &str, r: Result<(), String>) {
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
        println!("SKIP {name}: {why}");
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
