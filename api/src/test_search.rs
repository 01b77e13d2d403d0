//! `GET /api/tests/{owner}/{repo}/slowest?days=` — the tests that take longest when they pass —
//! and `GET /api/tests/{owner}/{repo}/search?q=&days=` — tests by part of their name, class or
//! file, most run first.

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::job_rows::unix_instant;
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, TEST_SEARCH, TEST_SLOWEST};
use crate::test_history::required_text;

/// The longest window, in days.
pub const MAX_DAYS: u64 = 90;

/// A row of `test_slowest`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct SlowRow {
    file: String,
    classname: String,
    name: String,
    runs: u64,
    mean_s: f64,
    max_s: f64,
    last_seen_unix: u32,
}

/// A row of `test_search`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct FoundRow {
    file: String,
    classname: String,
    name: String,
    runs: u64,
    failures: u64,
    last_seen_unix: u32,
}

/// A slow test.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SlowTest {
    pub file: String,
    pub classname: String,
    pub name: String,
    /// Passing runs in the window.
    pub runs: u64,
    pub mean_s: f64,
    pub max_s: f64,
    pub last_seen: Option<String>,
}

/// A test found by a search.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FoundTest {
    pub file: String,
    pub classname: String,
    pub name: String,
    pub runs: u64,
    /// Runs that failed or errored.
    pub failures: u64,
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SlowestTests {
    pub repository: String,
    pub days: u64,
    pub tests: Vec<SlowTest>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchResult {
    pub repository: String,
    pub q: String,
    pub days: u64,
    pub tests: Vec<FoundTest>,
}

fn since(days: u64) -> u64 {
    (params::now_unix() - days as i64 * 86_400).max(0) as u64
}

/// The slowest tests a request asks for: `days` (7), `limit` (50, at most 1000).
pub async fn slowest_from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<SlowestTests, ApiError> {
    let (owner, repo) = params::path(path)?;
    let query = QueryParams::parse(query, &["days", "limit"])?;
    let repository = params::repository(&owner, &repo)?;
    let days = query.number("days", 7, 1, MAX_DAYS)?;
    let limit = query.number("limit", 50, 1, 1000)?;
    let rows: Vec<SlowRow> = fetch(
        clickhouse,
        &TEST_SLOWEST,
        &[
            ("repo", Param::Str(repository.clone())),
            ("since", Param::UInt(since(days))),
            ("limit", Param::UInt(limit)),
        ],
    )
    .await?;
    Ok(SlowestTests {
        repository,
        days,
        tests: rows
            .into_iter()
            .map(|r| SlowTest {
                file: r.file,
                classname: r.classname,
                name: r.name,
                runs: r.runs,
                mean_s: r.mean_s,
                max_s: r.max_s,
                last_seen: unix_instant(i64::from(r.last_seen_unix)),
            })
            .collect(),
    })
}

/// The search a request asks for: `q` (required, at most 200 bytes), `days` (7), `limit`
/// (50, at most 1000).
pub async fn search_from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<SearchResult, ApiError> {
    let (owner, repo) = params::path(path)?;
    let query = QueryParams::parse(query, &["q", "days", "limit"])?;
    let repository = params::repository(&owner, &repo)?;
    let q = required_text(&query, "q")?;
    if q.len() > 200 {
        return Err(ApiError::BadRequest(format!(
            "q is {} bytes long; at most 200",
            q.len()
        )));
    }
    // A search reads every name of the window: a week by default (~0.8 s over a month's
    // 50 M cases on the 2-core test box, ~3.3 s for the whole month).
    let days = query.number("days", 7, 1, MAX_DAYS)?;
    let limit = query.number("limit", 50, 1, 1000)?;
    let rows: Vec<FoundRow> = fetch(
        clickhouse,
        &TEST_SEARCH,
        &[
            ("repo", Param::Str(repository.clone())),
            ("q", Param::Str(q.clone())),
            ("since", Param::UInt(since(days))),
            ("limit", Param::UInt(limit)),
        ],
    )
    .await?;
    Ok(SearchResult {
        repository,
        q,
        days,
        tests: rows
            .into_iter()
            .map(|r| FoundTest {
                file: r.file,
                classname: r.classname,
                name: r.name,
                runs: r.runs,
                failures: r.failures,
                last_seen: unix_instant(i64::from(r.last_seen_unix)),
            })
            .collect(),
    })
}
