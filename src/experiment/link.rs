//! A run's migration link on one host: shaped with `tc` (token bucket, as the
//! lab shapes it: src/lab/rate.rs) and `ip link set mtu` when the experiment
//! may change it, otherwise only read (the qdisc's rate, the NIC's speed, its MTU).

use crate::experiment::driver::{DriverError, HostEnd};
use crate::experiment::scenario::Link;
use crate::transport::remote::sh_quote;

/// The link as found or made: rate (bits/s) and MTU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkState {
    pub rate_bps: Option<u64>,
    pub mtu: Option<u32>,
}

/// The `tc` token bucket arguments for `rate_bps` (burst: 5 ms of bytes, at least 64 KiB).
pub fn tbf_args(rate_bps: u64) -> String {
    let burst = (rate_bps / 8 / 200).max(64 * 1024);
    format!("tbf rate {rate_bps}bit burst {burst} latency 50ms")
}

/// Apply `link` to `iface` on `host`: a rate replaces the root qdisc with a token
/// bucket, no rate removes it; an MTU is set when given.
pub async fn apply(host: &HostEnd, iface: &str, link: &Link) -> Result<LinkState, DriverError> {
    let i = sh_quote(iface);
    let mut cmd = match link.rate_bps {
        Some(r) => format!("tc qdisc replace dev {i} root {}", tbf_args(r)),
        None => format!("tc qdisc del dev {i} root 2>/dev/null; true"),
    };
    if let Some(mtu) = link.mtu {
        cmd.push_str(&format!(" && ip link set dev {i} mtu {mtu}"));
    }
    host.sh_ok(&format!("shape the migration link {iface}"), &cmd)
        .await?;
    read(host, iface).await
}

/// Read `iface`'s rate (its root token bucket's, else the NIC's speed) and MTU.
pub async fn read(host: &HostEnd, iface: &str) -> Result<LinkState, DriverError> {
    let i = sh_quote(iface);
    let out = host
        .sh_ok(
            &format!("read the migration link {iface}"),
            &format!(
                "cat /sys/class/net/{iface}/mtu; cat /sys/class/net/{iface}/speed 2>/dev/null || echo -1; \
                 tc qdisc show dev {i} root 2>/dev/null | head -n1"
            ),
        )
        .await?;
    Ok(parse(&out))
}

fn parse(out: &str) -> LinkState {
    let mut lines = out.lines();
    let mtu = lines.next().and_then(|l| l.trim().parse().ok());
    let speed_mbit: Option<i64> = lines.next().and_then(|l| l.trim().parse().ok());
    let qdisc = lines.next().unwrap_or("");
    let tbf = qdisc
        .contains(" tbf ")
        .then(|| {
            let w: Vec<&str> = qdisc.split_whitespace().collect();
            let pos = w.iter().position(|x| *x == "rate")?;
            parse_tc_rate(w.get(pos + 1)?)
        })
        .flatten();
    let speed = speed_mbit.filter(|s| *s > 0).map(|s| s as u64 * 1_000_000);
    LinkState {
        rate_bps: tbf.or(speed),
        mtu,
    }
}

/// `tc`'s printed rate (`100Mbit`, `1Gbit`, `800Kbit`, `12345bit`) in bits/s.
fn parse_tc_rate(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = lower.split_at(split);
    let f = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "tbit" => 1e12,
        _ => return None,
    };
    Some((num.parse::<f64>().ok()? * f).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_from_the_token_bucket_else_the_speed() {
        let shaped =
            parse("1500\n10000\nqdisc tbf 8001: root refcnt 2 rate 100Mbit burst 64Kb lat 50ms\n");
        assert_eq!(
            shaped,
            LinkState {
                rate_bps: Some(100_000_000),
                mtu: Some(1500)
            }
        );
        let bare = parse("9000\n10000\nqdisc noqueue 0: root refcnt 2\n");
        assert_eq!(
            bare,
            LinkState {
                rate_bps: Some(10_000_000_000),
                mtu: Some(9000)
            }
        );
        let veth = parse("1500\n-1\n");
        assert_eq!(
            veth,
            LinkState {
                rate_bps: None,
                mtu: Some(1500)
            }
        );
        assert_eq!(parse_tc_rate("1Gbit"), Some(1_000_000_000));
        assert_eq!(
            tbf_args(100_000_000),
            "tbf rate 100000000bit burst 65536 latency 50ms"
        );
    }
}
