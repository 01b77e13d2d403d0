//! `/readyz` on the real broker and ClickHouse: ready when both answer; a ClickHouse that does
//! not answer makes the stage not ready, with the reason, while `/healthz` still answers.

use hudstream_e2e::test_config;

async fn serve(health: hudstream_runtime::health::Health) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = health.router(tokio_util::sync::CancellationToken::new());
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
    let config = test_config();
    let url = serve(hudstream::health(&config, true).expect("health")).await;
    let (status, body) = get(&format!("{url}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dependencies"]["kafka"]["ok"], true, "{body}");
    assert_eq!(body["dependencies"]["clickhouse"]["ok"], true, "{body}");

    // ClickHouse on a port nobody listens on.
    let mut down = config.clone();
    let unused = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    down.clickhouse.url = format!("http://{}", unused.local_addr().expect("address"));
    drop(unused);
    let url = serve(hudstream::health(&down, true).expect("health")).await;
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
    let healthz = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("answer");
    assert_eq!(healthz.status().as_u16(), 200, "alive, though not ready");
}
