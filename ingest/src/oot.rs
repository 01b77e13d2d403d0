//! `POST /oot/results` (and `/api/oot/results`): out-of-tree CI results from torchci's relay.
//!
//! The contract is torchci's (reference/torchci.md §7.2–7.3): a `{trusted, untrusted}` body,
//! the relay token in `X-OOT-Relay-Token` or `x-hud-internal-bot` (compared in constant time),
//! a 2 MB cap, and 400s for a missing `workflow.job_name` or `workflow.check_run_id`. Where
//! torchci answers a structurally broken body with a 500, we answer 400 with the reason.
//! Accepted bodies are appended unchanged to `oot.results`, keyed by torchci's `dynamoKey`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Secret;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::OOT_RESULTS;

use crate::error::GatewayError;
use crate::github::parse_object;
use crate::{header, Gateway};

pub(crate) fn token_matches(tokens: &[Secret], given: &str) -> bool {
    // Each comparison is constant-time; `|` (not `||`) so every token is always compared.
    tokens.iter().fold(false, |found, t| {
        found | bool::from(t.expose().as_bytes().ct_eq(given.as_bytes()))
    })
}

/// The identity of a result: `{verified_repo}/{delivery_id}/{workflow.name}/{job_name}/{check_run_id}`.
#[derive(Debug, PartialEq)]
pub struct OotIdentity {
    pub key: String,
    pub status: String,
}

fn text<'a>(v: &'a Value, field: &'static str, path: &str) -> Result<&'a str, GatewayError> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(GatewayError::MalformedOot(format!(
            "{path}.{field} is missing"
        ))),
        Some(_) => Err(GatewayError::MalformedOot(format!(
            "{path}.{field} must be a string"
        ))),
    }
}

fn object<'a>(v: &'a Value, field: &'static str, path: &str) -> Result<&'a Value, GatewayError> {
    match v.get(field) {
        Some(o @ Value::Object(_)) => Ok(o),
        None | Some(Value::Null) => Err(GatewayError::MalformedOot(format!(
            "{path}.{field} is missing"
        ))),
        Some(_) => Err(GatewayError::MalformedOot(format!(
            "{path}.{field} must be an object"
        ))),
    }
}

/// Validates the structure torchci relies on and computes the result's identity.
pub fn identify(body: &Value) -> Result<OotIdentity, GatewayError> {
    let trusted = object(body, "trusted", "body")?;
    let verified_repo = text(trusted, "verified_repo", "trusted")?;
    if verified_repo.is_empty() {
        return Err(GatewayError::MalformedOot(
            "trusted.verified_repo is empty".into(),
        ));
    }
    let untrusted = object(body, "untrusted", "body")?;
    let callback = object(untrusted, "callback_payload", "untrusted")?;
    let delivery_id = text(callback, "delivery_id", "untrusted.callback_payload")?;
    let workflow = object(callback, "workflow", "untrusted.callback_payload")?;
    let job_name = match workflow.get("job_name") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err(GatewayError::MissingField("workflow.job_name")),
    };
    let check_run_id = match workflow.get("check_run_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None | Some(Value::Null) => {
            return Err(GatewayError::MissingField("workflow.check_run_id"))
        }
        Some(_) => {
            return Err(GatewayError::MalformedOot(
                "untrusted.callback_payload.workflow.check_run_id must be a string or a number"
                    .into(),
            ))
        }
    };
    let name = text(workflow, "name", "untrusted.callback_payload.workflow")?;
    let status = text(workflow, "status", "untrusted.callback_payload.workflow")?;
    Ok(OotIdentity {
        key: format!("{verified_repo}/{delivery_id}/{name}/{job_name}/{check_run_id}"),
        status: status.to_string(),
    })
}

pub async fn receive(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let received_at = crate::received_now();
    if gateway.oot_tokens.is_empty() {
        return Err(GatewayError::Misconfigured(
            "no OOT relay token is configured (gateway.oot_relay_tokens)",
        ));
    }
    let body = gateway
        .read_body(&headers, body, gateway.config.oot_max_body_bytes)
        .await
        .map_err(|e| match e {
            GatewayError::TooLarge { .. } => GatewayError::OotTooLarge,
            other => other,
        })?;
    metrics::counter!("hudstream_gateway_bytes_total", "endpoint" => "oot")
        .increment(body.len() as u64);
    let token =
        header(&headers, "x-oot-relay-token").or_else(|| header(&headers, "x-hud-internal-bot"));
    if !token.is_some_and(|t| token_matches(&gateway.oot_tokens, t)) {
        metrics::counter!("hudstream_gateway_signature_failures_total", "endpoint" => "oot")
            .increment(1);
        return Err(GatewayError::Unauthorized);
    }
    let parsed = parse_object(&body).map_err(|e| GatewayError::MalformedOot(e.to_string()))?;
    let identity = identify(&parsed)?;
    let record = OutRecord {
        topic: OOT_RESULTS.into(),
        key: identity.key.clone().into_bytes(),
        payload: body.to_vec(),
        headers: std::iter::once((h::OOT_STATUS.into(), identity.status.clone().into_bytes()))
            .chain(crate::receipt_headers(
                received_at,
                header(&headers, "content-type").unwrap_or("application/json"),
            ))
            .collect(),
    };
    let appended = gateway.append(&record).await?;
    metrics::counter!("hudstream_gateway_appended_total", "event" => "oot_result").increment(1);
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "ok": true,
            "status": identity.status,
            "dynamoKey": identity.key,
            "topic": OOT_RESULTS,
            "partition": appended.partition,
            "offset": appended.offset,
        })),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(workflow: Value) -> Value {
        json!({
            "trusted": {"verified_repo": "intel/torch-xpu-ops", "downstream_repo_level": "L2", "ci_metrics": {"queue_time": 1.5, "execution_time": null}},
            "untrusted": {"callback_payload": {"event_type": "pull_request", "delivery_id": "d-1", "payload": {"pull_request": {"number": 7}}, "workflow": workflow}}
        })
    }

    #[test]
    fn the_identity_is_torchcis_dynamo_key() {
        let id = identify(&result(json!({"name": "xpu", "job_name": "test (1)", "check_run_id": 42, "status": "in_progress", "url": "u"}))).unwrap();
        assert_eq!(id.key, "intel/torch-xpu-ops/d-1/xpu/test (1)/42");
        assert_eq!(id.status, "in_progress");
    }

    #[test]
    fn missing_job_name_and_check_run_id_use_torchcis_messages() {
        let e = identify(&result(
            json!({"name": "xpu", "job_name": "", "check_run_id": "1", "status": "completed"}),
        ))
        .unwrap_err();
        assert_eq!(e.to_string(), "Missing required field: workflow.job_name");
        let e = identify(&result(
            json!({"name": "xpu", "job_name": "j", "check_run_id": null, "status": "completed"}),
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Missing required field: workflow.check_run_id"
        );
    }

    #[test]
    fn a_broken_structure_is_a_400_with_the_reason() {
        let e = identify(&json!({"trusted": {"verified_repo": "a/b"}})).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.to_string(),
            "Malformed OOT result: body.untrusted is missing"
        );
    }

    #[test]
    fn tokens_compare_whole_values() {
        let tokens = [Secret::new("abc"), Secret::new("other")];
        assert!(token_matches(&tokens, "abc") && token_matches(&tokens, "other"));
        assert!(
            !token_matches(&tokens, "ab")
                && !token_matches(&tokens, "abcd")
                && !token_matches(&tokens, "")
        );
    }
}
