//! `portwarden firewall`: the host firewall's state, switching it on, its baseline (save,
//! diff, restore) and the guard's maintenance switch (pause, resume).
//!
//! Exit codes: 0 all good, 1 a violation or drift was found (or the action failed), 2 usage,
//! config or unreadable state.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anstream::println;
use anstyle::{AnsiColor, Style};
use clap::{Args, Subcommand};
use portwarden_firewall::{assess, Assessment, BackendKind, Baseline, Firewall, Runner, State};

use super::{FAILURE, SUCCESS, USAGE};
use crate::config::{self, FirewallSettings};
use crate::guard::{self, Pause};

/// Firewall state, re-enable, baseline, maintenance pause.
#[derive(Debug, Args)]
pub struct FirewallCommand {
    #[command(subcommand)]
    action: FirewallAction,
}

#[derive(Debug, Args)]
struct Common {
    /// Config file or directory (its `[firewall]` section); default: /etc/portwarden/portwarden.toml
    /// when it exists.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The backend, instead of `[firewall] backend` or detection.
    #[arg(long, value_parser = parse_backend)]
    backend: Option<BackendKind>,
    /// The baseline file, instead of `[firewall] baseline`.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum FirewallAction {
    /// Backend, enabled, inbound defaults, rule counts, violations and drift.
    Status {
        #[command(flatten)]
        common: Common,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Switch the firewall back on (ufw, firewalld, pf, Windows), or restore the baseline
    /// for nftables and iptables, then verify.
    Enable {
        #[command(flatten)]
        common: Common,
    },
    /// Put the baseline back atomically (other tools' tables stay), then verify.
    Restore {
        #[command(flatten)]
        common: Common,
    },
    /// Save, or compare with, the known-good ruleset.
    Baseline {
        #[command(subcommand)]
        action: BaselineAction,
    },
    /// Hold the guard's repairs for a while (it keeps alerting).
    Pause {
        /// How long, e.g. `30m`, `2h`.
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
        /// Why, shown in alerts while paused.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        state: StateDir,
    },
    /// End a pause now.
    Resume {
        #[command(flatten)]
        state: StateDir,
    },
}

#[derive(Debug, Subcommand)]
enum BaselineAction {
    /// Save the current ruleset as the baseline.
    Save {
        #[command(flatten)]
        common: Common,
        /// Save even though the firewall is off or lets inbound traffic in by default.
        #[arg(long)]
        force: bool,
    },
    /// Which rules vanished and which appeared since the baseline; exit 1 on drift.
    Diff {
        #[command(flatten)]
        common: Common,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct StateDir {
    /// Config file or directory (its `[daemon] state_dir`).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The daemon's state directory, where the pause switch lives.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    BackendKind::from_name(s).ok_or_else(|| {
        format!(
            "unknown backend {s:?}; expected one of {}",
            BackendKind::ALL.map(|k| k.name()).join(", ")
        )
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?}: {e} (write e.g. 30m or 2h)"))
        .and_then(|d| {
            if d.is_zero() {
                Err("must be longer than 0".into())
            } else {
                Ok(d)
            }
        })
}

pub fn run(cmd: FirewallCommand) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portwarden firewall: cannot start the async runtime: {e}");
            return USAGE;
        }
    };
    let result = runtime.block_on(async {
        match cmd.action {
            FirewallAction::Status { common, json } => status(&common, json).await,
            FirewallAction::Enable { common } => repair(&common, false).await,
            FirewallAction::Restore { common } => repair(&common, true).await,
            FirewallAction::Baseline {
                action: BaselineAction::Save { common, force },
            } => save(&common, force).await,
            FirewallAction::Baseline {
                action: BaselineAction::Diff { common, json },
            } => diff(&common, json).await,
            FirewallAction::Pause {
                duration,
                reason,
                state,
            } => pause(&state, duration, reason),
            FirewallAction::Resume { state } => resume(&state),
        }
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("portwarden firewall: {message}");
            USAGE
        }
    }
}

/// Everything a command needs: settings, the baseline if any, the backend.
struct Context {
    settings: FirewallSettings,
    baseline: Option<Baseline>,
    firewall: Firewall,
    why: String,
}

fn settings(common: &Common) -> Result<FirewallSettings, String> {
    let path = common
        .config
        .clone()
        .or_else(|| Some(PathBuf::from(config::DEFAULT_PATH)).filter(|p| p.exists()));
    let mut settings = match path {
        Some(p) => config::load(&p).map_err(|e| e.to_string())?.firewall,
        None => FirewallSettings::default(),
    };
    if let Some(b) = &common.baseline {
        settings.baseline = b.clone();
    }
    if common.backend.is_some() {
        settings.backend = common.backend;
    }
    Ok(settings)
}

