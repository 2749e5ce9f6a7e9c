//! Self-healing: when a monitor goes DOWN, act — restart the service, run a command, as a
//! guarded last resort reboot — then verify the fix and say what happened.
//!
//! Data flow: `MonitorDown` (or `MonitorFlapping`: a restart storm turns into flapping) from
//! the bus ([`crate::events`]) → [`engine`] (one task per
//! failing monitor, one action at a time each, a global cap on actions at once) → the
//! monitor's ladder of `on_down` steps ([`ladder`]) under its limits ([`limits`]: at most
//! `max_actions` within `window`, `cooldown` between two, everything forgotten after
//! `reset_after` of health) → the `portwarden-act` crate runs the action → the engine asks the
//! [`crate::schedule::Scheduler`] for re-checks within the step's `grace` → every attempt goes
//! into the store's `actions` table and out as an event (`action_taken`, `action_failed`,
//! `gave_up`, `reboot_pending`), which the notification dispatcher turns into messages
//! ([`text`] words them). The API reads [`HealHandle`] (`needs_attention` per monitor) and the
//! store (`GET /api/v1/actions`).
//!
//! Never acted on: a silenced monitor (the silences of `portwarden silence`), a paused one,
//! and the daemon's own unit (a restart would kill the engine mid-action; see
//! [`world::own_unit`]). A reload (SIGHUP) leaves running ladders alone; the new ladder
//! applies from the next DOWN.

pub mod engine;
pub mod ladder;
pub mod limits;
pub mod text;
pub mod world;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use engine::{Engine, HealHandle, Healing, Settings};

use crate::events::EventBus;
use crate::schedule::Scheduler;
use crate::store::Store;

/// The engine the daemon runs: real monitors, real actions. Subscribed to the bus on return.
pub fn daemon_engine(
    scheduler: &Arc<Scheduler>,
    store: Store,
    bus: &EventBus,
    max_concurrent_actions: usize,
    state_dir: PathBuf,
) -> (Engine<world::DaemonMonitors, world::ActRunner>, HealHandle) {
    let own_unit = world::own_unit();
    if let Some(unit) = &own_unit {
        tracing::debug!("running as {unit}: healing never restarts or stops it");
    }
    Engine::new(
        world::DaemonMonitors::new(scheduler, store),
        world::ActRunner,
        bus,
        Settings {
            max_concurrent_actions,
            state_dir,
            own_unit,
        },
    )
}
