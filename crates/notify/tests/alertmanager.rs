//! `alertmanager` against a real Prometheus Alertmanager (Debian's prometheus-alertmanager) on
//! 127.0.0.1: a down fires an alert with portwarden's labels, the recovery resolves it.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{have_tool, notifier, single};
use portwarden_notify::Kind;
use serde_json::{json, Value};

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// The Alertmanager process, killed by PID when dropped.
struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn start(dir: &Path) -> Running {
    let config = dir.join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .expect("write config");
    let port = free_port();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let running = Running {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = get(&format!("{}/-/ready", running.base)).await {
            if r.0 == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "alertmanager not ready in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running
}

/// A tiny GET over a raw socket (the crate's own client is for POSTs).
async fn get(url: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = tokio::net::TcpStream::connect(host).await?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

async fn alerts(base: &str, query: &str) -> Vec<Value> {
    let (status, body) = get(&format!("{base}/api/v2/alerts?{query}"))
        .await
        .expect("GET alerts");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body)
        .expect("json")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn alertmanager_fires_on_down_and_resolves_on_up() {
    if !have_tool(ALERTMANAGER, "prometheus-alertmanager", "alertmanager") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let am = start(dir.path()).await;
    let n = notifier(json!({
        "type": "alertmanager", "url": am.base,
        "labels": {"team": "ops"}, "generator_url": "http://db1:9898/",
    }));
    let mut down = single(Kind::Down, "web");
    // Alertmanager ignores alerts that ended long ago; use the real clock.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    down.at_ms = now;
    down.items[0].since_ms = Some(now - 60_000);
    let d = n.send(&down).await.expect("delivered");
    assert_eq!(d.response, "HTTP 200 (1 firing, 0 resolving)");

    let active = alerts(&am.base, "active=true&silenced=false&inhibited=false").await;
    assert_eq!(active.len(), 1, "{active:#?}");
    let a = &active[0];
    assert_eq!(
        a["labels"],
        json!({"alertname": "PortwardenMonitorDown", "instance": "db1", "monitor": "web",
               "severity": "critical", "team": "ops"})
    );
    assert_eq!(a["annotations"]["summary"], "web on db1 is DOWN: refused");
    assert_eq!(a["annotations"]["reason"], "refused");
    assert_eq!(a["annotations"]["received"], "HTTP/1.0 503 Busy");
    assert_eq!(a["generatorURL"], "http://db1:9898/");
    assert_eq!(a["status"]["state"], "active");

    let mut up = single(Kind::Up, "web");
    up.at_ms = now + 1_000;
    up.items[0].since_ms = Some(now - 60_000);
    let d = n.send(&up).await.expect("delivered");
    assert_eq!(d.response, "HTTP 200 (0 firing, 1 resolving)");
    // Resolved alerts leave the active list (the API shows them with ?active=false only
    // until they are garbage-collected).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let firing: Vec<Value> = alerts(&am.base, "active=true")
            .await
            .into_iter()
            .filter(|a| a["labels"]["monitor"] == "web")
            .collect();
        if firing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still active after the recovery: {firing:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn alertmanager_down_is_a_retryable_error_naming_the_server() {
    let port = free_port();
    let n = notifier(json!({"type": "alertmanager", "url": format!("http://127.0.0.1:{port}")}));
    let e = n.send(&single(Kind::Down, "web")).await.unwrap_err();
    assert!(e.retryable);
    assert!(
        e.message
            .starts_with(&format!("alertmanager to 127.0.0.1:{port}: cannot connect")),
        "{e:?}"
    );
}
