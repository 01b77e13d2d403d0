//! `hudstream.Commit` (topic `hud.commit.v1`) and `hudstream.RefUpdate` (topic
//! `hud.ref_update.v1`), both derived from `push` deliveries.

use serde::{Deserialize, Serialize};

use crate::wire::RecordType;

/// A commit as pushed to a ref. See `avro/commit.v*.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    pub version: i64,
    pub repository_full_name: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub branch: String,
    pub sha: String,
    pub is_head: bool,
    pub distinct: bool,
    pub message: String,
    pub timestamp: Option<i64>,
    pub pushed_at: Option<i64>,
    pub author_name: String,
    pub author_email: String,
    pub author_username: String,
    pub committer_name: String,
    pub committer_email: String,
    pub url: String,
}

impl Commit {
    /// `{owner}/{repo}/{ref}/{sha}`.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.repository_full_name, self.git_ref, self.sha
        )
    }
}

impl RecordType for Commit {
    const NAME: &'static str = "hudstream.Commit";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/commit.v1.avsc")];
}

/// A ref's move. See `avro/ref_update.v*.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefUpdate {
    pub version: i64,
    pub repository_full_name: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub before: String,
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
    pub commit_count: i64,
    pub pusher_name: String,
    pub pushed_at: Option<i64>,
}

impl RefUpdate {
    /// `{owner}/{repo}/{ref}`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.repository_full_name, self.git_ref)
    }
}

impl RecordType for RefUpdate {
    const NAME: &'static str = "hudstream.RefUpdate";
    const SCHEMAS: &'static [&'static str] = &[include_str!("../avro/ref_update.v1.avsc")];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{check_backward_compatible, Codec};

    #[test]
    fn the_ref_field_keeps_its_avro_name_and_every_version_reads_the_older_ones() {
        let update = RefUpdate {
            version: 1,
            repository_full_name: "o/r".into(),
            git_ref: "refs/heads/main".into(),
            before: "a".into(),
            after: "b".into(),
            created: false,
            deleted: false,
            forced: true,
            commit_count: 2,
            pusher_name: "p".into(),
            pushed_at: Some(5),
        };
        let codec = Codec::<RefUpdate>::new().expect("schemas parse");
        assert_eq!(
            codec
                .decode(&codec.encode(&update).expect("encodes"))
                .expect("decodes"),
            update
        );
        check_backward_compatible::<Commit>().expect("compatible");
        check_backward_compatible::<RefUpdate>().expect("compatible");
    }
}
