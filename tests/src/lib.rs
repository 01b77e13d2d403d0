//! The end-to-end harness: a whole hudstream (gateway, processors, projections, API) started
//! in-process against the real broker and the real ClickHouse server that `deploy/local/hud
//! test` starts and names in `HUDSTREAM_TEST_KAFKA_BROKERS` and `HUDSTREAM_TEST_CLICKHOUSE_URL`.
//!
//! Every [`Stack`] gets its own namespace — a topic prefix, consumer-group prefix and ClickHouse
//! database — so tests run side by side without seeing each other. Topics have one partition,
//! which makes "a later delivery has been projected" a barrier for everything sent before it.

use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;

use hudstream_ingest::fixtures::{self, Delivery};
use hudstream_ingest::signature::sign_sha256;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::kafka::{to_in_record, whole_topic_reader};
use hudstream_runtime::shutdown::CancellationToken;
use hudstream_runtime::worker::InRecord;
use hudstream_runtime::{Config, Secret};

/// The real services, from the environment `deploy/local/hud test` sets up.
pub fn services() -> (String, String) {
    let get = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: run the end-to-end tests with `deploy/local/hud test`, which starts a real broker and ClickHouse")
        })
    };
    (
        get("HUDSTREAM_TEST_KAFKA_BROKERS"),
        get("HUDSTREAM_TEST_CLICKHOUSE_URL"),
    )
}

/// A configuration in a fresh namespace on the real services.
pub fn test_config() -> Config {
    let (brokers, clickhouse) = services();
    let ns = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut config = Config::default();
    config.kafka.brokers = brokers;
    config.kafka.topic_prefix = format!("{ns}.");
    config.kafka.group_prefix = ns.clone();
    config.kafka.partitions = 1;
    config.kafka.session_timeout_ms = 2000;
    config.kafka.heartbeat_interval_ms = 300;
    config.clickhouse.url = clickhouse;
    config.clickhouse.database = format!("hs_{ns}");
    // The cluster run of the suite (`hud test` runs the projection and read-API suites again
    // against a 2 × 2 cluster): `url` is one of its nodes.
    config.clickhouse.cluster =
        std::env::var("HUDSTREAM_TEST_CLICKHOUSE_CLUSTER").unwrap_or_default();
    config.gateway.webhook_secrets = vec![Secret::new(format!("secret-{ns}"))];
    config.gateway.oot_relay_tokens = vec![Secret::new(format!("oot-{ns}"))];
    config.gateway.circleci_secrets = vec![Secret::new(format!("circleci-{ns}"))];
    config.pipeline.batch_linger_ms = 50;
    config.pipeline.projection_batch_linger_ms = 100;
    config.kafka.statistics_interval_ms = 1000;
    config.telemetry.metrics_listen = String::new();
    // Only the log-classification suite runs the log stages, with a GitHub stand-in.
    config.logs.enabled = false;
    // Only the suites about test reports run their stages (with a store of their own).
    config.tests.enabled = false;
    config.tests.fetch_artifacts = false;
    config
}

/// `config` with the test-report stages on: uploads with `token` (shared with log uploads),
/// reports kept in a fresh temporary store, no GitHub. Answers the store's directory.
pub fn with_test_reports(config: &mut Config, token: &str) -> std::path::PathBuf {
    let store = std::env::temp_dir().join(format!("hudstream-tests-{}", config.kafka.group_prefix));
    config.tests.enabled = true;
    config.tests.fetch_artifacts = false;
    config.tests.store = store.display().to_string();
    if !config
        .logs
        .upload_tokens
        .iter()
        .any(|t| t.expose() == token)
    {
        config.logs.upload_tokens.push(Secret::new(token));
    }
    store
}

