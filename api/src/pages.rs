//! The HUD pages: server-rendered HTML (askama templates in `api/templates/`, one stylesheet in
//! `api/static/`, no build step) over the same functions as the JSON endpoints, so a page and
//! its endpoint never disagree. Templates escape every value; a bad request or an unavailable
//! database is a page that says so, with the same status the endpoint would answer.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};

use hudstream_runtime::clickhouse::ClickHouse;

use crate::commit::CommitPage;
use crate::disabled::{DisabledTests, DisablingIssue};
use crate::drci::{self, Drci};
use crate::error::ApiError;
use crate::flaky::{FlakyTest, FlakyTests};
use crate::home::{home, Home};
use crate::hud::{Cell, Grid, GridRow};
use crate::job_rows::JobSummary;
use crate::jobs::Job;
use crate::oot::{BackendSummary, Matrix, MatrixRow, OotJob, Summary};
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::pull::{PrCommit, PullPage};
use crate::test_history::{TestHistory, TestRun};
use crate::test_results::{JobReport, JobTest, StatusCounts};
use crate::{commit, disabled, flaky, hud, jobs, oot, pull, respond, test_history, test_results};

const STYLESHEET: &str = include_str!("../static/hud.css");

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    home: Home,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: String,
    message: String,
}

#[derive(Template)]
#[template(path = "grid.html")]
struct GridPage {
    grid: Grid,
}

#[derive(Template)]
#[template(path = "commit.html")]
struct CommitTemplate {
    page: CommitPage,
}

#[derive(Template)]
#[template(path = "pull.html")]
struct PullTemplate {
    page: PullPage,
    /// Dr.CI's classes; `None` when they could not be computed (the page still shows).
    drci: Option<Drci>,
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobTemplate {
    repository: String,
    job_id: i64,
    job: Option<Job>,
    summary: StatusCounts,
    reports: Vec<JobReport>,
    /// The failed and flaky tests (all tests are in the JSON endpoint).
    tests: Vec<JobTest>,
}

#[derive(Template)]
#[template(path = "test_history.html")]
struct TestHistoryPage {
    history: TestHistory,
}

#[derive(Template)]
#[template(path = "flaky.html")]
struct FlakyPage {
    flaky: FlakyTests,
}

#[derive(Template)]
#[template(path = "disabled.html")]
struct DisabledPage {
    disabled: DisabledTests,
}

#[derive(Template)]
#[template(path = "oot_summary.html")]
struct OotSummaryPage {
    summary: Summary,
}

#[derive(Template)]
#[template(path = "oot_backend.html")]
struct OotBackendPage {
    matrix: Matrix,
}

/// Presentation helpers the templates call.
impl Cell {
    /// The HUD's symbol for a cell: O success, X failure, F flaky, ? pending, Q queued,
    /// C cancelled, S skipped, T timed out, N neutral.
    pub fn symbol(&self) -> &'static str {
        match self.conclusion.as_str() {
            "success" if self.flaky => "F",
            "success" => "O",
            "failure" => "X",
            "timed_out" => "T",
            "queued" => "Q",
            "pending" => "?",
            "cancelled" => "C",
            "skipped" => "S",
            "neutral" => "N",
            _ => "·",
        }
    }
}

