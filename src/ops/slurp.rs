//! `slurp`: a file's content, base64-encoded (never changes anything).

use base64::Engine;

use super::{Args, OpContext, OpError, OpOutcome};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `slurp` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "slurp",
    flags: "",
    params: "src:path!/path",
    rules: "",
};

crate::ops::host_op!(SlurpOp, SPEC);

#[derive(Debug, Clone)]
pub struct Params {
    pub src: String,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("slurp", args);
        let p = Params {
            src: a.req_str("src")?,
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
    let st = t.stat(&p.src).await?;
    if !st.exists {
        return Err(OpError::failed(format!("file not found: {}", p.src)));
    }
    if st.is_dir {
        return Err(OpError::failed(format!(
            "source is a directory and must be a file: {}",
            p.src
        )));
    }
    let data = t.get_file(&p.src).await?;
    Ok(OpOutcome::new(false)
        .with(
            "content",
            base64::engine::general_purpose::STANDARD.encode(data),
        )
        .with("encoding", "base64")
        .with("source", p.src.clone()))
}
