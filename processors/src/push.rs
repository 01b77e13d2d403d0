//! `github.push` → `hud.commit.v1` (every commit of the push, with its ref and a head marker)
//! and `hud.ref_update.v1` (the ref's move, also for deletions that carry no commits).
//!
//! Versions: commits — `pushed_at`, then the head marker, then a content hash; ref updates —
//! `pushed_at`, then a content hash. A commit never changes, so redeliveries and re-pushes of
//! the same (ref, sha) converge on one record.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use hudstream_schemas::wire::{Outputs, RecordSink};

use hudstream_schemas::push::{Commit, RefUpdate};
use hudstream_schemas::topics::GITHUB_PUSH;

use crate::timestamp::{parse_millis, BadTimestamp};
use hudstream_schemas::version::{pack, seconds};

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("not a push delivery: {0}")]
    Shape(String),
    #[error("push has no repository.full_name")]
    NoRepository,
    #[error("push has no ref")]
    NoRef,
    #[error(transparent)]
    Timestamp(#[from] BadTimestamp),
}

/// `repository.pushed_at` is Unix seconds in github.com pushes and may be an RFC 3339 string.
#[derive(Debug, Default)]
struct PushedAt(Option<String>);

impl<'de> Deserialize<'de> for PushedAt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PushedAt;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("Unix seconds or an RFC 3339 timestamp")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PushedAt, E> {
                Ok(PushedAt(Some(format!("@{v}"))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PushedAt, E> {
                Ok(PushedAt(Some(format!("@{v}"))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PushedAt, E> {
                Ok(PushedAt(Some(format!("@{}", v as i64))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PushedAt, E> {
                Ok(PushedAt(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<PushedAt, E> {
                Ok(PushedAt(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<PushedAt, E> {
                Ok(PushedAt(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl PushedAt {
    fn millis(&self) -> Result<Option<i64>, BadTimestamp> {
        match self.0.as_deref() {
            Some(text) if text.starts_with('@') => Ok(text[1..]
                .parse::<i64>()
                .ok()
                .filter(|s| *s > 0)
                .map(|s| s * 1000)),
            other => parse_millis("repository.pushed_at", other),
        }
    }
}

#[derive(Deserialize)]
struct Delivery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    before: Option<String>,
    after: Option<String>,
    created: Option<bool>,
    deleted: Option<bool>,
    forced: Option<bool>,
    commits: Option<Vec<RawCommit>>,
    head_commit: Option<RawCommit>,
    pusher: Option<Person>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: Option<String>,
    #[serde(default)]
    pushed_at: PushedAt,
}

#[derive(Deserialize, Default)]
struct Person {
    name: Option<String>,
    email: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct RawCommit {
    id: String,
    distinct: Option<bool>,
    message: Option<String>,
    timestamp: Option<String>,
    url: Option<String>,
    author: Option<Person>,
    committer: Option<Person>,
}

/// What one push derives.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub commits: Vec<Commit>,
    pub ref_update: RefUpdate,
}

/// Normalizes one raw `push` delivery body. Pure: same bytes, same records.
pub fn normalize(payload: &[u8]) -> Result<Derived, NormalizeError> {
    let d: Delivery =
        serde_json::from_slice(payload).map_err(|e| NormalizeError::Shape(e.to_string()))?;
    let repository = d.repository.ok_or(NormalizeError::NoRepository)?;
    let repository_full_name = repository
        .full_name
        .filter(|n| n.contains('/'))
        .ok_or(NormalizeError::NoRepository)?;
    let pushed_at = repository.pushed_at.millis()?;
    let git_ref = d
        .git_ref
        .filter(|r| !r.is_empty())
        .ok_or(NormalizeError::NoRef)?;
    let branch = git_ref
        .strip_prefix("refs/heads/")
        .unwrap_or("")
        .to_string();
    let after = d.after.unwrap_or_default();
    // A head commit can be missing from `commits` (e.g. a new branch at an existing commit).
    let mut raw_commits = d.commits.unwrap_or_default();
    if let Some(head) = d.head_commit {
        if !raw_commits.iter().any(|c| c.id == head.id) {
            raw_commits.push(head);
        }
    }
    let mut commits = Vec::with_capacity(raw_commits.len());
    for (i, c) in raw_commits.into_iter().enumerate() {
        let author = c.author.unwrap_or_default();
        let committer = c.committer.unwrap_or_default();
        let mut commit = Commit {
            version: 0,
            repository_full_name: repository_full_name.clone(),
            git_ref: git_ref.clone(),
            branch: branch.clone(),
            is_head: c.id == after,
            sha: c.id,
            distinct: c.distinct.unwrap_or(true),
            message: c.message.unwrap_or_default(),
            timestamp: parse_millis(&format!("commits[{i}].timestamp"), c.timestamp.as_deref())?,
            pushed_at,
            author_name: author.name.unwrap_or_default(),
            author_email: author.email.unwrap_or_default(),
            author_username: author.username.unwrap_or_default(),
            committer_name: committer.name.unwrap_or_default(),
            committer_email: committer.email.unwrap_or_default(),
            url: c.url.unwrap_or_default(),
        };
        commit.version = pack(
            &[(seconds(pushed_at), 32), (commit.is_head as u64, 1)],
            &commit,
        );
        commits.push(commit);
    }
    let mut ref_update = RefUpdate {
        version: 0,
        repository_full_name,
        git_ref,
        before: d.before.unwrap_or_default(),
        after,
        created: d.created.unwrap_or(false),
        deleted: d.deleted.unwrap_or(false),
        forced: d.forced.unwrap_or(false),
        commit_count: commits.len() as i64,
        pusher_name: d
            .pusher
            .and_then(|p| p.name.or(p.username).or(p.email))
            .unwrap_or_default(),
        pushed_at,
    };
    ref_update.version = pack(&[(seconds(pushed_at), 32)], &ref_update);
    Ok(Derived {
        commits,
        ref_update,
    })
}

impl Outputs for Derived {
    fn each<S: RecordSink>(self, sink: &mut S) {
        (self.commits, self.ref_update).each(sink);
    }
}

crate::processor! {
    /// The `process.push` stage.
    pub struct PushProcessor {
        stage: "process.push",
        input: GITHUB_PUSH,
        derive: normalize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hudstream_ingest::fixtures;
    use hudstream_schemas::wire::RecordType;
    use proptest::prelude::*;

    fn deliveries() -> Vec<&'static fixtures::Delivery> {
        fixtures::of_event("push")
    }

    fn by_name(name: &str) -> Derived {
        normalize(&fixtures::named(name).body).expect("normalizes")
    }

    #[test]
    fn every_real_push_fixture_normalizes_including_ghes_and_github_ae() {
        let all = deliveries();
        assert_eq!(all.len(), 9);
        for d in all {
            let derived =
                normalize(&d.body).unwrap_or_else(|e| panic!("{}: {e}", d.path.display()));
            assert!(derived.ref_update.version > 0);
            assert_eq!(
                derived.ref_update.commit_count as usize,
                derived.commits.len()
            );
        }
    }

    #[test]
    fn a_new_branch_yields_its_head_commit_with_branch_and_author() {
        let d = by_name("push/with-new-branch.payload.json");
        assert_eq!(d.commits.len(), 1);
        let c = &d.commits[0];
        assert_eq!(c.sha, "6113728f27ae82c7b1a177c8d03f9e96e0adf246");
        assert!(c.is_head && c.distinct);
        assert_eq!(
            (c.git_ref.as_str(), c.branch.as_str()),
            ("refs/heads/master", "master")
        );
        assert_eq!(c.author_username, "Codertocat");
        assert_eq!(c.pushed_at, Some(1_557_933_657_000));
        assert_eq!(
            c.key(),
            "Codertocat/Hello-World/refs/heads/master/6113728f27ae82c7b1a177c8d03f9e96e0adf246"
        );
        assert!(d.ref_update.created && !d.ref_update.deleted);
    }

    #[test]
    fn a_tag_deletion_has_no_commits_but_still_moves_the_ref() {
        let d = by_name("push/payload.json");
        assert!(d.commits.is_empty());
        assert!(d.ref_update.deleted);
        assert_eq!(
            d.ref_update.after,
            "0000000000000000000000000000000000000000"
        );
        assert_eq!(
            d.ref_update.key(),
            "Codertocat/Hello-World/refs/tags/simple-tag"
        );
    }

    #[test]
    fn pushed_at_is_read_as_seconds_or_as_a_timestamp() {
        let as_number = br#"{"ref": "refs/heads/x", "after": "a", "repository": {"full_name": "o/r", "pushed_at": 1557933657}}"#;
        let as_text = br#"{"ref": "refs/heads/x", "after": "a", "repository": {"full_name": "o/r", "pushed_at": "2019-05-15T15:20:57Z"}}"#;
        assert_eq!(
            normalize(as_number).expect("number").ref_update.pushed_at,
            Some(1_557_933_657_000)
        );
        assert_eq!(
            normalize(as_text).expect("text").ref_update.pushed_at,
            Some(1_557_933_657_000)
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = normalize(&bytes);
        }
    }
}
