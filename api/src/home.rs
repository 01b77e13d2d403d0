//! The home page's data: the repositories and branches that have data, most recently pushed
//! first, each with its newest commits' status at a glance (failed / passed / running jobs),
//! so a first visit leads somewhere (`home_branches.sql`, `home_commit_status.sql`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};

use crate::error::ApiError;
use crate::job_rows::unix_instant;
use crate::queries::{fetch, HOME_BRANCHES, HOME_COMMIT_STATUS};

/// Branches listed at most.
const MAX_BRANCHES: u64 = 50;

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BranchRow {
    repository: String,
    r#ref: String,
    last_push_unix: u32,
    commits: u64,
    newest: Vec<(String, u32)>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct StatusRow {
    sha: String,
    failed: u64,
    passed: u64,
    running: u64,
}

/// One commit at a glance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HomeCommit {
    pub sha: String,
    pub failed: u64,
    pub passed: u64,
    pub running: u64,
}

impl HomeCommit {
    /// `failure` if a job failed, else `pending` while any runs, `success` if any passed,
    /// `none` without jobs: the chip's class.
    pub fn status(&self) -> &'static str {
        if self.failed > 0 {
            "failure"
        } else if self.running > 0 {
            "pending"
        } else if self.passed > 0 {
            "success"
        } else {
            "none"
        }
    }

    pub fn short_sha(&self) -> &str {
        &self.sha[..self.sha.len().min(7)]
    }
}

/// A branch with data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HomeBranch {
    pub repository: String,
    pub branch: String,
    pub last_push: Option<String>,
    pub commits: u64,
    /// Newest first.
    pub newest: Vec<HomeCommit>,
}

/// The home page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Home {
    pub branches: Vec<HomeBranch>,
}

pub async fn home(clickhouse: &ClickHouse) -> Result<Home, ApiError> {
    let rows: Vec<BranchRow> = fetch(
        clickhouse,
        &HOME_BRANCHES,
        &[("page_size", Param::UInt(MAX_BRANCHES))],
    )
    .await?;
    let mut shas: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &rows {
        shas.entry(row.repository.clone())
            .or_default()
            .extend(row.newest.iter().map(|(sha, _)| sha.clone()));
    }
    let statuses = futures::future::try_join_all(shas.into_iter().map(|(repo, shas)| async move {
        let params = [
            ("repo", Param::Str(repo.clone())),
            ("shas", Param::StrArray(shas.into_iter().collect())),
        ];
        fetch::<StatusRow>(clickhouse, &HOME_COMMIT_STATUS, &params)
            .await
            .map(|rows| (repo, rows))
    }))
    .await?;
    let status: BTreeMap<(String, String), StatusRow> = statuses
        .into_iter()
        .flat_map(|(repo, rows)| {
            rows.into_iter()
                .map(move |r| ((repo.clone(), r.sha.clone()), r))
        })
        .collect();
    let branches = rows
        .into_iter()
        .map(|row| {
            let newest = row
                .newest
                .iter()
                .map(|(sha, _)| {
                    let s = status.get(&(row.repository.clone(), sha.clone()));
                    HomeCommit {
                        sha: sha.clone(),
                        failed: s.map_or(0, |s| s.failed),
                        passed: s.map_or(0, |s| s.passed),
                        running: s.map_or(0, |s| s.running),
                    }
                })
                .collect();
            HomeBranch {
                branch: row.r#ref.trim_start_matches("refs/heads/").to_string(),
                last_push: unix_instant(i64::from(row.last_push_unix)),
                commits: row.commits,
                newest,
                repository: row.repository,
            }
        })
        .collect();
    Ok(Home { branches })
}
