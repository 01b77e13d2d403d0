//! The broker goes away: the gateway answers 503 (never 2xx) until it is back, and then the
//! same requests succeed. Every delivery that got a 2xx is in the log afterwards.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hudstream_e2e::{fixture, test_config, Stack};
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::GITHUB_WORKFLOW_JOB;

/// A broker of this test's own, so stopping it disturbs no other test.
fn start_broker(port: u16) -> Child {
    let tansu = std::env::var("HUDSTREAM_TEST_TANSU")
        .expect("HUDSTREAM_TEST_TANSU: run with deploy/local/hud test");
    let url = format!("tcp://127.0.0.1:{port}");
    Command::new(tansu)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts")
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("broker on {port} did not start");
}

fn delivery_ids(records: &[hudstream_runtime::worker::InRecord]) -> Vec<String> {
    records
        .iter()
        .filter_map(|r| r.header_str(h::GITHUB_DELIVERY).map(String::from))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_broker_is_down_requests_get_503_and_nothing_is_acknowledged() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let mut broker = start_broker(port);
    wait_for_port(port).await;
    let mut config = test_config();
    config.kafka.brokers = format!("127.0.0.1:{port}");
    config.kafka.append_timeout_ms = 1500;
    let stack = Stack::start_with(config).await;
    let mut d = fixture("workflow_job/queued.payload.json");

    d.delivery_id = "before".into();
    assert_eq!(stack.post(&d).await.status().as_u16(), 202);
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, |rs| !rs.is_empty())
        .await;
    assert_eq!(delivery_ids(&records), vec!["before"]);
    let (ready, _) = (
        stack
            .http
            .get(format!("{}/readyz", stack.gateway_url))
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16(),
        (),
    );
    assert_eq!(ready, 200);

    broker.kill().expect("stop broker");
    broker.wait().expect("reaped");
    let mut refused = Vec::new();
    for i in 0..3 {
        d.delivery_id = format!("during-{i}");
        let r = stack.post(&d).await;
        assert_eq!(r.status().as_u16(), 503, "no 2xx while the broker is down");
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["code"], "broker_unavailable");
        refused.push(d.delivery_id.clone());
    }
    assert_eq!(
        stack
            .http
            .get(format!("{}/readyz", stack.gateway_url))
            .send()
            .await
            .expect("answer")
            .status()
            .as_u16(),
        503
    );

    // The broker is back (empty: it keeps data in memory). GitHub's redelivery of the same
    // requests now succeeds, and every 2xx is in the log.
    let mut broker = start_broker(port);
    wait_for_port(port).await;
    hudstream::create_topics(&stack.config)
        .await
        .expect("topics again");
    let mut acknowledged = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for id in &refused {
        d.delivery_id = id.clone();
        loop {
            let status = stack.post(&d).await.status().as_u16();
            if status == 202 {
                acknowledged.push(id.clone());
                break;
            }
            assert_eq!(status, 503, "only 503 until the producer reconnects");
            assert!(
                tokio::time::Instant::now() < deadline,
                "the gateway never recovered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let want = acknowledged.clone();
    let records = stack
        .read_topic(GITHUB_WORKFLOW_JOB, move |rs| {
            want.iter().all(|id| delivery_ids(rs).contains(id))
        })
        .await;
    for id in &acknowledged {
        assert!(
            delivery_ids(&records).contains(id),
            "{id} was acknowledged but is not in the log"
        );
    }
    stack.stop().await;
    broker.kill().ok();
}
