//! The Dr.CI poster: one comment on each pull request with recent job activity, saying which
//! of its failures are its own — torchci's Dr.CI comment, edited in place when the class of
//! any job of the PR's head changes.
//!
//! A pass lists the PRs whose jobs or log verdicts were written in the last
//! `drci.window_minutes` (`api/queries/recent_pull_requests.sql`), computes each PR's Dr.CI
//! answer with the read API's own function (`hudstream_api::drci`), and compares the head and
//! the class of every job with what it last posted. Only on a change does it talk to GitHub:
//! it finds its comment (the first one starting with the marker, written by `drci.bot_login`
//! when set), edits it if its text differs, or creates it. After a restart the first pass
//! finds the comment again and leaves it alone when the text is the same, so a restart costs
//! one read per active PR and no edit.
//!
//! GitHub is asked through the one client (`hudstream_github`), with its rate-limit waits and
//! retries; a PR whose comment could not be written is tried again next pass.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use hudstream_api::drci::{drci, Drci};
use hudstream_api::drci_comment::{render, COMMENT_START};
use hudstream_api::queries::{fetch, RECENT_PULL_REQUESTS};
use hudstream_github::{GitHub, JsonAnswer};
use hudstream_runtime::clickhouse::{ClickHouse, Param};
use hudstream_runtime::config::DrciConfig;
use hudstream_runtime::shutdown::CancellationToken;

pub const STAGE: &str = "drci";

/// A row of `recent_pull_requests`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct RecentRow {
    repository: String,
    number: i64,
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// PRs with recent activity looked at.
    pub pull_requests: usize,
    /// Comments created.
    pub created: usize,
    /// Comments edited.
    pub edited: usize,
    /// PRs whose classes had not changed since the last comment (nothing asked of GitHub), or
    /// whose comment already said the same.
    pub unchanged: usize,
    /// PRs that could not be computed or commented on (tried again next pass).
    pub failed: usize,
}

/// What a post would do (`--dry-run` prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Post {
    Create,
    Edit { comment_id: i64 },
    Same,
}

/// The poster and what it last posted.
pub struct DrciPoster {
    clickhouse: ClickHouse,
    github: GitHub,
    config: DrciConfig,
    /// (repository, number) → fingerprint of the head and every job's class last posted.
    posted: HashMap<(String, i64), String>,
}

