//! `GET /api/failures?repo&since&until&rule&page&per_page`: the most frequent failure captures
//! among the jobs that failed (failure, timed_out, cancelled) in a window — torchci's
//! `log_captures_count` — so a CI team sees which errors are hurting most. The window is on
//! the jobs' completion; the default is the last seven days.

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::job_rows::unix_instant;
use crate::params::{now_unix, Paging, QueryParams, RawQuery};
use crate::queries::{fetch, FAILURE_CAPTURES};

const PARAMS: &[&str] = &["repo", "since", "until", "rule", "page", "per_page"];

/// The longest window one request may ask for.
const MAX_WINDOW_S: i64 = 366 * 86_400;

/// A checked failures request.
#[derive(Debug, Clone)]
pub struct FailuresQuery {
    pub repository: String,
    pub since: i64,
    pub until: i64,
    pub rule: Option<String>,
    pub paging: Paging,
}

impl FailuresQuery {
    pub fn from_request(query: RawQuery) -> Result<Self, ApiError> {
        let params = QueryParams::parse(query, PARAMS)?;
        let repository = params.repository("repo")?;
        let until = params.instant("until", now_unix())?;
        let since = params.instant("since", (until - 7 * 86_400).max(0))?;
        if since >= until {
            return Err(ApiError::BadRequest(format!(
                "since ({since}) must be before until ({until})"
            )));
        }
        if until - since > MAX_WINDOW_S {
            return Err(ApiError::BadRequest(
                "the window from since to until may be at most 366 days".into(),
            ));
        }
        let rule = match params.text("rule") {
            None | Some("") => None,
            Some(r) if r.chars().count() > 200 || r.chars().any(char::is_control) => {
                return Err(ApiError::BadRequest(
                    "rule must be a rule's name: at most 200 characters, no control characters"
                        .into(),
                ))
            }
            Some(r) => Some(r.to_string()),
        };
        Ok(Self {
            repository,
            since,
            until,
            rule,
            paging: params.paging(50, 500)?,
        })
    }
}

/// One distinct set of captures and how often it was seen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaptureCount {
    pub captures: Vec<String>,
    pub rule: String,
    pub jobs: u64,
    pub last_seen: Option<String>,
    pub example_job_ids: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Failures {
    pub repository: String,
    pub since: Option<String>,
    pub until: Option<String>,
    pub rule: Option<String>,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Most frequent first.
    pub failures: Vec<CaptureCount>,
}

/// A row of `failure_captures`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct Row {
    captures: Vec<String>,
    jobs: u64,
    rule: String,
    last_seen_unix: u32,
    example_job_ids: Vec<i64>,
}

pub async fn failures(clickhouse: &ClickHouse, q: FailuresQuery) -> Result<Failures, ApiError> {
    let rows: Vec<Row> = fetch(
        clickhouse,
        &FAILURE_CAPTURES,
        &[
            ("repo", Param::Str(q.repository.clone())),
            ("since", Param::UInt(q.since as u64)),
            ("until", Param::UInt(q.until as u64)),
            ("rule", Param::Str(q.rule.clone().unwrap_or_default())),
            ("offset", Param::UInt(q.paging.offset())),
            ("page_size", Param::UInt(q.paging.per_page + 1)),
        ],
    )
    .await?;
    let (rows, has_more) = q.paging.trim(rows);
    Ok(Failures {
        repository: q.repository,
        since: unix_instant(q.since),
        until: unix_instant(q.until),
        rule: q.rule,
        page: q.paging.page,
        per_page: q.paging.per_page,
        has_more,
        failures: rows
            .into_iter()
            .map(|r| CaptureCount {
                captures: r.captures,
                rule: r.rule,
                jobs: r.jobs,
                last_seen: unix_instant(i64::from(r.last_seen_unix)),
                example_job_ids: r.example_job_ids,
            })
            .collect(),
    })
}
