//! `GET /api/v1/events`: the event bus as server-sent events. Each event is one SSE event
//! whose `event:` is its kind (`monitor_down`, `monitor_up`, `action_taken`, …) and whose
//! `data:` is its JSON (the same object, with `event` and `at`). A comment every 15 s (a third
//! of `[daemon] http_idle_timeout` when that is shorter) keeps idle connections open. A client
//! that reads too slowly never holds the bus up: it loses the oldest events and gets a `lagged` event with their count (`{"event":"lagged","missed":N}`).
//! Streams end when the daemon shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::api::ApiState;

/// Idle time after which a keep-alive comment goes out (less when the HTTP idle timeout is
/// short, see [`keep_alive_within`]).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The keep-alive interval for an HTTP idle timeout: 15 s, or a third of the timeout when that
/// is shorter, so a stream never looks idle to the connection limits.
pub fn keep_alive_within(idle_timeout: Duration) -> Duration {
    KEEP_ALIVE
        .min(idle_timeout / 3)
        .max(Duration::from_millis(100))
}

/// The routes of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/events", get(events))
}

/// The event bus as server-sent events (never ends by itself; see the module docs).
#[utoipa::path(get, path = "/api/v1/events", tag = "events",
    responses((status = 200,
        description = "Server-sent events: `event:` the kind, `data:` the event's JSON; \
                       `lagged` with `missed` when the client fell behind",
        content_type = "text/event-stream", body = String)))]
pub(crate) async fn events(
    State(s): State<ApiState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = s.bus.subscribe();
    let stop = s.stop.clone();
    let keep_alive = s.sse_keep_alive;
    let stream = futures_util::stream::unfold((rx, stop), |(mut rx, stop)| async move {
        let next = tokio::select! {
            () = stop.cancelled() => return None,
            next = rx.recv() => next,
        };
        let event = match next {
            Ok(event) => {
                let value = serde_json::to_value(&*event).unwrap_or_default();
                let kind = value
                    .get("event")
                    .and_then(|k| k.as_str())
                    .unwrap_or("event")
                    .to_string();
                SseEvent::default().event(kind).data(value.to_string())
            }
            Err(RecvError::Lagged(missed)) => SseEvent::default()
                .event("lagged")
                .data(serde_json::json!({ "event": "lagged", "missed": missed }).to_string()),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, stop)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
}
