//! Records the git commit ferry is built from, for `ferry --version`, and
//! builds the host agent (`agent/`) that ferry carries inside its binary.
use std::process::Command;

fn main() {
    build_agent();
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let commit = if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    };
    println!("cargo:rustc-env=FERRY_GIT_COMMIT={commit}");
    // HEAD names the branch; a new commit moves the branch's ref (a loose file, or
    // packed-refs after `git gc`), not HEAD: watch all three, wherever git keeps
    // them (in a worktree `.git` is a file and refs live in the common dir).
    let mut watched = vec![
        "HEAD".to_string(),
        "index".to_string(),
        "packed-refs".to_string(),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}

/// One line git prints, or None when git fails.
fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// Builds `agent/main.rs` with `rustc` alone (std only, no crates: it must be
/// small, since it travels to every host once) into `$OUT_DIR/ferry-agent`,
/// for the target ferry is built for; `transport::agent` embeds it.
fn build_agent() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    for f in [
        "main.rs",
        "files.rs",
        "names.rs",
        "run.rs",
        "sha256.rs",
        "sys.rs",
    ] {
        println!("cargo:rerun-if-changed=agent/{f}");
    }
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2024",
            "--crate-name",
            "ferry_agent",
            "--crate-type",
            "bin",
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
            "-C",
            "strip=symbols",
            "--target",
            &target,
            "-o",
            &format!("{out}/ferry-agent"),
            "agent/main.rs",
        ])
        .status()
        .expect("cannot run rustc to build agent/main.rs");
    assert!(status.success(), "rustc failed to build agent/main.rs");
}
