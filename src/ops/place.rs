//! Placing controller content at a dest on the host, the plan `copy` and `template`
//! share: one file (a directory dest gets it below, a dest ending in `/` is made),
//! or `copy`'s directory tree. A new file is created in one round trip: the plan asks
//! the host nothing ([`super::Plan::found_by_apply`]), the apply creates the file
//! where nothing is and otherwise plans from what it found, as check mode does.

use super::attrs::{FileAttrs, stat_result};
use super::content::{ContentPlan, WriteOpts, apply_content, plan_content};
use super::{Change, OpContext, OpError, OpOutcome, Plan, sh};
use crate::transport::{FileSpec, FileStat, Transport};

/// What placing one file's content needs, kept by its plan for the plan from what is
/// at `dest` ([`plan_found`]).
pub struct Placing {
    /// The op, for messages.
    pub op: &'static str,
    pub dest: String,
    /// The file's name below a directory dest (none: the dest must be a file path).
    pub name: Option<String>,
    pub content: Vec<u8>,
    pub attrs: FileAttrs,
    pub opts: WriteOpts,
    /// The `src` the result reports, after place's own fields.
    pub src: Option<String>,
}

/// What a `copy` or `template` plan hands its apply.
pub enum Work {
    /// Create this file when nothing is at its path; else plan from what is there
    /// ([`plan_found`]) and apply that.
    Create(Box<Placing>, FileSpec),
    /// Make the dest directory (when missing), then write the content.
    Write {
        mkdir: Option<String>,
        content: Box<ContentPlan>,
        opts: WriteOpts,
    },
    /// A directory tree: make the missing directories (the command, and the root for
    /// its error), then write each file.
    Tree {
        mkdir: Option<(String, String)>,
        files: Vec<ContentPlan>,
        opts: WriteOpts,
    },
}

/// Plan placing content at a dest (a directory dest gets the name below it).
pub async fn plan_place(
    t: &dyn Transport,
    placing: Placing,
    ctx: &OpContext<'_>,
) -> Result<Plan, OpError> {
    let Placing {
        dest,
        content,
        attrs,
        opts,
        ..
    } = &placing;
    let plain = !ctx.diff && !opts.backup && opts.validate.is_none();
    if !plain || dest.ends_with('/') {
        let st = t.stat(dest.trim_end_matches('/')).await?;
        return place_found(t, placing, st, ctx).await;
    }
    // The common case in one round trip: the apply creates the file when nothing is
    // there, else gets the stat to plan from.
    let spec = super::content::new_file_spec(dest, content, attrs)?;
    let mut r = OpOutcome::new(true);
    r.set("dest", dest.clone());
    r.set("checksum", super::sha256_hex(content));
    r.set("size", content.len());
    r.set("state", "file");
    if let Some(src) = &placing.src {
        r.set("src", src.clone());
    }
    let changes = vec![Change::File(spec.clone())];
    Ok(Plan::found_by_apply(
        r,
        changes,
        Work::Create(Box::new(placing), spec),
    ))
}

/// The plan of creating a file where nothing is, from what is at its path (check
/// mode's, which may not create it to find out).
pub async fn plan_found(
    t: &dyn Transport,
    ctx: &OpContext<'_>,
    op: &str,
    plan: Plan,
) -> Result<Plan, OpError> {
    match plan.into_work::<Work>(op)? {
        (_, Work::Create(placing, _)) => {
            let st = t.stat(&placing.dest).await?;
            place_found(t, *placing, st, ctx).await
        }
        _ => Err(OpError::failed(format!("{op}: its plan creates no file"))),
    }
}

