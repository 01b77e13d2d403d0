//! `PUT /tests/{owner}/{repo}/{job_id}?report=<name>`: test reports pushed by CI.
//!
//! A job uploads each JUnit-family report under its own name (one per test file or shard);
//! uploading a name again replaces that report. The body is the XML, plain or
//! `Content-Encoding: gzip` (reports compress 10–20×), at most `tests.max_report_bytes`
//! uncompressed. It is decompressed, checked to be XML, hashed and compressed into the
//! test-report store as it arrives — content-addressed, so the same bytes again store nothing
//! new and append the same pointer — then a pointer record (`TestReportUpload`) is appended to
//! `tests.reports`, and only after the broker acknowledged it is the answer 2xx: 201 for a new
//! report, 200 for bytes already stored. The parser (`hudstream-test-reports`) does the rest.
//!
//! Authentication: `Authorization: Bearer <token>` with one of `logs.upload_tokens` (the
//! upload tokens of logs and reports are one set); none configured disables the endpoint
//! (404). Query: `report` (required), and optionally `head_sha`, `run_id`, `run_attempt`.
//! Uploads have their own concurrency limit (`tests.upload_max_concurrent`, 503 beyond); each
//! chunk must arrive within `gateway.body_read_timeout_ms` (408).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_compression::tokio::bufread::GzipDecoder;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::io::{ReaderStream, StreamReader};

use hudstream_runtime::config::{LogsConfig, TestsConfig};
use hudstream_runtime::secret::collect;
use hudstream_runtime::store::{BlobStore, StoreError};
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Secret;
use hudstream_schemas::names::{is_commit_sha, is_repository_part, parse_id};
use hudstream_schemas::test_report::{report_store_key, TestReportUpload};
use hudstream_schemas::topics::TESTS_REPORTS;

use crate::error::GatewayError;
use crate::oot::token_matches;
use crate::{body, header, receipt_headers, received_now, Gateway};

/// The longest report name accepted.
const MAX_REPORT_NAME: usize = 512;

/// What the upload endpoint needs; absent when no upload token is configured.
pub struct TestUploads {
    tokens: Vec<Secret>,
    store: BlobStore,
    max_bytes: u64,
    in_flight: Semaphore,
}

impl TestUploads {
    /// `None` when uploads are disabled (no upload token configured).
    pub fn from_config(
        logs: &LogsConfig,
        tests: &TestsConfig,
    ) -> anyhow::Result<Option<TestUploads>> {
        let tokens = collect(&logs.upload_tokens, &logs.upload_token_files)?;
        if tokens.is_empty() {
            return Ok(None);
        }
        Ok(Some(TestUploads {
            tokens,
            store: BlobStore::open(&tests.store)?,
            max_bytes: tests.max_report_bytes,
            in_flight: Semaphore::new(tests.upload_max_concurrent.max(1)),
        }))
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    report: String,
    #[serde(default)]
    head_sha: String,
    #[serde(default)]
    run_id: i64,
    #[serde(default)]
    run_attempt: i64,
}

fn bad_upload(reason: String) -> GatewayError {
    GatewayError::BadUpload {
        what: "test report",
        reason,
    }
}

/// Why a report name is refused, if it is.
fn refuse_report_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the report query parameter is required (the report's name, e.g. test-reports/python-pytest/test_ops/test_ops-1.xml)".into());
    }
    if name.len() > MAX_REPORT_NAME {
        return Some(format!(
            "the report name is {} bytes long; at most {MAX_REPORT_NAME}",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("the report name contains control characters".into());
    }
    None
}

/// The marker on an I/O error that says the body is not XML.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotXml(String);

/// Passes `chunks` on, failing if the body does not begin like XML: after an optional UTF-8
/// byte-order mark and whitespace, its first character must be `<`. (A page of HTML passes
/// here; the parser refuses it, with a dead letter saying why.)
fn xml_only<S>(chunks: S) -> impl Stream<Item = io::Result<Bytes>> + Unpin
where
    S: Stream<Item = io::Result<Bytes>> + Unpin,
{
    let mut decided = false;
    let mut at = 0u64;
    chunks.map(move |chunk| {
        let chunk = chunk?;
        if decided {
            return Ok(chunk);
        }
        let mut bytes = &chunk[..];
        if at == 0 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        match bytes.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) if bytes[i] == b'<' => decided = true,
            Some(i) => {
                let found = String::from_utf8_lossy(&bytes[i..bytes.len().min(i + 16)]).into_owned();
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    NotXml(format!(
                        "it begins with {found:?}, not with '<' (send the JUnit XML itself, plain or gzip)"
                    )),
                ));
            }
            None => {}
        }
        at += chunk.len() as u64;
        Ok(chunk)
    })
}

/// The gateway's answer to a body that failed while it was stored.
fn body_error(error: &io::Error, gzip: bool, chunk_timeout: Duration) -> GatewayError {
    // The store wraps the body's error in one of its own: look at the innermost.
    let mut error = error;
    while let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<io::Error>()) {
        error = inner;
    }
    if let Some(NotXml(reason)) = error.get_ref().and_then(|e| e.downcast_ref::<NotXml>()) {
        return GatewayError::NotXml(reason.clone());
    }
    if gzip && error.kind() == io::ErrorKind::InvalidData {
        return GatewayError::BadGzip(error.to_string());
    }
    body::stream_error(error, chunk_timeout)
}

