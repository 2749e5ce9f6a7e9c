//! portwarden end to end: the real `portwarden` binary (`CARGO_BIN_EXE_portwarden`) against
//! real servers on loopback, real tools (nft, curl, Chromium, Nagios' plugins,
//! blackbox_exporter) and network namespaces of the tests' own. One test binary, as ripgrep
//! has it: the modules share one harness ([`support`]) and one process, so a helper is written
//! once and `cargo test -p portwarden --test e2e MODULE::` runs one area.
//!
//! Sharing a process means: scratch directories and namespaces are named by tag and process
//! id (a tag is used once in the whole binary), ports come from [`support::free_port`] or
//! port 0, and nothing sets the process's environment.

#![expect(
    clippy::unwrap_used,
    reason = "tests and their helpers may unwrap (STYLE.md)"
)]

mod support;

/// The HTTP API against the daemon: tokens, control, silences, errors, events, incidents,
/// listeners, OpenAPI, connection limits.
mod api;
/// `portwarden check tcp` beside Nagios' check_tcp.
mod check_tcp_compat;
/// The commands a newcomer meets first (`status`, `silence add`, `reboot cancel`, …).
mod cli;
/// `portwarden config check|example`.
mod config_cli;
/// The daemon: monitors going down and up, reloads, signals, restarts, zero-config.
mod daemon;
/// The dashboard: its headers and assets, and headless Chromium driving it.
mod dashboard;
/// The README and `docs/*.md`: every ```sh block runs as written.
mod docs_examples;
/// The firewall guard and `portwarden firewall` against real nftables.
mod firewall;
/// Self-healing: killed servers started again by `exec` actions, storms, reboots (dry runs).
mod heal;
/// `/metrics` and `/probe`'s own modules through the daemon; promtool and Prometheus.
mod metrics;
/// Notifications: nothing lost to a dead receiver, a SIGKILL or a full disk; storms grouped.
mod notify;
/// portwarden under a Nagios plugin's name beside the real plugin.
mod plugin_compat;
/// `portwarden ports` and the owner check against real listeners in namespaces.
mod ports_netns;
/// `/probe` beside the real blackbox_exporter.
mod probe_compat;
