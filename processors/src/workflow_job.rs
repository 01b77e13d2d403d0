//! `github.workflow_job` → `hud.workflow_job.v1`: one normalized [`WorkflowJob`] per delivery.
//!
//! The record's `version` is computed from its content alone, so whichever order GitHub's
//! deliveries arrive in (late, twice, shuffled), "highest version wins" picks the same state:
//!
//! ```text
//! bit 63      0 (versions are non-negative i64 / UInt64)
//! bits 60-62  status rank: queued 1 < waiting 2 < in_progress 3 < completed 4 (others 0)
//! bits 28-59  latest timestamp in the record, Unix seconds (created/started/completed/steps)
//! bits 20-27  number of completed steps (saturating at 255)
//! bits 0-19   first 20 bits of SHA-256 over the rest of the record: equal versions ⇒ equal
//!             content, except with ~1e-6 probability for two same-moment variants of one job
//! ```

use serde::Deserialize;

use hudstream_schemas::topics::GITHUB_WORKFLOW_JOB;
use hudstream_schemas::workflow_job::{WorkflowJob, WorkflowStep};

use crate::timestamp::{parse_millis, BadTimestamp};

/// Why a `workflow_job` delivery could not be normalized. The text is the dead-letter reason.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not a workflow_job delivery: {0}")]
    Shape(String),
    #[error("no repository: neither repository.full_name nor a /repos/OWNER/REPO/ url")]
    NoRepository,
    #[error("workflow_job has neither created_at nor started_at")]
    NoCreatedAt,
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

#[derive(Deserialize)]
struct Delivery {
    workflow_job: RawJob,
    repository: Option<RawRepository>,
}

#[derive(Deserialize)]
struct RawRepository {
    full_name: Option<String>,
}

#[derive(Deserialize)]
struct RawJob {
    id: i64,
    run_id: i64,
    run_attempt: Option<i64>,
    node_id: Option<String>,
    head_sha: Option<String>,
    head_branch: Option<String>,
    workflow_name: Option<String>,
    name: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    created_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    runner_id: Option<i64>,
    runner_name: Option<String>,
    runner_group_id: Option<i64>,
    runner_group_name: Option<String>,
    #[serde(default)]
    steps: Option<Vec<RawStep>>,
    url: Option<String>,
    html_url: Option<String>,
    run_url: Option<String>,
    check_run_url: Option<String>,
}

#[derive(Deserialize)]
struct RawStep {
    number: Option<i64>,
    name: Option<String>,
    status: Option<String>,
    conclusion: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
}

fn repo_from_url(url: &str) -> Option<String> {
    let rest = url.split("/repos/").nth(1)?;
    let mut parts = rest.split('/');
    let (owner, repo) = (parts.next()?, parts.next()?);
    (!owner.is_empty() && !repo.is_empty()).then(|| format!("{owner}/{repo}"))
}

/// Parses a delivery into the fields the processor reads and nothing more: the typed-parse
/// floor that `hudstream bench` compares [`normalize`] with.
pub fn parse(payload: &[u8]) -> Result<(), NormalizeError> {
    serde_json::from_slice::<Delivery>(payload)
        .map(|_| ())
        .map_err(|e| NormalizeError::Shape(e.to_string()))
}

