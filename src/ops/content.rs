//! The one path by which ops write a file's content: compare checksums
//! first, never rewrite an unchanged file, validate on a temp file, keep a
//! backup when asked, then one atomic `put_file` carrying mode and owner.

use super::attrs::FileAttrs;
use super::{Change, Diff, OpContext, OpError, Plan, sh, sh_ok, sh_quote, sha256_hex};
use crate::ops::check_state::CheckOverlay;
use crate::transport::{FileSpec, FileStat, Transport};

/// Files larger than this are not read back for `--diff`.
const DIFF_MAX: u64 = 1 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOpts {
    /// Keep a timestamped copy (`PATH.PID.YYYY-MM-DD@HH:MM:SS~`) before replacing.
    pub backup: bool,
    /// Command run on a temp file holding the new content (`%s` = its path);
    /// the file is replaced only when it exits 0.
    pub validate: Option<String>,
    /// Replace an existing file whose content differs (copy's `force`).
    pub force: bool,
}

impl WriteOpts {
    pub fn new() -> Self {
        Self {
            force: true,
            ..Self::default()
        }
    }
}

/// What writing a file's content does (planned: would do).
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub changed: bool,
    pub content_changed: bool,
    pub backup_file: Option<String>,
    pub diff: Option<Diff>,
    /// The path written (a symlink at the dest is followed).
    pub path: String,
    pub checksum: String,
}

/// Check that a `validate:` command names the file.
pub fn check_validate(op: &'static str, v: &Option<String>) -> Result<(), OpError> {
    match v {
        Some(v) if !v.contains("%s") => Err(OpError::params(
            op,
            format!("validate `{v}` must contain %s (the file to check)"),
        )),
        _ => Ok(()),
    }
}

/// Read a file's text when it exists and is small enough to diff.
pub async fn read_for_diff(
    t: &dyn Transport,
    path: &str,
    st: &FileStat,
) -> Result<String, OpError> {
    if !st.exists || !st.is_file {
        return Ok(String::new());
    }
    if st.size > DIFF_MAX {
        return Ok(format!("(file of {} bytes, not shown)\n", st.size));
    }
    let b = t.get_file(path).await?;
    Ok(String::from_utf8(b).unwrap_or_else(|_| "(binary file, not shown)\n".to_string()))
}

/// What making a path hold some content would do; nothing is changed yet
/// ([`plan_content`], then [`apply_content`] in a real run).
#[derive(Debug, Clone)]
pub struct ContentPlan {
    /// What the write reports (its `backup_file` is known only once applied).
    pub written: Written,
    /// The path written (a symlink at the dest is followed) as it is now.
    pub stat: FileStat,
    /// The file to put there, when its content changes.
    pub spec: Option<FileSpec>,
    /// The attributes to fix, when only they change: the command, and the mode
    /// they give (none for a link).
    pub attrs: Option<(String, Option<u32>)>,
    owner: Option<String>,
    group: Option<String>,
}

impl ContentPlan {
    /// The changes, as the simulated host records them.
    pub fn changes(&self) -> Vec<Change> {
        match (&self.spec, &self.attrs) {
            (Some(spec), _) => vec![Change::File(spec.clone())],
            (None, Some((_, mode))) => vec![Change::Attrs {
                path: self.written.path.clone(),
                mode: *mode,
                owner: self.owner.clone(),
                group: self.group.clone(),
            }],
            (None, None) => Vec::new(),
        }
    }
}

/// Plan making `path` (currently `st`) hold `content` with `attrs`.
/// `before` is the current content when the caller already read it.
#[allow(clippy::too_many_arguments)]
pub async fn plan_content(
    t: &dyn Transport,
    path: &str,
    st: &FileStat,
    before: Option<&[u8]>,
    content: &[u8],
    attrs: &FileAttrs,
    opts: &WriteOpts,
    ctx: &OpContext<'_>,
) -> Result<ContentPlan, OpError> {
    let mut path = path.to_string();
    let mut st = st.clone();
    let overlay_target = t.check_overlay().and_then(|o| o.resolve_links(&path));
    if let Some(target) = overlay_target {
        // A link an earlier task would make (check mode): write where it points.
        path = target;
        st = t.stat(&path).await?;
    } else if st.is_link {
        // Write through the link, as Ansible does, so /etc/resolv.conf-style
        // links stay links.
        let out = sh(t, format!("readlink -f {}", sh_quote(&path))).await?;
        let target = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.rc == 0 && !target.is_empty() {
            path = target;
            st = t.stat(&path).await?;
        }
    }
    if st.is_dir {
        return Err(OpError::failed(format!("{path} is a directory")));
    }
    let checksum = sha256_hex(content);
    let content_changed =
        !st.exists || (opts.force && st.checksum.as_deref() != Some(checksum.as_str()));
    let mut plan = ContentPlan {
        written: Written {
            path: path.clone(),
            checksum,
            content_changed,
            ..Written::default()
        },
        stat: st.clone(),
        spec: None,
        attrs: None,
        owner: attrs.owner.clone(),
        group: attrs.group.clone(),
    };
    if !content_changed {
        if let Some(cmd) = attrs.fix_command(&path, &st, false)? {
            let mode = if st.is_link {
                None
            } else {
                attrs.wanted_mode(&st)?
            };
            plan.attrs = Some((cmd, mode));
            plan.written.changed = true;
        }
        return Ok(plan);
    }
    plan.written.changed = true;
    if ctx.diff {
        let before = match before {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => read_for_diff(t, &path, &st).await?,
        };
        let after = match std::str::from_utf8(content) {
            Ok(s) if content.len() as u64 <= DIFF_MAX => s.to_string(),
            _ => "(binary or large content, not shown)\n".to_string(),
        };
        plan.written.diff = Some(Diff {
            path: Some(path.clone()),
            before,
            after,
        });
    }
    plan.spec = Some(if st.exists {
        let keep = |want: &Option<String>, cur: &str| {
            want.clone()
                .or_else(|| (!cur.is_empty()).then(|| cur.to_string()))
        };
        FileSpec {
            path: path.clone(),
            content: content.to_vec(),
            mode: Some(attrs.wanted_mode(&st)?.unwrap_or(st.mode & 0o7777)),
            owner: keep(&attrs.owner, &st.owner),
            group: keep(&attrs.group, &st.group),
            become_: None,
        }
    } else {
        new_file_spec(&path, content, attrs)?
    });
    Ok(plan)
}

