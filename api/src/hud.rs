//! The HUD grid: `GET /api/hud/{owner}/{repo}/{branch}?page&per_page`.
//!
//! Rows are the branch's commits, newest first, from our push stream (torchci asks GitHub for
//! them); columns are the job names `"{workflow} / {job}"` seen on the page; a cell merges every
//! run of one job name on one commit by torchci's `mergeCellRuns` ([`merge_cell_runs`]). Three
//! queries answer a page: one for the commits, then two at once for all their jobs with their
//! verdicts and for the tests that failed in them (a failed cell names its failing test).
//!
//! A page is made in two steps, the same for ClickHouse's answer and the hot window's: each
//! commit's runs become its cells ([`commit_cells`], the grid-cell model), then the cells of the
//! page's commits become rows under the page's columns ([`assemble_cells`]). The hot window keeps
//! each commit's cells until something of the commit changes, so a page it makes again after one
//! job changed merges one commit's cells, not fifty.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::commit::CommitRow;
use crate::error::ApiError;
use crate::hot_window::Served;
use crate::job_rows::{
    instant_of, non_empty, pr_number_in_title, title, Failure, JobRow, JobSummary,
};
use crate::params::{self, Paging, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, BRANCH_COMMITS, GRID_FAILED_TESTS, GRID_JOBS};
use crate::respond;
use crate::unstable::{is_unstable, open_unstable_issues, UnstableIssue};
use crate::ApiState;
use axum::http::HeaderMap;

/// One page of the grid.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Grid {
    pub repository: String,
    pub branch: String,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// The columns, sorted.
    pub job_names: Vec<String>,
    /// The columns an open `UNSTABLE` issue (or the job's own name) marks unstable: their
    /// failures are not the commit's fault (`unstable.rs`).
    pub unstable_jobs: Vec<String>,
    pub commits: Vec<GridRow>,
}

impl Grid {
    /// Whether column `i` is unstable (the page marks its cells).
    pub fn column_unstable(&self, i: &usize) -> bool {
        self.job_names
            .get(*i)
            .is_some_and(|name| self.unstable_jobs.binary_search(name).is_ok())
    }
}

/// One commit of the grid, with one cell per column (`null` where the commit ran no such job).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct GridRow {
    pub sha: String,
    pub title: String,
    pub author: String,
    pub author_username: Option<String>,
    pub timestamp: Option<String>,
    pub url: String,
    /// The PR the commit's title names, as in `Fix foo (#1234)`.
    pub pr_number: Option<i64>,
    /// Shared with the commit's cells in the hot window: a page is made without copying them.
    pub jobs: Vec<Option<Arc<Cell>>>,
}

/// A grid cell: the runs of one job name on one commit, merged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    /// The representative run's conclusion (`queued`/`pending` while it has none).
    pub conclusion: String,
    /// The representative run's job id.
    pub id: i64,
    pub html_url: String,
    pub run_attempt: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// torchci's `failedPreviousRun`: the representative succeeded, and another run failed or
    /// timed out. The grid marks it "F".
    pub flaky: bool,
    /// How many runs the cell merges.
    pub runs: usize,
    /// The classifier's verdict on the representative run's log; left out when there is none
    /// (torchci strips nulls from the grid too: a page has ~20,000 cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// For a failed cell whose job reported tests: the first test (`classname::name`) that
    /// failed on every run in the job, and how many did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_test: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_tests: Option<u64>,
}

/// A row of `grid_failed_tests`: for a failed job, the tests that failed on every run in it.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct FailedTestsRow {
    pub job_id: i64,
    pub failed_tests: u64,
    pub first_failed_test: String,
}

/// Everything one page of the grid is made of, wherever it was read: ClickHouse ([`grid`]) or
/// the hot window (`hot_window`). [`assemble`] makes the page from it, the same way for both.
pub struct GridInputs {
    /// The page's commits, newest first (the extra row asked for is already cut).
    pub commits: Vec<CommitRow>,
    pub has_more: bool,
    /// The newest state of every job of those commits, with its verdict.
    pub jobs: Vec<JobRow>,
    /// For the failed jobs among them.
    pub failed_tests: HashMap<i64, FailedTestsRow>,
    pub unstable: Vec<UnstableIssue>,
}

