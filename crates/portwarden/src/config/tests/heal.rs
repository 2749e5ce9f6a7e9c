//! `on_down`: the heal ladder and its limits.

use super::*;

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