/// The real test reports (`shared/fixtures/test-reports/`): (folder, file name, bytes), sorted.
pub fn test_report_fixtures() -> Vec<(String, String, Vec<u8>)> {
    let root = hudstream_ingest::fixtures::default_dir().join("../test-reports");
    let mut out = Vec::new();
    for folder in ["action-junit-report", "test-reporter"] {
        for entry in std::fs::read_dir(root.join(folder)).expect("test-report fixtures") {
            let path = entry.expect("entry").path();
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default()
                .to_string();
            out.push((
                folder.to_string(),
                file,
                std::fs::read(&path).expect("read"),
            ));
        }
    }
    out.sort();
    out
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A fresh namespace with its topics and tables (logs on).
pub async fn prepared_config() -> Config {
    init_logs();
    let config = test_config();
    hudstream::create_topics(&config).await.expect("topics");
    hudstream::migrate(&config).await.expect("migrate");
    config
}

/// Stages running in this process (the projections, say) until [`Running::stop`].
pub struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Every projection of `config`.
    pub fn projections(config: &Config) -> Running {
        let shutdown = CancellationToken::new();
        let (c, s) = (config.clone(), shutdown.clone());
        Running {
            shutdown,
            task: tokio::spawn(async move { hudstream::run_projections(&c, s).await }),
        }
    }

    /// Whether they stopped (by failing: nothing else stops them before [`Running::stop`]).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops them; they must stop cleanly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("joins")
            .expect("the stages stop cleanly");
    }
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}

/// A running hudstream in its own namespace. Dropping it stops every stage.
pub struct Stack {
    pub config: Config,
    pub gateway_url: String,
    pub api_url: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
}

impl Stack {
    /// Creates topics and tables, then starts every stage.
    pub async fn start() -> Stack {
        Self::start_with(test_config()).await
    }

    pub async fn start_with(config: Config) -> Stack {
        init_logs();
        hudstream::create_topics(&config)
            .await
            .expect("topics are created");
        hudstream::migrate(&config).await.expect("migrations apply");
        let shutdown = CancellationToken::new();
        // Every stage `hudstream run` would run under this configuration, each on its own
        // task; those that serve HTTP get a free port.
        let (mut gateway_url, mut api_url) = (String::new(), String::new());
        let mut tasks = Vec::new();
        for stage in hudstream::stages::STAGES
            .iter()
            .filter(|s| (s.in_run)(&config))
        {
            let listener = match stage.http {
                hudstream::stages::Http::Own(setting) => {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind");
                    let url = format!("http://{}", listener.local_addr().expect("addr"));
                    match setting {
                        "gateway.listen" => gateway_url = url,
                        "api.listen" => api_url = url,
                        other => panic!("the harness does not know {other}"),
                    }
                    Some(listener)
                }
                hudstream::stages::Http::Metrics => None,
            };
            let (c, s) = (config.clone(), shutdown.clone());
            tasks.push(tokio::spawn(
                async move { (stage.start)(&c, listener, s).await },
            ));
        }
        Stack {
            config,
            gateway_url,
            api_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            shutdown,
            tasks,
        }
    }

    pub fn secret(&self) -> &Secret {
        &self.config.gateway.webhook_secrets[0]
    }

    pub fn clickhouse(&self) -> ClickHouse {
        ClickHouse::new(&self.config.clickhouse).expect("clickhouse client")
    }

