//! `GET /metrics`: the daemon's state for Prometheus, in the text format 0.0.4 or OpenMetrics,
//! whichever the scraper's `Accept` asks for ([`Format::negotiate`], as client_golang's
//! `expfmt.Negotiate` decides: OpenMetrics only when asked for by name).
//!
//! Two kinds of data leave here. Counters and histograms that grow with every check or event
//! live in one process-wide [`Counters`] (atomics behind `prometheus-client`'s families, whose
//! lock is a shared read lock once a monitor's series exists, so the per-check cost is an
//! atomic add and a bucket search): the record forwarder calls [`observe_check`], and
//! [`count_events`] follows the event bus for healing actions and firewall repairs. Everything
//! else (monitor status, firewall, notifications, store, scheduler lag) is read at scrape
//! time from the same handles the JSON API uses.
//!
//! Labels are bounded: a monitor's name, a notifier's name, and closed sets of values; never
//! an error text.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::api::ApiState;
use crate::events::{EventBus, EventKind};
use crate::state::Status;
use crate::store::RowState;

/// The content type of an OpenMetrics exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The results a check is counted under.
const CHECK_RESULTS: [&str; 4] = ["ok", "warning", "critical", "unknown"];

/// The outcomes of healing actions: every one is a series from the first scrape, so an
/// `increase()` alert has data before the first action.
const ACTION_OUTCOMES: [&str; 4] = ["taken", "failed", "gave_up", "reboot_pending"];
/// The outcomes of firewall repairs, likewise.
const REPAIR_OUTCOMES: [&str; 2] = ["repaired", "failed"];

/// The two expositions `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// The Prometheus text format 0.0.4: what promtool checks, and what every Prometheus and
    /// most other scrapers read. The default.
    Text,
    /// OpenMetrics 1.0 (family names without `_total`, `# EOF`), for scrapers that ask for it.
    OpenMetrics,
}

impl Format {
    /// The format for an `Accept` header: its media ranges by descending `q` (ties in the
    /// order given), the first that names one of ours wins; `*/*`, nothing or garbage is
    /// the text format. OpenMetrics counts with version 1.0.0, 0.0.1 or none (Prometheus
    /// 2.x asks for both versions).
    fn negotiate(accept: Option<&str>) -> Self {
        let Some(accept) = accept else {
            return Self::Text;
        };
        let mut ranges: Vec<(f64, Option<Self>)> = accept
            .split(',')
            .map(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default().to_ascii_lowercase();
                let (mut q, mut version) = (1.0_f64, None);
                for p in parts {
                    let Some((k, v)) = p.split_once('=') else {
                        continue;
                    };
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().trim_matches('"').to_string()),
                        _ => {}
                    }
                }
                let format = match (media.as_str(), version.as_deref()) {
                    ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => {
                        Some(Self::OpenMetrics)
                    }
                    ("text/plain", None | Some("0.0.4")) => Some(Self::Text),
                    _ => None,
                };
                (q, format)
            })
            .filter(|(q, _)| *q > 0.0)
            .collect();
        // Stable: equal q keep the header's order.
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranges
            .into_iter()
            .find_map(|(_, f)| f)
            .unwrap_or(Self::Text)
    }

    fn encode(self, registry: &Registry) -> Result<(String, &'static str), std::fmt::Error> {
        let mut body = String::with_capacity(16 * 1024);
        match self {
            Self::Text => {
                prometheus_client::encoding::prometheus_text::encode(&mut body, registry)?;
                Ok((
                    body,
                    prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                ))
            }
            Self::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut body, registry)?;
                Ok((body, OPENMETRICS))
            }
        }
    }
}

/// Check-duration buckets in seconds: loopback checks take tens of microseconds, remote ones
/// up to the deadline.
const DURATION_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MonitorLabels {
    monitor: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    monitor: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    monitor: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierLabels {
    notifier: String,
}

#[derive(Clone, Copy, Debug)]
struct DurationBuckets;

impl MetricConstructor<Histogram> for DurationBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(DURATION_BUCKETS)
    }
}

