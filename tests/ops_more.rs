//! fetch, get_url, unarchive, script, pip, apt_key and apt_repository against
//! real files on this machine through the local transport and the engine's op
//! registry (the same path `ferry run` takes): check mode predicts the first
//! run and touches nothing, the first run changes, the second changes nothing
//! (content, mtime, inode), and check mode then predicts no change.

#[path = "common/tree.rs"]
mod tree;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tree::snapshot;

use ferry::engine::render::TemplateRender;
use ferry::ops::{OpContext, OpOutcome, lookup};
use ferry::playbook::model::Vars;
use ferry::transport::local::LocalTransport;
use serde_json::{Value, json};
use sha2::Digest;

/// Run op `name` with `args` as the engine does (registry, local transport,
/// playbook dir `base`, inventory host `web1`).
async fn op(name: &str, args: Value, check: bool, base: &Path) -> Result<OpOutcome, String> {
    let args: Vars = serde_json::from_value(args).unwrap();
    let vars = Vars::new();
    let ctx = OpContext {
        host: "web1",
        transport: Arc::new(LocalTransport::new("web1")),
        args: &args,
        vars: &vars,
        check,
        diff: true,
        base_dir: base,
        role_dir: None,
        become_: None,
        env: Vec::new(),
        timeout: None,
        render: &TemplateRender::default(),
    };
    let o = lookup(name)
        .unwrap_or_else(|| panic!("no op {name}"))
        .run(&ctx)
        .await
        .map_err(|e| e.to_string())?;
    if o.failed {
        return Err(o.msg.unwrap_or_default());
    }
    Ok(o)
}

