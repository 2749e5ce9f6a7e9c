//! portwarden's benchmark harness: how fast the probe engine checks banner services, next to
//! a minimal raw tokio loop doing the same work, in the same run (see `docs/benchmarks.md`).
//!
//! One binary, three roles chosen by argv, each in its own process so that every load run's
//! peak RSS and CPU are its own:
//! - `bench` (no subcommand): the orchestrator ([`orchestrate`]). Starts the fleet, runs every
//!   (concurrency, mode) pair as a load child, interleaved over several rounds, and prints a
//!   markdown table (or JSON) with medians and the probe/raw ratio.
//! - `bench fleet`: the target fleet ([`fleet`]): banner listeners on 127.0.0.1 (or several
//!   loopback addresses). It prints its ports on stdout and exits when its stdin closes.
//! - `bench load`: one bounded load run ([`load`]), raw loop or probe engine, printing one
//!   JSON line ([`load::LoadReport`]).
//! - `bench ports` ([`listing`]): `portwarden ports` with 10,000 listening sockets, in a
//!   network namespace of its own, with its helpers `bench hold` and `bench measure`.
//! - `bench daemon` ([`scale`]): `portwarden run` with 100,000 and 10,000 monitors against a
//!   fleet spread over 127.0.0.1-127.0.0.8: checks/s, start lag, RSS, CPU, the store.
//! - `bench firewall` ([`restore`]): the firewall guard, from `nft flush ruleset` to the
//!   baseline restored and verified, in a network namespace of its own.
//! - `bench notify` ([`notify_latency`]): a DOWN notification from the failure threshold to a
//!   real SMTP server holding the mail.
//! - `bench storm` ([`storm`]): 100,000 monitors going down together (the fleet killed) and the
//!   grouped webhook notifications covering every one of them.
//! - `bench heal` ([`heal_latency`]): self-healing, from DOWN to the action issued and from a
//!   killed server to the fix verified.
//! - `bench probe-rate` ([`probe_rate`]): `/probe` requests per second, portwarden next to
//!   blackbox_exporter on the same fleet, driven by wrk.
//!
//! - `bench chaos` ([`chaos`]): monitors flipping, the daemon SIGKILLed at random moments and a
//!   webhook receiver that fails, stalls and refuses; every transition accounted against
//!   what the receiver got (lost, duplicated by key, out of order).
//!
//! - `bench check-start` ([`check_start`]): one-shot `portwarden check tcp` processes next to
//!   the real check_tcp, alternately, and the ratio of their rates.
//!
//! - `bench soak` ([`soak`]): the daemon for hours under a steady mix (flipping monitors,
//!   webhook notifications, scrapes, reloads): the slopes of RSS, open fds and start lag.
//!
//! Supporting modules: [`histogram`] (constant-memory latency percentiles), [`ports`] (port
//! lists such as `21000-21999,22001`), [`sys`] (`/proc` readings and the file limit).

mod chaos;
mod check_start;
mod children;
mod fleet;
mod heal_latency;
mod histogram;
mod listing;
mod load;
mod notify_latency;
mod orchestrate;
mod ports;
mod probe_rate;
mod restore;
mod scale;
mod soak;
mod storm;
mod sys;

use clap::{Parser, Subcommand};

/// Benchmark of the probe engine against a raw tokio connect-read-close loop on loopback.
#[derive(Debug, Parser)]
#[command(name = "bench", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    run: orchestrate::RunArgs,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Serve banner listeners on loopback until stdin closes.
    Fleet(fleet::FleetArgs),
    /// Run one bounded load (raw loop or probe engine) and print one JSON line.
    Load(load::LoadArgs),
    /// Time `portwarden ports` with many listening sockets, in a namespace of its own.
    Ports(listing::PortsArgs),
    /// Hold many listening sockets until stdin closes (used by `ports`).
    Hold(listing::HoldArgs),
    /// Run one command and print its wall time and peak RSS (used by `ports`).
    Measure(listing::MeasureArgs),
    /// Run the daemon with 100,000 and 10,000 monitors against a loopback fleet and report.
    Daemon(scale::DaemonArgs),
    /// Time the firewall guard from `nft flush ruleset` to restored and verified.
    Firewall(restore::FirewallArgs),
    /// Time a DOWN notification from the failure threshold to a real SMTP server.
    Notify(notify_latency::NotifyArgs),
    /// 100,000 monitors down together: notifications covering every one, and how fast.
    Storm(storm::StormArgs),
    /// Time self-healing: DOWN → action issued, killed server → fixed and verified.
    Heal(heal_latency::HealArgs),
    /// `/probe` requests per second: portwarden next to blackbox_exporter, same fleet, wrk.
    ProbeRate(probe_rate::ProbeRateArgs),
    /// Notifications under chaos: flips, SIGKILLs, a failing receiver; every transition counted.
    Chaos(chaos::ChaosArgs),
    /// One-shot `portwarden check tcp` runs next to the real check_tcp: rates and ratio.
    CheckStart(check_start::CheckStartArgs),
    /// Run the daemon for hours under a steady mix; report the slopes of RSS, fds and lag.
    Soak(soak::SoakArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    sys::raise_file_limit();
    match cli.role {
        Some(Role::Fleet(args)) => fleet::run(&args),
        Some(Role::Load(args)) => load::run(&args),
        Some(Role::Ports(args)) => listing::run(&args),
        Some(Role::Hold(args)) => listing::hold(&args),
        Some(Role::Measure(args)) => listing::measure(&args),
        Some(Role::Daemon(args)) => scale::run(&args),
        Some(Role::Firewall(args)) => restore::run(&args),
        Some(Role::Notify(args)) => notify_latency::run(&args),
        Some(Role::Storm(args)) => storm::run(&args),
        Some(Role::Heal(args)) => heal_latency::run(&args),
        Some(Role::ProbeRate(args)) => probe_rate::run(&args),
        Some(Role::CheckStart(args)) => check_start::run(args),
        Some(Role::Soak(args)) => soak::run(&args),
        Some(Role::Chaos(args)) => chaos::run(&args),
        None => orchestrate::run(&cli.run),
    }
}
