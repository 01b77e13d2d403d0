//! Memory stays bounded whatever the report: a bomb, a huge report with huge nodes. Measured
//! with a counting allocator, so these tests live in a binary of their own (the allocator
//! counts the whole process; a test running beside them would count too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hudstream_junit::{parse, Limits, ParseError, Stop, TestCase};

/// Counts live heap bytes and their peak.
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

/// Serializes tests that measure memory (the allocator counts the whole process).
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The report's cases, or its error; and the peak heap growth while parsing it from a reader
/// that produces it on the fly (so the input itself takes no memory).
fn measured(
    mut produce: impl FnMut(usize) -> Option<Vec<u8>> + 'static,
) -> (Result<u64, ParseError>, usize) {
    struct Produced<F> {
        produce: F,
        n: usize,
        buf: Vec<u8>,
        at: usize,
    }
    impl<F: FnMut(usize) -> Option<Vec<u8>>> std::io::Read for Produced<F> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            while self.at == self.buf.len() {
                match (self.produce)(self.n) {
                    Some(chunk) => {
                        self.n += 1;
                        self.buf = chunk;
                        self.at = 0;
                    }
                    None => return Ok(0),
                }
            }
            let n = out.len().min(self.buf.len() - self.at);
            out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let input = std::io::BufReader::with_capacity(
        64 * 1024,
        Produced {
            produce: &mut produce,
            n: 0,
            buf: Vec::new(),
            at: 0,
        },
    );
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut cases = 0u64;
    let result = parse(input, &Limits::default(), |_c: &TestCase| {
        cases += 1;
        Ok::<(), ()>(())
    });
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let result = match result {
        Ok(summary) => Ok(summary.cases),
        Err(Stop::Report(e)) => Err(e),
        Err(Stop::Caller(())) => unreachable!("the callback never refuses"),
    };
    (result, peak)
}

#[test]
fn a_billion_laughs_bomb_is_refused_whole_in_bounded_memory() {
    let bomb = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite name="s"><testcase name="c"><failure message="&lol9;">&lol9;</failure></testcase></testsuite>"#;
    let bytes = bomb.as_bytes().to_vec();
    let (result, peak) = measured(move |n| (n == 0).then(|| bytes.clone()));
    let err = result.expect_err("refused");
    assert!(matches!(err, ParseError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("declares entities"), "{err}");
    assert!(err.position() > 0 && err.position() < 400, "{err}");
    assert!(peak < 1 << 20, "peak {peak} bytes");
}

#[test]
fn a_huge_report_with_huge_nodes_parses_in_bounded_memory() {
    // 200,000 cases with a 40 MiB system-out in the middle: ~60 MiB of report.
    let (result, peak) = measured(|n| {
        match n {
        0 => Some(b"<?xml version=\"1.0\"?><testsuites><testsuite name=\"big\">".to_vec()),
        1..=100_000 => Some(
            format!("<testcase classname=\"m.C{n}\" name=\"test_{n}\" time=\"0.01\"><failure message=\"x\">trace {n}</failure></testcase>")
                .into_bytes(),
        ),
        100_001 => Some(b"<testcase name=\"noisy\"><system-out><![CDATA[".to_vec()),
        100_002..=100_641 => Some(vec![b'o'; 64 * 1024]),
        100_642 => Some(b"]]></system-out></testcase>".to_vec()),
        100_643..=200_642 => Some(format!("<testcase name=\"t{n}\"/>").into_bytes()),
        200_643 => Some(b"</testsuite></testsuites>".to_vec()),
        _ => None,
    }
    });
    assert_eq!(result.expect("parses"), 200_001);
    assert!(peak < 8 << 20, "peak {} MiB", peak >> 20);
}
