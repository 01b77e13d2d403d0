//! hudstream on a 2 × 2 ClickHouse cluster (#21), next to one server: `hud test` starts
//! ZooKeeper and four ClickHouse servers (`HUDSTREAM_TEST_CLUSTER_URL` is one of them,
//! `HUDSTREAM_TEST_CLUSTER_NAME` the cluster, `HUDSTREAM_TEST_CLUSTER_DIR` their pids and
//! configurations). It also runs the projection, read-API and triage suites again against the
//! cluster; this file holds what only a cluster has:
//! - the same log projected onto one server and onto the cluster gives identical tables, and
//!   so do a replay on the cluster and a replay on one server — "the highest version wins" answered per shard is enough
//!   because an entity never spans shards, which is checked shard by shard;
//! - a replica SIGKILLed under load: inserts and reads go on through the other replica, nothing
//!   acknowledged is lost, and the replica catches up after its restart;
//! - ZooKeeper down: inserts into the replicated tables pause (the projections retry and
//!   commit nothing), reads go on, and everything resumes once it is back.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hudstream_e2e::*;
use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::Config;

/// The failure test stops ZooKeeper, which every cluster test needs: one test at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CLUSTER.lock().unwrap_or_else(|p| p.into_inner())
}

/// `config` moved onto the cluster: its projections in groups of their own, so that both
/// consume the same derived topics.
fn on_cluster(config: &Config) -> Config {
    let mut cluster = config.clone();
    cluster.clickhouse.url = std::env::var("HUDSTREAM_TEST_CLUSTER_URL").expect(
        "HUDSTREAM_TEST_CLUSTER_URL: run with deploy/local/hud test, which starts the cluster",
    );
    cluster.clickhouse.cluster =
        std::env::var("HUDSTREAM_TEST_CLUSTER_NAME").expect("HUDSTREAM_TEST_CLUSTER_NAME");
    cluster.kafka.group_prefix = format!("{}-cluster", config.kafka.group_prefix);
    cluster
}

/// Each shard's first replica as `host:port` (native protocol), for `remote()`.
async fn shards(clickhouse: &ClickHouse, cluster: &str) -> Vec<String> {
    let rows: Vec<(u32, String, u16)> = clickhouse
        .fetch_all(&format!(
            "SELECT shard_num, host_address, port FROM system.clusters WHERE cluster = '{cluster}' AND replica_num = 1 ORDER BY shard_num"
        ))
        .await
        .expect("system.clusters");
    rows.into_iter()
        .map(|(_, host, port)| format!("{host}:{port}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_log_makes_the_same_tables_on_a_cluster_as_on_one_server_and_so_does_a_replay() {
    let _alone = one_at_a_time();
    let single = test_config();
    let stack = Stack::start_with(single.clone()).await;
    let cluster = on_cluster(&single);
    hudstream::migrate(&cluster)
        .await
        .expect("migrate the cluster");
    let projections = Running::projections(&cluster);

    stack.post_all(&all_fixtures()).await;
    let derived =
        hudstream_ingest::fixtures::derived_deliveries(&hudstream_ingest::fixtures::default_dir())
            .expect("the derived deliveries");
    stack.post_all(&derived).await;

    let one = stack.clickhouse();
    let many = ClickHouse::new(&cluster.clickhouse).expect("cluster client");
    // Both sides consume the same derived topics: wait until they agree, table by table, and
    // one server's tables have stopped changing.
    let started = Instant::now();
    let mut previous = BTreeMap::new();
    let (mut a, mut b) = (
        all_table_checksums(&one).await,
        all_table_checksums(&many).await,
    );
    while a != b || a != previous || a.get("workflow_job").is_none_or(|(rows, _)| *rows == 0) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "one server and the cluster still differ after 120 s:\n{}",
            a.iter()
                .filter(|(t, v)| b.get(*t) != Some(*v))
                .map(|(t, v)| format!("  {t}: one server {v:?}, cluster {:?}", b.get(t)))
                .collect::<Vec<_>>()
                .join("\n")
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        previous = a;
        (a, b) = (
            all_table_checksums(&one).await,
            all_table_checksums(&many).await,
        );
    }
    let filled = a.values().filter(|(rows, _)| *rows > 0).count();
    println!(
        "one server and the cluster agree on all {} tables ({filled} not empty) after {:.1} s",
        a.len(),
        started.elapsed().as_secs_f64()
    );

    // An entity never spans shards: each shard's local rows hold entities no other shard has.
    let db = many.database().to_string();
    let nodes = shards(&many, &cluster.clickhouse.cluster).await;
    assert_eq!(nodes.len(), 2, "two shards");
    for encoder in hudstream_projections::all() {
        let table = encoder.table();
        let key = many.entity_key(table).await.expect("entity key");
        let key: Vec<&String> = key.iter().filter(|c| *c != "version").collect();
        let keys = key
            .iter()
            .map(|c| format!("toString({c})"))
            .collect::<Vec<_>>()
            .join(", '|', ");
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut per_shard = Vec::new();
        for (shard, node) in nodes.iter().enumerate() {
            let entities: Vec<String> = many
                .fetch_all(&format!(
                    "SELECT DISTINCT concat({keys}) FROM remote('{node}', {db}, {table}_local)"
                ))
                .await
                .expect("a shard's entities");
            per_shard.push(entities.len());
            for e in entities {
                if let Some(other) = seen.insert(e.clone(), shard) {
                    panic!("{table}: entity {e} is on shards {other} and {shard}");
                }
            }
        }
        if table == "workflow_job" {
            assert!(
                per_shard.iter().all(|n| *n > 0),
                "jobs are spread over both shards: {per_shard:?}"
            );
        }
    }

    // A replay on the cluster, live projections running: the same tables again.
    let replayer = hudstream::replayer(&cluster).expect("replayer");
    let replay_started = Instant::now();
    let mut events = 0;
    for encoder in hudstream::tables_to_replay("all").expect("tables") {
        events += replayer
            .replay(encoder.clone(), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("replaying {}: {e:#}", encoder.table()))
            .events;
    }
    println!(
        "replay all on the cluster: {events} events in {:.1} s",
        replay_started.elapsed().as_secs_f64()
    );
    // And one server replays the same log: the same tables on both sides again.
    let one_replayer = hudstream::replayer(&single).expect("replayer");
    for encoder in hudstream::tables_to_replay("all").expect("tables") {
        one_replayer
            .replay(encoder.clone(), &mut |_| {})
            .await
            .unwrap_or_else(|e| panic!("replaying {} on one server: {e:#}", encoder.table()));
    }
    let replayed_one = all_table_checksums(&one).await;
    assert_eq!(
        replayed_one, a,
        "a replay on one server rebuilds its tables"
    );
    assert_eq!(
        all_table_checksums(&many).await,
        replayed_one,
        "a replay on the cluster makes the tables a replay on one server makes"
    );
    let leftovers: Vec<String> = many
        .fetch_all(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' AND (position(name, '__replay') > 0 OR position(name, '__old') > 0)"
        ))
        .await
        .expect("tables");
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    projections.stop().await;
    stack.stop().await;
}

