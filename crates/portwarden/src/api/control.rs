//! The API's mutations and their authentication. Every mutation needs
//! `Authorization: Bearer <token>` (the token from `[daemon] api_token_env` or
//! `api_token_file`, compared in constant time); with no token configured they answer 403 and
//! say how to configure one. With `read_token = true` the reads under `/api/v1/` need it too
//! (`/healthz` and `/api/v1/openapi.json` never do).
//!
//! `POST /api/v1/monitors/{name}/run|pause|resume` hand the command to the scheduler (202);
//! `POST /api/v1/monitors/{name}/acknowledge` clears the healing engine's `needs_attention`
//! for the current give-up; `POST /api/v1/silences` and `DELETE /api/v1/silences/{id}` write
//! the database the way `portwarden silence add|remove` do.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::api::{ApiError, ApiState, ErrorBody};
use crate::config::ApiTokenSource;
use crate::schedule::Control;
use crate::store::{Silence, SilenceFile};

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT: usize = 16 * 1024;

/// Who may do what.
#[derive(Clone, Default)]
pub struct ApiAuth {
    token: Option<Arc<[u8]>>,
    /// Reads need the token too (`[daemon] read_token`).
    pub read_token: bool,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token itself.
        f.debug_struct("ApiAuth")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("read_token", &self.read_token)
            .finish()
    }
}

impl ApiAuth {
    /// Reads the token from its source; an empty or missing one is an error (the daemon
    /// refuses to start rather than run with an API nobody can use as configured).
    pub fn load(source: Option<&ApiTokenSource>, read_token: bool) -> anyhow::Result<Self> {
        let token = match source {
            None => None,
            Some(ApiTokenSource::Env(var)) => {
                let t = std::env::var(var).map_err(|_| {
                    anyhow::anyhow!("[daemon] api_token_env: environment variable {var} is not set")
                })?;
                Some(t)
            }
            Some(ApiTokenSource::File(path)) => {
                let limit = crate::config::files::SECRET_LIMIT;
                let t = crate::config::files::read_bounded(path, limit).map_err(|e| {
                    anyhow::anyhow!(
                        "[daemon] api_token_file: cannot read {}: {e}",
                        path.display()
                    )
                })?;
                Some(t)
            }
        };
        let token = match token.map(|t| t.trim().to_string()) {
            Some(t) if t.is_empty() => anyhow::bail!("[daemon] the API token is empty"),
            Some(t) => Some(Arc::from(t.into_bytes())),
            None => None,
        };
        Ok(Self { token, read_token })
    }

    /// The token as a client sends it (`portwarden status` reading the daemon's config).
    pub fn bearer(&self) -> Option<&str> {
        self.token
            .as_deref()
            .and_then(|t| std::str::from_utf8(t).ok())
    }

    /// Whether the request's `Authorization: Bearer` header carries the token.
    pub fn check(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        if self.token.is_none() {
            return Err(ApiError::Forbidden(
                "no API token is configured: set [daemon] api_token_env (an environment \
                 variable holding the token) or api_token_file (a file holding it) and restart \
                 portwarden"
                    .into(),
            ));
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        match presented {
            Some(t) if self.accepts(t.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::Unauthorized("wrong API token".into())),
            None => Err(ApiError::Unauthorized(
                "send the API token as Authorization: Bearer TOKEN".into(),
            )),
        }
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    fn accepts(&self, presented: &[u8]) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| bool::from(t.as_ref().ct_eq(presented)))
    }
}

/// The middleware: refuses mutations (and, with `read_token`, reads under `/api/v1/` and
/// `/metrics`) without the right bearer token. `/probe` is served outside it and calls
/// [`ApiAuth::check`] itself.
pub async fn authorize(State(s): State<ApiState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    let needs_token = if reading {
        s.auth.read_token
            && ((path.starts_with("/api/v1/") && path != "/api/v1/openapi.json")
                || path == "/metrics")
    } else {
        true
    };
    if !needs_token {
        return next.run(request).await;
    }
    match s.auth.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

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
            ApiError::BadRequest(format!("monitor: {e} (\"force\": true silences it anyway)"))
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

    #[test]
    fn token_compare_needs_the_whole_token() {
        let auth = ApiAuth {
            token: Some(Arc::from(b"s3cret".to_vec())),
            read_token: false,
        };
        assert!(auth.accepts(b"s3cret"));
        assert!(!auth.accepts(b"s3cre"));
        assert!(!auth.accepts(b"s3cret2"));
        assert!(!auth.accepts(b""));
        assert!(!ApiAuth::default().accepts(b""));
    }

    #[test]
    fn a_token_file_that_is_a_device_or_too_large_is_refused() {
        let source = ApiTokenSource::File("/dev/zero".into());
        let e = ApiAuth::load(Some(&source), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[daemon] api_token_file: cannot read /dev/zero: is a character device, not a regular file"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, vec![b'x'; 64 * 1024 + 1]).unwrap();
        let e = ApiAuth::load(Some(&ApiTokenSource::File(path)), false).unwrap_err();
        assert!(
            e.to_string()
                .ends_with("is 65537 bytes, more than the limit of 65536 bytes"),
            "{e}"
        );
    }
}
