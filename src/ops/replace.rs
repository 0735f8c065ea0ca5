//! `replace`: replace every match of a regular expression (multiline) in a
//! file, optionally only between `after` and `before`.

use regex::Regex;

use super::attrs::FileAttrs;
use super::content::Edit;
use super::content::{WriteOpts, check_validate, plan_edit};
use super::lineinfile::{compile, expand_python};
use super::{Args, OpContext, OpError, Plan};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `replace` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "replace",
    flags: "",
    params: "path:path!/dest,destfile,name; regexp:str!; replace:str; after:str; before:str; backup:bool; mode:mode; owner:str; group:str; validate:str",
    rules: "",
};

crate::ops::planned_op!(ReplaceOp, SPEC, edit);

#[derive(Debug, Clone)]
pub struct Params {
    pub path: String,
    pub regexp: Regex,
    pub replace: String,
    pub after: Option<String>,
    pub before: Option<String>,
    pub backup: bool,
    pub validate: Option<String>,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("replace", args);
        let path = a.req_str("path")?;
        let r = a.req_str("regexp")?;
        let regexp = compile(&a, "regexp", &format!("(?m){r}"))?;
        let p = Params {
            path,
            regexp,
            replace: a.str("replace")?.unwrap_or_default(),
            after: a.str("after")?,
            before: a.str("before")?,
            backup: a.bool_or("backup", false)?,
            validate: a.str("validate")?,
            attrs: FileAttrs::parse(&a)?,
        };
        if let Some(x) = &p.after {
            compile(&a, "after", x)?;
        }
        if let Some(x) = &p.before {
            compile(&a, "before", x)?;
        }
        a.finish()?;
        check_validate("replace", &p.validate)?;
        Ok(p)
    }
}

/// Replace in `content`; `found` is the number of replacements.
pub fn edit(p: &Params, content: &str) -> Edit {
    let pattern = match (&p.after, &p.before) {
        (Some(a), Some(b)) => Some(format!("(?s){a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("(?s){a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?s)(?P<subsection>.*){b}")),
        (None, None) => None,
    };
    let (start, end) = pattern
        .and_then(|pat| Regex::new(&pat).ok())
        .and_then(|re| re.captures(content).and_then(|c| c.name("subsection")))
        .map(|m| (m.start(), m.end()))
        .unwrap_or((0, content.len()));
    let section = &content[start..end];
    let mut n = 0;
    let replaced = p.regexp.replace_all(section, |c: &regex::Captures<'_>| {
        n += 1;
        expand_python(&p.replace, c)
    });
    let result = format!("{}{}{}", &content[..start], replaced, &content[end..]);
    let changed = n > 0 && replaced != section;
    Edit {
        msg: if changed {
            format!("{n} replacements made")
        } else {
            String::new()
        },
        content: result,
        changed,
        found: n,
    }
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let st = t.stat(&p.path).await?;
    if !st.exists {
        return Err(OpError::failed(format!("Path {} does not exist !", p.path)));
    }
    if st.is_dir {
        return Err(OpError::failed(format!("Path {} is a directory !", p.path)));
    }
    let before = t.get_file(&p.path).await?;
    let e = edit(p, &String::from_utf8_lossy(&before));
    let opts = WriteOpts {
        backup: p.backup,
        validate: p.validate.clone(),
        force: true,
    };
    plan_edit(t, &p.path, &st, &before, &e, &p.attrs, &opts, ctx, None).await
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
    fn replaces_all_multiline_with_backrefs() {
        let e = edit(
            &p(json!({"regexp": "^(\\w+)=old$", "replace": "\\1=new"})),
            "a=old\nb=old\nc=keep\n",
        );
        assert_eq!(e.content, "a=new\nb=new\nc=keep\n");
        assert_eq!(e.found, 2);
        assert!(
            !edit(
                &p(json!({"regexp": "^(\\w+)=old$", "replace": "\\1=new"})),
                &e.content
            )
            .changed
        );
    }

    #[test]
    fn replacing_with_same_text_is_unchanged() {
        assert!(!edit(&p(json!({"regexp": "a", "replace": "a"})), "aaa").changed);
    }

    #[test]
    fn after_and_before_limit_the_section() {
        let c = "x\n[s]\nx\n[t]\nx\n";
        let e = edit(
            &p(json!({"regexp": "^x$", "replace": "y", "after": "\\[s\\]", "before": "\\[t\\]"})),
            c,
        );
        assert_eq!(e.content, "x\n[s]\ny\n[t]\nx\n");
        let e = edit(
            &p(json!({"regexp": "^x$", "replace": "y", "after": "\\[t\\]"})),
            c,
        );
        assert_eq!(e.content, "x\n[s]\nx\n[t]\ny\n");
        let e = edit(
            &p(json!({"regexp": "^x$", "replace": "y", "before": "\\[s\\]"})),
            c,
        );
        assert_eq!(e.content, "y\n[s]\nx\n[t]\nx\n");
    }

    #[test]
    fn regexp_required() {
        let m: Vars = serde_json::from_value(json!({"path": "/f"})).unwrap();
        assert!(
            Params::parse(&m)
                .unwrap_err()
                .to_string()
                .contains("`regexp`")
        );
    }
}
