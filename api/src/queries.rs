//! The saved queries, compiled in, and the one place the API runs them. Each is also checked
//! on both ClickHouse versions by `deploy/local/sql-compat`, with the parameters in its
//! `NAME.params.json`.

use std::collections::BTreeMap;

use hudstream_runtime::clickhouse::{bind, ClickHouse, Param};

use crate::error::ApiError;

/// A saved query: its name (the file stem) and text.
pub struct SavedQuery {
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! saved_queries {
    ($($(#[$doc:meta])* $konst:ident = $name:literal;)*) => {
        $(
            $(#[$doc])*
            pub const $konst: SavedQuery = SavedQuery {
                name: $name,
                sql: include_str!(concat!("../queries/", $name, ".sql")),
            };
        )*
        /// Every saved query in `api/queries/`.
        pub const ALL: &[SavedQuery] = &[$($konst),*];
    };
}

saved_queries! {
    /// `GET /api/jobs/...`: one job's newest state, as its page's document.
    JOB_PAGE = "job_page";
    /// `GET /api/jobs/...`: one job's newest state from its columns, for a job `job_page` does
    /// not hold yet (its projection catching up after an upgrade, or being rebuilt).
    JOB_BY_ID = "job_by_id";
    /// `GET /api/jobs/...`: the newest verdict on one job's log.
    JOB_CLASSIFICATION_BY_ID = "job_classification_by_id";
    /// `GET /api/jobs/...`: when the job and its run were last written by a webhook and by the API.
    JOB_REPLICATION = "job_replication";
    /// The rows of the HUD grid: a branch's commits, newest first.
    BRANCH_COMMITS = "branch_commits";
    /// Commit headers (message, author) for some shas.
    COMMIT_BY_SHA = "commit_by_sha";
    /// The grid's cells: every job of some commits, only what a cell shows (verdicts apart).
    GRID_JOBS = "grid_jobs";
    /// The verdicts on every job of some commits, read beside `grid_jobs`/`jobs_for_commits`.
    VERDICTS_FOR_COMMITS = "verdicts_for_commits";
    /// The hot window's rebuild: the repositories that have a watched branch.
    HOT_WINDOW_REFS = "hot_window_refs";
    /// The hot window's rebuild: a branch's newest commits, with their versions.
    HOT_WINDOW_COMMITS = "hot_window_commits";
    /// The hot window's rebuild (and a commit that enters it): the jobs of some commits, with
    /// their versions and their verdicts' versions.
    HOT_WINDOW_JOBS = "hot_window_jobs";
    /// The hot window's rebuild: every issue's newest version (for the open UNSTABLE ones).
    HOT_WINDOW_ISSUES = "hot_window_issues";
    /// The commit page and PR page: every job of some commits (verdicts apart).
    JOBS_FOR_COMMITS = "jobs_for_commits";
    /// The commit page's workflow runs (a run without a job is a startup failure).
    RUNS_FOR_COMMIT = "runs_for_commit";
    /// The PR page's header.
    PULL_REQUEST = "pull_request";
    /// The PR page's commits, force-pushed-away heads included.
    PR_COMMITS = "pr_commits";
    /// `GET /api/oot/summary`.
    OOT_SUMMARY = "oot_summary";
    /// The OOT jobs behind `GET /api/oot/{org}/{repo}`, `GET /api/oot/pr/{number}` and the PR
    /// page's OOT section.
    OOT_JOBS_WINDOW = "oot_jobs_window";
    /// `GET /api/failures`.
    FAILURE_CAPTURES = "failure_captures";
    /// `GET /api/queued`.
    QUEUED_JOBS = "queued_jobs";
    /// `GET /api/tests/.../jobs/{job_id}`: the tests of one job, counted for torchci's status rule.
    TEST_JOB_TESTS = "test_job_tests";
    /// `GET /api/tests/.../jobs/{job_id}`: the reports of one job, current versions.
    TEST_JOB_REPORTS = "test_job_reports";
    /// `GET /api/tests/.../history`: one test's runs per job.
    TEST_HISTORY = "test_history";
    /// `GET /api/tests/.../flaky`: tests that failed or were retried, per job.
    TEST_FLAKY = "test_flaky";
    /// `GET /api/tests/.../flaky`: the candidates' names by test id.
    TEST_FLAKY_NAMES = "test_flaky_names";
    /// The flaky tests' jobs: names, commits and branches by id.
    JOBS_BY_IDS = "jobs_by_ids";
    /// The flaky tests' jobs no webhook told of: the commits their reports named.
    REPORT_SHAS_BY_JOBS = "report_shas_by_jobs";
    /// `GET /api/tests/.../slowest`.
    TEST_SLOWEST = "test_slowest";
    /// `GET /api/tests/.../search`.
    TEST_SEARCH = "test_search";
    /// `GET /api/tests/.../disabled` and the flaky tests' issues: open `DISABLED` issues.
    DISABLED_TEST_ISSUES = "disabled_test_issues";
    /// `GET /api/tests/.../disabled`: the disabled tests' recent results.
    DISABLED_TEST_RESULTS = "disabled_test_results";
    /// The commit page's failed and flaky tests.
    COMMIT_FAILED_TESTS = "commit_failed_tests";
    /// The grid's failed cells: the failing test to name.
    GRID_FAILED_TESTS = "grid_failed_tests";
    /// Dr.CI: every job of a PR's heads and their merge bases, with what classes are decided on.
    DRCI_JOBS = "drci_jobs";
    /// Dr.CI's merge bases, trunk health's commit order: a branch's pushes in a window.
    BRANCH_PUSHES = "branch_pushes";
    /// Dr.CI's "similar failure" evidence: where else signatures were seen.
    SIGNATURE_MATCHES = "signature_matches";
    /// Dr.CI's "the same tests failed elsewhere" evidence.
    TESTS_FAILED_ELSEWHERE = "tests_failed_elsewhere";
    /// Open `UNSTABLE` issues: the grid, Dr.CI and the red rate leave their jobs out.
    UNSTABLE_ISSUES = "unstable_issues";
    /// `GET /api/failures/.../similar`: the jobs with one signature.
    SIMILAR_FAILURES = "similar_failures";
    /// `GET /api/failures/.../clusters`: the most frequent signatures of a window.
    FAILURE_CLUSTERS = "failure_clusters";
    /// `GET /api/trunk/.../signal`: time to signal per commit.
    TRUNK_SIGNAL = "trunk_signal";
    /// `GET /api/trunk/.../red`: real and flaky failed jobs per commit.
    TRUNK_RED = "trunk_red";
    /// `GET /api/trunk/.../broken`: jobs that failed for real on several commits.
    TRUNK_FAILING_JOBS = "trunk_failing_jobs";
    /// `GET /api/trunk/.../broken`: the commits each workflow ran on.
    TRUNK_WORKFLOW_RUNS = "trunk_workflow_runs";
    /// `GET /api/trunk/.../queue`: queue time percentiles per runner label and day.
    QUEUE_TIMES = "queue_times";
    /// The Dr.CI poster's work list: PRs with recent job activity.
    RECENT_PULL_REQUESTS = "recent_pull_requests";
    /// The home page: the branches with data.
    HOME_BRANCHES = "home_branches";
    /// The home page: the newest commits' status at a glance.
    HOME_COMMIT_STATUS = "home_commit_status";
    /// `hudstream dead-letters`.
    DEAD_LETTERS_RECENT = "dead_letters_recent";
    /// `hudstream reclassify`: jobs completed in a time range, with their stored logs.
    JOBS_TO_RECLASSIFY = "jobs_to_reclassify";
    /// `hudstream reclassify --job`: one job's stored log.
    JOB_LOG_FOR_RECLASSIFY = "job_log_for_reclassify";
}

/// Binds `params` into `query` (as literals, escaped by type: never spliced text) and reads the
/// rows as `T` (a `clickhouse::Row` whose fields follow the query's columns in order and type).
/// A failure is [`ApiError::Unavailable`]; the log says which query failed.
pub async fn fetch<T: clickhouse::RowOwned + clickhouse::RowRead>(
    clickhouse: &ClickHouse,
    query: &SavedQuery,
    params: &[(&'static str, Param)],
) -> Result<Vec<T>, ApiError> {
    let params: BTreeMap<&str, Param> = params.iter().cloned().collect();
    let sql = bind(query.sql, clickhouse.database(), &params)
        .map_err(|e| ApiError::Unavailable(format!("{}: {e}", query.name)))?;
    let started = std::time::Instant::now();
    let rows = clickhouse
        .fetch_all_named::<T>(query.name, &sql)
        .await
        .map_err(|e| ApiError::Unavailable(format!("{}: {e}", query.name)));
    metrics::histogram!("hudstream_api_query_seconds", "query" => query.name)
        .record(started.elapsed().as_secs_f64());
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_is_compiled_in_and_names_its_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("queries dir")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".sql").map(str::to_string)
            })
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = ALL.iter().map(|q| q.name.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled);
    }

    #[test]
    fn the_readmes_table_list_names_every_query() {
        let readme = include_str!("../../README.md");
        for query in ALL {
            assert!(
                readme.contains(&format!("`{}`", query.name)),
                "README.md's table list does not name {}",
                query.name
            );
        }
    }
}
