//! The reconciler against a local GitHub stand-in serving real fixture objects.

use super::*;

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;

use hudstream_runtime::config::LogsConfig;
use hudstream_runtime::worker::{Action, InRecord, Processor};
use hudstream_schemas::headers as h;

/// What the stand-in knows: jobs and runs by id, the jobs of a run, and the budget it reports.
#[derive(Default)]
struct Stand {
    jobs: BTreeMap<i64, Value>,
    runs: BTreeMap<i64, Value>,
    run_jobs: BTreeMap<i64, Vec<Value>>,
    rate_limit_remaining: u64,
    /// `X-RateLimit-Reset` (unix seconds); 0 sends none.
    rate_limit_reset: i64,
    requests: Mutex<Vec<String>>,
}

fn answer(stand: &Stand, found: Option<Value>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ratelimit-remaining",
        stand
            .rate_limit_remaining
            .to_string()
            .parse()
            .expect("number"),
    );
    if stand.rate_limit_reset > 0 {
        headers.insert(
            "x-ratelimit-reset",
            stand.rate_limit_reset.to_string().parse().expect("number"),
        );
    }
    match found {
        Some(v) => (StatusCode::OK, headers, axum::Json(v)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            headers,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response(),
    }
}

/// `GET .../actions/jobs/{id}` and `GET .../actions/runs/{id}`.
async fn job_or_run(
    State(st): State<Arc<Stand>>,
    Path((o, r, kind, id)): Path<(String, String, String, i64)>,
) -> Response {
    let (known, label) = match kind.as_str() {
        "jobs" => (&st.jobs, "job"),
        _ => (&st.runs, "run"),
    };
    st.requests
        .lock()
        .expect("lock")
        .push(format!("{o}/{r} {label} {id}"));
    answer(&st, known.get(&id).cloned())
}

async fn run_jobs(
    State(st): State<Arc<Stand>>,
    Path((o, r, id)): Path<(String, String, i64)>,
    Query(q): Query<BTreeMap<String, usize>>,
) -> Response {
    let page = q.get("page").copied().unwrap_or(1);
    let per_page = q.get("per_page").copied().unwrap_or(30);
    st.requests
        .lock()
        .expect("lock")
        .push(format!("{o}/{r} run_jobs {id} page {page}"));
    let Some(all) = st.run_jobs.get(&id) else {
        return answer(&st, None);
    };
    let jobs: Vec<Value> = all
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .cloned()
        .collect();
    answer(&st, Some(json!({"total_count": all.len(), "jobs": jobs})))
}

async fn github(stand: Stand) -> (Arc<GitHub>, Arc<Stand>) {
    let stand = Arc::new(stand);
    let app = Router::new()
        .route("/repos/{o}/{r}/actions/{kind}/{id}", get(job_or_run))
        .route("/repos/{o}/{r}/actions/runs/{id}/jobs", get(run_jobs))
        .with_state(stand.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = LogsConfig {
        github_api_url: format!("http://{address}"),
        github_token: hudstream_runtime::Secret::new("test-token"),
        fetch_attempts: 1,
        ..LogsConfig::default()
    };
    let client = GitHub::from_config(&config, CancellationToken::new()).expect("client");
    (Arc::new(client), stand)
}

/// The real `workflow_job` fixture objects with this action, with their repository.
fn fixture_jobs(action: &str) -> Vec<(String, Value)> {
    let dir = hudstream_ingest::fixtures::default_dir();
    hudstream_ingest::fixtures::load(&dir)
        .expect("fixtures")
        .into_iter()
        .filter(|d| d.event == "workflow_job" && d.action.as_deref() == Some(action))
        .filter_map(|d| {
            let body: Value = serde_json::from_slice(&d.body).ok()?;
            let repository = body["repository"]["full_name"].as_str()?.to_string();
            Some((repository, body["workflow_job"].clone()))
        })
        .collect()
}

fn settings(max_requests: usize, floor: u64) -> ReconcileConfig {
    ReconcileConfig {
        max_requests_per_pass: max_requests,
        min_rate_limit_remaining: floor,
        ..ReconcileConfig::default()
    }
}

/// A candidate as the table has it, at version 0 (older than anything GitHub says).
fn candidate(kind: Kind, repository: &str, id: i64, status: &str) -> Candidate {
    Candidate {
        kind,
        repository: repository.into(),
        id,
        status: status.into(),
        version: 0,
    }
}

fn header<'a>(record: &'a OutRecord, name: &str) -> &'a str {
    record
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

/// The record as the processors will read it.
fn as_read(record: &OutRecord) -> InRecord {
    InRecord {
        topic: record.topic.clone(),
        partition: 0,
        offset: 0,
        key: Some(record.key.clone()),
        payload: Some(record.payload.clone()),
        headers: record.headers.clone(),
        timestamp_ms: None,
    }
}

