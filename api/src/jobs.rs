//! `GET /api/jobs/{owner}/{repo}/{job_id}`: one job's current state, with the verdict on its
//! log (`classification`, `null` until the log has been classified).

use serde::{Deserialize, Serialize};

use hudstream_projections::job_classification::JobClassificationRow;
use hudstream_projections::workflow_job::{JobPageRow, WorkflowJobRow};
use hudstream_runtime::clickhouse::{ClickHouse, DateTime, Param};

use crate::error::ApiError;
use crate::job_rows::{instant_of, non_empty};
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, JOB_BY_ID, JOB_CLASSIFICATION_BY_ID, JOB_PAGE, JOB_REPLICATION};

/// The rule engine's verdict on a job's log, as the API shows it: torchci's
/// `{rule, line, line_num, captures, context}` plus where it came from.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Classification {
    /// `matched`, `no_match`, `log_gone` or `log_unavailable`.
    pub outcome: String,
    pub rule: Option<String>,
    pub line: Option<String>,
    pub line_number: Option<i64>,
    pub captures: Vec<String>,
    pub context: Vec<String>,
    pub ruleset_hash: String,
    pub engine_version: String,
    pub log_location: Option<String>,
    pub log_partial: bool,
    pub log_bytes: i64,
    pub classified_at: Option<String>,
    pub version: u64,
}

impl From<JobClassificationRow> for Classification {
    fn from(r: JobClassificationRow) -> Self {
        let matched = r.outcome == "matched";
        Classification {
            outcome: r.outcome,
            rule: matched.then_some(r.rule),
            line: matched.then_some(r.line),
            line_number: matched.then_some(r.line_number),
            captures: r.captures,
            context: r.context,
            ruleset_hash: r.ruleset_hash,
            engine_version: r.engine_version,
            log_location: non_empty(r.log_location),
            log_partial: r.log_partial,
            log_bytes: r.log_bytes,
            classified_at: instant_of(r.classified_at),
            version: r.version,
        }
    }
}

/// A job as the API shows it. Instants are RFC 3339 UTC, `null` until they happen.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Job {
    pub repository: String,
    pub id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub node_id: String,
    pub workflow_name: String,
    pub name: String,
    pub head_sha: String,
    pub head_branch: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub queue_time_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub labels: Vec<String>,
    pub runner: Option<Runner>,
    pub steps: Vec<Step>,
    pub url: String,
    pub html_url: String,
    pub run_url: String,
    pub check_run_url: String,
    pub version: u64,
    /// The verdict on the job's log; `null` until there is one.
    pub classification: Option<Classification>,
    /// When the job and its run were last written by a webhook and by GitHub's API.
    pub replication: Replication,
}

/// WebhookDB's `last_replicated_via_webhook_at` / `last_replicated_via_api_at`, for the job and
/// its run: `null` where no such write has happened. A job GitHub stopped telling about shows
/// an old webhook time; one kept alive only by the reconciler or a backfill shows no webhook.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Replication {
    pub job_via_webhook_at: Option<String>,
    pub job_via_api_at: Option<String>,
    /// `reconciler` or `backfill`: who made the last API write of the job.
    pub job_via_api_origin: Option<String>,
    pub run_via_webhook_at: Option<String>,
    pub run_via_api_at: Option<String>,
}

/// A row of `job_replication.sql`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ReplicationRow {
    kind: String,
    via: String,
    last_origin: String,
    last_at: DateTime,
}

impl Replication {
    /// The job page's line: when a webhook and GitHub's API last wrote the job and its run.
    pub fn summary(&self) -> String {
        let when = |t: &Option<String>| t.clone().unwrap_or_else(|| "never".into());
        let api = match (&self.job_via_api_at, &self.job_via_api_origin) {
            (Some(t), Some(origin)) => format!("{t} ({origin})"),
            (t, _) => when(t),
        };
        format!(
            "Last updated by a webhook {} · by GitHub's API {api} — its run: by a webhook {}, by the API {}",
            when(&self.job_via_webhook_at),
            when(&self.run_via_webhook_at),
            when(&self.run_via_api_at)
        )
    }

