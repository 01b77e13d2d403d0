//! The read API over ClickHouse and the HUD pages.
//!
//! Every query the API runs is a saved query in `api/queries/` — the same files the SQL
//! compatibility check runs on ClickHouse 18.16 and on a modern engine — bound on the client
//! with typed `{name:Type}` parameters. Handlers validate their input first and answer a bad
//! request with a 4xx and a JSON error; a ClickHouse failure is a 503, never a wrong answer.
//!
//! Layout: `routes` (JSON endpoints) and `pages` (HTML) are thin; each view's data is built
//! once, in `hud` (grid), `commit`, `pull`, `oot`, `failures`, `queued`, `jobs` and the test
//! views (`test_results`, `test_history`, `flaky`, `disabled`, `test_search`), triage (`drci`
//! with its rules and comment, `similar`, `unstable`) and `trunk` health, over
//! `queries::fetch`. `params` checks input; `respond` adds `ETag`/`Cache-Control`.

pub mod charts;
pub mod commit;
pub mod disabled;
pub mod drci;
pub mod drci_answer;
pub mod drci_comment;
pub mod drci_rules;
pub mod error;
pub mod failures;
pub mod flaky;
pub mod home;
pub mod hot_window;
pub mod hud;
pub mod job_rows;
pub mod jobs;
pub mod oot;
pub mod pages;
pub mod params;
pub mod pull;
pub mod queries;
pub mod queued;
pub mod respond;
pub mod routes;
pub mod similar;
pub mod test_history;
pub mod test_results;
pub mod test_search;
pub mod triage_pages;
pub mod trunk;
pub mod unstable;

use std::sync::Arc;

use axum::extract::FromRef;
use axum::{routing::get, Router};
use tokio::net::TcpListener;

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::health::Health;
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::telemetry::metrics_router;

use crate::hot_window::HotWindow;

/// The JSON endpoints' paths, as axum spells them; `api/openapi.json` describes each.
pub const API_ROUTES: &[&str] = &[
    "/api/hud/{owner}/{repo}/{*branch}",
    "/api/{owner}/{repo}/commit/{sha}",
    "/api/{owner}/{repo}/pull/{number}",
    "/api/oot/summary",
    "/api/oot/pr/{number}",
    "/api/oot/{org}/{repo}",
    "/api/jobs/{owner}/{repo}/{job_id}",
    "/api/failures",
    "/api/queued",
    "/api/openapi.json",
    "/api/tests/{owner}/{repo}/jobs/{job_id}",
    "/api/tests/{owner}/{repo}/history",
    "/api/tests/{owner}/{repo}/flaky",
    "/api/tests/{owner}/{repo}/disabled",
    "/api/tests/{owner}/{repo}/slowest",
    "/api/tests/{owner}/{repo}/search",
    "/api/drci/{owner}/{repo}/{number}",
    "/api/drci/{owner}/{repo}/{number}/comment.md",
    "/api/failures/{owner}/{repo}/similar",
    "/api/failures/{owner}/{repo}/clusters",
    "/api/trunk/{owner}/{repo}/signal",
    "/api/trunk/{owner}/{repo}/red",
    "/api/trunk/{owner}/{repo}/queue",
    "/api/trunk/{owner}/{repo}/broken",
];

/// What every handler may use: ClickHouse (most take just that), and the hot window when
/// the API keeps one.
#[derive(Clone)]
pub struct ApiState {
    pub clickhouse: ClickHouse,
    pub hot: Option<Arc<HotWindow>>,
}

impl FromRef<ApiState> for ClickHouse {
    fn from_ref(state: &ApiState) -> ClickHouse {
        state.clickhouse.clone()
    }
}

/// The API's and the pages' routes, without a hot window.
pub fn router(clickhouse: ClickHouse) -> Router {
    router_with(ApiState {
        clickhouse,
        hot: None,
    })
}

