//! `portwarden run`: start the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{FAILURE, SUCCESS};
use crate::daemon::{self, RunOptions};

/// Run the daemon: watch the configured monitors (or, with no config, this host's listeners).
#[derive(Debug, Args)]
pub struct RunCommand {
    /// Config file or directory of *.toml (default: /etc/portwarden/portwarden.toml if it
    /// exists, else the built-in zero-config default).
    #[arg(short = 'c', long = "config", value_name = "FILE|DIR")]
    config: Option<PathBuf>,
    /// Where history is kept (overrides [daemon] state_dir).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// API address (overrides [daemon] listen): IP:PORT or localhost:PORT.
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen)]
    listen: Option<SocketAddr>,
}

pub fn run(cmd: RunCommand) -> i32 {
    if let Err(e) = daemon::files_for_runtime() {
        eprintln!("portwarden: {e}");
        return FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portwarden: cannot start the async runtime: {e}");
            return FAILURE;
        }
    };
    let options = RunOptions {
        config: cmd.config,
        state_dir: cmd.state_dir,
        listen: cmd.listen,
    };
    let result = runtime.block_on(daemon::run(options));
    // A config reload still reading in the blocking pool must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => SUCCESS,
        Err(e) => {
            // Once, on stderr (the journal under systemd): a log line as well said it twice.
            eprintln!("portwarden: {e:#}");
            super::USAGE
        }
    }
}
