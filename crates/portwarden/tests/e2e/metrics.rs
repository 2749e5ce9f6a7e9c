//! `/metrics` and `/probe`'s own modules through the real daemon: a TLS monitor against a real
//! `openssl s_server` exposes its certificate's expiry; a monitor removed by a reload leaves no
//! series behind; `[[probe_module]]`s (portwarden's presets and dialogs behind blackbox's
//! `/probe` contract) against a real SMTP server (aiosmtpd) and a real TLS server, added by a
//! reload, and bounded by the scrape timeout; and in a network namespace of its own (a
//! firewall to guard), a daemon with every kind of series whose first scrape has every
//! documented series, in the format each scraper's `Accept` asks for, which `promtool check
//! metrics` and a real Prometheus accept.

use crate::support::{
    aiosmtpd, api_addr, free_port, temp_dir, wait_until, write_config, Daemon, Killed, Netns,
};

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// The daemon with `config` after the common `[daemon]` and `[firewall]`; its API port.
fn start_daemon(dir: &Path, config: &str) -> (Daemon, u16) {
    let api = api_addr();
    let daemon = Daemon::start(&write_config(dir, api, "", config), api);
    (daemon, api.port())
}

/// A real TLS server (`openssl s_server`) with a fresh self-signed certificate valid for
/// `days`; returns the server, its port and the certificate's file.
fn openssl_server(dir: &Path, days: u32) -> (Killed, u16, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days"])
        .arg(days.to_string())
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt-get install openssl)");
    assert!(made.success());
    let port = free_port();
    let server = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Killed(server);
    wait_until("openssl s_server", 10, || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (server, port, cert)
}

