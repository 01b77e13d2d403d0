//! Loading the hot window from ClickHouse: at start (every watched branch's newest commits,
//! their jobs with verdicts, the repositories' issues) and for a commit that enters a window
//! from the log, whose jobs the log may hold only in part. Rows are offered by version like
//! the log's records, so a load and the log may interleave in any order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use hudstream_runtime::clickhouse::DateTime;

use super::{Branch, HeldJob, Model, Verdict, Window};
use crate::commit::CommitRow;
use crate::unstable::UnstableIssue;

/// A row of `hot_window_commits.sql`.
#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize)]
pub struct LoadedCommit {
    pub sha: String,
    pub version: u64,
    pub message: String,
    pub author_name: String,
    pub author_username: String,
    pub timestamp: DateTime,
    pub pushed_at: DateTime,
    pub url: String,
}

/// A row of `hot_window_jobs.sql`.
#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize)]
pub struct LoadedJob {
    pub head_sha: String,
    pub id: i64,
    pub version: u64,
    pub run_attempt: i64,
    pub workflow_name: String,
    pub name: String,
    pub status: String,
    pub conclusion: String,
    pub duration_s: Option<f64>,
    pub html_url: String,
    pub verdict_version: u64,
    pub failure_outcome: String,
    pub failure_rule: String,
    pub failure_line: String,
    pub failure_line_number: i64,
    pub failure_captures: Vec<String>,
}

/// A row of `hot_window_issues.sql`.
#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize)]
pub struct LoadedIssue {
    pub number: i64,
    pub version: u64,
    pub title: String,
    pub state: String,
    pub deleted: bool,
    pub html_url: String,
}

impl Model {
    /// A branch's newest commits as ClickHouse has them (`capacity + 1` asked for).
    pub fn load_branch(&mut self, branch: Branch, rows: Vec<LoadedCommit>) {
        let capacity = self.limits.commits;
        let window = self.windows.entry(branch).or_insert_with(|| Window {
            commits: HashMap::new(),
            order: BTreeSet::new(),
            complete: true,
        });
        let loaded = rows.len();
        for c in rows {
            let version = c.version;
            window.offer(commit_row(c), version, capacity);
        }
        // More rows than the capacity: older commits exist.
        if loaded > capacity {
            window.complete = false;
        }
        self.recount_windows();
    }

    /// Every commit's window count, from the windows (after a bulk load).
    fn recount_windows(&mut self) {
        for c in self.commits.values_mut() {
            c.windows = 0;
        }
        for (branch, window) in &self.windows {
            for sha in window.commits.keys() {
                self.commits
                    .entry((branch.repository.clone(), sha.clone()))
                    .or_default()
                    .windows += 1;
            }
        }
    }

    /// The commits whose jobs must be read (every held commit after a bulk load).
    pub fn held_commits(&self, repository: &str) -> Vec<String> {
        self.commits
            .keys()
            .filter(|(r, _)| r == repository)
            .map(|(_, sha)| sha.clone())
            .collect()
    }

    /// The repositories with a window.
    pub fn repositories(&self) -> Vec<String> {
        let set: BTreeSet<String> = self.windows.keys().map(|b| b.repository.clone()).collect();
        set.into_iter().collect()
    }

    /// Jobs (with verdicts) of held commits, as ClickHouse has them; ends `loading` for
    /// `finished` commits.
    pub fn load_jobs(&mut self, repository: &str, rows: Vec<LoadedJob>, finished: &[String]) {
        for row in rows {
            let job = HeldJob {
                version: row.version,
                run_attempt: row.run_attempt,
                workflow_name: self.name(&row.workflow_name),
                name: self.name(&row.name),
                status: self.name(&row.status),
                conclusion: self.name(&row.conclusion),
                duration_s: row.duration_s,
                html_url: row.html_url,
            };
            // The job first: its verdict then goes with it, not among the orphans.
            self.offer_job(repository, &row.head_sha, row.id, job);
            if row.verdict_version > 0 {
                self.offer_verdict(
                    (repository.to_string(), row.id),
                    Verdict {
                        version: row.verdict_version,
                        outcome: row.failure_outcome,
                        rule: row.failure_rule,
                        line: row.failure_line,
                        line_number: row.failure_line_number,
                        captures: row.failure_captures,
                    },
                );
            }
        }
        for sha in finished {
            if let Some(c) = self.commits.get_mut(&(repository.to_string(), sha.clone())) {
                c.loading = false;
            }
        }
    }

    /// A repository's issues, as ClickHouse has them.
    pub fn load_issues(&mut self, repository: &str, rows: Vec<LoadedIssue>) {
        self.issues_loaded.insert(repository.to_string());
        let issues = self.issues.entry(repository.to_string()).or_default();
        for row in rows {
            offer_issue(issues, row);
        }
    }
}

pub(super) fn offer_issue(
    issues: &mut BTreeMap<i64, (u64, Option<UnstableIssue>)>,
    row: LoadedIssue,
) {
    if issues
        .get(&row.number)
        .is_some_and(|(v, _)| *v >= row.version)
    {
        return;
    }
    // unstable_issues.sql's rule.
    let unstable = (row.state == "open" && !row.deleted && row.title.starts_with("UNSTABLE "))
        .then(|| UnstableIssue {
            number: row.number,
            title: row.title,
            html_url: row.html_url,
        });
    issues.insert(row.number, (row.version, unstable));
}

fn commit_row(c: LoadedCommit) -> CommitRow {
    CommitRow {
        sha: c.sha,
        message: c.message,
        author_name: c.author_name,
        author_username: c.author_username,
        timestamp: c.timestamp,
        pushed_at: c.pushed_at,
        url: c.url,
    }
}
