//! Rulesets: torchci's `ruleset.toml`, compiled, hashed, and reloadable from a file.
//!
//! The file is a TOML array `[[rule]]` of `{ name, pattern }`; there is no priority field —
//! file order is priority, the first rule the highest. Names need not be unique. A ruleset is
//! identified by the SHA-256 of the file's bytes, recorded with every verdict so that a
//! re-classification can tell which verdicts an older ruleset produced.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Room for the compiled set of ~100 patterns; the default (10 MiB) is enough for today's
/// 102 rules, but a ruleset that grows should fail loudly only when it is truly pathological.
const COMPILED_SIZE_LIMIT: usize = 64 << 20;
/// The prefilter's lazy DFA cache. Too small a cache makes the DFA thrash and give up,
/// falling back to a much slower engine; 32 MiB holds the real ruleset's states comfortably.
const DFA_CACHE_BYTES: usize = 32 << 20;

/// Why a ruleset cannot be used. Start-up fails with this; a reload keeps the old ruleset.
#[derive(Debug, thiserror::Error)]
pub enum RulesetError {
    #[error("cannot read ruleset {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ruleset is not valid TOML of [[rule]] {{ name, pattern }} tables: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("ruleset has no rules")]
    Empty,
    #[error("rule #{index} '{name}' has an invalid pattern: {error}")]
    InvalidRule {
        /// 1-based position in the file (its priority rank).
        index: usize,
        name: String,
        error: regex::Error,
    },
    #[error("the ruleset's {rules} patterns are too large to compile together: {0}", rules = .1)]
    TooLarge(regex::Error, usize),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesetToml {
    #[serde(default)]
    rule: Vec<RuleToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleToml {
    name: String,
    pattern: String,
}

/// One rule: a name and a line regex. Its priority is its position in the [`Ruleset`].
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub pattern: String,
    pub(crate) regex: Regex,
}

impl Rule {
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

/// A compiled ruleset.
#[derive(Debug, Clone)]
pub struct Ruleset {
    rules: Vec<Rule>,
    /// Every pattern at once, multi-line, over a chunk of lines. It may report a rule that no
    /// single line matches (a `\s` or `[^…]` can span a newline in a chunk), never miss one
    /// that does: the engine confirms every report line by line.
    pub(crate) prefilter: RegexSet,
    hash: String,
}

impl Ruleset {
    /// Compiles a ruleset from the text of a `ruleset.toml`.
    pub fn from_toml(text: &str) -> Result<Ruleset, RulesetError> {
        Ruleset::compile(text, hash_of(text))
    }

    fn compile(text: &str, hash: String) -> Result<Ruleset, RulesetError> {
        let parsed: RulesetToml = toml::from_str(text)?;
        if parsed.rule.is_empty() {
            return Err(RulesetError::Empty);
        }
        let mut rules = Vec::with_capacity(parsed.rule.len());
        for (i, rule) in parsed.rule.into_iter().enumerate() {
            let regex = RegexBuilder::new(&rule.pattern)
                .size_limit(COMPILED_SIZE_LIMIT)
                .build()
                .map_err(|error| RulesetError::InvalidRule {
                    index: i + 1,
                    name: rule.name.clone(),
                    error,
                })?;
            rules.push(Rule {
                name: rule.name,
                pattern: rule.pattern,
                regex,
            });
        }
        let prefilter = RegexSetBuilder::new(rules.iter().map(|r| prefilter_pattern(&r.pattern)))
            .multi_line(true)
            .size_limit(COMPILED_SIZE_LIMIT)
            .dfa_size_limit(DFA_CACHE_BYTES)
            .build()
            .map_err(|e| RulesetError::TooLarge(e, rules.len()))?;
        Ok(Ruleset {
            rules,
            prefilter,
            hash,
        })
    }

    /// Reads and compiles a ruleset file.
    pub fn from_path(path: &Path) -> Result<Ruleset, RulesetError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ruleset::from_toml(&text)
    }

