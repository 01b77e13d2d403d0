//! A test's status in one job, from every run of it the job reported (repeated cases in one
//! report, the same test in several reports of the job, retries inside a case): torchci's rule
//! (`reference/test-reports.md` §1).
//!
//! - **success** if no run had a failure, an error, a skip or a rerun;
//! - otherwise **skipped** if any run was skipped;
//! - otherwise **flaky** if some run had neither a failure nor an error;
//! - otherwise **failure**.
//!
//! The API's saved queries apply the same rule in SQL; the tests check both against the real
//! fixtures.

use crate::case::Outcome;

/// A test's status in a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    Success,
    Skipped,
    Flaky,
    Failure,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Skipped => "skipped",
            Status::Flaky => "flaky",
            Status::Failure => "failure",
        }
    }
}

/// One run of a test: how it ended and how many failed attempts it reported inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub outcome: Outcome,
    pub reruns: u32,
}

/// The status of a test from its runs in one job (`None` for no runs).
pub fn status(runs: impl IntoIterator<Item = Run>) -> Option<Status> {
    let (mut any, mut marked, mut skipped, mut clean) = (false, false, false, false);
    for run in runs {
        any = true;
        marked |= run.outcome != Outcome::Passed || run.reruns > 0;
        skipped |= run.outcome == Outcome::Skipped;
        clean |= !run.outcome.is_bad();
    }
    Some(if !any {
        return None;
    } else if !marked {
        Status::Success
    } else if skipped {
        Status::Skipped
    } else if clean {
        Status::Flaky
    } else {
        Status::Failure
    })
}

/// How a test's runs in one job went, counted — what the API's saved queries aggregate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub runs: u64,
    /// Runs that failed or errored.
    pub failures: u64,
    /// Runs skipped.
    pub skips: u64,
    /// Runs that were anything but a clean pass: failed, errored, skipped or retried.
    pub marked: u64,
}

/// The status from counts: the same rule as [`status`] (`None` for no runs).
pub fn from_counts(counts: Counts) -> Option<Status> {
    Some(if counts.runs == 0 {
        return None;
    } else if counts.marked == 0 {
        Status::Success
    } else if counts.skips > 0 {
        Status::Skipped
    } else if counts.runs > counts.failures {
        Status::Flaky
    } else {
        Status::Failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome, reruns: u32) -> Run {
        Run { outcome, reruns }
    }

    #[test]
    fn torchcis_rule() {
        use Outcome::*;
        assert_eq!(
            status([run(Passed, 0), run(Passed, 0)]),
            Some(Status::Success)
        );
        assert_eq!(
            status([run(Passed, 2)]),
            Some(Status::Flaky),
            "passed on a rerun"
        );
        assert_eq!(
            status([run(Failed, 0), run(Passed, 0)]),
            Some(Status::Flaky)
        );
        assert_eq!(
            status([run(Failed, 0), run(Errored, 1)]),
            Some(Status::Failure)
        );
        assert_eq!(
            status([run(Failed, 0), run(Skipped, 0)]),
            Some(Status::Skipped)
        );
        assert_eq!(status([run(Skipped, 0)]), Some(Status::Skipped));
        assert_eq!(
            status([run(Failed, 3)]),
            Some(Status::Failure),
            "every attempt failed"
        );
        assert_eq!(status([]), None);
    }

    proptest::proptest! {
        /// Counting runs and then deciding gives what deciding from the runs gives.
        #[test]
        fn counts_decide_as_the_runs_do(runs in proptest::collection::vec((0u8..4, 0u32..3), 0..8)) {
            let runs: Vec<Run> = runs
                .into_iter()
                .map(|(o, reruns)| Run {
                    outcome: [Outcome::Passed, Outcome::Failed, Outcome::Errored, Outcome::Skipped][o as usize],
                    reruns,
                })
                .collect();
            let counts = Counts {
                runs: runs.len() as u64,
                failures: runs.iter().filter(|r| r.outcome.is_bad()).count() as u64,
                skips: runs.iter().filter(|r| r.outcome == Outcome::Skipped).count() as u64,
                marked: runs
                    .iter()
                    .filter(|r| r.outcome != Outcome::Passed || r.reruns > 0)
                    .count() as u64,
            };
            proptest::prop_assert_eq!(from_counts(counts), status(runs));
        }
    }
}
