//! `github.workflow_run` → `hud.workflow_run.v1`: one normalized [`WorkflowRun`] per delivery.
//!
//! A re-run keeps the run id and raises `run_attempt`, so the version orders by attempt first:
//!
//! ```text
//! bits 52-62  run_attempt (11 bits)
//! bits 49-51  status rank: requested/pending 1 < queued 2 < waiting 3 < in_progress 4 < completed 5
//! bits 17-48  updated_at, Unix seconds
//! bits 0-16   content hash
//! ```

use serde::Deserialize;

use hudstream_schemas::topics::GITHUB_WORKFLOW_RUN;
use hudstream_schemas::workflow_run::WorkflowRun;

use crate::raw::{Login, Named};
use crate::timestamp::{parse_millis, BadTimestamp};
use hudstream_schemas::version::{pack, seconds};

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not a workflow_run delivery: {0}")]
    Shape(String),
    #[error("no repository: neither repository.full_name nor workflow_run.repository.full_name")]
    NoRepository,
    #[error("workflow_run has neither created_at nor run_started_at")]
    NoCreatedAt,
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

#[derive(Deserialize)]
struct Delivery {
    workflow_run: RawRun,
    repository: Option<Named>,
}

#[derive(Deserialize, Default)]
struct Person {
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize, Default)]
struct HeadCommit {
    message: Option<String>,
    timestamp: Option<String>,
    author: Option<Person>,
}

#[derive(Deserialize)]
struct Number {
    number: Option<i64>,
}

#[derive(Deserialize)]
struct RawRun {
    id: i64,
    run_attempt: Option<i64>,
    run_number: Option<i64>,
    workflow_id: Option<i64>,
    check_suite_id: Option<i64>,
    name: Option<String>,
    display_title: Option<String>,
    path: Option<String>,
    event: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    head_branch: Option<String>,
    head_sha: Option<String>,
    head_repository: Option<Named>,
    repository: Option<Named>,
    pull_requests: Option<Vec<Number>>,
    actor: Option<Login>,
    triggering_actor: Option<Login>,
    head_commit: Option<HeadCommit>,
    created_at: Option<String>,
    updated_at: Option<String>,
    run_started_at: Option<String>,
    url: Option<String>,
    html_url: Option<String>,
    jobs_url: Option<String>,
    logs_url: Option<String>,
    previous_attempt_url: Option<String>,
}

/// The rank of a run status in its lifecycle; unknown statuses rank lowest.
pub fn status_rank(status: &str) -> u64 {
    match status {
        "requested" | "pending" => 1,
        "queued" => 2,
        "waiting" => 3,
        "in_progress" => 4,
        "completed" => 5,
        _ => 0,
    }
}

/// Normalizes one raw `workflow_run` delivery body. Pure: same bytes, same run.
pub fn normalize(payload: &[u8]) -> Result<WorkflowRun, NormalizeError> {
    let delivery: Delivery =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape(e.to_string()))?;
    let raw = delivery.workflow_run;
    let repository_full_name = delivery
        .repository
        .and_then(|r| r.full_name)
        .or_else(|| raw.repository.as_ref().and_then(|r| r.full_name.clone()))
        .filter(|n| n.contains('/'))
        .ok_or(NormalizeError::NoRepository)?;
    let run_started_at =
        parse_millis("workflow_run.run_started_at", raw.run_started_at.as_deref())?;
    let created_at = parse_millis("workflow_run.created_at", raw.created_at.as_deref())?
        .or(run_started_at)
        .ok_or(NormalizeError::NoCreatedAt)?;
    let head_commit = raw.head_commit.unwrap_or_default();
    let author = head_commit.author.unwrap_or_default();
    let mut run = WorkflowRun {
        version: 0,
        repository_full_name,
        id: raw.id,
        run_attempt: raw.run_attempt.unwrap_or(1),
        run_number: raw.run_number.unwrap_or(0),
        workflow_id: raw.workflow_id.unwrap_or(0),
        check_suite_id: raw.check_suite_id.unwrap_or(0),
        name: raw.name.unwrap_or_default(),
        display_title: raw.display_title.unwrap_or_default(),
        path: raw.path.unwrap_or_default(),
        event: raw.event.unwrap_or_default(),
        status: raw.status.unwrap_or_default(),
        conclusion: raw.conclusion.unwrap_or_default(),
        head_branch: raw.head_branch.unwrap_or_default(),
        head_sha: raw.head_sha.unwrap_or_default(),
        head_repository_full_name: raw
            .head_repository
            .and_then(|r| r.full_name)
            .unwrap_or_default(),
        pull_request_numbers: raw
            .pull_requests
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.number)
            .collect(),
        actor_login: raw.actor.and_then(|a| a.login).unwrap_or_default(),
        triggering_actor_login: raw
            .triggering_actor
            .and_then(|a| a.login)
            .unwrap_or_default(),
        head_commit_message: head_commit.message.unwrap_or_default(),
        head_commit_timestamp: parse_millis(
            "workflow_run.head_commit.timestamp",
            head_commit.timestamp.as_deref(),
        )?,
        head_commit_author_name: author.name.unwrap_or_default(),
        head_commit_author_email: author.email.unwrap_or_default(),
        created_at,
        updated_at: parse_millis("workflow_run.updated_at", raw.updated_at.as_deref())?,
        run_started_at,
        url: raw.url.unwrap_or_default(),
        html_url: raw.html_url.unwrap_or_default(),
        jobs_url: raw.jobs_url.unwrap_or_default(),
        logs_url: raw.logs_url.unwrap_or_default(),
        previous_attempt_url: raw.previous_attempt_url.unwrap_or_default(),
    };
    run.version = version(&run);
    Ok(run)
}

