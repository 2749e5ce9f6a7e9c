//! The daemon end to end: the real binary, real listeners on loopback, its API and its
//! database. A listener stops → the monitor goes down after `fail_after` checks → it starts
//! again → up; reloads (good and bad), SIGTERM mid-check, restart with history kept, and the
//! zero-config default in a network namespace of its own.

use crate::support;

use crate::support::{api_addr, free_port, temp_dir, Daemon, Killed, FAST_DEFAULTS};

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
    support::write_config(
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
    let api = api_addr();
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
    let api = api_addr();
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
    let api = api_addr();
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
    let api = api_addr();
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
    let api = api_addr();
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
    assert_eq!(support::first_line(&mut svc).trim(), "ready");
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
    // The embedded default guards the firewall too: this namespace has no rules, which it
    // says once at WARN (issue 15), not as a violation.
    let deadline = Instant::now() + Duration::from_secs(15);
    let log = loop {
        let log = collected.lock().unwrap().clone();
        if log.contains("API on") && log.contains(ABSENT) {
            break log;
        }
        assert!(Instant::now() < deadline, "daemon log:\n{log}");
        thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !log.contains("firewall_violation") && !log.contains("ERROR"),
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
    let api = api_addr();
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
    let api = api_addr();
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
    let api = api_addr();
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
    let api = api_addr();
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
    let config = support::write_config(
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

/// What the zero-config guard says, once, on a host with no firewall rules.
const ABSENT: &str = "no firewall rules are loaded on this host; portwarden will alert if rules \
                      are loaded and later switched off or flushed — to guard a firewall, see \
                      docs/firewall.md";

/// `portwarden run` with no config inside `ns` (API on 127.0.0.1:9898 there), started through
/// `wrapper` (e.g. `setpriv …`, or nothing); its log, read on.
fn start_zero_config(ns: &mut support::Netns, wrapper: &[&str]) -> Arc<Mutex<String>> {
    let state = ns.dir.join("state");
    let bin = env!("CARGO_BIN_EXE_portwarden");
    let mut command = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = ns.cmd(first);
            c.args(rest).arg(bin);
            c
        }
        None => ns.cmd(bin),
    };
    let mut daemon = command
        .args(["run", "--state-dir", state.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:9898"])
        .env("PORTWARDEN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = daemon.stderr.take().unwrap();
    ns.adopt(daemon);
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut all = sink.lock().unwrap();
            all.push_str(&l);
            all.push('\n');
        }
    });
    log
}

/// GET `path` from the daemon inside `ns`, as JSON (Null while it does not answer).
fn ns_get(ns: &support::Netns, path: &str) -> Value {
    let out = ns
        .cmd("curl")
        .args(["-s", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:9898{path}"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Polls `done` for at most `secs` seconds; panics with the log on timeout.
fn wait_logged(log: &Mutex<String>, what: &str, secs: u64, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = log.lock().unwrap().clone();
        if done(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; daemon log:\n{text}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// How deep brackets nest in `line` (1: none inside another).
fn bracket_depth(line: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in line.chars() {
        match c {
            '(' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Issue 15: a host with no firewall rules is "absent", said once at WARN, not an ERROR;
/// rules loaded later are guarded (ok), and flushing them is a violation, alerted.
#[test]
fn zero_config_without_rules_says_so_once_then_guards_rules_loaded_later() {
    let Some(mut ns) = support::Netns::new("fw-absent") else {
        return;
    };
    let log = start_zero_config(&mut ns, &[]);
    let state = |ns: &support::Netns| ns_get(ns, "/api/v1/firewall")["state"].clone();
    support::wait_until("the guard's state absent", 20, || state(&ns) == "absent");
    wait_logged(&log, "the change watcher", 10, |l| {
        l.contains("watching nftables changes")
    });
    let text = log.lock().unwrap().clone();
    let said: Vec<&str> = text.lines().filter(|l| l.contains(ABSENT)).collect();
    assert_eq!(said.len(), 1, "{text}");
    assert!(said[0].contains(" WARN "), "{text}");
    assert!(
        !text.contains("ERROR") && !text.contains("firewall_violation"),
        "{text}"
    );
    let guard_line = text
        .lines()
        .find(|l| l.contains("firewall guard: nftables"))
        .unwrap();
    assert!(
        bracket_depth(guard_line) <= 1,
        "nested brackets: {guard_line}"
    );
    // Said once: the guard's line leaves "no rules are loaded" to the warning.
    assert!(!text.contains("no rules are loaded"), "{text}");
    let fw = ns_get(&ns, "/api/v1/firewall");
    assert!(fw["violations"].as_array().unwrap().is_empty(), "{fw}");

    // Rules arrive (an input hook that accepts: the API stays reachable): guarded.
    ns.sh("nft 'add table inet pwtest; \
         add chain inet pwtest input { type filter hook input priority 0; policy accept; }; \
         add rule inet pwtest input tcp dport 22 accept'");
    support::wait_until("the guard's state ok", 10, || state(&ns) == "ok");
    wait_logged(&log, "rules loaded", 5, |l| {
        l.contains("firewall rules are loaded now")
    });

    // Flushed: now that is a violation, alerted (zero-config's on_violation is "alert").
    ns.sh("nft flush ruleset");
    support::wait_until("the guard's state violated", 10, || {
        state(&ns) == "violated"
    });
    wait_logged(&log, "the violation", 5, |l| {
        l.contains("firewall_violation")
    });
    let text = log.lock().unwrap().clone();
    assert!(
        text.contains("the nftables firewall is switched off")
            && text.contains("not repairing: on_violation is \"alert\""),
        "{text}"
    );
    assert_eq!(text.matches(ABSENT).count(), 1, "{text}");
}

/// Issue 15: a DOWN's log line gives its reason as a word, not Rust's debug text.
#[test]
fn a_down_is_logged_in_words() {
    let dir = temp_dir("down-words");
    let api = api_addr();
    // Nothing listens there: refused.
    let config = write_config(&dir, api, &monitor_toml("closed", free_port()));
    let d = Daemon::start(&config, api);
    d.wait_for("the DOWN logged", 15, |d| {
        d.log().contains("closed is DOWN")
    });
    let log = d.log();
    let line = log.lines().find(|l| l.contains("closed is DOWN")).unwrap();
    assert!(line.contains("reason=refused"), "{line}");
    for debug in ["Some(", "None", "Refused", "ConnectionRefused", "Critical"] {
        assert!(!line.contains(debug), "{debug} in {line}");
    }
    // No CamelCase word (a Rust enum variant) in the fields after the message.
    let camel = line.split_whitespace().any(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        w.chars().next().is_some_and(char::is_uppercase)
            && w.chars().skip(1).any(char::is_uppercase)
            && w.chars().any(char::is_lowercase)
    });
    assert!(!camel, "{line}");
}

/// Issue 15: a start-up failure is printed once (it was a log line and the same on stderr).
#[test]
fn a_start_up_failure_is_printed_once() {
    let count = |out: &std::process::Output, what: &str| {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (all.matches(what).count(), all)
    };
    let out = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["run", "-c", "/nonexistent/pw-issue15.toml"])
        .env("PORTWARDEN_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (n, all) = count(&out, "pw-issue15.toml: cannot read");
    assert_eq!(n, 1, "{all}");

    // The API's port already taken.
    let dir = temp_dir("port-taken");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = write_config(&dir, taken.local_addr().unwrap(), "");
    let out = Daemon::command(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (n, all) = count(&out, "cannot listen on");
    assert_eq!(n, 1, "{all}");
}

/// A Python listener on `addr` started inside `ns` through `argv` (its program first), once it
/// listens.
fn python_listener(ns: &support::Netns, argv: &[&str], host: &str, port: u16) -> Killed {
    let script = format!(
        "import socket\ns=socket.socket()\ns.bind(('{host}',{port}))\ns.listen()\n\
         print('ready',flush=True)\nwhile True:\n  c,_=s.accept();c.close()\n"
    );
    let mut child = ns
        .cmd(argv[0])
        .args(&argv[1..])
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let line = support::first_line(&mut child);
    assert_eq!(line.trim(), "ready");
    Killed(child)
}

/// The monitor of that name in `GET /api/v1/monitors`, or Null.
fn ns_monitor(ns: &support::Netns, name: &str) -> Value {
    ns_get(ns, "/api/v1/monitors")
        .as_array()
        .and_then(|all| all.iter().find(|m| m["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Issue 15: zero-config watches a listener opened after it started (connect and owner
/// check, named as at start), logs it with its owner, and says when it goes away.
#[test]
fn zero_config_watches_a_listener_opened_later_with_its_owner() {
    let Some(mut ns) = support::Netns::new("late") else {
        return;
    };
    let log = start_zero_config(&mut ns, &[]);
    support::wait_until("the API", 20, || !ns_get(&ns, "/healthz").is_null());
    assert_eq!(ns_get(&ns, "/api/v1/monitors"), serde_json::json!([]));
    let holder = ns.dir.join("pw-late-svc");
    std::os::unix::fs::symlink("/usr/bin/python3", &holder).unwrap();
    let svc = python_listener(&ns, &[holder.to_str().unwrap()], "127.0.0.1", 7001);
    let name = "pw-late-svc@127.0.0.1:7001";
    // The watcher lists every 15 s.
    support::wait_until("the new listener watched", 40, || {
        !ns_monitor(&ns, name).is_null()
    });
    let m = ns_monitor(&ns, name);
    assert_eq!(m["origin"], "discovered", "{m}");
    assert_eq!(m["target"], "127.0.0.1:7001", "{m}");
    assert!(
        m["owner"].as_str().is_some_and(|o| o.contains("python3")),
        "{m}"
    );
    assert!(m["owner_unknown"].is_null(), "{m}");
    let text = log.lock().unwrap().clone();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("watching new listener {name}")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(" INFO ") && line.contains("python3"),
        "{line}"
    );
    assert!(!text.contains("not watched"), "{text}");

    drop(svc);
    wait_logged(&log, "the listener gone", 40, |l| {
        l.contains(&format!("went away: its monitor {name}"))
    });
    assert!(!ns_monitor(&ns, name).is_null(), "it stays watched");
}

/// Issue 15: a listener whose holder portwarden cannot see (another user's process, the
/// daemon not root) is named by port and address, not `unknown@…`, and says why.
#[test]
fn a_listener_with_a_hidden_owner_is_named_by_its_port_and_says_why() {
    let Some(mut ns) = support::Netns::new("hidden") else {
        return;
    };
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let svc = python_listener(
        &ns,
        &[
            nobody[0],
            nobody[1],
            nobody[2],
            nobody[3],
            "/usr/bin/python3",
        ],
        "0.0.0.0",
        2024,
    );
    // The daemon as another user, not root: it cannot read nobody's processes.
    let state = ns.dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(4242), Some(4242)).unwrap();
    let as_user = [
        "setpriv",
        "--reuid=4242",
        "--regid=4242",
        "--clear-groups",
        "--",
    ];
    let log = start_zero_config(&mut ns, &as_user);
    let name = "port-2024@0.0.0.0";
    support::wait_until("the hidden listener listed", 20, || {
        !ns_monitor(&ns, name).is_null()
    });
    let m = ns_monitor(&ns, name);
    assert_eq!(m["target"], "127.0.0.1:2024", "{m}");
    assert!(m["owner"].is_null(), "{m}");
    let why = m["owner_unknown"].as_str().unwrap_or_else(|| panic!("{m}"));
    assert!(
        why.contains("uid 65534") && why.contains("not root"),
        "{why}"
    );
    wait_logged(&log, "the reason logged", 5, |l| {
        l.contains(&format!("watching {name} without an owner check: {why}"))
    });
    let text = log.lock().unwrap().clone();
    assert!(!text.contains("unknown@"), "{text}");
    drop(svc);
}

/// Issue 15: with a config file a new listener is not watched, and the log says why and how.
#[test]
fn with_a_config_a_new_listener_is_logged_with_how_to_watch_it() {
    let dir = temp_dir("config-new-listener");
    let api = api_addr();
    let d = Daemon::start(&write_config(&dir, api, ""), api);
    let late = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = late.local_addr().unwrap();
    // The watcher lists every 15 s.
    d.wait_for("the new listener logged", 40, |d| {
        d.log().contains(&format!("new listener tcp {addr}"))
    });
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("new listener tcp {addr}")))
        .unwrap();
    assert!(
        line.contains(" WARN ")
            && line.contains("not watched")
            && line.contains(&format!("add a [[monitor]] with target = \"{addr}\"")),
        "{line}"
    );
    assert_eq!(d.get("/api/v1/monitors").unwrap(), serde_json::json!([]));
    drop(late);
}
