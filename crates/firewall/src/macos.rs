//! macOS: pf and the application firewall.

use crate::exec::Runner;
use crate::model::{BackendKind, State};
use crate::Error;

pub async fn inspect_pf(_runner: &Runner) -> Result<State, Error> {
    Err(unsupported())
}

pub async fn enable_pf(_runner: &Runner) -> Result<(), Error> {
    Err(unsupported())
}

pub async fn inspect_app_firewall(_runner: &Runner) -> Result<State, Error> {
    Err(unsupported())
}

pub async fn enable_app_firewall(_runner: &Runner) -> Result<(), Error> {
    Err(unsupported())
}

fn unsupported() -> Error {
    Error::Unsupported {
        backend: BackendKind::Pf,
        what: "this build".into(),
    }
}
