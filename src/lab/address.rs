//! The lab's address range: parsing, its split into networks, and checks against
//! the routes and addresses already on this machine.
//!
//! A range (a /22 or larger, private) is split into three networks: the first for
//! management, the second for migration, the third for guests. A lab of up to
//! [`SMALL_LAB_HOSTS`] hosts uses /24s (`.1`-`.250`; the machine itself gets `.254` on
//! the management network only, so ferry can reach sshd); a larger one (up to
//! [`MAX_HOSTS`]) uses /22s and needs a /20 or larger range, the machine taking the
//! last address of the management /22 (`x.y.3.254`). Host `i` (1-based) gets the
//! network's `i`-th address in each.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{LabError, MAX_HOSTS, SMALL_LAB_HOSTS};

/// An IPv4 network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Cidr {
        let mask = Self::mask_of(prefix);
        Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        }
    }

    /// `a.b.c.d/n`, or a bare address (a /32).
    pub fn parse(text: &str) -> Option<Cidr> {
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().ok()?),
            None => (text, 32),
        };
        if p > 32 {
            return None;
        }
        Some(Cidr::new(a.parse().ok()?, p))
    }

    pub fn first(&self) -> u32 {
        u32::from(self.addr)
    }

    pub fn last(&self) -> u32 {
        self.first() | !Self::mask_of(self.prefix)
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    pub fn contains(&self, other: &Cidr) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }

    /// The `n`-th /`prefix` inside this network.
    pub fn subnet(&self, n: u32, prefix: u8) -> Cidr {
        Cidr::new(Ipv4Addr::from(self.first() + (n << (32 - prefix))), prefix)
    }

    /// Address `.host` inside this network.
    pub fn host(&self, host: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + host)
    }

    pub fn is_private(&self) -> bool {
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
            .iter()
            .any(|p| Cidr::parse(p).unwrap().contains(self))
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Parse and check a user-given `--range`.
pub fn parse_range(text: &str) -> Result<Cidr, LabError> {
    let bad = |why: &str| LabError::BadRange(text.to_string(), why.to_string());
    let cidr = Cidr::parse(text.trim())
        .filter(|_| text.contains('/'))
        .ok_or_else(|| bad("write it as a.b.c.d/prefix, e.g. 10.77.0.0/16"))?;
    if cidr.prefix > 22 {
        return Err(bad("needs at least a /22 (three /24 networks)"));
    }
    if !cidr.is_private() {
        return Err(bad("not private (use 10/8, 172.16/12 or 192.168/16)"));
    }
    Ok(cidr)
}

/// Where each host's addresses come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPlan {
    pub range: Cidr,
    /// The prefix of each of the three networks: 24, or 22 for a large lab.
    pub net_prefix: u8,
}

impl AddressPlan {
    /// The plan of a new lab of `hosts` hosts in `range`: /24 networks when they hold
    /// them, else /22s (the range must then be a /20 or larger).
    pub fn for_hosts(range: Cidr, hosts: u32) -> Result<AddressPlan, LabError> {
        let net_prefix = if hosts <= SMALL_LAB_HOSTS { 24 } else { 22 };
        if range.prefix > net_prefix - 2 {
            return Err(LabError::BadRange(
                range.to_string(),
                format!(
                    "{hosts} hosts need three /{net_prefix} networks: a /{} or larger",
                    net_prefix - 2
                ),
            ));
        }
        Ok(AddressPlan { range, net_prefix })
    }
    /// Most hosts this plan has addresses for.
    pub fn capacity(&self) -> u32 {
        if self.net_prefix == 24 {
            SMALL_LAB_HOSTS
        } else {
            MAX_HOSTS
        }
    }
    pub fn mgmt_net(&self) -> Cidr {
        self.range.subnet(0, self.net_prefix)
    }
    pub fn migration_net(&self) -> Cidr {
        self.range.subnet(1, self.net_prefix)
    }
    pub fn guest_net(&self) -> Cidr {
        self.range.subnet(2, self.net_prefix)
    }
    /// The machine's own address on the management bridge: `.254` of the last /24.
    pub fn machine_mgmt_ip(&self) -> Ipv4Addr {
        let net = self.mgmt_net();
        Ipv4Addr::from(net.last() - 1)
    }
    pub fn mgmt_ip(&self, index: u32) -> Ipv4Addr {
        debug_assert!((1..=self.capacity()).contains(&index));
        self.mgmt_net().host(index)
    }
    pub fn migration_ip(&self, index: u32) -> Ipv4Addr {
        self.migration_net().host(index)
    }
    pub fn guest_ip(&self, index: u32) -> Ipv4Addr {
        self.guest_net().host(index)
    }
}

/// A route or address already on this machine.
#[derive(Debug, Clone)]
pub struct Occupant {
    pub net: Cidr,
    pub dev: String,
    pub what: String,
}

