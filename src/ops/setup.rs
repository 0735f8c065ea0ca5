//! `setup`: gather host facts; they become `ansible_facts` and `ansible_*` variables.
//!
//! `filter` keeps the facts whose names match one of its shell-style patterns, as
//! Ansible does (`ansible_distribution*`; the `ansible_` prefix may be left out).
//! ferry gathers every fact in one round trip, so `gather_subset` takes only `all`,
//! and `gather_timeout` and `fact_path` (local facts) are refused with a reason, by
//! `ferry check` as by `ferry run`.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{Args, Op, OpContext, OpError, OpOutcome};
use crate::transport::Transport;
use crate::vars::Vars;

use super::schema::Spec;

/// What `setup` takes, declared once: `ferry check` validates tasks against it and
/// the op reads its arguments through it (notation: [`crate::ops::schema`]).
pub const SPEC: Spec = Spec {
    name: "setup",
    flags: "",
    params: "gather_subset:list; filter:list; gather_timeout:int; fact_path:path",
    rules: "",
};

pub struct Setup;

/// A `setup` task's arguments.
pub struct Params {
    /// Patterns a fact's name must match to be kept (none: keep all).
    pub filter: Vec<regex::Regex>,
}

impl Params {
    pub fn parse(args: &Vars) -> Result<Params, OpError> {
        let a = Args::new("setup", args);
        if let Some(subset) = a.list("gather_subset")?
            && let Some(s) = subset.iter().find(|s| s.as_str() != "all")
        {
            return Err(a.err(format!(
                "gather_subset `{s}` is not supported: ferry gathers every fact in one round trip; \
                 use `gather_subset: all` and `filter:` to keep only some facts"
            )));
        }
        if a.value("gather_timeout")?.is_some() {
            return Err(a.err(
                "gather_timeout is not supported: facts come from one command; \
                 set the task's `timeout:` instead",
            ));
        }
        if a.value("fact_path")?.is_some() {
            return Err(a.err(
                "fact_path (local facts from /etc/ansible/facts.d) is not supported; \
                 read such files with `slurp` or `command` and `set_fact`",
            ));
        }
        let filter = a
            .list("filter")?
            .unwrap_or_default()
            .iter()
            .map(|g| glob(g).map_err(|e| a.err(format!("filter `{g}`: {e}"))))
            .collect::<Result<_, _>>()?;
        a.finish()?;
        Ok(Params { filter })
    }

    /// Whether fact `name` (`ansible_...` or `ferry_...`) is kept.
    fn keeps(&self, name: &str) -> bool {
        let short = name.strip_prefix("ansible_").unwrap_or(name);
        self.filter.is_empty()
            || self
                .filter
                .iter()
                .any(|r| r.is_match(name) || r.is_match(short))
    }
}

/// A shell-style pattern (`*`, `?`, `[...]`) as an anchored regex.
fn glob(pattern: &str) -> Result<regex::Regex, regex::Error> {
    let mut re = String::from("^");
    let mut in_class = false;
    for c in pattern.chars() {
        match c {
            '*' if !in_class => re.push_str(".*"),
            '?' if !in_class => re.push('.'),
            '[' if !in_class => {
                in_class = true;
                re.push('[');
            }
            ']' if in_class => {
                in_class = false;
                re.push(']');
            }
            c if in_class => re.push(c),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re)
}

/// Every fact of the host in one round trip (`crate::facts::gather`), keyed
/// as Ansible names its variables (`ansible_distribution`, ..., and ferry's own `ferry_nics`).
async fn gather(t: &dyn Transport) -> Result<Map<String, Value>, OpError> {
    match crate::facts::gather(t).await {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(OpError::failed(format!("facts are not a mapping: {other}"))),
        Err(crate::facts::FactsError::Transport(e)) => Err(OpError::Transport(e)),
        Err(e) => Err(OpError::failed(e.to_string())),
    }
}

#[async_trait]
impl Op for Setup {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn check_args(&self, args: &Vars) -> Result<(), OpError> {
        Params::parse(args).map(|_| ())
    }
    async fn run_unplanned(&self, ctx: &OpContext<'_>) -> Result<OpOutcome, OpError> {
        let p = Params::parse(ctx.args)?;
        let mut facts = gather(ctx.transport.as_ref()).await?;
        facts.retain(|k, _| p.keeps(k));
        let mut o = OpOutcome::ok();
        let mut set = Vars::new();
        // Variables keep their names (`ansible_kernel`, `ferry_nics`); inside
        // `ansible_facts` they lose the `ansible_` prefix, as in Ansible.
        let mut short = Map::new();
        for (k, v) in &facts {
            set.insert(k.clone(), v.clone());
            let key = k.strip_prefix("ansible_").unwrap_or(k);
            short.insert(key.to_string(), v.clone());
        }
        set.insert("ansible_facts".into(), Value::Object(short.clone()));
        o.result
            .insert("ansible_facts".into(), Value::Object(short));
        o.facts = set;
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Params, OpError> {
        Params::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn filter_keeps_matching_facts_with_or_without_the_prefix() {
        let p = parse(json!({"filter": ["ansible_distribution*", "kernel"]})).unwrap();
        assert!(p.keeps("ansible_distribution"));
        assert!(p.keeps("ansible_distribution_release"));
        assert!(p.keeps("ansible_kernel"));
        assert!(!p.keeps("ansible_hostname"));
        assert!(!p.keeps("ferry_nics"));
        let all = parse(json!({"gather_subset": ["all"]})).unwrap();
        assert!(all.keeps("ferry_nics"));
    }

    #[test]
    fn subsets_timeouts_and_local_facts_are_refused_with_a_reason() {
        for (args, says) in [
            (
                json!({"gather_subset": ["!all", "min"]}),
                "gather_subset `!all`",
            ),
            (json!({"gather_timeout": 10}), "timeout:"),
            (json!({"fact_path": "/etc/ansible/facts.d"}), "slurp"),
        ] {
            let e = parse(args).err().expect("refused").to_string();
            assert!(e.starts_with("setup: ") && e.contains(says), "{e}");
        }
    }
}
