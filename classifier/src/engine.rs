//! Classifying a log: the best rule wins, and within it the last matching line.
//!
//! torchci runs every rule over every line (from the end, in parallel) and keeps the match of
//! the highest-priority rule. [`Ruleset::classify`] gives the same verdict in one forward pass:
//!
//! 1. Preprocessed lines are gathered into chunks of about [`CHUNK_BYTES`].
//! 2. The ruleset's multi-line `RegexSet` reports which rules match somewhere in the chunk —
//!    one scan for all rules.
//! 3. Reported rules are tried in priority order, but only those that are at least as good as
//!    the best so far (an equal rule in a later chunk is a later line, so it wins); the first
//!    whose regex matches a line of the chunk, searched from the chunk's end, is the new best.
//! 4. Context — the nearest preceding `+` (xtrace) lines — comes from the chunk and a small
//!    ring of the previous chunks' `+` lines.
//!
//! Memory is one chunk, the ring and the best match, whatever the log's size. A line longer
//! than [`MAX_LINE_BYTES`] is cut there (the rest of it is skipped, and counted); bytes that
//! are not UTF-8 are replaced with U+FFFD; `\r\n` line ends are `\n`.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use serde::Serialize;

use crate::preprocess::Preprocessor;
use crate::ruleset::Ruleset;

/// How much preprocessed text the prefilter scans at once.
pub const CHUNK_BYTES: usize = 256 << 10;
/// The longest line the rules see; torchci's whole-log `String` had no limit, but a single
/// multi-gigabyte "line" (a binary dumped to stdout) must not take the classifier's memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What a classification may be tuned with.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many `+` command lines to collect as context (torchci: 12).
    pub context_depth: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { context_depth: 12 }
    }
}

/// The winning rule's match: torchci's `{rule, line, line_num, captures, context}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    pub rule: String,
    /// 0-based position of the rule in the ruleset (0 is the highest priority).
    pub rule_index: usize,
    /// The preprocessed line (no timestamp, no ANSI codes).
    pub line: String,
    /// 1-based number of the line in the raw log.
    pub line_number: u64,
    pub captures: Vec<String>,
    /// The nearest `+` lines at or before the match, nearest first.
    pub context: Vec<String>,
}

/// The result of classifying one log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `None`: no rule matched ("no match" is a verdict too).
    pub matched: Option<Match>,
    /// Raw bytes read, line ends included.
    pub bytes: u64,
    /// Raw lines read.
    pub lines: u64,
    /// Lines longer than [`MAX_LINE_BYTES`], cut for matching.
    pub cut_lines: u64,
}

impl Ruleset {
    /// Classifies a log read from `input`, streaming.
    pub fn classify(&self, input: impl BufRead, options: &Options) -> io::Result<Verdict> {
        self.classify_in_chunks(input, options, CHUNK_BYTES)
    }

    fn classify_in_chunks(
        &self,
        mut input: impl BufRead,
        options: &Options,
        chunk_bytes: usize,
    ) -> io::Result<Verdict> {
        let mut scan = Scan::new(self, options.context_depth, chunk_bytes);
        let mut pre = Preprocessor::new();
        let mut raw = Vec::with_capacity(4096);
        let (mut bytes, mut lines, mut cut_lines) = (0u64, 0u64, 0u64);
        while let Some(read) = read_line_capped(&mut input, &mut raw, MAX_LINE_BYTES)? {
            bytes += read.raw_len as u64;
            lines += 1;
            cut_lines += u64::from(read.cut);
            let text = String::from_utf8_lossy(&raw);
            if let Some(line) = pre.line(&text) {
                scan.push(lines, &line);
            }
        }
        scan.flush();
        Ok(Verdict {
            matched: scan.finish(),
            bytes,
            lines,
            cut_lines,
        })
    }

    /// Classifies an in-memory log.
    pub fn classify_bytes(&self, log: &[u8], options: &Options) -> Verdict {
        // Reading from a slice cannot fail.
        self.classify(log, options)
            .unwrap_or_else(|e| unreachable!("reading a slice failed: {e}"))
    }
}

