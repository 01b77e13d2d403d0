//! A generated day of one busy repository's CI, sent exactly as GitHub and the OOT relays would
//! send it — the day `hud up` (and `hudstream feed --demo`) shows a newcomer.
//!
//! The day is shaped like the real day of pytorch jobs in
//! `reference/datasets/pytorch_jobs_2024-08-14.csv` ([`dataset`]): its most frequent job names
//! with each name's own failure rate, commits arriving as its jobs did. [`day`] plans it —
//! commits pushed to main with every job's queued → in progress → completed, reruns that turn
//! failures flaky, a stretch where one test job broke trunk, pull requests with several heads,
//! OOT results from two backends, real failing logs and test reports for the failed and tested
//! jobs. [`github`] renders GitHub's own objects and webhook bodies, [`requests`] the requests
//! in the order they happened.
//!
//! **Deterministic and idempotent.** Every choice is a keyed hash of the seed; every instant is
//! relative to the anchor (the sender rounds "now" down to ten minutes), ids and delivery ids
//! come from the seed alone. Sending the same day twice sends the same bytes, which the
//! pipeline's content versions turn into the same rows; a later anchor moves the same jobs
//! later in time without adding any.

pub mod dataset;
pub mod day;
pub mod github;
pub mod model;
pub mod requests;

pub use dataset::{DatasetError, DayShape};
pub use day::{Day, Options, Planner, State, DEMO_REPOSITORY};
pub use requests::Request;

/// Plans the day for `options` from the dataset's `shape`.
pub fn generate(shape: &DayShape, options: Options) -> Day {
    Planner::plan(shape, options)
}

/// How the day's main grid must look once everything sent is visible: per commit of main,
/// every job name a cell; `done` cells have their attempt 1 completed; `failed` cells show a
/// failure (the failed job is their newest finished run), `flaky` ones a rerun that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GridExpectation {
    pub commits: usize,
    pub cells: usize,
    pub done: usize,
    pub failed: usize,
    pub flaky: usize,
}

impl Day {
    pub fn main_grid(&self) -> GridExpectation {
        let at = self.options.anchor_ms;
        let mut e = GridExpectation {
            commits: self.commits.len(),
            ..Default::default()
        };
        let main: std::collections::HashSet<&str> =
            self.commits.iter().map(|c| c.sha.as_str()).collect();
        for first in self.jobs.iter().filter(|j| j.attempt == 1) {
            // A job GitHub has not created by the anchor has no cell yet.
            if !main.contains(first.head_sha.as_str()) || first.created_ms > at {
                continue;
            }
            e.cells += 1;
            if first.state(at) != State::Completed {
                continue;
            }
            e.done += 1;
            let rerun = self
                .jobs
                .iter()
                .find(|j| j.attempt == 2 && j.run == first.run && j.name == first.name);
            match rerun {
                Some(r) if r.state(at) == State::Completed && !r.failed => e.flaky += 1,
                _ if first.failed => e.failed += 1,
                _ => {}
            }
        }
        e
    }
}

#[cfg(test)]
mod tests;
