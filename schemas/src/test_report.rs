//! Test reports: the pointer the gateway (or the artifact fetcher) appends to the raw topic
//! `tests.reports`, and what the parser derives from a report — pages of test cases on
//! `hud.test_cases.v1` and a summary on `hud.test_report.v1`.
//!
//! A report is kept whole in the test-report store, content-addressed
//! ([`report_store_key`]); the log holds only the pointer, so the log stays small while every
//! table can still be rebuilt from it (the store is immutable).

use serde::{Deserialize, Serialize};

/// A stored test report, as appended to the raw topic `tests.reports` (JSON). Written once per
/// upload or fetched artifact file; a retry of the same bytes writes the same pointer (the time
/// is the stored object's), so it changes nothing downstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReportUpload {
    pub repository_full_name: String,
    pub job_id: i64,
    /// The report's name: the upload's `?report=`, or its path inside the artifact.
    pub report: String,
    /// SHA-256 of the report's bytes (uncompressed), hex.
    pub sha256: String,
    /// The report's size, uncompressed, and as stored.
    pub bytes: u64,
    pub compressed_bytes: u64,
    /// Where the report is in the test-report store (gzip).
    pub store_key: String,
    /// `upload` or `artifact`.
    pub source: String,
    /// The artifact it came from (`test-reports-…_<job id>.zip`); ''.
    #[serde(default)]
    pub artifact: String,
    /// The commit, run and attempt, when the uploader or the artifact's run said; '' / 0.
    #[serde(default)]
    pub head_sha: String,
    #[serde(default)]
    pub run_id: i64,
    #[serde(default)]
    pub run_attempt: i64,
    /// When the report was stored, epoch milliseconds.
    pub received_at: i64,
}

impl TestReportUpload {
    /// The record key of the pointer and of everything derived from it.
    pub fn key(&self) -> String {
        report_key(&self.repository_full_name, self.job_id, &self.report)
    }
}

/// `{owner}/{repo}/{job id}/{report}`: one report of one job.
pub fn report_key(repository: &str, job_id: i64, report: &str) -> String {
    format!("{repository}/{job_id}/{report}")
}

/// Where a report with these bytes is kept: content-addressed within its job, so storing the
/// same bytes again writes nothing new.
pub fn report_store_key(repository: &str, job_id: i64, sha256: &str) -> String {
    format!("tests/{repository}/{job_id}/{sha256}.xml.gz")
}

/// The folder a report sits in, as torchci names a test's "invoking file":
/// `test/test-reports/python-pytest/test_ops/test_ops-1a2b.xml` → `test_ops`; '' for a name
/// without a folder.
pub fn invoking_file(report: &str) -> &str {
    let mut parts = report.rsplit(['/', '\\']);
    parts.next();
    parts.next().unwrap_or("")
}

/// A test's identity as the test tables key it: the first 8 bytes of MD5 over
/// `file \x1f classname \x1f name`, little-endian. ClickHouse computes the same as
/// `reinterpretAsUInt64(MD5(concat(file, '\x1F', classname, '\x1F', name)))` (18.16 and
/// later), so generated rows and saved queries can too. It is stored: never change it.
pub fn test_id(file: &str, classname: &str, name: &str) -> u64 {
    use md5::{Digest, Md5};
    let mut hasher = Md5::new();
    hasher.update(file.as_bytes());
    hasher.update([0x1f]);
    hasher.update(classname.as_bytes());
    hasher.update([0x1f]);
    hasher.update(name.as_bytes());
    first_u64(&hasher.finalize())
}

/// The same over a test's name alone (`reinterpretAsUInt64(MD5(name))`): a test's history is
/// asked for by name, with its class and file optional.
pub fn name_id(name: &str) -> u64 {
    use md5::{Digest, Md5};
    first_u64(&Md5::digest(name.as_bytes()))
}

