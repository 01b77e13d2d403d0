//! `GET /api/queued?repo&max_age_h&page&per_page`: the jobs queued now, by runner label, with
//! how long each has waited — torchci's `queued_jobs_by_label`, what the runner autoscaler and
//! an on-call engineer look at. A job queued longer than `max_age_h` (default 24 hours) is left
//! out: it is far more likely a lost webhook than a real queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::job_rows::{column_name, unix_instant};
use crate::params::{now_unix, Paging, QueryParams, RawQuery};
use crate::queries::{fetch, QUEUED_JOBS};

const PARAMS: &[&str] = &["repo", "max_age_h", "page", "per_page"];

#[derive(Debug, Clone)]
pub struct QueuedQuery {
    pub repository: String,
    pub max_age_h: u64,
    pub paging: Paging,
}

impl QueuedQuery {
    pub fn from_request(query: RawQuery) -> Result<Self, ApiError> {
        let params = QueryParams::parse(query, PARAMS)?;
        let repository = params.repository("repo")?;
        Ok(Self {
            repository,
            max_age_h: params.number("max_age_h", 24, 1, 24 * 365 * 10)?,
            paging: params.paging(100, 1000)?,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueuedJob {
    pub id: i64,
    pub name: String,
    pub head_sha: String,
    pub created_at: Option<String>,
    pub queue_s: i64,
    pub html_url: String,
}

/// The queue of one runner label (`""` for a job that asked for none).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabelQueue {
    pub label: String,
    pub queued: u64,
    pub max_queue_s: i64,
    /// Longest-waiting first.
    pub jobs: Vec<QueuedJob>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Queued {
    pub repository: String,
    pub max_age_h: u64,
    pub page: u64,
    pub per_page: u64,
    pub has_more: bool,
    /// Longest wait first.
    pub labels: Vec<LabelQueue>,
}

/// A row of `queued_jobs`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct Row {
    label: String,
    id: i64,
    name: String,
    workflow_name: String,
    head_sha: String,
    created_unix: u32,
    html_url: String,
}

pub async fn queued(clickhouse: &ClickHouse, q: QueuedQuery) -> Result<Queued, ApiError> {
    let rows: Vec<Row> = fetch(
        clickhouse,
        &QUEUED_JOBS,
        &[
            ("repo", Param::Str(q.repository.clone())),
            ("max_age_s", Param::UInt(q.max_age_h * 3600)),
        ],
    )
    .await?;
    let now = now_unix();
    let mut by_label: BTreeMap<String, Vec<QueuedJob>> = BTreeMap::new();
    for r in rows {
        by_label.entry(r.label).or_default().push(QueuedJob {
            id: r.id,
            name: column_name(&r.workflow_name, &r.name),
            head_sha: r.head_sha,
            created_at: unix_instant(i64::from(r.created_unix)),
            queue_s: (now - i64::from(r.created_unix)).max(0),
            html_url: r.html_url,
        });
    }
    let mut labels: Vec<LabelQueue> = by_label
        .into_iter()
        .map(|(label, mut jobs)| {
            jobs.sort_by(|a, b| b.queue_s.cmp(&a.queue_s).then(a.id.cmp(&b.id)));
            LabelQueue {
                label,
                queued: jobs.len() as u64,
                max_queue_s: jobs.first().map(|j| j.queue_s).unwrap_or(0),
                jobs,
            }
        })
        .collect();
    labels.sort_by(|a, b| {
        b.max_queue_s
            .cmp(&a.max_queue_s)
            .then(a.label.cmp(&b.label))
    });
    let (labels, has_more) = q.paging.slice(labels);
    Ok(Queued {
        repository: q.repository,
        max_age_h: q.max_age_h,
        page: q.paging.page,
        per_page: q.paging.per_page,
        has_more,
        labels,
    })
}
