//! Command-line parsing and dispatch.
//!
//! Exit codes: `check` follows the Nagios plugin convention (0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN, usage errors 3); every other command uses 0 success, 1 failure found,
//! 2 usage or config error, and `status` adds 3: the daemon cannot be asked.

mod actions;
mod check;
mod client;
mod config;
mod firewall;
mod nagios;
mod notify;
mod plugin;
mod ports;
mod reboot;
mod run;
mod silence;
mod status;
mod table;
mod when;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

/// Keeps a server's network face healthy: port checks, owners, notifications,
/// self-healing and a firewall guard.
#[derive(Debug, Parser)]
#[command(name = "portwarden", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The self-healing engine's recent actions.
    Actions(actions::ActionsCommand),
    /// One-shot checks with Nagios plugin output and exit codes (check_tcp compatible).
    Check(Box<check::CheckCommand>),
    /// Validate the config (every problem at once, with line and column) or print an example.
    Config(config::ConfigCommand),
    /// The host firewall: state, switch on, baseline save / diff / restore, pause the guard.
    Firewall(firewall::FirewallCommand),
    /// Notifiers: send a test notification.
    Notify(notify::NotifyCommand),
    /// Listening sockets and the processes holding them; snapshots and drift.
    Ports(ports::PortsCommand),
    /// Reboots of the self-healing engine: cancel a pending one.
    Reboot(reboot::RebootCommand),
    /// Run the daemon (with no config: watch this host's listeners).
    Run(run::RunCommand),
    /// Hold notifications about monitors for a while (checks go on).
    Silence(silence::SilenceCommand),
    /// Ask the running daemon for its monitors' state.
    Status(status::StatusCommand),
}

/// Exit code for usage errors of `check` (Nagios UNKNOWN).
const NAGIOS_USAGE: i32 = 3;
/// Every command but `check`: success.
const SUCCESS: i32 = 0;
/// Every command but `check`: a failure was found (or the command failed).
const FAILURE: i32 = 1;
/// Every command but `check`: usage or config error.
const USAGE: i32 = 2;

/// Parses `args` and runs the command; returns the process exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let args = match plugin::invocation(&args) {
        Some((plugin, rest)) => match plugin.run(rest) {
            plugin::Dispatch::Exit(code) => return code,
            plugin::Dispatch::Check(check_argv) => check_argv,
        },
        None => args,
    };
    let is_check = args.get(1).is_some_and(|a| a == "check");
    // `check -c FILE MONITOR` runs a configured monitor; in `check tcp`, -c is check_tcp's
    // critical time, so the two forms are told apart before clap sees them.
    if is_check && args.get(2).is_some_and(|a| a == "-c" || a == "--config") {
        init_logging("warn");
        let rest: Vec<String> = args[3..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return check::run_configured(&rest);
    }
    if is_check {
        return run_check(&args);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let informational = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let _ = e.print();
            return if informational { 0 } else { USAGE };
        }
    };
    // The daemon tells what it does; one-shot commands stay quiet unless asked.
    init_logging(if matches!(cli.command, Command::Run(_)) {
        "info"
    } else {
        "warn"
    });
    match cli.command {
        Command::Actions(cmd) => actions::run(cmd),
        Command::Check(cmd) => check::run(*cmd),
        Command::Config(cmd) => config::run(cmd),
        Command::Firewall(cmd) => firewall::run(cmd),
        Command::Notify(cmd) => notify::run(cmd),
        Command::Ports(cmd) => ports::run(cmd),
        Command::Reboot(cmd) => reboot::run(cmd),
        Command::Run(cmd) => run::run(cmd),
        Command::Silence(cmd) => silence::run(cmd),
        Command::Status(cmd) => status::run(cmd),
    }
}

/// Reads a command line as [`run`] does, up to where something would run: a plugin's
/// options, a check's probe spec, any other command's arguments. Never connects or reads
/// files: the fuzz targets' entry (`crate::fuzzing`). A `check` that would run returns its
/// spec's target as `host:port`.
pub(crate) fn parse_only(args: Vec<OsString>) -> Option<String> {
    let args = match plugin::invocation(&args) {
        Some((plugin, rest)) => plugin.parse_only(rest)?,
        None => args,
    };
    let is_check = args.get(1).is_some_and(|a| a == "check");
    if is_check && args.get(2).is_some_and(|a| a == "-c" || a == "--config") {
        // A configured monitor: the config loader has a fuzz target of its own.
        return None;
    }
    if is_check {
        let Ok(CheckOnly {
            command: OnlyCheck::Check(cmd),
        }) = CheckOnly::try_parse_from(&args)
        else {
            return None;
        };
        let (spec, _report) = check::build(*cmd).ok()?;
        return Some(spec.target.to_string());
    }
    let _ = Cli::try_parse_from(&args);
    None
}

/// Only the `check` command, for [`run_check`].
#[derive(Debug, Parser)]
#[command(name = "portwarden", version)]
struct CheckOnly {
    #[command(subcommand)]
    command: OnlyCheck,
}

#[derive(Debug, Subcommand)]
enum OnlyCheck {
    /// One-shot checks with Nagios plugin output and exit codes (check_tcp compatible).
    Check(Box<check::CheckCommand>),
}

/// `portwarden check PROTOCOL …`: a one-shot check starts as lean as check_tcp. It parses
/// only its own command's definition (not every command's) and sets up logging only when
/// asked (`PORTWARDEN_LOG`) or when it loads the system's roots, whose loading may warn.
fn run_check(args: &[OsString]) -> i32 {
    match CheckOnly::try_parse_from(args) {
        Ok(CheckOnly {
            command: OnlyCheck::Check(cmd),
        }) => {
            if std::env::var_os("PORTWARDEN_LOG").is_some() || cmd.loads_system_roots() {
                init_logging("warn");
            }
            check::run(*cmd)
        }
        Err(e) => {
            let informational = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let _ = e.print();
            if informational {
                0
            } else {
                NAGIOS_USAGE
            }
        }
    }
}

/// Structured logs to stderr; `PORTWARDEN_LOG` (e.g. `debug`) sets the level.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTWARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never in a journal or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A daemon whose stderr reader went away must keep running: tracing's own report of a
        // failed write goes through eprintln!, which panics on a broken pipe.
        .log_internal_errors(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        CheckOnly::command().debug_assert();
    }

    #[test]
    fn check_alone_parses_as_in_the_full_cli() {
        let args: Vec<OsString> = [
            "portwarden",
            "check",
            "tcp",
            "-H",
            "h",
            "-p",
            "1",
            "-c",
            "2",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let full = Cli::try_parse_from(&args).expect("full cli");
        let alone = CheckOnly::try_parse_from(&args).expect("check alone");
        let Command::Check(full) = full.command else {
            panic!("not a check");
        };
        let OnlyCheck::Check(alone) = alone.command;
        assert_eq!(format!("{full:?}"), format!("{alone:?}"));
    }
}
