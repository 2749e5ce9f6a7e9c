//! `bench daemon`: portwarden at scale. A loopback banner fleet spread over several
//! addresses, a generated config with N monitors (100,000 and 10,000 by default) at a 10 s
//! interval, and `portwarden run` as a child process, measured from outside:
//!
//! - start-up: from spawn to `/healthz` answering (config load, scheduling, API), and the
//!   process's RSS at that moment;
//! - after one interval of warm-up (the first checks spread over it), a measured window
//!   (60 s by default), sampling `/healthz`, `/proc/<pid>/stat` and `/proc/<pid>/status`
//!   every second: checks/s (store `records_written` and scheduler `start_lag.checks`),
//!   start lag, CPU, RSS, `VmHWM`, the store's size and the box's CPU that was not ours;
//! - shutdown: SIGTERM, time to exit (must be 0), then the database is opened read-only to
//!   count the results it holds against the checks the scheduler started.
//!
//! Every wait is bounded; the daemon dies with the harness (parent-death signal), the
//! fleet when its stdin closes, and the temporary directory is removed (unless `--keep`).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::orchestrate::{thousands, wait_bounded, wait_for_quiet};
use crate::{fleet, sys};

/// Targets from the issue.
const TARGET_LAG_P99_MS: f64 = 100.0;
const TARGET_PEAK_RSS_MIB: f64 = 512.0;
/// CPU target, % of one core, for scenarios of at most this many monitors.
const TARGET_CPU_PCT: f64 = 25.0;
const CPU_TARGET_UP_TO: usize = 10_000;
/// The measured rate must reach this share of the schedule (monitors / interval).
const RATE_SHARE: f64 = 0.99;
/// Rollup buckets of the store are 5 minutes wide: every monitor closes one when its first
/// result of a new bucket arrives, so a window across such a boundary does more work.
const ROLLUP_BUCKET_S: u64 = 300;

/// Options of `bench daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Monitor counts, one scenario each, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "100000,10000")]
    monitors: Vec<usize>,
    /// Length of the measured window of each scenario, in seconds.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Check interval of every monitor, in seconds.
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    /// Warm-up between `/healthz` answering and the window, in seconds (default: one
    /// interval, over which the first checks are spread).
    #[arg(long)]
    warmup: Option<f64>,
    /// Loopback addresses of the fleet: 127.0.0.1 … 127.0.0.N.
    #[arg(long, default_value_t = 8)]
    hosts: u8,
    /// Banner listeners on each address.
    #[arg(long, default_value_t = 1000)]
    ports_per_host: u16,
    /// Worker threads of the fleet.
    #[arg(long, default_value_t = 2)]
    fleet_workers: usize,
    /// `[daemon] max_in_flight` of the generated config.
    #[arg(long, default_value_t = 1024)]
    max_in_flight: usize,
    /// `[defaults] timeout` of the generated config, in seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Sampling period of `/healthz` and `/proc`, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    sample_ms: u64,
    /// The portwarden binary (default: next to this one, e.g. target/release/portwarden).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// Longest wait for `/healthz` after spawning the daemon, in seconds.
    #[arg(long, default_value_t = 300)]
    startup_limit: u64,
    /// Before each scenario, wait up to this many seconds for the box to be quiet.
    #[arg(long, default_value_t = 60)]
    quiet_wait: u64,
    /// "Quiet": other processes below this much CPU (% of one core).
    #[arg(long, default_value_t = 15.0)]
    max_noise: f64,
    /// Before measuring, fill the store with this many minutes of past results per monitor
    /// (60: the raw hour the store keeps, its steady state), so the window runs against a
    /// full-size database instead of a new one. Takes a daemon run and a bulk insert first.
    #[arg(long, default_value_t = 0.0)]
    prefill_minutes: f64,
    /// After the window, reload the unchanged config with SIGHUP and measure the reload: its
    /// time and the daemon's peak RSS while it ran (`VmHWM` reset just before, by
    /// `/proc/<pid>/clear_refs`).
    #[arg(long)]
    reload: bool,
    /// Keep the temporary directory (config, database, daemon log) and print its path.
    #[arg(long)]
    keep: bool,
    /// Print every sample and the summary as JSON instead of the tables.
    #[arg(long)]
    json: bool,
    /// Also write every sample and the summary as JSON to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

/// Runs every scenario and prints a table per scenario (or JSON).
pub fn run(args: &DaemonArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.monitors.is_empty() && args.monitors.iter().all(|&n| n > 0),
        "--monitors needs counts of at least 1"
    );
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 3600.0,
        "--seconds must be in (0, 3600]"
    );
    anyhow::ensure!(
        args.interval >= 0.1 && args.interval <= 3600.0,
        "--interval must be in [0.1, 3600] seconds"
    );
    anyhow::ensure!(
        args.timeout > 0.0 && args.timeout <= args.interval,
        "--timeout must be in (0, interval]"
    );
    anyhow::ensure!((1..=254).contains(&args.hosts), "--hosts must be 1-254");
    anyhow::ensure!(
        args.ports_per_host > 0,
        "--ports-per-host must be at least 1"
    );
    anyhow::ensure!(args.sample_ms >= 100, "--sample-ms must be at least 100");
    anyhow::ensure!(
        (0.0..=24.0 * 60.0).contains(&args.prefill_minutes),
        "--prefill-minutes must be in [0, 1440]"
    );
    let me = std::env::current_exe().context("locating the bench binary")?;
    let portwarden = crate::children::portwarden_binary(args.portwarden.as_deref())?;
    let listeners = u64::from(args.hosts) * u64::from(args.ports_per_host);
    let needed = listeners + 2 * args.max_in_flight as u64 + 256;
    if let Some(limit) = sys::file_limit() {
        anyhow::ensure!(
            limit >= needed,
            "the open file limit is {limit}; the fleet needs about {needed} (raise `ulimit -n` or lower --hosts / --ports-per-host)"
        );
    }

    let fleet = MultiFleet::start(&me, args.hosts, args.ports_per_host, args.fleet_workers)?;
    eprintln!(
        "fleet: {} banner listeners on 127.0.0.1-127.0.0.{} ({} per address, pid {})",
        fleet.targets.len(),
        args.hosts,
        args.ports_per_host,
        fleet.pid
    );
    let mut reports = Vec::new();
    for &monitors in &args.monitors {
        wait_for_quiet(args.max_noise, args.quiet_wait)?;
        let report = run_scenario(args, &portwarden, &fleet, monitors)?;
        if !args.json {
            eprintln!();
        }
        reports.push(report);
    }
    drop(fleet);

    if let Some(path) = &args.json_out {
        fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        println!("machine: {}\n", sys::machine());
        for r in &reports {
            print!("{}", markdown(r));
            println!();
        }
    }
    Ok(())
}

