//! The hot window's state, and the rules it is kept by: pure, no I/O (the feed in
//! `hot_window::feed` loads and follows; the requests read).
//!
//! What it holds, per watched branch of each repository: the newest `capacity` commits, in
//! `branch_commits.sql`'s order (pushed last first, then newest commit, then sha); every job of
//! those commits at its newest version with its newest verdict; and per repository every issue's
//! newest version, for the open `UNSTABLE` ones. Each fact is the row its projection writes
//! (the records are converted by the projections' own `From`), merged by version, so the order
//! in which the table and the log deliver them does not matter.
//!
//! The invariant that makes a page from memory equal to the page from ClickHouse: a branch's
//! window is always a *prefix* of the branch's order — the `len` newest commits, or all of them
//! (`complete`). A commit that sorts after the last one held is outside and not taken; one that
//! pushes the window over capacity drops the last. A commit that enters the window is
//! `loading` until its jobs have been read from ClickHouse (the log's records of them may be
//! older than where the follower started); a page that shows a loading commit is not answered
//! from memory.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

use hudstream_projections::commit::CommitRow as CommitRecord;
use hudstream_projections::issue::IssueRow;
use hudstream_projections::job_classification::JobClassificationRow;
use hudstream_projections::workflow_job::WorkflowJobRow;
use hudstream_runtime::clickhouse::DateTime;

use crate::commit::CommitRow;
use crate::hud::{CommitCells, FailedTestsRow};
use crate::unstable::UnstableIssue;

mod page;
pub use page::{answer_digest, HotPage, Miss};

/// A branch: repository and full ref (`refs/heads/main`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Branch {
    pub repository: String,
    pub git_ref: String,
}

/// A commit of a repository.
type ShaKey = (String, String);
/// A job of a repository.
type JobKey = (String, i64);
/// `branch_commits.sql`'s order: pushed last first, newest commit first, then by sha.
type Order = (Reverse<DateTime>, Reverse<DateTime>, String);

/// How much the window holds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Commits per branch.
    pub commits: usize,
    /// Jobs kept for commits not (yet) in any window: a job can arrive before its push.
    pub pending_jobs: usize,
}

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

struct HeldCommit {
    version: u64,
    order: Order,
    row: CommitRow,
}

/// One branch's newest commits.
struct Window {
    commits: HashMap<String, HeldCommit>,
    order: BTreeSet<Order>,
    /// Every commit of the branch is held (it has fewer than the capacity).
    complete: bool,
}

/// What offering a commit to a window did to its membership.
#[derive(Debug, Default, PartialEq)]
struct Moved {
    entered: Option<String>,
    left: Vec<String>,
    changed: bool,
}

impl Window {
    fn offer(&mut self, row: CommitRow, version: u64, capacity: usize) -> Moved {
        let mut moved = Moved::default();
        let order: Order = (
            Reverse(row.pushed_at),
            Reverse(row.timestamp),
            row.sha.clone(),
        );
        let was_held = match self.commits.get(&row.sha) {
            Some(held) if held.version >= version => return moved,
            Some(held) => {
                self.order.remove(&held.order);
                Some(held.order.clone())
            }
            None => None,
        };
        // Inside the prefix: before the oldest commit held, or (a newer version of a commit
        // held) not later than where it was — every commit not held sorts after that.
        let inside = self.complete
            || self.order.last().is_some_and(|last| order < *last)
            || was_held.as_ref().is_some_and(|old| order <= *old);
        let was_held = was_held.is_some();
        if !inside {
            // Sorts after the oldest commit held: outside the prefix (or moved out of it).
            if was_held {
                self.commits.remove(&row.sha);
                moved.left.push(row.sha);
                moved.changed = true;
            }
            return moved;
        }
        self.order.insert(order.clone());
        let sha = row.sha.clone();
        self.commits.insert(
            sha.clone(),
            HeldCommit {
                version,
                order,
                row,
            },
        );
        moved.changed = true;
        if !was_held {
            moved.entered = Some(sha);
        }
        while self.order.len() > capacity {
            if let Some(last) = self.order.pop_last() {
                self.commits.remove(&last.2);
                self.complete = false;
                if moved.entered.as_deref() == Some(last.2.as_str()) {
                    moved.entered = None;
                } else {
                    moved.left.push(last.2);
                }
            }
        }
        moved
    }
}

/// A job as a grid cell needs it. Names repeat across thousands of jobs and are shared.
struct HeldJob {
    version: u64,
    run_attempt: i64,
    workflow_name: Arc<str>,
    name: Arc<str>,
    status: Arc<str>,
    conclusion: Arc<str>,
    duration_s: Option<f64>,
    html_url: String,
}

