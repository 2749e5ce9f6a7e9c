//! portwarden as a library: the command line and the daemon, used by the `portwarden` binary
//! (`main.rs` only calls [`cli::run`]), by the fuzz targets (`fuzz/`) and by tests.
//!
//! Data flow of the daemon (`portwarden run`): [`config`] (or [`discover`] in zero-config
//! mode) builds [`monitor`]s; the [`schedule`]r runs their probes and owner checks
//! ([`ownership`]); the [`state`] machine turns results into transitions; [`events`] carries
//! them to every consumer: [`store`] keeps history, [`notify`] tells people (through a durable
//! outbox), [`heal`] repairs; [`watch`] notices listener changes, [`guard`] keeps the host
//! firewall on and as it was; [`api`] (with `api_*`), [`web`] (the dashboard) and [`metrics`]
//! show it all. [`daemon`] wires them together; [`cli`] decides exit codes.

mod api;
mod api_control;
mod api_events;
mod api_heal;
mod api_incidents;
mod api_listeners;
mod api_notify;
mod api_server;
mod api_tls;
pub mod cli;
mod config;
mod daemon;
mod discover;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod heal;
mod metrics;
mod monitor;
mod notify;
mod ownership;
mod probe_http;
mod schedule;
mod state;
mod store;
mod watch;
mod web;
