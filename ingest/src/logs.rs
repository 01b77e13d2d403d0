//! `PUT /logs/{owner}/{repo}/{job_id}`: CI systems that push their own logs.
//!
//! torchci's "keep-going" jobs upload partial logs while they run; other CI systems have no
//! GitHub log to fetch at all. The body (the raw log, up to `logs.max_log_bytes`) is
//! compressed into the log store as it arrives; only then is a `hud.job_log.v1` record
//! appended, and only after the broker acknowledged it is the answer 201. The classifier
//! picks it up like any fetched log.
//!
//! Authentication: `Authorization: Bearer <token>` with one of `logs.upload_tokens`; none
//! configured disables the endpoint (404). Query: `partial=true` for a part of a running job's
//! log (a later whole log supersedes its verdict), `head_sha=<40 hex>` to carry the commit.
//! Uploads have their own concurrency limit (`logs.upload_max_concurrent`, 503 beyond), so
//! long transfers never take the places webhooks need; each chunk must arrive within
//! `gateway.body_read_timeout_ms` (408 otherwise). The same bytes uploaded again for the same
//! log (a retry) are answered 200 `"unchanged": true` and append nothing: PUT is idempotent.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;

use hudstream_runtime::config::LogsConfig;
use hudstream_runtime::secret::collect;
use hudstream_runtime::store::{BlobStore, StoreError};
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Secret;
use hudstream_schemas::job_log::{job_log_version, log_path, log_state, partial_log_path, JobLog};
use hudstream_schemas::names::{is_commit_sha, is_repository_part, parse_id};

use crate::error::GatewayError;
use crate::oot::token_matches;
use crate::{body, header, Gateway};

/// What the upload endpoint needs; absent when no upload token is configured.
pub struct LogUploads {
    tokens: Vec<Secret>,
    store: BlobStore,
    max_bytes: u64,
    in_flight: Semaphore,
}

impl LogUploads {
    /// `None` when uploads are disabled (no token configured).
    pub fn from_config(config: &LogsConfig) -> anyhow::Result<Option<LogUploads>> {
        let tokens = collect(&config.upload_tokens, &config.upload_token_files)?;
        if tokens.is_empty() {
            return Ok(None);
        }
        Ok(Some(LogUploads {
            tokens,
            store: BlobStore::open(&config.store)?,
            max_bytes: config.max_log_bytes,
            in_flight: Semaphore::new(config.upload_max_concurrent.max(1)),
        }))
    }
}

fn bad_log_upload(reason: String) -> GatewayError {
    GatewayError::BadUpload {
        what: "log",
        reason,
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    head_sha: String,
}

pub async fn upload(
    State(gateway): State<Arc<Gateway>>,
    Path((owner, repo, job_id)): Path<(String, String, String)>,
    query: Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, GatewayError> {
    let uploads = gateway
        .log_uploads
        .as_ref()
        .ok_or(GatewayError::UploadsDisabled("log"))?;
    let token = header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(GatewayError::Unauthorized)?;
    if !token_matches(&uploads.tokens, token.trim()) {
        return Err(GatewayError::Unauthorized);
    }
    if !is_repository_part(&owner) || !is_repository_part(&repo) {
        return Err(bad_log_upload(format!(
            "{owner}/{repo} is not a repository name"
        )));
    }
    let job_id = parse_id(&job_id)
        .ok_or_else(|| bad_log_upload(format!("job id {job_id:?} is not a positive integer")))?;
    let Query(query) = query.map_err(|e| bad_log_upload(e.body_text()))?;
    if !query.head_sha.is_empty() && !is_commit_sha(&query.head_sha) {
        return Err(bad_log_upload(format!(
            "head_sha {:?} is not a 40-digit commit SHA",
            query.head_sha
        )));
    }
    // The store keeps what arrives and compresses it itself; a compressed upload would be
    // stored twice compressed and classified as noise.
    if let Some(encoding) = header(&headers, header::CONTENT_ENCODING.as_str()) {
        if encoding != "identity" {
            return Err(GatewayError::UnsupportedEncoding {
                encoding: encoding.to_string(),
                accepted: "the log uncompressed",
            });
        }
    }
    let _permit = uploads
        .in_flight
        .try_acquire()
        .map_err(|_| GatewayError::Overloaded)?;
    let chunk_timeout = Duration::from_millis(gateway.config.body_read_timeout_ms);
    let chunks = body::stream(&headers, request_body, uploads.max_bytes, chunk_timeout)?;

    let repository = format!("{owner}/{repo}");
    let location = if query.partial {
        partial_log_path(&repository, job_id)
    } else {
        log_path(&repository, job_id)
    };
    // The digest of the last upload appended for this location: PUT is idempotent, so the same
    // bytes again (a retried upload) are not appended again, and the verdict stays as it is.
    let digest_note = format!("{location}.sha256");
    let previous = match uploads.store.note(&digest_note).await {
        Ok(previous) => previous,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the last upload's digest; appending anyway");
            None
        }
    };
    let (written, sha256) = uploads
        .store
        .put_with_sha256(&location, chunks, uploads.max_bytes)
        .await
        .map_err(|e| match e {
            StoreError::TooLarge { limit, .. } => GatewayError::TooLarge {
                limit: limit as usize,
            },
            StoreError::Body { source, .. } => body::stream_error(&source, chunk_timeout),
            other => {
                tracing::error!(error = %other, "log store failed; nothing acknowledged");
                GatewayError::StoreUnavailable("log")
            }
        })?;
    if previous.as_deref() == Some(sha256.as_str()) {
        return Ok((
            StatusCode::OK,
            axum::Json(json!({
                "stored": location,
                "bytes": written.raw_bytes,
                "compressed_bytes": written.compressed_bytes,
                "partial": query.partial,
                "unchanged": true,
            })),
        )
            .into_response());
    }
    let mut log = JobLog {
        version: 0,
        repository_full_name: repository,
        job_id,
        head_sha: query.head_sha,
        conclusion: String::new(),
        state: if query.partial {
            log_state::PARTIAL.into()
        } else {
            log_state::STORED.into()
        },
        location: location.clone(),
        compressed_bytes: written.compressed_bytes as i64,
        source: "upload".into(),
        reason: String::new(),
        fetched_at: chrono::Utc::now().timestamp_millis(),
    };
    log.version = job_log_version(&log);
    let record = OutRecord::encoded(&log).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let appended = gateway.append(&record).await?;
    // Only once the record is acknowledged: a lost note costs one needless reclassification.
    if let Err(e) = uploads.store.put_note(&digest_note, &sha256).await {
        tracing::warn!(error = %e, "could not keep the upload's digest");
    }
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "stored": location,
            "bytes": written.raw_bytes,
            "compressed_bytes": written.compressed_bytes,
            "partial": query.partial,
            "partition": appended.partition,
            "offset": appended.offset,
        })),
    )
        .into_response())
}
