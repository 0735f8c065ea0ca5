//! An experiment's hosts resolved against the inventory: the migration pairs, the
//! prober, and whether links are shaped. `ferry check` and `ferry experiment` share
//! this, so a pair host without `migration_ip` is named before anything runs.

use serde_json::Value;

use super::scenario::HostPair;
use super::spec::{ExperimentSpec, PairsSpec};
use crate::inventory::Inventory;
use crate::playbook::diag::Problem;
use crate::suggest::suggest;
use crate::yaml::SourceLoc;

/// The hosts of an experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedHosts {
    pub pairs: Vec<HostPair>,
    /// The ping prober; None: each run's destination host.
    pub prober: Option<String>,
    /// Link shaping: the file's `shape_link`, else true when a pair host is a ferry
    /// lab host (it has the lab's group var `lab_name`).
    pub shape_link: bool,
    /// The full guest every run migrates (`guest:`), a host of `guests`.
    pub guest: Option<String>,
}

fn has_var(inv: &Inventory, host: &str, var: &str) -> bool {
    match inv.host_vars(host).get(var) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    }
}

fn unknown_host(inv: &Inventory, name: &str, loc: &SourceLoc, what: &str) -> Problem {
    let hint = match suggest(name, inv.hosts.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "hosts in the inventory: {}",
            inv.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    };
    Problem::error(loc, format!("{what} `{name}` is not in the inventory"))
        .label("unknown host")
        .hint(hint)
        .span_len(name.len())
}

