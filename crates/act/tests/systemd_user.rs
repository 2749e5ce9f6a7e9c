//! `restart` / `start` / `stop` end to end against a real `systemd --user` manager, started by
//! the test in a private mount namespace (a tmpfs `/run` with `/run/systemd/system`, so systemd
//! believes it was booted with systemd; its own cgroup). Its runtime directory and so its bus
//! socket live in a temporary directory under /tmp, which this process reaches directly.
//! Nothing of the host's systemd or buses is touched. Without the privileges or the programs
//! this needs, the test fails under `CI=true` and says SKIPPED loudly otherwise.
#![expect(
    clippy::unwrap_used,
    reason = "a test file: its helpers outside #[test] may unwrap too (STYLE.md)"
)]
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use portwarden_act::{run, ActionSpec, BusKind, Context, ManagerKind, UnitAction};

const SYSTEMD: &str = "/lib/systemd/systemd";

/// A `systemd --user` of our own; stopped (by PID) and its cgroups removed on drop.
struct UserManager {
    child: Child,
    dir: tempfile::TempDir,
    cgroups: Vec<PathBuf>,
}

impl UserManager {
    fn runtime(&self) -> PathBuf {
        self.dir.path().join("xdg")
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.runtime().join("bus").display())
    }

    fn start(units: &[(&str, String)]) -> Result<UserManager, String> {
        if !Path::new(SYSTEMD).exists() {
            return Err(format!("{SYSTEMD} is missing (package systemd)"));
        }
        if !Path::new("/usr/lib/systemd/user/dbus.socket").exists() {
            return Err("the user bus unit is missing (package dbus-user-session)".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("pw-sd")
            .tempdir_in("/tmp")
            .unwrap();
        let runtime = dir.path().join("xdg");
        let unit_dir = runtime.join("systemd/user");
        std::fs::create_dir_all(&unit_dir).unwrap();
        for (name, text) in units {
            std::fs::write(unit_dir.join(name), text).unwrap();
        }
        let tag = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Each hierarchy systemd may use gets a directory of ours (hybrid or unified hosts).
        let cgroups: Vec<PathBuf> = [
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ]
        .iter()
        .map(|h| Path::new(h).join(&tag))
        .filter(|p| p.parent().is_some_and(|h| h.join("cgroup.procs").exists()))
        .collect();
        let mut setup = String::from(
            "set -e; mount --make-rprivate /; mount -t tmpfs tmpfs /run; mkdir -p /run/systemd/system; ",
        );
        let unified_root = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        for cg in &cgroups {
            // On a unified-only host, only /sys/fs/cgroup itself applies.
            if unified_root
                && !cg.starts_with("/sys/fs/cgroup/systemd")
                && cg.parent() != Some(Path::new("/sys/fs/cgroup"))
            {
                continue;
            }
            setup.push_str(&format!(
                "mkdir -p {0}; echo $$ > {0}/cgroup.procs; ",
                cg.display()
            ));
        }
        setup.push_str(&format!(
            "export XDG_RUNTIME_DIR={}; exec {SYSTEMD} --user",
            runtime.display()
        ));
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &setup])
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        let mut m = UserManager {
            child,
            dir,
            cgroups,
        };
        let bus = m.runtime().join("bus");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !bus.exists() {
            if let Ok(Some(st)) = m.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = m.child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("systemd --user exited {st}: {}", err.trim()));
            }
            if Instant::now() > deadline {
                return Err("systemd --user did not open its bus within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(m)
    }
}

impl Drop for UserManager {
    fn drop(&mut self) {
        // The manager stops its units and exits on SIGTERM; it is our child, by PID.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        for cg in &self.cgroups {
            // Anything left in our cgroups was started by our manager: kill it by PID.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "[ -d {0} ] || exit 0; for f in $(find {0} -name cgroup.procs); do for p in $(cat $f); do kill -KILL $p; done; done; sleep 0.2; find {0} -depth -type d -exec rmdir {{}} \\;",
                    cg.display()
                ))
                .status();
        }
    }
}

