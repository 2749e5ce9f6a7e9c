//! `[[probe_module]]`s: built like monitors without a target, and their mistakes.

use super::*;

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
