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
    synthetic(
        event,
        action,
        &wrap(event, action, object, repository),
        ORIGIN,
    )
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

/// `{"action", <event>: object, "repository"}`, as the reconciler writes it.
pub(crate) fn wrap(event: &str, action: &str, object: Value, repository: &str) -> Value {
    let (owner, name) = repository.split_once('/').unwrap_or((repository, ""));
    json!({
        "action": action,
        event: object,
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner}},
    })
}

/// The `push` of one commit as GitHub's commits API describes it: pushed when committed.
pub fn push_of(repository: &str, branch: &str, c: &Value) -> Value {
    let (owner, name) = repository.split_once('/').unwrap_or((repository, ""));
    let sha = c["sha"].as_str().unwrap_or_default();
    let person = |who: &str| {
        json!({
            "name": c["commit"][who]["name"],
            "email": c["commit"][who]["email"],
            "username": c[who]["login"],
        })
    };
    let commit = json!({
        "id": sha,
        "distinct": true,
        "message": c["commit"]["message"],
        "timestamp": c["commit"]["author"]["date"],
        "url": c["html_url"],
        "author": person("author"),
        "committer": person("committer"),
    });
    let pushed_at = c["commit"]["committer"]["date"]
        .as_str()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0);
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": c["parents"][0]["sha"].as_str().unwrap_or("0000000000000000000000000000000000000000"),
        "after": sha,
        "created": false,
        "deleted": false,
        "forced": false,
        "commits": [commit.clone()],
        "head_commit": commit,
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner}, "pushed_at": pushed_at},
        "pusher": {"name": c["committer"]["login"]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_becomes_the_push_of_that_commit_pushed_when_committed() {
        let c = json!({
            "sha": "a".repeat(40),
            "html_url": "https://github.com/o/r/commit/aaa",
            "parents": [{"sha": "b".repeat(40)}],
            "author": {"login": "octo"},
            "committer": {"login": "web-flow"},
            "commit": {
                "message": "Fix (#1)",
                "author": {"name": "Octo", "email": "o@x", "date": "2026-12-01T10:00:00Z"},
                "committer": {"name": "GitHub", "email": "g@x", "date": "2026-12-01T11:00:00Z"},
            },
        });
        let push = push_of("o/r", "main", &c);
        let derived =
            hudstream_processors::push::normalize(&serde_json::to_vec(&push).unwrap()).unwrap();
        assert_eq!(derived.commits.len(), 1);
        let commit = &derived.commits[0];
        assert_eq!(commit.sha, "a".repeat(40));
        assert_eq!(commit.author_username, "octo");
        assert_eq!(commit.pushed_at, Some(1_796_122_800_000));
        assert_eq!(commit.branch, "main");
    }
}
