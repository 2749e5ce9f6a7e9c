//! `GET /api/v1/monitors` (filters `state`, `tag`): every monitor's state with its 24 h
//! uptime; `GET /api/v1/monitors/{name}`: one monitor with its last result, recent history,
//! uptime, incidents and healing.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState, ErrorBody};
use crate::schedule::MonitorView;
use crate::state::Status;
use crate::store::MonitorHistory;

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/monitors", get(list_monitors))
        .route("/api/v1/monitors/{name}", get(one_monitor))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListFilter {
    /// Only monitors in this state: unknown, ok, warning, down, flapping or paused.
    #[param(value_type = Option<Status>)]
    state: Option<String>,
    /// Only monitors with this tag.
    tag: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ListedMonitor {
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
pub(crate) async fn list_monitors(
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
pub(crate) struct MonitorDetail {
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
pub(crate) async fn one_monitor(
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