/// Make the planned content (or attributes) so: validate on a temp file, keep a
/// backup when asked, then one atomic `put_file`.
pub async fn apply_content(
    t: &dyn Transport,
    plan: ContentPlan,
    opts: &WriteOpts,
) -> Result<Written, OpError> {
    let mut w = plan.written;
    let path = w.path.clone();
    let st = plan.stat;
    let Some(spec) = plan.spec else {
        if let Some((cmd, _)) = plan.attrs {
            sh_ok(t, cmd, &format!("setting attributes of {path}")).await?;
        }
        return Ok(w);
    };
    let content = &spec.content;
    let (dir, base) = match path.rsplit_once('/') {
        Some((d, b)) => (if d.is_empty() { "/" } else { d }, b),
        None => (".", path.as_str()),
    };
    if let Some(v) = &opts.validate {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = format!("{dir}/.ferry-validate.{base}.{nanos}");
        t.put_file(&FileSpec {
            path: tmp.clone(),
            content: content.to_vec(),
            mode: Some(0o600),
            ..FileSpec::default()
        })
        .await?;
        let qt = sh_quote(&tmp);
        let cmd = format!("{}; rc=$?; rm -f {qt}; exit $rc", v.replace("%s", &qt));
        let out = sh(t, cmd).await?;
        if out.rc != 0 {
            return Err(OpError::command(
                format!("validation of {path} failed, file left unchanged: {v}"),
                &out,
            ));
        }
    }
    if opts.backup && st.exists {
        let cmd = format!(
            "b={}.$$.$(date +%Y-%m-%d@%H:%M:%S)~; cp -p {} \"$b\" && printf %s \"$b\"",
            sh_quote(&path),
            sh_quote(&path)
        );
        let out = sh(t, cmd).await?;
        if out.rc != 0 {
            return Err(OpError::command(format!("backing up {path}"), &out));
        }
        w.backup_file = Some(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    if st.exists {
        t.put_file(&spec).await?;
    } else if t.create_file(&spec).await?.is_some() {
        // One round trip where the transport can (see `Transport::create_file`);
        // when something appeared meanwhile, or the parent is missing,
        // `put_file` replaces it or says why it cannot.
        t.put_file(&spec).await?;
    }
    Ok(w)
}

/// The file to write at `path` when nothing is there yet: `attrs`' mode
/// over a fresh 0644, its owner and group.
pub fn new_file_spec(path: &str, content: &[u8], attrs: &FileAttrs) -> Result<FileSpec, OpError> {
    let fresh = FileStat {
        mode: 0o644,
        ..FileStat::default()
    };
    Ok(FileSpec {
        path: path.to_string(),
        content: content.to_vec(),
        mode: attrs.wanted_mode(&fresh)?,
        owner: attrs.owner.clone(),
        group: attrs.group.clone(),
        become_: None,
    })
}

/// The result of editing a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub content: String,
    pub changed: bool,
    pub msg: String,
    /// Lines removed (state=absent).
    pub found: usize,
}

/// What an edit's apply does: make the missing parent directory, then write.
pub struct EditWork {
    parent: Option<String>,
    content: ContentPlan,
    opts: WriteOpts,
}

impl EditWork {
    /// Make the planned edit; `outcome` (the plan's) gains the backup's path.
    pub async fn apply(
        self,
        t: &dyn Transport,
        mut outcome: super::OpOutcome,
    ) -> Result<super::OpOutcome, OpError> {
        if let Some(dir) = &self.parent {
            make_dir(t, dir).await?;
        }
        let w = apply_content(t, self.content, &self.opts).await?;
        outcome.set("backup", w.backup_file.unwrap_or_default());
        Ok(outcome)
    }
}

/// The common tail of the text-editing ops: plan writing `edit` over `before` (when
/// it changed anything), below `parent` made first when it is missing, and report
/// like Ansible does.
#[allow(clippy::too_many_arguments)]
pub async fn plan_edit(
    t: &dyn Transport,
    path: &str,
    st: &FileStat,
    before: &[u8],
    edit: &Edit,
    attrs: &FileAttrs,
    opts: &WriteOpts,
    ctx: &OpContext<'_>,
    parent: Option<String>,
) -> Result<Plan, OpError> {
    let content: Vec<u8> = if edit.changed {
        edit.content.as_bytes().to_vec()
    } else {
        before.to_vec()
    };
    let plan = plan_content(t, path, st, Some(before), &content, attrs, opts, ctx).await?;
    let changed = plan.written.changed;
    let mut r = super::OpOutcome::new(changed);
    r.diff = plan.written.diff.clone();
    let msg = if edit.changed {
        edit.msg.clone()
    } else if changed {
        "ownership, perms or SE linux context changed".to_string()
    } else {
        String::new()
    };
    r.msg = (!msg.is_empty()).then_some(msg);
    r.set("backup", "");
    super::attrs::stat_result(&mut r, path, st);
    if !changed {
        return Ok(Plan::done(r));
    }
    let mut changes: Vec<Change> = parent.iter().map(|d| Change::dir(d, None)).collect();
    changes.extend(plan.changes());
    let work = EditWork {
        parent,
        content: plan,
        opts: opts.clone(),
    };
    Ok(Plan::changes(r, changes, work))
}

/// What a line-editing op (lineinfile, blockinfile) finds before it edits.
pub enum EditTarget {
    /// Edit this content (empty for a file about to be created, below `parent`
    /// when that directory is missing).
    Edit {
        stat: crate::transport::FileStat,
        before: Vec<u8>,
        parent: Option<String>,
    },
    /// Nothing to edit: the report says why.
    Done(super::OpOutcome),
}

/// Read a file an op edits: a directory is an error; a missing file is fine with
/// `state: absent` (`absent_msg`), created with `create: true` (parents too: the
/// plan makes them), else an error naming `what` (Ansible's "Path"/"Destination").
pub async fn read_for_edit(
    t: &dyn Transport,
    path: &str,
    state_present: bool,
    create: bool,
    absent_msg: &str,
    what: &str,
) -> Result<EditTarget, OpError> {
    // Stat and content in one round trip where the transport can.
    let read = t.stat_read(path).await?;
    let stat = read.stat;
    if stat.is_dir {
        return Err(OpError::failed(format!("Path {path} is a directory !")));
    }
    if !stat.exists {
        if !state_present {
            return Ok(EditTarget::Done(
                super::OpOutcome::new(false)
                    .msg(absent_msg)
                    .with("path", path),
            ));
        }
        if !create {
            return Err(OpError::failed(format!(
                "{what} {path} does not exist ! (use create: true to create it)"
            )));
        }
        return Ok(EditTarget::Edit {
            stat,
            before: Vec::new(),
            parent: if read.parent_is_dir == Some(true) {
                None
            } else {
                parent_dir(path)
            },
        });
    }
    let before = match read.content {
        Some(c) => c,
        None => t.get_file(path).await?,
    };
    Ok(EditTarget::Edit {
        stat,
        before,
        parent: None,
    })
}

/// The directory a file about to be created goes into (none for a bare name or `/x`).
pub fn parent_dir(path: &str) -> Option<String> {
    match path.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => Some(dir.to_string()),
        _ => None,
    }
}

