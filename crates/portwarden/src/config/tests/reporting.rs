//! How problems are reported: at the key, with file:line:col, all at once, each once, in TOML's
//! words, and shown safely.

use super::*;

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
fn monitor_must_be_an_array_of_tables() {
    assert_eq!(
        problems("[monitor]\nname = \"a\"\n"),
        vec!["portwarden.toml:1:1: monitor: must be an array of tables: write [[monitor]]"]
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
