//! (Over 600 lines: one op whose freeze, pip command and check-mode prediction of the
//! environment read together.)
//!
//! `pip`: Python packages by name or requirements file, optionally into a
//! `virtualenv` (created first when missing, with `virtualenv_command`;
//! default `python3 -m venv`). Idempotence from one `pip freeze` of the
//! target environment: names already installed (at the asked `==` version)
//! are not installed again; with `requirements` (or `latest`) pip runs and the
//! task is changed when the freeze before and after differ. Lab hosts have no
//! internet: install from a local wheel directory with
//! `extra_args: --no-index --find-links DIR`.

use crate::ops::check_state::CheckOverlay;
use std::collections::BTreeMap;

use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh_quote};
use crate::transport::{CommandSpec, Transport};
use crate::vars::Vars;

use super::schema::Spec;

/// What `pip` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "pip",
    flags: "",
    params: "name:list; requirements:path; virtualenv:path; virtualenv_command:str; virtualenv_site_packages:bool; state:str=present,absent,latest,forcereinstall; version:str; extra_args:str; chdir:path; executable:path",
    rules: "one:name|requirements virtualenv|executable",
};

crate::ops::planned_op!(PipOp, SPEC);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Latest,
    ForceReinstall,
}

#[derive(Debug, Clone)]
pub struct Params {
    pub names: Vec<String>,
    pub version: Option<String>,
    pub requirements: Option<String>,
    pub virtualenv: Option<String>,
    pub virtualenv_command: String,
    pub virtualenv_site_packages: bool,
    pub state: State,
    pub extra_args: Option<String>,
    pub chdir: Option<String>,
    pub executable: Option<String>,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("pip", args);
        let state = match a.choice("state", "present")?.as_str() {
            "absent" => State::Absent,
            "latest" => State::Latest,
            "forcereinstall" => State::ForceReinstall,
            _ => State::Present,
        };
        let p = Params {
            names: a.list("name")?.unwrap_or_default(),
            version: a.str("version")?,
            requirements: a.str("requirements")?,
            virtualenv: a.str("virtualenv")?,
            virtualenv_command: a
                .str("virtualenv_command")?
                .unwrap_or_else(|| "python3 -m venv".into()),
            virtualenv_site_packages: a.bool_or("virtualenv_site_packages", false)?,
            state,
            extra_args: a.str("extra_args")?,
            chdir: a.str("chdir")?,
            executable: a.str("executable")?,
        };
        a.finish()?;
        if p.names.is_empty() && p.requirements.is_none() {
            return Err(OpError::params(
                "pip",
                "one of name or requirements is required",
            ));
        }
        if p.names.is_empty() && p.state == State::Absent && p.requirements.is_some() {
            return Err(OpError::params(
                "pip",
                "state=absent with requirements is not supported; list the names",
            ));
        }
        if p.version.is_some() && p.names.len() != 1 {
            return Err(OpError::params(
                "pip",
                "version is only allowed with a single name",
            ));
        }
        if p.virtualenv.is_some() && p.executable.is_some() {
            return Err(OpError::params(
                "pip",
                "virtualenv and executable are mutually exclusive",
            ));
        }
        for n in &p.names {
            if n.trim().is_empty() || n.contains(['\'', '"', '\n']) {
                return Err(OpError::params("pip", format!("bad package name `{n}`")));
            }
        }
        Ok(p)
    }

    /// The package specs to install (`version` folded into the single name).
    pub fn specs(&self) -> Vec<String> {
        match (&self.version, self.names.as_slice()) {
            (Some(v), [n]) => {
                let v = v.trim();
                if v.starts_with(['=', '<', '>', '!', '~']) {
                    vec![format!("{n}{v}")]
                } else {
                    vec![format!("{n}=={v}")]
                }
            }
            _ => self.names.clone(),
        }
    }
}

/// pip's name normalisation (PEP 503): lowercase, runs of `-_.` become `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !dash {
                out.push('-');
            }
            dash = true;
        } else {
            out.push(c.to_ascii_lowercase());
            dash = false;
        }
    }
    out
}

/// `pip freeze` output: normalised name -> version.
pub fn parse_freeze(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            if let Some((n, v)) = l.split_once("==") {
                Some((normalize(n), v.trim().to_string()))
            } else {
                l.split_once(" @ ")
                    .map(|(n, _)| (normalize(n), String::new()))
            }
        })
        .collect()
}

