//! The workflow_run and pull_request processors on the real broker: real deliveries in, the
//! decoded Avro records on the derived topics out.

use hudstream_e2e::{all_fixtures, Stack};
use hudstream_schemas::headers as h;
use hudstream_schemas::pull_request::{LabelEvent, PullRequest};
use hudstream_schemas::topics::{HUD_LABEL_EVENT_V1, HUD_PULL_REQUEST_V1, HUD_WORKFLOW_RUN_V1};
use hudstream_schemas::wire::{Codec, RecordType};
use hudstream_schemas::workflow_run::WorkflowRun;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_prs_and_label_events_are_derived_from_the_real_deliveries() {
    let stack = Stack::start().await;
    let fixtures: Vec<_> = all_fixtures()
        .into_iter()
        .filter(|d| d.event == "workflow_run" || d.event == "pull_request")
        .collect();
    let runs = fixtures
        .iter()
        .filter(|d| d.event == "workflow_run")
        .count();
    let prs = fixtures.len() - runs;
    let labelings = fixtures
        .iter()
        .filter(|d| d.event == "pull_request")
        .filter(|d| {
            let v: serde_json::Value = serde_json::from_slice(&d.body).expect("json");
            matches!(v["action"].as_str(), Some("labeled" | "unlabeled"))
        })
        .count();
    for d in &fixtures {
        assert_eq!(
            stack.post(d).await.status().as_u16(),
            202,
            "{}",
            d.path.display()
        );
    }

    let records = stack
        .read_topic(HUD_WORKFLOW_RUN_V1, move |rs| rs.len() >= runs)
        .await;
    let codec = Codec::<WorkflowRun>::new().expect("codec");
    for r in &records {
        let run = codec
            .decode(r.payload.as_deref().expect("value"))
            .expect("decodes");
        assert_eq!(r.key.as_deref(), Some(run.key().as_bytes()));
        assert_eq!(r.header_str(h::SCHEMA), Some("hudstream.WorkflowRun/1"));
        assert!(r.header_str(h::GITHUB_DELIVERY).is_some());
    }

    let records = stack
        .read_topic(HUD_PULL_REQUEST_V1, move |rs| rs.len() >= prs)
        .await;
    let codec = Codec::<PullRequest>::new().expect("codec");
    for r in &records {
        let pr = codec
            .decode(r.payload.as_deref().expect("value"))
            .expect("decodes");
        assert_eq!(r.key.as_deref(), Some(pr.key().as_bytes()));
    }

    let records = stack
        .read_topic(HUD_LABEL_EVENT_V1, move |rs| rs.len() >= labelings)
        .await;
    let codec = Codec::<LabelEvent>::new().expect("codec");
    assert_eq!(records.len(), labelings);
    for r in &records {
        let event = codec
            .decode(r.payload.as_deref().expect("value"))
            .expect("decodes");
        assert!(event.action == "labeled" || event.action == "unlabeled");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_become_commits_and_ref_updates() {
    use hudstream_schemas::push::{Commit, RefUpdate};
    use hudstream_schemas::topics::{HUD_COMMIT_V1, HUD_REF_UPDATE_V1};
    let stack = Stack::start().await;
    let pushes: Vec<_> = all_fixtures()
        .into_iter()
        .filter(|d| d.event == "push")
        .collect();
    let expected_commits: usize = pushes
        .iter()
        .map(|d| {
            hudstream_processors::push::normalize(&d.body)
                .expect("normalizes")
                .commits
                .len()
        })
        .sum();
    assert!(expected_commits > 0);
    for d in &pushes {
        assert_eq!(stack.post(d).await.status().as_u16(), 202);
    }
    let n = pushes.len();
    let updates = stack
        .read_topic(HUD_REF_UPDATE_V1, move |rs| rs.len() >= n)
        .await;
    let codec = Codec::<RefUpdate>::new().expect("codec");
    assert!(updates
        .iter()
        .all(|r| codec.decode(r.payload.as_deref().expect("value")).is_ok()));
    let commits = stack
        .read_topic(HUD_COMMIT_V1, move |rs| rs.len() >= expected_commits)
        .await;
    let codec = Codec::<Commit>::new().expect("codec");
    for r in &commits {
        let c = codec
            .decode(r.payload.as_deref().expect("value"))
            .expect("decodes");
        assert_eq!(r.key.as_deref(), Some(c.key().as_bytes()));
        assert_eq!(c.sha.len(), 40);
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oot_callbacks_become_flattened_results_that_merge_in_any_order() {
    use hudstream_processors::oot::merge_all;
    use hudstream_schemas::oot::OotResult;
    use hudstream_schemas::topics::HUD_OOT_RESULT_V1;
    use serde_json::json;
    let stack = Stack::start().await;
    let body = |status: &str, extra: serde_json::Value, queue: serde_json::Value| {
        let mut workflow = json!({"status": status, "name": "xpu-ci", "url": "u", "job_name": "test", "check_run_id": "c-1", "run_attempt": 1});
        for (k, v) in extra.as_object().expect("object") {
            workflow[k] = v.clone();
        }
        serde_json::to_vec(&json!({
            "trusted": {"verified_repo": "intel/torch-xpu-ops", "downstream_repo_level": "L3", "ci_metrics": {"queue_time": queue, "execution_time": null}},
            "untrusted": {"callback_payload": {"event_type": "pull_request", "delivery_id": "d-9", "payload": {"pull_request": {"number": 5}}, "workflow": workflow}}
        }))
        .expect("json")
    };
    // The completed callback arrives first.
    for b in [
        body(
            "completed",
            json!({"conclusion": "success", "completed_at": "2026-05-01T11:00:00Z", "test_results": {"passed": 10, "failed": 0, "skipped": 1}}),
            serde_json::Value::Null,
        ),
        body(
            "in_progress",
            json!({"started_at": "2026-05-01T10:00:00Z"}),
            json!(42.0),
        ),
    ] {
        stack.post_oot(b).await;
    }
    let records = stack
        .read_topic(HUD_OOT_RESULT_V1, |rs| rs.len() >= 2)
        .await;
    let codec = Codec::<OotResult>::new().expect("codec");
    let callbacks: Vec<OotResult> = records
        .iter()
        .map(|r| {
            codec
                .decode(r.payload.as_deref().expect("value"))
                .expect("decodes")
        })
        .collect();
    let row = merge_all(&callbacks).expect("row");
    assert_eq!(row.dynamo_key, "intel/torch-xpu-ops/d-9/xpu-ci/test/c-1");
    assert_eq!(
        (row.status.as_str(), row.conclusion.as_deref()),
        ("completed", Some("success"))
    );
    assert_eq!(
        (
            row.queue_time,
            row.total_tests,
            row.downstream_repo_level.as_deref()
        ),
        (Some(42.0), Some(11), Some("L3"))
    );
    assert!(row.started_at.is_some() && row.completed_at.is_some());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_comments_and_check_runs_are_derived() {
    use hudstream_schemas::issue::{CheckRun, Issue, IssueComment};
    use hudstream_schemas::topics::{HUD_CHECK_RUN_V1, HUD_ISSUE_COMMENT_V1, HUD_ISSUE_V1};
    let stack = Stack::start().await;
    let fixtures: Vec<_> = all_fixtures()
        .into_iter()
        .filter(|d| ["issues", "issue_comment", "check_run"].contains(&d.event.as_str()))
        .collect();
    let count = |e: &str| fixtures.iter().filter(|d| d.event == e).count();
    let (issues, comments, checks) = (count("issues"), count("issue_comment"), count("check_run"));
    for d in &fixtures {
        assert_eq!(stack.post(d).await.status().as_u16(), 202);
    }
    let records = stack
        .read_topic(HUD_ISSUE_V1, move |rs| rs.len() >= issues)
        .await;
    let codec = Codec::<Issue>::new().expect("codec");
    assert!(records
        .iter()
        .all(|r| codec.decode(r.payload.as_deref().expect("value")).is_ok()));
    let records = stack
        .read_topic(HUD_ISSUE_COMMENT_V1, move |rs| rs.len() >= comments)
        .await;
    let codec = Codec::<IssueComment>::new().expect("codec");
    assert!(records
        .iter()
        .all(|r| codec.decode(r.payload.as_deref().expect("value")).is_ok()));
    let records = stack
        .read_topic(HUD_CHECK_RUN_V1, move |rs| rs.len() >= checks)
        .await;
    let codec = Codec::<CheckRun>::new().expect("codec");
    assert!(records
        .iter()
        .all(|r| codec.decode(r.payload.as_deref().expect("value")).is_ok()));
    // Nothing of these was dead-lettered.
    let dead = hudstream::commands::dead_letters::read_all(
        &stack.config,
        std::time::Duration::from_millis(1000),
    )
    .await
    .expect("read");
    assert!(
        dead.is_empty(),
        "{:?}",
        dead.iter().map(|d| &d.reason).collect::<Vec<_>>()
    );
    stack.stop().await;
}
