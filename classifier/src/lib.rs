//! The log rule engine: which line of a CI log explains the failure.
//!
//! It reproduces torchci's log classifier (`aws/lambda/log-classifier`) verdict for verdict —
//! the same preprocessing, the same "best rule wins, and within it the last matching line",
//! the same captures and context — but reads the log as a stream and does not try every rule
//! on every line. A [`Ruleset`] compiles all patterns into one multi-line `RegexSet` that is
//! run over chunks of preprocessed lines; only when it reports a rule that could still beat
//! the current best does that single rule look for its last line in the chunk. The cost thus
//! grows with the log's size, hardly with the number of rules, and memory stays at one chunk.
//!
//! The crate does no I/O of its own beyond the reader it is handed: fetching, storing and
//! publishing verdicts belong to the `hudstream-logs` stages.

pub mod engine;
pub mod fixture;
pub mod preprocess;
pub mod ruleset;

pub use engine::{classify_naive, Match, Options, Verdict};
pub use ruleset::{Rule, Ruleset, RulesetError, RulesetFile};

/// Recorded with every verdict, next to the ruleset's hash, so a verdict says what produced it.
pub const ENGINE_VERSION: &str = concat!("hudstream-classifier/", env!("CARGO_PKG_VERSION"));
