//! Rebuilding tables from the archive: `hudstream replay --from-archive`.
//!
//! Every raw record is read back — from the archive, then from Kafka for whatever offsets the
//! archive lacks (the archive stage lags by up to a batch; a file may be lost) — and run through
//! the same processors as the live pipeline; what they derive is written into shadow tables by
//! the projections' own writers, which are then swapped in ([`ShadowBuild`]). Raw order is kept
//! per partition, as Kafka gives it; the tables do not depend on order anyway (every row is
//! versioned by its content).
//!
//! Some tables are not made of raw records by the processors and are not rebuilt from here:
//! `job_classification` (made from stored logs; `hudstream replay job_classification` or
//! `hudstream reclassify`), the test tables (made from stored reports by the parser stage;
//! `hudstream replay test_case` and the like) and `dead_letter` (made of what stages set aside;
//! `hudstream replay dead_letter`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use hudstream_archive::Archive;
use hudstream_projections::Encoder;
use hudstream_runtime::kafka::LogReader;
use hudstream_runtime::worker::{Action, DynProcessor, InRecord, Processor};
use hudstream_schemas::topics::{
    catalogue, TopicKind, DEAD_LETTERS, HUD_JOB_CLASSIFICATION_V1, HUD_TEST_CASES_V1,
    HUD_TEST_REPORT_V1,
};

use crate::{Replayer, Report, ShadowBuild};

/// Topics of tables that the processors do not derive from raw records.
pub const NOT_FROM_RAW: &[&str] = &[
    HUD_JOB_CLASSIFICATION_V1,
    HUD_TEST_CASES_V1,
    HUD_TEST_REPORT_V1,
    DEAD_LETTERS,
];

/// What a rebuild from the archive did.
#[derive(Debug, Default)]
pub struct ArchiveReport {
    pub files: u64,
    /// Records read from the archive (duplicates not counted).
    pub archived_records: u64,
    /// Records a redelivered batch had archived twice, skipped.
    pub duplicates: u64,
    /// Records read from Kafka because the archive lacked them (not written yet, or a file lost).
    pub kafka_records: u64,
    /// Derived records the processors made.
    pub derived: u64,
    /// Records the processors set aside (already dead letters from the live run; not appended
    /// again).
    pub dead_letters: u64,
    /// Offsets neither in the archive nor in Kafka any more, per topic and partition.
    pub gaps: Vec<String>,
    pub tables: Vec<Report>,
    pub elapsed: std::time::Duration,
}

/// Splits `encoders` into those rebuildable from raw records and those that are not.
pub fn rebuildable(
    encoders: Vec<Arc<dyn Encoder>>,
) -> (Vec<Arc<dyn Encoder>>, Vec<Arc<dyn Encoder>>) {
    encoders
        .into_iter()
        .partition(|e| !NOT_FROM_RAW.contains(&e.topic()))
}

/// Runs raw records through the processors into the shadow tables.
struct Deriver {
    /// The processors, by the raw topic they read.
    processors: BTreeMap<&'static str, Vec<DynProcessor>>,
    build: ShadowBuild,
    wanted: BTreeSet<&'static str>,
    report: ArchiveReport,
}

impl Deriver {
    async fn derive(&mut self, record: &InRecord) -> anyhow::Result<()> {
        let Some(processors) = self.processors.get(record.topic.as_str()) else {
            return Ok(());
        };
        for processor in processors {
            for action in processor.process(record) {
                match action {
                    Action::Publish(out) => {
                        if !self.wanted.contains(out.topic.as_str()) {
                            continue;
                        }
                        self.report.derived += 1;
                        self.build
                            .push(InRecord {
                                topic: out.topic,
                                // Not read from a topic: no position of its own (its
                                // `hudstream-source` header names the raw record).
                                partition: -1,
                                offset: -1,
                                key: Some(out.key),
                                payload: Some(out.payload),
                                headers: out.headers,
                                timestamp_ms: record.timestamp_ms,
                            })
                            .await?;
                    }
                    Action::DeadLetter { reason } => {
                        // The live processor set it aside already: it is in the dead-letter
                        // topic and table. Appending it again would count it twice.
                        self.report.dead_letters += 1;
                        tracing::debug!(source = %record.source(), %reason, "set aside again by the processor");
                    }
                }
            }
        }
        Ok(())
    }
}

