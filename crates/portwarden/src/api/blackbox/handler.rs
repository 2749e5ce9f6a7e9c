//! `GET /probe`: a request read as blackbox 0.23 reads it (`prober/handler.go`: module,
//! target, timeout header, `debug`), the probe run and its gauges answered as text.

use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::tcp::run;
use super::{Module, ModuleTable, Modules, TcpModule};
use crate::api::auth::ApiAuth;

/// blackbox_exporter's `--timeout-offset` default.
const TIMEOUT_OFFSET: f64 = 0.5;
/// The probe timeout with neither a module timeout nor the scrape-timeout header.
const DEFAULT_TIMEOUT: f64 = 120.0;
/// The longest a probe runs, whatever the scrape-timeout header says: a header of `inf` or
/// `1e20` (which Go's ParseFloat, and so blackbox, accept) must neither overflow a duration
/// nor the engine's deadline; no scrape waits an hour.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// blackbox's module name when the request names none.
const DEFAULT_MODULE: &str = "http_2xx";
/// The Prometheus text format, as blackbox answers.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/probe` answers with: the module table it was given and the API's token.
#[derive(Debug, Clone)]
struct ProbeState {
    modules: ModuleTable,
    auth: ApiAuth,
}

/// The `/probe` route over `modules`, merged into the API's router outside its middleware
/// (`auth` is the API's: with `read_token`, `/probe` checks it itself).
pub fn routes<S>(modules: ModuleTable, auth: ApiAuth) -> Router<S> {
    Router::new()
        .route("/probe", get(probe_handler))
        .with_state(ProbeState { modules, auth })
}

#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    module: Option<String>,
    debug: Option<String>,
    hostname: Option<String>,
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

async fn probe_handler(State(s): State<ProbeState>, request: Request) -> Response {
    // `/probe` connects wherever the request says: with `read_token` it is not open to
    // anyone who reaches the port (Prometheus sends the token from the scrape job).
    if s.auth.read_token {
        if let Err(e) = s.auth.check(request.headers()) {
            return e.into_response();
        }
    }
    let modules = s.modules.current();
    let asked = match read_request(request.uri(), request.headers(), &modules) {
        Ok(asked) => asked,
        Err((status, text)) => return plain(status, text),
    };
    let ProbeRequest {
        module,
        target,
        hostname,
        timeout,
        debug,
    } = asked;
    let outcome = run(module, &target, hostname.as_deref(), timeout, debug).await;
    let text = outcome.exposition();
    if debug {
        let body = format!(
            "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{text}\n\n\nModule configuration:\n{}\n",
            outcome.log.join("\n"),
            module.yaml
        );
        return ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    }
    ([(CONTENT_TYPE, TEXT_FORMAT)], text).into_response()
}

/// What a `/probe` request asks for, read from its query and headers before anything runs.
#[derive(Debug)]
pub(crate) struct ProbeRequest<'m> {
    module: &'m TcpModule,
    pub target: String,
    pub hostname: Option<String>,
    /// The probe's time budget.
    pub timeout: Duration,
    pub debug: bool,
}

/// Reads a request as blackbox 0.23 does: the status and text of its answer when the
/// request cannot run (unknown or unsupported module, bad timeout header, no target).
pub(crate) fn read_request<'m>(
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    modules: &'m Modules,
) -> Result<ProbeRequest<'m>, (StatusCode, String)> {
    let q = match Query::<ProbeQuery>::try_from_uri(uri) {
        Ok(Query(q)) => q,
        Err(e) => return Err((StatusCode::BAD_REQUEST, e.body_text())),
    };
    let name = q
        .module
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MODULE);
    let Some(module) = modules.modules.get(name) else {
        return Err((StatusCode::BAD_REQUEST, format!("Unknown module {name:?}")));
    };
    let timeout = match timeout_secs(headers, module) {
        Ok(t) => t,
        Err(e) => {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to parse timeout from Prometheus header: {e}"),
            ))
        }
    };
    let Some(target) = q.target.filter(|t| !t.is_empty()) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "Target parameter is missing".into(),
        ));
    };
    let module = match module {
        Module::Tcp(m) => m,
        Module::Unsupported(why) => {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("Unsupported module {name:?}: {why}"),
            ))
        }
    };
    Ok(ProbeRequest {
        module,
        target,
        hostname: q.hostname,
        // `max` also turns NaN into the floor.
        timeout: Duration::from_secs_f64(timeout.max(0.001).min(MAX_TIMEOUT.as_secs_f64())),
        debug: q.debug.as_deref() == Some("true"),
    })
}