/// The ids of the jobs whose cells may name a failing test.
pub fn failed_job_ids(jobs: &[JobRow]) -> Vec<i64> {
    jobs.iter()
        .filter(|j| j.conclusion == "failure")
        .map(|j| j.id)
        .collect()
}

/// `grid_failed_tests` for these jobs.
pub async fn fetch_failed_tests(
    clickhouse: &ClickHouse,
    repository: &str,
    job_ids: Vec<i64>,
) -> Result<Vec<FailedTestsRow>, ApiError> {
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    fetch(
        clickhouse,
        &GRID_FAILED_TESTS,
        &[
            ("repo", Param::Str(repository.to_string())),
            ("job_ids", Param::IntArray(job_ids)),
        ],
    )
    .await
}

/// torchci's ranking of conclusions for a cell, best first.
fn class(conclusion: &str) -> u8 {
    match conclusion {
        "success" => 0,
        "failure" | "timed_out" => 1,
        "queued" | "pending" => 2,
        "neutral" => 3,
        "skipped" => 4,
        "cancelled" => 5,
        _ => 6,
    }
}

/// torchci's `mergeCellRuns`, independent of the runs' order: cancelled runs are dropped when
/// any other run exists; the representative is the run of the best class, ties going to the
/// highest job id, then the highest version; it is flaky if it succeeded and any run failed
/// or timed out. `None` for no runs.
pub fn merge_cell_runs(runs: &[JobSummary]) -> Option<Cell> {
    let any_kept = runs.iter().any(|r| r.conclusion != "cancelled");
    let representative = runs
        .iter()
        .filter(|r| !any_kept || r.conclusion != "cancelled")
        .min_by(|a, b| {
            class(&a.conclusion)
                .cmp(&class(&b.conclusion))
                .then(b.id.cmp(&a.id))
                .then(b.version.cmp(&a.version))
        })?;
    let flaky = representative.conclusion == "success"
        && runs
            .iter()
            .any(|r| matches!(r.conclusion.as_str(), "failure" | "timed_out"));
    Some(Cell {
        conclusion: representative.conclusion.clone(),
        id: representative.id,
        html_url: representative.html_url.clone(),
        run_attempt: representative.run_attempt,
        duration_s: representative.duration_s,
        flaky,
        runs: runs.len(),
        failure: representative.failure.clone(),
        failed_test: None,
        failed_tests: None,
    })
}

/// One page of `repository`'s grid for `branch`, from ClickHouse.
pub async fn grid(
    clickhouse: &ClickHouse,
    repository: &str,
    branch: &str,
    paging: Paging,
) -> Result<Grid, ApiError> {
    let commit_params = [
        ("repo", Param::Str(repository.to_string())),
        ("ref", Param::Str(format!("refs/heads/{branch}"))),
        ("offset", Param::UInt(paging.offset())),
        ("page_size", Param::UInt(paging.per_page + 1)),
    ];
    let (commits, unstable) = tokio::join!(
        fetch::<CommitRow>(clickhouse, &BRANCH_COMMITS, &commit_params),
        open_unstable_issues(clickhouse, repository)
    );
    let (commits, unstable) = (commits?, unstable?);
    let (commits, has_more) = paging.trim(commits);
    let shas: Vec<String> = commits.iter().map(|c| c.sha.clone()).collect();
    let jobs: Vec<JobRow> = if shas.is_empty() {
        Vec::new()
    } else {
        crate::job_rows::with_verdicts(clickhouse, &GRID_JOBS, repository, shas).await?
    };
    // The failing tests to name in red cells: asked for by the failed jobs' ids once the
    // cells are known (a few percent of a page), so the grid reads workflow_job once.
    let failed_tests = fetch_failed_tests(clickhouse, repository, failed_job_ids(&jobs))
        .await?
        .into_iter()
        .map(|r| (r.job_id, r))
        .collect();
    Ok(assemble(
        repository,
        branch,
        paging,
        GridInputs {
            commits,
            has_more,
            jobs,
            failed_tests,
            unstable,
        },
    ))
}

/// One commit's cells by column (`"{workflow} / {job}"`): the grid-cell model. Each cell is the
/// commit's runs of that name merged by torchci's rules ([`merge_cell_runs`]), a red one naming
/// the failing test `failed_tests` has for its job. Shared: the hot window merges a commit's
/// cells once per change of the commit, and every page showing it uses them as they are.
pub type CommitCells = BTreeMap<String, Arc<Cell>>;

