//! ClickHouse's `DateTime('UTC')`: whole seconds since the epoch, 1970 to 2106.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `DateTime('UTC')` value. Instants outside 1970–2106 are clamped, and "not yet" is 0
/// (torchci's convention, so readers compare with the epoch, not NULL).
///
/// In RowBinary (inserts and typed reads) it is the `UInt32` ClickHouse stores; in
/// human-readable formats (JSON: golden files, API answers) it is ClickHouse's own text,
/// `YYYY-MM-DD hh:mm:ss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct DateTime(pub u32);

impl DateTime {
    pub fn from_millis(millis: Option<i64>) -> Self {
        Self::from_seconds(millis.unwrap_or(0).div_euclid(1000))
    }

    pub fn from_seconds(seconds: i64) -> Self {
        Self(seconds.clamp(0, i64::from(u32::MAX)) as u32)
    }

    /// Whether this is the epoch, the "not yet" of a time that has not happened.
    pub fn is_unset(self) -> bool {
        self.0 == 0
    }

    /// ClickHouse's text for it, or `None` for "not yet".
    pub fn text(self) -> Option<String> {
        (!self.is_unset()).then(|| self.to_string())
    }

    pub fn seconds(self) -> i64 {
        i64::from(self.0)
    }
}

impl std::fmt::Display for DateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&format_datetime(i64::from(self.0)))
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            parse_datetime(&text)
                .map(DateTime::from_seconds)
                .ok_or_else(|| serde::de::Error::custom(format!("not a DateTime: {text:?}")))
        } else {
            u32::deserialize(deserializer).map(DateTime)
        }
    }
}

/// Formats Unix seconds as ClickHouse's `DateTime` text, `YYYY-MM-DD hh:mm:ss` (UTC).
pub fn format_datetime(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Parses ClickHouse's `YYYY-MM-DD hh:mm:ss` (UTC) into Unix seconds.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    let n = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Now, as ClickHouse's `DateTime` text.
pub fn now_text() -> String {
    format_datetime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

// Howard Hinnant's days-to-civil algorithm: exact for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// Its inverse, from the same source.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_datetimes_like_clickhouse() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(1_628_160_256), "2021-08-05 10:44:16");
        assert_eq!(format_datetime(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn clamps_and_marks_not_yet() {
        assert_eq!(DateTime::from_millis(None), DateTime(0));
        assert_eq!(DateTime::from_millis(Some(-5_000)), DateTime(0));
        assert_eq!(DateTime::from_millis(Some(1_999)), DateTime(1));
        assert_eq!(DateTime::from_millis(Some(i64::MAX)), DateTime(u32::MAX));
        assert_eq!(DateTime(0).text(), None);
        assert_eq!(DateTime(1).text().as_deref(), Some("1970-01-01 00:00:01"));
    }

    #[test]
    fn json_is_clickhouses_text() {
        let json = serde_json::to_string(&DateTime(1_628_160_256)).unwrap();
        assert_eq!(json, "\"2021-08-05 10:44:16\"");
        assert_eq!(
            serde_json::from_str::<DateTime>(&json).unwrap(),
            DateTime(1_628_160_256)
        );
        assert!(serde_json::from_str::<DateTime>("\"2021-13-05 10:44:16\"").is_err());
    }

    proptest! {
        #[test]
        fn parse_is_the_inverse_of_format(seconds in 0i64..=u32::MAX as i64) {
            prop_assert_eq!(parse_datetime(&format_datetime(seconds)), Some(seconds));
        }
    }
}
