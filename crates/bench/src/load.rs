//! One load run: `concurrency` tasks checking the fleet's ports round-robin for a fixed
//! time, with either the probe engine or a minimal raw tokio loop, then one JSON line.
//!
//! Both modes share everything but the check itself: the same runtime (multi-thread, the same
//! worker count), the same task loop, the same latency histogram. A warm-up (not counted)
//! precedes the measured window. The run is bounded in time (`--seconds`, plus a watchdog)
//! and in count (`--max-checks`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::histogram::Histogram;
use crate::{ports, sys};

/// How each check is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Minimal loop: connect, read until `220` (or EOF), check, SO_LINGER 0, drop.
    Raw,
    /// `portwarden_probe::Probe::run` with a prepared probe per port: expect prefix `220`.
    Probe,
}

impl Mode {
    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Raw => "raw",
            Mode::Probe => "probe",
        }
    }
}

/// Options of `bench load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// Checks in flight at any time.
    #[arg(long)]
    pub concurrency: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Target ports: `a-b` ranges and single ports, comma-separated.
    #[arg(long)]
    pub ports: String,
    /// Target address (loopback only).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// Runtime worker threads; 0: one per CPU.
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Unmeasured warm-up before the window, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub warmup_ms: u64,
    /// Upper bound on the checks started in the measured window.
    #[arg(long, default_value_t = 5_000_000)]
    pub max_checks: u64,
    /// The fleet's process id, to tell its CPU apart from other tenants' (0: unknown).
    #[arg(long, default_value_t = 0)]
    pub fleet_pid: u32,
}

/// What one load run measured; printed as one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    pub mode: Mode,
    pub concurrency: usize,
    pub workers: usize,
    /// Successful checks in the measured window.
    pub checks: u64,
    /// Failed checks (wrong banner, refused, reset, timeout…).
    pub errors: u64,
    /// The first failure, as the check described it.
    pub first_error: Option<String>,
    /// From the first check started to the last one finished, in seconds.
    pub elapsed_s: f64,
    pub checks_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// VmHWM at the end of the run, in KiB.
    pub peak_rss_kib: u64,
    /// VmRSS once the probes were prepared, before any load, in KiB.
    pub setup_rss_kib: u64,
    /// User + system CPU of this process during the window, in seconds.
    pub cpu_s: f64,
    /// This process's CPU during the window, in % of one core.
    pub cpu_pct: f64,
    /// CPU per successful check, in microseconds.
    pub cpu_per_check_us: f64,
    /// The user-space part of `cpu_per_check_us`.
    pub user_per_check_us: f64,
    /// The kernel part of `cpu_per_check_us`.
    pub sys_per_check_us: f64,
    /// The fleet's CPU during the window, in % of one core (0 when its pid is unknown).
    pub fleet_cpu_pct: f64,
    /// The kernel's softirq threads' CPU during the window, in % of one core.
    pub softirqd_cpu_pct: f64,
    /// Busy CPU of the whole box not spent by this process, the fleet or the softirq
    /// threads (other tenants: the noise), in % of one core.
    pub foreign_cpu_pct: f64,
}

/// Runs the load and prints its report.
pub fn run(args: &LoadArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.host.is_loopback(),
        "load goes to loopback only, not {}",
        args.host
    );
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    let ports = ports::parse(&args.ports)?;
    let targets: Vec<SocketAddr> = ports
        .iter()
        .map(|&p| SocketAddr::new(args.host, p))
        .collect();
    let workers = if args.workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        args.workers
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("starting the load runtime")?;
    let checker = Checker::new(args.mode, &targets)?;
    let setup_rss_kib = sys::status_kib("VmRSS")?;
    let window = Duration::from_secs_f64(args.seconds);
    let warmup = Duration::from_millis(args.warmup_ms);
    // Every check is bounded by the probe deadline (10 s); the raw loop has none, so the
    // watchdog bounds the run as a whole.
    let watchdog = warmup + window + Duration::from_secs(30);
    let report = runtime.block_on(async {
        tokio::time::timeout(watchdog, measure(&checker, args, window, warmup)).await
    });
    let mut report = report
        .map_err(|_| anyhow::anyhow!("checks still running {watchdog:?} after the start"))??;
    report.workers = workers;
    report.setup_rss_kib = setup_rss_kib;
    report.peak_rss_kib = sys::status_kib("VmHWM")?;
    println!("{}", serde_json::to_string(&report)?);
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

