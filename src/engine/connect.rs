//! Reaching hosts: the [`Connector`] that opens a host's transport, one cached connection
//! per host, and the transports the engine wraps around it (none needed, -vvv tracing).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::transport::local::LocalTransport;
use crate::transport::{
    CommandOutput, CommandSpec, FileRead, FileSpec, FileStat, Transport, TransportError,
};
use crate::vars::Vars;

use super::{Engine, Event, EventKind, EventSink};

/// A connection being opened.
pub type ConnectFuture =
    Pin<Box<dyn Future<Output = Result<Arc<dyn Transport>, TransportError>> + Send>>;

/// Opens a host's transport from its name and variables (the command layer's is
/// `transport::connect(&ConnectParams::from_host_vars(name, vars, defaults))`).
pub trait Connector: Send + Sync {
    fn connect(&self, host: &str, vars: &Vars) -> ConnectFuture;
}

impl<F> Connector for F
where
    F: Fn(&str, &Vars) -> ConnectFuture + Send + Sync,
{
    fn connect(&self, host: &str, vars: &Vars) -> ConnectFuture {
        self(host, vars)
    }
}

/// Connects every host with [`LocalTransport`] (`ansible_connection: local`).
pub fn local_connector() -> Arc<dyn Connector> {
    Arc::new(|host: &str, _vars: &Vars| -> ConnectFuture {
        let t: Arc<dyn Transport> = Arc::new(LocalTransport::new(host));
        Box::pin(async move { Ok(t) })
    })
}

/// Stands in for a transport where an op needs none.
pub(super) struct NoTransport(pub(super) String);

#[async_trait]
impl Transport for NoTransport {
    fn host(&self) -> &str {
        &self.0
    }
    async fn run(&self, _: &CommandSpec) -> Result<CommandOutput, TransportError> {
        Err(self.err())
    }
    async fn put_file(&self, _: &FileSpec) -> Result<(), TransportError> {
        Err(self.err())
    }
    async fn get_file(&self, _: &str) -> Result<Vec<u8>, TransportError> {
        Err(self.err())
    }
    async fn stat(&self, _: &str) -> Result<FileStat, TransportError> {
        Err(self.err())
    }
    async fn close(&self) {}
}

impl NoTransport {
    fn err(&self) -> TransportError {
        TransportError::Other {
            host: self.0.clone(),
            reason: "this op declared it needs no connection".into(),
        }
    }
}

/// Reports every command sent (-vvv) before passing it on.
pub(super) struct Traced {
    pub(super) inner: Arc<dyn Transport>,
    pub(super) sink: Arc<dyn EventSink>,
    pub(super) hide: bool,
    /// Values of the task's variables named like secrets, masked in the
    /// commands shown (see [`secret_values`]).
    pub(super) secrets: Vec<String>,
}

/// The string values of variables whose names say they are secret
/// (`password`, `passwd`, `secret`, `token`, `key`, any case, anywhere in the
/// name), longest first so a value inside another is masked whole. Values
/// shorter than 4 characters are left (masking every `1` would hide the
/// command); a `*_file` or `*_path` variable names a file, not a secret.
pub(crate) fn secret_values(vars: &Vars) -> Vec<String> {
    let mut out: Vec<String> = vars
        .iter()
        .filter(|(name, _)| {
            let n = name.to_ascii_lowercase();
            ["password", "passwd", "secret", "token", "key"]
                .iter()
                .any(|w| n.contains(w))
                && !n.ends_with("_file")
                && !n.ends_with("_path")
        })
        .filter_map(|(_, v)| match v {
            serde_json::Value::String(s) if s.chars().count() >= 4 && !s.contains("{{") => {
                Some(s.clone())
            }
            serde_json::Value::Number(n) if n.to_string().len() >= 4 => Some(n.to_string()),
            _ => None,
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every secret value replaced by `********`.
pub(crate) fn mask_secrets(text: &str, secrets: &[String]) -> String {
    let mut t = text.to_string();
    for s in secrets {
        if t.contains(s.as_str()) {
            t = t.replace(s.as_str(), "********");
        }
    }
    t
}

#[async_trait]
impl Transport for Traced {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        let cmd = if self.hide {
            "[hidden: no_log]".to_string()
        } else {
            mask_secrets(&spec.cmd, &self.secrets)
        };
        self.sink.emit(&Event::now(EventKind::Command {
            host: self.inner.host().to_string(),
            cmd,
        }));
        self.inner.run(spec).await
    }
    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        self.inner.put_file(spec).await
    }
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        self.inner.get_file(path).await
    }
    async fn stat(&self, path: &str) -> Result<FileStat, TransportError> {
        self.inner.stat(path).await
    }
    // The one-round-trip calls go through as they are: the trait's defaults
    // would do each in two or three round trips.
    async fn exists(&self, path: &str) -> Result<bool, TransportError> {
        self.inner.exists(path).await
    }
    async fn stat_read(&self, path: &str) -> Result<FileRead, TransportError> {
        self.inner.stat_read(path).await
    }
    async fn create_file(&self, spec: &FileSpec) -> Result<Option<FileStat>, TransportError> {
        self.inner.create_file(spec).await
    }
    async fn make_dirs(&self, path: &str) -> Result<CommandOutput, TransportError> {
        self.sink.emit(&Event::now(EventKind::Command {
            host: self.inner.host().to_string(),
            cmd: if self.hide {
                "[hidden: no_log]".to_string()
            } else {
                mask_secrets(
                    &crate::transport::make_dirs_command(path).cmd,
                    &self.secrets,
                )
            },
        }));
        self.inner.make_dirs(path).await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

/// One host's connection, opened once on first use and shared by its tasks (and so is
/// the error when it cannot be opened).
pub(super) type ConnCell = Arc<OnceCell<Result<Arc<dyn Transport>, Arc<TransportError>>>>;

impl Engine {
    pub(super) async fn transport_for(
        &self,
        host: &str,
    ) -> Result<Arc<dyn Transport>, Arc<TransportError>> {
        let cell = self
            .conns
            .lock()
            .unwrap()
            .entry(host.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let vars = self.hosts.host_vars(host);
            self.connector.connect(host, &vars).await.map_err(Arc::new)
        })
        .await
        .clone()
    }
}
