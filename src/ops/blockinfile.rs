//! `blockinfile`: a block of lines between two marker lines, inserted,
//! updated or removed as a whole.

use regex::Regex;

use super::attrs::FileAttrs;
use super::content::Edit;
use super::content::{WriteOpts, check_validate, plan_edit};
use super::lineinfile::{compile, split_lines, strip_eol};
use super::{Args, OpContext, OpError, Plan};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `blockinfile` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "blockinfile",
    flags: "",
    params: "path:path!/dest,destfile,name; block:str/content; marker:str; marker_begin:str; marker_end:str; state:str=present,absent; insertafter:str; insertbefore:str; create:bool; backup:bool; mode:mode; owner:str; group:str; validate:str",
    rules: "insertafter|insertbefore",
};

crate::ops::planned_op!(BlockinfileOp, SPEC, edit);

#[derive(Debug, Clone)]
pub struct Params {
    pub path: String,
    pub state_present: bool,
    pub marker: String,
    pub marker_begin: String,
    pub marker_end: String,
    pub block: String,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    pub create: bool,
    pub backup: bool,
    pub validate: Option<String>,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("blockinfile", args);
        let p = Params {
            path: a.req_str("path")?,
            state_present: a.choice("state", "present")? == "present",
            marker: a
                .str("marker")?
                .unwrap_or_else(|| "# {mark} ANSIBLE MANAGED BLOCK".into()),
            marker_begin: a.str("marker_begin")?.unwrap_or_else(|| "BEGIN".into()),
            marker_end: a.str("marker_end")?.unwrap_or_else(|| "END".into()),
            block: a.str("block")?.unwrap_or_default(),
            insertafter: a.str("insertafter")?,
            insertbefore: a.str("insertbefore")?,
            create: a.bool_or("create", false)?,
            backup: a.bool_or("backup", false)?,
            validate: a.str("validate")?,
            attrs: FileAttrs::parse(&a)?,
        };
        for v in [&p.insertafter, &p.insertbefore].into_iter().flatten() {
            if v != "EOF" && v != "BOF" {
                compile(&a, "insertafter/insertbefore", v)?;
            }
        }
        a.finish()?;
        check_validate("blockinfile", &p.validate)?;
        if p.insertafter.is_some() && p.insertbefore.is_some() {
            return Err(OpError::params(
                "blockinfile",
                "insertafter and insertbefore are mutually exclusive",
            ));
        }
        if !p.marker.contains("{mark}") {
            return Err(OpError::params(
                "blockinfile",
                format!("marker `{}` must contain {{mark}}", p.marker),
            ));
        }
        Ok(p)
    }
}

