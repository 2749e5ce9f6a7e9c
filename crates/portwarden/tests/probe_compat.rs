//! `/probe` side by side with the real blackbox_exporter (Debian's
//! `prometheus-blackbox-exporter`): the same `blackbox.yml`, the same loopback targets
//! (banner, refused, silent, mismatching banner, TLS), and the same metric names and
//! non-timing values. Also the same 400s. Plus `/metrics` through the real daemon: one
//! monitor up and one down give the right gauges and counters.
//!
//! Without the exporter the comparisons are skipped with a note, except under `CI=true`,
//! where a missing binary fails loudly.

#![allow(clippy::unwrap_used)] // test helpers may unwrap, as tests do (STYLE.md)

mod common;

use common::free_port;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";
/// Metrics whose values are timings: compared by name only.
const TIMINGS: [&str; 2] = ["probe_duration_seconds", "probe_dns_lookup_time_seconds"];

fn blackbox_binary() -> Option<&'static str> {
    if Path::new(BLACKBOX).exists() {
        return Some(BLACKBOX);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{BLACKBOX} is missing: install prometheus-blackbox-exporter (scripts/install-test-deps)"
    );
    eprintln!("skipped: {BLACKBOX} is not installed");
    None
}

/// A child process killed (by its PID) on drop, with its stderr kept.
struct Proc {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut command: Command, addr: SocketAddr, ready_path: &str) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start process");
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
        let p = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while get(addr, ready_path, &[]).is_none_or(|(s, _)| s != 200) {
            assert!(
                Instant::now() < deadline,
                "not ready; log:\n{}",
                p.log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(50));
        }
        p
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET: status and body, or None if nothing answers.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let raw = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = &rest[n + 2..];
    }
    out
}

/// Samples of a text exposition: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap())
        })
        .collect()
}

/// A server that writes `banner` on accept, then closes.
fn banner_server(banner: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(banner);
        }
    });
    port
}

/// A server that accepts and stays silent.
fn silent_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// A port bound but not listening: connections are refused.
fn refused_port() -> (u16, socket2::Socket) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.bind(&addr.into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (port, s)
}

/// A TLS server for `localhost` / 127.0.0.1 signed by a test CA; returns its port and the
/// CA file. The leaf expires 2030-01-01, the CA 2035-01-01.
fn tls_server(dir: &Path) -> (u16, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "portwarden test ca");
    ca_params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        let _ = tls.write_all(b"220 tls ready\r\n").await;
                        let _ = tls.flush().await;
                        let mut buf = [0u8; 256];
                        let _ =
                            tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
                    }
                });
            }
        });
    });
    (port, ca_file)
}

fn blackbox_yml(ca_file: &Path) -> String {
    format!(
        r#"modules:
  tcp_connect:
    prober: tcp
    timeout: 2s
  tcp_banner:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220"
        - send: "QUIT"
  tcp_ssh:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^SSH-"
  tcp_tls:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: {ca}
        server_name: localhost
      query_response:
        - expect: "^220"
  tcp_tls_insecure:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        insecure_skip_verify: true
  http_2xx:
    prober: http
"#,
        ca = ca_file.display()
    )
}

/// Both exporters on the same config.
struct Pair {
    blackbox: Proc,
    ours: Proc,
    _dir: tempfile::TempDir,
    tls_port: u16,
}

fn start_pair() -> Option<Pair> {
    let binary = blackbox_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let (tls_port, ca_file) = tls_server(dir.path());
    let yml = dir.path().join("blackbox.yml");
    std::fs::write(&yml, blackbox_yml(&ca_file)).unwrap();

    let bb_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut bb = Command::new(binary);
    bb.arg(format!("--config.file={}", yml.display()))
        .arg(format!("--web.listen-address={bb_addr}"));
    let blackbox = Proc::spawn(bb, bb_addr, "/-/healthy");

    let our_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("portwarden.toml");
    let self_port = our_addr.port();
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"{our_addr}\"\nstate_dir = \"state\"\nblackbox_config = \"blackbox.yml\"\n\n\
             [[monitor]]\nname = \"self\"\ntarget = \"127.0.0.1:{self_port}\"\n"
        ),
    )
    .unwrap();
    let mut pw = Command::new(env!("CARGO_BIN_EXE_portwarden"));
    pw.arg("run")
        .arg("-c")
        .arg(&config)
        .env("PORTWARDEN_LOG", "info");
    let ours = Proc::spawn(pw, our_addr, "/healthz");
    Some(Pair {
        blackbox,
        ours,
        _dir: dir,
        tls_port,
    })
}

