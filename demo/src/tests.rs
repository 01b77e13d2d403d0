use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use super::*;

fn shape() -> DayShape {
    let path = std::env::var("HUDSTREAM_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("reference/datasets/pytorch_jobs_2024-08-14.csv");
    DayShape::load(&path).expect("the real dataset")
}

const ANCHOR: i64 = 1_764_950_400_000; // 2025-12-05T16:00:00Z

fn day(seed: u64, anchor: i64) -> Day {
    let logs = (0..31).map(|i| format!("log{i}.txt")).collect();
    generate(&shape(), Options::demo(seed, anchor, logs, 50))
}

#[test]
fn the_same_seed_and_anchor_send_the_same_bytes() {
    assert_eq!(day(7, ANCHOR).requests(), day(7, ANCHOR).requests());
    assert_ne!(day(7, ANCHOR).requests(), day(8, ANCHOR).requests());
}

#[test]
fn a_later_anchor_moves_the_same_jobs_and_adds_none() {
    let ids = |d: &Day| d.jobs.iter().map(|j| j.id).collect::<BTreeSet<_>>();
    let (a, b) = (day(1, ANCHOR), day(1, ANCHOR + 86_400_000));
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(
        a.commits.iter().map(|c| &c.sha).collect::<Vec<_>>(),
        b.commits.iter().map(|c| &c.sha).collect::<Vec<_>>()
    );
}

#[test]
fn the_main_grid_is_busy_with_failures_flaky_cells_and_running_jobs() {
    let d = day(1, ANCHOR);
    let grid = d.main_grid();
    // ≥ 30 commits show ≥ 100 jobs (the newest are still being created).
    let busy = d
        .commits
        .iter()
        .filter(|c| {
            d.jobs
                .iter()
                .filter(|j| j.attempt == 1 && j.head_sha == c.sha && j.created_ms <= ANCHOR)
                .count()
                >= 100
        })
        .count();
    assert!(busy >= 30, "{busy} commits with ≥ 100 jobs");
    println!(
        "{grid:?}, {busy} busy commits, {} requests",
        d.requests().len()
    );
    assert!(grid.commits >= 30, "{grid:?}");
    assert!(grid.cells >= 30 * 100, "{grid:?}");
    assert!(grid.failed >= 30, "{grid:?}");
    assert!(grid.flaky >= 1, "{grid:?}");
    assert!(
        grid.done < grid.cells,
        "the newest commits are still running: {grid:?}"
    );
    // The failure mix follows the dataset's (3.7 %), within reason.
    let rate = grid.failed as f64 / grid.done as f64;
    assert!((0.01..0.10).contains(&rate), "failure rate {rate}");
    // Every finished failure has a log; one job breaks trunk for four commits in a row.
    assert!(d
        .jobs
        .iter()
        .filter(|j| j.failed && j.state(ANCHOR) == State::Completed)
        .all(|j| j.log.is_some()));
}

#[test]
fn pull_requests_have_several_heads_and_oot_results_from_two_backends() {
    let d = day(1, ANCHOR);
    assert_eq!(d.pulls.len(), 3);
    assert!(d.pulls.iter().all(|p| p.heads.len() >= 2));
    for p in &d.pulls {
        let backends: HashSet<&str> = d
            .oot
            .iter()
            .filter(|o| o.pr == p.number)
            .map(|o| o.backend)
            .collect();
        assert_eq!(backends.len(), 2, "PR {}", p.number);
        for h in &p.heads {
            assert!(d.jobs.iter().any(|j| j.head_sha == h.sha));
        }
    }
}

#[test]
fn every_webhook_is_one_the_real_processors_accept() {
    use hudstream_processors as p;
    let d = day(3, ANCHOR);
    let requests = d.requests();
    let mut kinds = std::collections::BTreeMap::new();
    for r in &requests {
        *kinds.entry(r.kind()).or_insert(0) += 1;
        match r {
            Request::Webhook { event, body, .. } => {
                let ok = match *event {
                    "push" => p::push::normalize(body)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    "pull_request" => p::pull_request::normalize(body)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    "workflow_run" => p::workflow_run::normalize(body)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    "workflow_job" => p::workflow_job::normalize(body)
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    other => Err(format!("unexpected event {other}")),
                };
                ok.unwrap_or_else(|e| panic!("{event}: {e}\n{}", String::from_utf8_lossy(body)));
            }
            Request::Oot { body } => {
                p::oot::normalize(body).unwrap_or_else(|e| panic!("oot: {e}"));
            }
            Request::Log { .. } | Request::TestReport { .. } => {}
        }
    }
    assert!(kinds["webhook"] > 10_000, "{kinds:?}");
    assert_eq!(kinds["test report"], 50);
    assert!(kinds["oot"] >= 12, "{kinds:?}");
    // Nothing after the anchor: a job's completed webhook is sent only if it has completed.
    let ids: HashSet<&String> = requests
        .iter()
        .filter_map(|r| match r {
            Request::Webhook { delivery_id, .. } => Some(delivery_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), kinds["webhook"], "delivery ids are unique");
}
