//! `POST /circleci/webhook`: CircleCI's workflow and job webhooks, verified with
//! `circleci-signature: v1=<hex HMAC-SHA256 of the body>` and appended unchanged to
//! `circleci.webhook`, keyed by project and workflow so one workflow's events stay in order.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use hudstream_runtime::worker::OutRecord;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::CIRCLECI_WEBHOOK;

use crate::error::GatewayError;
use crate::github::parse_object;
use crate::signature::verify_circleci;
use crate::{header, Gateway};

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |cur, p| cur.get(p))?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// `{project slug}/{workflow id}`, else the event id, else `unknown`.
pub fn key(body: &Value) -> String {
    match (
        text(body, &["project", "slug"]),
        text(body, &["workflow", "id"]),
    ) {
        (Some(project), Some(workflow)) => format!("{project}/{workflow}"),
        _ => text(body, &["id"]).unwrap_or("unknown").to_string(),
    }
}

pub async fn receive(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GatewayError> {
    let received_at = crate::received_now();
    if gateway.circleci_secrets.is_empty() {
        return Err(GatewayError::CircleCiDisabled);
    }
    let body = gateway
        .read_body(&headers, body, gateway.config.max_body_bytes)
        .await?;
    metrics::counter!("hudstream_gateway_bytes_total", "endpoint" => "circleci")
        .increment(body.len() as u64);
    verify_circleci(
        &gateway.circleci_secrets,
        header(&headers, "circleci-signature"),
        &body,
    )
    .inspect_err(|_| {
        metrics::counter!("hudstream_gateway_signature_failures_total", "endpoint" => "circleci")
            .increment(1);
    })?;
    let parsed = parse_object(&body)?;
    let event = text(&parsed, &["type"])
        .or_else(|| header(&headers, "circleci-event-type"))
        .unwrap_or("unknown")
        .to_string();
    let event_id = text(&parsed, &["id"]).unwrap_or("").to_string();
    let content_type = header(&headers, "content-type").unwrap_or("application/json");
    let mut record_headers = vec![(h::CIRCLECI_EVENT.to_string(), event.clone().into_bytes())];
    record_headers.extend(crate::receipt_headers(received_at, content_type));
    if !event_id.is_empty() {
        record_headers.push((
            h::CIRCLECI_EVENT_ID.to_string(),
            event_id.clone().into_bytes(),
        ));
    }
    let record = OutRecord {
        topic: CIRCLECI_WEBHOOK.into(),
        key: key(&parsed).into_bytes(),
        payload: body.to_vec(),
        headers: record_headers,
    };
    let appended = gateway.append(&record).await?;
    metrics::counter!("hudstream_gateway_appended_total", "event" => format!("circleci:{event}"))
        .increment(1);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"event_id": event_id, "topic": CIRCLECI_WEBHOOK, "partition": appended.partition, "offset": appended.offset})),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_by_project_and_workflow() {
        let body = json!({"type": "job-completed", "id": "e1", "project": {"slug": "gh/pytorch/pytorch"}, "workflow": {"id": "w9"}});
        assert_eq!(key(&body), "gh/pytorch/pytorch/w9");
        assert_eq!(key(&json!({"id": "e2"})), "e2");
    }
}
