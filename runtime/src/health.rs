//! Liveness and readiness, the same on every stage.
//!
//! `/healthz` answers 200 while the process runs: a supervisor restarts a process that stops
//! answering it. `/readyz` asks, right then, each dependency the stage needs (the broker, the
//! ClickHouse server) and answers 200 only when every one answers, else 503 with the reasons,
//! as JSON: a load balancer or Kubernetes stops sending work to an instance that could not do
//! it, without restarting it (it recovers by itself when the dependency is back). A background
//! task asks the same every [`REFRESH`] and keeps `hudstream_ready{dependency}` at 1 or 0, so
//! Prometheus sees an unreachable broker without anyone calling `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{routing::get, Router};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::clickhouse::ClickHouse;
use crate::kafka::Appender;

/// How long one dependency may take to answer before it counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the background task refreshes the `hudstream_ready` gauge.
pub const REFRESH: Duration = Duration::from_secs(10);

/// Asks one dependency whether it answers: `Ok(detail)` or `Err(reason)`.
pub type Probe = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// The dependencies one process needs, each with its probe.
#[derive(Clone, Default)]
pub struct Health {
    probes: Vec<(&'static str, Probe)>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dependency; a second one of the same name replaces the first.
    pub fn with(mut self, name: &'static str, probe: Probe) -> Self {
        self.probes.retain(|(n, _)| *n != name);
        self.probes.push((name, probe));
        self
    }

    /// The broker: a metadata request through `appender`'s producer.
    pub fn broker(self, appender: &Appender) -> Self {
        let appender = appender.clone();
        self.with(
            "kafka",
            Arc::new(move || {
                let appender = appender.clone();
                Box::pin(async move {
                    appender
                        .check_broker(PROBE_TIMEOUT)
                        .await
                        .map(|brokers| format!("{brokers} broker(s)"))
                        .map_err(|e| format!("the broker does not answer: {e}"))
                })
            }),
        )
    }

    /// The stages this process runs are consuming: none has had records waiting with nothing
    /// committed for its stall time ([`crate::kafka::watch`]).
    pub fn consuming(self) -> Self {
        self.with(
            "consuming",
            Arc::new(|| {
                Box::pin(async {
                    let stalled = crate::kafka::watch::stalled();
                    if stalled.is_empty() {
                        Ok("every stage is consuming".to_string())
                    } else {
                        Err(format!("not consuming: {}", stalled.join("; ")))
                    }
                })
            }),
        )
    }

    /// The ClickHouse server: `SELECT 1`.
    pub fn clickhouse(self, clickhouse: &ClickHouse) -> Self {
        let clickhouse = clickhouse.clone();
        self.with(
            "clickhouse",
            Arc::new(move || {
                let clickhouse = clickhouse.clone();
                Box::pin(async move {
                    clickhouse
                        .ping()
                        .await
                        .map(|()| "ok".to_string())
                        .map_err(|e| format!("ClickHouse does not answer: {e}"))
                })
            }),
        )
    }

    /// The names of the dependencies, in the order added.
    pub fn dependencies(&self) -> Vec<&'static str> {
        self.probes.iter().map(|(n, _)| *n).collect()
    }

    /// Asks every dependency at once (each within [`PROBE_TIMEOUT`]); sets the gauge.
    pub async fn check(&self) -> Readiness {
        let answers = futures::future::join_all(self.probes.iter().map(|(name, probe)| async {
            // A probe has PROBE_TIMEOUT of its own; this bounds one that ignores it.
            let limit = PROBE_TIMEOUT + Duration::from_millis(500);
            let answer = match tokio::time::timeout(limit, probe()).await {
                Ok(answer) => answer,
                Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
            };
            metrics::gauge!("hudstream_ready", "dependency" => *name).set(if answer.is_ok() {
                1.0
            } else {
                0.0
            });
            (*name, answer)
        }))
        .await;
        Readiness { answers }
    }

    /// `/healthz` and `/readyz` for this process, and the task keeping the gauge fresh until
    /// `shutdown`.
    pub fn router(self, shutdown: CancellationToken) -> Router {
        if !self.probes.is_empty() {
            let health = self.clone();
            tokio::spawn(async move {
                loop {
                    health.check().await;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(REFRESH) => {}
                    }
                }
            });
        }
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route(
                "/readyz",
                get(move || {
                    let health = self.clone();
                    async move { health.check().await.into_response() }
                }),
            )
    }
}

/// What the dependencies answered.
#[derive(Debug)]
pub struct Readiness {
    pub answers: Vec<(&'static str, Result<String, String>)>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.answers.iter().all(|(_, a)| a.is_ok())
    }
}

impl IntoResponse for Readiness {
    /// `{"ready": bool, "dependencies": {"kafka": {"ok": true, "detail": "1 broker(s)"}, ...}}`.
    fn into_response(self) -> Response {
        let status = if self.is_ready() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let dependencies: serde_json::Map<String, serde_json::Value> = self
            .answers
            .iter()
            .map(|(name, answer)| {
                let value = match answer {
                    Ok(detail) => serde_json::json!({"ok": true, "detail": detail}),
                    Err(error) => serde_json::json!({"ok": false, "error": error}),
                };
                (name.to_string(), value)
            })
            .collect();
        (
            status,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::Json(serde_json::json!({"ready": self.is_ready(), "dependencies": dependencies})),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answering(result: Result<&'static str, &'static str>) -> Probe {
        Arc::new(move || {
            Box::pin(async move { result.map(str::to_string).map_err(str::to_string) })
        })
    }

    #[tokio::test]
    async fn ready_only_when_every_dependency_answers() {
        let up = Health::new()
            .with("kafka", answering(Ok("1 broker(s)")))
            .with("clickhouse", answering(Ok("ok")));
        assert!(up.check().await.is_ready());
        let response = up.check().await.into_response();
        assert_eq!(response.status(), StatusCode::OK);

        let down = up.with(
            "clickhouse",
            answering(Err("ClickHouse does not answer: refused")),
        );
        assert_eq!(down.dependencies(), vec!["kafka", "clickhouse"]);
        let readiness = down.check().await;
        assert!(!readiness.is_ready());
        let response = readiness.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["ready"], false);
        assert_eq!(json["dependencies"]["kafka"]["ok"], true);
        assert_eq!(
            json["dependencies"]["clickhouse"]["error"],
            "ClickHouse does not answer: refused"
        );
    }

    #[tokio::test]
    async fn a_probe_that_hangs_counts_as_down() {
        let hangs: Probe = Arc::new(|| Box::pin(futures::future::pending()));
        let started = std::time::Instant::now();
        let readiness = Health::new().with("kafka", hangs).check().await;
        assert!(!readiness.is_ready());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