/// Percent-encodes what a branch may contain but a path segment may not carry as itself
/// (`/` stays: the grid's branch is a wildcard path).
fn path_encode(branch: &str) -> String {
    branch
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A link target from data: only http(s) URLs; anything else (a `javascript:` URL in an OOT
/// callback, say) becomes no link. Askama escapes the text but cannot judge a URL.
pub fn safe_href(url: &str) -> &str {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        url
    } else {
        ""
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

fn seconds_text(s: Option<f64>) -> String {
    match s {
        None => String::new(),
        Some(s) if s < 60.0 => format!("{s:.0}s"),
        Some(s) if s < 3600.0 => format!("{}m {:02}s", (s / 60.0) as u64, (s % 60.0) as u64),
        Some(s) => format!(
            "{}h {:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        ),
    }
}

impl Cell {
    /// Nothing to say beyond its conclusion and link (not flaky, no failure line, no failed
    /// test): the grid page writes such a cell without hover text or data attributes.
    pub fn is_plain(&self) -> bool {
        !self.flaky && self.failure.is_none() && self.failed_test.is_none()
    }

    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }

    /// `failed test Class::test (and 3 more)`, for a failed cell whose job reported tests.
    pub fn failed_test_text(&self) -> String {
        let Some(test) = &self.failed_test else {
            return String::new();
        };
        match self.failed_tests.unwrap_or(1) {
            0 | 1 => format!("failed test {test}"),
            n => format!("failed test {test} (and {} more)", n - 1),
        }
    }
}

impl crate::commit::RunSummary {
    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }
}

impl GridRow {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl CommitPage {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl PrCommit {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl MatrixRow {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl JobSummary {
    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }
    pub fn duration_text(&self) -> String {
        seconds_text(self.duration_s)
    }
    pub fn queue_text(&self) -> String {
        seconds_text(self.queue_time_s)
    }
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn query_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The history page of a test.
fn history_href(repository: &str, name: &str, classname: &str, file: &str) -> String {
    let mut href = format!("/tests/{repository}/history?name={}", query_encode(name));
    for (key, value) in [("classname", classname), ("file", file)] {
        if !value.is_empty() {
            href.push_str(&format!("&{key}={}", query_encode(value)));
        }
    }
    href
}

/// The chip colour of a test status.
fn status_class(status: &str) -> &'static str {
    match status {
        "failed" => "failure",
        "flaky" => "pending",
        "skipped" => "skipped",
        _ => "success",
    }
}

impl Job {
    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }
    pub fn short_sha(&self) -> &str {
        short(&self.head_sha)
    }
    pub fn display_conclusion(&self) -> String {
        crate::job_rows::display_conclusion(&self.status, self.conclusion.as_deref().unwrap_or(""))
    }
}

impl JobTest {
    pub fn status_class(&self) -> &'static str {
        status_class(&self.status)
    }
    pub fn history_href(&self, repository: &str) -> String {
        history_href(repository, &self.name, &self.classname, &self.file)
    }
}

impl crate::test_results::TestFailure {
    /// The message's first line (the traceback holds the rest).
    pub fn headline(&self) -> String {
        crate::test_results::first_line(&self.message)
    }
}

impl JobReport {
    pub fn state_class(&self) -> &'static str {
        match self.state.as_str() {
            "parsed" => "success",
            "refused" => "failure",
            _ => "skipped",
        }
    }
}

impl TestHistory {
    pub fn fail_rate_text(&self) -> String {
        format!("{:.1}%", self.fail_rate * 100.0)
    }
    pub fn flaky_rate_text(&self) -> String {
        format!("{:.1}%", self.flaky_rate * 100.0)
    }
}

impl TestRun {
    pub fn status_class(&self) -> &'static str {
        status_class(&self.status)
    }
    pub fn short_sha(&self) -> &str {
        self.sha.as_deref().map(short).unwrap_or("")
    }
    pub fn duration_text(&self) -> String {
        seconds_text(Some(self.duration_s))
    }
}

impl crate::commit::CommitTest {
    pub fn status_class(&self) -> &'static str {
        status_class(&self.status)
    }
    pub fn history_href(&self, repository: &str) -> String {
        history_href(repository, &self.name, &self.classname, &self.file)
    }
}

impl FlakyTest {
    pub fn history_href(&self, repository: &str) -> String {
        history_href(repository, &self.name, &self.classname, &self.file)
    }
}

impl DisablingIssue {
    pub fn href(&self) -> &str {
        safe_href(&self.url)
    }
}

impl OotJob {
    pub fn run_href(&self) -> &str {
        safe_href(&self.workflow_run_url)
    }
    pub fn duration_text(&self) -> String {
        seconds_text(self.duration_s.or(self.execution_time_s))
    }
    pub fn tests_text(&self) -> String {
        match (self.passed_tests, self.failed_tests, self.total_tests) {
            (None, None, None) => String::new(),
            (p, f, t) => format!(
                "{} passed, {} failed of {}",
                p.unwrap_or(0),
                f.unwrap_or(0),
                t.unwrap_or(0)
            ),
        }
    }
}

impl BackendSummary {
    pub fn pass_rate_text(&self) -> String {
        format!("{:.1}%", self.pass_rate * 100.0)
    }
    pub fn duration_text(&self) -> String {
        seconds_text(Some(self.avg_duration_s))
    }
}

/// Renders a page, or the error page with the error's status.
pub(crate) fn render(headers: &HeaderMap, page: Result<impl Template, ApiError>) -> Response {
    match page.and_then(|p| {
        p.render()
            .map_err(|e| ApiError::Unavailable(format!("rendering a page: {e}")))
    }) {
        Ok(html) => respond::html(headers, html),
        Err(error) => error_page(error),
    }
}

