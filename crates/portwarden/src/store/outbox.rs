//! The notification outbox, the delivery log and silences.
//!
//! - `outbox`: one row per notification per notifier, written (committed) before any send
//!   attempt and deleted only when delivered. `seq` (assigned by the dispatcher, the only
//!   writer) is the delivery order. Rows enter and change through [`OutboxOp`]s, which travel
//!   on the store task's queue like check results but are answered once committed, so the
//!   dispatcher knows a row is durable before it sends.
//! - `deliveries`: the last [`DELIVERIES_KEPT`] notifications delivered per notifier, with
//!   what the receiver answered, for `GET /api/v1/notifications`.
//! - `notified`: per monitor, the outage whose DOWN or UP was queued last, written from the
//!   rows in their own transaction. After a crash it says what receivers were told, which the
//!   store's incidents (written on another path, a moment apart) cannot: see [`Carried`].
//! - `silences`: written by `portwarden silence` straight into the database file (another
//!   process, WAL mode) and read by the dispatcher at notification time.
//! - `reminders`: when each notifier last reminded about each monitor still DOWN, written in
//!   the same transaction as the reminder's outbox row, so a restart resumes the reminder
//!   schedule: the next one comes on time, and the last one is not repeated.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::error::StoreError;
use super::open::{self, OpenError};

/// Delivered notifications kept per notifier in the delivery log.
pub(crate) const DELIVERIES_KEPT: i64 = 100;

/// Whether a row still gets its normal retries or has been reported as failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    Pending,
    /// Too many failed attempts, a non-retryable error, or its notifier is gone: reported,
    /// retried at the longest interval, never dropped.
    Failing,
}

impl RowState {
    fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Failing => "failing",
        }
    }

    fn parse(s: &str) -> RowState {
        if s == "failing" {
            RowState::Failing
        } else {
            RowState::Pending
        }
    }
}

/// One notification waiting for one notifier.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Delivery order (per notifier, rows go out in `seq` order).
    pub seq: i64,
    pub notifier: String,
    pub notification: portwarden_notify::Notification,
    pub created_ms: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub state: RowState,
}

/// A row's retry bookkeeping after an attempt (or a reload).
#[derive(Debug, Clone, PartialEq)]
pub struct RowUpdate {
    pub seq: i64,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub state: RowState,
}

/// One delivered notification, as the delivery log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivered {
    pub notifier: String,
    pub id: String,
    /// `down`, `up`, `grouped`, …
    pub kind: String,
    /// Events in the notification (more than one when grouped).
    pub items: usize,
    /// Unix milliseconds.
    pub delivered_ms: i64,
    /// What the receiver answered.
    pub response: String,
}

/// When a notifier last reminded about a monitor; `None`: forget it (the monitor recovered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderMark {
    pub monitor: String,
    pub notifier: String,
    /// Unix milliseconds.
    pub last_ms: Option<i64>,
}

impl ReminderMark {
    /// Forgets every reminder time of `monitor`.
    pub fn forget(monitor: &str) -> Self {
        ReminderMark {
            monitor: monitor.to_string(),
            notifier: String::new(),
            last_ms: None,
        }
    }
}

/// Last reminder per monitor, then per notifier (Unix ms).
pub type Reminded = HashMap<String, HashMap<String, i64>>;

/// A change to the outbox, committed by the store task.
#[derive(Debug)]
pub(crate) enum OutboxOp {
    /// New rows, and the reminder times they record (one transaction: a reminder is queued
    /// exactly when its time is).
    Insert {
        rows: Vec<OutboxRow>,
        reminders: Vec<ReminderMark>,
    },
    /// Rows that went out together: deleted, and the delivery logged.
    Delivered {
        seqs: Vec<i64>,
        log: Delivered,
    },
    Update(Vec<RowUpdate>),
}

