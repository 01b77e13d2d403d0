//! `/readyz` on the real broker and ClickHouse: ready when both answer; a ClickHouse that does
//! not answer makes the stage not ready, with the reason, while `/healthz` still answers.

use hudstream_e2e::test_config;

/// Serves `/healthz` and `/readyz`; cancelling the token stops the background probe.
async fn serve(
    health: hudstream_runtime::health::Health,
    probe: tokio_util::sync::CancellationToken,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = health.router(probe);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.expect("answer");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_asks_the_broker_and_clickhouse() {
    // The gauge Prometheus reads is set by every check.
    let metrics = hudstream_runtime::telemetry::prometheus().expect("recorder");
    let config = test_config();
    let up = tokio_util::sync::CancellationToken::new();
    let url = serve(
        hudstream::health(&config, true).expect("health"),
        up.clone(),
    )
    .await;
    let (status, body) = get(&format!("{url}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dependencies"]["kafka"]["ok"], true, "{body}");
    assert_eq!(body["dependencies"]["clickhouse"]["ok"], true, "{body}");
    let text = metrics.render();
    assert!(
        text.contains(r#"hudstream_ready{dependency="clickhouse"} 1"#)
            && text.contains(r#"hudstream_ready{dependency="kafka"} 1"#),
        "{text}"
    );
    up.cancel();

    // ClickHouse on a port nobody listens on.
    let mut down = config.clone();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    down.clickhouse.url = format!("http://{}", unused.local_addr().expect("address"));
    drop(unused);
    let url = serve(
        hudstream::health(&down, true).expect("health"),
        tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let (status, body) = get(&format!("{url}/readyz")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["dependencies"]["kafka"]["ok"], true, "{body}");
    assert!(
        body["dependencies"]["clickhouse"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ClickHouse does not answer")),
        "{body}"
    );
    let text = metrics.render();
    assert!(
        text.contains(r#"hudstream_ready{dependency="clickhouse"} 0"#),
        "{text}"
    );
    let healthz = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("answer");
    assert_eq!(healthz.status().as_u16(), 200, "alive, though not ready");
}