/// blackbox's `getTimeout`.
fn timeout_secs(headers: &HeaderMap, module: &Module) -> Result<f64, String> {
    let mut secs = 0.0;
    if let Some(v) = headers.get("X-Prometheus-Scrape-Timeout-Seconds") {
        let text = v.to_str().map_err(|e| e.to_string())?;
        secs = text
            .trim()
            .parse::<f64>()
            .map_err(|e| format!("strconv.ParseFloat: parsing {text:?}: {e}"))?;
    }
    if secs == 0.0 {
        secs = DEFAULT_TIMEOUT;
    }
    let max = secs - TIMEOUT_OFFSET;
    let module_secs = match module {
        Module::Tcp(m) => m.timeout.map_or(0.0, |t| t.as_secs_f64()),
        Module::Unsupported(_) => 0.0,
    };
    Ok(if (module_secs < max && module_secs > 0.0) || max < 0.0 {
        module_secs
    } else {
        max
    })
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use std::path::Path;

    #[test]
    fn timeout_is_the_scrape_timeout_minus_the_offset_unless_the_module_is_shorter() {
        let mut h = HeaderMap::new();
        let mut m = TcpModule::connect();
        m.timeout = Some(Duration::from_secs(5));
        let module = Module::Tcp(Box::new(m));
        assert_eq!(timeout_secs(&h, &module).unwrap(), 5.0);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            "1.5".parse().unwrap(),
        );
        assert_eq!(timeout_secs(&h, &module).unwrap(), 1.0);
        let mut m = TcpModule::connect();
        m.timeout = None;
        assert_eq!(
            timeout_secs(&HeaderMap::new(), &Module::Tcp(Box::new(m))).unwrap(),
            119.5
        );
    }

    /// Found by the `probe_query` fuzz target: a module without a timeout took the header's
    /// `inf` (or `1e20`) as its budget, and converting it to a duration panicked the handler
    /// (`1e19` fit a duration but overflowed the engine's deadline).
    #[test]
    fn a_scrape_timeout_header_of_inf_or_beyond_any_clock_is_capped() {
        let (modules, _) = Modules::parse("modules:\n  m:\n    prober: tcp\n", Path::new("."))
            .expect("the module parses");
        let uri: axum::http::Uri = "/probe?target=127.0.0.1:1&module=m".parse().unwrap();
        let found = "91111111111111111111111.6";
        for header in [found, "inf", "1e20", "1e19", "NaN", "7200"] {
            let mut h = HeaderMap::new();
            h.insert(
                "X-Prometheus-Scrape-Timeout-Seconds",
                header.parse().unwrap(),
            );
            let request = read_request(&uri, &h, &modules).expect("the request can run");
            assert!(
                request.timeout > Duration::ZERO && request.timeout <= MAX_TIMEOUT,
                "{header}: {:?}",
                request.timeout
            );
        }
    }

    /// Serves `router` on a loopback port of its own until the test ends.
    async fn serve(router: Router) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    /// `GET path` from the server at `addr`: the status and the body.
    async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            conn.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            conn.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("the answer within 10 s");
        let status = answer[9..12].parse().unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    /// The module table is the router's, not the process's: two routers built with
    /// different tables in one process answer the same module name each from its own, and
    /// replacing one table (as a reload does) changes only its router.
    #[tokio::test]
    async fn two_routers_with_different_module_tables_answer_the_same_module_differently() {
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = up.local_addr().unwrap();
        let tcp = || {
            Modules::parse("modules:\n  m:\n    prober: tcp\n", Path::new("."))
                .unwrap()
                .0
        };
        let (icmp, _) =
            Modules::parse("modules:\n  m:\n    prober: icmp\n", Path::new(".")).unwrap();
        let tcp_table = ModuleTable::new(tcp());
        let icmp_table = ModuleTable::new(icmp);
        let a = serve(routes(tcp_table, ApiAuth::default())).await;
        let b = serve(routes(icmp_table.clone(), ApiAuth::default())).await;
        let path = format!("/probe?module=m&target={target}");

        let (status, body) = get(a, &path).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nprobe_success 1\n"), "{body}");

        let (status, body) = get(b, &path).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.starts_with("Unsupported module \"m\": "), "{body}");

        icmp_table.replace(tcp());
        let (status, body) = get(b, &path).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nprobe_success 1\n"), "{body}");
        drop(up);
    }
}
