//! `bench soak`: the daemon run for hours under a steady, realistic mix, to show that nothing
//! grows without bound. The goal (issue 14) is flat over 24 h: memory that only grows is a
//! leak, and so are file descriptors or a start lag that creep up.
//!
//! The mix, all on loopback and all bounded by `--hours`:
//! - `--monitors` banner monitors spread over a `bench fleet` child (healthy), plus
//!   `--flippers` monitors on listeners of our own that open and close every `--flip-every`
//!   seconds, so state changes, incidents and notifications never stop;
//! - a webhook notifier (reminders on) posting to a receiver of our own that answers 200;
//! - a scraper reading `/metrics`, `/api/v1/monitors` and `/api/v1/incidents`;
//! - a SIGHUP reload every `--reload-every` minutes.
//!
//! Every `--sample-s` seconds it reads the daemon's RSS and open file descriptors (`/proc`)
//! and the scheduler's start lag (`/healthz`). The report gives the least-squares slope of
//! each over the run after a warm-up (the allocator and SQLite's cache fill up first), and
//! what that slope would add over 24 hours.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::scale::{http_get, parse_health, start_daemon, stop_daemon, tail};
use crate::{fleet, sys};

/// Options of `bench soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Length of the run, in hours (at most 48).
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    /// Healthy banner monitors on the fleet.
    #[arg(long, default_value_t = 2000)]
    monitors: usize,
    /// Monitors whose listener opens and closes every `--flip-every` seconds.
    #[arg(long, default_value_t = 20)]
    flippers: usize,
    /// Seconds between a flipper listener opening and closing.
    #[arg(long, default_value_t = 60)]
    flip_every: u64,
    /// Check interval of every monitor, in seconds.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    /// Minutes between SIGHUP reloads (0: none).
    #[arg(long, default_value_t = 10)]
    reload_every: u64,
    /// Seconds between scrapes of `/metrics` and the API.
    #[arg(long, default_value_t = 15)]
    scrape_every: u64,
    /// Seconds between samples of RSS, file descriptors and lag.
    #[arg(long, default_value_t = 30)]
    sample_s: u64,
    /// Share of the run left out of the slopes at its start (warm-up), 0-0.5.
    #[arg(long, default_value_t = 0.125)]
    warmup_share: f64,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// Print the samples and the summary as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write the samples and the summary as JSON to this file (written at every sample,
    /// so a run cut short still leaves its data).
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Run nothing: summarize the samples of an earlier run's `--json-out` file (one cut
    /// short, say). `--warmup-share` applies; the other options describe that run.
    #[arg(long, value_name = "FILE")]
    from_json: Option<PathBuf>,
}

/// One reading of the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sample {
    t_s: f64,
    rss_kib: u64,
    fds: u64,
    threads: u64,
    lag_p99_ms: f64,
    transitions_written: u64,
    dropped: u64,
    db_bytes: u64,
    webhook_posts: u64,
    scrapes: u64,
    reloads: u64,
}

/// A fitted trend: value at the start of the fitted part, slope per hour, and what 24 h at
/// that slope would add.
#[derive(Debug, Clone, Serialize)]
struct Trend {
    first: f64,
    last: f64,
    min: f64,
    max: f64,
    mean: f64,
    slope_per_hour: f64,
    growth_24h: f64,
    /// `growth_24h` as a share of `mean`.
    growth_24h_share: f64,
}

#[derive(Debug, Clone, Serialize)]
struct Summary {
    hours: f64,
    monitors: usize,
    flippers: usize,
    samples: usize,
    fitted_from_s: f64,
    rss_kib: Trend,
    /// RSS over the second half alone: the store keeps an hour of raw results, so for the
    /// first hour RSS grows with its page cache; a leak keeps growing after that.
    rss_kib_second_half: Trend,
    fds: Trend,
    lag_p99_ms: Trend,
    transitions: u64,
    webhook_posts: u64,
    scrapes: u64,
    reloads: u64,
    daemon_exit: Option<i32>,
    flat: bool,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    machine: String,
    summary: Option<&'a Summary>,
    samples: &'a [Sample],
}

