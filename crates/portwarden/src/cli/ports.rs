//! `portwarden ports`: the listening sockets of this host and who holds them; snapshots of
//! them and the drift since one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anstream::println;
use anstyle::{AnsiColor, Style};
use clap::{Args, Subcommand};
use portwarden_sockets::inventory::{self, Drift, Entry, Snapshot};
use portwarden_sockets::owner::ExpectedOwner;
use portwarden_sockets::{ListOptions, Listener, Listing, Protocol};

use super::{FAILURE, SUCCESS};

/// Show listening sockets and their owning processes.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PortsCommand {
    #[command(subcommand)]
    action: Option<PortsAction>,
    #[command(flatten)]
    filter: Filter,
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum PortsAction {
    /// Save the current listeners to FILE (the declared inventory).
    Snapshot {
        file: PathBuf,
        /// Include bound UDP sockets.
        #[arg(long)]
        udp: bool,
    },
    /// Compare the current listeners with a snapshot; exit 1 when something changed.
    Diff {
        file: PathBuf,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct Filter {
    /// Only these ports (repeatable).
    #[arg(long, short = 'p')]
    port: Vec<u16>,
    /// Only sockets held by this process (name, exe path, or unit:NAME).
    #[arg(long, value_parser = ExpectedOwner::parse)]
    process: Option<ExpectedOwner>,
    /// Only sockets of this systemd unit (`.service` may be left out).
    #[arg(long)]
    unit: Option<String>,
    /// Include bound UDP sockets.
    #[arg(long)]
    udp: bool,
}

pub fn run(cmd: PortsCommand) -> i32 {
    match cmd.action {
        None => list(&cmd.filter, cmd.json),
        Some(PortsAction::Snapshot { file, udp }) => snapshot(&file, udp),
        Some(PortsAction::Diff { file, json }) => diff(&file, json),
    }
}

fn read_listing(udp: bool) -> Result<Listing, i32> {
    portwarden_sockets::list(ListOptions { udp }).map_err(|e| {
        eprintln!("portwarden ports: {e}");
        FAILURE
    })
}

fn list(filter: &Filter, json: bool) -> i32 {
    let mut listing = match read_listing(filter.udp) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let unit = filter.unit.as_ref().map(|u| {
        if u.contains('.') {
            u.clone()
        } else {
            format!("{u}.service")
        }
    });
    listing.listeners.retain(|l| {
        (filter.port.is_empty() || filter.port.contains(&l.port()))
            && filter
                .process
                .as_ref()
                .is_none_or(|p| l.owners.iter().any(|o| p.matches(o)))
            && unit.as_ref().is_none_or(|u| {
                l.owners
                    .iter()
                    .any(|o| o.unit.as_deref() == Some(u.as_str()))
            })
    });
    if json {
        return print_json(&listing);
    }
    print_table(&listing);
    SUCCESS
}

fn print_json<T: serde::Serialize>(value: &T) -> i32 {
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer_pretty(&mut out, value) {
        Ok(()) => {
            let _ = writeln!(out);
            SUCCESS
        }
        Err(e) => {
            eprintln!("portwarden: cannot write JSON: {e}");
            FAILURE
        }
    }
}

/// One row: a port held by one set of processes, on one or more addresses.
struct Row<'a> {
    protocol: Protocol,
    port: u16,
    addresses: Vec<String>,
    sample: &'a Listener,
    sockets: usize,
}

fn rows(listing: &Listing) -> Vec<Row<'_>> {
    let mut grouped: BTreeMap<(Protocol, u16, Vec<u32>), Row<'_>> = BTreeMap::new();
    for l in &listing.listeners {
        let pids: Vec<u32> = l.owners.iter().map(|o| o.pid).collect();
        let row = grouped
            .entry((l.protocol, l.port(), pids))
            .or_insert_with(|| Row {
                protocol: l.protocol,
                port: l.port(),
                addresses: Vec::new(),
                sample: l,
                sockets: 0,
            });
        row.sockets += 1;
        let addr = match l.local.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        if !row.addresses.contains(&addr) {
            row.addresses.push(addr);
        }
    }
    grouped.into_values().collect()
}

