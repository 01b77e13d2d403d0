//! The gateway: the only door into the immutable log.
//!
//! It verifies each delivery, routes it to its raw topic, appends the body byte for byte with
//! the delivery's facts as record headers, and answers 2xx only once the broker has
//! acknowledged the append. Whatever it refuses gets a precise 4xx with a JSON error; whatever
//! the broker cannot take in time gets a 503 with `Retry-After`, never a 2xx.
//!
//! Back-pressure is explicit: bodies are read with a size cap and a deadline, at most
//! `gateway.max_in_flight` requests are handled at once (503 beyond), and shutdown stops
//! accepting, lets in-flight appends finish and flushes the producer.
//!
//! Endpoints: `POST /github/webhook`, `POST /oot/results` (also `/api/oot/results`),
//! `POST /circleci/webhook`, `PUT /logs/{owner}/{repo}/{job_id}`,
//! `PUT /tests/{owner}/{repo}/{job_id}?report=`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

pub mod admin;
pub mod body;
pub mod circleci;
pub mod error;
pub mod fixtures;
pub mod github;
pub mod logs;
pub mod oot;
pub mod routing;
pub mod signature;
pub mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

use hudstream_runtime::config::{Config, GatewayConfig};
use hudstream_runtime::health::Health;
use hudstream_runtime::kafka::{AppendError, Appended, Appender};
use hudstream_runtime::secret::collect;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::telemetry::metrics_router;
use hudstream_runtime::worker::OutRecord;
use hudstream_runtime::Secret;

use crate::error::GatewayError;

pub(crate) const VERSION: &str = concat!("hudstream/", env!("CARGO_PKG_VERSION"));

/// What every request handler shares.
pub struct Gateway {
    pub config: GatewayConfig,
    pub appender: Appender,
    pub secrets: Vec<Secret>,
    pub oot_tokens: Vec<Secret>,
    pub circleci_secrets: Vec<Secret>,
    pub log_uploads: Option<logs::LogUploads>,
    pub test_uploads: Option<tests::TestUploads>,
    /// The operator's endpoints; `None` without admin tokens or without a backfill provider.
    pub admin: Option<admin::Admin>,
    in_flight: Arc<Semaphore>,
}

/// A request header as trimmed, non-empty text.
/// The headers every raw record carries: when the gateway received it, the request's content
/// type (JSON unless said), and which gateway appended it.
pub(crate) fn receipt_headers(received_at: String, content_type: &str) -> Vec<(String, Vec<u8>)> {
    use hudstream_schemas::headers as h;
    vec![
        (h::RECEIVED_AT.into(), received_at.into_bytes()),
        (h::CONTENT_TYPE.into(), content_type.as_bytes().to_vec()),
        (h::GATEWAY_VERSION.into(), VERSION.as_bytes().to_vec()),
    ]
}

/// When a request arrived, as raw records say it (RFC 3339, milliseconds, UTC).
pub(crate) fn received_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

impl Gateway {
    /// Resolves the configured secrets (inline and from files). At least one webhook secret is
    /// required: a gateway that accepts unsigned deliveries would let anyone write to the log.
    pub fn new(all: &Config, appender: Appender) -> anyhow::Result<Self> {
        let config = &all.gateway;
        let secrets = collect(&config.webhook_secrets, &config.webhook_secret_files)?;
        if secrets.is_empty() {
            anyhow::bail!(
                "the gateway needs at least one webhook secret: set gateway.webhook_secrets (or \
                 gateway.webhook_secret_files) in the configuration file, or HUDSTREAM_GATEWAY__WEBHOOK_SECRETS"
            );
        }
        Ok(Self {
            appender,
            secrets,
            oot_tokens: collect(&config.oot_relay_tokens, &config.oot_relay_token_files)?,
            circleci_secrets: collect(&config.circleci_secrets, &config.circleci_secret_files)?,
            log_uploads: logs::LogUploads::from_config(&all.logs)?,
            test_uploads: tests::TestUploads::from_config(&all.logs, &all.tests)?,
            admin: None,
            in_flight: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config: config.clone(),
        })
    }

    pub(crate) async fn read_body(
        &self,
        headers: &HeaderMap,
        body: axum::body::Body,
        limit: usize,
    ) -> Result<bytes::Bytes, GatewayError> {
        body::read(
            headers,
            body,
            limit,
            Duration::from_millis(self.config.body_read_timeout_ms),
        )
        .await
    }

    /// Appends and waits for the broker's acknowledgement; maps failures to 503 / 502.
    pub(crate) async fn append(&self, record: &OutRecord) -> Result<Appended, GatewayError> {
        let started = Instant::now();
        let result = self.appender.append(record).await;
        metrics::histogram!("hudstream_gateway_append_seconds")
            .record(started.elapsed().as_secs_f64());
        result.map_err(|e| {
            tracing::warn!(error = %e, "append failed; answering with an error, nothing acknowledged");
            match e {
                AppendError::Timeout { .. } => GatewayError::Unavailable,
                AppendError::Refused { source, .. } => GatewayError::BrokerRefused(source.to_string()),
            }
        })
    }
}

