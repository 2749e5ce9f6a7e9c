//! The probe keys: protocol presets, send/expect and dialogs, expectations, TLS and STARTTLS.

use super::*;

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
        Some(portwarden_probe::CertDays {
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
    for preset in portwarden_probe::presets::ALL {
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
