//! `hudstream reclassify`: classify stored logs again, after a ruleset change.
//!
//! The jobs are a list (`--job owner/repo/id`) or every job that completed in a time range
//! with a stored log. Each log is streamed from the store and classified with the configured
//! ruleset (or `--ruleset FILE`); the new verdicts are appended to `hud.job_classification.v1`
//! like the classifier's own. Their `classified_at` is now, so their version is higher and
//! they supersede the old verdicts in the table — deterministically, on a replay as well.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde::Deserialize;

use hudstream_api::queries::{JOBS_TO_RECLASSIFY, JOB_LOG_FOR_RECLASSIFY};
use hudstream_classifier::{Options, Ruleset};
use hudstream_logs::classify::classify_log;
use hudstream_runtime::clickhouse::{bind, ClickHouse, Param};
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::store::BlobStore;
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Config;
use hudstream_schemas::job_log::{log_state, outcome, JobLog};
use hudstream_schemas::wire::RecordType;

pub struct Args {
    pub jobs: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub ruleset: Option<PathBuf>,
    pub dry_run: bool,
}

/// A row of `jobs_to_reclassify` and `job_log_for_reclassify`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct StoredRow {
    repository_full_name: String,
    job_id: i64,
    head_sha: String,
    log_location: String,
    log_partial: u8,
    outcome: String,
    rule: String,
    line: String,
}

/// `YYYY-MM-DD[Thh:mm:ss[Z]]` → ClickHouse's `YYYY-MM-DD hh:mm:ss`.
fn clickhouse_instant(text: &str) -> anyhow::Result<String> {
    let t = text.trim().trim_end_matches('Z').replacen('T', " ", 1);
    let t = if t.len() == 10 {
        format!("{t} 00:00:00")
    } else {
        t
    };
    chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S").with_context(|| {
        format!("{text:?} is not a UTC instant like 2026-11-01 or 2026-11-01T12:00:00Z")
    })?;
    Ok(t)
}

async fn targets(config: &Config, args: &Args) -> anyhow::Result<Vec<StoredRow>> {
    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    let db = clickhouse.database().to_string();
    let mut rows = Vec::new();
    if !args.jobs.is_empty() {
        for job in &args.jobs {
            let (repository, id) = job
                .rsplit_once('/')
                .filter(|(repo, _)| repo.contains('/'))
                .with_context(|| format!("--job {job:?} is not owner/repo/job_id"))?;
            let id: i64 = id
                .parse()
                .with_context(|| format!("--job {job:?}: {id:?} is not a job id"))?;
            let params = BTreeMap::from([
                ("repo", Param::Str(repository.to_string())),
                ("job_id", Param::Int(id)),
            ]);
            let sql = bind(JOB_LOG_FOR_RECLASSIFY.sql, &db, &params)?;
            let found: Vec<StoredRow> = clickhouse.fetch_all(&sql).await?;
            match found.into_iter().next() {
                Some(row) => rows.push(row),
                None => eprintln!("{job}: no stored log has been classified; skipped"),
            }
        }
        return Ok(rows);
    }
    let (Some(since), until) = (&args.since, &args.until) else {
        anyhow::bail!(
            "say which jobs: --job owner/repo/id (repeatable) or --since TIME [--until TIME]"
        );
    };
    let until = match until {
        Some(u) => clickhouse_instant(u)?,
        None => chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
    };
    let params = BTreeMap::from([
        ("since", Param::Str(clickhouse_instant(since)?)),
        ("until", Param::Str(until)),
    ]);
    let sql = bind(JOBS_TO_RECLASSIFY.sql, &db, &params)?;
    rows.extend(clickhouse.fetch_all::<StoredRow>(&sql).await?);
    Ok(rows)
}

pub async fn run(config: &Config, args: Args) -> anyhow::Result<()> {
    let ruleset: Arc<Ruleset> = match &args.ruleset {
        Some(path) => Arc::new(
            Ruleset::from_path(path).with_context(|| format!("loading {}", path.display()))?,
        ),
        None => crate::open_ruleset(config)?.current(),
    };
    let store = BlobStore::open(&config.logs.store)?;
    let rows = targets(config, &args).await?;
    let options = Options {
        context_depth: config.logs.context_depth,
    };
    let appender = if args.dry_run {
        None
    } else {
        Some(Appender::new(&config.kafka).context("creating the Kafka producer")?)
    };
    println!(
        "reclassifying {} job(s) with {} ({} rules){}",
        rows.len(),
        ruleset.hash(),
        ruleset.rules().len(),
        if args.dry_run {
            "; dry run, nothing is appended"
        } else {
            ""
        }
    );
    let (mut changed, mut failed) = (0usize, 0usize);
    for row in &rows {
        let log = JobLog {
            version: 0,
            repository_full_name: row.repository_full_name.clone(),
            job_id: row.job_id,
            head_sha: row.head_sha.clone(),
            conclusion: String::new(),
            state: if row.log_partial != 0 {
                log_state::PARTIAL
            } else {
                log_state::STORED
            }
            .into(),
            location: row.log_location.clone(),
            compressed_bytes: 0,
            source: "reclassify".into(),
            reason: String::new(),
            fetched_at: 0,
        };
        let verdict = match classify_log(&store, ruleset.clone(), &log, &options).await {
            Ok(v) => v,
            Err(e) => {
                failed += 1;
                eprintln!("{}/{}: {e}", row.repository_full_name, row.job_id);
                continue;
            }
        };
        if matches!(
            verdict.outcome.as_str(),
            outcome::LOG_GONE | outcome::LOG_UNAVAILABLE
        ) {
            // Such a verdict ranks below any verdict on a log: it could never supersede.
            failed += 1;
            let what = if verdict.outcome == outcome::LOG_GONE {
                "missing"
            } else {
                "unreadable"
            };
            eprintln!(
                "{}/{}: the stored log {} is {what}; the old verdict stays",
                row.repository_full_name, row.job_id, row.log_location
            );
            continue;
        }
        let differs =
            verdict.outcome != row.outcome || verdict.rule != row.rule || verdict.line != row.line;
        if differs {
            changed += 1;
            println!(
                "{}/{}: {:?} → {:?} {}",
                row.repository_full_name,
                row.job_id,
                row.rule,
                verdict.rule,
                verdict.line.chars().take(120).collect::<String>()
            );
        }
        if let Some(appender) = &appender {
            let record = OutRecord::encoded(&verdict)?;
            appender
                .append(&record)
                .await
                .with_context(|| format!("appending the verdict for {}", verdict.key()))?;
        }
    }
    println!(
        "{} job(s) classified again: {changed} verdict(s) changed, {failed} failed",
        rows.len() - failed
    );
    if failed > 0 {
        anyhow::bail!("{failed} job(s) could not be classified again (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_accept_dates_and_rfc3339() {
        assert_eq!(
            clickhouse_instant("2026-11-01").unwrap(),
            "2026-11-01 00:00:00"
        );
        assert_eq!(
            clickhouse_instant("2026-11-01T12:30:00Z").unwrap(),
            "2026-11-01 12:30:00"
        );
        assert!(clickhouse_instant("yesterday").is_err());
    }
}
