//! Joins a probe result with the owner check: "the socket on this port must belong to X".

use probe::{ProbeResult, Reason, State};
use sockets::owner::{self, ExpectedOwner, OwnerVerdict};
use sockets::ListOptions;

/// Checks who holds the port the probe reached and folds the verdict into `result`.
/// A wrong owner explains a wrong banner better than the banner does, so it takes over the
/// message; a probe that never connected keeps its own failure.
pub fn apply(result: &mut ProbeResult, expected: &ExpectedOwner) -> Option<OwnerVerdict> {
    let addr = result.peer?;
    let listing = match sockets::list(ListOptions::default()) {
        Ok(l) => l,
        Err(e) => {
            result.state = result.state.worst(State::Unknown);
            result.reason = Some(Reason::OwnerUnknown);
            result.message = format!("cannot check the owner of port {}: {e}", addr.port());
            return None;
        }
    };
    let verdict = owner::check(&listing, addr, expected);
    let message = verdict.describe(addr, expected);
    match &verdict {
        OwnerVerdict::Ok { .. } => {}
        OwnerVerdict::Wrong { .. } | OwnerVerdict::NotListening => {
            result.state = State::Critical;
            result.reason = Some(Reason::WrongOwner);
            result.message = message;
        }
        OwnerVerdict::Unknown => {
            if result.state == State::Ok {
                result.state = State::Unknown;
                result.reason = Some(Reason::OwnerUnknown);
                result.message = message;
            }
        }
    }
    Some(verdict)
}
