//! The client against local stand-ins of GitHub's endpoints.

use super::*;

#[test]
fn rate_limit_headers_are_read() {
    let mut headers = HeaderMap::new();
    assert_eq!(rate_limit_wait(StatusCode::FORBIDDEN, &headers), None);
    assert_eq!(
        rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &headers),
        Some(Duration::from_secs(60))
    );
    headers.insert(RETRY_AFTER, "7".parse().unwrap());
    assert_eq!(
        rate_limit_wait(StatusCode::FORBIDDEN, &headers),
        Some(Duration::from_secs(7))
    );
    assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &headers), None);
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
    let reset = chrono::Utc::now().timestamp() + 30;
    headers.insert("x-ratelimit-reset", reset.to_string().parse().unwrap());
    let wait = rate_limit_wait(StatusCode::FORBIDDEN, &headers).unwrap();
    assert!((28..=31).contains(&wait.as_secs()), "{wait:?}");
}

mod app {
    //! GitHub App authentication against a local stand-in of the three endpoints.
    use super::super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use axum::Router;

    #[derive(Default)]
    struct Stand {
        installation_lookups: AtomicUsize,
        tokens_issued: AtomicUsize,
        /// Seconds the next installation tokens live.
        lifetime_s: AtomicUsize,
        /// 401s still to give on the logs endpoint.
        unauthorized: AtomicUsize,
    }

    fn bearer(headers: &HeaderMap) -> String {
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string()
    }

    /// The JWT must be RS256, signed by the App's key, issued by App 42, and short-lived.
    fn jwt_ok(headers: &HeaderMap) -> bool {
        let key =
            jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!("../testdata/app-key.pub.pem"))
                .expect("public key");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&["42"]);
        match jsonwebtoken::decode::<serde_json::Value>(&bearer(headers), &key, &validation) {
            Ok(data) => {
                let (iat, exp) = (data.claims["iat"].as_i64(), data.claims["exp"].as_i64());
                matches!((iat, exp), (Some(i), Some(e)) if e - i <= 600)
            }
            Err(_) => false,
        }
    }

    async fn installation(
        State(st): State<Arc<Stand>>,
        Path((_owner, repo)): Path<(String, String)>,
        headers: HeaderMap,
    ) -> Response {
        st.installation_lookups.fetch_add(1, Ordering::SeqCst);
        if !jwt_ok(&headers) {
            return (StatusCode::UNAUTHORIZED, "bad jwt").into_response();
        }
        if repo == "not-installed" {
            return (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
        }
        axum::Json(serde_json::json!({"id": 7})).into_response()
    }

    async fn access_token(State(st): State<Arc<Stand>>, headers: HeaderMap) -> Response {
        if !jwt_ok(&headers) {
            return (StatusCode::UNAUTHORIZED, "bad jwt").into_response();
        }
        let n = st.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
        let lifetime = st.lifetime_s.load(Ordering::SeqCst) as i64;
        let expires_at = chrono::Utc::now() + chrono::Duration::seconds(lifetime);
        axum::Json(serde_json::json!({"token": format!("inst-{n}"), "expires_at": expires_at}))
            .into_response()
    }

    async fn logs(State(st): State<Arc<Stand>>, headers: HeaderMap) -> Response {
        if !bearer(&headers).starts_with("inst-") {
            return (StatusCode::UNAUTHORIZED, "not an installation token").into_response();
        }
        let owed = st.unauthorized.load(Ordering::SeqCst);
        if owed > 0 {
            st.unauthorized.store(owed - 1, Ordering::SeqCst);
            return (StatusCode::UNAUTHORIZED, r#"{"message":"Bad credentials"}"#).into_response();
        }
        "the log".into_response()
    }

    async fn client() -> (GitHub, Arc<Stand>) {
        let stand = Arc::new(Stand::default());
        stand.lifetime_s.store(3600, Ordering::SeqCst);
        let router = Router::new()
            .route("/repos/{owner}/{repo}/installation", get(installation))
            .route("/app/installations/{id}/access_tokens", post(access_token))
            .route("/repos/{owner}/{repo}/actions/jobs/{id}/logs", get(logs))
            .with_state(stand.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let config = LogsConfig {
            github_api_url: api,
            github_app_id: 42,
            github_app_private_key_file: Some(
                concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/app-key.pem").into(),
            ),
            fetch_attempts: 2,
            ..LogsConfig::default()
        };
        let github = GitHub::from_config(&config, CancellationToken::new()).unwrap();
        (github, stand)
    }

    async fn body(answer: Answer) -> String {
        match answer {
            Answer::Found(response) => response.text().await.unwrap(),
            other => panic!("expected the log, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_installation_token_per_repository_is_cached_and_renewed_on_401() {
        let (github, stand) = client().await;
        assert_eq!(
            body(github.job_log("o/r", 1).await.unwrap()).await,
            "the log"
        );
        assert_eq!(
            body(github.job_log("o/r", 2).await.unwrap()).await,
            "the log"
        );
        assert_eq!(stand.tokens_issued.load(Ordering::SeqCst), 1, "cached");
        // Another repository, another installation lookup and token.
        body(github.job_log("o/other", 3).await.unwrap()).await;
        assert_eq!(stand.tokens_issued.load(Ordering::SeqCst), 2);
        // A revoked token: dropped, a new one fetched, the request repeated once.
        stand.unauthorized.store(1, Ordering::SeqCst);
        assert_eq!(
            body(github.job_log("o/r", 4).await.unwrap()).await,
            "the log"
        );
        assert_eq!(stand.tokens_issued.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_token_within_five_minutes_of_expiry_is_replaced() {
        let (github, stand) = client().await;
        stand.lifetime_s.store(240, Ordering::SeqCst);
        body(github.job_log("o/r", 1).await.unwrap()).await;
        body(github.job_log("o/r", 2).await.unwrap()).await;
        assert_eq!(stand.tokens_issued.load(Ordering::SeqCst), 2, "not reused");
        stand.lifetime_s.store(3600, Ordering::SeqCst);
        body(github.job_log("o/r", 3).await.unwrap()).await;
        body(github.job_log("o/r", 4).await.unwrap()).await;
        assert_eq!(stand.tokens_issued.load(Ordering::SeqCst), 3, "reused");
    }

    #[tokio::test]
    async fn an_app_not_installed_on_the_repository_is_a_final_refusal() {
        let (github, stand) = client().await;
        match github.job_log("o/not-installed", 1).await.unwrap() {
            Answer::Refused { status, message } => {
                assert_eq!(status, 404);
                assert!(
                    message.contains("not installed on o/not-installed"),
                    "{message}"
                );
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(
            stand.installation_lookups.load(Ordering::SeqCst),
            1,
            "not retried"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_a_rate_limit_wait() {
        let shutdown = CancellationToken::new();
        let router = Router::new().route(
            "/repos/{owner}/{repo}/actions/jobs/{id}/logs",
            get(|| async {
                (
                    StatusCode::FORBIDDEN,
                    r#"{"message":"You have exceeded a secondary rate limit."}"#,
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let config = LogsConfig {
            github_api_url: api,
            github_token: Secret::new("t"),
            ..LogsConfig::default()
        };
        let github = GitHub::from_config(&config, shutdown.clone()).unwrap();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop.cancel();
        });
        let started = std::time::Instant::now();
        let result = github.job_log("o/r", 1).await;
        assert!(
            matches!(result, Err(GitHubError::ShuttingDown)),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the 60 s wait was cut short"
        );
    }
}
