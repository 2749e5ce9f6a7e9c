//! `[defaults]` and the built-in defaults, and a monitor overriding them.

use super::*;

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
    assert_eq!(s.family, portwarden_probe::Family::V4);
    assert_eq!(a.policy.fail_after, 5);
    assert_eq!(a.policy.recover_after, 4);
    assert_eq!(a.policy.window, Some(10));
    assert_eq!(a.policy.flap_max_transitions, 3);
    assert_eq!(a.policy.flap_window, Duration::from_secs(300));
    assert_eq!(a.notify, vec!["ops".to_string()]);
    assert_eq!(s.response_time.critical, Some(Duration::from_secs(1)));
    assert_eq!(
        s.tls.cert_days,
        Some(portwarden_probe::CertDays {
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
    assert_eq!(s.family, portwarden_probe::Family::Any);
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