/// Growth over 24 h above this share of the mean counts as "not flat" (memory, lag).
const FLAT_SHARE_24H: f64 = 0.10;
/// Growth over 24 h above this many descriptors counts as "not flat".
const FLAT_FDS_24H: f64 = 8.0;

pub fn run(args: &SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.hours > 0.0 && args.hours <= 48.0,
        "--hours must be in (0, 48]"
    );
    anyhow::ensure!(
        args.monitors > 0 && args.monitors <= 100_000,
        "--monitors must be 1-100000"
    );
    anyhow::ensure!(args.flippers <= 1000, "--flippers must be at most 1000");
    anyhow::ensure!(args.flip_every >= 1, "--flip-every must be at least 1");
    anyhow::ensure!(args.interval >= 1, "--interval must be at least 1");
    anyhow::ensure!(args.sample_s >= 1, "--sample-s must be at least 1");
    anyhow::ensure!(args.scrape_every >= 1, "--scrape-every must be at least 1");
    anyhow::ensure!(
        (0.0..=0.5).contains(&args.warmup_share),
        "--warmup-share must be in [0, 0.5]"
    );
    if let Some(path) = &args.from_json {
        return report_saved(args, path);
    }
    sys::raise_file_limit();
    let me = std::env::current_exe().context("locating the bench binary")?;
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    let dir = std::env::temp_dir().join(format!("portwarden-bench-soak-{}", std::process::id()));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = soak(args, &me, &portwarden, &dir);
    if result.is_ok() {
        let _ = fs::remove_dir_all(&dir);
    } else {
        eprintln!("kept {} for a look", dir.display());
    }
    result
}

fn soak(args: &SoakArgs, me: &Path, portwarden: &Path, dir: &Path) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let fleet = Fleet::start(me, args.monitors.min(1000))?;
    let flippers = Flippers::start(args.flippers, Duration::from_secs(args.flip_every), &stop)?;
    let receiver = Receiver::start(&stop)?;
    let api = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = dir.join("portwarden.toml");
    write_config(
        &config,
        args,
        api,
        &dir.join("state"),
        &fleet.ports,
        &flippers.ports,
        receiver.addr,
    )?;
    let log_path = dir.join("daemon.log");
    let (mut daemon, _) = start_daemon(
        portwarden,
        &config,
        File::create(&log_path)?,
        &log_path,
        api,
        args.monitors + args.flippers,
        Duration::from_secs(300),
    )?;
    let pid = daemon.pid.clone();
    eprintln!(
        "soak: {} monitors + {} flippers, pid {pid}, {:.1} h; samples every {} s",
        args.monitors, args.flippers, args.hours, args.sample_s
    );

    let scrapes = Arc::new(AtomicU64::new(0));
    let scraper = {
        let (stop, scrapes, every) = (
            stop.clone(),
            scrapes.clone(),
            Duration::from_secs(args.scrape_every),
        );
        std::thread::spawn(move || scrape_loop(api, every, &stop, &scrapes))
    };

    let started = Instant::now();
    let length = Duration::from_secs_f64(args.hours * 3600.0);
    let reload_every = Duration::from_secs(args.reload_every * 60);
    let mut next_reload = started + reload_every;
    let mut reloads = 0u64;
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = started;
    while started.elapsed() < length {
        if let Some(status) = daemon.child.try_wait()? {
            bail!(
                "the daemon exited during the soak ({status}):\n{}",
                tail(&log_path, 20)
            );
        }
        let now = Instant::now();
        if args.reload_every > 0 && now >= next_reload {
            let target = rustix::process::Pid::from_raw(daemon.child.id() as i32).context("pid")?;
            rustix::process::kill_process(target, rustix::process::Signal::HUP)?;
            reloads += 1;
            next_reload += reload_every;
        }
        if now >= next_sample {
            let (_, body) = http_get(api, "/healthz", Duration::from_secs(10))?;
            let health = parse_health(&body)?;
            samples.push(Sample {
                t_s: started.elapsed().as_secs_f64(),
                rss_kib: sys::status_kib_of(&pid, "VmRSS")?,
                fds: count_fds(&pid)?,
                threads: sys::status_kib_of(&pid, "Threads")?,
                lag_p99_ms: health.lag_p99_ms,
                transitions_written: health.transitions_written,
                dropped: health.dropped,
                db_bytes: health.db_bytes,
                webhook_posts: receiver.posts.load(Ordering::Relaxed),
                scrapes: scrapes.load(Ordering::Relaxed),
                reloads,
            });
            if let Some(path) = &args.json_out {
                write_json(path, None, &samples)?;
            }
            next_sample += Duration::from_secs(args.sample_s);
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    stop.store(true, Ordering::Relaxed);
    let (_, exit) = stop_daemon(&mut daemon)?;
    let _ = scraper.join();
    drop(flippers);
    drop(receiver);
    drop(fleet);

    let summary = summarize(args, &samples, exit)?;
    if let Some(path) = &args.json_out {
        write_json(path, Some(&summary), &samples)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                machine: sys::machine(),
                summary: Some(&summary),
                samples: &samples,
            })?
        );
    } else {
        print!("{}", markdown(&summary));
    }
    Ok(())
}

