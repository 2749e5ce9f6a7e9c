//! `smtp` against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, STARTTLS with AUTH,
//! implicit TLS, a wrong password, a server that is down, the fallback server. Certificates
//! come from `openssl req`; the server records each message as JSON, decoded.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{grouped, have_tool, notifier, single};
use portwarden_notify::Kind;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const PYTHON: &str = "/usr/bin/python3";

/// A running aiosmtpd; killed when dropped.
struct Smtpd {
    port: u16,
    out: PathBuf,
    _child: tokio::process::Child,
}

impl Smtpd {
    async fn start(dir: &Path, mode: &str, auth: Option<(&str, &str)>) -> Smtpd {
        let out = dir.join(format!("{mode}-{}.jsonl", rand_suffix()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtpd.py");
        let mut cmd = tokio::process::Command::new(PYTHON);
        cmd.arg(script)
            .args(["--mode", mode, "--out"])
            .arg(&out)
            .arg("--cert")
            .arg(dir.join("cert.pem"))
            .arg("--key")
            .arg(dir.join("key.pem"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some((u, p)) = auth {
            cmd.args(["--user", u, "--password", p]);
        }
        let mut child = cmd.spawn().expect("start smtpd.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .expect("smtpd.py ready within 15 s")
            .expect("read")
            .expect("smtpd.py printed READY");
        let port = line
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line from smtpd.py: {line}"));
        Smtpd {
            port,
            out,
            _child: child,
        }
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A temp dir with a self-signed certificate for localhost / 127.0.0.1, or `None` (skipped).
fn setup(test: &str) -> Option<tempfile::TempDir> {
    if !have_tool(PYTHON, "python3", test)
        || !have_tool(
            "/usr/lib/python3/dist-packages/aiosmtpd",
            "python3-aiosmtpd",
            test,
        )
        || !have_tool("/usr/bin/openssl", "openssl", test)
    {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("write ext");
    // A private CA (ca.pem, what `ca_file` trusts) and a server certificate it signed.
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=portwarden test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let status = std::process::Command::new("/usr/bin/openssl")
            .args(args)
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?} failed");
    }
    Some(dir)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test]
async fn smtp_plain_to_loopback_delivers_to_every_recipient() {
    let Some(dir) = setup("smtp_plain") else {
        return;
    };
    let srv = Smtpd::start(dir.path(), "plain", None).await;
    let n = notifier(json!({
        "type": "smtp", "server": srv.server(), "tls": "none",
        "from": "Portwarden <portwarden@db1.example>",
        "to": ["ops@example.com", "oncall@example.com"],
    }));
    let d = n.send(&single(Kind::Down, "web")).await.expect("delivered");
    assert_eq!(d.response, "250 2.0.0 Ok: queued as PW1");
    let m = srv.messages();
    assert_eq!(m.len(), 1);
    let m = &m[0];
    assert_eq!(m["subject"], "web on db1 is DOWN: refused");
    assert_eq!(m["from"], "Portwarden <portwarden@db1.example>");
    assert_eq!(m["mail_from"], "portwarden@db1.example");
    assert_eq!(
        m["rcpt_tos"],
        json!(["ops@example.com", "oncall@example.com"])
    );
    let to = m["to"].as_str().expect("to");
    assert!(
        to.contains("ops@example.com") && to.contains("oncall@example.com"),
        "{to}"
    );
    assert_eq!(m["auto_submitted"], "auto-generated");
    assert_eq!(m["notification"], "db1-web-down");
    let body = m["body"].as_str().expect("body");
    for fact in [
        "127.0.0.1:8080",
        "HTTP/1.0 503 Busy",
        "restarted web.service",
        "db1/web",
    ] {
        assert!(body.contains(fact), "{fact:?} missing from:\n{body}");
    }
}

#[tokio::test]
async fn smtp_starttls_with_auth_and_password_from_env() {
    let Some(dir) = setup("smtp_starttls") else {
        return;
    };
    let srv = Smtpd::start(dir.path(), "starttls", Some(("pw", "correct horse"))).await;
    let var = "PORTWARDEN_TEST_SMTP_PASSWORD_STARTTLS";
    std::env::set_var(var, "correct horse");
    let n = notifier(json!({
        "type": "smtp", "server": srv.server(), "tls": "starttls",
        "ca_file": dir.path().join("ca.pem").display().to_string(),
        "username": "pw", "password_env": var,
        "from": "portwarden@db1.example", "to": ["ops@example.com"],
        "subject": "[{{ host }}] {{ default_subject }}",
        "body": "{{ default_body }}\nRunbook: https://wiki/{{ item.subject }}",
    }));
    let d = n.send(&single(Kind::Up, "web")).await.expect("delivered");
    assert!(
        d.response.starts_with("250 2.0.0 Ok: queued as"),
        "{}",
        d.response
    );
    let m = &srv.messages()[0];
    assert_eq!(m["tls"], true);
    assert_eq!(m["auth"], true);
    assert_eq!(m["subject"], "[db1] web on db1 is UP again after 4m 12s");
    let body = m["body"].as_str().expect("body");
    assert!(body.contains("Runbook: https://wiki/web"), "{body}");
    assert!(
        body.starts_with("web on db1 is UP again after 4m 12s"),
        "{body}"
    );
}

#[tokio::test]
async fn smtp_wrong_password_is_permanent_with_the_servers_535() {
    let Some(dir) = setup("smtp_wrong_password") else {
        return;
    };
    let srv = Smtpd::start(dir.path(), "starttls", Some(("pw", "right"))).await;
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "wrong\n").expect("write");
    let n = notifier(json!({
        "type": "smtp", "server": srv.server(), "insecure_skip_verify": true,
        "username": "pw", "password_file": pwfile.display().to_string(),
        "from": "portwarden@db1.example", "to": ["ops@example.com"],
    }));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
    assert!(
        e.message
            .starts_with(&format!("smtp to {}: permanent error (535)", srv.server())),
        "{e:?}"
    );
    assert!(
        e.message
            .contains("5.7.8 Authentication credentials invalid"),
        "{e:?}"
    );
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn smtp_implicit_tls_and_a_grouped_message() {
    let Some(dir) = setup("smtp_implicit_tls") else {
        return;
    };
    let srv = Smtpd::start(dir.path(), "tls", None).await;
    let n = notifier(json!({
        "type": "smtp", "server": srv.server(), "tls": "tls",
        "ca_file": dir.path().join("ca.pem").display().to_string(),
        "from": "portwarden@db1.example", "to": ["ops@example.com"],
    }));
    n.send(&grouped(11, 1)).await.expect("delivered");
    let m = &srv.messages()[0];
    assert_eq!(m["tls"], true);
    assert_eq!(m["subject"], "12 monitors on db1 changed: 11 DOWN, 1 UP");
    let body = m["body"].as_str().expect("body");
    for i in 0..11 {
        assert!(
            body.contains(&format!("- svc{i} on db1 is DOWN: refused")),
            "{body}"
        );
    }
    assert!(
        body.contains("- ok0 on db1 is UP again after 4m 12s"),
        "{body}"
    );
}

#[tokio::test]
async fn smtp_untrusted_certificate_is_refused() {
    let Some(dir) = setup("smtp_untrusted") else {
        return;
    };
    let srv = Smtpd::start(dir.path(), "tls", None).await;
    let n = notifier(json!({
        "type": "smtp", "server": srv.server(), "tls": "tls",
        "from": "portwarden@db1.example", "to": ["ops@example.com"],
    }));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(
        e.message
            .starts_with(&format!("smtp to {}: ", srv.server())),
        "{e:?}"
    );
    assert!(e.message.to_lowercase().contains("certificate"), "{e:?}");
    assert!(srv.messages().is_empty());
}

#[tokio::test]
async fn smtp_server_down_is_retryable_and_the_fallback_takes_over() {
    let Some(dir) = setup("smtp_fallback") else {
        return;
    };
    let down = format!("127.0.0.1:{}", free_port());
    let n = notifier(json!({
        "type": "smtp", "server": down, "tls": "none",
        "from": "portwarden@db1.example", "to": ["ops@example.com"], "timeout": "5s",
    }));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(e.message.starts_with(&format!("smtp to {down}: ")), "{e:?}");
    assert!(e.message.to_lowercase().contains("refused"), "{e:?}");

    let srv = Smtpd::start(dir.path(), "plain", None).await;
    let n = notifier(json!({
        "type": "smtp", "server": down, "fallback_server": srv.server(), "tls": "none",
        "from": "portwarden@db1.example", "to": ["ops@example.com"],
    }));
    let d = n
        .send(&single(Kind::Down, "web"))
        .await
        .expect("delivered via fallback");
    assert!(
        d.response
            .starts_with("250 2.0.0 Ok: queued as PW1 (via fallback"),
        "{}",
        d.response
    );
    assert!(
        d.response.contains(&format!("smtp to {down}: ")),
        "{}",
        d.response
    );
    assert_eq!(srv.messages().len(), 1);
}

#[tokio::test]
async fn smtp_missing_password_env_is_a_send_error_not_a_build_error() {
    let n = notifier(json!({
        "type": "smtp", "server": "127.0.0.1:1", "username": "u",
        "password_env": "PORTWARDEN_TEST_SMTP_PASSWORD_NEVER_SET",
        "from": "portwarden@db1.example", "to": ["ops@example.com"],
    }));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(!e.retryable);
    assert_eq!(
        e.message,
        "smtp: password_env: environment variable PORTWARDEN_TEST_SMTP_PASSWORD_NEVER_SET is not set"
    );
}

#[tokio::test]
async fn smtp_server_that_closes_at_once_is_retryable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    let n = notifier(json!({
        "type": "smtp", "server": addr.to_string(), "tls": "none",
        "from": "portwarden@db1.example", "to": ["ops@example.com"], "timeout": "3s",
    }));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(e.message.starts_with(&format!("smtp to {addr}: ")), "{e:?}");
}

#[tokio::test]
async fn smtp_silent_first_server_leaves_time_for_the_fallback() {
    let Some(dir) = setup("smtp_silent_fallback") else {
        return;
    };
    // Accepts and never greets: the first server's half of the timeout runs out.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let srv = Smtpd::start(dir.path(), "plain", None).await;
    let n = notifier(json!({
        "type": "smtp", "server": silent.to_string(), "fallback_server": srv.server(),
        "tls": "none", "from": "portwarden@db1.example", "to": ["ops@example.com"],
        "timeout": "2s",
    }));
    let d = n
        .send(&single(Kind::Down, "web"))
        .await
        .expect("delivered via fallback");
    assert!(d.response.contains("(via fallback"), "{}", d.response);
    assert!(
        d.response.contains(&format!("smtp to {silent}: ")),
        "{}",
        d.response
    );
    assert_eq!(srv.messages().len(), 1);
}
