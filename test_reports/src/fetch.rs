//! `hud.workflow_run.v1` → GitHub's artifacts → the test-report store → `tests.reports`: the
//! artifact fetcher.
//!
//! When a workflow run completes, its artifacts are listed and those named like
//! `tests.artifact_patterns` (torchci's `test-reports-*`) are downloaded, unzipped, and every
//! XML file in them stored as a report of the job their name ends with (`…_<job id>`), named by
//! its path inside the zip — so teams need no upload step. A file is stored content-addressed
//! and its pointer is the same whenever it is stored again, so fetching a run twice changes
//! nothing; a marker (`tests/{repo}/runs/{run}/{attempt}.fetched`), written once every pointer
//! of the run was acknowledged, spares GitHub the second time.
//!
//! GitHub's answers as the log fetcher takes them: rate limits waited out, 5xx retried (then
//! the batch is retried whole), 404/410 final (a run or an artifact that is gone), other 4xx
//! final. Artifacts of another attempt of the run (`runattempt<N>` in the name) were fetched
//! when that attempt completed and are left alone.

use std::io::{Read, Seek, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use hudstream_github::{Answer, Artifact, GitHub, RunArtifacts};
use hudstream_runtime::store::{BlobStore, StoreError};
use hudstream_runtime::worker::{Action, BatchHandler, InRecord, OutRecord, Outbox};
use hudstream_schemas::headers as h;
use hudstream_schemas::names::is_repository_full_name;
use hudstream_schemas::test_report::{report_store_key, TestReportUpload};
use hudstream_schemas::topics::{HUD_WORKFLOW_RUN_V1, TESTS_REPORTS};
use hudstream_schemas::workflow_run::WorkflowRun;

pub const STAGE: &str = "test-fetch";

/// The artifact fetcher's settings (from `[tests]`).
#[derive(Debug, Clone)]
pub struct FetchSettings {
    pub patterns: Vec<String>,
    pub max_artifact_bytes: u64,
    pub max_report_bytes: u64,
    pub concurrency: usize,
}

/// The artifact fetcher.
pub struct ArtifactFetchStage {
    github: Arc<GitHub>,
    store: BlobStore,
    settings: FetchSettings,
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name must match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The job an artifact's name ends with: `test-reports-…_12345678[.zip]` → 12345678.
pub fn job_id_of(artifact: &str) -> Option<i64> {
    let stem = artifact.strip_suffix(".zip").unwrap_or(artifact);
    let (_, digits) = stem.rsplit_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id| *id > 0)
}

/// The run attempt an artifact's name says it is of (`…runattempt2…`), if it says.
pub fn attempt_of(artifact: &str) -> Option<i64> {
    let at = artifact.find("runattempt")? + "runattempt".len();
    let digits: String = artifact[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Why an artifact of a run is not fetched, if it is not.
fn skip_reason(
    artifact: &Artifact,
    run: &WorkflowRun,
    settings: &FetchSettings,
) -> Option<&'static str> {
    if !settings
        .patterns
        .iter()
        .any(|p| glob_match(p, &artifact.name))
    {
        return Some("not_matched");
    }
    if job_id_of(&artifact.name).is_none() {
        return Some("no_job_id");
    }
    if attempt_of(&artifact.name).is_some_and(|a| a != run.run_attempt) {
        return Some("other_attempt");
    }
    if artifact.expired {
        return Some("expired");
    }
    if artifact.size_in_bytes > settings.max_artifact_bytes {
        return Some("too_large");
    }
    None
}

impl ArtifactFetchStage {
    pub fn new(
        github: Arc<GitHub>,
        store: BlobStore,
        settings: FetchSettings,
    ) -> ArtifactFetchStage {
        ArtifactFetchStage {
            github,
            store,
            settings: FetchSettings {
                concurrency: settings.concurrency.max(1),
                ..settings
            },
        }
    }

    /// Fetches one completed run's reports and appends their pointers, then marks the run done.
    async fn run(
        &self,
        run: &WorkflowRun,
        input: &InRecord,
        outbox: &Outbox,
    ) -> anyhow::Result<()> {
        let repository = &run.repository_full_name;
        if !is_repository_full_name(repository) {
            tracing::warn!(
                repository,
                run = run.id,
                "not a repository name; artifacts not fetched"
            );
            return Ok(());
        }
        let marker = format!(
            "tests/{repository}/runs/{}/{}.fetched",
            run.id, run.run_attempt
        );
        if self.store.stat(&marker).await?.is_some() {
            return Ok(());
        }
        let artifacts = match self.github.run_artifacts(repository, run.id).await? {
            RunArtifacts::Found(artifacts) => artifacts,
            RunArtifacts::Gone { status } => {
                tracing::info!(
                    repository,
                    run = run.id,
                    status,
                    "the run is gone; no artifacts"
                );
                Vec::new()
            }
            RunArtifacts::Refused { status, message } => {
                tracing::warn!(
                    repository,
                    run = run.id,
                    status,
                    message,
                    "GitHub refused the artifact list"
                );
                Vec::new()
            }
        };
        let mut reports = 0usize;
        for artifact in &artifacts {
            if let Some(reason) = skip_reason(artifact, run, &self.settings) {
                metrics::counter!("hudstream_test_artifacts_total", "result" => reason)
                    .increment(1);
                continue;
            }
            let pointers = self.artifact(run, artifact).await?;
            for pointer in pointers {
                outbox
                    .append_acknowledged(pointer_record(&pointer, input)?)
                    .await?;
                reports += 1;
            }
        }
        let note = serde_json::json!({"artifacts": artifacts.len(), "reports": reports});
        let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(note.to_string()))]);
        self.store.put(&marker, body, 1 << 20).await?;
        Ok(())
    }

    /// Downloads one artifact and stores every XML file in it: their pointers.
    async fn artifact(
        &self,
        run: &WorkflowRun,
        artifact: &Artifact,
    ) -> anyhow::Result<Vec<TestReportUpload>> {
        let repository = &run.repository_full_name;
        let zip = match self.github.artifact_zip(repository, artifact.id).await? {
            Answer::Found(response) => response,
            Answer::Gone { .. } => {
                metrics::counter!("hudstream_test_artifacts_total", "result" => "gone")
                    .increment(1);
                return Ok(Vec::new());
            }
            Answer::Refused { status, message } => {
                tracing::warn!(
                    repository,
                    artifact = artifact.name,
                    status,
                    message,
                    "GitHub refused the artifact"
                );
                metrics::counter!("hudstream_test_artifacts_total", "result" => "refused")
                    .increment(1);
                return Ok(Vec::new());
            }
        };
        // The zip goes to a temporary file: its directory is at its end.
        let mut file = tempfile::tempfile()?;
        let mut size = 0u64;
        let mut chunks = zip.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > self.settings.max_artifact_bytes {
                metrics::counter!("hudstream_test_artifacts_total", "result" => "too_large")
                    .increment(1);
                return Ok(Vec::new());
            }
            file.write_all(&chunk)?;
        }
        file.rewind()?;
        let Some(job_id) = job_id_of(&artifact.name) else {
            return Ok(Vec::new());
        };
        let store = self.store.clone();
        let max_report_bytes = self.settings.max_report_bytes;
        let (repository, name) = (repository.clone(), artifact.name.clone());
        let (head_sha, run_id, run_attempt) = (run.head_sha.clone(), run.id, run.run_attempt);
        let handle = tokio::runtime::Handle::current();
        let stored = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<TestReportUpload>> {
            let mut archive = match zip::ZipArchive::new(file) {
                Ok(archive) => archive,
                Err(e) => {
                    tracing::warn!(artifact = name, error = %e, "the artifact is not a readable zip");
                    metrics::counter!("hudstream_test_artifacts_total", "result" => "unreadable").increment(1);
                    return Ok(Vec::new());
                }
            };
            let mut pointers = Vec::new();
            for index in 0..archive.len() {
                let mut entry = match archive.by_index(index) {
                    Ok(entry) => entry,
                    Err(e) => {
                        tracing::warn!(artifact = name, index, error = %e, "unreadable zip entry");
                        continue;
                    }
                };
                let report = entry.name().to_string();
                if !entry.is_file() || !report.to_ascii_lowercase().ends_with(".xml") {
                    continue;
                }
                if entry.size() > max_report_bytes {
                    metrics::counter!("hudstream_test_reports_skipped_total", "reason" => "too_large").increment(1);
                    continue;
                }
                let chunks = std::iter::from_fn(|| {
                    let mut buf = vec![0u8; 64 << 10];
                    match entry.read(&mut buf) {
                        Ok(0) => None,
                        Ok(n) => {
                            buf.truncate(n);
                            Some(Ok(Bytes::from(buf)))
                        }
                        Err(e) => Some(Err(e)),
                    }
                });
                let put = store.put_content_addressed(
                    "tests",
                    futures::stream::iter(chunks),
                    max_report_bytes,
                    |sha| report_store_key(&repository, job_id, sha),
                );
                let stored = match handle.block_on(put) {
                    Ok(stored) => stored,
                    Err(StoreError::TooLarge { .. }) => {
                        metrics::counter!("hudstream_test_reports_skipped_total", "reason" => "too_large").increment(1);
                        continue;
                    }
                    Err(StoreError::Body { source, .. }) => {
                        tracing::warn!(artifact = name, report, error = %source, "a file of the artifact cannot be unzipped");
                        metrics::counter!("hudstream_test_reports_skipped_total", "reason" => "unreadable").increment(1);
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                pointers.push(TestReportUpload {
                    repository_full_name: repository.clone(),
                    job_id,
                    report,
                    sha256: stored.sha256,
                    bytes: stored.raw_bytes,
                    compressed_bytes: stored.compressed_bytes,
                    store_key: stored.key,
                    source: "artifact".into(),
                    artifact: name.clone(),
                    head_sha: head_sha.clone(),
                    run_id,
                    run_attempt,
                    received_at: stored.stored_at_ms,
                });
            }
            Ok(pointers)
        })
        .await??;
        metrics::counter!("hudstream_test_artifacts_total", "result" => "fetched").increment(1);
        metrics::counter!("hudstream_test_reports_fetched_total").increment(stored.len() as u64);
        Ok(stored)
    }
}

