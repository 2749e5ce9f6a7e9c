//! `GET /api/v1/actions`: the healing engine's recent attempts from the store (newest first;
//! `?monitor=NAME`, `?limit=N`, default 100) and its state per monitor (`needs_attention`,
//! what runs, the ladder, the last attempt).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState};
use crate::heal::Healing;
use crate::store::ActionRecord;

/// Attempts listed when the request names no `limit`, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 2_000;

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/actions", get(actions))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Filter {
    /// Only this monitor's attempts.
    monitor: Option<String>,
    /// Most attempts listed (default 100, at most 2000).
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Actions {
    /// Newest first.
    actions: Vec<ActionRecord>,
    /// Monitors the engine has acted on (or given up on), by name.
    monitors: BTreeMap<String, Healing>,
}

#[utoipa::path(get, path = "/api/v1/actions", tag = "healing", params(Filter),
    responses(
        (status = 200, description = "Recent attempts and the engine's state per monitor", body = Actions),
        (status = 400, description = "Bad query", body = crate::api::ErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::api::ErrorBody),
    ))]
pub(crate) async fn actions(
    State(s): State<ApiState>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Actions>, ApiError> {
    let Query(filter) = filter?;
    let limit = filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let actions = s
        .store
        .actions(filter.monitor.clone(), limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let mut monitors = s.healing.all();
    if let Some(m) = &filter.monitor {
        monitors.retain(|k, _| k == m);
    }
    Ok(Json(Actions { actions, monitors }))
}
