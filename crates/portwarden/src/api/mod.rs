//! The daemon's HTTP API on the `listen` address (127.0.0.1:9898 by default; HTTPS with
//! `[daemon] tls_cert` and `tls_key`). This file holds what every endpoint shares: the state
//! ([`ApiState`]), the errors ([`ApiError`], one place mapping them to a status and a JSON
//! body), the [`router`] and [`serve`]. Data enters from the scheduler, the store, the event
//! bus and the engines' handles in [`ApiShared`]; only the mutations and `/probe` act.
//!
//! Every endpoint, by file:
//!
//! - `health.rs`: `GET /healthz`, `GET /api/v1/store` (database size and rows),
//!   `GET /api/v1/firewall` (the firewall guard's state).
//! - `monitors.rs`: `GET /api/v1/monitors` (filters `state`, `tag`),
//!   `GET /api/v1/monitors/{name}` (state, last result, recent history, uptime).
//! - `control.rs`: `POST /api/v1/monitors/{name}/run|pause|resume|acknowledge`,
//!   `POST /api/v1/silences`, `DELETE /api/v1/silences/{id}` (the mutations).
//! - `notify.rs`: `GET /api/v1/notifications`, `GET /api/v1/silences`.
//! - `heal.rs`: `GET /api/v1/actions`.
//! - `incidents.rs`: `GET /api/v1/incidents`.
//! - `listeners.rs`: `GET /api/v1/listeners`.
//! - `events.rs`: `GET /api/v1/events` (server-sent events).
//! - `openapi.rs`: `GET /api/v1/openapi.json` (the OpenAPI 3.1 document, generated from the
//!   handlers' `#[utoipa::path]` annotations; docs/api.md describes the API for people).
//! - `metrics.rs`: `GET /metrics` (Prometheus).
//! - `web/`: `GET /`, `GET /assets/{file}` (the dashboard).
//! - `blackbox/`: `GET /probe` (blackbox_exporter's contract, over the [`blackbox::ModuleTable`]
//!   in the state; outside the auth middleware, it checks the token itself).
//!
//! And around them: `auth.rs` (the token and the middleware that asks for it), `server.rs`
//! (accepting and serving connections within `[daemon] http_*` limits), `tls.rs` (the HTTPS
//! server config).

pub mod auth;
pub mod blackbox;
pub mod control;
pub mod events;
pub mod heal;
pub mod health;
pub mod incidents;
pub mod listeners;
pub mod metrics;
pub mod monitors;
pub mod notify;
pub mod openapi;
pub mod server;
pub mod tls;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::schedule::Scheduler;
use crate::store::Store;

/// What the handlers share: one allocation, so the clone axum makes for every request (for
/// the handler and the auth middleware) is a reference count, not a dozen.
#[derive(Clone)]
pub struct ApiState(Arc<ApiShared>);

impl std::ops::Deref for ApiState {
    type Target = ApiShared;

    fn deref(&self) -> &ApiShared {
        &self.0
    }
}

/// The handlers' shared handles, behind [`ApiState`].
pub struct ApiShared {
    pub scheduler: Arc<Scheduler>,
    pub store: Store,
    pub started: SystemTime,
    /// `config FILE` or `zero-config`.
    pub mode: String,
    pub max_in_flight: usize,
    /// The open-file limit after start-up (`/healthz` compares it with what checks need).
    pub file_limit: crate::daemon::FileLimit,
    /// The firewall guard's latest verification.
    pub firewall: crate::guard::SharedStatus,
    /// The notification dispatcher (configured notifier names).
    pub notifications: crate::notify::DispatcherHandle,
    /// The healing engine's state per monitor.
    pub healing: crate::heal::HealHandle,
    /// The event bus, for `GET /api/v1/events`.
    pub bus: crate::events::EventBus,
    /// The token and whether reads need it.
    pub auth: crate::api::auth::ApiAuth,
    /// The database file (silences are written to it as `portwarden silence` does).
    pub db_path: std::path::PathBuf,
    /// Cancelled at shutdown: ends event streams (set by [`serve`]).
    pub stop: CancellationToken,
    /// The modules `GET /probe` serves (the daemon replaces them on reload).
    pub probe_modules: blackbox::ModuleTable,
    /// The latest socket listing, shared by `GET /api/v1/listeners` requests.
    pub listeners: crate::ownership::ListingCache,
    /// Silence after which an event stream sends a keep-alive comment: well within the idle
    /// timeout (set by [`serve`]).
    pub sse_keep_alive: std::time::Duration,
}

/// One place that maps errors to HTTP status and a JSON body.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    /// No or a wrong bearer token.
    Unauthorized(String),
    /// No token is configured: mutations are off.
    Forbidden(String),
    NotFound(String),
    /// Any other client error, with its status (413 too large, 415 not JSON, 422 wrong shape).
    Client(StatusCode, String),
    Unavailable(String),
}

/// The body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::BadRequest(e) => (StatusCode::BAD_REQUEST, e),
            ApiError::Unauthorized(e) => {
                let mut r =
                    (StatusCode::UNAUTHORIZED, Json(ErrorBody { error: e })).into_response();
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
            ApiError::Forbidden(e) => (StatusCode::FORBIDDEN, e),
            ApiError::NotFound(e) => (StatusCode::NOT_FOUND, e),
            ApiError::Client(status, e) => (status, e),
            ApiError::Unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::Client(e.status(), e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadRequest(e.body_text())
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(monitors::routes())
        .merge(openapi::routes())
        .merge(notify::routes())
        .merge(heal::routes())
        .merge(incidents::routes())
        .merge(listeners::routes())
        .merge(control::routes())
        .merge(events::routes())
        .merge(metrics::routes())
        .merge(web::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(control::BODY_LIMIT))
        // After the layers, so outside them: `/probe` is the high-rate path (a Prometheus
        // server scrapes it once per target and interval) and checks the token itself.
        .merge(blackbox::routes(
            state.probe_modules.clone(),
            state.auth.clone(),
        ))
        .with_state(state)
}

/// Serves until `shutdown`; HTTPS when `tls` is given (`[daemon] tls_cert`, `tls_key`), within
/// the connection `limits` (`[daemon] http_*`, see `server.rs`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: crate::api::server::HttpLimits,
    mut state: ApiShared,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    state.stop = shutdown.clone();
    state.sse_keep_alive = crate::api::events::keep_alive_within(limits.idle_timeout);
    let app = router(ApiState(Arc::new(state)));
    crate::api::server::run(listener, tls, app, limits, shutdown).await
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}", uri.path()))
}

/// Binds the API address, naming it in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the API: {e}"))
}