/// Resolves the spec's pairs and prober. `play_hosts`: the pattern of the play around
/// `experiment:` (its extra hosts are prober candidates). `limit`: `--limit`.
pub fn resolve(
    spec: &ExperimentSpec,
    inv: &Inventory,
    play_hosts: Option<&str>,
    limit: Option<&str>,
) -> Result<ResolvedHosts, Vec<Problem>> {
    let mut problems = Vec::new();
    let allowed = |h: &str| match limit {
        None => true,
        Some(l) => inv
            .select_limited(h, Some(l))
            .map(|s| !s.is_empty())
            .unwrap_or(false),
    };
    let mut pairs = Vec::new();
    let mut pool: Vec<String> = Vec::new();
    let mut pair_locs: Vec<(String, SourceLoc)> = Vec::new();
    match &spec.pairs {
        PairsSpec::Explicit(list) => {
            for [(src, src_loc), (dst, dst_loc)] in list {
                let mut ok = true;
                for (h, loc) in [(src, src_loc), (dst, dst_loc)] {
                    if !inv.hosts.contains_key(h) {
                        problems.push(unknown_host(inv, h, loc, "pair host"));
                        ok = false;
                    }
                }
                if ok && allowed(src) && allowed(dst) {
                    pairs.push(HostPair {
                        source: src.clone(),
                        destination: dst.clone(),
                    });
                    pair_locs.push((src.clone(), src_loc.clone()));
                    pair_locs.push((dst.clone(), dst_loc.clone()));
                }
            }
            if let Some(p) = play_hosts {
                pool = inv.select_limited(p, limit).unwrap_or_default();
            }
        }
        PairsSpec::Pattern(pattern, loc) => match inv.select_limited(pattern, limit) {
            Err(e) => problems.push(
                Problem::error(loc, format!("bad host pattern `{pattern}`: {e}"))
                    .label("this pattern"),
            ),
            Ok(hosts) => {
                for chunk in hosts.chunks(2) {
                    if let [a, b] = chunk {
                        pairs.push(HostPair {
                            source: a.clone(),
                            destination: b.clone(),
                        });
                        pair_locs.push((a.clone(), loc.clone()));
                        pair_locs.push((b.clone(), loc.clone()));
                    }
                }
                if hosts.len() < 2 {
                    problems.push(
                        Problem::error(
                            loc,
                            format!(
                                "host pattern `{pattern}` matches {} host(s){}; a pair needs two",
                                hosts.len(),
                                if limit.is_some() { " within --limit" } else { "" }
                            ),
                        )
                        .label("pairs from this pattern")
                        .hint("pairs from a pattern are consecutive hosts in inventory order (1st -> 2nd, 3rd -> 4th, ...); name them with `pairs: [[src, dst]]` to choose"),
                    );
                }
                pool = hosts;
            }
        },
    }
    if pairs.is_empty() && problems.is_empty() {
        problems.push(
            Problem::error(&spec.pairs_loc, "no pair is left within --limit")
                .hint("widen --limit to both hosts of a pair"),
        );
    }
    // Every pair host needs its migration network address: the migration crosses it.
    let mut named = std::collections::HashSet::new();
    for (h, loc) in &pair_locs {
        if !has_var(inv, h, "migration_ip") && named.insert(h.clone()) {
            let declared = inv
                .hosts
                .get(h)
                .map(|x| format!(" (declared at {})", x.loc))
                .unwrap_or_default();
            problems.push(
                Problem::error(loc, format!("pair host `{h}` has no `migration_ip`"))
                    .label("pair host")
                    .hint(format!(
                        "set `migration_ip:` (the host's address on the migration network) in the inventory for {h}{declared}; migrations go to that address"
                    )),
            );
        }
    }
    let in_pairs = |h: &str| pairs.iter().any(|p| p.source == h || p.destination == h);
    let prober = match &spec.prober {
        Some((name, loc)) => {
            if !inv.hosts.contains_key(name) {
                problems.push(unknown_host(inv, name, loc, "prober"));
            }
            Some(name.clone())
        }
        None => pool.iter().find(|h| !in_pairs(h)).cloned(),
    };
    problems.extend(super::full_guest::check(spec, inv));
    let shape_link = spec.shape_link.unwrap_or_else(|| {
        pairs.iter().any(|p| {
            has_var(inv, &p.source, "lab_name") || has_var(inv, &p.destination, "lab_name")
        })
    });
    if problems.is_empty() {
        Ok(ResolvedHosts {
            pairs,
            prober,
            shape_link,
            guest: spec.guest.as_ref().map(|(g, _)| g.clone()),
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inventory(text: &str) -> (tempfile::TempDir, Inventory) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts.yml");
        std::fs::write(&p, text).unwrap();
        let inv = Inventory::load(&[p]).unwrap();
        (dir, inv)
    }

    fn spec(src: &str) -> ExperimentSpec {
        let docs = crate::yaml::parse_str(src, Path::new("e.yml")).unwrap();
        super::super::spec::parse(&docs[0], &Default::default()).unwrap()
    }

    const INV: &str = "all:\n  children:\n    lab:\n      vars: {lab_name: t}\n      hosts:\n        h1: {migration_ip: 10.0.1.1}\n        h2: {migration_ip: 10.0.1.2}\n        h3: {migration_ip: 10.0.1.3}\n";

    #[test]
    fn a_pattern_pairs_consecutive_hosts_and_the_odd_one_probes() {
        let (_d, inv) = inventory(INV);
        let r = resolve(
            &spec("name: t\ndriver: qmp\npairs: lab\nmatrix: {flavor: [m1.tiny]}\n"),
            &inv,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            r.pairs,
            vec![HostPair {
                source: "h1".into(),
                destination: "h2".into()
            }]
        );
        assert_eq!(r.prober.as_deref(), Some("h3"));
        assert!(r.shape_link, "a ferry lab shapes its links by default");
        let r = resolve(&spec("name: t\ndriver: qmp\npairs: lab\nshape_link: false\nmatrix: {flavor: [m1.tiny]}\n"), &inv, None, Some("h1:h2")).unwrap();
        assert_eq!((r.prober, r.shape_link), (None, false));
    }

    #[test]
    fn unknown_hosts_and_missing_migration_ip_are_named() {
        let (_d, inv) =
            inventory("all:\n  hosts:\n    compute1: {migration_ip: 10.0.1.1}\n    compute2: {}\n");
        let err = resolve(&spec("name: t\ndriver: qmp\npairs: [[compute1, compute2], [compute1, compute3]]\nmatrix: {flavor: [m1.tiny]}\n"), &inv, None, None).unwrap_err();
        let got: Vec<String> = err
            .iter()
            .map(|p| format!("{}:{} {}", p.loc.line, p.loc.col, p.message))
            .collect();
        assert_eq!(
            got,
            vec![
                "3:42 pair host `compute3` is not in the inventory",
                "3:20 pair host `compute2` has no `migration_ip`"
            ]
        );
        assert_eq!(err[0].hint.as_deref(), Some("did you mean `compute1`?"));
        assert!(
            err[1].hint.as_deref().unwrap().contains("hosts.yml:4:5"),
            "{:?}",
            err[1].hint
        );
    }
}