pub async fn upload(
    State(gateway): State<Arc<Gateway>>,
    Path((owner, repo, job_id)): Path<(String, String, String)>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, GatewayError> {
    let uploads = gateway
        .test_uploads
        .as_ref()
        .ok_or(GatewayError::UploadsDisabled("test report"))?;
    let token = header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(GatewayError::Unauthorized)?;
    if !token_matches(&uploads.tokens, token.trim()) {
        return Err(GatewayError::Unauthorized);
    }
    if !is_repository_part(&owner) || !is_repository_part(&repo) {
        return Err(bad_upload(format!(
            "{owner}/{repo} is not a repository name"
        )));
    }
    let job_id = parse_id(&job_id)
        .ok_or_else(|| bad_upload(format!("job id {job_id:?} is not a positive integer")))?;
    let Query(query) = query.map_err(|e| bad_upload(e.body_text()))?;
    if let Some(reason) = refuse_report_name(&query.report) {
        return Err(bad_upload(reason));
    }
    if !query.head_sha.is_empty() && !is_commit_sha(&query.head_sha) {
        return Err(bad_upload(format!(
            "head_sha {:?} is not a 40-digit commit SHA",
            query.head_sha
        )));
    }
    if query.run_id < 0 || query.run_attempt < 0 {
        return Err(bad_upload(
            "run_id and run_attempt are never negative".into(),
        ));
    }
    let gzip = match header(&headers, header::CONTENT_ENCODING.as_str()) {
        None | Some("identity") => false,
        Some(encoding) if encoding.eq_ignore_ascii_case("gzip") => true,
        Some(encoding) => {
            return Err(GatewayError::UnsupportedEncoding {
                encoding: encoding.to_string(),
                accepted: "the report plain or with Content-Encoding: gzip",
            })
        }
    };
    let _permit = uploads
        .in_flight
        .try_acquire()
        .map_err(|_| GatewayError::Overloaded)?;
    let chunk_timeout = Duration::from_millis(gateway.config.body_read_timeout_ms);
    let chunks = body::stream(&headers, request_body, uploads.max_bytes, chunk_timeout)?;
    let report_bytes: Box<dyn Stream<Item = io::Result<Bytes>> + Send + Unpin> = if gzip {
        let mut decoder = GzipDecoder::new(StreamReader::new(chunks));
        decoder.multiple_members(true);
        Box::new(ReaderStream::with_capacity(decoder, 64 << 10))
    } else {
        Box::new(chunks)
    };

    let repository = format!("{owner}/{repo}");
    let stored = uploads
        .store
        .put_content_addressed("tests", xml_only(report_bytes), uploads.max_bytes, |sha| {
            report_store_key(&repository, job_id, sha)
        })
        .await
        .map_err(|e| match e {
            StoreError::TooLarge { limit, .. } => GatewayError::TooLarge {
                limit: limit as usize,
            },
            StoreError::Body { source, .. } => body_error(&source, gzip, chunk_timeout),
            other => {
                tracing::error!(error = %other, "test-report store failed; nothing acknowledged");
                GatewayError::StoreUnavailable("test-report")
            }
        })?;
    if stored.raw_bytes == 0 {
        return Err(GatewayError::EmptyBody);
    }
    let pointer = TestReportUpload {
        repository_full_name: repository,
        job_id,
        report: query.report,
        sha256: stored.sha256.clone(),
        bytes: stored.raw_bytes,
        compressed_bytes: stored.compressed_bytes,
        store_key: stored.key.clone(),
        source: "upload".into(),
        artifact: String::new(),
        head_sha: query.head_sha,
        run_id: query.run_id,
        run_attempt: query.run_attempt,
        // The stored object's time: the same bytes again make the same pointer.
        received_at: stored.stored_at_ms,
    };
    let record = OutRecord {
        topic: TESTS_REPORTS.to_string(),
        key: pointer.key().into_bytes(),
        payload: serde_json::to_vec(&pointer).map_err(|e| GatewayError::Internal(e.to_string()))?,
        headers: receipt_headers(received_now(), "application/json"),
    };
    let appended = gateway.append(&record).await?;
    metrics::counter!("hudstream_test_reports_uploaded_total", "new" => (!stored.already_stored).to_string())
        .increment(1);
    let status = if stored.already_stored {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        axum::Json(json!({
            "report": pointer.report,
            "stored": stored.key,
            "sha256": stored.sha256,
            "bytes": stored.raw_bytes,
            "compressed_bytes": stored.compressed_bytes,
            "already_stored": stored.already_stored,
            "partition": appended.partition,
            "offset": appended.offset,
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sniff(chunks: Vec<&'static [u8]>) -> Result<Vec<u8>, String> {
        let stream = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let mut out = Vec::new();
        let mut passed = xml_only(stream);
        while let Some(chunk) = passed.next().await {
            match chunk {
                Ok(c) => out.extend_from_slice(&c),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    }

    #[tokio::test]
    async fn xml_passes_and_anything_else_is_refused_at_its_first_character() {
        assert!(sniff(vec![
            b"\xEF\xBB\xBF  \n",
            b"\t<?xml version='1.0'?><testsuite/>"
        ])
        .await
        .is_ok());
        assert!(sniff(vec![b"<testsuites>", b"x"]).await.is_ok());
        let refused = sniff(vec![b"  ", b"{\"tests\": 3}"]).await.unwrap_err();
        assert!(
            refused.contains("begins with \"{\\\"tests\\\": 3}\""),
            "{refused}"
        );
        assert_eq!(sniff(vec![]).await.unwrap(), b"");
    }

    #[test]
    fn report_names_are_checked() {
        assert!(refuse_report_name("").is_some());
        assert!(refuse_report_name(&"a".repeat(513)).is_some());
        assert!(refuse_report_name("a\nb").is_some());
        assert!(refuse_report_name("test-reports/python-pytest/test_ops/test_ops-1.xml").is_none());
    }
}
