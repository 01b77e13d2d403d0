//! Real input for the projections' tests: every GitHub fixture run through the real processors,
//! plus a pair of OOT callbacks, giving the records of every derived topic (and the dead
//! letters the processors produce for fixtures they refuse).
//!
//! `testdata/<table>.rows.jsonl` holds the rows each projection makes of them. The same files
//! are what `deploy/local/sql-compat.py` loads into ClickHouse 18.16 and the modern engine
//! before running every saved query, so the SQL is checked against exactly what we write.

use std::collections::BTreeMap;

use hudstream_ingest::fixtures;
use hudstream_processors as p;
use hudstream_runtime::kafka::dead_letter;
use hudstream_runtime::worker::{Action, InRecord, OutRecord, Processor};
use hudstream_schemas::headers as h;
use hudstream_schemas::topics::{
    raw_topic_for_event, DEAD_LETTERS, HUD_JOB_CLASSIFICATION_V1, HUD_TEST_CASES_V1,
    HUD_TEST_REPORT_V1, HUD_WORKFLOW_JOB_V1, OOT_RESULTS, TESTS_REPORTS,
};

pub fn fixture(relative: &str) -> std::path::PathBuf {
    fixtures::default_dir().join(relative)
}

fn to_in_record(out: OutRecord, offset: i64) -> InRecord {
    InRecord {
        topic: out.topic,
        partition: 0,
        offset,
        key: Some(out.key),
        payload: Some(out.payload),
        headers: out.headers,
        // A fixed instant: rows must not depend on when the test runs.
        timestamp_ms: Some(1_767_225_600_000),
    }
}

/// Two callbacks of one OOT job (in progress, then completed), as a relay sends them.
fn oot_callbacks() -> Vec<Vec<u8>> {
    let body = |status: &str, extra: serde_json::Value, queue: serde_json::Value| {
        let mut workflow = serde_json::json!({"status": status, "name": "xpu-ci", "url": "https://github.com/intel/torch-xpu-ops/actions/runs/9", "job_name": "test (1, 2)", "check_run_id": 777, "run_id": "9", "run_attempt": 1});
        for (k, v) in extra.as_object().into_iter().flatten() {
            workflow[k] = v.clone();
        }
        serde_json::to_vec(&serde_json::json!({
            "trusted": {"verified_repo": "intel/torch-xpu-ops", "downstream_repo_level": "L2", "ci_metrics": {"queue_time": queue, "execution_time": null}},
            "untrusted": {"callback_payload": {"event_type": "pull_request", "delivery_id": "d-1",
                "payload": {"pull_request": {"number": 12345, "head": {"sha": "abc123"}}, "repository": {"full_name": "pytorch/pytorch"}},
                "workflow": workflow}}
        }))
        .unwrap_or_default()
    };
    vec![
        body(
            "in_progress",
            serde_json::json!({"started_at": "2026-05-01T10:00:00Z"}),
            serde_json::json!(12.5),
        ),
        body(
            "completed",
            serde_json::json!({"conclusion": "failure", "completed_at": "2026-05-01T10:30:00Z",
                "test_results": {"passed": 90, "failed": 3, "skipped": 7}}),
            serde_json::Value::Null,
        ),
    ]
}