fn first_u64(digest: &[u8]) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// The version of everything derived from one stored report: when it was received, then a
/// hash of which report it is and its content. So the latest upload of a report name wins, and
/// a replay picks the same winner.
pub fn report_version(upload: &TestReportUpload) -> i64 {
    crate::version::pack(
        &[(upload.received_at.max(0) as u64, 42)],
        &(
            &upload.repository_full_name,
            upload.job_id,
            &upload.report,
            &upload.sha256,
        ),
    )
}

/// One `<testcase>` of a report. See the `.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCase {
    pub index: i64,
    pub suite: String,
    pub file: String,
    pub classname: String,
    pub name: String,
    pub line: Option<i64>,
    pub time_s: Option<f64>,
    pub outcome: String,
    pub problem_type: String,
    pub problem_message: String,
    pub problem_text: String,
    pub skip_message: String,
    pub reruns: i32,
    pub rerun_message: String,
    pub truncated: bool,
}

/// A page of one report's test cases. See the `.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCases {
    pub version: i64,
    pub repository_full_name: String,
    pub job_id: i64,
    pub report: String,
    pub report_sha256: String,
    pub invoking_file: String,
    pub head_sha: String,
    pub run_id: i64,
    pub run_attempt: i64,
    pub reported_at: i64,
    pub part: i32,
    pub cases: Vec<TestCase>,
}

crate::record_type! {
    TestCases {
        name: "hudstream.TestCases",
        topic: "hud.test_cases.v1",
        key: "{owner}/{repo}/{job id}/{report}" => |r| report_key(&r.repository_full_name, r.job_id, &r.report),
        schemas: ["../avro/test_cases.v1.avsc"],
    }
}

/// The most cases one page holds.
pub const CASES_PER_PAGE: usize = 1000;

/// What became of a report. See the `.avsc` for field docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    pub version: i64,
    pub repository_full_name: String,
    pub job_id: i64,
    pub report: String,
    pub report_sha256: String,
    pub invoking_file: String,
    pub head_sha: String,
    pub run_id: i64,
    pub run_attempt: i64,
    pub reported_at: i64,
    pub source: String,
    pub store_key: String,
    pub state: String,
    pub reason: String,
    pub position: i64,
    pub parts: i32,
    pub cases: i64,
    pub passed: i64,
    pub failed: i64,
    pub errored: i64,
    pub skipped: i64,
    pub rerun: i64,
    pub truncated: i64,
    pub suites: i64,
    pub time_s: f64,
    pub bytes: i64,
}

/// The states of a [`TestReport`].
pub mod report_state {
    /// Every case is on `hud.test_cases.v1`.
    pub const PARSED: &str = "parsed";
    /// Not a readable report: its pages, if any were published, are to be ignored.
    pub const REFUSED: &str = "refused";
    /// The stored report is missing.
    pub const GONE: &str = "gone";
}

crate::record_type! {
    TestReport {
        name: "hudstream.TestReport",
        topic: "hud.test_report.v1",
        key: "{owner}/{repo}/{job id}/{report}" => |r| report_key(&r.repository_full_name, r.job_id, &r.report),
        schemas: ["../avro/test_report.v1.avsc"],
    }
}

impl TestReport {
    /// The summary of `upload` before anything is known about its content.
    pub fn of(upload: &TestReportUpload) -> TestReport {
        TestReport {
            version: report_version(upload),
            repository_full_name: upload.repository_full_name.clone(),
            job_id: upload.job_id,
            report: upload.report.clone(),
            report_sha256: upload.sha256.clone(),
            invoking_file: invoking_file(&upload.report).to_string(),
            head_sha: upload.head_sha.clone(),
            run_id: upload.run_id,
            run_attempt: upload.run_attempt,
            reported_at: upload.received_at,
            source: upload.source.clone(),
            store_key: upload.store_key.clone(),
            state: report_state::PARSED.into(),
            reason: String::new(),
            position: 0,
            parts: 0,
            cases: 0,
            passed: 0,
            failed: 0,
            errored: 0,
            skipped: 0,
            rerun: 0,
            truncated: 0,
            suites: 0,
            time_s: 0.0,
            bytes: upload.bytes as i64,
        }
    }

