//! `GET /api/tests/{owner}/{repo}/disabled`: the tests disabled by open issues, torchci's way.
//!
//! torchci's flaky-test bot disables a test by opening an issue titled
//! `DISABLED test_name (__main__.Suite)`; its body names the platforms to skip it on in a line
//! `Platforms: linux, rocm` (none: every platform). An issue titled `DISABLED MULTIPLE …`
//! disables each test listed in the code block after "disable the following tests:", one per
//! line as `test_name (Suite): platforms`. CI skips those tests; a "rerun disabled tests" job
//! runs them anyway. A test may be re-enabled once, over the last 7 days, it passed cleanly at
//! least 150 times and never failed, and its issue has been untouched for 14 days
//! (`reference/test-reports.md` §3).
//!
//! Each disabled test comes with its recent results (any job that ran it in the window) and
//! whether the re-enable rule holds now.

use serde::{Deserialize, Serialize};

use hudstream_runtime::clickhouse::{ClickHouse, Param};
use hudstream_schemas::test_report::name_id;

use crate::error::ApiError;
use crate::job_rows::unix_instant;
use crate::params::{self, QueryParams, RawPath, RawQuery};
use crate::queries::{fetch, DISABLED_TEST_ISSUES, DISABLED_TEST_RESULTS};

/// Days of results the re-enable rule looks at.
pub const REENABLE_WINDOW_DAYS: i64 = 7;
/// Clean passes the re-enable rule asks for in that window.
pub const REENABLE_GREEN: u64 = 150;
/// Days an issue must have been left alone before its test is re-enabled.
pub const REENABLE_UNTOUCHED_DAYS: i64 = 14;

/// The platforms torchci's bot knows (`lib/flakyBot/utils.ts`, `supportedPlatforms`).
pub const PLATFORMS: &[&str] = &[
    "asan", "linux", "mac", "macos", "rocm", "xpu", "slow", "win", "windows", "dynamo", "inductor",
];

/// A test a DISABLED issue names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledTest {
    /// `test_name`.
    pub name: String,
    /// The suite as written (`__main__.TestSuite`, or a module path).
    pub suite: String,
    /// Where to skip it; empty means every platform.
    pub platforms: Vec<String>,
    /// Platforms named that torchci does not know (typos, say).
    pub invalid_platforms: Vec<String>,
}

impl DisabledTest {
    /// The suite's class: its last dotted part (`__main__.TestFoo` → `TestFoo`).
    pub fn class(&self) -> &str {
        self.suite.rsplit('.').next().unwrap_or(&self.suite)
    }

    /// Whether a test case is this test: the same name, and a class name whose last dotted
    /// part is the suite's class (pytest writes `test_module.TestFoo`, unittest `TestFoo`).
    pub fn matches(&self, name: &str, classname: &str) -> bool {
        name == self.name && classname.rsplit('.').next() == Some(self.class())
    }
}

/// `test_name (suite)`, as torchci's `parseTestName` reads it: a name starting `test_`, then
/// the suite in parentheses, each of letters, digits, `-`, `_` and `.` only.
pub fn parse_test_name(text: &str) -> Option<(String, String)> {
    let text = text.trim();
    let (name, rest) = text.split_once(|c: char| c.is_whitespace())?;
    let suite = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    let allowed = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (name.starts_with("test_") && allowed(name) && allowed(suite))
        .then(|| (name.to_string(), suite.to_string()))
}

/// The platforms of a comma-separated list, lower-cased: (known, unknown), each sorted.
fn split_platforms(list: &str) -> (Vec<String>, Vec<String>) {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for platform in list.split(',').map(|p| p.trim().to_lowercase()) {
        if platform.is_empty() {
            continue;
        }
        if PLATFORMS.contains(&platform.as_str()) {
            known.push(platform);
        } else {
            unknown.push(platform);
        }
    }
    for list in [&mut known, &mut unknown] {
        list.sort();
        list.dedup();
    }
    (known, unknown)
}

