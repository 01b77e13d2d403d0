//! `hudstream status`: where every stage is in its topic, what every table holds, and — when a
//! hudstream process serves metrics at `telemetry.metrics_listen` — what the projections have
//! been doing (rows written and refused, batch sizes, insert latency, retries).
//!
//! The offsets come from the broker (each stage's committed offsets in its consumer group, and
//! each partition's end), not from the running process, so `status` answers even when the
//! stages are stopped; that is also where a stuck stage shows: its lag grows. (The end is the
//! broker's high watermark: on tansu, which reports one past the last *batch*, lag reads low.)

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::kafka::committed_offsets;
use hudstream_runtime::Config;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One partition of one stage's input.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionStatus {
    pub stage: String,
    pub topic: String,
    pub partition: i32,
    /// The next offset the stage will read (None: nothing committed yet).
    pub committed: Option<i64>,
    /// The offset the next append gets.
    pub end: i64,
    pub first: i64,
}

impl PartitionStatus {
    /// Records not yet handled by the stage.
    pub fn lag(&self) -> i64 {
        (self.end - self.committed.unwrap_or(self.first)).max(0)
    }
}

/// Committed offsets and ends for every stage that reads a topic.
pub fn offsets(config: &Config) -> anyhow::Result<Vec<PartitionStatus>> {
    let mut out = Vec::new();
    for (stage, topic) in crate::stages::consumers(config) {
        for p in committed_offsets(&config.kafka, &config.kafka.group(stage), topic)? {
            out.push(PartitionStatus {
                stage: stage.to_string(),
                topic: topic.to_string(),
                partition: p.partition,
                committed: p.committed,
                end: p.end,
                first: p.first,
            });
        }
    }
    Ok(out)
}

/// Rows per table: stored (every version) and current (FINAL: one per entity).
pub async fn tables(clickhouse: &ClickHouse) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let mut out = Vec::new();
    for encoder in hudstream_projections::all() {
        let table = encoder.table();
        let db = clickhouse.database();
        let counts: Vec<(u64, u64)> = clickhouse
            .fetch_all(&format!(
                "SELECT (SELECT count() FROM {db}.{table}) AS stored, (SELECT count() FROM {db}.{table} FINAL) AS current"
            ))
            .await?;
        let c = counts.first().copied().unwrap_or((0, 0));
        out.push((table.to_string(), c.0, c.1));
    }
    Ok(out)
}

/// The projection figures of a `/metrics` page, by table: name → value.
pub fn projection_metrics(page: &str) -> BTreeMap<String, BTreeMap<&'static str, f64>> {
    const WANTED: &[(&str, &str)] = &[
        ("hudstream_projection_rows_written_total", "rows written"),
        ("hudstream_projection_rows_refused_total", "rows refused"),
        ("hudstream_projection_batch_rows_count", "batches"),
        ("hudstream_projection_batch_rows_sum", "batch rows sum"),
        ("hudstream_projection_insert_seconds_count", "inserts"),
        (
            "hudstream_projection_insert_seconds_sum",
            "insert seconds sum",
        ),
    ];
    let mut out: BTreeMap<String, BTreeMap<&'static str, f64>> = BTreeMap::new();
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        let label = |key: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('}').trim_end_matches('"').to_string())
        };
        if let Some((_, what)) = WANTED.iter().find(|(n, _)| *n == name) {
            if let Some(table) = label("table") {
                *out.entry(table).or_default().entry(what).or_default() += value;
            }
        } else if name == "hudstream_projection_insert_seconds"
            && label("quantile").as_deref() == Some("0.99")
        {
            if let Some(table) = label("table") {
                out.entry(table)
                    .or_default()
                    .insert("insert p99 seconds", value);
            }
        } else if name == "hudstream_batch_retries_total" {
            if let Some(table) =
                label("stage").and_then(|s| s.strip_prefix("project.").map(str::to_string))
            {
                *out.entry(table).or_default().entry("retries").or_default() += value;
            }
        }
    }
    out
}