async fn method_not_allowed() -> GatewayError {
    GatewayError::MethodNotAllowed
}

fn post_only<H, T>(handler: H) -> MethodRouter<Arc<Gateway>>
where
    H: axum::handler::Handler<T, Arc<Gateway>>,
    T: 'static,
{
    post(handler).fallback(method_not_allowed)
}

/// Caps concurrent requests, counts them, and runs each in a span carrying its delivery id.
async fn admission(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let endpoint = match request.uri().path() {
        "/github/webhook" => "github",
        "/oot/results" | "/api/oot/results" => "oot",
        "/circleci/webhook" => "circleci",
        path if path.starts_with("/logs/") => "logs",
        path if path.starts_with("/tests/") => "tests",
        _ => "other",
    };
    let headers = request.headers();
    let event = header(headers, "x-github-event").unwrap_or("-").to_string();
    let delivery = header(headers, "x-github-delivery")
        .unwrap_or("-")
        .to_string();
    // Uploads have limits of their own (see `logs`, `tests`): a long transfer must not take a
    // place a webhook needs.
    let _permit = if endpoint == "logs" || endpoint == "tests" {
        None
    } else {
        match gateway.in_flight.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let response = GatewayError::Overloaded.into_response();
                metrics::counter!("hudstream_gateway_requests_total", "endpoint" => endpoint, "event" => event, "status" => "503").increment(1);
                return response;
            }
        }
    };
    metrics::gauge!("hudstream_gateway_in_flight").increment(1.0);
    let span = tracing::info_span!("request", endpoint, %event, %delivery);
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let (body, leftover) = body::Lingering::wrap(body);
    let response = next
        .run(Request::from_parts(parts, body))
        .instrument(span.clone())
        .await;
    if response.status().is_client_error() || response.status().is_server_error() {
        // Refused before its body was read: read the rest, so the client gets the answer and
        // not a reset (see `body`).
        let drained = leftover.drain().await;
        if drained > 0 {
            span.in_scope(|| tracing::debug!(drained, "read the refused request's unread body"));
        }
    }
    metrics::gauge!("hudstream_gateway_in_flight").decrement(1.0);
    let status = response.status().as_u16().to_string();
    metrics::histogram!("hudstream_gateway_request_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("hudstream_gateway_requests_total", "endpoint" => endpoint, "event" => event, "status" => status.clone()).increment(1);
    span.in_scope(
        || tracing::debug!(%status, elapsed_ms = started.elapsed().as_millis() as u64, "answered"),
    );
    response
}

/// The gateway's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let endpoints = Router::new()
        .route("/github/webhook", post_only(github::receive))
        .route("/oot/results", post_only(oot::receive))
        .route("/api/oot/results", post_only(oot::receive))
        .route("/circleci/webhook", post_only(circleci::receive))
        .route(
            "/logs/{owner}/{repo}/{job_id}",
            put(logs::upload).fallback(method_not_allowed),
        )
        .route(
            "/tests/{owner}/{repo}/{job_id}",
            put(tests::upload).fallback(method_not_allowed),
        )
        .route(
            "/admin/backfill",
            post(admin::start_backfill)
                .get(admin::list_backfills)
                .fallback(method_not_allowed),
        )
        .route_layer(middleware::from_fn_with_state(gateway.clone(), admission));
    endpoints.with_state(gateway).merge(metrics_router())
}

/// Serves the gateway on `listener` until `shutdown`: then stops accepting, lets in-flight
/// requests finish their appends, and flushes the producer.
pub async fn serve(
    config: &Config,
    listener: TcpListener,
    appender: Appender,
    backfills: Option<Arc<dyn admin::Backfills>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut gateway = Gateway::new(config, appender.clone())?;
    let tokens = collect(
        &config.gateway.admin_tokens,
        &config.gateway.admin_token_files,
    )?;
    if let (false, Some(backfills)) = (tokens.is_empty(), backfills) {
        gateway.admin = Some(admin::Admin { tokens, backfills });
    }
    let gateway = Arc::new(gateway);
    tracing::info!(address = %listener.local_addr()?, "gateway listening");
    // Ready while the broker answers: without it nothing can be acknowledged.
    let health = Health::new().broker(&appender).router(shutdown.clone());
    axum::serve(listener, router(gateway).merge(health))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    let flushed =
        tokio::task::spawn_blocking(move || appender.flush(Duration::from_secs(10))).await;
    match flushed {
        Ok(Ok(())) => tracing::info!("gateway stopped; producer flushed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "producer flush incomplete at shutdown"),
        Err(e) => tracing::warn!(error = %e, "producer flush task failed"),
    }
    Ok(())
}
