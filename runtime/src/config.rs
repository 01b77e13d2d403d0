//! Configuration: one file plus environment overrides, for every stage.
//!
//! Values come from, in increasing priority: the defaults below, the TOML file given with
//! `--config` (or `HUDSTREAM_CONFIG`), and environment variables named
//! `HUDSTREAM_<SECTION>__<KEY>` — e.g. `HUDSTREAM_KAFKA__BROKERS=10.0.0.1:9092` or
//! `HUDSTREAM_GATEWAY__WEBHOOK_SECRETS='["new", "old"]'`. Every key is documented in
//! `deploy/hudstream.example.toml`. Secrets are [`Secret`]s: they never reach a log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

mod pipeline;
pub use pipeline::{BatchLimits, PipelineConfig};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub clickhouse: ClickHouseConfig,
    pub gateway: GatewayConfig,
    pub api: ApiConfig,
    pub pipeline: PipelineConfig,
    pub logs: LogsConfig,
    pub tests: TestsConfig,
    pub reconcile: ReconcileConfig,
    pub backfill: BackfillConfig,
    pub drci: DrciConfig,
    pub archive: ArchiveConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated. Use 127.0.0.1 rather than localhost with tansu.
    pub brokers: String,
    /// Prepended to every topic name, to share one cluster between deployments.
    pub topic_prefix: String,
    /// Consumer groups are named `<group_prefix>.<stage>`.
    pub group_prefix: String,
    /// Partitions of the topics `hudstream topics` creates.
    pub partitions: i32,
    /// Replication factor of the topics `hudstream topics` creates (3 in production).
    pub replication_factor: i32,
    /// Consumer session timeout. Kept low: tansu holds a group join for half of it.
    pub session_timeout_ms: u32,
    pub heartbeat_interval_ms: u32,
    /// How long the gateway waits for the broker to acknowledge an append before answering 503.
    pub append_timeout_ms: u64,
    /// How long the producer waits to batch records (librdkafka `linger.ms`): latency vs batching.
    pub linger_ms: u32,
    /// How often consumers report lag and offsets to the metrics (0 disables).
    pub statistics_interval_ms: u32,
    /// Extra librdkafka properties (e.g. `security.protocol`), applied to every client.
    pub client: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic_prefix: String::new(),
            group_prefix: "hudstream".into(),
            partitions: 8,
            replication_factor: 1,
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 500,
            append_timeout_ms: 5000,
            linger_ms: 1,
            statistics_interval_ms: 5000,
            client: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// The physical name of a catalogue topic.
    pub fn topic(&self, logical: &str) -> String {
        format!("{}{}", self.topic_prefix, logical)
    }

    /// The consumer group of a stage.
    pub fn group(&self, stage: &str) -> String {
        format!("{}.{}", self.group_prefix, stage)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: Secret,
    pub request_timeout_ms: u64,
    /// Empty: one server (the default). Otherwise the name of a cluster in the servers'
    /// `remote_servers`, with `{shard}` and `{replica}` macros and ZooKeeper configured:
    /// migrations create `ReplicatedReplacingMergeTree` tables `<table>_local` and `Distributed`
    /// tables `<table>` over them `ON CLUSTER`, inserts go through the `Distributed` tables
    /// synchronously, and `url` may name any of its nodes (or a load balancer over them).
    pub cluster: String,
    /// ClickHouse settings sent with every statement of every stage, e.g.
    /// `max_execution_time = "10"` (a runaway query is stopped) or `log_queries = "1"` (18.16
    /// logs none by default; every read API query is then in `system.query_log` under a
    /// `query_id` that starts with its saved query's name). Those hudstream sets itself are
    /// refused (see `hudstream_runtime::clickhouse`).
    pub settings: std::collections::BTreeMap<String, SettingValue>,
}

/// A ClickHouse setting's value as ClickHouse reads it: text. A number or a boolean in the
/// file or the environment (`HUDSTREAM_CLICKHOUSE__SETTINGS__MAX_EXECUTION_TIME=10`) is taken
/// as its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SettingValue(pub String);

