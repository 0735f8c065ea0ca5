//! Host facts: OS, kernel, CPUs and virtualization flags, memory, NICs (speed, MTU, addresses, driver), default route, qemu/libvirt versions.
//!
//! Gathered in one round trip (one shell script), shaped like Ansible's
//! facts where they overlap (`ansible_distribution`, `ansible_eth0`, ...),
//! plus ferry's own (`ferry_nics` sorted by link speed, `ferry_qemu_version`, ...).

use serde_json::{Map, Value, json};

use crate::transport::{CommandSpec, Transport, TransportError};

/// The script that prints every fact source, in `@@section@@` blocks.
const SCRIPT: &str = r#"s() { printf '\n@@%s@@\n' "$1"; }
s os; cat /etc/os-release 2>/dev/null
s kernel; uname -r
s kernel_version; uname -v
s machine; uname -m
s hostname; cat /proc/sys/kernel/hostname
s fqdn; hostname -f 2>/dev/null
s cpuinfo; grep -E '^(processor|model name|flags)' /proc/cpuinfo 2>/dev/null | sort -u -t: -k1,1 ; grep -c '^processor' /proc/cpuinfo
s meminfo; grep -E '^(MemTotal|MemFree|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo
s kvm; [ -c /dev/kvm ] && echo yes
s virt; systemd-detect-virt 2>/dev/null
for i in /sys/class/net/*; do
  n=${i##*/}
  s "nic $n"
  for f in mtu speed address operstate type; do v=; read -r v < "$i/$f" 2>/dev/null; echo "$f=$v"; done
  d=$(readlink "$i/device/driver" 2>/dev/null); echo "driver=${d##*/}"
done
s ipaddr; ip -j addr 2>/dev/null
s iproute; ip -j route 2>/dev/null
s qemu; qemu-system-x86_64 --version 2>/dev/null | head -n 1
s libvirtd; libvirtd --version 2>/dev/null
s virsh; virsh --version 2>/dev/null
s end
"#;

/// Why facts could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{host}: gathering facts failed (rc {rc}): {stderr}")]
    Script {
        host: String,
        rc: i32,
        stderr: String,
    },
}

