//! The inbound network load (`network: {direction: in}`): the load program
//! (guest/load.c, which the guest role also copies to `guest_dir/load` on the hosts)
//! runs on the prober as the sender, `load -n GUEST_IP:9,MBIT`, and the guest counts
//! what arrives (`ferry.netin=9`, reported as its `net_mbit_s`). The sender starts
//! before the guest boots (it sends into the void until the guest is up) and stops
//! when the run ends; its own reports say what it offered (`load_achieved.sender`).

use serde_json::{Map, Value};

use super::driver::{DriverError, HostEnd};
use super::guest::{self, NETWORK_LOAD_PORT};
use crate::transport::remote::sh_quote;

/// The shell line that starts the sender in the background and prints its PID.
pub fn sender_command(load: &str, guest_ip: &str, rate_mbit: f64, log: &str) -> String {
    format!(
        "test -x {load} || {{ echo 'no load program at {load}: put it there with playbooks/guest.yml \
         (the guest role copies it to guest_dir)' >&2; exit 1; }}; \
         mkdir -p /var/tmp/ferry-exp; setsid {load} -n {to} >{log} 2>&1 </dev/null & echo $!",
        load = sh_quote(load),
        to = sh_quote(&format!("{guest_ip}:{NETWORK_LOAD_PORT},{rate_mbit}")),
        log = sh_quote(log),
    )
}

/// A sender running on the prober.
pub struct InboundStream<'a> {
    host: &'a HostEnd,
    pid: u32,
    log_path: String,
}

impl<'a> InboundStream<'a> {
    /// Start streaming `rate_mbit` Mbit/s from `host` to `guest_ip`, with the load
    /// program in `guest_dir`.
    pub async fn start(
        host: &'a HostEnd,
        guest_dir: &str,
        guest_ip: &str,
        rate_mbit: f64,
        tag: &str,
    ) -> Result<InboundStream<'a>, DriverError> {
        let load = format!("{}/load", guest_dir.trim_end_matches('/'));
        let log_path = format!("/var/tmp/ferry-exp/stream-{tag}.log");
        let out = host
            .sh_ok(
                "start the inbound network load's sender",
                &sender_command(&load, guest_ip, rate_mbit, &log_path),
            )
            .await?;
        let pid = out.trim().parse().map_err(|_| DriverError::Host {
            host: host.name.clone(),
            message: format!("the inbound stream's sender printed no PID: {out}"),
        })?;
        Ok(InboundStream {
            host,
            pid,
            log_path,
        })
    }

    /// Stop the sender; the mean of its reports (what it offered), if it made any.
    pub async fn stop(self) -> Result<Option<Map<String, Value>>, DriverError> {
        let log = self
            .host
            .sh_ok(
                "stop the inbound network load's sender",
                &format!(
                    "kill {pid} 2>/dev/null; cat {log} 2>/dev/null; rm -f {log}",
                    pid = self.pid,
                    log = sh_quote(&self.log_path)
                ),
            )
            .await?;
        Ok(guest::mean_load(&guest::load_reports(&log)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sender_is_the_load_program_streaming_to_the_guest() {
        let c = sender_command(
            "/var/lib/ferry/guest/load",
            "10.0.3.200",
            20.0,
            "/var/tmp/ferry-exp/stream-1.log",
        );
        assert!(
            c.contains(
                "setsid '/var/lib/ferry/guest/load' -n '10.0.3.200:9,20' >'/var/tmp/ferry-exp/stream-1.log'"
            ),
            "{c}"
        );
        assert!(
            c.starts_with("test -x '/var/lib/ferry/guest/load' ||"),
            "{c}"
        );
        assert!(c.ends_with("& echo $!"), "{c}");
    }
}