/// Normalizes one raw `workflow_job` delivery body. Pure: same bytes, same job.
pub fn normalize(payload: &[u8]) -> Result<WorkflowJob, NormalizeError> {
    let delivery: Delivery =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape(e.to_string()))?;
    let raw = delivery.workflow_job;
    let repository_full_name = delivery
        .repository
        .and_then(|r| r.full_name)
        .filter(|n| n.contains('/'))
        .or_else(|| raw.url.as_deref().and_then(repo_from_url))
        .ok_or(NormalizeError::NoRepository)?;

    let status = raw.status.unwrap_or_default();
    let started_at = parse_millis("workflow_job.started_at", raw.started_at.as_deref())?;
    let completed_at = parse_millis("workflow_job.completed_at", raw.completed_at.as_deref())?;
    let created_at = parse_millis("workflow_job.created_at", raw.created_at.as_deref())?
        .or(started_at)
        .ok_or(NormalizeError::NoCreatedAt)?;
    // GitHub fills started_at with created_at while a job is still queued, so a queue time only
    // means something once a runner has the job.
    let has_runner = matches!(status.as_str(), "in_progress" | "completed");
    let queue_time_s = match (has_runner, started_at) {
        (true, Some(s)) => Some(((s - created_at).max(0)) as f64 / 1000.0),
        _ => None,
    };
    let duration_s = match (status.as_str(), started_at, completed_at) {
        ("completed", Some(s), Some(c)) => Some(((c - s).max(0)) as f64 / 1000.0),
        _ => None,
    };
    let mut steps = Vec::new();
    for (i, s) in raw.steps.unwrap_or_default().into_iter().enumerate() {
        steps.push(WorkflowStep {
            number: s.number.unwrap_or(i as i64 + 1),
            name: s.name.unwrap_or_default(),
            status: s.status.unwrap_or_default(),
            conclusion: s.conclusion.unwrap_or_default(),
            started_at: parse_millis(
                &format!("workflow_job.steps[{i}].started_at"),
                s.started_at.as_deref(),
            )?,
            completed_at: parse_millis(
                &format!("workflow_job.steps[{i}].completed_at"),
                s.completed_at.as_deref(),
            )?,
        });
    }
    let mut job = WorkflowJob {
        version: 0,
        repository_full_name,
        id: raw.id,
        run_id: raw.run_id,
        run_attempt: raw.run_attempt.unwrap_or(1),
        node_id: raw.node_id.unwrap_or_default(),
        head_sha: raw.head_sha.unwrap_or_default(),
        head_branch: raw.head_branch.unwrap_or_default(),
        workflow_name: raw.workflow_name.unwrap_or_default(),
        name: raw.name.unwrap_or_default(),
        status,
        conclusion: raw.conclusion.unwrap_or_default(),
        created_at,
        started_at,
        completed_at,
        queue_time_s,
        duration_s,
        labels: raw.labels.unwrap_or_default(),
        runner_id: raw.runner_id,
        runner_name: raw.runner_name.unwrap_or_default(),
        runner_group_id: raw.runner_group_id,
        runner_group_name: raw.runner_group_name.unwrap_or_default(),
        steps,
        url: raw.url.unwrap_or_default(),
        html_url: raw.html_url.unwrap_or_default(),
        run_url: raw.run_url.unwrap_or_default(),
        check_run_url: raw.check_run_url.unwrap_or_default(),
    };
    job.version = version(&job);
    Ok(job)
}

/// The rank of a job status in its lifecycle; unknown statuses rank lowest.
pub fn status_rank(status: &str) -> i64 {
    match status {
        "queued" => 1,
        "waiting" => 2,
        "in_progress" => 3,
        "completed" => 4,
        _ => 0,
    }
}

/// The content-derived version of a job (see the module docs for the layout).
pub fn version(job: &WorkflowJob) -> i64 {
    let latest_ms = [Some(job.created_at), job.started_at, job.completed_at]
        .into_iter()
        .chain(
            job.steps
                .iter()
                .flat_map(|s| [s.started_at, s.completed_at]),
        )
        .flatten()
        .max();
    let completed_steps = job.steps.iter().filter(|s| s.status == "completed").count() as u64;
    let mut unversioned = job.clone();
    unversioned.version = 0;
    hudstream_schemas::version::pack(
        &[
            (status_rank(&job.status) as u64, 3),
            (hudstream_schemas::version::seconds(latest_ms), 32),
            (completed_steps, 8),
        ],
        &unversioned,
    )
}

