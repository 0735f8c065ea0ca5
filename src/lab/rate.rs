//! Link rates, parsed the way `tc` spells them (`100mbit`, `1gbit`, `10gbit`, `125mbps`, ...).

use serde::{Deserialize, Serialize};

use super::LabError;

/// A link rate in bits per second, with the spelling the user gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRate {
    pub text: String,
    pub bits_per_sec: u64,
}

const UNITS: &[(&str, u64)] = &[
    ("tbit", 1_000_000_000_000),
    ("gbit", 1_000_000_000),
    ("mbit", 1_000_000),
    ("kbit", 1_000),
    ("bit", 1),
    ("tbps", 8_000_000_000_000),
    ("gbps", 8_000_000_000),
    ("mbps", 8_000_000),
    ("kbps", 8_000),
    ("bps", 8),
];

impl LinkRate {
    pub fn parse(text: &str) -> Result<LinkRate, LabError> {
        let bad = |why: &str| LabError::BadRate(text.to_string(), why.to_string());
        let lower = text.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("no unit; try 100mbit, 1gbit or 10gbit"))?;
        let (num, unit) = lower.split_at(split);
        let factor = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map(|(_, f)| *f)
            .ok_or_else(|| bad(&format!("unknown unit {unit:?} (try 1gbit, 100mbit)")))?;
        let value: f64 = num
            .parse()
            .map_err(|_| bad("not a number before the unit"))?;
        let bits = value * factor as f64;
        if !(8_000.0..=100e12).contains(&bits) {
            return Err(bad("use a rate between 8kbit and 100tbit"));
        }
        Ok(LinkRate {
            text: text.trim().to_string(),
            bits_per_sec: bits.round() as u64,
        })
    }

    /// The `tc qdisc replace ... root tbf ...` arguments after `root`.
    pub fn tbf_args(&self) -> Vec<String> {
        // Burst: 5 ms worth of bytes, at least 64 KiB (enough for GSO packets on veth).
        let burst = (self.bits_per_sec / 8 / 200).max(64 * 1024);
        vec![
            "tbf".into(),
            "rate".into(),
            format!("{}bit", self.bits_per_sec),
            "burst".into(),
            format!("{burst}"),
            "latency".into(),
            "50ms".into(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tc_units() {
        assert_eq!(
            LinkRate::parse("100mbit").unwrap().bits_per_sec,
            100_000_000
        );
        assert_eq!(
            LinkRate::parse("1Gbit").unwrap().bits_per_sec,
            1_000_000_000
        );
        assert_eq!(
            LinkRate::parse("10gbit").unwrap().bits_per_sec,
            10_000_000_000
        );
        assert_eq!(
            LinkRate::parse("1.5gbit").unwrap().bits_per_sec,
            1_500_000_000
        );
        assert_eq!(
            LinkRate::parse("125mbps").unwrap().bits_per_sec,
            1_000_000_000
        );
    }

    #[test]
    fn rejects_unknown_units_and_nonsense() {
        for bad in ["100", "100furlongs", "mbit", "1..2mbit", "0mbit", ""] {
            assert!(LinkRate::parse(bad).is_err(), "{bad} should be rejected");
        }
        let msg = LinkRate::parse("10gigs").unwrap_err().to_string();
        assert!(msg.contains("unknown unit \"gigs\""), "{msg}");
        assert!(!msg.contains('\n'));
    }
}
