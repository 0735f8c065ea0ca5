//! The file and system ops against real files on this machine, through a
//! small local `Transport` (sh -c + atomic puts) so the tests need no sshd.
//! Every op: first run changed, second run unchanged with content, mtime and
//! inode untouched, and check mode predicting the first run while touching
//! nothing.

#[path = "common/tree.rs"]
mod tree;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tree::snapshot;

use async_trait::async_trait;
use ferry::ops::{OpContext, OpError, OpOutcome, Render};
use ferry::template::TemplateError;
use ferry::transport::{CommandOutput, CommandSpec, FileSpec, FileStat, Transport, TransportError};
use ferry::vars::Vars;
use serde_json::{Value, json};
use sha2::Digest;

/// A Transport on this machine: `sh -c` and std::fs, puts are temp+fsync+rename.
struct Local;

fn err(e: impl std::fmt::Display) -> TransportError {
    TransportError::Other {
        host: "localhost".into(),
        reason: e.to_string(),
    }
}

#[async_trait]
impl Transport for Local {
    fn host(&self) -> &str {
        "localhost"
    }
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, TransportError> {
        use tokio::io::AsyncWriteExt;
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&spec.cmd);
        if let Some(d) = &spec.cwd {
            c.current_dir(d);
        }
        for (k, v) in &spec.env {
            c.env(k, v);
        }
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().map_err(err)?;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(i) = &spec.stdin {
            stdin.write_all(i).await.map_err(err)?;
        }
        drop(stdin);
        let out = child.wait_with_output().await.map_err(err)?;
        Ok(CommandOutput {
            rc: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
            timed_out: false,
        })
    }
    async fn put_file(&self, spec: &FileSpec) -> Result<(), TransportError> {
        use std::io::Write;
        let path = Path::new(&spec.path);
        let dir = path.parent().unwrap_or(Path::new("/"));
        let tmp = dir.join(format!(
            ".{}.ferry-tmp.{}",
            path.file_name().unwrap().to_string_lossy(),
            std::process::id()
        ));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(&spec.content).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::set_permissions(
            &tmp,
            std::fs::Permissions::from_mode(spec.mode.unwrap_or(0o644)),
        )
        .map_err(err)?;
        let uid = spec.owner.as_ref().map(|o| match o.parse::<u32>() {
            Ok(n) => nix::unistd::Uid::from_raw(n),
            Err(_) => nix::unistd::User::from_name(o).unwrap().unwrap().uid,
        });
        let gid = spec.group.as_ref().map(|o| match o.parse::<u32>() {
            Ok(n) => nix::unistd::Gid::from_raw(n),
            Err(_) => nix::unistd::Group::from_name(o).unwrap().unwrap().gid,
        });
        nix::unistd::chown(&tmp, uid, gid).map_err(err)?;
        std::fs::rename(&tmp, path).map_err(err)?;
        Ok(())
    }
    async fn get_file(&self, path: &str) -> Result<Vec<u8>, TransportError> {
        std::fs::read(path).map_err(err)
    }
    async fn stat(&self, path: &str) -> Result<FileStat, TransportError> {
        let m = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileStat::default()),
            Err(e) => return Err(err(e)),
        };
        let ft = m.file_type();
        let owner = nix::unistd::User::from_uid(m.uid().into())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_default();
        let group = nix::unistd::Group::from_gid(m.gid().into())
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_default();
        Ok(FileStat {
            exists: true,
            is_dir: ft.is_dir(),
            is_file: ft.is_file(),
            is_link: ft.is_symlink(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            owner,
            group,
            size: m.size(),
            mtime: m.mtime(),
            checksum: ft
                .is_file()
                .then(|| hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))),
            link_target: ft.is_symlink().then(|| {
                std::fs::read_link(path)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            }),
        })
    }
    async fn close(&self) {}
}

fn args(v: Value) -> Vars {
    serde_json::from_value(v).unwrap()
}

type RunFn = fn(
    &'static str,
    Vars,
    Env,
)
    -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<OpOutcome, OpError>>>>;

/// What a test gives an op besides its arguments.
struct Env {
    check: bool,
    diff: bool,
    base: PathBuf,
}

