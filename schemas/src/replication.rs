//! `hudstream.Replication` (topic `hud.replication.v1`): when a job or a run was last written by
//! a webhook, and by GitHub's API (the reconciler or a backfill) — WebhookDB's
//! `last_replicated_via_webhook_at` / `last_replicated_via_api_at`, so a stale row shows.
//! One record per raw job or run delivery, from its `received-at` and `hudstream-origin` headers.

use serde::{Deserialize, Serialize};

/// `via` of a delivery the gateway received from GitHub.
pub const VIA_WEBHOOK: &str = "webhook";
/// `via` of a synthetic delivery made from GitHub's API (reconciler, backfill).
pub const VIA_API: &str = "api";

/// See `avro/replication.v1.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replication {
    /// The moment itself (epoch ms): the newest write of each kind wins.
    pub version: i64,
    pub repository_full_name: String,
    /// `job` or `run`.
    pub kind: String,
    pub id: i64,
    /// [`VIA_WEBHOOK`] or [`VIA_API`].
    pub via: String,
    /// The `hudstream-origin` header (`reconciler`, `backfill`); empty for webhooks.
    pub origin: String,
    /// When the delivery was received or made (epoch ms).
    pub at: i64,
}

crate::record_type! {
    Replication {
        name: "hudstream.Replication",
        topic: "hud.replication.v1",
        key: "{owner}/{repo}/{kind}/{id}/{via}" => |r| format!("{}/{}/{}/{}", r.repository_full_name, r.kind, r.id, r.via),
        schemas: ["../avro/replication.v1.avsc"],
    }
}
