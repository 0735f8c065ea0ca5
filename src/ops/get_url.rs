//! (Over 600 lines: one op whose URL rules, three download paths and check-mode prediction read together.)
//!
//! `get_url`: put a URL's content at `dest` on the host. Lab hosts have no
//! internet, so only two kinds of URL are taken: `file:///path` (a file on
//! the host, copied by the host) and `http://` to a lab-local address
//! (loopback, 10/8, 172.16/12, 192.168/16, link-local, or a name resolving
//! only to those). The host downloads with curl, wget or python3; a host with
//! none of them gets the file from the controller, which fetches it and sends
//! it. https and every other scheme, and any other address, are refused.
//!
//! Idempotence: an existing `dest` with the given `checksum:` is left alone
//! without downloading; without a checksum an existing file is kept unless
//! `force: yes`, and then the download replaces it only when it differs.
//! The download lands in a temp file beside `dest` and is renamed over it.

use crate::ops::check_state::CheckOverlay;
use std::net::IpAddr;
use std::time::Duration;

use super::attrs::{FileAttrs, ensure_attrs, plan_attrs, stat_result};
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_ok, sh_quote};
use crate::transport::{FileSpec, FileStat, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `get_url` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "get_url",
    flags: "",
    params: "url:str!; dest:path!; mode:mode; owner:str; group:str; force:bool; checksum:str; timeout:int; backup:bool",
    rules: "",
};

crate::ops::planned_op!(GetUrlOp, SPEC);

/// A URL get_url accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Url {
    /// `file:///path`: a path on the host.
    File(String),
    /// `http://host:port/path`.
    Http {
        host: String,
        port: u16,
        path: String,
    },
}

/// Why a `url:` is not one get_url takes (the text names the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

impl From<String> for UrlError {
    fn from(msg: String) -> Self {
        UrlError(msg)
    }
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!("`{url}` is not a URL (expected file:///path or http://host/path)")
        })?;
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(format!(
                        "`{url}`: a file:// URL names a path on the host itself (file:///path)"
                    )
                    .into());
                }
                Ok(Url::File(percent_decode(path)))
            }
            "http" => {
                let (authority, path) = match rest.find('/') {
                    Some(i) => (&rest[..i], &rest[i..]),
                    None => (rest, "/"),
                };
                let authority = authority.rsplit('@').next().unwrap_or(authority);
                let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
                    let (h, after) = v6
                        .split_once(']')
                        .ok_or_else(|| format!("`{url}`: bad IPv6 address"))?;
                    (h.to_string(), after.strip_prefix(':'))
                } else {
                    match authority.rsplit_once(':') {
                        Some((h, p)) => (h.to_string(), Some(p)),
                        None => (authority.to_string(), None),
                    }
                };
                let port = match port {
                    None | Some("") => 80,
                    Some(p) => p.parse().map_err(|_| format!("`{url}`: bad port `{p}`"))?,
                };
                if host.is_empty() {
                    return Err(format!("`{url}`: no host").into());
                }
                if let Ok(ip) = host.parse::<IpAddr>()
                    && !lab_local(ip)
                {
                    return Err(external(url).into());
                }
                Ok(Url::Http {
                    host,
                    port,
                    path: path.to_string(),
                })
            }
            other => Err(format!(
                "`{url}`: the {other}:// scheme is not supported; lab hosts have no internet, so \
                 get_url takes file:///path on the host or http:// to a lab-local address \
                 (serve the file inside the lab, or copy it with `copy:`)"
            )
            .into()),
        }
    }

    /// The last path component (the file name when `dest` is a directory).
    pub fn file_name(&self) -> String {
        let p = match self {
            Url::File(p) => p.as_str(),
            Url::Http { path, .. } => path.split(['?', '#']).next().unwrap_or(""),
        };
        percent_decode(p.rsplit('/').next().unwrap_or(""))
    }
}

fn external(url: &str) -> String {
    format!(
        "`{url}` is not a lab-local address; lab hosts have no internet, so get_url only \
         fetches from loopback or private (10/8, 172.16/12, 192.168/16) addresses"
    )
}