/// Templates get `{{ port }}` replaced; nothing else is rendered.
struct PortRender;

impl Render for PortRender {
    fn render_value(&self, value: &Value, _: &Vars) -> Result<Value, TemplateError> {
        Ok(value.clone())
    }
    fn eval_condition(&self, _: &str, _: &Vars) -> Result<bool, TemplateError> {
        Err(TemplateError::new("no conditions here"))
    }
    fn eval_expr(&self, _: &str, _: &Vars) -> Result<Value, TemplateError> {
        Err(TemplateError::new("no expressions here"))
    }
    fn render_template(&self, source: &str, _: &str, _: &Vars) -> Result<String, TemplateError> {
        Ok(source.replace("{{ port }}", "8080"))
    }
}

/// Run op `name` from the registry, through the one op contract, on this machine.
async fn run_op(name: &str, a: Vars, env: Env) -> Result<OpOutcome, OpError> {
    let vars = Vars::new();
    let ctx = OpContext {
        host: "web1",
        transport: std::sync::Arc::new(Local),
        args: &a,
        vars: &vars,
        check: env.check,
        diff: env.diff,
        base_dir: &env.base,
        role_dir: None,
        become_: None,
        env: Vec::new(),
        timeout: None,
        render: &PortRender,
    };
    ferry::ops::lookup(name)
        .unwrap_or_else(|| panic!("no op {name}"))
        .run(&ctx)
        .await
}

