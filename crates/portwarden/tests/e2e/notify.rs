//! Notifications end to end: the real daemon binary, real listeners on loopback that the test
//! opens and closes, and a real receiver: an `exec` notifier running a shell script that
//! appends each notification (JSON on stdin) to a file while a flag file exists, and fails
//! (exit 1, retryable) while it does not.
//!
//! - nothing is lost: DOWN and UP while the receiver is down, SIGKILL, restart, receiver up →
//!   both arrive, once each, in order;
//! - a storm of 200 DOWNs is at most 2 messages (the first at once, the rest grouped);
//! - a silenced monitor's DOWN is held, another's is not;
//! - `portwarden notify test` against a working and a failing notifier;
//! - nothing is lost over SMTP either: a real aiosmtpd server that starts only after the
//!   restart gets the DOWN and UP mails, in order;
//! - nothing is lost to a full disk: an outage while the state directory's disk is full is an
//!   incident with its real times once there is room again, and its DOWN and UP, sent from
//!   memory meanwhile, reach the outbox then and arrive once each after a SIGKILL.

use crate::support;

use crate::support::{
    aiosmtpd, api_addr, free_port, now_ms, temp_dir, wait_until, Daemon, SmallDisk, FAST_DEFAULTS,
};

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_portwarden");

/// A TCP listener on a fixed port that accepts and hangs up; stop it and the port refuses.
struct Service {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Service {
    /// On a port of its own (other processes on this machine may grab one between
    /// [`free_port`]'s probe and our bind: then the next port).
    fn start_new() -> Self {
        loop {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", free_port())) {
                return Self::serve(listener);
            }
        }
    }

    /// Again on `port`: std sets SO_REUSEADDR, so a stopped service can start on its port.
    fn start(port: u16) -> Self {
        Self::serve(TcpListener::bind(("127.0.0.1", port)).expect("bind service port"))
    }

