//! Where each GitHub event goes: its raw topic and its partition key.
//!
//! The key keeps every event of one entity in one partition, so one entity's events stay in
//! delivery order: a job's by job id, a pull request's (and its reviews') by number, a push's
//! by ref. A delivery whose entity id is missing still gets appended — keyed by its delivery
//! id — and the processor dead-letters it with the reason; the gateway drops nothing.

use serde_json::Value;

use hudstream_schemas::topics::raw_topic_for_event;

/// The raw topic and partition key of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub topic: String,
    pub key: String,
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Routes a delivery of `event` with parsed body `body`.
pub fn route(event: &str, body: &Value, delivery_id: &str) -> Route {
    let repo = text(body, &["repository", "full_name"]);
    let in_repo = |path: &[&str]| -> Option<String> { Some(format!("{}/{}", repo.clone()?, text(body, path)?)) };
    let key = match event {
        "workflow_job" => in_repo(&["workflow_job", "id"]),
        "workflow_run" => in_repo(&["workflow_run", "id"]),
        "check_run" => in_repo(&["check_run", "id"]),
        "check_suite" => in_repo(&["check_suite", "id"]),
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            in_repo(&["pull_request", "number"])
        }
        "issues" | "issue_comment" => in_repo(&["issue", "number"]),
        "push" | "create" | "delete" => in_repo(&["ref"]),
        "status" => in_repo(&["sha"]),
        "release" => in_repo(&["release", "id"]),
        "installation" => text(body, &["installation", "id"]).map(|id| format!("installation/{id}")),
        "ping" => text(body, &["hook_id"]).map(|id| format!("hook/{id}")),
        _ => repo.clone(),
    }
    .unwrap_or_else(|| delivery_id.to_string());
    Route {
        topic: raw_topic_for_event(event),
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_keep_an_entitys_events_together() {
        let job = json!({"repository": {"full_name": "pytorch/pytorch"}, "workflow_job": {"id": 42}});
        assert_eq!(
            route("workflow_job", &job, "d"),
            Route { topic: "github.workflow_job".into(), key: "pytorch/pytorch/42".into() }
        );
        let review = json!({"repository": {"full_name": "o/r"}, "pull_request": {"number": 7}});
        assert_eq!(route("pull_request_review", &review, "d").key, "o/r/7");
        assert_eq!(route("pull_request_review", &review, "d").topic, "github.pull_request_review");
        let push = json!({"repository": {"full_name": "o/r"}, "ref": "refs/heads/main"});
        assert_eq!(route("push", &push, "d").key, "o/r/refs/heads/main");
    }

    #[test]
    fn missing_ids_fall_back_to_the_delivery_and_unknown_events_to_the_catch_all() {
        let broken = json!({"repository": {"full_name": "o/r"}});
        assert_eq!(route("workflow_job", &broken, "dlv-1").key, "dlv-1");
        let odd = json!({"repository": {"full_name": "o/r"}});
        assert_eq!(route("sponsorship", &odd, "d"), Route { topic: "github.other".into(), key: "o/r".into() });
    }
}