    fn from_rows(rows: Vec<ReplicationRow>) -> Self {
        let mut r = Replication::default();
        for row in rows {
            let at = instant_of(row.last_at);
            match (row.kind.as_str(), row.via.as_str()) {
                ("job", "webhook") => r.job_via_webhook_at = at,
                ("job", "api") => {
                    r.job_via_api_at = at;
                    r.job_via_api_origin = non_empty(row.last_origin);
                }
                ("run", "webhook") => r.run_via_webhook_at = at,
                ("run", "api") => r.run_via_api_at = at,
                _ => {}
            }
        }
        r
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Runner {
    pub id: i64,
    pub name: String,
    pub group_id: i64,
    pub group_name: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub number: i64,
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

impl From<WorkflowJobRow> for Job {
    fn from(r: WorkflowJobRow) -> Self {
        let steps = (0..r.steps_number.len())
            .map(|i| Step {
                number: r.steps_number[i],
                name: r.steps_name.get(i).cloned().unwrap_or_default(),
                status: r.steps_status.get(i).cloned().unwrap_or_default(),
                conclusion: r.steps_conclusion.get(i).cloned().and_then(non_empty),
                started_at: r.steps_started_at.get(i).and_then(|t| instant_of(*t)),
                completed_at: r.steps_completed_at.get(i).and_then(|t| instant_of(*t)),
            })
            .collect();
        let runner = (!r.runner_name.is_empty() || r.runner_id != 0).then(|| Runner {
            id: r.runner_id,
            name: r.runner_name,
            group_id: r.runner_group_id,
            group_name: r.runner_group_name,
        });
        Job {
            repository: r.repository_full_name,
            id: r.id,
            run_id: r.run_id,
            run_attempt: r.run_attempt,
            node_id: r.node_id,
            workflow_name: r.workflow_name,
            name: r.name,
            head_sha: r.head_sha,
            head_branch: r.head_branch,
            status: r.status,
            conclusion: non_empty(r.conclusion),
            created_at: instant_of(r.created_at),
            started_at: instant_of(r.started_at),
            completed_at: instant_of(r.completed_at),
            queue_time_s: r.queue_time_s,
            duration_s: r.duration_s,
            labels: r.labels,
            runner,
            steps,
            url: r.url,
            html_url: r.html_url,
            run_url: r.run_url,
            check_run_url: r.check_run_url,
            version: r.version,
            classification: None,
            replication: Replication::default(),
        }
    }
}

/// One job with its verdict; `None` if no webhook has told of it.
pub async fn job(
    clickhouse: &ClickHouse,
    repository: &str,
    job_id: i64,
) -> Result<Option<Job>, ApiError> {
    let params = [
        ("repo", Param::Str(repository.to_string())),
        ("job_id", Param::Int(job_id)),
    ];
    // Three point lookups at once: the job, its verdict, and when it and its run were written.
    let (pages, verdicts, replication) = tokio::join!(
        fetch::<JobPageRow>(clickhouse, &JOB_PAGE, &params),
        fetch::<JobClassificationRow>(clickhouse, &JOB_CLASSIFICATION_BY_ID, &params),
        fetch::<ReplicationRow>(clickhouse, &JOB_REPLICATION, &params)
    );
    let from_page = pages?.into_iter().next().and_then(|page| {
        page.row()
            .map_err(|e| {
                // Written by another version of the row (a replay of job_page mends it); the
                // columns still answer.
                tracing::warn!(job_id, %repository, version = page.version, error = %e, "job_page's document does not read as a workflow_job row; reading its columns");
            })
            .ok()
    });
    let row = match from_page {
        Some(row) => row,
        // Not in job_page (yet): its columns, where every job is.
        None => match fetch::<WorkflowJobRow>(clickhouse, &JOB_BY_ID, &params)
            .await?
            .into_iter()
            .next()
        {
            Some(row) => row,
            None => return Ok(None),
        },
    };
    let mut job = Job::from(row);
    job.classification = verdicts?.into_iter().next().map(Classification::from);
    job.replication = Replication::from_rows(replication?);
    Ok(Some(job))
}

/// The job a request asks for.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String, String)>,
    query: RawQuery,
) -> Result<Job, ApiError> {
    let (owner, repo, job_id) = params::path(path)?;
    QueryParams::parse(query, &[])?;
    let repository = params::repository(&owner, &repo)?;
    let job_id = params::positive("the job id", &job_id)?;
    job(clickhouse, &repository, job_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no job {job_id} in {repository}")))
}
