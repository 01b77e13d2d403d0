//! Every real report of `shared/fixtures/test-reports/` against an independent reading of the
//! same file: a DOM parse (roxmltree) walked by its own code, not this crate's parser. Both
//! must find the same test cases, in order, with the same outcomes, problems and retries, and
//! the same status per test by torchci's rule.
//!
//! Two fixtures (`junit-web-test__expected*.xml`) hold `time="<<computed>>"`: a `<` in an
//! attribute value, which strict XML forbids and which the tool that wrote them, like
//! action-junit-report and this parser, reads anyway. The DOM gets those values escaped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hudstream_junit::status::{status, Run, Status};
use hudstream_junit::{parse, Limits, Outcome, TestCase};

fn fixtures_dir() -> PathBuf {
    std::env::var_os("HUDSTREAM_TEST_REPORTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/test-reports")
        })
}

/// Every fixture report, by name (`folder/file`).
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for folder in ["action-junit-report", "test-reporter"] {
        for entry in std::fs::read_dir(fixtures_dir().join(folder)).expect("fixtures folder") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "xml") {
                let name = format!(
                    "{folder}/{}",
                    path.file_name().expect("name").to_string_lossy()
                );
                out.push((name, std::fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// What both readings compare: a case's identity, outcome, retries and first problem.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    file: String,
    classname: String,
    name: String,
    outcome: Outcome,
    reruns: u32,
    problem: Option<(String, String)>,
}

fn ours(bytes: &[u8]) -> Result<Vec<Seen>, String> {
    let mut cases: Vec<TestCase> = Vec::new();
    // Limits no fixture reaches: the readings are compared whole (cutting is tested apart).
    let whole = Limits {
        max_value_bytes: 1 << 20,
        max_text_bytes: 1 << 20,
        ..Limits::default()
    };
    parse(bytes, &whole, |c| {
        cases.push(c.clone());
        Ok::<(), String>(())
    })
    .map_err(|e| e.to_string())?;
    Ok(cases
        .into_iter()
        .map(|c| Seen {
            file: c.file,
            classname: c.classname,
            name: c.name,
            outcome: c.outcome,
            reruns: c.reruns,
            problem: c.problem.map(|p| (p.kind, p.message)),
        })
        .collect())
}

/// The DOM reading: every `<testcase>` element in document order.
fn dom(text: &str) -> Result<Vec<Seen>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element().tag_name().name();
    if root != "testsuites" && root != "testsuite" {
        return Err(format!("root <{root}>"));
    }
    let mut out = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let suite_file = case
            .ancestors()
            .find(|a| a.has_tag_name("testsuite"))
            .and_then(|s| s.attribute("file"))
            .unwrap_or("");
        let children: Vec<_> = case.children().filter(|c| c.is_element()).collect();
        let problem = children
            .iter()
            .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let status = case.attribute("status").unwrap_or("").to_ascii_lowercase();
        let outcome = match problem {
            Some(p) if p.has_tag_name("failure") => Outcome::Failed,
            Some(_) => Outcome::Errored,
            None if children.iter().any(|c| c.has_tag_name("skipped"))
                || ["skipped", "disabled", "notrun", "ignored"].contains(&status.as_str()) =>
            {
                Outcome::Skipped
            }
            None => Outcome::Passed,
        };
        let reruns = children
            .iter()
            .filter(|c| {
                [
                    "rerun",
                    "flakyFailure",
                    "flakyError",
                    "rerunFailure",
                    "rerunError",
                ]
                .contains(&c.tag_name().name())
            })
            .count() as u32;
        out.push(Seen {
            file: case
                .attribute("file")
                .filter(|f| !f.is_empty())
                .unwrap_or(suite_file)
                .to_string(),
            classname: case.attribute("classname").unwrap_or("").to_string(),
            name: case.attribute("name").unwrap_or("").to_string(),
            outcome,
            reruns,
            problem: problem.map(|p| {
                (
                    p.attribute("type").unwrap_or("").to_string(),
                    p.attribute("message").unwrap_or("").to_string(),
                )
            }),
        });
    }
    Ok(out)
}

/// Statuses per test (file, classname, name) by torchci's rule, counted per status.
fn statuses(cases: &[Seen]) -> BTreeMap<Status, usize> {
    let mut runs: BTreeMap<(&str, &str, &str), Vec<Run>> = BTreeMap::new();
    for c in cases {
        runs.entry((&c.file, &c.classname, &c.name))
            .or_default()
            .push(Run {
                outcome: c.outcome,
                reruns: c.reruns,
            });
    }
    let mut out = BTreeMap::new();
    for r in runs.into_values() {
        *out.entry(status(r).expect("runs")).or_default() += 1;
    }
    out
}

/// What the DOM reads of a fixture (attribute values' `<`/`>` escaped where strict XML
/// needs it).
fn dom_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace("\"<<computed>>\"", "\"&lt;&lt;computed&gt;&gt;\"")
}

