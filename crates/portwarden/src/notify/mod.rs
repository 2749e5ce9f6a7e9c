//! Notifications: every failure and recovery reaches the administrators once, on time, and is
//! never lost.
//!
//! Data flow: events from the bus ([`crate::events`]) → [`items`] (an event becomes a
//! `portwarden_notify::Notification` and a list of notifiers: the monitor's `notify`, or
//! `[firewall] notify`) → silences (held, logged) → one outbox row per notifier, committed to
//! the store before anything is sent → [`dispatch`] (one lane per notifier: strict order, one
//! attempt at a time, retries with backoff across restarts, reminders while a monitor stays
//! down) → [`plan`] decides when a lane sends and which rows go together (storm grouping) →
//! the `portwarden-notify` crate's senders. Delivered rows leave the outbox for the delivery log
//! (`GET /api/v1/notifications`).

pub mod dispatch;
pub mod items;
pub mod plan;

#[cfg(test)]
mod tests;

pub use dispatch::{build_notifier, Dispatcher, DispatcherHandle, DispatcherOptions, Settings};
pub use items::{host_name, MonitorInfo};