/// A requirement `name`, `name==1.0`, `name[extra]>=2`: (normalised name, exact version if `==`),
/// or None when it is not that simple (URLs, options, markers).
pub fn parse_spec(spec: &str) -> Option<(String, Option<String>)> {
    let s = spec.trim();
    if s.is_empty() || s.starts_with('-') || s.contains("://") || s.contains(';') || s.contains('@')
    {
        return None;
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() {
        return None;
    }
    let mut rest = s[end..].trim();
    if let Some(r) = rest.strip_prefix('[') {
        rest = r.split_once(']').map(|(_, r)| r.trim())?;
    }
    if rest.is_empty() {
        return Some((normalize(name), None));
    }
    if let Some(v) = rest.strip_prefix("==")
        && !v.contains([',', '*'])
    {
        return Some((normalize(name), Some(v.trim().to_string())));
    }
    // Other specifiers (>=, ~=): satisfied if installed at all is not knowable
    // without pip's resolver, so say "not simple".
    None
}

/// Which specs need installing given the freeze (None: cannot tell, run pip).
pub fn missing(specs: &[String], frozen: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let mut todo = Vec::new();
    for s in specs {
        let (n, v) = parse_spec(s)?;
        let ok = match (frozen.get(&n), v) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => *have == want,
        };
        if !ok {
            todo.push(s.clone());
        }
    }
    Some(todo)
}

fn pip_cmd(p: &Params) -> String {
    match (&p.virtualenv, &p.executable) {
        (Some(v), _) => format!("{}/bin/python -m pip", sh_quote(v.trim_end_matches('/'))),
        (None, Some(e)) => sh_quote(e),
        (None, None) => "python3 -m pip".into(),
    }
}

async fn run_in(
    t: &dyn Transport,
    p: &Params,
    cmd: String,
) -> Result<crate::transport::CommandOutput, OpError> {
    let mut spec = CommandSpec::new(cmd);
    spec.cwd = p.chdir.clone();
    spec.env = vec![
        ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
        ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
    ];
    Ok(t.run(&spec).await?)
}

/// Which environment a task works on (check mode records per environment).
fn env_key(p: &Params) -> String {
    match &p.virtualenv {
        Some(v) => crate::ops::check_state::normalize(v),
        None => pip_cmd(p),
    }
}

/// The version of `name` in a wheel or sdist file name, if it is one of `name`'s.
pub fn dist_version(file: &str, name: &str) -> Option<String> {
    let stem = file
        .strip_suffix(".whl")
        .or_else(|| file.strip_suffix(".tar.gz"))
        .or_else(|| file.strip_suffix(".zip"))?;
    let (n, rest) = if file.ends_with(".whl") {
        stem.split_once('-')?
    } else {
        stem.rsplit_once('-')?
    };
    let v = rest.split('-').next()?;
    (normalize(n) == name && !v.is_empty()).then(|| v.to_string())
}

/// Compare dotted versions numerically where the parts are numbers.
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split('.')
        .map(|p| (p.parse().unwrap_or(0), p.to_string()))
        .collect()
}

/// What installing `specs` would leave (normalised name, version when
/// known): a pinned version, else with `--no-index` the newest version in
/// the `--find-links` directories (as check mode sees them), else unknown.
async fn would_install(
    t: &dyn Transport,
    p: &Params,
    specs: &[String],
) -> Result<Vec<(String, Option<String>)>, OpError> {
    let args: Vec<&str> = p
        .extra_args
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let no_index = args.contains(&"--no-index");
    let mut dirs = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if let Some(d) = a.strip_prefix("--find-links=") {
            dirs.push(d.to_string());
        } else if (*a == "--find-links" || *a == "-f")
            && let Some(d) = args.get(i + 1)
        {
            dirs.push(d.to_string());
        }
    }
    let mut files = Vec::new();
    if no_index && let Some(o) = t.check_overlay() {
        for d in &dirs {
            let d = d.strip_prefix("file://").unwrap_or(d);
            for (path, _) in o.recorded_below(d).await? {
                files.push(path.rsplit('/').next().unwrap_or("").to_string());
            }
            if !o.is_created_dir(d) {
                let out = t
                    .run(&CommandSpec::new(format!("ls -1 -- {}", sh_quote(d))))
                    .await?;
                for f in String::from_utf8_lossy(&out.stdout).lines() {
                    if t.stat(&format!("{}/{f}", d.trim_end_matches('/')))
                        .await?
                        .exists
                    {
                        files.push(f.to_string());
                    }
                }
            }
        }
    }
    Ok(specs
        .iter()
        .filter_map(|s| parse_spec(s))
        .map(|(n, pinned)| {
            let v = pinned.or_else(|| {
                files
                    .iter()
                    .filter_map(|f| dist_version(f, &n))
                    .max_by_key(|v| version_key(v))
            });
            (n, v)
        })
        .collect())
}

async fn freeze(t: &dyn Transport, p: &Params) -> Result<BTreeMap<String, String>, OpError> {
    let out = run_in(t, p, format!("{} freeze --all", pip_cmd(p))).await?;
    if out.rc != 0 {
        return Err(OpError::command("pip freeze", &out));
    }
    Ok(parse_freeze(&String::from_utf8_lossy(&out.stdout)))
}

