//! A string that never shows up in logs, `Debug` output or error messages.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret value (webhook secret, password, token). Printing it prints `***`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A secret file that could not be read. Names the file, never its contents.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the secret file {path}: {source}")]
pub struct SecretFileError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

/// The non-empty secrets given inline plus one per file (a trailing newline is not part of it).
pub fn collect(
    inline: &[Secret],
    files: &[std::path::PathBuf],
) -> Result<Vec<Secret>, SecretFileError> {
    let mut out: Vec<Secret> = inline.iter().filter(|s| !s.is_empty()).cloned().collect();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| SecretFileError {
            path: path.display().to_string(),
            source,
        })?;
        let value = text.trim_end_matches(['\n', '\r']);
        if !value.is_empty() {
            out.push(Secret::new(value));
        }
    }
    Ok(out)
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    // Serialized only when the effective configuration is printed: never the value.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    // Environment overrides are parsed loosely (a numeric secret arrives as a number), so any
    // scalar is accepted and kept as its text.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Int(i64),
            Float(f64),
            Bool(bool),
        }
        Ok(Secret(match Scalar::deserialize(deserializer)? {
            Scalar::Text(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn collects_inline_and_file_secrets_and_names_only_the_file_on_error() {
        let dir = std::env::temp_dir().join(format!("hudstream-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("s");
        std::fs::write(&file, "from-file\n").unwrap();
        let got = collect(&[Secret::new("inline"), Secret::new("")], &[file]).unwrap();
        assert_eq!(got, vec![Secret::new("inline"), Secret::new("from-file")]);
        let err = collect(&[], &[dir.join("missing")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing") && err.contains("cannot read"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
