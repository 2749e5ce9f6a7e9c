//! Who may use the API: the bearer token (`[daemon] api_token_env` or `api_token_file`,
//! compared in constant time) and [`authorize`], the middleware in front of every route but
//! `/probe`. Mutations always need the token (403 with no token configured, saying how to
//! configure one); with `read_token = true` the reads under `/api/v1/` and `/metrics` need it
//! too (`/healthz` and `/api/v1/openapi.json` never do). `/probe` checks it itself.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::api::{ApiError, ApiState};
use crate::config::ApiTokenSource;

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

#[cfg(test)]
mod tests {
    use super::*;

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
