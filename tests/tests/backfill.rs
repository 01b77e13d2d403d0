//! `hudstream backfill` against a GitHub stand-in that serves a generated day's real-shaped
//! objects (the demo crate's commits, runs over several pages and windows, every attempt's jobs,
//! pull requests), on the real broker and ClickHouse:
//! - a dry run counts and appends nothing;
//! - a backfill that GitHub's rate limit stops half way, run again, finishes and appends every
//!   object exactly once (delivery ids in the raw topics);
//! - the main grid it builds equals the grid built from the same day delivered as webhooks.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use hudstream_demo::{Day, DayShape, Options, Request as DemoRequest};
use hudstream_e2e::*;
use hudstream_github::GitHub;
use hudstream_ingest::signature::sign_sha256;
use hudstream_reconcile::backfill::{Backfill, Plan};
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::Secret;
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::{
    GITHUB_PULL_REQUEST, GITHUB_PUSH, GITHUB_WORKFLOW_JOB, GITHUB_WORKFLOW_RUN,
};

const TOKEN: &str = "backfill-token";
const PER_PAGE: usize = 10;

fn small_day() -> Day {
    let dataset = hudstream_ingest::fixtures::default_dir()
        .join("../../reference/datasets/pytorch_jobs_2024-08-14.csv");
    let shape = DayShape::load(&dataset).expect("the real dataset");
    let now = chrono::Utc::now().timestamp_millis();
    let mut options = Options::demo(5, now - now.rem_euclid(600_000), Vec::new(), 0);
    options.commits = 8;
    options.jobs_per_commit = 24;
    hudstream_demo::generate(&shape, options)
}

/// The stand-in: GitHub's REST answers for one day, with `X-RateLimit-*` headers. Requests
/// past `budget` are answered as GitHub does when the hour's budget is spent.
struct GitHubStandIn {
    day: Day,
    budget: AtomicI64,
}

fn query(uri: &axum::http::Uri) -> std::collections::HashMap<String, String> {
    form_urlencoded(uri.query().unwrap_or(""))
}

fn form_urlencoded(q: &str) -> std::collections::HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace("%2B", "+")))
        .collect()
}

fn millis(iso: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso)
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

fn page<T: Clone>(items: &[T], q: &std::collections::HashMap<String, String>) -> Vec<T> {
    let per: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    items
        .iter()
        .skip((page - 1) * per)
        .take(per)
        .cloned()
        .collect()
}

async fn answer(
    State(gh): State<Arc<GitHubStandIn>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let left = gh.budget.fetch_sub(1, Ordering::SeqCst) - 1;
    let reset = (chrono::Utc::now().timestamp() + 3000).to_string();
    if left < 0 {
        return (
            StatusCode::FORBIDDEN,
            [
                ("x-ratelimit-remaining", "0".to_string()),
                ("x-ratelimit-reset", reset),
            ],
            axum::Json(json!({"message": "API rate limit exceeded"})),
        )
            .into_response();
    }
    let day = &gh.day;
    let repo = &day.options.repository;
    let path = request.uri().path().to_string();
    let q = query(request.uri());
    let rest = path.strip_prefix(&format!("/repos/{repo}")).unwrap_or("?");
    let body = if rest.is_empty() {
        day.repository_object()
    } else if rest == "/commits" {
        let (since, until) = (millis(&q["since"]), millis(&q["until"]));
        let mut commits: Vec<(i64, Value)> = (0..day.commits.len())
            .filter(|&i| (since..=until).contains(&day.commits[i].pushed_at_ms))
            .map(|i| (day.commits[i].pushed_at_ms, day.commit_object(i)))
            .collect();
        commits.sort_by(|a, b| b.0.cmp(&a.0));
        Value::Array(page(
            &commits.into_iter().map(|c| c.1).collect::<Vec<_>>(),
            &q,
        ))
    } else if rest == "/actions/runs" {
        let (a, b) = q["created"].split_once("..").expect("created=a..b");
        let (a, b) = (millis(a), millis(b) + 999);
        let mut runs: Vec<(i64, Value)> = day
            .api_runs()
            .into_iter()
            .filter(|(c, _)| (a..=b).contains(c))
            .collect();
        runs.sort_by(|x, y| y.0.cmp(&x.0));
        let total = runs.len();
        // GitHub lists at most 1,000 runs per query; the stand-in's cap is 25.
        let listed: Vec<Value> = runs.into_iter().take(25).map(|r| r.1).collect();
        json!({"total_count": total, "workflow_runs": page(&listed, &q)})
    } else if let Some(id) = rest
        .strip_prefix("/actions/runs/")
        .and_then(|r| r.strip_suffix("/jobs"))
    {
        assert_eq!(q.get("filter").map(String::as_str), Some("all"));
        let jobs = day.api_run_jobs(id.parse().expect("run id"));
        json!({"total_count": jobs.len(), "jobs": page(&jobs, &q)})
    } else if rest == "/pulls" {
        Value::Array(page(&day.api_pulls(), &q))
    } else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };
    (
        [
            ("x-ratelimit-remaining", left.max(0).to_string()),
            ("x-ratelimit-reset", reset),
        ],
        axum::Json(body),
    )
        .into_response()
}

