//! ClickHouse's own account of the read API's statements during a benchmark: per saved query,
//! the server's time and the rows and bytes it read, from `system.query_log`. The API names
//! each statement's `query_id` after its saved query (`{name}.{uuid}`), and the benchmark's
//! client sends `log_queries = 1` (18.16 logs nothing by default), so the figures that explain
//! an endpoint's time — "this lookup reads 33 k rows to return one" — come from a command, not
//! from reading the server's log by hand.

use hudstream_runtime::clickhouse::{quote, ClickHouse};

/// The server's clock now (`query_log` is stamped by it), in seconds.
pub(super) async fn server_now(clickhouse: &ClickHouse) -> anyhow::Result<u32> {
    Ok(clickhouse
        .fetch_all::<u32>("SELECT toUInt32(now())")
        .await?
        .first()
        .copied()
        .unwrap_or(0))
}

#[derive(serde::Deserialize)]
struct Account {
    name: String,
    runs: u64,
    p50_ms: f64,
    p99_ms: f64,
    rows: f64,
    bytes: f64,
}

/// Prints, per saved query the API ran on `clickhouse`'s database since `since`, the server's
/// p50/p99 time and the median rows and MiB read, slowest first.
pub(super) async fn print(clickhouse: &ClickHouse, since: u32) {
    match accounts(clickhouse, since).await {
        Ok(accounts) if accounts.is_empty() => println!(
            "\nClickHouse's own account: system.query_log holds none of the API's statements (is log_queries allowed for this user?)"
        ),
        Ok(accounts) => {
            println!(
                "\nClickHouse's own account of the API's statements (system.query_log; server time, and what was read to answer):"
            );
            println!(
                "  {:<28} {:>6} {:>11} {:>11} {:>14} {:>13}",
                "saved query", "runs", "server p50", "server p99", "rows read p50", "MiB read p50"
            );
            for a in accounts {
                println!(
                    "  {:<28} {:>6} {:>8.1} ms {:>8.1} ms {:>14.0} {:>13.2}",
                    a.name,
                    a.runs,
                    a.p50_ms,
                    a.p99_ms,
                    a.rows,
                    a.bytes / (1024.0 * 1024.0)
                );
            }
        }
        Err(e) => println!("\nClickHouse's own account: system.query_log could not be read: {e:#}"),
    }
}

async fn accounts(clickhouse: &ClickHouse, since: u32) -> anyhow::Result<Vec<Account>> {
    // The log is written every few seconds; this writes what is pending now.
    clickhouse.execute("SYSTEM FLUSH LOGS").await?;
    // `type` 2 is QueryFinish (a UInt8 on 18.16, an Enum8 on modern ClickHouse).
    let sql = format!(
        "SELECT name, toUInt64(count()) AS runs, \
                quantile(0.5)(query_duration_ms) AS p50_ms, \
                quantile(0.99)(query_duration_ms) AS p99_ms, \
                quantile(0.5)(read_rows) AS rows, quantile(0.5)(read_bytes) AS bytes \
         FROM \
         ( \
             SELECT extract(query_id, '^([a-z0-9_]+)[.]') AS name, query_duration_ms, read_rows, read_bytes \
             FROM system.query_log \
             WHERE toUInt8(type) = 2 AND event_time >= toDateTime({since}) \
               AND position(query, {db}) > 0 \
         ) \
         WHERE name != '' \
         GROUP BY name \
         ORDER BY p50_ms DESC, name",
        db = quote(&format!("{}.", clickhouse.database())),
    );
    Ok(clickhouse.query_json::<Account>(&sql).await?)
}
