//! Unit tests of `trunk.rs`.
use super::*;

#[test]
fn consecutive_failures_among_the_commits_that_ran_the_job() {
    let pushes: Vec<(String, i64)> = (0..8)
        .rev()
        .map(|i| (format!("c{i}"), 1_700_000_000 + i * 600))
        .collect();
    let set = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<BTreeSet<_>>();
    // a's workflow: c0 pass, c1 fail, c2 not run, c3 fail, c4 fail, c5 pass, c6 fail, c7 fail.
    let a_ran = set(&["c0", "c1", "c3", "c4", "c5", "c6", "c7"]);
    let jobs = vec![
        JobRecord {
            job: "a".into(),
            failed: set(&["c1", "c3", "c4", "c6", "c7"]),
            ran: Some(&a_ran),
        },
        // b's workflow has no runs known: every commit counts; c4 passed.
        JobRecord {
            job: "b".into(),
            failed: set(&["c5", "c6", "c7"]),
            ran: None,
        },
    ];
    let runs = broken_runs(&jobs, &pushes, 3);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        (runs[0].job.as_str(), runs[0].commits, runs[0].ongoing),
        ("b", 3, true)
    );
    assert_eq!(
        (runs[1].job.as_str(), runs[1].commits, runs[1].ongoing),
        ("a", 3, false)
    );
    assert_eq!(
        (runs[1].first_sha.as_str(), runs[1].last_sha.as_str()),
        ("c1", "c4")
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    let p = Percentiles::of(vec![5, 1, 3, 2, 4]);
    assert_eq!(
        (p.count, p.p50, p.p90, p.max),
        (5, Some(3), Some(5), Some(5))
    );
    assert_eq!(Percentiles::of(vec![]).p50, None);
}
