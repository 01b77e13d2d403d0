//! The plan of a generated day: commits pushed to main, their workflow runs and jobs, reruns
//! that turn failures flaky, a broken-then-fixed stretch of trunk, pull requests with several
//! heads, and OOT results from two backends. Every choice is drawn from the seed (a keyed hash,
//! so a choice never depends on the order others were made in) and every instant is relative
//! to the anchor, so the same seed and anchor give the same day, byte for byte.

use sha2::{Digest, Sha256};

use crate::dataset::{workflow_of, DayShape};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// The day ends here (epoch milliseconds): jobs not finished by then are still running.
    pub anchor_ms: i64,
    pub repository: String,
    pub commits: usize,
    pub jobs_per_commit: usize,
    /// The failing logs available to upload, by name (a failure's log is one of them).
    pub logs: Vec<String>,
    /// How many test reports are available to upload.
    pub reports: usize,
}

impl Options {
    /// The demo `hud up` shows: 33 commits of 106 jobs of `pytorch-demo/pytorch` — at least 30
    /// commits of at least 100 jobs, and small enough that the durable local broker takes it
    /// in ~8 s.
    pub fn demo(seed: u64, anchor_ms: i64, logs: Vec<String>, reports: usize) -> Self {
        Self {
            seed,
            anchor_ms,
            repository: DEMO_REPOSITORY.to_string(),
            commits: 33,
            jobs_per_commit: 106,
            logs,
            reports,
        }
    }
}

/// The demo's repository: named for what it imitates, and plainly not pytorch's own.
pub const DEMO_REPOSITORY: &str = "pytorch-demo/pytorch";
/// The OOT backends that report on the demo's pull requests.
pub const OOT_BACKENDS: [(&str, &str); 2] = [
    (
        "intel/torch-xpu-ops",
        "xpu / test (default, 1, 1, linux.idc.xpu)",
    ),
    (
        "huawei/torch-npu",
        "npu / test (default, 1, 1, linux.arm64.910b)",
    ),
];

pub use crate::model::*;

/// A uniform draw in [0, 1) keyed by the seed and `what`: the same question, the same answer.
pub(crate) fn draw(seed: u64, what: &str, a: u64, b: u64) -> f64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(what.as_bytes());
    h.update(a.to_le_bytes());
    h.update(b.to_le_bytes());
    let bytes = h.finalize();
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[..8]);
    (u64::from_le_bytes(word) >> 11) as f64 / (1u64 << 53) as f64
}

/// 40 hex digits keyed by the seed and `what`.
pub(crate) fn sha(seed: u64, what: &str, n: u64) -> String {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(what.as_bytes());
    h.update(n.to_le_bytes());
    hex::encode(h.finalize())[..40].to_string()
}

const MINUTE: i64 = 60_000;

const PEOPLE: &[(&str, &str)] = &[
    ("Ada Okafor", "aokafor"),
    ("Bo Lindqvist", "blindqvist"),
    ("Chen Wei", "chenwei-dev"),
    ("Dana Ruiz", "druiz"),
    ("Emeka Nwosu", "enwosu"),
    ("Farah Haddad", "fhaddad"),
    ("Gus Petrov", "gpetrov"),
    ("Hana Sato", "hsato"),
    ("Ivan Kowalski", "ikowalski"),
    ("Jo Mbeki", "jmbeki"),
];

const TITLES: &[&str] = &[
    "[inductor] Fuse pointwise epilogues into templated matmuls",
    "[dynamo] Guard on tensor subclass metadata",
    "Add meta kernel for aten.linalg_eigh",
    "[CI] Shard distributed tests across three runners",
    "[ROCm] Enable hipBLASLt for bf16 GEMMs",
    "Fix off-by-one in nn.functional.unfold padding",
    "[export] Preserve module call signatures across retracing",
    "[MPS] Implement aten::index_fill for int64",
    "Deprecate torch.cuda.amp.autocast in favour of torch.amp",
    "[aotinductor] Emit a standalone wrapper for cpp models",
    "[distributed] Time out stuck NCCL collectives with a clear error",
    "[BE] Remove Python 3.8 shims from torch/_utils.py",
    "[quant] Support per-channel fake quant on dim 1",
    "[profiler] Record memory events for CUDA graphs",
    "Revert \"[dynamo] Inline nn.Module hooks by default\"",
    "[functorch] vmap support for torch.histc",
];

fn person(seed: u64, what: &str, n: u64) -> Person {
    let (name, username) = PEOPLE[(draw(seed, what, n, 0) * PEOPLE.len() as f64) as usize];
    Person {
        name: name.to_string(),
        username: username.to_string(),
    }
}

