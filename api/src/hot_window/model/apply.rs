//! Following the log: each derived record the feed reads is applied to the window by the
//! same rule as a loaded row — the newest version wins, whatever the order — and a commit that
//! enters a window is named in [`Wanted`] for the feed to load its jobs.

use super::load::offer_issue;
use super::*;

impl Model {
    /// A commit record (`hud.commit.v1`, as its projection's row).
    pub fn apply_commit(&mut self, record: CommitRecord, wanted: &mut Wanted) {
        if !self.refs.contains(&record.git_ref) {
            return;
        }
        let branch = Branch {
            repository: record.repository_full_name.clone(),
            git_ref: record.git_ref.clone(),
        };
        let repository = branch.repository.clone();
        if !self.windows.contains_key(&branch) {
            // No such branch when the window was loaded: every commit of it is on the log
            // from where the follower started, so the window is complete from the first.
            self.windows.insert(
                branch.clone(),
                Window {
                    commits: HashMap::new(),
                    order: BTreeSet::new(),
                    complete: true,
                },
            );
            if !self.issues_loaded.contains(&repository)
                && self.issues_asked.insert(repository.clone())
            {
                wanted.issues.push(repository.clone());
            }
        }
        let version = record.version;
        let row = CommitRow {
            sha: record.sha,
            message: record.message,
            author_name: record.author_name,
            author_username: record.author_username,
            timestamp: record.timestamp,
            pushed_at: record.pushed_at,
            url: record.url,
        };
        let capacity = self.limits.commits;
        let moved = match self.windows.get_mut(&branch) {
            Some(window) => window.offer(row, version, capacity),
            None => return,
        };
        for sha in moved.left {
            self.leave(&repository, &sha);
        }
        if let Some(sha) = moved.entered {
            let key = (repository.clone(), sha);
            let entry = self.commits.entry(key.clone()).or_default();
            entry.windows += 1;
            if entry.windows == 1 {
                // New to memory: its jobs may be in ClickHouse only.
                entry.loading = true;
                wanted.commits.push(key.clone());
                if let Some(jobs) = self.pending.remove(&key) {
                    for (id, job) in jobs {
                        self.hold(&key.0, &key.1, id, job);
                    }
                }
            }
        }
    }

    fn leave(&mut self, repository: &str, sha: &str) {
        let key = (repository.to_string(), sha.to_string());
        let Some(entry) = self.commits.get_mut(&key) else {
            return;
        };
        entry.windows = entry.windows.saturating_sub(1);
        if entry.windows > 0 {
            return;
        }
        self.cells
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        if let Some(entry) = self.commits.remove(&key) {
            for id in entry.jobs.keys() {
                let job = (repository.to_string(), *id);
                self.job_commit.remove(&job);
                self.verdicts.remove(&job);
                self.tests.remove(&job);
                self.outstanding.remove(&job);
                self.failed_tests.remove(&job);
            }
        }
    }

    /// A job record (`hud.workflow_job.v1`, as its projection's row).
    pub fn apply_job(&mut self, record: WorkflowJobRow) {
        let job = HeldJob {
            version: record.version,
            run_attempt: record.run_attempt,
            workflow_name: self.name(&record.workflow_name),
            name: self.name(&record.name),
            status: self.name(&record.status),
            conclusion: self.name(&record.conclusion),
            duration_s: record.duration_s,
            html_url: record.html_url,
        };
        self.offer_job(
            &record.repository_full_name,
            &record.head_sha,
            record.id,
            job,
        );
    }

    pub(super) fn offer_job(&mut self, repository: &str, sha: &str, id: i64, job: HeldJob) {
        let key = (repository.to_string(), sha.to_string());
        if self.commits.contains_key(&key) {
            self.hold(repository, sha, id, job);
            return;
        }
        let pending = self.pending.entry(key.clone()).or_default();
        match pending.get(&id) {
            Some(held) if held.version >= job.version => {}
            _ => {
                if pending.insert(id, job).is_none() {
                    self.pending_order.push_back((key, id));
                }
            }
        }
        while self.pending_order.len() > self.limits.pending_jobs {
            if let Some((key, id)) = self.pending_order.pop_front() {
                if let Some(jobs) = self.pending.get_mut(&key) {
                    jobs.remove(&id);
                    if jobs.is_empty() {
                        self.pending.remove(&key);
                    }
                }
            }
        }
    }

