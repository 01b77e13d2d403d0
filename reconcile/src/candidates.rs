//! What a pass asks about: the stale jobs, stale runs and runs without jobs the tables hold
//! (`reconcile/queries/*.sql`, checked on both ClickHouse engines by the SQL check).

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;

use hudstream_runtime::clickhouse::{bind, ClickHouse, Param};

use crate::Reconciler;

const STALE_JOBS: &str = include_str!("../queries/stale_jobs.sql");
const STALE_RUNS: &str = include_str!("../queries/stale_runs.sql");
const RUNS_WITHOUT_JOBS: &str = include_str!("../queries/runs_without_jobs.sql");

/// What is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A job still queued, waiting or in progress: `GET .../actions/jobs/{id}`.
    Job,
    /// A run still requested, queued or in progress: `GET .../actions/runs/{id}`.
    Run,
    /// A run without a single job: `GET .../actions/runs/{id}/jobs`.
    RunJobs,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Job => "job",
            Kind::Run => "run",
            Kind::RunJobs => "run_jobs",
        }
    }
}

/// One job or run to ask GitHub about, with the state the table has for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub kind: Kind,
    pub repository: String,
    pub id: i64,
    /// The status the table has (`queued`, `in_progress`, … or `completed` for a run without
    /// jobs).
    pub status: String,
    /// The table's current version: GitHub's answer is appended only if the processors would
    /// give it a higher one, i.e. if it would change the table.
    pub version: u64,
}

/// A row of the three candidate queries (`reconcile/queries/*.sql`).
#[derive(Debug, clickhouse::Row, Deserialize)]
struct Row {
    repository_full_name: String,
    id: i64,
    status: String,
    version: u64,
    #[allow(dead_code)] // a column of the queries (their order): rows are read by position
    created_unix: u32,
}

impl Reconciler {
    /// The stale jobs, stale runs and runs without jobs in the tables as of `now_unix`, each
    /// list oldest first and at most one pass's worth long.
    pub async fn candidates(
        &self,
        clickhouse: &ClickHouse,
        now_unix: i64,
    ) -> anyhow::Result<Vec<Candidate>> {
        let stale_before = now_unix.saturating_sub((self.settings.stale_after_ms / 1000) as i64);
        let created_after = now_unix.saturating_sub((self.settings.lookback_ms / 1000) as i64);
        let params: BTreeMap<&str, Param> = [
            ("created_after", Param::UInt(created_after.max(0) as u64)),
            ("stale_before", Param::UInt(stale_before.max(0) as u64)),
            (
                "max_rows",
                Param::UInt(self.settings.max_requests_per_pass as u64),
            ),
        ]
        .into_iter()
        .collect();
        let mut lists = Vec::new();
        for (kind, name, sql) in [
            (Kind::Job, "stale_jobs", STALE_JOBS),
            (Kind::Run, "stale_runs", STALE_RUNS),
            (Kind::RunJobs, "runs_without_jobs", RUNS_WITHOUT_JOBS),
        ] {
            let sql = bind(sql, clickhouse.database(), &params)
                .with_context(|| format!("binding reconcile/queries/{name}.sql"))?;
            let rows: Vec<Row> = clickhouse
                .fetch_all(&sql)
                .await
                .with_context(|| format!("reading candidates (reconcile/queries/{name}.sql)"))?;
            lists.push(rows.into_iter().map(move |r| Candidate {
                kind,
                repository: r.repository_full_name,
                id: r.id,
                status: r.status,
                version: r.version,
            }));
        }
        // Taken in turn, one of each kind, so that jobs GitHub still calls queued (no runner
        // for their label) cannot use a whole pass's budget every pass.
        let mut out = Vec::new();
        loop {
            let before = out.len();
            for list in lists.iter_mut() {
                out.extend(list.next());
            }
            if out.len() == before {
                return Ok(out);
            }
        }
    }
}
