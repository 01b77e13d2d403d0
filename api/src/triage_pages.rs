//! The triage pages: failure clusters (`/failures/{owner}/{repo}?days`) and trunk health
//! (`/trunk/{owner}/{repo}?branch&days`, with server-rendered SVG charts). The PR page's
//! Dr.CI section is `templates/drci_section.html`, filled by `pages::pull_page`. Each page
//! renders exactly the JSON its endpoints answer.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use hudstream_runtime::clickhouse::ClickHouse;

use crate::charts::{stacked_bars, Series};
use crate::drci::{DrciHead, MergeBase};
use crate::pages::render;
use crate::params::{RawPath, RawQuery};
use crate::similar::{clusters_from_request, Cluster, Clusters};
use crate::trunk::{self, Broken, BrokenRun, Queue, Red, Signal, TrunkQuery};

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

impl DrciHead {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl MergeBase {
    pub fn short_sha(&self) -> &str {
        short(&self.sha)
    }
}

impl BrokenRun {
    pub fn first_short(&self) -> &str {
        short(&self.first_sha)
    }
    pub fn last_short(&self) -> &str {
        short(&self.last_sha)
    }
}

impl Cluster {
    /// The trend as a text sparkline, one character a day.
    pub fn sparkline(&self) -> String {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let max = self.trend.iter().copied().max().unwrap_or(0);
        self.trend
            .iter()
            .map(|&n| {
                if n == 0 || max == 0 {
                    '·'
                } else {
                    BARS[((n * 7) / max) as usize]
                }
            })
            .collect()
    }
}

#[derive(Template)]
#[template(path = "clusters.html")]
struct ClustersPage {
    clusters: Clusters,
}

pub struct QueueChart {
    pub label: String,
    pub chart: String,
}

#[derive(Template)]
#[template(path = "trunk.html")]
struct TrunkPage {
    repository: String,
    branch: String,
    days: u64,
    broken: Broken,
    red: Red,
    signal: Signal,
    queue: Queue,
    red_chart: String,
    signal_chart: String,
    queue_charts: Vec<QueueChart>,
    tts_p50: String,
    tts_p90: String,
    ttr_p50: String,
}

type Ch = State<ClickHouse>;

/// `/failures/{owner}/{repo}`.
pub async fn clusters_page(
    State(ch): Ch,
    path: RawPath<(String, String)>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let clusters = clusters_from_request(&ch, path, q).await;
    render(&headers, clusters.map(|clusters| ClustersPage { clusters }))
}

fn minutes(seconds: Option<i64>) -> String {
    match seconds {
        Some(s) => format!("{:.0} min", s as f64 / 60.0),
        None => "–".into(),
    }
}

/// `/trunk/{owner}/{repo}`.
pub async fn trunk_page(
    State(ch): Ch,
    path: RawPath<(String, String)>,
    headers: HeaderMap,
    q: RawQuery,
) -> Response {
    let page = async {
        let q = TrunkQuery::from_request(path, q)?;
        let (broken, red, signal, queue) = tokio::join!(
            trunk::broken(&ch, &q),
            trunk::red(&ch, &q),
            trunk::signal(&ch, &q),
            trunk::queue(&ch, &q)
        );
        let (broken, red, signal, queue) = (broken?, red?, signal?, queue?);
        let days: Vec<String> = red.per_day.iter().map(|d| d.day.clone()).collect();
        let red_chart = stacked_bars(
            "red-rate-chart",
            &days,
            &[
                Series {
                    name: "red",
                    color: "#c0392b",
                    values: red.per_day.iter().map(|d| d.red_rate * 100.0).collect(),
                },
                Series {
                    name: "flaky only",
                    color: "#d08c00",
                    values: red.per_day.iter().map(|d| d.flaky_rate * 100.0).collect(),
                },
            ],
            "%",
        );
        // Oldest first, the last 100 commits with a signal.
        let mut commits: Vec<_> = signal
            .commits
            .iter()
            .filter(|c| c.time_to_signal_s.is_some())
            .take(100)
            .collect();
        commits.reverse();
        let signal_chart = stacked_bars(
            "tts-chart",
            &commits
                .iter()
                .map(|c| short(&c.sha).to_string())
                .collect::<Vec<_>>(),
            &[Series {
                name: "time to signal",
                color: "#2e7d32",
                values: commits
                    .iter()
                    .map(|c| c.time_to_signal_s.unwrap_or(0) as f64 / 60.0)
                    .collect(),
            }],
            "m",
        );
        let queue_charts = queue
            .labels
            .iter()
            .take(6)
            .map(|label| QueueChart {
                label: label.label.clone(),
                chart: stacked_bars(
                    &format!("queue-{}", label.label),
                    &label
                        .per_day
                        .iter()
                        .map(|d| d.day.clone())
                        .collect::<Vec<_>>(),
                    &[Series {
                        name: "p90 queue time",
                        color: "#1565c0",
                        values: label.per_day.iter().map(|d| d.p90_s / 60.0).collect(),
                    }],
                    "m",
                ),
            })
            .collect();
        Ok(TrunkPage {
            repository: q.repository.clone(),
            branch: q.branch.clone(),
            days: q.days,
            tts_p50: minutes(signal.time_to_signal.p50),
            tts_p90: minutes(signal.time_to_signal.p90),
            ttr_p50: minutes(signal.time_to_red.p50),
            broken,
            red,
            signal,
            queue,
            red_chart,
            signal_chart,
            queue_charts,
        })
    }
    .await;
    render(&headers, page)
}
