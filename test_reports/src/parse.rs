//! `tests.reports` → the stored report → pages of cases on `hud.test_cases.v1`, then the
//! report's summary on `hud.test_report.v1`: the parser stage.
//!
//! A report is streamed out of the store, decompressed and parsed on a blocking thread
//! (`hudstream-junit`); every 1,000 cases (or ~1 MiB of them) make a page, published through
//! the runtime's [`Outbox`] while parsing goes on — so a 1 GiB report never sits in memory, the
//! outbox's bounded queue holding the parser back when the broker is slower. The summary is
//! returned as an action, which the runtime publishes only after every page was acknowledged.
//!
//! What becomes of a report:
//! - read to its end: a summary in state `parsed` with its counts;
//! - not a readable report (malformed XML, not JUnit, an entity bomb, a corrupt stored object):
//!   a summary in state `refused` with the reason and the byte — readers ignore its pages — and
//!   the pointer dead-lettered with the same reason;
//! - missing from the store: a summary in state `gone`;
//! - the store failing while it is read: an error — the runtime retries the batch.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;
use std::time::Instant;

use futures::StreamExt;

use hudstream_junit::{parse, Limits, Stop};

use hudstream_runtime::store::BlobStore;
use hudstream_runtime::worker::{Action, BatchHandler, InRecord, Outbox};
use hudstream_schemas::names::is_repository_full_name;
use hudstream_schemas::test_report::{
    report_state, TestCase, TestCases, TestReport, TestReportUpload, CASES_PER_PAGE,
};
use hudstream_schemas::topics::TESTS_REPORTS;
use hudstream_schemas::wire::RecordType;

pub const STAGE: &str = "test-parse";

/// A page is published once its cases hold about this many bytes, however few they are.
const PAGE_BYTES: usize = 1 << 20;
/// Pages parsed ahead of publishing (each at most ~1 MiB).
const PAGES_AHEAD: usize = 2;

/// The parser stage.
pub struct ParseStage {
    store: BlobStore,
    limits: Limits,
    concurrency: usize,
}

impl ParseStage {
    pub fn new(store: BlobStore, concurrency: usize) -> ParseStage {
        ParseStage {
            store,
            limits: Limits::default(),
            concurrency: concurrency.max(1),
        }
    }
}

/// A report's case as the stream carries it.
fn case_record(case: &hudstream_junit::TestCase) -> TestCase {
    let (problem_type, problem_message, problem_text) = match &case.problem {
        Some(p) => (p.kind.clone(), p.message.clone(), p.text.clone()),
        None => Default::default(),
    };
    TestCase {
        index: case.index as i64,
        suite: case.suite.clone(),
        file: case.file.clone(),
        classname: case.classname.clone(),
        name: case.name.clone(),
        line: case.line,
        time_s: case.time_s,
        outcome: case.outcome.as_str().to_string(),
        problem_type,
        problem_message,
        problem_text,
        skip_message: case.skip_message.clone(),
        reruns: i32::try_from(case.reruns).unwrap_or(i32::MAX),
        rerun_message: case.rerun_message.clone(),
        truncated: case.truncated,
    }
}

/// About how many bytes a case takes on a page.
fn case_bytes(case: &TestCase) -> usize {
    64 + case.suite.len()
        + case.file.len()
        + case.classname.len()
        + case.name.len()
        + case.problem_type.len()
        + case.problem_message.len()
        + case.problem_text.len()
        + case.skip_message.len()
        + case.rerun_message.len()
}

/// The stored report as read, remembering whether reading it failed (a store or network
/// failure, to be retried — unlike a report that is not readable, which the parser refuses).
struct Watched<R> {
    inner: R,
    failed: Rc<Cell<Option<io::ErrorKind>>>,
}

impl<R: BufRead> Read for Watched<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let result = self.inner.read(out);
        if let Err(e) = &result {
            self.failed.set(Some(e.kind()));
        }
        result
    }
}

impl<R: BufRead> BufRead for Watched<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.inner.fill_buf() {
            Ok(buf) => Ok(buf),
            Err(e) => {
                self.failed.set(Some(e.kind()));
                Err(e)
            }
        }
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount)
    }
}

/// A gzip stream that is not one, or ends early: the object itself is bad.
fn is_corrupt(kind: io::ErrorKind) -> bool {
    matches!(
        kind,
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    )
}

/// Reads one report: hands its pages to `on_page` as they fill (up to [`CASES_PER_PAGE`] cases
/// or about a megabyte each) and answers its summary — `parsed` with its counts, or `refused`
/// with the reason and the byte. `Err` only when `on_page` refused a page (publishing stopped).
/// The stage's core, free of I/O: the projections' test data is made with it too.
pub fn read_report<E>(
    upload: &TestReportUpload,
    input: impl BufRead,
    limits: &Limits,
    mut on_page: impl FnMut(TestCases) -> Result<(), E>,
) -> Result<TestReport, E> {
    let mut summary = TestReport::of(upload);
    let mut page = summary.page(0);
    let mut page_bytes = 0;
    let mut parts = 0i32;
    let result = parse(input, limits, |case| {
        let case = case_record(case);
        page_bytes += case_bytes(&case);
        page.cases.push(case);
        if page.cases.len() >= CASES_PER_PAGE || page_bytes >= PAGE_BYTES {
            parts += 1;
            let full = std::mem::replace(&mut page, summary.page(parts));
            page_bytes = 0;
            on_page(full)?;
        }
        Ok(())
    });
    match result {
        Ok(read) => {
            if !page.cases.is_empty() {
                parts += 1;
                on_page(page)?;
            }
            summary.cases = read.cases as i64;
            summary.passed = read.passed as i64;
            summary.failed = read.failed as i64;
            summary.errored = read.errored as i64;
            summary.skipped = read.skipped as i64;
            summary.rerun = read.rerun as i64;
            summary.truncated = read.truncated as i64;
            summary.suites = read.suites as i64;
            summary.time_s = read.time_s;
        }
        Err(Stop::Caller(e)) => return Err(e),
        Err(Stop::Report(e)) => {
            summary.state = report_state::REFUSED.into();
            summary.reason = e.to_string();
            summary.position = e.position() as i64;
        }
    }
    summary.parts = parts;
    Ok(summary)
}

