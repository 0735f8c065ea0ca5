//! The load program (guest/load.c, static) as a process on a host, started and
//! stopped over the host's transport; its per-second reports go to a log there and
//! are read back as the guest's serial log is.
//!
//! Two uses, one model:
//! - the sender of an inbound network load (`network: {direction: in}`): on the
//!   prober, `GUEST_DIR/load -n GUEST_IP:9,MBIT` (the guest role copies the
//!   program to `guest_dir`); the lab guest counts what arrives (`ferry.netin=9`).
//!   It starts before the guest boots (sending into the void until the guest is
//!   up) and stops when the run ends; its mean report is `load_achieved.sender`.
//! - the load of a full guest (a host of the inventory's `guests` group, e.g. a
//!   cloud image reached through its compute node): `playbooks/guest_load.yml`
//!   installs the program as [`FULL_GUEST_LOAD`], and [`LoadProcess::start`] runs it
//!   with the scenario's load ([`guest::load_parts`], the same options the lab
//!   guest's init passes).

use serde_json::{Map, Value};

use super::driver::host_command::running_test;
use super::driver::{DriverError, HostEnd};
use super::guest::{self, LoadPart, NETWORK_LOAD_PORT};
use crate::transport::remote::sh_quote;

/// Where `playbooks/guest_load.yml` installs the load program on a full guest.
pub const FULL_GUEST_LOAD: &str = "/usr/local/bin/ferry-load";

/// The options of an inbound stream's sender: `rate_mbit` Mbit/s to the guest.
pub fn sender_args(guest_ip: &str, rate_mbit: f64) -> Vec<String> {
    vec![
        "-n".into(),
        format!("{guest_ip}:{NETWORK_LOAD_PORT},{rate_mbit}"),
    ]
}

/// A load's parts as the program's options.
pub fn args_of(parts: &[LoadPart]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| [p.option.to_string(), p.value.clone()])
        .collect()
}

/// The shell line that starts `program ARGS` in the background, its output in
/// `log`, and prints its PID.
pub fn start_command(program: &str, args: &[String], log: &str) -> String {
    let args: String = args.iter().map(|a| format!(" {}", sh_quote(a))).collect();
    format!(
        "test -x {p} || {{ echo \"no load program at {p}: put it there with playbooks/guest.yml \
         (guest_dir/load) or playbooks/guest_load.yml ({FULL_GUEST_LOAD})\" >&2; exit 1; }}; \
         mkdir -p /var/tmp/ferry-exp; setsid {p}{args} >{log} 2>&1 </dev/null & echo $!",
        p = sh_quote(program),
        log = sh_quote(log),
    )
}

/// The shell line that stops it (SIGTERM; a zombie counts as gone), prints its log
/// and removes it.
pub fn stop_command(pid: u32, log: &str) -> String {
    format!(
        "if grep -q load /proc/{pid}/cmdline 2>/dev/null; then kill {pid}; fi; \
         i=0; while {running} && [ $i -lt 20 ]; do sleep 0.05; i=$((i+1)); done; \
         cat {log} 2>/dev/null; rm -f {log}",
        running = running_test(pid),
        log = sh_quote(log)
    )
}

/// The load program running on a host.
pub struct LoadProcess<'a> {
    host: &'a HostEnd,
    pid: u32,
    log_path: String,
}

impl<'a> LoadProcess<'a> {
    /// Start `program ARGS` on `host`; `tag` names its log.
    pub async fn start(
        host: &'a HostEnd,
        program: &str,
        args: &[String],
        tag: &str,
    ) -> Result<LoadProcess<'a>, DriverError> {
        let log_path = format!("/var/tmp/ferry-exp/load-{tag}.log");
        let out = host
            .sh_ok(
                "start the load program",
                &start_command(program, args, &log_path),
            )
            .await?;
        let pid = out.trim().parse().map_err(|_| DriverError::Host {
            host: host.name.clone(),
            message: format!("the load program printed no PID: {out}"),
        })?;
        Ok(LoadProcess {
            host,
            pid,
            log_path,
        })
    }

    /// The reports it has printed so far.
    pub async fn reports(&self) -> Result<Vec<Map<String, Value>>, DriverError> {
        let log = self
            .host
            .sh_ok(
                "read the load program's reports",
                &format!("cat {} 2>/dev/null; true", sh_quote(&self.log_path)),
            )
            .await?;
        Ok(guest::load_reports(&log))
    }

    /// Stop it; the mean of its reports, if it made any.
    pub async fn stop(self) -> Result<Option<Map<String, Value>>, DriverError> {
        let log = self
            .host
            .sh_ok(
                "stop the load program",
                &stop_command(self.pid, &self.log_path),
            )
            .await?;
        Ok(guest::mean_load(&guest::load_reports(&log)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::scenario::{Load, MemoryLoad};

    #[test]
    fn the_sender_and_a_full_guests_load_are_the_load_program_in_the_background() {
        let c = start_command(
            "/var/lib/ferry/guest/load",
            &sender_args("10.0.3.200", 20.0),
            "/var/tmp/ferry-exp/load-1.log",
        );
        assert!(
            c.contains(
                "setsid '/var/lib/ferry/guest/load' '-n' '10.0.3.200:9,20' >'/var/tmp/ferry-exp/load-1.log' 2>&1 </dev/null & echo $!"
            ),
            "{c}"
        );
        assert!(
            c.starts_with("test -x '/var/lib/ferry/guest/load' ||"),
            "{c}"
        );
        let load = Load {
            memory: Some(MemoryLoad {
                working_set_mib: 8,
                rate_mib_s: Some(4.0),
            }),
            cpu_threads: Some(1),
            ..Load::default()
        };
        let parts = guest::load_parts(&load, None, None).unwrap();
        assert_eq!(args_of(&parts), ["-m", "8,4", "-c", "1"]);
        let stop = stop_command(42, "/var/tmp/ferry-exp/load-1.log");
        assert!(stop.contains("then kill 42; fi;"), "{stop}");
        assert!(stop.contains("grep -q . /proc/42/cmdline"), "{stop}");
        assert!(
            stop.ends_with("cat '/var/tmp/ferry-exp/load-1.log' 2>/dev/null; rm -f '/var/tmp/ferry-exp/load-1.log'"),
            "{stop}"
        );
    }
}
