//! Dead letters: list them, and re-drive them to the topic they came from after a fix.
//!
//! A dead letter keeps the failed record's key, value and headers, plus the reason, the stage
//! and the source (`topic/partition/offset`). Re-driving appends the record again, unchanged, to
//! its source topic — with a `hudstream-redriven-from` header naming the dead letter — so the
//! (fixed) stage reads it like any other record. Downstream sinks are idempotent, so re-driving
//! twice is harmless.
//!
//! Reading stops once the topic has been idle for `idle` (the test broker's high watermarks
//! cannot be trusted, so "caught up" is measured by silence).

use std::time::Duration;

use hudstream_runtime::kafka::{to_in_record, whole_topic_reader, Appender};
use hudstream_runtime::worker::{InRecord, OutRecord};
use hudstream_runtime::Config;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::DEAD_LETTERS;

/// The header a re-driven record carries: where its dead letter was (`partition/offset`).
pub const REDRIVEN_FROM: &str = "hudstream-redriven-from";

/// One dead letter, with its facts pulled out of the headers.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub record: InRecord,
    pub stage: String,
    pub reason: String,
    /// The topic the failed record was read from (catalogue name).
    pub source_topic: String,
    pub source: String,
}

/// Reads every dead letter, in partition order, until the topic is idle for `idle`.
pub async fn read_all(config: &Config, idle: Duration) -> anyhow::Result<Vec<DeadLetter>> {
    let kafka = config.kafka.clone();
    let records = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<InRecord>> {
        let consumer = whole_topic_reader(&kafka, DEAD_LETTERS)?;
        let mut records = Vec::new();
        let mut last = std::time::Instant::now();
        while last.elapsed() < idle {
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                records.push(to_in_record(&kafka.topic_prefix, &message?));
                last = std::time::Instant::now();
            }
        }
        records.sort_by_key(|r| (r.partition, r.offset));
        Ok(records)
    })
    .await??;
    Ok(records
        .into_iter()
        .map(|record| {
            // Headers are appended in order; the last of a name is the newest (a record
            // dead-lettered, re-driven and dead-lettered again carries two of each).
            let last = |name: &str| {
                record
                    .headers
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            let source = last(h::SOURCE);
            // `topic/partition/offset`, and topic names contain no '/'.
            let source_topic = source.split('/').next().unwrap_or("").to_string();
            DeadLetter {
                stage: last(h::DLQ_STAGE),
                reason: last(h::DLQ_REASON),
                source_topic,
                source,
                record,
            }
        })
        .collect())
}

/// Appends each dead letter's record, unchanged, to its source topic. Returns how many.
pub async fn redrive(appender: &Appender, letters: &[DeadLetter]) -> anyhow::Result<usize> {
    let mut count = 0;
    for letter in letters {
        anyhow::ensure!(
            !letter.source_topic.is_empty(),
            "dead letter {}/{} has no {} header; cannot tell where it came from",
            letter.record.partition,
            letter.record.offset,
            h::SOURCE
        );
        let mut headers: Vec<(String, Vec<u8>)> = letter
            .record
            .headers
            .iter()
            .filter(|(n, _)| {
                ![h::DLQ_REASON, h::DLQ_STAGE, h::SOURCE, REDRIVEN_FROM].contains(&n.as_str())
            })
            .cloned()
            .collect();
        headers.push((
            REDRIVEN_FROM.into(),
            format!("{}/{}", letter.record.partition, letter.record.offset).into_bytes(),
        ));
        appender
            .append(&OutRecord {
                topic: letter.source_topic.clone(),
                key: letter.record.key.clone().unwrap_or_default(),
                payload: letter.record.payload.clone().unwrap_or_default(),
                headers,
            })
            .await?;
        count += 1;
    }
    Ok(count)
}

/// `hudstream dead-letters list|redrive`.
pub async fn run(config: &Config, action: crate::cli::DeadLetterAction) -> anyhow::Result<()> {
    match action {
        crate::cli::DeadLetterAction::List { stage, idle_ms } => {
            let letters = read_all(config, Duration::from_millis(idle_ms)).await?;
            let shown: Vec<_> = letters
                .iter()
                .filter(|l| stage.as_deref().is_none_or(|s| s == l.stage))
                .collect();
            for l in &shown {
                println!(
                    "{}/{}  {:<24} {:<40} {}",
                    l.record.partition, l.record.offset, l.stage, l.source, l.reason
                );
            }
            println!(
                "{} dead letter(s){}",
                shown.len(),
                stage.map(|s| format!(" of stage {s}")).unwrap_or_default()
            );
            Ok(())
        }
        crate::cli::DeadLetterAction::Redrive {
            stage,
            source_topic,
            dry_run,
            idle_ms,
        } => {
            let letters: Vec<_> = read_all(config, Duration::from_millis(idle_ms))
                .await?
                .into_iter()
                .filter(|l| stage.as_deref().is_none_or(|s| s == l.stage))
                .filter(|l| source_topic.as_deref().is_none_or(|t| t == l.source_topic))
                .collect();
            if dry_run {
                for l in &letters {
                    println!(
                        "would re-drive {}/{} to {} ({})",
                        l.record.partition, l.record.offset, l.source_topic, l.reason
                    );
                }
                println!("{} dead letter(s) would be re-driven", letters.len());
                return Ok(());
            }
            let appender = hudstream_runtime::kafka::Appender::new(&config.kafka)?;
            let n = redrive(&appender, &letters).await?;
            println!("re-drove {n} dead letter(s) to their source topics");
            Ok(())
        }
    }
}
