//! Dr.CI's rules: the class of each job of a PR head, as a pure function of what is known.
//!
//! The checks run in torchci's order (`getWorkflowJobsStatuses`, `reference/torchci.md` §6.5),
//! the first that holds deciding:
//!
//! 1. `action_required` / `startup_failure` → **awaiting_approval**;
//! 2. no conclusion yet → **pending**;
//! 3. success, skipped, neutral → **success**; a success after failed attempts of the same job
//!    → **flaky** ("passed on rerun");
//! 4. a failure (failure, timed_out, cancelled):
//!    a. a PR label suppresses the job (`suppress-bc-linter` for `bc_linter`) → flaky;
//!    b. an open `UNSTABLE` issue names the job → **unstable**;
//!    c. lint jobs → **new_failure** (never excused);
//!    d. the same failure on the merge base → **broken_trunk** (torchci's `isSameFailure`:
//!    the shard-stripped name, the conclusion and the captures equal, the first context
//!    command Jaro–Winkler ≥ 0.95 — or the same failure signature);
//!    e. jobs excluded from flakiness (docs, build, sanity checks…) → new_failure;
//!    f. a failure with no failure line and no runner → flaky (infra);
//!    g. no log or no line found in it → flaky (torchci re-classifies; we say so);
//!    h. its failing tests are all disabled by open `DISABLED` issues → flaky;
//!    i. the same signature on other commits in the window → flaky, with the evidence; or
//!    every failing test (by file, class and name) failed in other jobs in the window;
//!    j. otherwise → **new_failure**.
//!
//! One divergence: a failure whose log has not been classified *yet* is **pending** ("waiting
//! for the log's verdict") rather than torchci's flaky-and-backfill — hudstream classifies
//! every failed job's log within seconds, so the class settles by itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::unstable::{unstable_issue, UnstableIssue};

/// torchci's `STRING_SIMILARITY_THRESHOLD`.
pub const CONTEXT_SIMILARITY: f64 = 0.95;

/// torchci's `EXCLUDED_FROM_FLAKINESS`.
pub const EXCLUDED_FROM_FLAKINESS: &[&str] = &[
    "lint",
    "linux-docs",
    "ghstack-mergeability-check",
    "backwards_compat",
    "pr-sanity-checks",
    "/ build",
    "check labels",
];

/// torchci's `EXCLUDED_FROM_BROKEN_TRUNK`.
pub const EXCLUDED_FROM_BROKEN_TRUNK: &[&str] = &["lint"];

/// torchci's `SUPPRESSED_JOB_BY_LABELS`.
pub const SUPPRESSED_BY_LABELS: &[(&str, &[&str])] = &[(
    "bc_linter",
    &["suppress-bc-linter", "suppress-api-compatibility-check"],
)];

/// A job's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    NewFailure,
    BrokenTrunk,
    Flaky,
    Unstable,
    AwaitingApproval,
    Pending,
    Success,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::NewFailure,
        Class::BrokenTrunk,
        Class::Flaky,
        Class::Unstable,
        Class::AwaitingApproval,
        Class::Pending,
        Class::Success,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::NewFailure => "new_failure",
            Class::BrokenTrunk => "broken_trunk",
            Class::Flaky => "flaky",
            Class::Unstable => "unstable",
            Class::AwaitingApproval => "awaiting_approval",
            Class::Pending => "pending",
            Class::Success => "success",
        }
    }

    /// Whether the class is a failure the PR's author need not fix.
    pub fn is_unrelated_failure(self) -> bool {
        matches!(self, Class::BrokenTrunk | Class::Flaky | Class::Unstable)
    }
}

/// The log verdict of a failed job, as Dr.CI compares it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// `matched`, `no_match`, `log_gone`, `log_unavailable`; '' when not classified yet.
    pub outcome: String,
    pub rule: String,
    pub line: String,
    pub captures: Vec<String>,
    pub context: Vec<String>,
    pub signature: String,
}

/// One job (the newest attempt of a name on a commit), as Dr.CI sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    /// `workflow / job`.
    pub name: String,
    pub conclusion: String,
    pub runner_name: String,
    pub verdict: Verdict,
    /// Earlier attempts of the same job that failed (ids).
    pub failed_attempts: Vec<i64>,
    pub run_attempt: i64,
    /// The job's failing tests (file, classname, name), from its test reports.
    pub failing_tests: Vec<(String, String, String)>,
}