/// A node of the test cluster, stopped and started by its pid file and configuration.
struct Node {
    dir: std::path::PathBuf,
    name: String,
}

impl Node {
    fn new(name: &str) -> Node {
        Node {
            dir: std::env::var("HUDSTREAM_TEST_CLUSTER_DIR")
                .expect("HUDSTREAM_TEST_CLUSTER_DIR")
                .into(),
            name: name.to_string(),
        }
    }

    fn pidfile(&self) -> std::path::PathBuf {
        self.dir.join("pids").join(format!("{}.pid", self.name))
    }

    fn kill(&self) {
        let pid = std::fs::read_to_string(self.pidfile()).expect("pid file");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success(), "SIGKILL {}", self.name);
        // Until it is gone (its ports free) it may still answer.
        std::thread::sleep(Duration::from_millis(500));
    }

    /// Starts it again as `hud` did (the pid file follows, for `hud`'s clean-up).
    fn start(&self, program: &str, args: &[String]) {
        let child = Command::new(program)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        std::fs::write(self.pidfile(), child.id().to_string()).expect("pid file");
        std::mem::forget(child);
    }

    fn start_clickhouse(&self) {
        let config = self.dir.join(format!("{}-config.xml", self.name));
        self.start(
            "clickhouse-server",
            &[format!("--config-file={}", config.display())],
        );
    }

    fn start_zookeeper(&self) {
        self.start(
            "java",
            &[
                "-Xmx256m".into(),
                format!("-Dzookeeper.log.dir={}/log", self.dir.display()),
                "-cp".into(),
                "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar".into(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
                self.dir.join("zoo.cfg").display().to_string(),
            ],
        );
    }

    fn http(&self) -> String {
        let port = std::fs::read_to_string(self.dir.join(format!("{}.http_port", self.name)))
            .expect("port file");
        format!("http://127.0.0.1:{}", port.trim())
    }
}

/// Rows per replicated table of the test's database on one server (`None` while it does not
/// answer): equal on two replicas of a shard once one has fetched every part the other has.
async fn replica_rows(server: &ClickHouse) -> Option<BTreeMap<String, u64>> {
    let rows: Vec<(String, u64)> = server
        .fetch_all(&format!(
            "SELECT table, toUInt64(sum(rows)) FROM system.parts \
             WHERE database = '{}' AND active AND match(table, '_local$') GROUP BY table",
            server.database()
        ))
        .await
        .ok()?;
    Some(rows.into_iter().collect())
}