#[test]
fn a_tls_monitor_exposes_its_certificate_expiry() {
    let dir = temp_dir("metrics-tls");
    let (_server, tls_port, cert) = openssl_server(&dir, 45);
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
    daemon.signal("-HUP");

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

/// A server that greets with `banner` and then waits, one thread per connection.
fn banner_server(banner: &'static [u8]) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let _ = s.write_all(banner);
                let mut sink = [0u8; 256];
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// A listener that accepts (in the kernel's backlog) and never says a word.
fn silent_server() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

const SMTP_MODULE: &str =
    "[[probe_module]]\nname = \"smtp\"\nprotocol = \"smtp\"\ntimeout = \"5s\"\n";

#[test]
fn a_probe_module_speaks_smtp_to_a_real_server_and_arrives_by_reload() {
    let Some(python) = aiosmtpd() else { return };
    let smtp_port = free_port();
    let smtp = Command::new(python)
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{smtp_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _smtp = Killed(smtp);
    wait_until("aiosmtpd", 15, || {
        TcpStream::connect(("127.0.0.1", smtp_port)).is_ok()
    });
    let refusing = banner_server(b"554 5.3.2 not accepting mail\r\n");

    let dir = temp_dir("probe-module");
    let (daemon, port) = start_daemon(&dir, "");
    let path =
        |module: &str, target: u16| format!("/probe?module={module}&target=127.0.0.1:{target}");
    // Not configured yet: blackbox's 400 for an unknown module.
    assert!(get(port, &path("smtp", smtp_port)).is_none());

    let file = dir.join("portwarden.toml");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(SMTP_MODULE);
    std::fs::write(&file, text).unwrap();
    daemon.signal("-HUP");
    wait_until("the module after the reload", 15, || {
        get(port, &path("smtp", smtp_port)).is_some()
    });

    let ok = samples(&get(port, &path("smtp", smtp_port)).unwrap());
    assert_eq!(ok["probe_success"], 1.0, "{ok:?}");
    assert_eq!(ok["probe_failed_due_to_regex"], 0.0);
    assert_eq!(ok["probe_ip_protocol"], 4.0);
    // A server that answers 554: the smtp preset's greeting check fails it, as a regex would.
    let refused = samples(&get(port, &path("smtp", refusing)).unwrap());
    assert_eq!(refused["probe_success"], 0.0, "{refused:?}");
    assert_eq!(refused["probe_failed_due_to_regex"], 1.0);
    // debug=true shows the module as built.
    let debug = get(port, &(path("smtp", smtp_port) + "&debug=true")).unwrap();
    assert!(debug.contains("[[probe_module]] \"smtp\""), "{debug}");
}

#[test]
fn a_tls_probe_module_reports_the_certificate_and_the_scrape_timeout_bounds_it() {
    let dir = temp_dir("probe-module-tls");
    let (_server, tls_port, _cert) = openssl_server(&dir, 20);
    let (_silent, silent_port) = silent_server();

    let (_daemon, port) = start_daemon(
        &dir,
        "[[probe_module]]\nname = \"tls\"\ntls = { verify = \"none\" }\n\n\
         [[probe_module]]\nname = \"banner\"\nexpect = { prefix = \"220\" }\ntimeout = \"10s\"\n",
    );
    let tls = samples(
        &get(
            port,
            &format!("/probe?module=tls&target=127.0.0.1:{tls_port}"),
        )
        .unwrap(),
    );
    assert_eq!(tls["probe_success"], 1.0, "{tls:?}");
    let expiry = tls["probe_ssl_earliest_cert_expiry"];
    let in_days = (expiry
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64())
        / 86_400.0;
    assert!(
        (19.0..=20.01).contains(&in_days),
        "expires in {in_days} days"
    );
    assert!(
        tls.keys()
            .any(|k| k.starts_with("probe_tls_version_info{version=\"TLS 1.")),
        "{tls:?}"
    );

    // The module allows 10 s; a scrape that allows 1.5 s gets an answer after about 1 s.
    let started = std::time::Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /probe?module=banner&target=127.0.0.1:{silent_port} HTTP/1.1\r\nHost: x\r\n\
         X-Prometheus-Scrape-Timeout-Seconds: 1.5\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let took = started.elapsed();
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    let m = samples(body);
    assert_eq!(m["probe_success"], 0.0, "{raw}");
    assert!(
        (0.9..1.5).contains(&m["probe_duration_seconds"]),
        "duration {}",
        m["probe_duration_seconds"]
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
}

/// The `Accept` of Prometheus 2.42's scrapes.
const PROMETHEUS_2_42_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
const TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_1: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Series on the first scrape of a daemon with a monitor, a notifier, a ladder and a guarded
/// firewall: every name of docs/metrics.md except those below.
const FROM_THE_FIRST_SCRAPE: &[&str] = &[
    "portwarden_monitor_status",
    "portwarden_checks_total",
    "portwarden_check_duration_seconds",
    "portwarden_local_resource_errors_total",
    "portwarden_open_files_limit",
    "portwarden_open_files_needed",
    "portwarden_firewall_ok",
    "portwarden_firewall_violations",
    "portwarden_firewall_repairs_last_hour",
    "portwarden_firewall_paused",
    "portwarden_firewall_repairs_total",
    "portwarden_actions_total",
    "portwarden_notifications_pending",
    "portwarden_notifications_failing",
    "portwarden_store_up",
    "portwarden_store_records_written_total",
    "portwarden_store_dropped_total",
    "portwarden_store_journaled_total",
    "portwarden_store_journal_pending",
    "portwarden_store_journal_written_total",
    "portwarden_store_journal_dropped_total",
    "portwarden_store_db_bytes",
    "portwarden_scheduler_start_lag_p50_seconds",
    "portwarden_scheduler_start_lag_p99_seconds",
    "portwarden_scheduler_start_lag_max_seconds",
    "portwarden_scheduler_lagged_checks_total",
    "portwarden_scheduler_in_flight",
    "portwarden_scheduler_max_in_flight",
    "portwarden_monitors",
];
/// Of those, the ones read from the store: absent while it is still opening.
const FROM_THE_STORE: &[&str] = &[
    "portwarden_notifications_pending",
    "portwarden_notifications_failing",
];
/// Absent until the monitor's first check (a 0 would say "down"), as the docs say.
const AFTER_THE_FIRST_CHECK: &[&str] = &["portwarden_monitor_up"];
/// Only for TLS monitors: `a_tls_monitor_exposes_its_certificate_expiry` checks it.
const TLS_ONLY: &[&str] = &["portwarden_cert_expiry_timestamp_seconds"];

/// The metric names of docs/metrics.md's `/metrics` table (first column, in backticks).
fn documented_series() -> std::collections::BTreeSet<String> {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/metrics.md"
    ))
    .unwrap();
    docs.lines()
        .filter(|l| l.starts_with("| `portwarden_"))
        .flat_map(|l| {
            let cell = l.split('|').nth(1).unwrap();
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The sample names of an exposition (`_bucket`, `_sum`, `_count` folded into their family).
fn series_names(text: &str) -> std::collections::BTreeSet<String> {
    samples(text)
        .keys()
        .map(|k| {
            let name = k.split('{').next().unwrap();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .filter(|family| family.ends_with("_seconds"))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}

#[test]
fn the_test_lists_every_documented_series_once() {
    let listed: std::collections::BTreeSet<String> = FROM_THE_FIRST_SCRAPE
        .iter()
        .chain(AFTER_THE_FIRST_CHECK)
        .chain(TLS_ONLY)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        listed.len(),
        FROM_THE_FIRST_SCRAPE.len() + AFTER_THE_FIRST_CHECK.len() + TLS_ONLY.len()
    );
    assert_eq!(
        listed,
        documented_series(),
        "docs/metrics.md and this test disagree"
    );
}

/// `promtool check metrics` on `text`: its complaints (empty: none). Fails when promtool is
/// missing: CI installs it (Debian's `prometheus`, scripts/install-test-deps).
fn promtool(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is missing: apt-get install prometheus (scripts/install-test-deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        complaints
    } else {
        format!("exit {:?}: {complaints}", out.status.code())
    }
}

/// `GET url` with `Accept: accept` from inside `ns`: the Content-Type and the body.
fn scrape_in(ns: &Netns, url: &str, accept: &str) -> Option<(String, String)> {
    let out = ns
        .cmd("curl")
        .args(["-sS", "--max-time", "5", "-f", "-D", "-", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(url)
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let raw = String::from_utf8(out.stdout).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let content_type = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-type")
            .then(|| v.trim().to_string())
    })?;
    Some((content_type, body.to_string()))
}

#[test]
fn every_documented_series_is_there_from_the_first_scrape_and_promtool_and_prometheus_accept_it() {
    // Without promtool this must fail, not skip.
    assert!(
        promtool("").is_empty(),
        "promtool must accept an empty exposition"
    );
    let Some(mut ns) = Netns::new("metrics") else {
        return;
    };
    ns.sh("nft -f - <<'EOF'\ntable inet filter {\n  chain input {\n    type filter hook input priority filter; policy drop;\n    iif \"lo\" accept\n  }\n}\nEOF");
    let dir = ns.dir.clone();
    let config = dir.join("portwarden.toml");
    // The monitor watches the daemon's own API; its ladder and notifier never have to run,
    // their series must be there anyway.
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"127.0.0.1:9898\"\nstate_dir = \"{state}\"\n\n\
             [firewall]\nrequire = [\"enabled\", \"inbound-default-deny\"]\nverify_every = \"1h\"\n\n\
             [[notifier]]\nname = \"ops\"\ntype = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", \"cat >/dev/null\"]\n\n\
             [[monitor]]\nname = \"api\"\ntarget = \"127.0.0.1:9898\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\
             notify = [\"ops\"]\non_down = [{{ type = \"exec\", command = [\"/bin/true\"] }}]\n",
            state = dir.join("state").display()
        ),
    )
    .unwrap();
    let daemon = ns
        .cmd(env!("CARGO_BIN_EXE_portwarden"))
        .args(["run", "-c", config.to_str().unwrap()])
        .env("PORTWARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    ns.adopt(daemon);

    let url = "http://127.0.0.1:9898/metrics";
    let first = std::cell::RefCell::new(None);
    wait_until("the daemon's first scrape", 30, || {
        *first.borrow_mut() = scrape_in(&ns, url, "*/*");
        first.borrow().is_some()
    });
    let (_, first) = first.into_inner().unwrap();
    let names = series_names(&first);
    // The outbox is read from the store: while it is still opening (`portwarden_store_up 0`)
    // its gauges are absent rather than a made-up 0.
    let store_open = samples(&first).get("portwarden_store_up") == Some(&1.0);
    let missing: Vec<_> = FROM_THE_FIRST_SCRAPE
        .iter()
        .filter(|n| !names.contains(**n))
        .filter(|n| store_open || !FROM_THE_STORE.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "missing on the first scrape: {missing:?}\n{first}"
    );
    let zero = samples(&first);
    for outcome in ["taken", "failed", "gave_up", "reboot_pending"] {
        assert_eq!(
            zero[&format!("portwarden_actions_total{{outcome=\"{outcome}\"}}")],
            0.0
        );
    }
    for outcome in ["repaired", "failed"] {
        let key = format!("portwarden_firewall_repairs_total{{outcome=\"{outcome}\"}}");
        assert_eq!(zero[&key], 0.0, "{first}");
    }
    if !store_open {
        wait_until("the store's series", 15, || {
            scrape_in(&ns, url, "*/*")
                .is_some_and(|(_, b)| FROM_THE_STORE.iter().all(|n| series_names(&b).contains(*n)))
        });
    }
    wait_until("the first check", 15, || {
        scrape_in(&ns, url, "*/*").is_some_and(|(_, b)| {
            AFTER_THE_FIRST_CHECK
                .iter()
                .all(|n| series_names(&b).contains(*n))
        })
    });

    // Each scraper gets the format it asks for; promtool reads the text format clean.
    for (accept, expected) in [
        ("*/*", TEXT_0_0_4),
        ("text/plain;version=0.0.4", TEXT_0_0_4),
        (PROMETHEUS_2_42_ACCEPT, OPENMETRICS_1),
    ] {
        let (content_type, body) = scrape_in(&ns, url, accept).unwrap();
        assert_eq!(content_type, expected, "Accept: {accept}");
        if expected == TEXT_0_0_4 {
            assert_eq!(promtool(&body), "", "Accept: {accept}\n{body}");
            assert!(body.contains("# HELP portwarden_checks_total "), "{body}");
        } else {
            // promtool reads only the text format (its parser takes an OpenMetrics counter's
            // `# HELP portwarden_checks` for another family): a real Prometheus checks this one.
            assert!(body.contains("# TYPE portwarden_checks counter"), "{body}");
            assert!(body.ends_with("# EOF\n"), "{body}");
        }
    }

    // A real Prometheus (2.42, Debian's) scrapes it, asking for OpenMetrics.
    let prometheus_yml = dir.join("prometheus.yml");
    std::fs::write(
        &prometheus_yml,
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: portwarden\n    static_configs:\n      - targets: ['127.0.0.1:9898']\n",
    )
    .unwrap();
    let prometheus = ns
        .cmd("prometheus")
        .arg(format!("--config.file={}", prometheus_yml.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg("--web.listen-address=127.0.0.1:9090")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (apt-get install prometheus)");
    ns.adopt(prometheus);
    let target = std::cell::RefCell::new(serde_json::Value::Null);
    wait_until("Prometheus's scrape of the daemon", 60, || {
        let Some((_, body)) = scrape_in(&ns, "http://127.0.0.1:9090/api/v1/targets", "*/*") else {
            return false;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let t = v["data"]["activeTargets"][0].clone();
        let scraped = t["health"] == "up" || t["health"] == "down";
        *target.borrow_mut() = t;
        scraped
    });
    let target = target.into_inner();
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");
    let query = |q: &str| -> serde_json::Value {
        let (_, body) = scrape_in(
            &ns,
            &format!("http://127.0.0.1:9090/api/v1/query?query={q}"),
            "*/*",
        )
        .unwrap();
        serde_json::from_str(&body).unwrap()
    };
    let actions = query("portwarden_actions_total");
    assert_eq!(
        actions["data"]["result"].as_array().map(Vec::len),
        Some(4),
        "{actions}"
    );
}
