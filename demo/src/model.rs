//! What a generated day is made of: commits, pull requests and their heads, runs, jobs, OOT
//! results and report uploads — plain records the planner ([`crate::day`]) fills and the
//! renderers ([`crate::github`], [`crate::requests`]) read.

use crate::day::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Queued,
    InProgress,
    Completed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub username: String,
}

impl Person {
    pub fn email(&self) -> String {
        format!("{}@users.noreply.github.com", self.username)
    }
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub sha: String,
    /// The previous commit of main (40 zeros for the first).
    pub before: String,
    pub message: String,
    pub author: Person,
    pub timestamp_ms: i64,
    pub pushed_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Head {
    pub sha: String,
    pub pushed_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: i64,
    pub title: String,
    pub author: Person,
    pub branch: String,
    /// Oldest first; the last is the current head.
    pub heads: Vec<Head>,
    pub base_sha: String,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub id: i64,
    /// The highest attempt (2 once a job was rerun).
    pub attempts: i64,
    pub run_number: i64,
    pub workflow: String,
    pub workflow_id: i64,
    pub head_sha: String,
    pub head_branch: String,
    /// `push` or `pull_request`.
    pub event: &'static str,
    pub pull: Option<i64>,
    pub message: String,
    pub actor: Person,
    pub created_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    /// Index into [`Day::runs`].
    pub run: usize,
    pub attempt: i64,
    pub name: String,
    pub head_sha: String,
    pub created_ms: i64,
    pub started_ms: i64,
    pub completed_ms: i64,
    pub failed: bool,
    /// Index into [`Options::logs`] of the log uploaded for a failure.
    pub log: Option<usize>,
    pub runner_label: &'static str,
}

impl Job {
    /// Where the job is at `at`.
    pub fn state(&self, at: i64) -> State {
        if self.completed_ms <= at {
            State::Completed
        } else if self.started_ms <= at {
            State::InProgress
        } else {
            State::Queued
        }
    }
}

#[derive(Debug, Clone)]
pub struct OotJob {
    pub backend: &'static str,
    pub job_name: &'static str,
    pub pr: i64,
    pub head_sha: String,
    pub check_run_id: i64,
    pub run_id: i64,
    pub started_ms: i64,
    pub completed_ms: i64,
    pub failed: bool,
    pub tests: (u64, u64, u64),
}

/// A report to upload: index into the available reports, for [`Day::jobs`]`[job]`.
#[derive(Debug, Clone, Copy)]
pub struct ReportUpload {
    pub report: usize,
    pub job: usize,
}

#[derive(Debug, Clone)]
pub struct Day {
    pub options: Options,
    pub commits: Vec<Commit>,
    pub pulls: Vec<Pull>,
    pub runs: Vec<Run>,
    pub jobs: Vec<Job>,
    pub oot: Vec<OotJob>,
    pub reports: Vec<ReportUpload>,
}