/// A verdict as a grid cell needs it.
#[derive(Clone)]
struct Verdict {
    version: u64,
    outcome: String,
    rule: String,
    line: String,
    line_number: i64,
    captures: Vec<String>,
}

/// The jobs of one commit in at least one window.
#[derive(Default)]
struct CommitJobs {
    /// How many windows hold the commit.
    windows: u32,
    /// Its jobs are being read from ClickHouse (it entered a window from the log).
    loading: bool,
    jobs: HashMap<i64, HeldJob>,
}

/// The test topics whose records change what `grid_failed_tests.sql` answers for a job, and
/// where the log of each stood when the window last heard of the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TestTopic {
    Cases,
    Reports,
}

/// A job's test results as far as the window knows: a generation that moves with every test
/// record of the job, and the log positions ClickHouse must reach before its answer about the
/// job can be kept.
#[derive(Default)]
struct TestMarks {
    generation: u64,
    marks: BTreeMap<(TestTopic, i32), i64>,
}

/// What the feed must read from ClickHouse after applying records.
#[derive(Debug, Default, PartialEq)]
pub struct Wanted {
    /// Commits that entered a window from the log: their jobs.
    pub commits: Vec<ShaKey>,
    /// Repositories that got a window from the log: their issues.
    pub issues: Vec<String>,
}

impl Wanted {
    pub fn is_empty(&self) -> bool {
        self.commits.is_empty() && self.issues.is_empty()
    }
}

/// The hot window.
pub struct Model {
    limits: Limits,
    refs: Vec<String>,
    windows: HashMap<Branch, Window>,
    commits: HashMap<ShaKey, CommitJobs>,
    /// Which commit each held job belongs to.
    job_commit: HashMap<JobKey, String>,
    pending: HashMap<ShaKey, HashMap<i64, HeldJob>>,
    pending_order: VecDeque<(ShaKey, i64)>,
    verdicts: HashMap<JobKey, Verdict>,
    /// Verdicts of jobs not held (yet): bounded like the pending jobs.
    orphan_verdicts: HashMap<JobKey, Verdict>,
    orphan_order: VecDeque<JobKey>,
    /// Per repository, per issue: its newest version, and the issue if it is an open UNSTABLE.
    /// Every repository's issue records are kept (a repository may get a window later).
    issues: HashMap<String, BTreeMap<i64, (u64, Option<UnstableIssue>)>>,
    /// The repositories whose issues have been read from ClickHouse, and those asked for.
    issues_loaded: HashSet<String>,
    issues_asked: HashSet<String>,
    tests: HashMap<JobKey, TestMarks>,
    /// The jobs with marks ClickHouse has not passed yet.
    outstanding: HashSet<JobKey>,
    failed_tests: HashMap<JobKey, (u64, Option<FailedTestsRow>)>,
    /// The grid-cell model: each commit's cells as last merged, under the digest of what they
    /// were merged from (its jobs' and verdicts' versions, its failing tests). Filled by the
    /// pages that show the commit (under the read lock, hence the mutex); merged again when the
    /// digest moves; dropped when the commit leaves the windows.
    cells: std::sync::Mutex<HashMap<ShaKey, (u64, Arc<CommitCells>)>>,
    /// The last offset applied per test topic partition.
    seen: BTreeMap<(TestTopic, i32), i64>,
    /// Per test topic partition: the lowest offset its writers have committed.
    written: BTreeMap<(TestTopic, i32), i64>,
    names: HashSet<Arc<str>>,
}

impl Model {
    /// An empty window over `branches` (names, as `main`).
    pub fn new(branches: &[String], limits: Limits) -> Self {
        Self {
            limits,
            refs: branches.iter().map(|b| format!("refs/heads/{b}")).collect(),
            windows: HashMap::new(),
            commits: HashMap::new(),
            job_commit: HashMap::new(),
            pending: HashMap::new(),
            pending_order: VecDeque::new(),
            verdicts: HashMap::new(),
            orphan_verdicts: HashMap::new(),
            orphan_order: VecDeque::new(),
            issues: HashMap::new(),
            issues_loaded: HashSet::new(),
            issues_asked: HashSet::new(),
            tests: HashMap::new(),
            outstanding: HashSet::new(),
            failed_tests: HashMap::new(),
            cells: Default::default(),
            seen: BTreeMap::new(),
            written: BTreeMap::new(),
            names: HashSet::new(),
        }
    }

    /// The watched refs (`refs/heads/main`).
    pub fn refs(&self) -> &[String] {
        &self.refs
    }

    fn name(&mut self, s: &str) -> Arc<str> {
        if let Some(n) = self.names.get(s) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(s);
        self.names.insert(n.clone());
        n
    }

