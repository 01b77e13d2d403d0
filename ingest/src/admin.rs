//! `POST /admin/backfill` and `GET /admin/backfill`: the operator's load endpoints (WebhookDB's
//! answer to an empty history). A backfill asks GitHub's API and appends what it finds through
//! the log; the gateway only starts it and reports on it — the backfill itself is the
//! binary's to provide ([`Backfills`]), since it needs GitHub and the gateway does not.
//!
//! Authentication: `Authorization: Bearer <token>` with one of `gateway.admin_tokens`; none
//! configured disables the endpoints (404). `POST` takes
//! `{"repository": "owner/name", "since": "7d", "branch": null, "dry_run": false}` and answers
//! 202 with the backfill's status (409 while one of the same repository runs, 400 for a bad
//! body); `GET` answers every backfill this gateway started, with its progress.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use hudstream_runtime::Secret;

use crate::error::GatewayError;
use crate::oot::token_matches;
use crate::{header, Gateway};

/// What a backfill request asks for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    pub repository: String,
    #[serde(default = "seven_days")]
    pub since: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

fn seven_days() -> String {
    "7d".into()
}

/// Why a backfill was not started.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The request is wrong (400).
    Invalid(String),
    /// One is already running for that repository (409).
    Busy(String),
}

/// Starts backfills and says how they are doing.
pub trait Backfills: Send + Sync + 'static {
    /// Starts one in the background; its status as JSON.
    fn start(&self, request: BackfillRequest) -> Result<Value, Refusal>;
    /// Every backfill started, running or done, as JSON.
    fn list(&self) -> Value;
}

/// The admin endpoints' state.
pub struct Admin {
    pub tokens: Vec<Secret>,
    pub backfills: Arc<dyn Backfills>,
}

fn authorized(gateway: &Gateway, headers: &HeaderMap) -> Result<Arc<dyn Backfills>, GatewayError> {
    let admin = gateway.admin.as_ref().ok_or(GatewayError::AdminDisabled)?;
    let token = header(headers, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(GatewayError::Unauthorized)?;
    if !token_matches(&admin.tokens, token.trim()) {
        return Err(GatewayError::Unauthorized);
    }
    Ok(admin.backfills.clone())
}

pub async fn start_backfill(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let backfills = authorized(&gateway, &headers)?;
    let bytes = gateway.read_body(&headers, body, 64 * 1024).await?;
    let request: BackfillRequest =
        serde_json::from_slice(&bytes).map_err(|e| GatewayError::BadBackfill(e.to_string()))?;
    match backfills.start(request) {
        Ok(status) => Ok((StatusCode::ACCEPTED, axum::Json(status)).into_response()),
        Err(Refusal::Invalid(why)) => Err(GatewayError::BadBackfill(why)),
        Err(Refusal::Busy(why)) => Err(GatewayError::BackfillBusy(why)),
    }
}

pub async fn list_backfills(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let backfills = authorized(&gateway, &headers)?;
    Ok(axum::Json(backfills.list()).into_response())
}
