//! Shared by the integration tests: sample notifications, a recording HTTP receiver on
//! 127.0.0.1, and the rule for missing tools (FAIL under `CI=true`, loud SKIPPED otherwise).
#![allow(dead_code, reason = "each test file uses part of it")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use portwarden_notify::{Item, Kind, Notification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// True when `path` exists; otherwise FAILS under `CI=true` and prints SKIPPED elsewhere.
pub fn have_tool(path: &str, package: &str, test: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    let msg = format!(
        "{test}: {path} is missing; install the Debian package {package} (scripts/install-test-deps)"
    );
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{msg}");
    }
    eprintln!("\n!!!!! SKIPPED: {msg} !!!!!\n");
    false
}

pub fn item(kind: Kind, subject: &str) -> Item {
    Item {
        kind,
        subject: subject.to_string(),
        target: Some("127.0.0.1:8080".to_string()),
        status: match kind {
            Kind::Up => "ok",
            _ => "down",
        }
        .to_string(),
        reason: (kind != Kind::Up).then(|| "refused".to_string()),
        message: if kind == Kind::Up {
            "accepting connections again".to_string()
        } else {
            "connection refused".to_string()
        },
        received: (kind == Kind::Down).then(|| "HTTP/1.0 503 Busy".to_string()),
        detail: None,
        action: (kind == Kind::Down).then(|| "restarted web.service".to_string()),
        down_for_secs: (kind == Kind::Up).then_some(252),
        since_ms: Some(1_714_557_600_000),
        tags: vec!["prod".to_string()],
        incident: format!("db1/{subject}"),
    }
}

pub fn single(kind: Kind, subject: &str) -> Notification {
    Notification {
        id: format!("db1-{subject}-{}", kind.as_str()),
        kind,
        host: "db1".to_string(),
        at_ms: 1_714_557_852_000,
        items: vec![item(kind, subject)],
    }
}

pub fn grouped(downs: usize, ups: usize) -> Notification {
    let mut items: Vec<Item> = (0..downs)
        .map(|i| item(Kind::Down, &format!("svc{i}")))
        .collect();
    items.extend((0..ups).map(|i| item(Kind::Up, &format!("ok{i}"))));
    Notification {
        id: "db1-group-1".to_string(),
        kind: Kind::Grouped,
        host: "db1".to_string(),
        at_ms: 1_714_557_852_000,
        items,
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Status and body.
    Answer(u16, String),
    /// Reads the request, then says nothing.
    Silent,
    /// Closes the connection as soon as it is accepted.
    Close,
    /// 200 with a body of this many bytes.
    Huge(usize),
}

/// A recording HTTP/1.1 receiver on 127.0.0.1.
pub struct Receiver {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen.clone();
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, behaviour, seen).await;
                });
            }
        });
        Receiver {
            addr,
            requests,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn only_request(&self) -> Request {
        let r = self.requests();
        assert_eq!(r.len(), 1, "expected one request, got {r:#?}");
        r.into_iter().next().expect("one")
    }
}

async fn serve(
    mut stream: TcpStream,
    behaviour: Behaviour,
    seen: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    if matches!(behaviour, Behaviour::Close) {
        return Ok(());
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    seen.lock().expect("lock").push(Request {
        method,
        path,
        headers,
        body,
    });
    match behaviour {
        Behaviour::Answer(status, text) => {
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            stream.write_all(reply.as_bytes()).await?;
        }
        Behaviour::Huge(size) => {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes()).await?;
            let block = vec![b'A'; 64 * 1024];
            let mut left = size;
            while left > 0 {
                let n = left.min(block.len());
                if stream.write_all(&block[..n]).await.is_err() {
                    break;
                }
                left -= n;
            }
        }
        Behaviour::Silent => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
        Behaviour::Close => {}
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// A notifier from a TOML-like JSON table.
pub fn notifier(spec: serde_json::Value) -> portwarden_notify::Notifier {
    let spec: portwarden_notify::NotifierSpec = serde_json::from_value(spec).expect("spec parses");
    portwarden_notify::Notifier::new("test", spec).expect("notifier builds")
}
