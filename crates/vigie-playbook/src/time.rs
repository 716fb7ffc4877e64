//! Durations (`30s`, `5m`, `1h`, `7d`) and points in time (RFC 3339 or a plain date) as
//! playbooks write them.
use chrono::{DateTime, NaiveDate, Utc};
use std::time::Duration;

/// The longest duration written in a playbook: ten years.
const MAX_DURATION_SECS: u64 = 10 * 366 * 86_400;

/// Reads a duration: a whole number and a unit, `ms`, `s`, `m`, `h`, `d` or `w` (`30s`, `7d`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let bad = || format!("\"{text}\" is not a duration: write a whole number and a unit, like 30s, 5m, 1h or 7d");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let ms_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(ms_per_unit).filter(|ms| *ms <= MAX_DURATION_SECS * 1000);
    ms.map(Duration::from_millis).ok_or_else(|| format!("\"{text}\" is longer than ten years"))
}

/// Reads a point in time: RFC 3339, or a date (`2025-01-31`, read as midnight UTC).
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(t) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|d| d.and_utc())
}

/// Reads a due date: a duration from `now` or a point in time.
pub(crate) fn parse_due(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Some(at) = parse_time(text) {
        return Ok(at);
    }
    let d = parse_duration(text)
        .map_err(|_| format!("\"{text}\" is neither a duration (like 14d) nor an RFC 3339 time or a date (2025-01-31)"))?;
    add(now, d)
}

/// `now + d`, refusing overflow.
pub(crate) fn add(now: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>, String> {
    chrono::Duration::from_std(d).ok().and_then(|d| now.checked_add_signed(d)).ok_or_else(|| "that time is out of range".to_owned())
}

/// RFC 3339 with seconds and a `Z`, as every time a playbook sees.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_every_unit_and_refuse_the_rest() {
        let cases: &[(&str, Option<u64>)] = &[
            ("500ms", Some(500)),
            ("30s", Some(30_000)),
            ("5m", Some(300_000)),
            ("1h", Some(3_600_000)),
            ("7d", Some(604_800_000)),
            ("2w", Some(1_209_600_000)),
            ("7", None),
            ("d", None),
            ("1.5h", None),
            ("-1s", None),
            ("3y", None),
            ("99999999999d", None),
        ];
        for (text, want) in cases {
            let got = parse_duration(text).ok().map(|d| d.as_millis() as u64);
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn a_due_date_is_a_duration_from_now_or_a_time() {
        let now = DateTime::parse_from_rfc3339("2025-03-01T10:00:00Z").map(|t| t.with_timezone(&Utc)).ok();
        let Some(now) = now else { panic!("test time") };
        assert_eq!(parse_due("14d", now).map(rfc3339).as_deref(), Ok("2025-03-15T10:00:00Z"));
        assert_eq!(parse_due("2025-04-01", now).map(rfc3339).as_deref(), Ok("2025-04-01T00:00:00Z"));
        assert_eq!(parse_due("2025-04-01T08:30:00+02:00", now).map(rfc3339).as_deref(), Ok("2025-04-01T06:30:00Z"));
        assert!(parse_due("soon", now).is_err());
    }
}
