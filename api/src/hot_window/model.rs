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

mod apply;
mod load;
mod page;
pub use load::{LoadedCommit, LoadedIssue, LoadedJob};
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
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