/// The content-derived version of a run (see the module docs for the layout).
pub fn version(run: &WorkflowRun) -> i64 {
    let mut unversioned = run.clone();
    unversioned.version = 0;
    pack(
        &[
            (run.run_attempt.max(0) as u64, 11),
            (status_rank(&run.status), 3),
            (seconds(run.updated_at.or(Some(run.created_at))), 32),
        ],
        &unversioned,
    )
}

crate::processor! {
    /// The `process.workflow_run` stage.
    pub struct WorkflowRunProcessor {
        stage: "process.workflow_run",
        input: GITHUB_WORKFLOW_RUN,
        derive: normalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_ingest::fixtures;
    use hudstream_schemas::wire::RecordType;
    use proptest::prelude::*;

    // Loaded once: property tests run their bodies hundreds of times.
    static RUNS: std::sync::LazyLock<Vec<WorkflowRun>> = std::sync::LazyLock::new(|| {
        deliveries()
            .iter()
            .map(|d| normalize(&d.body).expect("normalizes"))
            .collect()
    });

    fn deliveries() -> Vec<&'static fixtures::Delivery> {
        fixtures::of_event("workflow_run")
    }

    fn by_name(name: &str) -> WorkflowRun {
        normalize(&fixtures::named(name).body).expect("normalizes")
    }

    #[test]
    fn every_real_workflow_run_fixture_normalizes() {
        let all = deliveries();
        assert_eq!(all.len(), 6);
        for d in all {
            let run = normalize(&d.body).unwrap_or_else(|e| panic!("{}: {e}", d.path.display()));
            assert!(run.version > 0 && run.id > 0, "{}", d.path.display());
        }
    }

    #[test]
    fn reads_the_fields_torchci_queries_use() {
        let run = by_name("workflow_run/pytorch-test-infra/workflow_run.completed.json");
        assert_eq!(run.id, 3206737417);
        assert_eq!(
            (run.status.as_str(), run.conclusion.as_str()),
            ("completed", "failure")
        );
        assert!(!run.head_sha.is_empty() && !run.name.is_empty() && !run.event.is_empty());
        let with_prs = by_name("workflow_run/completed.with-pull-requests.payload.json");
        assert_eq!(with_prs.pull_request_numbers.len(), 1);
    }

    #[test]
    fn a_completed_run_outranks_its_requested_delivery_and_the_later_update_wins() {
        let requested = by_name("workflow_run/requested.payload.json");
        let completed = by_name("workflow_run/completed.payload.json");
        let action_required = by_name("workflow_run/requested.with-conclusion.payload.json");
        assert!(completed.version > requested.version);
        // Both completed; the success was updated later than the action_required one.
        assert!(completed.version > action_required.version);
    }

    proptest! {
        #[test]
        fn any_order_with_duplicates_converges(order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(), dup in 0usize..6) {
            let runs: &[WorkflowRun] = &RUNS;
            let mut seq: Vec<&WorkflowRun> = order.iter().map(|&i| &runs[i]).collect();
            seq.push(&runs[dup]);
            // Per key, the highest version wins — the same one however the sequence is ordered.
            let mut winners: std::collections::BTreeMap<String, &WorkflowRun> = Default::default();
            for r in seq {
                let w = winners.entry(r.key()).or_insert(r);
                if r.version > w.version { *w = r; }
            }
            let mut expected: std::collections::BTreeMap<String, &WorkflowRun> = Default::default();
            for r in runs {
                let w = expected.entry(r.key()).or_insert(r);
                if r.version > w.version { *w = r; }
            }
            prop_assert_eq!(winners, expected);
        }

        #[test]
        fn a_later_attempt_always_wins(a in 1i64..2000, b in 1i64..2000) {
            prop_assume!(a != b);
            let base = by_name("workflow_run/completed.payload.json");
            let (mut x, mut y) = (base.clone(), base);
            x.run_attempt = a;
            x.status = "completed".into();
            y.run_attempt = b;
            y.status = "queued".into();
            prop_assert_eq!(version(&x) > version(&y), a > b);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize(&bytes);
        }
    }
}