/// The banner fleet on several loopback addresses; it exits when its stdin closes (on drop).
pub(crate) struct MultiFleet {
    child: Child,
    stdin: Option<ChildStdin>,
    pub(crate) pid: u32,
    pub(crate) targets: Vec<SocketAddr>,
}

impl MultiFleet {
    /// `ports_per_host` banner listeners on each of 127.0.0.1 … 127.0.0.`hosts`, served by
    /// `workers` threads of `exe fleet`.
    pub(crate) fn start(
        exe: &Path,
        hosts: u8,
        ports_per_host: u16,
        workers: usize,
    ) -> anyhow::Result<Self> {
        let hosts: Vec<IpAddr> = (1..=hosts)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        let host_list = hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut child = Command::new(exe)
            .arg("fleet")
            .args(["--host", &host_list])
            .args(["--count", &ports_per_host.to_string()])
            .args(["--workers", &workers.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the fleet")?;
        let stdin = child.stdin.take();
        let pid = child.id();
        let lists = child
            .stdout
            .take()
            .context("the fleet's stdout")
            .and_then(|out| fleet::read_port_lines(out, hosts.len()));
        let mut fleet = Self {
            child,
            stdin,
            pid,
            targets: Vec::new(),
        };
        // On error `fleet` drops here, which stops the child.
        for (host, ports) in hosts.iter().zip(lists?) {
            anyhow::ensure!(
                ports.len() == usize::from(ports_per_host),
                "the fleet bound {} listeners on {host} instead of {ports_per_host}",
                ports.len(),
            );
            fleet
                .targets
                .extend(ports.into_iter().map(|p| SocketAddr::new(*host, p)));
        }
        Ok(fleet)
    }
}

impl MultiFleet {
    /// Kills the fleet at once (SIGKILL): every listener closes together. Returns when it
    /// is gone.
    pub(crate) fn kill(mut self) -> anyhow::Result<Instant> {
        self.child.kill().context("killing the fleet")?;
        self.child.wait().context("waiting for the killed fleet")?;
        Ok(Instant::now())
    }
}

impl Drop for MultiFleet {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if !matches!(
            wait_bounded(&mut self.child, Duration::from_secs(5)),
            Ok(Some(_))
        ) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A temporary directory, removed on drop unless kept.
struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    fn new(monitors: usize, keep: bool) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "portwarden-bench-daemon-{}-{monitors}",
            std::process::id()
        ));
        if path.exists() {
            fs::remove_dir_all(&path).with_context(|| format!("clearing {}", path.display()))?;
        }
        fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The daemon child; killed on drop if it is still running (an error path).
pub(crate) struct Daemon {
    pub(crate) child: Child,
    pub(crate) pid: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes the config: `monitors` banner checks spread round-robin over the fleet.
fn write_config(
    path: &Path,
    args: &DaemonArgs,
    listen: SocketAddr,
    state_dir: &Path,
    targets: &[SocketAddr],
    monitors: usize,
) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    writeln!(
        out,
        "# Generated by `bench daemon`: {monitors} banner monitors over {} loopback listeners.\n\
         [daemon]\nlisten = \"{listen}\"\nstate_dir = {state_dir:?}\nmax_in_flight = {}\n\n\
         [defaults]\ninterval = \"{}ms\"\ntimeout = \"{}ms\"\n",
        targets.len(),
        args.max_in_flight,
        (args.interval * 1000.0).round() as u64,
        (args.timeout * 1000.0).round() as u64,
    )?;
    write_banner_monitors(&mut out, targets, monitors)?;
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `monitors` banner checks (`m000000`, …) spread round-robin over `targets`.
pub(crate) fn write_banner_monitors(
    out: &mut impl Write,
    targets: &[SocketAddr],
    monitors: usize,
) -> std::io::Result<()> {
    for (i, target) in targets.iter().cycle().take(monitors).enumerate() {
        writeln!(
            out,
            "[[monitor]]\nname = \"m{i:06}\"\ntarget = \"{target}\"\nexpect = {{ prefix = \"220\" }}\n"
        )?;
    }
    Ok(())
}

/// A free port on 127.0.0.1 for the daemon's API (released just before the daemon binds it).
pub(crate) fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}

/// One reading of the daemon and the box.
#[derive(Debug, Clone, Serialize)]
struct Sample {
    /// Seconds since `/healthz` first answered.
    t_s: f64,
    unix_ms: u64,
    healthz_ms: f64,
    records_written: u64,
    transitions_written: u64,
    dropped: u64,
    db_bytes: u64,
    in_flight: u64,
    lag_checks: u64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    /// The start-lag histogram, if `/healthz` has one: (upper bound in ms, or `None` for
    /// the overflow bucket; count since start).
    #[serde(skip_serializing_if = "Option::is_none")]
    lag_buckets: Option<Vec<(Option<f64>, u64)>>,
    cpu_user_s: f64,
    cpu_sys_s: f64,
    rss_kib: u64,
    hwm_kib: u64,
    box_busy_s: f64,
    fleet_cpu_s: f64,
    softirq_cpu_s: f64,
    self_cpu_s: f64,
}

impl Sample {
    fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }
}

/// What `/healthz` said.
#[derive(Debug, Clone, Default)]
pub(crate) struct Health {
    pub(crate) monitors: u64,
    pub(crate) mode: String,
    pub(crate) store_state: String,
    pub(crate) records_written: u64,
    pub(crate) transitions_written: u64,
    pub(crate) dropped: u64,
    pub(crate) db_bytes: u64,
    pub(crate) in_flight: u64,
    pub(crate) lag_checks: u64,
    pub(crate) lag_p50_ms: f64,
    pub(crate) lag_p99_ms: f64,
    pub(crate) lag_max_ms: f64,
    pub(crate) lag_buckets: Option<Vec<(Option<f64>, u64)>>,
}

pub(crate) fn parse_health(body: &str) -> anyhow::Result<Health> {
    let v: Value = serde_json::from_str(body).context("/healthz is not JSON")?;
    let u = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    anyhow::ensure!(
        v.pointer("/store/records_written").is_some()
            && v.pointer("/scheduler/start_lag").is_some(),
        "/healthz lacks store.records_written or scheduler.start_lag: {body}"
    );
    // Optional: `start_lag.buckets = [[upper_ms or null, count], …]`, counts since start.
    let lag_buckets = v
        .pointer("/scheduler/start_lag/buckets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|b| {
                    let pair = b.as_array()?;
                    Some((pair.first()?.as_f64(), pair.get(1)?.as_u64()?))
                })
                .collect()
        });
    Ok(Health {
        monitors: u("/monitors"),
        mode: s("/mode"),
        store_state: s("/store/state"),
        records_written: u("/store/records_written"),
        transitions_written: u("/store/transitions_written"),
        dropped: u("/store/dropped"),
        db_bytes: u("/store/db_bytes"),
        in_flight: u("/scheduler/in_flight"),
        lag_checks: u("/scheduler/start_lag/checks"),
        lag_p50_ms: f("/scheduler/start_lag/p50_ms"),
        lag_p99_ms: f("/scheduler/start_lag/p99_ms"),
        lag_max_ms: f("/scheduler/start_lag/max_ms"),
        lag_buckets,
    })
}

