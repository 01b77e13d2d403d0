//! The day as GitHub shows it: its REST objects (a job, a run, a commit, a pull request as
//! `GET /repos/…` returns them) and the webhook bodies that carry them. The backfill's GitHub
//! stand-in serves the same objects the demo delivers as webhooks.

use serde_json::{json, Value};

use crate::day::{Day, Job, Pull, Run, State};

/// RFC 3339 in seconds, as GitHub writes instants.
pub fn instant(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Day {
    pub fn repository_object(&self) -> Value {
        let repo = &self.options.repository;
        let (owner, name) = repo.split_once('/').unwrap_or((repo, repo));
        json!({
            "id": 65_600_975,
            "name": name,
            "full_name": repo,
            "private": false,
            "owner": {"login": owner, "type": "Organization"},
            "html_url": format!("https://github.com/{repo}"),
            "default_branch": "main",
        })
    }

    /// A job as `GET /repos/{repo}/actions/jobs/{id}` shows it in `state`.
    pub fn job_object(&self, job: &Job, state: State) -> Value {
        let repo = &self.options.repository;
        let run = &self.runs[job.run];
        let status = match state {
            State::Queued => "queued",
            State::InProgress => "in_progress",
            State::Completed => "completed",
        };
        let conclusion =
            (state == State::Completed).then_some(if job.failed { "failure" } else { "success" });
        let steps = steps(job, state);
        let runner = (state != State::Queued).then(|| {
            format!(
                "i-0{:016x}",
                (job.id as u64).wrapping_mul(2_654_435_761) % (1 << 60)
            )
        });
        json!({
            "id": job.id,
            "run_id": run.id,
            "run_attempt": job.attempt,
            "node_id": format!("CR_kwDO{:x}", job.id),
            "head_sha": job.head_sha,
            "head_branch": run.head_branch,
            "workflow_name": run.workflow,
            "name": job.name,
            "status": status,
            "conclusion": conclusion,
            "created_at": instant(job.created_ms),
            "started_at": instant(if state == State::Queued { job.created_ms } else { job.started_ms }),
            "completed_at": (state == State::Completed).then(|| instant(job.completed_ms)),
            "labels": [job.runner_label],
            "runner_id": runner.as_ref().map(|_| 4_000 + job.id % 997),
            "runner_name": runner,
            "runner_group_id": runner.as_ref().map(|_| 1),
            "runner_group_name": runner.as_ref().map(|_| "Default"),
            "steps": steps,
            "url": format!("https://api.github.com/repos/{repo}/actions/jobs/{}", job.id),
            "html_url": format!("https://github.com/{repo}/actions/runs/{}/job/{}", run.id, job.id),
            "run_url": format!("https://api.github.com/repos/{repo}/actions/runs/{}", run.id),
            "check_run_url": format!("https://api.github.com/repos/{repo}/check-runs/{}", job.id),
        })
    }

    /// The jobs of `run`'s attempt `attempt`, and where the attempt stands at `at`.
    pub fn attempt_jobs(&self, run: usize, attempt: i64) -> impl Iterator<Item = &Job> {
        self.jobs
            .iter()
            .filter(move |j| j.run == run && j.attempt == attempt)
    }

    /// A run's attempt as `GET /repos/{repo}/actions/runs/{id}` shows it in `state`. Attempt 2
    /// reruns the failed jobs only; its conclusion is that of the reruns.
    pub fn run_object(&self, run: &Run, index: usize, attempt: i64, state: State) -> Value {
        let repo = &self.options.repository;
        let jobs: Vec<&Job> = self.attempt_jobs(index, attempt).collect();
        let created_ms = jobs
            .iter()
            .map(|j| j.created_ms)
            .min()
            .unwrap_or(run.created_ms)
            .min(if attempt == 1 {
                run.created_ms
            } else {
                i64::MAX
            });
        let started_ms = jobs
            .iter()
            .map(|j| j.started_ms)
            .min()
            .unwrap_or(created_ms);
        let completed_ms = jobs
            .iter()
            .map(|j| j.completed_ms)
            .max()
            .unwrap_or(created_ms);
        let (status, conclusion, updated_ms) = match state {
            State::Queued => ("queued", None, created_ms),
            State::InProgress => ("in_progress", None, started_ms),
            State::Completed => (
                "completed",
                Some(if jobs.iter().any(|j| j.failed) {
                    "failure"
                } else {
                    "success"
                }),
                completed_ms,
            ),
        };
        let file = format!(".github/workflows/{}.yml", run.workflow);
        let base = format!(
            "https://api.github.com/repos/{repo}/actions/runs/{}",
            run.id
        );
        json!({
            "id": run.id,
            "name": run.workflow,
            "node_id": format!("WFR_kwLO{:x}", run.id),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": file,
            "display_title": run.message.lines().next().unwrap_or_default(),
            "run_number": run.run_number,
            "event": run.event,
            "status": status,
            "conclusion": conclusion,
            "workflow_id": run.workflow_id,
            "check_suite_id": run.id + 1_000_000_000,
            "url": base,
            "html_url": format!("https://github.com/{repo}/actions/runs/{}", run.id),
            "pull_requests": run.pull.map(|n| vec![json!({"number": n})]).unwrap_or_default(),
            // A rerun keeps its run's creation; its attempt starts later.
            "created_at": instant(run.created_ms),
            "updated_at": instant(updated_ms),
            "run_attempt": attempt,
            "run_started_at": instant(created_ms),
            "actor": {"login": run.actor.username},
            "triggering_actor": {"login": run.actor.username},
            "jobs_url": format!("{base}/jobs"),
            "logs_url": format!("{base}/logs"),
            "previous_attempt_url": (attempt > 1).then(|| format!("{base}/attempts/{}", attempt - 1)),
            "head_commit": {
                "id": run.head_sha,
                "message": run.message,
                "timestamp": instant(run.created_ms),
                "author": {"name": run.actor.name, "email": run.actor.email()},
            },
            "head_repository": {"full_name": repo},
            "repository": {"full_name": repo},
        })
    }

    /// Where a run's attempt stands at `at`: completed once all its jobs are.
    pub fn attempt_state(&self, run: usize, attempt: i64, at: i64) -> Option<State> {
        self.attempt_jobs(run, attempt)
            .map(|j| j.state(at))
            .fold(None, |acc, s| {
                Some(match acc {
                    None => s,
                    Some(a) => match (a, s) {
                        (State::Completed, State::Completed) => State::Completed,
                        (State::Queued, State::Queued) => State::Queued,
                        _ => State::InProgress,
                    },
                })
            })
    }

    /// The push of main's commit `i`, as GitHub's `push` webhook.
    pub fn push_body(&self, i: usize) -> Value {
        let repo = &self.options.repository;
        let c = &self.commits[i];
        let commit = json!({
            "id": c.sha,
            "tree_id": crate::day::sha(self.options.seed, "tree", i as u64),
            "distinct": true,
            "message": c.message,
            "timestamp": instant(c.timestamp_ms),
            "url": format!("https://github.com/{repo}/commit/{}", c.sha),
            "author": {"name": c.author.name, "email": c.author.email(), "username": c.author.username},
            "committer": {"name": "PyTorch MergeBot", "email": "pytorchmergebot@users.noreply.github.com", "username": "pytorchmergebot"},
            "added": [], "removed": [], "modified": ["torch/_inductor/lowering.py"],
        });
        let mut repository = self.repository_object();
        repository["pushed_at"] = json!(c.pushed_at_ms / 1000);
        json!({
            "ref": "refs/heads/main",
            "before": c.before,
            "after": c.sha,
            "created": false,
            "deleted": false,
            "forced": false,
            "base_ref": null,
            "compare": format!("https://github.com/{repo}/compare/{}...{}", &c.before[..12], &c.sha[..12]),
            "commits": [commit.clone()],
            "head_commit": commit,
            "repository": repository,
            "pusher": {"name": "pytorchmergebot", "email": "pytorchmergebot@users.noreply.github.com"},
            "sender": {"login": "pytorchmergebot"},
        })
    }

    /// A pull request as `GET /repos/{repo}/pulls/{n}` shows it with head `h`.
    pub fn pull_object(&self, pull: &Pull, h: usize) -> Value {
        let repo = &self.options.repository;
        let head = &pull.heads[h];
        json!({
            "number": pull.number,
            "id": 2_000_000_000 + pull.number,
            "node_id": format!("PR_kwDO{:x}", pull.number),
            "state": "open",
            "draft": false,
            "merged": false,
            "locked": false,
            "title": pull.title,
            "body": format!("Stack from [ghstack](https://github.com/ezyang/ghstack):\n* __->__ #{}", pull.number),
            "user": {"login": pull.author.username},
            "author_association": "CONTRIBUTOR",
            "labels": [{"name": "ciflow/trunk"}, {"name": "topic: not user facing"}],
            "head": {"sha": head.sha, "ref": pull.branch, "repo": {"full_name": repo}},
            "base": {"sha": pull.base_sha, "ref": "main", "repo": {"full_name": repo}},
            "merge_commit_sha": null,
            "created_at": instant(pull.heads[0].pushed_at_ms),
            "updated_at": instant(head.pushed_at_ms),
            "closed_at": null,
            "merged_at": null,
            "html_url": format!("https://github.com/{repo}/pull/{}", pull.number),
        })
    }

    /// A webhook body: `{action, <event>: object, repository, sender}`.
    pub fn webhook_body(&self, event: &str, action: &str, object: Value) -> Value {
        json!({
            "action": action,
            event: object,
            "repository": self.repository_object(),
            "sender": {"login": "pytorch-demo-bot[bot]", "type": "Bot"},
        })
    }

    /// An OOT relay callback for `self.oot[o]` in `state` (torchci's contract).
    pub fn oot_body(&self, o: usize, state: State) -> Value {
        let r = &self.oot[o];
        let mut workflow = json!({
            "status": if state == State::Completed { "completed" } else { "in_progress" },
            "name": format!("{}-ci", r.backend.split('/').nth(1).unwrap_or("oot")),
            "url": format!("https://github.com/{}/actions/runs/{}", r.backend, r.run_id),
            "job_name": r.job_name,
            "check_run_id": r.check_run_id,
            "run_id": r.run_id.to_string(),
            "run_attempt": 1,
            "started_at": instant(r.started_ms),
        });
        if state == State::Completed {
            workflow["conclusion"] = json!(if r.failed { "failure" } else { "success" });
            workflow["completed_at"] = json!(instant(r.completed_ms));
            workflow["test_results"] =
                json!({"passed": r.tests.0, "failed": r.tests.1, "skipped": r.tests.2});
        }
        let queue_s = (r.started_ms % 97_000) as f64 / 1000.0 + 20.0;
        json!({
            "trusted": {
                "verified_repo": r.backend,
                "downstream_repo_level": "L2",
                "ci_metrics": {
                    "queue_time": queue_s,
                    "execution_time": (state == State::Completed).then(|| (r.completed_ms - r.started_ms) as f64 / 1000.0),
                },
            },
            "untrusted": {"callback_payload": {
                "event_type": "pull_request",
                "delivery_id": format!("{}-{}", r.pr, &r.head_sha[..12]),
                "payload": {
                    "pull_request": {"number": r.pr, "head": {"sha": r.head_sha}},
                    "repository": {"full_name": self.options.repository},
                },
                "workflow": workflow,
            }},
        })
    }
}

/// GitHub's steps of a job: set-up, checkout, the work, upload, clean-up. A failure fails the
/// work and skips the upload.
fn steps(job: &Job, state: State) -> Value {
    let work = if job.name.contains("/ build") {
        "Build"
    } else if job.name.contains("/ test (") {
        "Test"
    } else {
        "Run"
    };
    let names = [
        "Set up job",
        "Checkout PyTorch",
        work,
        "Upload test artifacts",
        "Complete job",
    ];
    if state == State::Queued {
        return json!([]);
    }
    let span = (job.completed_ms - job.started_ms).max(5_000);
    let bounds = [
        0,
        span / 50,
        span / 10,
        span * 95 / 100,
        span * 98 / 100,
        span,
    ];
    let now_step = if state == State::InProgress {
        2
    } else {
        names.len()
    };
    let steps: Vec<Value> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| *i <= now_step)
        .map(|(i, name)| {
            let done = state == State::Completed || i < now_step;
            let conclusion = match (done, job.failed, i) {
                (false, _, _) => None,
                (true, true, 2) => Some("failure"),
                (true, true, 3) => Some("skipped"),
                (true, _, _) => Some("success"),
            };
            json!({
                "name": name,
                "number": i + 1,
                "status": if done { "completed" } else { "in_progress" },
                "conclusion": conclusion,
                "started_at": instant(job.started_ms + bounds[i]),
                "completed_at": done.then(|| instant(job.started_ms + bounds[i + 1])),
            })
        })
        .collect();
    Value::Array(steps)
}

