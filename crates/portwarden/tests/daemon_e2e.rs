//! The daemon end to end: the real binary, real listeners on loopback, its API and its
//! database. A listener stops → the monitor goes down after `fail_after` checks → it starts
//! again → up; reloads (good and bad), SIGTERM mid-check, restart with history kept, and the
//! zero-config default in a network namespace of its own.

#![allow(clippy::unwrap_used)] // test helpers may unwrap, as tests do (STYLE.md)

mod common;

use common::{free_port, temp_dir, Daemon, FAST_DEFAULTS};

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A banner server on a fixed port that can be stopped and started again. While stopped, the
/// port stays bound without listening: it refuses, and no other test can take it.
struct Service {
    port: u16,
    stop: Option<Arc<Mutex<bool>>>,
    reserved: Option<socket2::Socket>,
}

fn reserve(port: u16) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    s.bind(&addr.into()).unwrap();
    s
}

impl Service {
    fn start_on(port: u16) -> Self {
        Self::start_in_place(port, None)
    }

    /// Starts again on the port this (stopped) service keeps reserved.
    fn restart(&mut self) {
        let reserved = self.reserved.take();
        *self = Self::start_in_place(self.port, reserved);
    }

    fn start_in_place(port: u16, reserved: Option<socket2::Socket>) -> Self {
        let listener = match reserved {
            Some(socket) => {
                socket.listen(128).unwrap();
                TcpListener::from(socket)
            }
            None => TcpListener::bind(("127.0.0.1", port)).expect("bind service port"),
        };
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(Mutex::new(false));
        let flag = stop.clone();
        thread::spawn(move || loop {
            if *flag.lock().unwrap() {
                return; // drops the listener: the port refuses from now on
            }
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(b"220 ready\r\n");
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        });
        Self {
            port,
            stop: Some(stop),
            reserved: None,
        }
    }

