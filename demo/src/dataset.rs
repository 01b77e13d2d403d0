//! The real day of pytorch jobs (`reference/datasets/pytorch_jobs_2024-08-14.csv`) as a shape:
//! its job names by frequency with each name's failure count, and when its jobs started.
//!
//! The export quotes every field and writes `,` inside a name as `__`; names never hold a quote.

use std::collections::HashMap;
use std::path::Path;

/// One job name of the day.
#[derive(Debug, Clone, PartialEq)]
pub struct JobName {
    pub name: String,
    pub runs: u64,
    pub failures: u64,
}

impl JobName {
    /// Failures per run.
    pub fn failure_rate(&self) -> f64 {
        self.failures as f64 / self.runs.max(1) as f64
    }
}

/// The day's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct DayShape {
    /// Most frequent first; ties by name.
    pub names: Vec<JobName>,
    pub jobs: u64,
    pub failures: u64,
    /// Every job's start, seconds after the day's first, sorted: the arrival pattern.
    pub starts_s: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read the job dataset {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the job dataset {0} holds no jobs (expected the header \"job_id\",\"start_time\",\"conclusion\",\"dynamoKey\",\"name\",\"job_name\" and one quoted row per job)")]
    Empty(String),
}

impl DayShape {
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let shape = Self::parse(&text);
        if shape.jobs == 0 {
            return Err(DatasetError::Empty(path.display().to_string()));
        }
        Ok(shape)
    }

    /// Rows that do not have the six fields are skipped.
    pub fn parse(text: &str) -> Self {
        let mut by_name: HashMap<String, (u64, u64)> = HashMap::new();
        let (mut jobs, mut failures) = (0, 0);
        let mut starts = Vec::new();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.trim_matches('"').split("\",\"").collect();
            if fields.len() < 6 {
                continue;
            }
            let entry = by_name.entry(fields[4].replace("__", ",")).or_default();
            entry.0 += 1;
            jobs += 1;
            if fields[2] == "failure" {
                entry.1 += 1;
                failures += 1;
            }
            // "2024-08-14 22:38:01.000000000"
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(
                fields[1].split('.').next().unwrap_or_default(),
                "%Y-%m-%d %H:%M:%S",
            ) {
                starts.push(t.and_utc().timestamp());
            }
        }
        starts.sort_unstable();
        let first = starts.first().copied().unwrap_or(0);
        let mut names: Vec<JobName> = by_name
            .into_iter()
            .map(|(name, (runs, failures))| JobName {
                name,
                runs,
                failures,
            })
            .collect();
        names.sort_by(|a, b| b.runs.cmp(&a.runs).then(a.name.cmp(&b.name)));
        DayShape {
            names,
            jobs,
            failures,
            starts_s: starts.into_iter().map(|s| s - first).collect(),
        }
    }

    /// The seconds after the day's first job by which a fraction `q` (0..=1) of its jobs had
    /// started.
    pub fn arrival_quantile(&self, q: f64) -> i64 {
        if self.starts_s.is_empty() {
            return 0;
        }
        let i = ((self.starts_s.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        self.starts_s[i]
    }
}

/// The workflow a job of the dataset belongs to. The dataset names jobs, not workflows;
/// pytorch's workflows split them roughly so.
pub fn workflow_of(name: &str) -> &'static str {
    if name.contains("inductor") {
        "inductor"
    } else if name.contains("rocm") {
        "rocm"
    } else if name.starts_with("win") || name.starts_with("macos") || name.contains("cuda") {
        "trunk"
    } else {
        "pull"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_counted_with_their_failures_and_commas_restored() {
        let shape = DayShape::parse(
            "\"job_id\",\"start_time\",\"conclusion\",\"dynamoKey\",\"name\",\"job_name\"\n\
             \"1\",\"2024-08-14 17:00:00.000000000\",\"success\",\"k\",\"a / test (default__ 1__ 2)\",\"x\"\n\
             \"2\",\"2024-08-14 18:00:00.000000000\",\"failure\",\"k\",\"a / test (default__ 1__ 2)\",\"x\"\n\
             \"3\",\"2024-08-14 19:00:00.000000000\",\"success\",\"k\",\"lint\",\"x\"\n\
             garbage\n",
        );
        assert_eq!(shape.jobs, 3);
        assert_eq!(shape.failures, 1);
        assert_eq!(shape.names[0].name, "a / test (default, 1, 2)");
        assert_eq!((shape.names[0].runs, shape.names[0].failures), (2, 1));
        assert_eq!(shape.starts_s, vec![0, 3600, 7200]);
        assert_eq!(shape.arrival_quantile(0.5), 3600);
    }
}
