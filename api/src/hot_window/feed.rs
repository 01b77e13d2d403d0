//! Filling the hot window: load it from ClickHouse, then follow the derived topics.
//!
//! The order is what makes it whole (see `runtime::kafka::follow`): the follower first learns
//! where each table's writer stands and starts there; only then are the tables read. Every
//! record is therefore in what was loaded, or read from the log, or both (merged by version).
//! A commit that enters a window from the log has its jobs read from ClickHouse (they may have
//! been written before the follower started), and a repository new to the window its issues.
//!
//! The follower runs until shutdown; if it stops being able to read, the window stops
//! answering (pages come from ClickHouse), `hudstream_api_hot_window_serving` drops to 0 and a
//! warning says why, until it reads again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hudstream_projections::commit::CommitRow as CommitRecord;
use hudstream_projections::issue::IssueRow;
use hudstream_projections::job_classification::JobClassificationRow;
use hudstream_projections::workflow_job::WorkflowJobRow;
use hudstream_runtime::clickhouse::{ClickHouse, Param};
use hudstream_runtime::config::{BatchLimits, KafkaConfig};
use hudstream_runtime::kafka::admin::{group_positions, group_reader, partition_watermarks};
use hudstream_runtime::kafka::{FollowFrom, Follower};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::InRecord;
use hudstream_schemas::issue::Issue;
use hudstream_schemas::job_log::JobClassification;
use hudstream_schemas::push::Commit;
use hudstream_schemas::test_report::{TestCases, TestReport};
use hudstream_schemas::wire::RecordType;
use hudstream_schemas::workflow_job::WorkflowJob;

use super::model::{
    Branch, Limits, LoadedCommit, LoadedIssue, LoadedJob, Model, TestTopic, Wanted,
};
use super::HotWindow;
use crate::error::ApiError;
use crate::queries::{
    fetch, HOT_WINDOW_COMMITS, HOT_WINDOW_ISSUES, HOT_WINDOW_JOBS, HOT_WINDOW_REFS,
};

/// Commits asked for in one `hot_window_jobs` query.
const SHAS_PER_QUERY: usize = 50;
/// How often the test writers' positions are looked up.
const WRITERS_EVERY: Duration = Duration::from_millis(500);

/// The topics the window follows.
fn followed() -> [&'static str; 6] {
    [
        Commit::TOPIC,
        WorkflowJob::TOPIC,
        JobClassification::TOPIC,
        Issue::TOPIC,
        TestCases::TOPIC,
        TestReport::TOPIC,
    ]
}

/// Every projection's consumer group that reads `topic`.
fn writers(kafka: &KafkaConfig, topic: &str) -> Vec<String> {
    hudstream_projections::all()
        .iter()
        .filter(|p| p.topic() == topic)
        .map(|p| kafka.group(p.stage()))
        .collect()
}

/// A row of `hot_window_refs.sql`.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct RefRow {
    repository_full_name: String,
    #[serde(rename = "ref")]
    git_ref: String,
}

/// Reads the window's contents from ClickHouse into a new model.
pub async fn load(
    clickhouse: &ClickHouse,
    branches: &[String],
    limits: Limits,
) -> Result<Model, ApiError> {
    let mut model = Model::new(branches, limits);
    let refs: Vec<RefRow> = fetch(
        clickhouse,
        &HOT_WINDOW_REFS,
        &[("refs", Param::StrArray(model.refs().to_vec()))],
    )
    .await?;
    for r in refs {
        let commits: Vec<LoadedCommit> = fetch(
            clickhouse,
            &HOT_WINDOW_COMMITS,
            &[
                ("repo", Param::Str(r.repository_full_name.clone())),
                ("ref", Param::Str(r.git_ref.clone())),
                ("page_size", Param::UInt(limits.commits as u64 + 1)),
            ],
        )
        .await?;
        model.load_branch(
            Branch {
                repository: r.repository_full_name,
                git_ref: r.git_ref,
            },
            commits,
        );
    }
    for repository in model.repositories() {
        let shas = model.held_commits(&repository);
        load_jobs(clickhouse, &mut model, &repository, &shas).await?;
        load_issues(clickhouse, &mut model, &repository).await?;
    }
    Ok(model)
}

