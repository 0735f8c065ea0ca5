//! Where experiments are written: a file of its own (a top-level mapping with the
//! experiment's keys), or the `experiment:` of a play in a playbook (following
//! `import_playbook`). Each found experiment keeps its positioned YAML node, so its
//! problems point at the file, line and column.

use std::path::{Path, PathBuf};

use super::spec::{ExperimentSpec, PlayDefaults};
use crate::playbook::diag::Problem;
use crate::playbook::model::{Play, SourceLoc};
use crate::yaml::{Node, NodeKind};

/// One experiment as written.
#[derive(Debug, Clone)]
pub struct ExperimentSource {
    /// The file it is written in.
    pub file: PathBuf,
    /// The experiment mapping.
    pub node: Node,
    /// The play around it (empty for a file of its own).
    pub play: PlayDefaults,
}

impl ExperimentSource {
    /// The spec, or every problem in it (also a matrix that asks for a disk that
    /// cannot be there).
    pub fn parse(&self) -> Result<ExperimentSpec, Vec<Problem>> {
        let spec = super::spec::parse(&self.node, &self.play)?;
        let loc = self
            .node
            .get_entry("matrix")
            .map_or(&spec.loc, |(k, _)| &k.loc);
        let problems = super::disk::check(&spec, loc);
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

/// Keys that make a top-level mapping an experiment file rather than a (broken) playbook.
const MARKERS: &[&str] = &["matrix", "driver", "pairs"];

fn single_mapping(docs: &[Node]) -> Option<&Node> {
    match docs {
        [doc] if doc.as_map().is_some() => Some(doc),
        _ => None,
    }
}

/// Whether `path` is an experiment file of its own: one YAML mapping with `matrix`,
/// `driver` or `pairs` and no `hosts`/`tasks`. Unreadable or unparsable files are not
/// (the playbook loader reports them).
pub fn standalone(path: &Path) -> Option<ExperimentSource> {
    let docs = crate::yaml::parse_file(path).ok()?;
    let doc = single_mapping(&docs)?;
    let is_experiment = MARKERS.iter().any(|k| doc.get(k).is_some())
        && doc.get("hosts").is_none()
        && doc.get("tasks").is_none();
    is_experiment.then(|| ExperimentSource {
        file: path.to_path_buf(),
        node: doc.clone(),
        play: PlayDefaults::default(),
    })
}

/// The experiment plays of a playbook file, in order, following `import_playbook`
/// (paths relative to the importing file; templated paths are not followed).
pub fn in_playbook(path: &Path) -> Vec<ExperimentSource> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    walk(path, &mut out, &mut seen);
    out
}

fn walk(path: &Path, out: &mut Vec<ExperimentSource>, seen: &mut Vec<PathBuf>) {
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if seen.contains(&key) || seen.len() > 64 {
        return;
    }
    seen.push(key);
    let Ok(docs) = crate::yaml::parse_file(path) else {
        return;
    };
    for doc in &docs {
        let NodeKind::Seq(plays) = &doc.kind else {
            continue;
        };
        for play in plays {
            if let Some(exp) = play.get("experiment") {
                out.push(ExperimentSource {
                    file: path.to_path_buf(),
                    node: exp.clone(),
                    play: PlayDefaults::of_play(play),
                });
            } else if let Some(import) = play
                .get("import_playbook")
                .or_else(|| play.get("ansible.builtin.import_playbook"))
                .and_then(Node::as_str)
                && !crate::template::is_template(import)
            {
                let base = path.parent().unwrap_or(Path::new("."));
                walk(&base.join(import), out, seen);
            }
        }
    }
}

/// Whether any play of these playbooks is an experiment.
pub fn has_experiments(playbooks: &[crate::playbook::Playbook]) -> bool {
    playbooks
        .iter()
        .flat_map(|p| &p.plays)
        .any(|p| p.experiment.is_some())
}

/// The experiment of a loaded play (`play.experiment_loc` names where it was written).
pub fn of_play(play: &Play) -> Option<ExperimentSource> {
    let loc = play.experiment_loc.as_ref()?;
    let docs = crate::yaml::parse_file(&loc.file).ok()?;
    docs.iter()
        .find_map(|d| find_with_parent(d, loc))
        .map(|(node, parent)| ExperimentSource {
            file: (*loc.file).clone(),
            node: node.clone(),
            play: parent.map(PlayDefaults::of_play).unwrap_or_default(),
        })
}

/// The node written at `loc` that is the value of an `experiment` key, and its mapping.
fn find_with_parent<'n>(node: &'n Node, loc: &SourceLoc) -> Option<(&'n Node, Option<&'n Node>)> {
    match &node.kind {
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                if k.key_text() == "experiment" && v.loc == *loc {
                    return Some((v, Some(node)));
                }
                if let Some(found) = find_with_parent(v, loc) {
                    return Some(found);
                }
            }
            None
        }
        NodeKind::Seq(items) => items.iter().find_map(|i| find_with_parent(i, loc)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_their_own_and_plays_in_playbooks() {
        let dir = tempfile::tempdir().unwrap();
        let exp = dir.path().join("exp.yml");
        std::fs::write(
            &exp,
            "name: e\ndriver: qmp\npairs: compute\nmatrix: {flavor: [m1.tiny]}\n",
        )
        .unwrap();
        let broken = dir.path().join("broken.yml");
        std::fs::write(&broken, "hosts: all\ntasks: []\n").unwrap();
        let inner = dir.path().join("inner.yml");
        std::fs::write(&inner, "- name: quick\n  hosts: compute\n  experiment:\n    driver: qmp\n    matrix: {flavor: [m1.tiny]}\n").unwrap();
        let outer = dir.path().join("outer.yml");
        std::fs::write(
            &outer,
            "- hosts: all\n  tasks: [{ping: {}}]\n- import_playbook: inner.yml\n",
        )
        .unwrap();

        assert_eq!(standalone(&exp).unwrap().parse().unwrap().name, "e");
        assert!(
            standalone(&broken).is_none(),
            "a mapping with hosts: is a broken playbook"
        );
        assert!(standalone(&outer).is_none());
        let found = in_playbook(&outer);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].file, inner);
        assert_eq!(found[0].node.loc.line, 4);
        assert_eq!(found[0].parse().unwrap().name, "quick");
    }
}