impl<'de> Deserialize<'de> for SettingValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SettingValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a ClickHouse setting's value: a string, a number or a boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<SettingValue, E> {
                Ok(SettingValue(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<SettingValue, E> {
                // ClickHouse's booleans are 0 and 1.
                Ok(SettingValue(if v { "1" } else { "0" }.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "hudstream".into(),
            user: "default".into(),
            password: Secret::default(),
            request_timeout_ms: 30_000,
            cluster: String::new(),
            settings: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    pub listen: String,
    /// Accepted GitHub webhook secrets; more than one during a rotation. At least one, here or
    /// in `webhook_secret_files`, is required.
    pub webhook_secrets: Vec<Secret>,
    /// Files holding one webhook secret each (trailing newline ignored), e.g. mounted secrets.
    pub webhook_secret_files: Vec<PathBuf>,
    /// Also accept the legacy SHA-1 `X-Hub-Signature` when `X-Hub-Signature-256` is absent.
    pub accept_sha1_signatures: bool,
    /// Largest GitHub body accepted; GitHub caps deliveries at 25 MB.
    pub max_body_bytes: usize,
    /// A request body must arrive within this long, or the answer is 408.
    pub body_read_timeout_ms: u64,
    /// Requests handled at once; beyond it the answer is 503 with `Retry-After`.
    pub max_in_flight: usize,
    /// Tokens accepted on `POST /oot/results` (`X-OOT-Relay-Token` or `x-hud-internal-bot`).
    /// With none configured the endpoint answers 500 "Server misconfigured", as torchci does.
    pub oot_relay_tokens: Vec<Secret>,
    pub oot_relay_token_files: Vec<PathBuf>,
    /// torchci's cap on an OOT result: 2 MB.
    pub oot_max_body_bytes: usize,
    /// Secrets of CircleCI webhooks (`circleci-signature: v1=<hex>`); none disables the endpoint.
    pub circleci_secrets: Vec<Secret>,
    pub circleci_secret_files: Vec<PathBuf>,
    /// Bearer tokens of the operator's endpoints (`POST /admin/backfill`); none disables them.
    pub admin_tokens: Vec<Secret>,
    pub admin_token_files: Vec<PathBuf>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            webhook_secrets: Vec::new(),
            webhook_secret_files: Vec::new(),
            accept_sha1_signatures: false,
            max_body_bytes: 25 * 1024 * 1024,
            body_read_timeout_ms: 5_000,
            max_in_flight: 1024,
            oot_relay_tokens: Vec::new(),
            oot_relay_token_files: Vec::new(),
            oot_max_body_bytes: 2 * 1024 * 1024,
            circleci_secrets: Vec::new(),
            circleci_secret_files: Vec::new(),
            admin_tokens: Vec::new(),
            admin_token_files: Vec::new(),
        }
    }
}

/// Log fetching, storage and classification (`hudstream-logs`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogsConfig {
    /// Run the log fetcher and the classifier with the other stages.
    pub enabled: bool,
    /// Where logs are kept, gzip-compressed: a local directory (`file:///abs/path` or a plain
    /// path) or S3-compatible storage (`s3://bucket/prefix`, credentials and endpoint from the
    /// usual `AWS_*` environment variables).
    pub store: String,
    /// The rule set (torchci's `ruleset.toml` format). Re-read every `ruleset_reload_ms`; a
    /// file that does not compile keeps the old rules and is reported.
    pub ruleset: PathBuf,
    pub ruleset_reload_ms: u64,
    /// `+` command lines kept as a verdict's context (torchci: 12).
    pub context_depth: usize,
    /// Download completed jobs' logs from GitHub. Off where GitHub is unreachable (the local
    /// stack): logs then arrive only by upload.
    pub fetch_from_github: bool,
    /// Fetch logs of completed jobs with these conclusions; empty means all (torchci's choice).
    pub conclusions: Vec<String>,
    /// GitHub's REST API root; tests point it at a local stand-in.
    pub github_api_url: String,
    /// A token for the logs endpoint (PAT or fine-grained). Used when no GitHub App is set.
    pub github_token: Secret,
    pub github_token_file: Option<PathBuf>,
    /// A GitHub App: its id and its private key (PEM). Installation tokens are fetched per
    /// repository, cached, and replaced 5 minutes before they expire.
    pub github_app_id: u64,
    pub github_app_private_key_file: Option<PathBuf>,
    /// Logs downloaded at once.
    pub fetch_concurrency: usize,
    /// Logs classified at once (each on a blocking thread; about one per core).
    pub classify_concurrency: usize,
    /// Attempts at one log on 5xx and network errors before the batch is given back to the
    /// stage runtime (which retries it; nothing is skipped).
    pub fetch_attempts: u32,
    /// Longest a rate-limited fetch waits for the limit to reset before trying again.
    pub rate_limit_max_wait_ms: u64,
    /// Bearer tokens accepted on the gateway's `PUT /logs/{owner}/{repo}/{job_id}`; none
    /// disables uploads.
    pub upload_tokens: Vec<Secret>,
    pub upload_token_files: Vec<PathBuf>,
    /// Uploads handled at once (apart from the gateway's `max_in_flight`); 503 beyond.
    pub upload_max_concurrent: usize,
    /// Largest log kept, uncompressed: a bigger upload is refused (413), a bigger GitHub log
    /// is recorded as unavailable.
    pub max_log_bytes: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            store: "var/logs".into(),
            ruleset: PathBuf::from("classifier/rulesets/pytorch.toml"),
            ruleset_reload_ms: 10_000,
            context_depth: 12,
            fetch_from_github: true,
            conclusions: Vec::new(),
            github_api_url: "https://api.github.com".into(),
            github_token: Secret::default(),
            github_token_file: None,
            github_app_id: 0,
            github_app_private_key_file: None,
            fetch_concurrency: 8,
            classify_concurrency: 2,
            fetch_attempts: 5,
            rate_limit_max_wait_ms: 15 * 60 * 1000,
            upload_tokens: Vec::new(),
            upload_token_files: Vec::new(),
            upload_max_concurrent: 8,
            max_log_bytes: 1 << 30,
        }
    }
}

