//! The webhook GitHub would have sent: GitHub's own job or run object, a minimal `repository`,
//! the event's `action`, marked `hudstream-origin: reconciler` (or `backfill`), keyed and routed
//! as the gateway would.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use hudstream_ingest::routing::{route, Envelope};
use hudstream_runtime::worker::OutRecord;
use hudstream_schemas::headers as h;

use crate::ORIGIN;

/// A job's webhook `action` for its `status`.
pub fn job_action(status: &str) -> &str {
    match status {
        "completed" | "in_progress" | "queued" | "waiting" => status,
        // `requested`/`pending` have no webhook of their own: GitHub sends `queued`.
        _ => "queued",
    }
}

/// A run's webhook `action` for its `status`.
pub fn run_action(status: &str) -> &str {
    match status {
        "completed" | "in_progress" => status,
        _ => "requested",
    }
}

/// The webhook GitHub would have sent: `{"action", <event>: <object>, "repository"}`, routed
/// like the gateway routes a delivery, with the headers the gateway writes, marked as the
/// reconciler's. The delivery id is derived from the body, so the same answer asked twice is
/// the same delivery.
pub fn synthetic_delivery(event: &str, action: &str, object: Value, repository: &str) -> OutRecord {
    let (owner, name) = repository.split_once('/').unwrap_or((repository, ""));
    let body = json!({
        "action": action,
        event: object,
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner}},
    });
    synthetic(event, action, &body, ORIGIN)
}

/// A whole webhook `body` for `event`, routed and headed as the gateway would, marked with
/// `origin` (`hudstream-origin`); its delivery id is `{origin}-` and the body's digest.
pub fn synthetic(event: &str, action: &str, body: &Value, origin: &str) -> OutRecord {
    let payload = serde_json::to_vec(body).unwrap_or_default();
    let delivery = format!("{origin}-{}", &hex::encode(Sha256::digest(&payload))[..32]);
    let routed = route(event, &Envelope::from_value(body), &delivery);
    let received_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    OutRecord {
        topic: routed.topic,
        key: routed.key.into_bytes(),
        payload,
        headers: vec![
            (h::GITHUB_DELIVERY.into(), delivery.into_bytes()),
            (h::GITHUB_EVENT.into(), event.as_bytes().to_vec()),
            (h::GITHUB_ACTION.into(), action.as_bytes().to_vec()),
            (h::RECEIVED_AT.into(), received_at.into_bytes()),
            (h::CONTENT_TYPE.into(), b"application/json".to_vec()),
            (h::ORIGIN.into(), origin.as_bytes().to_vec()),
        ],
    }
}
