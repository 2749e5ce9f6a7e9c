//! The engine's view of the running daemon: monitors and their checks from the
//! [`Scheduler`], silences and the record from the [`Store`], actions from the `portwarden-act`
//! crate.

use std::path::Path;
use std::sync::{Arc, Weak};

use portwarden_act::ActionSpec;

use super::engine::{Monitors, Observed, Runner, Seen};
use crate::monitor::Heal;
use crate::schedule::{Control, Scheduler};
use crate::store::{ActionRecord, Store};

/// The scheduler and the store. Weak: the scheduler must go away at shutdown (it holds the
/// record channel the store drains).
#[derive(Debug, Clone)]
pub struct DaemonMonitors {
    scheduler: Weak<Scheduler>,
    store: Store,
}

impl DaemonMonitors {
    pub fn new(scheduler: &Arc<Scheduler>, store: Store) -> Self {
        Self {
            scheduler: Arc::downgrade(scheduler),
            store,
        }
    }
}

impl Monitors for DaemonMonitors {
    fn heal(&self, name: &str) -> Option<(Heal, String)> {
        let m = self.scheduler.upgrade()?.monitor(name)?;
        Some((m.heal.clone(), m.probe.spec().target.to_string()))
    }

    fn observe(&self, name: &str) -> Option<Observed> {
        let v = self.scheduler.upgrade()?.view(name)?;
        Some(Observed {
            status: v.status,
            status_since: v.status_since,
            interval: v.interval,
            last: v.last_check.map(|c| Seen {
                started: c.at,
                finished: c.at + c.duration,
                answered: matches!(
                    c.state,
                    portwarden_probe::State::Ok | portwarden_probe::State::Warning
                ),
                reason: c.reason,
                message: c.message,
            }),
        })
    }

    fn run_now(&self, name: &str) {
        if let Some(s) = self.scheduler.upgrade() {
            s.control(name, Control::RunNow);
        }
    }

    async fn held(&self, name: &str) -> Option<String> {
        // Like the dispatcher: when the store cannot say, act (a service left down is worse).
        let silences = match self.store.silences().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "silences cannot be read; healing anyway");
                return None;
            }
        };
        silences.iter().find(|s| s.matches(name)).map(|s| {
            format!(
                "silenced until {}{}",
                crate::notify::dispatch::format_ms(s.until_ms),
                if s.reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", s.reason)
                }
            )
        })
    }

    async fn record(&self, row: ActionRecord) {
        if let Err(e) = self.store.record_action(row).await {
            tracing::warn!(error = %e, "a healing action could not be stored");
        }
    }
}

/// The real actions.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActRunner;

impl Runner for ActRunner {
    async fn run(
        &self,
        spec: &ActionSpec,
        cx: &portwarden_act::Context,
    ) -> portwarden_act::Outcome {
        portwarden_act::run(spec, cx).await
    }

    fn reboot_allowed(
        &self,
        spec: &ActionSpec,
        cx: &portwarden_act::Context,
    ) -> Result<(), String> {
        let ActionSpec::Reboot(r) = spec else {
            return Ok(());
        };
        // No uptime to read: zero, so a `min_uptime` refuses (act's rule).
        let uptime = portwarden_act::reboot::current_uptime().unwrap_or_default();
        portwarden_act::reboot_allowed(
            r,
            &cx.state_dir,
            std::time::SystemTime::now(),
            uptime,
            &portwarden_act::reboot::current_boot_id(),
        )
    }

    fn reboot_cancelled(&self, state_dir: &Path) -> bool {
        portwarden_act::cancelled(state_dir)
    }

    fn clear_reboot_cancel(&self, state_dir: &Path) {
        if let Err(e) = portwarden_act::clear_cancel(state_dir) {
            tracing::warn!(error = %e, "the reboot cancel file cannot be removed");
        }
    }

    fn reboot_pending(&self, state_dir: &Path, pending: Option<portwarden_act::PendingReboot>) {
        let done = match &pending {
            Some(p) => portwarden_act::mark_pending(state_dir, p),
            None => portwarden_act::clear_pending(state_dir),
        };
        if let Err(e) = done {
            tracing::warn!(
                error = %e,
                file = %portwarden_act::pending_file(state_dir).display(),
                "the pending-reboot file cannot be written: `portwarden reboot cancel` may \
                 say no reboot is pending"
            );
        }
    }
}

/// The systemd unit this process runs in (`portwarden.service`), from its cgroup; `None`
/// outside a service (a shell, a container without systemd).
pub fn own_unit() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    unit_of_cgroup(&text)
}

fn unit_of_cgroup(text: &str) -> Option<String> {
    // cgroup v2: `0::/system.slice/portwarden.service`; v1 lists several hierarchies.
    text.lines()
        .filter_map(|l| l.rsplit(':').next())
        .flat_map(|path| path.rsplit('/').find(|c| c.ends_with(".service")))
        .next()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_unit_comes_from_the_cgroup() {
        assert_eq!(
            unit_of_cgroup("0::/system.slice/portwarden.service\n").as_deref(),
            Some("portwarden.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-1000.slice/user@1000.service/app.slice/pw.service")
                .as_deref(),
            Some("pw.service")
        );
        assert_eq!(
            unit_of_cgroup("0::/user.slice/user-1000.slice/session-3.scope\n"),
            None
        );
    }
}
