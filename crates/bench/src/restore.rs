//! `bench firewall`: time from `nft flush ruleset` to the baseline restored and verified by the
//! daemon's firewall guard, inside a network namespace of its own (root needed; the machine's
//! own firewall is never touched).
//!
//! Two scenarios in one run: with nftables change notifications (the default), and with
//! periodic verification only (`watch = false`), where the restore waits for the next period.
//! The clock starts just before `nft flush ruleset` is spawned and stops when the daemon's
//! `firewall_repaired` log line arrives; after every round the ruleset is compared with the
//! baseline, so a round only counts when the restore really put it back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

const RULESET: &str = r#"
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
        ip saddr 10.0.0.0/8 tcp dport 22 accept
        tcp dport { 80, 443 } accept
    }
}
"#;

#[derive(Debug, Args)]
pub struct FirewallArgs {
    /// Flushes measured with change notifications.
    #[arg(long, default_value_t = 30)]
    rounds: usize,
    /// Flushes measured with periodic verification only.
    #[arg(long, default_value_t = 5)]
    periodic_rounds: usize,
    /// The verification period of the periodic scenario, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    period_ms: u64,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// Print JSON instead of a markdown table.
    #[arg(long)]
    json: bool,
}

/// A namespace with the daemon in it; both go away on drop.
struct Bed {
    ns: String,
    dir: PathBuf,
    daemon: Option<Child>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        if let Some(c) = &mut self.daemon {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bed {
    fn new(tag: &str) -> anyhow::Result<Bed> {
        let ns = format!("pw-bench-fw-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .context("running ip")?
            .success();
        if !ok {
            bail!("cannot create network namespace {ns} (bench firewall needs root)");
        }
        let dir = std::env::temp_dir().join(&ns);
        std::fs::create_dir_all(&dir)?;
        let bed = Bed {
            ns,
            dir,
            daemon: None,
        };
        bed.sh("ip link set lo up")?;
        let rules = bed.dir.join("ruleset.nft");
        std::fs::write(&rules, RULESET)?;
        bed.sh(&format!("nft -f {}", rules.display()))?;
        Ok(bed)
    }

    fn sh(&self, script: &str) -> anyhow::Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "sh", "-c", script])
            .output()?;
        if !out.status.success() {
            bail!(
                "`{script}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts the daemon; returns its stderr lines, each stamped when it arrived.
    fn start(
        &mut self,
        portwarden: &Path,
        firewall: &str,
    ) -> anyhow::Result<mpsc::Receiver<(Instant, String)>> {
        let baseline = self.dir.join("firewall.baseline");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(portwarden)
            .args(["firewall", "baseline", "save", "--baseline"])
            .arg(&baseline)
            .output()?;
        if !out.status.success() {
            bail!(
                "baseline save failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let config = self.dir.join("portwarden.toml");
        std::fs::write(
            &config,
            format!(
                "[daemon]\nlisten = \"127.0.0.1:9898\"\nstate_dir = \"{}\"\n\n[firewall]\nbaseline = \"{}\"\n{firewall}\n",
                self.dir.join("state").display(),
                baseline.display()
            ),
        )?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(portwarden)
            .arg("run")
            .arg("-c")
            .arg(&config)
            .env("PORTWARDEN_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting portwarden run")?;
        let stderr = child.stderr.take().context("daemon stderr")?;
        self.daemon = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(rx)
    }
}

/// Waits (bounded) for a log line containing `needle`.
fn wait_line(
    rx: &mpsc::Receiver<(Instant, String)>,
    needle: &str,
    limit: Duration,
) -> anyhow::Result<(Instant, String)> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((at, line)) if line.contains(needle) => return Ok((at, line)),
            Ok((_, line)) => seen.push(line),
            Err(_) => bail!(
                "no `{needle}` from the daemon within {limit:?}; it said:\n{}",
                seen.join("\n")
            ),
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct Scenario {
    mode: String,
    rounds: usize,
    /// Milliseconds from `nft flush ruleset` to the repaired ruleset verified.
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
    /// The daemon's own figure: from noticing the change to verified.
    daemon_p50_ms: f64,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn took_ms(line: &str) -> Option<f64> {
    let at = line.find("took_ms=")? + "took_ms=".len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn scenario(
    portwarden: &Path,
    mode: &str,
    firewall: &str,
    rounds: usize,
    ready: &str,
) -> anyhow::Result<Scenario> {
    let mut bed = Bed::new(mode)?;
    let baseline = bed.sh("nft -s list ruleset")?;
    let rx = bed.start(portwarden, firewall)?;
    wait_line(&rx, ready, Duration::from_secs(20))?;
    let mut totals = Vec::new();
    let mut daemon = Vec::new();
    for round in 0..rounds {
        std::thread::sleep(Duration::from_millis(200));
        while rx.try_recv().is_ok() {}
        let started = Instant::now();
        bed.sh("nft flush ruleset")?;
        let (at, line) = wait_line(&rx, "event=\"firewall_repaired\"", Duration::from_secs(30))
            .with_context(|| format!("round {round}"))?;
        totals.push(at.duration_since(started).as_secs_f64() * 1000.0);
        if let Some(ms) = took_ms(&line) {
            daemon.push(ms);
        }
        let now = bed.sh("nft -s list ruleset")?;
        if now != baseline {
            bail!("round {round}: the restored ruleset differs from the baseline:\n{now}");
        }
    }
    totals.sort_by(f64::total_cmp);
    daemon.sort_by(f64::total_cmp);
    Ok(Scenario {
        mode: mode.to_string(),
        rounds,
        p50_ms: percentile(&totals, 0.5),
        p95_ms: percentile(&totals, 0.95),
        max_ms: totals.last().copied().unwrap_or(f64::NAN),
        daemon_p50_ms: percentile(&daemon, 0.5),
    })
}

pub fn run(args: &FirewallArgs) -> anyhow::Result<()> {
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    let watched = scenario(
        &portwarden,
        "watch",
        "verify_every = \"1h\"\nmax_repairs_per_hour = 1000",
        args.rounds,
        "watching nftables changes",
    )?;
    let periodic = scenario(
        &portwarden,
        "periodic",
        &format!(
            "watch = false\nverify_every = \"{}ms\"\nmax_repairs_per_hour = 1000",
            args.period_ms
        ),
        args.periodic_rounds,
        "firewall guard:",
    )?;
    let results = [watched, periodic];
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!("Flush → restored and verified (nftables, one namespace, 200 ms target with notifications):\n");
    println!("| mode | rounds | p50 | p95 | max | daemon p50 (notice → verified) | p95 / 200 ms target |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for s in &results {
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} |",
            s.mode,
            s.rounds,
            s.p50_ms,
            s.p95_ms,
            s.max_ms,
            s.daemon_p50_ms,
            s.p95_ms / 200.0
        );
    }
    println!(
        "\n(periodic: verification every {} ms, so the restore waits up to one period)",
        args.period_ms
    );
    Ok(())
}
