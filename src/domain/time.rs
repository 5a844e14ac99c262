use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

impl Timestamp {
    /// `2020-11-13T21:08:53Z` into `buffer`, for years 0 to 9999 (every
    /// timestamp a response carries; others have no such spelling). Written
    /// digit by digit: every contact carries several, so a generic
    /// formatter was a visible part of each listing.
    fn write_iso(self, buffer: &mut [u8; 20]) -> Option<&str> {
        let time = OffsetDateTime::from_unix_timestamp(self.0).ok()?;
        let year = u32::try_from(time.year()).ok().filter(|y| *y <= 9999)?;
        let mut put = |at: usize, value: u32, digits: usize| {
            let mut value = value;
            for i in (0..digits).rev() {
                buffer[at + i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, year, 4);
        put(5, u32::from(u8::from(time.month())), 2);
        put(8, u32::from(time.day()), 2);
        put(11, u32::from(time.hour()), 2);
        put(14, u32::from(time.minute()), 2);
        put(17, u32::from(time.second()), 2);
        for (at, separator) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ] {
            buffer[at] = separator;
        }
        std::str::from_utf8(buffer).ok()
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buffer = [0u8; 20];
        match self.write_iso(&mut buffer) {
            Some(text) => f.write_str(text),
            None => write!(f, "invalid timestamp {}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buffer = [0u8; 20];
        match self.write_iso(&mut buffer) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.collect_str(self),
        }
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
        assert_eq!(Timestamp::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(Timestamp::from_unix(-1).to_string(), "1969-12-31T23:59:59Z");
        assert_eq!(
            serde_json::to_string(&Timestamp::from_unix(951_782_400)).expect("json"),
            "\"2000-02-29T00:00:00Z\""
        );
        assert_eq!(
            Timestamp::from_unix(i64::MAX).to_string(),
            format!("invalid timestamp {}", i64::MAX)
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
