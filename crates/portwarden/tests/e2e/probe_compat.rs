//! `/probe` side by side with the real blackbox_exporter (Debian's
//! `prometheus-blackbox-exporter`): the same `blackbox.yml`, the same loopback targets
//! (banner, refused, silent, mismatching banner, TLS), and the same metric names and
//! non-timing values. Also the same 400s. Plus `/metrics` through the real daemon: one
//! monitor up and one down give the right gauges and counters.
//!
//! Also STARTTLS in place, client certificates, `probe_ssl_last_chain_info`, modules
//! blackbox loads but fails every probe of, and keys 0.23 refuses (the real exporter's
//! `--config.check` names the line; portwarden refuses that module alone, naming the key
//! and the same line). `SHOW=1` prints both expositions of every comparison.
//!
//! Without the exporter the comparisons are skipped with a note, except under `CI=true`,
//! where a missing binary fails loudly.

use crate::support;

use crate::support::api_addr;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
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

/// A server that hands out a token in its banner (after a first line) and wants it back:
/// `AUTH abc123` gets `250 ok`, anything else `500 bad token`.
fn token_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            thread::spawn(move || {
                let _ = s.write_all(b"220-hello\r\n220 token=abc123 ready\r\n");
                let mut line = String::new();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if r.read_line(&mut line).is_ok() {
                    let reply: &[u8] = if line == "AUTH abc123\n" {
                        b"250 ok\r\n"
                    } else {
                        b"500 bad token\r\n"
                    };
                    let _ = s.write_all(reply);
                }
            });
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

/// A test CA, a leaf for `localhost` / 127.0.0.1 and a client certificate, all PEM files
/// in `dir` (`ca.pem`, `client.pem`, `client.key`). The leaf expires 2030-01-01, the CA
/// 2035-01-01. Subjects have several attributes and characters Go escapes, so the
/// `probe_ssl_last_chain_info` labels test the formatting.
struct TestPki {
    leaf: rcgen::Certificate,
    leaf_key: rcgen::KeyPair,
    ca: rcgen::Certificate,
}

fn test_pki(dir: &Path) -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "portwarden test ca");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "Portwarden");
    ca_params.distinguished_name.push(DnType::CountryName, "DE");
    ca_params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec![
        "localhost".to_string(),
        "probe.test".to_string(),
        "127.0.0.1".to_string(),
    ])
    .unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf_params
        .distinguished_name
        .push(DnType::OrganizationName, "Portwarden, Tests");
    leaf_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "#probe");
    leaf_params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "prober");
    client_params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    // For servers run as other programs (aiosmtpd with STARTTLS).
    std::fs::write(dir.join("leaf.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), leaf_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
    TestPki { leaf, leaf_key, ca }
}

/// A chain whose two expiry gauges differ: `chain-ca.pem` holds a root expiring
/// 2029-01-01 that signed an intermediate (2032) that signed the leaf (2030); the server
/// also presents an expired cross-signature of the intermediate (by an untrusted CA,
/// 2021-01-01), first. blackbox: earliest expiry 2021 (every presented certificate),
/// last chain expiry 2029 (the verified chain, root included).
fn chain_server_config(dir: &Path) -> Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca = |cn: &str, from: (i32, u8, u8), until: (i32, u8, u8)| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        p.not_after = rcgen::date_time_ymd(until.0, until.1, until.2);
        p
    };
    let root_key = KeyPair::generate().unwrap();
    let root = ca("chain root", (2020, 1, 1), (2029, 1, 1))
        .self_signed(&root_key)
        .unwrap();
    let old_key = KeyPair::generate().unwrap();
    let old = ca("old root", (2015, 1, 1), (2040, 1, 1))
        .self_signed(&old_key)
        .unwrap();
    let inter_key = KeyPair::generate().unwrap();
    let inter = ca("chain intermediate", (2020, 1, 1), (2032, 1, 1))
        .signed_by(&inter_key, &root, &root_key)
        .unwrap();
    let cross = ca("chain intermediate", (2019, 1, 1), (2021, 1, 1))
        .signed_by(&inter_key, &old, &old_key)
        .unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "chain leaf");
    leaf_params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    let leaf = leaf_params
        .signed_by(&leaf_key, &inter, &inter_key)
        .unwrap();
    std::fs::write(dir.join("chain-ca.pem"), root.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone(), cross.der().clone(), inter.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap(),
    )
}