/// Rebuilds `encoders`' tables (those made of raw records) from the archive, then from Kafka
/// for what the archive lacks; swaps them in. Records that are in neither (Kafka's retention
/// dropped them before the archive had them, or an archive file was lost) are gaps: the rebuild
/// stops before the swap, leaving the live tables as they were, unless `allow_gaps`.
pub async fn rebuild(
    archive: &Archive,
    replayer: &Replayer,
    encoders: Vec<Arc<dyn Encoder>>,
    allow_gaps: bool,
) -> anyhow::Result<ArchiveReport> {
    let started = Instant::now();
    let (encoders, not_raw) = rebuildable(encoders);
    if encoders.is_empty() {
        let names: Vec<&str> = not_raw.iter().map(|e| e.table()).collect();
        anyhow::bail!(
            "{} not made of raw records, so not rebuilt from the archive: replay it from Kafka (`hudstream replay {}`)",
            names.join(", "),
            names.first().copied().unwrap_or("TABLE")
        );
    }
    let build = replayer.begin(encoders).await?;
    let wanted = build.topics();
    let mut processors: BTreeMap<&'static str, Vec<DynProcessor>> = BTreeMap::new();
    for p in hudstream_processors::all() {
        processors.entry(p.input_topic()).or_default().push(p);
    }
    let mut deriver = Deriver {
        processors,
        build,
        wanted,
        report: ArchiveReport::default(),
    };
    if let Err(e) = derive_all(archive, replayer, &mut deriver).await {
        deriver.build.abort().await?;
        return Err(e.context("rebuilding from the archive failed; the live tables are unchanged"));
    }
    let mut report = std::mem::take(&mut deriver.report);
    if !report.gaps.is_empty() && !allow_gaps {
        deriver.build.abort().await?;
        anyhow::bail!(
            "records are missing from both the archive and Kafka, so the rebuilt tables would lack them; the live tables are unchanged (--allow-gaps rebuilds anyway):\n  {}",
            report.gaps.join("\n  ")
        );
    }
    report.tables = deriver.build.finish().await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// Offsets of one partition, as contiguous runs `(first, last)` in order.
type Runs = Vec<(i64, i64)>;

/// Every raw record of every raw topic a processor reads: the archive first, then Kafka for
/// whatever offsets the archive lacks.
async fn derive_all(
    archive: &Archive,
    replayer: &Replayer,
    deriver: &mut Deriver,
) -> anyhow::Result<()> {
    // Archived raw topics without a processor (ping, release, …) feed no table.
    let topics: Vec<String> = catalogue()
        .into_iter()
        .filter(|t| t.kind == TopicKind::Raw && deriver.processors.contains_key(t.name.as_str()))
        .map(|t| t.name)
        .collect();
    for topic in topics {
        // Per partition, the offsets read so far: a file written twice (a batch redelivered
        // after a crash) overlaps them and is skipped; a lost file leaves a hole between them.
        let mut covered: BTreeMap<i32, Runs> = BTreeMap::new();
        for file in archive.files(&topic).await? {
            deriver.report.files += 1;
            for record in archive.read(&file).await? {
                let runs = covered.entry(record.partition).or_default();
                match runs.last_mut() {
                    Some((_, last)) if record.offset <= *last => {
                        deriver.report.duplicates += 1;
                        continue;
                    }
                    Some((_, last)) if record.offset == *last + 1 => *last = record.offset,
                    _ => runs.push((record.offset, record.offset)),
                }
                deriver.report.archived_records += 1;
                deriver.derive(&record).await?;
            }
        }
        from_kafka(replayer, &topic, &covered, deriver).await?;
    }
    Ok(())
}

/// For one partition the archive holds `runs` of and whose first offset still in Kafka is
/// `low`: the ranges to read from Kafka — the holes before and between the runs, and all after
/// the last (open-ended: tansu under-reports where a partition ends, so the end is found by
/// reading) — and the gaps, the parts of those below `low` that no longer exist anywhere.
fn kafka_reads(runs: &[(i64, i64)], low: i64) -> (Runs, Runs) {
    let mut lacking = Vec::new();
    let mut next = 0;
    for &(first, last) in runs {
        if first > next {
            lacking.push((next, first - 1));
        }
        next = next.max(last + 1);
    }
    lacking.push((next, i64::MAX));
    let gaps = lacking
        .iter()
        .filter(|(first, _)| *first < low)
        .map(|&(first, last)| (first, last.min(low - 1)))
        .collect();
    let reads = lacking
        .into_iter()
        .filter(|(_, last)| *last >= low)
        .map(|(first, last)| (first.max(low), last))
        .collect();
    (reads, gaps)
}

/// Reads from Kafka every offset of `topic` the archive lacks (`covered` is what it holds),
/// to the end of the log; what Kafka no longer has either is a gap.
async fn from_kafka(
    replayer: &Replayer,
    topic: &str,
    covered: &BTreeMap<i32, Runs>,
    deriver: &mut Deriver,
) -> anyhow::Result<()> {
    let mut reader = LogReader::open(
        &replayer.kafka,
        topic,
        &replayer.group(&format!("archive.{topic}")),
    )?;
    let watermarks = tokio::task::block_in_place(|| reader.watermarks())?;
    let mut from = BTreeMap::new();
    let mut ends = BTreeMap::new();
    let mut wanted: BTreeMap<i32, Runs> = BTreeMap::new();
    let none = Runs::new();
    for (partition, (low, high)) in watermarks {
        let (needed, gaps) = kafka_reads(covered.get(&partition).unwrap_or(&none), low);
        for (first, last) in gaps {
            deriver.report.gaps.push(format!(
                "{topic} partition {partition}: offsets {first}..={last} are neither archived nor in Kafka any more"
            ));
        }
        if let Some((start, _)) = needed.first() {
            from.insert(partition, *start);
            ends.insert(partition, high);
            wanted.insert(partition, needed);
        }
    }
    if from.is_empty() {
        return Ok(());
    }
    reader.assign(&from)?;
    loop {
        // Up to the ends the broker reported, then on until the log is quiet.
        let batch = reader
            .next_batch(
                replayer.limits,
                &mut ends,
                std::time::Duration::from_millis(200),
            )
            .await?;
        if batch.is_empty() {
            break;
        }
        for record in batch {
            // Only the offsets the archive lacks; what it holds was derived already. (Records
            // appended since the start are read too: harmless, the rows are versioned.)
            let lacking = wanted.get(&record.partition).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|(a, b)| (*a..=*b).contains(&record.offset))
            });
            if lacking {
                deriver.report.kafka_records += 1;
                deriver.derive(&record).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::kafka_reads;

    #[test]
    fn kafka_supplies_the_holes_the_head_and_the_tail() {
        const END: i64 = i64::MAX;
        let none: Vec<(i64, i64)> = vec![];
        // Archived: 0..=4 and 8..=9 (the file of 5..=7 lost); Kafka still has everything.
        assert_eq!(
            kafka_reads(&[(0, 4), (8, 9)], 0),
            (vec![(5, 7), (10, END)], none.clone())
        );
        // The archive stage started late: nothing below 3, which Kafka still has.
        assert_eq!(
            kafka_reads(&[(3, 5)], 0),
            (vec![(0, 2), (6, END)], none.clone())
        );
        // All archived: only what comes after; an empty archive: everything.
        assert_eq!(kafka_reads(&[(0, 9)], 0), (vec![(10, END)], none.clone()));
        assert_eq!(kafka_reads(&[], 0), (vec![(0, END)], none.clone()));
    }

    #[test]
    fn what_neither_the_archive_nor_kafka_has_is_a_gap() {
        const END: i64 = i64::MAX;
        // Kafka's retention dropped offsets below 7; the archive lost the file of 5..=7.
        assert_eq!(
            kafka_reads(&[(0, 4), (8, 9)], 7),
            (vec![(7, 7), (10, END)], vec![(5, 6)])
        );
        // Everything below 20 dropped, the archive ends at 9: 10..=19 exist nowhere.
        assert_eq!(
            kafka_reads(&[(0, 9)], 20),
            (vec![(20, END)], vec![(10, 19)])
        );
        // An archive started after retention dropped 0..=2: a gap at the head.
        assert_eq!(kafka_reads(&[(3, 9)], 3), (vec![(10, END)], vec![(0, 2)]));
        // Dropped, but archived: no gap.
        assert_eq!(kafka_reads(&[(0, 9)], 5), (vec![(10, END)], vec![]));
    }
}