/// How long a job named so takes, in ms (drawn).
fn duration_ms(name: &str, roll: f64) -> i64 {
    let (lo, hi) = if name.contains("/ test (") {
        (20.0, 80.0)
    } else if name.contains("/ build") {
        (25.0, 45.0)
    } else if [
        "lint",
        "filter",
        "determin",
        "check",
        "assign",
        "get_",
        "label",
        "retrieval",
    ]
    .iter()
    .any(|w| name.to_lowercase().contains(w))
    {
        (0.3, 5.0)
    } else {
        (5.0, 20.0)
    };
    ((lo + (hi - lo) * roll) * MINUTE as f64) as i64
}

/// Test jobs wait for their build: they are created about when builds end.
fn created_after_push_ms(name: &str, roll: f64) -> i64 {
    let base = if name.contains("/ test (") { 35.0 } else { 0.3 };
    ((base + 2.0 * roll) * MINUTE as f64) as i64
}

/// Queueing: mostly short, with a tail (up to 15 minutes).
fn queue_ms(roll: f64) -> i64 {
    ((5.0 + roll.powi(3) * 900.0) * 1000.0) as i64
}

fn runner_label(name: &str) -> &'static str {
    if name.contains("cuda") || name.contains("sm86") || name.contains("gpu") {
        "linux.g5.4xlarge.nvidia.gpu"
    } else if name.starts_with("win") {
        "windows.4xlarge.nonephemeral"
    } else if name.starts_with("macos") {
        "macos-m1-stable"
    } else if name.contains("rocm") {
        "linux.rocm.gpu.2"
    } else {
        "linux.2xlarge"
    }
}

/// Builds a day from the dataset's shape.
pub struct Planner<'a> {
    options: Options,
    shape: &'a DayShape,
    day: Day,
    /// Index into the shape's names of the job that breaks trunk for a while.
    broken_job: usize,
    broken_log: Option<usize>,
    next_job_id: i64,
}

impl<'a> Planner<'a> {
    pub fn plan(shape: &'a DayShape, options: Options) -> Day {
        let names = options.jobs_per_commit.min(shape.names.len());
        let broken_job = shape.names[..names]
            .iter()
            .position(|n| n.name.contains("/ test (default"))
            .unwrap_or(names.saturating_sub(1));
        let broken_log = if options.logs.is_empty() {
            None
        } else {
            Some(
                options
                    .logs
                    .iter()
                    .position(|l| l.contains("pytest"))
                    .unwrap_or(0),
            )
        };
        // Ids are spaced by the seed so that two seeds' days never share a job or a run.
        let base = 70_000_000_000 + (options.seed % 1000) as i64 * 10_000_000;
        let mut planner = Planner {
            day: Day {
                options: options.clone(),
                commits: Vec::new(),
                pulls: Vec::new(),
                runs: Vec::new(),
                jobs: Vec::new(),
                oot: Vec::new(),
                reports: Vec::new(),
            },
            options,
            shape,
            broken_job,
            broken_log,
            next_job_id: base,
        };
        planner.main_commits(names);
        planner.pull_requests(names);
        planner.reports();
        planner.day
    }

    fn seed(&self) -> u64 {
        self.options.seed
    }

    /// The day spans the dataset's own span; commit `i` is pushed when the dataset had started
    /// the matching fraction of its jobs (busy hours get more commits).
    fn main_commits(&mut self, names: usize) {
        let n = self.options.commits;
        // The newest commit lands five minutes before the anchor: the HUD looks live.
        let newest_ms = self
            .shape
            .arrival_quantile((n as f64 - 0.5) / n as f64)
            .saturating_mul(1000);
        let first_ms = self.options.anchor_ms - newest_ms - 5 * MINUTE;
        let mut before = "0".repeat(40);
        let broken_from = n * 11 / 20;
        for i in 0..n {
            let at = first_ms
                + self
                    .shape
                    .arrival_quantile((i as f64 + 0.5) / n as f64)
                    .saturating_mul(1000);
            let sha = sha(self.seed(), "main", i as u64);
            let title =
                TITLES[(draw(self.seed(), "title", i as u64, 0) * TITLES.len() as f64) as usize];
            let commit = Commit {
                sha: sha.clone(),
                before: std::mem::replace(&mut before, sha.clone()),
                message: format!(
                    "{title} (#{})\n\nPull Request resolved: https://github.com/{}/pull/{}",
                    139_000 + i,
                    self.options.repository,
                    139_000 + i
                ),
                author: person(self.seed(), "author", i as u64),
                timestamp_ms: at - 40 * MINUTE,
                pushed_at_ms: at,
            };
            self.day.commits.push(commit);
            let broken = (broken_from..broken_from + 4).contains(&i);
            let message = self.day.commits[i].message.clone();
            let actor = self.day.commits[i].author.clone();
            self.jobs_of_head(JobsOf {
                what: "main",
                n: i as u64,
                head_sha: sha,
                head_branch: "main".into(),
                event: "push",
                pull: None,
                message,
                actor,
                pushed_at_ms: at,
                names: (0..names).collect(),
                broken,
                forced_failure: None,
            });
        }
    }

