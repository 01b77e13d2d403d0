//! The commit page and the PR page (with its Dr.CI section).

use super::*;

#[derive(Template)]
#[template(path = "commit.html")]
struct CommitTemplate {
    page: CommitPage,
}

#[derive(Template)]
#[template(path = "pull.html")]
struct PullTemplate {
    page: PullPage,
    /// Dr.CI's classes; `None` when they could not be computed (the page still shows).
    drci: Option<Drci>,
}

impl crate::commit::RunSummary {
    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }
}

impl CommitPage {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl PrCommit {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl JobSummary {
    pub fn href(&self) -> &str {
        safe_href(&self.html_url)
    }
    pub fn duration_text(&self) -> String {
        seconds_text(self.duration_s)
    }
    pub fn queue_text(&self) -> String {
        seconds_text(self.queue_time_s)
    }
}

impl crate::commit::CommitTest {
    pub fn status_class(&self) -> &'static str {
        status_class(&self.status)
    }
    pub fn history_href(&self, repository: &str) -> String {
        history_href(repository, &self.name, &self.classname, &self.file)
    }
}

pub async fn commit_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let page = commit::from_request(&ch, path, q).await;
    render(&headers, page.map(|page| CommitTemplate { page }))
}

pub async fn pull_page(State(ch): Ch, path: Path3, headers: HeaderMap, q: RawQuery) -> Response {
    let ids = path.as_ref().ok().map(|p| p.0.clone());
    let page = pull::from_request(&ch, path, q).await;
    let pr = ids.and_then(|(owner, repo, number)| {
        Some((
            params::repository(&owner, &repo).ok()?,
            number.parse::<i64>().ok()?,
        ))
    });
    let drci = match (&page, pr) {
        (Ok(_), Some((repository, number))) => match drci::drci(&ch, &repository, number).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(%repository, number, error = %e, "Dr.CI for the PR page failed");
                None
            }
        },
        _ => None,
    };
    render(&headers, page.map(|page| PullTemplate { page, drci }))
}