    fn stop(&mut self) {
        let Some(flag) = self.stop.take() else { return };
        *flag.lock().unwrap() = true;
        // Wait until the port refuses, then keep it bound (SO_REUSEADDR lets us rebind
        // while old connections linger).
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.reserved = Some(reserve(self.port));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

fn write_config(dir: &Path, api: SocketAddr, monitors: &str) -> PathBuf {
    common::write_config(
        dir,
        api,
        "",
        &format!(
            "[defaults]
{FAST_DEFAULTS}
{monitors}"
        ),
    )
}

fn monitor_toml(name: &str, port: u16) -> String {
    format!("[[monitor]]\nname = \"{name}\"\ntarget = \"127.0.0.1:{port}\"\nexpect = {{ prefix = \"220\" }}\n\n")
}

#[test]
fn a_stopped_listener_goes_down_and_comes_back_up() {
    let dir = temp_dir("updown");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut service = Service::start_on(free_port());
    let port = service.port;
    let config = write_config(&dir, api, &monitor_toml("web", port));
    let d = Daemon::start(&config, api);
    d.wait_for("web ok", 15, |d| d.status("web") == "ok");

    service.stop();
    d.wait_for("web down", 15, |d| d.status("web") == "down");
    let m = d.monitor("web");
    assert_eq!(m["last_check"]["reason"], "refused", "{m}");
    // fail_after = 2: at least two failed checks before down.
    assert!(m["failures"].as_u64().unwrap() >= 2, "{m}");

    service.restart();
    assert_eq!(service.port, port);
    d.wait_for("web up again", 15, |d| d.status("web") == "ok");
    d.wait_for("the incident in the history", 15, |d| {
        !d.monitor("web")["history"]["incidents"][0]["end"].is_null()
    });
    let m = d.monitor("web");
    let incident = &m["history"]["incidents"][0];
    assert_eq!(incident["reason"], "refused", "{m}");
    assert!(!incident["end"].is_null(), "the incident is closed: {m}");
    assert!(
        m["history"]["results"].as_array().unwrap().len() >= 3,
        "{m}"
    );
    let d1 = m["history"]["uptime"]["d1"].as_f64().unwrap();
    assert!(d1 > 0.0 && d1 < 1.0, "an outage shows in the uptime: {m}");
    let list = d.get("/api/v1/monitors?state=ok").unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(d
        .get("/api/v1/monitors?state=down")
        .unwrap()
        .as_array()
        .unwrap()
        .is_empty());
    let log = d.log();
    assert!(log.contains("web is DOWN"), "{log}");
    assert!(log.contains("web is up again after"), "{log}");

    let stats = d.get("/api/v1/store").unwrap();
    assert!(stats["db_bytes"].as_u64().unwrap() > 0, "{stats}");
    let (code, _, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert!(dir.join("state/portwarden.db").exists());
}

#[test]
fn reload_applies_a_good_config_and_keeps_the_old_one_on_a_bad_one() {
    let dir = temp_dir("reload");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a = Service::start_on(free_port());
    let b = Service::start_on(free_port());
    let config = write_config(&dir, api, &monitor_toml("a", a.port));
    let d = Daemon::start(&config, api);
    d.wait_for("a ok", 15, |d| d.status("a") == "ok");
    let checks_before = d.monitor("a")["checks"].as_u64().unwrap();

    write_config(
        &dir,
        api,
        &(monitor_toml("a", a.port) + &monitor_toml("b", b.port)),
    );
    d.signal("-HUP");
    d.wait_for("b added", 15, |d| d.status("b") == "ok");
    // a is unchanged: its state and counters survive the reload.
    assert!(d.monitor("a")["checks"].as_u64().unwrap() >= checks_before);
    assert!(
        d.log()
            .contains("config reloaded: 2 monitors (1 added, 0 removed, 0 changed)"),
        "{}",
        d.log()
    );

    std::fs::write(
        &config,
        "[[monitor]]\nname = \"broken\"\ntarget = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    d.signal("-HUP");
    d.wait_for("the rejection in the log", 15, |d| {
        d.log().contains("new config rejected")
    });
    assert!(d.log().contains("port must be 1-65535"), "{}", d.log());
    assert_eq!(d.status("a"), "ok");
    assert_eq!(d.status("b"), "ok");
    assert_eq!(
        d.get("/api/v1/monitors").unwrap().as_array().unwrap().len(),
        2
    );
    let (code, _, _) = d.terminate();
    assert_eq!(code, Some(0));
}

/// Issue 14: a SIGHUP while the config path had become a symlink to /dev/zero grew the daemon
/// to gigabytes, and SIGTERM was no longer obeyed.
#[test]
fn reload_of_a_config_turned_into_dev_zero_keeps_the_old_one_and_sigterm_still_stops() {
    let dir = temp_dir("reload-dev-zero");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a = Service::start_on(free_port());
    let config = write_config(&dir, api, &monitor_toml("a", a.port));
    let d = Daemon::start(&config, api);
    d.wait_for("a ok", 15, |d| d.status("a") == "ok");

    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    d.signal("-HUP");
    d.wait_for("the rejection in the log", 10, |d| {
        d.log().contains("new config rejected")
    });
    assert!(
        d.log()
            .contains("is a character device, not a regular file"),
        "{}",
        d.log()
    );
    assert_eq!(d.status("a"), "ok");
    let (code, took, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn sigterm_mid_check_stops_within_the_grace_and_history_survives_a_restart() {
    let dir = temp_dir("restart");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let service = Service::start_on(free_port());
    // A tarpit: accepts, never answers; its check is always in flight.
    let pit = TcpListener::bind("127.0.0.1:0").unwrap();
    let pit_port = pit.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    thread::spawn(move || {
        for s in pit.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    let monitors = monitor_toml("web", service.port)
        + &format!("[[monitor]]\nname = \"pit\"\ntarget = \"127.0.0.1:{pit_port}\"\nexpect = \"x\"\ninterval = \"3s\"\ntimeout = \"2s\"\n\n");
    let config = write_config(&dir, api, &monitors);
    let d = Daemon::start(&config, api);
    d.wait_for("web checked a few times", 15, |d| {
        d.monitor("web")["checks"].as_u64().unwrap_or(0) >= 5
    });
    d.wait_for("the tarpit check in flight", 15, |_| {
        !held.lock().unwrap().is_empty()
    });
    let (code, took, log) = d.terminate();
    assert_eq!(code, Some(0), "{log}");
    assert!(took < Duration::from_secs(12), "took {took:?}");
    assert!(log.contains("stopped"), "{log}");

    let d = Daemon::start(&config, api);
    // The history of the previous run is there once the store has opened.
    d.wait_for("the store to open", 15, |d| {
        d.get("/healthz")
            .is_some_and(|h| h["store"]["state"] == "ok")
    });
    let recent = d.monitor("web")["history"]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        recent.len() >= 5,
        "history lost across the restart: {recent:?}"
    );
    let (code, _, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn status_command_prints_the_daemons_monitors() {
    let dir = temp_dir("status");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let service = Service::start_on(free_port());
    let config = write_config(
        &dir,
        api,
        &(monitor_toml("web", service.port) + &monitor_toml("gone", free_port())),
    );
    let d = Daemon::start(&config, api);
    d.wait_for("gone down", 15, |d| d.status("gone") == "down");
    let out = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["status", "--listen", &api.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a monitor is down: {text}");
    assert!(text.starts_with("MONITOR"), "{text}");
    assert!(text.contains("DOWN") && text.contains("gone"), "{text}");
    assert!(text.contains("2 monitor(s), 1 down"), "{text}");
    assert!(!text.contains('\x1b'), "no colours off a terminal");
    let json = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["status", "--listen", &api.to_string(), "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    drop(d);
    let unreachable = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["status", "--listen", &api.to_string()])
        .output()
        .unwrap();
    assert_eq!(
        unreachable.status.code(),
        Some(3),
        "unreachable is not 'down'"
    );
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot reach the daemon"));
}

#[test]
fn a_bad_config_at_start_is_a_clear_error() {
    let dir = temp_dir("badstart");
    let path = dir.join("bad.toml");
    std::fs::write(
        &path,
        "[[monitor]]\nname = \"x\"\ntarget = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["run", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:") && err.contains("port must be 1-65535"),
        "{err}"
    );
}

#[test]
fn zero_config_watches_the_listeners_it_finds() {
    // In a network namespace of its own, so only the listener below is found.
    let ns = format!("pw-e2e-zero-{}", std::process::id());
    if !Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to create network namespaces"
        );
        return;
    }
    struct Cleanup(String, Vec<Child>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            for c in &mut self.1 {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let mut cleanup = Cleanup(ns.clone(), Vec::new());
    let exec = |program: &str| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns, program]);
        c
    };
    assert!(exec("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
    let dir = temp_dir("zero");
    let holder = dir.join("pw-zero-svc");
    std::os::unix::fs::symlink("/usr/bin/python3", &holder).unwrap();
    let mut svc = exec(holder.to_str().unwrap())
        .args(["-c", "import socket,time\ns=socket.socket();s.bind(('127.0.0.1',7777));s.listen()\nprint('ready',flush=True)\nwhile True:\n  c,_=s.accept();c.close()\n"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(svc.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    cleanup.1.push(svc);

    // The daemon and its API live inside the namespace; `status` is run there too.
    let state = dir.join("state");
    let mut daemon = exec(env!("CARGO_BIN_EXE_portwarden"))
        .args([
            "run",
            "--state-dir",
            state.to_str().unwrap(),
            "--listen",
            "127.0.0.1:9898",
        ])
        .env("PORTWARDEN_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = daemon.stderr.take().unwrap();
    cleanup.1.push(daemon);
    // Keep reading: the daemon logs on, and its stderr must not be left without a reader.
    let collected = Arc::new(Mutex::new(String::new()));
    let sink = collected.clone();
    thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&l);
            all.push('\n');
        }
    });
    // The embedded default guards the firewall too: this namespace has none, so it alerts
    // (and, with no baseline saved, changes nothing).
    let deadline = Instant::now() + Duration::from_secs(15);
    let log = loop {
        let log = collected.lock().unwrap().clone();
        if log.contains("API on") && log.contains("firewall_violation") {
            break log;
        }
        assert!(Instant::now() < deadline, "daemon log:\n{log}");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        log.contains("the nftables firewall is switched off")
            && log.contains("not repairing: on_violation is \"alert\""),
        "{log}"
    );
    assert!(log.contains("running the built-in default"), "{log}");
    assert!(log.contains("watching the 1 TCP listeners"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let monitors = loop {
        let out = exec(env!("CARGO_BIN_EXE_portwarden"))
            .args(["status", "--listen", "127.0.0.1:9898", "--json"])
            .output()
            .unwrap();
        // Its first check comes at its slot within the 30 s interval; being watched is enough.
        if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
            if v.as_array().is_some_and(|a| !a.is_empty()) {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "zero-config monitors never listed"
        );
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(monitors.as_array().unwrap().len(), 1, "{monitors}");
    assert_eq!(monitors[0]["name"], "pw-zero-svc@127.0.0.1:7777");
    assert_eq!(monitors[0]["origin"], "discovered");
    assert_eq!(monitors[0]["target"], "127.0.0.1:7777");
    assert!(
        ["unknown", "ok"].contains(&monitors[0]["status"].as_str().unwrap()),
        "{monitors}"
    );
}

#[test]
fn an_unwritable_store_never_stops_monitoring() {
    let dir = temp_dir("nostore");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let service = Service::start_on(free_port());
    let config = write_config(&dir, api, &monitor_toml("web", service.port));
    // A file where the state directory should be: the database can never open.
    std::fs::write(dir.join("state"), "not a directory").unwrap();
    let d = Daemon::start(&config, api);
    d.wait_for("web ok", 15, |d| d.status("web") == "ok");
    d.wait_for("the store reported failed", 15, |d| {
        d.get("/healthz")
            .is_some_and(|h| h["store"]["state"] == "failed" && h["status"] == "degraded")
    });
    let checks = d.monitor("web")["checks"].as_u64().unwrap();
    d.wait_for("checks going on", 15, |d| {
        d.monitor("web")["checks"].as_u64().unwrap() > checks + 2
    });
    let m = d.monitor("web");
    assert!(
        m["history"].is_null() && m["history_error"].is_string(),
        "{m}"
    );
    let (code, _, _) = d.terminate();
    assert_eq!(code, Some(0));
}

#[test]
fn tells_systemd_when_it_is_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = temp_dir("notify");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let service = Service::start_on(free_port());
    let config = write_config(&dir, api, &monitor_toml("web", service.port));
    // What systemd listens on for Type=notify services.
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut command = Daemon::command(&config);
    command.env("NOTIFY_SOCKET", &socket_path);
    let d = Daemon::spawn(command, api);
    let mut buf = [0u8; 256];
    let mut next = || {
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
    };
    assert_eq!(next(), "READY=1");
    d.signal("-HUP");
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    let (code, _, _) = d.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(next(), "STOPPING=1");
}

#[test]
fn keeps_running_when_nobody_reads_its_log_any_more() {
    let dir = temp_dir("nolog");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let service = Service::start_on(free_port());
    let config = write_config(&dir, api, &monitor_toml("web", service.port));
    let mut child = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env("PORTWARDEN_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone (dropped above): every log line from now on hits a broken pipe.
    // Wait for the API, so the reload below happens in a running daemon.
    let up = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(api).is_err() {
        assert!(Instant::now() < up, "the API never answered");
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(200));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon died without its log reader"
    );
    assert!(TcpStream::connect(api).is_ok(), "the API still answers");
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop");
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// Issue 14: under `ulimit -n 256` with 1,000 monitors, healthy targets went DOWN ("Too many
/// open files") and would have been notified and healed. Here 100 monitors of a healthy but
/// slow service (each check holds its socket 300 ms) run under a descriptor limit far below
/// what they need: checks that find no descriptor end unknown on portwarden's side, no monitor
/// goes down, and the daemon says why (log, `/healthz`, `/metrics`).
#[test]
fn a_starved_prober_never_takes_healthy_monitors_down() {
    // Enough for the daemon itself (about 20), far too few for 100 checks of 300 ms a second.
    let limit: u32 = 48;
    let dir = temp_dir("starved");
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(300));
                let _ = conn.write_all(b"220 ready\r\n");
                thread::sleep(Duration::from_millis(100));
            });
        }
    });
    let monitors: String = (0..100)
        .map(|i| monitor_toml(&format!("m{i}"), port))
        .collect();
    let config = common::write_config(
        &dir,
        api,
        "",
        &format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\nfail_after = 2\n\
             recover_after = 1\n\n{monitors}"
        ),
    );
    // `ulimit -n` lowers the hard limit too: the daemon cannot raise itself out of it.
    let mut command = Command::new("/bin/sh");
    command
        .args([
            "-c",
            &format!("ulimit -n {limit} && exec \"$0\" run -c \"$1\""),
            env!("CARGO_BIN_EXE_portwarden"),
            config.to_str().unwrap(),
        ])
        .env("PORTWARDEN_LOG", "info");
    let d = Daemon::spawn(command, api);
    let metrics = |d: &Daemon| -> String {
        let Ok(mut s) = TcpStream::connect_timeout(&d.api, Duration::from_secs(1)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut raw = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut raw);
        raw
    };
    let local_errors = |d: &Daemon| -> u64 {
        metrics(d)
            .lines()
            .find_map(|l| l.strip_prefix("portwarden_local_resource_errors_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    // Five seconds of checks: five rounds of every monitor, far more than fail_after needs.
    let until = Instant::now() + Duration::from_secs(5);
    let mut seen_ok = 0;
    while Instant::now() < until {
        if let Some(list) = d.get("/api/v1/monitors") {
            for m in list.as_array().into_iter().flatten() {
                assert_ne!(m["status"], "down", "{m}\ndaemon log:\n{}", d.log());
                seen_ok += usize::from(m["status"] == "ok");
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert!(seen_ok > 0, "no monitor ever ok; daemon log:\n{}", d.log());
    // The API itself may find no descriptor for a moment: asked until it answers.
    d.wait_for("local resource errors counted", 10, |d| local_errors(d) > 0);
    // Nor does `portwarden_monitor_up` call a healthy target down (an alert would fire).
    let answer = std::cell::RefCell::new(String::new());
    d.wait_for("/metrics", 10, |d| {
        *answer.borrow_mut() = metrics(d);
        answer.borrow().contains("portwarden_monitor_up{")
    });
    let text = answer.into_inner();
    let down = text
        .lines()
        .filter(|l| l.starts_with("portwarden_monitor_up{") && l.ends_with(" 0"))
        .count();
    assert_eq!(down, 0, "{text}");
    let answer = std::cell::RefCell::new(Value::Null);
    d.wait_for("/healthz", 10, |d| {
        *answer.borrow_mut() = d.get("/healthz").unwrap_or_default();
        !answer.borrow().is_null()
    });
    let health = answer.into_inner();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["open_files"]["state"], "too_low", "{health}");
    assert_eq!(health["open_files"]["limit"], u64::from(limit), "{health}");
    assert_eq!(health["open_files"]["needed"], 164, "{health}");
    let log = d.log();
    assert!(log.contains("open-file limit"), "{log}");
    assert!(!log.contains("is DOWN"), "{log}");
    let (code, _, _) = d.terminate();
    assert_eq!(code, Some(0));
}
