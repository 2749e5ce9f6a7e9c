//! The firewall guard: verifies the host firewall on every nftables change notification (within
//! milliseconds) and every `verify_every` (default 30 s), repairs it as `on_violation` says —
//! re-enable with the backend's own means, or restore the baseline atomically — verifies again
//! and reports each step on the event bus.
//!
//! It never fights the administrator: a pause file (`portwarden firewall pause --for 30m`)
//! holds repairs, and after `max_repairs_per_hour` repairs it only alerts. It never repairs on
//! garbage: a state that cannot be read is reported, not acted on.
//!
//! Data flow: [`run`] picks the backend (configured, the baseline's, or detected) → the
//! [`engine`] looks at the firewall at start, every `verify_every` and on every nftables change,
//! judges what it sees against the policy and the baseline (`portwarden_firewall::assess`), and
//! decides: nothing, report once, or repair and verify again → events on the bus
//! (`firewall_violation`, `firewall_repaired`, `firewall_repair_failed`, `firewall_recovered`,
//! `firewall_unreadable`) and the [`GuardStatus`] the API, the dashboard, the metrics and
//! `portwarden status` read.
//!
//! - [`engine`]: the verify / repair decisions and the loop that triggers them, over the small
//!   [`engine::Firewall`] trait (inspect, enable, restore), so tests drive it with a fake.
//! - [`world`]: that trait implemented with the `portwarden-firewall` crate and its command runner.
//! - [`pause`]: the maintenance pause file, written by `portwarden firewall pause`.
//! - [`status`]: what the guard shows of itself.
//! - `tests`: the verify / repair loop against a fake firewall.

mod engine;
mod pause;
mod status;
mod world;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use portwarden_firewall::{BackendKind, Baseline, Runner};
use tokio_util::sync::CancellationToken;

use crate::config::{FirewallSettings, OnViolation};
use crate::events::{EventBus, EventKind};

use engine::{effective_mode, unreadable, Guard, Intro};
pub use pause::{Pause, PAUSE_FILE};
use status::set;
pub use status::{GuardState, GuardStatus, SharedStatus};

/// Where the guard's settings come from, which decides what a firewall with no rules means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    /// A config file (with or without `[firewall]`): a firewall that is off breaks
    /// `require = ["enabled"]` and is a violation from the start.
    Configured,
    /// The built-in default: a host that has no rules at start has nothing to guard (state
    /// `absent`, said once at WARN); rules loaded later are guarded like any others.
    ZeroConfig,
}

/// Said once when the zero-config guard finds no firewall rules on the host.
pub const ABSENT_WARNING: &str = "no firewall rules are loaded on this host; portwarden will \
     alert if rules are loaded and later switched off or flushed — to guard a firewall, see \
     docs/firewall.md";

/// Now, in Unix seconds (0 before 1970).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Loads the baseline if the file exists; a broken file is reported and treated as absent
/// (the guard then alerts instead of restoring garbage).
pub fn load_baseline(path: &Path) -> Result<Option<Baseline>, portwarden_firewall::Error> {
    if !path.exists() {
        return Ok(None);
    }
    // Bounded: the path comes from the config and may be anything (a FIFO, a device).
    let baseline = crate::config::files::read_bounded(path, crate::config::files::CONFIG_LIMIT)
        .map_err(|e| e.to_string())
        .and_then(|text| Baseline::parse(&text));
    baseline
        .map(Some)
        .map_err(|message| portwarden_firewall::Error::Baseline {
            path: path.display().to_string(),
            message,
        })
}

/// Picks the backend: configured, else the baseline's, else detected.
pub async fn choose_backend(
    configured: Option<BackendKind>,
    baseline: Option<&Baseline>,
    runner: &Runner,
) -> Result<(BackendKind, String), portwarden_firewall::Error> {
    if let Some(kind) = configured {
        return Ok((kind, "configured".into()));
    }
    if let Some(b) = baseline {
        return Ok((b.backend, "from the baseline".into()));
    }
    let d = portwarden_firewall::detect::detect(runner).await?;
    Ok((d.backend, d.why))
}

/// Runs the guard until `shutdown`.
pub async fn run(
    settings: FirewallSettings,
    mode: GuardMode,
    pause_file: PathBuf,
    bus: EventBus,
    status: SharedStatus,
    shutdown: CancellationToken,
) {
    if !settings.guard {
        set(&status, |s| s.state = GuardState::Off);
        return;
    }
    let runner = Runner::default();
    let (baseline, baseline_mtime) = read_baseline(&settings.baseline, &bus);
    // Detection can fail (no tool installed, no permission): retry at the verify period.
    let (kind, why) = loop {
        match choose_backend(settings.backend, baseline.as_ref(), &runner).await {
            Ok(found) => break found,
            Err(e) => {
                unreadable(&status, &bus, None, e.to_string());
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(settings.verify_every) => {}
                }
            }
        }
    };
    let tables = settings
        .tables
        .clone()
        .or_else(|| baseline.as_ref().and_then(Baseline::nft_tables));
    let firewall = world::HostFirewall::new(
        portwarden_firewall::Firewall::new(kind, runner).with_tables(tables),
    );
    let how = format!(
        "verifying every {}{}; on violation: {}",
        humantime::format_duration(settings.verify_every),
        if watchable(kind) && settings.watch {
            " and on every nftables change"
        } else {
            ""
        },
        describe_mode(effective_mode(&settings, baseline.as_ref()))
    );
    // `why` has brackets of its own: it stands after a dash, never inside more.
    let intro = Intro {
        full: format!("firewall guard: {kind} — {why}; {how}"),
        short: format!("firewall guard: {kind}; {how}"),
    };
    let intro = match mode {
        GuardMode::Configured => {
            tracing::info!(backend = %kind, "{}", intro.full);
            None
        }
        // Said after the first look: when there is nothing to guard, the warning says why
        // and the line leaves out the detection's "no rules are loaded".
        GuardMode::ZeroConfig => Some(intro),
    };
    Guard::new(firewall, settings, mode, pause_file, bus, status)
        .with_baseline(baseline, baseline_mtime)
        .with_intro(intro)
        .watch_loop(shutdown)
        .await;
}

/// nftables changes can be watched: Linux, a backend that writes nftables.
fn watchable(kind: BackendKind) -> bool {
    cfg!(target_os = "linux")
        && matches!(
            kind,
            BackendKind::Nftables
                | BackendKind::IptablesNft
                | BackendKind::Ufw
                | BackendKind::Firewalld
        )
}

fn describe_mode(mode: OnViolation) -> &'static str {
    match mode {
        OnViolation::Alert => "alert only",
        OnViolation::Enable => "switch it back on",
        OnViolation::Restore => "restore the baseline",
    }
}

/// The baseline and its file's modification time; a broken file is reported on the bus and
/// read as none.
fn read_baseline(path: &Path, bus: &EventBus) -> (Option<Baseline>, Option<SystemTime>) {
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    match load_baseline(path) {
        Ok(b) => (b, mtime),
        Err(e) => {
            bus.publish(EventKind::FirewallUnreadable {
                backend: None,
                error: format!("{e}; alerting instead of restoring until it is fixed"),
            });
            (None, mtime)
        }
    }
}