    // ---- loading (the rebuild, and commits that enter from the log) ----

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

    // ---- the log ----

    /// A commit record (`hud.commit.v1`, as its projection's row).
    pub fn apply_commit(&mut self, record: CommitRecord, wanted: &mut Wanted) {
        if !self.refs.contains(&record.git_ref) {
            return;
        }
        let branch = Branch {
            repository: record.repository_full_name.clone(),
            git_ref: record.git_ref.clone(),
        };
        let repository = branch.repository.clone();
        if !self.windows.contains_key(&branch) {
            // No such branch when the window was loaded: every commit of it is on the log
            // from where the follower started, so the window is complete from the first.
            self.windows.insert(
                branch.clone(),
                Window {
                    commits: HashMap::new(),
                    order: BTreeSet::new(),
                    complete: true,
                },
            );
            if !self.issues_loaded.contains(&repository)
                && self.issues_asked.insert(repository.clone())
            {
                wanted.issues.push(repository.clone());
            }
        }
        let version = record.version;
        let row = CommitRow {
            sha: record.sha,
            message: record.message,
            author_name: record.author_name,
            author_username: record.author_username,
            timestamp: record.timestamp,
            pushed_at: record.pushed_at,
            url: record.url,
        };
        let capacity = self.limits.commits;
        let moved = match self.windows.get_mut(&branch) {
            Some(window) => window.offer(row, version, capacity),
            None => return,
        };
        for sha in moved.left {
            self.leave(&repository, &sha);
        }
        if let Some(sha) = moved.entered {
            let key = (repository.clone(), sha);
            let entry = self.commits.entry(key.clone()).or_default();
            entry.windows += 1;
            if entry.windows == 1 {
                // New to memory: its jobs may be in ClickHouse only.
                entry.loading = true;
                wanted.commits.push(key.clone());
                if let Some(jobs) = self.pending.remove(&key) {
                    for (id, job) in jobs {
                        self.hold(&key.0, &key.1, id, job);
                    }
                }
            }
        }
    }

    fn leave(&mut self, repository: &str, sha: &str) {
        let key = (repository.to_string(), sha.to_string());
        let Some(entry) = self.commits.get_mut(&key) else {
            return;
        };
        entry.windows = entry.windows.saturating_sub(1);
        if entry.windows > 0 {
            return;
        }
        self.cells
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if let Some(entry) = self.commits.remove(&key) {
            for id in entry.jobs.keys() {
                let job = (repository.to_string(), *id);
                self.job_commit.remove(&job);
                self.verdicts.remove(&job);
                self.tests.remove(&job);
                self.outstanding.remove(&job);
                self.failed_tests.remove(&job);
            }
        }
    }

    /// A job record (`hud.workflow_job.v1`, as its projection's row).
    pub fn apply_job(&mut self, record: WorkflowJobRow) {
        let job = HeldJob {
            version: record.version,
            run_attempt: record.run_attempt,
            workflow_name: self.name(&record.workflow_name),
            name: self.name(&record.name),
            status: self.name(&record.status),
            conclusion: self.name(&record.conclusion),
            duration_s: record.duration_s,
            html_url: record.html_url,
        };
        self.offer_job(
            &record.repository_full_name,
            &record.head_sha,
            record.id,
            job,
        );
    }

    fn offer_job(&mut self, repository: &str, sha: &str, id: i64, job: HeldJob) {
        let key = (repository.to_string(), sha.to_string());
        if self.commits.contains_key(&key) {
            self.hold(repository, sha, id, job);
            return;
        }
        let pending = self.pending.entry(key.clone()).or_default();
        match pending.get(&id) {
            Some(held) if held.version >= job.version => {}
            _ => {
                if pending.insert(id, job).is_none() {
                    self.pending_order.push_back((key, id));
                }
            }
        }
        while self.pending_order.len() > self.limits.pending_jobs {
            if let Some((key, id)) = self.pending_order.pop_front() {
                if let Some(jobs) = self.pending.get_mut(&key) {
                    jobs.remove(&id);
                    if jobs.is_empty() {
                        self.pending.remove(&key);
                    }
                }
            }
        }
    }

