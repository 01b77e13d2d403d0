//! Every one of torchci's 31 real fixtures classifies to its marked line and captures with the
//! real 102-rule set, and the streaming engine agrees with the naive per-rule scan on them and
//! on the two whole logs.

use hudstream_classifier::fixture::{reference_dir, Fixture};
use hudstream_classifier::preprocess::Preprocessor;
use hudstream_classifier::{classify_naive, Options, Ruleset};

fn real_ruleset() -> Ruleset {
    Ruleset::from_path(&reference_dir().join("ruleset.toml")).expect("the real ruleset compiles")
}

#[test]
fn the_shipped_ruleset_is_the_reference_one() {
    let shipped = Ruleset::from_path(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rulesets/pytorch.toml"),
    )
    .unwrap();
    assert_eq!(shipped.hash(), real_ruleset().hash());
    assert_eq!(shipped.rules().len(), 102);
}

#[test]
fn all_31_fixtures_classify_to_the_marked_line_and_captures() {
    let ruleset = real_ruleset();
    let mut paths: Vec<_> = std::fs::read_dir(reference_dir().join("fixtures"))
        .expect("fixtures folder")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 31, "fixture count");
    let mut failures = Vec::new();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let fixture = Fixture::parse(&text);
        let verdict = ruleset.classify_bytes(fixture.log.as_bytes(), &Options::default());
        let name = path.file_name().unwrap().to_string_lossy();
        let naive = classify_naive(&ruleset, fixture.log.as_bytes(), &Options::default());
        if verdict.matched != naive {
            failures.push(format!(
                "{name}: streaming {:?} != naive {naive:?}",
                verdict.matched
            ));
        }
        match (&fixture.expected, &verdict.matched) {
            (None, None) => {}
            (Some(e), Some(m)) => {
                // The markers are in the raw text; the rules see it preprocessed (no
                // timestamp, no ANSI codes), and so do the captures.
                let want_line = Preprocessor::new().line(&e.raw_line).unwrap_or_default();
                let want_captures: Vec<String> = e
                    .captures
                    .iter()
                    .map(|c| Preprocessor::strip_ansi(c).into_owned())
                    .collect();
                if m.line_number != e.line_number
                    || m.line != want_line
                    || m.captures != want_captures
                {
                    failures.push(format!(
                        "{name}: expected line {} {want_line:?} captures {:?}, got rule {:?} line {} {:?} captures {:?}",
                        e.line_number, want_captures, m.rule, m.line_number, m.line, m.captures
                    ));
                }
            }
            (e, m) => failures.push(format!("{name}: expected {e:?}, got {m:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 31 fixtures disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn whole_logs_agree_with_the_naive_scan() {
    let ruleset = real_ruleset();
    for name in ["error_log1.txt", "error_log_multiple_matches.txt"] {
        let log = std::fs::read(reference_dir().join("logs").join(name)).unwrap();
        let verdict = ruleset.classify_bytes(&log, &Options::default());
        assert_eq!(
            verdict.matched,
            classify_naive(&ruleset, &log, &Options::default()),
            "{name}"
        );
        assert_eq!(verdict.bytes, log.len() as u64);
    }
}
