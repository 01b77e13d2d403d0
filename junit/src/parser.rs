//! The streaming parser: one pass over the report, each `<testcase>` handed over as soon as its
//! end tag is read, nothing of the report kept but the case in hand and the enclosing suites'
//! names.
//!
//! What is read: `<testsuites>`/`<testsuite>` (nested any deep; the root must be one of them),
//! `<testcase>` and, inside it, `<failure>`, `<error>`, `<skipped>` and the retries written
//! inside a case — pytest-rerunfailures' `<rerun>`, Surefire's `<flakyFailure>`, `<flakyError>`,
//! `<rerunFailure>`, `<rerunError>`. Everything else (properties, system-out, …) is read past.
//!
//! What is refused, with the reason and the byte where it was found: XML that is not
//! well-formed (a truncated file among it), a root that is not a test suite (an HTML page), a
//! DTD that declares entities (a "billion laughs" bomb: entities are never expanded), a
//! reference to an entity XML does not predefine, nesting deeper than [`Limits::max_depth`], a
//! tag longer than [`Limits::max_node_bytes`]. Long values are cut, not refused (see
//! [`Limits`]).

use std::io::BufRead;

use memchr::{memchr, memchr3};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::case::{Limits, Outcome, Problem, Summary, TestCase};
use crate::guard::NodeGuard;

/// Why a report could not be read, and where.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a JUnit report: {reason} (at byte {position})")]
    NotJunit { reason: String, position: u64 },
    #[error("malformed XML at byte {position}: {reason}")]
    Malformed { reason: String, position: u64 },
    #[error("refused at byte {position}: {reason}")]
    Refused { reason: String, position: u64 },
}

impl ParseError {
    /// The byte of the report where the problem was found.
    pub fn position(&self) -> u64 {
        match self {
            ParseError::NotJunit { position, .. }
            | ParseError::Malformed { position, .. }
            | ParseError::Refused { position, .. } => *position,
        }
    }
}

/// Where a parse failed: the report's problem, or the caller's (its `on_case` refused).
#[derive(Debug, thiserror::Error)]
pub enum Stop<E> {
    #[error(transparent)]
    Report(#[from] ParseError),
    #[error("{0}")]
    Caller(E),
}

/// What is being collected inside the case in hand.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Inside {
    Nothing,
    /// A `<failure>` or `<error>`'s text (the first one's only).
    ProblemText,
    /// A `<skipped>` element's text, when it has no message attribute.
    SkipText,
}

struct Parser<'l> {
    limits: &'l Limits,
    /// Each open `<testsuite>`: its depth, name and file (strings kept for reuse).
    suites: Vec<(usize, String, String)>,
    open_suites: usize,
    depth: usize,
    root_seen: bool,
    /// The case in hand, reused from case to case so that a report allocates nothing per case
    /// once its longest values have been seen.
    case: TestCase,
    /// The depth of the `<testcase>` in hand, if one is open.
    case_at: Option<usize>,
    inside: Inside,
    /// Depth of the element whose text is collected.
    collecting_at: usize,
    next_index: u64,
    summary: Summary,
}