/// Parse `ip -j -4 route show table all` and `ip -j -4 addr show` output.
pub fn occupants(routes_json: &str, addrs_json: &str) -> Vec<Occupant> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Array(routes)) = serde_json::from_str(routes_json) {
        for r in routes {
            let dst = r.get("dst").and_then(|d| d.as_str()).unwrap_or("");
            if dst == "default" || dst.is_empty() {
                continue;
            }
            let Some(net) = Cidr::parse(dst) else {
                continue;
            };
            if net.prefix == 0 {
                continue;
            }
            let dev = r
                .get("dev")
                .and_then(|d| d.as_str())
                .unwrap_or("")
                .to_string();
            out.push(Occupant {
                net,
                what: format!(
                    "route {dst}{}",
                    if dev.is_empty() {
                        String::new()
                    } else {
                        format!(" dev {dev}")
                    }
                ),
                dev,
            });
        }
    }
    if let Ok(serde_json::Value::Array(links)) = serde_json::from_str(addrs_json) {
        for l in links {
            let dev = l
                .get("ifname")
                .and_then(|d| d.as_str())
                .unwrap_or("")
                .to_string();
            for a in l
                .get("addr_info")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
            {
                let (Some(local), Some(len)) = (
                    a.get("local").and_then(|x| x.as_str()),
                    a.get("prefixlen").and_then(|x| x.as_u64()),
                ) else {
                    continue;
                };
                if let Some(net) = Cidr::parse(&format!("{local}/{len}")) {
                    out.push(Occupant {
                        net: Cidr::parse(local).unwrap_or(net),
                        what: format!("address {local}/{len} on {dev}"),
                        dev: dev.clone(),
                    });
                }
            }
        }
    }
    out
}

/// The first occupant overlapping `range`, ignoring devices the lab owns.
pub fn first_overlap<'a>(
    range: &Cidr,
    occupants: &'a [Occupant],
    own_dev: &dyn Fn(&str) -> bool,
) -> Option<&'a Occupant> {
    occupants
        .iter()
        .find(|o| o.net.overlaps(range) && !own_dev(&o.dev))
}

/// The /16s an automatically placed lab may take, in order.
pub fn automatic_candidates() -> impl Iterator<Item = Cidr> {
    (100u8..=254).map(|b| Cidr::new(Ipv4Addr::new(10, b, 0, 0), 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_a_range_into_three_networks() {
        let range = parse_range("10.77.0.0/16").unwrap();
        // hosts -> management, migration, guest network, host 200's and the machine's address
        let want = [
            (
                250,
                [
                    "10.77.0.0/24",
                    "10.77.1.0/24",
                    "10.77.2.0/24",
                    "10.77.0.200",
                    "10.77.0.254",
                ],
            ),
            (
                1000,
                [
                    "10.77.0.0/22",
                    "10.77.4.0/22",
                    "10.77.8.0/22",
                    "10.77.0.200",
                    "10.77.3.254",
                ],
            ),
        ];
        for (hosts, [m, x, g, ip, machine]) in want {
            let p = AddressPlan::for_hosts(range, hosts).unwrap();
            let got = [p.mgmt_net(), p.migration_net(), p.guest_net()].map(|n| n.to_string());
            assert_eq!(got, [m, x, g], "{hosts} hosts");
            assert_eq!(p.mgmt_ip(200).to_string(), ip);
            assert_eq!(p.machine_mgmt_ip().to_string(), machine);
        }
        let large = AddressPlan::for_hosts(range, 1000).unwrap();
        assert_eq!(large.mgmt_ip(1000).to_string(), "10.77.3.232");
        assert!(u32::from(large.mgmt_ip(MAX_HOSTS)) < u32::from(large.machine_mgmt_ip()));
        let small_range = parse_range("10.78.0.0/22").unwrap();
        assert!(AddressPlan::for_hosts(small_range, 250).is_ok());
        assert!(AddressPlan::for_hosts(small_range, 251).is_err());
    }

    #[test]
    fn refuses_public_small_and_malformed_ranges() {
        assert!(parse_range("8.8.0.0/16").is_err());
        assert!(parse_range("10.1.2.0/24").is_err());
        assert!(parse_range("10.1.0.0").is_err());
        assert!(parse_range("10.300.0.0/16").is_err());
        assert!(parse_range("192.168.4.0/22").is_ok());
    }

    #[test]
    fn finds_overlaps_but_not_the_default_route() {
        let routes = r#"[{"dst":"default","gateway":"192.0.2.1","dev":"eth0"},
                         {"dst":"10.77.3.0/24","dev":"eth1"},{"type":"local","dst":"192.0.2.2","dev":"eth0"}]"#;
        let addrs = r#"[{"ifname":"eth0","addr_info":[{"local":"192.0.2.2","prefixlen":24}]}]"#;
        let occ = occupants(routes, addrs);
        let none = |_: &str| false;
        let hit = first_overlap(&parse_range("10.77.0.0/16").unwrap(), &occ, &none).unwrap();
        assert_eq!(hit.what, "route 10.77.3.0/24 dev eth1");
        assert!(first_overlap(&parse_range("10.78.0.0/16").unwrap(), &occ, &none).is_none());
        assert!(
            first_overlap(&parse_range("10.77.0.0/16").unwrap(), &occ, &|d| d
                == "eth1")
            .is_none()
        );
    }
}
