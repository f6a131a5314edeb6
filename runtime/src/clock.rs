//! Wall-clock times of a container's life as `inspect` and `ps` show them: nanoseconds since
//! the Unix epoch, printed in RFC 3339 (UTC, nine fractional digits, as Docker prints them) and
//! as Docker's human durations ("Up 3 minutes", "2 hours ago"). Kernel interface:
//! clock_gettime(2) CLOCK_REALTIME (through std).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch now (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `ns` nanoseconds after the epoch in RFC 3339, UTC: `2026-12-06T03:10:00.123456789Z`.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of day `days` after 1970-01-01 (Howard Hinnant's
/// days-from-civil algorithm, run backwards, on 400-year eras of 146097 days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The time from `then_ns` to now (zero when `then_ns` is in the future).
pub fn since(then_ns: u64) -> Duration {
    Duration::from_nanos(now_ns().saturating_sub(then_ns))
}

/// A duration in Docker's words (its `ps` CREATED and STATUS columns): "Less than a second",
/// "1 second", "N seconds", "About a minute", "N minutes", "About an hour", "N hours" (below two
/// days), then days, weeks, months and years.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_nine_fractional_digits() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 (a leap day of a century divisible by 400), 12:34:56.000000789
        assert_eq!(
            rfc3339(951_827_696_000_000_789),
            "2000-02-29T12:34:56.000000789Z"
        );
        assert_eq!(
            rfc3339(1_796_526_600_123_456_789),
            "2026-12-06T03:10:00.123456789Z"
        );
        assert_eq!(
            rfc3339(4_102_444_799_999_999_999),
            "2099-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn durations_read_as_docker_words_them() {
        let h = |s: u64| human(Duration::from_secs(s));
        assert_eq!(human(Duration::from_millis(300)), "Less than a second");
        assert_eq!(h(1), "1 second");
        assert_eq!(h(59), "59 seconds");
        assert_eq!(h(60), "About a minute");
        assert_eq!(h(180), "3 minutes");
        assert_eq!(h(3600), "About an hour");
        assert_eq!(h(5 * 3600), "5 hours");
        assert_eq!(h(3 * 86_400), "3 days");
        assert_eq!(h(21 * 86_400), "3 weeks");
        assert_eq!(h(90 * 86_400), "3 months");
        assert_eq!(h(3 * 365 * 86_400), "3 years");
    }
}
