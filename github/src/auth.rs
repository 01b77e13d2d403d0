//! Authentication: a token, or a GitHub App — a JWT signed with the app's key buys an
//! installation token per repository, cached and refreshed five minutes before it expires (as
//! torchci does). A 401 drops a cached token so that the next try fetches a fresh one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use hudstream_runtime::Secret;

use crate::client::error_message;
use crate::{GitHub, GitHubError};

/// Installation tokens are replaced this long before GitHub says they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

pub(crate) enum Auth {
    Token(Secret),
    App {
        app_id: u64,
        key: jsonwebtoken::EncodingKey,
        /// Per repository: the installation token and when to replace it.
        tokens: Mutex<HashMap<String, (Secret, Instant)>>,
    },
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(serde::Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

impl GitHub {
    /// The token to send for `repository`; `None` for an unauthenticated client.
    pub(crate) async fn token_for(&self, repository: &str) -> Result<Option<Secret>, GitHubError> {
        match &self.auth {
            Auth::Token(token) if token.is_empty() => Ok(None),
            Auth::Token(token) => Ok(Some(token.clone())),
            Auth::App {
                app_id,
                key,
                tokens,
            } => {
                let mut tokens = tokens.lock().await;
                if let Some((token, refresh_at)) = tokens.get(repository) {
                    if Instant::now() < *refresh_at {
                        return Ok(Some(token.clone()));
                    }
                }
                let (token, refresh_at) = self.installation_token(*app_id, key, repository).await?;
                tokens.insert(repository.to_string(), (token.clone(), refresh_at));
                Ok(Some(token))
            }
        }
    }

    pub(crate) async fn forget_token(&self, repository: &str) {
        if let Auth::App { tokens, .. } = &self.auth {
            tokens.lock().await.remove(repository);
        }
    }

    /// JWT → installation of `repository` → a fresh installation token.
    async fn installation_token(
        &self,
        app_id: u64,
        key: &jsonwebtoken::EncodingKey,
        repository: &str,
    ) -> Result<(Secret, Instant), GitHubError> {
        let now = chrono::Utc::now().timestamp();
        // GitHub allows 10 minutes; a minute of clock skew either way is tolerated.
        let claims = Claims {
            iat: now - 60,
            exp: now + 540,
            iss: app_id.to_string(),
        };
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            key,
        )?;
        let url = format!("{}/repos/{repository}/installation", self.api);
        let installation: Installation = self.app_call(self.http.get(&url), &jwt, &url).await?;
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.api, installation.id
        );
        let token: InstallationToken = self.app_call(self.http.post(&url), &jwt, &url).await?;
        let lifetime = (token.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        let refresh_in = lifetime.saturating_sub(REFRESH_BEFORE_EXPIRY);
        tracing::info!(
            repository,
            installation = installation.id,
            refresh_in_s = refresh_in.as_secs(),
            "GitHub App installation token issued"
        );
        Ok((Secret::new(token.token), Instant::now() + refresh_in))
    }

    async fn app_call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        jwt: &str,
        url: &str,
    ) -> Result<T, GitHubError> {
        let http_error = |source| GitHubError::Http {
            url: url.to_string(),
            source,
        };
        let response = request.bearer_auth(jwt).send().await.map_err(http_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(GitHubError::Status {
                url: url.to_string(),
                status,
                message: error_message(response).await,
            });
        }
        response.json().await.map_err(http_error)
    }
}
