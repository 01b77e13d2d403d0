//! `hud.job_log.v1` → rule engine → `hud.job_classification.v1`: the classifier stage.
//!
//! Each stored log is streamed out of the log store, decompressed and classified on a
//! blocking thread; a log GitHub no longer has becomes a `log_gone` verdict, so every completed
//! job ends with one. The ruleset is re-read every `ruleset_reload_ms`: a changed file takes
//! effect at the next batch, a broken one is reported and the old rules stay in force.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use hudstream_classifier::ruleset::Reloaded;
use hudstream_classifier::{Options, Ruleset, RulesetFile, ENGINE_VERSION};
use hudstream_runtime::store::{BlobStore, StoreError};
use hudstream_runtime::worker::{Action, BatchHandler, InRecord};
use hudstream_schemas::job_log::{
    classification_version, log_state, outcome, JobClassification, JobLog,
};
use hudstream_schemas::topics::HUD_JOB_LOG_V1;
use hudstream_schemas::wire::RecordType;

pub const STAGE: &str = "log-classify";

/// Why a log could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The stored object is not a readable gzip log, or the engine panicked on it: retrying
    /// will not help. [`classify_log`] turns it into a `log_unavailable` verdict.
    #[error("the stored log {location} cannot be read: {reason}")]
    Unreadable { location: String, reason: String },
    /// The store failed; the batch is retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the stored log {location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
}

/// Classifies one job's log with `ruleset`: the verdict record, version included.
pub async fn classify_log(
    store: &BlobStore,
    ruleset: Arc<Ruleset>,
    log: &JobLog,
    options: &Options,
) -> Result<JobClassification, ClassifyError> {
    let mut verdict = JobClassification {
        version: 0,
        repository_full_name: log.repository_full_name.clone(),
        job_id: log.job_id,
        head_sha: log.head_sha.clone(),
        outcome: outcome::NO_MATCH.into(),
        rule: String::new(),
        line: String::new(),
        line_number: 0,
        captures: Vec::new(),
        context: Vec::new(),
        ruleset_hash: ruleset.hash().to_string(),
        engine_version: ENGINE_VERSION.to_string(),
        log_location: log.location.clone(),
        log_partial: log.state == log_state::PARTIAL,
        log_bytes: 0,
        classified_at: 0,
        signature: String::new(),
        pattern: String::new(),
    };
    match log.state.as_str() {
        log_state::STORED | log_state::PARTIAL => {
            match classify_stored(store, ruleset, &log.location, options).await {
                Ok(result) => {
                    verdict.log_bytes = result.bytes as i64;
                    if let Some(m) = result.matched {
                        verdict.outcome = outcome::MATCHED.into();
                        verdict.rule = m.rule;
                        verdict.line = m.line;
                        verdict.line_number = m.line_number as i64;
                        verdict.captures = m.captures;
                        verdict.context = m.context;
                    }
                }
                Err(ClassifyError::Store(e)) if e.is_not_found() => {
                    verdict.outcome = outcome::LOG_GONE.into();
                }
                // Retrying cannot help a corrupt object or a log the engine panics on: the
                // job gets a verdict saying so, and the operator a log line and a count.
                Err(e @ ClassifyError::Unreadable { .. }) => {
                    metrics::counter!("hudstream_logs_unreadable_total").increment(1);
                    tracing::error!(job = %log.key(), error = %e, "stored log cannot be classified");
                    verdict.outcome = outcome::LOG_UNAVAILABLE.into();
                }
                Err(e) => return Err(e),
            }
        }
        log_state::GONE => verdict.outcome = outcome::LOG_GONE.into(),
        _ => verdict.outcome = outcome::LOG_UNAVAILABLE.into(),
    }
    verdict.classified_at = chrono::Utc::now().timestamp_millis();
    verdict.sign();
    verdict.version = classification_version(&verdict);
    metrics::counter!("hudstream_logs_classified_total", "outcome" => verdict.outcome.clone())
        .increment(1);
    Ok(verdict)
}

