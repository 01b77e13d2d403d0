//! Request parameters: parsed and checked before any query runs, so a bad one is a 400 with a
//! JSON error that names it, and what reaches a query is a typed value bound as a literal.
//!
//! Query strings are strict: an unknown or repeated parameter is an error rather than ignored,
//! because a misspelt `per_pgae` silently giving the default page is worse than a clear 400.

use std::collections::BTreeMap;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use chrono::{DateTime, NaiveDate, Utc};

use hudstream_schemas::names::{
    is_commit_sha, is_repository_full_name, is_repository_part, parse_id,
};

use crate::error::ApiError;

/// A request's query string as axum decoded it, or why it could not: the views turn either
/// into their own answer (a JSON 400, not axum's text one).
pub type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// A request's path parameters, or why they could not be decoded (`%FF`, say).
pub type RawPath<T> = Result<Path<T>, PathRejection>;

/// The path parameters, or a JSON 400.
pub fn path<T>(raw: RawPath<T>) -> Result<T, ApiError> {
    raw.map(|Path(t)| t).map_err(|rejection| {
        ApiError::BadRequest(format!(
            "the path cannot be decoded: {}",
            rejection.body_text()
        ))
    })
}

/// The query string of one request, checked against the parameters the endpoint takes.
#[derive(Debug, Default)]
pub struct QueryParams {
    values: BTreeMap<String, String>,
}

impl QueryParams {
    /// Parses `raw` (axum's decoded pairs), refusing undecodable text and any parameter that is
    /// not in `allowed` or that appears twice.
    pub fn parse(raw: RawQuery, allowed: &[&str]) -> Result<Self, ApiError> {
        let Query(pairs) = raw.map_err(|e| {
            ApiError::BadRequest(format!(
                "the query string cannot be decoded: {}",
                e.body_text()
            ))
        })?;
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::BadRequest(format!(
                    "unknown parameter {name:?}; this endpoint takes {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "parameter {name:?} is given more than once"
                )));
            }
        }
        Ok(Self { values })
    }

    /// The raw text of a parameter, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A required `owner/name` repository parameter.
    pub fn repository(&self, name: &str) -> Result<String, ApiError> {
        let text = self
            .text(name)
            .ok_or_else(|| ApiError::BadRequest(format!("{name} is required (owner/name)")))?;
        repository_full_name(name, text)
    }

    /// A whole number in `min..=max`, or `default` when absent.
    pub fn number(&self, name: &str, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        text.parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{name} must be a whole number from {min} to {max}, not {text:?}"
                ))
            })
    }

    /// `page` (from 1) and `per_page` (up to `max_per_page`).
    pub fn paging(&self, default_per_page: u64, max_per_page: u64) -> Result<Paging, ApiError> {
        Ok(Paging {
            page: self.number("page", 1, 1, 100_000)?,
            per_page: self.number("per_page", default_per_page, 1, max_per_page)?,
        })
    }

    /// A point in time: RFC 3339 (`2024-08-14T22:38:01Z`) or a UTC date (`2024-08-14`), as
    /// unix seconds; `default` when absent.
    pub fn instant(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        let Some(text) = self.text(name) else {
            return Ok(default);
        };
        parse_instant(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name} must be an RFC 3339 time (2024-08-14T22:38:01Z) or a date (2024-08-14), not {text:?}"
            ))
        })
    }
}

fn parse_instant(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp()).filter(|s| (0..=4_294_967_295).contains(s));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let t = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some(t).filter(|s| (0..=4_294_967_295).contains(s))
}

/// The current time, unix seconds.
pub fn now_unix() -> i64 {
    Utc::now().timestamp()
}

/// A page of a result: `page` from 1, `per_page` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
}

impl Paging {
    pub fn offset(&self) -> u64 {
        (self.page - 1) * self.per_page
    }

    /// Cuts this page out of a whole result; says whether more rows follow.
    pub fn slice<T>(&self, all: Vec<T>) -> (Vec<T>, bool) {
        let offset = usize::try_from(self.offset()).unwrap_or(usize::MAX);
        let per_page = usize::try_from(self.per_page).unwrap_or(usize::MAX);
        let has_more = all.len() > offset.saturating_add(per_page);
        (
            all.into_iter().skip(offset).take(per_page).collect(),
            has_more,
        )
    }

    /// For a query asked for `per_page + 1` rows: drops the extra row and says whether it was
    /// there.
    pub fn trim<T>(&self, mut rows: Vec<T>) -> (Vec<T>, bool) {
        let per_page = usize::try_from(self.per_page).unwrap_or(usize::MAX);
        let has_more = rows.len() > per_page;
        rows.truncate(per_page);
        (rows, has_more)
    }
}

