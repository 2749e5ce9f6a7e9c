//! portwarden installed under a plugin's name (`check_smtp`, `check_ssh`, `check_pop`, …)
//! side by side with Debian's monitoring-plugins 2.3.3 of the same name, against the same
//! real servers (aiosmtpd with and without STARTTLS, OpenSSH's sshd, a closed port, servers
//! that answer wrongly): same exit code, same output apart from measured times.
//! docs/check_tcp.md lists what still differs.

use crate::support;
use crate::support::checker::{echo, normalise, run};
use crate::support::{closed_port, serve, silent};

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

const PLUGINS: &str = "/usr/lib/nagios/plugins";

/// A directory of links named like the plugins, all to the portwarden binary.
fn links() -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // One directory per test: tests run in parallel and temp_dir starts each one empty.
    let dir = support::temp_dir(&format!(
        "plugin-links-{}",
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    for name in [
        "check_smtp",
        "check_ssh",
        "check_pop",
        "check_ftp",
        "check_imap",
        "check_jabber",
        "check_clamd",
        "check_http",
    ] {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_portwarden"), dir.join(name)).unwrap();
    }
    dir
}

/// The real plugin, or `None` (the test skips) when monitoring-plugins is missing; under
/// CI that is a failure.
fn real(plugin: &str) -> Option<PathBuf> {
    let path = Path::new(PLUGINS).join(plugin);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} missing: scripts/install-test-deps installs monitoring-plugins-basic",
        path.display()
    );
    eprintln!("skipping: {} not installed", path.display());
    None
}

/// The real `plugin` and our link of the same name agree on exit code and output.
fn assert_same(links: &Path, plugin: &str, args: &[&str]) {
    let Some(theirs) = real(plugin) else { return };
    let t = run(&theirs, args);
    let o = run(links.join(plugin), args);
    assert_eq!(
        (o.code, normalise(&o.stdout)),
        (t.code, normalise(&t.stdout)),
        "{plugin} {args:?}: ours {:?}, theirs {:?}",
        o.stdout,
        t.stdout
    );
}

/// A child process killed (by its own pid) when the test ends.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `cmd` and waits (at most 15 s) until `port` accepts connections.
    fn start(mut cmd: Command, port: u16) -> Server {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server");
        let server = Server { child, port };
        support::wait_until("the server to listen", 15, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }

    fn port(&self) -> String {
        self.port.to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `localhost` that expires in 30 days and 12 hours: the
/// plugins' whole days left stay 30 for every check of a test, whatever second each runs in
/// (one expiring exactly 30 days from now counts 30 in the second it was made, 29 after).
fn write_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(30) + time::Duration::hours(12);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

/// aiosmtpd on a free port; with `tls`, offering STARTTLS with a certificate 30 days from
/// expiry.
fn aiosmtpd(tls: bool) -> Option<Server> {
    let python = support::aiosmtpd()?;
    let port = support::free_port();
    let mut cmd = Command::new(python);
    cmd.args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"));
    if tls {
        let dir = support::temp_dir(&format!("aiosmtpd-{port}"));
        let (cert, key) = write_certificate(&dir);
        cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
    }
    Some(Server::start(cmd, port))
}

/// OpenSSH's sshd in the foreground with a fresh host key.
fn sshd() -> Option<Server> {
    let sshd = Path::new("/usr/sbin/sshd");
    if !sshd.is_file() {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssh-server is missing"
        );
        eprintln!("skipping: /usr/sbin/sshd is not installed");
        return None;
    }
    // The privilege-separation directory sshd wants when it runs as root.
    let _ = std::fs::create_dir_all("/run/sshd");
    let port = support::free_port();
    let dir = support::temp_dir(&format!("sshd-{port}"));
    let key = dir.join("hostkey");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("run ssh-keygen");
    assert!(keygen.success());
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nPidFile none\nUsePAM no\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AuthorizedKeysFile none\nLogLevel ERROR\n"
        ),
    )
    .unwrap();
    let mut cmd = Command::new(sshd);
    cmd.args(["-D", "-e", "-f"])
        .arg(&config)
        .arg("-h")
        .arg(&key);
    Some(Server::start(cmd, port))
}

/// An SMTP server that refuses service: a 554 greeting, 503 to whatever follows.
fn refusing_smtp(mut c: TcpStream) {
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.write_all(b"554 no service here\r\n");
    let mut reader = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    for _ in 0..4 {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let _ = c.write_all(b"503 bad sequence of commands\r\n");
    }
}

