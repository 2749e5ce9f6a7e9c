//! `portwarden actions [--json] [--monitor NAME] [--limit N]`: the healing engine's recent
//! attempts, newest first, read straight from the daemon's database (works whether the daemon
//! runs or not).
//!
//! Exit codes: 0 listed (also when there are none), 2 usage, config or database error.

use clap::Args;

use super::reboot::{state_dir, Place};
use super::{SUCCESS, USAGE};
use crate::store::{read_actions, ActionRecord};

/// The healing engine's recent actions.
#[derive(Debug, Args)]
pub struct ActionsCommand {
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
    /// Only this monitor's.
    #[arg(long, value_name = "NAME")]
    monitor: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    #[command(flatten)]
    place: Place,
}

pub fn run(cmd: ActionsCommand) -> i32 {
    let rows = state_dir(&cmd.place).and_then(|dir| {
        read_actions(
            &dir.join("portwarden.db"),
            cmd.monitor.as_deref(),
            cmd.limit,
        )
    });
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            eprintln!("portwarden actions: {e}");
            return USAGE;
        }
    };
    if cmd.json {
        match serde_json::to_string_pretty(&rows) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("portwarden actions: {e}");
                return USAGE;
            }
        }
        return SUCCESS;
    }
    if rows.is_empty() {
        println!("no healing actions recorded");
    }
    for r in &rows {
        println!("{}", line(r));
    }
    SUCCESS
}

/// `2026-11-26 15:30:01 UTC  web  exec (step 1/1)  fixed  exec /x: exit 0; … answering again after 0.4 s`
fn line(r: &ActionRecord) -> String {
    let what = if r.kind.is_empty() {
        String::from("-")
    } else {
        format!("{} (step {}, attempt {})", r.kind, r.step, r.attempt)
    };
    format!(
        "{}  {}  {what}  {}{}  {}",
        super::when::local(r.started_ms),
        r.monitor,
        r.outcome,
        if r.dry_run { " (dry run)" } else { "" },
        r.message
    )
}