/// `--from-json`: the summary of a saved run.
fn report_saved(args: &SoakArgs, path: &Path) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct Saved {
        samples: Vec<Sample>,
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let saved: Saved =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let summary = summarize(args, &saved.samples, None)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", markdown(&summary));
    }
    Ok(())
}

/// Counts `/proc/<pid>/fd`.
fn count_fds(pid: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/fd");
    Ok(fs::read_dir(&path)
        .with_context(|| format!("reading {path}"))?
        .count() as u64)
}

fn write_json(path: &Path, summary: Option<&Summary>, samples: &[Sample]) -> anyhow::Result<()> {
    let report = Report {
        machine: sys::machine(),
        summary,
        samples,
    };
    fs::write(path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes the config: healthy monitors round-robin over the fleet, flippers one each.
fn write_config(
    path: &Path,
    args: &SoakArgs,
    api: SocketAddr,
    state_dir: &Path,
    fleet: &[u16],
    flippers: &[u16],
    receiver: SocketAddr,
) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(
        out,
        "# Generated by `bench soak`.\n[daemon]\nlisten = \"{api}\"\nstate_dir = {state_dir:?}\n\n\
         [defaults]\ninterval = \"{}s\"\ntimeout = \"2s\"\nfail_after = 2\nrecover_after = 1\n\
         notify = [\"hook\"]\n\n\
         [[notifier]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{receiver}/hook\"\n\
         timeout = \"5s\"\nremind_every = \"5m\"\ngroup_window = \"5s\"\n",
        args.interval
    )?;
    for (i, port) in fleet.iter().cycle().take(args.monitors).enumerate() {
        writeln!(
            out,
            "[[monitor]]\nname = \"m{i:06}\"\ntarget = \"127.0.0.1:{port}\"\nexpect = {{ prefix = \"220\" }}\n"
        )?;
    }
    // Flapping detection would freeze a flipper after a few flips (no more state changes,
    // so no more incidents or notifications to soak): let them change state for the run.
    for (i, port) in flippers.iter().enumerate() {
        writeln!(
            out,
            "[[monitor]]\nname = \"flip{i:04}\"\ntarget = \"127.0.0.1:{port}\"\nexpect = {{ prefix = \"220\" }}\nflap_max_transitions = 1000\n"
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Reads the metrics and two API lists, as a dashboard and Prometheus would.
fn scrape_loop(api: SocketAddr, every: Duration, stop: &AtomicBool, scrapes: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        for path in ["/metrics", "/api/v1/monitors", "/api/v1/incidents"] {
            if matches!(http_get(api, path, Duration::from_secs(10)), Ok((200, _))) {
                scrapes.fetch_add(1, Ordering::Relaxed);
            }
        }
        sleep_unless_stopped(every, stop);
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let until = Instant::now() + total;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Fits every trend after the warm-up share.
fn summarize(args: &SoakArgs, samples: &[Sample], exit: Option<i32>) -> anyhow::Result<Summary> {
    anyhow::ensure!(samples.len() >= 4, "too few samples for a trend");
    let total = samples.last().map_or(0.0, |s| s.t_s);
    let from = total * args.warmup_share;
    let fitted: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= from).collect();
    let series = |f: &dyn Fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        fitted.iter().map(|s| (s.t_s, f(s))).collect()
    };
    let rss = trend(&series(&|s| s.rss_kib as f64));
    let second_half: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.t_s >= total / 2.0)
        .map(|s| (s.t_s, s.rss_kib as f64))
        .collect();
    let rss_second_half = trend(&second_half);
    let fds = trend(&series(&|s| s.fds as f64));
    let lag = trend(&series(&|s| s.lag_p99_ms));
    let last = samples.last().context("no samples")?;
    let flat = rss_second_half.growth_24h_share <= FLAT_SHARE_24H
        && fds.growth_24h <= FLAT_FDS_24H
        && (lag.growth_24h_share <= FLAT_SHARE_24H || lag.growth_24h <= 10.0);
    Ok(Summary {
        hours: total / 3600.0,
        monitors: args.monitors,
        flippers: args.flippers,
        samples: samples.len(),
        fitted_from_s: from,
        rss_kib: rss,
        rss_kib_second_half: rss_second_half,
        fds,
        lag_p99_ms: lag,
        transitions: last.transitions_written,
        webhook_posts: last.webhook_posts,
        scrapes: last.scrapes,
        reloads: last.reloads,
        daemon_exit: exit,
        flat,
    })
}

/// Least-squares line through (seconds, value); slope reported per hour.
fn trend(points: &[(f64, f64)]) -> Trend {
    let n = points.len().max(1) as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = points.iter().map(|p| p.1).sum::<f64>() / n;
    let cov: f64 = points.iter().map(|p| (p.0 - mean_t) * (p.1 - mean_v)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    let slope_per_s = if var > 0.0 { cov / var } else { 0.0 };
    let growth_24h = slope_per_s * 86_400.0;
    Trend {
        first: points.first().map_or(0.0, |p| p.1),
        last: points.last().map_or(0.0, |p| p.1),
        min: points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
        max: points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max),
        mean: mean_v,
        slope_per_hour: slope_per_s * 3600.0,
        growth_24h,
        growth_24h_share: if mean_v > 0.0 {
            growth_24h / mean_v
        } else {
            0.0
        },
    }
}

fn markdown(s: &Summary) -> String {
    let row = |name: &str, unit: &str, t: &Trend, scale: f64| {
        format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:+.2} {unit}/h | {:+.1} {unit} ({:+.1}%) |\n",
            t.first / scale,
            t.last / scale,
            t.min / scale,
            t.max / scale,
            t.slope_per_hour / scale,
            t.growth_24h / scale,
            t.growth_24h_share * 100.0
        )
    };
    let mut out = format!(
        "machine: {}\n\nsoak: {:.2} h, {} monitors + {} flippers, {} samples, trend fitted from {:.0} s\n\n\
         | series | first | last | min | max | slope | 24 h at that slope |\n|---|---|---|---|---|---|---|\n",
        sys::machine(),
        s.hours,
        s.monitors,
        s.flippers,
        s.samples,
        s.fitted_from_s
    );
    out += &row("RSS (MiB)", "MiB", &s.rss_kib, 1024.0);
    out += &row(
        "RSS, second half (MiB)",
        "MiB",
        &s.rss_kib_second_half,
        1024.0,
    );
    out += &row("open fds", "fds", &s.fds, 1.0);
    out += &row("start lag p99 (ms)", "ms", &s.lag_p99_ms, 1.0);
    out += &format!(
        "\nwork done: {} state changes stored, {} webhook posts, {} scrapes, {} reloads; daemon exit {:?}\n\
         verdict: {}\n",
        s.transitions,
        s.webhook_posts,
        s.scrapes,
        s.reloads,
        s.daemon_exit,
        if s.flat {
            "flat (second-half RSS and lag: 24 h growth within 10% of the mean; fds within 8)"
        } else {
            "GROWING: look at the slopes above"
        }
    );
    out
}

