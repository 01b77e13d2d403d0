//! `hudstream classify <file|-> [--ruleset FILE]`: the verdict the classifier stage would give a
//! log — rule, line number, line, captures, context, and the failure's signature — as JSON, so
//! a new rule can be tried on a log before it ships (torchci's classifier offers the same
//! locally). The ruleset is `logs.ruleset` unless `--ruleset` names another; a gzip-compressed
//! log (as the log store keeps them) is read as such.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use hudstream_classifier::{Options, Ruleset, Verdict};
use hudstream_runtime::Config;
use hudstream_schemas::signature;

/// What `classify` prints.
#[derive(Debug, Serialize, PartialEq)]
pub struct ClassifyOutput {
    /// `matched` or `no_match`.
    pub outcome: &'static str,
    pub rule: Option<String>,
    pub line_number: Option<u64>,
    pub line: Option<String>,
    pub captures: Vec<String>,
    /// The nearest preceding `+` command lines, nearest first.
    pub context: Vec<String>,
    /// The failure's signature and pattern, as the classifier stage records them.
    pub signature: Option<String>,
    pub pattern: Option<String>,
    pub ruleset: String,
    pub ruleset_hash: String,
    pub bytes: u64,
    pub lines: u64,
}

/// The verdict of `ruleset` on `log`, as `classify` prints it.
pub fn verdict_of(
    ruleset: &Ruleset,
    ruleset_path: &Path,
    log: impl BufRead,
    options: &Options,
) -> anyhow::Result<ClassifyOutput> {
    let Verdict {
        matched,
        bytes,
        lines,
        ..
    } = ruleset.classify(log, options).context("reading the log")?;
    let signed = matched.as_ref().map(|m| {
        (
            signature::of_verdict(&m.rule, &m.captures, &m.line),
            signature::pattern(&m.line),
        )
    });
    Ok(ClassifyOutput {
        outcome: if matched.is_some() {
            "matched"
        } else {
            "no_match"
        },
        rule: matched.as_ref().map(|m| m.rule.clone()),
        line_number: matched.as_ref().map(|m| m.line_number),
        line: matched.as_ref().map(|m| m.line.clone()),
        captures: matched
            .as_ref()
            .map(|m| m.captures.clone())
            .unwrap_or_default(),
        context: matched.map(|m| m.context).unwrap_or_default(),
        signature: signed.as_ref().map(|s| s.0.clone()),
        pattern: signed.map(|s| s.1),
        ruleset: ruleset_path.display().to_string(),
        ruleset_hash: ruleset.hash().to_string(),
        bytes,
        lines,
    })
}

pub fn run(config: &Config, log: &str, ruleset: Option<&Path>) -> anyhow::Result<()> {
    let path = ruleset.unwrap_or(&config.logs.ruleset);
    let rules = Ruleset::from_path(path)
        .with_context(|| format!("loading the ruleset {}", path.display()))?;
    let input: Box<dyn Read> = if log == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(log).with_context(|| format!("opening {log}"))?)
    };
    let mut input = BufReader::new(input);
    // A gzip stream (a stored log) starts 1f 8b.
    let gzip = input
        .fill_buf()
        .context("reading the log")?
        .starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(input)))
    } else {
        Box::new(input)
    };
    let options = Options {
        context_depth: config.logs.context_depth,
    };
    let output = verdict_of(&rules, path, reader, &options)?;
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_classifier::fixture::{reference_dir, Fixture};
    use hudstream_classifier::preprocess::Preprocessor;

    /// Every fixture of the log-classifier reference gets the verdict the reference expects —
    /// the verdict the classifier stage gives it (the stage runs the same engine with the same
    /// options; `logs/` tests the stage against the same fixtures).
    #[test]
    fn every_reference_fixture_gets_its_expected_verdict() {
        let dir = reference_dir();
        let path = dir.join("ruleset.toml");
        let ruleset = Ruleset::from_path(&path).expect("real ruleset");
        let mut checked = 0;
        let mut fixtures: Vec<_> = std::fs::read_dir(dir.join("fixtures"))
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .collect();
        fixtures.sort();
        for file in fixtures {
            let fixture = Fixture::parse(&std::fs::read_to_string(&file).expect("fixture"));
            let Some(expected) = fixture.expected else {
                continue;
            };
            let out = verdict_of(&ruleset, &path, fixture.log.as_bytes(), &Options::default())
                .expect("classify");
            let name = file.display();
            assert_eq!(out.outcome, "matched", "{name}");
            assert_eq!(out.line_number, Some(expected.line_number), "{name}");
            // The rules see lines preprocessed (no timestamp, no ANSI codes), so do captures.
            let want: Vec<String> = expected
                .captures
                .iter()
                .map(|c| Preprocessor::strip_ansi(c).into_owned())
                .collect();
            assert_eq!(out.captures, want, "{name}");
            assert_eq!(
                out.line,
                Preprocessor::new()
                    .line(&expected.raw_line)
                    .map(|l| l.into_owned()),
                "{name}"
            );
            assert!(
                out.signature.as_ref().is_some_and(|s| s.len() == 16),
                "{name}"
            );
            checked += 1;
        }
        assert!(
            checked >= 20,
            "only {checked} fixtures had an expected verdict"
        );
    }
}
