//! The firewall guard and `portwarden firewall` end to end, against real nftables inside a
//! network namespace each test creates (`ip netns add`) and deletes: the machine's own firewall
//! is never touched. The daemon and every command run inside the namespace.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{text, Netns};
use serde_json::Value;

const RULESET: &str = r#"
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
        ip saddr 10.0.0.0/8 tcp dport 22 accept
        tcp dport { 80, 443 } accept
    }
}
"#;

const SSH_RULE: &str = "ip saddr 10.0.0.0/8 tcp dport 22 accept";

/// What these tests do in their namespace: load rulesets, run `portwarden` and the daemon.
trait FirewallNs {
    fn load(&self, ruleset: &str);
    /// The ruleset as nft prints it without counters: what "equal to the baseline" means.
    fn listing(&self, what: &str) -> String;
    fn portwarden(&self, args: &[&str]) -> Output;
    fn config(&self, firewall: &str) -> PathBuf;
    fn state(&self) -> PathBuf;
    fn baseline(&self) -> PathBuf;
    fn save_baseline(&self);
    fn daemon(&mut self, config: &Path) -> Log;
    /// The daemon, optionally with its own `PATH` (to take tools away from it).
    fn daemon_with(&mut self, config: &Path, path: Option<&Path>) -> Log;
}

impl FirewallNs for Netns {
    fn load(&self, ruleset: &str) {
        let path = self.dir.join("ruleset.nft");
        std::fs::write(&path, ruleset).unwrap();
        self.sh(&format!("nft -f {}", path.display()));
    }

    fn listing(&self, what: &str) -> String {
        self.sh(&format!("nft -s list {what}"))
    }

    fn portwarden(&self, args: &[&str]) -> Output {
        self.cmd(env!("CARGO_BIN_EXE_portwarden"))
            .args(args)
            .output()
            .unwrap()
    }