/// Applies one outbox change inside the caller's transaction. Never fails on a row that is
/// already there or already gone: the dispatcher's view and the table may briefly disagree
/// after a failed batch, and a constraint error must not roll back the check results
/// committed in the same batch.
pub(crate) fn apply(conn: &Connection, op: &OutboxOp) -> rusqlite::Result<()> {
    match op {
        OutboxOp::Insert { rows, reminders } => {
            let mut set = conn.prepare_cached(
                "INSERT OR REPLACE INTO reminders (monitor, notifier, last_ms) VALUES (?1, ?2, ?3)",
            )?;
            let mut forget = conn.prepare_cached("DELETE FROM reminders WHERE monitor = ?1")?;
            for m in reminders {
                match m.last_ms {
                    Some(at) => set.execute(params![m.monitor, m.notifier, at])?,
                    None => forget.execute([&m.monitor])?,
                };
            }
            let mut stmt = conn.prepare_cached(
                "INSERT OR IGNORE INTO outbox
                 (seq, notifier, id, body, created_ms, attempts, next_attempt_ms, last_error, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut notified = conn.prepare_cached(
                "INSERT OR REPLACE INTO notified (monitor, since_ms, down) VALUES (?1, ?2, ?3)",
            )?;
            for r in rows {
                if let Some((monitor, since_ms, down)) = told(&r.notification) {
                    notified.execute(params![monitor, since_ms, down])?;
                }
                let body = serde_json::to_string(&r.notification)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                stmt.execute(params![
                    r.seq,
                    r.notifier,
                    r.notification.id,
                    body,
                    r.created_ms,
                    r.attempts,
                    r.next_attempt_ms,
                    r.last_error,
                    r.state.as_str()
                ])?;
            }
        }
        OutboxOp::Delivered { seqs, log } => {
            let mut del = conn.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
            for seq in seqs {
                del.execute([seq])?;
            }
            conn.prepare_cached(
                "INSERT INTO deliveries (notifier, id, kind, items, delivered_ms, response)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                log.notifier,
                log.id,
                log.kind,
                log.items as i64,
                log.delivered_ms,
                log.response
            ])?;
            // Keep the newest entries of this notifier only.
            conn.prepare_cached(
                "DELETE FROM deliveries WHERE notifier = ?1 AND rowid <= (
                     SELECT rowid FROM deliveries WHERE notifier = ?1
                     ORDER BY rowid DESC LIMIT 1 OFFSET ?2)",
            )?
            .execute(params![log.notifier, DELIVERIES_KEPT])?;
        }
        OutboxOp::Update(updates) => {
            let mut stmt = conn.prepare_cached(
                "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4, state = ?5
                 WHERE seq = ?1",
            )?;
            for u in updates {
                stmt.execute(params![
                    u.seq,
                    u.attempts,
                    u.next_attempt_ms,
                    u.last_error,
                    u.state.as_str()
                ])?;
            }
        }
    }
    Ok(())
}

/// What a monitor's DOWN or UP row tells: (monitor, outage start, whether DOWN).
fn told(n: &portwarden_notify::Notification) -> Option<(&str, i64, bool)> {
    let [item] = n.items.as_slice() else {
        return None;
    };
    let down = match item.kind {
        portwarden_notify::Kind::Down => true,
        portwarden_notify::Kind::Up => false,
        _ => return None,
    };
    let since = i64::try_from(item.since_ms?).ok()?;
    Some((item.subject.as_str(), since, down))
}

/// Clocks of an incident's start in the store and of its DOWN event are read a moment apart.
const SAME_OUTAGE_MS: i64 = 250;

/// A monitor DOWN when the daemon last ran, as the dispatcher picks it up after a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Carried {
    /// The outage's start (Unix ms).
    pub since_ms: i64,
    /// Whether its DOWN was queued; false when the store recorded the outage but the daemon
    /// stopped before the notification was written.
    pub announced: bool,
    /// Whether the store saw the outage end although its UP was never queued (the daemon
    /// stopped in between): only the UP is owed, the monitor's state now is news of its own.
    pub ended: bool,
}

