//! The hot window model's rules, on records in every order (unit and property tests).
use super::*;
use proptest::prelude::*;

const REPO: &str = "o/r";

fn limits(commits: usize) -> Limits {
    Limits {
        commits,
        pending_jobs: 1000,
    }
}

fn main() -> Branch {
    Branch {
        repository: REPO.into(),
        git_ref: "refs/heads/main".into(),
    }
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

fn commit(n: u32, version: u64, pushed_at: u32) -> CommitRecord {
    CommitRecord {
        repository_full_name: REPO.into(),
        git_ref: "refs/heads/main".into(),
        sha: sha(n),
        version,
        branch: "main".into(),
        is_head: false,
        is_distinct: true,
        message: format!("commit {n} (#{n})"),
        timestamp: DateTime(pushed_at - 10),
        pushed_at: DateTime(pushed_at),
        author_name: "a".into(),
        author_email: "a@x".into(),
        author_username: "a".into(),
        committer_name: "a".into(),
        committer_email: "a@x".into(),
        url: String::new(),
    }
}

fn job(id: i64, on: u32, version: u64, conclusion: &str) -> WorkflowJobRow {
    WorkflowJobRow {
        repository_full_name: REPO.into(),
        id,
        version,
        run_id: 1,
        run_attempt: 1,
        node_id: String::new(),
        head_sha: sha(on),
        head_branch: "main".into(),
        workflow_name: "pull".into(),
        name: format!("test ({})", id % 3),
        status: if conclusion.is_empty() {
            "in_progress"
        } else {
            "completed"
        }
        .into(),
        conclusion: conclusion.into(),
        created_at: DateTime(1),
        started_at: DateTime(2),
        completed_at: DateTime(3),
        queue_time_s: None,
        duration_s: Some(id as f64),
        labels: vec![],
        runner_id: 0,
        runner_name: String::new(),
        runner_group_id: 0,
        runner_group_name: String::new(),
        steps_number: vec![],
        steps_name: vec![],
        steps_status: vec![],
        steps_conclusion: vec![],
        steps_started_at: vec![],
        steps_completed_at: vec![],
        url: String::new(),
        html_url: format!("https://x/{id}"),
        run_url: String::new(),
        check_run_url: String::new(),
    }
}

fn loaded(model: &mut Model) {
    model.load_issues(REPO, vec![]);
}

fn shas_of(page: &HotPage) -> Vec<String> {
    page.rows.iter().map(|(c, _)| c.sha.clone()).collect()
}

#[test]
fn a_window_is_the_newest_commits_in_the_grids_order_and_older_pages_miss() {
    let mut model = Model::new(&["main".into()], limits(3));
    loaded(&mut model);
    let mut wanted = Wanted::default();
    // Out of order: pushed at 50, 10, 40, 30, 20.
    for (n, t) in [(5, 50), (1, 10), (4, 40), (3, 30), (2, 20)] {
        model.apply_commit(commit(n, 1, t), &mut wanted);
    }
    // The branch was new: the window is complete until it overflows; it held 1 while
    // 5, 4, 3 pushed it out, and 2 sorts after the oldest held. Loading until their jobs
    // were read from ClickHouse.
    assert_eq!(model.page_built(&main(), 0, 2).err(), Some(Miss::Loading));
    let entered: Vec<String> = wanted.commits.iter().map(|(_, s)| s.clone()).collect();
    model.load_jobs(REPO, vec![], &entered);
    let page = model
        .page_built(&main(), 0, 2)
        .map_err(|m| m.label())
        .unwrap();
    assert_eq!(shas_of(&page), vec![sha(5), sha(4)]);
    assert!(page.has_more);
    // A page needs one commit past its end (to know whether more follow): past the three
    // held, with the window no longer complete, it is ClickHouse's.
    assert_eq!(model.page_built(&main(), 1, 2).err(), Some(Miss::Older));
    assert_eq!(
        model
            .page(
                &Branch {
                    git_ref: "refs/heads/other".into(),
                    ..main()
                },
                0,
                1,
                None
            )
            .err(),
        Some(Miss::Branch)
    );
}

#[test]
fn a_commit_entering_from_the_log_is_loading_until_its_jobs_are_read() {
    let mut model = Model::new(&["main".into()], limits(10));
    loaded(&mut model);
    let mut wanted = Wanted::default();
    model.apply_job(job(7, 1, 1, "")); // before its push: pending
    model.apply_commit(commit(1, 1, 100), &mut wanted);
    assert_eq!(wanted.commits, vec![(REPO.to_string(), sha(1))]);
    assert_eq!(model.page_built(&main(), 0, 50).err(), Some(Miss::Loading));
    model.load_jobs(REPO, vec![], &[sha(1)]);
    let page = model
        .page_built(&main(), 0, 50)
        .map_err(|m| m.label())
        .unwrap();
    let cells = &page.rows[0].1;
    assert_eq!(cells.len(), 1, "the pending job moved in");
    assert_eq!(cells["pull / test (1)"].conclusion, "pending");
}

#[test]
fn failing_tests_are_kept_only_once_clickhouse_has_what_the_window_saw() {
    let mut model = Model::new(&["main".into()], limits(10));
    loaded(&mut model);
    let mut wanted = Wanted::default();
    model.apply_commit(commit(1, 1, 100), &mut wanted);
    model.load_jobs(REPO, vec![], &[sha(1)]);
    model.apply_job(job(7, 1, 1, "failure"));
    let answer = FailedTestsRow {
        job_id: 7,
        failed_tests: 2,
        first_failed_test: "a::b".into(),
    };
    // A report of job 7 at offset 41 that ClickHouse has not written yet.
    model.apply_test_record(REPO, 7, TestTopic::Reports, 0, 41);
    let page = model
        .page_built(&main(), 0, 50)
        .map_err(|m| m.label())
        .unwrap();
    let (id, generation) = page.failed_unknown[0];
    assert_eq!(id, 7);
    model.keep_failed_tests(REPO, 7, generation, None);
    let page = model
        .page_built(&main(), 0, 50)
        .map_err(|m| m.label())
        .unwrap();
    assert_eq!(
        page.failed_unknown.len(),
        1,
        "not kept: ClickHouse was behind"
    );
    // The writer passes offset 41: the next answer is kept.
    model.set_written(TestTopic::Reports, &BTreeMap::from([(0, 42)]));
    let asked = model
        .page_built(&main(), 0, 50)
        .map_err(|m| m.label())
        .unwrap();
    model.keep_failed_tests(REPO, 7, generation, Some(answer.clone()));
    let page = model
        .page_built(&main(), 0, 50)
        .map_err(|m| m.label())
        .unwrap();
    assert!(page.failed_unknown.is_empty());
    // What makes the ETag is the same whether the answer was asked for or kept: a page
    // revalidated after memory kept its answer is still not modified.
    assert_eq!(asked.digest, page.digest);
    assert_eq!(
        asked
            .known_answers
            .wrapping_add(answer_digest(Some(&answer))),
        page.known_answers
    );
    let cell = &page.rows[0].1["pull / test (1)"];
    assert_eq!(
        (cell.failed_test.as_deref(), cell.failed_tests),
        (Some("a::b"), Some(2))
    );
    // Another record of the job's tests forgets it.
    model.apply_test_record(REPO, 7, TestTopic::Cases, 1, 5);
    let page = model
        .page_built(&main(), 0, 50)
        .map_err(|m| m.label())
        .unwrap();
    assert_eq!(page.failed_unknown.len(), 1);
}

#[test]
fn an_open_unstable_issue_counts_at_its_newest_version() {
    let mut model = Model::new(&["main".into()], limits(10));
    let issue = |version: u64, title: &str, state: &str| LoadedIssue {
        number: 9,
        version,
        title: title.into(),
        state: state.into(),
        deleted: false,
        html_url: String::new(),
    };
    model.load_issues(REPO, vec![issue(2, "UNSTABLE pull / test", "open")]);
    let mut wanted = Wanted::default();
    model.apply_commit(commit(1, 1, 100), &mut wanted);
    model.load_jobs(REPO, vec![], &[sha(1)]);
    let unstable = |m: &Model| {
        m.page_built(&main(), 0, 1)
            .map_err(|m| m.label())
            .unwrap()
            .unstable
    };
    assert_eq!(unstable(&model).len(), 1);
    // An older version read later changes nothing; a newer closed one ends it.
    model.load_issues(REPO, vec![issue(1, "something else", "open")]);
    assert_eq!(unstable(&model).len(), 1);
    model.load_issues(REPO, vec![issue(3, "UNSTABLE pull / test", "closed")]);
    assert!(unstable(&model).is_empty());
}

/// What a page shows, comparable: the page as the API sends it, and its digest.
type Shown = (serde_json::Value, u64);

fn page_of(model: &Model) -> Result<Shown, Miss> {
    let page = model.page_built(&main(), 0, 50)?;
    let grid = crate::hud::assemble_cells(
        REPO,
        "main",
        crate::params::Paging {
            page: 1,
            per_page: 50,
        },
        page.rows,
        page.has_more,
        page.unstable,
    );
    let json = serde_json::to_value(&grid).map_err(|_| Miss::Branch)?;
    Ok((json, page.digest))
}

#[derive(Debug, Clone)]
enum Record {
    Commit(u32, u64, u32),
    Job(i64, u32, u64, &'static str),
    Verdict(i64, u64, &'static str),
}

proptest! {
    /// The log delivers late, twice and out of order: the window ends the same, whether its
    /// pages were made along the way (cells kept and merged again) or only at the end.
    #[test]
    fn the_window_does_not_depend_on_the_order_of_the_records(
        records in prop::collection::vec(
            prop_oneof![
                (1u32..6, 1u64..3, 1u32..50).prop_map(|(n, v, t)| Record::Commit(n, v, t * 10 + n)),
                (1i64..12, 1u32..6, 1u64..4, prop::sample::select(vec!["", "success", "failure"]))
                    .prop_map(|(id, on, v, c)| Record::Job(id, on, v, c)),
                (1i64..12, 1u64..3, prop::sample::select(vec!["rule a", "rule b"]))
                    .prop_map(|(id, v, r)| Record::Verdict(id, v, r)),
            ],
            1..40,
        ),
        seed in any::<u64>(),
    ) {
        // A job's content follows from its version (equal versions, equal content), and a
        // job never changes commit.
        let normalize = |r: &Record| match r {
            Record::Commit(n, v, _) => Record::Commit(*n, *v, 10 * (*n) * (*v as u32)),
            Record::Job(id, _, v, _) => Record::Job(*id, (*id % 5 + 1) as u32, *v, ["", "success", "failure", "failure"][*v as usize]),
            Record::Verdict(id, v, _) => Record::Verdict(*id, *v, ["", "rule a", "rule b"][*v as usize]),
        };
        let records: Vec<Record> = records.iter().map(normalize).collect();
        let mut shuffled = records.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        // `look` asks for the page after every record, as requests do while the log flows: the
        // cells it keeps must be merged again whenever what they are made of changes.
        let build = |records: &[Record], look: bool| {
            let mut model = Model::new(&["main".into()], limits(100));
            loaded(&mut model);
            let mut wanted = Wanted::default();
            for r in records {
                match r {
                    Record::Commit(n, v, t) => model.apply_commit(commit(*n, *v, *t), &mut wanted),
                    Record::Job(id, on, v, c) => model.apply_job(job(*id, *on, *v, c)),
                    Record::Verdict(id, v, rule) => model.apply_verdict(JobClassificationRow {
                        repository_full_name: REPO.into(),
                        job_id: *id,
                        version: *v,
                        head_sha: String::new(),
                        outcome: "matched".into(),
                        rule: rule.to_string(),
                        line: String::new(),
                        line_number: 0,
                        captures: vec![],
                        context: vec![],
                        ruleset_hash: String::new(),
                        engine_version: String::new(),
                        log_location: String::new(),
                        log_partial: false,
                        log_bytes: 0,
                        classified_at: DateTime(0),
                        signature: String::new(),
                        pattern: String::new(),
                    }),
                }
                if look {
                    let entered: Vec<String> =
                        wanted.commits.drain(..).map(|(_, s)| s).collect();
                    model.load_jobs(REPO, vec![], &entered);
                    let _ = page_of(&model);
                }
            }
            let entered: Vec<String> = wanted.commits.iter().map(|(_, s)| s.clone()).collect();
            model.load_jobs(REPO, vec![], &entered);
            model
        };
        let (a, b) = (build(&records, true), build(&shuffled, false));
        prop_assert_eq!(page_of(&a), page_of(&b));
    }
}
