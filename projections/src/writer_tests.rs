use super::*;
use hudstream_schemas::wire::Codec;
use hudstream_schemas::workflow_job::WorkflowJob;

fn record(key: &str, version: i64) -> InRecord {
    let bytes = std::fs::read(crate::testdata::fixture(
        "workflow_job/completed.success.with-organization.payload.json",
    ))
    .expect("fixture");
    let mut job: WorkflowJob =
        hudstream_processors::workflow_job::normalize(&bytes).expect("normalizes");
    job.version = version;
    InRecord {
        topic: "t".into(),
        partition: 0,
        offset: 0,
        key: Some(key.as_bytes().to_vec()),
        payload: Some(Codec::<WorkflowJob>::new().unwrap().encode(&job).unwrap()),
        headers: vec![],
        timestamp_ms: None,
    }
}

#[test]
fn only_each_keys_newest_record_is_written_and_ties_go_to_the_later() {
    let batch = vec![
        record("a", 1),
        record("b", 5),
        record("a", 3),
        record("b", 4),
        record("c", 1),
        record("c", 1),
    ];
    let all: Vec<usize> = (0..batch.len()).collect();
    assert_eq!(
        newest_per_entity(&batch, &all),
        (vec![1, 2, 5], vec![0, 3, 4])
    );
    // The next round, among the superseded, picks the next-newest per key.
    assert_eq!(
        newest_per_entity(&batch, &[0, 3, 4]),
        (vec![0, 3, 4], vec![])
    );
    let mut keyless = record("", 9);
    keyless.key = None;
    assert_eq!(
        newest_per_entity(&[keyless.clone(), keyless], &[0, 1]),
        (vec![0, 1], vec![])
    );
}