async fn classify_stored(
    store: &BlobStore,
    ruleset: Arc<Ruleset>,
    location: &str,
    options: &Options,
) -> Result<hudstream_classifier::Verdict, ClassifyError> {
    let stored = store.read(location).await?;
    let options = options.clone();
    let started = Instant::now();
    let result =
        match tokio::task::spawn_blocking(move || ruleset.classify(stored.into_reader(), &options))
            .await
        {
            Ok(result) => result,
            Err(e) if e.is_panic() => {
                return Err(ClassifyError::Unreadable {
                    location: location.to_string(),
                    reason: format!("the classifier panicked on it: {e}"),
                })
            }
            Err(e) => {
                return Err(ClassifyError::Io {
                    location: location.to_string(),
                    source: std::io::Error::other(e),
                })
            }
        };
    match result {
        Ok(verdict) => {
            metrics::histogram!("hudstream_classify_seconds").record(started.elapsed());
            metrics::counter!("hudstream_classified_bytes_total").increment(verdict.bytes);
            Ok(verdict)
        }
        // A corrupt or truncated gzip stream: the object itself is bad.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::InvalidData
                    | std::io::ErrorKind::InvalidInput
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            Err(ClassifyError::Unreadable {
                location: location.to_string(),
                reason: e.to_string(),
            })
        }
        Err(source) => Err(ClassifyError::Io {
            location: location.to_string(),
            source,
        }),
    }
}

/// The classifier stage.
pub struct ClassifyStage {
    store: BlobStore,
    rules: Arc<RulesetFile>,
    options: Options,
    concurrency: usize,
    reload_every: Duration,
    next_reload: Instant,
}

impl ClassifyStage {
    pub fn new(
        store: BlobStore,
        rules: Arc<RulesetFile>,
        options: Options,
        concurrency: usize,
        reload_every: Duration,
    ) -> ClassifyStage {
        ClassifyStage {
            store,
            rules,
            options,
            concurrency: concurrency.max(1),
            reload_every,
            next_reload: Instant::now() + reload_every,
        }
    }

    /// Re-reads the ruleset when due, on a blocking thread (compiling ~100 patterns is CPU
    /// work the async workers should not do).
    async fn reload_if_due(&mut self) {
        if Instant::now() < self.next_reload {
            return;
        }
        self.next_reload = Instant::now() + self.reload_every;
        let rules = self.rules.clone();
        let reloaded = match tokio::task::spawn_blocking(move || rules.reload()).await {
            Ok(reloaded) => reloaded,
            Err(e) => {
                tracing::error!(error = %e, "ruleset reload task failed; the old rules stay");
                return;
            }
        };
        match reloaded {
            Ok(Reloaded::Unchanged) => {}
            Ok(Reloaded::Changed(hash)) => {
                metrics::counter!("hudstream_ruleset_reloads_total", "result" => "changed")
                    .increment(1);
                tracing::info!(path = %self.rules.path().display(), %hash, "ruleset reloaded");
            }
            Err(error) => {
                metrics::counter!("hudstream_ruleset_reloads_total", "result" => "error")
                    .increment(1);
                tracing::error!(path = %self.rules.path().display(), %error, kept = %self.rules.current().hash(), "ruleset reload failed; the old rules stay in force");
            }
        }
    }
}

impl BatchHandler for ClassifyStage {
    fn stage(&self) -> &'static str {
        STAGE
    }

    fn input_topic(&self) -> &'static str {
        HUD_JOB_LOG_V1
    }

    async fn handle(&mut self, batch: &[InRecord]) -> anyhow::Result<Vec<(usize, Action)>> {
        self.reload_if_due().await;
        let ruleset = self.rules.current();
        let mut actions = Vec::new();
        // Of several records of one job in the batch, only the highest version counts.
        let mut latest: BTreeMap<String, (usize, JobLog)> = BTreeMap::new();
        for (i, record) in batch.iter().enumerate() {
            match record.decode::<JobLog>() {
                Ok(log) => match latest.get(&log.key()) {
                    Some((_, kept)) if kept.version > log.version => {}
                    _ => {
                        latest.insert(log.key(), (i, log));
                    }
                },
                Err(reason) => actions.push((i, Action::DeadLetter { reason })),
            }
        }
        let this = &*self;
        let results: Vec<(usize, Result<JobClassification, ClassifyError>)> =
            futures::stream::iter(latest.into_values().map(|(i, log)| {
                let ruleset = ruleset.clone();
                async move {
                    (
                        i,
                        classify_log(&this.store, ruleset, &log, &this.options).await,
                    )
                }
            }))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for (i, result) in results {
            let verdict = result?;
            actions.push((i, Action::publish(&verdict, &batch[i])));
        }
        Ok(actions)
    }
}

#[cfg(test)]
mod signature_tests {
    //! Failure signatures on real failure lines: the log-classifier reference's failing logs,
    //! classified by the real ruleset, signed as the stage signs them.

