//! The SSH transport against real sshd processes on 127.0.0.1 (needs root and
//! openssh-server; sudo for the become test).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry::playbook::model::Vars;
use ferry::transport::ConnectDefaults;
use ferry::transport::ssh_config::SshHostConfig;
use ferry::transport::{Become, CommandSpec, ConnectParams, FileSpec, Transport, TransportError};
use serde_json::{Value, json};
use sha2::Digest;

fn need_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/transport.rs needs root (it starts sshd and creates a user)"
    );
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "tests/transport.rs needs /usr/sbin/sshd (openssh-server)"
    );
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keygen(path: &Path) {
    sh(&format!(
        "ssh-keygen -q -t ed25519 -N '' -C ferry-test -f {}",
        path.display()
    ));
}

/// One sshd on 127.0.0.1:port, killed (by PID) when dropped.
struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start(extra: &str) -> Sshd {
        need_root();
        let dir = tempfile::tempdir().unwrap();
        sh(&format!("chmod 755 {}", dir.path().display()));
        keygen(&dir.path().join("host_key"));
        keygen(&dir.path().join("client_key"));
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        sh(&format!(
            "chmod 644 {0}/authorized_keys; mkdir -p /run/sshd",
            dir.path().display()
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
             MaxSessions 10\nLogLevel ERROR\n{extra}\n"
        );
        std::fs::write(dir.path().join("sshd_config"), config).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sshd starts");
        let sshd = Sshd { child, port, dir };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "sshd on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `SHA256:...` of the host key, as ssh-keygen prints it.
    fn fingerprint(&self) -> String {
        let out = sh(&format!(
            "ssh-keygen -l -E sha256 -f {}",
            self.path("host_key.pub").display()
        ));
        out.split_whitespace().nth(1).unwrap().to_string()
    }

    /// A known_hosts file that lists this server's key.
    fn known_hosts(&self) -> PathBuf {
        let p = self.path("known_hosts");
        let key = std::fs::read_to_string(self.path("host_key.pub")).unwrap();
        std::fs::write(&p, format!("[127.0.0.1]:{} {key}", self.port)).unwrap();
        p
    }

    fn params_with(
        &self,
        user: &str,
        known_hosts: PathBuf,
        accept_new: bool,
        common_args: Option<&str>,
    ) -> ConnectParams {
        let mut vars = Vars::new();
        vars.insert("ansible_host".into(), json!("127.0.0.1"));
        vars.insert("ansible_port".into(), json!(self.port));
        vars.insert("ansible_user".into(), json!(user));
        vars.insert(
            "ansible_ssh_private_key_file".into(),
            json!(self.path("client_key")),
        );
        if let Some(a) = common_args {
            vars.insert("ansible_ssh_common_args".into(), json!(a));
        }
        let opts = ConnectDefaults {
            known_hosts: vec![known_hosts],
            accept_new_host_keys: accept_new,
            connect_timeout: Duration::from_secs(5),
            ..ConnectDefaults::default()
        };
        ConnectParams::build("testhost", &vars, &opts, &SshHostConfig::default()).unwrap()
    }

    fn params(&self) -> ConnectParams {
        self.params_with("root", self.known_hosts(), false, None)
    }

    async fn connect(&self) -> Arc<dyn Transport> {
        ferry::transport::connect(&self.params())
            .await
            .expect("connects")
    }

    /// A connection answered by the host's agent (`agent`) or by the remote
    /// shell (`ferry_agent: false`), checked to be so.
    async fn connect_mode(&self, agent: bool) -> Arc<dyn Transport> {
        connect_checked(self.params(), agent).await
    }
}

/// Connects with `p`, the host's agent answering or not as `agent` says.
async fn connect_checked(mut p: ConnectParams, agent: bool) -> Arc<dyn Transport> {
    p.agent = agent;
    let t = ferry::transport::ssh::connect(&p).await.expect("connects");
    assert_eq!(
        t.has_agent(),
        agent,
        "agent wanted: {agent}; refused: {:?}",
        t.agent_refused()
    );
    Arc::new(t)
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn run_carries_stdin_stdout_stderr_and_exit_status_agent() {
    run_carries_stdin_stdout_stderr_and_exit_status(true).await;
}

#[tokio::test]
async fn run_carries_stdin_stdout_stderr_and_exit_status_shell() {
    run_carries_stdin_stdout_stderr_and_exit_status(false).await;
}

async fn run_carries_stdin_stdout_stderr_and_exit_status(agent: bool) {
    let sshd = Sshd::start("");
    let t = sshd.connect_mode(agent).await;
    let stdin: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mut spec = CommandSpec::new("cat; printf 'oops\\n' >&2; exit 3");
    spec.stdin = Some(stdin.clone());
    let out = t.run(&spec).await.unwrap();
    assert_eq!(out.rc, 3);
    assert!(!out.timed_out);
    assert_eq!(out.stdout, stdin, "stdout is stdin, byte for byte");
    assert_eq!(out.stderr, b"oops\n");

    let mut spec = CommandSpec::new("pwd; echo \"$GREETING\"; printf 'no newline'");
    spec.cwd = Some("/usr/share".into());
    spec.env = vec![("GREETING".into(), "it's \"quoted\" $HOME".into())];
    let out = t.run(&spec).await.unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "/usr/share\nit's \"quoted\" $HOME\nno newline"
    );
    assert_eq!(out.rc, 0);

    let out = t
        .run(&CommandSpec::new("line1=a\nline2=b\necho \"$line1$line2\""))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"ab\n", "multi-line scripts run whole");
    t.close().await;
}