fn skip_or_fail(why: &str) {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("cannot start a private systemd --user: {why}");
    }
    eprintln!("\n***** SKIPPED: systemd --user tests: {why} *****\n");
}

fn action(unit: &str, address: &str) -> UnitAction {
    UnitAction {
        unit: unit.into(),
        manager: ManagerKind::Systemd,
        bus: BusKind::User,
        bus_address: Some(address.into()),
        with_dependencies: false,
        timeout: Some("20s".into()),
    }
}

fn listener(port: u16) -> String {
    if Path::new("/usr/bin/socat").exists() {
        format!("/usr/bin/socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork /dev/null")
    } else {
        "/bin/sleep 100000".into()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_start_stop_against_a_real_user_manager() {
    let port = free_port();
    let units = [
        (
            "pw-test.service",
            format!("[Service]\nExecStart={}\n", listener(port)),
        ),
        (
            "pw-fail.service",
            "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo broken config >&2; exit 3'\n".to_string(),
        ),
        ("pw-dep.service", "[Service]\nExecStart=/bin/sleep 100000\n".to_string()),
        (
            "pw-main.service",
            "[Unit]\nRequires=pw-dep.service\nAfter=pw-dep.service\n[Service]\nExecStart=/bin/sleep 100000\n".to_string(),
        ),
    ];
    let m = match UserManager::start(&units) {
        Ok(m) => m,
        Err(why) => return skip_or_fail(&why),
    };
    let addr = m.address();
    let cx = Context::default();

    let t = Instant::now();
    let o = run(&ActionSpec::Start(action("pw-test", &addr)), &cx).await;
    assert!(o.ok, "{o:?}");
    assert!(
        o.summary
            .starts_with("started pw-test.service (job done, MainPID "),
        "{}",
        o.summary
    );
    if Path::new("/usr/bin/socat").exists() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the test unit never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let o = run(&ActionSpec::Restart(action("pw-test", &addr)), &cx).await;
    assert!(o.ok, "{o:?}");
    // `restarted pw-test.service (job done, MainPID 123 → 456)`
    let pids = o.summary.split("MainPID ").nth(1).unwrap_or_default();
    let (a, b) = pids
        .trim_end_matches(')')
        .split_once(" → ")
        .unwrap_or_else(|| panic!("{}", o.summary));
    assert_ne!(a, b, "{}", o.summary);
    eprintln!("restart: {} in {:?}", o.summary, o.took);

    let o = run(&ActionSpec::Restart(action("pw-fail", &addr)), &cx).await;
    assert!(!o.ok);
    assert_eq!(
        o.summary,
        "restart of pw-fail.service failed (job failed; failed/failed)"
    );

    let o = run(&ActionSpec::Restart(action("nope", &addr)), &cx).await;
    assert!(!o.ok);
    assert_eq!(
        o.summary,
        "restart nope.service: org.freedesktop.systemd1.NoSuchUnit: Unit nope.service not found."
    );

    let mut with = action("pw-main", &addr);
    with.with_dependencies = true;
    assert!(
        run(&ActionSpec::Start(action("pw-main", &addr)), &cx)
            .await
            .ok
    );
    let o = run(&ActionSpec::Restart(with), &cx).await;
    assert!(o.ok, "{o:?}");
    assert!(
        o.summary.ends_with(", after pw-dep.service)"),
        "{}",
        o.summary
    );

    let o = run(&ActionSpec::Stop(action("pw-test", &addr)), &cx).await;
    assert_eq!(o.summary, "stopped pw-test.service (job done)");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || !Path::new("/usr/bin/socat").exists()
    );
    eprintln!("systemd --user scenario took {:?}", t.elapsed());
    drop(m);
}

#[tokio::test]
async fn an_unreachable_bus_address_is_reported_without_fallback() {
    let o = run(
        &ActionSpec::Restart(action("pw-test", "unix:path=/nonexistent/pw/bus")),
        &Context::default(),
    )
    .await;
    assert!(!o.ok);
    assert!(
        o.summary.starts_with(
            "restart pw-test.service: cannot reach the D-Bus at unix:path=/nonexistent/pw/bus"
        ),
        "{}",
        o.summary
    );
}
