//! `bench check-start`: one-shot checks as Nagios runs them, a process per check.
//! `portwarden check tcp -H 127.0.0.1 -p PORT` and the real `check_tcp` with the same
//! arguments run alternately (the order flips every round, so drift hits both alike)
//! against one local listener; the rates of both and their ratio come from the same run.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use crate::children::portwarden_binary;

/// Options of `bench check-start`.
#[derive(Debug, Args)]
pub struct CheckStartArgs {
    /// Sequential runs of each checker.
    #[arg(long, default_value_t = 300)]
    runs: u32,
    /// Unmeasured runs of each before the clock starts.
    #[arg(long, default_value_t = 10)]
    warmup: u32,
    /// The portwarden binary (default: next to this one).
    #[arg(long)]
    portwarden: Option<PathBuf>,
    /// The plugin to compare with.
    #[arg(long, default_value = "/usr/lib/nagios/plugins/check_tcp")]
    check_tcp: PathBuf,
}

/// Wall time of every run of one checker.
#[derive(Debug, Default)]
struct Times(Vec<Duration>);

impl Times {
    fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    fn rate(&self) -> f64 {
        self.0.len() as f64 / self.total().as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(i).copied().unwrap_or_default()
    }
}

/// Runs the comparison and prints it.
pub fn run(args: CheckStartArgs) -> anyhow::Result<()> {
    let portwarden = portwarden_binary(args.portwarden.as_deref())?;
    if !args.check_tcp.exists() {
        bail!(
            "{} not found (Debian: apt-get install monitoring-plugins-basic)",
            args.check_tcp.display()
        );
    }
    // Accepts and closes: a connect-only check needs nothing more. The thread ends with
    // the process.
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the listener")?;
    let port = listener.local_addr()?.port().to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let ours = {
        let mut c = Command::new(&portwarden);
        c.args(["check", "tcp", "-H", "127.0.0.1", "-p", &port]);
        c
    };
    let theirs = {
        let mut c = Command::new(&args.check_tcp);
        c.args(["-H", "127.0.0.1", "-p", &port]);
        c
    };
    let mut checkers = [(ours, Times::default()), (theirs, Times::default())];
    for round in 0..args.warmup + args.runs {
        // Flip the order every round.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (cmd, times) = &mut checkers[i];
            let started = Instant::now();
            let status = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .with_context(|| format!("running {:?}", cmd.get_program()))?;
            let took = started.elapsed();
            if !status.success() {
                bail!("{:?} exited with {status}", cmd.get_program());
            }
            if round >= args.warmup {
                times.0.push(took);
            }
        }
    }
    let [(_, ours), (_, theirs)] = &checkers;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} sequential runs each, alternating, connect-only check of 127.0.0.1:{port}",
        args.runs
    );
    println!("| checker | runs/s | p50 ms | p90 ms | total s |");
    println!("|---|---|---|---|---|");
    for (name, t) in [("portwarden check tcp", ours), ("check_tcp", theirs)] {
        println!(
            "| {name} | {:.1} | {:.3} | {:.3} | {:.3} |",
            t.rate(),
            ms(t.percentile(0.5)),
            ms(t.percentile(0.9)),
            t.total().as_secs_f64()
        );
    }
    println!(
        "rate ratio portwarden / check_tcp: {:.3} (>= 1.0: portwarden is as fast or faster)",
        ours.rate() / theirs.rate()
    );
    Ok(())
}
