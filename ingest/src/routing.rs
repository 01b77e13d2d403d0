//! Where each GitHub event goes: its raw topic and its partition key.
//!
//! The key keeps every event of one entity in one partition, so one entity's events stay in
//! delivery order: a job's by job id, a pull request's (and its reviews') by number, a push's
//! by ref. A delivery whose entity id is missing still gets appended — keyed by its delivery
//! id — and the processor dead-letters it with the reason; the gateway drops nothing.
//!
//! Routing reads only the few envelope fields it needs through a typed parse that skips the
//! rest of the body (about twice as fast as building a `serde_json::Value`). A body whose
//! envelope fields have unexpected types is still valid JSON and is routed from a full parse.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use hudstream_schemas::topics::raw_topic_for_event;

/// The raw topic and partition key of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub topic: String,
    pub key: String,
}

/// A string or a number, as text (GitHub ids are numbers, refs and shas strings).
#[derive(Debug, Default, Clone, PartialEq)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
struct Entity {
    id: Option<Scalar>,
    number: Option<Scalar>,
    full_name: Option<Scalar>,
}

/// The fields routing reads; everything else in the body is skipped, not materialized.
#[derive(Debug, Default, Deserialize)]
pub struct Envelope {
    action: Option<Scalar>,
    repository: Option<Entity>,
    workflow_job: Option<Entity>,
    workflow_run: Option<Entity>,
    check_run: Option<Entity>,
    check_suite: Option<Entity>,
    pull_request: Option<Entity>,
    issue: Option<Entity>,
    release: Option<Entity>,
    installation: Option<Entity>,
    #[serde(rename = "ref")]
    git_ref: Option<Scalar>,
    sha: Option<Scalar>,
    hook_id: Option<Scalar>,
}

fn text(v: &Value, path: &[&str]) -> Option<Scalar> {
    match path.iter().try_fold(v, |cur, p| cur.get(p))? {
        Value::String(s) => Some(Scalar(s.clone())),
        Value::Number(n) => Some(Scalar(n.to_string())),
        _ => None,
    }
}

impl Envelope {
    /// The envelope of a body that parsed as JSON but not into the typed envelope.
    pub fn from_value(v: &Value) -> Envelope {
        let entity = |name: &str| {
            v.get(name).filter(|e| e.is_object()).map(|_| Entity {
                id: text(v, &[name, "id"]),
                number: text(v, &[name, "number"]),
                full_name: text(v, &[name, "full_name"]),
            })
        };
        Envelope {
            action: text(v, &["action"]),
            repository: entity("repository"),
            workflow_job: entity("workflow_job"),
            workflow_run: entity("workflow_run"),
            check_run: entity("check_run"),
            check_suite: entity("check_suite"),
            pull_request: entity("pull_request"),
            issue: entity("issue"),
            release: entity("release"),
            installation: entity("installation"),
            git_ref: text(v, &["ref"]),
            sha: text(v, &["sha"]),
            hook_id: text(v, &["hook_id"]),
        }
    }

    /// The body's top-level `action`, or "".
    pub fn action(&self) -> &str {
        self.action.as_ref().map(|s| s.0.as_str()).unwrap_or("")
    }
}

fn non_empty(s: &Option<Scalar>) -> Option<&str> {
    s.as_ref().map(|s| s.0.as_str()).filter(|s| !s.is_empty())
}

