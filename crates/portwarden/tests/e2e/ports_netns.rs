//! `portwarden ports` and the owner check against real listener processes, each test in a
//! network namespace of its own (`ip netns`) so the machine's listeners never interfere.
//!
//! Listeners are Debian's python3 started through a symlink with a distinctive name (the
//! kernel's `comm` is the name exec'd), so owners are told apart by name.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";

/// A network namespace with loopback up; deleted, with every process started in it, on drop.
struct Netns {
    name: String,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Netns {
    /// `None` (test skipped) only outside CI when this machine cannot make namespaces.
    fn new() -> Option<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("pw-ports-{}-{n}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to run `ip netns add` (root)"
            );
            eprintln!("skipping: cannot create a network namespace (needs root and iproute2)");
            return None;
        }
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ns = Self {
            name,
            dir,
            children: Vec::new(),
        };
        let up = ns
            .command("ip", &["link", "set", "lo", "up"])
            .status()
            .expect("ip link");
        assert!(up.success());
        Some(ns)
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]).args(args);
        c
    }

    /// The `portwarden` binary run inside the namespace.
    fn portwarden(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_portwarden"), args)
            .output()
            .expect("run portwarden")
    }

    /// A python3 named `name` that binds `addr`:`port` (`family` 4 or 6), forks `forks`
    /// extra holders of the socket, says "ready" and sleeps at most 60 s. Returns its pid.
    fn listener(
        &mut self,
        name: &str,
        family: u8,
        addr: &str,
        port: u16,
        forks: u8,
    ) -> Result<u32, String> {
        let exe = self.dir.join(name);
        if !exe.exists() {
            std::os::unix::fs::symlink(PYTHON, &exe).expect("symlink python");
        }
        let af = if family == 6 { "AF_INET6" } else { "AF_INET" };
        let script = format!(
            "import os, socket, sys, time\n\
             s = socket.socket(socket.{af}, socket.SOCK_STREAM)\n\
             try:\n    s.bind(('{addr}', {port}))\n    s.listen(16)\n\
             except OSError as e:\n    print('error', e, flush=True)\n    sys.exit(3)\n\
             for _ in range({forks}):\n    if os.fork() == 0:\n        break\n\
             print('ready', os.getpid(), flush=True)\n\
             time.sleep(60)\n"
        );
        let mut child = self
            .command(exe.to_str().expect("utf-8"), &["-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn listener");
        let stdout = child.stdout.take().expect("stdout");
        let pid = child.id();
        self.children.push(child);
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        if first.starts_with("ready") {
            // Let the forked holders start too; each prints its own ready line.
            for _ in 0..forks {
                let _ = lines.next();
            }
            Ok(pid)
        } else {
            Err(first)
        }
    }

    /// Ends one listener (and the holders it forked) by PID.
    fn stop(&mut self, pid: u32) {
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &pid.to_string()])
            .status();
        if let Some(i) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.children.iter().map(Child::id).collect::<Vec<_>>() {
            self.stop(pid);
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// The command's stdout.
fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn owner_names(listener: &Value) -> Vec<String> {
    listener["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .map(|o| o["name"].as_str().expect("name").to_string())
        .collect()
}

fn find<'a>(listing: &'a Value, local: &str) -> &'a Value {
    listing["listeners"]
        .as_array()
        .expect("listeners")
        .iter()
        .find(|l| l["local"] == local)
        .unwrap_or_else(|| panic!("{local} not listed in {listing}"))
}

#[test]
fn lists_each_listener_with_its_owner_on_every_address_kind() {
    let Some(mut ns) = Netns::new() else { return };
    let web = ns.listener("pw-web", 4, "0.0.0.0", 8080, 0).unwrap();
    let web6 = ns.listener("pw-web6", 6, "::", 8081, 0).unwrap();
    let local = ns.listener("pw-local", 4, "127.0.0.2", 8082, 0).unwrap();
    let listing = json(&ns.portwarden(&["ports", "--json"]));
    assert_eq!(
        listing["listeners"].as_array().unwrap().len(),
        3,
        "{listing}"
    );
    for (addr, name, pid) in [
        ("0.0.0.0:8080", "pw-web", web),
        ("[::]:8081", "pw-web6", web6),
        ("127.0.0.2:8082", "pw-local", local),
    ] {
        let l = find(&listing, addr);
        assert_eq!(owner_names(l), vec![name]);
        assert_eq!(l["owners"][0]["pid"], pid);
        assert_eq!(l["owners"][0]["user"], "root");
        assert!(l["owners"][0]["exe"]
            .as_str()
            .unwrap()
            .starts_with("/usr/bin/python3"));
    }
    let table = stdout(&ns.portwarden(&["ports"]));
    assert!(table.starts_with("PROTO  PORT"), "{table}");
    assert!(table.contains(&format!("pw-web ({web})")), "{table}");
    assert!(table.contains("[::]"), "{table}");
    assert!(table.contains("3 listening socket(s) on 3 port(s), in this network namespace only."));
    assert!(
        !table.contains("\x1b["),
        "no colours when not on a terminal"
    );
}

