//! The daemon itself: `GET /healthz` (mode, monitors, the store's and the scheduler's health,
//! the open-file limit; `ok` or `degraded`), `GET /api/v1/store` (database size and rows) and
//! `GET /api/v1/firewall` (the firewall guard's latest verification).

use std::time::SystemTime;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::api::{ApiError, ApiState, ErrorBody};
use crate::schedule::LagSummary;
use crate::store::{StoreHealth, StoreState, StoreStats};

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/store", get(store_stats))
        .route("/api/v1/firewall", get(firewall_status))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
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
pub(crate) struct OpenFilesHealth {
    /// The soft `RLIMIT_NOFILE` after start-up; null when unlimited.
    limit: Option<u64>,
    /// One descriptor per check in flight (at most `max_in_flight`, at most one per monitor)
    /// plus a reserve for the daemon itself.
    needed: u64,
    /// `ok`, or `too_low`.
    state: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SchedulerHealth {
    in_flight: usize,
    max_in_flight: usize,
    start_lag: LagSummary,
}

#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The daemon runs", body = Health)))]
pub(crate) async fn healthz(State(s): State<ApiState>) -> Json<Health> {
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

/// The database's size and row counts: how much history costs.
#[utoipa::path(get, path = "/api/v1/store", tag = "store",
    responses(
        (status = 200, description = "Database size and rows", body = StoreStats),
        (status = 503, description = "The store is unavailable", body = ErrorBody),
    ))]
pub(crate) async fn store_stats(State(s): State<ApiState>) -> Result<Json<StoreStats>, ApiError> {
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
pub(crate) async fn firewall_status(
    State(s): State<ApiState>,
) -> Result<Json<crate::guard::GuardStatus>, ApiError> {
    s.firewall
        .lock()
        .map(|g| Json(g.clone()))
        .map_err(|_| ApiError::Unavailable("the firewall guard's state is poisoned".into()))
}
