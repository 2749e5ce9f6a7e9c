//! `bench notify`: from a monitor going DOWN (its failure threshold reached) to a real SMTP
//! server holding the e-mail, without grouping and with the default `group_wait`. A loopback listener is closed and reopened `--rounds` times under
//! `portwarden run` with one `smtp` notifier pointed at `python3 -m aiosmtpd`-based receiver;
//! the clock starts when the daemon's `is DOWN` log line arrives and stops when the receiver
//! reports the message. Both are stamped by this process as the lines arrive, on one clock.
//!
//! Needs `python3-aiosmtpd` (Debian). Runs in the machine's own namespace on loopback only; the
//! daemon's firewall guard is off.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::children::{free_port, stamped, wait_for, Guarded};
use anyhow::Context;
use clap::Args;

/// An SMTP receiver that prints one JSON line per message it accepts.
const RECEIVER: &str = r#"
import asyncio, email, json, sys
from aiosmtpd.controller import Controller
class H:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        print(json.dumps({"subject": msg.get("Subject", "")}), flush=True)
        return "250 OK"
c = Controller(H(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"#;

#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// DOWN notifications measured without grouping (one daemon).
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// DOWN notifications measured with the default grouping (a daemon each).
    #[arg(long, default_value_t = 5)]
    default_rounds: usize,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// A listener on a fixed port that can be closed and opened again.
fn listen(port: u16) -> anyhow::Result<TcpListener> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

pub fn run(args: &NotifyArgs) -> anyhow::Result<()> {
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    // No grouping: the pipeline itself (event, outbox commit, SMTP dialogue), many rounds.
    let mut direct = Vec::new();
    measure(
        &portwarden,
        "group_window = \"0s\"",
        args.rounds,
        &mut direct,
    )?;
    // The defaults (group_wait 500 ms, group_window 30 s): a fresh daemon per DOWN, since the
    // next message would wait for the window.
    let mut defaults = Vec::new();
    for _ in 0..args.default_rounds {
        measure(&portwarden, "", 1, &mut defaults)?;
    }
    report(args, &mut [("no grouping", direct), ("defaults", defaults)]);
    Ok(())
}

/// Starts a receiver and a daemon whose notifier has `notifier_extra`, and measures `rounds`
/// DOWN notifications into `latencies` (milliseconds).
fn measure(
    portwarden: &Path,
    notifier_extra: &str,
    rounds: usize,
    latencies: &mut Vec<f64>,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "portwarden-bench-notify-{}-{}",
        std::process::id(),
        latencies.len()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut guard = Guarded(Vec::new(), Some(dir.clone()));

    let smtp_port = free_port()?;
    // Debian's python3, which has aiosmtpd (a pyenv python on PATH may not).
    let mut receiver = Command::new("/usr/bin/python3")
        .args(["-c", RECEIVER, &smtp_port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the aiosmtpd receiver (apt-get install python3-aiosmtpd)")?;
    let mails = stamped(receiver.stdout.take().context("receiver stdout")?);
    guard.0.push(receiver);
    wait_for(&mails, "the SMTP receiver to start", |l| l == "ready")?;

    let service_port = free_port()?;
    let api_port = free_port()?;
    let mut service = Some(listen(service_port)?);
    let config = dir.join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
listen = "127.0.0.1:{api_port}"
state_dir = "{state}"

[firewall]
guard = false

[defaults]
interval = "100ms"
timeout = "90ms"
fail_after = 1
recover_after = 1
# Every round is a DOWN and an UP: never call that flapping.
flap_max_transitions = 1000

[[notifier]]
name = "mail"
type = "smtp"
server = "127.0.0.1:{smtp_port}"
tls = "none"
from = "portwarden@localhost"
to = ["ops@localhost"]
{notifier_extra}

[[monitor]]
name = "svc"
target = "127.0.0.1:{service_port}"
notify = ["mail"]
"#,
            state = dir.join("state").display()
        ),
    )?;
    let mut daemon = Command::new(portwarden)
        .args(["run", "-c"])
        .arg(&config)
        .env("PORTWARDEN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting portwarden run")?;
    let log = stamped(daemon.stderr.take().context("daemon stderr")?);
    guard.0.push(daemon);
    wait_for(&log, "the daemon to start", |l| l.contains("API on"))?;
    // Let the first check see the service up.
    std::thread::sleep(Duration::from_millis(500));

    for round in 0..rounds {
        drop(service.take());
        let (down, _) = wait_for(&log, "svc DOWN in the log", |l| l.contains("svc is DOWN"))
            .with_context(|| format!("round {round}"))?;
        let (mailed, _) = wait_for(&mails, "the DOWN mail", |l| {
            l.to_ascii_lowercase().contains("down")
        })
        .with_context(|| format!("round {round}"))?;
        latencies.push(mailed.saturating_duration_since(down).as_secs_f64() * 1000.0);
        if round + 1 < rounds {
            service = Some(listen(service_port)?);
            wait_for(&mails, "the UP mail", |l| {
                l.to_ascii_lowercase().contains("up")
            })
            .with_context(|| format!("round {round}"))?;
        }
    }
    Ok(())
}

fn report(args: &NotifyArgs, scenarios: &mut [(&str, Vec<f64>)]) {
    let mut rows = Vec::new();
    for (name, latencies) in scenarios.iter_mut() {
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
        rows.push((*name, latencies.len(), pick(0.5), pick(0.95), pick(1.0)));
    }
    if args.json {
        let doc: Vec<_> = rows
            .iter()
            .map(|(name, n, p50, p95, max)| {
                serde_json::json!({"scenario": name, "rounds": n, "p50_ms": p50, "p95_ms": p95, "max_ms": max})
            })
            .collect();
        println!("{}", serde_json::Value::Array(doc));
        return;
    }
    println!("DOWN (threshold reached) → SMTP server holds the mail, loopback, aiosmtpd:\n");
    println!("| notifier | rounds | p50 | p95 | max | max / 1 s target |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, n, p50, p95, max) in rows {
        println!(
            "| {name} | {n} | {p50:.1} ms | {p95:.1} ms | {max:.1} ms | {:.3} |",
            max / 1000.0
        );
    }
}
