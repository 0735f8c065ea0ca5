//! The `nova` driver: OpenStack Nova (Icehouse era) migrates the instance.
//!
//! **Not run here**: these machines have no Nova. What is tested (below) is the
//! exact commands ferry sends and the parsing of what Nova answers, against
//! recorded-shape outputs written for the tests (`nova show` tables and
//! nova-compute log lines as Icehouse prints them).
//!
//! How a run goes, every command over the source host's connection (Icehouse
//! compute nodes carry python-novaclient) with the OpenStack credentials from the
//! inventory (`os_auth_url`, `os_username`, `os_password`, `os_tenant_name`,
//! `os_region_name`, or the same names in upper case) in the command's environment:
//!
//! 1. prepare: `nova boot --flavor F --image I [--nic net-id=N] --availability-zone
//!    nova:SOURCE --poll NAME` (the admin-only `zone:host` form pins the source);
//! 2. migrate: `nova live-migration [--block-migrate] NAME DEST`, then `nova show NAME`
//!    every sample interval (at least 1 s: each is an API round trip) until the
//!    instance is ACTIVE with no task state on DEST (completed), ERROR (failed), or
//!    the migration timeout (timeout);
//! 3. the source's nova-compute log (`log_file` option, default
//!    /var/log/nova/nova-compute.log) gives when `_post_live_migration()` started
//!    and when "Migrating instance to DEST finished successfully." was logged, or
//!    the "Live Migration failure: ..." message;
//! 4. cleanup: `nova delete NAME`.
//!
//! With a full guest (`guest: {host: vm1}`, the instance an inventory host of
//! `guests` with `nova_instance:`), the instance exists: prepare boots nothing
//! (`nova show INSTANCE` must say ACTIVE; on the destination from the last run, it
//! is first `nova live-migration`ed back to the source, unmeasured), the run starts
//! the scenario's load on it over SSH, and cleanup deletes nothing. Without one,
//! Nova gives ferry no way into the instance: a load other than idle fails at
//! prepare.
//!
//! Nova gives no downtime and no byte counts; those stay empty.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::nova_cli::{
    InstanceState, credentials, delete_command, full_guest_back_command, instance_state,
    live_migration_command, log_command, nova_host, parse_compute_log, parse_show, q, show_command,
};
use super::{Driver, DriverError, DriverKind, GuestHandle, HostEnd, RunContext};
use crate::experiment::result::{MigrationResult, Outcome, Sample};
use crate::experiment::scenario::Scenario;
use crate::transport::CommandSpec;

/// The `nova` driver's options (`driver_options:` in the experiment file).
#[derive(Debug, Clone, PartialEq)]
pub struct NovaDriver {
    /// Glance image to boot (name or id); needed unless the runs migrate a full guest.
    pub image: Option<String>,
    /// Neutron/nova-network id for `--nic net-id=` (None: Nova's default network).
    pub network: Option<String>,
    /// Instance names are `<prefix>-<run index>`.
    pub name_prefix: String,
    /// nova-compute's log on the compute hosts.
    pub log_file: String,
}

const OPTION_KEYS: &[&str] = &["image", "network", "name_prefix", "log_file"];

/// What is wrong with the nova driver's `driver_options`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NovaOptionsError {
    #[error("nova: `driver_options` must be a mapping")]
    NotAMapping,
    #[error("nova: unknown driver option `{0}` (options: {options})", options = OPTION_KEYS.join(", "))]
    Unknown(String),
}

/// The error of a run that would boot an instance without an image.
const NO_IMAGE: &str = "nova: `driver_options.image` is required to boot an instance (the Glance image, e.g. cirros-0.3.2-x86_64), or name an existing instance with `guest: {host: ...}`";

