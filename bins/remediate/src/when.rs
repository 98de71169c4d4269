//! Instants typed by people (`2026-12-01`, an RFC 3339 timestamp, `7d`) and ages shown to
//! them (`42s`, `5m`, `3h`, `2d`). A leaf module.

use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

/// What `--since`, `--before` and the like accept, for error messages and `--help`.
pub(crate) const FORMATS: &str =
    "a date (2026-12-01, midnight UTC), an RFC 3339 timestamp (2026-12-01T08:00:00Z) or an age (30m, 12h, 7d, 2w)";

/// Parses `s` as an instant in UTC, relative ages counting back from `now`.
pub(crate) fn parse_instant(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.to_offset(UtcOffset::UTC));
    }
    if let Ok(d) = Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        return Ok(d.midnight().assume_utc());
    }
    if let Some(age) = parse_age(s) {
        return now
            .checked_sub(age)
            .ok_or_else(|| format!("`{s}` reaches back before the earliest instant this program can represent"));
    }
    Err(format!("`{s}` is not an instant: give {FORMATS}"))
}

/// `30s`, `30m`, `12h`, `7d`, `2w`: a whole number and one unit; `None` otherwise.
fn parse_age(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let number = &s[..s.len() - unit.len_utf8()];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = number.parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    Some(Duration::seconds(n.checked_mul(seconds)?))
}

/// `clap` value parser of an instant, relative to the time of parsing.
pub(crate) fn parse_instant_now(s: &str) -> Result<OffsetDateTime, String> {
    parse_instant(s, OffsetDateTime::now_utc())
}

/// How long ago `then` was, in the largest whole unit: `42s`, `5m`, `3h`, `2d`. An instant in
/// the future (clocks of two machines disagree) shows as `0s`.
pub(crate) fn age(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds().max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-07 10:00:00 UTC);

    #[track_caller]
    fn check(input: &str, expected: Result<OffsetDateTime, &str>) {
        let got = parse_instant(input, NOW);
        match expected {
            Ok(t) => assert_eq!(got, Ok(t), "{input}"),
            Err(part) => {
                let e = got.expect_err(input);
                assert!(e.contains(part), "{input}: {e}");
            }
        }
    }

    #[test]
    fn instants_parse_as_dates_timestamps_and_ages() {
        check("2026-12-01", Ok(datetime!(2026-12-01 00:00:00 UTC)));
        check("2026-12-01T08:30:00Z", Ok(datetime!(2026-12-01 08:30:00 UTC)));
        check("2026-12-01T08:30:00.5+02:00", Ok(datetime!(2026-12-01 06:30:00.5 UTC)));
        check(" 2026-12-01 ", Ok(datetime!(2026-12-01 00:00:00 UTC)));
        check("7d", Ok(datetime!(2026-11-30 10:00:00 UTC)));
        check("12h", Ok(datetime!(2026-12-06 22:00:00 UTC)));
        check("30m", Ok(datetime!(2026-12-07 09:30:00 UTC)));
        check("45s", Ok(datetime!(2026-12-07 09:59:15 UTC)));
        check("2w", Ok(datetime!(2026-11-23 10:00:00 UTC)));
        check("0d", Ok(NOW));
    }

    #[test]
    fn bad_instants_are_refused_with_the_formats() {
        for bad in ["", "yesterday", "2026-13-01", "2026-12-01 08:00", "7", "d", "-7d", "7 d", "1.5h", "7y", "७d"] {
            check(bad, Err("is not an instant: give a date (2026-12-01"));
        }
        check("999999999999999d", Err("is not an instant"));
        check("99999999999999999999s", Err("is not an instant"));
        check("2000000000d", Err("earliest instant"));
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        for (secs, expected) in [
            (0, "0s"),
            (42, "42s"),
            (59, "59s"),
            (60, "1m"),
            (330, "5m"),
            (3_599, "59m"),
            (3_600, "1h"),
            (3 * 3_600 + 59 * 60, "3h"),
            (86_399, "23h"),
            (86_400, "1d"),
            (2 * 86_400 + 5, "2d"),
            (400 * 86_400, "400d"),
            (-30, "0s"),
        ] {
            assert_eq!(age(NOW - Duration::seconds(secs), NOW), expected, "{secs}s");
        }
    }
}
