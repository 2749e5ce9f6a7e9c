//! `GET /api/v1/incidents`: incidents across every monitor from the store, newest first
//! (`?monitor=NAME`, `?open=true|false`, `?limit=N`, default 100, at most 2000). An incident
//! runs from a monitor entering DOWN to its next ok or warning; `end` is null while it is open.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, ApiState};
use crate::store::{Incident, IncidentQuery};

/// Incidents listed when the request names no `limit`, and the most it may ask for.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 2_000;

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/incidents", get(incidents))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Filter {
    /// Only this monitor's incidents.
    monitor: Option<String>,
    /// Only open (`true`) or only closed (`false`) incidents.
    open: Option<bool>,
    /// Most incidents listed (default 100; more than 2000 lists 2000).
    #[serde(default, deserialize_with = "limit")]
    #[param(schema_with = any_count)]
    limit: Option<usize>,
}

/// `limit`'s schema: any integer from 0 up, with no format (and so no implied maximum).
fn any_count() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0))
        .build()
}

/// A non-negative integer of any size (a huge one asks for the most, not for an error); any
/// other text is refused.
fn limit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(serde::de::Error::custom(format!(
            "expected a non-negative integer, got {text:?}"
        )));
    }
    Ok(Some(text.parse::<usize>().unwrap_or(usize::MAX)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Incidents {
    /// Newest first.
    incidents: Vec<Incident>,
}

#[utoipa::path(get, path = "/api/v1/incidents", tag = "monitors", params(Filter),
    responses(
        (status = 200, description = "Incidents across monitors, newest first", body = Incidents),
        (status = 400, description = "Bad query", body = crate::api::ErrorBody),
        (status = 503, description = "The store is unavailable", body = crate::api::ErrorBody),
    ))]
pub(crate) async fn incidents(
    State(s): State<ApiState>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Incidents>, ApiError> {
    let Query(filter) = filter?;
    let incidents = s
        .store
        .incidents(IncidentQuery {
            monitor: filter.monitor,
            open: filter.open,
            limit: filter.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
        })
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(Incidents { incidents }))
}