    fn hold(&mut self, repository: &str, sha: &str, id: i64, job: HeldJob) {
        let key = (repository.to_string(), sha.to_string());
        let Some(entry) = self.commits.get_mut(&key) else {
            return;
        };
        match entry.jobs.get(&id) {
            Some(held) if held.version >= job.version => return,
            _ => {}
        }
        entry.jobs.insert(id, job);
        let job_key = (repository.to_string(), id);
        if self
            .job_commit
            .insert(job_key.clone(), sha.to_string())
            .is_none()
        {
            if let Some(verdict) = self.orphan_verdicts.remove(&job_key) {
                self.offer_verdict(job_key.clone(), verdict);
            }
            // What the window has not seen of this job's tests may still be on its way to
            // ClickHouse: answers about them are kept only once the writers pass this point.
            if !self.seen.is_empty() {
                let marks = self.tests.entry(job_key.clone()).or_default();
                marks.generation += 1;
                for (k, offset) in &self.seen {
                    marks.marks.insert(*k, *offset);
                }
                self.outstanding.insert(job_key);
            }
        }
    }

    /// A verdict record (`hud.job_classification.v1`, as its projection's row).
    pub fn apply_verdict(&mut self, record: JobClassificationRow) {
        let key = (record.repository_full_name.clone(), record.job_id);
        self.offer_verdict(
            key,
            Verdict {
                version: record.version,
                outcome: record.outcome,
                rule: record.rule,
                line: record.line,
                line_number: record.line_number,
                captures: record.captures,
            },
        );
    }

    pub(super) fn offer_verdict(&mut self, key: JobKey, verdict: Verdict) {
        let held = self.job_commit.contains_key(&key);
        let map = if held {
            &mut self.verdicts
        } else {
            &mut self.orphan_verdicts
        };
        match map.get(&key) {
            Some(v) if v.version >= verdict.version => return,
            _ => {}
        }
        if map.insert(key.clone(), verdict).is_none() && !held {
            self.orphan_order.push_back(key);
            while self.orphan_order.len() > self.limits.pending_jobs {
                if let Some(old) = self.orphan_order.pop_front() {
                    self.orphan_verdicts.remove(&old);
                }
            }
        }
    }

    /// An issue record (`hud.issue.v1`, as its projection's row).
    pub fn apply_issue(&mut self, record: IssueRow) {
        if record.is_pull_request {
            return;
        }
        let issues = self
            .issues
            .entry(record.repository_full_name.clone())
            .or_default();
        offer_issue(
            issues,
            LoadedIssue {
                number: record.number,
                version: record.version,
                title: record.title,
                state: record.state,
                deleted: record.deleted,
                html_url: record.html_url,
            },
        );
    }

    /// A test record of `job` (a page of cases, or a report's state) at this log position.
    pub fn apply_test_record(
        &mut self,
        repository: &str,
        job_id: i64,
        topic: TestTopic,
        partition: i32,
        offset: i64,
    ) {
        let seen = self.seen.entry((topic, partition)).or_insert(offset);
        *seen = (*seen).max(offset);
        let key = (repository.to_string(), job_id);
        if !self.job_commit.contains_key(&key) {
            return;
        }
        let marks = self.tests.entry(key.clone()).or_default();
        marks.generation += 1;
        let mark = marks.marks.entry((topic, partition)).or_insert(offset);
        *mark = (*mark).max(offset);
        self.outstanding.insert(key.clone());
        self.failed_tests.remove(&key);
    }

    /// Where the writers of a test topic stand, per partition (the lowest commit among them).
    pub fn set_written(&mut self, topic: TestTopic, committed: &BTreeMap<i32, i64>) {
        for (partition, offset) in committed {
            self.written.insert((topic, *partition), *offset);
        }
        // Marks ClickHouse has passed are done with.
        let written = &self.written;
        let tests = &mut self.tests;
        self.outstanding.retain(|job| {
            let Some(marks) = tests.get_mut(job) else {
                return false;
            };
            marks
                .marks
                .retain(|k, offset| written.get(k).is_none_or(|w| *w <= *offset));
            !marks.marks.is_empty()
        });
    }

    /// Whether some job's test records are not yet known to be in ClickHouse.
    pub fn has_outstanding(&self) -> bool {
        !self.outstanding.is_empty()
    }

    /// ClickHouse's answer about a job's failing tests, asked at `generation`: kept if nothing
    /// of the job's tests changed since, and ClickHouse had every record the window has seen.
    pub fn keep_failed_tests(
        &mut self,
        repository: &str,
        job_id: i64,
        generation: u64,
        answer: Option<FailedTestsRow>,
    ) {
        let key = (repository.to_string(), job_id);
        if !self.job_commit.contains_key(&key) {
            return;
        }
        let marks = self.tests.entry(key.clone()).or_default();
        if marks.generation != generation || !marks.marks.is_empty() {
            return;
        }
        self.failed_tests.insert(key, (generation, answer));
    }
}
