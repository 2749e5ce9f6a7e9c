//! `/metrics` through the real daemon: a TLS monitor against a real `openssl s_server`
//! exposes its certificate's expiry, and a monitor removed by a reload leaves no series behind.

#![allow(clippy::unwrap_used)] // test helpers may unwrap, as tests do (STYLE.md)

mod common;

use common::{free_port, temp_dir, wait_until};

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child killed (by its PID) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// `name{labels} value` lines as a map (comments skipped).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn start_daemon(dir: &Path, config: &str) -> (Killed, u16) {
    let port = free_port();
    let file = dir.join("portwarden.toml");
    std::fs::write(
        &file,
        format!("[daemon]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"state\"\n\n[firewall]\nguard = false\n\n{config}"),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .arg("run")
        .arg("-c")
        .arg(&file)
        .env("PORTWARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Killed(child);
    wait_until("the daemon's API", 15, || get(port, "/healthz").is_some());
    (daemon, port)
}

#[test]
fn a_tls_monitor_exposes_its_certificate_expiry() {
    let dir = temp_dir("metrics-tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "45",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(made.success());
    // The certificate's own notAfter, as Unix seconds, is what the gauge must say.
    let enddate = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let enddate = String::from_utf8(enddate.stdout).unwrap();
    let iso = enddate.trim().trim_start_matches("notAfter=");
    let not_after = Command::new("date")
        .args(["-u", "+%s", "-d", iso])
        .output()
        .unwrap();
    let not_after: f64 = String::from_utf8(not_after.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    let tls_port = free_port();
    let server = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{tls_port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Killed(server);
    wait_until("openssl s_server", 10, || {
        TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
    });
    // A plain monitor beside it: it must get no expiry series.
    let plain = TcpListener::bind("127.0.0.1:0").unwrap();
    let plain_port = plain.local_addr().unwrap().port();

    let (_daemon, port) = start_daemon(
        &dir,
        &format!(
            "[[monitor]]\nname = \"tls\"\ntarget = \"127.0.0.1:{tls_port}\"\ninterval = \"1s\"\ntimeout = \"900ms\"\ntls = {{ verify = \"none\" }}\n\n\
             [[monitor]]\nname = \"plain\"\ntarget = \"127.0.0.1:{plain_port}\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n"
        ),
    );
    let key = "portwarden_cert_expiry_timestamp_seconds{monitor=\"tls\"}";
    let seen = std::cell::RefCell::new(BTreeMap::new());
    wait_until("the expiry gauge", 15, || {
        let m = samples(&get(port, "/metrics").unwrap_or_default());
        let ready = m.contains_key(key)
            && m.contains_key("portwarden_checks_total{monitor=\"plain\",result=\"ok\"}");
        *seen.borrow_mut() = m;
        ready
    });
    let seen = seen.into_inner();
    assert_eq!(seen[key], not_after, "{seen:?}");
    assert!(
        !seen.contains_key("portwarden_cert_expiry_timestamp_seconds{monitor=\"plain\"}"),
        "a plain monitor has no certificate: {seen:?}"
    );
    // The API shows the same figure.
    let detail = get(port, "/api/v1/monitors/tls").unwrap();
    let detail: serde_json::Value = serde_json::from_str(&detail).unwrap();
    assert_eq!(detail["cert_expiry"].as_f64(), Some(not_after));
    drop(plain);
}

#[test]
fn a_removed_monitor_leaves_no_series_after_a_reload() {
    let dir = temp_dir("metrics-reload");
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let monitor = |name: &str, l: &TcpListener| {
        format!(
            "[[monitor]]\nname = \"{name}\"\ntarget = \"127.0.0.1:{}\"\ninterval = \"500ms\"\ntimeout = \"400ms\"\n\n",
            l.local_addr().unwrap().port()
        )
    };
    let (daemon, port) = start_daemon(
        &dir,
        &format!("{}{}", monitor("kept", &a), monitor("dropped", &b)),
    );
    wait_until("both monitors counted", 15, || {
        let m = samples(&get(port, "/metrics").unwrap_or_default());
        m.contains_key("portwarden_checks_total{monitor=\"kept\",result=\"ok\"}")
            && m.contains_key("portwarden_checks_total{monitor=\"dropped\",result=\"ok\"}")
    });

    let file = dir.join("portwarden.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let kept_only = text.replace(&monitor("dropped", &b), "");
    assert_ne!(text, kept_only);
    std::fs::write(&file, kept_only).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &daemon.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());

    wait_until("the reload", 15, || {
        let text = get(port, "/metrics").unwrap_or_default();
        samples(&text).get("portwarden_monitors") == Some(&1.0)
    });
    // Checks keep running for the kept one; two more scrapes later the dropped one is gone
    // from every family (a check in flight at the reload is counted and dropped again).
    std::thread::sleep(Duration::from_millis(1200));
    let _ = get(port, "/metrics");
    let text = get(port, "/metrics").unwrap();
    assert!(
        !text.contains("monitor=\"dropped\""),
        "series of a removed monitor remain:\n{text}"
    );
    assert!(text.contains("portwarden_checks_total{monitor=\"kept\",result=\"ok\"}"));
    drop((a, b));
}
