//! The client: requests, what GitHub's answers mean, rate limits and retries.
//!
//! A log request is answered with a redirect to short-lived blob storage, which is followed
//! (the `Authorization` header is not sent to the other host).
//!
//! What an answer means:
//! - 200: the log, streamed to the caller.
//! - 404, 410: the log is gone (expired, or the job never had one) — a final answer.
//! - 403/429 with `Retry-After` or `X-RateLimit-Remaining: 0`, or whose message says "rate
//!   limit" (GitHub's secondary limit): wait as told (a minute if not told), then ask again.
//! - 5xx and network errors (the installation-token calls' too): back off and retry, then give
//!   the error to the caller (the stage runtime retries the whole batch; nothing is skipped).
//! - An App not installed on the repository: refused for good, like any other 4xx.
//!
//! Every wait ends early on shutdown ([`GitHubError::ShuttingDown`]), and a body that stops
//! arriving for `READ_TIMEOUT` is an error, so a stage never hangs on GitHub.
//! - 401: credentials are wrong; an App's cached token is dropped and fetched again once, then
//!   it is an error, retried by the runtime like a 5xx — a misconfiguration stops the stage
//!   visibly instead of marking logs missing.
//! - Any other 4xx: GitHub refuses for good ("unavailable", with the status and message).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER, USER_AGENT};
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;

use hudstream_runtime::config::LogsConfig;
use hudstream_runtime::retry::Backoff;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::Secret;

use crate::auth::Auth;

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest silence on a connection (headers or body) before the request fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// GitHub's advice for a secondary rate limit that does not say how long to wait.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub is not configured for log fetching: {0}")]
    Config(String),
    #[error("GitHub request {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("GitHub answered {status} to {url}: {message}")]
    Status {
        url: String,
        status: StatusCode,
        message: String,
    },
    #[error("signing the GitHub App JWT: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("shutting down")]
    ShuttingDown,
}

/// What GitHub said to a request for a JSON document.
#[derive(Debug)]
pub enum JsonAnswer {
    Found(serde_json::Value),
    /// 404 or 410: GitHub does not have it (any more).
    Gone {
        status: u16,
    },
    /// A 4xx that will not change by asking again.
    Refused {
        status: u16,
        message: String,
    },
}

/// What GitHub said to a request: a job's log, an artifact, a document.
#[derive(Debug)]
pub enum Answer {
    /// The body, to be streamed (`bytes_stream()`) or read.
    Found(reqwest::Response),
    /// 404 or 410: GitHub does not have it (any more).
    Gone { status: u16 },
    /// A 4xx that will not change by asking again.
    Refused { status: u16, message: String },
}

/// A GitHub REST client (logs, jobs, runs, artifacts).
pub struct GitHub {
    pub(crate) http: reqwest::Client,
    pub(crate) api: String,
    pub(crate) auth: Auth,
    attempts: u32,
    rate_limit_max_wait: Duration,
    /// The last `X-RateLimit-Remaining` GitHub sent; -1 before any.
    rate_limit_remaining: AtomicI64,
    /// When that budget is renewed (`X-RateLimit-Reset`, unix seconds); 0 if not said.
    rate_limit_reset: AtomicI64,
    shutdown: CancellationToken,
}

/// What one request attempt came to, inside [`GitHub::get`]'s loop.
enum Attempt {
    Done(Answer),
    /// Rate-limited: wait this long, then ask again (not counted as a failure).
    Wait(Duration),
    /// A 401: drop a cached App token and ask once more.
    Unauthorized(GitHubError),
    /// 5xx or a network error: back off.
    Transient(GitHubError),
}

