//! Reading the archive back: its files per topic and partition, in offset order, and the
//! records of one file.

use std::io::BufRead;

use anyhow::Context;

use hudstream_runtime::store::BlobStore;
use hudstream_runtime::worker::InRecord;

use crate::file::{decode, FileName};

/// The archive, for reading.
#[derive(Clone, Debug)]
pub struct Archive {
    store: BlobStore,
}

impl Archive {
    /// Opens an archive store spec (`archive.store`).
    pub fn open(spec: &str) -> anyhow::Result<Archive> {
        Ok(Archive {
            store: BlobStore::open(spec)
                .with_context(|| format!("opening the archive {spec:?}"))?,
        })
    }

    /// The files of `topic`, per partition in offset order.
    pub async fn files(&self, topic: &str) -> anyhow::Result<Vec<FileName>> {
        let mut files: Vec<FileName> = self
            .store
            .list(topic)
            .await
            .with_context(|| format!("listing the archive of {topic}"))?
            .iter()
            .filter_map(|path| FileName::parse(path))
            .filter(|f| f.topic == topic)
            .collect();
        files.sort_by_key(|f| (f.partition, f.first_offset, f.last_offset));
        Ok(files)
    }

    /// Every record of one file; a line that does not decode is an error naming it.
    pub async fn read(&self, file: &FileName) -> anyhow::Result<Vec<InRecord>> {
        let path = file.path();
        let stored = self
            .store
            .read(&path)
            .await
            .with_context(|| format!("reading the archive file {path}"))?;
        tokio::task::spawn_blocking(move || {
            let mut records = Vec::new();
            for (n, line) in stored.into_reader().lines().enumerate() {
                let line = line.with_context(|| format!("reading the archive file {path}"))?;
                if line.trim().is_empty() {
                    continue;
                }
                records
                    .push(decode(&line).map_err(|e| {
                        anyhow::anyhow!("archive file {path}, line {}: {e}", n + 1)
                    })?);
            }
            Ok(records)
        })
        .await
        .context("archive reader task")?
    }
}
