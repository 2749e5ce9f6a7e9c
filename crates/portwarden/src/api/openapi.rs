//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document, generated from the handlers'
//! `#[utoipa::path]` annotations and the response types' `ToSchema` derives (docs/api.md
//! describes the API for people). A handler added elsewhere is listed in [`ApiDoc`]'s paths.

use axum::routing::get;
use axum::{Json, Router};

use crate::api::{ApiState, ErrorBody};

/// The route of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/openapi.json", get(openapi_json))
}

/// The OpenAPI document: every route, its parameters, answers and their schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "portwarden",
        description = "The portwarden daemon's HTTP API (docs/api.md)."
    ),
    paths(
        crate::api::health::healthz,
        crate::api::monitors::list_monitors,
        crate::api::monitors::one_monitor,
        crate::api::health::store_stats,
        crate::api::health::firewall_status,
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
