//! What is not a report is refused with the reason and the byte where it was found, and what
//! is too big is cut. Plus a property test: any generated report reads the same as a DOM
//! parse. (Memory bounds are measured in `memory.rs`.)

use hudstream_junit::{parse, Limits, Outcome, ParseError, Stop};
use proptest::prelude::*;

fn refusal(doc: &str) -> ParseError {
    match parse(doc.as_bytes(), &Limits::default(), |_| Ok::<(), ()>(())) {
        Err(Stop::Report(e)) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_page_that_is_not_a_report_is_refused_at_its_root() {
    let err = refusal("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head></html>");
    assert!(matches!(err, ParseError::NotJunit { .. }), "{err}");
    assert!(err.to_string().contains("<html>"), "{err}");
    assert_eq!(err.position(), 16, "where <html> begins");
}

#[test]
fn malformed_xml_is_refused_with_its_position() {
    let truncated = "<testsuite><testcase name=\"a\"><failure>boom";
    let err = refusal(truncated);
    assert!(matches!(err, ParseError::Malformed { .. }), "{err}");
    let crossed = "<testsuite><testcase name=\"a\"></testsuite></testcase>";
    let err = refusal(crossed);
    assert!(err.to_string().contains("at byte"), "{err}");
    assert!(err.position() >= 30, "{err}");
    let err = refusal("<testsuite><testcase name=\"&nbsp;\"/></testsuite>");
    assert!(err.to_string().contains("nbsp"), "{err}");
    let err = refusal("<testsuite>&undefined;</testsuite>");
    assert!(
        err.to_string().contains("undefined entity &undefined;"),
        "{err}"
    );
    let err = refusal("");
    assert!(matches!(err, ParseError::NotJunit { .. }), "{err}");
}

#[test]
fn a_tag_longer_than_a_node_may_be_is_refused() {
    let doc = format!(
        "<testsuite><testcase name=\"{}\"/></testsuite>",
        "n".repeat(2 << 20)
    );
    let err = refusal(&doc);
    assert!(matches!(err, ParseError::Refused { .. }), "{err}");
    assert!(
        err.to_string().contains("a tag of over 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn nesting_past_the_limit_is_refused() {
    let deep = format!(
        "{}{}",
        "<testsuite>".repeat(100),
        "</testsuite>".repeat(100)
    );
    let err = refusal(&deep);
    assert!(err.to_string().contains("nested deeper than 64"), "{err}");
}

#[test]
fn long_values_are_cut_and_the_case_flagged() {
    let doc = format!(
        "<testsuite><testcase name=\"{}\" classname=\"c\"><failure message=\"m\">{}</failure><system-out>{}</system-out></testcase></testsuite>",
        "n".repeat(5000),
        "é".repeat(20_000),
        "o".repeat(3 << 20)
    );
    let mut cases = Vec::new();
    parse(doc.as_bytes(), &Limits::default(), |c| {
        cases.push(c.clone());
        Ok::<(), ()>(())
    })
    .expect("parses");
    let case = &cases[0];
    assert!(case.truncated);
    assert_eq!(case.name.len(), 2048);
    let text = &case.problem.as_ref().expect("failure").text;
    assert!(
        text.len() <= 16 * 1024 && text.len() > 16 * 1024 - 4,
        "{}",
        text.len()
    );
    assert_eq!(case.outcome, Outcome::Failed);
}

/// A generated test case, written as XML by [`write`].
#[derive(Debug, Clone)]
struct Generated {
    classname: String,
    name: String,
    outcome: u8,
    reruns: u8,
    text: String,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn write(suites: &[Vec<Generated>], nested: bool) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>");
    for (i, cases) in suites.iter().enumerate() {
        out.push_str(&format!("<testsuite name=\"s{i}\">"));
        if nested {
            out.push_str("<testsuite name=\"inner\">");
        }
        for c in cases {
            out.push_str(&format!(
                "<testcase classname=\"{}\" name=\"{}\" time=\"0.5\">",
                escape(&c.classname),
                escape(&c.name)
            ));
            match c.outcome {
                1 => out.push_str(&format!(
                    "<failure message=\"{}\">{}</failure>",
                    escape(&c.text),
                    escape(&c.text)
                )),
                2 => out.push_str(&format!(
                    "<error type=\"E\"><![CDATA[{}]]></error>",
                    c.text.replace("]]>", "")
                )),
                3 => out.push_str("<skipped/>"),
                _ => {}
            }
            for _ in 0..c.reruns {
                out.push_str("<rerun message=\"r\"/>");
            }
            out.push_str("<system-out>out &amp; about</system-out></testcase>");
        }
        if nested {
            out.push_str("</testsuite>");
        }
        out.push_str("</testsuite>");
    }
    out.push_str("</testsuites>");
    out
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        "[a-zA-Z0-9_.<>&\"' ]{0,12}",
        "[a-zA-Z0-9_\\[\\]<>&\" ]{1,12}",
        0u8..4,
        0u8..3,
        "[a-z <>&\n]{0,40}",
    )
        .prop_map(|(classname, name, outcome, reruns, text)| Generated {
            classname,
            name,
            outcome,
            reruns,
            text,
        })
}

proptest! {
    #[test]
    fn any_generated_report_reads_like_its_dom(
        suites in proptest::collection::vec(proptest::collection::vec(generated(), 0..6), 0..4),
        nested in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let xml = write(&suites, nested);
        let mut cases = Vec::new();
        let input = std::io::BufReader::with_capacity(chunk, xml.as_bytes());
        parse(input, &Limits::default(), |c| { cases.push(c.clone()); Ok::<(), ()>(()) }).expect("parses");
        let doc = roxmltree::Document::parse(&xml).expect("dom");
        let dom: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
        prop_assert_eq!(cases.len(), dom.len());
        for (ours, theirs) in cases.iter().zip(&dom) {
            prop_assert_eq!(ours.name.as_str(), theirs.attribute("name").unwrap_or(""));
            prop_assert_eq!(ours.classname.as_str(), theirs.attribute("classname").unwrap_or(""));
            let first = theirs.children().find(|c| c.is_element() && !c.has_tag_name("system-out") && !c.has_tag_name("rerun"));
            let want = match first.map(|c| c.tag_name().name()) {
                Some("failure") => Outcome::Failed,
                Some("error") => Outcome::Errored,
                Some("skipped") => Outcome::Skipped,
                _ => Outcome::Passed,
            };
            prop_assert_eq!(ours.outcome, want);
            let problem_text = first
                .filter(|c| c.has_tag_name("failure") || c.has_tag_name("error"))
                .map(|c| c.text().unwrap_or("").to_string());
            prop_assert_eq!(ours.problem.as_ref().map(|p| p.text.clone()), problem_text);
            prop_assert_eq!(
                ours.reruns as usize,
                theirs.children().filter(|c| c.has_tag_name("rerun")).count()
            );
        }
    }
}

/// A node's content for the cutting property: multi-byte characters, and the bytes a cut must
/// not leave dangling (`-` before a comment's end, `]` before a CDATA section's).
fn node_content() -> impl Strategy<Value = String> {
    "[ab\u{e9}\u{1F600}\\-\\]>]{0,120}"
}

proptest! {
    #[test]
    fn cutting_long_nodes_keeps_the_report_readable(
        texts in proptest::collection::vec((0u8..3, node_content()), 1..8),
        max in 32usize..96,
        chunk in 1usize..64,
    ) {
        let mut xml = String::from("<testsuite>");
        for (i, (kind, content)) in texts.iter().enumerate() {
            xml.push_str(&format!("<testcase name=\"n{i}\"><failure>"));
            match kind {
                0 => xml.push_str(&escape(content)),
                1 => {
                    // A CDATA section may not hold its terminator.
                    let mut cdata = content.clone();
                    while cdata.contains("]]>") {
                        cdata = cdata.replace("]]>", "]>");
                    }
                    xml.push_str(&format!("<![CDATA[{cdata}]]>"));
                }
                _ => {
                    // A comment may hold no `--` and may not end in `-`.
                    let comment = content.replace('-', "a-a");
                    xml.push_str(&format!("x<!--{comment}-->y"));
                }
            }
            xml.push_str("</failure></testcase>");
        }
        xml.push_str("</testsuite>");
        let doc = roxmltree::Document::parse(&xml).expect("the generated report is well-formed");
        let limits = Limits { max_node_bytes: max, ..Limits::default() };
        let mut cases = Vec::new();
        let input = std::io::BufReader::with_capacity(chunk, xml.as_bytes());
        parse(input, &limits, |c| { cases.push(c.clone()); Ok::<(), ()>(()) })
            .expect("cut nodes leave the report well-formed");
        let dom: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("failure")).collect();
        prop_assert_eq!(cases.len(), dom.len());
        for (i, (ours, theirs)) in cases.iter().zip(&dom).enumerate() {
            prop_assert_eq!(&ours.name, &format!("n{i}"));
            let full: String = theirs.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect();
            let kept = &ours.problem.as_ref().expect("a failure").text;
            prop_assert!(
                full.starts_with(kept.as_str()),
                "kept {:?} is not a prefix of {:?}", kept, full
            );
        }
    }
}
