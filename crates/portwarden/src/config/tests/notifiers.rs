//! `[[notifier]]`s checked by their type, and `notify` naming only defined notifiers.

use super::*;

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