/// Test reports: uploads (`PUT /tests/{owner}/{repo}/{job_id}`, with the tokens of
/// `logs.upload_tokens`), fetching from runs' artifacts (with the GitHub credentials of
/// `[logs]`), and the parser.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestsConfig {
    /// Run the report parser, and the artifact fetcher if `fetch_artifacts`, with the other
    /// stages.
    pub enabled: bool,
    /// Where reports are kept, gzip-compressed: a directory, `file:///abs/dir` or
    /// `s3://bucket/prefix`, as `logs.store`.
    pub store: String,
    /// Largest report kept, uncompressed: a bigger upload is refused (413), a bigger file in an
    /// artifact is skipped (and counted).
    pub max_report_bytes: u64,
    /// Uploads handled at once (apart from the gateway's `max_in_flight`); 503 beyond.
    pub upload_max_concurrent: usize,
    /// When a workflow run completes, list its artifacts on GitHub and ingest the reports in
    /// those named like `artifact_patterns`. Off where GitHub is unreachable.
    pub fetch_artifacts: bool,
    /// Artifact names to ingest (`*` matches any run of characters). torchci's artifacts are
    /// `test-reports-…_<job id>.zip`: the suffix names the job.
    pub artifact_patterns: Vec<String>,
    /// Largest artifact downloaded (zip); a bigger one is skipped and counted.
    pub max_artifact_bytes: u64,
    /// Artifacts downloaded at once.
    pub fetch_concurrency: usize,
    /// Reports parsed at once (each on a blocking thread; about one per core).
    pub parse_concurrency: usize,
}

