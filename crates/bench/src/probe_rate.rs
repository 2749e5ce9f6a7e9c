//! `bench probe-rate`: blackbox_exporter-style `/probe` requests per second, portwarden next
//! to the real `prometheus-blackbox-exporter`, in the same run, on the same loopback banner
//! fleet and the same `blackbox.yml` (a `tcp` module expecting `^220`).
//!
//! Load comes from `wrk` (concurrency 64 by default, keep-alive HTTP) with a Lua script that
//! spreads the targets over the fleet's ports: one destination ip:port would fill its
//! ephemeral ports with TIME_WAIT (see the perf baselines). Rounds alternate the two
//! exporters; each round's CPU is read from `/proc`. The report gives the median rate of
//! each, the ratio and the CPU per probe.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::{fleet, sys};

/// Options of `bench probe-rate`.
#[derive(Debug, Args)]
pub struct ProbeRateArgs {
    /// Seconds of load per run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Open connections (wrk `-c`).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Runs of each exporter, alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Fleet listeners (targets) on 127.0.0.1.
    #[arg(long, default_value_t = 1000)]
    targets: u16,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// The blackbox_exporter binary.
    #[arg(long, default_value = "/usr/bin/prometheus-blackbox-exporter")]
    blackbox: PathBuf,
    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
}

/// Children killed on drop (by their own handles).
struct Guarded(Vec<Child>, PathBuf);

impl Drop for Guarded {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

const YML: &str = r#"modules:
  tcp_banner:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^220"
"#;

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn wait_ready(port: u16, path: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if http_get(port, path).is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("127.0.0.1:{port}{path} did not answer")
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    raw.starts_with("HTTP/1.1 200")
        .then(|| raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()))
        .flatten()
}

/// One wrk run: requests per second, non-2xx responses and socket errors.
struct WrkRun {
    rate: f64,
    bad: u64,
    cpu: Duration,
}