#[test]
fn every_fixture_reads_the_same_as_a_dom_parse() {
    let fixtures = fixtures();
    assert_eq!(fixtures.len(), 50, "the fixture set changed");
    let (mut parsed, mut refused, mut cases) = (0, Vec::new(), 0);
    for (name, bytes) in &fixtures {
        match (ours(bytes), dom(&dom_text(bytes))) {
            (Ok(ours), Ok(dom)) => {
                assert_eq!(ours, dom, "{name}: the readings differ");
                assert_eq!(statuses(&ours), statuses(&dom), "{name}: statuses differ");
                parsed += 1;
                cases += ours.len();
            }
            (Err(ours), Err(_)) => refused.push((name.clone(), ours)),
            (ours, dom) => panic!("{name}: ours {ours:?}, DOM {dom:?}"),
        }
    }
    // The one deliberately corrupt report (a CDATA section cut off) is refused, with where.
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].0.contains("corrupt"), "{refused:?}");
    assert!(refused[0].1.contains("at byte"), "{refused:?}");
    assert_eq!(parsed, 49);
    assert!(cases > 250, "{cases} cases");
}

/// Each dialect's distinctive shape, read as its tool means it.
#[test]
fn the_dialects_read_as_their_tools_mean_them() {
    let read = |file: &str| {
        let bytes = std::fs::read(fixtures_dir().join(file)).expect("fixture");
        let mut cases = Vec::new();
        let summary = parse(&bytes[..], &Limits::default(), |c| {
            cases.push(c.clone());
            Ok::<(), String>(())
        })
        .expect("parses");
        (cases, summary)
    };
    // Retries written as repeated cases: one test, flaky (a pass among failures), and another
    // test of the same name in another class stays apart.
    let (cases, _) = read("action-junit-report/flaky_retries__flaky_with_classname_file.xml");
    let foo: Vec<_> = cases
        .iter()
        .filter(|c| c.classname == "test_foo.TestFoo")
        .map(|c| Run {
            outcome: c.outcome,
            reruns: c.reruns,
        })
        .collect();
    assert_eq!(foo.len(), 3);
    assert_eq!(status(foo), Some(Status::Flaky));
    assert_eq!(cases[0].file, "/home/runner/work/foo/bar/test_foo.py");
    assert_eq!(cases[0].line, Some(42));
    // pytest: skips with their message, failures with their text.
    let (cases, _) = read("test-reporter/python-xunit-pytest.xml");
    let skip = cases
        .iter()
        .find(|c| c.name == "test_always_skip")
        .expect("skip");
    assert_eq!(
        (skip.outcome, skip.skip_message.as_str()),
        (Outcome::Skipped, "skipped")
    );
    let fail = cases
        .iter()
        .find(|c| c.name == "test_always_fail")
        .expect("fail");
    let problem = fail.problem.as_ref().expect("problem");
    assert_eq!(problem.message, "assert False");
    assert!(
        problem
            .text
            .contains("tests/test_lib.py:25: AssertionError"),
        "{problem:?}"
    );
    // A time that is not a number is no time; an attribute's entities are unescaped.
    let (cases, _) = read("action-junit-report/junit-web-test__expectedRetries.xml");
    assert_eq!(cases[0].time_s, None);
    assert!(
        cases[0].classname.contains("a -> b"),
        "{}",
        cases[0].classname
    );
    // Nested suites: the innermost suite's name.
    let (cases, summary) = read("action-junit-report/nested__multi-level.xml");
    assert_eq!(cases[0].suite, "ABC-0199: XMPP Ping");
    assert_eq!(summary.suites, 2);
    // Empty reports are reports.
    let (cases, summary) = read("test-reporter/empty__phpunit-empty.xml");
    assert!(cases.is_empty());
    assert_eq!(summary.cases, 0);
}

/// The retries written inside a case, which no fixture holds: shaped as the reference describes
/// them (`reference/test-reports.md` §2).
#[test]
fn retries_inside_a_case_make_a_test_flaky_or_failed() {
    let report = br#"<?xml version="1.0"?>
<testsuite name="t" tests="3">
  <testcase classname="S" name="flaky_surefire"><flakyFailure message="first" type="AssertionError">trace</flakyFailure><flakyError message="second"/></testcase>
  <testcase classname="S" name="broken_surefire"><failure message="always"/><rerunFailure message="again"/><rerunError message="and again"/></testcase>
  <testcase classname="P" name="flaky_pytest"><rerun message="AssertionError: 1 != 2">E   AssertionError</rerun></testcase>
</testsuite>"#;
    let mut cases = Vec::new();
    let summary = parse(&report[..], &Limits::default(), |c| {
        cases.push(c.clone());
        Ok::<(), String>(())
    })
    .expect("parses");
    let run = |c: &TestCase| Run {
        outcome: c.outcome,
        reruns: c.reruns,
    };
    assert_eq!(
        (cases[0].reruns, cases[0].rerun_message.as_str()),
        (2, "first")
    );
    assert_eq!(status([run(&cases[0])]), Some(Status::Flaky));
    assert_eq!((cases[1].outcome, cases[1].reruns), (Outcome::Failed, 2));
    assert_eq!(status([run(&cases[1])]), Some(Status::Failure));
    assert_eq!(status([run(&cases[2])]), Some(Status::Flaky));
    assert_eq!(summary.rerun, 3);
    assert_eq!(
        dom(std::str::from_utf8(report).expect("utf8"))
            .expect("dom")
            .len(),
        3
    );
}
