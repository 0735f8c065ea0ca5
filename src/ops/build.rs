//! `build` (ferry-specific): `configure && make && make install` in a source
//! tree on the host, skipped when a marker file on the host records that
//! this very commit was built with these flags. Planned: the identity probe
//! and the marker are the plan, the build is the apply.

use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::ops::check_state::CheckOverlay;
use crate::transport::{CommandSpec, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `build` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "build",
    flags: "",
    params: "src:path!/chdir; configure_flags:list; make_target:str; prefix:path; jobs:int; marker:path",
    rules: "",
};

crate::ops::planned_op!(BuildOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    /// The source tree on the host.
    pub src: String,
    pub configure_flags: Vec<String>,
    /// Target for the build step (default: make's default target).
    pub make_target: Option<String>,
    pub prefix: String,
    /// Where the record of the last build lives (default SRC/.ferry-build).
    pub marker: String,
    /// `make -jN` (default: the host's CPU count).
    pub jobs: Option<u64>,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("build", args);
        let src = a.req_str("src")?;
        let configure_flags = match a.value("configure_flags")? {
            None => Vec::new(),
            Some(serde_json::Value::String(s)) => {
                s.split_whitespace().map(str::to_string).collect()
            }
            Some(_) => a.list("configure_flags")?.unwrap_or_default(),
        };
        let p = Params {
            marker: a
                .str("marker")?
                .unwrap_or_else(|| format!("{}/.ferry-build", src.trim_end_matches('/'))),
            src,
            configure_flags,
            make_target: a.str("make_target")?,
            prefix: a.str("prefix")?.unwrap_or_else(|| "/usr/local".into()),
            jobs: a.u64("jobs")?,
        };
        a.finish()?;
        Ok(p)
    }

    /// The marker's content for a build of `commit`.
    pub fn record(&self, commit: &str) -> String {
        format!(
            "commit={commit}\nconfigure_flags={}\nprefix={}\nmake_target={}\n",
            self.configure_flags.join(" "),
            self.prefix,
            self.make_target.as_deref().unwrap_or("")
        )
    }
}

/// Shell printing the tree's identity: its git commit (with `+dirty` and a
/// hash of the diff when modified), else a hash of its file list.
fn identity(p: &Params) -> String {
    let s = sh_quote(&p.src);
    let m = sh_quote(&p.marker);
    format!(
        "cd {s} || exit 3; if git rev-parse HEAD >/dev/null 2>&1; then c=$(git rev-parse HEAD); \
         d=$(git --no-optional-locks status --porcelain --untracked-files=no | head -c1); \
         if [ -n \"$d\" ]; then c=\"$c+dirty-$(git diff HEAD | sha256sum | cut -c1-16)\"; fi; echo \"$c\"; \
         else echo \"tree-$(find . -type f ! -path ./{base} -printf '%P %s %T@\\n' | sort | sha256sum | cut -c1-32)\"; fi; \
         echo ---; cat {m} 2>/dev/null; true",
        base = p.marker.rsplit('/').next().unwrap_or("")
    )
}

/// What the apply does: the build command, and the commit it builds.
pub struct Work {
    cmd: String,
    commit: String,
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let out = sh(t, identity(p)).await?;
    if out.rc == 3 {
        // Check mode (the simulated host is there only then): an earlier task (git,
        // copy, unarchive) would make the tree. It is not on the host, so there is
        // nothing a run could apply.
        if t.check_overlay().is_some_and(|o| o.would_exist(&p.src)) {
            let mut r = OpOutcome::new(true).with("marker", p.marker.clone());
            r.msg = Some(format!(
                "{} would be made by an earlier task: would build",
                p.src
            ));
            return Ok(Plan::done(r));
        }
        return Err(OpError::failed(format!(
            "source tree {} does not exist on the host",
            p.src
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (commit, marker) = text.split_once("---\n").unwrap_or((&text, ""));
    let commit = commit.trim();
    let want = p.record(commit);
    let r = OpOutcome::new(marker != want)
        .with("commit", commit.to_string())
        .with("marker", p.marker.clone());
    if !r.changed {
        return Ok(Plan::done(r));
    }
    let mut flags = vec![format!("--prefix={}", sh_quote(&p.prefix))];
    flags.extend(p.configure_flags.iter().map(|f| sh_quote(f)));
    let jobs = p
        .jobs
        .map(|j| j.to_string())
        .unwrap_or_else(|| "$(nproc)".into());
    let target = p.make_target.as_deref().map(sh_quote).unwrap_or_default();
    let cmd = format!(
        "set -e; cd {}; ./configure {}; make -j{jobs} {target}; make install; printf '%s' {} > {}",
        sh_quote(&p.src),
        flags.join(" "),
        sh_quote(&want),
        sh_quote(&p.marker)
    );
    let change = Change::Host(format!("build of {} (commit {commit})", p.src));
    let work = Work {
        cmd,
        commit: commit.to_string(),
    };
    Ok(Plan::changes(r, vec![change], work))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    mut r: OpOutcome,
    Work { cmd, commit }: Work,
) -> Result<OpOutcome, OpError> {
    let out = t
        .run(&CommandSpec {
            timeout: Some(std::time::Duration::from_secs(6 * 3600)),
            ..CommandSpec::new(cmd)
        })
        .await?;
    if out.rc != 0 {
        return Err(OpError::command(format!("building {}", p.src), &out));
    }
    r.set("stdout", String::from_utf8_lossy(&out.stdout).into_owned());
    r.msg = Some(format!("built {commit}"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_and_record() {
        let p = Params::parse(&serde_json::from_value(json!({"src": "/s/qemu/", "configure_flags": "--enable-kvm --target-list=x86_64-softmmu"})).unwrap()).unwrap();
        assert_eq!(p.marker, "/s/qemu/.ferry-build");
        assert_eq!(
            p.record("abc"),
            "commit=abc\nconfigure_flags=--enable-kvm --target-list=x86_64-softmmu\nprefix=/usr/local\nmake_target=\n"
        );
        let q = Params::parse(
            &serde_json::from_value(json!({"src": "/s", "configure_flags": ["--a", "--b"]}))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(q.configure_flags, vec!["--a", "--b"]);
    }

    /// `ferry check` accepts what the op takes (the schema and the parser agree).
    #[test]
    fn schema_matches_params() {
        let args: Vars = serde_json::from_value(json!({
            "src": "/s", "configure_flags": ["--a"], "make_target": "all",
            "prefix": "/opt/q", "marker": "/opt/q/.m", "jobs": 2
        }))
        .unwrap();
        let schema = crate::ops::registry::schema("build").unwrap();
        assert_eq!(schema.validate(&args), vec![]);
        let p = Params::parse(&args).unwrap();
        assert_eq!((p.prefix.as_str(), p.jobs), ("/opt/q", Some(2)));
        for name in schema.params.iter().map(|p| p.name) {
            assert!(
                args.contains_key(name),
                "schema declares `{name}` the test does not try"
            );
        }
        let chdir: Vars = serde_json::from_value(json!({"chdir": "/s"})).unwrap();
        assert_eq!(schema.validate(&chdir), vec![]);
    }
}