async fn context(common: &Common) -> Result<Context, String> {
    let settings = settings(common)?;
    let baseline = guard::load_baseline(&settings.baseline).map_err(|e| e.to_string())?;
    let runner = Runner::default();
    let (kind, why) = guard::choose_backend(settings.backend, baseline.as_ref(), &runner)
        .await
        .map_err(|e| e.to_string())?;
    let tables = settings
        .tables
        .clone()
        .or_else(|| baseline.as_ref().and_then(Baseline::nft_tables));
    Ok(Context {
        firewall: Firewall::new(kind, runner).with_tables(tables),
        settings,
        baseline,
        why,
    })
}

async fn inspect(cx: &Context) -> Result<(State, Assessment), String> {
    let state = cx.firewall.inspect().await.map_err(|e| e.to_string())?;
    let a = assess(&state, &cx.settings.policy, cx.baseline.as_ref());
    Ok((state, a))
}

fn bold() -> Style {
    Style::new().bold()
}

fn good(ok: bool) -> Style {
    let colour = if ok { AnsiColor::Green } else { AnsiColor::Red };
    colour.on_default().bold()
}

async fn status(common: &Common, json: bool) -> Result<i32, String> {
    let cx = context(common).await?;
    let (state, a) = inspect(&cx).await?;
    let code = if a.ok() { SUCCESS } else { FAILURE };
    let counts = rule_counts(&state);
    let rule_total: usize = counts.iter().map(|(_, n)| n).sum();
    if json {
        let doc = serde_json::json!({
            "backend": state.backend,
            "detected": cx.why,
            "ok": a.ok(),
            "enabled": state.enabled,
            "inbound_default_deny": state.inbound_default_deny(),
            "inbound": state.inbound,
            "rules": rule_total,
            "rule_counts": counts
                .iter()
                .cloned()
                .map(|(scope, n)| (scope, serde_json::Value::from(n)))
                .collect::<serde_json::Map<_, _>>(),
            "foreign_tables": state.foreign_tables,
            "notes": state.notes,
            "violations": a.violations,
            "baseline": cx.baseline.as_ref().map(|_| cx.settings.baseline.display().to_string()),
            "drift": a.drift,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(code);
    }
    let b = bold();
    println!("{b}backend{b:#}   {} ({})", state.backend, cx.why);
    let on = good(state.enabled);
    println!(
        "{b}enabled{b:#}   {on}{}{on:#}",
        if state.enabled { "yes" } else { "no" }
    );
    for d in &state.inbound {
        let s = good(d.denies);
        println!(
            "{b}inbound{b:#}   {:<8} {s}{}{s:#}{}",
            d.scope,
            if d.denies { "deny" } else { "ALLOW" },
            d.policy
                .as_deref()
                .map(|p| format!(" (policy {p})"))
                .unwrap_or_default()
        );
    }
    println!(
        "{b}rules{b:#}     {}{}",
        rule_total,
        if counts.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                counts
                    .iter()
                    .map(|(scope, n)| format!("{scope}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    if !state.foreign_tables.is_empty() {
        println!("{b}other{b:#}     {}", state.foreign_tables.join(", "));
    }
    match &cx.baseline {
        Some(base) => println!(
            "{b}baseline{b:#}  {} ({} rules)",
            cx.settings.baseline.display(),
            base.rules.len()
        ),
        None => {
            println!("{b}baseline{b:#}  none (save one with `portwarden firewall baseline save`)")
        }
    }
    for note in &state.notes {
        println!("{b}note{b:#}      {note}");
    }
    if a.ok() {
        let s = good(true);
        println!("{s}OK{s:#}: every requirement met{}", drift_word(&a));
    } else {
        let s = good(false);
        for v in &a.violations {
            println!("{s}VIOLATION{s:#}: {v}");
        }
        if let Some(d) = a.drift.as_ref().filter(|d| !d.is_empty()) {
            print!("{d}");
        }
    }
    Ok(code)
}

/// Rules per chain (`inet filter input: 5`), in listing order; policy and header pseudo-rules
/// are not counted.
fn rule_counts(state: &State) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for rule in &state.rules {
        let pseudo = rule.text.starts_with("policy ") || rule.text.starts_with("type ");
        match counts.last_mut() {
            Some((scope, n)) if *scope == rule.scope => *n += usize::from(!pseudo),
            _ => counts.push((rule.scope.clone(), usize::from(!pseudo))),
        }
    }
    counts
}

fn drift_word(a: &Assessment) -> &'static str {
    match &a.drift {
        Some(d) if d.is_empty() => ", no drift from the baseline",
        _ => "",
    }
}

/// `enable` (restore = false) or `restore`, then verify.
async fn repair(common: &Common, restore: bool) -> Result<i32, String> {
    let cx = context(common).await?;
    let started = std::time::Instant::now();
    let result = match (&cx.baseline, restore) {
        (Some(b), true) => cx.firewall.restore(b).await,
        (None, true) => {
            return Err(format!(
                "no baseline at {} (save one with `portwarden firewall baseline save`)",
                cx.settings.baseline.display()
            ))
        }
        // nftables and iptables have no "on" switch: their baseline is how they come back.
        (Some(b), false)
            if matches!(
                cx.firewall.kind,
                BackendKind::Nftables | BackendKind::IptablesNft | BackendKind::IptablesLegacy
            ) =>
        {
            cx.firewall.restore(b).await
        }
        _ => cx.firewall.enable().await,
    };
    if let Err(e) = result {
        eprintln!("portwarden firewall: {e}");
        return Ok(FAILURE);
    }
    let (state, a) = inspect(&cx).await?;
    let took = started.elapsed().as_millis();
    if a.ok() {
        println!(
            "{} firewall {} and verified in {took} ms: enabled, {} rules",
            state.backend,
            if restore { "restored" } else { "switched on" },
            state.rules.len()
        );
        Ok(SUCCESS)
    } else {
        for v in &a.violations {
            println!("still violated: {v}");
        }
        Ok(FAILURE)
    }
}

async fn save(common: &Common, force: bool) -> Result<i32, String> {
    let cx = context(common).await?;
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let baseline = cx
        .firewall
        .snapshot(&host)
        .await
        .map_err(|e| e.to_string())?;
    let open: Vec<&str> = baseline
        .inbound
        .iter()
        .filter(|d| !d.denies)
        .map(|d| d.scope.as_str())
        .collect();
    if baseline.rules.is_empty() && !force {
        eprintln!(
            "portwarden firewall: the {} firewall has no rules; a baseline of it would restore \
             an open firewall (use --force to save it anyway)",
            baseline.backend
        );
        return Ok(FAILURE);
    }
    if (!open.is_empty() || baseline.inbound.is_empty()) && !force {
        eprintln!(
            "portwarden firewall: the {} firewall accepts inbound traffic by default ({}); \
             save anyway with --force",
            baseline.backend,
            if open.is_empty() {
                "no inbound chain".to_string()
            } else {
                open.join(", ")
            }
        );
        return Ok(FAILURE);
    }
    baseline
        .save(&cx.settings.baseline)
        .map_err(|e| e.to_string())?;
    println!(
        "saved the {} baseline to {}: {} rules",
        baseline.backend,
        cx.settings.baseline.display(),
        baseline.rules.len()
    );
    Ok(SUCCESS)
}

async fn diff(common: &Common, json: bool) -> Result<i32, String> {
    let cx = context(common).await?;
    let Some(base) = &cx.baseline else {
        return Err(format!(
            "no baseline at {} (save one with `portwarden firewall baseline save`)",
            cx.settings.baseline.display()
        ));
    };
    let state = cx.firewall.inspect().await.map_err(|e| e.to_string())?;
    let drift = portwarden_firewall::drift(base, &state);
    let code = if drift.is_empty() { SUCCESS } else { FAILURE };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&drift).unwrap_or_default()
        );
    } else if drift.is_empty() {
        println!("no drift from {}", cx.settings.baseline.display());
    } else {
        print!("{drift}");
    }
    Ok(code)
}

