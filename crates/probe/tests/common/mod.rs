//! Helpers for the probe's integration tests: hostile and friendly servers on loopback,
//! a throw-away PKI made with rcgen, and a look at the kernel's TCP table.
//!
//! Every server binds 127.0.0.1:0 or [::1]:0 and lives as a tokio task of the test that
//! started it; nothing here talks to any other address.

// Each test binary uses its own subset of these helpers, and a helper that cannot set up
// its server should fail the test on the spot: a panic is the report.
#![allow(
    dead_code,
    clippy::unwrap_used,
    reason = "each test file uses part of it; test helpers may unwrap (STYLE.md)"
)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portwarden_probe::{Expectation, Limits, MatchMode, Matcher, ProbeSpec, Step, Target};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Starts a server on `bind` (port 0) that runs `behaviour` for every connection.
pub async fn serve_on<F, Fut>(bind: &str, behaviour: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(behaviour(stream));
        }
    });
    addr
}

/// Starts a server on 127.0.0.1 that runs `behaviour` for every connection.
pub async fn serve<F, Fut>(behaviour: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_on("127.0.0.1:0", behaviour).await
}

/// A server that writes `banner` and then keeps the connection open, reading and discarding.
pub async fn banner_server(banner: &'static [u8]) -> SocketAddr {
    serve(move |mut s| async move {
        let _ = s.write_all(banner).await;
        drain(&mut s).await;
    })
    .await
}

/// Reads until EOF or error; returns everything read.
pub async fn drain<S: AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

/// Reads one line (up to and including `\n`) byte by byte, so nothing after it is consumed
/// (a STARTTLS handshake follows on the same socket). `None` on EOF or error.
pub async fn read_line<S: AsyncRead + Unpin>(s: &mut S) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let mut b = [0u8; 1];
        match s.read(&mut b).await {
            Ok(1) => {
                line.push(b[0]);
                if b[0] == b'\n' {
                    return Some(line);
                }
            }
            _ => return None,
        }
    }
}

/// Closes `s` with a reset (SO_LINGER 0) instead of a FIN.
pub fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// A port on 127.0.0.1 where nothing listens: bound, then released.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// Counts connections a server accepted.
#[derive(Debug, Default, Clone)]
pub struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn target(addr: SocketAddr) -> Target {
    addr.to_string().parse().unwrap()
}

/// Short limits so the hostile cases finish fast.
pub fn limits() -> Limits {
    Limits {
        connect_timeout: Duration::from_secs(1),
        deadline: Duration::from_secs(2),
        idle_timeout: Duration::from_millis(500),
        max_bytes: 64 * 1024,
    }
}

/// A plain connect check of `addr` with [`limits`].
pub fn spec(addr: SocketAddr) -> ProbeSpec {
    let mut spec = ProbeSpec::connect(target(addr));
    spec.limits = limits();
    spec
}

/// A check of `addr` that expects `matcher` in the first answer.
pub fn expecting(addr: SocketAddr, matcher: Matcher) -> ProbeSpec {
    let mut spec = spec(addr);
    spec.steps.push(Step::Expect(Expectation::one(matcher)));
    spec
}

pub fn contains(s: &str) -> Matcher {
    Matcher::Contains(s.as_bytes().to_vec())
}

pub fn prefix(s: &str) -> Matcher {
    Matcher::Prefix(s.as_bytes().to_vec())
}

pub fn all(matchers: Vec<Matcher>) -> Expectation {
    Expectation {
        matchers,
        mode: MatchMode::All,
    }
}

pub fn any(matchers: Vec<Matcher>) -> Expectation {
    Expectation {
        matchers,
        mode: MatchMode::Any,
    }
}

/// Whether the kernel's TCP table holds a connection from `local` to `remote` in a state
/// only the side that closed first goes through (FIN_WAIT1, FIN_WAIT2, TIME_WAIT).
pub fn active_close_state(local: SocketAddr, remote: SocketAddr) -> Option<String> {
    let (file, l, r) = match (local.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => ("/proc/net/tcp", hex_addr(local), hex_addr(remote)),
        _ => ("/proc/net/tcp6", hex_addr(local), hex_addr(remote)),
    };
    let table = std::fs::read_to_string(file).unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let named = match f.get(3).copied() {
            Some("04") => "FIN_WAIT1",
            Some("05") => "FIN_WAIT2",
            Some("06") => "TIME_WAIT",
            _ => return None,
        };
        (f[1] == l && f[2] == r).then(|| named.to_string())
    })
}