fn owners_text(l: &Listener) -> String {
    if l.owners.is_empty() {
        return "unknown owner".into();
    }
    let mut by_name: Vec<(String, Vec<String>)> = Vec::new();
    for o in &l.owners {
        match by_name.iter_mut().find(|(n, _)| *n == o.name) {
            Some((_, pids)) => pids.push(o.pid.to_string()),
            None => by_name.push((o.name.clone(), vec![o.pid.to_string()])),
        }
    }
    by_name
        .into_iter()
        .map(|(name, pids)| format!("{name} ({})", pids.join(",")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_table(listing: &Listing) {
    let header = Style::new().bold();
    let warn = AnsiColor::Yellow.on_default();
    let rows = rows(listing);
    let table: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let first = r.sample.owners.first();
            [
                r.protocol.to_string(),
                r.port.to_string(),
                r.addresses.join(", "),
                owners_text(r.sample),
                first
                    .and_then(|o| o.user.clone())
                    .unwrap_or_else(|| "-".into()),
                first
                    .and_then(|o| o.unit.clone())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let titles = ["PROTO", "PORT", "ADDRESS", "PROCESS (PID)", "USER", "UNIT"];
    let (head, lines) = super::table::layout(titles, &table);
    println!("{header}{head}{header:#}");
    for (text, r) in lines.iter().zip(&rows) {
        if r.sample.owner_unknown() {
            println!("{warn}{text}{warn:#}");
        } else {
            println!("{text}");
        }
    }
    let sockets: usize = rows.iter().map(|r| r.sockets).sum();
    println!();
    println!(
        "{} listening socket(s) on {} port(s), in this network namespace only.",
        sockets,
        rows.iter()
            .map(|r| (r.protocol, r.port))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    let unknown = listing
        .listeners
        .iter()
        .filter(|l| l.owner_unknown())
        .count();
    if listing.owners_incomplete() {
        println!(
            "{warn}{} process(es) could not be inspected: run as root to see every owner.{warn:#}",
            listing.unreadable_processes
        );
    } else if unknown > 0 {
        println!(
            "{warn}{unknown} socket(s) have no visible owner: held by a process in another PID \
             namespace (a container), or by the kernel.{warn:#}"
        );
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn snapshot(file: &PathBuf, udp: bool) -> i32 {
    let listing = match read_listing(udp) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let snap = Snapshot::capture(&listing, now_unix());
    let text = match serde_json::to_string_pretty(&snap) {
        Ok(t) => t + "\n",
        Err(e) => {
            eprintln!("portwarden ports snapshot: {e}");
            return FAILURE;
        }
    };
    // The parent is created as `firewall baseline save` creates its own: the documented
    // `/etc/portwarden/ports.json` must work on a host where nothing made `/etc/portwarden` yet.
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!(
                "portwarden ports snapshot: cannot create the directory {} for {}: {e}",
                dir.display(),
                file.display()
            );
            return FAILURE;
        }
    }
    // Write beside the target and rename, so a crash never leaves half a snapshot.
    let tmp = file.with_extension("tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        eprintln!(
            "portwarden ports snapshot: cannot write {}: {e}",
            file.display()
        );
        return FAILURE;
    }
    println!(
        "saved {} listener(s) to {}",
        snap.listeners.len(),
        file.display()
    );
    if listing.owners_incomplete() {
        eprintln!("note: some owners could not be read; run as root for a complete inventory");
    }
    SUCCESS
}

fn diff(file: &std::path::Path, json: bool) -> i32 {
    let snap = match crate::config::files::read_bounded(file, crate::config::files::CONFIG_LIMIT)
        .map_err(|e| e.to_string())
        .and_then(|t| Snapshot::parse(&t))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("portwarden ports diff: {}: {e}", file.display());
            return super::USAGE;
        }
    };
    let udp = snap.listeners.iter().any(|e| e.protocol == Protocol::Udp);
    let listing = match read_listing(udp) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let drift = inventory::diff(&snap, &listing);
    if json {
        let code = print_json(&drift);
        if code != SUCCESS {
            return code;
        }
    } else {
        print_drift(&drift);
    }
    if drift.is_empty() {
        SUCCESS
    } else {
        FAILURE
    }
}

fn entry_text(e: &Entry) -> String {
    let owners: Vec<String> = e
        .owners
        .iter()
        .map(|o| match &o.unit {
            Some(u) => format!("{} [{u}]", o.name),
            None => o.name.clone(),
        })
        .collect();
    let owners = if owners.is_empty() {
        "unknown owner".to_string()
    } else {
        owners.join(", ")
    };
    format!("{} {} ({owners})", e.protocol, e.local)
}

fn print_drift(drift: &Drift) {
    if drift.is_empty() {
        println!("no drift: the listeners match the snapshot");
        return;
    }
    let added = AnsiColor::Red.on_default().bold();
    let gone = AnsiColor::Yellow.on_default();
    for e in &drift.appeared {
        println!("{added}+ new      {}{added:#}", entry_text(e));
    }
    for e in &drift.vanished {
        println!("{gone}- vanished {}{gone:#}", entry_text(e));
    }
    for c in &drift.owner_changed {
        let names = |set: &std::collections::BTreeSet<inventory::Identity>| {
            set.iter()
                .map(|i| i.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "{added}~ owner    {} {}: {} -> {}{added:#}",
            c.protocol,
            c.local,
            names(&c.before),
            names(&c.after)
        );
    }
}
