//! Unit tests of `drci_rules.rs`.
use super::*;

fn failed(name: &str, captures: &[&str], context: &str, signature: &str) -> Job {
    Job {
        id: 1,
        name: name.into(),
        conclusion: "failure".into(),
        runner_name: "i-0abc".into(),
        verdict: Verdict {
            outcome: "matched".into(),
            rule: "pytest failure".into(),
            line: "FAILED test_x.py::T::test_y".into(),
            captures: captures.iter().map(|c| c.to_string()).collect(),
            context: if context.is_empty() {
                vec![]
            } else {
                vec![context.into()]
            },
            signature: signature.into(),
        },
        failed_attempts: vec![],
        run_attempt: 1,
        failing_tests: vec![],
    }
}

fn no_disabled(_: &str, _: &str, _: &str) -> Option<DisabledBy> {
    None
}

#[test]
fn shard_suffixes_are_stripped_as_torchci_does() {
    assert_eq!(
        shard_stripped("pull / linux-jammy / test (default, 1, 5, linux.2xlarge)"),
        "pull / linux-jammy / test (default)"
    );
    assert_eq!(
        shard_stripped("pull / linux / build"),
        "pull / linux / build"
    );
    assert_eq!(
        shard_stripped("trunk / test (distributed, 2, 3, linux.g4dn.12xlarge.nvidia.gpu)"),
        "trunk / test (distributed)"
    );
}

#[test]
fn the_checks_run_in_torchcis_order() {
    let similar = BTreeMap::new();
    let base_job = {
        let mut j = failed(
            "pull / linux / test (default, 2, 5, linux.2xlarge)",
            &["test_a.py::T::test_b"],
            "+ python test/run_test.py --shard 2 5",
            "",
        );
        j.id = 99;
        j
    };
    let base = vec![base_job];
    let known = Known {
        merge_base: Some(("3f2a1c0d", &base)),
        ..Known::new(&similar, &no_disabled)
    };
    let pr_job = failed(
        "pull / linux / test (default, 1, 5, linux.2xlarge)",
        &["test_a.py::T::test_b"],
        "+ python test/run_test.py --shard 1 5",
        "",
    );
    let d = classify(&pr_job, &known);
    assert_eq!(d.class, Class::BrokenTrunk, "{d:?}");
    assert!(d.reason.starts_with("same failure on merge base 3f2a1c0"));

    let other = failed(
        "pull / linux / test (default, 1, 5, linux.2xlarge)",
        &["test_c"],
        "",
        "",
    );
    assert_eq!(classify(&other, &known).class, Class::NewFailure);

    let lint = failed("Lint / lintrunner", &["test_a.py::T::test_b"], "", "");
    assert_eq!(classify(&lint, &known).class, Class::NewFailure);

    let mut pending = other.clone();
    pending.conclusion = String::new();
    assert_eq!(classify(&pending, &known).class, Class::Pending);

    let mut approval = other.clone();
    approval.conclusion = "action_required".into();
    assert_eq!(classify(&approval, &known).class, Class::AwaitingApproval);

    let mut rerun = other.clone();
    rerun.conclusion = "success".into();
    rerun.failed_attempts = vec![7];
    rerun.run_attempt = 2;
    assert_eq!(classify(&rerun, &known).class, Class::Flaky);

    let mut infra = other.clone();
    infra.runner_name.clear();
    infra.verdict = Verdict {
        outcome: "no_match".into(),
        ..Verdict::default()
    };
    assert_eq!(classify(&infra, &known).class, Class::Flaky);
}

#[test]
fn unstable_disabled_and_similar() {
    let mut similar = BTreeMap::new();
    similar.insert(
        "abcd".to_string(),
        SignatureSeen {
            jobs: 4,
            commits: 3,
            branches: vec!["main".into(), "feature".into()],
            ..SignatureSeen::default()
        },
    );
    let unstable = vec![UnstableIssue {
        number: 45,
        title: "UNSTABLE pull / rocm / test (default)".into(),
        html_url: String::new(),
    }];
    let disabled = |_: &str, class: &str, name: &str| {
        (class == "TestBar" && name == "test_foo").then(|| DisabledBy {
            number: 123,
            title: "DISABLED test_foo (__main__.TestBar)".into(),
            url: String::new(),
        })
    };
    let known = Known {
        unstable: &unstable,
        ..Known::new(&similar, &disabled)
    };
    let rocm = failed(
        "pull / rocm / test (default, 1, 2, linux.rocm)",
        &["x"],
        "",
        "",
    );
    let d = classify(&rocm, &known);
    assert_eq!(
        (d.class, d.reason.as_str()),
        (Class::Unstable, "job is unstable, issue #45")
    );

    let mut disabled_test = failed("pull / linux / test (default, 1, 2, l)", &["x"], "", "");
    disabled_test.failing_tests = vec![("test_a.py".into(), "TestBar".into(), "test_foo".into())];
    let d = classify(&disabled_test, &known);
    assert_eq!(
        (d.class, d.reason.as_str()),
        (Class::Flaky, "test test_foo is disabled, issue #123")
    );

    let seen = failed("pull / linux / test (default, 1, 2, l)", &["x"], "", "abcd");
    let d = classify(&seen, &known);
    assert_eq!(d.class, Class::Flaky);
    assert_eq!(
        d.reason,
        "same signature in 4 other jobs of 3 other commits on 2 other branches (main, feature) in the last 7 days"
    );
}