/// What a pip plan hands its apply.
pub enum Work {
    /// Create the virtualenv, then install into it what is missing from its freeze;
    /// `r`: the result so far.
    Venv { r: OpOutcome },
    /// Run pip's `cmd`; the environment's freeze now is `before`, the result so far `r`.
    Pip {
        cmd: String,
        before: BTreeMap<String, String>,
        r: OpOutcome,
    },
}

/// The pip command making the environment (now `before`) as asked; None when it is.
async fn pip_command(
    t: &dyn Transport,
    p: &Params,
    specs: &[String],
    before: &BTreeMap<String, String>,
) -> Result<Option<String>, OpError> {
    let extra = p
        .extra_args
        .as_deref()
        .map(|e| format!(" {e}"))
        .unwrap_or_default();
    let quoted = |v: &[String]| v.iter().map(|s| sh_quote(s)).collect::<Vec<_>>().join(" ");
    Ok(Some(match p.state {
        State::Absent => {
            let installed: Vec<String> = specs
                .iter()
                .filter(|s| {
                    parse_spec(s)
                        .map(|(n, _)| before.contains_key(&n))
                        .unwrap_or(true)
                })
                .map(|s| parse_spec(s).map(|(n, _)| n).unwrap_or_else(|| s.clone()))
                .collect();
            if installed.is_empty() {
                return Ok(None);
            }
            format!("{} uninstall -y{extra} {}", pip_cmd(p), quoted(&installed))
        }
        State::Present => {
            let req_todo = match &p.requirements {
                None => Some(Vec::new()),
                Some(req) => {
                    let mut c = CommandSpec::new(format!("cat -- {}", sh_quote(req)));
                    c.cwd = p.chdir.clone();
                    let out = t.run(&c).await?;
                    if out.rc != 0 {
                        return Err(OpError::command(
                            format!("reading the requirements file {req}"),
                            &out,
                        ));
                    }
                    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(|l| l.split(" #").next().unwrap_or("").trim().to_string())
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .collect();
                    missing(&lines, before)
                }
            };
            let name_todo = missing(specs, before);
            // Everything already there (a fresh venv was reported changed).
            if let (Some(n), Some(q)) = (name_todo, req_todo)
                && n.is_empty()
                && q.is_empty()
            {
                return Ok(None);
            }
            let req = p
                .requirements
                .as_ref()
                .map(|q| format!(" -r {}", sh_quote(q)))
                .unwrap_or_default();
            format!("{} install{extra}{req} {}", pip_cmd(p), quoted(specs))
        }
        State::Latest | State::ForceReinstall => {
            let flag = if p.state == State::Latest {
                " -U"
            } else {
                " -U --force-reinstall"
            };
            let req = p
                .requirements
                .as_ref()
                .map(|q| format!(" -r {}", sh_quote(q)))
                .unwrap_or_default();
            format!("{} install{flag}{extra}{req} {}", pip_cmd(p), quoted(specs))
        }
    }))
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let specs = p.specs();
    let mut r = OpOutcome::new(false);
    let state_name = match p.state {
        State::Present => "present",
        State::Absent => "absent",
        State::Latest => "latest",
        State::ForceReinstall => "forcereinstall",
    };
    r.set("name", specs.clone());
    r.set("state", state_name);
    r.set("requirements", p.requirements.clone());
    r.set("version", p.version.clone());
    r.set("virtualenv", p.virtualenv.clone());
    // In a --check run: what earlier check-mode pip tasks would have done here.
    let overlay = t.check_overlay();
    let key = env_key(p);
    let rec = overlay.and_then(|o| o.pip_env(&key)).unwrap_or_default();
    let mut on_host = true;
    // The virtualenv, created when missing.
    if let Some(v) = &p.virtualenv {
        let st = t
            .stat(&format!("{}/bin/python", v.trim_end_matches('/')))
            .await?;
        if !st.exists && rec.created {
            on_host = false;
        } else if !st.exists {
            if p.state == State::Absent {
                return Ok(Plan::done(r.msg("no virtualenv, nothing to remove")));
            }
            r.changed = true;
            let mut changes = Vec::new();
            // What it would hold, in a --check run (its probes read the simulated host).
            if overlay.is_some() {
                let installed = would_install(t, p, &specs).await?;
                changes.push(Change::dir(v, None));
                changes.push(Change::Pip {
                    env: key.clone(),
                    created: true,
                    packages: installed.into_iter().map(|(n, v)| (n, Some(v))).collect(),
                });
            }
            let mut predicted = r.clone();
            predicted.set("cmd", format!("{} {}", p.virtualenv_command, v));
            let predicted =
                predicted.msg(format!("would create {v} and install {}", specs.join(" ")));
            return Ok(Plan::changes(predicted, changes, Work::Venv { r }));
        }
    }
    let mut before = if on_host {
        freeze(t, p).await?
    } else {
        BTreeMap::new()
    };
    for (n, what) in &rec.packages {
        match what {
            // A version check mode cannot know matches no pin.
            Some(v) => before.insert(n.clone(), v.clone().unwrap_or_else(|| "?".into())),
            None => before.remove(n),
        };
    }
    let Some(cmd) = pip_command(t, p, &specs, &before).await? else {
        return Ok(Plan::done(r));
    };
    r.set("cmd", cmd.clone());
    // Present/absent know exactly from the freeze; latest cannot without the index.
    let mut changes = Vec::new();
    if overlay.is_some() {
        let packages = if p.state == State::Absent {
            specs
                .iter()
                .filter_map(|s| parse_spec(s).map(|(n, _)| (n, None)))
                .collect()
        } else {
            let installed = would_install(t, p, &specs).await?;
            installed.into_iter().map(|(n, v)| (n, Some(v))).collect()
        };
        changes.push(Change::Pip {
            env: key,
            created: false,
            packages,
        });
    }
    let mut predicted = r.clone();
    predicted.changed = true;
    Ok(Plan::changes(
        predicted,
        changes,
        Work::Pip { cmd, before, r },
    ))
}

