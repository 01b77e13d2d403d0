//! Turning a derived record into the action that publishes it, with its provenance headers.

use hudstream_runtime::worker::{Action, InRecord, OutRecord};
use hudstream_schemas::headers as h;
use hudstream_schemas::wire::{Codec, RecordType};

/// Publish `record` to `topic` under `key`, naming its schema, its source record and the
/// GitHub delivery it came from; dead-letter the input if it cannot be encoded.
pub fn publish<T: RecordType>(
    codec: &Codec<T>,
    topic: &str,
    key: String,
    record: &T,
    input: &InRecord,
) -> Action {
    let mut out = match OutRecord::encoded(codec, topic, key, record) {
        Ok(out) => out,
        Err(e) => {
            return Action::DeadLetter {
                reason: e.to_string(),
            }
        }
    };
    out.headers
        .push((h::SOURCE.to_string(), input.source().into_bytes()));
    if let Some(delivery) = input.header(h::GITHUB_DELIVERY) {
        out.headers
            .push((h::GITHUB_DELIVERY.to_string(), delivery.to_vec()));
    }
    Action::Publish(out)
}

/// Normalizes a record's value and turns the result into actions. A record without a value,
/// or one `normalize` refuses, becomes a dead letter carrying the reason; every processor
/// shares this rule.
pub fn derive<T, E: std::fmt::Display>(
    record: &InRecord,
    normalize: impl FnOnce(&[u8]) -> Result<T, E>,
    actions: impl FnOnce(T) -> Vec<Action>,
) -> Vec<Action> {
    let payload = match record.value() {
        Ok(payload) => payload,
        Err(reason) => return vec![Action::DeadLetter { reason }],
    };
    match normalize(payload) {
        Ok(derived) => actions(derived),
        Err(e) => vec![Action::DeadLetter {
            reason: e.to_string(),
        }],
    }
}
