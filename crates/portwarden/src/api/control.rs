//! The API's mutations. Every one needs `Authorization: Bearer <token>` (`auth.rs`); with
//! no token configured they answer 403 and say how to configure one.
//!
//! `POST /api/v1/monitors/{name}/run|pause|resume` hand the command to the scheduler (202);
//! `POST /api/v1/monitors/{name}/acknowledge` clears the healing engine's `needs_attention`
//! for the current give-up; `POST /api/v1/silences` and `DELETE /api/v1/silences/{id}` write
//! the database the way `portwarden silence add|remove` do.

use std::time::SystemTime;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState, ErrorBody};
use crate::schedule::Control;
use crate::store::{Silence, SilenceFile};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/monitors/{name}/run", post(run_now))
        .route("/api/v1/monitors/{name}/pause", post(pause))
        .route("/api/v1/monitors/{name}/resume", post(resume))
        .route("/api/v1/monitors/{name}/acknowledge", post(acknowledge))
        .route("/api/v1/silences", post(add_silence))
        .route("/api/v1/silences/{id}", delete(remove_silence))
}

/// A command handed to the scheduler.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Accepted {
    pub monitor: String,
    /// `run`, `pause` or `resume`.
    pub command: &'static str,
}

fn control(s: &ApiState, name: String, command: Control, word: &'static str) -> Response {
    if s.scheduler.control(&name, command) {
        (
            StatusCode::ACCEPTED,
            Json(Accepted {
                monitor: name,
                command: word,
            }),
        )
            .into_response()
    } else {
        ApiError::NotFound(format!("no monitor named {name:?}")).into_response()
    }
}

/// Checks the monitor now (the result shows in `GET /api/v1/monitors/{name}` and the events).
#[utoipa::path(post, path = "/api/v1/monitors/{name}/run", tag = "monitors",
    params(("name" = String, Path, description = "The monitor's name")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "A check starts now", body = Accepted),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "No token configured", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
    ))]
pub(crate) async fn run_now(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    control(&s, name, Control::RunNow, "run")
}

/// Stops the monitor's checks until resumed (its state becomes `paused`).
#[utoipa::path(post, path = "/api/v1/monitors/{name}/pause", tag = "monitors",
    params(("name" = String, Path, description = "The monitor's name")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Pausing", body = Accepted),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "No token configured", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
    ))]
pub(crate) async fn pause(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    control(&s, name, Control::Pause, "pause")
}

/// Starts a paused monitor's checks again.
#[utoipa::path(post, path = "/api/v1/monitors/{name}/resume", tag = "monitors",
    params(("name" = String, Path, description = "The monitor's name")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Resuming", body = Accepted),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "No token configured", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
    ))]
pub(crate) async fn resume(State(s): State<ApiState>, Path(name): Path<String>) -> Response {
    control(&s, name, Control::Resume, "resume")
}

/// What an acknowledgement did.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Acknowledged {
    pub monitor: String,
    /// The healing state after it; null for a monitor the engine never acted on.
    pub healing: Option<crate::heal::Healing>,
}

/// A person looked: clears `needs_attention` for the current give-up of self-healing (further
/// DOWNs of this incident do not raise it again; a recovery ends the incident).
#[utoipa::path(post, path = "/api/v1/monitors/{name}/acknowledge", tag = "healing",
    params(("name" = String, Path, description = "The monitor's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Acknowledged", body = Acknowledged),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "No token configured", body = ErrorBody),
        (status = 404, description = "No such monitor", body = ErrorBody),
    ))]
pub(crate) async fn acknowledge(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Acknowledged>, ApiError> {
    if s.scheduler.view(&name).is_none() {
        return Err(ApiError::NotFound(format!("no monitor named {name:?}")));
    }
    let now = crate::notify::items::unix_ms(SystemTime::now());
    let healing = s.healing.acknowledge(&name, now);
    Ok(Json(Acknowledged {
        monitor: name,
        healing,
    }))
}

/// The body of `POST /api/v1/silences`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewSilence {
    /// A monitor name, `*` (everything), or a prefix ending in `*` (`web-*`); `firewall`
    /// silences the firewall guard's messages.
    #[schema(min_length = 1, pattern = r"^(\*|[^*\s][^*]*\*?)$")]
    pub monitor: String,
    /// How long, e.g. `"2h"`, `"30m"`, `"1d"` (any humantime duration longer than zero).
    #[serde(rename = "for")]
    #[schema(pattern = r"^[1-9][0-9]{0,5}(s|m|h|d)$")]
    pub duration: String,
    /// Why (shown in the log line of every held notification); at most 1024 characters.
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub reason: String,
    /// Silence it even though no monitor of that name (or prefix) runs now.
    #[serde(default)]
    pub force: bool,
}

