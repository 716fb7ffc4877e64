//! The retry schedule, as data: the delay before each attempt, jitter, `Retry-After`, and when
//! an endpoint that keeps failing is given up on.
use std::time::Duration;

/// The default delays before attempts 1, 2, 3…: immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h (the schedule Svix and Standard Webhooks senders use).
pub const DEFAULT_DELAYS: &[&str] = &["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"];
/// An endpoint failing without a success for this long is disabled.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
/// The default jitter: each delay is drawn within ±20 % of its value.
pub const DEFAULT_JITTER: f64 = 0.2;
/// The longest `Retry-After` honoured; beyond it the schedule's own delay applies.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Why a schedule could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A delay is not a number followed by `ms`, `s`, `m`, `h` or `d`.
    #[error("{0:?} is not a delay such as 0s, 250ms, 5m, 2h or 1d")]
    BadDelay(String),
    /// The schedule has no attempt.
    #[error("a retry schedule needs at least one delay")]
    Empty,
    /// The jitter is outside 0..1.
    #[error("jitter must be within 0 and 1 (a fraction of each delay)")]
    BadJitter,
}

/// When to try a delivery again.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
    jitter: f64,
    disable_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::parse(DEFAULT_DELAYS, DEFAULT_JITTER, DEFAULT_DISABLE_AFTER).expect("the default schedule is valid")
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NextAttempt {
    /// Try again after this delay.
    After(Duration),
    /// The schedule is spent: the delivery has failed for good.
    GiveUp,
}

impl RetrySchedule {
    /// A schedule from written delays (`["0s", "5s", "5m"]`), a jitter fraction and the
    /// failure span after which an endpoint is disabled. Tests shrink it to milliseconds.
    pub fn parse(delays: &[impl AsRef<str>], jitter: f64, disable_after: Duration) -> Result<RetrySchedule, ScheduleError> {
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if !(0.0..1.0).contains(&jitter) {
            return Err(ScheduleError::BadJitter);
        }
        let delays = delays.iter().map(|d| parse_delay(d.as_ref())).collect::<Result<Vec<_>, _>>()?;
        RetrySchedule::new(delays, jitter, disable_after)
    }

    /// A schedule from delays already read.
    pub fn new(delays: Vec<Duration>, jitter: f64, disable_after: Duration) -> Result<RetrySchedule, ScheduleError> {
        if delays.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if !(0.0..1.0).contains(&jitter) {
            return Err(ScheduleError::BadJitter);
        }
        Ok(RetrySchedule { delays, jitter, disable_after })
    }

    /// How many attempts a delivery gets.
    pub fn attempts(&self) -> usize {
        self.delays.len()
    }

    /// The delay before the first attempt (normally zero: deliver now).
    pub fn first(&self) -> Duration {
        self.delays[0]
    }

    /// After `failed` attempts (1 after the first failure), when to try again. `unit` is a
    /// random number in 0..1 (injected, so tests choose it) that places the delay within the
    /// jitter; a receiver's `Retry-After` replaces the schedule's delay when it is longer (and
    /// at most [`MAX_RETRY_AFTER`]).
    pub fn next(&self, failed: usize, unit: f64, retry_after: Option<Duration>) -> NextAttempt {
        let Some(&base) = self.delays.get(failed) else { return NextAttempt::GiveUp };
        let factor = 1.0 + self.jitter * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        let jittered = base.mul_f64(factor);
        let delay = match retry_after {
            Some(r) if r > jittered => r.min(MAX_RETRY_AFTER).max(jittered),
            _ => jittered,
        };
        NextAttempt::After(delay)
    }

    /// Whether an endpoint that has failed continuously for `failing_for` is to be disabled.
    pub fn disables(&self, failing_for: Duration) -> bool {
        failing_for >= self.disable_after
    }
}

/// `250ms`, `0s`, `5s`, `5m`, `2h`, `1d`.
pub fn parse_delay(s: &str) -> Result<Duration, ScheduleError> {
    vigie_core::config::parse_duration(s).ok_or_else(|| ScheduleError::BadDelay(s.to_owned()))
}

/// A `Retry-After` header value: delay seconds, or an HTTP date (RFC 9110) relative to `now`
/// (seconds since the epoch). `None` when it is neither.
pub fn parse_retry_after(value: &str, now: i64) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    Some(Duration::from_secs(u64::try_from(at - now).unwrap_or(0)))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (IMF-fixdate, the form senders must use) to seconds since
/// the epoch.
fn parse_http_date(v: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(v).ok().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_the_documented_one() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 8);
        assert_eq!(s.first(), Duration::ZERO);
        assert_eq!(s.next(1, 0.5, None), NextAttempt::After(Duration::from_secs(5)));
        assert_eq!(s.next(2, 0.5, None), NextAttempt::After(Duration::from_secs(300)));
        assert_eq!(s.next(7, 0.5, None), NextAttempt::After(Duration::from_secs(36_000)));
        assert_eq!(s.next(8, 0.5, None), NextAttempt::GiveUp);
        assert!(s.disables(Duration::from_secs(5 * 86_400)) && !s.disables(Duration::from_secs(4 * 86_400)));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::default();
        assert_eq!(s.next(2, 0.0, None), NextAttempt::After(Duration::from_secs(240)));
        assert_eq!(s.next(2, 1.0, None), NextAttempt::After(Duration::from_secs(360)));
    }

    #[test]
    fn retry_after_lengthens_a_delay_but_never_shortens_it_or_exceeds_a_day() {
        let s = RetrySchedule::default();
        assert_eq!(s.next(1, 0.5, Some(Duration::from_secs(60))), NextAttempt::After(Duration::from_secs(60)));
        assert_eq!(s.next(2, 0.5, Some(Duration::from_secs(1))), NextAttempt::After(Duration::from_secs(300)));
        assert_eq!(s.next(1, 0.5, Some(Duration::from_secs(10 * 86_400))), NextAttempt::After(MAX_RETRY_AFTER));
    }

    #[test]
    fn schedules_are_read_from_text_and_bad_ones_refused() {
        let s = RetrySchedule::parse(&["0ms", "10ms", "20ms"], 0.0, Duration::from_millis(100)).expect("valid");
        assert_eq!(s.next(1, 0.3, None), NextAttempt::After(Duration::from_millis(10)));
        assert_eq!(parse_delay("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "5", "5x", "m5", "-1s", "99999999999999999999h"] {
            assert!(parse_delay(bad).is_err(), "{bad}");
        }
        assert_eq!(RetrySchedule::parse(&[] as &[&str], 0.2, DEFAULT_DISABLE_AFTER), Err(ScheduleError::Empty));
        assert_eq!(RetrySchedule::parse(&["0s"], 1.5, DEFAULT_DISABLE_AFTER), Err(ScheduleError::BadJitter));
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 - 30), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 + 30), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
