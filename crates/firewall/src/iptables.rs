//! iptables / ip6tables, nf_tables or legacy backend: `*-save` to read, `*-restore` to restore.

use serde::{Deserialize, Serialize};

use crate::baseline::Restore;
use crate::exec::Runner;
use crate::model::{BackendKind, State};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Nft,
    Legacy,
}

/// `iptables-save` / `ip6tables-save` output as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub v4: Option<String>,
    pub v6: Option<String>,
}

pub async fn inspect(_runner: &Runner, _variant: Variant) -> Result<State, Error> {
    Err(unsupported())
}

pub async fn snapshot(_runner: &Runner, _variant: Variant) -> Result<(State, Restore), Error> {
    Err(unsupported())
}

pub async fn restore(_runner: &Runner, _variant: Variant, _payload: &Payload) -> Result<(), Error> {
    Err(unsupported())
}

fn unsupported() -> Error {
    Error::Unsupported {
        backend: BackendKind::IptablesNft,
        what: "this build".into(),
    }
}
