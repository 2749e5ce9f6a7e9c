//! Presets against real daemons on loopback: OpenSSH, Redis, memcached, an SMTP server with
//! STARTTLS (aiosmtpd) and Python's HTTP server.
//!
//! Each test starts its daemon as a child process on 127.0.0.1 and a free high port, waits
//! (at most [`READY_WITHIN`]) until it accepts connections, probes it, and kills it by PID
//! when the guard drops. A test skips (with a message) only when its daemon is not
//! installed; CI installs them all (`scripts/install-test-deps`).
//!
//! Cross-checks run a preset against the wrong daemon: they prove each parser can fail,
//! and that it fails on the reply itself, well before any timeout, except where nothing
//! but silence can end the read (a daemon that waits for the client to speak, or a text
//! greeting the SSH parser must allow before the identification line).

/// Skips a test whose daemon is missing, except under CI, where
/// `scripts/install-test-deps` must have installed it: there a missing daemon fails.
macro_rules! skip {
    ($($arg:tt)*) => {{
        let why = format!($($arg)*);
        assert!(std::env::var_os("CI").is_none(), "CI must run this test: {why}");
        eprintln!("skipping: {why}");
    }};
}

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portwarden_probe::presets::{self, Preset};
use portwarden_probe::{Host, Probe, ProbeResult, ProbeSpec, Reason, State, Target, Verify};
use tokio::time::{sleep, timeout, Instant};

/// Longest wait for a daemon to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Longest wait for a helper command (key generation, an import check).
const COMMAND_WITHIN: Duration = Duration::from_secs(20);
/// The probes' deadline: every probe here must finish well within it.
const DEADLINE: Duration = Duration::from_secs(5);
/// The probes' idle timeout. A verdict reached sooner was decided by the reply itself.
const IDLE: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------
// Scaffolding: temporary directories, daemons, probes.

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "portwarden-{tag}-{}-{nanos}-{n}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon started by a test; killed by PID and reaped when dropped.
struct Daemon {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
    /// Signal that shuts the daemon down cleanly before it is killed (PostgreSQL would
    /// leave its shared memory behind after SIGKILL).
    stop_signal: Option<&'static str>,
}

