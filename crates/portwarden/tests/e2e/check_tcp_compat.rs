//! `portwarden check tcp` side by side with Nagios' real check_tcp (Debian's
//! monitoring-plugins-basic) against the same loopback servers: same exit codes, same
//! output apart from measured times, and the deliberate differences pinned one by one
//! (docs/check_tcp.md lists them).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::Duration;

use crate::support::checker::{echo, normalise, run, Outcome};
use crate::support::{closed_port, serve, silent};

const CHECK_TCP: &str = "/usr/lib/nagios/plugins/check_tcp";

fn banner(mut c: TcpStream) {
    let _ = c.write_all(b"220 hello world\r\n");
    let mut buf = [0u8; 64];
    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = c.read(&mut buf);
}

fn multi_line(mut c: TcpStream) {
    let _ = c.write_all(b"220-one\r\n");
    thread::sleep(Duration::from_millis(200));
    let _ = c.write_all(b"220 two\r\n");
    thread::sleep(Duration::from_secs(3));
}

fn close_at_once(_c: TcpStream) {}

fn ours(args: &[&str]) -> Outcome {
    let mut full = vec!["check", "tcp"];
    full.extend_from_slice(args);
    run(env!("CARGO_BIN_EXE_portwarden"), &full)
}

fn theirs(args: &[&str]) -> Option<Outcome> {
    if !Path::new(CHECK_TCP).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{CHECK_TCP} missing: scripts/install-test-deps installs monitoring-plugins-basic"
        );
        eprintln!("skipping: {CHECK_TCP} not installed");
        return None;
    }
    Some(run(CHECK_TCP, args))
}

/// Both checkers on the same arguments must agree on exit code and (normalised) output.
fn assert_same(args: &[&str]) {
    let Some(t) = theirs(args) else { return };
    let o = ours(args);
    assert_eq!(
        o.code, t.code,
        "exit code for {args:?}: ours {:?}, check_tcp {:?}",
        o.stdout, t.stdout
    );
    assert_eq!(
        normalise(&o.stdout),
        normalise(&t.stdout),
        "output for {args:?}"
    );
}

#[test]
fn connect_only_matches_check_tcp() {
    let port = serve(banner).to_string();
    assert_same(&["-H", "127.0.0.1", "-p", &port]);
    assert_same(&["-H", "127.0.0.1", "-p", &port, "-w", "5", "-c", "9"]);
}

#[test]
fn expect_match_and_host_forms_match_check_tcp() {
    let port = serve(banner).to_string();
    assert_same(&["-H", "127.0.0.1", "-p", &port, "-e", "220"]);
    assert_same(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-e",
        "hello",
        "-e",
        "world",
        "-A",
    ]);
    assert_same(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-e",
        "nothing",
        "-e",
        "world",
    ]);
    assert_same(&["127.0.0.1", "-p", &port, "-e", "220"]);
    assert_same(&["-H", "127.0.0.1", "-p", &port, "-e", "220", "-j"]);
}

#[test]
fn mismatch_states_and_output_match_check_tcp() {
    let port = serve(banner).to_string();
    assert_same(&["-H", "127.0.0.1", "-p", &port, "-e", "nope"]);
    assert_same(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-e",
        "nope",
        "-M",
        "crit",
        "-j",
    ]);
    assert_same(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-e",
        "nope",
        "-M",
        "ok",
        "-w",
        "3",
        "-c",
        "4",
    ]);
    assert_same(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-e",
        "hello",
        "-e",
        "zzz",
        "-A",
    ]);
}

#[test]
fn send_and_multi_line_match_check_tcp() {
    let port = serve(echo).to_string();
    assert_same(&["-H", "127.0.0.1", "-p", &port, "-s", "hello", "-e", "hello"]);
    assert_same(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-E",
        "-s",
        "ping\\r\\n",
        "-e",
        "ping",
    ]);
    let port = serve(multi_line).to_string();
    let Some(t) = theirs(&["-H", "127.0.0.1", "-p", &port, "-e", "two"]) else {
        return;
    };
    let o = ours(&["-H", "127.0.0.1", "-p", &port, "-e", "two"]);
    assert_eq!((o.code, t.code), (0, 0));
    // check_tcp prints the raw CR LF inside its one-line output; we escape them.
    assert_eq!(
        normalise(&o.stdout).replace("\\r\\n", "\r\n"),
        normalise(&t.stdout)
    );
}

