//! Jobs as lists show them — the grid's cells, the commit page, the PR page — from the rows of
//! `jobs_for_commits.sql`, and the time and conclusion conventions every view shares.

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{format_datetime, DateTime};

/// A row of `jobs_for_commits`, or of `grid_jobs`, which answers the same columns but only fills
/// those a grid cell shows (the others are constants: a few bytes each, nothing read). A job
/// without a verdict has the verdict columns' defaults.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct JobRow {
    pub head_sha: String,
    pub id: i64,
    pub version: u64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub workflow_name: String,
    pub name: String,
    pub status: String,
    pub conclusion: String,
    pub created_at: DateTime,
    pub started_at: DateTime,
    pub completed_at: DateTime,
    pub queue_time_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub labels: Vec<String>,
    pub runner_name: String,
    pub html_url: String,
    pub failure_outcome: String,
    pub failure_rule: String,
    pub failure_line: String,
    pub failure_line_number: i64,
    pub failure_captures: Vec<String>,
}

/// A row of `verdicts_for_commits`: the classifier's newest verdict on one job.
#[derive(Debug, Clone, clickhouse::Row, Deserialize)]
pub struct VerdictRow {
    pub job_id: i64,
    pub outcome: String,
    pub rule: String,
    pub line: String,
    pub line_number: i64,
    pub captures: Vec<String>,
}

/// The jobs of some commits (`query`: `grid_jobs` or `jobs_for_commits`, whose verdict columns
/// are empty) with their verdicts, both read at once and joined here by job id — on 18.16 one
/// statement with the join cost more than the two reads apart (verdicts_for_commits.sql).
pub async fn with_verdicts(
    clickhouse: &hudstream_runtime::clickhouse::ClickHouse,
    query: &crate::queries::SavedQuery,
    repository: &str,
    shas: Vec<String>,
) -> Result<Vec<JobRow>, crate::error::ApiError> {
    use hudstream_runtime::clickhouse::Param;
    let params = [
        ("repo", Param::Str(repository.to_string())),
        ("shas", Param::StrArray(shas)),
    ];
    let (jobs, verdicts) = tokio::join!(
        crate::queries::fetch::<JobRow>(clickhouse, query, &params),
        crate::queries::fetch::<VerdictRow>(
            clickhouse,
            &crate::queries::VERDICTS_FOR_COMMITS,
            &params
        ),
    );
    let mut jobs = jobs?;
    let verdicts: std::collections::HashMap<i64, VerdictRow> =
        verdicts?.into_iter().map(|v| (v.job_id, v)).collect();
    for job in &mut jobs {
        if let Some(v) = verdicts.get(&job.id) {
            job.failure_outcome.clone_from(&v.outcome);
            job.failure_rule.clone_from(&v.rule);
            job.failure_line.clone_from(&v.line);
            job.failure_line_number = v.line_number;
            job.failure_captures.clone_from(&v.captures);
        }
    }
    Ok(jobs)
}

/// The classifier's verdict on a failed job, as lists show it: torchci's failure line,
/// line number and captures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub rule: String,
    pub line: String,
    pub line_number: i64,
    pub captures: Vec<String>,
}

/// One job in a list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JobSummary {
    pub id: i64,
    pub run_id: i64,
    pub run_attempt: i64,
    pub workflow_name: String,
    pub job_name: String,
    /// The grid's column: `"{workflow} / {job}"`.
    pub name: String,
    pub head_sha: String,
    pub status: String,
    /// GitHub's conclusion, or `queued`/`pending` while there is none (torchci's rule).
    pub conclusion: String,
    pub created_at: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub queue_time_s: Option<f64>,
    pub duration_s: Option<f64>,
    pub labels: Vec<String>,
    pub runner: Option<String>,
    pub html_url: String,
    pub failure: Option<Failure>,
    pub version: u64,
}

