//! Every config the repo shows loads: the DESIGN.md sketch, the example files, each TOML block
//! of the docs; and the example covers every option.

use super::*;

/// The config sketch of DESIGN.md ("User-facing contract"), verbatim.
const DESIGN_SKETCH: &str = r#"
[daemon]
listen = "127.0.0.1:9898"        # API, dashboard, /metrics, /probe
state_dir = "/var/lib/portwarden" # SQLite history + outbox

[defaults]
interval = "30s"
timeout = "5s"
fail_after = 3                    # consecutive failures before DOWN
recover_after = 2

[[monitor]]
name = "mail"
target = "127.0.0.1:25"
protocol = "smtp"                 # preset: expect 220, QUIT, optional STARTTLS
notify = ["ops-mail"]
on_down = [ { type = "restart", unit = "postfix.service" },
            { type = "reboot", after_failed_restarts = 3, max_per_day = 1 } ]

[[monitor]]
name = "custom-app"
target = "127.0.0.1:7000"
send = "HELLO\r\n"
expect = { regex = "^WELCOME v\\d+" }
owner = "myapp"                   # the listening socket must belong to this program

[firewall]
require = ["enabled", "inbound-default-deny"]
baseline = "/etc/portwarden/firewall.baseline"
on_violation = "restore"
notify = ["ops-mail"]

[[notifier]]
name = "ops-mail"
type = "smtp"
server = "smtp.example.com:587"
from = "portwarden@example.com"
to = ["ops@example.com"]
username = "portwarden"
password_env = "SMTP_PASSWORD"
"#;

#[test]
fn design_sketch_loads() {
    let c = ok(DESIGN_SKETCH);
    assert_eq!(c.daemon.listen.to_string(), "127.0.0.1:9898");
    assert_eq!(
        c.daemon.state_dir.as_deref(),
        Some(Path::new("/var/lib/portwarden"))
    );
    assert_eq!(c.daemon.max_in_flight, 1024);
    assert_eq!(c.monitors.len(), 2);
    let mail = monitor(&c, "mail");
    assert_eq!(mail.probe.spec().target.to_string(), "127.0.0.1:25");
    assert_eq!(mail.notify, vec!["ops-mail".to_string()]);
    assert_eq!(mail.interval, Duration::from_secs(30));
    assert_eq!(mail.probe.spec().limits.deadline, Duration::from_secs(5));
    assert_eq!(mail.probe.spec().quit.as_deref(), Some(&b"QUIT\r\n"[..]));
    assert_eq!(mail.origin, crate::monitor::Origin::Config);
    assert_eq!(mail.heal.steps.len(), 2);
    assert_eq!(mail.heal.steps[0].action.kind(), "restart");
    // `after_failed_restarts = 3` on the reboot: the restart is tried three times first.
    assert_eq!(mail.heal.steps[0].attempts, 3);
    assert_eq!(mail.heal.steps[1].action.kind(), "reboot");
    let app = monitor(&c, "custom-app");
    match &app.probe.spec().steps[..] {
        [Step::Send(s), Step::Expect(e)] => {
            assert_eq!(s, b"HELLO\r\n");
            assert!(
                matches!(&e.matchers[..], [Matcher::Regex(r)] if r.as_str() == r"^WELCOME v\d+")
            );
        }
        other => panic!("unexpected steps {other:?}"),
    }
    assert_eq!(
        app.owner.as_ref().map(ToString::to_string).as_deref(),
        Some("myapp")
    );
    assert_eq!(c.notifiers.len(), 1);
    assert_eq!(c.notifiers[0].name, "ops-mail");
    assert_eq!(c.notifiers[0].spec.kind(), "smtp");
    assert_eq!(c.notifiers[0].group_window, Duration::from_secs(30));
    assert_eq!(c.notifiers[0].remind_every, None);
    assert_eq!(c.firewall.on_violation, Some(super::OnViolation::Restore));
    assert_eq!(
        c.firewall.policy.require,
        vec![
            portwarden_firewall::Requirement::Enabled,
            portwarden_firewall::Requirement::InboundDefaultDeny
        ]
    );
    assert_eq!(c.firewall.notify, vec!["ops-mail".to_string()]);
}

#[test]
fn every_example_in_the_repo_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path) {
                panic!("{} does not load:\n{e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen > 0, "no example found in {}", dir.display());
    assert!(load_str(example()).is_ok());
}

#[test]
fn every_toml_block_of_the_docs_loads() {
    for (name, at_least) in [
        ("config.md", 5),
        ("notifications.md", 1),
        ("firewall.md", 1),
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs")
            .join(name);
        let doc = std::fs::read_to_string(&path).unwrap();
        let mut blocks = 0;
        let mut rest = doc.as_str();
        while let Some(start) = rest.find("```toml\n") {
            let body = &rest[start + 8..];
            let end = body.find("```").expect("closed code block");
            if let Err(e) = load_str(&body[..end]) {
                panic!(
                    "docs/{name} block {} does not load:\n{}\n{e}",
                    blocks + 1,
                    &body[..end]
                );
            }
            blocks += 1;
            rest = &body[end + 3..];
        }
        assert!(
            blocks >= at_least,
            "only {blocks} toml blocks found in docs/{name}"
        );
    }
}

#[test]
fn example_covers_every_option() {
    // Every key of the schema appears in the example, set or commented out.
    let example = example();
    for key in [
        "listen",
        "state_dir",
        "max_in_flight",
        "http_header_timeout",
        "http_idle_timeout",
        "http_max_connections",
        "interval",
        "timeout",
        "connect_timeout",
        "idle_timeout",
        "max_bytes",
        "family",
        "fail_after",
        "recover_after",
        "window",
        "flap_max_transitions",
        "flap_window",
        "notify",
        "response_time",
        "cert_days",
        "name",
        "target",
        "protocol",
        "starttls",
        "tls",
        "sni",
        "verify",
        "ca_file",
        "client_cert",
        "client_key",
        "send",
        "send_hex",
        "expect",
        "expect_mode",
        "contains",
        "prefix",
        "regex",
        "hex",
        "dialog",
        "quit",
        "send_delay",
        "source",
        "must_be_closed",
        "state_on_refused",
        "state_on_mismatch",
        "owner",
        "on_down",
        "tags",
        "[firewall]",
        "[[notifier]]",
    ] {
        let mentioned = if key.starts_with('[') {
            example.contains(key)
        } else {
            example.contains(&format!("{key} ="))
        };
        assert!(mentioned, "examples/portwarden.toml does not show {key}");
    }
}
