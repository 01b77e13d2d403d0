//! The day as the requests that carry it to a gateway, in the order they happened: webhooks
//! (push, pull request, workflow run and job at each step of their lives), OOT relay callbacks,
//! failing logs and test reports uploaded when their jobs end. Nothing after the anchor is sent.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::day::{Day, State};

/// One request to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `POST /github/webhook`, signed by the sender.
    Webhook {
        event: &'static str,
        action: String,
        delivery_id: String,
        body: Vec<u8>,
    },
    /// `POST /oot/results` with the relay token.
    Oot { body: Vec<u8> },
    /// `PUT /logs/{repo}/{job_id}?head_sha=…`: [`crate::Options::logs`]`[log]`.
    Log {
        job_id: i64,
        head_sha: String,
        log: usize,
    },
    /// `PUT /tests/{repo}/{job_id}?report=…&head_sha=…`: the `report`-th available report.
    TestReport {
        job_id: i64,
        head_sha: String,
        report: usize,
    },
}

impl Request {
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Webhook { .. } => "webhook",
            Request::Oot { .. } => "oot",
            Request::Log { .. } => "log",
            Request::TestReport { .. } => "test report",
        }
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

impl Day {
    /// A delivery id in GitHub's GUID form, from the seed and what it delivers.
    fn delivery_id(&self, what: &str, id: i64, step: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.options.seed.to_le_bytes());
        h.update(what.as_bytes());
        h.update(id.to_le_bytes());
        h.update(step.as_bytes());
        let x = hex::encode(h.finalize());
        format!(
            "{}-{}-{}-{}-{}",
            &x[..8],
            &x[8..12],
            &x[12..16],
            &x[16..20],
            &x[20..32]
        )
    }

    fn webhook(&self, event: &'static str, action: &str, id: i64, object: Value) -> Request {
        Request::Webhook {
            event,
            action: action.to_string(),
            delivery_id: self.delivery_id(event, id, action),
            body: bytes(&self.webhook_body(event, action, object)),
        }
    }

    /// Every request up to the anchor, oldest first (ties in the order they were planned).
    pub fn requests(&self) -> Vec<Request> {
        let anchor = self.options.anchor_ms;
        let mut timed: Vec<(i64, Request)> = Vec::new();
        for (i, c) in self.commits.iter().enumerate() {
            let body = bytes(&self.push_body(i));
            timed.push((
                c.pushed_at_ms,
                Request::Webhook {
                    event: "push",
                    action: String::new(),
                    delivery_id: self.delivery_id("push", i as i64, &c.sha),
                    body,
                },
            ));
        }
        for pull in &self.pulls {
            for (h, head) in pull.heads.iter().enumerate() {
                let action = if h == 0 { "opened" } else { "synchronize" };
                let mut object = self.pull_object(pull, h);
                if h > 0 {
                    object["before"] = Value::String(pull.heads[h - 1].sha.clone());
                }
                timed.push((
                    head.pushed_at_ms,
                    Request::Webhook {
                        event: "pull_request",
                        action: action.to_string(),
                        delivery_id: self.delivery_id("pull_request", pull.number, &head.sha),
                        body: bytes(&self.webhook_body("pull_request", action, object)),
                    },
                ));
            }
        }
        for (index, run) in self.runs.iter().enumerate() {
            for attempt in 1..=run.attempts {
                let jobs: Vec<_> = self.attempt_jobs(index, attempt).collect();
                let Some(first) = jobs.iter().map(|j| j.created_ms).min() else {
                    continue;
                };
                let created = if attempt == 1 {
                    run.created_ms.min(first)
                } else {
                    first
                };
                let started = jobs.iter().map(|j| j.started_ms).min().unwrap_or(created);
                let completed = jobs.iter().map(|j| j.completed_ms).max().unwrap_or(created);
                let id = run.id * 10 + attempt;
                for (at, action, state) in [
                    (created, "requested", State::Queued),
                    (started, "in_progress", State::InProgress),
                    (completed, "completed", State::Completed),
                ] {
                    if at <= anchor {
                        let object = self.run_object(run, index, attempt, state);
                        timed.push((at, self.webhook("workflow_run", action, id, object)));
                    }
                }
            }
        }
        for job in &self.jobs {
            for (at, action, state) in [
                (job.created_ms, "queued", State::Queued),
                (job.started_ms, "in_progress", State::InProgress),
                (job.completed_ms, "completed", State::Completed),
            ] {
                if at <= anchor {
                    let object = self.job_object(job, state);
                    timed.push((at, self.webhook("workflow_job", action, job.id, object)));
                }
            }
            if let (Some(log), State::Completed) = (job.log, job.state(anchor)) {
                timed.push((
                    job.completed_ms + 1,
                    Request::Log {
                        job_id: job.id,
                        head_sha: job.head_sha.clone(),
                        log,
                    },
                ));
            }
        }
        for upload in &self.reports {
            let job = &self.jobs[upload.job];
            timed.push((
                job.completed_ms + 2,
                Request::TestReport {
                    job_id: job.id,
                    head_sha: job.head_sha.clone(),
                    report: upload.report,
                },
            ));
        }
        for (o, r) in self.oot.iter().enumerate() {
            for (at, state) in [
                (r.started_ms, State::InProgress),
                (r.completed_ms, State::Completed),
            ] {
                if at <= anchor {
                    timed.push((
                        at,
                        Request::Oot {
                            body: bytes(&self.oot_body(o, state)),
                        },
                    ));
                }
            }
        }
        // A stable sort: same instant, planned order.
        timed.sort_by_key(|(at, _)| *at);
        timed.into_iter().map(|(_, r)| r).collect()
    }
}