    /// Three pull requests: one whose newest head hits the job trunk broke, one with a failure
    /// of its own, one all green; each with two or three heads and OOT results.
    fn pull_requests(&mut self, names: usize) {
        let pull_names: Vec<usize> = (0..names)
            .filter(|&k| workflow_of(&self.shape.names[k].name) == "pull")
            .take(40)
            .chain(std::iter::once(self.broken_job))
            .collect();
        let base_sha = self
            .day
            .commits
            .get(self.options.commits * 11 / 20)
            .map(|c| c.sha.clone())
            .unwrap_or_default();
        for p in 0..3u64 {
            let number = 140_100 + p as i64;
            let author = person(self.seed(), "pr author", p);
            let heads = 3 - (p as usize % 2);
            let branch = format!("gh/{}/{}/head", author.username, 40 + p);
            let title =
                TITLES[(draw(self.seed(), "pr title", p, 0) * TITLES.len() as f64) as usize];
            let mut pull = Pull {
                number,
                title: title.to_string(),
                author: author.clone(),
                branch: branch.clone(),
                heads: Vec::new(),
                base_sha: base_sha.clone(),
            };
            for h in 0..heads {
                let pushed_at_ms = self.options.anchor_ms
                    - (heads - h) as i64 * 75 * MINUTE
                    - p as i64 * 20 * MINUTE;
                let sha = sha(self.seed(), "pr head", p * 10 + h as u64);
                pull.heads.push(Head {
                    sha: sha.clone(),
                    pushed_at_ms,
                });
                let newest = h + 1 == heads;
                let forced_failure = match (p, newest) {
                    (0, true) => Some(self.broken_job),
                    (1, true) => pull_names.get(7).copied(),
                    _ => None,
                };
                self.jobs_of_head(JobsOf {
                    what: "pr",
                    n: p * 10 + h as u64,
                    head_sha: sha.clone(),
                    head_branch: branch.clone(),
                    event: "pull_request",
                    pull: Some(number),
                    message: format!(
                        "{title}\n\nghstack-source-id: {}",
                        200_000 + p * 10 + h as u64
                    ),
                    actor: author.clone(),
                    pushed_at_ms,
                    names: pull_names.clone(),
                    broken: false,
                    forced_failure,
                });
                if h + 2 >= heads {
                    self.oot_results(number, &sha, pushed_at_ms, p, newest);
                }
            }
            self.day.pulls.push(pull);
        }
    }

    fn oot_results(&mut self, pr: i64, head_sha: &str, pushed_at_ms: i64, p: u64, newest: bool) {
        for (b, (backend, job_name)) in OOT_BACKENDS.iter().enumerate() {
            let n = p * 100 + b as u64 * 10 + u64::from(newest);
            let started_ms =
                pushed_at_ms + (8.0 + 10.0 * draw(self.seed(), "oot start", n, 0)) as i64 * MINUTE;
            let completed_ms =
                started_ms + (25.0 + 30.0 * draw(self.seed(), "oot took", n, 0)) as i64 * MINUTE;
            let failed = p == 1 && b == 0 && newest;
            let passed = 800 + (draw(self.seed(), "oot passed", n, 0) * 400.0) as u64;
            self.day.oot.push(OotJob {
                backend,
                job_name,
                pr,
                head_sha: head_sha.to_string(),
                check_run_id: 80_000_000_000 + (self.seed() % 1000) as i64 * 10_000 + n as i64,
                run_id: 81_000_000_000 + (self.seed() % 1000) as i64 * 10_000 + n as i64,
                started_ms,
                completed_ms,
                failed,
                tests: (passed, if failed { 3 } else { 0 }, 17),
            });
        }
    }

