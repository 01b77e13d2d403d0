//! The shapes of the names in keys, paths and URLs: GitHub owners and repositories, job ids,
//! commit SHAs. The gateway, the API and the log fetcher check input against these before it
//! reaches a key, a file path or a URL.

/// A GitHub owner or repository name: 1–100 of `A-Z a-z 0-9 - _ .`, and not `.` or `..` (which
/// would walk out of a directory when the name becomes a path).
pub fn is_repository_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// `owner/repo`, both parts valid.
pub fn is_repository_full_name(s: &str) -> bool {
    s.split_once('/')
        .is_some_and(|(owner, repo)| is_repository_part(owner) && is_repository_part(repo))
}

/// A job (or run) id: a positive integer.
pub fn parse_id(s: &str) -> Option<i64> {
    s.parse().ok().filter(|id| *id > 0)
}

/// A full commit SHA: 40 lowercase or uppercase hex digits.
pub fn is_commit_sha(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_shas() {
        assert!(is_repository_part("pytorch") && is_repository_part("torch-xpu-ops.v2"));
        assert!(is_repository_part("a.b_c") && is_repository_part("test-infra"));
        for bad in ["", ".", "..", "a/b", "a b", "x'y", &"a".repeat(101)] {
            assert!(!is_repository_part(bad), "{bad:?}");
        }
        assert!(is_repository_full_name("pytorch/pytorch"));
        assert!(!is_repository_full_name("pytorch") && !is_repository_full_name("a/../b"));
        assert_eq!(parse_id("42"), Some(42));
        assert_eq!(
            (parse_id("-3"), parse_id("0"), parse_id("x")),
            (None, None, None)
        );
        assert!(is_commit_sha("3484a3fb816e0859fd6e1cea078d76385ff50625"));
        assert!(!is_commit_sha("3484a3fb") && !is_commit_sha(&"g".repeat(40)));
    }
}