#[test]
fn refused_no_data_and_timeout_keep_codes_and_wording() {
    let port = closed_port().to_string();
    for extra in [&[][..], &["-r", "ok"], &["-r", "warn"]] {
        let mut args = vec!["-H", "127.0.0.1", "-p", &port];
        args.extend_from_slice(extra);
        let Some(t) = theirs(&args) else { return };
        let o = ours(&args);
        assert_eq!(o.code, t.code, "{args:?}");
        // Same words, with the status prefix check_tcp leaves out.
        assert!(
            o.stdout.ends_with(&t.stdout),
            "{:?} vs {:?}",
            o.stdout,
            t.stdout
        );
        assert!(o.stdout.starts_with("TCP "), "{}", o.stdout);
    }

    let port = serve(close_at_once).to_string();
    let args = ["-H", "127.0.0.1", "-p", &port, "-e", "220"];
    let Some(t) = theirs(&args) else { return };
    let o = ours(&args);
    assert_eq!((o.code, t.code), (2, 2));
    assert_eq!(o.stdout, format!("TCP CRITICAL - {}", t.stdout));

    let port = serve(silent).to_string();
    let args = ["-H", "127.0.0.1", "-p", &port, "-e", "220", "-t", "1"];
    let Some(t) = theirs(&args) else { return };
    let o = ours(&args);
    assert_eq!((o.code, t.code), (2, 2));
    assert!(
        o.stdout.starts_with(&format!("TCP {}", t.stdout)),
        "{:?} vs {:?}",
        o.stdout,
        t.stdout
    );
    assert!(
        o.elapsed < Duration::from_millis(1900),
        "took {:?}",
        o.elapsed
    );
}

fn banner_then_close(mut c: TcpStream) {
    let _ = c.write_all(b"220 hello world\r\n");
}

#[test]
fn without_a_host_checks_localhost_like_check_tcp() {
    let port = serve(banner).to_string();
    assert_same(&["-p", &port]);
    assert_same(&["-p", &port, "-e", "220"]);
    assert_same(&["-p", &port, "-e", "nope", "-M", "crit"]);
}

#[test]
fn response_time_critical_is_not_lowered_to_the_mismatch_state() {
    // check_tcp decides the response time first; -M only applies to a result that is not
    // CRITICAL already. -c 0: every response is too slow.
    let port = serve(banner_then_close).to_string();
    for mismatch in ["ok", "warn", "crit"] {
        assert_same(&[
            "-H",
            "127.0.0.1",
            "-p",
            &port,
            "-e",
            "nope",
            "-M",
            mismatch,
            "-c",
            "0",
        ]);
    }
    assert_same(&["-H", "127.0.0.1", "-p", &port, "-e", "nope", "-w", "0"]);
}

#[test]
fn usage_errors_exit_unknown_like_check_tcp() {
    for args in [
        &["-H", "127.0.0.1", "-p", "0"][..],
        &["-H", "127.0.0.1", "-p", "1", "-t", "0"],
        &["-H", "127.0.0.1", "-p", "1", "-M", "bogus"],
        &["-H", "127.0.0.1", "-p", "1", "-r", "maybe"],
        &["-H", "127.0.0.1", "-p", "1", "-m", "-5"],
    ] {
        let Some(t) = theirs(args) else { return };
        let o = ours(args);
        assert_eq!((o.code, t.code), (3, 3), "{args:?}: {}", o.stdout);
    }
    let args = ["-H", "bad..host", "-p", "22"];
    assert_same(&args);
}

#[test]
fn deliberate_fix_maxbytes_still_decides_the_match() {
    // check_tcp stops at -m before matching and then reports OK for a response that never
    // matched; we decide the match on the bytes read.
    let port = serve(banner).to_string();
    let args = ["-H", "127.0.0.1", "-p", &port, "-e", "nope", "-m", "3"];
    let Some(t) = theirs(&args) else { return };
    let o = ours(&args);
    assert_eq!(t.code, 0, "check_tcp's bug is gone? {}", t.stdout);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stdout
            .contains("Unexpected response from host/socket: 220"),
        "{}",
        o.stdout
    );
    assert!(
        o.elapsed < Duration::from_secs(1),
        "no idle wait once max bytes are in"
    );
}

#[test]
fn deliberate_fix_non_numeric_thresholds_are_usage_errors() {
    // check_tcp reads `-c abc` as 0 seconds, so every check turns CRITICAL.
    let port = serve(banner).to_string();
    let args = ["-H", "127.0.0.1", "-p", &port, "-c", "abc"];
    let Some(t) = theirs(&args) else { return };
    let o = ours(&args);
    assert_eq!(t.code, 2);
    assert_eq!(o.code, 3);
}

#[test]
fn deliberate_fix_multi_line_reply_needs_no_idle_wait_with_a_parser() {
    // check_tcp needs `-e` and then waits for the data; our smtp preset decides on the final
    // line of a multi-line greeting as soon as it arrives.
    let port = serve(multi_line).to_string();
    let o = run(
        env!("CARGO_BIN_EXE_portwarden"),
        &["check", "smtp", "-H", "127.0.0.1", "-p", &port],
    );
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.starts_with("SMTP OK - "), "{}", o.stdout);
    assert!(
        o.elapsed < Duration::from_millis(1500),
        "took {:?}",
        o.elapsed
    );
}