/// The raw record of a fetched report's pointer, naming the run record it came from.
fn pointer_record(pointer: &TestReportUpload, input: &InRecord) -> anyhow::Result<OutRecord> {
    Ok(OutRecord {
        topic: TESTS_REPORTS.to_string(),
        key: pointer.key().into_bytes(),
        payload: serde_json::to_vec(pointer)?,
        headers: vec![
            (h::CONTENT_TYPE.to_string(), b"application/json".to_vec()),
            (h::SOURCE.to_string(), input.source().into_bytes()),
        ],
    })
}

impl BatchHandler for ArtifactFetchStage {
    fn stage(&self) -> &'static str {
        STAGE
    }

    fn input_topic(&self) -> &'static str {
        HUD_WORKFLOW_RUN_V1
    }

    async fn handle(&mut self, _batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        anyhow::bail!(
            "{STAGE} appends reports as it fetches them: the stage loop runs it with an outbox"
        )
    }

    async fn handle_streaming(
        &mut self,
        batch: &[InRecord],
        outbox: &Outbox,
    ) -> anyhow::Result<Vec<(usize, Action)>> {
        let mut actions = Vec::new();
        // One fetch per completed run attempt, however many of its records the batch holds.
        let mut runs: std::collections::BTreeMap<(String, i64, i64), usize> = Default::default();
        for (i, record) in batch.iter().enumerate() {
            match record.decode::<WorkflowRun>() {
                Ok(run) if run.status == "completed" => {
                    runs.insert(
                        (run.repository_full_name.clone(), run.id, run.run_attempt),
                        i,
                    );
                }
                Ok(_) => {}
                Err(reason) => actions.push((i, Action::DeadLetter { reason })),
            }
        }
        let this = &*self;
        let fetches: Vec<_> = runs
            .into_values()
            .filter_map(|i| {
                let run = batch[i].decode::<WorkflowRun>().ok()?;
                let input = &batch[i];
                Some(async move { this.run(&run, input, outbox).await })
            })
            .collect();
        let done: Vec<anyhow::Result<()>> = futures::stream::iter(fetches)
            .buffer_unordered(self.settings.concurrency)
            .collect()
            .await;
        for result in done {
            result?;
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_names_say_the_job_and_the_attempt() {
        let name =
            "test-reports-runattempt1-test-default-1-5-linux.g5.4xlarge.nvidia.gpu_29568327311.zip";
        assert!(glob_match("test-reports-*", name));
        assert!(!glob_match("test-reports-*", "logs-runattempt1_1.zip"));
        assert!(glob_match("*", "x"));
        assert!(glob_match("a*b*c", "a-b-c"));
        assert!(!glob_match("a*b*c", "a-c-b"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert_eq!(job_id_of(name), Some(29_568_327_311));
        assert_eq!(job_id_of("test-reports-runattempt1-test_12"), Some(12));
        assert_eq!(job_id_of("test-reports-no-job"), None);
        assert_eq!(job_id_of("test-reports_"), None);
        assert_eq!(attempt_of(name), Some(1));
        assert_eq!(attempt_of("test-reports-x_1"), None);
    }
}
