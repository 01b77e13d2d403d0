//! The HUD pages: server-rendered HTML (askama templates in `api/templates/`, one stylesheet in
//! `api/static/`, no build step) over the same functions as the JSON endpoints, so a page and
//! its endpoint never disagree. Templates escape every value; a bad request or an unavailable
//! database is a page that says so, with the same status the endpoint would answer.
//!
//! One file per page family (the grid; commit and PR; the test pages; OOT); this one holds
//! what they share: rendering, the error page, links and the small text helpers.

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

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

mod commit_pages;
mod grid;
mod oot_pages;
mod test_pages;

pub use commit_pages::{commit_page, pull_page};
pub use grid::grid_page;
pub use oot_pages::{oot_backend_page, oot_summary_page};
pub use test_pages::{disabled_page, flaky_page, job_page, test_history_page};

const STYLESHEET: &str = include_str!("../../static/hud.css");

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

/// What `/hud/{repository}/{branch}` encodes of a branch: everything but RFC 3986's unreserved
/// characters and `/` (the grid's branch is a wildcard path).
const BRANCH_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'/');

/// What a query-string value encodes: everything but RFC 3986's unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A branch as the grid page's path carries it.
fn path_encode(branch: &str) -> String {
    utf8_percent_encode(branch, BRANCH_PATH).to_string()
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

/// A query-string value as a link carries it.
pub fn query_encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
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

type Path2 = RawPath<(String, String)>;

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
        assert_eq!(path_encode("gh/ü~x y"), "gh/%C3%BC%7Ex%20y");
        assert_eq!(
            query_encode("test_a[cuda] (x/y)&z=~é"),
            "test_a%5Bcuda%5D%20%28x%2Fy%29%26z%3D~%C3%A9"
        );
        assert_eq!(
            history_href("o/r", "test_a[x y]", "m.C", ""),
            "/tests/o/r/history?name=test_a%5Bx%20y%5D&classname=m.C"
        );
    }
}