    fn config(&self, firewall: &str) -> PathBuf {
        let path = self.dir.join("portwarden.toml");
        let text = format!(
            "[daemon]\nlisten = \"127.0.0.1:9898\"\nstate_dir = \"{}\"\n\n[firewall]\nbaseline = \"{}\"\n{firewall}\n",
            self.state().display(),
            self.baseline().display()
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn baseline(&self) -> PathBuf {
        self.dir.join("firewall.baseline")
    }

    fn save_baseline(&self) {
        let out = self.portwarden(&[
            "firewall",
            "baseline",
            "save",
            "--baseline",
            self.baseline().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }

    fn daemon(&mut self, config: &Path) -> Log {
        self.daemon_with(config, None)
    }

    fn daemon_with(&mut self, config: &Path, path: Option<&Path>) -> Log {
        // `env` inside the namespace: a PATH set on this Command would also be used to find `ip`.
        let mut command = match path {
            Some(p) => {
                let mut c = self.cmd("env");
                c.arg(format!("PATH={}", p.display()))
                    .arg(env!("CARGO_BIN_EXE_portwarden"));
                c
            }
            None => self.cmd(env!("CARGO_BIN_EXE_portwarden")),
        };
        let mut child = command
            .args(["run", "-c", config.to_str().unwrap()])
            .env("PORTWARDEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Log(Arc::new(Mutex::new(String::new())));
        let sink = log.0.clone();
        let stderr = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.adopt(child);
        log
    }
}

/// The daemon's log, collected as it is written.
#[derive(Clone)]
struct Log(Arc<Mutex<String>>);

impl Log {
    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Waits (bounded) until `needle` occurs at least `n` times.
    fn wait_for(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n}× {needle:?}; daemon log:\n{}",
                self.text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_guard_restores_a_flushed_or_tampered_ruleset_and_leaves_other_tables_alone() {
    let Some(mut ns) = Netns::new("restore") else {
        return;
    };
    ns.load(RULESET);
    ns.save_baseline();
    let baseline = ns.listing("table inet filter");
    // A long verify period: every repair below must come from the change notifications.
    let config = ns.config(
        "require = [\"enabled\", \"inbound-default-deny\"]\nrules = [\"tcp/22 from 10.0.0.0/8\"]\nverify_every = \"1h\"",
    );
    let log = ns.daemon(&config);
    log.wait_for("watching nftables changes", 1);

    // Another tool's table, added after the baseline, is none of the guard's business.
    ns.sh("nft add table ip othertool; nft add chain ip othertool pre '{ type filter hook prerouting priority -150; }'");
    let other = ns.listing("table ip othertool");

    ns.sh("nft chain inet filter input '{ policy accept; }'");
    log.wait_for("event=\"firewall_repaired\"", 1);
    assert_eq!(ns.listing("table inet filter"), baseline);
    assert_eq!(ns.listing("table ip othertool"), other);

    ns.sh("nft -a list chain inet filter input | grep 'tcp dport 22' | sed 's/.*# handle //' | xargs -I{} nft delete rule inet filter input handle {}");
    log.wait_for("event=\"firewall_repaired\"", 2);
    assert_eq!(ns.listing("table inet filter"), baseline);
    let log_text = log.text();
    assert!(
        log_text.contains(&format!("- [inet filter input] {SSH_RULE}")),
        "the alert names the vanished rule:\n{log_text}"
    );

    ns.sh("nft flush ruleset");
    log.wait_for("event=\"firewall_repaired\"", 3);
    assert_eq!(ns.listing("table inet filter"), baseline);
    let log_text = log.text();
    assert!(
        log_text.contains("switched off") && log_text.contains("(nft)"),
        "the alert says what happened and names the process:\n{log_text}"
    );
    assert!(!log_text.contains("firewall_repair_failed"), "{log_text}");
}

#[test]
fn a_pause_holds_repairs_and_the_hourly_limit_stops_a_fight() {
    let Some(mut ns) = Netns::new("pause") else {
        return;
    };
    ns.load(RULESET);
    ns.save_baseline();
    let config = ns.config("verify_every = \"500ms\"\nmax_repairs_per_hour = 1");
    let log = ns.daemon(&config);
    log.wait_for("watching nftables changes", 1);
    let state = ns.state();
    let pause = ns.portwarden(&[
        "firewall",
        "pause",
        "--for",
        "10m",
        "--reason",
        "migrating rules",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(pause.status.success(), "{}", text(&pause));

    ns.sh("nft flush ruleset");
    log.wait_for("not repairing: paused", 1);
    // `status` shows the pause as a date and the time left, not a Unix time.
    let status = ns.portwarden(&["status", "--listen", "127.0.0.1:9898"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains(", repairs paused until 20") && shown.contains("(in 9m 5"),
        "{shown}"
    );
    assert!(log.text().contains("migrating rules"), "{}", log.text());
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(ns.listing("ruleset").trim(), "", "paused: nothing restored");

    let resume = ns.portwarden(&["firewall", "resume", "--state-dir", state.to_str().unwrap()]);
    assert!(resume.status.success(), "{}", text(&resume));
    log.wait_for("event=\"firewall_repaired\"", 1);
    assert!(ns.listing("ruleset").contains("policy drop"));

    // The one repair allowed this hour is spent: the next flush is only reported.
    ns.sh("nft flush ruleset");
    log.wait_for("max_repairs_per_hour = 1", 1);
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(ns.listing("ruleset").trim(), "");
    assert_eq!(log.count("event=\"firewall_repaired\""), 1);
}

#[test]
fn without_a_baseline_the_guard_only_alerts() {
    let Some(mut ns) = Netns::new("alert") else {
        return;
    };
    ns.load(RULESET);
    let config = ns.config("verify_every = \"500ms\"");
    let log = ns.daemon(&config);
    log.wait_for("watching nftables changes", 1);
    ns.sh("nft flush ruleset");
    log.wait_for("event=\"firewall_violation\"", 1);
    thread::sleep(Duration::from_millis(1200));
    assert_eq!(ns.listing("ruleset").trim(), "");
    let log_text = log.text();
    assert!(log_text.contains("switched off"), "{log_text}");
    assert!(
        log_text.contains("not repairing: on_violation is \"alert\""),
        "{log_text}"
    );
    // Reported once, not at every verification.
    assert_eq!(log.count("event=\"firewall_violation\""), 1, "{log_text}");
}

#[test]
fn the_cli_shows_state_drift_and_restores() {
    let Some(ns) = Netns::new("cli") else {
        return;
    };
    let base = ns.baseline();
    let base = base.to_str().unwrap();

    // An empty firewall is not saved as a baseline by accident.
    let refused = ns.portwarden(&["firewall", "baseline", "save", "--baseline", base]);
    assert_ne!(refused.status.code(), Some(0), "{}", text(&refused));
    assert!(!ns.baseline().exists());

    ns.load(RULESET);
    ns.save_baseline();
    let status = ns.portwarden(&["firewall", "status", "--json", "--baseline", base]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["backend"], "nftables");
    assert_eq!(doc["enabled"], true);
    assert_eq!(doc["inbound_default_deny"], true);
    assert_eq!(doc["rules"], 4, "{doc}");
    assert_eq!(doc["rule_counts"]["inet filter input"], 4, "{doc}");

    ns.sh("nft chain inet filter input '{ policy accept; }'");
    let diff = ns.portwarden(&["firewall", "baseline", "diff", "--baseline", base]);
    assert_eq!(diff.status.code(), Some(1), "{}", text(&diff));
    let shown = String::from_utf8_lossy(&diff.stdout);
    assert!(shown.contains("drop → accept"), "{shown}");

    let restore = ns.portwarden(&["firewall", "restore", "--baseline", base]);
    assert_eq!(restore.status.code(), Some(0), "{}", text(&restore));
    let clean = ns.portwarden(&["firewall", "baseline", "diff", "--baseline", base]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));

    // A damaged baseline is named, and nothing is restored from it.
    std::fs::write(
        ns.baseline(),
        "{\"format\": 1, \"backend\": \"nftables\", \"rules\": [",
    )
    .unwrap();
    ns.sh("nft flush ruleset");
    let broken = ns.portwarden(&["firewall", "restore", "--baseline", base]);
    assert_eq!(broken.status.code(), Some(2), "{}", text(&broken));
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains(base),
        "{}",
        text(&broken)
    );
    assert_eq!(ns.listing("ruleset").trim(), "");
}

#[test]
fn a_reload_that_changes_firewall_settings_restarts_the_guard_and_the_api_shows_it() {
    let Some(mut ns) = Netns::new("fw-reload") else {
        return;
    };
    ns.load(RULESET);
    ns.save_baseline();
    let config = ns.config("on_violation = \"alert\"\nverify_every = \"1h\"");
    let log = ns.daemon(&config);
    log.wait_for("watching nftables changes", 1);
    ns.sh("nft chain inet filter input '{ policy accept; }'");
    log.wait_for("not repairing: on_violation is \"alert\"", 1);

    let api = || -> Value {
        let body = ns.sh(
            "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9898/api/v1/firewall').read().decode())\"",
        );
        serde_json::from_str(&body).unwrap()
    };
    let seen = api();
    assert_eq!(seen["state"], "violated", "{seen}");
    assert_eq!(seen["backend"], "nftables", "{seen}");
    assert_eq!(seen["on_violation"], "alert", "{seen}");
    assert!(seen["drift"]["defaults"][0]
        .as_str()
        .unwrap()
        .contains("drop → accept"));

    // The operator switches to restoring and reloads: the new guard repairs at once.
    ns.config("on_violation = \"restore\"\nverify_every = \"1h\"");
    let pid = ns.child_pid(0).to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    log.wait_for("restarting the firewall guard", 1);
    log.wait_for("event=\"firewall_repaired\"", 1);
    assert!(ns
        .listing("chain inet filter input")
        .contains("policy drop"));
    let seen = api();
    assert_eq!(seen["state"], "ok", "{seen}");
    assert_eq!(seen["last_repair"]["action"], "restore", "{seen}");
    let status = ns.portwarden(&["status", "--listen", "127.0.0.1:9898"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("firewall: nftables OK, checked"), "{shown}");
}

/// The iptables backends through the daemon: a restore that opens and flushes INPUT is undone. The nf_tables
/// variant is seen through nftables notifications; legacy has none, so the periodic
/// verification finds it.
fn iptables_guard(variant: &str) {
    let Some(mut ns) = Netns::new(&format!("ipt-{variant}")) else {
        return;
    };
    let ipt = format!("iptables-{variant}");
    if !Command::new("sh")
        .args(["-c", &format!("command -v {ipt}")])
        .status()
        .unwrap()
        .success()
    {
        assert!(std::env::var_os("CI").is_none(), "{ipt} is not installed");
        return;
    }
    ns.sh(&format!(
        "{ipt} -A INPUT -i lo -j ACCEPT && \
         {ipt} -A INPUT -s 10.0.0.0/8 -p tcp --dport 22 -m comment --comment ssh -j ACCEPT && \
         {ipt} -P INPUT DROP && ip6tables-{variant} -P INPUT DROP"
    ));
    let saved = ns.sh(&format!("{ipt}-save -t filter | grep -v '^#'"));
    ns.save_baseline();
    let config = ns.config(&format!(
        "backend = \"iptables-{variant}\"\nrules = [\"tcp/22 from 10.0.0.0/8\"]\nverify_every = \"{}\"",
        if variant == "nft" { "1h" } else { "500ms" }
    ));
    let log = ns.daemon(&config);
    log.wait_for("firewall guard: iptables", 1);
    if variant == "nft" {
        log.wait_for("watching nftables changes", 1);
    }
    // One transaction: INPUT flushed and opened at once.
    ns.sh(&format!(
        "printf '*filter\\n:INPUT ACCEPT [0:0]\\n:FORWARD ACCEPT [0:0]\\n:OUTPUT ACCEPT [0:0]\\nCOMMIT\\n' | {ipt}-restore"
    ));
    log.wait_for("event=\"firewall_repaired\"", 1);
    let now = ns.sh(&format!("{ipt}-save -t filter | grep -v '^#'"));
    let strip = |s: &str| {
        s.lines()
            .map(|l| l.split(" [").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&now), strip(&saved));
    let log_text = log.text();
    assert!(
        log_text.contains("required rule missing: accept tcp/22 from 10.0.0.0/8"),
        "{log_text}"
    );
}

#[test]
fn the_guard_restores_iptables_nft() {
    iptables_guard("nft");
}

#[test]
fn the_guard_restores_iptables_legacy_by_periodic_verification() {
    iptables_guard("legacy");
}

#[test]
fn a_storm_of_changes_costs_few_verifications_and_a_flush_is_still_caught() {
    let Some(mut ns) = Netns::new("fw-storm") else {
        return;
    };
    ns.load(RULESET);
    ns.save_baseline();
    let config = ns.config("verify_every = \"1h\"");
    let log = ns.daemon(&config);
    log.wait_for("watching nftables changes", 1);
    let verifications = || -> u64 {
        let body = ns.sh(
            "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9898/api/v1/firewall').read().decode())\"",
        );
        serde_json::from_str::<Value>(&body).unwrap()["verifications"]
            .as_u64()
            .unwrap()
    };
    let before = verifications();
    // fail2ban-style: another tool's set gets 300 elements, one transaction each.
    ns.sh("nft add table ip f2b; nft add set ip f2b banned '{ type ipv4_addr; }'; \
           i=0; while [ $i -lt 300 ]; do nft add element ip f2b banned \"{ 10.9.$((i / 250)).$((i % 250 + 1)) }\"; i=$((i+1)); done");
    thread::sleep(Duration::from_millis(500));
    let during = verifications() - before;
    assert!(
        during < 100,
        "{during} verifications for 300 changes: bursts must be folded"
    );
    assert_eq!(log.count("firewall_violation"), 0, "{}", log.text());
    ns.sh("nft flush table inet filter");
    log.wait_for("event=\"firewall_repaired\"", 1);
    assert!(ns
        .listing("chain inet filter input")
        .contains("policy drop"));
}

#[test]
fn without_nft_monitor_the_guard_says_so_once_and_still_verifies() {
    let Some(mut ns) = Netns::new("nomon") else {
        return;
    };
    // A PATH with the iptables-nft tools but no `nft`: no change notifications.
    let bin = ns.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in [
        "iptables-nft-save",
        "ip6tables-nft-save",
        "iptables-nft-restore",
        "ip6tables-nft-restore",
    ] {
        let found = ns.sh(&format!("command -v {tool}"));
        std::os::unix::fs::symlink(found.trim(), bin.join(tool)).unwrap();
    }
    ns.sh("iptables-nft -A INPUT -i lo -j ACCEPT && iptables-nft -P INPUT DROP && ip6tables-nft -P INPUT DROP");
    ns.save_baseline();
    let config = ns.config("backend = \"iptables-nft\"\nverify_every = \"500ms\"");
    let log = ns.daemon_with(&config, Some(&bin));
    log.wait_for("cannot watch nftables changes", 1);
    ns.sh("iptables-nft -P INPUT ACCEPT");
    log.wait_for("event=\"firewall_repaired\"", 1);
    assert!(ns.sh("iptables-nft -S INPUT").contains("-P INPUT DROP"));
    // The first retry (after 5 s) fails quietly.
    thread::sleep(Duration::from_millis(5500));
    assert_eq!(
        log.count("cannot watch nftables changes"),
        1,
        "{}",
        log.text()
    );
}

#[test]
fn a_garbled_listing_is_reported_and_never_acted_on() {
    let Some(mut ns) = Netns::new("garbled") else {
        return;
    };
    ns.load(RULESET);
    ns.save_baseline();
    // An `nft` whose JSON listing is cut short; everything else goes to the real one.
    let real = ns.sh("command -v nft");
    let bin = ns.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let shim = bin.join("nft");
    std::fs::write(
        &shim,
        format!(
            "#!/bin/sh\nif [ \"$1 $2 $3\" = \"-j list ruleset\" ]; then\n  \
             printf '{{\"nftables\": [{{\"metainfo\": {{\"json_schema_version\": 1}}}}, {{\"table\": {{\"family\": \"inet\", \"na'\n  \
             exit 0\nfi\nexec {} \"$@\"\n",
            real.trim()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&shim, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let config = ns.config("backend = \"nftables\"\nverify_every = \"300ms\"");
    let log = ns.daemon_with(&config, Some(Path::new(&path)));
    log.wait_for("event=\"firewall_unreadable\"", 1);
    ns.sh("nft flush ruleset");
    thread::sleep(Duration::from_millis(1500));
    // Nothing was restored from a listing it could not read, and it said so once.
    assert_eq!(ns.listing("ruleset").trim(), "");
    let log_text = log.text();
    assert!(log_text.contains("could not be read"), "{log_text}");
    assert_eq!(log.count("event=\"firewall_unreadable\""), 1, "{log_text}");
    assert_eq!(log.count("firewall_repaired"), 0, "{log_text}");
}