impl TestPki {
    /// A server configuration presenting the leaf; with `client_auth`, a client
    /// certificate signed by the test CA is required.
    fn server_config(&self, client_auth: bool) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.der().clone()).unwrap();
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(
            builder
                .with_single_cert(
                    vec![self.leaf.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(self.leaf_key.serialize_der().into()),
                )
                .unwrap(),
        )
    }
}

/// Serves each connection with `session` on its own task of a runtime in a thread.
fn tokio_server<F, Fut>(session: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            loop {
                let Ok((s, _)) = l.accept().await else {
                    continue;
                };
                tokio::spawn(session(s));
            }
        });
    });
    port
}

/// A TLS server: handshake, `220 tls ready`, then it reads until the client goes.
fn tls_server(config: Arc<rustls::ServerConfig>) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio_server(move |s| {
        let acceptor = acceptor.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            if let Ok(mut tls) = acceptor.accept(s).await {
                let _ = tls.write_all(b"220 tls ready\r\n").await;
                let _ = tls.flush().await;
                let mut buf = [0u8; 256];
                let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
            }
        }
    })
}

/// A server that upgrades in place: `220 plain ready`, then on `STARTTLS` it answers
/// `220 go ahead`, does the TLS handshake and says `250 secure` inside TLS; anything
/// else gets `500 unknown command`.
fn starttls_server(config: Arc<rustls::ServerConfig>) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio_server(move |mut s| {
        let acceptor = acceptor.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = s.write_all(b"220 plain ready\r\n").await;
            // Byte by byte: the handshake follows on the same socket.
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while let Ok(1) = s.read(&mut b).await {
                line.push(b[0]);
                if b[0] == b'\n' {
                    break;
                }
            }
            if line != b"STARTTLS\n" {
                let _ = s.write_all(b"500 unknown command\r\n").await;
                return;
            }
            let _ = s.write_all(b"220 go ahead\r\n").await;
            if let Ok(mut tls) = acceptor.accept(s).await {
                let _ = tls.write_all(b"250 secure\r\n").await;
                let _ = tls.flush().await;
                let mut buf = [0u8; 256];
                let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
            }
        }
    })
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
  tcp_tls12:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ca.pem
        server_name: probe.test
        max_version: TLS12
  tcp_starttls:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220 plain"
        - send: "STARTTLS"
        - expect: "^220 go"
        - starttls: true
        - expect: "^250 secure"
        - send: "QUIT"
      tls_config:
        ca_file: ca.pem
        server_name: localhost
  tcp_starttls_untrusted:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220 plain"
        - send: "STARTTLS"
        - expect: "^220 go"
        - starttls: true
        - expect: "^250 secure"
  tcp_starttls_refused:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220 plain"
        - send: "HELLO"
        - expect: "^220 go"
        - starttls: true
      tls_config:
        ca_file: ca.pem
  tcp_mtls:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ca.pem
        cert_file: client.pem
        key_file: client.key
        server_name: localhost
      query_response:
        - expect: "^220"
  tcp_mtls_no_cert:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ca.pem
        server_name: localhost
      query_response:
        - expect: "^220"
  tcp_token_named:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220 token=(?P<tok>\\w+) ready$"
          send: "AUTH ${{tok}}"
        - expect: "^250 ok$"
  tcp_token_numbered:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "token=(\\w+)"
          send: "AUTH $1"
        - expect: "^250"
  tcp_token_missing_group:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "token=(\\w+)"
          send: "AUTH $2"
        - expect: "^250"
  tcp_two_lines:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220-first"
        - expect: "^220 second"
  tcp_whole_line:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220 ready$"
  smtp_starttls:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls_config:
        ca_file: ca.pem
        server_name: localhost
      query_response:
        - expect: "^220 "
        - send: "EHLO prober"
        - expect: "^250-STARTTLS"
        - expect: "^250 "
        - send: "STARTTLS"
        - expect: "^220"
        - starttls: true
        - send: "EHLO prober"
        - expect: "^250 "
        - send: "QUIT"
  tcp_tls_chain:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: chain-ca.pem
        server_name: localhost
  tcp_mtls_no_key:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ca.pem
        cert_file: client.pem
  tcp_tls_min_above_max:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ca.pem
        min_version: TLS13
        max_version: TLS12
  tcp_tls_then_starttls:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: ca.pem
        server_name: localhost
      query_response:
        - expect: "^220"
        - starttls: true
  http_2xx:
    prober: http
