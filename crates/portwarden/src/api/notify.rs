//! `GET /api/v1/notifications`: per notifier, what waits (pending), what keeps failing (with
//! the last error, attempts and next attempt) and what was delivered lately (with the
//! receiver's answer). `GET /api/v1/silences`: the silences in force. Both read the store.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::api::{ApiError, ApiState};
use crate::store::{NotifierQueue, Silence};

/// Entries of each list per notifier at most.
const LIST_LIMIT: usize = 100;

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/notifications", get(notifications))
        .route("/api/v1/silences", get(silences))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct NotifierEntry {
    name: String,
    /// False for a notifier that left the config but still holds notifications.
    configured: bool,
    #[serde(flatten)]
    queue: NotifierQueue,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Notifications {
    notifiers: Vec<NotifierEntry>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    responses(
        (status = 200, description = "Per notifier: pending, failing, delivered", body = Notifications),
        (status = 503, description = "The store is unavailable", body = crate::api::ErrorBody),
    ))]
pub(crate) async fn notifications(
    State(s): State<ApiState>,
) -> Result<Json<Notifications>, ApiError> {
    let mut queues = s
        .store
        .notifications(LIST_LIMIT)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let configured = s.notifications.configured();
    let mut notifiers: Vec<NotifierEntry> = configured
        .iter()
        .map(|name| NotifierEntry {
            name: name.clone(),
            configured: true,
            queue: queues.remove(name).unwrap_or_default(),
        })
        .collect();
    notifiers.extend(queues.into_iter().map(|(name, queue)| NotifierEntry {
        name,
        configured: false,
        queue,
    }));
    Ok(Json(Notifications { notifiers }))
}

#[utoipa::path(get, path = "/api/v1/silences", tag = "silences",
    responses(
        (status = 200, description = "The silences in force", body = Vec<Silence>),
        (status = 503, description = "The store is unavailable", body = crate::api::ErrorBody),
    ))]
pub(crate) async fn silences(State(s): State<ApiState>) -> Result<Json<Vec<Silence>>, ApiError> {
    s.store
        .silences()
        .await
        .map(Json)
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}