/// The captures of `rule` on `line`: every participating group, or the whole match.
fn captures_of(regex: &regex::Regex, line: &str) -> Vec<String> {
    let Some(caps) = regex.captures(line) else {
        return Vec::new();
    };
    if caps.len() == 1 {
        return vec![caps[0].to_string()];
    }
    caps.iter()
        .skip(1)
        .flatten()
        .map(|m| m.as_str().to_string())
        .collect()
}

struct Best {
    rule_index: usize,
    line_number: u64,
    line: String,
    context: Vec<String>,
}

/// The forward pass over one log's preprocessed lines.
struct Scan<'r> {
    ruleset: &'r Ruleset,
    depth: usize,
    chunk_bytes: usize,
    /// The current chunk: lines joined by `\n`, and where each starts.
    text: String,
    starts: Vec<(u64, usize)>,
    /// The last `depth` `+` lines before the current chunk, oldest first.
    plus_lines: VecDeque<String>,
    best: Option<Best>,
}

impl<'r> Scan<'r> {
    fn new(ruleset: &'r Ruleset, depth: usize, chunk_bytes: usize) -> Scan<'r> {
        Scan {
            ruleset,
            depth,
            chunk_bytes,
            text: String::with_capacity(chunk_bytes + 4096),
            starts: Vec::new(),
            plus_lines: VecDeque::with_capacity(depth),
            best: None,
        }
    }

    fn push(&mut self, line_number: u64, line: &str) {
        self.starts.push((line_number, self.text.len()));
        self.text.push_str(line);
        self.text.push('\n');
        if self.text.len() >= self.chunk_bytes {
            self.flush();
        }
    }

    /// The `i`th line of the chunk, without its `\n`.
    fn chunk_line(&self, i: usize) -> &str {
        let start = self.starts[i].1;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.text.len(), |&(_, next)| next)
            - 1;
        &self.text[start..end]
    }

    fn flush(&mut self) {
        if self.starts.is_empty() {
            return;
        }
        let bound = self.best.as_ref().map_or(usize::MAX, |b| b.rule_index);
        let reported = self.ruleset.prefilter.matches(&self.text);
        for rule_index in reported.iter().take_while(|&i| i <= bound) {
            let regex = &self.ruleset.rules()[rule_index].regex;
            let hit = (0..self.starts.len())
                .rev()
                .find(|&i| regex.is_match(self.chunk_line(i)));
            if let Some(i) = hit {
                self.best = Some(Best {
                    rule_index,
                    line_number: self.starts[i].0,
                    line: self.chunk_line(i).to_string(),
                    context: self.context_at(i),
                });
                break;
            }
        }
        self.remember_plus_lines();
        self.text.clear();
        self.starts.clear();
    }

    /// The nearest `depth` `+` lines at or before chunk line `i`, nearest first.
    fn context_at(&self, i: usize) -> Vec<String> {
        let in_chunk = (0..=i).rev().map(|j| self.chunk_line(j));
        let before = self.plus_lines.iter().rev().map(String::as_str);
        in_chunk
            .filter(|l| l.starts_with('+'))
            .chain(before)
            .take(self.depth)
            .map(str::to_string)
            .collect()
    }

    fn remember_plus_lines(&mut self) {
        if self.depth == 0 {
            return;
        }
        let newest: Vec<String> = (0..self.starts.len())
            .rev()
            .map(|i| self.chunk_line(i))
            .filter(|l| l.starts_with('+'))
            .take(self.depth)
            .map(str::to_string)
            .collect();
        for line in newest.into_iter().rev() {
            if self.plus_lines.len() == self.depth {
                self.plus_lines.pop_front();
            }
            self.plus_lines.push_back(line);
        }
    }

    fn finish(self) -> Option<Match> {
        let best = self.best?;
        let rule = &self.ruleset.rules()[best.rule_index];
        Some(Match {
            rule: rule.name.clone(),
            rule_index: best.rule_index,
            captures: captures_of(&rule.regex, &best.line),
            line: best.line,
            line_number: best.line_number,
            context: best.context,
        })
    }
}

