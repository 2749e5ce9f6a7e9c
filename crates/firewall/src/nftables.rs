//! nftables: read `nft -j list ruleset`, restore managed tables with one atomic `nft -f`.

use serde::{Deserialize, Serialize};

use crate::baseline::Restore;
use crate::exec::Runner;
use crate::model::{BackendKind, State};
use crate::Error;

/// The managed tables of a baseline, as `nft -f` text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    pub tables: Vec<String>,
}

pub async fn inspect(_runner: &Runner, _tables: Option<&[String]>) -> Result<State, Error> {
    Err(unsupported())
}

pub async fn snapshot(
    _runner: &Runner,
    _tables: Option<&[String]>,
) -> Result<(State, Restore), Error> {
    Err(unsupported())
}

pub async fn restore(_runner: &Runner, _payload: &Payload) -> Result<(), Error> {
    Err(unsupported())
}

fn unsupported() -> Error {
    Error::Unsupported {
        backend: BackendKind::Nftables,
        what: "this build".into(),
    }
}
