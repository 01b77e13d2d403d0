//! What one pass did, for the log and `hudstream reconcile --once`.

use std::collections::BTreeMap;

use crate::Kind;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    /// Candidates found in the tables, per kind.
    pub candidates: BTreeMap<&'static str, usize>,
    /// Candidates asked about, per kind.
    pub checked: BTreeMap<&'static str, usize>,
    /// Synthetic deliveries built (and appended, unless a dry run), per kind.
    pub appended: BTreeMap<&'static str, usize>,
    /// GitHub agreed with the table (still queued, say): nothing to append.
    pub unchanged: usize,
    /// GitHub does not have it (404/410) or refuses (another 4xx).
    pub gone: usize,
    /// GitHub requests made.
    pub requests: usize,
    /// Why the pass stopped before asking about every candidate, if it did.
    pub stopped: Option<String>,
}

impl PassReport {
    pub fn appended_total(&self) -> usize {
        self.appended.values().sum()
    }
}

impl std::fmt::Display for PassReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let per_kind = |m: &BTreeMap<&'static str, usize>| {
            [Kind::Job, Kind::Run, Kind::RunJobs]
                .iter()
                .map(|k| format!("{} {}", m.get(k.as_str()).copied().unwrap_or(0), k.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "candidates: {}; checked: {}; appended: {}; unchanged {}, gone {}; {} GitHub request(s)",
            per_kind(&self.candidates),
            per_kind(&self.checked),
            per_kind(&self.appended),
            self.unchanged,
            self.gone,
            self.requests
        )?;
        if let Some(why) = &self.stopped {
            write!(f, "; stopped early: {why}")?;
        }
        Ok(())
    }
}
