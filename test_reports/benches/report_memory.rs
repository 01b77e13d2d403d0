//! `cargo bench -p hudstream-test-reports` (run by `hud bench`): the parser stage's memory on a
//! 1 GiB report. The report is generated while it is read (pytest-shaped: a class per 50
//! cases, ~0.3 % failures with tracebacks, ~3 % skips), read by the stage's own core
//! (`read_report`: the streaming parser, cases into pages), and every page encoded as the
//! outbox sends it — with as many pages held at once as the runtime may hold (parsed ahead,
//! queued, awaiting acknowledgement: 2 + 4 + 16). Peak heap is measured with a counting
//! allocator and printed with its ratio to the 64 MiB goal; not asserted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hudstream_junit::Limits;
use hudstream_runtime::worker::OutRecord;
use hudstream_schemas::test_report::{report_store_key, TestReportUpload};
use hudstream_test_reports::parse::read_report;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Pages the runtime may hold at once: parsed ahead, queued in the outbox, awaiting
/// acknowledgement.
const PAGES_HELD: usize = 2 + 4 + 16;

/// A report generated while it is read, `goal` bytes at least.
struct Generated {
    goal: u64,
    produced: u64,
    n: u64,
    buf: Vec<u8>,
    at: usize,
    done: bool,
}

impl Generated {
    fn cases(&mut self) {
        for _ in 0..1000 {
            let n = self.n;
            self.n += 1;
            let _ = write!(
                self.buf,
                "<testcase classname=\"test_module_{}.TestSuite{}\" name=\"test_case_{n}_float32\" file=\"test_module_{}.py\" line=\"{}\" time=\"0.{:03}\"",
                n / 5000,
                n / 50,
                n / 5000,
                100 + n % 900,
                n % 1000
            );
            let _ = match n % 1000 {
                0..=2 => writeln!(
                    self.buf,
                    "><failure message=\"AssertionError: Tensor-likes are not close!\">Traceback (most recent call last):\n  File \"test_module.py\", line 10, in test_case_{n}\nAssertionError: Tensor-likes are not close!</failure></testcase>"
                ),
                3..=32 => writeln!(
                    self.buf,
                    "><skipped type=\"pytest.skip\" message=\"test requires a GPU\"/></testcase>"
                ),
                _ => writeln!(self.buf, "/>"),
            };
        }
    }
}

impl Read for Generated {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
            if self.n == 0 {
                self.buf.extend_from_slice(
                    b"<?xml version=\"1.0\"?>\n<testsuites><testsuite name=\"pytest\">\n",
                );
            }
            if self.produced >= self.goal {
                if self.done {
                    return Ok(0);
                }
                self.done = true;
                self.buf.extend_from_slice(b"</testsuite></testsuites>\n");
            } else {
                self.cases();
            }
            self.produced += self.buf.len() as u64;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn main() {
    // `cargo test` runs benches once as tests: keep that quick.
    let quick = std::env::args().any(|a| a == "--test" || a == "--quick");
    let goal: u64 = if quick { 32 << 20 } else { 1 << 30 };
    let upload = TestReportUpload {
        repository_full_name: "pytorch/pytorch".into(),
        job_id: 1,
        report: "test/test-reports/python-pytest/test_module/test_module-1.xml".into(),
        sha256: "0".repeat(64),
        bytes: goal,
        compressed_bytes: 0,
        store_key: report_store_key("pytorch/pytorch", 1, &"0".repeat(64)),
        source: "upload".into(),
        artifact: String::new(),
        head_sha: String::new(),
        run_id: 0,
        run_attempt: 0,
        received_at: 1_767_225_600_000,
    };
    let input = std::io::BufReader::with_capacity(
        64 * 1024,
        Generated {
            goal,
            produced: 0,
            n: 0,
            buf: Vec::with_capacity(1 << 20),
            at: 0,
            done: false,
        },
    );
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let mut held: VecDeque<OutRecord> = VecDeque::with_capacity(PAGES_HELD + 1);
    let (mut pages, mut page_bytes) = (0u64, 0u64);
    let summary = read_report(&upload, input, &Limits::default(), |page| {
        let record = OutRecord::encoded(&page).map_err(|e| e.to_string())?;
        pages += 1;
        page_bytes += record.payload.len() as u64;
        held.push_back(record);
        if held.len() > PAGES_HELD {
            held.pop_front();
        }
        Ok::<(), String>(())
    })
    .expect("the report is read");
    let seconds = started.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "test-report processor: a {:.2} GiB report, {} cases in {pages} pages ({:.0} MB of Avro), {:.0} MB/s on one core",
        goal as f64 / (1u64 << 30) as f64,
        summary.cases,
        page_bytes as f64 / 1e6,
        goal as f64 / 1e6 / seconds
    );
    println!(
        "  peak heap {:.1} MiB with {PAGES_HELD} pages held (goal ≤ 64 MiB: ×{:.3})",
        peak as f64 / (1 << 20) as f64,
        peak as f64 / (64u64 << 20) as f64
    );
}