fn error_page(error: ApiError) -> Response {
    let status = error.status();
    let message = error.public_message();
    let body = ErrorPage {
        status: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        ),
        message,
    }
    .render()
    .unwrap_or_else(|_| "error".into());
    (status, [(header::CACHE_CONTROL, "no-store")], Html(body)).into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `/`: the repositories and branches with data; with `?repo=owner/name&branch=b` (the form
/// on it), a redirect to that grid.
pub async fn index(State(ch): Ch, headers: HeaderMap, query: RawQuery) -> Response {
    let go = || -> Result<Option<String>, ApiError> {
        let params = QueryParams::parse(query, &["repo", "branch"])?;
        match (params.text("repo"), params.text("branch")) {
            (None, None) => Ok(None),
            (Some(repo), branch) => {
                let repository = params::repository_full_name("repo", repo)?;
                let branch = params::branch(branch.unwrap_or("main"))?;
                Ok(Some(format!("/hud/{repository}/{}", path_encode(&branch))))
            }
            (None, Some(_)) => Err(ApiError::BadRequest("repo is required".into())),
        }
    };
    match go() {
        Ok(Some(to)) => Redirect::to(&to).into_response(),
        Ok(None) => render(&headers, home(&ch).await.map(|home| IndexPage { home })),
        Err(e) => error_page(e),
    }
}

type Ch = State<ClickHouse>;
type Path3 = RawPath<(String, String, String)>;

pub async fn grid_page(
    State(state): State<crate::ApiState>,
    path: Path3,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    use crate::hot_window::Served;
    use crate::hud::GridAnswer;
    match hud::from_request(&state, path, q, &headers, "html").await {
        Ok(GridAnswer::Memory(Served::NotModified { etag })) => {
            respond::not_modified(&etag, "memory")
        }
        Ok(GridAnswer::Memory(Served::Cached { body, etag })) => {
            respond::bytes_tagged(respond::HTML, body, &etag, "memory")
        }
        Ok(GridAnswer::Memory(Served::Page { grid, etag })) => match (GridPage { grid }).render() {
            Ok(html) => {
                let body = bytes::Bytes::from(html);
                if let Some(hot) = &state.hot {
                    hot.remember(&etag, body.clone());
                }
                respond::bytes_tagged(respond::HTML, body, &etag, "memory")
            }
            Err(e) => error_page(ApiError::Unavailable(format!("rendering a page: {e}"))),
        },
        Ok(GridAnswer::ClickHouse(grid)) => {
            let mut response = render(&headers, Ok(GridPage { grid }));
            response.headers_mut().insert(
                respond::SOURCE,
                axum::http::HeaderValue::from_static("clickhouse"),
            );
            response
        }
        Err(e) => render(&headers, Err::<GridPage, _>(e)),
    }
}

pub async fn commit_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let page = commit::from_request(&ch, path, q).await;
    render(&headers, page.map(|page| CommitTemplate { page }))
}

pub async fn pull_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let ids = path.as_ref().ok().map(|p| p.0.clone());
    let page = pull::from_request(&ch, path, q).await;
    let pr = ids.and_then(|(owner, repo, number)| {
        Some((
            params::repository(&owner, &repo).ok()?,
            number.parse::<i64>().ok()?,
        ))
    });
    let drci = match (&page, pr) {
        (Ok(_), Some((repository, number))) => match drci::drci(&ch, &repository, number).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(%repository, number, error = %e, "Dr.CI for the PR page failed");
                None
            }
        },
        _ => None,
    };
    render(&headers, page.map(|page| PullTemplate { page, drci }))
}

pub async fn oot_summary_page(State(ch): Ch, headers: HeaderMap, q: RawQuery) -> Response {
    let summary = oot::summary_from_request(&ch, q).await;
    render(&headers, summary.map(|summary| OotSummaryPage { summary }))
}

pub async fn oot_backend_page(
    State(ch): Ch,
    path: RawPath<(String, String)>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let matrix = oot::matrix_from_request(&ch, path, q).await;
    render(&headers, matrix.map(|matrix| OotBackendPage { matrix }))
}

/// `/{owner}/{repo}/job/{job_id}`: a job with its failed and flaky tests and its reports.
pub async fn job_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let page = async {
        let (owner, repo, job_id) = params::path(path)?;
        QueryParams::parse(q, &[])?;
        let repository = params::repository(&owner, &repo)?;
        let job_id = params::positive("the job id", &job_id)?;
        let (job, tests) = tokio::join!(
            jobs::job(&ch, &repository, job_id),
            test_results::job_tests(&ch, &repository, job_id)
        );
        let (job, (summary, tests, reports)) = (job?, tests?);
        if job.is_none() && reports.is_empty() {
            return Err(ApiError::NotFound(format!(
                "nothing is known of job {job_id} in {repository}"
            )));
        }
        let tests = tests
            .into_iter()
            .filter(|t| t.status == "failed" || t.status == "flaky")
            .collect();
        Ok(JobTemplate {
            repository,
            job_id,
            job,
            summary,
            reports,
            tests,
        })
    }
    .await;
    render(&headers, page)
}