impl GitHub {
    /// A client from the `[logs]` settings: an App when `github_app_id` is set, else a token.
    /// Its waits end when `shutdown` is cancelled.
    pub fn from_config(
        config: &LogsConfig,
        shutdown: CancellationToken,
    ) -> Result<GitHub, GitHubError> {
        let auth = if config.github_app_id != 0 {
            let path = config.github_app_private_key_file.as_ref().ok_or_else(|| {
                GitHubError::Config(
                    "logs.github_app_id is set but logs.github_app_private_key_file is not".into(),
                )
            })?;
            let pem = std::fs::read(path).map_err(|e| {
                GitHubError::Config(format!("cannot read the App key {}: {e}", path.display()))
            })?;
            let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|e| {
                GitHubError::Config(format!(
                    "the App key {} is not an RSA PEM key: {e}",
                    path.display()
                ))
            })?;
            Auth::App {
                app_id: config.github_app_id,
                key,
                tokens: Mutex::new(HashMap::new()),
            }
        } else {
            let mut token = config.github_token.clone();
            if let Some(path) = &config.github_token_file {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    GitHubError::Config(format!("cannot read {}: {e}", path.display()))
                })?;
                token = Secret::new(text.trim_end());
            }
            Auth::Token(token)
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            "application/vnd.github+json"
                .parse()
                .expect("static header"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            "2022-11-28".parse().expect("static header"),
        );
        headers.insert(USER_AGENT, "hudstream".parse().expect("static header"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| GitHubError::Config(format!("HTTP client: {e}")))?;
        Ok(GitHub {
            http,
            api: config.github_api_url.trim_end_matches('/').to_string(),
            auth,
            attempts: config.fetch_attempts.max(1),
            rate_limit_max_wait: Duration::from_millis(config.rate_limit_max_wait_ms),
            rate_limit_remaining: AtomicI64::new(-1),
            rate_limit_reset: AtomicI64::new(0),
            shutdown,
        })
    }

    async fn sleep(&self, wait: Duration) -> Result<(), GitHubError> {
        tokio::select! {
            _ = self.shutdown.cancelled() => Err(GitHubError::ShuttingDown),
            _ = tokio::time::sleep(wait) => Ok(()),
        }
    }

    /// Asks for a job's log, waiting out rate limits and retrying transient failures.
    pub async fn job_log(&self, repository: &str, job_id: i64) -> Result<Answer, GitHubError> {
        let url = format!("{}/repos/{repository}/actions/jobs/{job_id}/logs", self.api);
        self.get(repository, &url).await
    }

    /// `GET /repos/{repository}/{path}` answered with JSON (a job, a run, a run's jobs): the
    /// document, or GitHub's final "no". Rate limits, retries and tokens as for logs.
    pub async fn repository_json(
        &self,
        repository: &str,
        path: &str,
    ) -> Result<JsonAnswer, GitHubError> {
        self.repository_request(repository, Method::GET, path, None)
            .await
    }

    /// `{method} /repos/{repository}/{path}` with a JSON `body` (a comment to create or
    /// edit), answered with JSON. Rate limits, retries and tokens as for reads; a write that
    /// failed in transit is retried, so GitHub may see it twice.
    pub async fn repository_send(
        &self,
        repository: &str,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<JsonAnswer, GitHubError> {
        self.repository_request(repository, method, path, Some(body))
            .await
    }

    async fn repository_request(
        &self,
        repository: &str,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<JsonAnswer, GitHubError> {
        let url = format!(
            "{}/repos/{repository}/{}",
            self.api,
            path.trim_start_matches('/')
        );
        Ok(match self.request(repository, method, &url, body).await? {
            Answer::Found(response) => {
                let body = response.bytes().await.map_err(|source| GitHubError::Http {
                    url: url.clone(),
                    source,
                })?;
                let document = serde_json::from_slice(&body).map_err(|e| GitHubError::Status {
                    url: url.clone(),
                    status: StatusCode::OK,
                    message: format!("the answer is not JSON: {e}"),
                })?;
                JsonAnswer::Found(document)
            }
            Answer::Gone { status } => JsonAnswer::Gone { status },
            Answer::Refused { status, message } => JsonAnswer::Refused { status, message },
        })
    }

    /// What GitHub's last answer said is left of this hour's request budget
    /// (`X-RateLimit-Remaining`), if it said — and `None` once the reset time it gave has
    /// passed, since the budget is full again (a caller that stopped asking because it was low
    /// would otherwise never ask again).
    pub fn rate_limit_remaining(&self) -> Option<u64> {
        let reset = self.rate_limit_reset.load(Ordering::Relaxed);
        if reset > 0 && chrono::Utc::now().timestamp() >= reset {
            return None;
        }
        u64::try_from(self.rate_limit_remaining.load(Ordering::Relaxed)).ok()
    }

    /// When GitHub said this hour's request budget is renewed (`X-RateLimit-Reset`, unix
    /// seconds), if it said and that moment is still ahead.
    pub fn rate_limit_reset(&self) -> Option<i64> {
        let reset = self.rate_limit_reset.load(Ordering::Relaxed);
        (reset > chrono::Utc::now().timestamp()).then_some(reset)
    }

    /// One GET, waiting out rate limits and retrying transient failures.
    pub(crate) async fn get(&self, repository: &str, url: &str) -> Result<Answer, GitHubError> {
        self.request(repository, Method::GET, url, None).await
    }

    /// One request, waiting out rate limits and retrying transient failures.
    async fn request(
        &self,
        repository: &str,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, GitHubError> {
        let mut failures = 0u32;
        let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
        let mut renewed_token = false;
        loop {
            let error = match self.attempt(repository, &method, url, body).await? {
                Attempt::Done(answer) => {
                    let result = match &answer {
                        Answer::Found(_) => "ok",
                        Answer::Gone { .. } => "gone",
                        Answer::Refused { .. } => "refused",
                    };
                    metrics::counter!("hudstream_github_requests_total", "result" => result)
                        .increment(1);
                    return Ok(answer);
                }
                Attempt::Wait(wait) => {
                    let wait = wait.min(self.rate_limit_max_wait);
                    metrics::counter!("hudstream_github_requests_total", "result" => "rate_limited")
                        .increment(1);
                    tracing::warn!(url, wait_s = wait.as_secs(), "GitHub rate limit; waiting");
                    self.sleep(wait).await?;
                    continue;
                }
                Attempt::Unauthorized(_) if !renewed_token => {
                    renewed_token = true;
                    self.forget_token(repository).await;
                    continue;
                }
                Attempt::Unauthorized(error) | Attempt::Transient(error) => error,
            };
            metrics::counter!("hudstream_github_requests_total", "result" => "error").increment(1);
            failures += 1;
            if failures >= self.attempts {
                return Err(error);
            }
            let delay = backoff.next_delay();
            tracing::warn!(url, %error, backoff_ms = delay.as_millis() as u64, "GitHub request failed; retrying");
            self.sleep(delay).await?;
        }
    }

    /// One try: a token (an App's may need fetching), then the request.
    async fn attempt(
        &self,
        repository: &str,
        method: &Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Attempt, GitHubError> {
        let token = match self.token_for(repository).await {
            Ok(token) => token,
            Err(GitHubError::Status {
                status, message, ..
            }) if status == StatusCode::NOT_FOUND => {
                return Ok(Attempt::Done(Answer::Refused {
                    status: status.as_u16(),
                    message: format!("the GitHub App is not installed on {repository}: {message}"),
                }))
            }
            Err(e @ GitHubError::Status { status, .. }) if status == StatusCode::UNAUTHORIZED => {
                return Ok(Attempt::Unauthorized(e))
            }
            Err(e @ (GitHubError::Status { .. } | GitHubError::Http { .. })) => {
                return Ok(Attempt::Transient(e))
            }
            Err(e) => return Err(e),
        };
        let mut request = self.http.request(method.clone(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = &token {
            request = request.bearer_auth(token.expose());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(source) => {
                return Ok(Attempt::Transient(GitHubError::Http {
                    url: url.to_string(),
                    source,
                }))
            }
        };
        let status = response.status();
        if let Some(remaining) = response
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            self.rate_limit_remaining
                .store(remaining, Ordering::Relaxed);
            metrics::gauge!("hudstream_github_rate_limit_remaining").set(remaining as f64);
            let reset = response
                .headers()
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(0);
            self.rate_limit_reset.store(reset, Ordering::Relaxed);
        }
        if status.is_success() {
            return Ok(Attempt::Done(Answer::Found(response)));
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Ok(Attempt::Done(Answer::Gone {
                status: status.as_u16(),
            }));
        }
        let told = rate_limit_wait(status, response.headers());
        let message = error_message(response).await;
        if let Some(wait) = told {
            return Ok(Attempt::Wait(wait));
        }
        if status == StatusCode::FORBIDDEN && message.to_ascii_lowercase().contains("rate limit") {
            return Ok(Attempt::Wait(SECONDARY_LIMIT_WAIT));
        }
        if status.is_client_error() && status != StatusCode::UNAUTHORIZED {
            return Ok(Attempt::Done(Answer::Refused {
                status: status.as_u16(),
                message,
            }));
        }
        let error = GitHubError::Status {
            url: url.to_string(),
            status,
            message,
        };
        Ok(if status == StatusCode::UNAUTHORIZED {
            Attempt::Unauthorized(error)
        } else {
            Attempt::Transient(error)
        })
    }
}

/// How long a rate-limited answer asks us to wait, if it is one.
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(seconds) = header(RETRY_AFTER.as_str()).and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if header("x-ratelimit-remaining") == Some("0") {
        let reset = header("x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let wait = (reset - chrono::Utc::now().timestamp()).max(1) as u64;
        return Some(Duration::from_secs(wait));
    }
    // GitHub's secondary rate limit without headers: a minute is what its docs advise.
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(SECONDARY_LIMIT_WAIT)
}

/// GitHub's `message`, or the start of the body.
pub(crate) async fn error_message(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.chars().take(200).collect())
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