/// Loads the window from ClickHouse and answers from it, without following a log (the read
/// benchmark's generated tables have none).
pub async fn load_into(hot: &HotWindow, clickhouse: &ClickHouse) -> Result<(), ApiError> {
    let model = load(clickhouse, &hot.branches, hot.limits).await?;
    hot.replace(model);
    Ok(())
}

async fn query_jobs(
    clickhouse: &ClickHouse,
    repository: &str,
    shas: &[String],
) -> Result<Vec<LoadedJob>, ApiError> {
    fetch(
        clickhouse,
        &HOT_WINDOW_JOBS,
        &[
            ("repo", Param::Str(repository.to_string())),
            ("shas", Param::StrArray(shas.to_vec())),
        ],
    )
    .await
}

async fn load_jobs(
    clickhouse: &ClickHouse,
    model: &mut Model,
    repository: &str,
    shas: &[String],
) -> Result<(), ApiError> {
    for chunk in shas.chunks(SHAS_PER_QUERY) {
        let rows = query_jobs(clickhouse, repository, chunk).await?;
        model.load_jobs(repository, rows, chunk);
    }
    Ok(())
}

async fn load_issues(
    clickhouse: &ClickHouse,
    model: &mut Model,
    repository: &str,
) -> Result<(), ApiError> {
    let rows: Vec<LoadedIssue> = fetch(
        clickhouse,
        &HOT_WINDOW_ISSUES,
        &[("repo", Param::Str(repository.to_string()))],
    )
    .await?;
    model.load_issues(repository, rows);
    Ok(())
}

/// `owner/repo` and the job id from a test record's key (`{owner}/{repo}/{job id}/{report}`).
fn test_record_job(key: &[u8]) -> Option<(String, i64)> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.splitn(4, '/');
    let (owner, repo, job) = (parts.next()?, parts.next()?, parts.next()?);
    Some((format!("{owner}/{repo}"), job.parse().ok()?))
}

/// Applies one record; a record that does not decode is skipped (its projection dead-letters
/// it, so the table does not have it either).
fn apply(model: &mut Model, record: &InRecord, wanted: &mut Wanted) {
    let skipped = |what: &str, e: String| {
        metrics::counter!("hudstream_api_hot_window_undecodable_total", "topic" => record.topic.clone())
            .increment(1);
        tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, error = %e, "hot window: skipped an undecodable {what}");
    };
    let topic = record.topic.as_str();
    if topic == Commit::TOPIC {
        match record.decode::<Commit>() {
            Ok(c) => model.apply_commit(CommitRecord::from(c), wanted),
            Err(e) => skipped("commit", e),
        }
    } else if topic == WorkflowJob::TOPIC {
        match record.decode::<WorkflowJob>() {
            Ok(j) => model.apply_job(WorkflowJobRow::from(j)),
            Err(e) => skipped("job", e),
        }
    } else if topic == JobClassification::TOPIC {
        match record.decode::<JobClassification>() {
            Ok(v) => model.apply_verdict(JobClassificationRow::from(v)),
            Err(e) => skipped("verdict", e),
        }
    } else if topic == Issue::TOPIC {
        match record.decode::<Issue>() {
            Ok(i) => model.apply_issue(IssueRow::from(i)),
            Err(e) => skipped("issue", e),
        }
    } else if topic == TestCases::TOPIC || topic == TestReport::TOPIC {
        let which = if topic == TestCases::TOPIC {
            TestTopic::Cases
        } else {
            TestTopic::Reports
        };
        if let Some((repository, job)) = record.key.as_deref().and_then(test_record_job) {
            model.apply_test_record(&repository, job, which, record.partition, record.offset);
        }
    }
}