/// The tests an issue disables, from its title and body; none if it disables no test.
pub fn parse_issue(title: &str, body: &str) -> Vec<DisabledTest> {
    let Some(rest) = title.strip_prefix("DISABLED ") else {
        return Vec::new();
    };
    if let Some((name, suite)) = parse_test_name(rest) {
        // `Platforms:` on a line of its own, any case (torchci's `parseBody`).
        let line = body
            .lines()
            .map(str::trim)
            .find(|l| l.to_lowercase().starts_with("platforms:"));
        let (platforms, invalid_platforms) = line.map_or_else(Default::default, |l| {
            split_platforms(&l["platforms:".len()..])
        });
        return vec![DisabledTest {
            name,
            suite,
            platforms,
            invalid_platforms,
        }];
    }
    if !rest.starts_with("MULTIPLE") {
        return Vec::new();
    }
    // The code block after "disable the following tests:" (torchci's aggregate issue).
    let lower = body.to_lowercase();
    let Some(start) = lower.find("disable the following tests:") else {
        return Vec::new();
    };
    let Some(block) = body[start..].split("```").nth(1) else {
        return Vec::new();
    };
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|line| {
            let (test, platforms) = line.split_once(':').unwrap_or((line, ""));
            let (name, suite) = parse_test_name(test)?;
            let (platforms, invalid_platforms) = split_platforms(platforms);
            Some(DisabledTest {
                name,
                suite,
                platforms,
                invalid_platforms,
            })
        })
        .collect()
}

/// A row of `disabled_test_issues`.
#[derive(Debug, clickhouse::Row, Deserialize)]
pub struct IssueRow {
    pub number: i64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub created_at_unix: u32,
    pub updated_at_unix: u32,
    pub html_url: String,
}

/// A row of `disabled_test_results`.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct ResultRow {
    name: String,
    classname: String,
    green: u64,
    red: u64,
    skipped: u64,
    last_seen_unix: u32,
}

/// The issue that disables a test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DisablingIssue {
    pub number: i64,
    pub title: String,
    pub url: String,
    pub labels: Vec<String>,
    pub updated_at: Option<String>,
}

/// A test's results over the re-enable window.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RecentResults {
    /// Runs that passed without a retry.
    pub green: u64,
    /// Runs that failed, errored or needed a retry.
    pub red: u64,
    pub skipped: u64,
    pub last_seen: Option<String>,
    /// The class names it ran under.
    pub classnames: Vec<String>,
}

/// Whether torchci's re-enable rule holds now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reenable {
    pub eligible: bool,
    /// What is missing, when not eligible.
    pub reasons: Vec<String>,
    pub days_untouched: i64,
}

/// torchci's re-enable rule: ≥ 150 clean passes and no failure over the window, and the issue
/// untouched for 14 days.
pub fn reenable(results: &RecentResults, updated_at_unix: i64, now_unix: i64) -> Reenable {
    let days_untouched = ((now_unix - updated_at_unix) / 86_400).max(0);
    let mut reasons = Vec::new();
    if results.green < REENABLE_GREEN {
        reasons.push(format!(
            "{} clean passes in {REENABLE_WINDOW_DAYS} days; {REENABLE_GREEN} needed",
            results.green
        ));
    }
    if results.red > 0 {
        reasons.push(format!(
            "{} failing runs in {REENABLE_WINDOW_DAYS} days; none allowed",
            results.red
        ));
    }
    if days_untouched < REENABLE_UNTOUCHED_DAYS {
        reasons.push(format!(
            "the issue was updated {days_untouched} days ago; {REENABLE_UNTOUCHED_DAYS} needed"
        ));
    }
    Reenable {
        eligible: reasons.is_empty(),
        reasons,
        days_untouched,
    }
}

