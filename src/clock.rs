//! UTC timestamps from a `SystemTime`, without a time zone database: the results
//! store's RFC 3339 and directory stamps, and Ansible's `start`/`stop` form.
//! A leaf: it imports nothing of ferry.

use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day, hour, minute, second, microsecond) of a time, in UTC.
fn civil(t: SystemTime) -> (i64, i64, i64, i64, i64, i64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros(),
    )
}

/// RFC 3339 in UTC with milliseconds: `2026-12-03T14:25:07.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, us) = civil(t);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        us / 1000
    )
}

/// A results directory's name: `20261203T142507Z` (sorts by time, no `:` in paths).
pub fn dir_stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, _) = civil(t);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC), as Ansible writes a task's `start`/`stop`.
pub fn ansible_timestamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s, us) = civil(t);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
}

/// Unix seconds of a time [`rfc3339`] wrote (`2026-12-03T14:25:07.123Z`); None for
/// anything else.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.strip_suffix('Z')?;
    let (date, time) = b.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':');
    let (h, mi): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let sec: f64 = t.next()?.parse().ok()?;
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60) as f64 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_307_907_123);
        assert_eq!(rfc3339(t), "2026-12-03T14:25:07.123Z");
        assert_eq!(dir_stamp(t), "20261203T142507Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(dir_stamp(leap), "20000229T000000Z");
        let back = parse_rfc3339(&rfc3339(t)).unwrap();
        assert!((back - 1_796_307_907.123).abs() < 1e-6, "{back}");
        assert_eq!(parse_rfc3339(&rfc3339(leap)), Some(951_782_400.0));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ansible_timestamps_are_utc_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_micros(951_782_400_000_001); // 2000-02-29
        assert_eq!(ansible_timestamp(t), "2000-02-29 00:00:00.000001");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(ansible_timestamp(t), "2023-11-14 22:13:20.000000");
    }
}