    /// The rules, highest priority first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// `sha256:<hex>` of the file's bytes.
    pub fn hash(&self) -> &str {
        &self.hash
    }
}

/// `sha256:<hex>` of a ruleset file's bytes: the ruleset's identity in every verdict.
fn hash_of(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// A rule's pattern as the multi-line prefilter runs it. A pattern that anchors to the very
/// start or end of its text (`\A`, `\z`, or `^`/`$` under `(?-m)`) matches a line on its own but
/// only the chunk's edges in a chunk, so the prefilter could miss it: such a rule is reported
/// for every chunk (the empty pattern) and confirmed line by line.
fn prefilter_pattern(pattern: &str) -> &str {
    use regex_syntax::hir::Look;
    let anchored_to_text = regex_syntax::ParserBuilder::new()
        .multi_line(true)
        .build()
        .parse(pattern)
        .map(|hir| {
            let looks = hir.properties().look_set();
            looks.contains(Look::Start) || looks.contains(Look::End)
        })
        // Unparseable patterns were refused when the rule compiled.
        .unwrap_or(true);
    if anchored_to_text {
        ""
    } else {
        pattern
    }
}

/// A ruleset file that can be reloaded while the classifier runs.
///
/// [`RulesetFile::reload`] re-reads the file and swaps in the new rules if its hash changed;
/// a file that no longer compiles leaves the old ruleset in place and returns the error, so a
/// typo in production never stops classification.
#[derive(Debug)]
pub struct RulesetFile {
    path: PathBuf,
    current: RwLock<Arc<Ruleset>>,
}

/// What a [`RulesetFile::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    Unchanged,
    /// The new ruleset's hash.
    Changed(String),
}

impl RulesetFile {
    /// Loads the file; an unreadable file or an invalid rule is an error (start-up fails).
    pub fn open(path: impl Into<PathBuf>) -> Result<RulesetFile, RulesetError> {
        let path = path.into();
        let ruleset = Ruleset::from_path(&path)?;
        Ok(RulesetFile {
            path,
            current: RwLock::new(Arc::new(ruleset)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ruleset in force.
    pub fn current(&self) -> Arc<Ruleset> {
        // A poisoned lock only means a reader panicked while holding an `Arc` clone; the
        // ruleset inside is immutable and still valid.
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Re-reads the file. Unchanged bytes are not recompiled; an error keeps the old ruleset.
    pub fn reload(&self) -> Result<Reloaded, RulesetError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| RulesetError::Read {
            path: self.path.clone(),
            source,
        })?;
        let hash = hash_of(&text);
        if hash == self.current().hash {
            return Ok(Reloaded::Unchanged);
        }
        let ruleset = Ruleset::compile(&text, hash.clone())?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(ruleset);
        Ok(Reloaded::Changed(hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_order_is_priority_and_names_may_repeat() {
        let rs = Ruleset::from_toml(
            "[[rule]]\nname = 'a'\npattern = '^x'\n[[rule]]\nname = 'a'\npattern = 'y'\n",
        )
        .unwrap();
        assert_eq!(rs.rules().len(), 2);
        assert_eq!(rs.rules()[1].pattern, "y");
        assert!(rs.hash().starts_with("sha256:"));
    }

    #[test]
    fn an_invalid_rule_is_named_with_its_regex_error() {
        let err = Ruleset::from_toml(
            "[[rule]]\nname = 'ok'\npattern = 'x'\n[[rule]]\nname = 'broken (unclosed'\npattern = 'a(b'\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("rule #2 'broken (unclosed'"), "{text}");
        assert!(text.contains("unclosed group"), "{text}");
    }

    #[test]
    fn rules_anchored_to_the_text_are_never_missed_by_the_prefilter() {
        assert_eq!(prefilter_pattern(r"^FAIL: (\w+)"), r"^FAIL: (\w+)");
        assert_eq!(prefilter_pattern(r"\Aerror"), "");
        assert_eq!(prefilter_pattern(r"failed\z"), "");
        assert_eq!(prefilter_pattern(r"(?-m)^x$"), "");
        // In a chunk the second line is not at the text's start, yet the rule matches it.
        let rs =
            Ruleset::from_toml("[[rule]]\nname = 'start'\npattern = '\\Aerror: (.*)'\n").unwrap();
        let m = rs
            .classify_bytes(b"ok\nerror: boom\n", &crate::Options::default())
            .matched
            .expect("matched");
        assert_eq!((m.line_number, m.captures), (2, vec!["boom".to_string()]));
    }

    #[test]
    fn look_around_is_refused_as_in_torchci() {
        let err = Ruleset::from_toml("[[rule]]\nname = 'la'\npattern = '(?=x)'\n").unwrap_err();
        assert!(
            matches!(err, RulesetError::InvalidRule { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_and_empty_rulesets_are_refused() {
        assert!(matches!(
            Ruleset::from_toml("[[rule]]\nname = 'a'\npattern = 'x'\npriority = 3\n"),
            Err(RulesetError::Toml(_))
        ));
        assert!(matches!(Ruleset::from_toml(""), Err(RulesetError::Empty)));
    }

    #[test]
    fn reload_swaps_on_change_and_keeps_the_old_set_on_error() {
        let dir = std::env::temp_dir().join(format!("hudstream-ruleset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ruleset.toml");
        std::fs::write(&path, "[[rule]]\nname = 'one'\npattern = 'x'\n").unwrap();
        let file = RulesetFile::open(&path).unwrap();
        let first = file.current().hash().to_string();
        assert_eq!(file.reload().unwrap(), Reloaded::Unchanged);

        std::fs::write(&path, "[[rule]]\nname = 'two'\npattern = 'y'\n").unwrap();
        assert!(matches!(file.reload().unwrap(), Reloaded::Changed(h) if h != first));
        assert_eq!(file.current().rules()[0].name, "two");

        std::fs::write(&path, "[[rule]]\nname = 'bad'\npattern = '('\n").unwrap();
        let err = file.reload().unwrap_err();
        assert!(err.to_string().contains("rule #1 'bad'"), "{err}");
        assert_eq!(file.current().rules()[0].name, "two", "old ruleset kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