/// The cells of one commit from its runs (in any order).
pub fn commit_cells(
    mut runs: Vec<JobSummary>,
    failed_tests: &HashMap<i64, FailedTestsRow>,
) -> CommitCells {
    runs.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    let mut cells = CommitCells::new();
    for same in runs.chunk_by(|a, b| a.name == b.name) {
        let Some(mut cell) = merge_cell_runs(same) else {
            continue;
        };
        if cell.conclusion == "failure" {
            if let Some(failed) = failed_tests.get(&cell.id) {
                cell.failed_test = Some(failed.first_failed_test.clone());
                cell.failed_tests = Some(failed.failed_tests);
            }
        }
        cells.insert(same[0].name.clone(), Arc::new(cell));
    }
    cells
}

/// Makes a page of the grid from what ClickHouse answered: each commit's cells
/// ([`commit_cells`]), then the page ([`assemble_cells`]).
pub fn assemble(repository: &str, branch: &str, paging: Paging, inputs: GridInputs) -> Grid {
    let GridInputs {
        commits,
        has_more,
        jobs,
        failed_tests,
        unstable,
    } = inputs;
    let mut runs: HashMap<String, Vec<JobSummary>> = HashMap::new();
    for job in jobs {
        runs.entry(job.head_sha.clone())
            .or_default()
            .push(JobSummary::from(job));
    }
    let cells: HashMap<String, Arc<CommitCells>> = runs
        .into_iter()
        .map(|(sha, runs)| (sha, Arc::new(commit_cells(runs, &failed_tests))))
        .collect();
    let rows = commits
        .into_iter()
        .map(|c| {
            let cells = cells.get(&c.sha).cloned().unwrap_or_default();
            (c, cells)
        })
        .collect();
    assemble_cells(repository, branch, paging, rows, has_more, unstable)
}

/// Makes a page of the grid from its commits' cells: the columns are the job names seen on the
/// page, sorted; a row has its commit's cell under each column it ran, `null` elsewhere.
pub fn assemble_cells(
    repository: &str,
    branch: &str,
    paging: Paging,
    rows: Vec<(CommitRow, Arc<CommitCells>)>,
    has_more: bool,
    unstable: Vec<UnstableIssue>,
) -> Grid {
    let job_names: Vec<String> = rows
        .iter()
        .flat_map(|(_, cells)| cells.keys().map(String::as_str))
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    let rows = rows
        .into_iter()
        .map(|(c, cells)| {
            // Both are sorted and the cells' names are among the columns: one walk.
            let mut cells_in_order = cells.iter().peekable();
            let jobs = job_names
                .iter()
                .map(|name| {
                    cells_in_order
                        .next_if(|(cell_name, _)| *cell_name == name)
                        .map(|(_, cell)| Arc::clone(cell))
                })
                .collect();
            let title = title(&c.message);
            GridRow {
                pr_number: pr_number_in_title(&title),
                title,
                sha: c.sha,
                author: c.author_name,
                author_username: non_empty(c.author_username),
                timestamp: instant_of(c.timestamp),
                url: c.url,
                jobs,
            }
        })
        .collect();
    // job_names is sorted, so this is too.
    let unstable_jobs = job_names
        .iter()
        .filter(|name| is_unstable(name, &unstable))
        .cloned()
        .collect();
    Grid {
        repository: repository.to_string(),
        branch: branch.to_string(),
        page: paging.page,
        per_page: paging.per_page,
        has_more,
        job_names,
        unstable_jobs,
        commits: rows,
    }
}

/// A grid page as a request gets it.
pub enum GridAnswer {
    /// From the hot window, with its `ETag` (or a 304).
    Memory(Served),
    /// From ClickHouse.
    ClickHouse(Grid),
}