/// Parses a JUnit-family report from `input`, handing every test case to `on_case` as soon as
/// it is complete. Memory stays bounded whatever the report's size (see [`Limits`]).
pub fn parse<R: BufRead, E>(
    input: R,
    limits: &Limits,
    mut on_case: impl FnMut(&TestCase) -> Result<(), E>,
) -> Result<Summary, Stop<E>> {
    let guard = NodeGuard::new(input, limits.max_node_bytes);
    let mut reader = Reader::from_reader(guard);
    reader.config_mut().check_end_names = true;
    let mut parser = Parser {
        limits,
        suites: Vec::new(),
        open_suites: 0,
        depth: 0,
        root_seen: false,
        case: TestCase::empty(),
        case_at: None,
        inside: Inside::Nothing,
        collecting_at: 0,
        next_index: 0,
        summary: Summary::default(),
    };
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        buf.clear();
        // Where the event begins: the byte a refusal of it names.
        let at = reader.buffer_position() + reader.get_ref().skipped;
        reader.get_mut().node_starts();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => {
                let position = reader.error_position() + reader.get_ref().skipped;
                return Err(match e {
                    // The guard's refusals (a tag too long), or the input failing.
                    quick_xml::Error::Io(io) => ParseError::Refused {
                        reason: io.to_string(),
                        position,
                    },
                    e => ParseError::Malformed {
                        reason: e.to_string(),
                        position,
                    },
                }
                .into());
            }
        };
        match event {
            Event::Start(e) => {
                parser.depth += 1;
                if parser.depth > limits.max_depth {
                    return Err(ParseError::Refused {
                        reason: format!("elements nested deeper than {}", limits.max_depth),
                        position: at,
                    }
                    .into());
                }
                if parser.open(&e, at, false)? {
                    on_case(&parser.case).map_err(Stop::Caller)?;
                }
            }
            Event::Empty(e) => {
                parser.depth += 1;
                let closed = parser.open(&e, at, true)?;
                parser.depth -= 1;
                if closed {
                    on_case(&parser.case).map_err(Stop::Caller)?;
                }
            }
            Event::End(_) => {
                if parser.close() {
                    on_case(&parser.case).map_err(Stop::Caller)?;
                }
                parser.depth -= 1;
            }
            Event::Text(t) => parser.text(&t),
            Event::CData(t) => parser.text(&t),
            Event::GeneralRef(r) => {
                let mut utf8 = [0u8; 4];
                let text: &str = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch.encode_utf8(&mut utf8),
                    Ok(None) => match predefined(&r) {
                        Some(text) => text,
                        None => {
                            return Err(ParseError::Refused {
                                reason: format!("reference to an undefined entity &{};", &*r),
                                position: at,
                            }
                            .into())
                        }
                    },
                    Err(e) => {
                        return Err(ParseError::Malformed {
                            reason: e.to_string(),
                            position: at,
                        }
                        .into())
                    }
                };
                parser.text(text);
            }
            Event::DocType(d) => {
                if d.contains("<!ENTITY") {
                    return Err(ParseError::Refused {
                        reason: "the report's DTD declares entities; entities are never expanded (an entity bomb is refused whole)".into(),
                        position: at,
                    }
                    .into());
                }
            }
            Event::Eof => {
                if !parser.root_seen {
                    return Err(ParseError::NotJunit {
                        reason: "no root element".into(),
                        position: at,
                    }
                    .into());
                }
                if parser.depth > 0 {
                    return Err(ParseError::Malformed {
                        reason: "the report ends inside an element (truncated?)".into(),
                        position: at,
                    }
                    .into());
                }
                parser.summary.bytes = reader.get_ref().consumed;
                return Ok(parser.summary);
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
}

/// XML's five predefined entities.
fn predefined(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

/// The attributes read, by name (others are read past).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attr {
    Name,
    Classname,
    File,
    Line,
    Time,
    Status,
    Type,
    Message,
    Other,
}

impl Attr {
    fn of(local_name: &[u8]) -> Attr {
        match local_name {
            b"name" => Attr::Name,
            b"classname" => Attr::Classname,
            b"file" => Attr::File,
            b"line" => Attr::Line,
            b"time" => Attr::Time,
            b"status" => Attr::Status,
            b"type" => Attr::Type,
            b"message" => Attr::Message,
            _ => Attr::Other,
        }
    }
}

