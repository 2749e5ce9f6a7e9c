//! `portwarden status`: ask the running daemon and print its monitors.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstream::println;
use anstyle::AnsiColor;
use clap::Args;
use serde_json::Value;

use super::client::{load_config, AskError, Client};
use super::{FAILURE, SUCCESS, USAGE};

/// `status`: the daemon could not be asked (nothing answers, or not with its monitors).
pub const NO_ANSWER: i32 = 3;

/// Show the state of the running daemon's monitors.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit codes: 0 no monitor is DOWN (all ok, warning, flapping, paused or unknown), \
                  1 at least one monitor is DOWN, 2 usage or config error, 3 the daemon cannot \
                  be reached or did not answer with its monitors."
)]
pub struct StatusCommand {
    /// Config file or directory the daemon runs with: its `[daemon] listen` and API token
    /// (default: /etc/portwarden/portwarden.toml when it exists, else 127.0.0.1:9898).
    #[arg(short = 'c', long = "config", value_name = "FILE|DIR")]
    config: Option<PathBuf>,
    /// The daemon's API address, over the config's `listen` (e.g. 127.0.0.1:9898,
    /// localhost:9898).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Print the daemon's JSON.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when no monitor is down, 1 when one is, 2 on a usage or config error, 3 when
/// the daemon cannot be asked.
pub fn run(cmd: StatusCommand) -> i32 {
    let client = match load_config(cmd.config.as_deref()).and_then(|c| {
        Client::new(
            c.as_ref().map(|(_, c)| c),
            cmd.listen.as_deref(),
            Duration::from_secs(5),
        )
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portwarden status: {e}");
            return USAGE;
        }
    };
    let monitors = match client.get("/api/v1/monitors") {
        Ok(v) => v,
        Err(e @ (AskError::Unreachable(_) | AskError::BadAnswer(_))) => {
            eprintln!("portwarden status: {e}");
            return NO_ANSWER;
        }
    };
    let list = monitors.as_array().cloned().unwrap_or_default();
    let down = list.iter().filter(|m| m["status"] == "down").count();
    if cmd.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&monitors).unwrap_or_default()
        );
    } else {
        print_table(&list);
        // Older daemons have no firewall guard: then there is no line.
        if let Ok(guard) = client.get("/api/v1/firewall") {
            print_firewall(&guard);
        }
    }
    if down > 0 {
        FAILURE
    } else {
        SUCCESS
    }
}

fn ago(ms: &Value) -> String {
    let Some(ms) = ms.as_u64() else {
        return "-".into();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let secs = now.saturating_sub(ms) / 1000;
    format!("{} ago", crate::events::humanize(Duration::from_secs(secs)))
}

fn print_table(list: &[Value]) {
    let header = anstyle::Style::new().bold();
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|m| {
            let last = &m["last_check"];
            let detail = if last.is_null() {
                "not checked yet".to_string()
            } else if m["status"] == "ok" {
                format!("{:.1} ms", last["duration"].as_f64().unwrap_or(0.0) * 1e3)
            } else {
                last["message"].as_str().unwrap_or_default().to_string()
            };
            let uptime = m["uptime_24h"]
                .as_f64()
                .map_or("-".to_string(), |u| format!("{:.2}%", u * 100.0));
            [
                m["name"].as_str().unwrap_or_default().to_string(),
                m["status"].as_str().unwrap_or_default().to_uppercase(),
                ago(&m["status_since"]),
                m["target"].as_str().unwrap_or_default().to_string(),
                uptime,
                detail,
            ]
        })
        .collect();
    let titles = [
        "MONITOR",
        "STATE",
        "SINCE",
        "TARGET",
        "UPTIME 24H",
        "LAST CHECK",
    ];
    let (head, lines) = super::table::layout(titles, &rows);
    println!("{header}{head}{header:#}");
    for (r, text) in rows.iter().zip(&lines) {
        let style = match r[1].as_str() {
            "DOWN" | "FLAPPING" => AnsiColor::Red.on_default().bold(),
            "WARNING" | "UNKNOWN" => AnsiColor::Yellow.on_default(),
            "PAUSED" => AnsiColor::BrightBlack.on_default(),
            _ => AnsiColor::Green.on_default(),
        };
        println!("{style}{text}{style:#}");
    }
    let down = rows.iter().filter(|r| r[1] == "DOWN").count();
    println!();
    println!("{} monitor(s), {down} down", rows.len());
}

/// One line for the firewall guard: backend, state, and what is wrong.
fn print_firewall(g: &Value) {
    let state = g["state"].as_str().unwrap_or("unknown");
    let backend = g["backend"].as_str().unwrap_or("no backend");
    let (style, detail) = match state {
        "ok" => (AnsiColor::Green.on_default(), String::new()),
        "off" => (AnsiColor::BrightBlack.on_default(), " (guard off)".into()),
        "starting" => (AnsiColor::Yellow.on_default(), String::new()),
        "unreadable" => (
            AnsiColor::Red.on_default().bold(),
            format!(": {}", g["error"].as_str().unwrap_or_default()),
        ),
        _ => (
            AnsiColor::Red.on_default().bold(),
            format!(
                ": {}",
                g["violations"]
                    .as_array()
                    .map(|v| v
                        .iter()
                        .filter_map(|v| v["message"].as_str())
                        .collect::<Vec<_>>()
                        .join("; "))
                    .unwrap_or_default()
            ),
        ),
    };
    let checked = if g["checked_at"].is_null() {
        String::new()
    } else {
        format!(", checked {}", ago(&g["checked_at"]))
    };
    // The guard's maintenance pause, as a date and the time left.
    let paused = match g["paused_until"].as_i64() {
        Some(secs) => format!(
            ", repairs paused until {}",
            super::when::until(
                secs.saturating_mul(1000),
                crate::notify::items::unix_ms(SystemTime::now())
            )
        ),
        None => String::new(),
    };
    println!(
        "firewall: {backend} {style}{}{style:#}{detail}{checked}{paused}",
        state.to_uppercase()
    );
}
