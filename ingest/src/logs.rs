//! `PUT /logs/{owner}/{repo}/{job_id}`: CI systems that push their own logs.
//!
//! torchci's "keep-going" jobs upload partial logs while they run; other CI systems have no
//! GitHub log to fetch at all. The body (the raw log, any size up to `logs.upload_max_bytes`)
//! is compressed into the log store as it arrives; only then is a `hud.job_log.v1` record
//! appended, and only after the broker acknowledged it is the answer 201. The classifier
//! picks it up like any fetched log.
//!
//! Authentication: `Authorization: Bearer <token>` with one of `logs.upload_tokens`; none
//! configured disables the endpoint (404). Query: `partial=true` for a part of a running job's
//! log (a later whole log supersedes its verdict), `head_sha=<sha>` to carry the commit.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;

use hudstream_logs::store::StoreError;
use hudstream_logs::version::job_log_version;
use hudstream_logs::LogStore;
use hudstream_runtime::config::LogsConfig;
use hudstream_runtime::secret::collect;
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Secret;
use hudstream_schemas::headers as h;
use hudstream_schemas::job_log::{log_state, JobLog};
use hudstream_schemas::topics::HUD_JOB_LOG_V1;
use hudstream_schemas::wire::Codec;

use crate::error::GatewayError;
use crate::oot::token_matches;
use crate::{header, Gateway};

/// What the upload endpoint needs; absent when no upload token is configured.
pub struct LogUploads {
    tokens: Vec<Secret>,
    store: LogStore,
    codec: Codec<JobLog>,
    max_bytes: u64,
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
            store: LogStore::open(&config.store)?,
            codec: Codec::new()?,
            max_bytes: config.upload_max_bytes as u64,
        }))
    }
}

#[derive(Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    partial: bool,
    #[serde(default)]
    head_sha: String,
}

fn valid_name(part: &str) -> bool {
    !part.is_empty()
        && part != "."
        && part != ".."
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub async fn upload(
    State(gateway): State<Arc<Gateway>>,
    Path((owner, repo, job_id)): Path<(String, String, String)>,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let uploads = gateway
        .log_uploads
        .as_ref()
        .ok_or(GatewayError::UploadsDisabled)?;
    let token = header(&headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(GatewayError::Unauthorized)?;
    if !token_matches(&uploads.tokens, token.trim()) {
        return Err(GatewayError::Unauthorized);
    }
    if !valid_name(&owner) || !valid_name(&repo) {
        return Err(GatewayError::BadLogPath(format!(
            "{owner}/{repo} is not a repository name"
        )));
    }
    let job_id: i64 = job_id.parse().ok().filter(|id| *id > 0).ok_or_else(|| {
        GatewayError::BadLogPath(format!("job id {job_id:?} is not a positive integer"))
    })?;
    let repository = format!("{owner}/{repo}");
    let location = if query.partial {
        LogStore::partial_log_path(&repository, job_id)
    } else {
        LogStore::log_path(&repository, job_id)
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let written = uploads
        .store
        .put(&location, stream, uploads.max_bytes)
        .await
        .map_err(|e| match e {
            StoreError::TooLarge { limit, .. } => GatewayError::TooLarge {
                limit: limit as usize,
            },
            StoreError::Body { source, .. } => GatewayError::UnreadableBody(source.to_string()),
            other => {
                tracing::error!(error = %other, "log store failed; nothing acknowledged");
                GatewayError::StoreUnavailable
            }
        })?;
    let mut log = JobLog {
        version: 0,
        repository_full_name: repository.clone(),
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
    let payload = uploads
        .codec
        .encode(&log)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let record = OutRecord {
        topic: HUD_JOB_LOG_V1.to_string(),
        key: log.key().into_bytes(),
        payload,
        headers: vec![(
            h::SCHEMA.to_string(),
            uploads.codec.schema_header().into_bytes(),
        )],
    };
    let appended = gateway.append(&record).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_parts_are_plain_names() {
        assert!(valid_name("pytorch"));
        assert!(valid_name("torch-xpu-ops.v2"));
        assert!(!valid_name(".."));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
    }
}