/// Sends `n` distinct jobs (ids from `first`) through the gateway, one every 20 ms; answers the
/// ids acknowledged.
async fn send_jobs(stack: &Stack, first: i64, n: i64) -> Vec<i64> {
    let mut acknowledged = Vec::new();
    for id in first..first + n {
        let d = derived(
            "workflow_job/in_progress.payload.json",
            &format!("cluster-{id}"),
            |b| b["workflow_job"]["id"] = id.into(),
        );
        if stack.post(&d).await.status().is_success() {
            acknowledged.push(id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    acknowledged
}

/// Of `ids`, how many are in `workflow_job`.
async fn stored(clickhouse: &ClickHouse, ids: &[i64]) -> usize {
    let list = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let n: Vec<u64> = clickhouse
        .fetch_all(&format!(
            "SELECT count() FROM (SELECT DISTINCT id FROM {}.workflow_job WHERE id IN ({list}))",
            clickhouse.database()
        ))
        .await
        .unwrap_or_default();
    n.first().copied().unwrap_or(0) as usize
}

/// Waits until every job of `ids` is stored, failing the test `seconds` after `since`.
async fn all_stored(
    clickhouse: &ClickHouse,
    ids: &[i64],
    since: Instant,
    seconds: u64,
    when: &str,
) {
    while stored(clickhouse, ids).await < ids.len() {
        assert!(
            since.elapsed() < Duration::from_secs(seconds),
            "{when}: {} of {} acknowledged jobs stored after {seconds} s",
            stored(clickhouse, ids).await,
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_under_load_loses_nothing_and_catches_up_and_zookeeper_down_pauses_inserts_only(
) {
    let _alone = one_at_a_time();
    let config = on_cluster(&test_config());
    let stack = Stack::start_with(config.clone()).await;
    let clickhouse = stack.clickhouse();
    let db = clickhouse.database().to_string();

    // 1. Shard 1's second replica SIGKILLed while jobs arrive.
    let replica = Node::new("clickhouse-s1r2");
    let sending = {
        let s = &stack;
        async move { send_jobs(s, 990_000_000, 150).await }
    };
    let killing = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        replica.kill();
    };
    let (acknowledged, ()) = tokio::join!(sending, killing);
    let started = Instant::now();
    all_stored(
        &clickhouse,
        &acknowledged,
        started,
        60,
        "with a replica down",
    )
    .await;
    println!(
        "replica s1r2 killed under load: delivered 150, acknowledged {}, lost 0 (all in workflow_job {:.1} s after the last)",
        acknowledged.len(),
        started.elapsed().as_secs_f64()
    );
    // Back, it catches up with its shard.
    replica.start_clickhouse();
    let mut own = hudstream_runtime::config::ClickHouseConfig::default();
    own.url = replica.http();
    own.database = db.clone();
    let replica_client = ClickHouse::new(&own).expect("replica client");
    let first = {
        let mut first = hudstream_runtime::config::ClickHouseConfig::default();
        first.url = Node::new("clickhouse-s1r1").http();
        first.database = db.clone();
        ClickHouse::new(&first).expect("client")
    };
    // Caught up means every table, not only the one the jobs were counted in: a replica fetches
    // each table's parts on its own, and while ZooKeeper is down (next) it fetches none — a
    // read the cluster sends to it would answer from whatever it had.
    let restarted = Instant::now();
    loop {
        let (mine, theirs) = (
            replica_rows(&replica_client).await,
            replica_rows(&first).await,
        );
        if mine.is_some() && mine == theirs {
            let rows = mine.unwrap_or_default();
            println!(
                "replica s1r2 caught up with s1r1 ({} tables, {} rows in workflow_job_local) {:.1} s after its restart",
                rows.len(),
                rows.get("workflow_job_local").copied().unwrap_or(0),
                restarted.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "replica s1r2 has {mine:?} rows, s1r1 {theirs:?}, 60 s after its restart"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 2. ZooKeeper down: inserts pause, reads go on, then everything resumes. What is read
    // during the outage is first read before it, so the check is of the outage alone (a
    // projection retrying a batch the replica's restart refused would otherwise look alike).
    let job = "/api/jobs/Codertocat/Hello-World/990000000";
    let before = stack.wait_for(job, |_| true).await;
    let zookeeper = Node::new("zookeeper");
    zookeeper.kill();
    let during = send_jobs(&stack, 991_000_000, 50).await;
    let (status, body) = stack.api(job).await;
    assert_eq!(
        status, 200,
        "reads go on while ZooKeeper is down; the API answered {body}"
    );
    assert_eq!(
        (&body["id"], &body["version"]),
        (&before["id"], &before["version"]),
        "the same job, read while ZooKeeper is down"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored_while_down = stored(&clickhouse, &during).await;
    zookeeper.start_zookeeper();
    let back = Instant::now();
    all_stored(&clickhouse, &during, back, 90, "after ZooKeeper came back").await;
    println!(
        "ZooKeeper down: delivered 50, acknowledged {}, stored while down {stored_while_down}, lost 0 (all stored {:.1} s after it came back)",
        during.len(),
        back.elapsed().as_secs_f64()
    );
    let ids: BTreeSet<i64> = acknowledged.iter().chain(&during).copied().collect();
    assert_eq!(
        stored(&clickhouse, &ids.into_iter().collect::<Vec<_>>()).await,
        acknowledged.len() + during.len()
    );
    stack.stop().await;
}