/// Calls `each` with every attribute of `e` that is read, unescaped and normalized as XML says
/// (each whitespace character a space, references resolved). Scanned here, one pass over the
/// bytes, rather than with quick-xml's attribute iterator, which took half the parser's time
/// (`benches/parse.rs`).
fn attributes(
    e: &BytesStart<'_>,
    at: u64,
    mut each: impl FnMut(Attr, &str),
) -> Result<(), ParseError> {
    let raw = e.attributes_raw();
    let bytes = raw.as_bytes();
    let len = bytes.len();
    let malformed = |reason: &str| ParseError::Malformed {
        reason: format!("in the attributes of <{}>: {reason}", e.name().as_ref()),
        position: at,
    };
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    // Most tags have nothing to normalize: one look at the whole tag spares each value one.
    let plain_tag = memchr3(b'&', b'\t', b'\n', bytes).is_none() && memchr(b'\r', bytes).is_none();
    let mut i = 0;
    loop {
        while i < len && is_space(bytes[i]) {
            i += 1;
        }
        if i >= len {
            return Ok(());
        }
        // The name, and where its local part begins (after a namespace prefix).
        let (key_start, mut local_start) = (i, i);
        while i < len && bytes[i] != b'=' && !is_space(bytes[i]) {
            if bytes[i] == b':' {
                local_start = i + 1;
            }
            i += 1;
        }
        let key_end = i;
        while i < len && is_space(bytes[i]) {
            i += 1;
        }
        if i >= len || bytes[i] != b'=' {
            return Err(malformed("an attribute without a value"));
        }
        i += 1;
        while i < len && is_space(bytes[i]) {
            i += 1;
        }
        let quote = match bytes.get(i) {
            Some(q @ (b'"' | b'\'')) => *q,
            Some(_) => return Err(malformed("an attribute value without quotes")),
            None => return Err(malformed("an attribute without a value")),
        };
        let value_start = i + 1;
        let end = value_start
            + memchr(quote, &bytes[value_start..])
                .ok_or_else(|| malformed("an unterminated attribute value"))?;
        i = end + 1;
        let which = Attr::of(&bytes[local_start..key_end]);
        if which == Attr::Other {
            continue;
        }
        // Slicing at ASCII bytes keeps `raw`'s UTF-8 whole.
        let value = &raw[value_start..end];
        if plain_tag
            || !value
                .as_bytes()
                .iter()
                .any(|b| matches!(b, b'&' | b'\t' | b'\n' | b'\r'))
        {
            each(which, value);
        } else {
            let normalized = normalize_attribute(value).map_err(|reason| ParseError::Refused {
                reason: format!("attribute {}: {reason}", &raw[key_start..key_end]),
                position: at,
            })?;
            each(which, &normalized);
        }
    }
}

/// An attribute value as XML reads it: `\r\n`, `\r`, `\n` and `\t` become a space, the five
/// predefined entities and character references are resolved, any other entity is refused.
fn normalize_attribute(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        if c != b'&' {
            if c == b'\r' && rest.starts_with('\n') {
                rest = &rest[1..];
            }
            out.push(' ');
            continue;
        }
        let semi = rest.find(';').ok_or("an entity reference without ';'")?;
        let name = &rest[..semi];
        rest = &rest[semi + 1..];
        if let Some(text) = predefined(name) {
            out.push_str(text);
        } else if let Some(number) = name.strip_prefix('#') {
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16),
                None => number.parse(),
            }
            .map_err(|_| format!("a bad character reference &{name};"))?;
            out.push(
                char::from_u32(code)
                    .filter(|c| *c != '\0')
                    .ok_or_else(|| format!("a bad character reference &{name};"))?,
            );
        } else {
            return Err(format!("a reference to an undefined entity &{name};"));
        }
    }
    out.push_str(rest);
    Ok(out)
}

