//! The Dr.CI answer (`GET /api/drci/{owner}/{repo}/{number}`): per head of a PR, every job
//! with its class, the reason and the evidence, and how many jobs are in each class. Built by
//! `drci.rs`, rendered as a comment by `drci_comment.rs` and on the PR page.

use serde::{Deserialize, Serialize};

use crate::drci_rules::{Class, Evidence};

/// How a head's merge base was chosen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergeBase {
    pub sha: String,
    pub pushed_at: Option<String>,
    /// `base_branch_push` or `pull_request_base_sha`.
    pub chosen_by: String,
}

/// The failure a job's class was decided on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrciFailure {
    pub rule: String,
    pub line: String,
    pub captures: Vec<String>,
    pub signature: String,
}

/// One job with its class.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrciJob {
    pub id: i64,
    /// `"{workflow} / {job}"`.
    pub name: String,
    pub conclusion: String,
    pub run_attempt: i64,
    pub class: Class,
    pub reason: String,
    pub evidence: Option<Evidence>,
    pub failure: Option<DrciFailure>,
    pub failing_tests: Vec<String>,
    pub html_url: String,
}

/// How many jobs of a head are in each class.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub new_failure: u64,
    pub broken_trunk: u64,
    pub flaky: u64,
    pub unstable: u64,
    pub awaiting_approval: u64,
    pub pending: u64,
    pub success: u64,
}

impl Summary {
    pub(crate) fn add(&mut self, class: Class) {
        *match class {
            Class::NewFailure => &mut self.new_failure,
            Class::BrokenTrunk => &mut self.broken_trunk,
            Class::Flaky => &mut self.flaky,
            Class::Unstable => &mut self.unstable,
            Class::AwaitingApproval => &mut self.awaiting_approval,
            Class::Pending => &mut self.pending,
            Class::Success => &mut self.success,
        } += 1;
    }

    /// "2 new failures, 1 broken trunk, 3 flaky" — the classes that are not success, or
    /// "all N jobs passed".
    pub fn sentence(&self) -> String {
        let parts: Vec<String> = [
            (self.new_failure, "new failure", "new failures"),
            (self.broken_trunk, "broken trunk", "broken trunk"),
            (self.flaky, "flaky", "flaky"),
            (self.unstable, "unstable", "unstable"),
            (
                self.awaiting_approval,
                "awaiting approval",
                "awaiting approval",
            ),
            (self.pending, "pending", "pending"),
        ]
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
        if parts.is_empty() {
            format!("no failures ({} jobs passed)", self.success)
        } else {
            parts.join(", ")
        }
    }
}

/// One head of the PR, classified.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrciHead {
    pub sha: String,
    pub is_head: bool,
    pub first_seen: Option<String>,
    pub merge_base: Option<MergeBase>,
    pub summary: Summary,
    /// New failures first, then broken trunk, flaky, unstable, awaiting approval, pending,
    /// success; by name within a class.
    pub jobs: Vec<DrciJob>,
}

/// The Dr.CI answer for a PR.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Drci {
    pub repository: String,
    pub number: i64,
    pub title: String,
    pub base_ref: String,
    pub head_sha: String,
    /// The newest head's summary.
    pub summary: Summary,
    /// Newest first.
    pub heads: Vec<DrciHead>,
}
