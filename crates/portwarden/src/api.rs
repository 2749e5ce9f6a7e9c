//! The daemon's HTTP API on the `listen` address (127.0.0.1:9898 by default):
//! `GET /healthz`, `GET /api/v1/monitors` (filters `state`, `tag`), and
//! `GET /api/v1/monitors/{name}` (state, last result, recent history, uptime), and
//! `GET /api/v1/store` (database size and rows).
//! Read-only for now; mutating endpoints arrive with authentication (the API issue).

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

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub scheduler: Arc<Scheduler>,
    pub store: Store,
    pub started: SystemTime,
    /// `config FILE` or `zero-config`.
    pub mode: String,
    pub max_in_flight: usize,
    /// The firewall guard's latest verification.
    pub firewall: crate::guard::SharedStatus,
    /// The notification dispatcher (configured notifier names).
    pub notifications: crate::notify::DispatcherHandle,
    /// The healing engine's state per monitor.
    pub healing: crate::heal::HealHandle,
}

/// One place that maps errors to HTTP status and a JSON body.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Unavailable(String),
}

#[derive(Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::BadRequest(e) => (StatusCode::BAD_REQUEST, e),
            ApiError::NotFound(e) => (StatusCode::NOT_FOUND, e),
            ApiError::Unavailable(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
        };
        (status, Json(ErrorBody { error })).into_response()
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/monitors", get(list_monitors))
        .route("/api/v1/monitors/{name}", get(one_monitor))
        .route("/api/v1/store", get(store_stats))
        .route("/api/v1/firewall", get(firewall_status))
        .merge(crate::api_notify::routes())
        .merge(crate::api_heal::routes())
        .merge(crate::metrics::routes())
        .merge(crate::web::routes())
        .with_state(state)
}

/// Serves until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// Binds the API address, naming it in the error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the API: {e}"))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    mode: String,
    monitors: usize,
    #[serde(serialize_with = "crate::schedule::unix_ms")]
    started: SystemTime,
    store: StoreHealth,
    scheduler: SchedulerHealth,
}

#[derive(Serialize)]
struct SchedulerHealth {
    in_flight: usize,
    max_in_flight: usize,
    start_lag: LagSummary,
}

async fn healthz(State(s): State<ApiState>) -> Json<Health> {
    let store = s.store.health();
    Json(Health {
        // Monitoring goes on without the store, so a failed store degrades, never fails.
        status: if store.state == StoreState::Failed {
            "degraded"
        } else {
            "ok"
        },
        mode: s.mode.clone(),
        monitors: s.scheduler.len(),
        started: s.started,
        store,
        scheduler: SchedulerHealth {
            in_flight: s.scheduler.in_flight(s.max_in_flight),
            max_in_flight: s.max_in_flight,
            start_lag: s.scheduler.lag(),
        },
    })
}

#[derive(Debug, Deserialize)]
struct ListFilter {
    state: Option<String>,
    tag: Option<String>,
}

#[derive(Serialize)]
struct ListedMonitor {
    #[serde(flatten)]
    view: MonitorView,
    /// Fraction of the last 24 h not down; null while the store cannot say.
    uptime_24h: Option<f64>,
    /// Self-healing gave up on it: a person must look.
    needs_attention: bool,
}

async fn list_monitors(
    State(s): State<ApiState>,
    Query(filter): Query<ListFilter>,
) -> Result<Json<Vec<ListedMonitor>>, ApiError> {
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

#[derive(Serialize)]
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
async fn store_stats(State(s): State<ApiState>) -> Result<Json<StoreStats>, ApiError> {
    s.store
        .stats()
        .await
        .map(Json)
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

/// The firewall guard: backend, last verification, violations, drift, last repair, pause.
async fn firewall_status(
    State(s): State<ApiState>,
) -> Result<Json<crate::guard::GuardStatus>, ApiError> {
    s.firewall
        .lock()
        .map(|g| Json(g.clone()))
        .map_err(|_| ApiError::Unavailable("the firewall guard's state is poisoned".into()))
}
