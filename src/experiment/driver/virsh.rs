//! The `virsh` driver: the guest runs under libvirt (the testbed's set-up:
//! roles/libvirt, libvirtd listening on TCP on the management address). Per run
//! ferry writes a domain (the lab guest with the scenario's flavor and load on
//! its kernel command line), defines and starts it on the source (defined, so
//! that libvirt keeps the completed job's statistics there); the
//! migration is `virsh migrate --live ... qemu+tcp://DEST_MGMT/system` run on
//! the source in the background, with `--migrateuri tcp://DEST_MIGRATION_IP` so
//! the memory crosses the migration network. While it runs, QEMU's own figures
//! come through `virsh qemu-monitor-command G '{"execute":"query-migrate"}'`;
//! once it ended, libvirt's completed-job statistics (`domjobinfo --completed
//! --rawstats`) on both hosts.
//!
//! Post-copy dialects, detected from `virsh help migrate` (never by flag
//! numbers): upstream libvirt's `--postcopy` + `virsh migrate-postcopy`, and the
//! ORBIT branch's `--enable-postcopy` + `virsh migrate-start-postcopy`.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::query_migrate::MigrateInfo;
use super::virsh_cli::{
    VirshPostcopy, fill_from_jobstats, libvirt_switches, migrate_args, parse_rawstats,
};
use super::{Driver, DriverError, DriverKind, GuestHandle, HostEnd, RunContext};
use crate::experiment::clock;
use crate::experiment::full_guest;
use crate::experiment::guest;
use crate::experiment::result::{MigrationResult, Outcome, Sample};
use crate::experiment::scenario::AlgorithmKind;
use crate::transport::remote::sh_quote;

/// virsh on the host, bounded (a libvirtd that stops answering must not hang the run).
const VIRSH: &str = "timeout 60 virsh -c qemu:///system";

/// What the virsh driver keeps about a guest it started.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct VirshGuest {
    domain: String,
    xml: String,
    serial: String,
    /// Where the background `virsh migrate` writes its output and exit status.
    job_dir: String,
    /// A full guest's existing domain: not defined, started, destroyed or
    /// undefined by ferry; no serial file of ferry's.
    #[serde(default)]
    full: bool,
}

pub struct VirshDriver;

impl VirshDriver {
    fn guest_of(handle: &GuestHandle) -> Result<VirshGuest, DriverError> {
        serde_json::from_value(handle.data.clone())
            .map_err(|e| DriverError::Other(format!("not a virsh driver guest: {e}")))
    }

