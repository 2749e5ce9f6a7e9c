//! The API end to end against the real daemon binary: the bearer token (missing, wrong,
//! right, none configured), run-now / pause / resume, silences added and removed through the
//! API, clean JSON errors for bad JSON, oversized bodies and unknown monitors, the event
//! stream showing a monitor going down and up, incidents across monitors opening and closing,
//! the host's listeners with their processes and monitors, the OpenAPI document listing
//! every route, and the connection limits (header and idle timeouts, the connection cap, an
//! event stream outliving the idle timeout).
//! The daemons run with `[firewall] guard = false`: hands off the machine's firewall.

use crate::support::{api_addr, free_port, temp_dir, write_config, Daemon};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const TOKEN: &str = "api-e2e-s3cret";

/// A TCP service that can go away (its port stays bound, not listening: it refuses) and come
/// back on the same port.
struct Service {
    port: u16,
    listening: Option<Arc<Mutex<bool>>>,
    reserved: Option<socket2::Socket>,
}

fn bound(port: u16) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    s.bind(&addr.into()).unwrap();
    s
}

impl Service {
    fn start(port: u16) -> Self {
        let mut s = Self {
            port,
            listening: None,
            reserved: Some(bound(port)),
        };
        s.up();
        s
    }

    fn up(&mut self) {
        let socket = self.reserved.take().unwrap();
        socket.listen(64).unwrap();
        let listener = TcpListener::from(socket);
        listener.set_nonblocking(true).unwrap();
        let run = Arc::new(Mutex::new(true));
        let flag = run.clone();
        thread::spawn(move || {
            while *flag.lock().unwrap() {
                match listener.accept() {
                    Ok((s, _)) => drop(s),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        self.listening = Some(run);
    }

    fn down(&mut self) {
        let Some(flag) = self.listening.take() else {
            return;
        };
        *flag.lock().unwrap() = false;
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        self.reserved = Some(bound(self.port));
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.down();
    }
}

/// An HTTP answer: status and JSON body (Null if none).
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    raw: String,
}

/// Starts a daemon whose config has `daemon_extra` in `[daemon]` and `monitors`; the token
/// file `token` holds [`TOKEN`].
fn start(tag: &str, daemon_extra: &str, monitors: &str) -> Daemon {
    let api = api_addr();
    let dir = temp_dir(&format!("api-{tag}"));
    std::fs::write(dir.join("token"), format!("{TOKEN}\n")).unwrap();
    let config = write_config(
        &dir,
        api,
        daemon_extra,
        &format!(
            "[defaults]\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfail_after = 1\n\
             recover_after = 1\n\n{monitors}"
        ),
    );
    Daemon::start(&config, api)
}

/// Requests with any method, a token and a body, as these tests make them.
trait Requests {
    fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Option<Answer>;
    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer;
}

impl Requests for Daemon {
    fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Option<Answer> {
        let mut s = TcpStream::connect_timeout(&self.api, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        // The server may answer (413) before reading all of a large body.
        let _ = s.write_all(body);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let raw = String::from_utf8_lossy(&raw).to_string();
        let status = raw.split(' ').nth(1)?.parse().ok()?;
        let text = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        Some(Answer {
            status,
            body: serde_json::from_str(text).unwrap_or(Value::Null),
            raw,
        })
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer {
        self.try_request(method, path, token, body.as_bytes())
            .unwrap_or_else(|| panic!("{method} {path}: no answer; log:\n{}", self.log()))
    }
}

fn monitor(name: &str, port: u16, extra: &str) -> String {
    format!("[[monitor]]\nname = \"{name}\"\ntarget = \"127.0.0.1:{port}\"\n{extra}\n")
}

/// An error answer: the status and a JSON `error` message.
fn assert_error(a: &Answer, status: u16) -> String {
    assert_eq!(a.status, status, "{}", a.raw);
    a.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error in {}", a.raw))
        .to_string()
}

#[test]
fn mutations_need_the_right_token_and_act() {
    let service = Service::start(free_port());
    // A long interval: only the run-now below makes a second check.
    let d = start(
        "token",
        "api_token_file = \"token\"",
        &monitor("web", service.port, "interval = \"60s\"\ntimeout = \"1s\""),
    );
    let refused = d.request("POST", "/api/v1/monitors/web/pause", None, "");
    assert!(assert_error(&refused, 401).contains("Bearer"));
    assert!(refused
        .raw
        .to_lowercase()
        .contains("www-authenticate: bearer"));
    let wrong = d.request("POST", "/api/v1/monitors/web/pause", Some("nope"), "");
    assert_eq!(assert_error(&wrong, 401), "wrong API token");
    thread::sleep(Duration::from_millis(300));
    assert_ne!(
        d.monitor("web")["status"],
        "paused",
        "refused requests change nothing"
    );

    // Run now.
    let before = d.monitor("web")["checks"].as_u64().unwrap();
    let a = d.request("POST", "/api/v1/monitors/web/run", Some(TOKEN), "");
    assert_eq!(a.status, 202, "{}", a.raw);
    assert_eq!(a.body["command"], "run");
    d.wait_for("the run-now check", 15, |d| {
        d.monitor("web")["checks"].as_u64().unwrap() > before
    });
    assert_eq!(d.monitor("web")["status"], "ok");

    // Pause and resume.
    let a = d.request("POST", "/api/v1/monitors/web/pause", Some(TOKEN), "");
    assert_eq!(a.status, 202, "{}", a.raw);
    d.wait_for("paused", 15, |d| d.monitor("web")["status"] == "paused");
    let a = d.request("POST", "/api/v1/monitors/web/resume", Some(TOKEN), "");
    assert_eq!(a.status, 202, "{}", a.raw);
    d.wait_for("resumed", 15, |d| d.monitor("web")["status"] != "paused");

    // Unknown monitors.
    for action in ["run", "pause", "resume", "acknowledge"] {
        let a = d.request(
            "POST",
            &format!("/api/v1/monitors/nosuch/{action}"),
            Some(TOKEN),
            "",
        );
        assert!(assert_error(&a, 404).contains("nosuch"));
    }
    assert_error(&d.request("GET", "/api/v1/monitors/nosuch", None, ""), 404);

    // Acknowledge: a monitor the healing engine never acted on has nothing to clear.
    let a = d.request("POST", "/api/v1/monitors/web/acknowledge", Some(TOKEN), "");
    assert_eq!(a.status, 200, "{}", a.raw);
    assert_eq!(a.body["monitor"], "web");

    // Silences: added through the API, listed, removed.
    let a = d.request(
        "POST",
        "/api/v1/silences",
        Some(TOKEN),
        r#"{"monitor":"web","for":"2h","reason":"maintenance"}"#,
    );
    assert_eq!(a.status, 201, "{}", a.raw);
    let id = a.body["id"].as_i64().unwrap();
    let listed = d.request("GET", "/api/v1/silences", None, "").body;
    let found = listed.as_array().unwrap().iter().find(|s| s["id"] == id);
    assert_eq!(found.unwrap()["reason"], "maintenance", "{listed}");
    let a = d.request("DELETE", &format!("/api/v1/silences/{id}"), Some(TOKEN), "");
    assert_eq!(a.status, 200, "{}", a.raw);
    let listed = d.request("GET", "/api/v1/silences", None, "").body;
    assert!(listed.as_array().unwrap().iter().all(|s| s["id"] != id));
    assert_error(
        &d.request("DELETE", &format!("/api/v1/silences/{id}"), Some(TOKEN), ""),
        404,
    );
    assert_error(
        &d.request("DELETE", "/api/v1/silences/x", Some(TOKEN), ""),
        400,
    );

    // Bad bodies: clean JSON errors.
    let bad_json = d.request("POST", "/api/v1/silences", Some(TOKEN), r#"{"monitor":"#);
    assert_error(&bad_json, 400);
    let wrong_shape = d.request("POST", "/api/v1/silences", Some(TOKEN), r#"{"monitor":1}"#);
    assert_error(&wrong_shape, 422);
    let bad_for = d.request(
        "POST",
        "/api/v1/silences",
        Some(TOKEN),
        r#"{"monitor":"web","for":"soon"}"#,
    );
    assert!(assert_error(&bad_for, 400).starts_with("for:"));
    // A monitor that does not exist (issue 15): refused with the likely typo.
    let typo = d.request(
        "POST",
        "/api/v1/silences",
        Some(TOKEN),
        r#"{"monitor":"wbe","for":"1h"}"#,
    );
    assert_eq!(
        assert_error(&typo, 404),
        "monitor: no monitor named \"wbe\" in this daemon; did you mean \"web\"? (\"force\": \
         true silences it anyway)"
    );
    let forced = d.request(
        "POST",
        "/api/v1/silences",
        Some(TOKEN),
        r#"{"monitor":"wbe","for":"1h","force":true}"#,
    );
    assert_eq!(forced.status, 201, "{}", forced.raw);
    let huge = format!(
        r#"{{"monitor":"web","for":"1h","reason":"{}"}}"#,
        "x".repeat(20 * 1024)
    );
    assert_error(
        &d.request("POST", "/api/v1/silences", Some(TOKEN), &huge),
        413,
    );
    assert_error(&d.request("GET", "/api/v1/nothing-here", None, ""), 404);
    assert_error(
        &d.request("GET", "/api/v1/monitors?state=sideways", None, ""),
        400,
    );
    assert_error(&d.request("GET", "/api/v1/actions?limit=-1", None, ""), 400);

    // No CORS headers unless configured (they never are).
    assert!(!a.raw.to_lowercase().contains("access-control-"));
}

#[test]
fn mutations_are_refused_without_a_configured_token() {
    let service = Service::start(free_port());
    let d = start("notoken", "", &monitor("web", service.port, ""));
    for (method, path) in [
        ("POST", "/api/v1/monitors/web/run"),
        ("POST", "/api/v1/monitors/web/pause"),
        ("POST", "/api/v1/silences"),
        ("DELETE", "/api/v1/silences/1"),
    ] {
        let a = d.request(method, path, Some(TOKEN), "{}");
        let why = assert_error(&a, 403);
        assert!(
            why.contains("api_token_env") && why.contains("api_token_file"),
            "{why}"
        );
    }
    // Reads stay open.
    assert_eq!(d.request("GET", "/api/v1/monitors", None, "").status, 200);
}

#[test]
fn read_token_guards_reads_too() {
    let service = Service::start(free_port());
    let d = start(
        "readtoken",
        "api_token_file = \"token\"\nread_token = true",
        &monitor("web", service.port, ""),
    );
    assert_error(&d.request("GET", "/api/v1/monitors", None, ""), 401);
    assert_eq!(
        d.request("GET", "/api/v1/monitors", Some(TOKEN), "").status,
        200
    );
    assert_eq!(d.request("GET", "/healthz", None, "").status, 200);
    assert_eq!(
        d.request("GET", "/api/v1/openapi.json", None, "").status,
        200
    );
    // /metrics and /probe (which connects wherever it is told) need it as well.
    let probe = format!(
        "/probe?module=tcp_connect&target=127.0.0.1:{}",
        service.port
    );
    for path in ["/metrics", probe.as_str()] {
        assert_eq!(d.request("GET", path, None, "").status, 401, "{path}");
        assert_eq!(
            d.request("GET", path, Some(TOKEN), "").status,
            200,
            "{path}"
        );
    }
}

#[test]
fn openapi_document_lists_every_route() {
    let service = Service::start(free_port());
    let d = start("openapi", "", &monitor("web", service.port, ""));
    let a = d.request("GET", "/api/v1/openapi.json", None, "");
    assert_eq!(a.status, 200);
    assert!(a.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = a.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/healthz", "get"),
        ("/api/v1/monitors", "get"),
        ("/api/v1/monitors/{name}", "get"),
        ("/api/v1/monitors/{name}/run", "post"),
        ("/api/v1/monitors/{name}/pause", "post"),
        ("/api/v1/monitors/{name}/resume", "post"),
        ("/api/v1/monitors/{name}/acknowledge", "post"),
        ("/api/v1/store", "get"),
        ("/api/v1/firewall", "get"),
        ("/api/v1/notifications", "get"),
        ("/api/v1/silences", "get"),
        ("/api/v1/silences", "post"),
        ("/api/v1/silences/{id}", "delete"),
        ("/api/v1/actions", "get"),
        ("/api/v1/incidents", "get"),
        ("/api/v1/listeners", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from {:?}",
            paths.keys().collect::<Vec<_>>()
        );
    }
    assert!(a.body["components"]["schemas"]["ErrorBody"].is_object());
}

/// Reads the stream until `needle` shows, or panics at the deadline.
fn read_until(stream: &mut TcpStream, seen: &mut String, needle: &str, log: &dyn Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the stream:\n{seen}\nlog:\n{}",
            log()
        );
        match stream.read(&mut buf) {
            Ok(0) => panic!("the stream ended:\n{seen}"),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {} // read timeout: look at the deadline again
        }
    }
}

#[test]
fn event_stream_shows_a_monitor_going_down_and_up() {
    let mut service = Service::start(free_port());
    let d = start("events", "", &monitor("web", service.port, ""));
    d.wait_for("web ok", 15, |d| d.monitor("web")["status"] == "ok");

    let mut stream = TcpStream::connect(d.api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut seen = String::new();
    let log = || d.log();
    read_until(&mut stream, &mut seen, "\r\n\r\n", &log);
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen
        .to_lowercase()
        .contains("content-type: text/event-stream"));

    service.down();
    read_until(&mut stream, &mut seen, "event: monitor_down", &log);
    service.up();
    read_until(&mut stream, &mut seen, "event: monitor_up", &log);
    let data = seen
        .lines()
        .find(|l| l.starts_with("data: ") && l.contains("\"monitor_up\""))
        .unwrap();
    let event: Value = serde_json::from_str(&data["data: ".len()..]).unwrap();
    assert_eq!(event["monitor"], "web");
    assert_eq!(event["to"], "ok");
}

fn incidents(d: &Daemon, query: &str) -> Vec<Value> {
    let a = d.request("GET", &format!("/api/v1/incidents{query}"), None, "");
    assert_eq!(a.status, 200, "{}", a.raw);
    a.body["incidents"].as_array().unwrap().clone()
}

#[test]
fn incidents_open_when_a_listener_goes_down_and_close_when_it_returns() {
    let mut web = Service::start(free_port());
    let db = Service::start(free_port());
    let d = start(
        "incidents",
        "",
        &format!(
            "{}{}",
            monitor("web", web.port, ""),
            monitor("db", db.port, "")
        ),
    );
    d.wait_for("web ok", 15, |d| d.monitor("web")["status"] == "ok");
    assert!(incidents(&d, "").is_empty());

    // Two outages of web: each opens an incident while down and closes it on recovery.
    for round in 1..=2 {
        web.down();
        d.wait_for("an open incident of web", 15, |d| {
            incidents(d, "?open=true")
                .iter()
                .any(|i| i["monitor"] == "web" && i["end"].is_null())
        });
        let open = incidents(&d, "?open=true");
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0]["open"], true);
        assert_eq!(open[0]["reason"], "refused", "{open:?}");
        assert!(!open[0]["message"].as_str().unwrap().is_empty());
        web.up();
        d.wait_for("web's incident closed", 15, |d| {
            incidents(d, "?open=false").len() == round
        });
    }
    assert!(incidents(&d, "?open=true").is_empty());
    let all = incidents(&d, "");
    assert_eq!(all.len(), 2, "{all:?}");
    let (newer, older) = (&all[0], &all[1]);
    assert!(
        newer["start"].as_i64() > older["start"].as_i64(),
        "newest first"
    );
    for i in &all {
        assert_eq!(i["monitor"], "web");
        assert_eq!(i["open"], false);
        let (start, end) = (i["start"].as_i64().unwrap(), i["end"].as_i64().unwrap());
        assert!(end >= start, "{i}");
        let duration = i["duration"].as_f64().unwrap();
        assert!((duration - (end - start) as f64 / 1e3).abs() < 1e-6, "{i}");
    }

    // Filters and limits.
    let one = incidents(&d, "?limit=1");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["start"], newer["start"]);
    assert!(incidents(&d, "?limit=0").is_empty());
    assert_eq!(
        incidents(&d, "?limit=5000").len(),
        2,
        "more than the most lists the most"
    );
    assert_eq!(incidents(&d, "?monitor=web&open=false").len(), 2);
    assert!(incidents(&d, "?monitor=db").is_empty());
    assert!(incidents(&d, "?monitor=nosuch").is_empty());

    // Bad queries: clean JSON 400s.
    for bad in [
        "?limit=-1",
        "?limit=many",
        "?limit=1.5",
        "?open=maybe",
        "?open=1",
    ] {
        let a = d.request("GET", &format!("/api/v1/incidents{bad}"), None, "");
        assert_error(&a, 400);
    }
}

/// This process's name as the kernel keeps it (`comm`).
fn own_process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim_end()
        .to_string()
}

#[test]
fn listeners_show_the_process_holding_a_port_and_the_monitor_watching_it() {
    let service = Service::start(free_port());
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let d = start("listeners", "", &monitor("web", service.port, ""));
    let a = d.request("GET", "/api/v1/listeners", None, "");
    assert_eq!(a.status, 200, "{}", a.raw);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let listed_at = a.body["listed_at"].as_i64().unwrap();
    assert!(
        (now_ms - listed_at).abs() < 10_000,
        "{listed_at} vs {now_ms}"
    );
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    assert_eq!(a.body["sees_all_owners"], root);
    if a.body["owners_incomplete"] == true && !root {
        assert!(
            a.body["note"].as_str().unwrap().contains("root"),
            "{}",
            a.raw
        );
    }
    let listeners = a.body["listeners"].as_array().unwrap();
    let find = |protocol: &str, port: u16| {
        listeners
            .iter()
            .find(|l| l["protocol"] == protocol && l["port"] == port)
            .unwrap_or_else(|| panic!("no {protocol} listener on {port} in {}", a.raw))
    };

    // The test's own listener: this process holds it, and "web" watches it.
    let mine = find("tcp", service.port);
    assert_eq!(mine["address"], "127.0.0.1");
    let owners = mine["owners"].as_array().unwrap();
    let me = owners
        .iter()
        .find(|o| o["pid"] == std::process::id())
        .unwrap_or_else(|| panic!("this process is not an owner: {mine}"));
    assert_eq!(me["name"], own_process_name().as_str());
    let exe = std::env::current_exe().unwrap();
    assert_eq!(me["exe"], exe.display().to_string().as_str());
    assert!(me.get("user").is_some() && me.get("unit").is_some());
    assert_eq!(mine["monitored_by"], serde_json::json!(["web"]));

    // A bound UDP socket, and the daemon's own API port, held by the daemon.
    let u = find("udp", udp_port);
    assert!(u["owners"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["pid"] == std::process::id()));
    assert_eq!(u["monitored_by"], serde_json::json!([]));
    let api = find("tcp", d.api.port());
    assert!(api["owners"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["pid"] == d.pid()));
}

/// Reads until the daemon closes the connection; how long that took, or `None` when it was
/// still open after `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while start.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            // Reset by the daemon: closed too.
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// The daemon's open file descriptors.
fn open_fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count()
}