/// The API's and the pages' routes.
pub fn router_with(state: ApiState) -> Router {
    Router::new()
        .route(API_ROUTES[0], get(routes::hud_grid))
        .route(API_ROUTES[1], get(routes::commit_page))
        .route(API_ROUTES[2], get(routes::pull_page))
        .route(API_ROUTES[3], get(routes::oot_summary))
        .route(API_ROUTES[4], get(routes::oot_pr))
        .route(API_ROUTES[5], get(routes::oot_backend))
        .route(API_ROUTES[6], get(routes::job))
        .route(API_ROUTES[7], get(routes::failures_endpoint))
        .route(API_ROUTES[8], get(routes::queued_endpoint))
        .route(API_ROUTES[9], get(routes::openapi))
        .route(API_ROUTES[10], get(routes::job_tests))
        .route(API_ROUTES[11], get(routes::test_history))
        .route(API_ROUTES[12], get(routes::flaky_tests))
        .route(API_ROUTES[13], get(routes::disabled_tests))
        .route(API_ROUTES[14], get(routes::slowest_tests))
        .route(API_ROUTES[15], get(routes::search_tests))
        .route(API_ROUTES[16], get(routes::drci))
        .route(API_ROUTES[17], get(routes::drci_comment))
        .route(API_ROUTES[18], get(routes::similar_failures))
        .route(API_ROUTES[19], get(routes::failure_clusters))
        .route(API_ROUTES[20], get(routes::trunk_signal))
        .route(API_ROUTES[21], get(routes::trunk_red))
        .route(API_ROUTES[22], get(routes::trunk_queue))
        .route(API_ROUTES[23], get(routes::trunk_broken))
        .route("/", get(pages::index))
        .route("/hud/{owner}/{repo}/{*branch}", get(pages::grid_page))
        .route("/{owner}/{repo}/commit/{sha}", get(pages::commit_page))
        .route("/{owner}/{repo}/pull/{number}", get(pages::pull_page))
        .route("/{owner}/{repo}/job/{job_id}", get(pages::job_page))
        .route(
            "/tests/{owner}/{repo}/history",
            get(pages::test_history_page),
        )
        .route("/tests/{owner}/{repo}/flaky", get(pages::flaky_page))
        .route("/tests/{owner}/{repo}/disabled", get(pages::disabled_page))
        .route("/failures/{owner}/{repo}", get(triage_pages::clusters_page))
        .route("/trunk/{owner}/{repo}", get(triage_pages::trunk_page))
        .route("/oot", get(pages::oot_summary_page))
        .route("/oot/{org}/{repo}", get(pages::oot_backend_page))
        .route("/static/hud.css", get(pages::stylesheet))
        .fallback(pages::not_found)
        .with_state(state)
        .merge(metrics_router())
}

/// Serves the API and the pages on `listener` until `shutdown`, without a hot window.
pub async fn serve(
    listener: TcpListener,
    clickhouse: ClickHouse,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    serve_with(
        listener,
        ApiState {
            clickhouse,
            hot: None,
        },
        shutdown,
    )
    .await
}

/// Serves the API and the pages on `listener` until `shutdown`.
pub async fn serve_with(
    listener: TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, hot_window = state.hot.is_some(), "api listening");
    // Ready while ClickHouse answers: every answer can come from it (the hot window only
    // answers what it holds, and falls back to ClickHouse).
    let health = Health::new()
        .clickhouse(&state.clickhouse)
        .router(shutdown.clone());
    axum::serve(listener, health.merge(router_with(state)))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_fit_together() {
        let config = hudstream_runtime::config::ClickHouseConfig::default();
        let _ = router(ClickHouse::new(&config).expect("client"));
    }

    #[test]
    fn the_openapi_document_describes_every_route_and_only_those() {
        let doc: serde_json::Value = serde_json::from_str(routes::OPENAPI).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.0.3");
        let mut documented: Vec<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        documented.sort();
        let mut served: Vec<String> = API_ROUTES.iter().map(|r| r.replace("{*", "{")).collect();
        served.sort();
        assert_eq!(documented, served);
        // Every path parameter is declared.
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let declared: Vec<&str> = item["get"]["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for segment in path.split('/').filter(|s| s.starts_with('{')) {
                let name = segment.trim_matches(|c| c == '{' || c == '}');
                assert!(declared.contains(&name), "{path}: {name} is not declared");
            }
            assert!(item["get"]["responses"]["200"].is_object(), "{path}");
        }
    }
}