crate::processor! {
    /// The `process.workflow_job` stage.
    pub struct WorkflowJobProcessor {
        stage: "process.workflow_job",
        input: GITHUB_WORKFLOW_JOB,
        derive: normalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_runtime::worker::{Action, InRecord, Processor};
    use hudstream_schemas::headers as h;
    use hudstream_schemas::topics::HUD_WORKFLOW_JOB_V1;
    use hudstream_schemas::wire::{Codec, RecordType};
    use proptest::prelude::*;
    use rand::seq::SliceRandom;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/github/workflow_job"
    );

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{FIXTURES}/{name}");
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
    }

    static COMPLETED: std::sync::LazyLock<WorkflowJob> = std::sync::LazyLock::new(|| {
        normalize(&fixture("completed.success.with-organization.payload.json")).expect("normalizes")
    });

    fn lifecycle() -> Vec<Vec<u8>> {
        [
            "queued.payload.json",
            "in_progress.payload.json",
            "completed.success.with-organization.payload.json",
        ]
        .iter()
        .map(|f| fixture(f))
        .collect()
    }

    #[test]
    fn normalizes_the_real_completed_fixture() {
        let job = normalize(&fixture("completed.success.with-organization.payload.json"))
            .expect("normalizes");
        assert_eq!(job.repository_full_name, "Codertocat/Hello-World");
        assert_eq!(job.id, 289782451);
        assert_eq!(job.run_id, 2202229078);
        assert_eq!(job.status, "completed");
        assert_eq!(job.conclusion, "success");
        assert_eq!(job.labels, vec!["ubuntu-latest"]);
        assert_eq!(job.runner_name, "GitHub Actions 5");
        assert_eq!(job.runner_group_id, Some(2));
        assert_eq!(job.steps.len(), 8);
        assert_eq!(job.steps[6].number, 12);
        assert_eq!(job.queue_time_s, Some(60.0));
        assert_eq!(job.duration_s, Some(198.0));
        assert_eq!(job.key(), "Codertocat/Hello-World/289782451");
    }

    #[test]
    fn a_queued_job_has_no_queue_time_yet() {
        let job = normalize(&fixture("queued.payload.json")).expect("normalizes");
        assert_eq!(job.status, "queued");
        assert_eq!(job.queue_time_s, None);
        assert_eq!(job.duration_s, None);
        assert_eq!(job.conclusion, "");
    }

    #[test]
    fn every_real_workflow_job_fixture_normalizes() {
        for entry in std::fs::read_dir(FIXTURES)
            .expect("fixtures dir")
            .chain(std::fs::read_dir(format!("{FIXTURES}/pytorch-test-infra")).expect("dir"))
        {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).expect("read");
            // Probot-event files wrap the body as {id, name, payload}.
            let value: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let body = value
                .get("payload")
                .map(|p| serde_json::to_vec(p).expect("re-encode"))
                .unwrap_or(bytes);
            let job = normalize(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(job.version > 0);
        }
    }

    #[test]
    fn later_lifecycle_states_have_higher_versions() {
        let versions: Vec<i64> = lifecycle()
            .iter()
            .map(|b| normalize(b).expect("normalizes").version)
            .collect();
        assert!(
            versions[0] < versions[1] && versions[1] < versions[2],
            "{versions:?}"
        );
    }

    #[test]
    fn the_winner_is_the_same_in_every_delivery_order() {
        let jobs: Vec<WorkflowJob> = lifecycle()
            .iter()
            .map(|b| normalize(b).expect("normalizes"))
            .collect();
        let mut rng = rand::thread_rng();
        for _ in 0..50 {
            let mut shuffled = jobs.clone();
            shuffled.shuffle(&mut rng);
            // Deliver some twice, as GitHub does.
            shuffled.push(shuffled[0].clone());
            let winner = shuffled
                .iter()
                .max_by_key(|j| j.version)
                .expect("non-empty");
            assert_eq!(winner.status, "completed");
            assert_eq!(winner, &jobs[2]);
        }
    }

    #[test]
    fn bad_records_are_dead_lettered_with_the_reason() {
        let p = WorkflowJobProcessor;
        let record = |payload: &[u8]| InRecord {
            topic: GITHUB_WORKFLOW_JOB.into(),
            partition: 0,
            offset: 7,
            key: None,
            payload: Some(payload.to_vec()),
            headers: vec![],
            timestamp_ms: None,
        };
        let cases: [(&[u8], &str); 4] = [
            (b"not json", "not a workflow_job delivery"),
            (br#"{"action": "queued"}"#, "missing field `workflow_job`"),
            (br#"{"workflow_job": {"id": 1, "run_id": 2, "created_at": "soon"}, "repository": {"full_name": "o/r"}}"#, "created_at is not an RFC 3339"),
            (br#"{"workflow_job": {"id": 1, "run_id": 2, "created_at": "2024-01-01T00:00:00Z"}}"#, "no repository"),
        ];
        for (payload, reason) in cases {
            match p.process(&record(payload)).as_slice() {
                [Action::DeadLetter { reason: r }] => {
                    assert!(r.contains(reason), "{r:?} should mention {reason:?}")
                }
                other => panic!("expected a dead letter, got {other:?}"),
            }
        }
    }

    #[test]
    fn publishes_an_avro_record_keyed_by_job() {
        let p = WorkflowJobProcessor;
        let actions = p.process(&InRecord {
            topic: GITHUB_WORKFLOW_JOB.into(),
            partition: 3,
            offset: 9,
            key: None,
            payload: Some(fixture("in_progress.payload.json")),
            headers: vec![(h::GITHUB_DELIVERY.into(), b"abc".to_vec())],
            timestamp_ms: None,
        });
        let [Action::Publish(out)] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(out.topic, HUD_WORKFLOW_JOB_V1);
        assert_eq!(out.key, b"Codertocat/Hello-World/289782451");
        let job = Codec::<WorkflowJob>::new()
            .expect("codec")
            .decode(&out.payload)
            .expect("decodes");
        assert_eq!(job.status, "in_progress");
        assert!(out
            .headers
            .contains(&(h::SOURCE.to_string(), b"github.workflow_job/3/9".to_vec())));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize(&bytes);
        }

        #[test]
        fn completed_outranks_any_earlier_state_whatever_the_timestamps(
            early in 0i64..4_000_000_000_000, late in 0i64..4_000_000_000_000, steps in 0usize..300
        ) {
            let base = COMPLETED.clone();
            let mut running = base.clone();
            running.status = "in_progress".into();
            running.created_at = late;
            running.steps = (0..steps).map(|i| WorkflowStep { number: i as i64, name: String::new(), status: "completed".into(), conclusion: String::new(), started_at: Some(late), completed_at: Some(late) }).collect();
            let mut done = base;
            done.created_at = early;
            done.started_at = None;
            done.completed_at = None;
            done.steps.clear();
            prop_assert!(version(&done) > version(&running));
            prop_assert!(version(&done) >= 0 && version(&running) >= 0);
        }
    }
}