    /// An empty page of this report's cases, number `part`.
    pub fn page(&self, part: i32) -> TestCases {
        TestCases {
            version: self.version,
            repository_full_name: self.repository_full_name.clone(),
            job_id: self.job_id,
            report: self.report.clone(),
            report_sha256: self.report_sha256.clone(),
            invoking_file: self.invoking_file.clone(),
            head_sha: self.head_sha.clone(),
            run_id: self.run_id,
            run_attempt: self.run_attempt,
            reported_at: self.reported_at,
            part,
            cases: Vec::with_capacity(CASES_PER_PAGE),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::RecordType;

    fn upload() -> TestReportUpload {
        TestReportUpload {
            repository_full_name: "pytorch/pytorch".into(),
            job_id: 42,
            report: "test/test-reports/python-pytest/test_ops/test_ops-1a2b.xml".into(),
            sha256: "ab".repeat(32),
            bytes: 1000,
            compressed_bytes: 100,
            store_key: report_store_key("pytorch/pytorch", 42, &"ab".repeat(32)),
            source: "upload".into(),
            artifact: String::new(),
            head_sha: String::new(),
            run_id: 0,
            run_attempt: 0,
            received_at: 1_700_000_000_000,
        }
    }

    /// The ids are what ClickHouse computes (checked there by `SELECT
    /// reinterpretAsUInt64(MD5('test_foo'))` on 18.16 and chdb).
    #[test]
    fn ids_are_clickhouses_md5_prefixes() {
        assert_eq!(name_id("test_foo"), 13_003_037_361_222_332_465);
        assert_eq!(test_id("a.py", "C", "test_x"), 8_430_061_457_805_207_807);
        assert_ne!(test_id("a", "bc", "d"), test_id("ab", "c", "d"));
    }

    #[test]
    fn the_invoking_file_is_the_reports_folder() {
        assert_eq!(
            invoking_file("test/test-reports/python-pytest/test_ops/test_ops-1a2b.xml"),
            "test_ops"
        );
        assert_eq!(invoking_file("test_ops/x.xml"), "test_ops");
        assert_eq!(invoking_file("x.xml"), "");
        assert_eq!(invoking_file(r"reports\unit\x.xml"), "unit");
    }

    #[test]
    fn a_later_upload_of_a_report_wins_and_equal_uploads_are_equal() {
        let first = upload();
        let later = TestReportUpload {
            received_at: first.received_at + 1,
            sha256: "cd".repeat(32),
            ..first.clone()
        };
        assert!(report_version(&later) > report_version(&first));
        assert_eq!(report_version(&first), report_version(&first.clone()));
    }

    #[test]
    fn pages_and_summaries_round_trip() {
        let summary = TestReport::of(&upload());
        let mut page = summary.page(3);
        page.cases.push(TestCase {
            index: 7,
            suite: "pytest".into(),
            file: "test_ops.py".into(),
            classname: "TestOps".into(),
            name: "test_add".into(),
            line: Some(12),
            time_s: Some(0.25),
            outcome: "failed".into(),
            problem_type: "AssertionError".into(),
            problem_message: "no".into(),
            problem_text: "Traceback".into(),
            skip_message: String::new(),
            reruns: 2,
            rerun_message: "flaky".into(),
            truncated: false,
        });
        let codec = TestCases::codec().unwrap();
        assert_eq!(codec.decode(&codec.encode(&page).unwrap()).unwrap(), page);
        let codec = TestReport::codec().unwrap();
        assert_eq!(
            codec.decode(&codec.encode(&summary).unwrap()).unwrap(),
            summary
        );
        assert_eq!(page.key(), summary.key());
        assert_eq!(
            summary.key(),
            "pytorch/pytorch/42/test/test-reports/python-pytest/test_ops/test_ops-1a2b.xml"
        );
    }
}
