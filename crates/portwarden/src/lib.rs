//! portwarden as a library: the command line and the daemon, used by the `portwarden` binary
//! (`main.rs` only calls [`cli::run`]), by the fuzz targets (`fuzz/`) and by tests.
//!
//! Data flow of the daemon (`portwarden run`): [`config`] (or [`discover`] in zero-config
//! mode) builds [`monitor`]s; the [`schedule`]r runs their probes and owner checks
//! ([`ownership`]); the [`state`] machine turns results into transitions; [`events`] carries
//! them to every consumer: [`store`] keeps history, [`notify`] tells people (through a durable
//! outbox), [`heal`] repairs; [`watch`] notices listener changes, [`guard`] keeps the host
//! firewall on and as it was; [`api`] (the HTTP API, the dashboard, `/metrics` and `/probe`)
//! shows it all. [`daemon`] wires them together; [`cli`] decides exit codes.

mod api;
pub mod cli;
mod config;
mod daemon;
mod discover;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod guard;
mod heal;
mod monitor;
mod notify;
mod ownership;
mod schedule;
mod state;
mod store;
mod watch;
