//! (Over 600 lines: one run's life cycle under QMP (launch, configure, migrate, watch, clean up) shares its guest state; the pure parts are in qmp_settings.rs.)
//!
//! The `qmp` driver: ferry starts QEMU itself on both hosts (TCG in the lab), the
//! destination waiting with `-incoming defer`, and drives the migration over QMP
//! (host-local Unix sockets reached through the transport, [`QmpSocket`]).
//!
//! Per run, on each host, in `/var/tmp/ferry-exp/run-INDEX-STAMP/`: `qmp.sock`,
//! `serial.log` (the guest's console: its load reports), `qemu.pid`; and a tap
//! `fxtINDEX` on the host's guest bridge (`guest_bridge_iface`). Clean-up quits
//! QEMU over QMP, then kills the PID it started (checked against its command
//! line), removes the tap, and keeps both serial logs in the results directory.

use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::host_command::running_test;
use super::qmp_settings::{PostcopyDialect, capabilities, parameters};
use super::qmp_socket::QmpSocket;
use super::query_migrate::MigrateInfo;
use super::{Driver, DriverError, DriverKind, GuestHandle, HostEnd, RunContext};
use crate::experiment::clock;
use crate::experiment::disk;
use crate::experiment::guest;
use crate::experiment::result::{MigrationResult, Outcome, Sample};
use crate::experiment::scenario::AlgorithmKind;
use crate::transport::remote::sh_quote;

/// RAM the guest gets beyond its flavor's, KiB. QEMU before 9.0 (the lab's is
/// 7.2) syncs the migration dirty bitmap of a RAM block whose size is a multiple
/// of 64 pages by a fast path that clears the dirty bits without resetting TCG's
/// TLB dirty state, so the guest's stores after a sync can be lost: a guest
/// dirtying memory was seen to oops or hang on the destination in about half of
/// its pre-copy migrations (upstream fixed it in 9.0, "physmem: Fix migration
/// dirty bitmap coherency with TCG memory access"). A size 8 KiB off that
/// multiple takes the per-page path, which resets it: 12 of 12 such runs kept
/// their guest. Both sides get the same size, so any QEMU accepts the stream;
/// the row's `ram_total_bytes` (QEMU's figure) shows the extra 8 KiB.
pub const TCG_RAM_PAD_KIB: u64 = 8;

/// A pre-copy that sent nothing for this long when its timeout came was stalled
/// (a dead migration link: TCP retransmits for minutes before QEMU hears of it),
/// recorded as failed rather than as not converged.
const STALLED: Duration = Duration::from_secs(5);

/// What the qmp driver keeps about a guest it started (in [`GuestHandle::data`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct QmpGuest {
    dir: String,
    tap: String,
    port: u16,
    source_pid: Option<u32>,
    destination_pid: Option<u32>,
}

impl QmpGuest {
    fn socket(&self) -> QmpSocket {
        QmpSocket::new(format!("{}/qmp.sock", self.dir))
    }
    fn serial(&self) -> String {
        format!("{}/serial.log", self.dir)
    }
    fn disk(&self) -> String {
        format!("{}/disk.raw", self.dir)
    }
}

pub struct QmpDriver {
    /// The QEMU binary on the hosts (`driver_options.qemu_binary`, default
    /// `qemu-system-x86_64`).
    pub qemu: String,
    /// TCP port base of the destination's `-incoming` (plus the run index).
    pub port_base: u16,
    /// Each source host's post-copy dialect, asked of its QEMU once per experiment
    /// (the binary does not change between runs): one QMP round trip less a run.
    dialects: std::sync::Mutex<std::collections::HashMap<String, Option<PostcopyDialect>>>,
}

