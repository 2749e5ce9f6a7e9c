//! `[daemon]` into [`DaemonSettings`]: the API's address, token and TLS, the state
//! directory, and the limits on checks, actions and HTTP connections.

use std::path::Path;

use super::values::{count, positive, resolve_path};
use super::Issues;
use crate::config::schema::{self, DaemonSection};
use crate::config::{ApiTokenSource, DaemonSettings};

/// Upper bound for `daemon.max_in_flight`.
const MAX_IN_FLIGHT: i64 = 1_000_000;
/// Upper bound for `daemon.http_max_connections`.
const MAX_HTTP_CONNECTIONS: i64 = 1_000_000;

pub(super) fn daemon_settings(
    d: &DaemonSection,
    base: &Path,
    issues: &mut Issues,
) -> DaemonSettings {
    let mut settings = DaemonSettings::default();
    if let Some(listen) = &d.listen {
        match crate::config::parse_listen(listen.get_ref()) {
            Ok(addr) => settings.listen = addr,
            Err(e) => issues.add(listen.span(), "listen", e),
        }
    }
    if let Some(dir) = &d.state_dir {
        settings.state_dir = resolve_path(base, dir, "state_dir", issues);
    }
    if let Some(file) = &d.blackbox_config {
        settings.blackbox_config = resolve_path(base, file, "blackbox_config", issues);
    }
    if let Some(n) = count(
        &d.max_concurrent_actions,
        "max_concurrent_actions",
        1,
        64,
        issues,
    ) {
        settings.max_concurrent_actions = usize::try_from(n).unwrap_or(4);
    }
    match (&d.api_token_env, &d.api_token_file) {
        (Some(env), Some(_)) => issues.add(
            env.span(),
            "api_token_env",
            "set api_token_env or api_token_file, not both",
        ),
        (Some(env), None) => {
            let name = env.get_ref().trim();
            if name.is_empty() || name.contains('=') || name.contains('\0') {
                issues.add(
                    env.span(),
                    "api_token_env",
                    format!("not an environment variable name: {:?}", env.get_ref()),
                );
            } else {
                settings.api_token = Some(ApiTokenSource::Env(name.to_string()));
            }
        }
        (None, Some(file)) => {
            settings.api_token =
                resolve_path(base, file, "api_token_file", issues).map(ApiTokenSource::File);
        }
        (None, None) => {}
    }
    if let Some(read) = &d.read_token {
        settings.read_token = *read.get_ref();
        if settings.read_token && d.api_token_env.is_none() && d.api_token_file.is_none() {
            issues.add(
                read.span(),
                "read_token",
                "needs a token: set api_token_env or api_token_file",
            );
        }
    }
    match (&d.tls_cert, &d.tls_key) {
        (Some(cert), Some(key)) => {
            let cert = resolve_path(base, cert, "tls_cert", issues);
            let key = resolve_path(base, key, "tls_key", issues);
            settings.tls = cert.zip(key);
        }
        (Some(cert), None) => issues.add(cert.span(), "tls_cert", "needs tls_key too"),
        (None, Some(key)) => issues.add(key.span(), "tls_key", "needs tls_cert too"),
        (None, None) => {}
    }
    if let Some(n) = count(&d.max_in_flight, "max_in_flight", 1, MAX_IN_FLIGHT, issues) {
        settings.max_in_flight = usize::try_from(n).unwrap_or(schema::default_max_in_flight());
    }
    for (value, path, slot) in [
        (
            &d.http_header_timeout,
            "http_header_timeout",
            &mut settings.http.header_timeout,
        ),
        (
            &d.http_idle_timeout,
            "http_idle_timeout",
            &mut settings.http.idle_timeout,
        ),
    ] {
        if let Some(t) = positive(value, path, issues) {
            *slot = t;
        }
    }
    let max = &d.http_max_connections;
    if let Some(n) = count(max, "http_max_connections", 1, MAX_HTTP_CONNECTIONS, issues) {
        settings.http.max_connections =
            usize::try_from(n).unwrap_or(crate::api::server::default_http_max_connections());
    }
    settings
}
