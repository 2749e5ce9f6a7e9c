//! systemd over D-Bus (zbus): `org.freedesktop.systemd1.Manager` jobs and their
//! `JobRemoved` results. See [`crate::unit`] for the keys and the behaviour.

use std::time::Duration;

use futures_util::StreamExt;
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use crate::exec::one_line;
use crate::runner::{run_command, CommandPlan};
use crate::spec::{BusKind, UnitAction};
use crate::unit::{unit_name, Verb};
use crate::Outcome;

/// How long connecting may take before we call the bus unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_blocking = false
)]
trait Manager {
    fn subscribe(&self) -> zbus::Result<()>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn try_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;
    #[zbus(signal)]
    fn job_removed(
        &self,
        id: u32,
        job: zbus::zvariant::ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn sub_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn requires(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property)]
    fn binds_to(&self) -> zbus::Result<Vec<String>>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Service",
    default_service = "org.freedesktop.systemd1",
    gen_blocking = false
)]
trait Service {
    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> zbus::Result<u32>;
}

/// Connects to the bus `a` names.
pub(crate) async fn connect(bus: BusKind, address: Option<&str>) -> Result<Connection, String> {
    let fut = async {
        match (address, bus) {
            (Some(addr), _) => zbus::connection::Builder::address(addr)?.build().await,
            (None, BusKind::System) => Connection::system().await,
            (None, BusKind::User) => Connection::session().await,
        }
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!(
            "cannot reach the {} bus: {e}",
            bus_word(bus, address)
        )),
        Err(_) => Err(format!(
            "cannot reach the {} bus: no answer within {}s",
            bus_word(bus, address),
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

fn bus_word(bus: BusKind, address: Option<&str>) -> String {
    match (address, bus) {
        (Some(a), _) => format!("D-Bus at {a}"),
        (None, BusKind::System) => "system".into(),
        (None, BusKind::User) => "session".into(),
    }
}

/// `org.freedesktop.systemd1.NoSuchUnit: Unit nope.service not found.`
pub(crate) fn dbus_error(e: &zbus::Error) -> String {
    match e {
        zbus::Error::MethodError(name, Some(text), _) => format!("{name}: {text}"),
        zbus::Error::MethodError(name, None, _) => name.to_string(),
        zbus::Error::FDO(fdo) => fdo.to_string(),
        other => other.to_string(),
    }
}

/// Runs the verb over D-Bus. `Err` only when the bus cannot be reached (the caller falls
/// back to `systemctl`); everything after that is an [`Outcome`].
pub(crate) async fn run(a: &UnitAction, verb: Verb, timeout: Duration) -> Result<Outcome, String> {
    let conn = connect(a.bus, a.bus_address.as_deref()).await?;
    let unit = unit_name(&a.unit);
    let work = jobs(&conn, a, &unit, verb);
    let (ok, summary, output) = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => (
            false,
            format!(
                "{} {unit}: no job result within {} (the job is left to systemd)",
                verb.as_str(),
                humantime::format_duration(timeout)
            ),
            String::new(),
        ),
    };
    Ok(Outcome {
        ok,
        summary,
        output,
        took: Duration::ZERO,
    })
}

async fn jobs(conn: &Connection, a: &UnitAction, unit: &str, verb: Verb) -> (bool, String, String) {
    let manager = match ManagerProxy::new(conn).await {
        Ok(m) => m,
        Err(e) => {
            return (
                false,
                format!("{} {unit}: {}", verb.as_str(), dbus_error(&e)),
                String::new(),
            )
        }
    };
    // Open the signal stream before any job exists so its JobRemoved cannot be missed.
    let mut removed = match manager.receive_job_removed().await {
        Ok(s) => s,
        Err(e) => {
            return (
                false,
                format!("{} {unit}: {}", verb.as_str(), dbus_error(&e)),
                String::new(),
            )
        }
    };
    if let Err(e) = manager.subscribe().await {
        // Already subscribed on this connection is fine; anything else is worth saying.
        tracing::debug!(target: "act::systemd", "systemd Subscribe: {}", dbus_error(&e));
    }
    let before = main_pid(conn, &manager, unit).await;
    let mut deps_note = String::new();
    let mut output = String::new();
    if a.with_dependencies && verb == Verb::Restart {
        let deps = dependencies(conn, &manager, unit).await;
        let mut parts = Vec::new();
        for dep in deps {
            match manager.try_restart_unit(&dep, "replace").await {
                Ok(job) => {
                    let result = wait_job(&mut removed, &job).await;
                    if result != "done" {
                        let (state, hint) = failure_details(conn, &manager, a, &dep).await;
                        output.push_str(&hint);
                        return (
                            false,
                            format!("try-restart of dependency {dep} {result} ({state}); {unit} left alone"),
                            output,
                        );
                    }
                    parts.push(dep);
                }
                Err(e) => {
                    return (
                        false,
                        format!(
                            "try-restart of dependency {dep}: {}; {unit} left alone",
                            dbus_error(&e)
                        ),
                        output,
                    )
                }
            }
        }
        if !parts.is_empty() {
            deps_note = format!(", after {}", parts.join(", "));
        }
    }
    let call = match verb {
        Verb::Restart => manager.restart_unit(unit, "replace").await,
        Verb::Start => manager.start_unit(unit, "replace").await,
        Verb::Stop => manager.stop_unit(unit, "replace").await,
    };
    let job = match call {
        Ok(j) => j,
        Err(e) => {
            return (
                false,
                format!("{} {unit}: {}", verb.as_str(), dbus_error(&e)),
                output,
            )
        }
    };
    let result = wait_job(&mut removed, &job).await;
    if result == "done" {
        let after = main_pid(conn, &manager, unit).await;
        let pids = match (verb, before, after) {
            (Verb::Stop, _, _) => String::new(),
            (_, Some(b), Some(n)) if b != 0 && b != n => format!(", MainPID {b} → {n}"),
            (_, _, Some(n)) if n != 0 => format!(", MainPID {n}"),
            _ => String::new(),
        };
        return (
            true,
            format!("{} {unit} (job done{pids}{deps_note})", verb.past()),
            output,
        );
    }
    let (state, hint) = failure_details(conn, &manager, a, unit).await;
    let mut summary = format!(
        "{} of {unit} {result} (job {result}; {state})",
        verb.as_str()
    );
    if let Some(line) = hint.lines().rev().find(|l| !l.trim().is_empty()) {
        summary.push_str(": ");
        summary.push_str(&one_line(line.trim(), 200));
    }
    output.push_str(&hint);
    (false, summary, output)
}

/// Waits for the `JobRemoved` of `job`; its result, or `lost` when the stream ends.
async fn wait_job(removed: &mut JobRemovedStream, job: &OwnedObjectPath) -> String {
    while let Some(sig) = removed.next().await {
        let Ok(args) = sig.args() else { continue };
        if args.job.as_str() == job.as_str() {
            return args.result.to_string();
        }
    }
    "lost (the bus connection closed)".into()
}

async fn unit_proxy<'a>(
    conn: &'a Connection,
    manager: &ManagerProxy<'_>,
    unit: &str,
) -> Option<UnitProxy<'a>> {
    let path = manager.load_unit(unit).await.ok()?;
    UnitProxy::builder(conn)
        .path(path)
        .ok()?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()
}

