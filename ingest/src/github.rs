//! `POST /github/webhook`: read, verify, route, append, answer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use hudstream_runtime::worker::OutRecord;
use hudstream_schemas::headers as h;

use crate::error::GatewayError;
use crate::routing::{route, Envelope};
use crate::signature::{verify_sha1, verify_sha256, SignatureError};
use crate::{header, Gateway};

/// The JSON document of a delivery: the body itself, or the `payload` field of a form body.
fn document(content_type: &str, body: &Bytes) -> Result<Bytes, GatewayError> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" | "" => Ok(body.clone()),
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| Bytes::from(v.into_owned()))
            .ok_or(GatewayError::MissingFormPayload),
        other => Err(GatewayError::UnsupportedContentType(other.to_string())),
    }
}

fn verify(gateway: &Gateway, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let sha256 = header(headers, "x-hub-signature-256");
    match (sha256, header(headers, "x-hub-signature")) {
        (None, Some(sha1)) if gateway.config.accept_sha1_signatures => {
            verify_sha1(&gateway.secrets, sha1, body)
        }
        _ => verify_sha256(&gateway.secrets, sha256, body),
    }
}

fn not_an_object(v: &Value) -> GatewayError {
    GatewayError::NotAnObject(match v {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => "an object",
    })
}

/// Checks that the document is a JSON object and reads what routing needs from it.
pub(crate) fn envelope(document: &[u8]) -> Result<Envelope, GatewayError> {
    if document.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::EmptyBody);
    }
    // Fast path: a typed parse that skips everything routing does not read. Only for objects:
    // serde would also read a struct from a JSON array.
    let is_object = document.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if is_object {
        if let Ok(envelope) = serde_json::from_slice::<Envelope>(document) {
            return Ok(envelope);
        }
    }
    // Slow path: invalid JSON, not an object, or envelope fields of unexpected types.
    let parsed: Value =
        serde_json::from_slice(document).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    if !parsed.is_object() {
        return Err(not_an_object(&parsed));
    }
    Ok(Envelope::from_value(&parsed))
}

/// Checks that the document is a JSON object and returns it parsed (for the OOT and CircleCI
/// endpoints, which read nested fields).
pub(crate) fn parse_object(document: &[u8]) -> Result<Value, GatewayError> {
    if document.iter().all(u8::is_ascii_whitespace) {
        return Err(GatewayError::EmptyBody);
    }
    let parsed: Value =
        serde_json::from_slice(document).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    if parsed.is_object() {
        Ok(parsed)
    } else {
        Err(not_an_object(&parsed))
    }
}

pub async fn receive(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let received_at = crate::received_now();
    // The body first (within the size cap and the deadline), then the headers: a client gets
    // its 400 only after it has finished sending. Answering while it still sends made the
    // server close the connection under it, and the client saw a reset instead of the answer.
    let body = gateway
        .read_body(&headers, body, gateway.config.max_body_bytes)
        .await?;
    let event =
        header(&headers, "x-github-event").ok_or(GatewayError::MissingHeader("X-GitHub-Event"))?;
    let delivery = header(&headers, "x-github-delivery")
        .ok_or(GatewayError::MissingHeader("X-GitHub-Delivery"))?;
    metrics::counter!("hudstream_gateway_bytes_total", "endpoint" => "github")
        .increment(body.len() as u64);
    // The signature covers the raw body exactly as received, whatever its encoding.
    verify(&gateway, &headers, &body).inspect_err(|_| {
        metrics::counter!("hudstream_gateway_signature_failures_total", "endpoint" => "github")
            .increment(1);
    })?;

    let content_type = header(&headers, "content-type").unwrap_or("application/json");
    let document = document(content_type, &body)?;
    let envelope = envelope(&document)?;
    let route = route(event, &envelope, delivery);
    let action = envelope.action();

    let mut record_headers: Vec<(String, Vec<u8>)> = vec![
        (h::GITHUB_DELIVERY.into(), delivery.into()),
        (h::GITHUB_EVENT.into(), event.into()),
    ];
    record_headers.extend(crate::receipt_headers(received_at, content_type));
    if !action.is_empty() {
        record_headers.push((h::GITHUB_ACTION.into(), action.into()));
    }
    for (name, header_name) in [
        (h::GITHUB_HOOK_ID, "x-github-hook-id"),
        (
            h::GITHUB_TARGET_TYPE,
            "x-github-hook-installation-target-type",
        ),
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
    let appended = gateway.append(&record).await?;
    metrics::counter!("hudstream_gateway_appended_total", "event" => event.to_string())
        .increment(1);
    tracing::debug!(topic = %route.topic, partition = appended.partition, offset = appended.offset, "appended");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_objects_are_deliveries() {
        assert!(envelope(br#"{"action": "opened", "x": [1, {"y": null}]}"#).is_ok());
        assert!(matches!(
            envelope(
                b"[null, null, null, null, null, null, null, null, null, null, null, null, null]"
            ),
            Err(GatewayError::NotAnObject("an array"))
        ));
        assert!(matches!(envelope(b"  "), Err(GatewayError::EmptyBody)));
        assert!(matches!(
            envelope(b"{\"a\": tru}"),
            Err(GatewayError::InvalidJson(_))
        ));
        assert!(matches!(
            envelope(b"{\"a\": 1} trailing"),
            Err(GatewayError::InvalidJson(_))
        ));
        // Odd types in routed fields are still accepted, through the full parse.
        assert!(envelope(br#"{"ref": {"not": "a string"}}"#).is_ok());
    }
}