/// Gathers the facts of the host behind `t`, in one round trip.
pub async fn gather(t: &dyn Transport) -> Result<Value, FactsError> {
    let out = t.run(&CommandSpec::new(SCRIPT)).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.contains("@@end@@") {
        return Err(FactsError::Script {
            host: t.host().to_string(),
            rc: out.rc,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(from_output(&text))
}

fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@@").and_then(|l| l.strip_suffix("@@")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

/// A version number (`1.2.3`) in a `--version` line.
fn version_in(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .map(str::to_string)
}

fn prefix_to_netmask(prefix: u32) -> String {
    let m: u32 = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    std::net::Ipv4Addr::from(m).to_string()
}

fn network_of(addr: &str, prefix: u32) -> String {
    match addr.parse::<std::net::Ipv4Addr>() {
        Ok(a) => {
            let m: u32 = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix.min(32))
            };
            std::net::Ipv4Addr::from(u32::from(a) & m).to_string()
        }
        Err(_) => String::new(),
    }
}

/// Turns the script's output into facts.
pub fn from_output(text: &str) -> Value {
    let mut f = Map::new();
    let mut nics: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut ip_addr: Vec<Value> = Vec::new();
    let mut ip_route: Vec<Value> = Vec::new();
    for (name, body) in sections(text) {
        match name.as_str() {
            "os" => {
                let mut os = Map::new();
                for l in body.lines() {
                    if let Some((k, v)) = l.split_once('=') {
                        os.insert(
                            k.to_string(),
                            Value::String(v.trim_matches('"').to_string()),
                        );
                    }
                }
                let get = |k: &str| os.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let name = get("NAME");
                let distribution = name.split_whitespace().next().unwrap_or("").to_string();
                let version = get("VERSION_ID");
                f.insert("ansible_distribution".into(), json!(distribution));
                f.insert("ansible_distribution_version".into(), json!(version));
                f.insert(
                    "ansible_distribution_major_version".into(),
                    json!(version.split('.').next().unwrap_or("")),
                );
                f.insert(
                    "ansible_distribution_release".into(),
                    json!(get("VERSION_CODENAME")),
                );
                f.insert(
                    "ansible_os_family".into(),
                    json!(match get("ID").as_str() {
                        "debian" | "ubuntu" => "Debian".to_string(),
                        "rhel" | "centos" | "fedora" | "rocky" | "almalinux" =>
                            "RedHat".to_string(),
                        _ => distribution.clone(),
                    }),
                );
                f.insert("ansible_system".into(), json!("Linux"));
            }
            "kernel" => {
                f.insert("ansible_kernel".into(), json!(first_line(&body)));
            }
            "kernel_version" => {
                f.insert("ansible_kernel_version".into(), json!(first_line(&body)));
            }
            "machine" => {
                f.insert("ansible_architecture".into(), json!(first_line(&body)));
                f.insert("ansible_machine".into(), json!(first_line(&body)));
            }
            "hostname" => {
                let h = first_line(&body);
                f.insert(
                    "ansible_hostname".into(),
                    json!(h.split('.').next().unwrap_or("")),
                );
                f.insert("ansible_nodename".into(), json!(h));
            }
            "fqdn" => {
                f.insert("ansible_fqdn".into(), json!(first_line(&body)));
            }
            "cpuinfo" => {
                let mut flags = Vec::new();
                let mut model = String::new();
                let mut count = 0u64;
                for l in body.lines() {
                    if let Some((k, v)) = l.split_once(':') {
                        match k.trim() {
                            "flags" => flags = v.split_whitespace().map(str::to_string).collect(),
                            "model name" => model = v.trim().to_string(),
                            _ => {}
                        }
                    } else if let Ok(n) = l.trim().parse() {
                        count = n;
                    }
                }
                f.insert("ansible_processor_vcpus".into(), json!(count));
                f.insert("ansible_processor_nproc".into(), json!(count));
                f.insert("ansible_processor".into(), json!([model]));
                let vmx = flags.iter().any(|x| x == "vmx");
                let svm = flags.iter().any(|x| x == "svm");
                f.insert(
                    "ferry_cpu_virtualization".into(),
                    json!({"vmx": vmx, "svm": svm, "hardware": vmx || svm}),
                );
                f.insert("ferry_cpu_flags".into(), json!(flags));
            }
            "meminfo" => {
                for l in body.lines() {
                    if let Some((k, v)) = l.split_once(':') {
                        let kb: u64 = v
                            .split_whitespace()
                            .next()
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(0);
                        let key = match k {
                            "MemTotal" => "ansible_memtotal_mb",
                            "MemFree" => "ansible_memfree_mb",
                            "SwapTotal" => "ansible_swaptotal_mb",
                            "SwapFree" => "ansible_swapfree_mb",
                            "MemAvailable" => "ferry_memavailable_mb",
                            _ => continue,
                        };
                        f.insert(key.into(), json!(kb / 1024));
                    }
                }
            }
            "kvm" => {
                f.insert("ferry_kvm_device".into(), json!(first_line(&body) == "yes"));
            }
            "virt" => {
                let v = first_line(&body);
                let (t, role) = match v.as_str() {
                    "" | "none" => ("", ""),
                    other => (other, "guest"),
                };
                f.insert("ansible_virtualization_type".into(), json!(t));
                f.insert("ansible_virtualization_role".into(), json!(role));
            }
            "ipaddr" => ip_addr = serde_json::from_str(body.trim()).unwrap_or_default(),
            "iproute" => ip_route = serde_json::from_str(body.trim()).unwrap_or_default(),
            "qemu" => {
                f.insert(
                    "ferry_qemu_version".into(),
                    json!(version_in(&first_line(&body))),
                );
            }
            "libvirtd" => {
                f.insert(
                    "ferry_libvirtd_version".into(),
                    json!(version_in(&first_line(&body))),
                );
            }
            "virsh" => {
                f.insert(
                    "ferry_virsh_version".into(),
                    json!(version_in(&first_line(&body))),
                );
            }
            other => {
                if let Some(nic) = other.strip_prefix("nic ") {
                    let mut m = Map::new();
                    m.insert("device".into(), json!(nic));
                    for l in body.lines() {
                        if let Some((k, v)) = l.split_once('=') {
                            let v = v.trim();
                            match k {
                                "mtu" => m.insert("mtu".into(), json!(v.parse::<u64>().ok())),
                                // Ansible reports -1 for "unknown" speed; keep that.
                                "speed" => {
                                    m.insert("speed".into(), json!(v.parse::<i64>().unwrap_or(-1)))
                                }
                                "address" => m.insert("macaddress".into(), json!(v)),
                                "operstate" => {
                                    m.insert("operstate".into(), json!(v));
                                    m.insert("active".into(), json!(v == "up" || v == "unknown"))
                                }
                                "driver" => m.insert("module".into(), json!(v)),
                                "type" => m.insert(
                                    "type".into(),
                                    json!(match v {
                                        "772" => "loopback",
                                        "1" => "ether",
                                        _ => "other",
                                    }),
                                ),
                                _ => None,
                            };
                        }
                    }
                    nics.push((nic.to_string(), m));
                }
            }
        }
    }
    // Addresses from `ip -j addr`.
    let mut all_v4 = Vec::new();
    for entry in &ip_addr {
        let Some(ifname) = entry.get("ifname").and_then(Value::as_str) else {
            continue;
        };
        let Some((_, m)) = nics.iter_mut().find(|(n, _)| n == ifname) else {
            continue;
        };
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in entry
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let local = a.get("local").and_then(Value::as_str).unwrap_or("");
            let prefix = a.get("prefixlen").and_then(Value::as_u64).unwrap_or(0) as u32;
            match a.get("family").and_then(Value::as_str) {
                Some("inet") => {
                    v4.push(json!({"address": local, "prefix": prefix.to_string(),
                        "netmask": prefix_to_netmask(prefix), "network": network_of(local, prefix),
                        "broadcast": a.get("broadcast").and_then(Value::as_str).unwrap_or("")}));
                    if ifname != "lo" {
                        all_v4.push(json!(local));
                    }
                }
                Some("inet6") => v6.push(json!({"address": local, "prefix": prefix.to_string(),
                    "scope": a.get("scope").and_then(Value::as_str).unwrap_or("")})),
                _ => {}
            }
        }
        if let Some(first) = v4.first() {
            m.insert("ipv4".into(), first.clone());
        }
        if v4.len() > 1 {
            m.insert("ipv4_secondaries".into(), json!(v4[1..].to_vec()));
        }
        if !v6.is_empty() {
            m.insert("ipv6".into(), json!(v6));
        }
    }
    f.insert("ansible_all_ipv4_addresses".into(), json!(all_v4));
    // Default route.
    let mut default_v4 = json!({});
    if let Some(r) = ip_route
        .iter()
        .find(|r| r.get("dst").and_then(Value::as_str) == Some("default"))
    {
        let dev = r.get("dev").and_then(Value::as_str).unwrap_or("");
        let mut d = Map::new();
        d.insert(
            "gateway".into(),
            json!(r.get("gateway").and_then(Value::as_str).unwrap_or("")),
        );
        d.insert("interface".into(), json!(dev));
        if let Some((_, m)) = nics.iter().find(|(n, _)| n == dev) {
            if let Some(Value::Object(v4)) = m.get("ipv4") {
                for (k, v) in v4 {
                    d.insert(k.clone(), v.clone());
                }
            }
            for k in ["macaddress", "mtu", "type"] {
                if let Some(v) = m.get(k) {
                    d.insert(k.into(), v.clone());
                }
            }
        }
        default_v4 = Value::Object(d);
    }
    f.insert("ansible_default_ipv4".into(), default_v4);
    // Interfaces, Ansible-style and ferry's speed-sorted list.
    f.insert(
        "ansible_interfaces".into(),
        json!(nics.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
    );
    let mut ferry_nics: Vec<Value> = nics
        .iter()
        .filter(|(n, m)| n != "lo" && m.get("type").and_then(Value::as_str) != Some("loopback"))
        .map(|(n, m)| {
            json!({
                "name": n,
                "speed_mbps": m.get("speed").and_then(Value::as_i64).filter(|s| *s > 0),
                "mtu": m.get("mtu"),
                "macaddress": m.get("macaddress"),
                "driver": m.get("module"),
                "operstate": m.get("operstate"),
                "ipv4": m.get("ipv4").and_then(|v| v.get("address")),
            })
        })
        .collect();
    ferry_nics.sort_by_key(|n| {
        std::cmp::Reverse(n.get("speed_mbps").and_then(Value::as_i64).unwrap_or(-1))
    });
    f.insert("ferry_nics".into(), json!(ferry_nics));
    for (n, m) in nics {
        f.insert(
            format!("ansible_{}", n.replace(['-', '.', ':'], "_")),
            Value::Object(m),
        );
    }
    Value::Object(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nics_sort_by_speed_and_addresses_attach() {
        let out = "\n@@os@@\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n\
            @@kernel@@\n6.1.0\n@@cpuinfo@@\nflags\t: fpu vmx sse\nmodel name\t: X\nprocessor\t: 0\n4\n\
            @@meminfo@@\nMemTotal:       8192000 kB\n\
            @@nic eth0@@\nmtu=1500\nspeed=1000\naddress=aa:bb\noperstate=up\ntype=1\ndriver=e1000\n\
            @@nic ens1f0@@\nmtu=9000\nspeed=10000\naddress=cc:dd\noperstate=up\ntype=1\ndriver=ixgbe\n\
            @@nic lo@@\nmtu=65536\nspeed=\naddress=00\noperstate=unknown\ntype=772\ndriver=\n\
            @@ipaddr@@\n[{\"ifname\":\"eth0\",\"addr_info\":[{\"family\":\"inet\",\"local\":\"10.0.0.5\",\"prefixlen\":24}]}]\n\
            @@iproute@@\n[{\"dst\":\"default\",\"gateway\":\"10.0.0.1\",\"dev\":\"eth0\"}]\n\
            @@qemu@@\nQEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u18)\n@@end@@\n";
        let f = from_output(out);
        assert_eq!(f["ansible_distribution"], "Debian");
        assert_eq!(f["ansible_distribution_version"], "12");
        assert_eq!(f["ansible_processor_vcpus"], 4);
        assert_eq!(f["ansible_memtotal_mb"], 8000);
        assert_eq!(f["ferry_cpu_virtualization"]["vmx"], true);
        assert_eq!(f["ferry_nics"][0]["name"], "ens1f0");
        assert_eq!(f["ferry_nics"][0]["speed_mbps"], 10000);
        assert_eq!(f["ansible_eth0"]["ipv4"]["netmask"], "255.255.255.0");
        assert_eq!(f["ansible_eth0"]["module"], "e1000");
        assert_eq!(f["ansible_default_ipv4"]["address"], "10.0.0.5");
        assert_eq!(f["ansible_default_ipv4"]["gateway"], "10.0.0.1");
        assert_eq!(f["ansible_lo"]["speed"], -1);
        assert_eq!(f["ferry_qemu_version"], "7.2.19");
    }
}