/// A minimal HTTP/1.1 GET (`Connection: close`), bounded by `timeout` per step and 4 MiB.
pub(crate) fn http_get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.take(4 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP header end in {} bytes", raw.len()))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Reads everything once: `/healthz`, the daemon's CPU and memory, the box.
struct Sampler<'a> {
    api: SocketAddr,
    daemon_pid: &'a str,
    fleet_pid: String,
    softirqd: Vec<String>,
    up: Instant,
}

impl Sampler<'_> {
    fn health(&self) -> anyhow::Result<(Health, f64)> {
        let started = Instant::now();
        let (status, body) = http_get(self.api, "/healthz", Duration::from_secs(10))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        anyhow::ensure!(status == 200, "/healthz answered {status}: {body}");
        Ok((parse_health(&body)?, ms))
    }

    fn sample(&self) -> anyhow::Result<Sample> {
        let (h, healthz_ms) = self.health()?;
        let cpu = sys::cpu_times(self.daemon_pid)?;
        Ok(Sample {
            t_s: self.up.elapsed().as_secs_f64(),
            unix_ms: unix_ms(),
            healthz_ms,
            records_written: h.records_written,
            transitions_written: h.transitions_written,
            dropped: h.dropped,
            db_bytes: h.db_bytes,
            in_flight: h.in_flight,
            lag_checks: h.lag_checks,
            lag_p50_ms: h.lag_p50_ms,
            lag_p99_ms: h.lag_p99_ms,
            lag_max_ms: h.lag_max_ms,
            lag_buckets: h.lag_buckets,
            cpu_user_s: cpu.user.as_secs_f64(),
            cpu_sys_s: cpu.system.as_secs_f64(),
            rss_kib: sys::status_kib_of(self.daemon_pid, "VmRSS")?,
            hwm_kib: sys::status_kib_of(self.daemon_pid, "VmHWM")?,
            box_busy_s: sys::box_busy_time()?.as_secs_f64(),
            fleet_cpu_s: sys::cpu_times(&self.fleet_pid)
                .map(|c| c.total().as_secs_f64())
                .unwrap_or(0.0),
            softirq_cpu_s: sys::cpu_time_of(&self.softirqd).as_secs_f64(),
            self_cpu_s: sys::cpu_times("self")
                .map(|c| c.total().as_secs_f64())
                .unwrap_or(0.0),
        })
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sizes of the store's files and tables, read after the daemon stopped.
#[derive(Debug, Clone, Default, Serialize)]
struct StoreFiles {
    db_bytes: u64,
    wal_bytes: u64,
    results_rows: u64,
    /// Results written by the measured daemon (not prefilled, not from the seed run).
    results_new: u64,
    transitions_rows: u64,
    monitors_rows: u64,
    rollup_5m_rows: u64,
    /// Bytes per table and index (SQLite's `dbstat`), largest first.
    tables: Vec<(String, u64)>,
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

/// Sizes and row counts; `results_new` counts the results at or after `since_unix_ms`.
fn read_store(db: &Path, since_unix_ms: u64) -> anyhow::Result<StoreFiles> {
    let mut files = StoreFiles {
        db_bytes: file_len(db),
        wal_bytes: file_len(&wal_path(db)),
        ..StoreFiles::default()
    };
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", db.display()))?;
    let count = |table: &str| -> anyhow::Result<u64> {
        let n: i64 = conn
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .with_context(|| format!("counting {table}"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    files.results_rows = count("results")?;
    let new: i64 = conn
        .query_row(
            "SELECT count(*) FROM results WHERE at_ms >= ?1",
            [i64::try_from(since_unix_ms).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )
        .context("counting new results")?;
    files.results_new = u64::try_from(new).unwrap_or(0);
    files.transitions_rows = count("transitions")?;
    files.monitors_rows = count("monitors")?;
    files.rollup_5m_rows = count("rollup_5m")?;
    // dbstat is compiled into the bundled SQLite; without it, sizes per table are skipped.
    if let Ok(mut stmt) =
        conn.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY sum(pgsize) DESC")
    {
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, bytes) = row?;
            files.tables.push((name, u64::try_from(bytes).unwrap_or(0)));
        }
    }
    Ok(files)
}

/// Everything measured in one scenario.
#[derive(Debug, Serialize)]
struct ScenarioReport {
    monitors: usize,
    interval_s: f64,
    scheduled_per_s: f64,
    listeners: usize,
    max_in_flight: usize,
    config_bytes: u64,
    startup_s: f64,
    startup_rss_kib: u64,
    startup_hwm_kib: u64,
    warmup_s: f64,
    window_s: f64,
    /// Whether a 5-minute rollup boundary fell inside the window.
    rollup_boundary_in_window: bool,
    stored_per_s: f64,
    started_per_s: f64,
    /// The lowest stored rate over any stretch of 5 s (or the window, if shorter).
    stored_per_s_min_5s: f64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    lag_checks: u64,
    lag_p99_ms_at_window_start: f64,
    lag_max_ms_at_window_start: f64,
    lag_checks_at_window_start: u64,
    /// p99 of the window alone (only when `/healthz` exposes the histogram).
    window_lag_p99_ms: Option<f64>,
    window_lag_p50_ms: Option<f64>,
    window_lag_max_bucket_ms: Option<f64>,
    /// The whole-run p99 holds for at least this share of the window's checks.
    whole_run_p99_covers: f64,
    peak_rss_kib: u64,
    end_rss_kib: u64,
    /// RSS growth over the second half of the window, MiB per minute (the database and
    /// SQLite's page cache grow for minutes: a rising RSS is not yet the plateau).
    rss_trend_mib_per_min: f64,
    cpu_pct: f64,
    cpu_user_pct: f64,
    cpu_sys_pct: f64,
    cpu_per_check_us: f64,
    fleet_cpu_pct: f64,
    softirq_cpu_pct: f64,
    other_cpu_pct: f64,
    max_in_flight_seen: u64,
    /// Checks started minus results written, at the window's end and at most.
    backlog_at_end: u64,
    backlog_max: u64,
    dropped: u64,
    transitions_written: u64,
    healthz_ms_max: f64,
    healthz_ms_median: f64,
    db_bytes_window_end: u64,
    wal_bytes_window_end: u64,
    db_growth_per_result: f64,
    /// Checks the scheduler had started by the last `/healthz` before SIGTERM.
    checks_started_before_stop: u64,
    records_written_before_stop: u64,
    dropped_before_stop: u64,
    /// `store.state` at the last `/healthz` (`ok` unless the database failed).
    store_state: String,
    shutdown_s: f64,
    exit_code: Option<i32>,
    store_after_stop: StoreFiles,
    /// What `--prefill-minutes` put into the store first.
    prefill: Option<Prefill>,
    /// What `--reload` measured.
    reload: Option<Reload>,
    daemon_log_tail: String,
    samples: Vec<Sample>,
}

/// A SIGHUP reload of the unchanged config, measured from outside.
#[derive(Debug, Clone, Serialize)]
struct Reload {
    /// From SIGHUP to the daemon's "config reloaded" line.
    seconds: f64,
    rss_before_kib: u64,
    /// The highest RSS while the reload ran.
    peak_kib: u64,
    rss_after_kib: u64,
    /// The daemon's own summary line.
    line: String,
}

/// SIGHUP with the peak RSS reset just before; waits (at most 10 minutes) for the daemon's
/// "config reloaded" line, then reads the peak.
fn measure_reload(daemon: &Daemon, log_path: &Path) -> anyhow::Result<Reload> {
    let reloaded = |text: &str| text.matches("config reloaded").count();
    let before = reloaded(&fs::read_to_string(log_path).unwrap_or_default());
    let rss_before_kib = sys::status_kib_of(&daemon.pid, "VmRSS")?;
    fs::write(format!("/proc/{}/clear_refs", daemon.pid), "5")
        .context("resetting the daemon's peak RSS (clear_refs)")?;
    let pid = rustix::process::Pid::from_raw(daemon.child.id() as i32).context("daemon pid")?;
    let started = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP)
        .context("sending SIGHUP to the daemon")?;
    loop {
        let text = fs::read_to_string(log_path).unwrap_or_default();
        if reloaded(&text) > before {
            let line = text
                .lines()
                .rev()
                .find(|l| l.contains("config reloaded"))
                .unwrap_or_default()
                .to_string();
            return Ok(Reload {
                seconds: started.elapsed().as_secs_f64(),
                rss_before_kib,
                peak_kib: sys::status_kib_of(&daemon.pid, "VmHWM")?,
                rss_after_kib: sys::status_kib_of(&daemon.pid, "VmRSS")?,
                line,
            });
        }
        if text.contains("new config rejected") && reloaded(&text) == before {
            bail!(
                "the daemon rejected its own config on reload:\n{}",
                tail(log_path, 5)
            );
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("no \"config reloaded\" within 10 minutes of SIGHUP");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_scenario(
    args: &DaemonArgs,
    portwarden: &Path,
    fleet: &MultiFleet,
    monitors: usize,
) -> anyhow::Result<ScenarioReport> {
    let dir = TempDir::new(monitors, args.keep)?;
    let config = dir.path.join("portwarden.toml");
    let state_dir = dir.path.join("state");
    let api = free_port()?;
    write_config(&config, args, api, &state_dir, &fleet.targets, monitors)?;
    let config_bytes = file_len(&config);
    let log_path = dir.path.join("daemon.log");
    let log = File::create(&log_path).context("creating the daemon's log")?;
    eprintln!(
        "{monitors} monitors every {}s over {} listeners: config {:.1} MB, API {api}",
        args.interval,
        fleet.targets.len(),
        config_bytes as f64 / 1e6
    );

    let prefill = if args.prefill_minutes > 0.0 {
        let seed_log = File::create(dir.path.join("daemon-seed.log"))
            .context("creating the seed daemon's log")?;
        Some(prefill_store(
            args, portwarden, &config, &state_dir, api, monitors, seed_log,
        )?)
    } else {
        None
    };
    let spawned_unix_ms = unix_ms();
    let (mut daemon, startup) = start_daemon(
        portwarden,
        &config,
        log,
        &log_path,
        api,
        monitors,
        Duration::from_secs(args.startup_limit),
    )?;
    let up = Instant::now();
    let startup_rss_kib = sys::status_kib_of(&daemon.pid, "VmRSS")?;
    let startup_hwm_kib = sys::status_kib_of(&daemon.pid, "VmHWM")?;
    eprintln!(
        "  up after {:.2} s (spawn to /healthz), RSS {:.0} MiB, peak so far {:.0} MiB",
        startup.as_secs_f64(),
        startup_rss_kib as f64 / 1024.0,
        startup_hwm_kib as f64 / 1024.0
    );

    let sampler = Sampler {
        api,
        daemon_pid: &daemon.pid,
        fleet_pid: fleet.pid.to_string(),
        softirqd: sys::softirq_threads(),
        up,
    };
    let warmup = Duration::from_secs_f64(args.warmup.unwrap_or(args.interval).max(0.0));
    let window = Duration::from_secs_f64(args.seconds);
    let period = Duration::from_millis(args.sample_ms);
    let mut samples: Vec<Sample> = Vec::new();
    let mut first = None;
    let mut last_print = Instant::now();
    let scheduled = monitors as f64 / args.interval;
    // Samples every period through warm-up and window; the window starts at the first
    // sample at or after the warm-up and ends at the first at or after its length.
    let mut next = up;
    loop {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += period;
        if let Some(status) = daemon.child.try_wait()? {
            bail!(
                "portwarden exited during the run ({status}):\n{}",
                tail(&log_path, 20)
            );
        }
        let s = sampler.sample()?;
        let in_window = up.elapsed() >= warmup;
        if in_window && first.is_none() {
            first = Some(samples.len());
        }
        if let Some(prev) = samples.last() {
            if last_print.elapsed() >= Duration::from_secs(5) || first == Some(samples.len()) {
                last_print = Instant::now();
                let dt = (s.t_s - prev.t_s).max(1e-3);
                eprintln!(
                    "  {:>5.0} s {}  {:>7.0} stored/s  lag p99 {:>6.1} ms (max {:>6.1})  in flight {:>4}  CPU {:>4.0}%  RSS {:>4.0} MiB  /healthz {:>5.1} ms",
                    s.t_s,
                    if in_window { "window " } else { "warm-up" },
                    (s.records_written.saturating_sub(prev.records_written)) as f64 / dt,
                    s.lag_p99_ms,
                    s.lag_max_ms,
                    s.in_flight,
                    100.0 * (s.cpu_s() - prev.cpu_s()) / dt,
                    s.rss_kib as f64 / 1024.0,
                    s.healthz_ms,
                );
            }
        }
        samples.push(s);
        if let Some(f) = first {
            if up.elapsed() >= warmup + window && samples.len() > f + 1 {
                break;
            }
        }
        // Backstop: never sample past twice the planned time plus a minute.
        if up.elapsed() > 2 * (warmup + window) + Duration::from_secs(60) {
            bail!("the sampling loop overran its time");
        }
    }
    let first = first.context("no sample in the window")?;
    let db_path = state_dir.join("portwarden.db");
    let wal_bytes_window_end = file_len(&wal_path(&db_path));
    let db_bytes_window_end = file_len(&db_path);

    let reload = if args.reload {
        let r = measure_reload(&daemon, &log_path)?;
        eprintln!(
            "  reload: {:.2} s, RSS {} before, peak {} during, {} after",
            r.seconds,
            mib(r.rss_before_kib),
            mib(r.peak_kib),
            mib(r.rss_after_kib)
        );
        Some(r)
    } else {
        None
    };

    // Stop: the last word from the daemon first, then SIGTERM.
    let (before_stop, _) = sampler.health()?;
    let (shutdown, exit_code) = stop_daemon(&mut daemon)?;
    let store_after_stop = read_store(&db_path, spawned_unix_ms).unwrap_or_else(|e| {
        eprintln!("  cannot read the store after the stop: {e:#}");
        StoreFiles::default()
    });
    let report = summarize(SummaryInput {
        args,
        monitors,
        scheduled,
        listeners: fleet.targets.len(),
        config_bytes,
        startup,
        startup_rss_kib,
        startup_hwm_kib,
        warmup,
        samples,
        first,
        db_bytes_window_end,
        wal_bytes_window_end,
        before_stop,
        shutdown,
        exit_code,
        store_after_stop,
        prefill,
        reload,
        daemon_log_tail: tail(&log_path, 5),
    });
    if !args.json {
        eprintln!(
            "  stopped in {:.2} s (exit {}); {} results stored, {} checks started before SIGTERM",
            report.shutdown_s,
            report
                .exit_code
                .map_or_else(|| "none".to_string(), |c| c.to_string()),
            report.store_after_stop.results_new,
            report.checks_started_before_stop
        );
    }
    Ok(report)
}

/// Spawns `portwarden run -c config` and waits (at most `limit`) until its `/healthz` on
/// `api` answers with all `monitors` scheduled. Returns the daemon and the time it took.
pub(crate) fn start_daemon(
    portwarden: &Path,
    config: &Path,
    log: File,
    log_path: &Path,
    api: SocketAddr,
    monitors: usize,
    limit: Duration,
) -> anyhow::Result<(Daemon, Duration)> {
    let spawned = Instant::now();
    let child = spawn_daemon(portwarden, config, log)?;
    let mut daemon = Daemon {
        pid: child.id().to_string(),
        child,
    };
    let expected_mode = format!("config {}", config.display());
    // Up: our own daemon (its mode names our config) answers with every monitor scheduled.
    loop {
        if let Some(status) = daemon.child.try_wait()? {
            bail!(
                "portwarden exited during start-up ({status}):\n{}",
                tail(log_path, 20)
            );
        }
        if let Ok((200, body)) = http_get(api, "/healthz", Duration::from_secs(2)) {
            if let Ok(h) = parse_health(&body) {
                if h.mode != expected_mode {
                    bail!("another daemon answers on {api} ({:?})", h.mode);
                }
                if h.monitors == monitors as u64 {
                    break;
                }
            }
        }
        if spawned.elapsed() > limit {
            bail!("/healthz did not answer within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((daemon, spawned.elapsed()))
}

/// SIGTERM, then waits (at most 60 s, then SIGKILL). Returns the time to exit and the code.
pub(crate) fn stop_daemon(daemon: &mut Daemon) -> anyhow::Result<(Duration, Option<i32>)> {
    let stopping = Instant::now();
    let pid = rustix::process::Pid::from_raw(daemon.child.id() as i32).context("daemon pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::TERM)
        .context("sending SIGTERM to the daemon")?;
    let status: Option<ExitStatus> = wait_bounded(&mut daemon.child, Duration::from_secs(60))?;
    let shutdown = stopping.elapsed();
    if status.is_none() {
        eprintln!("  the daemon did not stop within 60 s of SIGTERM and was killed");
    }
    Ok((shutdown, status.and_then(|s| s.code())))
}

/// What `--prefill-minutes` put into the store before the measured run.
#[derive(Debug, Clone, Serialize)]
struct Prefill {
    minutes: f64,
    rows: u64,
    insert_s: f64,
    db_bytes: u64,
}

/// Runs the daemon until every monitor has a row in the store, stops it, then inserts
/// `--prefill-minutes` of past results per monitor (ok, 1 ms, on each monitor's grid) in
/// one transaction, ordered by key, and checkpoints the WAL.
fn prefill_store(
    args: &DaemonArgs,
    portwarden: &Path,
    config: &Path,
    state_dir: &Path,
    api: SocketAddr,
    monitors: usize,
    log: File,
) -> anyhow::Result<Prefill> {
    let log_path = state_dir.with_file_name("daemon-seed.log");
    eprintln!("  prefill: a first daemon run creates the store and its monitors");
    let (mut daemon, _) = start_daemon(
        portwarden,
        config,
        log,
        &log_path,
        api,
        monitors,
        Duration::from_secs(args.startup_limit),
    )?;
    let limit = Duration::from_secs_f64(2.0 * args.interval + 60.0);
    let waited = Instant::now();
    loop {
        if let Ok((200, body)) = http_get(api, "/healthz", Duration::from_secs(5)) {
            // Each monitor's first result also stores its first state change (unknown to
            // ok), and with it the monitor's row; results alone count early monitors twice.
            if parse_health(&body)?.transitions_written >= monitors as u64 {
                break;
            }
        }
        if waited.elapsed() > limit {
            bail!("the seed run did not store a result of every monitor within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, code) = stop_daemon(&mut daemon)?;
    anyhow::ensure!(code == Some(0), "the seed daemon exited with {code:?}");
    drop(daemon);

    let started = Instant::now();
    let db = state_dir.join("portwarden.db");
    let mut conn = rusqlite::Connection::open(&db)
        .with_context(|| format!("opening {} to prefill it", db.display()))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    let ids: Vec<i64> = conn
        .prepare("SELECT id FROM monitors ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let interval_ms = (args.interval * 1000.0).round() as i64;
    let per_monitor = (args.prefill_minutes * 60_000.0 / interval_ms as f64).floor() as i64;
    // Older than anything the seed run wrote, newest last: keys ascend within a monitor.
    let newest = unix_ms() as i64 - 2 * interval_ms;
    let mut rows = 0u64;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT OR IGNORE INTO results (monitor_id, at_ms, status, reason_id, duration_us)
             VALUES (?1, ?2, 1, NULL, 1000)",
        )?;
        for id in &ids {
            let offset = id.wrapping_mul(7919).rem_euclid(interval_ms);
            for k in (1..=per_monitor).rev() {
                rows += insert.execute(rusqlite::params![id, newest - k * interval_ms + offset])?
                    as u64;
            }
        }
    }
    tx.commit()?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    let prefill = Prefill {
        minutes: args.prefill_minutes,
        rows,
        insert_s: started.elapsed().as_secs_f64(),
        db_bytes: file_len(&db),
    };
    eprintln!(
        "  prefill: {} results ({:.0} min per monitor) in {:.0} s; database {:.0} MB",
        thousands(rows as f64),
        args.prefill_minutes,
        prefill.insert_s,
        prefill.db_bytes as f64 / 1e6
    );
    Ok(prefill)
}

#[expect(
    unsafe_code,
    reason = "pre_exec: the daemon gets SIGTERM when the harness dies"
)]
pub(crate) fn spawn_daemon(portwarden: &Path, config: &Path, log: File) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(portwarden);
    cmd.arg("run")
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: the closure runs in the child between fork and exec and only makes one
    // async-signal-safe system call (prctl), so that the daemon never outlives the harness.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
    cmd.spawn()
        .with_context(|| format!("starting {}", portwarden.display()))
}

/// The last `lines` lines of a file.
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct SummaryInput<'a> {
    args: &'a DaemonArgs,
    monitors: usize,
    scheduled: f64,
    listeners: usize,
    config_bytes: u64,
    startup: Duration,
    startup_rss_kib: u64,
    startup_hwm_kib: u64,
    warmup: Duration,
    samples: Vec<Sample>,
    first: usize,
    db_bytes_window_end: u64,
    wal_bytes_window_end: u64,
    before_stop: Health,
    shutdown: Duration,
    exit_code: Option<i32>,
    store_after_stop: StoreFiles,
    prefill: Option<Prefill>,
    reload: Option<Reload>,
    daemon_log_tail: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The quantile `q` of the checks counted between two cumulative histograms.
fn window_quantile(
    before: &[(Option<f64>, u64)],
    after: &[(Option<f64>, u64)],
    q: f64,
) -> Option<f64> {
    let earlier = |bound: Option<f64>| {
        before
            .iter()
            .find(|(b, _)| *b == bound)
            .map_or(0, |(_, c)| *c)
    };
    let mut diff: Vec<(Option<f64>, u64)> = after
        .iter()
        .map(|&(b, c)| (b, c.saturating_sub(earlier(b))))
        .filter(|&(_, c)| c > 0)
        .collect();
    // Finite bounds ascending, the overflow bucket last.
    diff.sort_by(|a, b| match (a.0, b.0) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let total: u64 = diff.iter().map(|(_, c)| c).sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bound, c) in diff {
        seen += c;
        if seen >= rank {
            return Some(bound.unwrap_or(f64::INFINITY));
        }
    }
    None
}

fn summarize(inp: SummaryInput<'_>) -> ScenarioReport {
    let s = &inp.samples;
    let (a, b) = (&s[inp.first], &s[s.len() - 1]);
    let dt = (b.t_s - a.t_s).max(1e-3);
    let rate = |x: u64, y: u64| y.saturating_sub(x) as f64 / dt;
    let window = &s[inp.first..];
    let min_5s = {
        let mut min = f64::INFINITY;
        for (i, x) in window.iter().enumerate() {
            if let Some(y) = window[i..].iter().find(|y| y.t_s - x.t_s >= 5.0) {
                min = min.min(
                    y.records_written.saturating_sub(x.records_written) as f64 / (y.t_s - x.t_s),
                );
            }
        }
        if min.is_finite() {
            min
        } else {
            rate(a.records_written, b.records_written)
        }
    };
    let cpu = b.cpu_s() - a.cpu_s();
    let ours = cpu
        + (b.fleet_cpu_s - a.fleet_cpu_s)
        + (b.softirq_cpu_s - a.softirq_cpu_s)
        + (b.self_cpu_s - a.self_cpu_s);
    let other = ((b.box_busy_s - a.box_busy_s) - ours).max(0.0);
    let stored = b.records_written.saturating_sub(a.records_written);
    let (window_p50, window_p99, window_top) = match (&a.lag_buckets, &b.lag_buckets) {
        (Some(x), Some(y)) => (
            window_quantile(x, y, 0.50),
            window_quantile(x, y, 0.99),
            window_quantile(x, y, 1.0),
        ),
        _ => (None, None, None),
    };
    let in_window = b.lag_checks.saturating_sub(a.lag_checks).max(1) as f64;
    let covers = (1.0 - 0.01 * b.lag_checks as f64 / in_window).max(0.0);
    let boundary = a.unix_ms / 1000 / ROLLUP_BUCKET_S != b.unix_ms / 1000 / ROLLUP_BUCKET_S;
    ScenarioReport {
        monitors: inp.monitors,
        interval_s: inp.args.interval,
        scheduled_per_s: inp.scheduled,
        listeners: inp.listeners,
        max_in_flight: inp.args.max_in_flight,
        config_bytes: inp.config_bytes,
        startup_s: inp.startup.as_secs_f64(),
        startup_rss_kib: inp.startup_rss_kib,
        startup_hwm_kib: inp.startup_hwm_kib,
        warmup_s: inp.warmup.as_secs_f64(),
        window_s: dt,
        rollup_boundary_in_window: boundary,
        stored_per_s: rate(a.records_written, b.records_written),
        started_per_s: rate(a.lag_checks, b.lag_checks),
        stored_per_s_min_5s: min_5s,
        lag_p50_ms: b.lag_p50_ms,
        lag_p99_ms: b.lag_p99_ms,
        lag_max_ms: b.lag_max_ms,
        lag_checks: b.lag_checks,
        lag_p99_ms_at_window_start: a.lag_p99_ms,
        lag_max_ms_at_window_start: a.lag_max_ms,
        lag_checks_at_window_start: a.lag_checks,
        window_lag_p99_ms: window_p99,
        window_lag_p50_ms: window_p50,
        window_lag_max_bucket_ms: window_top,
        whole_run_p99_covers: covers,
        peak_rss_kib: s.iter().map(|x| x.hwm_kib).max().unwrap_or(0),
        end_rss_kib: b.rss_kib,
        rss_trend_mib_per_min: {
            let mid = &window[window.len() / 2];
            let minutes = (b.t_s - mid.t_s) / 60.0;
            if minutes > 0.0 {
                (b.rss_kib as f64 - mid.rss_kib as f64) / 1024.0 / minutes
            } else {
                0.0
            }
        },
        cpu_pct: 100.0 * cpu / dt,
        cpu_user_pct: 100.0 * (b.cpu_user_s - a.cpu_user_s) / dt,
        cpu_sys_pct: 100.0 * (b.cpu_sys_s - a.cpu_sys_s) / dt,
        cpu_per_check_us: if stored > 0 {
            cpu * 1e6 / stored as f64
        } else {
            0.0
        },
        fleet_cpu_pct: 100.0 * (b.fleet_cpu_s - a.fleet_cpu_s) / dt,
        softirq_cpu_pct: 100.0 * (b.softirq_cpu_s - a.softirq_cpu_s) / dt,
        other_cpu_pct: 100.0 * other / dt,
        max_in_flight_seen: window.iter().map(|x| x.in_flight).max().unwrap_or(0),
        backlog_at_end: b.lag_checks.saturating_sub(b.records_written),
        backlog_max: window
            .iter()
            .map(|x| x.lag_checks.saturating_sub(x.records_written))
            .max()
            .unwrap_or(0),
        dropped: b.dropped,
        transitions_written: b.transitions_written,
        healthz_ms_max: window.iter().map(|x| x.healthz_ms).fold(0.0, f64::max),
        healthz_ms_median: median(window.iter().map(|x| x.healthz_ms).collect()),
        db_bytes_window_end: inp.db_bytes_window_end,
        wal_bytes_window_end: inp.wal_bytes_window_end,
        db_growth_per_result: if stored > 0 {
            b.db_bytes.saturating_sub(a.db_bytes) as f64 / stored as f64
        } else {
            0.0
        },
        checks_started_before_stop: inp.before_stop.lag_checks,
        records_written_before_stop: inp.before_stop.records_written,
        dropped_before_stop: inp.before_stop.dropped,
        store_state: inp.before_stop.store_state.clone(),
        shutdown_s: inp.shutdown.as_secs_f64(),
        exit_code: inp.exit_code,
        store_after_stop: inp.store_after_stop,
        prefill: inp.prefill,
        reload: inp.reload,
        daemon_log_tail: inp.daemon_log_tail,
        samples: inp.samples,
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn markdown(r: &ScenarioReport) -> String {
    let mut o = String::new();
    let store = &r.store_after_stop;
    let _ = writeln!(
        o,
        "### {} monitors every {} s: {:.0} s measured after {:.0} s of warm-up\n",
        thousands(r.monitors as f64),
        r.interval_s,
        r.window_s,
        r.warmup_s
    );
    let _ = writeln!(
        o,
        "{} banner listeners on 127.0.0.1-.{}, full check (connect, read `220`, match, close); max_in_flight {}; rollup boundary in the window: {}\n",
        thousands(r.listeners as f64),
        r.listeners.div_ceil(1000).max(1),
        r.max_in_flight,
        if r.rollup_boundary_in_window { "yes" } else { "no" },
    );
    if let Some(p) = &r.prefill {
        let _ = writeln!(
            o,
            "Store prefilled with {:.0} min of results per monitor ({} rows, {:.0} MB) before the daemon started.\n",
            p.minutes,
            thousands(p.rows as f64),
            p.db_bytes as f64 / 1e6
        );
    }
    o.push_str("| figure | target | measured | |\n|---|---|---|---|\n");
    let rate_ok = r.stored_per_s >= RATE_SHARE * r.scheduled_per_s;
    let _ = writeln!(
        o,
        "| checks/s stored (store `records_written`) | {} | {} (lowest 5 s: {}; started: {}) | {} |",
        thousands(r.scheduled_per_s),
        thousands(r.stored_per_s),
        thousands(r.stored_per_s_min_5s),
        thousands(r.started_per_s),
        verdict(rate_ok)
    );
    let lag_ok = r.lag_p99_ms < TARGET_LAG_P99_MS;
    let _ = writeln!(
        o,
        "| p99 start lag, whole run (cumulative since start) | < {TARGET_LAG_P99_MS:.0} ms | {:.1} ms (p50 {:.1}, max {:.1}; {} checks) | {} |",
        r.lag_p99_ms,
        r.lag_p50_ms,
        r.lag_max_ms,
        thousands(r.lag_checks as f64),
        verdict(lag_ok)
    );
    match r.window_lag_p99_ms {
        Some(p99) => {
            let _ = writeln!(
                o,
                "| p99 start lag, window only | < {TARGET_LAG_P99_MS:.0} ms | {p99:.1} ms (p50 {:.1}, top bucket {:.1}) | {} |",
                r.window_lag_p50_ms.unwrap_or(0.0),
                r.window_lag_max_bucket_ms.unwrap_or(0.0),
                verdict(p99 < TARGET_LAG_P99_MS)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "| p99 start lag, window only | < {TARGET_LAG_P99_MS:.0} ms | not exposed (cumulative only); the whole-run p99 bounds {:.1}% of the window's checks; at the window start it was {:.1} ms (max {:.1}) | |",
                100.0 * r.whole_run_p99_covers,
                r.lag_p99_ms_at_window_start,
                r.lag_max_ms_at_window_start
            );
        }
    }
    let rss_ok = (r.peak_rss_kib as f64 / 1024.0) < TARGET_PEAK_RSS_MIB;
    let _ = writeln!(
        o,
        "| peak RSS (`VmHWM`) | < {TARGET_PEAK_RSS_MIB:.0} MiB | {} (at /healthz up: {}, peak by then {}; at the end: {}, {:+.0} MiB/min over the window's second half) | {} |",
        mib(r.peak_rss_kib),
        mib(r.startup_rss_kib),
        mib(r.startup_hwm_kib),
        mib(r.end_rss_kib),
        r.rss_trend_mib_per_min,
        verdict(rss_ok)
    );
    if let Some(reload) = &r.reload {
        let _ = writeln!(
            o,
            "| peak RSS during a SIGHUP reload of the same config | < {TARGET_PEAK_RSS_MIB:.0} MiB | {} ({} before, {} after; {:.2} s) | {} |",
            mib(reload.peak_kib),
            mib(reload.rss_before_kib),
            mib(reload.rss_after_kib),
            reload.seconds,
            verdict((reload.peak_kib as f64 / 1024.0) < TARGET_PEAK_RSS_MIB)
        );
    }
    let stored_all = r.dropped_before_stop == 0
        && r.store_state == "ok"
        && store.results_new >= r.checks_started_before_stop
        && r.exit_code == Some(0);
    let _ = writeln!(
        o,
        "| results stored vs checks run | all | {} new rows after the stop, {} checks started before SIGTERM (+{}); dropped {}; store {}; behind at the window end {} (most {}) | {} |",
        thousands(store.results_new as f64),
        thousands(r.checks_started_before_stop as f64),
        store
            .results_new
            .saturating_sub(r.checks_started_before_stop),
        r.dropped_before_stop,
        r.store_state,
        thousands(r.backlog_at_end as f64),
        thousands(r.backlog_max as f64),
        verdict(stored_all)
    );
    let per_monitor = |bytes: u64| bytes as f64 / r.monitors as f64;
    let _ = writeln!(
        o,
        "| store size per monitor | | {:.0} B at the window end (db {:.1} MB + wal {:.1} MB); {:.0} B after the stop ({:.1} results each); {:.0} B of file per result stored in the window | |",
        per_monitor(r.db_bytes_window_end + r.wal_bytes_window_end),
        r.db_bytes_window_end as f64 / 1e6,
        r.wal_bytes_window_end as f64 / 1e6,
        per_monitor(store.db_bytes + store.wal_bytes),
        store.results_rows as f64 / r.monitors as f64,
        r.db_growth_per_result
    );
    let cpu_target = r.monitors <= CPU_TARGET_UP_TO;
    let _ = writeln!(
        o,
        "| CPU, % of one core | {} | {:.1}% (user {:.1} + sys {:.1}); {:.1} µs per check | {} |",
        if cpu_target {
            format!("< {TARGET_CPU_PCT:.0}%")
        } else {
            String::new()
        },
        r.cpu_pct,
        r.cpu_user_pct,
        r.cpu_sys_pct,
        r.cpu_per_check_us,
        if cpu_target {
            verdict(r.cpu_pct < TARGET_CPU_PCT)
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "| start-up: spawn to /healthz | | {:.2} s (config {:.1} MB) | |",
        r.startup_s,
        r.config_bytes as f64 / 1e6
    );
    let _ = writeln!(
        o,
        "| shutdown: SIGTERM to exit | exit 0 | {:.2} s, exit {} | {} |",
        r.shutdown_s,
        r.exit_code
            .map_or_else(|| "none (killed)".to_string(), |c| c.to_string()),
        verdict(r.exit_code == Some(0))
    );
    let _ = writeln!(
        o,
        "| beside it | | fleet {:.0}%, softirq {:.0}%, other processes {:.0}% of a core; in flight at most {}; /healthz median {:.1} ms, max {:.1} ms | |",
        r.fleet_cpu_pct,
        r.softirq_cpu_pct,
        r.other_cpu_pct,
        r.max_in_flight_seen,
        r.healthz_ms_median,
        r.healthz_ms_max
    );
    if !store.tables.is_empty() {
        let parts: Vec<String> = store
            .tables
            .iter()
            .take(6)
            .map(|(name, bytes)| format!("{name} {:.0} B", per_monitor(*bytes)))
            .collect();
        let _ = writeln!(
            o,
            "\nStore after the stop, per monitor: {}.",
            parts.join(", ")
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_parsed_with_and_without_a_histogram() {
        let body = r#"{"status":"ok","mode":"config /x.toml","monitors":3,
            "store":{"state":"ok","records_written":10,"transitions_written":3,"dropped":0,"db_bytes":4096},
            "scheduler":{"in_flight":2,"max_in_flight":1024,
              "start_lag":{"checks":12,"p50_ms":0.2,"p99_ms":1.5,"max_ms":2.25}}}"#;
        let h = parse_health(body).unwrap();
        assert_eq!((h.monitors, h.records_written, h.lag_checks), (3, 10, 12));
        assert_eq!(h.mode, "config /x.toml");
        assert_eq!(h.lag_p99_ms, 1.5);
        assert!(h.lag_buckets.is_none());
        let with = body.replace(
            r#""max_ms":2.25}"#,
            r#""max_ms":2.25,"buckets":[[0.1,5],[0.2,6],[null,1]]}"#,
        );
        let h = parse_health(&with).unwrap();
        assert_eq!(
            h.lag_buckets.unwrap(),
            vec![(Some(0.1), 5), (Some(0.2), 6), (None, 1)]
        );
        assert!(parse_health(r#"{"status":"ok"}"#).is_err());
    }

    #[test]
    fn window_quantiles_come_from_the_difference_of_histograms() {
        let before = vec![(Some(0.1), 90), (Some(500.0), 10)];
        let after = vec![
            (Some(0.1), 189),
            (Some(0.2), 1),
            (Some(500.0), 10),
            (None, 0),
        ];
        // The window holds 99 checks at 0.1 ms and one at 0.2 ms: the 500 ms ones were before.
        assert_eq!(window_quantile(&before, &after, 0.99), Some(0.1));
        assert_eq!(window_quantile(&before, &after, 1.0), Some(0.2));
        assert_eq!(window_quantile(&after, &after, 0.99), None);
        let overflow = vec![(Some(0.1), 189), (None, 10)];
        assert_eq!(window_quantile(&[], &overflow, 0.99), Some(f64::INFINITY));
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"), "abcdefg");
        assert_eq!(dechunk("zz\r\n"), "");
    }

    #[test]
    fn config_spreads_monitors_over_the_fleet() {
        let dir = TempDir::new(7, false).unwrap();
        let path = dir.path.join("c.toml");
        let targets: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.2:4002".parse().unwrap(),
        ];
        let args = DaemonArgs {
            monitors: vec![3],
            seconds: 1.0,
            interval: 10.0,
            warmup: None,
            hosts: 2,
            ports_per_host: 1,
            fleet_workers: 1,
            max_in_flight: 64,
            timeout: 5.0,
            sample_ms: 1000,
            portwarden: None,
            startup_limit: 10,
            quiet_wait: 0,
            max_noise: 15.0,
            prefill_minutes: 0.0,
            reload: false,
            keep: false,
            json: false,
            json_out: None,
        };
        let listen: SocketAddr = "127.0.0.1:9".parse().unwrap();
        write_config(&path, &args, listen, &dir.path.join("state"), &targets, 3).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("listen = \"127.0.0.1:9\""));
        assert!(text.contains("interval = \"10000ms\""));
        assert!(text.contains("max_in_flight = 64"));
        assert_eq!(text.matches("[[monitor]]").count(), 3);
        assert!(text.contains("name = \"m000002\"\ntarget = \"127.0.0.1:4001\""));
        assert!(text.contains("expect = { prefix = \"220\" }"));
    }
}