    use std::collections::BTreeMap;

    use hudstream_classifier::fixture::{reference_dir, Fixture};
    use hudstream_classifier::{Options, Ruleset};
    use hudstream_schemas::job_log::{outcome, JobClassification};

    fn signed(ruleset: &Ruleset, log: &str) -> Option<JobClassification> {
        let m = ruleset
            .classify_bytes(log.as_bytes(), &Options::default())
            .matched?;
        let mut verdict = JobClassification {
            version: 0,
            repository_full_name: "o/r".into(),
            job_id: 1,
            head_sha: String::new(),
            outcome: outcome::MATCHED.into(),
            rule: m.rule,
            line: m.line,
            line_number: m.line_number as i64,
            captures: m.captures,
            context: m.context,
            ruleset_hash: String::new(),
            engine_version: String::new(),
            log_location: String::new(),
            log_partial: false,
            log_bytes: 0,
            classified_at: 0,
            signature: String::new(),
            pattern: String::new(),
        };
        verdict.sign();
        Some(verdict)
    }

    /// A second run of the same failure: another (valid) timestamp on every line, every other
    /// number in the log changed (line numbers, sizes, addresses, timings, PIDs), and temporary
    /// folders renamed.
    fn rerun(log: &str) -> String {
        log.lines()
            .map(|line| {
                // GitHub's `2024-08-14T10:11:12.1234567Z ` prefix, which the classifier strips.
                let stamp = line
                    .find("Z ")
                    .filter(|&z| z >= 20 && line.as_bytes()[..4].iter().all(u8::is_ascii_digit));
                match stamp {
                    Some(z) => format!("2031-01-02T03:04:05.6789012Z {}", renumber(&line[z + 2..])),
                    None => renumber(line),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace("/tmp/", "/tmp/rerun-9f3e2a/")
    }

    fn renumber(log: &str) -> String {
        let mut out = String::with_capacity(log.len());
        let mut chars = log.chars().peekable();
        let mut prev_alnum = false;
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() && !prev_alnum {
                // A whole number on its own: replace it by another of the same shape.
                let mut number = String::from(c);
                while let Some(d) = chars.peek().copied().filter(|d| d.is_ascii_digit()) {
                    number.push(d);
                    chars.next();
                }
                let glued = chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_');
                if glued {
                    out.push_str(&number);
                } else {
                    let value: u128 = number.parse().unwrap_or(0);
                    out.push_str(&(value * 7 + 3).to_string());
                }
                prev_alnum = true;
                continue;
            }
            prev_alnum = c.is_ascii_alphanumeric() || c == '_' || c == '.';
            out.push(c);
        }
        out
    }

    #[test]
    fn reruns_of_a_real_failure_share_its_signature_and_different_failures_do_not() {
        let dir = reference_dir();
        let ruleset = Ruleset::from_path(&dir.join("ruleset.toml")).expect("real ruleset");
        let mut by_signature: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut checked = 0;
        let mut fixtures: Vec<_> = std::fs::read_dir(dir.join("fixtures"))
            .expect("classifier fixtures")
            .map(|e| e.expect("entry").path())
            .collect();
        fixtures.sort();
        for path in fixtures {
            let text = std::fs::read_to_string(&path).expect("fixture");
            let log = Fixture::parse(&text).log;
            let Some(first) = signed(&ruleset, &log) else {
                continue;
            };
            // A rule may name a number (an exit code): a rerun with other numbers that no
            // longer matches that rule is a different verdict, not a masking question.
            let Some(second) = signed(&ruleset, &rerun(&log)) else {
                continue;
            };
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if first.rule == second.rule && first.captures.len() == second.captures.len() {
                assert_eq!(
                    first.signature, second.signature,
                    "{name}: {:?} and {:?} mask to {:?} and {:?}",
                    first.line, second.line, first.pattern, second.pattern
                );
                checked += 1;
            }
            by_signature
                .entry(first.signature.clone())
                .or_default()
                .push(format!("{name}: {} | {}", first.rule, first.pattern));
        }
        assert!(
            checked >= 20,
            "only {checked} real failures were compared with their rerun"
        );
        // Different real failures keep different signatures.
        let merged: Vec<_> = by_signature.values().filter(|v| v.len() > 1).collect();
        assert!(
            merged.is_empty(),
            "different failures share a signature: {merged:#?}"
        );
    }
}