    /// Sends each delivery the way GitHub does; every one must be accepted (2xx).
    pub async fn post_all<'a>(&self, deliveries: impl IntoIterator<Item = &'a Delivery>) {
        for d in deliveries {
            let status = self.post(d).await.status();
            assert!(status.is_success(), "{}: {status}", d.path.display());
        }
    }

    /// Sends an OOT result the way the relay does (JSON, with this stack's relay token); it
    /// must be accepted (200).
    pub async fn post_oot(&self, body: impl Into<reqwest::Body>) {
        let token = self.config.gateway.oot_relay_tokens[0].expose().to_string();
        let r = self
            .http
            .post(format!("{}/oot/results", self.gateway_url))
            .header("content-type", "application/json")
            .header("x-hud-internal-bot", token)
            .body(body)
            .send()
            .await
            .expect("gateway answers");
        let status = r.status().as_u16();
        assert_eq!(status, 200, "{}", r.text().await.unwrap_or_default());
    }

    /// Sends a delivery the way GitHub does, signed with this stack's secret.
    /// Sends a delivery the way GitHub does — with a captured delivery's own GitHub headers —
    /// signed with this stack's secret.
    pub async fn post(&self, d: &Delivery) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/github/webhook", self.gateway_url))
            .header("content-type", "application/json")
            .header("x-github-event", &d.event)
            .header("x-github-delivery", &d.delivery_id)
            .header("x-hub-signature-256", sign_sha256(self.secret(), &d.body));
        for (name, value) in &d.headers {
            request = request.header(name, value);
        }
        request
            .body(d.body.clone())
            .send()
            .await
            .expect("gateway answers")
    }

    pub async fn post_raw(
        &self,
        event: &str,
        delivery: &str,
        content_type: &str,
        body: Vec<u8>,
        signature: Option<String>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/github/webhook", self.gateway_url))
            .header("content-type", content_type)
            .header("x-github-event", event)
            .header("x-github-delivery", delivery)
            .body(body);
        if let Some(sig) = signature {
            request = request.header("x-hub-signature-256", sig);
        }
        request.send().await.expect("gateway answers")
    }

    /// `PUT /logs/{job}{query}` on the gateway (`job` = `owner/repo/id`) with a bearer token;
    /// returns status and JSON body.
    pub async fn put_log(&self, job: &str, query: &str, token: &str, log: Vec<u8>) -> (u16, Value) {
        let response = self
            .http
            .put(format!("{}/logs/{job}{query}", self.gateway_url))
            .bearer_auth(token)
            .body(log)
            .send()
            .await
            .expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `PUT /tests/{job}{query}` on the gateway (`job` = `owner/repo/id`) with a bearer token,
    /// gzip-encoded if `gzip`; returns status and JSON body.
    pub async fn put_report(
        &self,
        job: &str,
        query: &str,
        token: &str,
        report: Vec<u8>,
        gzip: bool,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .put(format!("{}/tests/{job}{query}", self.gateway_url))
            .bearer_auth(token);
        request = if gzip {
            request
                .header("content-encoding", "gzip")
                .body(self::gzip(&report))
        } else {
            request.body(report)
        };
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GET on the API; returns status and JSON body.
    pub async fn api(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.api_url))
            .send()
            .await
            .expect("api answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls the API until `path` answers 200 with a body that satisfies `done`.
    pub async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, body) = self.api(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{path} never got there; last answer {status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asserts that the hot window answers the grid page at `path` (`/api/hud/…`) and that its
    /// answer is ClickHouse's, field by field (see [`assert_hot_window_agrees`]).
    pub async fn assert_hot_window_agrees(&self, path: &str) {
        assert_hot_window_agrees(&self.http, &self.api_url, path).await;
    }

    /// Every record of a catalogue topic from the start, until `until` holds for the records
    /// read so far (or 30 s pass).
    pub async fn read_topic(
        &self,
        logical: &str,
        until: impl Fn(&[InRecord]) -> bool + Send + 'static,
    ) -> Vec<InRecord> {
        read_topic(&self.config, logical, until).await
    }

    /// Stops every stage and waits for them.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        for task in self.tasks.drain(..) {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!("a stage failed: {e:#}"),
                Err(e) => panic!("a stage panicked: {e}"),
            }
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Sends raw bytes on a new TCP connection and returns what the server answers (status line
/// and body), for requests no HTTP client would send: lying lengths, stalled bodies.
pub async fn raw_http(address: &str, head: &str, body_part: &[u8], then: RawThen) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(body_part).await.expect("write body");
    match then {
        RawThen::HangUp => stream.shutdown().await.expect("shutdown"),
        RawThen::Stall => {}
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// What a [`raw_http`] client does after sending its partial request.
pub enum RawThen {
    /// Closes its sending side: the body is truncated.
    HangUp,
    /// Keeps the connection open and sends nothing more.
    Stall,
}

/// Reads every partition of a topic from the beginning (no consumer group, so no join delay).
/// With one partition — the harness's default — records come in log order.
pub async fn read_topic(
    config: &Config,
    logical: &str,
    until: impl Fn(&[InRecord]) -> bool + Send + 'static,
) -> Vec<InRecord> {
    let kafka = config.kafka.clone();
    let logical = logical.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer = whole_topic_reader(&kafka, &logical).expect("reader");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut records = Vec::new();
        while !until(&records) {
            if std::time::Instant::now() > deadline {
                panic!(
                    "{logical}: condition not met after 30 s; read {} records",
                    records.len()
                );
            }
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                records.push(to_in_record(&kafka.topic_prefix, &m));
            }
        }
        records
    })
    .await
    .expect("reader thread")
}

/// A delivery made from the real fixture `relative` by editing its JSON, with delivery id
/// `derived-{id}`.
pub fn derived(relative: &str, id: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Delivery {
    let mut d = fixture(relative);
    let mut body: serde_json::Value = serde_json::from_slice(&d.body).expect("fixture is JSON");
    edit(&mut body);
    d.body = serde_json::to_vec(&body).expect("json");
    d.delivery_id = format!("derived-{id}");
    d.headers.clear();
    d
}

/// The real fixtures, by path relative to `shared/fixtures/github`.
pub fn fixture(relative: &str) -> Delivery {
    let path = fixtures::default_dir().join(relative);
    fixtures::cached()
        .iter()
        .find(|d| d.path == path)
        .cloned()
        .unwrap_or_else(|| panic!("no fixture {relative}"))
}

/// All real fixtures (loaded once per test binary).
pub fn all_fixtures() -> Vec<Delivery> {
    fixtures::cached().to_vec()
}

/// A ClickHouse server of a test's own (the shared one must stay up for the other tests), on
/// free loopback ports, with its data in a temporary directory so a restart keeps the tables.
/// Uses the `clickhouse-server` that `deploy/local/hud` installs.
pub struct OwnClickHouse {
    pub http_port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl OwnClickHouse {
    pub async fn start() -> OwnClickHouse {
        let dir =
            std::env::temp_dir().join(format!("hudstream-ch-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("data")).expect("data dir");
        let mut server = OwnClickHouse {
            http_port: free_port(),
            dir,
            child: None,
        };
        let template = std::fs::read_to_string("/etc/clickhouse-server/config.xml")
            .expect("/etc/clickhouse-server/config.xml (installed by deploy/local/hud)");
        let d = server.dir.display().to_string();
        let mut config = template;
        for (tag, value) in [
            ("log", format!("{d}/server.log")),
            ("errorlog", format!("{d}/server.err.log")),
            ("http_port", server.http_port.to_string()),
            ("tcp_port", free_port().to_string()),
            ("interserver_http_port", free_port().to_string()),
            ("path", format!("{d}/data/")),
            ("tmp_path", format!("{d}/data/tmp/")),
            ("user_files_path", format!("{d}/data/user_files/")),
            ("format_schema_path", format!("{d}/data/format_schemas/")),
        ] {
            let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
            if let (Some(a), Some(b)) = (config.find(&open), config.find(&close)) {
                config.replace_range(a + open.len()..b, &value);
            }
        }
        // Loopback only, whatever the template listens on.
        while let Some(a) = config.find("<listen_host>") {
            let b = config[a..]
                .find("</listen_host>")
                .map(|b| a + b + 14)
                .expect("closing tag");
            config.replace_range(a..b, "");
        }
        config = config.replace("</yandex>", "<listen_host>127.0.0.1</listen_host></yandex>");
        std::fs::write(server.dir.join("config.xml"), config).expect("config");
        std::fs::copy(
            "/etc/clickhouse-server/users.xml",
            server.dir.join("users.xml"),
        )
        .expect("users.xml");
        server.resume().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// Starts the server (again) on the same port and data, and waits until it answers.
    pub async fn resume(&mut self) {
        let child = std::process::Command::new("clickhouse-server")
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("clickhouse-server (installed by deploy/local/hud)");
        self.child = Some(child);
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if client
                .get(format!("{}/ping", self.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "own ClickHouse did not start; see {}/server.err.log",
            self.dir.display()
        );
    }

    /// Stops the server (SIGTERM, then SIGKILL after 20 s) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg(child.id().to_string())
                .status();
            for _ in 0..200 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl OwnClickHouse {
    /// SIGKILL: no shutdown, no flush — a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The durable local broker (`HUDSTREAM_TEST_DURABLE_BROKER`: nisshi with SQLite storage, as
/// `deploy/local/hud` runs it), on a port and a data folder of a test's own, so it can be
/// SIGKILLed and started again on the same log.
pub struct DurableBroker {
    pub port: u16,
    dir: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl DurableBroker {
    pub async fn start() -> DurableBroker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut broker = DurableBroker {
            port,
            dir: tempdir("durable-broker"),
            child: None,
        };
        broker.resume().await;
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again) on the same port and log, and waits until it accepts connections.
    pub async fn resume(&mut self) {
        let bin = std::env::var("HUDSTREAM_TEST_DURABLE_BROKER").expect(
            "HUDSTREAM_TEST_DURABLE_BROKER: run with deploy/local/hud test, which builds the durable broker",
        );
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = std::process::Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                // nisshi reads the path relative to its working directory.
                "--storage-engine",
                "sqlite://log.db",
                "--group-initial-rebalance-delay",
                "0s",
            ])
            .current_dir(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the durable broker starts");
        self.child = Some(child);
        for _ in 0..400 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the durable broker on {} did not start", self.port);
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DurableBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for OwnClickHouse {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// [`table_checksum`] of every projection's table, by table name.
pub async fn all_table_checksums(
    clickhouse: &ClickHouse,
) -> std::collections::BTreeMap<String, (usize, String)> {
    let mut out = std::collections::BTreeMap::new();
    for encoder in hudstream_projections::all() {
        out.insert(
            encoder.table().to_string(),
            table_checksum(clickhouse, encoder.table()).await,
        );
    }
    out
}

/// An ordered checksum of a table's current contents: every row of `SELECT * … FINAL` (one per
/// entity), as text, sorted, hashed. Equal checksums mean equal tables.
pub async fn table_checksum(clickhouse: &ClickHouse, table: &str) -> (usize, String) {
    use sha2::Digest;
    let text = clickhouse
        .query_text(
            &format!("SELECT * FROM {}.{table} FINAL", clickhouse.database()),
            "TabSeparated",
        )
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"));
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    let mut hash = sha2::Sha256::new();
    for line in &lines {
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    (lines.len(), hex::encode(hash.finalize()))
}

/// One number from ClickHouse (`SELECT … AS n`).
pub async fn count(clickhouse: &ClickHouse, sql: &str) -> u64 {
    clickhouse
        .fetch_all::<u64>(&sql.replace("{db}", clickhouse.database()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .first()
        .copied()
        .unwrap_or(0)
}

/// Waits until every stage of `config` has handled every record of its topics (consumer lag 0
/// everywhere), then a moment more: tansu's high watermark can read one batch low.
pub async fn caught_up(config: &Config) {
    let config = config.clone();
    wait_until("every stage caught up", 180, || {
        let config = config.clone();
        async move {
            tokio::task::spawn_blocking(move || hudstream::commands::status::offsets(&config))
                .await
                .ok()
                .and_then(Result::ok)
                .is_some_and(|offsets| offsets.iter().all(|p| p.lag() == 0))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Polls `check` every 200 ms until it holds; fails the test after `seconds`.
pub async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    seconds: u64,
    check: impl Fn() -> F,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not after {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where screenshots go: `HUDSTREAM_SCREENSHOTS_DIR`, else `var/screenshots` in the checkout.
pub fn screenshots_dir() -> std::path::PathBuf {
    std::env::var_os("HUDSTREAM_SCREENSHOTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../var/screenshots")
        })
}

pub fn chromium() -> std::path::PathBuf {
    let path = std::env::var_os("HUDSTREAM_TEST_CHROMIUM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "no Chromium at {}: run the tests with `deploy/local/hud test`, which installs Debian's chromium",
        path.display()
    );
    path
}

/// Runs headless Chromium on `url` with `extra` arguments; returns its stdout.
pub async fn run_chromium(url: &str, extra: &[String]) -> String {
    let profile = tempdir("chromium-profile");
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish with {url} in 90 s"))
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn tempdir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "hudstream-{what}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Opens a page in headless Chromium, checks its DOM has every `expected` piece, and saves a
/// screenshot as `name.png`.
pub async fn check_page(stack: &Stack, name: &str, path: &str, expected: &[&str]) {
    let url = format!("{}{path}", stack.api_url);
    let dom = run_chromium(&url, &["--dump-dom".to_string()]).await;
    for piece in expected {
        assert!(
            dom.contains(piece),
            "{path}: the DOM has no {piece:?}\n{dom}"
        );
    }
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    let file = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    run_chromium(
        &url,
        &[
            format!("--screenshot={}", file.display()),
            "--window-size=1400,900".to_string(),
        ],
    )
    .await;
    let png = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{name}: not a screenshot"
    );
}

/// The first place two JSON values differ, as a path (`commits[3].jobs[17].conclusion`), with
/// both sides; `None` when they are equal.
pub fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value, at: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    walk(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        &format!("{at}.{k}"),
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| walk(p, q, &format!("{at}[{i}]"))),
            _ if a == b => None,
            _ => Some(format!("{at}: {a} ≠ {b}")),
        }
    }
    walk(a, b, "")
}

/// Asserts that the hot window answers the grid page at `path` (`X-Hud-Source: memory`), that
/// its answer is the one ClickHouse gives (`X-Hud-Source: clickhouse`), field by field, and
/// that the hot window's `ETag` gives a 304. Memory reads the log while the projections write
/// ClickHouse, so the two may differ for a moment: they must agree within 30 s.
pub async fn assert_hot_window_agrees(http: &reqwest::Client, api_url: &str, path: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let memory = http
            .get(format!("{api_url}{path}"))
            .send()
            .await
            .expect("api answers");
        let source = memory
            .headers()
            .get("x-hud-source")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let etag = memory
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let memory_status = memory.status().as_u16();
        let memory: Value = memory.json().await.unwrap_or(Value::Null);
        let page_with = |header: &'static str, value: &'static str| {
            let request = http.get(format!("{api_url}{path}")).header(header, value);
            async move {
                let answer = request.send().await.expect("api answers");
                answer.json::<Value>().await.unwrap_or(Value::Null)
            }
        };
        let clickhouse = page_with("x-hud-source", "clickhouse").await;
        // Made again rather than from the page cache: the same.
        let made = page_with("cache-control", "no-cache").await;
        let difference = first_difference(&memory, &clickhouse)
            .or_else(|| first_difference(&made, &clickhouse).map(|d| format!("made again: {d}")));
        if memory_status == 200 && source == "memory" && difference.is_none() {
            let again = http
                .get(format!("{api_url}{path}"))
                .header("if-none-match", &etag)
                .send()
                .await
                .expect("api answers");
            if again.status().as_u16() == 304 {
                return;
            }
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "{path}: the hot window ({memory_status}, from {source:?}) and ClickHouse still differ after 30 s: {}",
                difference.unwrap_or_else(|| "the same answers, but no 304 for its ETag".into())
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A TCP stand-in in front of a real server that takes the first `drops` connections, reads
/// their request and closes them without a word — what a client sees when the server closes a
/// pooled keep-alive connection just as a request goes out — and joins every later connection
/// to the server unchanged.
pub struct ClosingProxy {
    pub url: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: JoinHandle<()>,
}

impl ClosingProxy {
    /// Listens on a free loopback port in front of `target` (`http://host:port`).
    pub async fn start(target: &str, drops: usize) -> ClosingProxy {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncReadExt;
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let target = target.clone();
                tokio::spawn(async move {
                    if n < drops {
                        // Read the whole request (until the client waits for an answer), so
                        // the close is a FIN after it, not a reset of unread bytes.
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(Ok(read)) =
                            tokio::time::timeout(Duration::from_millis(100), client.read(&mut buf))
                                .await
                        {
                            if read == 0 {
                                break;
                            }
                        }
                        return;
                    }
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        ClosingProxy {
            url,
            accepted,
            task,
        }
    }

    /// Connections accepted so far, the closed ones included.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ClosingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
