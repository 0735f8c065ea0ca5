//! `user`: a local account present (uid, group, groups, shell, home,
//! comment, password hash) or absent, with `useradd`/`usermod`/`userdel`.
//! Planned: the probe and [`decide`] are the plan, the command is the apply.

use super::plan::Commands;
use super::{Args, Change, OpContext, OpError, OpOutcome, Plan, sh, sh_quote};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `user` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "user",
    flags: "",
    params: "name:str!/user; state:str=present,absent; uid:int; group:str; groups:list; append:bool; shell:path; home:path; create_home:bool/createhome; system:bool; password:str; comment:str; remove:bool",
    rules: "",
};

crate::ops::planned_op!(UserOp, SPEC, commands);

#[derive(Debug, Clone, Default)]
pub struct Params {
    pub name: String,
    pub state_present: bool,
    pub uid: Option<u64>,
    pub group: Option<String>,
    pub groups: Option<Vec<String>>,
    pub append: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    pub create_home: bool,
    pub system: bool,
    pub comment: Option<String>,
    pub password: Option<String>,
    pub remove: bool,
}

pub(crate) fn check_name(op: &'static str, n: &str) -> Result<(), OpError> {
    if n.is_empty()
        || n.starts_with('-')
        || !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c))
    {
        return Err(OpError::params(op, format!("bad name `{n}`")));
    }
    Ok(())
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("user", args);
        let p = Params {
            name: a.req_str("name")?,
            state_present: a.choice("state", "present")? == "present",
            uid: a.u64("uid")?,
            group: a.str("group")?,
            groups: a.list("groups")?,
            append: a.bool_or("append", false)?,
            shell: a.str("shell")?,
            home: a.str("home")?,
            create_home: a.bool_or("create_home", true)?,
            system: a.bool_or("system", false)?,
            comment: a.str("comment")?,
            password: a.str("password")?,
            remove: a.bool_or("remove", false)?,
        };
        a.finish()?;
        check_name("user", &p.name)?;
        Ok(p)
    }
}

/// What the host has for the user now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub uid: u64,
    pub comment: String,
    pub home: String,
    pub shell: String,
    pub group: String,
    pub gid: u64,
    pub groups: Vec<String>,
    pub password: String,
}