    fn domain_xml(
        ctx: &RunContext<'_>,
        g: &VirshGuest,
        cmdline: &str,
        mac: &str,
        bridge: &str,
    ) -> String {
        let f = &ctx.scenario.flavor;
        let gd = ctx.settings.guest_dir.trim_end_matches('/');
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('\'', "&apos;")
        };
        format!(
            "<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>{mem}</memory>\n  \
             <vcpu>{cpus}</vcpu>\n  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n    \
             <kernel>{gd}/vmlinuz</kernel>\n    <initrd>{gd}/initramfs.cpio.gz</initrd>\n    \
             <cmdline>{cmd}</cmdline>\n  </os>\n  <on_poweroff>destroy</on_poweroff>\n  \
             <on_reboot>destroy</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n    \
             <interface type='bridge'>\n      <source bridge='{br}'/>\n      <mac address='{mac}'/>\n      \
             <model type='virtio'/>\n    </interface>\n    <serial type='file'>\n      \
             <source path='{serial}'/>\n      <target port='0'/>\n    </serial>\n    \
             <memballoon model='none'/>\n  </devices>\n</domain>\n",
            name = esc(&g.domain),
            mem = f.memory_mib,
            cpus = f.vcpus.max(1),
            gd = esc(gd),
            cmd = esc(cmdline),
            br = esc(bridge),
            serial = esc(&g.serial),
        )
    }

    /// A full guest's existing domain, found running on the source; where the
    /// last run left it on the destination, migrated back first (plain live
    /// pre-copy, not measured: the run's boot phase).
    async fn prepare_full(ctx: &RunContext<'_>, fg: &HostEnd) -> Result<GuestHandle, DriverError> {
        let domain = full_guest::vm_name(fg, DriverKind::Virsh)?;
        let state = async |h: &HostEnd| -> Result<String, DriverError> {
            h.require_tools(&[("virsh", "libvirt-clients")]).await?;
            let o = h
                .sh(&format!(
                    "{VIRSH} domstate {} 2>/dev/null",
                    sh_quote(&domain)
                ))
                .await?;
            Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
        };
        let (on_src, on_dst) = tokio::join!(state(ctx.source), state(ctx.destination));
        let (on_src, on_dst) = (on_src?, on_dst?);
        if on_src != "running" {
            if on_dst != "running" {
                return Err(DriverError::Host {
                    host: fg.name.clone(),
                    message: format!(
                        "libvirt domain `{domain}` runs neither on {} ({}) nor on {} ({}): start it there (on the lab: playbooks/guest.yml -e guest_start=true)",
                        ctx.source.name,
                        if on_src.is_empty() {
                            "not there"
                        } else {
                            &on_src
                        },
                        ctx.destination.name,
                        if on_dst.is_empty() {
                            "not there"
                        } else {
                            &on_dst
                        },
                    ),
                });
            }
            let back = format!(
                "timeout {limit} virsh -c qemu:///system migrate --live --migrateuri {uri} --domain {d} --desturi {dest}",
                limit = ctx.settings.migration_timeout.as_secs() * 3 + 60,
                uri = sh_quote(&format!(
                    "tcp://{}",
                    ctx.source.require_var("migration_ip")?
                )),
                d = sh_quote(&domain),
                dest = sh_quote(&format!(
                    "qemu+tcp://{}/system",
                    ctx.source.require_var("mgmt_ip")?
                )),
            );
            ctx.destination
                .sh_ok("migrate the full guest back to the run's source", &back)
                .await?;
        }
        let g = VirshGuest {
            job_dir: format!("/var/tmp/ferry-exp/full-{}", ctx.index),
            domain,
            xml: String::new(),
            serial: String::new(),
            full: true,
        };
        ctx.source
            .sh_ok(
                "clear the migration job's files",
                &format!("rm -rf {}", sh_quote(&g.job_dir)),
            )
            .await?;
        Ok(GuestHandle {
            name: g.domain.clone(),
            ip: Some(full_guest::address(fg)?),
            data: serde_json::to_value(&g).unwrap_or_default(),
        })
    }

    async fn monitor(host: &HostEnd, domain: &str, command: &Value) -> Result<Value, DriverError> {
        let out = host
            .sh_ok(
                "virsh qemu-monitor-command",
                &format!(
                    "{VIRSH} qemu-monitor-command {} {}",
                    sh_quote(domain),
                    sh_quote(&command.to_string())
                ),
            )
            .await?;
        let v: Value = serde_json::from_str(out.trim()).map_err(|e| DriverError::Host {
            host: host.name.clone(),
            message: format!("qemu-monitor-command answered no JSON ({e}): {out}"),
        })?;
        if let Some(e) = v.get("error") {
            return Err(DriverError::Host {
                host: host.name.clone(),
                message: format!("QEMU {}: {}", command["execute"], e),
            });
        }
        Ok(v["return"].clone())
    }
}

