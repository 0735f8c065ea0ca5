//! Quantities as experiment files write them: link rates (`1gbit`, `100mbit`,
//! tc's spelling) and durations (`50ms`, `2s`, `5m`, or a bare number in the
//! field's own unit).

use std::time::Duration;

/// A rate like `1gbit`, `100mbit`, `10Gbit/s`, `2.5gbit`, `800kbit` or `1000000bit`
/// (decimal prefixes, as tc and NIC vendors use them) in bits per second.
pub fn parse_rate(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix("/s").unwrap_or(&t);
    let t = t.strip_suffix("bit")?;
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1e3),
        'm' => (&t[..t.len() - 1], 1e6),
        'g' => (&t[..t.len() - 1], 1e9),
        't' => (&t[..t.len() - 1], 1e12),
        _ => (t, 1.0),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n > 0.0 && n.is_finite()).then(|| (n * mult).round() as u64)
}

/// A rate in bits/s the way a user writes it back (`1gbit`, `100mbit`, `1500kbit`).
pub fn format_rate(bps: u64) -> String {
    for (div, unit) in [
        (1_000_000_000_000, "tbit"),
        (1_000_000_000, "gbit"),
        (1_000_000, "mbit"),
        (1_000, "kbit"),
    ] {
        if bps >= div && bps.is_multiple_of(div) {
            return format!("{}{unit}", bps / div);
        }
    }
    for (div, unit) in [(1_000_000_000u64, "gbit"), (1_000_000, "mbit")] {
        if bps >= div {
            return format!("{}{unit}", bps as f64 / div as f64);
        }
    }
    format!("{bps}bit")
}

/// A duration: `250ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is in `bare_unit`.
pub fn parse_duration(text: &str, bare_unit: Duration) -> Option<Duration> {
    let t = text.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, Duration::from_millis(1))
    } else if let Some(n) = t.strip_suffix('s') {
        (n, Duration::from_secs(1))
    } else if let Some(n) = t.strip_suffix('m') {
        (n, Duration::from_secs(60))
    } else if let Some(n) = t.strip_suffix('h') {
        (n, Duration::from_secs(3600))
    } else {
        (t, bare_unit)
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0 && n.is_finite()).then(|| unit.mul_f64(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_as_tc_writes_them() {
        assert_eq!(parse_rate("1gbit"), Some(1_000_000_000));
        assert_eq!(parse_rate("100mbit"), Some(100_000_000));
        assert_eq!(parse_rate("10Gbit/s"), Some(10_000_000_000));
        assert_eq!(parse_rate("2.5gbit"), Some(2_500_000_000));
        assert_eq!(parse_rate("800kbit"), Some(800_000));
        assert_eq!(parse_rate("1000bit"), Some(1000));
        assert_eq!(parse_rate("1gb"), None);
        assert_eq!(parse_rate("fast"), None);
        assert_eq!(parse_rate("0mbit"), None);
        assert_eq!(format_rate(1_000_000_000), "1gbit");
        assert_eq!(format_rate(100_000_000), "100mbit");
        assert_eq!(format_rate(2_500_000_000), "2500mbit");
        assert_eq!(format_rate(1_234_567), "1.234567mbit");
    }

    #[test]
    fn durations_with_and_without_units() {
        let s = Duration::from_secs(1);
        let ms = Duration::from_millis(1);
        assert_eq!(parse_duration("50ms", s), Some(Duration::from_millis(50)));
        assert_eq!(
            parse_duration("1.5s", ms),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_duration("5m", ms), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("300", s), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("10", ms), Some(Duration::from_millis(10)));
        assert_eq!(parse_duration("soon", s), None);
        assert_eq!(parse_duration("-1", s), None);
    }
}