/// The whole report, as printed by `hudstream status`.
pub async fn report(config: &Config) -> anyhow::Result<String> {
    let mut s = String::new();
    let offsets = tokio::task::block_in_place(|| offsets(config))?;
    writeln!(
        s,
        "{:<28} {:<22} {:>4} {:>12} {:>12} {:>10}",
        "stage", "topic", "part", "committed", "end", "lag"
    )?;
    for p in &offsets {
        writeln!(
            s,
            "{:<28} {:<22} {:>4} {:>12} {:>12} {:>10}",
            p.stage,
            p.topic,
            p.partition,
            p.committed.map_or("-".to_string(), |c| c.to_string()),
            p.end,
            p.lag()
        )?;
    }
    let total: i64 = offsets.iter().map(PartitionStatus::lag).sum();
    writeln!(s, "total lag: {total} record(s)\n")?;

    let clickhouse = ClickHouse::new(&config.clickhouse)?;
    writeln!(
        s,
        "{:<20} {:>14} {:>14}",
        "table", "rows stored", "rows (FINAL)"
    )?;
    for (table, stored, current) in tables(&clickhouse).await? {
        writeln!(s, "{table:<20} {stored:>14} {current:>14}")?;
    }

    if !config.telemetry.metrics_listen.is_empty() {
        let url = format!("http://{}/metrics", config.telemetry.metrics_listen);
        let page = async {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()?
                .get(&url)
                .send()
                .await?
                .text()
                .await
        }
        .await;
        match page {
            Ok(page) => {
                writeln!(s, "\nprojections, since the process at {url} started:")?;
                writeln!(
                    s,
                    "{:<20} {:>12} {:>8} {:>9} {:>11} {:>15} {:>15} {:>8}",
                    "table",
                    "rows written",
                    "refused",
                    "batches",
                    "rows/batch",
                    "insert mean ms",
                    "insert p99 ms",
                    "retries"
                )?;
                for (table, m) in projection_metrics(&page) {
                    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
                    writeln!(
                        s,
                        "{table:<20} {:>12} {:>8} {:>9} {:>11.0} {:>15.1} {:>15.1} {:>8}",
                        get("rows written"),
                        get("rows refused"),
                        get("batches"),
                        get("batch rows sum") / get("batches").max(1.0),
                        1000.0 * get("insert seconds sum") / get("inserts").max(1.0),
                        1000.0 * get("insert p99 seconds"),
                        get("retries"),
                    )?;
                }
            }
            Err(e) => writeln!(
                s,
                "\n(no metrics from {url}: {e}; is a hudstream process running?)"
            )?,
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_projection_figures_from_a_metrics_page() {
        let page = "# TYPE x counter\n\
            hudstream_projection_rows_written_total{table=\"workflow_job\"} 120\n\
            hudstream_projection_insert_seconds{table=\"workflow_job\",quantile=\"0.99\"} 0.02\n\
            hudstream_projection_insert_seconds_sum{table=\"workflow_job\"} 0.1\n\
            hudstream_projection_insert_seconds_count{table=\"workflow_job\"} 4\n\
            hudstream_batch_retries_total{stage=\"project.workflow_job\"} 3\n\
            hudstream_batch_retries_total{stage=\"process.workflow_job\"} 9\n";
        let m = projection_metrics(page);
        let job = &m["workflow_job"];
        assert_eq!(job["rows written"], 120.0);
        assert_eq!(job["insert p99 seconds"], 0.02);
        assert_eq!(job["inserts"], 4.0);
        assert_eq!(job["retries"], 3.0);
        assert_eq!(m.len(), 1, "processor retries are not a table's");
    }

    #[test]
    fn lag_counts_from_the_first_offset_when_nothing_is_committed() {
        let p = PartitionStatus {
            stage: "s".into(),
            topic: "t".into(),
            partition: 0,
            committed: None,
            end: 10,
            first: 4,
        };
        assert_eq!(p.lag(), 6);
        assert_eq!(
            PartitionStatus {
                committed: Some(10),
                ..p
            }
            .lag(),
            0
        );
    }
}