"#,
        ca = ca_file.display()
    )
}

/// Both exporters on the same config, started in the same working directory (relative
/// TLS file names are resolved against it, by both).
struct Pair {
    blackbox: Proc,
    ours: Proc,
    _dir: tempfile::TempDir,
    tls_port: u16,
    starttls_port: u16,
    mtls_port: u16,
    chain_port: u16,
}

fn start_pair() -> Option<Pair> {
    let binary = blackbox_binary()?;
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let tls_port = tls_server(pki.server_config(false));
    let starttls_port = starttls_server(pki.server_config(false));
    let mtls_port = tls_server(pki.server_config(true));
    let chain_port = tls_server(chain_server_config(dir.path()));
    let yml = dir.path().join("blackbox.yml");
    std::fs::write(&yml, blackbox_yml(&dir.path().join("ca.pem"))).unwrap();

    let bb_addr = api_addr();
    let mut bb = Command::new(binary);
    bb.arg(format!("--config.file={}", yml.display()))
        .arg(format!("--web.listen-address={bb_addr}"))
        .current_dir(dir.path());
    let blackbox = Proc::spawn(bb, bb_addr, "/-/healthy");

    let our_addr = api_addr();
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
        .env("PORTWARDEN_LOG", "info")
        .current_dir(dir.path());
    let ours = Proc::spawn(pw, our_addr, "/healthz");
    Some(Pair {
        blackbox,
        ours,
        _dir: dir,
        tls_port,
        starttls_port,
        mtls_port,
        chain_port,
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
        // HELP and TYPE lines too: the same texts, word for word.
        let meta = |t: &str| -> Vec<String> {
            let mut m: Vec<String> = t
                .lines()
                .filter(|l| l.starts_with('#'))
                .map(str::to_string)
                .collect();
            m.sort();
            m
        };
        assert_eq!(meta(&otext), meta(&btext), "HELP/TYPE for {query}");
        let (b, o) = (samples(&btext), samples(&otext));
        if std::env::var("SHOW").is_ok() {
            eprintln!("== {query}\n-- blackbox:\n{btext}-- ours:\n{otext}");
        }
        let names = |m: &BTreeMap<String, f64>| -> Vec<String> { m.keys().cloned().collect() };
        assert_eq!(
            names(&o),
            names(&b),
            "metric names for {query}:\nours:\n{otext}\nblackbox:\n{btext}"
        );
        for (k, v) in &b {
            if TIMINGS.contains(&k.as_str()) {
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

/// The one `probe_ssl_last_chain_info` series of `m`.
fn last_chain_info(m: &BTreeMap<String, f64>) -> &str {
    let found: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("probe_ssl_last_chain_info{"))
        .collect();
    assert_eq!(found.len(), 1, "{m:?}");
    found[0]
}

#[test]
fn probe_agrees_with_blackbox_exporter_on_starttls_client_certificates_and_chain_info() {
    let Some(pair) = start_pair() else { return };

    // The leaf's details as Go writes them: most specific first, RFC 2253 escapes (the
    // text format then doubles each backslash), DNS names only.
    let tls = pair.compare(&format!(
        "module=tcp_tls&target=127.0.0.1:{}",
        pair.tls_port
    ));
    let info = last_chain_info(&tls);
    for part in [
        r#"issuer="CN=portwarden test ca,O=Portwarden,C=DE""#,
        r#"subject="CN=localhost,OU=\\#probe,O=Portwarden\\, Tests""#,
        r#"subjectalternative="localhost,probe.test""#,
    ] {
        assert!(info.contains(part), "{part} in {info}");
    }
    assert_eq!(tls[info], 1.0);

    // The two expiry gauges part: every presented certificate for the earliest, the
    // verified chain (root included, the expired cross-signature left out) for the last.
    let chain = pair.compare(&format!(
        "module=tcp_tls_chain&target=127.0.0.1:{}",
        pair.chain_port
    ));
    assert_eq!(chain["probe_success"], 1.0);
    assert_eq!(chain["probe_ssl_earliest_cert_expiry"], 1_609_459_200.0);
    assert_eq!(
        chain["probe_ssl_last_chain_expiry_timestamp_seconds"],
        1_861_920_000.0
    );

    // max_version TLS12 and a relative ca_file (against the working directory).
    let tls12 = pair.compare(&format!(
        "module=tcp_tls12&target=127.0.0.1:{}",
        pair.tls_port
    ));
    assert_eq!(tls12["probe_success"], 1.0);
    assert_eq!(tls12["probe_tls_version_info{version=\"TLS 1.2\"}"], 1.0);

    // STARTTLS in place: plain banner, STARTTLS, the handshake, the dialog inside TLS.
    let st = pair.compare(&format!(
        "module=tcp_starttls&target=127.0.0.1:{}",
        pair.starttls_port
    ));
    assert_eq!(st["probe_success"], 1.0);
    assert_eq!(st["probe_ssl_earliest_cert_expiry"], 1_893_456_000.0);
    assert_eq!(
        st["probe_ssl_last_chain_expiry_timestamp_seconds"],
        1_893_456_000.0
    );
    assert_eq!(st["probe_tls_version_info{version=\"TLS 1.3\"}"], 1.0);
    assert_eq!(last_chain_info(&st), last_chain_info(&tls));

    // A certificate the system roots do not trust: the handshake fails, no TLS metrics.
    let untrusted = pair.compare(&format!(
        "module=tcp_starttls_untrusted&target=127.0.0.1:{}",
        pair.starttls_port
    ));
    assert_eq!(untrusted["probe_success"], 0.0);
    assert!(!untrusted.contains_key("probe_tls_version_info{version=\"TLS 1.3\"}"));

    // The server refuses the request for TLS: a regex failure before any handshake.
    let refused = pair.compare(&format!(
        "module=tcp_starttls_refused&target=127.0.0.1:{}",
        pair.starttls_port
    ));
    assert_eq!(refused["probe_success"], 0.0);
    assert_eq!(refused["probe_failed_due_to_regex"], 1.0);

    // A server that requires a client certificate: with it, both succeed.
    let mtls = pair.compare(&format!(
        "module=tcp_mtls&target=127.0.0.1:{}",
        pair.mtls_port
    ));
    assert_eq!(mtls["probe_success"], 1.0);
    // Without it, both fail the same way: in TLS 1.3 the client's handshake completes (so
    // the TLS metrics are there) and the server's alert ends the first read.
    let no_cert = pair.compare(&format!(
        "module=tcp_mtls_no_cert&target=127.0.0.1:{}",
        pair.mtls_port
    ));
    assert_eq!(no_cert["probe_success"], 0.0);
    assert_eq!(no_cert["probe_failed_due_to_regex"], 0.0);

    // Modules blackbox loads but whose every probe fails: the same 200 and gauges.
    for module in ["tcp_mtls_no_key", "tcp_tls_min_above_max"] {
        let m = pair.compare(&format!(
            "module={module}&target=127.0.0.1:{}",
            pair.mtls_port
        ));
        assert_eq!(m["probe_success"], 0.0, "{module}");
        assert!(!m.contains_key("probe_tls_version_info{version=\"TLS 1.3\"}"));
    }
    // A handshake inside TLS fails; the first handshake's metrics stay.
    let twice = pair.compare(&format!(
        "module=tcp_tls_then_starttls&target=127.0.0.1:{}",
        pair.tls_port
    ));
    assert_eq!(twice["probe_success"], 0.0);
    assert_eq!(twice["probe_tls_version_info{version=\"TLS 1.3\"}"], 1.0);
}

/// `send` after `expect` expands the match's capture groups (named, numbered, missing), and
/// `$` anchors before a `\r\n` (blackbox matches lines without their line end).
#[test]
fn probe_agrees_with_blackbox_exporter_on_capture_expansion_and_line_ends() {
    let Some(pair) = start_pair() else { return };
    let token = token_server();
    for (module, success, regex) in [
        ("tcp_token_named", 1.0, 0.0),
        ("tcp_token_numbered", 1.0, 0.0),
        // `$2` is empty: the server answers `500 bad token` and closes.
        ("tcp_token_missing_group", 0.0, 1.0),
    ] {
        let m = pair.compare(&format!("module={module}&target=127.0.0.1:{token}"));
        assert_eq!(m["probe_success"], success, "{module}");
        assert_eq!(m["probe_failed_due_to_regex"], regex, "{module}");
    }
}

/// How a server cuts what it writes.
#[derive(Debug, Clone, Copy)]
enum Split {
    Whole,
    Lines,
    Bytes,
}

/// What a server does after writing.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    StayOpen,
    Close,
    Reset,
}

/// A server that writes `reply` cut as `split` says, then stays open (for 3 s), closes or
/// resets.
fn split_server(reply: &'static [u8], split: Split, then: Then) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let pieces: Vec<&[u8]> = match split {
                    Split::Whole => vec![reply],
                    Split::Lines => reply.split_inclusive(|&b| b == b'\n').collect(),
                    Split::Bytes => reply.chunks(1).collect(),
                };
                for piece in pieces {
                    let _ = s.write_all(piece);
                    thread::sleep(Duration::from_millis(2));
                }
                match then {
                    Then::StayOpen => thread::sleep(Duration::from_secs(3)),
                    Then::Close => {}
                    Then::Reset => {
                        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    }
                }
            });
        }
    });
    port
}