pub async fn apply(
    t: &dyn Transport,
    p: &Params,
    _: &OpContext<'_>,
    _: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    let (cmd, before, mut r) = match work {
        Work::Pip { cmd, before, r } => (cmd, before, r),
        Work::Venv { mut r } => {
            let v = p.virtualenv.clone().unwrap_or_default();
            let site = if p.virtualenv_site_packages {
                " --system-site-packages"
            } else {
                ""
            };
            let out = run_in(
                t,
                p,
                format!("{}{site} {}", p.virtualenv_command, sh_quote(&v)),
            )
            .await?;
            if out.rc != 0 {
                return Err(OpError::command(
                    format!("creating the virtualenv {v}"),
                    &out,
                ));
            }
            let before = freeze(t, p).await?;
            let Some(cmd) = pip_command(t, p, &p.specs(), &before).await? else {
                return Ok(r);
            };
            r.set("cmd", cmd.clone());
            (cmd, before, r)
        }
    };
    let out = run_in(t, p, cmd.clone()).await?;
    r.set("stdout", String::from_utf8_lossy(&out.stdout).into_owned());
    r.set("stderr", String::from_utf8_lossy(&out.stderr).into_owned());
    if out.rc != 0 {
        return Err(OpError::command(format!("pip: {cmd}"), &out));
    }
    let after = freeze(t, p).await?;
    r.changed |= after != before || p.state == State::ForceReinstall;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_from_dist_file_names() {
        assert_eq!(
            dist_version("compat_demo-1.0-py3-none-any.whl", "compat-demo"),
            Some("1.0".into())
        );
        assert_eq!(dist_version("Foo-2.1.tar.gz", "foo"), Some("2.1".into()));
        assert_eq!(dist_version("foo-bar-2.1.tar.gz", "foo"), None);
        assert_eq!(dist_version("foo-1.0-py3-none-any.whl", "bar"), None);
        assert_eq!(dist_version("README", "foo"), None);
        assert!(version_key("1.10") > version_key("1.9"));
    }

    #[test]
    fn names_specs_and_freeze() {
        assert_eq!(normalize("Foo_Bar.baz"), "foo-bar-baz");
        let f = parse_freeze("Foo_Bar==1.0\npip==24.0\nlocal @ file:///x\n");
        assert_eq!(f.get("foo-bar").map(String::as_str), Some("1.0"));
        assert!(f.contains_key("local"));
        assert_eq!(
            parse_spec("foo-bar==1.0"),
            Some(("foo-bar".into(), Some("1.0".into())))
        );
        assert_eq!(parse_spec("Foo[x]"), Some(("foo".into(), None)));
        assert_eq!(parse_spec("foo>=1"), None);
        assert_eq!(
            missing(&["foo_bar==1.0".into(), "pip".into(), "new".into()], &f),
            Some(vec!["new".to_string()])
        );
        assert_eq!(missing(&["foo_bar==2.0".into()], &f).unwrap().len(), 1);
        let p =
            Params::parse(&serde_json::from_value(json!({"name": "a", "version": "1.2"})).unwrap())
                .unwrap();
        assert_eq!(p.specs(), vec!["a==1.2"]);
        assert!(
            Params::parse(&serde_json::from_value(json!({"virtualenv": "/v"})).unwrap()).is_err()
        );
        assert!(
            Params::parse(&serde_json::from_value(json!({"name": "a", "editable": true})).unwrap())
                .unwrap_err()
                .to_string()
                .contains("`editable`")
        );
    }
}