impl Default for TestsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            store: "var/tests".into(),
            max_report_bytes: 1 << 30,
            upload_max_concurrent: 8,
            fetch_artifacts: true,
            artifact_patterns: vec!["test-reports-*".into()],
            max_artifact_bytes: 2 << 30,
            fetch_concurrency: 4,
            parse_concurrency: 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: String,
    /// Branches whose broken-trunk state the API keeps current in
    /// `hudstream_trunk_broken_jobs{repository,branch}` (the `HudstreamTrunkBroken` alert),
    /// as `owner/repo:branch`; none by default.
    pub watch_trunks: Vec<String>,
    /// How often the watched branches are checked.
    pub trunk_check_interval_s: u64,
    /// The newest commits of some branches, held in memory (`api/src/hot_window`).
    pub hot_window: HotWindowConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8081".into(),
            watch_trunks: Vec::new(),
            trunk_check_interval_s: 60,
            hot_window: HotWindowConfig::default(),
        }
    }
}

/// `[api.hot_window]`: the grid's first pages answered from memory, fed by the derived topics.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HotWindowConfig {
    pub enabled: bool,
    /// The branches held, in every repository that has them (names, as `main`).
    pub branches: Vec<String>,
    /// Commits held per branch: the grid pages of 50 answered from memory are
    /// `commits / 50` (older pages come from ClickHouse).
    pub commits: usize,
    /// Jobs kept for commits not (yet) in a window (a job can arrive before its push).
    pub pending_jobs: usize,
    /// Pages made from memory kept by `ETag` (MiB): an unchanged page is made once.
    pub page_cache_mb: usize,
}

impl Default for HotWindowConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            branches: vec!["main".into(), "master".into()],
            commits: 300,
            pending_jobs: 50_000,
            page_cache_mb: 64,
        }
    }
}

/// The reconciler (`hudstream reconcile`): repairs what lost webhooks left behind by asking
/// GitHub, with the GitHub credentials of `[logs]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Run the reconciler with `hudstream run` (it needs GitHub, so it is off by default).
    pub enabled: bool,
    /// Pause between two passes of the long-running stage.
    pub interval_ms: u64,
    /// A job or run queued or in progress for longer than this is asked about (torchci's
    /// backfill waits 3 hours).
    pub stale_after_ms: u64,
    /// Only jobs and runs created this recently are looked at: older ones are history.
    pub lookback_ms: u64,
    /// Most GitHub requests one pass makes (torchci's backfill: 200); the rest wait for the
    /// next pass, oldest first.
    pub max_requests_per_pass: usize,
    /// A pass stops early when GitHub says fewer requests than this are left in the hour, so
    /// the log fetcher (same credentials) keeps its share.
    pub min_rate_limit_remaining: u64,
}

/// `hudstream backfill` and `POST /admin/backfill`: a repository's history from GitHub's API
/// (with the GitHub credentials of `[logs]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackfillConfig {
    /// Where each repository's checkpoint is kept (`<owner>__<name>.json`).
    pub checkpoint_dir: PathBuf,
    /// Below this many requests left in GitHub's hour, wait for the renewal or stop.
    pub min_rate_limit_remaining: u64,
    /// The longest wait for that renewal; beyond it the backfill stops, to be run again.
    pub max_rate_limit_wait_ms: u64,
}

impl Default for BackfillConfig {
    fn default() -> Self {
        Self {
            checkpoint_dir: PathBuf::from("var/backfill"),
            min_rate_limit_remaining: 500,
            max_rate_limit_wait_ms: 60 * 60 * 1000,
        }
    }
}

impl BackfillConfig {
    /// The checkpoint file of `repository`.
    pub fn checkpoint(&self, repository: &str) -> PathBuf {
        self.checkpoint_dir
            .join(format!("{}.json", repository.replace('/', "__")))
    }
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_ms: 5 * 60 * 1000,
            stale_after_ms: 3 * 60 * 60 * 1000,
            lookback_ms: 3 * 24 * 60 * 60 * 1000,
            max_requests_per_pass: 200,
            min_rate_limit_remaining: 500,
        }
    }
}