/// What each check runs, prepared before the clock starts.
#[derive(Debug, Clone)]
enum Checker {
    Raw(Arc<[SocketAddr]>),
    Probe(Arc<[portwarden_probe::Probe]>),
}

impl Checker {
    fn new(mode: Mode, targets: &[SocketAddr]) -> anyhow::Result<Self> {
        Ok(match mode {
            Mode::Raw => Checker::Raw(targets.into()),
            Mode::Probe => {
                let probes = targets
                    .iter()
                    .map(|addr| {
                        let target =
                            portwarden_probe::Target::parse_with_default(&addr.to_string(), None)
                                .with_context(|| format!("target {addr}"))?;
                        let mut spec = portwarden_probe::ProbeSpec::connect(target);
                        spec.steps = vec![portwarden_probe::Step::Expect(
                            portwarden_probe::Expectation::one(portwarden_probe::Matcher::Prefix(
                                b"220".to_vec(),
                            )),
                        )];
                        portwarden_probe::Probe::new(spec)
                            .with_context(|| format!("probe of {addr}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                Checker::Probe(probes.into())
            }
        })
    }

    fn len(&self) -> usize {
        match self {
            Checker::Raw(t) => t.len(),
            Checker::Probe(p) => p.len(),
        }
    }

    /// One full check of target `i`: `Err` says why it failed.
    async fn check(&self, i: usize) -> Result<(), String> {
        match self {
            Checker::Raw(targets) => raw_check(targets[i]).await,
            Checker::Probe(probes) => {
                let r = probes[i].run().await;
                if r.state == portwarden_probe::State::Ok {
                    Ok(())
                } else {
                    Err(format!("{}: {}", r.state, r.message))
                }
            }
        }
    }
}

/// The minimal connect-read-close a hand-written checker would do.
async fn raw_check(addr: SocketAddr) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 3 {
        match stream.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("read {addr}: {e}")),
        }
    }
    // Reset instead of FIN: no TIME_WAIT on the checker's side, like the engine.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
    if buf[..got].starts_with(b"220") {
        Ok(())
    } else {
        Err(format!(
            "{addr} sent {:?}",
            String::from_utf8_lossy(&buf[..got])
        ))
    }
}

/// State shared by the tasks of one phase (warm-up or measured window).
#[derive(Debug, Default)]
struct Phase {
    /// Index of the next check; also the count of checks started.
    next: AtomicU64,
    stop: AtomicBool,
    ok: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    latency: Histogram,
}

/// Runs `concurrency` tasks until `length` has passed or `max_checks` were started; returns
/// the wall time from start to the last check's end.
async fn phase(
    checker: &Checker,
    concurrency: usize,
    length: Duration,
    max_checks: u64,
    state: &Arc<Phase>,
) -> Duration {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let checker = checker.clone();
        let state = Arc::clone(state);
        tasks.spawn(async move {
            let n = checker.len() as u64;
            let (mut ok, mut errors) = (0u64, 0u64);
            while !state.stop.load(Ordering::Relaxed) {
                let k = state.next.fetch_add(1, Ordering::Relaxed);
                if k >= max_checks {
                    break;
                }
                let began = Instant::now();
                let outcome = checker.check((k % n) as usize).await;
                state.latency.record(began.elapsed());
                match outcome {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        errors += 1;
                        if let Ok(mut first) = state.first_error.lock() {
                            first.get_or_insert(e);
                        }
                    }
                }
            }
            state.ok.fetch_add(ok, Ordering::Relaxed);
            state.errors.fetch_add(errors, Ordering::Relaxed);
        });
    }
    let stopper = {
        let state = Arc::clone(state);
        tokio::spawn(async move {
            tokio::time::sleep(length).await;
            state.stop.store(true, Ordering::Relaxed);
        })
    };
    while tasks.join_next().await.is_some() {}
    stopper.abort();
    started.elapsed()
}

