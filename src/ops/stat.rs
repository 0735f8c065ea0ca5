//! `stat`: facts about a path (never changes anything).

use serde_json::{Map, Value, json};

use super::{Args, OpContext, OpError, OpOutcome, sh, sh_quote};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `stat` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "stat",
    flags: "",
    params: "path:path!/dest,name; follow:bool; get_checksum:bool; checksum_algorithm:str/checksum,checksum_algo=sha1,sha256,md5",
    rules: "",
};

crate::ops::host_op!(StatOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub path: String,
    pub follow: bool,
    pub get_checksum: bool,
    /// sha1 (Ansible's default), sha256, md5.
    pub checksum_algorithm: String,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("stat", args);
        let p = Params {
            path: a.req_str("path")?,
            follow: a.bool_or("follow", false)?,
            get_checksum: a.bool_or("get_checksum", true)?,
            checksum_algorithm: a.choice("checksum_algorithm", "sha1")?,
        };
        a.finish()?;
        Ok(p)
    }
}

pub async fn run(
    t: &dyn Transport,
    p: &Params,
    _env: &OpContext<'_>,
) -> Result<OpOutcome, OpError> {
    let mut path = p.path.clone();
    let mut st = t.stat(&path).await?;
    let mut lnk_target = st.link_target.clone();
    if p.follow && st.is_link {
        let out = sh(t, format!("readlink -f -- {}", sh_quote(&path))).await?;
        let real = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.rc == 0 && !real.is_empty() {
            lnk_target = Some(real.clone());
            path = real;
            st = t.stat(&path).await?;
        }
    }
    let mut m = Map::new();
    m.insert("exists".into(), json!(st.exists || st.is_link));
    if st.exists || st.is_link {
        let mode = st.mode & 0o7777;
        m.insert("path".into(), json!(p.path));
        m.insert("mode".into(), json!(format!("{mode:04o}")));
        m.insert("isdir".into(), json!(st.is_dir));
        m.insert("isreg".into(), json!(st.is_file));
        m.insert("islnk".into(), json!(st.is_link));
        m.insert("uid".into(), json!(st.uid));
        m.insert("gid".into(), json!(st.gid));
        m.insert("pw_name".into(), json!(st.owner));
        m.insert("gr_name".into(), json!(st.group));
        m.insert("size".into(), json!(st.size));
        m.insert("mtime".into(), json!(st.mtime));
        for (k, bit) in [
            ("rusr", 0o400),
            ("wusr", 0o200),
            ("xusr", 0o100),
            ("rgrp", 0o40),
            ("wgrp", 0o20),
            ("xgrp", 0o10),
            ("roth", 4),
            ("woth", 2),
            ("xoth", 1),
        ] {
            m.insert(k.into(), json!(mode & bit != 0));
        }
        m.insert("executable".into(), json!(mode & 0o111 != 0));
        if (st.is_link || p.follow)
            && let Some(l) = &lnk_target
        {
            m.insert("lnk_source".into(), json!(l));
            m.insert("lnk_target".into(), json!(l));
        }
        if p.get_checksum && st.is_file {
            let sum = if p.checksum_algorithm == "sha256" {
                st.checksum.clone()
            } else {
                let tool = format!("{}sum", p.checksum_algorithm);
                let out = sh(t, format!("{tool} -- {}", sh_quote(&path))).await?;
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            };
            if let Some(s) = sum {
                m.insert("checksum".into(), json!(s));
            }
        }
    }
    Ok(OpOutcome::new(false).with("stat", Value::Object(m)))
}