/// The head and every job's class: what a comment is about. Reasons may change (one more
/// similar failure seen) without a new comment.
pub fn fingerprint(answer: &Drci) -> String {
    let mut hasher = Sha256::new();
    if let Some(head) = answer
        .heads
        .iter()
        .find(|h| h.is_head)
        .or(answer.heads.first())
    {
        hasher.update(head.sha.as_bytes());
        let mut classes: Vec<(i64, &str)> =
            head.jobs.iter().map(|j| (j.id, j.class.as_str())).collect();
        classes.sort();
        for (id, class) in classes {
            hasher.update(format!("\n{id} {class}").as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

impl DrciPoster {
    pub fn new(clickhouse: ClickHouse, github: GitHub, config: DrciConfig) -> Self {
        DrciPoster {
            clickhouse,
            github,
            config,
            posted: HashMap::new(),
        }
    }

    /// One pass; with `dry_run`, GitHub is only read, never written, and nothing is
    /// remembered as posted.
    pub async fn pass(&mut self, dry_run: bool) -> anyhow::Result<PassReport> {
        let recent: Vec<RecentRow> = fetch(
            &self.clickhouse,
            &RECENT_PULL_REQUESTS,
            &[
                (
                    "seconds",
                    Param::UInt(self.config.window_minutes.max(1) * 60),
                ),
                (
                    "repositories",
                    Param::StrArray(self.config.repositories.clone()),
                ),
                (
                    "page_size",
                    Param::UInt(self.config.max_pull_requests_per_pass.max(1) as u64),
                ),
            ],
        )
        .await
        .map_err(|e| anyhow::anyhow!("listing the PRs with recent activity: {e}"))?;
        let mut report = PassReport {
            pull_requests: recent.len(),
            ..PassReport::default()
        };
        for pr in recent {
            match self.post(&pr.repository, pr.number, dry_run).await {
                Ok(Some(Post::Create)) => report.created += 1,
                Ok(Some(Post::Edit { .. })) => report.edited += 1,
                Ok(Some(Post::Same)) | Ok(None) => report.unchanged += 1,
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(repository = %pr.repository, number = pr.number, error = %e, "Dr.CI comment not posted; next pass tries again");
                }
            }
        }
        for (result, n) in [
            ("created", report.created),
            ("edited", report.edited),
            ("unchanged", report.unchanged),
            ("failed", report.failed),
        ] {
            metrics::counter!("hudstream_drci_comments_total", "result" => result)
                .increment(n as u64);
        }
        Ok(report)
    }

    /// Posts PR `number`'s comment if its classes changed: what was done (`None`: nothing to
    /// do, GitHub not asked).
    pub async fn post(
        &mut self,
        repository: &str,
        number: i64,
        dry_run: bool,
    ) -> anyhow::Result<Option<Post>> {
        let answer = drci(&self.clickhouse, repository, number)
            .await
            .map_err(|e| anyhow::anyhow!("Dr.CI for {repository}#{number}: {e}"))?;
        let key = (repository.to_string(), number);
        let print = fingerprint(&answer);
        if self.posted.get(&key) == Some(&print) {
            return Ok(None);
        }
        let body = render(&answer, &self.config.hud_url);
        let post = match self.own_comment(repository, number).await? {
            Some((_, text)) if text == body => Post::Same,
            Some((comment_id, _)) => Post::Edit { comment_id },
            None => Post::Create,
        };
        if !dry_run {
            let json = serde_json::json!({ "body": body });
            let (method, path) = match &post {
                Post::Same => (None, String::new()),
                Post::Edit { comment_id } => (
                    Some(hudstream_github::Method::PATCH),
                    format!("issues/comments/{comment_id}"),
                ),
                Post::Create => (
                    Some(hudstream_github::Method::POST),
                    format!("issues/{number}/comments"),
                ),
            };
            if let Some(method) = method {
                match self
                    .github
                    .repository_send(repository, method, &path, &json)
                    .await?
                {
                    JsonAnswer::Found(_) => {}
                    JsonAnswer::Gone { status } => {
                        anyhow::bail!("GitHub answered {status} to {path} of {repository}")
                    }
                    JsonAnswer::Refused { status, message } => {
                        anyhow::bail!("GitHub refused {path} of {repository}: {status} {message}")
                    }
                }
                tracing::info!(%repository, number, ?post, "Dr.CI comment posted");
            }
            self.posted.insert(key, print);
        }
        Ok(Some(post))
    }

    /// The poster's comment on PR `number`: its id and text.
    async fn own_comment(
        &self,
        repository: &str,
        number: i64,
    ) -> anyhow::Result<Option<(i64, String)>> {
        // GitHub lists a PR's conversation comments oldest first, 100 a page.
        for page in 1..=20 {
            let path = format!("issues/{number}/comments?per_page=100&page={page}");
            let comments = match self.github.repository_json(repository, &path).await? {
                JsonAnswer::Found(document) => document,
                JsonAnswer::Gone { .. } => return Ok(None),
                JsonAnswer::Refused { status, message } => {
                    anyhow::bail!("GitHub refused {path} of {repository}: {status} {message}")
                }
            };
            let Some(comments) = comments.as_array() else {
                anyhow::bail!("{path} of {repository}: GitHub's answer is not a list");
            };
            for c in comments {
                let body = c["body"].as_str().unwrap_or("");
                let login = c["user"]["login"].as_str().unwrap_or("");
                let mine = self.config.bot_login.is_empty() || self.config.bot_login == login;
                if body.starts_with(COMMENT_START) && mine {
                    if let Some(id) = c["id"].as_i64() {
                        return Ok(Some((id, body.to_string())));
                    }
                }
            }
            if comments.len() < 100 {
                break;
            }
        }
        Ok(None)
    }
}

/// Runs passes every `every` until `shutdown`.
pub async fn run(mut poster: DrciPoster, every: Duration, shutdown: CancellationToken) {
    loop {
        match poster.pass(false).await {
            Ok(report) => tracing::debug!(?report, "Dr.CI pass"),
            Err(e) => {
                metrics::counter!("hudstream_drci_comments_total", "result" => "failed")
                    .increment(1);
                tracing::warn!(error = %e, "Dr.CI pass failed; trying again next pass");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