impl Daemon {
    fn target(&self) -> Target {
        Target {
            host: Host::Ip(Ipv4Addr::LOCALHOST.into()),
            port: self.port,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(signal) = self.stop_signal {
            let pid = self.child.id().to_string();
            let _ = Command::new("kill").args(["-s", signal, &pid]).status();
            let give_up = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < give_up {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Child::kill signals exactly this PID; wait() reaps it so no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (the kernel's choice for 127.0.0.1:0).
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("a bound address").port()
}

/// The path of `name` in `PATH` or the sbin directories (not always in root's `PATH`).
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Starts the daemon `make(port)` builds on a free port and waits until it accepts
/// connections. A daemon that exits before that (the port was taken in between) is
/// retried on another port.
async fn start(
    name: &'static str,
    dir: &TempDir,
    stop_signal: Option<&'static str>,
    make: impl Fn(u16) -> Command,
) -> Daemon {
    for attempt in 0..5 {
        let port = free_port();
        let log = dir.path(&format!("{name}-{attempt}.log"));
        let out = File::create(&log).expect("create the daemon log");
        let err = out.try_clone().expect("share the daemon log");
        let child = make(port)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut daemon = Daemon {
            name,
            child,
            port,
            log,
            stop_signal,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let give_up = Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = daemon.child.try_wait().expect("poll the daemon") {
                eprintln!(
                    "{name} exited ({status}) on port {port}, retrying:\n{}",
                    daemon.log_text()
                );
                break;
            }
            let connected = timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
            if matches!(connected.await, Ok(Ok(_))) {
                return daemon;
            }
            assert!(
                Instant::now() < give_up,
                "{name} did not accept connections within {READY_WITHIN:?}:\n{}",
                daemon.log_text()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("{name} could not bind a free port in 5 attempts");
}

/// Runs a helper command to completion, at most [`COMMAND_WITHIN`]; true if it succeeded.
async fn run_command(cmd: Command) -> bool {
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match timeout(COMMAND_WITHIN, cmd.status()).await {
        Ok(Ok(status)) => status.success(),
        _ => false,
    }
}

/// A spec for `preset` against `target` with small limits.
fn spec_for(preset: &Preset, target: Target, starttls: bool, verify: Verify) -> ProbeSpec {
    let mut spec = ProbeSpec::connect(target);
    preset
        .apply(&mut spec, starttls)
        .expect("the preset supports this TLS mode");
    spec.limits.connect_timeout = Duration::from_secs(2);
    spec.limits.deadline = DEADLINE;
    spec.limits.idle_timeout = IDLE;
    spec.tls.verify = verify;
    spec
}

/// Runs `preset` against the daemon and checks the run stayed within the deadline (plus
/// the bounded polite quit).
async fn probe(preset: &str, daemon: &Daemon, starttls: bool, verify: Verify) -> ProbeResult {
    let preset = presets::find(preset).expect("a known preset");
    let probe =
        Probe::new(spec_for(preset, daemon.target(), starttls, verify)).expect("a valid spec");
    let began = Instant::now();
    let result = probe.run().await;
    let elapsed = began.elapsed();
    eprintln!(
        "{} against {} took {elapsed:?}: {} {:?} {} (received \"{}\")",
        preset.name, daemon.name, result.state, result.reason, result.message, result.received
    );
    assert!(
        elapsed < DEADLINE + Duration::from_secs(1),
        "{} against {} took {elapsed:?}",
        preset.name,
        daemon.name
    );
    result
}

/// Asserts a result is OK and was decided by the reply, not by a timeout.
fn assert_ok(result: &ProbeResult) {
    assert_eq!(result.state, State::Ok, "{result:#?}");
    assert_eq!(result.reason, None, "{result:#?}");
    assert!(result.timings.total < IDLE, "{result:#?}");
}

/// Asserts a result is an unexpected response, decided before `within`.
fn assert_mismatch(result: &ProbeResult, within: Duration) {
    assert_eq!(result.state, State::Critical, "{result:#?}");
    assert_eq!(
        result.reason,
        Some(Reason::UnexpectedResponse),
        "{result:#?}"
    );
    assert!(result.timings.total < within, "{result:#?}");
}

/// Polls `daemon`'s log until it contains `needle`, at most `within`.
async fn log_shows(daemon: &Daemon, needle: &str, within: Duration) -> bool {
    let give_up = Instant::now() + within;
    while Instant::now() < give_up {
        if daemon.log_text().contains(needle) {
            return true;
        }
        sleep(Duration::from_millis(50)).await;
    }
    daemon.log_text().contains(needle)
}

// ---------------------------------------------------------------------------------------
// Daemons.

/// OpenSSH's sshd in the foreground, logging to stderr, with a fresh ed25519 host key.
async fn start_sshd(dir: &TempDir) -> Option<Daemon> {
    // sshd re-executes itself and insists on an absolute path.
    let sshd = Path::new("/usr/sbin/sshd");
    let Some(keygen) = find_binary("ssh-keygen") else {
        skip!("ssh-keygen is not installed");
        return None;
    };
    if !sshd.is_file() {
        skip!("/usr/sbin/sshd is not installed (openssh-server)");
        return None;
    }
    // The privilege-separation directory sshd chroots into when it runs as root (a
    // non-root sshd does without it, and could not create it anyway).
    if let Err(e) = std::fs::create_dir_all("/run/sshd") {
        eprintln!("cannot create /run/sshd ({e}); fine unless sshd runs as root");
    }
    let key = dir.path("hostkey");
    let mut keygen = Command::new(keygen);
    keygen
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key);
    assert!(run_command(keygen).await, "ssh-keygen failed");
    let config = dir.path("sshd_config");
    Some(
        start("sshd", dir, None, |port| {
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nPidFile none\nUsePAM no\n\
                     StrictModes no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nAuthorizedKeysFile none\n\
                     LogLevel INFO\n"
                ),
            )
            .expect("write sshd_config");
            let mut cmd = Command::new(sshd);
            cmd.args(["-D", "-e", "-f"])
                .arg(&config)
                .arg("-h")
                .arg(&key);
            cmd
        })
        .await,
    )
}

/// redis-server in the foreground with no persistence; `extra` adds arguments.
async fn start_redis(dir: &TempDir, extra: &'static [&'static str]) -> Option<Daemon> {
    let Some(redis) = find_binary("redis-server") else {
        skip!("redis-server is not installed");
        return None;
    };
    Some(
        start("redis-server", dir, None, |port| {
            let mut cmd = Command::new(&redis);
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no"])
                .args(extra);
            cmd
        })
        .await,
    )
}

/// memcached on TCP only; as root it needs a user to run as.
async fn start_memcached(dir: &TempDir) -> Option<Daemon> {
    let Some(memcached) = find_binary("memcached") else {
        skip!("memcached is not installed");
        return None;
    };
    Some(
        start("memcached", dir, None, |port| {
            let mut cmd = Command::new(&memcached);
            cmd.args(["-l", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .args(["-U", "0", "-u", "root"]);
            cmd
        })
        .await,
    )
}

/// Debian's Python, which has the Debian-packaged modules (not a pyenv `python3`), if it
/// can import `module`.
async fn debian_python_with(module: &str) -> Option<PathBuf> {
    let python = PathBuf::from("/usr/bin/python3");
    let mut import = Command::new(&python);
    import.args(["-c", &format!("import {module}")]);
    if python.is_file() && run_command(import).await {
        Some(python)
    } else {
        skip!("/usr/bin/python3 cannot import {module}");
        None
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, valid for 30 more days, written
/// as `cert.pem` and `key.pem`.
fn write_certificate(dir: &TempDir) -> (PathBuf, PathBuf) {
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("valid names");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "portwarden test server");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30);
    let key = rcgen::KeyPair::generate().expect("generate a key");
    let cert = params.self_signed(&key).expect("sign the certificate");
    let (cert_path, key_path) = (dir.path("cert.pem"), dir.path("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert.pem");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key.pem");
    (cert_path, key_path)
}

/// aiosmtpd with STARTTLS (`--tlscert`) or implicit TLS (`--smtpscert`) using
/// the certificate from [`write_certificate`]. Returns the daemon and the certificate.
async fn start_aiosmtpd(dir: &TempDir, implicit_tls: bool) -> Option<(Daemon, PathBuf)> {
    let python = debian_python_with("aiosmtpd").await?;
    let (cert, key) = write_certificate(dir);
    let (cert_flag, key_flag) = if implicit_tls {
        ("--smtpscert", "--smtpskey")
    } else {
        ("--tlscert", "--tlskey")
    };
    let daemon = start("aiosmtpd", dir, None, |port| {
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(cert_flag)
            .arg(&cert)
            .arg(key_flag)
            .arg(&key);
        cmd
    })
    .await;
    Some((daemon, cert))
}

/// Python's `http.server`, serving an empty directory.
async fn start_http_server(dir: &TempDir) -> Option<Daemon> {
    let python = debian_python_with("http.server").await?;
    let root = dir.path("www");
    std::fs::create_dir_all(&root).expect("create the web root");
    Some(
        start("http.server", dir, None, |port| {
            let mut cmd = Command::new(&python);
            cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
                .arg(&root)
                .arg(port.to_string());
            cmd
        })
        .await,
    )
}

/// The newest PostgreSQL server installed in Debian's layout, as its `bin` directory.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A command run as the `postgres` user (PostgreSQL refuses to run as root). `setpriv`
/// execs the program itself, so the child's PID is the server's.
fn as_postgres(program: PathBuf) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid",
        "postgres",
        "--regid",
        "postgres",
        "--init-groups",
        "--",
    ])
    .arg(program);
    cmd
}

/// A fresh PostgreSQL cluster with TLS on, using the certificate from
/// [`write_certificate`]. Returns the server and the certificate.
async fn start_postgres(dir: &TempDir) -> Option<(Daemon, PathBuf)> {
    let Some(bin) = postgres_bin() else {
        skip!("PostgreSQL is not installed (/usr/lib/postgresql/*/bin)");
        return None;
    };
    if std::fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        skip!("starting PostgreSQL as its own user needs root");
        return None;
    }
    let Some(ids) = postgres_ids().await else {
        skip!("there is no postgres user");
        return None;
    };
    let home = dir.path("pg");
    std::fs::create_dir_all(&home).expect("create the PostgreSQL home");
    let (cert, key) = write_certificate(dir);
    for path in [&home, &cert, &key] {
        std::os::unix::fs::chown(path, Some(ids.0), Some(ids.1)).expect("chown to postgres");
    }
    // PostgreSQL refuses a key others can read.
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("make the key private");
    let data = home.join("data");
    let mut initdb = as_postgres(bin.join("initdb"));
    initdb
        .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
        .arg(&data);
    assert!(run_command(initdb).await, "initdb failed");
    let daemon = start("postgres", dir, Some("INT"), |port| {
        let mut cmd = as_postgres(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&home)
            .args(["-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args(["-c", "ssl=on", "-c"])
            .arg(format!("ssl_cert_file={}", cert.display()))
            .arg("-c")
            .arg(format!("ssl_key_file={}", key.display()));
        cmd
    })
    .await;
    Some((daemon, cert))
}

/// The uid and gid of the `postgres` user, if there is one.
async fn postgres_ids() -> Option<(u32, u32)> {
    let mut id = tokio::process::Command::new("id");
    id.arg("postgres").kill_on_drop(true);
    let out = timeout(COMMAND_WITHIN, id.output()).await.ok()?.ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    // uid=101(postgres) gid=104(postgres) groups=...
    let number = |key: &str| -> Option<u32> {
        let rest = text.split(key).nth(1)?;
        rest.split('(').next()?.parse().ok()
    };
    Some((number("uid=")?, number("gid=")?))
}

// ---------------------------------------------------------------------------------------
// OpenSSH.

#[tokio::test]
async fn ssh_preset_reads_the_openssh_identification_and_disconnects_politely() {
    let dir = TempDir::new("sshd");
    let Some(sshd) = start_sshd(&dir).await else {
        return;
    };
    let result = probe("ssh", &sshd, false, Verify::SystemRoots).await;
    assert_ok(&result);
    assert!(
        result.received.starts_with("SSH-2.0-OpenSSH"),
        "{result:#?}"
    );
    // Our identification and SSH_MSG_DISCONNECT reached sshd, which logged a clean
    // disconnect instead of a missing identification.
    assert!(
        log_shows(
            &sshd,
            "Received disconnect from 127.0.0.1",
            Duration::from_secs(5)
        )
        .await,
        "sshd log:\n{}",
        sshd.log_text()
    );
    let log = sshd.log_text();
    eprintln!("sshd log:\n{log}");
    assert!(log.contains("portwarden probe"), "sshd log:\n{log}");
    assert!(
        !log.contains("did not receive identification"),
        "sshd log:\n{log}"
    );
}

#[tokio::test]
async fn smtp_preset_against_sshd_fails_on_the_identification_line() {
    let dir = TempDir::new("sshd-smtp");
    let Some(sshd) = start_sshd(&dir).await else {
        return;
    };
    assert_mismatch(
        &probe("smtp", &sshd, false, Verify::SystemRoots).await,
        IDLE,
    );
    // Binary-protocol parsers refuse the text line at once, too.
    assert_mismatch(
        &probe("http", &sshd, false, Verify::SystemRoots).await,
        IDLE,
    );
    assert_mismatch(
        &probe("postgres", &sshd, false, Verify::SystemRoots).await,
        IDLE,
    );
}

// ---------------------------------------------------------------------------------------
// Redis.

#[tokio::test]
async fn redis_preset_gets_pong() {
    let dir = TempDir::new("redis");
    let Some(redis) = start_redis(&dir, &[]).await else {
        return;
    };
    let result = probe("redis", &redis, false, Verify::SystemRoots).await;
    assert_ok(&result);
    assert!(result.received.starts_with("+PONG"), "{result:#?}");
}

#[tokio::test]
async fn redis_preset_counts_noauth_as_redis_answering() {
    let dir = TempDir::new("redis-auth");
    let Some(redis) = start_redis(&dir, &["--requirepass", "secret"]).await else {
        return;
    };
    let result = probe("redis", &redis, false, Verify::SystemRoots).await;
    assert_ok(&result);
    assert!(result.received.starts_with("-NOAUTH"), "{result:#?}");
}

#[tokio::test]
async fn memcached_preset_against_redis_fails_on_the_error_reply() {
    let dir = TempDir::new("redis-memcached");
    let Some(redis) = start_redis(&dir, &[]).await else {
        return;
    };
    let result = probe("memcached", &redis, false, Verify::SystemRoots).await;
    assert_mismatch(&result, IDLE);
    assert!(result.received.starts_with("-ERR"), "{result:#?}");
}

#[tokio::test]
async fn smtp_preset_against_silent_redis_times_out_at_the_deadline() {
    // Redis waits for the client to speak, so a greeting-first preset can only time out:
    // the one case where no parser can decide early.
    let dir = TempDir::new("redis-smtp");
    let Some(redis) = start_redis(&dir, &[]).await else {
        return;
    };
    let result = probe("smtp", &redis, false, Verify::SystemRoots).await;
    assert_eq!(result.state, State::Critical, "{result:#?}");
    assert_eq!(result.reason, Some(Reason::ReadTimeout), "{result:#?}");
    assert_eq!(result.bytes_received, 0, "{result:#?}");
}

// ---------------------------------------------------------------------------------------
// memcached.

#[tokio::test]
async fn memcached_preset_gets_version() {
    let dir = TempDir::new("memcached");
    let Some(memcached) = start_memcached(&dir).await else {
        return;
    };
    let result = probe("memcached", &memcached, false, Verify::SystemRoots).await;
    assert_ok(&result);
    assert!(result.received.starts_with("VERSION 1."), "{result:#?}");
}

#[tokio::test]
async fn redis_preset_against_memcached_fails_on_the_error_reply() {
    let dir = TempDir::new("memcached-redis");
    let Some(memcached) = start_memcached(&dir).await else {
        return;
    };
    let result = probe("redis", &memcached, false, Verify::SystemRoots).await;
    assert_mismatch(&result, IDLE);
    assert!(result.received.starts_with("ERROR"), "{result:#?}");
}

// ---------------------------------------------------------------------------------------
// SMTP with STARTTLS and SMTPS (aiosmtpd).

#[tokio::test]
async fn smtp_preset_reads_the_greeting_without_starttls() {
    let dir = TempDir::new("smtp-plain");
    let Some((smtp, _)) = start_aiosmtpd(&dir, false).await else {
        return;
    };
    let result = probe("smtp", &smtp, false, Verify::SystemRoots).await;
    assert_ok(&result);
    assert!(result.received.starts_with("220 "), "{result:#?}");
    assert!(result.tls.is_none(), "{result:#?}");
}

#[tokio::test]
async fn smtp_starttls_verified_by_the_servers_certificate_reports_it() {
    let dir = TempDir::new("smtp-ca");
    let Some((smtp, cert)) = start_aiosmtpd(&dir, false).await else {
        return;
    };
    let result = probe("smtp", &smtp, true, Verify::CaFile(cert)).await;
    assert_ok(&result);
    let tls = result.tls.as_ref().expect("TLS details");
    assert!(tls.version.starts_with("TLSv1."), "{tls:#?}");
    assert!(tls.subject.contains("portwarden test server"), "{tls:#?}");
    assert!((29..=30).contains(&tls.days_left), "{tls:#?}");
    assert!(tls.verified, "{tls:#?}");
}

#[tokio::test]
async fn smtp_starttls_insecure_still_reports_the_certificate() {
    let dir = TempDir::new("smtp-insecure");
    let Some((smtp, _)) = start_aiosmtpd(&dir, false).await else {
        return;
    };
    let result = probe("smtp", &smtp, true, Verify::Insecure).await;
    assert_ok(&result);
    let tls = result.tls.as_ref().expect("TLS details");
    assert!(tls.subject.contains("portwarden test server"), "{tls:#?}");
    assert!((29..=30).contains(&tls.days_left), "{tls:#?}");
    assert!(!tls.verified, "{tls:#?}");
}

#[tokio::test]
async fn smtp_starttls_against_system_roots_fails_on_a_self_signed_certificate() {
    let dir = TempDir::new("smtp-roots");
    let Some((smtp, _)) = start_aiosmtpd(&dir, false).await else {
        return;
    };
    let result = probe("smtp", &smtp, true, Verify::SystemRoots).await;
    assert_eq!(result.state, State::Critical, "{result:#?}");
    assert_eq!(result.reason, Some(Reason::TlsFailure), "{result:#?}");
}

#[tokio::test]
async fn smtps_preset_speaks_implicit_tls() {
    let dir = TempDir::new("smtps");
    let Some((smtps, cert)) = start_aiosmtpd(&dir, true).await else {
        return;
    };
    let result = probe("smtps", &smtps, false, Verify::CaFile(cert)).await;
    assert_ok(&result);
    assert!(result.received.starts_with("220 "), "{result:#?}");
    let tls = result.tls.as_ref().expect("TLS details");
    assert!(tls.verified, "{tls:#?}");
}

#[tokio::test]
async fn ssh_preset_against_smtp_fails_when_the_server_goes_quiet() {
    // RFC 4253 lets an SSH server send other lines before its identification, so a text
    // greeting cannot be refused by itself: the idle timeout ends it, well within the
    // deadline.
    let dir = TempDir::new("smtp-ssh");
    let Some((smtp, _)) = start_aiosmtpd(&dir, false).await else {
        return;
    };
    let result = probe("ssh", &smtp, false, Verify::SystemRoots).await;
    assert_mismatch(&result, DEADLINE);
    assert!(result.message.contains("went quiet"), "{result:#?}");
}

// ---------------------------------------------------------------------------------------
// PostgreSQL (only where it is installed: CI does not install it).

#[tokio::test]
async fn postgres_preset_gets_an_answer_and_upgrades_with_starttls() {
    let dir = TempDir::new("postgres");
    let Some((postgres, cert)) = start_postgres(&dir).await else {
        return;
    };
    let plain = probe("postgres", &postgres, false, Verify::SystemRoots).await;
    assert_ok(&plain);
    assert_eq!(plain.received, "S", "TLS is on: {plain:#?}");
    let upgraded = probe("postgres", &postgres, true, Verify::CaFile(cert)).await;
    assert_ok(&upgraded);
    let tls = upgraded.tls.as_ref().expect("TLS details");
    assert!(tls.subject.contains("portwarden test server"), "{tls:#?}");
    assert!(tls.verified, "{tls:#?}");
}

// ---------------------------------------------------------------------------------------
// HTTP (Python's http.server).

#[tokio::test]
async fn http_preset_reads_the_status_line() {
    let dir = TempDir::new("http");
    let Some(http) = start_http_server(&dir).await else {
        return;
    };
    let result = probe("http", &http, false, Verify::SystemRoots).await;
    assert_ok(&result);
    assert!(result.received.starts_with("HTTP/1.0 200"), "{result:#?}");
}

#[tokio::test]
async fn redis_preset_against_http_server_fails_on_its_error_page() {
    let dir = TempDir::new("http-cross");
    let Some(http) = start_http_server(&dir).await else {
        return;
    };
    // http.server answers a PING line with a 400 page.
    let result = probe("redis", &http, false, Verify::SystemRoots).await;
    assert_mismatch(&result, IDLE);
}