/// The evidence for a class, for the API and the comment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// The same failure on the merge base.
    MergeBase {
        sha: String,
        job_id: i64,
        job_name: String,
        rule: String,
        captures: Vec<String>,
    },
    /// The same signature elsewhere.
    SimilarFailures {
        signature: String,
        jobs: u64,
        commits: u64,
        branches: Vec<String>,
        example_job_ids: Vec<i64>,
        first_seen: Option<String>,
        last_seen: Option<String>,
    },
    /// Every failing test of the job failed in other jobs too.
    SimilarTests {
        tests: Vec<String>,
        jobs: u64,
        commits: u64,
    },
    /// Passed on a later attempt.
    Rerun {
        failed_attempt_ids: Vec<i64>,
        passed_attempt: i64,
    },
    /// An issue marks the job unstable or its tests disabled.
    Issue {
        number: i64,
        title: String,
        url: String,
    },
    /// A PR label suppresses the job.
    Label { labels: Vec<String> },
}

/// A job's class, the reason in words and the evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub class: Class,
    pub reason: String,
    pub evidence: Option<Evidence>,
}

/// What is known of other places a signature was seen (`signature_matches.sql`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignatureSeen {
    pub jobs: u64,
    pub commits: u64,
    pub branches: Vec<String>,
    pub example_job_ids: Vec<i64>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// A test a DISABLED issue disables, and the issue.
#[derive(Debug, Clone, PartialEq)]
pub struct DisabledBy {
    pub number: i64,
    pub title: String,
    pub url: String,
}

/// Where else a failing test (file, classname, name) failed in the window: (jobs, commits).
pub type TestsSeen<'a> = dyn Fn(&str, &str, &str) -> Option<(u64, u64)> + 'a;

/// Everything besides the job that the rules read.
pub struct Known<'a> {
    pub pr_labels: &'a [String],
    pub unstable: &'a [UnstableIssue],
    /// The merge base's sha and its jobs, failed ones with their verdicts.
    pub merge_base: Option<(&'a str, &'a [Job])>,
    /// Signatures seen on other commits in the window.
    pub similar: &'a BTreeMap<String, SignatureSeen>,
    /// The window the similar failures were looked for in, in days (for the reason).
    pub similar_days: i64,
    /// Which issue disables a failing test, if any: (file, classname, name) → issue.
    pub disabled: &'a dyn Fn(&str, &str, &str) -> Option<DisabledBy>,
    /// Where else a failing test failed in the window: (file, classname, name) → (jobs,
    /// commits), none if nowhere.
    pub tests_seen: &'a TestsSeen<'a>,
}

impl<'a> Known<'a> {
    /// Nothing known but where signatures were seen and which tests are disabled.
    pub fn new(
        similar: &'a BTreeMap<String, SignatureSeen>,
        disabled: &'a dyn Fn(&str, &str, &str) -> Option<DisabledBy>,
    ) -> Self {
        Known {
            pr_labels: &[],
            unstable: &[],
            merge_base: None,
            similar,
            similar_days: 7,
            disabled,
            tests_seen: &|_, _, _| None,
        }
    }
}

fn is_failure(conclusion: &str) -> bool {
    matches!(conclusion, "failure" | "timed_out" | "cancelled")
}

/// torchci's `removeJobNameSuffix`: `test (default, 1, 5, linux.2xlarge)` → `test (default)`.
pub fn shard_stripped(name: &str) -> String {
    // /, [0-9]+, [0-9]+, .+\)/ → ")"
    let bytes = name.as_bytes();
    let mut i = 0;
    while let Some(pos) = name[i..].find(", ") {
        let start = i + pos;
        let rest = &name[start + 2..];
        let digits1 = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits1 > 0 && rest[digits1..].starts_with(", ") {
            let rest2 = &rest[digits1 + 2..];
            let digits2 = rest2.bytes().take_while(u8::is_ascii_digit).count();
            if digits2 > 0 && rest2[digits2..].starts_with(", ") {
                let tail = &rest2[digits2 + 2..];
                // `.+\)`: at least one character, then the last ')' (greedy).
                if let Some(close) = tail.rfind(')') {
                    if close >= 1 {
                        return format!("{}){}", &name[..start], &tail[close + 1..]);
                    }
                }
            }
        }
        i = start + 1;
        if i >= bytes.len() {
            break;
        }
    }
    name.to_string()
}

fn contains_any(name: &str, needles: &[&str]) -> bool {
    let lower = name.to_lowercase();
    needles.iter().any(|n| lower.contains(&n.to_lowercase()))
}