/// What GitHub's REST API answers at the anchor: the objects a backfill reads. Each is the
/// object the day's last webhook for it carried.
impl Day {
    /// Main's commit `i` as `GET /repos/{repo}/commits` lists it: committed when pushed.
    pub fn commit_object(&self, i: usize) -> Value {
        let repo = &self.options.repository;
        let c = &self.commits[i];
        json!({
            "sha": c.sha,
            "html_url": format!("https://github.com/{repo}/commit/{}", c.sha),
            "parents": if i == 0 { json!([]) } else { json!([{"sha": c.before}]) },
            "author": {"login": c.author.username},
            "committer": {"login": "pytorchmergebot"},
            "commit": {
                "message": c.message,
                "author": {"name": c.author.name, "email": c.author.email(), "date": instant(c.timestamp_ms)},
                "committer": {"name": "PyTorch MergeBot", "email": "pytorchmergebot@users.noreply.github.com", "date": instant(c.pushed_at_ms)},
            },
        })
    }

    /// Every run GitHub has by the anchor, at its newest attempt: `(created_ms, object)`.
    pub fn api_runs(&self) -> Vec<(i64, Value)> {
        let at = self.options.anchor_ms;
        let mut out = Vec::new();
        for (index, run) in self.runs.iter().enumerate() {
            if run.created_ms > at {
                continue;
            }
            let attempt = (1..=run.attempts)
                .rev()
                .find(|&a| self.attempt_jobs(index, a).any(|j| j.created_ms <= at))
                .unwrap_or(1);
            let state = self
                .attempt_state(index, attempt, at)
                .unwrap_or(State::Queued);
            out.push((run.created_ms, self.run_object(run, index, attempt, state)));
        }
        out
    }

    /// The jobs of run `id`, every attempt, as `GET …/runs/{id}/jobs?filter=all` lists them.
    pub fn api_run_jobs(&self, id: i64) -> Vec<Value> {
        let at = self.options.anchor_ms;
        let Some(index) = self.runs.iter().position(|r| r.id == id) else {
            return Vec::new();
        };
        self.jobs
            .iter()
            .filter(|j| j.run == index && j.created_ms <= at)
            .map(|j| self.job_object(j, j.state(at)))
            .collect()
    }

    /// The pull requests at their newest head by the anchor, most recently updated first.
    pub fn api_pulls(&self) -> Vec<Value> {
        let at = self.options.anchor_ms;
        let mut out: Vec<(i64, Value)> = self
            .pulls
            .iter()
            .filter_map(|p| {
                let h = p.heads.iter().rposition(|h| h.pushed_at_ms <= at)?;
                Some((p.heads[h].pushed_at_ms, self.pull_object(p, h)))
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0));
        out.into_iter().map(|(_, v)| v).collect()
    }
}