    fn hold(&mut self, repository: &str, sha: &str, id: i64, job: HeldJob) {
        let key = (repository.to_string(), sha.to_string());
        let Some(entry) = self.commits.get_mut(&key) else {
            return;
        };
        match entry.jobs.get(&id) {
            Some(held) if held.version >= job.version => return,
            _ => {}
        }
        entry.jobs.insert(id, job);
        let job_key = (repository.to_string(), id);
        if self
            .job_commit
            .insert(job_key.clone(), sha.to_string())
            .is_none()
        {
            if let Some(verdict) = self.orphan_verdicts.remove(&job_key) {
                self.offer_verdict(job_key.clone(), verdict);
            }
            // What the window has not seen of this job's tests may still be on its way to
            // ClickHouse: answers about them are kept only once the writers pass this point.
            if !self.seen.is_empty() {
                let marks = self.tests.entry(job_key.clone()).or_default();
                marks.generation += 1;
                for (k, offset) in &self.seen {
                    marks.marks.insert(*k, *offset);
                }
                self.outstanding.insert(job_key);
            }
        }
    }

    /// A verdict record (`hud.job_classification.v1`, as its projection's row).
    pub fn apply_verdict(&mut self, record: JobClassificationRow) {
        let key = (record.repository_full_name.clone(), record.job_id);
        self.offer_verdict(
            key,
            Verdict {
                version: record.version,
                outcome: record.outcome,
                rule: record.rule,
                line: record.line,
                line_number: record.line_number,
                captures: record.captures,
            },
        );
    }

    fn offer_verdict(&mut self, key: JobKey, verdict: Verdict) {
        let held = self.job_commit.contains_key(&key);
        let map = if held {
            &mut self.verdicts
        } else {
            &mut self.orphan_verdicts
        };
        match map.get(&key) {
            Some(v) if v.version >= verdict.version => return,
            _ => {}
        }
        if map.insert(key.clone(), verdict).is_none() && !held {
            self.orphan_order.push_back(key);
            while self.orphan_order.len() > self.limits.pending_jobs {
                if let Some(old) = self.orphan_order.pop_front() {
                    self.orphan_verdicts.remove(&old);
                }
            }
        }
    }

    /// An issue record (`hud.issue.v1`, as its projection's row).
    pub fn apply_issue(&mut self, record: IssueRow) {
        if record.is_pull_request {
            return;
        }
        let issues = self
            .issues
            .entry(record.repository_full_name.clone())
            .or_default();
        offer_issue(
            issues,
            LoadedIssue {
                number: record.number,
                version: record.version,
                title: record.title,
                state: record.state,
                deleted: record.deleted,
                html_url: record.html_url,
            },
        );
    }

    /// A test record of `job` (a page of cases, or a report's state) at this log position.
    pub fn apply_test_record(
        &mut self,
        repository: &str,
        job_id: i64,
        topic: TestTopic,
        partition: i32,
        offset: i64,
    ) {
        let seen = self.seen.entry((topic, partition)).or_insert(offset);
        *seen = (*seen).max(offset);
        let key = (repository.to_string(), job_id);
        if !self.job_commit.contains_key(&key) {
            return;
        }
        let marks = self.tests.entry(key.clone()).or_default();
        marks.generation += 1;
        let mark = marks.marks.entry((topic, partition)).or_insert(offset);
        *mark = (*mark).max(offset);
        self.outstanding.insert(key.clone());
        self.failed_tests.remove(&key);
    }

    /// Where the writers of a test topic stand, per partition (the lowest commit among them).
    pub fn set_written(&mut self, topic: TestTopic, committed: &BTreeMap<i32, i64>) {
        for (partition, offset) in committed {
            self.written.insert((topic, *partition), *offset);
        }
        // Marks ClickHouse has passed are done with.
        let written = &self.written;
        let tests = &mut self.tests;
        self.outstanding.retain(|job| {
            let Some(marks) = tests.get_mut(job) else {
                return false;
            };
            marks
                .marks
                .retain(|k, offset| written.get(k).is_none_or(|w| *w <= *offset));
            !marks.marks.is_empty()
        });
    }

    /// Whether some job's test records are not yet known to be in ClickHouse.
    pub fn has_outstanding(&self) -> bool {
        !self.outstanding.is_empty()
    }

    /// ClickHouse's answer about a job's failing tests, asked at `generation`: kept if nothing
    /// of the job's tests changed since, and ClickHouse had every record the window has seen.
    pub fn keep_failed_tests(
        &mut self,
        repository: &str,
        job_id: i64,
        generation: u64,
        answer: Option<FailedTestsRow>,
    ) {
        let key = (repository.to_string(), job_id);
        if !self.job_commit.contains_key(&key) {
            return;
        }
        let marks = self.tests.entry(key.clone()).or_default();
        if marks.generation != generation || !marks.marks.is_empty() {
            return;
        }
        self.failed_tests.insert(key, (generation, answer));
    }
}

fn offer_issue(issues: &mut BTreeMap<i64, (u64, Option<UnstableIssue>)>, row: LoadedIssue) {
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

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
