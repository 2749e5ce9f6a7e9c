//! `bench ports`: how long `portwarden ports` takes, and how much memory it needs, on a host
//! with many listening sockets (10,000 by default).
//!
//! Everything happens in a network namespace the benchmark creates (root needed), so the
//! machine's own sockets are neither counted nor touched:
//! - `bench hold` (run inside it) opens the listening sockets and waits for stdin to close;
//! - `bench measure` (run inside it) runs one command, and prints its wall time and peak RSS
//!   (`getrusage(RUSAGE_CHILDREN)`, exact because it is the only child it waits for).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// Arguments of `bench ports`.
#[derive(Debug, clap::Args)]
pub struct PortsArgs {
    /// Listening sockets to create.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Measured runs per output format.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
}

/// Arguments of `bench hold`.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    #[arg(long)]
    sockets: usize,
}

/// Arguments of `bench measure`.
#[derive(Debug, clap::Args)]
pub struct MeasureArgs {
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true)]
    command: Vec<String>,
}

/// What `bench measure` prints.
#[derive(Debug, Serialize, Deserialize)]
struct Measured {
    wall_ms: f64,
    peak_rss_kib: u64,
    stdout_bytes: usize,
    listeners: Option<usize>,
    exit_code: i32,
}

/// Opens the sockets on 127.0.0.1 (kernel-chosen ports), says "ready", waits for stdin to
/// close (at most 10 minutes), exits.
pub fn hold(args: &HoldArgs) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(args.sockets);
    for i in 0..args.sockets {
        held.push(TcpListener::bind("127.0.0.1:0").with_context(|| format!("socket {i}"))?);
    }
    println!("ready {}", held.len());
    std::io::stdout().flush()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(600));
    Ok(())
}

/// Runs the command, drains its stdout, reports time and peak memory as one JSON line.
pub fn measure(args: &MeasureArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut child = Command::new(&args.command[0])
        .args(&args.command[1..])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", args.command[0]))?;
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .context("stdout")?
        .read_to_end(&mut out)?;
    let status = child.wait()?;
    let wall = started.elapsed();
    let listeners = serde_json::from_slice::<serde_json::Value>(&out)
        .ok()
        .and_then(|v| v["listeners"].as_array().map(Vec::len));
    let report = Measured {
        wall_ms: wall.as_secs_f64() * 1e3,
        peak_rss_kib: children_peak_rss_kib(),
        stdout_bytes: out.len(),
        listeners,
        exit_code: status.code().unwrap_or(-1),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Peak RSS of the largest child waited for, in KiB.
#[expect(
    unsafe_code,
    reason = "getrusage(RUSAGE_CHILDREN): no safe wrapper in std"
)]
fn children_peak_rss_kib() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct we own; RUSAGE_CHILDREN is valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    u64::try_from(usage.ru_maxrss).unwrap_or(0)
}

/// A network namespace for the benchmark, deleted on drop with the holder in it.
struct Namespace {
    name: String,
    holder: Option<Child>,
}

impl Namespace {
    fn create() -> anyhow::Result<Self> {
        let name = format!("pw-bench-ports-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()?
            .success();
        if !ok {
            bail!("cannot create a network namespace: run as root, with iproute2 installed");
        }
        let ns = Self { name, holder: None };
        let up = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ip", "link", "set", "lo", "up"])
            .status()?;
        if !up.success() {
            bail!("cannot bring loopback up in {}", ns.name);
        }
        Ok(ns)
    }

    fn exec(&self, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut holder) = self.holder.take() {
            drop(holder.stdin.take());
            let _ = holder.kill();
            let _ = holder.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// The orchestrator of `bench ports`: holder, runs, table.
pub fn run(args: &PortsArgs) -> anyhow::Result<()> {
    let me = std::env::current_exe()?;
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    let mut ns = Namespace::create()?;
    let mut holder = ns
        .exec(&me)
        .args(["hold", "--sockets", &args.sockets.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut ready = String::new();
    BufReader::new(holder.stdout.take().context("holder stdout")?).read_line(&mut ready)?;
    ns.holder = Some(holder);
    if !ready.starts_with("ready") {
        bail!("the socket holder did not start ({ready:?}); is the open-file limit high enough?");
    }
    eprintln!("{} listening sockets held in {}", args.sockets, ns.name);

    println!("| command | runs | wall time median (min–max) | peak RSS max | listeners listed |");
    println!("|---|---:|---:|---:|---:|");
    // `ss -ltnp` (iproute2) does the same work and is the reference operators know.
    let ss = std::path::Path::new("/usr/bin/ss");
    let commands: Vec<(&std::path::Path, &[&str])> = vec![
        (&portwarden, &["ports", "--json"]),
        (&portwarden, &["ports"]),
        (ss, &["-ltnp"]),
    ];
    for (program, format) in commands {
        if !program.exists() {
            continue;
        }
        let mut walls = Vec::new();
        let mut rss = 0;
        let mut listed = None;
        for _ in 0..args.runs {
            let out = ns
                .exec(&me)
                .arg("measure")
                .arg(program)
                .args(format)
                .output()?;
            let m: Measured = serde_json::from_slice(&out.stdout)
                .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
            if m.exit_code != 0 {
                bail!(
                    "{} {} exited with {}",
                    program.display(),
                    format.join(" "),
                    m.exit_code
                );
            }
            walls.push(m.wall_ms);
            rss = rss.max(m.peak_rss_kib);
            listed = m.listeners.or(listed);
        }
        let min = walls.iter().copied().fold(f64::INFINITY, f64::min);
        let max = walls.iter().copied().fold(0.0, f64::max);
        println!(
            "| `{} {}` | {} | {:.0} ms ({:.0}–{:.0}) | {:.1} MiB | {} |",
            program
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
            format.join(" "),
            args.runs,
            median(walls),
            min,
            max,
            rss as f64 / 1024.0,
            listed.map_or("(table)".to_string(), |n| n.to_string()),
        );
    }
    Ok(())
}