macro_rules! op {
    ($m:ident) => {{
        fn f(
            _n: &'static str,
            a: Vars,
            env: Env,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<OpOutcome, OpError>>>>
        {
            Box::pin(run_op(stringify!($m), a, env))
        }
        f as RunFn
    }};
}

fn env(check: bool, diff: bool, base: &Path) -> Env {
    Env {
        check,
        diff,
        base: base.to_path_buf(),
    }
}

/// check (predicts change, touches nothing) -> run (changed) -> run again
/// (unchanged, nothing touched) -> check again (predicts no change).
async fn idempotent(run: RunFn, a: Value, dir: &Path, ctl: &Path) -> (OpOutcome, OpOutcome) {
    let a = args(a);
    let s0 = snapshot(dir);
    let c = run("", a.clone(), env(true, true, ctl)).await.unwrap();
    assert!(c.changed, "check mode should predict a change: {c:?}");
    assert_eq!(snapshot(dir), s0, "check mode touched files");
    let r1 = run("", a.clone(), env(false, true, ctl)).await.unwrap();
    assert!(r1.changed, "first run should change: {r1:?}");
    assert_eq!(
        c.diff, r1.diff,
        "check mode diff differs from the real run's"
    );
    let s1 = snapshot(dir);
    assert_ne!(s1, s0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r2 = run("", a.clone(), env(false, true, ctl)).await.unwrap();
    assert!(!r2.changed, "second run should be ok: {r2:?}");
    assert_eq!(snapshot(dir), s1, "second run touched files");
    let c2 = run("", a, env(true, false, ctl)).await.unwrap();
    assert!(!c2.changed);
    (r1, r2)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[tokio::test]
async fn copy_content_then_unchanged() {
    let d = tmp();
    let dest = d.path().join("a.conf");
    let (r1, _) = idempotent(
        op!(copy),
        json!({"content": "hello\n", "dest": dest, "mode": "0640"}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello\n");
    assert_eq!(std::fs::metadata(&dest).unwrap().mode() & 0o7777, 0o640);
    let diff = r1.diff.unwrap().unified();
    assert!(diff.contains("+hello"), "{diff}");
}

#[tokio::test]
async fn copy_mode_only_change_is_changed_once() {
    let d = tmp();
    let dest = d.path().join("a");
    std::fs::write(&dest, "x").unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    idempotent(
        op!(copy),
        json!({"content": "x", "dest": dest, "mode": "u=rw,g=r,o=r"}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(std::fs::metadata(&dest).unwrap().mode() & 0o7777, 0o644);
}

#[tokio::test]
async fn copy_src_file_and_tree_from_files_dir() {
    let ctl = tmp();
    std::fs::create_dir_all(ctl.path().join("files/tree/sub")).unwrap();
    std::fs::write(ctl.path().join("files/one.txt"), "one\n").unwrap();
    std::fs::write(ctl.path().join("files/tree/a"), "a\n").unwrap();
    std::fs::write(ctl.path().join("files/tree/sub/b"), "b\n").unwrap();
    let d = tmp();
    idempotent(
        op!(copy),
        json!({"src": "one.txt", "dest": format!("{}/", d.path().display())}),
        d.path(),
        ctl.path(),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(d.path().join("one.txt")).unwrap(),
        "one\n"
    );
    idempotent(
        op!(copy),
        json!({"src": "tree", "dest": d.path()}),
        d.path(),
        ctl.path(),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(d.path().join("tree/sub/b")).unwrap(),
        "b\n"
    );
    // the missing source fails and names itself
    let e = op!(copy)(
        "",
        args(json!({"src": "nope", "dest": d.path()})),
        env(false, false, ctl.path()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[tokio::test]
async fn copy_force_no_keeps_existing() {
    let d = tmp();
    let dest = d.path().join("a");
    std::fs::write(&dest, "mine").unwrap();
    let r = op!(copy)(
        "",
        args(json!({"content": "theirs", "dest": dest, "force": false})),
        env(false, false, d.path()),
    )
    .await
    .unwrap();
    assert!(!r.changed);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "mine");
}

#[tokio::test]
async fn failing_validate_leaves_old_file_and_backup_keeps_copy() {
    let d = tmp();
    let dest = d.path().join("sudoers");
    std::fs::write(&dest, "old\n").unwrap();
    let e = op!(copy)(
        "",
        args(json!({"content": "bad\n", "dest": dest, "validate": "grep -q good %s"})),
        env(false, false, d.path()),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("validation"), "{e}");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old\n");
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        1,
        "temp file left behind"
    );
    let r = op!(copy)("", args(json!({"content": "good\n", "dest": dest, "validate": "grep -q good %s", "backup": true})), env(false, false, d.path()))
        .await
        .unwrap();
    assert!(r.changed);
    let b = r.result["backup_file"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "old\n");
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "good\n");
}

#[tokio::test]
async fn template_renders_through_the_seam() {
    let ctl = tmp();
    std::fs::create_dir_all(ctl.path().join("templates")).unwrap();
    std::fs::write(
        ctl.path().join("templates/app.conf.j2"),
        "port={{ port }}\n",
    )
    .unwrap();
    let d = tmp();
    let dest = d.path().join("app.conf");
    idempotent(
        op!(template),
        json!({"src": "app.conf.j2", "dest": dest}),
        d.path(),
        ctl.path(),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "port=8080\n");
}

#[tokio::test]
async fn file_directory_link_absent() {
    let d = tmp();
    let p = d.path().join("x/y/z");
    idempotent(
        op!(file),
        json!({"path": p, "state": "directory", "mode": "0750"}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::metadata(d.path().join("x")).unwrap().mode() & 0o7777,
        0o750
    );
    let l = d.path().join("link");
    idempotent(
        op!(file),
        json!({"path": l, "state": "link", "src": p}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(std::fs::read_link(&l).unwrap(), p);
    idempotent(
        op!(file),
        json!({"path": d.path().join("x"), "state": "directory", "recurse": true, "mode": "0700"}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(std::fs::metadata(&p).unwrap().mode() & 0o7777, 0o700);
    idempotent(
        op!(file),
        json!({"path": d.path().join("x"), "state": "absent"}),
        d.path(),
        d.path(),
    )
    .await;
    assert!(!d.path().join("x").exists());
    let e = op!(file)(
        "",
        args(json!({"path": d.path().join("nofile"), "state": "file"})),
        env(false, false, d.path()),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("absent"));
}

#[tokio::test]
async fn file_hard_link() {
    let d = tmp();
    let a = d.path().join("a");
    std::fs::write(&a, "x").unwrap();
    let b = d.path().join("b");
    idempotent(
        op!(file),
        json!({"path": b, "state": "hard", "src": a}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(
        std::fs::metadata(&a).unwrap().ino(),
        std::fs::metadata(&b).unwrap().ino()
    );
}

#[tokio::test]
async fn lineinfile_blockinfile_replace_ini_file() {
    let d = tmp();
    let f = d.path().join("sshd_config");
    std::fs::write(&f, "Port 22\n#PermitRootLogin yes\n").unwrap();
    let (r1, _) = idempotent(
        op!(lineinfile),
        json!({"path": f, "regexp": "^#?PermitRootLogin", "line": "PermitRootLogin no"}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "Port 22\nPermitRootLogin no\n"
    );
    let u = r1.diff.unwrap().unified();
    assert!(
        u.contains("-#PermitRootLogin yes\n+PermitRootLogin no"),
        "{u}"
    );
    idempotent(
        op!(blockinfile),
        json!({"path": f, "block": "Match User x\n  X11Forwarding no"}),
        d.path(),
        d.path(),
    )
    .await;
    assert!(
        std::fs::read_to_string(&f)
            .unwrap()
            .contains("# BEGIN ANSIBLE MANAGED BLOCK\nMatch User x\n")
    );
    idempotent(
        op!(replace),
        json!({"path": f, "regexp": "^Port (\\d+)$", "replace": "Port 2222"}),
        d.path(),
        d.path(),
    )
    .await;
    assert!(
        std::fs::read_to_string(&f)
            .unwrap()
            .starts_with("Port 2222\n")
    );
    let ini = d.path().join("nova.conf");
    idempotent(op!(ini_file), json!({"path": ini, "section": "libvirt", "option": "virt_type", "value": "qemu", "mode": "0600"}), d.path(), d.path()).await;
    assert_eq!(
        std::fs::read_to_string(&ini).unwrap(),
        // A new file starts with a blank line, as community.general.ini_file writes it.
        "\n[libvirt]\nvirt_type = qemu\n"
    );
    assert_eq!(std::fs::metadata(&ini).unwrap().mode() & 0o7777, 0o600);
    // lineinfile without create on a missing file fails and creates nothing
    let missing = d.path().join("missing");
    assert!(
        op!(lineinfile)(
            "",
            args(json!({"path": missing, "line": "x"})),
            env(false, false, d.path())
        )
        .await
        .is_err()
    );
    assert!(!missing.exists());
    idempotent(
        op!(lineinfile),
        json!({"path": missing, "line": "x", "create": true}),
        d.path(),
        d.path(),
    )
    .await;
}

#[tokio::test]
async fn stat_and_slurp_report_without_changing() {
    let d = tmp();
    let f = d.path().join("f");
    std::fs::write(&f, "abc").unwrap();
    let r = op!(stat)(
        "",
        args(json!({"path": f, "checksum_algorithm": "sha256"})),
        env(false, false, d.path()),
    )
    .await
    .unwrap();
    assert!(!r.changed);
    assert_eq!(
        r.result["stat"]["checksum"],
        json!(hex::encode(sha2::Sha256::digest(b"abc")))
    );
    assert_eq!(r.result["stat"]["isreg"], json!(true));
    let r = op!(stat)("", args(json!({"path": f})), env(false, false, d.path()))
        .await
        .unwrap();
    assert_eq!(
        r.result["stat"]["checksum"],
        json!("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    let r = op!(stat)(
        "",
        args(json!({"path": d.path().join("none")})),
        env(false, false, d.path()),
    )
    .await
    .unwrap();
    assert_eq!(r.result["stat"]["exists"], json!(false));
    let r = op!(slurp)("", args(json!({"src": f})), env(false, false, d.path()))
        .await
        .unwrap();
    assert_eq!(r.result["content"], json!("YWJj"));
}

/// Build a tiny .deb (one file under /usr/share/ferry-test) with dpkg-deb.
fn build_deb(dir: &Path, name: &str, version: &str) -> PathBuf {
    let root = dir.join(format!("{name}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{name}"))).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!("Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: ferry <ferry@localhost>\nDescription: ferry test package\n"),
    )
    .unwrap();
    std::fs::write(root.join(format!("usr/share/{name}/hello")), "hello\n").unwrap();
    let deb = dir.join(format!("{name}_{version}.deb"));
    let out = std::process::Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb is needed for the apt tests (apt-get install dpkg)");
    assert!(
        out.status.success(),
        "dpkg-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    deb
}

fn dpkg_status(name: &str) -> String {
    let out = std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}${Version}", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn apt_deb_install_then_absent() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the apt test installs a package: run it as root"
    );
    let name = "ferry-test-pkg";
    let ctl = tmp();
    std::fs::create_dir_all(ctl.path().join("files")).unwrap();
    let deb = build_deb(&ctl.path().join("files"), name, "1.0");
    let file = format!("/usr/share/{name}/hello");
    let e = |check| env(check, false, ctl.path());
    let run = op!(apt);
    // check mode predicts the install and installs nothing
    let c = run(
        "",
        args(json!({"deb": deb.file_name().unwrap().to_str().unwrap()})),
        e(true),
    )
    .await
    .unwrap();
    assert!(c.changed);
    assert_eq!(dpkg_status(name), "");
    let r1 = run("", args(json!({"deb": deb})), e(false)).await.unwrap();
    assert!(r1.changed, "{r1:?}");
    assert_eq!(dpkg_status(name), "ii 1.0");
    let mtime = std::fs::metadata(&file).unwrap().mtime_nsec();
    let r2 = run("", args(json!({"deb": deb})), e(false)).await.unwrap();
    assert!(!r2.changed, "{r2:?}");
    assert_eq!(std::fs::metadata(&file).unwrap().mtime_nsec(), mtime);
    // by name: present is ok, absent removes (check first)
    assert!(
        !run("", args(json!({"name": name})), e(false))
            .await
            .unwrap()
            .changed
    );
    assert!(
        run(
            "",
            args(json!({"name": [name], "state": "absent"})),
            e(true)
        )
        .await
        .unwrap()
        .changed
    );
    assert_eq!(dpkg_status(name), "ii 1.0");
    assert!(
        run(
            "",
            args(json!({"name": [name], "state": "absent", "purge": true})),
            e(false)
        )
        .await
        .unwrap()
        .changed
    );
    assert!(!Path::new(&file).exists());
    assert!(
        !run(
            "",
            args(json!({"name": [name], "state": "absent"})),
            e(false)
        )
        .await
        .unwrap()
        .changed
    );
    // a fresh cache is not updated again
    let r = run(
        "",
        args(json!({"update_cache": true, "cache_valid_time": 100000000})),
        e(true),
    )
    .await
    .unwrap();
    assert_eq!(r.result["cache_updated"], json!(false));
}

fn pid_alive(pidfile: &Path) -> bool {
    let Ok(p) = std::fs::read_to_string(pidfile) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.trim().parse().unwrap()), None).is_ok()
}

#[tokio::test]
async fn service_by_start_command_and_pidfile() {
    let d = tmp();
    let pf = d.path().join("svc.pid");
    let base =
        json!({"name": "ferry-test-sleeper", "start_command": "exec sleep 1000", "pidfile": pf});
    let with = |state: &str| {
        let mut v = base.clone();
        v["state"] = json!(state);
        args(v)
    };
    let run = op!(service);
    let e = |check| env(check, false, d.path());
    assert!(run("", with("started"), e(true)).await.unwrap().changed);
    assert!(!pf.exists(), "check mode started something");
    assert!(run("", with("started"), e(false)).await.unwrap().changed);
    assert!(pid_alive(&pf));
    let pid = std::fs::read_to_string(&pf).unwrap();
    assert!(!run("", with("started"), e(false)).await.unwrap().changed);
    assert_eq!(
        std::fs::read_to_string(&pf).unwrap(),
        pid,
        "second start restarted it"
    );
    assert!(run("", with("restarted"), e(false)).await.unwrap().changed);
    assert_ne!(std::fs::read_to_string(&pf).unwrap(), pid);
    let pid2 = std::fs::read_to_string(&pf).unwrap();
    assert!(run("", with("stopped"), e(true)).await.unwrap().changed);
    assert!(pid_alive(&pf));
    assert!(run("", with("stopped"), e(false)).await.unwrap().changed);
    assert!(!pf.exists());
    let gone = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid2.trim().parse().unwrap()),
        None,
    );
    assert!(gone.is_err(), "the daemon still runs");
    assert!(!run("", with("stopped"), e(false)).await.unwrap().changed);
}

// The init-script and systemd branches of `service` run on hosts of their own
// (a lab host, a systemd-nspawn container) in tests/service_lab.rs: here the
// machine's own PID 1 would choose the branch.

#[tokio::test]
async fn sysctl_file_and_reload_with_the_current_value() {
    let d = tmp();
    let f = d.path().join("99-ferry.conf");
    let cur = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(&f, "# ferry test\n").unwrap();
    let (r1, _) = idempotent(
        op!(sysctl),
        json!({"name": "kernel.pid_max", "value": cur, "sysctl_file": f}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        format!("# ferry test\nkernel.pid_max={cur}\n")
    );
    assert!(
        r1.diff
            .unwrap()
            .unified()
            .contains(&format!("+kernel.pid_max={cur}"))
    );
    idempotent(
        op!(sysctl),
        json!({"name": "kernel.pid_max", "state": "absent", "sysctl_file": f, "reload": false}),
        d.path(),
        d.path(),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "# ferry test\n");
}

#[tokio::test]
async fn modprobe_sees_loaded_and_builtin_modules() {
    // /sys/module/kernel always exists (built-in parameters): present is ok, nothing run.
    let r = op!(modprobe)(
        "",
        args(json!({"name": "kernel"})),
        env(false, false, Path::new("/")),
    )
    .await
    .unwrap();
    assert!(!r.changed);
    let r = op!(modprobe)(
        "",
        args(json!({"name": "kernel", "state": "absent"})),
        env(true, false, Path::new("/")),
    )
    .await
    .unwrap();
    assert!(
        r.changed,
        "check mode should predict unloading a loaded module"
    );
}

fn getent(db: &str, key: &str) -> String {
    let out = std::process::Command::new("getent")
        .args([db, key])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn user_group_authorized_key() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the user/group test adds accounts: run it as root"
    );
    let n = format!("fy{}", std::process::id() % 100000);
    let g = format!("{n}g");
    let d = tmp();
    let e = |check| env(check, false, d.path());
    let (grp, usr, key) = (op!(group), op!(user), op!(authorized_key));
    let step = async |run: RunFn, a: Value| -> (bool, bool, bool) {
        let c = run("", args(a.clone()), e(true)).await.unwrap().changed;
        let r1 = run("", args(a.clone()), e(false)).await.unwrap().changed;
        let r2 = run("", args(a), e(false)).await.unwrap().changed;
        (c, r1, r2)
    };
    let home = d.path().join("home");
    let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFerryTestKey test@ferry";
    let results = vec![
        step(grp, json!({"name": g, "gid": 43210})).await,
        step(usr, json!({"name": n, "groups": [g], "shell": "/bin/sh", "home": home, "comment": "ferry test"})).await,
        step(key, json!({"user": n, "key": k})).await,
    ];
    let passwd = getent("passwd", &n);
    let group = getent("group", &g);
    let keys = std::fs::read_to_string(home.join(".ssh/authorized_keys")).unwrap_or_default();
    let ssh_mode = std::fs::metadata(home.join(".ssh"))
        .map(|m| m.mode() & 0o7777)
        .unwrap_or(0);
    let removed = vec![
        step(usr, json!({"name": n, "state": "absent", "remove": true})).await,
        step(grp, json!({"name": g, "state": "absent"})).await,
    ];
    for r in results.iter().chain(&removed) {
        assert_eq!(
            *r,
            (true, true, false),
            "check, first run, second run: {results:?} {removed:?}"
        );
    }
    assert!(
        passwd.contains(":ferry test:") && passwd.ends_with(":/bin/sh"),
        "{passwd}"
    );
    assert!(group.starts_with(&format!("{g}:x:43210:{n}")), "{group}");
    assert_eq!(keys, format!("{k}\n"));
    assert_eq!(ssh_mode, 0o700);
    assert_eq!(getent("passwd", &n), "");
}

#[tokio::test]
async fn wait_for_port_path_and_timeout() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let d = tmp();
    let e = || env(false, false, d.path());
    let run = op!(wait_for);
    let r = run("", args(json!({"port": port, "timeout": 5})), e())
        .await
        .unwrap();
    assert!(!r.changed);
    drop(l);
    run(
        "",
        args(json!({"port": port, "state": "stopped", "timeout": 5})),
        e(),
    )
    .await
    .unwrap();
    let f = d.path().join("log");
    std::fs::write(&f, "starting\n").unwrap();
    let f2 = f.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        std::fs::write(&f2, "starting\nready on 5900\n").unwrap();
    });
    let r = run(
        "",
        args(json!({"path": f, "search_regex": "ready on [0-9]+", "timeout": 10})),
        e(),
    )
    .await
    .unwrap();
    writer.join().unwrap();
    assert!(r.result["elapsed"].as_u64().unwrap() >= 1, "{r:?}");
    let err = run(
        "",
        args(json!({"path": d.path().join("never"), "timeout": 1})),
        e(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("Timeout when waiting for"),
        "{err}"
    );
}

fn git(dir: &Path, a: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=ferry",
            "-c",
            "user.email=ferry@localhost",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(a)
        .output()
        .expect("git is needed for the git/build tests");
    assert!(
        out.status.success(),
        "git {a:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A git repo holding a tiny configure/make project that installs bin/hello.
fn source_repo(dir: &Path) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q"]);
    std::fs::write(
        src.join("configure"),
        "#!/bin/sh\nfor a; do case $a in --prefix=*) P=${a#--prefix=};; --greeting=*) G=${a#--greeting=};; esac; done\nprintf 'PREFIX=%s\\nG=%s\\n' \"$P\" \"${G:-hello}\" > config.mk\necho configured >> ../build.log\n",
    )
    .unwrap();
    std::fs::set_permissions(
        src.join("configure"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        src.join("Makefile"),
        "include config.mk\nall: hello\nhello: main.txt\n\tprintf '#!/bin/sh\\necho $(G) ' > hello; cat main.txt >> hello\ninstall:\n\tmkdir -p $(PREFIX)/bin && cp hello $(PREFIX)/bin/hello && chmod 755 $(PREFIX)/bin/hello\n",
    )
    .unwrap();
    std::fs::write(src.join("main.txt"), "v1\n").unwrap();
    std::fs::write(src.join(".gitignore"), "config.mk\nhello\n.ferry-build\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-qm", "v1"]);
    src
}

#[tokio::test]
async fn build_runs_once_per_commit_and_flags() {
    let d = tmp();
    let src = source_repo(d.path());
    let prefix = d.path().join("prefix");
    let run = op!(build);
    let e = |check| env(check, false, d.path());
    let a = |flags: &str| {
        args(json!({"src": src, "prefix": prefix, "configure_flags": flags, "jobs": 1}))
    };
    let log = || {
        std::fs::read_to_string(d.path().join("build.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(run("", a(""), e(true)).await.unwrap().changed);
    assert!(!prefix.exists(), "check mode built something");
    assert!(run("", a(""), e(false)).await.unwrap().changed);
    let hello = prefix.join("bin/hello");
    let out = std::process::Command::new(&hello).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello v1");
    let m = std::fs::metadata(&hello).unwrap().mtime_nsec();
    assert!(!run("", a(""), e(false)).await.unwrap().changed);
    assert_eq!(std::fs::metadata(&hello).unwrap().mtime_nsec(), m);
    assert_eq!(log(), 1);
    // new flags: rebuild
    assert!(run("", a("--greeting=hi"), e(false)).await.unwrap().changed);
    assert_eq!(log(), 2);
    // new commit: rebuild
    std::fs::write(src.join("main.txt"), "v2\n").unwrap();
    git(&src, &["commit", "-qam", "v2"]);
    assert!(run("", a("--greeting=hi"), e(true)).await.unwrap().changed);
    assert!(run("", a("--greeting=hi"), e(false)).await.unwrap().changed);
    let out = std::process::Command::new(&hello).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi v2");
    assert!(!run("", a("--greeting=hi"), e(false)).await.unwrap().changed);
    assert_eq!(log(), 3);
}

#[tokio::test]
async fn git_checkout_by_host_git_and_by_controller_sync() {
    let d = tmp();
    let src = source_repo(d.path());
    let url = format!("file://{}", src.display());
    let v1 = git(&src, &["rev-parse", "HEAD"]);
    git(&src, &["tag", "-a", "v1", "-m", "v1"]);
    let run = op!(git);
    let e = |check| env(check, false, d.path());
    for via in ["host", "controller"] {
        let dest = d.path().join(format!("co-{via}"));
        let a = |version: &str| {
            args(json!({"repo": url, "dest": dest, "version": version, "via": via}))
        };
        let c = run("", a("main"), e(true)).await.unwrap();
        assert!(c.changed && !dest.exists(), "{via}: check mode cloned");
        let r1 = run("", a("main"), e(false)).await.unwrap();
        assert!(r1.changed, "{via}");
        assert_eq!(r1.result["after"], json!(v1));
        assert_eq!(
            std::fs::read_to_string(dest.join("main.txt")).unwrap(),
            "v1\n"
        );
        assert_eq!(
            std::fs::metadata(dest.join("configure")).unwrap().mode() & 0o111,
            0o111,
            "{via}: exec bit"
        );
        let snap = snapshot(&dest);
        assert!(
            !run("", a("main"), e(false)).await.unwrap().changed,
            "{via}"
        );
        assert_eq!(
            snapshot(&dest),
            snap,
            "{via}: second run touched the checkout"
        );
        // a tag naming the same commit (annotated: peeled) changes nothing either
        assert!(!run("", a("v1"), e(false)).await.unwrap().changed, "{via}");
    }
    std::fs::write(src.join("main.txt"), "v2\n").unwrap();
    git(&src, &["commit", "-qam", "v2"]);
    let v2 = git(&src, &["rev-parse", "HEAD"]);
    for via in ["host", "controller"] {
        let dest = d.path().join(format!("co-{via}"));
        let a = |version: &str| {
            args(json!({"repo": url, "dest": dest, "version": version, "via": via}))
        };
        assert!(run("", a("main"), e(true)).await.unwrap().changed, "{via}");
        assert_eq!(
            std::fs::read_to_string(dest.join("main.txt")).unwrap(),
            "v1\n"
        );
        let r = run("", a("main"), e(false)).await.unwrap();
        assert_eq!((r.changed, &r.result["after"]), (true, &json!(v2)), "{via}");
        assert_eq!(
            std::fs::read_to_string(dest.join("main.txt")).unwrap(),
            "v2\n"
        );
        let r = run("", a(&v1), e(false)).await.unwrap();
        assert!(r.changed, "{via}");
        assert_eq!(
            std::fs::read_to_string(dest.join("main.txt")).unwrap(),
            "v1\n"
        );
    }
    // local modifications stop the host checkout unless force
    let dest = d.path().join("co-host");
    std::fs::write(dest.join("main.txt"), "local edit\n").unwrap();
    let a = |force: bool| {
        args(json!({"repo": url, "dest": dest, "version": "main", "via": "host", "force": force}))
    };
    let err = run("", a(false), e(false)).await.unwrap_err();
    assert!(err.to_string().contains("Local modifications"), "{err}");
    assert!(run("", a(true), e(false)).await.unwrap().changed);
    assert_eq!(
        std::fs::read_to_string(dest.join("main.txt")).unwrap(),
        "v2\n"
    );
}

/// The engine runs hosts in parallel tasks: every op's future must be Send.
/// (A compile-time check; the function is never called.)
#[allow(dead_code, unreachable_code, unused_variables)]
fn every_op_future_is_send(ctx: &'static OpContext<'static>) {
    fn send<T: Send>(_: T) {}
    for op in ferry::ops::registry::OPS {
        send(op.run(ctx));
    }
}

#[tokio::test]
async fn diff_output_snapshot() {
    let d = tmp();
    let f = d.path().join("nova.conf");
    std::fs::write(
        &f,
        "[DEFAULT]\nverbose = true\n\n[libvirt]\nvirt_type = kvm\ncpu_mode = none\n",
    )
    .unwrap();
    let r = op!(ini_file)(
        "",
        args(json!({"path": f, "section": "libvirt", "option": "virt_type", "value": "qemu"})),
        env(true, true, d.path()),
    )
    .await
    .unwrap();
    let u = r
        .diff
        .unwrap()
        .unified()
        .replace(&d.path().display().to_string(), "TMP");
    insta::assert_snapshot!(u);
}