    fn jobs_of_head(&mut self, of: JobsOf) {
        let seed = self.seed();
        // One run per workflow, in the order workflows first appear among the names.
        let mut runs: Vec<(String, usize)> = Vec::new();
        let first_job = self.day.jobs.len();
        for &k in &of.names {
            let name = &self.shape.names[k];
            let workflow = workflow_of(&name.name);
            let run = match runs.iter().find(|(w, _)| w == workflow) {
                Some((_, r)) => *r,
                None => {
                    let index = self.day.runs.len();
                    let w = self.day.runs.len() as i64;
                    self.day.runs.push(Run {
                        id: 30_000_000_000 + (seed % 1000) as i64 * 10_000_000 + w,
                        attempts: 1,
                        run_number: 50_000 + w,
                        workflow: workflow.to_string(),
                        workflow_id: 1_000_000
                            + ["pull", "trunk", "inductor", "rocm"]
                                .iter()
                                .position(|x| *x == workflow)
                                .unwrap_or(4) as i64,
                        head_sha: of.head_sha.clone(),
                        head_branch: of.head_branch.clone(),
                        event: of.event,
                        pull: of.pull,
                        message: of.message.clone(),
                        actor: of.actor.clone(),
                        created_ms: of.pushed_at_ms + 15_000,
                    });
                    runs.push((workflow.to_string(), index));
                    index
                }
            };
            let key = of.n * 1000 + k as u64;
            let what = of.what;
            let created_ms =
                of.pushed_at_ms + created_after_push_ms(&name.name, draw(seed, what, key, 1));
            let started_ms = created_ms + queue_ms(draw(seed, what, key, 2));
            let completed_ms = started_ms + duration_ms(&name.name, draw(seed, what, key, 3));
            let failed = if of.broken && k == self.broken_job {
                true
            } else if of.forced_failure.is_some() {
                of.forced_failure == Some(k)
            } else {
                draw(seed, what, key, 4) < name.failure_rate().min(0.25)
            };
            let shares_broken_log =
                k == self.broken_job && (of.broken || of.forced_failure == Some(self.broken_job));
            let log = if failed {
                self.log_for(k, shares_broken_log)
            } else {
                None
            };
            self.next_job_id += 1;
            self.day.jobs.push(Job {
                id: self.next_job_id,
                run,
                attempt: 1,
                name: name.name.clone(),
                head_sha: of.head_sha.clone(),
                created_ms,
                started_ms,
                completed_ms,
                failed,
                log,
                runner_label: runner_label(&name.name),
            });
        }
        self.reruns(first_job, &of);
    }

    /// A failure's log: the broken stretch shares one; any other name always fails the same way.
    fn log_for(&self, k: usize, broken: bool) -> Option<usize> {
        if broken {
            return self.broken_log;
        }
        let logs = self.options.logs.len();
        (logs > 0).then(|| (draw(self.seed(), "log", k as u64, 0) * logs as f64) as usize)
    }

    /// Two in five failures are rerun (attempt 2 of their run) and pass: flaky. The broken
    /// stretch's reruns fail again. Reruns start when the failure ends.
    fn reruns(&mut self, first_job: usize, of: &JobsOf) {
        let seed = self.seed();
        let last = self.day.jobs.len();
        for j in first_job..last {
            let job = self.day.jobs[j].clone();
            let k = job.id as u64;
            if !job.failed || job.completed_ms > self.options.anchor_ms {
                continue;
            }
            let broken_here = of.broken && job.name == self.shape.names[self.broken_job].name;
            if !(broken_here || draw(seed, "rerun", k, 0) < 0.4) {
                continue;
            }
            self.next_job_id += 1;
            let created_ms = job.completed_ms + 2 * MINUTE;
            let started_ms = created_ms + queue_ms(draw(seed, "rerun", k, 1));
            self.day.runs[job.run].attempts = 2;
            self.day.jobs.push(Job {
                id: self.next_job_id,
                attempt: 2,
                created_ms,
                started_ms,
                completed_ms: started_ms + duration_ms(&job.name, draw(seed, "rerun", k, 2)),
                failed: broken_here,
                log: if broken_here { job.log } else { None },
                ..job
            });
        }
    }

    /// The real test reports, uploaded for the test jobs of the newest commit whose jobs have
    /// all completed.
    fn reports(&mut self) {
        let anchor = self.options.anchor_ms;
        let Some(commit) = self.day.commits.iter().rev().find(|c| {
            self.day
                .jobs
                .iter()
                .filter(|j| j.head_sha == c.sha)
                .all(|j| j.state(anchor) == State::Completed)
        }) else {
            return;
        };
        let tests: Vec<usize> = (0..self.day.jobs.len())
            .filter(|&j| {
                let job = &self.day.jobs[j];
                job.head_sha == commit.sha && job.name.contains("/ test (") && job.attempt == 1
            })
            .collect();
        if tests.is_empty() {
            return;
        }
        for report in 0..self.options.reports {
            self.day.reports.push(ReportUpload {
                report,
                job: tests[report % tests.len()],
            });
        }
    }
}

struct JobsOf {
    what: &'static str,
    n: u64,
    head_sha: String,
    head_branch: String,
    event: &'static str,
    pull: Option<i64>,
    message: String,
    actor: Person,
    pushed_at_ms: i64,
    names: Vec<usize>,
    /// In the broken stretch of trunk: the broken job fails.
    broken: bool,
    /// Exactly this job fails (a PR head's story), no other.
    forced_failure: Option<usize>,
}