impl NovaDriver {
    pub fn new(options: &Value) -> Result<NovaDriver, NovaOptionsError> {
        let empty = serde_json::Map::new();
        let o = match options {
            Value::Object(m) => m,
            Value::Null => &empty,
            _ => return Err(NovaOptionsError::NotAMapping),
        };
        if let Some(k) = o.keys().find(|k| !OPTION_KEYS.contains(&k.as_str())) {
            return Err(NovaOptionsError::Unknown(k.clone()));
        }
        let s = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(NovaDriver {
            image: s("image"),
            network: s("network"),
            name_prefix: s("name_prefix").unwrap_or_else(|| "ferry".into()),
            log_file: s("log_file").unwrap_or_else(|| "/var/log/nova/nova-compute.log".into()),
        })
    }

    /// The instance's name for a run.
    pub fn instance_name(&self, index: u32) -> String {
        format!("{}-{index}", self.name_prefix)
    }

    pub fn boot_command(&self, name: &str, scenario: &Scenario, source_host: &str) -> String {
        let mut cmd = format!(
            "nova boot --flavor {} --image {}",
            q(&scenario.flavor.name),
            q(self.image.as_deref().unwrap_or_default())
        );
        if let Some(n) = &self.network {
            cmd.push_str(&format!(" --nic {}", q(&format!("net-id={n}"))));
        }
        cmd.push_str(&format!(
            " --availability-zone {} --poll {}",
            q(&format!("nova:{source_host}")),
            q(name)
        ));
        cmd
    }
}

fn host_error(host: &HostEnd, message: impl Into<String>) -> DriverError {
    DriverError::Host {
        host: host.name.clone(),
        message: message.into(),
    }
}

