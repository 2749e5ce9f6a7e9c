//! `bench heal`: self-healing speed. A loopback service (a small Python listener) is killed with
//! SIGKILL `--rounds` times under `portwarden run`; its monitor's `on_down` ladder is one `exec`
//! action that starts it again. Measured per round: from the DOWN event to the action issued
//! (the daemon's own `issued_us`), and from the kill to the daemon's `action_taken` line saying
//! the service answers again (this process's clock, stamped as the line arrives).
//!
//! Runs in the machine's own namespace on loopback only; the firewall guard is off.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::children::{stamped, wait_for};
use anyhow::{bail, Context};
use clap::Args;

#[derive(Debug, Args)]
pub struct HealArgs {
    /// Kills measured.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
}

struct Guarded(Vec<Child>, PathBuf);

impl Drop for Guarded {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The service the fix script started last.
        if let Ok(pid) = std::fs::read_to_string(self.1.join("pid")) {
            let _ = Command::new("kill").args(["-9", pid.trim()]).status();
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn field(line: &str, name: &str) -> Option<u64> {
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

pub fn run(args: &HealArgs) -> anyhow::Result<()> {
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    let dir = std::env::temp_dir().join(format!("portwarden-bench-heal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut guard = Guarded(Vec::new(), dir.clone());
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let api = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();

    // The fix: start the service in the background and return; it writes its pid.
    let fix = dir.join("fix.sh");
    std::fs::write(
        &fix,
        format!(
            "#!/bin/sh\n/usr/bin/python3 -c 'import os, socket\n\
             s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind((\"127.0.0.1\", {port})); s.listen(64)\n\
             open(\"{pid}\", \"w\").write(str(os.getpid()))\n\
             while True:\n    c, _ = s.accept(); c.close()\n' >/dev/null 2>&1 &\n\
             while [ ! -s {pid} ]; do sleep 0.01; done\n",
            pid = dir.join("pid").display()
        ),
    )?;
    let run_fix = || -> anyhow::Result<()> {
        let _ = std::fs::remove_file(dir.join("pid"));
        let ok = Command::new("/bin/sh").arg(&fix).status()?.success();
        if !ok {
            bail!("the fix script failed");
        }
        Ok(())
    };
    run_fix()?;

    let config = dir.join("portwarden.toml");
    std::fs::write(
        &config,
        format!(
            r#"[daemon]
listen = "127.0.0.1:{api}"
state_dir = "{state}"

[firewall]
guard = false

[defaults]
interval = "200ms"
timeout = "150ms"
fail_after = 2
recover_after = 1
flap_max_transitions = 1000
max_actions = 1000
action_cooldown = "0s"
reset_after = "500ms"

[[monitor]]
name = "svc"
target = "127.0.0.1:{port}"
on_down = [{{ type = "exec", command = ["/bin/sh", "{fix}"], grace = "5s" }}]
"#,
            state = dir.join("state").display(),
            fix = fix.display()
        ),
    )?;
    let mut daemon = Command::new(&portwarden)
        .args(["run", "-c"])
        .arg(&config)
        .env("PORTWARDEN_LOG", "info,portwarden::heal=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting portwarden run")?;
    let log = stamped(daemon.stderr.take().context("daemon stderr")?);
    guard.0.push(daemon);
    wait_for(&log, "the daemon to start", |l| l.contains("API on"))?;
    std::thread::sleep(Duration::from_millis(800));

    let mut issued_us = Vec::new();
    let mut kill_to_fixed = Vec::new();
    for round in 0..args.rounds {
        let pid = std::fs::read_to_string(dir.join("pid"))?;
        let killed = Instant::now();
        Command::new("kill").args(["-9", pid.trim()]).status()?;
        let (_, issued) = wait_for(&log, "the action issued", |l| l.contains("issued_us="))
            .with_context(|| format!("round {round}"))?;
        let (fixed, line) = wait_for(&log, "the fix verified", |l| {
            l.contains("event=\"action_taken\"") || l.contains("event=\"action_failed\"")
        })
        .with_context(|| format!("round {round}"))?;
        if !line.contains("answering again") {
            bail!("round {round}: not fixed: {line}");
        }
        issued_us.push(field(&issued, "issued_us").unwrap_or(0) as f64);
        kill_to_fixed.push(fixed.duration_since(killed).as_secs_f64() * 1000.0);
        // Healthy past `reset_after`, so each round starts the ladder afresh.
        std::thread::sleep(Duration::from_millis(1200));
    }
    drop(guard);

    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let pick = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
        (pick(0.5), pick(1.0))
    };
    let (i50, imax) = stats(&mut issued_us);
    let (k50, kmax) = stats(&mut kill_to_fixed);
    println!(
        "Self-healing, {} kills (checks every 200 ms, fail_after 2, an exec fix):\n",
        args.rounds
    );
    println!("| measure | p50 | max | target | max / target |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| DOWN → action issued | {:.2} ms | {:.2} ms | 100 ms | {:.4} |",
        i50 / 1000.0,
        imax / 1000.0,
        imax / 1000.0 / 100.0
    );
    // interval × fail_after + one re-check interval + the restart itself (≈ 100 ms here).
    let bound = 200.0 * 2.0 + 200.0 + 100.0;
    println!(
        "| server killed → fixed, verified | {k50:.0} ms | {kmax:.0} ms | {bound:.0} ms (interval × fail_after + re-check + restart) | {:.2} |",
        kmax / bound
    );
    Ok(())
}