/// Loopback, private or link-local: an address inside the lab.
pub fn lab_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v) => v.is_loopback() || v.is_private() || v.is_link_local(),
        IpAddr::V6(v) => {
            v.is_loopback()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checksum algorithms `checksum:` takes (each checked on the host with `<algo>sum`).
const ALGOS: &[&str] = &["sha256", "sha1", "md5", "sha224", "sha384", "sha512"];

#[derive(Debug, Clone)]
pub struct Params {
    pub url: String,
    pub parsed: Url,
    pub dest: String,
    /// (algorithm, lowercase hex digest)
    pub checksum: Option<(String, String)>,
    pub force: bool,
    pub backup: bool,
    pub timeout: u64,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("get_url", args);
        let url = a.req_str("url")?;
        let checksum = match a.str("checksum")? {
            None => None,
            Some(c) if c.trim().is_empty() => None,
            Some(c) => {
                let (algo, sum) = c.split_once(':').ok_or_else(|| {
                    a.err(format!(
                        "checksum `{c}` must be written ALGORITHM:DIGEST, e.g. sha256:9f86d0..."
                    ))
                })?;
                let algo = algo.trim().to_ascii_lowercase();
                let sum = sum.trim().to_ascii_lowercase();
                if !ALGOS.contains(&algo.as_str()) {
                    return Err(a.err(format!(
                        "checksum algorithm `{algo}` is not supported (use one of {})",
                        ALGOS.join(", ")
                    )));
                }
                if sum.starts_with("http") || sum.starts_with("file") || sum.contains('/') {
                    return Err(a.err(
                        "a checksum given as a URL of a checksum file is not supported; give the digest",
                    ));
                }
                if sum.is_empty() || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(a.err(format!("checksum digest `{sum}` is not hexadecimal")));
                }
                Some((algo, sum))
            }
        };
        let p = Params {
            parsed: Url::parse(&url).map_err(|e| a.err(e.to_string()))?,
            url,
            dest: a.req_str("dest")?,
            checksum,
            force: a.bool_or("force", false)?,
            backup: a.bool_or("backup", false)?,
            timeout: a.u64("timeout")?.unwrap_or(10),
            attrs: FileAttrs::parse(&a)?,
        };
        a.finish()?;
        Ok(p)
    }
}

/// Why the controller could not GET a URL (the task fails with `Request failed: URL: ` and
/// this).
#[derive(Debug, thiserror::Error)]
pub enum HttpGetError {
    #[error("not an http:// URL")]
    NotHttp,
    #[error("resolving {host}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    /// Not in the lab: the text says why and what to do ([`external`]).
    #[error("{0}")]
    External(String),
    #[error("connecting to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no HTTP header in the answer")]
    NoHeader,
    #[error("HTTP Error {status}: {line}")]
    Status { status: String, line: String },
    #[error("timed out after {0}s")]
    Timeout(u64),
}

/// GET an http:// URL from the controller (for a host with no download tool).
/// Plain HTTP/1.0, so the server sends the body unchunked and closes.
pub async fn http_get(url: &Url, timeout: Duration) -> Result<Vec<u8>, HttpGetError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Url::Http { host, port, path } = url else {
        return Err(HttpGetError::NotHttp);
    };
    let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), *port))
        .await
        .map_err(|source| HttpGetError::Resolve {
            host: host.clone(),
            source,
        })?
        .collect();
    if addrs.is_empty() || !addrs.iter().all(|a| lab_local(a.ip())) {
        return Err(HttpGetError::External(external(&format!(
            "http://{host}:{port}{path}"
        ))));
    }
    let work = async {
        let mut s = tokio::net::TcpStream::connect(addrs.as_slice())
            .await
            .map_err(|source| HttpGetError::Connect {
                host: host.clone(),
                port: *port,
                source,
            })?;
        let req = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ferry\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        let split = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(HttpGetError::NoHeader)?;
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(HttpGetError::Status {
                status: status.to_string(),
                line: head.lines().next().unwrap_or("").to_string(),
            });
        }
        Ok(buf[split + 4..].to_vec())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpGetError::Timeout(timeout.as_secs()))?
}

/// `algo`'s digest of `data`, lowercase hex (the algorithms of [`ALGOS`]).
fn digest(algo: &str, data: &[u8]) -> Option<String> {
    use sha2::Digest;
    Some(match algo {
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        "sha1" => super::fetch::sha1_hex(data),
        "md5" => super::fetch::md5_hex(data),
        _ => return None,
    })
}

