//! The daemon's HTTP API on the `listen` address (127.0.0.1:9898 by default):
//! `GET /healthz`, `GET /api/v1/monitors` (filters `state`, `tag`), and
//! `GET /api/v1/monitors/{name}` (state, last result, recent history, uptime), and
//! `GET /api/v1/store` (database size and rows), `GET /api/v1/firewall`; the notification,
//! healing, incident and listener reads live in `api_notify.rs`, `api_heal.rs`,
//! `api_incidents.rs` and `api_listeners.rs`. `GET /api/v1/openapi.json` is the
//! OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and the
//! response types' `ToSchema` derives (docs/api.md describes the API for people).

pub mod auth;
pub mod blackbox;
pub mod control;
pub mod events;
pub mod heal;
pub mod incidents;
pub mod listeners;
pub mod metrics;
pub mod notify;
pub mod server;
pub mod tls;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::schedule::{LagSummary, MonitorView, Scheduler};
use crate::state::Status;
use crate::store::{MonitorHistory, Store, StoreHealth, StoreState, StoreStats};

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
        .route("/healthz", get(healthz))
        .route("/api/v1/monitors", get(list_monitors))
        .route("/api/v1/monitors/{name}", get(one_monitor))
        .route("/api/v1/store", get(store_stats))
        .route("/api/v1/firewall", get(firewall_status))
        .route("/api/v1/openapi.json", get(openapi_json))
        .merge(crate::api::notify::routes())
        .merge(crate::api::heal::routes())
        .merge(crate::api::incidents::routes())
        .merge(crate::api::listeners::routes())
        .merge(crate::api::control::routes())
        .merge(crate::api::events::routes())
        .merge(crate::api::metrics::routes())
        .merge(crate::api::web::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::api::auth::authorize,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::control::BODY_LIMIT,
        ))
        // After the layers, so outside them: `/probe` is the high-rate path (a Prometheus
        // server scrapes it once per target and interval) and checks the token itself.
        .merge(blackbox::routes(
            state.probe_modules.clone(),
            state.auth.clone(),
        ))
        .with_state(state)
}

/// Serves until `shutdown`; HTTPS when `tls` is given (`[daemon] tls_cert`, `tls_key`), within
/// the connection `limits` (`[daemon] http_*`, see `api_server.rs`).
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