/// What grows with checks and events, shared by the whole process.
#[derive(Debug)]
struct Counters {
    checks: Family<CheckLabels, Counter>,
    durations: Family<MonitorLabels, Histogram, DurationBuckets>,
    actions: Family<OutcomeLabels, Counter>,
    repairs: Family<OutcomeLabels, Counter>,
    /// Checks that ended unknown because portwarden's host was out of descriptors, ports,
    /// buffers or memory.
    local_resource_errors: Counter,
}

static COUNTERS: LazyLock<Counters> = LazyLock::new(|| {
    let c = Counters {
        checks: Family::default(),
        durations: Family::new_with_constructor(DurationBuckets),
        actions: Family::default(),
        repairs: Family::default(),
        local_resource_errors: Counter::default(),
    };
    // Every outcome exists at 0 from the start: `increase()` over a series that appears with
    // its first event misses that event, and an absent series alerts on nothing.
    for outcome in ACTION_OUTCOMES {
        let _ = c.actions.get_or_create(&OutcomeLabels { outcome });
    }
    for outcome in REPAIR_OUTCOMES {
        let _ = c.repairs.get_or_create(&OutcomeLabels { outcome });
    }
    c
});

/// Counts one check result; called where results are produced (the record forwarder).
pub fn observe_check(monitor: &str, status: Status, duration: Duration) {
    let result = match status {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Down => "critical",
        _ => "unknown",
    };
    let c = &*COUNTERS;
    c.checks
        .get_or_create(&CheckLabels {
            monitor: monitor.to_string(),
            result,
        })
        .inc();
    c.durations
        .get_or_create(&MonitorLabels {
            monitor: monitor.to_string(),
        })
        .observe(duration.as_secs_f64());
}

/// Counts one check that portwarden's own host could not run (reason `local_resources`).
pub fn count_local_resource_error() {
    COUNTERS.local_resource_errors.inc();
}

/// Monitors removed by a reload whose counters may still hold series: dropped at each scrape
/// (a check that was running at the reload may still be counted after it).
static RETIRED: LazyLock<Mutex<BTreeSet<String>>> = LazyLock::new(Default::default);

/// Marks removed monitors: their series leave `/metrics` from the next scrape on.
pub fn retire(names: &[String]) {
    let mut retired = RETIRED.lock().unwrap_or_else(|p| p.into_inner());
    retired.extend(names.iter().cloned());
}

/// Drops the counters of retired monitors that are not configured (again) now.
fn drop_retired(configured: &HashSet<&str>) {
    let mut retired = RETIRED.lock().unwrap_or_else(|p| p.into_inner());
    // A name configured again is live: its series stay, and it is no longer retired.
    retired.retain(|name| !configured.contains(name.as_str()));
    let c = &*COUNTERS;
    for name in retired.iter() {
        for result in CHECK_RESULTS {
            c.checks.remove(&CheckLabels {
                monitor: name.clone(),
                result,
            });
        }
        c.durations.remove(&MonitorLabels {
            monitor: name.clone(),
        });
    }
}

/// Counts healing actions and firewall repairs from the event bus until `shutdown`. Lossless:
/// a counter that skipped events in a storm would undercount for good.
pub async fn count_events(bus: EventBus, shutdown: CancellationToken) {
    let mut rx = bus.subscribe_lossless();
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = rx.recv() => e,
        };
        let Some(event) = event else { return };
        let c = &*COUNTERS;
        let (family, outcome) = match &event.kind {
            EventKind::ActionTaken(_) => (&c.actions, "taken"),
            EventKind::ActionFailed(_) => (&c.actions, "failed"),
            EventKind::GaveUp(_) => (&c.actions, "gave_up"),
            EventKind::RebootPending(_) => (&c.actions, "reboot_pending"),
            EventKind::FirewallRepaired(_) => (&c.repairs, "repaired"),
            EventKind::FirewallRepairFailed(_) => (&c.repairs, "failed"),
            _ => continue,
        };
        family.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// The route of this file, merged into the API's router.