struct LineRead {
    /// Bytes consumed from the input, line end included.
    raw_len: usize,
    /// The line was longer than the cap and was cut.
    cut: bool,
}

/// Reads one line into `buf` (cleared first) without its `\n` or `\r\n`, keeping at most `cap`
/// bytes of it; `None` at the end of input.
fn read_line_capped(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<LineRead>> {
    buf.clear();
    let mut raw_len = 0usize;
    let mut cut = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if raw_len == 0 {
                return Ok(None);
            }
            break;
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let content = &available[..if done { take - 1 } else { take }];
        let room = cap.saturating_sub(buf.len());
        if content.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&content[..content.len().min(room)]);
        input.consume(take);
        raw_len += take;
        if done {
            break;
        }
    }
    // A `\r` before the `\n` is part of the line end, not of a line cut short.
    if !cut && buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(LineRead { raw_len, cut }))
}

/// torchci's algorithm, literally: preprocess the whole log into memory, then for every rule
/// scan the lines from the end and keep the highest-priority rule's last match. The baseline
/// the benchmark compares [`Ruleset::classify`] with, and an oracle for the property tests.
pub fn classify_naive(ruleset: &Ruleset, log: &[u8], options: &Options) -> Option<Match> {
    let mut pre = Preprocessor::new();
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut input = log;
    let mut raw = Vec::new();
    let mut number = 0u64;
    while let Ok(Some(_)) = read_line_capped(&mut input, &mut raw, MAX_LINE_BYTES) {
        number += 1;
        let text = String::from_utf8_lossy(&raw);
        if let Some(line) = pre.line(&text) {
            lines.push((number, line.into_owned()));
        }
    }
    let (rule_index, i) = ruleset.rules().iter().enumerate().find_map(|(r, rule)| {
        (0..lines.len())
            .rev()
            .find(|&i| rule.regex.is_match(&lines[i].1))
            .map(|i| (r, i))
    })?;
    let rule = &ruleset.rules()[rule_index];
    Some(Match {
        rule: rule.name.clone(),
        rule_index,
        line: lines[i].1.clone(),
        line_number: lines[i].0,
        captures: captures_of(&rule.regex, &lines[i].1),
        context: lines[..=i]
            .iter()
            .rev()
            .filter(|(_, l)| l.starts_with('+'))
            .take(options.context_depth)
            .map(|(_, l)| l.clone())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rules(toml: &str) -> Ruleset {
        Ruleset::from_toml(toml).unwrap()
    }

    fn two_rules() -> Ruleset {
        rules(
            "[[rule]]\nname = 'fail'\npattern = '^FAIL: (\\w+)'\n\
             [[rule]]\nname = 'error'\npattern = 'error: .*'\n\
             [[rule]]\nname = 'opt'\npattern = '^x(a)?(b)'\n",
        )
    }

    #[test]
    fn the_best_rule_wins_and_within_it_the_last_line() {
        let log =
            b"error: one\nFAIL: first\n+ cmd a\nerror: two\n+ cmd b\nFAIL: second\nerror: three\n";
        let v = two_rules().classify_bytes(log, &Options::default());
        let m = v.matched.unwrap();
        assert_eq!((m.rule.as_str(), m.line_number), ("fail", 6));
        assert_eq!(m.captures, vec!["second"]);
        assert_eq!(m.context, vec!["+ cmd b", "+ cmd a"]);
        assert_eq!((v.lines, v.bytes), (7, log.len() as u64));
    }

    #[test]
    fn captures_skip_non_participating_groups_and_default_to_the_whole_match() {
        let m = two_rules()
            .classify_bytes(b"xb\n", &Options::default())
            .matched
            .unwrap();
        assert_eq!(m.captures, vec!["b"]);
        let m = two_rules()
            .classify_bytes(b"an error: here\n", &Options::default())
            .matched
            .unwrap();
        assert_eq!(m.captures, vec!["error: here"]);
    }

    #[test]
    fn empty_no_match_crlf_and_invalid_utf8() {
        let rs = two_rules();
        let v = rs.classify_bytes(b"", &Options::default());
        assert_eq!((v.matched, v.lines), (None, 0));
        assert_eq!(
            rs.classify_bytes(b"all good\n", &Options::default())
                .matched,
            None
        );
        let m = rs
            .classify_bytes(b"ok\r\nFAIL: crlf\r\n", &Options::default())
            .matched
            .unwrap();
        assert_eq!(
            (m.line.as_str(), m.captures[0].as_str()),
            ("FAIL: crlf", "crlf")
        );
        let m = rs
            .classify_bytes(b"\xff\xfe\nerror: bad \xc3(\n", &Options::default())
            .matched
            .unwrap();
        assert_eq!(
            (m.line_number, m.line.as_str()),
            (2, "error: bad \u{fffd}(")
        );
    }

    #[test]
    fn a_line_beyond_the_cap_is_cut_not_held() {
        let mut log = b"FAIL: head".to_vec();
        log.extend(std::iter::repeat_n(b'z', MAX_LINE_BYTES + 10));
        log.extend_from_slice(b"\nnext\n");
        let v = two_rules().classify_bytes(&log, &Options::default());
        assert_eq!((v.lines, v.cut_lines), (2, 1));
        let m = v.matched.unwrap();
        assert_eq!(m.line.len(), MAX_LINE_BYTES);
        assert_eq!(m.line_number, 1);
    }

    #[test]
    fn a_match_in_an_earlier_chunk_keeps_context_from_the_ring() {
        let mut log = String::from("+ setup\n+ build\nFAIL: early\n");
        while log.len() < 3 * CHUNK_BYTES {
            log.push_str("padding line with nothing in it\n");
        }
        log.push_str("+ late\nerror: later but lower priority\n");
        let rs = two_rules();
        let m = rs
            .classify_bytes(log.as_bytes(), &Options::default())
            .matched
            .unwrap();
        assert_eq!((m.rule.as_str(), m.line_number), ("fail", 3));
        assert_eq!(m.context, vec!["+ build", "+ setup"]);
        assert_eq!(
            Some(m),
            classify_naive(&rs, log.as_bytes(), &Options::default())
        );
    }

    #[test]
    fn a_prefilter_report_spanning_lines_is_not_a_match() {
        // `\s` matches the newline between the lines in a chunk, never within one line.
        let rs = rules("[[rule]]\nname = 'span'\npattern = 'a\\sb'\n");
        assert_eq!(
            rs.classify_bytes(b"a\nb\n", &Options::default()).matched,
            None
        );
        assert!(rs
            .classify_bytes(b"a b\n", &Options::default())
            .matched
            .is_some());
    }

    fn line_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("FAIL: test_a".to_string()),
            Just("error: boom".to_string()),
            Just("+ run step".to_string()),
            Just("xab".to_string()),
            Just("##[error]Process completed with exit code 1.".to_string()),
            Just("=================== sccache compilation log ===================".to_string()),
            Just("=========== If your build fails, please take a look at the log above for possible reasons ===========".to_string()),
            "[ -~]{0,40}",
            ".{0,20}",
        ]
    }

    proptest! {
        #[test]
        fn streaming_agrees_with_the_naive_scan(
            lines in proptest::collection::vec(line_strategy(), 0..60),
            crlf in any::<bool>(),
            depth in 0usize..4,
            chunk_bytes in 1usize..200,
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let log = lines.join(end);
            let rs = two_rules();
            let options = Options { context_depth: depth };
            let streamed = rs
                .classify_in_chunks(log.as_bytes(), &options, chunk_bytes)
                .unwrap()
                .matched;
            prop_assert_eq!(streamed, classify_naive(&rs, log.as_bytes(), &options));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = two_rules().classify_bytes(&bytes, &Options::default());
        }
    }
}
