//! `portwarden notify test NAME`: builds one notifier from the config and sends it a test
//! notification directly (no outbox, no retries), then prints what the receiver answered.
//!
//! Exit codes: 0 delivered, 1 the send failed, 2 usage or config error (no such notifier,
//! a notifier that cannot be built).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::{Args, Subcommand};

use super::{FAILURE, SUCCESS, USAGE};
use crate::config;
use crate::notify::items::{host_name, single, unix_ms};

/// Notifiers: send a test notification.
#[derive(Debug, Args)]
pub struct NotifyCommand {
    #[command(subcommand)]
    action: NotifyAction,
}

#[derive(Debug, Subcommand)]
enum NotifyAction {
    /// Send a test notification through one notifier and print the receiver's answer.
    Test {
        /// The `name` of a `[[notifier]]`.
        name: String,
        /// Config file or directory (default: /etc/portwarden/portwarden.toml).
        #[arg(short = 'c', long = "config", value_name = "FILE|DIR")]
        config: Option<PathBuf>,
    },
}

/// The test notification: one item of kind `test`, about portwarden itself.
pub fn test_notification(host: &str, at_ms: i64) -> portwarden_notify::Notification {
    let item = portwarden_notify::Item {
        kind: portwarden_notify::Kind::Test,
        subject: "portwarden".into(),
        target: None,
        status: "test".into(),
        reason: None,
        message: format!("test notification from portwarden on {host}"),
        received: None,
        detail: None,
        action: None,
        down_for_secs: None,
        since_ms: None,
        tags: Vec::new(),
        incident: format!("{host}/test"),
    };
    single(host, item, at_ms)
}

/// Runs the command; returns the exit code.
pub fn run(cmd: NotifyCommand) -> i32 {
    let NotifyAction::Test { name, config: path } = cmd.action;
    let path = match path {
        Some(p) => p,
        None if !Path::new(config::DEFAULT_PATH).exists() => {
            eprintln!(
                "portwarden notify test: no config at {}: portwarden runs its zero-config \
                 default, which has no notifiers, so there is no {name:?} to test; add a \
                 [[notifier]] named {name:?} to a config (docs/notifications.md) and run \
                 `portwarden notify test {name} -c FILE`",
                config::DEFAULT_PATH
            );
            return USAGE;
        }
        None => PathBuf::from(config::DEFAULT_PATH),
    };
    let c = match config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            for p in errors.problems() {
                eprintln!("{p}");
            }
            return USAGE;
        }
    };
    let Some(nc) = c.notifiers.iter().find(|n| n.name == name) else {
        let names: Vec<&str> = c.notifiers.iter().map(|n| n.name.as_str()).collect();
        eprintln!(
            "portwarden notify test: no notifier named {name:?} in {}; {}",
            path.display(),
            if names.is_empty() {
                "it defines none".to_string()
            } else {
                format!("it defines: {}", names.join(", "))
            }
        );
        return USAGE;
    };
    let notifier = match portwarden_notify::Notifier::new(&nc.name, nc.spec.clone()) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("portwarden notify test: notifier {name:?}: {e}");
            return USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portwarden: cannot start the async runtime: {e}");
            return FAILURE;
        }
    };
    let host = host_name();
    let n = test_notification(&host, unix_ms(SystemTime::now()));
    match runtime.block_on(notifier.send(&n)) {
        Ok(delivery) => {
            println!("{}", delivery.response);
            SUCCESS
        }
        Err(e) => {
            eprintln!(
                "portwarden notify test: {name} ({}) failed{}: {e}",
                notifier.kind(),
                if e.retryable { "" } else { " permanently" }
            );
            FAILURE
        }
    }
}
