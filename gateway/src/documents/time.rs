//! HL7 V3 timestamps (`YYYYMMDDhhmmss[.fff][+ZZZZ]`) to XDS DTM in UTC (`YYYYMMDDhhmmss`).
//!
//! XDS requires UTC; CDA headers carry local time with an offset (`+0100`). A timestamp
//! without an offset is kept at its precision, as the IHE mapping does.

use crate::calendar::{civil_from_days, days_from_civil};

/// Converts a CDA timestamp to an XDS UTC DTM, or `None` if it is not a timestamp.
pub fn to_xds_utc(value: &str) -> Option<String> {
    let value = value.trim();
    let split = value.find(['+', '-']).unwrap_or(value.len());
    let (local, offset) = value.split_at(split);
    let local = local.split('.').next().unwrap_or(local);
    if local.len() < 4 || local.len() > 14 || !local.len().is_multiple_of(2) {
        return None;
    }
    if !local.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    if offset.is_empty() {
        return Some(local.to_owned());
    }
    let sign: i64 = if offset.starts_with('-') { -1 } else { 1 };
    let digits = &offset[1..];
    if digits.len() != 4 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    // An offset only makes sense with at least hours and minutes; pad seconds to convert.
    if local.len() < 12 {
        return Some(local.to_owned());
    }
    let number =
        |range: std::ops::Range<usize>| local.get(range).and_then(|s| s.parse::<i64>().ok());
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute) = (number(8..10)?, number(10..12)?);
    let second = number(12..14).unwrap_or(0);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let offset_minutes =
        sign * (digits[..2].parse::<i64>().ok()? * 60 + digits[2..].parse::<i64>().ok()?);
    let total = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    let (days, seconds) = (total.div_euclid(86_400), total.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let utc = format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    );
    Some(utc[..local.len().max(12)].to_owned())
}

#[cfg(test)]
mod tests {
    use super::to_xds_utc;

    #[test]
    fn converts_offsets_to_utc() {
        assert_eq!(
            to_xds_utc("20210401134745+0100").as_deref(),
            Some("20210401124745")
        );
        assert_eq!(
            to_xds_utc("20210101003000+0100").as_deref(),
            Some("20201231233000")
        );
        assert_eq!(
            to_xds_utc("202101040735+0100").as_deref(),
            Some("202101040635")
        );
        assert_eq!(
            to_xds_utc("20240228233000-0200").as_deref(),
            Some("20240229013000")
        );
        assert_eq!(to_xds_utc("19790328").as_deref(), Some("19790328"));
        assert_eq!(to_xds_utc("garbage"), None);
    }
}
