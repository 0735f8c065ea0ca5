//! What ferry says to the nova client and reads back from Nova, as pure
//! functions: the commands (live migration, show, delete, the compute log's
//! lines), the credentials from inventory vars, `nova show`'s table and
//! nova-compute's log lines. Tested against recorded-shape outputs only.

use indexmap::IndexMap;

use super::HostEnd;

/// The credential variables, as the nova client reads them from its environment.
const CREDENTIALS: &[&str] = &[
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_TENANT_NAME",
    "OS_REGION_NAME",
];

/// `nova live-migration [--block-migrate] VM HOST`.
pub fn live_migration_command(vm: &str, dest_host: &str, block: bool) -> String {
    format!(
        "nova live-migration {}{} {}",
        if block { "--block-migrate " } else { "" },
        q(vm),
        q(dest_host)
    )
}

pub fn show_command(vm: &str) -> String {
    format!("nova show {}", q(vm))
}

pub fn delete_command(vm: &str) -> String {
    format!("nova delete {}", q(vm))
}

/// The lines of nova-compute's log about one instance.
pub fn log_command(log_file: &str, instance_id: &str) -> String {
    format!(
        "grep -F {} {}",
        q(&format!("[instance: {instance_id}]")),
        q(log_file)
    )
}

pub(super) fn q(s: &str) -> String {
    crate::ops::command::shell_quote(s)
}

/// The OpenStack credentials from a host's variables, for the command's environment.
pub fn credentials(host: &HostEnd) -> Result<Vec<(String, String)>, MissingCredentials> {
    let mut env = Vec::new();
    let mut missing = Vec::new();
    for name in CREDENTIALS {
        match host.var(&name.to_lowercase()).or_else(|| host.var(name)) {
            Some(v) => env.push((name.to_string(), v)),
            None if *name == "OS_REGION_NAME" => {}
            None => missing.push(name.to_lowercase()),
        }
    }
    if missing.is_empty() {
        Ok(env)
    } else {
        Err(MissingCredentials {
            host: host.name.clone(),
            missing,
        })
    }
}

/// A host without the OpenStack credentials the nova commands need.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{host}: no OpenStack credentials: set {} in the inventory (e.g. group_vars/compute.yml)", missing.join(", "))]
pub struct MissingCredentials {
    pub host: String,
    /// The variables not set, lower case.
    pub missing: Vec<String>,
}

/// The compute host name Nova knows a host by: its `nova_host` variable, else its
/// inventory name.
pub fn nova_host(host: &HostEnd) -> String {
    host.var("nova_host").unwrap_or_else(|| host.name.clone())
}

/// `nova show`'s table as property -> value.
pub fn parse_show(text: &str) -> IndexMap<String, String> {
    let mut out = IndexMap::new();
    for line in text.lines() {
        let line = line.trim();
        if !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line
            .trim_matches('|')
            .splitn(2, '|')
            .map(str::trim)
            .collect();
        if let [k, v] = cells[..]
            && k != "Property"
        {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// Where an instance stands, from `nova show`.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    pub id: Option<String>,
    pub status: String,
    /// `OS-EXT-STS:task_state` (`migrating` while live-migrating; None when `-`).
    pub task_state: Option<String>,
    /// `OS-EXT-SRV-ATTR:host`: the compute host it runs on.
    pub host: Option<String>,
    /// `fault` message, when Nova recorded one.
    pub fault: Option<String>,
}

pub fn instance_state(table: &IndexMap<String, String>) -> InstanceState {
    let get = |k: &str| {
        table
            .get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty() && v != "-" && v != "None")
    };
    InstanceState {
        id: get("id"),
        status: get("status").unwrap_or_default(),
        task_state: get("OS-EXT-STS:task_state"),
        host: get("OS-EXT-SRV-ATTR:host"),
        fault: get("fault"),
    }
}

/// What nova-compute's log says about a live migration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogTimes {
    /// `_post_live_migration() is started..`: the memory copy ended, clean-up begins.
    pub post_started: Option<f64>,
    /// `Migrating instance to DEST finished successfully.`
    pub finished: Option<f64>,
    /// `Live Migration failure: ...`
    pub failure: Option<String>,
}

/// Seconds since the epoch of an Icehouse log line's `2014-08-28 10:15:02.123` prefix (UTC).
pub fn log_timestamp(line: &str) -> Option<f64> {
    let (date, rest) = line.split_once(' ')?;
    let time = rest.split_whitespace().next()?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (&[y, m, dd], &[h, mi, s]) = (&d[..], &t[..]) else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's days_from_civil).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    Some((days * 86_400 + h * 3600 + mi * 60 + s) as f64 + frac)
}

