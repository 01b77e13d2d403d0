//! Line preprocessing, exactly as torchci's `log.rs` does it.
//!
//! For every raw line (numbered from 1 in the raw file; numbers are kept when lines are
//! dropped): strip the GitHub Actions timestamp prefix, delete ANSI escape sequences, drop the
//! CI wrappers' boilerplate lines, and drop the sccache ignore region. Blank lines are kept.

use std::borrow::Cow;
use std::sync::OnceLock;

use regex::{Regex, RegexSet};

/// `2026-07-30T13:21:28.4756105Z ` — exactly 7 fractional digits and one space.
const TIMESTAMP_LEN: usize = 29;

const IGNORE_START: &str = "=================== sccache compilation log ===================";
const IGNORE_END: &str =
    "=========== If your build fails, please take a look at the log above for possible reasons ===========";

/// The CI wrappers' own lines: they say a step failed, never why, and would otherwise win
/// through the `GHA error` catch-all.
const BOILERPLATE: &[&str] = &[
    r"##\[error\]Process completed with exit code \d+[.]",
    r"\[OSDC\] Step script exited",
    r"##\[error\]Executing the custom container implementation failed",
    r"##\[error\]TypeError: Cannot read properties of null \(reading 'jobPod'\)",
    r"\[OSDC\] Step cancelled by GitHub Actions",
];

struct Patterns {
    ansi: Regex,
    boilerplate: RegexSet,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| Patterns {
        // CSI sequences (colours, cursor moves) and the two-byte escapes.
        ansi: Regex::new(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])").expect("static regex"),
        boilerplate: RegexSet::new(BOILERPLATE).expect("static regexes"),
    })
}

/// Preprocesses one log's lines in order; it remembers whether it is inside the ignore region.
#[derive(Debug, Default)]
pub struct Preprocessor {
    in_ignore_region: bool,
}

impl Preprocessor {
    pub fn new() -> Preprocessor {
        Preprocessor::default()
    }

    /// `text` without ANSI escape sequences.
    pub fn strip_ansi(text: &str) -> Cow<'_, str> {
        if memchr::memchr(0x1b, text.as_bytes()).is_some() {
            patterns().ansi.replace_all(text, "")
        } else {
            Cow::Borrowed(text)
        }
    }

    /// The line as the rules see it, or `None` if it is dropped.
    pub fn line<'a>(&mut self, raw: &'a str) -> Option<Cow<'a, str>> {
        if self.in_ignore_region {
            if raw.contains(IGNORE_END) {
                self.in_ignore_region = false;
            }
            return None;
        }
        if raw.contains(IGNORE_START) {
            // A region that opens and closes on one line is one dropped line.
            self.in_ignore_region = !raw.contains(IGNORE_END);
            return None;
        }
        let line = Preprocessor::strip_ansi(strip_timestamp(raw));
        if (line.contains("##[error]") || line.contains("[OSDC]"))
            && patterns().boilerplate.is_match(&line)
        {
            return None;
        }
        Some(line)
    }
}

/// `line` without a leading `YYYY-MM-DDTHH:MM:SS.fffffffZ `.
pub fn strip_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    if b.len() < TIMESTAMP_LEN {
        return line;
    }
    let digit = |i: usize| b[i].is_ascii_digit();
    let shape = (0..4).all(digit)
        && b[4] == b'-'
        && (5..7).all(digit)
        && b[7] == b'-'
        && (8..10).all(digit)
        && b[10] == b'T'
        && (11..13).all(digit)
        && b[13] == b':'
        && (14..16).all(digit)
        && b[16] == b':'
        && (17..19).all(digit)
        && b[19] == b'.'
        && (20..27).all(digit)
        && b[27] == b'Z'
        && b[28] == b' ';
    if shape {
        // All 29 bytes are ASCII, so byte 29 is a char boundary.
        &line[TIMESTAMP_LEN..]
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[&str]) -> Vec<Option<String>> {
        let mut p = Preprocessor::new();
        lines
            .iter()
            .map(|l| p.line(l).map(|c| c.into_owned()))
            .collect()
    }

    #[test]
    fn timestamp_needs_exactly_seven_fractional_digits_and_a_space() {
        assert_eq!(
            strip_timestamp("2026-07-30T13:21:28.4756105Z hello"),
            "hello"
        );
        assert_eq!(strip_timestamp("2026-07-30T13:21:28.4756105Z "), "");
        assert_eq!(
            strip_timestamp("2026-07-30T13:21:28.475610Z hello"),
            "2026-07-30T13:21:28.475610Z hello"
        );
        assert_eq!(
            strip_timestamp("2026-07-30T13:21:28.4756105Zhello"),
            "2026-07-30T13:21:28.4756105Zhello"
        );
        assert_eq!(strip_timestamp("é"), "é");
    }

    #[test]
    fn ansi_codes_go_anywhere_in_the_line() {
        assert_eq!(
            run(&["2026-07-30T13:21:28.4756105Z \x1b[36;1mFAILED\x1b[0m test_x"]),
            vec![Some("FAILED test_x".to_string())]
        );
    }

    #[test]
    fn boilerplate_is_dropped_and_other_errors_kept() {
        assert_eq!(
            run(&[
                "##[error]Process completed with exit code 1.",
                "##[error][OSDC] Step script exited with code 1.",
                "##[error]Executing the custom container implementation failed. Please",
                "##[error]TypeError: Cannot read properties of null (reading 'jobPod')",
                "[OSDC] Step cancelled by GitHub Actions",
                "##[error]Something real",
                "",
            ]),
            vec![
                None,
                None,
                None,
                None,
                None,
                Some("##[error]Something real".into()),
                Some("".into())
            ]
        );
    }

    #[test]
    fn the_sccache_region_is_ignored_inclusive() {
        assert_eq!(
            run(&[
                "before",
                "=================== sccache compilation log ===================",
                "error: inside",
                "=========== If your build fails, please take a look at the log above for possible reasons ===========",
                "after",
            ]),
            vec![Some("before".into()), None, None, None, Some("after".into())]
        );
    }
}