impl QmpDriver {
    pub fn new(driver_options: &Value) -> QmpDriver {
        QmpDriver {
            qemu: driver_options["qemu_binary"]
                .as_str()
                .unwrap_or("qemu-system-x86_64")
                .to_string(),
            port_base: driver_options["migration_port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(49152),
            dialects: Default::default(),
        }
    }

    fn guest_of(handle: &GuestHandle) -> Result<QmpGuest, DriverError> {
        serde_json::from_value(handle.data.clone())
            .map_err(|e| DriverError::Other(format!("not a qmp driver guest: {e}")))
    }

    /// The shell line that makes the tap and starts QEMU daemonized; prints its PID.
    fn launch_script(
        &self,
        ctx: &RunContext<'_>,
        host: &HostEnd,
        g: &QmpGuest,
        cmdline: &str,
        mac: &str,
        incoming: bool,
    ) -> Result<String, DriverError> {
        let bridge = host.require_var("guest_bridge_iface")?;
        let f = &ctx.scenario.flavor;
        let gd = ctx.settings.guest_dir.trim_end_matches('/');
        let dir = &g.dir;
        let tap = &g.tap;
        let (make_disk, drive) = match disk::wanted_mib(ctx.scenario) {
            Some(mib) => (
                format!("{}; ", disk::create_command(&g.disk(), mib)),
                disk::qemu_args(&g.disk()),
            ),
            None => (String::new(), String::new()),
        };
        let qemu = format!(
            "{qemu} -name ferry-run-{index} -accel tcg -m {mem_kib}k -smp {cpus} -nodefaults \
             -no-user-config -display none -kernel {k} -initrd {i} -append {append} \
             -serial file:{dir}/serial.log \
             -netdev tap,id=n0,ifname={tap},script=no,downscript=no \
             -device virtio-net-pci,netdev=n0,mac={mac}{drive} \
             -qmp unix:{dir}/qmp.sock,server=on,wait=off -pidfile {dir}/qemu.pid -daemonize{inc}",
            qemu = self.qemu,
            index = ctx.index,
            mem_kib = f.memory_mib * 1024 + TCG_RAM_PAD_KIB,
            cpus = f.vcpus.max(1),
            k = sh_quote(&format!("{gd}/vmlinuz")),
            i = sh_quote(&format!("{gd}/initramfs.cpio.gz")),
            append = sh_quote(cmdline),
            inc = if incoming { " -incoming defer" } else { "" },
        );
        Ok(format!(
            "set -e; mkdir -p {dir}; {make_disk}ip link del {tap} 2>/dev/null || true; \
             ip tuntap add dev {tap} mode tap; ip link set {tap} master {br}; ip link set {tap} up; \
             {qemu} >{dir}/qemu.out 2>&1 || {{ cat {dir}/qemu.out >&2; exit 1; }}; cat {dir}/qemu.pid",
            br = sh_quote(&bridge),
        ))
    }

    async fn launch(
        &self,
        ctx: &RunContext<'_>,
        host: &HostEnd,
        g: &QmpGuest,
        cmdline: &str,
        mac: &str,
        incoming: bool,
    ) -> Result<u32, DriverError> {
        let script = self.launch_script(ctx, host, g, cmdline, mac, incoming)?;
        let what = if incoming {
            "start QEMU (-incoming defer)"
        } else {
            "start QEMU"
        };
        let out = host.sh_ok(what, &script).await?;
        out.trim().parse().map_err(|_| DriverError::Host {
            host: host.name.clone(),
            message: format!("{what}: no PID in its pidfile: {out}"),
        })
    }

    /// Wait until the source's guest is up (and its load reports, if it has one).
    async fn wait_booted(&self, ctx: &RunContext<'_>, g: &QmpGuest) -> Result<(), DriverError> {
        let src = ctx.source;
        let started = Instant::now();
        let has_load = {
            let l = &ctx.scenario.load;
            l.memory.is_some()
                || l.cpu_threads.is_some_and(|n| n > 0)
                || l.network.is_some()
                || l.disk.is_some()
        };
        let pid = g.source_pid.unwrap_or(0);
        let cmd = format!(
            "{} || echo FERRY-QEMU-GONE; cat {} 2>/dev/null",
            running_test(pid),
            g.serial()
        );
        loop {
            let serial = src.sh_ok("read the guest's serial log", &cmd).await?;
            if serial.starts_with("FERRY-QEMU-GONE") {
                return Err(DriverError::Host {
                    host: src.name.clone(),
                    message: format!("QEMU exited while the guest booted: {}", tail(&serial)),
                });
            }
            if let Some(line) = serial
                .lines()
                .find(|l| l.contains("Out of memory: Killed process"))
            {
                return Err(DriverError::Host {
                    host: src.name.clone(),
                    message: format!(
                        "the guest ran out of memory ({} MiB for a working set of {:?} MiB): {}",
                        ctx.scenario.flavor.memory_mib,
                        ctx.scenario.load.memory.as_ref().map(|m| m.working_set_mib),
                        line.trim()
                    ),
                });
            }
            let reports = guest::load_reports(&serial).len();
            if guest::booted(&serial) && (!has_load || reports >= 2) {
                return Ok(());
            }
            if started.elapsed() > ctx.settings.boot_timeout {
                return Err(DriverError::Host {
                    host: src.name.clone(),
                    message: format!(
                        "the guest did not boot{} within {:?}; serial log ends: {}",
                        if has_load { " and report its load" } else { "" },
                        ctx.settings.boot_timeout,
                        tail(&serial)
                    ),
                });
            }
            if ctx.interrupted.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(DriverError::Other(
                    "interrupted while the guest booted".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Set `caps` and `params` on one side, then `then` (if any), in one batch.
    async fn configure(
        &self,
        host: &HostEnd,
        sock: &QmpSocket,
        caps: Vec<Value>,
        params: Value,
        then: Option<Value>,
    ) -> Result<(), DriverError> {
        let mut cmds = Vec::new();
        if !caps.is_empty() {
            cmds.push(json!({"execute": "migrate-set-capabilities",
                "arguments": {"capabilities": caps}}));
        }
        if params.as_object().is_some_and(|m| !m.is_empty()) {
            cmds.push(json!({"execute": "migrate-set-parameters", "arguments": params}));
        }
        cmds.extend(then);
        for (c, a) in cmds.iter().zip(sock.execute(host, &cmds).await?) {
            if let Err(e) = a {
                return Err(DriverError::Host {
                    host: host.name.clone(),
                    message: format!("QMP {} {}: {e}", c["execute"], c["arguments"]),
                });
            }
        }
        Ok(())
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(8)..].join(" | ")
}

#[async_trait]
impl Driver for QmpDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Qmp
    }

    async fn prepare(&self, ctx: &RunContext<'_>) -> Result<GuestHandle, DriverError> {
        let tools = [
            (self.qemu.as_str(), "qemu-system-x86"),
            ("socat", "socat"),
            ("ip", "iproute2"),
        ];
        let gd = ctx.settings.guest_dir.trim_end_matches('/').to_string();
        let files = format!(
            "for f in {d}/vmlinuz {d}/initramfs.cpio.gz; do test -r \"$f\" || echo \"$f\"; done",
            d = sh_quote(&gd)
        );
        for h in [ctx.source, ctx.destination] {
            h.require_tools(&tools).await?;
            let missing = h.sh_ok("look for the guest's files", &files).await?;
            if !missing.trim().is_empty() {
                return Err(DriverError::Host {
                    host: h.name.clone(),
                    message: format!(
                        "the guest's files are missing: {} (put them there with playbooks/guest.yml)",
                        missing.split_whitespace().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        let (ip, prefix) = guest::guest_address(ctx.source).ok_or_else(|| DriverError::Host {
            host: ctx.source.name.clone(),
            message: "no guest address: set guest_vm_ip, or guest_ip and guest_prefix".into(),
        })?;
        let stream_to = ctx.prober.and_then(|p| p.var("guest_ip"));
        let device = disk::wanted_mib(ctx.scenario).map(|_| disk::GUEST_DEVICE);
        let cmdline = guest::kernel_cmdline(
            &ip,
            prefix,
            &ctx.scenario.load,
            stream_to.as_deref(),
            device,
        )
        .map_err(|e| DriverError::Other(e.to_string()))?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let mut g = QmpGuest {
            dir: format!("/var/tmp/ferry-exp/run-{}-{stamp}", ctx.index),
            tap: format!("fxt{}", ctx.index % 100_000),
            port: self.port_base.wrapping_add((ctx.index % 10_000) as u16),
            source_pid: None,
            destination_pid: None,
        };
        let mac = format!(
            "52:54:00:fe:{:02x}:{:02x}",
            (ctx.index >> 8) & 0xff,
            ctx.index & 0xff
        );
        let mut handle = GuestHandle {
            name: format!("ferry-run-{}", ctx.index),
            ip: Some(ip),
            data: serde_json::to_value(&g).unwrap_or_default(),
        };
        let (s, d) = tokio::join!(
            self.launch(ctx, ctx.source, &g, &cmdline, &mac, false),
            self.launch(ctx, ctx.destination, &g, &cmdline, &mac, true),
        );
        g.source_pid = s.as_ref().ok().copied();
        g.destination_pid = d.as_ref().ok().copied();
        handle.data = serde_json::to_value(&g).unwrap_or_default();
        let booted = match (s, d) {
            (Ok(_), Ok(_)) => self.wait_booted(ctx, &g).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        if let Err(e) = booted {
            let _ = self.cleanup(ctx, &handle).await;
            return Err(e);
        }
        Ok(handle)
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
        let sock = g.socket();
        let sc = ctx.scenario;
        let dest_ip = dst.require_var("migration_ip")?;
        let uri = format!("tcp:{dest_ip}:{}", g.port);

        // Both sides: which post-copy this QEMU speaks, then capabilities/parameters.
        let caps_of = async |h: &HostEnd| -> Result<Option<PostcopyDialect>, DriverError> {
            let c = sock
                .call_ok(h, json!({"execute": "query-migrate-capabilities"}))
                .await?;
            Ok(PostcopyDialect::detect(&c))
        };
        let known = self
            .dialects
            .lock()
            .ok()
            .and_then(|d| d.get(&src.name).copied());
        let dialect = match known {
            Some(d) => d,
            None => {
                let d = caps_of(src).await?;
                if let Ok(mut all) = self.dialects.lock() {
                    all.insert(src.name.clone(), d);
                }
                d
            }
        };
        if sc.algorithm.kind != AlgorithmKind::Precopy && dialect.is_none() {
            return Err(DriverError::Host {
                host: src.name.clone(),
                message: "this QEMU has no post-copy (neither postcopy-ram nor x-postcopy-ram)"
                    .into(),
            });
        }
        // The two sides at once, one batch each (the destination's ends with
        // `migrate-incoming`): one round trip of ferry's overhead per run.
        let destination = self.configure(
            dst,
            &sock,
            capabilities(sc, dialect, false),
            parameters(sc, false),
            Some(json!({"execute": "migrate-incoming", "arguments": {"uri": uri}})),
        );
        let source = self.configure(
            src,
            &sock,
            capabilities(sc, dialect, true),
            parameters(sc, true),
            None,
        );
        let (d, s) = tokio::join!(destination, source);
        d?;
        s?;

        // Start; post-copy at once goes in the same batch.
        let mut cmds = vec![json!({"execute": "migrate", "arguments": {"uri": uri}})];
        let at_once = sc.algorithm.kind == AlgorithmKind::Postcopy;
        if at_once {
            cmds.push(json!({"execute": "migrate-start-postcopy"}));
        }
        row.migration_started_at = Some(clock::rfc3339(SystemTime::now()));
        let started = Instant::now();
        let answers = sock.execute(src, &cmds).await?;
        for (c, a) in cmds.iter().zip(&answers) {
            if let Err(e) = a {
                return Err(DriverError::Host {
                    host: src.name.clone(),
                    message: format!("QMP {}: {e}", c["execute"]),
                });
            }
        }
        let mut switch_transferred: Option<u64> = None;
        let mut last_transferred = 0u64;
        // When QEMU last sent a byte: a migration cancelled at its timeout after
        // sending nothing for STALLED did not fail to converge, its link is dead.
        let mut progressed_at = started;
        if at_once {
            row.postcopy_switch_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            switch_transferred = Some(0);
        }

        let interval = ctx.settings.sample_interval.max(Duration::from_millis(10));
        let mut next = started;
        let mut last_dirty: Option<f64> = None;
        let mut cancelled_for: Option<Outcome> = None;
        let mut last_with_ram: Option<Value> = None;
        let mut last_disk: Option<u64> = None;
        let last = loop {
            next += interval;
            tokio::time::sleep_until(next.into()).await;
            let info = sock
                .call_ok(src, json!({"execute": "query-migrate"}))
                .await?;
            let t_ms = started.elapsed().as_secs_f64() * 1000.0;
            let m = MigrateInfo(&info);
            samples.push(m.sample(t_ms));
            if let Some(r) = m.dirty_rate_mib_s().filter(|r| *r > 0.0) {
                last_dirty = Some(r);
            }
            if m.ended() {
                break info;
            }
            if info.get("ram").is_some() {
                last_with_ram = Some(info.clone());
            }
            // QEMU reports `disk` only while block migration is active.
            last_disk = info["disk"]["transferred"].as_u64().or(last_disk);
            let status = m.status().to_string();
            // Hybrid: switch after N complete pre-copy passes or T seconds. QEMU's
            // dirty-sync-count is 1 during the first pass (the sync that starts
            // it), so N passes are done once it exceeds N.
            if sc.algorithm.kind == AlgorithmKind::Hybrid
                && switch_transferred.is_none()
                && status == "active"
            {
                let rounds = m.sample(t_ms).dirty_sync_rounds.unwrap_or(0);
                let by_rounds = sc
                    .algorithm
                    .switch_after_rounds
                    .is_some_and(|n| rounds > u64::from(n));
                let by_time = sc
                    .algorithm
                    .switch_after_s
                    .is_some_and(|s| t_ms >= s * 1000.0);
                let default = sc.algorithm.switch_after_rounds.is_none()
                    && sc.algorithm.switch_after_s.is_none()
                    && rounds > 1;
                if by_rounds || by_time || default {
                    sock.call_ok(src, json!({"execute": "migrate-start-postcopy"}))
                        .await?;
                    row.postcopy_switch_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
                    switch_transferred = Some(m.transferred().unwrap_or(last_transferred));
                }
            }
            if m.transferred().is_some_and(|t| t > last_transferred) {
                progressed_at = Instant::now();
            }
            last_transferred = m.transferred().unwrap_or(last_transferred);
            let interrupted = ctx.interrupted.load(std::sync::atomic::Ordering::Relaxed);
            if cancelled_for.is_none()
                && (interrupted || started.elapsed() > ctx.settings.migration_timeout)
            {
                if status == "postcopy-active" || status == "postcopy-paused" {
                    // Post-copy cannot be cancelled: the guest already runs on the
                    // destination. Keep sampling until it ends.
                    if started.elapsed() > ctx.settings.migration_timeout * 2 {
                        row.outcome = Some(Outcome::Timeout);
                        row.error = Some(format!(
                            "post-copy still running {:?} after the migration started",
                            started.elapsed()
                        ));
                        break info;
                    }
                    continue;
                }
                sock.call_ok(src, json!({"execute": "migrate_cancel"}))
                    .await?;
                cancelled_for = Some(if interrupted {
                    Outcome::Interrupted
                } else if progressed_at.elapsed() >= STALLED {
                    row.error = Some(format!(
                        "the migration stalled: QEMU sent nothing for {:.1} s ({last_transferred} \
                         bytes sent, status {status}); is the migration link up? Cancelled after \
                         {:?}, the guest stays on the source",
                        progressed_at.elapsed().as_secs_f64(),
                        ctx.settings.migration_timeout
                    ));
                    Outcome::Failed
                } else {
                    Outcome::NotConverged
                });
            }
        };
        row.migration_wall_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
        // A cancelled migration ends with no figures: those of its last running
        // answer (bytes sent, rounds) are what it achieved.
        if last.get("ram").is_none()
            && let Some(running) = &last_with_ram
        {
            MigrateInfo(running).fill_row(row, switch_transferred, last_dirty);
        }
        let m = MigrateInfo(&last);
        m.fill_row(row, switch_transferred, last_dirty);
        // The final answer has no `disk`: the last one that had is what block
        // migration had sent by then (a lower bound: the rest goes at the end).
        row.disk_transferred_bytes = row.disk_transferred_bytes.or(last_disk);
        if row.outcome.is_none() {
            row.outcome = Some(match (m.status(), cancelled_for) {
                ("completed", _) => Outcome::Completed,
                ("cancelled", Some(o)) => {
                    row.error.get_or_insert_with(|| {
                        format!(
                            "pre-copy had not converged after {:?} (cancelled; the guest stays on the source)",
                            ctx.settings.migration_timeout
                        )
                    });
                    o
                }
                ("cancelled", None) => {
                    row.error.get_or_insert("cancelled by someone else".into());
                    Outcome::Failed
                }
                _ => Outcome::Failed,
            });
        }
        if row.outcome == Some(Outcome::Completed) {
            // The source says completed once it sent everything; the destination
            // still loads the last state before it runs the guest.
            let deadline = Instant::now() + ctx.settings.answer_timeout;
            loop {
                let status = sock
                    .call_ok(dst, json!({"execute": "query-status"}))
                    .await?;
                if status["status"] == "running" {
                    break;
                }
                if Instant::now() >= deadline {
                    row.outcome = Some(Outcome::Failed);
                    row.error = Some(format!(
                        "the migration completed but the guest on {} is still {} after {:?}",
                        dst.name, status["status"], ctx.settings.answer_timeout
                    ));
                    break;
                }
                tokio::time::sleep(interval).await;
            }
        }

        // The load the guest achieved, from both consoles.
        let read = async |h: &HostEnd| {
            h.sh(&format!("cat {} 2>/dev/null", g.serial()))
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
        let a = g
            .socket()
            .call(
                ctx.destination,
                json!({"execute": "announce-self", "arguments":
                    {"initial": 50, "max": 550, "rounds": 5, "step": 100}}),
            )
            .await?;
        match a {
            Ok(_) => Ok(true),
            Err(e) if e.class == "CommandNotFound" => Ok(false),
            Err(e) => Err(DriverError::Host {
                host: ctx.destination.name.clone(),
                message: format!("QMP announce-self: {e}"),
            }),
        }
    }

    async fn cleanup(
        &self,
        ctx: &RunContext<'_>,
        guest_handle: &GuestHandle,
    ) -> Result<(), DriverError> {
        let g = Self::guest_of(guest_handle)?;
        let one = async |h: &HostEnd, pid: Option<u32>, side: &str| -> Result<(), DriverError> {
            let _ = g.socket().call(h, json!({"execute": "quit"})).await;
            let kill = match pid {
                Some(p) => format!(
                    "i=0; while {running} && [ $i -lt 60 ]; do sleep 0.05; i=$((i+1)); done; \
                     if grep -q {dir} /proc/{p}/cmdline 2>/dev/null; then kill -9 {p}; fi; ",
                    running = running_test(p),
                    dir = sh_quote(&g.dir)
                ),
                None => String::new(),
            };
            // The console first (kept in the results), then QEMU's end: one round trip.
            let serial = h
                .sh_ok(
                    "stop QEMU and remove its tap",
                    &format!(
                        "cat {serial} 2>/dev/null; {kill}ip link del {tap} 2>/dev/null; rm -rf {dir}; true",
                        serial = g.serial(),
                        tap = g.tap,
                        dir = sh_quote(&g.dir)
                    ),
                )
                .await?;
            let crashed = (!serial.is_empty())
                .then(|| guest::keep_serial(&ctx.results_dir, ctx.index, side, serial.as_bytes()))
                .flatten();
            match crashed {
                Some(line) => Err(DriverError::GuestCrashed {
                    host: h.name.clone(),
                    line,
                }),
                None => Ok(()),
            }
        };
        let (a, b) = tokio::join!(
            one(ctx.source, g.source_pid, "source"),
            one(ctx.destination, g.destination_pid, "destination")
        );
        a.and(b)
    }
}
