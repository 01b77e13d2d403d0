//! The hot window: the newest commits of each watched branch, their jobs, verdicts and the
//! repository's unstable jobs, in memory, answering the grid's first pages without a query.
//!
//! `model` holds it and says when a page can be answered from it (the window is a prefix of
//! the branch, no commit on the page still loading); `feed` fills it — ClickHouse first, then
//! the derived topics from where the projections stand, in a consumer of its own per API
//! instance. A page memory cannot answer (older, or while the window loads or cannot read the
//! log) comes from ClickHouse, the same page: the grid is made by the same functions from
//! either source (`hud::commit_cells`, then `hud::assemble_cells`); memory keeps each commit's
//! cells until something they are made of changes (the grid-cell model). The failing tests a red cell names are ClickHouse's
//! answer, kept once ClickHouse has every test record the window has seen of the job.
//!
//! A page's `ETag` is a digest of the versions it is made of (commits, jobs, verdicts, issues)
//! and of the failing tests it names, so a client that has the page gets a 304 before anything
//! is assembled; two instances that have read the same records give the same `ETag`.

pub mod feed;
pub mod model;

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use hudstream_runtime::clickhouse::ClickHouse;
use hudstream_runtime::config::HotWindowConfig;

use crate::error::ApiError;
use crate::hud::{self, Grid};
use crate::params::Paging;
use model::{Branch, Limits, Model};

/// The in-memory model of the newest commits, shared by the requests and its feed.
pub struct HotWindow {
    /// Names this instance's consumer (`api.hot_window.<instance>`).
    pub instance: String,
    pub branches: Vec<String>,
    pub limits: Limits,
    model: RwLock<Model>,
    pages: std::sync::Mutex<PageCache>,
    /// The next offset to read per followed (physical topic, partition).
    positions: std::sync::Mutex<std::collections::BTreeMap<(String, i32), i64>>,
    loaded: AtomicBool,
    serving: AtomicBool,
}

/// A grid page from memory.
pub enum Served {
    /// The client has it already.
    NotModified { etag: String },
    /// Made before, unchanged since: its bytes.
    Cached { body: bytes::Bytes, etag: String },
    /// Made now; the caller renders it and hands the bytes to [`HotWindow::remember`].
    Page { grid: Grid, etag: String },
}

