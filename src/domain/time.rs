use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// A point in time with the API's precision: whole seconds, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(seconds).unwrap_or(i64::MAX))
    }

    pub const fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Parses `2020-11-13T21:08:53Z` (any RFC 3339 offset is accepted and
    /// converted to UTC; fractions of a second are dropped).
    pub fn parse(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|t| Timestamp(t.unix_timestamp()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
        match OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&format).ok())
        {
            Some(text) => f.write_str(&text),
            None => write!(f, "invalid timestamp {}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_seconds_and_z() {
        assert_eq!(
            Timestamp::from_unix(1_605_301_733).to_string(),
            "2020-11-13T21:08:53Z"
        );
    }

    #[test]
    fn parses_what_it_prints() {
        let t = Timestamp::parse("2021-02-24T20:33:06Z").expect("valid");
        assert_eq!(t.to_string(), "2021-02-24T20:33:06Z");
        assert_eq!(Timestamp::parse("2021-02-24T21:33:06+01:00"), Some(t));
        assert_eq!(Timestamp::parse("yesterday"), None);
    }
}