/// Routes a delivery of `event` with envelope `env`.
pub fn route(event: &str, env: &Envelope, delivery_id: &str) -> Route {
    let repo = env
        .repository
        .as_ref()
        .and_then(|r| non_empty(&r.full_name));
    let id = |e: &Option<Entity>| {
        e.as_ref()
            .and_then(|e| non_empty(&e.id))
            .map(str::to_string)
    };
    let number = |e: &Option<Entity>| {
        e.as_ref()
            .and_then(|e| non_empty(&e.number))
            .map(str::to_string)
    };
    let in_repo = |part: Option<String>| Some(format!("{}/{}", repo?, part?));
    let key = match event {
        "workflow_job" => in_repo(id(&env.workflow_job)),
        "workflow_run" => in_repo(id(&env.workflow_run)),
        "check_run" => in_repo(id(&env.check_run)),
        "check_suite" => in_repo(id(&env.check_suite)),
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            in_repo(number(&env.pull_request))
        }
        "issues" | "issue_comment" => in_repo(number(&env.issue)),
        "push" | "create" | "delete" => in_repo(non_empty(&env.git_ref).map(str::to_string)),
        "status" => in_repo(non_empty(&env.sha).map(str::to_string)),
        "release" => in_repo(id(&env.release)),
        "installation" => id(&env.installation).map(|i| format!("installation/{i}")),
        "ping" => non_empty(&env.hook_id).map(|i| format!("hook/{i}")),
        _ => repo.map(str::to_string),
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
    use proptest::prelude::*;
    use serde_json::json;

    fn typed(v: &Value) -> Envelope {
        serde_json::from_value(v.clone()).expect("typed envelope")
    }

    #[test]
    fn keys_keep_an_entitys_events_together() {
        let job = json!({"action": "queued", "repository": {"full_name": "pytorch/pytorch", "id": 1}, "workflow_job": {"id": 42, "steps": []}});
        assert_eq!(
            route("workflow_job", &typed(&job), "d"),
            Route {
                topic: "github.workflow_job".into(),
                key: "pytorch/pytorch/42".into()
            }
        );
        assert_eq!(typed(&job).action(), "queued");
        let review = json!({"repository": {"full_name": "o/r"}, "pull_request": {"number": 7}});
        assert_eq!(
            route("pull_request_review", &typed(&review), "d").key,
            "o/r/7"
        );
        assert_eq!(
            route("pull_request_review", &typed(&review), "d").topic,
            "github.pull_request_review"
        );
        let push = json!({"repository": {"full_name": "o/r"}, "ref": "refs/heads/main"});
        assert_eq!(route("push", &typed(&push), "d").key, "o/r/refs/heads/main");
    }

    #[test]
    fn missing_ids_fall_back_to_the_delivery_and_unknown_events_to_the_catch_all() {
        let broken = json!({"repository": {"full_name": "o/r"}});
        assert_eq!(route("workflow_job", &typed(&broken), "dlv-1").key, "dlv-1");
        assert_eq!(
            route("sponsorship", &typed(&broken), "d"),
            Route {
                topic: "github.other".into(),
                key: "o/r".into()
            }
        );
    }

    #[test]
    fn odd_types_fail_the_typed_parse_but_route_the_same_from_a_full_parse() {
        let odd = json!({"repository": {"full_name": "o/r"}, "workflow_job": {"id": 5}, "ref": ["not", "a", "string"]});
        assert!(serde_json::from_value::<Envelope>(odd.clone()).is_err());
        assert_eq!(
            route("workflow_job", &Envelope::from_value(&odd), "d").key,
            "o/r/5"
        );
    }

    proptest! {
        // Whatever the body, the typed parse (when it succeeds) and the fallback agree.
        #[test]
        fn typed_and_fallback_envelopes_route_alike(id in any::<u64>(), number in any::<u32>(), name in "[a-z]{1,8}/[a-z]{1,8}", event_ix in 0usize..6) {
            let events = ["workflow_job", "pull_request", "issues", "push", "ping", "release"];
            let body = json!({"repository": {"full_name": name}, "workflow_job": {"id": id}, "pull_request": {"number": number},
                              "issue": {"number": number}, "ref": "refs/heads/x", "hook_id": id, "release": {"id": id}});
            let event = events[event_ix];
            prop_assert_eq!(route(event, &typed(&body), "d"), route(event, &Envelope::from_value(&body), "d"));
        }
    }
}