/// The OpenAPI document: every route, its parameters, answers and their schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "portwarden",
        description = "The portwarden daemon's HTTP API (docs/api.md)."
    ),
    paths(
        healthz,
        list_monitors,
        one_monitor,
        store_stats,
        firewall_status,
        openapi_json,
        crate::api::notify::notifications,
        crate::api::notify::silences,
        crate::api::heal::actions,
        crate::api::incidents::incidents,
        crate::api::listeners::listeners,
        crate::api::events::events,
        crate::api::control::run_now,
        crate::api::control::pause,
        crate::api::control::resume,
        crate::api::control::acknowledge,
        crate::api::control::add_silence,
        crate::api::control::remove_silence,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the mutations name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta",
    responses((status = 200, description = "This API's OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// `ok`, or `degraded` while the store has failed or the open-file limit is below what
    /// the checks need.
    status: &'static str,
    mode: String,
    monitors: usize,
    /// Unix milliseconds.
    #[serde(serialize_with = "crate::schedule::unix_ms")]
    #[schema(value_type = u64)]
    started: SystemTime,
    store: StoreHealth,
    scheduler: SchedulerHealth,
    open_files: OpenFilesHealth,
}

/// The open-file limit against what the checks need: below it, checks that find no descriptor
/// end unknown (`local_resources`) instead of telling anything about their targets.
#[derive(Serialize, utoipa::ToSchema)]
struct OpenFilesHealth {
    /// The soft `RLIMIT_NOFILE` after start-up; null when unlimited.
    limit: Option<u64>,
    /// One descriptor per check in flight (at most `max_in_flight`, at most one per monitor)
    /// plus a reserve for the daemon itself.
    needed: u64,
    /// `ok`, or `too_low`.
    state: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
struct SchedulerHealth {
    in_flight: usize,
    max_in_flight: usize,
    start_lag: LagSummary,
}

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The daemon runs", body = Health)))]
async fn healthz(State(s): State<ApiState>) -> Json<Health> {
    let store = s.store.health();
    let monitors = s.scheduler.len();
    let needed = crate::daemon::FileLimit::needed(s.max_in_flight, monitors);
    let files_too_low = s.file_limit.too_low(needed);
    Json(Health {
        // Monitoring goes on without the store or with too few descriptors (checks short of
        // one end unknown), so either degrades, never fails.
        status: if store.state == StoreState::Failed || files_too_low {
            "degraded"
        } else {
            "ok"
        },
        mode: s.mode.clone(),
        monitors,
        started: s.started,
        store,
        scheduler: SchedulerHealth {
            in_flight: s.scheduler.in_flight(s.max_in_flight),
            max_in_flight: s.max_in_flight,
            start_lag: s.scheduler.lag(),
        },
        open_files: OpenFilesHealth {
            limit: s.file_limit.limit,
            needed,
            state: if files_too_low { "too_low" } else { "ok" },
        },
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListFilter {
    /// Only monitors in this state: unknown, ok, warning, down, flapping or paused.
    #[param(value_type = Option<Status>)]
    state: Option<String>,
    /// Only monitors with this tag.
    tag: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ListedMonitor {
    #[serde(flatten)]
    view: MonitorView,
    /// Fraction of the last 24 h not down; null while the store cannot say.
    uptime_24h: Option<f64>,
    /// Self-healing gave up on it: a person must look.
    needs_attention: bool,
}

#[utoipa::path(get, path = "/api/v1/monitors", tag = "monitors", params(ListFilter),
    responses(
        (status = 200, description = "The monitors", body = Vec<ListedMonitor>),
        (status = 400, description = "Unknown state", body = ErrorBody),
    ))]
async fn list_monitors(
    State(s): State<ApiState>,
    filter: Result<Query<ListFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ListedMonitor>>, ApiError> {
    let Query(filter) = filter?;
    let wanted: Option<Status> = match &filter.state {
        None => None,
        Some(text) => Some(parse_status(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown state {text:?}; use unknown, ok, warning, down, flapping or paused"
            ))
        })?),
    };
    let uptimes = s.store.uptime_24h().await.unwrap_or_default();
    let listed = s
        .scheduler
        .views()
        .into_iter()
        .filter(|v| wanted.is_none_or(|w| v.status == w))
        .filter(|v| filter.tag.as_ref().is_none_or(|t| v.tags.contains(t)))
        .map(|view| ListedMonitor {
            uptime_24h: uptimes.get(&view.name).copied(),
            needs_attention: s
                .healing
                .healing(&view.name)
                .is_some_and(|h| h.needs_attention),
            view,
        })
        .collect();
    Ok(Json(listed))
}

fn parse_status(text: &str) -> Option<Status> {
    [
        Status::Unknown,
        Status::Ok,
        Status::Warning,
        Status::Down,
        Status::Flapping,
        Status::Paused,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

#[derive(Serialize, utoipa::ToSchema)]
struct MonitorDetail {
    #[serde(flatten)]
    view: MonitorView,
    /// Recent results, uptime and incidents from the store; null while it is unavailable.
    history: Option<MonitorHistory>,
    history_error: Option<String>,
    /// Self-healing: `needs_attention`, what runs, the ladder, the last attempt; null for a
    /// monitor the engine never acted on.
    healing: Option<crate::heal::Healing>,
}

#[utoipa::path(get, path = "/api/v1/monitors/{name}", tag = "monitors",
    params(("name" = String, Path, description = "The monitor's name")),
    responses(
        (status = 200, description = "The monitor with its history", body = MonitorDetail),
        (status = 404, description = "No such monitor", body = ErrorBody),
    ))]
async fn one_monitor(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<MonitorDetail>, ApiError> {
    let view = s
        .scheduler
        .view(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no monitor named {name:?}")))?;
    let (history, history_error) = match s.store.history(&name, 50).await {
        Ok(h) => (Some(h), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Json(MonitorDetail {
        healing: s.healing.healing(&name),
        view,
        history,
        history_error,
    }))
}

/// The database's size and row counts: how much history costs.
#[utoipa::path(get, path = "/api/v1/store", tag = "store",
    responses(
        (status = 200, description = "Database size and rows", body = StoreStats),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
async fn store_stats(State(s): State<ApiState>) -> Result<Json<StoreStats>, ApiError> {
    s.store
        .stats()
        .await
        .map(Json)
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// The firewall guard: backend, last verification, violations, drift, last repair, pause.
#[utoipa::path(get, path = "/api/v1/firewall", tag = "firewall",
    responses(
        (status = 200, description = "The guard's state", body = crate::guard::GuardStatus),
        (status = 503, description = "The guard's state is unavailable", body = ErrorBody),
    ))]
async fn firewall_status(
    State(s): State<ApiState>,
) -> Result<Json<crate::guard::GuardStatus>, ApiError> {
    s.firewall
        .lock()
        .map(|g| Json(g.clone()))
        .map_err(|_| ApiError::Unavailable("the firewall guard's state is poisoned".into()))
}