type Path2 = RawPath<(String, String)>;

pub async fn test_history_page(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let history = test_history::from_request(&ch, path, q).await;
    render(&headers, history.map(|history| TestHistoryPage { history }))
}

pub async fn flaky_page(State(ch): Ch, path: Path2, headers: HeaderMap, q: RawQuery) -> Response {
    let flaky = flaky::from_request(&ch, path, q).await;
    render(&headers, flaky.map(|flaky| FlakyPage { flaky }))
}

pub async fn disabled_page(
    State(ch): Ch,
    path: Path2,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let disabled = disabled::from_request(&ch, path, q).await;
    render(&headers, disabled.map(|disabled| DisabledPage { disabled }))
}

/// Any other path: a JSON 404 under `/api/`, else a page.
pub async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        crate::routes::not_found()
    } else {
        error_page(ApiError::NotFound("there is no such page".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    fn cell(conclusion: &str, flaky: bool, failure: Option<&str>) -> Option<Arc<Cell>> {
        Some(Arc::new(Cell {
            conclusion: conclusion.into(),
            id: 7,
            html_url: "https://github.com/o/r/actions/runs/1/job/7".into(),
            run_attempt: 1,
            duration_s: None,
            flaky,
            runs: 1,
            failure: failure.map(|line| crate::job_rows::Failure {
                rule: "pytest failure".into(),
                line: line.into(),
                line_number: 3,
                captures: vec![],
            }),
            failed_test: None,
            failed_tests: None,
        }))
    }

    /// A plain cell is its conclusion and link only (the page's bulk); a cell with something
    /// to say (flaky, a failure line, an unstable column) keeps its hover text and data.
    #[test]
    fn the_grid_page_writes_plain_cells_short() {
        let grid = Grid {
            repository: "o/r".into(),
            branch: "main".into(),
            page: 1,
            per_page: 50,
            has_more: false,
            job_names: vec![
                "a / build".into(),
                "a / lint".into(),
                "a / test".into(),
                "b / rocm".into(),
            ],
            unstable_jobs: vec!["b / rocm".into()],
            commits: vec![crate::hud::GridRow {
                sha: "abcdef0123".into(),
                title: "Fix".into(),
                author: "x".into(),
                author_username: None,
                timestamp: None,
                url: String::new(),
                pr_number: None,
                jobs: vec![
                    cell("success", false, None),
                    cell("failure", false, Some("E   AssertionError")),
                    cell("success", true, None),
                    cell("success", false, None),
                ],
            }],
        };
        let html = GridPage { grid }.render().expect("renders");
        assert!(
            html.contains(r#"<td class="cell success"><a href="https://github.com/o/r/actions/runs/1/job/7">O</a></td>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-job="a / lint" data-conclusion="failure""#),
            "{html}"
        );
        assert!(
            html.contains(r#"title="a / lint: failure — E   AssertionError""#),
            "{html}"
        );
        assert!(
            html.contains(r#"title="a / test: success (flaky)""#),
            "{html}"
        );
        assert!(
            html.contains(r#"title="b / rocm: success (unstable)""#),
            "{html}"
        );
        // The plain cell's hover text comes from its column's header.
        assert!(
            html.contains(r#"<th class="job" title="a / build">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"grid.addEventListener("mouseover""#),
            "{html}"
        );
        assert_eq!(html.matches("data-job=").count(), 3, "{html}");
    }

    #[test]
    fn only_http_links_are_links() {
        assert_eq!(
            safe_href("https://github.com/a/b"),
            "https://github.com/a/b"
        );
        assert_eq!(safe_href("HTTP://x"), "HTTP://x");
        assert_eq!(safe_href("javascript:alert(1)"), "");
        assert_eq!(safe_href(" javascript:alert(1)"), "");
        assert_eq!(safe_href("data:text/html,x"), "");
        assert_eq!(safe_href(""), "");
        assert_eq!(path_encode("release/2.4#x%"), "release/2.4%23x%25");
        assert_eq!(
            history_href("o/r", "test_a[x y]", "m.C", ""),
            "/tests/o/r/history?name=test_a%5Bx%20y%5D&classname=m.C"
        );
    }
}