    fn serve(listener: TcpListener) -> Self {
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listener (returns once the port refuses).
    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The `exec` receiver: a script appending each notification to `out` while `flag` exists.
struct Receiver {
    script: PathBuf,
    flag: PathBuf,
    out: PathBuf,
}

impl Receiver {
    fn new(dir: &Path) -> Self {
        let script = dir.join("receiver.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             # $1: flag file (the receiver is up while it exists), $2: where notifications go\n\
             if [ ! -e \"$1\" ]; then echo 'receiver down' >&2; exit 1; fi\n\
             cat >> \"$2\"\n\
             printf '\\n' >> \"$2\"\n\
             echo \"stored $PORTWARDEN_NOTIFICATION_ID\"\n",
        )
        .unwrap();
        Self {
            script,
            flag: dir.join("receiver.up"),
            out: dir.join("received.jsonl"),
        }
    }

    fn up(&self) {
        std::fs::write(&self.flag, b"").unwrap();
    }

    fn notifier_toml(&self, name: &str, group_window: &str) -> String {
        format!(
            "[[notifier]]\nname = \"{name}\"\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"{}\", \"{}\", \"{}\"]\ngroup_window = \"{group_window}\"\n\n",
            self.script.display(),
            self.flag.display(),
            self.out.display()
        )
    }

    /// Every notification received so far, in order.
    fn received(&self) -> Vec<Value> {
        read_json_lines(&self.out)
    }

    /// Every item received, as `subject:kind`, in order.
    fn items(&self) -> Vec<String> {
        self.received()
            .iter()
            .flat_map(|n| n["items"].as_array().cloned().unwrap_or_default())
            .map(|i| {
                format!(
                    "{}:{}",
                    i["subject"].as_str().unwrap(),
                    i["kind"].as_str().unwrap()
                )
            })
            .collect()
    }
}

/// The notification reads these tests make besides the common ones.
trait Notifications {
    /// The notifier's entry in `GET /api/v1/notifications`.
    fn queue(&self, notifier: &str) -> Value;
}

impl Notifications for Daemon {
    fn queue(&self, notifier: &str) -> Value {
        self.get("/api/v1/notifications")
            .and_then(|v| {
                v["notifiers"]
                    .as_array()?
                    .iter()
                    .find(|n| n["name"] == notifier)
                    .cloned()
            })
            .unwrap_or(Value::Null)
    }
}

/// A config: fast checks, the firewall left alone, every monitor notifying `ops`.
fn write_config(dir: &Path, api: SocketAddr, rest: &str) -> PathBuf {
    support::write_config(
        dir,
        api,
        "",
        &format!(
            "[defaults]
{FAST_DEFAULTS}notify = [\"ops\"]

{rest}"
        ),
    )
}

fn monitor_toml(name: &str, port: u16) -> String {
    format!("[[monitor]]\nname = \"{name}\"\ntarget = \"127.0.0.1:{port}\"\n\n")
}

/// `n` running services and a monitor of each (`m000`, `m001`, …).
fn services_with_monitors(n: usize) -> (Vec<Service>, String) {
    let services: Vec<Service> = (0..n).map(|_| Service::start_new()).collect();
    let monitors = services
        .iter()
        .enumerate()
        .map(|(i, s)| monitor_toml(&format!("m{i:03}"), s.port))
        .collect();
    (services, monitors)
}

/// Waits until all `n` monitors are OK.
fn wait_all_ok(d: &Daemon, n: usize) {
    d.wait_for("every monitor ok", 20, |d| {
        d.get("/api/v1/monitors?state=ok")
            .and_then(|v| v.as_array().map(Vec::len))
            == Some(n)
    });
}

/// The JSON documents a receiver appended to `path`, in order.
fn read_json_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

#[test]
fn down_and_up_survive_a_dead_receiver_and_a_sigkill_and_arrive_once_in_order() {
    let dir = temp_dir("nothing-lost");
    let receiver = Receiver::new(&dir);
    let mut service = Service::start_new();
    let api = api_addr();
    let config = write_config(
        &dir,
        api,
        &format!(
            "{}{}",
            receiver.notifier_toml("ops", "0s"),
            monitor_toml("svc", service.port)
        ),
    );
    let d = Daemon::start(&config, api);
    d.wait_for("svc ok", 20, |d| d.status("svc") == "ok");
    service.stop();
    d.wait_for("svc down", 20, |d| d.status("svc") == "down");
    service = Service::start(service.port);
    d.wait_for("svc up again", 20, |d| d.status("svc") == "ok");
    // Both wait in the outbox (committed), the receiver refusing.
    d.wait_for("two notifications in the outbox", 20, |d| {
        let q = d.queue("ops");
        let waiting = q["pending"].as_array().map_or(0, Vec::len)
            + q["failing"].as_array().map_or(0, Vec::len);
        waiting == 2
            && q["pending"][0]["last_error"]
                .as_str()
                .is_some_and(|e| e.ends_with("receiver down"))
    });
    assert!(receiver.received().is_empty());
    d.kill();

    let d = Daemon::start(&config, api);
    receiver.up();
    wait_until("both notifications", 20, || receiver.items().len() >= 2);
    // A little longer: nothing arrives twice.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        receiver.items(),
        ["svc:down", "svc:up"],
        "log:\n{}",
        d.log()
    );
    let got = receiver.received();
    assert_ne!(got[0]["id"], got[1]["id"]);
    assert_eq!(
        got[1]["items"][0]["incident"],
        got[0]["items"][0]["incident"]
    );
    let q = d.queue("ops");
    assert_eq!(q["pending"].as_array().unwrap().len(), 0, "{q}");
    assert_eq!(q["delivered"].as_array().unwrap().len(), 2, "{q}");
    assert!(q["delivered"][0]["response"]
        .as_str()
        .unwrap()
        .starts_with("stored svc:up:"));
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_storm_of_200_downs_is_one_grouped_message_and_misses_none() {
    const N: usize = 200;
    let dir = temp_dir("storm");
    let receiver = Receiver::new(&dir);
    receiver.up();
    let (mut services, monitors) = services_with_monitors(N);
    let api = api_addr();
    let config = write_config(
        &dir,
        api,
        // A burst: the first failures wait 2 s for the rest (group_wait), so the whole storm
        // is one grouped message.
        &format!(
            "{}group_wait = \"2s\"\n\n{monitors}",
            receiver.notifier_toml("ops", "3s")
        ),
    );
    let d = Daemon::start(&config, api);
    wait_all_ok(&d, N);
    let started = Instant::now();
    for s in services.iter_mut() {
        s.stop();
    }
    wait_until("200 DOWN items", 20, || receiver.items().len() >= N);
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(1000));
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{} messages for the storm", got.len());
    assert_eq!(got[0]["kind"], "grouped");
    let mut subjects: Vec<String> = receiver.items();
    assert!(subjects.iter().all(|s| s.ends_with(":down")));
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), N, "every monitor once");
    eprintln!(
        "storm: {} messages ({} items in the last), all {N} in {:.1}s",
        got.len(),
        got.last().unwrap()["items"].as_array().unwrap().len(),
        took.as_secs_f64()
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_receiver_that_answers_after_the_timeout_sees_every_item_under_one_key() {
    // issue 14.2: each retry regrouped the pending rows under a new key, so items reached
    // the receiver under several keys and its dedup could not work. Here the receiver
    // records every call, then answers too late for the first three (timeout 1 s).
    let dir = temp_dir("late-receiver");
    let script = dir.join("late.sh");
    let out = dir.join("received.jsonl");
    let calls = dir.join("calls");
    std::fs::write(
        &script,
        "#!/bin/sh
\
         # $1: call counter, $2: where notifications go
\
         cat >> \"$2\"
\
         printf '\\n' >> \"$2\"
\
         n=$(($(cat \"$1\" 2>/dev/null || echo 0) + 1))
\
         echo $n > \"$1\"
\
         if [ $n -le 3 ]; then sleep 5; fi
\
         echo stored
",
    )
    .unwrap();
    let (mut services, monitors) = services_with_monitors(6);
    let api = api_addr();
    let config = write_config(
        &dir,
        api,
        &format!(
            "[[notifier]]\nname = \"ops\"\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"{}\", \"{}\", \"{}\"]\n\
             timeout = \"1s\"\ngroup_window = \"1s\"\ngroup_wait = \"100ms\"\n\n{monitors}",
            script.display(),
            calls.display(),
            out.display()
        ),
    );
    let d = Daemon::start(&config, api);
    wait_all_ok(&d, 6);
    let received = || read_json_lines(&out);
    // m0 goes down alone; while its message is being retried, the others go down.
    services[0].stop();
    wait_until("the first attempt", 20, || !received().is_empty());
    for s in services.iter_mut().skip(1) {
        s.stop();
    }
    let items_of = |n: &Value| -> Vec<String> {
        n["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    i["subject"].as_str().unwrap(),
                    i["kind"].as_str().unwrap()
                )
            })
            .collect()
    };
    wait_until("all six DOWNs, the late answers over", 40, || {
        let got = received();
        let mut seen: Vec<String> = got.iter().flat_map(&items_of).collect();
        seen.sort();
        seen.dedup();
        seen.len() == 6 && got.len() >= 4
    });
    thread::sleep(Duration::from_millis(1500));
    let got = received();
    // Every item under exactly one key; a key always with the same items.
    let mut key_of: std::collections::BTreeMap<String, String> = Default::default();
    let mut items_by_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in &got {
        let key = n["id"].as_str().unwrap().to_string();
        let items = items_of(n);
        let earlier = items_by_key
            .entry(key.clone())
            .or_insert_with(|| items.clone());
        assert_eq!(earlier, &items, "key {key} changed its items");
        for item in items {
            let first = key_of.entry(item.clone()).or_insert_with(|| key.clone());
            assert_eq!(first, &key, "{item} under two keys; received: {got:#?}");
        }
    }
    assert_eq!(key_of.len(), 6, "{key_of:?}");
    // The late answers were retried under their key, not lost.
    assert!(got.len() > items_by_key.len(), "{} calls", got.len());
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_silenced_monitor_goes_down_without_a_notification_and_another_does_not() {
    let dir = temp_dir("silence");
    let receiver = Receiver::new(&dir);
    receiver.up();
    let mut quiet = Service::start_new();
    let mut loud = Service::start_new();
    let api = api_addr();
    let config = write_config(
        &dir,
        api,
        &format!(
            "{}{}{}",
            receiver.notifier_toml("ops", "0s"),
            monitor_toml("quiet", quiet.port),
            monitor_toml("loud", loud.port)
        ),
    );
    let d = Daemon::start(&config, api);
    let out = Command::new(BIN)
        .args([
            "silence",
            "add",
            "quiet",
            "--for",
            "1h",
            "--reason",
            "maintenance",
        ])
        .args(["-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.starts_with("silence 1: quiet until ") && said.contains("(maintenance)"),
        "{said}"
    );
    d.wait_for("both ok", 20, |d| {
        d.status("quiet") == "ok" && d.status("loud") == "ok"
    });
    quiet.stop();
    loud.stop();
    d.wait_for("both down", 20, |d| {
        d.status("quiet") == "down" && d.status("loud") == "down"
    });
    wait_until("loud's DOWN", 10, || !receiver.items().is_empty());
    thread::sleep(Duration::from_millis(1000));
    assert_eq!(receiver.items(), ["loud:down"]);
    assert!(
        d.log()
            .contains("down notification about quiet held: silenced until"),
        "{}",
        d.log()
    );
    let silences = d.get("/api/v1/silences").unwrap();
    assert_eq!(silences[0]["monitor"], "quiet");
    let list = Command::new(BIN)
        .args(["silence", "list", "--json", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(listed[0]["reason"], "maintenance");
    let removed = Command::new(BIN)
        .args(["silence", "remove", "1", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(removed.status.code(), Some(0));
    let again = Command::new(BIN)
        .args(["silence", "remove", "1", "-c", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn notify_test_prints_the_receivers_answer_or_the_error_with_exit_codes() {
    let dir = temp_dir("notify-test");
    let good = dir.join("good.sh");
    std::fs::write(
        &good,
        "#!/bin/sh\ncat > /dev/null\necho \"250 accepted $PORTWARDEN_KIND\"\n",
    )
    .unwrap();
    let bad = dir.join("bad.sh");
    std::fs::write(&bad, "#!/bin/sh\necho 'mailbox full' >&2\nexit 1\n").unwrap();
    let config = dir.join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[firewall]\nguard = false\n\n[[notifier]]\nname = \"good\"\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"{}\"]\n\n[[notifier]]\nname = \"bad\"\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"{}\"]\n",
            good.display(),
            bad.display()
        ),
    )
    .unwrap();
    let run = |name: &str| {
        Command::new(BIN)
            .args(["notify", "test", name, "-c", config.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let ok = run("good");
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "250 accepted test\n");
    let failed = run("bad");
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("bad (exec) failed") && err.contains("mailbox full"),
        "{err}"
    );
    let unknown = run("nope");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("it defines: good, bad"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An SMTP receiver (aiosmtpd) printing one JSON line per accepted mail.
const SMTP_RECEIVER: &str = r#"
import email, json, sys
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        print(json.dumps({"subject": msg.get("Subject", ""),
                          "id": msg.get("X-Portwarden-Notification", "")}), flush=True)
        return "250 OK queued"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

#[test]
fn over_smtp_down_and_up_wait_for_a_server_that_starts_after_a_sigkill() {
    let Some(python) = aiosmtpd() else { return };
    let dir = temp_dir("smtp");
    let smtp_port = free_port();
    let mut service = Service::start_new();
    let api = api_addr();
    let config = write_config(
        &dir,
        api,
        &format!(
            "[[notifier]]\nname = \"ops\"\ntype = \"smtp\"\nserver = \"127.0.0.1:{smtp_port}\"\ntls = \"none\"\nfrom = \"portwarden@localhost\"\nto = [\"ops@localhost\"]\ngroup_window = \"0s\"\n\n{}",
            monitor_toml("svc", service.port)
        ),
    );
    let d = Daemon::start(&config, api);
    d.wait_for("svc ok", 20, |d| d.status("svc") == "ok");
    service.stop();
    d.wait_for("svc down", 20, |d| d.status("svc") == "down");
    service = Service::start(service.port);
    d.wait_for("svc up again", 20, |d| d.status("svc") == "ok");
    d.wait_for("two mails in the outbox", 20, |d| {
        d.queue("ops")["pending"].as_array().map_or(0, Vec::len) == 2
    });
    d.kill();
    let d = Daemon::start(&config, api);
    let mut server = Command::new(python)
        .args(["-c", SMTP_RECEIVER, &smtp_port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mails = Arc::new(Mutex::new(Vec::<Value>::new()));
    let sink = mails.clone();
    let stdout = server.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                sink.lock().unwrap().push(v);
            }
        }
    });
    let count = || mails.lock().unwrap().len();
    wait_until("two mails", 30, || count() >= 2);
    thread::sleep(Duration::from_millis(1500));
    let _ = server.kill();
    let _ = server.wait();
    let got = mails.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}\nlog:\n{}", d.log());
    let subject = |i: usize| got[i]["subject"].as_str().unwrap().to_string();
    assert!(
        subject(0).contains("svc on") && subject(0).contains("is DOWN"),
        "{got:?}"
    );
    assert!(subject(1).contains("is UP again"), "{got:?}");
    assert!(got[0]["id"].as_str().unwrap().starts_with("svc:down:"));
    let q = d.queue("ops");
    assert!(
        q["delivered"][0]["response"]
            .as_str()
            .unwrap()
            .contains("250"),
        "{q}"
    );
    drop(service);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_outage_while_the_disk_is_full_becomes_an_incident_and_its_notifications_arrive_once() {
    let dir = temp_dir("disk-full");
    // The state directory on a small disk of the test's own.
    let Some(disk) = SmallDisk::new(&dir.join("state"), "8m") else {
        return;
    };
    let receiver = Receiver::new(&dir);
    let mut service = Service::start_new();
    let api = api_addr();
    let config = write_config(
        &dir,
        api,
        &format!(
            "{}{}",
            receiver.notifier_toml("ops", "0s"),
            monitor_toml("svc", service.port)
        ),
    );
    let start = || {
        let mut command = disk.cmd(BIN);
        command
            .args(["run", "-c"])
            .arg(&config)
            .env("PORTWARDEN_LOG", "info");
        Daemon::spawn(command, api)
    };
    let health = |d: &Daemon| d.get("/healthz").unwrap_or(Value::Null)["store"].clone();
    let d = start();
    d.wait_for("svc ok", 20, |d| d.status("svc") == "ok");
    d.wait_for("the store open", 20, |d| health(d)["state"] == "ok");

    disk.fill();
    // The next write that needs a new block fails: results arrive every 200 ms.
    d.wait_for("the store failed", 60, |d| health(d)["state"] == "failed");
    let stopped = now_ms();
    service.stop();
    d.wait_for("svc down", 20, |d| d.status("svc") == "down");
    service = Service::start(service.port);
    d.wait_for("svc up again", 20, |d| d.status("svc") == "ok");
    let recovered = now_ms();
    // The receiver refuses: both notifications wait in memory, the outage in the journal.
    assert!(
        health(&d)["journal_pending"].as_u64().unwrap() >= 2,
        "{}",
        health(&d)
    );
    let incidents = |d: &Daemon| {
        d.get("/api/v1/incidents?monitor=svc")
            .map(|v| v["incidents"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    assert!(incidents(&d).is_empty(), "{:?}", incidents(&d));

    disk.free();
    // The store retries every 30 s.
    d.wait_for("the store back", 60, |d| health(d)["state"] == "ok");
    let h = health(&d);
    assert_eq!(h["journal_pending"], 0, "{h}");
    assert!(h["journal_written"].as_u64().unwrap() >= 2, "{h}");
    let found = incidents(&d);
    assert_eq!(found.len(), 1, "{found:?}");
    let (start_ms, end_ms) = (
        found[0]["start"].as_i64().unwrap(),
        found[0]["end"].as_i64().unwrap(),
    );
    assert!(
        stopped <= start_ms && start_ms < end_ms && end_ms <= recovered,
        "incident {start_ms}..{end_ms}, outage within {stopped}..{recovered}"
    );
    // Sent from memory while the store was failed, written to the outbox now it is back.
    d.wait_for("both notifications in the outbox", 20, |d| {
        let q = d.queue("ops");
        q["pending"].as_array().map_or(0, Vec::len) + q["failing"].as_array().map_or(0, Vec::len)
            == 2
    });
    assert!(receiver.received().is_empty());
    let waiting_ids = |d: &Daemon| {
        let q = d.queue("ops");
        ["pending", "failing"]
            .iter()
            .flat_map(|list| q[list].as_array().cloned().unwrap_or_default())
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect::<std::collections::BTreeSet<String>>()
    };
    let ids = waiting_ids(&d);
    d.kill();

    // After a SIGKILL both are still there, from the outbox.
    let d = start();
    d.wait_for("both waiting after the restart", 20, |d| {
        waiting_ids(d) == ids
    });
    // Refused for longer than five attempts, they are failing (retried every 10 minutes); the
    // administrator fixes the receiver and changes its notifier, which retries at once.
    receiver.up();
    let text = std::fs::read_to_string(&config).unwrap();
    let changed = text.replace(
        "group_window = \"0s\"\n",
        "group_window = \"0s\"\ntimeout = \"20s\"\n",
    );
    assert_ne!(text, changed);
    std::fs::write(&config, changed).unwrap();
    d.signal("-HUP");
    wait_until("both notifications", 20, || receiver.items().len() >= 2);
    // A little longer: nothing arrives twice.
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        receiver.items(),
        ["svc:down", "svc:up"],
        "log:\n{}",
        d.log()
    );
    let got: std::collections::BTreeSet<String> = receiver
        .received()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    // Under the keys they were written with while the store was failed.
    assert_eq!(got, ids);
    // The incident is in the database, not only in the memory of the daemon that saw it.
    assert_eq!(incidents(&d).len(), 1);
    drop(d);
    drop(service);
    drop(disk);
    let _ = std::fs::remove_dir_all(&dir);
}
