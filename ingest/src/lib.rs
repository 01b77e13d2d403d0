//! The gateway: the only door into the immutable log.
//!
//! It verifies each GitHub delivery, routes it to its raw topic, appends the body byte for byte
//! with the delivery's facts as record headers, and answers 2xx only once the broker has
//! acknowledged the append. Whatever it refuses gets a precise 4xx with a JSON error; whatever
//! the broker cannot take in time gets a 503 with `Retry-After`, never a 2xx.

pub mod error;
pub mod fixtures;
pub mod github;
pub mod routing;
pub mod signature;

use std::sync::Arc;

use axum::{extract::DefaultBodyLimit, routing::get, routing::post, Router};
use tokio::net::TcpListener;
use hudstream_runtime::shutdown::CancellationToken;

use hudstream_runtime::config::GatewayConfig;
use hudstream_runtime::kafka::Appender;
use hudstream_runtime::telemetry::metrics_router;
use hudstream_runtime::Secret;

/// What every request handler shares.
pub struct Gateway {
    pub appender: Appender,
    pub secrets: Vec<Secret>,
    pub max_body_bytes: usize,
}

/// The gateway's routes: `POST /github/webhook`, `GET /healthz`, `GET /metrics`.
pub fn router(config: &GatewayConfig, appender: Appender) -> anyhow::Result<Router> {
    let secrets: Vec<Secret> = config.webhook_secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
    if secrets.is_empty() {
        anyhow::bail!(
            "the gateway needs at least one webhook secret: set gateway.webhook_secrets in the \
             configuration file or HUDSTREAM_GATEWAY__WEBHOOK_SECRETS"
        );
    }
    let state = Arc::new(Gateway {
        appender,
        secrets,
        max_body_bytes: config.max_body_bytes,
    });
    Ok(Router::new()
        .route("/github/webhook", post(github::receive))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .merge(metrics_router()))
}

/// Serves the gateway on `listener` until `shutdown`; in-flight requests finish first.
pub async fn serve(config: &GatewayConfig, listener: TcpListener, appender: Appender, shutdown: CancellationToken) -> anyhow::Result<()> {
    let app = router(config, appender)?;
    tracing::info!(address = %listener.local_addr()?, "gateway listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}
