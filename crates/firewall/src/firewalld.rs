//! firewalld backend.

use crate::exec::Runner;
use crate::model::{BackendKind, State};
use crate::Error;

pub async fn inspect(_runner: &Runner) -> Result<State, Error> {
    Err(unsupported())
}

pub async fn enable(_runner: &Runner) -> Result<(), Error> {
    Err(unsupported())
}

fn unsupported() -> Error {
    Error::Unsupported {
        backend: BackendKind::Nftables,
        what: "this build".into(),
    }
}