#[tokio::test]
async fn files_put_atomically_with_mode_and_owner_get_and_stat_agent() {
    files_put_atomically_with_mode_and_owner_get_and_stat(true).await;
}

#[tokio::test]
async fn files_put_atomically_with_mode_and_owner_get_and_stat_shell() {
    files_put_atomically_with_mode_and_owner_get_and_stat(false).await;
}

async fn files_put_atomically_with_mode_and_owner_get_and_stat(agent: bool) {
    let sshd = Sshd::start("");
    let t = sshd.connect_mode(agent).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let p = path.to_str().unwrap().to_string();
    let content: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    t.put_file(&FileSpec {
        path: p.clone(),
        content: content.clone(),
        mode: Some(0o640),
        owner: Some("root".into()),
        group: Some("daemon".into()),
        become_: None,
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), content);
    let st = t.stat(&p).await.unwrap();
    assert!(st.exists && st.is_file && !st.is_dir && !st.is_link);
    assert_eq!(st.mode, 0o640);
    assert_eq!((st.owner.as_str(), st.group.as_str()), ("root", "daemon"));
    assert_eq!(st.size, content.len() as u64);
    assert_eq!(
        st.checksum.as_deref(),
        Some(hex::encode(sha2::Sha256::digest(&content)).as_str())
    );
    assert_eq!(t.get_file(&p).await.unwrap(), content);

    // Replacing is a rename: a reader holding the old file keeps the old content.
    let old = std::fs::File::open(&path).unwrap();
    t.put_file(&FileSpec {
        path: p.clone(),
        content: b"new\n".to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut kept = Vec::new();
    std::io::Read::read_to_end(&mut &old, &mut kept).unwrap();
    assert_eq!(kept, content, "the old inode is untouched");
    assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
    let st = t.stat(&p).await.unwrap();
    assert_eq!(
        (st.mode, st.group.as_str()),
        (0o640, "daemon"),
        "mode and group kept when not given"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temp file left behind: {names:?}");

    std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
    let st = t
        .stat(dir.path().join("link").to_str().unwrap())
        .await
        .unwrap();
    assert!(st.is_link && st.link_target.as_deref() == Some("/etc"));
    let st = t.stat(dir.path().to_str().unwrap()).await.unwrap();
    assert!(st.is_dir && st.checksum.is_none());
    assert!(!t.stat("/nonexistent/x").await.unwrap().exists);
    let err = t.get_file("/nonexistent/x").await.unwrap_err().to_string();
    assert!(
        err.contains("testhost") && err.contains("/nonexistent/x"),
        "{err}"
    );
    let err = t
        .put_file(&FileSpec {
            path: "/nonexistent/dir/f".into(),
            content: b"x".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/dir/f"), "{err}");
    assert_eq!(
        t.run(&CommandSpec::new("echo still here"))
            .await
            .unwrap()
            .stdout,
        b"still here\n"
    );
    t.close().await;
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout_and_the_next_call_works_agent() {
    a_hanging_command_is_killed_at_its_timeout_and_the_next_call_works(true).await;
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout_and_the_next_call_works_shell() {
    a_hanging_command_is_killed_at_its_timeout_and_the_next_call_works(false).await;
}

async fn a_hanging_command_is_killed_at_its_timeout_and_the_next_call_works(agent: bool) {
    let sshd = Sshd::start("");
    let t = sshd.connect_mode(agent).await;
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    let mut spec = CommandSpec::new(format!(
        "sleep 300 & echo $! > {}; echo started; sleep 300",
        pidfile.display()
    ));
    // The timeout clock runs from the command's start, its own startup
    // included: 1 s was once not enough under load for the shell to reach
    // `echo started` (empty stdout, no pidfile). 3 s is; the check is that
    // the command is killed at its timeout, not before it and not much after.
    let limit = Duration::from_secs(3);
    spec.timeout = Some(limit);
    let t0 = Instant::now();
    let out = t.run(&spec).await.unwrap();
    let took = t0.elapsed();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.rc, -1);
    assert_eq!(out.stdout, b"started\n");
    assert!(
        took >= limit && took < limit + Duration::from_secs(20),
        "killed at its timeout of {limit:?}, took {took:?}"
    );
    let child: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Dead: gone, or a zombie waiting for its new parent to reap it. The kill
    // was sent before the answer came back, but dying takes the killed
    // process a turn on a CPU: wait for that (a fixed 200 ms once was not
    // enough under load), up to a deadline a live `sleep 300` cannot meet.
    let dead = |state: &str| {
        state.is_empty()
            || state
                .rsplit(')')
                .next()
                .unwrap()
                .trim_start()
                .starts_with('Z')
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
    while !dead(&state) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        state = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
    }
    assert!(
        dead(&state),
        "the command's background child was killed too: {state}"
    );
    let mut quick = CommandSpec::new("echo fine");
    quick.timeout = Some(Duration::from_secs(5));
    let out = t.run(&quick).await.unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.rc, out.timed_out),
        (&b"fine\n"[..], 0, false)
    );
    // A caller that gives up (its future dropped) does not garble the next answer.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        t.run(&CommandSpec::new("sleep 1; echo late")),
    )
    .await;
    assert!(gave_up.is_err());
    let out = t.run(&CommandSpec::new("echo next")).await.unwrap();
    assert_eq!(out.stdout, b"next\n");
    t.close().await;
}

#[tokio::test]
async fn commands_with_a_timeout_that_end_at_once_answer_at_once() {
    // The remote shell's watchdog for a command with a timeout is killed when
    // the command ends; a kill that came before the watchdog ran `setsid` was
    // once lost and the answer waited for the whole timeout (about 1 command
    // in 30 on this machine). 300 in a row: each answers well before it.
    let sshd = Sshd::start("");
    let t = sshd.connect().await;
    let limit = Duration::from_secs(5);
    let mut slow = Vec::new();
    for i in 0..300 {
        let mut spec = CommandSpec::new("true");
        spec.timeout = Some(limit);
        let t0 = Instant::now();
        let out = t.run(&spec).await.unwrap();
        let took = t0.elapsed();
        assert_eq!((out.rc, out.timed_out), (0, false), "command {i}: {out:?}");
        if took >= limit - Duration::from_secs(1) {
            slow.push((i, took));
        }
    }
    assert!(
        slow.is_empty(),
        "commands that end at once waited for their {limit:?} timeout: {slow:?}"
    );
    t.close().await;
}

#[tokio::test]
async fn unknown_host_key_is_refused_naming_the_fingerprint() {
    let sshd = Sshd::start("");
    let empty = sshd.path("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let err = match ferry::transport::connect(&sshd.params_with("root", empty.clone(), false, None))
        .await
    {
        Ok(_) => panic!("an unknown host key was accepted"),
        Err(e) => e,
    };
    assert!(matches!(err, TransportError::HostKey { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("testhost")
            && msg.contains(&sshd.fingerprint())
            && msg.contains("--accept-new-host-keys"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read_to_string(&empty).unwrap(),
        "",
        "nothing recorded"
    );
}

#[tokio::test]
async fn accept_new_records_the_key_and_it_is_then_known() {
    let sshd = Sshd::start("");
    let kh = sshd.path("new_known_hosts");
    let t = ferry::transport::connect(&sshd.params_with("root", kh.clone(), true, None))
        .await
        .unwrap();
    t.close().await;
    let text = std::fs::read_to_string(&kh).unwrap();
    let key = std::fs::read_to_string(sshd.path("host_key.pub")).unwrap();
    let key_b64 = key.split_whitespace().nth(1).unwrap();
    assert!(
        text.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 {key_b64}", sshd.port)),
        "{text}"
    );
    // Now known: strict checking passes.
    let t = ferry::transport::connect(&sshd.params_with("root", kh.clone(), false, None))
        .await
        .unwrap();
    t.close().await;
    // Hashed entries are understood too.
    let hashed = sshd.path("hashed_known_hosts");
    std::fs::copy(&kh, &hashed).unwrap();
    sh(&format!(
        "ssh-keygen -q -H -f {} && rm -f {0}.old",
        hashed.display()
    ));
    assert!(std::fs::read_to_string(&hashed).unwrap().starts_with("|1|"));
    let t = ferry::transport::connect(&sshd.params_with("root", hashed, false, None))
        .await
        .unwrap();
    t.close().await;
}

#[tokio::test]
async fn a_changed_host_key_is_refused_even_with_accept_new() {
    let sshd = Sshd::start("");
    let other = sshd.path("other_key");
    keygen(&other);
    let kh = sshd.path("changed_known_hosts");
    let other_pub = std::fs::read_to_string(sshd.path("other_key.pub")).unwrap();
    std::fs::write(&kh, format!("[127.0.0.1]:{} {other_pub}", sshd.port)).unwrap();
    for accept_new in [false, true] {
        let err = match ferry::transport::connect(&sshd.params_with(
            "root",
            kh.clone(),
            accept_new,
            None,
        ))
        .await
        {
            Ok(_) => panic!("a changed host key was accepted (accept_new {accept_new})"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("CHANGED") && err.contains(&sshd.fingerprint()),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&kh).unwrap(),
        format!("[127.0.0.1]:{} {other_pub}", sshd.port)
    );
}

#[tokio::test]
async fn a_jump_host_carries_the_connection() {
    let jump = Sshd::start("AllowTcpForwarding yes");
    let target = Sshd::start("");
    // Both servers' keys known; the jump host accepts the target's client key too.
    let kh = target.path("both_known_hosts");
    let jump_key = std::fs::read_to_string(jump.path("host_key.pub")).unwrap();
    let target_key = std::fs::read_to_string(target.path("host_key.pub")).unwrap();
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {jump_key}[127.0.0.1]:{} {target_key}",
            jump.port, target.port
        ),
    )
    .unwrap();
    std::fs::copy(target.path("client_key.pub"), jump.path("authorized_keys")).unwrap();
    let p = target.params_with(
        "root",
        kh.clone(),
        false,
        Some(&format!("-o ProxyJump=root@127.0.0.1:{}", jump.port)),
    );
    assert_eq!(p.jump.as_ref().unwrap().port, jump.port);
    let t = ferry::transport::connect(&p).await.unwrap();
    // The target sees the connection coming from the jump host's forwarding.
    let out = t
        .run(&CommandSpec::new("echo $SSH_CONNECTION"))
        .await
        .unwrap();
    let conn = String::from_utf8(out.stdout).unwrap();
    assert!(
        conn.ends_with(&format!("127.0.0.1 {}\n", target.port)),
        "{conn}"
    );
    t.close().await;

    // A jump host that forbids forwarding: the error names it.
    let closed = Sshd::start("AllowTcpForwarding no");
    std::fs::copy(
        target.path("client_key.pub"),
        closed.path("authorized_keys"),
    )
    .unwrap();
    let closed_key = std::fs::read_to_string(closed.path("host_key.pub")).unwrap();
    std::fs::write(
        &kh,
        format!(
            "[127.0.0.1]:{} {closed_key}[127.0.0.1]:{} {target_key}",
            closed.port, target.port
        ),
    )
    .unwrap();
    let p = target.params_with(
        "root",
        kh,
        false,
        Some(&format!("-J root@127.0.0.1:{}", closed.port)),
    );
    let err = match ferry::transport::connect(&p).await {
        Ok(_) => panic!("connected through a jump host that forbids forwarding"),
        Err(e) => e,
    };
    assert!(
        err.is_unreachable() && err.to_string().contains("jump host"),
        "{err}"
    );
}

/// A test user (with a password and sudo rights), removed when dropped.
/// A local user made for one test, removed when dropped; its name carries the
/// test process's PID so parallel runs (another checkout's CI) never share one.
struct TestUser(String);

impl TestUser {
    fn create(prefix: &str, password: &str) -> TestUser {
        let name = format!("{prefix}{}", std::process::id());
        assert!(
            Path::new("/usr/bin/sudo").exists(),
            "the become test needs sudo installed"
        );
        let _ = Command::new("userdel")
            .args(["-r", &name])
            .stderr(Stdio::null())
            .status();
        sh(&format!(
            "useradd -m -s /bin/sh {name} && echo '{name}:{password}' | chpasswd"
        ));
        std::fs::write(
            format!("/etc/sudoers.d/{name}"),
            format!("{name} ALL=(ALL:ALL) ALL\n"),
        )
        .unwrap();
        sh(&format!("chmod 440 /etc/sudoers.d/{name}"));
        TestUser(name)
    }

    fn name(&self) -> &str {
        &self.0
    }

    fn home(&self) -> String {
        sh(&format!("getent passwd {} | cut -d: -f6", self.0))
            .trim()
            .to_string()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/etc/sudoers.d/{}", self.0));
        // Its sshd session may still be exiting (userdel refuses then): retry.
        for _ in 0..50 {
            let removed = Command::new("userdel")
                .args(["-r", &self.0])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if removed {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn become_runs_as_another_user_with_the_password_fed_by_askpass_agent() {
    become_runs_as_another_user_with_the_password_fed_by_askpass(true).await;
}

#[tokio::test]
async fn become_runs_as_another_user_with_the_password_fed_by_askpass_shell() {
    become_runs_as_another_user_with_the_password_fed_by_askpass(false).await;
}

async fn become_runs_as_another_user_with_the_password_fed_by_askpass(agent: bool) {
    let started = std::time::SystemTime::now();
    let sshd = Sshd::start("");
    let user = TestUser::create(
        if agent { "ferrybecomea" } else { "ferrybecome" },
        "s3cret pass",
    );
    // root -> the test user, no password needed.
    let t = sshd.connect_mode(agent).await;
    let mut spec = CommandSpec::new("id -un; pwd");
    spec.become_ = Some(Become {
        user: Some(user.name().into()),
        password: None,
    });
    spec.cwd = Some("/tmp".into());
    let out = t.run(&spec).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n/tmp\n", user.name()),
        "{out:?}"
    );
    t.close().await;

    // The test user -> root: the password goes through sudo's askpass.
    let kh = sshd.known_hosts();
    let t = connect_checked(sshd.params_with(user.name(), kh, false, None), agent).await;
    assert_eq!(
        String::from_utf8_lossy(&t.run(&CommandSpec::new("id -un")).await.unwrap().stdout),
        format!("{}\n", user.name())
    );
    let as_root = |password: Option<&str>| {
        let mut s = CommandSpec::new("id -un; cat");
        s.stdin = Some(b"stdin intact\n".to_vec());
        s.timeout = Some(Duration::from_secs(30));
        s.become_ = Some(Become {
            user: None,
            password: password.map(str::to_string),
        });
        s
    };
    let out = t.run(&as_root(None)).await.unwrap();
    assert_ne!(
        out.rc, 0,
        "no password: sudo fails at once instead of hanging"
    );
    let out = t.run(&as_root(Some("wrong"))).await.unwrap();
    assert_ne!(out.rc, 0, "a wrong password fails");
    let out = t.run(&as_root(Some("s3cret pass"))).await.unwrap();
    assert_eq!(
        (out.rc, String::from_utf8_lossy(&out.stdout).as_ref()),
        (0, "root\nstdin intact\n"),
        "{out:?}"
    );
    let env = t.run(&CommandSpec::new("env")).await.unwrap();
    assert!(
        !String::from_utf8_lossy(&env.stdout).contains("s3cret"),
        "the password is not in plain commands' environment"
    );
    // A file put as root by the unprivileged login.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("owned").to_str().unwrap().to_string();
    t.put_file(&FileSpec {
        path: path.clone(),
        content: b"root's\n".to_vec(),
        mode: Some(0o600),
        owner: Some(user.name().into()),
        group: None,
        become_: Some(Become {
            user: None,
            password: Some("s3cret pass".into()),
        }),
    })
    .await
    .unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o7777, 0o600);
    assert_eq!(std::fs::read(&path).unwrap(), b"root's\n");
    // The password never reaches a file: not the remote shell's temp dir
    // (askpass reads it from the environment), not the controller's. Looked
    // for while the shell is open and after it closed.
    let on_disk = || {
        password_files(
            b"s3cret pass",
            &[Path::new("/tmp"), Path::new("/var/tmp")],
            started,
        )
    };
    assert_eq!(
        on_disk(),
        Vec::<PathBuf>::new(),
        "the become password on disk"
    );
    t.close().await;
    assert_eq!(
        on_disk(),
        Vec::<PathBuf>::new(),
        "the become password on disk"
    );
}

/// The agent is placed on a host at first contact (older agents removed),
/// started directly after that, runs the commands, and is placed again when
/// its file is damaged.
#[tokio::test]
async fn the_agent_is_placed_once_then_started_and_replaced_when_damaged() {
    let sshd = Sshd::start("");
    let user = TestUser::create("ferryagent", "unused");
    let name = user.name().to_string();
    let home = user.home();
    let cache = format!("{home}/.cache/ferry");
    let placed = format!("{cache}/{}", ferry::transport::agent::file_name());
    sh(&format!(
        "mkdir -p {cache} && echo old > {cache}/agent-0000000000000000 && chown -R {name}: {home}/.cache"
    ));
    let params = || sshd.params_with(&name, sshd.known_hosts(), false, None);
    let trips = ferry::transport::remote::round_trips;

    let before = trips();
    let t = connect_checked(params(), true).await;
    assert_eq!(trips() - before, 1, "one round trip places the agent");
    assert_eq!(
        std::fs::read(&placed).unwrap(),
        ferry::transport::agent::BINARY,
        "placed whole at {placed}"
    );
    let meta = std::fs::metadata(&placed).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o700);
    assert!(
        !Path::new(&format!("{cache}/agent-0000000000000000")).exists(),
        "an older agent is removed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(leftovers.len(), 1, "nothing else in {cache}: {leftovers:?}");
    let out = t
        .run(&CommandSpec::new("readlink /proc/$PPID/exe"))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        placed,
        "commands are the agent's children"
    );
    t.close().await;

    let before = trips();
    let t = connect_checked(params(), true).await;
    assert_eq!(trips() - before, 0, "started directly the second time");
    t.close().await;

    std::fs::write(&placed, b"damaged").unwrap();
    let t = connect_checked(params(), true).await;
    assert_eq!(
        std::fs::read(&placed).unwrap(),
        ferry::transport::agent::BINARY,
        "placed again"
    );
    assert_eq!(t.stat(&placed).await.unwrap().owner, name, "and answering");
    t.close().await;
}

/// A host whose home cannot run the agent (here: `~/.cache/ferry` on a `noexec`
/// mount) keeps the remote shell, and later connections do not carry the agent
/// there again.
#[tokio::test]
async fn a_host_that_cannot_run_the_agent_keeps_the_shell_and_is_not_asked_again() {
    let sshd = Sshd::start("");
    let user = TestUser::create("ferrynoexec", "unused");
    let name = user.name().to_string();
    let home = user.home();
    let cache = format!("{home}/.cache/ferry");
    sh(&format!(
        "mkdir -p {cache} && mount -t tmpfs -o noexec,mode=700,uid=$(id -u {name}) ferrytest {cache}"
    ));
    struct Unmount(String);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(cache.clone());
    let params = || {
        let mut p = sshd.params_with(&name, sshd.known_hosts(), false, None);
        p.agent = true;
        p
    };
    let trips = ferry::transport::remote::round_trips;

    let before = trips();
    let t = ferry::transport::ssh::connect(&params()).await.unwrap();
    assert!(!t.has_agent(), "the agent cannot run from a noexec mount");
    let why = t.agent_refused().unwrap_or_default().to_string();
    assert!(why.contains("does not run on this host"), "{why}");
    assert_eq!(trips() - before, 1, "one round trip tried to place it");
    let file = format!("{cache}/{}", ferry::transport::agent::file_name());
    assert!(
        Path::new(&format!("{file}.refused")).exists(),
        "the refusal is marked"
    );
    assert!(!Path::new(&file).exists(), "nothing else left behind");
    assert!(!t.stat(&file).await.unwrap().exists, "the shell answers");
    Transport::close(&t).await;

    let before = trips();
    let t = ferry::transport::ssh::connect(&params()).await.unwrap();
    assert!(!t.has_agent());
    assert_eq!(trips() - before, 0, "not carried over again");
    assert!(
        t.agent_refused()
            .unwrap_or_default()
            .contains("earlier connection"),
        "{:?}",
        t.agent_refused()
    );
    assert_eq!(
        t.run(&CommandSpec::new("echo shell")).await.unwrap().stdout,
        b"shell\n"
    );
    Transport::close(&t).await;
}

#[tokio::test]
async fn many_calls_do_not_leak_sessions() {
    let sshd = Sshd::start("MaxSessions 10");
    let t = sshd.connect().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let out = t.run(&CommandSpec::new(format!("echo {i}"))).await.unwrap();
        assert_eq!(out.stdout, format!("{i}\n").as_bytes());
        let p = dir
            .path()
            .join(format!("f{i}"))
            .to_str()
            .unwrap()
            .to_string();
        t.put_file(&FileSpec {
            path: p.clone(),
            content: vec![i as u8; 10],
            ..Default::default()
        })
        .await
        .unwrap();
        assert_eq!(t.stat(&p).await.unwrap().size, 10);
        assert_eq!(t.get_file(&p).await.unwrap(), vec![i as u8; 10]);
    }
    // Calls from several tasks at once are serialized on the one shell.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.run(&CommandSpec::new(format!("echo {i}")))
                .await
                .unwrap()
                .stdout
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), format!("{i}\n").as_bytes());
    }
    t.close().await;
    assert!(
        t.run(&CommandSpec::new("true")).await.is_err(),
        "a closed transport refuses calls"
    );
}

fn local_facts_source(cmd: &str) -> String {
    sh(cmd).trim().to_string()
}

#[tokio::test]
async fn facts_through_sshd_match_this_machine() {
    let sshd = Sshd::start("");
    let t = sshd.connect().await;
    let f = ferry::facts::gather(t.as_ref()).await.unwrap();
    t.close().await;
    let os_name = local_facts_source(". /etc/os-release; echo $NAME");
    assert_eq!(
        f["ansible_distribution"],
        json!(os_name.split_whitespace().next().unwrap())
    );
    assert_eq!(
        f["ansible_distribution_version"],
        json!(local_facts_source(". /etc/os-release; echo $VERSION_ID"))
    );
    assert_eq!(f["ansible_kernel"], json!(local_facts_source("uname -r")));
    assert_eq!(
        f["ansible_processor_vcpus"],
        json!(local_facts_source("nproc --all").parse::<u64>().unwrap())
    );
    let mem_kb: u64 = local_facts_source("awk '/^MemTotal/ {print $2}' /proc/meminfo")
        .parse()
        .unwrap();
    assert_eq!(f["ansible_memtotal_mb"], json!(mem_kb / 1024));
    // Other processes may add interfaces meanwhile: check the ones that stay.
    let ifaces = f["ansible_interfaces"].as_array().unwrap();
    assert!(ifaces.contains(&json!("lo")), "lo listed");
    assert_eq!(f["ansible_lo"]["ipv4"]["address"], "127.0.0.1");
    assert_eq!(f["ansible_lo"]["mtu"], json!(65536));
    let default_dev = local_facts_source(
        "ip -j route show default | sed -n 's/.*\"dev\":\"\\([^\"]*\\)\".*/\\1/p'",
    );
    if !default_dev.is_empty() {
        assert_eq!(f["ansible_default_ipv4"]["interface"], json!(default_dev));
        assert!(ifaces.contains(&json!(default_dev)));
        let mac = local_facts_source(&format!("cat /sys/class/net/{default_dev}/address"));
        assert_eq!(
            f[format!("ansible_{default_dev}")]["macaddress"],
            json!(mac)
        );
    }
    let cpu_flags = local_facts_source("grep -m1 '^flags' /proc/cpuinfo");
    assert_eq!(
        f["ferry_cpu_virtualization"]["vmx"],
        json!(cpu_flags.split_whitespace().any(|w| w == "vmx"))
    );
    let qemu = local_facts_source("qemu-system-x86_64 --version | head -n1");
    assert!(
        qemu.contains(f["ferry_qemu_version"].as_str().unwrap()),
        "{qemu} vs {}",
        f["ferry_qemu_version"]
    );
    let virsh = local_facts_source("virsh --version");
    assert_eq!(f["ferry_virsh_version"], json!(virsh));
    let nics = f["ferry_nics"].as_array().unwrap();
    assert!(nics.iter().all(|n| n["name"] != "lo"));
    let speeds: Vec<i64> = nics
        .iter()
        .map(|n| n["speed_mbps"].as_i64().unwrap_or(-1))
        .collect();
    assert!(
        speeds.windows(2).all(|w| w[0] >= w[1]),
        "sorted by speed: {speeds:?}"
    );
    assert!(matches!(f["ansible_default_ipv4"], Value::Object(_)));
}

#[tokio::test]
async fn the_ssh_agent_authenticates_when_no_key_file_does() {
    let sshd = Sshd::start("");
    let sock = sshd.path("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent starts (openssh-client)");
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0 as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let _guard = KillOnDrop(agent.id());
    let t0 = Instant::now();
    while !sock.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "ssh-agent socket did not appear"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut p = sshd.params();
    p.identity_files.clear();
    p.agent_socket = Some(sock.clone());
    // An empty agent: refused, and the error says what was tried.
    let err = match ferry::transport::connect(&p).await {
        Ok(_) => panic!("connected with an empty agent"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("authentication as root failed") && err.contains("ssh-agent"),
        "{err}"
    );
    sh(&format!(
        "SSH_AUTH_SOCK={} ssh-add -q {}",
        sock.display(),
        sshd.path("client_key").display()
    ));
    let t = ferry::transport::connect(&p)
        .await
        .expect("the agent's key is accepted");
    assert_eq!(
        t.run(&CommandSpec::new("echo via agent"))
            .await
            .unwrap()
            .stdout,
        b"via agent\n"
    );
    t.close().await;
    drop(_guard);
    let _ = agent.wait();
}

#[tokio::test]
async fn a_silent_server_times_out_and_a_closed_port_is_unreachable() {
    let sshd = Sshd::start("");
    // Accepts TCP but never speaks SSH.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut p = sshd.params();
    p.port = silent.local_addr().unwrap().port();
    p.connect_timeout = Duration::from_millis(500);
    let err = match ferry::transport::connect(&p).await {
        Ok(_) => panic!("connected to a silent server"),
        Err(e) => e,
    };
    assert!(
        err.is_unreachable() && err.to_string().contains("timed out"),
        "{err}"
    );
    drop(silent);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    p.port = closed;
    let err = match ferry::transport::connect(&p).await {
        Ok(_) => panic!("connected to a closed port"),
        Err(e) => e,
    };
    assert!(
        err.is_unreachable() && err.to_string().contains(&format!("127.0.0.1:{closed}")),
        "{err}"
    );
}

/// Prints connect time and per-call latency:
/// `cargo test --test transport latency -- --ignored --nocapture`
/// (as a /bin/sh user; `FERRY_BENCH_AS_ROOT=1` to measure as root).
#[tokio::test]
#[ignore = "a benchmark: prints figures"]
async fn latency() {
    let sshd = Sshd::start("MaxStartups 200\nMaxSessions 200");
    // root's login shell here is bash, whose ~/.bashrc (pyenv init) costs
    // ~0.6 s of CPU per session; a user with /bin/sh measures ferry instead.
    let as_root = std::env::var("FERRY_BENCH_AS_ROOT").is_ok();
    let user = (!as_root).then(|| TestUser::create("ferrybench", "unused"));
    let p = match &user {
        None => sshd.params(),
        Some(u) => sshd.params_with(u.name(), sshd.known_hosts(), false, None),
    };
    let mut connects = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        let t = ferry::transport::connect(&p).await.unwrap();
        connects.push(t0.elapsed());
        t.close().await;
    }
    connects.sort();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let t = ferry::transport::connect(&p).await.unwrap();
            assert_eq!(t.run(&CommandSpec::new("true")).await.unwrap().rc, 0);
            t
        }));
    }
    let mut opened = Vec::new();
    for task in tasks {
        opened.push(task.await.unwrap());
    }
    let parallel = t0.elapsed();
    for t in opened {
        t.close().await;
    }
    let t = ferry::transport::connect(&p).await.unwrap();
    let t1 = Instant::now();
    for _ in 0..50 {
        assert_eq!(t.run(&CommandSpec::new("true")).await.unwrap().rc, 0);
    }
    let runs = t1.elapsed();
    let t2 = Instant::now();
    for i in 0..50 {
        t.put_file(&FileSpec {
            path: format!("/tmp/ferry-latency-{}-{}", p.user, i % 2),
            content: vec![b'x'; 100],
            mode: Some(0o644),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let puts = t2.elapsed();
    let t3 = Instant::now();
    for _ in 0..50 {
        t.stat("/etc/hostname").await.unwrap();
    }
    let stats = t3.elapsed();
    t.close().await;
    let _ = std::fs::remove_file(format!("/tmp/ferry-latency-{}-0", p.user));
    let _ = std::fs::remove_file(format!("/tmp/ferry-latency-{}-1", p.user));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "connect (handshake + auth + remote shell), 10 sequential: median {:.1} ms, min {:.1} ms\n\
         50 connections at once, each running `true`: {:.0} ms\n\
         50 x run(true): {:.1} ms total, {:.2} ms/call\n\
         50 x put_file(100 B, mode): {:.2} ms/call\n50 x stat (with sha256): {:.2} ms/call\n\
         (user {}, load average: {})",
        ms(connects[5]),
        ms(connects[0]),
        ms(parallel),
        ms(runs),
        ms(runs) / 50.0,
        ms(puts) / 50.0,
        ms(stats) / 50.0,
        p.user,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

/// The one-round-trip calls (`create_file`, `stat_read`, `exists`) answer as the
/// calls they replace, over SSH as through the local transport (which uses
/// the trait's default implementations built from stat/get_file/put_file).
#[tokio::test]
async fn one_round_trip_calls_answer_as_the_calls_they_replace() {
    let sshd = Sshd::start("");
    let ssh = sshd.connect_mode(true).await;
    let ssh_shell = sshd.connect_mode(false).await;
    let local: Arc<dyn Transport> = Arc::new(ferry::transport::local::LocalTransport::new("local"));
    for (which, t) in [
        ("ssh, agent", ssh.clone()),
        ("ssh, shell", ssh_shell.clone()),
        ("local", local),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let p = format!("{d}/conf");
        let text = "it's \"quoted\" $HOME `x` \\n back\\slash\r\nnon-ASCII é\n\n'\nno newline";
        let spec = FileSpec {
            path: p.clone(),
            content: text.as_bytes().to_vec(),
            mode: Some(0o640),
            ..Default::default()
        };
        assert_eq!(
            t.create_file(&spec).await.unwrap(),
            None,
            "{which}: created"
        );
        assert_eq!(std::fs::read(&p).unwrap(), text.as_bytes(), "{which}");
        let st = t.stat(&p).await.unwrap();
        assert_eq!(st.mode, 0o640, "{which}: mode from the umask");
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).unwrap());

        // Something there: nothing written, its stat (with checksum) answered.
        let other = FileSpec {
            content: b"other".to_vec(),
            ..spec.clone()
        };
        let again = t.create_file(&other).await.unwrap().expect("not written");
        assert_eq!(again, st, "{which}: the stat, checksum included");
        assert_eq!(std::fs::read(&p).unwrap(), text.as_bytes(), "{which}");
        assert_eq!(
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).unwrap()),
            ino,
            "{which}: not rewritten"
        );

        // A missing parent: nothing written, a missing stat answered.
        let nowhere = FileSpec {
            path: format!("{d}/no/such/f"),
            ..spec.clone()
        };
        let st = t.create_file(&nowhere).await.unwrap().expect("not written");
        assert!(!st.exists, "{which}");
        assert!(!Path::new(&format!("{d}/no")).exists(), "{which}");

        // Modes beyond the umask (chmod), and binary content (put_file).
        let x = FileSpec {
            path: format!("{d}/run.sh"),
            content: b"#!/bin/sh\n".to_vec(),
            mode: Some(0o4755),
            ..Default::default()
        };
        assert_eq!(t.create_file(&x).await.unwrap(), None, "{which}");
        assert_eq!(t.stat(&x.path).await.unwrap().mode, 0o4755, "{which}");
        let bin = FileSpec {
            path: format!("{d}/bin"),
            content: vec![0, 1, 2, 255, b'\'', b'\n'],
            ..Default::default()
        };
        assert_eq!(t.create_file(&bin).await.unwrap(), None, "{which}");
        assert_eq!(std::fs::read(&bin.path).unwrap(), bin.content, "{which}");

        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("ferry"))
            .collect();
        assert!(names.is_empty(), "{which}: temp files left: {names:?}");

        // stat_read: a file's stat with its content; a link's stat; a directory's.
        let r = t.stat_read(&p).await.unwrap();
        assert_eq!(r.stat, t.stat(&p).await.unwrap(), "{which}");
        assert_eq!(r.content.as_deref(), Some(text.as_bytes()), "{which}");
        let r = t.stat_read(&bin.path).await.unwrap();
        assert_eq!(
            r.content.as_deref(),
            Some(bin.content.as_slice()),
            "{which}"
        );
        std::os::unix::fs::symlink("/nonexistent", format!("{d}/dangling")).unwrap();
        let r = t.stat_read(&format!("{d}/dangling")).await.unwrap();
        assert!(r.stat.is_link && r.content.is_none(), "{which}: {r:?}");
        let r = t.stat_read(&d).await.unwrap();
        assert!(r.stat.is_dir && r.content.is_none(), "{which}");
        let r = t.stat_read(&format!("{d}/missing")).await.unwrap();
        assert!(!r.stat.exists && r.content.is_none(), "{which}");
        assert_ne!(
            r.parent_is_dir,
            Some(false),
            "{which}: the parent is a directory"
        );
        let r = t.stat_read(&format!("{p}/under-a-file")).await.unwrap();
        assert!(!r.stat.exists, "{which}");
        assert_ne!(r.parent_is_dir, Some(true), "{which}: the parent is a file");

        // exists: a dangling link counts, as stat says.
        assert!(t.exists(&p).await.unwrap(), "{which}");
        assert!(t.exists(&format!("{d}/dangling")).await.unwrap(), "{which}");
        assert!(!t.exists(&format!("{d}/missing")).await.unwrap(), "{which}");
    }
    ssh.close().await;
    ssh_shell.close().await;
}

/// Files written since `since` (up to 4 levels under `roots`, each under
/// 4 MiB) holding `needle`.
fn password_files(needle: &[u8], roots: &[&Path], since: std::time::SystemTime) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    fn walk(
        dir: &Path,
        depth: u32,
        needle: &[u8],
        since: std::time::SystemTime,
        found: &mut Vec<PathBuf>,
        root_dev: u64,
    ) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            // Another filesystem mounted below (a /proc or a lab's overlay under
            // /tmp) is not where a file would be left, and its files may block.
            if meta.dev() != root_dev {
                continue;
            }
            if meta.is_dir() && depth < 4 {
                walk(&p, depth + 1, needle, since, found, root_dev);
            } else if meta.is_file()
                && meta.len() > 0
                && meta.len() < 4 << 20
                && meta.modified().is_ok_and(|m| m >= since)
                && let Ok(bytes) = std::fs::read(&p)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(p);
            }
        }
    }
    let mut found = Vec::new();
    for r in roots {
        if let Ok(m) = std::fs::metadata(r) {
            walk(r, 0, needle, since, &mut found, m.dev());
        }
    }
    found
}