impl From<JobRow> for JobSummary {
    fn from(r: JobRow) -> Self {
        let failure = (r.failure_outcome == "matched").then(|| Failure {
            rule: r.failure_rule,
            line: r.failure_line,
            line_number: r.failure_line_number,
            captures: r.failure_captures,
        });
        JobSummary {
            name: column_name(&r.workflow_name, &r.name),
            conclusion: display_conclusion(&r.status, &r.conclusion),
            id: r.id,
            run_id: r.run_id,
            run_attempt: r.run_attempt,
            workflow_name: r.workflow_name,
            job_name: r.name,
            head_sha: r.head_sha,
            status: r.status,
            created_at: instant_of(r.created_at),
            started_at: instant_of(r.started_at),
            completed_at: instant_of(r.completed_at),
            queue_time_s: r.queue_time_s,
            duration_s: r.duration_s,
            labels: r.labels,
            runner: non_empty(r.runner_name),
            html_url: r.html_url,
            failure,
            version: r.version,
        }
    }
}

/// torchci's job name, `"{workflow_name} / {job_name}"` (just the job's name when the
/// workflow's is unknown).
pub fn column_name(workflow: &str, job: &str) -> String {
    if workflow.is_empty() {
        job.to_string()
    } else {
        format!("{workflow} / {job}")
    }
}

/// torchci's `conclusion`: GitHub's, or `queued` for a queued job without one, else `pending`.
pub fn display_conclusion(status: &str, conclusion: &str) -> String {
    match (conclusion, status) {
        ("", "queued") => "queued".into(),
        ("", _) => "pending".into(),
        (c, _) => c.to_string(),
    }
}

/// ClickHouse `YYYY-MM-DD hh:mm:ss` (UTC) → RFC 3339; the epoch means "not yet".
pub fn instant(text: &str) -> Option<String> {
    if text.is_empty() || text.starts_with("1970-01-01 00:00:00") || text.starts_with("0000-00-00")
    {
        return None;
    }
    Some(format!("{}Z", text.replacen(' ', "T", 1)))
}

/// A ClickHouse `DateTime` → RFC 3339; the epoch means "not yet".
pub fn instant_of(t: DateTime) -> Option<String> {
    unix_instant(t.seconds())
}

/// Unix seconds → RFC 3339; 0 means "never".
pub fn unix_instant(seconds: i64) -> Option<String> {
    (seconds > 0)
        .then(|| instant(&format_datetime(seconds)))
        .flatten()
}

pub fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A commit message's first line.
pub fn title(message: &str) -> String {
    message.lines().next().unwrap_or("").trim().to_string()
}

/// The PR number a merged commit's title ends with, as in `Fix foo (#1234)` — how torchci
/// links grid rows to PRs.
pub fn pr_number_in_title(title: &str) -> Option<i64> {
    let rest = title.trim_end().strip_suffix(')')?;
    let start = rest.rfind("(#")?;
    rest[start + 2..].parse().ok().filter(|n: &i64| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions() {
        assert_eq!(
            instant("2021-08-05 10:38:16").as_deref(),
            Some("2021-08-05T10:38:16Z")
        );
        assert_eq!(instant("1970-01-01 00:00:00"), None);
        assert_eq!(
            unix_instant(1_628_160_256).as_deref(),
            Some("2021-08-05T10:44:16Z")
        );
        assert_eq!(unix_instant(0), None);
        assert_eq!(display_conclusion("queued", ""), "queued");
        assert_eq!(display_conclusion("in_progress", ""), "pending");
        assert_eq!(display_conclusion("waiting", ""), "pending");
        assert_eq!(display_conclusion("completed", "failure"), "failure");
        assert_eq!(column_name("pull", "linux / build"), "pull / linux / build");
        assert_eq!(column_name("", "Test workflow"), "Test workflow");
        assert_eq!(pr_number_in_title("Fix the thing (#133842)"), Some(133842));
        assert_eq!(pr_number_in_title("Fix (#12) things"), None);
        assert_eq!(pr_number_in_title("no number"), None);
        assert_eq!(title("first\n\nbody"), "first");
    }
}