#[async_trait]
impl Driver for VirshDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Virsh
    }

    async fn prepare(&self, ctx: &RunContext<'_>) -> Result<GuestHandle, DriverError> {
        if let Some(fg) = ctx.guest {
            return Self::prepare_full(ctx, fg).await;
        }
        for h in [ctx.source, ctx.destination] {
            h.require_tools(&[("virsh", "libvirt-clients")]).await?;
            h.sh_ok(
                "reach libvirtd (virsh version)",
                &format!("{VIRSH} version >/dev/null"),
            )
            .await?;
        }
        let bridge = ctx.source.require_var("guest_bridge_iface")?;
        let (ip, prefix) = guest::guest_address(ctx.source).ok_or_else(|| DriverError::Host {
            host: ctx.source.name.clone(),
            message: "no guest address: set guest_vm_ip, or guest_ip and guest_prefix".into(),
        })?;
        let stream_to = ctx.prober.and_then(|p| p.var("guest_ip"));
        let cmdline =
            guest::kernel_cmdline(&ip, prefix, &ctx.scenario.load, stream_to.as_deref(), None)
                .map_err(|e| DriverError::Other(e.to_string()))?;
        let gd = ctx.settings.guest_dir.trim_end_matches('/');
        let domain = format!("ferry-exp-{}", ctx.index);
        let g = VirshGuest {
            xml: format!("{gd}/{domain}.xml"),
            serial: format!("{gd}/{domain}.serial.log"),
            job_dir: format!("/var/tmp/ferry-exp/{domain}"),
            domain,
            full: false,
        };
        let mac = format!(
            "52:54:00:fd:{:02x}:{:02x}",
            (ctx.index >> 8) & 0xff,
            ctx.index & 0xff
        );
        let handle = GuestHandle {
            name: g.domain.clone(),
            ip: Some(ip),
            data: serde_json::to_value(&g).unwrap_or_default(),
        };
        // A domain of this name left by an earlier, killed run goes first.
        for h in [ctx.source, ctx.destination] {
            h.sh(&format!(
                "{VIRSH} destroy {d} >/dev/null 2>&1; {VIRSH} undefine {d} >/dev/null 2>&1; rm -f {s}; rm -rf {j}; true",
                d = sh_quote(&g.domain),
                s = sh_quote(&g.serial),
                j = sh_quote(&g.job_dir)
            ))
            .await?;
        }
        ctx.source
            .write_file(
                &g.xml,
                Self::domain_xml(ctx, &g, &cmdline, &mac, &bridge).into_bytes(),
            )
            .await?;
        let started = Instant::now();
        ctx.source
            .sh_ok(
                "virsh define and start",
                &format!(
                    "{VIRSH} define {x} >/dev/null && {VIRSH} start {d}",
                    x = sh_quote(&g.xml),
                    d = sh_quote(&g.domain)
                ),
            )
            .await?;
        let has_load = {
            let l = &ctx.scenario.load;
            l.memory.is_some() || l.cpu_threads.is_some_and(|n| n > 0) || l.network.is_some()
        };
        loop {
            let serial = ctx
                .source
                .sh(&format!("cat {} 2>/dev/null", sh_quote(&g.serial)))
                .await
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            if let Some(line) = serial
                .lines()
                .find(|l| l.contains("Out of memory: Killed process"))
            {
                let _ = self.cleanup(ctx, &handle).await;
                return Err(DriverError::Host {
                    host: ctx.source.name.clone(),
                    message: format!("the guest ran out of memory: {}", line.trim()),
                });
            }
            if guest::booted(&serial) && (!has_load || guest::load_reports(&serial).len() >= 2) {
                return Ok(handle);
            }
            if started.elapsed() > ctx.settings.boot_timeout {
                let _ = self.cleanup(ctx, &handle).await;
                return Err(DriverError::Host {
                    host: ctx.source.name.clone(),
                    message: format!(
                        "the guest did not boot within {:?}; serial log ends: {}",
                        ctx.settings.boot_timeout,
                        serial.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn migrate(
        &self,
        ctx: &RunContext<'_>,
        guest_handle: &GuestHandle,
        row: &mut MigrationResult,
        samples: &mut Vec<Sample>,
    ) -> Result<(), DriverError> {
        let g = Self::guest_of(guest_handle)?;
        let (src, dst) = (ctx.source, ctx.destination);
        let sc = ctx.scenario;
        let help = src
            .sh_ok("virsh help migrate", "virsh help migrate")
            .await?;
        let dialect = VirshPostcopy::detect(&help);
        if sc.algorithm.kind != AlgorithmKind::Precopy && dialect.is_none() {
            return Err(DriverError::Host {
                host: src.name.clone(),
                message: "this virsh has no post-copy (neither --postcopy nor --enable-postcopy in `virsh help migrate`)".into(),
            });
        }
        let args = migrate_args(
            sc,
            &g.domain,
            &dst.require_var("mgmt_ip")?,
            &dst.require_var("migration_ip")?,
            dialect,
        );
        let args: Vec<String> = args.iter().map(|a| sh_quote(a)).collect();
        let j = sh_quote(&g.job_dir);
        let start = format!(
            "mkdir -p {j} && setsid sh -c 'timeout {limit} virsh -c qemu:///system migrate {args} >{jd}/out 2>{jd}/err; echo $? >{jd}/rc' \
             </dev/null >/dev/null 2>&1 & echo started",
            limit = ctx.settings.migration_timeout.as_secs() * 3 + 60,
            args = args.join(" ").replace('\'', "'\\''"),
            jd = g.job_dir,
        );
        row.migration_started_at = Some(clock::rfc3339(SystemTime::now()));
        let started = Instant::now();
        src.sh_ok("start virsh migrate", &start).await?;

        let poll = format!(
            "if [ -e {j}/rc ]; then echo RC $(cat {j}/rc); cat {j}/err; else {VIRSH} qemu-monitor-command {d} '{{\"execute\":\"query-migrate\"}}' 2>&1 || true; fi",
            d = sh_quote(&g.domain)
        );
        let interval = ctx.settings.sample_interval.max(Duration::from_millis(10));
        let mut next = started;
        let mut switch_transferred: Option<u64> = None;
        let mut last_transferred = 0u64;
        let mut last_dirty: Option<f64> = None;
        let mut downtime_set = sc.algorithm.downtime_limit_ms.is_none();
        let mut aborted_for: Option<Outcome> = None;
        let mut last_info: Option<Value> = None;
        let (rc, err) = loop {
            next += interval;
            tokio::time::sleep_until(next.into()).await;
            let out = src.sh_ok("poll the migration", &poll).await?;
            if let Some(rest) = out.strip_prefix("RC ") {
                let (rc, err) = rest.split_once('\n').unwrap_or((rest, ""));
                break (
                    rc.trim().parse::<i32>().unwrap_or(-1),
                    err.trim().to_string(),
                );
            }
            let t_ms = started.elapsed().as_secs_f64() * 1000.0;
            let Ok(v) = serde_json::from_str::<Value>(out.trim()) else {
                continue; // the domain is going away on the source, or the job not set up yet
            };
            let info = v["return"].clone();
            if info.is_null() {
                continue;
            }
            let m = MigrateInfo(&info);
            samples.push(m.sample(t_ms));
            if let Some(r) = m.dirty_rate_mib_s().filter(|r| *r > 0.0) {
                last_dirty = Some(r);
            }
            let status = m.status().to_string();
            if status == "active" && !downtime_set {
                if let Some(ms) = sc.algorithm.downtime_limit_ms {
                    src.sh_ok(
                        "virsh migrate-setmaxdowntime",
                        &format!(
                            "{VIRSH} migrate-setmaxdowntime {} {ms}",
                            sh_quote(&g.domain)
                        ),
                    )
                    .await?;
                }
                downtime_set = true;
            }
            if status == "postcopy-active" && switch_transferred.is_none() {
                // libvirt switched (--postcopy-after-precopy): date it by this sample.
                row.postcopy_switch_ms = Some(t_ms);
                switch_transferred = Some(last_transferred);
            }
            if sc.algorithm.kind != AlgorithmKind::Precopy
                && !libvirt_switches(sc)
                && switch_transferred.is_none()
                && status == "active"
                && m.transferred().unwrap_or(0) > 0
            {
                let rounds = m.sample(t_ms).dirty_sync_rounds.unwrap_or(0);
                let a = &sc.algorithm;
                let now = match a.kind {
                    AlgorithmKind::Postcopy => true,
                    _ => {
                        a.switch_after_rounds.is_some_and(|n| rounds > u64::from(n))
                            || a.switch_after_s.is_some_and(|s| t_ms >= s * 1000.0)
                            || (a.switch_after_rounds.is_none()
                                && a.switch_after_s.is_none()
                                && rounds > 1)
                    }
                };
                if now && let Some(d) = dialect {
                    src.sh_ok(
                        &format!("virsh {}", d.switch_command()),
                        &format!("{VIRSH} {} {}", d.switch_command(), sh_quote(&g.domain)),
                    )
                    .await?;
                    row.postcopy_switch_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                    switch_transferred = Some(m.transferred().unwrap_or(last_transferred));
                }
            }
            last_transferred = m.transferred().unwrap_or(last_transferred);
            let interrupted = ctx.interrupted.load(std::sync::atomic::Ordering::Relaxed);
            if aborted_for.is_none()
                && status == "active"
                && (interrupted || started.elapsed() > ctx.settings.migration_timeout)
            {
                src.sh_ok(
                    "virsh domjobabort",
                    &format!("{VIRSH} domjobabort {}", sh_quote(&g.domain)),
                )
                .await?;
                aborted_for = Some(if interrupted {
                    Outcome::Interrupted
                } else {
                    Outcome::NotConverged
                });
            }
            // A cancelled job's answers carry no figures: keep the last running ones.
            if info.get("ram").is_some() {
                last_info = Some(info);
            }
        };
        row.migration_wall_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        if let Some(info) = &last_info {
            MigrateInfo(info).fill_row(row, switch_transferred, last_dirty);
        }
        if rc == 0 {
            // The completed job's statistics: the destination has those libvirt
            // handed over; the source (the domain stays defined there, shut off)
            // has QEMU's final ones, post-copy's downtime included.
            for h in [dst, src] {
                let stats = h
                    .sh(&format!(
                        "{VIRSH} domjobinfo --completed --rawstats {}",
                        sh_quote(&g.domain)
                    ))
                    .await?;
                fill_from_jobstats(
                    row,
                    &parse_rawstats(&String::from_utf8_lossy(&stats.stdout)),
                );
            }
            if let Some(all) = row.transferred_bytes {
                match switch_transferred {
                    Some(at) => {
                        row.precopy_bytes = Some(at.min(all));
                        row.postcopy_bytes = Some(all.saturating_sub(at));
                    }
                    None => {
                        row.precopy_bytes = Some(all);
                        row.postcopy_bytes = Some(0);
                    }
                }
            }
            row.outcome = Some(Outcome::Completed);
        } else {
            row.error = Some(if err.is_empty() {
                format!("virsh migrate exited {rc}")
            } else {
                err
            });
            row.outcome = Some(match aborted_for {
                Some(o) => {
                    row.error = Some(format!(
                        "pre-copy had not converged after {:?} (aborted; the guest stays on the source): {}",
                        ctx.settings.migration_timeout,
                        row.error.take().unwrap_or_default()
                    ));
                    o
                }
                None => Outcome::Failed,
            });
        }
        if g.full {
            // A full guest's load is read over SSH by the run (full_guest.rs).
            return Ok(());
        }
        // The load the guest achieved: the serial file on each host.
        let read = async |h: &HostEnd| {
            h.sh(&format!("cat {} 2>/dev/null", sh_quote(&g.serial)))
                .await
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let (s_serial, d_serial) = tokio::join!(read(src), read(dst));
        guest::record_load(row, &sc.load, &s_serial, &d_serial);
        Ok(())
    }

    async fn announce(
        &self,
        ctx: &RunContext<'_>,
        guest_handle: &GuestHandle,
    ) -> Result<bool, DriverError> {
        let g = Self::guest_of(guest_handle)?;
        let cmd = json!({"execute": "announce-self", "arguments":
            {"initial": 50, "max": 550, "rounds": 5, "step": 100}});
        match Self::monitor(ctx.destination, &g.domain, &cmd).await {
            Ok(_) => Ok(true),
            Err(e) if e.to_string().contains("CommandNotFound") => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn cleanup(
        &self,
        ctx: &RunContext<'_>,
        guest_handle: &GuestHandle,
    ) -> Result<(), DriverError> {
        let g = Self::guest_of(guest_handle)?;
        if g.full {
            // The domain is not ferry's: it stays running where the migration left it.
            for h in [ctx.source, ctx.destination] {
                h.sh_ok(
                    "remove the migration job's files",
                    &format!("rm -rf {}", sh_quote(&g.job_dir)),
                )
                .await?;
            }
            return Ok(());
        }
        let one = async |h: &HostEnd, side: &str| -> Result<(), DriverError> {
            let mut crashed = None;
            if let Ok(o) = h
                .sh(&format!("cat {} 2>/dev/null", sh_quote(&g.serial)))
                .await
                && !o.stdout.is_empty()
            {
                crashed = guest::keep_serial(&ctx.results_dir, ctx.index, side, &o.stdout);
            }
            h.sh_ok(
                "virsh destroy the run's guest",
                &format!(
                    "if {VIRSH} domstate {d} >/dev/null 2>&1; then {VIRSH} destroy {d} >/dev/null 2>&1; \
                     {VIRSH} undefine {d} >/dev/null 2>&1; fi; rm -f {x} {s}; rm -rf {j}",
                    d = sh_quote(&g.domain),
                    x = sh_quote(&g.xml),
                    s = sh_quote(&g.serial),
                    j = sh_quote(&g.job_dir)
                ),
            )
            .await?;
            match crashed {
                Some(line) => Err(DriverError::GuestCrashed {
                    host: h.name.clone(),
                    line,
                }),
                None => Ok(()),
            }
        };
        let (a, b) = tokio::join!(
            one(ctx.source, "source"),
            one(ctx.destination, "destination")
        );
        a.and(b)
    }
}