pub fn routes() -> Router<ApiState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let registry = scrape(&s).await;
    match format.encode(&registry) {
        Ok((body, content_type)) => ([(CONTENT_TYPE, content_type)], body).into_response(),
        Err(_) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics",
        )
            .into_response(),
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn gauge(value: f64) -> FloatGauge {
    let g = FloatGauge::default();
    g.set(value);
    g
}

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

const STATUSES: [Status; 6] = [
    Status::Unknown,
    Status::Ok,
    Status::Warning,
    Status::Down,
    Status::Flapping,
    Status::Paused,
];

/// Builds this scrape's registry: the shared counters plus gauges read now.
async fn scrape(s: &ApiState) -> Registry {
    let mut r = Registry::default();
    let c = &*COUNTERS;

    let views = s.scheduler.views();
    drop_retired(&views.iter().map(|v| v.name.as_str()).collect());
    let up = Family::<MonitorLabels, Gauge>::default();
    let status = Family::<StatusLabels, Gauge>::default();
    let cert_expiry = Family::<MonitorLabels, Gauge>::default();
    for v in &views {
        // A configured monitor's counters exist from the first scrape, at 0 before its first
        // check: `increase(portwarden_checks_total{result="critical"}[5m])` needs a series
        // to start from. Created once; later scrapes only read.
        for result in CHECK_RESULTS {
            let _ = c.checks.get_or_create(&CheckLabels {
                monitor: v.name.clone(),
                result,
            });
        }
        let _ = c.durations.get_or_create(&MonitorLabels {
            monitor: v.name.clone(),
        });
        if let Some(expiry) = v.cert_expiry {
            cert_expiry
                .get_or_create(&MonitorLabels {
                    monitor: v.name.clone(),
                })
                .set(expiry);
        }
        if let Some(last) = &v.last_check {
            // A check portwarden's own host could not run says nothing about the target:
            // the monitor's status (which such a check leaves alone) answers instead.
            // (absent while the status has no verdict either).
            let ok = if last.reason == Some(portwarden_probe::Reason::LocalResources) {
                match v.status {
                    Status::Ok | Status::Warning => Some(true),
                    Status::Down | Status::Flapping => Some(false),
                    Status::Unknown | Status::Paused => None,
                }
            } else {
                Some(matches!(
                    last.state,
                    portwarden_probe::State::Ok | portwarden_probe::State::Warning
                ))
            };
            if let Some(ok) = ok {
                up.get_or_create(&MonitorLabels {
                    monitor: v.name.clone(),
                })
                .set(i64::from(ok));
            }
        }
        for st in STATUSES {
            status
                .get_or_create(&StatusLabels {
                    monitor: v.name.clone(),
                    status: st.as_str(),
                })
                .set(i64::from(st == v.status));
        }
    }
    r.register(
        "portwarden_monitor_up",
        "Whether the monitor's last check passed (ok or warning)",
        up,
    );
    r.register(
        "portwarden_monitor_status",
        "The monitor's status: 1 for the current one of unknown, ok, warning, down, flapping, paused",
        status,
    );
    r.register(
        "portwarden_cert_expiry_timestamp_seconds",
        "The earliest notAfter of the certificate chain the monitor's last TLS handshake saw",
        cert_expiry,
    );
    r.register(
        "portwarden_checks",
        "Checks run, by monitor and result (ok, warning, critical, unknown)",
        c.checks.clone(),
    );
    r.register(
        "portwarden_check_duration_seconds",
        "How long checks took, resolution to verdict",
        c.durations.clone(),
    );
    r.register(
        "portwarden_local_resource_errors",
        "Checks that ended unknown because portwarden's own host ran out of descriptors, ports, buffers or memory",
        c.local_resource_errors.clone(),
    );
    // Linux cannot make RLIMIT_NOFILE unlimited; elsewhere an unlimited one has no number.
    if let Some(limit) = s.file_limit.limit {
        r.register(
            "portwarden_open_files_limit",
            "The daemon's open-file limit (soft RLIMIT_NOFILE after raising it to the hard one)",
            gauge(limit as f64),
        );
    }
    r.register(
        "portwarden_open_files_needed",
        "Open files the checks need: one per check in flight (max_in_flight, at most one per monitor) plus a reserve",
        gauge(crate::daemon::FileLimit::needed(s.max_in_flight, views.len()) as f64),
    );

    // The firewall guard.
    let firewall = s.firewall.lock().ok().map(|g| {
        (
            g.state,
            g.violations.len(),
            g.repairs_last_hour,
            g.paused_until.is_some(),
        )
    });
    if let Some((state, violations, repairs_hour, paused)) = firewall {
        // Off, or nothing to guard (zero-config on a host without rules): no verdict.
        if !matches!(
            state,
            crate::guard::GuardState::Off | crate::guard::GuardState::Absent
        ) {
            r.register(
                "portwarden_firewall_ok",
                "Whether the last firewall verification found the baseline in place",
                gauge(f64::from(u8::from(state == crate::guard::GuardState::Ok))),
            );
            r.register(
                "portwarden_firewall_violations",
                "Violations found by the last firewall verification",
                gauge(violations as f64),
            );
            r.register(
                "portwarden_firewall_repairs_last_hour",
                "Firewall repairs in the last hour (max_repairs_per_hour applies)",
                gauge(repairs_hour as f64),
            );
            r.register(
                "portwarden_firewall_paused",
                "Whether firewall repairs are paused",
                gauge(f64::from(u8::from(paused))),
            );
        }
    }
    r.register(
        "portwarden_firewall_repairs",
        "Firewall repairs since the daemon started, by outcome (repaired, failed)",
        c.repairs.clone(),
    );
    r.register(
        "portwarden_actions",
        "Self-healing actions since the daemon started, by outcome (taken, failed, gave_up, reboot_pending)",
        c.actions.clone(),
    );

    // Notifications waiting in the outbox, per notifier. Absent when the store cannot be
    // read (still opening, or failed), and then the store counts as down in this scrape too,
    // so the exposition never shows an open store without its outbox gauges.
    let outbox = s.store.outbox_rows().await;
    let outbox_read = outbox.is_ok();
    if let Ok(rows) = outbox {
        let pending = Family::<NotifierLabels, Gauge>::default();
        let failing = Family::<NotifierLabels, Gauge>::default();
        for name in s.notifications.configured() {
            let l = NotifierLabels { notifier: name };
            pending.get_or_create(&l).set(0);
            failing.get_or_create(&l).set(0);
        }
        for row in rows {
            let family = match row.state {
                RowState::Pending => &pending,
                RowState::Failing => &failing,
            };
            family
                .get_or_create(&NotifierLabels {
                    notifier: row.notifier,
                })
                .inc();
        }
        r.register(
            "portwarden_notifications_pending",
            "Notifications waiting for delivery, per notifier",
            pending,
        );
        r.register(
            "portwarden_notifications_failing",
            "Notifications that keep failing (retried at the longest interval), per notifier",
            failing,
        );
    }

    // The store.
    let store = s.store.health();
    r.register(
        "portwarden_store_up",
        "Whether the history database is open and writable",
        gauge(f64::from(u8::from(
            store.state == crate::store::StoreState::Ok && outbox_read,
        ))),
    );
    r.register(
        "portwarden_store_records_written",
        "Check results committed to the store since the daemon started",
        counter(store.records_written),
    );
    r.register(
        "portwarden_store_dropped",
        "Results and state changes lost since the daemon started",
        counter(store.dropped),
    );
    r.register(
        "portwarden_store_journaled",
        "State changes held in memory since the daemon started because the store was failed",
        counter(store.journaled),
    );
    r.register(
        "portwarden_store_journal_pending",
        "State changes held in memory now, waiting for the store to recover",
        gauge(store.journal_pending as f64),
    );
    r.register(
        "portwarden_store_journal_written",
        "Journaled state changes written once the store recovered",
        counter(store.journal_written),
    );
    r.register(
        "portwarden_store_journal_dropped",
        "Journaled state changes lost because the journal was full (also in _dropped)",
        counter(store.journal_dropped),
    );
    r.register(
        "portwarden_store_db_bytes",
        "Size of the database and its write-ahead log, as of the last housekeeping",
        gauge(store.db_bytes as f64),
    );

    // The scheduler.
    // Three gauges, not one with a `quantile` label: that label belongs to summaries (with
    // `_sum` and `_count`), and promtool refuses it on a gauge.
    let lag = s.scheduler.lag();
    for (name, help, ms) in [
        (
            "portwarden_scheduler_start_lag_p50_seconds",
            "How late checks start after their slot since the daemon started: the median",
            lag.p50_ms,
        ),
        (
            "portwarden_scheduler_start_lag_p99_seconds",
            "How late checks start after their slot since the daemon started: the 99th percentile",
            lag.p99_ms,
        ),
        (
            "portwarden_scheduler_start_lag_max_seconds",
            "How late checks start after their slot since the daemon started: the maximum",
            lag.max_ms,
        ),
    ] {
        r.register(name, help, gauge(ms / 1000.0));
    }
    r.register(
        "portwarden_scheduler_lagged_checks",
        "Scheduled checks whose start lag was measured",
        counter(lag.checks),
    );
    r.register(
        "portwarden_scheduler_in_flight",
        "Checks running now",
        gauge(s.scheduler.in_flight(s.max_in_flight) as f64),
    );
    r.register(
        "portwarden_scheduler_max_in_flight",
        "The most checks that may run at once",
        gauge(s.max_in_flight as f64),
    );
    r.register(
        "portwarden_monitors",
        "Monitors configured",
        gauge(s.scheduler.len() as f64),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_results_count_by_monitor_and_result() {
        observe_check("unit-a", Status::Ok, Duration::from_millis(2));
        observe_check("unit-a", Status::Down, Duration::from_millis(3));
        observe_check("unit-a", Status::Down, Duration::from_millis(3));
        let mut r = Registry::default();
        r.register("portwarden_checks", "", COUNTERS.checks.clone());
        r.register(
            "portwarden_check_duration_seconds",
            "",
            COUNTERS.durations.clone(),
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        assert!(text.contains("portwarden_checks_total{monitor=\"unit-a\",result=\"critical\"} 2"));
        assert!(text.contains("portwarden_checks_total{monitor=\"unit-a\",result=\"ok\"} 1"));
        assert!(text.contains("portwarden_check_duration_seconds_count{monitor=\"unit-a\"} 3"));
    }

    #[test]
    fn the_accept_header_picks_the_exposition_as_client_golang_does() {
        use Format::{OpenMetrics, Text};
        // Prometheus 2.42's scrape header.
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            )),
            OpenMetrics
        );
        // An older Prometheus, curl, nothing at all.
        assert_eq!(Format::negotiate(Some("text/plain;version=0.0.4")), Text);
        assert_eq!(Format::negotiate(Some("*/*")), Text);
        assert_eq!(Format::negotiate(None), Text);
        // The higher q wins whatever the order; an unknown version does not count.
        assert_eq!(
            Format::negotiate(Some(
                "text/plain;version=0.0.4;q=0.3, application/openmetrics-text; version=1.0.0"
            )),
            OpenMetrics
        );
        assert_eq!(
            Format::negotiate(Some(
                "application/openmetrics-text;version=1.0.0;q=0.2,text/plain;q=0.9"
            )),
            Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;version=2.0.0")),
            Text
        );
        assert_eq!(
            Format::negotiate(Some("application/openmetrics-text;q=0")),
            Text
        );
    }

    #[test]
    fn the_text_format_names_counters_with_total_in_help_and_type() {
        let mut r = Registry::default();
        r.register("portwarden_actions", "Actions", COUNTERS.actions.clone());
        let (text, content_type) = Format::Text.encode(&r).unwrap();
        assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
        assert!(
            text.contains("# HELP portwarden_actions_total Actions"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE portwarden_actions_total counter"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        // Every outcome is there before any action.
        for outcome in ACTION_OUTCOMES {
            assert!(
                text.contains(&format!(
                    "portwarden_actions_total{{outcome=\"{outcome}\"}}"
                )),
                "{text}"
            );
        }
        let (om, content_type) = Format::OpenMetrics.encode(&r).unwrap();
        assert_eq!(content_type, OPENMETRICS);
        assert!(om.contains("# TYPE portwarden_actions counter"), "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }
}
