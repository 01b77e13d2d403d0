//! Failure signatures: which failures are "the same failure".
//!
//! A failed job's signature is derived from its log verdict — the winning rule, its captures and
//! the failure line — with everything that varies between two runs of one failure masked, as
//! LUCI Analysis masks failure reasons before clustering them: numbers, hexadecimal and
//! base64-like runs become `%`, temporary paths become `<tmp>`. Two runs of one failure with
//! different line numbers, addresses, timings, seeds or temporary folders share a signature;
//! different rules, captures or messages do not.
//!
//! The signature is computed where the verdict is made (the classifier stage) and travels in
//! the `JobClassification` record, so a replay reproduces it and other consumers of the topic
//! read it without re-implementing the masking. It is stored: changing the masking changes
//! every signature, so [`SCHEME`] names the rules and is part of the hash.
//!
//! A failure's tests are matched by their test ids (`test_report::test_id` of file, class and
//! name), which the test tables already hold: a job that failed test T is "similar" to every
//! other job that failed T.

use std::sync::OnceLock;

use regex::Regex;
use sha2::{Digest, Sha256};

/// The masking rules' name; part of every signature's hash.
pub const SCHEME: &str = "mask-v1";

/// What a masked run is replaced with (LUCI's `%`).
const MASK: &str = "%";
/// What a temporary path is replaced with.
const TMP: &str = "<tmp>";

struct Masks {
    tmp_path: Regex,
    uuid: Regex,
    address: Regex,
    long_token: Regex,
    number: Regex,
}

fn masks() -> &'static Masks {
    static MASKS: OnceLock<Masks> = OnceLock::new();
    MASKS.get_or_init(|| Masks {
        // /tmp/…, /var/tmp/…, macOS's /var/folders/…, Windows' …\Temp\…: the whole path.
        tmp_path: Regex::new(
            r#"(?i)(?:/private)?/(?:var/)?(?:tmp|folders)/[^\s'":,;)\]]*|[a-z]:\\[^\s'":;]*?\\temp\\[^\s'":,;)\]]*"#,
        )
        .expect("tmp path pattern"),
        uuid: Regex::new(
            r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        )
        .expect("uuid pattern"),
        address: Regex::new(r"(?i)\b0x[0-9a-f]+\b").expect("address pattern"),
        // Hashes, shas, base64 blobs: runs of 8+ letters and digits (a path's segments are
        // tokens of their own, so `gh/user/544/orig` keeps its shape).
        long_token: Regex::new(r"[A-Za-z0-9+=_-]{8,}").expect("token pattern"),
        // A number on its own (not inside an identifier like `conv2d` or `float32`), with its
        // fraction, exponent and a short unit (`0.25s`, `12ms`, `20.00`, `1e-05`).
        number: Regex::new(r"(?:^|\b|[+-])[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[a-zA-Z]{0,3}\b")
            .expect("number pattern"),
    })
}

/// True for a run that looks generated rather than written: hex of 8+ with a digit (shas,
/// hashes, ids), or a base64-like run of 20+ mixing digits, upper and lower case without word
/// separators. The test is on the run's shape only — never on how many digits it happens to
/// have — so two random blobs are both masked.
fn is_generated(token: &str) -> bool {
    let has_digit = token.bytes().any(|b| b.is_ascii_digit());
    if !has_digit {
        return false;
    }
    if token.len() >= 8 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return true;
    }
    token.len() >= 20
        && !token.contains(['_', '-'])
        && token.bytes().any(|b| b.is_ascii_lowercase())
        && token.bytes().any(|b| b.is_ascii_uppercase())
}

/// `text` with what varies between runs of one failure masked.
pub fn mask(text: &str) -> String {
    let m = masks();
    let text = m.tmp_path.replace_all(text, TMP);
    let text = m.uuid.replace_all(&text, MASK);
    let text = m.address.replace_all(&text, MASK);
    let text = m.long_token.replace_all(&text, |c: &regex::Captures<'_>| {
        let token = &c[0];
        if is_generated(token) {
            MASK.to_string()
        } else {
            token.to_string()
        }
    });
    let text = m.number.replace_all(&text, |c: &regex::Captures<'_>| {
        // Keep a leading sign's context readable: `-%` is still "a negative number".
        let found = &c[0];
        let sign = found.chars().next().filter(|c| *c == '+' || *c == '-');
        match sign {
            Some(s) => format!("{s}{MASK}"),
            None => MASK.to_string(),
        }
    });
    collapse_masks(text.trim())
}

/// `%.%`, `%:%`, `%/%` and `%%` runs of masks are one varying value; collapse them so `1.2.3`
/// and `10.20` mask alike.
fn collapse_masks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '%' {
            loop {
                let mut look = chars.clone();
                match (look.next(), look.next()) {
                    (Some('.' | ':' | ',' | '/'), Some('%')) => {
                        chars.next();
                        chars.next();
                    }
                    (Some('%'), _) => {
                        chars.next();
                    }
                    _ => break,
                }
            }
        }
    }
    out
}