/// One disabled test.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Disabled {
    pub test: String,
    pub suite: String,
    /// Empty: every platform.
    pub platforms: Vec<String>,
    pub invalid_platforms: Vec<String>,
    pub issue: DisablingIssue,
    pub recent: RecentResults,
    pub reenable: Reenable,
}

/// The disabled tests.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct DisabledTests {
    pub repository: String,
    pub window_days: i64,
    pub tests: Vec<Disabled>,
}

/// The open DISABLED issues of a repository, with the tests each disables.
pub async fn disabled_issues(
    clickhouse: &ClickHouse,
    repository: &str,
) -> Result<Vec<(IssueRow, Vec<DisabledTest>)>, ApiError> {
    let rows: Vec<IssueRow> = fetch(
        clickhouse,
        &DISABLED_TEST_ISSUES,
        &[("repo", Param::Str(repository.to_string()))],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|issue| {
            let tests = parse_issue(&issue.title, &issue.body);
            (issue, tests)
        })
        .filter(|(_, tests)| !tests.is_empty())
        .collect())
}

/// The disabled tests of a repository with their recent results.
pub async fn disabled_tests(
    clickhouse: &ClickHouse,
    repository: &str,
    now_unix: i64,
) -> Result<DisabledTests, ApiError> {
    let issues = disabled_issues(clickhouse, repository).await?;
    let mut names: Vec<String> = issues
        .iter()
        .flat_map(|(_, tests)| tests.iter().map(|t| t.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    let results: Vec<ResultRow> = if names.is_empty() {
        Vec::new()
    } else {
        fetch(
            clickhouse,
            &DISABLED_TEST_RESULTS,
            &[
                ("repo", Param::Str(repository.to_string())),
                (
                    "name_ids",
                    Param::UIntArray(names.iter().map(|n| name_id(n)).collect()),
                ),
                ("names", Param::StrArray(names)),
                (
                    "since",
                    Param::UInt((now_unix - REENABLE_WINDOW_DAYS * 86_400).max(0) as u64),
                ),
            ],
        )
        .await?
    };
    let mut tests = Vec::new();
    for (issue, disabled) in issues {
        for test in disabled {
            let mut recent = RecentResults::default();
            let mut last_seen = 0u32;
            for r in results
                .iter()
                .filter(|r| test.matches(&r.name, &r.classname))
            {
                recent.green += r.green;
                recent.red += r.red;
                recent.skipped += r.skipped;
                recent.classnames.push(r.classname.clone());
                last_seen = last_seen.max(r.last_seen_unix);
            }
            recent.last_seen = unix_instant(i64::from(last_seen));
            let reenable = reenable(&recent, i64::from(issue.updated_at_unix), now_unix);
            tests.push(Disabled {
                test: test.name,
                suite: test.suite,
                platforms: test.platforms,
                invalid_platforms: test.invalid_platforms,
                issue: DisablingIssue {
                    number: issue.number,
                    title: issue.title.clone(),
                    url: issue.html_url.clone(),
                    labels: issue.labels.clone(),
                    updated_at: unix_instant(i64::from(issue.updated_at_unix)),
                },
                recent,
                reenable,
            });
        }
    }
    Ok(DisabledTests {
        repository: repository.to_string(),
        window_days: REENABLE_WINDOW_DAYS,
        tests,
    })
}

/// The disabled tests a request asks for.
pub async fn from_request(
    clickhouse: &ClickHouse,
    path: RawPath<(String, String)>,
    query: RawQuery,
) -> Result<DisabledTests, ApiError> {
    let (owner, repo) = params::path(path)?;
    QueryParams::parse(query, &[])?;
    let repository = params::repository(&owner, &repo)?;
    disabled_tests(clickhouse, &repository, params::now_unix()).await
}

/// Whether any of `issues` disables the test `name` of class `classname`: the issue if so.
pub fn disabling_issue<'a>(
    issues: &'a [(IssueRow, Vec<DisabledTest>)],
    name: &str,
    classname: &str,
) -> Option<&'a IssueRow> {
    issues
        .iter()
        .find(|(_, tests)| tests.iter().any(|t| t.matches(name, classname)))
        .map(|(issue, _)| issue)
}

