//! portwarden's firewall backends. Each backend is a module of pure parsers (tested on recorded
//! output) plus the commands it runs through [`exec::Runner`]; [`Firewall`] picks one and gives
//! the guard a single interface: inspect, snapshot, enable, restore.
//!
//! Linux backends shell out to the administrator's own tools (`nft`, `iptables-save`, `ufw`,
//! `firewall-cmd`): same semantics the administrator sees, atomic `-f`/`-restore`, and every
//! call testable inside a network namespace.
//!
//! Its log lines keep the targets they had before the package was renamed `portwarden-firewall`
//! (`firewall::iptables`, `firewall::firewalld`), so log text and `PORTWARDEN_LOG` filters are as
//! before.

pub mod baseline;
pub mod check;
pub mod detect;
pub mod diff;
pub mod exec;
pub mod firewalld;
#[doc(hidden)]
pub mod fuzzing;
pub mod iptables;
pub mod macos;
pub mod model;
pub mod nftables;
pub mod rulespec;
pub mod ufw;
pub mod windows;

use std::time::{SystemTime, UNIX_EPOCH};

pub use baseline::{Baseline, Restore};
pub use check::{assess, drift, Assessment, Policy, Requirement, Violation, ViolationKind};
pub use diff::Drift;
pub use exec::{Command, ExecError, Output, Runner};
pub use model::{BackendKind, Family, InboundDefault, Rule, SimpleRule, State, Verdict};
pub use rulespec::RequiredRule;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("`{command}` failed: {message}")]
    Failed { command: String, message: String },
    /// A tool printed something portwarden cannot read. Never treated as "all good".
    #[error("{source_name} could not be read: {detail}")]
    Malformed { source_name: String, detail: String },
    #[error("{backend}: {what} is not supported")]
    Unsupported { backend: BackendKind, what: String },
    #[error("baseline {path}: {message}")]
    Baseline { path: String, message: String },
    #[error("the baseline was saved from {baseline}, but this host's firewall is {current}")]
    BackendMismatch {
        baseline: BackendKind,
        current: BackendKind,
    },
    #[error("no firewall found: {0}")]
    NotDetected(String),
}

impl Error {
    pub fn malformed(source_name: &str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            source_name: source_name.to_string(),
            detail: detail.into(),
        }
    }
}

/// One firewall backend on this host, ready to be inspected and repaired.
#[derive(Debug, Clone)]
pub struct Firewall {
    pub kind: BackendKind,
    pub runner: Runner,
    /// nftables only: the tables portwarden manages (`inet filter`); `None` means every native
    /// table (tables written by iptables-nft are the iptables backend's).
    pub tables: Option<Vec<String>>,
}

impl Firewall {
    pub fn new(kind: BackendKind, runner: Runner) -> Self {
        Self {
            kind,
            runner,
            tables: None,
        }
    }

    /// Manage only these nftables tables from now on (from the baseline or the config).
    pub fn with_tables(mut self, tables: Option<Vec<String>>) -> Self {
        self.tables = tables;
        self
    }

    /// Reads the firewall's current state. Read-only: never creates a table.
    pub async fn inspect(&self) -> Result<State, Error> {
        let r = &self.runner;
        match self.kind {
            BackendKind::Nftables => nftables::inspect(r, self.tables.as_deref()).await,
            BackendKind::IptablesNft => iptables::inspect(r, iptables::Variant::Nft).await,
            BackendKind::IptablesLegacy => iptables::inspect(r, iptables::Variant::Legacy).await,
            BackendKind::Ufw => ufw::inspect(r).await,
            BackendKind::Firewalld => firewalld::inspect(r).await,
            BackendKind::Windows => windows::inspect(r).await,
            BackendKind::Pf => macos::inspect_pf(r).await,
            BackendKind::MacAppFirewall => macos::inspect_app_firewall(r).await,
        }
    }

    /// Takes a baseline of the current ruleset.
    pub async fn snapshot(&self, host: &str) -> Result<Baseline, Error> {
        let r = &self.runner;
        let (state, restore) = match self.kind {
            BackendKind::Nftables => nftables::snapshot(r, self.tables.as_deref()).await?,
            BackendKind::IptablesNft => iptables::snapshot(r, iptables::Variant::Nft).await?,
            BackendKind::IptablesLegacy => iptables::snapshot(r, iptables::Variant::Legacy).await?,
            _ => (self.inspect().await?, self.default_restore()),
        };
        Ok(Baseline {
            format: baseline::FORMAT,
            backend: self.kind,
            saved_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            host: host.to_string(),
            inbound: state.inbound,
            rules: state.rules,
            restore,
        })
    }

    fn default_restore(&self) -> Restore {
        match self.kind {
            BackendKind::Ufw | BackendKind::Firewalld => Restore::Frontend,
            _ => Restore::Enable,
        }
    }

    /// Switches the firewall back on with the backend's own means (`ufw --force enable`,
    /// firewalld reload, `pfctl -E`, enabling Windows profiles). Raw nftables and iptables have
    /// no "on" switch: for them this needs a baseline and is [`Firewall::restore`].
    pub async fn enable(&self) -> Result<(), Error> {
        let r = &self.runner;
        match self.kind {
            BackendKind::Ufw => ufw::enable(r).await,
            BackendKind::Firewalld => firewalld::enable(r).await,
            BackendKind::Windows => windows::enable(r).await,
            BackendKind::Pf => macos::enable_pf(r).await,
            BackendKind::MacAppFirewall => macos::enable_app_firewall(r).await,
            kind @ (BackendKind::Nftables
            | BackendKind::IptablesNft
            | BackendKind::IptablesLegacy) => Err(Error::Unsupported {
                backend: kind,
                what: "enabling without a baseline (save one with `portwarden firewall baseline save`)"
                    .to_string(),
            }),
        }
    }

    /// Puts the baseline back atomically, leaving tables of other tools alone.
    pub async fn restore(&self, baseline: &Baseline) -> Result<(), Error> {
        if baseline.backend != self.kind {
            return Err(Error::BackendMismatch {
                baseline: baseline.backend,
                current: self.kind,
            });
        }
        let r = &self.runner;
        match (&baseline.restore, self.kind) {
            (Restore::Nftables(payload), _) => nftables::restore(r, payload).await,
            (Restore::Iptables(payload), BackendKind::IptablesLegacy) => {
                iptables::restore(r, iptables::Variant::Legacy, payload).await
            }
            (Restore::Iptables(payload), _) => {
                iptables::restore(r, iptables::Variant::Nft, payload).await
            }
            (Restore::Frontend | Restore::Enable, _) => self.enable().await,
        }
    }
}