fn pause_file(state: &StateDir) -> Result<PathBuf, String> {
    let dir = match (&state.state_dir, &state.config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(c)) => config::load(c)
            .map_err(|e| e.to_string())?
            .daemon
            .state_dir
            .unwrap_or_else(crate::daemon::default_state_dir),
        (None, None) if Path::new(config::DEFAULT_PATH).exists() => {
            config::load(Path::new(config::DEFAULT_PATH))
                .map_err(|e| e.to_string())?
                .daemon
                .state_dir
                .unwrap_or_else(crate::daemon::default_state_dir)
        }
        (None, None) => crate::daemon::default_state_dir(),
    };
    Ok(dir.join(guard::PAUSE_FILE))
}

fn pause(state: &StateDir, duration: Duration, reason: String) -> Result<i32, String> {
    let path = pause_file(state)?;
    let p = Pause {
        until: guard::unix_secs() + duration.as_secs(),
        reason,
    };
    p.save(&path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let now_ms = i64::try_from(guard::unix_secs()).unwrap_or(i64::MAX / 1000) * 1000;
    let until_ms = i64::try_from(p.until).unwrap_or(i64::MAX / 1000) * 1000;
    println!(
        "firewall repairs paused until {}; the guard keeps alerting",
        super::when::until(until_ms, now_ms)
    );
    Ok(SUCCESS)
}

fn resume(state: &StateDir) -> Result<i32, String> {
    let path = pause_file(state)?;
    match std::fs::remove_file(&path) {
        Ok(()) => println!("firewall repairs resumed"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("no pause was in force"),
        Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
    }
    Ok(SUCCESS)
}
