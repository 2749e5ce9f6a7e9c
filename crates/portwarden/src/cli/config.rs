//! `portwarden config check|example`: validate a config (every problem at once, with file,
//! line and column) or print the commented example.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::config;

/// Validate the config or print an example.
#[derive(Debug, Args)]
pub struct ConfigCommand {
    #[command(subcommand)]
    action: ConfigAction,
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Check the config: prints "config OK: N monitors", or every problem with its file,
    /// line and column (exit code 2).
    Check {
        /// Config file, or a directory of *.toml files merged in name order (default:
        /// /etc/portwarden/portwarden.toml; when that does not exist, the built-in
        /// zero-config default is what runs, and it is valid).
        #[arg(short = 'c', long = "config", value_name = "FILE|DIR")]
        config: Option<PathBuf>,
    },
    /// Print a commented example config that shows every option.
    Example,
}

/// Runs the command; returns the exit code.
pub fn run(cmd: ConfigCommand) -> i32 {
    match cmd.action {
        ConfigAction::Check { config: None } if !Path::new(config::DEFAULT_PATH).exists() => {
            println!(
                "config OK: no config at {}, so `portwarden run` uses the built-in zero-config \
                 default (watch this host's listeners and its firewall, API on {}), which is valid",
                config::DEFAULT_PATH,
                crate::daemon::DEFAULT_LISTEN
            );
            super::SUCCESS
        }
        ConfigAction::Check { config } => {
            check(&config.unwrap_or_else(|| config::DEFAULT_PATH.into()))
        }
        ConfigAction::Example => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(config::example().as_bytes());
            super::SUCCESS
        }
    }
}

/// `config check` of the config at `path`.
fn check(path: &Path) -> i32 {
    match config::load(path) {
        Ok(c) => {
            // What `run` also needs at start, so that both give the same verdict.
            let start = startup_problems(&c.daemon);
            if !start.is_empty() {
                for p in &start {
                    eprintln!("{}: {p}", path.display());
                }
                let n = start.len();
                eprintln!(
                    "config check failed: {n} problem{}",
                    if n == 1 { "" } else { "s" }
                );
                return super::USAGE;
            }
            let n = c.monitors.len();
            println!("config OK: {n} monitor{}", if n == 1 { "" } else { "s" });
            super::SUCCESS
        }
        Err(errors) => {
            for p in errors.problems() {
                eprintln!("{p}");
            }
            let n = errors.len();
            eprintln!(
                "config check failed: {n} problem{}",
                if n == 1 { "" } else { "s" }
            );
            super::USAGE
        }
    }
}

/// What the daemon reads at start beyond the config and refuses to start without: the API
/// token (`api_token_env` / `api_token_file`) and the HTTPS certificate and key.
fn startup_problems(daemon: &config::DaemonSettings) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = crate::api::auth::ApiAuth::load(daemon.api_token.as_ref(), daemon.read_token) {
        problems.push(format!("{e:#}"));
    }
    if let Some((cert, key)) = &daemon.tls {
        if let Err(e) = crate::api::tls::server_config(cert, key) {
            problems.push(format!("{e:#}"));
        }
    }
    problems
}
