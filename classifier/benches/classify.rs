//! Classifier throughput and memory: `cargo bench -p hudstream-classifier`.
//!
//! Prints, for the real ruleset over the two real whole logs in
//! `../shared/reference/log-classifier/logs`: MB/s of the streaming engine on one core, the
//! same for a naive per-rule scan (torchci's algorithm, sequential), their ratio, the ratio to
//! the 100 MB/s goal, how both scale with the number of rules, and the peak heap of classifying
//! a 256 MiB log streamed from a reader against the naive scan's peak on the larger real log.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hudstream_classifier::fixture::reference_dir;
use hudstream_classifier::{classify_naive, Options, Ruleset};

/// Counts live heap bytes and their high-water mark.
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

const GOAL_MB_S: f64 = 100.0;
const MIN_TIME: Duration = Duration::from_secs(2);

/// Runs `f` over the logs until `MIN_TIME` has passed; MB/s of log bytes.
fn throughput(logs: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> f64 {
    let started = Instant::now();
    let mut bytes = 0usize;
    while started.elapsed() < MIN_TIME {
        for log in logs {
            f(log);
            bytes += log.len();
        }
    }
    bytes as f64 / 1e6 / started.elapsed().as_secs_f64()
}

/// The first `n` rules of a ruleset file.
fn first_rules(text: &str, n: usize) -> Ruleset {
    let blocks: Vec<&str> = text.split("[[rule]]").collect();
    let kept = blocks[1..=n.min(blocks.len() - 1)].join("[[rule]]");
    Ruleset::from_toml(&format!("[[rule]]{kept}")).expect("ruleset prefix compiles")
}

/// An endless repetition of `logs`, cut at `limit` bytes, never held in memory.
struct Cycle<'a> {
    logs: &'a [Vec<u8>],
    which: usize,
    at: usize,
    left: usize,
}

impl Read for Cycle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let log = &self.logs[self.which];
        let n = buf.len().min(log.len() - self.at).min(self.left);
        buf[..n].copy_from_slice(&log[self.at..self.at + n]);
        self.at += n;
        self.left -= n;
        if self.at == log.len() {
            self.at = 0;
            self.which = (self.which + 1) % self.logs.len();
        }
        Ok(n)
    }
}

fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

fn main() {
    let dir = reference_dir();
    let ruleset_text = std::fs::read_to_string(dir.join("ruleset.toml")).expect("ruleset");
    let ruleset = Ruleset::from_toml(&ruleset_text).expect("ruleset compiles");
    let names = ["error_log1.txt", "error_log_multiple_matches.txt"];
    let logs: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(dir.join("logs").join(n)).expect("log"))
        .collect();
    let total: usize = logs.iter().map(Vec::len).sum();
    let options = Options::default();
    println!(
        "classifier: {} rules, {} logs of {:.0} KB in all, one core",
        ruleset.rules().len(),
        logs.len(),
        total as f64 / 1e3
    );
    for (name, log) in names.iter().zip(&logs) {
        let verdict = ruleset.classify_bytes(log, &options);
        let naive = classify_naive(&ruleset, log, &options);
        assert_eq!(verdict.matched, naive, "{name}: engines disagree");
        match &verdict.matched {
            Some(m) => println!("  {name}: rule {:?} at line {}", m.rule, m.line_number),
            None => println!("  {name}: no match"),
        }
    }

    // `cargo test --all-targets` runs this file too (without `--bench`): the agreement check
    // above is the test; the measurements are for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let streaming = throughput(&logs, |log| {
        std::hint::black_box(ruleset.classify_bytes(log, &options));
    });
    let naive = throughput(&logs, |log| {
        std::hint::black_box(classify_naive(&ruleset, log, &options));
    });
    println!(
        "  streaming engine: {streaming:.0} MB/s   naive per-rule scan: {naive:.0} MB/s   \
         ×{:.1} the naive scan   ×{:.2} of the {GOAL_MB_S:.0} MB/s goal",
        streaming / naive,
        streaming / GOAL_MB_S
    );

    println!("  by number of rules (MB/s):");
    for n in [1, 10, 50, ruleset.rules().len()] {
        let subset = first_rules(&ruleset_text, n);
        let s = throughput(&logs, |log| {
            std::hint::black_box(subset.classify_bytes(log, &options));
        });
        let v = throughput(&logs, |log| {
            std::hint::black_box(classify_naive(&subset, log, &options));
        });
        println!("    {n:>4} rules: streaming {s:>6.0}   naive {v:>6.0}");
    }

    let big = 256usize << 20;
    let (verdict, streamed_peak) = peak_during(|| {
        let reader = std::io::BufReader::with_capacity(
            64 << 10,
            Cycle {
                logs: &logs,
                which: 0,
                at: 0,
                left: big,
            },
        );
        ruleset
            .classify(reader, &options)
            .expect("reading a cycle cannot fail")
    });
    assert_eq!(verdict.bytes as usize, big);
    let (_, naive_peak) = peak_during(|| classify_naive(&ruleset, &logs[1], &options));
    println!(
        "  peak heap: {:.2} MiB streaming a {} MiB log; naive scan of the {:.0} KB log: {:.2} MiB",
        streamed_peak as f64 / (1u64 << 20) as f64,
        big >> 20,
        logs[1].len() as f64 / 1e3,
        naive_peak as f64 / (1u64 << 20) as f64,
    );
}
