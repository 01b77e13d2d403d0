//! JUnit-family test reports, read as a stream.
//!
//! [`parse`] reads a report once, forward, and hands each `<testcase>` to the caller as soon as
//! it is complete ([`TestCase`]), then answers the report's [`Summary`]. Memory is bounded by
//! [`Limits`], never by the report's size: values are cut (and the case flagged), and no XML
//! node is held longer than `max_node_bytes`. Every dialect the reference fixtures hold
//! parses — pytest (xunit1, xunit2), unittest, Surefire with `flakyFailure`/`rerunFailure`,
//! pytest-rerunfailures' `<rerun>`, repeated test cases, nested suites, Jest, Mocha, PHPUnit,
//! Swift, CUnit, Perl, empty reports — and what is not a report fails with the reason and the
//! byte where it was found ([`ParseError`]).
//!
//! [`status`] is torchci's rule for a test's status in a job from all its runs.

mod case;
mod guard;
mod parser;
pub mod status;

pub use case::{Limits, Outcome, Problem, Summary, TestCase};
pub use parser::{parse, ParseError, Stop};
