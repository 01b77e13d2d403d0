//! Is each stage consuming? Every `pipeline.watch_interval_ms`, the stage's committed offsets in
//! its group and its topic's ends, for every partition of the topic — assigned to it or not:
//! librdkafka's statistics cover only assigned partitions, so a stage assigned none reported a
//! lag of 0 while records waited (a delivery acknowledged and never projected).
//!
//! A stage with records waiting whose committed offsets have not moved for
//! `pipeline.stall_after_ms` is **stalled**: `hudstream_stage_stalled{stage}` is 1, the
//! process's `/readyz` answers 503 naming the stage, its waiting records, its assigned
//! partitions and how long it has not committed, and the shipped alert
//! `HudstreamStageStalled` fires. `hudstream_stage_lag{stage}` is the records waiting, from the
//! group's commits and the log's ends — on real Kafka (and on a broker that reports exact high
//! watermarks) exact; on tansu, which reports one past the last *batch*, low but never 0 while a
//! batch waits.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::KafkaConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};

use crate::kafka::admin::{group_positions, group_reader, GroupPosition};
use crate::kafka::rewind::rewind_past_the_end;

/// What the watch knows of one stage (keyed by its consumer group: one process may run the
/// same stage for several deployments, as the end-to-end tests do).
#[derive(Debug, Clone)]
struct Watched {
    stage: &'static str,
    topic: String,
    assigned: Option<usize>,
    lag: i64,
    committed: i64,
    last_progress: Instant,
    stalled: Option<String>,
}

static WATCHED: LazyLock<Mutex<BTreeMap<String, Watched>>> = LazyLock::new(Default::default);

fn watched() -> std::sync::MutexGuard<'static, BTreeMap<String, Watched>> {
    // Every write is whole: a panic elsewhere cannot leave an entry half-updated.
    WATCHED.lock().unwrap_or_else(|p| p.into_inner())
}

/// The stage consuming as `group` now holds `partitions` partitions (after a rebalance).
pub fn assigned(group: &str, partitions: usize) {
    if let Some(w) = watched().get_mut(group) {
        w.assigned = Some(partitions);
    }
}

/// The stage consuming as `group` committed a batch: it is consuming.
pub fn committed(group: &str) {
    if let Some(w) = watched().get_mut(group) {
        w.last_progress = Instant::now();
        w.stalled = None;
    }
}

/// Every stalled stage of this process with the reason, for `/readyz`.
pub fn stalled() -> Vec<String> {
    watched()
        .values()
        .filter_map(|w| w.stalled.as_ref().map(|why| format!("{}: {why}", w.stage)))
        .collect()
}

/// Whether this process runs any watched stage.
pub fn any_watched() -> bool {
    !watched().is_empty()
}

/// Watches `stage` (group `kafka.group(stage)`, topic `logical`, read by `consumer`) until
/// shutdown; puts the consumer back at the start of a log that was replaced under it
/// ([`rewind_past_the_end`]). The watch never owns the consumer: closing one can block (see
/// `run_stage`), so the stage alone drops it, on a thread of its own.
pub async fn watch<C, X>(
    kafka: KafkaConfig,
    stage: &'static str,
    logical: String,
    consumer: std::sync::Weak<C>,
    interval: Duration,
    stall_after: Duration,
    shutdown: CancellationToken,
) where
    C: Consumer<X> + Send + Sync + 'static,
    X: ConsumerContext + 'static,
{
    let group = kafka.group(stage);
    watched().insert(
        group.clone(),
        Watched {
            stage,
            topic: kafka.topic(&logical),
            assigned: None,
            lag: 0,
            committed: 0,
            last_progress: Instant::now(),
            stalled: None,
        },
    );
    let reader = match group_reader(&kafka, &group) {
        Ok(reader) => Arc::new(reader),
        Err(e) => {
            tracing::warn!(stage, error = %e, "stage watch: no client; the stage is not watched");
            watched().remove(&group);
            return;
        }
    };
    let mut suspects = BTreeMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
        let (r, k, l) = (reader.clone(), kafka.clone(), logical.clone());
        let positions = tokio::task::spawn_blocking(move || group_positions(&r, &k, &l)).await;
        let positions = match positions {
            Ok(Ok(p)) => p,
            // The broker not answering is the broker probe's to report.
            Ok(Err(e)) => {
                tracing::debug!(stage, error = %e, "stage watch: offsets unavailable");
                continue;
            }
            Err(_) => continue,
        };
        suspects = rewind(
            stage,
            &consumer,
            &reader,
            &kafka.topic(&logical),
            &positions,
            suspects,
        )
        .await;
        let lag: i64 = positions
            .iter()
            .map(|p| (p.end - p.committed.unwrap_or(p.first)).max(0))
            .sum();
        let committed: i64 = positions
            .iter()
            .map(|p| p.committed.unwrap_or(p.first))
            .sum();
        let mut all = watched();
        let Some(w) = all.get_mut(&group) else {
            continue;
        };
        if lag == 0 || committed != w.committed {
            w.last_progress = Instant::now();
        }
        w.lag = lag;
        w.committed = committed;
        let idle = w.last_progress.elapsed();
        w.stalled = (lag > 0 && idle >= stall_after).then(|| {
            format!(
                "{lag} record(s) of {} waiting, none committed for {} s ({} of its {} partition(s) assigned to this consumer)",
                w.topic,
                idle.as_secs(),
                w.assigned.map_or("none yet".to_string(), |n| n.to_string()),
                positions.len()
            )
        });
        if let Some(why) = &w.stalled {
            tracing::warn!(stage, reason = %why, "stage is not consuming");
        }
        metrics::gauge!("hudstream_stage_lag", "stage" => stage).set(lag as f64);
        metrics::gauge!("hudstream_stage_stalled", "stage" => stage).set(if w.stalled.is_some() {
            1.0
        } else {
            0.0
        });
    }
    watched().remove(&group);
}

/// Puts `consumer` back inside its log where the log was replaced under it, and says so.
/// Answers the suspects for the next look.
async fn rewind<C, X>(
    stage: &'static str,
    consumer: &std::sync::Weak<C>,
    probe: &Arc<BaseConsumer>,
    topic: &str,
    log: &[GroupPosition],
    suspects: BTreeMap<i32, i64>,
) -> BTreeMap<i32, i64>
where
    C: Consumer<X> + Send + Sync + 'static,
    X: ConsumerContext + 'static,
{
    let (c, p, t, l) = (
        consumer.clone(),
        probe.clone(),
        topic.to_string(),
        log.to_vec(),
    );
    let look = move || match c.upgrade() {
        Some(c) => rewind_past_the_end(&*c, &p, &t, &l, &suspects),
        None => Ok(Default::default()), // the stage has stopped
    };
    match tokio::task::spawn_blocking(look).await {
        Ok(Ok(looked)) => {
            for r in looked.rewound {
                metrics::counter!("hudstream_stage_rewinds_total", "stage" => stage).increment(1);
                tracing::warn!(
                    stage,
                    topic,
                    partition = r.partition,
                    position = r.position,
                    log_end = r.end,
                    reading_from = r.to,
                    "this stage stood past the end of its log — the topic was deleted and \
                     created again, or truncated; reading the new log from its start"
                );
            }
            looked.suspects
        }
        Ok(Err(e)) => {
            tracing::debug!(stage, error = %e, "stage watch: positions unavailable");
            BTreeMap::new()
        }
        Err(_) => BTreeMap::new(),
    }
}