#[test]
fn filters_by_port_process_and_unit() {
    let Some(mut ns) = Netns::new() else { return };
    ns.listener("pw-alpha", 4, "127.0.0.1", 7001, 0).unwrap();
    ns.listener("pw-beta", 4, "127.0.0.1", 7002, 0).unwrap();
    let by_port = json(&ns.portwarden(&["ports", "--json", "--port", "7002"]));
    assert_eq!(owner_names(&by_port["listeners"][0]), vec!["pw-beta"]);
    assert_eq!(by_port["listeners"].as_array().unwrap().len(), 1);
    let by_process = json(&ns.portwarden(&["ports", "--json", "--process", "pw-alpha"]));
    assert_eq!(by_process["listeners"].as_array().unwrap().len(), 1);
    assert_eq!(by_process["listeners"][0]["local"], "127.0.0.1:7001");
    let by_unit = json(&ns.portwarden(&["ports", "--json", "--unit", "no-such"]));
    assert_eq!(by_unit["listeners"].as_array().unwrap().len(), 0);
}

#[test]
fn a_socket_shared_by_forked_processes_lists_every_holder() {
    let Some(mut ns) = Netns::new() else { return };
    let parent = ns.listener("pw-prefork", 4, "127.0.0.1", 7100, 2).unwrap();
    let listing = json(&ns.portwarden(&["ports", "--json"]));
    let l = find(&listing, "127.0.0.1:7100");
    let pids: Vec<u64> = l["owners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "{l}");
    assert!(pids.contains(&u64::from(parent)));
    assert_eq!(owner_names(l), vec!["pw-prefork"; 3]);
    let table = stdout(&ns.portwarden(&["ports"]));
    assert!(table.contains(&format!("pw-prefork ({parent},")), "{table}");
}

#[test]
fn names_the_intruder_that_grabbed_the_port_first() {
    let Some(mut ns) = Netns::new() else { return };
    let intruder = ns.listener("pw-intruder", 4, "0.0.0.0", 9090, 0).unwrap();
    // The expected program starts second and cannot listen.
    let failed = ns
        .listener("pw-expected", 4, "0.0.0.0", 9090, 0)
        .unwrap_err();
    assert!(failed.contains("Address already in use"), "{failed}");

    let out = ns.portwarden(&[
        "check",
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        "9090",
        "--owner",
        "pw-expected",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stdout(&out).trim_end(),
        format!("TCP CRITICAL - port 9090 is held by pw-intruder (pid {intruder}), expected pw-expected")
    );
    let out = ns.portwarden(&[
        "check",
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        "9090",
        "--owner",
        "pw-expected",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reason"], "wrong_owner");
    assert_eq!(v["owner"]["verdict"], "wrong");
    assert_eq!(v["owner"]["holders"][0]["pid"], intruder);

    let out = ns.portwarden(&[
        "check",
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        "9090",
        "--owner",
        "pw-intruder",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let exe = ns.portwarden(&[
        "check",
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        "9090",
        "--owner",
        "/usr/bin/python3.11",
    ]);
    assert_eq!(exe.status.code(), Some(0), "{}", stdout(&exe));
}

#[test]
fn a_listener_on_another_address_does_not_hold_this_one() {
    let Some(mut ns) = Netns::new() else { return };
    ns.listener("pw-other", 4, "127.0.0.2", 9191, 0).unwrap();
    let out = ns.portwarden(&[
        "check",
        "tcp",
        "-H",
        "127.0.0.1",
        "-p",
        "9191",
        "--owner",
        "pw-other",
    ]);
    // Nothing answers on 127.0.0.1: the probe's own failure stands.
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout(&out).contains("Connection refused"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn snapshot_and_diff_report_new_vanished_and_changed_owners() {
    let Some(mut ns) = Netns::new() else { return };
    let keep = ns.listener("pw-keep", 4, "127.0.0.1", 7201, 0).unwrap();
    let leaving = ns.listener("pw-leaving", 4, "127.0.0.1", 7202, 0).unwrap();
    let swapped = ns.listener("pw-first", 4, "127.0.0.1", 7203, 0).unwrap();
    let snap = ns.dir.join("inventory.json");
    let snap = snap.to_str().unwrap();
    let saved = ns.portwarden(&["ports", "snapshot", snap]);
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let same = ns.portwarden(&["ports", "diff", snap]);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(stdout(&same).contains("no drift"));

    ns.stop(leaving);
    ns.stop(swapped);
    ns.listener("pw-second", 4, "127.0.0.1", 7203, 0).unwrap();
    ns.listener("pw-new", 4, "127.0.0.1", 7204, 0).unwrap();
    let drift = ns.portwarden(&["ports", "diff", snap, "--json"]);
    assert_eq!(drift.status.code(), Some(1));
    let d: Value = serde_json::from_slice(&drift.stdout).unwrap();
    assert_eq!(d["appeared"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["appeared"][0]["local"], "127.0.0.1:7204");
    assert_eq!(d["vanished"][0]["local"], "127.0.0.1:7202");
    assert_eq!(d["owner_changed"][0]["local"], "127.0.0.1:7203");
    assert_eq!(d["owner_changed"][0]["before"][0]["name"], "pw-first");
    assert_eq!(d["owner_changed"][0]["after"][0]["name"], "pw-second");
    let human = stdout(&ns.portwarden(&["ports", "diff", snap]));
    assert!(
        human.contains("+ new      tcp 127.0.0.1:7204 (pw-new)"),
        "{human}"
    );
    assert!(
        human.contains("- vanished tcp 127.0.0.1:7202 (pw-leaving)"),
        "{human}"
    );
    assert!(
        human.contains("~ owner    tcp 127.0.0.1:7203: pw-first -> pw-second"),
        "{human}"
    );
    let _ = keep;
}

#[test]
fn diff_against_a_broken_snapshot_is_a_usage_error_naming_the_file() {
    let Some(ns) = Netns::new() else { return };
    let bad = ns.dir.join("bad.json");
    std::fs::write(&bad, "{\"version\": 1,").unwrap();
    let out = ns.portwarden(&["ports", "diff", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.json") && err.contains("line 1"), "{err}");
    let missing = ns.portwarden(&["ports", "diff", "/nonexistent/x.json"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn without_root_the_owner_is_unknown_and_the_output_says_why() {
    let Some(mut ns) = Netns::new() else { return };
    ns.listener("pw-rootly", 4, "127.0.0.1", 7300, 0).unwrap();
    let bin = env!("CARGO_BIN_EXE_portwarden");
    if !Path::new("/usr/bin/setpriv").exists() {
        return;
    }
    let out = ns
        .command(
            "/usr/bin/setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                bin,
                "ports",
            ],
        )
        .output()
        .unwrap();
    let table = stdout(&out);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(table.contains("unknown owner"), "{table}");
    assert!(table.contains("run as root to see every owner"), "{table}");
    let out = ns
        .command(
            "/usr/bin/setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                bin,
                "check",
                "tcp",
                "-H",
                "127.0.0.1",
                "-p",
                "7300",
                "--owner",
                "pw-rootly",
            ],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("unknown owner (run as root to see it)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_bound_udp_socket_is_listed_only_with_udp() {
    let Some(mut ns) = Netns::new() else { return };
    let exe = ns.dir.join("pw-dns");
    std::os::unix::fs::symlink(PYTHON, &exe).unwrap();
    let script = "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('127.0.0.1', 5353))\nprint('ready', flush=True)\ntime.sleep(60)\n";
    let mut child = ns
        .command(exe.to_str().unwrap(), &["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(crate::support::first_line(&mut child).trim(), "ready");
    ns.children.push(child);
    let tcp_only = json(&ns.portwarden(&["ports", "--json"]));
    assert_eq!(tcp_only["listeners"].as_array().unwrap().len(), 0);
    let with_udp = json(&ns.portwarden(&["ports", "--json", "--udp"]));
    let l = find(&with_udp, "127.0.0.1:5353");
    assert_eq!(l["protocol"], "udp");
    assert_eq!(owner_names(l), vec!["pw-dns"]);
}

#[test]
fn lists_hundreds_of_sockets_of_one_process() {
    // Speed is measured by the benchmark (docs/benchmarks.md), not here.
    let Some(mut ns) = Netns::new() else { return };
    let exe = ns.dir.join("pw-many");
    std::os::unix::fs::symlink(PYTHON, &exe).unwrap();
    let script = "import socket, time\nsocks = []\nfor p in range(20000, 20300):\n    s = socket.socket(); s.bind(('127.0.0.1', p)); s.listen(1); socks.append(s)\nprint('ready', flush=True)\ntime.sleep(60)\n";
    let mut child = ns
        .command(exe.to_str().unwrap(), &["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(crate::support::first_line(&mut child).trim(), "ready");
    ns.children.push(child);
    let listing = json(&ns.portwarden(&["ports", "--json"]));
    let listeners = listing["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 300);
    assert!(listeners.iter().all(|l| owner_names(l) == vec!["pw-many"]));
}