async fn main_pid(conn: &Connection, manager: &ManagerProxy<'_>, unit: &str) -> Option<u32> {
    if !unit.ends_with(".service") {
        return None;
    }
    let path = manager.load_unit(unit).await.ok()?;
    let svc = ServiceProxy::builder(conn)
        .path(path)
        .ok()?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
        .ok()?;
    svc.main_pid().await.ok()
}

/// The `.service` units in `Requires=` and `BindsTo=`, in order, without repeats.
async fn dependencies(conn: &Connection, manager: &ManagerProxy<'_>, unit: &str) -> Vec<String> {
    let Some(u) = unit_proxy(conn, manager, unit).await else {
        return Vec::new();
    };
    let mut deps = u.requires().await.unwrap_or_default();
    deps.extend(u.binds_to().await.unwrap_or_default());
    let mut seen = Vec::new();
    for d in deps {
        if d.ends_with(".service") && !seen.contains(&d) {
            seen.push(d);
        }
    }
    seen
}

/// `failed/failed` and, on the default buses, the last journal lines of the unit.
async fn failure_details(
    conn: &Connection,
    manager: &ManagerProxy<'_>,
    a: &UnitAction,
    unit: &str,
) -> (String, String) {
    let state = match unit_proxy(conn, manager, unit).await {
        Some(u) => format!(
            "{}/{}",
            u.active_state().await.unwrap_or_else(|_| "?".into()),
            u.sub_state().await.unwrap_or_else(|_| "?".into())
        ),
        None => "state unknown".into(),
    };
    // A private bus (tests, containers) has no journal of ours to read.
    if a.bus_address.is_some() {
        return (state, String::new());
    }
    let mut argv = vec!["journalctl".to_string()];
    if a.bus == BusKind::User {
        argv.push("--user".into());
    }
    argv.extend(["-u", unit, "-n", "3", "-o", "cat", "--no-pager", "-q"].map(String::from));
    let f = run_command(&CommandPlan::argv(argv), Duration::from_secs(3)).await;
    let hint = if f.success() { f.stdout } else { String::new() };
    (state, hint)
}