impl Parser<'_> {
    /// An element opens (and, if `empty`, closes at once). Answers whether that completed the
    /// case in hand (a `<testcase/>`).
    fn open(&mut self, e: &BytesStart<'_>, at: u64, empty: bool) -> Result<bool, ParseError> {
        let local = e.local_name();
        let name = local.as_ref();
        if !self.root_seen {
            self.root_seen = true;
            if name != "testsuites" && name != "testsuite" {
                return Err(ParseError::NotJunit {
                    reason: format!(
                        "the root element is <{name}>, not <testsuites> or <testsuite>"
                    ),
                    position: at,
                });
            }
        }
        let max = self.limits.max_value_bytes;
        if self.case_at.is_some() {
            let case = &mut self.case;
            match name {
                "failure" | "error" if !case.outcome.is_bad() => {
                    case.outcome = if name == "failure" {
                        Outcome::Failed
                    } else {
                        Outcome::Errored
                    };
                    let mut problem = Problem::default();
                    let mut cut = false;
                    attributes(e, at, |attr, value| match attr {
                        Attr::Type => cut |= push_bounded(&mut problem.kind, value, max),
                        Attr::Message => cut |= push_bounded(&mut problem.message, value, max),
                        _ => {}
                    })?;
                    case.truncated |= cut;
                    case.problem = Some(problem);
                    if !empty {
                        self.inside = Inside::ProblemText;
                        self.collecting_at = self.depth;
                    }
                }
                "skipped" => {
                    if !case.outcome.is_bad() {
                        case.outcome = Outcome::Skipped;
                    }
                    case.skip_message.clear();
                    let mut cut = false;
                    attributes(e, at, |attr, value| {
                        if attr == Attr::Message {
                            cut |= push_bounded(&mut case.skip_message, value, max);
                        }
                    })?;
                    case.truncated |= cut;
                    if case.skip_message.is_empty() && !empty {
                        self.inside = Inside::SkipText;
                        self.collecting_at = self.depth;
                    }
                }
                "rerun" | "flakyFailure" | "flakyError" | "rerunFailure" | "rerunError" => {
                    if case.reruns == 0 {
                        let mut cut = false;
                        attributes(e, at, |attr, value| {
                            if attr == Attr::Message {
                                cut |= push_bounded(&mut case.rerun_message, value, max);
                            }
                        })?;
                        case.truncated |= cut;
                    }
                    case.reruns += 1;
                }
                "testcase" => {
                    return Err(ParseError::Malformed {
                        reason: "a <testcase> inside a <testcase>".into(),
                        position: at,
                    })
                }
                _ => {}
            }
            return Ok(false);
        }
        match name {
            "testsuite" | "testsuites" => {
                if name == "testsuite" {
                    self.summary.suites += 1;
                }
                if empty {
                    return Ok(false);
                }
                if self.open_suites == self.suites.len() {
                    self.suites.push((0, String::new(), String::new()));
                }
                let (depth, suite, file) = &mut self.suites[self.open_suites];
                *depth = self.depth;
                suite.clear();
                file.clear();
                attributes(e, at, |attr, value| match attr {
                    Attr::Name => {
                        push_bounded(suite, value, max);
                    }
                    Attr::File => {
                        push_bounded(file, value, max);
                    }
                    _ => {}
                })?;
                self.open_suites += 1;
            }
            "testcase" => {
                let case = &mut self.case;
                case.reset(self.next_index);
                self.next_index += 1;
                if let Some((_, suite, _)) = self.suites[..self.open_suites].last() {
                    push_bounded(&mut case.suite, suite, max);
                }
                let (mut cut, mut skipped_by_status) = (false, false);
                attributes(e, at, |attr, value| match attr {
                    Attr::Name => cut |= push_bounded(&mut case.name, value, max),
                    Attr::Classname => cut |= push_bounded(&mut case.classname, value, max),
                    Attr::File => cut |= push_bounded(&mut case.file, value, max),
                    Attr::Line => case.line = value.trim().parse().ok(),
                    Attr::Time => case.time_s = seconds(value),
                    Attr::Status => {
                        skipped_by_status = ["skipped", "disabled", "notrun", "ignored"]
                            .iter()
                            .any(|s| value.eq_ignore_ascii_case(s))
                    }
                    _ => {}
                })?;
                if case.file.is_empty() {
                    if let Some((_, _, file)) = self.suites[..self.open_suites].last() {
                        push_bounded(&mut case.file, file, max);
                    }
                }
                if skipped_by_status {
                    case.outcome = Outcome::Skipped;
                }
                case.truncated = cut;
                if empty {
                    self.summary.count(case);
                    return Ok(true);
                }
                self.case_at = Some(self.depth);
            }
            _ => {}
        }
        Ok(false)
    }

    /// The element at the current depth closes. Answers whether that completed the case in
    /// hand.
    fn close(&mut self) -> bool {
        if self.depth == self.collecting_at {
            self.inside = Inside::Nothing;
            self.collecting_at = 0;
        }
        if self.open_suites > 0 && self.suites[self.open_suites - 1].0 == self.depth {
            self.open_suites -= 1;
        }
        if self.case_at == Some(self.depth) {
            self.case_at = None;
            self.summary.count(&self.case);
            return true;
        }
        false
    }

    fn text(&mut self, text: &str) {
        if self.case_at.is_none() {
            return;
        }
        let case = &mut self.case;
        let target = match self.inside {
            Inside::Nothing => return,
            Inside::ProblemText => match &mut case.problem {
                Some(p) => &mut p.text,
                None => return,
            },
            Inside::SkipText => &mut case.skip_message,
        };
        if push_bounded(target, text, self.limits.max_text_bytes) {
            case.truncated = true;
        }
    }
}