impl NovaDriver {
    /// A full guest's existing instance, ACTIVE on the source (migrated back
    /// there first when it is elsewhere).
    async fn prepare_full(
        &self,
        ctx: &RunContext<'_>,
        fg: &HostEnd,
    ) -> Result<GuestHandle, DriverError> {
        let name = crate::experiment::full_guest::vm_name(fg, DriverKind::Nova)?;
        let src = nova_host(ctx.source);
        let show = async || -> Result<InstanceState, DriverError> {
            let shown = self
                .nova(ctx.source, show_command(&name), Duration::from_secs(60))
                .await?;
            Ok(instance_state(&parse_show(&shown)))
        };
        let mut state = show().await?;
        if state.status != "ACTIVE" {
            return Err(host_error(
                ctx.source,
                format!("instance {name} is {}, not ACTIVE", state.status),
            ));
        }
        if let Some(cmd) = full_guest_back_command(&name, &state, &src) {
            self.nova(ctx.source, cmd, Duration::from_secs(60)).await?;
            let deadline = Instant::now() + ctx.settings.migration_timeout;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                state = show().await?;
                if state.status == "ACTIVE"
                    && state.task_state.is_none()
                    && state.host.as_deref() == Some(src.as_str())
                {
                    break;
                }
                if state.status == "ERROR" || Instant::now() > deadline {
                    return Err(host_error(
                        ctx.source,
                        format!(
                            "instance {name} did not come back to {src}: {} on {}",
                            state.status,
                            state.host.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
        Ok(GuestHandle {
            name,
            ip: Some(crate::experiment::full_guest::address(fg)?),
            data: json!({"id": state.id, "host": state.host, "full": true}),
        })
    }

    async fn nova(
        &self,
        host: &HostEnd,
        cmd: String,
        timeout: Duration,
    ) -> Result<String, DriverError> {
        let mut spec = CommandSpec::new(cmd.clone());
        spec.env = credentials(host).map_err(|e| DriverError::Other(e.to_string()))?;
        spec.timeout = Some(timeout);
        let out = host
            .transport
            .run(&spec)
            .await
            .map_err(|e| host_error(host, e.to_string()))?;
        if out.rc != 0 {
            return Err(host_error(
                host,
                format!(
                    "`{cmd}` exited {}: {}",
                    out.rc,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[async_trait]
impl Driver for NovaDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Nova
    }

    async fn prepare(&self, ctx: &RunContext<'_>) -> Result<GuestHandle, DriverError> {
        if let Some(fg) = ctx.guest {
            return self.prepare_full(ctx, fg).await;
        }
        if self.image.is_none() {
            return Err(DriverError::Other(NO_IMAGE.into()));
        }
        let load = &ctx.scenario.load;
        if load.memory.is_some()
            || load.cpu_threads.is_some()
            || load.network.is_some()
            || load.disk.is_some()
        {
            return Err(DriverError::Other(format!(
                "nova: load `{}` needs the instance as an inventory host; this driver runs idle loads only",
                load.name
            )));
        }
        let name = self.instance_name(ctx.index);
        let cmd = self.boot_command(&name, ctx.scenario, &nova_host(ctx.source));
        self.nova(ctx.source, cmd, ctx.settings.boot_timeout)
            .await?;
        let shown = self
            .nova(ctx.source, show_command(&name), Duration::from_secs(60))
            .await?;
        let state = instance_state(&parse_show(&shown));
        if state.status != "ACTIVE" {
            return Err(host_error(
                ctx.source,
                format!("instance {name} is {} after boot", state.status),
            ));
        }
        Ok(GuestHandle {
            name,
            ip: None,
            data: json!({"id": state.id, "host": state.host}),
        })
    }

    async fn migrate(
        &self,
        ctx: &RunContext<'_>,
        guest: &GuestHandle,
        row: &mut MigrationResult,
        samples: &mut Vec<Sample>,
    ) -> Result<(), DriverError> {
        let dest = nova_host(ctx.destination);
        row.migration_started_at = Some(crate::experiment::clock::rfc3339(
            std::time::SystemTime::now(),
        ));
        let start = Instant::now();
        self.nova(
            ctx.source,
            live_migration_command(&guest.name, &dest, ctx.scenario.algorithm.block),
            Duration::from_secs(60),
        )
        .await?;
        let interval = ctx.settings.sample_interval.max(Duration::from_secs(1));
        let mut saw_migrating = false;
        loop {
            let shown = self
                .nova(
                    ctx.source,
                    show_command(&guest.name),
                    Duration::from_secs(60),
                )
                .await?;
            let state = instance_state(&parse_show(&shown));
            let t_ms = start.elapsed().as_secs_f64() * 1000.0;
            samples.push(Sample {
                t_ms,
                status: format!(
                    "{}/{}",
                    state.status,
                    state.task_state.as_deref().unwrap_or("-")
                ),
                ..Sample::default()
            });
            if state.status == "ACTIVE"
                && state.task_state.is_none()
                && state.host.as_deref() == Some(dest.as_str())
            {
                row.outcome = Some(Outcome::Completed);
                row.migration_wall_ms = Some(t_ms);
                break;
            }
            saw_migrating |= state.task_state.as_deref() == Some("migrating");
            // Back to ACTIVE with no task on another host: Nova rolled the migration back.
            let rolled_back = state.status == "ACTIVE"
                && state.task_state.is_none()
                && (saw_migrating || t_ms > 10_000.0);
            if state.status == "ERROR" || rolled_back {
                row.outcome = Some(Outcome::Failed);
                row.error = Some(state.fault.unwrap_or_else(|| {
                    format!(
                        "instance is {} on {}",
                        state.status,
                        state.host.unwrap_or_default()
                    )
                }));
                break;
            }
            if start.elapsed() > ctx.settings.migration_timeout {
                row.outcome = Some(Outcome::Timeout);
                row.error = Some(format!(
                    "still {}/{} after the migration timeout",
                    state.status,
                    state.task_state.unwrap_or_default()
                ));
                break;
            }
            if ctx.interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                row.outcome = Some(Outcome::Interrupted);
                break;
            }
            tokio::time::sleep(interval).await;
        }
        // The source's log: when the copy ended and when Nova called it done.
        if let Some(id) = guest.data.get("id").and_then(Value::as_str)
            && let Ok(log) = self
                .nova(
                    ctx.source,
                    log_command(&self.log_file, id),
                    Duration::from_secs(30),
                )
                .await
        {
            let times = parse_compute_log(&log);
            if let Some(f) = times.failure
                && row.outcome != Some(Outcome::Completed)
            {
                row.error = Some(f);
            }
            // Nova reports no total time: ferry's view (command to ACTIVE on the
            // destination, at `nova show`'s resolution) stands in for it.
            row.total_time_ms = row.migration_wall_ms;
            row.driver_figures = Some(json!({
                "log_post_live_migration_started_at": times.post_started,
                "log_finished_at": times.finished,
                "log_post_migration_ms": match (times.post_started, times.finished) {
                    (Some(p), Some(f)) => Some((f - p) * 1000.0),
                    _ => None,
                },
            }));
        }
        Ok(())
    }

    async fn announce(
        &self,
        _ctx: &RunContext<'_>,
        _guest: &GuestHandle,
    ) -> Result<bool, DriverError> {
        Ok(false)
    }

    async fn cleanup(&self, ctx: &RunContext<'_>, guest: &GuestHandle) -> Result<(), DriverError> {
        if guest.data.get("full").and_then(Value::as_bool) == Some(true) {
            return Ok(()); // an existing instance: not ferry's to delete
        }
        self.nova(
            ctx.source,
            delete_command(&guest.name),
            Duration::from_secs(60),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    //! Against outputs written for these tests in the shapes Icehouse's novaclient
    //! and nova-compute print (`tests/fixtures/nova/`): no Nova runs here.
    use super::*;

    fn driver() -> NovaDriver {
        NovaDriver::new(&json!({"image": "cirros-0.3.2-x86_64", "network": "7e1f"})).unwrap()
    }

    #[test]
    fn the_exact_commands() {
        let d = driver();
        let scenario: Scenario = serde_json::from_value(json!({
            "flavor": {"name": "m1.small", "vcpus": 1, "memory_mib": 2048, "disk_gib": 20.0},
            "algorithm": {"name": "precopy", "kind": "precopy"},
            "load": {"name": "idle"},
            "link": {"name": "10g"},
            "repetition": 0,
            "pair": {"source": "compute1", "destination": "compute2"}
        }))
        .unwrap();
        assert_eq!(d.instance_name(3), "ferry-3");
        assert_eq!(
            d.boot_command("ferry-3", &scenario, "compute1"),
            "nova boot --flavor m1.small --image cirros-0.3.2-x86_64 --nic net-id=7e1f --availability-zone nova:compute1 --poll ferry-3"
        );
        assert_eq!(
            live_migration_command("ferry-3", "compute2", false),
            "nova live-migration ferry-3 compute2"
        );
        assert_eq!(
            live_migration_command("ferry-3", "compute2", true),
            "nova live-migration --block-migrate ferry-3 compute2"
        );
        assert_eq!(show_command("ferry-3"), "nova show ferry-3");
        assert_eq!(delete_command("ferry-3"), "nova delete ferry-3");
        assert_eq!(
            log_command(
                "/var/log/nova/nova-compute.log",
                "9f3b7c1e-2a4d-4e8b-9c0f-1d2e3f4a5b6c"
            ),
            "grep -F '[instance: 9f3b7c1e-2a4d-4e8b-9c0f-1d2e3f4a5b6c]' /var/log/nova/nova-compute.log"
        );
        // A name that needs quoting is quoted.
        assert_eq!(
            live_migration_command("my vm", "compute2", false),
            "nova live-migration 'my vm' compute2"
        );
    }

    #[test]
    fn options_are_checked() {
        // No image: fine for a full guest; a run that would boot one says so.
        assert_eq!(NovaDriver::new(&json!({})).unwrap().image, None);
        assert!(NO_IMAGE.contains("driver_options.image"));
        assert_eq!(
            NovaDriver::new(&json!({"image": "x", "flavour": 1})),
            Err(NovaOptionsError::Unknown("flavour".into()))
        );
        assert!(
            NovaOptionsError::Unknown("flavour".into())
                .to_string()
                .contains("unknown driver option `flavour` (options: image, network")
        );
        assert_eq!(
            NovaDriver::new(&json!([1])),
            Err(NovaOptionsError::NotAMapping)
        );
        let d = NovaDriver::new(&json!({"image": "x"})).unwrap();
        assert_eq!(
            (
                d.name_prefix.as_str(),
                d.log_file.as_str(),
                d.network.as_deref()
            ),
            ("ferry", "/var/log/nova/nova-compute.log", None)
        );
    }
}
