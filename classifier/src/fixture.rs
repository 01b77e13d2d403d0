//! torchci's in-band fixture format: a real log excerpt that carries its expected verdict.
//!
//! The line the classifier must land on starts with `#=MATCH=# `; each expected capture is
//! wrapped in `‹ ›`; an optional first line `#=SOURCE=# <url>` is metadata. A fixture without
//! a `#=MATCH=#` line expects no match.

/// A fixture split into the log to classify and the verdict it expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fixture {
    /// The log with the markers removed and without the `#=SOURCE=#` line.
    pub log: String,
    pub source: Option<String>,
    pub expected: Option<Expected>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// 1-based, in [`Fixture::log`].
    pub line_number: u64,
    /// The raw marked line, markers removed.
    pub raw_line: String,
    pub captures: Vec<String>,
}

const MATCH: &str = "#=MATCH=# ";
const SOURCE: &str = "#=SOURCE=# ";

impl Fixture {
    pub fn parse(text: &str) -> Fixture {
        let mut log = String::with_capacity(text.len());
        let mut source = None;
        let mut expected = None;
        let mut number = 0u64;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i == 0 {
                if let Some(url) = line.strip_prefix(SOURCE) {
                    source = Some(url.trim().to_string());
                    continue;
                }
            }
            number += 1;
            let (marked, line) = match line.strip_prefix(MATCH) {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            if marked {
                expected = Some(Expected {
                    line_number: number,
                    raw_line: unmark(line.trim_end_matches(['\n', '\r'])),
                    captures: spans(line),
                });
            }
            log.push_str(&unmark(line));
        }
        Fixture {
            log,
            source,
            expected,
        }
    }
}

fn unmark(line: &str) -> String {
    line.replace(['‹', '›'], "")
}

/// The texts between `‹` and `›`, in order.
fn spans(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(open) = rest.find('‹') {
        let after = &rest[open + '‹'.len_utf8()..];
        let Some(close) = after.find('›') else {
            break;
        };
        out.push(after[..close].to_string());
        rest = &after[close + '›'.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_stripped_and_numbers_skip_the_source_line() {
        let f = Fixture::parse("#=SOURCE=# https://x\na\n#=MATCH=# T ‹one› and ‹two›\nb\n");
        assert_eq!(f.source.as_deref(), Some("https://x"));
        assert_eq!(f.log, "a\nT one and two\nb\n");
        let e = f.expected.unwrap();
        assert_eq!((e.line_number, e.raw_line.as_str()), (2, "T one and two"));
        assert_eq!(e.captures, vec!["one", "two"]);
    }
}

/// torchci's log-classifier reference (`../shared/reference/log-classifier`: ruleset, fixtures,
/// whole logs), unless `HUDSTREAM_LOG_CLASSIFIER_REFERENCE` names another folder.
pub fn reference_dir() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("HUDSTREAM_LOG_CLASSIFIER_REFERENCE") {
        return dir.into();
    }
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/log-classifier")
}
