//! `bench storm`: a notification storm. `portwarden run` with N monitors (100,000 by default)
//! against the loopback banner fleet of `bench daemon`, one `webhook` notifier pointed at a
//! recording receiver in this process; once every monitor is up, the fleet is SIGKILLed and
//! every monitor goes DOWN at its next check. Measured from outside:
//!
//! - monitors covered: distinct monitors named by a `down` item the receiver got, out of N
//!   (the goal: all of them, each once);
//! - messages (webhook requests), items, repeated items and repeated idempotency keys;
//! - time from the fleet's death to the first item and to the last monitor covered;
//! - the daemon's peak RSS (`VmHWM`) and the log lines saying events were missed.
//!
//! Every wait is bounded; the daemon dies with the harness (parent-death signal), the fleet
//! with its handle, and the temporary directory is removed (unless `--keep`).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::scale::{self, MultiFleet};
use crate::sys;

/// Options of `bench storm`.
#[derive(Debug, Args)]
pub struct StormArgs {
    /// Monitors that go down together.
    #[arg(long, default_value_t = 100_000)]
    monitors: usize,
    /// Check interval of every monitor, in seconds (a monitor sees the fleet gone at its
    /// next check, so the DOWNs spread over one interval).
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// `group_window` of the webhook notifier (one message per window, at most 500 items).
    #[arg(long, default_value = "1s")]
    group_window: String,
    /// Loopback addresses of the fleet: 127.0.0.1 … 127.0.0.N.
    #[arg(long, default_value_t = 8)]
    hosts: u8,
    /// Banner listeners on each address.
    #[arg(long, default_value_t = 1000)]
    ports_per_host: u16,
    /// `[daemon] max_in_flight` of the generated config.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// Longest wait for `/healthz` after spawning the daemon, in seconds.
    #[arg(long, default_value_t = 300)]
    startup_limit: u64,
    /// Longest wait for every monitor to be covered after the fleet died, in seconds.
    #[arg(long, default_value_t = 1200)]
    limit: u64,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// Keep the temporary directory (config, database, daemon log) and print its path.
    #[arg(long)]
    keep: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// What the run measured.
#[derive(Debug, Serialize)]
struct StormReport {
    monitors: usize,
    interval_s: f64,
    group_window: String,
    /// Distinct monitors named by a `down` item.
    covered: usize,
    messages: usize,
    items: usize,
    /// `down` items beyond one per outage (a monitor that came back up in between, e.g. when
    /// another process on the machine took its port, rightly has a second one).
    repeated_items: usize,
    /// Requests whose `Idempotency-Key` was seen before (retries of one message).
    repeated_keys: usize,
    /// Items per kind (`down`, and any other a monitor went through meanwhile).
    kinds: std::collections::BTreeMap<String, usize>,
    /// Seconds from the fleet's death to the first item received.
    first_item_s: Option<f64>,
    /// Seconds from the fleet's death to the last monitor covered.
    last_covered_s: Option<f64>,
    daemon_peak_rss_mib: f64,
    /// Daemon log lines that say events were missed.
    missed_lines: usize,
}

/// Everything the receiver recorded.
#[derive(Debug, Default)]
struct Recorded {
    messages: usize,
    items: usize,
    keys: HashSet<String>,
    repeated_keys: usize,
    kinds: std::collections::BTreeMap<String, usize>,
    down: HashMap<String, u32>,
    up: HashMap<String, u32>,
    first_item: Option<Instant>,
    last_covered: Option<Instant>,
}

/// A webhook receiver on loopback: answers every POST with 200 and records its items.
struct Receiver {
    addr: SocketAddr,
    recorded: Arc<Mutex<Recorded>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the receiver")?;
        let addr = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (recorded.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let r = r.clone();
                // The daemon sends one request at a time per notifier: few threads.
                std::thread::spawn(move || {
                    if let Err(e) = serve(stream, &r) {
                        eprintln!("  receiver: {e:#}");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            recorded,
            stop,
        })
    }

    fn covered(&self) -> usize {
        self.recorded.lock().map_or(0, |r| r.down.len())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// One request: head, a `Content-Length` body (at most 64 MiB), then 200 and close.
fn serve(stream: TcpStream, recorded: &Mutex<Recorded>) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut length = 0usize;
    let mut key = None;
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    if request_line.is_empty() {
        return Ok(()); // the wake-up connection of `Drop`
    }
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse()?,
                "idempotency-key" => key = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    anyhow::ensure!(length <= 64 << 20, "body of {length} bytes");
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let arrived = Instant::now();
    let doc: Value = serde_json::from_slice(&body).context("the body is not JSON")?;
    {
        let mut r = recorded.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        r.messages += 1;
        if let Some(key) = key {
            if !r.keys.insert(key) {
                r.repeated_keys += 1;
            }
        }
        let items = doc["items"].as_array().cloned().unwrap_or_default();
        r.items += items.len();
        if !items.is_empty() {
            r.first_item.get_or_insert(arrived);
        }
        for item in items {
            let kind = item["kind"].as_str().unwrap_or("?").to_string();
            *r.kinds.entry(kind).or_default() += 1;
            if item["kind"] == "up" {
                let subject = item["subject"].as_str().unwrap_or_default().to_string();
                *r.up.entry(subject).or_insert(0) += 1;
            }
            if item["kind"] == "down" {
                let subject = item["subject"].as_str().unwrap_or_default().to_string();
                let seen = r.down.entry(subject).or_insert(0);
                *seen += 1;
                if *seen == 1 {
                    r.last_covered = Some(arrived);
                }
            }
        }
    }
    let mut out = reader.into_inner();
    out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")?;
    Ok(())
}

pub fn run(args: &StormArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.monitors > 0, "--monitors must be at least 1");
    anyhow::ensure!(
        args.interval >= 0.5 && args.interval <= 3600.0,
        "--interval must be in [0.5, 3600] seconds"
    );
    anyhow::ensure!((1..=254).contains(&args.hosts), "--hosts must be 1-254");
    anyhow::ensure!(
        args.ports_per_host > 0,
        "--ports-per-host must be at least 1"
    );
    let me = std::env::current_exe().context("locating the bench binary")?;
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;

    let fleet = MultiFleet::start(&me, args.hosts, args.ports_per_host, 2)?;
    eprintln!(
        "fleet: {} banner listeners on 127.0.0.1-127.0.0.{} (pid {})",
        fleet.targets.len(),
        args.hosts,
        fleet.pid
    );
    let receiver = Receiver::start()?;
    let dir = std::env::temp_dir().join(format!("portwarden-bench-storm-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = measure(args, &portwarden, fleet, &receiver, &dir);
    if args.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = fs::remove_dir_all(&dir);
    }
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("machine: {}\n", sys::machine());
        print!("{}", markdown(&report));
    }
    Ok(())
}

fn measure(
    args: &StormArgs,
    portwarden: &Path,
    fleet: MultiFleet,
    receiver: &Receiver,
    dir: &Path,
) -> anyhow::Result<StormReport> {
    let config = dir.join("portwarden.toml");
    let api = scale::free_port()?;
    write_config(
        &config,
        args,
        api,
        &dir.join("state"),
        &fleet.targets,
        receiver.addr,
    )?;
    let log_path = dir.join("daemon.log");
    let log = File::create(&log_path).context("creating the daemon's log")?;
    eprintln!(
        "{} monitors every {}s, webhook group_window {}: starting the daemon",
        args.monitors, args.interval, args.group_window
    );
    let (mut daemon, took) = scale::start_daemon(
        portwarden,
        &config,
        log,
        &log_path,
        api,
        args.monitors,
        Duration::from_secs(args.startup_limit),
    )?;
    eprintln!(
        "  up in {:.1} s; waiting for every monitor's first verdict",
        took.as_secs_f64()
    );
    // Each monitor's first result stores its first state change (unknown to ok).
    let limit = Duration::from_secs_f64(3.0 * args.interval + 120.0);
    let waited = Instant::now();
    loop {
        if let Ok((200, body)) = scale::http_get(api, "/healthz", Duration::from_secs(10)) {
            let h = scale::parse_health(&body)?;
            if h.transitions_written >= args.monitors as u64 {
                break;
            }
        }
        if waited.elapsed() > limit {
            bail!("not every monitor had a verdict within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    anyhow::ensure!(
        receiver.covered() == 0,
        "the receiver got DOWNs before the storm"
    );

    let died = fleet.kill()?;
    eprintln!("  fleet killed; waiting for notifications covering every monitor");
    let limit = Duration::from_secs(args.limit);
    let mut reported = Instant::now();
    while receiver.covered() < args.monitors && died.elapsed() < limit {
        if reported.elapsed() >= Duration::from_secs(10) {
            eprintln!(
                "  {:.0} s: {} of {} covered",
                died.elapsed().as_secs_f64(),
                receiver.covered(),
                args.monitors
            );
            reported = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A moment for anything repeated to show.
    std::thread::sleep(Duration::from_secs(2));
    let peak_kib = sys::status_kib_of(&daemon.pid, "VmHWM").unwrap_or(0);
    let (_, code) = scale::stop_daemon(&mut daemon)?;
    if code != Some(0) {
        eprintln!(
            "  the daemon exited with {code:?}:\n{}",
            scale::tail(&log_path, 20)
        );
    }
    let missed_lines = fs::read_to_string(&log_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("were missed") || l.contains("events missed"))
        .count();

    let r = receiver
        .recorded
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let since = |at: Option<Instant>| at.map(|t| t.saturating_duration_since(died).as_secs_f64());
    Ok(StormReport {
        monitors: args.monitors,
        interval_s: args.interval,
        group_window: args.group_window.clone(),
        covered: r.down.len(),
        messages: r.messages,
        items: r.items,
        repeated_items: r
            .down
            .iter()
            .map(|(m, &n)| n.saturating_sub(1 + r.up.get(m).copied().unwrap_or(0)) as usize)
            .sum(),
        repeated_keys: r.repeated_keys,
        kinds: r.kinds.clone(),
        first_item_s: since(r.first_item),
        last_covered_s: since(r.last_covered),
        daemon_peak_rss_mib: peak_kib as f64 / 1024.0,
        missed_lines,
    })
}

/// The config: `monitors` banner checks over the fleet, all notifying one webhook.
fn write_config(
    path: &Path,
    args: &StormArgs,
    listen: SocketAddr,
    state_dir: &Path,
    targets: &[SocketAddr],
    hook: SocketAddr,
) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let interval_ms = (args.interval * 1000.0).round() as u64;
    writeln!(
        out,
        "# Generated by `bench storm`.\n\
         [daemon]\nlisten = \"{listen}\"\nstate_dir = {state_dir:?}\nmax_in_flight = {}\n\n\
         [firewall]\nguard = false\n\n\
         [defaults]\ninterval = \"{interval_ms}ms\"\ntimeout = \"{}ms\"\nfail_after = 1\n\
         notify = [\"hook\"]\n\n\
         [[notifier]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook}/\"\n\
         group_window = {:?}\ntimeout = \"30s\"\n",
        args.max_in_flight,
        (interval_ms / 2).min(5_000),
        args.group_window,
    )?;
    crate::scale::write_banner_monitors(&mut out, targets, args.monitors)?;
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn markdown(r: &StormReport) -> String {
    let secs = |s: Option<f64>| s.map_or("–".into(), |s| format!("{s:.1} s"));
    let verdict = if r.covered == r.monitors && r.repeated_items == 0 {
        "yes"
    } else {
        "**NO**"
    };
    format!(
        "{} monitors down together (checked every {} s), webhook `group_window = {:?}`:\n\n\
         | figure | value |\n|---|---:|\n\
         | monitors covered | {} / {} (all, once: {verdict}) |\n\
         | messages | {} |\n\
         | items | {} ({}) |\n\
         | repeated items / repeated keys | {} / {} |\n\
         | fleet killed → first item | {} |\n\
         | fleet killed → last monitor covered | {} |\n\
         | daemon peak RSS (VmHWM) | {:.0} MiB |\n\
         | log lines saying events were missed | {} |\n",
        r.monitors,
        r.interval_s,
        r.group_window,
        r.covered,
        r.monitors,
        r.messages,
        r.items,
        r.kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        r.repeated_items,
        r.repeated_keys,
        secs(r.first_item_s),
        secs(r.last_covered_s),
        r.daemon_peak_rss_mib,
        r.missed_lines,
    )
}
