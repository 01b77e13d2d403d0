//! GitHub's timestamps (`2021-08-05T10:34:58Z`, `2021-08-05T10:26:08.000Z`) as epoch millis.

/// A timestamp field that GitHub sent but we could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} is not an RFC 3339 timestamp: {value:?}")]
pub struct BadTimestamp {
    pub field: String,
    pub value: String,
}

/// Parses an optional RFC 3339 timestamp into milliseconds since the epoch. `null`, `""` and
/// instants at or before the epoch (GitHub's `0001-01-01T00:00:00Z` placeholder) are "not yet".
pub fn parse_millis(field: &str, value: Option<&str>) -> Result<Option<i64>, BadTimestamp> {
    let Some(text) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parsed = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| BadTimestamp {
        field: field.to_string(),
        value: text.chars().take(64).collect(),
    })?;
    let millis = parsed.timestamp_millis();
    Ok((millis > 0).then_some(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_githubs_forms() {
        assert_eq!(
            parse_millis("t", Some("2021-08-05T10:34:58Z")),
            Ok(Some(1_628_159_698_000))
        );
        assert_eq!(
            parse_millis("t", Some("2021-08-05T10:26:08.000Z")),
            Ok(Some(1_628_159_168_000))
        );
        assert_eq!(
            parse_millis("t", Some("2021-08-05T12:34:58+02:00")),
            Ok(Some(1_628_159_698_000))
        );
        assert_eq!(parse_millis("t", None), Ok(None));
        assert_eq!(parse_millis("t", Some("")), Ok(None));
        assert_eq!(parse_millis("t", Some("0001-01-01T00:00:00Z")), Ok(None));
        assert!(parse_millis("t", Some("yesterday")).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_millis("t", Some(&s));
        }
    }
}