/// check (predicts a change, touches nothing) -> run (changed) -> run again
/// (ok, nothing under `watch` touched) -> check again (predicts no change).
async fn idempotent(name: &str, a: Value, watch: &Path, base: &Path) -> (OpOutcome, OpOutcome) {
    let s0 = snapshot(watch);
    let c = op(name, a.clone(), true, base).await.unwrap();
    assert!(
        c.changed,
        "{name}: check mode should predict a change: {c:?}"
    );
    assert_eq!(snapshot(watch), s0, "{name}: check mode touched files");
    let r1 = op(name, a.clone(), false, base).await.unwrap();
    assert!(r1.changed, "{name}: first run should change: {r1:?}");
    let s1 = snapshot(watch);
    assert_ne!(s1, s0, "{name}: the first run changed nothing on disk");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r2 = op(name, a.clone(), false, base).await.unwrap();
    assert!(!r2.changed, "{name}: second run should be ok: {r2:?}");
    assert_eq!(snapshot(watch), s1, "{name}: second run touched files");
    let c2 = op(name, a, true, base).await.unwrap();
    assert!(
        !c2.changed,
        "{name}: check after the run predicts a change: {c2:?}"
    );
    (r1, r2)
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn sha256(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn sh(cmd: &str) {
    let out = Command::new("/bin/sh").arg("-c").arg(cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
}

#[tokio::test]
async fn fetch_per_host_and_flat_by_checksum() {
    let host = tmp();
    let ctl = tmp();
    let src = host.path().join("app.conf");
    std::fs::write(&src, "port = 80\n").unwrap();
    let (r1, r2) = idempotent(
        "fetch",
        json!({"src": src, "dest": "fetched"}),
        ctl.path(),
        ctl.path(),
    )
    .await;
    // Relative dest is below the playbook dir, then <inventory host>/<src path>.
    let got = ctl
        .path()
        .join("fetched/web1")
        .join(src.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "port = 80\n");
    assert_eq!(r1.result["dest"], json!(got.display().to_string()));
    // Ansible's keys: sha1 checksums, md5sum.
    let sha1 = ferry::ops::fetch::sha1_hex(b"port = 80\n");
    assert_eq!(r1.result["checksum"], json!(sha1));
    assert_eq!(r1.result["remote_checksum"], json!(sha1));
    assert_eq!(
        r1.result["md5sum"],
        json!(ferry::ops::fetch::md5_hex(b"port = 80\n"))
    );
    assert_eq!(r2.result["checksum"], r1.result["checksum"]);
    let d = r1.diff.unwrap();
    assert_eq!((d.before.as_str(), d.after.as_str()), ("", "port = 80\n"));
    // A changed source is fetched again.
    std::fs::write(&src, "port = 81\n").unwrap();
    let r3 = op(
        "fetch",
        json!({"src": src, "dest": "fetched"}),
        false,
        ctl.path(),
    )
    .await
    .unwrap();
    assert!(r3.changed);
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "port = 81\n");
    // flat, into a directory given with a trailing slash.
    let flat = ctl.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    idempotent(
        "fetch",
        json!({"src": src, "dest": format!("{}/", flat.display()), "flat": true}),
        &flat,
        ctl.path(),
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(flat.join("app.conf")).unwrap(),
        "port = 81\n"
    );
    // Missing source: fails, or with fail_on_missing: no, ok with a message.
    let missing = host.path().join("nope");
    let e = op(
        "fetch",
        json!({"src": missing, "dest": "x"}),
        false,
        ctl.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    let o = op(
        "fetch",
        json!({"src": missing, "dest": "x", "fail_on_missing": false}),
        false,
        ctl.path(),
    )
    .await
    .unwrap();
    assert!(!o.changed && o.msg.unwrap().contains("ignored"));
    assert!(!ctl.path().join("x").exists());
}

/// A python3 http.server on 127.0.0.1 serving `dir`, killed on drop.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server (python3 is needed for this test)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Server { child, port };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("http.server did not listen on {port}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn get_url_file_and_lab_http_by_checksum() {
    let host = tmp();
    let dest = tmp();
    let src = host.path().join("tool.tar");
    std::fs::write(&src, b"tool v1\n").unwrap();
    let sum = sha256(b"tool v1\n");
    // file:// into a directory: the URL's file name, the mode asked.
    let (r1, _) = idempotent(
        "get_url",
        json!({"url": format!("file://{}", src.display()), "dest": dest.path(),
               "checksum": format!("sha256:{sum}"), "mode": "0640"}),
        dest.path(),
        dest.path(),
    )
    .await;
    let got = dest.path().join("tool.tar");
    assert_eq!(std::fs::read(&got).unwrap(), b"tool v1\n");
    assert_eq!(std::fs::metadata(&got).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(r1.result["dest"], json!(got.display().to_string()));
    // Without a checksum an existing file is kept (force: no); force: yes
    // downloads and replaces only a different file.
    let named = dest.path().join("named");
    let u = format!("file://{}", src.display());
    idempotent(
        "get_url",
        json!({"url": u, "dest": named, "force": true}),
        dest.path(),
        dest.path(),
    )
    .await;
    std::fs::write(&src, b"tool v2\n").unwrap();
    let kept = op(
        "get_url",
        json!({"url": u, "dest": named}),
        false,
        dest.path(),
    )
    .await
    .unwrap();
    assert!(!kept.changed);
    assert_eq!(std::fs::read(&named).unwrap(), b"tool v1\n");
    let r = op(
        "get_url",
        json!({"url": u, "dest": named, "force": true}),
        false,
        dest.path(),
    )
    .await
    .unwrap();
    assert!(r.changed);
    assert_eq!(std::fs::read(&named).unwrap(), b"tool v2\n");
    // A wrong checksum fails and leaves dest as it was, with no temp file behind.
    let before = snapshot(dest.path());
    let e = op(
        "get_url",
        json!({"url": u, "dest": named, "checksum": format!("sha256:{sum}")}),
        false,
        dest.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("did not match"), "{e}");
    assert_eq!(snapshot(dest.path()), before);
    // http:// to a lab-local address, fetched by the host (curl/wget/python3).
    let served = tmp();
    std::fs::write(served.path().join("pkg.whl"), b"wheel bytes\n").unwrap();
    let srv = Server::start(served.path());
    let url = format!("http://127.0.0.1:{}/pkg.whl", srv.port);
    let hdest = tmp();
    idempotent(
        "get_url",
        json!({"url": url, "dest": hdest.path().join("p.whl"),
               "checksum": format!("sha256:{}", sha256(b"wheel bytes\n"))}),
        hdest.path(),
        hdest.path(),
    )
    .await;
    assert_eq!(
        std::fs::read(hdest.path().join("p.whl")).unwrap(),
        b"wheel bytes\n"
    );
    // The controller's own client (used when the host has no download tool).
    let body = ferry::ops::get_url::http_get(
        &ferry::ops::get_url::Url::parse(&url).unwrap(),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(body, b"wheel bytes\n");
    let e = ferry::ops::get_url::http_get(
        &ferry::ops::get_url::Url::parse(&format!("http://127.0.0.1:{}/none", srv.port)).unwrap(),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("404"), "{e}");
    // A name is resolved by the host and must be lab-local too.
    let by_name = format!("http://localhost:{}/pkg.whl", srv.port);
    let r = op(
        "get_url",
        json!({"url": by_name, "dest": hdest.path().join("n.whl")}),
        false,
        hdest.path(),
    )
    .await
    .unwrap();
    assert!(r.changed);
    let e = op(
        "get_url",
        json!({"url": "http://no-such-host.invalid/x", "dest": hdest.path()}),
        false,
        hdest.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("cannot resolve"), "{e}");
    // Anything that leaves the lab is refused before any host is touched.
    for bad in [
        "https://deb.debian.org/x",
        "http://93.184.216.34/x",
        "ftp://10.0.0.1/x",
    ] {
        let e = op(
            "get_url",
            json!({"url": bad, "dest": hdest.path()}),
            false,
            hdest.path(),
        )
        .await
        .unwrap_err();
        assert!(
            e.contains("lab") || e.contains("not supported"),
            "{bad}: {e}"
        );
    }
}

fn make_tree(dir: &Path) {
    std::fs::create_dir_all(dir.join("app/bin")).unwrap();
    std::fs::write(dir.join("app/README"), "readme\n").unwrap();
    std::fs::write(dir.join("app/bin/run"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        dir.join("app/bin/run"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

#[tokio::test]
async fn unarchive_tarball_and_zip_from_the_controller() {
    let ctl = tmp();
    let files = ctl.path().join("files");
    let stage = tmp();
    make_tree(stage.path());
    std::fs::create_dir_all(&files).unwrap();
    sh(&format!(
        "cd {} && tar --owner=0 --group=0 -czf {}/app.tar.gz app && tar -cJf {}/app.tar.xz app && zip -qr {}/app.zip app",
        stage.path().display(),
        files.display(),
        files.display(),
        files.display()
    ));
    for archive in ["app.tar.gz", "app.tar.xz", "app.zip"] {
        let dest = tmp();
        let (r1, _) = idempotent(
            "unarchive",
            json!({"src": archive, "dest": dest.path(), "list_files": true}),
            dest.path(),
            ctl.path(),
        )
        .await;
        assert_eq!(
            std::fs::read_to_string(dest.path().join("app/bin/run")).unwrap(),
            "#!/bin/sh\necho run\n",
            "{archive}"
        );
        assert!(
            r1.result["files"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "app/README"),
            "{archive}: {:?}",
            r1.result["files"]
        );
        // An edited file is a difference: restored by the next run.
        std::fs::write(dest.path().join("app/README"), "mine\n").unwrap();
        let r = op(
            "unarchive",
            json!({"src": archive, "dest": dest.path()}),
            false,
            ctl.path(),
        )
        .await
        .unwrap();
        assert!(r.changed, "{archive}");
        assert_eq!(
            std::fs::read_to_string(dest.path().join("app/README")).unwrap(),
            "readme\n"
        );
        // creates: skipped without looking at the archive.
        std::fs::write(dest.path().join("app/README"), "mine\n").unwrap();
        let r = op(
            "unarchive",
            json!({"src": archive, "dest": dest.path(), "creates": dest.path().join("app")}),
            false,
            ctl.path(),
        )
        .await
        .unwrap();
        assert!(!r.changed);
        assert_eq!(
            std::fs::read_to_string(dest.path().join("app/README")).unwrap(),
            "mine\n"
        );
    }
    // remote_src: the archive is already on the host.
    let dest = tmp();
    idempotent(
        "unarchive",
        json!({"src": files.join("app.tar.gz"), "dest": dest.path(), "remote_src": true}),
        dest.path(),
        ctl.path(),
    )
    .await;
    // dest must exist; a missing archive fails naming it.
    let e = op(
        "unarchive",
        json!({"src": "app.tar.gz", "dest": dest.path().join("nope")}),
        false,
        ctl.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("must be an existing dir"), "{e}");
    let e = op(
        "unarchive",
        json!({"src": "gone.tgz", "dest": dest.path()}),
        false,
        ctl.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("gone.tgz"), "{e}");
}

#[tokio::test]
async fn script_runs_once_under_creates_and_is_skipped_in_check() {
    let ctl = tmp();
    let work = tmp();
    std::fs::create_dir_all(ctl.path().join("files")).unwrap();
    std::fs::write(
        ctl.path().join("files/setup.sh"),
        "#!/bin/sh\necho \"args: $*\" > marker\npwd >> marker\necho done\n",
    )
    .unwrap();
    let marker = work.path().join("marker");
    let a =
        json!({"_raw_params": "setup.sh one 'two words'", "chdir": work.path(), "creates": marker});
    let s0 = snapshot(work.path());
    let c = op("script", a.clone(), true, ctl.path()).await.unwrap();
    assert!(
        c.skipped,
        "check mode cannot know what a script does: {c:?}"
    );
    assert_eq!(snapshot(work.path()), s0);
    let r1 = op("script", a.clone(), false, ctl.path()).await.unwrap();
    assert!(r1.changed);
    assert_eq!(r1.result["stdout"], json!("done"));
    assert_eq!(r1.result["rc"], json!(0));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        format!("args: one two words\n{}\n", work.path().display())
    );
    let s1 = snapshot(work.path());
    let r2 = op("script", a.clone(), false, ctl.path()).await.unwrap();
    assert!(!r2.changed && !r2.skipped, "{r2:?}");
    assert_eq!(snapshot(work.path()), s1);
    let c2 = op("script", a, true, ctl.path()).await.unwrap();
    assert!(!c2.changed && !c2.skipped);
    // removes: runs only when the path exists; executable picks the interpreter.
    let r = op(
        "script",
        json!({"cmd": "setup.sh x", "chdir": work.path(), "removes": work.path().join("none")}),
        false,
        ctl.path(),
    )
    .await
    .unwrap();
    assert!(!r.changed);
    let r = op(
        "script",
        json!({"cmd": "setup.sh y", "chdir": work.path(), "executable": "/bin/sh"}),
        false,
        ctl.path(),
    )
    .await
    .unwrap();
    assert!(r.changed);
    assert!(
        std::fs::read_to_string(&marker)
            .unwrap()
            .starts_with("args: y\n")
    );
    // A failing script fails with its rc; the temp copy is gone either way.
    std::fs::write(
        ctl.path().join("files/fail.sh"),
        "#!/bin/sh\necho bad >&2\nexit 3\n",
    )
    .unwrap();
    let args: Vars = serde_json::from_value(json!({"_raw_params": "fail.sh"})).unwrap();
    let vars = Vars::new();
    let ctx = OpContext {
        host: "web1",
        transport: Arc::new(LocalTransport::new("web1")),
        args: &args,
        vars: &vars,
        check: false,
        diff: false,
        base_dir: ctl.path(),
        role_dir: None,
        become_: None,
        env: Vec::new(),
        timeout: None,
        render: &TemplateRender::default(),
    };
    let o = lookup("script").unwrap().run(&ctx).await.unwrap();
    assert!(o.failed);
    assert_eq!(o.result["rc"], json!(3));
    assert_eq!(o.result["stderr"], json!("bad"));
    let left: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("-fail.sh"))
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".ferry-script-")
        })
        .collect();
    assert!(left.is_empty(), "temp scripts left: {left:?}");
    // Unknown parameters are refused.
    let e = op(
        "script",
        json!({"_raw_params": "setup.sh", "decrypt": true}),
        false,
        ctl.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("`decrypt`"), "{e}");
}

/// A wheel made by hand (a zip with the package and its dist-info), so the
/// test needs no index and no build backend.
fn make_wheel(dir: &Path, name: &str, version: &str) {
    let py = format!(
        r#"
import zipfile, hashlib, base64
name, ver = "{name}", "{version}"
files = {{
    f"{{name}}/__init__.py": f"VERSION = '{{ver}}'\n",
    f"{{name}}-{{ver}}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {{name}}\nVersion: {{ver}}\n",
    f"{{name}}-{{ver}}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: ferry-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}}
record = []
for p, c in files.items():
    d = base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{{p}},sha256={{d}},{{len(c.encode())}}")
record.append(f"{{name}}-{{ver}}.dist-info/RECORD,,")
files[f"{{name}}-{{ver}}.dist-info/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile(f"{dir}/{{name}}-{{ver}}-py3-none-any.whl", "w") as z:
    for p, c in files.items():
        z.writestr(p, c)
"#,
        dir = dir.display()
    );
    let out = Command::new("python3").arg("-c").arg(py).output().unwrap();
    assert!(out.status.success(), "making a wheel: {out:?}");
}

#[tokio::test]
async fn pip_into_a_venv_from_a_local_wheel_dir() {
    let d = tmp();
    let wheels = d.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    make_wheel(&wheels, "ferrydemo", "1.0");
    make_wheel(&wheels, "ferrytwo", "2.0");
    let venv = d.path().join("venv");
    let extra = format!("--no-index --find-links {}", wheels.display());
    let a =
        json!({"name": ["ferrydemo", "ferrytwo==2.0"], "virtualenv": venv, "extra_args": extra});
    idempotent("pip", a, d.path(), d.path()).await;
    let py = venv.join("bin/python");
    let out = Command::new(&py)
        .args([
            "-c",
            "import ferrydemo, ferrytwo; print(ferrydemo.VERSION, ferrytwo.VERSION)",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1.0 2.0\n");
    // A requirements file (on the host) whose lines are all installed: ok.
    let req = d.path().join("req.txt");
    std::fs::write(&req, "# pinned\nferrydemo==1.0\nferrytwo\n").unwrap();
    let r = op(
        "pip",
        json!({"requirements": req, "virtualenv": venv, "extra_args": extra}),
        false,
        d.path(),
    )
    .await
    .unwrap();
    assert!(!r.changed, "{r:?}");
    // absent: removed once, then nothing to do.
    let a = json!({"name": "ferrytwo", "virtualenv": venv, "state": "absent"});
    let site = d.path();
    let s0 = snapshot(site);
    let c = op("pip", a.clone(), true, d.path()).await.unwrap();
    assert!(c.changed);
    assert_eq!(snapshot(site), s0);
    assert!(op("pip", a.clone(), false, d.path()).await.unwrap().changed);
    assert!(!op("pip", a, false, d.path()).await.unwrap().changed);
    // A name pip cannot find fails with pip's message.
    let e = op(
        "pip",
        json!({"name": "nosuchpkg", "virtualenv": venv, "extra_args": extra}),
        false,
        d.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("nosuchpkg"), "{e}");
}

const KEY: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZfakekeyFERRYtest\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";

#[tokio::test]
async fn apt_key_as_a_keyring_file() {
    let ctl = tmp();
    let d = tmp();
    let ring = d.path().join("lab.asc");
    let (r1, _) = idempotent(
        "apt_key",
        json!({"data": KEY, "keyring": ring, "id": "0xABCD1234"}),
        d.path(),
        ctl.path(),
    )
    .await;
    assert_eq!(std::fs::read_to_string(&ring).unwrap(), KEY);
    assert_eq!(std::fs::metadata(&ring).unwrap().mode() & 0o7777, 0o644);
    assert_eq!(r1.result["keyring"], json!(ring.display().to_string()));
    // file: from the controller's files/.
    std::fs::create_dir_all(ctl.path().join("files")).unwrap();
    std::fs::write(ctl.path().join("files/repo.asc"), KEY).unwrap();
    let ring2 = d.path().join("repo.asc");
    idempotent(
        "apt_key",
        json!({"file": "repo.asc", "keyring": ring2}),
        d.path(),
        ctl.path(),
    )
    .await;
    // absent
    idempotent(
        "apt_key",
        json!({"keyring": ring, "state": "absent"}),
        d.path(),
        ctl.path(),
    )
    .await;
    assert!(!ring.exists());
    // Not a key at all: refused, nothing written.
    let e = op(
        "apt_key",
        json!({"data": "hello", "keyring": d.path().join("bad.asc")}),
        false,
        ctl.path(),
    )
    .await
    .unwrap_err();
    assert!(e.contains("OpenPGP"), "{e}");
    assert!(!d.path().join("bad.asc").exists());
}

/// Removes the test's sources file even when the test fails.
struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn apt_repository_writes_and_removes_a_sources_file() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "apt_repository test writes /etc/apt/sources.list.d: run as root"
    );
    let repo_dir = tmp();
    // A valid (empty) flat repository, so an `apt-get update` elsewhere is not broken.
    std::fs::write(repo_dir.path().join("Packages"), "").unwrap();
    let name = format!("ferry-test-{}", std::process::id());
    let file = PathBuf::from(format!("/etc/apt/sources.list.d/{name}.list"));
    let _guard = RemoveOnDrop(file.clone());
    let line = format!("deb [trusted=yes] file:{} ./", repo_dir.path().display());
    let watch = tmp();
    // Watch only this file: other tests may touch other sources.
    let a = json!({"repo": line, "filename": name, "update_cache": false});
    let s0 = std::fs::metadata(&file).ok().map(|m| m.ino());
    assert!(s0.is_none());
    let c = op("apt_repository", a.clone(), true, watch.path())
        .await
        .unwrap();
    assert!(c.changed);
    assert!(!file.exists(), "check mode wrote the sources file");
    let r1 = op("apt_repository", a.clone(), false, watch.path())
        .await
        .unwrap();
    assert!(r1.changed);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{line}\n"));
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o7777, 0o644);
    let m1 = std::fs::metadata(&file).unwrap();
    let r2 = op("apt_repository", a.clone(), false, watch.path())
        .await
        .unwrap();
    assert!(!r2.changed);
    let m2 = std::fs::metadata(&file).unwrap();
    assert_eq!((m1.ino(), m1.mtime_nsec()), (m2.ino(), m2.mtime_nsec()));
    // The same line with other spacing is the same repo.
    let spaced =
        json!({"repo": line.replace(' ', "  "), "filename": "other", "update_cache": false});
    assert!(
        !op("apt_repository", spaced, false, watch.path())
            .await
            .unwrap()
            .changed
    );
    // absent: the file is left empty, so it goes.
    let gone = json!({"repo": line, "state": "absent", "update_cache": false});
    let c = op("apt_repository", gone.clone(), true, watch.path())
        .await
        .unwrap();
    assert!(c.changed && file.exists());
    assert!(
        op("apt_repository", gone.clone(), false, watch.path())
            .await
            .unwrap()
            .changed
    );
    assert!(!file.exists());
    assert!(
        !op("apt_repository", gone, false, watch.path())
            .await
            .unwrap()
            .changed
    );
}

#[test]
fn check_rejects_unsupported_parameters_of_the_new_ops() {
    use ferry::ops::registry::schema as lookup;
    use ferry::ops::schema::ArgProblem;
    for (op, args, bad) in [
        (
            "unarchive",
            json!({"src": "a.tgz", "dest": "/x", "owner": "root"}),
            "owner",
        ),
        (
            "get_url",
            json!({"url": "file:///a", "dest": "/x", "headers": {}}),
            "headers",
        ),
        ("pip", json!({"name": "a", "editable": true}), "editable"),
        ("apt_key", json!({"url": "https://x/k"}), "url"),
        (
            "apt_repository",
            json!({"repo": "deb http://x s", "codename": "s"}),
            "codename",
        ),
        (
            "fetch",
            json!({"src": "/a", "dest": "/b", "mode": "0644"}),
            "mode",
        ),
        (
            "script",
            json!({"_raw_params": "a.sh", "decrypt": true}),
            "decrypt",
        ),
    ] {
        let args: Vars = serde_json::from_value(args).unwrap();
        let problems = lookup(op).unwrap().validate(&args);
        assert!(
            problems
                .iter()
                .any(|(k, p)| k.as_deref() == Some(bad) && matches!(p, ArgProblem::Unknown { .. })),
            "{op}: {problems:?}"
        );
    }
}
