//! The wording of every config problem is pinned here: users grep for it and scripts parse
//! `file:line:col:`.

use std::time::Duration;

use probe::{MatchMode, Matcher, StartTls, State, Step, Verify};

use super::*;

fn load_str(text: &str) -> Result<Config, ConfigErrors> {
    load_files(
        vec![SourceFile::new("portwarden.toml".into(), text.into())],
        &|_, _| false,
    )
}

fn ok(text: &str) -> Config {
    match load_str(text) {
        Ok(c) => c,
        Err(e) => panic!("config should load, got:\n{e}"),
    }
}

/// The problems as printed, one string each.
fn problems(text: &str) -> Vec<String> {
    match load_str(text) {
        Ok(_) => panic!("config should not load"),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

fn monitor<'a>(c: &'a Config, name: &str) -> &'a Monitor {
    c.monitors
        .iter()
        .find(|m| m.name == name)
        .expect("monitor exists")
}

/// A directory under the system temp dir, emptied, for directory-merge tests.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portwarden-config-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

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
            firewall::Requirement::Enabled,
            firewall::Requirement::InboundDefaultDeny
        ]
    );
    assert_eq!(c.firewall.notify, vec!["ops-mail".to_string()]);
}

#[test]
fn firewall_section_defaults_and_every_option() {
    let none = ok("");
    assert!(none.firewall.guard);
    assert_eq!(none.firewall.on_violation, None);
    assert_eq!(
        none.firewall.policy.require,
        vec![firewall::Requirement::Enabled]
    );
    assert_eq!(none.firewall.verify_every, Duration::from_secs(30));
    let c = ok(r#"
[firewall]
guard = true
backend = "nftables"
require = ["inbound-default-deny"]
rules = ["tcp/22 from 10.0.0.0/8", "drop tcp/23"]
tables = ["inet filter"]
baseline = "fw.json"
on_violation = "alert"
verify_every = "5s"
watch = false
max_repairs_per_hour = 2
"#);
    let f = &c.firewall;
    assert_eq!(f.backend, Some(firewall::BackendKind::Nftables));
    assert_eq!(f.policy.rules.len(), 2);
    assert_eq!(
        f.policy.rules[0].to_string(),
        "accept tcp/22 from 10.0.0.0/8"
    );
    assert_eq!(f.tables.as_deref(), Some(&["inet filter".to_string()][..]));
    assert!(f.baseline.ends_with("fw.json"));
    assert_eq!(f.on_violation, Some(super::OnViolation::Alert));
    assert_eq!(f.verify_every, Duration::from_secs(5));
    assert!(!f.watch);
    assert_eq!(f.max_repairs_per_hour, 2);
}

#[test]
fn firewall_section_mistakes_are_named_with_their_place() {
    assert_eq!(
        problems(
            r#"[firewall]
backend = "nftable"
require = ["enabled", "deny-all"]
rules = ["tcp/70000"]
tables = ["filter"]
on_violation = "fix"
verify_every = "0s"
colour = "red"
"#
        ),
        vec![
            "portwarden.toml:2:11: firewall: backend: unknown backend \"nftable\"; did you mean \"nftables\"? expected \"auto\" or one of nftables, iptables-nft, iptables-legacy, ufw, firewalld, windows, pf, mac-app-firewall",
            "portwarden.toml:3:23: firewall: require[1]: unknown requirement `deny-all` (expected \"enabled\" or \"inbound-default-deny\")",
            "portwarden.toml:4:10: firewall: rules[0]: `70000`: port must be 1-65535",
            "portwarden.toml:5:11: firewall: tables[0]: \"filter\" is not a table; write \"FAMILY NAME\", e.g. \"inet filter\" (families: ip, ip6, inet, arp, bridge, netdev)",
            "portwarden.toml:6:16: firewall: on_violation: unknown mode \"fix\"; expected \"alert\", \"enable\" or \"restore\"",
            "portwarden.toml:7:16: firewall: verify_every: must be greater than 0",
            "portwarden.toml:8:1: firewall: colour: unknown key (`portwarden config example` shows every key)",
        ]
    );
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

#[test]
fn unknown_keys_point_at_the_key() {
    assert_eq!(
        problems(
            "[[monitor]]\nname = \"web\"\ntarget = \"127.0.0.1:80\"\ntagz = [\"a\"]\n\n\
             [daemon]\n  listen = \"127.0.0.1:1\"\n  lisen = \"x\"\n"
        ),
        vec![
            "portwarden.toml:4:1: monitor \"web\": tagz: unknown key, did you mean `tags`?",
            "portwarden.toml:8:3: daemon: lisen: unknown key, did you mean `listen`?",
        ]
    );
    assert_eq!(
        problems("[monitors]\nx = 1\n"),
        vec!["portwarden.toml:1:2: monitors: unknown top-level key, did you mean `monitor`?"]
    );
    assert_eq!(
        problems("[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\ntls = { verify = \"none\", sin = \"x\" }\n"),
        vec!["portwarden.toml:4:26: monitor \"a\": tls.sin: unknown key, did you mean `sni`?"]
    );
    assert_eq!(
        problems("[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\nfrobnicate = 1\n"),
        vec![
            "portwarden.toml:4:1: monitor \"a\": frobnicate: unknown key \
             (`portwarden config example` shows every key)"
        ]
    );
}

#[test]
fn bad_port_names_monitor_and_value() {
    assert_eq!(
        problems("[[monitor]]\nname = \"mail\"\ntarget = \"127.0.0.1:0\"\n"),
        vec!["portwarden.toml:3:10: monitor \"mail\": target: port must be 1-65535, got 0"]
    );
    assert_eq!(
        problems("[[monitor]]\nname = \"db\"\ntarget = \"db.internal\"\n"),
        vec![
            "portwarden.toml:3:10: monitor \"db\": target: no port in \"db.internal\": write \
             \"db.internal:PORT\", or set a protocol whose default port applies"
        ]
    );
}

#[test]
fn bad_durations_are_reported_with_path_and_position() {
    assert_eq!(
        problems(
            "[defaults]\ninterval = \"5 parsecs\"\n\n[[monitor]]\nname = \"a\"\n\
             target = \"h:1\"\ntimeout = \"0s\"\nidle_timeout = 3\n"
        ),
        vec![
            "portwarden.toml:2:12: defaults: interval: invalid duration \"5 parsecs\": unknown \
             unit \"parsecs\" (use ms, s, m, h, d, e.g. \"30s\")",
            "portwarden.toml:7:11: monitor \"a\": timeout: must be greater than 0",
            "portwarden.toml:8:16: monitor \"a\": idle_timeout: a duration needs a unit: write \
             \"3s\" or \"3ms\", not 3",
        ]
    );
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    let p = problems("[[monitor]]\nname = \"a\"\ntarget = \"h\"\nprotocol = \"smpt\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with(
            "portwarden.toml:4:12: monitor \"a\": protocol: unknown protocol \"smpt\"; did you \
             mean \"smtp\"? use \"tcp\" or one of: smtp, submission, smtps,"
        ),
        "{}",
        p[0]
    );
}

#[test]
fn bad_regex_and_hex_are_pinned() {
    assert_eq!(
        problems(
            "[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n\
             expect = [\"ok\", { regex = \"(\" }, { hex = \"zz\" }]\n"
        ),
        vec![
            "portwarden.toml:4:27: monitor \"a\": expect[2].regex: invalid regex \"(\": unclosed group",
            "portwarden.toml:4:42: monitor \"a\": expect[3].hex: byte 0 is not hex: \"zz\"",
        ]
    );
}

#[test]
fn bad_owner_is_pinned() {
    assert_eq!(
        problems("[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\nowner = \"sbin/nginx\"\n"),
        vec![
            "portwarden.toml:4:9: monitor \"a\": owner: \"sbin/nginx\": give a process name, an \
             absolute executable path, or unit:NAME"
        ]
    );
    let c = ok("[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\nowner = \"unit:nginx\"\n");
    assert_eq!(
        c.monitors[0].owner,
        Some(sockets::owner::ExpectedOwner::Unit("nginx.service".into()))
    );
}

#[test]
fn duplicate_names_name_both_places() {
    assert_eq!(
        problems(
            "[[monitor]]\nname = \"web\"\ntarget = \"h:80\"\n\n\
             [[monitor]]\nname = \"web\"\ntarget = \"h:443\"\n"
        ),
        vec![
            "portwarden.toml:6:8: monitor \"web\": name: duplicate monitor name, first defined \
             at portwarden.toml:2:8"
        ]
    );
}

#[test]
fn notify_must_name_a_notifier() {
    assert_eq!(
        problems(
            "[[notifier]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x\"\n\n\
             [[monitor]]\nname = \"a\"\ntarget = \"h:1\"\nnotify = [\"ops\", \"opz\", \"pager\"]\n"
        ),
        vec![
            "portwarden.toml:9:18: monitor \"a\": notify: no notifier named \"opz\"; did you mean \
             \"ops\"? define it with [[notifier]]",
            "portwarden.toml:9:25: monitor \"a\": notify: no notifier named \"pager\"; define it \
             with [[notifier]]",
        ]
    );
    assert_eq!(
        problems("[defaults]\nnotify = [\"x\"]\n"),
        vec!["portwarden.toml:2:11: defaults: notify: no notifier named \"x\"; define it with [[notifier]]"]
    );
    assert_eq!(
        problems("[[notifier]]\nname = \"ops\"\n[[notifier]]\ntype = \"smtp\"\n"),
        vec![
            "portwarden.toml:1:1: notifier \"ops\": type: missing; say which kind of notifier this \
             is, e.g. type = \"smtp\"",
            "portwarden.toml:3:1: notifier[2]: name: missing; every notifier needs a name",
        ]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let p = problems(
        r#"
[daemon]
listen = "localhost"
max_in_flight = 0

[defaults]
fail_after = 0

[[monitor]]
name = "mail"
target = "127.0.0.1:0"
protocol = "smtp"
intervall = "30s"
interval = "1 fortnight"

[[monitor]]
name = "web"
target = "127.0.0.1:80"
expect = { regex = "[" }
owner = ""
window = 1
fail_after = 3

[[monitor]]
target = "127.0.0.1:81"
"#,
    );
    assert_eq!(
        p,
        vec![
            "portwarden.toml:3:10: daemon: listen: not an address and port: \"localhost\"; write an \
             IP address and port: \"127.0.0.1:9898\" (this host only), \"0.0.0.0:9898\" (every \
             interface), \"[::1]:9898\" or \"localhost:9898\"",
            "portwarden.toml:4:17: daemon: max_in_flight: must be 1-1000000, got 0",
            "portwarden.toml:7:14: defaults: fail_after: must be 1-1000, got 0",
            "portwarden.toml:11:10: monitor \"mail\": target: port must be 1-65535, got 0",
            "portwarden.toml:13:1: monitor \"mail\": intervall: unknown key, did you mean `interval`?",
            "portwarden.toml:14:12: monitor \"mail\": interval: invalid duration \"1 fortnight\": \
             unknown unit \"fortnight\" (use ms, s, m, h, d, e.g. \"30s\")",
            "portwarden.toml:19:20: monitor \"web\": expect.regex: invalid regex \"[\": unclosed \
             character class",
            "portwarden.toml:20:9: monitor \"web\": owner: must not be empty",
            "portwarden.toml:21:10: monitor \"web\": window: 1 is smaller than fail_after (3) or \
             recover_after (2): the last 1 results can never hold 3",
            "portwarden.toml:24:1: monitor[3]: name: missing; every monitor needs a unique name",
        ]
    );
    let errors = load_str("[daemon]\nlisten = 1\nstate_dir = 2\n").unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(errors.to_string().ends_with("\n2 problems"), "{errors}");
}

#[test]
fn type_errors_say_toml_types() {
    assert_eq!(
        problems("daemon = 5
firewall = \"on\"\n\n[[notifier]]\nname = 1\ntype = \"x\"\n\n[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\nmax_bytes = \"1k\"\ntags = \"web\"\n"),
        vec![
            "portwarden.toml:1:10: daemon: invalid type: integer `5`, expected a table",
            "portwarden.toml:2:12: firewall: invalid type: string \"on\", expected a table",
            "portwarden.toml:5:8: notifier[1]: name: must be a string",
            "portwarden.toml:11:13: monitor \"a\": max_bytes: invalid type: string \"1k\", expected an integer",
            "portwarden.toml:12:8: monitor \"a\": tags: invalid type: string \"web\", expected an array",
        ]
    );
    assert_eq!(
        problems("[defaults]\ninterval = \"30\"\n"),
        vec![
            "portwarden.toml:2:12: defaults: interval: invalid duration \"30\": needs a unit, \
             e.g. \"30s\" or \"30ms\""
        ]
    );
}

#[test]
fn a_dropped_key_is_not_reported_twice() {
    // `target` has the wrong type: no second problem saying it is missing.
    assert_eq!(
        problems("[[monitor]]\nname = \"a\"\ntarget = 22\n"),
        vec!["portwarden.toml:3:10: monitor \"a\": target: invalid type: integer `22`, expected a string"]
    );
}

#[test]
fn syntax_errors_have_a_position() {
    assert_eq!(
        problems("[[monitor]]\nname = \"a\ntarget = \"h:1\"\n"),
        vec!["portwarden.toml:2:10: syntax error: invalid basic string, expected `\"`"]
    );
}

#[test]
fn a_syntax_error_loses_only_its_own_section_and_later_places_stay_exact() {
    // Each top-level header is parsed on its own (config::chunks): the broken monitor is
    // reported and the next ones are still checked, at their own lines and columns.
    assert_eq!(
        problems(
            "[[monitor]]\nname = \"a\ntarget = \"h:1\"\n\n[[monitor]]\nname = \"b\"\ntarget = \"h:1\"\nfail_after = \"x\"\n[[monitor]]\ntarget = 7\n"
        ),
        vec![
            "portwarden.toml:2:10: syntax error: invalid basic string, expected `\"`",
            "portwarden.toml:8:14: monitor \"b\": fail_after: invalid type: string \"x\", expected an integer",
            "portwarden.toml:9:1: monitor[3]: name: missing; every monitor needs a unique name",
            "portwarden.toml:10:10: monitor[3]: target: invalid type: integer `7`, expected a string",
        ]
    );
}

#[test]
fn a_dotted_header_after_another_table_is_read_as_toml_reads_it() {
    // `[daemon.x]` far from `[daemon]` keeps the file whole, so it extends [daemon] as TOML
    // says (and is reported as the unknown key it is) instead of defining [daemon] twice.
    let p = problems(
        "[daemon]\nlisten = \"127.0.0.1:1\"\n[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n[daemon.x]\ny = 1\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].contains("daemon: x: unknown"), "{p:?}");
}

#[test]
fn a_reload_keeps_monitors_that_already_run_by_name_only() {
    let dir = temp_dir("load-beside");
    let path = dir.join("portwarden.toml");
    let text = "[[monitor]]\nname = \"a\"\ntarget = \"127.0.0.1:1\"\n\n[[monitor]]\nname = \"b\"\ntarget = \"127.0.0.1:2\"\n";
    std::fs::write(&path, text).unwrap();
    let first = load(&path).unwrap();
    assert!(first.unchanged.is_empty());
    let a = first
        .monitors
        .iter()
        .find(|m| m.name == "a")
        .unwrap()
        .definition;
    // "a" runs with this definition; "b" runs with another one (it changed), so is built.
    let running = |name: &str, definition| name == "a" && definition == a;
    let again = load_beside(&path, &running).unwrap();
    assert_eq!(again.unchanged, ["a"]);
    let built: Vec<&str> = again.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(built, ["b"]);
    // Unchanged monitors are still checked: a broken config is refused as before.
    std::fs::write(
        &path,
        format!("{text}[[monitor]]\nname = \"a\"\ntarget = \"127.0.0.1:3\"\n"),
    )
    .unwrap();
    let e = load_beside(&path, &running).unwrap_err().to_string();
    assert!(e.contains("duplicate monitor name"), "{e}");
}

#[test]
fn monitor_must_be_an_array_of_tables() {
    assert_eq!(
        problems("[monitor]\nname = \"a\"\n"),
        vec!["portwarden.toml:1:1: monitor: must be an array of tables: write [[monitor]]"]
    );
}

#[test]
fn presets_supply_port_dialog_and_tls() {
    let c = ok(r#"
[[monitor]]
name = "mail"
target = "mail.example.org"
protocol = "smtp"
starttls = true
tls = { verify = "none", cert_days = { warning = 20, critical = 5 } }

[[monitor]]
name = "imaps"
target = "[::1]"
protocol = "imaps"
"#);
    let mail = monitor(&c, "mail").probe.spec();
    assert_eq!(mail.target.port, 25);
    assert!(
        !mail.implicit_tls,
        "a tls table with STARTTLS is not implicit TLS"
    );
    assert!(mail
        .steps
        .iter()
        .any(|s| matches!(s, Step::StartTls(StartTls::Smtp))));
    assert_eq!(mail.tls.verify, Verify::Insecure);
    assert_eq!(
        mail.tls.cert_days,
        Some(probe::CertDays {
            warning: 20,
            critical: 5
        })
    );
    let imaps = monitor(&c, "imaps").probe.spec();
    assert_eq!(imaps.target.to_string(), "[::1]:993");
    assert!(imaps.implicit_tls);
    assert_eq!(imaps.tls.verify, Verify::SystemRoots);
}

#[test]
fn every_preset_loads_with_its_default_port() {
    for preset in probe::presets::ALL {
        let c = ok(&format!(
            "[[monitor]]\nname = \"m\"\ntarget = \"127.0.0.1\"\nprotocol = \"{}\"\n",
            preset.name.to_ascii_uppercase()
        ));
        let spec = c.monitors[0].probe.spec();
        assert_eq!(spec.target.port, preset.default_port, "{}", preset.name);
        assert_eq!(spec.implicit_tls, preset.implicit_tls, "{}", preset.name);
        if preset.starttls.is_some() {
            ok(&format!(
                "[[monitor]]\nname = \"m\"\ntarget = \"h\"\nprotocol = \"{}\"\nstarttls = true\n",
                preset.name
            ));
        }
    }
}

#[test]
fn user_exchange_replaces_the_preset_dialog_after_starttls() {
    let c = ok(r#"
[[monitor]]
name = "mail"
target = "h"
protocol = "smtp"
starttls = true
send = "EHLO me\r\n"
expect = ["250", { prefix = "250-" }]
expect_mode = "all"
"#);
    let steps = &monitor(&c, "mail").probe.spec().steps;
    assert!(
        matches!(steps.first(), Some(Step::Expect(_))),
        "the greeting is still read"
    );
    match &steps[1..] {
        [Step::StartTls(StartTls::Smtp), Step::Send(s), Step::Expect(e)] => {
            assert_eq!(s, b"EHLO me\r\n");
            assert_eq!(e.mode, MatchMode::All);
            assert_eq!(e.to_string(), r#"contains "250" and starts with "250-""#);
        }
        other => panic!("unexpected steps {other:?}"),
    }
}

#[test]
fn dialogs_build_steps_in_order() {
    let c = ok(r#"
[[monitor]]
name = "custom"
target = "127.0.0.1:2525"
quit = "QUIT\r\n"
dialog = [
  { expect = { prefix = "220" } },
  { send = "EHLO portwarden\r\n" },
  { expect = ["250-STARTTLS", "250 STARTTLS"] },
  { starttls = "smtp" },
  { send_hex = "0d 0a" },
  { expect = [{ contains = "250" }, { regex = "^250" }], expect_mode = "all" },
]
"#);
    let spec = monitor(&c, "custom").probe.spec();
    assert_eq!(spec.steps.len(), 6);
    assert!(matches!(&spec.steps[3], Step::StartTls(StartTls::Smtp)));
    assert!(matches!(&spec.steps[4], Step::Send(b) if b == b"\r\n"));
    assert!(matches!(&spec.steps[5], Step::Expect(e) if e.mode == MatchMode::All));
    assert!(!spec.implicit_tls);
    assert_eq!(spec.quit.as_deref(), Some(&b"QUIT\r\n"[..]));
}

#[test]
fn dialog_problems_are_pinned() {
    assert_eq!(
        problems(
            r#"[[monitor]]
name = "a"
target = "h:1"
send = "x"
dialog = [ {}, { send = "a", expect = "b" }, { starttls = true }, { starttls = "smtps" },
           { send = "y", expect_mode = "all" } ]
"#
        ),
        vec![
            "portwarden.toml:5:10: monitor \"a\": dialog: a dialog replaces send, send_hex and \
             expect: use one or the other",
            "portwarden.toml:5:12: monitor \"a\": dialog[1]: empty step: give one of send, \
             send_hex, expect, starttls",
            "portwarden.toml:5:16: monitor \"a\": dialog[2]: one action per step (send, send_hex, \
             expect or starttls): split it into several steps",
            "portwarden.toml:5:59: monitor \"a\": dialog[3].starttls: true needs a protocol with \
             STARTTLS; name the STARTTLS protocol instead, one of: smtp, imap, pop3, ftp, nntp, \
             postgres",
            "portwarden.toml:5:80: monitor \"a\": dialog[4].starttls: unknown STARTTLS protocol \
             \"smtps\"; one of: smtp, imap, pop3, ftp, nntp, postgres",
            "portwarden.toml:6:40: monitor \"a\": dialog[5].expect_mode: only applies to an \
             expect step",
        ]
    );
}

#[test]
fn tls_and_starttls_conflicts_are_pinned() {
    assert_eq!(
        problems(
            r#"[[monitor]]
name = "a"
target = "h"
protocol = "smtps"
starttls = true

[[monitor]]
name = "b"
target = "h:1"
starttls = true

[[monitor]]
name = "c"
target = "h"
protocol = "smtp"
starttls = true
tls = true

[[monitor]]
name = "d"
target = "h:1"
tls = { ca_file = "ca.pem", verify = "none", client_cert = "c.pem" }
"#
        ),
        vec![
            "portwarden.toml:5:12: monitor \"a\": starttls: protocol \"smtps\" has no STARTTLS \
             (protocols with STARTTLS: smtp, submission, pop3, imap, ftp, nntp, postgres)",
            "portwarden.toml:10:12: monitor \"b\": starttls: needs a protocol with STARTTLS (smtp, \
             submission, pop3, imap, ftp, nntp, postgres); for a custom dialog add a step \
             { starttls = \"smtp\" }",
            "portwarden.toml:17:7: monitor \"c\": tls: tls = true means TLS from the first byte, \
             which excludes STARTTLS; use a table (tls = { … }) for STARTTLS settings",
            "portwarden.toml:22:38: monitor \"d\": tls.verify: verify = \"none\" and ca_file \
             exclude each other",
            "portwarden.toml:22:60: monitor \"d\": tls.client_cert: needs client_key too",
        ]
    );
}

#[test]
fn unreadable_tls_files_are_reported_at_the_tls_key() {
    let p = problems(
        "[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\ntls = { ca_file = \"/nonexistent/ca.pem\" }\n",
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("portwarden.toml:4:7: monitor \"a\": tls: CA file /nonexistent/ca.pem:"),
        "{}",
        p[0]
    );
}

#[test]
fn defaults_apply_and_monitors_override() {
    let c = ok(r#"
[defaults]
interval = "1m"
timeout = "3s"
connect_timeout = "1s"
idle_timeout = "500ms"
max_bytes = 1024
family = "v4"
fail_after = 5
recover_after = 4
window = 10
flap_max_transitions = 3
flap_window = "5m"
notify = ["ops"]
response_time = { warning = "200ms", critical = "1s" }
cert_days = { warning = 14 }

[[notifier]]
name = "ops"
type = "webhook"
url = "https://hooks.example.com/ops"

[[monitor]]
name = "inherits"
target = "127.0.0.1:443"
tls = true

[[monitor]]
name = "overrides"
target = "127.0.0.1:80"
interval = "10s"
timeout = "2s"
family = "any"
fail_after = 1
recover_after = 2
window = 3
notify = []
tags = ["web", "web", "edge"]
state_on_refused = "ok"
state_on_mismatch = "warning"
send_delay = "100ms"
must_be_closed = false
"#);
    let a = monitor(&c, "inherits");
    let s = a.probe.spec();
    assert_eq!(a.interval, Duration::from_secs(60));
    assert_eq!(s.limits.deadline, Duration::from_secs(3));
    assert_eq!(s.limits.connect_timeout, Duration::from_secs(1));
    assert_eq!(s.limits.idle_timeout, Duration::from_millis(500));
    assert_eq!(s.limits.max_bytes, 1024);
    assert_eq!(s.family, probe::Family::V4);
    assert_eq!(a.policy.fail_after, 5);
    assert_eq!(a.policy.recover_after, 4);
    assert_eq!(a.policy.window, Some(10));
    assert_eq!(a.policy.flap_max_transitions, 3);
    assert_eq!(a.policy.flap_window, Duration::from_secs(300));
    assert_eq!(a.notify, vec!["ops".to_string()]);
    assert_eq!(s.response_time.critical, Some(Duration::from_secs(1)));
    assert_eq!(
        s.tls.cert_days,
        Some(probe::CertDays {
            warning: 14,
            critical: 7
        })
    );

    let b = monitor(&c, "overrides");
    let s = b.probe.spec();
    assert_eq!(b.interval, Duration::from_secs(10));
    assert_eq!(s.limits.deadline, Duration::from_secs(2));
    assert_eq!(
        s.limits.connect_timeout,
        Duration::from_secs(1),
        "from [defaults]"
    );
    assert_eq!(s.family, probe::Family::Any);
    assert_eq!(b.policy.fail_after, 1);
    assert_eq!(b.policy.window, Some(3));
    assert!(b.notify.is_empty());
    assert_eq!(b.tags, vec!["web".to_string(), "edge".to_string()]);
    assert_eq!(s.states.refused, State::Ok);
    assert_eq!(s.states.mismatch, State::Warning);
    assert_eq!(s.send_delay, Duration::from_millis(100));
    assert_eq!(s.tls.cert_days, None, "no TLS, no certificate check");
}

#[test]
fn builtin_defaults_without_a_defaults_section() {
    let c = ok("[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n");
    let m = &c.monitors[0];
    assert_eq!(m.interval, Duration::from_secs(30));
    assert_eq!(m.probe.spec().limits.deadline, Duration::from_secs(5));
    assert_eq!(
        m.probe.spec().limits.connect_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(m.policy, crate::monitor::Policy::default());
    assert_eq!(c.daemon, DaemonSettings::default());
    assert!(m.probe.spec().steps.is_empty());
}

#[test]
fn limits_and_policy_problems_are_pinned() {
    assert_eq!(
        problems(
            r#"[[monitor]]
name = "a"
target = "h:1"
interval = "5s"
timeout = "10s"
max_bytes = 0
recover_after = 1001
response_time = { warning = "2s", critical = "1s" }
send_delay = "20s"
must_be_closed = true
send = "x"
source = "::1"
family = "v4"
cert_days = 3
"#
        ),
        vec![
            "portwarden.toml:5:11: monitor \"a\": timeout: 10s is longer than the interval (5s): \
             a check must end before the next one starts; set timeout to 5s or less, or a longer \
             interval",
            "portwarden.toml:6:13: monitor \"a\": max_bytes: must be 1-16777216, got 0",
            "portwarden.toml:7:17: monitor \"a\": recover_after: must be 1-1000, got 1001",
            "portwarden.toml:8:29: monitor \"a\": response_time.warning: 2s is longer than \
             critical (1s): warning must come first",
            "portwarden.toml:9:14: monitor \"a\": send_delay: 20s is not shorter than the timeout \
             (10s): every check would time out",
            "portwarden.toml:10:18: monitor \"a\": must_be_closed: checks only that the port \
             refuses connections: remove protocol, send, expect, dialog and tls",
            "portwarden.toml:12:10: monitor \"a\": source: ::1 is not an address of family v4",
            "portwarden.toml:14:1: monitor \"a\": cert_days: unknown key (`portwarden config \
             example` shows every key)",
        ]
    );
}

#[test]
fn empty_and_odd_expectations_are_refused() {
    assert_eq!(
        problems(
            r#"[[monitor]]
name = "a"
target = "h:1"
expect = ["", {}, { prefix = "a", regex = "b" }, { contains = "" }]
expect_mode = "some"
"#
        ),
        vec![
            "portwarden.toml:4:11: monitor \"a\": expect[1]: empty: an empty expectation matches \
             anything",
            "portwarden.toml:4:15: monitor \"a\": expect[2]: give one of contains, prefix, regex, hex",
            "portwarden.toml:4:19: monitor \"a\": expect[3]: give only one of contains, prefix, \
             regex, hex per table; for several, use an array of tables",
            "portwarden.toml:4:63: monitor \"a\": expect[4].contains: empty: an empty expectation \
             matches anything",
            "portwarden.toml:5:15: monitor \"a\": expect_mode: unknown value `some`, expected \
             `any` or `all`",
        ]
    );
}

#[test]
fn definitions_change_exactly_when_the_monitor_does() {
    let base = "[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n";
    let same = "# a comment\n[[monitor]]\ntarget = \"h:1\"\nname = \"a\"\ninterval = \"30s\"\n";
    let other = "[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\ninterval = \"31s\"\n";
    let def = |t: &str| ok(t).monitors[0].definition;
    assert_eq!(
        def(base),
        def(same),
        "explicit defaults and key order do not matter"
    );
    assert_ne!(def(base), def(other));
    assert_ne!(
        def(base),
        def(&format!("[defaults]\ntimeout = \"4s\"\n{base}")),
        "defaults are part of the definition"
    );
    let other_target = "[[monitor]]\nname = \"a\"\ntarget = \"h:2\"\n";
    assert_ne!(
        def(base),
        def(other_target),
        "the target is part of the definition"
    );
    assert_ne!(
        def(base),
        def(&format!("{base}max_actions = 4\n")),
        "self-healing limits are part of the definition"
    );
    assert_ne!(
        def(base),
        def(&format!(
            "{base}on_down = [{{ type = \"restart\", unit = \"x\" }}]\n"
        )),
        "the ladder is part of the definition"
    );
    assert_eq!(
        def(&format!("{base}max_actions = 3\n")),
        def(base),
        "a limit spelled out at its default changes nothing"
    );
}

#[test]
fn a_directory_is_merged_in_file_name_order() {
    let dir = temp_dir("merge");
    std::fs::write(
        dir.join("10-web.toml"),
        "[[monitor]]\nname = \"web\"\ntarget = \"127.0.0.1:80\"\nnotify = [\"ops\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("00-base.toml"),
        "[defaults]\ninterval = \"10s\"\n\n[[notifier]]\nname = \"ops\"\ntype = \"webhook\"\nurl = \"https://hooks.example.com/x\"\n\n\
         [[monitor]]\nname = \"ssh\"\ntarget = \"127.0.0.1:22\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("README"), "not toml").unwrap();
    std::fs::write(dir.join(".hidden.toml"), "garbage = [").unwrap();
    let c = load(&dir).unwrap();
    let names: Vec<&str> = c.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["ssh", "web"]);
    assert_eq!(
        c.monitors[1].interval,
        Duration::from_secs(10),
        "defaults from another file"
    );
    assert_eq!(c.files.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn directory_conflicts_name_both_files() {
    let dir = temp_dir("conflict");
    std::fs::write(
        dir.join("a.toml"),
        "[defaults]\ninterval = \"10s\"\n\n[[monitor]]\nname = \"web\"\ntarget = \"h:80\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "[[monitor]]\nname = \"web\"\ntarget = \"h:81\"\n\n[defaults]\ntimeout = \"1s\"\n\n\
         [daemon]\nlisten = \"nope\"\n",
    )
    .unwrap();
    let errors = load(&dir).unwrap_err();
    let a = dir.join("a.toml").display().to_string();
    let b = dir.join("b.toml").display().to_string();
    let lines: Vec<String> = errors.problems().iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec![
            format!(
                "{b}:2:8: monitor \"web\": name: duplicate monitor name, first defined at {a}:5:8"
            ),
            format!(
                "{b}:5:1: [defaults] is also defined at {a}:1:1; [daemon], [defaults] and \
                 [firewall] may each appear in only one file"
            ),
            format!(
                "{b}:9:10: daemon: listen: not an address and port: \"nope\"; write an IP address \
                 and port: \"127.0.0.1:9898\" (this host only), \"0.0.0.0:9898\" (every \
                 interface), \"[::1]:9898\" or \"localhost:9898\""
            ),
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_path_is_not_found() {
    let errors = load(Path::new("/nonexistent/portwarden.toml")).unwrap_err();
    assert!(errors.is_not_found());
    assert_eq!(
        errors.problems()[0].to_string(),
        "/nonexistent/portwarden.toml: cannot read: No such file or directory (os error 2)"
    );
    let errors = load_str("[[monitor]]\nname = \"a\"\n").unwrap_err();
    assert!(!errors.is_not_found());
}

#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let dir = temp_dir("relative");
    std::fs::write(
        dir.join("portwarden.toml"),
        "[daemon]\nstate_dir = \"state\"\n\n[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n\
         tls = { ca_file = \"missing-ca.pem\" }\n",
    )
    .unwrap();
    let errors = load(&dir.join("portwarden.toml")).unwrap_err();
    let line = errors.problems()[0].to_string();
    assert!(
        line.contains(&format!("CA file {}", dir.join("missing-ca.pem").display())),
        "{line}"
    );
    std::fs::write(
        dir.join("portwarden.toml"),
        "[daemon]\nstate_dir = \"state\"\n",
    )
    .unwrap();
    let c = load(&dir.join("portwarden.toml")).unwrap();
    assert_eq!(c.daemon.state_dir, Some(dir.join("state")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_config_has_no_monitors() {
    let c = ok("# nothing yet\n");
    assert!(c.monitors.is_empty());
    assert_eq!(c.daemon, DaemonSettings::default());
}

#[test]
fn notifiers_are_checked_by_their_type() {
    let c = ok(r#"
[[notifier]]
name = "am"
type = "alertmanager"
url = "http://127.0.0.1:9093"

[[notifier]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/x"
remind_every = "2h"
group_window = "5s"
"#);
    assert_eq!(c.notifiers[0].spec.kind(), "alertmanager");
    assert_eq!(c.notifiers[0].group_window, Duration::ZERO);
    assert_eq!(c.notifiers[0].remind_every, Some(Duration::from_secs(60)));
    assert_eq!(c.notifiers[1].remind_every, Some(Duration::from_secs(7200)));
    assert_eq!(c.notifiers[1].group_window, Duration::from_secs(5));
    let found = problems(
        r#"[[notifier]]
name = "a"
type = "smtpp"

[[notifier]]
name = "b"
type = "webhook"
url = "https://x.example/"
colour = "red"

[[notifier]]
name = "c"
type = "webhook"
url = "https://x.example/"
remind_every = "soon"
"#,
    );
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found[0].starts_with("portwarden.toml:3:8: notifier \"a\":") && found[0].contains("smtpp"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("notifier \"b\"") && found[1].contains("colour"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("notifier \"c\": remind_every") && found[2].contains("soon"),
        "{found:#?}"
    );
}

#[test]
fn on_down_becomes_a_checked_ladder_with_limits() {
    let c = ok(r#"
[defaults]
max_actions = 5
action_cooldown = "0s"

[[monitor]]
name = "web"
target = "127.0.0.1:80"
action_window = "1h"
on_down = [
  { type = "restart", unit = "nginx", attempts = 2, grace = "5s" },
  { type = "exec", command = ["/usr/local/bin/fix-web"] },
  { type = "reboot", after_failed_restarts = 4, min_uptime = "1h", max_per_day = 1, dry_run = true },
]
"#);
    let web = monitor(&c, "web");
    let h = &web.heal;
    assert_eq!(h.max_actions, 5);
    assert_eq!(h.window, Duration::from_secs(3600));
    assert_eq!(h.cooldown, Duration::ZERO);
    assert_eq!(h.reset_after, Duration::from_secs(600));
    let kinds: Vec<&str> = h.steps.iter().map(|s| s.action.kind()).collect();
    assert_eq!(kinds, ["restart", "exec", "reboot"]);
    assert_eq!(h.steps[0].attempts, 2);
    assert_eq!(h.steps[0].grace, Duration::from_secs(5));
    assert_eq!(
        h.steps[1].attempts, 4,
        "after_failed_restarts on the step after"
    );
    assert_eq!(h.steps[2].grace, Duration::from_secs(10));

    let found = problems(
        r#"[[monitor]]
name = "web"
target = "127.0.0.1:80"
on_down = [
  { type = "restart" },
  { type = "rebot" },
  { type = "exec", command = [] },
  { unit = "x" },
  { type = "restart", unit = "a", attempts = 0 },
]
"#,
    );
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|p| p.starts_with("portwarden.toml:4:11: monitor \"web\": on_down[")),
        "{found:#?}"
    );
    assert!(
        found[0].contains("on_down[1]") && found[0].contains("unit"),
        "{found:#?}"
    );
    assert!(
        found[1].contains("unknown action type `rebot`"),
        "{found:#?}"
    );
    assert!(
        found[2].contains("on_down[3]") && found[2].contains("command"),
        "{found:#?}"
    );
    assert!(found[3].contains("on_down[4].type: missing"), "{found:#?}");
    assert!(
        found[4].contains("on_down[5].attempts: must be an integer 1-"),
        "{found:#?}"
    );
}

#[test]
fn api_token_comes_from_an_env_var_or_a_file_not_both() {
    let c = ok("[daemon]\napi_token_env = \"PW_TOKEN\"\nread_token = true\n");
    assert_eq!(
        c.daemon.api_token,
        Some(ApiTokenSource::Env("PW_TOKEN".into()))
    );
    assert!(c.daemon.read_token);
    let c = ok("[daemon]\napi_token_file = \"token\"\n");
    assert_eq!(
        c.daemon.api_token,
        Some(ApiTokenSource::File(PathBuf::from("./token")))
    );
    assert!(!c.daemon.read_token);
    let c = ok("[daemon]\n");
    assert_eq!(c.daemon.api_token, None);
    assert_eq!(
        problems("[daemon]\napi_token_env = \"A\"\napi_token_file = \"t\"\n"),
        vec!["portwarden.toml:2:17: daemon: api_token_env: set api_token_env or api_token_file, not both"]
    );
    assert_eq!(
        problems("[daemon]\nread_token = true\n"),
        vec!["portwarden.toml:2:14: daemon: read_token: needs a token: set api_token_env or api_token_file"]
    );
    assert_eq!(
        problems("[daemon]\napi_token_env = \"A=B\"\n"),
        vec!["portwarden.toml:2:17: daemon: api_token_env: not an environment variable name: \"A=B\""]
    );
}

#[test]
fn api_tls_needs_a_certificate_and_a_key() {
    let c = ok("[daemon]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n");
    assert_eq!(
        c.daemon.tls,
        Some((PathBuf::from("./cert.pem"), PathBuf::from("./key.pem")))
    );
    assert_eq!(ok("[daemon]\n").daemon.tls, None);
    assert_eq!(
        problems("[daemon]\ntls_cert = \"cert.pem\"\n"),
        vec!["portwarden.toml:2:12: daemon: tls_cert: needs tls_key too"]
    );
    assert_eq!(
        problems("[daemon]\ntls_key = \"key.pem\"\n"),
        vec!["portwarden.toml:2:11: daemon: tls_key: needs tls_cert too"]
    );
}

#[test]
fn probe_modules_build_like_monitors_without_a_target() {
    let c = ok(r#"
[defaults]
timeout = "3s"

[[probe_module]]
name = "smtp_starttls"
protocol = "smtp"
starttls = true
tls = { verify = "none" }

[[probe_module]]
name = "banner"
expect = { regex = "^220 " }
timeout = "2m"
"#);
    assert_eq!(c.probe_modules.len(), 2);
    let smtp = &c.probe_modules[0];
    assert_eq!(smtp.name, "smtp_starttls");
    assert!(smtp
        .spec
        .steps
        .iter()
        .any(|s| matches!(s, Step::StartTls(StartTls::Smtp))));
    assert_eq!(smtp.spec.tls.verify, Verify::Insecure);
    assert_eq!(smtp.spec.limits.deadline, Duration::from_secs(3));
    // A module's timeout is not bound by any interval.
    assert_eq!(
        c.probe_modules[1].spec.limits.deadline,
        Duration::from_secs(120)
    );
    assert!(c.monitors.is_empty());
}

#[test]
fn probe_module_mistakes_are_named_with_their_place() {
    assert_eq!(
        problems(
            "[[probe_module]]\nname = \"m\"\ntarget = \"h:1\"\ninterval = \"5s\"\n\
             expect = { regex = \"(\" }\n\n\
             [[probe_module]]\nname = \"m\"\n"
        ),
        vec![
            "portwarden.toml:3:10: probe_module \"m\": target: not a probe_module key: the target \
             comes from the /probe request, and a module is not scheduled, notified or healed",
            "portwarden.toml:4:12: probe_module \"m\": interval: not a probe_module key: the \
             target comes from the /probe request, and a module is not scheduled, notified or \
             healed",
            "portwarden.toml:5:20: probe_module \"m\": expect.regex: invalid regex \"(\": \
             unclosed group",
            "portwarden.toml:8:8: probe_module \"m\": name: duplicate probe_module name, first \
             defined at portwarden.toml:2:8",
        ]
    );
}

#[test]
fn hostile_names_and_values_are_refused_or_cut_when_shown() {
    // issue 14.7: a bidi override reorders what an operator reads; a huge value was echoed
    // whole, control characters raw.
    let p = problems("[[monitor]]\nname = \"web\u{202E}txt\"\ntarget = \"127.0.0.1:80\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].ends_with("name: must not contain control characters, bidi overrides or /"),
        "{p:?}"
    );
    assert!(p[0].contains(r"web\u{202e}txt"), "{p:?}");
    let huge = "B".repeat(1_000_000);
    let p = problems(&format!(
        "[[monitor]]\nname = \"m\"\ntarget = \"127.0.0.1:{huge}\"\nnotify = [\"x\\u001b[2J\"]\n"
    ));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p.iter().all(|l| l.len() < 400), "{p:?}");
    assert!(p[0].contains("…[1000000 characters]"), "{p:?}");
    assert!(p[1].contains(r#"no notifier named "x\u{1b}[2J""#), "{p:?}");
}

#[test]
fn many_tags_are_kept_once_each_in_order() {
    let tags: Vec<String> = (0..20_000)
        .map(|i| format!("\"t{}\"", i % 10_000))
        .collect();
    let c = ok(&format!(
        "[[monitor]]\nname = \"m\"\ntarget = \"127.0.0.1:80\"\ntags = [{}]\n",
        tags.join(", ")
    ));
    let m = monitor(&c, "m");
    assert_eq!(m.tags.len(), 10_000);
    assert_eq!(m.tags[0], "t0");
    assert_eq!(m.tags[9_999], "t9999");
}

#[test]
fn http_limits_have_defaults_and_are_checked() {
    let c = ok("");
    assert_eq!(c.daemon.http, crate::api::server::HttpLimits::default());
    assert_eq!(c.daemon.http.header_timeout, Duration::from_secs(10));
    assert_eq!(c.daemon.http.idle_timeout, Duration::from_secs(60));
    assert_eq!(c.daemon.http.max_connections, 1024);
    let c = ok(
        "[daemon]\nhttp_header_timeout = \"2s\"\nhttp_idle_timeout = \"5m\"\n\
         http_max_connections = 20\n",
    );
    assert_eq!(
        c.daemon.http,
        crate::api::server::HttpLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(300),
            max_connections: 20,
        }
    );
    assert_eq!(
        problems(
            "[daemon]\nhttp_header_timeout = \"0s\"\nhttp_idle_timeout = \"0s\"\n\
             http_max_connections = 0\n"
        ),
        vec![
            "portwarden.toml:2:23: daemon: http_header_timeout: must be greater than 0",
            "portwarden.toml:3:21: daemon: http_idle_timeout: must be greater than 0",
            "portwarden.toml:4:24: daemon: http_max_connections: must be 1-1000000, got 0",
        ]
    );
}

/// Issue 15: `interval = "2s"` alone was refused because the built-in 5 s timeout is longer.
#[test]
fn an_unset_timeout_fits_a_short_interval() {
    let c = ok(r#"
[[monitor]]
name = "fast"
target = "127.0.0.1:80"
interval = "2s"

[[monitor]]
name = "slow"
target = "127.0.0.1:81"
interval = "1m"
"#);
    let fast = monitor(&c, "fast").probe.spec();
    assert_eq!(fast.limits.deadline, Duration::from_secs(2));
    assert_eq!(fast.limits.connect_timeout, Duration::from_secs(2));
    let slow = monitor(&c, "slow").probe.spec();
    assert_eq!(slow.limits.deadline, Duration::from_secs(5));

    // A short interval in [defaults] fits its monitors the same way.
    let c = ok("[defaults]\ninterval = \"1s\"\n\n[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n");
    assert_eq!(
        monitor(&c, "a").probe.spec().limits.deadline,
        Duration::from_secs(1)
    );
}

#[test]
fn an_explicit_timeout_longer_than_the_interval_says_the_fix() {
    assert_eq!(
        problems(
            "[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\ninterval = \"2s\"\ntimeout = \"5s\"\n"
        ),
        vec![
            "portwarden.toml:5:11: monitor \"a\": timeout: 5s is longer than the interval (2s): a \
             check must end before the next one starts; set timeout to 2s or less, or a longer \
             interval"
        ]
    );
    // Set in [defaults], too long for one monitor's interval: the message says where it
    // comes from.
    assert_eq!(
        problems(
            "[defaults]\ntimeout = \"5s\"\n\n[[monitor]]\nname = \"a\"\ntarget = \"h:1\"\n\
             interval = \"2s\"\n"
        ),
        vec![
            "portwarden.toml:7:12: monitor \"a\": timeout: 5s is longer than the interval (2s): a \
             check must end before the next one starts; set timeout to 2s or less, or a longer \
             interval (the timeout comes from [defaults]: set a shorter timeout in this monitor \
             or in [defaults])"
        ]
    );
}

/// Issue 15: `listen = "localhost:9898"` failed with "invalid socket address syntax".
#[test]
fn listen_takes_localhost_and_says_what_else_it_takes() {
    let c = ok("[daemon]\nlisten = \"localhost:9898\"\n");
    assert_eq!(c.daemon.listen.to_string(), "127.0.0.1:9898");
    assert_eq!(
        problems("[daemon]\nlisten = \"monitor.example.com:9898\"\n"),
        vec![
            "portwarden.toml:2:10: daemon: listen: \"monitor.example.com:9898\": the host name \
             \"monitor.example.com\" is not looked up; write an IP address and port: \
             \"127.0.0.1:9898\" (this host only), \"0.0.0.0:9898\" (every interface), \
             \"[::1]:9898\" or \"localhost:9898\""
        ]
    );
    assert_eq!(
        problems("[daemon]\nlisten = \"localhost:http\"\n"),
        vec![
            "portwarden.toml:2:10: daemon: listen: not a port: \"http\" in \"localhost:http\" (a \
             number 0-65535)"
        ]
    );
}