/// A duration in seconds, as reports write it (`0.123`; `1e-3`, `NaN` and worse happen).
fn seconds(value: &str) -> Option<f64> {
    let value = value.trim();
    // Clinger's fast path, exact: up to 15 digits make an integer an f64 holds exactly, and
    // 10^k is exact for k ≤ 22, so one correctly rounded division is the correctly rounded
    // value — what `parse` answers, at a fraction of its cost (a report has one per case).
    let (int, frac) = match memchr(b'.', value.as_bytes()) {
        Some(dot) => (&value[..dot], &value[dot + 1..]),
        None => (value, ""),
    };
    let digits = int.len() + frac.len();
    if (1..=15).contains(&digits) && int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        let mantissa = int
            .bytes()
            .chain(frac.bytes())
            .fold(0u64, |m, b| m * 10 + u64::from(b - b'0'));
        return Some(mantissa as f64 / POWERS_OF_TEN[frac.len()]);
    }
    value.parse::<f64>().ok().filter(|t| t.is_finite())
}

/// 10^0 ..= 10^15, each exact in an f64.
const POWERS_OF_TEN: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Appends `text` to `target` up to `limit` bytes (at a character boundary); answers whether
/// something was cut.
fn push_bounded(target: &mut String, text: &str, limit: usize) -> bool {
    let room = limit.saturating_sub(target.len());
    if text.len() <= room {
        target.push_str(text);
        return false;
    }
    let mut cut = room;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    target.push_str(&text[..cut]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The fast path answers exactly what `parse` does.
        #[test]
        fn seconds_read_as_rust_parses_them(int in "[0-9]{0,9}", frac in proptest::option::of("[0-9]{0,9}")) {
            let text = match &frac {
                Some(frac) => format!("{int}.{frac}"),
                None => int.clone(),
            };
            let want = text.parse::<f64>().ok().filter(|t| t.is_finite());
            prop_assert_eq!(seconds(&text).map(f64::to_bits), want.map(f64::to_bits), "{}", text);
        }
    }

    #[test]
    fn seconds_past_the_fast_path() {
        assert_eq!(seconds(" 1e-3 "), Some(0.001));
        assert_eq!(seconds("NaN"), None);
        assert_eq!(seconds("inf"), None);
        assert_eq!(seconds("1234567890.1234567"), Some(1234567890.1234567));
        assert_eq!(seconds(""), None);
        assert_eq!(seconds("."), None);
        assert_eq!(seconds("-1.5"), Some(-1.5));
    }
}
