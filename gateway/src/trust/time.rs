//! Instants as Unix seconds, printed as RFC 3339 UTC, so every error can name the times it compared.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::calendar::{civil_from_days, days_from_civil};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;

/// An instant in whole seconds since the Unix epoch (UTC); negative values are before 1970.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time; a clock before 1970 is treated as the epoch itself.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// Converts a `SystemTime` (times before the epoch are negative).
    pub fn from_system_time(time: SystemTime) -> Self {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Self(i64::try_from(after.as_secs()).unwrap_or(i64::MAX)),
            Err(before) => Self(-i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// Reads an OpenSSL ASN.1 time (UTCTime or GeneralizedTime).
    pub fn from_asn1(time: &Asn1TimeRef) -> Result<Self, ErrorStack> {
        let epoch = Asn1Time::from_unix(0)?;
        let diff = epoch.diff(time)?;
        Ok(Self(i64::from(diff.days) * 86_400 + i64::from(diff.secs)))
    }

    /// Parses the DER body of a UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    ///
    /// Only the forms RFC 5652 allows for signingTime are accepted (Zulu, whole seconds).
    pub fn from_asn1_text(text: &[u8], generalized: bool) -> Option<Self> {
        let digits = text.strip_suffix(b"Z")?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            std::str::from_utf8(digits.get(range)?).ok()?.parse().ok()
        };
        let (year, rest) = if generalized {
            if digits.len() != 14 {
                return None;
            }
            (number(0..4)?, 4)
        } else {
            if digits.len() != 12 {
                return None;
            }
            // RFC 5280 §4.1.2.5.1: two-digit years 50..99 are 19xx, 00..49 are 20xx.
            let short = number(0..2)?;
            (
                if short >= 50 {
                    1900 + short
                } else {
                    2000 + short
                },
                2,
            )
        };
        let month = number(rest..rest + 2)?;
        let day = number(rest + 2..rest + 4)?;
        let hour = number(rest + 4..rest + 6)?;
        let minute = number(rest + 6..rest + 8)?;
        let second = number(rest + 8..rest + 10)?;
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Self(days * 86_400 + hour * 3_600 + minute * 60 + second))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let seconds = self.0.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            seconds / 3_600,
            seconds % 3_600 / 60,
            seconds % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let t = Timestamp::from_asn1_text(b"20451231000000Z", true).unwrap();
        assert_eq!(t.to_string(), "2045-12-31T00:00:00Z");
        assert_eq!(
            Timestamp::from_asn1_text(b"120416190435Z", false)
                .unwrap()
                .to_string(),
            "2012-04-16T19:04:35Z"
        );
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
        assert!(Timestamp::from_asn1_text(b"2045123100000Z", true).is_none());
        assert!(Timestamp::from_asn1_text(b"121316190435Z", false).is_none());
    }

    #[test]
    fn reads_openssl_times() {
        let t = Asn1Time::from_str_x509("20250101000000Z").unwrap();
        assert_eq!(Timestamp::from_asn1(&t).unwrap(), Timestamp(1_735_689_600));
    }
}