/// The dead-letter reason of a report the parser refused.
pub fn refusal(summary: &TestReport) -> String {
    format!(
        "test report {} ({}) refused: {}",
        summary.key(),
        summary.store_key,
        summary.reason
    )
}

impl ParseStage {
    /// Parses one stored report, publishing its pages; answers the actions for its pointer.
    async fn report(
        &self,
        index: usize,
        record: &InRecord,
        outbox: &Outbox,
    ) -> anyhow::Result<Vec<(usize, Action)>> {
        let dead = |reason: String| Ok(vec![(index, Action::DeadLetter { reason })]);
        let upload: TestReportUpload = match record.value().and_then(|v| {
            serde_json::from_slice(v).map_err(|e| format!("not a test-report pointer: {e}"))
        }) {
            Ok(upload) => upload,
            Err(reason) => return dead(reason),
        };
        if !is_repository_full_name(&upload.repository_full_name)
            || upload.job_id <= 0
            || upload.report.is_empty()
            || upload.store_key.is_empty()
        {
            return dead(format!(
                "a test-report pointer needs a repository, a job id, a report name and a store key: {:?} {} {:?} {:?}",
                upload.repository_full_name, upload.job_id, upload.report, upload.store_key
            ));
        }
        let stored = match self.store.read(&upload.store_key).await {
            Ok(stored) => stored,
            Err(e) if e.is_not_found() => {
                let mut summary = TestReport::of(&upload);
                summary.state = report_state::GONE.into();
                summary.reason = format!("{} is not in the test-report store", upload.store_key);
                return Ok(self.answer(index, record, summary));
            }
            Err(e) => return Err(e.into()),
        };
        let started = Instant::now();
        let (pages, mut queued) = tokio::sync::mpsc::channel::<TestCases>(PAGES_AHEAD);
        let limits = self.limits;
        let pointer = upload.clone();
        let parsing = tokio::task::spawn_blocking(move || {
            let failed = Rc::new(Cell::new(None));
            let input = Watched {
                inner: stored.into_reader(),
                failed: failed.clone(),
            };
            let summary = read_report(&pointer, input, &limits, |page| {
                pages.blocking_send(page).map_err(|_| ())
            });
            (summary, failed.get())
        });
        let mut publish_failed = None;
        while let Some(page) = queued.recv().await {
            if let Err(e) = outbox.publish(&page, record).await {
                // Stop taking pages: the parser sees the channel closed and stops too.
                publish_failed = Some(e);
                break;
            }
        }
        drop(queued);
        let (summary, read_failed) = match parsing.await {
            Ok(done) => done,
            Err(e) if e.is_panic() => {
                let mut summary = TestReport::of(&upload);
                summary.state = report_state::REFUSED.into();
                summary.reason = format!("the parser panicked on it: {e}");
                (Ok(summary), None)
            }
            Err(e) => anyhow::bail!("the parsing task failed: {e}"),
        };
        if let Some(e) = publish_failed {
            return Err(e.into());
        }
        let Ok(mut summary) = summary else {
            anyhow::bail!("stopped while publishing the report's pages");
        };
        let mut actions = Vec::new();
        if summary.state == report_state::REFUSED {
            match read_failed {
                // The store failed mid-read: the report is not at fault; retry.
                Some(kind) if !is_corrupt(kind) => anyhow::bail!(
                    "reading {} from the test-report store: {}",
                    upload.store_key,
                    summary.reason
                ),
                Some(_) => {
                    summary.reason = format!("the stored report cannot be read: {}", summary.reason)
                }
                None => {}
            }
            tracing::warn!(report = %summary.key(), reason = %summary.reason, "test report refused");
            actions.push((
                index,
                Action::DeadLetter {
                    reason: refusal(&summary),
                },
            ));
        } else {
            metrics::counter!("hudstream_test_cases_total").increment(summary.cases as u64);
            metrics::counter!("hudstream_test_report_bytes_total").increment(upload.bytes);
            metrics::histogram!("hudstream_test_report_parse_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        actions.extend(self.answer(index, record, summary));
        Ok(actions)
    }

    /// The summary's action, counted.
    fn answer(&self, index: usize, record: &InRecord, summary: TestReport) -> Vec<(usize, Action)> {
        metrics::counter!("hudstream_test_reports_total", "state" => summary.state.clone())
            .increment(1);
        vec![(index, Action::publish(&summary, record))]
    }
}

impl BatchHandler for ParseStage {
    fn stage(&self) -> &'static str {
        STAGE
    }

    fn input_topic(&self) -> &'static str {
        TESTS_REPORTS
    }

    async fn handle(&mut self, _batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        anyhow::bail!("{STAGE} publishes pages as it parses: the stage loop runs it with an outbox")
    }

    async fn handle_streaming(
        &mut self,
        batch: &[InRecord],
        outbox: &Outbox,
    ) -> anyhow::Result<Vec<(usize, Action)>> {
        let this = &*self;
        let reports: Vec<_> = (0..batch.len())
            .map(|i| this.report(i, &batch[i], outbox))
            .collect();
        let done: Vec<anyhow::Result<Vec<(usize, Action)>>> = futures::stream::iter(reports)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut actions = Vec::new();
        for result in done {
            actions.extend(result?);
        }
        Ok(actions)
    }
}
