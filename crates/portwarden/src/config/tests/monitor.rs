//! One `[[monitor]]`: target, owner, name, timing and policy, tags, and its definition
//! fingerprint.

use super::*;

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
        Some(portwarden_sockets::owner::ExpectedOwner::Unit(
            "nginx.service".into()
        ))
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
