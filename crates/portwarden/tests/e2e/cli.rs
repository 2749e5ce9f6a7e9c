//! The commands a newcomer meets in the first hour, run as users run them (issue 15, "CLI
//! traps"): `status` finds the daemon through `-c` (address and token) and tells "a monitor is
//! down" (1) from "the daemon cannot be asked" (3); `silence add` refuses a monitor that does
//! not exist; `reboot cancel` with nothing pending writes nothing; `firewall pause` prints a
//! date, not a Unix time; `config check` and `notify test` under zero-config say what they
//! mean; `localhost:PORT` works wherever an address is taken.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{free_port, temp_dir, Daemon, FAST_DEFAULTS};

fn portwarden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(args)
        .env_remove("PORTWARDEN_LOG")
        .output()
        .expect("run portwarden")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config whose API listens on `localhost:PORT`, whose reads need the token in `token`,
/// with one monitor `web` on `web_port`.
fn config(dir: &Path, api_port: u16, web_port: u16) -> PathBuf {
    std::fs::write(dir.join("token"), "s3cret-token\n").unwrap();
    let path = dir.join("portwarden.toml");
    std::fs::write(
        &path,
        format!(
            "[daemon]\nlisten = \"localhost:{api_port}\"\nstate_dir = \"{}\"\n\
             api_token_file = \"token\"\nread_token = true\n\n\
             [firewall]\nguard = false\n\n[defaults]\n{FAST_DEFAULTS}\n\
             [[monitor]]\nname = \"web\"\ntarget = \"127.0.0.1:{web_port}\"\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn status_reads_address_and_token_from_the_config_and_exits_0_1_2_or_3() {
    let dir = temp_dir("cli-status");
    let api_port = free_port();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let web_port = service.local_addr().unwrap().port();
    let config = config(&dir, api_port, web_port);
    let c = config.to_str().unwrap();
    let api = format!("127.0.0.1:{api_port}").parse().unwrap();
    let d = Daemon::start(&config, api);
    d.wait_for("web up", 15, |_| {
        portwarden(&["status", "-c", c]).status.code() == Some(0)
    });

    // -c: the config's `listen = "localhost:…"` and its token (reads need it here).
    let up = portwarden(&["status", "-c", c]);
    assert_eq!(up.status.code(), Some(0), "{}", stderr(&up));
    assert!(
        stdout(&up).contains("1 monitor(s), 0 down"),
        "{}",
        stdout(&up)
    );
    // --listen takes a host name too, and overrides the config's address.
    let named = portwarden(&[
        "status",
        "-c",
        c,
        "--listen",
        &format!("localhost:{api_port}"),
    ]);
    assert_eq!(named.status.code(), Some(0), "{}", stderr(&named));

    // Without the config there is no token: the daemon's refusal is no answer (3).
    let no_token = portwarden(&["status", "--listen", &format!("localhost:{api_port}")]);
    assert_eq!(no_token.status.code(), Some(3), "{}", stdout(&no_token));
    assert_eq!(
        stderr(&no_token),
        format!(
            "portwarden status: the daemon at 127.0.0.1:{api_port} answered 401 to GET \
             /api/v1/monitors: send the API token as Authorization: Bearer TOKEN (the daemon \
             wants its API token: pass -c with the config that names it)\n"
        )
    );

    // A monitor DOWN: 1.
    drop(service);
    d.wait_for("web down", 15, |_| {
        portwarden(&["status", "-c", c]).status.code() == Some(1)
    });
    let down = portwarden(&["status", "-c", c]);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        stdout(&down).contains("1 monitor(s), 1 down"),
        "{}",
        stdout(&down)
    );

    // `silence add` checks the name against the running daemon's monitors.
    let typo = portwarden(&["silence", "add", "wbe", "--for", "1h", "-c", c]);
    assert_eq!(typo.status.code(), Some(2), "{}", stdout(&typo));
    assert_eq!(
        stderr(&typo),
        format!(
            "portwarden silence: no monitor named \"wbe\" in the daemon at 127.0.0.1:{api_port}; \
             did you mean \"web\"? (--force silences it anyway)\n"
        )
    );
    let silenced = portwarden(&["silence", "add", "web", "--for", "1h", "-c", c]);
    assert_eq!(silenced.status.code(), Some(0), "{}", stderr(&silenced));
    let said = stdout(&silenced);
    assert!(
        said.starts_with("silence 1: web until 20") && said.ends_with(" (in 59m 59s)\n")
            || said.ends_with(" (in 1h 0m)\n"),
        "{said}"
    );

    // The daemon gone: 3, not 1.
    drop(d);
    let gone = portwarden(&["status", "-c", c]);
    assert_eq!(gone.status.code(), Some(3), "{}", stdout(&gone));
    assert!(
        stderr(&gone).starts_with(&format!(
            "portwarden status: cannot reach the daemon at 127.0.0.1:{api_port}: "
        )),
        "{}",
        stderr(&gone)
    );

    // A bad address or config: 2.
    let bad = portwarden(&["status", "--listen", "localhost"]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad),
        "portwarden status: --listen: not an address and port: \"localhost\"; write an IP \
         address and port: \"127.0.0.1:9898\" (this host only), \"0.0.0.0:9898\" (every \
         interface), \"[::1]:9898\" or \"localhost:9898\"\n"
    );
    let missing = portwarden(&["status", "-c", dir.join("nope.toml").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));

    // `--help` documents the codes.
    let help = stdout(&portwarden(&["status", "--help"]));
    assert!(help.contains("Exit codes: 0 no monitor is DOWN"), "{help}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_takes_listen_localhost() {
    let dir = temp_dir("cli-run-localhost");
    let api_port = free_port();
    let config = config(&dir, free_port(), free_port());
    let mut command = Daemon::command(&config);
    command.args(["--listen", &format!("localhost:{api_port}")]);
    let d = Daemon::spawn(command, format!("127.0.0.1:{api_port}").parse().unwrap());
    assert!(d.get("/healthz").is_some());
    drop(d);
    let bad = portwarden(&[
        "run",
        "-c",
        config.to_str().unwrap(),
        "--listen",
        "example.com:9898",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains(
            "invalid value 'example.com:9898' for '--listen <ADDR>': \"example.com:9898\": the \
             host name \"example.com\" is not looked up; write an IP address and port"
        ),
        "{}",
        stderr(&bad)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn silence_add_refuses_a_monitor_the_config_does_not_have() {
    let dir = temp_dir("cli-silence");
    // No daemon runs: the names come from the config.
    let config = config(&dir, free_port(), free_port());
    let c = config.to_str().unwrap();
    let out = portwarden(&["silence", "add", "db-*", "--for", "2h", "-c", c]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!("portwarden silence: no monitor name starts with \"db-\" in {c} (--force silences it anyway)\n")
    );
    let forced = portwarden(&["silence", "add", "db-*", "--for", "2h", "--force", "-c", c]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    for ok in ["web", "we*", "*", "firewall"] {
        let out = portwarden(&["silence", "add", ok, "--for", "2h", "-c", c]);
        assert_eq!(out.status.code(), Some(0), "{ok}: {}", stderr(&out));
    }
    let list = stdout(&portwarden(&["silence", "list", "-c", c]));
    let row = list
        .lines()
        .find(|l| l.contains(" web "))
        .unwrap_or_default();
    let until: Vec<&str> = row.split_whitespace().skip(2).take(3).collect();
    assert_eq!(until.len(), 3, "{list}");
    assert!(
        until[0].starts_with("20") && until[0].len() == 10 && until[1].len() == 8,
        "a local date and time, not RFC 3339: {list}"
    );
    assert!(
        until[2] == "UTC" || until[2].starts_with(['+', '-']),
        "{list}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reboot_cancel_with_nothing_pending_says_so_and_writes_nothing() {
    let dir = temp_dir("cli-reboot");
    let out = portwarden(&["reboot", "cancel", "--state-dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "portwarden reboot cancel: no reboot is pending; nothing was written\n"
    );
    assert!(stdout(&out).is_empty());
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "nothing written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn firewall_pause_prints_a_date_and_the_time_left() {
    let dir = temp_dir("cli-pause");
    let state = dir.to_str().unwrap();
    let out = portwarden(&["firewall", "pause", "--for", "30m", "--state-dir", state]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.starts_with("firewall repairs paused until 20"),
        "{said}"
    );
    assert!(
        said.ends_with(" (in 30m 0s); the guard keeps alerting\n")
            || said.ends_with(" (in 29m 59s); the guard keeps alerting\n"),
        "{said}"
    );
    assert!(!said.contains("unix time"), "{said}");
    let resume = portwarden(&["firewall", "resume", "--state-dir", state]);
    assert_eq!(stdout(&resume), "firewall repairs resumed\n");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Zero-config: no file at the default path. Skipped on a machine that has one.
#[test]
fn config_check_and_notify_test_explain_zero_config() {
    if Path::new("/etc/portwarden/portwarden.toml").exists() {
        eprintln!("skipped: /etc/portwarden/portwarden.toml exists");
        return;
    }
    let check = portwarden(&["config", "check"]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert_eq!(
        stdout(&check),
        "config OK: no config at /etc/portwarden/portwarden.toml, so `portwarden run` uses the \
         built-in zero-config default (watch this host's listeners and its firewall, API on \
         127.0.0.1:9898), which is valid\n"
    );
    let notify = portwarden(&["notify", "test", "ops"]);
    assert_eq!(notify.status.code(), Some(2));
    assert_eq!(
        stderr(&notify),
        "portwarden notify test: no config at /etc/portwarden/portwarden.toml: portwarden runs \
         its zero-config default, which has no notifiers, so there is no \"ops\" to test; add a \
         [[notifier]] named \"ops\" to a config (docs/notifications.md) and run `portwarden \
         notify test ops -c FILE`\n"
    );
    // A -c that names a missing file is still an error about that file.
    let named = portwarden(&["config", "check", "-c", "/nonexistent/pw.toml"]);
    assert_eq!(named.status.code(), Some(2));
}

#[test]
fn a_short_interval_alone_is_a_valid_config() {
    let dir = temp_dir("cli-interval");
    let path = dir.join("portwarden.toml");
    std::fs::write(
        &path,
        "[[monitor]]\nname = \"fast\"\ntarget = \"127.0.0.1:80\"\ninterval = \"2s\"\n",
    )
    .unwrap();
    let out = portwarden(&["config", "check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "config OK: 1 monitor\n");
    std::fs::write(
        &path,
        "[[monitor]]\nname = \"fast\"\ntarget = \"127.0.0.1:80\"\ninterval = \"2s\"\n\
         timeout = \"5s\"\n",
    )
    .unwrap();
    let out = portwarden(&["config", "check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "{}:5:11: monitor \"fast\": timeout: 5s is longer than the interval (2s): a check \
             must end before the next one starts; set timeout to 2s or less, or a longer \
             interval\nconfig check failed: 1 problem\n",
            path.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// What `status` cannot use from a config is said, with exit 2, before anything is asked.
#[test]
fn status_says_why_a_config_gives_no_way_to_ask() {
    let dir = temp_dir("cli-status-config");
    let tls = dir.join("tls.toml");
    std::fs::write(
        &tls,
        "[daemon]\nlisten = \"127.0.0.1:9443\"\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n",
    )
    .unwrap();
    let out = portwarden(&["status", "-c", tls.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portwarden status: the daemon at 127.0.0.1:9443 serves HTTPS ([daemon] tls_cert), which \
         this command does not speak yet; ask it with curl --cacert CERT \
         https://127.0.0.1:9443/api/v1/monitors\n"
    );
    let token = dir.join("token.toml");
    std::fs::write(
        &token,
        "[daemon]\napi_token_env = \"PORTWARDEN_TEST_UNSET_TOKEN\"\nread_token = true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portwarden"))
        .args(["status", "-c", token.to_str().unwrap()])
        .env_remove("PORTWARDEN_TEST_UNSET_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "portwarden status: the daemon wants its API token for reads ([daemon] read_token) and \
         it cannot be read here: [daemon] api_token_env: environment variable \
         PORTWARDEN_TEST_UNSET_TOKEN is not set\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