/// An issue's link as lists show it.
pub fn issue_link(issue: &IssueRow) -> DisablingIssue {
    DisablingIssue {
        number: issue.number,
        title: issue.title.clone(),
        url: issue.html_url.clone(),
        labels: issue.labels.clone(),
        updated_at: unix_instant(i64::from(issue.updated_at_unix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Titles and bodies from torchci's own tests of its bot (`test/verifyDisableTestIssue.test.ts`)
    /// and the format its bot writes.
    #[test]
    fn torchcis_titles_and_bodies() {
        let one = parse_issue(
            "DISABLED test_method_name   (quantization.core.test_workflow_ops.TestFakeQuantizeOps)",
            "Platforms: win",
        );
        assert_eq!(
            one,
            vec![DisabledTest {
                name: "test_method_name".into(),
                suite: "quantization.core.test_workflow_ops.TestFakeQuantizeOps".into(),
                platforms: vec!["win".into()],
                invalid_platforms: vec![],
            }]
        );
        assert_eq!(one[0].class(), "TestFakeQuantizeOps");
        let many = parse_issue(
            "DISABLED test_foo (__main__.TestFoo)",
            "whatever\nPlatforms: win, ROCm, ASAN\nyay",
        );
        assert_eq!(many[0].platforms, vec!["asan", "rocm", "win"]);
        let typo = parse_issue(
            "DISABLED test_foo (__main__.TestFoo)",
            "whatever\nPlatforms:invalid\nyay",
        );
        assert_eq!(
            (typo[0].platforms.len(), typo[0].invalid_platforms.clone()),
            (0, vec!["invalid".to_string()])
        );
        let all = parse_issue("DISABLED test_foo (__main__.TestFoo)", "whatever yay");
        assert!(
            all[0].platforms.is_empty(),
            "no Platforms line: every platform"
        );
        assert!(
            parse_issue("DISABLED test_method_name   cuz it borked  ", "Platforms:").is_empty()
        );
        assert!(parse_issue("UNSTABLE pull / linux-jammy", "").is_empty());
        assert!(parse_issue("Fix test_foo (__main__.TestFoo)", "").is_empty());
        let aggregate = parse_issue(
            "DISABLED MULTIPLE junk random",
            "disable the following tests:\n```\ntest_a (__main__.TestA): mac, win\ntest_b (__main__.TestB)\nnot a test\n```\n",
        );
        assert_eq!(aggregate.len(), 2);
        assert_eq!(aggregate[0].platforms, vec!["mac", "win"]);
        assert!(aggregate[1].platforms.is_empty());
    }

    #[test]
    fn a_disabled_test_matches_its_cases_by_name_and_class() {
        let test = &parse_issue("DISABLED test_foo (__main__.TestFoo)", "")[0];
        assert!(test.matches("test_foo", "test_foo.TestFoo"));
        assert!(test.matches("test_foo", "TestFoo"));
        assert!(!test.matches("test_foo", "test_bar.TestBar"));
        assert!(!test.matches("test_foo_2", "TestFoo"));
    }

    #[test]
    fn the_reenable_rule() {
        let now = 1_800_000_000;
        let day = 86_400;
        let green = |green, red| RecentResults {
            green,
            red,
            ..RecentResults::default()
        };
        assert!(reenable(&green(150, 0), now - 14 * day, now).eligible);
        let too_few = reenable(&green(149, 0), now - 30 * day, now);
        assert!(!too_few.eligible);
        assert!(too_few.reasons[0].contains("149 clean passes"));
        assert!(!reenable(&green(500, 1), now - 30 * day, now).eligible);
        let recent = reenable(&green(500, 0), now - 13 * day, now);
        assert!(!recent.eligible);
        assert_eq!(recent.days_untouched, 13);
    }
}
