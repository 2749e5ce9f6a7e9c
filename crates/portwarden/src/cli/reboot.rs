//! `portwarden reboot cancel`: stops a reboot the healing engine has announced (during its
//! hold-off) by creating the cancel file in the daemon's state directory; the engine sees it
//! within a fraction of a second, records the reboot as cancelled and gives up on the monitor
//! (a person is looking). A cancel made when no reboot is pending is forgotten when the next
//! one is announced.
//!
//! Exit codes: 0 done, 2 usage, config or file error.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{SUCCESS, USAGE};
use crate::config;

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
            Ok(file) => {
                println!(
                    "reboot cancelled: {} created; a pending reboot will not happen",
                    file.display()
                );
                SUCCESS
            }
            Err(e) => {
                eprintln!("portwarden reboot cancel: {e}");
                USAGE
            }
        },
    }
}

fn cancel(place: &Place) -> Result<PathBuf, String> {
    let dir = state_dir(place)?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = act::cancel_file(&dir);
    std::fs::write(&file, b"").map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(file)
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