/// The monitors DOWN before the restart, from the store's open incidents and what the
/// notifications told (`notified`), which are written a moment apart: a DOWN told is carried
/// even if the store missed it, and marked ended if the store saw its end; an open incident
/// whose UP was told is over (the store missed its end); an open incident never told is
/// carried as not announced.
pub(crate) fn carried(conn: &Connection) -> Result<HashMap<String, Carried>, StoreError> {
    let open = super::query::open_incidents(conn)?;
    let mut stmt = conn.prepare_cached("SELECT monitor, since_ms, down FROM notified")?;
    let told = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)?, r.get::<_, bool>(2)?),
            ))
        })?
        .collect::<rusqlite::Result<HashMap<_, _>>>()?;
    let mut closed = conn.prepare_cached(
        "SELECT count(*) FROM incidents i JOIN monitors m ON m.id = i.monitor_id
         WHERE m.name = ?1 AND i.start_ms BETWEEN ?2 AND ?3 AND i.end_ms IS NOT NULL",
    )?;
    let mut carried = HashMap::new();
    for (monitor, (since_ms, down)) in &told {
        if !*down {
            continue;
        }
        let ended = !open.contains_key(monitor)
            && closed.query_row(
                params![
                    monitor,
                    since_ms - SAME_OUTAGE_MS,
                    since_ms + SAME_OUTAGE_MS
                ],
                |r| r.get::<_, i64>(0),
            )? > 0;
        // The store's start when it has the incident open (the same outage, or an earlier
        // start the notification did not know), else the notification's.
        let since_ms = open.get(monitor).copied().unwrap_or(*since_ms);
        carried.insert(
            monitor.clone(),
            Carried {
                since_ms,
                announced: true,
                ended,
            },
        );
    }
    for (monitor, start) in open {
        if carried.contains_key(&monitor) {
            continue;
        }
        let up_told =
            matches!(told.get(&monitor), Some((since, false)) if *since >= start - SAME_OUTAGE_MS);
        if !up_told {
            carried.insert(
                monitor,
                Carried {
                    since_ms: start,
                    announced: false,
                    ended: false,
                },
            );
        }
    }
    Ok(carried)
}

/// Every outbox row in delivery order. A row whose body no longer parses stays in the table
/// (reported, never deleted) and is left out.
pub(crate) fn load(conn: &Connection) -> Result<Vec<OutboxRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, notifier, body, created_ms, attempts, next_attempt_ms, last_error, state
         FROM outbox ORDER BY seq",
    )?;
    let raw = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut rows = Vec::with_capacity(raw.len());
    for (seq, notifier, body, created_ms, attempts, next_attempt_ms, last_error, state) in raw {
        match serde_json::from_str(&body) {
            Ok(notification) => rows.push(OutboxRow {
                seq,
                notifier,
                notification,
                created_ms,
                attempts,
                next_attempt_ms,
                last_error,
                state: RowState::parse(&state),
            }),
            Err(e) => tracing::error!(seq, %notifier, error = %e,
                "outbox row cannot be read; it stays in the database but is not sent"),
        }
    }
    Ok(rows)
}

/// The reminder times kept from before (see the module docs).
pub(crate) fn load_reminders(conn: &Connection) -> Result<Reminded, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT monitor, notifier, last_ms FROM reminders")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut reminded = Reminded::new();
    for row in rows {
        let (monitor, notifier, at) = row?;
        reminded.entry(monitor).or_default().insert(notifier, at);
    }
    Ok(reminded)
}

/// A waiting notification, as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    pub id: String,
    pub kind: String,
    /// The monitors (or `firewall`) it is about.
    pub subjects: Vec<String>,
    /// `pending` or `failing`.
    #[schema(value_type = String)]
    pub state: RowState,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub attempts: u32,
    /// Unix milliseconds.
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// One notifier's outbox and recent deliveries.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct NotifierQueue {
    pub pending: Vec<Waiting>,
    pub failing: Vec<Waiting>,
    /// Newest first.
    pub delivered: Vec<Delivered>,
}

