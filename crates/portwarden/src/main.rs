//! The `portwarden` binary: wires the library crates into a command line (and, as the
//! issues land, the daemon). Exit codes are decided in one place, [`cli::run`].

mod api;
mod cli;
#[allow(dead_code)] // the daemon reads what `config check` does not
mod config;
#[allow(dead_code)]
mod daemon;
#[allow(dead_code)]
mod discover;
#[allow(dead_code)]
mod events;
#[allow(dead_code)] // used by the daemon, arriving piece by piece
mod monitor;
mod ownership;
#[allow(dead_code)]
mod schedule;
#[allow(dead_code)]
mod state;
#[allow(dead_code)]
mod store;
#[allow(dead_code)]
mod watch;

fn main() {
    let code = cli::run(std::env::args_os().collect());
    std::process::exit(code);
}
