//! `portwarden reboot cancel`: stops a reboot the healing engine has announced (during its
//! hold-off) by creating the cancel file in the daemon's state directory; the engine sees it
//! within a fraction of a second, records the reboot as cancelled and gives up on the monitor
//! (a person is looking). The engine marks a hold-off in `STATE_DIR/reboot.pending`; with no
//! reboot pending the command says so and writes nothing.
//!
//! Exit codes: 0 cancelled, 1 no reboot is pending, 2 usage, config or file error.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::{FAILURE, SUCCESS, USAGE};
use crate::config;
use crate::notify::items::unix_ms;

/// Control reboots of the healing engine.
#[derive(Debug, Args)]
pub struct RebootCommand {
    #[command(subcommand)]
    action: RebootAction,
}

/// Where the daemon keeps its state.
#[derive(Debug, Args)]
pub struct Place {
    /// Config file or directory (its `[daemon] state_dir`); default:
    /// /etc/portwarden/portwarden.toml when it exists.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The daemon's state directory.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum RebootAction {
    /// Cancel the pending reboot (announced as "rebooting in … unless `portwarden reboot cancel`").
    Cancel {
        #[command(flatten)]
        place: Place,
    },
}

pub fn run(cmd: RebootCommand) -> i32 {
    match cmd.action {
        RebootAction::Cancel { place } => match cancel(&place) {
            Ok(Some((file, pending))) => {
                let now = unix_ms(SystemTime::now());
                let until = i64::try_from(pending.until)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000);
                println!(
                    "reboot cancelled: the reboot for {} due at {} will not happen ({} created)",
                    pending.monitor,
                    super::when::until(until, now),
                    file.display()
                );
                SUCCESS
            }
            Ok(None) => {
                eprintln!("portwarden reboot cancel: no reboot is pending; nothing was written");
                FAILURE
            }
            Err(e) => {
                eprintln!("portwarden reboot cancel: {e}");
                USAGE
            }
        },
    }
}

/// Creates the cancel file when a reboot is pending; `None`: none is, nothing is written.
fn cancel(place: &Place) -> Result<Option<(PathBuf, portwarden_act::PendingReboot)>, String> {
    let dir = state_dir(place)?;
    let Some(pending) = portwarden_act::pending(&dir, SystemTime::now()) else {
        return Ok(None);
    };
    let file = portwarden_act::cancel_file(&dir);
    std::fs::write(&file, b"").map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(Some((file, pending)))
}

/// The daemon's state directory: `--state-dir`, else the config's `[daemon] state_dir`, else
/// the daemon's default.
pub fn state_dir(place: &Place) -> Result<PathBuf, String> {
    let configured = |path: &Path| -> Result<PathBuf, String> {
        let c = config::load(path).map_err(|e| e.to_string())?;
        Ok(c.daemon
            .state_dir
            .unwrap_or_else(crate::daemon::default_state_dir))
    };
    match (&place.state_dir, &place.config) {
        (Some(dir), _) => Ok(dir.clone()),
        (None, Some(c)) => configured(c),
        (None, None) if Path::new(config::DEFAULT_PATH).exists() => {
            configured(Path::new(config::DEFAULT_PATH))
        }
        (None, None) => Ok(crate::daemon::default_state_dir()),
    }
}