impl Pair {
    /// Probes both; asserts the same status, metric names and non-timing values; returns
    /// our samples.
    fn compare(&self, query: &str) -> BTreeMap<String, f64> {
        let path = format!("/probe?{query}");
        let (bs, btext) = get(self.blackbox.addr, &path, &[]).unwrap();
        let (os, otext) = get(self.ours.addr, &path, &[]).unwrap();
        assert_eq!(os, bs, "status for {query}: ours {otext}, blackbox {btext}");
        let (b, o) = (samples(&btext), samples(&otext));
        // probe_ssl_last_chain_info carries a certificate fingerprint we do not have yet.
        let names = |m: &BTreeMap<String, f64>| -> Vec<String> {
            m.keys()
                .filter(|k| !k.starts_with("probe_ssl_last_chain_info"))
                .cloned()
                .collect()
        };
        assert_eq!(
            names(&o),
            names(&b),
            "metric names for {query}:\nours:\n{otext}\nblackbox:\n{btext}"
        );
        for (k, v) in &b {
            if TIMINGS.contains(&k.as_str()) || k.starts_with("probe_ssl_last_chain_info") {
                continue;
            }
            assert_eq!(
                o.get(k),
                Some(v),
                "{k} for {query}:\nours:\n{otext}\nblackbox:\n{btext}"
            );
        }
        o
    }
}

#[test]
fn probe_agrees_with_blackbox_exporter_on_the_tcp_prober() {
    let Some(pair) = start_pair() else { return };
    let banner = banner_server(b"220 ready\r\n");
    let (refused, _held) = refused_port();
    let silent = silent_server();

    let ok = pair.compare(&format!("module=tcp_connect&target=127.0.0.1:{banner}"));
    assert_eq!(ok["probe_success"], 1.0);
    assert_eq!(ok["probe_ip_protocol"], 4.0);

    let ok = pair.compare(&format!("module=tcp_banner&target=127.0.0.1:{banner}"));
    assert_eq!(ok["probe_success"], 1.0);
    assert_eq!(ok["probe_failed_due_to_regex"], 0.0);

    let no = pair.compare(&format!("module=tcp_connect&target=127.0.0.1:{refused}"));
    assert_eq!(no["probe_success"], 0.0);

    // The read times out: failed, but not "due to regex" (blackbox's rule).
    let started = Instant::now();
    let no = pair.compare(&format!("module=tcp_banner&target=127.0.0.1:{silent}"));
    assert_eq!(no["probe_success"], 0.0);
    assert_eq!(no["probe_failed_due_to_regex"], 0.0);
    assert!(started.elapsed() < Duration::from_secs(5));

    // The server closes before a line matches: failed due to regex.
    let no = pair.compare(&format!("module=tcp_ssh&target=127.0.0.1:{banner}"));
    assert_eq!(no["probe_success"], 0.0);
    assert_eq!(no["probe_failed_due_to_regex"], 1.0);

    let tls = pair.compare(&format!(
        "module=tcp_tls&target=127.0.0.1:{}",
        pair.tls_port
    ));
    assert_eq!(tls["probe_success"], 1.0);
    assert_eq!(tls["probe_ssl_earliest_cert_expiry"], 1_893_456_000.0);
    assert_eq!(tls["probe_tls_version_info{version=\"TLS 1.3\"}"], 1.0);

    let tls = pair.compare(&format!(
        "module=tcp_tls_insecure&target=127.0.0.1:{}",
        pair.tls_port
    ));
    assert_eq!(
        tls["probe_ssl_last_chain_expiry_timestamp_seconds"],
        -62_135_596_800.0
    );
}