/// The digest of a host file with `algo` (sha256 comes with the stat).
async fn host_sum(
    t: &dyn Transport,
    path: &str,
    st: &FileStat,
    algo: &str,
) -> Result<Option<String>, OpError> {
    if algo == "sha256"
        && let Some(c) = &st.checksum
    {
        return Ok(Some(c.clone()));
    }
    // In a --check run the file may be one check mode would have written.
    if let Some(o) = t.check_overlay()
        && let crate::ops::check_state::OverlayRead::Content(c) = o.overlay_read(path)
    {
        return Ok(digest(algo, &c));
    }
    let out = sh(t, format!("{algo}sum -- {}", sh_quote(path))).await?;
    Ok((out.rc == 0).then(|| {
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }))
}

fn unchanged(path: &str, st: &FileStat, changed: bool, url: &str, msg: &str) -> OpOutcome {
    let mut r = OpOutcome::new(changed).msg(msg);
    stat_result(&mut r, path, st);
    r.set("dest", path);
    r.set("url", url);
    r.set("checksum_dest", serde_json::Value::Null);
    r
}

/// A host name in an http:// URL must resolve, on the host that downloads,
/// to lab-local addresses only (`getent ahosts`); IP literals were checked when parsing.
async fn check_name(t: &dyn Transport, p: &Params) -> Result<(), OpError> {
    let Url::Http { host, .. } = &p.parsed else {
        return Ok(());
    };
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let out = sh(
        t,
        format!("getent ahosts {} | cut -d' ' -f1 | sort -u", sh_quote(host)),
    )
    .await?;
    let addrs: Vec<IpAddr> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if addrs.is_empty() {
        return Err(OpError::failed(format!(
            "{}: the host cannot resolve `{host}`; give the lab address instead",
            p.url
        )));
    }
    if let Some(a) = addrs.iter().find(|a| !lab_local(**a)) {
        return Err(OpError::failed(format!(
            "{} (`{host}` resolves to {a})",
            external(&p.url)
        )));
    }
    Ok(())
}

