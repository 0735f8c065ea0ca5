//! `template`: render a controller-side template with the host's variables
//! (through `OpContext::render`) and place it like `copy`.

use std::path::PathBuf;

use super::attrs::FileAttrs;
use super::content::{WriteOpts, check_validate};
use super::copy::search_list;
use super::place::{Placing, Work, apply, plan_found, plan_place};
use super::{Args, OpContext, OpError, Plan, find_src};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `template` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "template",
    flags: "",
    params: "src:path!; dest:path!; mode:mode; owner:str; group:str; backup:bool; force:bool; validate:str",
    rules: "",
};

crate::ops::planned_op!(TemplateOp, SPEC, place);

#[derive(Debug, Clone)]
pub struct Params {
    pub src: String,
    pub dest: String,
    pub backup: bool,
    pub force: bool,
    pub validate: Option<String>,
    pub attrs: FileAttrs,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("template", args);
        let p = Params {
            src: a.req_str("src")?,
            dest: a.req_str("dest")?,
            backup: a.bool_or("backup", false)?,
            force: a.bool_or("force", true)?,
            validate: a.str("validate")?,
            attrs: FileAttrs::parse(&a)?,
        };
        a.finish()?;
        check_validate("template", &p.validate)?;
        Ok(p)
    }

    /// Find the template on the controller (templates/ below each base dir).
    pub fn resolve_src(&self, dirs: &[PathBuf]) -> Result<PathBuf, OpError> {
        find_src(&self.src, "templates", dirs).ok_or_else(|| {
            OpError::params(
                "template",
                format!(
                    "Could not find template `{}` in {} (looked in templates/ below each and in each)",
                    self.src,
                    search_list(dirs)
                ),
            )
        })
    }
}

/// Render `src` with the engine's renderer.
pub fn render(p: &Params, ctx: &OpContext<'_>) -> Result<(PathBuf, String), OpError> {
    let path = p.resolve_src(&ctx.base_dirs())?;
    let source = std::fs::read_to_string(&path)
        .map_err(|e| OpError::failed(format!("reading template {}: {e}", path.display())))?;
    let text = ctx
        .render_file(&source, &path)
        .map_err(|e| OpError::failed(format!("rendering {}: {e}", path.display())))?;
    Ok((path, text))
}

pub async fn plan(t: &dyn Transport, p: &Params, ctx: &OpContext<'_>) -> Result<Plan, OpError> {
    let (path, text) = render(p, ctx)?;
    let opts = WriteOpts {
        backup: p.backup,
        validate: p.validate.clone(),
        force: p.force,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".j2").to_string());
    let placing = Placing {
        op: "template",
        dest: p.dest.clone(),
        name,
        content: text.into_bytes(),
        attrs: p.attrs.clone(),
        opts,
        src: Some(path.display().to_string()),
    };
    plan_place(t, placing, ctx).await
}