/// The Dr.CI poster (`hudstream drci`): one comment on each pull request with recent job
/// activity saying which failures are its own, edited when a job's class changes — torchci's
/// Dr.CI comment. It posts with the GitHub credentials of `[logs]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DrciConfig {
    /// Run the poster with `hudstream run` (it writes to GitHub, so it is off by default).
    pub enabled: bool,
    /// Pause between two passes.
    pub interval_ms: u64,
    /// PRs whose jobs or log verdicts were written this recently are looked at (torchci: 30
    /// minutes).
    pub window_minutes: u64,
    /// Only these repositories (`owner/name`); empty means every repository with activity.
    pub repositories: Vec<String>,
    /// Where the HUD's pages are served, for the comment's links.
    pub hud_url: String,
    /// The login the poster's credentials comment as (a GitHub App's is `name[bot]`): only a
    /// marked comment by this login is edited, so another tool's copy of the marker is left
    /// alone. Empty: any comment carrying the marker.
    pub bot_login: String,
    /// Most PRs one pass comments on; the rest wait for the next pass.
    pub max_pull_requests_per_pass: usize,
}

impl Default for DrciConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            interval_ms: 60_000,
            window_minutes: 30,
            repositories: Vec::new(),
            hud_url: "http://127.0.0.1:8081".into(),
            bot_login: String::new(),
            max_pull_requests_per_pass: 100,
        }
    }
}

/// The archive stage (`hudstream archive`): every raw topic copied into compressed,
/// time-partitioned files, so the log outlives Kafka's retention.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Run the archive stage with `hudstream run`.
    pub enabled: bool,
    /// Where the files go: a directory (`file:///abs/path` or a plain path) or S3-compatible
    /// storage (`s3://bucket/prefix`, credentials and endpoint from the `AWS_*` variables).
    pub store: String,
    /// Records per file at most (one file per partition and hour of a batch).
    pub batch_max_records: usize,
    /// Input bytes per batch at most.
    pub batch_max_bytes: usize,
    /// How long a batch waits to fill: fewer, bigger files against a longer wait before the
    /// offsets are committed.
    pub batch_linger_ms: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            store: "var/archive".into(),
            batch_max_records: 100_000,
            batch_max_bytes: 64 << 20,
            batch_linger_ms: 60_000,
        }
    }
}

impl ArchiveConfig {
    pub fn batches(&self, pipeline: &PipelineConfig) -> BatchLimits {
        BatchLimits {
            max_records: self.batch_max_records.max(1),
            max_bytes: self.batch_max_bytes.max(1),
            linger: std::time::Duration::from_millis(self.batch_linger_ms),
            max_backoff: std::time::Duration::from_millis(pipeline.retry_max_backoff_ms.max(1)),
            watch_interval: std::time::Duration::from_millis(pipeline.watch_interval_ms.max(100)),
            stall_after: std::time::Duration::from_millis(pipeline.stall_after_ms),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where `/metrics` (Prometheus) is served for stages without an HTTP port of their own;
    /// empty to disable. The gateway and the API also serve `/metrics` on their own port.
    pub metrics_listen: String,
    /// `text` or `json`.
    pub log_format: String,
    /// A `tracing` filter, e.g. `info` or `hudstream=debug,rdkafka=warn`; `RUST_LOG` wins.
    pub log_filter: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            metrics_listen: "127.0.0.1:9464".into(),
            log_format: "text".into(),
            log_filter: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: String },
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

impl Config {
    /// Defaults, then `file` (if given), then `HUDSTREAM_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile {
                    path: path.display().to_string(),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only HUDSTREAM_<SECTION>__<KEY> are settings; other HUDSTREAM_* variables (the
        // config path, test and tool locations) are not, and must not trip `deny_unknown_fields`.
        figment = figment.merge(
            Env::prefixed("HUDSTREAM_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        figment
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
