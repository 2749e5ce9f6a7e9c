//! `bench probe-rate`: blackbox_exporter-style `/probe` requests per second, portwarden next
//! to the real `prometheus-blackbox-exporter`, in the same run, on the same loopback banner
//! fleet and the same `blackbox.yml` (a `tcp` module expecting `^220`).
//!
//! Load comes from `wrk` (concurrency 64 by default, keep-alive HTTP) with a Lua script that
//! spreads the targets over the fleet's ports: one destination ip:port would fill its
//! ephemeral ports with TIME_WAIT (see the perf baselines). Rounds alternate the two
//! exporters; each round's CPU is read from `/proc`. The report gives the median rate of
//! each, the ratio and the CPU per probe.
//!
//! Two layouts, both in every run: `shared` (every process may use every CPU, so the load
//! generator and the fleet take CPU from the exporter under test) and `pinned` (the exporter
//! alone on the last CPU, wrk and the fleet on the others; each exporter is started pinned,
//! so Go's GOMAXPROCS and tokio's worker count follow the CPUs it has). `pinned` measures
//! what the issue asks about, the exporter's own capacity; `shared` is the crowded box.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use crate::children::{free_port, Guarded};
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
    /// Which layouts to run: `both`, `shared` or `pinned` (pinned needs two CPUs or more).
    #[arg(long, default_value = "both", value_parser = ["both", "shared", "pinned"])]
    layout: String,
}

/// Where the processes of one layout may run.
#[derive(Debug, Clone)]
struct Layout {
    name: &'static str,
    /// CPUs of wrk and the fleet (`taskset -c` syntax), `None`: anywhere.
    load_cpus: Option<String>,
    /// CPUs of the exporter under test.
    server_cpus: Option<String>,
}

impl Layout {
    fn all(which: &str) -> anyhow::Result<Vec<Layout>> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut out = Vec::new();
        if which != "pinned" {
            out.push(Layout {
                name: "shared",
                load_cpus: None,
                server_cpus: None,
            });
        }
        if which != "shared" {
            anyhow::ensure!(
                cpus >= 2 || which == "both",
                "--layout pinned needs two CPUs; this machine offers {cpus}"
            );
            if cpus >= 2 {
                let load = if cpus == 2 {
                    "0".to_string()
                } else {
                    format!("0-{}", cpus - 2)
                };
                out.push(Layout {
                    name: "pinned",
                    load_cpus: Some(load),
                    server_cpus: Some((cpus - 1).to_string()),
                });
            } else {
                eprintln!("one CPU only: the pinned layout is skipped");
            }
        }
        Ok(out)
    }
}

/// `program` run on `cpus` (through util-linux's `taskset`, which execs it: same PID).
fn command_on(cpus: Option<&str>, program: &std::path::Path) -> Command {
    match cpus {
        None => Command::new(program),
        Some(c) => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(c).arg(program);
            cmd
        }
    }
}