/// torchci's `isSameContext`: both without context, or first commands alike (Jaro–Winkler,
/// case-insensitive).
fn same_context(a: &[String], b: &[String]) -> bool {
    match (a.first(), b.first()) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            strsim::jaro_winkler(&a.to_lowercase(), &b.to_lowercase()) >= CONTEXT_SIMILARITY
        }
        _ => false,
    }
}

/// torchci's `isSameFailure`, or the same failure signature, for jobs of the same
/// shard-stripped name.
pub fn same_failure(a: &Job, b: &Job) -> bool {
    if a.name.is_empty() || shard_stripped(&a.name) != shard_stripped(&b.name) {
        return false;
    }
    if a.conclusion != b.conclusion {
        return false;
    }
    let signed = !a.verdict.signature.is_empty() && a.verdict.signature == b.verdict.signature;
    signed
        || (a.verdict.captures == b.verdict.captures
            && same_context(&a.verdict.context, &b.verdict.context))
}

fn decided(class: Class, reason: impl Into<String>, evidence: Option<Evidence>) -> Decision {
    Decision {
        class,
        reason: reason.into(),
        evidence,
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// The class of `job`, given what is `known`.
pub fn classify(job: &Job, known: &Known<'_>) -> Decision {
    let conclusion = job.conclusion.as_str();
    if matches!(conclusion, "action_required" | "startup_failure") {
        return decided(
            Class::AwaitingApproval,
            "the workflow waits for a maintainer's approval",
            None,
        );
    }
    if conclusion.is_empty() || conclusion == "pending" || conclusion == "queued" {
        let reason = match unstable_issue(&job.name, known.unstable) {
            Some(issue) => format!("not finished yet (and unstable, issue #{})", issue.number),
            None => "not finished yet".to_string(),
        };
        return decided(Class::Pending, reason, None);
    }
    if !is_failure(conclusion) {
        if !job.failed_attempts.is_empty() {
            return decided(
                Class::Flaky,
                format!("failed, then passed on rerun (attempt {})", job.run_attempt),
                Some(Evidence::Rerun {
                    failed_attempt_ids: job.failed_attempts.clone(),
                    passed_attempt: job.run_attempt,
                }),
            );
        }
        return decided(Class::Success, conclusion, None);
    }
    // (a) suppressed by a PR label.
    for (job_key, labels) in SUPPRESSED_BY_LABELS {
        if job.name.contains(job_key) {
            let on: Vec<String> = labels
                .iter()
                .filter(|l| known.pr_labels.iter().any(|p| p == *l))
                .map(|l| l.to_string())
                .collect();
            if !on.is_empty() {
                return decided(
                    Class::Flaky,
                    format!("suppressed by {}", on.join(", ")),
                    Some(Evidence::Label { labels: on }),
                );
            }
        }
    }
    // (b) unstable.
    if job.name.to_ascii_lowercase().contains("unstable") {
        return decided(
            Class::Unstable,
            "the job is marked unstable in its name",
            None,
        );
    }
    if let Some(issue) = unstable_issue(&job.name, known.unstable) {
        return decided(
            Class::Unstable,
            format!("job is unstable, issue #{}", issue.number),
            Some(Evidence::Issue {
                number: issue.number,
                title: issue.title.clone(),
                url: issue.html_url.clone(),
            }),
        );
    }
    // (c) lint is never excused.
    if contains_any(&job.name, EXCLUDED_FROM_BROKEN_TRUNK) {
        return decided(
            Class::NewFailure,
            "lint jobs are stable: a lint failure is the PR's",
            None,
        );
    }
    // Not classified yet: wait for the verdict (see the module doc).
    if job.verdict.outcome.is_empty()
        && !job.runner_name.is_empty()
        && matches!(conclusion, "failure" | "timed_out")
    {
        return decided(
            Class::Pending,
            "failed; waiting for its log's verdict",
            None,
        );
    }
    // (d) broken trunk.
    if let Some((base_sha, base_jobs)) = known.merge_base {
        if let Some(base) = base_jobs
            .iter()
            .find(|b| is_failure(&b.conclusion) && same_failure(job, b))
        {
            let captures = if base.verdict.captures.is_empty() {
                String::new()
            } else {
                format!(", captures {}", base.verdict.captures.join(" | "))
            };
            return decided(
                Class::BrokenTrunk,
                format!(
                    "same failure on merge base {}: rule '{}'{captures}",
                    short(base_sha),
                    base.verdict.rule
                ),
                Some(Evidence::MergeBase {
                    sha: base_sha.to_string(),
                    job_id: base.id,
                    job_name: base.name.clone(),
                    rule: base.verdict.rule.clone(),
                    captures: base.verdict.captures.clone(),
                }),
            );
        }
    }
    // (e) excluded from flakiness.
    if contains_any(&job.name, EXCLUDED_FROM_FLAKINESS) {
        let ran_on_base = known.merge_base.is_some_and(|(_, jobs)| {
            let name = shard_stripped(&job.name);
            jobs.iter().any(|b| shard_stripped(&b.name) == name)
        });
        let reason = if ran_on_base {
            "this job is not checked for flakiness, and the merge base does not fail it"
        } else {
            "this job is not checked for flakiness and did not run on the merge base"
        };
        return decided(Class::NewFailure, reason, None);
    }
    // (f) infra: no failure line and no runner.
    if conclusion == "failure" && job.verdict.line.is_empty() && job.runner_name.is_empty() {
        return decided(
            Class::Flaky,
            "infra flaky: failed with no runner and no failure line",
            None,
        );
    }
    // (g) no log, or nothing found in it.
    if conclusion == "failure" && job.verdict.line.is_empty() {
        let why = match job.verdict.outcome.as_str() {
            "log_gone" => "its log is gone from GitHub",
            "log_unavailable" => "its log could not be read",
            "" => "its log has not been classified",
            _ => "no rule matched its log",
        };
        return decided(Class::Flaky, format!("infra flaky: {why}"), None);
    }
    // (h) disabled tests.
    if !job.failing_tests.is_empty() {
        let issues: Vec<(String, DisabledBy)> = job
            .failing_tests
            .iter()
            .filter_map(|(file, class, name)| {
                (known.disabled)(file, class, name).map(|i| (name.clone(), i))
            })
            .collect();
        if issues.len() == job.failing_tests.len() {
            let (test, issue) = &issues[0];
            return decided(
                Class::Flaky,
                format!("test {test} is disabled, issue #{}", issue.number),
                Some(Evidence::Issue {
                    number: issue.number,
                    title: issue.title.clone(),
                    url: issue.url.clone(),
                }),
            );
        }
    }
    // (i) the same signature elsewhere.
    if let Some(seen) = known
        .similar
        .get(&job.verdict.signature)
        .filter(|s| s.jobs > 0)
    {
        let branches = match seen.branches.len() {
            0 => String::new(),
            n => format!(
                " on {n} other {} ({})",
                if n == 1 { "branch" } else { "branches" },
                seen.branches.join(", ")
            ),
        };
        return decided(
            Class::Flaky,
            format!(
                "same signature in {} other {} of {} other {}{branches} in the last {} days",
                seen.jobs,
                if seen.jobs == 1 { "job" } else { "jobs" },
                seen.commits,
                if seen.commits == 1 {
                    "commit"
                } else {
                    "commits"
                },
                known.similar_days
            ),
            Some(Evidence::SimilarFailures {
                signature: job.verdict.signature.clone(),
                jobs: seen.jobs,
                commits: seen.commits,
                branches: seen.branches.clone(),
                example_job_ids: seen.example_job_ids.clone(),
                first_seen: seen.first_seen.clone(),
                last_seen: seen.last_seen.clone(),
            }),
        );
    }
    // (i') every failing test failed elsewhere too (by test id: file, class and name).
    if !job.failing_tests.is_empty() {
        let seen: Vec<(u64, u64)> = job
            .failing_tests
            .iter()
            .filter_map(|(file, class, name)| (known.tests_seen)(file, class, name))
            .collect();
        if seen.len() == job.failing_tests.len() {
            let jobs = seen.iter().map(|s| s.0).max().unwrap_or(0);
            let commits = seen.iter().map(|s| s.1).max().unwrap_or(0);
            let first = &job.failing_tests[0].2;
            let tests = if job.failing_tests.len() == 1 {
                format!("test {first}")
            } else {
                format!("tests {first} and {} more", job.failing_tests.len() - 1)
            };
            return decided(
                Class::Flaky,
                format!(
                    "{tests} failed in {jobs} other {} of {commits} other {} in the last {} days",
                    if jobs == 1 { "job" } else { "jobs" },
                    if commits == 1 { "commit" } else { "commits" },
                    known.similar_days
                ),
                Some(Evidence::SimilarTests {
                    tests: job
                        .failing_tests
                        .iter()
                        .map(|(f, c, n)| format!("{f}::{c}::{n}"))
                        .collect(),
                    jobs,
                    commits,
                }),
            );
        }
    }
    decided(
        Class::NewFailure,
        "not seen on the merge base nor anywhere else",
        None,
    )
}

#[cfg(test)]
#[path = "drci_rules_tests.rs"]
mod tests;
