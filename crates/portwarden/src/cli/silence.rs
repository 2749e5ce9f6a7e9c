//! `portwarden silence add|list|remove`: hold notifications about a monitor for a while
//! (maintenance, a known outage). Checks go on; the daemon reads the silences from its
//! database at notification time, and this command writes them straight into that file (same
//! host, WAL mode), so it works whether the daemon runs or not.
//!
//! `add` refuses a name or prefix that matches no monitor (of the running daemon, asked as
//! `portwarden status` asks it, else of the config) unless `--force`.
//!
//! Exit codes: 0 done, 1 no such silence, 2 usage, config or database error, or no such
//! monitor.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use super::{FAILURE, SUCCESS, USAGE};
use crate::config;
use crate::notify::items::unix_ms;
use crate::store::{Silence, SilenceFile};

/// Hold notifications about monitors for a while.
#[derive(Debug, Args)]
pub struct SilenceCommand {
    #[command(subcommand)]
    action: SilenceAction,
}

#[derive(Debug, Args)]
struct Place {
    /// Config file or directory (its `[daemon] state_dir`; for `add`, also its monitors and
    /// the daemon's address); default: /etc/portwarden/portwarden.toml when it exists.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The daemon's state directory (its database holds the silences).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SilenceAction {
    /// Silence a monitor (a name, `*` for everything, or a prefix like `web-*`).
    Add {
        /// Monitor name, `*`, or `prefix*`; `firewall` silences the firewall guard's messages.
        monitor: String,
        /// How long, e.g. "2h", "30m", "1d".
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
        duration: Duration,
        /// Why (shown in the log line of every held notification).
        #[arg(long, default_value = "")]
        reason: String,
        /// Silence it even though no monitor of that name (or prefix) exists now, e.g. one
        /// about to be added.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        place: Place,
    },
    /// The silences in force.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: Place,
    },
    /// End a silence now.
    Remove {
        /// The id `silence add` printed (also in `silence list`).
        id: i64,
        #[command(flatten)]
        place: Place,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err("must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e} (write e.g. \"2h\" or \"30m\")")),
    }
}

/// The database of the daemon's state directory: `--state-dir`, else the config's
/// `[daemon] state_dir`, else the daemon's default.
fn database(place: &Place) -> Result<PathBuf, String> {
    let configured = |path: &Path| -> Result<PathBuf, String> {
        let c = config::load(path).map_err(|e| e.to_string())?;
        Ok(c.daemon
            .state_dir
            .unwrap_or_else(crate::daemon::default_state_dir))
    };
    let dir = match (&place.state_dir, &place.config) {
        (Some(dir), _) => dir.clone(),
        (None, Some(c)) => configured(c)?,
        (None, None) if Path::new(config::DEFAULT_PATH).exists() => {
            configured(Path::new(config::DEFAULT_PATH))?
        }
        (None, None) => crate::daemon::default_state_dir(),
    };
    Ok(dir.join("portwarden.db"))
}

fn valid_pattern(monitor: &str) -> Result<(), String> {
    let body = monitor.strip_suffix('*').unwrap_or(monitor);
    if monitor.is_empty() {
        return Err("the monitor name is empty".into());
    }
    if body.contains('*') {
        return Err(format!(
            "{monitor:?}: `*` may only end the name (`*` or a prefix like `web-*`)"
        ));
    }
    Ok(())
}

/// The monitors that exist now, and where that was learnt: the running daemon (which also
/// knows zero-config's discovered monitors), else the config. Neither: an error saying so.
fn known_monitors(place: &Place) -> Result<(Vec<String>, String), String> {
    let config = super::client::load_config(place.config.as_deref())?;
    let asked = super::client::Client::new(
        config.as_ref().map(|(_, c)| c),
        None,
        Duration::from_secs(2),
    )
    .ok()
    .map(|client| (client.get("/api/v1/monitors"), client.address().to_string()));
    if let Some((Ok(list), address)) = &asked {
        let names = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["name"].as_str().map(str::to_string))
            .collect();
        return Ok((names, format!("the daemon at {address}")));
    }
    match config {
        Some((path, c)) => Ok((
            c.monitors.into_iter().map(|m| m.name).collect(),
            path.display().to_string(),
        )),
        None => Err(format!(
            "cannot tell whether that monitor exists: there is no config at {} and no daemon \
             answers at {}; name the config with -c FILE, or add --force",
            config::DEFAULT_PATH,
            asked.map_or_else(|| crate::daemon::DEFAULT_LISTEN.to_string(), |(_, a)| a)
        )),
    }
}

fn open(place: &Place) -> Result<SilenceFile, String> {
    let path = database(place)?;
    SilenceFile::open(&path).map_err(|e| e.to_string())
}

fn describe(s: &Silence) -> String {
    let reason = if s.reason.is_empty() {
        String::new()
    } else {
        format!(" ({})", s.reason)
    };
    format!(
        "silence {}: {} until {}{reason}",
        s.id,
        s.monitor,
        super::when::until(s.until_ms, unix_ms(SystemTime::now()))
    )
}

/// Runs the command; returns the exit code.
pub fn run(cmd: SilenceCommand) -> i32 {
    match run_inner(cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("portwarden silence: {e}");
            USAGE
        }
    }
}

fn run_inner(cmd: SilenceCommand) -> Result<i32, String> {
    let now = unix_ms(SystemTime::now());
    match cmd.action {
        SilenceAction::Add {
            monitor,
            duration,
            reason,
            force,
            place,
        } => {
            valid_pattern(&monitor)?;
            if !force {
                let (names, source) = known_monitors(&place)?;
                crate::api::control::matches_a_monitor(&monitor, &names, &source)
                    .map_err(|e| format!("{e} (--force silences it anyway)"))?;
            }
            let until = now.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
            let s = open(&place)?
                .add(&monitor, until, &reason, now)
                .map_err(|e| e.to_string())?;
            println!("{}", describe(&s));
            Ok(SUCCESS)
        }
        SilenceAction::List { json, place } => {
            let list = open(&place)?.active(now).map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
                );
            } else if list.is_empty() {
                println!("no silences");
            } else {
                let rows: Vec<[String; 5]> = list
                    .iter()
                    .map(|s| {
                        let left =
                            Duration::from_millis(u64::try_from(s.until_ms - now).unwrap_or(0));
                        [
                            s.id.to_string(),
                            s.monitor.clone(),
                            super::when::local(s.until_ms),
                            crate::events::humanize(left),
                            s.reason.clone(),
                        ]
                    })
                    .collect();
                let (header, lines) =
                    super::table::layout(["ID", "MONITOR", "UNTIL", "LEFT", "REASON"], &rows);
                println!("{header}");
                for l in lines {
                    println!("{l}");
                }
            }
            Ok(SUCCESS)
        }
        SilenceAction::Remove { id, place } => {
            match open(&place)?.remove(id).map_err(|e| e.to_string())? {
                Some(s) => {
                    println!("removed {}", describe(&s));
                    Ok(SUCCESS)
                }
                None => {
                    eprintln!("portwarden silence: no silence {id}");
                    Ok(FAILURE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_names_star_or_prefixes() {
        assert!(valid_pattern("web").is_ok());
        assert!(valid_pattern("*").is_ok());
        assert!(valid_pattern("web-*").is_ok());
        assert!(valid_pattern("w*b").is_err());
        assert!(valid_pattern("").is_err());
    }

    #[test]
    fn durations_must_be_positive() {
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
