//! The pieces of GitHub's webhook bodies several processors read, and what they derive alike.

use serde::Deserialize;

use hudstream_schemas::pull_request::LabelEvent;
use hudstream_schemas::version::{pack, seconds};

/// An object named by `full_name` (a repository).
#[derive(Deserialize, Default)]
pub(crate) struct Named {
    pub full_name: Option<String>,
}

/// A user.
#[derive(Deserialize, Default)]
pub(crate) struct Login {
    pub login: Option<String>,
}

/// A label.
#[derive(Deserialize)]
pub(crate) struct Label {
    pub name: Option<String>,
}

/// A `labeled`/`unlabeled` action without the label's name.
#[derive(Debug, thiserror::Error)]
#[error("a {0} delivery without label.name")]
pub struct NoLabel(pub String);

/// The label event of an `action` on `kind`'s `number` (`pull_request` or `issue`): `None` for
/// any action but `labeled`/`unlabeled`. Its version is its time, then a content hash.
pub(crate) fn label_event(
    kind: &str,
    repository_full_name: &str,
    number: i64,
    action: String,
    label: Option<Label>,
    event_time: Option<i64>,
) -> Result<Option<LabelEvent>, NoLabel> {
    if !matches!(action.as_str(), "labeled" | "unlabeled") {
        return Ok(None);
    }
    let label_name = label
        .and_then(|l| l.name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| NoLabel(action.clone()))?;
    let mut event = LabelEvent {
        version: 0,
        repository_full_name: repository_full_name.to_string(),
        kind: kind.into(),
        number,
        label_name,
        action,
        event_time,
    };
    event.version = pack(&[(seconds(event.event_time), 32)], &event);
    Ok(Some(event))
}