/// The outbox and delivery log by notifier name; `limit` rows of each list at most.
pub(crate) fn overview(
    conn: &Connection,
    limit: usize,
) -> Result<BTreeMap<String, NotifierQueue>, StoreError> {
    let mut out: BTreeMap<String, NotifierQueue> = BTreeMap::new();
    for row in load(conn)? {
        let q = out.entry(row.notifier.clone()).or_default();
        let list = match row.state {
            RowState::Pending => &mut q.pending,
            RowState::Failing => &mut q.failing,
        };
        if list.len() < limit {
            list.push(Waiting {
                id: row.notification.id.clone(),
                kind: kind_name(row.notification.kind),
                subjects: row
                    .notification
                    .items
                    .iter()
                    .map(|i| i.subject.clone())
                    .collect(),
                state: row.state,
                created_ms: row.created_ms,
                attempts: row.attempts,
                next_attempt_ms: row.next_attempt_ms,
                last_error: row.last_error,
            });
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT notifier, id, kind, items, delivered_ms, response FROM deliveries
         ORDER BY rowid DESC",
    )?;
    let delivered = stmt.query_map([], |r| {
        Ok(Delivered {
            notifier: r.get(0)?,
            id: r.get(1)?,
            kind: r.get(2)?,
            items: r.get::<_, i64>(3)?.max(0) as usize,
            delivered_ms: r.get(4)?,
            response: r.get(5)?,
        })
    })?;
    for d in delivered {
        let d = d?;
        let q = out.entry(d.notifier.clone()).or_default();
        if q.delivered.len() < limit {
            q.delivered.push(d);
        }
    }
    Ok(out)
}

/// The snake_case name of a notification kind (`firewall_violation`).
pub fn kind_name(kind: portwarden_notify::Kind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A silence: notifications about matching monitors are held until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Silence {
    pub id: i64,
    /// A monitor name, `*` (everything), or a prefix ending in `*` (`web-*`).
    pub monitor: String,
    /// Unix milliseconds.
    pub until_ms: i64,
    pub reason: String,
    /// Unix milliseconds.
    pub created_ms: i64,
}

impl Silence {
    /// Whether this silence covers `subject` (a monitor name, or `firewall`).
    pub fn matches(&self, subject: &str) -> bool {
        match self.monitor.strip_suffix('*') {
            Some(prefix) => subject.starts_with(prefix),
            None => self.monitor == subject,
        }
    }
}

/// Silences still in force at `now_ms`, oldest first.
pub(crate) fn active_silences(conn: &Connection, now_ms: i64) -> rusqlite::Result<Vec<Silence>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, monitor, until_ms, reason, created_ms FROM silences
         WHERE until_ms > ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([now_ms], |r| {
        Ok(Silence {
            id: r.get(0)?,
            monitor: r.get(1)?,
            until_ms: r.get(2)?,
            reason: r.get(3)?,
            created_ms: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Direct access to the database file for `portwarden silence` (same host, another process
/// than the daemon; WAL mode and the busy timeout make that safe). Creates the database if
/// the daemon never ran.
#[derive(Debug)]
pub struct SilenceFile {
    conn: Connection,
}

impl SilenceFile {
    pub fn open(path: &Path) -> Result<SilenceFile, OpenError> {
        Ok(SilenceFile {
            conn: open::open_writer(path)?,
        })
    }

    /// Adds a silence; returns it with its id.
    pub fn add(
        &self,
        monitor: &str,
        until_ms: i64,
        reason: &str,
        now_ms: i64,
    ) -> rusqlite::Result<Silence> {
        self.conn.execute(
            "INSERT INTO silences (monitor, until_ms, reason, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![monitor, until_ms, reason, now_ms],
        )?;
        Ok(Silence {
            id: self.conn.last_insert_rowid(),
            monitor: monitor.to_string(),
            until_ms,
            reason: reason.to_string(),
            created_ms: now_ms,
        })
    }

    /// Silences in force at `now_ms`; expired ones are deleted on the way (they ended by
    /// themselves, nothing reads them).
    pub fn active(&self, now_ms: i64) -> rusqlite::Result<Vec<Silence>> {
        self.conn
            .execute("DELETE FROM silences WHERE until_ms <= ?1", [now_ms])?;
        active_silences(&self.conn, now_ms)
    }

    /// Ends a silence now; `None` when there is no such silence.
    pub fn remove(&self, id: i64) -> rusqlite::Result<Option<Silence>> {
        let found = self
            .conn
            .query_row(
                "SELECT id, monitor, until_ms, reason, created_ms FROM silences WHERE id = ?1",
                [id],
                |r| {
                    Ok(Silence {
                        id: r.get(0)?,
                        monitor: r.get(1)?,
                        until_ms: r.get(2)?,
                        reason: r.get(3)?,
                        created_ms: r.get(4)?,
                    })
                },
            )
            .optional()?;
        if found.is_some() {
            self.conn
                .execute("DELETE FROM silences WHERE id = ?1", [id])?;
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(id: &str) -> portwarden_notify::Notification {
        portwarden_notify::Notification {
            id: id.into(),
            kind: portwarden_notify::Kind::Down,
            host: "h".into(),
            at_ms: 1,
            items: vec![portwarden_notify::Item {
                kind: portwarden_notify::Kind::Down,
                subject: "web".into(),
                target: None,
                status: "down".into(),
                reason: None,
                message: "refused".into(),
                received: None,
                detail: None,
                action: None,
                down_for_secs: None,
                since_ms: None,
                tags: vec![],
                incident: "h/web".into(),
            }],
        }
    }

    fn row(seq: i64, notifier: &str) -> OutboxRow {
        OutboxRow {
            seq,
            notifier: notifier.into(),
            notification: note(&format!("web:down:{seq}")),
            created_ms: seq,
            attempts: 0,
            next_attempt_ms: seq,
            last_error: None,
            state: RowState::Pending,
        }
    }

    #[test]
    fn reminder_times_are_kept_replaced_and_forgotten_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open::open_writer(&dir.path().join("h.db")).unwrap();
        let mark = |monitor: &str, notifier: &str, last_ms| ReminderMark {
            monitor: monitor.into(),
            notifier: notifier.into(),
            last_ms,
        };
        let insert = |rows, reminders| OutboxOp::Insert { rows, reminders };
        apply(
            &conn,
            &insert(
                vec![row(1, "a")],
                vec![mark("web", "a", Some(10)), mark("db", "a", Some(20))],
            ),
        )
        .unwrap();
        apply(&conn, &insert(vec![], vec![mark("web", "a", Some(30))])).unwrap();
        apply(&conn, &insert(vec![], vec![mark("web", "b", Some(40))])).unwrap();
        let r = load_reminders(&conn).unwrap();
        assert_eq!(
            r["web"],
            HashMap::from([("a".into(), 30), ("b".into(), 40)])
        );
        assert_eq!(r["db"]["a"], 20);
        assert_eq!(load(&conn).unwrap().len(), 1);
        apply(&conn, &insert(vec![], vec![ReminderMark::forget("web")])).unwrap();
        let r = load_reminders(&conn).unwrap();
        assert!(!r.contains_key("web"));
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn rows_survive_until_delivered_and_the_log_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open::open_writer(&dir.path().join("h.db")).unwrap();
        apply(
            &conn,
            &OutboxOp::Insert {
                rows: vec![row(1, "a"), row(2, "a"), row(3, "b")],
                reminders: vec![],
            },
        )
        .unwrap();
        // A second insert of the same row is harmless.
        apply(
            &conn,
            &OutboxOp::Insert {
                rows: vec![row(1, "a")],
                reminders: vec![],
            },
        )
        .unwrap();
        apply(
            &conn,
            &OutboxOp::Update(vec![RowUpdate {
                seq: 2,
                attempts: 5,
                next_attempt_ms: 99,
                last_error: Some("refused".into()),
                state: RowState::Failing,
            }]),
        )
        .unwrap();
        let rows = load(&conn).unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(rows[1].state, RowState::Failing);
        assert_eq!(rows[1].notification, note("web:down:2"));
        for i in 0..(DELIVERIES_KEPT + 5) {
            apply(
                &conn,
                &OutboxOp::Delivered {
                    seqs: vec![1],
                    log: Delivered {
                        notifier: "a".into(),
                        id: format!("n{i}"),
                        kind: "down".into(),
                        items: 1,
                        delivered_ms: i,
                        response: "ok".into(),
                    },
                },
            )
            .unwrap();
        }
        let o = overview(&conn, 1000).unwrap();
        assert_eq!(o["a"].delivered.len() as i64, DELIVERIES_KEPT);
        assert_eq!(o["a"].delivered[0].id, format!("n{}", DELIVERIES_KEPT + 4));
        assert_eq!(o["a"].failing.len(), 1);
        assert!(o["a"].pending.is_empty());
        assert_eq!(o["b"].pending.len(), 1);
    }

    #[test]
    fn silences_match_names_prefixes_and_everything_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let f = SilenceFile::open(&dir.path().join("h.db")).unwrap();
        let a = f.add("web-*", 100, "deploy", 0).unwrap();
        let b = f.add("db", 50, "", 0).unwrap();
        assert!(a.matches("web-1") && !a.matches("db"));
        assert!(b.matches("db") && !b.matches("db2"));
        assert_eq!(f.active(10).unwrap().len(), 2);
        assert_eq!(f.active(60).unwrap(), vec![a.clone()]);
        assert_eq!(f.remove(a.id).unwrap(), Some(a));
        assert_eq!(f.remove(12345).unwrap(), None);
        assert!(f.active(0).unwrap().is_empty());
        let all = Silence {
            id: 1,
            monitor: "*".into(),
            until_ms: 1,
            reason: String::new(),
            created_ms: 0,
        };
        assert!(all.matches("anything"));
    }
}