async fn stand_in(day: Day) -> (Arc<GitHubStandIn>, String) {
    let gh = Arc::new(GitHubStandIn {
        day,
        budget: AtomicI64::new(i64::MAX / 2),
    });
    let router = axum::Router::new().fallback(answer).with_state(gh.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (gh, url)
}

/// The delivery ids of the first `n` records of each raw topic, `(topic, n)`.
async fn delivery_ids(stack: &Stack, topics: [(&str, usize); 4]) -> Vec<String> {
    let mut ids = Vec::new();
    for (topic, n) in topics {
        let records = stack.read_topic(topic, move |r| r.len() >= n).await;
        ids.extend(
            records
                .iter()
                .take(n)
                .filter_map(|r| r.header_str(h::GITHUB_DELIVERY).map(str::to_string)),
        );
    }
    ids
}

fn grid_cells(grid: &Value) -> Vec<(String, String, Vec<Value>)> {
    grid["commits"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["sha"].as_str().unwrap_or_default().to_string(),
                r["title"].as_str().unwrap_or_default().to_string(),
                r["jobs"].as_array().cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backfill_builds_the_grid_webhooks_build_resumes_without_appending_twice_and_dry_runs_append_nothing(
) {
    let day = small_day();
    let repo = day.options.repository.clone();
    let grid_path = format!("/api/hud/{repo}/main?per_page=50");

    // The same day delivered as webhooks.
    let webhooks = Stack::start().await;
    for r in day.requests() {
        if let DemoRequest::Webhook {
            event,
            delivery_id,
            body,
            ..
        } = r
        {
            let response = webhooks
                .http
                .post(format!("{}/github/webhook", webhooks.gateway_url))
                .header("content-type", "application/json")
                .header("x-github-event", event)
                .header("x-github-delivery", delivery_id)
                .header("x-hub-signature-256", sign_sha256(webhooks.secret(), &body))
                .body(body)
                .send()
                .await
                .expect("gateway");
            assert!(response.status().is_success());
        }
    }
    let expected_rows = day.commits.len();
    let expected_cells = day.main_grid().cells;
    let expected_done = day.main_grid().done;
    let done_of = |g: &Value| {
        grid_cells(g)
            .iter()
            .flat_map(|r| r.2.iter())
            .filter(|c| c["conclusion"] == "success" || c["conclusion"] == "failure")
            .count()
    };
    let cells_of = |g: &Value| {
        grid_cells(g)
            .iter()
            .map(|r| r.2.iter().filter(|c| !c.is_null()).count())
            .sum::<usize>()
    };
    let from_webhooks = webhooks
        .wait_for(&grid_path, move |g| {
            grid_cells(g).len() == expected_rows
                && cells_of(g) == expected_cells
                && done_of(g) == expected_done
        })
        .await;

    // The backfill, into a stack of its own.
    let (gh, url) = stand_in(day.clone()).await;
    let mut config = test_config();
    config.logs.github_api_url = url;
    config.logs.github_token = Secret::new(TOKEN);
    config.logs.fetch_attempts = 2;
    config.logs.rate_limit_max_wait_ms = 100;
    config.backfill.checkpoint_dir = tempdir("backfill");
    config.gateway.admin_tokens = vec![Secret::new("admin-token")];
    let backfilled = Stack::start_with(config.clone()).await;
    let github = GitHub::from_config(&config.logs, CancellationToken::new()).expect("client");
    let appender = Appender::new(&config.kafka).expect("appender");
    let checkpoint = config.backfill.checkpoint(&repo);
    let backfill = Backfill {
        github: &github,
        appender: Some(&appender),
        checkpoint: Some(checkpoint.clone()),
        min_rate_limit_remaining: 5,
        max_wait: Duration::from_millis(200),
        shutdown: CancellationToken::new(),
    };
    let mut plan = Plan::new(&repo, (day.options.anchor_ms - 2 * 86_400_000) / 1000);
    plan.per_page = PER_PAGE;
    plan.max_listed = 25;
    let mut quiet = |_: &hudstream_reconcile::backfill::Progress| {};

    // A dry run asks, counts, appends nothing and keeps no checkpoint.
    plan.dry_run = true;
    let dry = backfill.run(&plan, &mut quiet).await.expect("dry run");
    assert!(dry.stopped.is_none(), "{dry}");
    let objects = day.commits.len() + dry.runs as usize + dry.jobs as usize + day.api_pulls().len();
    assert_eq!(dry.appended as usize, objects, "{dry}");
    assert!(
        dry.runs >= 3 * PER_PAGE as u64,
        "several pages of runs: {dry}"
    );
    assert!(!checkpoint.exists());
    plan.dry_run = false;

    // GitHub's budget runs out half way: the backfill stops and says so.
    gh.budget.store(dry.requests as i64 / 2, Ordering::SeqCst);
    let first = backfill
        .run(&plan, &mut quiet)
        .await
        .expect("first session");
    let why = first.stopped.clone().expect("stopped by the rate limit");
    assert!(
        why.contains("rate limit") || why.contains("requests are left"),
        "{why}"
    );
    assert!(
        first.appended > 0 && (first.appended as usize) < objects,
        "{first}"
    );
    assert!(checkpoint.exists());

    // Run again (a new process: a new client) with the budget renewed: it finishes,
    // appending only what was missing.
    gh.budget.store(i64::MAX / 2, Ordering::SeqCst);
    let github = GitHub::from_config(&config.logs, CancellationToken::new()).expect("client");
    let backfill = Backfill {
        github: &github,
        ..backfill
    };
    let second = backfill
        .run(&plan, &mut quiet)
        .await
        .expect("second session");
    assert!(second.stopped.is_none(), "{second}");
    assert!(second.skipped > 0, "{second}");
    assert_eq!(
        (first.appended + second.appended) as usize,
        objects,
        "{first} / {second}"
    );
    let ids = delivery_ids(
        &backfilled,
        [
            (GITHUB_PUSH, day.commits.len()),
            (GITHUB_WORKFLOW_RUN, dry.runs as usize),
            (GITHUB_WORKFLOW_JOB, dry.jobs as usize),
            (GITHUB_PULL_REQUEST, day.api_pulls().len()),
        ],
    )
    .await;
    // Every object once: as many records as objects were appended over both sessions, and
    // the ids in the topics are all different.
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), objects, "a delivery appended twice");
    assert!(ids.iter().all(|id| id.starts_with("backfill-")));

    // A third run finds nothing new.
    let third = backfill
        .run(&plan, &mut quiet)
        .await
        .expect("third session");
    assert_eq!(third.appended, 0, "{third}");

    // The grid the backfill built is the grid the webhooks built.
    let from_backfill = backfilled
        .wait_for(&grid_path, move |g| {
            grid_cells(g).len() == expected_rows
                && cells_of(g) == expected_cells
                && done_of(g) == expected_done
        })
        .await;
    assert_eq!(from_backfill["job_names"], from_webhooks["job_names"]);
    for (b, w) in grid_cells(&from_backfill)
        .iter()
        .zip(grid_cells(&from_webhooks).iter())
    {
        assert_eq!(b, w, "the row of {}", w.0);
    }
    for (b, w) in from_backfill["commits"]
        .as_array()
        .unwrap()
        .iter()
        .zip(from_webhooks["commits"].as_array().unwrap())
    {
        for field in [
            "sha",
            "title",
            "author",
            "author_username",
            "timestamp",
            "url",
            "pr_number",
        ] {
            assert_eq!(b[field], w[field], "{field} of {}", w["sha"]);
        }
    }

    // Staleness you can see: a backfilled job says it was written by the API (the backfill)
    // and never by a webhook; the same job delivered as webhooks says the opposite.
    let job = day
        .jobs
        .iter()
        .find(|j| j.head_sha == day.commits[0].sha)
        .expect("a job");
    let path = format!("/api/jobs/{repo}/{}", job.id);
    let backfilled_job = backfilled
        .wait_for(&path, |j| {
            j["replication"]["job_via_api_at"].is_string()
                && j["replication"]["run_via_api_at"].is_string()
        })
        .await;
    assert_eq!(
        backfilled_job["replication"]["job_via_api_origin"],
        "backfill"
    );
    assert!(backfilled_job["replication"]["job_via_webhook_at"].is_null());
    let webhook_job = webhooks
        .wait_for(&path, |j| {
            j["replication"]["job_via_webhook_at"].is_string()
        })
        .await;
    assert!(webhook_job["replication"]["job_via_api_at"].is_null());
    check_page(
        &backfilled,
        "backfilled-job",
        &format!("/{repo}/job/{}", job.id),
        &["Last updated by a webhook never", "(backfill)"],
    )
    .await;

    // The same through the gateway's POST /admin/backfill (the checkpoint is shared: nothing
    // is left to append), with its refusals.
    let admin = |token: Option<&str>, body: Value| {
        let mut request = backfilled
            .http
            .post(format!("{}/admin/backfill", backfilled.gateway_url))
            .json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request.send()
    };
    let disabled = webhooks
        .http
        .post(format!("{}/admin/backfill", webhooks.gateway_url))
        .bearer_auth("admin-token")
        .json(&json!({"repository": repo}))
        .send()
        .await
        .expect("gateway");
    assert_eq!(
        disabled.status(),
        404,
        "no admin token configured: disabled"
    );
    assert_eq!(
        admin(None, json!({"repository": repo}))
            .await
            .expect("gateway")
            .status(),
        401
    );
    assert_eq!(
        admin(Some("wrong"), json!({"repository": repo}))
            .await
            .expect("gateway")
            .status(),
        401
    );
    for bad in [
        json!({"repository": "no-slash"}),
        json!({"repository": repo, "since": "last week"}),
        json!({"repo": repo}),
    ] {
        let response = admin(Some("admin-token"), bad.clone())
            .await
            .expect("gateway");
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["code"], "bad_request", "{body}");
    }
    let started = admin(
        Some("admin-token"),
        json!({"repository": repo, "since": "2d"}),
    )
    .await
    .expect("gateway");
    assert_eq!(started.status(), 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let finished = loop {
        let list: Value = backfilled
            .http
            .get(format!("{}/admin/backfill", backfilled.gateway_url))
            .bearer_auth("admin-token")
            .send()
            .await
            .expect("gateway")
            .json()
            .await
            .expect("json");
        if list[0]["state"] != "running" {
            break list[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished["state"], "done", "{finished}");
    assert_eq!(finished["progress"]["appended"], 0, "{finished}");
    assert!(
        finished["progress"]["skipped"].as_u64() > Some(0),
        "{finished}"
    );
    webhooks.stop().await;
    backfilled.stop().await;
}
