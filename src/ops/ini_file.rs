//! `ini_file`: set or remove one option (or a whole section) in an INI file,
//! e.g. nova.conf, keeping every other line as it is.

use regex::Regex;

use super::attrs::FileAttrs;
use super::content::Edit;
use super::content::{WriteOpts, plan_edit};
use super::lineinfile::split_lines;
use super::{Args, OpContext, OpError, OpOutcome, Plan};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `ini_file` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "ini_file",
    flags: "",
    params: "path:path!/dest; section:str; option:str/key; value:raw; state:str=present,absent; backup:bool; create:bool; no_extra_spaces:bool; allow_no_value:bool; modify_inactive_option:bool; mode:mode; owner:str; group:str",
    rules: "one:section|option",
};

crate::ops::planned_op!(IniFileOp, SPEC, edit);

#[derive(Debug, Clone)]
pub struct Params {
    pub path: String,
    /// None: options before the first section.
    pub section: Option<String>,
    pub option: Option<String>,
    pub value: Option<String>,
    pub state_present: bool,
    pub no_extra_spaces: bool,
    pub allow_no_value: bool,
    /// Replace a commented-out `# option = x` line rather than adding one.
    pub modify_inactive_option: bool,
    pub create: bool,
    pub backup: bool,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("ini_file", args);
        let p = Params {
            path: a.req_str("path")?,
            section: a.str("section")?,
            option: a.str("option")?,
            value: a.str("value")?,
            state_present: a.choice("state", "present")? == "present",
            no_extra_spaces: a.bool_or("no_extra_spaces", false)?,
            allow_no_value: a.bool_or("allow_no_value", false)?,
            modify_inactive_option: a.bool_or("modify_inactive_option", true)?,
            create: a.bool_or("create", true)?,
            backup: a.bool_or("backup", false)?,
            attrs: FileAttrs::parse(&a)?,
        };
        a.finish()?;
        if p.section.is_none() && p.option.is_none() {
            return Err(OpError::params(
                "ini_file",
                "give `section`, `option` or both",
            ));
        }
        Ok(p)
    }
}

fn opt_re(option: &str, inactive: bool) -> Regex {
    let o = regex::escape(option.trim());
    let comment = if inactive { "[#;]?" } else { "" };
    Regex::new(&format!(r"^[ \t]*{comment}[ \t]*{o}[ \t]*(=|$)")).expect("escaped option")
}