/// `owner/repo` from two path segments.
pub fn repository(owner: &str, repo: &str) -> Result<String, ApiError> {
    if is_repository_part(owner) && is_repository_part(repo) {
        Ok(format!("{owner}/{repo}"))
    } else {
        Err(ApiError::BadRequest(format!(
            "{owner}/{repo} is not a GitHub repository name"
        )))
    }
}

/// `owner/repo` from one parameter.
pub fn repository_full_name(name: &str, text: &str) -> Result<String, ApiError> {
    if is_repository_full_name(text) {
        Ok(text.to_string())
    } else {
        Err(ApiError::BadRequest(format!(
            "{name} must be a GitHub repository as owner/name, not {text:?}"
        )))
    }
}

/// A full commit SHA, lower-cased (GitHub's form, and so the stored one).
pub fn commit_sha(text: &str) -> Result<String, ApiError> {
    if is_commit_sha(text) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(ApiError::BadRequest(format!(
            "{text:?} is not a full 40-character commit SHA"
        )))
    }
}

/// A branch name, by git's rules for ref names (`git check-ref-format --branch`): what cannot
/// be a branch is refused rather than looked up.
pub fn branch(text: &str) -> Result<String, ApiError> {
    let text = text.strip_prefix("refs/heads/").unwrap_or(text);
    let bad = text.is_empty()
        || text.len() > 255
        || text.starts_with('/')
        || text.ends_with('/')
        || text.ends_with('.')
        || text.ends_with(".lock")
        || text.starts_with('-')
        || text.contains("..")
        || text.contains("//")
        || text.contains("@{")
        || text == "@"
        || text.split('/').any(|part| part.starts_with('.'))
        || text
            .chars()
            .any(|c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'));
    if bad {
        Err(ApiError::BadRequest(format!(
            "{text:?} is not a git branch name"
        )))
    } else {
        Ok(text.to_string())
    }
}

/// A positive number (a PR number, a job id) from a path segment.
pub fn positive(name: &str, text: &str) -> Result<i64, ApiError> {
    parse_id(text)
        .ok_or_else(|| ApiError::BadRequest(format!("{name} {text:?} is not a positive integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)], allowed: &[&str]) -> Result<QueryParams, ApiError> {
        QueryParams::parse(
            Ok(Query(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            )),
            allowed,
        )
    }

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        assert!(params(&[("pag", "1")], &["page"]).is_err());
        assert!(params(&[("page", "1"), ("page", "2")], &["page"]).is_err());
        let p = params(&[("page", "3"), ("per_page", "10")], &["page", "per_page"]).unwrap();
        let paging = p.paging(50, 100).unwrap();
        assert_eq!((paging.page, paging.per_page, paging.offset()), (3, 10, 20));
        for bad in ["0", "-1", "x", "101", "1e3", ""] {
            let p = params(&[("per_page", bad)], &["per_page"]).unwrap();
            assert!(p.paging(50, 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_are_rfc3339_or_dates() {
        let p = params(
            &[("since", "2024-08-14"), ("until", "2024-08-14T22:38:01Z")],
            &["since", "until"],
        )
        .unwrap();
        assert_eq!(p.instant("since", 0).unwrap(), 1_723_593_600);
        assert_eq!(p.instant("until", 0).unwrap(), 1_723_675_081);
        for bad in [
            "yesterday",
            "2024-13-01",
            "1723593600",
            "2024-08-14' OR 1=1 --",
        ] {
            let p = params(&[("since", bad)], &["since"]).unwrap();
            assert!(p.instant("since", 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn branches_follow_gits_ref_rules() {
        for good in [
            "main",
            "release/2.4",
            "gh/user/1/head",
            "refs/heads/viable/strict",
            "ciflow/trunk/123",
        ] {
            assert!(branch(good).is_ok(), "{good}");
        }
        assert_eq!(branch("refs/heads/main").unwrap(), "main");
        for bad in [
            "",
            "a..b",
            "a b",
            "x'; DROP TABLE t; --",
            "a~1",
            "/a",
            "a/",
            "a.lock",
            ".a",
            "a/.b",
            "a\\b",
            "a:b",
        ] {
            assert!(branch(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pages_slice_and_trim() {
        let paging = Paging {
            page: 2,
            per_page: 2,
        };
        assert_eq!(paging.slice(vec![1, 2, 3, 4, 5]), (vec![3, 4], true));
        assert_eq!(paging.slice(vec![1, 2, 3, 4]), (vec![3, 4], false));
        assert_eq!(paging.slice(vec![1]), (vec![], false));
        assert_eq!(paging.trim(vec![1, 2, 3]), (vec![1, 2], true));
        assert_eq!(paging.trim(vec![1, 2]), (vec![1, 2], false));
    }
}
