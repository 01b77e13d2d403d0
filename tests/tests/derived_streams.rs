//! The workflow_run and pull_request processors on the real broker: real deliveries in, the
//! decoded Avro records on the derived topics out.

use hudstream_e2e::{all_fixtures, Stack};
use hudstream_schemas::headers as h;
use hudstream_schemas::pull_request::{LabelEvent, PullRequest};
use hudstream_schemas::topics::{HUD_LABEL_EVENT_V1, HUD_PULL_REQUEST_V1, HUD_WORKFLOW_RUN_V1};
use hudstream_schemas::wire::Codec;
use hudstream_schemas::workflow_run::WorkflowRun;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_prs_and_label_events_are_derived_from_the_real_deliveries() {
    let stack = Stack::start().await;
    let fixtures: Vec<_> = all_fixtures().into_iter().filter(|d| d.event == "workflow_run" || d.event == "pull_request").collect();
    let runs = fixtures.iter().filter(|d| d.event == "workflow_run").count();
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
        assert_eq!(stack.post(d).await.status().as_u16(), 202, "{}", d.path.display());
    }

    let records = stack.read_topic(HUD_WORKFLOW_RUN_V1, move |rs| rs.len() >= runs).await;
    let codec = Codec::<WorkflowRun>::new().expect("codec");
    for r in &records {
        let run = codec.decode(r.payload.as_deref().expect("value")).expect("decodes");
        assert_eq!(r.key.as_deref(), Some(run.key().as_bytes()));
        assert_eq!(r.header_str(h::SCHEMA), Some("hudstream.WorkflowRun/1"));
        assert!(r.header_str(h::GITHUB_DELIVERY).is_some());
    }

    let records = stack.read_topic(HUD_PULL_REQUEST_V1, move |rs| rs.len() >= prs).await;
    let codec = Codec::<PullRequest>::new().expect("codec");
    for r in &records {
        let pr = codec.decode(r.payload.as_deref().expect("value")).expect("decodes");
        assert_eq!(r.key.as_deref(), Some(pr.key().as_bytes()));
    }

    let records = stack.read_topic(HUD_LABEL_EVENT_V1, move |rs| rs.len() >= labelings).await;
    let codec = Codec::<LabelEvent>::new().expect("codec");
    assert_eq!(records.len(), labelings);
    for r in &records {
        let event = codec.decode(r.payload.as_deref().expect("value")).expect("decodes");
        assert!(event.action == "labeled" || event.action == "unlabeled");
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_become_commits_and_ref_updates() {
    use hudstream_schemas::push::{Commit, RefUpdate};
    use hudstream_schemas::topics::{HUD_COMMIT_V1, HUD_REF_UPDATE_V1};
    let stack = Stack::start().await;
    let pushes: Vec<_> = all_fixtures().into_iter().filter(|d| d.event == "push").collect();
    let expected_commits: usize = pushes
        .iter()
        .map(|d| hudstream_processors::push::normalize(&d.body).expect("normalizes").commits.len())
        .sum();
    assert!(expected_commits > 0);
    for d in &pushes {
        assert_eq!(stack.post(d).await.status().as_u16(), 202);
    }
    let n = pushes.len();
    let updates = stack.read_topic(HUD_REF_UPDATE_V1, move |rs| rs.len() >= n).await;
    let codec = Codec::<RefUpdate>::new().expect("codec");
    assert!(updates.iter().all(|r| codec.decode(r.payload.as_deref().expect("value")).is_ok()));
    let commits = stack.read_topic(HUD_COMMIT_V1, move |rs| rs.len() >= expected_commits).await;
    let codec = Codec::<Commit>::new().expect("codec");
    for r in &commits {
        let c = codec.decode(r.payload.as_deref().expect("value")).expect("decodes");
        assert_eq!(r.key.as_deref(), Some(c.key().as_bytes()));
        assert_eq!(c.sha.len(), 40);
    }
    stack.stop().await;
}