#[tokio::test]
async fn a_job_whose_completed_webhook_was_lost_becomes_a_completed_delivery() {
    let (repository, completed) = fixture_jobs("completed")
        .into_iter()
        .next()
        .expect("a real completed job");
    let id = completed["id"].as_i64().expect("id");
    let (github, _) = github(Stand {
        jobs: [(id, completed.clone())].into(),
        rate_limit_remaining: 5000,
        ..Stand::default()
    })
    .await;
    let reconciler = Reconciler::new(github, settings(200, 500));
    let (records, report) = reconciler
        .ask(&[candidate(Kind::Job, &repository, id, "in_progress")])
        .await;
    assert_eq!(report.appended.get("job"), Some(&1), "{report}");
    assert_eq!(report.requests, 1);
    let record = &records[0];
    assert_eq!(record.topic, "github.workflow_job");
    assert_eq!(record.key, format!("{repository}/{id}").into_bytes());
    assert_eq!(header(record, h::ORIGIN), ORIGIN);
    assert_eq!(header(record, h::GITHUB_EVENT), "workflow_job");
    assert_eq!(header(record, h::GITHUB_ACTION), "completed");
    assert!(header(record, h::GITHUB_DELIVERY).starts_with("reconciler-"));
    let body: Value = serde_json::from_slice(&record.payload).expect("json");
    assert_eq!(
        body["workflow_job"], completed,
        "GitHub's own object, unchanged"
    );

    // The pipeline takes it like any delivery: the job processor derives the completed job.
    let processors = hudstream_processors::all();
    let jobs = processors
        .iter()
        .find(|p| p.input_topic() == "github.workflow_job")
        .expect("the job processor");
    let actions = jobs.process(&as_read(record));
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Publish(out) if out.topic == "hud.workflow_job.v1")),
        "{actions:?}"
    );

    // Asked again, the same answer is the same delivery.
    let (again, _) = reconciler
        .ask(&[candidate(Kind::Job, &repository, id, "in_progress")])
        .await;
    assert_eq!(
        header(&again[0], h::GITHUB_DELIVERY),
        header(record, h::GITHUB_DELIVERY)
    );
    assert_eq!(again[0].payload, record.payload);
}

/// The version the job processor gives a real delivery.
fn job_version(relative: &str) -> u64 {
    let path = hudstream_ingest::fixtures::default_dir().join(relative);
    let body = std::fs::read(&path).expect("fixture");
    hudstream_processors::workflow_job::normalize(&body)
        .expect("normalizes")
        .version as u64
}

#[tokio::test]
async fn what_github_agrees_with_knows_less_than_or_does_not_have_appends_nothing() {
    // GitHub still has the real job queued.
    let queued_file = "workflow_job/queued.payload.json";
    let body: Value = serde_json::from_slice(
        &std::fs::read(hudstream_ingest::fixtures::default_dir().join(queued_file))
            .expect("fixture"),
    )
    .expect("json");
    let repository = body["repository"]["full_name"]
        .as_str()
        .expect("repo")
        .to_string();
    let id = body["workflow_job"]["id"].as_i64().expect("id");
    let (github, _) = github(Stand {
        jobs: [(id, body["workflow_job"].clone())].into(),
        rate_limit_remaining: 5000,
        ..Stand::default()
    })
    .await;
    let reconciler = Reconciler::new(github, settings(200, 500));
    let table_has = |status: &str, version: u64| Candidate {
        version,
        ..candidate(Kind::Job, &repository, id, status)
    };
    let (records, report) = reconciler
        .ask(&[
            // The table has what GitHub says.
            table_has("queued", job_version(queued_file)),
            // The table has a later state than GitHub's answer (the in-progress delivery
            // arrived, GitHub's API lags): appending would change nothing, every pass.
            table_has(
                "in_progress",
                job_version("workflow_job/in_progress.payload.json"),
            ),
            // GitHub has forgotten these.
            candidate(Kind::Job, &repository, 1, "queued"),
            candidate(Kind::Run, &repository, 2, "in_progress"),
        ])
        .await;
    assert!(records.is_empty(), "{report}");
    assert_eq!(report.unchanged, 2, "{report}");
    assert_eq!(report.gone, 2, "{report}");
    assert_eq!(report.stopped, None);
}