/// Parse the probe's output: passwd line, `--`, primary group, `--`,
/// all groups, `--`, shadow hash.
pub fn parse_current(out: &str) -> Option<Current> {
    let parts: Vec<&str> = out.split("--\n").collect();
    let pw = parts.first()?.trim();
    if pw.is_empty() {
        return None;
    }
    let f: Vec<&str> = pw.split(':').collect();
    if f.len() < 7 {
        return None;
    }
    let group = parts
        .get(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let groups = parts
        .get(2)
        .map(|s| {
            s.split_whitespace()
                .filter(|g| *g != group)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(Current {
        uid: f[2].parse().unwrap_or(0),
        gid: f[3].parse().unwrap_or(0),
        comment: f[4].to_string(),
        home: f[5].to_string(),
        shell: f[6].to_string(),
        group,
        groups,
        password: parts
            .get(3)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    })
}

/// The command to run (None: nothing to do).
pub fn decide(p: &Params, cur: Option<&Current>) -> Option<String> {
    let n = sh_quote(&p.name);
    let q = |s: &str| sh_quote(s);
    match (cur, p.state_present) {
        (None, false) => None,
        (Some(_), false) => Some(format!("userdel{} {n}", if p.remove { " -r" } else { "" })),
        (None, true) => {
            let mut c = vec!["useradd".to_string()];
            if let Some(u) = p.uid {
                c.push(format!("-u {u}"));
            }
            if let Some(g) = &p.group {
                c.push(format!("-g {}", q(g)));
            }
            if let Some(gs) = &p.groups
                && !gs.is_empty()
            {
                c.push(format!("-G {}", q(&gs.join(","))));
            }
            if let Some(s) = &p.shell {
                c.push(format!("-s {}", q(s)));
            }
            if let Some(h) = &p.home {
                c.push(format!("-d {}", q(h)));
            }
            if let Some(cm) = &p.comment {
                c.push(format!("-c {}", q(cm)));
            }
            if let Some(pw) = &p.password {
                c.push(format!("-p {}", q(pw)));
            }
            if p.system {
                c.push("-r".into());
            }
            c.push(if p.create_home {
                "-m".into()
            } else {
                "-M".into()
            });
            c.push(n);
            Some(c.join(" "))
        }
        (Some(cur), true) => {
            let mut c = vec!["usermod".to_string()];
            if let Some(u) = p.uid
                && u != cur.uid
            {
                c.push(format!("-u {u}"));
            }
            if let Some(g) = &p.group
                && *g != cur.group
                && g.parse::<u64>().ok() != Some(cur.gid)
            {
                c.push(format!("-g {}", q(g)));
            }
            if let Some(gs) = &p.groups {
                let missing = gs.iter().any(|g| !cur.groups.contains(g));
                let extra = !p.append && cur.groups.iter().any(|g| !gs.contains(g));
                if missing || extra {
                    let list = if p.append {
                        let mut all = cur.groups.clone();
                        all.extend(gs.iter().filter(|g| !cur.groups.contains(g)).cloned());
                        all
                    } else {
                        gs.clone()
                    };
                    c.push(format!("-G {}", q(&list.join(","))));
                }
            }
            if let Some(s) = &p.shell
                && *s != cur.shell
            {
                c.push(format!("-s {}", q(s)));
            }
            if let Some(h) = &p.home
                && *h != cur.home
            {
                c.push(format!("-d {}", q(h)));
            }
            if let Some(cm) = &p.comment
                && *cm != cur.comment
            {
                c.push(format!("-c {}", q(cm)));
            }
            if let Some(pw) = &p.password
                && *pw != cur.password
            {
                c.push(format!("-p {}", q(pw)));
            }
            (c.len() > 1).then(|| {
                c.push(n);
                c.join(" ")
            })
        }
    }
}

pub async fn plan(t: &dyn Transport, p: &Params, _: &OpContext<'_>) -> Result<Plan, OpError> {
    let n = sh_quote(&p.name);
    let probe = format!(
        "getent passwd {n}; echo --; id -gn {n} 2>/dev/null; echo --; id -Gn {n} 2>/dev/null; echo --; getent shadow {n} 2>/dev/null | cut -d: -f2"
    );
    let out = sh(t, probe).await?;
    let cur = parse_current(&String::from_utf8_lossy(&out.stdout));
    let cmd = decide(p, cur.as_ref());
    let change = match (&cur, p.state_present) {
        (None, true) => Change::Account {
            name: p.name.clone(),
            home: Some(p.home.clone().unwrap_or(format!("/home/{}", p.name))),
        },
        (Some(_), false) => Change::Account {
            name: p.name.clone(),
            home: None,
        },
        _ => Change::Host(format!("account {} modified", p.name)),
    };
    let mut r = OpOutcome::new(cmd.is_some())
        .with("name", p.name.clone())
        .with("state", if p.state_present { "present" } else { "absent" });
    if let Some(c) = cur {
        r.set("uid", p.uid.unwrap_or(c.uid));
        r.set("home", p.home.clone().unwrap_or(c.home));
        r.set("shell", p.shell.clone().unwrap_or(c.shell));
    }
    Ok(match cmd {
        None => Plan::done(r),
        Some(c) => {
            let work = Commands(vec![(c, format!("user {}", p.name))]);
            Plan::changes(r, vec![change], work)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: serde_json::Value) -> Params {
        Params::parse(&serde_json::from_value(v).unwrap()).unwrap()
    }

    #[test]
    fn parses_probe_and_plans() {
        let cur = parse_current(
            "nova:x:1001:1001:Nova:/var/lib/nova:/bin/sh\n--\nnova\n--\nnova kvm libvirt\n--\n!\n",
        )
        .unwrap();
        assert_eq!(cur.groups, vec!["kvm", "libvirt"]);
        assert_eq!(parse_current("--\n--\n--\n"), None);
        assert_eq!(
            decide(
                &p(json!({"name": "nova", "groups": "kvm,libvirt"})),
                Some(&cur)
            ),
            None
        );
        assert_eq!(
            decide(
                &p(json!({"name": "nova", "groups": ["kvm"], "append": true})),
                Some(&cur)
            ),
            None
        );
        assert_eq!(
            decide(&p(json!({"name": "nova", "groups": ["kvm"]})), Some(&cur)).unwrap(),
            "usermod -G kvm nova"
        );
        assert_eq!(
            decide(&p(json!({"name": "nova", "groups": ["disk"], "append": true, "shell": "/bin/bash"})), Some(&cur)).unwrap(),
            "usermod -G kvm,libvirt,disk -s /bin/bash nova"
        );
        assert_eq!(
            decide(
                &p(json!({"name": "x", "uid": 2000, "shell": "/bin/sh", "system": true})),
                None
            )
            .unwrap(),
            "useradd -u 2000 -s /bin/sh -r -m x"
        );
        assert_eq!(
            decide(
                &p(json!({"name": "x", "state": "absent", "remove": true})),
                Some(&cur)
            )
            .unwrap(),
            "userdel -r x"
        );
        assert!(Params::parse(&serde_json::from_value(json!({"name": "-x"})).unwrap()).is_err());
    }
}