/// Plan placing content at a dest that is now `st`.
async fn place_found(
    t: &dyn Transport,
    placing: Placing,
    mut st: FileStat,
    ctx: &OpContext<'_>,
) -> Result<Plan, OpError> {
    let Placing {
        op,
        mut dest,
        name,
        content,
        attrs,
        opts,
        src,
    } = placing;
    let mut mkdir = None;
    if dest.ends_with('/') && dest.len() > 1 && !st.exists {
        // As Ansible: a dest ending in `/` is a directory, created when missing.
        mkdir = Some(dest.clone());
        st = FileStat {
            exists: true,
            is_dir: true,
            ..FileStat::default()
        };
    }
    if st.is_dir {
        let Some(name) = name else {
            return Err(OpError::failed(format!(
                "{op}: dest {dest} is a directory; with content: the dest must be a file path"
            )));
        };
        dest = format!("{}/{}", dest.trim_end_matches('/'), name);
        st = if mkdir.is_some() {
            FileStat::default()
        } else {
            t.stat(&dest).await?
        };
    }
    if !st.exists && mkdir.is_none() {
        let parent = match dest.rsplit_once('/') {
            Some(("", _)) => "/".to_string(),
            Some((d, _)) => d.to_string(),
            None => ".".to_string(),
        };
        let ps = t.stat(&parent).await?;
        if !ps.is_dir && !(ps.is_link) {
            return Err(OpError::failed(format!(
                "Destination directory {parent} does not exist"
            )));
        }
    }
    let plan = plan_content(t, &dest, &st, None, &content, &attrs, &opts, ctx).await?;
    let w = &plan.written;
    let mut r = OpOutcome::new(w.changed);
    r.diff = w.diff.clone();
    r.set("dest", dest.clone());
    r.set("checksum", w.checksum.clone());
    r.set("size", content.len());
    if !w.changed {
        stat_result(&mut r, &dest, &st);
        r.result.shift_remove("path");
    } else {
        r.set("state", "file");
    }
    if let Some(src) = src {
        r.set("src", src);
    }
    if !w.changed {
        return Ok(Plan::done(r));
    }
    let mut changes: Vec<Change> = mkdir.iter().map(|d| Change::dir(d, None)).collect();
    changes.extend(plan.changes());
    let work = Work::Write {
        mkdir,
        content: Box::new(plan),
        opts,
    };
    Ok(Plan::changes(r, changes, work))
}

/// Make what a `copy` or `template` plan says.
pub async fn apply(
    t: &dyn Transport,
    ctx: &OpContext<'_>,
    r: OpOutcome,
    work: Work,
) -> Result<OpOutcome, OpError> {
    match work {
        Work::Create(placing, spec) => {
            let Some(st) = t.create_file(&spec).await? else {
                return Ok(r);
            };
            // Something is there: plan from it, as check mode does, and make that.
            let op = placing.op;
            let plan = place_found(t, *placing, st, ctx).await?;
            if !plan.pending() {
                return Ok(plan.outcome);
            }
            match plan.into_work::<Work>(op)? {
                (
                    r,
                    Work::Write {
                        mkdir,
                        content,
                        opts,
                    },
                ) => apply_write(t, r, mkdir, *content, &opts).await,
                _ => Err(OpError::failed(format!(
                    "{op}: its plan from the dest writes no file"
                ))),
            }
        }
        Work::Write {
            mkdir,
            content,
            opts,
        } => apply_write(t, r, mkdir, *content, &opts).await,
        Work::Tree { mkdir, files, opts } => {
            if let Some((cmd, root)) = mkdir {
                let out = sh(t, cmd).await?;
                if out.rc != 0 {
                    return Err(OpError::command(
                        format!("creating directories below {root}"),
                        &out,
                    ));
                }
            }
            for f in files {
                apply_content(t, f, &opts).await?;
            }
            Ok(r)
        }
    }
}

/// Make the dest directory when planned, then write; the result gains the backup's
/// path (after `size`, where Ansible has it).
async fn apply_write(
    t: &dyn Transport,
    mut r: OpOutcome,
    mkdir: Option<String>,
    content: ContentPlan,
    opts: &WriteOpts,
) -> Result<OpOutcome, OpError> {
    if let Some(dest) = mkdir {
        let out = t.make_dirs(&dest).await?;
        if out.rc != 0 {
            return Err(OpError::command(format!("creating {dest}"), &out));
        }
    }
    let w = apply_content(t, content, opts).await?;
    if let Some(b) = w.backup_file {
        let at = r
            .result
            .keys()
            .position(|k| k == "size")
            .map_or(r.result.len(), |i| i + 1);
        r.result.shift_insert(at, "backup_file".into(), b.into());
    }
    Ok(r)
}