/// The new content of an INI file holding `content`.
pub fn edit(p: &Params, content: &str) -> Edit {
    const FAKE: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";
    let mut ini = split_lines(content);
    let mut changed = false;
    let mut msg = "OK".to_string();
    // As Ansible: an empty (or new) file starts as one blank line, so a new
    // file reads "\n[section]\nk = v\n".
    if ini.is_empty() {
        ini.push("\n".into());
    }
    if let Some(last) = ini.last_mut()
        && !last.ends_with('\n')
    {
        last.push('\n');
        changed = true;
    }
    ini.insert(0, format!("[{FAKE}]\n"));
    ini.push("[".into());
    let section = p.section.clone().unwrap_or_else(|| FAKE.to_string());
    let assign = |o: &str, v: &str| {
        if p.no_extra_spaces {
            format!("{o}={v}\n")
        } else {
            format!("{o} = {v}\n")
        }
    };
    let sec_re = Regex::new(&format!(r"^\[\s*{}\s*\]", regex::escape(section.trim()))).unwrap();
    let (mut start, mut end) = (0, 0);
    let mut within = false;
    for (i, l) in ini.iter().enumerate() {
        if sec_re.is_match(l) {
            within = true;
            start = i;
        } else if l.starts_with('[') && within {
            end = i;
            break;
        }
    }
    let after = ini.split_off(end);
    let mut sect = ini.split_off(start);
    let before = ini;
    let blank_or_comment = Regex::new(r"^[ \t]*([#;].*)?$").unwrap();
    let active = p.option.as_deref().map(|o| opt_re(o, false));
    let any = p
        .option
        .as_deref()
        .map(|o| opt_re(o, p.modify_inactive_option));
    if within {
        match (&p.option, p.state_present) {
            (Some(o), true) => {
                let newline = match &p.value {
                    Some(v) => assign(o.trim(), v),
                    None if p.allow_no_value => format!("{}\n", o.trim()),
                    None => assign(o.trim(), ""),
                };
                let hit = sect
                    .iter()
                    .skip(1)
                    .position(|l| any.as_ref().unwrap().is_match(l))
                    .map(|i| i + 1);
                match hit {
                    Some(i) => {
                        if sect[i] != newline {
                            sect[i] = newline;
                            changed = true;
                            msg = "option changed".into();
                        }
                        // drop later duplicates of the active option
                        let re = active.as_ref().unwrap();
                        let mut k = sect.len();
                        while k > 1 {
                            k -= 1;
                            if k != i && re.is_match(&sect[k]) {
                                sect.remove(k);
                                changed = true;
                                msg = "option changed".into();
                            }
                        }
                    }
                    None => {
                        let at = sect
                            .iter()
                            .rposition(|l| !blank_or_comment.is_match(l.trim_end_matches('\n')))
                            .map(|i| i + 1)
                            .unwrap_or(1);
                        sect.insert(at, newline);
                        changed = true;
                        msg = "option added".into();
                    }
                }
            }
            (Some(_), false) => {
                let re = active.as_ref().unwrap();
                let n = sect.len();
                let val_ok = |l: &str| match &p.value {
                    None => true,
                    Some(v) => l
                        .split_once('=')
                        .map(|(_, x)| x.trim() == v.trim())
                        .unwrap_or(false),
                };
                let mut kept = vec![sect[0].clone()];
                kept.extend(
                    sect[1..]
                        .iter()
                        .filter(|l| !(re.is_match(l) && val_ok(l)))
                        .cloned(),
                );
                if kept.len() != n {
                    changed = true;
                    msg = "option changed".into();
                }
                sect = kept;
            }
            (None, false) if p.section.is_some() => {
                sect.clear();
                changed = true;
                msg = "section removed".into();
            }
            _ => {}
        }
    }
    let mut out = before;
    out.extend(sect);
    out.extend(after);
    if out
        .first()
        .is_some_and(|l| l.starts_with(&format!("[{FAKE}]")))
    {
        out.remove(0);
    }
    if out.last().is_some_and(|l| l == "[") {
        out.pop();
    }
    if !within && p.state_present {
        out.push(format!("[{section}]\n"));
        msg = "section and option added".into();
        match (&p.option, &p.value) {
            (Some(o), Some(v)) => out.push(assign(o.trim(), v)),
            (Some(o), None) if p.allow_no_value => out.push(format!("{}\n", o.trim())),
            (Some(o), None) => out.push(assign(o.trim(), "")),
            (None, _) => msg = "only section added".into(),
        }
        changed = true;
    }
    Edit {
        content: out.concat(),
        changed,
        msg,
        found: 0,
    }
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let st = t.stat(&p.path).await?;
    if st.is_dir {
        return Err(OpError::failed(format!("Path {} is a directory !", p.path)));
    }
    if !st.exists && !p.create {
        return Err(OpError::failed(format!(
            "Destination {} does not exist ! (create is false)",
            p.path
        )));
    }
    if !st.exists && !p.state_present {
        return Ok(Plan::done(
            OpOutcome::new(false).msg("OK").with("path", p.path.clone()),
        ));
    }
    let parent = if st.exists {
        None
    } else {
        super::content::parent_dir(&p.path)
    };
    let before = if st.exists {
        t.get_file(&p.path).await?
    } else {
        Vec::new()
    };
    let e = edit(p, &String::from_utf8_lossy(&before));
    let opts = WriteOpts {
        backup: p.backup,
        validate: None,
        force: true,
    };
    let mut r = plan_edit(t, &p.path, &st, &before, &e, &p.attrs, &opts, ctx, parent).await?;
    if let Some(s) = &p.section {
        r.outcome.set("section", s.clone());
    }
    if let Some(o) = &p.option {
        r.outcome.set("option", o.clone());
    }
    Ok(r)
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
    fn ed(v: serde_json::Value, c: &str) -> Edit {
        edit(&p(v), c)
    }

    const NOVA: &str =
        "[DEFAULT]\nverbose = true\n# my_ip = 1.2.3.4\n\n[libvirt]\nvirt_type = kvm\n";

    #[test]
    fn changes_existing_option_in_section() {
        let e = ed(
            json!({"section": "libvirt", "option": "virt_type", "value": "qemu"}),
            NOVA,
        );
        assert_eq!(
            e.content,
            NOVA.replace("virt_type = kvm", "virt_type = qemu")
        );
        assert_eq!(e.msg, "option changed");
        assert!(
            !ed(
                json!({"section": "libvirt", "option": "virt_type", "value": "qemu"}),
                &e.content
            )
            .changed
        );
    }

    #[test]
    fn adds_option_after_last_setting_of_section() {
        let e = ed(
            json!({"section": "libvirt", "option": "live_migration_uri", "value": "qemu+tcp://%s/system"}),
            NOVA,
        );
        assert!(
            e.content
                .ends_with("virt_type = kvm\nlive_migration_uri = qemu+tcp://%s/system\n"),
            "{}",
            e.content
        );
        let e = ed(
            json!({"section": "DEFAULT", "option": "debug", "value": "true", "no_extra_spaces": true}),
            NOVA,
        );
        assert!(
            e.content
                .starts_with("[DEFAULT]\nverbose = true\ndebug=true\n# my_ip"),
            "{}",
            e.content
        );
    }

    #[test]
    fn replaces_commented_option_unless_told_not_to() {
        let e = ed(
            json!({"section": "DEFAULT", "option": "my_ip", "value": "10.0.0.1"}),
            NOVA,
        );
        assert!(
            e.content.contains("verbose = true\nmy_ip = 10.0.0.1\n\n"),
            "{}",
            e.content
        );
        let e = ed(
            json!({"section": "DEFAULT", "option": "my_ip", "value": "10.0.0.1", "modify_inactive_option": false}),
            NOVA,
        );
        assert!(
            e.content
                .contains("verbose = true\nmy_ip = 10.0.0.1\n# my_ip = 1.2.3.4"),
            "{}",
            e.content
        );
    }

    #[test]
    fn adds_missing_section_and_handles_empty_file() {
        let e = ed(
            json!({"section": "vnc", "option": "enabled", "value": "false"}),
            NOVA,
        );
        assert!(
            e.content
                .ends_with("virt_type = kvm\n[vnc]\nenabled = false\n"),
            "{}",
            e.content
        );
        assert_eq!(e.msg, "section and option added");
        let e = ed(json!({"section": "s", "option": "k", "value": "v"}), "");
        // Byte for byte what community.general.ini_file writes.
        assert_eq!(e.content, "\n[s]\nk = v\n");
    }

    #[test]
    fn removes_option_and_section() {
        let e = ed(
            json!({"section": "DEFAULT", "option": "verbose", "state": "absent"}),
            NOVA,
        );
        assert!(!e.content.contains("verbose"));
        assert!(
            !ed(
                json!({"section": "DEFAULT", "option": "nothere", "state": "absent"}),
                NOVA
            )
            .changed
        );
        let e = ed(json!({"section": "libvirt", "state": "absent"}), NOVA);
        assert_eq!(
            e.content,
            "[DEFAULT]\nverbose = true\n# my_ip = 1.2.3.4\n\n"
        );
    }

    #[test]
    fn global_options_before_first_section() {
        let e = ed(
            json!({"option": "top", "value": "1"}),
            "a = 0\n[s]\nb = 1\n",
        );
        assert_eq!(e.content, "a = 0\ntop = 1\n[s]\nb = 1\n");
    }

    #[test]
    fn duplicates_collapse_and_allow_no_value() {
        let e = ed(
            json!({"section": "s", "option": "k", "value": "2"}),
            "[s]\nk = 1\nk = 3\n",
        );
        assert_eq!(e.content, "[s]\nk = 2\n");
        let e = ed(
            json!({"section": "mysqld", "option": "skip-name-resolve", "allow_no_value": true}),
            "[mysqld]\n",
        );
        assert_eq!(e.content, "[mysqld]\nskip-name-resolve\n");
    }
}
