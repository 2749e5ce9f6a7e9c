//! A running `portwarden run` for end-to-end tests: its log kept, its API read, killed (by its
//! own handle) on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Fast checks for tests: a monitor is DOWN after two failures within half a second.
pub const FAST_DEFAULTS: &str =
    "interval = \"200ms\"\ntimeout = \"150ms\"\nfail_after = 2\nrecover_after = 1\n";

/// A loopback address for a daemon's API.
pub fn api_addr() -> SocketAddr {
    format!("127.0.0.1:{}", super::free_port()).parse().unwrap()
}

/// Writes `dir/portwarden.toml`: the API on `api`, the state under `dir`, `daemon_extra` in
/// `[daemon]`, the machine's firewall left alone (these daemons run in its own namespace),
/// then `rest` (`[defaults]`, monitors, notifiers).
pub fn write_config(dir: &Path, api: SocketAddr, daemon_extra: &str, rest: &str) -> PathBuf {
    let path = dir.join("portwarden.toml");
    let text = format!(
        "[daemon]\nlisten = \"{api}\"\nstate_dir = \"{}\"\n{daemon_extra}\n\n\
         # Hands off the machine's firewall.\n[firewall]\nguard = false\n\n{rest}",
        dir.join("state").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Daemon {
    child: Child,
    pub api: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// `portwarden run -c CONFIG`, logging at info.
    pub fn command(config: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_portwarden"));
        c.arg("run")
            .arg("-c")
            .arg(config)
            .env("PORTWARDEN_LOG", "info");
        c
    }

    pub fn start(config: &Path, api: SocketAddr) -> Self {
        Self::spawn(Self::command(config), api)
    }

    /// Runs `command` (a `portwarden run`), keeps its stderr, waits for its API.
    pub fn spawn(mut command: Command, api: SocketAddr) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start portwarden run");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let d = Self { child, api, log };
        d.wait_for("the API to answer", 30, |d| d.get("/healthz").is_some());
        d
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GET returning JSON, or None if the daemon does not answer.
    pub fn get(&self, path: &str) -> Option<Value> {
        let mut s = TcpStream::connect_timeout(&self.api, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        serde_json::from_str(raw.split_once("\r\n\r\n")?.1).ok()
    }

    /// `GET /api/v1/monitors/NAME`, or Null.
    pub fn monitor(&self, name: &str) -> Value {
        self.get(&format!("/api/v1/monitors/{name}"))
            .unwrap_or(Value::Null)
    }

    /// The monitor's status, or "" while the daemon does not answer.
    pub fn status(&self, monitor: &str) -> String {
        self.monitor(monitor)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls `ready` for at most `secs` seconds; panics with the daemon's log on timeout.
    pub fn wait_for(&self, what: &str, secs: u64, ready: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if ready(self) {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; daemon log:\n{}", self.log());
    }

    /// `kill SIG PID` (`"-HUP"`, `"-TERM"`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// SIGKILL, and the exit reaped.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits (bounded) for the exit code.
    pub fn terminate(mut self) -> (Option<i32>, Duration, String) {
        let started = Instant::now();
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                thread::sleep(Duration::from_millis(50));
                return (status.code(), started.elapsed(), self.log());
            }
            assert!(
                Instant::now() < deadline,
                "did not stop; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