#[test]
fn a_client_that_never_finishes_its_request_head_is_cut_off() {
    let d = start("slowloris", "http_header_timeout = \"1s\"", "");
    let mut stream = TcpStream::connect(d.api).unwrap();
    stream.write_all(b"GET /healthz HTT").unwrap();
    let took = closed_within(&mut stream, Duration::from_secs(6));
    let took = took.unwrap_or_else(|| panic!("still open after 6 s; log:\n{}", d.log()));
    assert!(took < Duration::from_secs(4), "{took:?}");
    // A connection that never sends a byte goes the same way.
    let mut silent = TcpStream::connect(d.api).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(6)).is_some());
}

#[test]
fn a_client_that_stalls_its_request_body_is_cut_off() {
    let d = start(
        "stalled-body",
        "api_token_file = \"token\"\nhttp_idle_timeout = \"1s\"",
        "",
    );
    let mut stream = TcpStream::connect(d.api).unwrap();
    let head = format!(
        "POST /api/v1/silences HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"monitor\":"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let took = closed_within(&mut stream, Duration::from_secs(6));
    let took = took.unwrap_or_else(|| panic!("still open after 6 s; log:\n{}", d.log()));
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn connections_over_the_cap_wait_and_are_served_once_slots_free() {
    const CAP: usize = 20;
    let d = start(
        "cap",
        &format!("http_max_connections = {CAP}\nhttp_header_timeout = \"1s\""),
        "",
    );
    let before = open_fds(&d);
    // 100 clients that connect and send nothing: the kernel completes their handshakes (the
    // listen backlog), the daemon takes at most CAP of them at a time.
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect_timeout(&d.api, Duration::from_secs(1)).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(300));
    let during = open_fds(&d);
    assert!(
        during <= before + CAP + 2,
        "{during} fds open with {CAP} allowed (before: {before})"
    );
    // A real request behind them is answered once the idle ones time out, 20 per second.
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&d.api, Duration::from_secs(1)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(12))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // Every idle client was closed by the daemon; the slots are free again.
    for mut c in idle {
        assert!(closed_within(&mut c, Duration::from_secs(3)).is_some());
    }
    assert!(d.get("/healthz").is_some());
    assert!(open_fds(&d) <= before + 2, "{} fds open", open_fds(&d));
}

#[test]
fn an_event_stream_outlives_the_idle_timeout() {
    let d = start(
        "sse-idle",
        "http_idle_timeout = \"1s\"\nhttp_header_timeout = \"1s\"",
        "",
    );
    let mut stream = TcpStream::connect(d.api).unwrap();
    stream
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    // Open for 4 s, four times the idle timeout, kept alive by the stream's comments.
    assert_eq!(closed_within(&mut stream, Duration::from_secs(4)), None);
    let mut seen = String::new();
    let log = || d.log();
    read_until(&mut stream, &mut seen, "keep-alive", &log);
}