/// The records of every derived topic (and the dead-letter topic), by topic, in order.
pub fn derived_records() -> BTreeMap<String, Vec<InRecord>> {
    let processors = p::all();
    let mut raw: Vec<InRecord> = fixtures::load(&fixtures::default_dir())
        .expect("fixtures")
        .into_iter()
        .enumerate()
        .map(|(i, d)| InRecord {
            topic: raw_topic_for_event(&d.event).to_string(),
            partition: 0,
            offset: i as i64,
            key: None,
            payload: Some(d.body),
            headers: vec![
                (h::GITHUB_EVENT.into(), d.event.into_bytes()),
                (h::GITHUB_DELIVERY.into(), d.delivery_id.into_bytes()),
            ],
            timestamp_ms: Some(1_767_225_600_000),
        })
        .collect();
    // A delivery cut short in transit: the processor refuses it, giving a real dead letter.
    if let Some(job) = raw
        .iter()
        .find(|r| r.topic == "github.workflow_job")
        .cloned()
    {
        let cut = job.payload.as_ref().map_or(0, |p| p.len() / 3);
        raw.push(InRecord {
            offset: raw.len() as i64,
            payload: job.payload.map(|mut p| {
                p.truncate(cut);
                p
            }),
            ..job
        });
    }
    // The deliveries derived from real ones (a disabled-test issue, an UNSTABLE issue, a push
    // of the jobs' commit to main).
    for delivery in
        fixtures::derived_deliveries(&fixtures::default_dir()).expect("derived deliveries")
    {
        let base = raw.len() as i64;
        raw.push(InRecord {
            topic: raw_topic_for_event(&delivery.event).to_string(),
            offset: base,
            payload: Some(delivery.body),
            headers: vec![
                (h::GITHUB_EVENT.into(), delivery.event.into_bytes()),
                (h::GITHUB_DELIVERY.into(), delivery.delivery_id.into_bytes()),
            ],
            ..raw[0].clone()
        });
    }
    let base = raw.len() as i64;
    raw.extend(
        oot_callbacks()
            .into_iter()
            .enumerate()
            .map(|(i, body)| InRecord {
                topic: OOT_RESULTS.into(),
                partition: 0,
                offset: base + i as i64,
                key: None,
                payload: Some(body),
                headers: vec![(h::OOT_STATUS.into(), b"completed".to_vec())],
                timestamp_ms: Some(1_767_225_600_000),
            }),
    );
    let mut out: BTreeMap<String, Vec<InRecord>> = BTreeMap::new();
    for record in &raw {
        for processor in processors
            .iter()
            .filter(|p| p.input_topic() == record.topic)
        {
            for action in processor.process(record) {
                let produced = match action {
                    Action::Publish(o) => o,
                    Action::DeadLetter { reason } => {
                        dead_letter(processor.stage(), record, &reason)
                    }
                };
                let list = out.entry(produced.topic.clone()).or_default();
                let offset = list.len() as i64;
                list.push(to_in_record(produced, offset));
            }
        }
    }
    let jobs = out.get(HUD_WORKFLOW_JOB_V1).map_or(&[][..], Vec::as_slice);
    let verdicts = classifications(jobs);
    let (pages, summaries, refused) = test_reports(jobs);
    out.insert(HUD_JOB_CLASSIFICATION_V1.to_string(), verdicts);
    out.insert(HUD_TEST_CASES_V1.to_string(), pages);
    out.insert(HUD_TEST_REPORT_V1.to_string(), summaries);
    let dead = out.entry(DEAD_LETTERS.to_string()).or_default();
    for letter in refused {
        let offset = dead.len() as i64;
        dead.push(to_in_record(letter, offset));
    }
    out
}

/// The real test reports (`../shared/fixtures/test-reports/`), each uploaded for one of the
/// fixtures' completed jobs in turn and read by the real parser: the pages of cases and the
/// summaries (the deliberately corrupt report's says `refused`), and the dead letters of the
/// pointers the parser refuses.
fn test_reports(jobs: &[InRecord]) -> (Vec<InRecord>, Vec<InRecord>, Vec<OutRecord>) {
    use hudstream_junit::Limits;
    use hudstream_schemas::test_report::{report_store_key, TestReportUpload};
    use hudstream_schemas::workflow_job::WorkflowJob;
    use sha2::{Digest, Sha256};

    let mut completed: Vec<WorkflowJob> = jobs
        .iter()
        .filter_map(|r| r.decode::<WorkflowJob>().ok())
        .filter(|j| j.status == "completed")
        .collect();
    completed.sort_by_key(|j| j.id);
    completed.dedup_by_key(|j| j.id);
    let root = fixtures::default_dir().join("../test-reports");
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    for folder in ["action-junit-report", "test-reporter"] {
        for entry in std::fs::read_dir(root.join(folder)).expect("test-report fixtures") {
            let path = entry.expect("entry").path();
            files.push((folder.to_string(), path));
        }
    }
    files.sort();
    let (mut pages, mut summaries, mut refused) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (folder, path)) in files.iter().enumerate() {
        let job = &completed[i % completed.len()];
        let bytes = std::fs::read(path).expect("fixture report");
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default();
        let upload = TestReportUpload {
            repository_full_name: job.repository_full_name.clone(),
            job_id: job.id,
            report: format!("test/test-reports/{folder}/{file}"),
            store_key: report_store_key(&job.repository_full_name, job.id, &sha256),
            sha256,
            bytes: bytes.len() as u64,
            compressed_bytes: 0,
            source: "upload".into(),
            artifact: String::new(),
            head_sha: job.head_sha.clone(),
            run_id: job.run_id,
            run_attempt: job.run_attempt,
            received_at: 1_767_225_600_000 + i as i64,
        };
        let summary = hudstream_test_reports::parse::read_report(
            &upload,
            &bytes[..],
            &Limits::default(),
            |page| {
                let offset = pages.len() as i64;
                pages.push(to_in_record(
                    OutRecord::encoded(&page).expect("encodes"),
                    offset,
                ));
                Ok::<(), ()>(())
            },
        )
        .expect("never stops");
        if summary.state == hudstream_schemas::test_report::report_state::REFUSED {
            let pointer = InRecord {
                topic: TESTS_REPORTS.into(),
                partition: 0,
                offset: i as i64,
                key: Some(upload.key().into_bytes()),
                payload: Some(serde_json::to_vec(&upload).expect("json")),
                headers: vec![(h::CONTENT_TYPE.into(), b"application/json".to_vec())],
                timestamp_ms: Some(1_767_225_600_000),
            };
            refused.push(dead_letter(
                hudstream_test_reports::parse::STAGE,
                &pointer,
                &hudstream_test_reports::parse::refusal(&summary),
            ));
        }
        let offset = summaries.len() as i64;
        summaries.push(to_in_record(
            OutRecord::encoded(&summary).expect("encodes"),
            offset,
        ));
    }
    (pages, summaries, refused)
}

