//! The archive stage: one consumer per raw topic, each batch written as files, then committed.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context;

use hudstream_runtime::store::BlobStore;
use hudstream_runtime::worker::{Action, BatchHandler, InRecord};
use hudstream_schemas::topics::{catalogue, TopicKind};

use crate::file::{encode, FileName};

/// Copies one raw topic into the store.
pub struct ArchiveStage {
    topic: &'static str,
    stage: &'static str,
    store: BlobStore,
}

impl ArchiveStage {
    /// One stage per raw topic of the catalogue (`archive.<topic>`, each its own consumer
    /// group), writing into `store`.
    pub fn all(store: &BlobStore) -> Vec<ArchiveStage> {
        catalogue()
            .into_iter()
            .filter(|t| t.kind == TopicKind::Raw)
            .map(|t| {
                // Stage names are `&'static str` everywhere (metrics labels, consumer groups);
                // these are made once per process, for a fixed set of topics.
                let stage: &'static str = Box::leak(format!("archive.{}", t.name).into_boxed_str());
                let topic: &'static str = Box::leak(t.name.into_boxed_str());
                ArchiveStage {
                    topic,
                    stage,
                    store: store.clone(),
                }
            })
            .collect()
    }
}

/// A batch's files: per partition, its records in offset order, in the folder of the hour of
/// the first. One file per partition per batch keeps each partition's files contiguous and
/// ordered by name, which is what lets a reader skip the overlap a redelivered batch makes.
pub fn files_of<'a>(batch: &'a [InRecord]) -> Vec<(FileName, Vec<&'a InRecord>)> {
    let mut by_partition: BTreeMap<i32, Vec<&InRecord>> = BTreeMap::new();
    for record in batch {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    by_partition
        .into_iter()
        .filter_map(|(partition, mut records)| {
            records.sort_by_key(|r| r.offset);
            let (first, last) = (records.first()?, records.last()?);
            Some((
                FileName::new(
                    &first.topic,
                    partition,
                    first.offset,
                    last.offset,
                    first.timestamp_ms,
                ),
                records,
            ))
        })
        .collect()
}

impl BatchHandler for ArchiveStage {
    fn stage(&self) -> &'static str {
        self.stage
    }

    fn input_topic(&self) -> &'static str {
        self.topic
    }

    /// Writes the batch's files; an error (the store unreachable) means nothing is committed
    /// and the runtime retries the batch. Nothing is dead-lettered: every record is archived.
    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        for (name, records) in files_of(batch) {
            let started = Instant::now();
            let path = name.path();
            let lines = encode(&records).context("encoding archived records")?;
            let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(lines))]);
            let written = self
                .store
                .put(&path, body, u64::MAX)
                .await
                .with_context(|| format!("writing the archive file {path}"))?;
            metrics::counter!("hudstream_archive_records_total", "topic" => self.topic)
                .increment(records.len() as u64);
            metrics::counter!("hudstream_archive_files_total", "topic" => self.topic).increment(1);
            metrics::counter!("hudstream_archive_bytes_total", "topic" => self.topic)
                .increment(written.compressed_bytes);
            metrics::histogram!("hudstream_archive_write_seconds")
                .record(started.elapsed().as_secs_f64());
            tracing::debug!(%path, records = records.len(), compressed = written.compressed_bytes, "archived");
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, hour: i64) -> InRecord {
        InRecord {
            topic: "github.push".into(),
            partition,
            offset,
            key: None,
            payload: Some(b"{}".to_vec()),
            headers: vec![],
            timestamp_ms: Some(hour * 3_600_000),
        }
    }

    #[test]
    fn one_file_per_partition_named_by_its_offsets_and_first_hour() {
        let batch = vec![
            record(1, 7, 10),
            record(0, 3, 10),
            record(1, 8, 11),
            record(0, 4, 10),
        ];
        let files = files_of(&batch);
        let names: Vec<String> = files.iter().map(|(n, _)| n.path()).collect();
        assert_eq!(
            names,
            vec![
                "github.push/date=1970-01-01/hour=10/p00000-00000000000000000003-00000000000000000004.jsonl.gz",
                "github.push/date=1970-01-01/hour=10/p00001-00000000000000000007-00000000000000000008.jsonl.gz",
            ]
        );
        let offsets: Vec<Vec<i64>> = files
            .iter()
            .map(|(_, rs)| rs.iter().map(|r| r.offset).collect())
            .collect();
        assert_eq!(offsets, vec![vec![3, 4], vec![7, 8]]);
    }

    #[test]
    fn every_raw_topic_has_a_stage_and_no_other_does() {
        let store = BlobStore::open(
            std::env::temp_dir()
                .join("hudstream-archive-stage-names")
                .to_str()
                .unwrap(),
        )
        .unwrap();
        let stages = ArchiveStage::all(&store);
        assert!(stages
            .iter()
            .any(|s| s.input_topic() == "github.workflow_job"));
        assert!(stages.iter().any(|s| s.input_topic() == "oot.results"));
        assert!(stages.iter().all(|s| !s.input_topic().starts_with("hud.")));
        assert!(stages
            .iter()
            .all(|s| s.stage() == format!("archive.{}", s.input_topic())));
    }
}
