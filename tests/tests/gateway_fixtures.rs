//! All 236 real deliveries through the gateway: each lands in the right topic, byte for byte,
//! with the right key and headers. The captured deliveries carry GitHub's real headers (hook
//! id, installation target); their raw bodies are re-signed with the test secret.

use std::collections::BTreeMap;

use serde_json::Value;

use hudstream_e2e::{all_fixtures, Stack};
use hudstream_schemas::headers as h;

/// The partition key, worked out here independently of the gateway's routing table.
fn expected_key(event: &str, body: &Value, delivery: &str) -> String {
    let repo = body
        .pointer("/repository/full_name")
        .and_then(Value::as_str);
    let id = |ptr: &str| match body.pointer(ptr) {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let pointer = match event {
        "workflow_job" => "/workflow_job/id",
        "workflow_run" => "/workflow_run/id",
        "check_run" => "/check_run/id",
        "check_suite" => "/check_suite/id",
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            "/pull_request/number"
        }
        "issues" | "issue_comment" => "/issue/number",
        "push" | "create" | "delete" => "/ref",
        "status" => "/sha",
        "release" => "/release/id",
        "installation" => {
            return id("/installation/id")
                .map(|i| format!("installation/{i}"))
                .unwrap_or(delivery.into())
        }
        "ping" => {
            return id("/hook_id")
                .map(|i| format!("hook/{i}"))
                .unwrap_or(delivery.into())
        }
        _ => return repo.unwrap_or(delivery).to_string(),
    };
    match (repo, id(pointer)) {
        (Some(r), Some(i)) => format!("{r}/{i}"),
        _ => delivery.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_real_delivery_lands_in_its_topic_byte_for_byte_with_key_and_headers() {
    let stack = Stack::start().await;
    let fixtures = all_fixtures();
    assert_eq!(fixtures.len(), 236);
    let mut by_topic: BTreeMap<String, usize> = BTreeMap::new();
    for d in &fixtures {
        let r = stack.post(d).await;
        assert_eq!(r.status().as_u16(), 202, "{}", d.path.display());
        let answer: Value = r.json().await.expect("json");
        assert_eq!(answer["delivery_id"], d.delivery_id);
        let topic = answer["topic"].as_str().expect("topic").to_string();
        assert_eq!(
            topic,
            format!("github.{}", d.event),
            "{} was routed to {topic}",
            d.path.display()
        );
        *by_topic.entry(topic).or_default() += 1;
    }
    assert_eq!(by_topic.len(), 16, "all 16 event types");

    for (topic, count) in by_topic {
        let records = stack.read_topic(&topic, move |rs| rs.len() >= count).await;
        assert_eq!(records.len(), count, "{topic}");
        for record in records {
            let delivery_id = record
                .header_str(h::GITHUB_DELIVERY)
                .expect("delivery header")
                .to_string();
            let d = fixtures
                .iter()
                .find(|d| d.delivery_id == delivery_id)
                .expect("a fixture we sent");
            let where_ = d.path.display();
            assert_eq!(
                record.payload.as_deref(),
                Some(d.body.as_slice()),
                "{where_}: body changed"
            );
            let body: Value = serde_json::from_slice(&d.body).expect("json");
            let key = String::from_utf8(record.key.clone().expect("key")).expect("utf-8 key");
            assert_eq!(
                key,
                expected_key(&d.event, &body, &d.delivery_id),
                "{where_}"
            );
            assert_eq!(
                record.header_str(h::GITHUB_EVENT),
                Some(d.event.as_str()),
                "{where_}"
            );
            assert_eq!(
                record.header_str(h::GITHUB_ACTION),
                body["action"].as_str(),
                "{where_}"
            );
            assert_eq!(record.header_str(h::CONTENT_TYPE), Some("application/json"));
            assert!(record
                .header_str(h::RECEIVED_AT)
                .is_some_and(|t| t.ends_with('Z')));
            assert!(record
                .header_str(h::GATEWAY_VERSION)
                .is_some_and(|v| v.starts_with("hudstream/")));
            for (name, header) in [
                ("x-github-hook-id", h::GITHUB_HOOK_ID),
                (
                    "x-github-hook-installation-target-type",
                    h::GITHUB_TARGET_TYPE,
                ),
                ("x-github-hook-installation-target-id", h::GITHUB_TARGET_ID),
            ] {
                let sent = d
                    .headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.as_str());
                assert_eq!(record.header_str(header), sent, "{where_}: {header}");
            }
        }
    }
    stack.stop().await;
}