/// A verdict for every `completed` job record of the fixtures: the real ruleset run over
/// torchci's real fixture logs, one log per record in turn, at a fixed instant. A job whose
/// `completed` event comes twice gets two verdicts (on two logs), and the table keeps one.
fn classifications(jobs: &[InRecord]) -> Vec<InRecord> {
    use hudstream_classifier::fixture::{reference_dir, Fixture};
    use hudstream_classifier::{Options, Ruleset, ENGINE_VERSION};
    use hudstream_schemas::job_log::{classification_version, outcome, JobClassification};
    use hudstream_schemas::workflow_job::WorkflowJob;

    let dir = reference_dir();
    let ruleset = Ruleset::from_path(&dir.join("ruleset.toml")).expect("real ruleset");
    let mut logs: Vec<_> = std::fs::read_dir(dir.join("fixtures"))
        .expect("classifier fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for job in jobs
        .iter()
        .filter_map(|r| r.decode::<WorkflowJob>().ok())
        .filter(|j| j.status == "completed")
    {
        let log = &logs[out.len() % logs.len()];
        let text = std::fs::read_to_string(log).expect("fixture log");
        let verdict =
            ruleset.classify_bytes(Fixture::parse(&text).log.as_bytes(), &Options::default());
        let m = verdict.matched.clone();
        let mut record = JobClassification {
            version: 0,
            repository_full_name: job.repository_full_name.clone(),
            job_id: job.id,
            head_sha: job.head_sha.clone(),
            outcome: if m.is_some() {
                outcome::MATCHED
            } else {
                outcome::NO_MATCH
            }
            .into(),
            rule: m.as_ref().map(|m| m.rule.clone()).unwrap_or_default(),
            line: m.as_ref().map(|m| m.line.clone()).unwrap_or_default(),
            line_number: m.as_ref().map_or(0, |m| m.line_number as i64),
            captures: m.as_ref().map(|m| m.captures.clone()).unwrap_or_default(),
            context: m.map(|m| m.context).unwrap_or_default(),
            ruleset_hash: ruleset.hash().into(),
            engine_version: ENGINE_VERSION.into(),
            log_location: format!("{}/{}.log.gz", job.repository_full_name, job.id),
            log_partial: false,
            log_bytes: verdict.bytes as i64,
            classified_at: 1_767_225_600_000,
            signature: String::new(),
            pattern: String::new(),
        };
        record.sign();
        record.version = classification_version(&record);
        let offset = out.len() as i64;
        out.push(to_in_record(
            OutRecord::encoded(&record).expect("encodes"),
            offset,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every projection's rows for the real input, compared with its golden file.
    /// `UPDATE_GOLDEN=1 cargo test -p hudstream-projections` rewrites them after a reviewed change.
    #[test]
    fn rows_match_the_golden_files_used_by_the_sql_compatibility_check() {
        let records = derived_records();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
        let mut changed = Vec::new();
        for encoder in crate::all() {
            let input = records.get(encoder.topic()).cloned().unwrap_or_default();
            let lines = encoder.json_lines(&input).expect("every record has rows");
            assert!(
                !lines.is_empty(),
                "{}: no rows from the real fixtures",
                encoder.table()
            );
            let path = format!("{dir}/{}.rows.jsonl", encoder.table());
            if std::env::var_os("UPDATE_GOLDEN").is_some() {
                std::fs::write(&path, &lines).expect("write golden");
            }
            if std::fs::read_to_string(&path).ok().as_deref() != Some(lines.as_str()) {
                changed.push(path);
            }
        }
        assert!(
            changed.is_empty(),
            "projection rows changed: review, then UPDATE_GOLDEN=1: {changed:?}"
        );
    }

    #[test]
    fn every_fixture_record_is_readable_and_becomes_rows() {
        let records = derived_records();
        for encoder in crate::all() {
            let input = records.get(encoder.topic()).cloned().unwrap_or_default();
            for record in &input {
                let lines = encoder
                    .json_lines(std::slice::from_ref(record))
                    .unwrap_or_else(|e| {
                        panic!(
                            "{}: {} is unreadable: {e}",
                            encoder.table(),
                            record.source()
                        )
                    });
                // test_failure keeps only failed, errored and retried cases, job_failure only
                // failed jobs and passing reruns: a page of passes, a queued job make no row.
                let selective = matches!(encoder.table(), "test_failure" | "job_failure");
                assert!(
                    selective || lines.lines().count() >= 1,
                    "{}: {} made no row",
                    encoder.table(),
                    record.source()
                );
            }
        }
    }
}