async fn measure(
    checker: &Checker,
    args: &LoadArgs,
    window: Duration,
    warmup: Duration,
) -> anyhow::Result<LoadReport> {
    if !warmup.is_zero() {
        let state = Arc::new(Phase::default());
        phase(checker, args.concurrency, warmup, args.max_checks, &state).await;
    }
    let fleet_pid = (args.fleet_pid != 0).then(|| args.fleet_pid.to_string());
    let fleet_cpu = || {
        fleet_pid.as_deref().map_or(Ok(Duration::ZERO), |p| {
            sys::cpu_times(p).map(sys::CpuTimes::total)
        })
    };
    let softirqd = sys::softirq_threads();
    let (cpu0, box0, fleet0, soft0) = (
        sys::cpu_times("self")?,
        sys::box_busy_time()?,
        fleet_cpu()?,
        sys::cpu_time_of(&softirqd),
    );
    let state = Arc::new(Phase::default());
    let elapsed = phase(checker, args.concurrency, window, args.max_checks, &state).await;
    let (cpu1, box1, fleet1, soft1) = (
        sys::cpu_times("self")?,
        sys::box_busy_time()?,
        fleet_cpu()?,
        sys::cpu_time_of(&softirqd),
    );

    let secs = elapsed.as_secs_f64();
    let checks = state.ok.load(Ordering::Relaxed);
    let own = cpu1.since(cpu0);
    let cpu = own.total().as_secs_f64();
    let fleet = fleet1.saturating_sub(fleet0).as_secs_f64();
    let soft = soft1.saturating_sub(soft0).as_secs_f64();
    let boxed = box1.saturating_sub(box0).as_secs_f64();
    let pct = |s: f64| 100.0 * s / secs;
    let per_check = |d: Duration| {
        if checks == 0 {
            0.0
        } else {
            d.as_secs_f64() * 1e6 / checks as f64
        }
    };
    let first_error = state.first_error.lock().ok().and_then(|mut f| f.take());
    Ok(LoadReport {
        mode: args.mode,
        concurrency: args.concurrency,
        workers: 0,
        checks,
        errors: state.errors.load(Ordering::Relaxed),
        first_error,
        elapsed_s: secs,
        checks_per_s: checks as f64 / secs,
        p50_us: state.latency.quantile(0.50).as_secs_f64() * 1e6,
        p99_us: state.latency.quantile(0.99).as_secs_f64() * 1e6,
        peak_rss_kib: 0,
        setup_rss_kib: 0,
        cpu_s: cpu,
        cpu_pct: pct(cpu),
        cpu_per_check_us: per_check(own.total()),
        user_per_check_us: per_check(own.user),
        sys_per_check_us: per_check(own.system),
        fleet_cpu_pct: pct(fleet),
        softirqd_cpu_pct: pct(soft),
        foreign_cpu_pct: pct((boxed - cpu - fleet - soft).max(0.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::BANNER;
    use tokio::io::AsyncWriteExt;

    async fn banner_server() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = s.write_all(BANNER).await;
                    let _ = s.read(&mut [0u8; 16]).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn both_modes_pass_against_a_banner_server_and_stop_at_the_count() {
        let addr = banner_server().await;
        for mode in [Mode::Raw, Mode::Probe] {
            let checker = Checker::new(mode, &[addr]).unwrap();
            let state = Arc::new(Phase::default());
            phase(&checker, 4, Duration::from_secs(5), 40, &state).await;
            assert_eq!(state.ok.load(Ordering::Relaxed), 40, "{mode:?}");
            assert_eq!(state.errors.load(Ordering::Relaxed), 0, "{mode:?}");
            assert!(state.latency.quantile(0.5) > Duration::ZERO);
        }
    }

    #[tokio::test]
    async fn both_modes_count_a_wrong_banner_as_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"554 go away\r\n").await;
            }
        });
        for mode in [Mode::Raw, Mode::Probe] {
            let checker = Checker::new(mode, &[addr]).unwrap();
            let state = Arc::new(Phase::default());
            phase(&checker, 1, Duration::from_secs(5), 3, &state).await;
            assert_eq!(state.ok.load(Ordering::Relaxed), 0, "{mode:?}");
            assert_eq!(state.errors.load(Ordering::Relaxed), 3, "{mode:?}");
            assert!(state.first_error.lock().unwrap().is_some());
        }
    }
}
