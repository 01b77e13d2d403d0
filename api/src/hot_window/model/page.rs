//! Reading the hot window: a page of the grid from what [`Model`] holds — each held commit's
//! cells, merged once by torchci's rules and kept under a digest of the versions they are made
//! of, so a page made again after one job changed merges one commit's cells. No I/O: the
//! failing tests of failed jobs that memory cannot vouch for are named in the page, asked of
//! ClickHouse by the caller, and passed back in to build it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use hudstream_runtime::clickhouse::DateTime;

use super::{Branch, CommitJobs, HeldCommit, HeldJob, Model, ShaKey, Verdict};
use crate::commit::CommitRow;
use crate::hud::{self, CommitCells, FailedTestsRow};
use crate::job_rows::{JobRow, JobSummary};
use crate::unstable::UnstableIssue;

/// One page of the grid, as memory has it.
pub struct HotPage {
    /// The page's commits, each with its cells (made only when the page is built).
    pub rows: Vec<(CommitRow, Arc<CommitCells>)>,
    pub has_more: bool,
    pub unstable: Vec<UnstableIssue>,
    /// The failed jobs whose failing tests must be asked of ClickHouse: (id, generation).
    pub failed_unknown: Vec<(i64, u64)>,
    /// A digest of what the page is made of but its failing tests (versions, not contents).
    pub digest: u64,
    /// The failing tests memory already knows for the page's failed jobs, as the sum of their
    /// [`answer_digest`]s: the `ETag` adds ClickHouse's answers for the others the same way,
    /// so a page's `ETag` does not move when memory keeps an answer it had to ask for.
    pub known_answers: u64,
}

/// One job's failing tests in a page's `ETag`. Summed, not hashed in order: the same answers
/// give the same sum whether memory knew them or ClickHouse was asked (`None` adds nothing,
/// as a job ClickHouse has no failing tests for adds no row).
pub fn answer_digest(answer: Option<&FailedTestsRow>) -> u64 {
    let Some(a) = answer else { return 0 };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (a.job_id, a.failed_tests, &a.first_failed_test).hash(&mut hasher);
    hasher.finish()
}

/// Why a page is not answered from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    /// The branch is not watched, or not (yet) in memory.
    Branch,
    /// The page reaches past the newest commits held.
    Older,
    /// A commit on it is still being read from ClickHouse.
    Loading,
    /// The repository's issues are still being read.
    Issues,
}

impl Miss {
    pub fn label(self) -> &'static str {
        match self {
            Miss::Branch => "branch",
            Miss::Older => "older",
            Miss::Loading => "loading",
            Miss::Issues => "issues",
        }
    }
}

impl Model {
    /// One page (`offset`, `per_page` commits) of `branch`, or why memory cannot answer it.
    /// Without `build` only the digest and the failed jobs to ask ClickHouse about are made
    /// (enough to answer a client that has the page, or from a cache of pages); with it, the
    /// rows too, `build` holding ClickHouse's answers for those jobs.
    pub fn page(
        &self,
        branch: &Branch,
        offset: usize,
        per_page: usize,
        build: Option<&HashMap<i64, FailedTestsRow>>,
    ) -> Result<HotPage, Miss> {
        let window = self.windows.get(branch).ok_or(Miss::Branch)?;
        let wanted = offset.saturating_add(per_page).saturating_add(1);
        if !window.complete && wanted > window.order.len() {
            return Err(Miss::Older);
        }
        if !self.issues_loaded.contains(&branch.repository) {
            return Err(Miss::Issues);
        }
        let issues = self.issues.get(&branch.repository).ok_or(Miss::Issues)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let held: Vec<&HeldCommit> = window
            .order
            .iter()
            .skip(offset)
            .take(per_page)
            .map(|order| &window.commits[&order.2])
            .collect();
        let has_more = window.order.len() > offset.saturating_add(per_page);
        has_more.hash(&mut hasher);
        let mut rows = Vec::new();
        let mut failed_unknown = Vec::new();
        let mut known_answers = 0u64;
        for c in &held {
            (&c.row.sha, c.version).hash(&mut hasher);
            let key = (branch.repository.clone(), c.row.sha.clone());
            let Some(entry) = self.commits.get(&key) else {
                if build.is_some() {
                    rows.push((c.row.clone(), Arc::default()));
                }
                continue;
            };
            if entry.loading {
                return Err(Miss::Loading);
            }
            // What the commit's cells are made of, in a digest of its own (the cells' key).
            let mut commit_hasher = std::collections::hash_map::DefaultHasher::new();
            let unknown_before = failed_unknown.len();
            let mut ids: Vec<&i64> = entry.jobs.keys().collect();
            ids.sort_unstable();
            for id in ids {
                let job = &entry.jobs[id];
                let job_key = (branch.repository.clone(), *id);
                let verdict = self.verdicts.get(&job_key);
                let versions = (id, job.version, verdict.map_or(0, |v| v.version));
                versions.hash(&mut commit_hasher);
                versions.hash(&mut hasher);
                if &*job.conclusion == "failure" {
                    match self.failed_tests.get(&job_key) {
                        Some((_, answer)) => {
                            answer.hash_into(&mut commit_hasher);
                            known_answers =
                                known_answers.wrapping_add(answer_digest(answer.as_ref()));
                        }
                        None => failed_unknown
                            .push((*id, self.tests.get(&job_key).map_or(0, |m| m.generation))),
                    }
                }
            }
            // The cells' key holds the known answers too; the page's digest does not (see
            // `known_answers`).
            let commit_digest = commit_hasher.finish();
            if let Some(answers) = build {
                let asked = &failed_unknown[unknown_before..];
                rows.push((
                    c.row.clone(),
                    self.cells_of(&key, entry, commit_digest, asked, answers),
                ));
            }
        }
        let mut unstable = Vec::new();
        for (number, (version, issue)) in issues {
            (number, version).hash(&mut hasher);
            if let (Some(_), Some(issue)) = (build, issue) {
                unstable.push(issue.clone());
            }
        }
        Ok(HotPage {
            rows,
            has_more,
            unstable,
            failed_unknown,
            digest: hasher.finish(),
            known_answers,
        })
    }

