//! Which firewall this host runs.

use crate::exec::Runner;
use crate::model::BackendKind;
use crate::Error;

/// What detection found: the backend to guard, and every layer seen (several can be active).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detection {
    pub backend: BackendKind,
    pub layers: Vec<BackendKind>,
    pub why: String,
}

pub async fn detect(_runner: &Runner) -> Result<Detection, Error> {
    Err(Error::NotDetected("detection is not built yet".into()))
}