/// Loads the window, then follows the log until `shutdown`. Errors while loading are retried
/// (the API answers from ClickHouse meanwhile).
pub async fn run(
    hot: Arc<HotWindow>,
    clickhouse: ClickHouse,
    kafka: KafkaConfig,
    limits: BatchLimits,
    shutdown: CancellationToken,
) {
    let stall_after = limits.stall_after.max(Duration::from_secs(5));
    let topics: Vec<FollowFrom> = followed()
        .into_iter()
        .map(|topic| FollowFrom {
            topic,
            writer_groups: writers(&kafka, topic),
        })
        .collect();
    let reader = format!("api.hot_window.{}", hot.instance);
    // Open the follower, then load: retried until both work.
    let (follower, model) = loop {
        let started = Instant::now();
        let attempt = async {
            let follower = Follower::open(&kafka, &reader, &topics).map_err(|e| e.to_string())?;
            let model = load(&clickhouse, &hot.branches, hot.limits)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((follower, model))
        };
        match attempt.await {
            Ok(ready) => {
                let (commits, jobs, _) = ready.1.sizes();
                tracing::info!(
                    commits,
                    jobs,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "hot window loaded; following the log"
                );
                break ready;
            }
            Err(e) => {
                tracing::warn!(error = %e, "hot window: loading failed; pages come from ClickHouse, trying again in 5 s");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        }
    };
    {
        let mut positions = hot.positions.lock().unwrap_or_else(|p| p.into_inner());
        for s in follower.starts() {
            positions.insert((s.topic.clone(), s.partition), s.offset);
        }
    }
    hot.replace(model);
    let writers_task = tokio::spawn(watch(
        hot.clone(),
        kafka.clone(),
        stall_after,
        limits.watch_interval,
        shutdown.clone(),
    ));
    // What entered the window and still has to be read from ClickHouse (kept until it is).
    let mut backlog = Wanted::default();
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => break,
            b = follower.next_batch(limits, &shutdown), if backlog.is_empty() => b,
            b = follower.poll(limits, Duration::from_secs(1)), if !backlog.is_empty() => b,
        };
        let records = match batch {
            Ok(records) => records,
            Err(e) => {
                hot.set_serving(false, &format!("the log cannot be read: {e}"));
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if !records.is_empty() {
            let mut model = hot.write();
            for record in &records {
                apply(&mut model, record, &mut backlog);
            }
        }
        hot.applied(&records);
        if !backlog.is_empty() {
            match fetch_wanted(&hot, &clickhouse, &backlog).await {
                Ok(()) => backlog = Wanted::default(),
                // Those commits' pages come from ClickHouse until it works.
                Err(e) => {
                    tracing::warn!(error = %e, "hot window: reading what entered the window from ClickHouse failed; trying again")
                }
            }
        }
        hot.set_serving(true, "");
    }
    writers_task.abort();
}

/// Reads what commits entering the window and new repositories need, retrying until it works
/// (those commits' pages come from ClickHouse meanwhile).
async fn fetch_wanted(
    hot: &HotWindow,
    clickhouse: &ClickHouse,
    wanted: &Wanted,
) -> Result<(), ApiError> {
    let mut by_repository: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (repository, sha) in &wanted.commits {
        by_repository
            .entry(repository.clone())
            .or_default()
            .push(sha.clone());
    }
    for (repository, shas) in by_repository {
        for chunk in shas.chunks(SHAS_PER_QUERY) {
            let rows = query_jobs(clickhouse, &repository, chunk).await?;
            hot.write().load_jobs(&repository, rows, chunk);
        }
    }
    for repository in &wanted.issues {
        let rows: Vec<LoadedIssue> = fetch(
            clickhouse,
            &HOT_WINDOW_ISSUES,
            &[("repo", Param::Str(repository.clone()))],
        )
        .await?;
        hot.write().load_issues(repository, rows);
    }
    Ok(())
}

/// While some job's test records are not known to be in ClickHouse, tells the model every half
/// second where the test tables' writers stand (so it knows when ClickHouse's answer about the
/// job's failing tests includes every test record the window has seen); every `lag_every`,
/// checks that the follower keeps up with the log — records waiting and no progress for
/// `stall_after` stops the window answering (`hudstream_api_hot_window_lag_records` says how
/// far behind it is).
async fn watch(
    hot: Arc<HotWindow>,
    kafka: KafkaConfig,
    stall_after: Duration,
    lag_every: Duration,
    shutdown: CancellationToken,
) {
    let topics = [
        (TestTopic::Cases, TestCases::TOPIC),
        (TestTopic::Reports, TestReport::TOPIC),
    ];
    let mut readers = Some(HashMap::new());
    let mut last_progress = (0i64, Instant::now());
    let mut last_lag_check: Option<Instant> = None;
    loop {
        // Each look costs the broker a few requests per partition: the writers' positions are
        // looked up only while some job waits for them, the lag every `lag_every`.
        let want_writers = hot.read().has_outstanding();
        let want_lag = last_lag_check.is_none_or(|t| t.elapsed() >= lag_every);
        if !want_writers && !want_lag {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(WRITERS_EVERY) => continue,
            }
        }
        if want_lag {
            last_lag_check = Some(Instant::now());
        }
        let kafka_ = kafka.clone();
        let Some(mut held) = readers.take() else {
            return;
        };
        let positions = hot
            .positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // The group lookups block: off the async threads.
        let looked = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for (which, topic) in topics.into_iter().filter(|_| want_writers) {
                let mut lowest: BTreeMap<i32, i64> = BTreeMap::new();
                let mut known = true;
                for group in writers(&kafka_, topic) {
                    if !held.contains_key(&group) {
                        match group_reader(&kafka_, &group) {
                            Ok(r) => {
                                held.insert(group.clone(), r);
                            }
                            Err(_) => {
                                known = false;
                                continue;
                            }
                        }
                    }
                    match group_positions(&held[&group], &kafka_, topic) {
                        Ok(positions) => {
                            for p in positions {
                                let at = p.committed.unwrap_or(p.first);
                                let entry = lowest.entry(p.partition).or_insert(at);
                                *entry = (*entry).min(at);
                            }
                        }
                        Err(_) => known = false,
                    }
                }
                if known {
                    found.push((which, lowest));
                }
            }
            // How far the follower is behind the log's ends.
            let mut lag = None;
            if held.is_empty() {
                if let Some(group) = writers(&kafka_, TestReport::TOPIC).into_iter().next() {
                    if let Ok(r) = group_reader(&kafka_, &group) {
                        held.insert(group, r);
                    }
                }
            }
            if let Some(any) = held.values().next().filter(|_| want_lag) {
                let mut behind = 0i64;
                let mut all = true;
                for topic in followed() {
                    match partition_watermarks(any, &kafka_.topic(topic)) {
                        Ok(marks) => {
                            for (partition, (_, end)) in marks {
                                let at = positions
                                    .get(&(topic.to_string(), partition))
                                    .copied()
                                    .unwrap_or(0);
                                behind += (end - at).max(0);
                            }
                        }
                        Err(_) => all = false,
                    }
                }
                lag = all.then_some(behind);
            }
            (held, found, lag)
        })
        .await;
        let Ok((held, found, lag)) = looked else {
            return;
        };
        readers = Some(held);
        {
            let mut model = hot.write();
            for (which, lowest) in &found {
                model.set_written(*which, lowest);
            }
        }
        if let Some(lag) = lag {
            metrics::gauge!("hudstream_api_hot_window_lag_records").set(lag as f64);
            let read: i64 = hot
                .positions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .sum();
            if lag == 0 || read != last_progress.0 {
                last_progress = (read, Instant::now());
            } else if last_progress.1.elapsed() > stall_after {
                hot.set_serving(
                    false,
                    &format!(
                        "{lag} records behind the log with no progress for {} s",
                        stall_after.as_secs()
                    ),
                );
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(WRITERS_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_records_key_names_its_job() {
        assert_eq!(
            test_record_job(b"pytorch/pytorch/123/test-reports/a b.xml"),
            Some(("pytorch/pytorch".into(), 123))
        );
        assert_eq!(test_record_job(b"pytorch/pytorch/x/r"), None);
        assert_eq!(test_record_job(b"nope"), None);
    }
}