/// The new content of a file holding `content` (None: the file does not exist).
pub fn edit(p: &Params, content: Option<&str>) -> Edit {
    let original = content.unwrap_or("");
    let mut lines = split_lines(original);
    let marker0 = p.marker.replace("{mark}", &p.marker_begin);
    let marker1 = p.marker.replace("{mark}", &p.marker_end);
    let blocklines: Vec<String> = if p.state_present && !p.block.is_empty() {
        let mut v = vec![format!("{marker0}\n")];
        v.extend(p.block.lines().map(|l| format!("{l}\n")));
        v.push(format!("{marker1}\n"));
        v
    } else {
        Vec::new()
    };
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if strip_eol(l) == marker0 {
            n0 = Some(i);
        }
        if strip_eol(l) == marker1 {
            n1 = Some(i);
        }
    }
    let at = match (n0, n1) {
        (Some(a), Some(b)) => {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            lines.drain(a..=b);
            a
        }
        _ => {
            let anchor = match (&p.insertafter, &p.insertbefore) {
                (Some(a), _) if a != "EOF" && a != "BOF" => Some((Regex::new(a).ok(), true)),
                (_, Some(b)) if b != "BOF" && b != "EOF" => Some((Regex::new(b).ok(), false)),
                _ => None,
            };
            match anchor {
                Some((Some(re), after)) => {
                    match lines.iter().rposition(|l| re.is_match(strip_eol(l))) {
                        None => lines.len(),
                        Some(i) if after => i + 1,
                        Some(i) => i,
                    }
                }
                _ if p.insertbefore.as_deref() == Some("BOF")
                    || p.insertafter.as_deref() == Some("BOF") =>
                {
                    0
                }
                _ => lines.len(),
            }
        }
    };
    if at > 0 && !blocklines.is_empty() && !lines[at - 1].ends_with('\n') {
        lines[at - 1].push('\n');
    }
    let had_block = n0.is_some() && n1.is_some();
    lines.splice(at..at, blocklines.iter().cloned());
    let result = lines.concat();
    let changed = result != original || (content.is_none() && p.state_present);
    let msg = if !changed {
        String::new()
    } else if content.is_none() {
        "File created".into()
    } else if blocklines.is_empty() {
        "Block removed".into()
    } else if had_block {
        "Block changed".into()
    } else {
        "Block inserted".into()
    };
    Edit {
        content: result,
        changed,
        msg,
        found: 0,
    }
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let (st, before, parent) = match super::content::read_for_edit(
        t,
        &p.path,
        p.state_present,
        p.create,
        "File not present",
        "Path",
    )
    .await?
    {
        super::content::EditTarget::Edit {
            stat,
            before,
            parent,
        } => (stat, before, parent),
        super::content::EditTarget::Done(report) => return Ok(Plan::done(report)),
    };
    let text = String::from_utf8_lossy(&before);
    let e = edit(p, st.exists.then_some(&*text));
    let opts = WriteOpts {
        backup: p.backup,
        validate: p.validate.clone(),
        force: true,
    };
    plan_edit(t, &p.path, &st, &before, &e, &p.attrs, &opts, ctx, parent).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: serde_json::Value) -> Params {
        let mut m: Vars = serde_json::from_value(v).unwrap();
        m.insert("path".into(), json!("/f"));
        Params::parse(&m).unwrap()
    }

    #[test]
    fn inserts_updates_and_removes_block() {
        let c = "a\nb\n";
        let e = edit(&p(json!({"block": "x=1\ny=2"})), Some(c));
        assert_eq!(
            e.content,
            "a\nb\n# BEGIN ANSIBLE MANAGED BLOCK\nx=1\ny=2\n# END ANSIBLE MANAGED BLOCK\n"
        );
        assert_eq!(e.msg, "Block inserted");
        assert!(!edit(&p(json!({"block": "x=1\ny=2"})), Some(&e.content)).changed);
        let e2 = edit(&p(json!({"block": "x=3"})), Some(&e.content));
        assert_eq!(
            e2.content,
            "a\nb\n# BEGIN ANSIBLE MANAGED BLOCK\nx=3\n# END ANSIBLE MANAGED BLOCK\n"
        );
        let e3 = edit(&p(json!({"state": "absent"})), Some(&e2.content));
        assert_eq!(e3.content, c);
        assert_eq!(e3.msg, "Block removed");
        // empty block removes too
        assert_eq!(edit(&p(json!({"block": ""})), Some(&e2.content)).content, c);
    }

    #[test]
    fn custom_markers_and_anchors() {
        let c = "[a]\nk=v\n[b]\n";
        let e = edit(
            &p(
                json!({"block": "z=1", "marker": "; {mark} ferry", "marker_begin": "START",
                      "marker_end": "STOP", "insertafter": "^\\[a\\]"}),
            ),
            Some(c),
        );
        assert_eq!(
            e.content,
            "[a]\n; START ferry\nz=1\n; STOP ferry\nk=v\n[b]\n"
        );
        let e = edit(
            &p(json!({"block": "z=1", "insertbefore": "BOF"})),
            Some("q"),
        );
        assert!(
            e.content
                .starts_with("# BEGIN ANSIBLE MANAGED BLOCK\nz=1\n")
        );
        let e = edit(&p(json!({"block": "z=1"})), Some("q"));
        assert!(e.content.starts_with("q\n# BEGIN"), "{}", e.content);
        let e = edit(
            &p(json!({"block": "z=1", "insertbefore": "^\\[b\\]"})),
            Some(c),
        );
        assert!(e.content.ends_with("# END ANSIBLE MANAGED BLOCK\n[b]\n"));
    }

    #[test]
    fn new_file() {
        let e = edit(&p(json!({"block": "z", "create": true})), None);
        assert_eq!(e.msg, "File created");
        assert!(e.changed);
    }

    #[test]
    fn bad_marker_rejected() {
        let m: Vars = serde_json::from_value(json!({"path": "/f", "marker": "# x"})).unwrap();
        assert!(
            Params::parse(&m)
                .unwrap_err()
                .to_string()
                .contains("{mark}")
        );
    }
}