    /// A held commit's cells: the ones merged before if nothing they are made of changed
    /// (`digest`), else merged now. Cells that name a failing test ClickHouse was asked about
    /// (`asked`; the answers in `answers`) are made for this page only: the answer may not
    /// be kept.
    fn cells_of(
        &self,
        key: &ShaKey,
        entry: &CommitJobs,
        digest: u64,
        asked: &[(i64, u64)],
        answers: &HashMap<i64, FailedTestsRow>,
    ) -> Arc<CommitCells> {
        let mut cache = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        if asked.is_empty() {
            if let Some((held, cells)) = cache.get(key) {
                if *held == digest {
                    return Arc::clone(cells);
                }
            }
        }
        let (repository, sha) = key;
        let mut failed_tests = HashMap::new();
        let mut runs = Vec::with_capacity(entry.jobs.len());
        for (id, job) in &entry.jobs {
            let job_key = (repository.clone(), *id);
            if &*job.conclusion == "failure" {
                let known = self
                    .failed_tests
                    .get(&job_key)
                    .and_then(|(_, a)| a.as_ref());
                if let Some(answer) = known.or_else(|| answers.get(id)) {
                    failed_tests.insert(*id, answer.clone());
                }
            }
            let verdict = self.verdicts.get(&job_key);
            runs.push(JobSummary::from(job_row(sha, *id, job, verdict)));
        }
        let cells = Arc::new(hud::commit_cells(runs, &failed_tests));
        if asked.is_empty() {
            cache.insert(key.clone(), (digest, Arc::clone(&cells)));
        }
        cells
    }

    #[cfg(test)]
    pub(super) fn page_built(
        &self,
        branch: &Branch,
        offset: usize,
        per_page: usize,
    ) -> Result<HotPage, Miss> {
        self.page(branch, offset, per_page, Some(&HashMap::new()))
    }

    /// What memory holds, for metrics: (commits, jobs, pending jobs).
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.commits.len(),
            self.job_commit.len(),
            self.pending_order.len(),
        )
    }
}

trait HashInto {
    fn hash_into(&self, hasher: &mut std::collections::hash_map::DefaultHasher);
}

impl HashInto for Option<FailedTestsRow> {
    fn hash_into(&self, hasher: &mut std::collections::hash_map::DefaultHasher) {
        if let Some(a) = self {
            (a.job_id, a.failed_tests, &a.first_failed_test).hash(hasher);
        }
    }
}

/// A held job as `grid_jobs.sql` answers it: the columns a cell does not show are its constants.
fn job_row(sha: &str, id: i64, job: &HeldJob, verdict: Option<&Verdict>) -> JobRow {
    JobRow {
        head_sha: sha.to_string(),
        id,
        version: job.version,
        run_id: 0,
        run_attempt: job.run_attempt,
        workflow_name: job.workflow_name.to_string(),
        name: job.name.to_string(),
        status: job.status.to_string(),
        conclusion: job.conclusion.to_string(),
        created_at: DateTime::default(),
        started_at: DateTime::default(),
        completed_at: DateTime::default(),
        queue_time_s: None,
        duration_s: job.duration_s,
        labels: Vec::new(),
        runner_name: String::new(),
        html_url: job.html_url.clone(),
        failure_outcome: verdict.map(|v| v.outcome.clone()).unwrap_or_default(),
        failure_rule: verdict.map(|v| v.rule.clone()).unwrap_or_default(),
        failure_line: verdict.map(|v| v.line.clone()).unwrap_or_default(),
        failure_line_number: verdict.map_or(0, |v| v.line_number),
        failure_captures: verdict.map(|v| v.captures.clone()).unwrap_or_default(),
    }
}