#[tokio::test]
async fn a_pass_is_bounded_by_its_request_budget_and_by_githubs_remaining_limit() {
    let (github, stand) = github(Stand {
        rate_limit_remaining: 5000,
        ..Stand::default()
    })
    .await;
    let many: Vec<Candidate> = (1..=5)
        .map(|id| candidate(Kind::Job, "o/r", id, "queued"))
        .collect();
    let (_, report) = Reconciler::new(github, settings(3, 500)).ask(&many).await;
    assert_eq!(report.requests, 3);
    assert_eq!(report.checked.get("job"), Some(&3));
    assert!(
        report
            .stopped
            .as_deref()
            .unwrap_or("")
            .contains("max_requests_per_pass"),
        "{report}"
    );
    assert_eq!(stand.requests.lock().expect("lock").len(), 3);

    // GitHub says only 100 are left until the reset an hour from now: one request, then
    // the pass stops, and the next pass asks nothing either.
    let now = chrono::Utc::now().timestamp();
    let (github, stand) = github_with_remaining(100, now + 3600).await;
    let reconciler = Reconciler::new(github, settings(200, 500));
    let (_, report) = reconciler.ask(&many).await;
    assert_eq!(report.requests, 1);
    assert!(
        report
            .stopped
            .as_deref()
            .unwrap_or("")
            .contains("100 requests are left"),
        "{report}"
    );
    let (_, next) = reconciler.ask(&many).await;
    assert_eq!(next.requests, 0, "{next}");
    assert_eq!(stand.requests.lock().expect("lock").len(), 1);

    // Once the reset time has passed the budget is full again: the pass asks.
    let (github, stand) = github_with_remaining(100, now - 1).await;
    let reconciler = Reconciler::new(github, settings(200, 500));
    reconciler.ask(&many[..1]).await;
    let (_, after_reset) = reconciler.ask(&many).await;
    assert_eq!(after_reset.requests, 5, "{after_reset}");
    assert_eq!(stand.requests.lock().expect("lock").len(), 6);
}

async fn github_with_remaining(remaining: u64, reset: i64) -> (Arc<GitHub>, Arc<Stand>) {
    github(Stand {
        rate_limit_remaining: remaining,
        rate_limit_reset: reset,
        ..Stand::default()
    })
    .await
}

#[tokio::test]
async fn a_run_without_jobs_gets_every_job_github_lists_page_by_page() {
    let real = fixture_jobs("completed");
    let (repository, template) = real.first().cloned().expect("a real completed job");
    let run_id = template["run_id"].as_i64().expect("run id");
    // 150 jobs: two pages of GitHub's 100.
    let jobs: Vec<Value> = (0..150)
        .map(|i| {
            let mut job = template.clone();
            job["id"] = json!(10_000 + i);
            job
        })
        .collect();
    let (github, stand) = github(Stand {
        run_jobs: [(run_id, jobs)].into(),
        rate_limit_remaining: 5000,
        ..Stand::default()
    })
    .await;
    let (records, report) = Reconciler::new(github, settings(200, 500))
        .ask(&[candidate(Kind::RunJobs, &repository, run_id, "completed")])
        .await;
    assert_eq!(records.len(), 150, "{report}");
    assert_eq!(report.requests, 2);
    assert_eq!(report.appended.get("run_jobs"), Some(&150));
    let keys: std::collections::BTreeSet<Vec<u8>> = records.iter().map(|r| r.key.clone()).collect();
    assert_eq!(keys.len(), 150, "one key per job");
    assert_eq!(
        *stand.requests.lock().expect("lock"),
        vec![
            format!("{repository} run_jobs {run_id} page 1"),
            format!("{repository} run_jobs {run_id} page 2"),
        ]
    );
}

#[tokio::test]
async fn a_run_that_finished_without_telling_becomes_a_completed_run_delivery() {
    let dir = hudstream_ingest::fixtures::default_dir();
    let (repository, completed_run) = hudstream_ingest::fixtures::load(&dir)
        .expect("fixtures")
        .into_iter()
        .filter(|d| d.event == "workflow_run" && d.action.as_deref() == Some("completed"))
        .find_map(|d| {
            let body: Value = serde_json::from_slice(&d.body).ok()?;
            Some((
                body["repository"]["full_name"].as_str()?.to_string(),
                body["workflow_run"].clone(),
            ))
        })
        .expect("a real completed run");
    let id = completed_run["id"].as_i64().expect("id");
    let (github, _) = github(Stand {
        runs: [(id, completed_run)].into(),
        rate_limit_remaining: 5000,
        ..Stand::default()
    })
    .await;
    let (records, report) = Reconciler::new(github, settings(200, 500))
        .ask(&[candidate(Kind::Run, &repository, id, "queued")])
        .await;
    assert_eq!(report.appended.get("run"), Some(&1), "{report}");
    assert_eq!(records[0].topic, "github.workflow_run");
    assert_eq!(header(&records[0], h::GITHUB_ACTION), "completed");
    let processors = hudstream_processors::all();
    let runs = processors
        .iter()
        .find(|p| p.input_topic() == "github.workflow_run")
        .expect("the run processor");
    assert!(runs
        .process(&as_read(&records[0]))
        .iter()
        .any(|a| matches!(a, Action::Publish(out) if out.topic == "hud.workflow_run.v1")));
}