/// Moves every thread of `pid` onto `cpus` (`None`: every CPU).
fn pin(pid: u32, cpus: Option<&str>) -> anyhow::Result<()> {
    let all = format!(
        "0-{}",
        std::thread::available_parallelism().map_or(1, |n| n.get()) - 1
    );
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus.unwrap_or(&all), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    anyhow::ensure!(status.success(), "taskset could not move {pid}");
    Ok(())
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

/// One wrk run: requests per second, non-2xx responses and socket errors, the server's CPU
/// time and the whole box's busy time.
struct WrkRun {
    rate: f64,
    bad: u64,
    cpu: sys::CpuTimes,
    box_busy: Duration,
}

fn run_wrk(
    args: &ProbeRateArgs,
    layout: &Layout,
    port: u16,
    script: &std::path::Path,
    pid: u32,
) -> anyhow::Result<WrkRun> {
    let before = sys::cpu_times(&pid.to_string())?;
    let box_before = sys::box_busy_time()?;
    let out = command_on(layout.load_cpus.as_deref(), &args.wrk)
        .arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.concurrency))
        .arg(format!("-d{}s", args.duration))
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .with_context(|| format!("running {} (apt-get install wrk)", args.wrk.display()))?;
    let cpu = sys::cpu_times(&pid.to_string())?.since(before);
    let box_busy = sys::box_busy_time()?.saturating_sub(box_before);
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
    Ok(WrkRun {
        rate,
        bad,
        cpu,
        box_busy,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The two exporters of one layout, started on its CPUs.
struct Exporters {
    /// (name, port, pid), blackbox_exporter first.
    servers: [(&'static str, u16, u32); 2],
    _children: Guarded,
}

fn start_exporters(
    args: &ProbeRateArgs,
    layout: &Layout,
    portwarden: &std::path::Path,
    dir: &std::path::Path,
    first_target: u16,
) -> anyhow::Result<Exporters> {
    let cpus = layout.server_cpus.as_deref();
    let mut children = Guarded(Vec::new(), None);
    let bb_port = free_port()?;
    let bb = command_on(cpus, &args.blackbox)
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
    children.0.push(bb);

    let pw_port = free_port()?;
    let config = dir.join(format!("portwarden-{}.toml", layout.name));
    std::fs::write(
        &config,
        format!(
            "[daemon]\nlisten = \"127.0.0.1:{pw_port}\"\nstate_dir = \"state-{}\"\nblackbox_config = \"blackbox.yml\"\n\n\
             [firewall]\nguard = false\n\n\
             [[monitor]]\nname = \"fleet\"\ntarget = \"127.0.0.1:{first_target}\"\ninterval = \"60s\"\n",
            layout.name
        ),
    )?;
    let pw = command_on(cpus, portwarden)
        .arg("run")
        .arg("-c")
        .arg(&config)
        .env("PORTWARDEN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting portwarden run")?;
    let pw_pid = pw.id();
    children.0.push(pw);

    wait_ready(bb_port, "/-/healthy")?;
    wait_ready(pw_port, "/healthz")?;
    let probe_path = format!("/probe?module=tcp_banner&target=127.0.0.1:{first_target}");
    for (who, port) in [("blackbox_exporter", bb_port), ("portwarden", pw_port)] {
        let body = http_get(port, &probe_path).with_context(|| format!("{who} /probe"))?;
        anyhow::ensure!(
            body.contains("probe_success 1"),
            "{who} does not see the fleet:\n{body}"
        );
    }
    Ok(Exporters {
        servers: [
            ("blackbox_exporter", bb_port, bb_pid),
            ("portwarden", pw_port, pw_pid),
        ],
        _children: children,
    })
}

/// The figures of one layout.
struct LayoutResult {
    layout: Layout,
    /// Per exporter (blackbox_exporter first): rates, CPU µs per probe (all, and user
    /// space alone: the exporter's own code, without the kernel's TCP work), box busy share.
    rates: [Vec<f64>; 2],
    cpu_per: [Vec<f64>; 2],
    user_per: [Vec<f64>; 2],
    busy: [Vec<f64>; 2],
}

/// Runs the comparison and prints a markdown table.
pub fn run(args: &ProbeRateArgs) -> anyhow::Result<()> {
    sys::raise_file_limit();
    let layouts = Layout::all(&args.layout)?;
    let me = std::env::current_exe()?;
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    anyhow::ensure!(
        args.blackbox.exists(),
        "{} not found (apt-get install prometheus-blackbox-exporter)",
        args.blackbox.display()
    );
    let dir = std::env::temp_dir().join(format!("portwarden-bench-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut fleet_guard = Guarded(Vec::new(), Some(dir.clone()));

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
    let fleet_pid = fleet_child.id();
    fleet_guard.0.push(fleet_child);
    std::fs::write(dir.join("blackbox.yml"), YML)?;
    let first = ports.first().copied().context("the fleet has no ports")?;

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

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = Vec::new();
    for layout in layouts {
        pin(fleet_pid, layout.load_cpus.as_deref())?;
        let exporters = start_exporters(args, &layout, &portwarden, &dir, first)?;
        let mut r = LayoutResult {
            layout: layout.clone(),
            rates: [Vec::new(), Vec::new()],
            cpu_per: [Vec::new(), Vec::new()],
            user_per: [Vec::new(), Vec::new()],
            busy: [Vec::new(), Vec::new()],
        };
        for round in 0..args.rounds {
            // Alternate which goes first, so drift on a shared box hits both.
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (who, port, pid) = exporters.servers[i];
                let w = run_wrk(args, &layout, port, &script, pid)?;
                let probes = (w.rate * args.duration as f64).max(1.0);
                let cpu_per = w.cpu.total().as_secs_f64() * 1e6 / probes;
                let user_per = w.cpu.user.as_secs_f64() * 1e6 / probes;
                let busy = w.box_busy.as_secs_f64() / (args.duration as f64 * cpus as f64);
                eprintln!(
                    "{} round {}: {who}: {:.0} probes/s, {} bad, server CPU {cpu_per:.1} µs/probe, box {:.0}% busy",
                    layout.name,
                    round + 1,
                    w.rate,
                    w.bad,
                    busy * 100.0
                );
                anyhow::ensure!(w.bad == 0, "{who}: {} failed requests", w.bad);
                r.rates[i].push(w.rate);
                r.cpu_per[i].push(cpu_per);
                r.user_per[i].push(user_per);
                r.busy[i].push(busy);
            }
        }
        drop(exporters);
        results.push(r);
    }

    println!(
        "\n/probe (tcp, expect ^220) over {} loopback targets, wrk -t{} -c{} -d{}s, {} rounds, {}\n",
        ports.len(),
        args.threads,
        args.concurrency,
        args.duration,
        args.rounds,
        sys::machine()
    );
    println!(
        "| layout | exporter | probes/s (median) | runs | server CPU per probe | of it user space | box busy |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &results {
        let cpus_note = match (&r.layout.server_cpus, &r.layout.load_cpus) {
            (Some(s), Some(l)) => format!(" (server on CPU {s}, wrk and fleet on {l})"),
            _ => String::new(),
        };
        for (i, who) in ["blackbox_exporter", "portwarden"].iter().enumerate() {
            println!(
                "| {}{cpus_note} | {who} | {:.0} | {} | {:.1} µs | {:.1} µs | {:.0}% |",
                r.layout.name,
                median(r.rates[i].clone()),
                r.rates[i]
                    .iter()
                    .map(|x| format!("{x:.0}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                median(r.cpu_per[i].clone()),
                median(r.user_per[i].clone()),
                median(r.busy[i].clone()) * 100.0
            );
        }
    }
    println!();
    for r in &results {
        println!(
            "{}: portwarden / blackbox_exporter: {:.2}× probes/s, {:.2}× less CPU per probe",
            r.layout.name,
            median(r.rates[1].clone()) / median(r.rates[0].clone()).max(1.0),
            median(r.cpu_per[0].clone()) / median(r.cpu_per[1].clone()).max(0.001)
        );
    }
    drop(fleet_guard);
    Ok(())
}