impl HotWindow {
    pub fn new(config: &HotWindowConfig) -> Arc<Self> {
        let limits = Limits {
            commits: config.commits.max(1),
            pending_jobs: config.pending_jobs,
        };
        let instance = format!("{}-{}", hostname(), std::process::id());
        Arc::new(Self {
            instance,
            branches: config.branches.clone(),
            limits,
            model: RwLock::new(Model::new(&config.branches, limits)),
            pages: std::sync::Mutex::new(PageCache::new(config.page_cache_mb << 20)),
            positions: Default::default(),
            loaded: AtomicBool::new(false),
            serving: AtomicBool::new(false),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, Model> {
        self.model.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Model> {
        self.model.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Swaps in a freshly loaded model and starts answering from it.
    pub fn replace(&self, model: Model) {
        *self.write() = model;
        self.loaded.store(true, Ordering::SeqCst);
        self.set_serving(true, "");
        self.record_sizes();
    }

    /// Whether pages may come from memory; `why` is logged when it stops.
    pub fn set_serving(&self, serving: bool, why: &str) {
        let was = self.serving.swap(serving, Ordering::SeqCst);
        if was && !serving {
            tracing::warn!(
                reason = why,
                "hot window stopped answering; pages come from ClickHouse"
            );
        } else if !was && serving {
            tracing::info!("hot window answering");
        }
        metrics::gauge!("hudstream_api_hot_window_serving").set(if serving { 1.0 } else { 0.0 });
    }

    /// Whether the window answers (loaded, and following the log).
    pub fn serving(&self) -> bool {
        self.loaded.load(Ordering::SeqCst) && self.serving.load(Ordering::SeqCst)
    }

    fn applied(&self, records: &[hudstream_runtime::worker::InRecord]) {
        {
            let mut positions = self.positions.lock().unwrap_or_else(|p| p.into_inner());
            for r in records {
                let next = positions.entry((r.topic.clone(), r.partition)).or_insert(0);
                *next = (*next).max(r.offset + 1);
            }
        }
        metrics::counter!("hudstream_api_hot_window_records_total").increment(records.len() as u64);
        self.record_sizes();
    }

    /// What memory holds: (commits, jobs, jobs waiting for their commit).
    pub fn sizes(&self) -> (usize, usize, usize) {
        self.read().sizes()
    }

    fn record_sizes(&self) {
        let (commits, jobs, pending) = self.read().sizes();
        metrics::gauge!("hudstream_api_hot_window_commits").set(commits as f64);
        metrics::gauge!("hudstream_api_hot_window_jobs").set(jobs as f64);
        metrics::gauge!("hudstream_api_hot_window_pending_jobs").set(pending as f64);
    }

    /// One page of `branch`'s grid from memory, or `None` when memory cannot answer it (the
    /// caller asks ClickHouse). `representation` tells the `ETag`s of the JSON and the HTML
    /// apart; `if_none_match` is the client's header; `fresh` (the client said `Cache-Control:
    /// no-cache`) makes the page again instead of serving it from the page cache.
    pub async fn grid(
        &self,
        clickhouse: &ClickHouse,
        repository: &str,
        branch: &str,
        paging: Paging,
        representation: &str,
        if_none_match: Option<&str>,
        fresh: bool,
    ) -> Result<Option<Served>, ApiError> {
        if !self.serving() {
            miss("not_serving");
            return Ok(None);
        }
        let key = Branch {
            repository: repository.to_string(),
            git_ref: format!("refs/heads/{branch}"),
        };
        let offset = usize::try_from(paging.offset()).unwrap_or(usize::MAX);
        let per_page = usize::try_from(paging.per_page).unwrap_or(usize::MAX);
        // The page changes under us only if a record lands between the two looks: then look
        // again (a few times at most; then ClickHouse answers).
        for _ in 0..3 {
            let digest = self.read().page(&key, offset, per_page, None);
            let digest = match digest {
                Ok(page) => page,
                Err(why) => {
                    miss(why.label());
                    return Ok(None);
                }
            };
            let answers = self
                .failed_tests(clickhouse, repository, &digest.failed_unknown)
                .await?;
            let etag = etag_of(&digest, &answers, representation, paging);
            if if_none_match.is_some_and(|v| crate::respond::etag_matches(v, &etag)) {
                served("not_modified");
                return Ok(Some(Served::NotModified { etag }));
            }
            if !fresh {
                if let Some(body) = self.cache().get(&etag) {
                    served("cached");
                    return Ok(Some(Served::Cached { body, etag }));
                }
            }
            let answers: std::collections::HashMap<i64, hud::FailedTestsRow> =
                answers.into_iter().map(|a| (a.job_id, a)).collect();
            let page = self.read().page(&key, offset, per_page, Some(&answers));
            let page = match page {
                Ok(page) if page.digest == digest.digest => page,
                Ok(_) => continue,
                Err(why) => {
                    miss(why.label());
                    return Ok(None);
                }
            };
            let grid = hud::assemble_cells(
                repository,
                branch,
                paging,
                page.rows,
                page.has_more,
                page.unstable,
            );
            served("assembled");
            return Ok(Some(Served::Page { grid, etag }));
        }
        miss("changing");
        Ok(None)
    }

    /// ClickHouse's failing tests for the failed jobs memory has no answer for; each answer is
    /// kept if ClickHouse had every test record of the job the window has seen.
    async fn failed_tests(
        &self,
        clickhouse: &ClickHouse,
        repository: &str,
        unknown: &[(i64, u64)],
    ) -> Result<Vec<hud::FailedTestsRow>, ApiError> {
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = unknown.iter().map(|(id, _)| *id).collect();
        let mut answers: std::collections::HashMap<i64, hud::FailedTestsRow> =
            hud::fetch_failed_tests(clickhouse, repository, ids)
                .await?
                .into_iter()
                .map(|r| (r.job_id, r))
                .collect();
        let mut model = self.write();
        let mut found = Vec::new();
        for (id, generation) in unknown {
            let answer = answers.remove(id);
            model.keep_failed_tests(repository, *id, *generation, answer.clone());
            found.extend(answer);
        }
        Ok(found)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, PageCache> {
        self.pages.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a page made from memory, under its `ETag`, for the next request of it.
    pub fn remember(&self, etag: &str, body: bytes::Bytes) {
        self.cache().insert(etag, body);
    }
}

/// A page's `ETag`: the digest of the versions it is made of, the failing tests it names
/// (those memory knows and those ClickHouse answered, summed alike), and what was asked for.
fn etag_of(
    page: &model::HotPage,
    answers: &[hud::FailedTestsRow],
    representation: &str,
    paging: Paging,
) -> String {
    let failing_tests = answers.iter().fold(page.known_answers, |sum, a| {
        sum.wrapping_add(model::answer_digest(Some(a)))
    });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        page.digest,
        failing_tests,
        representation,
        paging.page,
        paging.per_page,
    )
        .hash(&mut hasher);
    format!("\"hw-{:016x}\"", hasher.finish())
}

/// Pages made from memory, by `ETag`: a page is a function of what its `ETag` digests, so the
/// bytes made once answer every request of it until something on it changes. Bounded in bytes;
/// the oldest go first.
struct PageCache {
    max_bytes: usize,
    bytes: usize,
    pages: std::collections::HashMap<String, bytes::Bytes>,
    order: std::collections::VecDeque<String>,
}

impl PageCache {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            bytes: 0,
            pages: Default::default(),
            order: Default::default(),
        }
    }

    fn get(&self, etag: &str) -> Option<bytes::Bytes> {
        self.pages.get(etag).cloned()
    }

    fn insert(&mut self, etag: &str, body: bytes::Bytes) {
        if body.len() > self.max_bytes || self.pages.contains_key(etag) {
            return;
        }
        self.bytes += body.len();
        self.pages.insert(etag.to_string(), body);
        self.order.push_back(etag.to_string());
        while self.bytes > self.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.pages.remove(&old) {
                self.bytes -= b.len();
            }
        }
        metrics::gauge!("hudstream_api_hot_window_page_cache_bytes").set(self.bytes as f64);
    }
}

fn served(how: &'static str) {
    metrics::counter!("hudstream_api_grid_pages_total", "source" => "memory", "reason" => how)
        .increment(1);
}

fn miss(reason: &'static str) {
    metrics::counter!("hudstream_api_grid_pages_total", "source" => "clickhouse", "reason" => reason)
        .increment(1);
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "api".into())
}
