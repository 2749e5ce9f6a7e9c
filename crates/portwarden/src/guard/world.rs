//! The guard's firewall on this host: the `portwarden-firewall` crate's backend, run through its
//! command runner (explicit argv, timeouts, capped output).

use std::future::Future;

use portwarden_firewall::{BackendKind, Baseline, State};

use super::engine::Firewall;

/// The host's firewall, as detected or configured.
#[derive(Debug, Clone)]
pub struct HostFirewall(portwarden_firewall::Firewall);

impl HostFirewall {
    pub fn new(firewall: portwarden_firewall::Firewall) -> Self {
        Self(firewall)
    }
}

impl Firewall for HostFirewall {
    fn kind(&self) -> BackendKind {
        self.0.kind
    }

    fn set_tables(&mut self, tables: Option<Vec<String>>) {
        self.0.tables = tables;
    }

    fn inspect(&self) -> impl Future<Output = Result<State, portwarden_firewall::Error>> + Send {
        self.0.inspect()
    }

    fn enable(&self) -> impl Future<Output = Result<(), portwarden_firewall::Error>> + Send {
        self.0.enable()
    }

    fn restore(
        &self,
        baseline: &Baseline,
    ) -> impl Future<Output = Result<(), portwarden_firewall::Error>> + Send {
        self.0.restore(baseline)
    }
}
