//! `hudstream.Commit` (topic `hud.commit.v1`) and `hudstream.RefUpdate` (topic
//! `hud.ref_update.v1`), both derived from `push` deliveries.

use serde::{Deserialize, Serialize};

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

crate::record_type! {
    Commit {
        name: "hudstream.Commit",
        topic: "hud.commit.v1",
        key: "{owner}/{repo}/{ref}/{sha}" => |r| format!("{}/{}/{}", r.repository_full_name, r.git_ref, r.sha),
        schemas: ["../avro/commit.v1.avsc"],
    }
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

crate::record_type! {
    RefUpdate {
        name: "hudstream.RefUpdate",
        topic: "hud.ref_update.v1",
        key: "{owner}/{repo}/{ref}" => |r| format!("{}/{}", r.repository_full_name, r.git_ref),
        schemas: ["../avro/ref_update.v1.avsc"],
    }
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