#[test]
fn json_format_is_the_structured_result() {
    let port = serve(banner).to_string();
    let o = ours(&[
        "-H",
        "127.0.0.1",
        "-p",
        &port,
        "-e",
        "nope",
        "-M",
        "crit",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 2);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("valid JSON");
    assert_eq!(v["state"], "critical");
    assert_eq!(v["reason"], "unexpected_response");
    assert_eq!(v["peer"], format!("127.0.0.1:{port}"));
    assert!(v["received"]
        .as_str()
        .is_some_and(|r| r.starts_with("220 hello world")));
    assert!(v["timings"]["connect"].as_f64().is_some());
}

#[test]
fn binary_named_check_tcp_acts_as_the_plugin() {
    let dir = std::env::temp_dir().join(format!("pw-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    let link = dir.join("check_tcp");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_portwarden"), &link).expect("symlink");
    let port = serve(banner).to_string();
    let o = run(
        link.to_str().expect("utf-8 path"),
        &["-H", "127.0.0.1", "-p", &port, "-e", "220"],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.starts_with("TCP OK - "), "{}", o.stdout);
}

#[test]
fn normalise_hides_only_measured_times() {
    assert_eq!(
        normalise("TCP OK - 0.001 second response time on 127.0.0.1 port 22|time=0.000829s;;;0.000000;10.000000"),
        "TCP OK - T second response time on 127.0.0.1 port 22|time=Ts;;;0.000000;10.000000"
    );
}

#[test]
fn runs_one_configured_monitor_once() {
    let port = serve(banner);
    let dir = std::env::temp_dir().join(format!("pw-check-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tempdir");
    let config = dir.join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            "[[monitor]]\nname = \"mail\"\ntarget = \"127.0.0.1:{port}\"\nexpect = {{ prefix = \"220\" }}\n\n\
             [[monitor]]\nname = \"wrong\"\ntarget = \"127.0.0.1:{port}\"\nexpect = {{ prefix = \"554\" }}\n"
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8 path");
    let bin = env!("CARGO_BIN_EXE_portwarden");
    let o = run(bin, &["check", "-c", config, "mail"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert!(o.stdout.starts_with("MAIL OK - "), "{}", o.stdout);
    assert!(o.stdout.contains("[220 hello world]"), "{}", o.stdout);
    let o = run(bin, &["check", "-c", config, "wrong", "--json"]);
    assert_eq!(
        o.code, 2,
        "a config monitor's mismatch is critical: {}",
        o.stdout
    );
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("JSON");
    assert_eq!(v["reason"], "unexpected_response");
    let o = run(bin, &["check", "-c", config, "nosuch"]);
    assert_eq!(o.code, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 14: "Too many open files" was reported as the target's outage (CRITICAL). Under a
/// descriptor limit just large enough to start, the socket for the probe cannot be made:
/// that is portwarden's side, so UNKNOWN with a reason saying so (check_tcp, too, exits
/// UNKNOWN when it cannot create its socket).
#[cfg(unix)]
#[test]
fn out_of_descriptors_is_unknown_on_our_side_not_critical() {
    let port = serve(banner).to_string();
    let exe = env!("CARGO_BIN_EXE_portwarden");
    // The runtime's own descriptors depend on the number of cores: raise the limit one by one
    // until the program gets past its start-up; the first limit that does leaves nothing for
    // the probe's socket. `ulimit -n` lowers both the soft and the hard limit.
    let mut seen = Vec::new();
    for limit in 4..=64 {
        let out = run(
            "/bin/sh",
            &[
                "-c",
                &format!("ulimit -n {limit} && exec \"$0\" check tcp -H 127.0.0.1 -p \"$1\""),
                exe,
                &port,
            ],
        );
        let start_up_failed = out.code == 101
            || out.code == 127
            || out.stdout.contains("async runtime")
            || out.stdout.is_empty();
        if start_up_failed {
            seen.push((limit, out.code));
            continue;
        }
        assert_eq!(out.code, 3, "limit {limit}: {}", out.stdout);
        assert!(out.stdout.starts_with("TCP UNKNOWN - "), "{}", out.stdout);
        assert!(
            out.stdout.contains("says nothing about the target"),
            "{}",
            out.stdout
        );
        return;
    }
    panic!("never got past start-up: {seen:?}");
}

/// `sh -c "ulimit …; exec portwarden check tcp …"`: the check under an open-file limit.
fn ours_with_ulimit(ulimit: &str, args: &[&str]) -> Outcome {
    let script = format!("ulimit {ulimit} && exec \"$0\" check tcp \"$@\"",);
    let mut full = vec!["-c", script.as_str(), env!("CARGO_BIN_EXE_portwarden")];
    full.extend_from_slice(args);
    run("sh", &full)
}

#[test]
fn a_tiny_open_file_limit_is_unknown_not_a_panic_and_a_low_soft_one_is_raised() {
    let port = serve(banner).to_string();
    // Hard and soft limit 7: tokio used to panic building its runtime (exit 101).
    let tiny = ours_with_ulimit("-n 7", &["-H", "127.0.0.1", "-p", &port]);
    assert_eq!(tiny.code, 3, "{}", tiny.stdout);
    assert!(
        tiny.stdout
            .starts_with("TCP UNKNOWN - the open file limit is 7"),
        "{}",
        tiny.stdout
    );
    // Only the soft limit low: raised to the hard one, and the check runs.
    let soft = ours_with_ulimit("-Sn 7", &["-H", "127.0.0.1", "-p", &port]);
    assert_eq!(soft.code, 0, "{}", soft.stdout);
    assert!(soft.stdout.starts_with("TCP OK"), "{}", soft.stdout);
}