/// Holds notifications about matching monitors for a while (checks go on).
#[utoipa::path(post, path = "/api/v1/silences", tag = "silences",
    request_body = NewSilence,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The silence", body = Silence),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "No token configured", body = ErrorBody),
        (status = 404, description = "No monitor of this daemon matches (without \"force\")", body = ErrorBody),
        (status = 413, description = "Body larger than 16 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "JSON of the wrong shape", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn add_silence(
    State(s): State<ApiState>,
    body: Result<Json<NewSilence>, JsonRejection>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let Json(new) = body.map_err(ApiError::from)?;
    valid_pattern(&new.monitor).map_err(ApiError::BadRequest)?;
    if !new.force {
        let names: Vec<String> = s.scheduler.views().into_iter().map(|v| v.name).collect();
        matches_a_monitor(&new.monitor, &names, "this daemon").map_err(|e| {
            ApiError::NotFound(format!("monitor: {e} (\"force\": true silences it anyway)"))
        })?;
    }
    let duration = match humantime::parse_duration(new.duration.trim()) {
        Ok(d) if d.is_zero() => {
            return Err(ApiError::BadRequest("for: must be longer than zero".into()))
        }
        Ok(d) => d,
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "for: {e} (write e.g. \"2h\" or \"30m\")"
            )))
        }
    };
    if new.reason.chars().count() > 1024 {
        return Err(ApiError::BadRequest(
            "reason: longer than 1024 characters".into(),
        ));
    }
    let db = s.db_path.clone();
    let silence = tokio::task::spawn_blocking(move || {
        let now = crate::notify::items::unix_ms(SystemTime::now());
        let until = now.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX));
        SilenceFile::open(&db)
            .map_err(|e| e.to_string())?
            .add(&new.monitor, until, &new.reason, now)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?
    .map_err(ApiError::Unavailable)?;
    Ok((StatusCode::CREATED, Json(silence)))
}

/// Ends a silence now.
#[utoipa::path(delete, path = "/api/v1/silences/{id}", tag = "silences",
    params(("id" = i64, Path, description = "The silence's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The silence that ended", body = Silence),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 401, description = "No or wrong token", body = ErrorBody),
        (status = 403, description = "No token configured", body = ErrorBody),
        (status = 404, description = "No such silence in force", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn remove_silence(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Silence>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("not a silence id: {id:?}")))?;
    let db = s.db_path.clone();
    let removed = tokio::task::spawn_blocking(move || {
        SilenceFile::open(&db)
            .map_err(|e| e.to_string())?
            .remove(id)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?
    .map_err(ApiError::Unavailable)?;
    removed
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no silence {id} in force")))
}

/// As `portwarden silence add` checks it.
/// A silence must be about something: `*`, `firewall`, a monitor, or a prefix of one. The
/// error names what is missing, where it was looked for (`source`) and the likely typo.
pub(crate) fn matches_a_monitor(
    pattern: &str,
    names: &[String],
    source: &str,
) -> Result<(), String> {
    if pattern == "*" || pattern == "firewall" {
        return Ok(());
    }
    let found = match pattern.strip_suffix('*') {
        Some(prefix) => names.iter().any(|n| n.starts_with(prefix)),
        None => names.iter().any(|n| n == pattern),
    };
    if found {
        return Ok(());
    }
    let word = pattern.trim_end_matches('*');
    let hint = crate::config::suggest(word, names.iter().map(String::as_str))
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default();
    let what = if pattern.ends_with('*') {
        format!("no monitor name starts with {word:?}")
    } else {
        format!("no monitor named {pattern:?}")
    };
    Err(format!("{what} in {source}{hint}"))
}

fn valid_pattern(monitor: &str) -> Result<(), String> {
    let body = monitor.strip_suffix('*').unwrap_or(monitor);
    if monitor.trim().is_empty() {
        return Err("monitor: the monitor name is empty".into());
    }
    if body.contains('*') {
        return Err(format!(
            "monitor: {monitor:?}: `*` may only end the name (`*` or a prefix like `web-*`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_silence_must_match_a_monitor() {
        let names = ["web".to_string(), "web-2".to_string(), "mail".to_string()];
        for ok in ["*", "firewall", "web", "web-*", "ma*"] {
            assert!(matches_a_monitor(ok, &names, "x").is_ok(), "{ok}");
        }
        assert_eq!(
            matches_a_monitor("wbe", &names, "the daemon at 127.0.0.1:9898"),
            Err(
                "no monitor named \"wbe\" in the daemon at 127.0.0.1:9898; did you mean \
                 \"web\"?"
                    .into()
            )
        );
        assert_eq!(
            matches_a_monitor("db-*", &names, "c.toml"),
            Err("no monitor name starts with \"db-\" in c.toml".into())
        );
    }
}