#[test]
fn probe_agrees_with_blackbox_exporter_on_consecutive_expects_however_the_reply_is_cut() {
    let Some(pair) = start_pair() else { return };
    // Both awaited lines in one read, one read each, or byte by byte: the second entry is
    // decided from what was already received.
    for split in [Split::Whole, Split::Lines, Split::Bytes] {
        let port = split_server(
            b"220-first line\r\n220 second line\r\n",
            split,
            Then::StayOpen,
        );
        let started = Instant::now();
        let m = pair.compare(&format!("module=tcp_two_lines&target=127.0.0.1:{port}"));
        assert_eq!(m["probe_success"], 1.0, "{split:?}");
        assert_eq!(m["probe_failed_due_to_regex"], 0.0, "{split:?}");
        assert!(started.elapsed() < Duration::from_millis(900), "{split:?}");
    }
    // The second line never comes and the server closes: failed due to regex.
    let port = split_server(b"220-first line\r\n", Split::Whole, Then::Close);
    let m = pair.compare(&format!("module=tcp_two_lines&target=127.0.0.1:{port}"));
    assert_eq!(m["probe_success"], 0.0);
    assert_eq!(m["probe_failed_due_to_regex"], 1.0);
}

#[test]
fn probe_failed_due_to_regex_follows_blackbox_on_every_way_a_tcp_probe_ends() {
    let Some(pair) = start_pair() else { return };
    // (what the server writes, then, module, success, failed due to regex)
    let cases: [(&'static [u8], Then, &str, f64, f64); 9] = [
        // Non-matching data, then silence until the deadline: a timeout, not the regex.
        (b"220 ready\r\n", Then::StayOpen, "tcp_ssh", 0.0, 0.0),
        // Non-matching data, then the server hangs up: the regex.
        (b"220 ready\r\n", Then::Close, "tcp_ssh", 0.0, 1.0),
        // Non-matching data, then a reset: a read error, not the regex.
        (b"220 ready\r\n", Then::Reset, "tcp_ssh", 0.0, 0.0),
        // Nothing at all, then a close: the regex (no line matched).
        (b"", Then::Close, "tcp_ssh", 0.0, 1.0),
        // A matching line without its line end: a line once the server closes...
        (b"220 ready", Then::Close, "tcp_whole_line", 1.0, 0.0),
        // ...but not while the connection stays open.
        (b"220 ready", Then::StayOpen, "tcp_whole_line", 0.0, 0.0),
        // A CRLF line end is not part of the line: `$` matches before it.
        (b"220 ready\r\n", Then::StayOpen, "tcp_whole_line", 1.0, 0.0),
        // A matching line after lines that do not match.
        (
            b"100 wait\r\n101 wait\r\n220 ready\r\n",
            Then::StayOpen,
            "tcp_whole_line",
            1.0,
            0.0,
        ),
        // A line longer than blackbox's 64 KiB line buffer, never ended.
        (LONG_LINE, Then::StayOpen, "tcp_ssh", 0.0, 0.0),
    ];
    for (reply, then, module, success, regex) in cases {
        let port = split_server(reply, Split::Whole, then);
        let what = format!(
            "{module} after {:?} and {then:?}",
            String::from_utf8_lossy(&reply[..reply.len().min(40)])
        );
        let m = pair.compare(&format!("module={module}&target=127.0.0.1:{port}"));
        assert_eq!(m["probe_success"], success, "{what}");
        assert_eq!(m["probe_failed_due_to_regex"], regex, "{what}");
    }
}

/// 70,000 bytes without a line end.
const LONG_LINE: &[u8] = &[b'x'; 70_000];

#[test]
fn probe_agrees_with_blackbox_exporter_on_smtp_starttls_against_aiosmtpd() {
    let Some(pair) = start_pair() else { return };
    let Some(python) = support::aiosmtpd() else {
        return;
    };
    let dir = pair._dir.path();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../notify/tests/support/smtpd.py"
    );
    let mut smtpd = Command::new(python)
        .arg(script)
        .args(["--mode", "starttls", "--cert"])
        .arg(dir.join("leaf.pem"))
        .arg("--key")
        .arg(dir.join("leaf.key"))
        .arg("--out")
        .arg(dir.join("mail.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = support::first_line(&mut smtpd);
    let port: u16 = ready
        .trim()
        .strip_prefix("READY ")
        .unwrap()
        .parse()
        .unwrap();
    // The usual STARTTLS module: five runs, every one a success on both sides.
    for run in 0..5 {
        let m = pair.compare(&format!("module=smtp_starttls&target=127.0.0.1:{port}"));
        assert_eq!(m["probe_success"], 1.0, "run {run}");
        assert_eq!(m["probe_failed_due_to_regex"], 0.0, "run {run}");
        assert_eq!(
            m["probe_tls_version_info{version=\"TLS 1.3\"}"], 1.0,
            "run {run}"
        );
    }
    // debug=true says which entry matched what, as blackbox's log does.
    let (status, body) = get(
        pair.ours.addr,
        &format!("/probe?module=smtp_starttls&target=127.0.0.1:{port}&debug=true"),
        &[],
    )
    .unwrap();
    assert_eq!(status, 200);
    for line in [
        "Regexp matched entry_number=0 expect=\"a line matching /^220 /\"",
        "Sending line entry_number=1 line=\"EHLO prober\\n\"",
        "Regexp matched entry_number=2 expect=\"a line matching /^250-STARTTLS/\"",
        "Regexp matched entry_number=3 expect=\"a line matching /^250 /\"",
        "TLS Handshake (client) succeeded entry_number=6",
    ] {
        assert!(body.contains(line), "{line:?} missing from:\n{body}");
    }
    drop(smtpd.stdin.take());
    let _ = smtpd.kill();
    let _ = smtpd.wait();
}

#[test]
fn probe_debug_names_the_entry_that_was_waiting_and_what_it_had() {
    let Some(pair) = start_pair() else { return };
    let port = split_server(b"220-first line\r\n", Split::Whole, Then::Close);
    let (status, body) = get(
        pair.ours.addr,
        &format!("/probe?module=tcp_two_lines&target=127.0.0.1:{port}&debug=true"),
        &[],
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains(
            "Regexp did not match before the connection closed entry_number=1 \
             expect=\"a line matching /^220 second/\" received=\"\""
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"Regexp matched entry_number=0 expect="a line matching /^220-first/" read="220-first line\r\n""#),
        "{body}"
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
    let addr = api_addr();
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
            // No Accept: the text format 0.0.4, counters named with `_total` in # TYPE too.
            assert!(!text.contains("# EOF"), "{text}");
            assert!(
                text.contains("# TYPE portwarden_checks_total counter"),
                "{text}"
            );
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
    assert_eq!(
        m["portwarden_checks_total{monitor=\"web\",result=\"critical\"}"],
        0.0
    );
    assert!(m["portwarden_check_duration_seconds_count{monitor=\"web\"}"] >= 2.0);
    assert_eq!(m["portwarden_monitors"], 2.0);
    assert_eq!(m["portwarden_store_up"], 1.0);
    assert!(m.contains_key("portwarden_scheduler_start_lag_p99_seconds"));
}

/// Keys blackbox 0.23 refuses (later versions' `expect_bytes` and `labels`, a typo): the
/// real exporter refuses the whole file naming the line; portwarden refuses only the module,
/// naming the key and the same line, and serves the others.
#[test]
fn keys_blackbox_0_23_refuses_are_refused_per_module_with_key_and_line() {
    let Some(binary) = blackbox_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let banner = banner_server(b"220 ready\r\n");
    let cases = [
        ("expect_bytes", "        - expect_bytes: \"220\"\n"),
        ("labels", "        - expect: \"^220\"\n          labels:\n            - name: a\n              value: b\n"),
        ("sned", "        - sned: \"QUIT\"\n"),
    ];
    for (key, step) in cases {
        let yml = dir.path().join(format!("{key}.yml"));
        let text = format!(
            "modules:\n  good:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip4\n  \
             bad:\n    prober: tcp\n    tcp:\n      query_response:\n{step}"
        );
        std::fs::write(&yml, &text).unwrap();
        let line = text
            .lines()
            .position(|l| l.contains(&format!("{key}:")))
            .unwrap()
            + 1;
        let out = Command::new(binary)
            .arg("--config.check")
            .arg(format!("--config.file={}", yml.display()))
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}: blackbox accepted it");
        assert!(
            log.contains(&format!("line {line}: field {key} not found")),
            "{key}: {log}"
        );

        let addr = api_addr();
        let config = dir.path().join(format!("{key}.toml"));
        std::fs::write(
            &config,
            format!(
                "[daemon]\nlisten = \"{addr}\"\nstate_dir = \"state-{key}\"\nblackbox_config = \"{key}.yml\"\n\n\
                 [[monitor]]\nname = \"self\"\ntarget = \"{addr}\"\n"
            ),
        )
        .unwrap();
        let mut pw = Command::new(env!("CARGO_BIN_EXE_portwarden"));
        pw.arg("run")
            .arg("-c")
            .arg(&config)
            .env("PORTWARDEN_LOG", "info")
            .current_dir(dir.path());
        let ours = Proc::spawn(pw, addr, "/healthz");
        let (status, body) = get(
            addr,
            &format!("/probe?module=bad&target=127.0.0.1:{banner}"),
            &[],
        )
        .unwrap();
        assert_eq!(status, 400, "{key}: {body}");
        let at = format!("tcp.query_response[0].{key} (line {line})");
        assert!(body.contains(&at), "{key}: {body}");
        assert!(
            ours.log.lock().unwrap().contains(&at),
            "{key}: the warning at load"
        );
        let (status, text) = get(
            addr,
            &format!("/probe?module=good&target=127.0.0.1:{banner}"),
            &[],
        )
        .unwrap();
        assert_eq!(status, 200);
        assert_eq!(samples(&text)["probe_success"], 1.0, "{text}");
    }
}
