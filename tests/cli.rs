//! What `ferry --version` says: the package version and the commit the binary was
//! built from (what a results directory's provenance records).

use std::process::Command;

#[test]
fn version_names_the_commit_built_from() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--version")
        .output()
        .expect("run ferry --version");
    assert!(out.status.success(), "ferry --version failed");
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run git rev-parse (the test runs in ferry's git checkout)");
    assert!(head.status.success(), "git rev-parse HEAD failed");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let expected = format!("ferry {} (commit {head}", env!("CARGO_PKG_VERSION"));
    assert!(
        said.starts_with(&expected) && (said.ends_with(')')),
        "ferry --version said {said:?}; expected {expected}) or {expected}-dirty)"
    );
}