/// The migration's marks in the log lines about one instance (the last of each, so
/// an earlier migration of the same instance does not count).
pub fn parse_compute_log(text: &str) -> LogTimes {
    let mut out = LogTimes::default();
    for line in text.lines() {
        if line.contains("_post_live_migration() is started") {
            out.post_started = log_timestamp(line);
        } else if line.contains("Migrating instance to") && line.contains("finished successfully") {
            out.finished = log_timestamp(line);
        } else if let Some((_, msg)) = line.split_once("Live Migration failure: ") {
            out.failure = Some(msg.trim().to_string());
        }
    }
    out
}

/// For an existing instance `nova show` found on another host than the run's
/// source (the last run left it there): the live migration back to the source.
pub fn full_guest_back_command(
    instance: &str,
    state: &InstanceState,
    source_host: &str,
) -> Option<String> {
    (state.host.as_deref() != Some(source_host))
        .then(|| live_migration_command(instance, source_host, false))
}

#[cfg(test)]
mod tests {
    //! Against outputs written for these tests in the shapes Icehouse's novaclient
    //! and nova-compute print (`tests/fixtures/nova/`): no Nova runs here.
    use super::*;
    use serde_json::Value;
    use std::sync::Arc;

    const SHOW_MIGRATING: &str = include_str!("../../../tests/fixtures/nova/show_migrating.txt");
    const SHOW_DONE: &str = include_str!("../../../tests/fixtures/nova/show_done.txt");
    const LOG: &str = include_str!("../../../tests/fixtures/nova/nova-compute.log");
    const LOG_FAILED: &str = include_str!("../../../tests/fixtures/nova/nova-compute-failed.log");

    fn host(vars: &[(&str, &str)]) -> HostEnd {
        HostEnd {
            name: "compute1".into(),
            transport: Arc::new(crate::transport::local::LocalTransport::new("compute1")),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        }
    }

    #[test]
    fn a_full_guest_is_migrated_back_to_the_source_first_where_it_is_elsewhere() {
        let done = instance_state(&parse_show(SHOW_DONE));
        let on = done.host.clone().expect("the recorded table names a host");
        assert_eq!(full_guest_back_command("vm1", &done, &on), None);
        assert_eq!(
            full_guest_back_command("vm1", &done, "compute9").as_deref(),
            Some("nova live-migration vm1 compute9")
        );
    }

    #[test]
    fn credentials_come_from_inventory_vars_in_either_case() {
        let h = host(&[
            ("os_auth_url", "http://10.0.0.10:5000/v2.0"),
            ("OS_USERNAME", "admin"),
            ("os_password", "s3cret"),
            ("os_tenant_name", "admin"),
        ]);
        assert_eq!(
            credentials(&h).unwrap(),
            vec![
                (
                    "OS_AUTH_URL".to_string(),
                    "http://10.0.0.10:5000/v2.0".to_string()
                ),
                ("OS_USERNAME".into(), "admin".into()),
                ("OS_PASSWORD".into(), "s3cret".into()),
                ("OS_TENANT_NAME".into(), "admin".into()),
            ]
        );
        let err = credentials(&host(&[("os_auth_url", "u")])).unwrap_err();
        assert_eq!(
            err.missing,
            ["os_username", "os_password", "os_tenant_name"]
        );
        assert!(
            err.to_string().starts_with(
                "compute1: no OpenStack credentials: set os_username, os_password, os_tenant_name"
            ),
            "{err}"
        );
        assert_eq!(
            nova_host(&host(&[("nova_host", "node-1.example")])),
            "node-1.example"
        );
        assert_eq!(nova_host(&host(&[])), "compute1");
    }

    #[test]
    fn nova_show_tables() {
        let m = instance_state(&parse_show(SHOW_MIGRATING));
        assert_eq!(m.status, "MIGRATING");
        assert_eq!(m.task_state.as_deref(), Some("migrating"));
        assert_eq!(m.host.as_deref(), Some("compute1"));
        assert_eq!(
            m.id.as_deref(),
            Some("9f3b7c1e-2a4d-4e8b-9c0f-1d2e3f4a5b6c")
        );
        let d = instance_state(&parse_show(SHOW_DONE));
        assert_eq!(
            (d.status.as_str(), d.task_state, d.host.as_deref()),
            ("ACTIVE", None, Some("compute2"))
        );
        // A value holding `|` stays whole.
        assert_eq!(parse_show("| image | a | b |")["image"], "a | b");
    }

    #[test]
    fn nova_compute_log_lines() {
        let t = parse_compute_log(LOG);
        assert_eq!(t.failure, None);
        let (p, f) = (t.post_started.unwrap(), t.finished.unwrap());
        assert!(
            ((f - p) * 1000.0 - 1744.0).abs() < 0.5,
            "{}",
            (f - p) * 1000.0
        );
        // 2014-08-28 10:15:03.207 UTC
        assert!((p - 1_409_220_903.207).abs() < 1e-6, "{p}");
        let failed = parse_compute_log(LOG_FAILED);
        assert_eq!(
            failed.failure.as_deref(),
            Some("operation failed: migration job: unexpectedly failed")
        );
        assert_eq!((failed.post_started, failed.finished), (None, None));
    }
}
