//! `POST /github/webhook`: verify, route, append, answer.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use hudstream_runtime::kafka::AppendError;
use hudstream_runtime::worker::OutRecord;
use hudstream_schemas::headers as h;

use crate::error::GatewayError;
use crate::routing::route;
use crate::signature::verify_sha256;
use crate::Gateway;

const VERSION: &str = concat!("hudstream/", env!("CARGO_PKG_VERSION"));

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// The JSON document of a delivery: the body itself, or the `payload` field of a form body.
fn document(content_type: &str, body: &Bytes) -> Result<Bytes, GatewayError> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "" => Ok(body.clone()),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| Bytes::from(v.into_owned()))
            .ok_or(GatewayError::MissingFormPayload),
        other => Err(GatewayError::UnsupportedContentType(other.to_string())),
    }
}

pub async fn receive(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, GatewayError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => GatewayError::TooLarge { limit: gateway.max_body_bytes },
        _ => GatewayError::UnreadableBody(rejection.body_text()),
    })?;
    let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let event = header(&headers, "x-github-event").ok_or(GatewayError::MissingHeader("X-GitHub-Event"))?;
    let delivery = header(&headers, "x-github-delivery").ok_or(GatewayError::MissingHeader("X-GitHub-Delivery"))?;
    // The signature covers the raw body exactly as received, whatever its encoding.
    verify_sha256(&gateway.secrets, header(&headers, "x-hub-signature-256"), &body)?;

    let content_type = header(&headers, "content-type").unwrap_or("application/json");
    let document = document(content_type, &body)?;
    let parsed: Value = serde_json::from_slice(&document).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    if !parsed.is_object() {
        return Err(GatewayError::NotAnObject(match parsed {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        }));
    }
    let route = route(event, &parsed, delivery);
    let action = parsed.get("action").and_then(Value::as_str).unwrap_or("");

    let mut record_headers: Vec<(String, Vec<u8>)> = vec![
        (h::GITHUB_DELIVERY.into(), delivery.into()),
        (h::GITHUB_EVENT.into(), event.into()),
        (h::RECEIVED_AT.into(), received_at.into()),
        (h::CONTENT_TYPE.into(), "application/json".into()),
        (h::GATEWAY_VERSION.into(), VERSION.into()),
    ];
    if !action.is_empty() {
        record_headers.push((h::GITHUB_ACTION.into(), action.into()));
    }
    for (name, header_name) in [
        (h::GITHUB_HOOK_ID, "x-github-hook-id"),
        (h::GITHUB_TARGET_TYPE, "x-github-hook-installation-target-type"),
        (h::GITHUB_TARGET_ID, "x-github-hook-installation-target-id"),
    ] {
        if let Some(value) = header(&headers, header_name) {
            record_headers.push((name.into(), value.into()));
        }
    }
    let record = OutRecord {
        topic: route.topic.clone(),
        key: route.key.into_bytes(),
        payload: document.to_vec(),
        headers: record_headers,
    };
    let appended = gateway.appender.append(&record).await.map_err(|e| {
        tracing::warn!(delivery, event, error = %e, "append failed");
        match e {
            AppendError::Timeout { .. } => GatewayError::Unavailable,
            AppendError::Refused { source, .. } => GatewayError::BrokerRefused(source.to_string()),
        }
    })?;
    metrics::counter!("hudstream_gateway_appended_total", "event" => event.to_string()).increment(1);
    tracing::debug!(delivery, event, topic = %route.topic, partition = appended.partition, offset = appended.offset, "appended");
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "delivery_id": delivery,
            "topic": route.topic,
            "partition": appended.partition,
            "offset": appended.offset,
        })),
    )
        .into_response())
}