fn run_wrk(
    args: &ProbeRateArgs,
    port: u16,
    script: &std::path::Path,
    pid: u32,
) -> anyhow::Result<WrkRun> {
    let before = sys::cpu_times(&pid.to_string())?;
    let out = Command::new(&args.wrk)
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.concurrency))
        .arg(format!("-d{}s", args.duration))
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .with_context(|| format!("running {} (apt-get install wrk)", args.wrk.display()))?;
    let cpu = sys::cpu_times(&pid.to_string())?.since(before).total();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rate = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("wrk printed no rate:\n{text}"))?;
    let mut bad = 0;
    for l in text.lines() {
        let l = l.trim();
        if let Some(n) = l.strip_prefix("Non-2xx or 3xx responses:") {
            bad += n.trim().parse::<u64>().unwrap_or(0);
        }
        if let Some(rest) = l.strip_prefix("Socket errors:") {
            bad += rest
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Ok(WrkRun { rate, bad, cpu })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the comparison and prints a markdown table.
pub fn run(args: &ProbeRateArgs) -> anyhow::Result<()> {
    sys::raise_file_limit();
    let me = std::env::current_exe()?;
    let portwarden = args
        .portwarden
        .clone()
        .unwrap_or_else(|| me.with_file_name("portwarden"));
    anyhow::ensure!(
        portwarden.exists(),
        "{} not found: build it first (cargo build --release -p portwarden)",
        portwarden.display()
    );
    anyhow::ensure!(
        args.blackbox.exists(),
        "{} not found (apt-get install prometheus-blackbox-exporter)",
        args.blackbox.display()
    );
    let dir = std::env::temp_dir().join(format!("portwarden-bench-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut guard = Guarded(Vec::new(), dir.clone());

    let mut fleet_child = Command::new(&me)
        .args([
            "fleet",
            "--count",
            &args.targets.to_string(),
            "--workers",
            "1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the fleet")?;
    let ports = fleet::read_ports(fleet_child.stdout.take().context("fleet stdout")?)?;
    guard.0.push(fleet_child);

    std::fs::write(dir.join("blackbox.yml"), YML)?;
    let bb_port = free_port()?;
    let bb = Command::new(&args.blackbox)
        .arg(format!(
            "--config.file={}",
            dir.join("blackbox.yml").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{bb_port}"))
        .arg("--log.level=error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting blackbox_exporter")?;
    let bb_pid = bb.id();
    guard.0.push(bb);

    let pw_port = free_port()?;
    let first = ports.first().copied().context("the fleet has no ports")?;
    std::fs::write(
        dir.join("portwarden.toml"),
        format!(
            "[daemon]\nlisten = \"127.0.0.1:{pw_port}\"\nstate_dir = \"state\"\nblackbox_config = \"blackbox.yml\"\n\n\
             [[monitor]]\nname = \"fleet\"\ntarget = \"127.0.0.1:{first}\"\ninterval = \"60s\"\n"
        ),
    )?;
    let pw = Command::new(&portwarden)
        .arg("run")
        .arg("-c")
        .arg(dir.join("portwarden.toml"))
        .env("PORTWARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting portwarden run")?;
    let pw_pid = pw.id();
    guard.0.push(pw);

    wait_ready(bb_port, "/-/healthy")?;
    wait_ready(pw_port, "/healthz")?;
    let probe_path = format!("/probe?module=tcp_banner&target=127.0.0.1:{first}");
    for (who, port) in [("blackbox_exporter", bb_port), ("portwarden", pw_port)] {
        let body = http_get(port, &probe_path).with_context(|| format!("{who} /probe"))?;
        anyhow::ensure!(
            body.contains("probe_success 1"),
            "{who} does not see the fleet:\n{body}"
        );
    }

    let list = ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let script = dir.join("probe.lua");
    std::fs::write(
        &script,
        format!(
            "local ports = {{{list}}}\nlocal i = 0\n\
             request = function()\n  i = i + 1\n  \
             return wrk.format(\"GET\", \"/probe?module=tcp_banner&target=127.0.0.1:\" .. ports[(i % #ports) + 1])\nend\n"
        ),
    )?;

    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut cpu_per: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let servers = [
        ("blackbox_exporter", bb_port, bb_pid),
        ("portwarden", pw_port, pw_pid),
    ];
    for round in 0..args.rounds {
        // Alternate which goes first, so drift on a shared box hits both.
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (who, port, pid) = servers[i];
            let r = run_wrk(args, port, &script, pid)?;
            eprintln!(
                "round {}: {who}: {:.0} probes/s, {} bad, CPU {:.1} µs/probe",
                round + 1,
                r.rate,
                r.bad,
                r.cpu.as_secs_f64() * 1e6 / (r.rate * args.duration as f64).max(1.0)
            );
            anyhow::ensure!(r.bad == 0, "{who}: {} failed requests", r.bad);
            rates[i].push(r.rate);
            cpu_per[i].push(r.cpu.as_secs_f64() * 1e6 / (r.rate * args.duration as f64).max(1.0));
        }
    }
    let (bb_rate, pw_rate) = (median(rates[0].clone()), median(rates[1].clone()));
    println!(
        "\n/probe (tcp, expect ^220) over {} loopback targets, wrk -t{} -c{} -d{}s, {} rounds, {}\n",
        ports.len(),
        args.threads,
        args.concurrency,
        args.duration,
        args.rounds,
        sys::machine()
    );
    println!("| exporter | probes/s (median) | runs | server CPU per probe |");
    println!("|---|---|---|---|");
    for (i, (who, _, _)) in servers.iter().enumerate() {
        println!(
            "| {who} | {:.0} | {} | {:.1} µs |",
            median(rates[i].clone()),
            rates[i]
                .iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", "),
            median(cpu_per[i].clone())
        );
    }
    println!(
        "\nportwarden / blackbox_exporter: {:.2}×",
        pw_rate / bb_rate.max(1.0)
    );
    drop(guard);
    Ok(())
}