/// The grid a request asks for (`/api/hud/…` and the page `/hud/…`): 50 commits a page by
/// default, as torchci. From the hot window where it holds the page (unless the request says
/// `X-Hud-Source: clickhouse`), else from ClickHouse. `representation` (`json`, `html`) keeps
/// the two answers' `ETag`s apart.
pub async fn from_request(
    state: &ApiState,
    path: RawPath<(String, String, String)>,
    query: RawQuery,
    request: &HeaderMap,
    representation: &str,
) -> Result<GridAnswer, ApiError> {
    let (owner, repo, branch) = params::path(path)?;
    let query = QueryParams::parse(query, &["page", "per_page"])?;
    let repository = params::repository(&owner, &repo)?;
    let branch = params::branch(&branch)?;
    let paging = query.paging(50, 200)?;
    if let Some(hot) = state
        .hot
        .as_ref()
        .filter(|_| !respond::wants_clickhouse(request))
    {
        let served = hot
            .grid(
                &state.clickhouse,
                &repository,
                &branch,
                paging,
                representation,
                respond::if_none_match(request),
                respond::wants_fresh(request),
            )
            .await?;
        if let Some(served) = served {
            return Ok(GridAnswer::Memory(served));
        }
    }
    Ok(GridAnswer::ClickHouse(
        grid(&state.clickhouse, &repository, &branch, paging).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(id: i64, conclusion: &str) -> JobSummary {
        JobSummary {
            id,
            run_id: 1,
            run_attempt: 1,
            workflow_name: "pull".into(),
            job_name: "test".into(),
            name: "pull / test".into(),
            head_sha: "a".repeat(40),
            status: "completed".into(),
            conclusion: conclusion.into(),
            created_at: None,
            started_at: None,
            completed_at: None,
            queue_time_s: None,
            duration_s: None,
            labels: vec![],
            runner: None,
            html_url: format!("https://github.com/o/r/actions/runs/1/job/{id}"),
            failure: None,
            version: 1,
        }
    }

    #[test]
    fn torchcis_cell_rules() {
        // One run is itself.
        let one = merge_cell_runs(&[run(1, "failure")]).unwrap();
        assert_eq!(
            (one.conclusion.as_str(), one.flaky, one.runs),
            ("failure", false, 1)
        );
        // A success after a failure is a flaky success.
        let flaky = merge_cell_runs(&[run(1, "failure"), run(2, "success")]).unwrap();
        assert_eq!(
            (flaky.conclusion.as_str(), flaky.id, flaky.flaky),
            ("success", 2, true)
        );
        // Timing out counts as failing.
        assert!(
            merge_cell_runs(&[run(2, "timed_out"), run(1, "success")])
                .unwrap()
                .flaky
        );
        // Cancelled runs lose to anything, even "other" conclusions.
        let c = merge_cell_runs(&[run(5, "cancelled"), run(1, "action_required")]).unwrap();
        assert_eq!(c.conclusion, "action_required");
        // Only cancelled runs: the newest.
        let c = merge_cell_runs(&[run(5, "cancelled"), run(7, "cancelled")]).unwrap();
        assert_eq!((c.conclusion.as_str(), c.id), ("cancelled", 7));
        // A failure outranks a pending rerun; ties go to the highest id.
        let c =
            merge_cell_runs(&[run(3, "pending"), run(1, "failure"), run(2, "failure")]).unwrap();
        assert_eq!(
            (c.conclusion.as_str(), c.id, c.flaky),
            ("failure", 2, false)
        );
        assert_eq!(merge_cell_runs(&[]), None);
    }

    proptest! {
        #[test]
        fn a_cell_does_not_depend_on_the_order_of_its_runs(
            runs in prop::collection::vec(
                (1i64..6, prop::sample::select(vec![
                    "success", "failure", "timed_out", "queued", "pending", "neutral",
                    "skipped", "cancelled", "action_required",
                ]), 1u64..3),
                1..8,
            ),
            seed in any::<u64>(),
        ) {
            let runs: Vec<JobSummary> = runs
                .into_iter()
                .map(|(id, c, version)| JobSummary { version, ..run(id, c) })
                .collect();
            let mut shuffled = runs.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let (a, b) = (merge_cell_runs(&runs).unwrap(), merge_cell_runs(&shuffled).unwrap());
            // Identical (id, version) pairs with different conclusions cannot happen (equal
            // versions mean equal content), so compare what is defined by the rules.
            prop_assert_eq!(class(&a.conclusion), class(&b.conclusion));
            prop_assert_eq!(a.id, b.id);
            prop_assert_eq!(a.flaky, b.flaky);
            prop_assert_eq!(a.runs, b.runs);
            if a.flaky {
                prop_assert_eq!(a.conclusion.as_str(), "success");
            }
        }
    }
}