/// A `bench fleet` child on 127.0.0.1; it exits when its stdin closes.
struct Fleet {
    child: Child,
    stdin: Option<ChildStdin>,
    ports: Vec<u16>,
}

impl Fleet {
    fn start(me: &Path, count: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(me)
            .args(["fleet", "--workers", "1", "--count", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the fleet")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("the fleet's stdout")?;
        let mut fleet = Self {
            child,
            stdin,
            ports: Vec::new(),
        };
        // On error `fleet` drops here, which stops the child.
        fleet.ports = fleet::read_ports(stdout)?;
        Ok(fleet)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !matches!(
            crate::orchestrate::wait_bounded(&mut self.child, Duration::from_secs(5)),
            Ok(Some(_))
        ) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Listeners that are open (answering a 220 banner) for `every`, then closed for `every`.
struct Flippers {
    ports: Vec<u16>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flippers {
    fn start(count: usize, every: Duration, stop: &Arc<AtomicBool>) -> anyhow::Result<Self> {
        let mut listeners = Vec::new();
        for _ in 0..count {
            listeners.push(TcpListener::bind("127.0.0.1:0")?);
        }
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<Vec<_>, _>>()?;
        let stop = stop.clone();
        let addrs = ports.clone();
        let thread = std::thread::spawn(move || flip_loop(listeners, &addrs, every, &stop));
        Ok(Self {
            ports,
            thread: Some(thread),
        })
    }
}

impl Drop for Flippers {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves the listeners while open (non-blocking accepts), drops them while closed, and
/// binds the same ports again to open (std sets SO_REUSEADDR, so TIME_WAIT does not block).
fn flip_loop(mut open: Vec<TcpListener>, ports: &[u16], every: Duration, stop: &AtomicBool) {
    let mut flip_at = Instant::now() + every;
    let mut is_open = true;
    for l in &open {
        let _ = l.set_nonblocking(true);
    }
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= flip_at {
            flip_at += every;
            is_open = !is_open;
            open.clear();
            if is_open {
                open = ports
                    .iter()
                    .filter_map(|p| TcpListener::bind(("127.0.0.1", *p)).ok())
                    .collect();
                for l in &open {
                    let _ = l.set_nonblocking(true);
                }
            }
        }
        for l in &open {
            while let Ok((mut s, _)) = l.accept() {
                let _ = s.write_all(b"220 flipper ready\r\n");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A webhook receiver that answers 200 to every POST and counts them.
struct Receiver {
    addr: SocketAddr,
    posts: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(stop: &Arc<AtomicBool>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let posts = Arc::new(AtomicU64::new(0));
        let (stop, count) = (stop.clone(), posts.clone());
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if answer_post(stream).is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Self {
            addr,
            posts,
            thread: Some(thread),
        })
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (head, then `Content-Length` bytes, at most 1 MiB) and answers 200.
fn answer_post(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let body_start = loop {
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0 && buf.len() < 1 << 20, "short or huge request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..body_start]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < body_start + length.min(1 << 20) {
        let n = stream.read(&mut chunk)?;
        anyhow::ensure!(n > 0, "request body cut short");
        buf.extend_from_slice(&chunk[..n]);
    }
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")?;
    Ok(())
}