/// What a get_url plan hands its apply.
pub enum Work {
    /// Fix the attributes of the file kept at `dest` (the command).
    Attrs { dest: String, cmd: String },
    /// Download to `dest` (in `dir`, named `base`), now `st`.
    Download {
        dest: String,
        dir: String,
        base: String,
        st: FileStat,
    },
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    check_name(t, p).await?;
    let dest_st = t.stat(&p.dest).await?;
    let (dest, st) = if dest_st.is_dir {
        let name = p.parsed.file_name();
        if name.is_empty() {
            return Err(OpError::failed(format!(
                "{}: no file name in the URL; give dest a file path",
                p.url
            )));
        }
        let d = format!("{}/{name}", p.dest.trim_end_matches('/'));
        let s = t.stat(&d).await?;
        (d, s)
    } else {
        (p.dest.clone(), dest_st)
    };
    if st.exists && !st.is_file {
        return Err(OpError::failed(format!("{dest} exists and is not a file")));
    }
    if st.exists {
        let keep = match &p.checksum {
            Some((algo, want)) => host_sum(t, &dest, &st, algo).await?.as_deref() == Some(want),
            None => !p.force,
        };
        if keep {
            let msg = "file already exists";
            return Ok(match plan_attrs(&dest, &st, &p.attrs)? {
                None => Plan::done(unchanged(&dest, &st, false, &p.url, msg)),
                Some((cmd, change)) => Plan::changes(
                    unchanged(&dest, &st, true, &p.url, msg),
                    vec![change],
                    Work::Attrs { dest, cmd },
                ),
            });
        }
    }
    let (dir, base) = match dest.rsplit_once('/') {
        Some((d, b)) => (
            if d.is_empty() {
                "/".to_string()
            } else {
                d.to_string()
            },
            b.to_string(),
        ),
        None => (".".to_string(), dest.clone()),
    };
    let ds = t.stat(&dir).await?;
    if !ds.is_dir {
        return Err(OpError::failed(format!(
            "Destination dir {dir} does not exist"
        )));
    }
    // What check mode reports; a real run reports what the download did.
    let (r, changes) = if let Url::File(src) = &p.parsed {
        let ss = t.stat(src).await?;
        if !ss.is_file && !ss.is_link {
            return Err(OpError::failed(format!(
                "Request failed: {}: no such file on the host",
                p.url
            )));
        }
        // The source is on the host: its checksum says exactly whether dest would change.
        let same = st.exists && ss.checksum.is_some() && ss.checksum == st.checksum;
        let (changed, changes) = if same {
            match plan_attrs(&dest, &st, &p.attrs)? {
                None => (false, Vec::new()),
                Some((_, change)) => (true, vec![change]),
            }
        } else {
            let mut changes = Vec::new();
            // In a --check run later tasks see the copy (read through the simulated
            // state): the plan reads it only then.
            if t.check_overlay().is_some() {
                let content = t.get_file(src).await?;
                if let Some((algo, want)) = &p.checksum
                    && let Some(got) = digest(algo, &content)
                    && got != *want
                {
                    return Err(OpError::failed(format!(
                        "The checksum for {dest} did not match {want}; it was {got}."
                    )));
                }
                let mode = p.attrs.wanted_mode(&FileStat {
                    mode: if st.exists { st.mode } else { 0o644 },
                    is_file: true,
                    exists: true,
                    ..FileStat::default()
                })?;
                changes.push(Change::AsGiven(FileSpec {
                    path: dest.clone(),
                    content,
                    mode: mode.or((!st.exists).then_some(0o644)),
                    owner: p.attrs.owner.clone(),
                    group: p.attrs.group.clone(),
                    become_: None,
                }));
            }
            (true, changes)
        };
        (
            unchanged(&dest, &st, changed, &p.url, "check mode"),
            changes,
        )
    } else {
        let mut r = unchanged(&dest, &st, true, &p.url, "check mode: would download");
        r.set("state", "file");
        (r, Vec::new())
    };
    let work = Work::Download {
        dest,
        dir,
        base,
        st,
    };
    Ok(Plan::changes(r, changes, work))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    _: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    let (dest, dir, base, st) = match work {
        Work::Attrs { dest, cmd } => {
            sh_ok(t, cmd, &format!("setting attributes of {dest}")).await?;
            let st = t.stat(&dest).await?;
            return Ok(unchanged(&dest, &st, true, &p.url, "file already exists"));
        }
        Work::Download {
            dest,
            dir,
            base,
            st,
        } => (dest, dir, base, st),
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // Downloaded to /tmp first, so an unchanged file leaves dest's directory
    // untouched; a changed one is copied beside dest and renamed over it.
    let tmp = format!("/tmp/.ferry-get_url.{base}.{nanos}");
    let qt = sh_quote(&tmp);
    let qf = sh_quote(&format!("{dir}/.ferry-get_url.{base}.{nanos}"));
    let qu = sh_quote(&p.url);
    let to = p.timeout.max(1);
    let download = match &p.parsed {
        Url::File(src) => format!("cp -- {} {qt}", sh_quote(src)),
        Url::Http { .. } => format!(
            "if command -v curl >/dev/null 2>&1; then curl -fsS --max-time {to} -o {qt} {qu}; \
             elif command -v wget >/dev/null 2>&1; then wget -q -T {to} -O {qt} {qu}; \
             elif command -v python3 >/dev/null 2>&1; then python3 -c 'import sys,urllib.request,shutil; \
             shutil.copyfileobj(urllib.request.urlopen(sys.argv[1], timeout={to}), open(sys.argv[2], \"wb\"))' {qu} {qt}; \
             else echo FERRY_NO_CLIENT; exit 3; fi"
        ),
    };
    let out = sh(t, download).await?;
    if out.rc != 0 {
        let _ = sh(t, format!("rm -f {qt}")).await;
        if String::from_utf8_lossy(&out.stdout).contains("FERRY_NO_CLIENT") {
            // No curl, wget or python3 on the host: the controller fetches and sends.
            let data = http_get(&p.parsed, Duration::from_secs(to))
                .await
                .map_err(|e| OpError::failed(format!("Request failed: {}: {e}", p.url)))?;
            t.put_file(&FileSpec {
                path: tmp.clone(),
                content: data,
                mode: Some(0o600),
                ..FileSpec::default()
            })
            .await?;
        } else {
            return Err(OpError::command(format!("Request failed: {}", p.url), &out));
        }
    }
    // Verify, then keep the old file when equal, else rename the download over it.
    let qd = sh_quote(&dest);
    let verify = match &p.checksum {
        Some((algo, want)) => format!(
            "got=$({algo}sum < {qt} | cut -d' ' -f1); if [ \"$got\" != {want} ]; then rm -f {qt}; \
             echo \"The checksum for {dest} did not match {want}; it was $got.\" >&2; exit 4; fi; "
        ),
        None => String::new(),
    };
    let new_mode = match p.attrs.wanted_mode(&FileStat {
        mode: if st.exists { st.mode } else { 0o644 },
        is_file: true,
        exists: true,
        ..FileStat::default()
    })? {
        Some(m) => format!("chmod {m:o} {qf}"),
        None if st.exists => format!("chmod --reference={qd} {qf} && chown --reference={qd} {qf}"),
        None => format!("chmod 644 {qf}"),
    };
    let backup = if p.backup && st.exists {
        format!("b={qd}.$$.$(date +%Y-%m-%d@%H:%M:%S)~; cp -p {qd} \"$b\" && echo \"BACKUP $b\"; ")
    } else {
        String::new()
    };
    let cmd = format!(
        "{verify}echo SUM $(sha1sum < {qt} | cut -d' ' -f1) $(md5sum < {qt} | cut -d' ' -f1) $(wc -c < {qt}); \
         if [ -f {qd} ] && cmp -s {qt} {qd}; then rm -f {qt}; echo SAME; \
         else {backup}cp -- {qt} {qf} && rm -f {qt} && {new_mode} && {{ sync {qf} 2>/dev/null; true; }} && mv -f {qf} {qd} && echo NEW \
         || {{ rc=$?; rm -f {qt} {qf}; exit $rc; }}; fi"
    );
    let out = sh(t, cmd).await?;
    if out.rc != 0 {
        let _ = sh(t, format!("rm -f {qt}")).await;
        return Err(OpError::command(
            format!("get_url {} -> {dest}", p.url),
            &out,
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let new = text.lines().any(|l| l == "NEW");
    let mut sums = text
        .lines()
        .find_map(|l| l.strip_prefix("SUM "))
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string);
    let (sha1, md5, size) = (sums.next(), sums.next(), sums.next());
    let st2 = t.stat(&dest).await?;
    let attrs_changed = ensure_attrs(t, &dest, &st2, &p.attrs).await?;
    let st3 = if attrs_changed {
        t.stat(&dest).await?
    } else {
        st2
    };
    let mut r = OpOutcome::new(new || attrs_changed)
        .msg(format!("OK ({} bytes)", size.clone().unwrap_or_default()));
    stat_result(&mut r, &dest, &st3);
    r.set("dest", dest.clone());
    r.set("url", p.url.clone());
    r.set("status_code", 200);
    r.set("checksum_src", sha1.clone().unwrap_or_default());
    r.set("checksum_dest", sha1.unwrap_or_default());
    r.set("md5sum", md5.unwrap_or_default());
    if let Some(b) = text.lines().find_map(|l| l.strip_prefix("BACKUP ")) {
        r.set("backup_file", b.to_string());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Params, OpError> {
        Params::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("file:///srv/a%20b.txt").unwrap(),
            Url::File("/srv/a b.txt".into())
        );
        assert_eq!(
            Url::parse("http://10.77.0.1:8000/x/y.tgz?z=1").unwrap(),
            Url::Http {
                host: "10.77.0.1".into(),
                port: 8000,
                path: "/x/y.tgz?z=1".into()
            }
        );
        assert_eq!(
            Url::parse("http://10.77.0.1:8000/x/y.tgz?z=1")
                .unwrap()
                .file_name(),
            "y.tgz"
        );
        assert!(Url::parse("http://[::1]/a").is_ok());
        let e = Url::parse("https://example.com/a").unwrap_err().to_string();
        assert!(e.contains("https://") && e.contains("not supported"), "{e}");
        let e = Url::parse("http://8.8.8.8/a").unwrap_err().to_string();
        assert!(e.contains("not a lab-local address"), "{e}");
        assert!(Url::parse("ftp://10.0.0.1/a").is_err());
        assert!(Url::parse("file://relative").is_err());
    }

    #[test]
    fn params() {
        assert!(
            parse(json!({"url": "file:///a", "dest": "/b", "checksum": "sha256:abc1"})).is_ok()
        );
        assert!(
            parse(json!({"url": "file:///a", "dest": "/b", "checksum": "crc32:abc"}))
                .unwrap_err()
                .to_string()
                .contains("crc32")
        );
        assert!(parse(json!({"url": "file:///a", "dest": "/b", "headers": {}})).is_err());
    }
}
