//! `portwarden status`: ask the running daemon and print its monitors.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anstream::println;
use anstyle::AnsiColor;
use clap::Args;
use serde_json::Value;

use super::{FAILURE, SUCCESS};
use crate::daemon::DEFAULT_LISTEN;

/// Show the state of the running daemon's monitors.
#[derive(Debug, Args)]
pub struct StatusCommand {
    /// The daemon's API address.
    #[arg(long, default_value = DEFAULT_LISTEN, value_name = "ADDR")]
    listen: String,
    /// Print the daemon's JSON.
    #[arg(long)]
    json: bool,
}

fn get(url: &str) -> Result<Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .map_err(|e| format!("cannot reach the daemon at {url}: {e}"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("reading {url}: {e}"))?;
    serde_json::from_str(&body).map_err(|e| format!("{url} did not answer JSON: {e}"))
}

/// Exit 0 when every monitor is up, 1 when one is down (or the daemon cannot be reached).
pub fn run(cmd: StatusCommand) -> i32 {
    let url = format!("http://{}/api/v1/monitors", cmd.listen);
    let monitors = match get(&url) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("portwarden status: {e}");
            return FAILURE;
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
        if let Ok(guard) = get(&format!("http://{}/api/v1/firewall", cmd.listen)) {
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
    println!(
        "firewall: {backend} {style}{}{style:#}{detail}{checked}",
        state.to_uppercase()
    );
}