/// Make a directory with its missing parents (`mkdir -p`).
async fn make_dir(t: &dyn Transport, dir: &str) -> Result<(), OpError> {
    let out = t.make_dirs(dir).await?;
    if out.rc != 0 {
        return Err(OpError::command(format!("creating {dir}"), &out));
    }
    Ok(())
}

/// One whole-file change of an op that writes or removes files (`apt_key`,
/// `apt_repository`): planned first, applied in order by a real run.
pub enum FileWork {
    /// Write the planned content (or attributes).
    Write(Box<ContentPlan>, WriteOpts),
    /// Remove the file.
    Remove(String),
}

impl FileWork {
    /// The changes, as the simulated host records them.
    pub fn changes(&self) -> Vec<Change> {
        match self {
            FileWork::Write(plan, _) => plan.changes(),
            FileWork::Remove(path) => vec![Change::Remove(path.clone())],
        }
    }

    /// Make the change.
    pub async fn apply(self, t: &dyn Transport) -> Result<(), OpError> {
        match self {
            FileWork::Write(plan, opts) => apply_content(t, *plan, &opts).await.map(|_| ()),
            FileWork::Remove(path) => super::sh_ok(
                t,
                format!("rm -f -- {}", sh_quote(&path)),
                &format!("removing {path}"),
            )
            .await
            .map(|_| ()),
        }
    }
}