/// A banner that is not SSH's, then silence.
fn smtp_banner(mut c: TcpStream) {
    let _ = c.write_all(b"220 mail.example.org ESMTP\r\n");
    thread::sleep(Duration::from_secs(3));
}

/// Echoes the first read back, then waits.
/// Answers like an XMPP server: an XML declaration and a stream header, then keeps the
/// stream open until the client closes it. Closing at once raced the real check_jabber's
/// closing `</stream:stream>`: written into a reset connection, it died of SIGPIPE.
fn xmpp(mut c: TcpStream) {
    use std::io::Read;
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.write_all(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='1' version='1.0'>",
    );
    let mut buf = [0u8; 512];
    while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
}

#[test]
fn check_smtp_matches_the_plugin_on_a_plain_server() {
    let Some(smtp) = aiosmtpd(false) else { return };
    let links = links();
    let port = smtp.port();
    let h = ["-H", "127.0.0.1", "-p", &port];
    let with = |extra: &[&'static str]| -> Vec<String> {
        h.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    for extra in [
        &[][..],
        &["-w", "5", "-c", "9"],
        &["-w", "0", "-c", "0"],
        &["-e", "Python SMTP"],
        &["-e", "nope"],
        &["-F", "probe.example.org", "-f", "<nagios@example.org>"],
        &["-C", "NOOP", "-R", "^250"],
        &["-C", "NOOP", "-R", "^550", "-C", "RSET", "-R", "^250"],
        &["-C", "NOOP", "-R", "^550", "-C", "RSET"],
        &["-A", "LOGIN", "-U", "user", "-P", "secret"],
        &["-A", "LOGIN", "-U", "user"],
        &["-A", "CRAM-MD5"],
        &["-L"],
        &["-q"],
        // -S on a server without STARTTLS: WARNING, not TLS from the first byte.
        &["-S"],
        &["-D", "30"],
        &["-v"],
    ] {
        let args = with(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_same(&links, "check_smtp", &args);
    }
    // No -H: 127.0.0.1, as the plugin.
    assert_same(&links, "check_smtp", &["-p", &port]);
    assert_same(&links, "check_smtp", &["127.0.0.1", "-p", &port]);
}

#[test]
fn check_smtp_matches_the_plugin_with_starttls() {
    let Some(smtp) = aiosmtpd(true) else { return };
    let links = links();
    let port = smtp.port();
    for extra in [
        &[][..],
        &["-S"],
        &["-S", "-e", "250"],
        &["-S", "-C", "NOOP", "-R", "^250"],
        // 30 days left: OK at 10 days, WARNING at 40, CRITICAL at 40,35.
        &["-S", "-D", "10"],
        &["-S", "-D", "40"],
        &["-S", "-D", "40,35"],
        // -D alone implies STARTTLS.
        &["-D", "40,20"],
    ] {
        let mut args = vec!["-H", "127.0.0.1", "-p", &port];
        args.extend_from_slice(extra);
        assert_same(&links, "check_smtp", &args);
    }
}

#[test]
fn check_smtp_matches_the_plugin_on_failures() {
    let links = links();
    let closed = closed_port().to_string();
    assert_same(&links, "check_smtp", &["-H", "127.0.0.1", "-p", &closed]);
    assert_same(&links, "check_smtp", &["-p", &closed, "-S"]);
    let refusing = serve(refusing_smtp).to_string();
    assert_same(&links, "check_smtp", &["-H", "127.0.0.1", "-p", &refusing]);
    assert_same(
        &links,
        "check_smtp",
        &["-H", "127.0.0.1", "-p", &refusing, "-S"],
    );
    assert_same(
        &links,
        "check_smtp",
        &["-H", "127.0.0.1", "-p", &refusing, "-e", "503"],
    );
    // The plugins' alarm: CRITICAL - Socket timeout after 1 seconds.
    let silent = serve(silent).to_string();
    for plugin in ["check_smtp", "check_ssh"] {
        assert_same(
            &links,
            plugin,
            &["-H", "127.0.0.1", "-p", &silent, "-t", "1"],
        );
    }
    // Usage errors are UNKNOWN.
    for args in [
        &["-H", "127.0.0.1", "-p", "0"][..],
        &["-H", "127.0.0.1", "-x"],
        &["-H", "127.0.0.1", "-C"],
        &["-H", "bad..host"],
    ] {
        let Some(theirs) = real("check_smtp") else {
            return;
        };
        let t = run(&theirs, args);
        let o = run(links.join("check_smtp"), args);
        assert_eq!((o.code, t.code), (3, 3), "{args:?}: {}", o.stdout);
    }
}

#[test]
fn check_ssh_matches_the_plugin() {
    let links = links();
    if let Some(sshd) = sshd() {
        let port = sshd.port();
        let h = ["-H", "127.0.0.1", "-p", port.as_str()];
        assert_same(&links, "check_ssh", &h);
        assert_same(&links, "check_ssh", &["127.0.0.1", &port]);
        assert_same(
            &links,
            "check_ssh",
            &["-H", "127.0.0.1", "-p", &port, "-t", "3"],
        );
        assert_same(
            &links,
            "check_ssh",
            &["-H", "127.0.0.1", "-p", &port, "-P", "2.0"],
        );
        assert_same(
            &links,
            "check_ssh",
            &["-H", "127.0.0.1", "-p", &port, "-P", "1.99"],
        );
        assert_same(
            &links,
            "check_ssh",
            &["-H", "127.0.0.1", "-p", &port, "-r", "nope"],
        );
        // The exact software version passes -r.
        let ok = run(links.join("check_ssh"), &h);
        let software = ok
            .stdout
            .strip_prefix("SSH OK - ")
            .and_then(|s| s.split(" (protocol").next())
            .unwrap()
            .to_string();
        assert_same(
            &links,
            "check_ssh",
            &["-H", "127.0.0.1", "-p", &port, "-r", &software],
        );
    }
    let banner = serve(smtp_banner).to_string();
    assert_same(&links, "check_ssh", &["-H", "127.0.0.1", "-p", &banner]);
    let closed = closed_port().to_string();
    assert_same(&links, "check_ssh", &["-H", "127.0.0.1", "-p", &closed]);
    // check_ssh has no default host and no -w.
    for args in [&["-p", "22"][..], &["-H", "127.0.0.1", "-w", "3"]] {
        let Some(theirs) = real("check_ssh") else {
            return;
        };
        let t = run(&theirs, args);
        let o = run(links.join("check_ssh"), args);
        assert_eq!((o.code, t.code), (3, 3), "{args:?}: {}", o.stdout);
    }
}

#[test]
fn check_tcp_links_keep_their_service_defaults() {
    let links = links();
    let Some(smtp) = aiosmtpd(false) else { return };
    let port = smtp.port();
    // A mail server is the wrong answer for POP and IMAP, the right one (220) for FTP.
    assert_same(&links, "check_ftp", &["-H", "127.0.0.1", "-p", &port]);
    assert_same(&links, "check_pop", &["-H", "127.0.0.1", "-p", &port]);
    assert_same(&links, "check_pop", &["-p", &port, "-e", "220"]);
    assert_same(
        &links,
        "check_imap",
        &["-H", "127.0.0.1", "-p", &port, "-M", "crit"],
    );
    // check_jabber sends a stream header and hides the answer; check_clamd sends PING.
    let xmpp = serve(xmpp).to_string();
    assert_same(&links, "check_jabber", &["-H", "127.0.0.1", "-p", &xmpp]);
    let echo = serve(echo).to_string();
    assert_same(&links, "check_clamd", &["-H", "127.0.0.1", "-p", &echo]);
    assert_same(
        &links,
        "check_clamd",
        &["-H", "127.0.0.1", "-p", &echo, "-e", "PING"],
    );
}

#[test]
fn plugins_of_their_own_are_refused_not_misread() {
    let links = links();
    let o = run(links.join("check_http"), &["-H", "127.0.0.1", "-u", "/"]);
    assert_eq!(o.code, 3, "{}", o.stdout);
    assert!(o.stdout.starts_with("HTTP UNKNOWN - "), "{}", o.stdout);
}

#[test]
fn first_argument_names_the_plugin_without_a_link() {
    let Some(smtp) = aiosmtpd(false) else { return };
    let o = run(
        Path::new(env!("CARGO_BIN_EXE_portwarden")),
        &["check_smtp", "-H", "127.0.0.1", "-p", &smtp.port()],
    );
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.starts_with("SMTP OK - "), "{}", o.stdout);
    assert!(
        o.stdout.contains(" sec. response time|time="),
        "{}",
        o.stdout
    );
}

#[test]
fn normalise_hides_only_measured_times() {
    assert_eq!(
        normalise("SMTP OK - 0.016 sec. response time|time=0.016488s;5.000000;;0.000000"),
        "SMTP OK - T sec. response time|time=Ts;5.000000;;0.000000"
    );
}
