//! Guest suites: tiny guests with clear expected exits (issue 3 onwards).
//! Run with every module loaded, after the system-ioctl tests.

use crate::report::Report;

/// Runs every guest suite.
pub fn run(_r: &mut Report) {}
