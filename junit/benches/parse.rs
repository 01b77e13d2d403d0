//! `cargo bench -p hudstream-junit` (run by `hud bench`): the parser's speed on one core next
//! to quick-xml's bare event loop over the same bytes (the floor any quick-xml-based parser
//! stands on), and its peak memory on a 1 GiB report generated on the fly. Figures are
//! printed with their ratio to the goal, never asserted.
//!
//! The report is shaped like the fixtures (pytest's xunit2: a class per file, a few failures
//! with tracebacks, skips with reasons, some captured output) at PyTorch's proportions (most
//! cases pass; ~1 % fail; ~3 % skip).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hudstream_junit::{parse, Limits};

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

/// The XML of test case `n` of a generated report.
fn case(n: u64, out: &mut Vec<u8>) {
    use std::io::Write;
    let class = n / 40;
    let _ = write!(
        out,
        "    <testcase classname=\"test_module_{}.TestSuite{class}\" name=\"test_case_{n}_float32\" file=\"test/test_module_{}.py\" line=\"{}\" time=\"{}.{:03}\"",
        class % 500,
        class % 500,
        100 + n % 900,
        n % 3,
        n % 1000
    );
    match n % 100 {
        0 => {
            let _ = write!(
                out,
                "><failure message=\"AssertionError: Tensor-likes are not close!\">Traceback (most recent call last):\n  File \"test/test_module_{}.py\", line {}, in test_case_{n}\n    self.assertEqual(actual, expected)\nAssertionError: Tensor-likes are not close!\n\nMismatched elements: 3 / 1024 (0.3%)\nGreatest absolute difference: 0.001 at index (7, 3)</failure>\n      <system-out>running on cuda:0 &amp; seed 1234</system-out>\n    </testcase>\n",
                class % 500,
                100 + n % 900
            );
        }
        1..=3 => {
            out.extend_from_slice(b"><skipped type=\"pytest.skip\" message=\"test requires a GPU with compute capability 9.0\"/></testcase>\n");
        }
        _ => out.extend_from_slice(b"/>\n"),
    }
}

/// A report of `cases` test cases, in memory.
fn report(cases: u64) -> Vec<u8> {
    let mut out = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n  <testsuite name=\"pytest\" tests=\"0\">\n".to_vec();
    for n in 0..cases {
        case(n, &mut out);
    }
    out.extend_from_slice(b"  </testsuite>\n</testsuites>\n");
    out
}

/// A report generated while it is read, `bytes` long at least (never held whole).
struct Streamed {
    goal: u64,
    produced: u64,
    n: u64,
    buf: Vec<u8>,
    at: usize,
    done: bool,
}

impl Read for Streamed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
            if self.n == 0 {
                self.buf.extend_from_slice(
                    b"<?xml version=\"1.0\"?>\n<testsuites>\n  <testsuite name=\"pytest\">\n",
                );
            }
            if self.produced >= self.goal {
                if self.done {
                    return Ok(0);
                }
                self.done = true;
                self.buf
                    .extend_from_slice(b"  </testsuite>\n</testsuites>\n");
            } else {
                for _ in 0..1000 {
                    case(self.n, &mut self.buf);
                    self.n += 1;
                }
            }
            self.produced += self.buf.len() as u64;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// quick-xml's event loop over `bytes`, doing nothing with the events.
fn bare_loop(bytes: &[u8]) -> u64 {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut events = 0u64;
    loop {
        buf.clear();
        match reader.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Eof) | Err(_) => return events,
            Ok(_) => events += 1,
        }
    }
}

fn best_of<T>(rounds: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let out = f();
        best = best.min(started.elapsed().as_secs_f64());
        last = Some(out);
    }
    (best, last.expect("a round"))
}

fn main() {
    // `cargo test` runs benches once as tests: keep that quick.
    let quick = std::env::args().any(|a| a == "--test" || a == "--quick");
    let cases = if quick { 20_000 } else { 500_000 };
    let bytes = report(cases);
    let mb = bytes.len() as f64 / 1e6;
    let rounds = if quick { 1 } else { 5 };
    let (bare, events) = best_of(rounds, || bare_loop(&bytes));
    let (ours, parsed) = best_of(rounds, || {
        let mut n = 0u64;
        parse(&bytes[..], &Limits::default(), |_| {
            n += 1;
            Ok::<(), ()>(())
        })
        .expect("parses");
        n
    });
    assert_eq!(parsed, cases);
    println!(
        "junit parser: {cases} cases, {mb:.1} MB, one core (best of {rounds}); quick-xml's bare event loop: {events} events"
    );
    println!(
        "  ours {:7.1} MB/s ({:.0} cases/s)   quick-xml bare loop {:7.1} MB/s   ratio ×{:.2} (goal ≥ 0.5)",
        mb / ours,
        cases as f64 / ours,
        mb / bare,
        bare / ours
    );
    let goal: u64 = if quick { 64 << 20 } else { 1 << 30 };
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let input = std::io::BufReader::with_capacity(
        64 * 1024,
        Streamed {
            goal,
            produced: 0,
            n: 0,
            buf: Vec::with_capacity(1 << 20),
            at: 0,
            done: false,
        },
    );
    let started = Instant::now();
    let summary = parse(input, &Limits::default(), |_| Ok::<(), ()>(())).expect("parses");
    let seconds = started.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    println!(
        "  a {:.2} GiB report ({} cases) streamed through: peak heap {:.1} MiB (goal ≤ 64 MiB: ×{:.3}), {:.0} MB/s",
        summary.bytes as f64 / (1u64 << 30) as f64,
        summary.cases,
        peak as f64 / (1 << 20) as f64,
        peak as f64 / (64u64 << 20) as f64,
        summary.bytes as f64 / 1e6 / seconds
    );
}