/// An address as /proc/net/tcp{,6} prints it: the raw 32-bit words in host order, then
/// the port.
fn hex_addr(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => format!("{:08X}", u32::from_ne_bytes(v4.octets())),
        IpAddr::V6(v6) => v6
            .octets()
            .chunks(4)
            .map(|w| format!("{:08X}", u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .collect(),
    };
    format!("{ip}:{:04X}", addr.port())
}

/// A scratch directory for PEM files, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "portwarden-probe-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate and its key, as rustls wants them and as PEM.
#[derive(Debug)]
pub struct Issued {
    pub der: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Clone for Issued {
    fn clone(&self) -> Self {
        Self {
            der: self.der.clone(),
            key: self.key.clone_key(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

/// A test certificate authority.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// When a certificate is valid, relative to now.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub from: time::Duration,
    pub until: time::Duration,
}

impl Validity {
    /// Valid since yesterday for `days` more days.
    pub fn days(days: i64) -> Self {
        Self {
            from: time::Duration::days(-1),
            until: time::Duration::days(days) + time::Duration::hours(1),
        }
    }

    /// Expired `days` days ago.
    pub fn expired(days: i64) -> Self {
        Self {
            from: time::Duration::days(-30),
            until: time::Duration::days(-days) - time::Duration::hours(1),
        }
    }
}

fn params(cn: &str, names: &[&str], validity: Validity) -> CertificateParams {
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now + validity.from;
    p.not_after = now + validity.until;
    p
}

fn issued(cert: &rcgen::Certificate, key: &KeyPair) -> Issued {
    Issued {
        der: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut p = params("portwarden test CA", &[], Validity::days(365));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = p.self_signed(&key).unwrap();
        Self { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        roots
    }

    /// A server (and client) certificate for `names`, signed by this CA.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut p = params(names.first().copied().unwrap_or("client"), names, validity);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        issued(&cert, &key)
    }
}

/// A self-signed certificate for `names`, trusted by nobody. Its subject is unique on
/// purpose: a system store may hold a root named `CN=localhost`, and a subject that
/// matches a root's makes the verifier try that root instead of saying "unknown issuer".
pub fn self_signed(names: &[&str]) -> Issued {
    let key = KeyPair::generate().unwrap();
    let cert = params("portwarden self-signed test", names, Validity::days(90))
        .self_signed(&key)
        .unwrap();
    issued(&cert, &key)
}

/// A rustls server configuration presenting `leaf`; with `client_roots`, client
/// certificates signed by those roots are required.
pub fn server_config(leaf: &Issued, client_roots: Option<RootCertStore>) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_roots {
        None => builder.with_no_client_auth(),
        Some(roots) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap(),
        ),
    };
    Arc::new(
        builder
            .with_single_cert(vec![leaf.der.clone()], leaf.key.clone_key())
            .unwrap(),
    )
}

/// A TLS server: handshake, then `banner`, then read until the client goes away.
pub async fn tls_banner_server(config: Arc<ServerConfig>, banner: &'static [u8]) -> SocketAddr {
    tls_banner_server_with(config, banner, false).await
}

/// [`tls_banner_server`], with Nagle's algorithm off when `nodelay`: the reference a test
/// compares the usual server (Nagle on) with.
pub async fn tls_banner_server_with(
    config: Arc<ServerConfig>,
    banner: &'static [u8],
    nodelay: bool,
) -> SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    serve(move |s| {
        let acceptor = acceptor.clone();
        async move {
            if nodelay {
                let _ = s.set_nodelay(true);
            }
            let Ok(mut tls) = acceptor.accept(s).await else {
                return;
            };
            let _ = tls.write_all(banner).await;
            let _ = tls.flush().await;
            drain(&mut tls).await;
        }
    })
    .await
}
