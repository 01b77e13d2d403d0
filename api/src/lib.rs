//! The read API over ClickHouse.
//!
//! Every query the API runs is a saved query in `api/queries/` — the same files the SQL
//! compatibility check runs on ClickHouse 18.16 and on a modern engine — bound on the client
//! with typed `{name:Type}` parameters. Handlers validate their input first and answer a bad
//! request with a 4xx and a JSON error; a ClickHouse failure is a 503, never a wrong answer.

pub mod error;
pub mod jobs;
pub mod queries;

use axum::{routing::get, Router};
use tokio::net::TcpListener;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::telemetry::metrics_router;

/// The API's routes.
pub fn router(clickhouse: ClickHouse) -> Router {
    Router::new()
        .route("/api/jobs/{owner}/{repo}/{job_id}", get(jobs::get_job))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(clickhouse)
        .merge(metrics_router())
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    clickhouse: ClickHouse,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "api listening");
    axum::serve(listener, router(clickhouse))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