/// A failure's pattern: its line masked (LUCI's "failure reason" cluster pattern).
pub fn pattern(line: &str) -> String {
    mask(line)
}

/// The signature of a log verdict: `rule`, masked `captures` and masked `line`, hashed. Empty
/// when there is nothing to sign (no rule matched).
pub fn of_verdict(rule: &str, captures: &[String], line: &str) -> String {
    if rule.is_empty() && line.is_empty() && captures.is_empty() {
        return String::new();
    }
    let mut hasher = Sha256::new();
    hasher.update(SCHEME.as_bytes());
    hasher.update([0x1f]);
    hasher.update(rule.as_bytes());
    for capture in captures {
        hasher.update([0x1e]);
        hasher.update(mask(capture).as_bytes());
    }
    hasher.update([0x1f]);
    hasher.update(pattern(line).as_bytes());
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn what_varies_between_runs_is_masked() {
        let cases = [
            (
                "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 14.76 GiB total capacity)",
                "RuntimeError: CUDA out of memory. Tried to allocate % MiB (GPU %; % GiB total capacity)",
            ),
            (
                "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/tmpa8x_3k2f/model.pt'",
                "FileNotFoundError: [Errno %] No such file or directory: '<tmp>'",
            ),
            (
                "Segmentation fault at 0x7f3a2b1c0000 in thread 140234",
                "Segmentation fault at % in thread %",
            ),
            (
                "fatal: reference is not a tree: 3f2a1c0d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49",
                "fatal: reference is not a tree: %",
            ),
            (
                "test_conv2d_float32 took 12.5s, expected < 10s",
                "test_conv2d_float32 took %, expected < %",
            ),
        ];
        for (line, masked) in cases {
            assert_eq!(mask(line), masked, "masking {line:?}");
        }
    }

    #[test]
    fn random_blobs_mask_alike_whatever_their_digits() {
        assert_eq!(
            mask("token aGVsbG8gd29ybGQhIEhlbGxvIQ expired"),
            mask("token ZxQwRtYuIoPaSdFgHjK9LzXcVbNm expired")
        );
        assert_eq!(
            mask("make the changes on origin/gh/williamwen42/544/orig"),
            mask("make the changes on origin/gh/williamwen42/3811/orig")
        );
    }

    #[test]
    fn identifiers_keep_their_digits() {
        assert_eq!(
            mask("FAILED test/test_ops.py::TestCommonCUDA::test_out_addmm_cuda_float64"),
            "FAILED test/test_ops.py::TestCommonCUDA::test_out_addmm_cuda_float64"
        );
        assert_ne!(
            of_verdict(
                "pytest failure",
                &["test_conv1d".into()],
                "FAILED test_conv1d"
            ),
            of_verdict(
                "pytest failure",
                &["test_conv2d".into()],
                "FAILED test_conv2d"
            ),
        );
    }

    #[test]
    fn two_runs_of_one_failure_share_a_signature_and_different_failures_do_not() {
        let a = of_verdict(
            "python unittest error",
            &["AssertionError: Tensor-likes are not close!".into()],
            "AssertionError: Mismatched elements: 3 / 100 (3.0%) at 0x55d1c2a0 in /tmp/pytest-of-root/pytest-12/test_x0",
        );
        let b = of_verdict(
            "python unittest error",
            &["AssertionError: Tensor-likes are not close!".into()],
            "AssertionError: Mismatched elements: 17 / 100 (17.0%) at 0x7ffe01 in /tmp/pytest-of-root/pytest-97/test_x0",
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 16);
        let other_rule = of_verdict(
            "pytest failure",
            &["AssertionError: Tensor-likes are not close!".into()],
            "AssertionError: Mismatched elements: 3 / 100 (3.0%)",
        );
        assert_ne!(a, other_rule);
        assert_eq!(of_verdict("", &[], ""), "");
    }

    proptest! {
        #[test]
        fn masking_is_idempotent_and_numbers_never_survive(
            words in proptest::collection::vec("[a-z]{1,8}", 1..6),
            numbers in proptest::collection::vec(0u64..1_000_000_000, 1..6),
        ) {
            let line: Vec<String> = words.iter().zip(numbers.iter().cycle())
                .map(|(w, n)| format!("{w} {n}")).collect();
            let line = line.join(" ");
            let masked = mask(&line);
            prop_assert_eq!(mask(&masked), masked.clone());
            prop_assert!(!masked.bytes().any(|b| b.is_ascii_digit()), "{} → {}", line, masked);
        }

        #[test]
        fn lines_that_differ_only_in_numbers_share_a_signature(
            a in 0u64..1_000_000, b in 0u64..1_000_000, f in 0.0f64..1000.0,
        ) {
            let first = of_verdict("r", &[], &format!("error at step {a} after {f:.3}s, rank {b}"));
            let second = of_verdict("r", &[], &format!("error at step {b} after {:.1}s, rank {a}", f * 2.0));
            prop_assert_eq!(first, second);
        }
    }
}