#[test]
fn probe_errors_match_blackbox_exporter() {
    let Some(pair) = start_pair() else { return };
    for path in [
        "/probe?module=nope&target=127.0.0.1:1",
        "/probe?module=tcp_connect",
    ] {
        let b = get(pair.blackbox.addr, path, &[]).unwrap();
        let o = get(pair.ours.addr, path, &[]).unwrap();
        assert_eq!(o, b, "{path}");
        assert_eq!(o.0, 400);
    }
    // A module blackbox knows and we do not run (no module means http_2xx, as in blackbox):
    // 400 from us, with the reason.
    let (status, body) = get(pair.ours.addr, "/probe?module=http_2xx&target=x", &[]).unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("not supported"), "{body}");
}

#[test]
fn scrape_timeout_header_bounds_the_probe_like_blackbox() {
    let Some(pair) = start_pair() else { return };
    let silent = silent_server();
    // tcp_banner has timeout 1s; the header 0.8 leaves 0.3 s.
    let path = format!("/probe?module=tcp_banner&target=127.0.0.1:{silent}");
    let header = [("X-Prometheus-Scrape-Timeout-Seconds", "0.8")];
    for addr in [pair.blackbox.addr, pair.ours.addr] {
        let (status, text) = get(addr, &path, &header).unwrap();
        assert_eq!(status, 200);
        let d = samples(&text)["probe_duration_seconds"];
        assert!((0.25..0.6).contains(&d), "{addr}: duration {d}\n{text}");
    }
}

/// A banner server for /metrics, with its port.
fn metrics_daemon(up_port: u16, down_port: u16) -> (Proc, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"{addr}\"\nstate_dir = \"state\"\n\n\
             [[monitor]]\nname = \"web\"\ntarget = \"127.0.0.1:{up_port}\"\nexpect = {{ prefix = \"220\" }}\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
             [[monitor]]\nname = \"gone\"\ntarget = \"127.0.0.1:{down_port}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nfail_after = 1\n"
        ),
    )
    .unwrap();
    let mut pw = Command::new(env!("CARGO_BIN_EXE_portwarden"));
    pw.arg("run")
        .arg("-c")
        .arg(&config)
        .env("PORTWARDEN_LOG", "info");
    (Proc::spawn(pw, addr, "/healthz"), dir)
}

#[test]
fn metrics_show_a_monitor_up_and_one_down() {
    let up = banner_server(b"220 ready\r\n");
    let (down, _held) = refused_port();
    let (d, _dir) = metrics_daemon(up, down);
    let deadline = Instant::now() + Duration::from_secs(15);
    let m = loop {
        let (status, text) = get(d.addr, "/metrics", &[]).unwrap();
        assert_eq!(status, 200);
        let m = samples(&text.replace("# EOF", ""));
        let ready = m.get("portwarden_monitor_status{monitor=\"gone\",status=\"down\"}")
            == Some(&1.0)
            && m.get("portwarden_checks_total{monitor=\"web\",result=\"ok\"}")
                .is_some_and(|n| *n >= 2.0);
        if ready {
            assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
            break m;
        }
        assert!(Instant::now() < deadline, "metrics never settled:\n{text}");
        thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(m["portwarden_monitor_up{monitor=\"web\"}"], 1.0);
    assert_eq!(m["portwarden_monitor_up{monitor=\"gone\"}"], 0.0);
    assert_eq!(
        m["portwarden_monitor_status{monitor=\"web\",status=\"ok\"}"],
        1.0
    );
    assert_eq!(
        m["portwarden_monitor_status{monitor=\"web\",status=\"down\"}"],
        0.0
    );
    assert!(m["portwarden_checks_total{monitor=\"gone\",result=\"critical\"}"] >= 1.0);
    assert!(!m.contains_key("portwarden_checks_total{monitor=\"web\",result=\"critical\"}"));
    assert!(m["portwarden_check_duration_seconds_count{monitor=\"web\"}"] >= 2.0);
    assert_eq!(m["portwarden_monitors"], 2.0);
    assert_eq!(m["portwarden_store_up"], 1.0);
    assert!(m.contains_key("portwarden_scheduler_start_lag_seconds{quantile=\"0.99\"}"));
}
